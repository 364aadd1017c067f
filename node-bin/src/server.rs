//! Drives the consensus core for one node process: ticks, RPCs in and out, persistence, apply, client work.
//!
//! One actor task owns the core, the storage and the state machine; everything else talks to it through a
//! channel, so the core is never touched concurrently. Each loop turn takes one input plus whatever else is
//! already queued, then drains the core's `Ready` batches: one fsync per batch, then messages out and held
//! replies released (so nothing is acknowledged before it is durable), then apply.
//!
//! A full disk does not stop the node: see the `disk_full` module for what it does instead.

mod disk_full;
mod patience;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use futures::future::BoxFuture;
use tarpc::server::{BaseChannel, Channel};
use tarpc::{ClientMessage, Response, ServerError};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::kv::{KvCommand, KvOp, KvResult, KvStore};
use crate::raft::{
    AppendEntries, AppendEntriesReply, ConfChange, ConfChangeDone, Config, Entry, Index,
    InstallSnapshot, InstallSnapshotReply, MembershipError, NodeId, Payload, Raft, Ready, Reply,
    Request, RequestVote, RequestVoteReply, Restored, Role, Snapshot, SnapshotMeta, Term,
    TimeoutNow,
};
use crate::rpc::{
    self, ClientServiceRequest, ClientServiceResponse, ControlServiceRequest,
    ControlServiceResponse, EventBatch, EventRecord, KvReply, KvRequest, LogCell, NodeEvent,
    NodeStatus, PeerError, PeerServiceRequest, PeerServiceResponse, RpcCounters,
};
use crate::storage::Storage;
use crate::transport::{self, deadline};

/// Everything a node needs to run, already validated.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// Cluster id carried by every peer RPC.
    pub cluster_id: String,
    /// Peer port (Raft traffic).
    pub listen: SocketAddr,
    /// API port (client and control services).
    pub api_listen: SocketAddr,
    /// The other nodes and where to reach their peer ports.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Start with no configuration and wait to be added by a leader (`--join`).
    pub join: bool,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Length of one core tick.
    pub tick: Duration,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// PreVote on.
    pub pre_vote: bool,
    /// CheckQuorum on.
    pub check_quorum: bool,
    /// Take a snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// AppendEntries batches in flight per follower.
    pub max_inflight: usize,
    /// Seed for election timeouts.
    pub seed: u64,
    /// Where to write the bound addresses once listening (JSON), if anywhere.
    pub addr_file: Option<PathBuf>,
}

/// The addresses a running node reports in its address file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BoundAddrs {
    /// Node id.
    pub id: NodeId,
    /// OS process id.
    pub pid: u32,
    /// Peer port.
    pub peer: SocketAddr,
    /// API port.
    pub api: SocketAddr,
}

/// Failures a person must act on, with the exit code the binary uses.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}; choose a free port or 127.0.0.1:0")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which port ("--listen" or "--api-listen").
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory could not be used.
    #[error("cannot use data directory")]
    Storage(#[from] crate::storage::StorageError),
    /// A setting is inconsistent.
    #[error("{0}")]
    Config(String),
}

const EVENT_BUFFER: usize = 20_000;
const LOG_TAIL: usize = 64;

enum Cmd {
    Vote(RequestVote, oneshot::Sender<RequestVoteReply>),
    Append(AppendEntries, oneshot::Sender<AppendEntriesReply>),
    Snapshot(InstallSnapshot, oneshot::Sender<InstallSnapshotReply>),
    TimeoutNow(TimeoutNow),
    Reply(NodeId, Reply),
    Unreachable(NodeId, Request),
    Client(KvRequest, oneshot::Sender<KvReply>),
    Status(oneshot::Sender<NodeStatus>),
    Events(u64, u32, oneshot::Sender<EventBatch>),
    Transfer(NodeId, oneshot::Sender<Result<(), String>>),
    ChangeMembership(ConfChange, oneshot::Sender<ConfChangeAnswer>),
    SetPeerAddr(NodeId, SocketAddr, oneshot::Sender<Result<(), String>>),
}

type ConfChangeAnswer = Result<ConfChangeDone, MembershipError>;

/// A configuration change proposed through this node, answered once its entry commits (or is replaced, or
/// [`rpc::CONF_CHANGE_TIMEOUT`] passes).
struct PendingConfChange {
    index: Index,
    term: Term,
    tx: oneshot::Sender<ConfChangeAnswer>,
    since: Instant,
}

enum Held {
    Vote(RequestVoteReply, oneshot::Sender<RequestVoteReply>),
    Append(AppendEntriesReply, oneshot::Sender<AppendEntriesReply>),
    Snapshot(InstallSnapshotReply, oneshot::Sender<InstallSnapshotReply>),
}

struct PendingRead {
    key: String,
    tx: oneshot::Sender<KvReply>,
    /// Set once leadership is confirmed: serve when applied reaches it.
    index: Option<u64>,
    /// When it arrived; a read not served within [`Node::read_timeout`] is answered `Retry`.
    since: Instant,
}

