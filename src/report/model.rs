//! What a report shows, extracted from a session's events: operations and their latencies, fault windows,
//! each node's role over time, elections, commits, check verdicts. Pure: no I/O, no drawing.

use std::collections::BTreeMap;

use squall_node::raft::Role;

use crate::check::{OpEvent, Outcome};
use crate::command::{ClockAction, Command, DiskAction, FaultCmd, PowerTarget, Target};
use crate::state::{Event, MembershipStep, ProcessState, Stamped, Verdict};

// Defined beside the builders that make them (the builders sit below the model, which uses them).
pub use super::stream::{OpPoint, Second};

/// A fault and how long it lasted.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// What was done ("kill node 2 (leader, term 4)").
    pub label: String,
    /// When, in milliseconds since the session started.
    pub start_ms: u64,
    /// When it was undone (heal, restart, resume), if it was.
    pub end_ms: Option<u64>,
    /// What undid it.
    pub ended_by: Option<String>,
    /// Milliseconds from the fault to the first commit after it.
    pub commit_after_start_ms: Option<u64>,
    /// Milliseconds from its end to the first commit after that: the recovery time.
    pub recovery_ms: Option<u64>,
}

/// A node's role from a time on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Leader.
    Leader,
    /// Follower (or learner).
    Follower,
    /// Candidate: an election started, its term raised.
    Candidate,
    /// Pre-candidate: asking whether it could win (pre-vote, Ongaro's thesis §9.6), its term unchanged.
    PreCandidate,
    /// Process down (killed, exited, restarting) or paused.
    Down,
}

/// A check's verdict as the session reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRecord {
    /// When, in milliseconds.
    pub at_ms: u64,
    /// Which check (`counter` or `linearizability`).
    pub which: &'static str,
    /// The finding.
    pub verdict: Verdict,
    /// In words.
    pub report: String,
}

/// One step of a membership change: a request (`add`, `remove 4`, `replace 2`, `promote 4`) or what the
/// cluster did about it (a learner joined, was promoted, a configuration committed, a node was removed).
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipRecord {
    /// When, in milliseconds since the session started.
    pub at_ms: u64,
    /// The node it concerns, when one.
    pub node: Option<u64>,
    /// `requested`, `learner`, `catching up`, `promoted`, `committed`, `removed`, `waiting`, `failed`.
    pub step: &'static str,
    /// In words, as the feed said it.
    pub text: String,
}

/// The configuration as a leader reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRecord {
    /// When it was first seen, in milliseconds.
    pub at_ms: u64,
    /// Voting members.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Log index of the entry that set it.
    pub index: u64,
}

impl ConfigRecord {
    /// `{1,2,3}`, with ` learners {4}` when there are learners.
    pub fn text(&self) -> String {
        let set = |s: &[u64]| {
            let v: Vec<String> = s.iter().map(u64::to_string).collect();
            format!("{{{}}}", v.join(","))
        };
        if self.learners.is_empty() {
            set(&self.voters)
        } else {
            format!("{} learners {}", set(&self.voters), set(&self.learners))
        }
    }

    /// Members (voters and learners).
    pub fn size(&self) -> usize {
        self.voters.len() + self.learners.len()
    }
}

/// Everything a report draws.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Cluster id.
    pub cluster_id: String,
    /// Node ids.
    pub nodes: Vec<u64>,
    /// The last event's time, in milliseconds.
    pub end_ms: u64,
    /// Completed operations to plot: the lin-kv history's when there is one, else the counter workload's;
    /// every one while each outcome class has at most [`super::stream::SAMPLE_PER_CLASS`], else an even
    /// sample (so a report's memory does not grow with the log).
    pub ops: Vec<OpPoint>,
    /// How many operations completed in all (`ops` may hold a sample of them).
    pub ops_total: usize,
    /// Throughput and latency quantiles of each second with an `ok` operation, ascending.
    pub seconds: Vec<Second>,
    /// Fault windows in the order they began.
    pub faults: Vec<FaultWindow>,
    /// Each node's role changes: (ms, lane).
    pub lanes: BTreeMap<u64, Vec<(u64, Lane)>>,
    /// Terms in which some node became leader (on Paxos: ballots in which a distinguished proposer led).
    pub elections: usize,
    /// The nodes ran Multi-Paxos (a status carried a Paxos view): the report names ballots and the
    /// distinguished proposer where Raft's says terms and elections.
    pub paxos: bool,
    /// Check verdicts.
    pub checks: Vec<CheckRecord>,
    /// The lin-kv history, kept by [`Model::from_events`] only ([`Model::build`] hands it out instead).
    pub history: Vec<OpEvent>,
    /// Every node id seen in the session (started with it or added), ascending.
    pub ever: Vec<u64>,
    /// Membership requests and steps, in order.
    pub membership: Vec<MembershipRecord>,
    /// Each configuration a leader reported, in the order they were first seen; the last is the final one.
    pub configs: Vec<ConfigRecord>,
    /// The run's verdict table and the invariants replayed from the log.
    pub verdicts: super::verdicts::Verdicts,
    /// The lock workload's mutual exclusion, checked again from the log's grants and resource log
    /// ([`crate::check::lock`]); `None` when the lock workload did not run.
    pub lock: Option<(crate::state::Verdict, String)>,
}

