//! Persistence off the actor: a thread of its own writes and fdatasyncs what the core hands over, so a slow
//! disk delays only what must wait for it, never the node's ticks, heartbeats or answers that claim nothing new.
//!
//! What may go out before a write is durable, and what may not (Raft thesis §10.2.1; etcd's asynchronous
//! storage writes follow the same rule):
//! - A leader sends its new entries to the followers while it writes them itself: the core counts the leader
//!   towards a commit quorum only up to what the driver reported durable ([`crate::raft::Raft::on_persisted`]).
//! - Nothing is sent, and no answer leaves, while the term or vote it was decided in is not durable: a vote
//!   request of a candidate waits for its term and self-vote; a granted vote waits for the vote.
//! - An AppendEntries success waits until the entries it names (up to its `match_index`) are durable; a
//!   heartbeat anchored at entries already durable is answered at once, which is what keeps a leader with a
//!   slow disk in office: its followers keep answering it between two fsyncs.
//! - Snapshot answers and the removal of the lost-data marker wait for everything written before them; status
//!   waits only while a term or vote is being written (its log tail may show entries not yet durable).
//!
//! Jobs are written in order; consecutive jobs that do not truncate are written as one record with one
//! fdatasync (group commit), which is how one slow fsync carries every write that arrived meanwhile. A job
//! that fails puts the thread in a failed state: it answers every later job as not written, without touching
//! the disk, until the actor, having rebuilt its core from what is durable (module `disk_full`), resets it.
//!
//! A compaction (a snapshot taken locally: the snapshot's temporary file written and fsynced, renamed, its
//! directory fsynced, then the WAL rewritten the same way, four syncs in all) is a job of this thread too, in
//! order with the writes: it sees the storage as the writes before it left it, so the entries up to the
//! snapshot are stored, and the writes after it go to the rewritten WAL. While it runs the actor goes on
//! ticking, heartbeating and answering heartbeats; only what waits for a write queued behind it waits longer.
//! The core is compacted ([`crate::raft::Raft::compact`]) once the snapshot is durable, never before. A
//! snapshot that does not fit on a full disk is skipped (the storage kept nothing of it) and tried again
//! later; any other failure stops the node, as a failed write does. A snapshot received from the leader is
//! still installed by the actor, which first waits until every job is answered, so it always sees the
//! storage as the jobs left it.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::raft::{Entry, HardState, Index, Snapshot, Term};
use crate::storage::{Storage, StorageError};

use super::{Cmd, Held, Node, disk_full};

/// One batch of the core's state to make durable (the persistence half of a `Ready`).
pub(super) struct Job {
    /// Its number: jobs are answered in this order.
    pub(super) seq: u64,
    /// New term and vote, if they changed.
    pub(super) hard_state: Option<HardState>,
    /// Stored entries from here on are removed first.
    pub(super) truncate_from: Option<Index>,
    /// Entries to append after the truncation point.
    pub(super) entries: Vec<Entry>,
    /// When the actor handed it over (for the write-path timings).
    pub(super) queued: Instant,
}

/// What the persist thread is asked to do.
pub(super) enum Work {
    /// Write a job.
    Write(Job),
    /// Save a snapshot taken locally and compact the WAL to it; numbered in the same sequence as the jobs.
    Compact(u64, Snapshot),
    /// The actor handled a failure: write again.
    Reset,
}

