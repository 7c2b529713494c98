//! `builtin:retrieve`: finds the user's own history items relevant to a query
//! (spec/language.md §8.1).
//!
//! The query is normalised (trimmed, whitespace collapsed, at most 2,000 characters) and sent to
//! the host's `search`. When re-ranking, 4k candidates are fetched so that re-ranking has
//! something to choose from. Re-ranking runs in two optional steps:
//! 1. **recency** (a half-life): each score is discounted by 0.5^(age / half-life);
//! 2. **mmr** (λ): maximal marginal relevance over item embeddings from `embed`, trading
//!    relevance (λ = 1) for novelty (λ = 0).
//!
//! `scores` are each item's relevance (after the recency discount). With `mmr` the order is the
//! diversity order, so the scores need not be descending.

use std::time::Duration;

use tailor_plugin_sdk::host::{self, Hit, SearchMethod};
use tailor_plugin_sdk::prelude::*;

/// The longest query sent to `search`, in characters.
const MAX_QUERY_CHARS: usize = 2_000;
/// The longest item text sent to `embed` for MMR, in characters.
const MAX_EMBED_CHARS: usize = 2_000;
/// How many candidates per wanted item to fetch when re-ranking.
const RERANK_POOL: u32 = 4;

pub struct Retrieve;

impl Plugin for Retrieve {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:retrieve", env!("CARGO_PKG_VERSION"), StageKind::Retriever)
            .summary("finds the user's own history items relevant to a query")
            .input(InputPort::new("query", "text").doc("what to look for in the user's history"))
            .output("items", "list<item>", "the best matching items, best first")
            .output("scores", "list<number>", "each item's score, in the same order")
            .config(
                ConfigField::choice("method", ["bm25", "dense", "hybrid"]).default("hybrid").doc("how to score items"),
            )
            .config(ConfigField::integer("k", 1.0, 100.0).default(5.0).doc("how many items to return"))
            .config(ConfigField::item_filter("where").doc("only items for which this condition on `item` holds"))
            .config(
                ConfigField::number("mmr", 0.0, 1.0)
                    .requires(Capability::Embed)
                    .doc("re-rank for diversity (maximal marginal relevance), trading relevance (1) for novelty (0)"),
            )
            .config(
                ConfigField::duration("recency").doc("boost recent items: a score halves for each half-life of age"),
            )
            .grant(Capability::Search)
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let query = normalize_query(inputs.text("query")?);
        let word = config.choice("method")?;
        let method = SearchMethod::parse(word)
            .ok_or_else(|| StageError::invalid_config(format!("config key `method`: unknown method `{word}`")))?;
        let k = config.get::<u32>("k")?;
        let mmr = config.opt_number("mmr")?.filter(|lambda| *lambda < 1.0);
        let half_life = config.duration("recency")?.filter(|d| !d.is_zero());

        if query.is_empty() {
            host::debug("empty query: nothing to retrieve");
            return Ok(outputs(Vec::new()));
        }
        let reranking = mmr.is_some() || half_life.is_some();
        let fetch = if reranking { k.saturating_mul(RERANK_POOL) } else { k };
        let mut hits = host::search(&query, method, fetch)?;

        if let Some(half_life) = half_life {
            apply_recency(&mut hits, host::now(), half_life);
        }
        if let Some(lambda) = mmr
            && hits.len() > 1
        {
            let texts: Vec<String> = hits.iter().map(|h| truncate_chars(&h.item.text, MAX_EMBED_CHARS)).collect();
            let embeddings = host::embed(&texts)?;
            if embeddings.len() != hits.len() {
                return Err(StageError::failed(format!(
                    "`embed` returned {} embeddings for {} texts",
                    embeddings.len(),
                    hits.len()
                )));
            }
            let relevance: Vec<f64> = hits.iter().map(|h| h.score).collect();
            let order = mmr_order(&relevance, &embeddings, lambda, k as usize);
            let mut slots: Vec<Option<Hit>> = hits.into_iter().map(Some).collect();
            hits = order.into_iter().filter_map(|i| slots[i].take()).collect();
        }
        hits.truncate(k as usize);
        Ok(outputs(hits))
    }
}

