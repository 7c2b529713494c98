//! Users' histories as the `search` and `kv` capabilities see them: the [`Store`] holds the
//! items and their embeddings; a per-user retrieval index is built from it on first use, kept
//! in step with every ingest and delete made through this value, and rebuilt whenever the
//! store's history version moved on without it (another process ingested).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use tailor_dsl::types::Item;

use super::{Embedding, Erased, Store, StoreError, StoredItem};
use crate::exec::StageCache;
use crate::host::services::{Embed, Hit, ItemFilter, Kv, Scope, Search, SearchQuery, ServiceError};
use crate::retrieval::{DenseScorer, RetrievalError, TextEmbedder, UserIndex, UserIndexConfig};

/// Indexes kept in memory at most; the least recently used goes first.
const MAX_LOADED_USERS: usize = 1024;

/// The text embedder used at ingest and query time, and the name stored with its vectors (a
/// vector made by another model is recomputed, never mixed in).
#[derive(Clone)]
pub struct DenseSetup {
    pub model: String,
    pub embedder: Arc<dyn TextEmbedder>,
    pub scorer: Arc<dyn DenseScorer>,
}

impl DenseSetup {
    /// all-MiniLM-L6-v2 on the kernels (its weights fetched the first time), as ingest and dense
    /// search use it.
    pub fn minilm() -> Result<DenseSetup, String> {
        let embedder = crate::retrieval::MiniLm::shared().map_err(|e| format!("loading the text encoder: {e}"))?;
        let scorer = crate::retrieval::KernelScorer::shared().map_err(|e| format!("starting the kernels: {e}"))?;
        Ok(DenseSetup { model: "all-MiniLM-L6-v2".into(), embedder: Arc::new(embedder), scorer: Arc::new(scorer) })
    }
}

struct Loaded {
    version: u64,
    index: Arc<RwLock<UserIndex>>,
    used: u64,
}

/// Histories over a store.
pub struct Histories {
    store: Arc<dyn Store>,
    dense: Option<DenseSetup>,
    config: UserIndexConfig,
    caches: Vec<Arc<dyn StageCache>>,
    loaded: Mutex<(u64, LoadedIndexes)>,
}

/// The users' loaded indexes, by tenant and user.
type LoadedIndexes = HashMap<(String, String), Loaded>;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
    #[error("{0}")]
    Task(String),
}

impl From<HistoryError> for ServiceError {
    fn from(e: HistoryError) -> ServiceError {
        ServiceError::Unavailable(e.to_string())
    }
}

impl Histories {
    pub fn new(store: Arc<dyn Store>, dense: Option<DenseSetup>, config: UserIndexConfig) -> Histories {
        Histories { store, dense, config, caches: Vec::new(), loaded: Mutex::new((0, HashMap::new())) }
    }

