//! `builtin:profile`: turns the user's history into a profile (spec/language.md §8.3).
//!
//! Reads the `max-items` most recent items (`recent`, so the stage's `where` filter applies) and
//! computes `stats`, a record:
//!
//! | key | value |
//! |---|---|
//! | `count` | how many items were profiled |
//! | `kinds` | a record: items per kind |
//! | `top_words` | the 20 most frequent words, most frequent first (lowercased Unicode words, English stop words and words without a letter left out; ties alphabetical) |
//! | `mean_words`, `median_words` | text length in words |
//! | `first`, `last` | the earliest and latest timestamps (none when no item has one) |
//! | `field_means` | a record: the mean of each numeric own field, over the items that have it |
//!
//! With `summary #true` it also asks the LLM for a short third-person summary of the user from
//! the stats and a sample of recent texts (and `focus`, when bound). The summary is cached in
//! `kv` for a day under a key derived from a hash of the items and the focus, so a changed
//! history gets a new summary. Cache failures only cost a fresh summary. Without `summary`,
//! `summary` is empty and the LLM is never called.

use std::collections::BTreeMap;
use std::time::Duration;

use tailor_plugin_sdk::host::{self, CompletionRequest};
use tailor_plugin_sdk::prelude::*;
use tailor_plugin_sdk::serde_json::{Map, Value as Json, json};
use tailor_plugin_sdk::text::{is_content_word, words};

/// How many frequent words the stats list.
const TOP_WORDS: usize = 20;
/// How many recent items the summary prompt quotes, and how much of each.
const SAMPLE_ITEMS: usize = 15;
const SAMPLE_CHARS: usize = 280;
/// How long a cached summary lives.
const SUMMARY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Changes whenever the prompt does, so that old summaries are not reused.
const SUMMARY_VERSION: &str = "v1";

pub struct Profile;

impl Plugin for Profile {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:profile", env!("CARGO_PKG_VERSION"), StageKind::Profiler)
            .summary("turns the user's history into a profile")
            .input(InputPort::new("focus", "text").optional().doc("what the profile should be about"))
            .output("summary", "text", "an LLM-written summary of the user (empty unless `summary #true`)")
            .output(
                "stats",
                "record",
                "statistics over the user's history: counts by kind, frequent words, typical length, field averages",
            )
            .config(
                ConfigField::bool("summary")
                    .default(false)
                    .requires(Capability::Complete)
                    .doc("also write a short summary of the user with the LLM"),
            )
            .config(
                ConfigField::integer("max-items", 1.0, 10_000.0).default(200.0).doc("how many recent items to profile"),
            )
            .config(ConfigField::item_filter("where").doc("only items for which this condition on `item` holds"))
            .grant(Capability::Search)
            .grant(Capability::Kv)
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let focus = inputs.opt_text("focus")?.map(str::trim).unwrap_or_default();
        let items = host::recent(config.get::<u32>("max-items")?)?;
        let stats = stats(&items);
        let summary = if config.flag("summary")? && !items.is_empty() {
            summarize(&items, &stats, focus)?
        } else {
            String::new()
        };
        Ok(Outputs::new().text("summary", summary).json("stats", stats))
    }
}

