//! The nodes table: one row per node with its process, role, membership and log positions, and for a kind that
//! counts them (Maelstrom's bridge) its messages received/sent by type. The title names
//! the configuration and the index of the entry that set it. A removed node keeps its row until its process
//! stops.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table};

use super::styles;
use crate::state::{ClusterState, MemberRole, NodeView, ViewState};

/// Rows the table needs for `nodes` nodes (borders and header included).
pub fn height(nodes: usize) -> u16 {
    nodes as u16 + 3
}

/// Draws the table; below 120 columns the applied, snapshot and rpc columns are left out.
pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, view: &ViewState) {
    let wide = area.width >= 120;
    // The membership column needs 8 more columns than a wide table; without it the role column says
    // `learner`, `removed` or `joining` for a node that does not vote.
    let member_col = area.width >= 128;
    let term_title = if state.paxos { "ballot" } else { "term" };
    // A Paxos node's chosen prefix stands where Raft's commit index does.
    let commit_title = if state.paxos { "chosen" } else { "commit" };
    let mut titles = vec![
        "",
        "node",
        "pid",
        "process",
        "role",
        term_title,
        "vote",
        "leader",
        commit_title,
    ];
    // `unreachable` (a node whose host is cut off, `--hosts`) takes 11 columns where every other process
    // word takes at most 9: the column widens only while one is shown, and a narrow table takes one of the
    // cells from `last/term`'s spare one, so it still fits in 80 columns.
    let cut_off = state
        .nodes
        .values()
        .any(|n| state.shows_node(n.id) && n.host_unreachable.is_some());
    // "precandidate" takes 12 columns; narrow tables keep 9 and say `precand` (see `role_text`).
    let mut widths = vec![
        1,
        4,
        7,
        if cut_off { 11 } else { 9 },
        if wide { 12 } else { 9 },
        if state.paxos { 6 } else { 5 },
        4,
        6,
        7,
    ];
    // Narrow tables show a learner's or removed node's membership in the role column instead.
    if member_col {
        titles.insert(5, "member");
        widths.insert(5, 7);
    }
    if wide {
        titles.push("applied");
        widths.push(7);
    }
    titles.push(match (state.paxos, wide) {
        (true, _) => "last slot",
        (false, true) => "last idx/term",
        (false, false) => "last/term",
    });
    widths.push(match (wide, cut_off) {
        (true, _) => 13,
        (false, false) => 10,
        (false, true) => 9,
    });
    if wide {
        titles.push("snapshot");
        widths.push(8);
    }
    titles.push("lag");
    widths.push(5);
    // Clock faults (squall up --disk-faults): each node's faked offset and rate, once any clock is faked.
    let clocks = state.nodes.values().any(|n| n.clock_fault.is_some());
    if clocks {
        titles.push("clock");
        widths.push(14);
    }
    // Each node's election timer (RaftScope's arcs, in seconds): shown when there is room, and in teaching
    // mode (frozen) instead of the rpc counters when there is not.
    let timers = (wide && state.frozen()) || area.width >= 138;
    let rpc_col = wide && (!timers || area.width >= 138);
    // A kind whose driver counts messages by type (Maelstrom's bridge) reports no election timer and no RPC
    // counters (only squall's full status has those): its messages take their place, in whatever room is left.
    let full = state.nodes.values().any(|n| n.status.is_some());
    let counted = state
        .nodes
        .values()
        .any(|n| n.brief.as_ref().is_some_and(|b| b.messages.is_some()));
    let messages_col = counted && !full;
    let (timers, rpc_col) = if messages_col {
        (false, false)
    } else {
        (timers, rpc_col)
    };
    if timers {
        titles.push("timer");
        widths.push(9);
    }
    if rpc_col {
        titles.push("rpc in/out/err");
        widths.push(16);
    }
    let mut constraints: Vec<Constraint> = widths.into_iter().map(Constraint::Length).collect();
    if messages_col {
        titles.push("msgs in/out, by type in/out");
        constraints.push(Constraint::Fill(1));
    }

    let header = Row::new(titles.iter().map(|t| Cell::from(*t)))
        .style(styles::dim().add_modifier(Modifier::BOLD));
    let rows = state
        .nodes
        .values()
        .filter(|n| state.shows_node(n.id))
        .map(|n| {
            row(
                n,
                state,
                view,
                (wide, member_col),
                clocks,
                (timers, rpc_col, messages_col),
            )
        });
    let mut title = vec![Span::styled(" nodes ", styles::title())];
    if let Some(c) = &state.config {
        title.push(Span::styled(
            format!(
                "config {} at {}{} ",
                c.text(),
                c.index,
                if c.committed { "" } else { " (uncommitted)" }
            ),
            styles::dim(),
        ));
    }
    // What each recovering node waits for before it votes again (tester finding F10: the table said only
    // `recovering`, and a person could not see why it stayed so).
    for n in state.nodes.values().filter(|n| state.shows_node(n.id)) {
        let wait = n
            .status
            .as_ref()
            .filter(|s| s.recovering && n.live_brief().is_some())
            .and_then(|s| s.recovery_wait.as_ref());
        if let Some(wait) = wait {
            title.push(Span::styled(
                format!("n{} recovering: {wait} ", n.id),
                styles::fault(),
            ));
        }
    }
    let table = Table::new(rows, constraints)
        .header(header)
        .column_spacing(1)
        .block(
            Block::bordered()
                .title(Line::from(title))
                .border_style(styles::faint()),
        );
    frame.render_widget(table, area);
}

