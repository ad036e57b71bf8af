//! The watch screen's list: one line per transfer (process, source -> destination, its
//! current rate, the method it behaves like; copies and mode switches per MiB where the
//! terminal is wide), the one on screen marked; its totals on the bottom border.

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Widget},
};

use super::{
    app::App,
    escape::escape,
    theme::{THEME, pane},
};
use crate::{
    model::human_bytes,
    watch::{Row, names::Name},
};

pub(super) struct Transfers<'a> {
    pub app: &'a App,
}

/// A rate in at most 8 columns: "812B/s", "64.0K/s", "1.2G/s".
fn rate(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v >= 100.0 {
                format!("{v:.0}{unit}/s")
            } else {
                format!("{v:.1}{unit}/s")
            };
        }
    }
    format!("{n}B/s")
}

/// How the list names an end in little room: a file by its path, a socket by its peer
/// (the other end is this process), else the inode.
fn short(n: &Name) -> String {
    match (&n.path, &n.peer, n.kind) {
        (Some(path), _, _) => path.clone(),
        (_, Some(peer), _) => format!("peer {peer}"),
        (_, _, "socket") => format!("sock {}", n.ino.unwrap_or(0)),
        (_, _, "file") => format!("ino {}", n.ino.unwrap_or(0)),
        _ => "memory".into(),
    }
}

/// `s` in at most `width` columns, its end kept (a path's file name, a port).
fn tail(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{keep}")
}

/// "source → destination" in `width` columns: the source gives way first.
pub(super) fn ends(src: &str, dst: &str, width: usize) -> String {
    let (s, d) = (escape(src), escape(dst));
    let arrow = " → ";
    let room = width.saturating_sub(arrow.chars().count());
    let dn = d.chars().count();
    let sn = s.chars().count();
    if sn + dn <= room {
        return format!("{s}{arrow}{d}");
    }
    // The destination keeps up to half, the source what is left.
    let d_w = dn.min(room.max(2) / 2).max(room.saturating_sub(sn));
    let s_w = room.saturating_sub(d_w);
    format!("{}{arrow}{}", tail(&s, s_w), tail(&d, d_w))
}

fn line(r: &Row, selected: bool, width: usize) -> Line<'static> {
    let t = &r.report;
    let wide = width >= 110;
    let marker = if selected { "▶ " } else { "  " };
    let comm: String = escape(&t.comm).chars().take(9).collect();
    let who = format!("{:>7} {comm:<9} ", t.pid);
    let per_mib = if wide {
        format!(
            " {:>8.1} {:>8.1}",
            t.per_mib.cpu_copies, t.per_mib.mode_switches
        )
    } else {
        String::new()
    };
    let right = format!(" {:>8} {:<15}{per_mib}", rate(r.rate), t.method);
    let room =
        width.saturating_sub(marker.chars().count() + who.chars().count() + right.chars().count());
    let ends = if wide {
        ends(&t.source.name, &t.destination.name, room)
    } else {
        ends(&short(&t.source), &short(&t.destination), room)
    };
    let pad = room.saturating_sub(ends.chars().count());
    let style = if selected { THEME.key } else { THEME.boxed };
    Line::from(vec![
        Span::styled(marker, THEME.key),
        Span::styled(who, THEME.dim),
        Span::styled(format!("{ends}{}", " ".repeat(pad)), style),
        Span::styled(right, style),
    ])
}

impl Widget for Transfers<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let w = &self.app.watching;
        let wide = area.width >= 112;
        let title = match &w.ended {
            Some(why) => format!(
                " transfers: {} · watch ended: {} ",
                w.rows.len(),
                escape(why)
            ),
            None if wide => format!(
                " transfers: {} (↑↓ picks) · rate · method · CPU copies, switches per MiB ",
                w.rows.len()
            ),
            None => format!(" transfers: {} (↑↓ picks) ", w.rows.len()),
        };
        let mut block = pane(title);
        if let Some(r) = w.selected_row() {
            let t = &r.report;
            block = block.title_bottom(Line::from(Span::styled(
                format!(
                    " pid {}: {} so far; per MiB {:.1} CPU copies, {:.1} switches ",
                    t.pid,
                    human_bytes(t.bytes),
                    t.per_mib.cpu_copies,
                    t.per_mib.mode_switches
                ),
                THEME.dim,
            )));
        }
        let inner = block.inner(area);
        block.render(area, buf);
        let rows = inner.height as usize;
        if w.rows.is_empty() {
            Paragraph::new(Line::from(Span::styled(
                "waiting for the watched processes to move bytes…",
                THEME.dim,
            )))
            .render(inner, buf);
            return;
        }
        let sel = w.selected_index().unwrap_or(0);
        // The selected row stays in view.
        let first = (sel + 1).saturating_sub(rows);
        let lines: Vec<Line<'_>> = w.rows[first..]
            .iter()
            .take(rows)
            .enumerate()
            .map(|(i, r)| line(r, first + i == sel, inner.width as usize))
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_keep_the_destination_and_the_end_of_the_source() {
        assert_eq!(ends("/a", "tcp 1 <-> 2", 40), "/a → tcp 1 <-> 2");
        let e = ends(
            "/var/tmp/a/very/long/path/file.iso",
            "tcp 127.0.0.1:8000 <-> 127.0.0.1:51234",
            40,
        );
        assert_eq!(e.chars().count(), 40, "{e}");
        assert!(e.starts_with('…') && e.contains("file.iso → "), "{e}");
        // A name from the kernel is escaped before it is cut.
        assert_eq!(
            ends("/x\u{1b}[2J", "user memory", 40),
            "/x\\x1b[2J → user memory"
        );
        assert_eq!(rate(0), "0B/s");
        assert_eq!(rate(3 << 29), "1.5G/s");
        assert_eq!(rate(178 << 20), "178M/s");
    }
}
