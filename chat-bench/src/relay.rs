//! `relay-floor` (started by `pingpong --floor`): the least a server must do
//! for a direct message, as a like-for-like floor for chatd's round trip.
//!
//! Same transport (plaintext TCP, TCP_NODELAY), same runtime setup (the
//! Tokio flavor and worker count chatd was given, on the CPUs chatd was
//! pinned to), same frames: it answers `hello` with a `welcome` and `nick`
//! with `ok`, and for each `msg` it parses the frame, encodes the `message`
//! once, writes it to the recipient's socket and writes the `sent` ack to
//! the sender. What it leaves out is everything else chatd does: no queue
//! per connection and no second task (the sender's task writes to the
//! recipient's socket itself), no plugins, no flood control, no message
//! log, no metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_protocol::{ClientFrame, Inbound, Message, MessageKind, Payload, Request, ServerFrame};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// "multi_thread" or "current_thread", as chatd's `[runtime] flavor`.
    #[arg(long, default_value = "multi_thread")]
    pub flavor: String,
    /// Worker threads (0 = one per CPU this process may use).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Each connection's write half, by nickname.
type Writers = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<OwnedWriteHalf>>>>>;

/// Runs the relay on its own runtime; prints "relay listening on ADDR".
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut builder = if args.flavor == "current_thread" {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if args.threads > 0 {
            b.worker_threads(args.threads);
        }
        b
    };
    builder.enable_all().build()?.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("relay listening on {}", listener.local_addr()?);
        let writers = Writers::default();
        let mut next_id = 1u64;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(serve(stream, writers.clone(), next_id << 32));
            next_id += 1;
        }
    })
}

async fn serve(stream: TcpStream, writers: Writers, mut msg_id: u64) -> anyhow::Result<()> {
    let (read, write) = stream.into_split();
    let me = Arc::new(tokio::sync::Mutex::new(write));
    let mut lines = BufReader::new(read);
    let mut line = Vec::new();
    let mut nick = String::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let Ok(frame) = Inbound::parse(&line) else {
            continue;
        };
        let Request::Core(request) = frame.request else {
            continue;
        };
        let reply = match request {
            ClientFrame::Hello { .. } => ServerFrame::Welcome {
                server: "relay-floor".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                protocol: chat_protocol::PROTOCOL_VERSION,
                plugins: Vec::new(),
                features: Vec::new(),
                max_frame_bytes: 65536,
                auth_required: false,
            },
            ClientFrame::Nick { nick: name } => {
                writers.lock().unwrap().insert(name.clone(), me.clone());
                nick = name.clone();
                ServerFrame::Ok {
                    id: frame.id,
                    nick: Some(name),
                }
            }
            ClientFrame::Msg { to, text } => {
                msg_id += 1;
                let ts = chat_protocol::now_ms();
                let mut message = Message::new(msg_id, ts, MessageKind::Direct, nick.clone(), text);
                message.to = Some(to.clone());
                let message = Payload::encode(&ServerFrame::Message(message));
                let peer = writers.lock().unwrap().get(&to).cloned();
                if let Some(peer) = peer {
                    peer.lock().await.write_all(message.line()).await?;
                }
                ServerFrame::Sent {
                    id: frame.id,
                    msg_id,
                    ts,
                    recipients: 1,
                    text: None,
                    stored: false,
                }
            }
            _ => continue,
        };
        me.lock()
            .await
            .write_all(Payload::encode(&reply).line())
            .await?;
    }
}
