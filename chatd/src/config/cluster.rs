//! `[cluster]`: several chatd nodes serving as one chat, over NATS
//! (docs/scaling.md).

use serde::{Deserialize, Serialize};

/// `[cluster]`; absent, the server is a single node and needs no NATS.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster: `[A-Za-z0-9_-]`, at most
    /// 32 characters.
    pub node: String,
    /// NATS server URLs (`nats://host:port`); JetStream must be enabled.
    pub nats: Vec<String>,
    /// Prefix of every subject, stream and bucket, so several clusters can
    /// share one NATS: `[A-Za-z0-9_-]`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How often this node tells the others it is alive.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// A node not heard from for this long is taken for dead: its users
    /// leave every room and user list here.
    #[serde(default = "default_node_timeout_ms")]
    pub node_timeout_ms: u64,
    /// How long a message waits for NATS to store it before its sender is
    /// told it failed.
    #[serde(default = "default_publish_timeout_ms")]
    pub publish_timeout_ms: u64,
}

fn default_prefix() -> String {
    "chatd".into()
}
fn default_heartbeat_ms() -> u64 {
    1000
}
fn default_node_timeout_ms() -> u64 {
    3000
}
fn default_publish_timeout_ms() -> u64 {
    2000
}

fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ClusterConfig {
    /// What is wrong with the table, if anything.
    pub fn problem(&self) -> Option<String> {
        if !is_token(&self.node, 32) {
            return Some(format!(
                "cluster.node = {:?} must be 1 to 32 characters of A-Z, a-z, 0-9, _ and -",
                self.node
            ));
        }
        if !is_token(&self.prefix, 32) {
            return Some(format!(
                "cluster.prefix = {:?} must be 1 to 32 characters of A-Z, a-z, 0-9, _ and -",
                self.prefix
            ));
        }
        if self.nats.is_empty() {
            return Some(
                "cluster.nats is empty: list the NATS servers, e.g. [\"nats://127.0.0.1:4222\"]"
                    .into(),
            );
        }
        if self.heartbeat_ms == 0 || self.node_timeout_ms < 2 * self.heartbeat_ms {
            return Some(format!(
                "cluster.node_timeout_ms = {} must be at least twice cluster.heartbeat_ms = {} (and that at least 1)",
                self.node_timeout_ms, self.heartbeat_ms
            ));
        }
        if self.publish_timeout_ms == 0 {
            return Some("cluster.publish_timeout_ms must be at least 1".into());
        }
        None
    }
}
