//! One directed link: its installed faults, the compiled plan every open connection follows, and its counters.
//!
//! Connections read the plan through a `watch` channel, so a fault set or removed reaches connections that are
//! already open, not only new ones, and a connection with nothing to do costs nothing to notify.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Distribution, Fault, FaultKind, FaultSpec, LinkId, LinkStats};

/// Latency parameters as the pipe uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyPlan {
    pub base: Duration,
    pub jitter: Duration,
    pub dist: Distribution,
}

/// Reorder parameters as the pipe uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReorderPlan {
    pub max_extra: Duration,
    pub p: f64,
}

/// The link's fault set, compiled for the per-frame path.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    pub latency: Option<LatencyPlan>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    pub reorder: Option<ReorderPlan>,
    pub bandwidth: Option<u64>,
    pub blackhole: bool,
    pub reset: bool,
}

impl Plan {
    /// Compiles a fault list (at most one per kind). Probabilities are clamped to [0, 1].
    pub(crate) fn from_faults<'a>(faults: impl IntoIterator<Item = &'a Fault>) -> Plan {
        let mut plan = Plan::default();
        for f in faults {
            match *f {
                Fault::Latency { base, jitter, dist } => {
                    plan.latency = Some(LatencyPlan { base, jitter, dist })
                }
                Fault::Loss { p } => plan.loss = Some(p.clamp(0.0, 1.0)),
                Fault::Duplicate { p } => plan.duplicate = Some(p.clamp(0.0, 1.0)),
                Fault::Reorder { max_extra, p } => {
                    plan.reorder = Some(ReorderPlan {
                        max_extra,
                        p: p.clamp(0.0, 1.0),
                    })
                }
                Fault::Bandwidth { bytes_per_sec } => plan.bandwidth = Some(bytes_per_sec.max(1)),
                Fault::Blackhole => plan.blackhole = true,
                Fault::Reset => plan.reset = true,
            }
        }
        plan
    }

    /// No fault at all: bytes may stream straight through.
    pub(crate) fn is_clear(&self) -> bool {
        *self == Plan::default()
    }

    /// Whether any fault holds frames back in time, so queued frames must keep waiting.
    pub(crate) fn delays(&self) -> bool {
        self.latency.is_some() || self.reorder.is_some() || self.bandwidth.is_some()
    }
}

/// A fault as installed on a link; `id` tells a self-removing timer whether its fault was since replaced.
#[derive(Debug, Clone)]
struct Installed {
    spec: FaultSpec,
    id: u64,
}

/// Per-link counters, updated from the pipes without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub frames_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub bytes_dropped: AtomicU64,
    pub frames_duplicated: AtomicU64,
    pub frames_delayed: AtomicU64,
    pub frames_queued: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_reset: AtomicU64,
    pub upstream_failures: AtomicU64,
    /// Of `bytes_forwarded`, those spliced rather than copied (not shown in [`LinkStats`]: tests and tuning only).
    pub bytes_spliced: AtomicU64,
}

impl Counters {
    pub(crate) fn forwarded(&self, frames: u64, bytes: usize) {
        if frames > 0 {
            self.frames_forwarded.fetch_add(frames, Relaxed);
        }
        self.bytes_forwarded.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn dropped(&self, bytes: usize) {
        self.frames_dropped.fetch_add(1, Relaxed);
        self.bytes_dropped.fetch_add(bytes as u64, Relaxed);
    }
}

/// The shared state of one directed link.
#[derive(Debug)]
pub(crate) struct Link {
    pub id: LinkId,
    faults: Mutex<Vec<Installed>>,
    plan: watch::Sender<Arc<Plan>>,
    pub counters: Counters,
    pub listen: Mutex<Option<SocketAddr>>,
}

impl Link {
    pub(crate) fn new(id: LinkId) -> Link {
        Link {
            id,
            faults: Mutex::new(Vec::new()),
            plan: watch::Sender::new(Arc::new(Plan::default())),
            counters: Counters::default(),
            listen: Mutex::new(None),
        }
    }

    /// A receiver that sees every later plan change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Plan>> {
        self.plan.subscribe()
    }

    /// The plan in force now.
    pub(crate) fn plan(&self) -> Arc<Plan> {
        self.plan.borrow().clone()
    }

    /// Installs `spec`, replacing a fault of the same kind.
    pub(crate) fn set(&self, spec: FaultSpec, id: u64) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let kind = spec.fault.kind();
        faults.retain(|f| f.spec.fault.kind() != kind);
        faults.push(Installed { spec, id });
        faults.sort_by_key(|f| f.spec.fault.kind());
        self.publish(&faults);
    }

    /// Removes the fault of `kind`, if any.
    pub(crate) fn remove(&self, kind: FaultKind) {
        self.remove_where(|f| f.spec.fault.kind() == kind);
    }

    /// Removes the fault installed as `id`, unless it has been replaced since.
    pub(crate) fn remove_id(&self, id: u64) {
        self.remove_where(|f| f.id == id);
    }

    /// Removes every fault.
    pub(crate) fn clear(&self) {
        self.remove_where(|_| true);
    }

    fn remove_where(&self, pred: impl Fn(&Installed) -> bool) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let before = faults.len();
        faults.retain(|f| !pred(f));
        if faults.len() != before {
            self.publish(&faults);
        }
    }

    fn publish(&self, faults: &[Installed]) {
        let plan = Plan::from_faults(faults.iter().map(|f| &f.spec.fault));
        self.plan.send_if_modified(|current| {
            if **current == plan {
                return false;
            }
            *current = Arc::new(plan);
            true
        });
    }

    /// The installed faults, in kind order.
    pub(crate) fn faults(&self) -> Vec<FaultSpec> {
        let faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.iter().map(|f| f.spec.clone()).collect()
    }

    pub(crate) fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            link: self.id,
            listen: *self.listen.lock().unwrap_or_else(|e| e.into_inner()),
            frames_forwarded: c.frames_forwarded.load(Relaxed),
            bytes_forwarded: c.bytes_forwarded.load(Relaxed),
            frames_dropped: c.frames_dropped.load(Relaxed),
            bytes_dropped: c.bytes_dropped.load(Relaxed),
            frames_duplicated: c.frames_duplicated.load(Relaxed),
            frames_delayed: c.frames_delayed.load(Relaxed),
            frames_queued: c.frames_queued.load(Relaxed),
            connections_open: c.connections_open.load(Relaxed),
            connections_total: c.connections_total.load(Relaxed),
            connections_refused: c.connections_refused.load(Relaxed),
            connections_reset: c.connections_reset.load(Relaxed),
            upstream_failures: c.upstream_failures.load(Relaxed),
            faults: self.faults(),
        }
    }
}
