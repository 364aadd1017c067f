//! Tests of the storage against real files in temporary directories, with real fsyncs.

use std::fs;
use std::path::Path;

use super::*;
use crate::raft::Payload;

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(format!("cmd {index}@{term}").into_bytes()),
    }
}

fn entries(range: std::ops::RangeInclusive<Index>, term: Term) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn hs(term: Term, vote: Option<u64>) -> HardState {
    HardState { term, vote }
}

fn snap(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
        },
        data: format!("state at {last_index}").into_bytes(),
        config: None,
    }
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join(WAL_FILE)
}

fn reopen(dir: &Path) -> Recovered {
    Storage::open(dir).expect("reopen").1
}

/// A storage opened on a fresh temporary directory (the directory first, so the storage is dropped first).
fn opened() -> (tempfile::TempDir, Storage) {
    let tmp = tempfile::tempdir().unwrap();
    let (st, _) = Storage::open(tmp.path()).unwrap();
    (tmp, st)
}

/// A closed storage that held entries 1..=5 of term 2 (with `hard` state) and compacted them into a snapshot
/// at 3.
fn compacted_at_3_of_5(hard: Option<&HardState>) -> tempfile::TempDir {
    let (tmp, mut st) = opened();
    st.persist(hard, None, &entries(1..=5, 2)).unwrap();
    st.save_snapshot(&snap(3, 2)).unwrap();
    drop(st);
    tmp
}

#[test]
fn new_directory_is_created_and_reported_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/node1");
    let (st, rec) = Storage::open(&dir).unwrap();
    assert!(rec.empty);
    assert_eq!(
        rec,
        Recovered {
            empty: true,
            lost_data: Some(
                "the data directory was empty and the node was started --initial-state existing (a member \
                     whose data was lost)"
                    .into()
            ),
            ..Recovered::default()
        }
    );
    assert_eq!(st.dir(), dir);
    assert!(dir.join(LOCK_FILE_NAME).exists());
    assert!(st.lost_data() && dir.join(LOST_DATA_FILE).exists());
    drop(st);
    // Still empty: opening wrote no records.
    assert!(reopen(&dir).empty);
}

#[test]
fn the_lost_data_marker_outlives_restarts_until_recovery_finishes() {
    let (tmp, mut st) = opened();
    // The node learns a term and entries while recovering, then restarts before it finished.
    st.persist(Some(&hs(4, None)), None, &entries(1..=2, 4))
        .unwrap();
    drop(st);
    let (mut st, rec) = Storage::open(tmp.path()).unwrap();
    assert!(!rec.empty);
    let cause = rec.lost_data.expect("the restart forgot the loss");
    assert!(cause.contains("did not finish recovering"), "{cause}");
    assert!(cause.contains("was empty"), "{cause}");
    st.finish_recovery().unwrap();
    assert!(!st.lost_data());
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.lost_data, None);
    assert!(!tmp.path().join(LOST_DATA_FILE).exists());
}

#[test]
fn a_damaged_complete_last_record_marks_lost_data_and_a_torn_one_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, _, third) = three_batches(tmp.path());
    Storage::open(tmp.path())
        .unwrap()
        .0
        .finish_recovery()
        .unwrap();
    // Torn: the file ends inside the last record.
    fs::write(wal_path(tmp.path()), &bytes[..bytes.len() - 5]).unwrap();
    let rec = reopen(tmp.path());
    assert!(rec.truncated_tail_bytes > 0);
    assert_eq!(rec.lost_data, None, "a torn write was never acknowledged");
    // Damaged: the last record is whole but one bit differs; it may have been synced and acknowledged.
    let mut flipped = bytes.clone();
    flipped[third as usize + wal::HEADER_LEN + 3] ^= 0x10;
    fs::write(wal_path(tmp.path()), &flipped).unwrap();
    let rec = reopen(tmp.path());
    assert_eq!(rec.entries, entries(1..=6, 1));
    let cause = rec
        .lost_data
        .expect("a damaged acknowledged record was cut as a torn write");
    assert!(cause.contains("may have been acknowledged"), "{cause}");
    assert!(tmp.path().join(LOST_DATA_FILE).exists());
}

#[test]
fn an_emptied_wal_beside_a_snapshot_is_refused_like_a_deleted_one() {
    let tmp = compacted_at_3_of_5(Some(&hs(2, Some(1))));
    fs::write(wal_path(tmp.path()), b"").unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("wal.log is corrupt: empty while snapshot.bin exists"),
                "{msg}"
            );
            assert!(msg.contains("could vote twice"), "{msg}");
            assert_eq!(
                msg.matches("vote twice").count(),
                1,
                "cause said twice: {msg}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn hard_state_entries_and_truncation_round_trip() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(1, Some(2))), None, &entries(1..=5, 1))
        .unwrap();
    st.persist(None, None, &entries(6..=7, 1)).unwrap();
    // A new leader overwrites the uncommitted tail from 4 on.
    st.persist(Some(&hs(2, None)), Some(4), &entries(4..=5, 2))
        .unwrap();
    assert_eq!(st.last_index(), 5);
    drop(st);

    let rec = reopen(tmp.path());
    assert!(!rec.empty);
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(rec.hard_state, hs(2, None));
    assert!(rec.snapshot.is_none());
    let mut want = entries(1..=3, 1);
    want.extend(entries(4..=5, 2));
    assert_eq!(rec.entries, want);
}

