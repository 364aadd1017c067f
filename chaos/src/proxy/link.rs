//! One directed link: its installed faults, the compiled plan every open connection follows, and its counters.
//!
//! Connections read the plan through a `watch` channel, so a fault set or removed reaches connections that are
//! already open, not only new ones, and a connection with nothing to do costs nothing to notify.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::classify::MAX_LABELS;
use super::{Distribution, Fault, FaultKind, FaultSpec, LabelCount, LinkId, LinkStats};

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

/// The faults that apply to one class of frames, compiled for the per-frame path. Faults of one kind compose
/// as if chained one after the other (toxiproxy's toxic chain): latencies add, loss and duplication draw
/// independently (so probabilities combine as `1 - Π(1 - p)`), reorder takes the largest spread, bandwidth the
/// smallest rate, and blackhole, reset and hold hold if any fault sets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    pub latency: Option<LatencyPlan>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    pub reorder: Option<ReorderPlan>,
    pub bandwidth: Option<u64>,
    pub blackhole: bool,
    pub reset: bool,
    pub hold: bool,
}

/// Combines two independent probabilities of the same event.
fn either(a: Option<f64>, p: f64) -> Option<f64> {
    let p = p.clamp(0.0, 1.0);
    Some(a.map_or(p, |a| 1.0 - (1.0 - a) * (1.0 - p)))
}

impl Plan {
    /// Compiles a fault list. Probabilities are clamped to [0, 1].
    pub(crate) fn from_faults<'a>(faults: impl IntoIterator<Item = &'a Fault>) -> Plan {
        let mut plan = Plan::default();
        for f in faults {
            plan.add(f);
        }
        plan
    }

    fn add(&mut self, f: &Fault) {
        match *f {
            Fault::Latency { base, jitter, dist } => {
                self.latency = Some(match self.latency {
                    None => LatencyPlan { base, jitter, dist },
                    Some(l) => LatencyPlan {
                        base: l.base + base,
                        jitter: l.jitter + jitter,
                        dist: if l.dist == Distribution::Fixed {
                            dist
                        } else {
                            l.dist
                        },
                    },
                })
            }
            Fault::Loss { p } => self.loss = either(self.loss, p),
            Fault::Duplicate { p } => self.duplicate = either(self.duplicate, p),
            Fault::Reorder { max_extra, p } => {
                let (m, q) = self.reorder.map_or((max_extra, p.clamp(0.0, 1.0)), |r| {
                    (
                        r.max_extra.max(max_extra),
                        either(Some(r.p), p).unwrap_or(p),
                    )
                });
                self.reorder = Some(ReorderPlan { max_extra: m, p: q })
            }
            Fault::Bandwidth { bytes_per_sec } => {
                let rate = bytes_per_sec.max(1);
                self.bandwidth = Some(self.bandwidth.map_or(rate, |r| r.min(rate)))
            }
            Fault::Blackhole => self.blackhole = true,
            Fault::Reset => self.reset = true,
            Fault::Hold => self.hold = true,
        }
    }

    /// Whether any fault holds frames back in time, so queued frames must keep waiting.
    pub(crate) fn delays(&self) -> bool {
        self.latency.is_some() || self.reorder.is_some() || self.bandwidth.is_some()
    }
}

/// A link's whole fault set compiled: one [`Plan`] for frames no filter matches (unfiltered faults only) and
/// one per label (unfiltered faults plus those whose filter names the label).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plans {
    /// For frames without a label, or whose label no filter names.
    pub base: Plan,
    /// Per label index; empty when no installed fault has a filter.
    pub by_label: Vec<Plan>,
    /// No fault at all.
    pub clear: bool,
    /// Some plan delays frames.
    pub delays: bool,
    /// Some plan resets connections (a reset applies to whole connections, filter or not).
    pub reset: bool,
    /// Some plan holds frames.
    pub hold: bool,
}

