//! A fault filesystem: a FUSE mount that serves a node's data directory from a backing directory and can,
//! on request, lose what was never made durable, fail or slow its syncs, stall, run out of space, or flip a
//! bit — the disk faults `kill -9` cannot produce, injected without the node's cooperation.
//!
//! With no fault set it passes every operation through to the backing directory.
//!
//! # What is durable
//!
//! The POSIX model, stricter than LazyFS (Jepsen): a byte written to a file is durable only after an
//! `fsync`/`fdatasync` of that file; a name change — a file created, renamed or removed, a directory made — is
//! durable only after an `fsync` of its directory (of both directories for a rename). A file fsynced in a
//! directory that never was is lost whole at a power cut. LazyFS keeps only file data in its cache and passes
//! name changes straight through, so under it a created or renamed file survives a cut without a directory
//! fsync; here it does not, because on ext4, XFS and most other filesystems it may not (the rule every
//! crash-safe program that renames a temporary file into place follows). A [power cut](DiskFaults::power_off)
//! throws away everything that was not durable; with a [`TornMode`] part of the unsynced writes survive
//! (a prefix of each file's last write, or, as LazyFS's `torn-seq` and `torn-op` do, a seeded subset of the
//! writes or of their 4 KiB pages).
//!
//! # How "not durable" is kept
//!
//! Writes reach the backing file at once (so reads need no merging), and the filesystem keeps, per file, each
//! change since its last sync with the bytes it overwrote or cut off and the length before it; per directory,
//! the unsynced name changes, with removed or replaced files moved into a stash beside the backing directory
//! rather than deleted. A file's fsync forgets its records; a directory's fsync forgets its name changes. A
//! power cut replays the records backwards, so the backing directory ends holding exactly the durable state.
//! Appends, the common case, cost no copy at all.
//!
//! Every record is also appended to an undo log beside the backing directory before its change is made, so if
//! squall itself dies while mounted, the next mount rolls the unsynced changes back (squall's death counts as
//! a power cut of the disk) instead of finding them in the backing directory and taking them for durable. The
//! dead mount such a death leaves is detached by the next mount of the same directory.
//!
//! One file per fault kind: `powercut` (the durability journal) and `undo_log` (its copy on disk),
//! `fsync_fail`, `slow` (slow and stall), `flip`, `full`; `fs` is the pass-through itself.

mod flip;
mod fs;
mod fsync_fail;
mod full;
mod powercut;
mod slow;
#[cfg(test)]
mod tests;
mod undo_log;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use flip::Flipped;
pub use fsync_fail::FsyncFailure;
pub use powercut::{PAGE, PowerCutReport, TornMode};

/// Why a disk-fault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// FUSE is not available on this machine.
    #[error(
        "disk faults need FUSE: cannot open /dev/fuse ({0}); load the fuse module (modprobe fuse) or run \
         without --disk-faults"
    )]
    NoFuse(std::io::Error),
    /// The mount failed.
    #[error("cannot mount the fault filesystem on {mountpoint} (backing {backing}): {error}")]
    Mount {
        /// Where it was to be mounted.
        mountpoint: PathBuf,
        /// The backing directory.
        backing: PathBuf,
        /// The underlying error (in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// A file operation of a fault (flip, power cut) failed.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// A fault was asked of something that cannot take it.
    #[error("{0}")]
    Refused(String),
}

/// Checks that FUSE can be used here: `/dev/fuse` exists and opens for reading and writing.
pub fn available() -> Result<(), DiskError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(drop)
        .map_err(DiskError::NoFuse)
}

/// One disk fault in force, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveFault {
    /// Every operation (or only syncs) takes this much longer.
    Slow {
        /// Added time per operation.
        delay: Duration,
        /// Only `fsync`/`fdatasync`/directory syncs are slowed.
        syncs_only: bool,
    },
    /// I/O blocks until healed.
    Stall,
    /// Syncs fail with EIO.
    FailFsync(FsyncFailure),
    /// Writes fail with ENOSPC once this many more bytes have been written.
    Full {
        /// Bytes still allowed.
        remaining: u64,
    },
}

impl std::fmt::Display for ActiveFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActiveFault::Slow { delay, syncs_only } => write!(
                f,
                "slow +{}ms{}",
                delay.as_millis(),
                if *syncs_only { " (syncs)" } else { "" }
            ),
            ActiveFault::Stall => f.write_str("stalled"),
            ActiveFault::FailFsync(FsyncFailure::Once) => f.write_str("next fsync fails"),
            ActiveFault::FailFsync(FsyncFailure::Always) => f.write_str("fsync fails"),
            ActiveFault::Full { remaining: 0 } => f.write_str("full"),
            ActiveFault::Full { remaining } => write!(f, "full after {remaining} B"),
        }
    }
}

