//! Reading a command from the console's words.

use super::clock::parse_clock;
use super::disk::{parse_disk, parse_powercut};
use super::fault::{
    FaultCmd, FaultKind, FaultTarget, HEADLESS_HELP, PartitionShape, hint, parse_duration,
    parse_options, parse_pct, parse_rate,
};
use super::{Command, NodeId, Target, WorkloadKind};

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

/// The words after `pause-client` or `slow-client`: a client number from 1 and a duration above zero.
fn client_fault(cmd: &str, rest: &[&str]) -> Result<(u64, std::time::Duration), String> {
    let usage = format!("`{cmd}` needs a client and a duration, e.g. `{cmd} 1 3s`");
    let [c, d] = rest else {
        return Err(usage);
    };
    let client = c.parse::<u64>().ok().filter(|c| *c >= 1).ok_or_else(|| {
        format!("`{c}` is not a client number (lock-workload clients are numbered from 1); {usage}")
    })?;
    let d = parse_duration(d, "duration")?;
    if d.is_zero() {
        return Err(format!("`{cmd}` needs a duration above zero; {usage}"));
    }
    Ok((client, d))
}

/// Parses one console line for a running cluster whose node kind labels peer frames with `kinds`
/// (`Cluster::message_kinds`): as [`parse`], but a mistyped `only KIND` is answered with that node kind's
/// kinds (a Paxos cluster's `prepare, promise, …`), not every node kind's. With `kinds` empty (a kind whose
/// frames carry no labels) it is [`parse`].
pub fn parse_for(line: &str, kinds: &[&str]) -> Result<Command, String> {
    parse(line).map_err(|e| {
        if kinds.is_empty() || !e.contains("is not a message kind") {
            return e;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| w[0] == "only")
            .flat_map(|w| w[1].split(','))
            .find(|k| !k.is_empty() && !kinds.contains(k))
            .map(|k| {
                format!(
                    "`{k}` is not a message kind of this cluster's nodes; their kinds: {}",
                    kinds.join(", ")
                )
            })
            .unwrap_or(e)
    })
}

