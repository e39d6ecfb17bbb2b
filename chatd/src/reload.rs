//! Live reload (`chatd reload`, SIGHUP): the new `chatd.toml` is checked
//! as `chatd check-config` does (every `[[plugin]]` entry that changed is
//! built to run its own checks), then what can change without dropping
//! anyone is applied; every other changed key is named in the log
//! as waiting for a restart. An invalid file changes nothing.
//!
//! What applies live (docs/operations.md has the same list):
//!
//! * `tls.cert`, `tls.key`, and the files they name: new handshakes get the
//!   new pair, established connections keep theirs;
//! * `server.broadcast`: from the next `broadcast` frame;
//! * `[limits]` except `max_frame_bytes` (announced in every `welcome`):
//!   `max_connections`, `max_rooms`, `max_rooms_per_session`,
//!   `shutdown_timeout_ms` and `slow_plugin_poll_ms` at once; the others
//!   (queues, flood control, handshake timeout, keepalive) for connections
//!   accepted after the reload;
//! * a plugin's `[plugin.config]` when the plugin implements
//!   `MessageHandler::reconfigure` (the word filter does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chat_api::Reconfigured;

use crate::config::{Config, PluginEntry};
use crate::pipeline::PluginRegistry;
use crate::shared::Shared;
use crate::transport::tls::CertStore;

/// What a server keeps to reload itself.
pub(crate) struct ReloadState {
    /// The configuration in force: the one started with, plus what
    /// reloads applied (keys waiting for a restart keep their old value, so
    /// that a later reload names them again).
    running: Mutex<Config>,
    registry: PluginRegistry,
    pub(crate) certs: Option<Arc<CertStore>>,
}

impl ReloadState {
    pub(crate) fn new(
        config: Config,
        registry: PluginRegistry,
        certs: Option<Arc<CertStore>>,
    ) -> ReloadState {
        ReloadState {
            running: Mutex::new(config),
            registry,
            certs,
        }
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{source_name}: {} problem{} found: {}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, .problems.join("; "))]
    Invalid {
        source_name: String,
        problems: Vec<String>,
    },
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Keys now in force (`limits.max_connections`, `plugin.wordfilter.config`).
    pub applied: Vec<String>,
    /// Changed keys that keep their old value until a restart.
    pub needs_restart: Vec<String>,
    /// Whether the TLS certificate and key were read again.
    pub certificate_reloaded: bool,
}

impl ReloadState {
    /// Checks `new` and applies what can change while running to the
    /// sessions' `shared` state; see the module documentation. On error
    /// nothing changed.
    pub(crate) async fn apply(
        &self,
        shared: &Shared,
        new: Config,
    ) -> Result<ReloadReport, ReloadError> {
        let state = self;
        let invalid = |problems: Vec<String>| ReloadError::Invalid {
            source_name: new.source_name.clone(),
            problems,
        };
        let problems = state.check(&new).await;
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let pair = state
            .read_certificate(&new)
            .await
            .map_err(|e| invalid(vec![e]))?;

        let mut running = state.running.lock().unwrap_or_else(|e| e.into_inner());
        let cannot_compare = |e: toml::ser::Error| {
            invalid(vec![format!(
                "cannot compare it with the running configuration: {e}"
            )])
        };
        let old_keys = flatten(&running).map_err(cannot_compare)?;
        let new_keys = flatten(&new).map_err(cannot_compare)?;
        // Nothing can fail from here on.
        let mut report = ReloadReport::default();
        if let (Some(certs), Some(pair)) = (&state.certs, pair) {
            certs.replace(pair);
            report.certificate_reloaded = true;
        }
        let mut changed: Vec<&String> = old_keys
            .keys()
            .chain(new_keys.keys())
            .filter(|k| old_keys.get(*k) != new_keys.get(*k))
            .collect();
        changed.sort();
        changed.dedup();
        for key in changed {
            if applies_live(key) {
                report.applied.push(key.clone());
            } else {
                report.needs_restart.push(key.clone());
            }
        }
        if !report.applied.is_empty() {
            let mut limits = new.limits.clone();
            limits.max_frame_bytes = running.limits.max_frame_bytes;
            shared.reconfigure(limits.clone(), new.server.broadcast);
            running.limits = limits;
            running.server.broadcast = new.server.broadcast;
            running.tls.cert = new.tls.cert.clone();
            running.tls.key = new.tls.key.clone();
        }
        Self::reconfigure_plugins(shared, &mut running, &new, &mut report);
        running.source_name = new.source_name.clone();
        drop(running);
        for key in &report.needs_restart {
            tracing::warn!(key = %key, "reload: {key} changed but takes effect only after a restart; the old value stays in force until then");
        }
        tracing::info!(
            source = %new.source_name,
            applied = ?report.applied,
            certificate_reloaded = report.certificate_reloaded,
            waiting_for_restart = report.needs_restart.len(),
            "configuration reloaded"
        );
        Ok(report)
    }

