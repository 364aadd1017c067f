//! The built-in workload's clients: the pacer that hands out one token per operation at the chosen rate, the
//! counter clients ([`super::workload`]) and the lin-kv clients ([`super::linkv`]), each reporting what it
//! did as events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kind::drivers::{KvAnswer, KvClient, KvOutcome, KvRequest};
use tokio::sync::mpsc;

use super::Cluster;
use super::linkv;
use super::workload::{COUNTERS, Done, counter_key};
use crate::check::{OpType, OpValue};
use crate::state::{Event, WorkloadKind};

/// Clients working at once: enough for the highest rate step at a few milliseconds per write.
const WORKERS: usize = 16;
/// Concurrent clients of Maelstrom's other workloads (as many as lin-kv's).
pub(super) const MAELSTROM_CLIENTS: usize = linkv::CLIENTS;

/// Paces writes at the chosen rate and hands each to one of [`WORKERS`] clients, so a slow write delays
/// only itself. A tick that finds every client busy is skipped rather than queued (no burst afterwards).
pub(super) async fn run(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let (token_tx, token_rx) = tokio::sync::mpsc::channel::<u64>(WORKERS);
    let token_rx = std::sync::Arc::new(tokio::sync::Mutex::new(token_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    for _ in 0..WORKERS {
        tokio::spawn(worker(cluster.clone(), token_rx.clone(), done_tx.clone()));
    }
    let (lin_tx, lin_rx) = tokio::sync::mpsc::channel::<u64>(linkv::CLIENTS);
    let lin_rx = std::sync::Arc::new(tokio::sync::Mutex::new(lin_rx));
    for slot in 0..linkv::CLIENTS {
        tokio::spawn(lin_worker(
            cluster.clone(),
            slot,
            lin_rx.clone(),
            done_tx.clone(),
        ));
    }
    let (mael_tx, mael_rx) = tokio::sync::mpsc::channel::<u64>(MAELSTROM_CLIENTS);
    let mael_rx = std::sync::Arc::new(tokio::sync::Mutex::new(mael_rx));
    for _ in 0..MAELSTROM_CLIENTS {
        tokio::spawn(mael_worker(
            cluster.clone(),
            mael_rx.clone(),
            done_tx.clone(),
        ));
    }
    let lock_tx = super::lock_client::spawn(&cluster, done_tx.clone());
    drop(done_tx);
    let (mut counts, mut n) = (Counts::default(), 0u64);
    let mut last_report = Instant::now();
    let mut reported = (false, 0u32, Counts::default());
    let mut next = Instant::now();
    loop {
        while let Ok(done) = done_rx.try_recv() {
            counts.add(done);
        }
        let (on, rate) = cluster.inner.workload.get();
        if last_report.elapsed() >= Duration::from_millis(500) && reported != (on, rate, counts) {
            reported = (on, rate, counts);
            cluster.emit(Event::Workload {
                on,
                rate,
                ok: counts.ok,
                failed: counts.failed,
                cas_failed: counts.cas_failed,
            });
            last_report = Instant::now();
        }
        if !on {
            tokio::select! {
                _ = cluster.inner.workload.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
            next = Instant::now();
            continue;
        }
        next += Duration::from_secs_f64(1.0 / f64::from(rate));
        let now = Instant::now();
        if next > now {
            tokio::select! {
                _ = tokio::time::sleep(next - now) => {}
                _ = stop.changed() => return,
            }
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell far behind (a slow cluster): don't try to catch up in a burst
        }
        n += 1;
        let _ = match cluster.inner.workload.kind() {
            WorkloadKind::Counter => token_tx.try_send(n),
            WorkloadKind::LinKv => lin_tx.try_send(n),
            WorkloadKind::Lock | WorkloadKind::LockFenced => lock_tx.try_send(n),
            _ => mael_tx.try_send(n),
        };
    }
}

/// How a lin-kv completion counts in the header.
fn counted(c: &LinCompletion) -> Done {
    match c.kind {
        OpType::Ok => Done::Ok,
        _ if c.precondition_failed => Done::CasFailed,
        _ => Done::Failed,
    }
}

/// The workload's running counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    ok: u64,
    failed: u64,
    cas_failed: u64,
}

impl Counts {
    fn add(&mut self, done: Done) {
        match done {
            Done::Ok => self.ok += 1,
            Done::Failed => self.failed += 1,
            Done::CasFailed => self.cas_failed += 1,
        }
    }
}

async fn worker(
    cluster: Cluster,
    tokens: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>,
    done: tokio::sync::mpsc::UnboundedSender<Done>,
) {
    let mut client: Option<Box<dyn KvClient>> = None;
    let mut client_addrs = Default::default();
    loop {
        let Some(n) = tokens.lock().await.recv().await else {
            return;
        };
        let addrs = cluster.api_addrs();
        if client.is_none() || addrs != client_addrs {
            // A fresh client each time: squall's sequence numbers restart with the client.
            client = Some(cluster.inner.spec.kind.kv_client(addrs.clone()));
            client_addrs = addrs;
        }
        let c = client.as_mut().expect("client");
        let counter = (n % COUNTERS as u64) as usize;
        let key = counter_key(&cluster.inner.workload.session, counter);
        let op = format!("incr {key} +1");
        let control = &cluster.inner.workload;
        // Counted as sent before it is sent, as acknowledged only once it is: a check can rely on both.
        control.tally.lock().unwrap().attempted[counter] += 1;
        let started = Instant::now();
        let result = c.execute(KvRequest::Incr { key, by: 1 }).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let acked = matches!(result, KvOutcome::Done(KvAnswer::Counter(_)));
        if acked {
            control.tally.lock().unwrap().acked[counter] += 1;
        }
        let _ = done.send(if acked { Done::Ok } else { Done::Failed });
        // Every operation goes into the session (and so into the event log), not a sample of them.
        cluster.emit(Event::ClientOp {
            op,
            result: match result {
                KvOutcome::Done(KvAnswer::Counter(_)) => "ok".to_string(),
                KvOutcome::Done(other) => format!("refused: {other:?}"),
                KvOutcome::Fail(e) => format!("refused: {e}"),
                KvOutcome::Info(e) => e,
            },
            latency_us,
        });
    }
}

fn new_client(cluster: &Cluster) -> Box<dyn KvClient> {
    cluster.inner.spec.kind.kv_client(cluster.api_addrs())
}

/// One client: takes a token per operation, runs it, records invocation and completion.
async fn lin_worker(
    cluster: Cluster,
    slot: usize,
    tokens: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    done: mpsc::UnboundedSender<Done>,
) {
    let lin = &cluster.inner.workload.lin;
    let mut process = slot as u64;
    let mut client = new_client(&cluster);
    let mut addrs = cluster.api_addrs();
    loop {
        if tokens.lock().await.recv().await.is_none() {
            return;
        }
        if cluster.api_addrs() != addrs {
            // A node restarted on new ports: the old client cannot reach it. Nothing is in flight now.
            addrs = cluster.api_addrs();
            client = new_client(&cluster);
        }
        let (key, value) = lin.next_op();
        let started = Instant::now();
        let completed = lin_op(&cluster, client.as_mut(), process, key, value, None).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let _ = done.send(counted(&completed));
        let LinCompletion {
            kind, value, why, ..
        } = completed;
        cluster.emit(Event::ClientOp {
            op: describe_op(key, value),
            result: match (kind, why) {
                (OpType::Ok, _) => "ok".to_string(),
                (k, Some(why)) => format!("{}: {why}", k.as_str()),
                (k, None) => k.as_str().to_string(),
            },
            latency_us,
        });
        if kind == OpType::Info {
            // Its outcome is unknown: as in Jepsen, the client continues as a new process.
            process = lin.new_process();
            client = new_client(&cluster);
        }
    }
}

/// How one lin-kv operation completed, as recorded in the history.
pub(super) struct LinCompletion {
    /// `ok`, `fail` (definitely did not happen) or `info` (outcome unknown).
    pub kind: OpType,
    /// The operation with what it returned (a read's value).
    pub value: OpValue,
    /// Why it did not complete `ok`, in words.
    pub why: Option<String>,
    /// A cas that failed because the value it expected was not there: a definite `fail`, not an error of
    /// the system.
    pub precondition_failed: bool,
}

/// Runs one lin-kv operation on `key` as `process` and records it in the history: its invocation, then its
/// completion. The only place a kind's answer becomes a history event: the clients' operations and the
/// check's final reads ([`super::verify`]) both go through it, so the check judges reads exactly as the
/// workload records them. `limit` bounds the wait (`info` when it runs out); the clients rely on their
/// client's own timeouts.
pub(super) async fn lin_op(
    cluster: &Cluster,
    client: &mut dyn KvClient,
    process: u64,
    key: i64,
    value: OpValue,
    limit: Option<Duration>,
) -> LinCompletion {
    let lin = &cluster.inner.workload.lin;
    let store_key = lin.store_key(key);
    let op = match value {
        OpValue::Read(_) => KvRequest::Read { key: store_key },
        OpValue::Write(v) => KvRequest::Write {
            key: store_key,
            value: v.to_string(),
        },
        OpValue::Cas(from, to) => KvRequest::Cas {
            key: store_key,
            from: from.to_string(),
            to: to.to_string(),
        },
    };
    let now = || cluster.inner.started.elapsed().as_nanos() as u64;
    lin.record(
        now,
        |e| cluster.emit(e),
        OpType::Invoke,
        process,
        key,
        value,
    );
    let result = match limit {
        None => client.execute(op).await,
        Some(d) => tokio::time::timeout(d, client.execute(op))
            .await
            .unwrap_or_else(|_| {
                KvOutcome::Info(format!("no answer within {}", crate::units::duration(d)))
            }),
    };
    let done = completion(value, result);
    lin.record(
        now,
        |e| cluster.emit(e),
        done.kind,
        process,
        key,
        done.value,
    );
    done
}

/// What an answer of the kind's client means for the history (Jepsen's and Maelstrom's reading): `ok` with
/// the value a read returned, `fail` only when the operation definitely did not happen (a cas whose
/// precondition did not hold, an error the state machine returned), `info` when its outcome is unknown.
fn completion(value: OpValue, result: KvOutcome) -> LinCompletion {
    let done = |kind, value, why: Option<String>| LinCompletion {
        kind,
        value,
        why,
        precondition_failed: false,
    };
    match (value, result) {
        (OpValue::Read(_), KvOutcome::Done(KvAnswer::Value(v))) => {
            match v.map(|s| s.parse::<i64>()) {
                None => done(OpType::Ok, OpValue::Read(None), None),
                Some(Ok(n)) => done(OpType::Ok, OpValue::Read(Some(n)), None),
                Some(Err(_)) => done(
                    OpType::Info,
                    value,
                    Some("holds a value that is not an integer: written by hand?".to_string()),
                ),
            }
        }
        (OpValue::Write(_), KvOutcome::Done(KvAnswer::Written)) => done(OpType::Ok, value, None),
        (OpValue::Cas(..), KvOutcome::Done(KvAnswer::Swapped(true))) => {
            done(OpType::Ok, value, None)
        }
        (OpValue::Cas(..), KvOutcome::Done(KvAnswer::Swapped(false))) => LinCompletion {
            precondition_failed: true,
            ..done(OpType::Fail, value, Some("precondition failed".to_string()))
        },
        (_, KvOutcome::Fail(e)) => done(OpType::Fail, value, Some(e)),
        // An answer of the wrong shape says nothing about whether the operation happened.
        (_, KvOutcome::Done(other)) => {
            done(OpType::Info, value, Some(format!("unexpected {other:?}")))
        }
        (_, KvOutcome::Info(e)) => done(OpType::Info, value, Some(e)),
    }
}

/// One client of Maelstrom's other workloads ([`crate::kind::maelstrom::workload`]): takes a token per
/// operation, first delivers what the workload must send before its requests (broadcast's topology) to any
/// node that has not had it at its current address, then sends the drawn request and records how it ended.
pub(super) async fn mael_worker(
    cluster: Cluster,
    tokens: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    done: mpsc::UnboundedSender<Done>,
) {
    use crate::kind::maelstrom::client::{MaelstromCaller, REPLY_TIMEOUT, workload_outcome};
    use crate::kind::maelstrom::workload::{Op, Outcome};
    let w = &cluster.inner.workload.mael;
    let mut addrs = cluster.api_addrs();
    let mut caller = MaelstromCaller::new(addrs.clone());
    loop {
        if tokens.lock().await.recv().await.is_none() {
            return;
        }
        if cluster.api_addrs() != addrs {
            // A node restarted on new ports: the old connections cannot reach it.
            addrs = cluster.api_addrs();
            caller = MaelstromCaller::new(addrs.clone());
        }
        let named: std::collections::BTreeMap<u64, String> =
            addrs.iter().map(|(n, a)| (*n, a.to_string())).collect();
        for setup in w.setup_due(&named) {
            let body = setup.body.clone();
            if let Ok(reply) = caller.call(setup.node, body, REPLY_TIMEOUT).await
                && reply["type"] != "error"
            {
                w.setup_done(setup.node, named[&setup.node].clone());
            }
        }
        let nodes: Vec<u64> = addrs.keys().copied().collect();
        let Some(req) = w.next(&nodes) else {
            continue;
        };
        let invoked_ns = cluster.inner.started.elapsed().as_nanos() as u64;
        let started = Instant::now();
        let reply = caller.call(req.node, req.body.clone(), REPLY_TIMEOUT).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let outcome = workload_outcome(reply);
        let result = match &outcome {
            Outcome::Ok(_) => "ok".to_string(),
            Outcome::Fail(e) => format!("fail: {e}"),
            Outcome::Info(e) => format!("info: {e}"),
        };
        let succeeded = matches!(outcome, Outcome::Ok(_));
        let op = format!(
            "{} to n{}",
            req.body["type"].as_str().unwrap_or("?"),
            req.node
        );
        let unsure = matches!(outcome, Outcome::Info(_));
        w.record(Op {
            req,
            invoked_ns,
            completed_ns: cluster.inner.started.elapsed().as_nanos() as u64,
            outcome,
        });
        let _ = done.send(if succeeded { Done::Ok } else { Done::Failed });
        cluster.emit(Event::ClientOp {
            op,
            result,
            latency_us,
        });
        if unsure {
            // A late reply to this request must not be taken for the next one's: start a new client.
            caller = MaelstromCaller::new(addrs.clone());
        }
    }
}

fn describe_op(key: i64, value: OpValue) -> String {
    match value {
        OpValue::Read(Some(v)) => format!("read {key} → {v}"),
        OpValue::Read(None) => format!("read {key}"),
        OpValue::Write(v) => format!("write {key} {v}"),
        OpValue::Cas(a, b) => format!("cas {key} {a}→{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cas_whose_expected_value_was_not_there_is_counted_apart_from_failures() {
        let mut counts = Counts::default();
        let cases = [
            (OpValue::Cas(1, 2), KvOutcome::Done(KvAnswer::Swapped(true))),
            (
                OpValue::Cas(1, 3),
                KvOutcome::Done(KvAnswer::Swapped(false)),
            ),
            // The state machine refused it, and a timeout: errors of the system, or outcomes unknown.
            (OpValue::Cas(3, 4), KvOutcome::Fail("wrong type".into())),
            (OpValue::Write(5), KvOutcome::Info("timed out".into())),
        ];
        for (value, outcome) in cases {
            counts.add(counted(&completion(value, outcome)));
        }
        assert_eq!(
            counts,
            Counts {
                ok: 1,
                failed: 2,
                cas_failed: 1
            }
        );
        let unmet = completion(
            OpValue::Cas(1, 3),
            KvOutcome::Done(KvAnswer::Swapped(false)),
        );
        assert_eq!(
            unmet.kind,
            OpType::Fail,
            "still a definite fail in the history"
        );
    }
}
