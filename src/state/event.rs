//! The one event type a session flows through.
//!
//! The live cluster layer produces [`Stamped`] events, the event log stores them as JSON lines and replay reads
//! them back; [`super::ClusterState::apply`] is the only consumer that turns them into what the dashboard shows.
//! Because every piece of time is carried in [`Stamped::at_ms`], replaying a log reproduces the live screens.

use serde::{Deserialize, Serialize};
use squall_node::rpc::{EventRecord, NodeStatus};

use crate::check::brief::BriefStatus;
pub use crate::command::WorkloadKind;
use crate::command::{Command, FaultCmd};

/// An event with the time it was observed, in milliseconds since the session started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Milliseconds since the session started (never a wall-clock time, so replays are exact).
    pub at_ms: u64,
    /// What happened.
    pub event: Event,
}

impl Stamped {
    /// Pairs an event with its time.
    pub fn new(at_ms: u64, event: Event) -> Self {
        Self { at_ms, event }
    }
}

/// Everything the dashboard learns about a session.
// Statuses dominate the stream; boxing them would cost an allocation each to save a copy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The session began: which cluster, which node ids, where its directory is.
    SessionStarted {
        /// Cluster id shared by every node.
        cluster_id: String,
        /// Node ids, 1-based.
        nodes: Vec<u64>,
        /// The cluster directory (node data and logs).
        dir: String,
    },
    /// The settings the session's cluster was started with, so a session can be turned into a scenario
    /// (`squall scenario LOG`) that reruns it.
    Settings {
        /// Number of nodes.
        nodes: u64,
        /// Election timeout range, in milliseconds.
        election_timeout_ms: (u64, u64),
        /// Heartbeat interval, in milliseconds.
        heartbeat_ms: u64,
        /// Snapshot every N applied entries.
        snapshot_every: u64,
        /// The session's seed.
        seed: u64,
        /// Workload rate (operations per second).
        rate: u32,
        /// Whether node data went through the fault filesystem.
        disk_faults: bool,
        /// The node program, when not squall itself.
        node_bin: Option<String>,
        /// Whether the nodes ran with `--unsafe-no-fsync` (WAL appends not synced): a fault for the whole
        /// session, which the report lists.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unsafe_no_fsync: bool,
        /// The node kind the session ran (absent in logs written before kinds were recorded: squall's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<KindRecord>,
        /// The node kind's switches every node ran with, by their `[options]` names (`no-pre-vote`,
        /// `no-check-quorum`; `squall up` takes each as `--NAME`), so an export reruns the same experiment.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
        /// Further arguments a scenario's `node-args` gave every node (beyond `--unsafe-no-fsync`), as written.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        node_args: Vec<String>,
    },
    /// A status poll result; the cluster layer sends it only when it differs from the previous one.
    Status {
        /// Which node.
        node: u64,
        /// What it reported.
        status: NodeStatus,
    },
    /// A status poll result from a kind whose status driver reports only the fields every kind may have
    /// (role, term, leader, commit and applied index), any of them unknown; sent when it differs from the
    /// previous one. A kind with the full picture sends [`Event::Status`] instead.
    Brief {
        /// Which node.
        node: u64,
        /// What it reported.
        status: BriefStatus,
    },
    /// A status poll result whose log tail is given as a change against the node's previous status: the
    /// cells from `tail_start` to `keep_through` are the ones the previous status already had, and
    /// `status.log_tail` holds only the cells after them. The live session applies and logs this form (see
    /// [`super::StatusCompressor`]), so the event log does not repeat the same cells ten times a second.
    StatusDelta {
        /// Which node.
        node: u64,
        /// What it reported, with only the new log cells.
        status: NodeStatus,
        /// First index of the full tail.
        tail_start: u64,
        /// Last index carried over from the previous status (below `tail_start` when none is).
        keep_through: u64,
    },
    /// One record of a node's event feed.
    NodeFeed {
        /// Which node.
        node: u64,
        /// The record.
        record: EventRecord,
    },
    /// A status poll failed.
    Unreachable {
        /// Which node.
        node: u64,
        /// Why (timeout, connection refused).
        error: String,
    },
    /// The node's process changed state.
    Process {
        /// Which node.
        node: u64,
        /// Its new state.
        state: ProcessState,
    },
    /// A command was performed (a fault injected, a process action, a membership change, the workload
    /// switched), with what it did. Event logs before format version 4 held the command as text
    /// (`Fault { description, effect }`); they are converted to this when read.
    Performed {
        /// The command in its console form: a dashboard toggle resolved into the command it meant then,
        /// `leader` kept symbolic (so an export writes `kill leader`, and a rerun hits whoever leads then).
        command: Command,
        /// The node it acted on, when it named one (`kill leader` performed on node 2: `Some(2)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<u64>,
        /// What it did, in words ("kill node 2 (leader, term 4)").
        effect: String,
    },
    /// A network fault left the set: its `for` ran out, or a performed command (`heal`, the same fault again,
    /// a zero delay or loss, a links-matrix key pressed again, `release`) took it away; the `Performed` event
    /// of that command follows.
    FaultEnded {
        /// Its id.
        id: u64,
        /// The fault as it was asked for.
        fault: FaultCmd,
        /// Why it ended.
        why: FaultEnd,
    },
    /// A node did not start when the session started (it exited before listening: a port in use, a corrupt
    /// WAL, a locked directory) while the other nodes, a majority, started without it. (The name is the
    /// event log's, kept so older logs read.)
    Refused {
        /// The node.
        node: u64,
        /// Why, in the node's own words (the last error it logged).
        reason: String,
        /// The nodes that started.
        running: Vec<u64>,
    },
    /// An action could not be performed.
    ActionFailed {
        /// What was asked.
        action: String,
        /// Why it failed.
        error: String,
    },
    /// The network faults in force, replacing the previous list (sent whenever the set changes).
    FaultSet {
        /// Every active fault, by id.
        faults: Vec<ActiveFault>,
    },
    /// Messages the proxies traced since the last batch, times in microseconds of session time (see
    /// [`squall_chaos::MessageEvent`]); `lost` counts those the trace overwrote before they were read. Kept out of
    /// the event log: the session writes them to their own capped file (`crate::record::messages`).
    Messages {
        /// The messages, or later fates of held ones (same id).
        messages: Vec<squall_chaos::MessageEvent>,
        /// Messages lost before this batch was read.
        #[serde(default)]
        lost: u64,
    },
    /// The frames held by hold faults, oldest first, replacing the previous list (sent when it changes).
    Held {
        /// The held frames.
        frames: Vec<HeldView>,
    },
    /// The disk and clock faults in force on a node (`squall up --disk-faults`), in words, replacing the
    /// previous report for that node.
    NodeFaults {
        /// Which node.
        node: u64,
        /// Disk faults ("stalled", "slow +50ms (syncs)", "fsync fails", "full").
        disk: Vec<String>,
        /// Its clock's offset and rate ("+1h", "×4", "+30s ×0.5", "strobe 200ms"); `None` when true.
        clock: Option<String>,
    },
    /// The state of every proxied link, replacing the previous report.
    Links {
        /// One entry per directed link.
        links: Vec<LinkView>,
    },
    /// Cumulative counters of the built-in client workload.
    Workload {
        /// Whether it runs.
        on: bool,
        /// Target writes per second.
        rate: u32,
        /// Operations that succeeded so far.
        ok: u64,
        /// Operations that failed or timed out so far: errors of the system under test, or outcomes unknown.
        failed: u64,
        /// lin-kv compare-and-swaps whose precondition did not hold so far: a definite `fail` of that
        /// operation (the value was not the one expected), not an error of the system; counted apart from
        /// `failed` (F8). Absent in logs written before it was counted.
        #[serde(default, skip_serializing_if = "is_zero")]
        cas_failed: u64,
    },
    /// One operation of the built-in workload.
    ClientOp {
        /// The operation ("incr c3 +1").
        op: String,
        /// Its outcome ("ok", "not leader", "timeout").
        result: String,
        /// How long it took, in microseconds.
        latency_us: u64,
    },
    /// The workload's counters checked against the increments it sent and saw acknowledged.
    Checked {
        /// The finding.
        verdict: Verdict,
        /// The finding in words.
        report: String,
    },
    /// One event of the lin-kv workload's operation history: an invocation or a completion.
    Op {
        /// The event, as `squall history` exports it.
        op: crate::check::OpEvent,
    },
    /// One record of the lock workload: a grant, a write in the resource's log, a client pause striking
    /// (see [`crate::check::lock`], whose checker reads them back from the event log).
    Lock {
        /// The record.
        record: crate::check::lock::LockEvent,
    },
    /// The lock workload's records checked for mutual exclusion at the resource ([`crate::check::lock`]).
    LockChecked {
        /// The finding (`Violated`: two clients' protected writes interleaved; `Inconclusive`: no write).
        verdict: Verdict,
        /// The finding in words: a violation names both clients, their leases and the write that slipped in.
        report: String,
    },
    /// The built-in workload now runs this kind of operations.
    WorkloadKind {
        /// Which workload.
        kind: WorkloadKind,
    },
    /// One check's finding in the verdict table of `squall run`, recorded when the run is judged, so the
    /// report of its bundle shows the verdict the run printed (the check, its verdict, its evidence).
    Judged {
        /// The check (`counter`, `linearizable`, `invariants`, `liveness`, `catch-up`, `steps`, `run`).
        check: String,
        /// `Ok` valid, `Violated` invalid, `Inconclusive` unknown.
        verdict: Verdict,
        /// The evidence in words, as the verdict table printed it.
        evidence: String,
    },
    /// `squall run` began its scenario: the fault phase's length, the recovery after it and whether the
    /// phase ends with a heal, so `squall scenario` exports the run as it was planned (not the session's
    /// length, which includes the recovery and the checks).
    RunPlanned {
        /// Length of the fault phase, in milliseconds.
        duration_ms: u64,
        /// Recovery period after it, in milliseconds.
        recovery_ms: u64,
        /// Whether everything is healed at the end of the fault phase.
        final_heal: bool,
    },
    /// `squall run`'s fault phase ended: what it performs from here (the final heal, bringing every node back)
    /// is the run's own ending, which a rerun does again, not a step of its timeline.
    FaultPhaseEnded,
    /// The lin-kv history checked for linearizability.
    LinChecked {
        /// The finding (`Violated`: not linearizable; `Inconclusive`: the deadline passed).
        verdict: Verdict,
        /// The finding in words.
        report: String,
        /// For a history that is not linearizable, the failing window drawn as lanes.
        window: Vec<crate::check::diagram::DiagramLine>,
    },
    /// Terminal recording started or stopped.
    Recording {
        /// Whether a recording runs now.
        on: bool,
        /// The file being written, while on.
        path: Option<String>,
    },
    /// Something squall did for the person that is not a fault (a file written), for the feed.
    Note {
        /// What, in words.
        text: String,
    },
    /// One step of a membership change squall is making (`add`, `remove N`, `replace N`, `promote N`).
    Membership {
        /// The node the step concerns (the one joining, promoted or removed).
        node: u64,
        /// Which step.
        step: MembershipStep,
        /// The step in words ("n6 joins as a learner", "configuration {1,2,3,4,6} committed at 812").
        text: String,
    },
    /// What happened to one host of a cluster spread over hosts (`--hosts`, issue 24).
    Host {
        /// The host's label.
        host: String,
        /// The nodes it runs.
        nodes: Vec<u64>,
        /// What happened.
        change: HostChange,
    },
    /// The session ended.
    Quit,
}