/// The timer column's text for a node's status: seconds until its election timer runs out (`1.4s`), with
/// `stop` before it while the node is frozen (teaching mode: it will not run out on its own); `—` for a node
/// with no election timer running (a leader, a removed node) or no fresh status.
pub fn timer_text(s: Option<&squall_node::rpc::NodeStatus>) -> String {
    let Some(s) = s else {
        return "—".into();
    };
    match s.election_due_ms {
        None => "—".into(),
        Some(ms) => {
            let secs = if ms < 10_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{}s", ms / 1000)
            };
            if s.frozen {
                format!("stop {secs}")
            } else {
                secs
            }
        }
    }
}

fn timer_cell<'a>(s: Option<&squall_node::rpc::NodeStatus>) -> Cell<'a> {
    let text = timer_text(s);
    let style = match s {
        Some(s) if s.frozen && s.election_due_ms.is_some() => styles::key(),
        Some(s) if s.election_due_ms.is_some_and(|ms| ms < 500) => styles::fault(),
        Some(s) if s.election_due_ms.is_some() => Style::new(),
        _ => styles::faint(),
    };
    Cell::from(text).style(style)
}

/// The messages column's text for a node's counts: the totals received/sent, then each type's received/sent,
/// the busiest first (`412/398  read 40/38 write 30/30`); the cell cuts what does not fit.
pub fn messages_text(m: &crate::state::MessageCounts) -> String {
    let mut out = format!(
        "{}/{} ",
        styles::compact(m.total_in() as f64),
        styles::compact(m.total_out() as f64)
    );
    for (t, i, o) in m.by_type() {
        out.push_str(&format!(
            " {t} {}/{}",
            styles::compact(i as f64),
            styles::compact(o as f64)
        ));
    }
    out
}

/// What the `rpc in` column counts: requests received and the answers to the requests the node sent (a
/// leader receives almost only answers).
pub fn rpc_in(r: &squall_node::rpc::RpcCounters) -> u64 {
    r.vote_in + r.append_in + r.snapshot_in + r.timeout_now_in + r.reply_in
}

