//! Durable state of one node: a write-ahead log (hard state and entries, a CRC per record), snapshots written
//! atomically, and a lock on the data directory.
//!
//! Layout of a data directory:
//! - `LOCK`: flocked while a node runs (holds its pid, for people).
//! - `wal.log`: CRC-framed, sequence-numbered records (format in the `wal` module); each [`Storage::persist`]
//!   call is one write unit (hard state, truncation and entries together, in one record unless the batch
//!   exceeds 16 MiB), one `write` and one `fdatasync`, and a crash keeps all of it or none. Replay cuts a torn
//!   final unit and refuses damage that a later unit follows. After a snapshot the file is rewritten to hold
//!   only what follows the snapshot, starting with a `LogStart` record naming the snapshot position, so a lost
//!   snapshot file is detected. The file is preallocated in steps of [`PREALLOCATE_STEP`] bytes
//!   (`fallocate`, as etcd preallocates its WAL segments), so an append overwrites allocated space and its
//!   fdatasync need not commit a new file size or new blocks through the filesystem's journal; the zeros after
//!   the last record end the log on replay (format in the `wal` module). A filesystem that refuses
//!   `fallocate` (FUSE, which squall's disk faults use) gets plain appends.
//! - `snapshot.bin`: the latest snapshot, replaced atomically.
//! - `RECOVERING` ([`LOST_DATA_FILE`]): present while the node may have lost durable state and has not yet
//!   recovered (see [`Recovered::lost_data`] and the `raft::recovery` module). Written and synced, with its
//!   directory, before anything else on open; removed only when the consensus core has recovered.
//!
//! Opening always ends by fdatasyncing the WAL and fsyncing the snapshot and the directory (issue 18, S1): a
//! killed process may leave records in the page cache that never reached the disk, and the node must not
//! answer for them as durable until they have. A damaged tail is cut: a write cut short at the end of the file
//! (or a zero-filled tail) is a torn write, never acknowledged; a damaged *complete* record may have been synced
//! and acknowledged, which a checksum alone cannot tell (Alagappan et al., FAST '18), so cutting one marks the
//! node as one that may have lost data. A flip in a record's length field that points past the end of the
//! file (or, in a preallocated file, into the zeros after the last write) looks torn, and so does a last record
//! of a preallocated file with a whole sector of zeros inside it (etcd's rule for a torn write); redundant
//! headers (as TigerBeetle keeps) would tell, and squall's WAL has none.
//!
//! Crash safety: every rewrite goes through a temporary file, fsync, rename and directory fsync. The only
//! window with two files out of step is after a new snapshot was renamed into place and before the WAL was
//! rewritten; [`Storage::open`] recognises it (snapshot ahead of the WAL's start) and finishes the compaction.
//!
//! A full disk (ENOSPC or EDQUOT from a `write` or `create`) is the one write failure the storage survives:
//! the bytes of the failed call are cut back (a partial WAL record is truncated to the last good record, a
//! half-written temporary file is removed), the call returns [`StorageError::DiskFull`] with nothing of it
//! stored, and the next call tries again, so writes resume by themselves once space returns. A failed
//! `fsync`/`fdatasync` (whatever its errno) still makes the storage refuse every later write
//! ([`StorageError::Failed`]): the kernel may have dropped the unsynced pages, so what is on disk is unknown.
//! If the disk fills after a new snapshot was renamed into place but before the WAL was rewritten, the
//! snapshot counts (that is the crash window above) and the rewrite is retried before the next append.

mod lock;
pub mod paxos;
mod snapshot_file;
mod wal;

#[cfg(test)]
mod disk_full_tests;
#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::raft::{Entry, HardState, Index, Snapshot, SnapshotMeta, Term};
use lock::DirLock;
use wal::{LogState, RecordRef, WAL_FILE, WAL_TMP_FILE};

pub use lock::LOCK_FILE as LOCK_FILE_NAME;
pub use snapshot_file::SNAPSHOT_FILE as SNAPSHOT_FILE_NAME;
pub use wal::WAL_FILE as WAL_FILE_NAME;

