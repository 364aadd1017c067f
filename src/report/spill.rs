//! The lin-kv history of a report, kept on disk while the log streams past and checked one key at a time, so
//! `squall report` holds one key's operations in memory, never the whole history. Keys are independent
//! registers (P-compositionality, see [`crate::check::linear`]), so checking them apart finds what checking
//! them together finds.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek as _, Write as _};
use std::time::Instant;

use crate::check::{HistoryError, OpEvent, OpType, Report, Verdict, history, linear};

/// At most this many spill files (one per key; keys beyond share them by `key mod BUCKETS`), so a history
/// from a system with many keys does not open a file per key.
pub const BUCKETS: i64 = 64;

/// Why a spilled history could not be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpillError {
    /// The events do not form a history: the event's position in the whole history and what is wrong.
    Malformed(String),
    /// The history could not be kept on disk or read back (the temporary directory, in words).
    Io(String),
}

/// The history, one unlinked temporary file per key (bucket), each event bincode-encoded, plus the
/// process-level rules of a history that span keys, checked as it streams (see [`KeySpill::push`]).
#[derive(Default)]
pub struct KeySpill {
    files: BTreeMap<i64, (BufWriter<File>, usize)>,
    /// Per process: its pending invocation's (key, function, index), for the rules that span keys.
    pending: HashMap<u64, OpEvent>,
    position: usize,
    error: Option<SpillError>,
    /// Invocations (the checker's operations) and keys of the whole history, for the report.
    invocations: usize,
    keys: std::collections::BTreeSet<i64>,
}

impl KeySpill {
    /// Whether no event was taken.
    pub fn is_empty(&self) -> bool {
        self.position == 0
    }

    /// Takes one event. The rules of [`history::pair`] that one key's events alone cannot show (a process
    /// invoking again while pending on another key, a completion on another key than its invocation's) are
    /// checked here, with `pair`'s words; the rest when each key is paired.
    pub fn push(&mut self, e: &OpEvent) {
        let position = self.position;
        self.position += 1;
        if self.error.is_some() {
            return;
        }
        let fail =
            |message: String| SpillError::Malformed(HistoryError { position, message }.to_string());
        match e.kind {
            OpType::Invoke => {
                self.invocations += 1;
                self.keys.insert(e.key);
                if let Some(open) = self.pending.get(&e.process) {
                    self.error = Some(fail(format!(
                        "process {} invokes again while its {} invoked at event {} has not completed \
                         (a process whose outcome is unknown must continue under a new process id)",
                        e.process,
                        open.f().as_str(),
                        open.index
                    )));
                    return;
                }
                self.pending.insert(e.process, *e);
            }
            kind => match self.pending.remove(&e.process) {
                Some(open) if open.key != e.key => {
                    self.error = Some(fail(format!(
                        "process {} completes {} on key {} but invoked {} on key {} at event {}",
                        e.process,
                        e.f().as_str(),
                        e.key,
                        open.f().as_str(),
                        open.key,
                        open.index
                    )));
                    return;
                }
                Some(_) => {}
                None => {
                    self.error = Some(fail(format!(
                        "process {} completes a {} ({}) with no invocation pending",
                        e.process,
                        e.f().as_str(),
                        kind.as_str()
                    )));
                    return;
                }
            },
        }
        let bucket = e.key.rem_euclid(BUCKETS);
        let file = match self.files.entry(bucket) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => match spill_file() {
                Ok(f) => v.insert((BufWriter::new(f), 0)),
                Err(why) => {
                    self.error = Some(SpillError::Io(why));
                    return;
                }
            },
        };
        file.1 += 1;
        if let Err(why) = bincode::serialize_into(&mut file.0, &(position as u64, *e)) {
            self.error = Some(SpillError::Io(format!(
                "the history could not be kept on disk at event {position} ({why})"
            )));
        }
    }

    /// Pairs and checks each key's history on its own, lowest key first, within `deadline`; stops at the
    /// first key that is not linearizable (as [`linear::check`] reports the lowest such key).
    ///
    /// # Errors
    /// The history is malformed (the event's position in the whole history and what is wrong with it), or
    /// it could not be kept on disk or read back.
    pub fn check(self, deadline: Option<Instant>) -> Result<Report, SpillError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        // Counted over the whole history, as one check of every key at once counts them.
        let (operations, keys) = (self.invocations, self.keys.len());
        let mut explored = 0;
        let mut unknown = None;
        for (_, (out, len)) in self.files {
            let (positions, events) = read_back(out, len).map_err(SpillError::Io)?;
            let ops = history::pair(&events).map_err(|e| {
                SpillError::Malformed(
                    HistoryError {
                        position: positions[e.position] as usize,
                        message: e.message,
                    }
                    .to_string(),
                )
            })?;
            drop(events);
            drop(positions);
            let r = linear::check(&ops, deadline);
            explored += r.explored;
            match r.verdict {
                Verdict::Invalid(f) => {
                    return Ok(Report {
                        verdict: Verdict::Invalid(f),
                        operations,
                        keys,
                        explored,
                    });
                }
                Verdict::Unknown(why) => {
                    unknown.get_or_insert(why);
                }
                Verdict::Valid => {}
            }
        }
        Ok(Report {
            verdict: unknown.map_or(Verdict::Valid, Verdict::Unknown),
            operations,
            keys,
            explored,
        })
    }
}

