//! Scenario files: a cluster, a workload, faults on a timeline and/or from a seeded random nemesis, a
//! duration, a final heal with a recovery period, and the checks to run. Parsing, validation and expansion
//! into a [`Plan`] (every setting a seed expands into and every timed command) are pure; [`crate::run`] performs a
//! plan against real processes through the cluster layer.
//!
//! The shape follows Jepsen's test maps (a generator of operations and a nemesis schedule, judged by checkers
//! to `true / false / :unknown`) and TigerBeetle's VOPR (a seed expands into every option, printed).
//!
//! ```toml
//! name = "bridge"
//! expect = "valid"               # what this scenario should find: valid | invalid
//!
//! [cluster]
//! nodes = 5
//! protocol = "raft"              # raft | paxos: squall's own node with that core (`squall up --protocol`)
//! election-timeout = "150..300ms"
//! heartbeat = "50ms"
//!
//! [workload]
//! kind = "counter"               # counter | lin-kv | none; a Maelstrom node: lin-kv, echo, unique-ids,
//!                                 # broadcast, g-counter, kafka
//! rate = 50
//!
//! [run]
//! duration = "20s"               # the fault phase
//! recovery = "10s"               # after the final heal
//!
//! [[timeline]]
//! at = "5s"
//! do = "partition bridge"        # one line of the headless vocabulary
//! until = "15s"                  # optional: the fault is undone then
//!
//! [nemesis]                      # optional: a seeded random nemesis, as Jepsen's combined nemesis
//! kinds = ["kill", "pause", "partition"]
//! interval = "3s..6s"
//! ```

pub mod export;
pub mod nemesis;
mod parse;
#[cfg(test)]
mod tests;
pub mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use nemesis::{NemesisKind, NemesisSpec};
pub use parse::{ScenarioError, parse_scenario};
pub use squall_node::cli::Protocol;

/// The protocol a scenario's `protocol = "NAME"` (or `squall run --protocol NAME`) names: `raft` or `paxos`.
pub fn protocol_named(name: &str) -> Option<Protocol> {
    match name {
        "raft" => Some(Protocol::Raft),
        "paxos" => Some(Protocol::Paxos),
        _ => None,
    }
}

/// The name of a protocol as scenario files and `--protocol` write it.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Raft => "raft",
        Protocol::Paxos => "paxos",
    }
}

/// The node kind that runs squall's own node with protocol `p` (`squall up --protocol` does the same).
pub fn protocol_kind(p: Protocol) -> &'static str {
    match p {
        Protocol::Raft => crate::kind::DEFAULT,
        Protocol::Paxos => "paxos",
    }
}

/// What a scenario expects its verdict to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every check passes.
    Valid,
    /// Some check finds a violation (the scenario demonstrates a bug or an unsafe setting).
    Invalid,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Valid => "valid",
            Expect::Invalid => "invalid",
        })
    }
}

/// Which built-in workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Increments of eight counters, checked by tally (Jepsen's counter).
    Counter,
    /// read / write / cas on a few keys, checked for linearizability (Jepsen's and Maelstrom's lin-kv).
    LinKv,
    /// A lease lock taken by cas, and writes to a resource under it without fencing (`lock`).
    Lock,
    /// The same with fencing tokens checked by the resource (`lock-fenced`).
    LockFenced,
    /// One of Maelstrom's other workloads (`echo`, `unique-ids`, `broadcast`, `g-counter`, `kafka`), judged by
    /// its checker; a Maelstrom node only.
    Maelstrom(crate::command::WorkloadKind),
    /// No workload.
    None,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Counter => "counter",
            WorkloadKind::LinKv => "lin-kv",
            WorkloadKind::Lock => "lock",
            WorkloadKind::LockFenced => "lock-fenced",
            WorkloadKind::Maelstrom(k) => k.as_str(),
            WorkloadKind::None => "none",
        })
    }
}

/// The cluster a scenario runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// Number of nodes (1 to 9).
    pub nodes: u64,
    /// Election timeout range.
    pub election_timeout: (Duration, Duration),
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Snapshot every N applied entries.
    pub snapshot_every: u64,
    /// The seed, when the file fixes one (`--seed` overrides it; otherwise one is drawn and printed).
    pub seed: Option<u64>,
    /// Serve each node's data directory through the fault filesystem.
    pub disk_faults: bool,
    /// Node binary to run instead of squall itself.
    pub node_bin: Option<PathBuf>,
    /// Extra flags passed to every node (for example `--no-pre-vote`).
    pub node_args: Vec<String>,
    /// The node kind (`kind = "NAME"` or a kind file's path; `None`: the default kind). A `protocol` line
    /// without a `kind` sets it to that protocol's kind (`squall` or `paxos`).
    pub kind: Option<String>,
    /// The protocol of squall's own node (`protocol = "raft" | "paxos"`, or `squall run --protocol`), when
    /// named; it always agrees with `kind`.
    pub protocol: Option<Protocol>,
    /// A Maelstrom node executable (`maelstrom = "./node"`): the `maelstrom` kind running it.
    pub maelstrom: Option<PathBuf>,
}

