//! The fault filesystem on a real FUSE mount: what survives a power cut after write / fsync / rename /
//! directory fsync, against a table of expected outcomes, and each other fault kind. Needs /dev/fuse and root
//! (as CI has); without them these tests fail with the mount error rather than pass by skipping.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::*;

fn mounted() -> (tempfile::TempDir, MountedDisk) {
    let tmp = tempfile::tempdir().unwrap();
    let disk = MountedDisk::mount(&tmp.path().join("backing"), &tmp.path().join("mnt"))
        .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
    (tmp, disk)
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

/// A durable file `f` holding "old".
fn durable_f(mnt: &Path) {
    let mut f = File::create(mnt.join("f")).unwrap();
    f.write_all(b"old").unwrap();
    f.sync_all().unwrap();
    sync_dir(mnt);
}

fn append(path: &Path, bytes: &[u8], sync: bool) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    if sync {
        f.sync_data().unwrap();
    }
}

fn create(path: &Path, bytes: &[u8], sync: bool) {
    let mut f = File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    if sync {
        f.sync_all().unwrap();
    }
}

/// What a name holds after the cut: `None` when absent.
fn contents(path: &Path) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Some(b"<dir>".to_vec()),
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

type Step = fn(&Path);
/// A case: its name, what is done, and what `f` and `g` hold after the cut (`None`: absent).
type Case = (
    &'static str,
    Step,
    Option<&'static [u8]>,
    Option<&'static [u8]>,
);

