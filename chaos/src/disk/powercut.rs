//! Power cuts: the durability journal. Per file, every change since its last sync (oldest first) with what it
//! overwrote or cut off and the length before it — appends overwrite nothing, so they cost no copy; per
//! directory, the name changes made since its last fsync. A power cut undoes all of it, newest first, so the
//! backing directory ends holding only what was durable; a [torn](TornMode) cut then lets part of the unsynced
//! writes survive, as a disk that lost power with part of its cache written out would.
//!
//! Every change is also appended to an [undo log](super::undo_log) on disk *before* it reaches the backing
//! directory, so a squall that dies while the filesystem is mounted leaves enough behind for the next mount to
//! finish the power cut its death amounts to.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use rand::Rng as _;

use super::DiskError;
use super::undo_log::UndoLog;

/// How a power cut tears the unsynced writes of each file. Whatever the mode, data that was durable stays, and
/// name changes (create, rename, unlink, mkdir) follow only their directory's fsync.
///
/// The subset modes follow LazyFS's torn-write faults (`torn-seq`, `torn-op`; Jepsen and INESC TEC), chosen
/// at random from a seed rather than listed by hand, so a cut is reproduced by giving the same seed to the same
/// sequence of writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TornMode {
    /// The last unsynced write of each file keeps a random prefix (0 to all but one of its bytes); every other
    /// unsynced write is lost.
    Prefix,
    /// Each unsynced write survives whole or not at all, independently with probability 1/2; those that
    /// survive are applied in their original order (LazyFS `torn-seq`). Truncations are replayed in place.
    Writes,
    /// Each unsynced write is split at 4 KiB page boundaries and each piece survives independently with
    /// probability 1/2, in the original order (LazyFS `torn-op`, with pages as the parts). Truncations are
    /// replayed in place.
    Pages,
}

/// The size of the pieces [`TornMode::Pages`] splits a write into, in bytes.
pub const PAGE: u64 = 4096;

impl std::fmt::Display for TornMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TornMode::Prefix => "torn",
            TornMode::Writes => "torn writes",
            TornMode::Pages => "torn pages",
        })
    }
}

/// What a power cut threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PowerCutReport {
    /// Files whose unsynced data was dropped.
    pub files_rolled_back: usize,
    /// Unsynced bytes dropped (beyond the durable length, plus overwritten durable bytes restored).
    pub bytes_dropped: u64,
    /// Unsynced bytes a torn cut let survive (prefixes, whole writes or pages, by mode).
    pub torn_bytes_kept: u64,
    /// Name changes (creates, renames, removals, new directories) undone.
    pub names_undone: usize,
    /// What is gone because no fsync of its directory made its name durable: files and directories made
    /// since, as paths relative to the disk's root (a directory with a trailing `/`), outermost only (what
    /// was made inside a lost directory went with it), sorted.
    pub lost: Vec<String>,
}

impl PowerCutReport {
    /// Whether the cut changed anything.
    pub fn is_empty(&self) -> bool {
        self.files_rolled_back == 0 && self.names_undone == 0
    }
}

impl std::fmt::Display for PowerCutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dropped {} unsynced bytes in {} file(s), undid {} unsynced name change(s)",
            self.bytes_dropped, self.files_rolled_back, self.names_undone
        )?;
        if self.torn_bytes_kept > 0 {
            write!(f, ", kept {} torn bytes", self.torn_bytes_kept)?;
        }
        if !self.lost.is_empty() {
            const SHOWN: usize = 8;
            let mut names = self.lost[..self.lost.len().min(SHOWN)].join(", ");
            if self.lost.len() > SHOWN {
                names.push_str(&format!(" and {} more", self.lost.len() - SHOWN));
            }
            write!(
                f,
                "; gone because no fsync of their directory made them durable: {names}"
            )?;
        }
        Ok(())
    }
}

/// One unsynced change to a file's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileOp {
    /// Where a write starts, or the new length of a truncation; `old` goes back here.
    pub(crate) at: u64,
    /// Bytes written; `None` for a truncation.
    pub(crate) written: Option<u64>,
    /// The file's length before the change.
    pub(crate) old_len: u64,
    /// The bytes the change overwrote (a write) or cut off (a truncation), from `at`.
    pub(crate) old: Vec<u8>,
}

