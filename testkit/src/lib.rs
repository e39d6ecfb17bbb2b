//! # chatd-testkit: the test kit of the chatd workspace
//!
//! Every test crate of the workspace (chatd's, the plugins', client-tui's)
//! starts servers and talks to them through this kit, so that they do it
//! one way:
//!
//! * [`server`]: a real chatd in this process on `127.0.0.1:0`, its data in
//!   a temporary directory (from a configuration built in code, from TOML
//!   text, or from a `chatd.toml` written to disk for the CLI to share);
//! * [`client`]: `chat_client::Client` connections and the waits tests
//!   need (a reply, a frame of a kind, a message, the end of a connection),
//!   each bounded by [`WAIT`], never a sleep;
//! * [`web`]: a WebSocket client of `/ws` and one-shot HTTP requests;
//! * [`proxy`]: a relay that cuts connections (and holds new ones) on
//!   demand, to test resuming;
//! * [`process`]: the `chatd` binary as a child process, its log waited on
//!   by content;
//! * [`nats`]: a real `nats-server` with JetStream, for the cluster's tests;
//! * [`postgres`]: a real PostgreSQL server in a temporary directory, for
//!   the tests of chatd on PostgreSQL (`[database] url`);
//! * [`structure`]: a crate's module import graph, for the tests that keep
//!   it free of cycles.
//!
//! ```no_run
//! # async fn demo() {
//! use chatd_testkit::{client, join, start};
//! let server = start(|_| {}).await;
//! let mut alice = client(&server.addr, "alice").await;
//! join(&mut alice, "#lobby").await;
//! # }
//! ```

pub mod client;
pub mod nats;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod server;
pub mod structure;
pub mod web;

use std::time::Duration;

pub use client::*;
pub use proxy::Proxy;
pub use server::*;
pub use web::*;

/// Upper bound for anything a test waits for: long enough for a loaded CI
/// machine, short enough that a hang fails the test instead of the run.
pub const WAIT: Duration = Duration::from_secs(20);

/// A test needs a program that is not installed (`why` says which and how
/// to get it): outside CI the test says so and is skipped (the caller
/// returns); under `CI=true`, where `.ci/run` installs it, it fails.
pub fn skip_unless_ci(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: a missing dependency is a failure)");
    }
    eprintln!("skipping: {why}");
}
