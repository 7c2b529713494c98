//! Calls into the host: the world's capability imports, with SDK types and typed errors.
//!
//! Every call except [`log`] and [`now`] may come back as [`HostError::NotGranted`] when the
//! pipeline did not grant the capability to this stage. Inside a component these call the
//! imports; compiled for the machine (unit tests) they call the thread's
//! [`crate::testing::MockHost`], or fail with [`HostError::Unavailable`] when none is installed.

use std::time::Duration;

use crate::error::HostError;
use crate::value::Item;

/// How important a log message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// How `search` scores items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMethod {
    /// Lexical (BM25).
    Bm25,
    /// Embedding similarity.
    Dense,
    /// Both, fused by the host.
    Hybrid,
}

impl SearchMethod {
    /// The method named by a config word (`bm25`, `dense`, `hybrid`).
    pub fn parse(word: &str) -> Option<SearchMethod> {
        match word {
            "bm25" => Some(SearchMethod::Bm25),
            "dense" => Some(SearchMethod::Dense),
            "hybrid" => Some(SearchMethod::Hybrid),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SearchMethod::Bm25 => "bm25",
            SearchMethod::Dense => "dense",
            SearchMethod::Hybrid => "hybrid",
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub item: Item,
    pub score: f64,
}

/// Who says a message in a conversation with the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A request to the LLM. `CompletionRequest::new()` asks for one candidate of at most 256
/// tokens at temperature 0.7, top-p 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub messages: Vec<Message>,
    /// How many candidates.
    pub n: u32,
    pub max_tokens: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    /// A JSON Schema the reply must follow.
    pub json_schema: Option<String>,
}

impl Default for CompletionRequest {
    fn default() -> Self {
        CompletionRequest {
            messages: Vec::new(),
            n: 1,
            max_tokens: 256,
            temperature: 0.7,
            top_p: 1.0,
            stop: Vec::new(),
            seed: None,
            json_schema: None,
        }
    }
}

impl CompletionRequest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn message(mut self, role: Role, content: impl Into<String>) -> Self {
        self.messages.push(Message { role, content: content.into() });
        self
    }

    pub fn system(self, content: impl Into<String>) -> Self {
        self.message(Role::System, content)
    }

    pub fn user(self, content: impl Into<String>) -> Self {
        self.message(Role::User, content)
    }

    pub fn assistant(self, content: impl Into<String>) -> Self {
        self.message(Role::Assistant, content)
    }

    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = top_p;
        self
    }

    pub fn stop<I, S>(mut self, stop: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.stop = stop.into_iter().map(Into::into).collect();
        self
    }

    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    pub fn json_schema(mut self, schema: impl Into<String>) -> Self {
        self.json_schema = Some(schema.into());
        self
    }
}

/// What the LLM answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    /// One text per candidate.
    pub texts: Vec<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Completion {
    /// The first candidate, if any.
    pub fn text(&self) -> Option<&str> {
        self.texts.first().map(String::as_str)
    }
}

/// Writes to the run's log, attributed to this stage. Always granted.
pub fn log(level: LogLevel, message: &str) {
    backend::log(level, message);
}

pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

pub fn error(message: &str) {
    log(LogLevel::Error, message);
}

/// The host's clock, in seconds since the Unix epoch. Always granted.
pub fn now() -> f64 {
    backend::now()
}

/// The best matches for a query in the current user's history, best first (capability
/// `search`). The stage's `where` filter, if any, is already applied.
pub fn search(text: &str, method: SearchMethod, k: u32) -> Result<Vec<Hit>, HostError> {
    backend::search(text, method, k)
}

/// The user's most recent items, newest first (capability `search`).
pub fn recent(limit: u32) -> Result<Vec<Item>, HostError> {
    backend::recent(limit)
}

/// Embeddings of texts (capability `embed`): 384-dimensional, unit length, in order.
pub fn embed<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Vec<f32>>, HostError> {
    let texts: Vec<String> = texts.iter().map(|t| t.as_ref().to_owned()).collect();
    backend::embed(&texts)
}

/// Asks the LLM (capability `complete`), through the host's egress privacy guard.
pub fn complete(request: &CompletionRequest) -> Result<Completion, HostError> {
    backend::complete(request)
}

/// Reads this plugin's cache for the current user (capability `kv`).
pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    backend::kv_get(key)
}

