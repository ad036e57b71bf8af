//! Why the observed ledger differs from the textbook: shown in place of the path diagram
//! at a live run's summary step (the last), where there is no arrow to draw.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Widget, Wrap},
};

use super::{app::App, theme::THEME};
use crate::model::human_bytes;

pub struct Why<'a> {
    pub app: &'a App,
}

impl Widget for Why<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = Block::default().borders(Borders::ALL).title(Span::styled(
            " why they differ from the textbook ",
            THEME.title,
        ));
        let mut lines = Vec::new();
        if app.differences.is_empty() {
            lines.push(Line::raw("Every count matches the textbook."));
        }
        // Fields that differ for the same reason share a line.
        let mut last: Option<&str> = None;
        for d in &app.differences {
            let value = |v: u64| {
                if d.field.ends_with("_bytes") {
                    human_bytes(v)
                } else {
                    v.to_string()
                }
            };
            let cell = format!("{} {}/{}", d.field, value(d.observed), value(d.textbook));
            if last == Some(d.reason.as_str()) {
                if let Some(Line { spans, .. }) = lines.last_mut() {
                    spans.insert(1, Span::styled(format!(", {cell}"), THEME.warn));
                }
                continue;
            }
            lines.push(Line::from(vec![
                Span::styled(format!("≠ {cell}"), THEME.warn),
                Span::raw(format!(": {}", d.reason)),
            ]));
            last = Some(&d.reason);
        }
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .render(area, buf);
    }
}
