//! # chat-api: the plugin API of chatd
//!
//! What a plugin author builds against, and nothing of the server's
//! internals. Three layers, for three audiences:
//!
//! 1. **The wire protocol**, re-exported from the `chat-protocol` crate
//!    (which clients depend on alone): [`protocol`] (frames as serde types,
//!    documented in `docs/protocol.md`), [`names`] (nickname and room-name
//!    rules), the typed frames of the built-in plugins ([`accounts`],
//!    [`rooms`], [`files`]) and
//!    [`Payload`] (an encoded frame, shared by every recipient). Paths such
//!    as `chat_api::protocol::ServerFrame` keep working.
//! 2. **The plugin API**, for plugin authors: [`plugin`] has the
//!    [`MessageHandler`] trait every plugin implements, and the narrow views
//!    of the server a plugin gets: the [`Session`] it acts for and the
//!    [`Host`] handle it sends through. ([`handler`] is its former name,
//!    kept so that old paths compile.)
//! 3. **The shared-library ABI**, between chatd and a plugin library:
//!    [`plugin_abi`], a versioned C boundary ([`plugin_abi::ABI_VERSION`])
//!    used by chatd's loader, and [`export_plugin!`], the one macro a plugin
//!    author calls (see `docs/plugins.md`).
//!
//! With the feature `testkit`, [`testkit`] has a fake server to unit-test a
//! plugin's `on_frame` with (see `docs/plugins.md`, "Testing a plugin").
//!
//! Everything a plugin commonly needs is also re-exported at the crate root.
//! A client needs none of the plugin layers: it depends on `chat-protocol`.
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
//! changed in meaning. The Rust API follows semver: within `1.x` the
//! `MessageHandler`, `Session` and `Host` traits only gain methods with default
//! bodies. A shared-library plugin built against `chat-api` 1.x, with any
//! Rust compiler, declares plugin ABI 1.x and loads in every chatd speaking
//! ABI 1.y with y >= x (see [`plugin_abi`] and `docs/plugins.md`).
//!
//! ### Which types are `#[non_exhaustive]`
//!
//! For the protocol types, see `chat-protocol`'s crate documentation. Of
//! this crate's own types:
//!
//! * [`Transport`], [`StorageErrorKind`] and
//!   [`plugin_abi::DeclarationError`], which chatd produces and plugins
//!   match on, are `#[non_exhaustive]`. The protocol's types follow the
//!   rules in `chat-protocol`'s documentation.
//! * [`Verdict`], [`Reconfigured`] and [`LogLevel`], which plugins produce
//!   and chatd consumes, stay exhaustive, so that chatd's own compiler
//!   catches a case it does not handle.
//! * [`Identity`], [`PluginConfig`] and [`PluginContext`], which plugins
//!   build with literal syntax, are not `#[non_exhaustive]`. A field added
//!   to one of them is a breaking change in Rust, so it comes with a new
//!   major version of `chat-api` (the plugin ABI keeps its major: fields
//!   cross as JSON, which ignores what it does not know).
//! * [`Delivery`] and [`StorageError`], which only chatd builds, are
//!   `#[non_exhaustive]` and have a constructor for hosts and tests.

pub mod plugin;
pub mod plugin_abi;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use chat_protocol::{accounts, files, names, payload, protocol, rooms};

/// The former name of [`plugin`], kept so that `chat_api::handler::...`
/// paths still compile.
pub use plugin as handler;

pub use async_trait::async_trait;
pub use chat_protocol::now_ms;
/// The `serde` chatd is built with. Shared-library plugins derive through it
/// (`#[serde(crate = "chat_api::serde")]`) so that they depend on `chat-api`
/// alone and cannot pull in a different version.
pub use chat_protocol::serde;
/// The `serde_json` chatd is built with (see [`serde`]).
pub use chat_protocol::serde_json;
pub use chat_protocol::Payload;
pub use chat_protocol::{
    ApiError, ClientFrame, ErrorCode, Inbound, Message, MessageKind, ParseError, Presence,
    PresenceEvent, Received, Request, RequestId, RoomInfo, ServerFrame, UnreadEntry,
    PROTOCOL_VERSION,
};
pub use plugin::{
    is_remote_session, BoxFuture, ConfigError, Delivery, HandlerError, HandlerResult, Host,
    Identity, LogLevel, MessageHandler, PluginConfig, PluginContext, Reconfigured, Session,
    SessionId, StorageError, StorageErrorKind, Transport, Verdict, REMOTE_SESSION,
};
