//! The storage on a disk that fills up: squall's fault filesystem (`squall_chaos::disk`) on a real FUSE mount
//! returns ENOSPC once a byte budget is spent. Needs /dev/fuse and root (as CI has); without them these tests
//! fail with the mount error rather than pass by skipping.

use squall_chaos::disk::MountedDisk;

use super::*;
use crate::raft::Payload;

fn entries(range: std::ops::RangeInclusive<Index>, term: Term) -> Vec<Entry> {
    range
        .map(|index| Entry {
            index,
            term,
            payload: Payload::Command(format!("cmd {index}@{term}").into_bytes()),
        })
        .collect()
}

fn mounted() -> (tempfile::TempDir, MountedDisk) {
    let tmp = tempfile::tempdir().unwrap();
    let disk = MountedDisk::mount(&tmp.path().join("backing"), &tmp.path().join("mnt"))
        .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
    (tmp, disk)
}

fn assert_disk_full<T: std::fmt::Debug>(r: Result<T, StorageError>, what: &str) {
    match r {
        Err(StorageError::DiskFull { source, .. }) => {
            assert_eq!(source.kind(), ErrorKind::StorageFull, "{what}: {source}")
        }
        other => panic!("{what}: expected DiskFull, got {other:?}"),
    }
}

#[test]
fn a_wal_append_on_a_full_disk_keeps_nothing_of_it_and_succeeds_once_space_returns() {
    let (_tmp, disk) = mounted();
    let dir = disk.mountpoint().join("node");
    let hs = HardState {
        term: 1,
        vote: Some(1),
    };
    let (mut st, _) = Storage::open(&dir).unwrap();
    st.persist(Some(&hs), None, &entries(1..=3, 1)).unwrap();

    // 40 bytes: the next record's header fits, its payload does not; the write is cut short, then ENOSPC.
    disk.faults().fill(40);
    assert_disk_full(
        st.persist(None, None, &entries(4..=6, 1)),
        "append on a full disk",
    );
    assert_eq!(st.last_index(), 3, "the refused entries are not counted");
    assert_disk_full(
        st.persist(None, None, &entries(4..=6, 1)),
        "the same append again (the storage is still usable, not failed)",
    );
    // What is on disk is exactly the good records: the partial one was cut back, so no torn tail.
    drop(st);
    let (mut st, rec) = Storage::open(&dir).unwrap();
    assert_eq!(rec.truncated_tail_bytes, 0, "a partial record was left");
    assert_eq!(rec.entries, entries(1..=3, 1));
    assert_eq!(rec.hard_state, hs);

    disk.faults().heal();
    st.persist(None, None, &entries(4..=6, 1))
        .expect("the append once space returned");
    st.persist(None, None, &entries(7..=7, 1)).unwrap();
    drop(st);
    let rec = Storage::open(&dir).unwrap().1;
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(rec.entries, entries(1..=7, 1));
}

/// Bytes of the snapshot file `snapshot` makes, measured on a scratch directory.
fn snapshot_file_len(snapshot: &Snapshot) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    snapshot_file::write(tmp.path(), snapshot).unwrap();
    fs::metadata(tmp.path().join(SNAPSHOT_FILE_NAME))
        .unwrap()
        .len()
}

#[test]
fn a_snapshot_on_a_full_disk_is_refused_or_kept_and_the_log_stays_consistent() {
    let (_tmp, disk) = mounted();
    let dir = disk.mountpoint().join("node");
    let snapshot = |last_index| Snapshot {
        meta: SnapshotMeta {
            last_index,
            last_term: 1,
        },
        data: vec![7; 300],
        config: None,
    };
    let (mut st, _) = Storage::open(&dir).unwrap();
    st.persist(
        Some(&HardState {
            term: 1,
            vote: None,
        }),
        None,
        &entries(1..=10, 1),
    )
    .unwrap();

    // No room for the snapshot file: refused, its temporary file removed, the old state untouched.
    disk.faults().fill(10);
    assert_disk_full(st.save_snapshot(&snapshot(5)), "snapshot on a full disk");
    assert!(!dir.join(snapshot_file::SNAPSHOT_TMP_FILE).exists());
    assert_eq!(st.snapshot_meta(), SnapshotMeta::default());

    // Room for the snapshot file but not for the compacted WAL: the snapshot counts, the WAL is rewritten
    // before the next append, which waits for space.
    disk.faults().fill(snapshot_file_len(&snapshot(5)));
    st.save_snapshot(&snapshot(5))
        .expect("a snapshot that reached the disk counts");
    assert_eq!(st.snapshot_meta().last_index, 5);
    assert_disk_full(
        st.persist(None, None, &entries(11..=11, 1)),
        "append while the rewrite is owed",
    );
    assert!(!dir.join(WAL_TMP_FILE).exists());

    disk.faults().heal();
    st.persist(None, None, &entries(11..=12, 1))
        .expect("the append once space returned");
    drop(st);
    let rec = Storage::open(&dir).unwrap().1;
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(rec.snapshot.map(|s| s.meta.last_index), Some(5));
    assert_eq!(rec.entries, entries(6..=12, 1));
}

#[test]
fn on_a_filesystem_that_refuses_fallocate_the_wal_is_appended_to() {
    // The fault filesystem does not implement fallocate (FUSE answers ENOSYS): no preallocated space, the
    // file ends where the log does, and a power cut's torn tail is the short record the module docs describe.
    let (_tmp, disk) = mounted();
    let dir = disk.mountpoint().join("node");
    let (mut st, _) = Storage::open_as(&dir, InitialState::New).unwrap();
    for b in 0..3 {
        st.persist(None, None, &entries(b * 3 + 1..=b * 3 + 3, 1))
            .unwrap();
        assert_eq!(
            fs::metadata(dir.join(WAL_FILE)).unwrap().len(),
            st.wal_bytes(),
            "after batch {b}"
        );
    }
    assert!(!st.preallocate, "fallocate was taken as working");
    drop(st);
    let (_, rec) = Storage::open(&dir).unwrap();
    assert_eq!(rec.entries, entries(1..=9, 1));
    assert_eq!(rec.truncated_tail_bytes, 0);
}
