//! The daemon: `tailor serve` (spec/daemon.md, spec/openapi.yaml).
//!
//! hyper 1.x over tokio. `/healthz` and `/readyz` are open; every `/v1/` route needs a key
//! (`Authorization: Bearer`), which names a tenant — or the admin key, for reloads and
//! `/metrics`. Everything a tenant's key reaches is that tenant's: the store binds every
//! statement to it. Each request has a body size limit and a deadline; beyond the concurrency
//! limit a request is answered 503 with `Retry-After` at once. Errors are JSON with a stable
//! `code`. SIGTERM (or ctrl-c) stops accepting, lets requests in flight finish (up to
//! `limits { drain }`), flushes traces and exits; SIGHUP reloads.

mod chat;
pub mod config;
mod http;
pub use self::http::ROUTES;
pub mod metrics;
pub mod reload;
mod tap;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

pub use self::config::{ConfigError, DaemonConfig, KeyHash};
use self::metrics::Metrics;
use self::reload::{Reloader, Trigger};
use self::telemetry::Tracing;
use crate::exec::{Executor, MemoryStageCache, StageCache};
use crate::host::PluginHost;
use crate::host::services::{Complete, Embed, Services, SystemClock};
use crate::llm::{LazyLocal, Llm, OpenAi, OpenAiConfig};
use crate::registry::Registry;
use crate::retrieval::UserIndexConfig;
use crate::store::{DenseSetup, EmbedWith, Histories, SqliteStore, Store, StoreKv};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("the pipelines or plugins do not load:\n{}", .0.join("\n"))]
    Files(Vec<String>),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: std::net::SocketAddr, message: String },
}

/// Everything a request may reach.
pub struct App {
    pub config: DaemonConfig,
    pub reloader: Reloader,
    pub store: Arc<dyn Store>,
    pub histories: Arc<Histories>,
    pub executor: Executor,
    pub services: Services,
    pub llm: Arc<dyn Llm>,
    pub metrics: Metrics,
    pub tracing: Arc<Tracing>,
    pub limiter: Arc<tokio::sync::Semaphore>,
}

impl App {
    /// Opens the store, loads the plugins and pipelines, connects the LLM.
    pub async fn open(config: DaemonConfig) -> Result<Arc<App>, StartError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| StartError::Setup(format!("{what}: {e}"));
        if let Some(parent) = config.store.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| setup(&format!("creating {}", parent.display()), &e))?;
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.store).map_err(|e| setup("the store", &e))?);
        let host = Arc::new(PluginHost::new().map_err(|e| setup("the plugin host", &e))?);
        let builtins = Registry::with_builtins(Arc::clone(&host)).await.map_err(|e| setup("built-in plugins", &e))?;
        let reloader =
            Reloader::start(Arc::clone(&host), builtins.snapshot(), config.pipelines.clone(), config.plugins.clone())
                .await
                .map_err(StartError::Files)?;
        let dense = if config.embed { Some(DenseSetup::minilm().map_err(StartError::Setup)?) } else { None };
        let embed = dense.as_ref().map(|d| Arc::new(EmbedWith(Arc::clone(&d.embedder))) as Arc<dyn Embed>);
        let cache: Arc<dyn StageCache> = Arc::new(MemoryStageCache::new(16_384));
        let histories = Arc::new(
            Histories::new(Arc::clone(&store), dense, UserIndexConfig::default()).with_cache(Arc::clone(&cache)),
        );
        let (llm, complete): (Arc<dyn Llm>, Arc<dyn Complete>) = match &config.llm {
            config::LlmConfig::Local => {
                let local = Arc::new(LazyLocal::default());
                (local.clone(), local)
            }
            config::LlmConfig::OpenAi { url, model, api_key_env, timeout } => {
                let mut c = OpenAiConfig::new(url.clone(), model.clone());
                if let Some(var) = api_key_env {
                    c.api_key =
                        Some(std::env::var(var).map_err(|_| {
                            StartError::Setup(format!("llm: api-key-env names ${var}, which is not set"))
                        })?);
                }
                if let Some(t) = timeout {
                    c.timeout = *t;
                }
                let client = Arc::new(OpenAi::new(c).map_err(|e| setup("the LLM client", &e))?);
                (client.clone(), client)
            }
        };
        let services = Services {
            search: Some(Arc::clone(&histories) as _),
            embed,
            complete: Some(complete),
            kv: Some(Arc::new(StoreKv(Arc::clone(&store)))),
            clock: Arc::new(SystemClock),
        };
        let executor = Executor::new(host, cache);
        let tracing = Arc::new(Tracing::new(&config.telemetry, &config.llm).map_err(StartError::Setup)?);
        let metrics = Metrics::new();
        metrics.generation.set(reloader.current().version as i64);
        let limiter = Arc::new(tokio::sync::Semaphore::new(config.limits.concurrency));
        Ok(Arc::new(App { config, reloader, store, histories, executor, services, llm, metrics, tracing, limiter }))
    }

    /// Reloads and counts it.
    pub async fn reload(&self, trigger: Trigger) -> reload::Outcome {
        let outcome = self.reloader.reload(trigger).await;
        let result = serde_json::to_value(outcome.outcome).unwrap_or_default();
        let labels = vec![
            ("trigger", serde_json::to_value(trigger).unwrap_or_default().as_str().unwrap_or("").to_owned()),
            ("outcome", result.as_str().unwrap_or("").to_owned()),
        ];
        self.metrics.reloads.get_or_create(&labels).inc();
        self.metrics.generation.set(outcome.version as i64);
        match outcome.outcome {
            reload::Status::RolledBack => {
                eprintln!("reload ({trigger:?}) refused, still serving version {}:", outcome.version);
                for e in &outcome.errors {
                    eprintln!("  {e}");
                }
            }
            reload::Status::Applied => eprintln!(
                "reload ({trigger:?}): now serving version {} (pipelines {:?}, plugins {:?})",
                outcome.version, outcome.pipelines, outcome.plugins
            ),
            reload::Status::Unchanged => {}
        }
        outcome
    }
}

