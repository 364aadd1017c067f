//! The vocabulary of actions on a running cluster, as values: what the dashboard's keys, the headless console,
//! a scenario's timeline and the nemesis ask for, what events record and what exports write back.
//!
//! This room sits below `cluster/` (which performs commands), `state/` (whose events carry them), `ui/`,
//! `input.rs`, `scenario/` and `report/`; it imports none of them. A command is parsed from the console's
//! words ([`parse()`]), printed back in the same words ([`std::fmt::Display`]; `parse(c.to_string()) == c`),
//! and serialised with serde. [`verbs::VERBS`] is the one table of verbs that the console help, the prompt's
//! completion and hints, the `?` page and the README's vocabulary list come from.

pub mod clock;
pub mod disk;
pub mod effect;
pub mod fault;
mod parse;
pub mod target;
pub mod verbs;

use serde::{Deserialize, Serialize};

pub use clock::ClockAction;
pub use disk::{DiskAction, FsyncFailure, PowerTarget};
pub use effect::Effect;
pub use fault::{FaultCmd, FaultKind, FaultTarget, PartitionShape};
pub use parse::{parse, parse_fault, parse_for};
pub use target::{NodeId, Target};

/// One action a person can ask for: from a key, a line of the headless console, or (later) a scenario
/// timeline, all parsed into this one type. New commands are new variants (with their words in [`parse`] and
/// [`std::fmt::Display`]); performing one returns an outcome (`crate::cluster::Outcome`).
///
/// The toggles (`TogglePause`, `ToggleFault`, `CycleDelay`, `CycleLoss`, `Workload(None)`, `WorkloadStep`,
/// `SetWorkloadKind(None)`) have no console form ([`Command::has_console_form`] is false for them): they are
/// read only from event logs before format 4, which recorded the dashboard's keys as pressed. The dashboard
/// now resolves a key into the command it means before sending it (`crate::input::command_for`), and the
/// cluster refuses a toggle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// SIGKILL the node's process.
    Kill(Target),
    /// SIGTERM the node's process (graceful).
    Terminate(Target),
    /// SIGSTOP.
    Pause(Target),
    /// SIGCONT.
    Resume(Target),
    /// Pause if running, resume if paused.
    TogglePause(Target),
    /// Restart with the same data.
    Restart(Target),
    /// Wipe the data directory and restart.
    Wipe(Target),
    /// Add a network fault to the active set (`isolate 2`, `cut 1->2`, `partition halves`, `delay 2 200ms`, …).
    /// The same fault on the same target (same kind and filter) is replaced; a zero delay or percentage
    /// removes it.
    Fault(FaultCmd),
    /// Add the fault, or remove it when the same fault is in force (the links matrix's keys).
    ToggleFault(FaultCmd),
    /// Step the node's added latency through 0, 50, 200, 1000 ms.
    CycleDelay(Target),
    /// Step the node's loss through 0, 10, 30, 100 %.
    CycleLoss(Target),
    /// List the active faults.
    Faults,
    /// Remove every network fault (`None`), or the one with this id.
    Heal(Option<u64>),
    /// Deliver the N oldest frames held on the target's links.
    Step(FaultTarget, usize),
    /// Discard the N oldest frames held on the target's links.
    DropHeld(FaultTarget, usize),
    /// Deliver every frame held on the target's links and stop holding there.
    Release(FaultTarget),
    /// List the held frames.
    Held,
    /// List every link's counters (frames, drops, duplicates, delays, frames per message kind).
    Links,
    /// Hand leadership to the node.
    Transfer(Target),
    /// Start or stop the built-in workload.
    Workload(Option<bool>),
    /// Set the workload rate (writes per second).
    WorkloadRate(u32),
    /// Raise or lower the workload rate by one step.
    WorkloadStep(bool),
    /// Switch the built-in workload to this kind (`None`: to the other one).
    SetWorkloadKind(Option<WorkloadKind>),
    /// Check the workload's counters: every acknowledged increment must be there.
    Check,
    /// Print the nodes' status (headless).
    Status,
    /// Cut the power of a node, the leader or every node (with a torn mode, part of the unsynced writes
    /// survive); see [`disk`].
    PowerCut(PowerTarget, Option<disk::TornMode>),
    /// Set or heal a disk fault on a node; see [`disk`].
    Disk(Target, DiskAction),
    /// Jump, speed up, slow down, strobe or heal a node's clock; see [`clock`].
    Clock(Target, ClockAction),
    /// Start a new node (the next free id) and make it a voter: it joins as a learner, catches up, and is
    /// promoted; see `crate::cluster::membership`.
    Add,
    /// Remove node N from the configuration, then stop its process (its directory is kept).
    Remove(NodeId),
    /// Add a new node and remove node N once the new one votes.
    Replace(NodeId),
    /// Promote learner N to voter by hand.
    Promote(NodeId),
    /// Stop lock-workload client C for DUR at its next protected write, as a garbage-collection pause does
    /// (Kleppmann's example): after it checked its lease, before it writes. It then carries on as if nothing
    /// happened. The pause strikes once.
    PauseClient(u64, std::time::Duration),
    /// Delay every step of lock-workload client C (its lock requests and its protected writes) by DUR,
    /// until `heal`.
    SlowClient(u64, std::time::Duration),
    /// Restart every node of the configuration at once with its data (removed nodes stay stopped): the
    /// whole cluster back after `powercut all` or a kill of every node, or a crash-restart of all of it.
    RestartAll,
    /// Start a new node (the next free id) and add it as a learner only: it receives the log and never
    /// votes until `promote N`.
    AddLearner,
    /// Make voter N a learner: it keeps receiving the log but no longer votes.
    Demote(NodeId),
    /// Teaching mode: stop every node's election and heartbeat timers (messages still flow, held frames stay
    /// held); nodes that start or restart meanwhile start frozen.
    Freeze,
    /// Teaching mode ends: the nodes' timers run again.
    Thaw,
    /// Node N's election timer fires now: it starts a pre-vote round or an election as its rules say.
    Timeout(NodeId),
    /// The leader sends its heartbeats now.
    Heartbeat,
    /// Discard the held frames on the target's links that a newer round from the same sender superseded.
    DropStale(FaultTarget),
    /// Stop the cluster and exit.
    Quit,
}

