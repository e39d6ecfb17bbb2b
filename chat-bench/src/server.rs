//! The server under test: an address given on the command line, or a chatd
//! process this tool starts (and stops) itself.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};
use chat_client::ConnectOptions;

/// Where the server is and how to start one.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// Address of a running server.
    #[arg(long, conflicts_with = "spawn")]
    pub server: Option<String>,
    /// Pid of that server, to read its memory and CPU time from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Start a chatd process for the run.
    #[arg(long)]
    pub spawn: bool,
    /// chatd binary for --spawn (default: next to chat-bench).
    #[arg(long)]
    pub chatd: Option<PathBuf>,
    /// Spawned server: "multi_thread" or "current_thread".
    #[arg(long, default_value = "multi_thread")]
    pub server_flavor: String,
    /// Spawned server: worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub server_threads: usize,
    /// Spawned server: outbound queue per connection.
    #[arg(long, default_value_t = 4096)]
    pub server_queue: usize,
    /// Spawned server: "on" stores every message (the default, as in
    /// chatd.toml), "off" runs without history.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub history: String,
    /// Spawned server: "on" sets `[admin] listen` (metrics counted and
    /// served), "off" (the default) leaves it unset, so nothing is counted.
    #[arg(long, default_value = "off", value_parser = ["on", "off"])]
    pub metrics: String,
    /// Load generator's own runtime threads (0 = one per core, 1 = current thread).
    #[arg(long, default_value_t = 0)]
    pub client_threads: usize,
    /// Connect with TLS (a spawned server gets a self-signed certificate;
    /// with --server, give --ca).
    #[arg(long)]
    pub tls: bool,
    /// Spawned server: this many chatd nodes as one cluster, over a
    /// nats-server (with JetStream) this tool starts too; history off.
    /// Workloads spread their clients over the nodes (docs/scaling.md).
    #[arg(long, default_value_t = 1, requires = "spawn")]
    pub nodes: usize,
    /// PEM file of the CA (or self-signed certificate) to trust with --tls.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Speak the browser app's transport: WebSocket on the web listener's
    /// `/ws` (with --tls: wss). With --server, give the web listener's address.
    #[arg(long)]
    pub websocket: bool,
    /// Spawned server: a TOML file of `[[plugin]]` entries appended to its
    /// configuration (e.g. a shared-library plugin, to measure what the
    /// plugin ABI costs per frame; docs/plugins.md). Relative `path`s in it
    /// must be absolute: the configuration is written elsewhere.
    #[arg(long, value_name = "FILE")]
    pub plugins: Option<PathBuf>,
}

/// How every client of this run connects (transport, TLS trust), set once
/// at start by [`Server::start_with`].
static TRANSPORT: OnceLock<ConnectOptions> = OnceLock::new();

/// Connect options for this run's transport; workloads add their own
/// fields (`bind`, `timeout`, ...) with `..transport()`.
pub fn transport() -> ConnectOptions {
    TRANSPORT.get().cloned().unwrap_or_default()
}

/// The transport's name for reports: "tcp", "tls", "websocket" or "wss".
pub fn transport_name() -> &'static str {
    let t = transport();
    match (t.tls, t.websocket) {
        (false, false) => "tcp",
        (true, false) => "tls",
        (false, true) => "websocket",
        (true, true) => "wss",
    }
}

/// A server for the duration of a run.
pub struct Server {
    pub addr: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    /// With `--nodes`: the other nodes, and the NATS server under them
    /// (declared last: stopped after the nodes).
    others: Vec<Server>,
    nats: Option<crate::nats::Nats>,
}

impl Server {
    /// Uses the target's server, or starts one whose configuration ends with
    /// `extra_config` (plugin entries a workload needs).
    pub fn start(target: &Target) -> anyhow::Result<Server> {
        Server::start_with(target, "")
    }

    /// Starts the target's server(s): one chatd, or with `--nodes N` a
    /// nats-server and N chatd nodes clustered over it.
    pub fn start_with(target: &Target, extra_config: &str) -> anyhow::Result<Server> {
        if target.nodes <= 1 {
            return Server::start_one(target, extra_config);
        }
        anyhow::ensure!(
            !target.tls && !target.websocket,
            "--nodes runs plaintext TCP only"
        );
        let nats = crate::nats::Nats::start()?;
        let single = Target {
            nodes: 1,
            history: "off".into(),
            ..target.clone()
        };
        let mut nodes = Vec::new();
        for i in 0..target.nodes {
            let cluster = format!(
                "[cluster]\nnode = \"n{i}\"\nnats = [\"{}\"]\n{extra_config}",
                nats.url()
            );
            nodes.push(Server::start_one(&single, &cluster)?);
        }
        let mut first = nodes.remove(0);
        first.others = nodes;
        first.nats = Some(nats);
        Ok(first)
    }

    /// The address of node `i` (round robin over the nodes).
    pub fn addr_of(&self, i: usize) -> &str {
        match i % (1 + self.others.len()) {
            0 => &self.addr,
            n => &self.others[n - 1].addr,
        }
    }

