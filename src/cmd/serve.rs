//! `tailor serve`: the daemon (spec/daemon.md); `tailor keys`: its API keys.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tailor_engine::daemon::{self, DaemonConfig, KeyHash};

use crate::Outcome;

pub fn run(config: &Path, listen: Option<SocketAddr>, store: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let mut config = match DaemonConfig::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Outcome::ConfigErrors);
        }
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    if let Some(store) = store {
        config.store = store;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(async {
        let running = match daemon::start(config).await {
            Ok(r) => r,
            Err(e @ daemon::StartError::Files(_)) | Err(e @ daemon::StartError::Config(_)) => {
                eprintln!("{e}");
                return Ok(Outcome::ConfigErrors);
            }
            Err(e) => return Err(anyhow::Error::new(e)),
        };
        let generation = running.app.reloader.current();
        let names: Vec<&str> = generation.pipelines.keys().map(String::as_str).collect();
        // One line a supervisor (or a test) can wait for.
        eprintln!("listening on http://{} (pipelines: {})", running.addr, names.join(", "));
        running.until_signalled().await;
        eprintln!("stopped");
        Ok(Outcome::Ok)
    })
}

pub fn new_key(tenant: Option<&str>, admin: bool) -> anyhow::Result<Outcome> {
    let key = daemon::new_key().map_err(anyhow::Error::msg)?;
    let hash = KeyHash::of(&key).to_text();
    println!("key: {key}");
    if admin {
        println!("config line: admin-key \"{hash}\"");
    } else {
        let tenant = tenant.unwrap_or("default");
        println!("config line (inside `tenant \"{tenant}\" {{ … }}`): key \"{hash}\"");
    }
    eprintln!("The key is shown only now; tailor.kdl keeps only its SHA-256.");
    Ok(Outcome::Ok)
}

pub fn hash_key() -> anyhow::Result<Outcome> {
    let mut key = String::new();
    std::io::stdin().read_to_string(&mut key).context("reading the key from stdin")?;
    let key = key.trim();
    anyhow::ensure!(!key.is_empty(), "no key on stdin");
    println!("{}", KeyHash::of(key).to_text());
    Ok(Outcome::Ok)
}
