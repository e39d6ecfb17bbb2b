//! Layout: how wide each part of the screen is, how text wraps, and what
//! an entry says as rows of text. The state uses it to keep the reader's
//! place (rows an entry adds while scrolled up), the update to bound
//! scrolling, the view to draw; it knows nothing of either (a leaf above
//! `entry` and `transfers`), and nothing of colours: `Tone` names what a
//! piece of text is, the view picks the style.

use chat_protocol::PresenceEvent;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::entry::{Body, Delivery, Entry};
use crate::transfers::{short_id, Direction};

/// Sidebar width in columns, border included (at most a fifth of the
/// screen, so that 80 columns leave the conversation 64).
pub const SIDEBAR_WIDTH: u16 = 20;
/// Member list width in columns, border included.
pub const MEMBERS_WIDTH: u16 = 18;
/// Narrower screens hide the member list (the header counts the members;
/// `/who` lists them): the conversation needs the columns more.
pub const MEMBERS_MIN_SCREEN: u16 = 100;

/// Whether a screen `cols` wide shows the member list beside a
/// conversation (rooms only).
pub fn shows_members(cols: u16, room: bool) -> bool {
    room && cols >= MEMBERS_MIN_SCREEN
}

/// Columns the conversation text gets on a screen `cols` wide.
pub fn conversation_width(cols: u16, room: bool) -> usize {
    let members = if shows_members(cols, room) {
        MEMBERS_WIDTH
    } else {
        0
    };
    usize::from(cols.saturating_sub(sidebar_width(cols) + members)).max(10)
}

/// Columns the sidebar takes on a screen `cols` wide.
pub fn sidebar_width(cols: u16) -> u16 {
    SIDEBAR_WIDTH.min(cols / 5)
}

/// Columns inside the help view's border on a screen `cols` wide.
pub fn help_width(cols: u16) -> usize {
    usize::from(cols.saturating_sub(sidebar_width(cols) + 2))
}

/// The help text as rows `width` columns wide; continuation rows are
/// indented under the summary column when there is room for it.
pub fn help_rows(lines: &[String], width: usize) -> Vec<String> {
    let width = width.max(1);
    let indent = if width > 50 { 27 } else { 2.min(width - 1) };
    lines
        .iter()
        .flat_map(|line| {
            wrap(line, width, width - indent)
                .into_iter()
                .enumerate()
                .map(move |(i, row)| {
                    let pad = if i == 0 { 0 } else { indent };
                    format!("{}{row}", " ".repeat(pad))
                })
        })
        .collect()
}

/// Replaces control characters that would garble the terminal.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() && c != '\n' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// `HH:MM` in local time.
pub fn clock(ts_ms: u64, utc_offset_secs: i32) -> String {
    let secs = (ts_ms / 1000) as i64 + i64::from(utc_offset_secs);
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, (day % 3600) / 60)
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Word-wraps `text` into rows: the first `first` columns wide, the rest
/// `rest` wide. Newlines force a break; over-long words are cut.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut col = 0;
    let limit = |rows: &Vec<String>| {
        if rows.is_empty() {
            first.max(1)
        } else {
            rest.max(1)
        }
    };
    for (n, paragraph) in text.split('\n').enumerate() {
        if n > 0 {
            rows.push(std::mem::take(&mut row));
            col = 0;
        }
        for word in paragraph.split_word_bounds() {
            let w = word.width();
            if col + w > limit(&rows) && col > 0 {
                rows.push(std::mem::take(&mut row));
                col = 0;
                if word.trim().is_empty() {
                    continue;
                }
            }
            if w > limit(&rows) {
                for g in word.graphemes(true) {
                    let gw = g.width();
                    if col + gw > limit(&rows) && col > 0 {
                        rows.push(std::mem::take(&mut row));
                        col = 0;
                    }
                    row.push_str(g);
                    col += gw;
                }
            } else {
                row.push_str(word);
                col += w;
            }
        }
    }
    rows.push(row);
    rows
}

/// What a piece of an entry's text is; the view gives each its style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tone {
    /// Times, arrows and the text of presence lines.
    Dim,
    /// `[all] ` before a broadcast.
    Broadcast,
    /// `<nick> `: the nickname's own colour; underlined when ours.
    Nick { nick: String, own: bool },
    /// A delivered message.
    Plain,
    /// Our message before the server confirmed it.
    Pending,
    /// Our message the server refused.
    Failed,
    /// A message naming us.
    Mention,
    /// `✗ ` and the text of an error.
    Error,
    /// Listings: who joined, users, rooms, room details.
    Listing,
    /// The connection's state, session resumed.
    Status,
    /// Replies and hints.
    Info,
    /// Files offered and transferred, invitations.
    Offer,
    /// Room events (kick, topic, ...) and the "while you were away" rule.
    Highlight,
}

