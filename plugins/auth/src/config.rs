//! The plugin's `[plugin.config]` table, its defaults and its checks.

use chat_api::{ConfigError, PluginConfig};
use serde::Deserialize;

/// Who may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may send `register`.
    Open,
    /// Only the operator creates accounts (`chatd user add`).
    Closed,
}

/// The whole table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub registration: Registration,
    /// Accept `register`, `login` and `passwd` on plaintext listeners. Handy
    /// for development; real deployments should set it to false and have
    /// clients use the TLS listener, or passwords cross the network in clear.
    pub allow_plaintext: bool,
    /// Let unauthenticated sessions chat under a `nick` that no account
    /// holds. Off by default: then every session must log in.
    pub allow_guests: bool,
    /// Shortest password accepted for new passwords, in characters.
    pub min_password_length: usize,
    pub argon2: Argon2Config,
    pub throttle: ThrottleConfig,
    /// How often the server looks for accounts that the admin CLI disabled or
    /// deleted, to end their sessions.
    pub watch_interval_ms: u64,
    /// Days a resume token stays valid without being used.
    pub resume_token_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            registration: Registration::Open,
            allow_plaintext: true,
            allow_guests: false,
            min_password_length: 8,
            argon2: Argon2Config::default(),
            throttle: ThrottleConfig::default(),
            watch_interval_ms: 1000,
            resume_token_days: 30,
        }
    }
}

/// `[plugin.config.argon2]`: the cost of hashing and how much of it may run
/// at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory per hash in KiB (OWASP: at least 19456, i.e. 19 MiB).
    pub memory_kib: u32,
    /// Passes over the memory (OWASP: at least 2 with 19 MiB).
    pub iterations: u32,
    /// Lanes per hash.
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait. Bounds CPU and memory
    /// (`memory_kib` each) during a login storm.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a hashing slot; beyond that a request is
    /// refused with `server_busy` instead of queueing without bound.
    pub max_waiting: usize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: OWASP_MEMORY_KIB,
            iterations: OWASP_ITERATIONS,
            parallelism: 1,
            max_concurrent: 2,
            max_waiting: 256,
        }
    }
}

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_ITERATIONS: u32 = 2;

/// `[plugin.config.throttle]`: back-off after failed logins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins for one account before it is locked for a while.
    pub account_failures: u32,
    /// Failed logins from one client address (an IPv6 /64 counts as one
    /// address) before it is locked; higher, since people share addresses.
    pub address_failures: u32,
    /// The first lock-out; each further failure doubles it.
    pub lockout_ms: u64,
    /// The longest lock-out. After this long without a failure, an account or
    /// address starts afresh.
    pub max_lockout_ms: u64,
    /// Accounts and addresses tracked at once (bounds memory).
    pub max_tracked: usize,
    /// Registrations from one client address before it must wait, with the
    /// same lock-outs as failed logins (first `lockout_ms`, then doubling).
    pub registrations_per_address: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            account_failures: 5,
            address_failures: 20,
            lockout_ms: 1_000,
            max_lockout_ms: 15 * 60 * 1000,
            max_tracked: 100_000,
            registrations_per_address: 30,
        }
    }
}

impl AuthConfig {
    /// Parses and checks the plugin's table.
    pub fn from_plugin_config(config: &PluginConfig) -> Result<AuthConfig, ConfigError> {
        let c: AuthConfig = config.parse()?;
        let invalid = |m: String| Err(ConfigError::invalid(config, m));
        if c.min_password_length == 0 {
            return invalid("min_password_length must be at least 1".into());
        }
        if c.min_password_length > crate::password::MAX_PASSWORD_BYTES {
            return invalid(format!(
                "min_password_length must be at most {}",
                crate::password::MAX_PASSWORD_BYTES
            ));
        }
        if let Err(e) = crate::password::Passwords::new(&c.argon2) {
            return invalid(format!("argon2: {e}"));
        }
        if c.argon2.max_concurrent == 0 {
            return invalid("argon2.max_concurrent must be at least 1".into());
        }
        let t = &c.throttle;
        if t.account_failures == 0 || t.address_failures == 0 {
            return invalid(
                "throttle.account_failures and throttle.address_failures must be at least 1".into(),
            );
        }
        if t.lockout_ms == 0 || t.max_lockout_ms < t.lockout_ms {
            return invalid(
                "throttle.lockout_ms must be at least 1 and at most throttle.max_lockout_ms".into(),
            );
        }
        if t.max_tracked == 0 {
            return invalid("throttle.max_tracked must be at least 1".into());
        }
        if c.watch_interval_ms == 0 {
            return invalid("watch_interval_ms must be at least 1".into());
        }
        if c.argon2.memory_kib < OWASP_MEMORY_KIB || c.argon2.iterations < OWASP_ITERATIONS {
            tracing::warn!(
                memory_kib = c.argon2.memory_kib,
                iterations = c.argon2.iterations,
                "argon2 cost is below the OWASP minimum (19456 KiB, 2 iterations); use this only for tests"
            );
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<AuthConfig, ConfigError> {
        AuthConfig::from_plugin_config(&PluginConfig {
            plugin: "auth".into(),
            source: "test.toml".into(),
            toml: toml.into(),
        })
    }

    #[test]
    fn defaults_follow_owasp() {
        let c = parse("").unwrap();
        assert_eq!(c.argon2.memory_kib, 19456);
        assert_eq!(c.argon2.iterations, 2);
        assert_eq!(c.registration, Registration::Open);
        assert!(!c.allow_guests);
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("registraton = \"open\"").unwrap_err().to_string();
        assert!(e.contains("registraton") && e.contains("test.toml"), "{e}");
        let e = parse("registration = \"maybe\"").unwrap_err().to_string();
        assert!(e.contains("maybe"), "{e}");
        let e = parse("[argon2]\nmemory_kib = 1").unwrap_err().to_string();
        assert!(e.contains("argon2"), "{e}");
        let e = parse("[throttle]\nlockout_ms = 0").unwrap_err().to_string();
        assert!(e.contains("lockout_ms"), "{e}");
    }
}
