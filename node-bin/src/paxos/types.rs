//! Plain data of the Multi-Paxos core: ballots, slots, what an acceptor accepted, the messages between
//! nodes, and what the core hands its driver ([`Ready`]) and reports ([`PaxosEvent`], [`PaxosStatus`]).

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::raft::{NodeId, Payload};

/// A position in the sequence of decisions (one Paxos instance per slot); 0 means "before the first".
pub type Slot = u64;

/// A ballot (Lamport's proposal number): a round and the proposer that owns it. Ballots are ordered by round,
/// then by proposer, so two proposers never use the same ballot (Paxos Made Simple §2.2: "different
/// proposers choose their numbers from disjoint sets"). [`Ballot::ZERO`] is below every ballot a proposer
/// uses: an acceptor that promised it has promised nothing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// The round; a proposer starting phase 1 picks one above every round it has seen.
    pub round: u64,
    /// The proposer that owns the ballot.
    pub proposer: NodeId,
}

impl Ballot {
    /// The ballot below every real one.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        proposer: 0,
    };

    /// The largest proposer id a ballot can carry through [`Ballot::pack`].
    pub const MAX_PROPOSER: NodeId = 0xffff;

    /// The ballot as one number that sorts the same way: the round in the high 48 bits, the proposer in the low
    /// 16 (the form the write-ahead log keeps it in). Proposer ids above [`Ballot::MAX_PROPOSER`] do not fit;
    /// the node refuses such an id at start.
    pub fn pack(self) -> u64 {
        (self.round << 16) | (self.proposer & Ballot::MAX_PROPOSER)
    }

    /// The inverse of [`Ballot::pack`].
    pub fn unpack(packed: u64) -> Ballot {
        Ballot {
            round: packed >> 16,
            proposer: packed & Ballot::MAX_PROPOSER,
        }
    }
}

impl fmt::Display for Ballot {
    /// `round.proposer`, as the dashboard shows a ballot where Raft shows a term.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.proposer)
    }
}

/// What an acceptor accepted in one slot: the value and the ballot it came with (Paxos's phase 2b vote).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The ballot of the accept request.
    pub ballot: Ballot,
    /// The value.
    pub value: Payload,
}

/// A message between two nodes. Every message stands alone (no request/reply pairing): answers name the
/// ballot they answer, and the core ignores any that no longer matter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Phase 1a: the proposer asks for a promise to ignore ballots below `ballot`, for every slot from
    /// `from_slot` on (Multi-Paxos runs phase 1 once for all slots not known chosen).
    Prepare {
        /// The proposer's new ballot.
        ballot: Ballot,
        /// The first slot the proposer does not know chosen.
        from_slot: Slot,
    },
    /// Phase 1b: the acceptor promised `ballot` and reports what it accepted from `from_slot` on.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The acceptor's own chosen prefix (every slot up to here is chosen and known to it).
        chosen_to: Slot,
        /// The acceptor compacted every slot up to here into a snapshot: it cannot report them. A promise with
        /// `snapshot_slot >= from_slot` tells the proposer to catch up first.
        snapshot_slot: Slot,
        /// Every value it accepted in slots from `from_slot` on, with its ballot.
        accepted: Vec<(Slot, Accepted)>,
    },
    /// Phase 2a: accept these values at `ballot`. Also carries the proposer's chosen prefix, so acceptors learn
    /// which of the values they accepted at this ballot are chosen.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's chosen prefix.
        chosen_to: Slot,
        /// The values, by slot.
        values: Vec<(Slot, Payload)>,
    },
    /// Phase 2b: the acceptor accepted (and made durable) these slots at `ballot`. An empty list answers a
    /// heartbeat.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slots accepted.
        slots: Vec<Slot>,
        /// The acceptor's chosen prefix (the leader sends catch-up to an acceptor that lags).
        chosen_to: Slot,
    },
    /// The acceptor refuses `ballot`: it promised `promised` (higher), or it follows a leader whose lease has
    /// not run out (`leader`, with leases on).
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
        /// The leader whose lease the acceptor keeps, if that is why.
        leader: Option<NodeId>,
    },
    /// The distinguished proposer is alive and leads at `ballot` (leases on only).
    Heartbeat {
        /// Its ballot.
        ballot: Ballot,
        /// Its chosen prefix.
        chosen_to: Slot,
    },
    /// A node that lags asks for the chosen values from `from_slot` on.
    CatchUp {
        /// The first slot it does not know chosen.
        from_slot: Slot,
    },
    /// Chosen values, in order from the slot asked for, and the sender's chosen prefix.
    Chosen {
        /// The values.
        values: Vec<(Slot, Payload)>,
        /// The sender's chosen prefix.
        chosen_to: Slot,
    },
    /// The sender compacted the slots asked for: its state machine at `slot`.
    Snapshot {
        /// The last slot the snapshot covers.
        slot: Slot,
        /// The serialised state machine.
        #[serde(with = "crate::raft::types::as_bytes")]
        data: Vec<u8>,
    },
}

