//! Reaching every host of a cluster: the hosts from `--hosts FILE` or `--host ID=DEST,...`, checked against
//! the cluster's nodes, each with its agent started over ssh; all or none (a host that cannot be reached stops
//! the agents that did start, so nothing is left running anywhere).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::AgentClient;
use super::hosts::Hosts;
use super::protocol::{Answer, Op};
use super::ssh::{self, Connection, SshHost};

/// How long a host gets to say what it can serve.
const CAPABILITIES_DEADLINE: Duration = Duration::from_secs(10);

/// How long an agent gets to stop its nodes when asked.
pub(super) const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The hosts a command line names, if it names any: `Ok(None)` without `--hosts`/`--host`. `nodes` are the
/// cluster's first nodes; ids beyond them up to `most` may be named too (places for later `add`s). `Err` is
/// for a person (exit 2): the file, line and field at fault and what to do.
pub fn hosts_of(
    file: Option<&Path>,
    flag: Option<&str>,
    nodes: &[u64],
    most: u64,
) -> Result<Option<Hosts>, String> {
    match (file, flag) {
        (Some(f), _) => Hosts::read(f, nodes, most)
            .map(Some)
            .map_err(|e| e.to_string()),
        (None, Some(v)) => Hosts::parse_flag(v, nodes, most)
            .map(Some)
            .map_err(|e| e.to_string()),
        (None, None) => Ok(None),
    }
}

/// Every host's agent, started and greeted.
#[derive(Debug)]
pub struct Agents {
    /// Per host, in the hosts' order.
    pub hosts: Vec<(SshHost, Connection)>,
    pub(super) control_dir: PathBuf,
}

impl Agents {
    /// Agents already started (each with [`SshHost::connect`]) whose ssh control sockets are in `control_dir`
    /// (from [`ssh::control_dir`]; removed when they stop).
    pub fn from_connections(hosts: Vec<(SshHost, Connection)>, control_dir: PathBuf) -> Agents {
        Agents { hosts, control_dir }
    }