/// Unsynced changes to one file's data.
#[derive(Debug)]
pub(crate) struct FileUndo {
    /// The file's length at its last sync (or when first changed after it).
    durable_len: u64,
    /// Every change since, oldest first.
    ops: Vec<FileOp>,
}

/// A name change not yet made durable by a directory fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameChange {
    /// A file created at `path`.
    Created { path: PathBuf },
    /// A directory made at `path`.
    MadeDir { path: PathBuf },
    /// `from` renamed to `to`; what `to` held before, if anything, is at `replaced` in the stash.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    },
    /// `path` removed; it is at `stash` until the removal is durable.
    Removed { path: PathBuf, stash: PathBuf },
}

impl NameChange {
    /// The change as it reads once `from` is durably renamed to `to`: every path at or under `from` is moved
    /// under `to` (stash paths are outside the disk and stay).
    fn moved(&mut self, from: &Path, to: &Path) {
        let shift = |p: &mut PathBuf| {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        };
        match self {
            NameChange::Created { path }
            | NameChange::MadeDir { path }
            | NameChange::Removed { path, .. } => shift(path),
            NameChange::Renamed { from: f, to: t, .. } => {
                shift(f);
                shift(t);
            }
        }
    }
}

/// A name change and the directories whose fsync makes it durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingName {
    pub(crate) change: NameChange,
    /// FUSE inodes of the directories that must be fsynced before the change is durable.
    pub(crate) dirs: Vec<u64>,
}

/// One entry of the journal, as kept in the undo log: replaying the records of a log in order rebuilds the
/// journal they were appended from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// File `ino` is changed for the first time since its last sync; it was `durable_len` bytes long.
    Begin { ino: u64, durable_len: u64 },
    /// A change to file `ino`'s data.
    Op { ino: u64, op: FileOp },
    /// File `ino`'s data is durable (or the file is gone for good).
    Synced { ino: u64 },
    /// A name change.
    Name(PendingName),
    /// The last name change recorded did not happen (the operation failed).
    Abort,
    /// Directory `dir` was fsynced.
    DirSynced { dir: u64 },
}

/// Everything not yet durable.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    files: HashMap<u64, FileUndo>,
    names: Vec<PendingName>,
    stash_seq: u64,
    /// Where every record goes before its change is made; `None` keeps the journal in memory only.
    log: Option<UndoLog>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DiskError + 'a {
    move |source| DiskError::Io {
        op,
        path: path.to_path_buf(),
        error: source,
    }
}

impl Journal {
    /// A journal that appends every record to `log` before the change it describes is made.
    pub(crate) fn logged(log: UndoLog) -> Journal {
        Journal {
            log: Some(log),
            ..Journal::default()
        }
    }

    /// Rebuilds the journal a log's records were appended from (the records are not logged again).
    pub(crate) fn replay(records: Vec<Record>) -> Journal {
        let mut j = Journal::default();
        for r in records {
            j.apply(r);
        }
        j
    }

    /// Logs `r`, then applies it. Returns the stash entries a directory sync freed.
    fn record(&mut self, r: Record) -> std::io::Result<Vec<PathBuf>> {
        self.record_all(vec![r])
    }

    /// Logs `rs` in one write, then applies them.
    fn record_all(&mut self, rs: Vec<Record>) -> std::io::Result<Vec<PathBuf>> {
        if let Some(log) = &mut self.log {
            log.append_all(&rs)?;
        }
        let mut freed = Vec::new();
        for r in rs {
            freed.extend(self.apply(r));
        }
        if self.log.as_ref().is_some_and(|l| l.needs_compaction()) {
            let records = self.records();
            if let Some(log) = &mut self.log {
                log.rewrite(&records)?;
            }
        }
        Ok(freed)
    }

