//! The links matrix: for every directed link (row = sender, column = receiver) its fault and its traffic.

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

/// Rows the panel needs for `nodes` nodes: borders, a column header, one row per node and a totals line.
pub fn height(nodes: usize) -> u16 {
    nodes as u16 + 4
}

/// Columns the panel needs for `nodes` nodes.
pub fn width(nodes: usize) -> u16 {
    (LABEL + CELL * nodes as u16 + 2).max(36)
}

/// Draws the matrix.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, _view: &ViewState) {
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
    frame.render_widget(Matrix { state }, inner);
}

struct Matrix<'a> {
    state: &'a ClusterState,
}

impl Widget for Matrix<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        let ids: Vec<u64> = self.state.nodes.keys().copied().collect();
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
                x,
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
                    put(buf, x, y, "   ·", styles::faint());
                    continue;
                }
                let Some(link) = self
                    .state
                    .links
                    .iter()
                    .find(|l| l.from == *from && l.to == *to)
                else {
                    put(buf, x, y, "   ?", styles::faint());
                    continue;
                };
                let text = match link.state {
                    LinkState::Ok => match self.state.link_rates.get(&(*from, *to)) {
                        Some(rate) => styles::compact(rate.frames),
                        None => "ok".to_string(),
                    },
                    LinkState::Delayed(ms) => format!("+{ms}"),
                    LinkState::Lossy(pct) => format!("{pct}%"),
                    LinkState::Cut => "✕".to_string(),
                };
                put(buf, x, y, &format!("{text:>4}"), styles::link(link.state));
            }
        }
        // Totals across every link.
        let y = area.y + 1 + ids.len() as u16;
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
