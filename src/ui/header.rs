//! The header: who leads, how fast writes commit, what is broken, and whether the session is recorded.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::styles;
use crate::state::{ClusterState, ProcessState, Verdict, ViewState};

/// Header width below which the cluster id and uptime are left out.
const NARROW: u16 = 110;

/// Rows the header takes.
pub const HEIGHT: u16 = 2;

/// Draws the two header lines into `area`.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let bar = Style::new().bg(Color::Rgb(30, 34, 48)).fg(Color::White);
    let label = Style::new().fg(Color::Gray);
    let value = Style::new().add_modifier(Modifier::BOLD);

    let mut top = vec![Span::styled(
        " squall ",
        Style::new()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    // Below this width the cluster id and uptime give way, so whether the workload runs stays in view.
    if area.width >= NARROW {
        top.extend([
            Span::raw(" "),
            Span::styled(
                if state.cluster_id.is_empty() {
                    "—".to_string()
                } else {
                    state.cluster_id.clone()
                },
                value,
            ),
            Span::styled("  up ", label),
            Span::styled(styles::clock(state.now_ms), value),
        ]);
    }
    top.push(Span::styled("  leader ", label));
    match state.leader {
        Some(l) => {
            top.push(Span::styled(
                format!("n{l}"),
                styles::lane(crate::state::LaneRole::Leader),
            ));
            let paused = state
                .nodes
                .get(&l)
                .is_some_and(|n| matches!(n.process, ProcessState::Paused { .. }));
            if paused {
                top.push(Span::styled(" (paused)", styles::fault()));
            }
        }
        None => top.push(Span::styled("none", styles::fault())),
    }
    // A Paxos cluster's highest ballot as `round.proposer`, as the nodes table shows it (tester6 saw
    // `term 65537` here), not the packed number the status's term carries.
    if state.paxos {
        top.push(Span::styled("  ballot ", label));
        top.push(Span::styled(
            squall_node::paxos::Ballot::unpack(state.term).to_string(),
            value,
        ));
    } else {
        top.push(Span::styled("  term ", label));
        top.push(Span::styled(state.term.to_string(), value));
    }
    top.push(Span::styled("  commit ", label));
    top.push(Span::styled(state.commit.to_string(), value));
    top.push(Span::styled("  writes ", label));
    top.push(Span::styled(
        format!("{}/s", state.writes.last_rate()),
        value,
    ));
    top.push(Span::styled("  client ", label));
    if state.workload.on {
        top.push(Span::styled(
            format!("{}/s", state.workload_ok.last_rate()),
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        ));
        top.push(Span::styled(
            format!(" of {}/s", state.workload.rate),
            label,
        ));
        if state.workload_kind != crate::state::WorkloadKind::Counter {
            top.push(Span::styled(
                format!(" {}", state.workload_kind.as_str()),
                label,
            ));
        }
        if state.workload.failed > 0 {
            top.push(Span::styled(
                format!(" ✗{}", state.workload.failed),
                Style::new().fg(Color::Red),
            ));
        }
        if state.workload.cas_failed > 0 {
            // A cas whose expected value was not there did what cas promises: not an error, so not red.
            top.push(Span::styled(
                format!(" cas fail {}", state.workload.cas_failed),
                label,
            ));
        }
    } else {
        top.push(Span::styled("off", label));
    }
    // Indicators go on the right and are drawn last, so a narrow terminal truncates figures, never them.
    let mut flags: Vec<Span> = Vec::new();
    if view.frozen {
        flags.push(Span::raw("  "));
        flags.push(Span::styled(
            " FROZEN ",
            Style::new()
                .fg(Color::Black)
                .bg(Color::LightBlue)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if state.frozen() {
        // Teaching mode: the nodes' timers stand still (not the display's freeze above).
        flags.push(Span::raw("  "));
        flags.push(Span::styled(
            " TIMERS FROZEN · F thaws ",
            Style::new()
                .fg(Color::White)
                .bg(Color::Magenta)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(b) = &view.banner {
        flags.push(Span::raw("  "));
        flags.push(Span::styled(
            format!(" {b} "),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    // A replay records nothing, whatever the session it replays did.
    if state.recording && !view.replay {
        flags.push(Span::raw("  "));
        flags.push(Span::styled(
            "● REC",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    if state.ended {
        flags.push(Span::styled("  ended", styles::fault()));
    }

    let mut second = vec![Span::styled(" faults ", label)];
    let faults = state.fault_labels();
    if faults.is_empty() {
        second.push(Span::styled("none", Style::new().fg(Color::Green)));
    } else {
        for (i, f) in faults.iter().enumerate() {
            if i > 0 {
                second.push(Span::styled(" · ", label));
            }
            second.push(Span::styled(f.clone(), styles::fault()));
        }
    }
    if let Some((p50, p99)) = state.latency_percentiles(10_000) {
        second.push(Span::styled("   latency p50 ", label));
        second.push(Span::styled(micros(p50), value));
        second.push(Span::styled(" p99 ", label));
        second.push(Span::styled(micros(p99), value));
    }

    if let Some((at, verdict)) = state.last_check {
        use crate::state::WorkloadKind as W;
        let lin = state.workload_kind == W::LinKv;
        let lock = matches!(state.workload_kind, W::Lock | W::LockFenced);
        let (mark, style) = match verdict {
            Verdict::Ok if lin => ("✓ linearizable", Style::new().fg(Color::Green)),
            Verdict::Ok if lock => ("✓ mutual exclusion", Style::new().fg(Color::Green)),
            Verdict::Ok => ("✓ nothing lost", Style::new().fg(Color::Green)),
            Verdict::Violated => (
                if lin {
                    "✗ NOT LINEARIZABLE"
                } else if lock {
                    "✗ TWO CLIENTS WROTE UNDER THE LOCK"
                } else {
                    "✗ ACKNOWLEDGED WRITES LOST"
                },
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            ),
            Verdict::Inconclusive => ("? inconclusive", Style::new().fg(Color::Yellow)),
        };
        second.push(Span::styled("   check ", label));
        second.push(Span::styled(mark, style));
        second.push(Span::styled(
            format!(" at {}", styles::clock_tenths(at)),
            label,
        ));
    }

    // Raft's safety properties, checked on every status (`check::invariants`).
    match state.invariants.violations().len() {
        0 if !state.nodes.is_empty() => {
            second.push(Span::styled("   invariants ", label));
            second.push(Span::styled("✓", Style::new().fg(Color::Green)));
            // A kind that does not report what some properties need: how many are judged at all.
            let unjudged = state.invariants.unjudged().len();
            if unjudged > 0 {
                let all = state.invariants.properties().len();
                second.push(Span::styled(
                    format!(" {} of {all} judged", all - unjudged),
                    label,
                ));
            }
        }
        0 => {}
        n => {
            second.push(Span::styled("   ", label));
            second.push(Span::styled(
                format!("✗ {n} INVARIANT VIOLATION{}", if n == 1 { "" } else { "S" }),
                Style::new()
                    .fg(Color::White)
                    .bg(Color::Red)
                    .add_modifier(Modifier::BOLD),
            ));
        }
    }

    let text = vec![Line::from(top).style(bar), Line::from(second)];
    frame.render_widget(Paragraph::new(text), area);
    if !flags.is_empty() {
        flags.push(Span::raw(" "));
        let flags = Line::from(flags).style(bar);
        let w = (flags.width() as u16).min(area.width);
        let at = Rect {
            x: area.right() - w,
            y: area.y,
            width: w,
            height: 1.min(area.height),
        };
        frame.render_widget(flags, at);
    }
}

/// A latency in the unit that keeps it short.
fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{}ms", us / 1000)
    }
}
