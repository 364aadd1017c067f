//! The persist thread both drivers share (the Raft node's `persist` module, the Paxos node's `paxos` module):
//! a thread of its own writes and syncs what the actor hands over, in the order handed over, so a slow disk
//! delays only what must wait for it, never the actor's ticks, heartbeats or answers that claim nothing new.
//!
//! Three kinds of job, numbered in one sequence and answered in that order:
//! - a write ([`Durable::write`]): consecutive writes that may share a unit ([`Durable::joins`]) are written as
//!   one unit with one sync (group commit), which is how one slow fsync carries every write that arrived
//!   meanwhile;
//! - a compaction ([`Durable::compact`]): a snapshot taken locally, saved and the log rewritten after it;
//! - an install ([`Durable::install`]): a snapshot received from a peer. The state machine is restored from
//!   its bytes here too ([`KvStore::restore`]) before anything is written, so an unreadable snapshot is
//!   refused with nothing stored, and the actor, which only swaps the restored store in, is not stalled by a
//!   large one either.
//!
//! Beside the jobs, a *release* ([`Pipeline::release`]): something to run as soon as every job handed over
//! before it is durable, on this thread, right after the write (before the actor hears of it); a follower's
//! AppendEntries success leaves this way, so the answer that waits for an fdatasync goes out the moment it
//! returns instead of after a wake-up of the actor. A release whose jobs failed is dropped unrun.
//!
//! Each job sees the storage as the jobs before it left it, and the jobs after it see it as it left it: an
//! append handed over before an install is durable before the snapshot is; one handed over after it goes to
//! the log the install rewrote. A job that fails (a write or an install) puts the thread in a failed state: it
//! answers every later job as skipped, without touching the disk, until the actor, having dealt with the
//! failure, resets it ([`Pipeline::reset`]). A failed compaction does not: the storage keeps nothing of a
//! snapshot that did not fit, and after any other failure refuses every later write by itself.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::kv::KvStore;
use crate::storage::StorageError;

/// A storage the persist thread can write: what one job holds and how it is made durable.
pub(super) trait Durable: Send + 'static {
    /// What one write job makes durable.
    type Write: Send + 'static;
    /// A snapshot as the storage saves it.
    type Snapshot: Send + 'static;

    /// Whether `w` may join a unit after the writes before it (Raft: not a truncation, which must follow the
    /// entries before it, so it starts the next unit).
    fn joins(w: &Self::Write) -> bool;

    /// Makes `group`, in order, durable as one unit with one sync. `Ok(true)` when bytes reached the disk
    /// (`Ok(false)`: everything was stored already).
    fn write(&mut self, group: &[&Self::Write]) -> Result<bool, StorageError>;

    /// Saves a snapshot taken locally and compacts the log to it.
    fn compact(&mut self, snapshot: &Self::Snapshot) -> Result<(), StorageError>;

    /// Saves a snapshot received from a peer (the log after it as the storage's rules say).
    fn install(&mut self, snapshot: &Self::Snapshot) -> Result<(), StorageError>;

    /// The state machine's bytes in `snapshot`.
    fn state_machine(snapshot: &Self::Snapshot) -> &[u8];
}

/// What the persist thread is asked to do; every job but [`Work::Reset`] carries its number.
enum Work<D: Durable> {
    /// Make a write durable; with when it was handed over (for the write-path timings).
    Write(u64, D::Write, Instant),
    /// Save a snapshot taken locally and compact the log to it.
    Compact(u64, D::Snapshot),
    /// Restore the state machine from a peer's snapshot and save it.
    Install(u64, D::Snapshot),
    /// The actor dealt with a failure: write again.
    Reset,
    /// Run once every job handed over before it is durable (an answer that claims them, sent from this
    /// thread the moment they are, with no hop through the actor); dropped instead if one of them failed.
    Release(Box<dyn FnOnce() + Send>),
}

/// The answer to one job.
pub(super) enum Answer<D: Durable> {
    /// A write was made durable (or not).
    Written(Done<D::Write>),
    /// A compaction finished: `Err(None)` when it was skipped after a failed job.
    Compacted(u64, Result<(), Option<StorageError>>),
    /// An install finished, with the state machine restored from it: `Err(None)` when it was skipped after a
    /// failed job; `Err(Some(_))` when the snapshot is unreadable (nothing stored) or could not be stored (a
    /// [`StorageError`] inside, which [`super::disk_full::cause`] finds).
    Installed(u64, Result<Box<KvStore>, Option<anyhow::Error>>),
}

