//! Starting a session's nodes and proxies, the files a session keeps beside them (`cluster.json`,
//! `members.json`), restarting a node, and following the processes' exits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use squall_chaos::{Network, ProcessSpec, Supervisor};
use squall_node::server::BoundAddrs;
use tokio::sync::{mpsc, watch};

use super::command::NodeId;

use crate::state::{Event, ProcessState, Stamped};
use std::sync::{Arc, Mutex};

use super::handle::{Inner, Slot, node_name};
use super::links::report_links;
use super::{
    Cluster, ClusterFile, ClusterSpec, NodeEntry, classify, clock, disk, faults, files, membership,
    poll, workload,
};

impl Cluster {
    /// Starts every node and proxy, waits until each node listens, and begins polling. Events go to `events`.
    pub async fn start(
        spec: ClusterSpec,
        events: mpsc::UnboundedSender<Stamped>,
    ) -> anyhow::Result<Cluster> {
        let started = Instant::now();
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("cannot create cluster directory {}", spec.dir.display()))?;
        if !spec.node_program.exists() {
            bail!(
                "node binary {} does not exist; build it (cargo build --release) or pass --node-bin PATH",
                spec.node_program.display()
            );
        }
        let shim = if spec.disk_faults {
            squall_chaos::disk::available()?;
            Some(squall_chaos::clock::install_shim(&spec.dir)?)
        } else {
            None
        };
        let sup = Supervisor::new().context("starting the process supervisor")?;
        let net = Network::with_classifier(spec.seed, Arc::new(classify::RaftClassifier));
        // A directory whose membership changed in an earlier session starts its recorded current members,
        // never `-n`'s nodes 1..N over them.
        let roster = match files::Roster::read(&spec.dir).map_err(|e| anyhow!(e))? {
            Some(r) if r.changed() => r,
            Some(_) => files::Roster::initial(spec.nodes),
            None => {
                // A directory from before membership was recorded: nodes beyond -n mean it may have changed.
                let beyond = files::node_dirs_beyond(&spec.dir, spec.nodes);
                if !beyond.is_empty() {
                    bail!(
                        "{} holds node directories beyond -n {} (nodes {}) but no {}: its membership may have \
                         changed and squall cannot tell which nodes are members; use a new --dir",
                        spec.dir.display(),
                        spec.nodes,
                        membership::id_list(&beyond),
                        files::MEMBERS_FILE
                    );
                }
                files::Roster::initial(spec.nodes)
            }
        };
        let ids: Vec<NodeId> = roster.current();
        let node_dirs: Vec<_> = ids
            .iter()
            .map(|&id| (id, spec.dir.join(node_name(id))))
            .collect();
        disk::check_layout(&node_dirs, spec.disk_faults).map_err(|e| anyhow!(e))?;
        if ids.is_empty() {
            bail!(
                "{}: every node of this cluster directory was removed; use a new --dir",
                spec.dir.join(files::MEMBERS_FILE).display()
            );
        }
        let mut proxies = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                if from != to {
                    let addr = net
                        .add_link(from, to)
                        .await
                        .with_context(|| format!("starting the proxy for link {from}->{to}"))?;
                    proxies.insert((from, to), addr);
                }
            }
        }
        let (api, _) = watch::channel(BTreeMap::new());
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            started,
            sup,
            net,
            events,
            slots: Mutex::new(BTreeMap::new()),
            latest: Mutex::new(BTreeMap::new()),
            api,
            workload: workload::Control::new(spec.rate),
            stop,
            faults: Mutex::new(faults::FaultSet::default()),
            disks: disk::Disks::default(),
            clocks: clock::Clocks::new(shim),
            change: Mutex::new(None),
            adding: Mutex::new(None),
            first: ids.iter().copied().collect(),
            roster: Mutex::new(roster),
            last_leader: Mutex::new(None),
            spec,
        });
        let cluster = Cluster { inner };
        let _ = std::fs::remove_file(cluster.inner.spec.dir.join(files::CLUSTER_FILE));
        cluster.write_roster();
        cluster.emit(Event::SessionStarted {
            cluster_id: cluster.inner.spec.cluster_id.clone(),
            nodes: ids.clone(),
            dir: cluster.inner.spec.dir.display().to_string(),
        });
        if let Err(e) = cluster.start_nodes(&ids, &proxies).await {
            // Stop what did start and unmount any fault filesystem, so nothing outlives the failure.
            cluster.shutdown().await;
            return Err(e);
        }
        Ok(cluster)
    }

    pub(super) async fn start_nodes(
        &self,
        ids: &[NodeId],
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
    ) -> anyhow::Result<()> {
        let cluster = self;
        for &id in ids {
            let joined = cluster.inner.roster.lock().unwrap().joined.contains(&id);
            let slot = cluster.slot_for(id, proxies, joined)?;
            cluster.inner.slots.lock().unwrap().insert(id, slot);
        }
        tokio::spawn(watch_exits(cluster.clone()));
        for &id in ids {
            cluster.emit(Event::Process {
                node: id,
                state: ProcessState::Starting,
            });
            let spec = cluster.inner.slots.lock().unwrap()[&id].spec.clone();
            let pid = cluster
                .inner
                .sup
                .spawn(spec)
                .await
                .with_context(|| format!("starting node {id}"))?;
            cluster.emit(Event::Process {
                node: id,
                state: ProcessState::Running { pid },
            });
        }
        // A node that exits before listening refused its data (a corrupt WAL, a locked directory). The others
        // start without it when they are a majority, so the person can look at it with the cluster up.
        let mut refused = Vec::new();
        for &id in ids {
            if let Err(e) = cluster.await_listening(id).await {
                refused.push((id, e));
            }
        }
        if !refused.is_empty() {
            let running: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|id| !refused.iter().any(|(r, _)| r == id))
                .collect();
            if running.len() * 2 <= ids.len() {
                let why: Vec<String> = refused.iter().map(|(_, e)| format!("{e:#}")).collect();
                bail!(
                    "{}; the nodes that started ({}) are not a majority of {}, so the cluster is not \
                     started: fix or move the data of {}",
                    why.join("\n"),
                    if running.is_empty() {
                        "none".to_string()
                    } else {
                        membership::id_list(&running)
                    },
                    membership::id_list(ids),
                    refused
                        .iter()
                        .map(|(id, _)| format!("node {id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for (id, e) in &refused {
                let log = cluster.inner.slots.lock().unwrap()[id]
                    .spec
                    .log_path
                    .clone();
                let reason = files::last_error(&log).unwrap_or_else(|| format!("{e:#}"));
                cluster.emit(Event::Refused {
                    node: *id,
                    reason,
                    running: running.clone(),
                });
            }
        }
        // Every node is polled, a refused one too: once restarted it is picked up like any other.
        for &id in ids {
            tokio::spawn(poll::poll_node(cluster.clone(), id));
        }
        tokio::spawn(report_links(cluster.clone()));
        tokio::spawn(super::clients::run(cluster.clone()));
        Ok(())
    }

    /// The process of node `id`: its directory, flags and peers (`proxies` holds at least its outbound links).
    /// With `join` it starts with no configuration and waits for a leader to send it one (a node added at run
    /// time).
    pub(super) fn slot_for(
        &self,
        id: NodeId,
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
        join: bool,
    ) -> anyhow::Result<Slot> {
        let spec = &self.inner.spec;
        let node_dir = spec.dir.join(node_name(id));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        let data_dir = node_dir.join("data");
        let addr_file = node_dir.join("addr.json");
        // An earlier session's addresses (old ports, old pid) must never be taken for this node's.
        let _ = std::fs::remove_file(&addr_file);
        let mut env = Vec::new();
        if spec.disk_faults {
            // The data directory is a fault filesystem over node-N/disk; the supervisor never wipes a mount
            // point (a wipe goes through the disk), and squall's time shim fakes the node's clocks.
            self.mount_disk(id, &node_dir, &data_dir)
                .with_context(|| format!("disk faults for node {id}"))?;
            env = self.inner.clocks.env(id, &node_dir)?;
        }
        let peers: Vec<String> = proxies
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), addr)| format!("{to}={addr}"))
            .collect();
        let (lo, hi) = spec.election_timeout;
        let mut args = spec.node_prefix_args.clone();
        for a in [
            "--id".to_string(),
            id.to_string(),
            "--cluster-id".into(),
            spec.cluster_id.clone(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--api-listen".into(),
            "127.0.0.1:0".into(),
            "--peers".into(),
            peers.join(","),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--addr-file".into(),
            addr_file.display().to_string(),
            "--election-timeout".into(),
            format!("{}ms..{}ms", lo.as_millis(), hi.as_millis()),
            "--heartbeat".into(),
            format!("{}ms", spec.heartbeat.as_millis()),
            "--snapshot-every".into(),
            spec.snapshot_every.to_string(),
            "--seed".into(),
            spec.seed.wrapping_add(id).to_string(),
        ] {
            args.push(a.into());
        }
        if spec.unsafe_no_fsync {
            args.push("--unsafe-no-fsync".into());
        }
        if join {
            args.push("--join".into());
        }
        Ok(Slot {
            spec: ProcessSpec {
                name: node_name(id),
                program: spec.node_program.clone(),
                args,
                env,
                log_path: node_dir.join("node.log"),
                data_dir: (!spec.disk_faults).then_some(data_dir),
            },
            addr_file,
            addrs: None,
        })
    }

    /// Waits for a node's address file, then points its inbound proxies and the pollers at it.
    pub(super) async fn await_listening(&self, id: NodeId) -> anyhow::Result<()> {
        let (path, log) = {
            let slots = self.inner.slots.lock().unwrap();
            (
                slots[&id].addr_file.clone(),
                slots[&id].spec.log_path.clone(),
            )
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let addrs = loop {
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(addrs) = serde_json::from_slice::<BoundAddrs>(&bytes)
            {
                break addrs;
            }
            if let Some(squall_chaos::ProcState::Exited { code, signal, .. }) =
                self.inner.sup.state(&node_name(id))
            {
                bail!(
                    "node {id} exited before listening (code {code:?}, signal {signal:?}); its log {} ends with:\n{}",
                    log.display(),
                    files::tail(&log, 10)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "node {id} did not start listening within 15 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        self.inner.net.set_upstream(id, addrs.peer);
        self.inner
            .slots
            .lock()
            .unwrap()
            .get_mut(&id)
            .expect("slot")
            .addrs = Some(addrs.clone());
        self.inner.api.send_modify(|m| {
            m.insert(id, addrs.api);
        });
        self.write_cluster_file();
        Ok(())
    }

    pub(super) fn write_cluster_file(&self) {
        let slots = self.inner.slots.lock().unwrap();
        let file = ClusterFile {
            cluster_id: self.inner.spec.cluster_id.clone(),
            nodes: slots
                .iter()
                .map(|(&id, s)| NodeEntry {
                    id,
                    api: s.addrs.as_ref().map(|a| a.api),
                    peer: s.addrs.as_ref().map(|a| a.peer),
                    pid: s.addrs.as_ref().map(|a| a.pid),
                    log: s.spec.log_path.clone(),
                })
                .collect(),
            leader: self.inner.last_leader.lock().unwrap().map(|(id, _)| id),
        };
        if let Err(e) = file.write(&self.inner.spec.dir) {
            tracing::warn!(error = %e, "cannot write cluster.json");
        }
    }

    /// Rewrites `members.json` from the roster (see [`files::Roster`]).
    pub(super) fn write_roster(&self) {
        let roster = self.inner.roster.lock().unwrap().clone();
        if let Err(e) = roster.write(&self.inner.spec.dir) {
            tracing::warn!(error = %e, "cannot write members.json");
        }
    }

    /// Records a change to the roster and rewrites `members.json`.
    pub(super) fn update_roster(&self, f: impl FnOnce(&mut files::Roster)) {
        f(&mut self.inner.roster.lock().unwrap());
        self.write_roster();
    }

    pub(super) async fn restart(&self, id: NodeId, wipe: bool) -> anyhow::Result<()> {
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Restarting { wipe },
        });
        let addr_file = self.inner.slots.lock().unwrap()[&id].addr_file.clone();
        let _ = std::fs::remove_file(&addr_file);
        if wipe && self.inner.disks.enabled() {
            self.wipe_disk(id).await?;
        }
        let pid = self
            .inner
            .sup
            .restart(&node_name(id), wipe)
            .await
            .map_err(|e| anyhow!("restarting node {id}: {e}"))?;
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Running { pid },
        });
        self.await_listening(id).await?;
        // Its flags name only the nodes that existed when it was first started.
        self.tell_peer_addrs(id).await;
        Ok(())
    }
}

pub(super) async fn watch_exits(cluster: Cluster) {
    let mut exits = cluster.inner.sup.exits();
    let mut stop = cluster.stopping();
    loop {
        tokio::select! {
            exit = exits.recv() => {
                let exit = match exit {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(id) = exit.name.strip_prefix("node-").and_then(|s| s.parse::<NodeId>().ok()) else {
                    continue;
                };
                cluster.forget_status(id);
                let state = if exit.signal.as_deref() == Some("SIGKILL") && exit.expected {
                    ProcessState::Killed { pid: exit.pid }
                } else {
                    // An exit nobody asked for: say why, in the node's own words, where it logged them.
                    let failed = !exit.expected && exit.code != Some(0);
                    let reason = if failed {
                        let log = cluster.inner.slots.lock().unwrap().get(&id).map(|s| s.spec.log_path.clone());
                        log.and_then(|p| files::last_error(&p))
                    } else {
                        None
                    };
                    ProcessState::Exited { pid: exit.pid, code: exit.code, signal: exit.signal.clone(), reason }
                };
                cluster.emit(Event::Process { node: id, state });
            }
            _ = stop.changed() => return,
        }
    }
}