#[test]
fn truncation_alone_and_past_the_end() {
    let (tmp, mut st) = opened();
    st.persist(None, None, &entries(1..=5, 1)).unwrap();
    st.persist(None, Some(3), &[]).unwrap();
    assert_eq!(st.last_index(), 2);
    // Truncating past the end changes nothing and writes nothing.
    let len = st.wal_bytes();
    st.persist(None, Some(10), &[]).unwrap();
    assert_eq!(st.wal_bytes(), len);
    drop(st);
    assert_eq!(reopen(tmp.path()).entries, entries(1..=2, 1));
}

#[test]
fn entries_already_stored_are_skipped() {
    let (tmp, mut st) = opened();
    st.persist(None, None, &entries(1..=5, 1)).unwrap();
    let len = st.wal_bytes();
    st.persist(None, None, &entries(3..=5, 1)).unwrap();
    assert_eq!(st.wal_bytes(), len, "a repeat writes nothing");
    st.persist(None, None, &entries(4..=7, 1)).unwrap();
    st.save_snapshot(&snap(6, 1)).unwrap();
    // Entries inside the snapshot are committed: skipped too.
    st.persist(None, None, &entries(5..=8, 1)).unwrap();
    drop(st);
    assert_eq!(reopen(tmp.path()).entries, entries(7..=8, 1));
}

#[test]
fn nothing_to_persist_writes_nothing() {
    let (tmp, mut st) = opened();
    st.persist(None, None, &[]).unwrap();
    assert_eq!(st.wal_bytes(), 0);
    st.persist(Some(&hs(3, Some(1))), None, &[]).unwrap();
    let len = st.wal_bytes();
    let file = fs::read(wal_path(tmp.path())).unwrap();
    // The same hard state again is not a change.
    st.persist(Some(&hs(3, Some(1))), None, &[]).unwrap();
    assert_eq!(st.wal_bytes(), len);
    assert_eq!(fs::read(wal_path(tmp.path())).unwrap(), file);
}

#[test]
fn inconsistent_writes_are_refused_and_write_nothing() {
    let (tmp, mut st) = opened();
    st.persist(None, None, &entries(1..=5, 2)).unwrap();
    let len = st.wal_bytes();
    let refused = |r: Result<(), StorageError>| match r {
        Err(StorageError::InvalidWrite { detail, .. }) => detail,
        other => panic!("expected InvalidWrite, got {other:?}"),
    };
    // A gap.
    let d = refused(st.persist(None, None, &entries(7..=8, 2)));
    assert!(d.contains("entry 7"), "{d}");
    // A different entry at a stored index without truncation.
    let d = refused(st.persist(None, None, &entries(5..=6, 3)));
    assert!(d.contains("truncate_from"), "{d}");
    // Not contiguous inside the batch.
    refused(st.persist(None, None, &[entry(6, 2), entry(8, 2)]));
    // Term going down.
    refused(st.persist(None, None, &entries(6..=6, 1)));
    // A term going back, or a second vote in a term.
    st.persist(Some(&hs(4, Some(2))), None, &[]).unwrap();
    refused(st.persist(Some(&hs(3, None)), None, &[]));
    let d = refused(st.persist(Some(&hs(4, Some(3))), None, &[]));
    assert!(d.contains("vote"), "{d}");
    refused(st.persist(Some(&hs(4, None)), None, &[]));
    // Truncation into the snapshot.
    st.save_snapshot(&snap(3, 2)).unwrap();
    let len_after_snapshot = st.wal_bytes();
    assert_ne!(len_after_snapshot, len);
    let d = refused(st.persist(None, Some(3), &[]));
    assert!(d.contains("snapshot"), "{d}");
    // An older snapshot.
    refused(st.save_snapshot(&snap(2, 2)));
    refused(st.install_snapshot(&snap(2, 2), &[]));
    // A snapshot whose term contradicts the log.
    refused(st.save_snapshot(&snap(4, 9)));
    assert_eq!(st.wal_bytes(), len_after_snapshot);
    // The storage is still usable after refusals.
    st.persist(None, None, &entries(6..=6, 2)).unwrap();
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.entries, entries(4..=6, 2));
}

/// The log's bytes in `st`'s WAL, without the preallocated space after them: a file that ends where its last
/// write does, as on a filesystem without `fallocate`.
fn log_bytes(st: &Storage) -> Vec<u8> {
    let mut bytes = fs::read(wal_path(st.dir())).unwrap();
    assert!(
        bytes[st.wal_bytes() as usize..].iter().all(|&b| b == 0),
        "only zeros follow the log"
    );
    bytes.truncate(st.wal_bytes() as usize);
    bytes
}

