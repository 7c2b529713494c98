//! Why a stage or a host call failed: the WIT world's `stage-error` and `host-error`, as Rust
//! errors that work with `?`.
//!
//! The payloads are strings because that is what crosses the component boundary; the SDK's own
//! conversion failures stay typed ([`crate::ValueError`]) until they become one of these.

use crate::descriptor::Capability;

/// Why a host call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The stage was not granted this capability; the call was refused.
    #[error("capability `{0}` is not granted to this stage")]
    NotGranted(Capability),
    /// The service behind the capability failed (LLM server down, store error…).
    #[error("host service unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (empty input, bad parameter…).
    #[error("invalid host request: {0}")]
    InvalidRequest(String),
    /// A limit was reached (too many calls, too large a request…).
    #[error("host limit reached: {0}")]
    Limit(String),
}

/// Why a stage failed. The pipeline's `on-error` policy decides what happens next.
///
/// A [`HostError`] converts into [`StageError::Host`], so host calls compose with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// An input is missing or has the wrong type or content.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A config setting is unknown, missing or out of range.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A capability call failed and the plugin cannot go on without it.
    #[error("{0}")]
    Host(#[from] HostError),
    /// Anything else.
    #[error("stage failed: {0}")]
    Failed(String),
}

impl StageError {
    /// `StageError::InvalidInput` from anything displayable.
    pub fn invalid_input(message: impl std::fmt::Display) -> Self {
        StageError::InvalidInput(message.to_string())
    }

    /// `StageError::InvalidConfig` from anything displayable.
    pub fn invalid_config(message: impl std::fmt::Display) -> Self {
        StageError::InvalidConfig(message.to_string())
    }

    /// `StageError::Failed` from anything displayable.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        StageError::Failed(message.to_string())
    }
}
