//! Where a node added at run time runs when the nodes are on other hosts (`up --hosts`, issue 24). The hosts
//! file may name its id (a place for a later `add`); else a `replace` puts it on the replaced node's host, and
//! an `add` on the host with the fewest of the cluster's nodes, the first in the file among equals
//! ([`Hosts::place`]). Every placement is recorded in the cluster directory's [`PLACED_FILE`], so a resumed
//! cluster starts an added node on the host that holds its data, also when the hosts file does not name it.
//!
//! Every node a session starts on hosts is recorded there too: a resumed cluster whose hosts file puts a node
//! on another host than the one holding its data is refused before anything starts ([`check_moved`]); the
//! node would start there empty, which is almost always an edited hosts file, not a wish. So is a directory
//! run on this machine resumed with `--hosts`, or one run on hosts resumed without ([`check_here_or_hosts`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::Cluster;
use super::backend::Procs;
use super::command::NodeId;
use super::handle::node_name;
use crate::remote::hosts::{Host, Hosts, Placed};

/// The cluster directory's record of where its nodes run (those a session started on hosts, and those `add`
/// placed): one line per node, `ID<TAB>SSH<TAB>DIR` (the host's `ssh` and `dir` as the hosts file gave them).
pub const PLACED_FILE: &str = "hosts-placed";

impl Cluster {
    /// Places node `id`, which `add` (or `replace` of `near`) is about to start, on a host, and records it;
    /// answers `on HOST (why)` for the command's words. `Ok(None)` when the nodes run here. `Err` when no
    /// host can take it (nothing was done).
    pub(super) fn place_new(
        &self,
        id: NodeId,
        near: Option<NodeId>,
    ) -> Result<Option<String>, String> {
        let Some(hosts) = &self.inner.spec.hosts else {
            return Ok(None);
        };
        let procs = &self.inner.procs;
        let placed = procs.placed();
        let members: Vec<NodeId> = {
            let roster = self.inner.roster.lock().unwrap();
            roster
                .ids
                .iter()
                .copied()
                .filter(|n| *n != id && !roster.removed.contains(n))
                .collect()
        };
        let load = load(hosts.hosts.len(), &placed, &members);
        let near_host = near.and_then(|n| placed.get(&n).copied());
        let (h, why) = hosts.place(id, near_host, &load).ok_or_else(|| {
            format!("no host can run node {id}: the hosts file names none (nothing was done)")
        })?;
        procs.place(id, h);
        let host = &hosts.hosts[h];
        if let Err(e) = record(&self.inner.spec.dir, &[(id, host)]) {
            tracing::warn!(node = id, error = %e, "cannot record where an added node runs");
        }
        let why = match (why, near) {
            (Placed::Named, _) => "the hosts file names it there".to_string(),
            (Placed::Near, Some(n)) => format!("node {n}'s host"),
            (Placed::Near, None) | (Placed::Fewest, _) => {
                format!("the host with the fewest nodes, {}", load[h])
            }
        };
        Ok(Some(format!("{} ({why})", host.label)))
    }
}

/// How many of `members` each of `hosts` hosts runs, by `placed`.
fn load(hosts: usize, placed: &BTreeMap<NodeId, usize>, members: &[NodeId]) -> Vec<usize> {
    let mut load = vec![0; hosts];
    for n in members {
        if let Some(&h) = placed.get(n)
            && h < hosts
        {
            load[h] += 1;
        }
    }
    load
}

