//! Persistence off the actor: a thread of its own writes and fdatasyncs what the core hands over, so a slow
//! disk delays only what must wait for it, never the node's ticks, heartbeats or answers that claim nothing new.
//!
//! What may go out before a write is durable, and what may not (Raft thesis §10.2.1; etcd's asynchronous
//! storage writes follow the same rule):
//! - A leader sends its new entries to the followers while it writes them itself: the core counts the leader
//!   towards a commit quorum only up to what the driver reported durable ([`crate::raft::Raft::on_persisted`]).
//! - Nothing is sent, and no answer leaves, while the term or vote it was decided in is not durable: a vote
//!   request of a candidate waits for its term and self-vote; a granted vote waits for the vote.
//! - An AppendEntries success waits until the entries it names (up to its `match_index`) are durable, and
//!   leaves from the persist thread the moment they are (a release, module `durable`); a
//!   heartbeat anchored at entries already durable is answered at once, which is what keeps a leader with a
//!   slow disk in office: its followers keep answering it between two fsyncs.
//! - Snapshot answers and the removal of the lost-data marker wait for everything written before them; status
//!   waits only while a term or vote is being written (its log tail may show entries not yet durable).
//!
//! The thread itself is the `durable` module's, shared with the Paxos node: jobs are written in order,
//! consecutive jobs that do not truncate as one record with one fdatasync (group commit). A job that fails puts
//! the thread in a failed state: it answers every later job as not written, without touching the disk, until
//! the actor, having rebuilt its core from what is durable (module `disk_full`), resets it.
//!
//! A compaction (a snapshot taken locally: the snapshot's temporary file written and fsynced, renamed, its
//! directory fsynced, then the WAL rewritten the same way, four syncs in all) is a job of this thread too, in
//! order with the writes: it sees the storage as the writes before it left it, so the entries up to the
//! snapshot are stored, and the writes after it go to the rewritten WAL. While it runs the actor goes on
//! ticking, heartbeating and answering heartbeats; only what waits for a write queued behind it waits longer.
//! The core is compacted ([`crate::raft::Raft::compact`]) once the snapshot is durable, never before. A
//! snapshot that does not fit on a full disk is skipped (the storage kept nothing of it) and tried again
//! later; any other failure stops the node, as a failed write does.
//!
//! A snapshot received from the leader is installed the same way (issue 18): a job in order with the writes,
//! which restores a state machine from it and then saves it with the same four syncs; an append handed over
//! before it is durable before it, one handed over after it is written to the log it rewrote. The
//! InstallSnapshot answer waits for it, as every snapshot answer waits for everything handed over before it.
//! The core counts the snapshot as held as soon as it took it, so meanwhile an AppendEntries success waits for
//! the install if it claims more than was durable and committed before (what a heartbeat anchored at the
//! follower's acknowledged entries claims is answered at once), committed entries after the snapshot wait to
//! be applied until its state machine is in, no local snapshot is taken, and its event is told once it is
//! durable. Votes, pre-votes, heartbeats and status keep flowing. One that does not fit on a full disk is a
//! failed write (the core is rebuilt from what is durable); an unreadable one, or any other failure, stops the
//! node.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::kv::KvStore;
use crate::raft::{Entry, HardState, Index, Snapshot, SnapshotMeta};
use crate::storage::{Storage, StorageError};

use super::durable::{self, Answer, Done, Durable};
use super::{Cmd, Held, Node, disk_full};

/// One batch of the core's state to make durable (the persistence half of a `Ready`).
pub(super) struct Job {
    /// New term and vote, if they changed.
    pub(super) hard_state: Option<HardState>,
    /// Stored entries from here on are removed first.
    pub(super) truncate_from: Option<Index>,
    /// Entries to append after the truncation point.
    pub(super) entries: Vec<Entry>,
}

impl Durable for Storage {
    type Write = Job;
    type Snapshot = Snapshot;

    fn joins(w: &Job) -> bool {
        w.truncate_from.is_none()
    }

    fn write(&mut self, group: &[&Job]) -> Result<bool, StorageError> {
        let hard_state = group.iter().rev().find_map(|j| j.hard_state);
        let truncate_from = group.first().and_then(|j| j.truncate_from);
        let entries: Vec<Entry> = group
            .iter()
            .flat_map(|j| j.entries.iter().cloned())
            .collect();
        let before = self.wal_bytes();
        self.persist(hard_state.as_ref(), truncate_from, &entries)?;
        Ok(self.wal_bytes() != before)
    }

