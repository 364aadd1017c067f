//! A toxiproxy-like TCP proxy per directed link, aware of tarpc's length-delimited frames.
//!
//! The orchestrator tells node `a` to reach node `b` through the proxy of link `a -> b` ([`Network::add_link`]).
//! Each proxied connection has two directions, and each direction is governed by the link of whoever is
//! sending: on the `a -> b` proxy, `a`'s requests follow link `a -> b` and `b`'s replies follow link `b -> a`.
//! So a fault on `a -> b` touches every byte `a` sends to `b`, whichever side opened the connection, and a
//! one-way partition is a fault on one link.
//!
//! Layout, after toxiproxy's proxy → link → toxic chain: this module holds the public types, the listeners and
//! the connection setup; `link` a link's fault set and counters; `pipe` one direction of a connection;
//! `splice` its zero-copy path for big bodies; `frame` the framing; then one file per fault kind
//! ([`latency`], [`loss`], [`duplicate`], [`reorder`], [`bandwidth`], [`blackhole`], [`reset`], [`hold`]).
//! [`trace`] keeps a bounded record of every message's fate (for message-flow diagrams).
//! [`classify`] lets the owner label frames (message kinds) without the proxy knowing the protocol: faults can
//! then be limited to some labels, and links count frames per label.
//!
//! Faults compose: a link holds any number of them, each with an id. [`Network::add_fault`] installs one fault
//! on several links under one id and [`Network::remove_fault_id`] removes it again, leaving the others.

pub mod bandwidth;
pub mod blackhole;
pub mod classify;
pub mod duplicate;
mod frame;
pub mod framing;
pub mod hold;
pub mod latency;
mod link;
pub mod loss;
mod pipe;
pub mod protobuf;
pub mod rafthttp;
pub mod reorder;
pub mod reset;
pub mod sender;
mod splice;
#[cfg(test)]
pub(crate) mod testkit;
pub mod trace;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ChaosError;
use crate::partition::Partition;
pub use classify::{Classifier, Flow, LabelSet, SharedClassifier};
pub use framing::Framing;
pub use hold::{HeldFrame, Stepped};
use link::Link;
use pipe::Pipe;
use rafthttp::ConnState;
use sender::Attribution;
pub use sender::SenderTable;
pub use trace::{DropCause, Fate, MessageEvent, MessageTrace, TraceRead};

/// A node id, opaque to the proxy.
pub type Endpoint = u64;

/// A directed link: the traffic `from` sends to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinkId {
    /// The sender.
    pub from: Endpoint,
    /// The receiver.
    pub to: Endpoint,
}

impl LinkId {
    /// The link `from -> to`.
    pub fn new(from: Endpoint, to: Endpoint) -> LinkId {
        LinkId { from, to }
    }

    /// The link in the other direction.
    pub fn reversed(self) -> LinkId {
        LinkId {
            from: self.to,
            to: self.from,
        }
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

/// How latency jitter is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distribution {
    /// No jitter: every frame waits exactly `base`.
    Fixed,
    /// `base ± jitter`, uniformly.
    Uniform,
    /// Normal around `base` with standard deviation `jitter`.
    Normal,
}

/// A fault on one directed link. Each kind lives in its own module, which documents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// Hold every frame for a drawn delay; frames keep their order ([`latency`]).
    Latency {
        /// The central delay.
        base: Duration,
        /// Spread around `base` (ignored by `Fixed`).
        jitter: Duration,
        /// How the spread is drawn.
        dist: Distribution,
    },
    /// Drop whole frames with probability `p` ([`loss`]).
    Loss {
        /// Probability in [0, 1].
        p: f64,
    },
    /// Send a frame twice with probability `p` ([`duplicate`]).
    Duplicate {
        /// Probability in [0, 1].
        p: f64,
    },
    /// With probability `p`, hold a frame for an extra uniform delay up to `max_extra`, letting later frames
    /// overtake it ([`reorder`]).
    Reorder {
        /// The largest extra delay.
        max_extra: Duration,
        /// Probability in [0, 1].
        p: f64,
    },
    /// Limit the link to this many bytes per second ([`bandwidth`]).
    Bandwidth {
        /// Bytes per second, at least 1.
        bytes_per_sec: u64,
    },
    /// Accept connections but deliver nothing; frames sent meanwhile are dropped ([`blackhole`]).
    Blackhole,
    /// Close connections with RST and refuse new ones ([`reset`]).
    Reset,
    /// Queue frames until a person steps, drops or releases them ([`hold`]).
    Hold,
}