impl Message {
    /// The message's kind as the links matrix, filters and stepping name it: `prepare`, `promise`, `accept`,
    /// `accepted`, `nack`, `heartbeat`, `catch-up`, `chosen`, `snapshot`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::Heartbeat { .. } => "heartbeat",
            Message::CatchUp { .. } => "catch-up",
            Message::Chosen { .. } => "chosen",
            Message::Snapshot { .. } => "snapshot",
        }
    }
}

/// The part a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaxosRole {
    /// Accepts and learns; not proposing.
    Acceptor,
    /// Running phase 1 for its ballot.
    Preparing,
    /// Finished phase 1: the distinguished proposer (leader) of its ballot, running phase 2.
    Leader,
}

impl PaxosRole {
    /// Lower-case name for status lines.
    pub fn name(self) -> &'static str {
        match self {
            PaxosRole::Acceptor => "acceptor",
            PaxosRole::Preparing => "preparing",
            PaxosRole::Leader => "leader",
        }
    }
}

/// Something that happened inside the core, for the event feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosEvent {
    /// This node started phase 1 with `ballot`.
    PrepareStarted {
        /// Its new ballot.
        ballot: Ballot,
    },
    /// A majority promised: this node leads at `ballot`, re-proposing `recovered` slots it found accepted (or
    /// empty) above its chosen prefix.
    BecameLeader {
        /// Its ballot.
        ballot: Ballot,
        /// Slots it re-proposed in phase 2.
        recovered: u64,
    },
    /// This node stopped proposing: a higher ballot, a lease it must respect, or (a leader) no majority heard
    /// within a lease.
    SteppedDown {
        /// The ballot it gave up.
        ballot: Ballot,
        /// Why.
        reason: String,
    },
    /// The distinguished proposer this node follows changed.
    LeaderChanged {
        /// The new one, if known.
        leader: Option<NodeId>,
        /// Its ballot.
        ballot: Ballot,
    },
    /// A snapshot from a peer was installed up to `slot`.
    SnapshotInstalled {
        /// The last slot it covers.
        slot: Slot,
    },
    /// The driver's snapshot compacted every slot up to `slot`.
    SnapshotTaken {
        /// The last slot it covers.
        slot: Slot,
    },
}

/// A read-only view of the core for status reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaxosStatus {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: PaxosRole,
    /// The highest ballot it promised (its own, when it proposes).
    pub promised: Ballot,
    /// The distinguished proposer it follows (itself when leading).
    pub leader: Option<NodeId>,
    /// Every slot up to here is chosen and known here.
    pub chosen_to: Slot,
    /// Every slot up to here was handed to the driver to apply.
    pub applied: Slot,
    /// The highest slot holding an accepted value (or the snapshot's slot).
    pub last_accepted: Slot,
    /// The last slot the latest snapshot covers (0 when none).
    pub snapshot_slot: Slot,
    /// Whether the distinguished proposer's leases are on.
    pub leases: bool,
}

/// A batch of work the core hands its driver. The driver must, in this order:
/// 1. make durable, in one write, `snapshot` (if any: then restore the state machine from it), the new
///    `promised` ballot and the `accepted` values (each replacing what the slot held);
/// 2. only then send `messages`, and call [`crate::paxos::Paxos::on_persisted`];
/// 3. apply `chosen` in order (slots follow each other, after the last applied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// A snapshot received from a peer: persist it (slots up to its slot leave the log), restore the state
    /// machine from it.
    pub snapshot: Option<(Slot, Vec<u8>)>,
    /// The new promise, if it changed.
    pub promised: Option<Ballot>,
    /// Values accepted since the last ready, by slot.
    pub accepted: Vec<(Slot, Accepted)>,
    /// Messages to send.
    pub messages: Vec<(NodeId, Message)>,
    /// Chosen values to apply, in slot order.
    pub chosen: Vec<(Slot, Payload)>,
    /// What happened, for the event feed.
    pub events: Vec<PaxosEvent>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none()
            && self.promised.is_none()
            && self.accepted.is_empty()
            && self.messages.is_empty()
            && self.chosen.is_empty()
            && self.events.is_empty()
    }
}

/// The core refused a client value because this node is not the distinguished proposer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotLeader {
    /// The leader this node follows, if any.
    pub leader_hint: Option<NodeId>,
}

/// What the core starts from: the durable state read back from storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The highest ballot promised.
    pub promised: Ballot,
    /// What was accepted, by slot, after the snapshot.
    pub accepted: Vec<(Slot, Accepted)>,
    /// The latest snapshot: its last slot and the state machine.
    pub snapshot: Option<(Slot, Vec<u8>)>,
}