/// Counts and total handler time per kind of FUSE operation, since the mount.
#[derive(Default)]
pub(crate) struct Counters {
    ops: [AtomicU64; OP_KINDS],
    nanos: [AtomicU64; OP_KINDS],
}

/// Kinds of operation counted by [`DiskFaults::op_stats`].
pub const OP_NAMES: [&str; OP_KINDS] = [
    "lookup", "getattr", "setattr", "open", "read", "write", "fsync", "create", "rename", "unlink",
    "mkdir", "readdir", "fsyncdir", "other",
];
const OP_KINDS: usize = 14;

/// How many operations of one kind the filesystem served and how long its handlers took in total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpStat {
    /// The operation (`write`, `fsync`, …).
    pub op: &'static str,
    /// Operations served.
    pub count: u64,
    /// Total time inside the handler (not counting the kernel round trip), in nanoseconds.
    pub handler_nanos: u64,
}

pub(crate) struct State {
    /// FUSE inode number -> absolute path in the backing directory (or the stash, once removed).
    inodes: HashMap<u64, PathBuf>,
    /// Open files by handle.
    handles: HashMap<u64, Arc<std::fs::File>>,
    next_fh: u64,
    journal: powercut::Journal,
    fsync_fail: Option<FsyncFailure>,
    /// Syncs still allowed before the power goes off by itself ([`DiskFaults::power_off_after_syncs`]).
    cut_after_syncs: Option<u64>,
    full: full::Budget,
}

/// What the filesystem threads and the control handle share.
pub(crate) struct Shared {
    backing: PathBuf,
    stash: PathBuf,
    /// `st_ino` of the backing directory, served as FUSE inode 1.
    root_ino: u64,
    state: Mutex<State>,
    gate: slow::Gate,
    counters: Counters,
}

impl Shared {
    fn fuse_ino(&self, meta: &std::fs::Metadata) -> u64 {
        if meta.ino() == self.root_ino {
            1
        } else {
            meta.ino()
        }
    }
}

/// Controls the faults of one mounted fault filesystem. Cheap to clone.
#[derive(Clone)]
pub struct DiskFaults {
    shared: Arc<Shared>,
}

impl DiskFaults {
    /// The directory that really holds the data.
    pub fn backing(&self) -> &Path {
        &self.shared.backing
    }

    /// Every operation (or, with `syncs_only`, every file and directory sync) takes `delay` longer.
    pub fn set_slow(&self, delay: Duration, syncs_only: bool) {
        self.shared.gate.set_slow(Some((delay, syncs_only)));
    }

    /// Every operation blocks from now until [`heal`](Self::heal) (or a power cut).
    pub fn stall(&self) {
        self.shared.gate.set_stalled(true);
    }

    /// The next (or every) `fsync`/`fdatasync` of a file fails with EIO and drops that file's unsynced data.
    pub fn fail_fsync(&self, how: FsyncFailure) {
        self.shared.state.lock().unwrap().fsync_fail = Some(how);
    }

    /// Writes fail with ENOSPC once `after_bytes` more bytes have been written (0: at once); growing a file by
    /// truncation spends the same budget, and once it is spent, creating a file or directory fails with ENOSPC.
    pub fn fill(&self, after_bytes: u64) {
        self.shared.state.lock().unwrap().full = full::Budget::limited(after_bytes);
    }

    /// Arms a power cut that falls at a sync: once `syncs` more file or directory syncs have completed, the
    /// next one finds the power off (it fails with EIO and makes nothing durable), and so does every later
    /// operation, as after [`power_off`](Self::power_off). Kill the process using the filesystem, then call
    /// [`power_on`](Self::power_on). A sync interrupted by a cut is the same, to what survives, as a cut just
    /// before it; so cutting at each sync of a multi-step update in turn covers every crash point that matters
    /// to its durability. Disarmed by [`heal`](Self::heal) or by the cut itself.
    pub fn power_off_after_syncs(&self, syncs: u64) {
        self.shared.state.lock().unwrap().cut_after_syncs = Some(syncs);
    }

    /// Removes every fault: slow, stall, fsync failure, disk full, an armed power cut. Data already lost stays
    /// lost.
    pub fn heal(&self) {
        {
            let mut st = self.shared.state.lock().unwrap();
            st.fsync_fail = None;
            st.cut_after_syncs = None;
            st.full = full::Budget::unlimited();
        }
        self.shared.gate.set_slow(None);
        self.shared.gate.set_stalled(false);
    }

