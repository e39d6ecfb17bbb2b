//! The help view of the full-screen client (`/help`, F1): the command
//! list over the conversation, which keeps its place; PageUp/PageDown
//! scroll it and Esc closes it. Line mode prints the help instead.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::layout::help_rows;
use crate::state::HelpView;

/// The help view, over the conversation (and member list).
pub fn draw(help: &HelpView, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" help: PgUp/PgDn scroll, Esc or F1 closes ")
        .border_style(Style::default().fg(Color::Cyan));
    let inner = block.inner(area);
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(block, area);
    let rows = help_rows(&help.lines, usize::from(inner.width));
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