    /// The problems of `new`, checked as `chatd check-config` does, with
    /// only the plugins whose entries changed built again. The check reads
    /// files and builds plugins: off the runtime's worker threads.
    async fn check(&self, new: &Config) -> Vec<String> {
        let unchanged: Vec<PluginEntry> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plugins
            .clone();
        let (config, registry) = (new.clone(), self.registry.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let changed = |entry: &PluginEntry| !unchanged.iter().any(|old| same_entry(old, entry));
            runtime.block_on(crate::check::check_with_plugins(
                &config, &registry, changed,
            ))
        })
        .await
        .unwrap_or_else(|e| vec![format!("the check of the new configuration failed: {e}")])
    }

    /// The certificate and key `new` names, read again even when the paths
    /// are unchanged (renewed in place); `None` without TLS.
    async fn read_certificate(
        &self,
        new: &Config,
    ) -> Result<Option<std::sync::Arc<rustls::sign::CertifiedKey>>, String> {
        let (Some(_), Some(cert), Some(key)) = (&self.certs, &new.tls.cert, &new.tls.key) else {
            return Ok(None);
        };
        let (cert, key) = (cert.clone(), key.clone());
        tokio::task::spawn_blocking(move || {
            crate::transport::tls::load_certified_key(&cert, &key).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("reading the certificate failed: {e}")))
        .map(Some)
    }

    /// Hands each enabled plugin whose table changed its new table, if the
    /// pipeline itself (names, order, enabled, paths) is unchanged.
    fn reconfigure_plugins(
        shared: &Shared,
        running: &mut Config,
        new: &Config,
        report: &mut ReloadReport,
    ) {
        let shape = |c: &Config| -> Vec<_> {
            c.plugins
                .iter()
                .map(|p| (p.name.clone(), p.enabled, p.path.clone()))
                .collect()
        };
        if shape(running) != shape(new) {
            report.needs_restart.push("plugin".to_string());
            return;
        }
        for (old, entry) in running.plugins.iter_mut().zip(&new.plugins) {
            if old.config == entry.config {
                continue;
            }
            if !entry.enabled {
                // Not in the pipeline: used as is when it is enabled.
                old.config = entry.config.clone();
                continue;
            }
            let key = format!("plugin.{}.config", entry.name);
            let Some(stage) = shared
                .pipeline
                .stages()
                .iter()
                .find(|s| s.name == entry.name)
            else {
                continue;
            };
            match stage.handler.reconfigure(&new.plugin_config(&entry.name)) {
                Ok(Reconfigured::Applied) => {
                    old.config = entry.config.clone();
                    report.applied.push(key);
                }
                Ok(Reconfigured::RestartNeeded) => report.needs_restart.push(key),
                Err(e) => {
                    tracing::error!(plugin = %entry.name, error = %e, "reload: the plugin refused its new configuration and keeps the old one");
                    report.needs_restart.push(key);
                }
            }
        }
    }
}

fn same_entry(a: &PluginEntry, b: &PluginEntry) -> bool {
    a.name == b.name && a.enabled == b.enabled && a.path == b.path && a.config == b.config
}

/// Keys a reload applies (everything else needs a restart).
fn applies_live(key: &str) -> bool {
    matches!(key, "server.broadcast" | "tls.cert" | "tls.key")
        || (key.starts_with("limits.") && key != "limits.max_frame_bytes")
}

/// Every key of the configuration but the plugin list, as `table.key`.
fn flatten(config: &Config) -> Result<BTreeMap<String, toml::Value>, toml::ser::Error> {
    let mut keys = BTreeMap::new();
    if let toml::Value::Table(table) = toml::Value::try_from(config)? {
        for (name, value) in table {
            if name != "plugin" {
                flatten_into(&name, value, &mut keys);
            }
        }
    }
    Ok(keys)
}

fn flatten_into(prefix: &str, value: toml::Value, keys: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(table) => {
            for (name, value) in table {
                flatten_into(&format!("{prefix}.{name}"), value, keys);
            }
        }
        leaf => {
            keys.insert(prefix.to_string(), leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_found_and_sorted_into_live_and_restart() {
        let old = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n", "a.toml", None).unwrap();
        let new = Config::parse(
            "[server]\nlisten = \"127.0.0.1:2\"\nbroadcast = \"admins\"\n[limits]\nmax_frame_bytes = 1024\nframes_burst = 3\n",
            "a.toml",
            None,
        )
        .unwrap();
        let (old, new) = (flatten(&old).unwrap(), flatten(&new).unwrap());
        let changed: Vec<&str> = new
            .keys()
            .filter(|k| old.get(*k) != new.get(*k))
            .map(String::as_str)
            .collect();
        assert_eq!(
            changed,
            [
                "limits.frames_burst",
                "limits.max_frame_bytes",
                "server.broadcast",
                "server.listen"
            ]
        );
        let live: Vec<bool> = changed.iter().map(|k| applies_live(k)).collect();
        assert_eq!(live, [true, false, true, false]);
    }
}
