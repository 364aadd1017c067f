//! Where a cluster's processes and links live: [`Procs`] (node processes) and [`Links`] (the proxies of the
//! directed links), each either local (this machine's [`Supervisor`] and [`Network`], as before) or remote
//! (`up --hosts`: every node's process on its host's agent, every directed link's proxy on the agent of its
//! *sender*'s host; issue 24). The rooms of the cluster layer act through these two and never ask which.
//!
//! Remote reads stay cheap: process states are a cache fed by the agents' `exit` events, by the replies to
//! what squall asked, and by a `status` read every [`REFRESH`]; link counters and held frames are read fresh
//! where an answer depends on them (`step`, `held`, the links matrix) and cached for the code that cannot wait.
//! Changes that code without an `.await` makes (a fault, a heal) are sent at once, in order, and their answers
//! awaited in the background: an agent does its changing requests one after another in the order they came,
//! so a read sent later sees them done.
//!
//! A directed link's frames pass through two hosts' proxies: what `from` sends on the connections it opens
//! goes through the proxy of `from -> to` on `from`'s host, and what it answers on the connections `to`
//! opens goes back through the proxy of `to -> from` on `to`'s host (counted there as `from -> to`). So a
//! link fault is installed on both hosts, each link's counters are the sum of both hosts' ([`merge`]), and a
//! fault over many links is split per host and remembered under one controller-side id, which every host's
//! agent maps to its own. Held frames' sequence numbers and traced messages' ids are made unique across
//! hosts, and stay small for a person to read, as `n × hosts + host` ([`tag`]).
//!
//! A per-destination kind (etcd) cannot follow the sender's-host rule: each of its members advertises one peer
//! URL that every member stores and dials, so there is one proxy per member, not per link, and it cannot sit
//! on every sender's host at once. The proxy in front of node X runs on X's host instead (its agent's
//! [`Op::Destination`], bound to the host's address) and tells senders apart by the framing (rafthttp's
//! `X-Server-From`, mapped to nodes by the sender table every agent is told: [`Links::note_sender`]). The
//! frames of `a -> b` then pass through b's host (what a sends on the connections it opens to b's proxy) and
//! a's host (what a answers on the connections b opens to a's proxy): the same two hosts as above, so faults,
//! counters, held frames, `step` and the trace go to and come from them the same way ([`split`], [`merge`]).
//! The ports squall picks for a node are picked on its host ([`on_host`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use squall_chaos::{
    ChaosError, ExitEvent, Fate, FaultSpec, HeldFrame, LinkId, LinkStats, MessageEvent, Network,
    ProcState, ProcessSpec, Stepped, Supervisor,
};
use tokio::sync::broadcast;

use super::files;

#[path = "backend_disk.rs"]
mod disk;
use crate::remote::connect::Agents;
use crate::remote::fleet::Fleet;
use crate::remote::hosts::Hosts;
use crate::remote::protocol::{AgentEvent, Answer, Op};

/// Following the hosts through the fleet: which hosts are reachable now, what waits for one that is not, what
/// happens when one is back.
#[path = "backend_fleet.rs"]
mod fleet;
mod hosted;
mod on_host;

/// How often the agents are asked for their processes' states (besides their exit events).
pub(super) const REFRESH: Duration = Duration::from_millis(500);

/// How long a request to an agent may take before squall gives up on it (a restart waits for its node).
const DEADLINE: Duration = Duration::from_secs(15);

/// Host `host`'s number `n` (a held frame's seq, a traced message's id) made unique among `hosts` hosts.
fn tag(hosts: usize, host: usize, n: u64) -> u64 {
    n * hosts as u64 + host as u64
}

/// The host and its own number of a number [`tag`] made.
fn untag(hosts: usize, n: u64) -> (usize, u64) {
    let hosts = hosts as u64;
    ((n % hosts) as usize, n / hosts)
}

/// The supervisor's name for node `id`'s process.
fn name(id: u64) -> String {
    format!("node-{id}")
}

/// The node processes: this machine's supervisor, or the hosts' agents.
pub(super) enum Procs {
    /// Every node runs here.
    Local(Supervisor),
    /// Every node runs on its host, through that host's agent.
    Remote(Arc<Remote>),
}

/// The proxies of the directed links: this machine's network, or the agents' (each link on its sender's host).
pub(super) enum Links {
    /// Every proxy runs here.
    Local(Network),
    /// Each link's proxy runs on the host of its sender (a per-destination kind's: on its destination's).
    Remote(Arc<Remote>),
}

/// One host's agent as the backend uses it (its client is the fleet's current one: [`Remote::client`]).
struct Agent {
    label: String,
    /// The agent's directory on the host (absolute, as its `hello` said).
    dir: PathBuf,
}

/// The hosts' agents and what squall keeps of them (see the module comment).
pub(super) struct Remote {
    agents: Vec<Agent>,
    /// Node id → its host (an index into `agents`): the hosts file's, and each added node's once placed.
    host_of: Mutex<BTreeMap<u64, usize>>,
    /// Node id → its process state and the change number that set it.
    states: Mutex<BTreeMap<u64, (ProcState, u64)>>,
    changes: AtomicU64,
    /// The specs nodes were launched with (what a restart and a log read need).
    specs: Mutex<BTreeMap<u64, ProcessSpec>>,
    exits: broadcast::Sender<ExitEvent>,
    labels: Vec<&'static str>,
    held: Mutex<Vec<HeldFrame>>,
    stats: Mutex<Vec<LinkStats>>,
    /// Controller fault id → the hosts it was installed on.
    faults: Mutex<BTreeMap<u64, BTreeSet<usize>>>,
    next_fault: AtomicU64,
    /// squall's own executable here: a node program equal to it runs as the agent's own on the host.
    own_exe: Option<PathBuf>,
    /// Every host's agent, kept connected (pings, unreachable hosts, reconnects); stopped by
    /// [`Procs::shutdown`].
    fleet: Fleet,
    /// Per host, whether squall sends to it now, and what waits for it meanwhile ([`fleet`]).
    reach: Mutex<Vec<fleet::Reach>>,
    /// What happened to the hosts, for the session's feed; taken once by [`Procs::host_events`].
    host_events: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::state::Event>>>,
    /// Per host, its link counters as last read, for a read that has to skip it ([`Remote::refresh`]).
    last_links: Mutex<Vec<Vec<LinkStats>>>,
    /// Per link, the `held_lost` already told ([`lost_since`]).
    lost_told: Mutex<BTreeMap<LinkId, u64>>,
    /// The cluster's folder under every agent's directory ([`super::files::hosts_dir_name`]).
    folder: PathBuf,
    /// The disk and clock faults in force on the nodes, as their agents last answered ([`disk`]).
    host_faults: disk::HostFaults,
    /// Each host's ssh, in the agents' order (its forwards shared with the connection's: [`hosted`]).
    ssh: Vec<crate::remote::ssh::SshHost>,
}

