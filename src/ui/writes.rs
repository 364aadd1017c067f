//! The sparkline of committed writes per second.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Sparkline};

use super::styles;
use crate::state::{ClusterState, ViewState};

/// Draws one bar per completed second, newest on the right.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, _view: &ViewState) {
    let bars = area.width.saturating_sub(2) as usize;
    let max = state.writes.max_over(bars);
    let title = Line::from(vec![
        Span::styled(" commits/s ", styles::title()),
        Span::styled(
            format!("now {} max {} ", state.writes.last_rate(), max),
            styles::dim(),
        ),
    ]);
    let block = Block::bordered().title(title).border_style(styles::faint());
    // Right-align the history: pad the left with empty seconds while the session is younger than the panel.
    let data: Vec<u64> = state.writes.completed(bars).collect();
    let pad = bars.saturating_sub(data.len());
    let spark = Sparkline::default()
        .block(block)
        .data(std::iter::repeat_n(0, pad).chain(data))
        .max(max.max(1))
        .style(Style::new().fg(Color::Green));
    frame.render_widget(spark, area);
}
