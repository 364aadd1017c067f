//! A second consensus core: Multi-Paxos, pure and deterministic, beside `raft/` and in its style.
//!
//! The variant is Multi-Paxos with a distinguished proposer, as Lamport sketches it at the end of "Paxos Made
//! Simple" (2001, §3: one phase 1 for all instances not known chosen, then phase 2 per slot) and as van
//! Renesse and Altinbuken spell it out in "Paxos Made Moderately Complex" (2015: ballots of round and leader
//! id, a leader that adopts the highest-ballot value per slot from a majority of promises, fills the other slots
//! with no-ops, and is preempted by a higher ballot). The lease follows Chandra, Griesemer and Redstone,
//! "Paxos Made Live" (2007, §5.2 "master leases"): while a node hears its leader's heartbeats it neither
//! proposes nor promises to anyone else, so progress does not depend on luck. [`Config::leases`] turns that off:
//! every node proposes what its clients ask, retries phase 1 at once when preempted, and two proposers can
//! preempt each other forever (the livelock of "Paxos Made Simple" §2.4).
//!
//! No I/O, clocks or OS randomness here. Time moves when the driver calls [`Paxos::tick`]; randomness comes
//! from the seed in [`Config`]. Messages go in through [`Paxos::step`], client values through
//! [`Paxos::propose`]; the work that results comes out as a [`Ready`] (see its docs for the order the driver
//! must follow). An acceptor's promise and accepted values are handed out for the driver to make durable
//! before any message that depends on them is sent, and a leader counts its own acceptance only once the
//! driver reports it durable ([`Paxos::on_persisted`]).
//!
//! Handlers are split by what they handle: `phase1` (prepare and promise), `phase2` (accept and accepted),
//! `lease` (heartbeats, the lease, stepping down), `catch_up` (learning chosen values a node missed) and
//! `snapshot` (compaction and installing a peer's snapshot).
//!
//! Reads are not served from a lease: a client read goes through a slot like a write, so a deposed leader
//! that still thinks it leads can never answer one.

mod catch_up;
mod lease;
mod phase1;
mod phase2;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod types;

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use types::*;

/// Tunables of the core, in ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node (at most [`Ballot::MAX_PROPOSER`]).
    pub id: NodeId,
    /// The other acceptors.
    pub peers: Vec<NodeId>,
    /// The distinguished proposer's leases (see the module docs); off shows dueling proposers.
    pub leases: bool,
    /// Lease timeout lower bound, in ticks (inclusive): a node that has not heard its leader for a timeout
    /// drawn from the range starts phase 1. With leases off, the fixed wait before a proposer with work
    /// starts phase 1.
    pub lease_ticks_min: u32,
    /// Lease timeout upper bound, in ticks (exclusive).
    pub lease_ticks_max: u32,
    /// Heartbeat interval of the leader, in ticks; unanswered accepts are sent again at this interval.
    pub heartbeat_ticks: u32,
    /// Most values in one accept, chosen or promise message.
    pub max_batch: usize,
    /// Seed of the RNG that randomises lease timeouts.
    pub seed: u64,
}

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A ballot carries its proposer in 16 bits (see [`Ballot::pack`]).
    #[error("node id {0} is above {max}, the largest a Paxos ballot can carry", max = Ballot::MAX_PROPOSER)]
    IdTooLarge(NodeId),
    /// Node 0 would own ballots indistinguishable from [`Ballot::ZERO`].
    #[error("node id 0 is not allowed: ids start at 1")]
    IdZero,
}

impl Config {
    /// Checks the ids fit in a ballot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for &id in std::iter::once(&self.id).chain(&self.peers) {
            if id == 0 {
                return Err(ConfigError::IdZero);
            }
            if id > Ballot::MAX_PROPOSER {
                return Err(ConfigError::IdTooLarge(id));
            }
        }
        Ok(())
    }
}

/// A value this node proposed at a slot and the acceptors that accepted it.
#[derive(Clone, Debug)]
struct Proposal {
    value: Payload,
    /// Acceptors (this node included, once durable) that accepted it at the leader's ballot.
    acks: BTreeSet<NodeId>,
}

