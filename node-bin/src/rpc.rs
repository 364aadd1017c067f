//! The wire: tarpc service traits and the types they carry, shared by the node and the orchestrator.
//!
//! A node listens on two ports. The *peer* port (`--listen`) serves [`PeerService`]; in squall every peer link runs
//! through the chaos proxy, which understands tarpc's length-delimited framing. The *API* port (`--api-listen`)
//! serves both [`ClientService`] and [`ControlService`]: a connection's first byte names the service ([`API_CLIENT`] or
//! [`API_CONTROL`]), the rest is tarpc.

use serde::{Deserialize, Serialize};

use crate::kv::{KvOp, KvResult};
/// What a fired election timer started (teaching mode's `timeout N`).
pub use crate::raft::Campaign;
use crate::raft::types::{
    AppendEntries, AppendEntriesReply, ConfChange, CoreStatus, Index, InstallSnapshot,
    InstallSnapshotReply, NodeId, RaftEvent, RequestVote, RequestVoteReply, Role, Term, TimeoutNow,
};
/// The membership types the control service carries (defined beside the core, which produces them).
pub use crate::raft::types::{ConfChangeDone, MembershipError};

/// Largest frame either side accepts (set explicitly on every transport), client and peer links alike.
///
/// The budget, so that every write a node accepts can be replicated: a command is at most
/// [`MAX_COMMAND_BYTES`] (about 1 MiB); an AppendEntries carries entries up to [`MAX_APPEND_BYTES`] in all, or
/// one entry alone when that entry is bigger, so its entries never exceed about 1 MiB plus 24 bytes per entry;
/// a snapshot chunk is [`SNAPSHOT_CHUNK_BYTES`]. The frame limit is eight times that: the margin,
/// [`PEER_FRAME_MARGIN_BYTES`], covers the message header, bincode's per-entry framing and tarpc's envelope
/// many times over. A client request bigger than a command can be is still read whole (up to this limit) so
/// the node can refuse it with a clear error instead of a broken connection.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Largest snapshot chunk sent in one InstallSnapshot, well below [`MAX_FRAME_BYTES`].
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;
/// Largest total payload of one AppendEntries batch (a single larger entry is sent alone).
pub const MAX_APPEND_BYTES: usize = 1024 * 1024;
/// Largest key a write or read may name, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value a write may carry, in bytes (for compare-and-swap: the expected and new values together).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest encoded command a node accepts into its log: the largest key and value plus room for the client
/// id, sequence number and operation tag. Enforced where a write enters (the leader's client service).
pub const MAX_COMMAND_BYTES: usize = MAX_VALUE_BYTES + MAX_KEY_BYTES + 256;
/// What a frame holding the largest AppendEntries still leaves free under [`MAX_FRAME_BYTES`]: the largest
/// batch is one command (or [`MAX_APPEND_BYTES`] of entries), plus 24 bytes of index, term and tag.
pub const PEER_FRAME_MARGIN_BYTES: usize = MAX_FRAME_BYTES - (MAX_COMMAND_BYTES + 24);
const _: () = assert!(MAX_COMMAND_BYTES >= MAX_APPEND_BYTES);
const _: () = assert!(PEER_FRAME_MARGIN_BYTES >= 4 * 1024 * 1024);
const _: () = assert!(SNAPSHOT_CHUNK_BYTES + 4 * 1024 * 1024 <= MAX_FRAME_BYTES);
/// How long a node waits for a configuration change it proposed to commit before answering
/// [`MembershipError::Timeout`] (outcome unknown). A change needs a majority of the current configuration,
/// so under a partition it waits; ten seconds covers many elections and a slow snapshot-free catch-up.
/// A `change_membership` caller should set a deadline above this.
pub const CONF_CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// First byte of an API connection that wants the [`ClientService`] service.
pub const API_CLIENT: u8 = b'C';
/// First byte of an API connection that wants the [`ControlService`] service.
pub const API_CONTROL: u8 = b'K';

