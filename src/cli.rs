//! Command-line definitions of the `squall` binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use squall_node::cli::{NodeArgs, parse_duration, parse_peers, parse_range};

/// squall: run a real Raft cluster on this machine, watch it live, and break it on purpose.
#[derive(Parser, Debug)]
#[command(name = "squall", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a local cluster and open the live dashboard (or, with --headless, a line-oriented console).
    ///
    /// Exit status: 0 after `quit`, the end of input, its output's reader closing it, or a signal; 1 when the
    /// session ended on an I/O error (every node stopped first); 2 for bad input (nothing started).
    Up(UpArgs),
    /// Print every node's pid, role, term, leader, commit and last log index.
    Status(StatusArgs),
    /// Run one key-value operation against a running cluster.
    Kv(KvArgs),
    /// Replay a recorded event log in the dashboard.
    Replay(ReplayArgs),
    /// Render a recording (asciicast or event log) to an animated GIF or SVG.
    Render(RenderArgs),
    /// Measure write throughput/latency and failover time on a real 3-node cluster.
    Bench(BenchArgs),
    /// Check a history (JSON Lines, one operation event per line) for linearizability.
    CheckHistory(CheckHistoryArgs),
    /// Export the operation history recorded in an event log.
    History(HistoryArgs),
    /// Write a self-contained HTML report of a session from its event log.
    Report(ReportArgs),
    /// Run a scenario file to a verdict (exit 0 valid, 1 invalid, 2 could not run, 3 unknown).
    Run(RunArgs),
    /// Write the faults of a recorded session (its event log) as a scenario file, on standard output.
    Scenario(ScenarioArgs),
    /// List the built-in node kinds (name, description, whether its program is found).
    Kinds,
    /// Run one Raft node (what `up` spawns; the same entry point as the `squall-node` binary).
    #[command(hide = true)]
    Node(NodeArgs),
    /// Run one Maelstrom node behind squall's network (what `up --maelstrom` spawns).
    #[command(hide = true)]
    MaelstromNode(BridgeArgs),
    /// Run the agent that owns one host's nodes and proxies for a controller (`up --hosts`), speaking JSON
    /// lines on standard input and output (started by squall over ssh).
    #[command(hide = true)]
    Agent(AgentArgs),
    /// A Maelstrom echo/relay node in Rust, for the routing benchmark (BENCHMARKS.md).
    #[command(hide = true)]
    MaelstromBenchNode,
}

/// Flags of `squall agent`.
#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The agent's directory (reported by `hello`; relative paths of requests are not resolved against it).
    #[arg(long, default_value = "/var/tmp/squall")]
    pub dir: PathBuf,
    /// Print this build's identity (`squall VERSION BUILD`) and exit: how the controller tells whether the
    /// binary here is its own.
    #[arg(long)]
    pub build_id: bool,
    /// How long the agent keeps its nodes once its controller is gone (its channel ended, or no `ping` came
    /// for this long after the first one) and no new controller attached: then it stops them (SIGTERM, then
    /// SIGKILL), unmounts their fault filesystems and exits.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Do not start an agent: relay standard input and output to the agent already running in DIR (through
    /// its socket `DIR/.agent/sock`), as a controller does to reconnect after its ssh dropped. Exits 3 when no
    /// agent runs there.
    #[arg(long, value_name = "DIR", conflicts_with = "build_id")]
    pub attach: Option<PathBuf>,
}

/// Flags of `squall scenario`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// An event log written by `squall up` (or `squall run`).
    pub log: PathBuf,
}

