//! A real PostgreSQL server for tests: the Debian package's binaries
//! (`/usr/lib/postgresql/<version>/bin`, the newest), a fresh cluster in a
//! temporary directory, listening on a free loopback port, one database per
//! test. One server can serve every test of a test binary ([`shared`]).
//!
//! When PostgreSQL is not installed, [`TempPostgres::start`] returns `None`
//! after saying why (the test then returns: skipped), except under
//! `CI=true`, where it panics: CI must never pass by skipping.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(pg) = chatd_testkit::postgres::shared().await else { return };
//! let url = pg.create_database().await;
//! // [database] url = "{url}" in the chatd.toml of the test
//! # }
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chatd_storage::sqlx::postgres::PgConnection;
use chatd_storage::sqlx::{self, Connection as _};
use tokio::sync::OnceCell;

use crate::WAIT;

/// The superuser of the test cluster, and its password (the cluster checks
/// passwords on TCP connections, as production servers do).
pub const USER: &str = "chatd";
pub const PASSWORD: &str = "chatd-test-password";

/// A PostgreSQL server this process started; stopped (SIGTERM, then wait)
/// and its directory deleted on drop.
pub struct TempPostgres {
    port: u16,
    pid: u32,
    child: Mutex<Option<Child>>,
    dir: Mutex<Option<tempfile::TempDir>>,
    log: PathBuf,
}

static SHARED: OnceCell<Option<TempPostgres>> = OnceCell::const_new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The server shared by every test of this test binary, started by the
/// first caller; stopped when the process exits. `None`: not installed
/// (see the module documentation).
pub async fn shared() -> Option<&'static TempPostgres> {
    SHARED
        .get_or_init(|| async {
            let started = TempPostgres::start().await;
            if started.is_some() {
                // Statics are never dropped: stop the server at exit.
                // SAFETY: registers a plain `extern "C"` function.
                unsafe { libc::atexit(stop_shared) };
            }
            started
        })
        .await
        .as_ref()
}

extern "C" fn stop_shared() {
    if let Some(Some(pg)) = SHARED.get() {
        pg.stop();
    }
}

/// The newest installed `bin` directory of PostgreSQL, if any.
fn find_binaries() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The `postgres` system user's ids when running as root (PostgreSQL
/// refuses to run as root).
fn postgres_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: a valid C string; the result is read at once, before any
    // other getpw* call in this process could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root, PostgreSQL needs the `postgres` system user (created by the Debian package postgresql)"
    );
    // SAFETY: checked non-null above.
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

impl TempPostgres {
    /// Starts a new server, or returns `None` (skip) when PostgreSQL is not
    /// installed; panics under `CI=true` instead.
    pub async fn start() -> Option<TempPostgres> {
        let Some(bin) = find_binaries() else {
            crate::skip_unless_ci("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); install the Debian package `postgresql`");
            return None;
        };
        let owner = postgres_user();
        let dir = tempfile::tempdir().expect("temporary directory");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown to postgres");
        }
        init_cluster(&bin, dir.path(), owner);
        let log = dir.path().join("postgres.log");
        for _attempt in 0..3 {
            let port = free_port();
            let child = spawn_server(&bin, dir.path(), port, owner, &log);
            let pg = TempPostgres {
                port,
                pid: child.id(),
                child: Mutex::new(Some(child)),
                dir: Mutex::new(None),
                log: log.clone(),
            };
            if pg.wait_until_ready().await {
                *pg.dir.lock().unwrap() = Some(dir);
                return Some(pg);
            }
            // Exited at start: most likely another process took the port
            // in between; try another.
            pg.child.lock().unwrap().take();
        }
        panic!(
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this server, with the superuser's
    /// credentials.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// A new, empty database; its URL.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "chatd_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test PostgreSQL");
        // A generated name of letters, digits and underscores.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        self.url(&name)
    }

    /// Connects until the server answers (true), or it exits or [`WAIT`]
    /// passes (false).
    async fn wait_until_ready(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        let url = self.url("postgres");
        while Instant::now() < deadline {
            if let Ok(connection) = PgConnection::connect(&url).await {
                let _ = connection.close().await;
                return true;
            }
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "PostgreSQL did not accept connections within {WAIT:?}; its log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stops the server by its pid and deletes its directory. SIGINT
    /// ("fast" shutdown) rather than SIGTERM ("smart"), which would wait
    /// for the connections chatd's pools in this process still hold.
    /// Idempotent.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // SAFETY: signals the process this value started, by its pid.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGINT) };
            let deadline = Instant::now() + WAIT;
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.dir.lock().unwrap().take();
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `initdb` as the owner of the cluster: superuser [`USER`] with
/// [`PASSWORD`], checked on TCP connections; no fsync (a test cluster).
fn init_cluster(bin: &Path, dir: &Path, owner: Option<(u32, u32)>) {
    let pwfile = dir.join("password");
    std::fs::write(&pwfile, PASSWORD).expect("write the password file");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
    }
    let initdb = bin.join("initdb");
    let mut command = match owner {
        Some(_) => {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&initdb);
            c
        }
        None => Command::new(&initdb),
    };
    let output = command
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-U",
            USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args([
            "--no-sync",
            "--no-instructions",
            "--encoding=UTF8",
            "--no-locale",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .expect("run initdb");
    assert!(
        output.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn spawn_server(bin: &Path, dir: &Path, port: u16, owner: Option<(u32, u32)>, log: &Path) -> Child {
    let log = File::create(log).expect("create the PostgreSQL log");
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    if let Some((uid, gid)) = owner {
        use std::os::unix::process::CommandExt as _;
        command.uid(uid).gid(gid);
    }
    command.spawn().expect("start postgres")
}

/// A loopback port free right now (the server binds it a moment later; a
/// lost race makes it exit, and [`TempPostgres::start`] tries again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
