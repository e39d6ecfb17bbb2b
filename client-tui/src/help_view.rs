//! The help view of the full-screen client (`/help`, F1): the command
//! list over the conversation, which keeps its place; PageUp/PageDown
//! scroll it and Esc closes it. Line mode prints the help instead.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::view::wrap;

/// `/help` in the full-screen client: shown over the conversation instead
/// of being written into it; PageUp/PageDown scroll, Esc closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpView {
    pub lines: Vec<String>,
    /// Rows scrolled past at the top.
    pub scroll: usize,
}

/// The help view, over the conversation (and member list).
pub fn draw(help: &HelpView, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" help: PgUp/PgDn scroll, Esc or F1 closes ")
        .border_style(Style::default().fg(Color::Cyan));
    let inner = block.inner(area);
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(block, area);
    let rows = rows(&help.lines, usize::from(inner.width));
    let visible = usize::from(inner.height);
    let scroll = help.scroll.min(rows.len().saturating_sub(visible));
    let shown: Vec<Line> = rows
        .into_iter()
        .skip(scroll)
        .take(visible)
        .map(Line::from)
        .collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

/// The help text as rows `width` columns wide; continuation rows are
/// indented under the summary column when there is room for it.
pub fn rows(lines: &[String], width: usize) -> Vec<String> {
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

/// Columns inside the help view's border on a screen `cols` wide.
pub fn width(cols: u16) -> usize {
    usize::from(cols.saturating_sub(crate::view::sidebar_width(cols) + 2))
}