/// Which operations the built-in workload runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// Increments of eight counters, checked by a tally.
    #[default]
    Counter,
    /// Reads, writes and compare-and-swaps on a few integer keys, recorded as a history and checked for
    /// linearizability.
    LinKv,
    /// Clients take a lease lock (a compare-and-swap through the cluster) and write to a resource under it;
    /// the resource does not check fencing tokens. Checked for mutual exclusion at the resource.
    Lock,
    /// As [`WorkloadKind::Lock`], and the resource rejects a write whose fencing token is below the highest
    /// it has seen (Kleppmann, "How to do distributed locking").
    LockFenced,
    /// Maelstrom's `echo`: each reply carries its request's `echo` (Maelstrom nodes only).
    Echo,
    /// Maelstrom's `unique-ids`: every `generate` answers an id no other answer had (Maelstrom nodes only).
    UniqueIds,
    /// Maelstrom's `broadcast` on a grid topology: every acknowledged value is eventually read on every node
    /// (Maelstrom nodes only).
    Broadcast,
    /// Maelstrom's `g-counter`: the nodes' final reads equal the acknowledged adds (Maelstrom nodes only).
    GCounter,
    /// Maelstrom's `kafka`-style logs: `send`, `poll`, `commit_offsets`, `list_committed_offsets`; no offset of
    /// a key given to two messages (Maelstrom nodes only).
    Kafka,
}