/// Where the trace was last read up to: one cursor per host.
#[derive(Debug, Default)]
pub(super) struct TraceCursor(Vec<u64>);

impl Remote {
    /// Starts every host's agent (`say` reports a binary copied), sets up each one's proxy network for the
    /// node kind `kind` (the proxies seeded with `seed`, listening on the host's `address`), and starts
    /// following their processes. `labels` are the kind classifier's message kinds; `folder` the cluster's
    /// folder under each agent's directory (its node directories' parent); `runs` per host (in the hosts'
    /// order) the nodes it runs in words, for its agent's start-up line. `Err` names the host and what to do;
    /// nothing is left running anywhere then.
    pub(super) async fn connect(
        hosts: &Hosts,
        folder: PathBuf,
        kind: crate::kind::KindRecord,
        seed: u64,
        labels: Vec<&'static str>,
        runs: &[String],
        say: &(dyn Fn(String) + Sync),
    ) -> Result<Arc<Remote>, String> {
        let all = Agents::start(hosts, say).await?;
        let mut agents = Vec::new();
        let mut failed = None;
        for (h, c) in all.hosts.iter() {
            let dir = match &c.hello {
                Answer::Hello { dir, pid, .. } => {
                    let i = hosts.hosts.iter().position(|x| x.label == h.host.label);
                    say(format!(
                        "host {}: agent pid {pid} in {dir}, for node {}",
                        h.host.label,
                        i.and_then(|i| runs.get(i)).map_or("none", String::as_str)
                    ));
                    PathBuf::from(dir)
                }
                _ => PathBuf::from(&h.host.dir),
            };
            let op = Op::Network {
                kind: kind.clone(),
                seed,
                bind: h.host.address,
            };
            if let Err(e) = c.client.call(op, DEADLINE).await
                && failed.is_none()
            {
                failed = Some(e);
            }
            agents.push(Agent {
                label: h.host.label.clone(),
                dir,
            });
        }
        if let Some(e) = failed {
            all.stop().await;
            return Err(e);
        }
        let mut host_of = BTreeMap::new();
        for (i, h) in hosts.hosts.iter().enumerate() {
            for &n in &h.nodes {
                host_of.insert(n, i);
            }
        }
        // From here the fleet holds the connections: it pings, reconnects, and hands on the agents' events.
        let ssh = all.hosts.iter().map(|(h, _)| h.clone()).collect();
        let (fleet, host_events) = Fleet::start(all);
        let (to_feed, feed) = tokio::sync::mpsc::unbounded_channel();
        let hosts_n = agents.len();
        let remote = Arc::new(Remote {
            reach: Mutex::new((0..hosts_n).map(|_| fleet::Reach::default()).collect()),
            last_links: Mutex::new(vec![Vec::new(); hosts_n]),
            host_events: Mutex::new(Some(feed)),
            fleet,
            agents,
            host_of: Mutex::new(host_of),
            states: Mutex::new(BTreeMap::new()),
            changes: AtomicU64::new(1),
            specs: Mutex::new(BTreeMap::new()),
            exits: broadcast::channel(256).0,
            labels,
            held: Mutex::new(Vec::new()),
            stats: Mutex::new(Vec::new()),
            faults: Mutex::new(BTreeMap::new()),
            next_fault: AtomicU64::new(1),
            own_exe: std::env::current_exe().ok(),
            ssh,
            folder,
            lost_told: Mutex::new(BTreeMap::new()),
            host_faults: disk::HostFaults::default(),
        });
        tokio::spawn(fleet::follow_hosts(
            Arc::downgrade(&remote),
            host_events,
            to_feed,
        ));
        for h in 0..hosts_n {
            tokio::spawn(refresh_states(Arc::downgrade(&remote), h));
        }
        Ok(remote)
    }

