//! Plain data shared by the consensus core, its storage and the wire: ids, log entries, hard state,
//! the Raft messages, and what the core hands its driver (`Ready`) and reports (`RaftEvent`, `Status`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A node's id within one cluster (1-based in squall).
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index; 0 means "before the first entry".
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The entry a new leader appends at the start of its term.
    Noop,
    /// An opaque state machine command.
    Command(#[serde(with = "as_bytes")] Vec<u8>),
    /// A new cluster configuration. It takes effect on a node as soon as the node appends it (committed or
    /// not; Raft dissertation §4.1). Appended last so bincode's encoding of the older variants (and so the
    /// WAL format) is unchanged.
    Config(Membership),
}

/// A cluster configuration: who votes and who only receives the log (Raft dissertation §4, learners
/// §4.2.1). A node is in at most one of the two sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Nodes that vote, count toward commitment and may lead.
    pub voters: BTreeSet<NodeId>,
    /// Nodes that receive the log but never vote, campaign or count toward a quorum.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration of voters only.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// Whether `id` votes in this configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether `id` is a learner in this configuration.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters and learners, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut all: Vec<NodeId> = self.voters.union(&self.learners).copied().collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// The number of voters that makes a majority (0 for no voters).
    pub fn quorum(&self) -> usize {
        if self.voters.is_empty() {
            0
        } else {
            self.voters.len() / 2 + 1
        }
    }

    /// The configuration `change` leads to, or why it cannot be made (checks membership only; the leader's
    /// own checks, such as one change at a time, are in the core).
    pub fn apply(&self, change: ConfChange) -> Result<Membership, MembershipError> {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(MembershipError::AlreadyMember { id });
                }
                next.learners.insert(id);
            }
            ConfChange::Promote(id) => {
                if self.is_voter(id) {
                    return Err(MembershipError::NotLearner { id });
                }
                if !self.is_learner(id) {
                    return Err(MembershipError::NotMember { id });
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::Demote(id) => {
                if self.is_learner(id) {
                    return Err(MembershipError::NotVoter { id });
                }
                if !self.is_voter(id) {
                    return Err(MembershipError::NotMember { id });
                }
                if self.voters.len() == 1 {
                    return Err(MembershipError::LastVoter);
                }
                next.voters.remove(&id);
                next.learners.insert(id);
            }
            ConfChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(MembershipError::NotMember { id });
                }
                if self.voters.len() == 1 && self.is_voter(id) {
                    return Err(MembershipError::LastVoter);
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }
}

impl std::fmt::Display for Membership {
    /// `v{1,2,3} l{6}` (voters, then learners; `l{}` omitted when there are none), as in the log strip.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |s: &BTreeSet<NodeId>| {
            s.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "v{{{}}}", list(&self.voters))?;
        if !self.learners.is_empty() {
            write!(f, " l{{{}}}", list(&self.learners))?;
        }
        Ok(())
    }
}

/// One single-server configuration change (Raft dissertation §4.1, §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// Add a node as a learner: it receives the log but does not vote.
    AddLearner(NodeId),
    /// Make a learner a voter (refused until it has caught up).
    Promote(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
    /// Make a voter a learner: it keeps receiving the log but no longer votes. For the quorums this is the
    /// removal of a voter (§4.1), so it is as safe as one; the leader cannot demote itself.
    Demote(NodeId),
}

impl std::fmt::Display for ConfChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfChange::AddLearner(id) => write!(f, "add node {id} as a learner"),
            ConfChange::Promote(id) => write!(f, "promote node {id} to voter"),
            ConfChange::Remove(id) => write!(f, "remove node {id}"),
            ConfChange::Demote(id) => write!(f, "demote node {id} to learner"),
        }
    }
}

fn leader_hint(leader: &Option<NodeId>) -> String {
    match leader {
        Some(l) => format!(" (node {l} is)"),
        None => " and knows of no leader".to_string(),
    }
}

/// A configuration change that was committed: where, and the configuration it made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChangeDone {
    /// Log index of the configuration entry.
    pub index: Index,
    /// The configuration now in effect.
    pub config: Membership,
}