/// A piece of text and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub tone: Tone,
}

fn segment(text: impl Into<String>, tone: Tone) -> Segment {
    Segment {
        text: text.into(),
        tone,
    }
}

/// An entry in words: a prefix (time, who) and the text, which wraps under
/// the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryText {
    pub prefix: Vec<Segment>,
    pub text: String,
    pub tone: Tone,
}

impl EntryText {
    /// The text as rows `width` columns wide, with the indent of every row
    /// after the first (the first follows the prefix).
    pub fn rows(&self, width: usize) -> (usize, Vec<String>) {
        let prefix_width: usize = self.prefix.iter().map(|s| s.text.width()).sum();
        let indent = prefix_width.min(width / 2);
        let rows = wrap(
            &self.text,
            width.saturating_sub(prefix_width),
            width.saturating_sub(indent),
        );
        (indent, rows)
    }
}

/// How an entry reads for the user `own_nick`, `width` columns wide (the
/// "while you were away" rule spans the width).
pub fn entry_text(entry: &Entry, own_nick: &str, utc_offset_secs: i32, width: usize) -> EntryText {
    let time = segment(format!("{} ", clock(entry.ts, utc_offset_secs)), Tone::Dim);
    let system = |text: String, tone: Tone| EntryText {
        prefix: vec![time.clone(), segment("-- ", Tone::Dim)],
        text,
        tone,
    };
    match &entry.body {
        Body::Chat {
            from,
            text,
            own,
            delivery,
            mention,
            broadcast,
            ..
        } => {
            let tone = match delivery {
                Delivery::Pending(_) => Tone::Pending,
                Delivery::Failed => Tone::Failed,
                Delivery::Done if *mention && !*own => Tone::Mention,
                Delivery::Done => Tone::Plain,
            };
            chat_text(time, from, text, *own, *broadcast, tone)
        }
        Body::Presence {
            event,
            nick,
            new_nick,
            reason,
        } => {
            let reason = reason
                .as_deref()
                .map(|r| format!(" ({})", sanitize(r)))
                .unwrap_or_default();
            let (arrow, what) = match event {
                PresenceEvent::Join => ("-->", format!("{nick} joined")),
                PresenceEvent::Part => ("<--", format!("{nick} left{reason}")),
                PresenceEvent::Quit => ("<--", format!("{nick} quit{reason}")),
                PresenceEvent::Nick => (
                    "---",
                    format!(
                        "{nick} is now known as {}",
                        new_nick.as_deref().unwrap_or("?")
                    ),
                ),
            };
            EntryText {
                prefix: vec![time, segment(format!("{arrow} "), Tone::Dim)],
                text: what,
                tone: Tone::Dim,
            }
        }
        Body::Away { count } => away_rule(*count, time, width),
        Body::Error { code, message } => EntryText {
            prefix: vec![time, segment("✗ ", Tone::Error)],
            text: format!("{} ({code})", sanitize(message)),
            tone: Tone::Error,
        },
        Body::RoomEvent(note) => system(sanitize(&note.describe(own_nick)), Tone::Highlight),
        body => {
            let (text, tone) = system_text(body);
            system(text, tone)
        }
    }
}

/// A chat message: time, `[all]` for a broadcast, `<nick>`, the text.
fn chat_text(
    time: Segment,
    from: &str,
    text: &str,
    own: bool,
    broadcast: bool,
    tone: Tone,
) -> EntryText {
    let mut prefix = vec![time];
    if broadcast {
        prefix.push(segment("[all] ", Tone::Broadcast));
    }
    let nick = Tone::Nick {
        nick: from.to_string(),
        own,
    };
    prefix.push(segment(format!("<{}> ", sanitize(from)), nick));
    EntryText {
        prefix,
        text: sanitize(text),
        tone,
    }
}

/// "── 3 messages while you were away ──" across `width` columns.
fn away_rule(count: usize, time: Segment, width: usize) -> EntryText {
    let what = if count == 1 {
        "1 message".to_string()
    } else {
        format!("{count} messages")
    };
    let text = format!(" {what} while you were away ");
    // A rule across the conversation, the words in its middle.
    let free = width.saturating_sub(time.text.width() + text.width());
    let left = free / 2;
    let line = if left >= 2 {
        format!("{}{text}{}", "─".repeat(left), "─".repeat(free - left))
    } else {
        format!("──{}──", text.trim())
    };
    EntryText {
        prefix: vec![time],
        text: line,
        tone: Tone::Highlight,
    }
}