    fn compact(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        // A full disk leaves the storage as it was (usable); any other failure makes the storage refuse every
        // later write by itself, and the actor stops the node.
        self.save_snapshot(snapshot)
    }

    fn install(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        // After an installed snapshot the core's log holds nothing past it, so nothing is kept.
        self.install_snapshot(snapshot, &[])
    }

    fn state_machine(snapshot: &Snapshot) -> &[u8] {
        &snapshot.data
    }
}

/// A compaction handed to the persist thread, waiting for its answer: the core is compacted only once the
/// snapshot is durable.
pub(super) struct Compacting {
    /// Its number in the job sequence.
    seq: u64,
    /// The applied index the snapshot was taken at.
    index: Index,
    /// The state machine's snapshot, for the core to send to followers.
    data: Vec<u8>,
}

/// A snapshot received from the leader, handed to the persist thread and not answered yet.
pub(super) struct Installing {
    /// Its number in the job sequence.
    seq: u64,
    /// Its position.
    meta: SnapshotMeta,
    /// The highest index an AppendEntries success may claim without waiting for it: what was both durable
    /// and committed before the core took the snapshot (the core counts the snapshot as held from then on).
    pub(super) floor: Index,
}

/// The actor's end of the persistence pipeline: the shared persist thread ([`durable::Pipeline`]) and what the
/// Raft node tracks of it.
pub(super) struct Pipeline {
    /// The persist thread and its job numbers.
    pub(super) io: durable::Pipeline<Storage>,
    /// The hard state of the last job handed over that carried one.
    pub(super) submitted_hs: HardState,
    /// The hard state known durable.
    pub(super) durable_hs: HardState,
    /// The compaction in flight, if one is: at most one at a time.
    pub(super) compacting: Option<Compacting>,
    /// Snapshots from the leader being installed, oldest first.
    pub(super) installing: VecDeque<Installing>,
}

impl Pipeline {
    /// Starts the persist thread over `storage`, whose durable hard state is `hs`; it wakes the actor through
    /// `wake` after each job.
    pub(super) fn start(
        storage: Arc<Mutex<Storage>>,
        hs: HardState,
        wake: mpsc::WeakUnboundedSender<Cmd>,
    ) -> std::io::Result<Pipeline> {
        let io = durable::Pipeline::start(storage, move || {
            wake.upgrade()
                .is_some_and(|w| w.send(Cmd::Persisted).is_ok())
        })?;
        Ok(Pipeline {
            io,
            submitted_hs: hs,
            durable_hs: hs,
            compacting: None,
            installing: VecDeque::new(),
        })
    }

    /// Whether a term or vote handed over is not durable yet.
    pub(super) fn hard_state_pending(&self) -> bool {
        self.submitted_hs != self.durable_hs
    }

    /// Whether every job handed over was answered.
    pub(super) fn idle(&self) -> bool {
        self.io.idle()
    }

    /// The number of the last job handed over.
    pub(super) fn submitted(&self) -> u64 {
        self.io.submitted
    }
}

impl Node {
    /// Hands the persistence half of a ready to the persist thread, if there is anything to write.
    pub(super) fn submit(
        &mut self,
        hard_state: Option<HardState>,
        truncate_from: Option<Index>,
        entries: Vec<Entry>,
    ) {
        if hard_state.is_none() && truncate_from.is_none() && entries.is_empty() {
            return;
        }
        let p = &mut self.pipeline;
        if let Some(hs) = hard_state {
            p.submitted_hs = hs;
        }
        p.io.write(Job {
            hard_state,
            truncate_from,
            entries,
        });
    }

    /// Hands a snapshot taken locally at applied index `index` to the persist thread, which saves it and
    /// compacts the WAL after the jobs handed over before it; the core is compacted when it answers
    /// ([`Node::on_compacted`]).
    pub(super) fn submit_compaction(&mut self, index: Index, snapshot: Snapshot) {
        let p = &mut self.pipeline;
        debug_assert!(p.compacting.is_none(), "one compaction at a time");
        let data = snapshot.data.clone();
        let seq = p.io.compact(snapshot);
        p.compacting = Some(Compacting { seq, index, data });
    }

    /// Hands a snapshot received from the leader to the persist thread, which restores a state machine from
    /// it and saves it after the jobs handed over before it; the actor swaps the state machine in when it
    /// answers ([`Node::on_installed`]). `floor`: see [`Installing::floor`].
    pub(super) fn submit_install(&mut self, snapshot: Snapshot, floor: Index) {
        let meta = snapshot.meta;
        let seq = self.pipeline.io.install(snapshot);
        self.pipeline.installing.push_back(Installing {
            seq,
            meta,
            floor: floor.min(meta.last_index),
        });
    }

