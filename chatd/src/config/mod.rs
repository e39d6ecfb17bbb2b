//! `chatd.toml`: the server's configuration, its defaults and its checks.
//!
//! Every table rejects unknown keys so that a typo is reported at start, with
//! the file name and the key, instead of being silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod cluster;
pub use cluster::ClusterConfig;

/// The configuration committed as `chatd.toml`, embedded so that `chatd`
/// runs with no file at all.
pub const DEFAULT_CONFIG: &str = include_str!("../../../chatd.toml");

/// A configuration that could not be loaded; the message names the file and
/// the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[cluster]`: absent for a single node.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// The handler pipeline, in order.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginEntry>,
    /// Where the configuration came from (file path or `<embedded defaults>`).
    #[serde(skip)]
    pub source_name: String,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Plaintext TCP listen address; absent disables plaintext.
    pub listen: Option<SocketAddr>,
    /// Directory for the database and spooled files (relative paths are
    /// resolved against the config file's directory).
    pub data_dir: PathBuf,
    /// Who may send `broadcast`.
    pub broadcast: BroadcastPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7878))),
            data_dir: PathBuf::from("data"),
            broadcast: BroadcastPolicy::Everyone,
        }
    }
}

/// Who may broadcast to every connected user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastPolicy {
    Everyone,
    /// Only sessions with the admin role (set by the accounts plugin).
    Admins,
    Nobody,
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// TLS listen address; absent disables TLS.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain (see `chatd gen-cert`).
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// `[web]`: the browser app and its WebSocket transport.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// HTTP(S) listen address serving the app and `/ws`; absent disables it.
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS/WSS with the `[tls]` certificate and key.
    pub tls: bool,
    /// Page origins (`scheme://host[:port]`) allowed to open a WebSocket
    /// besides the listener's own; browsers send the origin of the page.
    pub allowed_origins: Vec<String>,
    /// Host names the web listener answers to besides IP addresses and
    /// `localhost` (e.g. `chat.example.org`). Requests naming another host
    /// get 421: a page on a domain that merely resolves to this server (DNS
    /// rebinding) cannot talk to it.
    pub server_names: Vec<String>,
}

/// `[admin]`: the operators' listener (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Plain HTTP listen address; absent disables the listener and the
    /// metrics. Anyone who reaches it reads the metrics: keep it on
    /// loopback or a private network.
    pub listen: Option<SocketAddr>,
}

/// `[limits]`: every bound the server enforces.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Connections held at once; more are told `server_full` and closed.
    pub max_connections: usize,
    /// Longest inbound frame in bytes (newline included).
    pub max_frame_bytes: usize,
    /// Frames queued for one client before it is disconnected as too slow.
    pub outbound_queue: usize,
    /// Bytes queued for one client before it is disconnected as too slow
    /// (bounds memory when frames are large, e.g. file chunks).
    pub outbound_queue_bytes: usize,
    /// Time a new connection has to complete the handshake (TLS and `hello`).
    pub handshake_timeout_ms: u64,
    /// Time given to flushing queued frames at shutdown.
    pub shutdown_timeout_ms: u64,
    /// Sustained frames per second per connection; 0 disables the limit.
    pub frames_per_second: u32,
    /// Frames a connection may send in a burst above the sustained rate.
    pub frames_burst: u32,
    /// Idle time before TCP keepalive probes start (dead-peer detection).
    pub tcp_keepalive_secs: u64,
    /// A plugin call that holds its thread this long in one go is logged
    /// as a warning naming the plugin (0 = never).
    pub slow_plugin_poll_ms: u64,
    /// Rooms one session may be in at once; bounds the rooms (and the
    /// memory) a single client can create.
    pub max_rooms_per_session: usize,
    /// Rooms that may exist at once; bounds the hub, and the size of a
    /// `rooms` listing, however many clients create rooms.
    pub max_rooms: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 19_500,
            max_frame_bytes: 64 * 1024,
            outbound_queue: 1024,
            outbound_queue_bytes: 8 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            shutdown_timeout_ms: 5_000,
            frames_per_second: 50,
            frames_burst: 200,
            tcp_keepalive_secs: 60,
            slow_plugin_poll_ms: 100,
            max_rooms_per_session: 256,
            max_rooms: 100_000,
        }
    }
}

