//! Starting a session's nodes and proxies, the files a session keeps beside them (`cluster.json`,
//! `members.json`), restarting a node, and following the processes' exits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use squall_chaos::{Network, ProcessSpec, Supervisor};

use super::backend::{Links, Procs, Remote};
use squall_node::storage::InitialState;
use tokio::sync::{mpsc, watch};

use super::command::NodeId;

use crate::state::{Event, ProcessState, Stamped};
use std::sync::{Arc, Mutex};

use super::handle::{Inner, NodeAddrs, Slot, id_list, node_name};
use super::links::report_links;
use super::{
    Cluster, ClusterFile, ClusterSpec, NodeEntry, classify, clockset, diskset, faults, files, poll,
    workload,
};
use crate::kind::launch::{self, NodeFacts};
use crate::kind::{Kind, PeerModel, Ready};

impl Cluster {
    /// Starts every node and proxy, waits until each node listens, and begins polling. Events go to `events`.
    pub async fn start(
        spec: ClusterSpec,
        events: mpsc::UnboundedSender<Stamped>,
    ) -> anyhow::Result<Cluster> {
        let started = Instant::now();
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("cannot create cluster directory {}", spec.dir.display()))?;
        if spec.hosts.is_none() && !spec.node_program.exists() {
            bail!(
                "node program {} does not exist (node kind `{}`); {}",
                spec.node_program.display(),
                spec.kind.name,
                spec.kind
                    .missing
                    .as_deref()
                    .unwrap_or("install it, or pass --node-bin PATH")
            );
        }
        // On other hosts the agents mount the disks and install the shim (each host checked below).
        let shim = if spec.disk_faults && spec.hosts.is_none() {
            squall_chaos::disk::available()?;
            Some(squall_chaos::clock::install_shim(&spec.dir)?)
        } else {
            None
        };
        if spec.kind.peers.classifier == "maelstrom" {
            // Maelstrom nodes may call squall's kv services; their bridges learn where from the environment
            // (on other hosts, a port of the host's loopback that ssh forwards here: `ready_hosts`).
            crate::kind::maelstrom::service::start(spec.seed)
                .await
                .context("starting the Maelstrom kv services")?;
        }
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
                        id_list(&beyond),
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
        // Before anything starts: nodes that ran here resumed on hosts, or nodes that ran on hosts resumed here,
        // would start empty.
        super::placement::check_here_or_hosts(spec.hosts.as_ref(), &spec.dir, &ids)
            .map_err(|e| anyhow!(e))?;
        // What reaching the hosts did (a binary copied, each agent's pid), for the feed once the session starts.
        let said = Mutex::new(Vec::new());
        let (procs, links) = match &spec.hosts {
            None => {
                let sup = Supervisor::new().context("starting the process supervisor")?;
                let net = network_for(&spec.kind, spec.seed);
                (Procs::Local(sup), Links::Local(net))
            }
            Some(hosts) => {
                // Before any host is reached: a node whose data is on another host than the file now names.
                super::placement::check_moved(hosts, &spec.dir, &ids).map_err(|e| anyhow!(e))?;
                let labels = network_for(&spec.kind, spec.seed).labels().to_vec();
                let say = |s: String| said.lock().unwrap().push(s);
                let folder =
                    files::hosts_dir_name(&spec.dir, &mut rand::rng()).map_err(|e| anyhow!(e))?;
                // Where every node runs, before any host is reached: each agent's start-up line names it.
                let plan = super::placement::plan_resumed(hosts, &spec.dir, &ids);
                let words = super::placement::hosts_words(hosts, &plan, &roster);
                let remote = Remote::connect(
                    hosts,
                    folder.into(),
                    spec.kind.record(),
                    spec.seed,
                    labels,
                    &words,
                    &say,
                )
                .await
                .map_err(|e| anyhow!(e))?;
                let procs = Procs::Remote(remote.clone());
                // Before anything starts on any host: each has the kind's program (its agent looked).
                if let Err(e) = procs.check_program(&spec.node_program).await {
                    procs.shutdown(Duration::from_secs(2)).await;
                    bail!(
                        "{e}\nnode kind `{}` cannot run there: {}",
                        spec.kind.name,
                        spec.kind.missing.as_deref().unwrap_or(
                            "install its program on every host, or pass --node-bin PATH"
                        )
                    );
                }
                // Nodes an earlier session added: on the host that ran them (`hosts-placed`).
                for text in super::placement::place_resumed(&procs, hosts, &spec.dir, &plan) {
                    say(text);
                }
                if let Err(e) = ready_hosts(&remote, &spec).await {
                    procs.shutdown(Duration::from_secs(2)).await;
                    return Err(anyhow!(e));
                }
                (procs, Links::Remote(remote))
            }
        };
        if spec.disk_faults && procs.is_remote() {
            // Every host must serve disk and clock faults, checked before anything starts there.
            if let Err(e) = procs.check_disk_faults().await {
                procs.shutdown(Duration::from_secs(2)).await;
                return Err(anyhow!(e));
            }
        }
        let proxies = match start_proxies(&links, &spec.kind, &ids, &spec.dir, !first_start).await {
            Ok(p) => p,
            Err(e) => {
                procs.shutdown(Duration::from_secs(2)).await;
                return Err(e);
            }
        };
        // This session's keys: a tag no earlier session on the directory used.
        let tag = workload::new_session_tag(&spec.dir, &mut rand::rng()).map_err(|e| anyhow!(e))?;
        let (api, _) = watch::channel(BTreeMap::new());
        let (stop, _) = watch::channel(false);
        // The session's time zero is when its nodes are about to start, as locally (where everything before
        // takes a millisecond): on other hosts reaching them (ssh, agents, a squall copied) takes seconds,
        // which a scenario's timeline must not spend (tester 7's finding 1: `kill leader` at 4 s found no
        // leader when the nodes had started at 2.4 s).
        let started = if spec.hosts.is_some() {
            Instant::now()
        } else {
            started
        };
        let inner = Arc::new(Inner {
            started,
            procs,
            links,
            events,
            slots: Mutex::new(BTreeMap::new()),
            latest: Mutex::new(BTreeMap::new()),
            roles: Mutex::new(BTreeMap::new()),
            api,
            workload: workload::Control::new(
                spec.rate,
                tag,
                spec.kind.default_workload(),
                spec.seed,
            ),
            stop,
            faults: Mutex::new(faults::FaultSet::default()),
            disks: diskset::Disks::default(),
            clocks: clockset::Clocks::new(shim),
            change: Mutex::new(None),
            adding: Mutex::new(None),
            leaving: Mutex::default(),
            roster: Mutex::new(roster),
            last_leader: Mutex::new(None),
            frozen: std::sync::atomic::AtomicBool::new(false),
            fresh: super::fresh::Fresh::new(),
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
        for text in said.into_inner().unwrap() {
            cluster.emit(Event::Note { text });
        }
        if let Some(hosts) = cluster.inner.procs.host_events() {
            tokio::spawn(watch_hosts(cluster.clone(), hosts));
        }
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
        if let Some(hosts) = &cluster.inner.spec.hosts {
            // Their data is on these hosts now: a later session is held to them.
            super::placement::record_started(
                &cluster.inner.procs,
                hosts,
                &cluster.inner.spec.dir,
                &ids,
            );
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
            let mut slot = cluster.slot_for(id, proxies, joined, initial).await?;
            if cluster.inner.spec.disk_faults && cluster.inner.procs.is_remote() {
                // Its data directory is its agent's fault filesystem, its clock faked through the shim there.
                let env = cluster
                    .mount_on_host(id, &slot.facts.node_dir)
                    .await
                    .map_err(|e| anyhow!("disk faults for node {id}: {e}"))?;
                slot.spec.env.extend(env);
            }
            cluster.note_sender(id, &slot.spec.args);
            // A node whose ports squall picked is reachable through its proxies from its start: a node that
            // is ready only once it has a leader (etcd answers status then) needs its peers before that.
            if let Some(port) = slot.facts.ports.get(&cluster.inner.spec.kind.peers.port) {
                let ip = cluster.host_ip(id);
                cluster
                    .inner
                    .links
                    .set_upstream(id, SocketAddr::new(ip, *port));
            }
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
                .procs
                .spawn(id, spec)
                .await
                .map_err(|e| anyhow!("starting node {id}: {e}"))?;
            cluster.emit(Event::Process {
                node: id,
                state: ProcessState::Running { pid },
            });
        }
        // A node that exits before listening did not start (a port in use, a corrupt WAL, a locked directory).
        // The others start without it when they are a majority, so the person can look at it with the cluster
        // up.
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
                    "{}\nthe nodes that started ({}) are not a majority of {}, so the cluster is not \
                     started: fix what {} said and start again (only if a node's data is damaged, move its \
                     directory away)",
                    why.join("\n"),
                    if running.is_empty() {
                        "none".to_string()
                    } else {
                        id_list(&running)
                    },
                    id_list(ids),
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
                let reason = cluster
                    .inner
                    .procs
                    .last_error(*id, &log)
                    .await
                    .unwrap_or_else(|| format!("{e:#}"));
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
        tokio::spawn(super::flow::report_messages(cluster.clone()));
        tokio::spawn(super::clients::run(cluster.clone()));
        Ok(())
    }

    /// The process of node `id`: its directory and its command line from the kind, with `proxies` (at least
    /// its outbound links) as its peers. With `join` it takes the kind's join form (a node added at run time,
    /// which waits for a leader to send it a configuration). `initial` says how the node takes an empty data
    /// directory: `New` only for a new member; every restart is `Existing` (see [`Cluster::restart`]).
    pub(super) async fn slot_for(
        &self,
        id: NodeId,
        proxies: &BTreeMap<(NodeId, NodeId), SocketAddr>,
        join: bool,
        initial: InitialState,
    ) -> anyhow::Result<Slot> {
        let spec = &self.inner.spec;
        let node_dir = self
            .inner
            .procs
            .node_dir(id, &spec.dir.join(node_name(id)))
            .map_err(|e| anyhow!(e))?;
        if !self.inner.procs.is_remote() {
            // A remote node's directory is made on its host when it starts (its log's folder).
            std::fs::create_dir_all(&node_dir)
                .with_context(|| format!("cannot create {}", node_dir.display()))?;
        }
        let data_dir = node_dir.join("data");
        let mut env = Vec::new();
        if spec.disk_faults && !self.inner.procs.is_remote() {
            // The data directory is a fault filesystem over node-N/disk; the supervisor never wipes a mount
            // point (a wipe goes through the disk), and squall's time shim fakes the node's clocks. (On other
            // hosts their agents do the same when the node starts: [`Cluster::mount_on_host`].)
            self.mount_disk(id, &node_dir, &data_dir)
                .with_context(|| format!("disk faults for node {id}"))?;
            env = self.inner.clocks.env(id, &node_dir)?;
        }
        if spec.kind.peers.classifier == "maelstrom"
            && let Some(addr) = crate::kind::maelstrom::service::address()
                .and_then(|here| self.inner.procs.services_for(id, here))
        {
            env.push((
                crate::kind::maelstrom::service::ENV.into(),
                addr.to_string().into(),
            ));
        }
        let peers: Vec<(NodeId, SocketAddr)> = proxies
            .iter()
            .filter(|((from, _), _)| *from == id)
            .map(|((_, to), addr)| (*to, *addr))
            .collect();
        let mut options = spec.options.clone();
        if spec.unsafe_no_fsync {
            options.push("unsafe-no-fsync".into());
        }
        let facts = NodeFacts {
            id,
            cluster_id: spec.cluster_id.clone(),
            node_dir: node_dir.clone(),
            data_dir: data_dir.clone(),
            initial_state: match initial {
                InitialState::New => launch::InitialState::New,
                InitialState::Existing => launch::InitialState::Existing,
            },
            seed: spec.seed.wrapping_add(id),
            election_timeout: spec.election_timeout,
            heartbeat: spec.heartbeat,
            snapshot_every: spec.snapshot_every,
            peers,
            ports: self
                .inner
                .procs
                .pick_ports(id, &spec.kind, self.host_ip(id))
                .await
                .map_err(|e| anyhow!("node {id}'s ports: {e}"))?,
            join,
            options,
            host: self.host_ip(id),
        };
        let addr_file = spec.kind.addr_file(&facts);
        if let Some(f) = &addr_file {
            // An earlier session's addresses (old ports, old pid) must never be taken for this node's.
            self.inner.procs.remove_file_now(id, f);
        }
        let mut args = spec.node_prefix_args.clone();
        args.extend(spec.kind.command_line(&facts).map_err(|e| anyhow!(e))?);
        self.frozen_flag(&mut args);
        Ok(Slot {
            spec: ProcessSpec {
                name: node_name(id),
                program: spec.node_program.clone(),
                args,
                env,
                log_path: node_dir.join("node.log"),
                data_dir: (!spec.disk_faults).then_some(data_dir),
            },
            facts,
            addr_file,
            addrs: None,
        })
    }

    /// Waits until node `id` is ready the way its kind says, then points its inbound proxies and the pollers
    /// at it.
    pub(super) async fn await_listening(&self, id: NodeId) -> anyhow::Result<()> {
        let (addr_file, log, ports) = {
            let slots = self.inner.slots.lock().unwrap();
            (
                slots[&id].addr_file.clone(),
                slots[&id].spec.log_path.clone(),
                slots[&id].facts.ports.clone(),
            )
        };
        let kind = &self.inner.spec.kind;
        let deadline = Instant::now() + Duration::from_secs(15);
        let ip = self.host_ip(id);
        let picked = NodeAddrs {
            ports: ports
                .iter()
                .map(|(n, p)| (n.clone(), SocketAddr::new(ip, *p)))
                .collect(),
            pid: None,
        };
        let addrs = loop {
            let ready = match &kind.ready {
                Ready::AddrFile(_) => match addr_file.as_deref() {
                    Some(f) => self
                        .inner
                        .procs
                        .read_file(id, f)
                        .await
                        .and_then(|text| parse_addr_file(&text, &kind.ports)),
                    None => None,
                },
                Ready::Tcp(port) => match picked.ports.get(port) {
                    Some(a) => tokio::net::TcpStream::connect(a)
                        .await
                        .ok()
                        .map(|_| picked.clone()),
                    None => None,
                },
                Ready::Status => match kind.status_port().and_then(|p| picked.ports.get(p)) {
                    Some(a) => kind
                        .status_source(*a, Duration::from_millis(400))
                        .poll()
                        .await
                        .ok()
                        .map(|_| picked.clone()),
                    None => None,
                },
            };
            if let Some(a) = ready {
                break a;
            }
            if let Some(squall_chaos::ProcState::Exited { code, signal, .. }) =
                self.inner.procs.state(id)
            {
                // Its own words first: a busy port, a locked or corrupt directory, a bad flag. The tail
                // after them is context, not the reason.
                let how = match (code, signal) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("signal {s}"),
                    (None, None) => "no exit status".to_string(),
                };
                let procs = &self.inner.procs;
                let error = procs.last_error(id, &log).await;
                // Its log's tail only when it logged no error: else the tail ends with that same error.
                let tail = match error {
                    Some(_) => String::new(),
                    None => procs.log_tail(id, &log, 10).await,
                };
                return Err(anyhow!(NotStarted::new(id, how, error, &log, tail)));
            }
            if Instant::now() > deadline {
                // Never leave a process squall no longer watches (tester2 item 2): it would vote and lead
                // outside the invariants' view, behind proxies that still point at its old port.
                let stopped = match self.inner.procs.kill(id).await {
                    Ok(()) => {
                        "squall stopped it (SIGKILL; it exits once its disk lets it)".to_string()
                    }
                    Err(e) => format!("squall could not stop it ({e})"),
                };
                bail!(
                    "node {id} did not start listening within 15 s, so {stopped}; see {}",
                    log.display()
                );
            }
            // A remote node's address file is read through its agent: a round trip each time.
            let pause = if self.inner.procs.is_remote() {
                100
            } else {
                10
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        };
        if let Some(peer) = addrs.ports.get(&kind.peers.port) {
            self.inner.links.set_upstream(id, *peer);
        }
        let api = kind.client_port().and_then(|p| addrs.ports.get(p)).copied();
        self.inner
            .slots
            .lock()
            .unwrap()
            .get_mut(&id)
            .expect("slot")
            .addrs = Some(addrs);
        if let Some(api) = api {
            self.inner.api.send_modify(|m| {
                m.insert(id, api);
            });
            self.learn_senders(api).await;
        }
        self.write_cluster_file();
        Ok(())
    }

    /// Puts the member id node `id` will name itself by into the sender table before it starts, when its kind
    /// identifies senders and the id follows from its command line (etcd's initial members), so its first
    /// elections are already attributed to their links.
    pub(super) fn note_sender(&self, id: NodeId, args: &[std::ffi::OsString]) {
        if self.inner.spec.kind.peers.sender.as_deref() == Some("x-server-from")
            && let Some(member) = crate::kind::etcd::member_id_of_args(args)
        {
            self.inner.links.note_sender(member, id);
        }
    }

    /// Reads the member ids the cluster reports (through the member at client address `api`) into the sender
    /// table: covers members whose id the command line does not give (added later, or an older directory).
    async fn learn_senders(&self, api: SocketAddr) {
        if self.inner.spec.kind.peers.sender.as_deref() != Some("x-server-from") {
            return;
        }
        let client = crate::kind::etcd::client::EtcdClient::new(api, Duration::from_secs(1));
        if let Ok(members) = client.members().await {
            for (node, member) in crate::kind::etcd::drivers::member_nodes(&members) {
                self.inner.links.note_sender(member, node);
            }
        }
    }

    pub(super) fn write_cluster_file(&self) {
        let slots = self.inner.slots.lock().unwrap();
        let file = ClusterFile {
            cluster_id: self.inner.spec.cluster_id.clone(),
            nodes: slots
                .iter()
                .map(|(&id, s)| NodeEntry {
                    id,
                    api: s
                        .addrs
                        .as_ref()
                        .and_then(|a| a.ports.get(self.inner.spec.kind.client_port()?))
                        .copied(),
                    peer: s
                        .addrs
                        .as_ref()
                        .and_then(|a| a.ports.get(&self.inner.spec.kind.peers.port))
                        .copied(),
                    // The node's own word, else the supervisor's: a kind whose status gives no pid (etcd)
                    // still has one (`squall status` showed `-`).
                    pid: s.addrs.as_ref().and_then(|a| a.pid).or_else(|| {
                        match self.inner.procs.state(id) {
                            Some(
                                squall_chaos::ProcState::Running { pid }
                                | squall_chaos::ProcState::Paused { pid },
                            ) => Some(pid),
                            _ => None,
                        }
                    }),
                    log: s.spec.log_path.clone(),
                    ports: s
                        .addrs
                        .as_ref()
                        .map(|a| a.ports.clone())
                        .unwrap_or_default(),
                })
                .collect(),
            leader: self.inner.last_leader.lock().unwrap().map(|(id, _)| id),
            kind: Some(self.inner.spec.kind.record()),
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
        // A node on an unreachable host is neither stopped nor marked restarting: nothing is done.
        self.inner.procs.reachable(id).map_err(|e| anyhow!(e))?;
        if self.disk_stalled(id) && self.alive(id) {
            // The kill would not end it: a process blocked in stalled I/O cannot exit until the disk answers.
            let what = if wipe { "wiped" } else { "restarted" };
            bail!(
                "node {id}'s disk is stalled, so its process cannot exit and it cannot be {what} (nothing was \
                 done): `disk {id} heal` first, then `{} {id}`",
                if wipe { "wipe" } else { "restart" }
            );
        }
        // Checked before anything is stopped or wiped: a restart that cannot start the node must not have
        // killed it and emptied its data first (tester2 item 3).
        let program = self.inner.slots.lock().unwrap()[&id].spec.program.clone();
        // A remote node's program is on its host (squall's own, copied there, for the `{squall}` kinds).
        if let Err(why) = runnable(&program).or_else(|e| {
            if self.inner.procs.is_remote() {
                Ok(())
            } else {
                Err(e)
            }
        }) {
            bail!(
                "node {id} cannot be {} (nothing was done): {why}",
                if wipe { "wiped" } else { "restarted" }
            );
        }
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Restarting { wipe },
        });
        let addr_file = self.inner.slots.lock().unwrap()[&id].addr_file.clone();
        if let Some(f) = addr_file {
            self.inner.procs.remove_file(id, &f).await;
        }
        let named = self.restart_flags(id).await;
        if wipe && self.disk_faults_on() {
            self.wipe_disk(id).await?;
        }
        // The addresses known are the old process's: until the new one is ready (`await_listening`) there is
        // nothing to poll. Polled meanwhile, the old API connection answers `already shutdown` while the node
        // shows running, and the feed told a deliberate restart as `n2 unreachable` then `n2 answers again`:
        // on other hosts, where the new addresses take round trips to the agent to read, every time (tester 7).
        if let Some(slot) = self.inner.slots.lock().unwrap().get_mut(&id) {
            slot.addrs = None;
        }
        let pid = self
            .inner
            .procs
            .restart(id, wipe)
            .await
            .map_err(|e| anyhow!("restarting node {id}: {e}"))?;
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Running { pid },
        });
        self.await_listening(id).await.map_err(|e| {
            // Its data refused (a corrupt file): in squall's words, what to do about it.
            match e.downcast::<NotStarted>() {
                Ok(n) if n.damaged && self.inner.spec.kind.told_of_lost_data() => anyhow!(
                    "{}",
                    n.text(&format!(
                        "; `wipe {id}` starts it empty and it recovers from the other voters"
                    ))
                ),
                Ok(n) => anyhow!(n),
                Err(e) => e,
            }
        })?;
        // Its flags name only the voters: the other nodes' addresses it learns now.
        self.tell_peer_addrs(id, &named).await;
        Ok(())
    }

    /// Sets the command line node `id` restarts with, and returns the nodes its peers name. A restart is never
    /// a new member's start (`{initial_state}` is `existing`: an empty directory is one that lost its data),
    /// and it starts with the cluster's current configuration, not its startup one (tester report A3): a voter
    /// of the configuration the cluster knows gets the other voters as its peers (its bootstrap configuration,
    /// used only when its directory is empty), a node that is not one starts in the kind's join form (no
    /// configuration until a leader sends it one). With no configuration known (no node answered yet), its
    /// earlier peers stay.
    async fn restart_flags(&self, id: NodeId) -> BTreeSet<NodeId> {
        let (mut spec, mut facts) = {
            let slots = self.inner.slots.lock().unwrap();
            (slots[&id].spec.clone(), slots[&id].facts.clone())
        };
        facts.initial_state = launch::InitialState::Existing;
        if let Some((config, _, _)) = self.known_config() {
            let join = !config.voters.contains(&id);
            // A per-destination kind lists every member, itself included (`{own_proxy}`, the address it
            // advertises, is its own entry); per sender, only the others.
            let itself = self.inner.spec.kind.peers.model == PeerModel::PerDestination;
            let members: Vec<NodeId> = if join {
                self.node_ids()
                    .into_iter()
                    .filter(|&o| itself || o != id)
                    .collect()
            } else {
                config
                    .voters
                    .iter()
                    .copied()
                    .filter(|&v| itself || v != id)
                    .collect()
            };
            let mut peers = Vec::new();
            for other in members {
                if let Some(addr) = self.proxy_link(id, other).await {
                    peers.push((other, addr));
                }
            }
            facts.peers = peers;
            facts.join = join;
        }
        let named = facts.peers.iter().map(|(p, _)| *p).collect();
        let mut args = self.inner.spec.node_prefix_args.clone();
        match self.inner.spec.kind.command_line(&facts) {
            Ok(a) => args.extend(a),
            Err(e) => {
                // The same kind built this node's first command line: only an option can fail, and it did not.
                tracing::warn!(node = id, error = %e, "cannot build the restart command line");
                return named;
            }
        }
        self.frozen_flag(&mut args);
        spec.args = args;
        if let Err(e) = self.inner.procs.set_spec(id, spec.clone()) {
            tracing::warn!(node = id, error = %e, "cannot set the restart flags");
        }
        if let Some(slot) = self.inner.slots.lock().unwrap().get_mut(&id) {
            slot.spec = spec;
            slot.facts = facts;
        }
        named
    }

    /// The address `from` reaches `to` at, starting that proxy if it is not running: the proxy of link
    /// `from -> to` for a per-sender kind, the one in front of `to` for a per-destination kind (`from == to`:
    /// the address `to` advertises).
    async fn proxy_link(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        match self.inner.spec.kind.peers.model {
            PeerModel::PerSender => self.inner.links.add_link(from, to).await.ok(),
            PeerModel::PerDestination => self.inner.links.add_destination(to).await.ok(),
        }
    }
}

