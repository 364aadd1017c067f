//! The run loop of `squall run`: planned steps performed at their times, undone when their `until` comes, the
//! final heal, liveness sampled throughout, then the checks.

use std::time::Duration;

use super::compare::{Failover, Measures};
use super::say::{fmt_ms, say_no_op, say_outcome};
use super::verdict::{Finding, judge};
use crate::check::liveness::{Excused, Liveness, Sample};
use crate::cluster::guard::Proc;
use crate::cluster::{Cluster, NOTHING_TO_HEAL, Outcome};
use crate::command::{ClockAction, Command, DiskAction, Effect, PowerTarget, Target};
use crate::scenario::Plan;
use crate::session::{ConsoleFeed, SessionConfig, end_session, start_session};
use crate::state::{ClusterState, ProcessState};

/// Something the run will do at a time.
enum Due {
    /// A step of the plan: its line, when to undo it (if ever), and whether the timeline (not the nemesis)
    /// asked for it.
    Step(Command, Option<Duration>, bool),
    /// Undo an earlier step.
    Undo(Command, String),
}

/// Whether the cluster is healthy for liveness: every member node running (a node removed from the
/// configuration is stopped on purpose) and no fault in force other than those stopped removed nodes.
fn healthy(s: &ClusterState) -> bool {
    let removed = |id: u64| s.membership(id) == Some(crate::state::MemberRole::Removed);
    s.faults.iter().all(|f| {
        s.nodes
            .keys()
            .any(|id| removed(*id) && f.starts_with(&format!("n{id} ")))
    }) && !s.nodes.is_empty()
        && s.nodes
            .values()
            .all(|n| removed(n.id) || matches!(n.process, ProcessState::Running { .. }))
}

/// The nodes that lost data (wiped, a damaged WAL tail cut) and are recovering, one line each with what
/// they wait for, as the liveness evidence names them (issue 18, F15); first, when they are a majority of the
/// members, that nothing can commit until they recover. Empty when none is recovering.
fn data_loss(s: &ClusterState) -> Vec<String> {
    let removed = |id: u64| s.membership(id) == Some(crate::state::MemberRole::Removed);
    let members = s.nodes.keys().filter(|id| !removed(**id)).count();
    let mut lines: Vec<String> = s
        .nodes
        .values()
        .filter(|n| n.process.is_alive())
        .filter_map(|n| {
            let st = n.status.as_ref().filter(|st| st.recovering)?;
            Some(match &st.recovery_wait {
                Some(wait) => format!("n{} lost data and is recovering: {wait}", n.id),
                None => format!("n{} lost data and is recovering", n.id),
            })
        })
        .collect();
    if !lines.is_empty() && lines.len() * 2 > members {
        lines.insert(
            0,
            format!(
                "{} of {members} members lost data, a majority: none can vote until they recover",
                lines.len()
            ),
        );
    }
    lines
}

/// Whether every member node runs and every link between running nodes passes traffic, at most delayed:
/// what the livelock judgement takes as "no quorum is missing" ([`Sample::connected`]).
fn connected(s: &ClusterState) -> bool {
    let removed = |id: u64| s.membership(id) == Some(crate::state::MemberRole::Removed);
    let running = |id: u64| {
        s.nodes
            .get(&id)
            .is_some_and(|n| matches!(n.process, ProcessState::Running { .. }))
    };
    !s.nodes.is_empty()
        && s.nodes.keys().all(|id| removed(*id) || running(*id))
        && s.links
            .iter()
            .filter(|l| running(l.from) && running(l.to))
            .all(|l| {
                matches!(
                    l.state,
                    crate::state::LinkState::Ok | crate::state::LinkState::Delayed(_)
                )
            })
}

/// Whether a command is a fault whose failover the side-by-side table measures (not a heal, restart, resume
/// or a command to the workload).
fn is_fault(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Kill(_)
            | Command::Terminate(_)
            | Command::Pause(_)
            | Command::Fault(_)
            | Command::PowerCut(..)
            | Command::Disk(..)
            | Command::Clock(..)
            | Command::Wipe(_)
    )
}

