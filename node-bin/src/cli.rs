//! The node's command line, shared by the `squall-node` binary and `squall node`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::raft::NodeId;
use crate::server::{self, NodeConfig, StartError};
use crate::storage::InitialState;

/// The consensus protocol a node runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Raft (the `raft` core).
    #[default]
    Raft,
    /// Multi-Paxos with a distinguished proposer (the `paxos` core): the same key-value API and status, no
    /// membership changes, leadership transfer or teaching mode.
    Paxos,
}

/// Flags of one node.
#[derive(Clone, Debug, clap::Args)]
pub struct NodeArgs {
    /// The consensus protocol: `raft` or `paxos` (Multi-Paxos). Every node of a cluster must run the same.
    #[arg(long, value_enum, default_value_t = Protocol::Raft)]
    pub protocol: Protocol,
    /// With `--protocol paxos`: turn the distinguished proposer's lease off, so every node proposes what its
    /// clients send and a preempted proposer retries at once (dueling proposers, which can livelock).
    #[arg(long)]
    pub no_leases: bool,
    /// This node's id (1-based, unique in the cluster).
    #[arg(long)]
    pub id: NodeId,
    /// Cluster id; peers from another cluster are refused.
    #[arg(long, default_value = "squall")]
    pub cluster_id: String,
    /// Address of the peer port (Raft traffic).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address of the API port (client and control services).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api_listen: SocketAddr,
    /// The other nodes' peer addresses: `2=127.0.0.1:7002,3=127.0.0.1:7003`. Without `--join`, an empty
    /// node boots with this node and these as the voters; with data on disk the configuration comes from
    /// the log or snapshot, never from here.
    #[arg(long, value_parser = parse_peers, default_value = "")]
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Join a running cluster: start with no configuration (neither voter nor learner), never campaign, and
    /// wait for the leader to add this node (its AppendEntries or InstallSnapshot carry the configuration).
    /// `--peers` is then only an address book. Ignored when the data directory holds state.
    #[arg(long)]
    pub join: bool,
    /// Data directory (created if missing; locked while the node runs).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// How to take an empty data directory (etcd's `--initial-cluster-state`): `new` on the first start of a
    /// cluster's initial members (a fresh member, which has never voted); `existing` for every other start, since an empty directory may then be one that lost its data, and the
    /// node recovers from the other voters before it votes again. Ignored when the directory holds state.
    #[arg(long, value_enum, default_value_t = InitialState::Existing)]
    pub initial_state: InitialState,
    /// Length of one tick of the consensus core.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub tick: Duration,
    /// Election timeout range, e.g. `150..300ms`.
    #[arg(long, default_value = "150..300ms", value_parser = parse_range)]
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Turn PreVote off.
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Turn CheckQuorum (and the leader lease on votes) off.
    #[arg(long)]
    pub no_check_quorum: bool,
    /// UNSAFE, for demonstrations only: skip the fdatasync after each write-ahead log append, so acknowledged
    /// entries live only in the page cache. It exists to show that squall's power cuts (`squall up
    /// --disk-faults`, then `powercut`) lose acknowledged writes of a node that forgets to sync, where `kill`
    /// cannot. Never use it otherwise.
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// Snapshot the state machine every N applied entries (0: never).
    #[arg(long, default_value_t = 1000)]
    pub snapshot_every: u64,
    /// AppendEntries batches in flight per follower.
    #[arg(long, default_value_t = 4)]
    pub max_inflight: usize,
    /// Seed for randomised election timeouts (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the bound addresses (JSON) to this file once listening.
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Start in teaching mode: the election and heartbeat timers stand still (messages are still handled)
    /// until the control service thaws them. squall passes it to nodes that start while the cluster is frozen.
    #[arg(long)]
    pub frozen: bool,
}

