//! What a report shows, extracted from a session's events: operations and their latencies, fault windows,
//! each node's role over time, elections, commits, check verdicts. Pure: no I/O, no drawing.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use squall_node::raft::Role;

use crate::check::{OpEvent, Outcome, history};
use crate::state::{Event, MembershipStep, ProcessState, Stamped, Verdict};

/// One completed operation as the latency plot shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpPoint {
    /// When it was invoked, in seconds since the session started.
    pub at_s: f64,
    /// Invocation to completion, in milliseconds.
    pub latency_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
}

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
    /// Candidate or pre-candidate.
    Candidate,
    /// Process down (killed, exited, restarting) or paused.
    Down,
}

/// Latency quantiles and throughput of one second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Second {
    /// Second since the session started.
    pub second: u64,
    /// Operations completed `ok` in it.
    pub ok: u64,
    /// Median latency of those, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
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
    /// Completed operations: the lin-kv history's when there is one, else the counter workload's.
    pub ops: Vec<OpPoint>,
    /// Fault windows in the order they began.
    pub faults: Vec<FaultWindow>,
    /// Each node's role changes: (ms, lane).
    pub lanes: BTreeMap<u64, Vec<(u64, Lane)>>,
    /// Terms in which some node became leader.
    pub elections: usize,
    /// Times (ms) at which the highest commit index seen grew.
    pub commits: Vec<u64>,
    /// Check verdicts.
    pub checks: Vec<CheckRecord>,
    /// The lin-kv history.
    pub history: Vec<OpEvent>,
    /// Every node id seen in the session (started with it or added), ascending.
    pub ever: Vec<u64>,
    /// Membership requests and steps, in order.
    pub membership: Vec<MembershipRecord>,
    /// Each configuration a leader reported, in the order they were first seen; the last is the final one.
    pub configs: Vec<ConfigRecord>,
}