/// Runs a plan's session to its findings and figures. `Err`: the session did not start (the message for a
/// person; exit code 2).
pub(super) async fn execute(
    plan: &Plan,
    config: SessionConfig,
    cast: Option<crate::record::asciicast::CastWriter>,
) -> Result<(Vec<Finding>, Measures), String> {
    let s = &plan.scenario;
    let (cluster, mut session, mut rx) = start_session(config).await?;
    let mut failover = Failover::default();
    let mut acknowledged_writes = 0u64;
    let mut feed = ConsoleFeed::new();
    feed.out.cast = cast;
    session.apply(crate::state::Stamped::new(
        cluster.now_ms(),
        crate::state::Event::RunPlanned {
            duration_ms: s.duration.as_millis() as u64,
            recovery_ms: s.recovery.as_millis() as u64,
            final_heal: s.final_heal,
        },
    ));
    let mut due: Vec<(Duration, Due)> = plan
        .steps
        .iter()
        .map(|st| (st.at, Due::Step(st.command.clone(), st.until, st.line != 0)))
        .collect();
    // Timeline steps that could not be performed, and nemesis ones (which, as in Jepsen, may fail without
    // making the run unknown: the nemesis asked for something the cluster's state did not allow).
    let mut refused: Vec<String> = Vec::new();
    let mut nemesis_refused: Vec<String> = Vec::new();
    let fault_end = s.duration;
    let end = s.duration + s.recovery;
    let mut liveness = Liveness::new(
        s.checks.liveness_bound,
        s.beyond_tolerance
            .iter()
            .map(|w| Excused {
                from: w.from,
                to: w.to,
            })
            .collect(),
    );
    let mut catch_up = super::churn::CatchUpCheck::new(s.cluster.snapshot_every, s.workload.rate);
    let mut healed = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupted: Option<String> = None;
    loop {
        let now = Duration::from_millis(cluster.now_ms());
        if now >= end {
            break;
        }
        // The run's record cannot be written, or its output fails other than by its reader going away (a
        // closed pipe: the run goes on, its bundle is its result): the run stops, `unknown`, saying why
        // (issue 24, tester9 finding 6).
        let output = match feed.out.failed.take() {
            // Kept: nothing more is written to a pipe its reader closed.
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                feed.out.failed = Some(e);
                None
            }
            e => e.and_then(crate::session::Broken::output),
        };
        let broken = session.record_failure().or(output);
        if let Some(broken) = broken {
            crate::session::eprintln_quiet(&format!(
                "squall: error: {broken}: stopping every node; the run's verdict is unknown"
            ));
            interrupted = Some(broken.to_string());
            break;
        }
        // Everything due now, in order.
        due.sort_by_key(|(at, _)| *at);
        while due.first().is_some_and(|(at, _)| *at <= now) {
            let (at, d) = due.remove(0);
            match d {
                Due::Step(line, until, from_timeline) => {
                    let into = if from_timeline {
                        &mut refused
                    } else {
                        &mut nemesis_refused
                    };
                    let fault = is_fault(&line);
                    let (leader, commit) = (session.state.leader, session.state.commit_high);
                    let before = into.len();
                    if let Some(undo) =
                        perform_step(&cluster, &mut feed, line, until, at, now, into).await
                    {
                        due.push(undo);
                    }
                    if fault && into.len() == before {
                        failover.fault(now, leader, commit);
                    }
                }
                Due::Undo(cmd, what) => {
                    let shown = format!("{cmd} (ends {what})");
                    let outcome = cluster.perform(cmd.clone()).await;
                    say_outcome(&mut feed, &cluster, &shown, &outcome);
                    if !matches!(outcome, Outcome::Refused(_)) {
                        liveness.fault_ended(Duration::from_millis(cluster.now_ms()), what);
                    } else {
                        // The fault did not end (a node that refused to restart stays down): the step
                        // was not performed, and no recovery from it is measured (tester2 item 0).
                        refused.push(failed_step(&shown, now, &outcome));
                    }
                }
            }
        }
        if !healed && now >= fault_end {
            healed = true;
            session.apply(crate::state::Stamped::new(
                cluster.now_ms(),
                crate::state::Event::FaultPhaseEnded,
            ));
            // The final heal undoes whatever is still in force.
            due.clear();
            if s.final_heal {
                let (failed, ended) = final_heal(&cluster, &mut feed, &session.state, now).await;
                refused.extend(failed);
                // A final heal that ended nothing is nothing to recover from (tester7: `recovery 28ms
                // (final heal, worst of 2)` beside `heal (final) → no-op: nothing to heal`).
                let at = Duration::from_millis(cluster.now_ms());
                if ended {
                    liveness.fault_ended(at, "final heal");
                } else {
                    liveness.nothing_to_heal(at);
                }
            }
        }
        let next = due
            .iter()
            .map(|(at, _)| *at)
            .chain([if healed { end } else { fault_end }])
            .min()
            .unwrap_or(end);
        let wait = next.saturating_sub(Duration::from_millis(cluster.now_ms()));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { interrupted = Some("interrupted".into()); break; }
            _ = tokio::time::sleep(wait) => {}
            _ = tick.tick() => {
                let now_ms = cluster.now_ms();
                feed.release(now_ms);
                let st = &session.state;
                liveness.set_paxos(st.paxos);
                liveness.note_data_loss(data_loss(st));
                liveness.observe(sample(s, st, Duration::from_millis(now_ms), healed));
                if healed {
                    catch_up.observe_recovery(st);
                }
                failover.observe(Duration::from_millis(now_ms), st.leader, st.commit_high);
            }
            Some(e) = rx.recv() => {
                catch_up.on_event(Duration::from_millis(e.at_ms), &e.event);
                if let crate::state::Event::Op { op } = &e.event
                    && op.kind == crate::check::OpType::Ok
                    && op.f() != crate::check::OpF::Read
                {
                    acknowledged_writes += 1;
                }
                let at = Duration::from_millis(e.at_ms);
                // Recoveries are timed by the events themselves, not by the tick that next sees them: a
                // fault's `Performed` time, a fault set's expiry or heal, the status that shows a new leader.
                match &e.event {
                    crate::state::Event::Performed { command, .. } if is_fault(command) => {
                        liveness.fault_performed(at);
                    }
                    // A fault of the timeline or the nemesis ending by itself (`until`, `for`) or by a `heal`
                    // step; the final heal's are measured as "final heal" (below), and a fault replaced by
                    // the same one again did not end.
                    crate::state::Event::FaultEnded { fault, why, .. }
                        if !healed && *why != crate::state::FaultEnd::Replaced =>
                    {
                        let mut f = fault.clone();
                        f.duration = None;
                        liveness.fault_ended(at, f.to_string());
                    }
                    // Squall cannot see a host's nodes while it is unreachable (or lost): a liveness failure
                    // then is unknown, not the cluster's (issue 24, tester10 finding 1).
                    crate::state::Event::Host { host, nodes, change } => match change {
                        crate::state::HostChange::Unreachable { .. }
                        | crate::state::HostChange::Lost { .. } => {
                            liveness.host_unreachable(at, host, nodes);
                        }
                        crate::state::HostChange::Back { .. } => liveness.host_back(at, host),
                        _ => {}
                    },
                    _ => {}
                }
                feed.on_event(&mut session, e, cluster.now_ms());
                liveness.event(&sample(s, &session.state, at, healed));
                failover.observe(at, session.state.leader, session.state.commit_high);
            }
        }
    }
    let mut findings = Vec::new();
    if let Some(why) = interrupted {
        feed.flush();
        findings.push(Finding {
            check: "run",
            verdict: "unknown",
            evidence: format!("{why} before the checks ran"),
        });
    } else {
        liveness.finish(Duration::from_millis(cluster.now_ms()));
        findings.extend(judge(plan, &cluster, &mut feed, &mut session, &liveness).await);
        if s.checks.liveness {
            findings.push(super::churn::finding(&catch_up));
        }
        findings.push(Finding {
            check: "steps",
            verdict: if refused.is_empty() {
                "valid"
            } else {
                "unknown"
            },
            evidence: if refused.is_empty() {
                let extra = if nemesis_refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} nemesis step(s) not possible then: {}",
                        nemesis_refused.len(),
                        nemesis_refused.join("; ")
                    )
                };
                format!("every timeline step was performed{extra}")
            } else {
                format!(
                    "not the run planned: {} (the checks judged a run without them)",
                    refused.join("; ")
                )
            },
        });
    }
    feed.flush();
    if let Some(cast) = feed.out.cast.take() {
        // The recording ends with the verdict table (standard output prints it after the bundle is written).
        for f in &findings {
            cast.output(format!(
                "{:<14} {:<8} {}\r\n",
                f.check, f.verdict, f.evidence
            ));
        }
        let _ = cast.finish();
    }
    // The verdict table goes into the event log, so the bundle's report shows the verdict the run printed.
    let at = cluster.now_ms();
    for f in &findings {
        session.apply(crate::state::Stamped::new(
            at,
            crate::state::Event::Judged {
                check: f.check.to_string(),
                verdict: match f.verdict {
                    "valid" => crate::state::Verdict::Ok,
                    "invalid" => crate::state::Verdict::Violated,
                    _ => crate::state::Verdict::Inconclusive,
                },
                evidence: f.evidence.clone(),
            },
        ));
    }
    let measures = Measures {
        failovers: failover.measured().to_vec(),
        recoveries: liveness
            .recoveries()
            .iter()
            .filter(|r| r.what.ends_with(" ended"))
            .map(|r| (r.what.trim_end_matches(" ended").to_string(), r.took()))
            .collect(),
        writes: if s.workload.kind == crate::scenario::WorkloadKind::LinKv {
            acknowledged_writes
        } else {
            session.state.workload.ok
        },
        seconds: cluster.now_ms() as f64 / 1000.0,
        messages: session.state.links.iter().map(|l| l.frames).sum(),
    };
    end_session(&cluster, &mut session, &mut rx).await;
    Ok((findings, measures))
}

