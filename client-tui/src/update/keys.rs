//! Keys, the mouse wheel and tab completion in the full-screen client.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::{history, quit, submit};
use crate::command::Command;
use crate::complete::{self, Cycle, Sources};
use crate::layout::{help_rows, help_width};
use crate::net::NetCommand;
use crate::state::{Body, ConvKind, HelpView, State};

/// Rows one mouse-wheel step scrolls.
const WHEEL_ROWS: usize = 3;

pub(super) fn on_mouse(state: &mut State, mouse: MouseEvent, out: &mut Vec<NetCommand>) {
    match mouse.kind {
        MouseEventKind::ScrollUp => scroll_up(state, WHEEL_ROWS, out),
        MouseEventKind::ScrollDown => scroll_down(state, WHEEL_ROWS),
        _ => {}
    }
}

/// Scrolls towards older entries; reaching the top loads the history page
/// before it (when the server keeps history).
fn scroll_up(state: &mut State, rows: usize, out: &mut Vec<NetCommand>) {
    let width = state.conversation_width(state.current);
    let total = state.total_rows(state.current, width);
    let max = total.saturating_sub(state.page_rows());
    let conv = state.current_conv_mut();
    conv.scroll = (conv.scroll + rows).min(max);
    if conv.scroll == max {
        history::at_top(state, out);
    }
}

fn scroll_down(state: &mut State, rows: usize) {
    let conv = state.current_conv_mut();
    conv.scroll = conv.scroll.saturating_sub(rows);
}

pub(super) fn on_key(state: &mut State, key: KeyEvent, out: &mut Vec<NetCommand>) {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    if !matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
        state.completion = None;
    }
    if help_key(state, key.code) {
        return;
    }
    let ed = &mut state.editor;
    match key.code {
        KeyCode::Enter => {
            state.help = None;
            let secret = state.prompt.is_some();
            let line = state.editor.take(secret);
            submit(state, line, out);
        }
        KeyCode::Esc if state.prompt.is_some() => {
            state.prompt = None;
            state.editor.take(true);
            let conv = state.current;
            state.note(conv, Body::Info("password entry cancelled".into()));
        }
        KeyCode::F(2) => state.transfers.shown = !state.transfers.shown,
        KeyCode::Char('c') if ctrl => quit(state, None, out),
        KeyCode::Char('d') if ctrl && ed.is_empty() => quit(state, None, out),
        KeyCode::Char('a') if ctrl => ed.home(),
        KeyCode::Char('e') if ctrl => ed.end(),
        KeyCode::Char('b') if ctrl => ed.left(),
        KeyCode::Char('f') if ctrl => ed.right(),
        KeyCode::Char('b') if alt => ed.word_left(),
        KeyCode::Char('f') if alt => ed.word_right(),
        KeyCode::Char('w') if ctrl => ed.delete_word(),
        KeyCode::Backspace if alt || ctrl => ed.delete_word(),
        KeyCode::Char('u') if ctrl => ed.delete_to_start(),
        KeyCode::Char('k') if ctrl => ed.delete_to_end(),
        KeyCode::Char('n') if ctrl => next_conv(state, 1),
        KeyCode::Char('p') if ctrl => next_conv(state, -1),
        KeyCode::Right if alt => next_conv(state, 1),
        KeyCode::Left if alt => next_conv(state, -1),
        KeyCode::Char(c @ '0'..='9') if alt => {
            let n = c.to_digit(10).expect("a digit") as usize;
            let index = if n == 0 { 9 } else { n - 1 };
            state.switch_to(index);
        }
        KeyCode::Left if ctrl => ed.word_left(),
        KeyCode::Right if ctrl => ed.word_right(),
        KeyCode::Char(c) if !ctrl => ed.insert(c.encode_utf8(&mut [0; 4])),
        KeyCode::Backspace => ed.backspace(),
        KeyCode::Delete => ed.delete(),
        KeyCode::Left => ed.left(),
        KeyCode::Right => ed.right(),
        KeyCode::Home => ed.home(),
        KeyCode::End if ctrl || alt || ed.cursor() == ed.text().len() => {
            state.current_conv_mut().scroll = 0
        }
        KeyCode::End => ed.end(),
        KeyCode::Up if state.prompt.is_none() => ed.history_prev(),
        KeyCode::Down if state.prompt.is_none() => ed.history_next(),
        KeyCode::PageUp => scroll_up(state, state.page_rows().saturating_sub(1).max(1), out),
        KeyCode::PageDown => scroll_down(state, state.page_rows().saturating_sub(1).max(1)),
        KeyCode::Tab if state.prompt.is_none() => complete(state, 1),
        KeyCode::BackTab if state.prompt.is_none() => complete(state, -1),
        _ => {}
    }
}

