//! The report's verdicts beyond the checks the session ran by command: the verdict table a `squall run`
//! recorded, and Raft's safety invariants, replayed from the log through the same
//! [`ClusterState::apply`] the live session used, so the report breaks the invariants the feed did.

use crate::state::{ClusterState, Event, Stamped, Verdict};

/// How many invariant violations the report quotes in full; the rest are counted.
pub const QUOTED_VIOLATIONS: usize = 5;

/// One row of the verdict table a `squall run` printed, as its event log recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFinding {
    /// The check (`counter`, `invariants`, `liveness`, `catch-up`, `steps`).
    pub check: String,
    /// `Ok` valid, `Violated` invalid, `Inconclusive` unknown.
    pub verdict: Verdict,
    /// The evidence in words.
    pub evidence: String,
}

/// What [`Judge`] found in a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// The run's verdict table; empty for a session that was not a `squall run`.
    pub run: Vec<RunFinding>,
    /// How many times an invariant broke.
    pub violations: usize,
    /// The first [`QUOTED_VIOLATIONS`] of them in words, as the feed said them.
    pub quoted: Vec<String>,
    /// What a clean record says: the properties judged and, for a kind that does not report what some need,
    /// which were not judged.
    pub held: String,
}

/// `invalid` if any finding is, else `unknown` if any is, else `valid` (the run's own rule).
pub fn overall(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Ok;
    for v in verdicts {
        match v {
            Verdict::Violated => return Verdict::Violated,
            Verdict::Inconclusive => out = Verdict::Inconclusive,
            Verdict::Ok => {}
        }
    }
    out
}

/// `valid`, `invalid` or `unknown`, the words of the run's verdict table.
pub fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "valid",
        Verdict::Violated => "invalid",
        Verdict::Inconclusive => "unknown",
    }
}

/// Folds a log's events, one at a time, into [`Verdicts`].
#[derive(Default)]
pub struct Judge {
    state: ClusterState,
    run: Vec<RunFinding>,
}

impl Judge {
    /// Takes one event.
    pub fn observe(&mut self, e: &Stamped) {
        if let Event::Judged {
            check,
            verdict,
            evidence,
        } = &e.event
        {
            self.run.push(RunFinding {
                check: check.clone(),
                verdict: *verdict,
                evidence: evidence.clone(),
            });
        }
        self.state.apply(e);
    }

    /// What was found.
    pub fn finish(self) -> Verdicts {
        let v = self.state.invariants.violations();
        Verdicts {
            held: self.state.invariants.held_text(),
            run: self.run,
            violations: v.len(),
            quoted: v
                .iter()
                .take(QUOTED_VIOLATIONS)
                .map(|v| v.to_string())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use squall_node::raft::types::{CoreStatus, Role};
    use squall_node::rpc::{NodeStatus, RpcCounters};

    use super::super::{model::Model, render};
    use crate::state::{Event, Stamped, Verdict};

    fn started() -> Stamped {
        Stamped::new(
            0,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: vec![1, 2, 3],
                dir: "/tmp/x".into(),
            },
        )
    }

    fn leader_of(node: u64, term: u64, at: u64) -> Stamped {
        Stamped::new(
            at,
            Event::Status {
                node,
                status: NodeStatus {
                    cluster_id: "c".into(),
                    pid: 100 + node as u32,
                    core: CoreStatus {
                        id: node,
                        role: Role::Leader,
                        term,
                        vote: Some(node),
                        leader: Some(node),
                        commit_index: 5,
                        last_log_index: 5,
                        last_log_term: term,
                        snapshot_index: 0,
                        progress: Vec::new(),
                        config: Default::default(),
                        config_index: 0,
                        config_committed: true,
                    },
                    applied_index: 5,
                    applied_hash: 0,
                    log_tail: Vec::new(),
                    rpc: RpcCounters::default(),
                    uptime_ms: 0,
                    keys: 0,
                    recovering: false,
                    first_log_index: 0,
                    frozen: false,
                    election_due_ms: None,
                },
            },
        )
    }

    fn judged(check: &str, verdict: Verdict, evidence: &str) -> Stamped {
        Stamped::new(
            9_000,
            Event::Judged {
                check: check.into(),
                verdict,
                evidence: evidence.into(),
            },
        )
    }

    fn html(events: &[Stamped]) -> String {
        render(&Model::from_events(events), None).expect("a report")
    }

    #[test]
    fn the_report_of_an_invalid_run_says_invalid_and_which_check_failed() {
        // As the tester's bundle repro/wm1: the counter check passed, the catch-up check did not.
        let events = [
            started(),
            Stamped::new(
                8_000,
                Event::Checked {
                    verdict: Verdict::Ok,
                    report: "counter check: every acknowledged increment is there".into(),
                },
            ),
            judged(
                "counter",
                Verdict::Ok,
                "every acknowledged increment is there",
            ),
            judged(
                "catch-up",
                Verdict::Violated,
                "n1 never caught up after its wipe",
            ),
            judged("steps", Verdict::Ok, "every timeline step was performed"),
            Stamped::new(9_100, Event::Quit),
        ];
        let h = html(&events);
        assert!(
            h.contains("verdict: invalid (the run&#39;s verdict; invalid: catch-up)")
                || h.contains("verdict: invalid (the run's verdict; invalid: catch-up)"),
            "{h}"
        );
        assert!(h.contains("n1 never caught up after its wipe"), "{h}");
        assert!(!h.contains("verdict: valid"), "{h}");
    }

    #[test]
    fn broken_invariants_are_counted_and_quoted_in_the_report() {
        let mut events = vec![started(), leader_of(1, 3, 100), leader_of(2, 3, 200)];
        for (i, term) in (4..12).enumerate() {
            // Eight more terms with two leaders each: nine violations, five quoted.
            events.push(leader_of(1, term, 300 + 20 * i as u64));
            events.push(leader_of(2, term, 310 + 20 * i as u64));
        }
        let h = html(&events);
        assert!(h.contains("verdict: invalid"), "{h}");
        assert!(
            h.contains("invariants (replayed from the log): invalid: 9 violation(s), the first 5:"),
            "{h}"
        );
        assert!(
            h.contains("INVARIANT BROKEN: election safety violated: n1 and n2 both led term 3"),
            "{h}"
        );
        assert!(
            !h.contains("both led term 11"),
            "only the first five are quoted: {h}"
        );
    }

    #[test]
    fn a_session_whose_invariants_held_says_so() {
        let h = html(&[started(), leader_of(1, 3, 100)]);
        assert!(h.contains("verdict: valid"), "{h}");
        assert!(
            h.contains("invariants (replayed from the log): valid"),
            "{h}"
        );
    }
}