export_plugin!(Profile);

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// The `stats` record of a set of items.
pub fn stats(items: &[Item]) -> Json {
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut frequency: BTreeMap<String, u64> = BTreeMap::new();
    let mut lengths: Vec<f64> = Vec::with_capacity(items.len());
    let mut fields: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for item in items {
        *kinds.entry(&item.kind).or_default() += 1;
        let mut length = 0u64;
        for word in words(&item.text) {
            length += 1;
            if is_content_word(&word) {
                *frequency.entry(word).or_default() += 1;
            }
        }
        lengths.push(length as f64);
        for (name, value) in &item.fields {
            if let Some(n) = value.as_f64().filter(|_| value.is_number()) {
                fields.entry(name).or_default().push(n);
            }
        }
    }
    let mut ranked: Vec<(String, u64)> = frequency.into_iter().collect();
    // A stable sort by count keeps the alphabetical order of the map among equals.
    ranked.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let top_words: Vec<String> = ranked.into_iter().take(TOP_WORDS).map(|(w, _)| w).collect();
    let timestamps: Vec<f64> = items.iter().filter_map(|i| i.timestamp).collect();
    let first = timestamps.iter().copied().reduce(f64::min);
    let last = timestamps.iter().copied().reduce(f64::max);
    let field_means: Map<String, Json> = fields.into_iter().map(|(k, v)| (k.to_owned(), json!(mean(&v)))).collect();
    json!({
        "count": items.len(),
        "kinds": kinds,
        "top_words": top_words,
        "mean_words": mean(&lengths),
        "median_words": median(&mut lengths),
        "first": first,
        "last": last,
        "field_means": field_means,
    })
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The cache key of a summary: the prompt version, the focus and every item used, hashed.
pub fn summary_key(items: &[Item], focus: &str) -> String {
    let mut hash = fnv1a(0xcbf2_9ce4_8422_2325, SUMMARY_VERSION.as_bytes());
    hash = fnv1a(hash, focus.as_bytes());
    for item in items {
        for part in [item.id.as_str(), item.kind.as_str(), item.text.as_str()] {
            hash = fnv1a(hash, &(part.len() as u64).to_le_bytes());
            hash = fnv1a(hash, part.as_bytes());
        }
        hash = fnv1a(hash, &item.timestamp.map_or(u64::MAX, f64::to_bits).to_le_bytes());
        hash = fnv1a(hash, Json::Object(item.fields.clone()).to_string().as_bytes());
    }
    format!("summary:{SUMMARY_VERSION}:{hash:016x}")
}

const SYSTEM: &str = "You write short, factual profiles of a person from their own history. \
Write in the third person (\"The user ...\"). State only what the history supports; do not invent names, \
ages or places, and never repeat contact details or other personal data.";

/// The user message asking for a summary.
pub fn summary_prompt(items: &[Item], stats: &Json, focus: &str) -> String {
    let sample: Vec<String> = items
        .iter()
        .take(SAMPLE_ITEMS)
        .map(|item| {
            let text: String = item.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let clipped: String = text.chars().take(SAMPLE_CHARS).collect();
            let ellipsis = if clipped.len() < text.len() { "…" } else { "" };
            format!("- [{}] {clipped}{ellipsis}", item.kind)
        })
        .collect();
    let focus = if focus.is_empty() { String::new() } else { format!("Focus on: {focus}\n\n") };
    format!(
        "Statistics of the user's history (JSON):\n{stats}\n\nRecent items, newest first:\n{}\n\n{focus}\
         Write a summary of this user in 2 to 4 sentences: their interests, style and preferences. \
         Reply with the summary only.",
        sample.join("\n")
    )
}

fn summarize(items: &[Item], stats: &Json, focus: &str) -> Result<String, StageError> {
    let key = summary_key(items, focus);
    match host::kv_get(&key) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(cached) if !cached.is_empty() => return Ok(cached),
            _ => host::warn("profile: ignoring a malformed cached summary"),
        },
        Ok(None) => {}
        Err(e) => host::warn(&format!("profile: summary cache unavailable: {e}")),
    }
    let request = CompletionRequest::new()
        .system(SYSTEM)
        .user(summary_prompt(items, stats, focus))
        .temperature(0.2)
        .max_tokens(200);
    let completion = host::complete(&request)?;
    let summary = completion.text().unwrap_or_default().trim().to_owned();
    if !summary.is_empty()
        && let Err(e) = host::kv_set(&key, summary.as_bytes(), Some(SUMMARY_TTL))
    {
        host::warn(&format!("profile: could not cache the summary: {e}"));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

    fn history() -> Vec<Item> {
        vec![
            Item::new("3", "review", "The pasta was great, truly great pasta!")
                .with_timestamp(300.0)
                .with_field("rating", 5),
            Item::new("2", "review", "Great service; the pasta wasn't warm.")
                .with_timestamp(100.0)
                .with_field("rating", 3),
            Item::new("1", "message", "Naïve café questions about Rust")
                .with_field("rating", "n/a")
                .with_field("verified", true),
        ]
    }

    #[test]
    fn stats_count_kinds_words_lengths_and_times() {
        let s = stats(&history());
        assert_eq!(s["count"], json!(3));
        assert_eq!(s["kinds"], json!({"message": 1, "review": 2}));
        let top: Vec<&str> = s["top_words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
        assert_eq!(&top[..2], &["great", "pasta"]);
        assert!(top.contains(&"naïve") && top.contains(&"café"));
        assert!(!top.contains(&"the") && !top.contains(&"wasn't"));
        assert_eq!(s["mean_words"], json!(6.0));
        assert_eq!(s["median_words"], json!(6.0));
        assert_eq!((s["first"].clone(), s["last"].clone()), (json!(100.0), json!(300.0)));
    }

    #[test]
    fn field_means_use_numbers_only() {
        let s = stats(&history());
        assert_eq!(s["field_means"], json!({"rating": 4.0}));
    }

    #[test]
    fn stats_of_nothing() {
        let s = stats(&[]);
        assert_eq!(s["count"], json!(0));
        assert_eq!(s["first"], Json::Null);
        assert_eq!(s["top_words"], json!([]));
    }

    #[test]
    fn summary_key_changes_with_history_and_focus() {
        let items = history();
        let key = summary_key(&items, "");
        assert_eq!(key, summary_key(&items, ""));
        assert_ne!(key, summary_key(&items[1..], ""));
        assert_ne!(key, summary_key(&items, "food"));
        let mut edited = items.clone();
        edited[0].text.push('.');
        assert_ne!(key, summary_key(&edited, ""));
        assert!(key.starts_with("summary:v1:"));
    }

    #[test]
    fn summary_off_never_calls_the_llm() {
        let (out, fake) =
            with_host(FakeHost::new().with_items(history()), || call::<Profile>(Inputs::new(), Config::new()));
        let out = out.unwrap();
        assert_eq!(out.get("summary"), Some(&Value::Text(String::new())));
        assert!(fake.requests.is_empty() && fake.kv.is_empty());
        assert_eq!(out.get("stats").unwrap().get::<Json>().unwrap()["count"], json!(3));
    }

    #[test]
    fn summary_is_written_once_then_cached_for_a_day() {
        let fake = FakeHost::new().with_items(history()).reply_with(|_| Ok("  The user loves pasta. ".into()));
        let config = || Config::new().with("summary", true).with("max-items", 2.0);
        let (out, fake) = with_host(fake, || call::<Profile>(Inputs::new().with("focus", "food"), config()));
        assert_eq!(out.unwrap().get("summary"), Some(&Value::Text("The user loves pasta.".into())));
        assert_eq!(fake.requests.len(), 1);
        let prompt = &fake.requests[0].messages[1].content;
        assert!(prompt.contains("Focus on: food") && prompt.contains("- [review] The pasta was great"));
        assert!(!prompt.contains("Naïve"), "only the 2 most recent items are profiled");
        let (_, (_, ttl)) = fake.kv.iter().next().unwrap();
        assert_eq!(*ttl, Some(SUMMARY_TTL));

        let (out, fake) = with_host(fake, || call::<Profile>(Inputs::new().with("focus", "food"), config()));
        assert_eq!(out.unwrap().get("summary"), Some(&Value::Text("The user loves pasta.".into())));
        assert_eq!(fake.requests.len(), 1, "the second call is served from the cache");
    }

    #[test]
    fn cache_failure_still_gives_a_summary() {
        let fake = FakeHost::new().with_items(history()).deny(Capability::Kv).reply_with(|_| Ok("Summary.".into()));
        let (out, fake) = with_host(fake, || call::<Profile>(Inputs::new(), Config::new().with("summary", true)));
        assert_eq!(out.unwrap().get("summary"), Some(&Value::Text("Summary.".into())));
        assert!(fake.logs.iter().any(|(_, m)| m.contains("cache")));
    }

    #[test]
    fn empty_history_gives_empty_summary_without_asking() {
        let (out, fake) =
            with_host(FakeHost::new(), || call::<Profile>(Inputs::new(), Config::new().with("summary", true)));
        assert_eq!(out.unwrap().get("summary"), Some(&Value::Text(String::new())));
        assert!(fake.requests.is_empty());
    }
}
