//! Where users' histories live: tenants → users → history items (with their embeddings),
//! plugin `kv` entries, and each user's history version.
//!
//! [`Store`] is the contract; [`SqliteStore`] the embedded default (one file, WAL,
//! `synchronous=FULL`, schema migrations). Every method takes the tenant and every statement is
//! bound to it inside the store, so no caller can reach another tenant's rows by mistake.
//! A user's **history version** goes up with every change to their items; results computed from
//! a history (stage caches) are keyed by it.

mod history;
mod sqlite;

use async_trait::async_trait;
use tailor_dsl::types::{Item, Value, parse_timestamp};

pub use self::history::{DenseSetup, EmbedWith, Histories, HistoryError, StoreKv};
pub use self::sqlite::SqliteStore;

/// A history item with the embedding computed for it at ingest, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub item: Item,
    pub embedding: Option<Embedding>,
}

/// An item's embedding and the model that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub model: String,
    pub vector: Vec<f32>,
}

/// Everything kept about one user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserExport {
    pub tenant: String,
    pub user: String,
    pub history_version: u64,
    pub items: Vec<Item>,
    /// Plugin cache entries: (plugin, key, value).
    pub kv: Vec<(String, String, Vec<u8>)>,
}

/// What an erase removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erased {
    pub items: u64,
    pub kv: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {message}")]
    Open { path: String, message: String },
    #[error("{path}: schema version {found} is newer than this build knows ({known}); upgrade tailor")]
    NewerSchema { path: String, found: i64, known: i64 },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("store: {0}")]
    Task(String),
}

/// The storage contract.
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts or replaces items by id, all or none; returns the new history version.
    async fn upsert_items(&self, tenant: &str, user: &str, items: Vec<StoredItem>) -> Result<u64, StoreError>;
    /// Removes one item; whether it existed.
    async fn delete_item(&self, tenant: &str, user: &str, id: &str) -> Result<bool, StoreError>;
    /// The user's items (with embeddings), oldest first by ingest order.
    async fn items(&self, tenant: &str, user: &str) -> Result<Vec<StoredItem>, StoreError>;
    /// The version of the user's history: 0 for a user never seen.
    async fn history_version(&self, tenant: &str, user: &str) -> Result<u64, StoreError>;
    /// The users of a tenant, sorted.
    async fn users(&self, tenant: &str) -> Result<Vec<String>, StoreError>;
    async fn export_user(&self, tenant: &str, user: &str) -> Result<UserExport, StoreError>;
    /// Removes the user and everything kept about them.
    async fn erase_user(&self, tenant: &str, user: &str) -> Result<Erased, StoreError>;
    async fn kv_get(&self, tenant: &str, user: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn kv_set(
        &self,
        tenant: &str,
        user: &str,
        plugin: &str,
        key: &str,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError>;
    async fn kv_delete(&self, tenant: &str, user: &str, plugin: &str, key: &str) -> Result<bool, StoreError>;
}

/// An item from one JSON object: `id` and `text` required; `kind` (default `"note"`),
/// `timestamp` (seconds since the epoch, or an RFC 3339 date or date-time) and `fields`
/// (an object) optional; any other key is refused so a typo is not silently dropped.
pub fn item_from_json(json: &serde_json::Value) -> Result<Item, String> {
    let obj = json.as_object().ok_or("an item is a JSON object")?;
    let text_of = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{key}` should be a string, got {other}")),
        }
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "id" | "kind" | "text" | "timestamp" | "fields") {
            return Err(format!("unknown key `{key}` (an item has id, kind, text, timestamp, fields)"));
        }
    }
    let id = text_of("id")?.ok_or("`id` is required")?;
    if id.is_empty() || id.len() > 256 {
        return Err("`id` must be 1 to 256 bytes".into());
    }
    let text = text_of("text")?.ok_or("`text` is required")?;
    let kind = text_of("kind")?.unwrap_or_else(|| "note".into());
    let timestamp = match obj.get("timestamp") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            Some(n.as_f64().filter(|t| t.is_finite()).ok_or("`timestamp` is not a finite number")?)
        }
        Some(serde_json::Value::String(s)) => {
            Some(parse_timestamp(s).ok_or_else(|| format!("`timestamp` {s:?} is not an RFC 3339 date or date-time"))?)
        }
        Some(other) => return Err(format!("`timestamp` should be a number or a date string, got {other}")),
    };
    let fields = match obj.get("fields") {
        None | Some(serde_json::Value::Null) => Default::default(),
        Some(f @ serde_json::Value::Object(_)) => match crate::host::json_to_value(&f.to_string()) {
            Ok(Value::Record(map)) => (*map).clone(),
            Ok(_) => unreachable!("a JSON object converts to a record"),
            Err(e) => return Err(format!("`fields`: {e}")),
        },
        Some(other) => return Err(format!("`fields` should be an object, got {other}")),
    };
    Ok(Item { id: id.into(), kind: kind.into(), text: text.into(), timestamp, fields })
}

/// An item as the JSON object [`item_from_json`] reads.
pub fn item_to_json(item: &Item) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), item.id.to_string().into());
    obj.insert("kind".into(), item.kind.to_string().into());
    obj.insert("text".into(), item.text.to_string().into());
    if let Some(t) = item.timestamp {
        obj.insert("timestamp".into(), t.into());
    }
    if !item.fields.is_empty() {
        let record = Value::Record(std::sync::Arc::new(item.fields.clone()));
        let fields =
            serde_json::from_str(&tailor_dsl::types::to_json(&record)).expect("invariant: to_json writes valid JSON");
        obj.insert("fields".into(), fields);
    }
    serde_json::Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_read_from_json_with_checks() {
        let item = item_from_json(&json!({"id": "a", "text": "hi", "timestamp": "2024-01-10", "fields": {"stars": 4}}))
            .unwrap();
        assert_eq!(&*item.kind, "note");
        assert_eq!(item.timestamp, Some(1_704_844_800.0));
        assert_eq!(item.fields.get("stars"), Some(&Value::Number(4.0)));
        assert_eq!(item_from_json(&item_to_json(&item)).unwrap(), item);
        for (bad, why) in [
            (json!({"text": "x"}), "`id` is required"),
            (json!({"id": "a"}), "`text` is required"),
            (json!({"id": "a", "text": "x", "txt": 1}), "unknown key `txt`"),
            (json!({"id": "a", "text": "x", "timestamp": "yesterday"}), "not an RFC 3339"),
            (json!({"id": 3, "text": "x"}), "`id` should be a string"),
            (json!({"id": "a", "text": "x", "fields": [1]}), "`fields` should be an object"),
            (json!([1]), "JSON object"),
        ] {
            let e = item_from_json(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
