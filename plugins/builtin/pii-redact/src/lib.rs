//! `builtin:pii-redact`: finds and replaces personal data before it leaves the machine
//! (spec/language.md §8.4, spec/privacy.md). The recognizers and operators are `tailor-pii`'s,
//! the same the host's egress guard uses.
//!
//! - **Detection**: every enabled entity type's recognizer scores its candidates; context words
//!   raise scores; a detection needs its entity's threshold (`threshold`, or `thresholds
//!   "person=0.7"`); overlaps are resolved (see `tailor_pii::resolve_overlaps`).
//! - **Operators**: `placeholder` → `<EMAIL_1>`, numbered per entity type in order of first
//!   appearance, the same number for the same (normalised) value within a call; `mask` → one
//!   `*` per character; `tag` → `<EMAIL>`; `hash` → `<EMAIL_3f9a1c02>`, keyed by `hash-key`.
//! - `found` lists the entity names replaced, sorted and unique.
//! - With placeholders, the undeclared output `restore` hands the host each placeholder and the
//!   text it replaced; the host keeps them for the run and restores them in its final output.

use tailor_pii::{Analyzer, Entity, Operator, redact};
use tailor_plugin_sdk::prelude::*;

pub struct PiiRedact;

impl Plugin for PiiRedact {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:pii-redact", env!("CARGO_PKG_VERSION"), StageKind::Privacy)
            .summary("finds and replaces personal data before it leaves the machine")
            .input(InputPort::new("text", "text").doc("the text to redact"))
            .output("text", "text", "the text with personal data replaced")
            .output("found", "list<text>", "the entity types found")
            .config(
                ConfigField::word_list("entities", Entity::ALL.map(Entity::name))
                    .doc("which entity types to redact (default: all)"),
            )
            .config(
                ConfigField::choice("operator", ["placeholder", "mask", "tag", "hash"])
                    .default("placeholder")
                    .doc("how to replace what is found"),
            )
            .config(ConfigField::text("hash-key").doc("the secret key of the `hash` operator"))
            .config(
                ConfigField::number("threshold", 0.0, 1.0)
                    .default(f64::from(tailor_pii::DEFAULT_THRESHOLD))
                    .doc("the score a detection needs (0–1)"),
            )
            .config(
                ConfigField::text_list("thresholds").doc("per-entity scores needed, as `entity=score` (`person=0.7`)"),
            )
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let text = inputs.text("text")?;
        let analyzer = analyzer(config)?;
        let operator = match config.choice("operator")? {
            "placeholder" => Operator::Placeholder,
            "mask" => Operator::Mask,
            "tag" => Operator::Tag,
            "hash" => Operator::Hash {
                key: config
                    .opt::<String>("hash-key")?
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| StageError::invalid_config("operator `hash` needs `hash-key`"))?
                    .into_bytes(),
            },
            other => {
                return Err(StageError::invalid_config(format!("config key `operator`: unknown operator `{other}`")));
            }
        };
        let redaction = redact(text, &analyzer.analyze(text), &operator);
        let found: Vec<String> = redaction.found.iter().map(|e| e.name().to_owned()).collect();
        let mut outputs = Outputs::new().text("text", redaction.text).texts("found", found);
        if !redaction.mapping.is_empty() {
            // To the host only (spec/privacy.md): it restores the placeholders in the run's output.
            let restore: serde_json::Map<String, serde_json::Value> =
                redaction.mapping.into_iter().map(|(p, original)| (p, original.into())).collect();
            outputs = outputs.json("restore", restore.into());
        }
        Ok(outputs)
    }
}

export_plugin!(PiiRedact);

fn entity(word: &str) -> Result<Entity, StageError> {
    Entity::parse(word).ok_or_else(|| StageError::invalid_config(format!("unknown entity `{word}`")))
}

