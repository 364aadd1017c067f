//! The `?` overlay listing every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::styles;

/// Keys by section: (key, what it does).
const SECTIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "selected node",
        &[
            ("↑ ↓  1-9", "select a node"),
            ("k", "kill (SIGKILL)"),
            ("s", "terminate (SIGTERM)"),
            ("p", "pause / resume (SIGSTOP / SIGCONT)"),
            ("r", "restart"),
            ("w", "wipe its data and restart"),
            ("i", "isolate from every peer"),
            ("d", "cycle latency on its links: 0, 50, 200, 1000 ms"),
            ("l", "cycle loss on its links: 0, 10, 30, 100 %"),
            ("t", "transfer leadership to it"),
        ],
    ),
    (
        "cluster",
        &[
            ("K", "kill the leader"),
            ("x", "partition: h halves, b bridge, r ring, or 1,2|3,4,5 ⏎"),
            ("h", "heal every fault (network; disk, clock too)"),
            (":", "command: powercut 2, disk 1 stall, clock 3 +1h"),
            (
                "c  + -",
                "client workload: start / stop, raise / lower its rate",
            ),
            ("v", "verify: no acknowledged write lost"),
        ],
    ),
    (
        "display",
        &[
            ("space", "freeze the display (the cluster keeps running)"),
            ("R", "start / stop recording to a new .cast file"),
            ("Tab", "next panel, when the terminal is small"),
            ("?  Esc", "close this help"),
            (
                "q  Ctrl-C",
                "quit: stop every node and restore the terminal",
            ),
        ],
    ),
];

/// Draws the overlay centred in `area`.
pub fn render(frame: &mut Frame, area: Rect) {
    let rows: u16 = SECTIONS
        .iter()
        .map(|(_, keys)| keys.len() as u16 + 2)
        .sum::<u16>()
        + 1;
    let w = area.width.saturating_sub(4).min(84);
    let h = area.height.saturating_sub(2).min(rows + 1);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    // Short terminals get the keys without section titles, so all of them still fit in 24 rows.
    let sections = h > rows;
    let mut lines = Vec::new();
    for (title, keys) in SECTIONS {
        if sections {
            lines.push(Line::from(Span::styled(
                format!(" {title}"),
                styles::title(),
            )));
        }
        for (key, what) in *keys {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} {key:<11}", if sections { " " } else { "" }),
                    styles::key(),
                ),
                Span::raw(*what),
            ]));
        }
        if sections {
            lines.push(Line::raw(""));
        }
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(Span::styled(" keys ", styles::title()))
                .title_bottom(
                    Line::from(Span::styled(
                        " every action shows in the event feed ",
                        styles::dim(),
                    ))
                    .right_aligned(),
                )
                .border_style(styles::key()),
        ),
        rect,
    );
}
