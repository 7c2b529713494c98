//! Stage results kept for a stage's `cache=` duration.
//!
//! A result is keyed by the tenant and user, the pipeline's fingerprint, the stage, the
//! version of the user's history, and the exact inputs and config the plugin was given; so a
//! changed pipeline, plugin version, input or history never sees an old result. Erasing a
//! user drops theirs at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::Digest as _;
use tailor_dsl::types::{Value, to_json};

/// Where a stage result is filed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    pub tenant: String,
    pub user: String,
    /// A hash of everything else the result depends on.
    pub digest: String,
}

impl CacheKey {
    pub fn new(
        tenant: &str,
        user: &str,
        fingerprint: &str,
        stage: &str,
        history_version: u64,
        inputs: &[(String, Value)],
        config: &[(String, Value)],
    ) -> CacheKey {
        let mut h = sha2::Sha256::new();
        // Each part is length-prefixed so no two different keys hash the same text.
        let mut part = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        part(fingerprint);
        part(stage);
        part(&history_version.to_string());
        for group in [inputs, config] {
            part(&group.len().to_string());
            for (name, value) in group {
                part(name);
                part(&to_json(value));
            }
        }
        let digest = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        CacheKey { tenant: tenant.to_owned(), user: user.to_owned(), digest }
    }
}

/// A store of stage results with expiry.
#[async_trait]
pub trait StageCache: Send + Sync {
    async fn get(&self, key: &CacheKey) -> Option<Vec<Value>>;
    async fn put(&self, key: CacheKey, outputs: Vec<Value>, ttl: Duration);
    /// Drops every result of one user.
    async fn forget_user(&self, tenant: &str, user: &str);
}

/// An in-process cache holding at most `capacity` results; the oldest go first.
pub struct MemoryStageCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: BTreeMap<CacheKey, (Instant, Vec<Value>)>,
    order: VecDeque<CacheKey>,
}

impl MemoryStageCache {
    pub fn new(capacity: usize) -> MemoryStageCache {
        MemoryStageCache { capacity: capacity.max(1), inner: Mutex::default() }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves entries that are still each whole.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl StageCache for MemoryStageCache {
    async fn get(&self, key: &CacheKey) -> Option<Vec<Value>> {
        let mut entries = self.lock();
        match entries.map.get(key) {
            Some((expires, values)) if *expires > Instant::now() => Some(values.clone()),
            Some(_) => {
                entries.map.remove(key);
                None
            }
            None => None,
        }
    }

    async fn put(&self, key: CacheKey, outputs: Vec<Value>, ttl: Duration) {
        let Some(expires) = Instant::now().checked_add(ttl) else { return };
        let mut entries = self.lock();
        if entries.map.insert(key.clone(), (expires, outputs)).is_none() {
            entries.order.push_back(key);
        }
        while entries.map.len() > self.capacity {
            match entries.order.pop_front() {
                Some(old) => {
                    entries.map.remove(&old);
                }
                None => break,
            }
        }
        // Keys already dropped (expired, forgotten) linger in `order`; trim them now and then.
        if entries.order.len() > 2 * self.capacity {
            let Entries { map, order } = &mut *entries;
            order.retain(|k| map.contains_key(k));
        }
    }

    async fn forget_user(&self, tenant: &str, user: &str) {
        self.lock().map.retain(|k, _| !(k.tenant == tenant && k.user == user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str, n: u64) -> CacheKey {
        CacheKey::new("t", user, "fp", "stage", n, &[("q".into(), Value::text("x"))], &[])
    }

    #[tokio::test]
    async fn keys_differ_by_every_part() {
        let base = key("u", 1);
        assert_ne!(base, key("v", 1));
        assert_ne!(base, key("u", 2));
        assert_ne!(base, CacheKey::new("t", "u", "fp2", "stage", 1, &[("q".into(), Value::text("x"))], &[]));
        assert_ne!(base, CacheKey::new("t", "u", "fp", "stage", 1, &[("q".into(), Value::text("y"))], &[]));
        assert_ne!(base, CacheKey::new("t", "u", "fp", "stage", 1, &[], &[("q".into(), Value::text("x"))]));
        assert_eq!(base, key("u", 1));
    }

    #[tokio::test]
    async fn entries_expire_are_bounded_and_forgotten_per_user() {
        let cache = MemoryStageCache::new(2);
        cache.put(key("u", 1), vec![Value::Number(1.0)], Duration::from_secs(60)).await;
        assert_eq!(cache.get(&key("u", 1)).await, Some(vec![Value::Number(1.0)]));
        cache.put(key("u", 2), vec![], Duration::ZERO).await;
        assert_eq!(cache.get(&key("u", 2)).await, None, "a zero ttl is expired at once");
        cache.put(key("v", 1), vec![], Duration::from_secs(60)).await;
        cache.put(key("w", 1), vec![], Duration::from_secs(60)).await;
        assert!(cache.len() <= 2);
        assert_eq!(cache.get(&key("u", 1)).await, None, "the oldest entry made room");
        cache.forget_user("t", "v").await;
        assert_eq!(cache.get(&key("v", 1)).await, None);
        assert!(cache.get(&key("w", 1)).await.is_some());
    }
}
