//! `tailor ingest`, `run` and `test` end to end: the real binary, a store on disk, and a fake
//! OpenAI-compatible server on loopback as the LLM.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value as Json;
use tailor_engine::llm::testing::{FakeLlm, Reply};

use crate::util::{TempDir, root, stderr, stdout, tailor_at};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn run(args: &[&str], store: &Path) -> std::process::Output {
    let env: [(&str, &OsStr); 1] = [("TAILOR_STORE", store.as_os_str())];
    tailor_at(&root(), args, None, &env)
}

fn ingest(user: &str, file: &str, store: &Path) {
    let out = run(&["ingest", "--no-embed", "--user", user, file], store);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Every text the fake LLM received, joined.
fn prompts(server: &FakeLlm) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|(_, body)| {
            body["messages"].as_array().map_or(String::new(), |m| {
                m.iter().map(|m| m["content"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join("\n")
            })
        })
        .collect()
}

#[test]
fn the_llm_sees_the_users_own_history_and_no_one_elses() {
    let rt = runtime();
    let server = rt.block_on(FakeLlm::always(Reply::Echo { prefix: "echo: ".into() }));
    let dir = TempDir::new("run-isolation");
    let store = dir.path().join("tailor.db");
    ingest("ana", "examples/users/ana.jsonl", &store);
    ingest("ben", "examples/users/ben.jsonl", &store);
    let url = server.url();
    let ask = |user: &str| {
        let args = [
            "run",
            "tests/fixtures/run/context.kdl",
            "--user",
            user,
            "--llm",
            &url,
            "--format",
            "json",
            "--input",
            "question=what shoes and jacket for running in the rain?",
        ];
        let out = run(&args, &store);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Json>(&stdout(&out)).unwrap()
    };
    let ana = ask("ana");
    let seen = prompts(&server).concat();
    assert!(seen.contains("Any tips for trail running in the rain?"), "{seen}");
    assert!(seen.contains("Looking for a lightweight rain jacket"), "{seen}");
    for theirs in ["ragù", "jazz", "espresso", "knees"] {
        assert!(!seen.contains(theirs), "ana's request carries ben's `{theirs}`: {seen}");
    }
    let before = server.requests().len();
    let ben = ask("ben");
    let bens: String = prompts(&server)[before..].concat();
    assert!(bens.contains("My knees do not like running on pavement"), "{bens}");
    assert!(!bens.contains("trail running") && !bens.contains("rain jacket"), "{bens}");
    assert_eq!(ana["output"].as_array().unwrap().len(), 2, "n = 2 candidates");
    assert_ne!(ana["output"], ben["output"], "the same question gets a different answer per user");
    let body = &server.requests()[0].1;
    assert_eq!(body["n"], 2);
}

#[test]
fn explain_shows_each_stage() {
    let rt = runtime();
    let server = rt.block_on(FakeLlm::always(Reply::Echo { prefix: String::new() }));
    let dir = TempDir::new("run-explain");
    let store = dir.path().join("tailor.db");
    ingest("ana", "examples/users/ana.jsonl", &store);
    let url = server.url();
    let out = run(
        &[
            "run",
            "tests/fixtures/run/context.kdl",
            "--user",
            "ana",
            "--llm",
            &url,
            "--explain",
            "--input",
            "question=rain",
        ],
        &store,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("stage found (builtin:retrieve@"), "{text}");
    assert!(text.contains("stage answer (builtin:generate@"), "{text}");
    assert!(text.contains("in  query = \"rain\""), "{text}");
    assert!(text.contains("out items = ("), "{text}");
}

#[test]
fn a_failing_llm_fails_the_run_with_its_error() {
    let rt = runtime();
    let server = rt.block_on(FakeLlm::always(Reply::status(400, "no such model")));
    let dir = TempDir::new("run-llm-error");
    let store = dir.path().join("tailor.db");
    ingest("ana", "examples/users/ana.jsonl", &store);
    let url = server.url();
    let out = run(
        &["run", "tests/fixtures/run/context.kdl", "--user", "ana", "--llm", &url, "--input", "question=x"],
        &store,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("stage `answer` failed") && err.contains("no such model"), "{err}");
}

#[test]
fn ingest_reports_bad_lines_and_keeps_the_good_ones() {
    let dir = TempDir::new("ingest-bad");
    let store = dir.path().join("tailor.db");
    let file = dir.path().join("items.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"text\": \"trail shoes\"}\n{\"id\": \"b\"}\nnot json\n\n{\"id\": \"c\", \"text\": \"trail map\", \"timestamp\": \"2026-01-02\"}\n",
    )
    .unwrap();
    let out = run(&["ingest", "--no-embed", "--user", "u", file.to_str().unwrap()], &store);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("items.jsonl:2: skipped: `text` is required"), "{err}");
    assert!(err.contains("items.jsonl:3: skipped: not JSON"), "{err}");
    assert!(err.contains("ingested 2 items"), "{err}");
    let pipeline = dir.path().join("found.kdl");
    std::fs::write(
        &pipeline,
        r#"pipeline "found" {
            input "q" type="text"
            stage "found" use="builtin:retrieve" grants="search" {
                query "input.q"
                method "bm25"
            }
            output "found.items"
        }"#,
    )
    .unwrap();
    let out =
        run(&["run", pipeline.to_str().unwrap(), "--user", "u", "--input", "q=trail", "--format", "json"], &store);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Json = serde_json::from_str(&stdout(&out)).unwrap();
    let mut ids: Vec<&str> = got["output"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "c"]);
}

#[test]
fn run_refuses_bad_inputs_with_the_reason() {
    let dir = TempDir::new("run-inputs");
    let store = dir.path().join("tailor.db");
    for (args, want) in [
        (vec!["--input", "nope=1"], "`nope` is not an input"),
        (vec![], "input `question` is required"),
        (vec!["--input-json", "[1]"], "must be a JSON object"),
        (vec!["--input", "question"], "expected NAME=VALUE"),
    ] {
        let mut all = vec!["run", "tests/fixtures/run/context.kdl", "--user", "u"];
        all.extend(args);
        let out = run(&all, &store);
        assert_eq!(out.status.code(), Some(1), "{want}");
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
    }
}

#[test]
fn tailor_test_passes_and_points_at_a_failing_expect() {
    let rt = runtime();
    let server = rt.block_on(FakeLlm::always(Reply::Echo { prefix: String::new() }));
    let url = server.url();
    let dir = TempDir::new("test-cmd");
    let store = dir.path().join("unused.db");
    let out = run(&["test", "tests/fixtures/run/context.kdl", "--llm", &url], &store);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 passed, 0 failed"), "{}", stdout(&out));
    let out = run(&["test", "tests/fixtures/run/failing.kdl"], &store);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  tests/fixtures/run/failing.kdl › failing › expects an item that is not there"),
        "{text}"
    );
    assert!(
        text.contains("tests/fixtures/run/failing.kdl:20:17: expect \"found.items[0].id == 'zzz'\": it is false"),
        "{text}"
    );
    assert!(text.contains("0 passed, 1 failed"), "{text}");
}

#[test]
fn every_example_passes_its_in_file_tests() {
    // The LLM answers "4" to everything: the examples' tests check structure (candidates,
    // retrieval, redaction, a rating), which must hold whatever a model says.
    let rt = runtime();
    let server = rt.block_on(FakeLlm::always(Reply::Text("4".into())));
    let url = server.url();
    let dir = TempDir::new("test-examples");
    let store = dir.path().join("unused.db");
    let out = run(&["test", "examples/", "--llm", &url], &store);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("4 passed, 0 failed"), "{text}");
}
