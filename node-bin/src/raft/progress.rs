//! What a leader knows about one follower: how far it matches, what to send next, and how (probing one
//! message at a time, pipelining batches, or streaming a snapshot).

use std::collections::VecDeque;
use std::sync::Arc;

use super::types::{ConfState, Index, SnapshotMeta};

/// How the leader currently feeds a follower.
#[derive(Clone, Debug)]
pub(crate) enum Mode {
    /// Where the follower's log matches is unknown: one AppendEntries at a time until one succeeds.
    Probe {
        /// A probe is outstanding (or the peer was unreachable): wait for its answer or the next heartbeat.
        paused: bool,
    },
    /// The follower is known to match: send batches optimistically, several in flight.
    Replicate,
    /// The follower needs entries the leader compacted: stream the snapshot, one chunk in flight. The
    /// transfer keeps the snapshot it started with to the end, even when the leader compacts again meanwhile
    /// (restarting on every new snapshot starved a follower on a slow link), and the leader keeps the
    /// entries after it so the follower can continue from there.
    Snapshot {
        /// The snapshot being sent.
        meta: SnapshotMeta,
        /// Its bytes, shared with the log (or kept alive here after a newer snapshot replaced them there).
        data: Arc<Vec<u8>>,
        /// Next byte offset to send (the follower's last acknowledged position).
        offset: u64,
        /// Ticks (counted at heartbeats) the outstanding chunk has gone unanswered.
        waited: u32,
        /// The configuration in effect at the snapshot, sent with every chunk.
        config: Option<ConfState>,
    },
}

/// Replication state of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be replicated (durably) on the follower.
    pub(crate) match_index: Index,
    /// Next index to send.
    pub(crate) next_index: Index,
    /// How it is fed.
    pub(crate) mode: Mode,
    /// Last index of each AppendEntries batch in flight (Replicate mode).
    pub(crate) inflight: VecDeque<Index>,
    /// Heard from in the current CheckQuorum window.
    pub(crate) recent_active: bool,
    /// Highest ReadIndex round the follower acknowledged.
    pub(crate) read_acked: u64,
    /// Leader ticks since the follower last answered anything.
    pub(crate) silent_ticks: u32,
    /// The id of the snapshot chunk outstanding, if one is: only its answer (or failure) moves a transfer on,
    /// and no other chunk goes out meanwhile, even to a transfer started after the one it belongs to.
    pub(crate) chunk_in_flight: Option<u64>,
    /// The follower is still recovering from possible data loss, as its latest answer said (true until it
    /// answers): such a learner is not promoted.
    pub(crate) recovering: bool,
    /// Entries the follower refused in a row with term 0 (a recovering node that cannot validate this leader
    /// yet, the `recovery` module's rule 1): each one doubles the wait before the next, up to
    /// [`MAX_UNVALIDATED_BACKOFF`] heartbeats.
    pub(crate) unvalidated_refusals: u32,
    /// Heartbeats still to come before entries go to the follower again after such a refusal (0: no wait).
    pub(crate) resend_in: u32,
}

/// The longest wait, in heartbeats, before a leader sends entries again to a follower that keeps refusing
/// them with term 0. A recovering node refuses every batch until it has learned the current term from every
/// other voter, which takes as long as a voter stays unreachable; sending it a full batch on every heartbeat
/// cost about 3 MB/s for nothing. The empty heartbeats still go every time (they are what a recovering node
/// answers cheaply), and the first answer in the leader's term ends the wait.
pub(crate) const MAX_UNVALIDATED_BACKOFF: u32 = 31;

impl Progress {
    /// A follower a fresh leader knows nothing about: probe from just after the leader's last entry.
    pub(crate) fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            mode: Mode::Probe { paused: false },
            inflight: VecDeque::new(),
            recent_active: false,
            read_acked: 0,
            silent_ticks: 0,
            chunk_in_flight: None,
            recovering: true,
            unvalidated_refusals: 0,
            resend_in: 0,
        }
    }

    /// The follower refused entries with term 0: wait 1, 2, 4, 8, 16, then 31 heartbeats before sending it
    /// entries again (sent at heartbeats 1, 3, 7, 15, 31, then every 31 after the first refusal).
    pub(crate) fn refused_unvalidated(&mut self) {
        self.unvalidated_refusals = self.unvalidated_refusals.saturating_add(1);
        let doubling = 1u32
            .checked_shl(self.unvalidated_refusals - 1)
            .unwrap_or(u32::MAX);
        self.resend_in = doubling.min(MAX_UNVALIDATED_BACKOFF);
    }

    /// A heartbeat is going out: whether entries may go with it, counting down a wait after refusals.
    pub(crate) fn heartbeat_may_resend(&mut self) -> bool {
        self.resend_in = self.resend_in.saturating_sub(1);
        self.resend_in == 0
    }

    /// The follower answered in this leader's term: no more waiting. Returns whether it was waiting.
    pub(crate) fn validated(&mut self) -> bool {
        let waited = self.unvalidated_refusals > 0;
        self.unvalidated_refusals = 0;
        self.resend_in = 0;
        waited
    }

    /// Back to probing from `next`.
    pub(crate) fn become_probe(&mut self, next: Index, paused: bool) {
        self.mode = Mode::Probe { paused };
        self.next_index = next.max(1);
        self.inflight.clear();
    }

    /// The follower matches at `match_index`: stream from there.
    pub(crate) fn become_replicate(&mut self) {
        self.mode = Mode::Replicate;
        self.next_index = self.match_index + 1;
        self.inflight.clear();
    }

    /// Start streaming the snapshot `meta` (whose bytes are `data`) from offset 0.
    pub(crate) fn become_snapshot(
        &mut self,
        meta: SnapshotMeta,
        data: Arc<Vec<u8>>,
        config: Option<ConfState>,
    ) {
        self.mode = Mode::Snapshot {
            meta,
            data,
            offset: 0,
            waited: 0,
            config,
        };
        self.inflight.clear();
    }

    /// Whether a snapshot transfer to this follower is under way and still pins log entries: the follower
    /// answered within `max_silence` ticks (a dead one pins nothing). Returns the snapshot's last index.
    pub(crate) fn snapshot_pin(&self, max_silence: u32) -> Option<Index> {
        match &self.mode {
            Mode::Snapshot { meta, .. } if self.silent_ticks <= max_silence => {
                Some(meta.last_index)
            }
            _ => None,
        }
    }

    /// The follower acknowledged up to `index`: batches ending there or before are done.
    pub(crate) fn free_inflight_to(&mut self, index: Index) {
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
    }

    /// Whether another AppendEntries may be sent now.
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match self.mode {
            Mode::Probe { paused } => !paused,
            Mode::Replicate => self.inflight.len() < max_inflight.max(1),
            Mode::Snapshot { .. } => false,
        }
    }

    /// Whether a snapshot is being streamed.
    pub(crate) fn is_snapshotting(&self) -> bool {
        matches!(self.mode, Mode::Snapshot { .. })
    }
}
