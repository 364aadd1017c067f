//! Disk faults of `squall up --disk-faults`: every node's data directory is a fault filesystem
//! ([`squall_chaos::disk`]) over `node-N/disk` in the cluster directory. This module performs the `powercut`
//! and `disk` commands ([`crate::command::disk`] holds them as values).
//!
//! ```text
//! powercut NODE|leader|all [torn]
//! disk NODE slow DUR [sync] | stall | fail-fsync [once|always] | full [after BYTES] | flip [FILE] | heal
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use squall_chaos::disk::{DiskFaults, MountedDisk};

pub use crate::command::disk::{
    DiskAction, FsyncFailure, HELP, PowerTarget, parse_disk, parse_powercut,
};

use super::command::{Command, NodeId};
use super::{Cluster, node_name};
use crate::state::Event;

/// The mounted fault filesystems, by node (empty without `--disk-faults`).
#[derive(Default)]
pub(super) struct Disks {
    mounts: Mutex<BTreeMap<NodeId, MountedDisk>>,
}

impl Disks {
    /// Mounts node `id`'s fault filesystem: `backing` served at `data_dir`.
    pub(super) fn mount(&self, id: NodeId, backing: &Path, data_dir: &Path) -> anyhow::Result<()> {
        let m = MountedDisk::mount(backing, data_dir)?;
        self.mounts.lock().unwrap().insert(id, m);
        Ok(())
    }

    fn faults(&self, id: NodeId) -> Option<DiskFaults> {
        self.mounts.lock().unwrap().get(&id).map(|m| m.faults())
    }

    /// Whether disk faults are on.
    pub(super) fn enabled(&self) -> bool {
        !self.mounts.lock().unwrap().is_empty()
    }

    /// Heals every node's disk; returns the nodes that had a fault.
    pub(super) fn heal_all(&self) -> Vec<NodeId> {
        let mounts = self.mounts.lock().unwrap();
        let mut healed = Vec::new();
        for (id, m) in mounts.iter() {
            let f = m.faults();
            if !f.active().is_empty() {
                healed.push(*id);
            }
            f.heal();
        }
        healed
    }

    /// Unmounts every fault filesystem (the nodes must be stopped first). Returns what could not be unmounted.
    pub(super) fn unmount_all(&self) -> Vec<String> {
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap());
        mounts
            .into_values()
            .filter_map(|m| m.unmount().err().map(|e| e.to_string()))
            .collect()
    }

    /// Disk faults on node `id`, in words.
    pub(super) fn describe(&self, id: NodeId) -> Vec<String> {
        self.faults(id)
            .map(|f| f.active().iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    }

    /// Operation counts and handler time per FUSE operation, summed over every node.
    pub(super) fn op_stats(&self) -> Vec<squall_chaos::disk::OpStat> {
        let mounts = self.mounts.lock().unwrap();
        let mut total: Vec<squall_chaos::disk::OpStat> = Vec::new();
        for m in mounts.values() {
            for s in m.faults().op_stats() {
                match total.iter_mut().find(|t| t.op == s.op) {
                    Some(t) => {
                        t.count += s.count;
                        t.handler_nanos += s.handler_nanos;
                    }
                    None => total.push(s),
                }
            }
        }
        total
    }
}

const OFF: &str = "disk faults are off: start the cluster with `squall up --disk-faults`";

