//! `tailor eval retrieval` on a ten-document BEIR fixture (`tests/fixtures/beir-mini`): the JSON
//! it prints, the judged queries it runs, and a clear refusal where no text encoder exists yet.

use crate::util::{stderr, stdout, tailor};

const FIXTURE: &str = "tests/fixtures/beir-mini";

fn eval(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["eval", "retrieval", "--beir", FIXTURE, "--split", "test"];
    all.extend_from_slice(args);
    let out = tailor(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "one JSON object on one line: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn bm25_prints_one_json_report() {
    let report = eval(&["--method", "bm25"]);
    let object = report.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["documents", "index_seconds", "method", "ndcg@10", "queries", "queries_per_second", "recall@100"]
    );
    assert_eq!(report["method"], "bm25");
    assert_eq!(report["documents"], 10);
    assert_eq!(report["queries"], 3, "only the judged queries run");
    assert!(report["index_seconds"].as_f64().is_some_and(|s| s >= 0.0));
    assert!(report["queries_per_second"].as_f64().is_some_and(|q| q > 0.0));
}

#[test]
fn bm25_ranks_the_relevant_documents_first() {
    let report = eval(&["--method", "bm25"]);
    // nDCG@10 of 1 means every query ranks its judged documents first, in order of relevance.
    assert_eq!(report["ndcg@10"], 1.0);
    assert_eq!(report["recall@100"], 1.0);
}

#[test]
fn another_cut_off_is_reported_beside_ndcg_at_10() {
    let report = eval(&["--method", "bm25", "--k", "1"]);
    assert_eq!(report["k"], 1);
    // q2 judges two documents: at cut-off 1 its ideal DCG is the better one alone.
    assert_eq!(report["ndcg@k"], 1.0);
    assert_eq!(report["ndcg@10"], 1.0);
}

#[test]
fn bm25_parameters_can_be_set() {
    let report = eval(&["--method", "bm25", "--k1", "1.2", "--b", "0.75"]);
    assert_eq!(report["ndcg@10"], 1.0);
}

#[test]
fn dense_and_hybrid_rank_the_judged_documents_first() {
    // MiniLM on the CubeCL kernels (weights fetched on first use).
    for method in ["dense", "hybrid"] {
        let report = eval(&["--method", method]);
        assert_eq!(report["method"], method);
        assert!(report["ndcg@10"].as_f64().unwrap() >= 0.9, "{method}: {report}");
        assert_eq!(report["recall@100"], 1.0, "{method}");
    }
}

#[test]
fn embed_prints_one_unit_vector_per_text() {
    let out = tailor(&["embed", "a user who loves hiking", "quarterly tax forms"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let vectors: Vec<Vec<f32>> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let cosine: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
    assert!(cosine < 0.5, "unrelated texts are not near-duplicates: {cosine}");
}

#[test]
fn missing_split_is_an_error_naming_the_file() {
    let out = tailor(&["eval", "retrieval", "--beir", FIXTURE, "--split", "dev"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("qrels/dev.tsv"), "{}", stderr(&out));
}

#[test]
fn bm25_parameters_outside_their_domain_are_refused() {
    let out = tailor(&["eval", "retrieval", "--beir", FIXTURE, "--split", "test", "--b", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("0 ≤ b ≤ 1"), "{}", stderr(&out));
}
