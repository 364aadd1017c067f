//! Learning what was chosen: an acceptor learns a slot chosen when its leader's chosen prefix covers a value
//! it accepted at that leader's ballot (one ballot proposes one value per slot), and a node that still lags
//! asks for the chosen values (catch-up), getting them in batches or, when the sender compacted them, its
//! snapshot. Lamport, "Paxos Made Simple" §2.3 (learning a chosen value) and §3 (a new leader learning the
//! chosen commands it lacks); Chandra et al., "Paxos Made Live" §5.1 (catch-up).

use super::Paxos;
use super::types::{Ballot, Message, NodeId, Payload, Slot};

impl Paxos {
    /// Learns the slots up to `chosen_to` (the leader's chosen prefix) that this node accepted at the leader's
    /// `ballot`, and asks the leader for the rest.
    pub(super) fn learn_from_leader(&mut self, leader: NodeId, ballot: Ballot, chosen_to: Slot) {
        if chosen_to <= self.chosen_to {
            return;
        }
        let known: Vec<(Slot, Payload)> = self
            .accepted
            .range(self.chosen_to + 1..=chosen_to)
            .filter(|(_, a)| a.ballot == ballot)
            .map(|(&s, a)| (s, a.value.clone()))
            .collect();
        for (slot, value) in known {
            self.learn(slot, value);
        }
        if self.chosen_to < chosen_to {
            self.ask_catch_up(leader, false);
        }
    }

    /// Asks `peer` for the chosen values after this node's chosen prefix, at most once per heartbeat interval
    /// unless `now`.
    pub(super) fn ask_catch_up(&mut self, peer: NodeId, now: bool) {
        if !now && self.catch_up_elapsed < self.config.heartbeat_ticks {
            return;
        }
        self.catch_up_elapsed = 0;
        let from_slot = self.chosen_to + 1;
        self.messages.push((peer, Message::CatchUp { from_slot }));
    }

    /// A peer asks for chosen values from `from_slot` on: a batch of them, or the snapshot if they were
    /// compacted.
    pub(super) fn handle_catch_up(&mut self, from: NodeId, from_slot: Slot) {
        if from_slot <= self.snapshot.0 {
            let (slot, data) = self.snapshot.clone();
            self.messages.push((from, Message::Snapshot { slot, data }));
            return;
        }
        if from_slot > self.chosen_to {
            return;
        }
        let values: Vec<(Slot, Payload)> = self
            .chosen
            .range(from_slot..=self.chosen_to)
            .take(self.config.max_batch)
            .map(|(&s, v)| (s, v.clone()))
            .collect();
        let chosen_to = self.chosen_to;
        self.messages
            .push((from, Message::Chosen { values, chosen_to }));
    }

    /// Chosen values from a peer; asks for more at once while the peer knows more.
    pub(super) fn handle_chosen(
        &mut self,
        from: NodeId,
        values: Vec<(Slot, Payload)>,
        chosen_to: Slot,
    ) {
        let before = self.chosen_to;
        for (slot, value) in values {
            self.learn(slot, value);
        }
        self.next_slot = self.next_slot.max(self.chosen_to + 1);
        if self.chosen_to > before && self.chosen_to < chosen_to {
            self.ask_catch_up(from, true);
        }
    }
}