#[test]
fn power_cut_keeps_exactly_what_was_made_durable() {
    // (case, what is done after the durable file f = "old" exists, expected f, expected g)
    let table: &[Case] = &[
        (
            "append, no fsync",
            |m| append(&m.join("f"), b"new", false),
            Some(b"old"),
            None,
        ),
        (
            "append, fdatasync",
            |m| append(&m.join("f"), b"new", true),
            Some(b"oldnew"),
            None,
        ),
        (
            "overwrite, no fsync",
            |m| {
                let f = OpenOptions::new().write(true).open(m.join("f")).unwrap();
                std::os::unix::fs::FileExt::write_all_at(&f, b"XY", 1).unwrap();
            },
            Some(b"old"),
            None,
        ),
        (
            "truncate, no fsync",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join("f"))
                    .unwrap()
                    .set_len(0)
                    .unwrap()
            },
            Some(b"old"),
            None,
        ),
        (
            "new file fsynced, directory not",
            |m| create(&m.join("g"), b"data", true),
            Some(b"old"),
            None,
        ),
        (
            "new file fsynced, directory fsynced",
            |m| {
                create(&m.join("g"), b"data", true);
                sync_dir(m);
            },
            Some(b"old"),
            Some(b"data"),
        ),
        (
            "new file not fsynced, directory fsynced",
            |m| {
                create(&m.join("g"), b"data", false);
                sync_dir(m);
            },
            Some(b"old"),
            Some(b""),
        ),
        (
            "rename over f, directory not fsynced",
            |m| {
                create(&m.join("g"), b"new", true);
                fs::rename(m.join("g"), m.join("f")).unwrap();
            },
            Some(b"old"),
            None,
        ),
        (
            "rename over f, directory fsynced",
            |m| {
                create(&m.join("g"), b"new", true);
                fs::rename(m.join("g"), m.join("f")).unwrap();
                sync_dir(m);
            },
            Some(b"new"),
            None,
        ),
        (
            "rename f away, directory not fsynced",
            |m| fs::rename(m.join("f"), m.join("g")).unwrap(),
            Some(b"old"),
            None,
        ),
        (
            "remove f, directory not fsynced",
            |m| fs::remove_file(m.join("f")).unwrap(),
            Some(b"old"),
            None,
        ),
        (
            "remove f, directory fsynced",
            |m| {
                fs::remove_file(m.join("f")).unwrap();
                sync_dir(m);
            },
            None,
            None,
        ),
        (
            "new directory, not fsynced",
            |m| fs::create_dir(m.join("g")).unwrap(),
            Some(b"old"),
            None,
        ),
        (
            "new directory, parent fsynced",
            |m| {
                fs::create_dir(m.join("g")).unwrap();
                sync_dir(m);
            },
            Some(b"old"),
            Some(b"<dir>"),
        ),
    ];
    let mut failures = Vec::new();
    for (case, step, want_f, want_g) in table {
        let (_tmp, disk) = mounted();
        let mnt = disk.mountpoint().to_path_buf();
        durable_f(&mnt);
        step(&mnt);
        let faults = disk.faults();
        faults.power_off();
        faults.power_on(None).unwrap();
        let (f, g) = (contents(&mnt.join("f")), contents(&mnt.join("g")));
        // The backing directory itself holds the same, so the next mount (and the node) sees it.
        assert_eq!(
            contents(&faults.backing().join("f")),
            f,
            "{case}: backing differs from mount"
        );
        if f.as_deref() != *want_f || g.as_deref() != *want_g {
            failures.push(format!(
                "{case}: f = {:?}, g = {:?}; expected f = {:?}, g = {:?}",
                f.as_deref().map(String::from_utf8_lossy),
                g.as_deref().map(String::from_utf8_lossy),
                want_f.map(String::from_utf8_lossy),
                want_g.map(String::from_utf8_lossy),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "power-cut outcomes differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn torn_power_cut_keeps_a_prefix_of_the_last_write() {
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..6 {
        let (_tmp, disk) = mounted();
        let mnt = disk.mountpoint().to_path_buf();
        durable_f(&mnt);
        let tail: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        append(&mnt.join("f"), &tail, false);
        disk.faults().power_off();
        let report = disk
            .faults()
            .power_on(Some((TornMode::Prefix, seed)))
            .unwrap();
        let got = fs::read(mnt.join("f")).unwrap();
        assert!(got.starts_with(b"old"), "seed {seed}: durable bytes lost");
        let kept = &got[3..];
        assert!(
            kept.len() < tail.len(),
            "seed {seed}: a torn write kept everything"
        );
        assert_eq!(
            kept,
            &tail[..kept.len()],
            "seed {seed}: the kept bytes are not a prefix"
        );
        assert_eq!(report.torn_bytes_kept, kept.len() as u64);
        lengths.insert(kept.len());
    }
    assert!(
        lengths.len() > 1,
        "torn lengths do not vary with the seed: {lengths:?}"
    );
}

#[test]
fn failed_fsync_returns_eio_and_drops_unsynced_data() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    disk.faults().fail_fsync(FsyncFailure::Once);
    let mut f = OpenOptions::new().append(true).open(mnt.join("f")).unwrap();
    f.write_all(b"new").unwrap();
    let err = f.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EIO), "{err}");
    assert_eq!(
        fs::read(mnt.join("f")).unwrap(),
        b"old",
        "the unsynced write survived a failed fsync"
    );
    f.write_all(b"again").unwrap();
    f.sync_data().expect("once means once");
    assert!(disk.faults().active().is_empty());

    disk.faults().fail_fsync(FsyncFailure::Always);
    for _ in 0..3 {
        assert!(f.sync_data().is_err());
    }
    disk.faults().heal();
    f.sync_data().unwrap();
}

#[test]
fn disk_full_refuses_writes_until_healed() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    disk.faults().fill(10);
    let mut f = OpenOptions::new().append(true).open(mnt.join("f")).unwrap();
    let err = f.write_all(&[7u8; 64]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
    assert_eq!(
        fs::metadata(mnt.join("f")).unwrap().len(),
        3 + 10,
        "exactly the budget was written"
    );
    disk.faults().heal();
    f.write_all(&[7u8; 64]).unwrap();
}

#[test]
fn stall_blocks_io_until_healed_and_a_power_cut_releases_it() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    disk.faults().stall();
    let path = mnt.join("f");
    let reader = std::thread::spawn(move || fs::read(path));
    // Give the read ample time to get through, were the stall not holding it.
    let deadline = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < deadline {
        assert!(!reader.is_finished(), "a read went through a stalled disk");
        std::thread::sleep(Duration::from_millis(20));
    }
    disk.faults().heal();
    assert_eq!(reader.join().unwrap().unwrap(), b"old");

    disk.faults().stall();
    let path = mnt.join("f");
    let reader = std::thread::spawn(move || fs::read(path));
    disk.faults().power_off();
    assert!(
        reader.join().unwrap().is_err(),
        "a powered-off disk answered a read"
    );
    disk.faults().power_on(None).unwrap();
    disk.faults().heal();
}

