//! Slash commands: one table ([`COMMANDS`]) that drives parsing, `/help` and
//! tab completion, and the parsed form ([`Command`]) that `update` acts on.
//!
//! To add a command (private rooms, file transfer, ...): add a [`Command`]
//! variant, a row in [`COMMANDS`], and an arm in [`parse_command`]; `/help`
//! and completion pick it up from the table.

use chat_api::names::{validate_nick, validate_room};

/// What one line of input means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Plain text for the current conversation.
    Text(String),
    /// A slash command.
    Command(Command),
    /// An empty line: nothing to do.
    Nothing,
}

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/help [COMMAND]`
    Help(Option<String>),
    /// `/join #ROOM`
    Join(String),
    /// `/part [#ROOM]`: the current room when omitted.
    Part(Option<String>),
    /// `/msg NICK TEXT`
    Msg { to: String, text: String },
    /// `/query NICK [TEXT]`: open (and switch to) a direct conversation.
    Query { nick: String, text: Option<String> },
    /// `/broadcast TEXT`
    Broadcast(String),
    /// `/nick NAME`
    Nick(String),
    /// `/who [#ROOM]`: a room's members, the current room by default.
    Who(Option<String>),
    /// `/users [#ROOM]`: everyone connected, or a room's members.
    Users(Option<String>),
    /// `/rooms`
    Rooms,
    /// `/close`: hide the current conversation (parts a room).
    Close,
    /// `/quit [REASON]`
    Quit(Option<String>),
    /// `/register [USER]`: the password is asked for (or read from
    /// `CHATD_PASSWORD` in line mode).
    Register(Option<String>),
    /// `/login [USER]`: as `/register`.
    Login(Option<String>),
    /// `/passwd`: the old and new passwords are asked for.
    Passwd,
    /// `/logout`
    Logout,
    /// `/say TEXT`: send text that starts with a slash.
    Say(String),
    /// `/send TARGET PATH`: offer and upload a file to a nick or a #room.
    Send { to: FileTo, path: String },
    /// `/accept [ID] [DIR]`: download an offered file (the latest when no
    /// id) into DIR (the download directory when none).
    Accept {
        id: Option<String>,
        dir: Option<String>,
    },
    /// `/decline [ID]`: refuse an offered file (the latest when no id).
    Decline(Option<String>),
    /// `/cancel ID`: stop a transfer; withdraws our own upload.
    Cancel(String),
    /// `/files`: list the files waiting for us and our uploads.
    Files,
    /// `/transfers`: show or hide the transfers view (also F2).
    Transfers,
}

