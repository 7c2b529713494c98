//! The plugin host: every stage runs as a WebAssembly component in a sandbox.
//!
//! A [`PluginHost`] owns the wasmtime engine (cranelift, pooling allocator, epoch interruption,
//! on-disk compilation cache) and the linker. [`PluginHost::load`] compiles a component,
//! checks its ABI version, pre-links it ([`wasmtime::component::InstancePre`]) and asks it to
//! `describe()` itself: the result is a [`Plugin`]. [`Plugin::call`] runs one stage call in a
//! fresh `Store`:
//!
//! - capabilities are linked for every plugin but answer only if the stage was granted them; a
//!   call to an ungranted one is refused and fails the stage ([`StageError::Ungranted`]);
//! - WASI is linked deny-by-default: no preopened directories, no environment, no network;
//! - memory is capped ([`CallLimits::memory_bytes`]); guest code yields at every epoch tick, so
//!   one timer caps the wall clock whether the plugin computes or waits in a host call; the
//!   output is capped ([`CallLimits::output_bytes`]) and checked against the descriptor.
//!
//! Traps, deadlines and limit hits become typed [`StageError`]s with the plugin's captured
//! stderr (a panic message); the pipeline's `on-error` policy decides what follows. Nothing a
//! plugin does can panic the host or stall it past the deadline.

mod bindings;
mod complete;
mod convert;
mod embed;
mod kv;
mod log;
mod now;
mod search;
pub mod services;
mod state;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::Digest as _;
use tailor_dsl::descriptor::{Capability, Descriptor};
use tailor_dsl::types::{Type, Value};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use self::bindings::{Stage, StagePre};
pub use self::convert::{Malformed, json_to_value};
use self::services::{ItemFilter, Scope, Services};
use self::state::HostState;
pub use self::state::{LogLevel, LogLine};

/// The plugin ABI this host implements: the version of the `tailor:plugin` WIT package.
pub const ABI_VERSION: semver::Version = semver::Version::new(0, 1, 0);

/// Where this build's plugin components were built (`plugins/`): the built-ins are embedded
/// from there; tests and benchmarks load the test plugins from there.
pub const BUILT_PLUGIN_DIR: &str = env!("TAILOR_PLUGIN_DIR");

/// How the host allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostOptions {
    /// Pre-reserved instance slots (fast instantiation); off, each call maps fresh memory.
    pub pooling: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions { pooling: true }
    }
}

/// How often the epoch advances; deadlines are accurate to about this.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bounds on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub output_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits { timeout: Duration::from_secs(30), memory_bytes: 256 << 20, output_bytes: 16 << 20 }
    }
}

/// Where a call comes from, for the plugin's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    pub request_id: String,
    pub pipeline: String,
    pub stage: String,
}

/// One call of a stage.
#[derive(Clone)]
pub struct Call {
    pub context: CallContext,
    /// Input ports by name; the values' types are the ports' declared types.
    pub inputs: Vec<(String, Value)>,
    pub config: Vec<(String, Value)>,
    /// Capabilities granted to the stage (the ambient ones are added).
    pub grants: BTreeSet<Capability>,
    /// The user the call is for; `None` leaves `search` and `kv` unavailable.
    pub scope: Option<Scope>,
    /// The stage's `where` filter, applied to everything `search` returns.
    pub filter: Option<ItemFilter>,
    pub services: Services,
    pub limits: CallLimits,
}

impl Call {
    /// A call with no inputs, no grants, no user and default limits.
    pub fn new(context: CallContext) -> Self {
        Call {
            context,
            inputs: Vec::new(),
            config: Vec::new(),
            grants: BTreeSet::new(),
            scope: None,
            filter: None,
            services: Services::default(),
            limits: CallLimits::default(),
        }
    }
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// One value per declared output port, in the descriptor's order.
    pub outputs: Vec<(String, Value)>,
    pub logs: Vec<LogLine>,
    /// From a privacy stage: each placeholder it put in and the text it replaced, for the host
    /// to restore in the run's final output (spec/privacy.md). Never visible to other stages.
    pub restore: Vec<(String, String)>,
}

/// The undeclared output in which a privacy plugin hands the host its placeholders.
pub const RESTORE_OUTPUT: &str = "restore";

