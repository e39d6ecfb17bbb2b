//! The input line: editing by grapheme (so accents, CJK and emoji move and
//! delete as one), history, and the horizontal window that keeps the cursor
//! visible on a narrow screen.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Lines kept in the input history.
pub const HISTORY_LIMIT: usize = 500;

/// An editable line with history.
#[derive(Debug, Default, Clone)]
pub struct Editor {
    text: String,
    /// Byte offset of the cursor, always on a grapheme boundary.
    cursor: usize,
    /// Lines entered, oldest first.
    history: Vec<String>,
    /// Position while browsing the history (`None`: editing the draft).
    browsing: Option<usize>,
    /// What was being typed before browsing started, restored on the way back.
    draft: String,
}

impl Editor {
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's byte offset.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the whole line, cursor at the end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.text.len();
    }

    /// Replaces `start..cursor` by `with` (completion).
    pub fn replace_before_cursor(&mut self, start: usize, with: &str) {
        self.text.replace_range(start..self.cursor, with);
        self.cursor = start + with.len();
    }

    pub fn insert(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    pub fn left(&mut self) {
        self.cursor = self.prev_boundary();
    }

    pub fn right(&mut self) {
        self.cursor = self.next_boundary();
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Deletes the grapheme before the cursor.
    pub fn backspace(&mut self) {
        let start = self.prev_boundary();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Deletes the grapheme under the cursor.
    pub fn delete(&mut self) {
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Start of the word before the cursor (skipping spaces first).
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8())
    }

    /// Ctrl-W: deletes the word before the cursor.
    pub fn delete_word(&mut self) {
        let start = self.word_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U: deletes everything before the cursor.
    pub fn delete_to_start(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Ctrl-K: deletes everything after the cursor.
    pub fn delete_to_end(&mut self) {
        self.text.truncate(self.cursor);
    }

    /// Alt-B / Ctrl-Left: to the start of the previous word.
    pub fn word_left(&mut self) {
        self.cursor = self.word_start();
    }

    /// Alt-F / Ctrl-Right: past the end of the next word.
    pub fn word_right(&mut self) {
        let after = &self.text[self.cursor..];
        let skip_space = after.len() - after.trim_start().len();
        let rest = &after[skip_space..];
        let word = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.cursor += skip_space + word;
    }

    /// Takes the line (Enter), remembering it in the history unless `secret`.
    pub fn take(&mut self, secret: bool) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !secret && !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LIMIT {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Up: the previous history entry.
    pub fn history_prev(&mut self) {
        let pos = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(pos);
        self.set(&self.history[pos].clone());
    }

    /// Down: the next history entry, then the draft.
    pub fn history_next(&mut self) {
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => {
                self.browsing = Some(i + 1);
                self.set(&self.history[i + 1].clone());
            }
            Some(_) => {
                self.browsing = None;
                let draft = std::mem::take(&mut self.draft);
                self.set(&draft);
            }
        }
    }

    /// The part of the line to show in `width` columns and the cursor's
    /// column in it, scrolling horizontally so the cursor stays visible.
    pub fn window(&self, width: usize) -> (String, usize) {
        let width = width.max(2);
        let before = &self.text[..self.cursor];
        let cursor_col = before.width();
        // Keep the cursor inside the window, leaving a column for it.
        let mut skip_cols = cursor_col.saturating_sub(width - 1);
        let mut shown = String::new();
        let mut col = 0;
        let mut cursor_in_window = 0;
        for (i, g) in self.text.grapheme_indices(true) {
            let w = g.width();
            if skip_cols > 0 {
                skip_cols = skip_cols.saturating_sub(w);
                if i + g.len() <= self.cursor {
                    continue;
                }
            }
            if i == self.cursor {
                cursor_in_window = col;
            }
            if col + w > width {
                break;
            }
            shown.push_str(g);
            col += w;
        }
        if self.cursor == self.text.len() {
            cursor_in_window = col.min(width - 1);
        }
        (shown, cursor_in_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        e.insert(s);
        e
    }

    #[test]
    fn moves_and_deletes_by_grapheme() {
        // "é" as e + combining accent, a CJK ideograph, and a family emoji.
        let mut e = typed("ae\u{301}世👨‍👩‍👧");
        e.backspace();
        assert_eq!(e.text(), "ae\u{301}世");
        e.left();
        e.backspace();
        assert_eq!(e.text(), "a世");
        e.home();
        e.right();
        e.insert("ñ");
        assert_eq!(e.text(), "añ世");
        e.delete();
        assert_eq!(e.text(), "añ");
        e.end();
        assert_eq!(e.cursor(), e.text().len());
    }

    #[test]
    fn word_and_line_kills() {
        let mut e = typed("hello big  world");
        e.delete_word();
        assert_eq!(e.text(), "hello big  ");
        e.delete_word();
        assert_eq!(e.text(), "hello ");
        e.insert("there friend");
        e.word_left();
        e.delete_to_end();
        assert_eq!(e.text(), "hello there ");
        e.word_left();
        e.delete_to_start();
        assert_eq!((e.text(), e.cursor()), ("there ", 0));
        e.word_right();
        assert_eq!(e.cursor(), 5);
    }

    #[test]
    fn history_keeps_the_draft() {
        let mut e = Editor::default();
        for line in ["one", "two", "two", "three"] {
            e.insert(line);
            e.take(false);
        }
        e.insert("secret");
        e.take(true);
        e.insert("draft");
        e.history_prev();
        assert_eq!(e.text(), "three");
        e.history_prev();
        e.history_prev();
        e.history_prev();
        assert_eq!(e.text(), "one", "duplicates and secrets are not kept");
        e.history_next();
        assert_eq!(e.text(), "two");
        e.history_next();
        e.history_next();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn window_follows_the_cursor_over_wide_characters() {
        let e = typed("日本語のテキスト");
        let (shown, col) = e.window(6);
        assert!(shown.ends_with("スト") || shown.ends_with('ト'), "{shown}");
        assert!(col <= 5);
        let mut e = typed("abc");
        e.home();
        assert_eq!(e.window(10), ("abc".to_string(), 0));
        e.end();
        assert_eq!(e.window(10), ("abc".to_string(), 3));
    }
}