/// Parses one line of the headless console.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, rest)) = words.split_first() else {
        return Err("empty command".into());
    };
    let arg = |i: usize| rest.get(i).copied();
    let no_more = |n: usize, c: Command| {
        if rest.len() > n && n == 0 {
            Err(format!(
                "`{cmd}` takes no arguments, got `{}`",
                rest.join(" ")
            ))
        } else if rest.len() > n {
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
        "freeze" => no_more(0, Command::Freeze),
        "thaw" => no_more(0, Command::Thaw),
        "timeout" => no_more(1, Command::Timeout(member(arg(0), cmd)?)),
        "heartbeat" => no_more(0, Command::Heartbeat),
        "drop-stale" => {
            let t = FaultTarget::parse(
                arg(0).ok_or_else(|| format!("`drop-stale` needs a target; {}", hint(cmd)))?,
            )?;
            no_more(1, Command::DropStale(t))
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
            (Some(name), None) if WorkloadKind::parse(name).is_some() => {
                Ok(Command::SetWorkloadKind(WorkloadKind::parse(name)))
            }
            (Some("rate"), Some(r)) => r
                .parse()
                .ok()
                .filter(|r| (1..=100_000).contains(r))
                .map(Command::WorkloadRate)
                .ok_or_else(|| format!("`{r}` is not a rate from 1 to 100000 writes/s")),
            _ => Err(
                "use `workload on`, `workload off`, `workload rate 500`, or a workload: `workload lin-kv`, \
                 `workload counter`, `workload lock`, `workload lock-fenced`, or for a Maelstrom node \
                 `workload echo`, `unique-ids`, `broadcast`, `g-counter`, `kafka`"
                    .into(),
            ),
        },
        "add" => match arg(0) {
            None => Ok(Command::Add),
            Some("--learner") => no_more(1, Command::AddLearner),
            Some(w) => Err(format!(
                "`add` takes only `--learner`, not `{w}`: `add` adds a voter, `add --learner` a learner"
            )),
        },
        "remove" => no_more(1, Command::Remove(member(arg(0), cmd)?)),
        "replace" => no_more(1, Command::Replace(member(arg(0), cmd)?)),
        "promote" => no_more(1, Command::Promote(member(arg(0), cmd)?)),
        "demote" => no_more(1, Command::Demote(member(arg(0), cmd)?)),
        "pause-client" | "slow-client" => {
            let (c, d) = client_fault(cmd, rest)?;
            Ok(if cmd == "pause-client" {
                Command::PauseClient(c, d)
            } else {
                Command::SlowClient(c, d)
            })
        }
        "powercut" => parse_powercut(rest).map(|(t, torn)| Command::PowerCut(t, torn)),
        "disk" => parse_disk(rest).map(|(t, a)| Command::Disk(t, a)),
        "clock" => parse_clock(rest).map(|(t, a)| Command::Clock(t, a)),
        "check" => no_more(0, Command::Check),
        "status" => no_more(0, Command::Status),
        "quit" | "exit" => no_more(0, Command::Quit),
        "help" | "?" => Err(HEADLESS_HELP.to_string()),
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
        let shape = PartitionShape::parse(&shape)?;
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
                FaultTarget::Shape(PartitionShape::Groups(vec![vec![1, 2], vec![3, 4, 5]])),
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
            Ok(Command::SetWorkloadKind(Some(WorkloadKind::LinKv)))
        );
        assert_eq!(
            parse("workload counter"),
            Ok(Command::SetWorkloadKind(Some(WorkloadKind::Counter)))
        );
        assert!(
            parse("workload linkv")
                .unwrap_err()
                .contains("workload lin-kv")
        );
        assert_eq!(parse("  quit "), Ok(Command::Quit));
        assert_eq!(
            parse("workload lock-fenced"),
            Ok(Command::SetWorkloadKind(Some(WorkloadKind::LockFenced)))
        );
        assert_eq!(
            parse("pause-client 1 3s"),
            Ok(Command::PauseClient(1, Duration::from_secs(3)))
        );
        assert_eq!(
            parse("slow-client 2 200ms"),
            Ok(Command::SlowClient(2, Duration::from_millis(200)))
        );
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
        // A bare `workload` toggled on whatever the cluster was doing, so a log or an export could not say
        // which it meant: the console asks for the state instead.
        assert!(
            parse("workload")
                .unwrap_err()
                .contains("use `workload on`, `workload off`")
        );
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
        assert!(
            parse("pause-client 1")
                .unwrap_err()
                .contains("needs a client and a duration")
        );
        assert!(
            parse("pause-client 0 3s")
                .unwrap_err()
                .contains("`0` is not a client number")
        );
        assert!(parse("slow-client 1 0").unwrap_err().contains("above zero"));
        assert!(
            parse("slow-client 1 soon")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse("step").unwrap_err().contains("needs a target"));
        assert!(parse("step * 0").unwrap_err().contains("number of frames"));
        assert!(parse("remove").unwrap_err().contains("needs a node id"));
        assert!(parse("remove leader").unwrap_err().contains("not `leader`"));
        assert!(parse("promote 0").unwrap_err().contains("not a node id"));
        assert!(
            parse("add 4")
                .unwrap_err()
                .contains("takes only `--learner`, not `4`")
        );
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
            "hold * only pre-vote,pre-vote-reply",
            "loss *->2 50% only heartbeat-reply,read-index",
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
            "pause-client 1 3s",
            "slow-client 2 500ms",
            "workload lock",
            "workload lock-fenced",
        ] {
            let cmd = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cmd.to_string(), line, "printed back");
            assert_eq!(parse(&cmd.to_string()), Ok(cmd), "{line}");
        }
    }

    /// The new user's report (tester-report-1, A5, C2, C7): each line is refused with a message naming
    /// what is wrong, never taken as something else.
    #[test]
    fn a_new_users_bad_lines_are_refused_naming_what_is_wrong() {
        let refused = |line: &str, says: &str| {
            let e = parse(line).expect_err(line);
            assert!(e.contains(says), "`{line}` → {e} (wanted `{says}`)");
        };
        // A5: a link from a node to itself, either way, alone or timed, and a partition naming a node twice.
        refused("cut 1<->1", "`1<->1` links a node to itself");
        refused("cut 2<->2 for 3s", "`2<->2` links a node to itself");
        refused("delay 3<->3 10ms", "links a node to itself");
        refused("partition 1,1|2", "node 1 is named twice");
        refused("partition 1,2|2,3", "node 2 is in two groups");
        // C7: argument checks.
        refused(
            "add --learnr",
            "`add` takes only `--learner`, not `--learnr`",
        );
        refused("disk 1 slow", "`disk N slow` needs a delay");
        refused("delay 1->2 10ms for 1s for 2s", "`for` is given twice");
        refused(
            "delay 1->2 10ms jitter 1ms jitter 2ms",
            "`jitter` is given twice",
        );
        refused("status extra", "`status` takes no arguments, got `extra`");
        // C2: too long is too long in every form.
        for line in [
            "clock 2 +8d",
            "clock 2 +1y",
            "clock 2 -8d",
            "cut 1->2 for 999999999999999999999999999999s",
            "cut 1->2 for 99999999d",
            "cut 1->2 for 8d",
            "delay 2 99999999999999999999999",
            "disk 1 slow 999999999999999999999999ms",
        ] {
            refused(line, "is too long, at most 7 days");
        }
        refused(
            "clock 2 +soon",
            "`+soon` is not a clock jump like +1h or -30s",
        );
        assert!(parse("clock 2 +7d").is_ok());
        assert!(parse("cut 1->2 for 168h").is_ok());
    }

    #[test]
    fn a_mistyped_kind_is_answered_with_the_running_kinds() {
        let paxos = crate::command::fault::PAXOS_LABELS;
        let e = parse_for("hold * only bogus", &paxos).unwrap_err();
        assert!(
            e.contains("`bogus`") && e.contains("prepare, promise, accept"),
            "{e}"
        );
        assert!(!e.contains("pre-vote") && !e.contains("etcd"), "{e}");
        // With a bogus kind beside another node kind's, the first the cluster does not label is named.
        let e = parse_for("loss * 50% only vote,bogus", &paxos).unwrap_err();
        assert!(e.contains("`vote`") && e.contains("catch-up"), "{e}");
        // Good lines and other errors are the parser's.
        assert_eq!(
            parse_for("hold * only prepare", &paxos),
            parse("hold * only prepare")
        );
        assert_eq!(parse_for("cut 1->", &paxos), parse("cut 1->"));
        // No labels: every kind's list, as before.
        assert_eq!(
            parse_for("hold * only bogus", &[]),
            parse("hold * only bogus")
        );
    }
}
