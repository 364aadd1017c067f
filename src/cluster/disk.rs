//! Disk faults of `squall up --disk-faults`: every node's data directory is a fault filesystem
//! ([`squall_chaos::disk`]) over `node-N/disk` in the cluster directory. This module performs the `powercut`
//! and `disk` commands ([`crate::command::disk`] holds them as values).
//!
//! ```text
//! powercut NODE|leader|all [torn [writes|pages]]
//! disk NODE slow DUR [sync] | stall | fail-fsync [once|always] | full [after BYTES] | flip [FILE [at OFFSET]] | heal
//! ```
//!
//! The random choices of `flip` and of a torn power cut come from the cluster's seed and the fault's number in
//! the session (the first such fault is 1), never from the clock: two faults in one millisecond choose apart,
//! and a session with the same seed and the same commands in the same order chooses the same.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use squall_chaos::disk::DiskFaults;

pub use crate::command::disk::{
    DiskAction, FsyncFailure, HELP, PowerTarget, TornMode, parse_disk, parse_powercut,
};

use super::Cluster;
use super::command::{Command, NodeId};
use crate::state::Event;

const OFF: &str = "disk faults are off: start the cluster with `squall up --disk-faults`";

impl Cluster {
    /// Operation counts and handler time per FUSE operation, summed over every node (empty without
    /// `--disk-faults`).
    pub fn disk_op_stats(&self) -> Vec<squall_chaos::disk::OpStat> {
        self.inner.disks.op_stats()
    }

    /// Mounts node `id`'s fault filesystem over `node_dir/disk` at `data_dir`, and says in the feed what it
    /// cleaned up after a squall that died while mounted.
    pub(super) fn mount_disk(
        &self,
        id: NodeId,
        node_dir: &Path,
        data_dir: &Path,
    ) -> anyhow::Result<()> {
        let left = self
            .inner
            .disks
            .mount(id, &node_dir.join("disk"), data_dir)?;
        if left.stale_mount {
            self.emit(Event::Note {
                text: format!(
                    "node {id}: detached the dead fault filesystem a killed squall left mounted on {}",
                    data_dir.display()
                ),
            });
        }
        if let Some(report) = left.rolled_back {
            self.emit(Event::Note {
                text: format!(
                    "node {id}: squall died while node {id}'s disk held unsynced data; rolled it back as a \
                     power cut: {report}"
                ),
            });
        }
        Ok(())
    }

    fn disk_of(&self, id: NodeId) -> Result<DiskFaults, String> {
        self.inner.disks.faults(id).ok_or_else(|| OFF.to_string())
    }

    /// Tells the dashboard which disk and clock faults are in force on `id`.
    pub(super) fn report_node_faults(&self, id: NodeId) {
        self.emit(Event::NodeFaults {
            node: id,
            disk: self.inner.disks.describe(id),
            clock: self.inner.clocks.describe(id),
        });
    }

