//! Command-line options and the optional config file
//! (`$XDG_CONFIG_HOME/chatd/client-tui.toml`, else
//! `~/.config/chatd/client-tui.toml`). Options on the command line win over
//! the file; the file wins over the defaults.

use std::path::{Path, PathBuf};

use chat_protocol::names::{validate_nick, validate_room};
use clap::Parser;
use serde::Deserialize;

/// Where the server is when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7878";

/// Terminal client for chatd.
#[derive(Debug, Parser)]
#[command(name = "client-tui", version, about)]
pub struct Args {
    /// Server address, HOST:PORT [default: 127.0.0.1:7878]
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// Nickname (guest mode) [default: $USER, else "guest"]
    #[arg(long, value_name = "NAME")]
    pub nick: Option<String>,
    /// Account to log in as; the password is asked for (or read from
    /// CHATD_PASSWORD in line mode)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Connect with TLS
    #[arg(long)]
    pub tls: bool,
    /// PEM file with the certificate (or CA) to trust, for self-signed servers; implies --tls
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Rooms to join at start (repeatable); added to the config file's `rooms`
    #[arg(long = "join", value_name = "#ROOM")]
    pub rooms: Vec<String>,
    /// Line mode: read commands and text from stdin, print one event per line
    #[arg(long)]
    pub line: bool,
    /// Directory where /download saves files when none is given [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,
    /// Log every conversation to DIR/SERVER/CONVERSATION.log (off by default)
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Config file to read instead of the default one
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The config file's keys; all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub server: Option<String>,
    pub nick: Option<String>,
    pub user: Option<String>,
    pub tls: Option<bool>,
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Where `/download` saves files when no directory is given.
    pub download_dir: Option<PathBuf>,
    /// Where conversations are logged (none: not logged).
    pub log_dir: Option<PathBuf>,
}

/// What the client runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub server: String,
    pub nick: String,
    pub user: Option<String>,
    pub tls: bool,
    pub ca: Option<PathBuf>,
    pub rooms: Vec<String>,
    pub line: bool,
    /// Where `/download` saves files by default (`None`: the current directory).
    pub download_dir: Option<PathBuf>,
    /// Where conversations are logged (`None`: not logged).
    pub log_dir: Option<PathBuf>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("bad nickname {nick:?}: {reason}")]
    Nick {
        nick: String,
        reason: chat_protocol::names::NameError,
    },
    #[error("bad room {room:?} in the rooms to join: {reason}")]
    Room {
        room: String,
        reason: chat_protocol::names::NameError,
    },
    #[error("bad server address {0:?}: expected HOST:PORT, e.g. 127.0.0.1:7878")]
    Server(String),
}

/// The default config file's path, if a home or config directory is known.
pub fn default_config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("chatd").join("client-tui.toml"))
}

/// Reads a config file; a missing default file is no error.
pub fn read_file(path: &Path, required: bool) -> Result<FileSettings, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileSettings::default())
        }
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                error: source,
            })
        }
    };
    toml::from_str(&text).map_err(|e| SettingsError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

impl Settings {
    /// Merges the command line over the file over the defaults.
    pub fn resolve(
        args: Args,
        file: FileSettings,
        login_name: Option<String>,
    ) -> Result<Settings, SettingsError> {
        let server = args
            .server
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        if !server.contains(':') || server.ends_with(':') {
            return Err(SettingsError::Server(server));
        }
        let nick = match args.nick.or(file.nick) {
            Some(nick) => nick,
            None => login_name
                .filter(|n| validate_nick(n).is_ok())
                .unwrap_or_else(|| "guest".to_string()),
        };
        validate_nick(&nick).map_err(|reason| SettingsError::Nick {
            nick: nick.clone(),
            reason,
        })?;
        let user = args.user.or(file.user);
        if let Some(user) = &user {
            validate_nick(user).map_err(|reason| SettingsError::Nick {
                nick: user.clone(),
                reason,
            })?;
        }
        let ca = args.ca.or(file.ca);
        let tls = args.tls || file.tls.unwrap_or(false) || ca.is_some();
        let mut rooms = file.rooms;
        rooms.extend(args.rooms);
        let rooms = rooms
            .into_iter()
            .map(|r| {
                if r.starts_with('#') {
                    r
                } else {
                    format!("#{r}")
                }
            })
            .map(|room| match validate_room(&room) {
                Ok(()) => Ok(room),
                Err(reason) => Err(SettingsError::Room { room, reason }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Settings {
            server,
            nick,
            user,
            tls,
            ca,
            rooms,
            line: args.line,
            download_dir: args.download_dir.or(file.download_dir),
            log_dir: args.log_dir.or(file.log_dir),
        })
    }

    /// Reads the config file named by `--config`, or the default one.
    pub fn load(args: Args) -> Result<Settings, SettingsError> {
        let file = match &args.config {
            Some(path) => read_file(path, true)?,
            None => match default_config_path() {
                Some(path) => read_file(&path, false)?,
                None => FileSettings::default(),
            },
        };
        let login = std::env::var("USER").ok();
        Settings::resolve(args, file, login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("client-tui").chain(list.iter().copied()))
    }

    #[test]
    fn command_line_wins_over_file() {
        let file: FileSettings = toml::from_str(
            "server = \"example.org:7879\"\nnick = \"filenick\"\ntls = true\nrooms = [\"#a\", \"b\"]\n",
        )
        .unwrap();
        let s = Settings::resolve(args(&["--nick", "cli", "--join", "#c"]), file, None).unwrap();
        assert_eq!(s.server, "example.org:7879");
        assert_eq!(s.nick, "cli");
        assert!(s.tls);
        assert_eq!(s.rooms, ["#a", "#b", "#c"]);
    }

    #[test]
    fn download_dir_from_the_file_or_the_command_line() {
        let file = || -> FileSettings { toml::from_str("download_dir = \"/srv/in\"\n").unwrap() };
        let s = Settings::resolve(args(&[]), file(), None).unwrap();
        assert_eq!(s.download_dir, Some(PathBuf::from("/srv/in")));
        let s = Settings::resolve(args(&["--download-dir", "/tmp/x"]), file(), None).unwrap();
        assert_eq!(s.download_dir, Some(PathBuf::from("/tmp/x")));
        let s = Settings::resolve(args(&[]), FileSettings::default(), None).unwrap();
        assert_eq!(s.download_dir, None);
    }

    #[test]
    fn defaults_and_validation() {
        let s = Settings::resolve(args(&[]), FileSettings::default(), Some("root".into())).unwrap();
        assert_eq!(
            (s.server.as_str(), s.nick.as_str(), s.tls),
            (DEFAULT_SERVER, "root", false)
        );
        let s = Settings::resolve(args(&[]), FileSettings::default(), Some("9bad".into())).unwrap();
        assert_eq!(s.nick, "guest");
        let s = Settings::resolve(args(&["--ca", "x.pem"]), FileSettings::default(), None).unwrap();
        assert!(s.tls, "--ca implies --tls");
        let err = Settings::resolve(args(&["--nick", "bad nick"]), FileSettings::default(), None)
            .unwrap_err();
        assert!(err.to_string().contains("bad nickname"), "{err}");
        assert!(
            Settings::resolve(args(&["--server", "nohost"]), FileSettings::default(), None)
                .is_err()
        );
        assert!(
            toml::from_str::<FileSettings>("nik = \"typo\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn missing_default_file_is_fine_but_named_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.toml");
        assert!(read_file(&path, false).is_ok());
        let err = read_file(&path, true).unwrap_err();
        assert!(err.to_string().contains("none.toml"), "{err}");
    }
}
