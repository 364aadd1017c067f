//! Files `squall up` keeps in the cluster directory so other commands (and people) can find the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the file listing the nodes' addresses.
pub const CLUSTER_FILE: &str = "cluster.json";

/// Name of the file recording the cluster's membership across sessions.
pub const MEMBERS_FILE: &str = "members.json";

/// `members.json`: which nodes a cluster directory holds and which of them are still members, rewritten
/// whenever squall creates a node or a removal commits. `squall up` on a directory whose membership changed
/// starts the recorded current members (added ones with `--join`) instead of `-n`'s nodes 1..N.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Every node id ever created in this directory (ids are never reused).
    pub ids: BTreeSet<u64>,
    /// The ids started by `add` or `replace`: they start with `--join`.
    pub joined: BTreeSet<u64>,
    /// The ids whose removal from the configuration committed: never started again.
    pub removed: BTreeSet<u64>,
    /// The ids `add` or `replace` started whose learner step has not committed (yet, or ever: the session
    /// ended first, the process failed): not members, so never started by a later session (their id is not
    /// reused and their directory is kept). A configuration takes a node in only through its log; starting it
    /// as a member would widen every node's boot configuration behind the cluster's back.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending: BTreeSet<u64>,
}

impl Roster {
    /// Nodes 1..=`n`, as `-n N` starts them.
    pub fn initial(n: u64) -> Roster {
        Roster {
            ids: (1..=n).collect(),
            ..Roster::default()
        }
    }

    /// Whether a membership change ever committed or created a node here.
    pub fn changed(&self) -> bool {
        !self.joined.is_empty() || !self.removed.is_empty()
    }

    /// The nodes to start: every id not removed and not pending, ascending.
    pub fn current(&self) -> Vec<u64> {
        self.ids
            .iter()
            .filter(|id| !self.removed.contains(id) && !self.pending.contains(id))
            .copied()
            .collect()
    }

    /// Writes `members.json` into `dir` atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{MEMBERS_FILE}.tmp"));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join(MEMBERS_FILE))
    }

    /// Reads `members.json` from `dir`: `Ok(None)` when there is none (a new directory).
    pub fn read(dir: &Path) -> Result<Option<Roster>, String> {
        let path = dir.join(MEMBERS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is not a squall membership record: {e}; move it away to start nodes 1..N of -n (only if no \
                 membership change was ever made in this directory), or use a new --dir",
                path.display()
            )
        })
    }
}

/// The ids above `n` of the `node-ID` directories in `dir` (ascending): nodes an earlier session created.
pub fn node_dirs_beyond(dir: &Path, n: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("node-")?.parse().ok())
                .filter(|&id| id > n)
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// `cluster.json`: where each node of a running cluster listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Cluster id.
    pub cluster_id: String,
    /// One entry per node.
    pub nodes: Vec<NodeEntry>,
    /// The last node the orchestrator saw leading (absent until one led; it may have lost leadership since):
    /// where a one-shot `squall kv` starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    /// The node kind the cluster runs (absent in files written before kinds were recorded: squall's): how
    /// `squall status` and `squall kv` talk to its nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::kind::KindRecord>,
}

/// One node in `cluster.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node id.
    pub id: u64,
    /// API address (client and control), once listening.
    pub api: Option<SocketAddr>,
    /// Peer address (behind the proxies), once listening.
    pub peer: Option<SocketAddr>,
    /// Process id, once running.
    pub pid: Option<u32>,
    /// The node's log file.
    pub log: PathBuf,
    /// Every port it listens on, by the kind's port names (`api`, `peer`, `client`…), once listening.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, SocketAddr>,
}

impl ClusterFile {
    /// Writes `cluster.json` into `dir` atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{CLUSTER_FILE}.tmp"));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join(CLUSTER_FILE))
    }

    /// Reads `cluster.json` from `dir`, with a message that says what to do when it is missing.
    pub fn read(dir: &Path) -> Result<ClusterFile, String> {
        let path = dir.join(CLUSTER_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}; is `squall up --dir {}` running? (or pass --peers 1=ADDR,...)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a squall cluster file: {e}", path.display()))
    }

    /// The addresses of the nodes' port `port` (by the kind's port names), for the nodes that have one.
    pub fn port_addrs(&self, port: &str) -> BTreeMap<u64, SocketAddr> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.id, *n.ports.get(port)?)))
            .collect()
    }

    /// The API addresses of the nodes that have one.
    pub fn api_addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.nodes
            .iter()
            .filter_map(|n| n.api.map(|a| (n.id, a)))
            .collect()
    }
}

