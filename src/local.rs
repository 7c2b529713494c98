//! What the commands that run pipelines share: the store on disk, users' histories over it,
//! the plugin registry, the LLM, and the executor, put together for one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tailor_engine::exec::{Executor, MemoryStageCache, StageCache};
use tailor_engine::host::PluginHost;
use tailor_engine::host::services::{Embed, Services, SystemClock};
use tailor_engine::llm::{LazyLocal, OpenAi, OpenAiConfig};
use tailor_engine::registry::Registry;
use tailor_engine::retrieval::UserIndexConfig;
use tailor_engine::store::{DenseSetup, EmbedWith, Histories, SqliteStore, Store, StoreKv};

/// The environment variable naming the store file when `--store` is not given.
pub const STORE_ENV: &str = "TAILOR_STORE";

/// The store file: `--store`, else $TAILOR_STORE, else $XDG_DATA_HOME/tailor/tailor.db, else
/// ~/.local/share/tailor/tailor.db.
pub fn store_path(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = env(STORE_ENV) {
        return Ok(p);
    }
    let data = env("XDG_DATA_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| h.join(".local/share")))
        .context("no --store, $TAILOR_STORE or $HOME to put the store in")?;
    Ok(data.join("tailor/tailor.db"))
}

/// Where the LLM is: an OpenAI-compatible server, or (by default) the embedded SmolLM2.
#[derive(Debug, Clone, Default)]
pub struct LlmChoice {
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub timeout: Option<Duration>,
}

impl LlmChoice {
    /// `--llm`, else $TAILOR_LLM_URL; `--model`, else $TAILOR_LLM_MODEL; the key from
    /// $TAILOR_LLM_API_KEY (never a flag, so it stays out of shell history and `ps`).
    pub fn from_flags(url: Option<String>, model: Option<String>) -> LlmChoice {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        LlmChoice {
            url: url.or_else(|| env("TAILOR_LLM_URL")),
            model: model.or_else(|| env("TAILOR_LLM_MODEL")),
            api_key: env("TAILOR_LLM_API_KEY"),
            timeout: None,
        }
    }
}

/// One process's engine.
pub struct Local {
    pub runtime: tokio::runtime::Runtime,
    pub registry: Registry,
    pub histories: Arc<Histories>,
    pub executor: Executor,
    pub services: Services,
}

impl Local {
    /// Opens the store and loads the plugins; the text encoder is loaded (and fetched, the first
    /// time) only when `dense` is set.
    pub fn open(store: Arc<dyn Store>, plugin_dirs: &[PathBuf], llm: &LlmChoice, dense: bool) -> anyhow::Result<Local> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
        let registry = runtime.block_on(async {
            let host = Arc::new(PluginHost::new().context("starting the plugin host")?);
            let registry = Registry::with_builtins(host).await.context("loading the built-in plugins")?;
            for dir in plugin_dirs {
                for failure in registry.load_dir(dir).await {
                    eprintln!("{}", crate::plugins::human_failure(&failure));
                }
            }
            anyhow::Ok(registry)
        })?;
        let dense = if dense { Some(DenseSetup::minilm().map_err(anyhow::Error::msg)?) } else { None };
        let embed = dense.as_ref().map(|d| Arc::new(EmbedWith(Arc::clone(&d.embedder))) as Arc<dyn Embed>);
        let cache: Arc<dyn StageCache> = Arc::new(MemoryStageCache::new(4096));
        let histories = Arc::new(
            Histories::new(Arc::clone(&store), dense, UserIndexConfig::default()).with_cache(Arc::clone(&cache)),
        );
        let complete = match &llm.url {
            Some(url) => {
                let mut config = OpenAiConfig::new(url.clone(), llm.model.clone().unwrap_or_else(|| "default".into()));
                config.api_key = llm.api_key.clone();
                if let Some(t) = llm.timeout {
                    config.timeout = t;
                }
                let client = OpenAi::new(config).map_err(anyhow::Error::msg)?;
                Some(Arc::new(client) as Arc<dyn tailor_engine::host::services::Complete>)
            }
            None => Some(Arc::new(LazyLocal::default()) as Arc<dyn tailor_engine::host::services::Complete>),
        };
        let services = Services {
            search: Some(Arc::clone(&histories) as _),
            embed,
            complete,
            kv: Some(Arc::new(StoreKv(Arc::clone(&store)))),
            clock: Arc::new(SystemClock),
        };
        let executor = Executor::new(Arc::clone(registry.host()), cache);
        Ok(Local { runtime, registry, histories, executor, services })
    }

    /// The store file at `path`, opened (and created or migrated).
    pub fn open_store(path: &Path) -> anyhow::Result<Arc<dyn Store>> {
        Ok(Arc::new(SqliteStore::open(path)?))
    }
}
