//! `draw(state, frame)`: renders the state and changes nothing. Layout:
//! sidebar | conversation | members (rooms, wide screens), then the status
//! bar and the input line. The transfers view (F2, `/transfers`), when
//! shown, sits below them across the whole width.

use chat_protocol::names::fold;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use crate::layout::{entry_text, sanitize, shows_members, sidebar_width, Tone, MEMBERS_WIDTH};
use crate::progress::TransferBar;
use crate::state::{ConvKind, Conversation, Entry, Link, State};
use crate::transfers::TransferStatus;

/// Put before a private room's name in the sidebar and its header.
pub const PRIVATE_MARK: &str = "🔒";
/// Colours nicknames are drawn in; a nickname always gets the same one.
const NICK_COLOURS: &[Color] = &[
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// The colour of a nickname (stable across runs: FNV-1a of the folded name).
pub fn nick_colour(nick: &str) -> Color {
    let hash = fold(nick).bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    NICK_COLOURS[hash as usize % NICK_COLOURS.len()]
}

/// An entry as styled rows `width` columns wide.
fn entry_lines(state: &State, entry: &Entry, width: usize) -> Vec<Line<'static>> {
    let text = entry_text(entry, &state.nick, state.utc_offset_secs, width);
    let prefix: Vec<Span<'static>> = text
        .prefix
        .iter()
        .map(|s| Span::styled(s.text.clone(), style_of(&s.tone)))
        .collect();
    let text_style = style_of(&text.tone);
    let (indent, rows) = text.rows(width);
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut spans = if i == 0 {
                prefix.clone()
            } else {
                vec![Span::raw(" ".repeat(indent))]
            };
            spans.push(Span::styled(row, text_style));
            Line::from(spans)
        })
        .collect()
}

/// The style of each kind of text.
fn style_of(tone: &Tone) -> Style {
    let colour = |c| Style::default().fg(c);
    match tone {
        Tone::Dim | Tone::Pending => colour(Color::DarkGray),
        Tone::Broadcast => colour(Color::LightRed),
        Tone::Nick { nick, own } => {
            let style = colour(nick_colour(nick)).add_modifier(Modifier::BOLD);
            if *own {
                style.add_modifier(Modifier::UNDERLINED)
            } else {
                style
            }
        }
        Tone::Plain => Style::default(),
        Tone::Failed => colour(Color::Red).add_modifier(Modifier::CROSSED_OUT),
        Tone::Mention => colour(Color::Yellow).add_modifier(Modifier::BOLD),
        Tone::Error => colour(Color::Red),
        Tone::Listing => colour(Color::Cyan),
        Tone::Status => colour(Color::LightBlue),
        Tone::Info => colour(Color::Gray),
        Tone::Offer => colour(Color::Magenta),
        Tone::Highlight => colour(Color::Yellow),
    }
}

/// Renders the whole screen.
pub fn draw(state: &State, frame: &mut Frame) {
    let area = frame.area();
    let [main, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let main = if state.transfers.shown {
        let rows = (state.transfers.list.len().max(1) + 1) as u16;
        let height = rows.min(main.height / 2).max(2).min(main.height);
        let [top, bottom] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(height)]).areas(main);
        draw_transfers(state, frame, bottom);
        top
    } else {
        main
    };
    let conv = state.current_conv();
    let members_width = if shows_members(area.width, conv.kind == ConvKind::Room) {
        MEMBERS_WIDTH
    } else {
        0
    };
    let [sidebar, conversation, members] = Layout::horizontal([
        Constraint::Length(sidebar_width(area.width)),
        Constraint::Min(10),
        Constraint::Length(members_width),
    ])
    .areas(main);
    draw_sidebar(state, frame, sidebar);
    draw_conversation(state, frame, conversation);
    if members_width > 0 {
        draw_members(conv, frame, members);
    }
    if let Some(help) = &state.help {
        let over = Rect {
            width: conversation.width + members.width,
            ..conversation
        };
        crate::help_view::draw(help, frame, over);
    }
    draw_status(state, frame, status);
    draw_input(state, frame, input);
}

