//! The embedded store: SQLite through rusqlite (bundled), one file, WAL journal,
//! `synchronous=FULL` (a committed ingest survives a power cut), foreign keys on, schema
//! versioned with `PRAGMA user_version` and migrated forward in one transaction at open.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tailor_dsl::types::{Item, Value, to_json};

use super::{Embedding, Erased, Store, StoreError, StoredItem, UserExport};

/// Each migration takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE users (
        tenant TEXT NOT NULL,
        user TEXT NOT NULL,
        history_version INTEGER NOT NULL DEFAULT 0,
        next_seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, user)
    ) WITHOUT ROWID;
    CREATE TABLE items (
        tenant TEXT NOT NULL,
        user TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        timestamp REAL,
        fields TEXT NOT NULL,
        model TEXT,
        embedding BLOB,
        PRIMARY KEY (tenant, user, id),
        FOREIGN KEY (tenant, user) REFERENCES users (tenant, user) ON DELETE CASCADE
    );
    CREATE INDEX items_by_seq ON items (tenant, user, seq);
    CREATE TABLE kv (
        tenant TEXT NOT NULL,
        user TEXT NOT NULL,
        plugin TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        expires REAL,
        PRIMARY KEY (tenant, user, plugin, key),
        FOREIGN KEY (tenant, user) REFERENCES users (tenant, user) ON DELETE CASCADE
    );
"#];

/// The store. Cheap to clone; statements run on a blocking thread, one at a time.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: Arc<str>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and migrates it to this build's schema.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Open { path: shown.clone(), message: format!("creating its folder: {e}") })?;
        }
        let conn =
            Connection::open(path).map_err(|e| StoreError::Open { path: shown.clone(), message: e.to_string() })?;
        SqliteStore::init(conn, shown)
    }

    /// A store in memory, gone when dropped (tests, `tailor test`).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?, ":memory:".into())
    }

    fn init(mut conn: Connection, path: String) -> Result<SqliteStore, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open { path: path.clone(), message: e.to_string() };
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        // WAL where the file system allows it (in-memory databases keep their own journal).
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(open_err)?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;").map_err(open_err)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(open_err)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::NewerSchema { path, found: version, known });
        }
        if version < known {
            let tx = conn.transaction().map_err(open_err)?;
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(open_err)?;
            }
            tx.pragma_update(None, "user_version", known).map_err(open_err)?;
            tx.commit().map_err(open_err)?;
        }
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: path.into() })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs `f` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic mid-statement rolls its transaction back (rusqlite drops it), so the
            // connection is still consistent after a poisoned lock.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_vector(bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("an embedding of {} bytes", bytes.len())));
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn fields_json(item: &Item) -> String {
    to_json(&Value::Record(Arc::new(item.fields.clone())))
}

type ItemRow = (String, String, String, Option<f64>, String, Option<String>, Option<Vec<u8>>);

fn item_from_row(row: ItemRow) -> Result<StoredItem, StoreError> {
    let (id, kind, text, timestamp, fields, model, embedding) = row;
    let fields = match crate::host::json_to_value(&fields) {
        Ok(Value::Record(map)) => (*map).clone(),
        Ok(other) => return Err(StoreError::Corrupt(format!("item {id}: fields are {}", other.kind_name()))),
        Err(e) => return Err(StoreError::Corrupt(format!("item {id}: fields: {e}"))),
    };
    let embedding = match (model, embedding) {
        (Some(model), Some(bytes)) => Some(Embedding { model, vector: decode_vector(&bytes)? }),
        _ => None,
    };
    Ok(StoredItem { item: Item { id: id.into(), kind: kind.into(), text: text.into(), timestamp, fields }, embedding })
}