/// The Multi-Paxos core of one node: acceptor, learner and (when it leads) proposer. See the module docs.
#[derive(Debug)]
pub struct Paxos {
    config: Config,
    rng: ChaCha8Rng,
    role: PaxosRole,
    /// Acceptor: the highest ballot promised (durable once handed out in a ready).
    promised: Ballot,
    /// The promise as last handed to the driver.
    last_promised: Ballot,
    /// Acceptor: what it accepted, per slot after the snapshot.
    accepted: BTreeMap<Slot, Accepted>,
    /// Accepted values not yet handed to the driver.
    unstable: BTreeMap<Slot, Accepted>,
    /// Slots this node (as leader) accepted itself since the last ready was taken.
    self_pending: Vec<Slot>,
    /// Slots this node (as leader) accepted itself that were handed to the driver and not yet reported durable:
    /// by the number of the ready that carried them, with the ballot they were accepted at.
    handed: std::collections::VecDeque<(u64, Ballot, Vec<Slot>)>,
    /// How many readies were taken ([`Paxos::readies_taken`]).
    readies: u64,
    /// Learner: chosen values known here after the snapshot (kept until compaction to serve catch-up).
    chosen: BTreeMap<Slot, Payload>,
    /// Every slot up to here is chosen and in `chosen` (or in the snapshot).
    chosen_to: Slot,
    /// Every slot up to here was handed to the driver to apply (or is in the snapshot).
    applied: Slot,
    /// The latest snapshot: its last slot and data.
    snapshot: (Slot, Vec<u8>),
    /// A snapshot from a peer the driver has not taken yet.
    pending_snapshot: Option<(Slot, Vec<u8>)>,
    /// The leader this node follows, and its ballot.
    leader: Option<(NodeId, Ballot)>,
    /// The highest round seen in any ballot (a new ballot goes above it).
    max_round: u64,
    /// Ticks since the leader was last heard from (or, preparing, since phase 1 started).
    lease_elapsed: u32,
    /// This period's randomised lease timeout.
    lease_timeout: u32,
    /// Leader: ticks since the last heartbeat.
    heartbeat_elapsed: u32,
    /// Leader: ticks since the last check that a majority answered.
    quorum_elapsed: u32,
    /// Leader: acceptors heard from since the last quorum check.
    heard: BTreeSet<NodeId>,
    /// Preparing: the first slot phase 1 covers, and the promises received (acceptor -> accepted values).
    from_slot: Slot,
    promises: BTreeMap<NodeId, Vec<(Slot, Accepted)>>,
    /// Preparing: acceptors that refused because they keep another leader's lease.
    refusals: BTreeSet<NodeId>,
    /// Leader: values proposed and not yet chosen, by slot.
    proposals: BTreeMap<Slot, Proposal>,
    /// Leader: the next free slot.
    next_slot: Slot,
    /// Client values waiting for this node to lead (leases off) or for phase 2 to start.
    queue: Vec<Payload>,
    /// Values queued for the next accept broadcast.
    to_send: Vec<Slot>,
    /// Ticks since this node last asked for catch-up.
    catch_up_elapsed: u32,
    messages: Vec<(NodeId, Message)>,
    events: Vec<PaxosEvent>,
}

