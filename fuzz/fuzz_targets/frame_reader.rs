//! The stream frame reader: the first byte picks the size limit, the rest
//! is the stream, read in pieces of up to 7 bytes; never a panic, and no
//! frame longer than the limit.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use chatd::session::ReadEvent;
use chatd::transport::framing::{FrameReader, ReadReady};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

struct Trickle(Vec<u8>);

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.0.len().min(7).min(buf.remaining());
        let piece: Vec<u8> = self.0.drain(..n).collect();
        buf.put_slice(&piece);
        Poll::Ready(Ok(()))
    }
}

// Cannot tell readiness: the reader reads one byte first, as on TLS.
impl ReadReady for Trickle {}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(limit).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut input = Trickle(stream.to_vec());
        let mut reader = FrameReader::new(max, true);
        loop {
            match reader.next(&mut input).await {
                ReadEvent::Frame(line) => assert!(line.len() < max),
                ReadEvent::TooLarge => {}
                _ => return,
            }
        }
    });
});
