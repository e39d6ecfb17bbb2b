//! Slash commands: one table ([`COMMANDS`]) that drives parsing, `/help` and
//! tab completion, and the parsed form ([`Command`]) that `update` acts on.
//!
//! To add a command (private rooms, file transfer, ...): add a [`Command`]
//! variant, a row in [`COMMANDS`], and an arm in [`parse_command`]; `/help`
//! and completion pick it up from the table.

use chat_protocol::names::{validate_nick, validate_room};

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
    /// `/history [N]`: load N older messages of the current conversation
    /// (the server's `history`; [`DEFAULT_HISTORY_PAGE`] when omitted).
    History(Option<u32>),
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
    /// A private-room command (`/create`, `/invite`, `/kick`, ...).
    Room(RoomCommand),
}

/// Private-room commands. A room left out means the current conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomCommand {
    /// `/create #ROOM [TOPIC]`
    Create { room: String, topic: Option<String> },
    /// `/invite NICK [#ROOM]`
    Invite { user: String, room: Option<String> },
    /// `/revoke NICK [#ROOM]`: withdraw a pending invitation.
    Revoke { user: String, room: Option<String> },
    /// `/accept-invite [#ROOM]`: the latest invitation when no room.
    Accept(Option<String>),
    /// `/decline-invite [#ROOM]`: the latest invitation when no room.
    Decline(Option<String>),
    /// `/invites`: list the invitations waiting for us.
    Invitations,
    /// `/kick NICK [REASON]`
    Kick {
        user: String,
        reason: Option<String>,
    },
    /// `/ban NICK [REASON]`
    Ban {
        user: String,
        reason: Option<String>,
    },
    /// `/unban NICK`
    Unban(String),
    /// `/topic [TEXT|--clear]`
    Topic(TopicChange),
    /// `/op NICK`: make a member a moderator.
    Promote(String),
    /// `/deop NICK`: make a moderator a plain member.
    Demote(String),
    /// `/transfer-owner NICK`: hand the room over.
    Transfer(String),
    /// `/delete-room #ROOM`: the room is named even when current, because
    /// this cannot be undone.
    Delete(String),
    /// `/leave [#ROOM]`: end our membership (unlike `/part`).
    Leave(Option<String>),
    /// `/info [#ROOM]`
    Info(Option<String>),
}

/// What `/topic` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    /// No argument: show the topic we know.
    Show,
    Set(String),
    /// `/topic --clear`
    Clear,
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
        name: "history",
        usage: "[N]",
        summary: "load N older messages of this conversation (default 50, at most 200)",
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
        name: "download",
        usage: "[ID] [DIR]",
        summary: "download an offered file (the latest by default)",
    },
    CommandSpec {
        name: "refuse",
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
        name: "create",
        usage: "#ROOM [TOPIC]",
        summary: "create a private room you own (needs an account)",
    },
    CommandSpec {
        name: "invite",
        usage: "NICK [#ROOM]",
        summary: "invite an account into a private room",
    },
    CommandSpec {
        name: "revoke",
        usage: "NICK [#ROOM]",
        summary: "withdraw an invitation not yet accepted",
    },
    CommandSpec {
        name: "accept",
        usage: "[#ROOM]",
        summary: "accept an invitation (the latest by default) and join",
    },
    CommandSpec {
        name: "decline",
        usage: "[#ROOM]",
        summary: "refuse an invitation (the latest by default)",
    },
    CommandSpec {
        name: "invites",
        usage: "",
        summary: "list the invitations waiting for you",
    },
    CommandSpec {
        name: "kick",
        usage: "NICK [REASON]",
        summary: "put a member out of the current private room",
    },
    CommandSpec {
        name: "ban",
        usage: "NICK [REASON]",
        summary: "put out and keep out an account (current private room)",
    },
    CommandSpec {
        name: "unban",
        usage: "NICK",
        summary: "lift a ban (current private room)",
    },
    CommandSpec {
        name: "topic",
        usage: "[TEXT|--clear]",
        summary: "show, set or clear the current private room's topic",
    },
    CommandSpec {
        name: "promote",
        usage: "NICK",
        summary: "make a member a moderator (owner only)",
    },
    CommandSpec {
        name: "demote",
        usage: "NICK",
        summary: "make a moderator a plain member again (owner only)",
    },
    CommandSpec {
        name: "transfer",
        usage: "NICK",
        summary: "hand the current private room over to a member",
    },
    CommandSpec {
        name: "delete",
        usage: "#ROOM",
        summary: "delete a private room for everyone (owner only)",
    },
    CommandSpec {
        name: "leave",
        usage: "[#ROOM]",
        summary: "end your membership of a private room (/part only steps out)",
    },
    CommandSpec {
        name: "info",
        usage: "[#ROOM]",
        summary: "owner, moderators, members and topic of a private room",
    },
    CommandSpec {
        name: "quit",
        usage: "[REASON]",
        summary: "leave the server and exit",
    },
];