/// Writes three batches and returns the WAL bytes (the log, see [`log_bytes`]) with the offsets where the last
/// two records start.
fn three_batches(dir: &Path) -> (Vec<u8>, u64, u64) {
    let (mut st, _) = Storage::open(dir).unwrap();
    st.persist(Some(&hs(1, Some(1))), None, &entries(1..=3, 1))
        .unwrap();
    let second = st.wal_bytes();
    st.persist(None, None, &entries(4..=6, 1)).unwrap();
    let third = st.wal_bytes();
    st.persist(None, None, &entries(7..=9, 1)).unwrap();
    let bytes = log_bytes(&st);
    drop(st);
    (bytes, second, third)
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record_is_cut() {
    let src = tempfile::tempdir().unwrap();
    let (bytes, _, last_start) = three_batches(src.path());
    for cut_at in last_start..bytes.len() as u64 {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(wal_path(tmp.path()), &bytes[..cut_at as usize]).unwrap();
        let (mut st, rec) = Storage::open(tmp.path()).unwrap();
        assert_eq!(rec.entries, entries(1..=6, 1), "cut at {cut_at}");
        assert_eq!(rec.hard_state, hs(1, Some(1)));
        assert_eq!(
            rec.truncated_tail_bytes,
            cut_at - last_start,
            "cut at {cut_at}"
        );
        assert_eq!(
            fs::metadata(wal_path(tmp.path())).unwrap().len(),
            last_start
        );
        // The log continues cleanly after the cut.
        st.persist(None, None, &entries(7..=7, 2)).unwrap();
        drop(st);
        let rec = reopen(tmp.path());
        assert_eq!(rec.truncated_tail_bytes, 0);
        assert_eq!(rec.entries.last(), Some(&entry(7, 2)));
    }
}

#[test]
fn corrupt_record_in_the_middle_is_refused_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut bytes, second, _) = three_batches(tmp.path());
    // Flip one payload bit of the second record; the third is intact after it.
    bytes[second as usize + wal::HEADER_LEN + 3] ^= 0x10;
    fs::write(wal_path(tmp.path()), &bytes).unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("offset {second}")), "{msg}");
            assert!(msg.contains("intact record of a later write"), "{msg}");
            assert!(msg.contains("move the data directory aside"), "{msg}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was cut.
    assert_eq!(fs::read(wal_path(tmp.path())).unwrap(), bytes);
}

#[test]
fn corrupt_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut bytes, _, third) = three_batches(tmp.path());
    let total = bytes.len() as u64;
    bytes[third as usize + wal::HEADER_LEN + 3] ^= 0x10;
    fs::write(wal_path(tmp.path()), &bytes).unwrap();
    let rec = reopen(tmp.path());
    assert_eq!(rec.entries, entries(1..=6, 1));
    assert_eq!(rec.truncated_tail_bytes, total - third);
    assert_eq!(fs::metadata(wal_path(tmp.path())).unwrap().len(), third);
}

#[test]
fn an_intact_record_that_does_not_decode_is_refused_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut bytes, _, _) = three_batches(tmp.path());
    let good = bytes.len();
    // A well-framed record (valid CRC, next in sequence) whose payload names no known record kind.
    let next = wal::decode_all(&bytes).next_seq;
    bytes.extend_from_slice(&wal::frame_raw(next, next, 1, &[0xee, 0, 0, 0, 1, 2, 3]));
    fs::write(wal_path(tmp.path()), &bytes).unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Corrupt { .. }) => {
            assert!(e.to_string().contains(&format!("offset {good}")), "{e}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was cut.
    assert_eq!(fs::read(wal_path(tmp.path())).unwrap(), bytes);
}

#[test]
fn zero_filled_and_oversized_tails_are_cut() {
    for garbage in [vec![0xff; 12], vec![1, 0, 0]] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut bytes, _, _) = three_batches(tmp.path());
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&garbage);
        fs::write(wal_path(tmp.path()), &bytes).unwrap();
        let rec = reopen(tmp.path());
        assert_eq!(rec.entries, entries(1..=9, 1));
        assert_eq!(rec.truncated_tail_bytes, garbage.len() as u64);
        assert_eq!(fs::metadata(wal_path(tmp.path())).unwrap().len(), good);
    }
}

// ---- preallocated space after the log ----

/// A storage whose WAL holds three batches of entries of about 700 bytes (1–3, 4–6, 7–9), the last record
/// spanning at least two sectors, with the preallocated zeros after them; returns the WAL file's bytes and
/// where the last record starts.
fn preallocated_three_batches(dir: &Path) -> (Vec<u8>, usize) {
    let big = |r: std::ops::RangeInclusive<Index>| -> Vec<Entry> {
        r.map(|index| Entry {
            index,
            term: 1,
            payload: Payload::Command(vec![b'a' + index as u8; 700]),
        })
        .collect()
    };
    let (mut st, _) = Storage::open(dir).unwrap();
    st.persist(Some(&hs(1, Some(1))), None, &big(1..=3))
        .unwrap();
    st.persist(None, None, &big(4..=6)).unwrap();
    let last = st.wal_bytes() as usize;
    st.persist(None, None, &big(7..=9)).unwrap();
    let end = st.wal_bytes() as usize;
    drop(st);
    let bytes = fs::read(wal_path(dir)).unwrap();
    assert!(
        bytes.len() as u64 >= PREALLOCATE_STEP && bytes.len() > end,
        "the WAL was not preallocated ({} bytes for a log of {end}); this test needs a filesystem with fallocate",
        bytes.len()
    );
    assert!(
        end - last > 2 * wal::SECTOR,
        "the last record spans sectors"
    );
    (bytes, last)
}

