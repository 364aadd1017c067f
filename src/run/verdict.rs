//! The verdicts of a run: one finding per check, the overall verdict, and its exit code.

use super::say::{fmt_ms, say_outcome};
use crate::check::liveness::Liveness;
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
        let f = liveness.failures();
        let recoveries: Vec<String> = liveness
            .recoveries()
            .iter()
            .map(|r| match r.took() {
                Some(t) => format!("{} → {}", r.what, fmt_ms(t)),
                None => format!("{} → not recovered", r.what),
            })
            .collect();
        findings.push(Finding {
            check: "liveness",
            verdict: if f.is_empty() { "valid" } else { "invalid" },
            evidence: if f.is_empty() {
                format!(
                    "{} within {} whenever healthy{}; recovery: {}",
                    if reports_leader(s.cluster.maelstrom.is_some(), &session.state) {
                        "a leader and commits"
                    } else {
                        "completed operations (the nodes report no leader)"
                    },
                    fmt_duration(s.checks.liveness_bound),
                    idle_note(liveness),
                    if recoveries.is_empty() {
                        "nothing to recover from".into()
                    } else {
                        recoveries.join(", ")
                    }
                )
            } else {
                f.iter()
                    .map(|f| {
                        format!(
                            "{} from {} to {} while progress was owed",
                            f.what,
                            fmt_ms(f.from),
                            fmt_ms(f.to)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        });
    }
    findings
}