/// A running daemon.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub app: Arc<App>,
    task: tokio::task::JoinHandle<()>,
    stop: Arc<tokio::sync::Notify>,
}

impl Running {
    /// Stops accepting, drains, flushes traces.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }

    /// Runs until SIGTERM or ctrl-c; SIGHUP reloads.
    pub async fn until_signalled(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            eprintln!("cannot install signal handlers; stopping");
            return self.shutdown().await;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = hup.recv() => {
                    self.app.reload(Trigger::Signal).await;
                }
            }
        }
        eprintln!("stopping: draining requests in flight (at most {:?})", self.app.config.limits.drain);
        self.shutdown().await;
    }
}

/// Starts serving on the configured address (port 0 picks a free one).
pub async fn start(config: DaemonConfig) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen { addr: config.listen, message: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen { addr: config.listen, message: e.to_string() })?;
    let app = App::open(config).await?;
    let watcher = if app.config.reload.watch { Some(watch(Arc::clone(&app))?) } else { None };
    let stop = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(http::serve(listener, Arc::clone(&app), Arc::clone(&stop), watcher));
    Ok(Running { addr, app, task, stop })
}

/// Watches the pipelines and plugins directories; a change reloads once the files have been
/// quiet for the debounce time.
fn watch(app: Arc<App>) -> Result<(notify::RecommendedWatcher, tokio::task::JoinHandle<()>), StartError> {
    use notify::Watcher as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Pipeline files and plugins only: a store or a log kept in the same directory must not
        // reload everything on every write.
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|p| p.extension().is_some_and(|e| e == "kdl" || e == "wasm"))
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| StartError::Setup(format!("watching files: {e}")))?;
    for dir in app.reloader.watched_dirs() {
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .map_err(|e| StartError::Setup(format!("watching {}: {e}", dir.display())))?;
    }
    let debounce = app.config.reload.debounce;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait for quiet.
            while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
            app.reload(Trigger::Watch).await;
        }
    });
    Ok((watcher, task))
}

/// A new API key: 32 bytes from the operating system's secure generator, in hex, prefixed so
/// it is recognisable in a leak scan.
pub fn new_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the system's random generator: {e}"))?;
    Ok(format!("tlr_{}", crate::host::hex(&bytes)))
}

/// How long a client should wait before retrying an overloaded daemon.
const RETRY_AFTER: Duration = Duration::from_secs(1);
