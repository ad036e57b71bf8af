//! The ledger: observed beside textbook for the transfer on screen, then the differences
//! with their reasons.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Widget, Wrap},
};

use super::{
    app::{App, Kind, RunState},
    theme::THEME,
};
use crate::model::{Ledger, human_bytes};

/// The rows: a short label and the value as shown.
pub fn rows(l: &Ledger) -> [(&'static str, String); 10] {
    [
        ("switches", l.mode_switches.to_string()),
        ("syscalls", l.syscalls.to_string()),
        ("CPU copies", l.cpu_copies.to_string()),
        ("CPU bytes", human_bytes(l.cpu_copy_bytes)),
        ("DMA copies", l.dma_copies.to_string()),
        ("DMA bytes", human_bytes(l.dma_bytes)),
        ("page refs", l.page_refs.to_string()),
        ("ref bytes", human_bytes(l.page_ref_bytes)),
        ("cache hits", l.cache_hits.to_string()),
        ("misses", l.cache_misses.to_string()),
    ]
}

pub struct LedgerPane<'a> {
    pub app: &'a App,
}

impl Widget for LedgerPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = match app.kind {
            Kind::Lesson => " ledger (model) ",
            Kind::Live => " ledger ",
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, THEME.title));
        let inner = block.inner(area);
        block.render(area, buf);
        let tb = rows(&app.textbook);
        let obs = app.observed.as_ref().map(rows);
        let vw = ((inner.width as usize).saturating_sub(12) / 2).clamp(7, 14);
        let mut lines = Vec::new();
        match app.kind {
            Kind::Live => lines.push(Line::from(Span::styled(
                format!("{:<10} {:>vw$} {:>vw$}", "", "observed", "textbook"),
                THEME.dim,
            ))),
            Kind::Lesson => lines.push(Line::from(Span::styled(
                format!("{:<10} {:>vw$}", "", "textbook"),
                THEME.dim,
            ))),
        }
        for (i, (name, t)) in tb.iter().enumerate() {
            let mut spans = vec![Span::styled(format!("{name:<10} "), THEME.band)];
            if app.kind == Kind::Live {
                let o = obs.as_ref().map_or("…".to_string(), |o| o[i].1.clone());
                let differs = obs.is_some() && o != *t;
                spans.push(Span::styled(
                    format!("{o:>vw$}"),
                    if differs { THEME.warn } else { THEME.boxed },
                ));
                spans.push(Span::raw(if differs { "≠" } else { " " }));
            }
            spans.push(Span::styled(format!("{t:>vw$}"), THEME.dim));
            lines.push(Line::from(spans));
        }
        if let Some(rx) = &app.receiver {
            lines.push(Line::from(Span::styled(
                format!(
                    "receiver: {} switches, {} CPU copies ({})",
                    rx.mode_switches,
                    rx.cpu_copies,
                    human_bytes(rx.cpu_copy_bytes)
                ),
                THEME.dim,
            )));
        }
        match (&app.state, app.kind) {
            (RunState::Failed(why), _) => {
                lines.push(Line::from(Span::styled(
                    format!("run failed: {why}"),
                    THEME.warn,
                )));
            }
            (_, Kind::Lesson) => lines.push(Line::from(Span::styled(
                "the article's model: read from disk, sent by a NIC",
                THEME.dim,
            ))),
            (RunState::Done, Kind::Live) => {
                lines.push(Line::from(Span::styled(
                    "textbook: read from disk, sent by a NIC. Why they differ:",
                    THEME.dim,
                )));
                for d in &app.differences {
                    lines.push(Line::from(vec![
                        Span::styled(format!("≠ {}: ", d.field), THEME.warn),
                        Span::raw(d.reason.clone()),
                    ]));
                }
            }
            _ => {}
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}