/// Flags of `squall up`.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Number of nodes (1 to 9).
    #[arg(short = 'n', long = "nodes", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Cluster directory (node data, logs, addresses), kept after exit and fine to reuse; default: a fresh
    /// directory under the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the cluster directory after exit (always kept when --dir is given).
    #[arg(long)]
    pub keep: bool,
    /// The node kind: a built-in name (`squall kinds` lists them) or a kind file (TOML; see the README, "Node
    /// kinds"). Default: squall's own node.
    #[arg(long, value_name = "NAME|FILE")]
    pub node_kind: Option<String>,
    /// The protocol of squall's own node: `raft` (the default) or `paxos` (Multi-Paxos), a shorthand for
    /// `--node-kind squall` or `--node-kind paxos`.
    #[arg(long, value_enum, conflicts_with_all = ["node_kind", "maelstrom"])]
    pub protocol: Option<squall_node::cli::Protocol>,
    /// With `--protocol paxos`: turn the distinguished proposer's lease off (dueling proposers, which can
    /// livelock). Refused for a kind without a `no-leases` option.
    #[arg(long)]
    pub no_leases: bool,
    /// Run this Maelstrom node executable (JSON messages on stdin/stdout; jepsen-io/maelstrom's protocol) as
    /// every node, with squall as its network: the `maelstrom` kind with PATH as its program. See the README,
    /// "Run your Maelstrom node under squall".
    #[arg(long, value_name = "PATH", conflicts_with_all = ["node_kind", "node_bin"])]
    pub maelstrom: Option<PathBuf>,
    /// Program to run for each node instead of the kind's (for the squall kind: any build of squall-node).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// No dashboard: print one line per event and read commands from standard input.
    #[arg(long)]
    pub headless: bool,
    /// Election timeout range of every node.
    #[arg(long, default_value = "150..300ms", value_parser = parse_range)]
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval of every node.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Slow timings for teaching and for stepping held frames by hand: election timeout 3–6 s, heartbeat 1 s.
    #[arg(long, conflicts_with_all = ["election_timeout", "heartbeat"])]
    pub slow: bool,
    /// Snapshot every N applied entries on every node; 0 turns snapshots off (the log then grows for the
    /// whole session).
    #[arg(long, default_value_t = 500)]
    pub snapshot_every: u64,
    /// Seed for the nodes' timeouts, the proxies' faults and random partitions (default: random, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Record the dashboard as an asciicast v2 file (not with --headless).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Write the event log here instead of into the cluster directory (an existing file is never overwritten:
    /// the next free name, `run-2.jsonl`, is taken). Default: `events.jsonl.gz` in a kept cluster directory,
    /// else `$XDG_STATE_HOME/squall/sessions/`.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Start the built-in client workload at once: `--workload` (or `--workload counter`) increments
    /// counters, `--workload lin-kv` runs reads, writes and cas on a few keys and records their history.
    #[arg(long, num_args = 0..=1, default_missing_value = "counter", value_name = "KIND")]
    pub workload: Option<WorkloadArg>,
    /// Workload rate in writes per second (1 to 100000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Serve every node's data directory through squall's fault filesystem (FUSE) and fake its clock
    /// (squall's preloaded time shim), enabling `powercut`, `disk` and `clock` faults. Needs /dev/fuse and root.
    #[arg(long)]
    pub disk_faults: bool,
    /// UNSAFE, for demonstrations only: start every node with `--unsafe-no-fsync` (WAL appends not synced),
    /// to show that `powercut` loses acknowledged writes of such a node where `kill` does not.
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// For demonstrations only: start every node with `--no-pre-vote` (Raft thesis §9.6 off), so a node
    /// that rejoins after a partition forces an election with its higher term.
    #[arg(long)]
    pub no_pre_vote: bool,
    /// For demonstrations only: start every node with `--no-check-quorum` (Raft thesis §6.2 off), so a
    /// leader cut off from a majority keeps believing it leads.
    #[arg(long)]
    pub no_check_quorum: bool,
    /// Run the nodes on other machines, each through a `squall agent` started over ssh: a hosts file (TOML,
    /// `[[host]]` entries with `ssh`, `nodes` and optionally `identity`, `dir`, `ssh_config`; see the README,
    /// "Nodes on other machines").
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    pub hosts: Option<PathBuf>,
    /// The one-line form of --hosts: `ID=DEST[,ID=DEST...]`, DEST any OpenSSH destination (`user@host`,
    /// `ssh://user@host:port`, a Host alias); nodes with the same DEST share a host.
    #[arg(long, value_name = "ID=DEST[,ID=DEST...]")]
    pub host: Option<String>,
    /// For tests: after every fault and at the end, write the screen of the live state (160×48, as
    /// `TestBackend` renders it) to `DIR/screen-N.txt` (N: events applied so far), to compare with a replay.
    #[arg(long, hide = true)]
    pub dump_screens: Option<PathBuf>,
}

/// The built-in workloads, as `--workload` names them.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadArg {
    /// Increments of eight counters, checked by a tally.
    Counter,
    /// Reads, writes and cas on a few integer keys, checked for linearizability.
    #[value(name = "lin-kv")]
    LinKv,
    /// Clients take a lease lock through the cluster and write to a resource under it, without fencing.
    Lock,
    /// As `lock`, with fencing tokens: the resource rejects a write with a token below one it has seen.
    #[value(name = "lock-fenced")]
    LockFenced,
    /// Maelstrom's echo (a Maelstrom node only).
    Echo,
    /// Maelstrom's unique-ids (a Maelstrom node only).
    #[value(name = "unique-ids")]
    UniqueIds,
    /// Maelstrom's broadcast on a grid (a Maelstrom node only).
    Broadcast,
    /// Maelstrom's g-counter (a Maelstrom node only).
    #[value(name = "g-counter")]
    GCounter,
    /// Maelstrom's kafka-style logs (a Maelstrom node only).
    Kafka,
}

