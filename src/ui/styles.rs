//! Colours and glyphs shared by the widgets, so a role or a term looks the same in every panel.

use ratatui::style::{Color, Modifier, Style};
use squall_node::raft::types::Role;

use crate::state::{FeedKind, LaneRole, LinkState, ProcessState};

/// Term colours, cycled by `term % 6` as RaftScope does, chosen to stay apart on dark and light terminals.
const TERM_PALETTE: [Color; 6] = [
    Color::Blue,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
];

/// The colour of a term.
pub fn term_color(term: u64) -> Color {
    TERM_PALETTE[(term % 6) as usize]
}

/// A committed log cell: solid, in its term's colour.
pub fn committed_cell(term: u64) -> Style {
    Style::new().bg(term_color(term)).fg(Color::Black)
}

/// An uncommitted log cell: the term's colour as text only, underlined, so it reads as provisional.
pub fn uncommitted_cell(term: u64) -> Style {
    Style::new()
        .fg(term_color(term))
        .add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
}

/// The number a Paxos ballot's cells are coloured by, as a Raft cell's term ([`term_color`] takes it modulo
/// 6): `round × 3 + proposer`, so with three proposers every ballot of two successive rounds has its own
/// colour (the packed ballot, `round × 65536 + proposer`, gives 1.1 and 2.3 the same one).
pub fn ballot_hue(b: squall_node::paxos::Ballot) -> u64 {
    b.round.wrapping_mul(3).wrapping_add(b.proposer)
}

/// A Paxos slot with nothing accepted, below the node's last slot: lighter than a slot not reported.
pub fn gap() -> Style {
    Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD)
}

/// A Paxos slot the node knows chosen but did not accept itself (it learned the value from another node).
pub fn chosen_elsewhere() -> Style {
    Style::new().bg(Color::DarkGray).fg(Color::White)
}

/// A Paxos slot the node knows chosen, older than the accepted slots its status lists (accepted there or not).
pub fn chosen_unlisted() -> Style {
    Style::new().fg(Color::Gray)
}

/// Cells folded into a snapshot, or not reported.
pub fn faint() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Panel titles.
pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// Column headers and secondary text.
pub fn dim() -> Style {
    Style::new().fg(Color::Gray)
}

/// A key in the footer and help.
pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

/// The selected node's row.
pub fn selected() -> Style {
    Style::new()
        .bg(Color::Rgb(40, 44, 60))
        .add_modifier(Modifier::BOLD)
}

/// A role's colour.
pub fn role(role: Role) -> Style {
    lane(role.into())
}

/// A lane state's colour.
pub fn lane(role: LaneRole) -> Style {
    match role {
        LaneRole::Leader => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        LaneRole::Candidate => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        LaneRole::PreCandidate => Style::new().fg(Color::Magenta),
        LaneRole::Follower => Style::new().fg(Color::Blue),
        LaneRole::Paused => Style::new().fg(Color::Cyan),
        LaneRole::Down => Style::new().fg(Color::Red),
        LaneRole::Unknown => faint(),
    }
}

/// The glyph a lane uses for a state: height tells leaders from followers even without colour.
pub fn lane_glyph(role: LaneRole) -> &'static str {
    match role {
        LaneRole::Leader => "█",
        LaneRole::Candidate => "▆",
        LaneRole::PreCandidate => "▄",
        LaneRole::Follower => "▁",
        LaneRole::Paused => "┅",
        LaneRole::Down => "╳",
        LaneRole::Unknown => " ",
    }
}

/// A process state's colour.
pub fn process(p: &ProcessState) -> Style {
    match p {
        ProcessState::Running { .. } => Style::new().fg(Color::Green),
        ProcessState::Paused { .. } => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ProcessState::Killed { .. } | ProcessState::Exited { .. } => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        ProcessState::Starting | ProcessState::Restarting { .. } => Style::new().fg(Color::Yellow),
    }
}

/// A link state's colour.
pub fn link(state: LinkState) -> Style {
    match state {
        LinkState::Ok => Style::new().fg(Color::Green),
        LinkState::Delayed(_) => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        LinkState::Lossy(_) => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        LinkState::Cut => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        LinkState::Held => Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
        LinkState::Shaped => Style::new()
            .fg(Color::LightBlue)
            .add_modifier(Modifier::BOLD),
    }
}

/// A feed line's colour.
pub fn feed(kind: FeedKind) -> Style {
    match kind {
        FeedKind::Info => dim(),
        FeedKind::Election => Style::new().fg(Color::Yellow),
        FeedKind::Vote => Style::new().fg(Color::DarkGray),
        FeedKind::Leader => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        FeedKind::Role => Style::new().fg(Color::Yellow),
        FeedKind::Log => Style::new().fg(Color::Magenta),
        FeedKind::Process => Style::new().fg(Color::Cyan),
        FeedKind::Exit => Style::new().fg(Color::Red),
        FeedKind::Fault => Style::new()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
        FeedKind::Error => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        FeedKind::Check => Style::new().fg(Color::Green),
        FeedKind::Violation => Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        FeedKind::Recording => Style::new().fg(Color::Red),
    }
}

/// Faults in the header.
pub fn fault() -> Style {
    Style::new()
        .fg(Color::LightRed)
        .add_modifier(Modifier::BOLD)
}

/// Formats session milliseconds as `m:ss` (or `h:mm:ss`).
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Formats session milliseconds as `mm:ss.t`, for the feed.
pub fn clock_tenths(ms: u64) -> String {
    format!("{:02}:{:02}.{}", ms / 60_000, ms / 1000 % 60, ms / 100 % 10)
}

/// A count in at most four characters ("999", "1.2k", "34k", "5.6M").
pub fn compact(n: f64) -> String {
    if n < 999.5 {
        format!("{n:.0}")
    } else if n < 9_950.0 {
        format!("{:.1}k", n / 1e3)
    } else if n < 999_500.0 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{:.1}M", n / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_stay_short() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(999.0), "999");
        assert_eq!(compact(1234.0), "1.2k");
        assert_eq!(compact(45_000.0), "45k");
        assert_eq!(compact(5_600_000.0), "5.6M");
        assert_eq!(clock(62_000), "1:02");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(clock_tenths(62_345), "01:02.3");
    }
}