/// The answer to one write job.
pub(super) struct Done<W> {
    /// The job's number.
    pub(super) seq: u64,
    /// What it wrote, handed back so the actor can tell what is durable now.
    pub(super) write: W,
    /// Whether anything reached the disk (a full disk that took a write is no longer full).
    pub(super) wrote: bool,
    /// Why it was not written: the failure itself, or `None` inside `Err` for a job skipped after one.
    pub(super) result: Result<(), Option<StorageError>>,
    /// Time from handing over to the start of the write.
    pub(super) waited: Duration,
    /// Time the write with its sync took.
    pub(super) wrote_for: Duration,
}

/// The actor's end of the persist thread.
pub(super) struct Pipeline<D: Durable> {
    work: std_mpsc::Sender<Work<D>>,
    done: std_mpsc::Receiver<Answer<D>>,
    /// The number of the last job handed over.
    pub(super) submitted: u64,
    /// The number of the last job answered.
    pub(super) answered: u64,
    /// Set by the actor from a failed job until it resets the thread.
    pub(super) failed: bool,
    /// How many times the actor dealt with a failure by rebuilding its core (Raft, on a full disk).
    pub(super) resets: u64,
    /// How long a write takes from handing over to durable, as a maximum that decays by an eighth per write
    /// (so one slow fsync is remembered for a while, and a disk that got fast again is believed within a few
    /// dozen writes).
    pub(super) latency: Duration,
}

impl<D: Durable> Pipeline<D> {
    /// Starts the persist thread over `storage`. After each answer it calls `wake`, which tells the actor
    /// (and returns false once the actor is gone).
    pub(super) fn start(
        storage: Arc<Mutex<D>>,
        wake: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<Pipeline<D>> {
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
            failed: false,
            resets: 0,
            latency: Duration::ZERO,
        })
    }

    /// Hands a write over; returns its number.
    pub(super) fn write(&mut self, w: D::Write) -> u64 {
        self.submitted += 1;
        let _ = self
            .work
            .send(Work::Write(self.submitted, w, Instant::now()));
        self.submitted
    }

    /// Hands a compaction over; returns its number.
    pub(super) fn compact(&mut self, snapshot: D::Snapshot) -> u64 {
        self.submitted += 1;
        let _ = self.work.send(Work::Compact(self.submitted, snapshot));
        self.submitted
    }

    /// Hands an install over; returns its number.
    pub(super) fn install(&mut self, snapshot: D::Snapshot) -> u64 {
        self.submitted += 1;
        let _ = self.work.send(Work::Install(self.submitted, snapshot));
        self.submitted
    }

    /// Has `then` run on the persist thread as soon as every job handed over so far is durable (right after
    /// the write that makes the last of them so, before the actor hears of it); if one of them fails, `then`
    /// is dropped unrun instead. Not a job: it has no number and no answer.
    pub(super) fn release(&mut self, then: Box<dyn FnOnce() + Send>) {
        let _ = self.work.send(Work::Release(then));
    }

    /// Lets the thread write again after a failure the actor dealt with.
    pub(super) fn reset(&mut self) {
        if std::mem::take(&mut self.failed) {
            let _ = self.work.send(Work::Reset);
        }
    }

    /// Whether every job handed over was answered.
    pub(super) fn idle(&self) -> bool {
        self.answered == self.submitted
    }

    /// An answer already in, if any.
    pub(super) fn try_answer(&mut self) -> Option<Answer<D>> {
        let a = self.done.try_recv().ok()?;
        self.took(&a);
        Some(a)
    }

    /// Waits for the next answer; an error only if the thread is gone.
    pub(super) fn wait_answer(&mut self) -> anyhow::Result<Answer<D>> {
        let a = self
            .done
            .recv()
            .map_err(|_| anyhow::anyhow!("the persist thread stopped"))?;
        self.took(&a);
        Ok(a)
    }

    /// Notes how long a write took (see [`Pipeline::latency`]); returns the new figure.
    pub(super) fn note_latency(&mut self, took: Duration) -> Duration {
        self.latency = took.max(self.latency - self.latency / 8);
        self.latency
    }

    fn took(&mut self, a: &Answer<D>) {
        self.answered = match a {
            Answer::Written(d) => d.seq,
            Answer::Compacted(seq, _) | Answer::Installed(seq, _) => *seq,
        };
    }
}

