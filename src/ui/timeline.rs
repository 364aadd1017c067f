//! The timeline: a lane per node showing its role over the last minute, and the event feed with times.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Widget};

use super::styles;
use crate::state::{ClusterState, LANE_WINDOW_MS, LaneRole, ViewState};

/// Rows the lanes need for `nodes` nodes (borders and the time axis included).
pub fn lanes_height(nodes: usize) -> u16 {
    nodes as u16 + 3
}

/// Width of the node label left of each lane.
const LABEL: u16 = 4;

/// Draws the role lanes.
pub fn render_lanes(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let mut legend = vec![Span::raw(" ")];
    for role in [
        LaneRole::Leader,
        LaneRole::Candidate,
        LaneRole::PreCandidate,
        LaneRole::Follower,
        LaneRole::Paused,
        LaneRole::Down,
    ] {
        legend.push(Span::styled(styles::lane_glyph(role), styles::lane(role)));
        legend.push(Span::styled(format!("{} ", lane_name(role)), styles::dim()));
    }
    let block = Block::bordered()
        .title(Span::styled(" roles, last minute ", styles::title()))
        .title_bottom(Line::from(legend).right_aligned())
        .border_style(styles::faint());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(Lanes { state, view }, inner);
}

fn lane_name(role: LaneRole) -> &'static str {
    match role {
        LaneRole::Leader => "leader",
        LaneRole::Candidate => "candidate",
        LaneRole::PreCandidate => "pre-vote",
        LaneRole::Follower => "follower",
        LaneRole::Paused => "paused",
        LaneRole::Down => "down",
        LaneRole::Unknown => "unknown",
    }
}

struct Lanes<'a> {
    state: &'a ClusterState,
    view: &'a ViewState,
}

impl Widget for Lanes<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width <= LABEL || area.height == 0 {
            return;
        }
        let width = (area.width - LABEL) as usize;
        let mut cells = vec![LaneRole::Unknown; width];
        let lanes_rows = area.height.saturating_sub(1);
        for (row, node) in self.state.nodes.values().enumerate() {
            if row as u16 >= lanes_rows {
                break;
            }
            let y = area.y + row as u16;
            let selected = self.view.selected == Some(node.id);
            let label = format!("{}n{}", if selected { "▶" } else { " " }, node.id);
            buf.set_stringn(
                area.x,
                y,
                &label,
                LABEL as usize,
                if selected {
                    styles::key()
                } else {
                    styles::dim()
                },
            );
            node.lane
                .sample(self.state.now_ms, LANE_WINDOW_MS, &mut cells);
            for (i, role) in cells.iter().enumerate() {
                let x = area.x + LABEL + i as u16;
                if let Some(c) = buf.cell_mut((x, y)) {
                    c.set_symbol(styles::lane_glyph(*role))
                        .set_style(styles::lane(*role));
                }
            }
        }
        // Time axis under the lanes.
        let y = area.y + lanes_rows.min(self.state.nodes.len() as u16);
        if y < area.bottom() {
            let x0 = area.x + LABEL;
            let w = area.width - LABEL;
            buf.set_stringn(x0, y, "-60s", w as usize, styles::faint());
            if w > 20 {
                buf.set_stringn(x0 + w / 2 - 2, y, "-30s", 4, styles::faint());
            }
            if w > 8 {
                buf.set_stringn(x0 + w - 3, y, "now", 3, styles::faint());
            }
        }
    }
}

/// Draws the newest feed lines that fit, oldest at the top.
pub fn render_feed(frame: &mut Frame, area: Rect, state: &ClusterState, _view: &ViewState) {
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(" events ", styles::title()),
            Span::styled(format!("{} ", state.feed_total()), styles::dim()),
        ]))
        .border_style(styles::faint());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(Feed { state }, inner);
}

struct Feed<'a> {
    state: &'a ClusterState,
}

impl Widget for Feed<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rows = area.height as usize;
        let feed = &self.state.feed;
        let skip = feed.len().saturating_sub(rows);
        for (row, line) in feed.iter().skip(skip).enumerate() {
            let y = area.y + row as u16;
            let time = styles::clock_tenths(line.at_ms);
            let (x, _) = buf.set_stringn(area.x, y, &time, area.width as usize, styles::faint());
            let x = x + 1;
            if x < area.right() {
                let (x, _) = buf.set_stringn(
                    x,
                    y,
                    &line.text,
                    (area.right() - x) as usize,
                    styles::feed(line.kind),
                );
                if line.repeats > 1 && x < area.right() {
                    let count = format!(
                        " ×{} (last {})",
                        line.repeats,
                        styles::clock_tenths(line.last_ms)
                    );
                    buf.set_stringn(x, y, &count, (area.right() - x) as usize, styles::dim());
                }
            }
        }
    }
}
