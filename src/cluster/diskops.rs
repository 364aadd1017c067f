//! Disk fault actions as one machine performs them on its mounted fault filesystems and its node processes:
//! what a local cluster does for `disk` and `powercut` ([`super::disk`]) and what `squall agent` does for the
//! nodes of its host (issue 24), one implementation for both. Nothing here knows the cluster's handle: it takes
//! the node's disk ([`DiskFaults`]) and what runs the node's process ([`Nodes`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use squall_chaos::Supervisor;
use squall_chaos::disk::{DiskFaults, Leftovers};

use super::command::NodeId;
use crate::command::disk::{DiskAction, FsyncFailure, TornMode};

/// How long a SIGKILLed node gets to be reaped before its disk is left powered off.
const REAP_DEADLINE: Duration = Duration::from_secs(10);

/// The supervisor's name for node `id`'s process (`node-N`, as the cluster and the agent both name it).
fn proc_name(id: NodeId) -> String {
    format!("node-{id}")
}

/// What the disk actions need of the node processes: their states and SIGKILL. The agent's [`Supervisor`] and
/// the cluster's processes (here or through the agents) both have it.
pub(crate) trait Nodes {
    /// Node `id`'s process state; `None` when it was never started.
    fn proc_state(&self, id: NodeId) -> Option<squall_chaos::ProcState>;
    /// SIGKILL to node `id`'s process group; `Ok` too when it was not running.
    fn sigkill(&self, id: NodeId) -> Result<(), String>;
}

impl Nodes for Supervisor {
    fn proc_state(&self, id: NodeId) -> Option<squall_chaos::ProcState> {
        self.state(&proc_name(id))
    }