/// Who `/send` sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTo {
    User(String),
    Room(String),
}

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Name without the slash.
    pub name: &'static str,
    /// Arguments, for help and usage errors.
    pub usage: &'static str,
    /// One-line description.
    pub summary: &'static str,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        usage: "[COMMAND]",
        summary: "list commands, or explain one",
    },
    CommandSpec {
        name: "join",
        usage: "#ROOM",
        summary: "join a room (created if new) and switch to it",
    },
    CommandSpec {
        name: "part",
        usage: "[#ROOM]",
        summary: "leave a room (the current one by default)",
    },
    CommandSpec {
        name: "msg",
        usage: "NICK TEXT",
        summary: "send a direct message",
    },
    CommandSpec {
        name: "query",
        usage: "NICK [TEXT]",
        summary: "open a direct conversation with NICK",
    },
    CommandSpec {
        name: "broadcast",
        usage: "TEXT",
        summary: "send a message to everyone connected",
    },
    CommandSpec {
        name: "nick",
        usage: "NAME",
        summary: "change your nickname",
    },
    CommandSpec {
        name: "who",
        usage: "[#ROOM]",
        summary: "list the members of a room (the current one by default)",
    },
    CommandSpec {
        name: "users",
        usage: "[#ROOM]",
        summary: "list everyone connected, or a room's members",
    },
    CommandSpec {
        name: "rooms",
        usage: "",
        summary: "list the rooms on the server",
    },
    CommandSpec {
        name: "close",
        usage: "",
        summary: "close the current conversation (leaves a room)",
    },
    CommandSpec {
        name: "say",
        usage: "TEXT",
        summary: "send TEXT as it is (for text starting with '/')",
    },
    CommandSpec {
        name: "register",
        usage: "[USER]",
        summary: "create an account and log in (asks for a password)",
    },
    CommandSpec {
        name: "login",
        usage: "[USER]",
        summary: "log in to an account (asks for the password)",
    },
    CommandSpec {
        name: "passwd",
        usage: "",
        summary: "change your password (asks for the old and new one)",
    },
    CommandSpec {
        name: "logout",
        usage: "",
        summary: "log out, staying connected",
    },
    CommandSpec {
        name: "send",
        usage: "NICK|#ROOM PATH",
        summary: "send a file to someone or to a room's members",
    },
    CommandSpec {
        name: "accept",
        usage: "[ID] [DIR]",
        summary: "download an offered file (the latest by default)",
    },
    CommandSpec {
        name: "decline",
        usage: "[ID]",
        summary: "refuse an offered file (the latest by default)",
    },
    CommandSpec {
        name: "cancel",
        usage: "ID",
        summary: "stop a transfer (withdraws your own upload)",
    },
    CommandSpec {
        name: "files",
        usage: "",
        summary: "list files waiting for you and your uploads",
    },
    CommandSpec {
        name: "transfers",
        usage: "",
        summary: "show or hide the transfers view (also F2)",
    },
    CommandSpec {
        name: "quit",
        usage: "[REASON]",
        summary: "leave the server and exit",
    },
];

/// Why a line could not be understood; shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command /{name}; type /help for the list")]
    Unknown { name: String },
    #[error("/{name} is ambiguous: {}", candidates.join(", "))]
    Ambiguous {
        name: String,
        candidates: Vec<&'static str>,
    },
    #[error("usage: /{} {}", spec.name, spec.usage)]
    Usage { spec: CommandSpec },
    #[error("{0}")]
    BadName(#[from] chat_api::names::NameError),
}

impl PartialEq for CommandSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for CommandSpec {}

/// The table row for a command name.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Command names that start with `prefix` (for completion and abbreviations).
pub fn names_starting_with(prefix: &str) -> Vec<&'static str> {
    COMMANDS
        .iter()
        .map(|c| c.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Parses one line of input. `//text` sends `/text` as plain text.
pub fn parse(line: &str) -> Result<Input, CommandError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Input::Nothing);
    }
    match line.strip_prefix('/') {
        None => Ok(Input::Text(line.to_string())),
        Some(rest) if rest.starts_with('/') => Ok(Input::Text(rest.to_string())),
        Some(rest) => parse_command(rest).map(Input::Command),
    }
}

/// Room names may be typed without their `#`.
fn room_arg(word: &str) -> Result<String, CommandError> {
    let room = if word.starts_with('#') {
        word.to_string()
    } else {
        format!("#{word}")
    };
    validate_room(&room)?;
    Ok(room)
}

fn nick_arg(word: &str) -> Result<String, CommandError> {
    validate_nick(word)?;
    Ok(word.to_string())
}

/// Transfer ids are hex; a typed id may be any prefix of one.
fn is_id(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_hexdigit())
}

/// Splits off the first whitespace-separated word.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    }
}