impl Paxos {
    /// A core restored from durable state; it starts as an acceptor with its chosen prefix at the snapshot.
    pub fn new(config: Config, restored: Restored) -> Paxos {
        let mut config = config;
        config.peers.retain(|&p| p != config.id);
        config.peers.sort_unstable();
        config.peers.dedup();
        config.lease_ticks_min = config.lease_ticks_min.max(1);
        config.lease_ticks_max = config.lease_ticks_max.max(config.lease_ticks_min + 1);
        config.heartbeat_ticks = config.heartbeat_ticks.max(1);
        config.max_batch = config.max_batch.max(1);
        let (snap_slot, snap_data) = restored.snapshot.unwrap_or_default();
        let accepted: BTreeMap<Slot, Accepted> = restored
            .accepted
            .into_iter()
            .filter(|(s, _)| *s > snap_slot)
            .collect();
        let max_round = accepted
            .values()
            .map(|a| a.ballot.round)
            .chain([restored.promised.round])
            .max()
            .unwrap_or(0);
        let mut p = Paxos {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            role: PaxosRole::Acceptor,
            promised: restored.promised,
            last_promised: restored.promised,
            accepted,
            unstable: BTreeMap::new(),
            self_pending: Vec::new(),
            handed: std::collections::VecDeque::new(),
            readies: 0,
            chosen: BTreeMap::new(),
            chosen_to: snap_slot,
            applied: snap_slot,
            snapshot: (snap_slot, snap_data),
            pending_snapshot: None,
            leader: None,
            max_round,
            lease_elapsed: 0,
            lease_timeout: 0,
            heartbeat_elapsed: 0,
            quorum_elapsed: 0,
            heard: BTreeSet::new(),
            from_slot: 0,
            promises: BTreeMap::new(),
            refusals: BTreeSet::new(),
            proposals: BTreeMap::new(),
            next_slot: snap_slot + 1,
            queue: Vec::new(),
            to_send: Vec::new(),
            // The first request for catch-up goes out at once.
            catch_up_elapsed: u32::MAX,
            messages: Vec::new(),
            events: Vec::new(),
            config,
        };
        p.reset_lease_timer();
        if !p.config.leases {
            // Nobody to defer to: the first client value starts phase 1 at once.
            p.lease_elapsed = p.lease_timeout;
        }
        p
    }

    /// One tick of logical time: lease timeouts, heartbeats, retransmission and the leader's quorum check.
    pub fn tick(&mut self) {
        self.catch_up_elapsed = self.catch_up_elapsed.saturating_add(1);
        match self.role {
            PaxosRole::Leader => self.tick_leader(),
            PaxosRole::Acceptor | PaxosRole::Preparing => self.tick_follower(),
        }
    }

    /// A message from `from`.
    pub fn step(&mut self, from: NodeId, msg: Message) {
        if from == self.config.id {
            return;
        }
        match msg {
            Message::Prepare { ballot, from_slot } => self.handle_prepare(from, ballot, from_slot),
            Message::Promise {
                ballot,
                chosen_to,
                snapshot_slot,
                accepted,
            } => self.handle_promise(from, ballot, chosen_to, snapshot_slot, accepted),
            Message::Accept {
                ballot,
                chosen_to,
                values,
            } => self.handle_accept(from, ballot, chosen_to, values),
            Message::Accepted {
                ballot,
                slots,
                chosen_to,
            } => self.handle_accepted(from, ballot, slots, chosen_to),
            Message::Nack {
                ballot,
                promised,
                leader,
            } => self.handle_nack(from, ballot, promised, leader),
            Message::Heartbeat { ballot, chosen_to } => {
                self.handle_heartbeat(from, ballot, chosen_to)
            }
            Message::CatchUp { from_slot } => self.handle_catch_up(from, from_slot),
            Message::Chosen { values, chosen_to } => self.handle_chosen(from, values, chosen_to),
            Message::Snapshot { slot, data } => self.handle_snapshot(from, slot, data),
        }
    }

    /// Offers a client value. With leases on only the leader takes it (its slot is returned); with leases off
    /// any node does: it is proposed once this node leads (`Ok(None)` until then). A value proposed at a slot
    /// may still lose it to another proposer's value: the driver learns the outcome from what is chosen there.
    pub fn propose(&mut self, value: Payload) -> Result<Option<Slot>, NotLeader> {
        if self.role == PaxosRole::Leader {
            return Ok(Some(self.propose_at_next(value)));
        }
        if self.config.leases {
            return Err(NotLeader {
                leader_hint: self.leader.map(|(l, _)| l),
            });
        }
        self.queue.push(value);
        if self.role == PaxosRole::Acceptor && self.lease_elapsed >= self.lease_timeout {
            self.start_prepare();
        }
        Ok(None)
    }

    /// Whether [`Paxos::take_ready`] would return something.
    pub fn has_ready(&self) -> bool {
        self.pending_snapshot.is_some()
            || self.promised != self.last_promised
            || !self.unstable.is_empty()
            || !self.messages.is_empty()
            || !self.to_send.is_empty()
            || self.applied < self.chosen_to
            || !self.events.is_empty()
    }

