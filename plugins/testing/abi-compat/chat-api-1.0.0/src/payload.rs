//! Encoded frames.

use bytes::Bytes;
use serde::Serialize;

/// One frame, already encoded as a JSON line (ending in `\n`).
///
/// A message is encoded once and this value is cloned (a reference-count
/// increment, no copy) into the queue of every recipient, whatever their
/// transport: TCP and TLS write the line as is, WebSocket sends it without the
/// newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload(Bytes);

impl Payload {
    /// Encodes `frame` as one JSON line.
    pub fn encode<T: Serialize + ?Sized>(frame: &T) -> Payload {
        let mut line = Vec::with_capacity(128);
        // Serialising our own frame types cannot fail: they contain no maps
        // with non-string keys and no fallible Serialize impls.
        serde_json::to_writer(&mut line, frame).expect("frame types always serialise");
        line.push(b'\n');
        Payload(Bytes::from(line))
    }

    /// Wraps bytes that already hold one JSON object followed by `\n`.
    pub fn from_line(line: Bytes) -> Payload {
        debug_assert!(line.ends_with(b"\n"));
        Payload(line)
    }

    /// The whole line, newline included (what stream transports write).
    pub fn line(&self) -> &Bytes {
        &self.0
    }

    /// The JSON text without the trailing newline (what WebSocket sends).
    pub fn json(&self) -> &[u8] {
        self.0.strip_suffix(b"\n").unwrap_or(&self.0)
    }

    /// Length in bytes, newline included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the payload is empty (never true for encoded frames).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