/// The cluster as `st` shows it at `at`, for the liveness check. After the fault phase (`healed`) the cluster
/// owes progress whatever state it was left in (with `final-heal = false` it may have been left without a
/// majority): Jepsen's "after the final heal, the system must recover".
fn sample(s: &crate::scenario::Scenario, st: &ClusterState, at: Duration, healed: bool) -> Sample {
    Sample {
        at,
        healthy: healthy(st) || healed,
        leader: st.leader,
        commit_index: st.commit_high,
        asked: st.workload.on && st.workload.rate > 0,
        served: st.workload.ok,
        reports_leader: super::verdict::reports_leader(s.cluster.maelstrom.is_some(), st),
        term: st.term,
        leadership: st.leadership(),
        connected: connected(st),
        rate: if st.workload.on { st.workload.rate } else { 0 },
    }
}

/// A step's command with its `until` (run time) made a `for`: the span the plan gives it, `until` less the
/// step's planned time `at`, so the fault set removes it itself. Not `until` less the time it was performed:
/// that is a measurement, and the feed said `for 4998ms` for the plan's 5 s (fixes3 item 5).
fn timed(cmd: Command, until: Option<Duration>, at: Duration) -> Command {
    match (cmd, until) {
        (Command::Fault(mut f), Some(u)) if f.duration.is_none() => {
            f.duration = Some(u.saturating_sub(at));
            Command::Fault(f)
        }
        (c, _) => c,
    }
}