#[test]
fn slow_syncs_add_the_delay() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    disk.faults().set_slow(Duration::from_millis(200), true);
    let f = OpenOptions::new().append(true).open(mnt.join("f")).unwrap();
    let t = std::time::Instant::now();
    f.sync_data().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "fsync took {:?}",
        t.elapsed()
    );
    assert_eq!(
        disk.faults().active(),
        vec![ActiveFault::Slow {
            delay: Duration::from_millis(200),
            syncs_only: true
        }]
    );
}

#[test]
fn a_flipped_bit_is_seen_through_the_mount() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    create(&mnt.join("f"), &[0u8; 32], true);
    // Read once so any cache would hold the old bytes.
    assert_eq!(fs::read(mnt.join("f")).unwrap(), vec![0u8; 32]);
    let flipped = disk.faults().flip(None, None, 3, &[]).unwrap();
    assert_eq!(flipped.file, Path::new("f"));
    let now = fs::read(mnt.join("f")).unwrap();
    assert_eq!(
        now[flipped.offset as usize],
        1 << flipped.bit,
        "the flip is not visible through the mount"
    );
}

#[test]
fn pass_through_counts_operations() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    fs::create_dir_all(mnt.join("a/b")).unwrap();
    create(&mnt.join("a/b/x"), b"hello", true);
    assert_eq!(fs::read(mnt.join("a/b/x")).unwrap(), b"hello");
    let names: Vec<_> = fs::read_dir(mnt.join("a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("x")]);
    let stats = disk.faults().op_stats();
    let count = |op: &str| stats.iter().find(|s| s.op == op).unwrap().count;
    assert!(
        count("write") >= 1 && count("fsync") >= 1 && count("create") >= 1,
        "{stats:?}"
    );
    disk.unmount().unwrap();
}

#[test]
fn a_new_file_on_a_removed_file_s_inode_number_is_rolled_back_by_its_own_record() {
    use std::os::unix::fs::MetadataExt as _;
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    // `a`: durable "old", then 5000 bytes never synced; removed, and the removal made durable.
    create(&mnt.join("a"), b"old", true);
    sync_dir(&mnt);
    append(&mnt.join("a"), &[7u8; 5000], false);
    let a_ino = fs::metadata(mnt.join("a")).unwrap().ino();
    fs::remove_file(mnt.join("a")).unwrap();
    sync_dir(&mnt);
    // New files, durable names, contents never synced, until one gets `a`'s inode number (ext4 reuses a
    // freed inode at once). Each must come back from the cut empty: it holds nothing durable.
    let mut reused = false;
    let mut names = Vec::new();
    for i in 0..16 {
        let name = format!("b{i}");
        create(&mnt.join(&name), b"", false);
        sync_dir(&mnt);
        append(&mnt.join(&name), b"new bytes", false);
        names.push(name.clone());
        if fs::metadata(mnt.join(&name)).unwrap().ino() == a_ino {
            reused = true;
            break;
        }
    }
    disk.faults().power_off();
    disk.faults().power_on(None).unwrap();
    for name in &names {
        assert_eq!(
            contents(&mnt.join(name)).as_deref(),
            Some(&b""[..]),
            "{name} (inode {a_ino} reused: {reused}) after the cut"
        );
    }
    eprintln!("inode of the removed file reused by a new one: {reused}");
}

/// Eight unsynced appends of 100 bytes after the durable "old": append `i` is all byte `i + 1`.
fn eight_unsynced_appends(mnt: &Path) -> Vec<Vec<u8>> {
    let chunks: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i + 1; 100]).collect();
    for c in &chunks {
        append(&mnt.join("f"), c, false);
    }
    chunks
}

/// Which appends of [`eight_unsynced_appends`] a cut let survive: `Some(true)` kept whole, `Some(false)` a
/// hole of zeros or cut off; `None` when the file is not made of whole appends and holes.
fn surviving_appends(got: &[u8], chunks: &[Vec<u8>]) -> Option<Vec<bool>> {
    let rest = got.strip_prefix(b"old")?;
    let mut kept = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let at = i * 100;
        if at >= rest.len() {
            kept.push(false);
            continue;
        }
        let piece = rest.get(at..at + 100)?;
        if piece == &c[..] {
            kept.push(true);
        } else if piece.iter().all(|b| *b == 0) {
            kept.push(false);
        } else {
            return None;
        }
    }
    // The file ends with the last surviving append.
    let end = kept.iter().rposition(|k| *k).map_or(0, |i| (i + 1) * 100);
    (rest.len() == end).then_some(kept)
}