/// Creates the user row if needed and bumps the history version; returns the new version.
fn touch_user(tx: &rusqlite::Transaction<'_>, tenant: &str, user: &str) -> Result<u64, StoreError> {
    tx.execute("INSERT OR IGNORE INTO users (tenant, user) VALUES (?1, ?2)", params![tenant, user])?;
    let version: i64 = tx.query_row(
        "UPDATE users SET history_version = history_version + 1 WHERE tenant = ?1 AND user = ?2
         RETURNING history_version",
        params![tenant, user],
        |r| r.get(0),
    )?;
    Ok(version as u64)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_items(&self, tenant: &str, user: &str, items: Vec<StoredItem>) -> Result<u64, StoreError> {
        let (tenant, user) = (tenant.to_owned(), user.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let version = touch_user(&tx, &tenant, &user)?;
            let mut seq: i64 = tx.query_row(
                "SELECT next_seq FROM users WHERE tenant = ?1 AND user = ?2",
                params![tenant, user],
                |r| r.get(0),
            )?;
            {
                let mut put = tx.prepare_cached(
                    "INSERT INTO items (tenant, user, id, seq, kind, text, timestamp, fields, model, embedding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (tenant, user, id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind,
                       text = excluded.text, timestamp = excluded.timestamp, fields = excluded.fields,
                       model = excluded.model, embedding = excluded.embedding",
                )?;
                for stored in &items {
                    let item = &stored.item;
                    let (model, vector) = match &stored.embedding {
                        Some(e) => (Some(e.model.as_str()), Some(encode_vector(&e.vector))),
                        None => (None, None),
                    };
                    put.execute(params![
                        tenant,
                        user,
                        &*item.id,
                        seq,
                        &*item.kind,
                        &*item.text,
                        item.timestamp,
                        fields_json(item),
                        model,
                        vector
                    ])?;
                    seq += 1;
                }
            }
            tx.execute("UPDATE users SET next_seq = ?3 WHERE tenant = ?1 AND user = ?2", params![tenant, user, seq])?;
            tx.commit()?;
            Ok(version)
        })
        .await
    }

    async fn delete_item(&self, tenant: &str, user: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, user, id) = (tenant.to_owned(), user.to_owned(), id.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let n =
                tx.execute("DELETE FROM items WHERE tenant = ?1 AND user = ?2 AND id = ?3", params![tenant, user, id])?;
            if n > 0 {
                touch_user(&tx, &tenant, &user)?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn items(&self, tenant: &str, user: &str) -> Result<Vec<StoredItem>, StoreError> {
        let (tenant, user) = (tenant.to_owned(), user.to_owned());
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, text, timestamp, fields, model, embedding FROM items
                 WHERE tenant = ?1 AND user = ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![tenant, user], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.map(|row| item_from_row(row?)).collect()
        })
        .await
    }

    async fn history_version(&self, tenant: &str, user: &str) -> Result<u64, StoreError> {
        let (tenant, user) = (tenant.to_owned(), user.to_owned());
        self.with(move |conn| {
            let v: Option<i64> = conn
                .query_row(
                    "SELECT history_version FROM users WHERE tenant = ?1 AND user = ?2",
                    params![tenant, user],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.unwrap_or(0) as u64)
        })
        .await
    }

    async fn users(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let tenant = tenant.to_owned();
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT user FROM users WHERE tenant = ?1 ORDER BY user")?;
            let rows = stmt.query_map(params![tenant], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn export_user(&self, tenant: &str, user: &str) -> Result<UserExport, StoreError> {
        let items = self.items(tenant, user).await?.into_iter().map(|s| s.item).collect();
        let history_version = self.history_version(tenant, user).await?;
        let (t, u) = (tenant.to_owned(), user.to_owned());
        let kv = self
            .with(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT plugin, key, value FROM kv WHERE tenant = ?1 AND user = ?2
                     AND (expires IS NULL OR expires > ?3) ORDER BY plugin, key",
                )?;
                let rows = stmt.query_map(params![t, u, now()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        Ok(UserExport { tenant: tenant.to_owned(), user: user.to_owned(), history_version, items, kv })
    }

    async fn erase_user(&self, tenant: &str, user: &str) -> Result<Erased, StoreError> {
        let (tenant, user) = (tenant.to_owned(), user.to_owned());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let items = tx.execute("DELETE FROM items WHERE tenant = ?1 AND user = ?2", params![tenant, user])?;
            let kv = tx.execute("DELETE FROM kv WHERE tenant = ?1 AND user = ?2", params![tenant, user])?;
            tx.execute("DELETE FROM users WHERE tenant = ?1 AND user = ?2", params![tenant, user])?;
            tx.commit()?;
            Ok(Erased { items: items as u64, kv: kv as u64 })
        })
        .await
    }

    async fn kv_get(&self, tenant: &str, user: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (tenant, user, plugin, key) = (tenant.to_owned(), user.to_owned(), plugin.to_owned(), key.to_owned());
        self.with(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM kv WHERE tenant = ?1 AND user = ?2 AND plugin = ?3 AND key = ?4
                     AND (expires IS NULL OR expires > ?5)",
                    params![tenant, user, plugin, key, now()],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn kv_set(
        &self,
        tenant: &str,
        user: &str,
        plugin: &str,
        key: &str,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        let (tenant, user, plugin, key) = (tenant.to_owned(), user.to_owned(), plugin.to_owned(), key.to_owned());
        let expires = ttl_seconds.map(|t| now() + t as f64);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("INSERT OR IGNORE INTO users (tenant, user) VALUES (?1, ?2)", params![tenant, user])?;
            tx.execute(
                "INSERT INTO kv (tenant, user, plugin, key, value, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, user, plugin, key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                params![tenant, user, plugin, key, value, expires],
            )?;
            // Expired entries of this user go while we are here.
            tx.execute(
                "DELETE FROM kv WHERE tenant = ?1 AND user = ?2 AND expires IS NOT NULL AND expires <= ?3",
                params![tenant, user, now()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn kv_delete(&self, tenant: &str, user: &str, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let (tenant, user, plugin, key) = (tenant.to_owned(), user.to_owned(), plugin.to_owned(), key.to_owned());
        self.with(move |conn| {
            let n = conn.execute(
                "DELETE FROM kv WHERE tenant = ?1 AND user = ?2 AND plugin = ?3 AND key = ?4",
                params![tenant, user, plugin, key],
            )?;
            Ok(n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, text: &str) -> StoredItem {
        StoredItem {
            item: Item {
                id: id.into(),
                kind: "note".into(),
                text: text.into(),
                timestamp: Some(1.5),
                fields: [("stars".into(), Value::Number(4.0))].into_iter().collect(),
            },
            embedding: Some(Embedding { model: "m".into(), vector: vec![0.25, -1.0] }),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn items_round_trip_upsert_by_id_and_bump_the_version() {
        rt().block_on(async {
            let s = SqliteStore::in_memory().unwrap();
            assert_eq!(s.history_version("t", "u").await.unwrap(), 0);
            let v1 = s.upsert_items("t", "u", vec![item("a", "one"), item("b", "two")]).await.unwrap();
            let v2 = s.upsert_items("t", "u", vec![item("a", "one, edited")]).await.unwrap();
            assert!(v2 > v1);
            let items = s.items("t", "u").await.unwrap();
            assert_eq!(items.iter().map(|i| &*i.item.text).collect::<Vec<_>>(), ["two", "one, edited"]);
            assert_eq!(items[0], item("b", "two"), "fields, timestamp and embedding survive");
            assert!(s.delete_item("t", "u", "b").await.unwrap());
            assert!(!s.delete_item("t", "u", "b").await.unwrap());
            assert!(s.history_version("t", "u").await.unwrap() > v2);
        });
    }

    #[test]
    fn tenants_and_users_never_see_each_other() {
        rt().block_on(async {
            let s = SqliteStore::in_memory().unwrap();
            s.upsert_items("t1", "u", vec![item("a", "tenant one")]).await.unwrap();
            s.upsert_items("t2", "u", vec![item("a", "tenant two")]).await.unwrap();
            s.upsert_items("t1", "v", vec![item("a", "other user")]).await.unwrap();
            assert_eq!(&*s.items("t1", "u").await.unwrap()[0].item.text, "tenant one");
            assert_eq!(&*s.items("t2", "u").await.unwrap()[0].item.text, "tenant two");
            assert_eq!(s.users("t1").await.unwrap(), ["u", "v"]);
            assert_eq!(s.users("t2").await.unwrap(), ["u"]);
            s.kv_set("t1", "u", "p", "k", b"1".to_vec(), None).await.unwrap();
            assert_eq!(s.kv_get("t2", "u", "p", "k").await.unwrap(), None);
            assert_eq!(s.kv_get("t1", "u", "q", "k").await.unwrap(), None, "kv is per plugin");
            s.erase_user("t2", "u").await.unwrap();
            assert_eq!(s.items("t1", "u").await.unwrap().len(), 1);
        });
    }

    #[test]
    fn erase_removes_everything_and_export_shows_everything() {
        rt().block_on(async {
            let s = SqliteStore::in_memory().unwrap();
            s.upsert_items("t", "u", vec![item("a", "x"), item("b", "y")]).await.unwrap();
            s.kv_set("t", "u", "profile", "summary", b"likes tea".to_vec(), Some(3600)).await.unwrap();
            s.kv_set("t", "u", "profile", "old", b"gone".to_vec(), Some(0)).await.unwrap();
            let export = s.export_user("t", "u").await.unwrap();
            assert_eq!(export.items.len(), 2);
            assert_eq!(export.kv, [("profile".to_string(), "summary".to_string(), b"likes tea".to_vec())]);
            let erased = s.erase_user("t", "u").await.unwrap();
            assert_eq!(erased.items, 2);
            assert!(erased.kv >= 1);
            assert!(s.items("t", "u").await.unwrap().is_empty());
            assert_eq!(s.kv_get("t", "u", "profile", "summary").await.unwrap(), None);
            assert!(s.users("t").await.unwrap().is_empty());
            assert_eq!(s.history_version("t", "u").await.unwrap(), 0);
        });
    }

    #[test]
    fn a_file_store_persists_and_refuses_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("tailor-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested/tailor.db");
        rt().block_on(async {
            let s = SqliteStore::open(&path).unwrap();
            s.upsert_items("t", "u", vec![item("a", "kept")]).await.unwrap();
        });
        rt().block_on(async {
            let s = SqliteStore::open(&path).unwrap();
            assert_eq!(&*s.items("t", "u").await.unwrap()[0].item.text, "kept");
        });
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = SqliteStore::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::NewerSchema { found: 99, .. }), "{e}");
        std::fs::write(dir.join("garbage.db"), b"this is not a database, just text").unwrap();
        let e = SqliteStore::open(&dir.join("garbage.db")).unwrap_err();
        assert!(e.to_string().contains("garbage.db"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
