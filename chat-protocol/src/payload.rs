//! Encoded frames.

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The longest header of an unmasked WebSocket frame (RFC 6455 §5.2).
const MAX_WEBSOCKET_HEADER: usize = 10;

/// One frame, already encoded for every transport.
///
/// A message is encoded once and this value is cloned (a reference-count
/// increment, no copy) into the queue of every recipient, whatever their
/// transport: TCP and TLS write the JSON line as is, and WebSocket writes
/// the text frame that carries the JSON without the newline. An encoded
/// payload holds both in one buffer, `[WebSocket header][JSON]\n`, so that
/// neither is built per recipient; one made from a line
/// ([`Payload::from_line`]) holds the line only.
#[derive(Clone)]
pub struct Payload {
    bytes: Bytes,
    /// Bytes of WebSocket header before the line (0 for a bare line).
    /// Kept here, not read from the buffer, so that the writers' and the
    /// queues' length checks never touch the payload's memory.
    header_len: u8,
}

impl Payload {
    /// Encodes `frame` as one JSON line, preceded by the header of the
    /// WebSocket text frame that carries it.
    pub fn encode<T: Serialize + ?Sized>(frame: &T) -> Payload {
        let mut buf = Vec::with_capacity(128);
        buf.resize(MAX_WEBSOCKET_HEADER, 0);
        // Serialising our own frame types cannot fail: they contain no maps
        // with non-string keys and no fallible Serialize impls.
        serde_json::to_writer(&mut buf, frame).expect("frame types always serialise");
        let json_len = (buf.len() - MAX_WEBSOCKET_HEADER) as u64;
        let mut header = [0u8; MAX_WEBSOCKET_HEADER];
        let mut out = &mut header[..];
        text_frame_header()
            .format(json_len, &mut out)
            .expect("a frame header fits in ten bytes");
        let header_len = MAX_WEBSOCKET_HEADER - out.len();
        let start = MAX_WEBSOCKET_HEADER - header_len;
        buf[start..MAX_WEBSOCKET_HEADER].copy_from_slice(&header[..header_len]);
        buf.push(b'\n');
        let mut bytes = Bytes::from(buf);
        // Moves the start without a copy or a second allocation.
        bytes.advance(start);
        Payload {
            bytes,
            header_len: header_len as u8,
        }
    }

    /// Wraps bytes that already hold one JSON object followed by `\n`.
    pub fn from_line(line: Bytes) -> Payload {
        debug_assert!(line.ends_with(b"\n"));
        Payload {
            bytes: line,
            header_len: 0,
        }
    }

    /// The whole line, newline included (what stream transports write).
    #[inline]
    pub fn line(&self) -> &[u8] {
        &self.bytes[usize::from(self.header_len)..]
    }

    /// The line as shared bytes, without copying it.
    #[inline]
    pub fn into_line(self) -> Bytes {
        let mut bytes = self.bytes;
        bytes.advance(usize::from(self.header_len));
        bytes
    }

    /// The JSON text without the trailing newline.
    #[inline]
    pub fn json(&self) -> &[u8] {
        let line = self.line();
        line.strip_suffix(b"\n").unwrap_or(line)
    }

    /// The WebSocket text frame that carries the JSON, if it was built with
    /// the payload (always, for [`Payload::encode`]).
    #[inline]
    pub fn websocket_frame(&self) -> Option<&[u8]> {
        if self.header_len == 0 {
            return None;
        }
        Some(self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes))
    }

    /// The WebSocket text frame as shared bytes: without copying when it
    /// was built with the payload, else built now (a line from elsewhere
    /// that is not UTF-8 is sent with its invalid bytes replaced).
    pub fn into_websocket_frame(self) -> Bytes {
        if self.header_len == 0 {
            return Bytes::from(build_websocket_frame(self.json()));
        }
        let mut bytes = self.bytes;
        bytes.truncate(bytes.len() - 1);
        bytes
    }

    /// Appends the WebSocket text frame to `out` (see
    /// [`Payload::into_websocket_frame`]).
    pub fn extend_websocket_frame(&self, out: &mut BytesMut) {
        match self.websocket_frame() {
            Some(frame) => out.extend_from_slice(frame),
            None => out.extend_from_slice(&build_websocket_frame(self.json())),
        }
    }

    /// Length of the line in bytes, newline included.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len() - usize::from(self.header_len)
    }

    /// Whether the payload is empty (never true for encoded frames).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A text frame for JSON that came without one.
fn build_websocket_frame(json: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(json);
    let mut frame = Vec::with_capacity(text.len() + MAX_WEBSOCKET_HEADER);
    text_frame_header()
        .format(text.len() as u64, &mut frame)
        .expect("writing to a Vec cannot fail");
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// The header of a final, unmasked text frame: what a server sends.
pub fn text_frame_header() -> FrameHeader {
    FrameHeader {
        is_final: true,
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.line() == other.line()
    }
}

impl Eq for Payload {}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Payload")
            .field(&String::from_utf8_lossy(self.line()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::coding::OpCode;

    fn parse(frame: &[u8]) -> (FrameHeader, usize, &[u8]) {
        let mut cursor = std::io::Cursor::new(frame);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        (header, len as usize, &frame[start..])
    }

    #[test]
    fn an_encoded_payload_carries_its_line_and_its_websocket_frame() {
        // Lengths on both sides of the 2-, 4- and 10-byte header boundaries.
        for text_len in [0, 100, 125, 126, 200, 65_535, 65_536, 70_000] {
            let text = "x".repeat(text_len);
            let payload = Payload::encode(&serde_json::json!({ "text": text }));
            let json = format!("{{\"text\":\"{text}\"}}");
            assert_eq!(payload.line(), format!("{json}\n").as_bytes());
            assert_eq!(payload.json(), json.as_bytes());
            assert_eq!(payload.len(), json.len() + 1);
            let (header, len, body) = parse(payload.websocket_frame().unwrap());
            assert!(header.is_final);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            assert!(header.mask.is_none());
            assert_eq!(len, json.len());
            assert_eq!(body, json.as_bytes());
            assert_eq!(&payload.clone().into_line()[..], payload.line());
            let mut extended = BytesMut::new();
            payload.extend_websocket_frame(&mut extended);
            assert_eq!(extended, payload.websocket_frame().unwrap());
            assert_eq!(payload.into_websocket_frame(), extended);
        }
    }

    #[test]
    fn a_line_made_elsewhere_has_no_websocket_frame() {
        let payload = Payload::from_line(Bytes::from_static(b"{\"type\":\"ok\"}\n"));
        assert_eq!(payload.websocket_frame(), None);
        assert_eq!(payload.json(), b"{\"type\":\"ok\"}");
        let encoded = Payload::encode(&serde_json::json!({"type": "ok"}));
        assert_eq!(payload, encoded);
        // Built on demand, the same frame.
        assert_eq!(
            payload.into_websocket_frame(),
            encoded.websocket_frame().unwrap()
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_goes_out_as_valid_text() {
        let payload = Payload::from_line(Bytes::from_static(b"{\"text\":\"\xff\"}\n"));
        let frame = payload.into_websocket_frame();
        let (_, len, body) = parse(&frame);
        assert_eq!(len, body.len());
        assert_eq!(
            std::str::from_utf8(body).unwrap(),
            "{\"text\":\"\u{fffd}\"}"
        );
    }
}
