//! The footer: key hints; the partition prompt or the fault prompt (with the grammar of the verb being typed)
//! while one is open; the links matrix's keys while it has the keyboard.

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
    ("m", "links"),
    (":", "fault prompt"),
    ("c", "client"),
    ("d", "delay"),
    ("l", "loss"),
    ("t", "transfer"),
    ("a", "add node"),
    ("D", "remove"),
    ("w", "wipe"),
    ("s", "term"),
    ("+-", "rate"),
    ("␣", "freeze"),
    ("R", "rec"),
    ("Tab", "panel"),
    ("PgUp", "feed back"),
];

/// Keys while the links matrix has the keyboard.
const LINK_HINTS: &[(&str, &str)] = &[
    ("←↑↓→", "move"),
    ("x", "cut"),
    ("d", "+200ms"),
    ("l", "30% loss"),
    ("o", "hold"),
    ("n", "step held"),
    ("z", "drop held"),
    ("a", "release"),
    ("h", "heal all"),
    (":", "prompt"),
    ("Esc", "back"),
];

fn badge(text: &str, bg: Color) -> Span<'static> {
    Span::styled(
        format!(" {text} "),
        Style::new()
            .fg(Color::Black)
            .bg(bg)
            .add_modifier(Modifier::BOLD),
    )
}

/// Hints that fit in `width` after `used` columns.
fn hints(
    spans: &mut Vec<Span<'static>>,
    mut used: usize,
    width: usize,
    list: &[(&'static str, &'static str)],
) {
    for (key, what) in list {
        let len = key.chars().count() + what.chars().count() + 3;
        if used + len > width {
            break;
        }
        used += len;
        spans.push(Span::styled(*key, styles::key()));
        spans.push(Span::styled(format!(" {what}  "), styles::dim()));
    }
}

/// Draws the footer line.
pub fn render(frame: &mut Frame, area: Rect, _state: &ClusterState, view: &ViewState) {
    let line = if let Some(text) = &view.command {
        // The grammar of the verb being typed (or what a target and a kind are), after the text.
        let verb = text.split_whitespace().next().unwrap_or("");
        let known = crate::command::verbs::VERBS.contains(&verb);
        let hint = if known {
            crate::command::fault::hint(verb).to_string()
        } else if verb.is_empty() {
            "cut · delay · loss · dup · reorder · bandwidth · blackhole · reset · partition · isolate · hold · step · release · heal · faults · powercut · disk · clock · … Tab complete  ⏎ run  Esc cancel".to_string()
        } else {
            let close: Vec<&str> = crate::command::verbs::VERBS
                .iter()
                .copied()
                .filter(|v| v.starts_with(verb))
                .collect();
            if close.is_empty() {
                format!("no command `{verb}`")
            } else {
                close.join(" · ")
            }
        };
        Line::from(vec![
            badge("fault", Color::Yellow),
            Span::raw(" "),
            Span::styled(
                format!("{text}▏"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("  {hint}"), styles::dim()),
        ])
    } else if let Some((from, to)) = view.link_cursor {
        let mut spans = vec![
            badge(&format!("link {from}->{to}"), Color::Cyan),
            Span::raw(" "),
        ];
        let used = spans.iter().map(|s| s.width()).sum();
        hints(&mut spans, used, area.width as usize, LINK_HINTS);
        Line::from(spans)
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
        let mut spans = Vec::new();
        if let Some(notice) = &view.notice {
            spans.push(Span::styled(
                format!(" {notice} "),
                Style::new().fg(Color::Black).bg(Color::Yellow),
            ));
        }
        spans.push(Span::styled(format!(" {text}"), styles::dim()));
        Line::from(spans)
    } else {
        let mut spans = Vec::new();
        let mut used = 0usize;
        if let Some(notice) = &view.notice {
            let s = format!(" {notice} ");
            used += s.chars().count() + 1;
            spans.push(Span::styled(
                s,
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(" "));
        }
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
        hints(&mut spans, used, area.width as usize, HINTS);
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