    /// Flips one bit of `file` (relative to the data directory; when `None`, a random non-empty file other
    /// than those in `skip`, relative paths too: lock and marker files the node's data does not depend on) at
    /// `offset` (random when `None`), in the backing file. The choices come from `seed` alone: the same seed
    /// over the same files picks the same file, byte and bit.
    pub fn flip(
        &self,
        file: Option<&Path>,
        offset: Option<u64>,
        seed: u64,
        skip: &[PathBuf],
    ) -> Result<Flipped, DiskError> {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        flip::flip(&self.shared.backing, file, offset, skip, &mut rng)
    }

    /// First half of a power cut: from now on every operation fails with EIO and changes nothing, and stalled
    /// operations are released (with EIO). Kill the process using the filesystem, wait until it is gone, then
    /// call [`power_on`](Self::power_on).
    pub fn power_off(&self) {
        self.shared.gate.set_powered_off(true);
    }

    /// Second half of a power cut: throws away everything not durable (with `torn`, part of the unsynced writes
    /// survive, as the [mode](TornMode) says, chosen with the seed), then serves operations again. Other faults
    /// stay in force.
    ///
    /// If anything cannot be rolled back, the disk stays powered off (every operation fails with EIO), the stash
    /// of removed files and the records that failed are kept, and the error names the first failure; calling
    /// `power_on` again retries what failed.
    pub fn power_on(&self, torn: Option<(TornMode, u64)>) -> Result<PowerCutReport, DiskError> {
        {
            let mut st = self.shared.state.lock().unwrap();
            let State {
                inodes, journal, ..
            } = &mut *st;
            let mut rng = torn.map(|(mode, seed)| {
                (
                    mode,
                    <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed),
                )
            });
            let report = journal.power_cut(inodes, rng.as_mut().map(|(m, r)| (*m, r)))?;
            clear_dir(&self.shared.stash);
            self.shared.gate.set_powered_off(false);
            Ok(report)
        }
    }

    /// Whether the disk is powered off (between [`power_off`](Self::power_off) and a successful
    /// [`power_on`](Self::power_on)).
    pub fn powered_off(&self) -> bool {
        self.shared.gate.powered_off()
    }

    /// Disk loss: deletes everything in the backing directory and forgets what was unsynced. The process
    /// using the filesystem must be stopped first.
    pub fn wipe(&self) -> Result<(), DiskError> {
        self.power_off();
        {
            let mut st = self.shared.state.lock().unwrap();
            st.journal.clear()?;
            st.inodes.retain(|ino, _| *ino == 1);
        }
        clear_dir(&self.shared.backing);
        clear_dir(&self.shared.stash);
        self.shared.gate.set_powered_off(false);
        match std::fs::read_dir(&self.shared.backing).map(|mut d| d.next().is_none()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(DiskError::Refused(format!(
                "{} is not empty after the wipe",
                self.shared.backing.display()
            ))),
            Err(source) => Err(DiskError::Io {
                op: "list",
                path: self.shared.backing.clone(),
                error: source,
            }),
        }
    }

    /// The faults in force.
    pub fn active(&self) -> Vec<ActiveFault> {
        let mut out = Vec::new();
        let (slow, stalled) = self.shared.gate.settings();
        if let Some((delay, syncs_only)) = slow {
            out.push(ActiveFault::Slow { delay, syncs_only });
        }
        if stalled {
            out.push(ActiveFault::Stall);
        }
        let st = self.shared.state.lock().unwrap();
        if let Some(how) = st.fsync_fail {
            out.push(ActiveFault::FailFsync(how));
        }
        if let Some(remaining) = st.full.remaining() {
            out.push(ActiveFault::Full { remaining });
        }
        out
    }

    /// Operation counts and handler time per kind, since the mount.
    pub fn op_stats(&self) -> Vec<OpStat> {
        OP_NAMES
            .iter()
            .enumerate()
            .map(|(i, op)| OpStat {
                op,
                count: self.shared.counters.ops[i].load(Ordering::Relaxed),
                handler_nanos: self.shared.counters.nanos[i].load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// What mounting found left over from a squall that died without unmounting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// A dead mount of an earlier fault filesystem was on the mount point and was detached.
    pub stale_mount: bool,
    /// The earlier mount's undo log held unsynced changes, now rolled back as a power cut.
    pub rolled_back: Option<PowerCutReport>,
}

/// A mounted fault filesystem. Dropping it unmounts (lazily, if a process still holds a file open).
pub struct MountedDisk {
    session: Option<fuser::BackgroundSession>,
    faults: DiskFaults,
    mountpoint: PathBuf,
    leftovers: Leftovers,
}

/// The source a fault filesystem shows in `/proc/self/mountinfo` (its type is plain `fuse`: mounting without
/// fusermount drops the subtype).
const FS_NAME: &str = "squall-disk";

impl MountedDisk {
    /// Mounts a fault filesystem on `mountpoint` serving `backing` (both created if missing). Needs root (or
    /// fusermount3).
    ///
    /// What `backing` holds counts as durable, except what an earlier mount's undo log (left by a squall that
    /// died while mounted) says was never synced: that is rolled back first, as the power cut the death
    /// amounts to. A dead fault-filesystem mount left on `mountpoint` by such a squall is detached first; a
    /// live one (a squall still serving it) is refused. See [`leftovers`](Self::leftovers).
    pub fn mount(backing: &Path, mountpoint: &Path) -> Result<MountedDisk, DiskError> {
        available()?;
        let mount_err = |source| DiskError::Mount {
            mountpoint: mountpoint.to_path_buf(),
            backing: backing.to_path_buf(),
            error: source,
        };
        let mut leftovers = Leftovers {
            stale_mount: detach_stale_mount(mountpoint)?,
            rolled_back: None,
        };
        std::fs::create_dir_all(backing).map_err(mount_err)?;
        std::fs::create_dir_all(mountpoint).map_err(mount_err)?;
        if std::fs::read_dir(mountpoint)
            .map_err(mount_err)?
            .next()
            .is_some()
        {
            return Err(DiskError::Refused(format!(
                "{} is not empty: the fault filesystem mounted over it would hide what it holds; move its \
                 contents into {} (the backing directory) or empty it",
                mountpoint.display(),
                backing.display()
            )));
        }
        let backing = backing.canonicalize().map_err(mount_err)?;
        let stash = stash_dir(&backing);
        let root_ino = std::fs::metadata(&backing).map_err(mount_err)?.ino();
        let log_path = sibling(&backing, "undo");
        let base = backing.parent().unwrap_or(Path::new("/")).to_path_buf();
        leftovers.rolled_back = roll_back_leftovers(&backing, &stash, &log_path, &base, root_ino)?;
        if stash.exists() {
            std::fs::remove_dir_all(&stash).map_err(mount_err)?;
        }
        std::fs::create_dir_all(&stash).map_err(mount_err)?;
        let log = undo_log::UndoLog::create(&log_path, &base).map_err(mount_err)?;
        let mut inodes = HashMap::new();
        inodes.insert(1, backing.clone());
        let shared = Arc::new(Shared {
            backing,
            stash,
            root_ino,
            state: Mutex::new(State {
                inodes,
                handles: HashMap::new(),
                next_fh: 1,
                journal: powercut::Journal::logged(log),
                fsync_fail: None,
                cut_after_syncs: None,
                full: full::Budget::unlimited(),
            }),
            gate: slow::Gate::default(),
            counters: Counters::default(),
        });
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("squall-disk".into()),
            fuser::MountOption::Subtype("squall".into()),
            fuser::MountOption::RW,
        ];
        // Several threads, so a slowed sync does not hold up reads of other files.
        config.n_threads = Some(4);
        let session = fuser::spawn_mount(fs::FaultFs::new(shared.clone()), mountpoint, &config)
            .map_err(mount_err)?;
        Ok(MountedDisk {
            session: Some(session),
            faults: DiskFaults { shared },
            mountpoint: mountpoint.to_path_buf(),
            leftovers,
        })
    }

    /// What the mount found left over from a squall that died while mounted, and cleaned up.
    pub fn leftovers(&self) -> &Leftovers {
        &self.leftovers
    }

    /// The control handle.
    pub fn faults(&self) -> DiskFaults {
        self.faults.clone()
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits for the filesystem threads. Any stall is released first.
    pub fn unmount(mut self) -> Result<(), DiskError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), DiskError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.faults.heal();
        let result = session.umount_and_join();
        if result.is_err() {
            // Busy (a process still has a file open): detach, so the mount goes once the last file closes.
            let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
        }
        // An orderly unmount keeps what was written, synced or not (as an orderly shutdown flushes the page
        // cache), so nothing is left to undo.
        let _ = std::fs::remove_dir_all(&self.faults.shared.stash);
        let _ = std::fs::remove_file(sibling(&self.faults.shared.backing, "undo"));
        result.map_err(|source| DiskError::Mount {
            mountpoint: self.mountpoint.clone(),
            backing: self.faults.shared.backing.clone(),
            error: source,
        })
    }
}