    /// Takes the work accumulated since the last call; see [`Ready`] for what the driver must do with it.
    pub fn take_ready(&mut self) -> Ready {
        self.flush_accepts();
        let promised = (self.promised != self.last_promised).then_some(self.promised);
        self.last_promised = self.promised;
        let accepted: Vec<(Slot, Accepted)> =
            std::mem::take(&mut self.unstable).into_iter().collect();
        let snapshot = self.pending_snapshot.take();
        self.readies += 1;
        if !self.self_pending.is_empty() {
            let slots = std::mem::take(&mut self.self_pending);
            self.handed.push_back((self.readies, self.promised, slots));
        }
        let mut chosen = Vec::new();
        while self.applied < self.chosen_to {
            let slot = self.applied + 1;
            let value = self
                .chosen
                .get(&slot)
                .cloned()
                .expect("every slot up to chosen_to is in the chosen map");
            chosen.push((slot, value));
            self.applied = slot;
        }
        Ready {
            snapshot,
            promised,
            accepted,
            messages: std::mem::take(&mut self.messages),
            chosen,
            events: std::mem::take(&mut self.events),
        }
    }

    /// The driver made every ready taken so far durable: a leader now counts its own acceptances. A driver
    /// that writes in the order the readies were taken, off its loop, reports each with
    /// [`Paxos::on_persisted_through`] instead.
    pub fn on_persisted(&mut self) {
        self.on_persisted_through(self.readies);
    }

    /// How many readies were taken: the number of the last one, for [`Paxos::on_persisted_through`].
    pub fn readies_taken(&self) -> u64 {
        self.readies
    }

    /// The driver made the readies up to number `ready` durable (written in the order they were taken): a
    /// leader now counts its own acceptances they carried, if it still leads at the ballot it accepted them
    /// at (a proposal at the same slot under a later ballot is another proposal, whose own acceptance is
    /// written later).
    pub fn on_persisted_through(&mut self, ready: u64) {
        while self.handed.front().is_some_and(|(n, _, _)| *n <= ready) {
            let (_, ballot, slots) = self.handed.pop_front().expect("front");
            if self.role != PaxosRole::Leader || ballot != self.promised {
                continue;
            }
            let id = self.config.id;
            for slot in slots {
                if let Some(p) = self.proposals.get_mut(&slot) {
                    p.acks.insert(id);
                }
            }
        }
        if self.role == PaxosRole::Leader {
            self.check_chosen();
        }
    }

    /// A read-only view for status reports.
    pub fn status(&self) -> PaxosStatus {
        PaxosStatus {
            id: self.config.id,
            role: self.role,
            promised: self.promised,
            leader: self.leader.map(|(l, _)| l),
            chosen_to: self.chosen_to,
            applied: self.applied,
            last_accepted: self
                .accepted
                .keys()
                .next_back()
                .copied()
                .unwrap_or(self.snapshot.0),
            snapshot_slot: self.snapshot.0,
            leases: self.config.leases,
        }
    }

    /// Current role.
    pub fn role(&self) -> PaxosRole {
        self.role
    }

