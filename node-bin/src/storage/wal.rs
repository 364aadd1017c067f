//! The write-ahead log's record format and its replay.
//!
//! A record is a 32-byte header and a payload, little endian:
//!
//! ```text
//! magic u32 "SQWL" | len u32 | seq u64 | unit u64 | count u32 | crc u32 | payload (len bytes)
//! ```
//!
//! `payload` is a bincode-encoded [`Record`]; `crc` is CRC-32 over the first 28 header bytes and the payload.
//! `seq` numbers records one by one and keeps counting across compactions (a rewritten file continues the
//! sequence), so a record's place in the history is known from the record alone. Each append (one
//! `Storage::persist`, fsynced once) is one *write unit*: `unit` is the `seq` of its first record and `count`
//! how many records it has. A unit counts only when all its records are intact.
//!
//! Replay reads records in order. At the first record that is short, damaged (any header field or payload: the
//! CRC covers both) or out of sequence, it scans the rest of the file byte by byte for any intact record. The
//! damage is a torn final write if no intact record of a *later* unit follows: every later unit was appended
//! only after the damaged one was fsynced and acknowledged, so its presence proves the damage hit data that was
//! durable, and replay refuses instead of cutting. A torn write of a multi-record unit, whose later records
//! reached the disk and an earlier one did not, is therefore still a torn tail: the whole unit is cut, none of
//! it having been acknowledged. An intact record that does not decode, or a gap in the sequence between intact
//! records, is refused too.
//!
//! The file may be longer than its log: the storage preallocates it in steps (module `storage`), and the space
//! not yet written reads as zeros. Zeros where a unit would start end the log; they are not a tail to cut.
//! A damaged last record in such a file is a torn write when a sector of it never landed (its bytes read zero,
//! see `landed_in_part`) and zeros follow it; otherwise it counts as a damaged complete record, as in a file
//! that ends where its last write does.

use serde::{Deserialize, Serialize};

use crate::raft::{Entry, HardState, Index, SnapshotMeta};

/// File name of the log inside the data directory.
pub const WAL_FILE: &str = "wal.log";
/// Where a compacted log is written before it is renamed over [`WAL_FILE`].
pub(crate) const WAL_TMP_FILE: &str = "wal.log.tmp";
/// First four bytes of every record.
pub(crate) const MAGIC: [u8; 4] = *b"SQWL";
/// Bytes before each payload.
pub(crate) const HEADER_LEN: usize = 32;
/// Bytes of the header the CRC covers (all but the CRC itself).
const CRC_COVERED: usize = 28;
/// No record is ever this large; a length above it is garbage, not a record to wait for.
pub(crate) const MAX_RECORD_LEN: u32 = 256 << 20;
/// Entries are split into records of about this many payload bytes, far below [`MAX_RECORD_LEN`]. All records of
/// one append form one write unit, so a batch is durable all or nothing whatever its size.
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

/// Builds one write unit in a buffer: records are appended with room for their headers, which are filled in
/// by [`Unit::finish`] once the number of records is known.
pub(crate) struct Unit<'b> {
    buf: &'b mut Vec<u8>,
    first_seq: u64,
    starts: Vec<usize>,
}

impl<'b> Unit<'b> {
    /// A unit whose first record gets sequence number `first_seq`, appended to `buf`.
    pub(crate) fn new(buf: &'b mut Vec<u8>, first_seq: u64) -> Unit<'b> {
        Unit {
            buf,
            first_seq,
            starts: Vec::new(),
        }
    }

    /// Appends one record.
    pub(crate) fn push(&mut self, record: &RecordRef<'_>) -> Result<(), bincode::Error> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER_LEN]);
        bincode::serialize_into(&mut *self.buf, record)?;
        let len = self.buf.len() - start - HEADER_LEN;
        if u32::try_from(len).ok().is_none_or(|l| l > MAX_RECORD_LEN) {
            return Err(Box::new(bincode::ErrorKind::Custom(format!(
                "WAL record of {len} bytes exceeds the {MAX_RECORD_LEN}-byte limit"
            ))));
        }
        self.starts.push(start);
        Ok(())
    }

    /// Appends records for `entries`, split so no record grows past [`ENTRIES_CHUNK_BYTES`] by much.
    pub(crate) fn push_entries(&mut self, entries: &[Entry]) -> Result<(), bincode::Error> {
        let mut start = 0;
        while start < entries.len() {
            let end = start + chunk_len(&entries[start..]);
            self.push(&RecordRef::Entries(&entries[start..end]))?;
            start = end;
        }
        Ok(())
    }

    /// Fills in the headers; returns the sequence number the next unit starts at.
    pub(crate) fn finish(self) -> u64 {
        let count = self.starts.len() as u32;
        let ends: Vec<usize> = self
            .starts
            .iter()
            .skip(1)
            .copied()
            .chain([self.buf.len()])
            .collect();
        for (i, (&start, &end)) in self.starts.iter().zip(&ends).enumerate() {
            let header = Header {
                len: (end - start - HEADER_LEN) as u32,
                seq: self.first_seq + i as u64,
                unit: self.first_seq,
                count,
            };
            header.write(&mut self.buf[start..end]);
        }
        self.first_seq + u64::from(count)
    }
}

/// A record header, as parsed (the magic and CRC checked separately).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Payload bytes.
    pub len: u32,
    /// This record's sequence number.
    pub seq: u64,
    /// Sequence number of the first record of its write unit.
    pub unit: u64,
    /// Records in its write unit.
    pub count: u32,
}

