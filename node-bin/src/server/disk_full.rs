//! What a node does when its disk is full: it keeps running, and never answers for what it could not store.
//!
//! When a write of the log, the hard state or a snapshot received from the leader fails with ENOSPC (or
//! EDQUOT), the storage has already cut the failed write back and kept nothing of it (see the storage module).
//! The core, though, had moved on in memory: entries appended, a term adopted, a vote granted. So the node
//! does what a crash and restart would do, without leaving the process: it drops every answer and message that
//! depended on the failed write (the peers see the call fail and retry), answers its pending client writes and
//! reads `Retry` with the reason, and rebuilds the core from what the storage holds. A leader is a follower
//! afterwards: a leader that cannot append even the entry a write needs cannot commit anything, and unlike a
//! stalled disk the answer is definite, so there is no reason to wait an election timeout before stepping
//! down. It stops heartbeating, the others elect a new leader within an election timeout or two, and it
//! cannot win an election itself while full (a campaign must store its term and vote first).
//!
//! Writes go to the persist thread (module `persist`), so the failure is learnt a turn or more after the core
//! decided what depended on it. Nothing decided on the failed write may be acted upon: replies (held, and
//! those of the turn that took the failure's answer, decided by the old core), requests to peers and events
//! waiting for a job are dropped with the old core. A term or vote is told (status, event feed) and sent only
//! once durable, so the term a rebuilt core comes back with is never below one anybody saw.
//!
//! Its commit index starts again at the highest commit index known at a point where every write of the core
//! had been handed over and answered, as far as the durable log reaches ([`Raft::restore_commit`] argues why
//! that is safe); status never shows less than the highest commit index it showed in this process (entries a
//! follower knew committed while still writing them stay committed, even if the rebuilt core has to fetch them
//! again), so no observer sees the commit index go back within one process, and entries that were committed
//! are never reported as superseded when the leader's snapshot or entries arrive after the disk heals.
//!
//! What it tells: the first failure logs an error and records [`NodeEvent::DiskFull`] for the event feed; a
//! leader's step-down and a campaign it cannot start (it won the pre-vote but cannot store the term and its
//! vote) are logged at warn and recorded the same way, once per leadership and once per term, not on every
//! retry. Every rebuilt core hears from the leader again; the node logs "leader changed" only when the leader
//! it knows actually changes across those rebuilds.
//!
//! While the disk is full the node refuses client writes with `Retry { reason: "disk full on node N: …" }`
//! (clients move on to another node), still answers status and events, and answers what needs no write: a
//! heartbeat in a term it already stored. Every message that would need a write is another attempt; the first
//! one that succeeds (after `disk N heal`, or once space is freed) clears the state and the node catches up
//! from the leader as any lagging follower does: no restart. A local snapshot that does not fit is skipped and
//! retried a second later; the log keeps the entries meanwhile. A failed fsync is not a full disk: it still
//! stops the node (the kernel may have dropped the unsynced data).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{Node, catch_up};
use crate::kv::KvStore;
use crate::raft::{Raft, RaftEvent, Restored, Role};
use crate::rpc::{KvReply, NodeEvent};
use crate::storage::StorageError;

/// How long a local snapshot that did not fit waits before it is tried again.
pub(super) const SNAPSHOT_RETRY: Duration = Duration::from_secs(1);

/// The full-disk failure inside `e`, if that is what it is.
pub(super) fn cause(e: &anyhow::Error) -> Option<&StorageError> {
    e.downcast_ref::<StorageError>()
        .filter(|s| matches!(s, StorageError::DiskFull { .. }))
}

impl Node {
    /// The reason given to clients while the disk is full: names the node, the file and the error.
    fn disk_full_reason(&self, e: &StorageError) -> String {
        match e {
            StorageError::DiskFull { path, op, source } => format!(
                "disk full on node {}: cannot {op} {}: {source}; nothing was written (retry: another node \
                 may lead, or space may return)",
                self.cfg.id,
                path.display()
            ),
            other => format!("disk full on node {}: {other}", self.cfg.id),
        }
    }