    /// Stage caches to clear of a user when their history is erased.
    pub fn with_cache(mut self, cache: Arc<dyn StageCache>) -> Histories {
        self.caches.push(cache);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Adds or replaces items by id: embeds them (when dense retrieval is set up), stores them
    /// with their embeddings in one transaction, and updates the user's index. Returns the
    /// user's new history version. On error nothing is stored.
    pub async fn ingest(&self, tenant: &str, user: &str, items: Vec<Item>) -> Result<u64, HistoryError> {
        let vectors = match &self.dense {
            Some(dense) => {
                let embedder = Arc::clone(&dense.embedder);
                let texts: Vec<String> = items.iter().map(|i| i.text.to_string()).collect();
                let vectors = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    embedder.embed(&refs)
                })
                .await
                .map_err(|e| HistoryError::Task(e.to_string()))?
                .map_err(|message| RetrievalError::Embedder { message })?;
                if vectors.len() != items.len() {
                    return Err(RetrievalError::EmbeddingCount { expected: items.len(), found: vectors.len() }.into());
                }
                Some(vectors)
            }
            None => None,
        };
        let stored: Vec<StoredItem> = match (&self.dense, &vectors) {
            (Some(dense), Some(vectors)) => items
                .iter()
                .zip(vectors)
                .map(|(item, v)| StoredItem {
                    item: item.clone(),
                    embedding: Some(Embedding { model: dense.model.clone(), vector: v.clone() }),
                })
                .collect(),
            _ => items.iter().map(|item| StoredItem { item: item.clone(), embedding: None }).collect(),
        };
        let before = self.store.history_version(tenant, user).await?;
        let version = self.store.upsert_items(tenant, user, stored).await?;
        // Keep a loaded index in step when it was current and no other writer came between
        // (the upsert bumps the version exactly once); otherwise it is rebuilt on next use.
        if version != before + 1 {
            self.unload(tenant, user);
        } else if let Some(index) = self.current_index(tenant, user, before) {
            let entries: Vec<(Arc<Item>, Option<Vec<f32>>)> = match vectors {
                Some(vectors) => items.into_iter().map(Arc::new).zip(vectors.into_iter().map(Some)).collect(),
                None => items.into_iter().map(|i| (Arc::new(i), None)).collect(),
            };
            let updated = index.write().unwrap_or_else(PoisonError::into_inner).upsert_embedded(entries);
            match updated {
                Ok(()) => self.set_version(tenant, user, version),
                Err(_) => self.unload(tenant, user),
            }
        }
        Ok(version)
    }

    /// Removes one item; whether it existed.
    pub async fn delete(&self, tenant: &str, user: &str, id: &str) -> Result<bool, HistoryError> {
        let before = self.store.history_version(tenant, user).await?;
        let existed = self.store.delete_item(tenant, user, id).await?;
        if existed {
            let version = self.store.history_version(tenant, user).await?;
            match self.current_index(tenant, user, before) {
                Some(index) if version == before + 1 => {
                    index.write().unwrap_or_else(PoisonError::into_inner).remove(id);
                    self.set_version(tenant, user, version);
                }
                _ => self.unload(tenant, user),
            }
        }
        Ok(existed)
    }

    /// Removes the user completely: items, embeddings, index, plugin cache, stage caches.
    pub async fn erase(&self, tenant: &str, user: &str) -> Result<Erased, HistoryError> {
        let erased = self.store.erase_user(tenant, user).await?;
        self.unload(tenant, user);
        for cache in &self.caches {
            cache.forget_user(tenant, user).await;
        }
        Ok(erased)
    }

    /// The user's index, current with the store.
    async fn index(&self, tenant: &str, user: &str) -> Result<Arc<RwLock<UserIndex>>, HistoryError> {
        let version = self.store.history_version(tenant, user).await?;
        if let Some(index) = self.current_index(tenant, user, version) {
            return Ok(index);
        }
        let stored = self.store.items(tenant, user).await?;
        let mut index = match &self.dense {
            Some(d) => UserIndex::with_dense(self.config, Arc::clone(&d.embedder), Arc::clone(&d.scorer))?,
            None => UserIndex::new(self.config),
        };
        let model = self.dense.as_ref().map(|d| d.model.as_str());
        let entries = stored
            .into_iter()
            .map(|s| {
                let vector = s.embedding.filter(|e| Some(e.model.as_str()) == model).map(|e| e.vector);
                (Arc::new(s.item), vector)
            })
            .collect();
        let index = tokio::task::spawn_blocking(move || index.upsert_embedded(entries).map(|()| index))
            .await
            .map_err(|e| HistoryError::Task(e.to_string()))??;
        let index = Arc::new(RwLock::new(index));
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let (clock, users) = &mut *loaded;
        *clock += 1;
        if users.len() >= MAX_LOADED_USERS
            && let Some(oldest) = users.iter().min_by_key(|(_, l)| l.used).map(|(k, _)| k.clone())
        {
            users.remove(&oldest);
        }
        users.insert((tenant.to_owned(), user.to_owned()), Loaded { version, index: Arc::clone(&index), used: *clock });
        Ok(index)
    }

    fn current_index(&self, tenant: &str, user: &str, version: u64) -> Option<Arc<RwLock<UserIndex>>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let (clock, users) = &mut *loaded;
        *clock += 1;
        let entry = users.get_mut(&(tenant.to_owned(), user.to_owned()))?;
        entry.used = *clock;
        (entry.version == version).then(|| Arc::clone(&entry.index))
    }

    fn set_version(&self, tenant: &str, user: &str, version: u64) {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = loaded.1.get_mut(&(tenant.to_owned(), user.to_owned())) {
            entry.version = version;
        }
    }

    fn unload(&self, tenant: &str, user: &str) {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner).1.remove(&(tenant.to_owned(), user.to_owned()));
    }
}

#[async_trait]
impl Search for Histories {
    async fn search(
        &self,
        scope: &Scope,
        query: SearchQuery,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Hit>, ServiceError> {
        let index = self.index(&scope.tenant, &scope.user).await?;
        let filter = filter.cloned();
        tokio::task::spawn_blocking(move || {
            let index = index.read().unwrap_or_else(PoisonError::into_inner);
            index.search(&query.text, query.method, query.k, filter.as_ref())
        })
        .await
        .map_err(|e| ServiceError::Unavailable(e.to_string()))?
        .map_err(ServiceError::from)
    }

    async fn recent(
        &self,
        scope: &Scope,
        limit: usize,
        filter: Option<&ItemFilter>,
    ) -> Result<Vec<Arc<Item>>, ServiceError> {
        let index = self.index(&scope.tenant, &scope.user).await?;
        let index = index.read().unwrap_or_else(PoisonError::into_inner);
        Ok(index.recent(limit, filter))
    }
}

/// The `embed` capability over a text embedder (run on a blocking thread).
pub struct EmbedWith(pub Arc<dyn TextEmbedder>);

#[async_trait]
impl Embed for EmbedWith {
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ServiceError> {
        let embedder = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| ServiceError::Unavailable(e.to_string()))?
        .map_err(ServiceError::Unavailable)
    }
}

/// The `kv` capability over the store.
pub struct StoreKv(pub Arc<dyn Store>);

