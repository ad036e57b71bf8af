//! The method picker: one line per method, and the highlighted one's description and
//! textbook cost below.

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
use crate::{
    demo::plural,
    model::{
        Method,
        textbook::{self, Conditions},
    },
};

/// What the article's model says one chunk of `method` costs.
pub(super) fn cost(method: Method) -> String {
    let l = textbook::ledger(method, 1, 1, &Conditions::ARTICLE);
    // mmap-write maps and unmaps once per file, not per chunk.
    let (switches, setup) = if method == Method::MmapWrite {
        (l.mode_switches - 4, " (+ mmap and munmap once)")
    } else {
        (l.mode_switches, "")
    };
    format!(
        "per chunk: {}, {}, {}, {}{setup}",
        plural(switches, "mode switch", "mode switches"),
        plural(l.cpu_copies, "CPU copy", "CPU copies"),
        plural(l.dma_copies, "DMA copy", "DMA copies"),
        plural(l.page_refs, "page reference", "page references"),
    )
}

pub(super) struct Picker<'a> {
    pub app: &'a App,
}

impl Widget for Picker<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!(
            " pick a transfer method: ↑↓ and enter, or 1-{} ",
            app.methods().len()
        );
        let block = pane(&title);
        let mut lines = vec![
            Line::from(Span::styled(
                match app.kind {
                    Kind::Lesson => {
                        "Lesson: the textbook model's steps (read from disk, sent by a NIC). No probes."
                    }
                    Kind::Live | Kind::Watch => {
                        "Live: the transfer runs here, traced; the steps are what the kernel did."
                    }
                },
                THEME.dim,
            )),
            Line::raw(""),
        ];
        for (i, m) in app.methods().iter().enumerate() {
            let selected = i == app.picker;
            lines.push(Line::from(vec![
                Span::styled(if selected { "▶ " } else { "  " }, THEME.key),
                Span::styled(
                    format!("{} {:<16}", i + 1, m.name()),
                    if selected { THEME.to } else { THEME.key },
                ),
            ]));
        }
        let m = app.methods()[app.picker];
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(m.describe(), THEME.key)));
        lines.push(Line::from(Span::styled(cost(m), THEME.dim)));
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .render(area, buf);
    }
}