/// Why a stage call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    #[error("the plugin trapped: {trap}{}", panic_suffix(stderr))]
    Trap { trap: String, stderr: String },
    #[error("the stage ran past its deadline of {}ms", limit.as_millis())]
    Timeout { limit: Duration },
    #[error("the stage reached its memory limit of {limit} bytes{}", panic_suffix(stderr))]
    MemoryLimit { limit: usize, stderr: String },
    #[error("the stage's output is {size} bytes, over its limit of {limit}")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the stage called `{capability}`, which it was not granted")]
    Ungranted { capability: Capability },
    #[error("the plugin returned malformed output: {reason}")]
    MalformedOutput { reason: String },
    #[error("the plugin reported invalid input: {0}")]
    InvalidInput(String),
    #[error("the plugin reported invalid config: {0}")]
    InvalidConfig(String),
    #[error("a capability failed: {0}")]
    Host(String),
    #[error("the plugin failed: {0}")]
    Failed(String),
    #[error("the plugin could not be instantiated: {0}")]
    Instantiate(String),
}

impl StageError {
    /// A stable one-word kind, for metrics and error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            StageError::Trap { .. } => "trap",
            StageError::Timeout { .. } => "timeout",
            StageError::MemoryLimit { .. } => "memory_limit",
            StageError::OutputTooLarge { .. } => "output_too_large",
            StageError::Ungranted { .. } => "ungranted",
            StageError::MalformedOutput { .. } => "malformed_output",
            StageError::InvalidInput(_) => "invalid_input",
            StageError::InvalidConfig(_) => "invalid_config",
            StageError::Host(_) => "host",
            StageError::Failed(_) => "failed",
            StageError::Instantiate(_) => "instantiate",
        }
    }
}

fn panic_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(" (stderr: {stderr})") }
}

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("not a valid component: {0}")]
    Compile(String),
    #[error("the component is not a Tailor plugin: {0}")]
    NotAPlugin(String),
    #[error("the plugin targets ABI {found}, this host implements {ABI_VERSION}")]
    AbiMismatch { found: String },
    #[error("`describe()` failed: {0}")]
    Describe(String),
    #[error("the plugin's descriptor is invalid: {0}")]
    Descriptor(#[from] Malformed),
}

/// The engine, linker and epoch clock shared by every plugin.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<HostState>,
    stop_ticker: Arc<AtomicBool>,
}

/// Bytes of a pooled linear memory (and of an async stack) kept resident between instances.
const KEEP_RESIDENT: usize = 2 << 20;

impl PluginHost {
    /// A host with the pooling allocator and an on-disk compilation cache (wasmtime's own:
    /// keyed by the component's bytes and the compiler's settings; never fed by others).
    pub fn new() -> Result<Self, LoadError> {
        PluginHost::with_options(HostOptions::default())
    }

