//! Disk and clock faults of nodes on other hosts (`up --hosts --disk-faults`, issue 24): what the cluster's
//! `disk`, `powercut`, `clock` and `wipe` do through the agent of the node's host, which performs them with
//! the code a local cluster uses (`diskops`, `diskset`, `clockset`) on the fault filesystem it mounted and the
//! time shim it installed there. An answer says what happened on the host and names it; a refusal or a host
//! that did not answer is an `Err` naming the host.
//!
//! The controller keeps each host's last word on its nodes' faults in force ([`HostFaults`]): the dashboard,
//! `faults` and the guards read them without waiting for a host. Only the cluster changes them (through these
//! requests), so the word stays true, except the bytes left before a `full after N` disk fills, which are
//! those of the answer.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Procs, Remote};
use crate::cluster::command::NodeId;
use crate::cluster::diskops::CutOutcome;
use crate::command::clock::ClockAction;
use crate::command::disk::{DiskAction, TornMode};
use crate::remote::protocol::{Answer, ClockOp, DiskOp, Op};

/// A power cut waits up to 10 s for each node to be reaped on its host: its answer may take that long.
const CUT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The disk and clock faults in force on the nodes on hosts, as their agents last answered.
#[derive(Default)]
pub(super) struct HostFaults(Mutex<BTreeMap<NodeId, NodeFaults>>);

#[derive(Default, Clone)]
struct NodeFaults {
    /// The disk's faults in words (`slow +400ms (syncs)`, `stalled`).
    disk: Vec<String>,
    /// The clock in words; `None` when true.
    clock: Option<String>,
}

impl HostFaults {
    fn update(&self, id: NodeId, f: impl FnOnce(&mut NodeFaults)) {
        f(self.0.lock().unwrap().entry(id).or_default());
    }

    fn get(&self, id: NodeId) -> NodeFaults {
        self.0.lock().unwrap().get(&id).cloned().unwrap_or_default()
    }
}

impl Remote {
    /// Node `id`'s host's label.
    fn label_of(&self, id: NodeId) -> Result<String, String> {
        self.agent_of(id).map(|(_, a)| a.label.clone())
    }
}

/// What a request to a host answered when it was something else than asked for.
fn unexpected(label: &str, what: &str, other: &Answer) -> String {
    format!("host {label}: the agent answered {what} with {other:?}")
}

impl Procs {
    fn on_hosts(&self) -> Result<&Remote, String> {
        match self {
            Procs::Remote(r) => Ok(r),
            Procs::Local(_) => Err("the nodes run on this machine, not on other hosts".into()),
        }
    }

    /// Asks every host whether it can serve `--disk-faults` (FUSE for the disks, squall's time shim for the
    /// clocks), before any node starts. `Err` (for a person) names every host that cannot and why.
    pub(in crate::cluster) async fn check_disk_faults(&self) -> Result<(), String> {
        let r = self.on_hosts()?;
        let mut hosts = Vec::new();
        for (h, a) in r.agents.iter().enumerate() {
            hosts.push((a.label.clone(), r.client(h)?));
        }
        crate::remote::connect::check_disk_faults(hosts.into_iter()).await
    }

    /// Mounts node `id`'s fault filesystem on its host (`node_dir/disk` served at `node_dir/data`) and readies
    /// its faked clock there, before its launch. Returns the feed's notes (what the mount found left by an
    /// agent that died while mounted) and the environment the node launches with (the shim preloaded).
    pub(in crate::cluster) async fn prepare_on_host(
        &self,
        id: NodeId,
        node_dir: &Path,
    ) -> Result<(Vec<String>, Vec<(OsString, OsString)>), String> {
        let r = self.on_hosts()?;
        let label = r.label_of(id)?;
        let mount = Op::Disk {
            node: id,
            action: DiskOp::Mount {
                backing: node_dir.join("disk").display().to_string(),
                data_dir: node_dir.join("data").display().to_string(),
            },
        };
        let notes = match r.call(id, mount).await? {
            Answer::Notes { notes } => notes
                .into_iter()
                .map(|n| format!("host {label}: {n}"))
                .collect(),
            other => return Err(unexpected(&label, "a mount", &other)),
        };
        let prepare = Op::Clock {
            node: id,
            action: ClockOp::Prepare {
                node_dir: node_dir.display().to_string(),
            },
        };
        let env = match r.call(id, prepare).await? {
            Answer::Env { env } => env
                .into_iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            other => return Err(unexpected(&label, "a clock's preparation", &other)),
        };
        r.host_faults.update(id, |f| *f = NodeFaults::default());
        Ok((notes, env))
    }