/// The kind of a [`Fault`], without its parameters: a link holds at most one fault per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// [`Fault::Latency`].
    Latency,
    /// [`Fault::Loss`].
    Loss,
    /// [`Fault::Duplicate`].
    Duplicate,
    /// [`Fault::Reorder`].
    Reorder,
    /// [`Fault::Bandwidth`].
    Bandwidth,
    /// [`Fault::Blackhole`].
    Blackhole,
    /// [`Fault::Reset`].
    Reset,
    /// [`Fault::Hold`].
    Hold,
}

impl Fault {
    /// Fixed latency of `ms` milliseconds.
    pub fn latency_ms(ms: u64) -> Fault {
        Fault::Latency {
            base: Duration::from_millis(ms),
            jitter: Duration::ZERO,
            dist: Distribution::Fixed,
        }
    }

    /// Which kind of fault this is.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Duplicate { .. } => FaultKind::Duplicate,
            Fault::Reorder { .. } => FaultKind::Reorder,
            Fault::Bandwidth { .. } => FaultKind::Bandwidth,
            Fault::Blackhole => FaultKind::Blackhole,
            Fault::Reset => FaultKind::Reset,
            Fault::Hold => FaultKind::Hold,
        }
    }

    /// Checks the parameters. [`Network::set_fault`] clamps rather than refuses, so call this on input that a
    /// person typed to tell them what is wrong.
    pub fn validate(&self) -> Result<(), ChaosError> {
        let bad = |reason: &str| {
            Err(ChaosError::InvalidFault {
                fault: self.to_string(),
                reason: reason.to_string(),
            })
        };
        match *self {
            Fault::Loss { p } | Fault::Duplicate { p } | Fault::Reorder { p, .. }
                if !(0.0..=1.0).contains(&p) =>
            {
                bad("the probability must be between 0 and 1")
            }
            Fault::Bandwidth { bytes_per_sec: 0 } => {
                bad("the rate must be at least 1 byte/s (use a blackhole to stop traffic)")
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Latency { base, jitter, dist } => match dist {
                Distribution::Fixed => write!(f, "latency {base:?}"),
                Distribution::Uniform => write!(f, "latency {base:?}±{jitter:?} uniform"),
                Distribution::Normal => write!(f, "latency {base:?}±{jitter:?} normal"),
            },
            Fault::Loss { p } => write!(f, "loss {:.1}%", p * 100.0),
            Fault::Duplicate { p } => write!(f, "duplicate {:.1}%", p * 100.0),
            Fault::Reorder { max_extra, p } => {
                write!(f, "reorder {:.1}% up to +{max_extra:?}", p * 100.0)
            }
            Fault::Bandwidth { bytes_per_sec } => write!(f, "bandwidth {bytes_per_sec} B/s"),
            Fault::Blackhole => f.write_str("blackhole"),
            Fault::Reset => f.write_str("reset"),
            Fault::Hold => f.write_str("hold"),
        }
    }
}

/// A fault and how long it stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// The fault.
    pub fault: Fault,
    /// Removes itself after this long; `None` stays until removed.
    pub duration: Option<Duration>,
    /// Applies only to frames whose label is in the set ([`classify`]); `None` applies to every frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<LabelSet>,
}

impl FaultSpec {
    /// A fault that stays until removed.
    pub fn permanent(fault: Fault) -> FaultSpec {
        FaultSpec {
            fault,
            duration: None,
            filter: None,
        }
    }

    /// A fault that removes itself after `duration`.
    pub fn lasting(fault: Fault, duration: Duration) -> FaultSpec {
        FaultSpec {
            fault,
            duration: Some(duration),
            filter: None,
        }
    }

    /// The same fault limited to frames with these labels.
    pub fn only(mut self, labels: LabelSet) -> FaultSpec {
        self.filter = Some(labels);
        self
    }
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> FaultSpec {
        FaultSpec::permanent(fault)
    }
}

