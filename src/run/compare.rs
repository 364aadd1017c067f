//! Side by side (`squall run FILE --protocol raft,paxos`, issue 23): what one run measured beside its verdicts
//! ([`Measures`], gathered by the run loop), and the one table that compares the runs of a scenario on several
//! protocols.
//!
//! The figures, per run:
//! - failover: a fault performed → a leader other than the one at the fault (or any leader, when there was
//!   none) whose commit index passed the highest one seen before it showed: the new leader (Raft) or
//!   distinguished proposer (Multi-Paxos) serving writes. A fault after which the leader never changed (a
//!   follower killed) measures none. Each fault's measurement ends at the next fault. Resolution: the nodes'
//!   status reports (every event) and the run's 100 ms tick.
//! - recovery: a fault's end → the next progress (a commit, or an operation served), as the liveness check
//!   measures it from the events' own times ([`crate::check::liveness`]), for each fault that ended (one that
//!   ended by itself, a `heal` step, the final heal); the table shows the worst and names its fault, the JSON
//!   every one.
//! - writes/s: acknowledged writes (lin-kv: `write` and successful `cas` completions; other workloads: their
//!   acknowledged operations) over the run's length, faults included.
//! - messages per committed write: every frame the link proxies forwarded between nodes in the run (requests
//!   and answers, reads' traffic included) over those writes.
//!
//! Pure: the loop hands in what it saw; nothing here reads a clock or a socket.

use std::time::Duration;

use super::verdict::Finding;

/// One fault whose failover is still being measured.
#[derive(Clone, Debug)]
struct Pending {
    at: Duration,
    leader: Option<u64>,
    commit: u64,
}

/// Measures failovers: fault → a different leader committing past what was committed before the fault.
#[derive(Clone, Debug, Default)]
pub struct Failover {
    pending: Option<Pending>,
    done: Vec<Duration>,
}

impl Failover {
    /// A fault was performed at `at`, when `leader` led and `commit` was the highest commit index seen. The
    /// measurement of an earlier fault that has not moved the leader ends here, unmeasured.
    pub fn fault(&mut self, at: Duration, leader: Option<u64>, commit: u64) {
        self.pending = Some(Pending { at, leader, commit });
    }

    /// The cluster as seen at `at`: the leader a majority agrees on and the highest commit index seen.
    pub fn observe(&mut self, at: Duration, leader: Option<u64>, commit: u64) {
        let Some(p) = &mut self.pending else { return };
        if at < p.at {
            return;
        }
        match leader {
            Some(l) if Some(l) != p.leader => {
                if commit > p.commit {
                    self.done.push(at - p.at);
                    self.pending = None;
                }
            }
            // Until another leader shows, what is committed is the old leader's doing (an entry it committed
            // as the fault struck): the new one must commit past it.
            _ => p.commit = p.commit.max(commit),
        }
    }

    /// The failovers measured, in the order of their faults.
    pub fn measured(&self) -> &[Duration] {
        &self.done
    }
}

/// What one run measured beside its verdicts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measures {
    /// Each failover (fault → new leader serving writes), in order.
    pub failovers: Vec<Duration>,
    /// Each fault end's recovery, in order: the fault (`isolate leader`, `final heal`) and how long the
    /// cluster took (`None`: not recovered by the end of the run).
    pub recoveries: Vec<(String, Option<Duration>)>,
    /// Acknowledged writes.
    pub writes: u64,
    /// The run's length (session time), in seconds.
    pub seconds: f64,
    /// Frames forwarded between nodes by the link proxies.
    pub messages: u64,
}

impl Measures {
    /// The median failover, if any was measured.
    pub fn failover_median(&self) -> Option<Duration> {
        let mut v = self.failovers.clone();
        v.sort_unstable();
        v.get(v.len().saturating_sub(1) / 2).copied()
    }

    /// The worst recovery and the fault it followed: the first that did not recover (`None` time), else the
    /// longest; `None` when there was nothing to recover from.
    pub fn worst_recovery(&self) -> Option<(&str, Option<Duration>)> {
        let worst = self
            .recoveries
            .iter()
            .find(|(_, took)| took.is_none())
            .or_else(|| self.recoveries.iter().max_by_key(|(_, took)| *took))?;
        Some((worst.0.as_str(), worst.1))
    }

    /// Writes per second over the run.
    pub fn writes_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.writes as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Frames between nodes per acknowledged write (`None` with no write).
    pub fn messages_per_write(&self) -> Option<f64> {
        (self.writes > 0).then(|| self.messages as f64 / self.writes as f64)
    }
}

/// One protocol's run of the scenario: its findings and figures, or why it could not run.
#[derive(Clone, Debug)]
pub struct Row {
    /// `raft` or `paxos`.
    pub protocol: &'static str,
    /// The run's findings and figures; `Err`: why it could not run (exit code 2).
    pub result: Result<(Vec<Finding>, Measures), String>,
    /// Where its bundle is.
    pub bundle: std::path::PathBuf,
}

