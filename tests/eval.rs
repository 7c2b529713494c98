//! `tailor eval pipeline` on the sample dataset (`examples/eval/ratings.jsonl`) with
//! `examples/review-rating.kdl`, against a fake OpenAI-compatible LLM on loopback: the scores
//! match hand-computed values, a rerun redoes nothing, and a run stopped with SIGINT resumes
//! without redoing finished rows.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tailor_engine::llm::testing::{FakeLlm, Reply};

use crate::util::{root, stderr, stdout, tailor};

const DATASET: &str = "examples/eval/ratings.jsonl";
const PIPELINE: &str = "examples/review-rating.kdl";
/// The sample's gold ratings, in file order.
const GOLDS: [f64; 12] = [5., 2., 5., 3., 1., 3., 1., 2., 4., 2., 5., 4.];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn generations(llm: &FakeLlm) -> usize {
    llm.requests().iter().filter(|(path, _)| path.ends_with("/chat/completions")).count()
}

#[test]
fn pipeline_eval_scores_the_sample_dataset_and_a_rerun_redoes_nothing() {
    let rt = runtime();
    let llm = rt.block_on(FakeLlm::always(Reply::Text("4".into())));
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let results = dir.join("results.jsonl");
    let args = [
        "eval",
        "pipeline",
        PIPELINE,
        "--dataset",
        DATASET,
        "--results",
        results.to_str().unwrap(),
        "--llm",
        &llm.url(),
        "--model",
        "fake",
    ];
    let out = tailor(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    // Every prediction is "4": MAE = mean |4 − gold|, RMSE = sqrt(mean (4 − gold)²).
    let mae = GOLDS.iter().map(|g| (4.0 - g).abs()).sum::<f64>() / 12.0;
    let rmse = (GOLDS.iter().map(|g| (4.0 - g).powi(2)).sum::<f64>() / 12.0).sqrt();
    assert!((mae - 17.0 / 12.0).abs() < 1e-12 && (rmse - (35.0f64 / 12.0).sqrt()).abs() < 1e-12);
    assert_eq!(report["rows"], 12);
    assert!((report["metrics"]["mae"].as_f64().unwrap() - mae).abs() < 1e-9, "{report:#}");
    assert!((report["metrics"]["rmse"].as_f64().unwrap() - rmse).abs() < 1e-9, "{report:#}");
    assert_eq!(report["failed_rows"], 0, "{report:#}");
    assert!(report["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(report["stage_p50_ms"]["rate"].as_f64().is_some(), "{report:#}");
    assert_eq!(generations(&llm), 12, "one LLM call per row");
    let lines = std::fs::read_to_string(&results).unwrap();
    assert_eq!(lines.lines().count(), 12);

    let again = tailor(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("12 of 12 rows already done"), "{}", stderr(&again));
    assert_eq!(generations(&llm), 12, "a rerun calls the LLM for no row");
    let report2: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(report2["metrics"], report["metrics"]);

    // A changed pipeline never mixes with the old one's rows.
    let changed = dir.join("changed.kdl");
    let text = std::fs::read_to_string(root().join(PIPELINE)).unwrap();
    std::fs::write(&changed, text.replace("k 5", "k 4")).unwrap();
    let mixed = tailor(&[
        "eval",
        "pipeline",
        changed.to_str().unwrap(),
        "--dataset",
        DATASET,
        "--results",
        results.to_str().unwrap(),
        "--llm",
        &llm.url(),
        "--model",
        "fake",
    ]);
    assert_eq!(mixed.status.code(), Some(1));
    assert!(stderr(&mixed).contains("another version"), "{}", stderr(&mixed));
}

#[test]
fn an_interrupted_eval_resumes_without_redoing_finished_rows() {
    let rt = runtime();
    let llm =
        rt.block_on(FakeLlm::always(Reply::Delayed(Duration::from_millis(300), Box::new(Reply::Text("3".into())))));
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let results = dir.join("results.jsonl");
    let args: Vec<String> = [
        "eval",
        "pipeline",
        PIPELINE,
        "--dataset",
        DATASET,
        "--results",
        results.to_str().unwrap(),
        "--llm",
        &llm.url(),
        "--model",
        "fake",
        "--concurrency",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let done_lines = || std::fs::read_to_string(&results).map(|t| t.lines().count()).unwrap_or(0);
    while done_lines() < 3 {
        assert!(Instant::now() < until, "no rows finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let before = std::fs::read_to_string(&results).unwrap();
    let finished = before.lines().count();
    assert!((3..12).contains(&finished), "{finished} rows finished before the interrupt");
    assert_eq!(generations(&llm), finished, "every started row was saved");

    let rest = tailor(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(rest.status.success(), "{}", stderr(&rest));
    assert!(stderr(&rest).contains(&format!("{finished} of 12 rows already done")), "{}", stderr(&rest));
    let after = std::fs::read_to_string(&results).unwrap();
    assert!(after.starts_with(&before), "finished rows are kept as they were");
    assert_eq!(after.lines().count(), 12);
    assert_eq!(generations(&llm), 12, "no finished row ran again");
    let report: serde_json::Value = serde_json::from_str(&stdout(&rest)).unwrap();
    let mae = GOLDS.iter().map(|g| (3.0 - g).abs()).sum::<f64>() / 12.0;
    assert!((report["metrics"]["mae"].as_f64().unwrap() - mae).abs() < 1e-9, "{report:#}");
}

#[test]
fn a_bad_dataset_is_refused_with_every_line_that_is_wrong() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let data = dir.join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"id\": \"1\", \"user\": \"u\", \"input\": \"x\", \"output\": \"3\"}\n\
         {\"id\": \"2\", \"user\": \"u\", \"input\": \"x\"}\n\
         not json\n\
         {\"id\": \"1\", \"user\": \"u\", \"input\": \"x\", \"output\": \"4\"}\n",
    )
    .unwrap();
    let out = tailor(&["eval", "pipeline", PIPELINE, "--dataset", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("3 bad line(s)"), "{err}");
    assert!(err.contains("bad.jsonl:2: `output` is missing"), "{err}");
    assert!(err.contains("bad.jsonl:3: not JSON"), "{err}");
    assert!(err.contains("bad.jsonl:4: id `1` appears twice"), "{err}");
}

#[test]
fn lamp_files_convert_to_a_dataset_the_harness_reads() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(
        dir.join("questions.json"),
        r#"[{"id": "310", "input": "Which reference? [1] or [2]", "profile": [{"id": "a", "title": "T", "abstract": "A."}, {"id": "b", "text": "x", "score": "4"}]},
            {"id": "311", "input": "no gold", "profile": []}]"#,
    )
    .unwrap();
    std::fs::write(dir.join("outputs.json"), r#"{"task": "LaMP_1", "golds": [{"id": "310", "output": "[1]"}]}"#)
        .unwrap();
    let out = Command::new("python3")
        .arg(root().join("scripts/lamp_to_jsonl.py"))
        .args([dir.join("questions.json"), dir.join("outputs.json")])
        .args(["--kind", "paper"])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 questions have no gold output"));
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["user"], "310");
    assert_eq!(rows[0]["output"], "[1]");
    assert_eq!(
        rows[0]["profile"][0],
        serde_json::json!({"id": "a", "kind": "paper", "text": "T", "fields": {"abstract": "A."}})
    );
    // The harness accepts it (and refuses the pipeline's missing text input only after loading).
    std::fs::write(dir.join("lamp.jsonl"), &out.stdout).unwrap();
    let loaded = tailor(&[
        "eval",
        "pipeline",
        PIPELINE,
        "--dataset",
        dir.join("lamp.jsonl").to_str().unwrap(),
        "--metric",
        "accuracy",
        "--llm",
        "http://127.0.0.1:9/v1",
        "--results",
        dir.join("r.jsonl").to_str().unwrap(),
    ]);
    assert!(!stderr(&loaded).contains("bad line"), "{}", stderr(&loaded));
}

/// Headless Chromium as the probe runs it (no sandbox as root, no network chatter).
fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is needed for the report test (`make test-setup` installs Debian's `chromium`)");
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[test]
fn the_report_opens_in_headless_chromium_and_shows_its_charts() {
    let rt = runtime();
    let llm = rt.block_on(FakeLlm::always(Reply::Text("4".into())));
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Two versions of the pipeline, compared on the same rows.
    let other = dir.join("fewer-examples.kdl");
    let text = std::fs::read_to_string(root().join(PIPELINE)).unwrap();
    std::fs::write(&other, text.replace("k 5", "k 2")).unwrap();
    let report = dir.join("report");
    let out = tailor(&[
        "eval",
        "pipeline",
        "--compare",
        PIPELINE,
        other.to_str().unwrap(),
        "--dataset",
        DATASET,
        "--results",
        dir.join("r.jsonl").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--resamples",
        "200",
        "--llm",
        &llm.url(),
        "--model",
        "fake",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["pipelines"].as_array().unwrap().len(), 2, "{summary:#}");
    let mae = &summary["comparison"][0];
    assert_eq!(mae["metric"], "mae");
    // The same predictions for both: no difference, an interval of [0, 0].
    assert_eq!((mae["difference"].as_f64(), mae["significant"].as_bool()), (Some(0.0), Some(false)), "{summary:#}");
    for png in ["metrics.png", "latency.png", "stages.png"] {
        let bytes = std::fs::read(report.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{png} is a PNG");
    }
    let index = report.join("index.html");
    let url = format!("file://{}", index.display());
    let profile = dir.join("chromium-profile");

    // The browser decodes every chart (the page counts them once loaded).
    let dom = chromium(&["--virtual-time-budget=5000", "--dump-dom", &url], &profile);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom_text.contains("data-charts-loaded=\"3\""), "{}\n{}", dom_text, String::from_utf8_lossy(&dom.stderr));

    // And they are on the screen: the first pipeline's bar colour fills a good part of it.
    let shot = dir.join("report.png");
    let taken = chromium(
        &["--window-size=1200,3000", "--virtual-time-budget=5000", &format!("--screenshot={}", shot.display()), &url],
        &profile,
    );
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&taken.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let [r, g, b] = [31i32, 119, 180];
    let bar_pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| (p[0] as i32 - r).abs() < 12 && (p[1] as i32 - g).abs() < 12 && (p[2] as i32 - b).abs() < 12)
        .count();
    assert!(bar_pixels > 5_000, "only {bar_pixels} pixels of the charts' first colour in the screenshot");
}