/// What happened to a host ([`Event::Host`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostChange {
    /// Its agent stopped answering, or its ssh ended: its nodes are unreachable, neither dead nor alive as far
    /// as squall knows, until it is back.
    Unreachable {
        /// Why, for a person.
        why: String,
    },
    /// Reconnect attempt `attempt` (the first is 1) starts.
    Reconnecting {
        /// Which attempt.
        attempt: u32,
    },
    /// Reconnect attempt `attempt` failed; the next starts after `retry_in_ms`.
    AttemptFailed {
        /// Which attempt.
        attempt: u32,
        /// Why, for a person.
        why: String,
        /// The wait before the next attempt, in ms.
        retry_in_ms: u64,
    },
    /// It is back: the same agent (pid `pid` on the host), which kept its nodes.
    Back {
        /// The agent's pid on the host.
        pid: u32,
    },
    /// Its agent is gone, and its nodes with it; squall stopped trying.
    Lost {
        /// Why, for a person, in one short line.
        why: String,
        /// What `why` sums up (each dead fault filesystem detached, or not): in the event log, not the feed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        details: Vec<String>,
    },
}

/// The steps of a membership change, as [`Event::Membership`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipStep {
    /// The node was added to the configuration as a learner (non-voting).
    Learner,
    /// A snapshot is being sent to the learner: it is far behind.
    CatchingUp,
    /// The learner caught up and was promoted to voter.
    Promoted,
    /// A configuration entry committed.
    Committed,
    /// The node was taken out of the configuration and its process stopped.
    Removed,
    /// The change waits (for a leader, for a majority of the current configuration, for an earlier change).
    Waiting,
    /// The change gave up; the text says why and what to do.
    Failed,
}

