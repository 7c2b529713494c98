//! The daemon's configuration file, `tailor.kdl` (spec/daemon.md §1).
//!
//! ```kdl
//! listen "127.0.0.1:8080"
//! store "/var/lib/tailor/tailor.db"
//! pipelines "/etc/tailor/pipelines"
//! plugins "/etc/tailor/plugins"
//! llm "openai" url="http://127.0.0.1:8000/v1" model="Qwen/Qwen2.5-7B-Instruct" api-key-env="VLLM_API_KEY" timeout="30s"
//! embed #true
//! tenant "acme" {
//!     key "sha256:…"
//! }
//! admin-key "sha256:…"
//! telemetry {
//!     otlp "http://127.0.0.1:4318"
//!     service-name "tailor"
//!     capture-prompts #false
//! }
//! limits {
//!     body-bytes 1048576
//!     deadline "30s"
//!     concurrency 64
//!     drain "30s"
//! }
//! reload {
//!     watch #true
//!     debounce "250ms"
//! }
//! ```
//!
//! Relative paths are read from the configuration file's directory. Every mistake is reported
//! with its line and column, all at once; unknown nodes and properties are refused, so a typo
//! never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use sha2::Digest as _;
use tailor_dsl::span::SourceFile;

/// Where the LLM is.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmConfig {
    /// The embedded SmolLM2-135M-Instruct (fetched on first use).
    Local,
    /// A vLLM or OpenAI-compatible server.
    OpenAi { url: String, model: String, api_key_env: Option<String>, timeout: Option<Duration> },
}

/// One API key: the SHA-256 of the key, never the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash(sha256:{}…)", crate::host::hex(&self.0[..4]))
    }
}

impl KeyHash {
    /// The hash of a presented key.
    pub fn of(key: &str) -> KeyHash {
        KeyHash(sha2::Sha256::digest(key.as_bytes()).into())
    }

