//! `recency-boost`: a retriever that re-ranks items so that recent ones move up.
//!
//! An example third-party plugin (made with `tailor plugin new recency-boost --kind retriever`).
//! The item at rank r (from 1) of the incoming list scores 1/r × 0.5^(age / half-life), its age
//! measured on the host's clock (`now`, which every stage has: no grant needed). So an item one
//! half-life older than another must have ranked twice as high to stay ahead of it. An item
//! without a timestamp counts as old as the oldest dated one; an item from the future counts as
//! new. Ties keep the incoming order. It needs no capability.

use std::time::Duration;

use tailor_plugin_sdk::prelude::*;

const DAY: f64 = 86_400.0;

pub struct RecencyBoost;

impl Plugin for RecencyBoost {
    /// What the checker types a stage against: ports, config keys, grants.
    fn describe() -> Descriptor {
        Descriptor::builder("recency-boost", env!("CARGO_PKG_VERSION"), StageKind::Retriever)
            .summary("re-ranks items so that recent ones move up: rank score × 0.5^(age / half-life)")
            .input(InputPort::new("items", "list<item>").doc("the items, best first"))
            .output("items", "list<item>", "the items, re-ranked, best first")
            .output("scores", "list<number>", "each item's score: 1/rank × 0.5^(age / half-life)")
            .config(
                ConfigField::duration("half-life").default(30.0 * DAY).doc("the age at which an item's score halves"),
            )
            .config(ConfigField::integer("k", 1.0, 1000.0).doc("how many items to keep (default: all)"))
            .build()
    }

    /// One call: the SDK has already checked the inputs and filled in `half-life`'s default.
    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let items = inputs.items("items")?;
        let half_life = config.duration("half-life")?.unwrap_or(Duration::from_secs_f64(30.0 * DAY));
        if half_life.is_zero() {
            return Err(StageError::invalid_config("`half-life` must be more than 0"));
        }
        let k = config.opt::<usize>("k")?.unwrap_or(items.len());
        let mut ranked = boost(items, host::now(), half_life.as_secs_f64());
        ranked.truncate(k);
        let scores: Vec<f64> = ranked.iter().map(|(_, score)| *score).collect();
        Ok(Outputs::new().items("items", ranked.into_iter().map(|(item, _)| item)).numbers("scores", scores))
    }
}

export_plugin!(RecencyBoost);

/// The items with their boosted scores, best first (stable).
pub fn boost(items: Vec<Item>, now: f64, half_life_seconds: f64) -> Vec<(Item, f64)> {
    let ages: Vec<Option<f64>> = items.iter().map(|i| i.timestamp.map(|t| (now - t).max(0.0))).collect();
    let oldest = ages.iter().flatten().copied().fold(0.0, f64::max);
    let mut scored: Vec<(Item, f64)> = items
        .into_iter()
        .zip(ages)
        .enumerate()
        .map(|(rank, (item, age))| {
            let decay = 0.5_f64.powf(age.unwrap_or(oldest) / half_life_seconds);
            (item, decay / (rank + 1) as f64)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

    const NOW: f64 = 1_700_000_000.0;

    fn item(id: &str, days_old: Option<f64>) -> Item {
        let item = Item::new(id, "note", format!("note {id}"));
        match days_old {
            Some(days) => item.with_timestamp(NOW - days * DAY),
            None => item,
        }
    }

    fn ids(ranked: &[(Item, f64)]) -> Vec<&str> {
        ranked.iter().map(|(i, _)| i.id.as_str()).collect()
    }

    #[test]
    fn a_recent_item_overtakes_an_older_better_ranked_one() {
        let ranked = boost(vec![item("old", Some(60.0)), item("new", Some(0.0))], NOW, 30.0 * DAY);
        assert_eq!(ids(&ranked), ["new", "old"]);
        assert_eq!(ranked[0].1, 0.5); // rank 2, no decay
        assert_eq!(ranked[1].1, 0.25); // rank 1, two half-lives
    }

    #[test]
    fn one_half_life_is_worth_one_rank_doubling_and_ties_keep_order() {
        let ranked = boost(vec![item("a", Some(30.0)), item("b", Some(0.0))], NOW, 30.0 * DAY);
        assert_eq!(ids(&ranked), ["a", "b"]);
        assert_eq!(ranked[0].1, ranked[1].1);
    }

    #[test]
    fn undated_items_count_as_the_oldest_and_future_ones_as_new() {
        let ranked = boost(vec![item("undated", None), item("old", Some(90.0)), item("future", Some(-5.0))], NOW, DAY);
        assert_eq!(ids(&ranked), ["future", "undated", "old"]);
    }

    #[test]
    fn runs_with_the_default_half_life_on_the_host_clock() {
        let items = vec![item("old", Some(60.0)), item("new", Some(0.0)), item("mid", Some(10.0))];
        let (out, _) = with_host(FakeHost::new().at(NOW), || {
            call::<RecencyBoost>(Inputs::new().with("items", items), Config::new().with("k", 2.0))
        });
        let out = out.unwrap();
        let ranked: Vec<Item> = out.get("items").unwrap().get().unwrap();
        assert_eq!(ranked.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["new", "mid"]);
        assert!(matches!(out.get("scores"), Some(Value::Numbers(s)) if s.len() == 2));
    }

    #[test]
    fn accepts_a_half_life_written_as_a_duration() {
        let inputs = Inputs::new().with("items", vec![item("a", Some(1.0))]);
        let (out, _) =
            with_host(FakeHost::new().at(NOW), || call::<RecencyBoost>(inputs, Config::new().with("half-life", "1d")));
        assert_eq!(out.unwrap().get("scores"), Some(&Value::Numbers(vec![0.5])));
    }
}
