//! Errors of the fault engine, each naming what failed and with what (process name, path, link, node).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::proxy::Endpoint;

/// Why a process or proxy operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The lifeline pipe could not be created.
    #[error("cannot create the lifeline pipe: {0}")]
    Lifeline(#[source] nix::Error),
    /// The process-wide spawner thread could not be started or has gone away.
    #[error("the spawner thread is unavailable: {0}")]
    Spawner(String),
    /// `spawn` was called from outside a tokio runtime.
    #[error("spawning {name:?} needs a tokio runtime")]
    NoRuntime {
        /// The process name.
        name: String,
    },
    /// The log file for a process could not be opened.
    #[error("cannot open log file {path} for process {name:?}: {source}")]
    Log {
        /// The process name.
        name: String,
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The OS refused to start the program.
    #[error("cannot spawn process {name:?} ({program}): {source}")]
    Spawn {
        /// The process name.
        name: String,
        /// The program that was run.
        program: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No process of that name was ever spawned by this supervisor.
    #[error("no process named {name:?}")]
    UnknownProcess {
        /// The name asked for.
        name: String,
    },
    /// `spawn` was called for a name whose process is still alive.
    #[error("process {name:?} is already running as pid {pid}")]
    AlreadyRunning {
        /// The process name.
        name: String,
        /// Its live pid.
        pid: u32,
    },
    /// A signal fault was asked for a process that is not alive.
    #[error("process {name:?} is not running (cannot send {signal})")]
    NotRunning {
        /// The process name.
        name: String,
        /// The signal that was to be sent.
        signal: &'static str,
    },
    /// Sending a signal failed.
    #[error("cannot send {signal} to process {name:?} (process group {pid}): {source}")]
    Signal {
        /// The process name.
        name: String,
        /// The process group (the child's pid).
        pid: u32,
        /// The signal.
        signal: &'static str,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },
    /// The process did not exit after SIGKILL during a restart.
    #[error("process {name:?} (pid {pid}) did not exit within {waited_ms} ms of SIGKILL")]
    ExitTimeout {
        /// The process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// How long we waited.
        waited_ms: u64,
    },
    /// Wiping a data directory failed.
    #[error("cannot wipe data directory {path} of process {name:?}: {source}")]
    Wipe {
        /// The process name.
        name: String,
        /// The data directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A link proxy could not bind its listening socket. `from == to` is the proxy in front of node `to`
    /// (`Network::add_destination`), said so rather than as a link.
    #[error("cannot bind {} on {addr}: {source}", proxy_words(*from, *to))]
    Bind {
        /// Sender side of the link (`to` for the proxy in front of `to`).
        from: Endpoint,
        /// Receiver side of the link.
        to: Endpoint,
        /// The address tried.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A fault's parameters are out of range.
    #[error("invalid fault {fault}: {reason}")]
    InvalidFault {
        /// The fault, formatted.
        fault: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a partition could not be built or a grouping could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// A grouping names a node that is not in the cluster.
    #[error("node {node} is not in the cluster (nodes: {known})")]
    UnknownNode {
        /// The unknown node.
        node: Endpoint,
        /// The cluster's nodes, comma-separated.
        known: String,
    },
    /// A grouping leaves cluster nodes out.
    #[error("the grouping leaves out node(s) {missing}; every node must be in exactly one group")]
    LeftOut {
        /// The nodes left out, comma-separated.
        missing: String,
    },
    /// A node appears twice in a grouping.
    #[error("node {node} appears more than once in the grouping")]
    Duplicate {
        /// The repeated node.
        node: Endpoint,
    },
    /// A group between `|` separators is empty.
    #[error("group {index} of {input:?} is empty; write groups like 1,2|3,4,5")]
    EmptyGroup {
        /// 1-based index of the empty group.
        index: usize,
        /// The text read.
        input: String,
    },
    /// A node id is not a number.
    #[error("{text:?} in {input:?} is not a node id; write groups like 1,2|3,4,5")]
    BadNode {
        /// The offending piece.
        text: String,
        /// The text read.
        input: String,
    },
    /// A grouping with a single group cuts nothing.
    #[error("a partition needs at least two groups, got {input:?}")]
    OneGroup {
        /// The grouping, described.
        input: String,
    },
    /// The shape needs more nodes than the cluster has.
    #[error("shape {shape} needs at least {need} nodes, the cluster has {have}")]
    TooFewNodes {
        /// The shape's name.
        shape: &'static str,
        /// Nodes needed.
        need: usize,
        /// Nodes present.
        have: usize,
    },
    /// A shape name could not be read.
    #[error(
        "unknown partition shape {input:?}; use isolate:N, halves, random-halves, bridge, majorities-ring or a grouping like 1,2|3,4,5"
    )]
    UnknownShape {
        /// The text read.
        input: String,
    },
}

/// `the proxy for link 1->2`, or `the proxy in front of node 2` for the pseudo-link `2->2` a destination proxy is
/// kept under.
fn proxy_words(from: Endpoint, to: Endpoint) -> String {
    if from == to {
        format!("the proxy in front of node {to}")
    } else {
        format!("the proxy for link {from}->{to}")
    }
}