#[test]
fn the_wal_is_preallocated_and_its_zero_tail_ends_the_log() {
    let (tmp, mut st) = opened();
    st.finish_recovery().unwrap();
    st.persist(Some(&hs(1, Some(1))), None, &entries(1..=3, 1))
        .unwrap();
    let log = st.wal_bytes();
    let file = fs::metadata(wal_path(tmp.path())).unwrap().len();
    assert!(
        file >= PREALLOCATE_STEP,
        "WAL of {file} bytes for a log of {log}"
    );
    drop(st);
    // Reopened: the zeros are the end of the log, neither a torn write nor damage, and nothing is cut.
    let (mut st, rec) = Storage::open(tmp.path()).unwrap();
    assert_eq!(rec.entries, entries(1..=3, 1));
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert!(!rec.damaged_tail);
    assert_eq!(rec.lost_data, None);
    assert_eq!(st.wal_bytes(), log);
    assert_eq!(fs::metadata(wal_path(tmp.path())).unwrap().len(), file);
    // The next append overwrites the zeros right after the log.
    st.persist(None, None, &entries(4..=5, 2)).unwrap();
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.entries.len(), 5);
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(fs::metadata(wal_path(tmp.path())).unwrap().len(), file);
}

#[test]
fn appends_past_the_preallocated_space_grow_it_by_another_step() {
    let (tmp, mut st) = opened();
    // Two entries of 10 MiB: the second does not fit in the first step.
    for index in 1..=2 {
        let e = Entry {
            index,
            term: 1,
            payload: Payload::Command(vec![7; 10 << 20]),
        };
        st.persist(None, None, &[e]).unwrap();
    }
    let file = fs::metadata(wal_path(tmp.path())).unwrap().len();
    assert!(
        file >= st.wal_bytes() && file >= 2 * PREALLOCATE_STEP,
        "{file} bytes for a log of {}",
        st.wal_bytes()
    );
    drop(st);
    assert_eq!(reopen(tmp.path()).entries.len(), 2);
}

#[test]
fn a_torn_write_in_preallocated_space_is_cut_as_torn() {
    let src = tempfile::tempdir().unwrap();
    let (bytes, last) = preallocated_three_batches(src.path());
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let boundary = (last / wal::SECTOR + 1) * wal::SECTOR;
    // Which sectors of the last write reached the disk: the rest read as the zeros they replaced.
    let cases = [
        ("only the first sector", boundary..end),
        ("all but the first sector", last..boundary),
        ("all but a middle sector", boundary..boundary + wal::SECTOR),
        ("none", last..end),
    ];
    for (what, zeroed) in cases {
        let mut torn = bytes.clone();
        torn[zeroed].fill(0);
        let dir = tempfile::tempdir().unwrap();
        fs::write(wal_path(dir.path()), &torn).unwrap();
        let (st, rec) = Storage::open_as(dir.path(), InitialState::New).unwrap();
        assert_eq!(rec.entries.len(), 6, "{what}");
        assert!(
            !rec.damaged_tail,
            "{what}: taken for a damaged complete record"
        );
        assert_eq!(
            rec.lost_data, None,
            "{what}: a torn write was never acknowledged"
        );
        assert_eq!(st.wal_bytes(), last as u64, "{what}");
    }
}

#[test]
fn a_damaged_complete_last_record_in_preallocated_space_still_marks_lost_data() {
    let src = tempfile::tempdir().unwrap();
    let (bytes, last) = preallocated_three_batches(src.path());
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    for at in [
        last + 1,
        last + wal::HEADER_LEN + 3,
        (last + end) / 2,
        end - 1,
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let dir = tempfile::tempdir().unwrap();
        fs::write(wal_path(dir.path()), &damaged).unwrap();
        let (_, rec) = Storage::open_as(dir.path(), InitialState::New).unwrap();
        assert_eq!(rec.entries.len(), 6, "bit flipped at {at}");
        assert!(
            rec.damaged_tail,
            "bit flipped at {at}: taken for a torn write"
        );
        assert!(rec.lost_data.is_some(), "bit flipped at {at}");
    }
}

