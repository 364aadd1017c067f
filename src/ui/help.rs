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
            ("k  s", "kill (SIGKILL) / terminate (SIGTERM)"),
            ("p", "pause / resume (SIGSTOP / SIGCONT)"),
            ("r  w", "restart / wipe its data and restart"),
            ("i", "isolate from every peer"),
            ("d", "cycle latency on its links: 0, 50, 200, 1000 ms"),
            ("l", "cycle loss on its links: 0, 10, 30, 100 %"),
            ("t", "transfer leadership to it"),
            ("D", "remove it from the configuration, then stop it"),
        ],
    ),
    (
        "cluster",
        &[
            ("K", "kill the leader"),
            ("a", "add a node: learner, caught up, then voter"),
            ("x", "partition: h halves, b bridge, r ring, or 1,2|3,4,5 ⏎"),
            ("h", "heal every fault (network; disk, clock too)"),
            (
                "m",
                "links matrix: ←↑↓→ a link, x cut d delay l loss o hold",
            ),
            (
                ":  f",
                "any console line: cut 1->2 for 5s, powercut 2, disk 1 stall",
            ),
            (
                "c C + -",
                "workload: start / stop, counter ⇄ lin-kv, rate up / down",
            ),
            (
                "v",
                "verify: nothing acknowledged lost; lin-kv linearizable",
            ),
        ],
    ),
    (
        "display",
        &[
            ("space", "freeze the display (the cluster keeps running)"),
            (
                "PgUp PgDn",
                "scroll the feed back / on; Home End: oldest / newest",
            ),
            ("R", "record to a new .cast beside the event log"),
            ("E", "write this session so far as a scenario file"),
            ("Tab", "next panel, when the terminal is small"),
            ("?  Esc", "next help page (symbols) / close this help"),
            (
                "q  Ctrl-C",
                "quit: stop every node and restore the terminal",
            ),
        ],
    ),
];

/// The second page: what the symbols and columns mean.
const SYMBOLS: &[(&str, &[(&str, &str)])] = &[
    (
        "header",
        &[
            (
                "client A of B/s",
                "workload writes acknowledged per second, of B asked",
            ),
            ("✗N", "workload writes that failed or timed out so far"),
            ("faults", "what is broken now: processes, then links"),
            (
                "check ✓ ✗ ?",
                "last check: nothing lost / writes lost / undecided",
            ),
        ],
    ),
    (
        "nodes table",
        &[
            (
                "last idx/term",
                "index and term of the node's last log entry",
            ),
            ("lag", "entries the node is behind the leader's log"),
            (
                "member",
                "voter / learner / removed / joining; title: config",
            ),
            (
                "precand",
                "precandidate (asks for pre-votes), narrow tables",
            ),
            (
                "rpc in/out/err",
                "Raft messages in / out / sends failed (k = 1000)",
            ),
            (
                "grey values",
                "last known: the node is down or not answering",
            ),
        ],
    ),
    (
        "logs and links",
        &[
            ("07", "an entry of term 7: solid committed, else not yet"),
            ("░░", "compacted into a snapshot"),
            ("··", "held by the node but older than its reported tail"),
            ("◂ ends at N", "the node's log ends before this window"),
            ("◆7", "a configuration entry (membership change), term 7"),
            ("links", "per direction from→to: +ms delay, % loss, ✕ cut"),
        ],
    ),
];

/// The keys of `squall replay`.
const REPLAY: &[(&str, &[(&str, &str)])] = &[(
    "replay",
    &[
        ("space", "play / pause"),
        ("+ -", "faster / slower"),
        ("← →", "back / forward 5 s"),
        ("[ ]", "previous / next fault or action"),
        ("Home End", "start / end of the session"),
        ("↑ ↓  1-9", "select a node"),
        ("PgUp PgDn", "scroll the event feed back / forward"),
        ("Tab", "next panel, when the terminal is small"),
        ("?  Esc", "next help page (symbols) / close this help"),
        ("q", "quit the replay"),
    ],
)];

/// What each fault kind does to frames, shown under the keys when the terminal has room.
fn kinds_lines() -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        " fault kinds (fault prompt or console; TARGET 2 · 1->2 · 1<->2 · 2->* · *->2 · *)",
        styles::title(),
    ))];
    for (kind, what) in crate::command::fault::WHAT_KINDS_DO {
        lines.push(Line::from(vec![
            Span::styled(format!("   {kind:<11}"), styles::key()),
            Span::raw(what),
        ]));
    }
    lines
}

/// Draws the help overlay centred in `area`: the keys (the live dashboard's, or replay's), or on page 1 the
/// symbols.
pub fn render(frame: &mut Frame, area: Rect, view: &crate::state::ViewState) {
    let (sections, title) = match (view.help_page, view.replay) {
        (0, false) => (SECTIONS, " keys 1/2 · ? symbols · q quits "),
        (0, true) => (REPLAY, " replay keys 1/2 · ? symbols "),
        _ => (SYMBOLS, " symbols 2/2 · ? keys · Esc closes "),
    };
    render_sections(frame, area, sections, title);
}

fn render_sections(
    frame: &mut Frame,
    area: Rect,
    sections_list: &[(&str, &[(&str, &str)])],
    title: &str,
) {
    let key_w = sections_list
        .iter()
        .flat_map(|(_, keys)| keys.iter())
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(11);
    let rows: u16 = sections_list
        .iter()
        .map(|(_, keys)| keys.len() as u16 + 2)
        .sum::<u16>()
        + 1;
    let kinds = kinds_lines();
    let with_kinds = area.height.saturating_sub(2) > rows + 1 + kinds.len() as u16;
    let rows = if with_kinds {
        rows + kinds.len() as u16 + 1
    } else {
        rows
    };
    let w = area.width.saturating_sub(4).min(96);
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
    for (title, keys) in sections_list {
        if sections {
            lines.push(Line::from(Span::styled(
                format!(" {title}"),
                styles::title(),
            )));
        }
        for (key, what) in *keys {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {} {key:<key_w$} ", if sections { " " } else { "" }),
                    styles::key(),
                ),
                Span::raw(*what),
            ]));
        }
        if sections {
            lines.push(Line::raw(""));
        }
    }
    if with_kinds {
        lines.extend(kinds);
    }
    // Lines past the bottom edge are cut: say so rather than let the last keys vanish unnoticed.
    let bottom = if lines.len() as u16 > h.saturating_sub(2) {
        " more below: a taller terminal shows every line "
    } else {
        " every action shows in the event feed "
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(Span::styled(title.to_string(), styles::title()))
                .title_bottom(Line::from(Span::styled(bottom, styles::dim())).right_aligned())
                .border_style(styles::key()),
        ),
        rect,
    );
}
