//! `builtin:minimize`: data minimization at inference time (spec/language.md §8.7,
//! spec/privacy.md §4). The stage stands between the user's data and the stage that consumes
//! it, and passes on only what that stage declares it needs; everything else is withheld and
//! reported by name and count, never by value.
//!
//! - **Profile fields**: `fields` lists the keys of `profile` that are needed, a dotted path
//!   (`field_means.rating`) reaching into nested records. Nothing else of the profile passes:
//!   with no `fields`, the profile is withheld whole.
//! - **Items**: when `task` is bound, each item's relevance to it is scored (BM25 over the given
//!   items as the corpus, or with `dense #true` the cosine of the host encoder's embeddings), and
//!   items are revealed best first while their score is at least `min-relevance` times the best
//!   one, up to `max-items`; an item with no relevance at all (no content word in common, a
//!   cosine ≤ 0) is never revealed. This follows Tran & Fioretto, *Data Minimization at
//!   Inference Time* (NeurIPS 2023): reveal per user and per request only what the decision at
//!   hand needs, in order of how much it tells. Without a task (or one with no content words),
//!   the first `max-items` items pass in their given order.
//! - **Item fields**: only `item-fields` survive on a revealed item (default: `text`). A withheld
//!   built-in field is emptied (`id`, `kind` → `''`, `timestamp` → none); a withheld own field is
//!   removed.
//!
//! `withheld` reports what did not pass: `{"items": N, "item_fields": [...], "profile_fields":
//! [...]}` (names sorted); the same goes to the run's log.

use std::collections::BTreeSet;

use tailor_plugin_sdk::host;
use tailor_plugin_sdk::prelude::*;
use tailor_plugin_sdk::serde_json::{Map, Value as Json, json};
use tailor_plugin_sdk::text::{is_content_word, words};

/// BM25's usual parameters.
const K1: f64 = 1.2;
const B: f64 = 0.75;

pub struct Minimize;

impl Plugin for Minimize {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:minimize", env!("CARGO_PKG_VERSION"), StageKind::Privacy)
            .summary("passes on only the profile fields and history items the next stage needs")
            .input(InputPort::new("items", "list<item>").optional().doc("history items to minimize"))
            .input(InputPort::new("profile", "record").optional().doc("a profile to minimize"))
            .input(
                InputPort::new("task", "text")
                    .optional()
                    .doc("what the next stage will do; items are revealed by relevance to it"),
            )
            .output("items", "list<item>", "the revealed items, most relevant first, with only the needed fields")
            .output("scores", "list<number>", "each revealed item's relevance to the task (none without a task)")
            .output("profile", "record", "the profile with only the needed fields")
            .output(
                "withheld",
                "record",
                "what did not pass: `items` (a count), `item_fields`, `profile_fields` (names)",
            )
            .config(
                ConfigField::text_list("fields")
                    .doc("profile fields the next stage needs (dotted paths reach into records)"),
            )
            .config(
                ConfigField::text_list("item-fields").default(vec!["text"]).doc(
                    "item fields the next stage needs: `id`, `kind`, `text`, `timestamp` or the items' own fields",
                ),
            )
            .config(ConfigField::integer("max-items", 0.0, 1000.0).default(5.0).doc("the most items revealed"))
            .config(
                ConfigField::number("min-relevance", 0.0, 1.0)
                    .default(0.5)
                    .doc("an item is revealed only if its relevance is at least this share of the best item's"),
            )
            .config(
                ConfigField::bool("dense")
                    .default(false)
                    .requires(Capability::Embed)
                    .doc("score relevance by embedding similarity instead of shared words"),
            )
            .build()
    }

    fn run(ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let items = if inputs.is_set("items") { inputs.items("items")? } else { Vec::new() };
        // The SDK has checked that a bound profile is a record (or none).
        let profile = match inputs.value("profile").map(Value::to_json) {
            Some(Json::Object(map)) => map,
            _ => Map::new(),
        };
        let task = inputs.opt_text("task")?.map(str::trim).unwrap_or_default();
        let fields = config.texts("fields")?;
        let item_fields = config.texts("item-fields")?;
        let max_items = config.get::<usize>("max-items")?;
        let min_relevance = config.number("min-relevance")?;

        let scores = if task.is_empty() || items.is_empty() {
            None
        } else if config.flag("dense")? {
            Some(dense_scores(task, &items)?)
        } else {
            lexical_scores(task, &items)
        };
        let chosen = reveal(scores.as_deref(), items.len(), max_items, min_relevance);
        let mut removed_fields = BTreeSet::new();
        let mut revealed = Vec::with_capacity(chosen.len());
        let mut revealed_scores = Vec::with_capacity(chosen.len());
        for &i in &chosen {
            revealed.push(keep_item_fields(&items[i], &item_fields, &mut removed_fields));
            if let Some(s) = &scores {
                revealed_scores.push(s[i]);
            }
        }
        let (kept_profile, withheld_profile) = keep_paths(&profile, &fields);
        let withheld_items = items.len() - revealed.len();
        host::info(&format!(
            "stage {}: revealed {} of {} items; withheld item fields [{}], profile fields [{}]",
            ctx.stage,
            revealed.len(),
            items.len(),
            removed_fields.iter().cloned().collect::<Vec<_>>().join(", "),
            withheld_profile.join(", "),
        ));
        let withheld = json!({
            "items": withheld_items,
            "item_fields": removed_fields,
            "profile_fields": withheld_profile,
        });
        Ok(Outputs::new()
            .items("items", revealed)
            .numbers("scores", revealed_scores)
            .json("profile", Json::Object(kept_profile))
            .json("withheld", withheld))
    }
}

