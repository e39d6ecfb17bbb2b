//! Property tests of the server's input edges: whatever bytes arrive, in
//! whatever pieces, the frame reader never panics, hands out exactly the
//! lines that were sent and enforces its size limit to the byte; and no
//! configuration text makes the parser panic.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use chatd::session::ReadEvent;
use chatd::transport::framing::{FrameReader, ReadReady};
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

/// A stream that returns the given pieces, one per read.
struct Pieces(VecDeque<Vec<u8>>);

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(front) = self.0.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.drain(..n);
            if front.is_empty() {
                self.0.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

// Cannot tell readiness: the reader reads one byte first, as on TLS.
impl ReadReady for Pieces {}

/// Cuts `bytes` at the given points (taken modulo its length).
fn cut(bytes: &[u8], points: &[usize]) -> VecDeque<Vec<u8>> {
    let mut at: Vec<usize> = points
        .iter()
        .map(|p| if bytes.is_empty() { 0 } else { p % bytes.len() })
        .collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Every event until the end of the stream.
fn read_all(pieces: VecDeque<Vec<u8>>, max: usize) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut io = Pieces(pieces);
        let mut reader = FrameReader::new(max, false);
        let mut events = Vec::new();
        loop {
            match reader.next(&mut io).await {
                ReadEvent::Frame(line) => events.push(format!("frame {:?}", line.to_vec())),
                ReadEvent::TooLarge => events.push("too large".to_string()),
                ReadEvent::Eof => return events,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

/// What the reader must produce for these lines (each sent with `\n`).
fn expected(lines: &[Vec<u8>], max: usize) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            if line.len() + 1 > max {
                "too large".to_string()
            } else {
                let mut frame = line.clone();
                if frame.last() == Some(&b'\r') {
                    frame.pop();
                }
                format!("frame {frame:?}")
            }
        })
        .collect()
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but the line end; long enough to cross the limit.
    proptest::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        0..96,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn frames_out_equal_frames_in_whatever_the_pieces(
        lines in proptest::collection::vec(line(), 0..12),
        points in proptest::collection::vec(any::<usize>(), 0..20),
        max in 2usize..64,
        tail in line(),
    ) {
        let mut bytes = Vec::new();
        for l in &lines {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
        }
        // An unterminated last line is dropped at the end of the stream.
        bytes.extend_from_slice(&tail);
        let mut want = expected(&lines, max);
        if tail.len() >= max {
            // A partial line that already exceeds the limit is reported as
            // soon as the limit is passed.
            want.push("too large".to_string());
        }
        prop_assert_eq!(read_all(cut(&bytes, &points), max), want);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        points in proptest::collection::vec(any::<usize>(), 0..30),
        max in 1usize..300,
    ) {
        read_all(cut(&bytes, &points), max);
    }

    #[test]
    fn configuration_text_never_panics(text in "\\PC{0,200}") {
        let _ = chatd::Config::parse(&text, "fuzz.toml", None);
    }

    #[test]
    fn configuration_values_of_the_wrong_kind_are_named(
        table in proptest::sample::select(vec!["server", "limits", "history", "web", "database"]),
        key in proptest::sample::select(vec!["listen", "max_connections", "max_page", "enabled", "path", "queue", "server_names"]),
        value in proptest::sample::select(vec!["-1", "\"x\"", "[1, 2]", "{a = 1}", "1e400", "99999999999999999999", "true", "0"]),
    ) {
        let text = format!("[{table}]\n{key} = {value}\n");
        if let Err(e) = chatd::Config::parse(&text, "fuzz.toml", None) {
            let message = e.to_string();
            prop_assert!(message.starts_with("fuzz.toml: "), "{}", message);
        }
    }
}