impl Drop for MountedDisk {
    fn drop(&mut self) {
        let _ = self.unmount_inner();
    }
}

fn clear_dir(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

fn stash_dir(backing: &Path) -> PathBuf {
    sibling(backing, "stash")
}

/// `dir.EXT` beside `dir`.
fn sibling(dir: &Path, ext: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    dir.with_file_name(name)
}

/// Replays the undo log an earlier mount left (its squall died while mounted) and rolls back what it says
/// was never synced. `None` when there was nothing to undo.
fn roll_back_leftovers(
    backing: &Path,
    stash: &Path,
    log_path: &Path,
    base: &Path,
    root_ino: u64,
) -> Result<Option<PowerCutReport>, DiskError> {
    let records = undo_log::UndoLog::read(log_path, base).map_err(|error| DiskError::Io {
        op: "read the undo log left by a squall that died while mounted",
        path: log_path.to_path_buf(),
        error,
    })?;
    if records.is_empty() {
        return Ok(None);
    }
    let mut journal = powercut::Journal::replay(records);
    let mut paths = HashMap::new();
    for dir in [backing, stash] {
        inode_paths(dir, root_ino, &mut paths);
    }
    let report = journal.power_cut(&paths, None).map_err(|e| {
        DiskError::Refused(format!(
            "squall died while {} was mounted, and rolling back its unsynced changes failed: {e}; the undo \
             log {} and the stash {} are kept (remove both to accept the data as it is)",
            backing.display(),
            log_path.display(),
            stash.display()
        ))
    })?;
    Ok((!report.is_empty()).then_some(report))
}

/// Every file and directory at or under `dir`, by the inode number the fault filesystem serves it as.
fn inode_paths(dir: &Path, root_ino: u64, out: &mut HashMap<u64, PathBuf>) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    let ino = if meta.ino() == root_ino {
        1
    } else {
        meta.ino()
    };
    out.insert(ino, dir.to_path_buf());
    if meta.is_dir()
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            inode_paths(&e.path(), root_ino, out);
        }
    }
}

