//! Tab completion of commands, room names and nicknames. Repeated Tab cycles
//! through the candidates; any other key accepts the current one.

use chat_protocol::names::fold;

use crate::command;

/// What completion may draw on.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    /// Members of the current room, or the other user of a direct
    /// conversation, first: they are the most likely.
    pub nearby_nicks: Vec<&'a str>,
    /// Everyone else we know of.
    pub other_nicks: Vec<&'a str>,
    pub rooms: Vec<&'a str>,
    /// Our own nickname, never offered.
    pub own_nick: &'a str,
}

/// A completion in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Byte offset in the line where the completed word starts.
    pub start: usize,
    pub candidates: Vec<String>,
    /// The candidate now in the line.
    pub index: usize,
}

/// The word before the cursor: its start offset and text.
pub fn word_before(line: &str, cursor: usize) -> (usize, &str) {
    let before = &line[..cursor];
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    (start, &before[start..])
}

/// Commands whose first argument is a room.
const ROOM_COMMANDS: &[&str] = &[
    "join", "part", "leave", "info", "who", "users", "accept", "decline", "delete", "close",
];

/// Whether `line` starts with a command whose first argument is a room,
/// and the cursor is in that argument.
fn takes_room(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let Some(name) = words.next().and_then(|w| w.strip_prefix('/')) else {
        return false;
    };
    let canonical = command::spec(&name.to_ascii_lowercase()).map(|s| s.name);
    words.count() <= 1 && canonical.is_some_and(|n| ROOM_COMMANDS.contains(&n))
}

/// Candidates replacing the word that starts at `start` (each with the
/// suffix to insert: a space, or `": "` after a nickname opening the line).
pub fn candidates(line: &str, start: usize, word: &str, sources: &Sources) -> Vec<String> {
    let at_line_start = start == 0;
    if at_line_start && word.starts_with('/') {
        return command::names_starting_with(&word[1..].to_ascii_lowercase())
            .into_iter()
            .map(|n| format!("/{n} "))
            .collect();
    }
    let key = fold(word);
    // After a command that takes a room, the `#` may be left out.
    let room_wanted = !at_line_start && takes_room(line) && !word.is_empty();
    if word.starts_with('#') || room_wanted {
        let key = if word.starts_with('#') {
            key
        } else {
            format!("#{key}")
        };
        let mut out: Vec<String> = Vec::new();
        for room in &sources.rooms {
            if fold(room).starts_with(&key) && !out.iter().any(|o| fold(o.trim_end()) == fold(room))
            {
                out.push(format!("{room} "));
            }
        }
        return out;
    }
    // After `/msg ` or `/query `, or anywhere in text: nicknames.
    let suffix = if at_line_start && !line.starts_with('/') {
        ": "
    } else {
        " "
    };
    let mut out: Vec<String> = Vec::new();
    let own = fold(sources.own_nick);
    for nick in sources.nearby_nicks.iter().chain(&sources.other_nicks) {
        let folded = fold(nick);
        if folded.starts_with(&key)
            && folded != own
            && !out
                .iter()
                .any(|o| fold(o.trim_end_matches([':', ' '])) == folded)
        {
            out.push(format!("{nick}{suffix}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources<'static> {
        Sources {
            nearby_nicks: vec!["bob", "Bea", "alice"],
            other_nicks: vec!["bertrand", "BOB"],
            rooms: vec!["#rust", "#ruby", "#go"],
            own_nick: "alice",
        }
    }

    fn complete(line: &str) -> Vec<String> {
        let (start, word) = word_before(line, line.len());
        candidates(line, start, word, &sources())
    }

    #[test]
    fn commands_at_line_start() {
        assert_eq!(complete("/jo"), ["/join "]);
        assert_eq!(complete("/pa"), ["/part ", "/passwd "]);
        assert_eq!(complete("/Q"), ["/query ", "/quit "]);
        assert!(
            complete("hello /jo").is_empty(),
            "only at the start of the line"
        );
    }

    #[test]
    fn rooms_and_nicks() {
        assert_eq!(complete("/join #ru"), ["#rust ", "#ruby "]);
        assert_eq!(
            complete("b"),
            ["bob: ", "Bea: ", "bertrand: "],
            "nearby first, no duplicates"
        );
        assert_eq!(complete("hi b"), ["bob ", "Bea ", "bertrand "]);
        assert_eq!(complete("/msg BE"), ["Bea ", "bertrand "]);
        assert!(complete("al").is_empty(), "never offers our own nick");
    }

    #[test]
    fn rooms_after_room_commands_without_their_hash() {
        assert_eq!(complete("/join ru"), ["#rust ", "#ruby "]);
        assert_eq!(complete("/part g"), ["#go "]);
        assert_eq!(
            complete("/op g"),
            Vec::<String>::new(),
            "a nickname is wanted there"
        );
        assert_eq!(complete("/msg b"), ["bob ", "Bea ", "bertrand "]);
    }

    #[test]
    fn word_before_handles_multibyte_text() {
        let line = "ça va Bé";
        assert_eq!(word_before(line, line.len()), (7, "Bé"));
        assert_eq!(word_before("", 0), (0, ""));
    }
}