impl WorkloadKind {
    /// Every workload, in the order help lists them.
    pub const ALL: [WorkloadKind; 9] = [
        WorkloadKind::Counter,
        WorkloadKind::LinKv,
        WorkloadKind::Lock,
        WorkloadKind::LockFenced,
        WorkloadKind::Echo,
        WorkloadKind::UniqueIds,
        WorkloadKind::Broadcast,
        WorkloadKind::GCounter,
        WorkloadKind::Kafka,
    ];

    /// The name the commands, flags and scenario files use (`counter`, `lin-kv`, `lock`, `g-counter`…).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Counter => "counter",
            WorkloadKind::LinKv => "lin-kv",
            WorkloadKind::Lock => "lock",
            WorkloadKind::LockFenced => "lock-fenced",
            WorkloadKind::Echo => "echo",
            WorkloadKind::UniqueIds => "unique-ids",
            WorkloadKind::Broadcast => "broadcast",
            WorkloadKind::GCounter => "g-counter",
            WorkloadKind::Kafka => "kafka",
        }
    }

    /// The workload a name means, `None` for a name that is none.
    pub fn parse(name: &str) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether it is one of Maelstrom's own workloads besides lin-kv, which only a Maelstrom node runs
    /// (`kind::maelstrom::workload`).
    pub fn is_maelstrom_only(self) -> bool {
        !matches!(
            self,
            WorkloadKind::Counter
                | WorkloadKind::LinKv
                | WorkloadKind::Lock
                | WorkloadKind::LockFenced
        )
    }
}

/// The pattern of the dashboard's toggles, which mean different commands depending on the cluster's state
/// when they are performed: the one list of them, used as a pattern wherever they are told apart (a macro, so
/// a `match` that names them keeps the compiler's exhaustiveness check).
macro_rules! dashboard_toggle {
    () => {
        $crate::command::Command::TogglePause(_)
            | $crate::command::Command::ToggleFault(_)
            | $crate::command::Command::CycleDelay(_)
            | $crate::command::Command::CycleLoss(_)
            | $crate::command::Command::Workload(None)
            | $crate::command::Command::WorkloadStep(_)
            | $crate::command::Command::SetWorkloadKind(None)
    };
}
pub(crate) use dashboard_toggle;

impl Command {
    /// False for the dashboard's toggles (the `dashboard_toggle!` pattern); true for every command the console can read
    /// back from its [`std::fmt::Display`].
    pub fn has_console_form(&self) -> bool {
        !matches!(self, dashboard_toggle!())
    }

    /// Whether performing the command changes the cluster (a fault, a process action, a membership change,
    /// the workload) rather than asking about it (`faults`, `held`, `links`, `status`, `check`) or ending the
    /// session.
    pub fn changes_cluster(&self) -> bool {
        !matches!(
            self,
            Command::Faults
                | Command::Held
                | Command::Links
                | Command::Status
                | Command::Check
                | Command::Quit
        )
    }

    /// Whether the command injects a fault (a process stopped or killed, a network, disk or clock fault, a
    /// power cut, data wiped), as opposed to undoing one (`heal`, `restart`, `resume`, `release`) or any
    /// other action (the workload, membership, a check).
    pub fn injects_fault(&self) -> bool {
        match self {
            Command::Kill(_)
            | Command::Terminate(_)
            | Command::Pause(_)
            | Command::TogglePause(_)
            | Command::Wipe(_)
            | Command::ToggleFault(_)
            | Command::CycleDelay(_)
            | Command::CycleLoss(_)
            | Command::PowerCut(..)
            | Command::PauseClient(..)
            | Command::SlowClient(..) => true,
            Command::Fault(f) => !f.kind.is_zero(),
            Command::Disk(_, a) => *a != DiskAction::Heal,
            Command::Clock(_, a) => *a != ClockAction::Heal,
            _ => false,
        }
    }

