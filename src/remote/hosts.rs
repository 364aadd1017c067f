//! Which host runs which node: the hosts file (`--hosts FILE`) and its one-line form (`--host ID=DEST,...`),
//! parsed and checked against the cluster's node ids before anything starts.
//!
//! The file (issue 24's format, exact; `ssh_config` is an extension):
//! ```toml
//! [[host]]
//! ssh = "ssh://root@10.0.0.2:22"   # an OpenSSH destination
//! identity = "~/.ssh/id_ed25519"   # optional; otherwise ssh's own defaults and config
//! dir = "/var/tmp/squall"          # optional; where the agent keeps binaries, data and logs
//! nodes = [1, 2]                   # node ids this host runs
//! ssh_config = "/path/to/config"   # optional; passed to ssh as `-F` (its Host aliases, ProxyCommand, ...)
//! address = "10.0.0.2"             # optional; where its nodes and proxies listen (default: the IP in `ssh`, else 127.0.0.1)
//! cache = "~/.cache/squall"        # optional; where the host keeps one squall binary per build, shared by dirs
//! ```
//!
//! Every node the cluster starts with (`-n`) is on exactly one host. A host's `nodes` may also name ids beyond
//! them, up to the most a cluster can ever have: places for nodes an `add` starts later. An added node no host
//! names goes where [`Hosts::place`] says (a `replace`'s on the replaced node's host, else the host with the
//! fewest nodes).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the agent keeps its binary, node data and logs when a host names no `dir`.
pub const DEFAULT_DIR: &str = "/var/tmp/squall";

/// Where a host keeps the squall binaries copied to it, one per build (`CACHE/VERSION-SHA1/squall`), when it
/// names no `cache`: every `dir` on the machine links its binary there, so the binary is copied once per machine.
pub const DEFAULT_CACHE: &str = "~/.cache/squall";

/// One host of the hosts file: an SSH destination and the nodes it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// A short name for messages and the feed: `DEST` (and `DEST:DIR` when two entries share a destination).
    pub label: String,
    /// The OpenSSH destination: `user@host`, `ssh://user@host:port` or a `Host` alias of the ssh config.
    pub ssh: String,
    /// The private key ssh uses (`-i`), `~/` expanded; `None`: ssh's own defaults and config.
    pub identity: Option<PathBuf>,
    /// The ssh client configuration file (`-F`); `None`: the user's.
    pub ssh_config: Option<PathBuf>,
    /// The agent's directory on the host (a remote path, `~/` left for the remote shell).
    pub dir: String,
    /// The node ids this host runs, ascending: some of the cluster's first nodes, and ids beyond them that an
    /// `add` places here when it starts them.
    pub nodes: Vec<u64>,
    /// The address the host's proxies listen on, reachable from the other hosts; `None`: 127.0.0.1.
    pub address: Option<std::net::IpAddr>,
    /// Where the host keeps squall's binaries, one per build, shared by every `dir` on the machine (a remote
    /// path, `~/` left for the remote shell; [`DEFAULT_CACHE`] when the file names none).
    pub cache: String,
}

/// Every host of a cluster, each node on exactly one (an added node no host names: see [`Hosts::place`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hosts {
    /// The hosts in the order they were given.
    pub hosts: Vec<Host>,
}

impl Host {
    /// The nodes this host runs, in words for the feed: `runs` (the nodes the session starts on it: named in
    /// its `nodes`, or placed on it by an earlier session's `add`) first; then apart the ids its `nodes` name
    /// that the cluster never had (`had`: every id it ever created), its spares (places for later `add`s);
    /// then those of `removed` it names (removed, or added but never joined: they stay stopped, so no spare).
    /// As in `1, 4 (spare: 7; removed: 2)`; `none` when it runs none.
    pub fn nodes_text(&self, runs: &[u64], had: &[u64], removed: &[u64]) -> String {
        let join = |ids: &[u64]| {
            ids.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut run: Vec<u64> = runs.to_vec();
        run.sort_unstable();
        let spare: Vec<u64> = self
            .nodes
            .iter()
            .copied()
            .filter(|n| !run.contains(n) && !had.contains(n))
            .collect();
        let stopped: Vec<u64> = self
            .nodes
            .iter()
            .copied()
            .filter(|n| !run.contains(n) && removed.contains(n))
            .collect();
        let mut apart = Vec::new();
        if !spare.is_empty() {
            apart.push(format!("spare: {}", join(&spare)));
        }
        if !stopped.is_empty() {
            apart.push(format!("removed: {}", join(&stopped)));
        }
        let run = if run.is_empty() {
            "none".to_string()
        } else {
            join(&run)
        };
        if apart.is_empty() {
            run
        } else {
            format!("{run} ({})", apart.join("; "))
        }
    }
}

impl Hosts {
    /// The index (into [`Hosts::hosts`]) of the host that runs `node`.
    pub fn host_of(&self, node: u64) -> Option<usize> {
        self.hosts.iter().position(|h| h.nodes.contains(&node))
    }