    fn apply(&mut self, r: Record) -> Vec<PathBuf> {
        match r {
            Record::Begin { ino, durable_len } => {
                self.files.insert(
                    ino,
                    FileUndo {
                        durable_len,
                        ops: Vec::new(),
                    },
                );
            }
            Record::Op { ino, op } => {
                let entry = self.files.entry(ino).or_insert_with(|| FileUndo {
                    durable_len: op.old_len,
                    ops: Vec::new(),
                });
                entry.ops.push(op);
            }
            Record::Synced { ino } => {
                self.files.remove(&ino);
            }
            Record::Name(p) => {
                for path in stash_paths(&p.change) {
                    if let Some(seq) = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.parse::<u64>().ok())
                    {
                        self.stash_seq = self.stash_seq.max(seq);
                    }
                }
                self.names.push(p);
            }
            Record::Abort => {
                self.names.pop();
            }
            Record::DirSynced { dir } => {
                let mut freed = Vec::new();
                let mut i = 0;
                while i < self.names.len() {
                    self.names[i].dirs.retain(|d| *d != dir);
                    if !self.names[i].dirs.is_empty() {
                        i += 1;
                        continue;
                    }
                    let done = self.names.remove(i);
                    freed.extend(stash_paths(&done.change).into_iter().cloned());
                    // A durable rename is never undone, so the older changes still pending find what they
                    // name under its new name: a file made in `wal.tmp` (never synced) is at `wal/…` once
                    // `wal.tmp` -> `wal` is durable, and a cut removes it there.
                    if let NameChange::Renamed { from, to, .. } = &done.change {
                        for older in &mut self.names[..i] {
                            older.change.moved(from, to);
                        }
                    }
                }
                return freed;
            }
        }
        Vec::new()
    }

    /// The records that rebuild this journal.
    fn records(&self) -> Vec<Record> {
        let mut inos: Vec<_> = self.files.keys().copied().collect();
        inos.sort_unstable();
        let mut out = Vec::new();
        for ino in inos {
            let f = &self.files[&ino];
            out.push(Record::Begin {
                ino,
                durable_len: f.durable_len,
            });
            out.extend(f.ops.iter().map(|op| Record::Op {
                ino,
                op: op.clone(),
            }));
        }
        out.extend(self.names.iter().cloned().map(Record::Name));
        out
    }

    /// Records a change to file `ino`, whose length now is `len_now`; the first change since its last sync
    /// also starts its record (that length is its durable length), in the same write to the log.
    fn change(&mut self, ino: u64, len_now: u64, op: FileOp) -> std::io::Result<()> {
        let mut rs = Vec::with_capacity(2);
        if !self.files.contains_key(&ino) {
            rs.push(Record::Begin {
                ino,
                durable_len: len_now,
            });
        }
        rs.push(Record::Op { ino, op });
        self.record_all(rs)?;
        Ok(())
    }

    /// Records a write of `len` bytes at `offset` to `file` (FUSE inode `ino`), before it is made: reads the
    /// bytes it will overwrite.
    pub(crate) fn before_write(
        &mut self,
        ino: u64,
        file: &File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let have = file.metadata()?.len();
        let mut old = Vec::new();
        if offset < have {
            old = vec![0u8; ((offset + len as u64).min(have) - offset) as usize];
            file.read_exact_at(&mut old, offset)?;
        }
        self.change(
            ino,
            have,
            FileOp {
                at: offset,
                written: Some(len as u64),
                old_len: have,
                old,
            },
        )
    }

    /// Records a truncation of `file` to `new_len`, before it is made.
    pub(crate) fn before_truncate(
        &mut self,
        ino: u64,
        file: &File,
        new_len: u64,
    ) -> std::io::Result<()> {
        let have = file.metadata()?.len();
        let mut old = Vec::new();
        if new_len < have {
            old = vec![0u8; (have - new_len) as usize];
            file.read_exact_at(&mut old, new_len)?;
        }
        self.change(
            ino,
            have,
            FileOp {
                at: new_len,
                written: None,
                old_len: have,
                old,
            },
        )
    }

    /// The file's data is durable now.
    pub(crate) fn synced(&mut self, ino: u64) -> std::io::Result<()> {
        if self.files.contains_key(&ino) {
            self.record(Record::Synced { ino })?;
        }
        Ok(())
    }

    /// Records a name change before it is made; if making it fails, call [`abort_name`](Self::abort_name).
    fn name(&mut self, change: NameChange, dirs: Vec<u64>) -> std::io::Result<()> {
        self.record(Record::Name(PendingName { change, dirs }))?;
        Ok(())
    }

    /// Records a new file, before it is created.
    pub(crate) fn created(&mut self, parent: u64, path: PathBuf) -> std::io::Result<()> {
        self.name(NameChange::Created { path }, vec![parent])
    }

    /// Records a new directory, before it is made.
    pub(crate) fn made_dir(&mut self, parent: u64, path: PathBuf) -> std::io::Result<()> {
        self.name(NameChange::MadeDir { path }, vec![parent])
    }

    /// A fresh path in the stash for a removed or replaced entry.
    pub(crate) fn stash_path(&mut self, stash: &Path) -> PathBuf {
        self.stash_seq += 1;
        stash.join(self.stash_seq.to_string())
    }

    /// Records a rename, before it is made; `replaced` is where the entry it replaces will be moved in the
    /// stash.
    pub(crate) fn renamed(
        &mut self,
        dirs: Vec<u64>,
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    ) -> std::io::Result<()> {
        self.name(NameChange::Renamed { from, to, replaced }, dirs)
    }

    /// Records a removal, before the entry is moved to `stash`.
    pub(crate) fn removed(
        &mut self,
        parent: u64,
        path: PathBuf,
        stash: PathBuf,
    ) -> std::io::Result<()> {
        self.name(NameChange::Removed { path, stash }, vec![parent])
    }

    /// The name change just recorded did not happen.
    pub(crate) fn abort_name(&mut self) -> std::io::Result<()> {
        self.record(Record::Abort)?;
        Ok(())
    }

    /// Directory `dir` was fsynced: name changes in it are durable once all their directories are. Returns the
    /// stash entries no longer needed.
    pub(crate) fn dir_synced(&mut self, dir: u64) -> std::io::Result<Vec<PathBuf>> {
        if !self.names.iter().any(|p| p.dirs.contains(&dir)) {
            return Ok(Vec::new());
        }
        self.record(Record::DirSynced { dir })
    }

    /// Forgets the record of a file whose removal became durable (its unsynced data is gone with it), so a
    /// new file that gets the same inode number starts with a record of its own.
    pub(crate) fn forget(&mut self, ino: u64) -> std::io::Result<()> {
        self.synced(ino)
    }

    /// Drops the unsynced data of one file (a failed fsync): returns the bytes dropped.
    pub(crate) fn drop_file(&mut self, ino: u64, path: &Path) -> Result<u64, DiskError> {
        let Some(undo) = self.files.get(&ino) else {
            return Ok(0);
        };
        let (dropped, _) = roll_back_file(path, undo, None)?;
        self.synced(ino).map_err(io("log the rollback of", path))?;
        Ok(dropped)
    }

    /// Forgets everything unsynced, in memory and in the log (a wiped disk).
    pub(crate) fn clear(&mut self) -> Result<(), DiskError> {
        self.files.clear();
        self.names.clear();
        self.rewrite_log()
    }

    fn rewrite_log(&mut self) -> Result<(), DiskError> {
        let records = self.records();
        if let Some(log) = &mut self.log {
            log.rewrite(&records)
                .map_err(|e| io("rewrite the undo log", log.path())(e))?;
        }
        Ok(())
    }

    /// Undoes everything not durable. `paths` maps FUSE inodes to their current backing paths; `torn` gives
    /// the mode and the random source for torn writes. What could not be undone stays in the journal (and its
    /// log), so a later call retries it; the first failure is returned.
    pub(crate) fn power_cut(
        &mut self,
        paths: &HashMap<u64, PathBuf>,
        mut torn: Option<(TornMode, &mut rand_chacha::ChaCha8Rng)>,
    ) -> Result<PowerCutReport, DiskError> {
        let mut report = PowerCutReport::default();
        let mut first_err = None;
        // In path order, so a seed tears the same files the same way whatever the inode numbers are.
        let mut files: Vec<(u64, FileUndo)> = std::mem::take(&mut self.files).into_iter().collect();
        files.sort_by(|a, b| paths.get(&a.0).cmp(&paths.get(&b.0)).then(a.0.cmp(&b.0)));
        for (ino, undo) in files {
            let Some(path) = paths.get(&ino) else {
                continue;
            };
            let torn = torn.as_mut().map(|(mode, rng)| (*mode, &mut **rng));
            match roll_back_file(path, &undo, torn) {
                Ok((dropped, kept)) => {
                    report.files_rolled_back += 1;
                    report.bytes_dropped += dropped;
                    report.torn_bytes_kept += kept;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                    self.files.insert(ino, undo);
                }
            }
        }
        let mut failed_names = Vec::new();
        let mut lost = Vec::new();
        let names = std::mem::take(&mut self.names);
        // A name made and then removed (etcd's writability probe `.touch`) was not there to lose.
        let removed_later: Vec<bool> = names
            .iter()
            .enumerate()
            .map(|(i, p)| match &p.change {
                NameChange::Created { path } | NameChange::MadeDir { path } => names[i + 1..]
                    .iter()
                    .any(|q| matches!(&q.change, NameChange::Removed { path: r, .. } if r == path)),
                _ => false,
            })
            .collect();
        for (i, pending) in names.into_iter().enumerate().rev() {
            let made = match &pending.change {
                NameChange::Created { path } => Some((path.clone(), false)),
                NameChange::MadeDir { path } => Some((path.clone(), true)),
                _ => None,
            }
            .filter(|(p, _)| !removed_later[i] && std::fs::symlink_metadata(p).is_ok());
            match undo_name(&pending.change) {
                Ok(()) => {
                    report.names_undone += 1;
                    lost.extend(made);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                    failed_names.push(pending);
                }
            }
        }
        failed_names.reverse();
        self.names = failed_names;
        report.lost = lost_names(paths.get(&1).map(PathBuf::as_path), lost);
        if let Err(e) = self.rewrite_log() {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// What [`PowerCutReport::lost`] lists of the names a cut removed (`(backing path, is a directory)`): relative
/// to `root`, outermost only, sorted.
fn lost_names(root: Option<&Path>, mut made: Vec<(PathBuf, bool)>) -> Vec<String> {
    made.sort();
    let dirs: Vec<PathBuf> = made
        .iter()
        .filter(|(_, dir)| *dir)
        .map(|(p, _)| p.clone())
        .collect();
    made.iter()
        .filter(|(p, _)| !dirs.iter().any(|d| p != d && p.starts_with(d)))
        .map(|(p, dir)| {
            let shown = root.and_then(|r| p.strip_prefix(r).ok()).unwrap_or(p);
            let mut s = shown.display().to_string();
            if *dir {
                s.push('/');
            }
            s
        })
        .collect()
}

/// The stash entries a name change keeps.
fn stash_paths(change: &NameChange) -> Vec<&PathBuf> {
    match change {
        NameChange::Removed { stash, .. } => vec![stash],
        NameChange::Renamed {
            replaced: Some(r), ..
        } => vec![r],
        _ => Vec::new(),
    }
}

/// Restores a file to its durable state, then (with `torn`) lets part of its unsynced writes survive. Returns
/// bytes dropped and torn bytes kept.
///
/// Undoing the changes newest first passes through the state right after each one, so each write's own bytes
/// are read there before it is undone: that is what a torn cut re-applies.
fn roll_back_file(
    path: &Path,
    undo: &FileUndo,
    torn: Option<(TornMode, &mut rand_chacha::ChaCha8Rng)>,
) -> Result<(u64, u64), DiskError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        // Removed meanwhile: its name change (if unsynced) brings it back from the stash, already rolled back
        // by inode there; if the removal was durable, the data went with it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io("open for power cut", path)(e)),
    };
    let len_now = file.metadata().map_err(io("stat", path))?.len();
    let mut dropped = len_now.saturating_sub(undo.durable_len);
    let mut data: Vec<Option<Vec<u8>>> = vec![None; undo.ops.len()];
    let last = undo.ops.len().saturating_sub(1);
    for (i, op) in undo.ops.iter().enumerate().rev() {
        let wanted = match &torn {
            None => false,
            Some((TornMode::Prefix, _)) => i == last,
            Some(_) => true,
        };
        if wanted && let Some(n) = op.written {
            let len = file.metadata().map_err(io("stat", path))?.len();
            let end = (op.at + n).min(len);
            let mut bytes = vec![0u8; end.saturating_sub(op.at) as usize];
            file.read_exact_at(&mut bytes, op.at)
                .map_err(io("read an unsynced write of", path))?;
            data[i] = Some(bytes);
        }
        if !op.old.is_empty() {
            file.write_all_at(&op.old, op.at)
                .map_err(io("restore durable bytes of", path))?;
            dropped += op.old.len() as u64;
        }
        file.set_len(op.old_len)
            .map_err(io("cut unsynced bytes of", path))?;
    }
    let mut kept = 0u64;
    if let Some((mode, rng)) = torn {
        let mut put = |at: u64, bytes: &[u8]| -> Result<(), DiskError> {
            file.write_all_at(bytes, at)
                .map_err(io("write torn bytes of", path))?;
            kept += bytes.len() as u64;
            Ok(())
        };
        match mode {
            TornMode::Prefix => {
                if let (Some(op), Some(Some(bytes))) = (undo.ops.last(), data.last())
                    && !bytes.is_empty()
                {
                    let keep = rng.random_range(0..bytes.len());
                    put(op.at, &bytes[..keep])?;
                }
            }
            TornMode::Writes | TornMode::Pages => {
                for (op, bytes) in undo.ops.iter().zip(&data) {
                    let Some(bytes) = bytes else {
                        file.set_len(op.at)
                            .map_err(io("replay a truncation of", path))?;
                        continue;
                    };
                    if mode == TornMode::Writes {
                        if rng.random_bool(0.5) {
                            put(op.at, bytes)?;
                        }
                        continue;
                    }
                    let mut start = op.at;
                    let end = op.at + bytes.len() as u64;
                    while start < end {
                        let piece_end = ((start / PAGE + 1) * PAGE).min(end);
                        if rng.random_bool(0.5) {
                            let from = (start - op.at) as usize;
                            put(start, &bytes[from..(piece_end - op.at) as usize])?;
                        }
                        start = piece_end;
                    }
                }
            }
        }
    }
    file.sync_all().map_err(io("fsync", path))?;
    Ok((dropped, kept))
}