/// Why a configuration change was refused or did not finish.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader changes the configuration.
    #[error("this node is not the leader{}; send the change to the leader", leader_hint(.leader))]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// One change at a time: an earlier one is not committed yet.
    #[error("the configuration change at index {index} is not committed yet; retry once it is")]
    InProgress {
        /// Index of the uncommitted configuration entry.
        index: Index,
    },
    /// A new leader must commit an entry of its own term before it changes the configuration.
    #[error(
        "this leader has not yet committed an entry of its term; retry in a moment (a new leader must, \
         before it changes the configuration)"
    )]
    LeaderNotReady,
    /// AddLearner of a node that is already a voter or learner.
    #[error("node {id} is already a member of the configuration; remove it first to add it again")]
    AlreadyMember {
        /// The node.
        id: NodeId,
    },
    /// Remove or Promote of a node outside the configuration.
    #[error("node {id} is not a member of the configuration; add it as a learner first")]
    NotMember {
        /// The node.
        id: NodeId,
    },
    /// Promote of a node that already votes.
    #[error("node {id} is already a voter; only a learner can be promoted")]
    NotLearner {
        /// The node.
        id: NodeId,
    },
    /// Demote of a node that is a learner already.
    #[error("node {id} is already a learner; only a voter can be demoted")]
    NotVoter {
        /// The node.
        id: NodeId,
    },
    /// Demote of the leader itself.
    #[error("the leader cannot demote itself; transfer leadership to another voter first")]
    DemoteLeader,
    /// Promote of a learner that has not caught up with the leader's log.
    #[error(
        "learner {id} has not caught up (it holds the log to index {match_index}, the leader's ends at \
         {last_index}); retry once it has"
    )]
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// The highest index known replicated on it.
        match_index: Index,
        /// The leader's last log index.
        last_index: Index,
    },
    /// Removing the only voter would leave no one to decide.
    #[error("node is the only voter; add and promote another node before removing it")]
    LastVoter,
    /// AddLearner of a node this leader cannot reach.
    #[error("this node has no address for node {id}; call set_peer_addr for it first")]
    NoAddress {
        /// The node.
        id: NodeId,
    },
    /// Not committed in time; the change may still commit later.
    #[error(
        "the change was not committed in time; its outcome is unknown: check the configuration in the \
         node's status before retrying"
    )]
    Timeout,
    /// Promote of a learner the leader has not heard from within an election timeout, or that has matched
    /// nothing of the leader's log yet (it never answered): promoting it would make a voter the cluster may
    /// never hear from.
    #[error(
        "learner {id} has not answered the leader {why}; start it (or check its links) and promote it once it \
         has caught up"
    )]
    LearnerSilent {
        /// The learner.
        id: NodeId,
        /// "yet" (it never matched anything) or "within an election timeout".
        why: String,
    },
    /// Promote of a learner that is still recovering from possible data loss (the `recovery` module; a new
    /// node starts so, as its empty directory cannot be told from a wiped one): it finishes once a leader has
    /// caught it up. Promoted before that, it may not yet hold the entry that makes it a voter, and then it
    /// knows no voters to learn the current term from and never votes, which can leave the new configuration
    /// without a majority for good.
    #[error(
        "learner {id} is still recovering (a leader has not caught it up yet); retry once it has caught up"
    )]
    LearnerRecovering {
        /// The learner.
        id: NodeId,
    },
    /// The node runs a protocol without membership changes (a Paxos node, `--protocol paxos`).
    #[error("{reason}")]
    Unsupported {
        /// What the node runs and what to do instead.
        reason: String,
    },
}

/// Serialises a byte vector as one byte string rather than a sequence of numbers. bincode writes both the
/// same way (a length, then the bytes), so the wire and WAL formats do not change; only the per-byte work
/// of a sequence goes (which made a megabyte command cost a debug build hundreds of milliseconds per copy).
pub mod as_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `v` as a byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Reads a byte string (or a sequence of bytes, from formats that write one).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log.
    pub index: Index,
    /// Term of the leader that created it.
    pub term: Term,
    /// What it carries.
    pub payload: Payload,
}

