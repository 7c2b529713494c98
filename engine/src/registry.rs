//! The plugin registry: descriptors of the built-in plugins, as data.
//!
//! These descriptors are the contract the built-in plugins implement (spec/language.md §8); the
//! checker types every stage against them. Once plugins run as components, each plugin's own
//! `describe()` supplies its descriptor and these must agree with it.

use tailor_dsl::descriptor::{
    Capability, ConfigField, ConfigType, Descriptor, InputPort, OutputPort, PortForm, StageKind, StaticRegistry,
};
use tailor_dsl::types::{Type, Value};

/// The version every built-in plugin of this release carries.
pub const BUILTIN_VERSION: semver::Version = semver::Version::new(0, 1, 0);

/// A registry holding the built-in plugins.
pub fn builtin() -> StaticRegistry {
    StaticRegistry::new(builtin_descriptors())
}

/// The descriptors of the built-in plugins.
pub fn builtin_descriptors() -> Vec<Descriptor> {
    vec![retrieve(), fuse(), profile(), pii_redact(), generate(), judge()]
}

fn input(name: &str, ty: Type, required: bool, form: PortForm, doc: &str) -> InputPort {
    InputPort { name: name.into(), ty, required, form, doc: doc.into() }
}

fn output(name: &str, ty: Type, doc: &str) -> OutputPort {
    OutputPort { name: name.into(), ty, doc: doc.into() }
}

fn field(name: &str, ty: ConfigType, default: Option<Value>, doc: &str) -> ConfigField {
    ConfigField { name: name.into(), ty, default, requires: None, doc: doc.into() }
}

fn number(min: f64, max: f64, integer: bool) -> ConfigType {
    ConfigType::Number { min, max, integer }
}

fn choice(words: &[&str]) -> ConfigType {
    ConfigType::Choice(words.iter().map(|w| (*w).to_string()).collect())
}

