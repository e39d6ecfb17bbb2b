//! # chat-api: the protocol and plugin API of chatd
//!
//! This crate is everything that is shared between the chatd server, its
//! clients and its plugins, and nothing of the server's internals. It has
//! three audiences, in three layers:
//!
//! 1. **The wire protocol**, for clients and the server (always built):
//!    * [`protocol`]: the frames (newline-delimited JSON, documented in
//!      `docs/protocol.md`), as serde types. Clients and the server use the
//!      same types, so they cannot drift apart.
//!    * [`names`]: the rules for nicknames and room names.
//!    * [`files`]: the frames of the file transfer plugin, shared with clients.
//!    * [`Payload`]: an encoded frame; encoded once, shared by every recipient.
//! 2. **The plugin API**, for plugin authors (feature `plugin`, on by
//!    default): [`plugin`] has the [`MessageHandler`] trait every plugin
//!    implements, and the narrow views of the server a plugin gets: the
//!    [`Session`] it acts for and the [`Host`] handle it sends through.
//!    ([`handler`] is its former name, kept so that old paths compile.)
//! 3. **The shared-library ABI**, between chatd and a plugin library
//!    (feature `plugin`): [`plugin_abi`], used by chatd's loader, and
//!    [`export_plugin!`], the one macro a plugin author calls (see
//!    `docs/plugins.md`).
//!
//! Everything a client or plugin commonly needs is also re-exported at the
//! crate root. A client depends on the protocol alone with
//! `chat-api = { version = "0.1", default-features = false }`: no plugin
//! traits, no ABI code, and neither `async-trait` nor `toml`.
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
//!
//! ### Which types are `#[non_exhaustive]`
//!
//! The rule is who builds a type and who matches on it:
//!
//! * **Enums chatd produces and clients or plugins match on, where growth is
//!   promised**, are `#[non_exhaustive]`; match them with a `_` arm:
//!   [`ServerFrame`] (new frame types may appear within a protocol version),
//!   [`Transport`], [`names::NameError`] and
//!   [`plugin_abi::DeclarationError`].
//! * **Enums clients or plugins produce and chatd consumes** stay exhaustive,
//!   so that chatd's own compiler catches a case it does not handle:
//!   [`ClientFrame`], [`Verdict`], [`Reconfigured`], [`LogLevel`]. Adding a
//!   variant to them breaks no client or plugin.
//! * **[`MessageKind`] and [`PresenceEvent`]** are closed within a protocol
//!   version (an old client could not show a new kind); a new one comes
//!   with a new [`PROTOCOL_VERSION`].
//! * **Structs and frame variants that clients or plugins build with literal
//!   syntax** ([`Identity`], [`PluginConfig`], [`PluginContext`],
//!   [`ApiError`], [`Message`], [`RoomInfo`], the [`files`] frames, the
//!   variants of [`ClientFrame`] and [`ServerFrame`]) are not
//!   `#[non_exhaustive]`, which would forbid that. A field added to one of
//!   them is optional on the wire but a breaking change in Rust, so it comes
//!   with a new `0.x` minor version of `chat-api`. Destructure them with
//!   `{ field, .. }` so that such a field costs a reader nothing.
//! * **Structs only chatd builds** are `#[non_exhaustive]` and have a
//!   constructor for hosts and tests: [`Delivery`].

pub mod files;
pub mod names;
pub mod payload;
#[cfg(feature = "plugin")]
pub mod plugin;
#[cfg(feature = "plugin")]
pub mod plugin_abi;
pub mod protocol;
pub mod time;

/// The former name of [`plugin`], kept so that `chat_api::handler::...`
/// paths still compile.
#[cfg(feature = "plugin")]
pub use plugin as handler;

#[cfg(feature = "plugin")]
pub use async_trait::async_trait;
pub use payload::Payload;
#[cfg(feature = "plugin")]
pub use plugin::{
    BoxFuture, ConfigError, Delivery, HandlerError, HandlerResult, Host, Identity, LogLevel,
    MessageHandler, PluginConfig, PluginContext, Reconfigured, Session, SessionId, Transport,
    Verdict,
};
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
pub use time::now_ms;
