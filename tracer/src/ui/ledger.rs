//! The ledger in two scopes: this chunk so far (the steps on screen up to the current one)
//! and the whole run (observed beside textbook for the transfer on screen), then the
//! differences with their reasons.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget, Wrap},
};

use super::{
    app::{App, Kind, RunState},
    theme::{THEME, pane},
};
use crate::model::{Ledger, human_bytes};

/// Bytes in at most `width` columns: "16 MiB" where it fits, else "16M", "237.3M".
fn bytes(n: u64, width: usize) -> String {
    let h = human_bytes(n);
    if h.chars().count() <= width {
        return h;
    }
    const UNITS: [(u64, char); 3] = [(1 << 30, 'G'), (1 << 20, 'M'), (1 << 10, 'K')];
    for (size, unit) in UNITS {
        if n >= size {
            let whole = format!("{}{unit}", n / size);
            let tenth = format!("{:.1}{unit}", n as f64 / size as f64);
            return if n.is_multiple_of(size) || tenth.len() > width {
                whole
            } else {
                tenth
            };
        }
    }
    n.to_string()
}

/// The rows: a short label and the value as shown in `width` columns.
pub(super) fn rows(l: &Ledger, width: usize) -> [(&'static str, String); 10] {
    [
        ("switches", l.mode_switches.to_string()),
        ("syscalls", l.syscalls.to_string()),
        ("CPU copies", l.cpu_copies.to_string()),
        ("CPU bytes", bytes(l.cpu_copy_bytes, width)),
        ("DMA copies", l.dma_copies.to_string()),
        ("DMA bytes", bytes(l.dma_bytes, width)),
        ("page refs", l.page_refs.to_string()),
        ("ref bytes", bytes(l.page_ref_bytes, width)),
        ("cache hits", l.cache_hits.to_string()),
        ("misses", l.cache_misses.to_string()),
    ]
}

/// "this chunk so far": the counts of the steps up to the one on screen, in `width`
/// columns (narrow: zeros left out).
fn chunk_line(l: &Ledger, width: usize) -> Line<'static> {
    let (label, values) = if width >= 46 {
        (
            "this chunk so far: ",
            format!(
                "{} sw, {} CPU, {} DMA, {}",
                l.mode_switches,
                l.cpu_copies,
                l.dma_copies,
                crate::demo::plural(l.page_refs, "ref", "refs")
            ),
        )
    } else {
        let mut v = format!("{}sw", l.mode_switches);
        for (n, what) in [
            (l.cpu_copies, "CPU"),
            (l.dma_copies, "DMA"),
            (l.page_refs, "ref"),
        ] {
            if n > 0 {
                v.push_str(&format!(" {n}{what}"));
            }
        }
        ("chunk so far: ", v)
    };
    Line::from(vec![
        Span::styled(label, THEME.band),
        Span::styled(values, THEME.key),
    ])
}

pub(super) struct LedgerPane<'a> {
    pub app: &'a App,
}

impl Widget for LedgerPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = match app.kind {
            Kind::Lesson => " ledger (model) ",
            Kind::Live | Kind::Watch => " ledger ",
        };
        let block = pane(title);
        let inner = block.inner(area);
        block.render(area, buf);
        let vw = ((inner.width as usize).saturating_sub(12) / 2).clamp(7, 14);
        // A watched transfer that behaves like no method has no textbook column.
        let no_textbook = app.kind == Kind::Watch
            && app
                .watching
                .selected_row()
                .is_none_or(|r| r.report.textbook.is_none());
        let mut tb = rows(&app.textbook, vw);
        if no_textbook {
            for (_, v) in tb.iter_mut() {
                *v = "-".into();
            }
        }
        let obs = app.observed.as_ref().map(|l| rows(l, vw));
        // Partial counts differ from the whole-file model until the run is done; a
        // watched transfer's textbook is for the bytes so far.
        let done = app.state == RunState::Done || (app.kind == Kind::Watch && !no_textbook);
        let mut lines = vec![chunk_line(&app.chunk_so_far(), inner.width as usize)];
        match app.kind {
            Kind::Live | Kind::Watch => lines.push(Line::from(Span::styled(
                format!(
                    "{:<10} {:>vw$} {:>vw$}",
                    "whole run", "observed", "textbook"
                ),
                THEME.dim,
            ))),
            Kind::Lesson => lines.push(Line::from(Span::styled(
                format!("{:<10} {:>vw$}", "whole run", "textbook"),
                THEME.dim,
            ))),
        }
        for (i, (name, t)) in tb.iter().enumerate() {
            let mut spans = vec![Span::styled(format!("{name:<10} "), THEME.band)];
            if app.kind != Kind::Lesson {
                let o = obs
                    .as_ref()
                    .map_or_else(|| "…".to_string(), |o| o[i].1.clone());
                let differs = done && obs.is_some() && o != *t;
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
                    "receiver: {} sw, {} copied",
                    rx.mode_switches,
                    bytes(rx.cpu_copy_bytes, 8)
                ),
                THEME.dim,
            )));
        }
        match (&app.state, app.kind) {
            (RunState::Failed(why), _) => {
                lines.push(Line::from(Span::styled(
                    // The error may quote a file name or what the kernel said.
                    format!("run failed: {}", super::escape::escape(why)),
                    THEME.warn,
                )));
            }
            (_, Kind::Lesson) => lines.push(Line::from(Span::styled(
                // copy_file_range writes a file: nothing goes to a socket or a NIC.
                if app.method == crate::model::Method::CopyFileRange {
                    "model: disk read, no send"
                } else {
                    "model: disk read, NIC send"
                },
                THEME.dim,
            ))),
            (RunState::Done, Kind::Live) if !app.differences.is_empty() => lines.push(Line::from(
                Span::styled("≠: why, at the last step", THEME.dim),
            )),
            (_, Kind::Watch) if !app.differences.is_empty() => lines.push(Line::from(
                Span::styled("≠: why, at the chunk's end", THEME.dim),
            )),
            _ => {}
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}
