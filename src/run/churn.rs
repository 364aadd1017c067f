//! The `catch-up` check of a scenario verdict: snapshot churn and follower lag.
//!
//! A follower that falls behind the leader's compaction point needs one snapshot, then continues from the
//! log. Two ways that goes wrong pass every safety check and the cluster-wide liveness check (the leader and
//! a majority keep committing), so they need a check of their own:
//! - **Snapshot churn** (etcd#2698, etcd#3292): the follower receives a new full snapshot at almost every
//!   compaction instead of continuing from the log. A node process that installs more than
//!   [`MAX_INSTALLS`] snapshots within [`CHURN_WINDOW`] fails the check. A restart starts its count anew: a
//!   node killed and restarted behind the compaction point legitimately needs one snapshot per start, and a
//!   fault performed or ended between installs (an isolation healed, then another) starts every count anew:
//!   one snapshot after each fault is catching up, not a loop.
//! - **Follower lag**: once the faults are over, every running member must catch up at least once: its
//!   commit index within `max_lag` entries of the highest commit index any node reports, at some poll of
//!   the recovery phase. `max_lag` is one snapshot interval or one second of workload, whichever is larger
//!   (a follower replicating in step trails by a heartbeat's worth of writes plus the poll's skew).
//!
//! Pure: the caller feeds the session's events and polls; time is the session's, so a replay judges the same.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use squall_node::raft::RaftEvent;
use squall_node::rpc::NodeEvent;

use crate::command::{ClockAction, Command, DiskAction};
use crate::state::{ClusterState, Event, MemberRole, ProcessState};

/// Most snapshot installs one node process may make within [`CHURN_WINDOW`].
pub const MAX_INSTALLS: usize = 2;

/// The lag noted for a member that was down or not answering at a recovery poll.
const NOT_ANSWERING: u64 = u64::MAX;

/// The window in which installs are counted.
pub const CHURN_WINDOW: Duration = Duration::from_secs(10);

/// The snapshot churn and follower lag tracker of one run.
#[derive(Clone, Debug)]
pub struct CatchUpCheck {
    max_lag: u64,
    /// Per node: times of the installs of its current process within the window.
    recent: BTreeMap<u64, VecDeque<Duration>>,
    /// Per node: every install in the run.
    total: BTreeMap<u64, usize>,
    /// Per node: the first time it had more than [`MAX_INSTALLS`] installs in the window, with how many.
    churned: BTreeMap<u64, (Duration, usize)>,
    /// Per running member seen during recovery: the smallest lag seen.
    lag: BTreeMap<u64, u64>,
    /// Per node: the process id last seen running.
    pids: BTreeMap<u64, u32>,
}

impl CatchUpCheck {
    /// A tracker for a cluster that snapshots every `snapshot_every` entries under a workload of `rate`
    /// operations per second.
    pub fn new(snapshot_every: u64, rate: u32) -> Self {
        CatchUpCheck {
            max_lag: snapshot_every.max(u64::from(rate)).max(1),
            recent: BTreeMap::new(),
            total: BTreeMap::new(),
            churned: BTreeMap::new(),
            lag: BTreeMap::new(),
            pids: BTreeMap::new(),
        }
    }

    /// The largest lag, in entries, that counts as caught up.
    pub fn max_lag(&self) -> u64 {
        self.max_lag
    }

    /// One event of the session, observed at `at`.
    pub fn on_event(&mut self, at: Duration, event: &Event) {
        match event {
            Event::NodeFeed { node, record } => {
                if let NodeEvent::Raft(RaftEvent::SnapshotInstalled { .. }) = record.event {
                    self.installed(*node, at);
                }
            }
            Event::Process {
                node,
                state: ProcessState::Running { pid },
            } => {
                // A new process (a new pid) starts its count anew.
                let before = self.pids.insert(*node, *pid);
                if before != Some(*pid) {
                    self.recent.remove(node);
                }
            }
            Event::Performed { command, .. } if starts_or_ends_a_fault(command) => {
                self.recent.clear();
            }
            // A `for DUR` ran out, or a command took a network fault away.
            Event::FaultEnded { .. } => self.recent.clear(),
            _ => {}
        }
    }

