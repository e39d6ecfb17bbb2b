//! The `chatd` command: runs the server, checks a configuration, reloads
//! or backs up a running server, generates a development certificate, or
//! manages accounts.

mod backup_cli;
mod history_cli;
mod user_cli;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use chatd::config::{Config, RuntimeFlavor};
use clap::{Parser, Subcommand};

/// `chatd --version`: the release and the source revision it was built from
/// (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CHATD_GIT_REVISION"),
    ")"
);

#[derive(Parser)]
#[command(name = "chatd", version = VERSION, about = "A modular chat daemon")]
struct Cli {
    /// Configuration file; without it the embedded defaults are used
    /// (plaintext on 127.0.0.1:7878, data in ./data).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Override the plaintext listen address (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Override the web app's listen address (port 0 picks a free port).
    #[arg(long)]
    web_listen: Option<SocketAddr>,
    /// Log lines as text (coloured only on a terminal) or as JSON objects,
    /// one per line, for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Check a configuration file and exit.
    CheckConfig,
    /// Tell the server running on this configuration's data directory to
    /// reload chatd.toml (sends it SIGHUP); its log says what changed.
    Reload,
    /// Copy the database to FILE while the server runs (a consistent
    /// snapshot); see docs/operations.md for the file spool.
    Backup {
        /// The file to write; an existing file is kept unless --force.
        #[arg(long)]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the database with a backup; the server must be stopped. The
    /// old database is kept as chatd.db.before-restore.
    Restore {
        /// A file written by `chatd backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// Print this chatd's version, the plugin ABI it speaks and loads, and
    /// what a shared-library plugin is built against; see docs/plugins.md.
    PluginAbi,
    /// Write a self-signed certificate and key for development.
    GenCert {
        /// Directory to write cert.pem and key.pem into.
        #[arg(long)]
        out: PathBuf,
        /// Names the certificate is valid for.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1"])]
        names: Vec<String>,
    },
    /// Manage accounts (auth plugin) in the server's database; safe while
    /// the server runs.
    User {
        #[command(subcommand)]
        command: user_cli::UserCommand,
    },
    /// Manage the stored message history; safe while the server runs.
    History {
        #[command(subcommand)]
        command: history_cli::HistoryCommand,
    },
}

/// Logs to stderr: text, with colours only when stderr is a terminal
/// (journald and files get plain lines), or JSON.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded(),
    };
    if let Some(listen) = cli.listen {
        config.server.listen = Some(listen);
    }
    if let Some(web_listen) = cli.web_listen {
        config.web.listen = Some(web_listen);
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);

    match cli.command {
        Some(Command::User { ref command }) => {
            let config = load_config(&cli)?;
            user_cli::run(&config, command.clone())
        }
        Some(Command::History { ref command }) => {
            let config = load_config(&cli)?;
            history_cli::run(&config, command.clone())
        }
        Some(Command::GenCert { ref out, ref names }) => {
            let (cert, key) = chatd::tls::generate_self_signed(out, names)?;
            println!("wrote {} and {}", cert.display(), key.display());
            println!("enable TLS in chatd.toml:\n[tls]\nlisten = \"127.0.0.1:7879\"\ncert = \"{}\"\nkey = \"{}\"", cert.display(), key.display());
            Ok(())
        }
        Some(Command::PluginAbi) => {
            print!("{}", plugin_abi_text());
            Ok(())
        }
        Some(Command::CheckConfig) => {
            let config = load_config(&cli)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let problems = runtime.block_on(chatd::check::check(
                &config,
                &chatd::PluginRegistry::builtin(),
            ));
            if problems.is_empty() {
                println!("{}: configuration is valid", config.source_name);
                return Ok(());
            }
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            anyhow::bail!(
                "{}: {} problem{} found; the server would not start",
                config.source_name,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
        Some(Command::Reload) => {
            // A file that does not even parse is reported here, at once.
            let config = load_config(&cli).context(
                "not asking the server to reload: the configuration is invalid (the server keeps running on its current one)",
            )?;
            signal_reload(&config.server.data_dir)
        }
        Some(Command::Backup { ref out, force }) => {
            let config = load_config(&cli)?;
            backup_cli::backup(&config, out, force)
        }
        Some(Command::Restore { ref from }) => {
            let config = load_config(&cli)?;
            backup_cli::restore(&config, from)
        }
        Some(Command::Run) | None => {
            let config = load_config(&cli)?;
            let runtime = build_runtime(&config)?;
            runtime.block_on(run(&cli, config))
        }
    }
}

fn build_runtime(config: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match config.runtime.flavor {
        RuntimeFlavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        RuntimeFlavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if config.runtime.worker_threads > 0 {
                b.worker_threads(config.runtime.worker_threads);
            }
            b
        }
    };
    builder
        .enable_all()
        .thread_name("chatd-worker")
        .build()
        .context("cannot start the async runtime")
}

/// Sends SIGHUP to the server holding `data_dir`.
#[cfg(unix)]
fn signal_reload(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let holder = match chatd::data_dir::holder(data_dir) {
        Err(chatd::data_dir::DataDirError::InUse { .. }) => anyhow::bail!(
            "the chatd on {} is still starting (its pid is not in the lock file yet); try again in a moment",
            data_dir.display()
        ),
        other => other?,
    };
    let Some(pid) = holder else {
        anyhow::bail!(
            "no chatd is running on the data directory {}; nothing to reload (start it, or check server.data_dir)",
            data_dir.display()
        );
    };
    let pid_t = libc::pid_t::try_from(pid).context("the lock file holds an impossible pid")?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid_t, libc::SIGHUP) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot signal chatd (pid {pid})"));
    }
    println!("asked chatd (pid {pid}) to reload; its log says what was applied");
    Ok(())
}

