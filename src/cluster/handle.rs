//! The handle on a running cluster: what it was built from, the state every room shares (processes,
//! proxies, the latest statuses, the fault set, the workload, the disks and clocks), and what can be read from
//! it without acting. The rooms beside this file act through it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall_chaos::ProcessSpec;
use squall_node::raft::Role;
use squall_node::rpc::NodeStatus;
use tokio::sync::{mpsc, watch};

use super::backend::{Links, Procs};
use super::command::{NodeId, Target};
use super::{clockset, diskset, faults, files, fresh, workload};
use crate::kind::Kind;
use crate::kind::launch::NodeFacts;
use crate::state::{Event, Stamped};

/// How to build a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of nodes.
    pub nodes: u64,
    /// Cluster directory.
    pub dir: PathBuf,
    /// The node kind: how every node is launched, reached, observed and driven.
    pub kind: Kind,
    /// Program to run for each node (the kind's, or `--node-bin`'s).
    pub node_program: PathBuf,
    /// Arguments placed before the kind's launch arguments (the kind's leading `args` unless `--node-bin`
    /// replaced its program, then any a scenario adds).
    pub node_prefix_args: Vec<OsString>,
    /// The kind's `[options]` switches asked for (`no-pre-vote` …); `unsafe_no_fsync` adds its own.
    pub options: Vec<String>,
    /// Cluster id.
    pub cluster_id: String,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Snapshot every N applied entries.
    pub snapshot_every: u64,
    /// Seed for nodes, proxies and random partitions.
    pub seed: u64,
    /// Workload rate at start (writes per second).
    pub rate: u32,
    /// Serve every node's data directory through a fault filesystem and fake its clocks with squall's time
    /// shim (`--disk-faults`).
    pub disk_faults: bool,
    /// Start every node with `--unsafe-no-fsync` (demonstrations only).
    pub unsafe_no_fsync: bool,
    /// The hosts that run the nodes (`--hosts`/`--host`), each through its agent; `None`: every node here.
    pub hosts: Option<crate::remote::hosts::Hosts>,
}

pub(super) struct Slot {
    pub(super) spec: ProcessSpec,
    /// What the node's command line is made from; a restart changes its peers, join form and initial state.
    pub(super) facts: NodeFacts,
    /// Where the node reports the ports it bound (the kind's `ready = { addr_file }`).
    pub(super) addr_file: Option<PathBuf>,
    /// Its listening addresses by port name, once it is ready.
    pub(super) addrs: Option<NodeAddrs>,
}

/// A ready node's addresses by the kind's port names, and its pid when it reports one.
#[derive(Clone, Debug, Default)]
pub(super) struct NodeAddrs {
    pub(super) ports: BTreeMap<String, SocketAddr>,
    pub(super) pid: Option<u32>,
}

pub(super) struct Inner {
    pub(super) spec: ClusterSpec,
    pub(super) started: Instant,
    /// The node processes, here or on their hosts.
    pub(super) procs: Procs,
    /// The links' proxies, here or on their senders' hosts.
    pub(super) links: Links,
    pub(super) events: mpsc::UnboundedSender<Stamped>,
    pub(super) slots: Mutex<BTreeMap<NodeId, Slot>>,
    /// The latest full status of each live node, from a kind whose status driver has one (squall's).
    pub(super) latest: Mutex<BTreeMap<NodeId, NodeStatus>>,
    /// The latest role and term of each live node, from any kind's status driver: what the leader is
    /// decided from.
    pub(super) roles: Mutex<BTreeMap<NodeId, (Role, u64)>>,
    pub(super) api: watch::Sender<BTreeMap<NodeId, SocketAddr>>,
    pub(super) workload: workload::Control,
    pub(super) stop: watch::Sender<bool>,
    pub(super) faults: Mutex<faults::FaultSet>,
    pub(super) disks: diskset::Disks,
    pub(super) clocks: clockset::Clocks,
    /// The membership change squall is making now (one at a time), in words.
    pub(super) change: Mutex<Option<String>>,
    /// The node an `add` or `replace` under way is adding, and its background task (`remove N` cancels it).
    pub(super) adding: Mutex<Option<(NodeId, tokio::task::AbortHandle)>>,
    /// The nodes a removal reached, as their processes end: an exit of one is its removal, told once.
    pub(super) leaving: Mutex<Leaving>,
    /// Every node id this directory has held, which joined and which were removed (`members.json`).
    pub(super) roster: Mutex<files::Roster>,
    /// The last leader a poll saw, with its term: written into `cluster.json` so a one-shot `squall kv`
    /// asks it first.
    pub(super) last_leader: Mutex<Option<(NodeId, u64)>>,
    /// Teaching mode (`freeze`): the nodes' timers stand still, and nodes start frozen (see `teach`).
    pub(super) frozen: std::sync::atomic::AtomicBool,
    /// Out-of-turn status polls asked and finished, so a `step` judges by its receivers' state after the
    /// step before it (see `fresh`).
    pub(super) fresh: fresh::Fresh,
}

