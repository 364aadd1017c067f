//! The lin-kv workload, as Jepsen's and Maelstrom's: [`CLIENTS`] clients run reads, writes and
//! compare-and-swaps on [`KEYS`] integer keys, writes using values unique per key, and every operation is
//! recorded as an invocation and a completion (`ok`, `fail`: definitely did not happen, `info`: outcome
//! unknown). A client whose operation ended `info` continues as a new process, with a new client identity.
//! The history goes out as [`Event::Op`] events (so into the event log) and is kept for the check on disk, not
//! in memory ([`HistorySpill`]): an hours-long session's history would otherwise grow the orchestrator
//! without bound (about 25 MB an hour at 50 operations a second). The check reads all of it back.
//!
//! This file holds the history and what the clients share; the clients are in [`super::clients`], the check
//! in [`super::verify`].

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng as _;

use crate::check::{OpEvent, OpType, OpValue};
use crate::state::Event;

/// Concurrent clients (processes at the start).
pub const CLIENTS: usize = 8;
/// Keys, numbered from 0.
pub const KEYS: usize = 5;
/// How long the live check may search before its verdict is `unknown`.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(10);

struct Inner {
    /// Every event so far, in index order, on disk.
    history: HistorySpill,
    next_process: u64,
    /// The last value each key was seen to hold (by a read, a write or a cas that completed `ok`).
    seen: [Option<i64>; KEYS],
    /// The last value handed to a write or cas on each key (values are unique per key).
    issued: [i64; KEYS],
}

/// The history so far and what the clients share.
pub(super) struct LinKv {
    inner: Mutex<Inner>,
    /// Tells this session's keys apart from any a reused cluster directory holds already.
    tag: u32,
}

impl LinKv {
    /// The lin-kv state of a session whose keys carry `tag` (see [`super::workload::new_session_tag`]).
    pub(super) fn new(tag: u16) -> Self {
        LinKv {
            inner: Mutex::new(Inner {
                history: HistorySpill::default(),
                next_process: CLIENTS as u64,
                seen: [None; KEYS],
                issued: [0; KEYS],
            }),
            tag: u32::from(tag),
        }
    }

    /// The key's name in the store: `lin-TAG-K`.
    pub(super) fn store_key(&self, key: i64) -> String {
        format!("lin-{:04x}-{key}", self.tag)
    }

    /// The history recorded so far, read back whole (the checker needs all of it); an error when the disk
    /// failed it, never a shortened history.
    pub(super) fn events(&self) -> Result<Vec<OpEvent>, String> {
        self.inner.lock().unwrap().history.read_all()
    }

    /// Appends one event, stamped with the session time `at_ns`, and sends it out with `emit`; under one
    /// lock, so index order is time order.
    pub(super) fn record(
        &self,
        at_ns: impl FnOnce() -> u64,
        emit: impl FnOnce(Event),
        kind: OpType,
        process: u64,
        key: i64,
        value: OpValue,
    ) {
        let mut g = self.inner.lock().unwrap();
        let event = OpEvent {
            index: g.history.len(),
            kind,
            process,
            time: at_ns(),
            key,
            value,
        };
        if kind == OpType::Ok {
            let k = key as usize;
            match value {
                OpValue::Read(v) => g.seen[k] = v,
                OpValue::Write(v) | OpValue::Cas(_, v) => g.seen[k] = Some(v),
            }
        }
        g.history.push(&event);
        emit(Event::Op { op: event });
    }

    /// A new operation: half reads, a quarter writes of a fresh value, a quarter cas from the value last
    /// seen (or an earlier one) to a fresh value.
    pub(super) fn next_op(&self) -> (i64, OpValue) {
        let mut rng = rand::rng();
        let key = rng.random_range(0..KEYS);
        let mut g = self.inner.lock().unwrap();
        let value = match rng.random_range(0..4) {
            0 | 1 => OpValue::Read(None),
            2 => {
                g.issued[key] += 1;
                OpValue::Write(g.issued[key])
            }
            _ => {
                let from = match g.seen[key] {
                    Some(v) if rng.random_bool(0.8) => v,
                    _ => rng.random_range(0..=g.issued[key]),
                };
                g.issued[key] += 1;
                OpValue::Cas(from, g.issued[key])
            }
        };
        (key as i64, value)
    }