struct Node {
    cfg: NodeConfig,
    raft: Raft,
    storage: Storage,
    kv: KvStore,
    last_applied_term: u64,
    last_snapshot_index: u64,
    peers: BTreeMap<NodeId, mpsc::UnboundedSender<Request>>,
    held: Vec<Held>,
    proposals: HashMap<u64, (u64, oneshot::Sender<KvReply>)>,
    reads: HashMap<u64, PendingRead>,
    next_read_ctx: u64,
    events: VecDeque<EventRecord>,
    next_event_seq: u64,
    counters: RpcCounters,
    started: Instant,
    /// The core's settings, to restart it from the storage after a full disk.
    core_cfg: Config,
    /// Times the core was restarted after a full disk (varies its seed).
    core_restarts: u64,
    /// Set while the disk is full (the last write failed with ENOSPC): why, as told to clients.
    disk_full: Option<String>,
    /// A local snapshot that did not fit is not tried again before this.
    snapshot_retry_at: Option<Instant>,
    /// Status requests of this turn, answered once its writes are done (so status shows only durable state).
    status_waiting: Vec<oneshot::Sender<NodeStatus>>,
    /// The commit index reported at the end of the last turn whose writes all succeeded.
    good_commit: u64,
    /// The lowest commit index status may report: a core restarted after a full disk starts its commit
    /// index at the snapshot, but what was known committed stays committed.
    commit_floor: u64,
    /// The (term, leader) last logged and recorded, so a core rebuilt after a full disk, which learns the
    /// same leader again, does not report it again.
    leader_announced: Option<(u64, Option<NodeId>)>,
    /// The term of the last election this node won the pre-vote for but could not start (its disk is full),
    /// so that is said once per term.
    campaign_blocked: Option<u64>,
    /// Configuration changes waiting for their entry to commit.
    conf_changes: Vec<PendingConfChange>,
    /// For spawning the sender of a peer added at run time (weak, so the actor's inbox still closes).
    self_tx: mpsc::WeakUnboundedSender<Cmd>,
    /// Deadline of one peer RPC.
    rpc_timeout: Duration,
}

/// Most bytes of entries a leader keeps after a compaction for followers catching up from the log.
pub const CATCH_UP_BYTES: u64 = 64 * 1024 * 1024;

/// The catch-up tail of a node that snapshots every `snapshot_every` entries (see [`crate::raft::CatchUp`]):
/// one snapshot interval of entries, so a follower that stays within one interval of the leader never needs
/// a snapshot and the leader holds at most about twice the entries it held before compacting; and at most
/// [`CATCH_UP_BYTES`] of them, for followers further behind that still replicate from the log, which bounds
/// the memory this costs whatever the entry size.
pub fn catch_up(snapshot_every: u64) -> crate::raft::CatchUp {
    crate::raft::CatchUp {
        entries: snapshot_every,
        bytes: CATCH_UP_BYTES,
    }
}

/// Runs a node until SIGINT/SIGTERM. Errors a person must fix come back as [`StartError`] inside the anyhow
/// error so the binary can choose exit code 2.
pub async fn run(cfg: NodeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    if cfg.peers.contains_key(&cfg.id) {
        return Err(StartError::Config(format!(
            "--peers lists node {} itself; list only the other nodes",
            cfg.id
        ))
        .into());
    }
    let peer_listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: cfg.listen,
            what: "--listen",
            source,
        })?;
    let api_listener =
        TcpListener::bind(cfg.api_listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: cfg.api_listen,
                what: "--api-listen",
                source,
            })?;
    let (storage, recovered) = Storage::open(&cfg.data_dir).map_err(StartError::Storage)?;
    let peer_addr = peer_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let tick_ms = cfg.tick.as_millis().max(1) as u64;
    let ticks = |d: Duration| ((d.as_millis() as u64) / tick_ms).max(1) as u32;
    let core_cfg = Config {
        id: cfg.id,
        peers: cfg.peers.keys().copied().collect(),
        join: cfg.join,
        election_ticks_min: ticks(cfg.election_timeout.0),
        election_ticks_max: ticks(cfg.election_timeout.1).max(ticks(cfg.election_timeout.0) + 1),
        heartbeat_ticks: ticks(cfg.heartbeat),
        pre_vote: cfg.pre_vote,
        check_quorum: cfg.check_quorum,
        max_inflight: cfg.max_inflight.max(1),
        max_batch_entries: 512,
        max_batch_bytes: rpc::MAX_APPEND_BYTES,
        snapshot_chunk_bytes: rpc::SNAPSHOT_CHUNK_BYTES,
        seed: cfg.seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    let kv = match &recovered.snapshot {
        Some(s) => KvStore::restore(&s.data)
            .with_context(|| format!("snapshot in {} is unreadable", cfg.data_dir.display()))?,
        None => KvStore::new(),
    };
    let snapshot_meta = recovered
        .snapshot
        .as_ref()
        .map(|s| s.meta)
        .unwrap_or_default();
    let last_index = recovered
        .entries
        .last()
        .map(|e| e.index)
        .unwrap_or(snapshot_meta.last_index);
    let started_event = NodeEvent::Started {
        term: recovered.hard_state.term,
        last_index,
        snapshot_index: snapshot_meta.last_index,
        empty: recovered.empty,
        truncated_tail_bytes: recovered.truncated_tail_bytes,
    };
    let mut raft = Raft::new(
        core_cfg.clone(),
        Restored {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot.clone(),
            entries: recovered.entries,
        },
    );
    if let Some(cause) = &recovered.lost_data {
        raft.mark_lost_data();
        tracing::warn!(
            term = recovered.hard_state.term,
            "may have lost durable state: {cause}; recovering: not voting, campaigning or counting towards a \
             quorum until a majority of the other voters told their term and a leader of at least that term \
             caught this node up"
        );
    }
    raft.set_catch_up(catch_up(cfg.snapshot_every));

    if let Some(path) = &cfg.addr_file {
        let addrs = BoundAddrs {
            id: cfg.id,
            pid: std::process::id(),
            peer: peer_addr,
            api: api_addr,
        };
        write_atomically(path, &serde_json::to_vec(&addrs)?)
            .with_context(|| format!("writing address file {}", path.display()))?;
    }
    tracing::info!(id = cfg.id, cluster = %cfg.cluster_id, %peer_addr, %api_addr, "node listening");

    let (tx, rx) = mpsc::unbounded_channel::<Cmd>();
    // A peer RPC's deadline: long enough for a slow but working link (hundreds of milliseconds each way), so
    // its answers still count; a dead peer is noticed by the missing answers, not by this deadline.
    let rpc_timeout = (cfg.election_timeout.1 * 4).max(Duration::from_secs(1));
    let mut peers = BTreeMap::new();
    for (&peer, &addr) in &cfg.peers {
        let (ptx, prx) = mpsc::unbounded_channel();
        peers.insert(peer, ptx);
        tokio::spawn(peer_sender(
            peer,
            addr,
            cfg.cluster_id.clone(),
            rpc_timeout,
            prx,
            tx.clone(),
        ));
    }
    tokio::spawn(accept_peers(
        peer_listener,
        cfg.cluster_id.clone(),
        tx.clone(),
    ));
    tokio::spawn(accept_api(api_listener, tx.clone()));

    let self_tx = tx.downgrade();
    let mut node = Node {
        last_applied_term: snapshot_meta.last_term,
        last_snapshot_index: snapshot_meta.last_index,
        cfg,
        raft,
        storage,
        kv,
        peers,
        held: Vec::new(),
        proposals: HashMap::new(),
        reads: HashMap::new(),
        next_read_ctx: 1,
        events: VecDeque::new(),
        next_event_seq: 0,
        counters: RpcCounters::default(),
        started,
        core_cfg,
        core_restarts: 0,
        disk_full: None,
        snapshot_retry_at: None,
        status_waiting: Vec::new(),
        good_commit: 0,
        commit_floor: 0,
        leader_announced: None,
        campaign_blocked: None,
        conf_changes: Vec::new(),
        self_tx,
        rpc_timeout,
    };
    node.record(started_event);
    drop(tx);
    node.run(rx).await
}

