//! The message-flow panel (`M`): the last seconds of traffic between the nodes as a Lamport diagram (Lamport,
//! "Time, Clocks, and the Ordering of Events in a Distributed System", CACM 1978, figure 1), drawn as
//! Maelstrom's `messages.svg` is: one lane per node across, time flowing down, newest at the bottom.
//!
//! A row is one send: the sender's lane gets `●`, each receiver an arrowhead (`▶`/`◀`), or `✕` when the
//! message was dropped (cut or lost), and the line carries the message's kind. A message still held by a hold
//! fault waits at its sender (`⏸ vote held → n3`). A message delivered well after it was sent (held, then
//! stepped) is drawn when it arrived, its sender marked `○`. The proxies deliver within microseconds, so at
//! `--slow` timings every row is one message or one broadcast, as RaftScope draws them; at workload rates the
//! panel aggregates sends of one kind from one sender within a time bucket into one row (`append ×24`) and
//! says so in its title.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use squall_chaos::{Fate, MessageEvent};

use super::styles;
use crate::state::{ClusterState, ViewState};

/// Session time the panel shows, in microseconds.
pub const WINDOW_US: u64 = 10_000_000;
/// The finest time bucket, in microseconds: sends of one kind from one sender this close share a row.
const BUCKET_US: u64 = 100_000;
/// The coarsest bucket the panel aggregates to.
const MAX_BUCKET_US: u64 = 2_000_000;
/// A delivery this much later than its send is drawn at its delivery (the message waited: held or delayed).
const LATE_US: u64 = 300_000;

/// What became of a message at one receiver, as a row shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Delivered,
    Dropped,
    Held,
}

/// One row: sends of one kind from one sender in one time bucket.
#[derive(Debug, Clone)]
struct Row {
    at_us: u64,
    from: u64,
    kind: String,
    /// Receivers and what became of the message there (a dropped mark wins over a delivered one).
    to: BTreeMap<u64, Mark>,
    messages: usize,
    held: bool,
    late: bool,
}

/// The rows of the window ending at `now_us`, oldest first, with the bucket they were grouped by.
fn rows(messages: &[&MessageEvent], now_us: u64, fit: usize) -> (Vec<Row>, u64) {
    let from_us = now_us.saturating_sub(WINDOW_US);
    let mut bucket = BUCKET_US;
    loop {
        let mut groups: BTreeMap<(u64, u64, String, bool, bool), Row> = BTreeMap::new();
        for m in messages {
            let (at_us, mark, late) = match m.fate {
                Fate::Delivered { at_us } if at_us > m.sent_us + LATE_US => {
                    (at_us, Mark::Delivered, true)
                }
                Fate::Delivered { .. } => (m.sent_us, Mark::Delivered, false),
                Fate::Dropped { .. } => (m.sent_us, Mark::Dropped, false),
                Fate::Held => (m.sent_us, Mark::Held, false),
            };
            if at_us < from_us {
                continue;
            }
            let kind = m.kind.as_deref().unwrap_or("other").to_string();
            let held = mark == Mark::Held;
            let key = (at_us / bucket, m.link.from, kind.clone(), held, late);
            let row = groups.entry(key).or_insert_with(|| Row {
                at_us,
                from: m.link.from,
                kind,
                to: BTreeMap::new(),
                messages: 0,
                held,
                late,
            });
            row.messages += 1;
            let e = row.to.entry(m.link.to).or_insert(mark);
            if mark == Mark::Dropped {
                *e = mark;
            }
        }
        let mut out: Vec<Row> = groups.into_values().collect();
        out.sort_by_key(|r| (r.at_us, r.from));
        if out.len() <= fit * 2 || bucket >= MAX_BUCKET_US {
            return (out, bucket);
        }
        bucket *= 2;
    }
}

/// The colour of a message kind: elections stand out, heartbeats recede.
fn kind_style(kind: &str) -> Style {
    let c = match kind {
        k if k.starts_with("vote") || k.starts_with("pre-vote") => Color::Magenta,
        k if k.starts_with("append") => Color::Cyan,
        k if k.starts_with("snapshot") => Color::Blue,
        "timeout-now" => Color::Yellow,
        "heartbeat" => Color::DarkGray,
        _ => Color::Gray,
    };
    Style::default().fg(c)
}