/// A running local cluster. Cheap to clone; every clone drives the same cluster.
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

pub(crate) fn node_name(id: NodeId) -> String {
    format!("node-{id}")
}

impl Cluster {
    /// Whether node `id`'s removal from the configuration committed (this session or an earlier one).
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.inner.roster.lock().unwrap().removed.contains(&id)
    }

    /// Milliseconds since the session began.
    pub fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    pub(super) fn emit(&self, event: Event) {
        let _ = self.inner.events.send(Stamped::new(self.now_ms(), event));
    }

    /// The cluster directory.
    pub fn dir(&self) -> &Path {
        &self.inner.spec.dir
    }

    /// Node ids: the nodes started with the cluster and every node added since (removed ones included: their
    /// directories and links stay).
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.inner.slots.lock().unwrap().keys().copied().collect()
    }

    /// Where node `id`'s status driver reaches it (its kind's status port), once it is ready.
    pub(super) fn status_addr(&self, id: NodeId) -> Option<SocketAddr> {
        let port = self.inner.spec.kind.status_port()?;
        let slots = self.inner.slots.lock().unwrap();
        slots.get(&id)?.addrs.as_ref()?.ports.get(port).copied()
    }

    /// The message kinds the node kind's classifier labels peer frames with (what `only KIND`, `held` and the
    /// links matrix name), in label order; empty for a kind whose frames carry no labels.
    pub fn message_kinds(&self) -> Vec<&'static str> {
        self.inner.links.labels()
    }

    /// Whether the node kind can change membership (it has a membership driver: `add`, `remove`, …).
    pub fn changes_membership(&self) -> bool {
        self.inner.spec.kind.membership.is_some()
    }

    /// The current API addresses.
    pub fn api_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.inner.api.borrow().clone()
    }

    /// The leader and its term, from the latest statuses (the highest term a live node leads in).
    pub fn leader(&self) -> Option<(NodeId, u64)> {
        let roles = self.inner.roles.lock().unwrap();
        roles
            .iter()
            .filter(|(id, (role, _))| *role == Role::Leader && self.alive(**id))
            .map(|(id, (_, term))| (*id, *term))
            .max_by_key(|(_, t)| *t)
    }

    /// The latest status a live node reported to the pollers (none while it is down or not yet polled).
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.inner.latest.lock().unwrap().get(&id).cloned()
    }

    pub(super) fn alive(&self, id: NodeId) -> bool {
        matches!(
            self.inner.procs.state(id),
            Some(squall_chaos::ProcState::Running { .. })
                | Some(squall_chaos::ProcState::Paused { .. })
        )
    }

    /// "leader, term 4" / "follower, term 3" / "" — what a node was when an action hit it.
    /// A Paxos node says `ballot 1.3` where a Raft node says `term 4`.
    pub(super) fn describe_node(&self, id: NodeId) -> String {
        let paxos = self
            .inner
            .latest
            .lock()
            .unwrap()
            .get(&id)
            .filter(|s| s.paxos.is_some())
            .map(|s| (s.core.term, s.term_text()));
        match self.inner.roles.lock().unwrap().get(&id) {
            Some((role, term)) if self.alive(id) => match paxos {
                Some((t, text)) if t == *term => format!(" ({}, {text})", role.as_str()),
                _ => format!(" ({}, term {term})", role.as_str()),
            },
            _ => String::new(),
        }
    }

    pub(super) fn resolve(&self, t: Target) -> Result<NodeId, String> {
        match t {
            Target::Node(id) if self.inner.slots.lock().unwrap().contains_key(&id) => Ok(id),
            Target::Node(id) if self.is_removed(id) => Err(format!(
                "node {id} was removed from this cluster in an earlier session and is not started (its \
                 directory is kept); this session has nodes {}",
                id_list(&self.node_ids())
            )),
            Target::Node(id) => Err(format!(
                "there is no node {id}: this cluster has nodes {}",
                id_list(&self.node_ids())
            )),
            Target::Leader => self
                .leader()
                .map(|(id, _)| id)
                .ok_or_else(|| "no node leads right now".to_string()),
        }
    }

    /// Records a node's full status (a kind whose driver has one).
    pub(super) fn record_status(&self, id: NodeId, status: &NodeStatus) {
        self.inner.latest.lock().unwrap().insert(id, status.clone());
    }

    /// Records what any kind reports of a node's role and term; a role or term the kind does not report
    /// leaves the node out of the leader's choice (never guessed).
    pub(super) fn record_role(&self, id: NodeId, role: Option<Role>, term: Option<u64>) {
        let (Some(role), Some(term)) = (role, term) else {
            self.inner.roles.lock().unwrap().remove(&id);
            return;
        };
        self.inner.roles.lock().unwrap().insert(id, (role, term));
        if role == Role::Leader {
            let newer = {
                let mut last = self.inner.last_leader.lock().unwrap();
                match *last {
                    Some((l, t)) if l == id => {
                        *last = Some((id, term.max(t)));
                        false
                    }
                    // A deposed leader that has not heard of the new term still says it leads: the term
                    // decides.
                    Some((_, t)) if term < t => false,
                    _ => {
                        *last = Some((id, term));
                        true
                    }
                }
            };
            if newer {
                self.write_cluster_file();
            }
        }
    }

    pub(super) fn forget_status(&self, id: NodeId) {
        self.inner.latest.lock().unwrap().remove(&id);
        self.inner.roles.lock().unwrap().remove(&id);
    }

    /// Stops the workload, the pollers and every node (SIGTERM, then SIGKILL after a grace period).
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        self.inner.disks.heal_all();
        self.inner.procs.shutdown(Duration::from_secs(2)).await;
        for e in self.inner.disks.unmount_all() {
            tracing::warn!(error = %e, "cannot unmount a fault filesystem");
            eprintln!("squall: {e}");
        }
    }

    pub(super) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }
}

