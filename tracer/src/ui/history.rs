//! The steps so far, newest last: a pane on terminals taller than 24 rows, a compact line
//! of the last ones at 80x24.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget},
};

use super::{
    app::{App, Shown},
    theme::{THEME, pane},
};
use crate::model::{Buffer as Place, Engine, Mode, StepKind};

/// A place in a few letters.
fn place(b: Place) -> &'static str {
    match b {
        Place::Disk => "disk",
        Place::PageCache => "cache",
        Place::User => "app",
        Place::Pipe => "pipe",
        Place::Socket => "sock",
        Place::Nic => "NIC",
    }
}

/// A step in a few words: `2 CPU cache→app`, `▲read()`.
fn short(s: &Shown) -> String {
    let what = match &s.kind {
        None => "summary".to_string(),
        Some(StepKind::ModeSwitch {
            to: Mode::Kernel,
            syscall,
        }) => format!("▼{syscall}()"),
        Some(StepKind::ModeSwitch {
            to: Mode::User,
            syscall,
        }) => format!("▲{syscall}()"),
        Some(StepKind::Copy {
            engine, from, to, ..
        }) => format!(
            "{} {}→{}",
            match engine {
                Engine::Cpu => "CPU",
                Engine::Dma => "DMA",
            },
            place(*from),
            place(*to)
        ),
        Some(StepKind::PageRef {
            from, to, pinned, ..
        }) => format!(
            "{} {}→{}",
            if *pinned { "pin" } else { "ref" },
            place(*from),
            place(*to)
        ),
        Some(StepKind::Lookup { miss_pages, .. }) => {
            if *miss_pages > 0 { "miss" } else { "hit" }.to_string()
        }
        Some(StepKind::Handoff { .. }) => "hand-off".to_string(),
    };
    match s.number {
        Some(n) => format!("{n} {what}"),
        None => what,
    }
}

/// The steps before the current one, newest last, in at most `width` columns (the
/// oldest left out first): `last: 1 ▼read() · 1 miss · 2 CPU cache→app`.
pub(super) fn compact(app: &App, width: usize) -> Option<String> {
    let before = &app.queue[..app.shown.saturating_sub(1)];
    if before.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut used = "before: ".len();
    for s in before.iter().rev() {
        let p = short(s);
        let w = p.chars().count() + 3;
        if used + w > width {
            parts.push("…".into());
            break;
        }
        used += w;
        parts.push(p);
    }
    parts.reverse();
    Some(format!("before: {}", parts.join(" · ")))
}

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