/// A role as the role column says it: whole in a wide table; in a narrow one (9 columns) a precandidate is
/// `precand`, as the help's symbols page explains, rather than a cut `precandid`.
pub fn role_text(role: squall_node::raft::types::Role, wide: bool) -> &'static str {
    match role {
        squall_node::raft::types::Role::PreCandidate if !wide => "precand",
        r => r.as_str(),
    }
}

fn row<'a>(
    n: &'a NodeView,
    state: &ClusterState,
    view: &ViewState,
    (wide, member_col): (bool, bool),
    clocks: bool,
    (timers, rpc_col, messages_col): (bool, bool, bool),
) -> Row<'a> {
    let selected = view.selected == Some(n.id);
    let fresh = n.live_brief().is_some();
    // Values from a dead or silent process are shown, but greyed, as the last thing it said.
    let value = if fresh { Style::new() } else { styles::faint() };
    // The full status (squall's kind) and the brief fields every kind may report; what the node's kind does
    // not report is `—`, never guessed.
    let s = n.status.as_ref();
    let b = n.brief.as_ref();
    let known = |v: Option<u64>| -> Cell<'a> {
        v.map_or(Cell::from("—").style(styles::faint()), |v| {
            Cell::from(v.to_string()).style(value)
        })
    };
    let num = |f: &dyn Fn(&squall_node::rpc::NodeStatus) -> u64| -> Cell<'a> { known(s.map(f)) };
    let opt = |v: Option<u64>| v.map_or("—".to_string(), |v| format!("n{v}"));

    let process_text = if n.host_lost {
        // Its host's agent is gone and stopped it.
        Span::styled("gone", styles::fault())
    } else if n.host_unreachable.is_some() {
        // Its host does not answer: its process may run or not, and is not guessed.
        Span::styled("unreachable", styles::fault())
    } else if !n.reachable
        && n.process.is_alive()
        && !matches!(n.process, crate::state::ProcessState::Paused { .. })
    {
        Span::styled("no answer", styles::fault())
    } else {
        Span::styled(
            if n.refused.is_some() {
                "no start".to_string()
            } else {
                n.process.label()
            },
            styles::process(&n.process),
        )
    };
    let member = state.membership(n.id);
    let recovering = s.is_some_and(|st| st.recovering);
    let role = match (b.and_then(|b| b.role), member) {
        (_, Some(m @ (MemberRole::Removed | MemberRole::Joining))) if !member_col => {
            Span::styled(m.as_str(), styles::faint())
        }
        (Some(r), Some(MemberRole::Learner)) if !member_col && fresh => {
            Span::styled("learner", styles::role(r))
        }
        (Some(r), _) if fresh && recovering => Span::styled(
            if wide { "recovering" } else { "recovery" },
            styles::role(r),
        ),
        (Some(r), _) if fresh => Span::styled(role_text(r, wide), styles::role(r)),
        (Some(r), _) => Span::styled(role_text(r, wide), styles::faint()),
        (None, _) => Span::styled("—", styles::faint()),
    };
    let is_leader = state.leader == Some(n.id);
    let mut cells = vec![
        Cell::from(if selected { "▶" } else { " " }).style(styles::key()),
        Cell::from(Line::from(Span::styled(
            format!("n{}", n.id),
            if is_leader {
                styles::role(squall_node::raft::types::Role::Leader)
            } else {
                Style::new().add_modifier(Modifier::BOLD)
            },
        ))),
        Cell::from(n.process.pid().map_or("—".to_string(), |p| p.to_string())).style(styles::dim()),
        Cell::from(process_text),
        Cell::from(role),
    ];
    if member_col {
        cells.push(match member {
            Some(MemberRole::Voter) => Cell::from("voter").style(styles::dim()),
            Some(m @ MemberRole::Learner) => Cell::from(m.as_str()),
            Some(m) => Cell::from(m.as_str()).style(styles::fault()),
            None => Cell::from("—").style(styles::faint()),
        });
    }
    let leader = match b.and_then(|b| b.leader) {
        Some(l) => Cell::from(opt(l)).style(value),
        None => Cell::from("—").style(styles::faint()),
    };
    // A Paxos node's promised ballot as `round.proposer`, never the packed number its term carries.
    let term = match s.and_then(|s| s.paxos.as_ref()) {
        Some(p) => Cell::from(p.promised.to_string()).style(value),
        None => known(b.and_then(|b| b.term)),
    };
    cells.extend([
        term,
        Cell::from(opt(s.and_then(|s| s.core.vote))).style(value),
        leader,
        known(b.and_then(|b| b.commit)),
    ]);
    if wide {
        cells.push(known(b.and_then(|b| b.applied)));
    }
    cells.push(match s {
        // A Paxos node's last slot (accepted or chosen); its cells have ballots, not one term.
        Some(s) if s.paxos.is_some() => Cell::from(s.core.last_log_index.to_string()).style(value),
        Some(s) => Cell::from(Line::from(vec![
            Span::styled(s.core.last_log_index.to_string(), value),
            Span::styled("/", styles::faint()),
            Span::styled(
                s.core.last_log_term.to_string(),
                Style::new().fg(styles::term_color(s.core.last_log_term)),
            ),
        ])),
        None => Cell::from("—").style(styles::faint()),
    });
    if wide {
        cells.push(num(&|s| s.core.snapshot_index));
    }
    cells.push(match state.lag(n.id) {
        Some(0) => Cell::from("0").style(styles::dim()),
        Some(l) if l > 50 => Cell::from(l.to_string()).style(styles::fault()),
        Some(l) => Cell::from(l.to_string()).style(Style::new().fg(ratatui::style::Color::Yellow)),
        None => Cell::from("—").style(styles::faint()),
    });
    if clocks {
        cells.push(match &n.clock_fault {
            Some(c) => Cell::from(c.as_str()).style(styles::fault()),
            // Not faked: nothing to say, drawn as every other empty cell.
            None => Cell::from("—").style(styles::faint()),
        });
    }
    if timers {
        cells.push(timer_cell(s.filter(|_| fresh)));
    }
    if rpc_col {
        cells.push(match s {
            Some(s) => Cell::from(format!(
                "{}/{}/{}",
                styles::compact(rpc_in(&s.rpc) as f64),
                styles::compact(
                    (s.rpc.vote_out + s.rpc.append_out + s.rpc.snapshot_out + s.rpc.timeout_now_out)
                        as f64
                ),
                styles::compact(s.rpc.peer_errors as f64),
            ))
            .style(styles::dim()),
            None => Cell::from("—").style(styles::faint()),
        });
    }
    if messages_col {
        cells.push(match b.and_then(|b| b.messages.as_ref()) {
            Some(m) => Cell::from(messages_text(m)).style(if fresh {
                styles::dim()
            } else {
                styles::faint()
            }),
            None => Cell::from("—").style(styles::faint()),
        });
    }
    let r = Row::new(cells);
    if selected {
        r.style(styles::selected())
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use crate::state::{Event, Stamped, ViewState};

    /// Tester finding F10: the nodes table said only `recovering`; its title now says what each recovering
    /// node waits for. Seen failing before the title carried it.
    #[test]
    fn the_nodes_table_says_what_a_recovering_node_waits_for() {
        let mut state = crate::state::fixture::sample_state(3);
        let mut status = state.nodes[&2]
            .status
            .clone()
            .expect("node 2 reported a status");
        status.recovering = true;
        status.recovery_wait = Some(squall_node::raft::RecoveryWait::Terms { voters: vec![3] });
        state.apply(&Stamped::new(62_500, Event::Status { node: 2, status }));
        let screen = crate::ui::render_text(&state, &ViewState::new(), 160, 48);
        assert!(
            screen.contains("n2 recovering: waiting for n3's term"),
            "{screen}"
        );
    }
}
