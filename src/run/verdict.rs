//! The verdicts of a run: one finding per check, the overall verdict, and its exit code.

use super::say::{fmt_ms, say_outcome};
use crate::check::liveness::{Failure, Liveness, Outage};
use crate::cluster::command::Command;
use crate::cluster::{Cluster, Outcome};
use crate::scenario::{Plan, WorkloadKind, fmt_duration};
use crate::session::ConsoleFeed;
use crate::state::Verdict;

/// One check's result in the verdict table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check ("counter", "linearizable", "invariants", "liveness").
    pub check: &'static str,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    /// The evidence in words.
    pub evidence: String,
}

/// The verdict of several findings: invalid if any is, else unknown if any is, else valid.
pub fn overall(findings: &[Finding]) -> &'static str {
    if findings.iter().any(|f| f.verdict == "invalid") {
        "invalid"
    } else if findings.iter().any(|f| f.verdict == "unknown") {
        "unknown"
    } else {
        "valid"
    }
}

/// The exit code of a verdict.
pub fn exit_code(verdict: &str) -> u8 {
    match verdict {
        "valid" => 0,
        "invalid" => 1,
        _ => 3,
    }
}

/// Whether the nodes report their leader: every kind but a Maelstrom node does, and a Maelstrom node does
/// once one of them told squall its role (the destination `squall`). A run of nodes that report none is
/// judged live by completed operations alone.
pub(super) fn reports_leader(maelstrom: bool, s: &crate::state::ClusterState) -> bool {
    !maelstrom
        || s.nodes
            .values()
            .any(|n| n.status.is_some() || n.brief.as_ref().is_some_and(|b| b.role.is_some()))
}

/// What the liveness evidence says about time in which no client operation was asked (no commit owed).
fn idle_note(liveness: &Liveness) -> String {
    let idle = liveness.idle();
    if idle.is_zero() {
        String::new()
    } else {
        format!(
            " and operations were asked (for {} of healthy time none was asked: a leader was all that was \
             owed, no commit required)",
            fmt_ms(idle)
        )
    }
}

pub(super) async fn judge(
    plan: &Plan,
    cluster: &Cluster,
    feed: &mut ConsoleFeed,
    session: &mut crate::session::Session,
    liveness: &Liveness,
) -> Vec<Finding> {
    let s = &plan.scenario;
    let mut findings = Vec::new();
    let maelstrom = match s.workload.kind {
        WorkloadKind::Maelstrom(k) => Some(k.as_str()),
        _ => None,
    };
    if s.checks.counter || s.checks.linearizable || s.checks.lock || maelstrom.is_some() {
        let outcome = cluster.perform(Command::Check).await;
        say_outcome(feed, cluster, "check", &outcome);
        let (verdict, evidence) = match outcome {
            Outcome::Verdict { verdict, report } => (
                match verdict {
                    Verdict::Ok => "valid",
                    Verdict::Violated => "invalid",
                    Verdict::Inconclusive => "unknown",
                },
                report,
            ),
            other => ("unknown", format!("{other:?}")),
        };
        findings.push(Finding {
            check: if let Some(name) = maelstrom {
                name
            } else {
                match s.workload.kind {
                    WorkloadKind::LinKv => "linearizable",
                    WorkloadKind::Lock | WorkloadKind::LockFenced => "lock",
                    _ => "counter",
                }
            },
            verdict,
            evidence,
        });
    }
    if s.checks.invariants {
        let v = session.state.invariants.violations();
        findings.push(Finding {
            check: "invariants",
            verdict: if v.is_empty() { "valid" } else { "invalid" },
            evidence: if v.is_empty() {
                session.state.invariants.held_text()
            } else {
                let mut e: Vec<String> = v.iter().take(3).map(|v| v.to_string()).collect();
                if v.len() > 3 {
                    e.push(format!("and {} more", v.len() - 3));
                }
                e.join("; ")
            },
        });
    }
    if s.checks.liveness {
        findings.push(liveness_finding(
            liveness,
            reports_leader(s.cluster.maelstrom.is_some(), &session.state),
            s.checks.liveness_bound,
        ));
    }
    findings
}

/// `from 9.9s to 15.3s` (`from 9.9s, not back` while it has not come back).
fn outage_span(o: &Outage) -> String {
    match o.to {
        Some(to) => format!("from {} to {}", fmt_ms(o.from), fmt_ms(to)),
        None => format!("from {}, not back", fmt_ms(o.from)),
    }
}