fn parse_command(rest: &str) -> Result<Command, CommandError> {
    let (word, args) = split_word(rest);
    let typed = word.to_ascii_lowercase();
    // Exact names win; otherwise an unambiguous prefix is accepted (`/j`).
    let name = match spec(&typed) {
        Some(spec) => spec.name,
        None => match names_starting_with(&typed).as_slice() {
            [] => {
                return Err(CommandError::Unknown {
                    name: word.to_string(),
                })
            }
            [one] => one,
            many => {
                return Err(CommandError::Ambiguous {
                    name: word.to_string(),
                    candidates: many.to_vec(),
                })
            }
        },
    };
    let spec = *spec(name).expect("name comes from the table");
    let usage = || CommandError::Usage { spec };
    let (first, after_first) = split_word(args);
    let none_if_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(match name {
        "help" => Command::Help(none_if_empty(first.trim_start_matches('/'))),
        "join" if !first.is_empty() && after_first.is_empty() => Command::Join(room_arg(first)?),
        "join" => return Err(usage()),
        "part" if after_first.is_empty() => match first {
            "" => Command::Part(None),
            room => Command::Part(Some(room_arg(room)?)),
        },
        "part" => return Err(usage()),
        "msg" if !first.is_empty() && !after_first.is_empty() => Command::Msg {
            to: nick_arg(first)?,
            text: after_first.to_string(),
        },
        "msg" => return Err(usage()),
        "query" if !first.is_empty() => Command::Query {
            nick: nick_arg(first)?,
            text: none_if_empty(after_first),
        },
        "query" => return Err(usage()),
        "broadcast" if !args.is_empty() => Command::Broadcast(args.to_string()),
        "broadcast" => return Err(usage()),
        "nick" if !first.is_empty() && after_first.is_empty() => Command::Nick(nick_arg(first)?),
        "nick" => return Err(usage()),
        "who" | "users" if after_first.is_empty() => {
            let room = match first {
                "" => None,
                room => Some(room_arg(room)?),
            };
            if name == "who" {
                Command::Who(room)
            } else {
                Command::Users(room)
            }
        }
        "who" | "users" => return Err(usage()),
        "rooms" if args.is_empty() => Command::Rooms,
        "rooms" => return Err(usage()),
        "close" if args.is_empty() => Command::Close,
        "close" => return Err(usage()),
        "say" if !args.is_empty() => Command::Say(args.to_string()),
        "say" => return Err(usage()),
        "quit" => Command::Quit(none_if_empty(args)),
        "register" | "login" if after_first.is_empty() => {
            let user = match first {
                "" => None,
                user => Some(nick_arg(user)?),
            };
            if name == "register" {
                Command::Register(user)
            } else {
                Command::Login(user)
            }
        }
        // A password typed on the command line would be echoed and kept in
        // the history, so it is refused.
        "register" | "login" => return Err(usage()),
        "passwd" if args.is_empty() => Command::Passwd,
        "passwd" => return Err(usage()),
        "logout" if args.is_empty() => Command::Logout,
        "logout" => return Err(usage()),
        "send" if !first.is_empty() && !after_first.is_empty() => Command::Send {
            to: if first.starts_with('#') {
                FileTo::Room(room_arg(first)?)
            } else {
                FileTo::User(nick_arg(first)?)
            },
            path: after_first.trim_end().to_string(),
        },
        "send" => return Err(usage()),
        "accept" => {
            let (second, rest) = split_word(after_first);
            if !rest.is_empty() {
                return Err(usage());
            }
            // One word: an id if it looks like one (hex digits), else a
            // directory.
            match (first, second) {
                ("", _) => Command::Accept {
                    id: None,
                    dir: None,
                },
                (word, "") if is_id(word) => Command::Accept {
                    id: Some(word.to_string()),
                    dir: None,
                },
                (dir, "") => Command::Accept {
                    id: None,
                    dir: Some(dir.to_string()),
                },
                (id, dir) if is_id(id) => Command::Accept {
                    id: Some(id.to_string()),
                    dir: Some(dir.to_string()),
                },
                _ => return Err(usage()),
            }
        }
        "decline" if after_first.is_empty() && (first.is_empty() || is_id(first)) => {
            Command::Decline(none_if_empty(first))
        }
        "decline" => return Err(usage()),
        "cancel" if is_id(first) && after_first.is_empty() => Command::Cancel(first.to_string()),
        "cancel" => return Err(usage()),
        "files" if args.is_empty() => Command::Files,
        "files" => return Err(usage()),
        "transfers" if args.is_empty() => Command::Transfers,
        "transfers" => return Err(usage()),
        _ => unreachable!("every table row has an arm: {name}"),
    })
}