#[test]
fn torn_writes_keep_a_seeded_subset_of_whole_unsynced_writes() {
    let mut subsets = std::collections::BTreeSet::new();
    for seed in 0..12u64 {
        let mut outcomes = Vec::new();
        // Twice per seed: the same writes and the same seed tear the same way.
        for _ in 0..2 {
            let (_tmp, disk) = mounted();
            let mnt = disk.mountpoint().to_path_buf();
            durable_f(&mnt);
            let chunks = eight_unsynced_appends(&mnt);
            disk.faults().power_off();
            let report = disk
                .faults()
                .power_on(Some((TornMode::Writes, seed)))
                .unwrap();
            let got = fs::read(mnt.join("f")).unwrap();
            let kept = surviving_appends(&got, &chunks)
                .unwrap_or_else(|| panic!("seed {seed}: not a subset of whole writes: {got:?}"));
            assert_eq!(
                report.torn_bytes_kept,
                kept.iter().filter(|k| **k).count() as u64 * 100,
                "seed {seed}"
            );
            outcomes.push(kept);
        }
        assert_eq!(
            outcomes[0], outcomes[1],
            "seed {seed} did not replay the same cut"
        );
        subsets.insert(outcomes.pop().unwrap());
    }
    // An arbitrary subset, not only prefixes: some cut kept a write after one it lost.
    assert!(
        subsets.iter().any(|k| k.windows(2).any(|w| !w[0] && w[1])),
        "no cut kept a later write without an earlier one: {subsets:?}"
    );
    assert!(
        subsets.len() > 3,
        "subsets barely vary with the seed: {subsets:?}"
    );
}

#[test]
fn torn_pages_keep_a_seeded_subset_of_the_pages_of_one_write() {
    let mut mixed = false;
    for seed in 0..8u64 {
        let (_tmp, disk) = mounted();
        let mnt = disk.mountpoint().to_path_buf();
        durable_f(&mnt);
        // One write of five pages' worth, starting at byte 3: pieces [3, 4096), [4096, 8192), …, [20480, 20483).
        let data: Vec<u8> = (0..5 * PAGE as usize)
            .map(|i| (i % 250) as u8 + 1)
            .collect();
        append(&mnt.join("f"), &data, false);
        disk.faults().power_off();
        disk.faults()
            .power_on(Some((TornMode::Pages, seed)))
            .unwrap();
        let got = fs::read(mnt.join("f")).unwrap();
        assert_eq!(&got[..3], b"old", "seed {seed}: durable bytes lost");
        let mut kept = Vec::new();
        let mut start = 3u64;
        let end = 3 + data.len() as u64;
        while start < end {
            let piece_end = ((start / PAGE + 1) * PAGE).min(end);
            let (a, b) = (start as usize, piece_end as usize);
            let new = &data[a - 3..b - 3];
            let now = got.get(a..b.min(got.len())).unwrap_or(&[]);
            if now == new {
                kept.push(true);
            } else {
                assert!(
                    now.iter().all(|b| *b == 0),
                    "seed {seed}: page piece {a}..{b} is neither the write's bytes nor a hole"
                );
                kept.push(false);
            }
            start = piece_end;
        }
        let last_kept = kept.iter().rposition(|k| *k);
        let want_len = match last_kept {
            None => 3,
            Some(i) => (((3 / PAGE + i as u64 + 1) * PAGE).min(end)) as usize,
        };
        assert_eq!(got.len(), want_len, "seed {seed}: {kept:?}");
        mixed |= kept.iter().any(|k| *k) && kept.iter().any(|k| !*k);
        eprintln!("seed {seed}: pages kept {kept:?}");
    }
    assert!(mixed, "no cut kept only part of the pages of a write");
}

