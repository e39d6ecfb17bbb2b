//! The key-value store of a shared-library plugin (`Host::kv_get` ...,
//! plugin ABI 1.1): rows of the `plugin_kv` table in chatd's database,
//! namespaced by the plugin's name in chatd.toml. A write is acknowledged
//! once committed (SQLite WAL, or PostgreSQL), so it survives a restart of
//! chatd.

use chat_api::{StorageError, StorageErrorKind};
use chatd_storage::sqlx;
use chatd_storage::Database;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one plugin may store.
pub const MAX_KEYS: i64 = 10_000;

/// One plugin's namespace.
#[derive(Clone)]
pub struct PluginStore {
    db: Database,
    plugin: String,
}

impl PluginStore {
    pub fn new(db: Database, plugin: &str) -> PluginStore {
        PluginStore {
            db,
            plugin: plugin.to_string(),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        sqlx::query_scalar("SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2")
            .bind(&self.plugin)
            .bind(key)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.failed(e))
    }

    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(StorageError::new(
                StorageErrorKind::ValueTooLarge,
                format!("a stored value may have at most {MAX_VALUE_BYTES} bytes, this one has {}; store less under one key or split it", value.len()),
            ));
        }
        // One statement, so that two puts at once cannot both pass the count.
        let written = sqlx::query(
            "INSERT INTO plugin_kv (plugin, key, value)
             SELECT $1, $2, $3
             WHERE (SELECT count(*) FROM plugin_kv WHERE plugin = $1 AND key <> $2) < $4
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
        )
        .bind(&self.plugin)
        .bind(key)
        .bind(value)
        .bind(MAX_KEYS)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.failed(e))?;
        if written.rows_affected() == 0 {
            return Err(StorageError::new(
                StorageErrorKind::TooManyKeys,
                format!("plugin '{}' already stores {MAX_KEYS} keys, the most it may; delete some first", self.plugin),
            ));
        }
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        let deleted = sqlx::query("DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2")
            .bind(&self.plugin)
            .bind(key)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.failed(e))?;
        Ok(deleted.rows_affected() > 0)
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // `substr` rather than LIKE: keys may contain `%` and `_`.
        sqlx::query_scalar(
            "SELECT key FROM plugin_kv WHERE plugin = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key",
        )
        .bind(&self.plugin)
        .bind(prefix)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| self.failed(e))
    }

    fn failed(&self, error: sqlx::Error) -> StorageError {
        let error = self.db.query_error(error);
        tracing::error!(plugin = %self.plugin, %error, "plugin storage failed");
        StorageError::new(
            StorageErrorKind::Failed,
            "chatd's database failed on this call; its log has the cause",
        )
    }
}

fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StorageError::new(
            StorageErrorKind::InvalidKey,
            format!(
                "a key must have 1 to {MAX_KEY_BYTES} bytes, this one has {}",
                key.len()
            ),
        ));
    }
    Ok(())
}