impl Header {
    /// Writes the header (with its CRC over `record[HEADER_LEN..]`) into the first bytes of `record`.
    fn write(&self, record: &mut [u8]) {
        record[0..4].copy_from_slice(&MAGIC);
        record[4..8].copy_from_slice(&self.len.to_le_bytes());
        record[8..16].copy_from_slice(&self.seq.to_le_bytes());
        record[16..24].copy_from_slice(&self.unit.to_le_bytes());
        record[24..28].copy_from_slice(&self.count.to_le_bytes());
        let crc = record_crc(&record[..CRC_COVERED], &record[HEADER_LEN..]);
        record[28..32].copy_from_slice(&crc.to_le_bytes());
    }

    /// The sequence number of the last record of its unit.
    fn unit_last(&self) -> u64 {
        self.unit + u64::from(self.count) - 1
    }
}

fn record_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(payload);
    h.finalize()
}

/// Why the bytes at the start of `bytes` are not an intact record.
enum Parse<'a> {
    /// An intact record: its header and payload.
    Intact(Header, &'a [u8]),
    /// Not one; why.
    Bad(String),
    /// Not one because the bytes end before the record does (its header, or the payload it announces): what
    /// a write cut short by a crash leaves.
    Short(String),
}

/// Parses the record at the start of `bytes`.
fn parse(bytes: &[u8]) -> Parse<'_> {
    if bytes.len() < HEADER_LEN {
        return Parse::Short(format!(
            "short record header ({} of {HEADER_LEN} bytes)",
            bytes.len()
        ));
    }
    if bytes[0..4] != MAGIC {
        return Parse::Bad(format!("no record marker (found {:02x?})", &bytes[0..4]));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let header = Header {
        len: u32_at(4),
        seq: u64_at(8),
        unit: u64_at(16),
        count: u32_at(24),
    };
    let crc = u32_at(28);
    if header.len > MAX_RECORD_LEN {
        return Parse::Bad(format!("impossible record length {}", header.len));
    }
    let len = header.len as usize;
    if bytes.len() - HEADER_LEN < len {
        return Parse::Short(format!(
            "short record: {len} payload bytes announced, {} present",
            bytes.len() - HEADER_LEN
        ));
    }
    let payload = &bytes[HEADER_LEN..HEADER_LEN + len];
    let actual = record_crc(&bytes[..CRC_COVERED], payload);
    if actual != crc {
        return Parse::Bad(format!(
            "CRC mismatch (stored {crc:#010x}, computed {actual:#010x})"
        ));
    }
    if header.count == 0 || header.seq < header.unit || header.seq > header.unit_last() {
        return Parse::Bad(format!(
            "record {} claims to be in a unit of {} records starting at {}",
            header.seq, header.count, header.unit
        ));
    }
    Parse::Intact(header, payload)
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
    /// Offset of the first byte that is not part of a complete write unit: where to cut a torn tail.
    pub offset: u64,
    /// What was wrong there.
    pub reason: String,
    /// Not a torn write, so cutting here would silently drop acknowledged data: a record of a later write
    /// unit is intact after the damage, or an intact record does not decode or breaks the sequence.
    pub intact: bool,
    /// The damage looks like a write cut short, never completed and so never acknowledged: the file ends
    /// inside the damaged record (or inside its write unit), or only zero bytes follow. False when a complete
    /// record is damaged (a CRC mismatch, a bad marker): that may be a record that was synced and acknowledged
    /// and then damaged, which a checksum cannot tell from a torn write (Alagappan et al., FAST '18).
    pub torn: bool,
}