/// What a fault window is, so the commands that undo it can find it.
#[derive(Clone, Debug, PartialEq)]
enum Open {
    /// A network fault as asked for, with its id in the fault set once known.
    Network(FaultCmd, Option<u64>),
    /// A process stopped (killed, terminated, power cut): a restart or wipe of the node ends it.
    Down(u64),
    /// A power cut of every node: ends when each of them has been restarted.
    DownAll(std::collections::BTreeSet<u64>),
    /// A process paused: a resume ends it.
    Paused(u64),
    /// A disk fault on a node: `disk N heal` or `heal` ends it.
    Disk(u64),
    /// A clock fault on a node: `clock N heal` or `heal` ends it (a later clock fault composes with it).
    Clock(u64),
    /// A lock client slowed (`slow-client C DUR`): `heal` ends it.
    SlowClient(u64),
}

/// The node a command names, as performed: the node the event says it hit, else the one it names.
fn node_of(command: &Command, hit: Option<u64>) -> Option<u64> {
    hit.or(match command.target() {
        Some(Target::Node(n)) => Some(n),
        _ => None,
    })
    .or(match command {
        Command::PowerCut(PowerTarget::One(Target::Node(n)), _)
        | Command::Disk(Target::Node(n), _)
        | Command::Clock(Target::Node(n), _) => Some(*n),
        _ => None,
    })
}

impl Model {
    /// Builds the model from a session's events and keeps the lin-kv history in [`Model::history`] (for
    /// tests and short logs; `squall report` uses [`Model::build`]).
    pub fn from_events<S: std::borrow::Borrow<Stamped>>(
        events: impl IntoIterator<Item = S>,
    ) -> Model {
        let mut history = Vec::new();
        let mut m = Model::build(events, |op| history.push(*op));
        m.history = history;
        m
    }