/// What went wrong with a data directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process (or another `Storage` in this one) holds the directory's lock.
    #[error("data directory {path} is in use by another node (its LOCK file is locked)")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds something that no crash could have produced; starting from it could break Raft's
    /// guarantees, so the node refuses.
    #[error("{path} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The caller asked for a write that would leave the log inconsistent (a gap, a truncation into the
    /// snapshot, an older snapshot): a bug in the caller. Nothing was written.
    #[error("refused write to {path}: {detail}")]
    InvalidWrite {
        /// The data directory.
        path: PathBuf,
        /// What was asked and why it cannot be.
        detail: String,
    },
    /// Serialisation failed (should not happen for well-formed data).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        source: bincode::Error,
    },
    /// The disk is full (ENOSPC or EDQUOT) while writing: nothing of this call was stored (a partial write was
    /// cut back), the storage stays usable, and the same call succeeds once space returns.
    #[error("disk full: cannot {op} {path}: {source}; nothing of this write was kept")]
    DiskFull {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error (ENOSPC or EDQUOT).
        source: std::io::Error,
    },
    /// An earlier write or fsync failed. After a failed fsync the kernel may have dropped the dirty pages, so
    /// what is on disk is unknown: the node must restart and recover from the files.
    #[error("storage in {path} refuses writes after an earlier failure: {cause}")]
    Failed {
        /// The data directory.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },
}

/// What [`Storage::open`] found in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Term and vote.
    pub hard_state: HardState,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot, in order, contiguous.
    pub entries: Vec<Entry>,
    /// The directory held no state (a new node, or its data was lost).
    pub empty: bool,
    /// Bytes of a torn or corrupt WAL tail cut off on open (0 when clean).
    pub truncated_tail_bytes: u64,
    /// True when the tail cut off was a damaged complete record, not a torn final write.
    pub damaged_tail: bool,
    /// Why this node may have lost durable state, when it may have: its directory was empty and it was not
    /// started as a new member ([`InitialState`]), a damaged complete WAL record was cut, or an earlier
    /// recovery did not finish.
    /// The [`LOST_DATA_FILE`] marker is then on disk until [`Storage::finish_recovery`]; the node must recover
    /// before it votes (the `raft::recovery` module).
    pub lost_data: Option<String>,
}

/// How to take an empty data directory (the node's `--initial-state`; etcd's `--initial-cluster-state`). It
/// means nothing once the directory holds state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InitialState {
    /// A member of a cluster being created now: it has never voted or acknowledged
    /// anything, so an empty directory is a fresh start.
    New,
    /// A member of a running cluster: an empty directory is one that lost its data, and the node recovers
    /// before it votes (the `raft::recovery` module). The default, as the safe choice: taking a lost
    /// directory for a new one can elect a leader lacking committed entries.
    #[default]
    Existing,
}

/// The marker of a node that may have lost durable state (see [`Recovered::lost_data`]). Written, synced and
/// its directory synced before anything else is written on open, and removed only once the consensus core
/// says recovery finished, so a restart (or a core rebuilt after a full disk) during recovery cannot forget it.
/// It holds the cause, for people.
pub const LOST_DATA_FILE: &str = "RECOVERING";

/// Bytes the WAL file is grown by at a time, ahead of its records (see the module docs). One step holds tens of
/// thousands of small writes; the cost of a step is one `fallocate`, whatever its size, and disk space.
pub const PREALLOCATE_STEP: u64 = 16 << 20;

/// The durable state of one node, open and locked.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    wal_path: PathBuf,
    /// Opened for reading and writing; every write goes to `wal_len`, the end of the log.
    wal: File,
    /// Bytes of good records in the WAL, where the next append goes; a failed write is cut back to this.
    wal_len: u64,
    /// The WAL file's length: `wal_len` and the preallocated zeros after it.
    wal_alloc: u64,
    /// Whether to preallocate: false once the filesystem refused `fallocate`.
    preallocate: bool,
    /// Sequence number of the next WAL record (continues across rewrites).
    next_seq: u64,
    /// What the files hold, kept in memory so compaction can rewrite the log without reading it back.
    state: LogState,
    /// Set by the first failed write or fsync; see [`StorageError::Failed`].
    failed: Option<String>,
    /// A snapshot was saved but the WAL could not be rewritten after it (disk full): rewrite before appending.
    rewrite_pending: bool,
    /// Reused encoding buffer.
    buf: Vec<u8>,
    /// The [`LOST_DATA_FILE`] marker is on disk.
    lost_data: bool,
    _lock: DirLock,
}

impl Storage {
    /// Creates the directory if missing, locks it, reads the snapshot and replays the WAL. A torn or corrupt
    /// WAL tail (bad length, bad CRC, short record) is truncated with a warning naming the file, offset and
    /// bytes cut. A second opener of a locked directory gets [`StorageError::Locked`].
    /// An empty directory is taken as one that lost its data ([`InitialState::Existing`]).
    pub fn open(dir: &Path) -> Result<(Storage, Recovered), StorageError> {
        Storage::open_as(dir, InitialState::Existing)
    }