impl Node {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    self.handle(cmd);
                    // Take whatever else is queued so one fsync covers the whole batch.
                    for _ in 0..512 {
                        match rx.try_recv() {
                            Ok(cmd) => self.handle(cmd),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    self.raft.tick();
                    self.expire_reads();
                    self.expire_conf_changes();
                }
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    return Ok(());
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT: shutting down");
                    return Ok(());
                }
            }
            self.drain_ready()?;
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Vote(req, tx) => {
                self.counters.vote_in += 1;
                let reply = self.raft.handle_request_vote(req);
                self.held.push(Held::Vote(reply, tx));
            }
            Cmd::Append(req, tx) => {
                self.counters.append_in += 1;
                let reply = self.raft.handle_append_entries(req);
                self.held.push(Held::Append(reply, tx));
            }
            Cmd::Snapshot(req, tx) => {
                self.counters.snapshot_in += 1;
                let reply = self.raft.handle_install_snapshot(req);
                self.held.push(Held::Snapshot(reply, tx));
            }
            Cmd::TimeoutNow(req) => {
                self.counters.timeout_now_in += 1;
                self.raft.handle_timeout_now(req);
            }
            Cmd::Reply(from, reply) => self.raft.handle_reply(from, reply),
            Cmd::Unreachable(peer, req) => {
                self.counters.peer_errors += 1;
                self.raft.report_unreachable(peer, &req);
            }
            Cmd::Client(req, tx) => {
                self.counters.client_in += 1;
                self.client_request(req, tx);
            }
            Cmd::Status(tx) => self.status_waiting.push(tx),
            Cmd::Events(cursor, max, tx) => {
                let _ = tx.send(self.events_from(cursor, max));
            }
            Cmd::Transfer(target, tx) => {
                let _ = tx.send(
                    self.raft
                        .transfer_leadership(target)
                        .map_err(|e| e.to_string()),
                );
            }
            Cmd::ChangeMembership(change, tx) => self.change_membership(change, tx),
            Cmd::SetPeerAddr(id, addr, tx) => {
                let _ = tx.send(self.set_peer_addr(id, addr));
            }
        }
    }

    /// Proposes `change` through the core; the answer waits for the entry to commit (see
    /// [`Node::answer_conf_changes`]).
    fn change_membership(&mut self, change: ConfChange, tx: oneshot::Sender<ConfChangeAnswer>) {
        if let ConfChange::AddLearner(id) = change
            && id != self.cfg.id
            && !self.peers.contains_key(&id)
        {
            let _ = tx.send(Err(MembershipError::NoAddress { id }));
            return;
        }
        match self.raft.propose_conf_change(change) {
            Ok((index, term)) => {
                tracing::info!(%change, index, term, "proposed configuration change");
                self.conf_changes.push(PendingConfChange {
                    index,
                    term,
                    tx,
                    since: Instant::now(),
                });
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    }

    /// Answers configuration changes whose entry was applied: done when it is the entry proposed, refused
    /// (`NotLeader`) when a new leader replaced it.
    fn answer_conf_changes(&mut self, entry: &Entry) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_changes)
            .into_iter()
            .partition(|p| p.index == entry.index);
        self.conf_changes = rest;
        for p in mine {
            let answer = match &entry.payload {
                Payload::Config(config) if entry.term == p.term => Ok(ConfChangeDone {
                    index: entry.index,
                    config: config.clone(),
                }),
                _ => Err(MembershipError::NotLeader {
                    leader: self.raft.leader(),
                }),
            };
            let _ = p.tx.send(answer);
        }
    }

    /// Answers `Timeout` to configuration changes not committed within [`rpc::CONF_CHANGE_TIMEOUT`].
    fn expire_conf_changes(&mut self) {
        let applied = self.kv.applied_index();
        let (expired, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_changes)
            .into_iter()
            .partition(|p| p.since.elapsed() >= rpc::CONF_CHANGE_TIMEOUT || p.index <= applied);
        self.conf_changes = rest;
        for p in expired {
            // An entry at or below the applied index that was not answered was covered by a snapshot from
            // the leader: its outcome is unknown here.
            let _ = p.tx.send(Err(MembershipError::Timeout));
        }
    }

    /// Adds or replaces the sender for peer `id` (a node added at run time, or a moved proxy).
    fn set_peer_addr(&mut self, id: NodeId, addr: SocketAddr) -> Result<(), String> {
        if id == self.cfg.id {
            return Err(format!(
                "node {id} is this node; give the address of another node"
            ));
        }
        if id == 0 {
            return Err("node ids start at 1".into());
        }
        let Some(tx) = self.self_tx.upgrade() else {
            return Err("node is shutting down".into());
        };
        let (ptx, prx) = mpsc::unbounded_channel();
        // Dropping the old sender ends the old task once its queue is empty.
        self.peers.insert(id, ptx);
        self.cfg.peers.insert(id, addr);
        tokio::spawn(peer_sender(
            id,
            addr,
            self.cfg.cluster_id.clone(),
            self.rpc_timeout,
            prx,
            tx,
        ));
        tracing::info!(peer = id, %addr, "peer address set");
        Ok(())
    }

    fn client_request(&mut self, req: KvRequest, tx: oneshot::Sender<KvReply>) {
        if let Err(e) = req.op.check_size() {
            let _ = tx.send(KvReply::TooLarge(e));
            return;
        }
        if !matches!(req.op, KvOp::Get { .. })
            && let Some(refusal) = self.refuse_write()
        {
            let _ = tx.send(refusal);
            return;
        }
        if let KvOp::Get { key } = &req.op {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            match self.raft.read_index(ctx) {
                Ok(()) => {
                    self.reads.insert(
                        ctx,
                        PendingRead {
                            key: key.clone(),
                            tx,
                            index: None,
                            since: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    let _ = tx.send(KvReply::NotLeader {
                        leader: e.leader_hint,
                    });
                }
            }
            return;
        }
        let cmd = KvCommand {
            client_id: req.client_id,
            seq: req.seq,
            op: req.op,
        };
        let command = KvStore::encode_command(&cmd);
        if command.len() > rpc::MAX_COMMAND_BYTES {
            // Unreachable for operations that pass check_size; a last guard for the log's frame budget.
            let _ = tx.send(KvReply::TooLarge(crate::kv::SizeError::Value {
                bytes: cmd.op.value_bytes(),
                limit: rpc::MAX_VALUE_BYTES,
            }));
            return;
        }
        match self.raft.propose(command) {
            Ok((index, term)) => {
                if let Some((_, old)) = self.proposals.insert(index, (term, tx)) {
                    let _ = old.send(KvReply::Retry {
                        reason: "entry was overwritten".into(),
                    });
                }
            }
            Err(e) => {
                let _ = tx.send(KvReply::NotLeader {
                    leader: e.leader_hint,
                });
            }
        }
    }

    /// Answers `Retry` to reads not served in time (their confirmation or the apply they wait for may never
    /// come: a leader cut off from its followers, a heartbeat round lost), so none waits for good.
    fn expire_reads(&mut self) {
        let timeout = self.read_timeout();
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.since.elapsed() >= timeout)
            .map(|(&ctx, _)| ctx)
            .collect();
        for ctx in expired {
            if let Some(read) = self.reads.remove(&ctx) {
                let _ = read.tx.send(KvReply::Retry {
                    reason: format!("read not confirmed within {timeout:?}"),
                });
            }
        }
    }

    /// How long a read may wait for its confirmation and apply: four election timeouts, at least 2 s.
    fn read_timeout(&self) -> Duration {
        (self.cfg.election_timeout.1 * 4).max(Duration::from_secs(2))
    }

    /// Logs the core's warnings, and removes the storage's lost-data marker once the core finished recovering
    /// (called after a turn's writes, so the hard state that records its counted vote is durable first).
    fn log_warnings_and_recovery(&mut self) {
        for warning in self.raft.take_warnings() {
            tracing::warn!("{warning}");
        }
        if !self.raft.recovering()
            && self.storage.lost_data()
            && let Err(e) = self.storage.finish_recovery()
        {
            // The marker stays: the next start recovers again, which is safe.
            tracing::warn!(error = %e, "cannot remove the lost-data marker");
        }
    }

    fn drain_ready(&mut self) -> anyhow::Result<()> {
        let mut written = true;
        while self.raft.has_ready() {
            let ready = self.raft.take_ready();
            if let Err(e) = self.process_ready(ready) {
                // Nothing of this batch is durable; restart the core from what is (module `disk_full`).
                let Some(full) = disk_full::cause(&e) else {
                    return Err(e);
                };
                self.on_disk_full(full)?;
                written = false;
                break;
            }
        }
        if written {
            self.good_commit = self.reported_commit();
            self.log_warnings_and_recovery();
        }
        for tx in std::mem::take(&mut self.status_waiting) {
            let _ = tx.send(self.status());
        }
        // Everything the replies depend on is durable now.
        for held in self.held.drain(..) {
            match held {
                Held::Vote(r, tx) => drop(tx.send(r)),
                Held::Append(r, tx) => drop(tx.send(r)),
                Held::Snapshot(r, tx) => drop(tx.send(r)),
            }
        }
        if self.raft.role() != Role::Leader && !self.proposals.is_empty() {
            for (_, (_, tx)) in self.proposals.drain() {
                let _ = tx.send(KvReply::Retry {
                    reason: "leadership lost before commit".into(),
                });
            }
        }
        Ok(())
    }

    fn process_ready(&mut self, ready: Ready) -> anyhow::Result<()> {
        let Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot,
            messages,
            committed_entries,
            read_states,
            failed_reads,
            events,
        } = ready;
        let wal_bytes = self.storage.wal_bytes();
        self.storage
            .persist(hard_state.as_ref(), truncate_from, &entries)
            .context("persisting log entries")?;
        if self.storage.wal_bytes() != wal_bytes {
            self.disk_wrote();
        }
        if let Some(snapshot) = snapshot {
            self.install_snapshot(snapshot)?;
        }
        for (peer, req) in messages {
            match &req {
                Request::Vote(_) => self.counters.vote_out += 1,
                Request::Append(_) => self.counters.append_out += 1,
                Request::Snapshot(_) => self.counters.snapshot_out += 1,
                Request::TimeoutNow(_) => self.counters.timeout_now_out += 1,
            }
            if let Some(tx) = self.peers.get(&peer) {
                let _ = tx.send(req);
            }
        }
        if let Some(last) = entries.last() {
            self.raft.on_persisted(last.index, last.term);
        }
        for event in events {
            if let crate::raft::RaftEvent::LeaderChanged { leader, term } = event {
                if self.leader_announced == Some((term, leader)) {
                    // A core rebuilt after a full disk learned the leader it already knew: not news.
                    continue;
                }
                self.leader_announced = Some((term, leader));
            }
            log_event(&event);
            self.record(NodeEvent::Raft(event));
        }
        for entry in committed_entries {
            self.apply(entry);
        }
        for rs in read_states {
            if let Some(read) = self.reads.get_mut(&rs.ctx) {
                read.index = Some(rs.index);
            }
        }
        for failed in failed_reads {
            if let Some(read) = self.reads.remove(&failed.ctx) {
                let _ = read.tx.send(KvReply::NotLeader {
                    leader: failed.leader_hint,
                });
            }
        }
        self.serve_reads();
        self.maybe_snapshot()?;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> anyhow::Result<()> {
        // After an installed snapshot the core's log holds nothing past it, so nothing is kept.
        self.storage
            .install_snapshot(&snapshot, &[])
            .context("saving snapshot received from the leader")?;
        self.kv = KvStore::restore(&snapshot.data).context("restoring snapshot from the leader")?;
        self.last_applied_term = snapshot.meta.last_term;
        self.last_snapshot_index = snapshot.meta.last_index;
        tracing::info!(
            index = snapshot.meta.last_index,
            term = snapshot.meta.last_term,
            bytes = snapshot.data.len(),
            "installed snapshot from the leader"
        );
        Ok(())
    }

    fn apply(&mut self, entry: Entry) {
        if entry.index <= self.kv.applied_index() {
            return;
        }
        let config_bytes;
        let bytes: &[u8] = match &entry.payload {
            Payload::Noop => &[],
            Payload::Command(data) => data,
            Payload::Config(c) => {
                config_bytes = bincode::serialize(c).unwrap_or_default();
                &config_bytes
            }
        };
        self.kv.chain_applied(entry.index, entry.term, bytes);
        if !self.conf_changes.is_empty() {
            self.answer_conf_changes(&entry);
        }
        let result = match &entry.payload {
            Payload::Noop | Payload::Config(_) => {
                self.kv.set_applied_index(entry.index);
                None
            }
            Payload::Command(data) => match KvStore::decode_command(data) {
                Ok(cmd) => Some(self.kv.apply(entry.index, &cmd)),
                Err(e) => {
                    self.kv.set_applied_index(entry.index);
                    Some(KvResult::Error(format!("undecodable command: {e}")))
                }
            },
        };
        self.last_applied_term = entry.term;
        if let Some((term, tx)) = self.proposals.remove(&entry.index) {
            let reply = match result {
                Some(r) if term == entry.term => KvReply::Done(r),
                _ => KvReply::Retry {
                    reason: "entry was replaced by a new leader".into(),
                },
            };
            let _ = tx.send(reply);
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.kv.applied_index();
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(&ctx, _)| ctx)
            .collect();
        for ctx in ready {
            if let Some(read) = self.reads.remove(&ctx) {
                let value = self.kv.get(&read.key).map(str::to_owned);
                let _ = read.tx.send(KvReply::Done(KvResult::Value(value)));
            }
        }
    }

    fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        let applied = self.kv.applied_index();
        if self.cfg.snapshot_every == 0
            || applied < self.last_snapshot_index + self.cfg.snapshot_every
            || !self.snapshot_allowed()
        {
            return Ok(());
        }
        let data = self.kv.snapshot();
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: applied,
                last_term: self.last_applied_term,
            },
            data: data.clone(),
            config: Some(self.raft.conf_at(applied)),
        };
        match self.storage.save_snapshot(&snapshot) {
            Err(e @ crate::storage::StorageError::DiskFull { .. }) => {
                self.snapshot_did_not_fit(&e);
                return Ok(());
            }
            saved => saved.context("saving snapshot")?,
        }
        // Only a stored snapshot compacts the core (and is reported as taken).
        self.raft.compact(applied, data);
        self.last_snapshot_index = applied;
        tracing::info!(
            index = applied,
            bytes = snapshot.data.len(),
            "took snapshot"
        );
        Ok(())
    }

    fn record(&mut self, event: NodeEvent) {
        let rec = EventRecord {
            seq: self.next_event_seq,
            at_ms: self.started.elapsed().as_millis() as u64,
            event,
        };
        self.next_event_seq += 1;
        self.events.push_back(rec);
        while self.events.len() > EVENT_BUFFER {
            self.events.pop_front();
        }
    }

    fn events_from(&self, cursor: u64, max: u32) -> EventBatch {
        let oldest = self
            .events
            .front()
            .map(|e| e.seq)
            .unwrap_or(self.next_event_seq);
        let start = cursor.max(oldest);
        let missed = oldest.saturating_sub(cursor);
        let skip = (start - oldest) as usize;
        let events: Vec<EventRecord> = self
            .events
            .iter()
            .skip(skip)
            .take(max.max(1) as usize)
            .cloned()
            .collect();
        let next_cursor = events.last().map(|e| e.seq + 1).unwrap_or(start);
        EventBatch {
            events,
            next_cursor,
            missed,
        }
    }

    fn status(&self) -> NodeStatus {
        let mut core = self.raft.status();
        core.commit_index = self.reported_commit();
        let from = core
            .last_log_index
            .saturating_sub(LOG_TAIL as u64 - 1)
            .max(1);
        let log_tail = self
            .raft
            .entries_from(from, LOG_TAIL)
            .into_iter()
            .map(|e| LogCell {
                index: e.index,
                term: e.term,
                text: match &e.payload {
                    Payload::Noop => "noop".to_string(),
                    Payload::Command(d) => KvStore::describe(d),
                    Payload::Config(c) => format!("config {c}"),
                },
            })
            .collect();
        NodeStatus {
            cluster_id: self.cfg.cluster_id.clone(),
            pid: std::process::id(),
            core,
            applied_index: self.kv.applied_index(),
            applied_hash: u64::from(self.kv.applied_hash()),
            log_tail,
            rpc: self.counters.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            keys: self.kv.len() as u64,
            recovering: self.raft.recovering(),
        }
    }
}

