//! The durable half of the node: the Raft log and the vote, in two files of the node's data directory.
//!
//! `log` is an append-only file of records, each `[u32 length BE][u32 CRC-32 BE][JSON]`: an entry, a
//! truncation ("entries from this index on are gone") or a purge. Replaying it in order rebuilds the log; a
//! record cut short or failing its checksum ends the replay and is cut off (a write that was never fsynced,
//! so never acknowledged to openraft). `vote` holds the vote as JSON, replaced whole (temporary file, fsync,
//! rename, fsync of the directory). Every change is fsynced before openraft is told it is done: the log before
//! `LogFlushed::log_io_completed`, the vote before `save_vote` returns — Raft's rule that a node answers a
//! message only after its persistent state is on stable storage (Ongaro and Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", 2014, figure 2, "Persistent state on all servers").

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};

use crate::TypeConfig;

/// One record of the log file.
#[derive(Serialize, Deserialize)]
enum Record {
    /// An entry appended.
    Entry(Entry<TypeConfig>),
    /// Entries at this index and after are removed (a conflicting suffix).
    Truncate(u64),
    /// Entries up to and including this log id are removed (compacted into a snapshot).
    Purge(LogId<u64>),
}

struct Inner {
    file: File,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    dir: PathBuf,
}

/// The log and vote store; clones share it (openraft asks for a separate reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    /// The highest index openraft has told the store is committed (0: none yet); read by the status
    /// endpoint.
    pub committed: Arc<AtomicU64>,
}

fn io_err<E: std::error::Error + 'static>(
    make: fn(openraft::AnyError) -> StorageIOError<u64>,
) -> impl Fn(E) -> StorageError<u64> {
    move |e| StorageError::IO {
        source: make(openraft::AnyError::new(&e)),
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LogStore {
    /// Opens (or creates) the store in `dir`, replaying the log file and reading the vote.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("log");
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        if created {
            fsync_dir(dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut entries = BTreeMap::new();
        let mut purged = None;
        let mut at = 0usize;
        while let Some((record, next)) = decode(&bytes, at) {
            match record {
                Record::Entry(e) => {
                    entries.insert(e.log_id.index, e);
                }
                Record::Truncate(since) => {
                    entries.split_off(&since);
                }
                Record::Purge(id) => {
                    entries = entries.split_off(&(id.index + 1));
                    purged = Some(id);
                }
            }
            at = next;
        }
        if at < bytes.len() {
            // A torn tail: never fsynced, so never acknowledged. Cut it so new records follow whole ones.
            eprintln!(
                "openraft-kv: cutting {} bytes of a torn record at offset {at} of {}",
                bytes.len() - at,
                path.display()
            );
            file.set_len(at as u64)?;
            file.sync_all()?;
        }
        let vote = match std::fs::read(dir.join("vote")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(io::Error::other)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                file,
                entries,
                purged,
                vote,
                dir: dir.to_path_buf(),
            })),
            committed: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The vote as stored (for the status endpoint).
    pub fn vote(&self) -> Option<Vote<u64>> {
        self.inner.lock().unwrap().vote
    }
}

/// The record at `at`, and where the next begins; `None` at the end or at a torn or corrupt record.
fn decode(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let head = bytes.get(at..at + 8)?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let crc = u32::from_be_bytes(head[4..].try_into().unwrap());
    let body = bytes.get(at + 8..at + 8 + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let record = serde_json::from_slice(body).ok()?;
    Some((record, at + 8 + len))
}

fn encode(record: &Record, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("log records serialise");
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

impl Inner {
    /// Appends records and fsyncs them.
    fn write(&mut self, records: &[Record]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            encode(r, &mut buf);
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let inner = self.inner.lock().unwrap();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let inner = self.inner.lock().unwrap();
        let last = inner
            .entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let mut inner = self.inner.lock().unwrap();
        let dir = inner.dir.clone();
        let write = || -> io::Result<()> {
            let tmp = dir.join("vote.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(vote).map_err(io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join("vote"))?;
            fsync_dir(&dir)
        };
        write().map_err(io_err(StorageIOError::write_vote))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.inner.lock().unwrap().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Kept in memory only, for the status endpoint: after a restart openraft learns the commit index
        // from the leader again and re-applies from the log.
        if let Some(c) = committed {
            self.committed.fetch_max(c.index, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock().unwrap();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let records: Vec<Record> = entries.iter().cloned().map(Record::Entry).collect();
        match inner.write(&records) {
            Ok(()) => {
                for e in entries {
                    inner.entries.insert(e.log_id.index, e);
                }
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // The entries may be half on disk: stop here rather than go on with a log openraft
                // believes is durable. openraft shuts the node down on a storage error.
                let msg = e.to_string();
                callback.log_io_completed(Err(io::Error::new(e.kind(), msg)));
                Err(io_err(StorageIOError::write_logs)(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let mut inner = self.inner.lock().unwrap();
        inner
            .write(&[Record::Truncate(log_id.index)])
            .map_err(io_err(StorageIOError::write_logs))?;
        inner.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let mut inner = self.inner.lock().unwrap();
        inner
            .write(&[Record::Purge(log_id)])
            .map_err(io_err(StorageIOError::write_logs))?;
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.purged = Some(log_id);
        Ok(())
    }
}