    /// [`Storage::open`], with `initial` saying how to take an empty directory: under
    /// [`InitialState::New`] it is a fresh start, with no lost-data marker.
    pub fn open_as(
        dir: &Path,
        initial: InitialState,
    ) -> Result<(Storage, Recovered), StorageError> {
        // Directories this call creates; each one's parent is fsynced so the new entries survive a power loss.
        let created: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            op: "create data directory",
            source,
        })?;
        for new_dir in created.iter().rev() {
            match new_dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        let lock = DirLock::acquire(dir)?;
        for leftover in [WAL_TMP_FILE, snapshot_file::SNAPSHOT_TMP_FILE] {
            let path = dir.join(leftover);
            match fs::remove_file(&path) {
                Ok(()) => {
                    info!(file = %path.display(), "removed a half-written file left by a crash")
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StorageError::Io {
                        path,
                        op: "remove",
                        source,
                    });
                }
            }
        }

        let snapshot = snapshot_file::read(dir)?;
        let wal_path = dir.join(WAL_FILE);
        let (mut state, wal_existed, tail, next_seq, wal_end) = replay_wal(&wal_path)?;
        let empty = snapshot.is_none() && !state.any;
        if snapshot.is_some() && !(wal_existed && state.any) {
            // An emptied log is refused like a deleted one (issue 18, D2): both lose the term, the vote and every
            // entry after the snapshot without a trace a torn write could leave.
            let how = if wal_existed { "empty" } else { "missing" };
            return Err(StorageError::Corrupt {
                path: wal_path,
                detail: format!(
                    "{how} while snapshot.bin exists: the term, the vote and the entries after the snapshot are \
                     lost, so this node could vote twice or drop acknowledged entries (to recover, move the data \
                     directory aside: the node then starts empty and recovers from the other voters)"
                ),
            });
        }

        // Decide whether this node may have lost data, and make that durable before writing anything else.
        let marker = dir.join(LOST_DATA_FILE);
        let earlier = fs::read_to_string(&marker).ok();
        let mut cause = match &earlier {
            Some(c) => Some(format!(
                "an earlier start did not finish recovering ({})",
                c.trim()
            )),
            None if empty && initial == InitialState::Existing => Some(
                "the data directory was empty and the node was started --initial-state existing (a member \
                 whose data was lost)"
                    .to_string(),
            ),
            None => None,
        };
        let truncated_tail_bytes = tail.as_ref().map_or(0, |t| t.cut);
        if let Some(t) = tail.as_ref().filter(|t| !t.torn) {
            cause.get_or_insert_with(|| {
                format!(
                    "a complete WAL record at offset {} is damaged ({}) and {} bytes were cut: it may have \
                     been acknowledged",
                    t.offset, t.reason, t.cut
                )
            });
        }
        if earlier.is_none()
            && let Some(c) = &cause
        {
            let f = write_new_file(&marker, c.as_bytes())?;
            f.sync_all().map_err(|source| StorageError::Io {
                path: marker.clone(),
                op: "fsync",
                source,
            })?;
            sync_dir(dir)?;
        }
        if let Some(t) = &tail {
            truncate_wal(&wal_path, t)?;
        }

        let snap_meta = snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let mut needs_rewrite = false;
        if state.base.last_index > snap_meta.last_index
            || (state.base.last_index == snap_meta.last_index
                && state.base.last_term != snap_meta.last_term)
        {
            return Err(StorageError::Corrupt {
                path: wal_path,
                detail: format!(
                    "log starts after index {} (term {}) but the snapshot covers up to index {} (term {})",
                    state.base.last_index,
                    state.base.last_term,
                    snap_meta.last_index,
                    snap_meta.last_term
                ),
            });
        }
        if state.base.last_index < snap_meta.last_index {
            // A crash between the snapshot's rename and the WAL rewrite. Entries after the snapshot are kept only
            // if the log holds the snapshot's last entry with the same term (Raft's InstallSnapshot rule);
            // otherwise they belong to a diverged history and go.
            let before = state.entries.len();
            let matches = entry_term(&state, snap_meta.last_index) == Some(snap_meta.last_term);
            if matches {
                let cut = (snap_meta.last_index - state.base.last_index) as usize;
                state.entries.drain(..cut);
            } else {
                state.entries.clear();
            }
            state.base = snap_meta;
            info!(
                dir = %dir.display(),
                snapshot_index = snap_meta.last_index,
                dropped = before - state.entries.len(),
                kept = state.entries.len(),
                "snapshot is ahead of the WAL (crash during compaction): finishing the compaction"
            );
            needs_rewrite = true;
        }

        let mut storage = Storage {
            dir: dir.to_path_buf(),
            wal_path: wal_path.clone(),
            wal: open_wal(&wal_path)?,
            wal_len: 0,
            wal_alloc: 0,
            preallocate: true,
            next_seq,
            state,
            failed: None,
            rewrite_pending: false,
            buf: Vec::new(),
            lost_data: cause.is_some(),
            _lock: lock,
        };
        storage.wal_alloc = file_len(&storage.wal, &wal_path)?;
        // A cut tail leaves the file ending at the log's end; a clean one may have preallocated zeros after it.
        storage.wal_len = if tail.is_some() {
            storage.wal_alloc
        } else {
            wal_end.min(storage.wal_alloc)
        };
        if needs_rewrite {
            storage.rewrite_wal()?;
        }
        // What was recovered is made durable before it is used (issue 18, S1): after a crash (SIGKILL between a
        // write and its fdatasync) the page cache may hold records that never reached the disk; this node
        // would otherwise answer for them as durable, and a later power cut would drop them. PostgreSQL does
        // the same at the end of crash recovery. Always, since a clean stop cannot be told from a crash here:
        // one sync of each file and of the directory per start.
        storage.sync_recovered(snapshot.is_some())?;

        if empty {
            match initial {
                InitialState::New => {
                    info!(dir = %dir.display(), "empty data directory, --initial-state new: starting as a new member");
                    // A durable trace that this directory belongs to a member that started: restarted before it
                    // stored any term, it is not taken for one that lost its data (simulation seed 2843: two of
                    // three nodes of a new cluster recovering at once, and no election possible).
                    let hard_state = storage.state.hard_state;
                    storage.append_batch(Some(&hard_state), None, &[])?;
                }
                InitialState::Existing => {
                    info!(dir = %dir.display(), "empty data directory, --initial-state existing: this member lost its data")
                }
            }
        } else {
            let st = &storage.state;
            info!(
                dir = %dir.display(),
                term = st.hard_state.term,
                vote = ?st.hard_state.vote,
                entries = st.entries.len(),
                first_index = st.entries.first().map(|e| e.index),
                last_index = st.last_index(),
                snapshot_index = st.base.last_index,
                "recovered term {}, {} entries, snapshot at {}",
                st.hard_state.term,
                st.entries.len(),
                st.base.last_index,
            );
        }
        let recovered = Recovered {
            hard_state: storage.state.hard_state,
            snapshot,
            entries: storage.state.entries.clone(),
            empty,
            truncated_tail_bytes,
            damaged_tail: tail.as_ref().is_some_and(|t| !t.torn),
            lost_data: cause,
        };
        Ok((storage, recovered))
    }

    /// Fdatasyncs the WAL, fsyncs the snapshot file (if any) and the directory: see the end of [`Storage::open`].
    fn sync_recovered(&self, snapshot: bool) -> Result<(), StorageError> {
        self.wal.sync_data().map_err(|source| StorageError::Io {
            path: self.wal_path.clone(),
            op: "fdatasync recovered",
            source,
        })?;
        if snapshot {
            let path = self.dir.join(snapshot_file::SNAPSHOT_FILE);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|source| StorageError::Io {
                    path,
                    op: "fsync recovered",
                    source,
                })?;
        }
        sync_dir(&self.dir)
    }

    /// Whether the [`LOST_DATA_FILE`] marker is on disk: this node must recover before it votes.
    pub fn lost_data(&self) -> bool {
        self.lost_data
    }

    /// Removes the [`LOST_DATA_FILE`] marker once the consensus core finished recovering (and the hard state
    /// that records its counted vote is durable), and fsyncs the directory so the removal survives a crash.
    pub fn finish_recovery(&mut self) -> Result<(), StorageError> {
        if !self.lost_data {
            return Ok(());
        }
        let marker = self.dir.join(LOST_DATA_FILE);
        match fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StorageError::Io {
                    path: marker,
                    op: "remove",
                    source,
                });
            }
        }
        sync_dir(&self.dir)?;
        self.lost_data = false;
        info!(dir = %self.dir.display(), "recovery finished: lost-data marker removed");
        Ok(())
    }

    /// Makes one batch durable with one fdatasync: the new hard state (if any), then removal of entries with
    /// index >= `truncate_from` (if any), then `entries`, which must continue the log right after the
    /// truncation point (leading entries already stored with the same term are skipped). Writes nothing and
    /// does not sync when there is nothing new.
    pub fn persist(
        &mut self,
        hard_state: Option<&HardState>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        self.check_usable()?;
        let hard_state = hard_state.filter(|hs| **hs != self.state.hard_state);
        let truncate_from = truncate_from.filter(|&t| t <= self.state.last_index());
        let entries = &entries[self.validate(hard_state, truncate_from, entries)?..];
        if hard_state.is_none() && truncate_from.is_none() && entries.is_empty() {
            return Ok(());
        }
        self.append_batch(hard_state, truncate_from, entries)
    }

    /// Writes one batch record and fdatasyncs it, whatever it holds (`persist` filters out what is already
    /// stored first).
    fn append_batch(
        &mut self,
        hard_state: Option<&HardState>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        // Before encoding: the rewrite takes sequence numbers too.
        self.finish_pending_rewrite()?;

        self.buf.clear();
        let mut buf = std::mem::take(&mut self.buf);
        // One record, so the batch is all or nothing after a crash; only a batch above the chunk size (far
        // beyond Raft's frames) spills its later entries into further records.
        let first = if entries.is_empty() {
            0
        } else {
            wal::chunk_len(entries)
        };
        let mut unit = wal::Unit::new(&mut buf, self.next_seq);
        let encoded = (|| {
            let batch = RecordRef::Batch {
                hard_state,
                truncate_from,
                entries: &entries[..first],
            };
            unit.push(&batch)?;
            unit.push_entries(&entries[first..])
        })();
        if let Err(source) = encoded {
            self.buf = buf;
            return Err(StorageError::Encode {
                what: "WAL record",
                source,
            });
        }
        let next_seq = unit.finish();
        let written = self.append_synced(&buf);
        self.buf = buf;
        written?;
        self.next_seq = next_seq;

        if let Some(hs) = hard_state {
            self.state.hard_state = *hs;
        }
        if let Some(t) = truncate_from {
            let keep = (t - self.state.base.last_index - 1) as usize;
            self.state.entries.truncate(keep);
        }
        self.state.entries.extend_from_slice(entries);
        self.state.any = true;
        Ok(())
    }

    /// Saves a snapshot taken locally, atomically, then compacts the WAL to the hard state and the entries
    /// after `snapshot.meta.last_index` (the storage keeps its own copy of the log). A crash at any point leaves
    /// a directory that opens consistently.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check_usable()?;
        let meta = snapshot.meta;
        self.check_not_older(meta)?;
        if let Some(term) = entry_term(&self.state, meta.last_index)
            && term != meta.last_term
        {
            return self.invalid(format!(
                "snapshot at index {} claims term {}, but the log has term {term} there",
                meta.last_index, meta.last_term
            ));
        }
        let rest = if meta.last_index >= self.state.last_index() {
            Vec::new()
        } else {
            self.state.entries[(meta.last_index - self.state.base.last_index) as usize..].to_vec()
        };
        self.install(snapshot, rest)
    }

    /// Saves a snapshot received from the leader, atomically, and replaces the whole log by `keep` (the entries
    /// after the snapshot the caller decided to retain; usually none).
    pub fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        keep: &[Entry],
    ) -> Result<(), StorageError> {
        self.check_usable()?;
        self.check_not_older(snapshot.meta)?;
        for (expected, e) in (snapshot.meta.last_index + 1..).zip(keep) {
            if e.index != expected {
                return self.invalid(format!(
                    "entries kept after snapshot at index {} must start at {} and be contiguous; found {}",
                    snapshot.meta.last_index,
                    snapshot.meta.last_index + 1,
                    e.index
                ));
            }
        }
        self.install(snapshot, keep.to_vec())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The durable term and vote.
    pub fn hard_state(&self) -> HardState {
        self.state.hard_state
    }

    /// Position of the latest snapshot (zero when none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.state.base
    }

    /// The durable entries after the snapshot.
    pub fn entries(&self) -> &[Entry] {
        &self.state.entries
    }

    /// Index of the last durable entry (the snapshot's when the log is empty).
    pub fn last_index(&self) -> Index {
        self.state.last_index()
    }

    /// Bytes of the log in the WAL file (the file itself may be longer: preallocated space).
    pub fn wal_bytes(&self) -> u64 {
        self.wal_len
    }

    /// Reads the current snapshot back from disk (for sending it to a follower).
    pub fn load_snapshot(&self) -> Result<Option<Snapshot>, StorageError> {
        snapshot_file::read(&self.dir)
    }

    fn install(&mut self, snapshot: &Snapshot, rest: Vec<Entry>) -> Result<(), StorageError> {
        if let Err(e) = snapshot_file::write(&self.dir, snapshot) {
            // The old snapshot is intact (rename is atomic). A full disk removed its temp file; after any other
            // failure the temp file's fate is unknown: play safe.
            if !matches!(e, StorageError::DiskFull { .. }) {
                self.fail(&e);
            }
            return Err(e);
        }
        let next = LogState {
            base: snapshot.meta,
            hard_state: self.state.hard_state,
            entries: rest,
            any: true,
        };
        let old = std::mem::replace(&mut self.state, next);
        match self.rewrite_wal() {
            Ok(()) => {}
            Err(e @ StorageError::DiskFull { .. }) => {
                // The snapshot is durable and the old WAL intact: the crash window `open` finishes. Keep the new
                // state; the rewrite is retried before the next append, which must not go to the old file.
                warn!(dir = %self.dir.display(), error = %e, "snapshot saved; the WAL is rewritten once space returns");
                self.rewrite_pending = true;
                return Ok(());
            }
            Err(e) => {
                // Reopening recovers (the snapshot is ahead of the WAL), but this process's view is now
                // unreliable.
                self.state = old;
                return Err(e);
            }
        }
        self.rewrite_pending = false;
        info!(
            dir = %self.dir.display(),
            snapshot_index = snapshot.meta.last_index,
            snapshot_term = snapshot.meta.last_term,
            bytes = snapshot.data.len(),
            entries_kept = self.state.entries.len(),
            "snapshot saved and WAL compacted"
        );
        Ok(())
    }

    /// Rewrites the WAL from memory: temp file, fsync, rename, directory fsync, reopen.
    fn rewrite_wal(&mut self) -> Result<(), StorageError> {
        let tmp = self.dir.join(WAL_TMP_FILE);
        let mut buf = Vec::new();
        let mut unit = wal::Unit::new(&mut buf, self.next_seq);
        let encoded = (|| {
            unit.push(&RecordRef::LogStart(self.state.base))?;
            unit.push(&RecordRef::HardState(&self.state.hard_state))?;
            unit.push_entries(&self.state.entries)
        })();
        encoded.map_err(|source| StorageError::Encode {
            what: "compacted WAL",
            source,
        })?;
        let next_seq = unit.finish();
        let result = (|| {
            let io = |op: &'static str, path: &Path| {
                let path = path.to_path_buf();
                move |source| StorageError::Io { path, op, source }
            };
            let f = write_new_file(&tmp, &buf)?;
            f.sync_all().map_err(io("fsync", &tmp))?;
            drop(f);
            fs::rename(&tmp, &self.wal_path).map_err(io("rename into place", &self.wal_path))?;
            sync_dir(&self.dir)?;
            let wal = open_wal(&self.wal_path)?;
            Ok(wal)
        })();
        match result {
            Ok(wal) => {
                self.wal = wal;
                self.wal_len = buf.len() as u64;
                self.wal_alloc = self.wal_len;
                self.next_seq = next_seq;
                Ok(())
            }
            Err(e @ StorageError::DiskFull { .. }) => Err(e),
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// Rewrites the WAL if a snapshot left that owed (see `rewrite_pending`).
    fn finish_pending_rewrite(&mut self) -> Result<(), StorageError> {
        if !self.rewrite_pending {
            return Ok(());
        }
        self.rewrite_wal()?;
        self.rewrite_pending = false;
        info!(dir = %self.dir.display(), "WAL rewritten after the snapshot saved while the disk was full");
        Ok(())
    }

    /// Grows the WAL file by [`PREALLOCATE_STEP`] when `more` bytes after the log would not fit in it. Never
    /// fails: a filesystem that refuses `fallocate` gets plain appends from then on, and a full disk gets a
    /// plain append this time (which then reports the full disk, if the append does not fit either).
    fn preallocate_for(&mut self, more: u64) {
        let want = self.wal_len + more;
        if !self.preallocate || want <= self.wal_alloc {
            return;
        }
        let to = (want / PREALLOCATE_STEP + 1) * PREALLOCATE_STEP;
        let result = nix::fcntl::fallocate(
            &self.wal,
            nix::fcntl::FallocateFlags::empty(),
            0,
            i64::try_from(to).unwrap_or(i64::MAX),
        );
        match result {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOSPC | nix::errno::Errno::EDQUOT) => {}
            Err(e) => {
                info!(file = %self.wal_path.display(), error = %e, "cannot preallocate the WAL; appending to it instead");
                self.preallocate = false;
            }
        }
        // Even a failed call may have grown the file.
        if let Ok(len) = self.wal.metadata().map(|m| m.len()) {
            self.wal_alloc = len;
        }
    }

    /// Writes `bytes` at the end of the log and fdatasyncs. On failure, cuts the file back to the log's end
    /// (so a later reopen does not find a half record in the middle; the preallocated space goes too). A full
    /// disk during the write leaves the storage usable ([`StorageError::DiskFull`]); any other failure, or a
    /// failed cut, makes it refuse further writes.
    fn append_synced(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        use std::os::unix::fs::FileExt as _;
        self.preallocate_for(bytes.len() as u64);
        if let Err(source) = self.wal.write_all_at(bytes, self.wal_len) {
            let cut = self.wal.set_len(self.wal_len);
            if cut.is_ok() {
                self.wal_alloc = self.wal_len;
            }
            if is_disk_full(&source) && cut.is_ok() {
                return Err(StorageError::DiskFull {
                    path: self.wal_path.clone(),
                    op: "append to",
                    source,
                });
            }
            let e = StorageError::Io {
                path: self.wal_path.clone(),
                op: "append to",
                source,
            };
            self.fail(&e);
            return Err(e);
        }
        let result = if UNSAFE_NO_FSYNC.load(std::sync::atomic::Ordering::Relaxed) {
            Ok(())
        } else {
            self.wal.sync_data().map_err(|source| StorageError::Io {
                path: self.wal_path.clone(),
                op: "fdatasync",
                source,
            })
        };
        match result {
            Ok(()) => {
                self.wal_len += bytes.len() as u64;
                self.wal_alloc = self.wal_alloc.max(self.wal_len);
                Ok(())
            }
            Err(e) => {
                let _ = self.wal.set_len(self.wal_len);
                self.wal_alloc = self.wal_len;
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// Checks that `entries` can follow the log once `truncate_from` is applied, and returns how many leading
    /// entries are already durable: the same (index, term) as a stored entry, or inside the snapshot. Those are
    /// skipped, so handing the storage an entry twice is harmless; a stored entry with another term is not.
    fn validate(
        &self,
        hard_state: Option<&HardState>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<usize, StorageError> {
        let cur = self.state.hard_state;
        if let Some(hs) = hard_state {
            // The last line of defence against a double vote: a term never goes back, and a vote cast in a term
            // is never changed or withdrawn.
            if hs.term < cur.term
                || (hs.term == cur.term && cur.vote.is_some() && hs.vote != cur.vote)
            {
                return self.invalid(format!(
                    "hard state (term {}, vote {:?}) would go back on the stored (term {}, vote {:?})",
                    hs.term, hs.vote, cur.term, cur.vote
                ));
            }
        }
        let base = self.state.base;
        let mut last = self.state.last_index();
        if let Some(t) = truncate_from {
            if t <= base.last_index {
                return self.invalid(format!(
                    "truncation from index {t} reaches into the snapshot (which covers up to {})",
                    base.last_index
                ));
            }
            last = last.min(t - 1);
        }
        let mut skip = 0;
        for e in entries.iter().take_while(|e| e.index <= last) {
            // Entries below the snapshot are committed, so they cannot differ from what it covers.
            let stored = entry_term(&self.state, e.index);
            if stored.is_some_and(|t| t != e.term) {
                return self.invalid(format!(
                    "entry {} has term {} but the stored entry there has term {}; a replacement needs truncate_from",
                    e.index,
                    e.term,
                    stored.unwrap_or_default()
                ));
            }
            skip += 1;
        }
        let mut prev_term = entry_term(&self.state, last).unwrap_or(base.last_term);
        for (expected, e) in (last + 1..).zip(&entries[skip..]) {
            if e.index != expected {
                return self.invalid(format!(
                    "entry {} does not follow index {} (log ends at {}, truncate_from {:?})",
                    e.index,
                    expected - 1,
                    self.state.last_index(),
                    truncate_from
                ));
            }
            if e.term < prev_term {
                return self.invalid(format!(
                    "entry {} has term {} below its predecessor's {prev_term}",
                    e.index, e.term
                ));
            }
            prev_term = e.term;
        }
        Ok(skip)
    }

    fn check_not_older(&self, meta: SnapshotMeta) -> Result<(), StorageError> {
        let current = self.state.base;
        if meta.last_index < current.last_index {
            return self.invalid(format!(
                "snapshot at index {} is older than the one held (index {})",
                meta.last_index, current.last_index
            ));
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        match &self.failed {
            Some(cause) => Err(StorageError::Failed {
                path: self.dir.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: &StorageError) {
        warn!(dir = %self.dir.display(), error = %e, "storage write failed; refusing further writes");
        self.failed.get_or_insert_with(|| e.to_string());
    }

    fn invalid<T>(&self, detail: String) -> Result<T, StorageError> {
        Err(StorageError::InvalidWrite {
            path: self.dir.clone(),
            detail,
        })
    }
}

/// Term of the entry at `index`, if the log (or its base) holds it.
fn entry_term(state: &LogState, index: Index) -> Option<Term> {
    if index == state.base.last_index {
        return Some(state.base.last_term);
    }
    if index < state.base.last_index || index > state.last_index() {
        return None;
    }
    Some(state.entries[(index - state.base.last_index - 1) as usize].term)
}

/// A damaged WAL tail that [`Storage::open`] cuts.
struct Tail {
    /// Where the good records end.
    offset: u64,
    /// Bytes cut.
    cut: u64,
    /// Why.
    reason: String,
    /// It looks like a write cut short (see `wal::BadTail::torn`).
    torn: bool,
}

/// What `replay_wal` found: the state, whether the file existed, the damaged tail to cut (if any; the caller
/// cuts it, after recording a possible loss), the sequence number of the next record, and where the log ends
/// when nothing is cut (preallocated zeros may follow).
type Replayed = (LogState, bool, Option<Tail>, u64, u64);

/// Reads and replays the WAL (see [`Replayed`]).
fn replay_wal(path: &Path) -> Result<Replayed, StorageError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok((LogState::default(), false, None, 1, 0));
        }
        Err(source) => {
            return Err(StorageError::Io {
                path: path.to_path_buf(),
                op: "read",
                source,
            });
        }
    };
    if wal::is_older_format(&bytes) {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            detail: "written by an older squall (WAL format 1, without record sequence numbers), which this \
                     build does not read; start the node on a new data directory"
                .into(),
        });
    }
    let wal::Decoded {
        records,
        bad,
        next_seq,
        end,
    } = wal::decode_all(&bytes);
    let mut state = LogState::default();
    for (i, record) in records.into_iter().enumerate() {
        state
            .apply(record)
            .map_err(|detail| StorageError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("record {i}: {detail}"),
            })?;
    }
    if let Some(bad) = bad.as_ref().filter(|b| b.intact) {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "at offset {}: {}; not cutting it, because that would drop entries this node may have \
                 acknowledged (to recover, move the data directory aside: the node then starts empty and \
                 recovers from the other voters)",
                bad.offset, bad.reason
            ),
        });
    }
    let tail = bad.map(|bad| Tail {
        offset: bad.offset,
        cut: bytes.len() as u64 - bad.offset,
        reason: bad.reason,
        torn: bad.torn,
    });
    Ok((state, true, tail, next_seq, end))
}

