//! # chatd
//!
//! The chat daemon as a library, so that tests and benchmarks can run it
//! in-process. Modules follow the flow of data:
//!
//! * [`transport`]: the wire: accept loops, TLS, newline framing, the
//!   browser app's HTTP(S) and WebSocket, and the one connection task that
//!   reads a session's frames and writes its queue;
//! * [`session`]: handshake, the frame loop, login catch-up;
//! * [`commands`]: the core commands, one function each;
//! * [`shared`]: the state every session shares;
//! * [`pipeline`]: the ordered plugins every frame passes through;
//! * [`dynamic`]: loading third-party plugins from shared libraries;
//! * [`hub`]: who is connected and where, and routing to recipients;
//! * [`hub::peer`]: a session as the hub sees it (queue, identity, rooms);
//!   [`closer`]: how its tasks are told to stop;
//! * [`outbox`]: the bounded per-connection queue the writer drains;
//! * [`host`]: the narrow server handle plugins get;
//! * [`server`]: start-up and graceful shutdown; [`config`]: `chatd.toml`;
//! * [`metrics`] and [`admin`]: what operators see on the admin listener.
//! * [`reload`]: applying a changed `chatd.toml` while running;
//! * [`service`]: telling systemd about readiness, reloads and liveness.
//!
//! See `docs/architecture.md` for the design and its locking rules.

pub mod admin;
pub mod check;
pub mod closer;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod data_dir;
pub mod dynamic;
pub mod history;
pub mod host;
pub mod hub;
pub mod message_ids;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod reload;
pub mod server;
pub mod service;
pub mod session;
pub mod shared;
pub mod stall_watch;
pub mod transport;

pub use config::Config;
pub use pipeline::PluginRegistry;
pub use server::{start, start_with, RunningServer, StartError};
/// Kept at the crate root for tools and tests that make certificates.
pub use transport::tls;