    /// The highest ballot promised.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The leader this node follows (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader.map(|(l, _)| l)
    }

    /// The ballot of the leader this node follows (its own when leading), if it follows one.
    pub fn leader_ballot(&self) -> Option<Ballot> {
        self.leader.map(|(_, b)| b)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Every slot up to here is chosen and known here.
    pub fn chosen_to(&self) -> Slot {
        self.chosen_to
    }

    /// What this acceptor accepted at `slot` (after the snapshot), durable or not.
    pub fn accepted_at(&self, slot: Slot) -> Option<&Accepted> {
        self.accepted.get(&slot)
    }

    /// What this acceptor accepted in the slots `from..=to` it still holds (after the snapshot), for status.
    pub fn accepted_in(&self, from: Slot, to: Slot) -> Vec<(Slot, Accepted)> {
        if from > to {
            return Vec::new();
        }
        self.accepted
            .range(from..=to)
            .map(|(&s, a)| (s, a.clone()))
            .collect()
    }

    /// The chosen values this node knows in the slots `from..=to` (after the snapshot, up to its chosen
    /// prefix), for status.
    pub fn chosen_in(&self, from: Slot, to: Slot) -> Vec<(Slot, Payload)> {
        let to = to.min(self.chosen_to);
        if from > to {
            return Vec::new();
        }
        self.chosen
            .range(from..=to)
            .map(|(&s, v)| (s, v.clone()))
            .collect()
    }

    /// The slots above the chosen prefix this node knows chosen, ascending, at most `max` of the lowest: a
    /// leader learns a later slot chosen before an earlier one when acceptors answer out of order, and the
    /// prefix waits for the earlier one. For status (the dashboard marks them chosen).
    pub fn chosen_above(&self, max: usize) -> Vec<Slot> {
        self.chosen
            .range(self.chosen_to.saturating_add(1)..)
            .map(|(&s, _)| s)
            .take(max)
            .collect()
    }

    /// The number of acceptors that make a majority.
    fn quorum(&self) -> usize {
        let acceptors = self.config.peers.len() + 1;
        acceptors / 2 + 1
    }

    fn reset_lease_timer(&mut self) {
        self.lease_elapsed = 0;
        self.lease_timeout = if self.config.leases {
            self.rng
                .random_range(self.config.lease_ticks_min..self.config.lease_ticks_max)
        } else {
            self.config.lease_ticks_min
        };
    }

    fn set_role(&mut self, role: PaxosRole) {
        if self.role == PaxosRole::Leader && role != PaxosRole::Leader {
            // Values proposed and not chosen are abandoned: the next leader decides their slots, and the
            // driver learns from what is chosen there whether they made it.
            self.proposals.clear();
            self.to_send.clear();
            self.heard.clear();
        }
        if role != PaxosRole::Preparing {
            self.promises.clear();
            self.refusals.clear();
        }
        self.role = role;
    }

    fn set_leader(&mut self, leader: Option<(NodeId, Ballot)>) {
        if self.leader.map(|(l, _)| l) != leader.map(|(l, _)| l) {
            self.events.push(PaxosEvent::LeaderChanged {
                leader: leader.map(|(l, _)| l),
                ballot: leader.map_or(self.promised, |(_, b)| b),
            });
        }
        self.leader = leader;
    }

    /// Raises the promise to `ballot` (the caller checked it is not below) and notes its round.
    fn promise(&mut self, ballot: Ballot) {
        self.note_round(ballot);
        if ballot > self.promised {
            self.promised = ballot;
        }
    }

    fn note_round(&mut self, ballot: Ballot) {
        self.max_round = self.max_round.max(ballot.round);
    }

    /// Records a value accepted at `slot` (to be made durable in the next ready).
    fn accept_value(&mut self, slot: Slot, accepted: Accepted) {
        self.accepted.insert(slot, accepted.clone());
        self.unstable.insert(slot, accepted);
    }

    /// Records `value` as chosen at `slot` and advances the chosen prefix.
    fn learn(&mut self, slot: Slot, value: Payload) {
        if slot <= self.chosen_to {
            return;
        }
        self.chosen.insert(slot, value);
        while let Some(next) = self.chosen_to.checked_add(1) {
            if !self.chosen.contains_key(&next) {
                break;
            }
            self.chosen_to = next;
        }
    }

    /// Whether this node has values to propose (queued, or proposed and not chosen).
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || !self.proposals.is_empty()
    }

    /// Another proposer's higher ballot `by` ended this node's ballot. Dueling proposers (leases off) with work
    /// retry at once above it; everyone else stops proposing.
    fn preempted(&mut self, by: Ballot) {
        if self.role == PaxosRole::Acceptor {
            return;
        }
        if !self.config.leases && self.has_work() {
            // Its own accepted values come back to it in its own promise.
            self.start_prepare();
        } else {
            self.step_down(format!("preempted by ballot {by}"), None);
        }
    }

    /// Stops proposing (if it was) and follows `leader` if known.
    fn step_down(&mut self, reason: String, leader: Option<(NodeId, Ballot)>) {
        if self.role != PaxosRole::Acceptor {
            self.events.push(PaxosEvent::SteppedDown {
                ballot: self.promised,
                reason,
            });
            self.set_role(PaxosRole::Acceptor);
        }
        self.set_leader(leader);
        self.reset_lease_timer();
    }
}