/// Other names for commands: earlier names of this client, and the
/// browser app's (one vocabulary for both, docs/commands.md). `/accept ID`
/// and `/decline ID` with a transfer id still mean `/download` and
/// `/refuse`.
pub const ALIASES: &[(&str, &str)] = &[
    ("accept-invite", "accept"),
    ("decline-invite", "decline"),
    ("invitations", "invites"),
    ("op", "promote"),
    ("deop", "demote"),
    ("transfer-owner", "transfer"),
    ("delete-room", "delete"),
    ("wall", "broadcast"),
    ("list", "rooms"),
    ("?", "help"),
];

/// Messages `/history` (and PageUp at the top) loads when no number is given.
pub const DEFAULT_HISTORY_PAGE: u32 = 50;
/// The most the server sends in one history page (`history.max_page`).
pub const MAX_HISTORY_PAGE: u32 = 200;

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
    BadName(#[from] chat_protocol::names::NameError),
}

impl PartialEq for CommandSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for CommandSpec {}

/// The table row for a command name or alias.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    COMMANDS.iter().find(|c| c.name == name)
}

/// The other names of a command.
pub fn aliases_of(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    ALIASES
        .iter()
        .filter(move |(_, canonical)| *canonical == name)
        .map(|(alias, _)| *alias)
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
        "history" if after_first.is_empty() => match first {
            "" => Command::History(None),
            n => match n.parse::<u32>() {
                Ok(n) if (1..=MAX_HISTORY_PAGE).contains(&n) => Command::History(Some(n)),
                _ => return Err(usage()),
            },
        },
        "history" => return Err(usage()),
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
        "download" => parse_download(first, after_first)?,
        // The earlier names of the file commands, with a transfer id.
        "accept" if is_id(first) => parse_download(first, after_first)?,
        "refuse" | "decline" if is_id(first) || (name == "refuse" && first.is_empty()) => {
            if !after_first.is_empty() {
                return Err(CommandError::Usage {
                    spec: *self::spec("refuse").expect("in the table"),
                });
            }
            Command::Decline(none_if_empty(first))
        }
        "refuse" => return Err(usage()),
        "cancel" if is_id(first) && after_first.is_empty() => Command::Cancel(first.to_string()),
        "cancel" => return Err(usage()),
        "files" if args.is_empty() => Command::Files,
        "files" => return Err(usage()),
        "transfers" if args.is_empty() => Command::Transfers,
        "transfers" => return Err(usage()),
        // The rest of the table: private rooms.
        _ => Command::Room(parse_room_command(spec, args)?),
    })
}

/// `/download [ID] [DIR]` (and `/accept ID [DIR]`).
fn parse_download(first: &str, after_first: &str) -> Result<Command, CommandError> {
    let usage = || CommandError::Usage {
        spec: *spec("download").expect("in the table"),
    };
    let (second, rest) = split_word(after_first);
    if !rest.is_empty() {
        return Err(usage());
    }
    // One word: an id if it looks like one (hex digits), else a directory.
    Ok(match (first, second) {
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
    })
}

