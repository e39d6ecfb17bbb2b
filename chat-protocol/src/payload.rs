//! Encoded frames.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The longest header of an unmasked WebSocket frame (RFC 6455 §5.2).
const MAX_WEBSOCKET_HEADER: usize = 10;

/// One frame, already encoded as a JSON line (ending in `\n`), and always
/// UTF-8.
///
/// A message is encoded once and this value is cloned (a reference-count
/// increment, no copy) into the queue of every recipient, whatever their
/// transport: TCP and TLS write the line as is, and WebSocket writes the
/// text frame that carries the JSON without the newline (a header of two to
/// ten bytes before it: no serialisation, message object or UTF-8 check per
/// recipient).
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

    /// Wraps bytes that already hold one JSON object followed by `\n`. Bytes
    /// that are not UTF-8 are replaced (U+FFFD), once, here: every transport
    /// can then send the payload as text.
    pub fn from_line(line: Bytes) -> Payload {
        debug_assert!(line.ends_with(b"\n"));
        match String::from_utf8_lossy(&line) {
            std::borrow::Cow::Borrowed(_) => Payload(line),
            std::borrow::Cow::Owned(valid) => Payload(Bytes::from(valid)),
        }
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

    /// Length of the WebSocket text frame that carries the JSON, at most.
    pub fn websocket_frame_capacity(&self) -> usize {
        self.json().len() + MAX_WEBSOCKET_HEADER
    }

    /// Appends the WebSocket text frame that carries the JSON (final,
    /// unmasked: what a server sends) to `out`.
    pub fn extend_websocket_frame(&self, out: &mut BytesMut) {
        let json = self.json();
        let mut header = [0u8; MAX_WEBSOCKET_HEADER];
        let mut unused = &mut header[..];
        FrameHeader {
            is_final: true,
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        }
        .format(json.len() as u64, &mut unused)
        .expect("a frame header fits in ten bytes");
        let header_len = MAX_WEBSOCKET_HEADER - unused.len();
        out.extend_from_slice(&header[..header_len]);
        out.extend_from_slice(json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(frame: &[u8]) -> (FrameHeader, usize, &[u8]) {
        let mut cursor = std::io::Cursor::new(frame);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        (header, len as usize, &frame[start..])
    }

    #[test]
    fn the_websocket_frame_carries_the_json_whatever_its_length() {
        // Lengths on both sides of the 2-, 4- and 10-byte header boundaries.
        for text_len in [0, 100, 125, 126, 200, 65_535, 65_536, 70_000] {
            let text = "x".repeat(text_len);
            let payload = Payload::encode(&serde_json::json!({ "text": text }));
            let json = format!("{{\"text\":\"{text}\"}}");
            assert_eq!(&payload.line()[..], format!("{json}\n").as_bytes());
            let mut frame = BytesMut::new();
            payload.extend_websocket_frame(&mut frame);
            assert!(frame.len() <= payload.websocket_frame_capacity());
            let (header, len, body) = parse(&frame);
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert!(header.mask.is_none());
            assert_eq!(len, json.len());
            assert_eq!(body, json.as_bytes());
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_made_valid_text_once() {
        let payload = Payload::from_line(Bytes::from_static(b"{\"text\":\"\xff\"}\n"));
        assert_eq!(
            std::str::from_utf8(payload.json()).unwrap(),
            "{\"text\":\"\u{fffd}\"}"
        );
        let valid = Bytes::from_static(b"{\"type\":\"ok\"}\n");
        assert_eq!(
            Payload::from_line(valid.clone()).line().as_ptr(),
            valid.as_ptr(),
            "valid lines are kept as they are"
        );
    }
}