/// Adds (or replaces) the line of each node of `placed` (a node and its host) in `dir`'s [`PLACED_FILE`].
fn record(dir: &Path, placed: &[(NodeId, &Host)]) -> std::io::Result<()> {
    let path = dir.join(PLACED_FILE);
    let mut lines: BTreeMap<NodeId, String> = read(dir);
    for (id, host) in placed {
        lines.insert(*id, format!("{id}\t{}\t{}", host.ssh, host.dir));
    }
    let text: String = lines.into_values().map(|l| l + "\n").collect();
    let tmp = dir.join(format!("{PLACED_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// `dir`'s [`PLACED_FILE`] as node → its line (empty when there is none; a line that is not `ID<TAB>...`
/// is skipped).
fn read(dir: &Path) -> BTreeMap<NodeId, String> {
    let text = std::fs::read_to_string(dir.join(PLACED_FILE)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let id = l.split('\t').next()?.parse().ok()?;
            Some((id, l.to_string()))
        })
        .collect()
}

/// Where the nodes a session starts on hosts run, decided before any host is reached (so each agent's start-up
/// line can name what its host runs: tester 9's finding 4).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Resumed {
    /// Every node the session starts → its host (an index into the hosts).
    pub(super) runs: BTreeMap<NodeId, usize>,
    /// The nodes placed anew (an earlier session added them on a host the file no longer has).
    anew: Vec<NodeId>,
    /// What the feed should say about each node placed anew (it starts there without its earlier data).
    pub(super) said: Vec<String>,
}

/// At a cluster's start on hosts: where each node of `ids` (the nodes it starts) runs. A node a host's `nodes`
/// name runs there; one they do not name (a node an earlier session added) on the host [`PLACED_FILE`] says it
/// ran on when the hosts file still has it (same `ssh` and `dir`), else where an `add` would place it now.
/// Writes nothing ([`place_resumed`] does).
pub(super) fn plan_resumed(hosts: &Hosts, dir: &Path, ids: &[NodeId]) -> Resumed {
    // What the hosts run so far, for the load an `add`'s placement weighs: the file's ids, then each placed.
    let mut placed: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (i, h) in hosts.hosts.iter().enumerate() {
        for &n in &h.nodes {
            placed.insert(n, i);
        }
    }
    let mut plan = Resumed::default();
    for &id in ids {
        if let Some(h) = hosts.host_of(id) {
            plan.runs.insert(id, h);
        }
    }
    for (id, h, anew) in resumed_places(hosts, &read(dir), placed, ids) {
        if anew {
            plan.said.push(format!(
                "node {id} was added in an earlier session on a host the hosts file no longer has: it \
                 starts on {} without its earlier data (it catches up from the others)",
                hosts.hosts[h].label
            ));
            plan.anew.push(id);
        }
        plan.runs.insert(id, h);
    }
    plan
}

/// Carries out `plan` (from [`plan_resumed`]): places on their hosts the nodes no host's `nodes` name, and
/// records those placed anew in `dir`'s [`PLACED_FILE`]. Returns what the feed should say about them.
pub(super) fn place_resumed(
    procs: &Procs,
    hosts: &Hosts,
    dir: &Path,
    plan: &Resumed,
) -> Vec<String> {
    for (&id, &h) in &plan.runs {
        if hosts.host_of(id).is_none() {
            procs.place(id, h);
        }
    }
    let anew: Vec<(NodeId, &Host)> = plan
        .anew
        .iter()
        .filter_map(|id| Some((*id, hosts.hosts.get(*plan.runs.get(id)?)?)))
        .collect();
    if !anew.is_empty()
        && let Err(e) = record(dir, &anew)
    {
        tracing::warn!(error = %e, "cannot record where a node runs");
    }
    plan.said.clone()
}

/// Per host (in the hosts' order), the nodes it runs in words for its agent's start-up line
/// ([`Host::nodes_text`]): those `plan` puts on it, its spare ids apart, and the ids it names that `roster`
/// removed (or added without their joining), which stay stopped.
pub(super) fn hosts_words(
    hosts: &Hosts,
    plan: &Resumed,
    roster: &super::files::Roster,
) -> Vec<String> {
    let had: Vec<NodeId> = roster.ids.iter().copied().collect();
    let removed: Vec<NodeId> = roster.removed.union(&roster.pending).copied().collect();
    hosts
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let runs: Vec<NodeId> = plan
                .runs
                .iter()
                .filter(|(_, host)| **host == i)
                .map(|(id, _)| *id)
                .collect();
            h.nodes_text(&runs, &had, &removed)
        })
        .collect()
}

