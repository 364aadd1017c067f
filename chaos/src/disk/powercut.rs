//! Power cuts: the durability journal. Per file, the bytes each unsynced write overwrote below the file's
//! durable length (appends overwrite nothing, so they cost nothing) and that durable length; per directory, the
//! name changes made since its last fsync. A power cut undoes all of it, newest first, so the backing directory
//! ends holding only what was durable. With `torn`, the last unsynced write of each file keeps a prefix of
//! random length, as a disk that lost power part-way through a write would.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use rand::Rng as _;

use super::DiskError;

/// What a power cut threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PowerCutReport {
    /// Files whose unsynced data was dropped.
    pub files_rolled_back: usize,
    /// Unsynced bytes dropped (beyond the durable length, plus overwritten durable bytes restored).
    pub bytes_dropped: u64,
    /// Bytes kept as torn prefixes of last writes.
    pub torn_bytes_kept: u64,
    /// Name changes (creates, renames, removals, new directories) undone.
    pub names_undone: usize,
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
        Ok(())
    }
}

/// Unsynced changes to one file's data.
#[derive(Debug)]
pub(crate) struct FileUndo {
    /// The file's length at its last sync (or when first changed after it).
    durable_len: u64,
    /// (offset, bytes it held) for each write that overwrote durable bytes, oldest first.
    undo: Vec<(u64, Vec<u8>)>,
    /// Offset and length of the last unsynced write (for a torn write).
    last: Option<(u64, usize)>,
}

/// A name change not yet made durable by a directory fsync.
#[derive(Debug)]
enum NameChange {
    /// A file created at `path` (FUSE inode `ino`).
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

#[derive(Debug)]
struct PendingName {
    change: NameChange,
    /// FUSE inodes of the directories that must be fsynced before the change is durable.
    dirs: Vec<u64>,
}

/// Everything not yet durable.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    files: HashMap<u64, FileUndo>,
    names: Vec<PendingName>,
    stash_seq: u64,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DiskError + 'a {
    move |source| DiskError::Io {
        op,
        path: path.to_path_buf(),
        error: source,
    }
}

impl Journal {
    /// Records a write of `len` bytes at `offset` to `file` (FUSE inode `ino`), before it is made. Reads the
    /// durable bytes it will overwrite.
    pub(crate) fn before_write(
        &mut self,
        ino: u64,
        file: &File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<()> {
        let entry = self.entry(ino, file)?;
        // Only bytes the file has can be overwritten (a stale record of an inode number the backing
        // filesystem reused for a new file can claim more; reading past the end would fail the write).
        let have = file.metadata()?.len();
        if offset < entry.durable_len.min(have) && len > 0 {
            let end = (offset + len as u64).min(entry.durable_len).min(have);
            let mut old = vec![0u8; (end - offset) as usize];
            file.read_exact_at(&mut old, offset)?;
            entry.undo.push((offset, old));
        }
        entry.last = Some((offset, len));
        Ok(())
    }

    /// Records a truncation of `file` to `new_len`, before it is made.
    pub(crate) fn before_truncate(
        &mut self,
        ino: u64,
        file: &File,
        new_len: u64,
    ) -> std::io::Result<()> {
        let entry = self.entry(ino, file)?;
        if new_len < entry.durable_len {
            let mut old = vec![0u8; (entry.durable_len - new_len) as usize];
            file.read_exact_at(&mut old, new_len)?;
            entry.undo.push((new_len, old));
        }
        entry.last = None;
        Ok(())
    }

    fn entry(&mut self, ino: u64, file: &File) -> std::io::Result<&mut FileUndo> {
        match self.files.entry(ino) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => Ok(e.insert(FileUndo {
                durable_len: file.metadata()?.len(),
                undo: Vec::new(),
                last: None,
            })),
        }
    }

