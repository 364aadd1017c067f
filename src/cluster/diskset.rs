//! The mounted fault filesystems of a session's nodes, by node, and the seeds of random disk faults. The
//! `powercut` and `disk` commands are performed in [`super::disk`]; this room holds the state they change, so
//! the cluster's handle can own it without depending on the commands' code.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use squall_chaos::disk::{DiskFaults, MountedDisk};

use super::command::NodeId;

/// The mounted fault filesystems, by node (empty without `--disk-faults`).
#[derive(Default)]
pub(crate) struct Disks {
    mounts: Mutex<BTreeMap<NodeId, MountedDisk>>,
    /// Random disk faults (flips, torn cuts) chosen so far this session.
    chosen: AtomicU64,
}

/// The seed of the `n`th random disk fault of a session with seed `seed` (SplitMix64's finaliser over the
/// pair), so consecutive faults get unrelated seeds.
pub(crate) fn fault_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Refuses a cluster directory whose node data would be hidden or split by this session's choice of
/// `--disk-faults`: with it, each node's data lives in `node-N/disk` (served at `node-N/data`); without it, in
/// `node-N/data` itself. Starting the other way would start the node empty beside its real data and let it
/// write a second, divergent log.
pub(super) fn check_layout(
    node_dirs: &[(NodeId, std::path::PathBuf)],
    disk_faults: bool,
) -> Result<(), String> {
    let non_empty = |p: &Path| {
        std::fs::read_dir(p)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    for (id, dir) in node_dirs {
        let (disk, data) = (dir.join("disk"), dir.join("data"));
        if !disk_faults && non_empty(&disk) {
            return Err(format!(
                "{} holds node {id}'s data from a session with --disk-faults: add --disk-faults to serve it \
                 (without it node {id} would start empty in {} and write a second log beside its real one)",
                disk.display(),
                data.display()
            ));
        }
        // A dead mount left by a killed squall cannot be listed; it is detached when mounting.
        if disk_faults && !non_empty(&disk) && non_empty(&data) {
            return Err(format!(
                "{} holds node {id}'s data from a session without --disk-faults: drop --disk-faults to serve \
                 it, or move it under the fault filesystem first (mv {} {})",
                data.display(),
                data.display(),
                disk.display()
            ));
        }
    }
    Ok(())
}

impl Disks {
    /// Mounts node `id`'s fault filesystem: `backing` served at `data_dir`. Returns what it found left by a
    /// squall that died while mounted.
    pub(crate) fn mount(
        &self,
        id: NodeId,
        backing: &Path,
        data_dir: &Path,
    ) -> anyhow::Result<squall_chaos::disk::Leftovers> {
        let m = MountedDisk::mount(backing, data_dir)?;
        let leftovers = m.leftovers().clone();
        self.mounts.lock().unwrap().insert(id, m);
        Ok(leftovers)
    }

    /// The seed for the next random disk fault.
    pub(crate) fn next_seed(&self, seed: u64) -> u64 {
        fault_seed(seed, self.chosen.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub(crate) fn faults(&self, id: NodeId) -> Option<DiskFaults> {
        self.mounts.lock().unwrap().get(&id).map(|m| m.faults())
    }

    /// Whether node `id`'s disk is stalled (its I/O blocks until healed, so its process cannot exit).
    pub(crate) fn stalled(&self, id: NodeId) -> bool {
        self.faults(id).is_some_and(|f| {
            f.active()
                .iter()
                .any(|a| matches!(a, squall_chaos::disk::ActiveFault::Stall))
        })
    }

    /// Whether disk faults are on.
    pub(crate) fn enabled(&self) -> bool {
        !self.mounts.lock().unwrap().is_empty()
    }

    /// Heals every node's disk; returns the nodes that had a fault.
    pub(crate) fn heal_all(&self) -> Vec<NodeId> {
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
    pub(crate) fn unmount_all(&self) -> Vec<String> {
        let mounts = std::mem::take(&mut *self.mounts.lock().unwrap());
        mounts
            .into_values()
            .filter_map(|m| m.unmount().err().map(|e| e.to_string()))
            .collect()
    }

    /// Disk faults on node `id`, in words.
    pub(crate) fn describe(&self, id: NodeId) -> Vec<String> {
        self.faults(id)
            .map(|f| f.active().iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    }

    /// Operation counts and handler time per FUSE operation, summed over every node.
    pub(crate) fn op_stats(&self) -> Vec<squall_chaos::disk::OpStat> {
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