/// A snapshot of one link's counters and faults, for the link matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Which link.
    pub link: LinkId,
    /// Where its proxy listens, if [`Network::add_link`] was called for it.
    pub listen: Option<SocketAddr>,
    /// Whole frames delivered.
    pub frames_forwarded: u64,
    /// Bytes delivered.
    pub bytes_forwarded: u64,
    /// Frames dropped by loss or blackhole.
    pub frames_dropped: u64,
    /// Bytes dropped by loss or blackhole.
    pub bytes_dropped: u64,
    /// Frames sent twice.
    pub frames_duplicated: u64,
    /// Frames held back by latency, bandwidth or reorder.
    pub frames_delayed: u64,
    /// Frames held right now.
    pub frames_queued: u64,
    /// Frames a hold fault has taken since the link started ([`hold`]): each is held now, or was delivered
    /// or dropped since (a person's `drop-held`, or its connection ending: `held_lost`).
    #[serde(default)]
    pub frames_held: u64,
    /// Of `frames_held`, those dropped because their connection ended while they were held (counted in
    /// `frames_dropped` too): they can no longer be delivered ([`hold`] says why they are not moved to
    /// another connection).
    #[serde(default)]
    pub held_lost: u64,
    /// Connections open on this link's proxy now.
    pub connections_open: u64,
    /// Connections accepted on this link's proxy since it started.
    pub connections_total: u64,
    /// Connections refused because of a reset fault.
    pub connections_refused: u64,
    /// Open connections closed by a reset fault (counted per direction that noticed).
    pub connections_reset: u64,
    /// Connections dropped because the upstream was unknown or unreachable.
    pub upstream_failures: u64,
    /// The faults in force.
    pub faults: Vec<FaultSpec>,
    /// Frames seen per label (those the classifier could not place under `other`), only labels seen so far.
    #[serde(default)]
    pub by_label: Vec<LabelCount>,
}

/// Held frames of one link that were dropped because their connection ended ([`Network::take_lost_held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostHeld {
    /// The link they were held on.
    pub link: LinkId,
    /// How many.
    pub frames: u64,
}

/// Frames of one label on one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCount {
    /// The label's name.
    pub label: String,
    /// Frames of this label that reached the link (forwarded, held, or dropped afterwards).
    pub frames: u64,
    /// Of those, frames a fault dropped.
    pub dropped: u64,
}

/// What the listeners and connections share.
struct Shared {
    seed: u64,
    classifier: Option<SharedClassifier>,
    framing: Framing,
    senders: SenderTable,
    held: hold::Registry,
    /// Held frames lost with their connections, per link, counted but not yet reported
    /// ([`Network::take_lost_held`]).
    lost_unreported: Mutex<BTreeMap<LinkId, u64>>,
    trace: Arc<MessageTrace>,
    links: Mutex<BTreeMap<LinkId, Arc<Link>>>,
    upstreams: RwLock<HashMap<Endpoint, SocketAddr>>,
    next_fault_id: AtomicU64,
    root: CancellationToken,
}

impl Shared {
    fn link(&self, id: LinkId) -> Arc<Link> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links
            .entry(id)
            .or_insert_with(|| Arc::new(Link::new(id)))
            .clone()
    }

    fn existing(&self, id: LinkId) -> Option<Arc<Link>> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<Link>> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The index of the classifier's label `name`.
    fn label_index(&self, name: Option<&str>) -> Option<u8> {
        let labels = self.classifier.as_ref()?.labels();
        let name = name?;
        labels.iter().position(|x| *x == name).map(|i| i as u8)
    }

    /// Counts the held frames lost with their connections since the last call as dropped on their links,
    /// and keeps them for [`Network::take_lost_held`].
    fn settle_lost(&self) {
        let lost = self.held.take_lost();
        if lost.is_empty() {
            return;
        }
        let mut report = self
            .lost_unreported
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for l in lost {
            if let Some(link) = self.existing(l.link) {
                link.counters
                    .dropped(l.bytes, self.label_index(l.label.as_deref()));
                link.counters.held_lost.fetch_add(1, Relaxed);
            }
            *report.entry(l.link).or_default() += 1;
        }
    }

    fn upstream(&self, to: Endpoint) -> Option<SocketAddr> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&to)
            .copied()
    }
}

