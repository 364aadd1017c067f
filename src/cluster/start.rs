//! Starting a session's nodes and proxies, the files a session keeps beside them (`cluster.json`,
//! `members.json`), restarting a node, and following the processes' exits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use squall_chaos::{Network, ProcessSpec, Supervisor};
use squall_node::server::BoundAddrs;
use squall_node::storage::InitialState;
use tokio::sync::{mpsc, watch};

use super::command::NodeId;

use crate::state::{Event, ProcessState, Stamped};
use std::sync::{Arc, Mutex};

use super::handle::{Inner, Slot, node_name};
use super::links::report_links;
use super::{
    Cluster, ClusterFile, ClusterSpec, NodeEntry, classify, clockset, diskset, faults, files,
    membership, poll, workload,
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
        // The cluster's first start: no membership record and no node directory yet. Only then are the initial
        // members new (`--initial-state new`); on any later start an empty node directory is a lost one.
        let first_start = !spec.dir.join(files::MEMBERS_FILE).exists()
            && files::node_dirs_beyond(&spec.dir, 0).is_empty();
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
        diskset::check_layout(&node_dirs, spec.disk_faults).map_err(|e| anyhow!(e))?;
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
            disks: diskset::Disks::default(),
            clocks: clockset::Clocks::new(shim),
            change: Mutex::new(None),
            adding: Mutex::new(None),
            roster: Mutex::new(roster),
            last_leader: Mutex::new(None),
            frozen: std::sync::atomic::AtomicBool::new(false),
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
        let initial = if first_start {
            InitialState::New
        } else {
            InitialState::Existing
        };
        if let Err(e) = cluster.start_nodes(&ids, &proxies, initial).await {
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
        initial: InitialState,
    ) -> anyhow::Result<()> {
        let cluster = self;
        for &id in ids {
            let joined = cluster.inner.roster.lock().unwrap().joined.contains(&id);
            let slot = cluster.slot_for(id, proxies, joined, initial)?;
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
    /// time). `initial` says how the node takes an empty data directory: `New` only for a new member (see
    /// `squall_node::storage::InitialState`); every restart is `Existing` (see [`Cluster::restart`]).
    pub(super) fn slot_for(
        &self,
        id: NodeId,
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
        join: bool,
        initial: InitialState,
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
            "--initial-state".into(),
            initial_state_arg(initial).into(),
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
        if self.frozen() {
            args.push(super::teach::FROZEN_FLAG.into());
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
        if self.inner.disks.stalled(id) && self.alive(id) {
            // The kill would not end it: a process blocked in stalled I/O cannot exit until the disk answers.
            let what = if wipe { "wiped" } else { "restarted" };
            bail!(
                "node {id}'s disk is stalled, so its process cannot exit and it cannot be {what} (nothing was \
                 done): `disk {id} heal` first, then `{} {id}`",
                if wipe { "wipe" } else { "restart" }
            );
        }
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Restarting { wipe },
        });
        let addr_file = self.inner.slots.lock().unwrap()[&id].addr_file.clone();
        let _ = std::fs::remove_file(&addr_file);
        let named = self.restart_flags(id).await;
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
        // Its flags name only the voters: the other nodes' addresses it learns now.
        self.tell_peer_addrs(id, &named).await;
        Ok(())
    }

    /// Sets the flags node `id` restarts with, and returns the nodes its `--peers` names. A restart is never a
    /// new member's start (`--initial-state existing`: an empty directory is one that lost its data), and it
    /// starts with the cluster's current configuration, not its startup one (tester report A3): a voter of the
    /// configuration the cluster knows gets the other voters as `--peers` (its bootstrap configuration, used
    /// only when its directory is empty), a node that is not one starts with `--join` (no configuration until
    /// a leader sends it one). With no configuration known (no node answered yet), its earlier peers stay.
    async fn restart_flags(&self, id: NodeId) -> BTreeSet<NodeId> {
        let mut spec = self.inner.slots.lock().unwrap()[&id].spec.clone();
        let mut args: Vec<String> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        set_flag(
            &mut args,
            "--initial-state",
            initial_state_arg(InitialState::Existing),
        );
        let mut named: BTreeSet<NodeId> = flag_value(&args, "--peers")
            .map(|p| {
                p.split(',')
                    .filter_map(|kv| kv.split_once('=')?.0.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Some((config, _, _)) = self.known_config() {
            let join = !config.voters.contains(&id);
            let members: Vec<NodeId> = if join {
                self.node_ids().into_iter().filter(|&o| o != id).collect()
            } else {
                config.voters.iter().copied().filter(|&v| v != id).collect()
            };
            let mut peers = Vec::new();
            named.clear();
            for other in members {
                if let Some(addr) = self.proxy_link(id, other).await {
                    peers.push(format!("{other}={addr}"));
                    named.insert(other);
                }
            }
            set_flag(&mut args, "--peers", &peers.join(","));
            args.retain(|a| a != "--join");
            if join {
                args.push("--join".into());
            }
        }
        self.frozen_flag(&mut args);
        spec.args = args.into_iter().map(Into::into).collect();
        if let Err(e) = self.inner.sup.set_spec(spec.clone()) {
            tracing::warn!(node = id, error = %e, "cannot set the restart flags");
        }
        if let Some(slot) = self.inner.slots.lock().unwrap().get_mut(&id) {
            slot.spec = spec;
        }
        named
    }

    /// The proxy address of link `from -> to`, starting that proxy if it is not running.
    async fn proxy_link(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.inner.net.add_link(from, to).await.ok()
    }
}

/// The node's spelling of `initial`.
fn initial_state_arg(initial: InitialState) -> &'static str {
    match initial {
        InitialState::New => "new",
        InitialState::Existing => "existing",
    }
}

/// The value after `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

/// Sets `flag`'s value in `args`, adding the flag if it is missing.
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(at) if at + 1 < args.len() => args[at + 1] = value.to_string(),
        _ => {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
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
