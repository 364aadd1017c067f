//! Phase 2: the leader asks acceptors to accept a value per slot at its ballot (accept); an acceptor accepts
//! unless it promised a higher ballot, and answers once the value is durable (accepted); a value accepted by a
//! majority at one ballot is chosen. Lamport, "Paxos Made Simple" §2.2–2.3; van Renesse and Altinbuken,
//! "Paxos Made Moderately Complex" §3 (the commander).

use std::collections::BTreeSet;

use super::types::{Accepted, Ballot, Message, NodeId, PaxosRole, Payload, Slot};
use super::{Paxos, Proposal};

impl Paxos {
    /// Leader: proposes `value` at the next free slot.
    pub(super) fn propose_at_next(&mut self, value: Payload) -> Slot {
        let slot = self.next_slot.max(self.chosen_to + 1);
        self.next_slot = slot + 1;
        self.propose_at(slot, value);
        slot
    }

    /// Leader: proposes `value` at `slot` at its ballot, accepting it itself (counted once durable).
    pub(super) fn propose_at(&mut self, slot: Slot, value: Payload) {
        let ballot = self.promised;
        self.proposals.insert(
            slot,
            Proposal {
                value: value.clone(),
                acks: BTreeSet::new(),
            },
        );
        self.accept_value(slot, Accepted { ballot, value });
        self.self_pending.push(slot);
        self.to_send.push(slot);
    }

    /// Leader: sends the values waiting in `to_send` to every acceptor, in batches.
    pub(super) fn flush_accepts(&mut self) {
        if self.role != PaxosRole::Leader {
            self.to_send.clear();
            return;
        }
        let mut slots = std::mem::take(&mut self.to_send);
        slots.sort_unstable();
        slots.dedup();
        let values: Vec<(Slot, Payload)> = slots
            .into_iter()
            .filter_map(|s| self.proposals.get(&s).map(|p| (s, p.value.clone())))
            .collect();
        let (ballot, chosen_to) = (self.promised, self.chosen_to);
        for batch in values.chunks(self.config.max_batch) {
            for &peer in &self.config.peers {
                self.messages.push((
                    peer,
                    Message::Accept {
                        ballot,
                        chosen_to,
                        values: batch.to_vec(),
                    },
                ));
            }
        }
    }

    /// Acceptor: accept the values unless a higher ballot was promised; answer with the slots accepted.
    pub(super) fn handle_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen_to: Slot,
        values: Vec<(Slot, Payload)>,
    ) {
        self.note_round(ballot);
        if ballot < self.promised {
            self.nack(from, ballot, None);
            return;
        }
        self.follow(from, ballot);
        if ballot < self.promised {
            // A dueling proposer (leases off) that this accept preempted went straight to a higher ballot.
            self.nack(from, ballot, None);
            return;
        }
        let mut slots = Vec::with_capacity(values.len());
        for (slot, value) in values {
            // A slot compacted here is chosen; the leader proposes there only the chosen value (Paxos's own
            // guarantee), so the acceptance stands without being stored again.
            if slot > self.snapshot.0 {
                self.accept_value(slot, Accepted { ballot, value });
            }
            slots.push(slot);
        }
        self.learn_from_leader(from, ballot, chosen_to);
        let chosen_to = self.chosen_to;
        self.messages.push((
            from,
            Message::Accepted {
                ballot,
                slots,
                chosen_to,
            },
        ));
    }

    /// Leader: an acceptor accepted these slots at `ballot` (or answered a heartbeat).
    pub(super) fn handle_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slots: Vec<Slot>,
        _chosen_to: Slot,
    ) {
        if self.role != PaxosRole::Leader || ballot != self.promised {
            return;
        }
        self.heard.insert(from);
        for slot in slots {
            if let Some(p) = self.proposals.get_mut(&slot) {
                p.acks.insert(from);
            }
        }
        self.check_chosen();
    }

    /// Leader: values accepted by a majority are chosen.
    pub(super) fn check_chosen(&mut self) {
        let quorum = self.quorum();
        let done: Vec<Slot> = self
            .proposals
            .iter()
            .filter(|(_, p)| p.acks.len() >= quorum)
            .map(|(&s, _)| s)
            .collect();
        for slot in done {
            if let Some(p) = self.proposals.remove(&slot) {
                self.learn(slot, p.value);
            }
        }
        let chosen_to = self.chosen_to;
        self.proposals.retain(|&s, _| s > chosen_to);
    }

    /// A message from the leader of `ballot` (not below our promise): promise it, stop proposing if our own
    /// ballot is lower, follow it, and (leases on) restart the lease.
    pub(super) fn follow(&mut self, leader: NodeId, ballot: Ballot) {
        if ballot > self.promised {
            self.promise(ballot);
            if self.role != PaxosRole::Acceptor {
                self.preempted(ballot);
            }
        }
        if self.role != PaxosRole::Acceptor {
            // Our own ballot (the only one equal to our promise while proposing): nothing to follow.
            return;
        }
        self.set_leader(Some((leader, ballot)));
        if self.config.leases {
            self.reset_lease_timer();
        }
    }
}