    fn agent_of(&self, node: u64) -> Result<(usize, &Agent), String> {
        let host_of = self.host_of.lock().unwrap();
        let h = *host_of.get(&node).ok_or_else(|| {
            format!(
                "no host runs node {node} (the hosts run nodes {}; an added node is placed on one as it \
                 starts)",
                host_of
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        Ok((h, &self.agents[h]))
    }

    fn set_state(&self, node: u64, state: ProcState) {
        let n = self.changes.fetch_add(1, Ordering::Relaxed);
        self.states.lock().unwrap().insert(node, (state, n));
    }

    /// Asks node `node`'s agent; refused at once, naming the host, while that host is unreachable.
    async fn call(&self, node: u64, op: Op) -> Result<Answer, String> {
        let (h, _) = self.agent_of(node)?;
        let client = self.client(h).map_err(|e| format!("node {node}: {e}"))?;
        client.call(op, DEADLINE).await
    }

    /// Every host's link counters and held frames, read now (held frames oldest first across hosts), and kept
    /// for the readers that cannot wait.
    async fn refresh(&self) -> (Vec<LinkStats>, Vec<HeldFrame>) {
        // A host that is unreachable is not asked (its counters are its last read, its held frames out of
        // reach): the others answer without waiting for it.
        let reads = (0..self.agents.len()).map(|h| async move {
            match self.client(h) {
                Ok(c) => Some(c.call(Op::Links, DEADLINE).await),
                Err(_) => None,
            }
        });
        let mut stats: BTreeMap<LinkId, LinkStats> = BTreeMap::new();
        let mut held = Vec::new();
        for (h, r) in futures::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            let r = r.ok_or(());
            let links = match &r {
                Ok(Ok(Answer::Links { links, .. })) => {
                    self.last_links.lock().unwrap()[h] = links.clone();
                    links.clone()
                }
                _ => self.last_links.lock().unwrap()[h].clone(),
            };
            for s in links {
                match stats.get_mut(&s.link) {
                    Some(into) => merge(into, s),
                    None => {
                        stats.insert(s.link, s);
                    }
                }
            }
            match r {
                Err(()) => {}
                Ok(Ok(Answer::Links { held: frames, .. })) => {
                    held.extend(frames.into_iter().map(|mut f| {
                        f.seq = tag(self.agents.len(), h, f.seq);
                        f
                    }));
                }
                Ok(Ok(other)) => {
                    tracing::warn!(?other, "an agent answered `links` with something else")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read a host's links"),
            }
        }
        let stats: Vec<LinkStats> = stats.into_values().collect();
        held.sort_by(|a, b| b.held_for.cmp(&a.held_for).then(a.seq.cmp(&b.seq)));
        *self.stats.lock().unwrap() = stats.clone();
        *self.held.lock().unwrap() = held.clone();
        (stats, held)
    }

    /// The links of `frames`, per host of their sender.
    fn per_host(&self, frames: &[HeldFrame]) -> BTreeMap<usize, Vec<HeldFrame>> {
        let mut out: BTreeMap<usize, Vec<HeldFrame>> = BTreeMap::new();
        for f in frames {
            out.entry(untag(self.agents.len(), f.seq).0)
                .or_default()
                .push(f.clone());
        }
        out
    }

    /// Sends one stepping request per host and gathers the frames (their seqs tagged), oldest first.
    async fn stepped(&self, ops: Vec<(usize, Op)>) -> Vec<Stepped> {
        let calls = ops.into_iter().map(|(h, op)| async move {
            let answer = match self.client(h) {
                Ok(c) => c.call(op, DEADLINE).await,
                Err(e) => Err(e),
            };
            (h, answer)
        });
        let mut out = Vec::new();
        for (h, r) in futures::future::join_all(calls).await {
            match r {
                Ok(Answer::Stepped { frames }) => out.extend(frames.into_iter().map(|mut s| {
                    s.frame.seq = tag(self.agents.len(), h, s.frame.seq);
                    s
                })),
                Ok(other) => tracing::warn!(?other, "an agent answered a step with something else"),
                Err(e) => tracing::warn!(error = %e, "a host did not step its frames"),
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.frame.held_for));
        out
    }
}

/// Turns a host's exit event into the cache's state and the exit every follower hears.
fn on_agent_event(r: &Remote, event: AgentEvent) {
    {
        match event {
            AgentEvent::Exit {
                node,
                pid,
                code,
                signal,
                expected,
            } => {
                let at = SystemTime::now();
                // Only the incarnation the cache knows ends here: an old one's exit during a restart is not
                // the new one's.
                let current = matches!(
                    r.states.lock().unwrap().get(&node),
                    Some((ProcState::Running { pid: p } | ProcState::Paused { pid: p }, _)) if *p == pid
                );
                if current {
                    r.set_state(
                        node,
                        ProcState::Exited {
                            pid,
                            code,
                            signal: signal.clone(),
                            at,
                        },
                    );
                }
                let _ = r.exits.send(ExitEvent {
                    name: name(node),
                    pid,
                    code,
                    signal,
                    at,
                    expected,
                });
            }
        }
    }
}

/// Reads host `h`'s process states every [`REFRESH`] until the backend is gone ([`Remote::read_states`]); one
/// such task per host, so a host slow to answer delays no other, and an unreachable one is skipped.
async fn refresh_states(remote: Weak<Remote>, h: usize) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let Some(r) = remote.upgrade() else { return };
        r.read_states(h).await;
    }
}

impl Procs {
    /// Node `id`'s process state as last known (remote: the cache; see the module comment).
    pub(super) fn state(&self, id: u64) -> Option<ProcState> {
        match self {
            Procs::Local(sup) => sup.state(&name(id)),
            Procs::Remote(r) => r.states.lock().unwrap().get(&id).map(|(s, _)| s.clone()),
        }
    }

    /// Whether the nodes run on other hosts.
    pub(super) fn is_remote(&self) -> bool {
        matches!(self, Procs::Remote(_))
    }

    /// Where node `id`'s directory is: `local` (the cluster directory's `node-N`) here; on a remote host,
    /// `DIR/FOLDER/node-N` under the agent's directory, `FOLDER` the cluster's own
    /// ([`super::files::hosts_dir_name`]: a fresh cluster's is new, so it never starts on an earlier one's data).
    pub(super) fn node_dir(&self, id: u64, local: &Path) -> Result<PathBuf, String> {
        match self {
            Procs::Local(_) => Ok(local.to_path_buf()),
            Procs::Remote(r) => {
                let (_, a) = r.agent_of(id)?;
                Ok(a.dir.join(&r.folder).join(name(id)))
            }
        }
    }

    /// Starts node `id`'s process from `spec`; its pid (on its host).
    pub(super) async fn spawn(&self, id: u64, spec: ProcessSpec) -> Result<u32, String> {
        match self {
            Procs::Local(sup) => sup.spawn(spec).await.map_err(|e| e.to_string()),
            Procs::Remote(r) => {
                let program = match &r.own_exe {
                    Some(own) if *own == spec.program => None,
                    _ => Some(spec.program.display().to_string()),
                };
                let lossy = |s: &std::ffi::OsString| s.to_string_lossy().into_owned();
                let op = Op::Launch {
                    node: id,
                    program,
                    args: spec.args.iter().map(lossy).collect(),
                    env: spec.env.iter().map(|(k, v)| (lossy(k), lossy(v))).collect(),
                    log: spec.log_path.display().to_string(),
                    data_dir: spec.data_dir.as_ref().map(|d| d.display().to_string()),
                };
                r.specs.lock().unwrap().insert(id, spec);
                match r.call(id, op).await? {
                    Answer::Pid { pid } => {
                        r.set_state(id, ProcState::Running { pid });
                        Ok(pid)
                    }
                    other => Err(format!("the agent answered a launch with {other:?}")),
                }
            }
        }
    }

