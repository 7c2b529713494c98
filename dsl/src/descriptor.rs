//! Plugin descriptors: what the checker knows about a plugin, as plain data.
//!
//! A descriptor is what a plugin's `describe()` returns (spec/plugin-abi.md): its name and
//! version, its stage kind, typed input and output ports, a config schema and the capabilities
//! it needs. The checker types a stage against its descriptor; it finds descriptors through a
//! [`Registry`], which the engine fills from the built-in and installed plugins.

use std::fmt;
use std::sync::Arc;

use crate::types::{Type, Value};

/// The five kinds of stage (spec/language.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Profiler,
    Retriever,
    Privacy,
    Generator,
    Judge,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Profiler => "profiler",
            StageKind::Retriever => "retriever",
            StageKind::Privacy => "privacy",
            StageKind::Generator => "generator",
            StageKind::Judge => "judge",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host capability a plugin may import (the WIT world's imports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    Log,
    Embed,
    Search,
    Complete,
    Kv,
    Now,
}

impl Capability {
    pub const ALL: [Capability; 6] =
        [Capability::Log, Capability::Embed, Capability::Search, Capability::Complete, Capability::Kv, Capability::Now];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Embed => "embed",
            Capability::Search => "search",
            Capability::Complete => "complete",
            Capability::Kv => "kv",
            Capability::Now => "now",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Ambient capabilities are granted to every stage: they reveal nothing and send nothing.
    pub fn is_ambient(self) -> bool {
        matches!(self, Capability::Log | Capability::Now)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a stage binds an input port in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortForm {
    /// An expression: `query "input.query"`.
    Expression,
    /// A template rendered to text by the host: `prompt "Hi {{ input.name }}"`.
    Template,
}

/// A typed input port.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPort {
    pub name: String,
    pub ty: Type,
    pub required: bool,
    pub form: PortForm,
    pub doc: String,
}

/// A typed output port.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPort {
    pub name: String,
    pub ty: Type,
    pub doc: String,
}

/// The type of a config setting. Config values are literals, except filters.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigType {
    Text,
    Number {
        min: f64,
        max: f64,
        integer: bool,
    },
    Bool,
    /// One of a fixed set of words.
    Choice(Vec<String>),
    /// One or more texts, optionally restricted to a fixed set of words.
    TextList {
        choices: Option<Vec<String>>,
    },
    /// A duration such as `30s`, `15m`, `24h`, `7d`.
    Duration,
    /// A condition over one history item (`item.kind == 'paper'`), applied by the host to every
    /// item this stage sees through `search`.
    ItemFilter,
}

/// One config key of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    pub name: String,
    pub ty: ConfigType,
    pub default: Option<Value>,
    /// Setting this key (to anything but `false`) needs this capability granted.
    pub requires: Option<Capability>,
    pub doc: String,
}

/// Everything the checker needs to know about one version of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `builtin:NAME` for built-in plugins, the plugin's own name otherwise.
    pub name: String,
    pub version: semver::Version,
    pub kind: StageKind,
    pub summary: String,
    pub inputs: Vec<InputPort>,
    pub outputs: Vec<OutputPort>,
    pub config: Vec<ConfigField>,
    /// Capabilities the plugin cannot run without.
    pub grants: Vec<Capability>,
}

impl Descriptor {
    pub fn input(&self, name: &str) -> Option<&InputPort> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<(usize, &OutputPort)> {
        self.outputs.iter().enumerate().find(|(_, p)| p.name == name)
    }

    pub fn config_field(&self, name: &str) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.name == name)
    }

    /// Every capability the plugin might call: the required ones and those config keys unlock.
    pub fn may_use(&self, capability: Capability) -> bool {
        self.grants.contains(&capability) || self.config.iter().any(|f| f.requires == Some(capability))
    }
}

/// Where the checker finds plugins.
pub trait Registry {
    /// Every version of the plugin with this name, any order.
    fn versions(&self, name: &str) -> Vec<Arc<Descriptor>>;
    /// Every plugin name, for "did you mean".
    fn names(&self) -> Vec<String>;
}

/// A registry held in memory; the engine's registry builds one, tests use it directly.
#[derive(Debug, Clone, Default)]
pub struct StaticRegistry {
    plugins: Vec<Arc<Descriptor>>,
}

impl StaticRegistry {
    pub fn new(plugins: impl IntoIterator<Item = Descriptor>) -> Self {
        StaticRegistry { plugins: plugins.into_iter().map(Arc::new).collect() }
    }

    pub fn insert(&mut self, descriptor: Descriptor) {
        self.plugins.retain(|d| !(d.name == descriptor.name && d.version == descriptor.version));
        self.plugins.push(Arc::new(descriptor));
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Descriptor>> {
        self.plugins.iter()
    }
}

impl Registry for StaticRegistry {
    fn versions(&self, name: &str) -> Vec<Arc<Descriptor>> {
        self.plugins.iter().filter(|d| d.name == name).cloned().collect()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.plugins.iter().map(|d| d.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}