    pub fn with_options(options: HostOptions) -> Result<Self, LoadError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(512);
        pool.total_core_instances(1024);
        pool.total_memories(1024);
        pool.total_tables(1024);
        pool.max_memory_size(1 << 30);
        // Instances live for one call, so what a slot costs to reuse is paid on every call. By
        // default a freed slot's memory is `madvise`d away and the next instance takes a page
        // fault (and a copy of its data segments) for every page it touches: a quarter of a
        // pipeline's time in the daemon benchmark. Instead keep up to 2 MiB of each memory, and
        // of each async stack, resident and reset only the pages that were written (found with
        // Linux's PAGEMAP_SCAN where the kernel has it, ≥ 6.7). Costs at most 2 MiB of RSS per
        // warm slot (`max_unused_warm_slots`, 100 by default).
        pool.linear_memory_keep_resident(KEEP_RESIDENT);
        pool.table_keep_resident(64 << 10);
        pool.async_stack_keep_resident(KEEP_RESIDENT);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        if options.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        // For profiling plugins: `perf` finds the names of their compiled functions in
        // /tmp/perf-PID.map.
        if std::env::var_os("TAILOR_PLUGIN_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let mut cache_config = wasmtime::CacheConfig::new();
        if let Some(dir) = cache_dir() {
            cache_config.with_directory(dir);
        }
        // A cache that cannot be set up (read-only home, say) only costs compile time.
        if let Ok(cache) = wasmtime::Cache::new(cache_config) {
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Stage::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.weak(), Arc::clone(&stop_ticker));
        std::thread::Builder::new()
            .name("tailor-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| LoadError::Compile(format!("epoch thread: {e}")))?;
        Ok(PluginHost { engine, linker, stop_ticker })
    }

    /// Compiles and checks a component: a `.wasm` file's bytes, never precompiled code.
    pub async fn load(&self, wasm: &[u8]) -> Result<Plugin, LoadError> {
        let engine = self.engine.clone();
        let bytes = wasm.to_vec();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Compile(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let abi = abi_version(&component, &self.engine)?;
        if !abi_compatible(&abi) {
            return Err(LoadError::AbiMismatch { found: abi.to_string() });
        }
        let imports = component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let pre = self.linker.instantiate_pre(&component).map_err(|e| LoadError::NotAPlugin(format!("{e:#}")))?;
        let pre = StagePre::new(pre).map_err(|e| LoadError::NotAPlugin(format!("{e:#}")))?;
        let describe_limits = CallLimits { timeout: Duration::from_secs(5), ..CallLimits::default() };
        let descriptor = describe(&pre, self, describe_limits).await?;
        Ok(Plugin { pre, descriptor: Arc::new(descriptor), sha256: hex(&sha2::Sha256::digest(wasm)), abi, imports })
    }

    fn store(&self, state: HostState) -> Store<HostState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        // Guest code yields to the executor at every epoch tick, so a long call never holds a
        // worker thread and the call's timer (see `Plugin::call`) can end it on time.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Where compiled components are cached: `$TAILOR_CACHE_DIR/wasm`, else
/// `$XDG_CACHE_HOME/tailor/wasm`, else `~/.cache/tailor/wasm`.
fn cache_dir() -> Option<std::path::PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let base = env("TAILOR_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("tailor")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/tailor")))?;
    Some(base.join("wasm"))
}

/// The `tailor:plugin` version a component was built against, from its import and export names.
fn abi_version(component: &Component, engine: &Engine) -> Result<semver::Version, LoadError> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(n, _)| n.to_string()).chain(ty.exports(engine).map(|(n, _)| n.to_string()));
    let mut found: Option<semver::Version> = None;
    for name in names {
        if let Some(rest) = name.strip_prefix("tailor:plugin/") {
            let version = rest
                .split_once('@')
                .and_then(|(_, v)| semver::Version::parse(v).ok())
                .ok_or_else(|| LoadError::NotAPlugin(format!("`{name}` carries no version")))?;
            if found.as_ref().is_some_and(|f| *f != version) {
                return Err(LoadError::NotAPlugin("it mixes versions of the plugin ABI".into()));
            }
            found = Some(version);
        }
    }
    found.ok_or_else(|| LoadError::NotAPlugin("it uses no `tailor:plugin` interface".into()))
}

