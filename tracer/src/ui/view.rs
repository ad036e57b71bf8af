//! The whole screen: lays the panes out for the terminal's size (80x24 and up) or says the
//! terminal is too small. Reads the app, never changes it.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
};

use super::{
    app::{App, Kind, RunState, Screen},
    help::{DoctorPage, Help},
    history::History,
    ledger::LedgerPane,
    narration::Narration,
    path::PathDiagram,
    picker::Picker,
    status::Status,
    theme::THEME,
    timeline::Timeline,
    transfers::Transfers,
    why::Why,
};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "The terminal is {}x{}: the tracer needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(msg, THEME.warn))).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [main, status] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    frame.render_widget(Status { app }, status);
    match app.screen {
        Screen::Picker => frame.render_widget(Picker { app }, main),
        Screen::Run if app.kind == Kind::Watch => watch_screen(frame, app, main),
        Screen::Run if app.compare.is_some() => {
            if let Some(second) = app.compare.as_deref() {
                super::compare::draw(frame, app, second, main);
            }
        }
        Screen::Run => run_screen(frame, app, main),
    }
    if app.help {
        frame.render_widget(
            Help {
                watch: app.kind == Kind::Watch,
            },
            main,
        );
    }
    if app.doctor_shown {
        frame.render_widget(
            DoctorPage {
                text: app.doctor_text(),
                scroll: app.doctor_scroll,
            },
            main,
        );
    }
}

fn run_screen(frame: &mut Frame<'_>, app: &App, area: Rect) {
    // 80x24: diagram and ledger 14 rows, narration 4 (the last steps on its border),
    // timeline 5. Taller terminals get a row more for the ledger and the list of steps so
    // far.
    let top_h = if area.height >= 30 { 15 } else { 14 };
    let [top, history, narration, timeline] = Layout::vertical([
        Constraint::Length(top_h),
        Constraint::Min(0),
        Constraint::Length(4),
        Constraint::Length(5),
    ])
    .areas(area);
    let listed = history.height >= 3;
    if listed {
        frame.render_widget(History { app }, history);
    }
    let ledger_w = if area.width >= 120 { 52 } else { 30 };
    let [path, ledger] =
        Layout::horizontal([Constraint::Min(48), Constraint::Length(ledger_w)]).areas(top);
    path_and_ledger(frame, app, path, ledger);
    frame.render_widget(
        Narration {
            app,
            recent: !listed,
        },
        narration,
    );
    frame.render_widget(Timeline { app }, timeline);
}

fn path_and_ledger(frame: &mut Frame<'_>, app: &App, path: Rect, ledger: Rect) {
    // The summary has no arrow: the live run's reasons take the diagram's place.
    let summary = app.current().is_some_and(|s| s.kind.is_none());
    let why = match app.kind {
        Kind::Live => app.state == RunState::Done,
        Kind::Watch => true,
        Kind::Lesson => false,
    };
    if summary && why {
        frame.render_widget(Why { app }, path);
    } else {
        frame.render_widget(PathDiagram { app }, path);
    }
    frame.render_widget(LedgerPane { app }, ledger);
}

/// Watch: the list of transfers on top, then the panes of a run for the one selected. At
/// 24 rows the timeline gives way to the list; from 28 both, and taller terminals get the
/// steps so far too.
fn watch_screen(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let timeline_h = if area.height >= 28 { 5 } else { 0 };
    let top_h = if area.height >= 30 { 14 } else { 13 };
    let mut narration_h = 4;
    let rest = area.height.saturating_sub(timeline_h + top_h + narration_h);
    let list_h = (app.watching.rows.len() as u16 + 2).clamp(3, 12).min(rest);
    // What the list leaves goes to the steps so far when that is enough for a few, else
    // to the narration.
    if rest - list_h < 4 {
        narration_h += rest - list_h;
    }
    let [list, top, history, narration, timeline] = Layout::vertical([
        Constraint::Length(list_h),
        Constraint::Length(top_h),
        Constraint::Min(0),
        Constraint::Length(narration_h),
        Constraint::Length(timeline_h),
    ])
    .areas(area);
    frame.render_widget(Transfers { app }, list);
    let ledger_w = if area.width >= 120 { 52 } else { 30 };
    let [path, ledger] =
        Layout::horizontal([Constraint::Min(48), Constraint::Length(ledger_w)]).areas(top);
    path_and_ledger(frame, app, path, ledger);
    let listed = history.height >= 3;
    if listed {
        frame.render_widget(History { app }, history);
    }
    frame.render_widget(
        Narration {
            app,
            recent: !listed,
        },
        narration,
    );
    if timeline_h > 0 {
        frame.render_widget(Timeline { app }, timeline);
    }
}