/// What replay found in a WAL file.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The records of complete write units, in order.
    pub records: Vec<Record>,
    /// Where and why replay stopped early, if it did.
    pub bad: Option<BadTail>,
    /// The sequence number the next record appended after the good part gets.
    pub next_seq: u64,
    /// Offset where the log ends when nothing is to be cut (`bad` is `None`): the file's length, or where
    /// the zero-filled preallocated tail starts, which the next append overwrites.
    pub end: u64,
}

/// Splits `bytes` into the records of complete write units, stopping at the first damage; tells a torn final
/// write (cut it) from damage followed by later durable data (refuse). See the module docs.
pub(crate) fn decode_all(bytes: &[u8]) -> Decoded {
    // Records of the unit being read, not yet known complete.
    let mut pending: Vec<Record> = Vec::new();
    let mut records = Vec::new();
    // Offset where the pending unit starts, and the sequence number after the last good record.
    let mut unit_offset = 0u64;
    let mut next_seq: Option<u64> = None;
    let mut unit: Option<Header> = None;
    let mut pos = 0usize;
    let stop = |records, offset: u64, reason: String, intact: bool, next: Option<u64>| Decoded {
        records,
        bad: Some(BadTail {
            offset,
            reason,
            intact,
            torn: false,
        }),
        next_seq: next.unwrap_or(1),
        end: offset,
    };
    while pos < bytes.len() {
        let (header, payload) = match parse(&bytes[pos..]) {
            Parse::Intact(h, p) if next_seq.is_none_or(|n| h.seq == n) => (h, p),
            Parse::Intact(h, _) if next_seq.is_some_and(|n| h.seq > n) => {
                let expected = next_seq.expect("checked");
                return stop(
                    records,
                    pos as u64,
                    format!(
                        "records {expected}..{} are missing before an intact record {} (damage in the middle \
                         of the log)",
                        h.seq - 1,
                        h.seq
                    ),
                    true,
                    next_seq,
                );
            }
            other => {
                let zeros = bytes[pos..].iter().all(|&b| b == 0);
                let (reason, short) = match other {
                    Parse::Bad(r) => (r, false),
                    Parse::Short(r) => (r, true),
                    Parse::Intact(h, _) => (
                        format!("stale record {} where {next_seq:?} was due", h.seq),
                        false,
                    ),
                };
                // The damaged record belongs to the pending unit if that is not complete, else to the next.
                let (damaged_unit, cut_at) = match unit {
                    Some(h) if next_seq.is_some_and(|n| n <= h.unit_last()) => {
                        (h.unit, unit_offset)
                    }
                    _ => (next_seq.unwrap_or(0), pos as u64),
                };
                let cut_next = if cut_at == pos as u64 {
                    next_seq
                } else {
                    Some(damaged_unit)
                };
                if zeros && cut_at == pos as u64 {
                    // Only zeros after a complete unit: the preallocated space the next append overwrites
                    // (module `storage`), or a size extension whose data never landed. The log ends here.
                    return Decoded {
                        records,
                        bad: None,
                        next_seq: next_seq.unwrap_or(1),
                        end: pos as u64,
                    };
                }
                if let Some((at, later)) = later_unit_after(bytes, pos + 1, damaged_unit) {
                    return stop(
                        records,
                        pos as u64,
                        format!(
                            "{reason}, and an intact record of a later write (record {}, at offset {at}) \
                             follows it",
                            later.seq
                        ),
                        true,
                        cut_next,
                    );
                }
                let mut d = stop(records, cut_at, reason, false, cut_next);
                if let Some(b) = d.bad.as_mut() {
                    b.torn = short || zeros || landed_in_part(bytes, pos);
                }
                return d;
            }
        };
        let expected_unit = match unit {
            Some(u) if u.seq < u.unit_last() => u.unit,
            _ => header.seq,
        };
        if header.unit != expected_unit {
            return stop(
                records,
                pos as u64,
                format!(
                    "record {} belongs to the write unit starting at {}, but the unit starting at {expected_unit} \
                     is not complete",
                    header.seq, header.unit
                ),
                true,
                next_seq,
            );
        }
        match bincode::deserialize::<Record>(payload) {
            Ok(r) => pending.push(r),
            Err(e) => {
                return stop(
                    records,
                    pos as u64,
                    format!(
                        "record {} with a valid CRC does not decode: {e}",
                        header.seq
                    ),
                    true,
                    next_seq,
                );
            }
        }
        if header.seq == header.unit {
            unit_offset = pos as u64;
        }
        unit = Some(header);
        next_seq = Some(header.seq + 1);
        pos += HEADER_LEN + header.len as usize;
        if header.seq == header.unit_last() {
            records.append(&mut pending);
        }
    }
    if let Some(h) = unit
        && next_seq.is_some_and(|n| n <= h.unit_last())
    {
        // The file ends between two records of one unit: the rest of that write never landed.
        let mut d = stop(
            records,
            unit_offset,
            format!(
                "write unit of {} records starting at record {} ends after record {}",
                h.count,
                h.unit,
                next_seq.unwrap_or(1) - 1
            ),
            false,
            Some(h.unit),
        );
        if let Some(b) = d.bad.as_mut() {
            b.torn = true;
        }
        return d;
    }
    Decoded {
        records,
        bad: None,
        next_seq: next_seq.unwrap_or(1),
        end: bytes.len() as u64,
    }
}