/// The nodes of a cluster of `n` nodes in `dir` that a hosts file must give a host: nodes 1 to `n`, less those
/// an earlier session removed (or added without their joining): they stay stopped, so they need none (tester
/// 9's finding 5). A file may still name them (their ids are then just unused). Nodes an earlier session added
/// need none either: they run where the cluster directory's `hosts-placed` says.
pub fn nodes_needing_a_host(dir: &Path, n: u64) -> Vec<NodeId> {
    let roster = super::files::Roster::read(dir).ok().flatten();
    (1..=n)
        .filter(|id| {
            roster
                .as_ref()
                .is_none_or(|r| !r.removed.contains(id) && !r.pending.contains(id))
        })
        .collect()
}

/// Where [`plan_resumed`] puts each node of `ids` that `placed` (node → host index) does not place yet:
/// `(node, host, anew)`, `anew` when `recorded` ([`PLACED_FILE`]'s lines) names no host the file still has.
/// The nodes with a recorded host go first, so the others are placed as an `add` would, counting every
/// node that keeps its host (tester 10's finding 6: placed in id order, nodes whose host was dropped all
/// landed on one host, before the nodes recorded there were counted).
fn resumed_places(
    hosts: &Hosts,
    recorded: &BTreeMap<NodeId, String>,
    mut placed: BTreeMap<NodeId, usize>,
    ids: &[NodeId],
) -> Vec<(NodeId, usize, bool)> {
    let was = |id: NodeId| {
        recorded.get(&id).and_then(|line| {
            let mut f = line.split('\t').skip(1);
            let (ssh, d) = (f.next()?, f.next()?);
            hosts.hosts.iter().position(|h| h.ssh == ssh && h.dir == d)
        })
    };
    let mut out = Vec::new();
    let todo: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|id| !placed.contains_key(id))
        .collect();
    let mut anew = Vec::new();
    for id in todo {
        match was(id) {
            Some(h) => {
                placed.insert(id, h);
                out.push((id, h, false));
            }
            None => anew.push(id),
        }
    }
    for id in anew {
        let members: Vec<NodeId> = ids.iter().copied().filter(|n| *n != id).collect();
        let load = load(hosts.hosts.len(), &placed, &members);
        let Some((h, _)) = hosts.place(id, None, &load) else {
            continue;
        };
        placed.insert(id, h);
        out.push((id, h, true));
    }
    out
}

/// Records where each node of `ids` (the nodes a session started) runs, by `procs`' placement, in `dir`'s
/// [`PLACED_FILE`]: the host that now holds its data, which [`check_moved`] holds a later session to.
pub(super) fn record_started(procs: &Procs, hosts: &Hosts, dir: &Path, ids: &[NodeId]) {
    let placed = procs.placed();
    let on: Vec<(NodeId, &Host)> = ids
        .iter()
        .filter_map(|id| Some((*id, hosts.hosts.get(*placed.get(id)?)?)))
        .collect();
    if let Err(e) = record(dir, &on) {
        tracing::warn!(error = %e, "cannot record where the nodes run");
    }
}

/// Before a cluster starts on hosts: `Err` (for a person, exit 2) when the hosts file puts a node of `ids`
/// (the nodes it starts) on another host (another `ssh` or `dir`) than the one `dir`'s [`PLACED_FILE`] says
/// holds its data, naming each such node, both hosts and what to do. A node the file does not name is placed
/// by [`place_resumed`]; a node with no record (a directory from before the record) is not judged.
pub(super) fn check_moved(hosts: &Hosts, dir: &Path, ids: &[NodeId]) -> Result<(), String> {
    let recorded = read(dir);
    let mut moved = Vec::new();
    let mut said = Vec::new();
    for &id in ids {
        let Some(line) = recorded.get(&id) else {
            continue;
        };
        let mut f = line.split('\t').skip(1);
        let (Some(ssh), Some(was)) = (f.next(), f.next()) else {
            continue;
        };
        let Some(now) = hosts.host_of(id).map(|h| &hosts.hosts[h]) else {
            continue;
        };
        if now.ssh != ssh || now.dir != was {
            moved.push(id);
            said.push(format!(
                "node {id}'s data is on host {ssh} ({was}), but the hosts file puts it on {} ({})",
                now.ssh, now.dir
            ));
        }
    }
    if moved.is_empty() {
        return Ok(());
    }
    let names = moved
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let (node, its) = if moved.len() == 1 {
        ("node", "its")
    } else {
        ("nodes", "their")
    };
    Err(format!(
        "{}: {}; {it} would start there empty (nothing was started): put {node} {names} back on the host \
         holding {its} data, or start a new cluster with a new --dir; to move a node with the cluster's data, \
         resume as it was and `replace` it (its new node goes on the host whose `nodes` name the new id)",
        dir.display(),
        said.join("; "),
        it = if moved.len() == 1 { "it" } else { "they" },
    ))
}