/// Performs one planned step (due at `at`, performed at `now`); returns its undo when it has `until`. A step
/// that could not be performed is added to `refused` (with why), so the verdict says the run was not the one
/// planned.
async fn perform_step(
    cluster: &Cluster,
    feed: &mut ConsoleFeed,
    cmd: Command,
    until: Option<Duration>,
    at: Duration,
    now: Duration,
    refused: &mut Vec<String>,
) -> Option<(Duration, Due)> {
    let cmd = timed(cmd, until, at);
    let shown = cmd.to_string();
    let plain_heal = cmd == Command::Heal(None);
    if plain_heal && cluster.faults_in_force().is_empty() {
        // Not performed, as the final heal (F3): performed, its refusal reached the feed as `heal failed`.
        say_no_op(feed, cluster, &shown, NOTHING_TO_HEAL);
        return None;
    }
    let outcome = cluster.perform(cmd).await;
    match &outcome {
        // A plain `heal` is refused only when nothing is in force. In a scenario that is a no-op line, not a
        // step that failed: the timeline is planned before the run, and whether a `for`, an `until` or a
        // nemesis fault has already ended when the `heal` comes is a matter of timing; what the line asks
        // for, no fault from here on, holds either way (README, "Scenarios").
        Outcome::Refused(why) if plain_heal => say_no_op(feed, cluster, &shown, why),
        Outcome::Refused(_) => {
            say_outcome(feed, cluster, &shown, &outcome);
            refused.push(failed_step(&shown, now, &outcome));
        }
        _ => say_outcome(feed, cluster, &shown, &outcome),
    }
    let undo = undo_of(outcome.effect()?)?;
    Some((until?, Due::Undo(undo, shown)))
}