    /// How many nodes serve (1 without `--nodes`).
    pub fn node_count(&self) -> usize {
        1 + self.others.len()
    }

    /// Every server process this run measures: the nodes and NATS.
    pub fn pids(&self) -> Vec<u32> {
        self.pid
            .into_iter()
            .chain(self.others.iter().filter_map(|o| o.pid))
            .chain(self.nats.as_ref().map(|n| n.pid()))
            .collect()
    }

    fn start_one(target: &Target, extra_config: &str) -> anyhow::Result<Server> {
        let mut transport = ConnectOptions {
            tls: target.tls,
            ca: target.ca.clone(),
            websocket: target.websocket,
            ..ConnectOptions::default()
        };
        if let Some(addr) = &target.server {
            let _ = TRANSPORT.set(transport);
            return Ok(Server {
                addr: addr.clone(),
                pid: target.server_pid,
                child: None,
                _dir: None,
                others: Vec::new(),
                nats: None,
            });
        }
        if !target.spawn {
            bail!("give --server ADDR (of a running chatd) or --spawn");
        }
        let chatd = match &target.chatd {
            Some(p) => p.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("no directory for chat-bench")?
                .join("chatd"),
        };
        let dir = tempfile::tempdir()?;
        let mut listeners = String::new();
        if target.tls {
            let certs = dir.path().join("certs");
            let made = Command::new(&chatd)
                .args(["gen-cert", "--out"])
                .arg(&certs)
                .stdout(Stdio::null())
                .status()
                .with_context(|| format!("cannot run {} gen-cert", chatd.display()))?;
            anyhow::ensure!(made.success(), "chatd gen-cert failed");
            let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
            listeners.push_str(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
            if !target.websocket {
                listeners.push_str("listen = \"127.0.0.1:0\"\n");
            }
            transport.ca = Some(cert);
            transport.server_name = Some("localhost".into());
        }
        if target.websocket {
            listeners.push_str(&format!(
                "[web]\nlisten = \"127.0.0.1:0\"\ntls = {}\n",
                target.tls
            ));
        }
        // The line that names the address the clients use.
        let announced = match (target.tls, target.websocket) {
            (_, true) => Announced::Web,
            (true, false) => Announced::Listener("(TLS)"),
            (false, false) => Announced::Listener("(plaintext)"),
        };
        let _ = TRANSPORT.set(transport);
        let mut extra_config = extra_config.to_string();
        if let Some(plugins) = &target.plugins {
            let text = std::fs::read_to_string(plugins)
                .with_context(|| format!("cannot read --plugins {}", plugins.display()))?;
            extra_config.push('\n');
            extra_config.push_str(&text);
        }
        let config = dir.path().join("bench.toml");
        std::fs::write(
            &config,
            format!(
                "{listeners}[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
                 [limits]\nframes_per_second = 0\noutbound_queue = {}\nmax_frame_bytes = 65536\n\
                 [runtime]\nflavor = \"{}\"\nworker_threads = {}\n\
                 [history]\nenabled = {}\n{}{extra_config}",
                target.server_queue,
                target.server_flavor,
                target.server_threads,
                target.history == "on",
                if target.metrics == "on" {
                    "[admin]\nlisten = \"127.0.0.1:0\"\n"
                } else {
                    ""
                },
            ),
        )?;
        let mut child = Command::new(&chatd)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {}; build it with `cargo build --release -p chatd`",
                    chatd.display()
                )
            })?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match announced.addr_in(&line) {
                    Some(addr) => {
                        let _ = tx.send(addr);
                    }
                    None if line.starts_with("chatd ") => {}
                    None => eprintln!("chatd: {line}"),
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .context("the spawned chatd did not report its address")?;
        Ok(Server {
            addr,
            pid: Some(child.id()),
            child: Some(child),
            _dir: Some(dir),
            others: Vec::new(),
            nats: None,
        })
    }
}

/// Which of chatd's start-up lines names the address clients use.
#[derive(Clone, Copy)]
enum Announced {
    /// "chatd listening on ADDR (plaintext|TLS); ..."
    Listener(&'static str),
    /// "chatd web app: open http(s)://ADDR/ in a browser"
    Web,
}

impl Announced {
    fn addr_in(self, line: &str) -> Option<String> {
        match self {
            Announced::Listener(kind) => {
                let (addr, tail) = line.strip_prefix("chatd listening on ")?.split_once(' ')?;
                tail.starts_with(kind).then(|| addr.to_string())
            }
            Announced::Web => {
                let url = line.strip_prefix("chatd web app: open ")?;
                let host = url.split_whitespace().next()?.split_once("://")?.1;
                Some(host.trim_end_matches('/').to_string())
            }
        }
    }
}

impl Server {
    /// The spawned server's data directory.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("data"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Resident memory and CPU time of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces).
    let after = stat.rsplit_once(')').context("bad stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ProcStats {
        rss_bytes: rss_kb * 1024,
        cpu_seconds: ticks / 100.0,
    })
}
