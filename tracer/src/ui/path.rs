//! The path diagram, as in the article's figures: user space on top, the kernel's buffers
//! in the middle, the hardware at the bottom; the current step's source and destination
//! marked "from" and "to", and its arrow drawn below with a shape per kind of step:
//! `═══▶` a CPU copy, `───▶` a DMA copy, `┄┄┄▷` a page reference (no copy), `~~~▶` the
//! loopback hand-off. A token (`■`) travels along it while the step plays.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::Style,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Widget, Wrap},
};

use super::{
    app::App,
    theme::{THEME, pane},
};
use crate::model::{Buffer as Buf, Engine, Mode, StepKind, human_bytes};

/// Where a buffer's box sits: (band, slot) with bands 0 user, 1 kernel, 2 hardware and
/// three slots across.
fn place(b: Buf) -> (u16, u16) {
    match b {
        Buf::User => (0, 1),
        Buf::PageCache => (1, 0),
        Buf::Pipe => (1, 1),
        Buf::Socket => (1, 2),
        Buf::Disk => (2, 0),
        Buf::Nic => (2, 2),
    }
}

fn name(b: Buf) -> &'static str {
    match b {
        Buf::User => "application buffer",
        Buf::PageCache => "page cache",
        Buf::Pipe => "pipe",
        Buf::Socket => "socket buffer",
        Buf::Disk => "disk",
        Buf::Nic => "NIC",
    }
}

/// The name that fits in `width` columns.
fn fitting(b: Buf, width: usize, nic_unused: bool) -> &'static str {
    let long = match b {
        Buf::Nic if nic_unused => "NIC (loopback: unused)",
        _ => name(b),
    };
    if long.chars().count() <= width {
        return long;
    }
    match b {
        Buf::User => "app buffer",
        Buf::Socket => "socket buf",
        Buf::Nic if nic_unused => "NIC: unused",
        _ => name(b),
    }
}

/// (from, to) of the current step, for the boxes' marks.
fn ends(kind: Option<&StepKind>) -> (Option<Buf>, Option<Buf>) {
    match kind {
        Some(StepKind::Copy { from, to, .. } | StepKind::PageRef { from, to, .. }) => {
            (Some(*from), Some(*to))
        }
        Some(StepKind::Lookup { .. }) => (None, Some(Buf::PageCache)),
        Some(StepKind::Handoff { .. }) => (Some(Buf::Socket), None),
        _ => (None, None),
    }
}

pub struct PathDiagram<'a> {
    pub app: &'a App,
}

impl Widget for PathDiagram<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane(" data path ");
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 40 || inner.height < 9 {
            return;
        }
        let summary = app.current().is_some_and(|s| s.kind.is_none());
        let current = app.current().and_then(|s| s.kind.as_ref());
        let (from, to) = ends(current);
        let label_w = 7u16;
        let slot_w = (inner.width - label_w) / 3;
        let bands = ["user", "kernel", "hw"];
        let mode = current_mode(app);
        for (i, band) in bands.iter().enumerate() {
            let y = inner.y + i as u16 * 3 + 1;
            let (style, text) =
                if (i == 0 && mode == Some(Mode::User)) || (i == 1 && mode == Some(Mode::Kernel)) {
                    (
                        THEME.band.add_modifier(ratatui::style::Modifier::REVERSED),
                        format!("{band}*"),
                    )
                } else {
                    (THEME.band, band.to_string())
                };
            buf.set_stringn(inner.x, y, &text, label_w as usize, style);
        }
        let nic_unused = app.nic_unused();
        for b in [
            Buf::User,
            Buf::PageCache,
            Buf::Pipe,
            Buf::Socket,
            Buf::Disk,
            Buf::Nic,
        ] {
            let (band, slot) = place(b);
            let r = Rect {
                x: inner.x + label_w + slot * slot_w,
                y: inner.y + band * 3,
                width: slot_w.max(8),
                height: 3,
            };
            let (style, mark) = if Some(b) == from {
                (THEME.from, " from ")
            } else if Some(b) == to {
                (THEME.to, " to ")
            } else {
                (THEME.boxed, "")
            };
            let title = fitting(b, r.width.saturating_sub(2) as usize, nic_unused);
            let bx = Block::default()
                .borders(Borders::ALL)
                .border_style(style)
                .title_bottom(Line::from(Span::styled(mark, style)));
            let inside = bx.inner(r);
            bx.render(r, buf);
            buf.set_stringn(inside.x, inside.y, title, inside.width as usize, style);
        }
        // The arrow and what it is.
        if inner.height >= 11 {
            let lines = if summary {
                [
                    Line::from(Span::styled(
                        "Σ every chunk, counted: see the ledger",
                        THEME.key,
                    )),
                    Line::default(),
                ]
            } else {
                arrow_line(current, app.progress(), inner.width as usize)
            };
            let r = Rect {
                x: inner.x,
                y: inner.y + 9,
                width: inner.width,
                height: inner.height - 9,
            };
            // A sentence (a mode switch, a lookup) may need its second row.
            Paragraph::new(lines.to_vec())
                .wrap(Wrap { trim: true })
                .render(r, buf);
        }
    }
}

/// The mode the CPU is in after the current step (for the band highlight).
fn current_mode(app: &App) -> Option<Mode> {
    app.queue[..app.shown]
        .iter()
        .rev()
        .find_map(|s| match &s.kind {
            Some(StepKind::ModeSwitch { to, .. }) => Some(*to),
            _ => None,
        })
}