/// Draws the panel into `area`.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, _view: &ViewState) {
    let nodes: Vec<u64> = state
        .nodes
        .keys()
        .copied()
        .filter(|id| state.shows_node(*id))
        .collect();
    let block = Block::bordered().border_style(styles::faint());
    let inner = block.inner(area);
    let fit = (inner.height as usize).saturating_sub(1);
    let now_us = state.flow.latest_us;
    let messages: Vec<&MessageEvent> = state.flow.messages().collect();
    let (mut rows, bucket) = rows(&messages, now_us, fit);
    let mut title = vec![
        Span::styled(" messages ", styles::title()),
        Span::styled(
            format!("last {} s, newest at the bottom ", WINDOW_US / 1_000_000),
            styles::dim(),
        ),
    ];
    if bucket > BUCKET_US {
        title.push(Span::styled(
            format!(
                "· aggregated: one row per sender and kind per {} ms ",
                bucket / 1000
            ),
            styles::key(),
        ));
    }
    if rows.len() > fit {
        title.push(Span::styled(
            format!("· {} older rows above ", rows.len() - fit),
            styles::dim(),
        ));
        rows.drain(..rows.len() - fit);
    }
    if state.flow.lost > 0 {
        title.push(Span::styled(
            format!("· {} not traced (busy) ", state.flow.lost),
            styles::fault(),
        ));
    }
    title.push(Span::styled("· M closes ", styles::faint()));
    frame.render_widget(block.title(Line::from(title)), area);
    let width = inner.width as usize;
    let gutter = 8;
    if nodes.is_empty() || width < gutter + 8 {
        return;
    }
    // Lane columns, spread over the width left of the gutter.
    let span = width - gutter - 4;
    let col = |i: usize| -> usize {
        if nodes.len() == 1 {
            gutter + 2
        } else {
            gutter + 2 + i * span / (nodes.len() - 1)
        }
    };
    let lane_of: BTreeMap<u64, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, col(i)))
        .collect();
    let mut lines = Vec::with_capacity(fit + 1);
    let mut head = vec![(' ', styles::dim()); width];
    for (n, &x) in &lane_of {
        for (k, ch) in format!("n{n}").chars().enumerate() {
            if let Some(c) = head.get_mut(x + k) {
                *c = (ch, styles::title());
            }
        }
    }
    lines.push(to_line(&head));
    if rows.is_empty() {
        lines.push(Line::from(Span::styled(
            "no peer messages traced yet (a kind without a classifier traces none)",
            styles::faint(),
        )));
    }
    for r in &rows {
        lines.push(to_line(&draw_row(r, &lane_of, width, now_us)));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One row as cells: the time, the lanes, the arrow and its label.
fn draw_row(
    r: &Row,
    lane_of: &BTreeMap<u64, usize>,
    width: usize,
    _now: u64,
) -> Vec<(char, Style)> {
    let mut cells = vec![(' ', Style::default()); width];
    let put = |cells: &mut Vec<(char, Style)>, x: usize, ch: char, st: Style| {
        if let Some(c) = cells.get_mut(x) {
            *c = (ch, st);
        }
    };
    let time = format!("{:>6.1}s", r.at_us as f64 / 1e6);
    for (k, ch) in time.chars().enumerate() {
        put(&mut cells, k, ch, styles::faint());
    }
    for &x in lane_of.values() {
        put(&mut cells, x, '│', styles::faint());
    }
    let Some(&xs) = lane_of.get(&r.from) else {
        return cells;
    };
    let style = kind_style(&r.kind);
    let label = if r.messages > r.to.len().max(1) {
        format!("{} ×{}", r.kind, r.messages)
    } else {
        r.kind.clone()
    };
    if r.held {
        put(&mut cells, xs, '●', style);
        let to: Vec<String> = r.to.keys().map(|n| format!("n{n}")).collect();
        let text = format!(" ⏸ {label} held → {}", to.join(" "));
        let held = Style::default().fg(Color::Yellow);
        for (k, ch) in text.chars().enumerate() {
            put(&mut cells, xs + 1 + k, ch, held);
        }
        return cells;
    }
    let right =
        r.to.keys()
            .filter_map(|n| lane_of.get(n))
            .filter(|&&x| x > xs)
            .max()
            .copied();
    let left =
        r.to.keys()
            .filter_map(|n| lane_of.get(n))
            .filter(|&&x| x < xs)
            .min()
            .copied();
    if let Some(xe) = right {
        for x in xs + 1..xe {
            put(&mut cells, x, '─', style);
        }
    }
    if let Some(xe) = left {
        for x in xe + 1..xs {
            put(&mut cells, x, '─', style);
        }
    }
    for (n, mark) in &r.to {
        let Some(&x) = lane_of.get(n) else { continue };
        let (ch, st) = match mark {
            Mark::Dropped => (
                '✕',
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            _ if x > xs => ('▶', style),
            _ => ('◀', style),
        };
        put(&mut cells, x, ch, st);
    }
    put(&mut cells, xs, if r.late { '○' } else { '●' }, style);
    // The label rides the longer side of the arrow, after the sender's mark.
    let chars: Vec<char> = label.chars().collect();
    let (start, room) = match (right, left) {
        (Some(xe), _) if xe - xs > chars.len() + 1 => (xs + 2, xe - xs - 2),
        (_, Some(xe)) if xs - xe > chars.len() + 1 => (xs - 1 - chars.len(), xs - xe - 2),
        (Some(xe), _) => (xs + 1, xe.saturating_sub(xs + 1)),
        (_, Some(xe)) => (xe + 1, xs.saturating_sub(xe + 1)),
        _ => (xs + 2, width.saturating_sub(xs + 2)),
    };
    for (k, ch) in chars.iter().take(room).enumerate() {
        put(
            &mut cells,
            start + k,
            *ch,
            style.add_modifier(Modifier::BOLD),
        );
    }
    cells
}

/// Cells to a line, runs of one style as one span.
fn to_line(cells: &[(char, Style)]) -> Line<'static> {
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut style = cells.first().map(|c| c.1).unwrap_or_default();
    for &(ch, st) in cells {
        if st != style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), style));
        }
        style = st;
        run.push(ch);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, style));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Event, Stamped};
    use squall_chaos::{DropCause, LinkId};

    fn msg(
        id: u64,
        from: u64,
        to: u64,
        kind: &'static str,
        sent_us: u64,
        fate: Fate,
    ) -> MessageEvent {
        MessageEvent {
            id,
            link: LinkId::new(from, to),
            kind: Some(kind.into()),
            sent_us,
            fate,
        }
    }

    fn screen(messages: Vec<MessageEvent>) -> String {
        let mut state = ClusterState::new();
        state.apply(&Stamped::new(
            0,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: vec![1, 2, 3],
                dir: "/tmp/x".into(),
            },
        ));
        state.apply(&Stamped::new(1, Event::Messages { messages, lost: 0 }));
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(70, 12)).unwrap();
        terminal
            .draw(|f| render(f, f.area(), &state, &ViewState::new()))
            .unwrap();
        let buf = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..12 {
            for x in 0..70 {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn a_vote_round_is_drawn_as_arrows_with_their_kinds_and_a_drop_is_crossed() {
        let d = |at_us| Fate::Delivered { at_us };
        let s = screen(vec![
            msg(1, 2, 1, "vote", 1_000_000, d(1_000_050)),
            msg(
                2,
                2,
                3,
                "vote",
                1_000_010,
                Fate::Dropped {
                    by: DropCause::Blackhole,
                    at_us: 1_000_010,
                },
            ),
            msg(3, 1, 2, "vote-reply", 1_200_000, d(1_200_040)),
            msg(4, 2, 3, "append", 1_500_000, Fate::Held),
        ]);
        assert!(s.contains("n1") && s.contains("n3"), "{s}");
        let vote = s
            .lines()
            .find(|l| l.contains("vote") && !l.contains("reply"))
            .expect(&s);
        assert!(
            vote.contains('◀') && vote.contains('✕') && vote.contains('●'),
            "{s}"
        );
        let reply = s.lines().find(|l| l.contains("vote-reply")).expect(&s);
        assert!(reply.contains('▶'), "{s}");
        assert!(s.contains("⏸ append held → n3"), "{s}");
    }

    #[test]
    fn at_workload_rates_rows_are_aggregated_and_the_title_says_so() {
        let mut m = Vec::new();
        for i in 0..2_000u64 {
            let t = 1_000_000 + i * 2_000;
            m.push(msg(
                i + 1,
                1,
                2 + i % 2,
                "append",
                t,
                Fate::Delivered { at_us: t },
            ));
        }
        let s = screen(m);
        assert!(s.contains("aggregated"), "{s}");
        assert!(s.contains("append ×"), "{s}");
    }
}