fn log_event(event: &crate::raft::RaftEvent) {
    use crate::raft::RaftEvent as E;
    match event {
        E::RoleChanged { role, term } => tracing::info!(term, "became {}", role.as_str()),
        E::LeaderChanged { leader, term } => tracing::info!(term, ?leader, "leader changed"),
        E::LogTruncated { from_index, count } => {
            tracing::warn!(from_index, count, "truncated conflicting log entries")
        }
        E::SnapshotInstalled { meta } => {
            tracing::info!(index = meta.last_index, "snapshot installed")
        }
        E::QuorumLost { term } => {
            tracing::warn!(term, "lost contact with a majority: stepping down")
        }
        E::ConfigChanged { index, config } => {
            tracing::info!(index, "configuration {config} in effect (appended)")
        }
        E::ConfigCommitted { index, config } => {
            tracing::info!(index, "configuration {config} committed")
        }
        E::Removed { index } => {
            tracing::warn!(
                index,
                "removed from the cluster by the configuration committed at {index}"
            )
        }
        other => tracing::debug!(?other, "raft event"),
    }
}

fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Sends the core's requests to one peer over a tarpc client that is rebuilt (with backoff) after it breaks.
async fn peer_sender(
    peer: NodeId,
    addr: SocketAddr,
    cluster: String,
    rpc_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Request>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let mut client: Option<rpc::PeerServiceClient> = None;
    let broken = Arc::new(AtomicBool::new(false));
    // Snapshot chunks are large: their deadline follows their measured round trips (module `patience`).
    let patience = Arc::new(std::sync::Mutex::new(patience::ChunkPatience::new(
        rpc_timeout,
        rpc_timeout * 10,
    )));
    let mut backoff = Duration::from_millis(20);
    let mut next_attempt = Instant::now();
    while let Some(req) = rx.recv().await {
        if broken.swap(false, Ordering::SeqCst) {
            client = None;
        }
        if client.is_none() {
            if Instant::now() < next_attempt {
                let _ = tx.send(Cmd::Unreachable(peer, req));
                continue;
            }
            match transport::connect_peer(addr, rpc_timeout).await {
                Ok(c) => {
                    client = Some(c);
                    backoff = Duration::from_millis(20);
                }
                Err(e) => {
                    tracing::debug!(peer, %addr, error = %e, "peer unreachable");
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    let _ = tx.send(Cmd::Unreachable(peer, req));
                    continue;
                }
            }
        }
        let Some(c) = client.clone() else { continue };
        let tx = tx.clone();
        let cluster = cluster.clone();
        let broken = broken.clone();
        let patience = patience.clone();
        tokio::spawn(async move {
            let chunk = matches!(req, Request::Snapshot(_));
            let timeout = if chunk {
                patience.lock().expect("never poisoned").deadline()
            } else {
                rpc_timeout
            };
            let sent = Instant::now();
            let ctx = deadline(timeout);
            let outcome: Result<Option<Reply>, String> = match req.clone() {
                Request::Vote(r) => {
                    flatten(c.request_vote(ctx, cluster, r).await).map(|r| Some(Reply::Vote(r)))
                }
                Request::Append(r) => {
                    flatten(c.append_entries(ctx, cluster, r).await).map(|r| Some(Reply::Append(r)))
                }
                Request::Snapshot(r) => flatten(c.install_snapshot(ctx, cluster, r).await)
                    .map(|r| Some(Reply::Snapshot(r))),
                Request::TimeoutNow(r) => {
                    flatten(c.timeout_now(ctx, cluster, r).await).map(|()| None)
                }
            };
            if chunk {
                let mut p = patience.lock().expect("never poisoned");
                match &outcome {
                    Ok(_) => p.answered(sent.elapsed()),
                    Err(e) if e.contains("deadline") => p.timed_out(),
                    Err(_) => {}
                }
            }
            match outcome {
                Ok(Some(reply)) => drop(tx.send(Cmd::Reply(peer, reply))),
                Ok(None) => {}
                Err(e) => {
                    if !e.contains("deadline") {
                        broken.store(true, Ordering::SeqCst);
                    }
                    tracing::debug!(peer, error = %e, "peer RPC failed");
                    let _ = tx.send(Cmd::Unreachable(peer, req));
                }
            }
        });
    }
}