impl Cluster {
    /// The address node `id`'s ports bind to: its host's `address` (hosts file), else 127.0.0.1.
    pub(super) fn host_ip(&self, id: NodeId) -> std::net::IpAddr {
        self.inner.procs.bind_ip(id, self.inner.spec.hosts.as_ref())
    }
}

/// Readies the hosts before any node starts: a Maelstrom kind's node program is on each host, and a Maelstrom kind's
/// kv services are forwarded to each host's loopback over its ssh. `Err` for a person (exit 2), naming the
/// host and the path.
async fn ready_hosts(remote: &Remote, spec: &ClusterSpec) -> Result<(), String> {
    // The node program itself was looked for already (`Procs::check_program`: a bare name on the host's PATH).
    let programs: Vec<_> = crate::kind::maelstrom_program_of(&spec.kind)
        .into_iter()
        .collect();
    remote.check_programs(&programs).await?;
    if spec.kind.peers.classifier == "maelstrom"
        && let Some(here) = crate::kind::maelstrom::service::address()
    {
        remote.forward_to_hosts(here).await.map_err(|e| {
            format!(
                "{e}; a Maelstrom node on a host reaches squall's kv services through that forward"
            )
        })?;
    }
    Ok(())
}

/// The proxy network the kind asks for: its framing and its classifier (the loader refused any name this build
/// does not have). The local cluster and `squall agent` build theirs here.
pub fn network_for(kind: &Kind, seed: u64) -> Network {
    let classifier: Option<squall_chaos::proxy::SharedClassifier> =
        match kind.peers.classifier.as_str() {
            "squall-raft" => Some(Arc::new(classify::RaftClassifier)),
            "etcd-raft" => Some(Arc::new(crate::kind::etcd::classify::EtcdClassifier)),
            "squall-paxos" => Some(Arc::new(crate::kind::paxos_classify::PaxosClassifier)),
            "maelstrom" => Some(Arc::new(
                crate::kind::maelstrom::classify::MaelstromClassifier,
            )),
            "json-tag" => {
                kind.peers
                    .json_tag
                    .clone()
                    .map(|t| -> squall_chaos::proxy::SharedClassifier {
                        Arc::new(crate::kind::json_tag::JsonTagClassifier(t))
                    })
            }
            _ => None,
        };
    let framing = squall_chaos::Framing::from_name(&kind.peers.framing)
        .expect("the kind loader accepts only framings this build has");
    Network::with_framing(seed, framing, classifier)
}

