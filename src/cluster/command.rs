//! The vocabulary of actions on a running cluster, shared by the dashboard's keys and the headless console.

use super::fault::{
    FaultCmd, FaultKind, FaultTarget, hint, parse_duration, parse_options, parse_pct, parse_rate,
};

/// A node id.
pub type NodeId = u64;

/// Which node an action targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A node by id.
    Node(NodeId),
    /// Whichever node leads when the action runs.
    Leader,
}

/// One action a person can ask for: from a key, a line of the headless console, or (later) a scenario
/// timeline, all parsed into this one type. New commands are new variants (with their words in [`parse`] and
/// [`std::fmt::Display`]); performing one returns an [`super::Outcome`].
#[derive(Clone, Debug, PartialEq)]
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
    /// Restart every node of the configuration at once with its data (removed nodes stay stopped): the
    /// whole cluster back after `powercut all` or a kill of every node, or a crash-restart of all of it.
    RestartAll,
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
    SetWorkloadKind(Option<crate::state::WorkloadKind>),
    /// Check the workload's counters: every acknowledged increment must be there.
    Check,
    /// Print the nodes' status (headless).
    Status,
    /// Cut the power of a node, the leader or every node (`torn`: last unsynced writes keep a prefix); see
    /// [`super::disk`].
    PowerCut(super::disk::PowerTarget, bool),
    /// Set or heal a disk fault on a node; see [`super::disk`].
    Disk(Target, super::disk::DiskAction),
    /// Jump, speed up, slow down, strobe or heal a node's clock; see [`super::clock`].
    Clock(Target, super::clock::ClockAction),
    /// Start a new node (the next free id) and make it a voter: it joins as a learner, catches up, and is
    /// promoted; see [`super::membership`].
    Add,
    /// Start a new node (the next free id) and add it as a learner only: it receives the log and never
    /// votes until `promote N`.
    AddLearner,
    /// Make voter N a learner: it keeps receiving the log but no longer votes.
    Demote(NodeId),
    /// Remove node N from the configuration, then stop its process (its directory is kept).
    Remove(NodeId),
    /// Add a new node and remove node N once the new one votes.
    Replace(NodeId),
    /// Promote learner N to voter by hand.
    Promote(NodeId),
    /// Stop the cluster and exit.
    Quit,
}

impl Command {
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

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node(id) => write!(f, "{id}"),
            Target::Leader => f.write_str("leader"),
        }
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
            Command::RestartAll => f.write_str("restart all"),
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
            Command::PowerCut(t, torn) => {
                write!(f, "powercut {t}{}", if *torn { " torn" } else { "" })
            }
            Command::Disk(t, a) => write!(f, "disk {t} {a}"),
            Command::Clock(t, a) => write!(f, "clock {t} {a}"),
            Command::Add => f.write_str("add"),
            Command::Remove(n) => write!(f, "remove {n}"),
            Command::Replace(n) => write!(f, "replace {n}"),
            Command::Promote(n) => write!(f, "promote {n}"),
            Command::AddLearner => f.write_str("add --learner"),
            Command::Demote(n) => write!(f, "demote {n}"),
            Command::Quit => f.write_str("quit"),
        }
    }
}

/// Latency steps of [`Command::CycleDelay`], in milliseconds.
pub const DELAY_STEPS_MS: [u64; 4] = [0, 50, 200, 1000];
/// Loss steps of [`Command::CycleLoss`], in percent.
pub const LOSS_STEPS_PCT: [u8; 4] = [0, 10, 30, 100];

/// Help text of the headless console.
pub const HEADLESS_HELP: &str = "commands: kill N|leader, terminate N, pause N, resume N, restart N|all, wipe N, \
transfer N, isolate N, partition halves|random-halves|bridge|ring|1,2|3,4,5, cut TARGET, delay TARGET 200ms \
(bare numbers are ms) [jitter DUR], loss TARGET 30%, dup TARGET PCT, reorder TARGET DUR, bandwidth TARGET 1MB/s, blackhole TARGET, \
reset TARGET, hold TARGET, any fault + [for DUR] [only KIND,..], faults, heal [ID], held, step TARGET [N], \
drop-held TARGET [N], release TARGET, links, add [--learner], remove N, replace N, promote N, demote N, workload on|off, workload rate R, workload lin-kv|counter, check, status, quit; \
with --disk-faults: powercut N|leader|all [torn], disk N slow 50ms [sync]|stall|fail-fsync [once|always]|full \
[after BYTES]|flip [FILE]|heal, clock N +1h|-30s|x4|strobe 200ms|heal \
(TARGET: 2 · leader · 1->2 · 1<->2 · 2->* · *->2 · *)";

