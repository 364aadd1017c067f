//! The built-in workload's clients: the pacer that hands out one token per operation at the chosen rate, the
//! counter clients ([`super::workload`]) and the lin-kv clients ([`super::linkv`]), each reporting what it
//! did as events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kind::drivers::{KvAnswer, KvClient, KvOutcome, KvRequest};
use tokio::sync::mpsc;

use super::Cluster;
use super::linkv;
use super::workload::{COUNTERS, counter_key};
use crate::check::{OpType, OpValue};
use crate::state::{Event, WorkloadKind};

/// Clients working at once: enough for the highest rate step at a few milliseconds per write.
const WORKERS: usize = 16;

/// Paces writes at the chosen rate and hands each to one of [`WORKERS`] clients, so a slow write delays
/// only itself. A tick that finds every client busy is skipped rather than queued (no burst afterwards).
pub(super) async fn run(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let (token_tx, token_rx) = tokio::sync::mpsc::channel::<u64>(WORKERS);
    let token_rx = std::sync::Arc::new(tokio::sync::Mutex::new(token_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
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
    let lock_tx = super::lock_client::spawn(&cluster, done_tx.clone());
    drop(done_tx);
    let (mut ok, mut failed, mut n) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    let mut reported = (false, 0u32, 0u64, 0u64);
    let mut next = Instant::now();
    loop {
        while let Ok(success) = done_rx.try_recv() {
            if success {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        let (on, rate) = cluster.inner.workload.get();
        if last_report.elapsed() >= Duration::from_millis(500) && reported != (on, rate, ok, failed)
        {
            reported = (on, rate, ok, failed);
            cluster.emit(Event::Workload {
                on,
                rate,
                ok,
                failed,
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
        };
    }
}

async fn worker(
    cluster: Cluster,
    tokens: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>,
    done: tokio::sync::mpsc::UnboundedSender<bool>,
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
        let _ = done.send(acked);
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
pub(super) async fn lin_worker(
    cluster: Cluster,
    slot: usize,
    tokens: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    done: mpsc::UnboundedSender<bool>,
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
        lin.record(
            || cluster.inner.started.elapsed().as_nanos() as u64,
            |e| cluster.emit(e),
            OpType::Invoke,
            process,
            key,
            value,
        );
        let started = Instant::now();
        let result = client.execute(op).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let (kind, value, why) = match (value, result) {
            (OpValue::Read(_), KvOutcome::Done(KvAnswer::Value(v))) => {
                match v.map(|s| s.parse::<i64>()) {
                    None => (OpType::Ok, OpValue::Read(None), None),
                    Some(Ok(n)) => (OpType::Ok, OpValue::Read(Some(n)), None),
                    Some(Err(_)) => (
                        OpType::Info,
                        value,
                        Some("holds a value that is not an integer: written by hand?".to_string()),
                    ),
                }
            }
            (OpValue::Write(_), KvOutcome::Done(KvAnswer::Written)) => (OpType::Ok, value, None),
            (OpValue::Cas(..), KvOutcome::Done(KvAnswer::Swapped(true))) => {
                (OpType::Ok, value, None)
            }
            (OpValue::Cas(..), KvOutcome::Done(KvAnswer::Swapped(false))) => {
                (OpType::Fail, value, Some("precondition failed".to_string()))
            }
            (_, KvOutcome::Fail(e)) => (OpType::Fail, value, Some(e)),
            // An answer of the wrong shape says nothing about whether the operation happened.
            (_, KvOutcome::Done(other)) => {
                (OpType::Info, value, Some(format!("unexpected {other:?}")))
            }
            (_, KvOutcome::Info(e)) => (OpType::Info, value, Some(e)),
        };
        lin.record(
            || cluster.inner.started.elapsed().as_nanos() as u64,
            |e| cluster.emit(e),
            kind,
            process,
            key,
            value,
        );
        let _ = done.send(kind == OpType::Ok);
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

fn describe_op(key: i64, value: OpValue) -> String {
    match value {
        OpValue::Read(Some(v)) => format!("read {key} → {v}"),
        OpValue::Read(None) => format!("read {key}"),
        OpValue::Write(v) => format!("write {key} {v}"),
        OpValue::Cas(a, b) => format!("cas {key} {a}→{b}"),
    }
}
