//! # chat-protocol: the wire protocol of chatd
//!
//! The frames chatd and its clients exchange (newline-delimited JSON,
//! documented in `docs/protocol.md`) as serde types, and nothing else: no
//! plugin traits, no shared-library ABI, no async runtime. Clients (the
//! terminal client, `chat-client`, `chat-bench`) depend on this crate alone;
//! plugins get it through `chat-api`, which re-exports it.
//!
//! * [`protocol`]: the core frames ([`ClientFrame`], [`ServerFrame`]), error
//!   codes, and parsing of a line in either direction ([`Inbound`],
//!   [`Received`]).
//! * [`names`]: the rules for nicknames and room names.
//! * The frames of the built-in plugins, typed so that clients and plugins
//!   cannot drift apart: [`accounts`] (log in, register, resume),
//!   [`rooms`] (private rooms and their moderation) and [`files`] (file
//!   transfer).
//! * [`Payload`]: an encoded frame; encoded once, shared by every recipient.
//!
//! ```
//! use chat_protocol::{ClientFrame, Payload, Received, ServerFrame};
//!
//! let line = Payload::encode(&ClientFrame::Join { room: "#rust".into() });
//! assert_eq!(line.json(), br##"{"type":"join","room":"#rust"}"##);
//!
//! let reply = Received::parse(br#"{"type":"ok","id":3}"#).unwrap();
//! assert_eq!(reply, Received::Core(ServerFrame::ok(Some(3))));
//! ```
//!
//! ## Stability
//!
//! The wire protocol is versioned by [`PROTOCOL_VERSION`]; fields may be
//! added to frames within a version (readers ignore unknown fields), never
//! removed or changed in meaning. The Rust API follows semver.
//!
//! ### Which types are `#[non_exhaustive]`
//!
//! The rule is who builds a type and who matches on it:
//!
//! * **Frame enums** may gain variants within a protocol version and are
//!   `#[non_exhaustive]`; match them with a `_` arm: [`ClientFrame`],
//!   [`ServerFrame`], [`rooms::RoomRequest`], [`rooms::RoomEventKind`],
//!   [`accounts::AccountRequest`], [`names::NameError`]. Their variants are built with
//!   literal syntax by whoever sends them, so the variants themselves are
//!   not `#[non_exhaustive]`.
//! * **[`MessageKind`] and [`PresenceEvent`]** are closed within a protocol
//!   version (an old client could not show a new kind); a new one comes
//!   with a new [`PROTOCOL_VERSION`].
//! * **Structs only the server builds and clients read** are
//!   `#[non_exhaustive]` and have a constructor for servers and tests:
//!   [`UnreadEntry`], [`Message`], [`Presence`], [`RoomInfo`]
//!   (`Message::new` and friends; set the optional fields afterwards).
//! * **Structs and frame variants that clients or plugins build with literal
//!   syntax** ([`ApiError`], the variants of the frame enums, the plugins'
//!   reply and event structs in [`accounts`], [`rooms`] and [`files`])
//!   are not `#[non_exhaustive]`, which would forbid that. A field added to
//!   one of them is optional on the wire but a breaking change in Rust, so
//!   it comes with a new `0.x` minor version. Destructure them with
//!   `{ field, .. }` so that such a field costs a reader nothing.
//! * [`ErrorCode`] is a string, open by design: plugins add their own codes.

pub mod accounts;
pub mod files;
pub mod names;
pub mod payload;
pub mod protocol;
pub mod rooms;
pub mod time;

pub use payload::Payload;
pub use protocol::{
    ApiError, ClientFrame, ErrorCode, Inbound, Message, MessageKind, ParseError, Presence,
    PresenceEvent, Received, Request, RequestId, RoomInfo, ServerFrame, UnreadEntry,
    PROTOCOL_VERSION,
};
/// The `serde` these types derive with.
pub use serde;
/// The `serde_json` frames are encoded with.
pub use serde_json;
pub use time::now_ms;
