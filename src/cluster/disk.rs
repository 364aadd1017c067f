//! Disk faults of `squall up --disk-faults`: every node's data directory is a fault filesystem
//! ([`squall_chaos::disk`]) over `node-N/disk` in the cluster directory. This module parses the `powercut`
//! and `disk` commands and performs them.
//!
//! ```text
//! powercut NODE|leader|all [torn]
//! disk NODE slow DUR [sync] | stall | fail-fsync [once|always] | full [after BYTES] | flip [FILE] | heal
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use squall_chaos::disk::{DiskFaults, FsyncFailure, MountedDisk};

use super::command::{Command, NodeId, Target};
use super::{Cluster, node_name};
use crate::state::Event;

/// Which nodes lose power.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerTarget {
    /// One node (or the leader).
    One(Target),
    /// Every node at once: a coordinated power failure.
    All,
}

impl std::fmt::Display for PowerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PowerTarget::One(t) => t.fmt(f),
            PowerTarget::All => f.write_str("all"),
        }
    }
}

/// A disk fault to set on one node, or `Heal` to remove them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskAction {
    /// Every operation (or only syncs) takes this much longer.
    Slow {
        /// Added time per operation.
        delay: Duration,
        /// Only file and directory syncs are slowed.
        syncs_only: bool,
    },
    /// I/O blocks until healed; the process keeps running.
    Stall,
    /// The next (or every) fsync/fdatasync fails with EIO, dropping that file's unsynced data.
    FailFsync(FsyncFailure),
    /// Writes fail with ENOSPC after this many more bytes.
    Full {
        /// Bytes still allowed.
        after: u64,
    },
    /// Flip one bit at a random offset of this file (relative to the data directory) or of a random file.
    Flip(Option<String>),
    /// Remove every disk fault of the node.
    Heal,
}

impl std::fmt::Display for DiskAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskAction::Slow { delay, syncs_only } => write!(
                f,
                "slow {}ms{}",
                delay.as_millis(),
                if *syncs_only { " sync" } else { "" }
            ),
            DiskAction::Stall => f.write_str("stall"),
            DiskAction::FailFsync(FsyncFailure::Once) => f.write_str("fail-fsync once"),
            DiskAction::FailFsync(FsyncFailure::Always) => f.write_str("fail-fsync always"),
            DiskAction::Full { after } => write!(f, "full after {after}"),
            DiskAction::Flip(None) => f.write_str("flip"),
            DiskAction::Flip(Some(file)) => write!(f, "flip {file}"),
            DiskAction::Heal => f.write_str("heal"),
        }
    }
}

/// Help for the console.
pub const HELP: &str = "powercut N|leader|all [torn], disk N slow 50ms [sync]|stall|fail-fsync [once|always]|\
full [after BYTES]|flip [FILE]|heal";

fn node_target(word: Option<&str>, cmd: &str) -> Result<Target, String> {
    match word {
        None => Err(format!(
            "`{cmd}` needs a node id (or `leader`), e.g. `{cmd} 2 …`"
        )),
        Some("leader") => Ok(Target::Leader),
        Some(w) => w
            .parse::<NodeId>()
            .map(Target::Node)
            .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)")),
    }
}

/// Parses the words after `powercut`.
pub fn parse_powercut(rest: &[&str]) -> Result<Command, String> {
    let target = match rest.first().copied() {
        Some("all") => PowerTarget::All,
        w => PowerTarget::One(node_target(w, "powercut")?),
    };
    match &rest[1..] {
        [] => Ok(Command::PowerCut(target, false)),
        ["torn"] => Ok(Command::PowerCut(target, true)),
        other => Err(format!(
            "`powercut` takes a node (or leader, or all) and optionally `torn`, not `{}`",
            other.join(" ")
        )),
    }
}

/// Parses the words after `disk`.
pub fn parse_disk(rest: &[&str]) -> Result<Command, String> {
    let target = node_target(rest.first().copied(), "disk")?;
    let usage = "use `disk N slow 50ms [sync]`, `stall`, `fail-fsync [once|always]`, `full [after BYTES]`, \
                 `flip [FILE]` or `heal`";
    let words = rest.get(1..).unwrap_or(&[]);
    let action = match words {
        ["slow", d, more @ ..] => {
            let delay = humantime::parse_duration(d)
                .map_err(|_| format!("`{d}` is not a duration like 50ms"))?;
            let syncs_only = match more {
                [] => false,
                ["sync"] => true,
                other => {
                    return Err(format!(
                        "`disk N slow {d}` takes only `sync` after it, not `{}`",
                        other.join(" ")
                    ));
                }
            };
            if delay.is_zero() {
                return Err("a slow disk needs a delay above 0 (`disk N heal` removes it)".into());
            }
            DiskAction::Slow { delay, syncs_only }
        }
        ["stall"] => DiskAction::Stall,
        ["fail-fsync"] | ["fail-fsync", "once"] => DiskAction::FailFsync(FsyncFailure::Once),
        ["fail-fsync", "always"] => DiskAction::FailFsync(FsyncFailure::Always),
        ["full"] => DiskAction::Full { after: 0 },
        ["full", "after", n] => DiskAction::Full {
            after: parse_bytes(n)?,
        },
        ["flip"] => DiskAction::Flip(None),
        ["flip", file] => DiskAction::Flip(Some(file.to_string())),
        ["heal"] => DiskAction::Heal,
        [] => return Err(format!("`disk` needs a fault; {usage}")),
        other => return Err(format!("unknown disk fault `{}`; {usage}", other.join(" "))),
    };
    Ok(Command::Disk(target, action))
}

/// `4096`, `64k`, `10KiB`, `1m`, `2MB`: a byte count.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let mult = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` is not a byte count like 4096, 64k or 1m")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a byte count like 4096, 64k or 1m"))
}

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
                        disk.fail_fsync(how);
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