/// The built-in client workload.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSettings {
    /// Which workload.
    pub kind: WorkloadKind,
    /// Operations per second, all clients together.
    pub rate: u32,
    /// Concurrent clients (lin-kv).
    pub clients: u32,
    /// Keys (lin-kv).
    pub keys: u32,
}

/// Which checks decide the verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Checks {
    /// The counter tally (nothing acknowledged lost, nothing invented); counter workload only.
    pub counter: bool,
    /// Linearizability of the history; lin-kv workload only.
    pub linearizable: bool,
    /// Mutual exclusion at the lock workload's resource; lock and lock-fenced workloads only.
    pub lock: bool,
    /// Live Raft safety invariants from the nodes' statuses.
    pub invariants: bool,
    /// A leader and a commit within `liveness_bound` whenever the cluster is healthy.
    pub liveness: bool,
    /// How long a healthy cluster may go without a leader and a commit (default: 10 maximum election
    /// timeouts).
    pub liveness_bound: Duration,
    /// How long the linearizability checker may search before its verdict is unknown.
    pub checker_deadline: Duration,
}

/// A command on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// When, from the start of the run.
    pub at: Duration,
    /// The command, read (and checked) when the file was loaded; printed in the headless vocabulary.
    pub command: crate::command::Command,
    /// When to undo it (restart what was killed, resume what was paused, heal the fault), if ever.
    pub until: Option<Duration>,
    /// 1-based line of the file it came from (0 when generated by the nemesis).
    pub line: usize,
}

/// A period in which liveness is not expected (faults beyond what the cluster tolerates); safety still is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start, from the start of the run.
    pub from: Duration,
    /// End.
    pub to: Duration,
}

/// A parsed and validated scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Short name (defaults to the file stem).
    pub name: String,
    /// What it reproduces, for people.
    pub description: String,
    /// The verdict the scenario should find.
    pub expect: Expect,
    /// The cluster.
    pub cluster: ClusterSettings,
    /// The workload.
    pub workload: WorkloadSettings,
    /// Length of the fault phase.
    pub duration: Duration,
    /// Heal everything at the end of the fault phase.
    pub final_heal: bool,
    /// How long to run after the final heal before judging.
    pub recovery: Duration,
    /// Hand-written steps, in time order.
    pub timeline: Vec<Step>,
    /// The random nemesis, if any.
    pub nemesis: Option<NemesisSpec>,
    /// The checks.
    pub checks: Checks,
    /// Declared periods without liveness.
    pub beyond_tolerance: Vec<Window>,
}

/// A scenario with its seed expanded: every setting and every timed command, in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The scenario it came from.
    pub scenario: Scenario,
    /// The seed every random choice came from.
    pub seed: u64,
    /// Timeline and nemesis steps merged, in time order (stable: the timeline's before the nemesis' at one
    /// instant).
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The scenario with every time in its run multiplied by `factor` (`squall run --scale 0.5`, a shorter
    /// version for CI): the fault phase, the recovery, each step's time, `until` and own duration (`cut 1->2
    /// for 10s`), the nemesis's timings and the excused windows. The cluster's timeouts, the liveness bound
    /// and amounts that are not times of the run (a delay's length, a clock jump) are kept.
    /// `Err` names the first time that scaling takes past [`crate::units::MAX_DURATION`] (7 days), so
    /// `--dry-run` passes only what can run.
    pub fn scaled(&self, factor: f64) -> Result<Scenario, String> {
        let f = |what: &str, d: Duration| -> Result<Duration, String> {
            let ms = (d.as_millis() as f64 * factor).round();
            let scaled = Duration::from_millis(ms.min(u64::MAX as f64) as u64);
            if ms > crate::units::MAX_DURATION.as_millis() as f64 {
                return Err(format!(
                    "--scale {factor} makes {what} {} ({}), over the limit of 7 days (168h): use a smaller \
                     --scale",
                    fmt_duration(scaled),
                    fmt_duration(d)
                ));
            }
            Ok(scaled)
        };
        let mut s = self.clone();
        s.duration = f("run.duration", s.duration)?.max(Duration::from_millis(1));
        s.recovery = f("run.recovery", s.recovery)?;
        for st in &mut s.timeline {
            let line = st.line;
            st.at = f(&format!("the step of line {line}"), st.at)?;
            st.until = st
                .until
                .map(|u| f(&format!("the `until` of line {line}"), u))
                .transpose()?;
            if let crate::command::Command::Fault(fc) = &mut st.command {
                fc.duration = fc
                    .duration
                    .map(|d| f(&format!("the `for` of line {line}"), d))
                    .transpose()?;
            }
        }
        if let Some(n) = &mut s.nemesis {
            n.interval = (
                f("nemesis.interval", n.interval.0)?,
                f("nemesis.interval", n.interval.1)?.max(Duration::from_millis(1)),
            );
            n.fault_duration = (
                f("nemesis.fault-duration", n.fault_duration.0)?,
                f("nemesis.fault-duration", n.fault_duration.1)?,
            );
            n.start = f("nemesis.start", n.start)?;
        }
        for w in &mut s.beyond_tolerance {
            w.from = f("a beyond-tolerance window", w.from)?;
            w.to = f("a beyond-tolerance window", w.to)?;
        }
        Ok(s)
    }

    /// The scenario run on squall's own node with protocol `p` (`squall run --protocol`), which overrides
    /// the file's `protocol` and its `kind` when that is `squall` or `paxos`. `Err` is the message for a person
    /// (exit 2): the file runs another kind or a Maelstrom node, or passes a node argument only a Paxos node
    /// takes (`--no-leases`) to a Raft run.
    pub fn with_protocol(&self, p: Protocol) -> Result<Scenario, String> {
        let name = protocol_name(p);
        let c = &self.cluster;
        if let Some(m) = &c.maelstrom {
            return Err(format!(
                "--protocol {name}: the scenario runs the Maelstrom node {} (cluster.maelstrom); --protocol \
                 chooses the core of squall's own node",
                m.display()
            ));
        }
        if let Some(k) = &c.kind
            && k != protocol_kind(Protocol::Raft)
            && k != protocol_kind(Protocol::Paxos)
        {
            return Err(format!(
                "--protocol {name}: the scenario runs node kind `{k}` (cluster.kind); --protocol chooses the \
                 core of squall's own node, so drop it or the file's kind"
            ));
        }
        if p == Protocol::Raft && c.node_args.iter().any(|a| a == "--no-leases") {
            return Err(format!(
                "--protocol {name}: the scenario's cluster.node-args pass --no-leases, which only a Paxos node \
                 takes; drop raft from --protocol or the flag from the file"
            ));
        }
        let mut s = self.clone();
        s.cluster.protocol = Some(p);
        s.cluster.kind = Some(protocol_kind(p).to_string());
        Ok(s)
    }

    /// Expands the scenario with `seed` into a [`Plan`]: the nemesis draws its schedule from the seed, so
    /// the same file and seed always give the same steps.
    pub fn plan(&self, seed: u64) -> Plan {
        let mut steps = self.timeline.clone();
        if let Some(n) = &self.nemesis {
            steps.extend(n.schedule(seed, self.cluster.nodes, self.duration));
        }
        steps.sort_by_key(|s| s.at);
        Plan {
            scenario: self.clone(),
            seed,
            steps,
        }
    }
}

