//! The built-in client workload: a steady stream of KV operations at a chosen rate, through the bundled
//! client, reported as cumulative counts and as one event per operation. Two kinds: counter increments (this
//! file) and lin-kv reads, writes and cas with a recorded history ([`super::linkv`]).
//!
//! Each write adds 1 to one of [`COUNTERS`] counters (`c0`…), and the workload keeps a tally of the increments
//! it sent and of those acknowledged. That makes it checkable at any moment, as Jepsen checks a counter: a
//! linearizable read of a counter must show at least every increment acknowledged before the read began
//! (fewer means an acknowledged write was lost) and at most every increment sent by the time it ended.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use squall_node::client::KvClient;
use squall_node::kv::{KvOp, KvResult};

use super::Cluster;
use super::linkv;
use crate::state::{Event, WorkloadKind};

/// How many counters the workload spreads its increments over.
pub const COUNTERS: usize = 8;

/// The key of counter `i` in the session tagged `session`: `c3.7f3a`. Each session writes counters of its own,
/// so a cluster directory reused from an earlier session (whose counters survive in the nodes' data) never
/// confuses this session's check, whose tally starts at zero.
pub fn counter_key(session: &str, i: usize) -> String {
    format!("c{i}.{session}")
}

/// Increments per counter: sent (perhaps applied) and acknowledged (certainly applied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Increments sent, whatever became of them.
    pub attempted: [u64; COUNTERS],
    /// Increments the cluster acknowledged.
    pub acked: [u64; COUNTERS],
}

/// Shared on/off switch and rate, and the tally of increments.
pub(super) struct Control {
    /// This session's tag in the counters' keys (see [`counter_key`]).
    pub(super) session: String,
    inner: Mutex<(bool, u32)>,
    changed: tokio::sync::Notify,
    tally: Mutex<Tally>,
    kind: Mutex<WorkloadKind>,
    /// The lin-kv workload's history and shared client state.
    pub(super) lin: linkv::LinKv,
}

impl Control {
    pub(super) fn new(rate: u32) -> Self {
        Self {
            session: format!("{:04x}", rand::random::<u16>()),
            inner: Mutex::new((false, rate.max(1))),
            changed: tokio::sync::Notify::new(),
            tally: Mutex::new(Tally::default()),
            kind: Mutex::new(WorkloadKind::Counter),
            lin: linkv::LinKv::new(),
        }
    }

    /// Which operations the workload runs.
    pub(super) fn kind(&self) -> WorkloadKind {
        *self.kind.lock().unwrap()
    }

    /// Switches the kind of operations (`None`: to the other kind); returns the kind now.
    pub(super) fn set_kind(&self, kind: Option<WorkloadKind>) -> WorkloadKind {
        let mut g = self.kind.lock().unwrap();
        *g = kind.unwrap_or(match *g {
            WorkloadKind::Counter => WorkloadKind::LinKv,
            WorkloadKind::LinKv => WorkloadKind::Counter,
        });
        *g
    }

    /// The tally so far.
    pub(super) fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Sets on/off (`None` toggles); returns whether it is on now.
    pub(super) fn set(&self, on: Option<bool>) -> bool {
        let mut g = self.inner.lock().unwrap();
        g.0 = on.unwrap_or(!g.0);
        self.changed.notify_one();
        g.0
    }

    pub(super) fn rate(&self) -> u32 {
        self.inner.lock().unwrap().1
    }

    pub(super) fn set_rate(&self, r: u32) {
        self.inner.lock().unwrap().1 = r.max(1);
        self.changed.notify_one();
    }

    fn get(&self) -> (bool, u32) {
        *self.inner.lock().unwrap()
    }
}

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
        tokio::spawn(linkv::worker(
            cluster.clone(),
            slot,
            lin_rx.clone(),
            done_tx.clone(),
        ));
    }
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
        };
    }
}

async fn worker(
    cluster: Cluster,
    tokens: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>,
    done: tokio::sync::mpsc::UnboundedSender<bool>,
) {
    let mut client: Option<KvClient> = None;
    let mut client_addrs = Default::default();
    loop {
        let Some(n) = tokens.lock().await.recv().await else {
            return;
        };
        let addrs = cluster.api_addrs();
        if client.is_none() || addrs != client_addrs {
            // A fresh client id each time: sequence numbers restart with the client.
            let mut c = KvClient::new(addrs.clone());
            c.op_timeout = Duration::from_secs(2);
            c.call_timeout = Duration::from_millis(500);
            client = Some(c);
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
        let result = c.execute(KvOp::Incr { key, by: 1 }).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let acked = matches!(result, Ok(KvResult::Counter(_)));
        if acked {
            control.tally.lock().unwrap().acked[counter] += 1;
        }
        let _ = done.send(acked);
        // Every operation goes into the session (and so into the event log), not a sample of them.
        cluster.emit(Event::ClientOp {
            op,
            result: match result {
                Ok(KvResult::Counter(_)) => "ok".to_string(),
                Ok(other) => format!("refused: {other:?}"),
                Err(e) => e.to_string(),
            },
            latency_us,
        });
    }
}