    /// `sha256:` and 64 hex digits.
    pub fn parse(text: &str) -> Result<KeyHash, String> {
        let digits = text
            .strip_prefix("sha256:")
            .ok_or("a key is written as `sha256:` and the key's SHA-256 in hex (`tailor keys new` prints one)")?;
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("a key's SHA-256 is 64 hex digits".into());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("invariant: checked hex digits");
        }
        Ok(KeyHash(out))
    }

    pub fn to_text(&self) -> String {
        format!("sha256:{}", crate::host::hex(&self.0))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub name: String,
    pub keys: Vec<KeyHash>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// The OTLP/HTTP collector's base URL (`/v1/traces` is appended); no export without it.
    pub otlp: Option<String>,
    pub service_name: String,
    /// Prompt and completion text on LLM spans; off by default (it is users' data).
    pub capture_prompts: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The largest request body accepted.
    pub body_bytes: usize,
    /// Each request's deadline, from its arrival to its last byte (streams included).
    pub deadline: Duration,
    /// Requests served at once; beyond it, 503 with `Retry-After`.
    pub concurrency: usize,
    /// How long a shutdown waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1 << 20,
            deadline: Duration::from_secs(60),
            concurrency: 64,
            drain: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reload {
    /// Watch the pipelines and plugins directories.
    pub watch: bool,
    /// How long the files must be quiet before a watched change is applied.
    pub debounce: Duration,
}

impl Default for Reload {
    fn default() -> Self {
        Reload { watch: true, debounce: Duration::from_millis(250) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub listen: SocketAddr,
    pub store: PathBuf,
    pub pipelines: PathBuf,
    pub plugins: Option<PathBuf>,
    pub llm: LlmConfig,
    /// Embed items at ingest and allow dense search.
    pub embed: bool,
    pub tenants: Vec<Tenant>,
    pub admin_keys: Vec<KeyHash>,
    pub telemetry: Telemetry,
    pub limits: Limits,
    pub reload: Reload,
}

/// Everything wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl DaemonConfig {
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { problems: vec![format!("{}: {e}", path.display())] })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        DaemonConfig::parse(&SourceFile::new(path.display().to_string(), text), &base)
    }

    /// Reads a configuration; relative paths are taken from `base`.
    pub fn parse(file: &SourceFile, base: &Path) -> Result<DaemonConfig, ConfigError> {
        let mut r = Reader { file, problems: Vec::new() };
        let doc = match KdlDocument::parse(file.text()) {
            Ok(doc) => doc,
            Err(e) => {
                let problems = e
                    .diagnostics
                    .iter()
                    .map(|d| {
                        let at = r.at(d.span.offset());
                        let why = d.message.clone().or(d.label.clone()).unwrap_or_else(|| "invalid KDL".into());
                        format!("{at}: {why}")
                    })
                    .collect();
                return Err(ConfigError { problems });
            }
        };
        let path = |p: String| if Path::new(&p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let mut listen = None;
        let mut store = None;
        let mut pipelines = None;
        let mut plugins = None;
        let mut llm = LlmConfig::Local;
        let mut embed = false;
        let mut tenants: Vec<Tenant> = Vec::new();
        let mut admin_keys = Vec::new();
        let mut telemetry = Telemetry { otlp: None, service_name: "tailor".into(), capture_prompts: false };
        let mut limits = Limits::default();
        let mut reload = Reload::default();
        for node in doc.nodes() {
            match node.name().value() {
                "listen" => {
                    r.only(node, &[], false);
                    if let Some(text) = r.arg_text(node) {
                        match text.parse::<SocketAddr>() {
                            Ok(addr) => listen = Some(addr),
                            Err(e) => r.problem(node, format!("`listen`: {text:?} is not an address and port ({e})")),
                        }
                    }
                }
                "store" => {
                    r.only(node, &[], false);
                    store = r.arg_text(node).map(path);
                }
                "pipelines" => {
                    r.only(node, &[], false);
                    pipelines = r.arg_text(node).map(path);
                }
                "plugins" => {
                    r.only(node, &[], false);
                    plugins = r.arg_text(node).map(path);
                }
                "embed" => {
                    r.only(node, &[], false);
                    embed = r.arg_bool(node).unwrap_or(false);
                }
                "llm" => {
                    r.only(node, &["url", "model", "api-key-env", "timeout"], false);
                    match r.arg_text(node).as_deref() {
                        Some("local") => {
                            for key in ["url", "model", "api-key-env", "timeout"] {
                                if node.entry(key).is_some() {
                                    r.problem(node, format!("`llm \"local\"` takes no `{key}`"));
                                }
                            }
                            llm = LlmConfig::Local;
                        }
                        Some("openai") => {
                            let url = r.prop_text(node, "url");
                            if url.is_none() {
                                r.problem(
                                    node,
                                    "`llm \"openai\"` needs `url=` (the API root, e.g. http://host:8000/v1)",
                                );
                            }
                            let timeout = r.prop_text(node, "timeout").and_then(|t| r.duration(node, "timeout", &t));
                            llm = LlmConfig::OpenAi {
                                url: url.unwrap_or_default(),
                                model: r.prop_text(node, "model").unwrap_or_else(|| "default".into()),
                                api_key_env: r.prop_text(node, "api-key-env"),
                                timeout,
                            };
                        }
                        Some(other) => r.problem(node, format!("`llm` is \"local\" or \"openai\", not {other:?}")),
                        None => {}
                    }
                }
                "tenant" => {
                    r.only(node, &[], true);
                    let Some(name) = r.arg_text(node) else { continue };
                    if name.is_empty() || name.len() > 128 {
                        r.problem(node, "a tenant's name is 1 to 128 bytes");
                    }
                    if tenants.iter().any(|t| t.name == name) {
                        r.problem(node, format!("tenant {name:?} is defined twice"));
                    }
                    let mut keys = Vec::new();
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        if child.name().value() != "key" {
                            r.problem(child, format!("a tenant holds `key` nodes, not `{}`", child.name().value()));
                            continue;
                        }
                        r.only(child, &[], false);
                        if let Some(k) = r.arg_text(child) {
                            match KeyHash::parse(&k) {
                                Ok(h) => keys.push(h),
                                Err(e) => r.problem(child, e),
                            }
                        }
                    }
                    if keys.is_empty() {
                        r.problem(node, format!("tenant {name:?} has no `key`"));
                    }
                    tenants.push(Tenant { name, keys });
                }
                "admin-key" => {
                    r.only(node, &[], false);
                    if let Some(k) = r.arg_text(node) {
                        match KeyHash::parse(&k) {
                            Ok(h) => admin_keys.push(h),
                            Err(e) => r.problem(node, e),
                        }
                    }
                }
                "telemetry" => {
                    r.only(node, &[], true);
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        r.only(child, &[], false);
                        match child.name().value() {
                            "otlp" => telemetry.otlp = r.arg_text(child),
                            "service-name" => {
                                if let Some(s) = r.arg_text(child) {
                                    telemetry.service_name = s;
                                }
                            }
                            "capture-prompts" => telemetry.capture_prompts = r.arg_bool(child).unwrap_or(false),
                            other => r.problem(
                                child,
                                format!("`telemetry` holds otlp, service-name, capture-prompts; not `{other}`"),
                            ),
                        }
                    }
                }
                "limits" => {
                    r.only(node, &[], true);
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        r.only(child, &[], false);
                        match child.name().value() {
                            "body-bytes" => {
                                if let Some(n) = r.arg_int(child, 1, 1 << 30) {
                                    limits.body_bytes = n as usize;
                                }
                            }
                            "concurrency" => {
                                if let Some(n) = r.arg_int(child, 1, 100_000) {
                                    limits.concurrency = n as usize;
                                }
                            }
                            "deadline" => {
                                if let Some(d) = r.arg_text(child).and_then(|t| r.duration(child, "deadline", &t)) {
                                    limits.deadline = d;
                                }
                            }
                            "drain" => {
                                if let Some(d) = r.arg_text(child).and_then(|t| r.duration(child, "drain", &t)) {
                                    limits.drain = d;
                                }
                            }
                            other => r.problem(
                                child,
                                format!("`limits` holds body-bytes, deadline, concurrency, drain; not `{other}`"),
                            ),
                        }
                    }
                }
                "reload" => {
                    r.only(node, &[], true);
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        r.only(child, &[], false);
                        match child.name().value() {
                            "watch" => reload.watch = r.arg_bool(child).unwrap_or(true),
                            "debounce" => {
                                if let Some(d) = r.arg_text(child).and_then(|t| r.duration(child, "debounce", &t)) {
                                    reload.debounce = d;
                                }
                            }
                            other => r.problem(child, format!("`reload` holds watch and debounce; not `{other}`")),
                        }
                    }
                }
                other => r.problem(
                    node,
                    format!(
                        "unknown setting `{other}` (known: listen, store, pipelines, plugins, llm, embed, tenant, \
                         admin-key, telemetry, limits, reload)"
                    ),
                ),
            }
        }
        let at_start = r.at(0);
        if pipelines.is_none() {
            r.problems.push(format!("{at_start}: `pipelines` (the directory of pipeline files) is required"));
        }
        if store.is_none() {
            r.problems.push(format!("{at_start}: `store` (the SQLite file) is required"));
        }
        if tenants.is_empty() {
            r.problems.push(format!("{at_start}: no `tenant`: every /v1/ route needs a tenant's key"));
        }
        let mut seen: Vec<&KeyHash> = Vec::new();
        for key in tenants.iter().flat_map(|t| &t.keys).chain(&admin_keys) {
            if seen.contains(&key) {
                r.problems.push(format!("{at_start}: the key {} is given twice", key.to_text()));
            }
            seen.push(key);
        }
        if !r.problems.is_empty() {
            return Err(ConfigError { problems: r.problems });
        }
        Ok(DaemonConfig {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            store: store.expect("checked above"),
            pipelines: pipelines.expect("checked above"),
            plugins,
            llm,
            embed,
            tenants,
            admin_keys,
            telemetry,
            limits,
            reload,
        })
    }
}

