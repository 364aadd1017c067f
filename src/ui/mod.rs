//! The dashboard's widgets, one file each. They draw from [`ClusterState`] and [`ViewState`] only: no I/O, no
//! clock, generic over the backend, so screens are snapshot-tested with ratatui's `TestBackend`.
//!
//! The layout follows `frame.area()` on every frame. A terminal big enough for every panel gets them all at
//! once; a smaller one (80×24 included) shows the header, one panel chosen with Tab, and the footer.

mod flow;
mod footer;
mod header;
pub mod held;
mod help;
mod latency;
mod links;
mod log;
mod nodes;
pub mod styles;
mod timeline;
mod writes;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Tabs;

use crate::state::{ClusterState, Tab, ViewState};

/// Narrowest terminal that gets every panel at once.
pub const FULL_MIN_WIDTH: u16 = 120;

/// Rows the full layout needs for `nodes` nodes (with at least five lines of events).
pub fn full_min_height(nodes: usize) -> u16 {
    header::HEIGHT
        + nodes::height(nodes)
        + log::height(nodes).max(links::height(nodes))
        + timeline::lanes_height(nodes)
        + 5
        + 1
}

/// Whether `area` is big enough for every panel at once (otherwise panels become tabs).
pub fn fits_full(area: Rect, nodes: usize) -> bool {
    area.width >= FULL_MIN_WIDTH && area.height >= full_min_height(nodes)
}

/// The smallest terminal the dashboard draws in; below it, it says so instead of abbreviating every column.
pub const MIN_WIDTH: u16 = 80;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 24;

/// Whether `area` is below [`MIN_WIDTH`]×[`MIN_HEIGHT`]: the dashboard then shows only a "too small"
/// screen, and no key but quit acts.
pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame, state: &ClusterState, view: &ViewState) {
    let area = frame.area();
    if too_small(area) {
        let text = vec![
            Line::from(Span::styled(
                format!("terminal {}×{} is too small", area.width, area.height),
                styles::fault(),
            )),
            Line::from(Span::styled(
                format!("squall needs at least {MIN_WIDTH}×{MIN_HEIGHT}: enlarge the window"),
                styles::dim(),
            )),
            Line::from(Span::styled(
                "(only q and Ctrl-C act here; the cluster keeps running)",
                styles::faint(),
            )),
        ];
        frame.render_widget(
            ratatui::widgets::Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    // A removed node whose process stopped has no row.
    let n = state
        .nodes
        .keys()
        .filter(|id| state.shows_node(**id))
        .count()
        .max(1);
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, head, state, view);
    if fits_full(area, n) {
        draw_full(frame, body, state, view, n);
    } else {
        draw_tabbed(frame, body, state, view, n);
    }
    footer::render(frame, foot, state, view);
    if view.help {
        help::render(frame, area, view);
    }
}

fn draw_full(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState, n: usize) {
    let side = links::width(n);
    // The held-queue panel takes the role lanes' place, taller when the queue is long.
    let lower_rows = if view.held {
        timeline::lanes_height(n).max(held::height(state.held.len()))
    } else {
        timeline::lanes_height(n)
    };
    let [table, middle, lower, feed] = Layout::vertical([
        Constraint::Length(nodes::height(n)),
        Constraint::Length(log::height(n).max(links::height(n))),
        Constraint::Length(lower_rows),
        Constraint::Min(3),
    ])
    .areas(area);
    nodes::render(frame, table, state, view);
    let [logs, matrix] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(side)]).areas(middle);
    log::render(frame, logs, state, view);
    links::render(frame, matrix, state, view);
    let [lanes, spark] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(side)]).areas(lower);
    if view.held {
        held::render(frame, lanes, state, view);
    } else {
        timeline::render_lanes(frame, lanes, state, view);
    }
    writes::render(frame, spark, state, view);
    // Wide and tall enough, the latency chart goes beside the feed.
    let feed = if feed.width >= 150 && feed.height >= 8 {
        let [feed, chart] =
            Layout::horizontal([Constraint::Min(20), Constraint::Length(latency::WIDTH)])
                .areas(feed);
        latency::render(frame, chart, state, view);
        feed
    } else {
        feed
    };
    feed_or_flow(frame, feed, state, view);
}

/// The event feed, or the message-flow panel in its place while `M` has it open.
fn feed_or_flow(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    if view.flow {
        flow::render(frame, area, state, view);
    } else {
        timeline::render_feed(frame, area, state, view);
    }
}

fn draw_tabbed(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState, n: usize) {
    let [bar, content] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let selected = Tab::ALL.iter().position(|t| *t == view.tab).unwrap_or(0);
    let tabs = Tabs::new(Tab::ALL.iter().map(|t| Line::from(t.title())))
        .select(selected)
        .style(styles::dim())
        .highlight_style(styles::key().add_modifier(ratatui::style::Modifier::REVERSED))
        .divider(Span::styled("│", styles::faint()));
    let [tabs_area, hint] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(14)]).areas(bar);
    frame.render_widget(tabs, tabs_area);
    frame.render_widget(
        Line::from(vec![
            Span::styled("Tab", styles::key()),
            Span::styled(" next panel", styles::dim()),
        ]),
        hint,
    );
    // Open, the held-queue panel sits above whatever the tab shows.
    let content = if view.held {
        let [top, rest] = split(content, held::height(state.held.len()));
        held::render(frame, top, state, view);
        rest
    } else {
        content
    };
    match view.tab {
        Tab::Nodes => {
            let [top, rest] = split(content, nodes::height(n));
            nodes::render(frame, top, state, view);
            feed_or_flow(frame, rest, state, view);
        }
        Tab::Logs => {
            let [top, rest] = split(content, log::height(n));
            log::render(frame, top, state, view);
            writes::render(frame, rest, state, view);
        }
        Tab::Timeline => {
            let [top, rest] = split(content, timeline::lanes_height(n));
            timeline::render_lanes(frame, top, state, view);
            feed_or_flow(frame, rest, state, view);
        }
        Tab::Links => {
            let [top, rest] = split(content, links::height(n));
            let [matrix, spark] =
                Layout::horizontal([Constraint::Length(links::width(n)), Constraint::Min(0)])
                    .areas(top);
            links::render(frame, matrix, state, view);
            if spark.width >= 12 {
                writes::render(frame, spark, state, view);
            }
            feed_or_flow(frame, rest, state, view);
        }
    }
}

/// A panel of `rows` rows on top and the rest below.
fn split(area: Rect, rows: u16) -> [Rect; 2] {
    Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(area)
}

/// The screen `draw` makes of `state` at `width`×`height`, as plain text (one line per row), rendered with
/// ratatui's `TestBackend`: how tests and `--dump-screens` compare a live session with its replay.
pub fn render_text(state: &ClusterState, view: &ViewState, width: u16, height: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
        .expect("a TestBackend terminal");
    terminal
        .draw(|f| draw(f, state, view))
        .expect("drawing into memory");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}
