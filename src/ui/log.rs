//! The logs panel: each node's recent log as a strip of cells, aligned by index across nodes and coloured by
//! term, committed entries solid and uncommitted ones outlined, so a diverging or truncated log stands out.
//! A configuration entry (a membership change) shows as `◆` and its term's last digit.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::styles;
use crate::state::{ClusterState, NodeView, ViewState};

/// Rows the panel needs for `nodes` nodes (borders and the index ruler included).
pub fn height(nodes: usize) -> u16 {
    nodes as u16 + 3
}

/// Width of the node label left of each strip.
const LABEL: u16 = 4;

/// Draws the strips into `area`.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let inner_w = area.width.saturating_sub(2 + LABEL);
    // Three columns per cell fit a two-digit term; narrow panels fall back to one digit.
    let cw: u16 = if inner_w / 3 >= 24 { 3 } else { 2 };
    let count = u64::from(inner_w / cw);
    let (start, end, follows) = window(state, view, count);

    let title = Line::from(vec![
        Span::styled(" logs ", styles::title()),
        Span::styled(
            if end == 0 {
                "(empty) ".to_string()
            } else {
                format!("{start}–{end} ")
            },
            styles::dim(),
        ),
        Span::styled(
            follows.map_or(String::new(), |n| format!("following n{n} ")),
            styles::key(),
        ),
    ]);
    let legend = Line::from(vec![
        Span::styled(" ", styles::dim()),
        Span::styled("07", styles::committed_cell(7)),
        Span::styled(" committed ", styles::dim()),
        Span::styled("07", styles::uncommitted_cell(7)),
        Span::styled(" uncommitted ", styles::dim()),
        Span::styled("░░", styles::faint()),
        Span::styled(" snapshot ", styles::dim()),
        Span::styled("··", styles::faint()),
        Span::styled(" held, not shown ", styles::dim()),
        Span::styled("◆", styles::key()),
        Span::styled(" config ", styles::dim()),
    ])
    .right_aligned();
    let block = Block::bordered()
        .title(title)
        .title_bottom(legend)
        .border_style(styles::faint());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || count == 0 {
        return;
    }
    let strips = Strips {
        state,
        view,
        start,
        count,
        cw,
    };
    frame.render_widget(strips, inner);
}

/// The indexes shown: up to the highest index any node holds, unless the selected node's log ends before that
/// window, in which case the window moves back to show its last entries (and which node it follows).
fn window(state: &ClusterState, view: &ViewState, count: u64) -> (u64, u64, Option<u64>) {
    let top = state.log_end();
    let start_of = |end: u64| (end + 1).saturating_sub(count).max(1);
    let selected_last = view
        .selected
        .and_then(|id| state.nodes.get(&id)?.status.as_ref())
        .map(|s| s.core.last_log_index);
    match selected_last {
        Some(last) if last > 0 && last < start_of(top) => {
            // Leave a quarter of the strip after its last entry for what the others hold there.
            let end = (last + count / 4).min(top);
            (start_of(end), end, view.selected)
        }
        _ => (start_of(top), top, None),
    }
}

/// The ruler and one strip per node, drawn straight into the buffer: hundreds of single cells are cheaper
/// this way than as spans.
struct Strips<'a> {
    state: &'a ClusterState,
    view: &'a ViewState,
    start: u64,
    count: u64,
    cw: u16,
}

impl Widget for Strips<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let x0 = area.x + LABEL;
        // Ruler: an index label above every tenth cell, where it fits.
        let mut next_free = x0;
        for k in 0..self.count {
            let idx = self.start + k;
            let x = x0 + k as u16 * self.cw;
            let label = format!("╷{idx}");
            let fits = x + label.chars().count() as u16 <= area.right();
            if idx.is_multiple_of(10) && x >= next_free && fits {
                buf.set_stringn(x, area.y, &label, label.len(), styles::faint());
                next_free = x + label.chars().count() as u16 + 1;
            }
        }
        let shown = self
            .state
            .nodes
            .values()
            .filter(|n| self.state.shows_node(n.id));
        for (row, node) in shown.enumerate() {
            let y = area.y + 1 + row as u16;
            if y >= area.bottom() {
                break;
            }
            self.strip(node, x0, y, area, buf);
        }
    }
}

impl Strips<'_> {
    fn strip(&self, node: &NodeView, x0: u16, y: u16, area: Rect, buf: &mut Buffer) {
        let selected = self.view.selected == Some(node.id);
        let label_style = if selected {
            styles::key()
        } else {
            styles::dim()
        };
        let label = format!("{}n{}", if selected { "▶" } else { " " }, node.id);
        buf.set_stringn(area.x, y, &label, LABEL as usize, label_style);
        let Some(status) = &node.status else {
            // A node whose kind reports no log entries (only role, term, commit…) has nothing to draw here.
            let text = if node.brief.is_some() {
                "— (this node kind reports no log entries)"
            } else {
                "no status yet"
            };
            buf.set_stringn(
                x0,
                y,
                text,
                area.right().saturating_sub(x0) as usize,
                styles::faint(),
            );
            return;
        };
        let fresh = node.live_status().is_some();
        if status.core.last_log_index < self.start {
            let text = format!("◂ log ends at {}", status.core.last_log_index);
            buf.set_stringn(
                x0,
                y,
                &text,
                area.right().saturating_sub(x0) as usize,
                styles::faint(),
            );
            return;
        }
        let tail = &status.log_tail;
        let first_in_tail = tail.first().map_or(u64::MAX, |c| c.index);
        let digits = (self.cw - 1) as usize;
        for k in 0..self.count {
            let idx = self.start + k;
            let x = x0 + k as u16 * self.cw;
            if x + self.cw > area.right() + 1 {
                break;
            }
            let (text, style): (String, Style) = if idx > status.core.last_log_index {
                continue;
            } else if idx <= status.core.snapshot_index && idx < first_in_tail {
                ("░".repeat(digits), styles::faint())
            } else if let Some(cell) = tail
                .get((idx.wrapping_sub(first_in_tail)) as usize)
                .filter(|c| c.index == idx)
            {
                let text = if cell.text.starts_with("config ") {
                    // A membership change: the mark, then the term's last digit where there is room.
                    let t = cell.term % 10;
                    if digits >= 2 {
                        format!("◆{t:>w$}", w = digits - 1)
                    } else {
                        "◆".to_string()
                    }
                } else {
                    let t = cell.term % if digits >= 2 { 100 } else { 10 };
                    format!("{t:>digits$}")
                };
                let style = if idx <= status.core.commit_index {
                    styles::committed_cell(cell.term)
                } else {
                    styles::uncommitted_cell(cell.term)
                };
                (
                    text,
                    if fresh {
                        style
                    } else {
                        style.add_modifier(ratatui::style::Modifier::DIM)
                    },
                )
            } else {
                // Older than the reported tail but not compacted: present, contents unknown here.
                ("·".repeat(digits), styles::faint())
            };
            buf.set_stringn(x, y, &text, digits, style);
        }
    }
}
