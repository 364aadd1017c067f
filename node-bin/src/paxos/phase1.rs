//! Phase 1: a proposer picks a ballot above every round it has seen and asks for promises (prepare);
//! acceptors promise and report what they accepted (promise) or refuse (nack); with a majority of promises
//! the proposer adopts, per slot, the value accepted with the highest ballot (a no-op where none was) and leads.
//! Lamport, "Paxos Made Simple" §2.2 (and §3 for running phase 1 once for every slot not known chosen); van
//! Renesse and Altinbuken, "Paxos Made Moderately Complex" §3 (the scout and the adopted pvalues).

use std::collections::BTreeMap;

use super::Paxos;
use super::types::{Accepted, Ballot, Message, NodeId, PaxosEvent, PaxosRole, Payload, Slot};

impl Paxos {
    /// Starts phase 1 with a new ballot. The ballot is promised by this node itself first, and that promise is
    /// in the same ready as the prepare messages, so it is durable before any of them is sent: a proposer
    /// that crashes and restarts never uses the same ballot twice.
    pub(super) fn start_prepare(&mut self) {
        let ballot = Ballot {
            round: self.max_round + 1,
            proposer: self.config.id,
        };
        self.promise(ballot);
        self.set_role(PaxosRole::Preparing);
        self.promises.clear();
        self.refusals.clear();
        self.set_leader(None);
        self.from_slot = self.chosen_to + 1;
        self.reset_lease_timer();
        self.events.push(PaxosEvent::PrepareStarted { ballot });
        let from_slot = self.from_slot;
        let own = self.accepted_from(from_slot);
        self.promises.insert(self.config.id, own);
        for peer in self.config.peers.clone() {
            self.messages
                .push((peer, Message::Prepare { ballot, from_slot }));
        }
        self.check_promises();
    }

    /// What this acceptor accepted from `from_slot` on.
    pub(super) fn accepted_from(&self, from_slot: Slot) -> Vec<(Slot, Accepted)> {
        self.accepted
            .range(from_slot..)
            .map(|(&s, a)| (s, a.clone()))
            .collect()
    }

    /// Acceptor: promise `ballot` unless a higher one was promised, or (leases on) another leader's lease still
    /// runs here.
    pub(super) fn handle_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        self.note_round(ballot);
        if ballot < self.promised {
            self.nack(from, ballot, None);
            return;
        }
        if let Some(leader) = self.lease_holder()
            && leader != from
        {
            self.nack(from, ballot, Some(leader));
            return;
        }
        let preempts = ballot > self.promised && self.role != PaxosRole::Acceptor;
        if ballot > self.promised {
            if self.leader.is_some_and(|(_, b)| b < ballot) {
                self.set_leader(None);
            }
            self.promise(ballot);
        }
        // Like a vote granted in Raft: give the proposer time to finish before starting a ballot of our own.
        self.reset_lease_timer();
        let promise = Message::Promise {
            ballot,
            chosen_to: self.chosen_to,
            snapshot_slot: self.snapshot.0,
            accepted: self.accepted_from(from_slot),
        };
        self.messages.push((from, promise));
        if preempts {
            self.preempted(ballot);
        }
    }

    /// Sends a refusal of `ballot` to `to`.
    pub(super) fn nack(&mut self, to: NodeId, ballot: Ballot, leader: Option<NodeId>) {
        let promised = self.promised;
        self.messages.push((
            to,
            Message::Nack {
                ballot,
                promised,
                leader,
            },
        ));
    }

    /// Proposer: a promise for the ballot being prepared.
    pub(super) fn handle_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen_to: Slot,
        snapshot_slot: Slot,
        accepted: Vec<(Slot, Accepted)>,
    ) {
        if self.role != PaxosRole::Preparing || ballot != self.promised {
            return;
        }
        if snapshot_slot >= self.from_slot {
            // The acceptor compacted slots this proposer does not know chosen, so it cannot report what it
            // accepted there: learn them first (phase 1 starts again once the snapshot is installed).
            self.ask_catch_up(from, true);
            return;
        }
        if chosen_to > self.chosen_to {
            self.ask_catch_up(from, false);
        }
        self.promises.insert(from, accepted);
        self.check_promises();
    }

    /// Proposer: a refusal. A higher promise preempts this ballot; lease refusals from so many acceptors that
    /// no majority is left end the attempt.
    pub(super) fn handle_nack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        promised: Ballot,
        leader: Option<NodeId>,
    ) {
        self.note_round(promised);
        if self.role == PaxosRole::Acceptor || ballot != self.promised {
            return;
        }
        if promised > ballot {
            if self.config.leases && self.role == PaxosRole::Leader {
                // Most often a node that ran ballots of its own while cut off and now refuses ours; the
                // acceptors that keep our lease let us prepare again above it. If a majority follows someone
                // else, their lease refusals end this attempt.
                self.events.push(PaxosEvent::SteppedDown {
                    ballot,
                    reason: format!("preempted by ballot {promised}; preparing again above it"),
                });
                self.start_prepare();
            } else {
                self.preempted(promised);
            }
            return;
        }
        if let Some(l) = leader
            && self.role == PaxosRole::Preparing
        {
            self.refusals.insert(from);
            let acceptors = self.config.peers.len() + 1;
            if acceptors - self.refusals.len() < self.quorum() {
                self.step_down(format!("node {l} still holds a lease"), None);
            }
        }
    }

    /// With a majority of promises: adopt the highest-ballot value per slot and lead.
    pub(super) fn check_promises(&mut self) {
        if self.role != PaxosRole::Preparing || self.promises.len() < self.quorum() {
            return;
        }
        let ballot = self.promised;
        // This node's own report is taken fresh: it may have learned or compacted since phase 1 started.
        let own = self.accepted_from(self.from_slot);
        self.promises.insert(self.config.id, own);
        let mut best: BTreeMap<Slot, Accepted> = BTreeMap::new();
        for reported in self.promises.values() {
            for (slot, a) in reported {
                if *slot <= self.chosen_to {
                    continue;
                }
                match best.get(slot) {
                    Some(b) if b.ballot >= a.ballot => {}
                    _ => {
                        best.insert(*slot, a.clone());
                    }
                }
            }
        }
        let last = best
            .keys()
            .next_back()
            .copied()
            .into_iter()
            .chain(self.chosen.keys().next_back().copied())
            .max()
            .unwrap_or(0)
            .max(self.chosen_to);
        self.set_role(PaxosRole::Leader);
        self.set_leader(Some((self.config.id, ballot)));
        self.heartbeat_elapsed = 0;
        self.quorum_elapsed = 0;
        self.heard.clear();
        let mut recovered = 0;
        for slot in self.chosen_to + 1..=last {
            let value = match (self.chosen.get(&slot), best.get(&slot)) {
                (Some(v), _) => v.clone(),
                (None, Some(a)) => a.value.clone(),
                (None, None) => Payload::Noop,
            };
            self.propose_at(slot, value);
            recovered += 1;
        }
        self.next_slot = last + 1;
        self.events
            .push(PaxosEvent::BecameLeader { ballot, recovered });
        for value in std::mem::take(&mut self.queue) {
            self.propose_at_next(value);
        }
        self.broadcast_heartbeat();
    }
}