    /// The node the command acts on, if it acts on one.
    pub fn target(&self) -> Option<Target> {
        match self {
            Command::Kill(t)
            | Command::Terminate(t)
            | Command::Pause(t)
            | Command::Resume(t)
            | Command::TogglePause(t)
            | Command::Restart(t)
            | Command::Wipe(t)
            | Command::CycleDelay(t)
            | Command::CycleLoss(t)
            | Command::Transfer(t) => Some(*t),
            Command::Fault(f) if f.is_isolate() => match f.target {
                FaultTarget::Node(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Command {
    /// The node the command acts on, including a power cut, disk or clock fault on one node ([`Command::target`]
    /// leaves those out: a node's process preconditions do not apply to them).
    pub fn acts_on(&self) -> Option<Target> {
        match self {
            Command::PowerCut(PowerTarget::One(t), _)
            | Command::Disk(t, _)
            | Command::Clock(t, _) => Some(*t),
            other => other.target(),
        }
    }

    /// Whether the command changes the configuration (`add`, `remove`, `replace`, `promote`, `demote`).
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            Command::Add
                | Command::AddLearner
                | Command::Remove(_)
                | Command::Replace(_)
                | Command::Promote(_)
                | Command::Demote(_)
        )
    }
}

impl std::fmt::Display for Command {
    /// The command as a person would type it in the headless console.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Kill(t) => write!(f, "kill {t}"),
            Command::Terminate(t) => write!(f, "terminate {t}"),
            Command::Pause(t) => write!(f, "pause {t}"),
            Command::Resume(t) => write!(f, "resume {t}"),
            Command::TogglePause(t) => write!(f, "pause/resume {t}"),
            Command::Restart(t) => write!(f, "restart {t}"),
            Command::Wipe(t) => write!(f, "wipe {t}"),
            Command::Fault(x) => write!(f, "{x}"),
            Command::ToggleFault(x) => write!(f, "toggle {x}"),
            Command::CycleDelay(t) => write!(f, "cycle delay {t}"),
            Command::CycleLoss(t) => write!(f, "cycle loss {t}"),
            Command::Faults => f.write_str("faults"),
            Command::Heal(None) => f.write_str("heal"),
            Command::Heal(Some(id)) => write!(f, "heal {id}"),
            Command::Step(t, n) => write!(f, "step {t} {n}"),
            Command::DropHeld(t, n) => write!(f, "drop-held {t} {n}"),
            Command::Release(t) => write!(f, "release {t}"),
            Command::Held => f.write_str("held"),
            Command::Links => f.write_str("links"),
            Command::Transfer(t) => write!(f, "transfer {t}"),
            Command::Workload(Some(true)) => f.write_str("workload on"),
            Command::Workload(Some(false)) => f.write_str("workload off"),
            Command::Workload(None) => f.write_str("workload toggle"),
            Command::WorkloadRate(r) => write!(f, "workload rate {r}"),
            Command::WorkloadStep(true) => f.write_str("workload faster"),
            Command::WorkloadStep(false) => f.write_str("workload slower"),
            Command::SetWorkloadKind(Some(k)) => write!(f, "workload {}", k.as_str()),
            Command::SetWorkloadKind(None) => f.write_str("workload switch"),
            Command::Check => f.write_str("check"),
            Command::Status => f.write_str("status"),
            Command::PowerCut(t, None) => write!(f, "powercut {t}"),
            Command::PowerCut(t, Some(torn)) => write!(f, "powercut {t} {torn}"),
            Command::Disk(t, a) => write!(f, "disk {t} {a}"),
            Command::Clock(t, a) => write!(f, "clock {t} {a}"),
            Command::Add => f.write_str("add"),
            Command::Remove(n) => write!(f, "remove {n}"),
            Command::Replace(n) => write!(f, "replace {n}"),
            Command::Promote(n) => write!(f, "promote {n}"),
            Command::PauseClient(c, d) => write!(f, "pause-client {c} {}", fault::human(*d)),
            Command::SlowClient(c, d) => write!(f, "slow-client {c} {}", fault::human(*d)),
            Command::RestartAll => f.write_str("restart all"),
            Command::AddLearner => f.write_str("add --learner"),
            Command::Demote(n) => write!(f, "demote {n}"),
            Command::Freeze => f.write_str("freeze"),
            Command::Thaw => f.write_str("thaw"),
            Command::Timeout(n) => write!(f, "timeout {n}"),
            Command::Heartbeat => f.write_str("heartbeat"),
            Command::DropStale(t) => write!(f, "drop-stale {t}"),
            Command::Quit => f.write_str("quit"),
        }
    }
}

/// The workload rates the dashboard's `+` and `-` step through, in writes per second.
pub const RATE_STEPS: [u32; 9] = [1, 5, 10, 20, 50, 100, 200, 500, 1000];

/// The rate one step up or down from `rate` (writes per second); `rate` itself at either end.
pub fn next_rate(rate: u32, up: bool) -> u32 {
    if up {
        RATE_STEPS
            .iter()
            .copied()
            .find(|&r| r > rate)
            .unwrap_or(rate)
    } else {
        RATE_STEPS
            .iter()
            .rev()
            .copied()
            .find(|&r| r < rate)
            .unwrap_or(rate)
    }
}

/// The step after `now` in `steps` (the first one above it), back to the first step after the last.
pub fn next_step<T: Copy + PartialOrd>(steps: &[T], now: T) -> T {
    steps.iter().copied().find(|&s| s > now).unwrap_or(steps[0])
}

/// Latency steps of the dashboard's `d` key, in milliseconds.
pub const DELAY_STEPS_MS: [u64; 4] = [0, 50, 200, 1000];
/// Loss steps of the dashboard's `l` key, in percent.
pub const LOSS_STEPS_PCT: [u8; 4] = [0, 10, 30, 100];

#[cfg(test)]
pub(crate) mod arbitrary {
    //! Random commands in their console form, for property tests (seeded; the caller prints the seed).

