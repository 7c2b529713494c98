//! [`MemoryHistory`]: every user's history in memory, one [`UserIndex`] per tenant and user,
//! serving the host's [`Search`] capability.
//!
//! Confinement is structural: a search looks up the index of the call's tenant and user and
//! nothing else, so no query, filter or id can reach another user's items. A user with no
//! history gets empty results, not an error. Searching is synchronous CPU work on a small
//! per-user index; it runs on the calling task under a read lock that is never held across an
//! await.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use tailor_dsl::types::Item;

use super::dense::DenseScorer;
use super::index::{RetrievalError, TextEmbedder, UserIndex, UserIndexConfig};
use crate::host::services::{Hit, ItemFilter, Scope, Search, SearchQuery, ServiceError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UserKey {
    tenant: String,
    user: String,
}

impl UserKey {
    fn new(tenant: &str, user: &str) -> UserKey {
        UserKey { tenant: tenant.to_owned(), user: user.to_owned() }
    }
}

/// Per-user indices kept in memory.
pub struct MemoryHistory {
    config: UserIndexConfig,
    dense: Option<(Arc<dyn TextEmbedder>, Arc<dyn DenseScorer>)>,
    users: RwLock<HashMap<UserKey, UserIndex>>,
}

impl std::fmt::Debug for MemoryHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHistory").field("config", &self.config).field("dense", &self.dense.is_some()).finish()
    }
}

impl MemoryHistory {
    /// Histories searchable by BM25 only.
    pub fn new(config: UserIndexConfig) -> MemoryHistory {
        MemoryHistory { config, dense: None, users: RwLock::new(HashMap::new()) }
    }

    /// Histories searchable by every method.
    pub fn with_dense(
        config: UserIndexConfig,
        embedder: Arc<dyn TextEmbedder>,
        scorer: Arc<dyn DenseScorer>,
    ) -> MemoryHistory {
        MemoryHistory { config, dense: Some((embedder, scorer)), users: RwLock::new(HashMap::new()) }
    }

    /// Adds or replaces items of one user's history (see [`UserIndex::upsert_batch`]).
    pub fn upsert(&self, tenant: &str, user: &str, items: Vec<Arc<Item>>) -> Result<(), RetrievalError> {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        let key = UserKey::new(tenant, user);
        if let Some(index) = users.get_mut(&key) {
            return index.upsert_batch(items);
        }
        let mut index = match &self.dense {
            Some((embedder, scorer)) => UserIndex::with_dense(self.config, Arc::clone(embedder), Arc::clone(scorer))?,
            None => UserIndex::new(self.config),
        };
        index.upsert_batch(items)?;
        users.insert(key, index);
        Ok(())
    }

    /// Removes one item of one user's history; false if it was not there.
    pub fn remove(&self, tenant: &str, user: &str, id: &str) -> bool {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        users.get_mut(&UserKey::new(tenant, user)).is_some_and(|index| index.remove(id))
    }

    /// Forgets one user's whole history; false if there was none.
    pub fn erase_user(&self, tenant: &str, user: &str) -> bool {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        users.remove(&UserKey::new(tenant, user)).is_some()
    }

    /// How many items one user's history holds.
    pub fn len(&self, tenant: &str, user: &str) -> usize {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users.get(&UserKey::new(tenant, user)).map_or(0, UserIndex::len)
    }
}

impl From<RetrievalError> for ServiceError {
    fn from(e: RetrievalError) -> ServiceError {
        ServiceError::Unavailable(e.to_string())
    }
}

#[async_trait]
impl Search for MemoryHistory {
    async fn search(
        &self,
        scope: &Scope,
        query: SearchQuery,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Hit>, ServiceError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        match users.get(&UserKey::new(&scope.tenant, &scope.user)) {
            Some(index) => Ok(index.search(&query.text, query.method, query.k, filter)?),
            // The method must still be servable, so that a pipeline fails the same for a new user.
            None if self.dense.is_none() && query.method != crate::host::services::SearchMethod::Bm25 => {
                Err(RetrievalError::NoEmbedder.into())
            }
            None => Ok(Vec::new()),
        }
    }