    /// Where a node added at run time runs: the host whose `nodes` name `id`; else `near` (a `replace`: the
    /// replaced node's host); else the host with the fewest nodes in `load` (per host, in the hosts' order: the
    /// cluster's members on it now), the first in the file among equals. An index into [`Hosts::hosts`];
    /// `None` only when there is no host at all.
    pub fn place(&self, id: u64, near: Option<usize>, load: &[usize]) -> Option<(usize, Placed)> {
        if let Some(h) = self.host_of(id) {
            return Some((h, Placed::Named));
        }
        if let Some(h) = near.filter(|&h| h < self.hosts.len()) {
            return Some((h, Placed::Near));
        }
        (0..self.hosts.len())
            .min_by_key(|&h| (load.get(h).copied().unwrap_or(0), h))
            .map(|h| (h, Placed::Fewest))
    }

    /// Reads and checks a hosts file against the cluster's node ids `nodes` (those it starts with); ids up
    /// to `most` beyond them are places for later `add`s. `Err` names the file, the line and the field, and
    /// what to do.
    pub fn read(path: &Path, nodes: &[u64], most: u64) -> Result<Hosts, HostsError> {
        let text = std::fs::read_to_string(path).map_err(|e| HostsError {
            source_name: path.display().to_string(),
            line: None,
            field: None,
            message: format!("cannot read it: {e}"),
            fix: "pass the path of a hosts file (TOML, `[[host]]` entries; see the README, \"Nodes on other \
                  machines\")"
                .into(),
        })?;
        Self::parse(&path.display().to_string(), &text, nodes, most)
    }

