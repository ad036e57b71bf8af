//! The steps so far, newest last (on terminals taller than 24 rows).

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget},
};

use super::{
    app::App,
    theme::{THEME, pane},
};

pub(super) struct History<'a> {
    pub app: &'a App,
}

impl Widget for History<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane(" steps so far ");
        let rows = block.inner(area).height as usize;
        let shown = &app.queue[..app.shown];
        let skip = shown.len().saturating_sub(rows);
        let lines: Vec<Line<'_>> = shown[skip..]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let current = skip + i + 1 == app.shown;
                Line::from(vec![
                    Span::styled(if current { "▶ " } else { "  " }, THEME.key),
                    Span::styled(
                        s.text.clone(),
                        if current { THEME.key } else { THEME.boxed },
                    ),
                    Span::styled(format!("  [{}]", s.evidence), THEME.dim),
                ])
            })
            .collect();
        Paragraph::new(lines).block(block).render(area, buf);
    }
}
