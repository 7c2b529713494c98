//! Every example pipeline checks cleanly, has in-file tests, and covers every stage kind.

use std::collections::BTreeSet;

use crate::util::{check, example_files, rel};

#[test]
fn every_example_checks_and_has_tests() {
    let mut kinds = BTreeSet::new();
    for path in example_files() {
        let text = std::fs::read_to_string(&path).expect("example is readable");
        let checked = check(&rel(&path), &text);
        assert!(checked.diagnostics.is_empty(), "{}: {:#?}", rel(&path), checked.diagnostics);
        assert_eq!(checked.pipelines.len(), 1, "{}", rel(&path));
        let p = &checked.pipelines[0];
        assert!(!p.tests.is_empty(), "{} has an in-file test", rel(&path));
        assert!(p.description.is_some(), "{} says what it does", rel(&path));
        kinds.extend(p.stages.iter().map(|s| s.kind));
    }
    assert_eq!(kinds.len(), 5, "the examples cover every stage kind: {kinds:?}");
}

#[test]
fn stages_are_in_topological_order() {
    for path in example_files() {
        let text = std::fs::read_to_string(&path).expect("example is readable");
        let p = check(&rel(&path), &text).pipelines.remove(0);
        for (i, stage) in p.stages.iter().enumerate() {
            assert_eq!(stage.id.index(), i);
            assert!(stage.deps.iter().all(|d| d.index() < i), "{}: {} reads a later stage", rel(&path), stage.label);
        }
    }
}