/// The command that undoes a done step, aimed at the node its effect says it hit (a `kill leader` is undone
/// by restarting the node that led then, not whoever leads when the undo comes); `None` for steps with no
/// undo (a network fault ends by itself; `powercut all` waits for the final heal).
fn undo_of(effect: &Effect) -> Option<Command> {
    let hit = Target::Node(effect.node?);
    Some(match &effect.command {
        Command::Kill(_) | Command::Terminate(_) | Command::PowerCut(PowerTarget::One(_), _) => {
            Command::Restart(hit)
        }
        Command::Pause(_) => Command::Resume(hit),
        // A flipped bit is a change to the data, not a fault in force: there is nothing to heal.
        Command::Disk(_, DiskAction::Flip { .. }) => return None,
        Command::Disk(..) => Command::Disk(hit, DiskAction::Heal),
        Command::Clock(..) => Command::Clock(hit, ClockAction::Heal),
        _ => return None,
    })
}

/// The `steps` evidence of a step that was not performed: the step, when, and the first line of why (a
/// refused restart's answer carries its node's log, which belongs in the feed, not in the verdict table).
fn failed_step(shown: &str, at: Duration, outcome: &Outcome) -> String {
    let why = match outcome {
        Outcome::Refused(why) => why.lines().next().unwrap_or_default().to_string(),
        other => other.console_lines().join(" "),
    };
    format!("`{shown}` at {}: {why}", fmt_ms(at))
}

