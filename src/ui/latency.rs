//! The latency chart: the workload's recent operations, one point each (ok, and the ones that failed or
//! whose outcome is unknown), with a vertical marker at every fault.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType};

use super::styles;
use crate::state::{ClusterState, ViewState};

/// Seconds of history the chart shows.
pub const WINDOW_S: f64 = 60.0;
/// Narrowest the panel is drawn.
pub const WIDTH: u16 = 44;

/// Draws the chart of the last [`WINDOW_S`] seconds into `area`.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, _view: &ViewState) {
    let now = state.now_ms as f64 / 1e3;
    let from = (now - WINDOW_S).max(0.0);
    let x = |ms: u64| ms as f64 / 1e3 - from;
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut top = 1.0f64;
    for o in state
        .client_ops
        .iter()
        .filter(|o| o.at_ms as f64 / 1e3 >= from)
    {
        let y = o.latency_us as f64 / 1e3;
        top = top.max(y);
        if o.result == "ok" {
            ok.push((x(o.at_ms), y));
        } else {
            bad.push((x(o.at_ms), y));
        }
    }
    let top = top * 1.1;
    let faults: Vec<[(f64, f64); 2]> = state
        .fault_marks
        .iter()
        .filter(|&&at| at as f64 / 1e3 >= from)
        .map(|&at| [(x(at), 0.0), (x(at), top)])
        .collect();
    let mut datasets = Vec::new();
    for line in &faults {
        datasets.push(
            Dataset::default()
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(Color::Red))
                .data(line),
        );
    }
    datasets.push(
        Dataset::default()
            .graph_type(GraphType::Scatter)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::Cyan))
            .data(&ok),
    );
    datasets.push(
        Dataset::default()
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(Style::new().fg(Color::Yellow))
            .data(&bad),
    );
    let title = Line::from(vec![
        Span::styled(" latency ms ", styles::title()),
        Span::styled("· ok ", Style::new().fg(Color::Cyan)),
        Span::styled("• fail/info ", Style::new().fg(Color::Yellow)),
        Span::styled("│ fault ", Style::new().fg(Color::Red)),
    ]);
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(title).border_style(styles::faint()))
        .x_axis(
            Axis::default()
                .bounds([0.0, WINDOW_S])
                .style(styles::dim())
                .labels([format!("-{WINDOW_S:.0}s"), "now".to_string()]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .style(styles::dim())
                .labels(["0".to_string(), format!("{top:.0}")]),
        );
    frame.render_widget(chart, area);
}