fn flatten<T>(r: Result<Result<T, PeerError>, tarpc::client::RpcError>) -> Result<T, String> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            // A peer that is stopping or whose disk is full drops requests many times a second: not a warning.
            if matches!(e, PeerError::Stopping) {
                tracing::debug!(error = %e, "peer dropped RPC");
            } else {
                tracing::warn!(error = %e, "peer refused RPC");
            }
            Err(e.to_string())
        }
        Err(tarpc::client::RpcError::DeadlineExceeded) => Err("deadline exceeded".into()),
        Err(e) => Err(e.to_string()),
    }
}

type Answer<R> = BoxFuture<'static, R>;

/// Answers with `make` once the actor replies on the oneshot, or with `closed` if it went away.
fn await_actor<T: Send + 'static, R: Send + 'static>(
    rx: oneshot::Receiver<T>,
    ok: impl FnOnce(T) -> R + Send + 'static,
    closed: impl FnOnce() -> R + Send + 'static,
) -> Answer<R> {
    Box::pin(async move {
        match rx.await {
            Ok(v) => ok(v),
            Err(_) => closed(),
        }
    })
}

/// Logs connections that are not squall's (garbage bytes, an unknown service, a connection that sends nothing)
/// with the peer address, at most once a second per port, counting the ones left out, so a flood of junk is
/// visible without flooding the log.
struct JunkLog {
    /// Which port: `peer` or `API`.
    port: &'static str,
    /// When the last line was logged, and how many were left out since.
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl JunkLog {
    const fn new(port: &'static str) -> JunkLog {
        JunkLog {
            port,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    fn note(&self, from: Option<SocketAddr>, why: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if st
            .0
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            st.1 += 1;
            return;
        }
        let left_out = std::mem::take(&mut st.1);
        st.0 = Some(now);
        drop(st);
        let from = from.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        tracing::warn!(
            port = self.port,
            %from,
            left_out,
            "junk connection on the {} port from {from}: {why} ({left_out} more since the last such line)",
            self.port
        );
    }
}

static PEER_JUNK: JunkLog = JunkLog::new("peer");
static API_JUNK: JunkLog = JunkLog::new("API");

async fn accept_peers(listener: TcpListener, cluster: String, tx: mpsc::UnboundedSender<Cmd>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cluster = cluster.clone();
        let tx = tx.clone();
        tokio::spawn(serve_in_order(
            stream,
            move |req: PeerServiceRequest| dispatch_peer(req, &cluster, &tx),
            &PEER_JUNK,
        ));
    }
}

async fn accept_api(listener: TcpListener, tx: mpsc::UnboundedSender<Cmd>) {
    loop {
        let Ok((mut stream, from)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut which = [0u8; 1];
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut which)).await;
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    API_JUNK.note(Some(from), "sent nothing within 5 s");
                    return;
                }
            }
            match which[0] {
                rpc::API_CLIENT => {
                    serve_in_order(
                        stream,
                        move |req: ClientServiceRequest| dispatch_client(req, &tx),
                        &API_JUNK,
                    )
                    .await
                }
                rpc::API_CONTROL => {
                    serve_in_order(
                        stream,
                        move |req: ControlServiceRequest| dispatch_control(req, &tx),
                        &API_JUNK,
                    )
                    .await
                }
                other => API_JUNK.note(
                    Some(from),
                    &format!("asked for an unknown service (first byte {other:#04x})"),
                ),
            }
        });
    }
}

