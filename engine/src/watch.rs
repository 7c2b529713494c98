//! Hot loading: a plugins directory watched while the engine serves.
//!
//! A new or changed `.wasm` file is compiled in the background, ABI-checked and health-checked
//! (its `describe()` must answer with a valid descriptor) by [`Registry::load_file`], then
//! swapped into the catalog atomically: calls in flight finish on the version they started
//! with. A file that fails leaves the previous version serving and is reported. A removed file
//! takes its plugin with it. Only `*.wasm` files are considered: precompiled code (`.cwasm`) is
//! never loaded from outside.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::registry::{Registry, RegistryError};

/// What happened to a plugin file.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// The file's plugin is now served.
    Loaded { path: PathBuf, name: String, version: semver::Version, sha256: String },
    /// The file was refused; whatever was served before keeps serving.
    Rejected { path: PathBuf, error: RegistryError },
    /// The file is gone, and its plugin with it.
    Removed { path: PathBuf },
}

/// Watches one directory until dropped.
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PluginWatcher {
    /// Starts watching `dir` (which must exist). Changes are applied once a file has been quiet
    /// for `debounce`; each outcome is sent on the returned channel (dropped events are fine:
    /// the registry is the state, the channel only reports).
    pub fn spawn(
        registry: Arc<Registry>,
        dir: &Path,
        debounce: Duration,
    ) -> Result<(PluginWatcher, mpsc::UnboundedReceiver<WatchEvent>), notify::Error> {
        let (changes_tx, mut changes) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    if path.extension().is_some_and(|e| e == "wasm") {
                        let _ = changes_tx.send(path);
                    }
                }
            }
        })?;
        watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
            loop {
                // Wait for a change, then for quiet.
                if pending.is_empty() {
                    match changes.recv().await {
                        Some(path) => pending.insert(path),
                        None => return,
                    };
                }
                match tokio::time::timeout(debounce, changes.recv()).await {
                    Ok(Some(path)) => {
                        pending.insert(path);
                        continue;
                    }
                    Ok(None) => return,
                    Err(_quiet) => {}
                }
                for path in std::mem::take(&mut pending) {
                    let event = apply(&registry, path).await;
                    let _ = events_tx.send(event);
                }
            }
        });
        Ok((PluginWatcher { _watcher: watcher, task }, events))
    }
}

async fn apply(registry: &Registry, path: PathBuf) -> WatchEvent {
    if !path.exists() {
        registry.unload_file(&path);
        return WatchEvent::Removed { path };
    }
    match registry.load_file(&path).await {
        Ok(entry) => {
            let d = entry.descriptor();
            WatchEvent::Loaded {
                path,
                name: d.name.clone(),
                version: d.version.clone(),
                sha256: entry.plugin.sha256().to_string(),
            }
        }
        Err(error) => WatchEvent::Rejected { path, error },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tailor_dsl::types::Value;

    use super::*;
    use crate::host::{Call, CallContext, PluginHost};

    fn wasm(file: &str) -> Vec<u8> {
        std::fs::read(format!("{}/{file}", env!("TAILOR_PLUGIN_DIR"))).expect("test plugin is built")
    }

    /// Writes a file the way deployments should: to a temporary name, then renamed into place.
    fn install(dir: &Path, name: &str, bytes: &[u8]) {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).expect("write");
        std::fs::rename(&tmp, dir.join(name)).expect("rename");
    }

    async fn next_event(events: &mut mpsc::UnboundedReceiver<WatchEvent>) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("an event in time")
            .expect("watcher alive")
    }

    #[test]
    fn replaces_a_plugin_100_times_under_load_without_a_failed_call() {
        let _alone = crate::host::tests::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async {
            let dir = std::env::temp_dir().join(format!("tailor-hotload-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let versions = [wasm("tailor_test_trivial.wasm"), wasm("tailor_test_trivial_next.wasm")];
            install(&dir, "trivial.wasm", &versions[0]);
            let host = Arc::new(PluginHost::new().expect("host"));
            let registry = Arc::new(Registry::with_builtins(Arc::clone(&host)).await.expect("builtins"));
            assert!(registry.load_dir(&dir).await.is_empty());
            let (_watcher, mut events) =
                PluginWatcher::spawn(Arc::clone(&registry), &dir, Duration::from_millis(20)).expect("watch");

            let stop = Arc::new(AtomicBool::new(false));
            let calls = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for w in 0..2 {
                let (registry, host, stop, calls) =
                    (Arc::clone(&registry), Arc::clone(&host), Arc::clone(&stop), Arc::clone(&calls));
                workers.push(tokio::spawn(async move {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        // A trivial call never waits; let the watcher run between calls.
                        tokio::task::yield_now().await;
                        let catalog = registry.snapshot();
                        let Some(entry) = catalog.iter().find(|e| e.descriptor().name == "test:trivial").cloned()
                        else {
                            failures.push("test:trivial missing from the catalog".to_string());
                            continue;
                        };
                        let mut call = Call::new(CallContext { stage: format!("w{w}"), ..CallContext::default() });
                        call.inputs.push(("text".into(), Value::text(format!("w{w}"))));
                        match entry.plugin.call(&host, call).await {
                            Ok(out) => {
                                let want_version = Value::text(entry.descriptor().version.to_string());
                                if out.outputs
                                    != vec![
                                        ("text".into(), Value::text(format!("w{w}"))),
                                        ("version".into(), want_version),
                                    ]
                                {
                                    failures.push(format!("mixed answer: {:?}", out.outputs));
                                }
                            }
                            Err(e) => failures.push(e.to_string()),
                        }
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    failures
                }));
            }

            // One rename can surface as more than one file event: wait for the version just
            // installed, whatever else is reported on the way.
            let mut loaded = 0;
            for swap in 1..=100 {
                install(&dir, "trivial.wasm", &versions[swap % 2]);
                let want = (swap % 2) as u64 + 1;
                loop {
                    match next_event(&mut events).await {
                        WatchEvent::Loaded { version, .. } if version.minor == want => break,
                        WatchEvent::Loaded { .. } => {}
                        other => panic!("swap {swap}: {other:?}"),
                    }
                }
                loaded += 1;
            }

            // A corrupt file is refused, reported, and the old version keeps serving.
            install(&dir, "trivial.wasm", b"\0asm this is not a component");
            assert!(matches!(next_event(&mut events).await, WatchEvent::Rejected { .. }));
            let still = registry.snapshot();
            let served =
                still.iter().find(|e| e.descriptor().name == "test:trivial").expect("old version still served");
            assert_eq!(served.descriptor().version, semver::Version::new(0, 1, 0));

            stop.store(true, Ordering::Relaxed);
            let mut failures = Vec::new();
            for w in workers {
                failures.extend(w.await.expect("worker"));
            }
            std::fs::remove_dir_all(&dir).ok();
            assert_eq!(loaded, 100);
            assert!(failures.is_empty(), "{} failed calls: {:?}", failures.len(), &failures[..failures.len().min(5)]);
            assert!(calls.load(Ordering::Relaxed) > 100, "the workers kept calling");
        });
    }
}
