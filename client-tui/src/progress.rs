//! A progress bar for file transfers: name, bar, percentage, rate and time
//! left on one row. Ready for the transfers view of the file-transfer
//! feature; rendered from plain numbers so it is tested on its own.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;
use unicode_width::UnicodeWidthStr;

use crate::layout::{human_bytes, wrap};

/// One transfer's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferBar<'a> {
    /// File name (and direction), shown first.
    pub label: &'a str,
    pub done: u64,
    pub total: u64,
    /// Recent rate in bytes per second.
    pub bytes_per_sec: f64,
}

impl TransferBar<'_> {
    /// Whole percent done (100 for an empty file).
    pub fn percent(&self) -> u64 {
        (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100)
    }

    /// `12 s`, `3:05`, `1:02:03`, or `--` when nothing moves.
    pub fn eta(&self) -> String {
        let left = self.total.saturating_sub(self.done);
        if left == 0 {
            return "done".into();
        }
        if self.bytes_per_sec < 1.0 {
            return "--".into();
        }
        let secs = (left as f64 / self.bytes_per_sec).ceil() as u64;
        match secs {
            s if s < 60 => format!("{s} s"),
            s if s < 3600 => format!("{}:{:02}", s / 60, s % 60),
            s => format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60),
        }
    }
}

impl Widget for TransferBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        // A finished transfer has no rate: its size says more.
        let stats = if self.done >= self.total {
            format!(
                " {:>3}% {} done",
                self.percent(),
                human_bytes(self.total as f64)
            )
        } else {
            format!(
                " {:>3}% {}/s ETA {}",
                self.percent(),
                human_bytes(self.bytes_per_sec),
                self.eta()
            )
        };
        let width = usize::from(area.width);
        let label_width = (width / 3).min(self.label.width()).max(1);
        let label: String = wrap(self.label, label_width, label_width)
            .into_iter()
            .next()
            .unwrap_or_default();
        let bar_width = width.saturating_sub(label.width() + 3 + stats.width());
        let filled = (bar_width as u64 * self.percent() / 100) as usize;
        let y = area.y;
        let mut x = area.x;
        let right = area.x + area.width;
        let (nx, _) = buf.set_stringn(x, y, &label, width, Style::default());
        x = nx;
        let (nx, _) = buf.set_stringn(x, y, " [", usize::from(right - x), Style::default());
        x = nx;
        let (nx, _) = buf.set_stringn(
            x,
            y,
            "█".repeat(filled),
            usize::from(right - x),
            Style::default().fg(Color::Green),
        );
        x = nx;
        let (nx, _) = buf.set_stringn(
            x,
            y,
            "░".repeat(bar_width - filled),
            usize::from(right - x),
            Style::default().fg(Color::DarkGray),
        );
        x = nx;
        let (nx, _) = buf.set_stringn(
            x,
            y,
            "]",
            usize::from(right.saturating_sub(x)),
            Style::default(),
        );
        x = nx;
        buf.set_stringn(
            x,
            y,
            &stats,
            usize::from(right.saturating_sub(x)),
            Style::default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_and_sizes() {
        let bar = |done, total, rate| TransferBar {
            label: "f",
            done,
            total,
            bytes_per_sec: rate,
        };
        assert_eq!(bar(0, 100, 10.0).eta(), "10 s");
        assert_eq!(bar(0, 6000, 10.0).eta(), "10:00");
        assert_eq!(bar(0, 36_610, 10.0).eta(), "1:01:01");
        assert_eq!(bar(5, 10, 0.0).eta(), "--");
        assert_eq!(bar(10, 10, 0.0).eta(), "done");
        assert_eq!(bar(1, 3, 0.0).percent(), 33);
        assert_eq!(bar(0, 0, 0.0).percent(), 100);
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0 * 1024.0), "1.5 MiB");
    }
}