/// The console's answer to `help`: the vocabulary in groups, one line each (the same commands as
/// [`HEADLESS_HELP`], which the console prints once at start).
pub const HELP_LINES: [&str; 8] = [
    "processes: kill N|leader, terminate N, pause N, resume N, restart N|all, wipe N, transfer N",
    "network: isolate N, partition halves|random-halves|bridge|ring|1,2|3,4,5, cut TARGET, \
     delay TARGET 200ms (bare numbers are ms) [jitter DUR], loss TARGET 30%, dup TARGET PCT, reorder TARGET DUR, \
     bandwidth TARGET 1MB/s, blackhole TARGET, reset TARGET, hold TARGET; any fault + [for DUR] [only KIND,..]",
    "faults in force: faults, heal [ID], held, step TARGET [N], drop-held TARGET [N], release TARGET, links",
    "membership: add [--learner], remove N, replace N, promote N, demote N",
    "workload: workload on|off, workload rate R, workload lin-kv|counter, check",
    "with --disk-faults: powercut N|leader|all [torn], disk N slow 50ms [sync]|stall|fail-fsync [once|always]|\
     full [after BYTES]|flip [FILE]|heal, clock N +1h|-30s|x4|strobe 200ms|heal",
    "TARGET: 2 · leader · 1->2 · 1<->2 · 2->* · *->2 · *",
    "session: status, help (or ?), quit (or exit)",
];

/// The console's answer to a line with nothing on it: an answer like any other line's, so a script that
/// reads one answer per line it writes never waits for one that does not come.
pub const EMPTY_LINE: &str = "empty line; type `help` for the commands";

/// Every verb the console knows, for the dashboard prompt's hint.
pub const VERBS: [&str; 39] = [
    "powercut",
    "disk",
    "clock",
    "kill",
    "terminate",
    "pause",
    "resume",
    "restart",
    "wipe",
    "transfer",
    "isolate",
    "partition",
    "cut",
    "delay",
    "loss",
    "dup",
    "reorder",
    "bandwidth",
    "blackhole",
    "reset",
    "hold",
    "faults",
    "heal",
    "held",
    "step",
    "drop-held",
    "release",
    "links",
    "add",
    "remove",
    "replace",
    "promote",
    "demote",
    "workload",
    "check",
    "status",
    "quit",
    "help",
    "exit",
];

fn target(word: Option<&str>, cmd: &str) -> Result<Target, String> {
    match word {
        None => Err(format!(
            "`{cmd}` needs a node id (or `leader`), e.g. `{cmd} 2`"
        )),
        Some("leader") => Ok(Target::Leader),
        Some(w) => w
            .parse::<NodeId>()
            .map(Target::Node)
            .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)")),
    }
}