/// The transfers view: one row per transfer, newest last, each with its
/// state, short id and a progress bar with rate and time left.
fn draw_transfers(state: &State, frame: &mut Frame, area: Rect) {
    let list = &state.transfers.list;
    let active = list.iter().filter(|t| t.status.is_open()).count();
    let title = format!(
        " transfers: {active} active, {} in all (F2 hides) ",
        list.len()
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(title)
        .border_style(Style::default().fg(Color::DarkGray));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if list.is_empty() {
        frame.render_widget(
            Paragraph::new("no transfers yet: /send NICK|#ROOM PATH, /download [ID]")
                .style(Style::default().fg(Color::DarkGray)),
            inner,
        );
        return;
    }
    let rows = usize::from(inner.height);
    for (i, t) in list
        .iter()
        .skip(list.len().saturating_sub(rows))
        .enumerate()
    {
        let row = Rect {
            y: inner.y + i as u16,
            height: 1,
            ..inner
        };
        let (word, colour) = match &t.status {
            TransferStatus::Preparing => ("preparing", Color::Gray),
            TransferStatus::Active => ("active", Color::Green),
            TransferStatus::Interrupted => ("interrupted", Color::Yellow),
            TransferStatus::Done => ("done", Color::Cyan),
            TransferStatus::Failed(_) => ("failed", Color::Red),
            TransferStatus::Cancelled => ("cancelled", Color::DarkGray),
        };
        let head = format!("{word:<11} {:<8} ", t.short_id());
        let head_width = (head.width() as u16).min(row.width);
        frame.render_widget(
            Paragraph::new(head).style(Style::default().fg(colour)),
            Rect {
                width: head_width,
                ..row
            },
        );
        let label = sanitize(&t.label());
        let bar = TransferBar {
            label: &label,
            done: t.done,
            total: t.total,
            bytes_per_sec: if t.status == TransferStatus::Active {
                t.bytes_per_sec
            } else {
                0.0
            },
        };
        frame.render_widget(
            bar,
            Rect {
                x: row.x + head_width,
                width: row.width - head_width,
                ..row
            },
        );
    }
}

fn draw_sidebar(state: &State, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width.saturating_sub(1));
    let lines: Vec<Line> = state
        .convs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let number = format!("{:>2} ", i + 1);
            let unread = if c.unread > 0 && i != state.current {
                format!(" {}", c.unread)
            } else {
                String::new()
            };
            let name_room = width.saturating_sub(number.width() + unread.width());
            let shown_name = match c.kind {
                ConvKind::Server => "server".to_string(),
                _ if c.private => format!("{PRIVATE_MARK}{}", c.name),
                _ => c.name.clone(),
            };
            let name = truncate(&shown_name, name_room);
            let pad = " ".repeat(name_room.saturating_sub(name.width()));
            let mut style = Style::default();
            if c.kind == ConvKind::Room && (!c.joined || c.closed.is_some()) {
                style = style.fg(Color::DarkGray);
            }
            if c.unread > 0 {
                style = style.fg(Color::White).add_modifier(Modifier::BOLD);
            }
            if c.mentioned {
                style = style
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD);
            }
            if i == state.current {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Line::from(vec![
                Span::styled(number, Style::default().fg(Color::DarkGray)),
                Span::styled(format!("{name}{pad}{unread}"), style),
            ])
        })
        .collect();
    let block = Block::default()
        .borders(Borders::RIGHT)
        .border_style(Style::default().fg(Color::DarkGray));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `1 member`, `2 members`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut col = 0;
    for g in text.graphemes(true) {
        if col + g.width() + 1 > width {
            break;
        }
        out.push_str(g);
        col += g.width();
    }
    out.push('…');
    out
}