    use std::time::Duration;

    use rand::Rng;
    use rand::seq::IndexedRandom;

    use super::fault::MESSAGE_KINDS;
    use super::*;

    fn target(rng: &mut impl Rng, nodes: u64) -> Target {
        if rng.random_bool(0.2) {
            Target::Leader
        } else {
            Target::Node(rng.random_range(1..=nodes))
        }
    }

    fn node(rng: &mut impl Rng, nodes: u64) -> NodeId {
        rng.random_range(1..=nodes)
    }

    /// A duration with an odd number of milliseconds now and then (`1550ms`), never zero.
    fn duration(rng: &mut impl Rng) -> Duration {
        *[
            Duration::from_millis(rng.random_range(1..5_000)),
            Duration::from_millis(rng.random_range(1..20) * 100),
            Duration::from_secs(rng.random_range(1..120)),
            Duration::from_secs(60 * rng.random_range(1..5)),
            Duration::from_micros(rng.random_range(1..999)),
        ]
        .choose(rng)
        .unwrap()
    }

    fn link(rng: &mut impl Rng, nodes: u64) -> (NodeId, NodeId) {
        let a = node(rng, nodes);
        let b = loop {
            let b = node(rng, nodes);
            if b != a {
                break b;
            }
        };
        (a, b)
    }

    fn fault_target(rng: &mut impl Rng, nodes: u64) -> FaultTarget {
        match rng.random_range(0..6) {
            0 => FaultTarget::Node(target(rng, nodes)),
            1 => {
                let (a, b) = link(rng, nodes);
                FaultTarget::Link(a, b)
            }
            2 => {
                let (a, b) = link(rng, nodes);
                FaultTarget::Both(a, b)
            }
            3 => FaultTarget::From(target(rng, nodes)),
            4 => FaultTarget::To(target(rng, nodes)),
            _ => FaultTarget::All,
        }
    }

    fn shape(rng: &mut impl Rng, nodes: u64) -> PartitionShape {
        match rng.random_range(0..5) {
            0 => PartitionShape::Halves,
            1 => PartitionShape::RandomHalves,
            2 => PartitionShape::Bridge,
            3 => PartitionShape::Ring,
            _ => {
                let split = rng.random_range(1..nodes);
                PartitionShape::Groups(vec![(1..=split).collect(), (split + 1..=nodes).collect()])
            }
        }
    }