/// Semver compatibility: same major, and for 0.x the same minor; a plugin built against an
/// older patch (or, past 1.0, an older minor) of the ABI runs on a newer host.
// While the ABI's patch is 0 the patch comparison is an equality; it is written for the next patch.
#[allow(clippy::absurd_extreme_comparisons)]
fn abi_compatible(v: &semver::Version) -> bool {
    if ABI_VERSION.major == 0 {
        v.major == 0 && v.minor == ABI_VERSION.minor && v.patch <= ABI_VERSION.patch
    } else {
        v.major == ABI_VERSION.major && v.minor <= ABI_VERSION.minor
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asks a pre-linked component for its descriptor: no grants, no user, a short deadline.
async fn describe(pre: &StagePre<HostState>, host: &PluginHost, limits: CallLimits) -> Result<Descriptor, LoadError> {
    let state = HostState::new(BTreeSet::new(), None, None, Services::default(), limits.memory_bytes);
    let mut store = host.store(state);
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.call_describe(&mut store).await
    };
    let described = tokio::time::timeout(limits.timeout, run)
        .await
        .map_err(|_| LoadError::Describe("timed out".into()))?
        .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
    Ok(convert::descriptor_from_wit(described)?)
}

/// A loaded, checked plugin, ready to be called any number of times concurrently.
#[derive(Clone)]
pub struct Plugin {
    pre: StagePre<HostState>,
    descriptor: Arc<Descriptor>,
    sha256: String,
    abi: semver::Version,
    imports: Vec<String>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.descriptor.name)
            .field("version", &self.descriptor.version.to_string())
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn descriptor(&self) -> &Arc<Descriptor> {
        &self.descriptor
    }

    /// The SHA-256 of the component's bytes, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The plugin ABI version the component was built against.
    pub fn abi(&self) -> &semver::Version {
        &self.abi
    }

    /// The names of the interfaces the component imports (`tailor:plugin/search@0.1.0`,
    /// `wasi:cli/stderr@0.2.6`…), in the component's order.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Runs one stage call in a fresh store.
    pub async fn call(&self, host: &PluginHost, call: Call) -> Result<CallOutput, StageError> {
        let Call { context, inputs, config, mut grants, scope, filter, services, limits } = call;
        grants.extend(Capability::ALL.into_iter().filter(|c| c.is_ambient()));
        let desc = &self.descriptor;
        let inputs = inputs
            .iter()
            .map(|(name, value)| {
                let ty = desc.input(name).map_or(Type::Any, |p| p.ty.clone());
                bindings::types::Named { name: name.clone(), value: convert::value_to_wit(value, &ty) }
            })
            .collect::<Vec<_>>();
        let config = config
            .iter()
            .map(|(name, value)| bindings::types::Named {
                name: name.clone(),
                value: convert::value_to_wit(value, &Type::Any),
            })
            .collect::<Vec<_>>();
        let context = bindings::types::Context {
            request_id: context.request_id,
            pipeline: context.pipeline,
            stage: context.stage,
        };
        let state = HostState::new(grants, scope, filter, services, limits.memory_bytes);
        let mut store = host.store(state);
        let run = async {
            let instance: Stage = self.pre.instantiate_async(&mut store).await.map_err(Failure::Instantiate)?;
            instance.call_run(&mut store, &context, &inputs, &config).await.map_err(Failure::Trap)
        };
        // Guest code yields at every epoch tick and a host call awaits, so this timer ends the
        // call on time whether the plugin computes or waits (a slow LLM, say).
        let result = tokio::time::timeout(limits.timeout, run).await;
        let state = store.data();
        if let Some(capability) = state.violation {
            return Err(StageError::Ungranted { capability });
        }
        let returned = match result {
            Err(_elapsed) => return Err(StageError::Timeout { limit: limits.timeout }),
            Ok(Err(Failure::Instantiate(e))) => return Err(StageError::Instantiate(format!("{e:#}"))),
            Ok(Err(Failure::Trap(e))) => {
                let stderr = state.stderr_text();
                if state.limit_hit {
                    return Err(StageError::MemoryLimit { limit: limits.memory_bytes, stderr });
                }
                let trap = e.downcast_ref::<wasmtime::Trap>().map_or_else(|| format!("{e:#}"), |t| t.to_string());
                return Err(StageError::Trap { trap, stderr });
            }
            Ok(Ok(returned)) => returned,
        };
        let logs = std::mem::take(&mut store.data_mut().logs);
        let outputs = match returned {
            Ok(outputs) => outputs,
            Err(e) => {
                return Err(match e {
                    bindings::types::StageError::InvalidInput(m) => StageError::InvalidInput(m),
                    bindings::types::StageError::InvalidConfig(m) => StageError::InvalidConfig(m),
                    bindings::types::StageError::Host(h) => StageError::Host(host_error_text(&h)),
                    bindings::types::StageError::Failed(m) => StageError::Failed(m),
                });
            }
        };
        let (outputs, restore) = take_restore(desc, outputs)?;
        let outputs = check_outputs(desc, outputs, limits.output_bytes)?;
        Ok(CallOutput { outputs, logs, restore })
    }
}

enum Failure {
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
}

fn host_error_text(e: &bindings::types::HostError) -> String {
    use bindings::types::HostError as H;
    match e {
        H::NotGranted(c) => format!("`{}` is not granted", convert::capability_from_wit(*c)),
        H::Unavailable(m) => format!("unavailable: {m}"),
        H::InvalidRequest(m) => format!("invalid request: {m}"),
        H::Limit(m) => format!("limit: {m}"),
    }
}

