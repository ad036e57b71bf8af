//! Why the observed ledger differs from the textbook: shown in place of the path diagram
//! at a live run's summary step (the last), where there is no arrow to draw.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget, Wrap},
};

use super::{
    app::App,
    theme::{THEME, pane},
};
use crate::model::fmt_field;

pub(super) struct Why<'a> {
    pub app: &'a App,
}

impl Widget for Why<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane(" why they differ from the textbook ");
        let mut lines = Vec::new();
        if app.differences.is_empty() {
            lines.push(Line::raw("Every count matches the textbook."));
        }
        // Fields whose reasons read the same share a line. The sentence decides, not the
        // typed reasons: it leaves the field to the cells, so two fields not explained,
        // each expecting 3, read alike.
        let mut last: Option<String> = None;
        for d in &app.differences {
            let reason = d.reasons.to_string();
            let cell = format!(
                "{} {}/{}",
                d.field,
                fmt_field(d.field, d.observed),
                fmt_field(d.field, d.textbook)
            );
            if last.as_ref() == Some(&reason) {
                if let Some(Line { spans, .. }) = lines.last_mut() {
                    // After the cells so far, before the reason (the last span).
                    let at = spans.len() - 1;
                    spans.insert(at, Span::styled(format!(", {cell}"), THEME.warn));
                }
                continue;
            }
            lines.push(Line::from(vec![
                Span::styled(format!("≠ {cell}"), THEME.warn),
                Span::raw(format!(": {reason}")),
            ]));
            last = Some(reason);
        }
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .render(area, buf);
    }
}