    fn pct(rng: &mut impl Rng) -> f64 {
        f64::from(rng.random_range(1..=200u32)) / 2.0
    }

    fn fault(rng: &mut impl Rng, nodes: u64) -> FaultCmd {
        let kind = match rng.random_range(0..9) {
            0 => FaultKind::Cut,
            1 => FaultKind::Delay {
                delay: duration(rng),
                jitter: rng.random_bool(0.3).then(|| duration(rng)),
            },
            2 => FaultKind::Loss(pct(rng)),
            3 => FaultKind::Dup(pct(rng)),
            4 => FaultKind::Reorder(duration(rng)),
            5 => FaultKind::Bandwidth(*[1_000_000, 100_000, 1234].choose(rng).unwrap()),
            6 => FaultKind::Blackhole,
            7 => FaultKind::Reset,
            _ => FaultKind::Hold,
        };
        let target = if kind == FaultKind::Cut && rng.random_bool(0.3) {
            FaultTarget::Shape(shape(rng, nodes))
        } else {
            fault_target(rng, nodes)
        };
        let only = if kind == FaultKind::Reset || rng.random_bool(0.6) {
            Vec::new()
        } else {
            let n = rng.random_range(1..=3);
            let mut kinds: Vec<String> = MESSAGE_KINDS
                .choose_multiple(rng, n)
                .map(|k| k.to_string())
                .collect();
            kinds.dedup();
            kinds
        };
        let duration = (kind != FaultKind::Hold && rng.random_bool(0.4)).then(|| duration(rng));
        FaultCmd {
            target,
            kind,
            only,
            duration,
        }
    }

    /// A random command the console can type (no toggles, no `quit`), naming nodes 1 to `nodes`.
    pub fn command(rng: &mut impl Rng, nodes: u64) -> Command {
        let t = target(rng, nodes);
        match rng.random_range(0..39) {
            0 => Command::Kill(t),
            1 => Command::Terminate(t),
            2 => Command::Pause(t),
            3 => Command::Resume(t),
            4 => Command::Restart(t),
            5 => Command::Wipe(t),
            6..=11 => Command::Fault(fault(rng, nodes)),
            12 => Command::Heal(rng.random_bool(0.5).then(|| rng.random_range(1..20))),
            13 => Command::Step(fault_target(rng, nodes), rng.random_range(1..5)),
            14 => Command::DropHeld(fault_target(rng, nodes), rng.random_range(1..5)),
            15 => Command::Release(fault_target(rng, nodes)),
            16 => Command::Transfer(t),
            17 => Command::Workload(Some(rng.random_bool(0.5))),
            18 => Command::WorkloadRate(rng.random_range(1..=100_000)),
            19 => Command::SetWorkloadKind(Some(
                *[
                    WorkloadKind::Counter,
                    WorkloadKind::LinKv,
                    WorkloadKind::Lock,
                    WorkloadKind::LockFenced,
                ]
                .choose(rng)
                .unwrap(),
            )),
            20 => Command::PowerCut(
                if rng.random_bool(0.3) {
                    PowerTarget::All
                } else {
                    PowerTarget::One(t)
                },
                match rng.random_range(0..4) {
                    0 => None,
                    1 => Some(disk::TornMode::Prefix),
                    2 => Some(disk::TornMode::Writes),
                    _ => Some(disk::TornMode::Pages),
                },
            ),
            21 => Command::Disk(
                t,
                match rng.random_range(0..8) {
                    0 => DiskAction::Slow {
                        delay: duration(rng),
                        syncs_only: rng.random_bool(0.5),
                    },
                    1 => DiskAction::Stall,
                    2 => DiskAction::FailFsync(FsyncFailure::Once),
                    3 => DiskAction::FailFsync(FsyncFailure::Always),
                    4 => DiskAction::Full {
                        after: rng.random_range(0..1 << 30),
                    },
                    5 => DiskAction::Flip {
                        file: None,
                        at: None,
                    },
                    6 => DiskAction::Flip {
                        file: Some("wal/00000001.log".into()),
                        at: rng.random_bool(0.5).then(|| rng.random_range(0..1 << 20)),
                    },
                    _ => DiskAction::Heal,
                },
            ),
            22 => Command::Clock(
                t,
                match rng.random_range(0..4) {
                    0 => ClockAction::Jump(rng.random_range(-100_000_000..100_000_000)),
                    1 => ClockAction::Rate(f64::from(rng.random_range(2..=16u32)) / 4.0),
                    // A strobe is at most 1 s (`clock::MAX_STROBE`).
                    2 => ClockAction::Strobe(Duration::from_millis(rng.random_range(1..=1000))),
                    _ => ClockAction::Heal,
                },
            ),
            23 => Command::Add,
            24 => Command::Remove(node(rng, nodes)),
            25 => Command::Replace(node(rng, nodes)),
            26 => Command::Promote(node(rng, nodes)),
            27 => Command::Check,
            28 => Command::Faults,
            29 => Command::RestartAll,
            30 => Command::AddLearner,
            31 => Command::Demote(node(rng, nodes)),
            32 => Command::Freeze,
            33 => Command::Thaw,
            34 => Command::Timeout(node(rng, nodes)),
            35 => Command::Heartbeat,
            36 => Command::DropStale(fault_target(rng, nodes)),
            37 => Command::PauseClient(rng.random_range(1..=3), duration(rng)),
            38 => Command::SlowClient(rng.random_range(1..=3), duration(rng)),
            _ => Command::Held,
        }
    }

