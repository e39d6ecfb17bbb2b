//! A TCP relay to cut connections in the middle of a test.

use std::net::SocketAddr;

/// A TCP relay between clients and a server on 127.0.0.1, to drop the
/// clients' connections without the clients or the server knowing why:
/// [`cut`](Self::cut) closes every relayed connection and holds new ones
/// (accepted, not yet relayed) until [`open`](Self::open).
pub struct Proxy {
    pub addr: SocketAddr,
    /// Whether new connections are relayed; bumping `generation` ends the
    /// open ones.
    gate: tokio::sync::watch::Sender<(bool, u64)>,
    /// Where connections are relayed to (a restarted server's new port).
    upstream: std::sync::Arc<std::sync::Mutex<SocketAddr>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts relaying from a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gate, _) = tokio::sync::watch::channel((true, 0u64));
        let gate_for_task = gate.clone();
        let upstream = std::sync::Arc::new(std::sync::Mutex::new(upstream));
        let upstream_for_task = upstream.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut gate = gate_for_task.subscribe();
                let upstream = upstream_for_task.clone();
                tokio::spawn(async move {
                    // Held while cut.
                    let generation = match gate.wait_for(|(open, _)| *open).await {
                        Ok(state) => state.1,
                        Err(_) => return,
                    };
                    let target = *upstream.lock().unwrap();
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let cut = async move {
                        let _ = gate.wait_for(|(_, g)| *g != generation).await.map(|_| ());
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            gate,
            upstream,
            task,
        }
    }

    /// Relays new connections to `upstream` from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Drops every relayed connection; new ones wait for [`open`](Self::open).
    pub fn cut(&self) {
        self.gate.send_modify(|(open, generation)| {
            *open = false;
            *generation += 1;
        });
    }

    /// A function that cuts (as [`cut`](Self::cut)), to call from
    /// synchronous code such as a progress callback.
    pub fn cutter(&self) -> impl Fn() + Send + Sync + 'static {
        let gate = self.gate.clone();
        move || {
            gate.send_modify(|(open, generation)| {
                *open = false;
                *generation += 1;
            })
        }
    }

    /// Relays connections again (those waiting first).
    pub fn open(&self) {
        self.gate.send_modify(|(open, _)| *open = true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
