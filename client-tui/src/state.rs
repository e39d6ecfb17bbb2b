//! Everything the client knows, as plain data: conversations and their
//! scrollback, the input line, the connection. `update` changes it, `view`
//! draws it, the line mode prints its journal.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chat_protocol::names::fold;
use chat_protocol::RequestId;

use crate::editor::Editor;
pub use crate::entry::{
    Body, Delivery, Entry, Invitation, Origin, RoomDetails, RoomEventNote, TransferNote,
};
use crate::layout;

/// `/help` in the full-screen client: shown over the conversation instead
/// of being written into it; PageUp/PageDown scroll, Esc closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpView {
    pub lines: Vec<String>,
    /// Rows scrolled past at the top.
    pub scroll: usize,
}

/// Entries kept per conversation; older ones are dropped.
pub const SCROLLBACK_LIMIT: usize = 5000;
/// Name of the server conversation (status, broadcasts, replies that belong
/// to no room). Not a valid room or nickname, so it cannot clash.
pub const SERVER_CONV: &str = "*";

/// What a conversation is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    Server,
    Room,
    Direct,
}

/// A room, a direct conversation, or the server conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Display name: `#room`, a nickname, or [`SERVER_CONV`].
    pub name: String,
    pub kind: ConvKind,
    pub entries: VecDeque<Entry>,
    /// Chat messages that arrived while another conversation was shown.
    pub unread: usize,
    /// Whether an unread message mentions us.
    pub mentioned: bool,
    /// Room members (sorted by folded name).
    pub members: Vec<String>,
    /// For rooms: whether we are (or want to be) in it; reconnecting
    /// rejoins these.
    pub joined: bool,
    /// Rows scrolled up from the bottom (0: following new messages).
    pub scroll: usize,
    /// The room's topic, as last heard.
    pub topic: Option<String>,
    /// A private room (from `room_create`, an accepted invitation, `rooms`
    /// or `room_info`): the sidebar marks it.
    pub private: bool,
    /// Why we can no longer talk here (kicked, banned, the room deleted,
    /// membership ended); cleared when we join again.
    pub closed: Option<String>,
    /// Whether the server may have older messages than those shown (false
    /// once a history page said there are no more).
    pub history_more: bool,
    /// A history request for this conversation is under way.
    pub history_pending: bool,
    /// The newest message id reported read to the server (`read`).
    pub read_sent: Option<u64>,
}

impl Conversation {
    pub fn new(name: &str, kind: ConvKind) -> Conversation {
        Conversation {
            name: name.to_string(),
            kind,
            entries: VecDeque::new(),
            unread: 0,
            mentioned: false,
            members: Vec::new(),
            joined: false,
            scroll: 0,
            topic: None,
            private: false,
            closed: None,
            history_more: true,
            history_pending: false,
            read_sent: None,
        }
    }

    /// The oldest message id shown (where older history pages start).
    pub fn oldest_msg_id(&self) -> Option<u64> {
        self.entries.iter().find_map(|e| match e.body {
            Body::Chat { msg_id, .. } => msg_id,
            _ => None,
        })
    }

    /// Whether the message with this id is shown.
    pub fn has_msg(&self, id: u64) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.body, Body::Chat { msg_id: Some(m), .. } if m == id))
    }

    /// Inserts a message entry where its id belongs among those shown
    /// (before the first newer one; at the end when none is newer).
    pub fn insert_by_id(&mut self, id: u64, entry: Entry) {
        if self.entries.len() == SCROLLBACK_LIMIT {
            self.entries.pop_front();
        }
        let at = self
            .entries
            .iter()
            .position(|e| matches!(e.body, Body::Chat { msg_id: Some(m), .. } if m > id))
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
    }

    /// The newest message id shown.
    pub fn newest_msg_id(&self) -> Option<u64> {
        self.entries.iter().rev().find_map(|e| match e.body {
            Body::Chat { msg_id, .. } => msg_id,
            _ => None,
        })
    }

    /// Puts older entries (oldest first) before those shown, as many as the
    /// scrollback has room for (the newest of them first).
    pub fn prepend(&mut self, older: Vec<Entry>) {
        let room = SCROLLBACK_LIMIT.saturating_sub(self.entries.len());
        let skip = older.len().saturating_sub(room);
        for entry in older.into_iter().skip(skip).rev() {
            self.entries.push_front(entry);
        }
    }

    pub fn push(&mut self, entry: Entry) {
        if self.entries.len() == SCROLLBACK_LIMIT {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn add_member(&mut self, nick: &str) {
        if !self.has_member(nick) {
            self.members.push(nick.to_string());
            self.members.sort_by_key(|m| fold(m));
        }
    }

    pub fn remove_member(&mut self, nick: &str) {
        let key = fold(nick);
        self.members.retain(|m| fold(m) != key);
    }

    pub fn has_member(&self, nick: &str) -> bool {
        let key = fold(nick);
        self.members.iter().any(|m| fold(m) == key)
    }
}

/// Where the connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Trying to connect (attempt number, from 1).
    Connecting { attempt: u32 },
    /// Connected and greeted.
    Connected,
    /// Lost; the next attempt is at `retry_at` (ms since the epoch).
    Disconnected { reason: String, retry_at: u64 },
    /// We quit; nothing more will happen.
    Closed,
}

