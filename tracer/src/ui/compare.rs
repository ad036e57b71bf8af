//! Two paths compared (`lesson --compare A,B`, `replay A B`): side by side from 120x40,
//! stacked at 80x24, stepping together by the article's step numbers (Tab says which one
//! the keys step), each with its ledger in two scopes, and the difference spelled out from
//! the ledgers.

use crossterm::event::KeyCode;
use ratatui::{
    Frame,
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Paragraph, Widget, Wrap},
};

use super::{
    app::{Action, App, Kind, Msg, update_one},
    ledger::rows,
    narration::Narration,
    path::PathDiagram,
    theme::{THEME, pane},
    timeline::Timeline,
};
use crate::{
    demo::plural,
    model::{Ledger, Method},
};

/// [`super::app::update`] of a comparison: Tab swaps the path the keys step, the other
/// follows it by step number; quitting, help and the doctor are the first path's.
pub(super) fn update(app: &mut App, msg: Msg) -> Option<Action> {
    if let Msg::Key(k) = &msg {
        match k.code {
            KeyCode::Tab | KeyCode::BackTab if !app.help && !app.doctor_shown => {
                app.focus_second = !app.focus_second;
                return None;
            }
            KeyCode::Char('r' | 'm') if !app.help && !app.doctor_shown && app.goto.is_none() => {
                app.notice =
                    Some("compare: r and m are off (start again to compare others)".into());
                return None;
            }
            _ => {}
        }
    }
    // Keys that are the whole screen's (quit, help, the doctor) go to the first path.
    let global = match &msg {
        Msg::Key(k) => {
            app.help
                || app.doctor_shown
                || matches!(k.code, KeyCode::Char('q' | '?' | 'd') | KeyCode::Esc)
                    && app.goto.is_none()
                || k.modifiers
                    .contains(crossterm::event::KeyModifiers::CONTROL)
        }
        Msg::Quit | Msg::Doctor(_) => true,
        _ => false,
    };
    let Some(mut second) = app.compare.take() else {
        return update_one(app, msg);
    };
    let action = if global || !app.focus_second {
        let a = update_one(app, msg);
        follow(app, &mut second);
        a
    } else {
        let a = update_one(&mut second, msg);
        follow(&second, app);
        a
    };
    app.compare = Some(second);
    action
}

/// Moves `other` to the step of `leader`'s article number: its last step numbered that
/// or lower (a step without a number goes with the one before it), its summary when the
/// leader is at its summary.
fn follow(leader: &App, other: &mut App) {
    other.playing = false;
    other.step_ms = other.interval_ms();
    let target = match leader.current() {
        None => {
            other.shown = 0;
            return;
        }
        Some(s) if s.kind.is_none() => {
            other.shown = other.queue.len();
            return;
        }
        Some(s) => s.number.unwrap_or(0),
    };
    let mut number = 0;
    let mut shown = 0;
    for (i, s) in other.queue.iter().enumerate() {
        if s.kind.is_none() {
            break;
        }
        number = s.number.unwrap_or(number);
        if number <= target {
            shown = i + 1;
        }
    }
    other.shown = shown;
}

/// The whole first chunk's ledger (every step of the queue but the summary).
fn chunk_ledger(app: &App) -> Ledger {
    let mut l = Ledger::default();
    for kind in app.queue.iter().filter_map(|s| s.kind.as_ref()) {
        l.record(kind);
    }
    l
}

/// The whole run's ledger: observed where the run was traced, else the textbook's.
fn run_ledger(app: &App) -> &Ledger {
    app.observed.as_ref().unwrap_or(&app.textbook)
}

/// What `cheap` does fewer of than `dear`: (how many fewer, one, many).
fn fewer(dear: &Ledger, cheap: &Ledger) -> Vec<(u64, &'static str, &'static str)> {
    [
        (
            dear.mode_switches,
            cheap.mode_switches,
            "mode switch",
            "mode switches",
        ),
        (dear.cpu_copies, cheap.cpu_copies, "CPU copy", "CPU copies"),
        (dear.dma_copies, cheap.dma_copies, "DMA copy", "DMA copies"),
    ]
    .into_iter()
    .filter(|(d, c, _, _)| d > c)
    .map(|(d, c, one, many)| (d - c, one, many))
    .collect()
}