fn lock<D>(storage: &Mutex<D>) -> std::sync::MutexGuard<'_, D> {
    storage.lock().unwrap_or_else(|e| e.into_inner())
}

fn persist_thread<D: Durable>(
    storage: &Mutex<D>,
    work: &std_mpsc::Receiver<Work<D>>,
    done: &std_mpsc::Sender<Answer<D>>,
    wake: &dyn Fn() -> bool,
) {
    let answer = |a: Answer<D>| {
        if done.send(a).is_err() {
            return false;
        }
        let _ = wake();
        true
    };
    let mut failed = false;
    let mut next: Option<Work<D>> = None;
    loop {
        let first = match next.take() {
            Some(w) => w,
            None => match work.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
        };
        let (seq, first, queued) = match first {
            Work::Reset => {
                failed = false;
                continue;
            }
            Work::Release(then) => {
                // Every job before it was answered already.
                if !failed {
                    then();
                }
                continue;
            }
            Work::Compact(seq, snapshot) => {
                let result = if failed {
                    Err(None)
                } else {
                    lock(storage).compact(&snapshot).map_err(Some)
                };
                if !answer(Answer::Compacted(seq, result)) {
                    return;
                }
                continue;
            }
            Work::Install(seq, snapshot) => {
                let result = if failed {
                    Err(None)
                } else {
                    let r = install(storage, &snapshot);
                    failed = r.is_err();
                    r.map_err(Some)
                };
                if !answer(Answer::Installed(seq, result)) {
                    return;
                }
                continue;
            }
            Work::Write(seq, w, queued) => (seq, w, queued),
        };
        // Group commit: every queued write that may join comes along; anything else starts the next round.
        let mut jobs = vec![(seq, first, queued)];
        // Releases queued among the group's writes: each needs only the writes before it, all in the group.
        let mut releases: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        while let Ok(w) = work.try_recv() {
            match w {
                Work::Write(seq, w, queued) if D::joins(&w) && !failed => {
                    jobs.push((seq, w, queued))
                }
                Work::Release(then) if !failed => releases.push(then),
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
            let group: Vec<&D::Write> = jobs.iter().map(|(_, w, _)| w).collect();
            lock(storage).write(&group).map_err(Some)
        };
        let wrote_for = started.elapsed();
        let (wrote, result) = match result {
            Ok(w) => (w, Ok(())),
            Err(e) => {
                failed = true;
                (false, Err(e))
            }
        };
        // What waits for the group leaves first: it is what someone is waiting on.
        if !failed {
            for then in releases {
                then();
            }
        } else {
            drop(releases);
        }
        let n = jobs.len();
        let mut result = Some(result);
        for (i, (seq, write, queued)) in jobs.into_iter().enumerate() {
            // The failure itself goes with the first job; the rest of the group was not written either.
            let r = if i == 0 {
                result.take().expect("first")
            } else if failed {
                Err(None)
            } else {
                Ok(())
            };
            let d = Done {
                seq,
                write,
                wrote: wrote && i + 1 == n,
                result: r,
                waited: started.saturating_duration_since(queued),
                wrote_for,
            };
            if !answer(Answer::Written(d)) {
                return;
            }
        }
    }
}

/// Restores the state machine from a peer's snapshot, then saves the snapshot: an unreadable one is refused
/// with nothing written.
fn install<D: Durable>(
    storage: &Mutex<D>,
    snapshot: &D::Snapshot,
) -> Result<Box<KvStore>, anyhow::Error> {
    use anyhow::Context as _;
    let kv = KvStore::restore(D::state_machine(snapshot))
        .context("the snapshot received is unreadable; nothing of it was stored")?;
    lock(storage)
        .install(snapshot)
        .context("saving the snapshot received")?;
    Ok(Box::new(kv))
}