impl Entry {
    /// Approximate size on the wire, for batching by bytes.
    pub fn size_hint(&self) -> usize {
        24 + match &self.payload {
            Payload::Noop => 0,
            Payload::Command(d) => d.len(),
            Payload::Config(c) => 8 * (c.voters.len() + c.learners.len()),
        }
    }
}

/// State that must survive a crash: current term and the vote cast in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
}

/// Identifies a snapshot: the last log entry it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot includes.
    pub last_index: Index,
    /// Term of that entry.
    pub last_term: Term,
}

/// A configuration and the log index of the entry that set it (0: the bootstrap configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfState {
    /// Index of the configuration entry.
    pub index: Index,
    /// The configuration.
    pub config: Membership,
}

/// A state machine snapshot with its position in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Where it sits in the log.
    pub meta: SnapshotMeta,
    /// The serialised state machine.
    #[serde(with = "as_bytes")]
    pub data: Vec<u8>,
    /// The configuration in effect at `meta.last_index` (the latest configuration entry at or before it).
    /// `None` only for snapshots written before configurations were logged (snapshot file format 1): the
    /// node then uses its bootstrap configuration.
    pub config: Option<ConfState>,
}

/// The role a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes before starting a real election (PreVote).
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Leads the current term.
    Leader,
}

impl Role {
    /// The lowercase name used in JSON output and the dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "precandidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// RequestVote, also used for pre-votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVote {
    /// For a pre-vote: the term the candidate would campaign in (its term + 1), not yet adopted.
    pub term: Term,
    /// The candidate.
    pub candidate: NodeId,
    /// Index of the candidate's last entry.
    pub last_log_index: Index,
    /// Term of the candidate's last entry.
    pub last_log_term: Term,
    /// True for a pre-vote (no state changes on the receiver).
    pub pre_vote: bool,
    /// True when campaigning because of a leadership transfer (TimeoutNow): voters ignore their leader lease.
    pub transfer: bool,
    /// Which of the candidate's campaigns (pre-vote rounds and elections, counted from 1 since its process
    /// started) this request belongs to; 0 for a recovering node's probe. Successive pre-vote rounds ask for
    /// the same term, so a grant names its round ([`RaftEvent::VoteGranted`]) for an observer to pair it with
    /// the request it answers. Always on the wire (bincode has no optional fields); the default reads logs
    /// written before it existed.
    #[serde(default)]
    pub round: u64,
}

/// Answer to [`RequestVote`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteReply {
    /// The voter's term (for a pre-vote: the request's term when granted, else the voter's term).
    pub term: Term,
    /// The voter.
    pub voter: NodeId,
    /// Whether the vote was granted.
    pub granted: bool,
    /// Echoes the request's `pre_vote`.
    pub pre_vote: bool,
    /// The voter's committed configuration, when it excludes the candidate and was set by a log entry: the
    /// candidate was removed (see the `membership` module for when the candidate may act on it).
    #[serde(default)]
    pub removed_by: Option<ConfState>,
}

/// AppendEntries (also the heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    /// Leader's term.
    pub term: Term,
    /// The leader.
    pub leader: NodeId,
    /// Index of the entry just before `entries`.
    pub prev_log_index: Index,
    /// Term of that entry.
    pub prev_log_term: Term,
    /// Entries to store (empty for a heartbeat).
    pub entries: Vec<Entry>,
    /// Leader's commit index.
    pub leader_commit: Index,
    /// Heartbeat round this message belongs to, for ReadIndex confirmation (0 when none).
    pub read_round: u64,
    /// A heartbeat: no entries, anchored at the follower's match index as the leader knew it when sending,
    /// so it was sent after the follower acknowledged that index.
    pub heartbeat: bool,
}

