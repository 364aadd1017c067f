//! The write-ahead log's record format and its replay.
//!
//! A record is `[u32 len][u32 crc32(payload)][payload]` (little endian), the payload a bincode-encoded
//! [`Record`]. Replay stops at the first record that is short, has an impossible length, fails its CRC or does
//! not decode: everything from there on is a torn or corrupt tail that the caller truncates.

use serde::{Deserialize, Serialize};

use crate::raft::{Entry, HardState, Index, SnapshotMeta};

/// File name of the log inside the data directory.
pub const WAL_FILE: &str = "wal.log";
/// Where a compacted log is written before it is renamed over [`WAL_FILE`].
pub(crate) const WAL_TMP_FILE: &str = "wal.log.tmp";
/// Bytes before each payload: length and CRC.
pub(crate) const HEADER_LEN: usize = 8;
/// No record is ever this large; a length above it is garbage, not a record to wait for.
pub(crate) const MAX_RECORD_LEN: u32 = 256 << 20;
/// Entries are split into records of about this many payload bytes, far below [`MAX_RECORD_LEN`]. A batch up to
/// this size is one record, so it becomes durable all or nothing; Raft's batches are far smaller (1 MiB frames).
pub(crate) const ENTRIES_CHUNK_BYTES: usize = 16 << 20;

/// What a record says, as written. Must stay variant-for-variant identical to [`Record`]: the writer borrows
/// (no copy of the entries), the reader owns, and bincode encodes both the same way.
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    /// The log in this file starts right after this position (the snapshot it was compacted into).
    LogStart(SnapshotMeta),
    /// New term and vote.
    HardState(&'a HardState),
    /// Entries appended after the current last one.
    Entries(&'a [Entry]),
    /// One `persist` call: hard state, then truncation, then entries, applied together or not at all.
    Batch {
        /// New term and vote, if changed.
        hard_state: Option<&'a HardState>,
        /// Remove entries with index >= this first.
        truncate_from: Option<Index>,
        /// Then append these.
        entries: &'a [Entry],
    },
}

/// What a record says, as read back.
#[derive(Debug, Deserialize)]
pub(crate) enum Record {
    /// See [`RecordRef::LogStart`].
    LogStart(SnapshotMeta),
    /// See [`RecordRef::HardState`].
    HardState(HardState),
    /// See [`RecordRef::Entries`].
    Entries(Vec<Entry>),
    /// See [`RecordRef::Batch`].
    Batch {
        /// See [`RecordRef::Batch`].
        hard_state: Option<HardState>,
        /// See [`RecordRef::Batch`].
        truncate_from: Option<Index>,
        /// See [`RecordRef::Batch`].
        entries: Vec<Entry>,
    },
}

/// Appends one framed record to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, record: &RecordRef<'_>) -> Result<(), bincode::Error> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    bincode::serialize_into(&mut *buf, record)?;
    let payload = &buf[start + HEADER_LEN..];
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_RECORD_LEN)
        .ok_or_else(|| {
            Box::new(bincode::ErrorKind::Custom(format!(
                "WAL record of {} bytes exceeds the {MAX_RECORD_LEN}-byte limit",
                payload.len()
            )))
        })?;
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Appends records for `entries`, split so no record grows past [`ENTRIES_CHUNK_BYTES`] by much.
pub(crate) fn encode_entries(buf: &mut Vec<u8>, entries: &[Entry]) -> Result<(), bincode::Error> {
    let mut start = 0;
    while start < entries.len() {
        let end = start + chunk_len(&entries[start..]);
        encode(buf, &RecordRef::Entries(&entries[start..end]))?;
        start = end;
    }
    Ok(())
}

/// How many leading entries fit in one record (at least one).
pub(crate) fn chunk_len(entries: &[Entry]) -> usize {
    let mut n = 0;
    let mut bytes = 0;
    while n < entries.len() && (n == 0 || bytes + entries[n].size_hint() <= ENTRIES_CHUNK_BYTES) {
        bytes += entries[n].size_hint();
        n += 1;
    }
    n
}

/// Why replay stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTail {
    /// Offset of the first byte that is not part of a good record.
    pub offset: u64,
    /// What was wrong there.
    pub reason: String,
    /// Not a torn write, so cutting here would silently drop good data: either the record's bytes are
    /// intact (its CRC matches) but do not decode (a format mismatch or a bug), or the record is damaged
    /// but an intact record follows it (corruption in the middle of the log).
    pub intact: bool,
}

