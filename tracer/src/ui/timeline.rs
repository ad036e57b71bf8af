//! The mode-switch timeline, as in the article's second figure: a user lane and a kernel
//! lane, the CPU stepping between them at every syscall entry and return, each entry
//! labelled with its syscall. The newest steps are at the right.

use ratatui::{buffer::Buffer, layout::Rect, widgets::Widget};

use super::{
    app::App,
    theme::{THEME, pane},
};
use crate::model::{Mode, StepKind};

/// Lane cells for the steps shown: (user row, kernel row, label row).
pub fn lanes(app: &App) -> (Vec<char>, Vec<char>, Vec<char>, usize) {
    let (mut user, mut kernel, mut label) = (Vec::new(), Vec::new(), Vec::new());
    let mut mode = Mode::User;
    let mut switches = 0;
    let push =
        |u: char, k: char, user: &mut Vec<char>, kernel: &mut Vec<char>, label: &mut Vec<char>| {
            user.push(u);
            kernel.push(k);
            label.push(' ');
        };
    push('─', ' ', &mut user, &mut kernel, &mut label);
    for s in &app.queue[..app.shown] {
        match &s.kind {
            Some(StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            }) => {
                switches += 1;
                push('┐', '└', &mut user, &mut kernel, &mut label);
                let at = label.len() - 1;
                // The syscall's name above its entry (it may run over the next cells).
                for (i, c) in syscall.chars().enumerate() {
                    if at + i < label.len() {
                        label[at + i] = c;
                    } else {
                        label.push(c);
                        user.push(' ');
                        kernel.push('─');
                    }
                }
                mode = Mode::Kernel;
            }
            Some(StepKind::ModeSwitch { to: Mode::User, .. }) => {
                switches += 1;
                push('┌', '┘', &mut user, &mut kernel, &mut label);
                mode = Mode::User;
            }
            Some(_) | None => {
                for _ in 0..2 {
                    match mode {
                        Mode::User => push('─', ' ', &mut user, &mut kernel, &mut label),
                        Mode::Kernel => push(' ', '─', &mut user, &mut kernel, &mut label),
                    }
                }
            }
        }
    }
    (user, kernel, label, switches)
}

pub struct Timeline<'a> {
    pub app: &'a App,
}

impl Widget for Timeline<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (user, kernel, label, switches) = lanes(self.app);
        let block = pane(format!(" mode switches: {switches} so far "));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height < 3 || inner.width < 12 {
            return;
        }
        let w = inner.width as usize - 7;
        let skip = user.len().saturating_sub(w);
        let row = |cells: &[char]| cells[skip..].iter().collect::<String>();
        buf.set_stringn(inner.x + 7, inner.y, row(&label), w, THEME.dim);
        buf.set_stringn(inner.x, inner.y + 1, "user   ", 7, THEME.band);
        buf.set_stringn(inner.x + 7, inner.y + 1, row(&user), w, THEME.key);
        buf.set_stringn(inner.x, inner.y + 2, "kernel ", 7, THEME.band);
        buf.set_stringn(inner.x + 7, inner.y + 2, row(&kernel), w, THEME.key);
    }
}
