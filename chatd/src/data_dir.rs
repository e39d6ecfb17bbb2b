//! The data directory belongs to one server process at a time: two servers
//! on the same files would hand out the same message ids and delete each
//! other's spooled files. A lock file held with an exclusive `flock` (the
//! kernel drops it when the process dies, even by SIGKILL) settles it. The
//! admin commands (`chatd user`, `chatd history`) do not take it: they work
//! beside a running server through SQLite's own locking. The file holds
//! the holder's pid, which `chatd reload` signals.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "chatd.lock";

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {path}: {error}")]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot lock {path}: {error}")]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("another chatd ({holder}) is already using the data directory {dir}; stop it first, or give this one another server.data_dir")]
    InUse { dir: PathBuf, holder: String },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates the data directory if needed and takes it for this process.
pub fn lock(dir: &Path) -> Result<DataDirLock, DataDirError> {
    std::fs::create_dir_all(dir).map_err(|source| DataDirError::Create {
        path: dir.to_path_buf(),
        error: source,
    })?;
    let path = dir.join(LOCK_FILE);
    let lock_error = |source| DataDirError::Lock {
        path: path.clone(),
        error: source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "a process that has not written its pid yet".to_string(),
                pid => format!("pid {pid}"),
            };
            return Err(DataDirError::InUse {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
    }
    // Who holds it, for the message a second server prints.
    file.set_len(0).map_err(lock_error)?;
    file.seek(SeekFrom::Start(0)).map_err(lock_error)?;
    writeln!(file, "{}", std::process::id()).map_err(lock_error)?;
    Ok(DataDirLock { _file: file })
}

/// The pid of the server holding the data directory, or `None` when no
/// server holds it (no lock file, or a lock nobody holds). Takes nothing:
/// a lock acquired to find out is released at once.
pub fn holder(dir: &Path) -> Result<Option<u32>, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let lock_error = |source| DataDirError::Lock {
        path: path.clone(),
        error: source,
    };
    let mut file = match OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(lock_error(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => return Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
    }
    let mut pid = String::new();
    file.read_to_string(&mut pid).map_err(lock_error)?;
    match pid.trim().parse() {
        Ok(pid) => Ok(Some(pid)),
        Err(_) => Err(DataDirError::InUse {
            dir: dir.to_path_buf(),
            holder: "a process that has not written its pid yet".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = lock(&data).unwrap();
        let err = lock(&data).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("data"),
            "{err}"
        );
        assert_eq!(holder(&data).unwrap(), Some(std::process::id()));
        drop(first);
        assert_eq!(holder(&data).unwrap(), None);
        lock(&data).unwrap();
    }
}