    /// SIGKILL to node `id`'s process group. `Err` when it is not running or the signal could not be sent.
    pub(super) async fn kill(&self, id: u64) -> Result<(), String> {
        match self {
            Procs::Local(sup) => sup.kill(&name(id)).map_err(|e| e.to_string()),
            Procs::Remote(r) => r.call(id, Op::Kill { node: id }).await.map(drop),
        }
    }

    /// SIGKILL now, for code that cannot wait: `Ok(false)` when the node was not running. Remote, the kill is
    /// sent at once and its answer awaited in the background.
    pub(super) fn kill_now(&self, id: u64) -> Result<bool, String> {
        match self {
            Procs::Local(sup) => match sup.kill(&name(id)) {
                Ok(()) => Ok(true),
                Err(ChaosError::NotRunning { .. }) => Ok(false),
                Err(e) => Err(e.to_string()),
            },
            Procs::Remote(r) => {
                let alive = matches!(
                    self.state(id),
                    Some(ProcState::Running { .. } | ProcState::Paused { .. })
                );
                let (h, _) = r.agent_of(id)?;
                // Never queued for a host that is unreachable: a kill done later is not this one.
                r.client(h).map_err(|e| format!("node {id}: {e}"))?;
                r.send(h, Op::Kill { node: id });
                Ok(alive)
            }
        }
    }

    /// SIGTERM to node `id`'s process group.
    pub(super) async fn terminate(&self, id: u64) -> Result<(), String> {
        match self {
            Procs::Local(sup) => sup.terminate(&name(id)).map_err(|e| e.to_string()),
            Procs::Remote(r) => r.call(id, Op::Terminate { node: id }).await.map(drop),
        }
    }

    /// SIGSTOP to node `id`.
    pub(super) async fn pause(&self, id: u64) -> Result<(), String> {
        match self {
            Procs::Local(sup) => sup.pause(&name(id)).map_err(|e| e.to_string()),
            Procs::Remote(r) => {
                r.call(id, Op::Pause { node: id }).await?;
                if let Some(ProcState::Running { pid }) = self.state(id) {
                    r.set_state(id, ProcState::Paused { pid });
                }
                Ok(())
            }
        }
    }

    /// SIGCONT to node `id`.
    pub(super) async fn resume(&self, id: u64) -> Result<(), String> {
        match self {
            Procs::Local(sup) => sup.resume(&name(id)).map_err(|e| e.to_string()),
            Procs::Remote(r) => {
                r.call(id, Op::Resume { node: id }).await?;
                if let Some(ProcState::Paused { pid }) = self.state(id) {
                    r.set_state(id, ProcState::Running { pid });
                }
                Ok(())
            }
        }
    }