/// The private-room commands' arguments.
fn parse_room_command(spec: CommandSpec, args: &str) -> Result<RoomCommand, CommandError> {
    let usage = || CommandError::Usage { spec };
    let (first, after_first) = split_word(args);
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim_end().to_string());
    let optional_room = |word: &str| match word {
        "" => Ok(None),
        room => room_arg(room).map(Some),
    };
    let one_word = !first.is_empty() && after_first.is_empty();
    let at_most_one_word = after_first.is_empty();
    Ok(match spec.name {
        "create" if !first.is_empty() => RoomCommand::Create {
            room: room_arg(first)?,
            topic: text(after_first),
        },
        "invite" | "revoke" if !first.is_empty() && !after_first.contains(' ') => {
            let user = nick_arg(first)?;
            let room = optional_room(after_first)?;
            if spec.name == "invite" {
                RoomCommand::Invite { user, room }
            } else {
                RoomCommand::Revoke { user, room }
            }
        }
        "accept" if at_most_one_word => RoomCommand::Accept(optional_room(first)?),
        "decline" if at_most_one_word => RoomCommand::Decline(optional_room(first)?),
        "invites" if args.is_empty() => RoomCommand::Invitations,
        "kick" | "ban" if !first.is_empty() => {
            let user = nick_arg(first)?;
            let reason = text(after_first);
            if spec.name == "kick" {
                RoomCommand::Kick { user, reason }
            } else {
                RoomCommand::Ban { user, reason }
            }
        }
        "unban" if one_word => RoomCommand::Unban(nick_arg(first)?),
        "promote" if one_word => RoomCommand::Promote(nick_arg(first)?),
        "demote" if one_word => RoomCommand::Demote(nick_arg(first)?),
        "transfer" if one_word => RoomCommand::Transfer(nick_arg(first)?),
        "topic" => match args.trim_end() {
            "" => RoomCommand::Topic(TopicChange::Show),
            "--clear" => RoomCommand::Topic(TopicChange::Clear),
            topic => RoomCommand::Topic(TopicChange::Set(topic.to_string())),
        },
        "delete" if one_word => RoomCommand::Delete(room_arg(first)?),
        "leave" if at_most_one_word => RoomCommand::Leave(optional_room(first)?),
        "info" if at_most_one_word => RoomCommand::Info(optional_room(first)?),
        _ => return Err(usage()),
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
                    "Keys: Alt-1..9 / Ctrl-N / Ctrl-P switch conversations, PageUp/PageDown scroll, End jumps to the bottom, Tab completes, Up/Down recall history, F1 shows this help, F2 shows transfers. The same commands work in the browser app (docs/commands.md).".to_string(),
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
    let aliases: Vec<String> = aliases_of(spec.name).map(|a| format!("/{a}")).collect();
    if aliases.is_empty() {
        format!("  {usage:<24} {}", spec.summary)
    } else {
        format!(
            "  {usage:<24} {} (also {})",
            spec.summary,
            aliases.join(", ")
        )
    }
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
    fn history_takes_an_optional_page_size() {
        assert_eq!(cmd("/history"), Command::History(None));
        assert_eq!(cmd("/history 20"), Command::History(Some(20)));
        assert_eq!(cmd("/hist 200"), Command::History(Some(200)));
        for bad in ["/history 0", "/history 201", "/history ten", "/history 5 6"] {
            assert!(
                matches!(parse(bad), Err(CommandError::Usage { .. })),
                "{bad}"
            );
        }
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
        // `/b` became ambiguous with `/ban`.
        assert_eq!(cmd("/br hey"), Command::Broadcast("hey".into()));
        assert!(matches!(
            parse("/b hey"),
            Err(CommandError::Ambiguous { .. })
        ));
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
            cmd("/download"),
            Command::Accept {
                id: None,
                dir: None
            }
        );
        assert_eq!(
            cmd("/download 5f0c"),
            Command::Accept {
                id: Some("5f0c".into()),
                dir: None
            }
        );
        // The earlier name, with an id.
        assert_eq!(
            cmd("/accept 5f0c"),
            Command::Accept {
                id: Some("5f0c".into()),
                dir: None
            }
        );
        assert_eq!(
            cmd("/download ~/inbox"),
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
        assert_eq!(
            parse("/download /tmp x").unwrap_err().to_string(),
            "usage: /download [ID] [DIR]"
        );
        assert_eq!(cmd("/refuse"), Command::Decline(None));
        assert_eq!(cmd("/refuse ab12"), Command::Decline(Some("ab12".into())));
        assert_eq!(cmd("/decline ab12"), Command::Decline(Some("ab12".into())));
        assert_eq!(
            parse("/refuse ab12 x").unwrap_err().to_string(),
            "usage: /refuse [ID]"
        );
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
    fn room_commands() {
        let room = Command::Room;
        assert_eq!(
            cmd("/create secret launch plans "),
            room(RoomCommand::Create {
                room: "#secret".into(),
                topic: Some("launch plans".into())
            })
        );
        assert_eq!(
            cmd("/create #secret"),
            room(RoomCommand::Create {
                room: "#secret".into(),
                topic: None
            })
        );
        assert_eq!(
            cmd("/invite bob"),
            room(RoomCommand::Invite {
                user: "bob".into(),
                room: None
            })
        );
        assert_eq!(
            cmd("/invite bob #secret"),
            room(RoomCommand::Invite {
                user: "bob".into(),
                room: Some("#secret".into())
            })
        );
        assert_eq!(
            cmd("/revoke bob secret"),
            room(RoomCommand::Revoke {
                user: "bob".into(),
                room: Some("#secret".into())
            })
        );
        assert!(matches!(
            parse("/invite bob #a #b"),
            Err(CommandError::Usage { .. })
        ));
        assert!(matches!(
            parse("/invite 1bob"),
            Err(CommandError::BadName(_))
        ));
        // One vocabulary with the browser app; the earlier names still work.
        for line in ["/accept", "/accept-invite"] {
            assert_eq!(cmd(line), room(RoomCommand::Accept(None)), "{line}");
        }
        for line in [
            "/accept #secret",
            "/accept secret",
            "/accept-invite #secret",
        ] {
            assert_eq!(
                cmd(line),
                room(RoomCommand::Accept(Some("#secret".into()))),
                "{line}"
            );
        }
        for line in ["/decline #x", "/decline-invite #x", "/decline x"] {
            assert_eq!(
                cmd(line),
                room(RoomCommand::Decline(Some("#x".into()))),
                "{line}"
            );
        }
        assert_eq!(cmd("/invites"), room(RoomCommand::Invitations));
        assert_eq!(cmd("/invitations"), room(RoomCommand::Invitations));
        assert_eq!(
            cmd("/kick bob flooding the room"),
            room(RoomCommand::Kick {
                user: "bob".into(),
                reason: Some("flooding the room".into())
            })
        );
        assert_eq!(
            cmd("/ban eve"),
            room(RoomCommand::Ban {
                user: "eve".into(),
                reason: None
            })
        );
        assert!(matches!(parse("/kick"), Err(CommandError::Usage { .. })));
        assert_eq!(cmd("/unban eve"), room(RoomCommand::Unban("eve".into())));
        assert!(matches!(
            parse("/unban eve now"),
            Err(CommandError::Usage { .. })
        ));
        assert_eq!(cmd("/topic"), room(RoomCommand::Topic(TopicChange::Show)));
        assert_eq!(
            cmd("/topic launch on Monday 🚀"),
            room(RoomCommand::Topic(TopicChange::Set(
                "launch on Monday 🚀".into()
            )))
        );
        assert_eq!(
            cmd("/topic --clear"),
            room(RoomCommand::Topic(TopicChange::Clear))
        );
        for (new, old, expected) in [
            (
                "/promote carol",
                "/op carol",
                RoomCommand::Promote("carol".into()),
            ),
            (
                "/demote carol",
                "/deop carol",
                RoomCommand::Demote("carol".into()),
            ),
            (
                "/transfer carol",
                "/transfer-owner carol",
                RoomCommand::Transfer("carol".into()),
            ),
            (
                "/delete #secret",
                "/delete-room #secret",
                RoomCommand::Delete("#secret".into()),
            ),
        ] {
            assert_eq!(cmd(new), room(expected.clone()), "{new}");
            assert_eq!(cmd(old), room(expected), "{old}");
        }
        // Deleting needs the room named, even in it.
        assert_eq!(
            parse("/delete").unwrap_err().to_string(),
            "usage: /delete #ROOM"
        );
        assert_eq!(
            parse("/delete-room").unwrap_err().to_string(),
            "usage: /delete #ROOM"
        );
        assert_eq!(cmd("/leave"), room(RoomCommand::Leave(None)));
        assert_eq!(cmd("/info #x"), room(RoomCommand::Info(Some("#x".into()))));
        assert_eq!(cmd("/info"), room(RoomCommand::Info(None)));
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
        // Help names the earlier names, and knows them.
        let op = Command::help_lines(Some("op")).unwrap();
        assert!(
            op[0].contains("/promote NICK") && op[0].contains("(also /op)"),
            "{op:?}"
        );
        assert!(Command::help_lines(Some("nope")).is_err());
    }
}