/// Writes this plugin's cache for the current user (capability `kv`); `ttl` bounds how long the
/// value lives (whole seconds, rounded up).
pub fn kv_set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), HostError> {
    backend::kv_set(key, value, ttl)
}

/// Removes a key from this plugin's cache (capability `kv`).
pub fn kv_delete(key: &str) -> Result<(), HostError> {
    backend::kv_delete(key)
}

/// A TTL in whole seconds, rounded up so that a sub-second TTL does not mean "forever".
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use std::time::Duration;

    use super::{Completion, CompletionRequest, Hit, LogLevel, SearchMethod};
    use crate::bindings::tailor::plugin as wit;
    use crate::error::HostError;
    use crate::value::Item;
    use crate::wit as convert;

    pub(super) fn log(level: LogLevel, message: &str) {
        wit::log::log(convert::log_level(level), message);
    }

    pub(super) fn now() -> f64 {
        wit::now::now()
    }

    pub(super) fn search(text: &str, method: SearchMethod, k: u32) -> Result<Vec<Hit>, HostError> {
        let query = wit::search::Query { text: text.to_owned(), method: convert::search_method(method), k };
        let hits = wit::search::search(&query).map_err(HostError::from)?;
        hits.into_iter().map(|hit| Ok(Hit { item: convert::host_item(hit.item)?, score: hit.score })).collect()
    }

    pub(super) fn recent(limit: u32) -> Result<Vec<Item>, HostError> {
        let items = wit::search::recent(limit).map_err(HostError::from)?;
        items.into_iter().map(convert::host_item).collect()
    }

    pub(super) fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, HostError> {
        wit::embed::embed(texts).map_err(HostError::from)
    }

    pub(super) fn complete(request: &CompletionRequest) -> Result<Completion, HostError> {
        let completion = wit::complete::complete(&convert::completion_request(request)).map_err(HostError::from)?;
        Ok(Completion {
            texts: completion.texts,
            prompt_tokens: completion.prompt_tokens,
            completion_tokens: completion.completion_tokens,
        })
    }

    pub(super) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        wit::kv::get(key).map_err(HostError::from)
    }

    pub(super) fn kv_set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), HostError> {
        wit::kv::set(key, value, ttl.map(super::ttl_seconds)).map_err(HostError::from)
    }

    pub(super) fn kv_delete(key: &str) -> Result<(), HostError> {
        wit::kv::delete(key).map_err(HostError::from)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use std::time::Duration;

    use super::{Completion, CompletionRequest, Hit, LogLevel, SearchMethod};
    use crate::error::HostError;
    use crate::testing::with_mock;
    use crate::value::Item;

    pub(super) fn log(level: LogLevel, message: &str) {
        // Without a mock, logging is best effort.
        let _ = with_mock(|h| h.log(level, message));
    }

    pub(super) fn now() -> f64 {
        with_mock(|h| h.now()).unwrap_or(0.0)
    }

    pub(super) fn search(text: &str, method: SearchMethod, k: u32) -> Result<Vec<Hit>, HostError> {
        with_mock(|h| h.search(text, method, k))?
    }

    pub(super) fn recent(limit: u32) -> Result<Vec<Item>, HostError> {
        with_mock(|h| h.recent(limit))?
    }

    pub(super) fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, HostError> {
        with_mock(|h| h.embed(texts))?
    }

    pub(super) fn complete(request: &CompletionRequest) -> Result<Completion, HostError> {
        with_mock(|h| h.complete(request))?
    }

    pub(super) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        with_mock(|h| h.kv_get(key))?
    }

    pub(super) fn kv_set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), HostError> {
        with_mock(|h| h.kv_set(key, value, ttl))?
    }

    pub(super) fn kv_delete(key: &str) -> Result<(), HostError> {
        with_mock(|h| h.kv_delete(key))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::from_secs(86_400)), 86_400);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn search_methods_parse_their_config_words() {
        for m in [SearchMethod::Bm25, SearchMethod::Dense, SearchMethod::Hybrid] {
            assert_eq!(SearchMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(SearchMethod::parse("BM25"), None);
    }

    #[test]
    fn without_a_mock_host_calls_are_unavailable() {
        assert!(matches!(recent(3), Err(HostError::Unavailable(_))));
        assert_eq!(now(), 0.0);
    }
}