    /// Node `node` installed a snapshot at `at`.
    pub fn installed(&mut self, node: u64, at: Duration) {
        *self.total.entry(node).or_default() += 1;
        let recent = self.recent.entry(node).or_default();
        recent.push_back(at);
        while recent
            .front()
            .is_some_and(|&t| at.saturating_sub(t) >= CHURN_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() > MAX_INSTALLS {
            let n = recent.len();
            self.churned
                .entry(node)
                .and_modify(|(_, worst)| *worst = (*worst).max(n))
                .or_insert((at, n));
        }
    }

    /// A poll of the recovery phase (the faults are over): notes how far each running member trails.
    pub fn observe_recovery(&mut self, state: &ClusterState) {
        let high = state
            .nodes
            .values()
            .filter_map(|n| n.status.as_ref())
            .map(|s| s.core.commit_index)
            .max()
            .unwrap_or(0);
        for (&id, n) in &state.nodes {
            let member = matches!(
                state.membership(id),
                Some(MemberRole::Voter | MemberRole::Learner)
            );
            let Some(status) = n.status.as_ref().filter(|_| n.status_fresh) else {
                // A member that is down, or running but not answering, has not caught up: a restart that
                // failed after the faults must not leave it out of the check (tester2 item 0).
                if member {
                    self.observe_lag(id, NOT_ANSWERING);
                }
                continue;
            };
            if member && !matches!(n.process, ProcessState::Running { .. }) {
                self.observe_lag(id, NOT_ANSWERING);
                continue;
            }
            if !matches!(n.process, ProcessState::Running { .. })
                || !status.core.config.contains(id)
            {
                continue;
            }
            self.observe_lag(id, high.saturating_sub(status.core.commit_index));
        }
    }

    /// Node `node` trailed the highest commit index by `lag` entries at a recovery poll.
    pub fn observe_lag(&mut self, node: u64, lag: u64) {
        let seen = self.lag.entry(node).or_insert(lag);
        *seen = (*seen).min(lag);
    }

    /// The check's result: `Ok` with the evidence when no node churned and every member caught up,
    /// else `Err` with what went wrong.
    pub fn verdict(&self) -> Result<String, String> {
        let mut wrong = Vec::new();
        for (node, (at, n)) in &self.churned {
            wrong.push(format!(
                "n{node} installed {n} snapshots within {}s (from {:.1}s; {} in the run): a snapshot loop",
                CHURN_WINDOW.as_secs(),
                at.as_secs_f64(),
                self.total.get(node).copied().unwrap_or(0)
            ));
        }
        for (node, lag) in &self.lag {
            if *lag == NOT_ANSWERING {
                wrong.push(format!(
                    "n{node} never caught up after the faults: a member that was down or not answering at \
                     every poll"
                ));
            } else if *lag > self.max_lag {
                wrong.push(format!(
                    "n{node} never caught up after the faults: at least {lag} entries behind (bound {})",
                    self.max_lag
                ));
            }
        }
        if !wrong.is_empty() {
            return Err(wrong.join("; "));
        }
        let installs = if self.total.is_empty() {
            "no snapshot installs".to_string()
        } else {
            self.total
                .iter()
                .map(|(n, c)| format!("n{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
                + " snapshot install(s)"
        };
        let lag = if self.lag.is_empty() {
            "no recovery poll".to_string()
        } else {
            format!(
                "every member within {} entries of the commit index after the faults",
                self.max_lag()
            )
        };
        Ok(format!(
            "{installs}, at most {MAX_INSTALLS} per node within {}s; {lag}",
            CHURN_WINDOW.as_secs()
        ))
    }
}

/// Whether `command` injects a fault or ends one. Either can leave a node behind the compaction point anew
/// (an isolation healed, a process resumed or restarted), and one snapshot after each is catching up, not a
/// loop (F14: three isolations of one node within the window were judged a snapshot loop). Workload,
/// membership and questions do not restart the window.
fn starts_or_ends_a_fault(command: &Command) -> bool {
    command.injects_fault()
        || matches!(
            command,
            Command::Heal(_)
                | Command::Resume(_)
                | Command::Restart(_)
                | Command::RestartAll
                | Command::Release(_)
                | Command::Freeze
                | Command::Thaw
                | Command::Disk(_, DiskAction::Heal)
                | Command::Clock(_, ClockAction::Heal)
        )
}

/// The check's row in the verdict table.
pub(super) fn finding(check: &CatchUpCheck) -> super::verdict::Finding {
    let (verdict, evidence) = match check.verdict() {
        Ok(e) => ("valid", e),
        Err(e) => ("invalid", e),
    };
    super::verdict::Finding {
        check: "catch-up",
        verdict,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn repeated_installs_by_one_process_are_churn_and_a_restart_starts_anew() {
        let mut c = CatchUpCheck::new(100, 200);
        c.installed(3, s(8.0));
        c.installed(3, s(9.0));
        assert!(c.verdict().is_ok(), "two installs are allowed");
        c.installed(3, s(9.5));
        let why = c.verdict().unwrap_err();
        assert!(why.contains("n3 installed 3 snapshots within 10s"), "{why}");

        // Spread out, or split by a restart: no churn.
        let mut c = CatchUpCheck::new(100, 200);
        for t in [1.0, 12.0, 23.0, 34.0] {
            c.installed(2, s(t));
        }
        c.installed(1, s(1.0));
        c.installed(1, s(2.0));
        c.on_event(
            s(3.0),
            &Event::Process {
                node: 1,
                state: ProcessState::Running { pid: 42 },
            },
        );
        c.installed(1, s(4.0));
        c.installed(1, s(5.0));
        let ok = c.verdict().unwrap();
        assert!(ok.contains("n1 4, n2 4 snapshot install(s)"), "{ok}");
    }

    fn performed(command: &str) -> Event {
        Event::Performed {
            command: crate::command::parse(command).unwrap(),
            node: None,
            effect: command.to_string(),
        }
    }

    #[test]
    fn one_install_after_each_of_several_isolations_is_no_snapshot_loop() {
        // F14: node 3 isolated three times within 10 s catches up with one snapshot after each heal.
        let mut c = CatchUpCheck::new(100, 200);
        for (i, t) in [0.0, 3.0, 6.0].into_iter().enumerate() {
            c.on_event(s(t), &performed("isolate 3 for 2s"));
            c.on_event(
                s(t + 2.0),
                &Event::FaultEnded {
                    id: i as u64 + 1,
                    fault: match crate::command::parse("isolate 3 for 2s").unwrap() {
                        crate::command::Command::Fault(f) => f,
                        other => panic!("{other:?}"),
                    },
                    why: crate::state::FaultEnd::Expired,
                },
            );
            c.installed(3, s(t + 2.5));
        }
        let ok = c.verdict().unwrap();
        assert!(ok.contains("n3 3 snapshot install(s)"), "{ok}");

        // A fault performed (not only ended) between installs restarts the window too ...
        let mut c = CatchUpCheck::new(100, 200);
        c.installed(2, s(1.0));
        c.installed(2, s(2.0));
        c.on_event(s(2.5), &performed("pause 2"));
        c.on_event(s(3.0), &performed("resume 2"));
        c.installed(2, s(3.5));
        c.installed(2, s(4.0));
        assert!(c.verdict().is_ok(), "{:?}", c.verdict());

        // ... but an action that is no fault (a check, the workload) does not hide a loop.
        let mut c = CatchUpCheck::new(100, 200);
        c.installed(2, s(1.0));
        c.on_event(s(1.5), &performed("check"));
        c.on_event(s(1.6), &performed("workload on"));
        c.installed(2, s(2.0));
        c.installed(2, s(3.0));
        let why = c.verdict().unwrap_err();
        assert!(why.contains("n2 installed 3 snapshots"), "{why}");
    }

    #[test]
    fn a_member_that_never_catches_up_fails_and_one_that_does_once_passes() {
        let mut c = CatchUpCheck::new(50, 200);
        assert_eq!(c.max_lag(), 200);
        c.observe_lag(2, 900);
        c.observe_lag(2, 150);
        c.observe_lag(2, 700);
        c.observe_lag(3, 900);
        c.observe_lag(3, 201);
        let why = c.verdict().unwrap_err();
        assert!(!why.contains("n2"), "{why}");
        assert!(
            why.contains("n3 never caught up after the faults: at least 201 entries behind"),
            "{why}"
        );
    }
}