/// `1, 2, 3`: node ids for a message.
pub fn id_list(ids: &[NodeId]) -> String {
    let v: Vec<String> = ids.iter().map(u64::to_string).collect();
    v.join(", ")
}

/// The nodes a removal reached, as their processes end. A member a removal reached may end itself (etcd does),
/// or squall stops it; either way its exit is its removal, told once in the feed and never as a crash
/// (tester7 saw `n4 exited with code 2` before `n4 removed: its process stopped`).
#[derive(Debug, Default)]
pub(super) struct Leaving {
    /// Removal asked for, process not ended yet: an exit nobody asked for is its leaving the cluster.
    pub(super) asked: BTreeSet<NodeId>,
    /// Ended on their own once removed: the feed said they left, so nothing more is said of stopping them.
    pub(super) left: BTreeSet<NodeId>,
    /// Out of the configuration, and squall is stopping their process now: the exit is told as the removal.
    pub(super) stopping: BTreeSet<NodeId>,
}

/// The feed's last word on a removal: whether squall stopped the process or it was not running anyway.
pub(super) fn removed_text(n: NodeId, was_running: bool) -> String {
    if was_running {
        format!("n{n} removed: its process stopped (its directory is kept)")
    } else {
        format!("n{n} removed: its process was not running (its directory is kept)")
    }
}