/// Where a running cluster is.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Cluster directory written by `squall up` (it holds cluster.json).
    #[arg(long, conflicts_with = "peers")]
    pub dir: Option<PathBuf>,
    /// The nodes' API addresses instead of --dir: `1=127.0.0.1:7001,2=...`.
    #[arg(long, value_parser = parse_peers)]
    pub peers: Option<BTreeMap<u64, SocketAddr>>,
    /// How long to wait for the cluster before giving up.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Flags of `squall status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub target: Target,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `squall kv`.
#[derive(clap::Args, Debug)]
pub struct KvArgs {
    /// Where the cluster is.
    #[command(flatten)]
    pub target: Target,
    /// The operation.
    #[command(subcommand)]
    pub op: KvCmd,
}

/// One key-value operation.
#[derive(Subcommand, Debug, Clone)]
pub enum KvCmd {
    /// Set KEY to VALUE; without VALUE, the value is read from standard input, byte for byte (as `etcdctl
    /// put` does). Values over 1 MiB (keys over 1 KiB) are refused with exit code 2.
    Put {
        /// Key.
        key: String,
        /// Value (default: all of standard input, which must be UTF-8).
        value: Option<String>,
    },
    /// Print the value of KEY (exit 1 when absent).
    Get {
        /// Key.
        key: String,
    },
    /// Delete KEY.
    Del {
        /// Key.
        key: String,
    },
    /// Set KEY to NEW if its value is OLD (`-` for "absent").
    Cas {
        /// Key.
        key: String,
        /// Expected value, or `-` for absent.
        old: String,
        /// New value.
        new: String,
    },
    /// Add N (default 1) to the counter at KEY and print the new value.
    Incr {
        /// Key.
        key: String,
        /// Amount.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
}

/// Flags of `squall replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// An event log written by `squall up` (events.jsonl.gz in the cluster directory, or --events FILE; plain .jsonl too).
    pub file: PathBuf,
}

/// Flags of `squall render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// An asciicast v2 recording (`squall up --record`) or an event log (events.jsonl.gz, .jsonl).
    #[arg(required_unless_present = "licence")]
    pub input: Option<PathBuf>,
    /// The file to write; its extension picks the format: .gif or .svg.
    #[arg(short = 'o', long = "output", required_unless_present = "licence")]
    pub output: Option<PathBuf>,
    /// Print the licence of the font embedded in rendered GIFs and SVGs (GNU Unifont, SIL OFL 1.1), which a
    /// copy of squall must carry, and exit.
    #[arg(long, alias = "license", conflicts_with_all = ["input", "output"])]
    pub licence: bool,
    /// Start here: a time (`90`, `1:30`, `90s`, `1m30s`) or a marker's name (a chapter: a fault, a new
    /// leader; the first marker whose label is or contains it).
    #[arg(long)]
    pub from: Option<String>,
    /// End here: a time or a marker's name (the first such marker after the start).
    #[arg(long)]
    pub to: Option<String>,
    /// Playback speed: 2 plays twice as fast (0.1 to 50).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Frames per second at most (1 to 50): changes closer together are shown as one frame, the last.
    #[arg(long, default_value_t = 10.0, value_parser = parse_fps)]
    pub fps: f64,
    /// Screen size of an event log's replay, COLSxROWS (default 160x45); an asciicast keeps its own.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u16, u16)>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.1 && *f <= 50.0)
        .ok_or_else(|| format!("`{s}` is not a speed from 0.1 to 50 (e.g. 2 for twice as fast)"))
}

fn parse_fps(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 1.0 && *f <= 50.0)
        .ok_or_else(|| format!("`{s}` is not a frame rate from 1 to 50 frames a second"))
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{s}` is not a size COLSxROWS from 20x10 to 500x200 (e.g. 160x45)");
    let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (c, r) = (
        c.trim().parse::<u16>().map_err(|_| bad())?,
        r.trim().parse::<u16>().map_err(|_| bad())?,
    );
    if !(20..=500).contains(&c) || !(10..=200).contains(&r) {
        return Err(bad());
    }
    Ok((c, r))
}

/// Flags of `squall bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Seconds per concurrency level.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Failover trials (SIGKILL the leader, time until the next write commits).
    #[arg(long, default_value_t = 20)]
    pub failovers: usize,
    /// Node binary to run instead of squall itself.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Measure write throughput without and then with every node's data directory on the fault filesystem
    /// (no fault set), side by side in one run, and the cost of each FUSE operation; no failover trials.
    #[arg(long)]
    pub disk_faults: bool,
    /// Measure membership changes instead: time to add a node (process start to voter) to a cluster holding
    /// 10 MB, and write throughput during each change against the spread with no change, in one run.
    #[arg(long, conflicts_with = "disk_faults")]
    pub membership: bool,
    /// Measure another node kind (a built-in name or a kind file, as `up --node-kind`): its writes/s through
    /// squall's proxies against the same nodes linked directly, side by side in one run; no failover trials.
    #[arg(long, conflicts_with_all = ["disk_faults", "membership"])]
    pub node_kind: Option<String>,
    /// Measure squall's own node with each protocol, `raft` and/or `paxos` (`--protocol raft,paxos`): the
    /// write benchmark and its failover trials on each, one after the other in one run, then one table
    /// comparing them.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "PROTOCOL[,PROTOCOL]",
        conflicts_with_all = ["disk_faults", "membership", "node_kind", "node_bin"]
    )]
    pub protocol: Vec<squall_node::cli::Protocol>,
}