    /// Builds the model from a session's events, taken one at a time (a slice, or a stream read from disk),
    /// handing each lin-kv history event to `history` instead of keeping it: what the model keeps is bounded
    /// whatever the log's length (the plot's points are a bounded sample, each second's latencies are
    /// dropped once it is finished, commits are matched to fault windows as they come), except what grows
    /// with the session's happenings rather than its operations (fault windows, role changes, membership).
    pub fn build<S: std::borrow::Borrow<Stamped>>(
        events: impl IntoIterator<Item = S>,
        mut history: impl FnMut(&OpEvent),
    ) -> Model {
        let mut m = Model::default();
        let mut counter_ops = super::stream::PointSample::default();
        let mut counter_seconds = super::stream::SecondsBuilder::default();
        let mut linkv_ops = super::stream::PointSample::default();
        let mut linkv_seconds = super::stream::SecondsBuilder::default();
        let mut pairs = super::stream::LivePairs::default();
        // Fault windows still waiting for the first commit after their start or after their end.
        let mut awaiting_commit: Vec<usize> = Vec::new();
        let mut windows_seen = 0usize;
        // Windows still open, by index into `m.faults`.
        let mut open: Vec<(usize, Open)> = Vec::new();
        // The fault set as last reported, and ids that joined it and no window has claimed yet.
        let mut set: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
        let mut unclaimed: Vec<u64> = Vec::new();
        // Windows the last fault set ended, whose `ended_by` the command or expiry that follows names.
        let mut just_ended: Vec<usize> = Vec::new();
        let mut leader_terms = std::collections::BTreeSet::new();
        let mut commit = 0u64;
        let mut ever = std::collections::BTreeSet::new();
        let mut judge = super::verdicts::Judge::default();
        // The lock workload's records, checked again here from the log.
        let mut lock = crate::check::lock::LockChecker::default();
        // Hosts squall cannot reach now (`--hosts`), by label: the index of their window in `m.faults`.
        let mut hosts_out: BTreeMap<String, usize> = BTreeMap::new();
        for s in events {
            let s = s.borrow();
            judge.observe(s);
            let at = s.at_ms;
            m.end_ms = m.end_ms.max(at);
            match &s.event {
                Event::SessionStarted { nodes, .. } => ever.extend(nodes.iter().copied()),
                Event::Status { node, .. }
                | Event::StatusDelta { node, .. }
                | Event::Brief { node, .. }
                | Event::Process { node, .. }
                | Event::Membership { node, .. } => {
                    ever.insert(*node);
                }
                _ => {}
            }
            match &s.event {
                Event::SessionStarted {
                    cluster_id, nodes, ..
                } => {
                    m.cluster_id = cluster_id.clone();
                    m.nodes = nodes.clone();
                }
                Event::Status { node, status } | Event::StatusDelta { node, status, .. } => {
                    let lane = match status.core.role {
                        Role::Leader => Lane::Leader,
                        Role::Candidate => Lane::Candidate,
                        Role::PreCandidate => Lane::PreCandidate,
                        Role::Follower => Lane::Follower,
                    };
                    m.paxos |= status.paxos.is_some();
                    if lane == Lane::Leader {
                        leader_terms.insert(status.core.term);
                        let c = &status.core;
                        let known = m.configs.last().is_some_and(|k| k.index >= c.config_index);
                        if !c.config.voters.is_empty() && !known {
                            m.configs.push(ConfigRecord {
                                at_ms: at,
                                voters: c.config.voters.iter().copied().collect(),
                                learners: c.config.learners.iter().copied().collect(),
                                index: c.config_index,
                            });
                        }
                    }
                    push_lane(&mut m.lanes, *node, at, lane);
                    if status.core.commit_index > commit {
                        commit = status.core.commit_index;
                        commit_seen(&mut m.faults, &mut awaiting_commit, &mut windows_seen, at);
                    }
                }
                // A kind that reports only the brief fields: its role lane, leaders and commits as far as it
                // reports them.
                Event::Brief { node, status } => {
                    if let Some(role) = status.role {
                        let lane = match role {
                            Role::Leader => Lane::Leader,
                            Role::Candidate => Lane::Candidate,
                            Role::PreCandidate => Lane::PreCandidate,
                            Role::Follower => Lane::Follower,
                        };
                        push_lane(&mut m.lanes, *node, at, lane);
                    }
                    if let Some(term) = status.leads() {
                        leader_terms.insert(term);
                    }
                    if let Some(c) = status.commit
                        && c > commit
                    {
                        commit = c;
                        commit_seen(&mut m.faults, &mut awaiting_commit, &mut windows_seen, at);
                    }
                }
                Event::Process { node, state }
                    if !matches!(state, ProcessState::Running { .. }) =>
                {
                    push_lane(&mut m.lanes, *node, at, Lane::Down);
                }
                Event::Membership { node, step, text } => {
                    m.membership.push(MembershipRecord {
                        at_ms: at,
                        node: Some(*node),
                        step: step_name(*step),
                        text: text.clone(),
                    });
                }
                Event::Settings {
                    unsafe_no_fsync: true,
                    ..
                } => {
                    m.faults.push(window(
                        "unsafe-no-fsync: WAL appends never synced (the whole session)".into(),
                        at,
                    ));
                }
                Event::FaultSet { faults } => {
                    let now: std::collections::BTreeSet<u64> =
                        faults.iter().map(|f| f.id).collect();
                    unclaimed.extend(now.difference(&set).copied());
                    for gone in set.difference(&now) {
                        unclaimed.retain(|u| u != gone);
                        open.retain(|(i, o)| {
                            if matches!(o, Open::Network(_, Some(id)) if id == gone) {
                                let w = &mut m.faults[*i];
                                if w.end_ms.is_none_or(|e| e > at) {
                                    w.end_ms = Some(at);
                                    just_ended.push(*i);
                                }
                                false
                            } else {
                                true
                            }
                        });
                    }
                    set = now;
                }
                Event::FaultEnded {
                    id,
                    fault,
                    why: crate::state::FaultEnd::Expired,
                } => {
                    let label = format!("fault #{id} ({fault}) ended: its `for` ran out");
                    for i in just_ended.drain(..) {
                        m.faults[i].ended_by = Some(label.clone());
                    }
                    // A log without fault sets: the expiry names the fault.
                    close(&mut m, &mut open, at, &label, |o| {
                        matches!(o, Open::Network(f, None) if f == fault)
                            || matches!(o, Open::Network(_, Some(x)) if x == id)
                    });
                }
                Event::Performed {
                    command,
                    node,
                    effect,
                } => {
                    let label = if effect.is_empty() {
                        command.to_string()
                    } else {
                        effect.clone()
                    };
                    for i in just_ended.drain(..) {
                        m.faults[i].ended_by = Some(label.clone());
                    }
                    if matches!(
                        command,
                        Command::Add
                            | Command::Remove(_)
                            | Command::Replace(_)
                            | Command::Promote(_)
                    ) {
                        m.membership.push(MembershipRecord {
                            at_ms: at,
                            node: match command {
                                Command::Remove(n) | Command::Replace(n) | Command::Promote(n) => {
                                    Some(*n)
                                }
                                _ => None,
                            },
                            step: "requested",
                            text: label,
                        });
                        continue;
                    }
                    let n = node_of(command, *node);
                    // What it undoes.
                    match command {
                        Command::Heal(None) => close(&mut m, &mut open, at, &label, |o| {
                            matches!(
                                o,
                                Open::Network(..)
                                    | Open::Disk(_)
                                    | Open::Clock(_)
                                    | Open::SlowClient(_)
                            )
                        }),
                        Command::Heal(Some(id)) => close(
                            &mut m,
                            &mut open,
                            at,
                            &label,
                            |o| matches!(o, Open::Network(_, Some(x)) if x == id),
                        ),
                        Command::Fault(f) => {
                            // The same fault on the same target replaces it; a zero delay or loss removes it.
                            close(
                                &mut m,
                                &mut open,
                                at,
                                &label,
                                |o| matches!(o, Open::Network(g, _) if f.replaces(g)),
                            )
                        }
                        Command::Restart(_) | Command::Wipe(_) => {
                            let down = n;
                            close(
                                &mut m,
                                &mut open,
                                at,
                                &label,
                                |o| matches!(o, Open::Down(x) if Some(*x) == down),
                            );
                            if let Some(x) = down {
                                for (i, o) in open.iter_mut() {
                                    if let Open::DownAll(left) = o {
                                        left.remove(&x);
                                        if left.is_empty() {
                                            m.faults[*i].end_ms = Some(at);
                                            m.faults[*i].ended_by = Some(label.clone());
                                        }
                                    }
                                }
                                open.retain(
                                    |(_, o)| !matches!(o, Open::DownAll(l) if l.is_empty()),
                                );
                            }
                        }
                        Command::Resume(_) => close(
                            &mut m,
                            &mut open,
                            at,
                            &label,
                            |o| matches!(o, Open::Paused(x) if Some(*x) == n),
                        ),
                        Command::Disk(_, DiskAction::Heal) => close(
                            &mut m,
                            &mut open,
                            at,
                            &label,
                            |o| matches!(o, Open::Disk(x) if Some(*x) == n),
                        ),
                        // Clock faults compose (`+1h` then `x2` is "+1h ×2"): only a heal ends them.
                        Command::Clock(_, ClockAction::Heal) => close(
                            &mut m,
                            &mut open,
                            at,
                            &label,
                            |o| matches!(o, Open::Clock(x) if Some(*x) == n),
                        ),
                        // Every stopped node comes back: every kill and power cut ends here.
                        Command::RestartAll => close(&mut m, &mut open, at, &label, |o| {
                            matches!(o, Open::Down(_) | Open::DownAll(_))
                        }),
                        _ => {}
                    }
                    if !command.injects_fault() {
                        continue;
                    }
                    // What it opens.
                    let kind = match command {
                        Command::Fault(f) | Command::ToggleFault(f) => {
                            let id = unclaimed.pop();
                            Open::Network(f.clone(), id)
                        }
                        Command::Kill(_) | Command::Terminate(_) | Command::Wipe(_) => {
                            Open::Down(n.unwrap_or(0))
                        }
                        Command::PowerCut(PowerTarget::All, _) => {
                            Open::DownAll(ever.iter().copied().collect())
                        }
                        Command::PowerCut(..) => Open::Down(n.unwrap_or(0)),
                        Command::Pause(_) | Command::TogglePause(_) => Open::Paused(n.unwrap_or(0)),
                        Command::Disk(_, _) => Open::Disk(n.unwrap_or(0)),
                        Command::Clock(_, ClockAction::Heal) => continue,
                        Command::Clock(..) => Open::Clock(n.unwrap_or(0)),
                        Command::SlowClient(c, _) => {
                            // Slowing a client slowed already replaces its delay.
                            close(
                                &mut m,
                                &mut open,
                                at,
                                &label,
                                |o| matches!(o, Open::SlowClient(x) if x == c),
                            );
                            Open::SlowClient(*c)
                        }
                        // A client pause's window starts when it strikes (`Event::Lock`), not here.
                        Command::PauseClient(..) => continue,
                        Command::CycleDelay(_) | Command::CycleLoss(_) => continue,
                        _ => continue,
                    };
                    let mut w = window(label, at);
                    match command {
                        // A timed fault ends by itself: its window is as long as asked, whatever comes after.
                        Command::Fault(FaultCmd {
                            duration: Some(d), ..
                        }) => {
                            w.end_ms = Some(at + d.as_millis() as u64);
                            w.ended_by = Some(format!(
                                "its `for {}` ran out",
                                crate::command::fault::human(*d)
                            ));
                        }
                        // A bit flip is done when it is done.
                        Command::Disk(_, DiskAction::Flip { .. }) => {
                            w.end_ms = Some(at);
                            w.ended_by = Some("a one-off corruption".into());
                        }
                        // A wipe restarts the node empty at once: the loss of its data is the fault.
                        Command::Wipe(_) => {
                            w.end_ms = Some(at);
                            w.ended_by = Some("restarted empty at once".into());
                        }
                        _ => {}
                    }
                    let timed = w.end_ms.is_some();
                    m.faults.push(w);
                    if !timed || matches!(kind, Open::Network(_, Some(_))) {
                        open.push((m.faults.len() - 1, kind));
                    }
                }
                Event::ClientOp {
                    result, latency_us, ..
                } => {
                    let outcome = if result == "ok" {
                        Outcome::Ok
                    } else if result.starts_with("refused") || result.starts_with("fail") {
                        Outcome::Fail
                    } else {
                        Outcome::Info
                    };
                    let p = OpPoint {
                        at_s: at.saturating_sub(latency_us / 1000) as f64 / 1e3,
                        latency_ms: *latency_us as f64 / 1e3,
                        outcome,
                    };
                    if outcome == Outcome::Ok {
                        counter_seconds.add(p.at_s, p.latency_ms);
                    }
                    counter_ops.push(p);
                }
                Event::Checked { verdict, report } => m.checks.push(CheckRecord {
                    at_ms: at,
                    which: checked_which(report),
                    verdict: *verdict,
                    report: report.clone(),
                }),
                Event::LockChecked { verdict, report } => m.checks.push(CheckRecord {
                    at_ms: at,
                    which: "lock",
                    verdict: *verdict,
                    report: report.clone(),
                }),
                Event::Lock { record } => {
                    lock.observe(record);
                    if let crate::check::lock::LockEvent::PauseStruck {
                        client,
                        token,
                        pause_ms,
                        ..
                    } = record
                    {
                        let mut w = window(
                            format!(
                                "pause-client {client} {}: struck at its protected write under token {token}",
                                crate::units::exact(std::time::Duration::from_millis(*pause_ms))
                            ),
                            at,
                        );
                        w.end_ms = Some(at + pause_ms);
                        w.ended_by = Some("the client carried on as if nothing happened".into());
                        m.faults.push(w);
                    }
                }
                Event::LinChecked {
                    verdict, report, ..
                } => m.checks.push(CheckRecord {
                    at_ms: at,
                    which: "linearizability",
                    verdict: *verdict,
                    report: report.clone(),
                }),
                Event::Op { op } => {
                    history(op);
                    if let Some(p) = pairs.push(op) {
                        if p.outcome == Outcome::Ok {
                            linkv_seconds.add(p.at_s, p.latency_ms);
                        }
                        linkv_ops.push(p);
                    }
                }
                Event::Host {
                    host,
                    nodes,
                    change,
                } => host_window(&mut m, &mut hosts_out, at, host, nodes, change),
                _ => {}
            }
        }
        m.verdicts = judge.finish();
        let lock = lock.report();
        if lock.started || lock.grants > 0 {
            use crate::check::lock::LockVerdict;
            m.lock = Some((
                match lock.verdict() {
                    LockVerdict::Valid => crate::state::Verdict::Ok,
                    LockVerdict::Invalid => crate::state::Verdict::Violated,
                    LockVerdict::Unknown => crate::state::Verdict::Inconclusive,
                },
                lock.text(),
            ));
        }
        m.elections = leader_terms.len();
        m.ever = ever.into_iter().collect();
        // The lin-kv history's operations when there is one, else the counter workload's.
        let (ops, seconds) = if pairs.invocations > 0 {
            (linkv_ops, linkv_seconds)
        } else {
            (counter_ops, counter_seconds)
        };
        m.ops_total = ops.total();
        m.ops = ops.into_points();
        m.seconds = seconds.finish();
        m
    }

