//! Snapshots: the driver compacts the chosen, applied prefix into a snapshot of its state machine, after which
//! the acceptor forgets those slots (they are chosen, so no proposer needs its report of them: one whose phase 1
//! starts at or below the snapshot is told to catch up first); and a node that lags behind a peer's snapshot
//! installs it. Chandra et al., "Paxos Made Live" §5.5 (snapshots).

use super::Paxos;
use super::types::{NodeId, PaxosEvent, PaxosRole, Slot};

impl Paxos {
    /// The driver took a snapshot of its state machine at applied slot `slot` (no later than the last slot
    /// handed out to apply): slots up to it are dropped and `data` is kept to send to nodes that lag behind it.
    pub fn compact(&mut self, slot: Slot, data: Vec<u8>) {
        if slot <= self.snapshot.0 || slot > self.applied {
            return;
        }
        self.forget_to(slot);
        self.snapshot = (slot, data);
        self.events.push(PaxosEvent::SnapshotTaken { slot });
    }

    /// The last slot the latest snapshot covers (0 when none).
    pub fn snapshot_slot(&self) -> Slot {
        self.snapshot.0
    }

    /// A peer's snapshot: installed when it covers slots this node does not know chosen.
    pub(super) fn handle_snapshot(&mut self, _from: NodeId, slot: Slot, data: Vec<u8>) {
        if slot <= self.chosen_to {
            return;
        }
        self.forget_to(slot);
        self.snapshot = (slot, data.clone());
        self.pending_snapshot = Some((slot, data));
        self.chosen_to = slot;
        self.applied = slot;
        // Values learned beyond the snapshot may continue the prefix.
        while self.chosen.contains_key(&(self.chosen_to + 1)) {
            self.chosen_to += 1;
        }
        self.next_slot = self.next_slot.max(self.chosen_to + 1);
        self.events.push(PaxosEvent::SnapshotInstalled { slot });
        if self.role == PaxosRole::Preparing {
            // Phase 1 covered slots now known chosen, and an acceptor that compacted them refused to report:
            // start again from the new prefix.
            self.start_prepare();
        }
    }

    fn forget_to(&mut self, slot: Slot) {
        self.accepted.retain(|&s, _| s > slot);
        self.unstable.retain(|&s, _| s > slot);
        self.chosen.retain(|&s, _| s > slot);
        self.proposals.retain(|&s, _| s > slot);
    }
}