/// One key's events, with their positions in the whole history, read back from its file into two vectors of
/// exactly `len` (the per-key check is the report's peak: no slack, no second copy).
fn read_back(out: BufWriter<File>, len: usize) -> Result<(Vec<u64>, Vec<OpEvent>), String> {
    let mut file = out
        .into_inner()
        .map_err(|e| format!("the history could not be written out ({})", e.error()))?;
    file.flush()
        .and_then(|()| file.rewind())
        .map_err(|e| format!("the history cannot be read back ({e})"))?;
    let mut input = BufReader::new(file);
    let mut positions = Vec::with_capacity(len);
    let mut events = Vec::with_capacity(len);
    for _ in 0..len {
        let (position, event): (u64, OpEvent) = bincode::deserialize_from(&mut input)
            .map_err(|e| format!("the history cannot be read back ({e})"))?;
        positions.push(position);
        events.push(event);
    }
    Ok((positions, events))
}

/// A new file in the temporary directory, already unlinked (gone however squall exits).
fn spill_file() -> Result<File, String> {
    let path = std::env::temp_dir().join(format!(
        "squall-report-history-{}-{:016x}.bin",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sim::{SimSpec, simulate};

    fn spill(events: &[OpEvent]) -> KeySpill {
        let mut s = KeySpill::default();
        for e in events {
            s.push(e);
        }
        s
    }

    #[test]
    fn checking_key_by_key_from_disk_finds_what_the_whole_check_finds() {
        for (seed, stale) in [(1, 0.0), (2, 0.02), (3, 0.0), (4, 0.05)] {
            let events = simulate(SimSpec {
                ops: 4_000,
                clients: 8,
                keys: 5,
                info: 0.03,
                stale_reads: stale,
                seed,
            });
            let whole = linear::check(&history::pair(&events).unwrap(), None);
            let keyed = spill(&events).check(None).unwrap();
            assert_eq!(
                (keyed.verdict.label(), keyed.operations, keyed.keys),
                (whole.verdict.label(), whole.operations, whole.keys),
                "seed {seed}"
            );
            if let (Verdict::Invalid(a), Verdict::Invalid(b)) = (&keyed.verdict, &whole.verdict) {
                assert_eq!(a.key, b.key, "seed {seed}: the lowest invalid key");
            }
        }
    }

    #[test]
    fn a_malformed_history_is_refused_with_the_event_s_place_in_the_whole_history() {
        let events = simulate(SimSpec {
            ops: 200,
            clients: 4,
            keys: 3,
            info: 0.0,
            stale_reads: 0.0,
            seed: 9,
        });
        for cut in [7usize, 50, 120] {
            // Drop one invocation: its completion has none pending, or a later one of its process is orphaned.
            let Some(i) = (cut..events.len()).find(|&i| events[i].kind == OpType::Invoke) else {
                continue;
            };
            let mut broken = events.clone();
            broken.remove(i);
            let want = history::pair(&broken).unwrap_err().to_string();
            let got = spill(&broken).check(None).unwrap_err();
            assert_eq!(got, SpillError::Malformed(want), "dropped event {i}");
        }
        // A completion whose written value differs from its invocation's: found when its key is paired.
        let mut broken = events.clone();
        let i = broken
            .iter()
            .position(|e| {
                e.kind == OpType::Ok && matches!(e.value, crate::check::OpValue::Write(_))
            })
            .expect("a write");
        broken[i].value = crate::check::OpValue::Write(-77);
        let want = history::pair(&broken).unwrap_err().to_string();
        assert_eq!(
            spill(&broken).check(None).unwrap_err(),
            SpillError::Malformed(want)
        );
    }
}