export_plugin!(Minimize);

/// The indices of the items to reveal, most relevant first (ties in given order); without
/// scores, the first `max_items` in order.
pub fn reveal(scores: Option<&[f64]>, len: usize, max_items: usize, min_relevance: f64) -> Vec<usize> {
    let Some(scores) = scores else {
        return (0..len.min(max_items)).collect();
    };
    let best = scores.iter().copied().fold(0.0_f64, f64::max);
    if best <= 0.0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..len).filter(|&i| scores[i] > 0.0 && scores[i] >= min_relevance * best).collect();
    // A stable sort keeps the given order among equal scores.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(max_items);
    order
}

/// BM25 scores of the items for the task, the items themselves being the corpus; `None` when
/// the task has no content word to match.
pub fn lexical_scores(task: &str, items: &[Item]) -> Option<Vec<f64>> {
    let query: BTreeSet<String> = words(task).filter(|w| is_content_word(w)).collect();
    if query.is_empty() {
        return None;
    }
    let docs: Vec<Vec<String>> =
        items.iter().map(|i| words(&i.text).filter(|w| is_content_word(w)).collect()).collect();
    let n = docs.len() as f64;
    let mean_len = (docs.iter().map(Vec::len).sum::<usize>() as f64 / n).max(1.0);
    let idf: Vec<(&String, f64)> = query
        .iter()
        .map(|term| {
            let df = docs.iter().filter(|d| d.contains(term)).count() as f64;
            (term, (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
        })
        .collect();
    let scores = docs
        .iter()
        .map(|doc| {
            let norm = K1 * (1.0 - B + B * doc.len() as f64 / mean_len);
            idf.iter()
                .map(|(term, idf)| {
                    let tf = doc.iter().filter(|w| w == term).count() as f64;
                    if tf == 0.0 { 0.0 } else { idf * tf * (K1 + 1.0) / (tf + norm) }
                })
                .sum()
        })
        .collect();
    Some(scores)
}

/// Cosine similarities of the items to the task with the host's encoder (unit vectors).
fn dense_scores(task: &str, items: &[Item]) -> Result<Vec<f64>, StageError> {
    let mut texts: Vec<&str> = Vec::with_capacity(items.len() + 1);
    texts.push(task);
    texts.extend(items.iter().map(|i| i.text.as_str()));
    let vectors = host::embed(&texts)?;
    if vectors.len() != texts.len() {
        return Err(StageError::failed(format!(
            "the encoder returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    let (query, rest) = vectors.split_first().expect("invariant: the task's vector comes first");
    Ok(rest.iter().map(|v| v.iter().zip(query).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()).collect())
}

/// The item with only the needed fields; the names of the others go into `removed`.
pub fn keep_item_fields(item: &Item, needed: &[String], removed: &mut BTreeSet<String>) -> Item {
    let keep = |name: &str| needed.iter().any(|n| n == name);
    let mut out = Item::default();
    let mut withhold = |name: &str| {
        removed.insert(name.to_owned());
    };
    if keep("id") {
        out.id.clone_from(&item.id)
    } else {
        withhold("id")
    }
    if keep("kind") {
        out.kind.clone_from(&item.kind)
    } else {
        withhold("kind")
    }
    if keep("text") {
        out.text.clone_from(&item.text)
    } else {
        withhold("text")
    }
    if keep("timestamp") {
        out.timestamp = item.timestamp;
    } else if item.timestamp.is_some() {
        withhold("timestamp");
    }
    for (name, value) in &item.fields {
        if keep(name) {
            out.fields.insert(name.clone(), value.clone());
        } else {
            withhold(name);
        }
    }
    out
}

/// The parts of `record` named by `paths` (dotted), and the sorted paths of what was left out:
/// a key not named at all, or the unnamed keys of a record only partly kept.
pub fn keep_paths(record: &Map<String, Json>, paths: &[String]) -> (Map<String, Json>, Vec<String>) {
    let mut kept = Map::new();
    let mut withheld = Vec::new();
    keep_into(record, paths, "", &mut kept, &mut withheld);
    withheld.sort();
    (kept, withheld)
}

fn keep_into(
    record: &Map<String, Json>,
    paths: &[String],
    prefix: &str,
    kept: &mut Map<String, Json>,
    withheld: &mut Vec<String>,
) {
    for (key, value) in record {
        let full = format!("{prefix}{key}");
        if paths.contains(&full) {
            kept.insert(key.clone(), value.clone());
            continue;
        }
        let deeper = format!("{full}.");
        let nested = match value {
            Json::Object(inner) if paths.iter().any(|p| p.starts_with(&deeper)) => Some(inner),
            _ => None,
        };
        match nested {
            Some(inner) => {
                let mut sub = Map::new();
                keep_into(inner, paths, &deeper, &mut sub, withheld);
                kept.insert(key.clone(), Json::Object(sub));
            }
            None => withheld.push(full),
        }
    }
}

#[cfg(test)]
mod tests;