#[cfg(not(unix))]
fn signal_reload(_data_dir: &std::path::Path) -> anyhow::Result<()> {
    anyhow::bail!("chatd reload needs Unix signals")
}

/// Runs the server until SIGINT or SIGTERM, reloading chatd.toml on
/// SIGHUP. With text logs the addresses are also printed as plain lines
/// for people (JSON logs get no plain lines).
async fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    let banner = cli.log_format == LogFormat::Text;
    // Signal handlers first: a SIGTERM that arrives while starting up must
    // still mean a graceful stop, not the default instant death, and a
    // SIGHUP must not kill the process (its default action).
    let mut signals = std::pin::pin!(shutdown_signal()?);
    let mut hangups = hangup_signal()?;
    let server = chatd::start(config)
        .await
        .context("chatd could not start")?;
    tracing::info!(version = VERSION, "chatd running");
    if let Some(addr) = server.tcp_addr.filter(|_| banner) {
        eprintln!(
            "chatd listening on {addr} (plaintext); try: nc {} {}",
            addr.ip(),
            addr.port()
        );
    }
    if let Some(addr) = server.tls_addr.filter(|_| banner) {
        eprintln!("chatd listening on {addr} (TLS)");
    }
    if let Some(addr) = server.web_addr.filter(|_| banner) {
        let scheme = if server.web_tls { "https" } else { "http" };
        eprintln!("chatd web app: open {scheme}://{addr}/ in a browser");
    }
    if let Some(addr) = server.admin_addr.filter(|_| banner) {
        eprintln!("chatd admin: http://{addr}/metrics, /healthz, /readyz");
    }
    let status = listening_status(&server);
    chatd::service::ready(&status);
    let watchdog = tokio_util::sync::CancellationToken::new();
    chatd::service::spawn_watchdog(watchdog.clone());
    loop {
        tokio::select! {
            _ = &mut signals => break,
            _ = hangups.recv() => {
                tracing::info!("SIGHUP received: reloading the configuration");
                chatd::service::reloading();
                match load_config(cli) {
                    Ok(config) => {
                        if let Err(e) = server.reload(config).await {
                            tracing::error!("reload refused, still running on the previous configuration: {e}");
                        }
                    }
                    Err(e) => tracing::error!("reload refused, still running on the previous configuration: {e}"),
                }
                chatd::service::reloaded(&status);
            }
        }
    }
    chatd::service::stopping();
    server.stop().await;
    watchdog.cancel();
    Ok(())
}

/// The status line systemd shows: where the server listens.
fn listening_status(server: &chatd::RunningServer) -> String {
    let mut parts = Vec::new();
    if let Some(addr) = server.tcp_addr {
        parts.push(format!("{addr} (plaintext)"));
    }
    if let Some(addr) = server.tls_addr {
        parts.push(format!("{addr} (TLS)"));
    }
    if let Some(addr) = server.web_addr {
        let scheme = if server.web_tls { "https" } else { "http" };
        parts.push(format!("{scheme}://{addr}/ (web)"));
    }
    format!("listening on {}", parts.join(", "))
}

/// A stream of SIGHUPs (installed now).
#[cfg(unix)]
fn hangup_signal() -> anyhow::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")
}

/// No SIGHUP off Unix: a stream that never yields.
#[cfg(not(unix))]
fn hangup_signal() -> anyhow::Result<NoHangups> {
    Ok(NoHangups)
}

#[cfg(not(unix))]
struct NoHangups;

#[cfg(not(unix))]
impl NoHangups {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed now, not at
/// the first poll.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// What `chatd plugin-abi` prints: everything a plugin author needs to build
/// a library this chatd loads (docs/plugins.md quotes it).
fn plugin_abi_text() -> String {
    use chat_api::plugin_abi::{ABI_VERSION, CHAT_API_VERSION};
    use chatd::dynamic::OLDEST_LOADED;
    let chatd = env!("CARGO_PKG_VERSION");
    format!(
        "chatd {chatd} speaks plugin ABI {ABI_VERSION}
it loads plugins declaring ABI {OLDEST_LOADED} to {ABI_VERSION}, built by any Rust compiler (1.85 or newer)
to build one:
  depend on chat-api {CHAT_API_VERSION} (ABI {ABI_VERSION}) or an older {major}.x: the chat-api/ directory of chatd's source
  crate-type = [\"cdylib\"], and chat_api::export_plugin!(\"NAME\", constructor) once
a plugin built against a newer chat-api declares a newer ABI and needs a newer chatd
guide: docs/plugins.md, \"A plugin from `cargo new` to enabled\"
",
        major = ABI_VERSION.major,
    )
}