    /// Takes every answer already in, without waiting.
    pub(super) fn take_persisted(&mut self) -> anyhow::Result<()> {
        while let Some(answer) = self.pipeline.io.try_answer() {
            self.on_answer(answer)?;
        }
        self.after_persisted()
    }

    /// Waits until every job handed over is answered, and takes the answers.
    pub(super) fn flush_persist(&mut self) -> anyhow::Result<()> {
        while !self.pipeline.idle() {
            let answer = self.pipeline.io.wait_answer()?;
            self.on_answer(answer)?;
        }
        Ok(())
    }

    fn on_answer(&mut self, answer: Answer<Storage>) -> anyhow::Result<()> {
        match answer {
            Answer::Written(done) => self.on_done(done),
            Answer::Compacted(seq, result) => self.on_compacted(seq, result),
            Answer::Installed(seq, result) => self.on_installed(seq, result),
        }
    }

    /// A compaction finished: once the snapshot is durable the core drops what it covers; a snapshot that did
    /// not fit is tried again later; one skipped after a failed job is forgotten (the core that planned it was
    /// rebuilt from the disk).
    fn on_compacted(
        &mut self,
        seq: u64,
        result: Result<(), Option<StorageError>>,
    ) -> anyhow::Result<()> {
        let Some(c) = self.pipeline.compacting.take_if(|c| c.seq == seq) else {
            debug_assert!(false, "the answer to compaction {seq} was not expected");
            return Ok(());
        };
        match result {
            Ok(()) => {
                let bytes = c.data.len();
                self.raft.compact(c.index, c.data);
                self.last_snapshot_index = self.last_snapshot_index.max(c.index);
                tracing::info!(index = c.index, bytes, "took snapshot");
                Ok(())
            }
            Err(None) => Ok(()),
            Err(Some(e @ StorageError::DiskFull { .. })) => {
                self.snapshot_did_not_fit(&e);
                Ok(())
            }
            Err(Some(e)) => Err(anyhow::Error::new(e).context("saving snapshot")),
        }
    }

    /// A snapshot from the leader is durable (and its state machine restored): swap the state machine in, and
    /// apply what committed after it meanwhile once no other install is in flight. One that did not fit on a
    /// full disk left nothing stored: rebuild the core from what is durable (module `disk_full`), as for a
    /// failed write; any other failure stops the node.
    fn on_installed(
        &mut self,
        seq: u64,
        result: Result<Box<KvStore>, Option<anyhow::Error>>,
    ) -> anyhow::Result<()> {
        let Some(i) = self.pipeline.installing.pop_front() else {
            debug_assert!(false, "the answer to install {seq} was not expected");
            return Ok(());
        };
        debug_assert_eq!(i.seq, seq, "installs are answered in order");
        match result {
            Ok(kv) => {
                self.kv = *kv;
                self.last_applied_term = i.meta.last_term;
                self.last_snapshot_index = i.meta.last_index;
                tracing::info!(
                    index = i.meta.last_index,
                    term = i.meta.last_term,
                    "installed snapshot from the leader"
                );
                if self.pipeline.installing.is_empty() {
                    for entry in std::mem::take(&mut self.apply_after_install) {
                        self.apply(entry);
                    }
                    self.serve_reads();
                }
                Ok(())
            }
            Err(None) => Ok(()),
            Err(Some(e)) => {
                let e = e.context("installing the snapshot received from the leader");
                let Some(full) = disk_full::cause(&e) else {
                    return Err(e);
                };
                self.pipeline.io.failed = true;
                self.after_disk_full(full)
            }
        }
    }

    fn on_done(&mut self, done: Done<Job>) -> anyhow::Result<()> {
        self.timings.persist(done.waited, done.wrote_for);
        let latency = self.pipeline.io.note_latency(done.waited + done.wrote_for);
        let tick = self.cfg.tick.as_nanos().max(1);
        let ticks = latency.as_nanos().div_ceil(tick);
        self.raft
            .set_vote_latency(u32::try_from(ticks).unwrap_or(u32::MAX));
        match done.result {
            Ok(()) => {
                if !self.pipeline.io.failed {
                    if let Some(hs) = done.write.hard_state {
                        self.pipeline.durable_hs = hs;
                    }
                    if let Some(e) = done.write.entries.last() {
                        self.raft.on_persisted(e.index, e.term);
                        self.timings.persisted_to(e.index);
                    }
                    if done.wrote {
                        self.disk_wrote();
                    }
                }
                Ok(())
            }
            Err(None) => Ok(()),
            Err(Some(e)) => {
                let e = anyhow::Error::new(e).context("persisting log entries");
                let Some(full) = disk_full::cause(&e) else {
                    return Err(e);
                };
                // Nothing handed over after it was written either: wait for all of it, then rebuild the core
                // from what is durable and let the thread write again.
                self.pipeline.io.failed = true;
                self.after_disk_full(full)?;
                Ok(())
            }
        }
    }