    pub(super) fn new_process(&self) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.next_process += 1;
        g.next_process - 1
    }
}

/// The lin-kv history kept on disk: an unlinked file in the temporary directory (gone when squall exits,
/// however it exits), each event bincode-encoded (about 50 bytes). Only the count and a write buffer stay in
/// memory. A write that fails is remembered and makes every later read an error, so a check never judges
/// a history with a hole in it.
pub(super) struct HistorySpill {
    out: Option<std::io::BufWriter<std::fs::File>>,
    len: u64,
    failed: Option<String>,
}

impl Default for HistorySpill {
    fn default() -> Self {
        let (out, failed) = match spill_file() {
            Ok(f) => (Some(std::io::BufWriter::new(f)), None),
            Err(e) => (None, Some(e)),
        };
        HistorySpill {
            out,
            len: 0,
            failed,
        }
    }
}

/// A new file in the temporary directory, already unlinked.
fn spill_file() -> Result<std::fs::File, String> {
    let path = std::env::temp_dir().join(format!(
        "squall-history-{}-{:016x}.bin",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot keep the history in {}: {e}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

impl HistorySpill {
    /// Events recorded so far.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one event.
    pub(super) fn push(&mut self, event: &OpEvent) {
        self.len += 1;
        if self.failed.is_some() {
            return;
        }
        if let Some(out) = &mut self.out
            && let Err(e) = bincode::serialize_into(out, event)
        {
            self.failed = Some(format!(
                "the history could not be kept on disk after {} events ({e})",
                self.len - 1
            ));
        }
    }

    /// Every event recorded, in order.
    pub(super) fn read_all(&mut self) -> Result<Vec<OpEvent>, String> {
        use std::io::{Seek as _, Write as _};
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(out) = &mut self.out else {
            return Ok(Vec::new());
        };
        out.flush()
            .map_err(|e| format!("the history could not be written out ({e})"))?;
        let mut file = out
            .get_ref()
            .try_clone()
            .map_err(|e| format!("the history cannot be read back ({e})"))?;
        // The clone shares the write position: read from the start, then put it back at the end.
        let read = (|| {
            file.rewind()?;
            let mut input = std::io::BufReader::new(&file);
            let mut events = Vec::with_capacity(self.len as usize);
            for _ in 0..self.len {
                events.push(bincode::deserialize_from(&mut input).map_err(std::io::Error::other)?);
            }
            Ok::<_, std::io::Error>(events)
        })();
        let back = file.seek(std::io::SeekFrom::End(0));
        let events = read.map_err(|e| format!("the history cannot be read back ({e})"))?;
        back.map_err(|e| format!("the history cannot be read back ({e})"))?;
        Ok(events)
    }
}

#[cfg(test)]
mod spill_tests {
    use super::*;
    use crate::check::sim::{SimSpec, simulate};

    #[test]
    fn the_history_on_disk_reads_back_whole_and_in_order_between_appends() {
        let history = simulate(SimSpec {
            ops: 3_000,
            clients: 8,
            keys: 5,
            info: 0.05,
            stale_reads: 0.0,
            seed: 11,
        });
        let mut spill = HistorySpill::default();
        assert_eq!(spill.read_all().unwrap(), vec![]);
        for (i, e) in history.iter().enumerate() {
            spill.push(e);
            if i % 1_000 == 7 {
                // A check in the middle of the session, then more appends after it.
                assert_eq!(spill.read_all().unwrap(), history[..=i]);
            }
        }
        assert_eq!(spill.len(), history.len() as u64);
        assert_eq!(spill.read_all().unwrap(), history);
    }
}