    /// The seed of a property test: `SQUALL_SEED` when set (to replay a failure), else a fresh one.
    pub fn seed() -> u64 {
        std::env::var("SQUALL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_console_command_prints_as_it_parses() {
        let seed = arbitrary::seed();
        println!("seed {seed} (rerun with SQUALL_SEED={seed})");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..5_000 {
            let c = arbitrary::command(&mut rng, 5);
            let line = c.to_string();
            assert_eq!(parse(&line), Ok(c.clone()), "`{line}` (seed {seed})");
            assert!(c.has_console_form(), "{c:?}");
            let json = serde_json::to_string(&c).expect("serialises");
            assert_eq!(
                serde_json::from_str::<Command>(&json).expect("deserialises"),
                c,
                "{json} (seed {seed})"
            );
        }
    }

    #[test]
    fn a_misspelt_partition_shape_is_refused_when_read() {
        // Issue 19: `partition hlaves` passed a scenario's validation and failed mid-run.
        let e = parse("partition hlaves").unwrap_err();
        assert!(e.contains("`hlaves` is not a partition shape"), "{e}");
        assert!(
            parse("partition 1,2|2,3")
                .unwrap_err()
                .contains("two groups")
        );
        assert!(parse("partition 1,2,3").unwrap_err().contains("one group"));
        assert_eq!(
            parse("partition 1,2 | 3").map(|c| c.to_string()),
            Ok("partition 1,2|3".into())
        );
    }

    #[test]
    fn toggles_have_no_console_form_and_faults_are_told_from_other_actions() {
        assert!(!Command::TogglePause(Target::Node(1)).has_console_form());
        assert!(!Command::Workload(None).has_console_form());
        assert!(Command::Workload(Some(true)).has_console_form());
        for line in [
            "kill leader",
            "isolate 2",
            "disk 1 stall",
            "clock 2 +1h",
            "powercut all",
        ] {
            assert!(parse(line).unwrap().injects_fault(), "{line}");
        }
        for line in [
            "heal",
            "workload on",
            "restart 2",
            "resume 2",
            "delay 2 0",
            "disk 1 heal",
            "clock 1 heal",
            "add",
            "release *",
        ] {
            assert!(!parse(line).unwrap().injects_fault(), "{line}");
        }
    }
}