/// Parses `2=127.0.0.1:7002,3=127.0.0.1:7003` (an empty string is no peers).
pub fn parse_peers(s: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| {
            format!("`{part}` should look like ID=HOST:PORT, e.g. 2=127.0.0.1:7002")
        })?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("`{id}` in `{part}` is not a node id"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{addr}` in `{part}` is not an address like 127.0.0.1:7002"))?;
        if peers.insert(id, addr).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    Ok(peers)
}

/// A duration as a person writes it, for messages: `0s`, `150ms`, `2.5s`, `12s` (never `5.000922246s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 10_000 && !ms.is_multiple_of(1_000) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}s", d.as_secs_f64().round())
    }
}

/// Parses a duration like `50ms` or `1s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 50ms or 1s: {e}"))
}

/// Parses a range like `150..300ms` or `150ms..300ms` (the unit of the upper bound applies to a bare lower bound).
pub fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a range like 150..300ms"))?;
    let hi_d = parse_duration(hi)?;
    let lo = lo.trim();
    let lo_d = if lo.chars().all(|c| c.is_ascii_digit()) && !lo.is_empty() {
        let unit: String = hi
            .trim()
            .chars()
            .skip_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        parse_duration(&format!("{lo}{unit}"))?
    } else {
        parse_duration(lo)?
    };
    if lo_d.is_zero() || lo_d >= hi_d {
        return Err(format!(
            "`{s}`: the lower bound must be above zero and below the upper bound"
        ));
    }
    Ok((lo_d, hi_d))
}

impl NodeArgs {
    /// Turns the flags into a validated configuration.
    pub fn into_config(self) -> Result<NodeConfig, String> {
        if self.id == 0 {
            return Err("--id must be 1 or more".into());
        }
        if self.tick.is_zero() {
            return Err("--tick must be above zero".into());
        }
        if self.heartbeat >= self.election_timeout.0 {
            return Err(format!(
                "--heartbeat {} must be shorter than the election timeout's lower bound {}",
                format_duration(self.heartbeat),
                format_duration(self.election_timeout.0)
            ));
        }
        if self.tick > self.heartbeat {
            return Err(format!(
                "--tick {} must not exceed --heartbeat {}",
                format_duration(self.tick),
                format_duration(self.heartbeat)
            ));
        }
        if self.unsafe_no_fsync {
            crate::storage::set_unsafe_no_fsync();
        }
        Ok(NodeConfig {
            id: self.id,
            cluster_id: self.cluster_id,
            listen: self.listen,
            api_listen: self.api_listen,
            peers: self.peers,
            join: self.join,
            data_dir: self.data_dir,
            initial_state: self.initial_state,
            tick: self.tick,
            election_timeout: self.election_timeout,
            heartbeat: self.heartbeat,
            pre_vote: !self.no_pre_vote,
            check_quorum: !self.no_check_quorum,
            snapshot_every: self.snapshot_every,
            max_inflight: self.max_inflight,
            seed: self.seed.unwrap_or_else(rand::random),
            addr_file: self.addr_file,
            frozen: self.frozen,
        })
    }
}

/// The node's entry point, shared by both binaries: logs to stderr, runs until SIGINT/SIGTERM.
/// Exit codes: 0 after a clean shutdown, 2 for a setting or environment a person must fix, 1 otherwise.
pub fn run_node(args: NodeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: under squall, stderr is the node's log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
    let id = args.id;
    let (protocol, leases) = (args.protocol, !args.no_leases);
    if protocol == Protocol::Raft && !leases {
        eprintln!(
            "squall-node: error: --no-leases applies to --protocol paxos only; drop it or add --protocol paxos"
        );
        return ExitCode::from(2);
    }
    let cfg = match args.into_config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("squall-node: error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = squall_lifeline::watch_from_env() {
        eprintln!("squall-node: warning: cannot watch the supervisor's lifeline: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("squall-node: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let ran = match protocol {
        Protocol::Raft => runtime.block_on(server::run(cfg)),
        Protocol::Paxos => runtime.block_on(server::paxos::run(cfg, leases)),
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<StartError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("squall-node {id}: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn durations_in_messages_read_as_a_person_writes_them() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(150)), "150ms");
        assert_eq!(format_duration(Duration::from_nanos(5_000_922_246)), "5s");
        assert_eq!(format_duration(Duration::from_millis(2_250)), "2.2s");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }
}