    /// Starts an agent on every host at once (copying squall there where needed; `say` reports it). `Err`
    /// names the host that failed and what to do; every agent that did start is stopped first.
    pub async fn start(hosts: &Hosts, say: &(dyn Fn(String) + Sync)) -> Result<Agents, String> {
        ssh::check_client()?;
        let control_dir = ssh::control_dir()?;
        let all: Vec<SshHost> = hosts
            .hosts
            .iter()
            .map(|h| SshHost::new(h.clone(), &control_dir))
            .collect();
        let results = connect_all(&all, say).await;
        let mut up = Vec::new();
        let mut errors = Vec::new();
        for (h, r) in all.into_iter().zip(results) {
            match r {
                Ok(c) => up.push((h, c)),
                Err(e) => errors.push((h, e)),
            }
        }
        let agents = Agents {
            hosts: up,
            control_dir,
        };
        if errors.is_empty() {
            let here = super::loopback_id();
            let entries: Vec<(&super::hosts::Host, &str)> = agents
                .hosts
                .iter()
                .map(|(h, c)| {
                    let lo = match &c.hello {
                        super::protocol::Answer::Hello { loopback, .. } => loopback.as_str(),
                        _ => "",
                    };
                    (&h.host, lo)
                })
                .collect();
            let refused = off_this_loopback(&entries, &here);
            if refused.is_empty() {
                return Ok(agents);
            }
            agents.stop().await;
            return Err(refused.join("\n"));
        }
        let failed: Vec<SshHost> = errors.iter().map(|(h, _)| h.clone()).collect();
        agents.stop().await;
        for h in failed {
            h.close_master().await;
        }
        // The failures themselves first. Then, for entries naming one dir, the advice: on one machine their
        // agents (and copies) collide, and the failure reads as another session's agent (tester 7's finding 6).
        // Which destinations are one machine ssh cannot say, so it is given only where it may be the cause: one
        // of the two failed after ssh reached it (never when ssh could not reach them: issue 24, `--host`).
        let reached = |label: &str| {
            errors
                .iter()
                .any(|(h, e)| h.host.label == label && !unreached(e))
        };
        let mut shared = Vec::new();
        for (i, a) in hosts.hosts.iter().enumerate() {
            for b in &hosts.hosts[i + 1..] {
                if a.dir == b.dir && (reached(&a.label) || reached(&b.label)) {
                    shared.push(format!(
                        "hosts {} and {} name the same dir {}: if they reach one machine, give each its own \
                         `dir`",
                        a.label, b.label, a.dir
                    ));
                }
            }
        }
        Err(errors
            .into_iter()
            .map(|(_, e)| e)
            .chain(shared)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Asks every host whether it can serve `--disk-faults` (FUSE for the disks, squall's time shim for the
    /// clocks). `Err` (for a person, exit 2) names each host that cannot, and why.
    pub async fn check_disk_faults(&self) -> Result<(), String> {
        check_disk_faults(
            self.hosts
                .iter()
                .map(|(h, c)| (h.host.label.clone(), c.client.clone())),
        )
        .await
    }

    /// Stops every agent (and so every node they run) and closes the ssh connections.
    pub async fn stop(self) {
        let mut masters = Vec::new();
        let stops = self.hosts.into_iter().map(|(h, c)| {
            masters.push(h);
            c.shutdown(STOP_DEADLINE)
        });
        futures::future::join_all(stops).await;
        for h in &masters {
            h.close_master().await;
        }
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

/// Connects every host of `all` (as [`SshHost::connect`]), in their order: entries of one destination (the
/// same `ssh`, `ssh_config` and `identity`: one machine) one after the other, so the second finds the binary
/// the first copied into the machine's cache and links it rather than copying it again (tester 9's finding 7);
/// other destinations at once.
async fn connect_all(
    all: &[SshHost],
    say: &(dyn Fn(String) + Sync),
) -> Vec<Result<super::ssh::Connection, String>> {
    let same = |a: &SshHost, b: &SshHost| {
        a.host.ssh == b.host.ssh
            && a.host.ssh_config == b.host.ssh_config
            && a.host.identity == b.host.identity
    };
    // Per destination, the indexes of its entries.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, h) in all.iter().enumerate() {
        match groups.iter_mut().find(|g| same(&all[g[0]], h)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let done = futures::future::join_all(groups.into_iter().map(|g| async move {
        let mut out = Vec::new();
        for i in g {
            out.push((i, all[i].connect(say).await));
        }
        out
    }))
    .await;
    let mut results: Vec<(usize, Result<super::ssh::Connection, String>)> =
        done.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Per host of `hosts` (each with the loopback its agent said it has, [`super::loopback_id`]) that names no
/// `address` and whose loopback is not `here` (this machine's): why it cannot run nodes, for a person (exit
/// 2). Its nodes would listen on its own 127.0.0.1, which neither this machine nor the other hosts reach, and
/// this machine would dial its own 127.0.0.1 (tester 10's finding 5). An unknown loopback (empty) is not
/// judged.
fn off_this_loopback(hosts: &[(&super::hosts::Host, &str)], here: &str) -> Vec<String> {
    hosts
        .iter()
        .enumerate()
        .filter(|(_, (h, lo))| {
            h.address.is_none() && !lo.is_empty() && !here.is_empty() && *lo != here
        })
        .map(|(i, (h, _))| {
            format!(
                "host {} (the hosts' entry {}, `ssh = {:?}`) has no `address` and is not this machine: its nodes \
                 would listen on its own loopback (127.0.0.1), which this machine and the other hosts cannot \
                 reach; add `address = \"IP\"` to that entry (an address of the host the others reach it at)",
                h.label,
                i + 1,
                h.ssh
            )
        })
        .collect()
}

/// Whether a host's start failed before ssh reached it (ssh could not run, or exited 255: [`SshHost::connect`]'s
/// `cannot reach host …`, the words the README gives): then nothing on the host can be the cause.
fn unreached(error: &str) -> bool {
    error.starts_with("cannot reach host ") || error.starts_with("cannot run ssh ")
}

/// Asks each host (its label and its agent's client) whether it can serve `--disk-faults` (FUSE for the disks,
/// squall's time shim for the clocks). `Err` (for a person, exit 2) names each host that cannot, and why.
pub async fn check_disk_faults(
    hosts: impl Iterator<Item = (String, AgentClient)>,
) -> Result<(), String> {
    let hosts: Vec<(String, AgentClient)> = hosts.collect();
    let asks = hosts
        .iter()
        .map(|(_, c)| c.call(Op::Capabilities, CAPABILITIES_DEADLINE));
    let answers = futures::future::join_all(asks).await;
    let mut refused = Vec::new();
    for ((label, _), a) in hosts.iter().zip(answers) {
        match a {
            Ok(Answer::Can { disk, clock }) => {
                if let Some(why) = disk {
                    refused.push(format!("host {label} cannot serve disk faults: {why}"));
                }
                if let Some(why) = clock {
                    refused.push(format!("host {label} cannot serve clock faults: {why}"));
                }
            }
            Ok(other) => refused.push(format!(
                "host {label}: the agent answered {other:?} when asked what it can serve"
            )),
            Err(e) => refused.push(e),
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(format!(
        "--disk-faults: {}; drop --disk-faults, or fix those hosts",
        refused.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ssh: &str, address: Option<&str>) -> super::super::hosts::Host {
        super::super::hosts::Host {
            label: ssh.into(),
            ssh: ssh.into(),
            identity: None,
            ssh_config: None,
            dir: "/d".into(),
            nodes: vec![1],
            address: address.map(|a| a.parse().unwrap()),
            cache: super::super::hosts::DEFAULT_CACHE.into(),
        }
    }

    /// Tester 10's finding 5: a host without `address` that is not this machine ran nodes nobody could reach.
    #[test]
    fn a_host_without_address_off_this_loopback_is_refused_naming_it_and_the_fix() {
        let (here, there) = ("boot/net:[1]", "boot/net:[2]");
        let (a, b, c, d) = (
            host("a", None),
            host("b", None),
            host("c", Some("10.0.0.3")),
            host("d", None),
        );
        let said = off_this_loopback(&[(&a, here), (&b, there), (&c, there), (&d, "")], here);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("host b (the hosts' entry 2, `ssh = \"b\"`) has no `address` and is not this machine"),
            "{said:?}"
        );
        assert!(said[0].contains("add `address = \"IP\"`"), "{said:?}");
        // This process's own loopback is known here, and the same as itself.
        let me = super::super::loopback_id();
        assert!(me.contains("/net:["), "{me}");
        assert!(off_this_loopback(&[(&a, &me)], &me).is_empty());
    }
}