/// The words of the entries shown as `-- text` lines.
fn system_text(body: &Body) -> (String, Tone) {
    match body {
        Body::Joined { members } => (
            format!(
                "you joined ({} here: {})",
                members.len(),
                members.join(", ")
            ),
            Tone::Listing,
        ),
        Body::Users { room, users } => {
            let whom = match room {
                Some(room) => format!("in {room}"),
                None => "online".to_string(),
            };
            let text = format!("users {whom} ({}): {}", users.len(), users.join(", "));
            (text, Tone::Listing)
        }
        Body::Rooms(rooms) => {
            let list: Vec<String> = rooms
                .iter()
                .map(|r| match &r.topic {
                    Some(t) => format!("{} ({}, {})", r.name, r.members, sanitize(t)),
                    None => format!("{} ({})", r.name, r.members),
                })
                .collect();
            let text = if list.is_empty() {
                "no rooms yet: /join #name creates one".to_string()
            } else {
                format!("rooms ({}): {}", list.len(), list.join(", "))
            };
            (text, Tone::Listing)
        }
        Body::Resumed { missed, more } => {
            let mut text = match missed {
                0 => "session resumed: nothing missed".to_string(),
                1 => "session resumed: 1 missed message".to_string(),
                n => format!("session resumed: {n} missed messages"),
            };
            if *more {
                text.push_str(" (more were missed than the server sends at once)");
            }
            (text, Tone::Status)
        }
        Body::Status(text) => (sanitize(text), Tone::Status),
        Body::Info(text) => (sanitize(text), Tone::Info),
        Body::FileOffer(file) => (offer_text(file), Tone::Offer),
        Body::Transfer(t) => (transfer_text(t), Tone::Offer),
        Body::Invitation(invitation) => (
            format!(
                "{} invites you to the private room {room}: /accept {room} or /decline {room}",
                sanitize(&invitation.from),
                room = invitation.room,
            ),
            Tone::Offer,
        ),
        Body::RoomInfo(info) => (room_details(info), Tone::Listing),
        // Drawn by `entry_text` itself.
        Body::Chat { .. }
        | Body::Presence { .. }
        | Body::Away { .. }
        | Body::Error { .. }
        | Body::RoomEvent(_) => (String::new(), Tone::Plain),
    }
}

/// A file offered to us, and how to take or refuse it.
fn offer_text(file: &chat_protocol::files::FileInfo) -> String {
    let short = short_id(&file.transfer);
    format!(
        "{} offers {} ({}): /download {short} or /refuse {short}",
        sanitize(&file.from),
        sanitize(&file.name),
        human_bytes(file.size as f64),
    )
}

/// A transfer's progress or end.
fn transfer_text(t: &crate::entry::TransferNote) -> String {
    let size = human_bytes(t.total as f64);
    match (t.finished, t.direction) {
        (true, Direction::Upload) => format!("sent {} ({size})", sanitize(&t.name)),
        (true, Direction::Download) => format!(
            "received {} ({size}), saved as {}",
            sanitize(&t.name),
            sanitize(&t.path)
        ),
        (false, _) => format!(
            "{}: {} of {size}",
            sanitize(&t.name),
            human_bytes(t.done as f64)
        ),
    }
}

/// `/info` of a private room in one line.
fn room_details(info: &crate::entry::RoomDetails) -> String {
    let mut text = format!(
        "{}: owner {}; moderators: {}; members ({}): {}; here now: {}",
        info.room,
        info.owner,
        or_none(&info.moderators),
        info.members.len(),
        or_none(&info.members),
        or_none(&info.present)
    );
    if let Some(invited) = &info.invited {
        text.push_str(&format!("; invited: {}", or_none(invited)));
    }
    if let Some(banned) = &info.banned {
        text.push_str(&format!("; banned: {}", or_none(banned)));
    }
    if let Some(topic) = &info.topic {
        text.push_str(&format!("; topic: {}", sanitize(topic)));
    }
    text
}

/// A list of names, or "none".
fn or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Rows an entry takes at `width` columns.
pub fn entry_rows(entry: &Entry, own_nick: &str, utc_offset_secs: i32, width: usize) -> usize {
    entry_text(entry, own_nick, utc_offset_secs, width)
        .rows(width)
        .1
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_respects_widths_and_newlines() {
        assert_eq!(wrap("hello world foo", 11, 11), ["hello world", "foo"]);
        assert_eq!(wrap("a\nb", 5, 5), ["a", "b"]);
        assert_eq!(wrap("abcdefgh", 3, 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("日本語です", 4, 4), ["日本", "語で", "す"]);
        assert_eq!(wrap("", 5, 5), [""]);
    }

    #[test]
    fn clock_is_local() {
        assert_eq!(clock(0, 0), "00:00");
        assert_eq!(clock(3_600_000 + 61_000, 0), "01:01");
        assert_eq!(clock(0, -3600), "23:00");
        assert_eq!(clock(0, 5 * 3600 + 1800), "05:30");
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(sanitize("a\u{1b}[2Jb\tc"), "a\u{fffd}[2Jb c");
    }
}
