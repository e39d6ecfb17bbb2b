//! The spool directory. Blocking functions only: callers run them on the
//! host's blocking pool (or once at start, before clients connect).
//!
//! Layout, all names chosen by the server from the transfer id:
//!
//! * `<id>.json`: the [`Meta`] sidecar, replaced atomically (temp + rename);
//! * `<id>.part`: an upload in progress, written in order, so its length is
//!   the resume offset even after a crash;
//! * `<id>.data`: the verified file, renamed from `.part` once its SHA-256
//!   matched.
//!
//! Anything else found in the directory at start is left over from a crash
//! and deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::transfer::{is_transfer_id, to_hex, Meta, Phase};

/// A disk operation failed; names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {error}")]
pub struct StoreError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

impl StoreError {
    /// Whether the disk (or the user's disk quota) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.error.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    }

    fn is_not_found(&self) -> bool {
        self.error.kind() == io::ErrorKind::NotFound
    }
}

fn at<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError {
        action,
        path: path.to_path_buf(),
        error: source,
    }
}

/// A transfer found on disk at start.
#[derive(Debug)]
pub struct Loaded {
    pub meta: Meta,
    /// Bytes on disk (the resume offset for uploads).
    pub received: u64,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str, extension: &str) -> PathBuf {
        debug_assert!(is_transfer_id(id));
        self.dir.join(format!("{id}.{extension}"))
    }

    /// Creates the directory and reads every transfer in it; deletes what
    /// belongs to no valid transfer.
    /// Takes the spool for this process: an exclusive lock on
    /// [`OWNER_LOCK`], held while the returned file lives. `None` when
    /// another instance holds it (the running server, while `chatd
    /// check-config` or a reload builds a second plugin on the same spool).
    pub fn claim(&self) -> Result<Option<File>, StoreError> {
        fs::create_dir_all(&self.dir).map_err(at("create directory", &self.dir))?;
        let path = self.dir.join(OWNER_LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(at("open", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(at("lock", &path)(e)),
        }
    }

    /// Loads every transfer. Only the spool's owner (see [`Store::claim`])
    /// tidies: deletes unreadable records and files no record owns; another
    /// instance must not delete what the owner is writing.
    pub fn open(&self, owner: bool) -> Result<Vec<Loaded>, StoreError> {
        fs::create_dir_all(&self.dir).map_err(at("create directory", &self.dir))?;
        let mut loaded = Vec::new();
        let mut keep = std::collections::HashSet::new();
        for entry in fs::read_dir(&self.dir).map_err(at("list", &self.dir))? {
            let path = entry.map_err(at("list", &self.dir))?.path();
            let Some(id) = sidecar_id(&path) else {
                continue;
            };
            match self.load_one(&id, &path) {
                Some(found) => {
                    keep.insert(id);
                    loaded.push(found);
                }
                None if owner => {
                    tracing::warn!(path = %path.display(), "unreadable file transfer record; deleting the transfer")
                }
                None => {}
            }
        }
        if !owner {
            return Ok(loaded);
        }
        for entry in fs::read_dir(&self.dir).map_err(at("list", &self.dir))? {
            let path = entry.map_err(at("list", &self.dir))?.path();
            if path.file_name().is_some_and(|n| n == OWNER_LOCK) {
                continue;
            }
            let owned = path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|stem| keep.contains(stem));
            if !owned && path.is_file() {
                tracing::info!(path = %path.display(), "deleting a leftover file-transfer file");
                let _ = fs::remove_file(&path);
            }
        }
        Ok(loaded)
    }

    fn load_one(&self, id: &str, sidecar: &Path) -> Option<Loaded> {
        let meta: Meta = serde_json::from_slice(&fs::read(sidecar).ok()?).ok()?;
        if meta.transfer != id {
            return None;
        }
        let received = match meta.phase {
            Phase::Uploading => {
                let part = self.path(id, "part");
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&part)
                    .ok()?;
                file.metadata().ok()?.len().min(meta.size)
            }
            Phase::Complete => {
                let len = fs::metadata(self.path(id, "data")).ok()?.len();
                if len != meta.size {
                    return None;
                }
                len
            }
        };
        // The data file of the other phase is a crash leftover.
        let stale = match meta.phase {
            Phase::Uploading => self.path(id, "data"),
            Phase::Complete => self.path(id, "part"),
        };
        let _ = fs::remove_file(stale);
        Some(Loaded { meta, received })
    }

    /// Creates the empty upload file and the sidecar of a new transfer.
    pub fn create(&self, meta: &Meta) -> Result<(), StoreError> {
        let part = self.path(&meta.transfer, "part");
        File::create_new(&part).map_err(at("create", &part))?;
        self.save_meta(meta).inspect_err(|_| {
            let _ = fs::remove_file(&part);
        })
    }

    /// Writes a chunk at `offset` of an upload. The upload file must exist:
    /// a transfer deleted meanwhile is not recreated.
    pub fn write_chunk(&self, id: &str, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let part = self.path(id, "part");
        let mut file = OpenOptions::new()
            .write(true)
            .open(&part)
            .map_err(at("open", &part))?;
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.write_all(bytes))
            .map_err(at("write", &part))
    }

    /// Hashes the finished upload; if it has `sha256`, renames it to its
    /// final name. Returns the hash found.
    pub fn verify_and_publish(&self, id: &str, sha256: &str) -> Result<String, StoreError> {
        let part = self.path(id, "part");
        let found = sha256_file(&part)?;
        if found == sha256 {
            let data = self.path(id, "data");
            fs::rename(&part, &data).map_err(at("rename", &part))?;
        }
        Ok(found)
    }

    /// Reads up to `len` bytes of a finished file from `offset`.
    pub fn read_chunk(&self, id: &str, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let data = self.path(id, "data");
        let mut file = File::open(&data).map_err(at("open", &data))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(at("seek", &data))?;
        let mut bytes = Vec::with_capacity(len);
        file.take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(at("read", &data))?;
        Ok(bytes)
    }

    /// Replaces the sidecar atomically: a crash leaves the old or the new
    /// record, never half of one.
    pub fn save_meta(&self, meta: &Meta) -> Result<(), StoreError> {
        let path = self.path(&meta.transfer, "json");
        let tmp = self.path(&meta.transfer, "json.tmp");
        let json = serde_json::to_vec_pretty(meta).expect("records serialise");
        let mut file = File::create(&tmp).map_err(at("create", &tmp))?;
        file.write_all(&json)
            .and_then(|_| file.sync_all())
            .map_err(at("write", &tmp))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
        fs::rename(&tmp, &path).map_err(at("rename", &tmp))
    }

    /// Deletes everything of a transfer (what is already gone is fine).
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut first_error = None;
        for extension in ["json", "part", "data", "json.tmp"] {
            let path = self.path(id, extension);
            if let Err(e) = fs::remove_file(&path).map_err(at("delete", &path)) {
                if !e.is_not_found() && first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The id of a sidecar path (`<id>.json`), if it is one.
/// The lock file that marks which process owns the spool.
pub const OWNER_LOCK: &str = ".owner.lock";

fn sidecar_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".json")?;
    is_transfer_id(id).then(|| id.to_string())
}

