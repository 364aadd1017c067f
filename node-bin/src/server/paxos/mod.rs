//! Drives the Multi-Paxos core (`crate::paxos`) for a node run with `--protocol paxos`: the same ports, the
//! same key-value state machine, client API and control service as a Raft node, so workloads, `check`, the
//! histories and the orchestrator's status polling work unchanged.
//!
//! One actor task owns the core and the state machine. Each turn takes one input plus whatever else is
//! queued, then drains the core's ready batches: the write (promise and accepted values) goes to the persist
//! thread the Raft node uses too (module `persist` here, module `durable` of the server), the messages go out
//! once what they claim is durable, and the chosen values are applied. A slow disk delays what waits for it,
//! not ticks or heartbeats. A failed write stops the node (fail-stop): an acceptor must never answer for state
//! it could not store.
//!
//! Client writes and reads both go through a slot (a read is a logged `get`), so no answer relies on a lease.
//! A client's value proposed at a slot that another proposer's value wins is answered `Retry`; the client
//! retries with the same id and sequence number, which the state machine applies at most once.
//!
//! Status maps Paxos onto the fields the orchestrator reads: the role (leader; `candidate` while running phase
//! 1; follower), the promised ballot packed into one number where Raft shows a term ([`crate::paxos::Ballot::pack`]: unique
//! per proposer, ordered like ballots), the chosen prefix as the commit index, and a log tail of the chosen
//! values (`PaxosNode::status` says why only those). Its [`PaxosView`] adds the ballots themselves and the
//! ballot of each latest accepted slot, which people read as `round.proposer` and the orchestrator's Paxos
//! invariants judge.

mod api;
mod persist;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::kv::{KvCommand, KvStore};
use crate::paxos::{Config, Message, Paxos, PaxosEvent, PaxosRole, Payload, Slot};
use crate::raft::{CoreStatus, Membership, NodeId, Role};
use crate::rpc::{
    EventBatch, KvReply, KvRequest, LogCell, NodeEvent, NodeStatus, PaxosView, RpcCounters,
};
use crate::storage::paxos::PaxosStorage;

use super::{BoundAddrs, LOG_TAIL, NodeConfig, StartError};

/// How long a client request waits for its value to be chosen before it is answered `Retry`.
const CLIENT_WAIT: Duration = Duration::from_millis(1500);

/// Inputs of the actor.
enum Cmd {
    Peer(NodeId, Vec<Message>),
    Client(KvRequest, oneshot::Sender<KvReply>),
    Status(oneshot::Sender<NodeStatus>),
    Events(u64, u32, oneshot::Sender<EventBatch>),
    /// The persist thread answered a job (module `persist`).
    Persisted,
}

/// A client request whose value was offered to the core.
struct Waiting {
    /// The slot it was proposed at (`None` while queued for phase 1, leases off).
    slot: Option<Slot>,
    tx: oneshot::Sender<KvReply>,
    since: Instant,
}

struct PaxosNode {
    cfg: NodeConfig,
    core: Paxos,
    /// The persist thread, which owns the storage, and what it has answered.
    persist: persist::Persist,
    kv: KvStore,
    /// Senders of the messages to each peer.
    peers: BTreeMap<NodeId, mpsc::UnboundedSender<Message>>,
    /// Client requests by (client id, sequence number).
    waiting: HashMap<(u64, u64), Waiting>,
    events: super::events::EventFeed,
    counters: RpcCounters,
    started: Instant,
    last_snapshot: Slot,
}

