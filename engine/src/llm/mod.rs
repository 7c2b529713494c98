//! LLM backends behind the `complete` capability.
//!
//! [`OpenAi`] talks to any vLLM or OpenAI-compatible server. Every backend implements
//! [`Complete`](crate::host::services::Complete) for plugins and [`Llm`] for callers that also
//! want streaming (the daemon's chat endpoint) and typed errors.

mod local;
mod openai;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;

pub use self::local::{LazyLocal, LocalLlm, MAX_PROMPT_TOKENS};
pub(crate) use self::openai::role_name;
pub use self::openai::{Endpoint, OpenAi, OpenAiConfig, Structured};
use crate::host::services::{Completion, CompletionRequest, ServiceError};

/// Why an LLM call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM server did not answer within {ms} ms")]
    Timeout { ms: u64 },
    #[error("cannot reach the LLM server at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the LLM server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the LLM server's reply is malformed: {0}")]
    Malformed(String),
    #[error("the LLM's reply was cut off at the token limit ({max_tokens} tokens)")]
    Truncated { max_tokens: u32 },
    #[error("the LLM server failed {failures} times in a row; not calling it for {retry_in_ms} ms")]
    CircuitOpen { failures: u32, retry_in_ms: u64 },
    #[error("invalid LLM request: {0}")]
    InvalidRequest(String),
}

impl LlmError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Connect { .. } => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<LlmError> for ServiceError {
    fn from(e: LlmError) -> ServiceError {
        match e {
            LlmError::InvalidRequest(m) => ServiceError::InvalidRequest(m),
            LlmError::CircuitOpen { .. } => ServiceError::Limit(e.to_string()),
            other => ServiceError::Unavailable(other.to_string()),
        }
    }
}

/// What a stream carries: text as it is generated, and (once, usually last) the token counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Usage { prompt_tokens: u32, completion_tokens: u32 },
}

impl Piece {
    pub fn text(&self) -> Option<&str> {
        match self {
            Piece::Text(t) => Some(t),
            Piece::Usage { .. } => None,
        }
    }
}

/// Text as it is generated.
pub type TokenStream = Pin<Box<dyn Stream<Item = Result<Piece, LlmError>> + Send>>;

/// An LLM with typed errors and streaming.
#[async_trait]
pub trait Llm: Send + Sync {
    /// A short name for logs and traces (`openai:MODEL`, `local:smollm2`).
    fn name(&self) -> String;
    async fn generate(&self, request: CompletionRequest) -> Result<Completion, LlmError>;
    /// The first candidate's text, piece by piece.
    async fn stream(&self, request: CompletionRequest) -> Result<TokenStream, LlmError>;
}
