//! Starting a node: validate the settings, bind both ports, open the storage, rebuild the core and the state
//! machine from it, write the address file, then start the peer senders, the listeners and the actor.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::kv::KvStore;
use crate::raft::{Config, Raft, Restored};
use crate::rpc::{self, NodeEvent, RpcCounters};
use crate::storage::{Recovered, Storage};

use super::api::{accept_api, accept_peers};
use super::peers::peer_sender;
use super::persist::Pipeline;
use super::timings::Timings;
use super::{BoundAddrs, Cmd, Node, NodeConfig, StartError, catch_up};

/// Runs a node until SIGINT/SIGTERM. Errors a person must fix come back as [`StartError`] inside the anyhow
/// error so the binary can choose exit code 2.
pub async fn run(cfg: NodeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    if cfg.peers.contains_key(&cfg.id) {
        return Err(StartError::Config(format!(
            "--peers lists node {} itself; list only the other nodes",
            cfg.id
        ))
        .into());
    }
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
        Storage::open_as(&cfg.data_dir, cfg.initial_state).map_err(StartError::Storage)?;
    let peer_addr = peer_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    if let Some(path) = &cfg.addr_file {
        let addrs = BoundAddrs {
            id: cfg.id,
            pid: std::process::id(),
            peer: peer_addr,
            api: api_addr,
        };
        write_atomically(path, &serde_json::to_vec(&addrs)?)
            .with_context(|| format!("writing address file {}", path.display()))?;
    }
    tracing::info!(id = cfg.id, cluster = %cfg.cluster_id, %peer_addr, %api_addr, "node listening");

    let (tx, rx) = mpsc::unbounded_channel::<Cmd>();
    // A peer RPC's deadline: long enough for a slow but working link (hundreds of milliseconds each way), so
    // its answers still count; a dead peer is noticed by the missing answers, not by this deadline.
    let rpc_timeout = (cfg.election_timeout.1 * 4).max(Duration::from_secs(1));
    let mut peers = BTreeMap::new();
    for (&peer, &addr) in &cfg.peers {
        let (ptx, prx) = mpsc::unbounded_channel();
        peers.insert(peer, ptx);
        tokio::spawn(peer_sender(
            peer,
            addr,
            cfg.cluster_id.clone(),
            rpc_timeout,
            prx,
            tx.clone(),
        ));
    }
    tokio::spawn(accept_peers(
        peer_listener,
        cfg.cluster_id.clone(),
        tx.clone(),
    ));
    tokio::spawn(accept_api(api_listener, tx.clone()));

    let mut node = Node::assemble(cfg, storage, recovered, peers, &tx, rpc_timeout, started)?;
    drop(tx);
    node.run(rx).await
}

impl Node {
    /// The actor's state over an opened storage: the core and the state machine rebuilt from what the storage
    /// recovered, the persist thread started (it wakes the actor through `tx`), and the `Started` event
    /// recorded. `peers` are the senders of the requests to each peer. No port is bound and nothing runs yet.
    pub(super) fn assemble(
        cfg: NodeConfig,
        storage: Storage,
        recovered: Recovered,
        peers: BTreeMap<crate::raft::NodeId, mpsc::UnboundedSender<super::peers::Outgoing>>,
        tx: &mpsc::UnboundedSender<Cmd>,
        rpc_timeout: Duration,
        started: Instant,
    ) -> anyhow::Result<Node> {
        let tick_ms = cfg.tick.as_millis().max(1) as u64;
        let ticks = |d: Duration| ((d.as_millis() as u64) / tick_ms).max(1) as u32;
        let core_cfg = Config {
            id: cfg.id,
            peers: cfg.peers.keys().copied().collect(),
            join: cfg.join,
            election_ticks_min: ticks(cfg.election_timeout.0),
            election_ticks_max: ticks(cfg.election_timeout.1)
                .max(ticks(cfg.election_timeout.0) + 1),
            heartbeat_ticks: ticks(cfg.heartbeat),
            pre_vote: cfg.pre_vote,
            check_quorum: cfg.check_quorum,
            max_inflight: cfg.max_inflight.max(1),
            max_batch_entries: 512,
            max_batch_bytes: rpc::MAX_APPEND_BYTES,
            snapshot_chunk_bytes: rpc::SNAPSHOT_CHUNK_BYTES,
            seed: cfg.seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        let kv = match &recovered.snapshot {
            Some(s) => KvStore::restore(&s.data)
                .with_context(|| format!("snapshot in {} is unreadable", cfg.data_dir.display()))?,
            None => KvStore::new(),
        };
        let snapshot_meta = recovered
            .snapshot
            .as_ref()
            .map(|s| s.meta)
            .unwrap_or_default();
        let last_index = recovered
            .entries
            .last()
            .map(|e| e.index)
            .unwrap_or(snapshot_meta.last_index);
        let started_event = NodeEvent::Started {
            term: recovered.hard_state.term,
            last_index,
            snapshot_index: snapshot_meta.last_index,
            empty: recovered.empty,
            truncated_tail_bytes: recovered.truncated_tail_bytes,
            damaged_tail: recovered.damaged_tail,
        };
        let mut raft = Raft::new(
            core_cfg.clone(),
            Restored {
                hard_state: recovered.hard_state,
                snapshot: recovered.snapshot.clone(),
                entries: recovered.entries,
            },
        );
        if let Some(cause) = &recovered.lost_data {
            raft.mark_lost_data();
            tracing::warn!(
                term = recovered.hard_state.term,
                "may have lost durable state: {cause}; recovering: not voting, campaigning or counting towards a \
                 quorum until every other voter told its term and either a leader of at least that term caught \
                 this node up or every other member holds no more than it"
            );
        }
        raft.set_catch_up(catch_up(cfg.snapshot_every));
        raft.set_frozen(cfg.frozen);

        let durable_hs = storage.hard_state();
        let storage = Arc::new(Mutex::new(storage));
        let pipeline = Pipeline::start(storage.clone(), durable_hs, tx.downgrade())
            .context("starting the persist thread")?;
        let mut node = Node {
            last_applied_term: snapshot_meta.last_term,
            last_snapshot_index: snapshot_meta.last_index,
            cfg,
            raft,
            storage,
            pipeline,
            timings: Timings::default(),
            kv,
            peers,
            apply_after_install: Vec::new(),
            install_floor: None,
            fresh: Vec::new(),
            held: Vec::new(),
            deferred: VecDeque::new(),
            deferred_events: VecDeque::new(),
            proposals: HashMap::new(),
            reads: HashMap::new(),
            next_read_ctx: 1,
            events: super::events::EventFeed::new(started),
            counters: RpcCounters::default(),
            started,
            core_cfg,
            core_restarts: 0,
            disk_full: None,
            snapshot_retry_at: None,
            status_waiting: Vec::new(),
            status_fresh: Vec::new(),
            good_commit: 0,
            commit_floor: 0,
            commit_shown: std::cell::Cell::new(0),
            leader_announced: None,
            campaign_blocked: None,
            conf_changes: Vec::new(),
            self_tx: tx.downgrade(),
            rpc_timeout,
        };
        node.record(started_event);
        Ok(node)
    }
}

pub(super) fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
