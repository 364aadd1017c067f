//! The held queue as its own panel (`H`, or `held` in the prompt): how many frames the hold faults keep, and
//! for each its link, kind and key fields, with the frame the next `step *` delivers marked `▶`, the frames a
//! newer round from the same sender superseded marked `stale`, and the links matrix cursor's link picked out
//! (the frame its `n` steps marked `n▶`).

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::styles;
use crate::state::held::{next_to_step, stale};
use crate::state::{ClusterState, HeldView, LinkState, ViewState};

/// Rows the panel wants for `frames` held frames: borders, one row per frame, at least three frames' room
/// and at most twelve.
pub fn height(frames: usize) -> u16 {
    frames.clamp(3, 12) as u16 + 2
}

/// The panel's title: the count, and how many are stale (superseded, or refused by their receiver for their
/// term; `terms` are the receivers' as last seen).
pub fn title(frames: &[HeldView], terms: &BTreeMap<u64, u64>) -> String {
    let stale = stale(frames, terms).len();
    match (frames.len(), stale) {
        (0, _) => " held: none ".to_string(),
        (n, 0) => format!(" held: {n} frame{} ", plural(n)),
        (n, s) => format!(" held: {n} frame{}, {s} stale ", plural(n)),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One text line per held frame, oldest first, as the panel draws them (without styles): `▶` on the frame
/// `step *` delivers next, `n▶` on the one the links matrix's `n` delivers (the oldest on the cursor's link),
/// `·` before the other frames of the cursor's link.
pub fn lines(
    frames: &[HeldView],
    cursor: Option<(u64, u64)>,
    terms: &BTreeMap<u64, u64>,
) -> Vec<(String, Mark)> {
    let stale = stale(frames, terms);
    let next = next_to_step(frames);
    let on_cursor = |f: &HeldView| cursor == Some((f.from, f.to));
    // The first on the link, as `next_to_step` (the list is oldest first; seqs from hosts are not).
    let cursor_next = frames.iter().find(|f| on_cursor(f)).map(|f| f.seq);
    frames
        .iter()
        .map(|f| {
            let kind = f.kind.as_deref().unwrap_or("other");
            // Most details begin with their kind (`heartbeat n1 term 2 …`); do not say it twice. The words are
            // the ones `step` answers with, so a frame reads the same here and in the feed.
            let what = if f.detail.is_empty() {
                kind.to_string()
            } else if f.detail.split_whitespace().next() == Some(kind) {
                f.detail.clone()
            } else {
                format!("{kind} {}", f.detail)
            };
            let lead = match (next == Some(f.seq), cursor_next == Some(f.seq)) {
                (true, _) => "▶ ",
                (false, true) => "n▶",
                (false, false) if on_cursor(f) => "· ",
                _ => "  ",
            };
            let mark = if stale.contains(&f.seq) {
                Mark::Stale
            } else if on_cursor(f) {
                Mark::Cursor
            } else {
                Mark::Plain
            };
            let tail = if mark == Mark::Stale { "  stale" } else { "" };
            (format!("{lead} {}->{} {what}{tail}", f.from, f.to), mark)
        })
        .collect()
}

/// How a held line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A frame nothing picks out.
    Plain,
    /// On the links matrix cursor's link.
    Cursor,
    /// Superseded by a newer round from its sender, or refused by its receiver for its term (`drop-stale`
    /// drops it).
    Stale,
}

/// Draws the panel; when the queue is longer than the panel, the newest frames that do not fit are counted
/// on the last row.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let frames = &state.held;
    let terms = state.terms();
    let hint = Line::from(vec![
        Span::styled(" m", styles::key()),
        Span::styled(" cursor on a link: ", styles::dim()),
        Span::styled("n", styles::key()),
        Span::styled(" step ", styles::dim()),
        Span::styled("z", styles::key()),
        Span::styled(" drop ", styles::dim()),
        Span::styled("a", styles::key()),
        Span::styled(" release ", styles::dim()),
        Span::styled("H", styles::key()),
        Span::styled(" close ", styles::dim()),
    ])
    .right_aligned();
    let block = Block::bordered()
        .title(Span::styled(title(frames, &terms), styles::title()))
        .title_bottom(hint)
        .border_style(styles::link(LinkState::Held));
    let inner = block.inner(area);
    let rows = usize::from(inner.height);
    let all = lines(frames, view.link_cursor, &terms);
    let mut text: Vec<Line> = if all.is_empty() {
        vec![Line::from(Span::styled(
            "no frame held (`hold *` holds every link; `timeout N` starts an election)",
            styles::dim(),
        ))]
    } else {
        let shown = if all.len() > rows {
            rows.saturating_sub(1)
        } else {
            all.len()
        };
        let mut v: Vec<Line> = all
            .iter()
            .take(shown)
            .map(|(t, m)| {
                let style = match m {
                    Mark::Plain => styles::link(LinkState::Held),
                    Mark::Cursor => styles::key().add_modifier(Modifier::BOLD),
                    Mark::Stale => styles::faint(),
                };
                Line::from(Span::styled(t.clone(), style))
            })
            .collect();
        if shown < all.len() {
            v.push(Line::from(Span::styled(
                format!("… {} newer", all.len() - shown),
                styles::dim(),
            )));
        }
        v
    };
    text.truncate(rows.max(1));
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(Paragraph::new(text).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seq: u64, from: u64, to: u64, kind: &str, detail: &str) -> HeldView {
        HeldView {
            seq,
            from,
            to,
            kind: Some(kind.into()),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_panel_marks_next_stale_and_the_cursors_link() {
        let frames = vec![
            f(1, 3, 1, "pre-vote", "pre-vote n3 term 2 last 4/1"),
            f(2, 3, 2, "pre-vote", "pre-vote n3 term 2 last 4/1"),
            f(3, 3, 1, "pre-vote", "pre-vote n3 term 3 last 4/1"),
            f(4, 3, 2, "vote", "vote n3 term 3 last 4/1"),
        ];
        let none = BTreeMap::new();
        assert_eq!(title(&frames, &none), " held: 4 frames, 2 stale ");
        // n1 has reached term 3: the pre-vote for 3 it would refuse is stale too.
        assert_eq!(
            title(&frames, &BTreeMap::from([(1, 3)])),
            " held: 4 frames, 3 stale "
        );
        let l: Vec<String> = lines(&frames, Some((3, 2)), &none)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            l,
            vec![
                "▶  3->1 pre-vote n3 term 2 last 4/1  stale",
                "n▶ 3->2 pre-vote n3 term 2 last 4/1  stale",
                "   3->1 pre-vote n3 term 3 last 4/1",
                "·  3->2 vote n3 term 3 last 4/1",
            ]
        );
        assert_eq!(lines(&frames, Some((3, 2)), &none)[3].1, Mark::Cursor);
        assert_eq!(title(&[], &none), " held: none ");
    }
}