/// The declared outputs, and the placeholders of a `restore` output.
type Restored = (Vec<bindings::types::Named>, Vec<(String, String)>);

/// Splits a privacy plugin's `restore` output (a JSON object of placeholder → original text)
/// from its declared outputs. Other kinds of plugins have no such output.
fn take_restore(desc: &Descriptor, mut outputs: Vec<bindings::types::Named>) -> Result<Restored, StageError> {
    let Some(at) = outputs.iter().position(|n| n.name == RESTORE_OUTPUT && desc.output(RESTORE_OUTPUT).is_none())
    else {
        return Ok((outputs, Vec::new()));
    };
    if desc.kind != tailor_dsl::descriptor::StageKind::Privacy {
        return Err(StageError::MalformedOutput {
            reason: format!("`{RESTORE_OUTPUT}` is not an output of {}: only privacy plugins restore", desc.name),
        });
    }
    let bad = |why: &str| StageError::MalformedOutput { reason: format!("`{RESTORE_OUTPUT}`: {why}") };
    let bindings::types::Value::Json(text) = outputs.remove(at).value else {
        return Err(bad("expected a JSON object of placeholder to text"));
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&format!("invalid JSON: {e}")))?;
    let object = json.as_object().ok_or_else(|| bad("expected a JSON object of placeholder to text"))?;
    let mut pairs = Vec::with_capacity(object.len());
    for (placeholder, original) in object {
        let original = original.as_str().ok_or_else(|| bad(&format!("`{placeholder}` maps to a non-text")))?;
        if !is_placeholder(placeholder) {
            return Err(bad(&format!("`{placeholder}` is not a placeholder like `<EMAIL_1>`")));
        }
        pairs.push((placeholder.clone(), original.to_owned()));
    }
    Ok((outputs, pairs))
}

/// `<LABEL_N>`: upper-case letters and `_`, then `_` and a number.
pub fn is_placeholder(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else { return false };
    let Some((label, n)) = inner.rsplit_once('_') else { return false };
    !label.is_empty()
        && label.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// The plugin's outputs, checked against its descriptor: every declared port exactly once, no
/// other, each of its declared type; the whole under the size limit.
fn check_outputs(
    desc: &Descriptor,
    outputs: Vec<bindings::types::Named>,
    limit: usize,
) -> Result<Vec<(String, Value)>, StageError> {
    let size: usize = outputs.iter().map(|n| n.name.len() + wit_size(&n.value)).sum();
    if size > limit {
        return Err(StageError::OutputTooLarge { size, limit });
    }
    let mut values: Vec<Option<Value>> = vec![None; desc.outputs.len()];
    for named in outputs {
        let Some((i, port)) = desc.output(&named.name) else {
            return Err(StageError::MalformedOutput {
                reason: format!("`{}` is not an output of {}", named.name, desc.name),
            });
        };
        if values[i].is_some() {
            return Err(StageError::MalformedOutput { reason: format!("`{}` is given twice", named.name) });
        }
        let value = convert::value_from_wit(named.value)
            .map_err(|e| StageError::MalformedOutput { reason: format!("`{}`: {e}", named.name) })?;
        if !matches!(value, Value::None) && !value.fits(&port.ty) {
            return Err(StageError::MalformedOutput {
                reason: format!("`{}` should be {}, got {}", named.name, port.ty, value.kind_name()),
            });
        }
        values[i] = Some(value);
    }
    desc.outputs
        .iter()
        .zip(values)
        .map(|(port, v)| {
            v.map(|v| (port.name.clone(), v))
                .ok_or_else(|| StageError::MalformedOutput { reason: format!("output `{}` is missing", port.name) })
        })
        .collect()
}

fn wit_size(v: &bindings::types::Value) -> usize {
    use bindings::types::Value as V;
    match v {
        V::None | V::Number(_) | V::Boolean(_) => 8,
        V::Text(s) | V::Json(s) => s.len(),
        V::Texts(xs) => xs.iter().map(|x| x.len() + 8).sum(),
        V::Numbers(xs) => xs.len() * 8,
        V::Items(xs) => xs.iter().map(|i| i.id.len() + i.kind.len() + i.text.len() + i.fields.len() + 16).sum(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
