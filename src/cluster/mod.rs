//! Spawns and drives a local cluster: node processes through the chaos supervisor, every peer link through
//! the chaos proxy, status polling, the built-in workload, and actions turned into faults. Everything it
//! learns goes out as [`Stamped`] events; nothing here touches the terminal.

mod check;
pub mod classify;
pub mod clock;
pub mod command;
pub mod disk;
pub mod fault;
mod faultset;
pub mod files;
pub mod guard;
mod guarded;
mod linkv;
pub mod membership;
pub mod outcome;
mod poll;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use squall_chaos::{Fault, Network, ProcessSpec, Supervisor};
use squall_node::client::{ClientError, KvClient};
use squall_node::kv::{KvOp, KvResult};
use squall_node::raft::Role;
use squall_node::rpc::NodeStatus;
use squall_node::server::BoundAddrs;
use tokio::sync::{mpsc, watch};

use crate::state::{Event, HeldView, LinkState, LinkView, ProcessState, Stamped, Verdict};
use command::{Command, DELAY_STEPS_MS, LOSS_STEPS_PCT, NodeId, Target};
use fault::{FaultCmd, FaultKind, FaultTarget};
pub use files::{ClusterFile, NodeEntry};
pub use outcome::Outcome;

/// How to build a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Number of nodes.
    pub nodes: u64,
    /// Cluster directory.
    pub dir: PathBuf,
    /// Program to run for each node.
    pub node_program: PathBuf,
    /// Arguments placed before the node flags (`["node"]` when the program is squall itself).
    pub node_prefix_args: Vec<OsString>,
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
}

struct Slot {
    spec: ProcessSpec,
    addr_file: PathBuf,
    addrs: Option<BoundAddrs>,
    delay_step: usize,
    loss_step: usize,
}

struct Inner {
    spec: ClusterSpec,
    started: Instant,
    sup: Supervisor,
    net: Network,
    events: mpsc::UnboundedSender<Stamped>,
    slots: Mutex<BTreeMap<NodeId, Slot>>,
    latest: Mutex<BTreeMap<NodeId, NodeStatus>>,
    api: watch::Sender<BTreeMap<NodeId, SocketAddr>>,
    workload: workload::Control,
    stop: watch::Sender<bool>,
    faults: Mutex<faultset::FaultSet>,
    disks: disk::Disks,
    clocks: clock::Clocks,
    /// The membership change squall is making now (one at a time), in words.
    change: Mutex<Option<String>>,
    /// The node an `add` or `replace` under way is adding, and its background task (`remove N` cancels it).
    adding: Mutex<Option<(NodeId, tokio::task::AbortHandle)>>,
    /// The nodes started with the session (their flags name each other).
    first: BTreeSet<NodeId>,
    /// Every node id this directory has held, which joined and which were removed (`members.json`).
    roster: Mutex<files::Roster>,
    /// The last leader a poll saw, with its term: written into `cluster.json` so a one-shot `squall kv`
    /// asks it first.
    last_leader: Mutex<Option<(NodeId, u64)>>,
}

/// A running local cluster. Cheap to clone; every clone drives the same cluster.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

fn node_name(id: NodeId) -> String {
    format!("node-{id}")
}