/// Runs a Paxos node until SIGINT/SIGTERM. `leases` is the distinguished proposer's lease (off: dueling
/// proposers). Errors a person must fix come back as [`StartError`].
pub async fn run(cfg: NodeConfig, leases: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    if cfg.peers.contains_key(&cfg.id) {
        return Err(StartError::Config(format!(
            "--peers lists node {} itself; list only the other nodes",
            cfg.id
        ))
        .into());
    }
    if cfg.join {
        return Err(StartError::Config(
            "--join: a Paxos node (--protocol paxos) has no membership changes; start it with the full --peers list"
                .into(),
        )
        .into());
    }
    let tick_ms = cfg.tick.as_millis().max(1) as u64;
    let ticks = |d: Duration| ((d.as_millis() as u64) / tick_ms).max(1) as u32;
    let core_cfg = Config {
        id: cfg.id,
        peers: cfg.peers.keys().copied().collect(),
        leases,
        lease_ticks_min: ticks(cfg.election_timeout.0),
        lease_ticks_max: ticks(cfg.election_timeout.1).max(ticks(cfg.election_timeout.0) + 1),
        heartbeat_ticks: ticks(cfg.heartbeat),
        max_batch: 64,
        seed: cfg.seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    core_cfg
        .validate()
        .map_err(|e| StartError::Config(format!("--id/--peers: {e}")))?;
    let peer_listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: cfg.listen,
            what: "--listen",
            source,
        })?;
    let api_listener =
        TcpListener::bind(cfg.api_listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: cfg.api_listen,
                what: "--api-listen",
                source,
            })?;
    let (storage, recovered) =
        PaxosStorage::open_as(&cfg.data_dir, cfg.initial_state).map_err(StartError::Storage)?;
    if let Some(cause) = &recovered.lost_data {
        return Err(StartError::Config(format!(
            "{} may have lost durable state ({cause}). A Paxos acceptor that forgot a promise or an accepted \
             value can let two values be chosen in one slot, and this node does not recover from that; move the \
             data directory aside and start it with --initial-state new only if it never ran in this cluster",
            cfg.data_dir.display()
        ))
        .into());
    }
    let peer_addr = peer_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    if let Some(path) = &cfg.addr_file {
        let addrs = BoundAddrs {
            id: cfg.id,
            pid: std::process::id(),
            peer: peer_addr,
            api: api_addr,
        };
        super::open::write_atomically(path, &serde_json::to_vec(&addrs)?)
            .with_context(|| format!("writing address file {}", path.display()))?;
    }
    tracing::info!(id = cfg.id, cluster = %cfg.cluster_id, %peer_addr, %api_addr, leases, "Paxos node listening");

    let (tx, rx) = mpsc::unbounded_channel::<Cmd>();
    let rpc_timeout = (cfg.election_timeout.1 * 4).max(Duration::from_secs(1));
    let mut peers = BTreeMap::new();
    for (&peer, &addr) in &cfg.peers {
        let (ptx, prx) = mpsc::unbounded_channel();
        peers.insert(peer, ptx);
        tokio::spawn(api::peer_sender(
            peer,
            addr,
            cfg.cluster_id.clone(),
            cfg.id,
            rpc_timeout,
            prx,
        ));
    }
    tokio::spawn(api::accept_peers(
        peer_listener,
        cfg.cluster_id.clone(),
        tx.clone(),
    ));
    tokio::spawn(api::accept_api(api_listener, tx.clone()));
    let mut node = PaxosNode::assemble(cfg, core_cfg, storage, recovered, peers, &tx, started)?;
    drop(tx);
    node.run(rx).await
}