#[test]
fn a_full_disk_refuses_new_files_directories_and_growth_with_enospc() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    fs::create_dir(mnt.join("d")).unwrap();
    disk.faults().fill(10);
    let f = OpenOptions::new().write(true).open(mnt.join("f")).unwrap();
    let enospc = |what: &str, r: std::io::Result<()>| match r {
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {}
        other => panic!("{what} while the disk is full: {other:?}, expected ENOSPC"),
    };
    enospc("growing by 11 of 10 bytes left", f.set_len(3 + 11));
    assert_eq!(
        fs::metadata(mnt.join("f")).unwrap().len(),
        3,
        "a refused growth changed the length"
    );
    f.set_len(3 + 10).expect("growing by what is left");
    // Now nothing is left.
    enospc("creating a file", File::create(mnt.join("new")).map(drop));
    enospc("making a directory", fs::create_dir(mnt.join("newdir")));
    enospc("growing a file", f.set_len(100));
    assert!(!mnt.join("new").exists() && !mnt.join("newdir").exists());
    // What needs no new space still works.
    f.set_len(1).expect("shrinking");
    File::create(mnt.join("f")).expect("opening an existing name with O_CREAT");
    fs::remove_dir(mnt.join("d")).expect("removing");
    disk.faults().heal();
    File::create(mnt.join("new")).unwrap();
    fs::create_dir(mnt.join("newdir")).unwrap();
}

#[test]
fn a_failed_rollback_keeps_the_stash_and_the_power_off_and_a_retry_finishes_it() {
    let (tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    create(&mnt.join("g"), b"gee", true);
    sync_dir(&mnt);
    // Unsynced: an overwrite of f, and g removed (its directory not fsynced, so g is kept in the stash).
    let f = OpenOptions::new().write(true).open(mnt.join("f")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"XY", 1).unwrap();
    drop(f);
    fs::remove_file(mnt.join("g")).unwrap();
    let faults = disk.faults();
    faults.power_off();
    // Something outside squall puts a directory where f's bytes must go back.
    let backing_f = faults.backing().join("f");
    fs::remove_file(&backing_f).unwrap();
    fs::create_dir(&backing_f).unwrap();
    let err = faults.power_on(None).unwrap_err().to_string();
    assert!(err.contains("f"), "the failure names the file: {err}");
    assert!(
        faults.powered_off(),
        "the disk came back on after a failed rollback"
    );
    assert!(
        fs::read(mnt.join("g")).is_err(),
        "a disk whose rollback failed still serves reads"
    );
    // g came back from the stash; what could not be undone is still recorded.
    assert_eq!(fs::read(faults.backing().join("g")).unwrap(), b"gee");
    fs::remove_dir(&backing_f).unwrap();
    fs::write(&backing_f, b"oXY").unwrap();
    let report = faults.power_on(None).expect("the retry");
    assert_eq!(report.files_rolled_back, 1, "{report}");
    assert!(!faults.powered_off());
    assert_eq!(fs::read(mnt.join("f")).unwrap(), b"old");
    assert_eq!(fs::read(mnt.join("g")).unwrap(), b"gee");
    drop(tmp);
}

#[test]
fn a_failed_rollback_of_a_removal_keeps_the_stash() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    create(&mnt.join("g"), b"gee", true);
    create(&mnt.join("h"), b"aitch", true);
    sync_dir(&mnt);
    fs::remove_file(mnt.join("g")).unwrap();
    fs::remove_file(mnt.join("h")).unwrap();
    let faults = disk.faults();
    faults.power_off();
    // Something takes g's name in the backing directory: g cannot be put back.
    fs::create_dir(faults.backing().join("g")).unwrap();
    fs::write(faults.backing().join("g/x"), b"in the way").unwrap();
    let stash = faults.backing().with_file_name("backing.stash");
    assert!(faults.power_on(None).is_err());
    let left: Vec<_> = fs::read_dir(&stash).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "the stash keeps exactly g's copy: {left:?}");
    assert_eq!(fs::read(faults.backing().join("h")).unwrap(), b"aitch");
    fs::remove_dir_all(faults.backing().join("g")).unwrap();
    faults.power_on(None).expect("the retry");
    assert_eq!(fs::read(mnt.join("g")).unwrap(), b"gee");
}

/// Set by [`squall_dying_while_mounted_rolls_back_at_the_next_mount`] for the process it kills.
const CHILD_DIR: &str = "SQUALL_FAULTFS_TEST_CHILD_DIR";