/// What a check of the workload's counters found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every counter holds every increment acknowledged before it was read, and none that was never sent.
    Ok,
    /// A counter lacks acknowledged increments (a lost write) or holds more than were ever sent.
    Violated,
    /// Some counter could not be read (no leader, say); the ones read are within bounds.
    Inconclusive,
}

/// Why a network fault left the set, as [`Event::FaultEnded`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultEnd {
    /// Its `for DUR` ran out.
    Expired,
    /// `heal` or `heal ID` removed it.
    Healed,
    /// The same fault on the same target (same kind and filter) replaced it.
    Replaced,
    /// The same fault with nothing to do (`delay 2 0`, `loss 2 0%`) or a links-matrix key pressed again removed
    /// it.
    Removed,
    /// `release` delivered what it held and ended it.
    Released,
}

/// The life of a node's process as the supervisor sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessState {
    /// Spawned, not yet confirmed running.
    #[default]
    Starting,
    /// Running.
    Running {
        /// OS process id.
        pid: u32,
    },
    /// Stopped with SIGSTOP.
    Paused {
        /// OS process id.
        pid: u32,
    },
    /// Killed on purpose (SIGKILL) and reaped.
    Killed {
        /// The process id it had.
        pid: u32,
    },
    /// Exited on its own or after SIGTERM.
    Exited {
        /// The process id it had.
        pid: u32,
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// The signal that ended it ("SIGTERM"), when one did.
        signal: Option<String>,
        /// For a failure nobody asked for: the error the node logged last ("data directory … is locked").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Being restarted, optionally with its data wiped.
    Restarting {
        /// True when the data directory is removed first.
        wipe: bool,
    },
}

