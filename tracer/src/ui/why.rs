//! Why the observed ledger differs from the textbook: shown in place of the path diagram
//! at a live run's summary step (the last), where there is no arrow to draw; under watch,
//! after what the transfer behaves like and the evidence.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget, Wrap},
};

use super::{
    app::{App, Kind},
    theme::{THEME, pane},
};
use crate::model::fmt_field;

pub(super) struct Why<'a> {
    pub app: &'a App,
}

impl Widget for Why<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let mut lines = Vec::new();
        // Watch: first what the transfer behaves like, and why the model says so.
        let watched = match app.kind {
            Kind::Watch => app.watching.selected_row().map(|r| &r.report),
            _ => None,
        };
        let block = match watched {
            Some(_) => pane(" what it behaves like, and why it differs "),
            None => pane(" why they differ from the textbook "),
        };
        if let Some(r) = watched {
            lines.push(Line::from(Span::styled(
                match &r.reason {
                    Some(why) => format!("other: {why}"),
                    None => format!("behaves like {}", r.method),
                },
                THEME.key,
            )));
            for e in &r.evidence {
                lines.push(Line::from(Span::styled(format!("· {e}"), THEME.dim)));
            }
        }
        if app.differences.is_empty() && watched.is_none_or(|r| r.textbook.is_some()) {
            lines.push(Line::raw("Every count matches the textbook."));
        }
        // Fields whose reasons read the same share a line. The sentence decides, not the
        // typed reasons: it leaves the field to the cells, so two fields not explained,
        // each expecting 3, read alike.
        let mut last: Option<String> = None;
        for d in &app.differences {
            // A reason may name a network device, whose name is the kernel's.
            let reason = crate::ui::escape::escape(&d.reasons.to_string()).into_owned();
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