    /// Sets `action` on node `id`'s disk on its host (`seed` for a flip's random choices, which never pick a
    /// file of `not_data`; `what` follows the node's id in the words). Returns the words, prefixed with the
    /// host, and for a flip the byte offset it hit.
    pub(in crate::cluster) async fn disk_on_host(
        &self,
        id: NodeId,
        action: &DiskAction,
        seed: u64,
        not_data: &[PathBuf],
        what: &str,
    ) -> Result<(String, Option<u64>), String> {
        let r = self.on_hosts()?;
        let label = r.label_of(id)?;
        let op = Op::Disk {
            node: id,
            action: DiskOp::Fault {
                action: action.clone(),
                seed,
                not_data: not_data.iter().map(|p| p.display().to_string()).collect(),
                what: what.to_string(),
            },
        };
        match r.call(id, op).await? {
            Answer::Disk {
                said,
                faults,
                flipped,
            } => {
                r.host_faults.update(id, |f| f.disk = faults);
                Ok((format!("host {label}: {said}"), flipped.map(|(_, at)| at)))
            }
            other => Err(unexpected(&label, "a disk fault", &other)),
        }
    }

    /// Disk loss on node `id`'s host: its process SIGKILLed and reaped, its data deleted on its fault
    /// filesystem.
    pub(in crate::cluster) async fn wipe_on_host(&self, id: NodeId) -> Result<(), String> {
        let r = self.on_hosts()?;
        let op = Op::Disk {
            node: id,
            action: DiskOp::Wipe,
        };
        r.call(id, op).await.map(drop)
    }

    /// Cuts the power of `nodes` (each with the words after its id) on their hosts, every host at once: on
    /// each, the nodes' disks stop answering, their processes are SIGKILLed and reaped, and what was not
    /// durable is thrown away (torn as `torn` says, each host's cut seeded with one `seed()`). What each host
    /// did and what it did not are named with the host.
    pub(in crate::cluster) async fn power_cut_on_hosts(
        &self,
        nodes: Vec<(NodeId, String)>,
        torn: Option<TornMode>,
        mut seed: impl FnMut() -> u64,
    ) -> CutOutcome {
        let mut out = CutOutcome::default();
        let r = match self.on_hosts() {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(e);
                return out;
            }
        };
        let mut per_host: BTreeMap<usize, Vec<(NodeId, String)>> = BTreeMap::new();
        for (id, what) in nodes {
            match r.agent_of(id) {
                Ok((h, _)) => per_host.entry(h).or_default().push((id, what)),
                Err(e) => out.problems.push(e),
            }
        }
        let cuts = per_host.into_iter().map(|(h, nodes)| {
            let op = Op::PowerCut {
                nodes: nodes.iter().map(|(id, _)| *id).collect(),
                torn,
                // Drawn only for a torn cut, as a local cut draws one per disk only then.
                seed: if torn.is_some() { seed() } else { 0 },
            };
            let agent = &r.agents[h];
            let client = r.client(h);
            async move {
                let answer = match client {
                    Ok(c) => c.call(op, CUT_DEADLINE).await,
                    Err(e) => Err(e),
                };
                (agent, nodes, answer)
            }
        });
        for (agent, nodes, answer) in futures::future::join_all(cuts).await {
            let label = &agent.label;
            let ids = || {
                nodes
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match answer {
                Ok(Answer::PowerCut { done, problems }) => {
                    for line in done {
                        // "node N: report" → "host H: node N (leader, term 4): report".
                        let named = nodes.iter().find_map(|(id, what)| {
                            let rest = line.strip_prefix(&format!("node {id}:"))?;
                            Some(format!("host {label}: node {id}{what}:{rest}"))
                        });
                        out.done
                            .push(named.unwrap_or_else(|| format!("host {label}: {line}")));
                    }
                    out.problems
                        .extend(problems.into_iter().map(|p| format!("host {label}: {p}")));
                }
                Ok(other) => out.problems.push(format!(
                    "{} (nodes {}: not known to be cut)",
                    unexpected(label, "a power cut", &other),
                    ids()
                )),
                Err(e) => out
                    .problems
                    .push(format!("{e} (nodes {}: not known to be cut)", ids())),
            }
        }
        out
    }

    /// Applies `action` to node `id`'s faked clock on its host; the words, prefixed with the host.
    pub(in crate::cluster) async fn clock_on_host(
        &self,
        id: NodeId,
        action: &ClockAction,
    ) -> Result<String, String> {
        let r = self.on_hosts()?;
        let label = r.label_of(id)?;
        let op = Op::Clock {
            node: id,
            action: ClockOp::Set(action.clone()),
        };
        match r.call(id, op).await? {
            Answer::Clock { said, now } => {
                r.host_faults.update(id, |f| f.clock = now);
                Ok(format!("host {label}: {said}"))
            }
            other => Err(unexpected(&label, "a clock fault", &other)),
        }
    }

    /// Node `id`'s disk faults in force on its host, in words, as last answered (empty here).
    pub(in crate::cluster) fn host_disk_faults(&self, id: NodeId) -> Vec<String> {
        match self {
            Procs::Remote(r) => r.host_faults.get(id).disk,
            Procs::Local(_) => Vec::new(),
        }
    }

    /// Node `id`'s clock on its host in words, as last answered; `None` when true (and here).
    pub(in crate::cluster) fn host_clock(&self, id: NodeId) -> Option<String> {
        match self {
            Procs::Remote(r) => r.host_faults.get(id).clock,
            Procs::Local(_) => None,
        }
    }
}
