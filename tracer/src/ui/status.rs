//! The status line: method, kernel, probe tier, events/s, drops, playing or paused, speed.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::Widget,
};

use super::{
    app::{App, Kind, Probes, SPEEDS, Screen},
    theme::THEME,
};

pub(super) struct Status<'a> {
    pub app: &'a App,
}

impl Widget for Status<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        // Wide terminals get words; 80 columns get the same facts, packed.
        let wide = area.width >= 130;
        let sep = if wide { " │ " } else { "│" };
        let mut spans = Vec::new();
        if app.kind == Kind::Lesson {
            spans.push(Span::styled(
                if wide {
                    " LESSON: a model, not a measurement "
                } else {
                    " LESSON: a model "
                },
                THEME.lesson,
            ));
            spans.push(Span::raw(" "));
        }
        if let Some(note) = &app.notice {
            spans.push(Span::styled(note.clone(), THEME.warn));
            buf.set_line(area.x, area.y, &Line::from(spans), area.width);
            return;
        }
        if let Some(typed) = &app.goto {
            spans.push(Span::styled(
                format!(
                    "go to step: {typed}▏ (1-{}, enter; any other key cancels)",
                    app.queue.len()
                ),
                THEME.key,
            ));
            buf.set_line(area.x, area.y, &Line::from(spans), area.width);
            return;
        }
        if app.screen == Screen::Picker {
            spans.push(Span::styled("pick a method", THEME.key));
            spans.push(Span::raw(format!("{sep}? help{sep}q quit")));
            buf.set_line(area.x, area.y, &Line::from(spans), area.width);
            return;
        }
        match app.kind {
            // The method of the transfer on screen (or `other`).
            Kind::Watch => {
                let method = app.watching.selected_row().map_or("-", |r| r.report.method);
                spans.push(Span::styled(format!("watch {method}"), THEME.key));
            }
            _ => spans.push(Span::styled(app.method.name(), THEME.key)),
        }
        // The release is the kernel's string (uname -r).
        let release = super::escape::escape(&app.kernel);
        let kernel = if wide {
            format!("kernel {release}")
        } else {
            release.split('-').next().unwrap_or_default().to_string()
        };
        spans.push(Span::raw(format!("{sep}{kernel}")));
        match (app.kind, wide) {
            (_, true) => spans.push(Span::raw(format!("{sep}probes: {}", app.probes))),
            (Kind::Live | Kind::Watch, false) => spans.push(Span::raw(format!(
                "{sep}{}",
                match app.probes {
                    Probes::Tracepoints { fexit: true } => "tp_btf+fexit",
                    Probes::Recorded { fexit: false } => "replay tp_btf",
                    Probes::Recorded { fexit: true } => "replay tp_btf+fexit",
                    Probes::Tracepoints { fexit: false } | Probes::Model => "tp_btf",
                }
            ))),
            (Kind::Lesson, false) => {}
        }
        if app.kind != Kind::Lesson {
            let rate = if app.events_per_s >= 10_000 {
                format!("{:.1}k", app.events_per_s as f64 / 1000.0)
            } else {
                app.events_per_s.to_string()
            };
            spans.push(Span::raw(format!("{sep}{rate} ev/s{sep}")));
            // Events lost in the kernel, live: the ledgers undercount from then on.
            if app.drops > 0 {
                spans.push(Span::styled(
                    if wide {
                        format!("drops {} (ledger undercounts)", app.drops)
                    } else {
                        format!("drops {}!", app.drops)
                    },
                    THEME.warn,
                ));
            } else {
                spans.push(Span::raw("drops 0"));
            }
        }
        spans.push(Span::raw(sep));
        spans.push(Span::styled(
            if app.playing {
                "▶ playing"
            } else {
                "⏸ paused"
            },
            THEME.key,
        ));
        spans.push(Span::raw(format!(
            "{sep}{}{sep}? help",
            SPEEDS[app.speed].1
        )));
        buf.set_line(area.x, area.y, &Line::from(spans), area.width);
    }
}

#[cfg(test)]
mod tests {
    use ratatui::widgets::Widget as _;

    use super::*;
    use crate::model::Method;

    fn line(app: &App, width: u16) -> (String, Buffer) {
        let area = Rect::new(0, 0, width, 1);
        let mut buf = Buffer::empty(area);
        Status { app }.render(area, &mut buf);
        let text = (0..width).map(|x| buf[(x, 0)].symbol()).collect();
        (text, buf)
    }

    #[test]
    fn drops_show_live_and_stand_out() {
        let mut app = App::new(
            Kind::Live,
            Some(Method::Sendfile),
            "6.18.0",
            8 << 20,
            65536,
            true,
        );
        let (text, _) = line(&app, 140);
        assert!(text.contains("drops 0"), "{text}");
        app.drops = 42;
        for (width, shown) in [(140, "drops 42 (ledger undercounts)"), (80, "drops 42!")] {
            let (text, buf) = line(&app, width);
            let at = text.find(shown).unwrap_or_else(|| panic!("{text}"));
            let x = text[..at].chars().count() as u16;
            assert_eq!(buf[(x, 0)].fg, THEME.warn.fg.unwrap(), "{text}");
        }
        // A kernel release is the kernel's string: escaped.
        app.kernel = "6.18\u{1b}[2J".into();
        let (text, _) = line(&app, 140);
        assert!(text.contains("kernel 6.18\\x1b[2J"), "{text:?}");
    }

    #[test]
    fn the_probes_in_use_are_named_wide_and_narrow() {
        let mut app = App::new(
            Kind::Live,
            Some(Method::Sendfile),
            "6.18.0",
            8 << 20,
            65536,
            true,
        );
        for (fexit, wide, narrow) in [
            (false, "│ probes: tracepoints (tp_btf) │", "│tp_btf│"),
            (
                true,
                "│ probes: tracepoints (tp_btf) + fexit │",
                "│tp_btf+fexit│",
            ),
        ] {
            app.probes = Probes::Tracepoints { fexit };
            let (text, _) = line(&app, 140);
            assert!(text.contains(wide), "{text}");
            let (text, _) = line(&app, 80);
            assert!(text.contains(narrow), "{text}");
        }
    }
}