/// What a request was for, so its reply lands in the right place.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Conversation (folded name) where the outcome is shown.
    pub conv: String,
    pub what: PendingKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PendingKind {
    /// A chat message we sent; the entry carries the same id.
    Chat,
    Join(String),
    Part(String),
    Nick(String),
    Users,
    Rooms,
    /// The listing asked for after logging in, to learn which of the rooms
    /// the server put us back into are private; not shown.
    RoomsQuiet,
    Login(String),
    /// The login sent automatically on connecting (`--user`); on a server
    /// without accounts the client falls back to guest mode.
    SetupLogin(String),
    Register(String),
    /// `resume` with the token, sent on reconnecting instead of the
    /// password; an error falls back to logging in with the password.
    Resume(String),
    /// A page of history for the conversation; `user` when asked for with
    /// `/history` (its outcome is told), not by PageUp.
    History {
        user: bool,
    },
    /// Missed messages a resume did not send (`resumed.more`), read with
    /// `history after` the newest caught up in the conversation.
    CatchUpPage,
    /// Carries the new password, remembered for reconnecting once accepted.
    Passwd(String),
    Logout,
    /// `/files`.
    FileList,
    /// The listing asked for on connecting and logging in: shows only
    /// offers not seen yet (e.g. sent while we were away).
    FileListQuiet,
    /// `/decline`, with the server's transfer id.
    FileDecline(String),
    /// `/cancel` of one of our uploads, with the server's transfer id.
    FileCancel(String),
    /// `/create` or `/accept-invite` of this private room: the `joined`
    /// reply marks it private; an error means we are not in it.
    RoomEnter(String),
    /// A private-room request whose `ok` is shown as this text (none when
    /// a `room_event` will tell).
    RoomDone(Option<String>),
    /// `/decline-invite`: the invitation is forgotten once accepted.
    RoomDecline(String),
    /// `/leave`: the conversation closes once the server agrees.
    RoomLeave(String),
    /// Requests whose plain `ok` needs no words.
    Other,
}

/// What the password prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordPurpose {
    Login {
        user: String,
    },
    Register {
        user: String,
    },
    /// First the old password, then the new one.
    PasswdOld,
    PasswdNew {
        old: String,
    },
}

/// Which front end the state serves; the line mode takes passwords from the
/// environment instead of prompting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    Screen,
    Line {
        /// `CHATD_PASSWORD`.
        password: Option<String>,
        /// `CHATD_NEW_PASSWORD`, for `/passwd`.
        new_password: Option<String>,
    },
}

/// Facts about the connection shown in the status bar.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// `host:port` as given.
    pub addr: String,
    pub tls: bool,
    /// From `welcome`: software name and version.
    pub software: Option<String>,
    pub auth_required: bool,
    pub features: Vec<String>,
}