    /// Parses the text of a hosts file named `source_name` (for messages) and checks it against `nodes` and
    /// `most` (as [`Hosts::read`]).
    pub fn parse(
        source_name: &str,
        text: &str,
        nodes: &[u64],
        most: u64,
    ) -> Result<Hosts, HostsError> {
        let err =
            |line: Option<usize>, field: Option<&str>, message: String, fix: &str| HostsError {
                source_name: source_name.to_string(),
                line,
                field: field.map(str::to_string),
                message,
                fix: fix.to_string(),
            };
        let file: FileDe = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            err(
                line,
                None,
                e.message().trim().to_string(),
                "fix the entry: each `[[host]]` takes `ssh` (required), `nodes` (required), `identity`, \
                 `dir`, `ssh_config`, `address` and `cache`",
            )
        })?;
        if file.host.is_empty() {
            return Err(err(
                None,
                Some("host"),
                "no `[[host]]` entry".into(),
                "add one `[[host]]` with `ssh = \"user@host\"` and `nodes = [..]` per machine",
            ));
        }
        let mut hosts: Vec<(usize, Host)> = Vec::new();
        for h in file.host {
            let ssh_line = line_of(text, h.ssh.span().start);
            let ssh = h.ssh.into_inner();
            if let Some(why) = bad_destination(&ssh) {
                return Err(err(
                    Some(ssh_line),
                    Some("ssh"),
                    format!("{ssh:?} {why}"),
                    "write an OpenSSH destination: `user@host`, `ssh://user@host:port` or a Host alias",
                ));
            }
            let dir_line = h
                .dir
                .as_ref()
                .map_or(ssh_line, |d| line_of(text, d.span().start));
            let dir = match h.dir {
                None => DEFAULT_DIR.to_string(),
                Some(d) => {
                    let line = line_of(text, d.span().start);
                    let d = d.into_inner();
                    if !(d.starts_with('/') || d.starts_with("~/")) || d.contains('\n') {
                        return Err(err(
                            Some(line),
                            Some("dir"),
                            format!("{d:?} is not an absolute path on the host"),
                            "write an absolute path (`/var/tmp/squall`) or one under the remote home (`~/squall`)",
                        ));
                    }
                    d.trim_end_matches('/').to_string()
                }
            };
            let cache = match h.cache {
                None => DEFAULT_CACHE.to_string(),
                Some(c) => {
                    let line = line_of(text, c.span().start);
                    let c = c.into_inner();
                    if !(c.starts_with('/') || c.starts_with("~/")) || c.contains('\n') {
                        return Err(err(
                            Some(line),
                            Some("cache"),
                            format!("{c:?} is not an absolute path on the host"),
                            "write an absolute path (`/var/cache/squall`) or one under the remote home \
                             (`~/.cache/squall`)",
                        ));
                    }
                    c.trim_end_matches('/').to_string()
                }
            };
            let address = match h.address {
                None => ip_of_destination(&ssh),
                Some(a) => {
                    let line = line_of(text, a.span().start);
                    let a = a.into_inner();
                    Some(a.parse::<std::net::IpAddr>().map_err(|_| {
                        err(
                            Some(line),
                            Some("address"),
                            format!("{a:?} is not an IP address"),
                            "write the host's address its peers reach it at, e.g. \"10.0.0.2\"",
                        )
                    })?)
                }
            };
            let nodes_line = line_of(text, h.nodes.span().start);
            let list = h.nodes.into_inner();
            if list.is_empty() {
                return Err(err(
                    Some(nodes_line),
                    Some("nodes"),
                    "lists no node".into(),
                    "name the node ids this host runs (`nodes = [1, 2]`; ids beyond -n are places for later \
                     `add`s), or drop the entry",
                ));
            }
            // ssh reads the key here: one that is not a file would only show as ssh's warning when something
            // else fails (tester 10's finding 8).
            let identity = match h.identity {
                None => None,
                Some(i) => {
                    let line = line_of(text, i.span().start);
                    let given = i.into_inner();
                    let path = expand_home(&given);
                    if !path.is_file() {
                        return Err(err(
                            Some(line),
                            Some("identity"),
                            format!(
                                "{given:?} is not a file on this machine ({})",
                                match std::fs::metadata(&path) {
                                    Ok(_) => "not a regular file".to_string(),
                                    Err(e) => e.to_string(),
                                }
                            ),
                            "name the private key ssh should use (it is read here, on the controller), or drop \
                             `identity` for ssh's own defaults and config",
                        ));
                    }
                    Some(path)
                }
            };
            let host_ssh_config = h.ssh_config.map(|p| expand_home(&p));
            // Two entries surely on one machine (the same destination, or the same address) in one dir would
            // run two agents over the same files: refused before anything starts (tester 10's finding 2: it
            // took 11.8 s and first told of "another agent" before the real reason).
            for (other_line, other) in &hosts {
                let same_machine = if other.ssh == ssh && other.ssh_config == host_ssh_config {
                    Some(format!("the same destination {ssh:?}"))
                } else {
                    address
                        .filter(|a| other.address == Some(*a))
                        .map(|a| format!("the same address {a}"))
                };
                if let Some(why) = same_machine.filter(|_| other.dir == dir) {
                    return Err(err(
                        Some(dir_line),
                        Some("dir"),
                        format!(
                            "hosts {} (line {other_line}) and {ssh} are one machine ({why}) and name the same \
                             dir {dir}: their agents would run over the same files",
                            other.ssh
                        ),
                        "give each entry its own `dir`",
                    ));
                }
            }
            hosts.push((
                nodes_line,
                Host {
                    label: ssh.clone(),
                    ssh,
                    identity,
                    ssh_config: host_ssh_config,
                    dir,
                    nodes: list,
                    address,
                    cache,
                },
            ));
        }
        check_nodes(&hosts, nodes, most)
            .map_err(|(line, message, fix)| err(Some(line), Some("nodes"), message, &fix))?;
        Ok(Hosts::labelled(hosts.into_iter().map(|(_, h)| h).collect()))
    }

    /// Parses `--host ID=DEST[,ID=DEST...]` (nodes with the same DEST share one host, in [`DEFAULT_DIR`]) and
    /// checks it against `nodes` and `most` (as [`Hosts::read`]).
    pub fn parse_flag(value: &str, nodes: &[u64], most: u64) -> Result<Hosts, HostsError> {
        let err = |message: String, fix: &str| HostsError {
            source_name: "--host".into(),
            line: None,
            field: None,
            message,
            fix: fix.to_string(),
        };
        let mut by_dest: Vec<(String, Vec<u64>)> = Vec::new();
        let mut seen: BTreeMap<u64, String> = BTreeMap::new();
        for item in value.split(',').map(str::trim) {
            let Some((id, dest)) = item.split_once('=') else {
                return Err(err(
                    format!("{item:?} is not ID=DEST"),
                    "write `--host 1=user@host-a,2=user@host-b,3=user@host-b`",
                ));
            };
            let id: u64 = match id.trim().parse() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(err(
                        format!("{:?} in {item:?} is not a node id (1, 2, ...)", id.trim()),
                        "write `--host 1=user@host-a,2=user@host-b`",
                    ));
                }
            };
            let dest = dest.trim().to_string();
            if let Some(why) = bad_destination(&dest) {
                return Err(err(
                    format!("{dest:?} in {item:?} {why}"),
                    "write an OpenSSH destination: `user@host`, `ssh://user@host:port` or a Host alias",
                ));
            }
            if let Some(other) = seen.insert(id, dest.clone()) {
                return Err(err(
                    format!("node {id} is given twice ({other} and {dest})"),
                    "name each node once",
                ));
            }
            match by_dest.iter_mut().find(|(d, _)| *d == dest) {
                Some((_, list)) => list.push(id),
                None => by_dest.push((dest, vec![id])),
            }
        }
        let hosts: Vec<(usize, Host)> = by_dest
            .into_iter()
            .map(|(dest, nodes)| {
                let address = ip_of_destination(&dest);
                (
                    0,
                    Host {
                        label: dest.clone(),
                        ssh: dest,
                        identity: None,
                        ssh_config: None,
                        dir: DEFAULT_DIR.into(),
                        address,
                        nodes,
                        cache: DEFAULT_CACHE.into(),
                    },
                )
            })
            .collect();
        // In the flag's words, not a hosts file's (tester7: "add the node to some host's `nodes`").
        let missing: Vec<u64> = nodes
            .iter()
            .copied()
            .filter(|n| !seen.contains_key(n))
            .collect();
        if !missing.is_empty() {
            let items: Vec<String> = missing.iter().map(|n| format!("{n}=DEST")).collect();
            return Err(err(
                format!(
                    "no ID=DEST item gives node {} a host (every node needs one)",
                    list(&missing)
                ),
                &format!("add `{}` to `--host`", items.join(",")),
            ));
        }
        check_nodes(&hosts, nodes, most).map_err(|(_, message, fix)| err(message, &fix))?;
        Ok(Hosts::labelled(hosts.into_iter().map(|(_, h)| h).collect()))
    }

    /// Sorts each host's nodes and gives entries that share a destination a label with their directory.
    fn labelled(mut hosts: Vec<Host>) -> Hosts {
        let shared: Vec<bool> = hosts
            .iter()
            .map(|h| hosts.iter().filter(|o| o.ssh == h.ssh).count() > 1)
            .collect();
        for (h, shared) in hosts.iter_mut().zip(shared) {
            h.nodes.sort_unstable();
            if shared {
                h.label = format!("{}:{}", h.ssh, h.dir);
            }
        }
        Hosts { hosts }
    }
}

