//! `builtin:generate`: samples candidates from the LLM (spec/language.md §8.5).
//!
//! Renders nothing itself: `prompt` and `system` are template ports, so they arrive rendered by
//! the host. Sends the system message (when given and not blank) and the prompt as the user
//! message to `complete`, with the sampling settings as configured. With `schema`, the reply
//! is structured output: the backend constrains it to the JSON Schema, and `value` carries it
//! parsed.

use tailor_plugin_sdk::host::{self, CompletionRequest};
use tailor_plugin_sdk::prelude::*;

pub struct Generate;

impl Plugin for Generate {
    fn describe() -> Descriptor {
        Descriptor::builder("builtin:generate", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("renders a prompt and samples candidates from the LLM")
            .input(InputPort::template("prompt").doc("the user message, a template"))
            .input(InputPort::template("system").optional().doc("the system message, a template"))
            .output("text", "text", "the first candidate")
            .output("texts", "list<text>", "every candidate")
            .output("value", "any", "the first candidate parsed as JSON (with `schema`; otherwise none)")
            .config(ConfigField::integer("candidates", 1.0, 16.0).default(1.0).doc("how many candidates to sample"))
            .config(
                ConfigField::integer("max-tokens", 1.0, 32_768.0).default(256.0).doc("the most tokens per candidate"),
            )
            .config(ConfigField::number("temperature", 0.0, 2.0).default(0.7).doc("sampling temperature"))
            .config(ConfigField::number("top-p", 0.0, 1.0).default(1.0).doc("nucleus sampling"))
            .config(ConfigField::text_list("stop").doc("stop sequences"))
            .config(ConfigField::integer("seed", 0.0, 4_294_967_295.0).doc("sampling seed, for reproducible runs"))
            .config(ConfigField::text("schema").doc("a JSON Schema every candidate must satisfy (structured output)"))
            .grant(Capability::Complete)
            .build()
    }

    fn run(_ctx: &Context, inputs: &Inputs, config: &Config) -> Result<Outputs, StageError> {
        let request = build_request(inputs, config)?;
        let completion = host::complete(&request)?;
        host::debug(&format!(
            "{} candidate(s), {} prompt and {} completion tokens",
            completion.texts.len(),
            completion.prompt_tokens,
            completion.completion_tokens
        ));
        let first = completion.text().ok_or_else(|| StageError::failed("the LLM returned no candidates"))?.to_owned();
        let value = match config.opt::<String>("schema")? {
            Some(_) => Value::Json(
                serde_json::from_str(&first)
                    .map_err(|e| StageError::failed(format!("the LLM's reply is not the JSON asked for: {e}")))?,
            ),
            None => Value::None,
        };
        Ok(Outputs::new().text("text", first).texts("texts", completion.texts).set("value", value))
    }
}

export_plugin!(Generate);

/// The completion request for a call.
pub fn build_request(inputs: &Inputs, config: &Config) -> Result<CompletionRequest, StageError> {
    let mut request = CompletionRequest::new();
    if let Some(schema) = config.opt::<String>("schema")? {
        serde_json::from_str::<serde_json::Value>(&schema)
            .map_err(|e| StageError::invalid_config(format!("`schema` is not JSON: {e}")))?;
        request = request.json_schema(schema);
    }
    if let Some(system) = inputs.opt_text("system")?.filter(|s| !s.trim().is_empty()) {
        request = request.system(system);
    }
    Ok(request
        .user(inputs.text("prompt")?)
        .n(config.get("candidates")?)
        .max_tokens(config.get("max-tokens")?)
        .temperature(config.number("temperature")? as f32)
        .top_p(config.number("top-p")? as f32)
        .stop(config.texts("stop")?)
        .seed(config.opt::<u64>("seed")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_plugin_sdk::host::Role;
    use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

    #[test]
    fn passes_settings_and_returns_every_candidate() {
        let mut count = 0;
        let fake = FakeHost::new().reply_with(move |_| {
            count += 1;
            Ok(format!("candidate {count}"))
        });
        let inputs = Inputs::new().with("prompt", "Write a title").with("system", "Be brief.");
        let config =
            Config::new().with("candidates", 3.0).with("temperature", 0.0).with("stop", vec!["\n"]).with("seed", 7.0);
        let (out, fake) = with_host(fake, || call::<Generate>(inputs, config));
        let out = out.unwrap();
        assert_eq!(out.get("text"), Some(&Value::Text("candidate 1".into())));
        assert_eq!(out.get("texts").unwrap().get::<Vec<String>>().unwrap().len(), 3);
        let request = &fake.requests[0];
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.messages[1].content, "Write a title");
        assert_eq!((request.n, request.max_tokens, request.temperature, request.top_p), (3, 256, 0.0, 1.0));
        assert_eq!(request.stop, vec!["\n"]);
        assert_eq!(request.seed, Some(7));
    }

    #[test]
    fn a_schema_asks_for_structured_output_and_parses_the_reply() {
        let fake = FakeHost::new().reply_with(|_| Ok(r#"{"stars": 4}"#.into()));
        let schema = r#"{"type": "object", "properties": {"stars": {"enum": [1, 2, 3, 4, 5]}}}"#;
        let config = Config::new().with("schema", schema);
        let (out, fake) = with_host(fake, || call::<Generate>(Inputs::new().with("prompt", "Rate it"), config));
        assert_eq!(out.unwrap().get("value"), Some(&Value::Json(serde_json::json!({"stars": 4}))));
        assert_eq!(fake.requests[0].json_schema.as_deref(), Some(schema));

        let fake = FakeHost::new().reply_with(|_| Ok("four stars".into()));
        let config = Config::new().with("schema", schema);
        let (out, _) = with_host(fake, || call::<Generate>(Inputs::new().with("prompt", "Rate it"), config));
        assert!(matches!(out, Err(StageError::Failed(m)) if m.contains("not the JSON asked for")));

        let out = call::<Generate>(Inputs::new().with("prompt", "Rate it"), Config::new().with("schema", "{oops"));
        assert!(matches!(out, Err(StageError::InvalidConfig(_))));
    }

    #[test]
    fn blank_system_message_is_left_out() {
        let fake = FakeHost::new().reply_with(|_| Ok("ok".into()));
        let inputs = Inputs::new().with("prompt", "Hi").with("system", "  ");
        let (_, fake) = with_host(fake, || call::<Generate>(inputs, Config::new()));
        assert_eq!(fake.requests[0].messages.len(), 1);
        assert_eq!(fake.requests[0].seed, None);
    }

    #[test]
    fn missing_prompt_is_invalid_input() {
        let out = call::<Generate>(Inputs::new(), Config::new());
        assert!(matches!(out, Err(StageError::InvalidInput(_))));
    }

    #[test]
    fn llm_failure_is_a_host_error() {
        let fake = FakeHost::new().deny(Capability::Complete);
        let (out, _) = with_host(fake, || call::<Generate>(Inputs::new().with("prompt", "Hi"), Config::new()));
        assert!(matches!(out, Err(StageError::Host(_))));
    }
}