/// Why a peer refused an RPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PeerError {
    /// The caller belongs to another cluster.
    #[error("RPC from cluster {got:?} refused by a node of cluster {expected:?}")]
    WrongCluster {
        /// This node's cluster id.
        expected: String,
        /// The caller's.
        got: String,
    },
    /// The node is shutting down, or dropped the request unanswered because its answer depended on a write
    /// that failed (a full disk; see the server's `disk_full` module).
    #[error("node is shutting down or could not store what its answer needs (disk full)")]
    Stopping,
}

/// Raft traffic between nodes. Every call carries the caller's cluster id.
#[tarpc::service(derive = [Clone, serde::Serialize, serde::Deserialize])]
pub trait PeerService {
    /// RequestVote, or a pre-vote when `req.pre_vote`.
    async fn request_vote(cluster: String, req: RequestVote)
    -> Result<RequestVoteReply, PeerError>;
    /// AppendEntries or heartbeat.
    async fn append_entries(
        cluster: String,
        req: AppendEntries,
    ) -> Result<AppendEntriesReply, PeerError>;
    /// One chunk of a snapshot.
    async fn install_snapshot(
        cluster: String,
        req: InstallSnapshot,
    ) -> Result<InstallSnapshotReply, PeerError>;
    /// Start an election now (leadership transfer).
    async fn timeout_now(cluster: String, req: TimeoutNow) -> Result<(), PeerError>;
}

/// Multi-Paxos traffic between nodes run with `--protocol paxos`: one-way messages, batched per call (the answer
/// only says the batch was taken; Paxos's own answers are messages the other way). Every call carries the
/// caller's cluster id and its node id.
#[tarpc::service(derive = [Clone, serde::Serialize, serde::Deserialize])]
pub trait PaxosPeerService {
    /// Messages from node `from`, in the order it sent them.
    async fn paxos(
        cluster: String,
        from: NodeId,
        messages: Vec<crate::paxos::Message>,
    ) -> Result<(), PeerError>;
}

/// One client operation. `(client_id, seq)` makes a retried write apply once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    /// Chosen at random by each client.
    pub client_id: u64,
    /// Increases by one per operation of that client.
    pub seq: u64,
    /// What to do.
    pub op: KvOp,
}

/// The answer to a [`KvRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    /// Done (committed and applied, or read linearizably).
    Done(KvResult),
    /// This node does not lead; try the hinted leader.
    NotLeader {
        /// Leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The outcome is unknown or the node could not serve it now (leadership lost mid-way, timeout):
    /// retry the same request (same client id and seq) — it applies at most once.
    Retry {
        /// Why.
        reason: String,
    },
    /// Refused without being logged: the key or value exceeds its limit. Retrying cannot help.
    TooLarge(crate::kv::SizeError),
}

/// Client access to the replicated key-value store.
#[tarpc::service(derive = [Clone, serde::Serialize, serde::Deserialize])]
pub trait ClientService {
    /// Run one operation: writes through the log, reads through ReadIndex.
    async fn execute(req: KvRequest) -> KvReply;
}

/// One cell of the log tail shown by the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCell {
    /// Index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// Short text of the command ("put k=v", "noop").
    pub text: String,
}

/// RPCs handled and sent, by type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcCounters {
    /// RequestVote received (including pre-votes).
    pub vote_in: u64,
    /// RequestVote sent.
    pub vote_out: u64,
    /// AppendEntries received.
    pub append_in: u64,
    /// AppendEntries sent.
    pub append_out: u64,
    /// InstallSnapshot chunks received.
    pub snapshot_in: u64,
    /// InstallSnapshot chunks sent.
    pub snapshot_out: u64,
    /// TimeoutNow received.
    pub timeout_now_in: u64,
    /// TimeoutNow sent.
    pub timeout_now_out: u64,
    /// Client operations received.
    pub client_in: u64,
    /// Outgoing peer RPCs that failed (timeout, connection refused).
    pub peer_errors: u64,
    /// Answers received to the peer RPCs this node sent (vote, append and snapshot replies): most of what a
    /// leader receives. 0 in event logs written before it existed.
    #[serde(default)]
    pub reply_in: u64,
}