/// Starts the proxies of the links among `ids`: keyed `(from, to)`, the address `from` dials to reach `to`.
/// Per sender, one proxy per directed link. Per destination, one proxy in front of each node that every sender
/// dials (the map then holds it for every `from`, the node itself too: its own entry is the address it
/// advertises). Per destination, a resumed directory's (`resume`) proxies listen where the members stored
/// they do, as `dir`'s `advertised.json` records ([`super::advertised`]).
async fn start_proxies(
    net: &Links,
    kind: &Kind,
    ids: &[NodeId],
    dir: &std::path::Path,
    resume: bool,
) -> anyhow::Result<BTreeMap<(NodeId, NodeId), SocketAddr>> {
    let mut proxies = BTreeMap::new();
    match kind.peers.model {
        PeerModel::PerSender => {
            for &to in ids {
                for &from in ids.iter().filter(|&&f| f != to) {
                    let addr = net
                        .add_link(from, to)
                        .await
                        .map_err(|e| anyhow!("starting the proxy for link {from}->{to}: {e}"))?;
                    proxies.insert((from, to), addr);
                }
            }
        }
        PeerModel::PerDestination => {
            for (to, addr) in super::advertised::start_destinations(net, dir, ids, resume).await? {
                for &from in ids {
                    proxies.insert((from, to), addr);
                }
            }
        }
    }
    Ok(proxies)
}