fn descriptor(name: &str, kind: StageKind, summary: &str) -> Descriptor {
    Descriptor {
        name: format!("builtin:{name}"),
        version: BUILTIN_VERSION,
        kind,
        summary: summary.into(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        config: Vec::new(),
        grants: Vec::new(),
    }
}

fn retrieve() -> Descriptor {
    // MMR compares the candidates' embeddings, so setting it needs `embed`.
    let mut mmr = field(
        "mmr",
        number(0.0, 1.0, false),
        None,
        "re-rank for diversity (maximal marginal relevance), trading relevance (1) for novelty (0)",
    );
    mmr.requires = Some(Capability::Embed);
    Descriptor {
        inputs: vec![input("query", Type::Text, true, PortForm::Expression, "what to look for in the user's history")],
        outputs: vec![
            output("items", Type::list(Type::Item), "the best matching items, best first"),
            output("scores", Type::list(Type::Number), "each item's score, in the same order"),
        ],
        config: vec![
            field("method", choice(&["bm25", "dense", "hybrid"]), Some(Value::text("hybrid")), "how to score items"),
            field("k", number(1.0, 100.0, true), Some(Value::Number(5.0)), "how many items to return"),
            field("where", ConfigType::ItemFilter, None, "only items for which this condition on `item` holds"),
            mmr,
            field(
                "recency",
                ConfigType::Duration,
                None,
                "boost recent items: a score halves for each half-life of age",
            ),
        ],
        grants: vec![Capability::Search],
        ..descriptor("retrieve", StageKind::Retriever, "finds the user's own history items relevant to a query")
    }
}

fn fuse() -> Descriptor {
    Descriptor {
        inputs: vec![input(
            "lists",
            Type::list(Type::list(Type::Item)),
            true,
            PortForm::Expression,
            "ranked item lists to merge",
        )],
        outputs: vec![
            output("items", Type::list(Type::Item), "the merged ranking, best first"),
            output("scores", Type::list(Type::Number), "each item's fused score"),
        ],
        config: vec![
            field("k", number(1.0, 100.0, true), Some(Value::Number(5.0)), "how many items to return"),
            field(
                "constant",
                number(1.0, 1000.0, false),
                Some(Value::Number(60.0)),
                "the reciprocal-rank-fusion constant",
            ),
        ],
        ..descriptor("fuse", StageKind::Retriever, "merges ranked lists with reciprocal-rank fusion")
    }
}

fn profile() -> Descriptor {
    let mut summary = field(
        "summary",
        ConfigType::Bool,
        Some(Value::Bool(false)),
        "also write a short summary of the user with the LLM",
    );
    summary.requires = Some(Capability::Complete);
    Descriptor {
        inputs: vec![input("focus", Type::Text, false, PortForm::Expression, "what the profile should be about")],
        outputs: vec![
            output("summary", Type::Text, "an LLM-written summary of the user (empty unless `summary #true`)"),
            output(
                "stats",
                Type::Record,
                "statistics over the user's history: counts by kind, frequent words, typical length, field averages",
            ),
        ],
        config: vec![
            summary,
            field(
                "max-items",
                number(1.0, 10_000.0, true),
                Some(Value::Number(200.0)),
                "how many recent items to profile",
            ),
            field("where", ConfigType::ItemFilter, None, "only items for which this condition on `item` holds"),
        ],
        grants: vec![Capability::Search, Capability::Kv],
        ..descriptor("profile", StageKind::Profiler, "turns the user's history into a profile")
    }
}

const PII_ENTITIES: &[&str] = &["email", "phone", "credit-card", "iban", "us-ssn", "ip", "url"];

fn pii_redact() -> Descriptor {
    Descriptor {
        inputs: vec![input("text", Type::Text, true, PortForm::Expression, "the text to redact")],
        outputs: vec![
            output("text", Type::Text, "the text with personal data replaced"),
            output("found", Type::list(Type::Text), "the entity types found"),
        ],
        config: vec![
            field(
                "entities",
                ConfigType::TextList { choices: Some(PII_ENTITIES.iter().map(|e| (*e).to_string()).collect()) },
                None,
                "which entity types to redact (default: all)",
            ),
            field(
                "operator",
                choice(&["placeholder", "mask", "tag"]),
                Some(Value::text("placeholder")),
                "how to replace what is found",
            ),
        ],
        ..descriptor("pii-redact", StageKind::Privacy, "finds and replaces personal data before it leaves the machine")
    }
}

fn generate() -> Descriptor {
    Descriptor {
        inputs: vec![
            input("prompt", Type::Text, true, PortForm::Template, "the user message, a template"),
            input("system", Type::Text, false, PortForm::Template, "the system message, a template"),
        ],
        outputs: vec![
            output("text", Type::Text, "the first candidate"),
            output("texts", Type::list(Type::Text), "every candidate"),
        ],
        config: vec![
            field("candidates", number(1.0, 16.0, true), Some(Value::Number(1.0)), "how many candidates to sample"),
            field(
                "max-tokens",
                number(1.0, 32_768.0, true),
                Some(Value::Number(256.0)),
                "the most tokens per candidate",
            ),
            field("temperature", number(0.0, 2.0, false), Some(Value::Number(0.7)), "sampling temperature"),
            field("top-p", number(0.0, 1.0, false), Some(Value::Number(1.0)), "nucleus sampling"),
            field("stop", ConfigType::TextList { choices: None }, None, "stop sequences"),
            field("seed", number(0.0, 4_294_967_295.0, true), None, "sampling seed, for reproducible runs"),
        ],
        grants: vec![Capability::Complete],
        ..descriptor("generate", StageKind::Generator, "renders a prompt and samples candidates from the LLM")
    }
}

fn judge() -> Descriptor {
    Descriptor {
        inputs: vec![
            input("candidates", Type::list(Type::Text), true, PortForm::Expression, "the candidates to judge"),
            input("persona", Type::Text, false, PortForm::Expression, "who the user is (e.g. a profile summary)"),
            input("task", Type::Text, false, PortForm::Expression, "what the candidates answer"),
        ],
        outputs: vec![
            output("best", Type::Text, "the preferred candidate"),
            output("index", Type::Number, "its position in `candidates`, from 0"),
            output("certainty", Type::Number, "the judge's stated certainty, 1–100"),
            output("confident", Type::Bool, "whether certainty reached `min-certainty`"),
            output(
                "scores",
                Type::list(Type::Number),
                "per-candidate scores (pointwise mode) or win counts (pairwise)",
            ),
        ],
        config: vec![
            field(
                "mode",
                choice(&["pairwise", "pointwise"]),
                Some(Value::text("pairwise")),
                "compare candidates in pairs, or score each alone",
            ),
            field(
                "min-certainty",
                number(1.0, 100.0, false),
                Some(Value::Number(1.0)),
                "below this certainty the verdict is not trusted",
            ),
            field("criteria", ConfigType::Text, None, "what makes a candidate better, in words"),
        ],
        grants: vec![Capability::Complete],
        ..descriptor("judge", StageKind::Judge, "picks the candidate this user would prefer, with verbal certainty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_kind_has_a_builtin() {
        let kinds: std::collections::BTreeSet<StageKind> = builtin_descriptors().iter().map(|d| d.kind).collect();
        assert_eq!(kinds.len(), 5);
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let ds = builtin_descriptors();
        let names: std::collections::BTreeSet<&str> = ds.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), ds.len());
        assert!(names.iter().all(|n| n.starts_with("builtin:")));
    }
}