impl Cluster {
    /// Starts every node and proxy, waits until each node listens, and begins polling. Events go to `events`.
    pub async fn start(
        spec: ClusterSpec,
        events: mpsc::UnboundedSender<Stamped>,
    ) -> anyhow::Result<Cluster> {
        let started = Instant::now();
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("cannot create cluster directory {}", spec.dir.display()))?;
        if !spec.node_program.exists() {
            bail!(
                "node binary {} does not exist; build it (cargo build --release) or pass --node-bin PATH",
                spec.node_program.display()
            );
        }
        let shim = if spec.disk_faults {
            squall_chaos::disk::available()?;
            Some(squall_chaos::clock::install_shim(&spec.dir)?)
        } else {
            None
        };
        let sup = Supervisor::new().context("starting the process supervisor")?;
        let net = Network::with_classifier(spec.seed, Arc::new(classify::RaftClassifier));
        // A directory whose membership changed in an earlier session starts its recorded current members,
        // never `-n`'s nodes 1..N over them.
        let roster = match files::Roster::read(&spec.dir).map_err(|e| anyhow!(e))? {
            Some(r) if r.changed() => r,
            Some(_) => files::Roster::initial(spec.nodes),
            None => {
                // A directory from before membership was recorded: nodes beyond -n mean it may have changed.
                let beyond = files::node_dirs_beyond(&spec.dir, spec.nodes);
                if !beyond.is_empty() {
                    bail!(
                        "{} holds node directories beyond -n {} (nodes {}) but no {}: its membership may have \
                         changed and squall cannot tell which nodes are members; use a new --dir",
                        spec.dir.display(),
                        spec.nodes,
                        membership::id_list(&beyond),
                        files::MEMBERS_FILE
                    );
                }
                files::Roster::initial(spec.nodes)
            }
        };
        let ids: Vec<NodeId> = roster.current();
        let node_dirs: Vec<_> = ids
            .iter()
            .map(|&id| (id, spec.dir.join(node_name(id))))
            .collect();
        disk::check_layout(&node_dirs, spec.disk_faults).map_err(|e| anyhow!(e))?;
        if ids.is_empty() {
            bail!(
                "{}: every node of this cluster directory was removed; use a new --dir",
                spec.dir.join(files::MEMBERS_FILE).display()
            );
        }
        let mut proxies = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                if from != to {
                    let addr = net
                        .add_link(from, to)
                        .await
                        .with_context(|| format!("starting the proxy for link {from}->{to}"))?;
                    proxies.insert((from, to), addr);
                }
            }
        }
        let (api, _) = watch::channel(BTreeMap::new());
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            started,
            sup,
            net,
            events,
            slots: Mutex::new(BTreeMap::new()),
            latest: Mutex::new(BTreeMap::new()),
            api,
            workload: workload::Control::new(spec.rate),
            stop,
            faults: Mutex::new(faultset::FaultSet::default()),
            disks: disk::Disks::default(),
            clocks: clock::Clocks::new(shim),
            change: Mutex::new(None),
            adding: Mutex::new(None),
            first: ids.iter().copied().collect(),
            roster: Mutex::new(roster),
            last_leader: Mutex::new(None),
            spec,
        });
        let cluster = Cluster { inner };
        let _ = std::fs::remove_file(cluster.inner.spec.dir.join(files::CLUSTER_FILE));
        cluster.write_roster();
        cluster.emit(Event::SessionStarted {
            cluster_id: cluster.inner.spec.cluster_id.clone(),
            nodes: ids.clone(),
            dir: cluster.inner.spec.dir.display().to_string(),
        });
        if let Err(e) = cluster.start_nodes(&ids, &proxies).await {
            // Stop what did start and unmount any fault filesystem, so nothing outlives the failure.
            cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn start_nodes(
        &self,
        ids: &[NodeId],
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
    ) -> anyhow::Result<()> {
        let cluster = self;
        for &id in ids {
            let joined = cluster.inner.roster.lock().unwrap().joined.contains(&id);
            let slot = cluster.slot_for(id, proxies, joined)?;
            cluster.inner.slots.lock().unwrap().insert(id, slot);
        }
        tokio::spawn(watch_exits(cluster.clone()));
        for &id in ids {
            cluster.emit(Event::Process {
                node: id,
                state: ProcessState::Starting,
            });
            let spec = cluster.inner.slots.lock().unwrap()[&id].spec.clone();
            let pid = cluster
                .inner
                .sup
                .spawn(spec)
                .await
                .with_context(|| format!("starting node {id}"))?;
            cluster.emit(Event::Process {
                node: id,
                state: ProcessState::Running { pid },
            });
        }
        // A node that exits before listening refused its data (a corrupt WAL, a locked directory). The others
        // start without it when they are a majority, so the person can look at it with the cluster up.
        let mut refused = Vec::new();
        for &id in ids {
            if let Err(e) = cluster.await_listening(id).await {
                refused.push((id, e));
            }
        }
        if !refused.is_empty() {
            let running: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|id| !refused.iter().any(|(r, _)| r == id))
                .collect();
            if running.len() * 2 <= ids.len() {
                let why: Vec<String> = refused.iter().map(|(_, e)| format!("{e:#}")).collect();
                bail!(
                    "{}; the nodes that started ({}) are not a majority of {}, so the cluster is not \
                     started: fix or move the data of {}",
                    why.join("\n"),
                    if running.is_empty() {
                        "none".to_string()
                    } else {
                        membership::id_list(&running)
                    },
                    membership::id_list(ids),
                    refused
                        .iter()
                        .map(|(id, _)| format!("node {id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for (id, e) in &refused {
                let log = cluster.inner.slots.lock().unwrap()[id]
                    .spec
                    .log_path
                    .clone();
                let reason = files::last_error(&log).unwrap_or_else(|| format!("{e:#}"));
                cluster.emit(Event::Refused {
                    node: *id,
                    reason,
                    running: running.clone(),
                });
            }
        }
        // Every node is polled, a refused one too: once restarted it is picked up like any other.
        for &id in ids {
            tokio::spawn(poll::poll_node(cluster.clone(), id));
        }
        tokio::spawn(report_links(cluster.clone()));
        tokio::spawn(workload::run(cluster.clone()));
        Ok(())
    }

    /// The process of node `id`: its directory, flags and peers (`proxies` holds at least its outbound links).
    /// With `join` it starts with no configuration and waits for a leader to send it one (a node added at run
    /// time).
    fn slot_for(
        &self,
        id: NodeId,
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
        join: bool,
    ) -> anyhow::Result<Slot> {
        let spec = &self.inner.spec;
        let node_dir = spec.dir.join(node_name(id));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        let data_dir = node_dir.join("data");
        let addr_file = node_dir.join("addr.json");
        // An earlier session's addresses (old ports, old pid) must never be taken for this node's.
        let _ = std::fs::remove_file(&addr_file);
        let mut env = Vec::new();
        if spec.disk_faults {
            // The data directory is a fault filesystem over node-N/disk; the supervisor never wipes a mount
            // point (a wipe goes through the disk), and squall's time shim fakes the node's clocks.
            self.mount_disk(id, &node_dir, &data_dir)
                .with_context(|| format!("disk faults for node {id}"))?;
            env = self.inner.clocks.env(id, &node_dir)?;
        }
        let peers: Vec<String> = proxies
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), addr)| format!("{to}={addr}"))
            .collect();
        let (lo, hi) = spec.election_timeout;
        let mut args = spec.node_prefix_args.clone();
        for a in [
            "--id".to_string(),
            id.to_string(),
            "--cluster-id".into(),
            spec.cluster_id.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--api-listen".into(),
            "127.0.0.1:0".into(),
            "--peers".into(),
            peers.join(","),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--addr-file".into(),
            addr_file.display().to_string(),
            "--election-timeout".into(),
            format!("{}ms..{}ms", lo.as_millis(), hi.as_millis()),
            "--heartbeat".into(),
            format!("{}ms", spec.heartbeat.as_millis()),
            "--snapshot-every".into(),
            spec.snapshot_every.to_string(),
            "--seed".into(),
            spec.seed.wrapping_add(id).to_string(),
        ] {
            args.push(a.into());
        }
        if spec.unsafe_no_fsync {
            args.push("--unsafe-no-fsync".into());
        }
        if join {
            args.push("--join".into());
        }
        Ok(Slot {
            spec: ProcessSpec {
                name: node_name(id),
                program: spec.node_program.clone(),
                args,
                env,
                log_path: node_dir.join("node.log"),
                data_dir: (!spec.disk_faults).then_some(data_dir),
            },
            addr_file,
            addrs: None,
            delay_step: 0,
            loss_step: 0,
        })
    }

    /// Waits for a node's address file, then points its inbound proxies and the pollers at it.
    async fn await_listening(&self, id: NodeId) -> anyhow::Result<()> {
        let (path, log) = {
            let slots = self.inner.slots.lock().unwrap();
            (
                slots[&id].addr_file.clone(),
                slots[&id].spec.log_path.clone(),
            )
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let addrs = loop {
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(addrs) = serde_json::from_slice::<BoundAddrs>(&bytes)
            {
                break addrs;
            }
            if let Some(squall_chaos::ProcState::Exited { code, signal, .. }) =
                self.inner.sup.state(&node_name(id))
            {
                bail!(
                    "node {id} exited before listening (code {code:?}, signal {signal:?}); its log {} ends with:\n{}",
                    log.display(),
                    files::tail(&log, 10)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "node {id} did not start listening within 15 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        self.inner.net.set_upstream(id, addrs.peer);
        self.inner
            .slots
            .lock()
            .unwrap()
            .get_mut(&id)
            .expect("slot")
            .addrs = Some(addrs.clone());
        self.inner.api.send_modify(|m| {
            m.insert(id, addrs.api);
        });
        self.write_cluster_file();
        Ok(())
    }

    fn write_cluster_file(&self) {
        let slots = self.inner.slots.lock().unwrap();
        let file = ClusterFile {
            cluster_id: self.inner.spec.cluster_id.clone(),
            nodes: slots
                .iter()
                .map(|(&id, s)| NodeEntry {
                    id,
                    api: s.addrs.as_ref().map(|a| a.api),
                    peer: s.addrs.as_ref().map(|a| a.peer),
                    pid: s.addrs.as_ref().map(|a| a.pid),
                    log: s.spec.log_path.clone(),
                })
                .collect(),
            leader: self.inner.last_leader.lock().unwrap().map(|(id, _)| id),
        };
        if let Err(e) = file.write(&self.inner.spec.dir) {
            tracing::warn!(error = %e, "cannot write cluster.json");
        }
    }

    /// Rewrites `members.json` from the roster (see [`files::Roster`]).
    fn write_roster(&self) {
        let roster = self.inner.roster.lock().unwrap().clone();
        if let Err(e) = roster.write(&self.inner.spec.dir) {
            tracing::warn!(error = %e, "cannot write members.json");
        }
    }

    /// Records a change to the roster and rewrites `members.json`.
    fn update_roster(&self, f: impl FnOnce(&mut files::Roster)) {
        f(&mut self.inner.roster.lock().unwrap());
        self.write_roster();
    }

    /// Whether node `id`'s removal from the configuration committed (this session or an earlier one).
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.inner.roster.lock().unwrap().removed.contains(&id)
    }

    /// Milliseconds since the session began.
    pub fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    fn emit(&self, event: Event) {
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

    /// The current API addresses.
    pub fn api_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.inner.api.borrow().clone()
    }

    /// The leader and its term, from the latest statuses (the highest term a live node leads in).
    pub fn leader(&self) -> Option<(NodeId, u64)> {
        let latest = self.inner.latest.lock().unwrap();
        latest
            .iter()
            .filter(|(id, s)| s.core.role == Role::Leader && self.alive(**id))
            .map(|(id, s)| (*id, s.core.term))
            .max_by_key(|(_, t)| *t)
    }

    /// The latest status a live node reported to the pollers (none while it is down or not yet polled).
    pub fn status(&self, id: NodeId) -> Option<NodeStatus> {
        self.inner.latest.lock().unwrap().get(&id).cloned()
    }

    fn alive(&self, id: NodeId) -> bool {
        matches!(
            self.inner.sup.state(&node_name(id)),
            Some(squall_chaos::ProcState::Running { .. })
                | Some(squall_chaos::ProcState::Paused { .. })
        )
    }

    /// "leader, term 4" / "follower, term 3" / "" — what a node was when an action hit it.
    fn describe_node(&self, id: NodeId) -> String {
        match self.inner.latest.lock().unwrap().get(&id) {
            Some(s) if self.alive(id) => {
                format!(" ({}, term {})", s.core.role.as_str(), s.core.term)
            }
            _ => String::new(),
        }
    }

    fn resolve(&self, t: Target) -> Result<NodeId, String> {
        match t {
            Target::Node(id) if self.inner.slots.lock().unwrap().contains_key(&id) => Ok(id),
            Target::Node(id) if self.is_removed(id) => Err(format!(
                "node {id} was removed from this cluster in an earlier session and is not started (its \
                 directory is kept); this session has nodes {}",
                membership::id_list(&self.node_ids())
            )),
            Target::Node(id) => Err(format!(
                "there is no node {id}: this cluster has nodes {}",
                membership::id_list(&self.node_ids())
            )),
            Target::Leader => self
                .leader()
                .map(|(id, _)| id)
                .ok_or_else(|| "no node leads right now".to_string()),
        }
    }

    /// Checks the workload's counters as Jepsen checks a counter: a linearizable read (ReadIndex through the
    /// leader) of each must show at least the increments acknowledged before the reads began and at most
    /// those sent by the time they ended. Runs while the workload keeps writing; takes at most a few seconds
    /// when the cluster has no leader.
    pub async fn check(&self) -> (Verdict, String) {
        let before = self.inner.workload.tally();
        let mut client = KvClient::new(self.api_addrs());
        client.op_timeout = Duration::from_secs(3);
        let mut reads = Vec::with_capacity(workload::COUNTERS);
        // Once the cluster does not answer, the remaining counters are not tried (each would wait as long).
        let mut gave_up: Option<String> = None;
        for i in 0..workload::COUNTERS {
            let key = workload::counter_key(&self.inner.workload.session, i);
            let read = match &gave_up {
                Some(why) => Err(why.clone()),
                None => read_counter(&mut client, &key).await.unwrap_or_else(|why| {
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
    async fn check_all(&self) -> (Verdict, String) {
        let lin = linkv::check(self).await;
        let counters_written = self.inner.workload.tally().attempted.iter().any(|&n| n > 0);
        let mut findings = Vec::new();
        if lin.is_none() || counters_written {
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

    /// Performs one command and reports it as an event (`Fault` with its effect, `ActionFailed` with the
    /// refusal, `Checked` with a verdict). Returns what it came to.
    pub async fn perform(&self, cmd: Command) -> Outcome {
        // What is recorded is the console form: a toggle resolved, `leader` kept symbolic; the node it hit
        // is recorded beside it.
        let command = self.resolve_toggle(cmd.clone());
        // The links matrix's toggle that takes a fault away is recorded as `heal ID` and performed as the
        // toggle, so its answer still says what it removed.
        let to_do = match (&cmd, &command) {
            (Command::ToggleFault(_), Command::Heal(_)) => cmd,
            _ => command.clone(),
        };
        let cmd = self.pin_leader(to_do).await;
        let hit = match cmd.target() {
            Some(Target::Node(id)) => Some(id),
            _ => None,
        };
        let asked = command.to_string();
        let outcome = match cmd {
            Command::Check => {
                // Each check's finding is an event of its own (emitted by `check_all`).
                let (verdict, report) = self.check_all().await;
                return Outcome::Verdict { verdict, report };
            }
            Command::Quit => return Outcome::Quit,
            Command::Faults => {
                let mut lines = self.fault_lines();
                // Disk and clock faults have no id (`disk N heal`, `clock N heal` remove them).
                for id in self.node_ids() {
                    for d in self.inner.disks.describe(id) {
                        lines.push(format!("n{id} disk {d} (`disk {id} heal` removes it)"));
                    }
                    if let Some(c) = self.inner.clocks.describe(id) {
                        lines.push(format!("n{id} clock {c} (`clock {id} heal` removes it)"));
                    }
                }
                let summary = match lines.len() {
                    0 => "no fault in force".to_string(),
                    1 => "1 fault in force".to_string(),
                    n => format!("{n} faults in force"),
                };
                return Outcome::Listing {
                    summary,
                    lines,
                    prefix: "faults:",
                };
            }
            Command::Held => {
                let lines: Vec<String> = self
                    .inner
                    .net
                    .held()
                    .iter()
                    .map(|h| {
                        format!(
                            "{} {} {} {}",
                            h.seq,
                            h.link,
                            h.label.as_deref().unwrap_or("other"),
                            h.detail
                        )
                    })
                    .collect();
                return Outcome::Listing {
                    summary: format!("{} frames held", lines.len()),
                    lines,
                    prefix: "held:",
                };
            }
            Command::Links => {
                let lines: Vec<String> = self
                    .inner
                    .net
                    .stats()
                    .iter()
                    .map(|l| {
                        let kinds: Vec<String> = l
                            .by_label
                            .iter()
                            .map(|c| format!("{} {}/{}", c.label, c.frames, c.dropped))
                            .collect();
                        format!(
                            "{} frames {} bytes {} dropped {} duplicated {} delayed {} held-now {} kinds {}",
                            l.link,
                            l.frames_forwarded,
                            l.bytes_forwarded,
                            l.frames_dropped,
                            l.frames_duplicated,
                            l.frames_delayed,
                            l.frames_queued,
                            if kinds.is_empty() { "-".into() } else { kinds.join(",") }
                        )
                    })
                    .collect();
                return Outcome::Listing {
                    summary: format!("{} links (kinds: seen/dropped frames)", lines.len()),
                    lines,
                    prefix: "links:",
                };
            }
            other => match self.admit(&other) {
                Err(why) => Outcome::Refused(why),
                Ok(()) => match self.perform_inner(other).await {
                    Ok(effect) => Outcome::Done(effect),
                    Err(why) => Outcome::Refused(why),
                },
            },
        };
        match &outcome {
            Outcome::Done(effect) => {
                // The links as they are now go first, so the fault's line and its effect on the links arrive
                // together (a replay that lands on the fault shows it in force).
                self.emit(Event::Links {
                    links: self.inner.net.stats().into_iter().map(link_view).collect(),
                });
                self.emit(Event::Performed {
                    command,
                    node: hit,
                    effect: effect.clone(),
                });
            }
            Outcome::Refused(error) => self.emit(Event::ActionFailed {
                action: asked,
                error: error.clone(),
            }),
            _ => {}
        }
        outcome
    }

    async fn perform_inner(&self, cmd: Command) -> Result<String, String> {
        let sup = &self.inner.sup;
        let err = |e: squall_chaos::ChaosError| e.to_string();
        match cmd {
            Command::Kill(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                sup.kill(&node_name(id)).map_err(err)?;
                self.await_exit(id, Duration::from_secs(2)).await;
                Ok(format!("kill node {id}{what}"))
            }
            Command::Terminate(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                sup.terminate(&node_name(id)).map_err(err)?;
                self.await_exit(id, Duration::from_secs(5)).await;
                Ok(format!("terminate node {id}{what}"))
            }
            Command::Pause(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                sup.pause(&node_name(id)).map_err(err)?;
                if let Some(squall_chaos::ProcState::Paused { pid }) = sup.state(&node_name(id)) {
                    self.emit(Event::Process {
                        node: id,
                        state: ProcessState::Paused { pid },
                    });
                }
                Ok(format!("pause node {id}{what}"))
            }
            Command::Resume(t) => {
                let id = self.resolve(t)?;
                sup.resume(&node_name(id)).map_err(err)?;
                if let Some(squall_chaos::ProcState::Running { pid }) = sup.state(&node_name(id)) {
                    self.emit(Event::Process {
                        node: id,
                        state: ProcessState::Running { pid },
                    });
                }
                Ok(format!("resume node {id}"))
            }
            Command::TogglePause(t) => {
                let id = self.resolve(t)?;
                match sup.state(&node_name(id)) {
                    Some(squall_chaos::ProcState::Paused { .. }) => {
                        Box::pin(self.perform_inner(Command::Resume(Target::Node(id)))).await
                    }
                    _ => Box::pin(self.perform_inner(Command::Pause(Target::Node(id)))).await,
                }
            }
            Command::Restart(t) | Command::Wipe(t) => {
                let wipe = matches!(cmd, Command::Wipe(_));
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                self.restart(id, wipe).await.map_err(|e| format!("{e:#}"))?;
                Ok(if wipe {
                    format!(
                        "wipe data of node {id}{what} and restart it empty (it recovers before it votes again)"
                    )
                } else if self.is_removed(id) {
                    // Allowed on purpose: a removed server coming back is a known hazard (Raft thesis §4.2.3)
                    // worth showing; the answer says it is not a member again.
                    format!(
                        "restart node {id}{what} with its data, as a non-member: it was removed from the \
                         configuration, and its pre-votes win nothing (`add` starts a new member)"
                    )
                } else {
                    format!("restart node {id}{what} with its data")
                })
            }
            Command::RestartAll => {
                let ids: Vec<NodeId> = self
                    .node_ids()
                    .into_iter()
                    .filter(|id| !self.is_removed(*id))
                    .collect();
                // All at once, as after a power cut of the whole cluster: no node comes back to find the
                // others still up.
                let results = futures::future::join_all(ids.iter().map(|&id| {
                    let c = self.clone();
                    async move { (id, c.restart(id, false).await) }
                }))
                .await;
                let done: Vec<NodeId> = results
                    .iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|(id, _)| *id)
                    .collect();
                let failed: Vec<String> = results
                    .iter()
                    .filter_map(|(id, r)| r.as_ref().err().map(|e| format!("node {id}: {e:#}")))
                    .collect();
                if failed.is_empty() {
                    Ok(format!(
                        "restart nodes {} with their data",
                        membership::id_list(&done)
                    ))
                } else {
                    Err(format!(
                        "restart all: {}{}",
                        failed.join("; "),
                        if done.is_empty() {
                            String::new()
                        } else {
                            format!(" (nodes {} restarted)", membership::id_list(&done))
                        }
                    ))
                }
            }
            Command::Fault(f) => self.add_fault(f, false),
            Command::ToggleFault(f) => self.add_fault(f, true),
            Command::CycleDelay(t) => {
                let id = self.resolve(t)?;
                let step = {
                    let mut slots = self.inner.slots.lock().unwrap();
                    let slot = slots.get_mut(&id).expect("slot");
                    slot.delay_step = (slot.delay_step + 1) % DELAY_STEPS_MS.len();
                    slot.delay_step
                };
                self.add_fault(
                    FaultCmd::new(
                        FaultTarget::Node(Target::Node(id)),
                        FaultKind::Delay {
                            delay: Duration::from_millis(DELAY_STEPS_MS[step]),
                            jitter: None,
                        },
                    ),
                    false,
                )
            }
            Command::CycleLoss(t) => {
                let id = self.resolve(t)?;
                let step = {
                    let mut slots = self.inner.slots.lock().unwrap();
                    let slot = slots.get_mut(&id).expect("slot");
                    slot.loss_step = (slot.loss_step + 1) % LOSS_STEPS_PCT.len();
                    slot.loss_step
                };
                self.add_fault(
                    FaultCmd::new(
                        FaultTarget::Node(Target::Node(id)),
                        FaultKind::Loss(f64::from(LOSS_STEPS_PCT[step])),
                    ),
                    false,
                )
            }
            Command::Heal(id) => {
                let r = self.heal(id);
                if id.is_none() {
                    for slot in self.inner.slots.lock().unwrap().values_mut() {
                        slot.delay_step = 0;
                        slot.loss_step = 0;
                    }
                }
                if id.is_none() && self.inner.disks.enabled() {
                    let mut healed = self.inner.disks.heal_all();
                    healed.extend(self.inner.clocks.heal_all());
                    healed.sort_unstable();
                    healed.dedup();
                    for node in healed {
                        self.report_node_faults(node);
                    }
                    // Healing a clock never moves its monotonic clock back (`clock.rs`), so this stalls no node.
                    return r.map(|t| {
                        format!(
                            "{t}; every disk and clock fault healed (wall clocks true again; monotonic \
                             clocks run on, never back)"
                        )
                    });
                }
                r
            }
            Command::Step(ref t, n) | Command::DropHeld(ref t, n) => {
                let deliver = matches!(cmd, Command::Step(..));
                let links = self.links_for(t)?;
                let out = if deliver {
                    self.inner.net.step(|l| links.contains(&l), n)
                } else {
                    self.inner.net.drop_held(|l| links.contains(&l), n)
                };
                if out.is_empty() {
                    return Err(format!("no frame is held on {t}; `held` lists what is"));
                }
                let verb = if deliver { "deliver" } else { "drop" };
                let items: Vec<String> = out
                    .iter()
                    .map(|s| {
                        let lost = if deliver && !s.delivered {
                            " (lost: its connection closed)"
                        } else {
                            ""
                        };
                        format!(
                            "{} {} {}{lost}",
                            s.frame.link,
                            s.frame.label.as_deref().unwrap_or("other"),
                            s.frame.detail
                        )
                    })
                    .collect();
                Ok(format!("{verb} {}", items.join("; ")))
            }
            Command::Release(t) => {
                let links = self.links_for(&t)?;
                // Ending a hold delivers what it held, so count the frames before either happens.
                let held = self
                    .inner
                    .net
                    .held()
                    .iter()
                    .filter(|h| links.contains(&h.link))
                    .count();
                let ended = self.end_holds_on(&t);
                let out = self.inner.net.release(|l| links.contains(&l));
                if held == 0 && out.is_empty() && ended.is_empty() {
                    return Err(format!(
                        "no frame is held on {t} and no hold covers it; `held` lists what is"
                    ));
                }
                Ok(format!(
                    "release {} held frame{} on {t}{}",
                    held.max(out.len()),
                    if held.max(out.len()) == 1 { "" } else { "s" },
                    if ended.is_empty() {
                        String::new()
                    } else {
                        format!(" and end {}", ended.join(", "))
                    }
                ))
            }
            Command::Transfer(t) => {
                let id = self.resolve(t)?;
                let (leader, term) = self.ask_leader().await.ok_or("no node leads right now")?;
                if leader == id {
                    return Err(format!("node {id} already leads term {term}"));
                }
                let addr = self
                    .api_addrs()
                    .get(&leader)
                    .copied()
                    .ok_or("leader address unknown")?;
                let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
                    .await
                    .map_err(|e| format!("cannot reach leader {leader}: {e}"))?;
                client
                    .transfer_leadership(
                        squall_node::transport::deadline(Duration::from_secs(2)),
                        id,
                    )
                    .await
                    .map_err(|e| format!("leader {leader} did not answer: {e}"))??;
                let c = self.clone();
                tokio::spawn(async move { c.follow_transfer(id, leader, term).await });
                Ok(format!(
                    "transfer leadership from node {leader} (term {term}) to node {id}"
                ))
            }
            Command::Workload(on) => {
                let on = self.inner.workload.set(on);
                Ok(format!(
                    "workload {} at {} writes/s",
                    if on { "on" } else { "off" },
                    self.inner.workload.rate()
                ))
            }
            Command::WorkloadRate(r) => {
                self.inner.workload.set_rate(r);
                Ok(format!("workload rate {r} writes/s"))
            }
            Command::SetWorkloadKind(kind) => {
                let kind = self.inner.workload.set_kind(kind);
                self.emit(Event::WorkloadKind { kind });
                Ok(match kind {
                    crate::state::WorkloadKind::Counter => {
                        "workload counter: increments of 8 counters".to_string()
                    }
                    crate::state::WorkloadKind::LinKv => format!(
                        "workload lin-kv: {} clients, reads, writes and cas on {} keys, history recorded",
                        linkv::CLIENTS,
                        linkv::KEYS
                    ),
                })
            }
            Command::WorkloadStep(up) => {
                let r = self.inner.workload.step(up);
                Ok(format!("workload rate {r} writes/s"))
            }
            Command::PowerCut(..) | Command::Disk(..) => self.perform_disk(cmd).await,
            Command::Add
            | Command::AddLearner
            | Command::Remove(_)
            | Command::Replace(_)
            | Command::Promote(_)
            | Command::Demote(_) => self.perform_membership(cmd).await,
            Command::Clock(..) => self.perform_clock(cmd).await,
            // Answered by `perform` itself (listings, verdicts) or by the caller (status, quit).
            Command::Status
            | Command::Check
            | Command::Quit
            | Command::Faults
            | Command::Held
            | Command::Links => Ok(String::new()),
        }
    }

    async fn restart(&self, id: NodeId, wipe: bool) -> anyhow::Result<()> {
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Restarting { wipe },
        });
        let addr_file = self.inner.slots.lock().unwrap()[&id].addr_file.clone();
        let _ = std::fs::remove_file(&addr_file);
        if wipe && self.inner.disks.enabled() {
            self.wipe_disk(id).await?;
        }
        let pid = self
            .inner
            .sup
            .restart(&node_name(id), wipe)
            .await
            .map_err(|e| anyhow!("restarting node {id}: {e}"))?;
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Running { pid },
        });
        self.await_listening(id).await?;
        // Its flags name only the nodes that existed when it was first started.
        self.tell_peer_addrs(id).await;
        Ok(())
    }

    fn record_status(&self, id: NodeId, status: &NodeStatus) {
        self.inner.latest.lock().unwrap().insert(id, status.clone());
        if status.core.role == Role::Leader {
            let newer = {
                let mut last = self.inner.last_leader.lock().unwrap();
                let term = status.core.term;
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

    fn forget_status(&self, id: NodeId) {
        self.inner.latest.lock().unwrap().remove(&id);
    }

    /// Stops the workload, the pollers and every node (SIGTERM, then SIGKILL after a grace period).
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        self.inner.disks.heal_all();
        self.inner.sup.shutdown(Duration::from_secs(2)).await;
        for e in self.inner.disks.unmount_all() {
            tracing::warn!(error = %e, "cannot unmount a fault filesystem");
            eprintln!("squall: {e}");
        }
    }

    fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }
}

/// One workload counter read linearizably: its count, or why it holds no count; `Err` when the cluster did not
/// answer at all.
async fn read_counter(client: &mut KvClient, key: &str) -> Result<Result<u64, String>, String> {
    match client
        .execute(KvOp::Get {
            key: key.to_string(),
        })
        .await
    {
        Ok(KvResult::Value(None)) => Ok(Ok(0)),
        Ok(KvResult::Value(Some(v))) => Ok(v
            .parse::<u64>()
            .map_err(|_| format!("holds {v:?}, not a count: was it written by hand?"))),
        Ok(other) => Ok(Err(format!("unexpected answer {other:?}"))),
        Err(ClientError::Unavailable { waited, .. }) => Err(format!(
            "no leader answered within {}",
            crate::units::duration(waited)
        )),
        Err(other) => Err(other.to_string()),
    }
}

async fn watch_exits(cluster: Cluster) {
    let mut exits = cluster.inner.sup.exits();
    let mut stop = cluster.stopping();
    loop {
        tokio::select! {
            exit = exits.recv() => {
                let exit = match exit {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(id) = exit.name.strip_prefix("node-").and_then(|s| s.parse::<NodeId>().ok()) else {
                    continue;
                };
                cluster.forget_status(id);
                let state = if exit.signal.as_deref() == Some("SIGKILL") && exit.expected {
                    ProcessState::Killed { pid: exit.pid }
                } else {
                    // An exit nobody asked for: say why, in the node's own words, where it logged them.
                    let failed = !exit.expected && exit.code != Some(0);
                    let reason = if failed {
                        let log = cluster.inner.slots.lock().unwrap().get(&id).map(|s| s.spec.log_path.clone());
                        log.and_then(|p| files::last_error(&p))
                    } else {
                        None
                    };
                    ProcessState::Exited { pid: exit.pid, code: exit.code, signal: exit.signal.clone(), reason }
                };
                cluster.emit(Event::Process { node: id, state });
            }
            _ = stop.changed() => return,
        }
    }
}

async fn report_links(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let mut last_held: Vec<HeldView> = Vec::new();
    let mut last: Vec<LinkView> = Vec::new();
    let mut last_sent = Instant::now() - Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => return,
        }
        let held: Vec<HeldView> = cluster
            .inner
            .net
            .held()
            .into_iter()
            .map(|h| HeldView {
                seq: h.seq,
                from: h.link.from,
                to: h.link.to,
                kind: h.label,
                detail: h.detail,
            })
            .collect();
        if held != last_held {
            cluster.emit(Event::Held {
                frames: held.clone(),
            });
            last_held = held;
        }
        let links: Vec<LinkView> = cluster
            .inner
            .net
            .stats()
            .into_iter()
            .map(link_view)
            .collect();
        let states_changed =
            links.len() != last.len() || links.iter().zip(&last).any(|(a, b)| a.state != b.state);
        if states_changed || (links != last && last_sent.elapsed() >= Duration::from_secs(1)) {
            cluster.emit(Event::Links {
                links: links.clone(),
            });
            last = links;
            last_sent = Instant::now();
        }
    }
}

/// What the links matrix shows of a link: the strongest fault on it (a cut over a hold over a delay over a
/// loss over anything else; a fault limited to some message kinds shows as "shaped"), and its counters.
fn link_view(s: squall_chaos::LinkStats) -> LinkView {
    let rank = |st: LinkState| match st {
        LinkState::Cut => 5,
        LinkState::Held => 4,
        LinkState::Delayed(_) => 3,
        LinkState::Lossy(_) => 2,
        LinkState::Shaped => 1,
        LinkState::Ok => 0,
    };
    let mut state = LinkState::Ok;
    for f in &s.faults {
        let this = match &f.fault {
            _ if f.filter.is_some() => LinkState::Shaped,
            Fault::Blackhole | Fault::Reset => LinkState::Cut,
            Fault::Loss { p } if *p >= 1.0 => LinkState::Cut,
            Fault::Loss { p } => LinkState::Lossy((p * 100.0).round() as u8),
            Fault::Latency { base, .. } => LinkState::Delayed(base.as_millis() as u32),
            Fault::Hold => LinkState::Held,
            Fault::Duplicate { .. } | Fault::Reorder { .. } | Fault::Bandwidth { .. } => {
                LinkState::Shaped
            }
        };
        // Two delays on one link add up, as the proxy applies them.
        state = match (state, this) {
            (LinkState::Delayed(a), LinkState::Delayed(b)) => LinkState::Delayed(a + b),
            (a, b) if rank(b) > rank(a) => b,
            (a, _) => a,
        };
    }
    LinkView {
        from: s.link.from,
        to: s.link.to,
        state,
        frames: s.frames_forwarded,
        bytes: s.bytes_forwarded,
        dropped: s.frames_dropped,
        kinds: s
            .by_label
            .iter()
            .map(|c| (c.label.clone(), c.frames))
            .collect(),
        duplicated: s.frames_duplicated,
        delayed: s.frames_delayed,
    }
}
