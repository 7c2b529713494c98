//! `tailor:plugin/complete`: the LLM, for stages granted `complete`.

use super::bindings::tailor::plugin::complete::{Completion, Host, Request, Role};
use super::bindings::types::HostError;
use super::services::{self, CompletionRequest, Message};
use super::state::HostState;
use tailor_dsl::descriptor::Capability;

/// Bounds on one request.
pub const MAX_CANDIDATES: u32 = 16;
pub const MAX_TOKENS: u32 = 32_768;
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

impl Host for HostState {
    async fn complete(&mut self, request: Request) -> wasmtime::Result<Result<Completion, HostError>> {
        if let Err(e) = self.require(Capability::Complete) {
            return Ok(Err(e));
        }
        let prompt_bytes: usize = request.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + request.stop.iter().map(String::len).sum::<usize>()
            + request.json_schema.as_ref().map_or(0, String::len);
        let sampling_ok = (0.0..=2.0).contains(&request.temperature) && (0.0..=1.0).contains(&request.top_p);
        if request.n == 0 || request.messages.is_empty() || !sampling_ok {
            return Ok(Err(HostError::InvalidRequest(
                "n must be at least 1, messages non-empty, temperature in 0..=2 and top-p in 0..=1".into(),
            )));
        }
        if request.n > MAX_CANDIDATES || request.max_tokens > MAX_TOKENS || prompt_bytes > MAX_PROMPT_BYTES {
            return Ok(Err(HostError::Limit(format!(
                "n must be 1..={MAX_CANDIDATES}, max-tokens at most {MAX_TOKENS}, prompts at most {MAX_PROMPT_BYTES} bytes"
            ))));
        }
        let Some(service) = self.services.complete.clone() else {
            return Ok(Err(HostError::Unavailable("no LLM is configured".into())));
        };
        let request = CompletionRequest {
            messages: request
                .messages
                .into_iter()
                .map(|m| Message {
                    role: match m.role {
                        Role::System => services::Role::System,
                        Role::User => services::Role::User,
                        Role::Assistant => services::Role::Assistant,
                    },
                    content: m.content,
                })
                .collect(),
            n: request.n,
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            stop: request.stop,
            seed: request.seed,
            json_schema: request.json_schema,
        };
        Ok(service
            .complete(request)
            .await
            .map(|c| Completion {
                texts: c.texts,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
            })
            .map_err(HostError::from))
    }
}
