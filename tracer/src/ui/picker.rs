//! The method picker: each method with a one-line description and its textbook cost.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Widget, Wrap},
};

use super::{
    app::{App, Kind},
    theme::THEME,
};
use crate::{
    model::textbook::{self, Conditions},
    workload::Method,
};

/// What the article's model says one chunk of `method` costs.
pub fn cost(method: Method) -> String {
    let l = textbook::ledger(method, 1, 1, &Conditions::ARTICLE);
    let setup = if method == Method::MmapWrite {
        " (+ mmap/munmap once)"
    } else {
        ""
    };
    let switches = if method == Method::MmapWrite {
        l.mode_switches - 4
    } else {
        l.mode_switches
    };
    format!(
        "{switches} mode switches, {} CPU copies, {} DMA copies, {} page refs per chunk{setup}",
        l.cpu_copies, l.dma_copies, l.page_refs
    )
}

pub struct Picker<'a> {
    pub app: &'a App,
}

impl Widget for Picker<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = Block::default().borders(Borders::ALL).title(Span::styled(
            " pick a transfer method: ↑↓ and enter, or 1-8 ",
            THEME.title,
        ));
        let mut lines = vec![Line::from(Span::styled(
            match app.kind {
                Kind::Lesson => {
                    "Lesson: the steps of the textbook model (data read from disk, sent by a NIC). No probes."
                }
                Kind::Live => {
                    "Live: the transfer runs here, traced; the steps are what the kernel did."
                }
            },
            THEME.dim,
        ))];
        lines.push(Line::raw(""));
        for (i, m) in Method::ALL.iter().enumerate() {
            let selected = i == app.picker;
            let marker = if selected { "▶ " } else { "  " };
            let style = if selected { THEME.to } else { THEME.key };
            lines.push(Line::from(vec![
                Span::raw(marker),
                Span::styled(format!("{} {:<16}", i + 1, m.name()), style),
                Span::raw(m.describe()),
            ]));
            lines.push(Line::from(Span::styled(
                format!("                     {}", cost(*m)),
                THEME.dim,
            )));
        }
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .render(area, buf);
    }
}