/// Name of the file naming a cluster directory's folder on other hosts (`up --hosts`; see [`hosts_dir_name`]).
pub const HOSTS_DIR_FILE: &str = "hosts-dir";

/// The folder under each host's `dir` that holds this cluster directory's node directories (`up --hosts`):
/// `NAME-XXXXXXXX` (`NAME` the cluster directory's own name, `X` random hex), chosen the first time the cluster
/// starts on hosts and kept in `DIR/hosts-dir`. A resumed cluster so finds its nodes' data on the hosts again,
/// and any other cluster (a new directory, one re-made under an earlier one's name, every `squall run` bundle's
/// `cluster`, another directory of the same name, a directory that ran on this machine) gets a folder of its
/// own, never an earlier cluster's. A cluster started on hosts by a squall older than `hosts-dir` keeps its
/// old folder: the one its `cluster.json` (kept after a session) names as its nodes' logs' parent
/// ([`legacy_hosts_folder`]). `Err` names the file and what to do.
pub fn hosts_dir_name(dir: &Path, rng: &mut impl rand::Rng) -> Result<String, String> {
    let path = dir.join(HOSTS_DIR_FILE);
    let own = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cluster".into());
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(format!(
                    "{}: `{name}` is not a folder name (it names this cluster's folder on its hosts); write \
                     the name back or use a new --dir",
                    path.display()
                ));
            }
            Ok(name.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = legacy_hosts_folder(dir)
                .unwrap_or_else(|| format!("{own}-{:08x}", rng.random::<u32>()));
            std::fs::write(&path, format!("{name}\n"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(name)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The folder on its hosts of a cluster that an older squall (before [`HOSTS_DIR_FILE`]) started there: its
/// `cluster.json` gives a node's log as `HOSTDIR/FOLDER/node-N/node.log` outside `dir` (a node that ran on
/// this machine logs to `dir/node-N/node.log`). `None` when there is no such file or no such node.
pub fn legacy_hosts_folder(dir: &Path) -> Option<String> {
    let bytes = std::fs::read(dir.join(CLUSTER_FILE)).ok()?;
    let file: ClusterFile = serde_json::from_slice(&bytes).ok()?;
    let here = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    file.nodes.iter().find_map(|n| {
        let node_dir = n.log.parent()?;
        node_dir.file_name()?.to_str()?.strip_prefix("node-")?;
        let folder = node_dir.parent()?;
        let same = folder == dir || folder.canonicalize().is_ok_and(|f| f == here);
        (!same).then(|| folder.file_name()?.to_str().map(str::to_string))?
    })
}

/// Name of the lock file a running session holds in its cluster directory.
pub const LOCK_FILE: &str = "squall.lock";

/// A running session's hold on its cluster directory: an exclusive `flock(2)` on `DIR/squall.lock`, which
/// holds the pid of the process that took it. The kernel drops the lock when the process ends however it
/// ends (SIGKILL included), so a stale lock file never keeps a directory busy. A second session on the same
/// directory would delete the first's `cluster.json` and node address files and start a second set of nodes
/// on its data: it is refused before it touches anything.
#[derive(Debug)]
pub struct SessionLock {
    /// Kept open for the lock's lifetime: closing it releases the lock.
    _file: std::fs::File,
}

impl SessionLock {
    /// Takes the lock on `dir` (which must exist) without waiting. `Err` is the message for a person: the
    /// directory is in use by another squall (with its pid when it wrote one), or the lock file cannot be
    /// opened.
    pub fn take(dir: &Path) -> Result<SessionLock, String> {
        use std::io::{Read, Seek, Write};
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                format!(
                    "cannot open {}: {e}; name a directory you can write with --dir",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("squall pid {pid}"),
                    Err(_) => "another squall".to_string(),
                };
                return Err(format!(
                    "{} is in use by {holder}; stop that session first (quit its dashboard or console), or \
                     use another --dir",
                    dir.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // Ours now: record who holds it, for the message a second session prints.
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(SessionLock { _file: file })
    }
}

/// The last error a node wrote to its log (a line with "error" or "panicked" in its last 16 KiB), without its
/// timestamp and level, cut to 400 characters: what the dashboard shows beside an exit nobody asked for.
pub fn last_error(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 16 * 1024;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(WINDOW))).ok()?;
    let mut bytes = Vec::new();
    f.take(WINDOW).read_to_end(&mut bytes).ok()?;
    last_error_in(&String::from_utf8_lossy(&bytes))
}

/// [`last_error`] of a log's tail already read (a remote node's, through its host's agent).
pub fn last_error_in(text: &str) -> Option<String> {
    // A Go program's panic (etcd's) ends its log with goroutine stack frames: its reason is the `panic: ` line
    // above them, or a structured log line at level panic or fatal, which beat any earlier error line.
    let fatal = text.lines().rev().find(|l| {
        l.starts_with("panic: ")
            || l.contains("\"level\":\"panic\"")
            || l.contains("\"level\":\"fatal\"")
    });
    let line = fatal.or_else(|| {
        text.lines().rev().find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("panicked")
        })
    })?;
    let line = strip_ansi(line);
    // "squall-node 2: error: …" and tracing's "2026-…Z ERROR …" both carry the message after the level.
    let message = ["error: ", " ERROR "]
        .iter()
        .find_map(|marker| line.split_once(marker).map(|(_, m)| m))
        .unwrap_or(&line)
        .trim();
    let mut cut: String = message.chars().take(400).collect();
    if cut.len() < message.len() {
        cut.push('…');
    }
    Some(cut)
}

/// Removes terminal colour sequences (ESC [ … letter).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `lines` lines of a text file (for error messages); empty when unreadable.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_membership_record_round_trips_and_names_the_current_members() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Roster::read(dir.path()), Ok(None));
        let mut r = Roster::initial(3);
        assert!(!r.changed());
        r.ids.insert(4);
        r.joined.insert(4);
        r.removed.extend([1, 2]);
        r.write(dir.path()).unwrap();
        let back = Roster::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, r);
        assert!(back.changed());
        assert_eq!(back.current(), vec![3, 4]);
        std::fs::write(dir.path().join(MEMBERS_FILE), "{").unwrap();
        let e = Roster::read(dir.path()).unwrap_err();
        assert!(e.contains("members.json") && e.contains("new --dir"), "{e}");
        for d in ["node-1", "node-4", "node-9", "other"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        assert_eq!(node_dirs_beyond(dir.path(), 3), vec![4, 9]);
    }

    #[test]
    fn a_directory_is_held_by_one_session_lock_at_a_time_and_free_once_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = SessionLock::take(dir.path()).unwrap();
        let e = SessionLock::take(dir.path()).unwrap_err();
        assert!(
            e.contains(&format!("is in use by squall pid {}", std::process::id()))
                && e.contains("stop that session first"),
            "{e}"
        );
        drop(first);
        SessionLock::take(dir.path()).expect("free once the first lock is dropped");
    }

    #[test]
    fn a_go_panic_is_found_above_its_stack_frames() {
        // tester5 F5: etcd panicked after a power cut; its log ended with goroutine frames and squall said "it
        // logged no error".
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        std::fs::write(
            &log,
            "{\"level\":\"info\",\"msg\":\"starting\"}\n\
             {\"level\":\"panic\",\"msg\":\"tocommit(101) is out of range [lastIndex(0)]\"}\n\
             panic: tocommit(101) is out of range [lastIndex(0)]. Was the raft log corrupted, truncated, or lost?\n\
             \n\
             goroutine 1 [running]:\n\
             go.etcd.io/etcd/raft.(*raft).handleHeartbeat(0xc0001)\n\
             \tgo.etcd.io/etcd/raft/raft.go:1389 +0x45\n",
        )
        .unwrap();
        let found = last_error(&log).expect("the panic");
        assert!(found.contains("tocommit(101) is out of range"), "{found}");
    }

    #[test]
    fn last_error_finds_the_node_s_last_error_without_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        std::fs::write(
            &log,
            "2026-11-23T10:00:00Z  INFO listening\n\
             2026-11-23T10:00:01Z ERROR \u{1b}[2mpeer\u{1b}[0m unreachable\n\
             2026-11-23T10:00:02Z  INFO still going\n\
             squall-node 2: error: cannot use data directory: it is locked\n\
             shutting down\n",
        )
        .unwrap();
        assert_eq!(
            last_error(&log).as_deref(),
            Some("cannot use data directory: it is locked")
        );
        std::fs::write(
            &log,
            "2026-11-23T10:00:01Z ERROR \u{1b}[2mpeer\u{1b}[0m gone\n",
        )
        .unwrap();
        assert_eq!(last_error(&log).as_deref(), Some("peer gone"));
        std::fs::write(&log, "all quiet\n").unwrap();
        assert_eq!(last_error(&log), None);
        assert_eq!(last_error(&dir.path().join("missing.log")), None);
        let long = format!("squall-node 1: error: {}\n", "x".repeat(1000));
        std::fs::write(&log, long).unwrap();
        let cut = last_error(&log).unwrap();
        assert_eq!(cut.chars().count(), 401);
        assert!(cut.ends_with('…'));
    }

    fn cluster_file_logging_to(dir: &Path, node_dirs: &[PathBuf]) {
        let file = ClusterFile {
            cluster_id: "squall-0001".into(),
            nodes: node_dirs
                .iter()
                .enumerate()
                .map(|(i, d)| NodeEntry {
                    id: i as u64 + 1,
                    api: None,
                    peer: None,
                    pid: None,
                    log: d.join("node.log"),
                    ports: BTreeMap::new(),
                })
                .collect(),
            leader: None,
            kind: None,
        };
        file.write(dir).unwrap();
    }

    /// Tester 9's finding 1 (issue 24): two cluster directories named `cc` that had run on this machine (so
    /// not a first start, no `hosts-dir`) both got the bare folder `cc` on the hosts, and the second cluster's
    /// nodes started on the first's node directories. Each now gets a folder of its own, and keeps it.
    #[test]
    fn two_directories_of_one_name_that_ran_here_get_folders_of_their_own_on_the_hosts() {
        let root = tempfile::tempdir().unwrap();
        let mut rng = rand::rng();
        let mut names = Vec::new();
        for side in ["A", "B"] {
            let dir = root.path().join(side).join("cc");
            std::fs::create_dir_all(&dir).unwrap();
            cluster_file_logging_to(&dir, &[dir.join("node-1"), dir.join("node-2")]);
            Roster::initial(2).write(&dir).unwrap();
            let name = hosts_dir_name(&dir, &mut rng).unwrap();
            assert!(
                name.starts_with("cc-") && name.len() == 11,
                "{side}: {name}"
            );
            assert_eq!(
                hosts_dir_name(&dir, &mut rng).unwrap(),
                name,
                "{side}: a resume"
            );
            names.push(name);
        }
        assert_ne!(
            names[0], names[1],
            "both clusters use one folder on the hosts"
        );
    }

    /// A cluster an older squall started on hosts (no `hosts-dir`; its `cluster.json` logs its nodes under
    /// `HOSTDIR/cc/node-N`) keeps that folder, and `hosts-dir` records it for later sessions.
    #[test]
    fn a_cluster_started_on_hosts_before_hosts_dir_existed_keeps_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cc");
        std::fs::create_dir_all(&dir).unwrap();
        let host = root.path().join("host-a");
        cluster_file_logging_to(&dir, &[host.join("cc/node-1"), host.join("cc/node-2")]);
        assert_eq!(legacy_hosts_folder(&dir).as_deref(), Some("cc"));
        assert_eq!(hosts_dir_name(&dir, &mut rand::rng()).unwrap(), "cc");
        let recorded = std::fs::read_to_string(dir.join(HOSTS_DIR_FILE)).unwrap();
        assert_eq!(recorded.trim(), "cc");
        // A fresh directory has none.
        let fresh = root.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        assert_eq!(legacy_hosts_folder(&fresh), None);
        assert!(
            hosts_dir_name(&fresh, &mut rand::rng())
                .unwrap()
                .starts_with("fresh-")
        );
    }
}