/// Serves one tarpc connection, handing each request to the actor in the order it arrived (so pipelined
/// AppendEntries are not reordered by task scheduling), then waiting for the answer in a task of its own.
/// Bytes that are not a request end the connection and are noted in `junk`.
async fn serve_in_order<Req, Resp, F>(stream: TcpStream, mut dispatch: F, junk: &'static JunkLog)
where
    Req: tarpc::RequestName + Clone + Send + Unpin + 'static + for<'de> serde::Deserialize<'de>,
    Resp: Send + Unpin + 'static + serde::Serialize,
    F: FnMut(Req) -> Answer<Resp>,
{
    let from = stream.peer_addr().ok();
    let transport = transport::framed::<ClientMessage<Req>, Response<Resp>>(stream);
    let mut requests = BaseChannel::with_defaults(transport).requests();
    loop {
        let in_flight = match requests.next().await {
            Some(Ok(r)) => r,
            None => return,
            Some(Err(e)) => {
                // A peer or client that went away resets the connection; anything else is not squall's.
                let io = match &e {
                    tarpc::ChannelError::Read(io) => Some(io.kind()),
                    _ => None,
                };
                if matches!(
                    io,
                    Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput)
                        | Some(std::io::ErrorKind::Other)
                ) {
                    let cause =
                        std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string());
                    junk.note(from, &format!("not a squall request ({cause})"));
                }
                return;
            }
        };
        let answer = dispatch(in_flight.get().message.clone());
        tokio::spawn(
            in_flight.execute(tarpc::server::serve(move |_, _| async move {
                Ok::<_, ServerError>(answer.await)
            })),
        );
    }
}