    /// Throughput and latency quantiles per second (of `ok` operations, by invocation second), from an
    /// HDR histogram per second reused from second to second (one kept per second made an hour-long
    /// session's report take 680 MB).
    pub fn seconds(&self) -> Vec<Second> {
        self.seconds.clone()
    }
}

/// A window that starts at `at` and has not ended.
/// A host outage (`--hosts`, issue 24) as a window of the report's fault list, though squall did not inject
/// it: from the host's `unreachable` to its `back`; a `lost` host's window never ends (its agent is gone, and
/// its nodes with it). A reader sees why the host's nodes fell silent (tester 10's finding 8).
fn host_window(
    m: &mut Model,
    out: &mut BTreeMap<String, usize>,
    at: u64,
    host: &str,
    nodes: &[u64],
    change: &crate::state::HostChange,
) {
    use crate::state::HostChange;
    let nodes = nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    match change {
        HostChange::Unreachable { .. } if !out.contains_key(host) => {
            m.faults.push(window(
                format!(
                    "host {host} unreachable ({nodes}): squall could not see it (not injected)"
                ),
                at,
            ));
            out.insert(host.to_string(), m.faults.len() - 1);
        }
        HostChange::Back { .. } => {
            if let Some(i) = out.remove(host) {
                m.faults[i].end_ms = Some(at);
                m.faults[i].ended_by = Some(format!(
                    "host {host} back, its nodes as the agent kept them"
                ));
            }
        }
        HostChange::Lost { .. } => {
            let label = format!("host {host} lost: its agent is gone, and {nodes} with it");
            match out.remove(host) {
                Some(i) => m.faults[i].label = format!("{}; then {label}", m.faults[i].label),
                None => m.faults.push(window(label, at)),
            }
        }
        _ => {}
    }
}