/// A node's full status, as the orchestrator polls it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Cluster id.
    pub cluster_id: String,
    /// OS process id.
    pub pid: u32,
    /// The consensus core's view.
    pub core: CoreStatus,
    /// Highest index applied to the state machine.
    pub applied_index: Index,
    /// A hash chained over every entry applied up to `applied_index` (CRC-32 of index, term and payload,
    /// each seeded with the previous value): equal on two replicas exactly when they applied the same
    /// entries, up to CRC collisions. 0 in event logs written before it existed.
    #[serde(default)]
    pub applied_hash: u64,
    /// The last entries of the log (up to 64), oldest first.
    pub log_tail: Vec<LogCell>,
    /// RPC counters.
    pub rpc: RpcCounters,
    /// Milliseconds since the node process started.
    pub uptime_ms: u64,
    /// Number of keys in the store.
    pub keys: u64,
    /// The node may have lost durable state (wiped, a damaged WAL record cut, an unfinished recovery) and is
    /// recovering: it does not vote, campaign or count towards a quorum until it has learned the current term
    /// from every other voter and been caught up by a leader (`raft::recovery`). False in
    /// event logs written before it existed.
    #[serde(default)]
    pub recovering: bool,
    /// What a recovering node waits for before it votes again ("waiting for n5's term"); `None` when it is
    /// not recovering, and in event logs written before it existed.
    #[serde(default)]
    pub recovery_wait: Option<crate::raft::RecoveryWait>,
    /// The recoveries this process finished and how the latest ended (a leader caught it up, or every other
    /// member vouched for its log); `None` before the first, and in event logs written before it existed.
    #[serde(default)]
    pub recovered: Option<crate::raft::Recovered>,
    /// Index of the oldest entry the node still holds in its log: after a compaction, the start of the
    /// catch-up tail it keeps for followers a little behind (`raft::CatchUp`); a follower whose next entry is
    /// at or after it catches up from the log, one further behind needs the snapshot. `last_log_index + 1`
    /// when the log holds no entry; 0 in event logs written before it existed.
    #[serde(default)]
    pub first_log_index: Index,
    /// Teaching mode: the node's election and heartbeat timers stand still (`freeze`). False in event logs
    /// written before it existed.
    #[serde(default)]
    pub frozen: bool,
    /// Milliseconds until the node's election timer runs out (its ticks left times the tick length); `None`
    /// on a leader, on a node that never campaigns now, and in event logs written before it existed. It
    /// does not move while the node is frozen.
    #[serde(default)]
    pub election_due_ms: Option<u64>,
    /// What a Paxos node (`--protocol paxos`) shows beyond the Raft-shaped fields, for its dashboard and its
    /// invariants; `None` from a Raft node, and in event logs written before it existed.
    #[serde(default)]
    pub paxos: Option<PaxosView>,
}

impl NodeStatus {
    /// The node's term as people read it: `4`, or on a Paxos node its promised ballot as `round.proposer`
    /// (`1.3`), never the packed number the `term` field carries.
    pub fn term_label(&self) -> String {
        match &self.paxos {
            Some(p) => p.promised.to_string(),
            None => self.core.term.to_string(),
        }
    }

    /// The term with its word: `term 4`, or `ballot 1.3` on a Paxos node.
    pub fn term_text(&self) -> String {
        match &self.paxos {
            Some(_) => format!("ballot {}", self.term_label()),
            None => format!("term {}", self.core.term),
        }
    }
}

