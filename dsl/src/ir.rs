//! The typed graph IR: what the checker produces and the engine runs.
//!
//! Invariants of a [`Pipeline`]: stages are in a topological order and a [`StageId`] is the
//! stage's index; every reference is an id ([`StageId`], [`InputId`], port index, [`LocalId`]),
//! never a name; every expression is typed; every stage's required inputs are bound and its
//! needed capabilities granted. Locations are kept for run-time errors but never compare (see
//! [`crate::span::Loc`]), so formatting a file does not change its IR.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::descriptor::{Capability, StageKind};
use crate::expr::{BinOp, UnOp};
use crate::functions::Func;
use crate::span::Loc;
use crate::types::{Item, Type, Value};

/// A stage's position in its pipeline's topological order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageId(pub u32);

impl StageId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An input's position in its pipeline's input list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputId(pub u32);

impl InputId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A local variable slot: a template loop variable, or `item` in a filter. Slots are numbered
/// from 0 in each expression or template by nesting depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalId(pub u32);

/// A checked pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub inputs: Vec<Input>,
    pub stages: Vec<Stage>,
    pub output: Expr,
    pub tests: Vec<TestCase>,
    /// The pipeline's privacy policy (`privacy { … }`).
    pub privacy: Privacy,
    /// Where the pipeline's name is declared.
    pub loc: Loc,
}

/// `privacy { egress "strict" allow "location" … }` (spec/privacy.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privacy {
    pub egress: Egress,
    /// Entity types (`location`, `date-time`…) the egress guard lets through.
    pub allow: Vec<String>,
}

/// What the host checks in every request to the LLM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Egress {
    /// Nothing: requests go out as the stages wrote them.
    #[default]
    Off,
    /// Every request is scanned for personal data and refused if it carries any.
    Strict,
}

impl Egress {
    pub const NAMES: [&str; 2] = ["off", "strict"];

    pub fn parse(word: &str) -> Option<Egress> {
        match word {
            "off" => Some(Egress::Off),
            "strict" => Some(Egress::Strict),
            _ => None,
        }
    }
}

/// The entity types of the PII recognizers, as pipelines name them (`builtin:pii-redact`'s
/// `entities`, `privacy { allow … }`). The engine checks that this list is the recognizers'.
pub const PII_ENTITIES: [&str; 15] = [
    "email",
    "phone",
    "credit-card",
    "iban",
    "us-ssn",
    "ip",
    "url",
    "date-time",
    "us-driver-license",
    "us-passport",
    "crypto",
    "person",
    "location",
    "address",
    "organization",
];

impl Pipeline {
    pub fn stage(&self, id: StageId) -> &Stage {
        &self.stages[id.index()]
    }

    pub fn input(&self, id: InputId) -> &Input {
        &self.inputs[id.index()]
    }
}

/// A declared pipeline input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub ty: Type,
    pub default: Option<Value>,
    pub loc: Loc,
}

/// What a stage does when its plugin fails (trap, timeout, limit, error).
#[derive(Debug, Clone, PartialEq)]
pub enum OnError {
    /// The pipeline run fails.
    Fail,
    /// The stage's outputs take their type's zero value and the run goes on.
    Skip,
    /// The stage's outputs take these values (one per output port, in port order).
    Fallback(Vec<Value>),
}

/// The name of a stage, kept for display (graphs, traces, errors) only; nothing refers to a
/// stage by it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Label(pub Arc<str>);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The plugin version a stage runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginRef {
    pub name: String,
    pub version: semver::Version,
}

/// One stage of a checked pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub id: StageId,
    pub label: Label,
    pub plugin: PluginRef,
    pub kind: StageKind,
    /// Bound input ports, by port name (the plugin's own vocabulary).
    pub inputs: Vec<Binding>,
    pub config: Vec<Setting>,
    pub outputs: Vec<OutputSlot>,
    pub grants: BTreeSet<Capability>,
    pub cache: Option<Duration>,
    pub on_error: OnError,
    pub when: Option<Expr>,
    pub timeout: Duration,
    /// Stages whose outputs this one reads, ascending.
    pub deps: Vec<StageId>,
    pub loc: Loc,
}

/// A typed output of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSlot {
    pub name: String,
    pub ty: Type,
}

/// An input port bound to an expression or a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub port: String,
    pub value: Bound,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Expr(Expr),
    Template(Template),
}

/// A config setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: SettingValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    Value(Value),
    Duration(Duration),
    /// A bool condition with `item` bound to [`LocalId`] 0.
    ItemFilter(Expr),
}

/// A typed, resolved expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Value),
    List(Vec<Expr>),
    Input(InputId),
    /// Output port `port` (an index into the stage's outputs) of a stage.
    StageOutput {
        stage: StageId,
        port: u32,
    },
    Local(LocalId),
    /// The pipeline's output; only inside a test's `expect`.
    TestOutput,
    Field(Box<Expr>, Arc<str>),
    Index(Box<Expr>, Box<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(Arc<str>),
    Expr(Expr),
    For { var: LocalId, list: Expr, body: Vec<Part> },
    If { branches: Vec<(Expr, Vec<Part>)>, otherwise: Vec<Part> },
}

/// An in-file test: a user's history, the inputs, and conditions that must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub history: Vec<Item>,
    /// A value for every input (given, or the input's default), in input order.
    pub inputs: Vec<Value>,
    pub expects: Vec<Expr>,
    pub loc: Loc,
}

/// Something an expression reads from outside itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    Input(InputId),
    StageOutput(StageId, u32),
}

impl Expr {
    /// Calls `f` for every input and stage output this expression reads.
    pub fn for_each_ref(&self, f: &mut impl FnMut(Ref)) {
        match &self.kind {
            ExprKind::Input(id) => f(Ref::Input(*id)),
            ExprKind::StageOutput { stage, port } => f(Ref::StageOutput(*stage, *port)),
            ExprKind::List(xs) | ExprKind::Call(_, xs) => xs.iter().for_each(|x| x.for_each_ref(f)),
            ExprKind::Field(b, _) | ExprKind::Unary(_, b) => b.for_each_ref(f),
            ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
                a.for_each_ref(f);
                b.for_each_ref(f);
            }
            ExprKind::Literal(_) | ExprKind::Local(_) | ExprKind::TestOutput => {}
        }
    }
}

impl Template {
    /// Calls `f` for every input and stage output this template reads.
    pub fn for_each_ref(&self, f: &mut impl FnMut(Ref)) {
        fn parts(ps: &[Part], f: &mut impl FnMut(Ref)) {
            for p in ps {
                match p {
                    Part::Text(_) => {}
                    Part::Expr(e) => e.for_each_ref(f),
                    Part::For { list, body, .. } => {
                        list.for_each_ref(f);
                        parts(body, f);
                    }
                    Part::If { branches, otherwise } => {
                        for (c, b) in branches {
                            c.for_each_ref(f);
                            parts(b, f);
                        }
                        parts(otherwise, f);
                    }
                }
            }
        }
        parts(&self.parts, f)
    }
}

impl Stage {
    /// Everything this stage reads, sorted and without repeats.
    pub fn refs(&self) -> Vec<Ref> {
        let mut out = Vec::new();
        let mut push = |r| out.push(r);
        if let Some(w) = &self.when {
            w.for_each_ref(&mut push);
        }
        for b in &self.inputs {
            match &b.value {
                Bound::Expr(e) => e.for_each_ref(&mut push),
                Bound::Template(t) => t.for_each_ref(&mut push),
            }
        }
        for s in &self.config {
            if let SettingValue::ItemFilter(e) = &s.value {
                e.for_each_ref(&mut push);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