fn dispatch_peer(
    req: PeerServiceRequest,
    cluster: &str,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<PeerServiceResponse> {
    let wrong = |got: &str| PeerError::WrongCluster {
        expected: cluster.to_string(),
        got: got.to_string(),
    };
    macro_rules! call {
        ($variant:ident, $cmd:ident, $got:expr, $req:expr) => {{
            if $got != cluster {
                let err = wrong(&$got);
                tracing::warn!(error = %err, "refusing peer RPC");
                return Box::pin(async move { PeerServiceResponse::$variant(Err(err)) });
            }
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::$cmd($req, otx));
            await_actor(
                orx,
                |r| PeerServiceResponse::$variant(Ok(r)),
                || PeerServiceResponse::$variant(Err(PeerError::Stopping)),
            )
        }};
    }
    match req {
        PeerServiceRequest::RequestVote { cluster: got, req } => call!(RequestVote, Vote, got, req),
        PeerServiceRequest::AppendEntries { cluster: got, req } => {
            call!(AppendEntries, Append, got, req)
        }
        PeerServiceRequest::InstallSnapshot { cluster: got, req } => {
            call!(InstallSnapshot, Snapshot, got, req)
        }
        PeerServiceRequest::TimeoutNow { cluster: got, req } => {
            if got != cluster {
                let err = wrong(&got);
                return Box::pin(async move { PeerServiceResponse::TimeoutNow(Err(err)) });
            }
            let _ = tx.send(Cmd::TimeoutNow(req));
            Box::pin(async { PeerServiceResponse::TimeoutNow(Ok(())) })
        }
    }
}