    /// Performs `powercut` and `disk` commands.
    pub(super) async fn perform_disk(&self, cmd: Command) -> Result<String, String> {
        match cmd {
            Command::PowerCut(target, torn) => self.power_cut(target, torn).await,
            Command::Disk(t, action) => {
                let id = self.resolve(t)?;
                let disk = self.disk_of(id)?;
                let what = self.describe_node(id);
                let effect = match action {
                    DiskAction::Slow { delay, syncs_only } => {
                        // One slow setting per disk: a second `slow` replaces the first, and says so.
                        let before = disk.active().into_iter().find_map(|f| match f {
                            squall_chaos::disk::ActiveFault::Slow { delay, syncs_only } => {
                                Some((delay, syncs_only))
                            }
                            _ => None,
                        });
                        disk.set_slow(delay, syncs_only);
                        let which = |syncs_only| {
                            if syncs_only {
                                "every sync"
                            } else {
                                "every operation"
                            }
                        };
                        format!(
                            "slow node {id}'s disk{what}: {} +{} ms{}",
                            which(syncs_only),
                            delay.as_millis(),
                            before.map_or(String::new(), |(d, s)| format!(
                                " (replaces the slow disk in force: {} +{} ms)",
                                which(s),
                                d.as_millis()
                            ))
                        )
                    }
                    DiskAction::Stall => {
                        disk.stall();
                        format!("stall node {id}'s disk{what}: its I/O blocks until healed")
                    }
                    DiskAction::FailFsync(how) => {
                        disk.fail_fsync(match how {
                            FsyncFailure::Once => squall_chaos::disk::FsyncFailure::Once,
                            FsyncFailure::Always => squall_chaos::disk::FsyncFailure::Always,
                        });
                        format!(
                            "fail {} fsync on node {id}{what} with EIO",
                            if how == FsyncFailure::Once {
                                "the next"
                            } else {
                                "every"
                            }
                        )
                    }
                    DiskAction::Full { after } => {
                        disk.fill(after);
                        format!("fill node {id}'s disk{what}: ENOSPC after {after} more bytes")
                    }
                    DiskAction::Flip { file, at } => {
                        self.flip_bit(id, &disk, file.as_deref(), at)?.1
                    }
                    DiskAction::Heal => {
                        disk.heal();
                        // A wipe or restart refused or timed out while the disk stalled leaves the node stopped:
                        // say so, since nothing else will.
                        match self.inner.procs.state(id) {
                            Some(
                                squall_chaos::ProcState::Running { .. }
                                | squall_chaos::ProcState::Paused { .. },
                            )
                            | None => format!("heal node {id}'s disk"),
                            Some(state) => format!(
                                "heal node {id}'s disk; node {id} is not running ({}): `restart {id}` or \
                                 `wipe {id}` starts it",
                                process_state_text(&state)
                            ),
                        }
                    }
                };
                self.report_node_faults(id);
                Ok(effect)
            }
            other => Err(format!("`{other}` is not a disk command")),
        }
    }

    /// `disk T flip FILE` with the offset it chose written into the command, so the event log, and a scenario
    /// exported from it, say exactly which byte was hit (`disk 3 flip wal.log at 37900`) and a rerun flips the
    /// same one. A flip without a file keeps its random choice: the file it chose may not exist in a rerun.
    /// Returns the pinned command and what changed.
    /// `asked` is the command as recorded (`leader` symbolic), `pinned` the same with its node resolved.
    pub(super) async fn perform_pinned_flip(
        &self,
        asked: Command,
        pinned: Command,
    ) -> Result<(Command, String), String> {
        let (Command::Disk(t, DiskAction::Flip { file, at }), Command::Disk(node, _)) =
            (asked, pinned)
        else {
            return Err("not a disk flip".into());
        };
        let id = self.resolve(node)?;
        let disk = self.disk_of(id)?;
        let (flipped, said) = self.flip_bit(id, &disk, file.as_deref(), at)?;
        self.report_node_faults(id);
        let at = match file {
            Some(_) => Some(flipped.offset),
            None => at,
        };
        Ok((Command::Disk(t, DiskAction::Flip { file, at }), said))
    }

    /// Flips one bit of node `id`'s data (see [`squall_chaos::disk::DiskFaults::flip`]), its random choices
    /// seeded from the cluster's seed and the fault's number; a random file is never one the kind lists in
    /// `[disk] not_data` (its lock file and markers). Returns where and what changed in words.
    fn flip_bit(
        &self,
        id: NodeId,
        disk: &DiskFaults,
        file: Option<&str>,
        at: Option<u64>,
    ) -> Result<(squall_chaos::disk::Flipped, String), String> {
        let what = self.describe_node(id);
        let seed = self.inner.disks.next_seed(self.inner.spec.seed);
        let flipped = disk
            .flip(
                file.map(Path::new),
                at,
                seed,
                &self.inner.spec.kind.not_data,
            )
            .map_err(|e| e.to_string())?;
        let said = format!("corrupt node {id}'s data{what}: {flipped}");
        Ok((flipped, said))
    }

