//! `builtin:fuse`: merges ranked item lists with reciprocal-rank fusion (spec/language.md §8.2).
//!
//! An item's fused score is Σ 1 / (constant + rank) over the lists it appears in, rank counted
//! from 1. Items are the same when their ids are; within one list only an item's first (best)
//! appearance counts, and the merged list keeps the first copy seen. Ties keep the order of
//! first appearance. Needs no capability.

use std::collections::{BTreeMap, BTreeSet};

use tailor_plugin_sdk::prelude::*;

pub struct Fuse;

impl Plugin for Fuse {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:fuse", env!("CARGO_PKG_VERSION"), StageKind::Retriever)
            .summary("merges ranked lists with reciprocal-rank fusion")
            .input(InputPort::new("lists", "list<list<item>>").doc("ranked item lists to merge"))
            .output("items", "list<item>", "the merged ranking, best first")
            .output("scores", "list<number>", "each item's fused score")
            .config(ConfigField::integer("k", 1.0, 100.0).default(5.0).doc("how many items to return"))
            .config(
                ConfigField::number("constant", 1.0, 1000.0).default(60.0).doc("the reciprocal-rank-fusion constant"),
            )
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let lists = inputs.item_lists("lists")?;
        let k = config.get::<usize>("k")?;
        let constant = config.number("constant")?;
        let fused = reciprocal_rank_fusion(&lists, constant, k);
        let scores: Vec<f64> = fused.iter().map(|(_, s)| *s).collect();
        Ok(Outputs::new().items("items", fused.into_iter().map(|(item, _)| item)).numbers("scores", scores))
    }
}

export_plugin!(Fuse);

/// The `k` best items of the fused ranking, with their scores.
pub fn reciprocal_rank_fusion(lists: &[Vec<Item>], constant: f64, k: usize) -> Vec<(Item, f64)> {
    let mut fused: Vec<(Item, f64)> = Vec::new();
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    for list in lists {
        let mut seen_here: BTreeSet<&str> = BTreeSet::new();
        for (index, item) in list.iter().enumerate() {
            if !seen_here.insert(&item.id) {
                continue;
            }
            let contribution = 1.0 / (constant + (index + 1) as f64);
            match position.get(item.id.as_str()) {
                Some(&at) => fused[at].1 += contribution,
                None => {
                    position.insert(&item.id, fused.len());
                    fused.push((item.clone(), contribution));
                }
            }
        }
    }
    // A stable sort keeps first appearance among equal scores.
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused.truncate(k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::serde_json::json;
    use tailor_plugin_sdk::testing::call;

    fn items(ids: &[&str]) -> Vec<Item> {
        ids.iter().map(|id| Item::new(*id, "m", format!("text {id}"))).collect()
    }

    fn ids(fused: &[(Item, f64)]) -> Vec<&str> {
        fused.iter().map(|(i, _)| i.id.as_str()).collect()
    }

    #[test]
    fn scores_are_sums_of_reciprocal_ranks() {
        let fused = reciprocal_rank_fusion(&[items(&["a", "b"]), items(&["b", "c"])], 60.0, 10);
        assert_eq!(ids(&fused), vec!["b", "a", "c"]);
        assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert!((fused[1].1 - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn ties_keep_first_appearance_and_k_truncates() {
        let fused = reciprocal_rank_fusion(&[items(&["a"]), items(&["b"])], 60.0, 1);
        assert_eq!(ids(&fused), vec!["a"]);
    }

    #[test]
    fn repeated_item_in_one_list_counts_once() {
        let fused = reciprocal_rank_fusion(&[items(&["a", "a", "b"])], 1.0, 10);
        assert_eq!(ids(&fused), vec!["a", "b"]);
        assert!((fused[1].1 - 1.0 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn runs_on_lists_given_as_json() {
        let lists = Value::Json(json!([
            [{"id": "a", "kind": "m", "text": "x"}, {"id": "b", "kind": "m", "text": "y", "rating": 5}],
            [{"id": "b", "kind": "m", "text": "y", "rating": 5}]
        ]));
        let out = call::<Fuse>(Inputs::new().with("lists", lists), Config::new().with("k", 1.0)).unwrap();
        let fused: Vec<Item> = out.get("items").unwrap().get().unwrap();
        assert_eq!(fused.len(), 1);
        assert_eq!(fused[0].id, "b");
        assert_eq!(fused[0].field("rating"), Some(&json!(5)));
    }

    #[test]
    fn no_lists_give_no_items() {
        let out = call::<Fuse>(Inputs::new().with("lists", Value::Json(json!([]))), Config::new()).unwrap();
        assert_eq!(out.get("items"), Some(&Value::Items(vec![])));
        assert_eq!(out.get("scores"), Some(&Value::Numbers(vec![])));
    }
}
