//! The `?` overlay listing every key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::styles;

/// Rows of a page by section: (section, [(keys, what they do)]).
type Sections = Vec<(&'static str, Vec<(&'static str, &'static str)>)>;

/// The live dashboard's keys by section, drawn from the key table [`crate::input::KEYS`] (which also names
/// each key's console form, checked by a test in `input.rs`).
fn live_sections() -> Sections {
    let mut out: Sections = Vec::new();
    for k in crate::input::KEYS {
        match out.last_mut() {
            Some((section, rows)) if *section == k.section => rows.push((k.keys, k.what)),
            _ => out.push((k.section, vec![(k.keys, k.what)])),
        }
    }
    out
}

/// A page written as constants, as [`Sections`].
fn sections_of(page: &[(&'static str, &[(&'static str, &'static str)])]) -> Sections {
    page.iter().map(|(s, rows)| (*s, rows.to_vec())).collect()
}

/// The second page: what the symbols and columns mean.
const SYMBOLS: &[(&str, &[(&str, &str)])] = &[
    (
        "header",
        &[
            (
                "client A of B/s",
                "workload writes acknowledged per second, of B asked",
            ),
            ("✗N", "workload ops that failed or timed out so far"),
            (
                "cas fail N",
                "lin-kv cas that found another value (not an error)",
            ),
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

/// What each fault kind does to frames, shown under the keys when the terminal has room, then the message
/// kinds `only KIND,..` takes on the running node kind (`message_kinds`, when known).
fn kinds_lines(message_kinds: &[&str]) -> Vec<Line<'static>> {
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
    // The kinds wrap under one another rather than run past the overlay's edge (etcd's are 14).
    let mut rows: Vec<String> = Vec::new();
    for kind in message_kinds {
        match rows.last_mut() {
            Some(row) if row.len() + 1 + kind.len() <= 76 => {
                row.push(' ');
                row.push_str(kind);
            }
            _ => rows.push(kind.to_string()),
        }
    }
    for (i, row) in rows.into_iter().enumerate() {
        let label = if i == 0 { "only KIND" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("   {label:<11}"), styles::key()),
            Span::raw(row),
        ]));
    }
    lines
}

/// Draws the help overlay centred in `area`: the keys (the live dashboard's, or replay's), or on page 1 the
/// symbols.
pub fn render(frame: &mut Frame, area: Rect, view: &crate::state::ViewState) {
    let (sections, title) = match (view.help_page, view.replay) {
        (0, false) => (live_sections(), " keys 1/2 · ? symbols · q quits "),
        (0, true) => (sections_of(REPLAY), " replay keys 1/2 · ? symbols "),
        _ => (sections_of(SYMBOLS), " symbols 2/2 · ? keys · Esc closes "),
    };
    render_sections(frame, area, &sections, title, &view.message_kinds);
}

fn render_sections(
    frame: &mut Frame,
    area: Rect,
    sections_list: &[(&'static str, Vec<(&'static str, &'static str)>)],
    title: &str,
    message_kinds: &[&str],
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
    let kinds = kinds_lines(message_kinds);
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
        for (key, what) in keys {
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