/// Detaches a dead fault-filesystem mount on `mountpoint` (its squall was killed before it could unmount);
/// returns whether there was one. A live one, or a mount of any other kind, is refused: it is not ours to take.
pub fn detach_stale_mount(mountpoint: &Path) -> Result<bool, DiskError> {
    let Some((fs_type, source)) = mounted_at(mountpoint) else {
        return Ok(false);
    };
    if fs_type != "fuse" || source != FS_NAME {
        return Err(DiskError::Refused(format!(
            "{} is already a mount point (of {source}, type {fs_type}); unmount it (umount {}) or use another \
             --dir",
            mountpoint.display(),
            mountpoint.display()
        )));
    }
    if answers(mountpoint) {
        return Err(DiskError::Refused(format!(
            "{} is a fault filesystem still served by a running squall; stop that squall first (or detach \
             the mount with `umount -l {}`)",
            mountpoint.display(),
            mountpoint.display()
        )));
    }
    nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
        DiskError::Io {
            op: "detach the dead fault filesystem left mounted on",
            path: mountpoint.to_path_buf(),
            error: std::io::Error::from(e),
        }
    })?;
    Ok(true)
}

/// Whether a FUSE mount is served: a `stat` answers within 2 s. A dead server's mount fails at once with
/// ENOTCONN; one whose server hangs never answers, so the `stat` runs on a thread left behind if it blocks.
fn answers(mountpoint: &Path) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = mountpoint.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(path).is_ok());
    });
    rx.recv_timeout(Duration::from_secs(2)).unwrap_or(false)
}

/// The file system type and source mounted exactly at `path`, from `/proc/self/mountinfo`.
fn mounted_at(path: &Path) -> Option<(String, String)> {
    // A dead FUSE mount cannot be stat'ed, so resolve the parent and compare names.
    let parent = path.parent()?;
    let parent = if parent.as_os_str().is_empty() {
        std::env::current_dir().ok()?
    } else {
        parent.canonicalize().ok()?
    };
    let want = parent.join(path.file_name()?);
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Later lines are newer mounts and hide older ones on the same point.
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = unescape_mountinfo(left.split(' ').nth(4)?);
        let mut right = right.split(' ');
        (Path::new(&point) == want).then(|| {
            (
                right.next().unwrap_or("").to_string(),
                right.next().unwrap_or("").to_string(),
            )
        })
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(n) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("-"), 8)
        {
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
