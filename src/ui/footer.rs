//! The footer: key hints, or the partition prompt while it is open.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::styles;
use crate::state::{ClusterState, ViewState};

/// Key hints in the order they are dropped last-first when the line is too narrow.
const HINTS: &[(&str, &str)] = &[
    ("?", "help"),
    ("q", "quit"),
    ("↑↓", "select"),
    ("k", "kill"),
    ("p", "pause"),
    ("r", "restart"),
    ("i", "isolate"),
    ("K", "kill leader"),
    ("x", "partition"),
    ("h", "heal"),
    ("c", "client"),
    ("d", "delay"),
    ("l", "loss"),
    ("t", "transfer"),
    ("w", "wipe"),
    ("s", "term"),
    ("+-", "rate"),
    ("␣", "freeze"),
    ("R", "rec"),
    ("Tab", "panel"),
];

/// Draws the footer line.
pub fn render(frame: &mut Frame, area: Rect, _state: &ClusterState, view: &ViewState) {
    let line = if let Some(text) = &view.command {
        Line::from(vec![
            Span::styled(
                " command ",
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(" :"),
            Span::styled(
                format!("{text}▏"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled("  ⏎", styles::key()),
            Span::styled(" run  ", styles::dim()),
            Span::styled("Esc", styles::key()),
            Span::styled(
                " cancel   e.g. powercut 2 · disk 1 stall · clock 3 +1h",
                styles::dim(),
            ),
        ])
    } else if let Some(text) = &view.prompt {
        Line::from(vec![
            Span::styled(
                " partition ",
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(" "),
            Span::styled("h", styles::key()),
            Span::styled(" halves  ", styles::dim()),
            Span::styled("b", styles::key()),
            Span::styled(" bridge  ", styles::dim()),
            Span::styled("r", styles::key()),
            Span::styled(" ring  ", styles::dim()),
            Span::styled("or groups ", styles::dim()),
            Span::styled(
                format!("{text}▏"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled("  ⏎", styles::key()),
            Span::styled(" apply  ", styles::dim()),
            Span::styled("Esc", styles::key()),
            Span::styled(" cancel", styles::dim()),
        ])
    } else if let Some(text) = &view.footer {
        Line::from(Span::styled(format!(" {text}"), styles::dim()))
    } else {
        let mut spans = Vec::new();
        let mut used = 0usize;
        if let Some(sel) = view.selected {
            let s = format!(" n{sel} ");
            used += s.chars().count() + 1;
            spans.push(Span::styled(
                s,
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(" "));
        }
        for (key, what) in HINTS {
            let len = key.chars().count() + what.chars().count() + 3;
            if used + len > area.width as usize {
                break;
            }
            used += len;
            spans.push(Span::styled(*key, styles::key()));
            spans.push(Span::styled(format!(" {what}  "), styles::dim()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