/// Splits `bytes` into decoded records, stopping at the first bad one.
pub(crate) fn decode_all(bytes: &[u8]) -> (Vec<Record>, Option<BadTail>) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let bad = |reason: String| {
            Some(BadTail {
                offset: pos as u64,
                reason,
                intact: false,
            })
        };
        let rest = &bytes[pos..];
        if rest.len() < HEADER_LEN {
            return (
                records,
                bad(format!(
                    "short record header ({} of {HEADER_LEN} bytes)",
                    rest.len()
                )),
            );
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        // A zero length is what a crash leaves when the file grew but its data never landed (zero fill).
        if len == 0 || len > MAX_RECORD_LEN {
            return (records, bad(format!("impossible record length {len}")));
        }
        let len = len as usize;
        if rest.len() - HEADER_LEN < len {
            return (
                records,
                bad(format!(
                    "short record: {len} payload bytes announced, {} present",
                    rest.len() - HEADER_LEN
                )),
            );
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        let actual = crc32fast::hash(payload);
        if actual != crc {
            let after = &rest[HEADER_LEN + len..];
            let reason = format!("CRC mismatch (stored {crc:#010x}, computed {actual:#010x})");
            // A torn write damages only the last record. A good record after the damaged one means the damage
            // is in the middle of the log: cutting there would drop entries this node has acknowledged.
            if next_record_is_good(after) {
                return (
                    records,
                    Some(BadTail {
                        offset: pos as u64,
                        reason: format!(
                            "{reason}, and an intact record follows it ({} bytes after the damage)",
                            after.len()
                        ),
                        intact: true,
                    }),
                );
            }
            return (records, bad(reason));
        }
        match bincode::deserialize::<Record>(payload) {
            Ok(r) => records.push(r),
            Err(e) => {
                let reason = format!("record with a valid CRC does not decode: {e}");
                return (
                    records,
                    Some(BadTail {
                        offset: pos as u64,
                        reason,
                        intact: true,
                    }),
                );
            }
        }
        pos += HEADER_LEN + len;
    }
    (records, None)
}

/// True when `bytes` starts with a whole record whose CRC matches.
fn next_record_is_good(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER_LEN {
        return false;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let len = len as usize;
    len != 0
        && len as u64 <= u64::from(MAX_RECORD_LEN)
        && bytes.len() - HEADER_LEN >= len
        && crc32fast::hash(&bytes[HEADER_LEN..HEADER_LEN + len]) == crc
}

/// The log as the WAL describes it: where it starts, the hard state, and the entries after the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogState {
    /// The log starts right after this position.
    pub base: SnapshotMeta,
    /// Latest term and vote.
    pub hard_state: HardState,
    /// Entries `base.last_index + 1 ..`, contiguous.
    pub entries: Vec<Entry>,
    /// True once any record was seen.
    pub any: bool,
}

impl LogState {
    /// Index of the last entry (the base when there are none).
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.base.last_index, |e| e.index)
    }

    /// Folds one record into the state. An error means a well-formed record that cannot follow the ones
    /// before it: not a torn write but a bug or tampering, so the caller refuses to start.
    pub fn apply(&mut self, record: Record) -> Result<(), String> {
        self.any = true;
        match record {
            Record::LogStart(meta) => {
                self.base = meta;
                self.entries.clear();
            }
            Record::HardState(hs) => self.hard_state = hs,
            Record::Batch {
                hard_state,
                truncate_from,
                entries,
            } => {
                if let Some(hs) = hard_state {
                    self.hard_state = hs;
                }
                if let Some(from) = truncate_from {
                    self.truncate(from)?;
                }
                self.apply(Record::Entries(entries))?;
            }
            Record::Entries(new) => {
                for (expected, e) in (self.last_index() + 1..).zip(&new) {
                    if e.index != expected {
                        return Err(format!("entry {} follows index {}", e.index, expected - 1));
                    }
                }
                self.entries.extend(new);
            }
        }
        Ok(())
    }

    fn truncate(&mut self, from: Index) -> Result<(), String> {
        if from <= self.base.last_index {
            return Err(format!(
                "truncation from index {from} reaches into the compacted prefix (log starts after {})",
                self.base.last_index
            ));
        }
        let keep = (from - self.base.last_index - 1) as usize;
        self.entries.truncate(keep);
        Ok(())
    }
}
