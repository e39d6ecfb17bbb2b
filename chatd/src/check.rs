//! `chatd check-config`: everything the server checks at start, without
//! starting anything. No directory or database is created, none of the
//! configured ports bound, no lock taken (so it runs beside the server it checks), and every
//! problem is reported, not only the first.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::host::ServerHost;
use crate::hub::Hub;
use crate::pipeline::{Pipeline, PluginRegistry};

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// Every problem found in `config`, as messages for the operator.
pub async fn check(config: &Config, registry: &PluginRegistry) -> Vec<String> {
    check_with_plugins(config, registry, |_| true).await
}

/// Like [`check`], building only the `[[plugin]]` entries `build` picks (a
/// reload rebuilds only the entries that changed: the others were checked
/// when the server started, and a plugin built beside the running one may
/// touch what that one owns, e.g. a file spool at an absolute path).
pub async fn check_with_plugins(
    config: &Config,
    registry: &PluginRegistry,
    build: impl Fn(&crate::config::PluginEntry) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    check_tls(config, &mut problems);
    check_admin(config, &mut problems);
    check_data_dir(&config.server.data_dir, &mut problems);
    if let Some(path) = config.database_options().sqlite_path() {
        check_database_file(path, &mut problems);
    }
    let mut picked = config.clone();
    picked.plugins.retain(|entry| build(entry));
    check_plugins(&picked, registry, &mut problems).await;
    problems
}

fn check_tls(config: &Config, problems: &mut Vec<String>) {
    let tls = &config.tls;
    let wanted = tls.listen.is_some() || config.web.tls;
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) if wanted => {
            if let Err(e) = crate::transport::tls::acceptor(cert, key) {
                problems.push(e.to_string());
            }
        }
        (None, _) | (_, None) if wanted => problems.push(format!(
            "{}: TLS is asked for ([tls] listen or [web] tls = true) but [tls] cert and key are not both set",
            config.source_name
        )),
        _ => {}
    }
}

/// The admin listener's address (already checked against the other
/// listeners when the file was read) must be one of this host's: probed by
/// binding an ephemeral UDP port on it, which leaves admin.listen's port free.
fn check_admin(config: &Config, problems: &mut Vec<String>) {
    let Some(addr) = config.admin.listen else {
        return;
    };
    if let Err(e) = std::net::UdpSocket::bind((addr.ip(), 0)) {
        problems.push(format!(
            "{}: admin.listen = \"{addr}\": {} is not an address of this host ({e}); use 127.0.0.1 (the metrics are for operators) or an address of a private network interface",
            config.source_name,
            addr.ip()
        ));
    }
}

/// The data directory, or the nearest directory above it that exists (the
/// server would create the rest), must be a writable directory.
fn check_data_dir(dir: &Path, problems: &mut Vec<String>) {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(meta) if !meta.is_dir() => {
                problems.push(format!(
                    "data directory {}: {} is not a directory",
                    dir.display(),
                    at.display()
                ));
                return;
            }
            Ok(meta) => {
                if meta.permissions().readonly() {
                    problems.push(format!(
                        "data directory {}: {} is not writable",
                        dir.display(),
                        at.display()
                    ));
                }
                return;
            }
            Err(_) => match at.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(parent) => at = parent,
                None => return,
            },
        }
    }
}

/// An existing database file must be SQLite (it is opened and migrated
/// only by the server).
fn check_database_file(path: &Path, problems: &mut Vec<String>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        problems.push(format!("database {}: is a directory", path.display()));
        return;
    }
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut header)
    });
    if meta.len() > 0 && (read.is_err() || header != SQLITE_HEADER) {
        problems.push(format!(
            "database {}: not an SQLite database (move it aside or restore it from a backup)",
            path.display()
        ));
    }
}

/// Builds every plugin against a throwaway data directory and database, so
/// that their own checks run (configuration, shared libraries and their
/// plugin ABI version) without touching the real ones.
async fn check_plugins(config: &Config, registry: &PluginRegistry, problems: &mut Vec<String>) {
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            problems.push(format!(
                "cannot create a scratch directory to check the plugins in: {e}"
            ));
            return;
        }
    };
    let database = if registry.needs_database(config) {
        let options = chatd_storage::DatabaseOptions::new(scratch.path().join("check.db"));
        match chatd_storage::Database::open(&options).await {
            Ok(db) => Some(db),
            Err(e) => {
                problems.push(format!("cannot check the plugins' database schema: {e}"));
                None
            }
        }
    } else {
        None
    };
    let host = Arc::new(ServerHost::new(
        Arc::new(Hub::new()),
        scratch.path().to_path_buf(),
        tokio::runtime::Handle::current(),
        config.limits.max_frame_bytes,
    ));
    let mut loader = crate::dynamic::load;
    let errors = Pipeline::check_all(config, registry, host, database.as_ref(), &mut loader).await;
    problems.extend(errors.iter().map(ToString::to_string));
    if let Some(db) = database {
        db.close().await;
    }
}
