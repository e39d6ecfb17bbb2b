//! # chatd
//!
//! The chat daemon as a library, so that tests and benchmarks can run it
//! in-process. Modules follow the flow of data:
//!
//! * [`listener`]: accept loops (plaintext and TLS), connection limits;
//! * [`framing`]: bytes ⇄ frames, the per-connection writer task;
//! * [`web`]: the browser app over HTTP(S) and the `/ws` upgrade;
//! * [`websocket`]: the WebSocket transport (frame source and writer);
//! * [`session`]: handshake, the frame loop, the core router;
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
pub mod config;
pub mod data_dir;
pub mod dynamic;
pub mod framing;
pub mod history;
pub mod host;
pub mod hub;
pub mod listener;
pub mod message_ids;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod reload;
pub mod server;
pub mod service;
pub mod session;
pub mod stall_watch;
pub mod tls;
pub mod web;
pub mod websocket;

pub use config::Config;
pub use pipeline::PluginRegistry;
pub use server::{start, start_with, RunningServer, StartError};