/// Before a cluster starts: `Err` (for a person, exit 2) when nodes of `ids` (the nodes it starts) have
/// their data where this session would not run them, naming them, where their data is and what to do:
/// - with `hosts` (`--hosts`), nodes that ran on this machine (their directory `DIR/node-N` is here) and that
///   [`PLACED_FILE`] does not place on any host: they would start empty on the hosts;
/// - without, nodes that [`PLACED_FILE`] places on a host and that have no directory here: they would start
///   empty here.
///
/// A node with both, or neither (a fresh directory, a node added later), is not judged; [`check_moved`]
/// judges moves between hosts.
pub(super) fn check_here_or_hosts(
    hosts: Option<&Hosts>,
    dir: &Path,
    ids: &[NodeId],
) -> Result<(), String> {
    let recorded = read(dir);
    let here = |id: NodeId| dir.join(node_name(id)).is_dir();
    let list = |ids: &[NodeId]| -> String {
        let names = ids
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        format!("node{} {names}", if ids.len() == 1 { "" } else { "s" })
    };
    if hosts.is_some() {
        let local: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|&id| here(id) && !recorded.contains_key(&id))
            .collect();
        if local.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = local
            .iter()
            .map(|&id| dir.join(node_name(id)).display().to_string())
            .collect();
        let (its, it) = if local.len() == 1 {
            ("its data is", "it")
        } else {
            ("their data is", "they")
        };
        return Err(format!(
            "{}: {} ran on this machine ({its} here, in {}), so {it} would start empty on the hosts \
             (nothing was started): resume this directory without --hosts, or start the cluster on the hosts \
             with a new --dir",
            dir.display(),
            list(&local),
            paths.join(", "),
        ));
    }
    let mut away = Vec::new();
    let mut said = Vec::new();
    for &id in ids {
        let Some(line) = recorded.get(&id) else {
            continue;
        };
        if here(id) {
            continue;
        }
        let mut f = line.split('\t').skip(1);
        let (Some(ssh), Some(was)) = (f.next(), f.next()) else {
            continue;
        };
        away.push(id);
        said.push(format!("node {id}'s data is on host {ssh} ({was})"));
    }
    if away.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: {}; {} would start empty on this machine (nothing was started): resume this directory with \
         --hosts (or --host) naming those hosts, or start a cluster here with a new --dir",
        dir.display(),
        said.join("; "),
        list(&away),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ssh: &str, dir: &str) -> Host {
        Host {
            label: ssh.into(),
            ssh: ssh.into(),
            identity: None,
            ssh_config: None,
            dir: dir.into(),
            nodes: vec![],
            address: None,
            cache: crate::remote::hosts::DEFAULT_CACHE.into(),
        }
    }

    #[test]
    fn the_load_counts_only_members_placed_on_each_host() {
        let placed: BTreeMap<NodeId, usize> = [(1, 0), (2, 0), (3, 1), (7, 2)].into();
        // Node 7 is named (a spare place) but not a member yet; node 9 is on no host.
        assert_eq!(load(3, &placed, &[1, 2, 3, 9]), vec![2, 1, 0]);
    }

    #[test]
    fn a_placement_is_recorded_once_per_node_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &[(6, &host("host2", "/var/tmp/squall"))]).unwrap();
        record(dir.path(), &[(4, &host("host1", "/x"))]).unwrap();
        record(dir.path(), &[(6, &host("host3", "/y"))]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PLACED_FILE)).unwrap();
        assert_eq!(text, "4\thost1\t/x\n6\thost3\t/y\n");
        assert_eq!(read(dir.path()).len(), 2);
    }

    fn hosts(entries: &[(&str, &str, &[NodeId])]) -> Hosts {
        Hosts {
            hosts: entries
                .iter()
                .map(|(ssh, dir, nodes)| Host {
                    nodes: nodes.to_vec(),
                    ..host(ssh, dir)
                })
                .collect(),
        }
    }

    /// Tester 10's finding 6: resumed with host3 dropped, nodes 7 and 8 (recorded there) are placed as an
    /// `add` would, counting the nodes that keep their hosts (4 and 9 on host1, 5 and 6 on host2): one on
    /// each host, not both on host1.
    #[test]
    fn nodes_whose_host_was_dropped_are_placed_after_those_that_keep_theirs() {
        let (h1, h2, h3) = (
            host("host1", "/d"),
            host("host2", "/d"),
            host("host3", "/d"),
        );
        let dir = tempfile::tempdir().unwrap();
        record(
            dir.path(),
            &[(4, &h1), (9, &h1), (5, &h2), (6, &h2), (7, &h3), (8, &h3)],
        )
        .unwrap();
        let now = hosts(&[("host1", "/d", &[4]), ("host2", "/d", &[5, 6])]);
        // The nodes the file names are placed already (the session places them first).
        let placed: BTreeMap<NodeId, usize> = [(4, 0), (5, 1), (6, 1)].into();
        let got = resumed_places(&now, &read(dir.path()), placed, &[4, 5, 6, 7, 8, 9]);
        assert_eq!(got, vec![(9, 0, false), (7, 0, true), (8, 1, true)]);
        let on = |h: usize| {
            [4, 5, 6]
                .iter()
                .filter(|&&n| [0, 1, 1][n as usize - 4] == h)
                .count()
                + got.iter().filter(|(_, at, _)| *at == h).count()
        };
        assert_eq!((on(0), on(1)), (3, 3), "{got:?}");
    }

    /// Issue 24 (a new user's finding): nodes moved to other hosts in the hosts file on resume started there
    /// empty without a word. A move (another `ssh` or `dir`) is refused naming each node and both hosts.
    #[test]
    fn a_node_the_hosts_file_puts_elsewhere_than_its_data_is_refused_naming_both_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (host("a", "/d"), host("b", "/d"));
        record(dir.path(), &[(1, &a), (2, &b), (3, &b), (4, &b)]).unwrap();
        // As it was: admitted; a node with no record (5) or a removed one (4, not started) is not judged.
        let same = hosts(&[("a", "/d", &[1, 5]), ("b", "/d", &[2, 3])]);
        assert_eq!(check_moved(&same, dir.path(), &[1, 2, 3, 5]), Ok(()));
        let moved = hosts(&[("a", "/d", &[1, 2]), ("b", "/e", &[3, 4])]);
        let e = check_moved(&moved, dir.path(), &[1, 2, 3]).unwrap_err();
        assert!(
            e.contains("node 2's data is on host b (/d), but the hosts file puts it on a (/d)"),
            "{e}"
        );
        assert!(
            e.contains("node 3's data is on host b (/d), but the hosts file puts it on b (/e)"),
            "{e}"
        );
        assert!(!e.contains("node 1's") && !e.contains("node 4's"), "{e}");
        assert!(e.contains("put nodes 2, 3 back"), "{e}");
        assert!(e.contains("new --dir"), "{e}");
    }

    /// Tester 9's finding 4: a resumed session's agents named the hosts file's ids, not what each host runs.
    /// The plan puts named nodes on their hosts and added ones where they ran (or, their host gone, on the
    /// host with the fewest nodes, said), and each host's words follow it: removed ids are no spares.
    #[test]
    fn a_resume_plans_every_node_s_host_before_the_agents_start_and_words_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, gone) = (host("a", "/d"), host("b", "/d"), host("c", "/d"));
        record(
            dir.path(),
            &[(1, &a), (2, &b), (3, &b), (5, &b), (6, &b), (7, &gone)],
        )
        .unwrap();
        let hs = hosts(&[("a", "/d", &[1, 9]), ("b", "/d", &[2, 3])]);
        // Node 2 removed; 5 and 6 added on b; 7 added on a host since dropped; 8 added, never joined.
        let roster = super::super::files::Roster {
            ids: [1, 2, 3, 5, 6, 7, 8].into(),
            joined: [5, 6, 7, 8].into(),
            removed: [2].into(),
            pending: [8].into(),
        };
        let plan = plan_resumed(&hs, dir.path(), &roster.current());
        assert_eq!(
            plan.runs,
            [(1, 0), (3, 1), (5, 1), (6, 1), (7, 0)].into(),
            "{plan:?}"
        );
        assert_eq!(plan.said.len(), 1, "{plan:?}");
        assert!(
            plan.said[0].starts_with("node 7 was added in an earlier session"),
            "{plan:?}"
        );
        assert_eq!(
            hosts_words(&hs, &plan, &roster),
            vec![
                "1, 7 (spare: 9)".to_string(),
                "3, 5, 6 (removed: 2)".to_string()
            ]
        );
        // Nothing was written by planning.
        assert!(!read(dir.path()).get(&7).unwrap().contains("\ta\t"));
    }

    /// Tester 9's finding 5: a removed node (or one that never joined) stays stopped, so a hosts file need not
    /// give it a host; a directory without a membership record needs every node of `-n`.
    #[test]
    fn removed_nodes_need_no_host() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(nodes_needing_a_host(dir.path(), 3), vec![1, 2, 3]);
        super::super::files::Roster {
            ids: [1, 2, 3, 4].into(),
            joined: [4].into(),
            removed: [2].into(),
            pending: Default::default(),
        }
        .write(dir.path())
        .unwrap();
        assert_eq!(nodes_needing_a_host(dir.path(), 3), vec![1, 3]);
    }

    /// polish2 item 3: a directory first run here, then resumed with `--hosts`, started its nodes empty on the
    /// hosts without a word; and a directory run on hosts, resumed here, started them empty here. Both are
    /// refused naming the nodes, where their data is and what to do.
    #[test]
    fn a_directory_run_here_resumed_on_hosts_or_the_reverse_is_refused() {
        let on_hosts = hosts(&[("a", "/d", &[1, 2]), ("b", "/d", &[3])]);
        // Run here: node directories beside the cluster's files, no `hosts-placed`.
        let here = tempfile::tempdir().unwrap();
        for id in [1, 2, 3] {
            std::fs::create_dir_all(here.path().join(node_name(id)).join("data")).unwrap();
        }
        assert_eq!(check_here_or_hosts(None, here.path(), &[1, 2, 3]), Ok(()));
        let e = check_here_or_hosts(Some(&on_hosts), here.path(), &[1, 2, 3]).unwrap_err();
        assert!(
            e.contains("nodes 1, 2, 3 ran on this machine")
                && e.contains(&here.path().join("node-1").display().to_string())
                && e.contains("would start empty on the hosts"),
            "{e}"
        );
        assert!(
            e.contains("without --hosts") && e.contains("new --dir"),
            "{e}"
        );
        // A node added later on hosts (recorded there, no directory here) is not judged.
        record(here.path(), &[(3, &host("b", "/d"))]).unwrap();
        let e = check_here_or_hosts(Some(&on_hosts), here.path(), &[1, 2, 3]).unwrap_err();
        assert!(e.contains("nodes 1, 2 ran on this machine"), "{e}");

        // Run on hosts: `hosts-placed` names them, no node directory here.
        let there = tempfile::tempdir().unwrap();
        record(
            there.path(),
            &[
                (1, &host("a", "/d")),
                (2, &host("a", "/d")),
                (3, &host("b", "/d")),
            ],
        )
        .unwrap();
        assert_eq!(
            check_here_or_hosts(Some(&on_hosts), there.path(), &[1, 2, 3]),
            Ok(())
        );
        let e = check_here_or_hosts(None, there.path(), &[1, 2, 3]).unwrap_err();
        assert!(
            e.contains("node 1's data is on host a (/d)")
                && e.contains("node 3's data is on host b (/d)")
                && e.contains("nodes 1, 2, 3 would start empty on this machine"),
            "{e}"
        );
        assert!(e.contains("--hosts") && e.contains("new --dir"), "{e}");
        // A fresh directory: nothing to judge either way.
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(check_here_or_hosts(None, fresh.path(), &[1, 2, 3]), Ok(()));
        assert_eq!(
            check_here_or_hosts(Some(&on_hosts), fresh.path(), &[1, 2, 3]),
            Ok(())
        );
    }
}
