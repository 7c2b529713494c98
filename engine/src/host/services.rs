//! What capabilities reach: the services behind `embed`, `search`, `complete`, `kv` and `now`.
//!
//! The host's capability imports only check grants, scope and limits, then call these traits.
//! The kernels, store and LLM backends implement them; tests implement them at the process
//! boundary (a fake LLM, an in-memory history). A service is always called for the user and
//! plugin the call is scoped to — a plugin cannot name another user.

use std::sync::Arc;

use async_trait::async_trait;
use tailor_dsl::types::Item;

/// Who a call is for: every search and cache access is confined to this scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub tenant: String,
    pub user: String,
    /// The plugin's name: its `kv` entries are its own.
    pub plugin: String,
}

/// A service failure, as the plugin will see it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("limit reached: {0}")]
    Limit(String),
    /// The egress guard refused the request (spec/privacy.md); plugins see it as an invalid
    /// request with this message.
    #[error("refused: {0}")]
    Refused(String),
}

/// A condition on items (a stage's `where`), applied by the search service before ranking.
pub type ItemFilter = Arc<dyn Fn(&Item) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMethod {
    Bm25,
    Dense,
    Hybrid,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: String,
    pub method: SearchMethod,
    pub k: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub item: Arc<Item>,
    pub score: f64,
}

/// The current user's history.
#[async_trait]
pub trait Search: Send + Sync {
    async fn search(
        &self,
        scope: &Scope,
        query: SearchQuery,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Hit>, ServiceError>;
    async fn recent(
        &self,
        scope: &Scope,
        limit: usize,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Arc<Item>>, ServiceError>;
}

/// Text embeddings.
#[async_trait]
pub trait Embed: Send + Sync {
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ServiceError>;
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub messages: Vec<Message>,
    pub n: u32,
    pub max_tokens: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub json_schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub texts: Vec<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// The LLM (behind the egress guard).
#[async_trait]
pub trait Complete: Send + Sync {
    async fn complete(&self, request: CompletionRequest) -> Result<Completion, ServiceError>;
}

/// A per-user, per-plugin cache with expiry.
#[async_trait]
pub trait Kv: Send + Sync {
    async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, ServiceError>;
    async fn set(&self, scope: &Scope, key: &str, value: Vec<u8>, ttl_seconds: Option<u64>)
    -> Result<(), ServiceError>;
    async fn delete(&self, scope: &Scope, key: &str) -> Result<(), ServiceError>;
}

/// The clock plugins see.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> f64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }
}

/// The services a call may reach; an absent one answers "unavailable".
#[derive(Clone)]
pub struct Services {
    pub search: Option<Arc<dyn Search>>,
    pub embed: Option<Arc<dyn Embed>>,
    pub complete: Option<Arc<dyn Complete>>,
    pub kv: Option<Arc<dyn Kv>>,
    pub clock: Arc<dyn Clock>,
}

impl Default for Services {
    fn default() -> Self {
        Services { search: None, embed: None, complete: None, kv: None, clock: Arc::new(SystemClock) }
    }
}