#[test]
fn snapshot_compacts_the_wal_and_survives_reopen() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(3, Some(2))), None, &entries(1..=10, 3))
        .unwrap();
    for i in 0..20 {
        st.persist(Some(&hs(4 + i, None)), None, &[]).unwrap();
    }
    let before = st.wal_bytes();
    st.save_snapshot(&snap(6, 3)).unwrap();
    assert!(st.wal_bytes() < before, "{} !< {before}", st.wal_bytes());
    assert_eq!(
        st.snapshot_meta(),
        SnapshotMeta {
            last_index: 6,
            last_term: 3
        }
    );
    assert_eq!(st.entries(), &entries(7..=10, 3)[..]);
    assert_eq!(st.load_snapshot().unwrap(), Some(snap(6, 3)));
    st.persist(None, None, &entries(11..=11, 23)).unwrap();
    drop(st);

    let rec = reopen(tmp.path());
    assert_eq!(rec.snapshot, Some(snap(6, 3)));
    assert_eq!(rec.hard_state, hs(23, None));
    let mut want = entries(7..=10, 3);
    want.push(entry(11, 23));
    assert_eq!(rec.entries, want);

    // A snapshot covering the whole log leaves it empty; appends continue after it.
    let (mut st, _) = Storage::open(tmp.path()).unwrap();
    st.save_snapshot(&snap(11, 23)).unwrap();
    assert!(st.entries().is_empty());
    assert_eq!(st.last_index(), 11);
    st.persist(None, None, &entries(12..=12, 23)).unwrap();
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.snapshot, Some(snap(11, 23)));
    assert_eq!(rec.entries, entries(12..=12, 23));
}

#[test]
fn installed_snapshot_replaces_the_log() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(1, None)), None, &entries(1..=10, 1))
        .unwrap();
    st.persist(Some(&hs(5, None)), None, &[]).unwrap();
    st.install_snapshot(&snap(20, 4), &[]).unwrap();
    assert_eq!(st.last_index(), 20);
    let bad = st.install_snapshot(&snap(30, 5), &entries(32..=33, 5));
    assert!(
        matches!(bad, Err(StorageError::InvalidWrite { .. })),
        "{bad:?}"
    );
    st.install_snapshot(&snap(25, 5), &entries(26..=27, 5))
        .unwrap();
    st.persist(None, None, &entries(28..=28, 5)).unwrap();
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.snapshot, Some(snap(25, 5)));
    assert_eq!(rec.hard_state, hs(5, None));
    assert_eq!(rec.entries, entries(26..=28, 5));
}

/// The crash window of compaction: the new snapshot is in place, the WAL is the old one.
#[test]
fn crash_between_snapshot_rename_and_wal_rewrite_opens_consistently() {
    // (snapshot index, term) written by hand over a log of entries 1..=10 in term 1, and what must remain.
    let cases: [(Index, Term, Vec<Entry>); 4] = [
        (6, 1, entries(7..=10, 1)), // local snapshot: entries after it are kept
        (10, 1, vec![]),            // covers the whole log
        (8, 2, vec![]),             // installed snapshot that contradicts the log: the log goes
        (20, 3, vec![]),            // installed snapshot beyond the log
    ];
    for (index, term, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let (mut st, _) = Storage::open(tmp.path()).unwrap();
        st.persist(Some(&hs(3, Some(1))), None, &entries(1..=10, 1))
            .unwrap();
        drop(st);
        snapshot_file::write(tmp.path(), &snap(index, term)).unwrap();
        // A half-written compacted WAL is lying around too.
        fs::write(tmp.path().join(WAL_TMP_FILE), b"half a record").unwrap();

        let (st, rec) = Storage::open(tmp.path()).unwrap();
        assert_eq!(rec.snapshot, Some(snap(index, term)), "case {index}/{term}");
        assert_eq!(rec.entries, want, "case {index}/{term}");
        assert_eq!(rec.hard_state, hs(3, Some(1)));
        assert_eq!(st.last_index(), want.last().map_or(index, |e| e.index));
        assert!(!tmp.path().join(WAL_TMP_FILE).exists());
        drop(st);
        // Open finished the compaction: a second open agrees and finds a WAL starting after the snapshot.
        let again = reopen(tmp.path());
        assert_eq!(again, rec);
        let decoded = wal::decode_all(&fs::read(wal_path(tmp.path())).unwrap());
        assert!(decoded.bad.is_none());
        assert!(
            matches!(decoded.records[0], wal::Record::LogStart(m) if m.last_index == index),
            "{:?}",
            decoded.records[0]
        );
    }
}

