//! The one theme. Meaning never rests on colour alone: every highlight also has a shape
//! or a word (arrows differ by line, boxes say "from"/"to"), so a monochrome projector and
//! colour-blind viewers see the same story.

use ratatui::{
    style::{Color, Modifier, Style},
    text::Span,
    widgets::{Block, Borders},
};

pub(super) struct Theme {
    pub title: Style,
    pub band: Style,
    pub boxed: Style,
    pub from: Style,
    pub to: Style,
    pub cpu: Style,
    pub dma: Style,
    pub reference: Style,
    pub handoff: Style,
    pub dim: Style,
    pub warn: Style,
    pub key: Style,
    pub lesson: Style,
}

pub(super) const THEME: Theme = Theme {
    title: Style::new().add_modifier(Modifier::BOLD),
    band: Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD),
    boxed: Style::new(),
    from: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    to: Style::new()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD.union(Modifier::REVERSED)),
    cpu: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    dma: Style::new().fg(Color::Blue).add_modifier(Modifier::BOLD),
    reference: Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
    handoff: Style::new().fg(Color::Magenta),
    dim: Style::new().fg(Color::DarkGray),
    warn: Style::new().fg(Color::Yellow),
    key: Style::new().add_modifier(Modifier::BOLD),
    lesson: Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD),
};

/// A pane's frame: a border, and the title in the theme's title style.
pub(super) fn pane<'a>(title: impl Into<std::borrow::Cow<'a, str>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, THEME.title))
}
