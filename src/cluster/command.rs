//! The vocabulary of actions on a running cluster, shared by the dashboard's keys and the headless console.

use std::time::Duration;

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

/// One action a person can ask for.
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
    /// Wipe the data directory and restart.
    Wipe(Target),
    /// Cut every link to and from the node.
    Isolate(Target),
    /// Add latency to every link to and from the node (zero removes it).
    Delay(Target, Duration),
    /// Drop this percentage of frames on every link to and from the node (zero removes it).
    Loss(Target, u8),
    /// Step the node's added latency through 0, 50, 200, 1000 ms.
    CycleDelay(Target),
    /// Step the node's loss through 0, 10, 30, 100 %.
    CycleLoss(Target),
    /// Cut the cluster: `halves`, `random-halves`, `bridge`, `ring`, or a grouping like `1,2|3,4,5`.
    Partition(String),
    /// Remove every network fault.
    Heal,
    /// Hand leadership to the node.
    Transfer(Target),
    /// Start or stop the built-in workload.
    Workload(Option<bool>),
    /// Set the workload rate (writes per second).
    WorkloadRate(u32),
    /// Raise or lower the workload rate by one step.
    WorkloadStep(bool),
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
    /// Stop the cluster and exit.
    Quit,
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
            Command::Wipe(t) => write!(f, "wipe {t}"),
            Command::Isolate(t) => write!(f, "isolate {t}"),
            Command::Delay(t, d) => write!(f, "delay {t} {}ms", d.as_millis()),
            Command::Loss(t, p) => write!(f, "loss {t} {p}%"),
            Command::CycleDelay(t) => write!(f, "cycle delay {t}"),
            Command::CycleLoss(t) => write!(f, "cycle loss {t}"),
            Command::Partition(s) => write!(f, "partition {s}"),
            Command::Heal => f.write_str("heal"),
            Command::Transfer(t) => write!(f, "transfer {t}"),
            Command::Workload(Some(true)) => f.write_str("workload on"),
            Command::Workload(Some(false)) => f.write_str("workload off"),
            Command::Workload(None) => f.write_str("workload toggle"),
            Command::WorkloadRate(r) => write!(f, "workload rate {r}"),
            Command::WorkloadStep(true) => f.write_str("workload faster"),
            Command::WorkloadStep(false) => f.write_str("workload slower"),
            Command::Check => f.write_str("check"),
            Command::Status => f.write_str("status"),
            Command::PowerCut(t, torn) => {
                write!(f, "powercut {t}{}", if *torn { " torn" } else { "" })
            }
            Command::Disk(t, a) => write!(f, "disk {t} {a}"),
            Command::Clock(t, a) => write!(f, "clock {t} {a}"),
            Command::Quit => f.write_str("quit"),
        }
    }
}

/// Latency steps of [`Command::CycleDelay`], in milliseconds.
pub const DELAY_STEPS_MS: [u64; 4] = [0, 50, 200, 1000];
/// Loss steps of [`Command::CycleLoss`], in percent.
pub const LOSS_STEPS_PCT: [u8; 4] = [0, 10, 30, 100];

/// Help text of the headless console.
pub const HEADLESS_HELP: &str = "commands: kill N|leader, terminate N, pause N, resume N, restart N, wipe N, \
isolate N, delay N 200ms, loss N 30%, partition halves|random-halves|bridge|ring|1,2|3,4,5, heal, transfer N, \
workload on|off, workload rate R, check, status, quit; with --disk-faults: powercut N|leader|all [torn], \
disk N slow 50ms [sync]|stall|fail-fsync [once|always]|full [after BYTES]|flip [FILE]|heal, \
clock N +1h|-30s|x4|strobe 200ms|heal";

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
        "restart" => no_more(1, Command::Restart(target(arg(0), cmd)?)),
        "wipe" => no_more(1, Command::Wipe(target(arg(0), cmd)?)),
        "isolate" => no_more(1, Command::Isolate(target(arg(0), cmd)?)),
        "transfer" => no_more(1, Command::Transfer(target(arg(0), cmd)?)),
        "delay" => {
            let t = target(arg(0), cmd)?;
            let d =
                arg(1).ok_or("`delay` needs a duration, e.g. `delay 2 200ms` (0 removes it)")?;
            let d = if d == "0" {
                Duration::ZERO
            } else {
                humantime::parse_duration(d)
                    .map_err(|_| format!("`{d}` is not a duration like 200ms"))?
            };
            no_more(2, Command::Delay(t, d))
        }
        "loss" => {
            let t = target(arg(0), cmd)?;
            let p = arg(1).ok_or("`loss` needs a percentage, e.g. `loss 2 30%` (0 removes it)")?;
            let pct: u8 = p
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|v| *v <= 100)
                .ok_or_else(|| format!("`{p}` is not a percentage from 0% to 100%"))?;
            no_more(2, Command::Loss(t, pct))
        }
        "partition" => {
            let shape = rest.join("");
            if shape.is_empty() {
                return Err("`partition` needs a shape: halves, random-halves, bridge, ring, or a grouping like 1,2|3,4,5".into());
            }
            Ok(Command::Partition(shape))
        }
        "heal" => no_more(0, Command::Heal),
        "workload" => match (arg(0), arg(1)) {
            (Some("on"), None) => Ok(Command::Workload(Some(true))),
            (Some("off"), None) => Ok(Command::Workload(Some(false))),
            (None, None) => Ok(Command::Workload(None)),
            (Some("rate"), Some(r)) => r
                .parse()
                .ok()
                .filter(|r| (1..=100_000).contains(r))
                .map(Command::WorkloadRate)
                .ok_or_else(|| format!("`{r}` is not a rate from 1 to 100000 writes/s")),
            _ => Err("use `workload on`, `workload off` or `workload rate 500`".into()),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_vocabulary() {
        assert_eq!(parse("kill 2"), Ok(Command::Kill(Target::Node(2))));
        assert_eq!(parse("kill leader"), Ok(Command::Kill(Target::Leader)));
        assert_eq!(
            parse("delay 2 200ms"),
            Ok(Command::Delay(Target::Node(2), Duration::from_millis(200)))
        );
        assert_eq!(parse("loss 3 30%"), Ok(Command::Loss(Target::Node(3), 30)));
        assert_eq!(
            parse("partition 1,2 | 3,4,5"),
            Ok(Command::Partition("1,2|3,4,5".into()))
        );
        assert_eq!(
            parse("partition halves"),
            Ok(Command::Partition("halves".into()))
        );
        assert_eq!(parse("workload rate 500"), Ok(Command::WorkloadRate(500)));
        assert_eq!(parse("workload on"), Ok(Command::Workload(Some(true))));
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
    }
}