impl Command {
    /// Help text for one command, or for all.
    pub fn help_lines(topic: Option<&str>) -> Result<Vec<String>, CommandError> {
        match topic {
            None => {
                let mut lines = vec![
                    "Commands (text without a slash goes to the current conversation):".to_string(),
                ];
                lines.extend(COMMANDS.iter().map(help_line));
                lines.push(
                    "Keys: Alt-1..9 / Ctrl-N / Ctrl-P switch conversations, PageUp/PageDown scroll, End jumps to the bottom, Tab completes, Up/Down recall history, F2 shows transfers.".to_string(),
                );
                Ok(lines)
            }
            Some(name) => {
                let name = name.to_ascii_lowercase();
                let spec = spec(&name).ok_or(CommandError::Unknown { name })?;
                Ok(vec![help_line(spec)])
            }
        }
    }
}

fn help_line(spec: &CommandSpec) -> String {
    let usage = if spec.usage.is_empty() {
        format!("/{}", spec.name)
    } else {
        format!("/{} {}", spec.name, spec.usage)
    };
    format!("  {usage:<24} {}", spec.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        match parse(line) {
            Ok(Input::Command(c)) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn text_and_escapes() {
        assert_eq!(
            parse("hello there").unwrap(),
            Input::Text("hello there".into())
        );
        assert_eq!(
            parse("//etc/passwd is a file").unwrap(),
            Input::Text("/etc/passwd is a file".into())
        );
        assert_eq!(parse("   ").unwrap(), Input::Nothing);
        assert_eq!(parse("").unwrap(), Input::Nothing);
        assert_eq!(
            parse("héllo 世界 🎉").unwrap(),
            Input::Text("héllo 世界 🎉".into())
        );
    }

    #[test]
    fn core_commands() {
        assert_eq!(cmd("/join #rust"), Command::Join("#rust".into()));
        assert_eq!(cmd("/join rust"), Command::Join("#rust".into()));
        assert_eq!(cmd("/JOIN #Rust"), Command::Join("#Rust".into()));
        assert_eq!(cmd("/part"), Command::Part(None));
        assert_eq!(cmd("/part #a"), Command::Part(Some("#a".into())));
        assert_eq!(
            cmd("/msg bob  hi   there "),
            Command::Msg {
                to: "bob".into(),
                text: "hi   there ".into()
            }
        );
        assert_eq!(
            cmd("/query bob"),
            Command::Query {
                nick: "bob".into(),
                text: None
            }
        );
        assert_eq!(
            cmd("/query bob yo"),
            Command::Query {
                nick: "bob".into(),
                text: Some("yo".into())
            }
        );
        assert_eq!(
            cmd("/broadcast all hands"),
            Command::Broadcast("all hands".into())
        );
        assert_eq!(cmd("/nick carol"), Command::Nick("carol".into()));
        assert_eq!(cmd("/who"), Command::Who(None));
        assert_eq!(cmd("/users"), Command::Users(None));
        assert_eq!(cmd("/users #a"), Command::Users(Some("#a".into())));
        assert_eq!(cmd("/rooms"), Command::Rooms);
        assert_eq!(cmd("/quit"), Command::Quit(None));
        assert_eq!(
            cmd("/quit gone home"),
            Command::Quit(Some("gone home".into()))
        );
        assert_eq!(cmd("/help join"), Command::Help(Some("join".into())));
        assert_eq!(cmd("/help /join"), Command::Help(Some("join".into())));
        assert_eq!(cmd("/say /shrug"), Command::Say("/shrug".into()));
    }

    #[test]
    fn account_commands() {
        assert_eq!(cmd("/login"), Command::Login(None));
        assert_eq!(cmd("/login alice"), Command::Login(Some("alice".into())));
        assert_eq!(
            cmd("/register alice"),
            Command::Register(Some("alice".into()))
        );
        assert_eq!(cmd("/passwd"), Command::Passwd);
        assert_eq!(cmd("/logout"), Command::Logout);
        // Passwords never go on the command line.
        assert!(matches!(
            parse("/login alice hunter2"),
            Err(CommandError::Usage { .. })
        ));
    }

    #[test]
    fn abbreviations_and_errors() {
        assert_eq!(cmd("/j #a"), Command::Join("#a".into()));
        assert_eq!(cmd("/b hey"), Command::Broadcast("hey".into()));
        let err = parse("/p").unwrap_err();
        assert!(matches!(err, CommandError::Ambiguous { .. }), "{err:?}");
        assert!(err.to_string().contains("part") && err.to_string().contains("passwd"));
        let err = parse("/frobnicate").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown command /frobnicate; type /help for the list"
        );
        assert_eq!(
            parse("/msg bob").unwrap_err().to_string(),
            "usage: /msg NICK TEXT"
        );
        assert_eq!(
            parse("/join").unwrap_err().to_string(),
            "usage: /join #ROOM"
        );
        assert!(parse("/join #a b").is_err());
        assert!(matches!(
            parse("/join #bad room!"),
            Err(CommandError::Usage { .. })
        ));
        assert!(matches!(
            parse("/join #bad!"),
            Err(CommandError::BadName(_))
        ));
        assert!(matches!(
            parse("/msg 1bob hi"),
            Err(CommandError::BadName(_))
        ));
        assert!(matches!(parse("/nick é"), Err(CommandError::BadName(_))));
    }

    #[test]
    fn file_commands() {
        assert_eq!(
            cmd("/send bob ~/My Files/report.pdf"),
            Command::Send {
                to: FileTo::User("bob".into()),
                path: "~/My Files/report.pdf".into()
            }
        );
        assert_eq!(
            cmd("/send #team a.bin"),
            Command::Send {
                to: FileTo::Room("#team".into()),
                path: "a.bin".into()
            }
        );
        assert!(matches!(
            parse("/send bob"),
            Err(CommandError::Usage { .. })
        ));
        assert!(matches!(
            parse("/send 1bob x"),
            Err(CommandError::BadName(_))
        ));
        assert_eq!(
            cmd("/accept"),
            Command::Accept {
                id: None,
                dir: None
            }
        );
        assert_eq!(
            cmd("/accept 5f0c"),
            Command::Accept {
                id: Some("5f0c".into()),
                dir: None
            }
        );
        assert_eq!(
            cmd("/accept ~/inbox"),
            Command::Accept {
                id: None,
                dir: Some("~/inbox".into())
            }
        );
        assert_eq!(
            cmd("/accept 5f0c /tmp/in"),
            Command::Accept {
                id: Some("5f0c".into()),
                dir: Some("/tmp/in".into())
            }
        );
        assert!(matches!(
            parse("/accept /tmp x"),
            Err(CommandError::Usage { .. })
        ));
        assert_eq!(cmd("/decline"), Command::Decline(None));
        assert_eq!(cmd("/decline ab12"), Command::Decline(Some("ab12".into())));
        assert_eq!(cmd("/cancel ab12"), Command::Cancel("ab12".into()));
        assert!(matches!(parse("/cancel"), Err(CommandError::Usage { .. })));
        assert!(matches!(
            parse("/cancel report"),
            Err(CommandError::Usage { .. })
        ));
        assert_eq!(cmd("/files"), Command::Files);
        assert_eq!(cmd("/transfers"), Command::Transfers);
    }

    #[test]
    fn help_comes_from_the_table() {
        let all = Command::help_lines(None).unwrap();
        for spec in COMMANDS {
            assert!(
                all.iter().any(|l| l.contains(&format!("/{}", spec.name))),
                "{}",
                spec.name
            );
        }
        assert_eq!(Command::help_lines(Some("msg")).unwrap().len(), 1);
        assert!(Command::help_lines(Some("nope")).is_err());
    }
}