/// What undoes a fault, by the fault's description: `(kind, node)`.
fn classify(description: &str, effect: &str) -> (&'static str, Option<u64>) {
    let node_in = |s: &str| -> Option<u64> {
        let at = s.find("node ")?;
        s[at + 5..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let word = description.split_whitespace().next().unwrap_or("");
    let node = node_in(effect).or_else(|| {
        description
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse().ok())
    });
    match word {
        "kill" | "terminate" => ("process", node),
        "pause" if !effect.starts_with("resume") => ("pause", node),
        "pause/resume" if effect.starts_with("pause") => ("pause", node),
        "isolate" | "partition" | "delay" | "loss" | "cycle" => ("network", node),
        "heal" => ("heal", None),
        "restart" | "wipe" => ("restart", node),
        "resume" | "pause/resume" => ("resume", node),
        _ => ("other", node),
    }
}

impl Model {
    /// Builds the model from a session's events, taken one at a time (a slice, or a stream read from disk so
    /// an hours-long log is never held in memory whole).
    pub fn from_events<S: std::borrow::Borrow<Stamped>>(
        events: impl IntoIterator<Item = S>,
    ) -> Model {
        let mut m = Model::default();
        let mut counter_ops = Vec::new();
        let mut open: Vec<(usize, &'static str, Option<u64>)> = Vec::new();
        let mut leader_terms = std::collections::BTreeSet::new();
        let mut commit = 0u64;
        let mut ever = std::collections::BTreeSet::new();
        for s in events {
            let s = s.borrow();
            let at = s.at_ms;
            m.end_ms = m.end_ms.max(at);
            match &s.event {
                Event::SessionStarted { nodes, .. } => ever.extend(nodes.iter().copied()),
                Event::Status { node, .. }
                | Event::StatusDelta { node, .. }
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
                        Role::Candidate | Role::PreCandidate => Lane::Candidate,
                        Role::Follower => Lane::Follower,
                    };
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
                        m.commits.push(at);
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
                Event::Fault {
                    description,
                    effect,
                } if is_membership_request(description) => {
                    m.membership.push(MembershipRecord {
                        at_ms: at,
                        node: description
                            .split_whitespace()
                            .nth(1)
                            .and_then(|w| w.parse().ok()),
                        step: "requested",
                        text: if effect.is_empty() {
                            description.clone()
                        } else {
                            effect.clone()
                        },
                    });
                }
                Event::Fault {
                    description,
                    effect,
                } => {
                    let (kind, node) = classify(description, effect);
                    let label = if effect.is_empty() {
                        description.clone()
                    } else {
                        effect.clone()
                    };
                    let ends = |k: &str, n: Option<u64>| match kind {
                        "heal" => k == "network",
                        "restart" => k == "process" && n == node,
                        "resume" => k == "pause" && n == node,
                        _ => false,
                    };
                    if matches!(kind, "heal" | "restart" | "resume") {
                        open.retain(|&(i, k, n)| {
                            if ends(k, n) {
                                m.faults[i].end_ms = Some(at);
                                m.faults[i].ended_by = Some(label.clone());
                                false
                            } else {
                                true
                            }
                        });
                    } else if kind != "other" {
                        open.push((m.faults.len(), kind, node));
                        m.faults.push(FaultWindow {
                            label,
                            start_ms: at,
                            end_ms: None,
                            ended_by: None,
                            commit_after_start_ms: None,
                            recovery_ms: None,
                        });
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
                    counter_ops.push(OpPoint {
                        at_s: at.saturating_sub(latency_us / 1000) as f64 / 1e3,
                        latency_ms: *latency_us as f64 / 1e3,
                        outcome,
                    });
                }
                Event::Checked { verdict, report } => m.checks.push(CheckRecord {
                    at_ms: at,
                    which: "counter",
                    verdict: *verdict,
                    report: report.clone(),
                }),
                Event::LinChecked {
                    verdict, report, ..
                } => m.checks.push(CheckRecord {
                    at_ms: at,
                    which: "linearizability",
                    verdict: *verdict,
                    report: report.clone(),
                }),
                Event::Op { op } => m.history.push(*op),
                _ => {}
            }
        }
        m.elections = leader_terms.len();
        m.ever = ever.into_iter().collect();
        let commits = &m.commits;
        let first_after = |t: u64| commits.iter().find(|&&c| c > t).map(|&c| c - t);
        for f in &mut m.faults {
            f.commit_after_start_ms = first_after(f.start_ms);
            f.recovery_ms = f.end_ms.and_then(first_after);
        }
        m.ops = match history::pair(&m.history) {
            Ok(ops) if !ops.is_empty() => ops
                .iter()
                .filter_map(|o| {
                    let done = o.complete_time?;
                    Some(OpPoint {
                        at_s: o.invoke_time as f64 / 1e9,
                        latency_ms: (done - o.invoke_time) as f64 / 1e6,
                        outcome: o.outcome,
                    })
                })
                .collect(),
            _ => counter_ops,
        };
        m
    }

    /// Throughput and latency quantiles per second (of `ok` operations, by invocation second), from an
    /// HDR histogram per second.
    pub fn seconds(&self) -> Vec<Second> {
        let mut by: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
        for p in self.ops.iter().filter(|p| p.outcome == Outcome::Ok) {
            let h = by.entry(p.at_s as u64).or_insert_with(|| {
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
            });
            h.saturating_record((p.latency_ms * 1e3).max(1.0) as u64);
        }
        by.into_iter()
            .map(|(second, h)| Second {
                second,
                ok: h.len(),
                p50_ms: h.value_at_quantile(0.5) as f64 / 1e3,
                p95_ms: h.value_at_quantile(0.95) as f64 / 1e3,
                p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
                max_ms: h.max() as f64 / 1e3,
            })
            .collect()
    }
}

/// Whether a console line asks for a membership change (the headless vocabulary: `add`, `remove N`,
/// `replace N`, `promote N`).
fn is_membership_request(description: &str) -> bool {
    matches!(
        description.split_whitespace().next(),
        Some("add" | "remove" | "replace" | "promote")
    )
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

fn push_lane(lanes: &mut BTreeMap<u64, Vec<(u64, Lane)>>, node: u64, at: u64, lane: Lane) {
    let l = lanes.entry(node).or_default();
    if l.last().map(|(_, x)| *x) != Some(lane) {
        l.push((at, lane));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(at: u64, d: &str, e: &str) -> Stamped {
        Stamped::new(
            at,
            Event::Fault {
                description: d.into(),
                effect: e.into(),
            },
        )
    }

    #[test]
    fn faults_end_at_what_undoes_them() {
        let m = Model::from_events(&[
            fault(100, "kill leader", "kill node 2 (leader, term 3)"),
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

    #[test]
    fn seconds_take_quantiles_from_a_histogram() {
        let m = Model {
            ops: (1..=100)
                .map(|i| OpPoint {
                    at_s: 2.5,
                    latency_ms: f64::from(i),
                    outcome: Outcome::Ok,
                })
                .chain([OpPoint {
                    at_s: 2.0,
                    latency_ms: 5000.0,
                    outcome: Outcome::Info,
                }])
                .collect(),
            ..Model::default()
        };
        let s = m.seconds();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].second, s[0].ok), (2, 100));
        assert!((s[0].p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s[0].p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s[0].max_ms - 100.0).abs() < 0.1, "{s:?}");
    }
}