fn window(label: String, at: u64) -> FaultWindow {
    FaultWindow {
        label,
        start_ms: at,
        end_ms: None,
        ended_by: None,
        commit_after_start_ms: None,
        recovery_ms: None,
    }
}

/// Ends every open window `pred` picks at `at`, naming what ended it (a window already ended by its own
/// `for` keeps that end).
fn close(
    m: &mut Model,
    open: &mut Vec<(usize, Open)>,
    at: u64,
    by: &str,
    pred: impl Fn(&Open) -> bool,
) {
    open.retain(|(i, o)| {
        if !pred(o) {
            return true;
        }
        let w = &mut m.faults[*i];
        if w.end_ms.is_none_or(|e| e > at) {
            w.end_ms = Some(at);
            w.ended_by = Some(by.to_string());
        }
        false
    });
}

/// A membership step's name in the report.
fn step_name(step: MembershipStep) -> &'static str {
    match step {
        MembershipStep::Learner => "learner",
        MembershipStep::CatchingUp => "catching up",
        MembershipStep::Promoted => "promoted",
        MembershipStep::Committed => "committed",
        MembershipStep::Removed => "removed",
        MembershipStep::Waiting => "waiting",
        MembershipStep::Failed => "failed",
    }
}

/// A commit advanced at `at`: the first commit after each fault window's start, and after its end (its
/// recovery time), for the windows still waiting for one (`awaiting` indexes `faults`; `seen` is how many
/// windows it has taken in so far).
fn commit_seen(faults: &mut [FaultWindow], awaiting: &mut Vec<usize>, seen: &mut usize, at: u64) {
    awaiting.extend(*seen..faults.len());
    *seen = faults.len();
    awaiting.retain(|&i| {
        let f = &mut faults[i];
        if f.commit_after_start_ms.is_none() && at > f.start_ms {
            f.commit_after_start_ms = Some(at - f.start_ms);
        }
        if f.recovery_ms.is_none()
            && let Some(end) = f.end_ms
            && at > end
        {
            f.recovery_ms = Some(at - end);
        }
        f.commit_after_start_ms.is_none() || f.recovery_ms.is_none()
    });
}

