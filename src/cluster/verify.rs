//! The `check` command on a live cluster: the workload's counters read linearizably, and the lin-kv history
//! checked, each finding reported as an event (the judging itself is in [`super::check`]).

use std::time::{Duration, Instant};

use crate::kind::drivers::{KvAnswer, KvClient, KvOutcome, KvRequest};

use super::linkv::{self, CHECK_DEADLINE};
use super::{Cluster, check, clients, workload};
use crate::check::diagram::{DiagramLine, describe, draw};
use crate::check::{OpType, OpValue};
use crate::check::{Verdict as LinVerdict, history, linear};
use crate::state::{Event, Verdict};

impl Cluster {
    /// Checks the workload's counters as Jepsen checks a counter: a linearizable read (ReadIndex through the
    /// leader) of each must show at least the increments acknowledged before the reads began and at most
    /// those sent by the time they ended. Runs while the workload keeps writing; takes at most a few seconds
    /// when the cluster has no leader.
    pub async fn check(&self) -> (Verdict, String) {
        let before = self.inner.workload.tally();
        // Through the kind's client, as the workload wrote them (squall's API would not reach etcd's nodes).
        let mut client = self.inner.spec.kind.kv_client(self.api_addrs());
        let mut reads = Vec::with_capacity(workload::COUNTERS);
        // Once the cluster does not answer, the remaining counters are not tried (each would wait as long).
        let mut gave_up: Option<String> = None;
        for i in 0..workload::COUNTERS {
            let key = workload::counter_key(&self.inner.workload.session, i);
            let read = match &gave_up {
                Some(why) => Err(why.clone()),
                None => read_counter(client.as_mut(), &key)
                    .await
                    .unwrap_or_else(|why| {
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
        let mael = self.maelstrom_check().await;
        let counters_written = self.inner.workload.tally().attempted.iter().any(|&n| n > 0);
        let lock = self.lock_check();
        let mut findings = Vec::new();
        // A kind without squall's counter (a Maelstrom node) has no counters to read.
        let counter_kind = self
            .inner
            .spec
            .kind
            .workload_refusal(crate::state::WorkloadKind::Counter)
            .is_none();
        if let Some((verdict, report)) = mael {
            self.emit(Event::Checked {
                verdict,
                report: report.clone(),
            });
            findings.push((verdict, report));
        }
        if counters_written
            || (lin.is_none() && lock.is_none() && findings.is_empty() && counter_kind)
        {
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
        if findings.is_empty() {
            let report =
                "check: nothing to judge: the workload has completed no operation this session \
                          (start it with `workload on`, then check again)"
                    .to_string();
            self.emit(Event::Checked {
                verdict: Verdict::Inconclusive,
                report: report.clone(),
            });
            return (Verdict::Inconclusive, report);
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

impl Cluster {
    /// Judges the history of Maelstrom's other workloads ([`crate::kind::maelstrom::workload`]), `None` when
    /// none ran. Broadcast and g-counter are judged with every node's final read, read again every
    /// [`FINAL_READ_EVERY`] while a value acknowledged before the first of them began may still be on its way,
    /// until [`FINAL_READ_DEADLINE`].
    async fn maelstrom_check(&self) -> Option<(Verdict, String)> {
        use crate::kind::maelstrom::client::{CallError, MaelstromCaller};
        let w = &self.inner.workload.mael;
        w.kind()?;
        if w.completed() == 0 {
            return None;
        }
        let deadline = Instant::now() + FINAL_READ_DEADLINE;
        // What must show in the final reads is fixed when the first of them begins: the workload may still
        // run, and with the obligation moved to each new round of reads, a value acknowledged just before that
        // round would always be on its way on a loaded machine, and the check would never settle.
        let reads_began_ns = self.inner.started.elapsed().as_nanos() as u64;
        loop {
            let mut finals = std::collections::BTreeMap::new();
            if let Some(read) = w.final_read() {
                let addrs = self.api_addrs();
                let mut caller = MaelstromCaller::new(addrs.clone());
                for &node in addrs.keys() {
                    let reply = caller
                        .call(node, read.clone(), FINAL_READ_TIMEOUT)
                        .await
                        .map_err(|e| match e {
                            CallError::NotSent(e) | CallError::NoReply(e) => e,
                        })
                        .and_then(|r| {
                            if r["type"] == "error" {
                                Err(format!("it answered {r}"))
                            } else {
                                Ok(r)
                            }
                        });
                    finals.insert(node, reply);
                }
            }
            let now_ns = self.inner.started.elapsed().as_nanos() as u64;
            let j = w.judge(&finals, reads_began_ns, self.node_messages(), now_ns);
            if j.settled || Instant::now() >= deadline {
                return Some((j.verdict, j.report));
            }
            tokio::time::sleep(FINAL_READ_EVERY).await;
        }
    }
}

/// How long the check of a Maelstrom workload waits for values on their way to reach every node.
const FINAL_READ_DEADLINE: Duration = Duration::from_secs(10);
/// How often it reads them again meanwhile.
const FINAL_READ_EVERY: Duration = Duration::from_millis(250);
/// How long one final read may take.
const FINAL_READ_TIMEOUT: Duration = Duration::from_millis(1000);

/// How long one counter's read may take before the check gives up on the cluster.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// One workload counter read linearizably through the kind's client: its count, or why it holds no count;
/// `Err` when the cluster did not answer at all.
async fn read_counter(client: &mut dyn KvClient, key: &str) -> Result<Result<u64, String>, String> {
    let read = client.execute(KvRequest::Read {
        key: key.to_string(),
    });
    match tokio::time::timeout(READ_LIMIT, read).await {
        Err(_) => Err(format!(
            "no node answered within {}",
            crate::units::duration(READ_LIMIT)
        )),
        Ok(KvOutcome::Done(KvAnswer::Value(None))) => Ok(Ok(0)),
        Ok(KvOutcome::Done(KvAnswer::Value(Some(v)))) => Ok(v
            .parse::<u64>()
            .map_err(|_| format!("holds {v:?}, not a count: was it written by hand?"))),
        Ok(KvOutcome::Done(other)) => Ok(Err(format!("unexpected answer {other:?}"))),
        // A read that did not complete changed nothing; the cluster did not answer it.
        Ok(KvOutcome::Fail(why) | KvOutcome::Info(why)) => Err(why),
    }
}

/// How long the lin-kv check may spend on each key's final read, retries included.
const FINAL_READ_BUDGET: Duration = Duration::from_secs(5);

/// Reads every lin-kv key once more, the keys at once, each recorded in the history like any other read
/// ([`clients::lin_op`]). A read that is not served (a node restarting, a cut link, a timeout) is tried again
/// as a new process with the same client, which moves on to another node, until one is served or
/// [`FINAL_READ_BUDGET`] is spent; an unserved read is `info` or `fail` and constrains nothing. Returns the
/// keys the cluster did not serve, with the last reason.
async fn final_reads(cluster: &Cluster) -> Vec<(i64, String)> {
    let lin = &cluster.inner.workload.lin;
    let reads = (0..linkv::KEYS as i64).map(|key| async move {
        let deadline = tokio::time::Instant::now() + FINAL_READ_BUDGET;
        let mut client = cluster.inner.spec.kind.kv_client(cluster.api_addrs());
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let done = clients::lin_op(
                cluster,
                client.as_mut(),
                lin.new_process(),
                key,
                OpValue::Read(None),
                Some(left),
            )
            .await;
            if done.kind == OpType::Ok {
                return None;
            }
            let why = done.why.unwrap_or_else(|| done.kind.as_str().to_string());
            if tokio::time::Instant::now() >= deadline {
                return Some((key, why));
            }
            // Not at once again: a refused connection answers in microseconds.
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
        }
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Checks the history so far for linearizability (invocations still open count as `info`), off the async
/// threads, within [`CHECK_DEADLINE`]. The history ends with a final read of every key: without a read after
/// them, writes every node lost would go unseen and the check pass (F12); a key the cluster cannot serve
/// makes a linearizable history inconclusive, not passed. `None` when there is no history yet (no final
/// reads are made then).
async fn lin_check(cluster: &Cluster) -> Option<(Verdict, String, Vec<DiagramLine>)> {
    match cluster.inner.workload.lin.events() {
        Ok(events) if events.is_empty() => return None,
        _ => {}
    }
    let unserved = final_reads(cluster).await;
    let events = match cluster.inner.workload.lin.events() {
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
                LinVerdict::Valid if !unserved.is_empty() => {
                    let keys: Vec<String> = unserved
                        .iter()
                        .map(|(key, why)| format!("key {key} ({why})"))
                        .collect();
                    let head = format!(
                        "linearizability check inconclusive: the cluster did not serve the final read of {}, \
                         so writes it lost would not show; what was read is linearizable",
                        keys.join(", ")
                    );
                    return Some((
                        Verdict::Inconclusive,
                        format!("{head}: {}", lines[0]),
                        vec![],
                    ));
                }
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
