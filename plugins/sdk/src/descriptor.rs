//! What a plugin is: its descriptor, as plain data with a small builder.
//!
//! The host's checker types every stage against this (spec/language.md §4.1), and the SDK uses it
//! at run time too: it fills config defaults, rejects unknown ports and keys, and checks values
//! against their config types before [`crate::Plugin::run`] sees them.

use std::fmt;

use crate::value::Value;

/// The five kinds of stage (spec/language.md §4.1). The kind is kept for graphs and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    Profiler,
    Retriever,
    Privacy,
    Generator,
    Judge,
}

/// A host capability: one of the world's imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Ambient: every stage may log.
    Log,
    Embed,
    Search,
    Complete,
    Kv,
    /// Ambient: every stage may read the clock.
    Now,
}

impl Capability {
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
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a pipeline binds an input port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortForm {
    /// An expression: `query "input.query"`.
    Expression,
    /// A template the host renders to text: `prompt "Hi {{ input.name }}"`.
    Template,
}

/// A typed input port.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPort {
    pub name: String,
    /// A type in the pipeline language's syntax: `text`, `list<item>`, `record`…
    pub ty: String,
    pub required: bool,
    pub form: PortForm,
    pub doc: String,
}

impl InputPort {
    /// A required expression port.
    pub fn new(name: impl Into<String>, ty: impl Into<String>) -> Self {
        InputPort { name: name.into(), ty: ty.into(), required: true, form: PortForm::Expression, doc: String::new() }
    }

    /// A required template port (always of type `text`).
    pub fn template(name: impl Into<String>) -> Self {
        InputPort { form: PortForm::Template, ..InputPort::new(name, "text") }
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }
}

/// A typed output port.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPort {
    pub name: String,
    pub ty: String,
    pub doc: String,
}

/// The type of a config setting.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigType {
    Text,
    /// A number within `min..=max`, whole when `integer`.
    Number {
        min: f64,
        max: f64,
        integer: bool,
    },
    Bool,
    /// One of these words.
    Choice(Vec<String>),
    /// One or more texts, restricted to these words when given.
    TextList(Option<Vec<String>>),
    /// A duration; the host passes seconds.
    Duration,
    /// A condition on `item` that the host applies to everything the stage sees via search.
    ItemFilter,
}

/// One config key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigField {
    pub name: String,
    pub ty: ConfigType,
    pub default: Option<Value>,
    /// Setting this key (to anything but false) needs this capability.
    pub requires: Option<Capability>,
    pub doc: String,
}

fn words<I, S>(words: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    words.into_iter().map(Into::into).collect()
}

impl ConfigField {
    pub fn new(name: impl Into<String>, ty: ConfigType) -> Self {
        ConfigField { name: name.into(), ty, default: None, requires: None, doc: String::new() }
    }

    pub fn text(name: impl Into<String>) -> Self {
        ConfigField::new(name, ConfigType::Text)
    }

    pub fn number(name: impl Into<String>, min: f64, max: f64) -> Self {
        ConfigField::new(name, ConfigType::Number { min, max, integer: false })
    }

    pub fn integer(name: impl Into<String>, min: f64, max: f64) -> Self {
        ConfigField::new(name, ConfigType::Number { min, max, integer: true })
    }

    pub fn bool(name: impl Into<String>) -> Self {
        ConfigField::new(name, ConfigType::Bool)
    }

    pub fn choice<I, S>(name: impl Into<String>, choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ConfigField::new(name, ConfigType::Choice(words(choices)))
    }

    /// Any texts.
    pub fn text_list(name: impl Into<String>) -> Self {
        ConfigField::new(name, ConfigType::TextList(None))
    }

    /// Texts restricted to these words.
    pub fn word_list<I, S>(name: impl Into<String>, choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ConfigField::new(name, ConfigType::TextList(Some(words(choices))))
    }

    pub fn duration(name: impl Into<String>) -> Self {
        ConfigField::new(name, ConfigType::Duration)
    }

    pub fn item_filter(name: impl Into<String>) -> Self {
        ConfigField::new(name, ConfigType::ItemFilter)
    }

    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    pub fn requires(mut self, capability: Capability) -> Self {
        self.requires = Some(capability);
        self
    }

    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }
}

/// What a plugin is. Build one with [`Descriptor::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `builtin:NAME` for built-in plugins, the plugin's own name otherwise.
    pub name: String,
    /// The plugin's own version, semver.
    pub version: String,
    pub kind: StageKind,
    pub summary: String,
    pub inputs: Vec<InputPort>,
    pub outputs: Vec<OutputPort>,
    pub config: Vec<ConfigField>,
    /// Capabilities the plugin cannot run without.
    pub grants: Vec<Capability>,
}

impl Descriptor {
    /// Starts a descriptor. `version` is semver; `env!("CARGO_PKG_VERSION")` keeps it in step
    /// with the crate.
    pub fn builder(name: impl Into<String>, version: impl Into<String>, kind: StageKind) -> DescriptorBuilder {
        DescriptorBuilder {
            descriptor: Descriptor {
                name: name.into(),
                version: version.into(),
                kind,
                summary: String::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                config: Vec::new(),
                grants: Vec::new(),
            },
        }
    }

    pub fn input(&self, name: &str) -> Option<&InputPort> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&OutputPort> {
        self.outputs.iter().find(|p| p.name == name)
    }

    pub fn config_field(&self, name: &str) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.name == name)
    }
}

/// Builds a [`Descriptor`].
#[derive(Debug, Clone)]
pub struct DescriptorBuilder {
    descriptor: Descriptor,
}

impl DescriptorBuilder {
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.descriptor.summary = summary.into();
        self
    }

    pub fn input(mut self, port: InputPort) -> Self {
        self.descriptor.inputs.push(port);
        self
    }

    pub fn output(mut self, name: impl Into<String>, ty: impl Into<String>, doc: impl Into<String>) -> Self {
        self.descriptor.outputs.push(OutputPort { name: name.into(), ty: ty.into(), doc: doc.into() });
        self
    }

    pub fn config(mut self, field: ConfigField) -> Self {
        self.descriptor.config.push(field);
        self
    }

    /// A capability the plugin always needs.
    pub fn grant(mut self, capability: Capability) -> Self {
        self.descriptor.grants.push(capability);
        self
    }

    pub fn build(self) -> Descriptor {
        self.descriptor
    }
}
