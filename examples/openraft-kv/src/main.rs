//! `openraft-kv`: a small key-value server whose consensus is the `openraft` crate (0.9, MIT OR Apache-2.0),
//! written as the worked example of squall's "Test your own Raft": squall runs it through the kind file
//! `examples/openraft-kv/openraft.toml` alone.
//!
//! The glue is this crate's: a durable log and vote store (`store`), the state machine (`sm`), peer RPC in
//! length-prefixed JSON frames (`net`) and the HTTP API (`api`). Reads are linearizable through openraft's
//! `Raft::ensure_linearizable` (a read index: the leader confirms it still leads with a round of heartbeats
//! to a quorum, then waits until its state machine has applied up to the commit index it saw; Ongaro's thesis,
//! "Consensus: Bridging Theory and Practice", 2014, section 6.4).

mod api;
mod net;
mod sm;
mod store;

use std::collections::BTreeMap;
// `declare_raft_types!` names the default snapshot data type, `Cursor`, unqualified.
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use openraft::{BasicNode, Config, SnapshotPolicy};

openraft::declare_raft_types!(
    /// The node's openraft types: the commands are [`sm::Request`], their results [`sm::Response`], node
    /// ids `u64`; everything else is openraft's default.
    pub TypeConfig:
        D = sm::Request,
        R = sm::Response,
);

/// The node's Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// One node of an openraft-kv cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// This node's id (a positive integer).
    #[arg(long)]
    id: u64,
    /// Where the log and vote live (created if absent).
    #[arg(long)]
    data_dir: PathBuf,
    /// Address peers reach this node on (port 0: the OS picks; see --addr-file).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address of the HTTP API (status, read, write, cas).
    #[arg(long, default_value = "127.0.0.1:0")]
    api_listen: SocketAddr,
    /// The other members, `ID=HOST:PORT,ID=HOST:PORT`: the address this node dials for each peer.
    #[arg(long, default_value = "")]
    peers: String,
    /// `new`: a member of the initial configuration (an empty node initialises the cluster); `existing`: a
    /// node that joins or lost its data, which waits to be told the configuration by a leader.
    #[arg(long, default_value = "new")]
    initial_state: String,
    /// A node added to a running cluster: it never initialises a configuration (whatever
    /// `--initial-state` says) and waits for the leader to add it as a learner (`POST /add-learner`).
    #[arg(long)]
    join: bool,
    /// Once both ports are bound, their addresses are written here as JSON (`{"peer": …, "api": …}`).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Leader heartbeat interval, milliseconds.
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Election timeout range, milliseconds.
    #[arg(long, default_value_t = 300)]
    election_timeout_min_ms: u64,
    #[arg(long, default_value_t = 600)]
    election_timeout_max_ms: u64,
}

fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("--peers: `{part}` is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("--peers: `{id}` in `{part}` is not a node id"))?;
        out.insert(id, addr.trim().to_string());
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("openraft-kv: {e:#}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let peers = parse_peers(&args.peers)?;
    if args.id == 0 || peers.contains_key(&args.id) {
        bail!("--id {}: give a positive id not among --peers", args.id);
    }
    if !(args.heartbeat_ms < args.election_timeout_min_ms
        && args.election_timeout_min_ms < args.election_timeout_max_ms)
    {
        bail!(
            "--heartbeat-ms {} must be under --election-timeout-min-ms {}, itself under --election-timeout-max-ms {}",
            args.heartbeat_ms,
            args.election_timeout_min_ms,
            args.election_timeout_max_ms
        );
    }
    let config = Config {
        cluster_name: "openraft-kv".into(),
        heartbeat_interval: args.heartbeat_ms,
        election_timeout_min: args.election_timeout_min_ms,
        election_timeout_max: args.election_timeout_max_ms,
        // The state machine and its snapshots live in memory: the log is the only durable state, so it is
        // never purged (see sm.rs).
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    }
    .validate()
    .context("openraft configuration")?;

    let log = store::LogStore::open(&args.data_dir)
        .with_context(|| format!("opening the log in {}", args.data_dir.display()))?;
    let sm = sm::StateMachine::default();
    let peer_listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    let api_listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("--api-listen {}", args.api_listen))?;
    let peer_addr = peer_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;

    let peer_map: net::Peers = Arc::new(std::sync::RwLock::new(peers.clone()));
    let network = net::Network {
        peers: peer_map.clone(),
        backoff: net::backoff_for(
            Duration::from_millis(args.election_timeout_max_ms),
            Duration::from_millis(args.heartbeat_ms),
        ),
    };
    let raft = Raft::new(args.id, Arc::new(config), network, log.clone(), sm.clone())
        .await
        .context("starting openraft")?;
    tokio::spawn(net::serve(peer_listener, raft.clone()));

    if args.initial_state == "new" && !args.join {
        let mut members: BTreeMap<u64, BasicNode> = peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        members.insert(args.id, BasicNode::new(peer_addr));
        // Every initial member makes the same first configuration entry; openraft refuses it (harmlessly)
        // on a node that already has a log or a vote.
        if let Err(e) = raft.initialize(members).await {
            eprintln!("openraft-kv: not initialising: {e}");
        }
    }

    // A fatal error (a write or fsync the disk refused) stops openraft's core: stop the process too, so its
    // supervisor sees a dead node instead of a silent one.
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        loop {
            if let Err(e) = &metrics.borrow().running_state {
                eprintln!("openraft-kv: openraft stopped: {e}");
                std::process::exit(1);
            }
            if metrics.changed().await.is_err() {
                eprintln!("openraft-kv: openraft stopped");
                std::process::exit(1);
            }
        }
    });

    if let Some(path) = &args.addr_file {
        let tmp = path.with_extension("tmp");
        let text = serde_json::json!({"peer": peer_addr.to_string(), "api": api_addr.to_string()});
        std::fs::write(&tmp, text.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("--addr-file {}", path.display()))?;
    }
    eprintln!(
        "openraft-kv: node {} peer {peer_addr} api {api_addr}",
        args.id
    );
    api::serve(
        api_listener,
        api::Node {
            id: args.id,
            raft,
            log,
            sm,
            peers: peer_map,
            write_timeout: Duration::from_secs(3),
        },
    )
    .await;
    Ok(())
}
