//! The current step in one plain sentence, numbered like the article, with its evidence.

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

pub(super) struct Narration<'a> {
    pub app: &'a App,
    /// The last steps on its top border (where no pane lists them).
    pub recent: bool,
}

impl Widget for Narration<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let mut title = format!(" step {} of {} ", app.shown, app.queue.len());
        if self.recent {
            let room = (area.width as usize).saturating_sub(title.chars().count() + 6);
            if let Some(h) = super::history::compact(app, room) {
                title.push_str(&format!("─ {h} "));
            }
        }
        let mut block = pane(title);
        // The evidence sits on the bottom border, so the sentence has both lines.
        if let Some(s) = app.current() {
            let width = area.width.saturating_sub(4) as usize;
            let mut ev = format!(" evidence: {} ", s.evidence);
            if ev.chars().count() > width {
                ev = format!(
                    "{}… ",
                    ev.chars().take(width.saturating_sub(2)).collect::<String>()
                );
            }
            block = block.title_bottom(Line::from(Span::styled(ev, THEME.dim)));
        }
        let lines = match app.current() {
            Some(s) => vec![Line::from(Span::styled(s.text.clone(), THEME.key))],
            None => vec![Line::from(Span::styled(
                match (app.kind, &app.state) {
                    (super::app::Kind::Watch, _) => "waiting for a transfer's first chunk…",
                    (_, super::app::RunState::Running) => "running the transfer…",
                    _ => "press space to play, n for one step",
                },
                THEME.dim,
            ))],
        };
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .render(area, buf);
    }
}
