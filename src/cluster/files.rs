//! Files `squall up` keeps in the cluster directory so other commands (and people) can find the cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the file listing the nodes' addresses.
pub const CLUSTER_FILE: &str = "cluster.json";

/// `cluster.json`: where each node of a running cluster listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Cluster id.
    pub cluster_id: String,
    /// One entry per node.
    pub nodes: Vec<NodeEntry>,
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

    /// The API addresses of the nodes that have one.
    pub fn api_addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.nodes
            .iter()
            .filter_map(|n| n.api.map(|a| (n.id, a)))
            .collect()
    }
}

/// The last `lines` lines of a text file (for error messages); empty when unreadable.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
