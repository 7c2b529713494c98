//! `tailor eval pii` on presidio-research's synthetic sample (`tests/fixtures/pii/`, MIT): the
//! quality bar of spec/privacy.md, checked on every run.

use serde_json::Value as Json;

use crate::util::{stderr, stdout, tailor};

const SAMPLE: &str = "tests/fixtures/pii/presidio_generated_small.json";

fn eval(extra: &[&str]) -> Json {
    let mut args = vec!["eval", "pii", "--presidio", SAMPLE];
    args.extend_from_slice(extra);
    let out = tailor(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("one JSON object")
}

#[test]
fn structured_identifiers_reach_095_precision_and_recall() {
    let report = eval(&["--entities", "EMAIL_ADDRESS,PHONE_NUMBER,CREDIT_CARD,IBAN_CODE,US_SSN,IP_ADDRESS"]);
    let overall = &report["overall"];
    assert!(overall["precision"].as_f64().unwrap() >= 0.95, "{report}");
    assert!(overall["recall"].as_f64().unwrap() >= 0.95, "{report}");
    assert!(report["per_entity"].get("PERSON").is_none(), "only the chosen entities are scored");
}

#[test]
fn overall_f2_beats_vanilla_presidio() {
    let report = eval(&[]);
    // Vanilla Presidio's published F2 on its synthetic set.
    assert!(report["overall"]["f2"].as_f64().unwrap() > 0.618, "{report}");
    for entity in ["PERSON", "LOCATION", "PHONE_NUMBER", "CREDIT_CARD"] {
        let e = &report["per_entity"][entity];
        assert!(e["support"].as_u64().unwrap() > 0 && e["f2"].as_f64().unwrap() > 0.5, "{entity}: {e}");
    }
}

#[test]
fn bad_datasets_are_refused_with_the_place() {
    let out = tailor(&["eval", "pii", "--presidio", "tests/fixtures/pii/LICENSE-presidio-research"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not JSON"), "{}", stderr(&out));
    let out = tailor(&["eval", "pii", "--presidio", SAMPLE, "--entities", "SHOE_SIZE"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown entity `SHOE_SIZE`"), "{}", stderr(&out));
}
