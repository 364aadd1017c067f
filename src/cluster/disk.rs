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

use std::path::Path;

use squall_chaos::disk::DiskFaults;

pub use crate::command::disk::{
    DiskAction, FsyncFailure, HELP, PowerTarget, TornMode, parse_disk, parse_powercut,
};

use super::Cluster;
use super::backend::Procs;
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
        for text in super::diskops::leftover_notes(id, data_dir, &left) {
            self.emit(Event::Note { text });
        }
        Ok(())
    }

    /// Mounts node `id`'s fault filesystem on its host (`node_dir` is its directory there) and readies its
    /// faked clock there; says in the feed what the mount cleaned up. Returns the environment the node
    /// launches with.
    pub(super) async fn mount_on_host(
        &self,
        id: NodeId,
        node_dir: &Path,
    ) -> Result<Vec<(std::ffi::OsString, std::ffi::OsString)>, String> {
        let (notes, env) = self.inner.procs.prepare_on_host(id, node_dir).await?;
        for text in notes {
            self.emit(Event::Note { text });
        }
        Ok(env)
    }

    fn disk_of(&self, id: NodeId) -> Result<DiskFaults, String> {
        self.inner.disks.faults(id).ok_or_else(|| OFF.to_string())
    }

    /// Whether disk (and clock) faults are on: the nodes' data directories are fault filesystems, here or on
    /// their hosts.
    pub(super) fn disk_faults_on(&self) -> bool {
        self.inner.disks.enabled() || (self.on_hosts() && self.inner.spec.disk_faults)
    }

    /// Whether the nodes run on other hosts, their disks and clocks faulted through the agents.
    fn on_hosts(&self) -> bool {
        self.inner.procs.is_remote()
    }

    /// Node `id`'s disk faults in force, in words (here, or on its host as its agent last said).
    pub(super) fn node_disk_faults(&self, id: NodeId) -> Vec<String> {
        if self.on_hosts() {
            self.inner.procs.host_disk_faults(id)
        } else {
            self.inner.disks.describe(id)
        }
    }

    /// Node `id`'s clock in words; `None` when true.
    pub(super) fn node_clock(&self, id: NodeId) -> Option<String> {
        if self.on_hosts() {
            self.inner.procs.host_clock(id)
        } else {
            self.inner.clocks.describe(id)
        }
    }

    /// Whether node `id`'s disk is stalled (its process cannot exit until the disk is healed).
    pub(super) fn disk_stalled(&self, id: NodeId) -> bool {
        if self.on_hosts() {
            // `squall_chaos::disk::ActiveFault::Stall` in words.
            self.inner
                .procs
                .host_disk_faults(id)
                .iter()
                .any(|f| f == "stalled")
        } else {
            self.inner.disks.stalled(id)
        }
    }

    /// Heals every node's disk and clock; returns the nodes that had a fault. On hosts, every node with a
    /// fault in force is healed through its agent; a host that refuses is named in the `Err`, with what was
    /// healed.
    pub(super) async fn heal_disks_and_clocks(&self) -> Result<Vec<NodeId>, String> {
        if !self.on_hosts() {
            let mut healed = self.inner.disks.heal_all();
            healed.extend(self.inner.clocks.heal_all());
            healed.sort_unstable();
            healed.dedup();
            return Ok(healed);
        }
        let mut healed = Vec::new();
        let mut failed = Vec::new();
        for id in self.node_ids() {
            let procs = &self.inner.procs;
            let mut had = false;
            if !procs.host_disk_faults(id).is_empty() {
                had = true;
                let heal = procs.disk_on_host(id, &DiskAction::Heal, 0, &[], "");
                if let Err(e) = heal.await {
                    failed.push(e);
                }
            }
            if procs.host_clock(id).is_some() {
                had = true;
                if let Err(e) = procs
                    .clock_on_host(id, &super::clock::ClockAction::Heal)
                    .await
                {
                    failed.push(e);
                }
            }
            if had {
                healed.push(id);
            }
        }
        if failed.is_empty() {
            Ok(healed)
        } else {
            for &id in &healed {
                self.report_node_faults(id);
            }
            Err(format!(
                "heal incomplete: {}{}",
                failed.join("; "),
                if healed.is_empty() {
                    String::new()
                } else {
                    format!(" (asked of nodes {})", super::membership::id_list(&healed))
                }
            ))
        }
    }

    /// Tells the dashboard which disk and clock faults are in force on `id`.
    pub(super) fn report_node_faults(&self, id: NodeId) {
        self.emit(Event::NodeFaults {
            node: id,
            disk: self.node_disk_faults(id),
            clock: self.node_clock(id),
        });
    }

    /// Performs `powercut` and `disk` commands.
    pub(super) async fn perform_disk(&self, cmd: Command) -> Result<String, String> {
        match cmd {
            Command::PowerCut(target, torn) => self.power_cut(target, torn).await,
            Command::Disk(t, action) if self.on_hosts() => {
                let id = self.resolve(t)?;
                let (effect, _) = self.disk_on_host(id, &action).await?;
                Ok(effect)
            }
            Command::Disk(t, action) => {
                let id = self.resolve(t)?;
                let disk = self.disk_of(id)?;
                let what = self.describe_node(id);
                let seed = || self.inner.disks.next_seed(self.inner.spec.seed);
                let (effect, _) = super::diskops::apply(
                    &self.inner.procs,
                    id,
                    &disk,
                    &action,
                    &what,
                    seed,
                    &self.inner.spec.kind.not_data,
                )?;
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
        let action = DiskAction::Flip {
            file: file.clone(),
            at,
        };
        let (offset, said) = if self.on_hosts() {
            let (said, offset) = self.disk_on_host(id, &action).await?;
            let offset = offset.ok_or_else(|| format!("no bit of node {id}'s data was flipped"))?;
            (offset, said)
        } else {
            let disk = self.disk_of(id)?;
            let (flipped, said) = self.flip_bit(id, &disk, file.as_deref(), at)?;
            self.report_node_faults(id);
            (flipped.offset, said)
        };
        let at = match file {
            Some(_) => Some(offset),
            None => at,
        };
        Ok((Command::Disk(t, DiskAction::Flip { file, at }), said))
    }

    /// Sets `action` on node `id`'s disk on its host, with the seed and the `not_data` files a local disk
    /// would get, and reports the faults in force to the dashboard. The words and a flip's offset.
    async fn disk_on_host(
        &self,
        id: NodeId,
        action: &DiskAction,
    ) -> Result<(String, Option<u64>), String> {
        if !self.disk_faults_on() {
            return Err(OFF.to_string());
        }
        // Drawn only for a flip, as a local disk draws it.
        let seed = match action {
            DiskAction::Flip { .. } => self.inner.disks.next_seed(self.inner.spec.seed),
            _ => 0,
        };
        let what = self.describe_node(id);
        let out = self
            .inner
            .procs
            .disk_on_host(id, action, seed, &self.inner.spec.kind.not_data, &what)
            .await?;
        self.report_node_faults(id);
        Ok(out)
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
        let action = DiskAction::Flip {
            file: file.map(str::to_string),
            at,
        };
        let seed = || self.inner.disks.next_seed(self.inner.spec.seed);
        let (said, flipped) = super::diskops::apply(
            &self.inner.procs,
            id,
            disk,
            &action,
            &what,
            seed,
            &self.inner.spec.kind.not_data,
        )?;
        let flipped = flipped.ok_or_else(|| format!("no bit of node {id}'s data was flipped"))?;
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
        if self.on_hosts() {
            if !self.disk_faults_on() {
                return Err(OFF.to_string());
            }
            let nodes = ids.iter().map(|&id| (id, self.describe_node(id))).collect();
            let outcome = self
                .inner
                .procs
                .power_cut_on_hosts(nodes, torn, || {
                    self.inner.disks.next_seed(self.inner.spec.seed)
                })
                .await;
            return outcome.words(target == PowerTarget::All, torn);
        }
        let mut disks = Vec::new();
        for &id in &ids {
            disks.push((id, self.disk_of(id)?, self.describe_node(id)));
        }
        let outcome = super::diskops::cut_power(&self.inner.procs, disks, torn, || {
            self.inner.disks.next_seed(self.inner.spec.seed)
        })
        .await;
        outcome.words(target == PowerTarget::All, torn)
    }

    /// Wipes node `id`'s data on its fault filesystem (disk loss): the node must be stopped.
    pub(super) async fn wipe_disk(&self, id: NodeId) -> anyhow::Result<()> {
        if self.on_hosts() {
            return self
                .inner
                .procs
                .wipe_on_host(id)
                .await
                .map_err(|e| anyhow::anyhow!(e));
        }
        let disk = self.disk_of(id).map_err(|e| anyhow::anyhow!(e))?;
        super::diskops::wipe(&self.inner.procs, id, &disk)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }
}

/// The disk actions ([`super::diskops`]) reach the cluster's processes, here or on their hosts, through this.
impl super::diskops::Nodes for Procs {
    fn proc_state(&self, id: NodeId) -> Option<squall_chaos::ProcState> {
        self.state(id)
    }

    fn sigkill(&self, id: NodeId) -> Result<(), String> {
        self.kill_now(id).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::super::diskset::{Disks, check_layout, fault_seed};
    use super::*;
    use crate::command::Target;
    use squall_chaos::disk::MountedDisk;
    use std::time::Duration;

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