/// Answer to [`AppendEntries`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesReply {
    /// Follower's term.
    pub term: Term,
    /// The follower.
    pub follower: NodeId,
    /// Whether the entries were stored.
    pub success: bool,
    /// On success: the index of the last entry now known to match the leader (prev + entries.len()).
    pub match_index: Index,
    /// On failure: term of the follower's conflicting entry at `prev_log_index`, if it has one.
    pub conflict_term: Option<Term>,
    /// On failure: first index the leader should try next (fast backtracking).
    pub conflict_index: Index,
    /// Follower's last log index.
    pub last_log_index: Index,
    /// Echoes the request's `read_round`.
    pub read_round: u64,
    /// Echoes the request's `prev_log_index`: with `req_last_index` it names the request this answers, so
    /// the leader can tell an answer to its current probe or batch from a late or duplicated one.
    pub req_prev_index: Index,
    /// The request's `prev_log_index + entries.len()` (equal to `req_prev_index` for a heartbeat).
    pub req_last_index: Index,
    /// Echoes the request's `heartbeat`.
    pub heartbeat: bool,
    /// The follower is still recovering from possible data loss (the `recovery` module) after handling the
    /// request: a leader does not promote such a learner ([`MembershipError::LearnerRecovering`]).
    pub recovering: bool,
}

/// One chunk of InstallSnapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// Leader's term.
    pub term: Term,
    /// The leader.
    pub leader: NodeId,
    /// Which snapshot this chunk belongs to.
    pub meta: SnapshotMeta,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    /// The chunk.
    #[serde(with = "as_bytes")]
    pub data: Vec<u8>,
    /// True on the last chunk.
    pub done: bool,
    /// Identifies this chunk among all the leader sent (increasing); echoed in the answer.
    pub chunk_id: u64,
    /// The configuration in effect at `meta.last_index` (see [`Snapshot::config`]).
    pub config: Option<ConfState>,
}

/// Answer to [`InstallSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotReply {
    /// Follower's term.
    pub term: Term,
    /// The follower.
    pub follower: NodeId,
    /// Which snapshot.
    pub meta: SnapshotMeta,
    /// Bytes received so far in order (the next offset the follower expects); equals the length once done.
    pub next_offset: u64,
    /// True once the whole snapshot was received and handed to the driver.
    pub done: bool,
    /// Echoes the chunk's `chunk_id`: the leader acts only on the answer to the chunk it has in flight.
    pub chunk_id: u64,
    /// Echoes the chunk's `offset`.
    pub chunk_offset: u64,
}

/// TimeoutNow: the leader asks the target to start an election at once (leadership transfer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// Leader's term.
    pub term: Term,
    /// The leader handing over.
    pub leader: NodeId,
}

/// A request the core wants sent to a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// RequestVote or pre-vote.
    Vote(RequestVote),
    /// AppendEntries or heartbeat.
    Append(AppendEntries),
    /// A snapshot chunk.
    Snapshot(InstallSnapshot),
    /// Start an election now.
    TimeoutNow(TimeoutNow),
}

/// A peer's answer, fed back into the core with `Raft::handle_reply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to a vote request.
    Vote(RequestVoteReply),
    /// Answer to AppendEntries.
    Append(AppendEntriesReply),
    /// Answer to a snapshot chunk.
    Snapshot(InstallSnapshotReply),
}

/// A confirmed ReadIndex request: once `applied >= index`, the read with `ctx` may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The caller's token from `Raft::read_index`.
    pub ctx: u64,
    /// Commit index at the time leadership was confirmed.
    pub index: Index,
}

/// A read that can no longer be confirmed (leadership lost): the caller should retry elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFailed {
    /// The caller's token.
    pub ctx: u64,
    /// The leader now known, if any.
    pub leader_hint: Option<NodeId>,
}