impl ProcessState {
    /// The process id, when one is known.
    pub fn pid(&self) -> Option<u32> {
        match self {
            ProcessState::Running { pid }
            | ProcessState::Paused { pid }
            | ProcessState::Killed { pid }
            | ProcessState::Exited { pid, .. } => Some(*pid),
            ProcessState::Starting | ProcessState::Restarting { .. } => None,
        }
    }

    /// True when the process is up and can answer (running or paused, not dead or being respawned).
    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            ProcessState::Running { .. } | ProcessState::Paused { .. }
        )
    }

    /// A short label for tables ("running", "exit 1", "sig KILL").
    pub fn label(&self) -> String {
        match self {
            ProcessState::Starting => "starting".into(),
            ProcessState::Running { .. } => "running".into(),
            ProcessState::Paused { .. } => "paused".into(),
            ProcessState::Killed { .. } => "killed".into(),
            ProcessState::Exited { code: Some(c), .. } => format!("exit {c}"),
            ProcessState::Exited {
                signal: Some(s), ..
            } => format!("sig {}", s.trim_start_matches("SIG")),
            ProcessState::Exited { .. } => "exited".into(),
            ProcessState::Restarting { wipe: true } => "wiping".into(),
            ProcessState::Restarting { wipe: false } => "restart".into(),
        }
    }
}