/// Bytes of the unit a torn write is assumed to land in whole or not at all (a disk sector; ext4 converts
/// preallocated space to written in 4 KiB blocks, a multiple of it).
pub(crate) const SECTOR: usize = 512;

/// Whether the damaged record at `pos` looks like the last write, cut short inside preallocated space: zeros
/// follow everything written from `pos` on (its announced end, and the last non-zero byte of the file), and a
/// sector's worth of it never landed: the stretch from `pos` to the next sector boundary, a whole sector, or
/// the stretch from a sector boundary to the announced end is all zeros (etcd's WAL tells a torn write the same
/// way, by a zero-filled sector in the record). A file that ends where its last write does (no preallocated
/// space after it) never qualifies, so there the rules of the module docs stand as they were.
fn landed_in_part(bytes: &[u8], pos: usize) -> bool {
    let written_to = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let announced = bytes
        .get(pos + 4..pos + 8)
        .map(|l| u32::from_le_bytes(l.try_into().expect("4 bytes")))
        .filter(|&l| l <= MAX_RECORD_LEN)
        .map_or(0, |l| pos + HEADER_LEN + l as usize);
    let span_end = written_to.max(announced);
    if span_end >= bytes.len() || written_to <= pos {
        return false;
    }
    let mut start = pos;
    while start < span_end {
        let end = ((start / SECTOR + 1) * SECTOR).min(span_end);
        if bytes[start..end].iter().all(|&b| b == 0) {
            return true;
        }
        start = end;
    }
    false
}

/// The first intact record at or after `from` that belongs to a write unit after `unit` (its offset and
/// header), scanning byte by byte past damage.
fn later_unit_after(bytes: &[u8], from: usize, unit: u64) -> Option<(usize, Header)> {
    let mut at = from;
    while at + HEADER_LEN <= bytes.len() {
        at += bytes[at..].windows(4).position(|w| w == MAGIC)?;
        if let Parse::Intact(h, _) = parse(&bytes[at..])
            && h.unit > unit
        {
            return Some((at, h));
        }
        at += 1;
    }
    None
}

/// True when `bytes` starts with a record of the first WAL format (`[u32 len][u32 crc][payload]`, no marker):
/// a file this build must not mistake for a torn tail and cut.
pub(crate) fn is_older_format(bytes: &[u8]) -> bool {
    if bytes.len() < 8 || bytes[0..4] == MAGIC {
        return false;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    len > 0 && bytes.len() - 8 >= len && crc32fast::hash(&bytes[8..8 + len]) == crc
}

/// Frames `payload` as one record of a unit, for tests that need records the writer would not produce.
#[cfg(test)]
pub(crate) fn frame_raw(seq: u64, unit: u64, count: u32, payload: &[u8]) -> Vec<u8> {
    let mut rec = vec![0; HEADER_LEN];
    rec.extend_from_slice(payload);
    Header {
        len: payload.len() as u32,
        seq,
        unit,
        count,
    }
    .write(&mut rec);
    rec
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
