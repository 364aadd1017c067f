//! A node's command line from its kind: the placeholders filled from one node's facts.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Kind, Template};

/// Whether a node takes an empty data directory as a new member or as one that lost its data (`{initial_state}`
/// is `new` or `existing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    /// A member of the initial configuration on the cluster's first start.
    New,
    /// Every later start.
    Existing,
}

/// Everything one node's command line may name.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    /// Node id.
    pub id: u64,
    /// The cluster's id (token).
    pub cluster_id: String,
    /// The node's directory (squall's files about it).
    pub node_dir: PathBuf,
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// See [`InitialState`].
    pub initial_state: InitialState,
    /// The node's seed.
    pub seed: u64,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Snapshot every N applied entries.
    pub snapshot_every: u64,
    /// Each peer the node must know, with the address it reaches it at (squall's proxy), in id order. For a
    /// per-destination kind every member, the node itself included (`{own_proxy}` is its own entry).
    pub peers: Vec<(u64, SocketAddr)>,
    /// Ports squall picked for the node, by name.
    pub ports: BTreeMap<String, u16>,
    /// Whether it is a node added later (the join form).
    pub join: bool,
    /// The `[options]` switches asked for.
    pub options: Vec<String>,
    /// The address the node's ports bind to (`{host}`): its host's `address` in the hosts file, 127.0.0.1 for
    /// a node on this machine.
    pub host: std::net::IpAddr,
}

impl Kind {
    /// The placeholder values of one node (without `{peers}`).
    fn values(&self, f: &NodeFacts) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        v.insert("squall".into(), exe);
        v.insert("id".into(), f.id.to_string());
        v.insert("cluster_id".into(), f.cluster_id.clone());
        v.insert("node_dir".into(), f.node_dir.display().to_string());
        v.insert("data_dir".into(), f.data_dir.display().to_string());
        // Bracketed when IPv6, so `{host}:PORT` is always an address.
        let host = match f.host {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        v.insert("host".into(), host);
        v.insert(
            "initial_state".into(),
            match f.initial_state {
                InitialState::New => "new",
                InitialState::Existing => "existing",
            }
            .into(),
        );
        v.insert("seed".into(), f.seed.to_string());
        v.insert(
            "election_timeout_min_ms".into(),
            f.election_timeout.0.as_millis().to_string(),
        );
        v.insert(
            "election_timeout_max_ms".into(),
            f.election_timeout.1.as_millis().to_string(),
        );
        v.insert("heartbeat_ms".into(), f.heartbeat.as_millis().to_string());
        v.insert("snapshot_every".into(), f.snapshot_every.to_string());
        for (name, port) in &f.ports {
            v.insert(format!("port.{name}"), port.to_string());
        }
        // Per-destination kinds list every member, the node itself too: its own entry is the proxy in front
        // of it, the address it tells its peers (etcd's advertised peer URL).
        if let Some((_, own)) = f.peers.iter().find(|(p, _)| *p == f.id) {
            v.insert("own_proxy".into(), own.to_string());
        }
        v
    }

    /// The arguments after the program (leading arguments not included): the launch or join form with every
    /// placeholder filled, then the asked-for options. `Err` names an option the kind does not offer.
    pub fn command_line(&self, f: &NodeFacts) -> Result<Vec<OsString>, String> {
        let mut values = self.values(f);
        let mut entries = Vec::new();
        for (peer, proxy) in &f.peers {
            let mut ev = values.clone();
            ev.insert("peer_id".into(), peer.to_string());
            ev.insert("proxy".into(), proxy.to_string());
            entries.push(self.peers.entry.expand(&ev)?);
        }
        values.insert("peers".into(), entries.join(&self.peers.separator));
        let forms: &[Template] = if f.join {
            &self.join_args
        } else {
            &self.launch_args
        };
        let mut out = Vec::new();
        for t in forms {
            out.push(OsString::from(t.expand(&values)?));
        }
        for o in &f.options {
            let Some(args) = self.options.get(o) else {
                return Err(format!(
                    "node kind `{}` has no option `{o}` (its [options]: {})",
                    self.name,
                    if self.options.is_empty() {
                        "none".to_string()
                    } else {
                        self.options.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ));
            };
            for t in args {
                out.push(OsString::from(t.expand(&values)?));
            }
        }
        Ok(out)
    }

    /// The node's address file (ready = { addr_file }), filled for one node.
    pub fn addr_file(&self, f: &NodeFacts) -> Option<PathBuf> {
        match &self.ready {
            super::Ready::AddrFile(t) => t.expand(&self.values(f)).ok().map(PathBuf::from),
            _ => None,
        }
    }
}
