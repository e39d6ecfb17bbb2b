//! The wire: everything that knows bytes, sockets and TLS. A connection is
//! accepted here, secured here, and served by one task that reads the
//! session's frames and writes its queue; the session code above knows
//! only frames.
//!
//! * [`tcp`]: accept loops (plaintext and TLS), connection limits;
//! * [`tls`]: the server certificate, its reload, `chatd gen-cert`;
//! * [`tls_stream`]: a TLS session that holds no buffer while idle;
//! * [`framing`]: bytes ⇄ newline-delimited frames on a stream;
//! * [`web`]: the browser app over HTTP(S) and the `/ws` upgrade;
//! * [`websocket`]: one frame per WebSocket text message;
//! * [`writer`]: the writer every transport shares (batches, goodbye).

pub mod framing;
pub mod tcp;
pub mod tls;
pub mod tls_stream;
pub mod web;
pub mod websocket;
pub mod writer;
