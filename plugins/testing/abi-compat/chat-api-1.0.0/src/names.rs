//! Nickname and room-name rules, shared by server and clients so that a client
//! can check input before sending it.
//!
//! Both are ASCII and compared case-insensitively: `Alice` and `alice` are the
//! same user, `#Rust` and `#rust` the same room. ASCII keeps look-alike
//! characters from impersonating someone.

/// Longest nickname, in bytes.
pub const MAX_NICK_LEN: usize = 32;
/// Longest room name, in bytes, `#` included.
pub const MAX_ROOM_LEN: usize = 64;

/// Why a name was refused (the text is shown to users).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("a nickname must be 1 to {MAX_NICK_LEN} characters: a letter, then letters, digits, '_' or '-'")]
    BadNick,
    #[error("a room name must start with '#' and have 1 to {} more characters: letters, digits, '_', '-' or '.'", MAX_ROOM_LEN - 1)]
    BadRoom,
}

/// Checks a nickname: `^[A-Za-z][A-Za-z0-9_-]{0,31}$`.
pub fn validate_nick(nick: &str) -> Result<(), NameError> {
    let bytes = nick.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_NICK_LEN
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::BadNick)
    }
}

/// Checks a room name: `^#[A-Za-z0-9_.-]{1,63}$`.
pub fn validate_room(room: &str) -> Result<(), NameError> {
    let bytes = room.as_bytes();
    let ok = bytes.len() >= 2
        && bytes.len() <= MAX_ROOM_LEN
        && bytes[0] == b'#'
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NameError::BadRoom)
    }
}

/// The key under which a name is unique (ASCII lower case).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        for good in ["a", "Alice", "bob_2", "x-y", &"n".repeat(32)] {
            assert_eq!(validate_nick(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "_a",
            "a b",
            "é",
            "a\n",
            &"n".repeat(33),
            "a;DROP",
        ] {
            assert_eq!(validate_nick(bad), Err(NameError::BadNick), "{bad:?}");
        }
    }

    #[test]
    fn rooms() {
        for good in ["#a", "#rust-lang", "#v1.2", "#_"] {
            assert_eq!(validate_room(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "#",
            "rust",
            "# a",
            "#é",
            &format!("#{}", "r".repeat(64)),
        ] {
            assert_eq!(validate_room(bad), Err(NameError::BadRoom), "{bad:?}");
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold("AliCe"), fold("alice"));
        assert_eq!(fold("#Rust"), "#rust");
    }
}