/// Reads values off nodes, collecting problems with their places.
struct Reader<'a> {
    file: &'a SourceFile,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn at(&self, offset: usize) -> String {
        let (line, col) = self.file.line_col(offset);
        format!("{}:{line}:{col}", self.file.name())
    }

    fn problem(&mut self, node: &KdlNode, message: impl Into<String>) {
        let at = self.at(node.span().offset());
        self.problems.push(format!("{at}: {}", message.into()));
    }

    /// Refuses properties other than `props`, more than one argument, and children unless allowed.
    fn only(&mut self, node: &KdlNode, props: &[&str], children: bool) {
        let name = node.name().value().to_owned();
        for entry in node.entries() {
            if let Some(key) = entry.name()
                && !props.contains(&key.value())
            {
                self.problem(node, format!("`{name}` has no property `{}`", key.value()));
            }
        }
        if node.entries().iter().filter(|e| e.name().is_none()).count() > 1 {
            self.problem(node, format!("`{name}` takes one value"));
        }
        if !children && node.children().is_some_and(|c| !c.nodes().is_empty()) {
            self.problem(node, format!("`{name}` has no children"));
        }
    }

    fn arg<'n>(&mut self, node: &'n KdlNode) -> Option<&'n KdlEntry> {
        let arg = node.entries().iter().find(|e| e.name().is_none());
        if arg.is_none() && node.children().is_none_or(|c| c.nodes().is_empty()) {
            self.problem(node, format!("`{}` needs a value", node.name().value()));
        }
        arg
    }

    fn arg_text(&mut self, node: &KdlNode) -> Option<String> {
        match self.arg(node)?.value() {
            KdlValue::String(s) => Some(s.clone()),
            other => {
                self.problem(node, format!("`{}` should be a string, not {other}", node.name().value()));
                None
            }
        }
    }

    fn arg_bool(&mut self, node: &KdlNode) -> Option<bool> {
        match self.arg(node)?.value() {
            KdlValue::Bool(b) => Some(*b),
            other => {
                self.problem(node, format!("`{}` should be #true or #false, not {other}", node.name().value()));
                None
            }
        }
    }

    fn arg_int(&mut self, node: &KdlNode, min: i128, max: i128) -> Option<i128> {
        match self.arg(node)?.value() {
            KdlValue::Integer(n) if (min..=max).contains(n) => Some(*n),
            other => {
                self.problem(
                    node,
                    format!("`{}` should be a whole number {min}..={max}, not {other}", node.name().value()),
                );
                None
            }
        }
    }

    fn prop_text(&mut self, node: &KdlNode, key: &str) -> Option<String> {
        match node.entry(key)?.value() {
            KdlValue::String(s) => Some(s.clone()),
            other => {
                self.problem(node, format!("`{key}=` should be a string, not {other}"));
                None
            }
        }
    }

    fn duration(&mut self, node: &KdlNode, what: &str, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text).ok() {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                self.problem(
                    node,
                    format!("`{what}`: {text:?} is not a duration such as \"250ms\", \"30s\" or \"2m\""),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::parse(&SourceFile::new("tailor.kdl", text), Path::new("/etc/tailor"))
    }

    const KEY: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn a_full_configuration_reads() {
        let c = parse(&format!(
            r#"
            listen "0.0.0.0:9000"
            store "data/tailor.db"
            pipelines "/srv/pipelines"
            plugins "plugins"
            llm "openai" url="http://127.0.0.1:8000/v1" model="m" api-key-env="K" timeout="5s"
            embed #true
            tenant "acme" {{
                key "{KEY}"
            }}
            telemetry {{
                otlp "http://127.0.0.1:4318"
                capture-prompts #true
            }}
            limits {{
                body-bytes 4096
                deadline "2s"
                concurrency 8
            }}
            reload {{
                debounce "100ms"
            }}
            "#
        ))
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.store, PathBuf::from("/etc/tailor/data/tailor.db"));
        assert_eq!(c.pipelines, PathBuf::from("/srv/pipelines"));
        assert_eq!(c.plugins, Some(PathBuf::from("/etc/tailor/plugins")));
        assert!(matches!(&c.llm, LlmConfig::OpenAi { timeout: Some(t), .. } if *t == Duration::from_secs(5)));
        assert_eq!(c.tenants[0].keys[0], KeyHash::of("foo"));
        assert_eq!(c.limits.body_bytes, 4096);
        assert_eq!(c.limits.concurrency, 8);
        assert!(c.telemetry.capture_prompts);
        assert_eq!(c.reload.debounce, Duration::from_millis(100));
        assert!(c.reload.watch);
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let e = parse(
            r#"
store "x.db"
listen "localhost"
llm "openai" modle="m"
tenant "a" {
    key "abc"
}
limits {
    concurrency 0
    deadline "soon"
}
colour "blue"
"#,
        )
        .unwrap_err();
        let all = e.to_string();
        for want in [
            "tailor.kdl:3:1: `listen`",
            "tailor.kdl:4:1: `llm` has no property `modle`",
            "needs `url=`",
            "tailor.kdl:6:5: a key is written as `sha256:`",
            "`concurrency` should be a whole number 1..=100000",
            "\"soon\" is not a duration",
            "unknown setting `colour`",
            "`pipelines` (the directory of pipeline files) is required",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert!(parse("listen \"").unwrap_err().to_string().starts_with("tailor.kdl:1:"));
    }

    #[test]
    fn keys_are_hashes_and_never_shared() {
        assert_eq!(KeyHash::parse(&KeyHash::of("k").to_text()).unwrap(), KeyHash::of("k"));
        let e = parse(&format!(
            "store \"s\"\npipelines \"p\"\ntenant \"a\" {{\n key \"{KEY}\"\n}}\ntenant \"b\" {{\n key \"{KEY}\"\n}}\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        assert!(!format!("{:?}", KeyHash::of("k")).contains(&KeyHash::of("k").to_text()[12..]), "Debug hides the hash");
    }
}