    /// The file's data is durable now.
    pub(crate) fn synced(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// Records a new file.
    pub(crate) fn created(&mut self, parent: u64, path: PathBuf) {
        self.names.push(PendingName {
            change: NameChange::Created { path },
            dirs: vec![parent],
        });
    }

    /// Records a new directory.
    pub(crate) fn made_dir(&mut self, parent: u64, path: PathBuf) {
        self.names.push(PendingName {
            change: NameChange::MadeDir { path },
            dirs: vec![parent],
        });
    }

    /// A fresh path in the stash for a removed or replaced entry.
    pub(crate) fn stash_path(&mut self, stash: &Path) -> PathBuf {
        self.stash_seq += 1;
        stash.join(self.stash_seq.to_string())
    }

    /// Records a rename; `replaced` is where the entry it replaced was moved in the stash.
    pub(crate) fn renamed(
        &mut self,
        dirs: Vec<u64>,
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    ) {
        self.names.push(PendingName {
            change: NameChange::Renamed { from, to, replaced },
            dirs,
        });
    }

    /// Records a removal; the entry was moved to `stash`.
    pub(crate) fn removed(&mut self, parent: u64, path: PathBuf, stash: PathBuf) {
        self.names.push(PendingName {
            change: NameChange::Removed { path, stash },
            dirs: vec![parent],
        });
    }

    /// Directory `dir` was fsynced: name changes in it are durable once all their directories are. Returns the
    /// stash entries no longer needed.
    pub(crate) fn dir_synced(&mut self, dir: u64) -> Vec<PathBuf> {
        let mut freed = Vec::new();
        self.names.retain_mut(|p| {
            p.dirs.retain(|d| *d != dir);
            if !p.dirs.is_empty() {
                return true;
            }
            match &p.change {
                NameChange::Removed { stash, .. } => freed.push(stash.clone()),
                NameChange::Renamed {
                    replaced: Some(r), ..
                } => freed.push(r.clone()),
                _ => {}
            }
            false
        });
        freed
    }

    /// Forgets the record of a file whose removal became durable (its unsynced data is gone with it), so a
    /// new file that gets the same inode number starts with a record of its own.
    pub(crate) fn forget(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// Drops the unsynced data of one file (a failed fsync): returns the bytes dropped.
    pub(crate) fn drop_file(&mut self, ino: u64, path: &Path) -> Result<u64, DiskError> {
        match self.files.remove(&ino) {
            Some(undo) => Ok(roll_back_file(path, &undo, None)?.0),
            None => Ok(0),
        }
    }

    /// Undoes everything not durable. `paths` maps FUSE inodes to their current backing paths; `torn` gives
    /// the random source for torn last writes.
    pub(crate) fn power_cut(
        &mut self,
        paths: &HashMap<u64, PathBuf>,
        mut torn: Option<&mut rand_chacha::ChaCha8Rng>,
    ) -> Result<PowerCutReport, DiskError> {
        let mut report = PowerCutReport::default();
        let mut first_err = None;
        for (ino, undo) in std::mem::take(&mut self.files) {
            let Some(path) = paths.get(&ino) else {
                continue;
            };
            match roll_back_file(path, &undo, torn.as_deref_mut()) {
                Ok((dropped, kept)) => {
                    report.files_rolled_back += 1;
                    report.bytes_dropped += dropped;
                    report.torn_bytes_kept += kept;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for pending in std::mem::take(&mut self.names).into_iter().rev() {
            report.names_undone += 1;
            if let Err(e) = undo_name(&pending.change) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// Restores a file to its durable state; with `torn`, keeps a random prefix of the last write. Returns bytes
/// dropped and torn bytes kept.
fn roll_back_file(
    path: &Path,
    undo: &FileUndo,
    torn: Option<&mut rand_chacha::ChaCha8Rng>,
) -> Result<(u64, u64), DiskError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        // Removed meanwhile: its name change (if unsynced) brings it back from the stash, already rolled back
        // by inode there; if the removal was durable, the data went with it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(io("open for power cut", path)(e)),
    };
    let len_now = file.metadata().map_err(io("stat", path))?.len();
    let mut prefix = None;
    if let (Some(rng), Some((off, len))) = (torn, undo.last)
        && len > 0
        && off < len_now
    {
        let keep = rng.random_range(0..len).min((len_now - off) as usize);
        let mut bytes = vec![0u8; keep];
        file.read_exact_at(&mut bytes, off)
            .map_err(io("read torn prefix of", path))?;
        prefix = Some((off, bytes));
    }
    let mut dropped = len_now.saturating_sub(undo.durable_len);
    for (off, old) in undo.undo.iter().rev() {
        file.write_all_at(old, *off)
            .map_err(io("restore durable bytes of", path))?;
        dropped += old.len() as u64;
    }
    file.set_len(undo.durable_len)
        .map_err(io("cut unsynced tail of", path))?;
    let mut kept = 0;
    if let Some((off, bytes)) = prefix {
        file.write_all_at(&bytes, off)
            .map_err(io("write torn prefix of", path))?;
        kept = bytes.len() as u64;
    }
    file.sync_all().map_err(io("fsync", path))?;
    Ok((dropped, kept))
}

fn undo_name(change: &NameChange) -> Result<(), DiskError> {
    let gone_ok = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    match change {
        NameChange::Created { path } => {
            gone_ok(std::fs::remove_file(path)).map_err(io("remove unsynced new file", path))
        }
        NameChange::MadeDir { path } => gone_ok(std::fs::remove_dir_all(path))
            .map_err(io("remove unsynced new directory", path)),
        NameChange::Renamed { from, to, replaced } => {
            gone_ok(std::fs::rename(to, from)).map_err(io("undo unsynced rename to", to))?;
            if let Some(r) = replaced {
                std::fs::rename(r, to).map_err(io("restore replaced", to))?;
            }
            Ok(())
        }
        NameChange::Removed { path, stash } => {
            std::fs::rename(stash, path).map_err(io("restore unsynced removal of", path))
        }
    }
}
