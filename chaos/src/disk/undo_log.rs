//! The undo log: the power-cut journal's records, appended to a file beside the backing directory before each
//! change reaches it, so the journal outlives the squall process that holds the mount.
//!
//! Why: the journal is what tells unsynced bytes from durable ones. Were it only in memory, a squall killed
//! with SIGKILL would leave every unsynced byte in the backing directory, and the next mount would count them
//! as durable — a crash of the tool making data durable that no fsync ever made durable. With the log, the next
//! mount replays the records and undoes what was unsynced: squall's death acts as a power cut of every node.
//!
//! The log is written without fsync: it must survive the death of a process, which the page cache does; a
//! crash of the whole machine loses the backing directory's own unsynced bytes as well, in step with it.
//!
//! Format: a sequence of frames, each a little-endian `u32` length and that many bytes of one record (a tag
//! byte, then little-endian `u64` numbers and length-prefixed byte strings; paths relative to the directory
//! holding the backing directory). A frame cut short by the process's death ends the log: its change was
//! never made, since a record is complete before its change starts.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use super::powercut::{FileOp, NameChange, PendingName, Record};

/// A log is rewritten from the journal's present state once it grows past this size, or past twice its size
/// after the last rewrite, whichever is larger, in bytes. (A file never synced — a node's lock file — keeps
/// the journal from ever emptying, so waiting for an empty journal would let the log grow without bound.)
const COMPACT_AT: u64 = 64 << 10;

/// An open undo log.
#[derive(Debug)]
pub(crate) struct UndoLog {
    file: File,
    path: PathBuf,
    /// Paths in records are relative to this directory.
    base: PathBuf,
    len: u64,
    /// The length past which [`needs_compaction`](Self::needs_compaction) says yes.
    compact_at: u64,
}

const BEGIN: u8 = 1;
const OP: u8 = 2;
const SYNCED: u8 = 3;
const CREATED: u8 = 4;
const MADE_DIR: u8 = 5;
const RENAMED: u8 = 6;
const REMOVED: u8 = 7;
const ABORT: u8 = 8;
const DIR_SYNCED: u8 = 9;

impl UndoLog {
    /// Creates (or empties) the log at `path`; record paths are kept relative to `base`.
    pub(crate) fn create(path: &Path, base: &Path) -> std::io::Result<UndoLog> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(UndoLog {
            file,
            path: path.to_path_buf(),
            base: base.to_path_buf(),
            len: 0,
            compact_at: COMPACT_AT,
        })
    }

    /// Where the log is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends records in a single write (one system call, however many).
    pub(crate) fn append_all(&mut self, rs: &[Record]) -> std::io::Result<()> {
        let mut frames = Vec::with_capacity(64 * rs.len());
        for r in rs {
            let at = frames.len();
            frames.extend_from_slice(&[0; 4]);
            encode(r, &self.base, &mut frames);
            let n = (frames.len() - at - 4) as u32;
            frames[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
        (&self.file).write_all(&frames)?;
        self.len += frames.len() as u64;
        Ok(())
    }

    /// Whether the log has grown enough to be rewritten from the journal's present state.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.len > self.compact_at
    }

    /// Replaces the log's contents with `records`: written to a new file renamed over the log, so a process
    /// that dies part-way leaves the old log or the new one, never a mix.
    pub(crate) fn rewrite(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".new");
        let tmp = self.path.with_file_name(tmp_name);
        let mut next = UndoLog::create(&tmp, &self.base)?;
        next.append_all(records)?;
        std::fs::rename(&tmp, &self.path)?;
        next.path = self.path.clone();
        next.compact_at = COMPACT_AT.max(2 * next.len);
        *self = next;
        Ok(())
    }

    /// Reads the records of the log at `path` (none when it does not exist); record paths are resolved
    /// against `base`. A frame cut short at the end is ignored; anything else unreadable is an error.
    pub(crate) fn read(path: &Path, base: &Path) -> std::io::Result<Vec<Record>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut at = 0usize;
        while bytes.len() - at >= 4 {
            let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if bytes.len() - at - 4 < n {
                break;
            }
            let mut r = Reader {
                bytes: &bytes[at + 4..at + 4 + n],
                base,
            };
            out.push(r.record().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("undo log record at byte {at} is not readable"),
                )
            })?);
            at += 4 + n;
        }
        Ok(out)
    }
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_path(out: &mut Vec<u8>, p: &Path, base: &Path) {
    put_bytes(
        out,
        p.strip_prefix(base).unwrap_or(p).as_os_str().as_bytes(),
    );
}