fn outputs(hits: Vec<Hit>) -> Outputs {
    let scores: Vec<f64> = hits.iter().map(|h| h.score).collect();
    Outputs::new().items("items", hits.into_iter().map(|h| h.item)).numbers("scores", scores)
}

export_plugin!(Retrieve);

/// Trims, collapses runs of whitespace to one space, and keeps at most 2,000 characters.
pub fn normalize_query(raw: &str) -> String {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, MAX_QUERY_CHARS).trim_end().to_owned()
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// 0.5^(age / half-life); an item from the future counts as new.
pub fn recency_factor(age_seconds: f64, half_life_seconds: f64) -> f64 {
    0.5_f64.powf(age_seconds.max(0.0) / half_life_seconds).max(f64::MIN_POSITIVE)
}

/// Discounts a score by a factor in (0, 1]. A negative score (dense cosine can be negative) is
/// divided instead, so a smaller factor always means a lower score.
fn discount(score: f64, factor: f64) -> f64 {
    if score >= 0.0 { score * factor } else { score / factor }
}

/// Applies the recency discount and re-sorts, best first (stable). An item without a timestamp
/// is treated as old as the oldest dated hit: leaving it undiscounted would rank undated items
/// above every dated one.
pub fn apply_recency(hits: &mut [Hit], now: f64, half_life: Duration) {
    let half_life = half_life.as_secs_f64();
    let factors: Vec<Option<f64>> =
        hits.iter().map(|h| h.item.timestamp.map(|t| recency_factor(now - t, half_life))).collect();
    let oldest = factors.iter().flatten().copied().fold(None, |m: Option<f64>, f| Some(m.map_or(f, |m| m.min(f))));
    for (hit, factor) in hits.iter_mut().zip(factors) {
        hit.score = discount(hit.score, factor.or(oldest).unwrap_or(1.0));
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

/// Maximal marginal relevance: picks `k` of the candidates, each time the one maximising
/// λ·relevance − (1−λ)·(greatest similarity to an item already picked). Relevance is the search
/// score min-max normalised to [0, 1], so that it is on the scale of cosine similarity whatever
/// the search method. Returns candidate indices in pick order; ties go to the better-ranked.
pub fn mmr_order(scores: &[f64], embeddings: &[Vec<f32>], lambda: f64, k: usize) -> Vec<usize> {
    let (lo, hi) = scores.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let relevance: Vec<f64> = scores.iter().map(|s| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }).collect();
    let mut picked: Vec<usize> = Vec::new();
    let mut closest = vec![f64::NEG_INFINITY; scores.len()];
    while picked.len() < k.min(scores.len()) {
        let mut best: Option<(usize, f64)> = None;
        for i in (0..scores.len()).filter(|i| !picked.contains(i)) {
            let redundancy = if picked.is_empty() { 0.0 } else { closest[i] };
            let value = lambda * relevance[i] - (1.0 - lambda) * redundancy;
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((i, value));
            }
        }
        let Some((chosen, _)) = best else { break };
        picked.push(chosen);
        for (i, c) in closest.iter_mut().enumerate() {
            *c = c.max(cosine(&embeddings[i], &embeddings[chosen]));
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

    fn hit(id: &str, score: f64, timestamp: Option<f64>) -> Hit {
        let mut item = Item::new(id, "m", id);
        item.timestamp = timestamp;
        Hit { item, score }
    }

    #[test]
    fn query_is_trimmed_collapsed_and_capped() {
        assert_eq!(normalize_query("  trail \n\t running  "), "trail running");
        let long = "ab ".repeat(1_500);
        let q = normalize_query(&long);
        assert!(q.chars().count() <= MAX_QUERY_CHARS);
        assert!(!q.ends_with(' '));
        assert_eq!(normalize_query("é".repeat(2_500).as_str()).chars().count(), 2_000);
    }

    #[test]
    fn recency_halves_per_half_life() {
        assert_eq!(recency_factor(0.0, 10.0), 1.0);
        assert!((recency_factor(10.0, 10.0) - 0.5).abs() < 1e-12);
        assert!((recency_factor(20.0, 10.0) - 0.25).abs() < 1e-12);
        assert_eq!(recency_factor(-5.0, 10.0), 1.0);
    }

    #[test]
    fn recency_reorders_and_discounts_undated_as_oldest() {
        let day = 86_400.0;
        let now = 100.0 * day;
        let mut hits =
            vec![hit("old", 1.0, Some(now - 30.0 * day)), hit("new", 0.6, Some(now)), hit("undated", 0.9, None)];
        apply_recency(&mut hits, now, Duration::from_secs_f64(10.0 * day));
        let ids: Vec<&str> = hits.iter().map(|h| h.item.id.as_str()).collect();
        assert_eq!(ids, vec!["new", "old", "undated"]);
        assert!((hits[1].score - 0.125).abs() < 1e-9);
        assert!((hits[2].score - 0.9 * 0.125).abs() < 1e-9);
    }

    #[test]
    fn recency_lowers_negative_scores_too() {
        let mut hits = vec![hit("a", -0.2, Some(0.0))];
        apply_recency(&mut hits, 10.0, Duration::from_secs(10));
        assert!(hits[0].score < -0.2);
    }

    #[test]
    fn mmr_with_lambda_one_keeps_relevance_order() {
        let e = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(mmr_order(&[3.0, 2.0, 1.0], &e, 1.0, 3), vec![0, 1, 2]);
    }

    #[test]
    fn mmr_skips_near_duplicates() {
        let e = vec![vec![1.0, 0.0], vec![0.99, 0.01], vec![0.0, 1.0]];
        assert_eq!(mmr_order(&[3.0, 2.9, 2.0], &e, 0.5, 2), vec![0, 2]);
    }

    fn history() -> Vec<Item> {
        vec![
            Item::new("1", "message", "trail running shoes for mud").with_timestamp(1_699_000_000.0),
            Item::new("2", "message", "trail running shoes review").with_timestamp(1_600_000_000.0),
            Item::new("3", "message", "rain jacket for trail running").with_timestamp(1_699_900_000.0),
            Item::new("4", "message", "baking bread"),
        ]
    }

    #[test]
    fn returns_k_items_best_first_with_scores() {
        let (out, fake) = with_host(FakeHost::new().with_items(history()), || {
            call::<Retrieve>(Inputs::new().with("query", " trail   running shoes "), Config::new().with("k", 2.0))
        });
        let out = out.unwrap();
        let items: Vec<Item> = out.get("items").unwrap().get().unwrap();
        assert_eq!(items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(out.get("scores"), Some(&Value::Numbers(vec![3.0, 3.0])));
        assert_eq!(fake.searches, vec![("trail running shoes".to_owned(), SearchMethod::Hybrid, 2)]);
    }

    #[test]
    fn reranking_fetches_four_times_k_and_embeds() {
        let config = Config::new().with("k", 2.0).with("mmr", 0.5).with("recency", 86_400.0).with("method", "bm25");
        let (out, fake) = with_host(FakeHost::new().with_items(history()), || {
            call::<Retrieve>(Inputs::new().with("query", "trail running"), config)
        });
        let items: Vec<Item> = out.unwrap().get("items").unwrap().get().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(fake.searches[0].2, 8);
        assert_eq!(fake.embedded.len(), 1);
    }

    #[test]
    fn mmr_without_embed_grant_fails_with_not_granted() {
        let host = FakeHost::new().with_items(history()).deny(Capability::Embed);
        let (out, _) =
            with_host(host, || call::<Retrieve>(Inputs::new().with("query", "trail"), Config::new().with("mmr", 0.3)));
        assert!(matches!(out, Err(StageError::Host(tailor_plugin_sdk::HostError::NotGranted(Capability::Embed)))));
    }

    #[test]
    fn blank_query_returns_nothing_without_searching() {
        let (out, fake) = with_host(FakeHost::new().with_items(history()), || {
            call::<Retrieve>(Inputs::new().with("query", "   "), Config::new())
        });
        assert_eq!(out.unwrap().get("items"), Some(&Value::Items(vec![])));
        assert!(fake.searches.is_empty());
    }
}