fn push_lane(lanes: &mut BTreeMap<u64, Vec<(u64, Lane)>>, node: u64, at: u64, lane: Lane) {
    let l = lanes.entry(node).or_default();
    if l.last().map(|(_, x)| *x) != Some(lane) {
        l.push((at, lane));
    }
}

/// Which check a `Checked` event's report is: Maelstrom's workloads record theirs as that event too, their
/// report beginning with the workload's name (`broadcast check passed: …`); anything else is squall's counter
/// check (a new user's broadcast report was titled "counter check").
fn checked_which(report: &str) -> &'static str {
    const MAELSTROM: &[&str] = &["echo", "unique-ids", "broadcast", "g-counter", "kafka"];
    MAELSTROM
        .iter()
        .find(|w| {
            report
                .strip_prefix(**w)
                .is_some_and(|rest| rest.starts_with(" check"))
        })
        .copied()
        .unwrap_or("counter")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(at: u64, d: &str, e: &str) -> Stamped {
        performed(at, d, None, e)
    }

    fn performed(at: u64, line: &str, node: Option<u64>, e: &str) -> Stamped {
        Stamped::new(
            at,
            Event::Performed {
                command: crate::command::parse(line).expect("a console line"),
                node,
                effect: e.into(),
            },
        )
    }

    /// Tester 10's finding 8: the report of a session on hosts never named a host's outage, so a node's silence
    /// had no cause on the page. Each outage is now a window of the fault list, ended by `back`; a lost host's
    /// stays open.
    #[test]
    fn a_host_s_outage_is_a_window_ended_when_it_is_back_and_a_lost_host_s_never_ends() {
        use crate::state::HostChange;
        let host = |at, name: &str, change| {
            Stamped::new(
                at,
                Event::Host {
                    host: name.into(),
                    nodes: vec![3],
                    change,
                },
            )
        };
        let un = || HostChange::Unreachable {
            why: "no ping".into(),
        };
        let m = Model::from_events(&[
            host(1_000, "host-b", un()),
            host(1_200, "host-b", HostChange::Reconnecting { attempt: 1 }),
            host(1_500, "host-b", un()),
            host(3_000, "host-b", HostChange::Back { pid: 7 }),
            host(4_000, "host-c", un()),
            host(
                9_000,
                "host-c",
                HostChange::Lost {
                    why: "gone".into(),
                    details: vec![],
                },
            ),
        ]);
        let seen: Vec<_> = m
            .faults
            .iter()
            .map(|f| {
                (
                    f.label.as_str(),
                    f.start_ms,
                    f.end_ms,
                    f.ended_by.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "host host-b unreachable (n3): squall could not see it (not injected)",
                    1_000,
                    Some(3_000),
                    Some("host host-b back, its nodes as the agent kept them")
                ),
                (
                    "host host-c unreachable (n3): squall could not see it (not injected); then host host-c \
                     lost: its agent is gone, and n3 with it",
                    4_000,
                    None,
                    None
                ),
            ]
        );
    }

    #[test]
    fn a_pre_vote_is_its_own_lane_not_a_candidate() {
        // Issue 20: the report drew a pre-candidate (asking whether it could win, term unchanged) as a
        // candidate (an election started, term raised).
        let st = |role| {
            let mut s = crate::state::fixture::sample_state(3).nodes[&3]
                .status
                .clone()
                .unwrap();
            s.core.role = role;
            s
        };
        let m = Model::from_events(&[
            Stamped::new(
                100,
                Event::Status {
                    node: 3,
                    status: st(Role::PreCandidate),
                },
            ),
            Stamped::new(
                200,
                Event::Status {
                    node: 3,
                    status: st(Role::Candidate),
                },
            ),
        ]);
        assert_eq!(
            m.lanes[&3],
            vec![(100, Lane::PreCandidate), (200, Lane::Candidate)]
        );
    }

    #[test]
    fn faults_end_at_what_undoes_them() {
        let m = Model::from_events(&[
            performed(100, "kill leader", Some(2), "kill node 2 (leader, term 3)"),
            fault(200, "partition halves", "partition {1,2} {3}"),
            fault(250, "pause 3", "pause node 3"),
            fault(300, "heal", "heal every network fault"),
            fault(400, "restart 2", "restart node 2 with its data"),
            fault(450, "resume 3", "resume node 3"),
            fault(500, "isolate 1", "isolate node 1"),
        ]);
        let ends: Vec<_> = m.faults.iter().map(|f| (f.start_ms, f.end_ms)).collect();
        assert_eq!(
            ends,
            vec![
                (100, Some(400)),
                (200, Some(300)),
                (250, Some(450)),
                (500, None)
            ]
        );
    }

    /// Issue 23: a client pause's window starts when it strikes at the client's protected write, not when
    /// the command was given, and lasts as long as the pause; `heal` ends a slowed client. The lock records
    /// are checked again from the log.
    #[test]
    fn a_client_pause_window_starts_at_the_strike_and_heal_ends_a_slow_client() {
        use crate::check::lock::LockEvent;
        let lock = |at: u64, record: LockEvent| Stamped::new(at, Event::Lock { record });
        let m = Model::from_events(&[
            lock(
                10,
                LockEvent::Started {
                    fenced: false,
                    ttl_ms: 1000,
                },
            ),
            fault(1_000, "pause-client 1 3s", "pause-client 1 3s: armed"),
            fault(1_200, "slow-client 2 50ms", "slow-client 2 50ms"),
            lock(
                1_500,
                LockEvent::Granted {
                    client: 1,
                    token: 4,
                    from_ms: 1_490,
                    until_ms: 2_490,
                },
            ),
            lock(
                1_510,
                LockEvent::PauseStruck {
                    client: 1,
                    token: 4,
                    pause_ms: 3_000,
                    at_ms: 1_510,
                },
            ),
            fault(
                2_000,
                "heal",
                "heal: client faults ended: slow-client 2 50ms",
            ),
        ]);
        assert_eq!(
            windows(&m),
            vec![(1_200, Some(2_000)), (1_510, Some(4_510))]
        );
        assert!(
            m.faults[1].label.contains("pause-client 1 3s: struck"),
            "{:?}",
            m.faults[1]
        );
        let (verdict, text) = m.lock.clone().expect("the lock workload ran");
        assert_eq!(verdict, crate::state::Verdict::Inconclusive, "{text}");
    }

    fn windows(m: &Model) -> Vec<(u64, Option<u64>)> {
        m.faults.iter().map(|f| (f.start_ms, f.end_ms)).collect()
    }

    fn fault_set(at: u64, ids: &[u64]) -> Stamped {
        Stamped::new(
            at,
            Event::FaultSet {
                faults: ids
                    .iter()
                    .map(|&id| crate::state::ActiveFault {
                        id,
                        text: format!("fault {id}"),
                        short: format!("f{id}"),
                        since_ms: at,
                        until_ms: None,
                        fault: None,
                    })
                    .collect(),
            },
        )
    }

    #[test]
    fn a_timed_fault_is_drawn_for_its_own_duration_not_until_the_final_heal() {
        // Issue 19: `partition bridge for 12s` at 3 s was drawn until the heal at 20 s.
        let m = Model::from_events(&[
            fault(3_000, "partition bridge for 12s", "partition {1,2} {3}"),
            fault(20_000, "heal", "heal every network fault"),
        ]);
        assert_eq!(windows(&m), vec![(3_000, Some(15_000))]);
        // The same with the fault sets the live session logs: the expiry removes it from the set.
        let m = Model::from_events(&[
            fault_set(3_000, &[1]),
            fault(3_000, "partition bridge for 12s", "#1 partition {1,2} {3}"),
            fault_set(15_004, &[]),
            Stamped::new(
                15_004,
                Event::FaultEnded {
                    id: 1,
                    fault: crate::command::parse_fault("partition", &["bridge", "for", "12s"])
                        .unwrap(),
                    why: crate::state::FaultEnd::Expired,
                },
            ),
            fault(20_000, "heal", "heal every network fault"),
        ]);
        assert_eq!(windows(&m), vec![(3_000, Some(15_000))]);
    }

    #[test]
    fn a_replaced_or_removed_delay_ends_there_and_a_removal_is_no_fault() {
        // Issue 19: replaced or removed delays ran to the heal; "remove #3 delay" was listed as a fault.
        let m = Model::from_events(&[
            fault(1_000, "delay 2 200ms", "#1 delay node 2's links by 200 ms"),
            fault(
                2_000,
                "delay 2 50ms",
                "#2 delay node 2's links by 50 ms (replaces #1)",
            ),
            fault(3_000, "delay 2 0", "remove #2 delay 2 50ms"),
            fault(9_000, "heal", "heal every network fault"),
        ]);
        assert_eq!(
            windows(&m),
            vec![(1_000, Some(2_000)), (2_000, Some(3_000))],
            "{:?}",
            m.faults
        );
        // With fault sets, a toggle that takes a fault away (`heal ID`) ends that fault's window only.
        let m = Model::from_events(&[
            fault_set(1_000, &[1]),
            fault(1_000, "cut 1->2", "#1 cut 1->2 on 1 link"),
            fault_set(1_500, &[1, 2]),
            fault(1_500, "cut 2->3", "#2 cut 2->3 on 1 link"),
            fault_set(2_000, &[2]),
            fault(2_000, "heal 1", "remove #1 cut 1->2"),
            fault(9_000, "heal", "heal every network fault"),
        ]);
        assert_eq!(
            windows(&m),
            vec![(1_000, Some(2_000)), (1_500, Some(9_000))]
        );
        assert_eq!(m.faults[0].ended_by.as_deref(), Some("remove #1 cut 1->2"));
    }

    #[test]
    fn a_live_log_ends_a_healed_fault_at_the_heal_and_names_it() {
        // The order the cluster reports in: the fault ends, the set changes, then the command's line.
        let cut = crate::command::parse_fault("cut", &["1->2"]).unwrap();
        let m = Model::from_events(&[
            fault_set(1_000, &[1]),
            fault(1_000, "cut 1->2", "#1 cut 1->2 on 1 link"),
            Stamped::new(
                4_000,
                Event::FaultEnded {
                    id: 1,
                    fault: cut,
                    why: crate::state::FaultEnd::Healed,
                },
            ),
            fault_set(4_000, &[]),
            fault(4_000, "heal", "heal every network fault: #1 cut 1->2"),
        ]);
        assert_eq!(windows(&m), vec![(1_000, Some(4_000))]);
        assert_eq!(
            m.faults[0].ended_by.as_deref(),
            Some("heal every network fault: #1 cut 1->2")
        );
    }

    #[test]
    fn one_way_cuts_holds_disk_clock_and_power_faults_are_listed() {
        // Issue 19: a scenario with a cut, a disk stall and a clock jump reported "0 faults".
        let m = Model::from_events(&[
            fault(1_000, "cut 1->2", "#1 cut 1->2 on 1 link"),
            fault(2_000, "hold *", "#2 hold * on 6 links"),
            performed(3_000, "disk 2 stall", Some(2), "stall node 2's disk"),
            performed(4_000, "clock 3 +1h", Some(3), "jump node 3's clock"),
            performed(5_000, "powercut 1", Some(1), "power cut node 1"),
            performed(6_000, "disk 2 heal", Some(2), "heal node 2's disk"),
            performed(7_000, "clock 3 heal", Some(3), "heal node 3's clock"),
            performed(8_000, "restart 1", Some(1), "restart node 1 with its data"),
            fault(9_000, "heal", "heal every network fault"),
        ]);
        assert_eq!(
            windows(&m),
            vec![
                (1_000, Some(9_000)),
                (2_000, Some(9_000)),
                (3_000, Some(6_000)),
                (4_000, Some(7_000)),
                (5_000, Some(8_000)),
            ],
            "{:?}",
            m.faults
        );
    }

    #[test]
    fn restart_all_ends_power_cuts_and_kills_and_clock_faults_compose() {
        // tester2 items 5 and 6 (repro/report-restart-all.toml, report-clock-compose.toml): `powercut all` and
        // `kill 2` undone by `restart all` were shown "until the end"; `clock 2 x2` after `clock 2 +1h` ended
        // the +1h window, although the two compose ("now +1h ×2").
        let m = Model::from_events(&[
            performed(3_000, "powercut all", None, "power cut of every node"),
            performed(4_000, "restart all", None, "restart every node"),
            performed(7_000, "kill 2", Some(2), "kill node 2"),
            performed(8_000, "restart all", None, "restart every node"),
            performed(9_000, "clock 2 +1h", Some(2), "jump node 2's clock"),
            performed(10_000, "clock 2 x2", Some(2), "run node 2's clock at x2"),
            performed(12_000, "clock 2 heal", Some(2), "heal node 2's clock"),
        ]);
        assert_eq!(
            windows(&m),
            vec![
                (3_000, Some(4_000)),
                (7_000, Some(8_000)),
                (9_000, Some(12_000)),
                (10_000, Some(12_000)),
            ],
            "{:?}",
            m.faults
        );
    }

    #[test]
    fn unsafe_no_fsync_is_a_fault_of_the_whole_session() {
        let m = Model::from_events(&[Stamped::new(
            0,
            Event::Settings {
                nodes: 3,
                election_timeout_ms: (150, 300),
                heartbeat_ms: 50,
                snapshot_every: 500,
                seed: 1,
                rate: 20,
                disk_faults: false,
                node_bin: None,
                unsafe_no_fsync: true,
                kind: None,
                options: Vec::new(),
                node_args: Vec::new(),
            },
        )]);
        assert_eq!(m.faults.len(), 1);
        assert!(m.faults[0].label.contains("unsafe-no-fsync"));
        assert_eq!(m.faults[0].end_ms, None);
    }

    #[test]
    fn seconds_take_quantiles_from_a_histogram() {
        let mut b = super::super::stream::SecondsBuilder::default();
        for i in 1..=100 {
            b.add(2.5, f64::from(i));
        }
        let s = b.finish();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].second, s[0].ok), (2, 100));
        assert!((s[0].p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s[0].p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s[0].max_ms - 100.0).abs() < 0.1, "{s:?}");
    }
}

#[cfg(test)]
mod checked_which_tests {
    #[test]
    fn a_maelstrom_check_is_named_by_its_workload_and_any_other_is_the_counter_check() {
        for (report, check) in [
            ("broadcast check passed: 3 operations", "broadcast"),
            ("g-counter check FAILED: 9 operations", "g-counter"),
            (
                "counter check: every acknowledged increment is there",
                "counter",
            ),
            ("check: nothing to judge: no operation", "counter"),
        ] {
            assert_eq!(super::checked_which(report), check, "{report}");
        }
    }
}