    /// Cuts the power of one node or of all at once: every disk stops answering (stalled I/O fails), the
    /// processes are SIGKILLed and reaped, then everything not durable is thrown away. The nodes stay down
    /// until restarted.
    ///
    /// A node not reaped within 10 s of SIGKILL keeps its disk powered off (every I/O fails with EIO): rolling
    /// back under a process that may still write would mix its writes into the durable state. Running the same
    /// `powercut` again, once the process is gone, finishes the cut.
    async fn power_cut(
        &self,
        target: PowerTarget,
        torn: Option<TornMode>,
    ) -> Result<String, String> {
        let ids = match target {
            PowerTarget::All => self.node_ids(),
            PowerTarget::One(t) => vec![self.resolve(t)?],
        };
        let mut disks = Vec::new();
        for &id in &ids {
            disks.push((id, self.disk_of(id)?, self.describe_node(id)));
        }
        for (_, d, _) in &disks {
            d.power_off();
        }
        let mut kill_failed = BTreeMap::new();
        for &id in &ids {
            if let Err(e) = self.inner.procs.kill_now(id) {
                kill_failed.insert(id, e);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while ids
            .iter()
            .any(|&id| !kill_failed.contains_key(&id) && self.alive(id))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let alive = |id: NodeId| kill_failed.contains_key(&id) || self.alive(id);
        let outcome = finish_power_cut(disks, alive, torn, || {
            self.inner.disks.next_seed(self.inner.spec.seed)
        });
        let mut problems: Vec<String> = outcome.refused;
        for (id, e) in kill_failed {
            problems.push(format!("node {id}: SIGKILL failed: {e}"));
        }
        problems.extend(outcome.failed);
        if !problems.is_empty() {
            let done = if outcome.done.is_empty() {
                String::new()
            } else {
                format!(" (done: {})", outcome.done.join("; "))
            };
            return Err(format!(
                "power cut incomplete: {}{done}",
                problems.join("; ")
            ));
        }
        Ok(format!(
            "power cut{}{}: {}",
            if target == PowerTarget::All {
                " of every node"
            } else {
                ""
            },
            match torn {
                Some(m) => format!(" ({m})"),
                None => String::new(),
            },
            outcome.done.join("; ")
        ))
    }

    /// Wipes node `id`'s data on its fault filesystem (disk loss): the node must be stopped.
    pub(super) async fn wipe_disk(&self, id: NodeId) -> anyhow::Result<()> {
        let disk = self.disk_of(id).map_err(|e| anyhow::anyhow!(e))?;
        self.inner
            .procs
            .kill_now(id)
            .map_err(|e| anyhow::anyhow!(e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive(id) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {id} was not reaped within 10 s of SIGKILL (a process blocked in its disk's I/O cannot \
                 exit): its data is not wiped; `disk {id} heal`, then `wipe {id}` again"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        disk.wipe()?;
        Ok(())
    }
}

/// What became of each disk of a power cut.
#[derive(Debug, Default)]
struct CutOutcome {
    /// Rolled back: "node N…: report".
    done: Vec<String>,
    /// Left powered off because the process may still run.
    refused: Vec<String>,
    /// Rollback failed (the disk stays powered off).
    failed: Vec<String>,
}

/// The fault filesystem's torn mode for the command's.
/// A stopped process's state in words, for an answer.
fn process_state_text(state: &squall_chaos::ProcState) -> String {
    match state {
        squall_chaos::ProcState::Exited {
            signal: Some(sig), ..
        } if sig == "SIGKILL" => "killed".into(),
        squall_chaos::ProcState::Exited {
            code: Some(code), ..
        } => format!("exited with code {code}"),
        squall_chaos::ProcState::Exited {
            signal: Some(sig), ..
        } => format!("ended by {sig}"),
        squall_chaos::ProcState::Restarting => "restarting".into(),
        _ => "stopped".into(),
    }
}

fn chaos_torn(m: TornMode) -> squall_chaos::disk::TornMode {
    match m {
        TornMode::Prefix => squall_chaos::disk::TornMode::Prefix,
        TornMode::Writes => squall_chaos::disk::TornMode::Writes,
        TornMode::Pages => squall_chaos::disk::TornMode::Pages,
    }
}

/// Powers back on the disks of the nodes `alive` says are gone, rolling back what was not durable (torn as
/// `torn` says, each with a seed from `seed`); leaves the others powered off. See [`Cluster::power_cut`].
fn finish_power_cut(
    disks: Vec<(NodeId, DiskFaults, String)>,
    alive: impl Fn(NodeId) -> bool,
    torn: Option<TornMode>,
    mut seed: impl FnMut() -> u64,
) -> CutOutcome {
    let mut out = CutOutcome::default();
    for (id, d, what) in disks {
        if alive(id) {
            out.refused.push(format!(
                "node {id} was not reaped within 10 s of SIGKILL, so its disk stays powered off (every I/O \
                 fails with EIO) rather than roll back under a process that may still write; run the \
                 powercut again once it is gone"
            ));
            continue;
        }
        let torn = torn.map(|m| (chaos_torn(m), seed()));
        match d.power_on(torn) {
            Ok(report) => out.done.push(match torn {
                Some((_, s)) => format!("node {id}{what}: {report} (seed {s})"),
                None => format!("node {id}{what}: {report}"),
            }),
            Err(e) => out.failed.push(format!(
                "node {id}: rolling back failed, so its disk stays powered off and keeps what it could not \
                 undo (run the powercut again to retry): {e}"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::diskset::{Disks, check_layout, fault_seed};
    use super::*;
    use crate::command::Target;
    use squall_chaos::disk::MountedDisk;

    #[test]
    fn parses_the_vocabulary() {
        let p = |s: &str| super::super::command::parse(s);
        assert_eq!(
            p("powercut 2"),
            Ok(Command::PowerCut(PowerTarget::One(Target::Node(2)), None))
        );
        assert_eq!(
            p("powercut leader torn"),
            Ok(Command::PowerCut(
                PowerTarget::One(Target::Leader),
                Some(TornMode::Prefix)
            ))
        );
        assert_eq!(
            p("powercut all"),
            Ok(Command::PowerCut(PowerTarget::All, None))
        );
        assert_eq!(
            p("disk 2 slow 50ms sync"),
            Ok(Command::Disk(
                Target::Node(2),
                DiskAction::Slow {
                    delay: Duration::from_millis(50),
                    syncs_only: true
                }
            ))
        );
        assert_eq!(
            p("disk 1 stall"),
            Ok(Command::Disk(Target::Node(1), DiskAction::Stall))
        );
        assert_eq!(
            p("disk 1 fail-fsync always"),
            Ok(Command::Disk(
                Target::Node(1),
                DiskAction::FailFsync(FsyncFailure::Always)
            ))
        );
        assert_eq!(
            p("disk 1 fail-fsync"),
            Ok(Command::Disk(
                Target::Node(1),
                DiskAction::FailFsync(FsyncFailure::Once)
            ))
        );
        assert_eq!(
            p("disk 3 full after 64k"),
            Ok(Command::Disk(
                Target::Node(3),
                DiskAction::Full { after: 65536 }
            ))
        );
        assert_eq!(
            p("disk 3 full"),
            Ok(Command::Disk(
                Target::Node(3),
                DiskAction::Full { after: 0 }
            ))
        );
        assert_eq!(
            p("disk 3 flip wal.log"),
            Ok(Command::Disk(
                Target::Node(3),
                DiskAction::Flip {
                    file: Some("wal.log".into()),
                    at: None
                }
            ))
        );
        assert_eq!(
            p("disk leader heal"),
            Ok(Command::Disk(Target::Leader, DiskAction::Heal))
        );
        assert_eq!(
            p("disk 3 flip wal.log at 4096"),
            Ok(Command::Disk(
                Target::Node(3),
                DiskAction::Flip {
                    file: Some("wal.log".into()),
                    at: Some(4096)
                }
            ))
        );
        assert_eq!(
            p("powercut 1 torn writes"),
            Ok(Command::PowerCut(
                PowerTarget::One(Target::Node(1)),
                Some(TornMode::Writes)
            ))
        );
        // What is printed parses back to the same command.
        for s in [
            "powercut all torn",
            "powercut 2 torn writes",
            "powercut leader torn pages",
            "disk 1 flip wal.log at 17",
            "disk 2 slow 50ms sync",
            "disk 1 fail-fsync always",
            "disk 3 full after 10",
            "disk 3 flip x",
        ] {
            let c = p(s).unwrap();
            assert_eq!(p(&c.to_string()), Ok(c), "{s}");
        }
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let p = |s: &str| super::super::command::parse(s).unwrap_err();
        assert!(p("powercut").contains("needs a node id"));
        assert!(p("powercut 2 hard").contains("optionally `torn`"));
        assert!(p("powercut 2 torn bits").contains("`torn pages`"));
        assert!(p("disk 2 flip wal.log at x").contains("`x` is not a byte offset"));
        assert!(p("disk 2 flip wal.log at").contains("needs a byte offset"));
        assert!(p("disk 2").contains("needs a fault"));
        assert!(p("disk 2 melt").contains("unknown disk fault `melt`"));
        assert!(p("disk 2 slow soon").contains("not a duration"));
        assert!(p("disk 2 slow 0ms").contains("above 0"));
        assert!(p("disk 2 full after lots").contains("not a byte count"));
        assert!(p("disk x stall").contains("`x` is not a node id"));
    }

    #[test]
    fn two_flips_of_one_byte_in_one_millisecond_do_not_cancel() {
        // The old seed, `seed ^ now_ms`, gave both the same bit: the second flip undid the first while both
        // reported corruption.
        let dir = tempfile::tempdir().unwrap();
        let disk = MountedDisk::mount(&dir.path().join("backing"), &dir.path().join("mnt"))
            .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
        std::fs::write(disk.mountpoint().join("wal.log"), [0u8; 16]).unwrap();
        let disks = Disks::default();
        let faults = disk.faults();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let seed = disks.next_seed(42);
            seen.push(
                faults
                    .flip(Some(Path::new("wal.log")), Some(5), seed, &[])
                    .unwrap(),
            );
        }
        let bytes = std::fs::read(disk.mountpoint().join("wal.log")).unwrap();
        assert_ne!(seen[0].bit, seen[1].bit, "{seen:?}");
        assert_eq!(bytes[5].count_ones(), 2, "both flips stayed: {seen:?}");
        // Reproducible: the same session seed chooses the same way.
        let again = Disks::default();
        assert_eq!(again.next_seed(42), fault_seed(42, 1));
        assert_ne!(fault_seed(42, 1), fault_seed(42, 2));
    }

    #[test]
    fn a_node_not_reaped_keeps_its_disk_off_and_the_cut_is_retried_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let disk = MountedDisk::mount(&dir.path().join("backing"), &dir.path().join("mnt"))
            .unwrap_or_else(|e| panic!("mounting the fault filesystem: {e}"));
        let mnt = disk.mountpoint().to_path_buf();
        let f = mnt.join("f");
        std::fs::write(&f, b"unsynced").unwrap();
        let faults = disk.faults();
        faults.power_off();
        // The process is still there after the reap timeout (a stand-in for one stuck in the kernel).
        let out = finish_power_cut(
            vec![(2, faults.clone(), String::new())],
            |_| true,
            None,
            || 0,
        );
        assert!(out.done.is_empty() && out.failed.is_empty(), "{out:?}");
        assert!(out.refused[0].contains("stays powered off"), "{out:?}");
        assert!(
            faults.powered_off(),
            "powered on under a process that may still write"
        );
        assert!(std::fs::read(&f).is_err(), "the disk answered while off");
        // Gone now: the same cut finishes.
        let out = finish_power_cut(
            vec![(2, faults.clone(), String::new())],
            |_| false,
            None,
            || 0,
        );
        assert_eq!(out.done.len(), 1, "{out:?}");
        assert!(!faults.powered_off());
        assert!(!f.exists(), "an unsynced new file survived the cut");
    }

    #[test]
    fn a_directory_is_refused_when_disk_faults_would_hide_or_split_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let n1 = dir.path().join("node-1");
        std::fs::create_dir_all(n1.join("disk")).unwrap();
        std::fs::create_dir_all(n1.join("data")).unwrap();
        let nodes = vec![(1, n1.clone())];
        assert_eq!(
            check_layout(&nodes, false),
            Ok(()),
            "empty directories are fine"
        );
        assert_eq!(check_layout(&nodes, true), Ok(()));
        std::fs::write(n1.join("disk/wal.log"), b"x").unwrap();
        let err = check_layout(&nodes, false).unwrap_err();
        assert!(
            err.contains("add --disk-faults") && err.contains("node-1/disk"),
            "{err}"
        );
        assert_eq!(check_layout(&nodes, true), Ok(()));
        std::fs::remove_file(n1.join("disk/wal.log")).unwrap();
        std::fs::write(n1.join("data/wal.log"), b"x").unwrap();
        let err = check_layout(&nodes, true).unwrap_err();
        assert!(
            err.contains("drop --disk-faults") && err.contains("mv "),
            "{err}"
        );
        assert_eq!(check_layout(&nodes, false), Ok(()));
    }
}