/// One fault of the active set, as the header and the links panel show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Its id (`heal ID` removes it).
    pub id: u64,
    /// The fault in the headless vocabulary (`cut *->1 only vote-reply`).
    pub text: String,
    /// A short name for the header (`n2 isolated`, `partition 1,2|3,4,5`, `cut *->1`).
    pub short: String,
    /// When it began (session milliseconds).
    pub since_ms: u64,
    /// When it ends by itself, for timed faults (session milliseconds).
    pub until_ms: Option<u64>,
    /// The fault as a value, its `leader` target resolved: what the dashboard's keys decide from (the links
    /// matrix's key on a link that has this fault sends `heal ID`). Absent in logs written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::command::FaultCmd>,
}

/// One held frame, as the dashboard lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldView {
    /// Arrival order across the network.
    pub seq: u64,
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// Its message kind, if the classifier knew it.
    pub kind: Option<String>,
    /// What it carries (term, indexes), as the classifier reads it.
    pub detail: String,
}

/// What a directed link currently does to its traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Passes traffic untouched.
    #[default]
    Ok,
    /// Adds this many milliseconds of latency.
    Delayed(u32),
    /// Drops this percentage of frames.
    Lossy(u8),
    /// Drops everything.
    Cut,
    /// Holds frames for stepping.
    Held,
    /// Another fault (duplication, reordering, bandwidth, or a fault limited to some message kinds).
    Shaped,
}

/// One directed link between two nodes, as the proxy reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// Sending node.
    pub from: u64,
    /// Receiving node.
    pub to: u64,
    /// Fault on it.
    pub state: LinkState,
    /// Frames forwarded so far.
    pub frames: u64,
    /// Bytes forwarded so far.
    pub bytes: u64,
    /// Frames dropped so far.
    pub dropped: u64,
    /// Frames seen so far per message kind (`vote`, `heartbeat`, …), only kinds seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<(String, u64)>,
    /// Frames duplicated so far.
    #[serde(default)]
    pub duplicated: u64,
    /// Frames delayed so far (latency, reorder, bandwidth).
    #[serde(default)]
    pub delayed: u64,
}

/// The node kind a session runs when none is named (`kind::DEFAULT`).
pub const DEFAULT_KIND: &str = "squall";

/// Which kind a session ran, as `cluster.json` and the event log's settings record it: enough for one-shot
/// commands, replay, export and the report to find it again and to tell whether a file changed since.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KindRecord {
    /// The kind's name (`squall`, `etcd`, a file's `name`).
    pub name: String,
    /// The kind file's path as it was given, for a person's file; absent for a built-in kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file text's digest (`kind::digest`) when the session started.
    pub digest: String,
    /// The Maelstrom node program the session ran (`--maelstrom PATH`, made absolute), for the kind
    /// `maelstrom`; absent for every other kind and in logs from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maelstrom: Option<String>,
}

impl KindRecord {
    /// What `--node-kind` and a scenario's `[cluster] kind` take to name it again: the file, else the name.
    pub fn arg(&self) -> &str {
        self.file.as_deref().unwrap_or(&self.name)
    }

    /// Whether it is the default kind (a scenario leaves `kind` out for it).
    pub fn is_default(&self) -> bool {
        self.file.is_none() && self.name == DEFAULT_KIND
    }
}

/// For serde: a zero count is left out of the event log.
fn is_zero(n: &u64) -> bool {
    *n == 0
}
