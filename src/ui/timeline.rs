//! The timeline: a lane per node showing its role over the last minute, and the event feed with times.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
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
        // Multi-Paxos has no pre-vote: a Paxos session's legend does not offer one.
        if state.paxos && role == LaneRole::PreCandidate {
            continue;
        }
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
        // A removed node whose process stopped has no lane: the panel is for the nodes there are.
        let shown: Vec<_> = self
            .state
            .nodes
            .values()
            .filter(|n| self.state.shows_node(n.id))
            .collect();
        for (row, node) in shown.iter().enumerate() {
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
        let y = area.y + lanes_rows.min(shown.len() as u16);
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

/// Draws the feed lines that fit, oldest at the top: the newest ones, or those [`ViewState::feed_scroll`] lines
/// back. A line longer than the panel is wrapped, its continuation indented under the text, so a long line (a
/// check's verdict) is read whole.
pub fn render_feed(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let block = Block::bordered().border_style(styles::faint());
    let inner = block.inner(area);
    let (rows, below) = visible(
        state,
        view.feed_scroll,
        inner.width as usize,
        inner.height as usize,
    );
    let mut title = vec![
        Span::styled(" events ", styles::title()),
        Span::styled(format!("{} ", state.feed_total()), styles::dim()),
    ];
    if below > 0 {
        title.push(Span::styled(
            format!("· {below} newer below · End follows "),
            styles::key(),
        ));
    } else {
        title.push(Span::styled("· PgUp scrolls back ", styles::faint()));
    }
    frame.render_widget(block.title(Line::from(title)), area);
    frame.render_widget(Feed { rows }, inner);
}

/// One screen row of the feed: styled pieces, and whether it continues the line above (indented).
type Row = (Vec<(String, Style)>, bool);

/// The rows that fit in `width`×`height` with the feed scrolled `scroll` lines back from the newest, and how
/// many lines lie below the last one shown. Scrolled to the oldest, the panel fills from the top.
fn visible(state: &ClusterState, scroll: usize, width: usize, height: usize) -> (Vec<Row>, usize) {
    let feed = &state.feed;
    if width == 0 || height == 0 || feed.is_empty() {
        return (Vec::new(), 0);
    }
    let wrapped = |i: usize| {
        let line = &feed[i];
        let mut segments = vec![
            (
                format!("{} ", styles::clock_tenths(line.at_ms)),
                styles::faint(),
            ),
            (line.text.clone(), styles::feed(line.kind)),
        ];
        if line.repeats > 1 {
            segments.push((
                format!(
                    " ×{} (last {})",
                    line.repeats,
                    styles::clock_tenths(line.last_ms)
                ),
                styles::dim(),
            ));
        }
        wrap(&segments, width, TIME_W)
    };
    let end = feed.len() - scroll.min(feed.len() - 1);
    // Back from `end` while lines fit, then forward past it if the panel still has room.
    let (mut first, mut last) = (end, end);
    let mut used = 0;
    while first > 0 {
        let h = wrapped(first - 1).len();
        if used + h > height && used > 0 {
            break;
        }
        used += h;
        first -= 1;
    }
    while last < feed.len() {
        let h = wrapped(last).len();
        if used + h > height {
            break;
        }
        used += h;
        last += 1;
    }
    let rows = (first..last)
        .flat_map(|i| {
            wrapped(i)
                .into_iter()
                .enumerate()
                .map(|(k, row)| (row, k > 0))
        })
        .take(height)
        .collect();
    (rows, feed.len() - last)
}

struct Feed {
    rows: Vec<Row>,
}

/// Width of the time column ("00:27.5 ").
const TIME_W: usize = 8;

/// Splits styled text into rows: `width` characters on the first, `width - indent` on the others. Rows break
/// between words (a space at a break is dropped); only a word longer than a whole row is cut.
fn wrap(segments: &[(String, Style)], width: usize, indent: usize) -> Vec<Vec<(String, Style)>> {
    let chars: Vec<(char, Style)> = segments
        .iter()
        .flat_map(|(text, style)| text.chars().map(move |c| (c, *style)))
        .collect();
    let room = |row: usize| {
        if row == 0 {
            width
        } else {
            width.saturating_sub(indent)
        }
    };
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut i = 0;
    while i < chars.len() {
        let row = rows.len() - 1;
        if chars[i].0 == ' ' {
            let full = rows[row].len() >= room(row);
            if full && room(row + 1) > 0 {
                // The break falls on this space.
                rows.push(Vec::new());
            } else if !(rows[row].is_empty() && row > 0) {
                rows[row].push(chars[i]);
            }
            i += 1;
            continue;
        }
        let end = chars[i..]
            .iter()
            .position(|(c, _)| *c == ' ')
            .map_or(chars.len(), |p| i + p);
        let word = end - i;
        let used = rows[row].len();
        if used > 0 && used + word > room(row) && word <= room(row + 1) {
            // The word goes whole onto the next row; the spaces before it end this one.
            while rows[row].last().is_some_and(|(c, _)| *c == ' ') {
                rows[row].pop();
            }
            rows.push(Vec::new());
        }
        for &ch in &chars[i..end] {
            let row = rows.len() - 1;
            if rows[row].len() >= room(row) && room(row + 1) > 0 {
                rows.push(Vec::new());
            }
            rows.last_mut().expect("a row").push(ch);
        }
        i = end;
    }
    rows.into_iter()
        .map(|row| {
            let mut pieces: Vec<(String, Style)> = Vec::new();
            for (c, style) in row {
                match pieces.last_mut() {
                    Some((text, s)) if *s == style => text.push(c),
                    _ => pieces.push((c.to_string(), style)),
                }
            }
            pieces
        })
        .collect()
}

impl Widget for Feed {
    fn render(self, area: Rect, buf: &mut Buffer) {
        for (i, (pieces, continued)) in self.rows.iter().enumerate() {
            let y = area.y + i as u16;
            if y >= area.bottom() {
                return;
            }
            let mut x = area.x + if *continued { TIME_W as u16 } else { 0 };
            for (text, style) in pieces {
                let (nx, _) =
                    buf.set_stringn(x, y, text, area.right().saturating_sub(x) as usize, *style);
                x = nx;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Vec<(String, Style)>]) -> Vec<String> {
        rows.iter()
            .map(|r| r.iter().map(|(t, _)| t.as_str()).collect())
            .collect()
    }

    #[test]
    fn feed_lines_wrap_between_words() {
        let segments = vec![
            ("00:27.5 ".to_string(), Style::new()),
            (
                "n7: the change waits for a majority; the feed tells each step".to_string(),
                styles::dim(),
            ),
        ];
        let rows = texts(&wrap(&segments, 40, TIME_W));
        assert_eq!(
            rows,
            vec![
                "00:27.5 n7: the change waits for a",
                "majority; the feed tells each",
                "step",
            ],
            "a row ends at a word's end, never inside one"
        );
        for r in &rows {
            assert!(r.chars().count() <= 40 && !r.starts_with(' ') && !r.ends_with(' '));
        }
        // A word longer than a row is cut, as nothing else fits.
        let long = vec![("x".repeat(50), Style::new())];
        let rows = texts(&wrap(&long, 40, TIME_W));
        assert_eq!(rows, vec!["x".repeat(40), "x".repeat(10)]);
    }
}
