//! `tailor test FILE|DIR…`: runs the `test` blocks of pipeline files. Each test gets a fresh
//! in-memory store holding only its `user { … }` history; the pipeline runs with the test's
//! inputs, and every `expect` must hold. A failure names the file, line and column of the
//! expectation that did not hold.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tailor_dsl::check::check_file;
use tailor_dsl::ir::TestCase;
use tailor_engine::exec::{Loaded, RunRequest, unmet_expectations};
use tailor_engine::store::SqliteStore;

use crate::local::{LlmChoice, Local};
use crate::{Outcome, files, report};

pub fn run(paths: &[PathBuf], plugin_dirs: &[PathBuf], llm: &LlmChoice) -> anyhow::Result<Outcome> {
    let files = files::collect(paths)?;
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    for path in &files {
        let file = files::read(path)?;
        // A store per file; each test uses its own tenant, so tests never see each other's users.
        let store = Arc::new(SqliteStore::in_memory()?);
        let local = Local::open(store, plugin_dirs, llm, true)?;
        let catalog = local.registry.snapshot();
        let checked = check_file(&file, &*catalog);
        for d in &checked.diagnostics {
            eprintln!("{}", report::human(d, &file));
        }
        if checked.has_errors() {
            broken += 1;
            continue;
        }
        for (p, pipeline) in checked.pipelines.into_iter().enumerate() {
            let tests = pipeline.tests.clone();
            let loaded = Loaded::new(pipeline);
            for (t, test) in tests.iter().enumerate() {
                let tenant = format!("test-{p}-{t}");
                let started = Instant::now();
                let result = run_one(&local, &loaded, test, &tenant, catalog.clone());
                let ms = started.elapsed().as_secs_f64() * 1e3;
                let name = format!("{} › {} › {}", file.name(), loaded.pipeline.name, test.name);
                match result {
                    Ok(unmet) if unmet.is_empty() => {
                        passed += 1;
                        println!("ok    {name} ({ms:.0} ms)");
                    }
                    Ok(unmet) => {
                        failed += 1;
                        println!("FAIL  {name} ({ms:.0} ms)");
                        for (loc, reason) in unmet {
                            let (line, col) = file.line_col(loc.offset);
                            let src = file.text().get(loc.offset..loc.end()).unwrap_or("");
                            println!("      {}:{line}:{col}: expect {src:?}: {reason}", file.name());
                        }
                    }
                    Err(error) => {
                        failed += 1;
                        let (line, col) = file.line_col(test.loc.offset);
                        println!("FAIL  {name} ({ms:.0} ms)");
                        println!("      {}:{line}:{col}: the pipeline failed: {error}", file.name());
                    }
                }
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed{}",
        if broken > 0 { format!(", {broken} files with errors") } else { String::new() }
    );
    Ok(if broken > 0 {
        Outcome::ConfigErrors
    } else if failed > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Runs one test; the expectations that did not hold, with their locations.
fn run_one(
    local: &Local,
    loaded: &Loaded,
    test: &TestCase,
    tenant: &str,
    catalog: Arc<tailor_engine::registry::Catalog>,
) -> Result<Vec<(tailor_dsl::span::Loc, String)>, String> {
    const USER: &str = "test-user";
    local.runtime.block_on(async {
        let version = if test.history.is_empty() {
            0
        } else {
            local.histories.ingest(tenant, USER, test.history.clone()).await.map_err(|e| e.to_string())?
        };
        let request = RunRequest {
            loaded: loaded.clone(),
            catalog,
            tenant: tenant.to_owned(),
            user: USER.to_owned(),
            inputs: test.inputs.clone(),
            services: local.services.clone(),
            history_version: version,
            request_id: format!("test-{tenant}"),
            deadline: None,
            wrap_complete: None,
        };
        let report = local.executor.run(request).await.map_err(|f| f.error.to_string())?;
        let now = local.services.clock.now();
        Ok(unmet_expectations(test, &report, now).into_iter().map(|u| (u.loc, u.reason)).collect())
    })
}