/// Keys for the help view: F1 shows or hides it; while shown, Esc closes it
/// and PageUp/PageDown scroll it. Whether the key was used.
fn help_key(state: &mut State, code: KeyCode) -> bool {
    let page = state.page_rows().saturating_sub(3).max(1);
    match (code, state.help.as_mut()) {
        (KeyCode::F(1), Some(_)) | (KeyCode::Esc, Some(_)) => state.help = None,
        (KeyCode::F(1), None) => {
            let lines = Command::help_lines(None).unwrap_or_default();
            state.help = Some(HelpView { lines, scroll: 0 });
        }
        (KeyCode::PageUp, Some(help)) => help.scroll = help.scroll.saturating_sub(page),
        (KeyCode::PageDown, Some(help)) => {
            let width = help_width(state.viewport.0);
            let rows = help_rows(&help.lines, width).len();
            help.scroll = (help.scroll + page).min(rows.saturating_sub(page));
        }
        _ => return false,
    }
    true
}

fn next_conv(state: &mut State, step: isize) {
    let n = state.convs.len() as isize;
    let index = (state.current as isize + step).rem_euclid(n) as usize;
    state.switch_to(index);
}

/// Tab: start a completion, or move to the next candidate.
fn complete(state: &mut State, step: isize) {
    if let Some(cycle) = &mut state.completion {
        let n = cycle.candidates.len() as isize;
        cycle.index = (cycle.index as isize + step).rem_euclid(n) as usize;
        let start = cycle.start;
        let with = cycle.candidates[cycle.index].clone();
        state.editor.replace_before_cursor(start, &with);
        return;
    }
    let line = state.editor.text().to_string();
    let (start, word) = complete::word_before(&line, state.editor.cursor());
    let conv = state.current_conv();
    let mut nearby: Vec<&str> = conv.members.iter().map(String::as_str).collect();
    if conv.kind == ConvKind::Direct {
        nearby.push(&conv.name);
    }
    let mut others: Vec<&str> = state.known_users.iter().map(String::as_str).collect();
    others.extend(
        state
            .convs
            .iter()
            .filter(|c| c.kind == ConvKind::Direct)
            .map(|c| c.name.as_str()),
    );
    let mut rooms: Vec<&str> = state
        .convs
        .iter()
        .filter(|c| c.kind == ConvKind::Room)
        .map(|c| c.name.as_str())
        .collect();
    rooms.extend(state.known_rooms.iter().map(String::as_str));
    rooms.extend(state.invitations.iter().map(|i| i.room.as_str()));
    let sources = Sources {
        nearby_nicks: nearby,
        other_nicks: others,
        rooms,
        own_nick: &state.nick,
    };
    let candidates = complete::candidates(&line, start, word, &sources);
    if candidates.is_empty() {
        return;
    }
    let index = if step < 0 { candidates.len() - 1 } else { 0 };
    state
        .editor
        .replace_before_cursor(start, &candidates[index]);
    if candidates.len() > 1 {
        state.completion = Some(Cycle {
            start,
            candidates,
            index,
        });
    }
}