impl LimitsConfig {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

/// `[runtime]`: the Tokio scheduler (see docs/performance.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub flavor: RuntimeFlavor,
    /// Worker threads of the multi-threaded scheduler; 0 means one per core.
    pub worker_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            flavor: RuntimeFlavor::MultiThread,
            worker_threads: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeFlavor {
    MultiThread,
    CurrentThread,
}

/// `[database]`: the database shared by the message log and every plugin
/// that stores data (opened only when one of them is enabled, and by
/// `chatd user` / `chatd history`): an SQLite file, or PostgreSQL when
/// `url` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The SQLite database file; a relative path is relative to
    /// `server.data_dir`. Unused when `url` is set.
    pub path: PathBuf,
    /// A PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/NAME`)
    /// instead of the SQLite file: what several chatd nodes share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a write waits for another writer (e.g. `chatd user` while the
    /// server runs) before failing.
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("chatd.db"),
            url: None,
            max_connections: 4,
            busy_timeout_ms: 5000,
        }
    }
}

/// `[history]`: the durable message log, offline direct messages,
/// remembered rooms, read markers and resuming (docs/protocol.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Keep messages at all. Off: nothing is stored and the history frames
    /// get `feature_disabled`.
    pub enabled: bool,
    /// Messages older than this many days are deleted (0 = kept forever).
    pub max_age_days: u64,
    /// Messages kept per room; the oldest beyond are deleted (0 = no limit).
    pub max_messages_per_room: u64,
    /// Messages kept per direct conversation (0 = no limit).
    pub max_messages_per_conversation: u64,
    /// How often the pruning job applies the three limits above.
    pub prune_interval_secs: u64,
    /// Most messages one `history` page returns.
    pub max_page: u32,
    /// Most missed messages a `resume` sends; beyond, `resumed.more` says
    /// so and the client pages with `history`.
    pub resume_max: u32,
    /// Messages waiting to be stored; senders wait (never recipients) when
    /// the disk falls this far behind.
    pub queue: usize,
    /// Most messages written in one transaction (group commit).
    pub batch: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            max_age_days: 365,
            max_messages_per_room: 1_000_000,
            max_messages_per_conversation: 100_000,
            prune_interval_secs: 3600,
            max_page: 200,
            resume_max: 1000,
            queue: 16_384,
            batch: 512,
        }
    }
}

/// One `[[plugin]]` entry: a stage of the handler pipeline.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// A built-in plugin's name, or the name a shared-library plugin is known by.
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Path of a shared library (third-party plugin); absent for built-ins.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The plugin's own table, deserialised by the plugin.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

fn yes() -> bool {
    true
}

impl Config {
    /// The embedded defaults (the committed `chatd.toml`).
    pub fn embedded() -> Config {
        Config::parse(DEFAULT_CONFIG, "<embedded defaults>", None)
            .expect("the committed chatd.toml is valid")
    }