impl Row {
    /// The overall verdict (`could not run` when it did not).
    pub fn verdict(&self) -> &'static str {
        match &self.result {
            Ok((f, _)) => super::verdict::overall(f),
            Err(_) => "could not run",
        }
    }

    /// Its exit code: 0 valid, 1 invalid, 2 could not run, 3 unknown.
    pub fn exit_code(&self) -> u8 {
        match &self.result {
            Ok((f, _)) => super::verdict::exit_code(super::verdict::overall(f)),
            Err(_) => 2,
        }
    }

    fn finding(&self, check: &str) -> &'static str {
        match &self.result {
            Ok((f, _)) => f
                .iter()
                .find(|f| f.check == check)
                .map_or("-", |f| f.verdict),
            Err(_) => "-",
        }
    }
}

/// The exit code of several runs: the worst of theirs (could not run, then invalid, then unknown, then valid).
pub fn worst_exit_code(rows: &[Row]) -> u8 {
    let rank = |c: u8| match c {
        2 => 3,
        1 => 2,
        3 => 1,
        _ => 0,
    };
    rows.iter()
        .map(Row::exit_code)
        .max_by_key(|c| rank(*c))
        .unwrap_or(0)
}

/// The name of the workload's own check in a row's findings (`linearizable`, `counter`, `lock`, …): the first
/// finding that is not one of the run's general checks.
fn workload_check(rows: &[Row]) -> Option<&'static str> {
    rows.iter().find_map(|r| match &r.result {
        Ok((f, _)) => f
            .iter()
            .map(|f| f.check)
            .find(|c| !matches!(*c, "invariants" | "liveness" | "catch-up" | "steps" | "run")),
        Err(_) => None,
    })
}

/// Milliseconds, whole: failovers of 300 and 1,300 ms are compared digit by digit.
fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The comparison table, one line per protocol, with a header; then one line per run that could not run.
pub fn table(rows: &[Row], expect: &str) -> String {
    let check = workload_check(rows);
    let mut header = vec!["protocol", "verdict", "expected"];
    header.extend(check);
    header.extend([
        "invariants",
        "liveness",
        "failover",
        "recovery",
        "writes/s",
        "msgs/write",
    ]);
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let mut l = vec![
            r.protocol.to_string(),
            r.verdict().to_string(),
            if r.verdict() == expect { "yes" } else { "NO" }.to_string(),
        ];
        if let Some(c) = check {
            l.push(r.finding(c).to_string());
        }
        l.push(r.finding("invariants").to_string());
        l.push(r.finding("liveness").to_string());
        match &r.result {
            Ok((_, m)) => {
                l.push(match m.failover_median() {
                    None => "none".into(),
                    Some(d) if m.failovers.len() == 1 => ms(d),
                    Some(d) => format!("{} (median of {})", ms(d), m.failovers.len()),
                });
                l.push(match m.worst_recovery() {
                    None => "none".into(),
                    Some((what, None)) => format!("not recovered ({what})"),
                    Some((what, Some(d))) if m.recoveries.len() == 1 => {
                        format!("{} ({what})", ms(d))
                    }
                    Some((what, Some(d))) => {
                        format!("{} ({what}, worst of {})", ms(d), m.recoveries.len())
                    }
                });
                l.push(format!("{:.1}", m.writes_per_sec()));
                l.push(
                    m.messages_per_write()
                        .map_or("-".into(), |x| format!("{x:.1}")),
                );
            }
            Err(_) => l.extend(std::iter::repeat_n("-".to_string(), 4)),
        }
        lines.push(l);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for r in rows {
        if let Err(e) = &r.result {
            out.push_str(&format!("{}: could not run: {e}\n", r.protocol));
        }
    }
    out
}

