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
        let report = disk.faults().power_on(Some(seed)).unwrap();
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
    let flipped = disk.faults().flip(None, None, 3).unwrap();
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
