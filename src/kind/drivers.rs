//! The seams a kind's drivers fill: reading one node's status ([`StatusSource`]) and running the workloads'
//! operations ([`KvClient`]). The orchestrator holds them as trait objects chosen by the kind file's protocol
//! names ([`super::Kind::status_source`], [`super::Kind::kv_client`]); data goes in and out, the I/O stays in
//! the driver.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use squall_node::raft::Role;
use squall_node::rpc::{EventRecord, NodeStatus};

/// One node's status as its kind can report it. A field the kind cannot report is `None` (shown as `—`,
/// never guessed).
#[derive(Clone, Debug, Default)]
pub struct StatusReport {
    /// Leader, follower, candidate…
    pub role: Option<Role>,
    /// The node's current term.
    pub term: Option<u64>,
    /// The leader the node knows of: `Some(None)` when it knows of none, `None` when the kind cannot say.
    pub leader: Option<Option<u64>>,
    /// Highest index the node knows committed.
    pub commit: Option<u64>,
    /// Highest index applied to its state machine.
    pub applied: Option<u64>,
    /// The node's process id as it reports it.
    pub pid: Option<u32>,
    /// The node is a learner (a non-voting member), as its kind says (etcd's `isLearner`); `false` where the
    /// kind does not say or the full picture carries the configuration.
    pub learner: bool,
    /// The full picture (log tail, votes, configuration, replication progress) from a kind whose driver has
    /// it — squall's does; the live invariants that need it cannot judge a kind without it.
    pub detail: Option<NodeStatus>,
    /// What the node did since the last poll, oldest first (its event feed), where the kind has one.
    pub feed: Vec<EventRecord>,
    /// The messages the node received and sent, by type, where the kind counts them (a Maelstrom node's
    /// bridge does).
    pub messages: Option<crate::check::brief::MessageCounts>,
    /// Lines for the session's feed about the node that are not in its event feed (a Maelstrom node's
    /// malformed lines), already rate-limited by the driver.
    pub notes: Vec<String>,
}

impl StatusReport {
    /// The fields every kind may report, as [`crate::state::Event::Brief`] carries them.
    pub fn brief(&self) -> crate::state::BriefStatus {
        crate::state::BriefStatus {
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit: self.commit,
            applied: self.applied,
            pid: self.pid,
            learner: self.learner,
            messages: self.messages.clone(),
        }
    }
}

/// Reads one node's status. One source per node and address; a source that errs is dropped and made again.
pub trait StatusSource: Send {
    /// The node's status now. `Err` says why it could not be read (the node is unreachable, too slow).
    fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>>;
}

/// One operation of the built-in workloads on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRequest {
    /// Read the key's value.
    Read { key: String },
    /// Set the key's value.
    Write { key: String, value: String },
    /// Set the key to `to` if it holds `from`.
    Cas {
        key: String,
        from: String,
        to: String,
    },
    /// Add `by` to the counter at the key.
    Incr { key: String, by: i64 },
}

/// What a successful operation answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvAnswer {
    /// The value read (`None`: the key is absent).
    Value(Option<String>),
    /// The write happened.
    Written,
    /// The cas happened (`true`) or found another value (`false`, which means it did not happen).
    Swapped(bool),
    /// The counter's new value.
    Counter(i64),
}

/// How an operation ended, as a history records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOutcome {
    /// It happened, with this answer.
    Done(KvAnswer),
    /// It is known not to have happened (the system refused it before acting), with why.
    Fail(String),
    /// Its outcome is unknown: it may have happened or may happen later (a timeout, a lost connection, an
    /// error a retrying client may have hidden an apply behind). Anything not known to have failed is this.
    Info(String),
}

/// Runs workload operations against the cluster, finding the leader itself.
pub trait KvClient: Send {
    /// Runs one operation to its outcome.
    fn execute(&mut self, req: KvRequest) -> BoxFuture<'_, KvOutcome>;
}

/// Where a kind's drivers reach each node: the address of every node's client port.
pub type Addrs = BTreeMap<u64, SocketAddr>;