/// Undoes one name change. Safe to run on a change that was logged but never made (squall died between the
/// two): each step checks that what it moves back is there.
fn undo_name(change: &NameChange) -> Result<(), DiskError> {
    let gone_ok = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    match change {
        NameChange::Created { path } => {
            gone_ok(std::fs::remove_file(path)).map_err(io("remove unsynced new file", path))
        }
        NameChange::MadeDir { path } => gone_ok(std::fs::remove_dir_all(path))
            .map_err(io("remove unsynced new directory", path)),
        NameChange::Renamed { from, to, replaced } => {
            if !exists(from) {
                gone_ok(std::fs::rename(to, from)).map_err(io("undo unsynced rename to", to))?;
            }
            if let Some(r) = replaced
                && exists(r)
            {
                std::fs::rename(r, to).map_err(io("restore replaced", to))?;
            }
            Ok(())
        }
        NameChange::Removed { path, stash } => {
            if exists(stash) && path.parent().is_some_and(|d| !exists(d)) {
                // The directory it was removed from has since been removed durably (a durable rename moves
                // the path with it, see `Journal::apply`): the name it would come back under is gone. The
                // removal is kept, a state a real disk may also come back in (an unsynced removal may reach
                // it before the cut).
                if stash.is_dir() {
                    std::fs::remove_dir_all(stash)
                } else {
                    std::fs::remove_file(stash)
                }
                .map_err(io("discard the stash of", stash))
            } else if exists(stash) {
                std::fs::rename(stash, path).map_err(io("restore unsynced removal of", path))
            } else if exists(path) {
                // Logged, never moved.
                Ok(())
            } else {
                Err(DiskError::Io {
                    op: "restore unsynced removal of",
                    path: path.clone(),
                    error: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("its stashed copy {} is gone", stash.display()),
                    ),
                })
            }
        }
    }
}