/// The addresses a node wrote to its address file: a JSON object with one `"NAME": "IP:PORT"` per port name
/// (other fields ignored; a numeric `pid` is taken). `None` until the file is there with every port.
fn parse_addr_file(text: &str, names: &[String]) -> Option<NodeAddrs> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut ports = BTreeMap::new();
    for n in names {
        ports.insert(n.clone(), value.get(n)?.as_str()?.parse().ok()?);
    }
    let pid = value
        .get("pid")
        .and_then(serde_json::Value::as_u64)
        .map(|p| p as u32);
    Some(NodeAddrs { ports, pid })
}

/// Whether `program` can be started as a node: it exists, is a file and is executable. Checked before an
/// action that stops a node or records a new one, so the action fails before it has done anything.
pub(super) fn runnable(program: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(program) {
        Err(e) => Err(format!(
            "the node program {} cannot be used: {e}",
            program.display()
        )),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => Err(format!(
            "the node program {} is not an executable file",
            program.display()
        )),
        Ok(_) => Ok(()),
    }
}

/// The feed's line for a member that ended its own process once removed: "n4 left the cluster (removed; its
/// process ended itself, exit code 1)".
fn left_text(id: NodeId, code: Option<i32>, signal: Option<&str>) -> String {
    let how = match (code, signal) {
        (Some(c), _) => format!(", exit code {c}"),
        (None, Some(s)) => format!(", {s}"),
        (None, None) => String::new(),
    };
    format!("n{id} left the cluster (removed; its process ended itself{how})")
}