impl Plan {
    /// Every setting the seed expanded into, one `key = value` per line, then every step: what `squall run`
    /// prints before it starts, so a run can be read (and rerun) from its output alone.
    pub fn describe(&self) -> String {
        let s = &self.scenario;
        let c = &s.cluster;
        let w = &s.workload;
        let k = &s.checks;
        let d = crate::scenario::fmt_duration;
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22} {v}\n"));
        line("scenario", s.name.clone());
        line("expect", s.expect.to_string());
        line("seed", self.seed.to_string());
        line("nodes", c.nodes.to_string());
        line(
            "election-timeout",
            format!("{}..{}", d(c.election_timeout.0), d(c.election_timeout.1)),
        );
        line("heartbeat", d(c.heartbeat));
        line(
            "snapshot-every",
            match c.snapshot_every {
                0 => "0 (snapshots off)".to_string(),
                n => n.to_string(),
            },
        );
        line("disk-faults", c.disk_faults.to_string());
        if let Some(p) = c.protocol {
            line("protocol", protocol_name(p).to_string());
        }
        if let Some(k) = &c.kind {
            line("kind", k.clone());
        }
        if let Some(m) = &c.maelstrom {
            line("maelstrom", m.display().to_string());
        }
        if let Some(b) = &c.node_bin {
            line("node-bin", b.display().to_string());
        }
        if !c.node_args.is_empty() {
            line("node-args", c.node_args.join(" "));
        }
        line("workload", w.kind.to_string());
        if w.kind != WorkloadKind::None {
            line("rate", format!("{}/s", w.rate));
        }
        if w.kind == WorkloadKind::LinKv {
            line("clients", w.clients.to_string());
            line("keys", w.keys.to_string());
        }
        line("duration", d(s.duration));
        line("final-heal", s.final_heal.to_string());
        line("recovery", d(s.recovery));
        let mut checks = vec![];
        if k.counter {
            checks.push("counter");
        }
        if k.linearizable {
            checks.push("linearizable");
        }
        if k.invariants {
            checks.push("invariants");
        }
        if k.liveness {
            checks.push("liveness");
        }
        line("checks", checks.join(" "));
        line("liveness-bound", d(k.liveness_bound));
        for w in &s.beyond_tolerance {
            line("beyond-tolerance", format!("{}..{}", d(w.from), d(w.to)));
        }
        if let Some(n) = &s.nemesis {
            line("nemesis", n.describe());
        }
        for st in &self.steps {
            let until = st
                .until
                .map(|u| format!(" until {}", d(u)))
                .unwrap_or_default();
            let from = if st.line == 0 {
                " (nemesis)".to_string()
            } else {
                String::new()
            };
            line(
                "step",
                format!("{:>8} {}{until}{from}", d(st.at), st.command),
            );
        }
        out
    }
}

/// A duration as scenario files read it back, exactly (the one ladder of units, [`crate::units::exact`]).
pub use crate::units::exact as fmt_duration;