fn draw_conversation(state: &State, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let conv = state.current_conv();
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let width = usize::from(body.width).max(1);
    let height = usize::from(body.height);
    // Only the newest entries that can be seen are laid out.
    let needed = height + conv.scroll;
    let mut rows: Vec<Line> = Vec::new();
    for entry in conv.entries.iter().rev() {
        rows.extend(entry_lines(state, entry, width).into_iter().rev());
        if rows.len() >= needed {
            break;
        }
    }
    rows.reverse();
    let max_scroll = rows.len().saturating_sub(height);
    let scroll = conv.scroll.min(max_scroll);
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    let visible: Vec<Line> = rows[start..end].to_vec();

    let mark = if conv.private { PRIVATE_MARK } else { "" };
    let mut title = vec![Span::styled(
        format!(
            " {mark}{} ",
            if conv.kind == ConvKind::Server {
                "server"
            } else {
                &conv.name
            }
        ),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    match conv.kind {
        ConvKind::Room if conv.closed.is_some() => title.push(Span::styled(
            format!(
                "closed: {}",
                sanitize(conv.closed.as_deref().unwrap_or_default())
            ),
            Style::default().fg(Color::LightRed),
        )),
        ConvKind::Room if conv.joined => {
            let private = if conv.private { ", private" } else { "" };
            title.push(Span::raw(format!(
                "{}{private}",
                plural(conv.members.len(), "member")
            )));
            if let Some(topic) = &conv.topic {
                title.push(Span::styled(
                    format!(" | {}", sanitize(topic)),
                    Style::default().fg(Color::LightYellow),
                ));
            }
        }
        ConvKind::Room => title.push(Span::styled(
            "not joined",
            Style::default().fg(Color::DarkGray),
        )),
        ConvKind::Direct => title.push(Span::raw("direct messages")),
        ConvKind::Server => title.push(Span::raw("status, broadcasts and replies")),
    }
    if scroll > 0 {
        title.push(Span::styled(
            format!("  ↑ scrolled {scroll} rows (End: back to the bottom)"),
            Style::default().fg(Color::Yellow),
        ));
    }
    if conv.history_pending {
        title.push(Span::styled(
            "  loading older messages…",
            Style::default().fg(Color::Yellow),
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(title))
            .style(Style::default().bg(Color::DarkGray).fg(Color::White)),
        title_area,
    );
    frame.render_widget(Paragraph::new(visible), body);
}

fn draw_members(conv: &Conversation, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width.saturating_sub(2));
    let mut lines = vec![Line::styled(
        plural(conv.members.len(), "user"),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    lines.extend(
        conv.members
            .iter()
            .map(|m| Line::styled(truncate(m, width), Style::default().fg(nick_colour(m)))),
    );
    let block = Block::default()
        .borders(Borders::LEFT)
        .border_style(Style::default().fg(Color::DarkGray));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_status(state: &State, frame: &mut Frame, area: Rect) {
    let bar = Style::default().bg(Color::Blue).fg(Color::White);
    let (link, link_style) = match &state.link {
        Link::Connected => ("connected".to_string(), bar.fg(Color::LightGreen)),
        Link::Connecting { attempt: 1 } => ("connecting…".to_string(), bar.fg(Color::Yellow)),
        Link::Connecting { attempt } => (
            format!("reconnecting (attempt {attempt})…"),
            bar.fg(Color::Yellow),
        ),
        Link::Disconnected { .. } => (
            format!(
                "disconnected, retrying in {} s",
                state.retry_in_secs().unwrap_or(0)
            ),
            bar.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        ),
        Link::Closed => ("closed".to_string(), bar.fg(Color::LightRed)),
    };
    // Most important first: a narrow bar cuts off the end, and whether we
    // are connected must survive (then who we are, then what waits).
    let mut spans = vec![Span::styled(format!(" {link} "), link_style)];
    spans.push(Span::styled("| ", bar));
    let account = if state.logged_in { " (logged in)" } else { "" };
    spans.push(Span::styled(
        format!("{}{account} ", state.nick),
        bar.add_modifier(Modifier::BOLD),
    ));
    let running: Vec<_> = state
        .transfers
        .list
        .iter()
        .filter(|t| t.status.is_open())
        .collect();
    if !running.is_empty() {
        let (done, total) = running
            .iter()
            .fold((0, 0), |(d, t), x| (d + x.done.min(x.total), t + x.total));
        let percent = (done * 100).checked_div(total).unwrap_or(0);
        let what = if running.len() == 1 {
            "transfer".to_string()
        } else {
            format!("{} transfers", running.len())
        };
        spans.push(Span::styled(format!("| {what} {percent}% (F2) "), bar));
    }
    let unread: usize = state.convs.iter().map(|c| c.unread).sum();
    if unread > 0 {
        spans.push(Span::styled(
            format!("| {unread} unread "),
            bar.add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(lag) = state.lag {
        spans.push(Span::styled(format!("| lag {} ms ", lag.as_millis()), bar));
    }
    spans.push(Span::styled(format!("| {} ", state.server.addr), bar));
    if let Some(software) = &state.server.software {
        spans.push(Span::styled(format!("{software} "), bar));
    }
    spans.push(if state.server.tls {
        Span::styled("TLS ", bar.fg(Color::LightGreen))
    } else {
        Span::styled("plaintext ", bar.fg(Color::Yellow))
    });
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

fn draw_input(state: &State, frame: &mut Frame, area: Rect) {
    let prompt = match &state.prompt {
        Some(_) => "password: ".to_string(),
        None => {
            let conv = state.current_conv();
            let name = if conv.kind == ConvKind::Server {
                "server"
            } else {
                &conv.name
            };
            // A closed room takes no more text: say so where one types.
            let closed = if conv.closed.is_some() { " closed" } else { "" };
            format!("[{}{closed}] ", truncate(name, 20))
        }
    };
    let prompt_width = prompt.width() as u16;
    let room = usize::from(area.width.saturating_sub(prompt_width));
    let (shown, cursor) = if state.prompt.is_some() {
        // No echo, not even the length.
        (String::new(), 0)
    } else {
        state.editor.window(room)
    };
    let line = Line::from(vec![
        Span::styled(prompt, Style::default().fg(Color::Cyan)),
        Span::raw(shown),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    if !state.quitting {
        frame.set_cursor_position((area.x + prompt_width + cursor as u16, area.y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_colours_are_stable_and_case_blind() {
        assert_eq!(nick_colour("Alice"), nick_colour("alice"));
        let distinct: std::collections::HashSet<_> =
            ["alice", "bob", "carol", "dave", "erin", "frank"]
                .iter()
                .map(|n| nick_colour(n))
                .collect();
        assert!(distinct.len() > 2);
    }
}