/// Owns the listeners; dropping the last [`Network`] handle stops them and closes every proxied connection.
struct Inner {
    shared: Arc<Shared>,
    listeners: Mutex<BTreeMap<LinkId, (SocketAddr, JoinHandle<()>)>>,
    /// The address proxies listen on ([`Network::bind_on`]); 127.0.0.1 unless set.
    bind: RwLock<IpAddr>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.root.cancel();
        for (_, (_, task)) in self
            .listeners
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            task.abort();
        }
    }
}

/// All links of a cluster. Cheap to clone; every clone controls the same proxies.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.inner.shared.seed)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// A network with no links. `seed` drives every random fault decision: each direction of each connection
    /// draws from its own generator derived from the seed, the link and the connection's sequence number.
    pub fn new(seed: u64) -> Network {
        Network::build(seed, None, Framing::LengthPrefixed)
    }

    /// Like [`Network::new`], with a classifier that labels frames (message kinds), so faults can be limited
    /// to some labels and links count frames per label.
    pub fn with_classifier(seed: u64, classifier: SharedClassifier) -> Network {
        Network::build(seed, Some(classifier), Framing::LengthPrefixed)
    }

    /// A network whose connections are cut into frames by `framing` (a node kind's choice), with an optional
    /// classifier for the messages the framing finds.
    pub fn with_framing(
        seed: u64,
        framing: Framing,
        classifier: Option<SharedClassifier>,
    ) -> Network {
        Network::build(seed, classifier, framing)
    }

    fn build(seed: u64, classifier: Option<SharedClassifier>, framing: Framing) -> Network {
        let trace = Arc::new(MessageTrace::default());
        Network {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    seed,
                    classifier,
                    framing,
                    senders: SenderTable::default(),
                    held: hold::Registry::new(trace.clone()),
                    lost_unreported: Mutex::new(BTreeMap::new()),
                    trace,
                    links: Mutex::new(BTreeMap::new()),
                    upstreams: RwLock::new(HashMap::new()),
                    next_fault_id: AtomicU64::new(1),
                    root: CancellationToken::new(),
                }),
                listeners: Mutex::new(BTreeMap::new()),
                bind: RwLock::new(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            }),
        }
    }

    /// Makes proxies started from now on listen on `ip` (port chosen by the OS) instead of 127.0.0.1: on a host
    /// whose nodes are reached from other machines, the address the hosts file names for it.
    pub fn bind_on(&self, ip: IpAddr) {
        *self.inner.bind.write().unwrap_or_else(|e| e.into_inner()) = ip;
    }

    fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(
            *self.inner.bind.read().unwrap_or_else(|e| e.into_inner()),
            0,
        )
    }

    /// The seed the network was made with.
    pub fn seed(&self) -> u64 {
        self.inner.shared.seed
    }

    /// The record of every message's fate on every link ([`trace`]); off until [`MessageTrace::set_on`].
    /// Messages are traced only where frames are cut into messages and a classifier is installed (a frame
    /// the proxy streams unlabelled is not a message it could name).
    pub fn trace(&self) -> &Arc<MessageTrace> {
        &self.inner.shared.trace
    }

    /// Starts the proxy for directed link `from -> to` on 127.0.0.1 (or [`Network::bind_on`]'s address; port
    /// chosen by the OS) and returns its
    /// address: `from` dials it to reach `to`. Calling it again for the same link returns the same address.
    pub async fn add_link(&self, from: Endpoint, to: Endpoint) -> Result<SocketAddr, ChaosError> {
        let id = LinkId { from, to };
        if let Some((addr, _)) = self.listeners().get(&id) {
            return Ok(*addr);
        }
        let want = self.bind_addr();
        let bind_err = |source| ChaosError::Bind {
            from,
            to,
            addr: want,
            source,
        };
        let listener = TcpListener::bind(want).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = &self.inner.shared;
        let fwd = shared.link(id);
        let back = shared.link(id.reversed());
        *fwd.listen.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
        let mut listeners = self.listeners();
        if let Some((existing, _)) = listeners.get(&id) {
            // Another caller won the race; keep theirs.
            return Ok(*existing);
        }
        let task = tokio::spawn(accept_loop(listener, fwd, back, shared.clone()));
        listeners.insert(id, (addr, task));
        Ok(addr)
    }

    /// Starts one proxy in front of node `to` on 127.0.0.1 (port chosen by the OS) for every sender, and returns
    /// its address: every peer of `to` dials it. The sender of each connection is identified by the framing
    /// (rafthttp's `X-Server-From`) through [`Network::senders`]; until it is, the connection is forwarded with
    /// no fault ([`sender`] says exactly when). Needs a framing that names senders ([`Framing::RaftHttp`]);
    /// with another, every connection stays unattributed. Calling it again for `to` returns the same address.
    pub async fn add_destination(&self, to: Endpoint) -> Result<SocketAddr, ChaosError> {
        self.destination(to, self.bind_addr()).await
    }

    /// [`Network::add_destination`] on the address `at` (its port included) instead of one the OS chooses: the
    /// proxy in front of `to` comes back where an earlier run of it listened, for a node that stored that
    /// address (etcd keeps each member's peer URL in its data). `Err` ([`ChaosError::Bind`], naming `at`) when
    /// `at` cannot be bound (in use, or not an address of this machine). If the proxy in front of `to` runs
    /// already, its address is returned, whatever `at` says.
    pub async fn add_destination_at(
        &self,
        to: Endpoint,
        at: SocketAddr,
    ) -> Result<SocketAddr, ChaosError> {
        self.destination(to, at).await
    }

    async fn destination(&self, to: Endpoint, want: SocketAddr) -> Result<SocketAddr, ChaosError> {
        // The listener is kept under the pseudo-link `to -> to`, which no real traffic uses.
        let id = LinkId { from: to, to };
        if let Some((addr, _)) = self.listeners().get(&id) {
            return Ok(*addr);
        }
        let bind_err = |source| ChaosError::Bind {
            from: to,
            to,
            addr: want,
            source,
        };
        let listener = TcpListener::bind(want).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let mut listeners = self.listeners();
        if let Some((existing, _)) = listeners.get(&id) {
            return Ok(*existing);
        }
        let task = tokio::spawn(destination_loop(listener, to, self.inner.shared.clone()));
        listeners.insert(id, (addr, task));
        Ok(addr)
    }

    /// The table that maps the member ids senders give to node ids, for [`Network::add_destination`]'s
    /// proxies. Fill it before the nodes start, or as soon as their ids are known.
    pub fn senders(&self) -> &SenderTable {
        &self.inner.shared.senders
    }

    /// Where `to` really listens. New connections to `to` go there; set it again after `to` restarts on a new
    /// address (connections already open stay with the old one).
    pub fn set_upstream(&self, to: Endpoint, addr: SocketAddr) {
        let mut up = self
            .inner
            .shared
            .upstreams
            .write()
            .unwrap_or_else(|e| e.into_inner());
        up.insert(to, addr);
    }

    /// Sets a fault on `link`, replacing every fault of the same kind there (use [`Network::add_fault`] for faults
    /// that compose). It applies to open connections at once. With a
    /// duration it removes itself afterwards (unless replaced first). Probabilities are clamped to [0, 1] and a
    /// zero bandwidth is taken as 1 byte/s; use [`Fault::validate`] to refuse such input instead.
    pub fn set_fault(&self, link: LinkId, spec: FaultSpec) {
        let shared = &self.inner.shared;
        let target = shared.link(link);
        let id = shared.next_fault_id.fetch_add(1, Relaxed);
        let duration = spec.duration;
        target.set(spec, id);
        if let Some(d) = duration {
            let weak = Arc::downgrade(&target);
            let expire = move || {
                if let Some(l) = weak.upgrade() {
                    l.remove_id(id);
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        tokio::time::sleep(d).await;
                        expire();
                    });
                }
                Err(_) => {
                    std::thread::spawn(move || {
                        std::thread::sleep(d);
                        expire();
                    });
                }
            }
        }
    }

    /// Installs `spec` on every link in `links` beside the faults already there (faults compose), and returns
    /// the id that [`Network::remove_fault_id`] takes. With a duration it removes itself afterwards. The filter
    /// needs a classifier ([`Network::with_classifier`]); without one a filtered fault matches nothing.
    pub fn add_fault(&self, links: impl IntoIterator<Item = LinkId>, spec: FaultSpec) -> u64 {
        let shared = &self.inner.shared;
        let id = shared.next_fault_id.fetch_add(1, Relaxed);
        let duration = spec.duration;
        for link in links {
            shared.link(link).add(spec.clone(), id);
        }
        if let Some(d) = duration {
            let net = Arc::downgrade(&self.inner);
            let expire = move || {
                if let Some(inner) = net.upgrade() {
                    Network { inner }.remove_fault_id(id);
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        tokio::time::sleep(d).await;
                        expire();
                    });
                }
                Err(_) => {
                    std::thread::spawn(move || {
                        std::thread::sleep(d);
                        expire();
                    });
                }
            }
        }
        id
    }

    /// Installs `spec` under an existing fault id on more links (a fault whose target now covers links that
    /// did not exist when it was added: a node added to the cluster). [`Network::remove_fault_id`] then removes
    /// it from all of them. A duration is ignored here: the fault's first installation owns its expiry.
    pub fn extend_fault(&self, id: u64, links: impl IntoIterator<Item = LinkId>, spec: FaultSpec) {
        let shared = &self.inner.shared;
        for link in links {
            shared.link(link).add(
                FaultSpec {
                    duration: None,
                    ..spec.clone()
                },
                id,
            );
        }
    }

    /// Removes fault `id` from every link it is on; the link's other faults stay. Frames it delayed or held are
    /// delivered, none are lost. Returns whether it was installed anywhere.
    pub fn remove_fault_id(&self, id: u64) -> bool {
        let mut found = false;
        for l in self.inner.shared.all() {
            if l.has_id(id) {
                l.remove_id(id);
                found = true;
            }
        }
        self.release_unheld();
        found
    }

    /// Removes every fault of `kind` from `link` (whichever call installed it). Frames they delayed or held are
    /// delivered, none are lost.
    pub fn remove_fault(&self, link: LinkId, kind: FaultKind) {
        if let Some(l) = self.inner.shared.existing(link) {
            l.remove(kind);
        }
        self.release_unheld();
    }

    /// Removes every fault from `link`.
    pub fn clear_link(&self, link: LinkId) {
        if let Some(l) = self.inner.shared.existing(link) {
            l.clear();
        }
        self.release_unheld();
    }

    /// Removes every fault from every link.
    pub fn heal_all(&self) {
        for l in self.inner.shared.all() {
            l.clear();
        }
        self.release_unheld();
    }

    /// The label names of the classifier, if any (index order).
    pub fn labels(&self) -> &[&'static str] {
        match &self.inner.shared.classifier {
            Some(c) => c.labels(),
            None => &[],
        }
    }

    /// Frames held by [`Fault::Hold`] right now, oldest first.
    pub fn held(&self) -> Vec<HeldFrame> {
        let out = self.inner.shared.held.list();
        self.inner.shared.settle_lost();
        out
    }

    /// The held frames dropped because their connection ended ([`hold`]) since the last call, per link in
    /// link order, each link once however many connections it lost: for the person to be told (`3 held frames
    /// on 1->2 dropped: connection closed`). They are already counted in the links' stats
    /// ([`LinkStats::held_lost`]).
    pub fn take_lost_held(&self) -> Vec<LostHeld> {
        let shared = &self.inner.shared;
        shared.settle_lost();
        let taken = std::mem::take(
            &mut *shared
                .lost_unreported
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        taken
            .into_iter()
            .map(|(link, frames)| LostHeld { link, frames })
            .collect()
    }

    /// Delivers the `n` oldest held frames on links that `pick` accepts.
    pub fn step(&self, pick: impl Fn(LinkId) -> bool, n: usize) -> Vec<Stepped> {
        let out = self.inner.shared.held.take(pick, n, true);
        self.count_stepped(&out);
        out
    }

    /// Discards the `n` oldest held frames on links that `pick` accepts (counted as dropped).
    pub fn drop_held(&self, pick: impl Fn(LinkId) -> bool, n: usize) -> Vec<Stepped> {
        let out = self.inner.shared.held.take(pick, n, false);
        self.count_dropped(&out);
        out
    }

    /// Discards the held frames whose [`HeldFrame::seq`] `pick` accepts (counted as dropped): a person chose
    /// them from the list by what they carry, not by age.
    pub fn drop_held_frames(&self, pick: impl Fn(u64) -> bool) -> Vec<Stepped> {
        let out = self
            .inner
            .shared
            .held
            .take_where(|seq, _| pick(seq), usize::MAX, false);
        self.count_dropped(&out);
        out
    }

    fn count_dropped(&self, out: &[Stepped]) {
        let shared = &self.inner.shared;
        for s in out {
            if let Some(l) = shared.existing(s.frame.link) {
                let label = shared.label_index(s.frame.label.as_deref());
                l.counters.dropped(s.frame.bytes, label);
            }
        }
    }

    /// Delivers every held frame on links that `pick` accepts (the hold itself stays).
    pub fn release(&self, pick: impl Fn(LinkId) -> bool) -> Vec<Stepped> {
        let out = self.inner.shared.held.take(pick, usize::MAX, true);
        self.count_stepped(&out);
        out
    }

    /// Counts the frames a step found their connection closed for (the step's answer says so) as dropped.
    fn count_stepped(&self, out: &[Stepped]) {
        let shared = &self.inner.shared;
        for s in out.iter().filter(|s| !s.delivered) {
            if let Some(l) = shared.existing(s.frame.link) {
                let label = shared.label_index(s.frame.label.as_deref());
                l.counters.dropped(s.frame.bytes, label);
                l.counters.held_lost.fetch_add(1, Relaxed);
            }
        }
    }

    /// Delivers held frames whose link no longer holds them (its hold fault was removed).
    fn release_unheld(&self) {
        let shared = &self.inner.shared;
        let still: std::collections::BTreeSet<LinkId> = shared
            .all()
            .iter()
            .filter(|l| l.plan().hold)
            .map(|l| l.id)
            .collect();
        let out = shared.held.take(|l| !still.contains(&l), usize::MAX, true);
        self.count_stepped(&out);
    }

    /// The faults on `link`, in kind order.
    pub fn faults(&self, link: LinkId) -> Vec<FaultSpec> {
        self.inner
            .shared
            .existing(link)
            .map(|l| l.faults())
            .unwrap_or_default()
    }

    /// Counters and faults of every link known (proxied, or given a fault), sorted by link.
    pub fn stats(&self) -> Vec<LinkStats> {
        self.inner.shared.settle_lost();
        let labels = self.labels();
        self.inner
            .shared
            .all()
            .iter()
            .map(|l| l.stats(labels))
            .collect()
    }

    /// Counters and faults of one link.
    pub fn link_stats(&self, link: LinkId) -> Option<LinkStats> {
        self.inner.shared.settle_lost();
        self.inner
            .shared
            .existing(link)
            .map(|l| l.stats(self.labels()))
    }

    /// Makes the reachability among `p`'s nodes exactly `p`'s: a blackhole on every cut link, and no blackhole
    /// or reset on the others (so applying a new partition replaces the previous one).
    pub fn apply_partition(&self, p: &Partition) {
        self.apply_partition_with(p, Fault::Blackhole, None);
    }

    /// Like [`Network::apply_partition`] with a chosen fault on the cut links (normally [`Fault::Blackhole`] or
    /// [`Fault::Reset`], but any fault works, e.g. heavy loss across the cut) and an optional duration.
    pub fn apply_partition_with(&self, p: &Partition, fault: Fault, duration: Option<Duration>) {
        let kind = fault.kind();
        for &from in p.nodes() {
            for &to in p.nodes() {
                if from == to {
                    continue;
                }
                let link = LinkId { from, to };
                if p.cut(from, to) {
                    self.set_fault(
                        link,
                        FaultSpec {
                            fault: fault.clone(),
                            duration,
                            filter: None,
                        },
                    );
                } else {
                    for k in [FaultKind::Blackhole, FaultKind::Reset, kind] {
                        self.remove_fault(link, k);
                    }
                }
            }
        }
    }

    fn listeners(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<LinkId, (SocketAddr, JoinHandle<()>)>> {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts connections for one link's proxy until the network is dropped.
async fn accept_loop(listener: TcpListener, fwd: Arc<Link>, back: Arc<Link>, shared: Arc<Shared>) {
    let mut serial = 0u64;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(link = %fwd.id, error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        serial += 1;
        if fwd.plan().reset || back.plan().reset {
            let _ = client.set_zero_linger();
            fwd.counters.connections_refused.fetch_add(1, Relaxed);
            continue;
        }
        tokio::spawn(connection(
            client,
            fwd.clone(),
            back.clone(),
            shared.clone(),
            serial,
        ));
    }
}

/// Connects one accepted client to the link's upstream and runs both directions.
async fn connection(
    client: TcpStream,
    fwd: Arc<Link>,
    back: Arc<Link>,
    shared: Arc<Shared>,
    serial: u64,
) {
    let Some(addr) = shared.upstream(fwd.id.to) else {
        tracing::warn!(link = %fwd.id, "no upstream address known for node {}", fwd.id.to);
        fwd.counters.upstream_failures.fetch_add(1, Relaxed);
        return;
    };
    let upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(link = %fwd.id, %addr, error = %e, "upstream connect failed");
                fwd.counters.upstream_failures.fetch_add(1, Relaxed);
                return;
            }
            Err(_) => {
                tracing::debug!(link = %fwd.id, %addr, "upstream connect timed out");
                fwd.counters.upstream_failures.fetch_add(1, Relaxed);
                return;
            }
        };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    fwd.counters.connections_total.fetch_add(1, Relaxed);
    fwd.counters.connections_open.fetch_add(1, Relaxed);
    let conn = shared.root.child_token();
    let (client_rx, client_tx) = client.into_split();
    let (up_rx, up_tx) = upstream.into_split();
    let rng = |dir: u64| {
        ChaCha8Rng::seed_from_u64(mix(&[shared.seed, fwd.id.from, fwd.id.to, serial, dir]))
    };
    let state = Arc::new(ConnState::default());
    let forward = Pipe::new(
        client_rx,
        up_tx,
        fwd.clone(),
        rng(0),
        conn.clone(),
        Flow::Request,
        shared.clone(),
    )
    .framed(shared.framing, state.clone());
    let backward = Pipe::new(
        up_rx,
        client_tx,
        back,
        rng(1),
        conn,
        Flow::Reply,
        shared.clone(),
    )
    .framed(shared.framing, state);
    let forward = tokio::spawn(forward.run());
    backward.run().await;
    let _ = forward.await;
    fwd.counters.connections_open.fetch_sub(1, Relaxed);
}

/// Accepts connections for the per-destination proxy of `to` until the network is dropped.
async fn destination_loop(listener: TcpListener, to: Endpoint, shared: Arc<Shared>) {
    let mut serial = 0u64;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!(to, error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        serial += 1;
        tokio::spawn(destination_connection(client, to, shared.clone(), serial));
    }
}

/// Connects one accepted client to `to` and runs both directions, unattributed until the sender is known.
async fn destination_connection(client: TcpStream, to: Endpoint, shared: Arc<Shared>, serial: u64) {
    let Some(addr) = shared.upstream(to) else {
        tracing::warn!(to, "no upstream address known for node {to}");
        return;
    };
    let upstream =
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(to, %addr, error = %e, "upstream connect failed");
                return;
            }
            Err(_) => {
                tracing::debug!(to, %addr, "upstream connect timed out");
                return;
            }
        };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let conn = shared.root.child_token();
    let (client_rx, client_tx) = client.into_split();
    let (up_rx, up_tx) = upstream.into_split();
    let state = Arc::new(ConnState::default());
    let attribution = Arc::new(Attribution::new(to, state.clone()));
    // Unattributed bytes go over links of their own, listed nowhere and never faulted.
    let unattributed = |from: Endpoint, to: Endpoint| Arc::new(Link::new(LinkId { from, to }));
    let rng = |dir: u64| ChaCha8Rng::seed_from_u64(mix(&[shared.seed, u64::MAX, to, serial, dir]));
    let forward = Pipe::new(
        client_rx,
        up_tx,
        unattributed(u64::MAX, to),
        rng(0),
        conn.clone(),
        Flow::Request,
        shared.clone(),
    )
    .framed(shared.framing, state.clone())
    .attributed_by(attribution.clone());
    let backward = Pipe::new(
        up_rx,
        client_tx,
        unattributed(to, u64::MAX),
        rng(1),
        conn,
        Flow::Reply,
        shared.clone(),
    )
    .framed(shared.framing, state)
    .attributed_by(attribution.clone());
    let forward = tokio::spawn(forward.run());
    backward.run().await;
    let _ = forward.await;
    if let Some(fwd) = attribution.forward() {
        fwd.counters.connections_open.fetch_sub(1, Relaxed);
    }
}

/// Folds numbers into one well-spread seed (splitmix64 steps).
fn mix(parts: &[u64]) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &p in parts {
        h ^= p;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

#[cfg(test)]
mod tests;