fn and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The difference of two paths, from their ledgers: which saves what per chunk and per
/// run ("sendfile saves 2 mode switches and 2 CPU copies per chunk (256 and 256 per
/// run)"), and what it costs more, if anything.
pub(super) fn difference(a: (Method, &Ledger, &Ledger), b: (Method, &Ledger, &Ledger)) -> String {
    let cost = |l: &Ledger| l.mode_switches + l.cpu_copies + l.dma_copies;
    let (cheap, dear) = if cost(b.1) <= cost(a.1) {
        (b, a)
    } else {
        (a, b)
    };
    let saved = fewer(dear.1, cheap.1);
    if saved.is_empty() {
        return format!(
            "{} and {} make the same mode switches and copies per chunk",
            a.0.name(),
            b.0.name()
        );
    }
    let per_chunk: Vec<String> = saved
        .iter()
        .map(|(n, one, many)| plural(*n, one, many))
        .collect();
    let run = fewer(dear.2, cheap.2);
    let per_run: Vec<String> = saved
        .iter()
        .map(|(_, _, many)| {
            run.iter()
                .find(|(_, _, m)| m == many)
                .map_or(0, |(n, _, _)| *n)
                .to_string()
        })
        .collect();
    let mut text = format!(
        "{} saves {} per chunk ({} per run)",
        cheap.0.name(),
        and(&per_chunk),
        and(&per_run)
    );
    let more: Vec<String> = fewer(cheap.1, dear.1)
        .iter()
        .map(|(n, one, many)| format!("{} more", plural(*n, one, many)))
        .collect();
    if !more.is_empty() {
        text.push_str(&format!(", for {}", and(&more)));
    }
    text
}

/// The comparison's difference line for the two paths on screen.
fn difference_of(a: &App, b: &App) -> String {
    difference(
        (a.method, &chunk_ledger(a), run_ledger(a)),
        (b.method, &chunk_ledger(b), run_ledger(b)),
    )
}

/// One path's ledger in two scopes: this chunk so far, and the whole run.
struct Scopes<'a> {
    app: &'a App,
}

impl Widget for Scopes<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let block = pane(" this chunk so far │ whole run ");
        let inner = block.inner(area);
        block.render(area, buf);
        let vw = ((inner.width as usize).saturating_sub(12) / 2).clamp(7, 14);
        let chunk = rows(&app.chunk_so_far(), vw);
        let run = rows(run_ledger(app), vw);
        let mut lines = vec![Line::from(Span::styled(
            format!("{:<10} {:>vw$} {:>vw$}", "", "chunk", "run"),
            THEME.dim,
        ))];
        // Bytes and lookups are in the full ledger; here the counts the article compares.
        for i in [0, 1, 2, 3, 4, 5, 6, 7] {
            lines.push(Line::from(vec![
                Span::styled(format!("{:<10} ", chunk[i].0), THEME.band),
                Span::styled(format!("{:>vw$}", chunk[i].1), THEME.key),
                Span::styled(format!(" {:>vw$}", run[i].1), THEME.boxed),
            ]));
        }
        Paragraph::new(lines).render(inner, buf);
    }
}

/// A path's name and step on its pane's top border; `focused`: the keys step it.
fn label(app: &App, focused: bool, area: Rect, buf: &mut Buffer) {
    let what = match app.kind {
        Kind::Lesson => "model",
        Kind::Live | Kind::Watch => "recorded",
    };
    let text = format!(
        "{}{} ({what}) · step {} of {} ",
        if focused { " ▶ " } else { " " },
        app.method.name(),
        app.shown,
        app.queue.len()
    );
    buf.set_stringn(
        area.x + 1,
        area.y,
        &text,
        area.width.saturating_sub(2) as usize,
        if focused { THEME.key } else { THEME.title },
    );
}