/// A node id a membership command names (`remove 4`): a plain number, never `leader` (say which node).
fn member(word: Option<&str>, cmd: &str) -> Result<NodeId, String> {
    match word {
        None => Err(format!("`{cmd}` needs a node id, e.g. `{cmd} 2`")),
        Some("leader") => Err(format!(
            "`{cmd}` takes a node id, not `leader`: name the node (`status` shows who leads)"
        )),
        Some(w) => w
            .parse::<NodeId>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{w}` is not a node id (expected a number from 1)")),
    }
}

/// Parses one line of the headless console.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, rest)) = words.split_first() else {
        return Err("empty command".into());
    };
    let arg = |i: usize| rest.get(i).copied();
    let no_more = |n: usize, c: Command| {
        if rest.len() > n {
            Err(format!(
                "`{cmd}` takes {n} argument(s), got `{}`",
                rest.join(" ")
            ))
        } else {
            Ok(c)
        }
    };
    match cmd {
        "kill" => no_more(1, Command::Kill(target(arg(0), cmd)?)),
        "terminate" | "term" | "stop" => no_more(1, Command::Terminate(target(arg(0), cmd)?)),
        "pause" => no_more(1, Command::Pause(target(arg(0), cmd)?)),
        "resume" | "cont" => no_more(1, Command::Resume(target(arg(0), cmd)?)),
        "restart" if arg(0) == Some("all") => no_more(1, Command::RestartAll),
        "restart" => no_more(1, Command::Restart(target(arg(0), cmd)?)),
        "wipe" => no_more(1, Command::Wipe(target(arg(0), cmd)?)),
        "transfer" => no_more(1, Command::Transfer(target(arg(0), cmd)?)),
        "cut" | "blackhole" | "reset" | "hold" | "delay" | "loss" | "dup" | "reorder"
        | "bandwidth" | "isolate" | "partition" => parse_fault(cmd, rest).map(Command::Fault),
        "faults" => no_more(0, Command::Faults),
        "held" => no_more(0, Command::Held),
        "links" => no_more(0, Command::Links),
        "heal" => match arg(0) {
            None => Ok(Command::Heal(None)),
            Some(w) => {
                let id = w.trim_start_matches('#').parse().map_err(|_| {
                    format!(
                        "`{w}` is not a fault id; `faults` lists them ({})",
                        hint("heal")
                    )
                })?;
                no_more(1, Command::Heal(Some(id)))
            }
        },
        "step" | "drop-held" => {
            let t = FaultTarget::parse(
                arg(0).ok_or_else(|| format!("`{cmd}` needs a target; {}", hint(cmd)))?,
            )?;
            let n = match arg(1) {
                None => 1,
                Some(w) => w
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("`{w}` is not a number of frames (1 or more)"))?,
            };
            let c = if cmd == "step" {
                Command::Step(t, n)
            } else {
                Command::DropHeld(t, n)
            };
            no_more(2, c)
        }
        "release" => {
            let t = FaultTarget::parse(
                arg(0).ok_or_else(|| format!("`release` needs a target; {}", hint(cmd)))?,
            )?;
            no_more(1, Command::Release(t))
        }
        "workload" => match (arg(0), arg(1)) {
            (Some("on"), None) => Ok(Command::Workload(Some(true))),
            (Some("off"), None) => Ok(Command::Workload(Some(false))),
            (None, None) => Ok(Command::Workload(None)),
            (Some("lin-kv"), None) => Ok(Command::SetWorkloadKind(Some(
                crate::state::WorkloadKind::LinKv,
            ))),
            (Some("counter"), None) => Ok(Command::SetWorkloadKind(Some(
                crate::state::WorkloadKind::Counter,
            ))),
            (Some("rate"), Some(r)) => r
                .parse()
                .ok()
                .filter(|r| (1..=100_000).contains(r))
                .map(Command::WorkloadRate)
                .ok_or_else(|| format!("`{r}` is not a rate from 1 to 100000 writes/s")),
            _ => Err(
                "use `workload on`, `workload off`, `workload rate 500`, `workload lin-kv` or `workload counter`"
                    .into(),
            ),
        },
        "add" if arg(0) == Some("--learner") => no_more(1, Command::AddLearner),
        "add" => no_more(0, Command::Add),
        "remove" => no_more(1, Command::Remove(member(arg(0), cmd)?)),
        "replace" => no_more(1, Command::Replace(member(arg(0), cmd)?)),
        "promote" => no_more(1, Command::Promote(member(arg(0), cmd)?)),
        "demote" => no_more(1, Command::Demote(member(arg(0), cmd)?)),
        "powercut" => super::disk::parse_powercut(rest),
        "disk" => super::disk::parse_disk(rest),
        "clock" => super::clock::parse_clock(rest),
        "check" => no_more(0, Command::Check),
        "status" => no_more(0, Command::Status),
        "quit" | "exit" => no_more(0, Command::Quit),
        "help" | "?" => Err(HEADLESS_HELP.into()),
        other => Err(format!("unknown command `{other}`; {HEADLESS_HELP}")),
    }
}

/// Parses a fault line after its verb: `cut 1->2 for 10s`, `delay 2 200ms jitter 50ms only heartbeat`,
/// `partition 1,2 | 3,4,5 for 5s`, `isolate 2`.
pub fn parse_fault(verb: &str, rest: &[&str]) -> Result<FaultCmd, String> {
    let usage = || format!("`{verb}` needs more: {}", hint(verb));
    if verb == "partition" {
        // The shape may be written with spaces (`1,2 | 3,4,5`); options start at the first keyword.
        let end = rest
            .iter()
            .position(|w| matches!(*w, "for" | "only"))
            .unwrap_or(rest.len());
        let shape = rest[..end].join("");
        if shape.is_empty() {
            return Err(usage());
        }
        let (duration, only, _) = parse_options(&rest[end..], verb, false)?;
        return Ok(FaultCmd {
            target: FaultTarget::Shape(shape),
            kind: FaultKind::Cut,
            only,
            duration,
        });
    }
    let (first, params) = rest.split_first().ok_or_else(usage)?;
    let target = if verb == "isolate" {
        match FaultTarget::parse(first)? {
            t @ FaultTarget::Node(_) => t,
            _ => {
                return Err(format!(
                    "`isolate` takes a node (e.g. `isolate 2`); for links use `cut {first}`"
                ));
            }
        }
    } else {
        FaultTarget::parse(first)?
    };
    let value = || params.first().copied().ok_or_else(usage);
    let (kind, used) = match verb {
        "cut" | "isolate" => (FaultKind::Cut, 0),
        "blackhole" => (FaultKind::Blackhole, 0),
        "reset" => (FaultKind::Reset, 0),
        "hold" => (FaultKind::Hold, 0),
        "delay" => (
            FaultKind::Delay {
                delay: parse_duration(value()?, "duration")?,
                jitter: None,
            },
            1,
        ),
        "loss" => (FaultKind::Loss(parse_pct(value()?)?), 1),
        "dup" => (FaultKind::Dup(parse_pct(value()?)?), 1),
        "reorder" => (FaultKind::Reorder(parse_duration(value()?, "duration")?), 1),
        "bandwidth" => (FaultKind::Bandwidth(parse_rate(value()?)?), 1),
        other => return Err(format!("`{other}` is not a fault")),
    };
    let (duration, only, jitter) = parse_options(&params[used..], verb, verb == "delay")?;
    let kind = match (kind, jitter) {
        (FaultKind::Delay { delay, .. }, Some(j)) => FaultKind::Delay {
            delay,
            jitter: Some(j),
        },
        (k, _) => k,
    };
    if kind == FaultKind::Reset && !only.is_empty() {
        return Err(
            "`reset` closes whole connections, so `only` cannot limit it to some messages".into(),
        );
    }
    if kind == FaultKind::Hold && duration.is_some() {
        return Err(
            "`hold` stays until released (`release TARGET`) or healed; it takes no `for`".into(),
        );
    }
    Ok(FaultCmd {
        target,
        kind,
        only,
        duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn help_names_every_verb() {
        let help = HELP_LINES.join(" ");
        for verb in VERBS {
            assert!(
                help.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                    .any(|w| w == verb),
                "`{verb}` is missing from HELP_LINES"
            );
        }
    }

    #[test]
    fn parses_the_vocabulary() {
        assert_eq!(parse("kill 2"), Ok(Command::Kill(Target::Node(2))));
        assert_eq!(parse("kill leader"), Ok(Command::Kill(Target::Leader)));
        let node = |n| FaultTarget::Node(Target::Node(n));
        assert_eq!(
            parse("delay 2 200ms"),
            Ok(Command::Fault(FaultCmd::new(
                node(2),
                FaultKind::Delay {
                    delay: Duration::from_millis(200),
                    jitter: None
                }
            )))
        );
        assert_eq!(
            parse("loss 3 30%"),
            Ok(Command::Fault(FaultCmd::new(
                node(3),
                FaultKind::Loss(30.0)
            )))
        );
        assert_eq!(
            parse("partition 1,2 | 3,4,5"),
            Ok(Command::Fault(FaultCmd::new(
                FaultTarget::Shape("1,2|3,4,5".into()),
                FaultKind::Cut
            )))
        );
        assert_eq!(
            parse("isolate 2"),
            Ok(Command::Fault(FaultCmd::new(node(2), FaultKind::Cut)))
        );
        // Units may be left out of both delays and percentages: milliseconds and percent.
        assert_eq!(parse("delay 2 200"), parse("delay 2 200ms"));
        assert_eq!(parse("loss 3 30"), parse("loss 3 30%"));
        assert_eq!(parse("heal"), Ok(Command::Heal(None)));
        assert_eq!(parse("heal #3"), Ok(Command::Heal(Some(3))));
        assert_eq!(parse("workload rate 500"), Ok(Command::WorkloadRate(500)));
        assert_eq!(parse("workload on"), Ok(Command::Workload(Some(true))));
        assert_eq!(
            parse("workload lin-kv"),
            Ok(Command::SetWorkloadKind(Some(
                crate::state::WorkloadKind::LinKv
            )))
        );
        assert_eq!(
            parse("workload counter"),
            Ok(Command::SetWorkloadKind(Some(
                crate::state::WorkloadKind::Counter
            )))
        );
        assert!(
            parse("workload linkv")
                .unwrap_err()
                .contains("workload lin-kv")
        );
        assert_eq!(parse("  quit "), Ok(Command::Quit));
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        assert!(parse("kill").unwrap_err().contains("needs a node id"));
        assert!(
            parse("kill two")
                .unwrap_err()
                .contains("`two` is not a node id")
        );
        assert!(parse("loss 2 130%").unwrap_err().contains("0% to 100%"));
        assert!(
            parse("delay 2 soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse("explode 2")
                .unwrap_err()
                .contains("unknown command `explode`")
        );
        assert!(parse("kill 2 3").unwrap_err().contains("takes 1 argument"));
        assert!(parse("").is_err());
        assert!(parse("isolate 1->2").unwrap_err().contains("cut 1->2"));
        assert!(
            parse("reset 2 only vote")
                .unwrap_err()
                .contains("whole connections")
        );
        assert!(parse("hold * for 5s").unwrap_err().contains("no `for`"));
        assert!(parse("bandwidth 1->2").unwrap_err().contains("needs more"));
        assert!(parse("heal two").unwrap_err().contains("not a fault id"));
        // A duration that would overflow when added to a clock is refused where it is read.
        for line in [
            "cut 1->2 for 18446744073709551615s",
            "delay 2 18446744073709551615s",
            "delay 2 9999999999999",
        ] {
            assert!(
                parse(line).unwrap_err().contains("at most 7 days"),
                "{line}"
            );
        }
        assert!(parse("step").unwrap_err().contains("needs a target"));
        assert!(parse("step * 0").unwrap_err().contains("number of frames"));
        assert!(parse("remove").unwrap_err().contains("needs a node id"));
        assert!(parse("remove leader").unwrap_err().contains("not `leader`"));
        assert!(parse("promote 0").unwrap_err().contains("not a node id"));
        assert!(parse("add 4").unwrap_err().contains("takes 0 argument"));
        assert!(
            parse("replace 2 3")
                .unwrap_err()
                .contains("takes 1 argument")
        );
    }

    #[test]
    fn the_issue_vocabulary_parses_and_prints_back() {
        for line in [
            "cut 1->2",
            "cut *->3",
            "cut 2<->4 for 10s",
            "delay 1->3 200ms only heartbeat",
            "delay 2 200ms jitter 50ms for 5s",
            "loss *->1 100% only vote-reply",
            "dup 2 20%",
            "reorder 1<->2 50ms",
            "bandwidth 1->3 1MB/s",
            "blackhole 3->*",
            "reset 2",
            "partition bridge for 30s",
            "partition 1,2|3,4,5 only append,heartbeat",
            "isolate leader",
            "hold * only vote,vote-reply",
            "heal 4",
            "step * 3",
            "drop-held 1->2 1",
            "release *",
            "held",
            "faults",
            "add",
            "remove 4",
            "replace 2",
            "promote 6",
            "restart all",
            "add --learner",
            "demote 3",
        ] {
            let cmd = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cmd.to_string(), line, "printed back");
            assert_eq!(parse(&cmd.to_string()), Ok(cmd), "{line}");
        }
    }
}
