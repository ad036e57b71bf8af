//! The help overlay.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Clear, Paragraph, Widget},
};

use super::theme::{THEME, pane};

const KEYS: [(&str, &str); 16] = [
    ("space", "play / pause"),
    ("→ or n", "one step forward (pauses)"),
    ("← or b", "one step back (pauses)"),
    ("Home / End", "first / last step"),
    ("g 12 enter", "go to step 12"),
    ("- / +", "slower / faster (1 step per 2 s … real time)"),
    ("r", "run the method again"),
    ("m", "method picker (there: ↑↓ or a number, enter)"),
    ("?", "this help (any key closes it)"),
    ("d", "doctor: which probe sees each step on this kernel"),
    ("q, Esc, Ctrl-C", "quit"),
    ("═══▶", "a CPU copy"),
    ("───▶", "a DMA copy"),
    ("┄┄┄▷", "page references or pinned pages: no copy"),
    ("~~~▶", "loopback hand-off to the receiver"),
    (
        "1. 2. 3. 4.",
        "the article's step numbers (read+send is 1-4)",
    ),
];

/// Watch's keys in place of `r` and `m`.
const WATCH_KEYS: [(&str, &str); 2] = [
    ("↑↓ or k j", "pick a transfer: its newest chunk plays"),
    ("r", "play the newest chunk of this transfer now"),
];

/// The keys; `watch`: watch's (no method picker, a list of transfers).
pub(super) struct Help {
    pub watch: bool,
}

impl Widget for Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let keys: Vec<(&str, &str)> = if self.watch {
            WATCH_KEYS
                .iter()
                .chain(KEYS.iter().filter(|(k, _)| !matches!(*k, "r" | "m")))
                .copied()
                .collect()
        } else {
            KEYS.to_vec()
        };
        let w = 74.min(area.width);
        let h = (keys.len() as u16 + 2).min(area.height);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        Clear.render(r, buf);
        let lines: Vec<Line<'_>> = keys
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!("{k:>15}  "), THEME.key),
                    Span::raw(*what),
                ])
            })
            .collect();
        Paragraph::new(lines).block(pane(" keys ")).render(r, buf);
    }
}

/// The doctor page: which hook sees each step on this kernel, and why not a better one.
pub(super) struct DoctorPage<'a> {
    pub text: &'a str,
    /// Lines scrolled past.
    pub scroll: u16,
}

impl Widget for DoctorPage<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Clear.render(area, buf);
        let mut lines: Vec<Line<'_>> = self
            .text
            .lines()
            .map(|l| Line::raw(l.to_string()))
            .collect();
        if self.text.is_empty() {
            lines.push(Line::raw(
                "(still measuring this kernel; or run `tracer doctor`)",
            ));
        }
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .scroll((self.scroll, 0))
            // Within 78 columns: the whole title shows at 80x24 (the report names the method).
            .block(pane(
                " doctor: the probes on this kernel (↑↓ PgUp PgDn scroll; other keys close) ",
            ))
            .render(area, buf);
    }
}
