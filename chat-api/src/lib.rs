//! # chat-api: the protocol and plugin API of chatd
//!
//! This crate is everything that is shared between the chatd server, its
//! clients and its plugins, and nothing of the server's internals:
//!
//! * [`protocol`]: the wire frames (newline-delimited JSON, documented in
//!   `docs/protocol.md`), as serde types. Clients and the server use the same
//!   types, so they cannot drift apart.
//! * [`names`]: the rules for nicknames and room names.
//! * [`handler`]: the [`MessageHandler`] trait every plugin implements, and the
//!   narrow views of the server a plugin gets: the [`Session`] it acts for and
//!   the [`Host`] handle it sends through.
//! * [`Payload`]: an encoded frame; encoded once, shared by every recipient.
//! * [`files`]: the frames of the file transfer plugin, shared with clients.
//! * [`plugin_abi`] and [`export_plugin!`]: the shared-library boundary for
//!   third-party plugins (see `docs/plugins.md`).
//!
//! ## A minimal handler
//!
//! ```
//! use chat_api::{async_trait, ClientFrame, HandlerResult, Inbound, MessageHandler, Request,
//!                Session, Verdict, ApiError, ErrorCode};
//!
//! /// Refuses room messages that shout (all capitals).
//! struct NoShouting;
//!
//! #[async_trait]
//! impl MessageHandler for NoShouting {
//!     fn name(&self) -> &str { "no-shouting" }
//!
//!     async fn on_frame(&self, _session: &dyn Session, frame: &mut Inbound) -> HandlerResult {
//!         if let Request::Core(ClientFrame::Say { text, .. }) = &frame.request {
//!             if text.len() > 3 && !text.chars().any(|c| c.is_lowercase()) {
//!                 return Ok(Verdict::Reject(ApiError::new(
//!                     ErrorCode::REJECTED, "please do not shout")));
//!             }
//!         }
//!         Ok(Verdict::Continue)
//!     }
//! }
//! ```
//!
//! ## Stability
//!
//! The wire protocol is versioned by [`PROTOCOL_VERSION`]; fields may be added
//! to frames within a version (readers ignore unknown fields), never removed or
//! changed in meaning. The Rust API follows semver: within `0.1.x` the
//! `MessageHandler`, `Session` and `Host` traits only gain methods with default
//! bodies. Shared-library plugins must additionally be built with the exact
//! same compiler and `chat-api` source as the chatd that loads them; chatd
//! checks this before calling into a library (see [`plugin_abi`] and
//! `docs/plugins.md`).

pub mod files;
pub mod handler;
pub mod names;
pub mod payload;
pub mod plugin_abi;
pub mod protocol;

pub use async_trait::async_trait;
pub use handler::{
    BoxFuture, ConfigError, HandlerError, HandlerResult, Host, Identity, LogLevel, MessageHandler,
    PluginConfig, PluginContext, Reconfigured, Session, SessionId, Transport, Verdict,
};
pub use payload::Payload;
pub use protocol::{
    ApiError, ClientFrame, ErrorCode, Inbound, Message, MessageKind, ParseError, Presence,
    PresenceEvent, Request, RequestId, RoomInfo, ServerFrame, UnreadEntry, PROTOCOL_VERSION,
};
/// The `serde` chatd is built with. Shared-library plugins derive through it
/// (`#[serde(crate = "chat_api::serde")]`) so that they depend on `chat-api`
/// alone and cannot pull in a different version.
pub use serde;
/// The `serde_json` chatd is built with (see [`serde`]).
pub use serde_json;