/// Every node of `nodes` on exactly one host, no node on two nor twice on one, and no host naming a node the
/// cluster can never have (0, or beyond `most`; ids beyond `nodes` are places for later `add`s). `Err`: the
/// line of the `nodes` field at fault, the message and the fix.
fn check_nodes(
    hosts: &[(usize, Host)],
    nodes: &[u64],
    most: u64,
) -> Result<(), (usize, String, String)> {
    // Per node: the entry naming it (its index), that entry's line and destination.
    let mut owner: BTreeMap<u64, (usize, usize, &str)> = BTreeMap::new();
    for (entry, (line, h)) in hosts.iter().enumerate() {
        for &n in &h.nodes {
            if n == 0 || n > most {
                return Err((
                    *line,
                    format!(
                        "host {} lists node {n}, which the cluster can never have (node ids are 1 to {most}: \
                         its nodes {} and those `add` starts later)",
                        h.ssh,
                        list(nodes)
                    ),
                    format!("drop it, or name an id from 1 to {most}"),
                ));
            }
            if let Some((other_entry, other_line, other)) = owner.insert(n, (entry, *line, &h.ssh))
            {
                if other_entry == entry {
                    return Err((
                        *line,
                        format!("node {n} is named twice in host {}'s nodes", h.ssh),
                        "name it once".into(),
                    ));
                }
                let at = if other_line > 0 {
                    format!(" (line {other_line})")
                } else {
                    String::new()
                };
                return Err((
                    *line,
                    format!("node {n} is on two hosts: {other}{at} and {}", h.ssh),
                    "name each node on exactly one host".into(),
                ));
            }
        }
    }
    let missing: Vec<u64> = nodes
        .iter()
        .copied()
        .filter(|n| !owner.contains_key(n))
        .collect();
    if !missing.is_empty() {
        let line = hosts.last().map(|(l, _)| *l).unwrap_or(0);
        return Err((
            line,
            format!(
                "no host runs node {} (every node needs one)",
                list(&missing)
            ),
            "add the node to some host's `nodes`".into(),
        ));
    }
    Ok(())
}

/// How [`Hosts::place`] chose a new node's host, for the words of its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The host's `nodes` name it.
    Named,
    /// The replaced node's host.
    Near,
    /// The host with the fewest nodes (the first in the file among equals).
    Fewest,
}

fn list(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `dest` cannot be an ssh destination, if it cannot: empty, an option, blank inside, or `host:port`
/// without `ssh://` (ssh takes `10.0.0.1:22` for a host name and cannot resolve it: tester 9's finding 8).
fn bad_destination(dest: &str) -> Option<String> {
    if dest.is_empty() {
        return Some("is empty".into());
    }
    if dest.starts_with('-') {
        return Some("starts with `-` (ssh would take it for an option)".into());
    }
    if dest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("has a blank or control character in it".into());
    }
    if !dest.contains("://") {
        let (user, host) = match dest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, dest),
        };
        // One colon only: an IPv6 address (`fe80::1`) has several.
        if let Some((name, port)) = host.split_once(':')
            && !port.contains(':')
            && !name.is_empty()
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
        {
            let user = user.map(|u| format!("{u}@")).unwrap_or_default();
            return Some(format!(
                "gives a port as `host:port`, which ssh takes for a host name ({host:?}); write \
                 `ssh://{user}{name}:{port}`"
            ));
        }
    }
    None
}