    /// A write of the core's state failed on a full disk: forget everything that depended on it and restart the
    /// core from the storage. See the module docs.
    pub(super) fn on_disk_full(&mut self, e: &StorageError) -> anyhow::Result<()> {
        let reason = self.disk_full_reason(e);
        let (role, term) = (self.raft.role(), self.raft.term());
        let first = self.disk_full.is_none();
        if first {
            tracing::error!(
                role = self.raft.role().as_str(),
                term = self.raft.term(),
                "{reason}; refusing writes and restarting the consensus core from the disk's state until a write \
                 succeeds"
            );
        } else {
            tracing::debug!("{reason}");
        }
        self.disk_full = Some(reason.clone());
        // Dropped, not answered: every held reply claims something durable.
        self.held.clear();
        for (_, (_, tx)) in self.proposals.drain() {
            tx.send(KvReply::Retry {
                reason: reason.clone(),
            });
        }
        for (_, read) in self.reads.drain() {
            read.tx.send(KvReply::Retry {
                reason: reason.clone(),
            });
        }

        // Called with every write answered (module `persist`), so the persist thread does not hold the storage.
        let storage = self.storage.clone();
        let storage = storage.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = storage
            .load_snapshot()
            .context("reading the snapshot back after a full disk")?;
        let meta = snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        anyhow::ensure!(
            meta == storage.snapshot_meta(),
            "snapshot file in {} is at {meta:?}, the log starts after {:?}",
            storage.dir().display(),
            storage.snapshot_meta()
        );
        if let Some(s) = &snapshot
            && s.meta.last_index > self.kv.applied_index()
        {
            // A snapshot from the leader reached the disk before the failure: the state machine starts from it.
            self.kv =
                KvStore::restore(&s.data).context("restoring the snapshot after a full disk")?;
            self.last_applied_term = s.meta.last_term;
        }
        self.last_snapshot_index = meta.last_index;

        // Status never shows the commit index going back: what was known committed at the end of the last
        // turn that wrote everything is still committed (and held by the durable log).
        self.commit_floor = self.good_commit;
        self.core_restarts += 1;
        let lease = self.raft.lease();
        let frozen = self.raft.frozen();
        let mut cfg = self.core_cfg.clone();
        cfg.seed ^= self.core_restarts.wrapping_mul(0xA076_1D64_78BD_642F);
        self.raft = Raft::new(
            cfg,
            Restored {
                hard_state: storage.hard_state(),
                snapshot,
                entries: storage.entries().to_vec(),
            },
        );
        self.raft.set_catch_up(catch_up(self.cfg.snapshot_every));
        self.raft.set_frozen(frozen);
        if storage.lost_data() {
            // Still recovering from a possible loss (the marker is on disk): the rebuilt core is too.
            self.raft.mark_lost_data();
        }
        // A follower of a live leader stays in its lease: the disk filling up says nothing about the leader
        // (a recovering core ignores it).
        if let Some(lease) = lease {
            self.raft.restore_lease(lease);
        }
        // Entries known committed stay committed: the rebuilt core starts its commit index there (see
        // `Raft::restore_commit` for why that is safe), so nothing committed is reported as superseded later.
        self.raft.restore_commit(self.commit_floor);
        let mut report = first;
        match role {
            Role::Leader => {
                tracing::warn!(
                    term,
                    "stepping down: a leader that cannot write its log cannot commit"
                );
                report = true;
            }
            Role::Candidate if self.campaign_blocked != Some(term) => {
                // Won the pre-vote (or was told to campaign), but the term and vote must be durable before
                // any vote counts. Said once per term, not on every retry.
                tracing::warn!(
                    term,
                    "not starting the election for term {term}: the pre-vote was won, but the term and this \
                     node's vote cannot be stored ({reason})"
                );
                self.campaign_blocked = Some(term);
                report = true;
            }
            _ => {}
        }
        if report {
            self.record(NodeEvent::DiskFull {
                role,
                term,
                reason: reason.clone(),
            });
        }
        if role != Role::Follower {
            let term = self.raft.term();
            self.record(NodeEvent::Raft(RaftEvent::RoleChanged {
                role: Role::Follower,
                term,
            }));
            if self.leader_announced != Some((term, None)) {
                self.leader_announced = Some((term, None));
                self.record(NodeEvent::Raft(RaftEvent::LeaderChanged {
                    leader: None,
                    term,
                }));
            }
        }
        Ok(())
    }

    /// The commit index status reports: the core's, or what was known committed before it was restarted, and
    /// never less than status showed before in this process (the core's index may cover entries still being
    /// written; a core rebuilt after a full disk forgets those, but they are committed all the same).
    pub(super) fn reported_commit(&self) -> u64 {
        let commit = self
            .raft
            .commit_index()
            .max(self.commit_floor)
            .max(self.commit_shown.get());
        self.commit_shown.set(commit);
        commit
    }

    /// A write reached the disk: if it was full, it is not any more.
    pub(super) fn disk_wrote(&mut self) {
        if self.disk_full.take().is_some() {
            tracing::info!("the disk takes writes again: accepting writes");
            self.campaign_blocked = None;
        }
    }

    /// The refusal for a client write while the disk is full, if it is.
    pub(super) fn refuse_write(&self) -> Option<KvReply> {
        self.disk_full.as_ref().map(|reason| KvReply::Retry {
            reason: reason.clone(),
        })
    }

    /// Whether a local snapshot may be tried now; after one did not fit, not before [`SNAPSHOT_RETRY`].
    pub(super) fn snapshot_allowed(&self) -> bool {
        self.snapshot_retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// A local snapshot did not fit: the log keeps its entries; try again later.
    pub(super) fn snapshot_did_not_fit(&mut self, e: &StorageError) {
        tracing::warn!(error = %e, "snapshot skipped: {}", self.disk_full_reason(e));
        self.snapshot_retry_at = Some(Instant::now() + SNAPSHOT_RETRY);
    }
}