/// Something that happened inside the core, for the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftEvent {
    /// Role (and term) changed.
    RoleChanged {
        /// New role.
        role: Role,
        /// Term at the change.
        term: Term,
    },
    /// Adopted a new term.
    TermChanged {
        /// The new term.
        term: Term,
    },
    /// Began an election (or a pre-vote round).
    ElectionStarted {
        /// Term campaigned in.
        term: Term,
        /// True for a pre-vote round.
        pre_vote: bool,
        /// The campaign's number ([`RequestVote::round`]); 0 in logs written before it existed.
        #[serde(default)]
        round: u64,
    },
    /// Granted a vote (or a pre-vote) to a candidate.
    VoteGranted {
        /// The candidate.
        candidate: NodeId,
        /// The term of the vote.
        term: Term,
        /// True for a pre-vote.
        pre_vote: bool,
        /// The round of the request granted ([`RequestVote::round`]); 0 in logs written before it existed.
        #[serde(default)]
        round: u64,
    },
    /// The known leader changed.
    LeaderChanged {
        /// The new leader, or none.
        leader: Option<NodeId>,
        /// The term.
        term: Term,
    },
    /// Uncommitted entries from `from_index` on were removed because they conflicted with the leader.
    LogTruncated {
        /// First removed index.
        from_index: Index,
        /// How many were removed.
        count: u64,
    },
    /// A snapshot from the leader was installed.
    SnapshotInstalled {
        /// Its position.
        meta: SnapshotMeta,
    },
    /// The log prefix up to `meta.last_index` was compacted into a local snapshot.
    SnapshotTaken {
        /// Its position.
        meta: SnapshotMeta,
    },
    /// A leader stepped down because it did not hear from a majority (CheckQuorum).
    QuorumLost {
        /// The term it stepped down in.
        term: Term,
    },
    /// A leadership transfer started.
    TransferStarted {
        /// The chosen node.
        target: NodeId,
        /// The term.
        term: Term,
    },
    /// A configuration entry was appended to this node's log (or arrived in a snapshot): it takes effect now.
    /// Also reported when a truncation reverts the configuration to an earlier one (with that one's index).
    ConfigChanged {
        /// Index of the entry that set it (0: the bootstrap configuration).
        index: Index,
        /// The configuration now in effect.
        config: Membership,
    },
    /// The configuration entry at `index` is now committed on this node.
    ConfigCommitted {
        /// Index of the entry.
        index: Index,
        /// Its configuration.
        config: Membership,
    },
    /// A committed configuration excludes this node: it is no longer a member, and never campaigns.
    Removed {
        /// Index of the configuration entry that removed it.
        index: Index,
    },
}

/// Replication progress the leader keeps for one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    /// The follower.
    pub id: NodeId,
    /// Highest index known replicated on it.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// AppendEntries batches in flight.
    pub inflight: usize,
    /// Whether a snapshot is being sent to it.
    pub snapshotting: bool,
}

/// What a node recovering from possible data loss waits for before it votes again (the `recovery` module's
/// rules 2 and 3), for status and the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveryWait {
    /// The current term from these other voters: every other voter must answer its probe (rule 2), so while
    /// one of them is unreachable it waits.
    Terms {
        /// The voters not heard from yet, in id order.
        voters: Vec<NodeId>,
    },
    /// A leader of term `term` or later to catch it up (or a majority of the other voters to vouch that its
    /// log holds everything committed; rule 3). A learner waits for any leader (`term` 0).
    Leader {
        /// The lowest term of a leader it takes.
        term: Term,
    },
    /// It is the only voter: nobody can tell it what it lost; an operator must act (restore its data
    /// directory, or accept the loss by starting a new cluster).
    Operator,
}

impl std::fmt::Display for RecoveryWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryWait::Terms { voters } => {
                let names: Vec<String> = voters.iter().map(|v| format!("n{v}'s")).collect();
                let (list, noun) = match names.as_slice() {
                    [] => (String::new(), "terms"),
                    [one] => (one.clone(), "term"),
                    [rest @ .., last] => (format!("{} and {last}", rest.join(", ")), "terms"),
                };
                write!(f, "waiting for {list} {noun}")
            }
            RecoveryWait::Leader { term: 0 } => f.write_str("waiting for a leader to catch it up"),
            RecoveryWait::Leader { term } => {
                write!(
                    f,
                    "waiting for a leader of term {term} or later to catch it up"
                )
            }
            RecoveryWait::Operator => f.write_str(
                "waiting for an operator: it is the only voter, so nobody can tell it what it lost",
            ),
        }
    }
}

