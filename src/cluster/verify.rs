//! The `check` command on a live cluster: the workload's counters read linearizably, and the lin-kv history
//! checked, each finding reported as an event (the judging itself is in [`super::check`]).

use std::time::{Duration, Instant};

use squall_node::client::{ClientError, KvClient};
use squall_node::kv::{KvOp, KvResult};

use super::linkv::CHECK_DEADLINE;
use super::{Cluster, check, workload};
use crate::check::diagram::{DiagramLine, describe, draw};
use crate::check::{Verdict as LinVerdict, history, linear};
use crate::state::{Event, Verdict};

impl Cluster {
    /// Checks the workload's counters as Jepsen checks a counter: a linearizable read (ReadIndex through the
    /// leader) of each must show at least the increments acknowledged before the reads began and at most
    /// those sent by the time they ended. Runs while the workload keeps writing; takes at most a few seconds
    /// when the cluster has no leader.
    pub async fn check(&self) -> (Verdict, String) {
        let before = self.inner.workload.tally();
        let mut client = KvClient::new(self.api_addrs());
        client.op_timeout = Duration::from_secs(3);
        let mut reads = Vec::with_capacity(workload::COUNTERS);
        // Once the cluster does not answer, the remaining counters are not tried (each would wait as long).
        let mut gave_up: Option<String> = None;
        for i in 0..workload::COUNTERS {
            let key = workload::counter_key(&self.inner.workload.session, i);
            let read = match &gave_up {
                Some(why) => Err(why.clone()),
                None => read_counter(&mut client, &key).await.unwrap_or_else(|why| {
                    gave_up = Some(why.clone());
                    Err(why)
                }),
            };
            reads.push((key, read));
        }
        let after = self.inner.workload.tally();
        let readings: Vec<check::CounterReading> = reads
            .into_iter()
            .enumerate()
            .map(|(i, (key, read))| check::CounterReading {
                key,
                acked_before: before.acked[i],
                read,
                sent_after: after.attempted[i],
            })
            .collect();
        check::judge(&readings)
    }

    /// Runs the checks that fit what the workload did: the linearizability check of the lin-kv history when
    /// there is one, the counter check when counters were written (or nothing else was). Each finding is an
    /// event of its own; the verdict is the worst of them (violated, then inconclusive, then ok).
    pub(super) async fn check_all(&self) -> (Verdict, String) {
        let lin = lin_check(self).await;
        let counters_written = self.inner.workload.tally().attempted.iter().any(|&n| n > 0);
        let lock = self.lock_check();
        let mut findings = Vec::new();
        if (lin.is_none() && lock.is_none()) || counters_written {
            let (verdict, report) = self.check().await;
            self.emit(Event::Checked {
                verdict,
                report: report.clone(),
            });
            findings.push((verdict, report));
        }
        if let Some((verdict, report, window)) = lin {
            self.emit(Event::LinChecked {
                verdict,
                report: report.clone(),
                window,
            });
            findings.push((verdict, report));
        }
        if let Some((verdict, report)) = lock {
            self.emit(Event::LockChecked {
                verdict,
                report: report.clone(),
            });
            findings.push((verdict, report));
        }
        let verdict = if findings.iter().any(|(v, _)| *v == Verdict::Violated) {
            Verdict::Violated
        } else if findings.iter().any(|(v, _)| *v == Verdict::Inconclusive) {
            Verdict::Inconclusive
        } else {
            Verdict::Ok
        };
        let text = findings
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join("; ");
        (verdict, text)
    }
}

/// One workload counter read linearizably: its count, or why it holds no count; `Err` when the cluster did not
/// answer at all.
async fn read_counter(client: &mut KvClient, key: &str) -> Result<Result<u64, String>, String> {
    match client
        .execute(KvOp::Get {
            key: key.to_string(),
        })
        .await
    {
        Ok(KvResult::Value(None)) => Ok(Ok(0)),
        Ok(KvResult::Value(Some(v))) => Ok(v
            .parse::<u64>()
            .map_err(|_| format!("holds {v:?}, not a count: was it written by hand?"))),
        Ok(other) => Ok(Err(format!("unexpected answer {other:?}"))),
        Err(ClientError::Unavailable { waited, .. }) => Err(format!(
            "no leader answered within {}",
            crate::units::duration(waited)
        )),
        Err(other) => Err(other.to_string()),
    }
}

/// Checks the history so far for linearizability (invocations still open count as `info`), off the async
/// threads, within [`CHECK_DEADLINE`]. `None` when there is no history yet.
async fn lin_check(cluster: &Cluster) -> Option<(Verdict, String, Vec<DiagramLine>)> {
    let events = match cluster.inner.workload.lin.events() {
        Ok(events) if events.is_empty() => return None,
        Ok(events) => events,
        Err(e) => {
            return Some((
                Verdict::Inconclusive,
                format!("linearizability check inconclusive: {e}"),
                vec![],
            ));
        }
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let ops = history::pair(&events).map_err(|e| e.to_string())?;
        let report = linear::check(&ops, Some(started + CHECK_DEADLINE));
        Ok::<_, String>((report, started.elapsed()))
    })
    .await;
    Some(match outcome {
        Ok(Ok((report, took))) => {
            let lines = describe(&report, took);
            let (verdict, head, window) = match &report.verdict {
                LinVerdict::Valid => (Verdict::Ok, "linearizability check passed", vec![]),
                LinVerdict::Unknown(_) => (
                    Verdict::Inconclusive,
                    "linearizability check inconclusive",
                    vec![],
                ),
                LinVerdict::Invalid(f) => (
                    Verdict::Violated,
                    "linearizability check FAILED",
                    draw(f, 40),
                ),
            };
            (verdict, format!("{head}: {}", lines[0]), window)
        }
        Ok(Err(e)) => (
            Verdict::Inconclusive,
            format!("linearizability check inconclusive: the recorded history is malformed ({e})"),
            vec![],
        ),
        Err(e) => (
            Verdict::Inconclusive,
            format!("linearizability check inconclusive: the check did not finish ({e})"),
            vec![],
        ),
    })
}
