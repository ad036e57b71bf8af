//! The help overlay.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Widget},
};

use super::theme::THEME;

const KEYS: [(&str, &str); 9] = [
    ("space", "play / pause"),
    ("→ or n", "one step forward (pauses)"),
    ("- / +", "slower / faster (1 step per 2 s … real time)"),
    ("r", "run again (restart the lesson)"),
    ("m", "method picker"),
    ("?", "this help (any key closes it)"),
    ("q, Esc, Ctrl-C", "quit"),
    ("arrows", "═══▶ CPU copy   ───▶ DMA copy"),
    (
        "",
        "┄┄┄▷ page references (no copy)   ~~~▶ loopback hand-off",
    ),
];

pub struct Help;

impl Widget for Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let w = 70.min(area.width);
        let h = (KEYS.len() as u16 + 2).min(area.height);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        Clear.render(r, buf);
        let lines: Vec<Line> = KEYS
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!("{k:>15}  "), THEME.key),
                    Span::raw(*what),
                ])
            })
            .collect();
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(" keys ", THEME.title)),
            )
            .render(r, buf);
    }
}
