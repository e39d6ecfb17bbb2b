//! The plugin's `[plugin.config]` table and its checks.

use std::path::PathBuf;
use std::time::Duration;

use chat_api::{ConfigError, PluginConfig};
use serde::Deserialize;

/// Bytes a `file_chunk` frame carries besides its base64 data: the field
/// names, a 32-digit transfer id, a 20-digit offset and a 20-digit request id.
pub const CHUNK_FRAME_OVERHEAD: usize = 160;

/// Frame limit assumed when the host does not say (the core's default).
const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// `[plugin.config]` of `name = "files"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Where files are spooled; relative paths are relative to the server's
    /// data directory. Default: `<data_dir>/files`.
    pub dir: Option<PathBuf>,
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// Bytes one user may have stored at once (uploading or waiting).
    pub per_user_quota: u64,
    /// Bytes all users together may have stored at once.
    pub total_quota: u64,
    /// Largest chunk, in raw bytes (base64 makes it 4/3 larger on the wire).
    pub chunk_size: u32,
    /// Chunks a client may send before waiting for an ack.
    pub window: u32,
    /// Seconds a finished file waits for its recipients, and an unfinished
    /// upload for its next chunk, before it is deleted.
    pub expiry_secs: u64,
    /// Uploads one user may have unfinished at once.
    pub max_concurrent_uploads_per_user: u32,
    /// Transfers (unfinished or waiting) one user may have at once.
    pub max_files_per_user: u32,
    /// Transfers all users together may have at once. The per-user limits
    /// key on the nickname when there are no accounts, which a client can
    /// change at will, and tiny files hardly touch `total_quota`: this bounds
    /// the records and spool files a client can make the server hold.
    pub max_transfers: u32,
    /// Set by chatd on a node of a cluster, not by hand: the hex digits
    /// every transfer id of this node starts with, so that another node
    /// knows where a transfer's bytes are (docs/scaling.md).
    pub id_prefix: Option<String>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            dir: None,
            max_file_size: 1 << 30,
            per_user_quota: 2 << 30,
            total_quota: 20 << 30,
            chunk_size: 32 * 1024,
            window: 8,
            expiry_secs: 7 * 24 * 3600,
            max_concurrent_uploads_per_user: 4,
            max_files_per_user: 100,
            max_transfers: 10_000,
            id_prefix: None,
        }
    }
}

/// The checked configuration, with the storage directory resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    /// What every new transfer id starts with (empty on a single node).
    pub id_prefix: String,
    pub max_file_size: u64,
    pub per_user_quota: u64,
    pub total_quota: u64,
    pub chunk_size: u32,
    pub window: u32,
    pub expiry: Duration,
    pub max_concurrent_uploads_per_user: u32,
    pub max_files_per_user: u32,
    pub max_transfers: u32,
}

impl Settings {
    /// Parses and checks the table. `max_frame_bytes` is the core's inbound
    /// frame limit, which every `file_chunk` must fit.
    pub fn from_config(
        config: &PluginConfig,
        data_dir: &std::path::Path,
        max_frame_bytes: Option<usize>,
    ) -> Result<Settings, ConfigError> {
        let c: FilesConfig = config.parse()?;
        let invalid = |m: String| Err(ConfigError::invalid(config, m));
        let max_frame = max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
        let frame = chunk_frame_len(c.chunk_size as usize);
        if c.chunk_size < 1024 {
            return invalid(format!(
                "chunk_size = {} is too small (minimum 1024 bytes)",
                c.chunk_size
            ));
        }
        if frame > max_frame {
            return invalid(format!(
                "chunk_size = {} makes file_chunk frames of up to {frame} bytes, more than limits.max_frame_bytes = {max_frame}; use at most {} or raise the limit",
                c.chunk_size,
                max_chunk_for(max_frame)
            ));
        }
        if let Some(prefix) = &c.id_prefix {
            if prefix.len() > 16
                || !prefix
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return invalid(format!(
                    "id_prefix = {prefix:?} must be at most 16 lowercase hex digits (chatd sets it on a cluster's nodes)"
                ));
            }
        }
        if !(1..=64).contains(&c.window) {
            return invalid(format!("window = {} must be 1 to 64", c.window));
        }
        if c.expiry_secs == 0 {
            return invalid("expiry_secs must be at least 1".into());
        }
        if c.max_file_size == 0 || c.per_user_quota == 0 || c.total_quota == 0 {
            return invalid(
                "max_file_size, per_user_quota and total_quota must be at least 1 byte".into(),
            );
        }
        if c.max_concurrent_uploads_per_user == 0
            || c.max_files_per_user == 0
            || c.max_transfers == 0
        {
            return invalid(
                "max_concurrent_uploads_per_user, max_files_per_user and max_transfers must be at least 1".into(),
            );
        }
        let dir = match c.dir {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => data_dir.join(dir),
            None => data_dir.join("files"),
        };
        Ok(Settings {
            dir,
            max_file_size: c.max_file_size,
            per_user_quota: c.per_user_quota,
            total_quota: c.total_quota,
            chunk_size: c.chunk_size,
            window: c.window,
            expiry: Duration::from_secs(c.expiry_secs),
            max_concurrent_uploads_per_user: c.max_concurrent_uploads_per_user,
            max_files_per_user: c.max_files_per_user,
            max_transfers: c.max_transfers,
            id_prefix: c.id_prefix.unwrap_or_default(),
        })
    }

    /// How often the expiry sweep runs: often enough that files outlive
    /// their expiry by at most a tenth of it, never busier than 10 times a
    /// second nor lazier than once a minute.
    pub fn sweep_interval(&self) -> Duration {
        (self.expiry / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

/// Longest `file_chunk` frame for `chunk` raw bytes, newline included.
pub fn chunk_frame_len(chunk: usize) -> usize {
    chunk.div_ceil(3) * 4 + CHUNK_FRAME_OVERHEAD
}

/// Largest chunk whose frames fit `max_frame` bytes.
fn max_chunk_for(max_frame: usize) -> usize {
    max_frame.saturating_sub(CHUNK_FRAME_OVERHEAD) / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> PluginConfig {
        PluginConfig {
            plugin: "files".into(),
            source: "test.toml".into(),
            toml: toml.into(),
        }
    }

    #[test]
    fn defaults_fit_the_default_frame_limit() {
        let s = Settings::from_config(&config(""), "/data".as_ref(), Some(65536)).unwrap();
        assert_eq!(s.dir, PathBuf::from("/data/files"));
        assert!(chunk_frame_len(s.chunk_size as usize) <= 65536);
    }

    #[test]
    fn oversized_chunks_are_refused_with_the_largest_that_fits() {
        let err = Settings::from_config(&config("chunk_size = 60000"), "/d".as_ref(), Some(65536))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("max_frame_bytes") && err.contains("49032"),
            "{err}"
        );
        assert!(chunk_frame_len(max_chunk_for(65536)) <= 65536);
    }

    #[test]
    fn typos_and_zero_values_are_named() {
        let err = Settings::from_config(&config("chunk_sise = 4096"), "/d".as_ref(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chunk_sise"), "{err}");
        let err = Settings::from_config(&config("expiry_secs = 0"), "/d".as_ref(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expiry_secs"), "{err}");
    }
}