/// The IP address an ssh destination names literally (`user@10.0.0.2`, `ssh://user@[fd00::2]:22`, `10.0.0.2`),
/// taken as the host's `address` when its entry names none: ssh reaches the host there from this machine, so
/// the others can too (an agent refuses an address its host does not have, with the reason). `None` for a
/// name or a `Host` alias (the entry must then say its `address` if it is not this machine).
fn ip_of_destination(dest: &str) -> Option<std::net::IpAddr> {
    let rest = dest.strip_prefix("ssh://").unwrap_or(dest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner.split_once(']')?.0
    } else if dest.starts_with("ssh://") {
        host.split_once(':').map_or(host, |(h, _)| h)
    } else {
        host
    };
    let ip: std::net::IpAddr = host.parse().ok()?;
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `~/x` under `$HOME` (a local path: the key and the config are read by the local ssh).
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDe {
    #[serde(default)]
    host: Vec<HostDe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostDe {
    ssh: toml::Spanned<String>,
    identity: Option<toml::Spanned<String>>,
    dir: Option<toml::Spanned<String>>,
    nodes: toml::Spanned<Vec<u64>>,
    ssh_config: Option<String>,
    address: Option<toml::Spanned<String>>,
    cache: Option<toml::Spanned<String>>,
}

/// A hosts file or `--host` value that cannot be used: where, which field, what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsError {
    /// The file's path, or `--host`.
    pub source_name: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

impl fmt::Display for HostsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": `{field}`")?;
        }
        write!(f, ": {}; {}", self.message, self.fix)
    }
}

impl std::error::Error for HostsError {}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[host]]
ssh = "ssh://root@10.0.0.2:22"
identity = "KEY"
dir = "/var/tmp/a/"
nodes = [2, 1]