/// A Paxos node's own view in its [`NodeStatus`]: its ballots as ballots (the Raft-shaped `term` carries the
/// promise packed into one number, [`crate::paxos::Ballot::pack`]) and the ballot of each value it accepted in
/// its latest slots, so the orchestrator can check that no acceptor accepts below its promise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaxosView {
    /// The highest ballot promised (its own while it proposes).
    pub promised: crate::paxos::Ballot,
    /// The ballot of the leader it follows (its own when leading), if it follows one.
    pub leader_ballot: Option<crate::paxos::Ballot>,
    /// Its latest accepted slots (up to 64, after its snapshot), oldest first: each slot and the ballot of the
    /// value it holds there.
    pub accepted: Vec<(crate::paxos::Slot, crate::paxos::Ballot)>,
    /// Whether the distinguished proposer's leases are on.
    pub leases: bool,
    /// The first slot `accepted` covers: a slot from here to the node's last slot that `accepted` does not list
    /// holds no accepted value on this node (a gap, which a new leader fills with a no-op). 0 in event logs
    /// written before it existed: gaps are then not told apart from slots not reported.
    #[serde(default)]
    pub accepted_from: crate::paxos::Slot,
    /// Slots above the chosen prefix (the status's `commit_index`) this node knows chosen, ascending, up to 64:
    /// a leader learns a later slot chosen before an earlier one when acceptors answer out of order. Empty in
    /// event logs written before it existed.
    #[serde(default)]
    pub chosen_above: Vec<crate::paxos::Slot>,
}

impl PaxosView {
    /// The ballot this node accepted a value with at `slot`, if `accepted` lists the slot.
    pub fn accepted_at(&self, slot: crate::paxos::Slot) -> Option<crate::paxos::Ballot> {
        self.accepted
            .binary_search_by_key(&slot, |(s, _)| *s)
            .ok()
            .map(|i| self.accepted[i].1)
    }
}

/// Something that happened on a node, for the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeEvent {
    /// The process started; what it found on disk.
    Started {
        /// Term restored from disk.
        term: Term,
        /// Last log index restored.
        last_index: Index,
        /// Snapshot index restored.
        snapshot_index: Index,
        /// True when the data directory was empty (new node or data loss).
        empty: bool,
        /// Bytes of torn or corrupt WAL tail truncated on start.
        truncated_tail_bytes: u64,
        /// True when the bytes cut were a damaged complete record (which may have been acknowledged), not
        /// a torn final write; `false` in logs from before the field.
        #[serde(default)]
        damaged_tail: bool,
    },
    /// From the consensus core.
    Raft(RaftEvent),
    /// A write failed because the disk is full (ENOSPC or EDQUOT), and what the node gave up because of it.
    /// Reported when the disk fills, and again for each leadership it gives up and each election (term) it
    /// won the pre-vote for but could not start; not for every retry while it stays full.
    DiskFull {
        /// The role the node had when the write failed: a `leader` steps down (a leader that cannot append
        /// cannot commit); a `candidate` had won its pre-vote but cannot store its term and vote, so it does
        /// not start the election; any other role keeps following and retries.
        role: Role,
        /// Its term then (a candidate's: the term it would campaign in).
        term: Term,
        /// The failed write: the file and the error.
        reason: String,
    },
    /// From the Multi-Paxos core (a node run with `--protocol paxos`). Appended last so the encoding of the
    /// older variants is unchanged.
    Paxos(crate::paxos::PaxosEvent),
}

/// An event with its place in the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in this process's feed (starts at 0 for each process).
    pub seq: u64,
    /// Milliseconds since the node process started.
    pub at_ms: u64,
    /// What happened.
    pub event: NodeEvent,
}

/// A page of the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Events with `seq >= cursor`, oldest first.
    pub events: Vec<EventRecord>,
    /// The cursor to pass next time.
    pub next_cursor: u64,
    /// Events older than the node still keeps that the caller missed (0 when none were lost).
    pub missed: u64,
}