impl Cluster {
    /// Operation counts and handler time per FUSE operation, summed over every node (empty without
    /// `--disk-faults`).
    pub fn disk_op_stats(&self) -> Vec<squall_chaos::disk::OpStat> {
        self.inner.disks.op_stats()
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
                        disk.set_slow(delay, syncs_only);
                        format!(
                            "slow node {id}'s disk{what}: {} +{} ms",
                            if syncs_only {
                                "every sync"
                            } else {
                                "every operation"
                            },
                            delay.as_millis()
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
                    DiskAction::Flip(file) => {
                        let seed = self.inner.spec.seed ^ self.now_ms();
                        let flipped = disk
                            .flip(file.as_deref().map(Path::new), None, seed)
                            .map_err(|e| e.to_string())?;
                        format!("corrupt node {id}'s data{what}: {flipped}")
                    }
                    DiskAction::Heal => {
                        disk.heal();
                        format!("heal node {id}'s disk")
                    }
                };
                self.report_node_faults(id);
                Ok(effect)
            }
            other => Err(format!("`{other}` is not a disk command")),
        }
    }

    /// Cuts the power of one node or of all at once: every disk stops answering (stalled I/O fails), the
    /// processes are SIGKILLed and reaped, then everything not durable is thrown away. The nodes stay down
    /// until restarted.
    async fn power_cut(&self, target: PowerTarget, torn: bool) -> Result<String, String> {
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
        for &id in &ids {
            match self.inner.sup.kill(&node_name(id)) {
                Ok(()) | Err(squall_chaos::ChaosError::NotRunning { .. }) => {}
                Err(e) => {
                    for (_, d, _) in &disks {
                        let _ = d.power_on(None);
                    }
                    return Err(e.to_string());
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while ids.iter().any(|&id| self.alive(id)) {
            if Instant::now() > deadline {
                let alive: Vec<_> = ids.iter().filter(|&&id| self.alive(id)).collect();
                for (_, d, _) in &disks {
                    let _ = d.power_on(None);
                }
                return Err(format!(
                    "nodes {alive:?} were not reaped within 10 s of SIGKILL"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        for (id, d, what) in disks {
            let seed = torn.then(|| self.inner.spec.seed ^ self.now_ms() ^ id);
            match d.power_on(seed) {
                Ok(report) => parts.push(format!("node {id}{what}: {report}")),
                Err(e) => errors.push(format!("node {id}: {e}")),
            }
        }
        if !errors.is_empty() {
            return Err(format!(
                "power cut, but rolling back failed: {}",
                errors.join("; ")
            ));
        }
        Ok(format!(
            "power cut{}{}: {}",
            if target == PowerTarget::All {
                " of every node"
            } else {
                ""
            },
            if torn { " (torn writes)" } else { "" },
            parts.join("; ")
        ))
    }

    /// Wipes node `id`'s data on its fault filesystem (disk loss): the node must be stopped.
    pub(super) async fn wipe_disk(&self, id: NodeId) -> anyhow::Result<()> {
        let disk = self.disk_of(id).map_err(|e| anyhow::anyhow!(e))?;
        match self.inner.sup.kill(&node_name(id)) {
            Ok(()) | Err(squall_chaos::ChaosError::NotRunning { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive(id) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "node {id} was not reaped within 10 s of SIGKILL"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        disk.wipe()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Target;

    #[test]
    fn parses_the_vocabulary() {
        let p = |s: &str| super::super::command::parse(s);
        assert_eq!(
            p("powercut 2"),
            Ok(Command::PowerCut(PowerTarget::One(Target::Node(2)), false))
        );
        assert_eq!(
            p("powercut leader torn"),
            Ok(Command::PowerCut(PowerTarget::One(Target::Leader), true))
        );
        assert_eq!(
            p("powercut all"),
            Ok(Command::PowerCut(PowerTarget::All, false))
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
                DiskAction::Flip(Some("wal.log".into()))
            ))
        );
        assert_eq!(
            p("disk leader heal"),
            Ok(Command::Disk(Target::Leader, DiskAction::Heal))
        );
        // What is printed parses back to the same command.
        for s in [
            "powercut all torn",
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
        assert!(p("disk 2").contains("needs a fault"));
        assert!(p("disk 2 melt").contains("unknown disk fault `melt`"));
        assert!(p("disk 2 slow soon").contains("not a duration"));
        assert!(p("disk 2 slow 0ms").contains("above 0"));
        assert!(p("disk 2 full after lots").contains("not a byte count"));
        assert!(p("disk x stall").contains("`x` is not a node id"));
    }
}
