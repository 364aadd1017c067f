//! The links matrix: for every directed link (row = sender, column = receiver) its fault and its traffic;
//! below it the fault set (with time left on timed faults), the frames held for stepping, and, while the matrix
//! has the keyboard (`m`), which message kinds flow over the link under the cursor.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::styles;
use crate::state::{ClusterState, LinkState, ViewState};

/// Columns per matrix cell.
const CELL: u16 = 5;
/// Width of the row label.
const LABEL: u16 = 4;

/// Rows below the matrix for the fault set, held frames and the cursor's link (more show when the row the
/// panel shares with the logs is taller).
const NOTES: u16 = 4;

/// Rows the panel needs for `nodes` nodes: borders, a column header, one row per node, [`NOTES`] rows of
/// faults and held frames, and a totals line.
pub fn height(nodes: usize) -> u16 {
    nodes as u16 + 4 + NOTES
}

/// The text of one cell, at most four columns wide so every column stays aligned.
pub fn cell_text(state: LinkState, rate: Option<f64>) -> String {
    let t = match state {
        LinkState::Ok => rate.map_or_else(|| "ok".to_string(), styles::compact),
        LinkState::Delayed(ms) if ms < 1000 => format!("+{ms}"),
        LinkState::Delayed(ms) if ms % 1000 == 0 || ms >= 10_000 => format!("+{}s", ms / 1000),
        LinkState::Delayed(ms) => format!("+{:.1}", ms as f64 / 1000.0),
        LinkState::Lossy(pct) => format!("{pct}%"),
        LinkState::Cut => "✕".to_string(),
        LinkState::Held => "hold".to_string(),
        LinkState::Shaped => "~".to_string(),
    };
    t.chars().take(4).collect()
}

/// Columns the panel needs for `nodes` nodes.
pub fn width(nodes: usize) -> u16 {
    (LABEL + CELL * nodes as u16 + 2).max(36)
}

/// Draws the matrix.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let legend = Line::from(vec![
        Span::styled(" n", styles::link(LinkState::Ok)),
        Span::styled(" fr/s ", styles::dim()),
        Span::styled("+ms", styles::link(LinkState::Delayed(1))),
        Span::styled(" ", styles::dim()),
        Span::styled("%", styles::link(LinkState::Lossy(1))),
        Span::styled(" loss ", styles::dim()),
        Span::styled("✕", styles::link(LinkState::Cut)),
        Span::styled(" cut ", styles::dim()),
    ])
    .right_aligned();
    let block = Block::bordered()
        .title(Span::styled(" links from→to ", styles::title()))
        .title_bottom(legend)
        .border_style(styles::faint());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(
        Matrix {
            state,
            cursor: view.link_cursor,
        },
        inner,
    );
}

struct Matrix<'a> {
    state: &'a ClusterState,
    cursor: Option<(u64, u64)>,
}

impl Widget for Matrix<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        let ids: Vec<u64> = self.state.shown_ids();
        if self.state.links.is_empty() {
            buf.set_stringn(
                area.x,
                area.y,
                "no link report yet",
                area.width as usize,
                styles::faint(),
            );
            return;
        }
        let right = area.right();
        let put = |buf: &mut Buffer, x: u16, y: u16, s: &str, style: ratatui::style::Style| {
            if x < right && y < area.bottom() {
                buf.set_stringn(x, y, s, (right - x) as usize, style);
            }
        };
        for (c, id) in ids.iter().enumerate() {
            let x = area.x + LABEL + c as u16 * CELL;
            put(
                buf,
                x + 1,
                area.y,
                &format!("{:>4}", format!("n{id}")),
                styles::dim(),
            );
        }
        for (r, from) in ids.iter().enumerate() {
            let y = area.y + 1 + r as u16;
            put(buf, area.x, y, &format!("n{from}"), styles::dim());
            for (c, to) in ids.iter().enumerate() {
                let x = area.x + LABEL + c as u16 * CELL;
                if from == to {
                    put(buf, x + 1, y, "   ·", styles::faint());
                    continue;
                }
                let Some(link) = self
                    .state
                    .links
                    .iter()
                    .find(|l| l.from == *from && l.to == *to)
                else {
                    put(buf, x + 1, y, "   ?", styles::faint());
                    continue;
                };
                let rate = self.state.link_rates.get(&(*from, *to)).map(|r| r.frames);
                let text = cell_text(link.state, rate);
                let mut style = styles::link(link.state);
                if self.cursor == Some((*from, *to)) {
                    style = style.add_modifier(ratatui::style::Modifier::REVERSED);
                    put(buf, x, y, "[", styles::key());
                }
                put(buf, x + 1, y, &format!("{text:>4}"), style);
            }
        }
        let mut y = area.y + 1 + ids.len() as u16;
        let room = |y: u16| y + 1 < area.bottom();
        // The link under the cursor: what flows over it, by message kind.
        if let Some((from, to)) = self.cursor
            && let Some(l) = self
                .state
                .links
                .iter()
                .find(|l| l.from == from && l.to == to)
        {
            let kinds: Vec<String> = l
                .kinds
                .iter()
                .map(|(k, n)| format!("{k} {}", styles::compact(*n as f64)))
                .collect();
            let text = format!(
                "{from}->{to}: {}",
                if kinds.is_empty() {
                    "no frames yet".to_string()
                } else {
                    kinds.join(" ")
                }
            );
            put(buf, area.x, y, &text, styles::dim());
            y += 1;
        }
        // The fault set, then held frames, while rows remain (the totals keep the last one).
        if let Some(set) = &self.state.fault_set {
            for f in set {
                if !room(y) {
                    break;
                }
                let left = f
                    .until_ms
                    .map(|u| {
                        format!(
                            " {}",
                            crate::state::left_text(u.saturating_sub(self.state.now_ms))
                        )
                    })
                    .unwrap_or_default();
                put(
                    buf,
                    area.x,
                    y,
                    &format!("#{} {}{left}", f.id, f.text),
                    styles::fault(),
                );
                y += 1;
            }
        }
        for h in &self.state.held {
            if !room(y) {
                break;
            }
            // The description begins with the kind ("pre-vote n2 term 3 …"); without one, the kind alone.
            let what = if h.detail.is_empty() {
                h.kind.as_deref().unwrap_or("other")
            } else {
                &h.detail
            };
            let text = format!("‖ {}->{} {what}", h.from, h.to);
            put(buf, area.x, y, &text, styles::link(LinkState::Held));
            y += 1;
        }
        // Totals across every link.
        let _ = y;
        let y = area.bottom().saturating_sub(1);
        let (frames, bytes, dropped) = self
            .state
            .link_rates
            .values()
            .fold((0.0, 0.0, 0.0), |(f, b, d), r| {
                (f + r.frames, b + r.bytes, d + r.dropped)
            });
        let total = format!(
            "all {} fr/s {}B/s drop {}/s",
            styles::compact(frames),
            styles::compact(bytes),
            styles::compact(dropped)
        );
        put(buf, area.x, y, &total, styles::dim());
    }
}