/// Tells the session what happens to the hosts (`--hosts`): a host unreachable, reconnecting, back or lost.
async fn watch_hosts(cluster: Cluster, mut hosts: mpsc::UnboundedReceiver<Event>) {
    let mut stop = cluster.stopping();
    loop {
        tokio::select! {
            e = hosts.recv() => match e {
                Some(event) => cluster.emit(event),
                None => return,
            },
            _ = stop.changed() => return,
        }
    }
}

pub(super) async fn watch_exits(cluster: Cluster) {
    let mut exits = cluster.inner.procs.exits();
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
                // A member whose removal squall asked for that ends on its own has left the cluster (etcd ends
                // a removed member itself): said so, and marked removed before its exit, which then is not a
                // fault of the run.
                // Taken from the set: a later process of the same node (`restart N` of a removed node, as a
                // non-member) that crashes is told as a crash. A removed member squall stops (etcd's may not
                // have ended itself yet) is told as its removal, in the words squall's own node gets, and
                // the exit then says nothing more. Said under the lock that `stop_removed` says it under,
                // so the removal is said once, and before the exit.
                let left = {
                    let mut leaving = cluster.inner.leaving.lock().unwrap();
                    let removal = if exit.expected {
                        leaving.stopping.remove(&id).then(|| {
                            leaving.asked.remove(&id);
                            super::handle::removed_text(id, true)
                        })
                    } else if leaving.asked.remove(&id) {
                        leaving.stopping.remove(&id);
                        leaving.left.insert(id);
                        Some(left_text(id, exit.code, exit.signal.as_deref()))
                    } else {
                        None
                    };
                    if let Some(text) = &removal {
                        cluster.emit(Event::Membership {
                            node: id,
                            step: crate::state::MembershipStep::Removed,
                            text: text.clone(),
                        });
                    }
                    removal.is_some()
                };
                let state = if exit.signal.as_deref() == Some("SIGKILL") && exit.expected {
                    ProcessState::Killed { pid: exit.pid }
                } else {
                    // An exit nobody asked for: say why, in the node's own words, where it logged them.
                    let failed = !exit.expected && !left && exit.code != Some(0);
                    let reason = if failed {
                        let log = cluster.inner.slots.lock().unwrap().get(&id).map(|s| s.spec.log_path.clone());
                        match log {
                            Some(p) => cluster.inner.procs.last_error(id, &p).await,
                            None => None,
                        }
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

/// A node that exited before it listened: its own last error said once, short (a corrupt file: which file
/// and what is wrong, the rest left to its log), its exit, and its log named; the log's tail only when it
/// logged no error (issue 24: a corrupt WAL's answer was 2.5 KB, its cause said two or three times).
#[derive(Debug)]
struct NotStarted {
    id: NodeId,
    /// How it exited: `exit code 2`, `signal SIGKILL`.
    how: String,
    /// Its last error, short ([`short_cause`]); `None`: it logged none.
    cause: Option<String>,
    /// Whether its data was refused as damaged (a file `is corrupt`): `wipe` is what helps.
    damaged: bool,
    log: String,
    /// The last lines of its log, when it logged no error.
    tail: String,
}

impl NotStarted {
    fn new(id: NodeId, how: String, error: Option<String>, log: &Path, tail: String) -> NotStarted {
        let (cause, damaged) = match error.as_deref().map(short_cause) {
            Some((c, d)) => (Some(c), d),
            None => (None, false),
        };
        NotStarted {
            id,
            how,
            cause,
            damaged,
            log: log.display().to_string(),
            tail,
        }
    }

    /// The answer, with `fix` (`; what to do`) after the exit.
    fn text(&self, fix: &str) -> String {
        let NotStarted { id, how, log, .. } = self;
        match &self.cause {
            Some(cause) => format!(
                "node {id} did not start: {cause}; it exited before listening ({how}){fix}; its log {log} \
                 has the full error"
            ),
            None => format!(
                "node {id} did not start: it logged no error; it exited before listening ({how}){fix}; its \
                 log {log} ends with:\n{}",
                self.tail
            ),
        }
    }
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(""))
    }
}

impl std::error::Error for NotStarted {}

/// A node's last error, short, and whether it refused its data as damaged: `… FILE is corrupt: DETAIL` (the
/// words of squall's node, and of its storage errors) becomes `… FILE is corrupt (FIRST CLAUSE OF DETAIL)`,
/// the detail's first clause at most 80 characters; any other error is kept as it is.
fn short_cause(error: &str) -> (String, bool) {
    let Some((head, detail)) = error.split_once(" is corrupt: ") else {
        return (error.to_string(), false);
    };
    let end = [" (", ", ", "; "]
        .iter()
        .filter_map(|sep| detail.find(sep))
        .min()
        .unwrap_or(detail.len());
    let first = &detail[..end];
    let first = match first.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &first[..at]),
        None => first.to_string(),
    };
    (format!("{head} is corrupt ({first})"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAL: &str = "cannot use data directory: /c/node-2/data/wal.log is corrupt: at offset 0: CRC mismatch \
                       (stored 0x7f9449f8, computed 0x1aea4a82), and an intact record of a later write (record 2, \
                       at offset 55) follows it; not cutting it, because that would drop entries this node may \
                       have acknowledged (to recover, move the data directory aside: the node then starts empty \
                       and recovers from the other voters)";

    /// Issue 24: a corrupt WAL's answer says the file and what is wrong once, short, and names the log.
    #[test]
    fn a_corrupt_file_is_said_once_short_with_its_log_named_and_other_errors_kept_whole() {
        let (short, damaged) = short_cause(WAL);
        assert!(damaged);
        assert_eq!(
            short,
            "cannot use data directory: /c/node-2/data/wal.log is corrupt (at offset 0: CRC mismatch)"
        );
        let n = NotStarted::new(
            2,
            "exit code 2".into(),
            Some(WAL.into()),
            Path::new("/c/node-2/node.log"),
            String::new(),
        );
        let text = n.text("; `wipe 2` starts it empty");
        assert_eq!(
            text,
            "node 2 did not start: cannot use data directory: /c/node-2/data/wal.log is corrupt (at offset 0: \
             CRC mismatch); it exited before listening (exit code 2); `wipe 2` starts it empty; its log \
             /c/node-2/node.log has the full error"
        );
        // Any other error is its own words, whole; with none, the log's tail.
        let busy = "cannot listen on 127.0.0.1:5 (--listen): address in use; choose a free port";
        assert_eq!(short_cause(busy), (busy.to_string(), false));
        let n = NotStarted::new(
            3,
            "signal SIGKILL".into(),
            None,
            Path::new("/l"),
            "a\nb".into(),
        );
        assert_eq!(
            n.to_string(),
            "node 3 did not start: it logged no error; it exited before listening (signal SIGKILL); its log /l \
             ends with:\na\nb"
        );
        // A long first clause is cut.
        let (long, _) = short_cause(&format!("f is corrupt: {}", "x".repeat(200)));
        assert_eq!(long, format!("f is corrupt ({}…)", "x".repeat(80)));
    }
}