impl Plans {
    fn compile(faults: &[Installed]) -> Plans {
        let base = Plan::from_faults(
            faults
                .iter()
                .filter(|f| f.spec.filter.is_none())
                .map(|f| &f.spec.fault),
        );
        let filtered = faults.iter().any(|f| f.spec.filter.is_some());
        let by_label: Vec<Plan> = if filtered {
            (0..MAX_LABELS as u8)
                .map(|l| {
                    Plan::from_faults(
                        faults
                            .iter()
                            .filter(|f| f.spec.filter.is_none_or(|s| s.contains(l)))
                            .map(|f| &f.spec.fault),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let all = || std::iter::once(&base).chain(by_label.iter());
        Plans {
            clear: faults.is_empty(),
            delays: all().any(Plan::delays),
            reset: all().any(|p| p.reset),
            hold: all().any(|p| p.hold),
            base,
            by_label,
        }
    }

    /// The plan for a frame with this label.
    pub(crate) fn for_label(&self, label: Option<u8>) -> &Plan {
        match label {
            Some(l) if !self.by_label.is_empty() => &self.by_label[usize::from(l) % MAX_LABELS],
            _ => &self.base,
        }
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
    /// Frames a hold fault took into the network's hold registry.
    pub frames_held: AtomicU64,
    /// Of those, frames lost because their connection ended while held (also in `frames_dropped`).
    pub held_lost: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_reset: AtomicU64,
    pub upstream_failures: AtomicU64,
    /// Frames forwarded per label (index [`MAX_LABELS`] for frames without one).
    pub by_label: [AtomicU64; MAX_LABELS + 1],
    /// Frames dropped per label (same indexes).
    pub dropped_by_label: [AtomicU64; MAX_LABELS + 1],
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

    pub(crate) fn dropped(&self, bytes: usize, label: Option<u8>) {
        self.frames_dropped.fetch_add(1, Relaxed);
        self.bytes_dropped.fetch_add(bytes as u64, Relaxed);
        self.dropped_by_label[label_slot(label)].fetch_add(1, Relaxed);
    }

    /// Counts one frame of `label` seen on its way through (forwarded unless a fault drops it later, in
    /// which case [`Counters::dropped`] counts it too).
    pub(crate) fn labelled(&self, label: Option<u8>) {
        self.by_label[label_slot(label)].fetch_add(1, Relaxed);
    }
}

/// The counter slot of a label: its index, or the last slot for frames without one.
fn label_slot(label: Option<u8>) -> usize {
    label.map_or(MAX_LABELS, |l| usize::from(l).min(MAX_LABELS))
}

/// The shared state of one directed link.
#[derive(Debug)]
pub(crate) struct Link {
    pub id: LinkId,
    faults: Mutex<Vec<Installed>>,
    plan: watch::Sender<Arc<Plans>>,
    pub counters: Counters,
    pub listen: Mutex<Option<SocketAddr>>,
}

impl Link {
    pub(crate) fn new(id: LinkId) -> Link {
        Link {
            id,
            faults: Mutex::new(Vec::new()),
            plan: watch::Sender::new(Arc::new(Plans {
                clear: true,
                ..Plans::default()
            })),
            counters: Counters::default(),
            listen: Mutex::new(None),
        }
    }

    /// A receiver that sees every later plan change.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Plans>> {
        self.plan.subscribe()
    }

    /// The plan in force now.
    pub(crate) fn plan(&self) -> Arc<Plans> {
        self.plan.borrow().clone()
    }

    /// Installs `spec`, replacing a fault of the same kind.
    pub(crate) fn set(&self, spec: FaultSpec, id: u64) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let kind = spec.fault.kind();
        faults.retain(|f| f.spec.fault.kind() != kind);
        faults.push(Installed { spec, id });
        faults.sort_by_key(|f| (f.spec.fault.kind(), f.id));
        self.publish(&faults);
    }

    /// Installs `spec` beside whatever is there (faults compose), as fault `id`.
    pub(crate) fn add(&self, spec: FaultSpec, id: u64) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.push(Installed { spec, id });
        faults.sort_by_key(|f| (f.spec.fault.kind(), f.id));
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
        let plan = Plans::compile(faults);
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

    /// Whether fault `id` is installed here.
    pub(crate) fn has_id(&self, id: u64) -> bool {
        let faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.iter().any(|f| f.id == id)
    }

    pub(crate) fn stats(&self, labels: &[&'static str]) -> LinkStats {
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
            frames_held: c.frames_held.load(Relaxed),
            held_lost: c.held_lost.load(Relaxed),
            connections_open: c.connections_open.load(Relaxed),
            connections_total: c.connections_total.load(Relaxed),
            connections_refused: c.connections_refused.load(Relaxed),
            connections_reset: c.connections_reset.load(Relaxed),
            upstream_failures: c.upstream_failures.load(Relaxed),
            faults: self.faults(),
            by_label: (0..=MAX_LABELS)
                .filter_map(|i| {
                    let forwarded = c.by_label[i].load(Relaxed);
                    let dropped = c.dropped_by_label[i].load(Relaxed);
                    if forwarded == 0 && dropped == 0 {
                        return None;
                    }
                    let label = labels.get(i).copied().unwrap_or("other").to_string();
                    Some(LabelCount {
                        label,
                        frames: forwarded,
                        dropped,
                    })
                })
                .collect(),
        }
    }
}