#[test]
fn lost_snapshot_or_lost_wal_is_corruption() {
    let tmp = compacted_at_3_of_5(Some(&hs(2, Some(1))));

    let moved = tmp.path().join("saved-snapshot");
    fs::rename(tmp.path().join(SNAPSHOT_FILE_NAME), &moved).unwrap();
    match Storage::open(tmp.path()) {
        Err(StorageError::Corrupt { path, detail }) => {
            assert_eq!(path, wal_path(tmp.path()));
            assert!(detail.contains("snapshot covers up to index 0"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    fs::rename(&moved, tmp.path().join(SNAPSHOT_FILE_NAME)).unwrap();

    fs::remove_file(wal_path(tmp.path())).unwrap();
    match Storage::open(tmp.path()) {
        Err(StorageError::Corrupt { path, .. }) => assert_eq!(path, wal_path(tmp.path())),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn corrupt_snapshot_file_is_refused() {
    let tmp = compacted_at_3_of_5(None);
    let path = tmp.path().join(SNAPSHOT_FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Corrupt { .. }) => {
            assert!(e.to_string().contains("CRC mismatch"), "{e}");
            // Tester finding F17: the refusal says how to recover (seen failing: it said only the CRCs).
            assert!(
                e.to_string().contains("move the data directory aside"),
                "{e}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn second_open_of_a_locked_directory_fails_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (st, _) = Storage::open(tmp.path()).unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Locked { .. }) => {
            let StorageError::Locked { path } = &e else {
                unreachable!()
            };
            assert_eq!(path, tmp.path());
            assert!(
                e.to_string().contains(&tmp.path().display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(st);
    Storage::open(tmp.path()).expect("open after the holder is gone");
}

#[test]
fn large_batches_are_split_into_records_and_read_back() {
    let (tmp, mut st) = opened();
    let big: Vec<Entry> = (1..=20)
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: Payload::Command(vec![i as u8; 1 << 20]),
        })
        .collect();
    st.persist(None, None, &big).unwrap();
    drop(st);
    let decoded = wal::decode_all(&fs::read(wal_path(tmp.path())).unwrap());
    assert!(decoded.bad.is_none());
    assert!(
        decoded.records.len() >= 2,
        "{} records",
        decoded.records.len()
    );
    assert_eq!(reopen(tmp.path()).entries, big);
}

// ---- damage in the middle of the log (issue 8) ----

/// Four fsynced batches (entries 1–3, 4–6, 7–9, 10–12); returns the WAL bytes and where each record starts.
fn four_batches(dir: &Path) -> (Vec<u8>, Vec<usize>) {
    let (mut st, _) = Storage::open(dir).unwrap();
    let mut starts = Vec::new();
    for b in 0..4 {
        starts.push(st.wal_bytes() as usize);
        let hard = (b == 0).then(|| hs(1, Some(1)));
        st.persist(hard.as_ref(), None, &entries(b * 3 + 1..=b * 3 + 3, 1))
            .unwrap();
    }
    let bytes = log_bytes(&st);
    drop(st);
    (bytes, starts)
}

/// Opens a directory whose WAL is `bytes` and expects a refusal that leaves the file as it was.
fn expect_refused(bytes: &[u8], what: &str) {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(wal_path(tmp.path()), bytes).unwrap();
    match Storage::open(tmp.path()) {
        Err(e @ StorageError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("move the data directory aside"),
                "{what}: {msg}"
            );
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok((_, rec)) => panic!(
            "{what}: opened with entries up to {:?}, dropping acknowledged ones",
            rec.entries.last().map(|e| e.index)
        ),
    }
    assert_eq!(
        fs::read(wal_path(tmp.path())).unwrap(),
        bytes,
        "{what}: file changed"
    );
}

/// The byte ranges of each header field, and the payload's first bytes, relative to a record's start.
const FIELDS: [(&str, std::ops::Range<usize>); 7] = [
    ("marker", 0..4),
    ("length", 4..8),
    ("sequence number", 8..16),
    ("unit", 16..24),
    ("unit count", 24..28),
    ("checksum", 28..32),
    ("payload", 32..40),
];

#[test]
fn damage_to_any_field_of_a_middle_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, starts) = four_batches(tmp.path());
    for (name, range) in FIELDS {
        for at in range.clone() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut damaged = bytes.clone();
                damaged[starts[1] + at] ^= bit;
                expect_refused(&damaged, &format!("{name} byte {at} bit {bit:#x}"));
            }
        }
        // The whole field zeroed, as a lost sector would leave it.
        let mut damaged = bytes.clone();
        damaged[starts[1] + range.start..starts[1] + range.end].fill(0);
        expect_refused(&damaged, &format!("{name} zeroed"));
    }
    let mut damaged = bytes.clone();
    damaged[starts[1]..starts[1] + wal::HEADER_LEN].fill(0);
    expect_refused(&damaged, "whole header zeroed");
    let mut damaged = bytes.clone();
    damaged[starts[1]..starts[2]].fill(0);
    expect_refused(&damaged, "whole record zeroed");
}

#[test]
fn damage_to_two_adjacent_records_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, starts) = four_batches(tmp.path());
    for (a, _) in FIELDS {
        for (b, rb) in FIELDS {
            let ra = FIELDS.iter().find(|f| f.0 == a).unwrap().1.clone();
            let mut damaged = bytes.clone();
            damaged[starts[1] + ra.start] ^= 0x04;
            damaged[starts[2] + rb.start] ^= 0x04;
            expect_refused(&damaged, &format!("{a} of record 2 and {b} of record 3"));
        }
    }
    // Records 2 and 3 wiped together, the fourth intact.
    let mut damaged = bytes.clone();
    damaged[starts[1]..starts[3]].fill(0);
    expect_refused(&damaged, "records 2 and 3 zeroed");
}

/// Seed for the randomised damage test: `SQUALL_WAL_SEED` replays one, otherwise a new one per run.
fn damage_seed() -> u64 {
    match std::env::var("SQUALL_WAL_SEED") {
        Ok(s) => s.parse().expect("SQUALL_WAL_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

#[test]
fn random_damage_before_the_last_write_is_refused_and_in_it_is_cut() {
    use rand::{Rng, SeedableRng};
    let seed = damage_seed();
    eprintln!("WAL damage test: seed {seed} (rerun with SQUALL_WAL_SEED={seed})");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, starts) = four_batches(tmp.path());
    for case in 0..200 {
        let mut damaged = bytes.clone();
        // One to three damaged bytes inside one record, or spread over two adjacent records.
        let rec = rng.random_range(0..starts.len());
        let end = starts.get(rec + 1).copied().unwrap_or(bytes.len());
        let span = if rng.random_bool(0.3) && rec + 2 < starts.len() {
            starts[rec]..starts[rec + 2]
        } else {
            starts[rec]..end
        };
        for _ in 0..rng.random_range(1..=3) {
            let at = rng.random_range(span.clone());
            damaged[at] ^= rng.random_range(1..=255u8);
        }
        let what = format!("seed {seed} case {case}: record {rec}, bytes {span:?}");
        if rec + 1 < starts.len() {
            expect_refused(&damaged, &what);
        } else {
            // The last write: indistinguishable from a torn one, so it is cut and nothing before it.
            let dir = tempfile::tempdir().unwrap();
            fs::write(wal_path(dir.path()), &damaged).unwrap();
            let rec = reopen(dir.path());
            assert_eq!(rec.entries, entries(1..=9, 1), "{what}");
        }
    }
}

#[test]
fn a_torn_write_of_several_records_is_cut_whole_whichever_of_its_pages_landed() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(1, Some(1))), None, &entries(1..=3, 1))
        .unwrap();
    let unit_start = st.wal_bytes() as usize;
    // One persist above the 16 MiB record size: several records in one write.
    let big: Vec<Entry> = (4..=21)
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: Payload::Command(vec![i as u8; 1 << 20]),
        })
        .collect();
    st.persist(None, None, &big).unwrap();
    drop(st);
    let bytes = fs::read(wal_path(tmp.path())).unwrap();
    let decoded = wal::decode_all(&bytes[unit_start..]);
    assert!(
        decoded.records.len() >= 2,
        "the write spans several records"
    );
    // The first page of the write never reached the disk; later pages did.
    let mut torn = bytes.clone();
    torn[unit_start..unit_start + 4096].fill(0);
    let dir = tempfile::tempdir().unwrap();
    fs::write(wal_path(dir.path()), &torn).unwrap();
    let rec = reopen(dir.path());
    assert_eq!(rec.entries, entries(1..=3, 1));
    assert_eq!(rec.truncated_tail_bytes, (bytes.len() - unit_start) as u64);
    // The write stopped exactly at a record boundary inside the unit.
    let second_record = unit_start
        + wal::HEADER_LEN
        + u32::from_le_bytes(bytes[unit_start + 4..unit_start + 8].try_into().unwrap()) as usize;
    let dir = tempfile::tempdir().unwrap();
    fs::write(wal_path(dir.path()), &bytes[..second_record]).unwrap();
    let rec = reopen(dir.path());
    assert_eq!(rec.entries, entries(1..=3, 1));
    // After the cut, new writes continue the sequence and reopen cleanly.
    let (mut st, _) = Storage::open(dir.path()).unwrap();
    st.persist(None, None, &entries(4..=4, 2)).unwrap();
    drop(st);
    assert_eq!(reopen(dir.path()).entries.len(), 4);
}