#[test]
#[ignore = "run as a child process by squall_dying_while_mounted_rolls_back_at_the_next_mount"]
fn child_holds_a_mount_with_unsynced_changes_until_killed() {
    let dir = std::path::PathBuf::from(std::env::var_os(CHILD_DIR).expect(CHILD_DIR));
    let disk = MountedDisk::mount(&dir.join("backing"), &dir.join("mnt")).unwrap();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    create(&mnt.join("g"), b"gee", true);
    create(&mnt.join("h"), b"aitch", true);
    sync_dir(&mnt);
    // Unsynced: an append and an overwrite of f, a new file, g removed, h renamed over by a new k.
    append(&mnt.join("f"), b"new", false);
    let f = OpenOptions::new().write(true).open(mnt.join("f")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"XY", 1).unwrap();
    // No file of the mount may stay open here: a process that serves a FUSE mount and holds one of its files
    // cannot exit (closing the file waits on a flush only its own dead threads could answer). squall holds
    // none; its nodes do.
    drop(f);
    create(&mnt.join("unsynced"), b"data", true);
    fs::remove_file(mnt.join("g")).unwrap();
    create(&mnt.join("k"), b"kay", true);
    fs::rename(mnt.join("k"), mnt.join("h")).unwrap();
    fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process long before");
}

#[test]
fn squall_dying_while_mounted_rolls_back_at_the_next_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "disk::tests::child_holds_a_mount_with_unsynced_changes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.join("ready").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child holding the mount exited early: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child did not get its mount ready within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no unmount, no cleanup
    child.wait().unwrap();
    let err = fs::metadata(dir.join("mnt")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(nix::libc::ENOTCONN),
        "the killed process's mount should be dead: {err}"
    );

    let disk = MountedDisk::mount(&dir.join("backing"), &dir.join("mnt"))
        .unwrap_or_else(|e| panic!("mounting after the holder was killed: {e}"));
    let left = disk.leftovers().clone();
    assert!(
        left.stale_mount,
        "the dead mount was not reported: {left:?}"
    );
    let report = left
        .rolled_back
        .expect("the unsynced changes were not rolled back");
    let mnt = disk.mountpoint();
    let got =
        |name: &str| contents(&mnt.join(name)).map(|b| String::from_utf8_lossy(&b).into_owned());
    assert_eq!(
        (got("f"), got("g"), got("h"), got("unsynced"), got("k")),
        (
            Some("old".into()),
            Some("gee".into()),
            Some("aitch".into()),
            None,
            None
        ),
        "after {report}"
    );
    assert!(report.names_undone >= 3, "{report}");
    // The next orderly unmount leaves nothing to roll back.
    disk.unmount().unwrap();
    let disk = MountedDisk::mount(&dir.join("backing"), &dir.join("mnt")).unwrap();
    assert_eq!(disk.leftovers(), &Leftovers::default());
}

#[test]
fn a_live_mount_is_not_taken_over() {
    let (tmp, disk) = mounted();
    let err = MountedDisk::mount(&tmp.path().join("other"), disk.mountpoint())
        .err()
        .expect("mounting over a live fault filesystem");
    assert!(
        err.to_string().contains("still served by a running squall"),
        "{err}"
    );
    assert!(
        fs::metadata(disk.mountpoint()).is_ok(),
        "the live mount was disturbed"
    );
}

/// etcd's bbolt reads its database through a shared read-only mapping; a mount that refuses it (ENODEV, the
/// kernel's answer for a direct-I/O file without FUSE_DIRECT_IO_ALLOW_MMAP) stops etcd at start.
#[test]
fn a_file_can_be_mapped_shared_for_reading() {
    use std::os::fd::AsRawFd as _;
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    create(&mnt.join("db"), b"page one", true);
    let f = File::open(mnt.join("db")).unwrap();
    // SAFETY: a fresh read-only shared mapping of an open file, read within its length and unmapped before the
    // file is closed.
    let seen = unsafe {
        let p = nix::libc::mmap(
            std::ptr::null_mut(),
            8,
            nix::libc::PROT_READ,
            nix::libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(
            p,
            nix::libc::MAP_FAILED,
            "mmap(MAP_SHARED, PROT_READ) on the fault filesystem: {}",
            std::io::Error::last_os_error()
        );
        let bytes = std::slice::from_raw_parts(p as *const u8, 8).to_vec();
        nix::libc::munmap(p, 8);
        bytes
    };
    assert_eq!(seen, b"page one");
}

/// etcd's WAL setup: a file made and removed in `wal.tmp` (its writability probe), then `wal.tmp` renamed to
/// `wal` and the parent synced. The removal inside the directory was never synced, but the directory it was in
/// has a new, durable name: the power cut must still come back (it used to fail restoring `wal.tmp/.touch`).
#[test]
fn a_power_cut_after_an_unsynced_removal_in_a_directory_renamed_durably_comes_back() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    fs::create_dir(mnt.join("wal.tmp")).unwrap();
    sync_dir(&mnt);
    create(&mnt.join("wal.tmp/.touch"), b"", true);
    sync_dir(&mnt.join("wal.tmp"));
    fs::remove_file(mnt.join("wal.tmp/.touch")).unwrap();
    fs::rename(mnt.join("wal.tmp"), mnt.join("wal")).unwrap();
    sync_dir(&mnt);
    let faults = disk.faults();
    faults.power_off();
    faults
        .power_on(None)
        .unwrap_or_else(|e| panic!("the power cut did not come back: {e}"));
    assert!(mnt.join("wal").is_dir(), "the durable rename was kept");
    assert!(!mnt.join("wal.tmp").exists(), "the durable rename was kept");
}

