//! The plugin registry: the built-in plugins (embedded in the binary) and the `.wasm` files of
//! a plugins directory, loaded through the [`PluginHost`]; their own `describe()` gives the
//! descriptors the checker types stages against.
//!
//! The catalog is immutable and swapped whole ([`arc_swap`]): a reader takes a snapshot and
//! keeps the plugins it found, so a call in flight finishes on the version it started with
//! while a new one is swapped in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tailor_dsl::descriptor::{Descriptor, Registry as DescriptorSource};

use crate::host::{LoadError, Plugin, PluginHost};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

/// A loaded plugin and its origin.
#[derive(Debug)]
pub struct Entry {
    pub plugin: Plugin,
    pub origin: Origin,
}

impl Entry {
    pub fn descriptor(&self) -> &Arc<Descriptor> {
        self.plugin.descriptor()
    }
}

/// The built-in plugins' components, built from `plugins/builtin/` by the build script.
pub const BUILTINS: [(&str, &[u8]); 7] = [
    ("retrieve", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_retrieve.wasm"))),
    ("fuse", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_fuse.wasm"))),
    ("profile", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_profile.wasm"))),
    ("pii-redact", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_pii_redact.wasm"))),
    ("minimize", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_minimize.wasm"))),
    ("generate", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_generate.wasm"))),
    ("judge", include_bytes!(concat!(env!("TAILOR_PLUGIN_DIR"), "/tailor_builtin_judge.wasm"))),
];

/// Every plugin version known at one moment.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: BTreeMap<(String, semver::Version), Arc<Entry>>,
}

impl Catalog {
    /// The entry of exactly this plugin version.
    pub fn get(&self, name: &str, version: &semver::Version) -> Option<&Arc<Entry>> {
        self.entries.get(&(name.to_string(), version.clone()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.values()
    }

    /// A catalog with `entry` added, replacing the same name and version, and any version that
    /// came from the same file.
    pub fn with(&self, entry: Arc<Entry>) -> Catalog {
        let mut entries = self.entries.clone();
        if let Origin::File(path) = &entry.origin {
            entries.retain(|_, e| e.origin != Origin::File(path.clone()));
        }
        let d = entry.descriptor();
        entries.insert((d.name.clone(), d.version.clone()), entry);
        Catalog { entries }
    }

    /// A catalog without the plugins that came from `path`.
    pub fn without_file(&self, path: &Path) -> Catalog {
        let mut entries = self.entries.clone();
        entries.retain(|_, e| e.origin != Origin::File(path.to_path_buf()));
        Catalog { entries }
    }
}

impl DescriptorSource for Catalog {
    fn versions(&self, name: &str) -> Vec<Arc<Descriptor>> {
        self.entries.values().filter(|e| e.descriptor().name == name).map(|e| Arc::clone(e.descriptor())).collect()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.keys().map(|(n, _)| n.clone()).collect();
        names.dedup();
        names
    }
}

/// Why a plugin file was not loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {source}")]
    Load { path: PathBuf, source: LoadError },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: plugin `{name}` may not use the `builtin:` prefix")]
    ReservedName { path: PathBuf, name: String },
    #[error("built-in plugin `{name}` failed to load: {source}")]
    Builtin { name: String, source: LoadError },
}

/// The live registry.
pub struct Registry {
    host: Arc<PluginHost>,
    catalog: ArcSwap<Catalog>,
}

impl Registry {
    /// A registry holding the built-in plugins.
    pub async fn with_builtins(host: Arc<PluginHost>) -> Result<Registry, RegistryError> {
        let mut catalog = Catalog::default();
        for (name, wasm) in BUILTINS {
            let plugin =
                host.load(wasm).await.map_err(|source| RegistryError::Builtin { name: name.to_string(), source })?;
            catalog = catalog.with(Arc::new(Entry { plugin, origin: Origin::Builtin }));
        }
        Ok(Registry { host, catalog: ArcSwap::from_pointee(catalog) })
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// The catalog now; it does not change under the caller.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Loads one `.wasm` file and swaps it in; on any failure the catalog is unchanged.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<Entry>, RegistryError> {
        let wasm = tokio::fs::read(path)
            .await
            .map_err(|e| RegistryError::Io { path: path.to_path_buf(), message: e.to_string() })?;
        let plugin =
            self.host.load(&wasm).await.map_err(|source| RegistryError::Load { path: path.to_path_buf(), source })?;
        let name = plugin.descriptor().name.clone();
        if name.starts_with("builtin:") {
            return Err(RegistryError::ReservedName { path: path.to_path_buf(), name });
        }
        let entry = Arc::new(Entry { plugin, origin: Origin::File(path.to_path_buf()) });
        self.catalog.rcu(|c| Arc::new(c.with(Arc::clone(&entry))));
        Ok(entry)
    }

    /// Forgets the plugins loaded from `path` (the file was removed).
    pub fn unload_file(&self, path: &Path) {
        self.catalog.rcu(|c| Arc::new(c.without_file(path)));
    }

    /// Loads every `*.wasm` in a directory (not recursive, sorted); returns what failed.
    pub async fn load_dir(&self, dir: &Path) -> Vec<RegistryError> {
        let mut failures = Vec::new();
        let mut paths = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>(),
            Err(e) => return vec![RegistryError::Io { path: dir.to_path_buf(), message: e.to_string() }],
        };
        paths.retain(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file());
        paths.sort();
        for path in paths {
            if let Err(e) = self.load_file(&path).await {
                failures.push(e);
            }
        }
        failures
    }
}

/// Loads the built-in plugins and every plugin in `dirs`, blocking: for command-line tools that
/// only need descriptors. Returns the catalog and what failed to load.
pub fn load_catalog(dirs: &[PathBuf]) -> Result<(Arc<Catalog>, Vec<RegistryError>), RegistryError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Io { path: PathBuf::from("<runtime>"), message: e.to_string() })?;
    runtime.block_on(async {
        let host =
            Arc::new(PluginHost::new().map_err(|source| RegistryError::Builtin { name: "host".into(), source })?);
        let registry = Registry::with_builtins(host).await?;
        let mut failures = Vec::new();
        for dir in dirs {
            failures.extend(registry.load_dir(dir).await);
        }
        Ok((registry.snapshot(), failures))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_dsl::descriptor::StageKind;

    fn registry() -> Registry {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            Registry::with_builtins(Arc::new(PluginHost::new().expect("host"))).await.expect("builtins load")
        })
    }

    #[test]
    fn builtins_describe_every_stage_kind() {
        let catalog = registry().snapshot();
        let kinds: std::collections::BTreeSet<StageKind> = catalog.iter().map(|e| e.descriptor().kind).collect();
        assert_eq!(kinds.len(), 5);
        let names = catalog.names();
        assert_eq!(names.len(), BUILTINS.len());
        assert!(names.iter().all(|n| n.starts_with("builtin:")), "{names:?}");
    }
}
