//! The built-in client workload: a steady stream of KV operations at a chosen rate, through the bundled
//! client, reported as cumulative counts and as one event per operation. Two kinds: counter increments (this
//! file) and lin-kv reads, writes and cas with a recorded history ([`super::linkv`]).
//!
//! Each write adds 1 to one of [`COUNTERS`] counters (`c0`…), and the workload keeps a tally of the increments
//! it sent and of those acknowledged. That makes it checkable at any moment, as Jepsen checks a counter: a
//! linearizable read of a counter must show at least every increment acknowledged before the read began
//! (fewer means an acknowledged write was lost) and at most every increment sent by the time it ended.
//!
//! This file holds the workload's shared state; the pacer and the clients that act on it are in
//! [`super::clients`].

use std::sync::Mutex;

use super::linkv;
use crate::state::WorkloadKind;

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
    /// Notified when the switch or the rate changes, so an idle pacer wakes at once.
    pub(super) changed: tokio::sync::Notify,
    /// Increments sent and acknowledged, per counter.
    pub(super) tally: Mutex<Tally>,
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

    /// Whether the workload runs.
    pub(super) fn is_on(&self) -> bool {
        self.inner.lock().unwrap().0
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

    /// Whether it runs, and at what rate.
    pub(super) fn get(&self) -> (bool, u32) {
        *self.inner.lock().unwrap()
    }
}