/// SHA-256 of a file as lowercase hex, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut file = File::open(path).map_err(at("open", path))?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut block).map_err(at("read", path))?;
        if n == 0 {
            break;
        }
        context.update(&block[..n]);
    }
    Ok(to_hex(context.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::new_transfer_id;
    use chat_api::files::FileTarget;

    fn meta(id: &str, size: u64) -> Meta {
        Meta {
            transfer: id.to_string(),
            owner: "alice".into(),
            from: "alice".into(),
            target: FileTarget {
                to: Some("bob".into()),
                room: None,
            },
            name: "a.txt".into(),
            size,
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
            phase: Phase::Uploading,
            recipients: Vec::new(),
            created_at: 1,
            expires_at: 2,
        }
    }

    #[test]
    fn upload_resumes_from_disk_and_publishes_after_verification() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("files"));
        assert!(store.open(true).unwrap().is_empty());
        let id = new_transfer_id();
        store.create(&meta(&id, 5)).unwrap();
        store.write_chunk(&id, 0, b"hel").unwrap();
        // A restart finds the record and the resume offset.
        let loaded = store.open(true).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].received, 3);
        store.write_chunk(&id, 3, b"lo").unwrap();
        let found = store.verify_and_publish(&id, &meta(&id, 5).sha256).unwrap();
        assert_eq!(found, meta(&id, 5).sha256);
        assert_eq!(store.read_chunk(&id, 1, 3).unwrap(), b"ell");
        store.remove(&id).unwrap();
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
    }

    #[test]
    fn leftovers_are_deleted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let id = new_transfer_id();
        fs::write(dir.path().join(format!("{id}.part")), b"orphan").unwrap();
        fs::write(dir.path().join(format!("{id}.json.tmp")), b"{").unwrap();
        let broken = new_transfer_id();
        fs::write(dir.path().join(format!("{broken}.json")), b"not json").unwrap();
        assert!(store.open(true).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_deleted_upload_is_not_recreated_by_a_late_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let id = new_transfer_id();
        store.create(&meta(&id, 5)).unwrap();
        store.remove(&id).unwrap();
        assert!(store.write_chunk(&id, 0, b"x").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