/// The current step's arrow (`from ══■══▶ to`, the token at `progress`) and, on a second
/// line, what it is (`CPU copy · 64 KiB`). Steps without an arrow get a sentence.
pub fn arrow_line(kind: Option<&StepKind>, progress: f64, width: usize) -> [Line<'static>; 2] {
    let sentence = |mark: &'static str, text: String| {
        [
            Line::from(vec![Span::styled(mark, THEME.key), Span::raw(text)]),
            Line::default(),
        ]
    };
    let (from, to, body, head, label, style): (Buf, Option<Buf>, char, char, String, Style) =
        match kind {
            None => {
                return [
                    Line::from(Span::styled("(waiting for the first step)", THEME.dim)),
                    Line::default(),
                ];
            }
            Some(StepKind::ModeSwitch {
                to: Mode::Kernel,
                syscall,
            }) => {
                return sentence(
                    "▼ ",
                    format!("{syscall}(): user mode → kernel mode (no data moves)"),
                );
            }
            Some(StepKind::ModeSwitch {
                to: Mode::User,
                syscall,
            }) => {
                return sentence(
                    "▲ ",
                    format!("{syscall}() returns: kernel mode → user mode"),
                );
            }
            Some(StepKind::Lookup {
                hit_pages,
                miss_pages,
            }) => {
                return sentence(
                    "? ",
                    format!(
                        "page cache lookup: {hit_pages} pages found, {miss_pages} to read from disk"
                    ),
                );
            }
            Some(StepKind::Copy {
                engine: Engine::Cpu,
                from,
                to,
                bytes,
            }) => (
                *from,
                Some(*to),
                '═',
                '▶',
                format!("CPU copy · {}", human_bytes(*bytes)),
                THEME.cpu,
            ),
            Some(StepKind::Copy {
                engine: Engine::Dma,
                from,
                to,
                bytes,
            }) => (
                *from,
                Some(*to),
                '─',
                '▶',
                format!("DMA copy · {}", human_bytes(*bytes)),
                THEME.dma,
            ),
            Some(StepKind::PageRef {
                from,
                to,
                bytes,
                pinned,
            }) => (
                *from,
                Some(*to),
                '┄',
                '▷',
                format!(
                    "{} · {} (no copy)",
                    if *pinned {
                        "pinned pages"
                    } else {
                        "page references"
                    },
                    human_bytes(*bytes)
                ),
                THEME.reference,
            ),
            Some(StepKind::Handoff { bytes, peer }) => (
                Buf::Socket,
                None,
                '~',
                '▶',
                format!(
                    "{} hand-off · {} (no NIC, no DMA)",
                    if *peer { "veth" } else { "loopback" },
                    human_bytes(*bytes)
                ),
                THEME.handoff,
            ),
        };
    let to_name = |b: Option<Buf>, w: usize| match b {
        Some(b) => fitting(b, w, false),
        None => "receiver",
    };
    // Full names when they fit beside a 6-cell arrow, else the short ones.
    let full = name(from).len() + to_name(to, usize::MAX).len() + 9 <= width;
    let (f, t) = if full {
        (name(from), to_name(to, usize::MAX))
    } else {
        (fitting(from, 10, false), to_name(to, 10))
    };
    let len = width
        .saturating_sub(f.chars().count() + t.chars().count() + 3)
        .clamp(4, 24);
    let token = ((progress * (len - 1) as f64).round() as usize).min(len - 1);
    let shaft: String = (0..len)
        .map(|i| if i == token { '■' } else { body })
        .collect();
    [
        Line::from(vec![
            Span::styled(f, THEME.from),
            Span::raw(" "),
            Span::styled(format!("{shaft}{head}"), style),
            Span::raw(" "),
            Span::styled(t, THEME.to),
        ]),
        Line::from(Span::styled(label, style)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line<'_>; 2]) -> String {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn each_kind_of_step_has_its_own_arrow_shape_and_words() {
        let cpu = StepKind::Copy {
            engine: Engine::Cpu,
            from: Buf::User,
            to: Buf::Socket,
            bytes: 65536,
        };
        assert_eq!(
            text(&arrow_line(Some(&cpu), 0.0, 60)),
            "application buffer ■═══════════════════════▶ socket buffer\nCPU copy · 64 KiB"
        );
        // Narrow: the short names.
        let narrow = text(&arrow_line(Some(&cpu), 1.0, 36));
        assert!(narrow.starts_with("app buffer ═══"), "{narrow}");
        assert!(
            narrow.ends_with("■▶ socket buf\nCPU copy · 64 KiB"),
            "{narrow}"
        );
        let dma = StepKind::Copy {
            engine: Engine::Dma,
            from: Buf::Disk,
            to: Buf::PageCache,
            bytes: 65536,
        };
        assert!(
            text(&arrow_line(Some(&dma), 1.0, 60)).contains("─■▶ page cache\nDMA copy · 64 KiB")
        );
        let r = StepKind::PageRef {
            from: Buf::PageCache,
            to: Buf::Socket,
            bytes: 4096,
            pinned: false,
        };
        assert!(
            text(&arrow_line(Some(&r), 0.5, 70))
                .contains("┄▷ socket buffer\npage references · 4 KiB (no copy)")
        );
        let h = StepKind::Handoff {
            bytes: 100,
            peer: false,
        };
        assert!(text(&arrow_line(Some(&h), 0.5, 70)).contains("~▶ receiver\nloopback hand-off"));
        let ms = StepKind::ModeSwitch {
            to: Mode::Kernel,
            syscall: "read".into(),
        };
        assert_eq!(
            text(&arrow_line(Some(&ms), 0.5, 70)),
            "▼ read(): user mode → kernel mode (no data moves)\n"
        );
    }
}