/// The analyzer the config asks for.
fn analyzer(config: &Config) -> Result<Analyzer, StageError> {
    let words = config.texts("entities")?;
    let enabled: Vec<Entity> = if words.is_empty() {
        Entity::ALL.to_vec()
    } else {
        words.iter().map(|w| entity(w)).collect::<Result<_, _>>()?
    };
    let mut analyzer = Analyzer::new(&enabled).default_threshold(config.number("threshold")? as f32);
    for pair in config.texts("thresholds")? {
        let (name, score) = pair
            .split_once('=')
            .ok_or_else(|| StageError::invalid_config(format!("`thresholds`: `{pair}` is not `entity=score`")))?;
        let score: f32 = score
            .trim()
            .parse()
            .ok()
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| StageError::invalid_config(format!("`thresholds`: `{pair}`: the score must be 0–1")))?;
        analyzer = analyzer.threshold(entity(name.trim())?, score);
    }
    Ok(analyzer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::testing::call;

    fn run(text: &str, config: Config) -> Result<Outputs, StageError> {
        call::<PiiRedact>(Inputs::new().with("text", text), config)
    }

    #[test]
    fn placeholders_by_default() {
        let out = run("Mail a@x.io, call +1 415 555 2671.", Config::new()).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("Mail <EMAIL_1>, call <PHONE_1>.".into())));
        assert_eq!(out.get("found"), Some(&Value::Texts(vec!["email".into(), "phone".into()])));
    }

    #[test]
    fn placeholders_go_to_the_host_for_restoring() {
        let out = run("Mail a@x.io or b@y.io, again a@x.io.", Config::new()).unwrap();
        let Some(Value::Json(restore)) = out.get("restore") else { panic!("{out:?}") };
        assert_eq!(restore, &serde_json::json!({"<EMAIL_1>": "a@x.io", "<EMAIL_2>": "b@y.io"}));
        let out = run("Mail a@x.io.", Config::new().with("operator", "mask")).unwrap();
        assert!(out.get("restore").is_none(), "masks cannot be restored");
    }

    #[test]
    fn entities_restrict_what_is_redacted() {
        let out = run("a@x.io and 10.0.0.1", Config::new().with("entities", vec!["ip"])).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("a@x.io and <IP_1>".into())));
        assert_eq!(out.get("found"), Some(&Value::Texts(vec!["ip".into()])));
    }

    #[test]
    fn people_and_places_are_found_in_the_sandbox() {
        let out = run("Megan Payne moved to Denmark.", Config::new().with("operator", "tag")).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("<PERSON> moved to <LOCATION>.".into())));
    }

    #[test]
    fn thresholds_per_entity() {
        let config = Config::new().with("thresholds", vec!["person=0.99"]).with("operator", "tag");
        let out = run("Megan Payne moved to Denmark.", config).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("Megan Payne moved to <LOCATION>.".into())));
        for bad in ["person", "person=2", "nobody=0.5"] {
            let out = run("x", Config::new().with("thresholds", vec![bad]));
            assert!(matches!(out, Err(StageError::InvalidConfig(_))), "{bad}");
        }
    }

    #[test]
    fn hash_needs_its_key() {
        let out = run("a@x.io", Config::new().with("operator", "hash"));
        assert!(matches!(out, Err(StageError::InvalidConfig(_))));
        let out = run("a@x.io", Config::new().with("operator", "hash").with("hash-key", "k")).unwrap();
        let Some(Value::Text(text)) = out.get("text") else { panic!() };
        assert!(text.starts_with("<EMAIL_") && text.len() == 16, "{text}");
    }

    #[test]
    fn clean_text_is_unchanged() {
        let out = run("Nothing to see, version 1.2.3.", Config::new()).unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("Nothing to see, version 1.2.3.".into())));
        assert_eq!(out.get("found"), Some(&Value::Texts(vec![])));
    }

    #[test]
    fn unknown_entity_is_rejected() {
        let out = run("x", Config::new().with("entities", vec!["shoe-size"]));
        assert!(matches!(out, Err(StageError::InvalidConfig(_))));
    }
}