/// A file made in a directory that was never fsynced is not durable, even when the directory is then renamed
/// and that rename made durable (etcd's WAL setup: files made in `wal.tmp`, `wal.tmp` renamed to `wal`, the
/// parent synced; `wal.tmp` itself never). The cut used to look for the file under the directory's old name,
/// not find it, and keep it.
#[test]
fn a_file_made_in_a_directory_renamed_durably_is_gone_after_a_power_cut() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    fs::create_dir(mnt.join("wal.tmp")).unwrap();
    sync_dir(&mnt);
    create(&mnt.join("wal.tmp/0.wal"), b"entries", true);
    fs::rename(mnt.join("wal.tmp"), mnt.join("wal")).unwrap();
    sync_dir(&mnt);
    let faults = disk.faults();
    faults.power_off();
    let report = faults.power_on(None).unwrap();
    assert!(mnt.join("wal").is_dir(), "the durable rename was kept");
    assert_eq!(
        contents(&mnt.join("wal/0.wal")),
        None,
        "the file's name was never made durable by an fsync of its directory"
    );
    assert_eq!(
        contents(&faults.backing().join("wal/0.wal")),
        None,
        "backing differs from mount"
    );
    assert_eq!(report.lost, ["wal/0.wal"], "{report}");

    // The same, with the directory synced before the rename: the file stays.
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    fs::create_dir(mnt.join("wal.tmp")).unwrap();
    sync_dir(&mnt);
    create(&mnt.join("wal.tmp/0.wal"), b"entries", true);
    sync_dir(&mnt.join("wal.tmp"));
    fs::rename(mnt.join("wal.tmp"), mnt.join("wal")).unwrap();
    sync_dir(&mnt);
    let faults = disk.faults();
    faults.power_off();
    faults.power_on(None).unwrap();
    assert_eq!(
        contents(&mnt.join("wal/0.wal")).as_deref(),
        Some(&b"entries"[..])
    );
}

/// A power cut's report names what is gone because no fsync of its directory made it durable, outermost only
/// (etcd 3.4 never syncs its data directory after making `member/`, so a cut takes all of `member/`), and says
/// why in its last words.
#[test]
fn a_power_cut_names_what_is_gone_because_its_directory_was_never_synced() {
    let (_tmp, disk) = mounted();
    let mnt = disk.mountpoint().to_path_buf();
    durable_f(&mnt);
    fs::create_dir_all(mnt.join("member/snap")).unwrap();
    sync_dir(&mnt.join("member"));
    create(&mnt.join("member/snap/db"), b"data", true);
    create(&mnt.join("g"), b"data", true);
    // etcd's writability probe: made and removed, neither synced; it was never there to lose.
    create(&mnt.join(".touch"), b"", false);
    fs::remove_file(mnt.join(".touch")).unwrap();
    let faults = disk.faults();
    faults.power_off();
    let report = faults.power_on(None).unwrap();
    assert_eq!(contents(&mnt.join("member")), None);
    assert_eq!(contents(&mnt.join(".touch")), None);
    assert_eq!(report.lost, ["g", "member/"], "{report}");
    let said = report.to_string();
    assert!(
        said.ends_with("gone because no fsync of their directory made them durable: g, member/"),
        "{said}"
    );
}