    /// A write failed on a full disk (a job, or a snapshot from the leader): nothing handed over after it was
    /// written either, so wait for all of it, rebuild the core from what is durable (module `disk_full`), and
    /// let the thread write again.
    ///
    /// Everything the old core decided and the durable state does not back is dropped, not sent: replies of
    /// this turn not yet matched with a job (`fresh`, decided by the old core in the same batch as the failure's
    /// answer), held replies, deferred requests and events, and entries waiting for an install to be applied
    /// (the rebuilt core hands them out again). The peers see their calls fail and retry.
    pub(super) fn after_disk_full(&mut self, full: &StorageError) -> anyhow::Result<()> {
        self.flush_persist()?;
        self.pipeline.io.resets += 1;
        self.fresh.clear();
        self.deferred.clear();
        self.deferred_events.clear();
        self.pipeline.installing.clear();
        self.apply_after_install.clear();
        self.on_disk_full(full)?;
        let durable = self
            .storage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hard_state();
        debug_assert!(
            durable.term >= self.pipeline.durable_hs.term,
            "a rebuild must not go back before a durable term: durable {durable:?}, known durable {:?}",
            self.pipeline.durable_hs
        );
        self.pipeline.durable_hs = durable;
        self.pipeline.submitted_hs = durable;
        self.pipeline.io.reset();
        Ok(())
    }

    /// Releases what the answers made durable: held replies, deferred messages, status; once nothing is in
    /// flight, what needs everything durable (the commit index status may fall back to, the lost-data marker).
    pub(super) fn after_persisted(&mut self) -> anyhow::Result<()> {
        let answered = self.pipeline.io.answered;
        while self
            .deferred
            .front()
            .is_some_and(|(need, _, _)| *need <= answered)
        {
            let (_, peer, req) = self.deferred.pop_front().expect("front");
            self.send(peer, req);
        }
        while self
            .deferred_events
            .front()
            .is_some_and(|(need, _)| *need <= answered)
        {
            let (_, event) = self.deferred_events.pop_front().expect("front");
            self.announce(event);
        }
        let held = std::mem::take(&mut self.held);
        for (need, h) in held {
            if need <= answered {
                match h {
                    Held::Vote(r, tx) => {
                        debug_assert!(
                            !r.granted || r.pre_vote || self.pipeline.durable_hs.term >= r.term,
                            "a vote granted in term {} leaves before its term is durable ({:?})",
                            r.term,
                            self.pipeline.durable_hs
                        );
                        tx.send(r)
                    }
                    Held::Append(r, tx) => tx.send(r),
                    Held::Snapshot(r, tx) => tx.send(r),
                }
            } else {
                self.held.push((need, h));
            }
        }
        // Only with every write of the core handed over and answered is the log durable up to the commit
        // index, which `Raft::restore_commit` requires of what a rebuilt core starts from.
        if self.pipeline.idle() && !self.raft.has_ready() {
            self.good_commit = self.raft.commit_index().max(self.commit_floor);
            self.log_warnings_and_recovery();
        }
        let waiting = std::mem::take(&mut self.status_waiting);
        for (need, tx) in waiting {
            if need <= answered {
                let _ = tx.send(self.status());
            } else {
                self.status_waiting.push((need, tx));
            }
        }
        Ok(())
    }

    /// The job a reply made this turn must wait for: none (0) when it claims only what is durable already.
    /// While a snapshot from the leader is being installed, the core counts it as held; an AppendEntries
    /// success above what was durable and committed before it (its floor) waits for it too.
    pub(super) fn needs(&self, held: &Held) -> u64 {
        let claims_entries = match held {
            Held::Append(r, _) => {
                r.success
                    && (r.match_index > self.raft.persisted_index()
                        || self
                            .pipeline
                            .installing
                            .iter()
                            .any(|i| r.match_index > i.floor))
            }
            Held::Vote(..) => false,
            Held::Snapshot(..) => true,
        };
        if claims_entries || self.pipeline.hard_state_pending() {
            self.pipeline.submitted()
        } else {
            0
        }
    }
}