/// What the persist thread answers.
enum Answer {
    /// A job was written (or not).
    Written(Done),
    /// A compaction of this number finished: `Err(None)` when it was skipped after a failed job.
    Compacted(u64, Result<(), Option<StorageError>>),
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

/// The answer to one job.
pub(super) struct Done {
    /// The job's number.
    pub(super) seq: u64,
    /// Its hard state, now durable.
    pub(super) hard_state: Option<HardState>,
    /// Its last entry (index, term), now durable.
    pub(super) last: Option<(Index, Term)>,
    /// Whether anything reached the disk (a full disk that took a write is no longer full).
    pub(super) wrote: bool,
    /// Why it was not written: the failure itself, or `None` inside `Err` for a job skipped after one.
    pub(super) result: Result<(), Option<StorageError>>,
    /// Time from handing over to the start of the write, and of the write with its fdatasync.
    pub(super) waited: std::time::Duration,
    /// Time the write with its fdatasync took.
    pub(super) wrote_for: std::time::Duration,
}

/// The actor's end of the persistence pipeline.
pub(super) struct Pipeline {
    /// Jobs to the persist thread.
    work: std_mpsc::Sender<Work>,
    /// Answers from it (the actor is woken by a `Cmd::Persisted` for each).
    done: std_mpsc::Receiver<Answer>,
    /// The number of the last job handed over.
    pub(super) submitted: u64,
    /// The number of the last job answered.
    pub(super) answered: u64,
    /// The hard state of the last job handed over that carried one.
    pub(super) submitted_hs: HardState,
    /// The hard state known durable.
    pub(super) durable_hs: HardState,
    /// Set from a failed job until the actor resets the thread.
    pub(super) failed: bool,
    /// How many times a failed write made the actor rebuild its core.
    pub(super) resets: u64,
    /// How long a job takes from handing over to durable, as a maximum that decays by an eighth per job (so
    /// one slow fsync is remembered for a while, and a disk that got fast again is believed within a few
    /// dozen writes); the core's candidates allow for it ([`crate::raft::Raft::set_vote_latency`]).
    pub(super) latency: std::time::Duration,
    /// The compaction in flight, if one is: at most one at a time.
    pub(super) compacting: Option<Compacting>,
}

impl Pipeline {
    /// Starts the persist thread over `storage`, whose durable hard state is `hs`; it wakes the actor through
    /// `wake` after each job.
    pub(super) fn start(
        storage: Arc<Mutex<Storage>>,
        hs: HardState,
        wake: mpsc::WeakUnboundedSender<Cmd>,
    ) -> std::io::Result<Pipeline> {
        let (work_tx, work_rx) = std_mpsc::channel();
        let (done_tx, done_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("persist".into())
            .spawn(move || persist_thread(&storage, &work_rx, &done_tx, &wake))?;
        Ok(Pipeline {
            work: work_tx,
            done: done_rx,
            submitted: 0,
            answered: 0,
            submitted_hs: hs,
            durable_hs: hs,
            failed: false,
            resets: 0,
            latency: std::time::Duration::ZERO,
            compacting: None,
        })
    }

    /// Whether a term or vote handed over is not durable yet.
    pub(super) fn hard_state_pending(&self) -> bool {
        self.submitted_hs != self.durable_hs
    }

    /// Whether every job handed over was answered.
    pub(super) fn idle(&self) -> bool {
        self.answered == self.submitted
    }
}

fn persist_thread(
    storage: &Mutex<Storage>,
    work: &std_mpsc::Receiver<Work>,
    done: &std_mpsc::Sender<Answer>,
    wake: &mpsc::WeakUnboundedSender<Cmd>,
) {
    let answer = |a: Answer| {
        if done.send(a).is_err() {
            return false;
        }
        if let Some(wake) = wake.upgrade() {
            let _ = wake.send(Cmd::Persisted);
        }
        true
    };
    let mut failed = false;
    let mut next: Option<Work> = None;
    loop {
        let first = match next.take() {
            Some(w) => w,
            None => match work.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
        };
        let first = match first {
            Work::Reset => {
                failed = false;
                continue;
            }
            Work::Compact(seq, snapshot) => {
                let result = if failed {
                    Err(None)
                } else {
                    let mut s = storage.lock().unwrap_or_else(|e| e.into_inner());
                    // A full disk leaves the storage as it was (usable); any other failure makes the storage
                    // refuse every later write by itself, and the actor stops the node.
                    s.save_snapshot(&snapshot).map_err(Some)
                };
                if !answer(Answer::Compacted(seq, result)) {
                    return;
                }
                continue;
            }
            Work::Write(job) => job,
        };
        // Group commit: every queued job that does not truncate joins this write (a truncation must follow
        // the entries before it, so it starts the next write).
        let mut jobs = vec![first];
        while let Ok(w) = work.try_recv() {
            match w {
                Work::Write(job) if job.truncate_from.is_none() && !failed => jobs.push(job),
                other => {
                    next = Some(other);
                    break;
                }
            }
        }
        let started = Instant::now();
        let result = if failed {
            Err(None)
        } else {
            let hard_state = jobs.iter().rev().find_map(|j| j.hard_state);
            let truncate_from = jobs[0].truncate_from;
            let entries: Vec<Entry> = jobs
                .iter()
                .flat_map(|j| j.entries.iter().cloned())
                .collect();
            let mut s = storage.lock().unwrap_or_else(|e| e.into_inner());
            let before = s.wal_bytes();
            let r = s.persist(hard_state.as_ref(), truncate_from, &entries);
            let wrote = s.wal_bytes() != before;
            drop(s);
            r.map(|()| wrote).map_err(Some)
        };
        let wrote_for = started.elapsed();
        let (wrote, result) = match result {
            Ok(w) => (w, Ok(())),
            Err(e) => {
                failed = true;
                (false, Err(e))
            }
        };
        let n = jobs.len();
        let mut result = Some(result);
        for (i, job) in jobs.into_iter().enumerate() {
            // The failure itself goes with the first job; the rest of the group was not written either.
            let r = if i == 0 {
                result.take().expect("first")
            } else if failed {
                Err(None)
            } else {
                Ok(())
            };
            let d = Done {
                seq: job.seq,
                hard_state: job.hard_state,
                last: job.entries.last().map(|e| (e.index, e.term)),
                wrote: wrote && i + 1 == n,
                result: r,
                waited: started.saturating_duration_since(job.queued),
                wrote_for,
            };
            if !answer(Answer::Written(d)) {
                return;
            }
        }
    }
}

impl Node {
    /// The storage, for the actor's own work: waits first until every job handed over is answered, so the
    /// storage is as the jobs left it and the persist thread does not hold it. `None` when one of those jobs
    /// failed on a full disk and the core was rebuilt meanwhile: the work was planned by the old core.
    pub(super) fn settled_storage(&mut self) -> anyhow::Result<Option<MutexGuard<'_, Storage>>> {
        let resets = self.pipeline.resets;
        self.flush_persist()?;
        if self.pipeline.resets != resets {
            return Ok(None);
        }
        Ok(Some(self.storage.lock().unwrap_or_else(|e| e.into_inner())))
    }

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
        p.submitted += 1;
        if let Some(hs) = hard_state {
            p.submitted_hs = hs;
        }
        let _ = p.work.send(Work::Write(Job {
            seq: p.submitted,
            hard_state,
            truncate_from,
            entries,
            queued: Instant::now(),
        }));
    }