/// The whole client state.
#[derive(Debug)]
pub struct State {
    /// Conversations in sidebar order: the server conversation first.
    pub convs: Vec<Conversation>,
    /// Index into `convs` of the one shown.
    pub current: usize,
    /// The nickname we have (or asked for, until the server confirms).
    pub nick: String,
    /// The account to log in as (`--user`), and its password once known.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Whether the server confirmed our login.
    pub logged_in: bool,
    pub link: Link,
    pub server: ServerInfo,
    /// Last measured round trip.
    pub lag: Option<Duration>,
    pub editor: Editor,
    /// Set while the input line asks for a password (not echoed).
    pub prompt: Option<PasswordPurpose>,
    /// Tab completion in progress.
    pub completion: Option<crate::complete::Cycle>,
    /// Requests awaiting their reply, by id.
    pub pending: HashMap<RequestId, Pending>,
    next_id: RequestId,
    /// Users seen in the last `/users` reply and in messages, for completion.
    pub known_users: Vec<String>,
    /// Rooms from the last `/rooms` reply, for completion.
    pub known_rooms: Vec<String>,
    /// Terminal size (columns, rows), for paging.
    pub viewport: (u16, u16),
    /// Offset of local time from UTC, in seconds, for timestamps.
    pub utc_offset_secs: i32,
    pub frontend: Frontend,
    /// Entries added since the front end last looked, with their
    /// conversation's name (the line mode prints them).
    pub journal: Vec<(String, Entry)>,
    /// Rooms wait for a login that waits for a password prompt.
    pub rejoin_after_login: bool,
    /// Set by `/quit` or end of input: the front end stops.
    pub quitting: bool,
    /// Clock for entries that carry no server time (ms since the epoch).
    pub now_ms: u64,
    /// File offers and our uploads and downloads.
    pub transfers: crate::transfers::Transfers,
    /// Where `/download` saves files when no directory is given.
    pub download_dir: std::path::PathBuf,
    /// Private-room invitations waiting for an answer, oldest first.
    pub invitations: Vec<Invitation>,
    /// The resume token from the last `logged_in` (memory only), with its
    /// expiry (ms since the epoch): reconnecting resumes with it.
    pub resume_token: Option<(String, u64)>,
    /// The newest message id seen (received, sent, caught up or loaded);
    /// resuming asks for what came after it.
    pub last_msg_id: Option<u64>,
    /// A resume's catch-up in progress (between `logged_in` and `resumed`).
    pub catch_up: Option<CatchUp>,
    /// Rooms (folded) told joined since the last login: the server puts us
    /// back into our rooms while we rejoin them, and the second `joined`
    /// of a room is not told again.
    pub server_joined: Vec<String>,
    /// A password login (not a resume) awaits the server's `unread`
    /// summary, which then tells where unread messages wait.
    pub unread_summary_due: bool,
    /// The help view (`/help`, F1) over the conversation, while shown.
    pub help: Option<HelpView>,
}

/// What a resume has brought back so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatchUp {
    /// Missed messages, oldest first, recorded when the catch-up ends (so
    /// each conversation's separator can say how many).
    pub missed: Vec<chat_protocol::Message>,
    /// Missed messages recorded so far in all.
    pub recorded: u64,
    /// The `last_msg_id` the resume asked from.
    pub from: Option<u64>,
}

impl State {
    pub fn new(
        server: ServerInfo,
        nick: String,
        user: Option<String>,
        frontend: Frontend,
    ) -> State {
        State {
            convs: vec![Conversation::new(SERVER_CONV, ConvKind::Server)],
            current: 0,
            nick,
            user,
            password: None,
            logged_in: false,
            link: Link::Connecting { attempt: 1 },
            server,
            lag: None,
            editor: Editor::default(),
            prompt: None,
            completion: None,
            pending: HashMap::new(),
            next_id: 1,
            known_users: Vec::new(),
            known_rooms: Vec::new(),
            viewport: (80, 24),
            utc_offset_secs: 0,
            frontend,
            journal: Vec::new(),
            rejoin_after_login: false,
            quitting: false,
            now_ms: 0,
            transfers: crate::transfers::Transfers::default(),
            download_dir: std::path::PathBuf::from("."),
            invitations: Vec::new(),
            resume_token: None,
            last_msg_id: None,
            catch_up: None,
            server_joined: Vec::new(),
            unread_summary_due: false,
            help: None,
        }
    }

