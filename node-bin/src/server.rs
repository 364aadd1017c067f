//! Drives the consensus core for one node process: ticks, RPCs in and out, persistence, apply, client work.
//!
//! One actor task owns the core and the state machine; everything else talks to it through a channel, so the
//! core is never touched concurrently. Each loop turn takes one input plus whatever else is already queued,
//! then drains the core's `Ready` batches: their writes go to the persist thread (module `persist`), messages
//! go out unless they wait for a term or vote being written, replies are held until what they claim is
//! durable, and committed entries are applied. A slow disk therefore delays acknowledgements, never ticks or
//! heartbeats.
//!
//! A full disk does not stop the node: see the `disk_full` module for what it does instead.
//!
//! The rooms: `open` starts a node (ports, storage, core, tasks); `actor` is the loop that owns the core and
//! drains its work; `persist` writes off the actor (on the persist thread of `durable`, which the Paxos
//! node shares); `timings` measures the write path; `clients` takes client and control work in and answers it when applied; `peers` sends the
//! core's requests to the other nodes; `api` listens on both ports and hands requests to the actor. This file
//! holds what they share: the settings, the actor's inbox and the actor's state.

mod actor;
mod api;
mod clients;
mod disk_full;
mod durable;
mod events;
mod open;
mod patience;
mod peers;
mod persist;
mod timings;

pub mod paxos;
mod teach;
#[cfg(test)]
mod tests;

pub use open::run;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::kv::KvStore;
use crate::raft::{
    AppendEntries, AppendEntriesReply, ConfChange, ConfChangeDone, Config, Index, InstallSnapshot,
    InstallSnapshotReply, MembershipError, NodeId, Raft, Reply, Request, RequestVote,
    RequestVoteReply, Term, TimeoutNow,
};
use crate::rpc::{EventBatch, KvReply, KvRequest, NodeStatus, RpcCounters};
use crate::storage::Storage;
use api::ReplyTo;

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
    /// How to take an empty data directory: a new member, or one that lost its data (`--initial-state`).
    pub initial_state: crate::storage::InitialState,
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
    /// Start in teaching mode: the election and heartbeat timers stand still until thawed (`--frozen`).
    pub frozen: bool,
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
    Vote(RequestVote, ReplyTo<RequestVoteReply>),
    Append(AppendEntries, ReplyTo<AppendEntriesReply>),
    Snapshot(InstallSnapshot, ReplyTo<InstallSnapshotReply>),
    TimeoutNow(TimeoutNow),
    Reply(NodeId, Reply),
    Unreachable(NodeId, Request),
    Client(KvRequest, ReplyTo<KvReply>),
    Status(oneshot::Sender<NodeStatus>),
    Events(u64, u32, oneshot::Sender<EventBatch>),
    Transfer(NodeId, oneshot::Sender<Result<(), String>>),
    ChangeMembership(ConfChange, oneshot::Sender<ConfChangeAnswer>),
    SetPeerAddr(NodeId, SocketAddr, oneshot::Sender<Result<(), String>>),
    /// The write-path timings (module `timings`).
    WritePath(oneshot::Sender<Vec<crate::rpc::StageTiming>>),
    /// The persist thread answered a job (module `persist`).
    Persisted,
    /// An AppendEntries carrying entries was answered after this long (for the write-path timings).
    AppendRoundTrip(Duration),
    /// Teaching mode: freeze or thaw the timers, fire one by hand (see the `teach` module).
    Teach(teach::TeachCmd),
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
    Vote(RequestVoteReply, ReplyTo<RequestVoteReply>),
    Append(AppendEntriesReply, ReplyTo<AppendEntriesReply>),
    Snapshot(InstallSnapshotReply, ReplyTo<InstallSnapshotReply>),
}

struct PendingRead {
    key: String,
    tx: ReplyTo<KvReply>,
    /// Set once leadership is confirmed: serve when applied reaches it.
    index: Option<u64>,
    /// When it arrived; a read not served within [`Node::read_timeout`] is answered `Retry`.
    since: Instant,
}

struct Node {
    cfg: NodeConfig,
    raft: Raft,
    /// Shared with the persist thread, which holds it only while it writes a job.
    storage: Arc<Mutex<Storage>>,
    /// The persist thread and what it has answered.
    pipeline: persist::Pipeline,
    /// Where one write's time goes, for status.
    timings: timings::Timings,
    kv: KvStore,
    last_applied_term: u64,
    last_snapshot_index: u64,
    peers: BTreeMap<NodeId, mpsc::UnboundedSender<peers::Outgoing>>,
    /// Committed entries that follow a snapshot from the leader still being installed: applied once its state
    /// machine is in (module `persist`).
    apply_after_install: Vec<crate::raft::Entry>,
    /// The lowest floor (see `persist::Installing::floor`) seen this turn before a snapshot chunk was taken.
    install_floor: Option<Index>,
    /// Replies made this turn, not yet matched with the writes they depend on.
    fresh: Vec<Held>,
    /// Replies waiting for the job of this number to be durable (0: none).
    held: Vec<(u64, Held)>,
    /// Requests to peers waiting for the job of this number (a term or vote not yet durable).
    deferred: VecDeque<(u64, NodeId, Request)>,
    /// Events of the core waiting for the job of this number: a term or vote is told to observers (the event
    /// feed) only once durable, so a core rebuilt after a full disk never forgets one it announced.
    deferred_events: VecDeque<(u64, crate::raft::RaftEvent)>,
    proposals: HashMap<u64, (u64, ReplyTo<KvReply>)>,
    reads: HashMap<u64, PendingRead>,
    next_read_ctx: u64,
    events: events::EventFeed,
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
    status_waiting: Vec<(u64, oneshot::Sender<NodeStatus>)>,
    /// Status requests of this turn, before the turn's writes were handed over.
    status_fresh: Vec<oneshot::Sender<NodeStatus>>,
    /// The commit index reported at the end of the last turn whose writes all succeeded.
    good_commit: u64,
    /// The lowest commit index status may report: a core restarted after a full disk starts its commit
    /// index at the snapshot, but what was known committed stays committed.
    commit_floor: u64,
    /// The highest commit index status showed in this process: status never shows less (the core's commit
    /// index may cover entries still being written, which a rebuilt core forgets).
    commit_shown: std::cell::Cell<u64>,
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