    /// Hands a snapshot taken locally at applied index `index` to the persist thread, which saves it and
    /// compacts the WAL after the jobs handed over before it; the core is compacted when it answers
    /// ([`Node::on_compacted`]).
    pub(super) fn submit_compaction(&mut self, index: Index, snapshot: Snapshot) {
        let p = &mut self.pipeline;
        debug_assert!(p.compacting.is_none(), "one compaction at a time");
        p.submitted += 1;
        p.compacting = Some(Compacting {
            seq: p.submitted,
            index,
            data: snapshot.data.clone(),
        });
        let _ = p.work.send(Work::Compact(p.submitted, snapshot));
    }

    /// Takes every answer already in, without waiting.
    pub(super) fn take_persisted(&mut self) -> anyhow::Result<()> {
        while let Ok(answer) = self.pipeline.done.try_recv() {
            self.on_answer(answer)?;
        }
        self.after_persisted()
    }

    /// Waits until every job handed over is answered, and takes the answers.
    pub(super) fn flush_persist(&mut self) -> anyhow::Result<()> {
        while !self.pipeline.idle() {
            let answer = self
                .pipeline
                .done
                .recv()
                .map_err(|_| anyhow::anyhow!("the persist thread stopped"))?;
            self.on_answer(answer)?;
        }
        Ok(())
    }

    fn on_answer(&mut self, answer: Answer) -> anyhow::Result<()> {
        match answer {
            Answer::Written(done) => self.on_done(done),
            Answer::Compacted(seq, result) => {
                self.pipeline.answered = seq;
                self.on_compacted(seq, result)
            }
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

    fn on_done(&mut self, done: Done) -> anyhow::Result<()> {
        self.pipeline.answered = done.seq;
        self.timings.persist(done.waited, done.wrote_for);
        let p = &mut self.pipeline;
        p.latency = (done.waited + done.wrote_for).max(p.latency - p.latency / 8);
        let tick = self.cfg.tick.as_nanos().max(1);
        let ticks = p.latency.as_nanos().div_ceil(tick);
        self.raft
            .set_vote_latency(u32::try_from(ticks).unwrap_or(u32::MAX));
        match done.result {
            Ok(()) => {
                if !self.pipeline.failed {
                    if let Some(hs) = done.hard_state {
                        self.pipeline.durable_hs = hs;
                    }
                    if let Some((index, term)) = done.last {
                        self.raft.on_persisted(index, term);
                        self.timings.persisted_to(index);
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
                self.pipeline.failed = true;
                self.after_disk_full(full)?;
                Ok(())
            }
        }
    }

    /// A write failed on a full disk (a job, or the actor's own snapshot install): nothing handed over after it
    /// was written either, so wait for all of it, rebuild the core from what is durable (module `disk_full`),
    /// and let the thread write again.
    ///
    /// Everything the old core decided and the durable state does not back is dropped, not sent: replies of
    /// this turn not yet matched with a job (`fresh`, decided by the old core in the same batch as the failure's
    /// answer), held replies, deferred requests and events. The peers see their calls fail and retry.
    pub(super) fn after_disk_full(&mut self, full: &StorageError) -> anyhow::Result<()> {
        self.flush_persist()?;
        self.pipeline.resets += 1;
        self.fresh.clear();
        self.deferred.clear();
        self.deferred_events.clear();
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
        if std::mem::take(&mut self.pipeline.failed) {
            let _ = self.pipeline.work.send(Work::Reset);
        }
        Ok(())
    }

    /// Releases what the answers made durable: held replies, deferred messages, status; once nothing is in
    /// flight, what needs everything durable (the commit index status may fall back to, the lost-data marker).
    pub(super) fn after_persisted(&mut self) -> anyhow::Result<()> {
        let answered = self.pipeline.answered;
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
                        drop(tx.send(r))
                    }
                    Held::Append(r, tx) => drop(tx.send(r)),
                    Held::Snapshot(r, tx) => drop(tx.send(r)),
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
    pub(super) fn needs(&self, held: &Held) -> u64 {
        let claims_entries = match held {
            Held::Append(r, _) => r.success && r.match_index > self.raft.persisted_index(),
            Held::Vote(..) => false,
            Held::Snapshot(..) => true,
        };
        if claims_entries || self.pipeline.hard_state_pending() {
            self.pipeline.submitted
        } else {
            0
        }
    }
}