fn dispatch_client(
    req: ClientServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ClientServiceResponse> {
    match req {
        ClientServiceRequest::Execute { req } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Client(req, otx));
            await_actor(orx, ClientServiceResponse::Execute, || {
                ClientServiceResponse::Execute(KvReply::Retry {
                    reason: "node is shutting down".into(),
                })
            })
        }
    }
}

fn dispatch_control(
    req: ControlServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ControlServiceResponse> {
    match req {
        ControlServiceRequest::Status {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Status(otx));
            // A node that is shutting down has no status to give: let the deadline speak for it.
            Box::pin(async move {
                match orx.await {
                    Ok(s) => ControlServiceResponse::Status(s),
                    Err(_) => std::future::pending().await,
                }
            })
        }
        ControlServiceRequest::Events { cursor, max } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Events(cursor, max, otx));
            await_actor(orx, ControlServiceResponse::Events, || {
                ControlServiceResponse::Events(EventBatch {
                    events: vec![],
                    next_cursor: 0,
                    missed: 0,
                })
            })
        }
        ControlServiceRequest::TransferLeadership { target } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Transfer(target, otx));
            await_actor(orx, ControlServiceResponse::TransferLeadership, || {
                ControlServiceResponse::TransferLeadership(Err("node is shutting down".into()))
            })
        }
        ControlServiceRequest::ChangeMembership { change } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::ChangeMembership(change, otx));
            // A node that stops before the change commits cannot tell how it ended.
            await_actor(orx, ControlServiceResponse::ChangeMembership, || {
                ControlServiceResponse::ChangeMembership(Err(MembershipError::Timeout))
            })
        }
        ControlServiceRequest::SetPeerAddr { id, addr } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::SetPeerAddr(id, addr, otx));
            await_actor(orx, ControlServiceResponse::SetPeerAddr, || {
                ControlServiceResponse::SetPeerAddr(Err("node is shutting down".into()))
            })
        }
    }
}