    /// Kills node `id` if alive and starts it again (its data directory emptied when `wipe`); the new pid.
    pub(super) async fn restart(&self, id: u64, wipe: bool) -> Result<u32, String> {
        match self {
            Procs::Local(sup) => sup
                .restart(&name(id), wipe)
                .await
                .map_err(|e| e.to_string()),
            Procs::Remote(r) => {
                let old = match self.state(id) {
                    Some(ProcState::Running { pid } | ProcState::Paused { pid }) => Some(pid),
                    _ => None,
                };
                let exits = r.exits.subscribe();
                r.set_state(id, ProcState::Restarting);
                match r.call(id, Op::Restart { node: id, wipe }).await {
                    Ok(Answer::Pid { pid }) => {
                        // The old process's exit is told before the new one runs, as here (see the function).
                        if let Some(old) = old {
                            fleet::exit_told(exits, id, old).await;
                        }
                        r.set_state(id, ProcState::Running { pid });
                        Ok(pid)
                    }
                    Ok(other) => Err(format!("the agent answered a restart with {other:?}")),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Replaces what node `id` restarts with (remote: its arguments, sent at once).
    pub(super) fn set_spec(&self, id: u64, spec: ProcessSpec) -> Result<(), String> {
        match self {
            Procs::Local(sup) => sup.set_spec(spec).map_err(|e| e.to_string()),
            Procs::Remote(r) => {
                let (h, _) = r.agent_of(id)?;
                let args = spec
                    .args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                r.specs.lock().unwrap().insert(id, spec);
                r.send(h, Op::SetArgs { node: id, args });
                Ok(())
            }
        }
    }

    /// Every process exit from now on.
    pub(super) fn exits(&self) -> broadcast::Receiver<ExitEvent> {
        match self {
            Procs::Local(sup) => sup.exits(),
            Procs::Remote(r) => r.exits.subscribe(),
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL after `grace`); remote, every agent too, through the fleet,
    /// and their ssh connections (an agent unreachable then stops its nodes itself after its grace period).
    pub(super) async fn shutdown(&self, grace: Duration) {
        match self {
            Procs::Local(sup) => sup.shutdown(grace).await,
            Procs::Remote(r) => r.fleet.stop().await,
        }
    }

    /// The last `lines` lines of node `id`'s log at `path` (on its host); empty when unreadable.
    pub(super) async fn log_tail(&self, id: u64, path: &Path, lines: usize) -> String {
        match self {
            Procs::Local(_) => files::tail(path, lines),
            Procs::Remote(r) => match r.call(id, Op::Log { node: id, lines }).await {
                Ok(Answer::Log { text }) => text,
                _ => String::new(),
            },
        }
    }

    /// The last error node `id` wrote to its log at `path` ([`files::last_error`]).
    pub(super) async fn last_error(&self, id: u64, path: &Path) -> Option<String> {
        match self {
            Procs::Local(_) => files::last_error(path),
            Procs::Remote(_) => files::last_error_in(&self.log_tail(id, path, 200).await),
        }
    }

    /// The text of a file of node `id` (its address file), `None` when it is not there (yet).
    pub(super) async fn read_file(&self, id: u64, path: &Path) -> Option<String> {
        match self {
            Procs::Local(_) => std::fs::read_to_string(path).ok(),
            Procs::Remote(r) => match r
                .call(
                    id,
                    Op::ReadFile {
                        path: path.display().to_string(),
                    },
                )
                .await
            {
                Ok(Answer::File { text }) => text,
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(node = id, error = %e, "cannot read a node's file");
                    None
                }
            },
        }
    }

    /// [`Procs::remove_file`] for code that cannot wait: remote, sent at once, so it is done before anything
    /// sent to the node's agent after it (its launch).
    pub(super) fn remove_file_now(&self, id: u64, path: &Path) {
        match self {
            Procs::Local(_) => {
                let _ = std::fs::remove_file(path);
            }
            Procs::Remote(r) => {
                if let Ok((h, _)) = r.agent_of(id) {
                    r.send(
                        h,
                        Op::RemoveFile {
                            path: path.display().to_string(),
                        },
                    );
                }
            }
        }
    }

    /// Removes a file of node `id` if it is there (an earlier session's address file).
    pub(super) async fn remove_file(&self, id: u64, path: &Path) {
        match self {
            Procs::Local(_) => {
                let _ = std::fs::remove_file(path);
            }
            Procs::Remote(r) => {
                let op = Op::RemoveFile {
                    path: path.display().to_string(),
                };
                if let Err(e) = r.call(id, op).await {
                    tracing::warn!(node = id, error = %e, "cannot remove a node's file");
                }
            }
        }
    }

    /// The address node `id`'s ports bind to: its host's `address`, 127.0.0.1 here or when the host names none.
    pub(super) fn bind_ip(&self, id: u64, hosts: Option<&Hosts>) -> IpAddr {
        let here = IpAddr::from([127, 0, 0, 1]);
        match (self, hosts) {
            (Procs::Remote(r), Some(h)) => r
                .host_of
                .lock()
                .unwrap()
                .get(&id)
                .and_then(|&i| h.hosts.get(i))
                .and_then(|h| h.address)
                .unwrap_or(here),
            _ => here,
        }
    }

    /// Node → host index of every node placed on a host (the hosts file's, and added nodes'); empty here.
    pub(super) fn placed(&self) -> BTreeMap<u64, usize> {
        match self {
            Procs::Local(_) => BTreeMap::new(),
            Procs::Remote(r) => r.host_of.lock().unwrap().clone(),
        }
    }

    /// The label of the host that runs node `id`; `None` here, or for a node on no host.
    pub(super) fn host_label(&self, id: u64) -> Option<String> {
        match self {
            Procs::Local(_) => None,
            Procs::Remote(r) => r.agent_of(id).ok().map(|(_, a)| a.label.clone()),
        }
    }

    /// Puts node `id` on host `host` (an index into the hosts): where its process, its outbound links'
    /// proxies and its requests go from now on. Nothing here.
    pub(super) fn place(&self, id: u64, host: usize) {
        if let Procs::Remote(r) = self
            && host < r.agents.len()
        {
            r.host_of.lock().unwrap().insert(id, host);
        }
    }
}

impl Links {
    /// The classifier's message kinds (index order); empty without a classifier.
    pub(super) fn labels(&self) -> Vec<&'static str> {
        match self {
            Links::Local(net) => net.labels().to_vec(),
            Links::Remote(r) => r.labels.clone(),
        }
    }

    /// Starts (or finds) the proxy of link `from -> to`: the address `from` dials to reach `to`.
    pub(super) async fn add_link(&self, from: u64, to: u64) -> Result<SocketAddr, String> {
        match self {
            Links::Local(net) => net.add_link(from, to).await.map_err(|e| e.to_string()),
            Links::Remote(r) => match r.call(from, Op::Link { from, to }).await? {
                Answer::Link { addr } => Ok(addr),
                other => Err(format!("the agent answered a link with {other:?}")),
            },
        }
    }

    /// Starts (or finds) the proxy in front of node `to` that every sender dials (a per-destination kind).
    pub(super) async fn add_destination(&self, to: u64) -> Result<SocketAddr, String> {
        self.destination(to, None).await
    }

    /// [`Links::add_destination`] on the address `at` (its port included), where the proxy in front of `to`
    /// listened in an earlier session of the cluster directory: the members stored it (etcd's peer URLs). `Err`
    /// (from here or `to`'s host's agent) when `at` cannot be bound.
    pub(super) async fn add_destination_at(
        &self,
        to: u64,
        at: SocketAddr,
    ) -> Result<SocketAddr, String> {
        self.destination(to, Some(at)).await
    }

    async fn destination(&self, to: u64, at: Option<SocketAddr>) -> Result<SocketAddr, String> {
        match self {
            Links::Local(net) => match at {
                Some(at) => net.add_destination_at(to, at).await,
                None => net.add_destination(to).await,
            }
            .map_err(|e| e.to_string()),
            // On `to`'s host (see the module comment).
            Links::Remote(r) => match r.call(to, Op::Destination { to, at }).await? {
                Answer::Link { addr } => Ok(addr),
                other => Err(format!("the agent answered a destination with {other:?}")),
            },
        }
    }

    /// Where node `to` really listens, for every proxy towards it (remote: told to every host, at once).
    pub(super) fn set_upstream(&self, to: u64, addr: SocketAddr) {
        match self {
            Links::Local(net) => net.set_upstream(to, addr),
            Links::Remote(r) => {
                for h in 0..r.agents.len() {
                    r.send(h, Op::Upstream { to, addr });
                }
            }
        }
    }

    /// Records that member id `member` is node `node` (kinds that identify senders in their frames; remote: told
    /// to every host, whose proxies in front of its nodes hear from every member).
    pub(super) fn note_sender(&self, member: u64, node: u64) {
        match self {
            Links::Local(net) => net.senders().set(member, node),
            Links::Remote(r) => {
                for h in 0..r.agents.len() {
                    r.send(h, Op::Sender { member, node });
                }
            }
        }
    }

    /// Installs `spec` on `links` beside their faults; returns the id [`Links::remove_fault_id`] takes.
    pub(super) fn add_fault(&self, links: Vec<LinkId>, spec: FaultSpec) -> u64 {
        match self {
            Links::Local(net) => net.add_fault(links, spec),
            Links::Remote(r) => {
                let fault = r.next_fault.fetch_add(1, Ordering::Relaxed);
                let mut on = BTreeSet::new();
                for (h, links) in split(r, links) {
                    on.insert(h);
                    r.send(
                        h,
                        Op::AddFault {
                            fault,
                            links,
                            spec: spec.clone(),
                        },
                    );
                }
                r.faults.lock().unwrap().insert(fault, on);
                fault
            }
        }
    }

    /// Installs fault `id` on more links (a node added since).
    pub(super) fn extend_fault(&self, id: u64, links: Vec<LinkId>, spec: FaultSpec) {
        match self {
            Links::Local(net) => net.extend_fault(id, links, spec),
            Links::Remote(r) => {
                for (h, links) in split(r, links) {
                    r.faults.lock().unwrap().entry(id).or_default().insert(h);
                    r.send(
                        h,
                        Op::ExtendFault {
                            fault: id,
                            links,
                            spec: spec.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Removes fault `id` from every link it is on.
    pub(super) fn remove_fault_id(&self, id: u64) {
        match self {
            Links::Local(net) => {
                net.remove_fault_id(id);
            }
            Links::Remote(r) => {
                let hosts = r.faults.lock().unwrap().remove(&id).unwrap_or_default();
                for h in hosts {
                    r.send(h, Op::RemoveFault { fault: id });
                }
            }
        }
    }

    /// Removes every fault from every link.
    pub(super) fn heal_all(&self) {
        match self {
            Links::Local(net) => net.heal_all(),
            Links::Remote(r) => {
                r.faults.lock().unwrap().clear();
                for h in 0..r.agents.len() {
                    r.send(h, Op::HealAll);
                }
            }
        }
    }

    /// The frames held now, oldest first (remote: read from every host now).
    pub(super) async fn held(&self) -> Vec<HeldFrame> {
        match self {
            Links::Local(net) => net.held(),
            Links::Remote(r) => r.refresh().await.1,
        }
    }

    /// Held frames dropped because their connection ended, per link, since the last call (counted in the
    /// links' stats either way). Remote: the growth of the links' `held_lost` (every host's) since the last
    /// call, as last read ([`Links::stats`], [`Links::held`]): a read late, never missed (tester 7's finding 3).
    pub(super) fn take_lost_held(&self) -> Vec<squall_chaos::LostHeld> {
        match self {
            Links::Local(net) => net.take_lost_held(),
            Links::Remote(r) => {
                let stats = r.stats.lock().unwrap().clone();
                lost_since(&mut r.lost_told.lock().unwrap(), &stats)
            }
        }
    }

    /// The frames held as last read (remote: at the last [`Links::held`] or [`Links::stats`]), for code that
    /// cannot wait.
    pub(super) fn held_now(&self) -> Vec<HeldFrame> {
        match self {
            Links::Local(net) => net.held(),
            Links::Remote(r) => r.held.lock().unwrap().clone(),
        }
    }

    /// Every link's counters and faults, sorted by link (remote: read from every host now).
    pub(super) async fn stats(&self) -> Vec<LinkStats> {
        match self {
            Links::Local(net) => net.stats(),
            Links::Remote(r) => r.refresh().await.0,
        }
    }

    /// The links' counters as last read, for code that cannot wait.
    pub(super) fn stats_now(&self) -> Vec<LinkStats> {
        match self {
            Links::Local(net) => net.stats(),
            Links::Remote(r) => r.stats.lock().unwrap().clone(),
        }
    }

    /// The hosts among `links`' ends that squall cannot reach now, each as its refusal (`host h2 is unreachable
    /// (…); squall is reconnecting, nothing was done`) with those of `links` it holds frames of (a link's frames
    /// are held at both its ends' proxies: requests at the sender's, answers at the receiver's), in host order.
    /// Empty locally and while every host answers: a command on held frames then sees them all.
    pub(super) fn out_of_reach(&self, links: &[LinkId]) -> Vec<(String, Vec<LinkId>)> {
        match self {
            Links::Local(_) => Vec::new(),
            Links::Remote(r) => {
                let host_of = r.host_of.lock().unwrap().clone();
                let reach = r.reach.lock().unwrap();
                let down: Vec<Option<String>> =
                    reach.iter().map(|h| h.down().map(str::to_string)).collect();
                out_of_reach(&host_of, &down, links)
            }
        }
    }

    /// Delivers (`deliver`) or discards the `n` oldest frames held on links `pick` accepts.
    pub(super) async fn step(
        &self,
        pick: impl Fn(LinkId) -> bool,
        n: usize,
        deliver: bool,
    ) -> Vec<Stepped> {
        match self {
            Links::Local(net) if deliver => net.step(pick, n),
            Links::Local(net) => net.drop_held(pick, n),
            Links::Remote(r) => {
                // The n oldest across hosts; each host then takes its share, oldest first on those links.
                let held = r.refresh().await.1;
                let chosen: Vec<HeldFrame> =
                    held.into_iter().filter(|f| pick(f.link)).take(n).collect();
                let ops = r
                    .per_host(&chosen)
                    .into_iter()
                    .map(|(h, frames)| {
                        let links: BTreeSet<LinkId> = frames.iter().map(|f| f.link).collect();
                        let op = Op::Step {
                            links: links.into_iter().collect(),
                            n: frames.len(),
                            deliver,
                        };
                        (h, op)
                    })
                    .collect();
                r.stepped(ops).await
            }
        }
    }

    /// Delivers every frame held on links `pick` accepts (the holds stay).
    pub(super) async fn release(&self, pick: impl Fn(LinkId) -> bool) -> Vec<Stepped> {
        match self {
            Links::Local(net) => net.release(pick),
            Links::Remote(r) => {
                let held = r.refresh().await.1;
                let chosen: Vec<HeldFrame> = held.into_iter().filter(|f| pick(f.link)).collect();
                let ops = r
                    .per_host(&chosen)
                    .into_iter()
                    .map(|(h, frames)| {
                        let links: BTreeSet<LinkId> = frames.iter().map(|f| f.link).collect();
                        (
                            h,
                            Op::Release {
                                links: links.into_iter().collect(),
                            },
                        )
                    })
                    .collect();
                r.stepped(ops).await
            }
        }
    }

    /// Discards the held frames whose `seq` `pick` accepts.
    pub(super) async fn drop_held_frames(&self, pick: impl Fn(u64) -> bool) -> Vec<Stepped> {
        match self {
            Links::Local(net) => net.drop_held_frames(pick),
            Links::Remote(r) => {
                let held = r.refresh().await.1;
                let chosen: Vec<HeldFrame> = held.into_iter().filter(|f| pick(f.seq)).collect();
                let ops = r
                    .per_host(&chosen)
                    .into_iter()
                    .map(|(h, frames)| {
                        let seqs = frames
                            .iter()
                            .map(|f| untag(r.agents.len(), f.seq).1)
                            .collect();
                        (h, Op::DropFrames { seqs })
                    })
                    .collect();
                r.stepped(ops).await
            }
        }
    }

    /// The messages traced since `cursor` (the trace switched on at the first read), their times in
    /// microseconds since `started` (the session's start), and how many were lost to the ring's bound.
    pub(super) async fn read_trace(
        &self,
        cursor: &mut TraceCursor,
        started: Instant,
    ) -> (Vec<MessageEvent>, u64) {
        match self {
            Links::Local(net) => {
                let trace = net.trace();
                if cursor.0.is_empty() {
                    trace.set_on(true);
                    cursor.0.push(0);
                }
                // The trace counts from the network's creation, a little after the session's start.
                let offset = trace
                    .origin()
                    .saturating_duration_since(started)
                    .as_micros() as i64;
                let read = trace.since(cursor.0[0]);
                cursor.0[0] = read.next;
                let events = read
                    .events
                    .into_iter()
                    .map(|m| to_session(m, offset))
                    .collect();
                (events, read.lost)
            }
            Links::Remote(r) => {
                cursor.0.resize(r.agents.len(), 0);
                // An unreachable host is read where its cursor left off once it is back.
                let reads = cursor.0.iter().enumerate().map(|(h, &c)| async move {
                    match r.client(h) {
                        Ok(client) => client.call(Op::Trace { cursor: c }, DEADLINE).await,
                        Err(e) => Err(e),
                    }
                });
                let mut events = Vec::new();
                let mut lost = 0;
                for (h, answer) in futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    let Ok(Answer::Trace {
                        events: got,
                        lost: l,
                        next,
                        now_us,
                    }) = answer
                    else {
                        continue;
                    };
                    // The host's trace clock against the session's, at the answer (off by the one-way delay).
                    let offset = started.elapsed().as_micros() as i64 - now_us as i64;
                    cursor.0[h] = next;
                    lost += l;
                    events.extend(got.into_iter().map(|mut m| {
                        m.id = tag(r.agents.len(), h, m.id);
                        to_session(m, offset)
                    }));
                }
                events.sort_by_key(|m| m.sent_us);
                (events, lost)
            }
        }
    }
}

/// `links` per host whose proxies carry them: the sender's host and the receiver's (see the module comment).
fn split(r: &Remote, links: Vec<LinkId>) -> BTreeMap<usize, Vec<LinkId>> {
    let mut out: BTreeMap<usize, Vec<LinkId>> = BTreeMap::new();
    let host_of = r.host_of.lock().unwrap().clone();
    for l in links {
        let hosts: BTreeSet<usize> = [l.from, l.to]
            .iter()
            .filter_map(|n| host_of.get(n).copied())
            .collect();
        for h in hosts {
            out.entry(h).or_default().push(l);
        }
    }
    out
}

/// The hosts (by index in `down`, where `Some` is the refusal of one squall cannot reach) that hold frames of
/// some of `links` (at either end, as `host_of` places the nodes) and are down, each with its refusal and
/// those links.
fn out_of_reach(
    host_of: &BTreeMap<u64, usize>,
    down: &[Option<String>],
    links: &[LinkId],
) -> Vec<(String, Vec<LinkId>)> {
    let mut out: BTreeMap<usize, Vec<LinkId>> = BTreeMap::new();
    for l in links {
        let ends: BTreeSet<usize> = [l.from, l.to]
            .iter()
            .filter_map(|n| host_of.get(n).copied())
            .collect();
        for h in ends {
            if down.get(h).is_some_and(Option::is_some) {
                out.entry(h).or_default().push(*l);
            }
        }
    }
    out.into_iter()
        .filter_map(|(h, links)| Some((down[h].clone()?, links)))
        .collect()
}

/// The held frames lost on each link of `stats` beyond what `told` says was told, in link order; `told` then
/// holds every link's `held_lost`.
fn lost_since(
    told: &mut BTreeMap<LinkId, u64>,
    stats: &[LinkStats],
) -> Vec<squall_chaos::LostHeld> {
    let mut out = Vec::new();
    for s in stats {
        let before = told.insert(s.link, s.held_lost).unwrap_or(0);
        if s.held_lost > before {
            out.push(squall_chaos::LostHeld {
                link: s.link,
                frames: s.held_lost - before,
            });
        }
    }
    out.sort_by_key(|l| l.link);
    out
}

/// Adds another host's counters of the same link to `into` (faults and labels once each).
fn merge(into: &mut LinkStats, s: LinkStats) {
    into.listen = into.listen.or(s.listen);
    into.frames_forwarded += s.frames_forwarded;
    into.bytes_forwarded += s.bytes_forwarded;
    into.frames_dropped += s.frames_dropped;
    into.bytes_dropped += s.bytes_dropped;
    into.frames_duplicated += s.frames_duplicated;
    into.frames_delayed += s.frames_delayed;
    into.frames_queued += s.frames_queued;
    into.frames_held += s.frames_held;
    into.held_lost += s.held_lost;
    into.connections_open += s.connections_open;
    into.connections_total += s.connections_total;
    into.connections_refused += s.connections_refused;
    into.connections_reset += s.connections_reset;
    into.upstream_failures += s.upstream_failures;
    for f in s.faults {
        if !into.faults.contains(&f) {
            into.faults.push(f);
        }
    }
    for c in s.by_label {
        match into.by_label.iter_mut().find(|x| x.label == c.label) {
            Some(x) => {
                x.frames += c.frames;
                x.dropped += c.dropped;
            }
            None => into.by_label.push(c),
        }
    }
}

/// The message with its times moved by `offset_us` (never below 0).
fn to_session(mut m: MessageEvent, offset_us: i64) -> MessageEvent {
    let shift = |t: u64| (t as i64 + offset_us).max(0) as u64;
    m.sent_us = shift(m.sent_us);
    m.fate = match m.fate {
        Fate::Delivered { at_us } => Fate::Delivered {
            at_us: shift(at_us),
        },
        Fate::Dropped { by, at_us } => Fate::Dropped {
            by,
            at_us: shift(at_us),
        },
        Fate::Held => Fate::Held,
    };
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tester10's finding 4 (issue 24): while host2 was unreachable, `step 2->1` said no frame was held there
    /// and `release 2->1` answered `ok`. The links whose frames an unreachable host holds (it runs either end)
    /// are named with its refusal; links among reachable hosts are not.
    #[test]
    fn links_with_an_end_on_an_unreachable_host_are_out_of_reach_with_its_refusal() {
        let host_of: BTreeMap<u64, usize> = [(1, 0), (2, 1), (3, 2), (4, 0)].into();
        let refusal =
            "host host2 is unreachable (no answer); squall is reconnecting, nothing was done";
        let down = vec![None, Some(refusal.to_string()), None];
        let all: Vec<LinkId> = [(1, 2), (2, 1), (2, 3), (1, 3), (3, 1), (4, 1)]
            .iter()
            .map(|&(a, b)| LinkId::new(a, b))
            .collect();
        assert_eq!(
            out_of_reach(&host_of, &down, &all),
            vec![(
                refusal.to_string(),
                vec![LinkId::new(1, 2), LinkId::new(2, 1), LinkId::new(2, 3)]
            )]
        );
        assert_eq!(
            out_of_reach(&host_of, &down, &[LinkId::new(1, 3), LinkId::new(4, 1)]),
            vec![]
        );
        assert_eq!(out_of_reach(&host_of, &[None, None, None], &all), vec![]);
    }

    /// Tester 7's finding 3: one link's frames are held on two hosts (its requests at the sender's proxy, its
    /// answers at the receiver's), and the merged counters took `held-total` and `held-lost` from one host
    /// only, below the frames held now on both.
    #[test]
    fn merged_link_counters_add_every_host_s_held_frames() {
        let stats = |held, lost, dropped| LinkStats {
            link: LinkId::new(2, 3),
            listen: None,
            frames_forwarded: 10,
            bytes_forwarded: 100,
            frames_dropped: dropped,
            bytes_dropped: 0,
            frames_duplicated: 0,
            frames_delayed: 0,
            frames_queued: 0,
            frames_held: held,
            held_lost: lost,
            connections_open: 1,
            connections_total: 1,
            connections_refused: 0,
            connections_reset: 0,
            upstream_failures: 0,
            faults: Vec::new(),
            by_label: Vec::new(),
        };
        let mut into = stats(20, 6, 6);
        merge(&mut into, stats(4, 1, 1));
        assert_eq!(
            (into.frames_held, into.held_lost, into.frames_dropped),
            (24, 7, 7)
        );
        // The lost ones are told once each (the feed's `held frames dropped` line): 7, then nothing, then the
        // 2 more lost since.
        let mut told = BTreeMap::new();
        let lost = |l: Vec<squall_chaos::LostHeld>| -> Vec<(LinkId, u64)> {
            l.into_iter().map(|x| (x.link, x.frames)).collect()
        };
        assert_eq!(
            lost(lost_since(&mut told, std::slice::from_ref(&into))),
            [(LinkId::new(2, 3), 7)]
        );
        assert!(lost_since(&mut told, std::slice::from_ref(&into)).is_empty());
        into.held_lost += 2;
        assert_eq!(
            lost(lost_since(&mut told, &[into])),
            [(LinkId::new(2, 3), 2)]
        );
    }

    #[test]
    fn a_host_index_tags_and_untags_sequence_numbers() {
        assert_eq!(untag(4, tag(4, 0, 17)), (0, 17));
        assert_eq!(untag(4, tag(4, 3, 17)), (3, 17));
        assert_ne!(tag(4, 1, 17), tag(4, 2, 17));
        // One host: the numbers are its own.
        assert_eq!(tag(1, 0, 17), 17);
    }

    #[test]
    fn trace_times_move_by_the_offset_and_never_below_zero() {
        let m = MessageEvent {
            id: 1,
            link: LinkId::new(1, 2),
            kind: None,
            sent_us: 100,
            fate: Fate::Delivered { at_us: 150 },
        };
        let later = to_session(m.clone(), 1_000);
        assert_eq!(later.sent_us, 1_100);
        assert_eq!(later.fate, Fate::Delivered { at_us: 1_150 });
        let earlier = to_session(m, -120);
        assert_eq!(earlier.sent_us, 0);
        assert_eq!(earlier.fate, Fate::Delivered { at_us: 30 });
    }
}
