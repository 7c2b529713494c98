//! Ranking metrics as BEIR reports them (through `pytrec_eval`, i.e. `trec_eval`).
//!
//! nDCG@k uses the judged relevance itself as the gain (not `2^rel − 1`) and a `log2(rank + 1)`
//! discount; the ideal ranking is every judged document sorted by relevance. Recall@k counts the
//! documents judged relevant (relevance ≥ 1) found in the first k. Judgments of 0 or below give
//! no gain. Means are over every query that has judgments, so a query that retrieved nothing
//! counts as 0 rather than dropping out.

use std::collections::{BTreeMap, HashMap};

/// One query's judgments: document id → relevance.
pub type Judgments = HashMap<String, i32>;

/// Every query's judgments: query id → judgments.
pub type Qrels = BTreeMap<String, Judgments>;

/// nDCG of the first `k` of `ranked` (document ids, best first) against `judged`; 0 when no
/// judged document has positive relevance.
pub fn ndcg_at(ranked: &[&str], judged: &Judgments, k: usize) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let gain = |rel: i32| f64::from(rel.max(0));
    let dcg: f64 =
        ranked.iter().take(k).enumerate().map(|(i, d)| gain(*judged.get(*d).unwrap_or(&0)) * discount(i)).sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, &r)| gain(r) * discount(i)).sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Share of the documents judged relevant that are among the first `k` of `ranked`; 0 when none
/// is judged relevant.
pub fn recall_at(ranked: &[&str], judged: &Judgments, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&r| r >= 1).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|d| judged.get(**d).is_some_and(|&r| r >= 1)).count();
    found as f64 / relevant as f64
}

/// The mean of `metric` over every query of `qrels`, given each query's ranking in `run` (a
/// query missing from `run` retrieved nothing); 0 for no queries.
pub fn mean_over_queries(
    qrels: &Qrels,
    run: &HashMap<String, Vec<String>>,
    metric: impl Fn(&[&str], &Judgments) -> f64,
) -> f64 {
    if qrels.is_empty() {
        return 0.0;
    }
    let total: f64 = qrels
        .iter()
        .map(|(query, judged)| {
            let ranked: Vec<&str> = run.get(query).map_or_else(Vec::new, |r| r.iter().map(String::as_str).collect());
            metric(&ranked, judged)
        })
        .sum();
    total / qrels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&str, i32)]) -> Judgments {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn ndcg_is_one_for_the_ideal_ranking() {
        let j = judged(&[("a", 2), ("b", 1)]);
        assert_close(ndcg_at(&["a", "b", "x"], &j, 10), 1.0);
    }

    #[test]
    fn ndcg_uses_linear_gain_and_log2_discount() {
        // Relevant at ranks 2 and 3, gains 1 and 2. DCG = 1/log2(3) + 2/log2(4) = 0.63093 + 1;
        // ideal: 2/log2(2) + 1/log2(3) = 2.63093.
        let j = judged(&[("a", 1), ("b", 2), ("c", 0)]);
        let dcg = 1.0 / 3f64.log2() + 2.0 / 2.0;
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert_close(ndcg_at(&["c", "a", "b"], &j, 10), dcg / idcg);
        assert_close(ndcg_at(&["c", "a", "b"], &j, 10), 0.6199062332840657);
    }

    #[test]
    fn ndcg_cuts_both_rankings_at_k() {
        // Three relevant documents, k = 2: ideal DCG has two terms; the hit at rank 3 is cut.
        let j = judged(&[("a", 1), ("b", 1), ("c", 1)]);
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert_close(ndcg_at(&["a", "x", "b"], &j, 2), 1.0 / idcg);
        assert_close(ndcg_at(&["x", "y", "a"], &j, 2), 0.0);
    }

    #[test]
    fn ndcg_is_zero_without_positive_judgments() {
        assert_close(ndcg_at(&["a"], &judged(&[("a", 0)]), 10), 0.0);
        assert_close(ndcg_at(&[], &judged(&[("a", 1)]), 10), 0.0);
    }

    #[test]
    fn recall_counts_relevant_in_the_first_k() {
        let j = judged(&[("a", 1), ("b", 2), ("c", 0), ("d", 1)]);
        assert_close(recall_at(&["a", "c", "b", "d"], &j, 3), 2.0 / 3.0);
        assert_close(recall_at(&["a", "c", "b", "d"], &j, 100), 1.0);
        assert_close(recall_at(&["a"], &judged(&[("a", 0)]), 100), 0.0);
    }

    #[test]
    fn means_count_queries_without_results_as_zero() {
        let qrels: Qrels = [("q1".to_string(), judged(&[("a", 1)])), ("q2".to_string(), judged(&[("b", 1)]))].into();
        let run: HashMap<String, Vec<String>> = [("q1".to_string(), vec!["a".to_string()])].into();
        assert_close(mean_over_queries(&qrels, &run, |r, j| ndcg_at(r, j, 10)), 0.5);
        assert_close(mean_over_queries(&Qrels::new(), &run, |r, j| ndcg_at(r, j, 10)), 0.0);
    }
}