/// Heals every network fault and brings every node back: paused ones resumed, stopped ones restarted.
/// Returns the steps that failed (a node that refused to restart stays down: the heal was not complete), and
/// whether it ended anything (a fault, frozen timers, a node down or paused): one that found all well is no
/// fault end to time a recovery from.
async fn final_heal(
    cluster: &Cluster,
    feed: &mut ConsoleFeed,
    state: &ClusterState,
    now: Duration,
) -> (Vec<String>, bool) {
    let mut failed = Vec::new();
    let mut ended = false;
    if cluster.faults_in_force().is_empty() {
        // Nothing is in force: the final heal has nothing to end, and is not performed (performed, its
        // refusal went to the feed as `heal failed: …`, a failure that never was: F3).
        say_no_op(feed, cluster, "heal (final)", NOTHING_TO_HEAL);
    } else {
        match cluster.perform(Command::Heal(None)).await {
            // A fault ended by itself a moment before: the heal found nothing left (see `perform_step`).
            Outcome::Refused(why) => say_no_op(feed, cluster, "heal (final)", &why),
            heal => {
                ended = true;
                say_outcome(feed, cluster, "heal (final)", &heal);
            }
        }
    }
    // Teaching mode's frozen timers are squall's doing, not the nodes': the heal ends them too, or a run that
    // froze the nodes would be judged on elections squall itself stopped (tester3 finding 2).
    if cluster.frozen() {
        let thaw = cluster.perform(Command::Thaw).await;
        say_outcome(feed, cluster, "thaw (final)", &thaw);
        if matches!(thaw, Outcome::Refused(_)) {
            failed.push(failed_step("thaw (final)", now, &thaw));
        } else {
            ended = true;
        }
    }
    for id in state.nodes.keys() {
        // Stopped on purpose: it is no longer a member. The cluster's roster says so for every kind; the
        // state only learns it from a status that carries a configuration, which an etcd member's does not
        // (the final heal restarted a removed etcd member, and etcd refused to start it).
        if cluster.is_removed(*id)
            || state.membership(*id) == Some(crate::state::MemberRole::Removed)
        {
            continue;
        }
        // The supervisor's word, not the state's: a nemesis `resume` or `restart` performed a moment before
        // may not have reached the state yet, and acting on the stale picture would refuse a resume of a
        // running node and call the run not the one planned (churn, seed 1938032438).
        let cmd = match cluster.process(*id) {
            Proc::Paused => Command::Resume(Target::Node(*id)),
            Proc::Running | Proc::Restarting => continue,
            Proc::Down { .. } => Command::Restart(Target::Node(*id)),
        };
        let shown = format!("{cmd} (final)");
        let outcome = cluster.perform(cmd).await;
        say_outcome(feed, cluster, &shown, &outcome);
        if matches!(outcome, Outcome::Refused(_)) {
            failed.push(failed_step(&shown, now, &outcome));
        } else {
            ended = true;
        }
    }
    (failed, ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fixes3 item 5: a step `at 1s until 6s` performed 2 ms late said `cut 1 for 4998ms`; it is the plan's
    /// `for 5s`. Other commands and a fault with its own `for` are left as they are.
    #[test]
    fn a_step_s_until_becomes_the_plan_s_span_not_a_measured_remainder() {
        let cut = crate::command::parse("cut 1").unwrap();
        let s = Duration::from_secs;
        assert_eq!(
            timed(cut.clone(), Some(s(6)), s(1)).to_string(),
            "isolate 1 for 5s"
        );
        let own = crate::command::parse("cut 1 for 2s").unwrap();
        assert_eq!(timed(own, Some(s(6)), s(1)).to_string(), "isolate 1 for 2s");
        let kill = crate::command::parse("kill 1").unwrap();
        assert_eq!(timed(kill.clone(), Some(s(6)), s(1)), kill);
        assert_eq!(timed(cut.clone(), None, s(1)), cut);
    }

    #[test]
    fn an_undo_aims_at_the_node_the_effect_hit() {
        // `kill leader` performed on node 2: the undo restarts node 2, whoever leads when it comes.
        let killed = Effect::new(
            Command::Kill(Target::Leader),
            Some(2),
            "kill node 2 (leader, term 4)",
        );
        assert_eq!(undo_of(&killed), Some(Command::Restart(Target::Node(2))));
        let paused = Effect::new(Command::Pause(Target::Leader), Some(3), "pause node 3");
        assert_eq!(undo_of(&paused), Some(Command::Resume(Target::Node(3))));
        let cut = Effect::new(
            Command::PowerCut(PowerTarget::One(Target::Leader), None),
            Some(1),
            "power cut",
        );
        assert_eq!(undo_of(&cut), Some(Command::Restart(Target::Node(1))));
        let disk = Effect::new(
            Command::Disk(Target::Leader, DiskAction::Stall),
            Some(1),
            "stall",
        );
        assert_eq!(
            undo_of(&disk),
            Some(Command::Disk(Target::Node(1), DiskAction::Heal))
        );
        // Nothing to undo by hand: all nodes down until the final heal; a node the effect does not name.
        let all = Effect::new(Command::PowerCut(PowerTarget::All, None), None, "power cut");
        assert_eq!(undo_of(&all), None);
        let heal = Effect::new(Command::Heal(None), None, "heal");
        assert_eq!(undo_of(&heal), None);
        // A flip leaves no fault in force: a `disk 1 heal` after it would be refused as nothing to heal.
        let flip = Effect::new(
            crate::command::parse("disk 1 flip wal.log").unwrap(),
            Some(1),
            "corrupt",
        );
        assert_eq!(undo_of(&flip), None);
    }
}