    async fn recent(
        &self,
        scope: &Scope,
        limit: usize,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Arc<Item>>, ServiceError> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        Ok(users.get(&UserKey::new(&scope.tenant, &scope.user)).map_or_else(Vec::new, |i| i.recent(limit, filter)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::services::SearchMethod;
    use crate::retrieval::dense::ReferenceScorer;
    use crate::retrieval::index::tests::{HashedWords, item};

    fn scope(tenant: &str, user: &str) -> Scope {
        Scope { tenant: tenant.into(), user: user.into(), plugin: "retrieve".into() }
    }

    fn query(text: &str, method: SearchMethod) -> SearchQuery {
        SearchQuery { text: text.into(), method, k: 10 }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(f)
    }

    fn histories() -> MemoryHistory {
        let history = MemoryHistory::with_dense(
            UserIndexConfig::default(),
            Arc::new(HashedWords::default()),
            Arc::new(ReferenceScorer),
        );
        history.upsert("acme", "ann", vec![item("a1", "paper", "secret retrieval notes", Some(1.0))]).expect("ok");
        history.upsert("acme", "bob", vec![item("b1", "paper", "retrieval diary of bob", Some(2.0))]).expect("ok");
        history
            .upsert("other", "ann", vec![item("o1", "paper", "retrieval at another tenant", Some(3.0))])
            .expect("ok");
        history
    }

    #[test]
    fn search_sees_only_the_scoped_users_items() {
        let history = histories();
        for method in [SearchMethod::Bm25, SearchMethod::Dense, SearchMethod::Hybrid] {
            let hits = run(history.search(&scope("acme", "ann"), query("retrieval", method), None)).expect("search");
            let ids: Vec<&str> = hits.iter().map(|h| &*h.item.id).collect();
            assert_eq!(ids, ["a1"], "{method:?}");
        }
        let recent = run(history.recent(&scope("other", "ann"), 10, None)).expect("recent");
        assert_eq!(recent.iter().map(|i| &*i.id).collect::<Vec<_>>(), ["o1"]);
    }

    #[test]
    fn unknown_user_has_an_empty_history() {
        let history = histories();
        let hits = run(history.search(&scope("acme", "carol"), query("retrieval", SearchMethod::Hybrid), None));
        assert_eq!(hits, Ok(Vec::new()));
        assert_eq!(run(history.recent(&scope("acme", "carol"), 5, None)), Ok(Vec::new()));
    }

    #[test]
    fn remove_and_erase_edit_one_user() {
        let history = histories();
        history.upsert("acme", "ann", vec![item("a2", "note", "second note", None)]).expect("ok");
        assert_eq!(history.len("acme", "ann"), 2);
        assert!(history.remove("acme", "ann", "a1"));
        assert!(!history.remove("acme", "bob", "a2"));
        assert_eq!(history.len("acme", "ann"), 1);
        assert!(history.erase_user("acme", "ann"));
        assert!(!history.erase_user("acme", "ann"));
        assert_eq!(history.len("acme", "ann"), 0);
        assert_eq!(history.len("acme", "bob"), 1);
    }

    #[test]
    fn dense_without_an_embedder_is_unavailable() {
        let history = MemoryHistory::new(UserIndexConfig::default());
        history.upsert("t", "u", vec![item("x", "k", "some text", None)]).expect("ok");
        for user in ["u", "nobody"] {
            let result = run(history.search(&scope("t", user), query("text", SearchMethod::Dense), None));
            assert!(matches!(result, Err(ServiceError::Unavailable(_))), "{user}: {result:?}");
        }
        let hits = run(history.search(&scope("t", "u"), query("text", SearchMethod::Bm25), None)).expect("bm25");
        assert_eq!(hits.len(), 1);
    }
}