/// The comparison as JSON (`comparison.json` in the bundle): every run's verdicts, evidence and figures.
pub fn json(rows: &[Row], scenario: &str, seed: u64, expect: &str) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "protocol": r.protocol,
                "verdict": r.verdict(),
                "as_expected": r.verdict() == expect,
                "exit_code": r.exit_code(),
                "bundle": r.bundle.display().to_string(),
            });
            match &r.result {
                Ok((findings, m)) => {
                    v["findings"] = findings
                        .iter()
                        .map(|f| {
                            serde_json::json!({
                                "check": f.check, "verdict": f.verdict, "evidence": f.evidence,
                            })
                        })
                        .collect();
                    let msf = |d: Duration| d.as_secs_f64() * 1000.0;
                    v["failover_ms"] = m.failovers.iter().map(|d| msf(*d)).collect();
                    v["failover_median_ms"] = m.failover_median().map(msf).into();
                    v["recovery_ms"] = m.recoveries.iter().map(|(_, r)| r.map(msf)).collect();
                    v["recovery_of"] = m.recoveries.iter().map(|(what, _)| what.clone()).collect();
                    v["writes"] = m.writes.into();
                    v["seconds"] = m.seconds.into();
                    v["writes_per_sec"] = m.writes_per_sec().into();
                    v["messages"] = m.messages.into();
                    v["messages_per_write"] = m.messages_per_write().into();
                }
                Err(e) => v["error"] = e.clone().into(),
            }
            v
        })
        .collect();
    serde_json::json!({ "scenario": scenario, "seed": seed, "expect": expect, "runs": runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_failover_ends_when_another_leader_commits_past_the_fault() {
        let mut f = Failover::default();
        f.observe(ms(100), Some(1), 10);
        f.fault(ms(1_000), Some(1), 10);
        // The old leader still reported, then no leader, then a new one that has not committed yet.
        f.observe(ms(1_050), Some(1), 11);
        f.observe(ms(1_200), None, 11);
        f.observe(ms(1_400), Some(2), 11);
        assert!(f.measured().is_empty());
        f.observe(ms(1_450), Some(2), 12);
        assert_eq!(f.measured(), &[ms(450)]);
        // A fault that never moves the leader measures nothing, and ends at the next fault.
        f.fault(ms(3_000), Some(2), 20);
        f.observe(ms(3_100), Some(2), 25);
        f.fault(ms(4_000), Some(2), 25);
        f.observe(ms(4_300), Some(3), 26);
        assert_eq!(f.measured(), &[ms(450), ms(300)]);
        // With no leader at the fault, the first leader that commits ends it.
        f.fault(ms(6_000), None, 30);
        f.observe(ms(6_200), Some(3), 31);
        assert_eq!(f.measured().len(), 3);
    }

    fn row(protocol: &'static str, findings: &[(&'static str, &'static str)], m: Measures) -> Row {
        Row {
            protocol,
            result: Ok((
                findings
                    .iter()
                    .map(|(c, v)| Finding {
                        check: c,
                        verdict: v,
                        evidence: String::new(),
                    })
                    .collect(),
                m,
            )),
            bundle: protocol.into(),
        }
    }

    #[test]
    fn the_table_has_one_row_per_protocol_and_the_exit_code_is_the_worst() {
        let m = Measures {
            failovers: vec![ms(300), ms(500), ms(400)],
            recoveries: vec![
                ("isolate leader".into(), Some(ms(250))),
                ("final heal".into(), Some(ms(100))),
            ],
            writes: 500,
            seconds: 10.0,
            messages: 4_000,
        };
        let raft = row(
            "raft",
            &[
                ("linearizable", "valid"),
                ("invariants", "valid"),
                ("liveness", "valid"),
            ],
            m.clone(),
        );
        let paxos = row(
            "paxos",
            &[
                ("linearizable", "valid"),
                ("invariants", "valid"),
                ("liveness", "invalid"),
            ],
            Measures {
                recoveries: vec![("final heal".into(), None)],
                ..m
            },
        );
        let t = table(&[raft.clone(), paxos.clone()], "valid");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[0].starts_with("protocol") && lines[0].contains("linearizable"),
            "{t}"
        );
        assert!(lines[1].starts_with("raft") && lines[1].contains("400ms (median of 3)"));
        // Each fault's recovery is measured; the worst is shown with the fault it followed.
        assert!(
            lines[1].contains("250ms (isolate leader, worst of 2)")
                && lines[1].contains("50.0")
                && lines[1].contains("8.0"),
            "{t}"
        );
        assert!(lines[2].starts_with("paxos") && lines[2].contains("invalid"));
        assert!(
            lines[2].contains("NO") && lines[2].contains("not recovered (final heal)"),
            "{t}"
        );
        assert_eq!(worst_exit_code(&[raft.clone(), paxos.clone()]), 1);
        let broken = Row {
            protocol: "paxos",
            result: Err("no such kind".into()),
            bundle: "p".into(),
        };
        assert_eq!(worst_exit_code(&[paxos.clone(), broken.clone()]), 2);
        let t = table(&[raft.clone(), broken], "valid");
        assert!(t.contains("paxos: could not run: no such kind"), "{t}");
        let j = json(&[raft, paxos], "kill-leader", 7, "valid");
        assert_eq!(j["runs"][0]["failover_median_ms"], 400.0);
        assert_eq!(j["runs"][1]["as_expected"], false);
        assert_eq!(j["runs"][1]["recovery_ms"][0], serde_json::Value::Null);
        assert_eq!(j["runs"][0]["recovery_ms"][0], 250.0);
        assert_eq!(j["runs"][0]["recovery_of"][0], "isolate leader");
    }
}