/// How a node finished recovering from possible data loss (the `recovery` module's rule 3), for status and
/// the event feed: the two ways are told apart because they mean different things to a person watching (a
/// leader wrote to it, or nobody needed to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoveredBy {
    /// A leader of the term it learned from the other voters, or a later one, caught it up to that leader's
    /// commit index.
    Leader {
        /// The leader that caught it up.
        leader: NodeId,
        /// The term this node was in when it finished (that leader's).
        term: Term,
    },
    /// Every other member vouched that its log holds everything committed, so it needed no leader.
    Vouched {
        /// The highest term the other voters answered with (`T`); it votes again from the term after.
        term: Term,
    },
}

impl std::fmt::Display for RecoveredBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveredBy::Leader { leader, term } => {
                write!(f, "leader n{leader} caught it up in term {term}")
            }
            RecoveredBy::Vouched { .. } => f.write_str(
                "every other member vouched that its log holds everything committed (no leader was needed)",
            ),
        }
    }
}

/// The recoveries one node process finished, for status: a poller that missed the whole recovery between
/// two polls still sees that one happened (the count grew) and how the last one ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// Recoveries this process finished (1 after a wipe or a cut record; a process that recovered from
    /// nothing reports none).
    pub count: u64,
    /// How the latest one finished.
    pub by: RecoveredBy,
}

/// A read-only view of the core for status reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreStatus {
    /// This node.
    pub id: NodeId,
    /// Current role.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// Vote cast in the current term.
    pub vote: Option<NodeId>,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: Index,
    /// Index of the last entry in the log (or of the snapshot if the log is empty).
    pub last_log_index: Index,
    /// Term of that entry.
    pub last_log_term: Term,
    /// Last index covered by the latest snapshot (0 when none).
    pub snapshot_index: Index,
    /// Leader only: progress per follower.
    pub progress: Vec<PeerProgress>,
    /// The configuration in effect on this node (the latest in its log, committed or not).
    #[serde(default)]
    pub config: Membership,
    /// Log index of the entry that set it (0: the bootstrap configuration).
    #[serde(default)]
    pub config_index: Index,
    /// Whether that entry is committed on this node.
    #[serde(default)]
    pub config_committed: bool,
}

/// A batch of work the core hands its driver. The driver must, in this order:
/// 1. persist `hard_state`, then apply `truncate_from`, then append `entries` (one fsync for all), and if
///    `snapshot` is set persist it and restore the state machine from it;
/// 2. only then send `messages` and release any replies returned by `handle_*` since the last ready;
/// 3. call `Raft::on_persisted` with the last persisted entry;
/// 4. apply `committed_entries` in order, and serve `read_states` once applied reaches their index.
///
/// A ready that carries a `snapshot` never also carries `entries` or `truncate_from`: after an installed
/// snapshot the core's log is empty past the snapshot index, so the driver replaces its stored log entirely.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// New term/vote to persist, if changed.
    pub hard_state: Option<HardState>,
    /// Remove stored entries with index >= this before appending.
    pub truncate_from: Option<Index>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader: persist it, reset the log to it, restore the state machine.
    pub snapshot: Option<Snapshot>,
    /// Requests to send to peers.
    pub messages: Vec<(NodeId, Request)>,
    /// Entries now committed, to apply in order.
    pub committed_entries: Vec<Entry>,
    /// Reads confirmed by a heartbeat round.
    pub read_states: Vec<ReadState>,
    /// Reads that failed (leadership lost before confirmation).
    pub failed_reads: Vec<ReadFailed>,
    /// What happened, for the event feed.
    pub events: Vec<RaftEvent>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.messages.is_empty()
            && self.committed_entries.is_empty()
            && self.read_states.is_empty()
            && self.failed_reads.is_empty()
            && self.events.is_empty()
    }
}

/// The core refused a client operation because this node does not lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotLeader {
    /// The leader this node knows of, if any.
    pub leader_hint: Option<NodeId>,
}
