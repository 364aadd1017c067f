//! The distinguished proposer and its lease: the leader's heartbeats, the lease timeout after which a node
//! that no longer hears its leader starts phase 1, acceptors that refuse to promise another proposer while the
//! lease runs, and a leader that steps down when no majority answered within a lease. Chandra, Griesemer and
//! Redstone, "Paxos Made Live" §5.2 (master leases); Lamport, "Paxos Made Simple" §2.4 (why a distinguished
//! proposer is needed for progress).
//!
//! With leases off ([`super::Config::leases`]) the leader still sends heartbeats, but only to spread its chosen
//! prefix: no node defers to them, a node with client values waits only a fixed timeout before phase 1 of its
//! own, and a proposer preempted by a higher ballot retries at once.

use super::Paxos;
use super::types::{Ballot, Message, NodeId, PaxosRole, Slot};

impl Paxos {
    /// A tick of a node that does not lead.
    pub(super) fn tick_follower(&mut self) {
        self.lease_elapsed = self.lease_elapsed.saturating_add(1);
        if self.lease_elapsed < self.lease_timeout {
            return;
        }
        match self.role {
            // No majority promised in time (or the messages were lost): a new ballot.
            PaxosRole::Preparing => self.start_prepare(),
            PaxosRole::Acceptor if self.config.leases || !self.queue.is_empty() => {
                self.start_prepare()
            }
            _ => {}
        }
    }

    /// A tick of the leader: heartbeats (with unanswered accepts sent again) and the quorum check.
    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
            let unanswered: Vec<Slot> = self.proposals.keys().copied().collect();
            self.to_send.extend(unanswered);
        }
        self.quorum_elapsed += 1;
        if self.quorum_elapsed >= self.config.lease_ticks_min {
            self.quorum_elapsed = 0;
            let heard = self.heard.len() + 1;
            self.heard.clear();
            if heard < self.quorum() {
                self.step_down(
                    format!(
                        "heard from {heard} of {} acceptors within a lease, fewer than a majority",
                        self.config.peers.len() + 1
                    ),
                    None,
                );
            }
        }
    }

    /// Leader: a heartbeat to every acceptor.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let (ballot, chosen_to) = (self.promised, self.chosen_to);
        for &peer in &self.config.peers {
            self.messages
                .push((peer, Message::Heartbeat { ballot, chosen_to }));
        }
    }

    /// Acceptor: the leader of `ballot` is alive. A stale leader is told of the higher promise; the answer to
    /// a current one is an empty `accepted` carrying this node's chosen prefix.
    pub(super) fn handle_heartbeat(&mut self, from: NodeId, ballot: Ballot, chosen_to: Slot) {
        self.note_round(ballot);
        if ballot < self.promised {
            self.nack(from, ballot, None);
            return;
        }
        self.follow(from, ballot);
        self.learn_from_leader(from, ballot, chosen_to);
        let chosen_to = self.chosen_to;
        self.messages.push((
            from,
            Message::Accepted {
                ballot,
                slots: Vec::new(),
                chosen_to,
            },
        ));
    }

    /// The leader whose lease this node keeps (leases on): itself while it leads, or the leader it heard from
    /// within the minimum lease timeout.
    pub(super) fn lease_holder(&self) -> Option<NodeId> {
        if !self.config.leases {
            return None;
        }
        match (self.role, self.leader) {
            (PaxosRole::Leader, _) => Some(self.config.id),
            (PaxosRole::Acceptor, Some((l, _)))
                if self.lease_elapsed < self.config.lease_ticks_min =>
            {
                Some(l)
            }
            _ => None,
        }
    }
}