    /// A fresh request id, remembered with what it is for.
    pub fn request(&mut self, conv: &str, what: PendingKind) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                conv: fold(conv),
                what,
            },
        );
        id
    }

    pub fn current_conv(&self) -> &Conversation {
        &self.convs[self.current]
    }

    pub fn current_conv_mut(&mut self) -> &mut Conversation {
        &mut self.convs[self.current]
    }

    /// Index of a conversation by name (case-insensitive).
    pub fn find(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.convs.iter().position(|c| fold(&c.name) == key)
    }

    /// Index of a conversation, created (at the end) if new.
    pub fn conv_index(&mut self, name: &str, kind: ConvKind) -> usize {
        match self.find(name) {
            Some(i) => i,
            None => {
                self.convs.push(Conversation::new(name, kind));
                self.convs.len() - 1
            }
        }
    }

    /// Adds an entry to a conversation and to the journal; counts it as
    /// unread when it is a message in a conversation not shown.
    pub fn record(&mut self, index: usize, entry: Entry) {
        let shown = index == self.current;
        // Rows the entry adds, to keep the reader's place when scrolled up.
        let added_rows = if self.convs[index].scroll > 0 {
            let width = self.conversation_width(index);
            layout::entry_rows(&entry, &self.nick, self.utc_offset_secs, width)
        } else {
            0
        };
        let conv = &mut self.convs[index];
        let unread = match &entry.body {
            Body::Chat {
                own: false,
                mention,
                ..
            } => Some(*mention),
            // A file offered to us is addressed to us, like a mention; so
            // is an invitation.
            Body::FileOffer(_) | Body::Invitation(_) => Some(true),
            _ => None,
        };
        if let (Some(mention), false) = (unread, shown) {
            conv.unread += 1;
            conv.mentioned |= mention;
        }
        conv.scroll += added_rows;
        let pending = matches!(
            &entry.body,
            Body::Chat {
                delivery: Delivery::Pending(_),
                ..
            }
        );
        if !pending {
            self.journal.push((conv.name.clone(), entry.clone()));
        }
        conv.push(entry);
    }

    /// Notes a message id seen (the newest is where resuming starts).
    pub fn saw_msg_id(&mut self, id: u64) {
        self.last_msg_id = Some(self.last_msg_id.map_or(id, |last| last.max(id)));
    }

    /// Adds an entry stamped with the local clock.
    pub fn note(&mut self, index: usize, body: Body) {
        let entry = Entry {
            ts: self.now_ms,
            body,
        };
        self.record(index, entry);
    }

    /// Shows a conversation, clearing its unread marks.
    pub fn switch_to(&mut self, index: usize) {
        if index < self.convs.len() {
            self.current = index;
            let conv = &mut self.convs[index];
            conv.unread = 0;
            conv.mentioned = false;
        }
    }

    /// Rooms to rejoin after reconnecting.
    pub fn joined_rooms(&self) -> Vec<String> {
        self.convs
            .iter()
            .filter(|c| c.kind == ConvKind::Room && c.joined)
            .map(|c| c.name.clone())
            .collect()
    }

    /// Whether `text` mentions `nick` as a whole word (case-insensitive).
    pub fn mentions(&self, text: &str) -> bool {
        mentions(text, &self.nick)
    }

    /// Whole seconds until the next connection attempt, when disconnected.
    pub fn retry_in_secs(&self) -> Option<u64> {
        match self.link {
            Link::Disconnected { retry_at, .. } => {
                Some(retry_at.saturating_sub(self.now_ms).div_ceil(1000))
            }
            _ => None,
        }
    }

    /// Rows the transfers view takes when shown (the view lays it out the
    /// same way).
    pub fn transfers_view_rows(&self) -> usize {
        if !self.transfers.shown {
            return 0;
        }
        let main = usize::from(self.viewport.1).saturating_sub(2);
        (self.transfers.list.len().max(1) + 1).min(main / 2).max(2)
    }

    /// Rows the conversation area has, for paging.
    pub fn page_rows(&self) -> usize {
        // Minus the title, status and input rows, and the transfers view.
        let rows = usize::from(self.viewport.1).saturating_sub(3);
        rows.saturating_sub(self.transfers_view_rows()).max(1)
    }

    /// Columns the text of conversation `index` gets on the screen.
    pub fn conversation_width(&self, index: usize) -> usize {
        let room = self.convs[index].kind == ConvKind::Room;
        layout::conversation_width(self.viewport.0, room)
    }

    /// Rows all of conversation `index` takes at `width` columns.
    pub fn total_rows(&self, index: usize, width: usize) -> usize {
        self.convs[index]
            .entries
            .iter()
            .map(|e| layout::entry_rows(e, &self.nick, self.utc_offset_secs, width))
            .sum()
    }
}

/// Whether `text` contains `nick` as a word of its own.
pub fn mentions(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let nick = fold(nick);
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .any(|word| fold(word) == nick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mention_is_a_whole_word() {
        assert!(mentions("hey Alice, lunch?", "alice"));
        assert!(mentions("alice: ping", "Alice"));
        assert!(!mentions("malice aforethought", "alice"));
        assert!(!mentions("alice_b is here", "alice"));
        assert!(!mentions("anything", ""));
    }

    #[test]
    fn scrollback_is_bounded() {
        let mut c = Conversation::new("#a", ConvKind::Room);
        for i in 0..SCROLLBACK_LIMIT + 10 {
            c.push(Entry {
                ts: i as u64,
                body: Body::Info(i.to_string()),
            });
        }
        assert_eq!(c.entries.len(), SCROLLBACK_LIMIT);
        assert_eq!(c.entries.front().unwrap().ts, 10);
    }

    #[test]
    fn members_are_unique_and_sorted() {
        let mut c = Conversation::new("#a", ConvKind::Room);
        for m in ["bob", "Alice", "BOB", "carol"] {
            c.add_member(m);
        }
        assert_eq!(c.members, ["Alice", "bob", "carol"]);
        c.remove_member("ALICE");
        assert_eq!(c.members, ["bob", "carol"]);
    }
}