/// For the orchestrator: status, the event feed, leadership transfer.
#[tarpc::service(derive = [Clone, serde::Serialize, serde::Deserialize])]
pub trait ControlService {
    /// The node's status now.
    async fn status() -> NodeStatus;
    /// Events from `cursor` on (at most `max`).
    async fn events(cursor: u64, max: u32) -> EventBatch;
    /// Ask this node, if it leads, to hand leadership to `target`.
    async fn transfer_leadership(target: NodeId) -> Result<(), String>;
    /// Ask this node, if it leads, to make one configuration change. Answers once the change is COMMITTED
    /// (or refused; `Err(Timeout)` after a bound set by the node, and the outcome is then unknown). Call
    /// it with a deadline longer than that bound (see `server::CONF_CHANGE_TIMEOUT`).
    async fn change_membership(change: ConfChange) -> Result<ConfChangeDone, MembershipError>;
    /// Tell this node where peer `id`'s peer port is (in squall: the proxy for link self->id). Needed for
    /// nodes added at run time; replaces any earlier address for `id`.
    async fn set_peer_addr(id: NodeId, addr: std::net::SocketAddr) -> Result<(), String>;
    /// Where this node's recent writes spent their time, stage by stage (see [`StageTiming`]). Added after
    /// the others, so older callers never send it.
    async fn write_path() -> Vec<StageTiming>;
    /// Teaching mode: stop (`true`) or restart (`false`) the node's election and heartbeat timers; messages
    /// are still handled. `Err` when the node is shutting down.
    async fn set_frozen(frozen: bool) -> Result<(), String>;
    /// Fire the node's election timer now: it starts a pre-vote round or an election as its rules say.
    /// `Err` says why not (it leads; it never campaigns now).
    async fn fire_election_timeout() -> Result<Campaign, String>;
    /// A leader sends its heartbeats now; answers how many followers were sent one. `Err` on a node that does
    /// not lead.
    async fn send_heartbeats() -> Result<u32, String>;
    /// The entries this node holds at indexes `from..=to` (at most [`MAX_LOG_RANGE`] of them, oldest first),
    /// for a dashboard scrolled back past the status's tail: entries compacted into the snapshot or past the
    /// log's end are simply absent. `Err` when `from > to`. Added after the others, so older callers never
    /// send it.
    async fn log_range(from: Index, to: Index) -> Result<Vec<LogCell>, String>;
}

/// The most entries one [`ControlService::log_range`] answers.
pub const MAX_LOG_RANGE: u64 = 512;

/// One stage of the write path as a node measured it over its recent writes (the last few thousand).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage: `persist queue` (handed to the persist thread until its write starts), `persist write`
    /// (write plus fdatasync of the batch that carried it), `append round trip` (leader: AppendEntries with
    /// entries sent until answered, which includes the follower's own persist), `leader durable` (leader:
    /// proposed until its own copy is durable), `commit` (leader: proposed until committed), `apply` (leader:
    /// applying and answering the client), `server` (leader: proposed until answered).
    pub stage: String,
    /// Samples behind the figures.
    pub count: u64,
    /// Median, in microseconds.
    pub p50_us: u64,
    /// 90th percentile, in microseconds.
    pub p90_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
}

#[cfg(test)]
mod tests {
    use super::PaxosView;
    use crate::paxos::Ballot;

    #[test]
    fn a_paxos_view_from_before_its_slot_fields_still_reads() {
        // An event log written before `accepted_from` and `chosen_above` existed.
        let old = r#"{"promised":{"round":3,"proposer":2},"leader_ballot":null,
            "accepted":[[4,{"round":1,"proposer":1}],[6,{"round":3,"proposer":2}]],"leases":true}"#;
        let v: PaxosView = serde_json::from_str(old).expect("an old Paxos view reads");
        assert_eq!(v.accepted_from, 0);
        assert!(v.chosen_above.is_empty());
        assert_eq!(
            v.accepted_at(6),
            Some(Ballot {
                round: 3,
                proposer: 2
            })
        );
        assert_eq!(v.accepted_at(5), None);
    }
}