    fn sigkill(&self, id: NodeId) -> Result<(), String> {
        match self.kill(&proc_name(id)) {
            Ok(()) | Err(squall_chaos::ChaosError::NotRunning { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether node `id`'s process runs (or is paused).
pub(crate) fn running(nodes: &impl Nodes, id: NodeId) -> bool {
    matches!(
        nodes.proc_state(id),
        Some(squall_chaos::ProcState::Running { .. } | squall_chaos::ProcState::Paused { .. })
    )
}

/// What a freshly mounted fault filesystem found left by a squall (or agent) that died while it was mounted,
/// in words for the feed: node `id`'s disk served at `data_dir`.
pub(crate) fn leftover_notes(id: NodeId, data_dir: &Path, left: &Leftovers) -> Vec<String> {
    let mut notes = Vec::new();
    if left.stale_mount {
        notes.push(format!(
            "node {id}: detached the dead fault filesystem a killed squall left mounted on {}",
            data_dir.display()
        ));
    }
    if let Some(report) = &left.rolled_back {
        notes.push(format!(
            "node {id}: squall died while node {id}'s disk held unsynced data; rolled it back as a power cut: \
             {report}"
        ));
    }
    notes
}

/// Sets `action` on node `id`'s `disk` (its process run by `sup`) and says what changed; `what` follows the node's
/// id in the words (`" (leader, term 4)"`, or empty). `seed` is drawn only for a flip's random choices, which
/// never pick a file of `not_data`. Returns the words and, for a flip, where it flipped. `Err` (for a person)
/// when nothing was changed.
pub(crate) fn apply(
    sup: &impl Nodes,
    id: NodeId,
    disk: &DiskFaults,
    action: &DiskAction,
    what: &str,
    seed: impl FnOnce() -> u64,
    not_data: &[PathBuf],
) -> Result<(String, Option<squall_chaos::disk::Flipped>), String> {
    let said = match action {
        DiskAction::Slow { delay, syncs_only } => {
            // One slow setting per disk: a second `slow` replaces the first, and says so.
            let before = disk.active().into_iter().find_map(|f| match f {
                squall_chaos::disk::ActiveFault::Slow { delay, syncs_only } => {
                    Some((delay, syncs_only))
                }
                _ => None,
            });
            disk.set_slow(*delay, *syncs_only);
            let which = |syncs_only| {
                if syncs_only {
                    "every sync"
                } else {
                    "every operation"
                }
            };
            format!(
                "slow node {id}'s disk{what}: {} +{} ms{}",
                which(*syncs_only),
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
                if *how == FsyncFailure::Once {
                    "the next"
                } else {
                    "every"
                }
            )
        }
        DiskAction::Full { after } => {
            disk.fill(*after);
            format!("fill node {id}'s disk{what}: ENOSPC after {after} more bytes")
        }
        DiskAction::Flip { file, at } => {
            let flipped = disk
                .flip(file.as_deref().map(Path::new), *at, seed(), not_data)
                .map_err(|e| e.to_string())?;
            let said = format!("corrupt node {id}'s data{what}: {flipped}");
            return Ok((said, Some(flipped)));
        }
        DiskAction::Heal => {
            disk.heal();
            // A wipe or restart refused or timed out while the disk stalled leaves the node stopped: say so,
            // since nothing else will.
            match sup.proc_state(id) {
                Some(
                    squall_chaos::ProcState::Running { .. }
                    | squall_chaos::ProcState::Paused { .. },
                )
                | None => format!("heal node {id}'s disk"),
                Some(state) => format!(
                    "heal node {id}'s disk; node {id} is not running ({}): `restart {id}` or `wipe {id}` \
                     starts it",
                    process_state_text(&state)
                ),
            }
        }
    };
    Ok((said, None))
}

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

/// What became of each disk of a power cut.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutOutcome {
    /// Rolled back: "node N…: report".
    pub done: Vec<String>,
    /// What was not done and why, for a person: a node not reaped (its disk left powered off), a SIGKILL or a
    /// rollback that failed.
    pub problems: Vec<String>,
}

impl CutOutcome {
    /// The answer to `powercut`: `Ok` (the words) when every disk was rolled back, else `Err` naming what was
    /// not done and what was. `all`: the cut was of every node; `torn`: how it tore.
    pub fn words(self, all: bool, torn: Option<TornMode>) -> Result<String, String> {
        if !self.problems.is_empty() {
            let done = if self.done.is_empty() {
                String::new()
            } else {
                format!(" (done: {})", self.done.join("; "))
            };
            return Err(format!(
                "power cut incomplete: {}{done}",
                self.problems.join("; ")
            ));
        }
        Ok(format!(
            "power cut{}{}: {}",
            if all { " of every node" } else { "" },
            match torn {
                Some(m) => format!(" ({m})"),
                None => String::new(),
            },
            self.done.join("; ")
        ))
    }
}

/// Cuts the power of `disks` (node id, its disk, and the words after its id) at once: every disk stops
/// answering (stalled I/O fails), the processes (run by `sup`) are SIGKILLed and reaped, then everything not
/// durable is thrown away, torn as `torn` says with a seed from `seed` per disk. The nodes stay down.
///
/// A node not reaped within 10 s of SIGKILL keeps its disk powered off (every I/O fails with EIO): rolling back
/// under a process that may still write would mix its writes into the durable state. Cutting again, once the
/// process is gone, finishes the cut.
pub(crate) async fn cut_power(
    sup: &impl Nodes,
    disks: Vec<(NodeId, DiskFaults, String)>,
    torn: Option<TornMode>,
    seed: impl FnMut() -> u64,
) -> CutOutcome {
    for (_, d, _) in &disks {
        d.power_off();
    }
    let mut kill_failed = std::collections::BTreeMap::new();
    for (id, _, _) in &disks {
        if let Err(e) = sup.sigkill(*id) {
            kill_failed.insert(*id, e);
        }
    }
    let deadline = Instant::now() + REAP_DEADLINE;
    while disks
        .iter()
        .any(|(id, _, _)| !kill_failed.contains_key(id) && running(sup, *id))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let alive = |id: NodeId| kill_failed.contains_key(&id) || running(sup, id);
    let mut out = finish_power_cut(disks, alive, torn, seed);
    for (id, e) in kill_failed {
        out.problems.push(format!("node {id}: SIGKILL failed: {e}"));
    }
    out
}

/// Disk loss: SIGKILLs node `id` (run by `sup`), waits up to 10 s for it to be reaped, and deletes its data on
/// its fault filesystem `disk`. `Err` (for a person) when it was not wiped.
pub(crate) async fn wipe(sup: &impl Nodes, id: NodeId, disk: &DiskFaults) -> Result<(), String> {
    sup.sigkill(id)?;
    let deadline = Instant::now() + REAP_DEADLINE;
    while running(sup, id) {
        if Instant::now() >= deadline {
            return Err(format!(
                "node {id} was not reaped within 10 s of SIGKILL (a process blocked in its disk's I/O cannot \
                 exit): its data is not wiped; `disk {id} heal`, then `wipe {id}` again"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    disk.wipe().map_err(|e| e.to_string())
}

fn chaos_torn(m: TornMode) -> squall_chaos::disk::TornMode {
    match m {
        TornMode::Prefix => squall_chaos::disk::TornMode::Prefix,
        TornMode::Writes => squall_chaos::disk::TornMode::Writes,
        TornMode::Pages => squall_chaos::disk::TornMode::Pages,
    }
}

/// Powers back on the disks of the nodes `alive` says are gone, rolling back what was not durable (torn as
/// `torn` says, each with a seed from `seed`); leaves the others powered off. See [`cut_power`].
fn finish_power_cut(
    disks: Vec<(NodeId, DiskFaults, String)>,
    alive: impl Fn(NodeId) -> bool,
    torn: Option<TornMode>,
    mut seed: impl FnMut() -> u64,
) -> CutOutcome {
    let mut out = CutOutcome::default();
    let mut failed = Vec::new();
    for (id, d, what) in disks {
        if alive(id) {
            out.problems.push(format!(
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
            Err(e) => failed.push(format!(
                "node {id}: rolling back failed, so its disk stays powered off and keeps what it could not \
                 undo (run the powercut again to retry): {e}"
            )),
        }
    }
    out.problems.extend(failed);
    out
}

/// Why this machine cannot serve disk faults, for a person; `None` when it can: `/dev/fuse` must open for
/// reading and writing, and mounting needs root or `fusermount3` on `PATH`.
pub(crate) fn disk_faults_unavailable() -> Option<String> {
    if let Err(e) = squall_chaos::disk::available() {
        return Some(format!(
            "{e} (FUSE is needed for disk faults: load the fuse module, or give the user access to /dev/fuse)"
        ));
    }
    // The owner of /proc/self is the process's effective user.
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    let fusermount = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("fusermount3").is_file())
    });
    if !root && !fusermount {
        return Some(
            "not root and no fusermount3 on PATH, so FUSE filesystems cannot be mounted (apt-get install fuse3, \
             or run the agent as root)"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_chaos::disk::MountedDisk;

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
        assert!(out.done.is_empty(), "{out:?}");
        assert!(out.problems[0].contains("stays powered off"), "{out:?}");
        assert!(
            faults.powered_off(),
            "powered on under a process that may still write"
        );
        assert!(std::fs::read(&f).is_err(), "the disk answered while off");
        let e = out.clone().words(false, None).unwrap_err();
        assert!(e.starts_with("power cut incomplete: node 2"), "{e}");
        // Gone now: the same cut finishes.
        let out = finish_power_cut(
            vec![(2, faults.clone(), String::new())],
            |_| false,
            None,
            || 0,
        );
        assert_eq!(out.done.len(), 1, "{out:?}");
        assert!(out.problems.is_empty(), "{out:?}");
        assert!(!faults.powered_off());
        assert!(!f.exists(), "an unsynced new file survived the cut");
        let said = out.words(true, None).unwrap();
        assert!(
            said.starts_with("power cut of every node: node 2"),
            "{said}"
        );
    }
}