    /// Reads and checks a configuration file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            error: source,
        })?;
        let base = path.parent().map(Path::to_path_buf);
        Config::parse(&text, &path.display().to_string(), base.as_deref())
    }

    /// Parses and checks configuration text.
    pub fn parse(
        text: &str,
        source_name: &str,
        base: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.source_name = source_name.to_string();
        if let Some(base) = base.filter(|b| !b.as_os_str().is_empty()) {
            config.resolve_paths(base);
        }
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.data_dir);
        if let Some(p) = self.tls.cert.as_mut() {
            fix(p);
        }
        if let Some(p) = self.tls.key.as_mut() {
            fix(p);
        }
        for plugin in &mut self.plugins {
            if let Some(p) = plugin.path.as_mut() {
                fix(p);
            }
        }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            source_name: self.source_name.clone(),
            message,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_history()?;
        self.validate_limits()?;
        self.validate_tls_and_web()?;
        self.validate_listeners_and_plugins()?;
        self.validate_cluster()
    }

    /// Checks `[cluster]`, and that what is enabled beside it works
    /// clustered.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if let Some(problem) = cluster.problem() {
            return Err(self.invalid(problem));
        }
        // What nodes keep must be in one database they all reach.
        let shared = self.database.url.is_some();
        if self.history.enabled && !shared {
            return Err(self.invalid(
                "[cluster] with [history] needs the nodes' shared database: set database.url = \"postgres://...\" (or history.enabled = false)".into(),
            ));
        }
        for name in ["auth", "rooms"] {
            if !shared && self.enabled_plugins().any(|p| p.name == name) {
                return Err(self.invalid(format!(
                    "[cluster] with the '{name}' plugin needs the nodes' shared database: set database.url = \"postgres://...\" (or disable the plugin)"
                )));
            }
        }
        Ok(())
    }

    /// Checks `[history]`.
    fn validate_history(&self) -> Result<(), ConfigError> {
        let h = &self.history;
        if h.max_page == 0 || h.max_page > 1000 {
            return Err(self.invalid(format!(
                "history.max_page = {} must be between 1 and 1000",
                h.max_page
            )));
        }
        if h.queue == 0 || h.batch == 0 || h.prune_interval_secs == 0 {
            return Err(self.invalid(
                "history.queue, history.batch and history.prune_interval_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks `[limits]`.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_frame_bytes < 256 {
            return Err(self.invalid(format!(
                "limits.max_frame_bytes = {} is too small (minimum 256)",
                l.max_frame_bytes
            )));
        }
        if l.outbound_queue == 0 {
            return Err(self.invalid("limits.outbound_queue must be at least 1".into()));
        }
        if l.outbound_queue_bytes < l.max_frame_bytes {
            return Err(self.invalid(format!(
                "limits.outbound_queue_bytes = {} must be at least limits.max_frame_bytes ({})",
                l.outbound_queue_bytes, l.max_frame_bytes
            )));
        }
        if l.max_connections == 0 {
            return Err(self.invalid("limits.max_connections must be at least 1".into()));
        }
        if l.max_rooms_per_session == 0 || l.max_rooms == 0 {
            return Err(self.invalid(
                "limits.max_rooms_per_session and limits.max_rooms must be at least 1".into(),
            ));
        }
        if l.frames_per_second > 0 && l.frames_burst == 0 {
            return Err(self.invalid(
                "limits.frames_burst must be at least 1 when limits.frames_per_second is set"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks `[tls]`, `[database]` and `[web]`.
    fn validate_tls_and_web(&self) -> Result<(), ConfigError> {
        if self.tls.listen.is_some() && (self.tls.cert.is_none() || self.tls.key.is_none()) {
            return Err(self.invalid(
                "tls.listen is set but tls.cert or tls.key is missing; run `chatd gen-cert --out certs` for a development certificate".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(self.invalid("database.max_connections must be at least 1".into()));
        }
        if let Some(url) = &self.database.url {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(self.invalid(format!(
                    "database.url = {:?} is not a PostgreSQL URL; write it as \"postgres://USER:PASSWORD@HOST:PORT/DATABASE\", or remove it to use the SQLite file database.path",
                    chatd_storage::redact_password(url)
                )));
            }
        }
        if self.web.tls && (self.tls.cert.is_none() || self.tls.key.is_none()) {
            return Err(self.invalid(
                "web.tls = true needs tls.cert and tls.key; run `chatd gen-cert --out certs` for a development certificate".into(),
            ));
        }
        for name in &self.web.server_names {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(self.invalid(format!(
                    "web.server_names: {name:?} is not a host name; write names such as \"chat.example.org\" (no scheme, no port)"
                )));
            }
        }
        for origin in &self.web.allowed_origins {
            if !is_valid_origin(origin) {
                return Err(self.invalid(format!(
                    "web.allowed_origins: {origin:?} is not an origin; write it as scheme://host[:port], e.g. \"https://chat.example.org\""
                )));
            }
        }
        Ok(())
    }

    /// Checks the listeners taken together, and the pipeline.
    fn validate_listeners_and_plugins(&self) -> Result<(), ConfigError> {
        if let Some(admin) = self.admin.listen.filter(|a| a.port() != 0) {
            let others = [
                ("server.listen", self.server.listen),
                ("tls.listen", self.tls.listen),
                ("web.listen", self.web.listen),
            ];
            for (key, addr) in others {
                if addr == Some(admin) {
                    return Err(self.invalid(format!(
                        "admin.listen = \"{admin}\" is also {key}; the admin listener needs its own port, never a public listener's"
                    )));
                }
            }
        }
        if self.server.listen.is_none() && self.tls.listen.is_none() && self.web.listen.is_none() {
            return Err(
                self.invalid("no listener: set server.listen, tls.listen and/or web.listen".into())
            );
        }
        let mut seen = std::collections::HashSet::new();
        for p in self.plugins.iter().filter(|p| p.enabled) {
            if !seen.insert(p.name.as_str()) {
                return Err(self.invalid(format!(
                    "plugin '{}' is enabled twice in the pipeline",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// How to open the database: PostgreSQL at `database.url`, else the
    /// SQLite file (its path resolved against `data_dir`).
    pub fn database_options(&self) -> chatd_storage::DatabaseOptions {
        let mut options = match &self.database.url {
            Some(url) => chatd_storage::DatabaseOptions::postgres(url),
            None => {
                chatd_storage::DatabaseOptions::new(self.server.data_dir.join(&self.database.path))
            }
        };
        options.max_connections = self.database.max_connections;
        options.busy_timeout = Duration::from_millis(self.database.busy_timeout_ms);
        options
    }

    /// The `[plugin.config]` table of the plugin called `name` (enabled or
    /// not) as the plugin would receive it; empty if it has none.
    pub fn plugin_config(&self, name: &str) -> chat_api::PluginConfig {
        let table = self
            .plugins
            .iter()
            .filter(|p| p.name == name)
            .max_by_key(|p| p.enabled)
            .and_then(|p| p.config.as_ref());
        chat_api::PluginConfig {
            plugin: name.to_string(),
            source: self.source_name.clone(),
            toml: table
                .map(|t| toml::to_string(t).unwrap_or_default())
                .unwrap_or_default(),
        }
    }

    /// The enabled pipeline stages, in order.
    pub fn enabled_plugins(&self) -> impl Iterator<Item = &PluginEntry> {
        self.plugins.iter().filter(|p| p.enabled)
    }
}

/// Whether `origin` is written as `scheme://host[:port]` (what browsers send).
pub fn is_valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let c = Config::embedded();
        assert_eq!(c.server.listen, Some("127.0.0.1:7878".parse().unwrap()));
        assert_eq!(c.web.listen, Some("127.0.0.1:8080".parse().unwrap()));
    }

    #[test]
    fn web_origins_are_checked() {
        let err = Config::parse(
            "[web]\nallowed_origins = [\"example.org/x\"]\n",
            "w.toml",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("web.allowed_origins") && err.contains("example.org/x"),
            "{err}"
        );
        let err = Config::parse(
            "[web]\nlisten = \"127.0.0.1:0\"\ntls = true\n",
            "w.toml",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("web.tls"), "{err}");
        Config::parse(
            "[web]\nallowed_origins = [\"https://chat.example.org:8443\"]\n",
            "w.toml",
            None,
        )
        .unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n",
            "x.toml",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x.toml") && err.contains("listne"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = Config::parse("[limits]\noutbound_queue = -1\n", "y.toml", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y.toml") && err.contains("outbound_queue"),
            "{err}"
        );
        let err = Config::parse("[limits]\noutbound_queue = 0\n", "y.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outbound_queue"), "{err}");
    }

    #[test]
    fn admin_listener_needs_its_own_port() {
        let c = Config::parse("[admin]\nlisten = \"127.0.0.1:9100\"\n", "a.toml", None).unwrap();
        assert_eq!(c.admin.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(Config::embedded().admin.listen, None);
        let text = "[web]\nlisten = \"127.0.0.1:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"\n";
        let err = Config::parse(text, "a.toml", None).unwrap_err().to_string();
        assert!(
            err.contains("admin.listen") && err.contains("web.listen"),
            "{err}"
        );
        let err = Config::parse("[admin]\nlisten = \"localhost:9100\"\n", "a.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.toml") && err.contains("listen"), "{err}");
    }

    #[test]
    fn tls_needs_cert() {
        let err = Config::parse("[tls]\nlisten = \"127.0.0.1:0\"\n", "z.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gen-cert"), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let c = Config::parse(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"/abs/k.pem\"\n",
            "etc/chatd.toml",
            Some(Path::new("/etc/chatd")),
        )
        .unwrap();
        assert_eq!(c.tls.cert.unwrap(), Path::new("/etc/chatd/c.pem"));
        assert_eq!(c.tls.key.unwrap(), Path::new("/abs/k.pem"));
    }
}