#[test]
fn a_wal_of_the_older_format_is_refused_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = b"any payload";
    let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    fs::write(wal_path(tmp.path()), &bytes).unwrap();
    let err = Storage::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("older squall"), "{err}");
    assert_eq!(fs::read(wal_path(tmp.path())).unwrap(), bytes);
}

#[test]
fn sequence_numbers_continue_across_compaction() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(1, None)), None, &entries(1..=5, 1))
        .unwrap();
    st.persist(None, None, &entries(6..=8, 1)).unwrap();
    let before = st.next_seq;
    st.save_snapshot(&snap(6, 1)).unwrap();
    assert!(st.next_seq > before);
    st.persist(None, None, &entries(9..=9, 1)).unwrap();
    let after = st.next_seq;
    drop(st);
    let (st, rec) = Storage::open(tmp.path()).unwrap();
    assert_eq!(st.next_seq, after);
    assert_eq!(rec.entries, entries(7..=9, 1));
}

#[test]
fn an_unfinished_write_unit_followed_by_a_later_one_is_refused() {
    // Record 1 says its unit has two records, but record 2 starts a unit of its own: a writer bug or
    // tampering, not a torn write (the later unit is intact).
    let tmp = tempfile::tempdir().unwrap();
    let hard = |term| {
        let mut p = Vec::new();
        bincode::serialize_into(&mut p, &wal::RecordRef::HardState(&hs(term, None))).unwrap();
        p
    };
    let mut bytes = wal::frame_raw(1, 1, 2, &hard(1));
    bytes.extend(wal::frame_raw(2, 2, 1, &hard(2)));
    fs::write(wal_path(tmp.path()), &bytes).unwrap();
    let err = Storage::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not complete"), "{err}");
    assert_eq!(fs::read(wal_path(tmp.path())).unwrap(), bytes);
}