/// Flags of `squall check-history`.
#[derive(clap::Args, Debug)]
pub struct CheckHistoryArgs {
    /// A history in JSON Lines (`-` reads standard input); the format is in the README.
    pub file: PathBuf,
    /// Give up after this long with the verdict `unknown` (exit 3).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The formats `squall history` writes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// JSON Lines, one operation event per line (what `check-history` reads).
    Jsonl,
    /// Jepsen's EDN, one map per line (for Knossos or Elle).
    Edn,
}

/// Flags of `squall history`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// An event log written by `squall up`.
    pub log: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: HistoryFormat,
}

/// Flags of `squall report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// An event log written by `squall up`.
    pub log: PathBuf,
    /// Where to write the HTML file.
    #[arg(short = 'o', long = "output", default_value = "report.html")]
    pub output: PathBuf,
    /// Time allowed for the linearizability check of a lin-kv history.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The message-flow diagram's window, FROM..TO in session seconds (`12..14.5`); default: the first fault
    /// and the election after it, or in a session with neither its first messages.
    #[arg(long, value_name = "FROM..TO")]
    pub flow: Option<String>,
}

/// Flags of `squall run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The scenario file (TOML; see `scenarios/` and the README).
    pub file: PathBuf,
    /// Seed for every random choice (overrides the file's `cluster.seed`; default: the file's, else random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also record the console as an asciicast in the bundle.
    #[arg(long)]
    pub record: bool,
    /// Multiply every time of the run (steps, durations, the nemesis' intervals) by this factor, e.g. `0.5`
    /// for a short version in CI; the cluster's timeouts are kept.
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub scale: f64,
    /// Check the file and print every setting and step the seed expands into, without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the bundle (default: `squall-run-NAME-SEED` in the current directory, with `-2`, `-3`, …
    /// appended rather than write over an earlier run). An existing file or non-empty directory given here
    /// is refused (exit 2) unless `--force`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run on squall's own node with this protocol, `raft` or `paxos` (overrides the file's `protocol`, and
    /// its `kind` when that is `squall` or `paxos`). Side by side: `--protocol raft,paxos` runs the scenario on
    /// each, one after the other with the same seed, each into its own bundle under the run's, and prints one
    /// table comparing verdicts, failover and recovery times, writes/s and messages per write; the exit code
    /// is the worst of the runs'.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "PROTOCOL[,PROTOCOL]"
    )]
    pub protocol: Vec<squall_node::cli::Protocol>,
    /// With `--out`: replace the earlier bundle there (a directory holding a `repro.sh`; nothing else is
    /// ever removed).
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Run the nodes on other machines, each through a `squall agent` started over ssh: a hosts file (TOML,
    /// `[[host]]` entries with `ssh`, `nodes` and optionally `identity`, `dir`, `ssh_config`; see the README,
    /// "Nodes on other machines").
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    pub hosts: Option<PathBuf>,
    /// The one-line form of --hosts: `ID=DEST[,ID=DEST...]`, DEST any OpenSSH destination (`user@host`,
    /// `ssh://user@host:port`, a Host alias); nodes with the same DEST share a host.
    #[arg(long, value_name = "ID=DEST[,ID=DEST...]")]
    pub host: Option<String>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.05 && *f <= 20.0)
        .ok_or_else(|| format!("`{s}` is not a scale from 0.05 to 20 (e.g. 0.5)"))
}

/// The flags of `squall maelstrom-node` (the bridge between a Maelstrom node and squall: `kind::maelstrom::bridge`).
#[derive(clap::Args, Debug, Clone)]
pub struct BridgeArgs {
    /// The Maelstrom node executable.
    #[arg(long)]
    pub program: PathBuf,
    /// This node's id (it is node `n{id}`).
    #[arg(long)]
    pub id: u64,
    /// The other nodes and the proxy address each is reached at: `2=127.0.0.1:4100,3=…` (may be empty).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub peers: String,
    /// The node's working directory (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where to write `{"peer": ADDR, "client": ADDR}` once the node answered `init`.
    #[arg(long)]
    pub addr_file: PathBuf,
    /// The address both ports bind to (port 0: each gets one the OS chooses): the host's `address` of the
    /// hosts file when the node runs on another host, so its peers' proxies and squall's clients reach it.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}