/// `host host2 (n2) unreachable from 9.9s to 15.3s, host host3 (n3, n5) …`.
fn outages_text<'a>(outages: impl IntoIterator<Item = &'a Outage>) -> String {
    outages
        .into_iter()
        .map(|o| {
            let nodes: Vec<String> = o.nodes.iter().map(|n| format!("n{n}")).collect();
            format!(
                "host {} ({}) unreachable {}",
                o.host,
                nodes.join(", "),
                outage_span(o)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The liveness row of the verdict table: `invalid` for a failure while squall observed every host, `unknown`
/// for failures only while a host was unreachable (squall could not see its nodes: the failure may be
/// squall's blindness, not the cluster's; issue 24), else `valid` with the recoveries. Every host outage is
/// named.
fn liveness_finding(
    liveness: &Liveness,
    reports_leader: bool,
    bound: std::time::Duration,
) -> Finding {
    let (held, unobserved) = liveness.judged();
    let failure = |f: &Failure| format!("{} from {} to {}", f.what, fmt_ms(f.from), fmt_ms(f.to));
    let unknown: Vec<String> = unobserved
        .iter()
        .map(|u| {
            format!(
                "{} while squall could not observe the nodes ({}): unknown, not held against the cluster",
                failure(u.failure),
                outages_text(u.outages.iter().copied())
            )
        })
        .collect();
    if !held.is_empty() {
        let mut lines: Vec<String> = held
            .iter()
            .map(|f| format!("{} while progress was owed", failure(f)))
            .collect();
        lines.extend(unknown);
        return Finding {
            check: "liveness",
            verdict: "invalid",
            evidence: lines.join("; "),
        };
    }
    if !unknown.is_empty() {
        return Finding {
            check: "liveness",
            verdict: "unknown",
            evidence: unknown.join("; "),
        };
    }
    let recoveries: Vec<String> = liveness
        .recoveries()
        .iter()
        .map(|r| match r.took() {
            Some(t) => format!("{} → {}", r.what, fmt_ms(t)),
            None => format!("{} → not recovered", r.what),
        })
        .collect();
    let outages = if liveness.outages().is_empty() {
        String::new()
    } else {
        format!(
            "; squall could not observe the nodes of {}",
            outages_text(liveness.outages())
        )
    };
    Finding {
        check: "liveness",
        verdict: "valid",
        evidence: format!(
            "{} within {} whenever healthy{}; recovery: {}{outages}",
            if reports_leader {
                "a leader and commits"
            } else {
                "completed operations (the nodes report no leader)"
            },
            fmt_duration(bound),
            idle_note(liveness),
            if recoveries.is_empty() {
                "nothing to recover from".into()
            } else {
                recoveries.join(", ")
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::liveness::Sample;
    use std::time::Duration;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn sample(at: u64, leader: Option<u64>, commit: u64) -> Sample {
        Sample {
            at: ms(at),
            healthy: true,
            leader,
            commit_index: commit,
            asked: true,
            served: 0,
            reports_leader: true,
            term: 2,
            leadership: (leader, 2),
            connected: true,
            rate: 0,
        }
    }

    /// The verdict table's liveness row for tester10's finding 1 (issue 24): every host unreachable for longer
    /// than the bound, n2 leading throughout. `unknown`, naming the outages; not `invalid`.
    #[test]
    fn a_no_leader_window_during_a_host_outage_is_unknown_and_names_the_outage() {
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..93 {
            l.observe(sample(t * 100, Some(2), t));
        }
        l.host_unreachable(ms(9_946), "host2", &[2]);
        for t in 93..153 {
            l.observe(sample(t * 100, None, 92));
        }
        l.host_back(ms(15_199), "host2");
        for t in 153..170 {
            l.observe(sample(t * 100, Some(2), t));
        }
        l.finish(ms(17_000));
        let f = liveness_finding(&l, true, ms(3_000));
        assert_eq!(f.verdict, "unknown", "{f:?}");
        assert_eq!(
            f.evidence,
            "no leader from 9.2s to 12s while squall could not observe the nodes (host host2 (n2) unreachable \
             from 9.9s to 15s): unknown, not held against the cluster"
        );

        // With the host back at once, the run was valid: the outage is still named.
        let mut l = Liveness::new(ms(3_000), vec![]);
        l.host_unreachable(ms(1_000), "host2", &[2]);
        l.host_back(ms(1_500), "host2");
        for t in 0..50 {
            l.observe(sample(t * 100, Some(2), t));
        }
        l.finish(ms(5_000));
        let f = liveness_finding(&l, true, ms(3_000));
        assert_eq!(f.verdict, "valid", "{f:?}");
        assert!(
            f.evidence
                .ends_with("; squall could not observe the nodes of host host2 (n2) unreachable from 1s to 1.5s"),
            "{}",
            f.evidence
        );
    }
}
