//! `tailor:plugin/embed`: text embeddings, for stages granted `embed`.

use super::bindings::tailor::plugin::embed::Host;
use super::bindings::types::HostError;
use super::state::HostState;
use tailor_dsl::descriptor::Capability;

/// Most texts in one call, and most bytes of text.
pub const MAX_TEXTS: usize = 512;
pub const MAX_BYTES: usize = 1 << 20;

impl Host for HostState {
    async fn embed(&mut self, texts: Vec<String>) -> wasmtime::Result<Result<Vec<Vec<f32>>, HostError>> {
        if let Err(e) = self.require(Capability::Embed) {
            return Ok(Err(e));
        }
        if texts.len() > MAX_TEXTS || texts.iter().map(String::len).sum::<usize>() > MAX_BYTES {
            return Ok(Err(HostError::Limit(format!("at most {MAX_TEXTS} texts and {MAX_BYTES} bytes per call"))));
        }
        let Some(service) = self.services.embed.clone() else {
            return Ok(Err(HostError::Unavailable("no encoder is configured".into())));
        };
        Ok(service.embed(texts).await.map_err(HostError::from))
    }
}