impl PaxosNode {
    /// Builds the actor over an open storage (starting its persist thread, which wakes the actor through
    /// `tx`), with the senders of the messages to each peer.
    fn assemble(
        cfg: NodeConfig,
        core_cfg: Config,
        storage: PaxosStorage,
        recovered: crate::storage::paxos::PaxosRecovered,
        peers: BTreeMap<NodeId, mpsc::UnboundedSender<Message>>,
        tx: &mpsc::UnboundedSender<Cmd>,
        started: Instant,
    ) -> anyhow::Result<PaxosNode> {
        let persist = persist::Persist::start(storage, recovered.restored.promised, tx.downgrade())
            .context("starting the persist thread")?;
        let restored = recovered.restored;
        let kv = match &restored.snapshot {
            Some((_, data)) => KvStore::restore(data)
                .with_context(|| format!("snapshot in {} is unreadable", cfg.data_dir.display()))?,
            None => KvStore::new(),
        };
        let snapshot_slot = restored.snapshot.as_ref().map_or(0, |s| s.0);
        let last = restored.accepted.last().map_or(snapshot_slot, |(s, _)| *s);
        tracing::info!(
            promised = %restored.promised,
            accepted = restored.accepted.len(),
            snapshot_slot,
            "recovered promise {}, {} accepted slots, snapshot at slot {snapshot_slot}",
            restored.promised,
            restored.accepted.len()
        );
        let started_event = NodeEvent::Started {
            term: restored.promised.pack(),
            last_index: last,
            snapshot_index: snapshot_slot,
            empty: recovered.empty,
            truncated_tail_bytes: 0,
            damaged_tail: false,
        };
        let mut node = PaxosNode {
            core: Paxos::new(core_cfg, restored),
            cfg,
            persist,
            kv,
            peers,
            waiting: HashMap::new(),
            events: super::events::EventFeed::new(started),
            counters: RpcCounters::default(),
            started,
            last_snapshot: snapshot_slot,
        };
        node.record(started_event);
        Ok(node)
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let mut status = Vec::new();
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    self.handle(cmd, &mut status)?;
                    while let Ok(cmd) = rx.try_recv() {
                        self.handle(cmd, &mut status)?;
                    }
                }
                _ = ticker.tick() => {
                    self.core.tick();
                    self.expire_waiting();
                }
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    return Ok(());
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT: shutting down");
                    return Ok(());
                }
            }
            self.drain();
            // Answered once the turn's writes are durable, so status shows only durable state.
            for tx in status {
                self.status_when_durable(tx);
            }
        }
    }

    fn handle(
        &mut self,
        cmd: Cmd,
        status: &mut Vec<oneshot::Sender<NodeStatus>>,
    ) -> anyhow::Result<()> {
        match cmd {
            Cmd::Persisted => self.take_persisted()?,
            Cmd::Peer(from, messages) => {
                for m in messages {
                    self.count_in(&m);
                    self.core.step(from, m);
                }
            }
            Cmd::Client(req, tx) => self.client(req, tx),
            Cmd::Status(tx) => status.push(tx),
            Cmd::Events(cursor, max, tx) => {
                let _ = tx.send(self.events_from(cursor, max));
            }
        }
        Ok(())
    }

    /// Offers a client's operation to the core (a read too: it goes through a slot).
    fn client(&mut self, req: KvRequest, tx: oneshot::Sender<KvReply>) {
        self.counters.client_in += 1;
        if let Err(e) = req.op.check_size() {
            let _ = tx.send(KvReply::TooLarge(e));
            return;
        }
        let key = (req.client_id, req.seq);
        let bytes = KvStore::encode_command(&KvCommand {
            client_id: req.client_id,
            seq: req.seq,
            op: req.op,
        });
        match self.core.propose(Payload::Command(bytes)) {
            Err(e) => {
                let _ = tx.send(KvReply::NotLeader {
                    leader: e.leader_hint,
                });
            }
            Ok(slot) => {
                let w = Waiting {
                    slot,
                    tx,
                    since: Instant::now(),
                };
                if let Some(old) = self.waiting.insert(key, w) {
                    let _ = old.tx.send(KvReply::Retry {
                        reason: "superseded by a retry of the same request".into(),
                    });
                }
            }
        }
    }

    /// Requests not chosen in time are answered `Retry` (they may still be chosen; a retry applies once).
    fn expire_waiting(&mut self) {
        let now = Instant::now();
        let late: Vec<(u64, u64)> = self
            .waiting
            .iter()
            .filter(|(_, w)| now.duration_since(w.since) >= CLIENT_WAIT)
            .map(|(&k, _)| k)
            .collect();
        for k in late {
            if let Some(w) = self.waiting.remove(&k) {
                let reason = match w.slot {
                    Some(s) => format!("slot {s} not chosen within {CLIENT_WAIT:?}"),
                    None => format!("no ballot of this node won within {CLIENT_WAIT:?}"),
                };
                let _ = w.tx.send(KvReply::Retry { reason });
            }
        }
    }

    /// Follows the ready contract until the core has nothing more: the writes go to the persist thread in the
    /// order the readies were taken, and the messages wait for them as far as they must (module `persist`).
    fn drain(&mut self) {
        while self.core.has_ready() {
            let rd = self.core.take_ready();
            let number = self.core.readies_taken();
            if let Some((slot, data)) = rd.snapshot {
                self.submit_install(slot, data);
                // What those requests returned is in the snapshot's session table: a retry gets it.
                let covered: Vec<(u64, u64)> = self
                    .waiting
                    .iter()
                    .filter(|(_, w)| w.slot.is_some_and(|s| s <= slot))
                    .map(|(&k, _)| k)
                    .collect();
                for k in covered {
                    if let Some(w) = self.waiting.remove(&k) {
                        let _ = w.tx.send(KvReply::Retry {
                            reason: format!("slots up to {slot} were installed from a snapshot"),
                        });
                    }
                }
            }
            self.submit(rd.promised, rd.accepted, number);
            for (to, m) in rd.messages {
                self.send_or_defer(to, m);
            }
            for ev in rd.events {
                log_event(&ev);
                self.record(NodeEvent::Paxos(ev));
            }
            for (slot, value) in rd.chosen {
                self.apply_or_keep(slot, value);
            }
            self.maybe_snapshot();
        }
    }

    /// Sends one message to a peer, counting it.
    fn send(&mut self, to: NodeId, m: Message) {
        self.count_out(&m);
        if let Some(p) = self.peers.get(&to) {
            let _ = p.send(m);
        }
    }

    fn apply(&mut self, slot: Slot, value: Payload) {
        match &value {
            Payload::Command(bytes) => {
                self.kv.chain_applied(slot, 0, bytes);
                match KvStore::decode_command(bytes) {
                    Ok(cmd) => {
                        let result = self.kv.apply(slot, &cmd);
                        if let Some(w) = self.waiting.remove(&(cmd.client_id, cmd.seq)) {
                            let _ = w.tx.send(KvReply::Done(result));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(slot, "chosen value is not a command: {e}");
                        self.kv.set_applied_index(slot);
                    }
                }
            }
            _ => {
                self.kv.chain_applied(slot, 0, &[]);
                self.kv.set_applied_index(slot);
            }
        }
        // Requests proposed at this slot whose value lost it.
        let lost: Vec<(u64, u64)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.slot == Some(slot))
            .map(|(&k, _)| k)
            .collect();
        for k in lost {
            if let Some(w) = self.waiting.remove(&k) {
                let _ = w.tx.send(KvReply::Retry {
                    reason: format!("another proposer's value was chosen in slot {slot}"),
                });
            }
        }
    }

    /// Takes a snapshot every `snapshot_every` applied slots and hands it to the persist thread (module
    /// `persist`); the core drops the slots it covers once it is durable.
    fn maybe_snapshot(&mut self) {
        let applied = self.kv.applied_index();
        let every = self.cfg.snapshot_every;
        if every == 0 || applied < self.last_snapshot + every || !self.may_compact() {
            return;
        }
        let data = self.kv.snapshot();
        self.submit_compaction(applied, data);
    }

    fn count_in(&mut self, m: &Message) {
        let c = &mut self.counters;
        match m {
            Message::Prepare { .. } => c.vote_in += 1,
            Message::Accept { .. } | Message::Heartbeat { .. } => c.append_in += 1,
            Message::Snapshot { .. } => c.snapshot_in += 1,
            _ => c.reply_in += 1,
        }
    }

    fn count_out(&mut self, m: &Message) {
        let c = &mut self.counters;
        match m {
            Message::Prepare { .. } => c.vote_out += 1,
            Message::Accept { .. } | Message::Heartbeat { .. } => c.append_out += 1,
            Message::Snapshot { .. } => c.snapshot_out += 1,
            _ => {}
        }
    }

    fn record(&mut self, event: NodeEvent) {
        self.events.record(event);
    }

    fn events_from(&self, cursor: u64, max: u32) -> EventBatch {
        self.events.from(cursor, max)
    }

    /// The status in the shape the orchestrator reads (see the module docs).
    fn status(&self) -> NodeStatus {
        let st = self.core.status();
        let role = match st.role {
            PaxosRole::Leader => Role::Leader,
            PaxosRole::Preparing => Role::Candidate,
            PaxosRole::Acceptor => Role::Follower,
        };
        let last = st.last_accepted.max(st.chosen_to);
        // The tail shows the chosen prefix only, each slot with term 0: the orchestrator's Paxos invariants
        // compare what every node ever showed chosen at a slot ("one value chosen per slot, never changed").
        // Accepted values that are not chosen differ between acceptors legitimately, so only their ballots are
        // shown (in the PaxosView, for "no accept below a promise").
        let from = st
            .chosen_to
            .saturating_sub(LOG_TAIL as u64 - 1)
            .max(st.snapshot_slot + 1);
        let log_tail = self
            .core
            .chosen_in(from, st.chosen_to)
            .into_iter()
            .map(|(slot, value)| LogCell {
                index: slot,
                term: 0,
                text: match &value {
                    Payload::Command(bytes) => KvStore::describe(bytes),
                    _ => "noop".to_string(),
                },
            })
            .collect();
        let accepted_from = st
            .last_accepted
            .saturating_sub(LOG_TAIL as u64 - 1)
            .max(st.snapshot_slot + 1);
        let voters = std::iter::once(self.cfg.id).chain(self.cfg.peers.keys().copied());
        NodeStatus {
            cluster_id: self.cfg.cluster_id.clone(),
            pid: std::process::id(),
            core: CoreStatus {
                id: st.id,
                role,
                // The durable promise (the core's may still be being written).
                term: self.persist.durable_promise.pack(),
                vote: None,
                leader: st.leader,
                commit_index: st.chosen_to,
                last_log_index: last,
                last_log_term: 0,
                snapshot_index: st.snapshot_slot,
                progress: Vec::new(),
                config: Membership::with_voters(voters),
                config_index: 0,
                config_committed: true,
            },
            applied_index: self.kv.applied_index(),
            applied_hash: u64::from(self.kv.applied_hash()),
            log_tail,
            rpc: self.counters.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            keys: self.kv.len() as u64,
            recovering: false,
            recovery_wait: None,
            first_log_index: st.snapshot_slot + 1,
            frozen: false,
            election_due_ms: None,
            recovered: None,
            paxos: Some(PaxosView {
                promised: self.persist.durable_promise,
                leader_ballot: self.core.leader_ballot(),
                accepted: self
                    .core
                    .accepted_in(accepted_from, st.last_accepted)
                    .into_iter()
                    .map(|(slot, a)| (slot, a.ballot))
                    .collect(),
                leases: st.leases,
                accepted_from,
                chosen_above: self.core.chosen_above(LOG_TAIL),
            }),
        }
    }
}

fn log_event(ev: &PaxosEvent) {
    match ev {
        PaxosEvent::PrepareStarted { ballot } => {
            tracing::info!(%ballot, "phase 1 with ballot {ballot}")
        }
        PaxosEvent::BecameLeader { ballot, recovered } => {
            tracing::info!(%ballot, recovered, "leading at ballot {ballot}")
        }
        PaxosEvent::SteppedDown { ballot, reason } => {
            tracing::info!(%ballot, "stopped proposing: {reason}")
        }
        PaxosEvent::LeaderChanged { leader, ballot } => {
            tracing::info!(?leader, %ballot, "leader changed")
        }
        PaxosEvent::SnapshotInstalled { slot } => tracing::info!(slot, "snapshot installed"),
        PaxosEvent::SnapshotTaken { slot } => tracing::info!(slot, "snapshot taken"),
    }
}