/// The current step's sentence on a pane's bottom border (stacked: no narration pane).
fn caption(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = app.current() else { return };
    let width = area.width.saturating_sub(4) as usize;
    let mut text = format!(" {} ", s.text);
    if text.chars().count() > width {
        text = format!(
            " {}… ",
            s.text
                .chars()
                .take(width.saturating_sub(3))
                .collect::<String>()
        );
    }
    buf.set_stringn(
        area.x + 1,
        area.y + area.height - 1,
        &text,
        width + 2,
        THEME.dim,
    );
}

/// The comparison's screen (the status line is drawn by the caller).
pub(super) fn draw(frame: &mut Frame<'_>, app: &App, second: &App, area: Rect) {
    let focus = [!app.focus_second, app.focus_second];
    if area.width >= 120 && area.height >= 39 {
        let [cols, diff] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(3)]).areas(area);
        let [left, right] =
            Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(cols);
        for ((a, col), focused) in [(app, left), (second, right)].into_iter().zip(focus) {
            let [path, narration, timeline, ledger] = Layout::vertical([
                Constraint::Length(14),
                Constraint::Length(4),
                Constraint::Length(5),
                Constraint::Min(0),
            ])
            .areas(col);
            frame.render_widget(PathDiagram { app: a }, path);
            label(a, focused, path, frame.buffer_mut());
            frame.render_widget(
                Narration {
                    app: a,
                    recent: true,
                },
                narration,
            );
            frame.render_widget(Timeline { app: a }, timeline);
            frame.render_widget(Scopes { app: a }, ledger);
        }
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                difference_of(app, second),
                THEME.key,
            )))
            .wrap(Wrap { trim: true })
            .block(pane(" the difference, from the ledgers ")),
            diff,
        );
    } else {
        let [top, bottom, diff] = Layout::vertical([
            Constraint::Ratio(1, 2),
            Constraint::Ratio(1, 2),
            Constraint::Length(1),
        ])
        .areas(area);
        for ((a, half), focused) in [(app, top), (second, bottom)].into_iter().zip(focus) {
            let [path, ledger] =
                Layout::horizontal([Constraint::Min(48), Constraint::Length(32)]).areas(half);
            frame.render_widget(PathDiagram { app: a }, path);
            label(a, focused, path, frame.buffer_mut());
            caption(a, path, frame.buffer_mut());
            frame.render_widget(Scopes { app: a }, ledger);
        }
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                difference_of(app, second),
                THEME.key,
            ))),
            diff,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::textbook::{self, Conditions};

    fn first_chunk(m: Method) -> Ledger {
        let mut l = Ledger::default();
        for s in textbook::steps(m, 65536, 65536, &Conditions::ARTICLE) {
            l.record(&s.kind);
        }
        l
    }

    #[test]
    fn the_difference_is_computed_from_the_ledgers() {
        let run = |m| textbook::ledger(m, 8 << 20, 65536, &Conditions::ARTICLE);
        let (rs, sf) = (Method::ReadSend, Method::Sendfile);
        assert_eq!(
            difference(
                (rs, &first_chunk(rs), &run(rs)),
                (sf, &first_chunk(sf), &run(sf))
            ),
            "sendfile saves 2 mode switches and 2 CPU copies per chunk (256 and 256 per run)"
        );
        // Either order names the same saver.
        assert!(
            difference(
                (sf, &first_chunk(sf), &run(sf)),
                (rs, &first_chunk(rs), &run(rs))
            )
            .starts_with("sendfile saves 2 mode switches and 2 CPU copies per chunk")
        );
        let same = difference(
            (rs, &first_chunk(rs), &run(rs)),
            (rs, &first_chunk(rs), &run(rs)),
        );
        assert_eq!(
            same,
            "read-send and read-send make the same mode switches and copies per chunk"
        );
    }
}