fn unavailable(e: StoreError) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

#[async_trait]
impl Kv for StoreKv {
    async fn get(&self, scope: &Scope, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        self.0.kv_get(&scope.tenant, &scope.user, &scope.plugin, key).await.map_err(unavailable)
    }

    async fn set(
        &self,
        scope: &Scope,
        key: &str,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> Result<(), ServiceError> {
        self.0.kv_set(&scope.tenant, &scope.user, &scope.plugin, key, value, ttl_seconds).await.map_err(unavailable)
    }

    async fn delete(&self, scope: &Scope, key: &str) -> Result<(), ServiceError> {
        self.0.kv_delete(&scope.tenant, &scope.user, &scope.plugin, key).await.map(|_| ()).map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::MemoryStageCache;
    use crate::host::services::SearchMethod;
    use crate::retrieval::ReferenceScorer;
    use crate::store::SqliteStore;

    /// A deterministic embedder at the process-internal boundary: one dimension per word bucket.
    struct Words;
    impl TextEmbedder for Words {
        fn dim(&self) -> usize {
            16
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = [0.0f32; 16];
                    for w in t.split_whitespace() {
                        v[w.bytes().map(usize::from).sum::<usize>() % 16] += 1.0;
                    }
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                    v.iter().map(|x| x / n).collect()
                })
                .collect())
        }
    }

    fn item(id: &str, text: &str) -> Item {
        Item { id: id.into(), kind: "note".into(), text: text.into(), timestamp: None, fields: Default::default() }
    }

    fn setup() -> (Arc<SqliteStore>, Histories) {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let dense = DenseSetup { model: "words".into(), embedder: Arc::new(Words), scorer: Arc::new(ReferenceScorer) };
        let h = Histories::new(store.clone(), Some(dense), UserIndexConfig::default());
        (store, h)
    }

    fn scope(user: &str) -> Scope {
        Scope { tenant: "t".into(), user: user.into(), plugin: "p".into() }
    }

    async fn ids(h: &Histories, user: &str, text: &str, method: SearchMethod) -> Vec<String> {
        let q = SearchQuery { text: text.into(), method, k: 10 };
        h.search(&scope(user), q, None).await.unwrap().iter().map(|h| h.item.id.to_string()).collect()
    }

    #[test]
    fn ingest_stores_embeddings_and_search_follows_every_change() {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap().block_on(async {
            let (store, h) = setup();
            h.ingest("t", "u", vec![item("a", "green tea notes"), item("b", "coffee beans")]).await.unwrap();
            h.ingest("t", "v", vec![item("z", "green tea of another user")]).await.unwrap();
            let stored = store.items("t", "u").await.unwrap();
            assert!(stored.iter().all(|s| s.embedding.as_ref().is_some_and(|e| e.model == "words")));
            for method in [SearchMethod::Bm25, SearchMethod::Dense, SearchMethod::Hybrid] {
                assert_eq!(ids(&h, "u", "green tea", method).await[0], "a", "{method:?}");
                assert!(!ids(&h, "u", "green tea", method).await.contains(&"z".to_string()));
            }
            // Changes through this value update the loaded index.
            h.ingest("t", "u", vec![item("c", "oolong tea leaves")]).await.unwrap();
            assert!(ids(&h, "u", "oolong", SearchMethod::Bm25).await.contains(&"c".to_string()));
            assert!(h.delete("t", "u", "c").await.unwrap());
            assert!(!ids(&h, "u", "oolong", SearchMethod::Bm25).await.contains(&"c".to_string()));
            // A change made straight in the store (another process) is seen too.
            store
                .upsert_items("t", "u", vec![StoredItem { item: item("d", "matcha whisk"), embedding: None }])
                .await
                .unwrap();
            assert_eq!(ids(&h, "u", "matcha", SearchMethod::Dense).await[0], "d", "embedded when loaded");
        });
    }

    #[test]
    fn erase_forgets_the_user_everywhere() {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap().block_on(async {
            let (store, h) = setup();
            let cache = Arc::new(MemoryStageCache::new(8));
            let h = h.with_cache(cache.clone());
            h.ingest("t", "u", vec![item("a", "green tea")]).await.unwrap();
            let key = crate::exec::CacheKey::new("t", "u", "fp", "s", 1, &[], &[]);
            cache.put(key.clone(), vec![], std::time::Duration::from_secs(60)).await;
            StoreKv(store.clone()).set(&scope("u"), "k", b"v".to_vec(), None).await.unwrap();
            assert_eq!(ids(&h, "u", "tea", SearchMethod::Bm25).await, ["a"]);
            let erased = h.erase("t", "u").await.unwrap();
            assert_eq!((erased.items, erased.kv), (1, 1));
            assert!(ids(&h, "u", "tea", SearchMethod::Bm25).await.is_empty());
            assert_eq!(cache.get(&key).await, None);
            assert_eq!(StoreKv(store.clone()).get(&scope("u"), "k").await.unwrap(), None);
        });
    }
}