/// Cuts a damaged tail off the WAL and fsyncs it.
fn truncate_wal(path: &Path, tail: &Tail) -> Result<(), StorageError> {
    warn!(
        file = %path.display(),
        offset = tail.offset,
        bytes_cut = tail.cut,
        reason = %tail.reason,
        torn = tail.torn,
        "{} WAL tail: truncating {} bytes at offset {}",
        if tail.torn { "torn final write in the" } else { "damaged complete record in the" },
        tail.cut,
        tail.offset
    );
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            op: "open for truncation",
            source,
        })?;
    f.set_len(tail.offset).map_err(|source| StorageError::Io {
        path: path.to_path_buf(),
        op: "truncate",
        source,
    })?;
    f.sync_all().map_err(|source| StorageError::Io {
        path: path.to_path_buf(),
        op: "fsync",
        source,
    })
}

/// Opens (or creates) the WAL for reading and writing; appends go to the log's end, which the storage keeps.
fn open_wal(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            op: "open for writing",
            source,
        })
}

fn file_len(f: &File, path: &Path) -> Result<u64, StorageError> {
    f.metadata()
        .map(|m| m.len())
        .map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            op: "stat",
            source,
        })
}

static UNSAFE_NO_FSYNC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, WAL appends in this process skip their fdatasync (`squall-node --unsafe-no-fsync`). UNSAFE: it
/// exists only to demonstrate that a power cut loses acknowledged writes of a node that forgets to sync.
pub fn set_unsafe_no_fsync() {
    tracing::warn!(
        "--unsafe-no-fsync: WAL appends are not synced; acknowledged writes can be lost on power loss"
    );
    UNSAFE_NO_FSYNC.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// True for the errors of a full disk: ENOSPC, or EDQUOT (a quota is a full disk for this user).
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// Creates (or truncates) `path` and writes `bytes` into it, unsynced; returns the open file. On a full disk the
/// half-written file is removed and the error is [`StorageError::DiskFull`].
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<File, StorageError> {
    let written = File::create(path)
        .map_err(|e| ("create", e))
        .and_then(|mut f| f.write_all(bytes).map(|()| f).map_err(|e| ("write", e)));
    match written {
        Ok(f) => Ok(f),
        Err((op, source)) if is_disk_full(&source) => {
            let _ = fs::remove_file(path);
            Err(StorageError::DiskFull {
                path: path.to_path_buf(),
                op,
                source,
            })
        }
        Err((op, source)) => Err(StorageError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }),
    }
}

/// Fsyncs a directory so renames and new files in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            op: "fsync directory",
            source,
        })
}