fn encode(r: &Record, base: &Path, out: &mut Vec<u8>) {
    match r {
        Record::Begin { ino, durable_len } => {
            out.push(BEGIN);
            put_u64(out, *ino);
            put_u64(out, *durable_len);
        }
        Record::Op { ino, op } => {
            out.push(OP);
            put_u64(out, *ino);
            put_u64(out, op.at);
            // u64::MAX marks a truncation: no write is that long.
            put_u64(out, op.written.unwrap_or(u64::MAX));
            put_u64(out, op.old_len);
            put_bytes(out, &op.old);
        }
        Record::Synced { ino } => {
            out.push(SYNCED);
            put_u64(out, *ino);
        }
        Record::Name(p) => {
            match &p.change {
                NameChange::Created { path } => {
                    out.push(CREATED);
                    put_path(out, path, base);
                }
                NameChange::MadeDir { path } => {
                    out.push(MADE_DIR);
                    put_path(out, path, base);
                }
                NameChange::Renamed { from, to, replaced } => {
                    out.push(RENAMED);
                    put_path(out, from, base);
                    put_path(out, to, base);
                    match replaced {
                        Some(r) => {
                            out.push(1);
                            put_path(out, r, base);
                        }
                        None => out.push(0),
                    }
                }
                NameChange::Removed { path, stash } => {
                    out.push(REMOVED);
                    put_path(out, path, base);
                    put_path(out, stash, base);
                }
            }
            put_u64(out, p.dirs.len() as u64);
            for d in &p.dirs {
                put_u64(out, *d);
            }
        }
        Record::Abort => out.push(ABORT),
        Record::DirSynced { dir } => {
            out.push(DIR_SYNCED);
            put_u64(out, *dir);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    base: &'a Path,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    }

    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n).map(<[u8]>::to_vec)
    }

    fn path(&mut self) -> Option<PathBuf> {
        let rel = PathBuf::from(std::ffi::OsString::from_vec(self.bytes()?));
        Some(self.base.join(rel))
    }

    fn record(&mut self) -> Option<Record> {
        let r = match self.u8()? {
            BEGIN => Record::Begin {
                ino: self.u64()?,
                durable_len: self.u64()?,
            },
            OP => Record::Op {
                ino: self.u64()?,
                op: FileOp {
                    at: self.u64()?,
                    written: Some(self.u64()?).filter(|n| *n != u64::MAX),
                    old_len: self.u64()?,
                    old: self.bytes()?,
                },
            },
            SYNCED => Record::Synced { ino: self.u64()? },
            ABORT => Record::Abort,
            DIR_SYNCED => Record::DirSynced { dir: self.u64()? },
            tag @ (CREATED | MADE_DIR | RENAMED | REMOVED) => {
                let change = match tag {
                    CREATED => NameChange::Created { path: self.path()? },
                    MADE_DIR => NameChange::MadeDir { path: self.path()? },
                    RENAMED => NameChange::Renamed {
                        from: self.path()?,
                        to: self.path()?,
                        replaced: match self.u8()? {
                            0 => None,
                            _ => Some(self.path()?),
                        },
                    },
                    _ => NameChange::Removed {
                        path: self.path()?,
                        stash: self.path()?,
                    },
                };
                let n = self.u64()?;
                let mut dirs = Vec::new();
                for _ in 0..n.min(2) {
                    dirs.push(self.u64()?);
                }
                Record::Name(PendingName { change, dirs })
            }
            _ => return None,
        };
        self.bytes.is_empty().then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_and_a_cut_short_frame_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let records = vec![
            Record::Begin {
                ino: 7,
                durable_len: 3,
            },
            Record::Op {
                ino: 7,
                op: FileOp {
                    at: 1,
                    written: Some(5),
                    old_len: 3,
                    old: b"ld".to_vec(),
                },
            },
            Record::Op {
                ino: 7,
                op: FileOp {
                    at: 0,
                    written: None,
                    old_len: 6,
                    old: b"oXXXXX".to_vec(),
                },
            },
            Record::Synced { ino: 7 },
            Record::Name(PendingName {
                change: NameChange::Renamed {
                    from: base.join("disk/a"),
                    to: base.join("disk/b"),
                    replaced: Some(base.join("disk.stash/1")),
                },
                dirs: vec![1, 9],
            }),
            Record::Name(PendingName {
                change: NameChange::Removed {
                    path: base.join("disk/c"),
                    stash: base.join("disk.stash/2"),
                },
                dirs: vec![1],
            }),
            Record::Name(PendingName {
                change: NameChange::Created {
                    path: base.join("disk/d"),
                },
                dirs: vec![1],
            }),
            Record::Abort,
            Record::DirSynced { dir: 1 },
        ];
        let path = base.join("disk.undo");
        let mut log = UndoLog::create(&path, base).unwrap();
        for r in &records {
            log.append_all(std::slice::from_ref(r)).unwrap();
        }
        assert_eq!(UndoLog::read(&path, base).unwrap(), records);
        // The process died inside the next record's write.
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, [&whole[..], &[40, 0, 0, 0, BEGIN, 1, 2]].concat()).unwrap();
        assert_eq!(UndoLog::read(&path, base).unwrap(), records);
        // Rewriting starts the file over.
        log.rewrite(&records[..1]).unwrap();
        assert_eq!(UndoLog::read(&path, base).unwrap(), records[..1]);
        assert_eq!(UndoLog::read(&base.join("none"), base).unwrap(), vec![]);
    }

    #[test]
    fn a_journal_that_never_empties_keeps_its_log_bounded_and_replayable() {
        use super::super::powercut::Journal;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let path = base.join("disk.undo");
        let mut journal = Journal::logged(UndoLog::create(&path, base).unwrap());
        // A file written once and never synced (a lock file) ...
        let lock = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(base.join("lock"))
            .unwrap();
        journal.before_write(1, &lock, 0, 5).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&lock, b"12345", 0).unwrap();
        // ... beside a log file appended to and synced many times.
        let wal = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(base.join("wal"))
            .unwrap();
        for i in 0..20_000u64 {
            journal.before_write(2, &wal, i * 8, 8).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&wal, &i.to_le_bytes(), i * 8).unwrap();
            journal.synced(2).unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= 2 * COMPACT_AT, "the undo log grew to {len} bytes");
        // What it holds still says the lock file's 5 bytes were never synced.
        let records = UndoLog::read(&path, base).unwrap();
        assert!(
            records.iter().any(|r| matches!(
                r,
                Record::Begin {
                    ino: 1,
                    durable_len: 0
                }
            )),
            "{records:?}"
        );
        assert!(
            !records
                .iter()
                .any(|r| matches!(r, Record::Begin { ino: 2, .. }))
                || records
                    .iter()
                    .any(|r| matches!(r, Record::Synced { ino: 2 })),
            "a synced file left a live record"
        );
    }
}