[[host]]
ssh = "hostb"
nodes = [3]
"#;

    #[test]
    fn a_file_with_every_node_on_one_host_parses_with_defaults_and_sorted_nodes() {
        let key = tempfile::NamedTempFile::new().unwrap();
        let text = TWO.replace("KEY", &key.path().display().to_string());
        let h = Hosts::parse("h.toml", &text, &[1, 2, 3], 9).unwrap();
        assert_eq!(h.hosts.len(), 2);
        assert_eq!(h.hosts[0].ssh, "ssh://root@10.0.0.2:22");
        assert_eq!(h.hosts[0].identity, Some(key.path().to_path_buf()));
        assert_eq!(h.hosts[0].dir, "/var/tmp/a");
        assert_eq!(h.hosts[0].nodes, vec![1, 2]);
        assert_eq!(h.hosts[1].dir, DEFAULT_DIR);
        assert_eq!(h.hosts[1].cache, DEFAULT_CACHE);
        // A literal IP in the destination is the host's address when the entry names none (tester 10's
        // finding 5); a name or alias has none.
        assert_eq!(h.hosts[0].address, Some([10, 0, 0, 2].into()));
        assert_eq!(h.hosts[1].address, None);
        assert_eq!(
            ip_of_destination("root@10.0.0.3"),
            Some([10, 0, 0, 3].into())
        );
        assert_eq!(ip_of_destination("10.0.0.3"), Some([10, 0, 0, 3].into()));
        assert_eq!(
            ip_of_destination("ssh://u@[fd00::2]:22"),
            Some("fd00::2".parse().unwrap())
        );
        assert_eq!(ip_of_destination("u@127.0.0.1"), None);
        assert_eq!(ip_of_destination("lab-1"), None);
        let flag = Hosts::parse_flag("1=root@10.0.0.2,2=b", &[1, 2], 9).unwrap();
        assert_eq!(flag.hosts[0].address, Some([10, 0, 0, 2].into()));
        assert_eq!(flag.hosts[1].address, None);
        assert_eq!(h.hosts[1].label, "hostb");
        assert_eq!(h.host_of(3), Some(1));
        assert_eq!(h.host_of(4), None);
        let h = Hosts::parse(
            "h.toml",
            "[[host]]\nssh = \"a\"\ncache = \"/c/\"\nnodes = [1]\n",
            &[1],
            9,
        )
        .unwrap();
        assert_eq!(h.hosts[0].cache, "/c");
        let e = refused("[[host]]\nssh = \"a\"\ncache = \"c\"\nnodes = [1]\n", &[1]);
        assert!(
            e.to_string()
                .starts_with("h.toml:3: `cache`: \"c\" is not an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn two_entries_on_one_machine_are_told_apart_by_their_dir() {
        let text = "[[host]]\nssh = \"m\"\ndir = \"/a\"\nnodes = [1]\n[[host]]\nssh = \"m\"\ndir = \"/b\"\nnodes = [2]\n";
        let h = Hosts::parse("h.toml", text, &[1, 2], 9).unwrap();
        assert_eq!(h.hosts[0].label, "m:/a");
        assert_eq!(h.hosts[1].label, "m:/b");
    }

    fn refused(text: &str, nodes: &[u64]) -> HostsError {
        Hosts::parse("h.toml", text, nodes, 9).unwrap_err()
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_line_and_the_fields_there_are() {
        let e = refused("[[host]]\nssh = \"a\"\nnodes = [1]\nport = 22\n", &[1]);
        assert_eq!(e.line, Some(4), "{e}");
        let s = e.to_string();
        assert!(s.starts_with("h.toml:4: "), "{s}");
        assert!(s.contains("port"), "{s}");
        assert!(s.contains("`identity`"), "{s}");
    }

    #[test]
    fn a_node_on_two_hosts_names_both_and_the_line() {
        let e = refused(
            "[[host]]\nssh = \"a\"\nnodes = [1, 2]\n[[host]]\nssh = \"b\"\nnodes = [2, 3]\n",
            &[1, 2, 3],
        );
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.field.as_deref(), Some("nodes"));
        assert!(
            e.message
                .contains("node 2 is on two hosts: a (line 3) and b"),
            "{e}"
        );
        assert!(e.fix.contains("exactly one host"), "{e}");
    }

    /// Issue 24 (a new user's finding): `nodes = [1, 1]` in one entry read as "node 1 is on two hosts".
    #[test]
    fn a_node_named_twice_in_one_host_s_nodes_says_so_not_two_hosts() {
        let e = refused(
            "[[host]]\nssh = \"a\"\nnodes = [2]\n[[host]]\nssh = \"b\"\nnodes = [1, 1]\n",
            &[1, 2],
        );
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.field.as_deref(), Some("nodes"));
        assert!(
            e.message
                .contains("node 1 is named twice in host b's nodes"),
            "{e}"
        );
        assert!(!e.message.contains("two hosts"), "{e}");
        assert!(e.fix.contains("once"), "{e}");
        // Two entries of one destination (different dirs) are two hosts, named by their labels.
        let e = refused(
            "[[host]]\nssh = \"m\"\ndir = \"/a\"\nnodes = [1, 2]\n[[host]]\nssh = \"m\"\ndir = \"/b\"\nnodes = [2]\n",
            &[1, 2],
        );
        assert!(e.message.contains("node 2 is on two hosts"), "{e}");
        let e = Hosts::parse_flag("1=a,2=b,1=a", &[1, 2], 9).unwrap_err();
        assert!(e.message.contains("node 1 is given twice"), "{e}");
    }

    #[test]
    fn a_node_no_host_runs_is_named() {
        let e = refused("[[host]]\nssh = \"a\"\nnodes = [1]\n", &[1, 2, 3]);
        assert!(e.message.contains("no host runs node 2, 3"), "{e}");
        assert_eq!(e.field.as_deref(), Some("nodes"));
    }

    #[test]
    fn a_node_the_cluster_can_never_have_is_named_with_the_fix() {
        for id in [0, 10] {
            let e = refused(&format!("[[host]]\nssh = \"a\"\nnodes = [1, {id}]\n"), &[1]);
            assert!(
                e.message.contains(&format!(
                    "lists node {id}, which the cluster can never have"
                )),
                "{e}"
            );
            assert!(e.message.contains("1 to 9"), "{e}");
            assert!(e.fix.contains("from 1 to 9"), "{e}");
        }
    }

    /// Ids beyond `-n` are places for later `add`s (issue 24): accepted, on their host; a spare id on two
    /// hosts is refused as any other.
    #[test]
    fn ids_beyond_the_initial_nodes_are_places_for_later_adds() {
        let h = Hosts::parse(
            "h.toml",
            "[[host]]\nssh = \"a\"\nnodes = [1, 7]\n[[host]]\nssh = \"b\"\nnodes = [2, 3, 4]\n",
            &[1, 2, 3],
            9,
        )
        .unwrap();
        assert_eq!(h.host_of(7), Some(0));
        assert_eq!(h.host_of(4), Some(1));
        let e = refused(
            "[[host]]\nssh = \"a\"\nnodes = [1, 7]\n[[host]]\nssh = \"b\"\nnodes = [2, 7]\n",
            &[1, 2],
        );
        assert!(e.message.contains("node 7 is on two hosts"), "{e}");
        let h = Hosts::parse_flag("1=a,2=b,5=b", &[1, 2], 9).unwrap();
        assert_eq!(h.host_of(5), Some(1));
    }

    /// The agent's start-up line names the spare ids apart: they are not running yet (issue 24). Tester 9's
    /// finding 4: on resume it named the host's file ids, not what it runs (added nodes placed there by an
    /// earlier session were left out), and called a removed node a spare.
    #[test]
    fn a_host_s_nodes_in_words_are_what_it_runs_with_spares_and_removed_ids_apart() {
        let h = Hosts::parse(
            "h.toml",
            "[[host]]\nssh = \"a\"\nnodes = [1, 7]\n[[host]]\nssh = \"b\"\nnodes = [2, 3]\n\
             [[host]]\nssh = \"c\"\nnodes = [8]\n",
            &[1, 2, 3],
            9,
        )
        .unwrap();
        let had = [1, 2, 3];
        assert_eq!(h.hosts[0].nodes_text(&[1], &had, &[]), "1 (spare: 7)");
        assert_eq!(h.hosts[1].nodes_text(&[2, 3], &had, &[]), "2, 3");
        assert_eq!(h.hosts[2].nodes_text(&[], &had, &[]), "none (spare: 8)");
        // Resumed after node 7 was added: it starts with the others.
        assert_eq!(h.hosts[0].nodes_text(&[1, 7], &[1, 2, 3, 7], &[]), "1, 7");
        // Resumed after nodes 5 and 6 were added on b (placed there, not named) and 2 removed.
        let had = [1, 2, 3, 5, 6];
        assert_eq!(
            h.hosts[1].nodes_text(&[6, 3, 5], &had, &[2]),
            "3, 5, 6 (removed: 2)"
        );
        assert_eq!(
            h.hosts[1].nodes_text(&[], &had, &[2, 3]),
            "none (removed: 2, 3)"
        );
        assert_eq!(h.hosts[0].nodes_text(&[1], &had, &[2]), "1 (spare: 7)");
    }

    #[test]
    fn a_new_node_goes_where_named_else_near_else_to_the_fewest_nodes_first_in_the_file() {
        let h = Hosts::parse(
            "h.toml",
            "[[host]]\nssh = \"a\"\nnodes = [1, 2]\n[[host]]\nssh = \"b\"\nnodes = [3, 6]\n\
             [[host]]\nssh = \"c\"\nnodes = [4]\n",
            &[1, 2, 3, 4],
            9,
        )
        .unwrap();
        // Named in the file: there, whatever the load or the replaced node's host.
        assert_eq!(h.place(6, Some(0), &[2, 9, 1]), Some((1, Placed::Named)));
        // A replace: the replaced node's host.
        assert_eq!(h.place(5, Some(0), &[2, 1, 1]), Some((0, Placed::Near)));
        // The fewest nodes; among equals the first in the file.
        assert_eq!(h.place(5, None, &[2, 1, 1]), Some((1, Placed::Fewest)));
        assert_eq!(h.place(5, None, &[2, 2, 1]), Some((2, Placed::Fewest)));
        assert_eq!(h.place(5, None, &[0, 0, 0]), Some((0, Placed::Fewest)));
        assert_eq!(Hosts::default().place(5, None, &[]), None);
    }

    #[test]
    fn missing_fields_empty_lists_bad_destinations_and_relative_dirs_are_refused() {
        for (text, want) in [
            ("[[host]]\nnodes = [1]\n", "ssh"),
            ("[[host]]\nssh = \"a\"\n", "nodes"),
            ("[[host]]\nssh = \"a\"\nnodes = []\n", "lists no node"),
            (
                "[[host]]\nssh = \"-oProxyCommand=x\"\nnodes = [1]\n",
                "starts with `-`",
            ),
            ("[[host]]\nssh = \"a b\"\nnodes = [1]\n", "blank"),
            (
                "[[host]]\nssh = \"root@10.0.0.1:22\"\nnodes = [1]\n",
                "h.toml:2: `ssh`: \"root@10.0.0.1:22\" gives a port as `host:port`",
            ),
            (
                "[[host]]\nssh = \"a\"\ndir = \"rel/dir\"\nnodes = [1]\n",
                "not an absolute path",
            ),
            ("[[host]]\nssh = \"a\"\nnodes = [\"one\"]\n", "expected u64"),
            (
                "[[host]]\nssh = \"a\"\naddress = \"ten\"\nnodes = [1]\n",
                "h.toml:3: `address`: \"ten\" is not an IP address",
            ),
            ("", "no `[[host]]`"),
        ] {
            let e = refused(text, &[1]);
            assert!(e.to_string().contains(want), "{text:?}: {e}");
        }
    }

    /// `ssh://user@host:port`, a bare IPv6 address and a Host alias are destinations; `user@host:port` is not.
    #[test]
    fn only_a_port_without_ssh_scheme_is_refused_among_destinations() {
        for ok in [
            "ssh://root@10.0.0.1:22",
            "root@fe80::1",
            "::1",
            "db-2",
            "u@db-2",
        ] {
            assert_eq!(bad_destination(ok), None, "{ok}");
        }
        assert!(bad_destination("10.0.0.1:22").is_some());
    }

    /// Tester 10's finding 2: entries surely on one machine (one destination, or one address) in one dir are
    /// refused before anything starts; one dir on two machines (the default dir everywhere) is not.
    #[test]
    fn two_entries_surely_on_one_machine_in_one_dir_are_refused_naming_both() {
        let e = refused(
            "[[host]]\nssh = \"m\"\ndir = \"/a\"\nnodes = [1]\n[[host]]\nssh = \"m\"\ndir = \"/a/\"\nnodes = [2]\n",
            &[1, 2],
        );
        assert_eq!((e.line, e.field.as_deref()), (Some(7), Some("dir")), "{e}");
        assert!(
            e.message
                .contains("hosts m (line 4) and m are one machine (the same destination \"m\")"),
            "{e}"
        );
        assert!(e.message.contains("the same dir /a"), "{e}");
        assert!(e.fix.contains("its own `dir`"), "{e}");
        let e = refused(
            "[[host]]\nssh = \"h1\"\naddress = \"10.0.0.1\"\nnodes = [1]\n\
             [[host]]\nssh = \"h2\"\naddress = \"10.0.0.1\"\nnodes = [2]\n",
            &[1, 2],
        );
        assert!(
            e.message.contains("(the same address 10.0.0.1)")
                && e.message.contains(&format!("the same dir {DEFAULT_DIR}")),
            "{e}"
        );
        // Two machines, each in the default dir: fine.
        let h = Hosts::parse(
            "h.toml",
            "[[host]]\nssh = \"h1\"\naddress = \"10.0.0.1\"\nnodes = [1]\n\
             [[host]]\nssh = \"h2\"\naddress = \"10.0.0.2\"\nnodes = [2]\n",
            &[1, 2],
            9,
        )
        .unwrap();
        assert_eq!(h.hosts.len(), 2);
    }

    /// Tester 10's finding 8: an `identity` that names no file was accepted without a word.
    #[test]
    fn an_identity_that_is_not_a_file_is_refused_naming_its_line() {
        let e = refused(
            "[[host]]\nssh = \"a\"\nidentity = \"/nonexistent/key\"\nnodes = [1]\n",
            &[1],
        );
        let s = e.to_string();
        assert!(
            s.starts_with(
                "h.toml:3: `identity`: \"/nonexistent/key\" is not a file on this machine"
            ),
            "{s}"
        );
        assert!(s.contains("drop `identity`"), "{s}");
        let dir = tempfile::tempdir().unwrap();
        let e = refused(
            &format!(
                "[[host]]\nssh = \"a\"\nidentity = \"{}\"\nnodes = [1]\n",
                dir.path().display()
            ),
            &[1],
        );
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn the_flag_groups_nodes_by_destination() {
        let h = Hosts::parse_flag("1=a, 2=b,3=a", &[1, 2, 3], 9).unwrap();
        assert_eq!(h.hosts.len(), 2);
        assert_eq!(
            (h.hosts[0].ssh.as_str(), h.hosts[0].nodes.clone()),
            ("a", vec![1, 3])
        );
        assert_eq!(
            (h.hosts[1].ssh.as_str(), h.hosts[1].nodes.clone()),
            ("b", vec![2])
        );
        assert_eq!(h.hosts[0].dir, DEFAULT_DIR);
    }

    #[test]
    fn the_flag_refuses_duplicates_missing_nodes_and_malformed_items() {
        for (value, want) in [
            ("1=a,1=b", "node 1 is given twice"),
            ("1=a", "no ID=DEST item gives node 2 a host"),
            ("1=a,2", "\"2\" is not ID=DEST"),
            ("x=a,2=b", "is not a node id"),
            ("1=,2=b", "is empty"),
            (
                "1=root@10.0.0.1:22,2=b",
                "\"root@10.0.0.1:22\" in \"1=root@10.0.0.1:22\" gives a port as `host:port`, which ssh \
                 takes for a host name (\"10.0.0.1:22\"); write `ssh://root@10.0.0.1:22`",
            ),
            ("1=db:2222,2=b", "write `ssh://db:2222`"),
            (
                "1=a,2=b,10=c",
                "lists node 10, which the cluster can never have",
            ),
        ] {
            let e = Hosts::parse_flag(value, &[1, 2], 9).unwrap_err();
            assert!(e.to_string().starts_with("--host: "), "{value}: {e}");
            assert!(e.to_string().contains(want), "{value}: {e}");
        }
        // tester7 (finding 9): the missing node's fix is in the flag's words, not a hosts file's.
        let e = Hosts::parse_flag("1=nohost", &[1, 2, 3], 9)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2=DEST,3=DEST") && !e.contains("`nodes`"), "{e}");
    }
}
