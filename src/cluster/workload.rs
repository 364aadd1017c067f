//! The built-in client workload: a steady stream of KV writes at a chosen rate, through the bundled client,
//! reported as cumulative counts and sampled operations.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use squall_node::client::KvClient;
use squall_node::kv::KvOp;

use super::Cluster;
use crate::state::Event;

/// Rate steps for `+` and `-`, in writes per second.
const RATE_STEPS: [u32; 9] = [1, 5, 10, 20, 50, 100, 200, 500, 1000];

/// Shared on/off switch and rate.
pub(super) struct Control {
    inner: Mutex<(bool, u32)>,
    changed: tokio::sync::Notify,
}

impl Control {
    pub(super) fn new(rate: u32) -> Self {
        Self {
            inner: Mutex::new((false, rate.max(1))),
            changed: tokio::sync::Notify::new(),
        }
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

    /// Moves the rate one step up or down; returns the new rate.
    pub(super) fn step(&self, up: bool) -> u32 {
        let mut g = self.inner.lock().unwrap();
        let cur = g.1;
        g.1 = if up {
            RATE_STEPS.iter().copied().find(|&r| r > cur).unwrap_or(cur)
        } else {
            RATE_STEPS
                .iter()
                .rev()
                .copied()
                .find(|&r| r < cur)
                .unwrap_or(cur)
        };
        self.changed.notify_one();
        g.1
    }

    fn get(&self) -> (bool, u32) {
        *self.inner.lock().unwrap()
    }
}

pub(super) async fn run(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let mut client: Option<KvClient> = None;
    let mut client_addrs = Default::default();
    let (mut ok, mut failed, mut n) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    let mut last_sample = Instant::now();
    let mut reported = (false, 0u32, 0u64, 0u64);
    let mut next = Instant::now();
    loop {
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
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        next += period;
        let now = Instant::now();
        if next > now {
            tokio::select! {
                _ = tokio::time::sleep(next - now) => {}
                _ = stop.changed() => return,
            }
        } else if now - next > Duration::from_secs(1) {
            next = now; // fell far behind (a slow cluster): don't try to catch up in a burst
        }
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
        n += 1;
        let key = format!("k{}", n % 64);
        let value = format!("v{n}");
        let op_text = format!("put {key}={value}");
        let started = Instant::now();
        let result = c.execute(KvOp::Put { key, value }).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let outcome = match &result {
            Ok(_) => {
                ok += 1;
                "ok".to_string()
            }
            Err(e) => {
                failed += 1;
                e.to_string()
            }
        };
        if result.is_err() || last_sample.elapsed() >= Duration::from_millis(250) {
            last_sample = Instant::now();
            cluster.emit(Event::ClientOp {
                op: op_text,
                result: outcome,
                latency_us,
            });
        }
    }
}