// ---- membership (issue 14) ----

fn config_entry(index: Index, term: Term, voters: &[u64], learners: &[u64]) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Config(crate::raft::Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
        }),
    }
}

/// A core restarted from what `dir` holds, as the node binary does it (bootstrap flags: 3 voters).
fn restart_core(dir: &Path) -> crate::raft::CoreStatus {
    let rec = reopen(dir);
    let cfg = crate::raft::Config {
        id: 1,
        peers: vec![2, 3],
        join: false,
        election_ticks_min: 10,
        election_ticks_max: 20,
        heartbeat_ticks: 2,
        pre_vote: true,
        check_quorum: true,
        max_inflight: 2,
        max_batch_entries: 8,
        max_batch_bytes: 1 << 20,
        snapshot_chunk_bytes: 1024,
        seed: 1,
    };
    let raft = crate::raft::Raft::new(
        cfg,
        crate::raft::Restored {
            hard_state: rec.hard_state,
            snapshot: rec.snapshot,
            entries: rec.entries,
        },
    );
    raft.status()
}

#[test]
fn a_restarted_node_recovers_its_configuration_from_the_log() {
    let (tmp, mut st) = opened();
    let mut log = entries(1..=2, 1);
    log.push(config_entry(3, 1, &[1, 2, 3], &[4]));
    log.push(entry(4, 1));
    st.persist(Some(&hs(1, Some(1))), None, &log).unwrap();
    drop(st);
    let s = restart_core(tmp.path());
    assert_eq!(
        (
            s.config.voters.len(),
            s.config.learners.len(),
            s.config_index
        ),
        (3, 1, 3)
    );
    // An uncommitted configuration entry the new leader overwrote is gone after a restart too.
    let (mut st, _) = Storage::open(tmp.path()).unwrap();
    st.persist(Some(&hs(2, None)), Some(3), &entries(3..=3, 2))
        .unwrap();
    drop(st);
    let s = restart_core(tmp.path());
    assert_eq!((s.config_index, s.config.learners.len()), (0, 0));
}

#[test]
fn a_restarted_node_recovers_its_configuration_from_a_snapshot() {
    let (tmp, mut st) = opened();
    let mut log = entries(1..=2, 1);
    log.push(config_entry(3, 1, &[1, 4], &[]));
    log.extend(entries(4..=6, 1));
    st.persist(Some(&hs(1, Some(1))), None, &log).unwrap();
    let mut s5 = snap(5, 1);
    s5.config = Some(crate::raft::ConfState {
        index: 3,
        config: crate::raft::Membership::with_voters([1, 4]),
    });
    st.save_snapshot(&s5).unwrap();
    drop(st);
    let rec = reopen(tmp.path());
    assert_eq!(rec.snapshot.as_ref().unwrap().config, s5.config);
    assert_eq!(
        rec.entries.len(),
        1,
        "the configuration entry was compacted away"
    );
    let s = restart_core(tmp.path());
    assert_eq!(
        (s.config, s.config_index, s.config_committed),
        (crate::raft::Membership::with_voters([1, 4]), 3, true)
    );
}

#[test]
fn a_format_1_snapshot_is_read_without_a_configuration_and_an_unknown_format_refused() {
    let (tmp, mut st) = opened();
    st.persist(Some(&hs(1, None)), None, &entries(1..=3, 1))
        .unwrap();
    st.save_snapshot(&snap(2, 1)).unwrap();
    drop(st);
    // Rewrite the file as format 1 wrote it: no configuration field.
    #[derive(serde::Serialize)]
    struct V1 {
        meta: SnapshotMeta,
        data: Vec<u8>,
    }
    let path = tmp.path().join(SNAPSHOT_FILE_NAME);
    let payload = bincode::serialize(&V1 {
        meta: snap(2, 1).meta,
        data: snap(2, 1).data,
    })
    .unwrap();
    let write = |magic: &[u8]| {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).unwrap();
    };
    write(b"SQSNAP\x00\x01");
    let rec = reopen(tmp.path());
    let s = rec.snapshot.unwrap();
    assert_eq!(
        (s.meta, s.data, s.config),
        (snap(2, 1).meta, snap(2, 1).data, None)
    );
    // The bootstrap configuration applies, as it did when the file was written.
    assert_eq!(restart_core(tmp.path()).config.voters.len(), 3);

    write(b"SQSNAP\x00\x07");
    let err = Storage::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("snapshot format 7") && err.contains("newer squall"),
        "{err}"
    );
}

/// Simulation seed 2843: a member of a new cluster restarted before it stored any term must not be taken for
/// one that lost its data (two of three recovering at once, and no election possible).
#[test]
fn a_new_member_restarted_before_any_term_is_not_taken_for_one_that_lost_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node1");
    let (st, rec) = Storage::open_as(&dir, InitialState::New).unwrap();
    assert!(rec.empty && rec.lost_data.is_none());
    drop(st);
    let (_st, rec) = Storage::open(&dir).unwrap();
    assert!(!rec.empty, "{rec:?}");
    assert_eq!(rec.lost_data, None);
    assert_eq!(rec.hard_state, HardState::default());
}
