//! `squall run FILE.toml`: runs a scenario to a verdict against a real cluster, headless. It prints every
//! setting the seed expanded into, one line per event as `up --headless` does, then a verdict table; it
//! writes a bundle (the scenario, the event log, the history, the HTML report, `repro.sh`) and exits by the
//! verdict: 0 valid, 1 invalid, 2 could not run, 3 unknown (Jepsen's `true / false / :unknown`).
//!
//! The run's phases: the workload starts; timeline and nemesis steps are performed at their times (a step
//! with `until` is undone then: a fault gets that duration, a killed node is restarted, a paused one resumed);
//! at the end of the fault phase everything is healed and every node brought back; after the recovery period
//! the checks run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;

use super::{Plan, Scenario, WorkloadKind, fmt_duration, parse_scenario};
use crate::app::{ConsoleFeed, end_session, start_session};
use crate::check::liveness::{Excused, Liveness, Sample};
use crate::cli::{Cli, Command as CliCommand};
use crate::cluster::command::{self, Command, NodeId, Target};
use crate::cluster::fault::FaultTarget;
use crate::cluster::{Cluster, Outcome};
use crate::setup::fail;
use crate::state::{ClusterState, ProcessState, Verdict};

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
    /// Where to write the bundle (default: `squall-run-NAME-SEED` in the current directory; never an
    /// existing non-empty directory: `-2`, `-3`, … is appended).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.05 && *f <= 20.0)
        .ok_or_else(|| format!("`{s}` is not a scale from 0.05 to 20 (e.g. 0.5)"))
}

/// One check's result in the verdict table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The check ("counter", "linearizable", "invariants", "liveness").
    pub check: &'static str,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    /// The evidence in words.
    pub evidence: String,
}

/// The verdict of several findings: invalid if any is, else unknown if any is, else valid.
pub fn overall(findings: &[Finding]) -> &'static str {
    if findings.iter().any(|f| f.verdict == "invalid") {
        "invalid"
    } else if findings.iter().any(|f| f.verdict == "unknown") {
        "unknown"
    } else {
        "valid"
    }
}

/// The exit code of a verdict.
pub fn exit_code(verdict: &str) -> u8 {
    match verdict {
        "valid" => 0,
        "invalid" => 1,
        _ => 3,
    }
}

/// The nodes a command names (to refuse a scenario that names a node the cluster does not have).
pub fn nodes_named(cmd: &Command) -> Vec<NodeId> {
    fn t(t: &Target) -> Vec<NodeId> {
        match t {
            Target::Node(n) => vec![*n],
            Target::Leader => vec![],
        }
    }
    fn ft(f: &FaultTarget) -> Vec<NodeId> {
        match f {
            FaultTarget::Node(x) | FaultTarget::From(x) | FaultTarget::To(x) => t(x),
            FaultTarget::Link(a, b) | FaultTarget::Both(a, b) => vec![*a, *b],
            FaultTarget::All => vec![],
            FaultTarget::Shape(s) => s
                .split(['|', ','])
                .filter_map(|w| w.trim().parse().ok())
                .collect(),
        }
    }
    match cmd {
        Command::Kill(x)
        | Command::Terminate(x)
        | Command::Pause(x)
        | Command::Resume(x)
        | Command::TogglePause(x)
        | Command::Restart(x)
        | Command::Wipe(x)
        | Command::CycleDelay(x)
        | Command::CycleLoss(x)
        | Command::Transfer(x)
        | Command::Disk(x, _)
        | Command::Clock(x, _) => t(x),
        Command::PowerCut(crate::cluster::disk::PowerTarget::One(x), _) => t(x),
        Command::Fault(f) | Command::ToggleFault(f) => ft(&f.target),
        Command::Step(f, _) | Command::DropHeld(f, _) | Command::Release(f) => ft(f),
        Command::Remove(n) | Command::Replace(n) | Command::Promote(n) | Command::Demote(n) => {
            vec![*n]
        }
        _ => vec![],
    }
}

/// Whether a step with `until` can be undone: a fault without its own duration, a kill, terminate, pause or
/// power cut of one node (restarted or resumed), or a disk or clock fault (healed on that node).
fn undoable(cmd: &Command) -> bool {
    match cmd {
        Command::Fault(f) => f.duration.is_none(),
        Command::Kill(_) | Command::Terminate(_) | Command::Pause(_) => true,
        Command::PowerCut(crate::cluster::disk::PowerTarget::One(_), _) => true,
        Command::Disk(..) | Command::Clock(..) => true,
        _ => false,
    }
}

/// Checks one timeline line against the headless vocabulary and a cluster of `nodes` nodes.
pub fn validate_line(line: &str, nodes: u64) -> Result<(), String> {
    let cmd = command::parse(line)?;
    if matches!(cmd, Command::Quit) {
        return Err("`quit` ends a console session; a scenario ends after its duration".into());
    }
    for n in nodes_named(&cmd) {
        if n == 0 || n > nodes {
            return Err(format!(
                "there is no node {n} at this step: the cluster can have nodes 1 to {nodes} by then (its nodes plus one per earlier `add` or `replace`)"
            ));
        }
    }
    Ok(())
}

/// Reads and validates a scenario file; `Err` is the message for a person.
pub fn load(file: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read scenario {}: {e}", file.display()))?;
    let scenario = parse_scenario(file, &text, &validate_line).map_err(|e| e.to_string())?;
    let needs_disk = |cmd: &Command| {
        matches!(
            cmd,
            Command::PowerCut(..) | Command::Disk(..) | Command::Clock(..)
        )
    };
    if !scenario.cluster.disk_faults {
        for s in &scenario.timeline {
            if needs_disk(&command::parse(&s.command)?) {
                return Err(format!(
                    "{}:{}: `{}` needs the fault filesystem: add `disk-faults = true` under [cluster]",
                    file.display(),
                    s.line,
                    s.command
                ));
            }
        }
        if let Some(n) = &scenario.nemesis
            && let Some(k) = n
                .kinds
                .iter()
                .find(|k| matches!(k, super::NemesisKind::Powercut | super::NemesisKind::Clock))
        {
            return Err(format!(
                "{}: nemesis kind \"{k}\" needs the fault filesystem: add `disk-faults = true` under [cluster]",
                file.display()
            ));
        }
    }
    for s in &scenario.timeline {
        if s.until.is_some() {
            let cmd = command::parse(&s.command)?;
            if !undoable(&cmd) {
                return Err(format!(
                    "{}:{}: `{}` cannot be undone: `until` takes a fault (cut, delay, loss, partition, …) \
                     without its own `for`, a kill, terminate, pause or power cut of one node, or a disk or \
                     clock fault",
                    file.display(),
                    s.line,
                    s.command
                ));
            }
        }
    }
    Ok(scenario)
}

/// `squall run`.
pub fn run(args: RunArgs) -> ExitCode {
    let scenario = match load(&args.file) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    let seed = args
        .seed
        .or(scenario.cluster.seed)
        .unwrap_or_else(rand::random);
    let scenario = if args.scale == 1.0 {
        scenario
    } else {
        scenario.scaled(args.scale)
    };
    let plan = scenario.plan(seed);
    if args.dry_run {
        print!("{}", plan.describe());
        return ExitCode::SUCCESS;
    }
    let out = match bundle_dir(&args, &scenario.name, seed) {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = write_bundle_start(&args, &out, seed) {
        return fail(2, e);
    }
    println!("squall run: {} → {}", args.file.display(), out.display());
    print!("{}", plan.describe());
    let up = match up_args(&plan, &out) {
        Ok(a) => a,
        Err(e) => return fail(2, e),
    };
    let mut spec = match crate::setup::cluster_spec(&up, out.join("cluster"), seed) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    spec.node_prefix_args
        .extend(plan.scenario.cluster.node_args.iter().map(Into::into));
    let cast = if args.record {
        match crate::record::asciicast::CastWriter::create(
            out.join("run.cast"),
            120,
            40,
            &format!("squall run {}", plan.scenario.name),
        ) {
            Ok(c) => Some(c),
            Err(e) => return fail(2, format!("--record: {e}")),
        }
    } else {
        None
    };
    let findings = match crate::setup::runtime().block_on(execute(&plan, &up, spec, cast)) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let verdict = overall(&findings);
    finish_bundle(&out, plan.scenario.workload.kind);
    println!();
    println!("{:<14} {:<8} evidence", "check", "verdict");
    for f in &findings {
        println!("{:<14} {:<8} {}", f.check, f.verdict, f.evidence);
    }
    println!(
        "verdict: {verdict} (expected {}{})",
        plan.scenario.expect,
        if verdict == plan.scenario.expect.to_string() {
            ""
        } else {
            ": NOT AS EXPECTED"
        }
    );
    println!(
        "bundle: {} (rerun: sh {}/repro.sh)",
        out.display(),
        out.display()
    );
    ExitCode::from(exit_code(verdict))
}

fn bundle_dir(args: &RunArgs, name: &str, seed: u64) -> Result<PathBuf, String> {
    let base = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("squall-run-{name}-{seed}")));
    let empty = |p: &Path| {
        !p.exists()
            || (p.is_dir()
                && std::fs::read_dir(p)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false))
    };
    let mut dir = base.clone();
    let mut n = 2;
    while !empty(&dir) {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("--out {}: cannot create it: {e}", dir.display()))?;
    Ok(dir)
}

/// Copies the scenario into the bundle and writes `repro.sh`, the one command that reruns it.
fn write_bundle_start(args: &RunArgs, out: &Path, seed: u64) -> Result<(), String> {
    let copy = out.join("scenario.toml");
    std::fs::copy(&args.file, &copy).map_err(|e| {
        format!(
            "cannot copy {} into {}: {e}",
            args.file.display(),
            out.display()
        )
    })?;
    let squall = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "squall".into());
    let record = if args.record { " --record" } else { "" };
    let record = if args.scale == 1.0 {
        record.to_string()
    } else {
        format!("{record} --scale {}", args.scale)
    };
    let script = format!(
        "#!/bin/sh\n# Reruns this scenario with the same seed: the same settings, the same faults at the same times.\n\
         # ({squall} is the squall that ran it; `squall` on the PATH works too.)\n\
         cd \"$(dirname \"$0\")\" && exec {squall} run scenario.toml --seed {seed}{record} --out repro \"$@\"\n"
    );
    let path = out.join("repro.sh");
    std::fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    Ok(())
}

/// The history and the report, written from the event log after the run.
fn finish_bundle(out: &Path, kind: WorkloadKind) {
    let log = out.join("events.jsonl.gz");
    if kind == WorkloadKind::LinKv
        && let Ok(events) = crate::histories::history_of_log(&log)
    {
        let _ = std::fs::write(
            out.join("history.jsonl"),
            crate::check::format::to_jsonl(&events),
        );
    }
    let _ = crate::report::report(crate::cli::ReportArgs {
        log,
        output: out.join("report.html"),
        timeout: Duration::from_secs(60),
    });
}

/// `up`'s flags for the plan, parsed as a person would type them (so every default `up` has applies).
fn up_args(plan: &Plan, out: &Path) -> Result<crate::cli::UpArgs, String> {
    let s = &plan.scenario;
    let c = &s.cluster;
    let mut argv: Vec<String> = vec![
        "squall".into(),
        "up".into(),
        "--headless".into(),
        "-n".into(),
        c.nodes.to_string(),
        "--election-timeout".into(),
        format!(
            "{}..{}",
            fmt_duration(c.election_timeout.0),
            fmt_duration(c.election_timeout.1)
        ),
        "--heartbeat".into(),
        fmt_duration(c.heartbeat),
        "--snapshot-every".into(),
        c.snapshot_every.to_string(),
        "--seed".into(),
        plan.seed.to_string(),
        "--dir".into(),
        out.join("cluster").display().to_string(),
        "--events".into(),
        out.join("events.jsonl.gz").display().to_string(),
        "--rate".into(),
        s.workload.rate.to_string(),
    ];
    match s.workload.kind {
        WorkloadKind::Counter => argv.extend(["--workload".into(), "counter".into()]),
        WorkloadKind::LinKv => argv.extend(["--workload".into(), "lin-kv".into()]),
        WorkloadKind::None => {}
    }
    if let Some(b) = &c.node_bin {
        argv.extend(["--node-bin".into(), b.display().to_string()]);
    }
    if c.disk_faults {
        argv.push("--disk-faults".into());
    }
    match Cli::try_parse_from(&argv) {
        Ok(Cli {
            command: CliCommand::Up(a),
            ..
        }) => Ok(a),
        Ok(_) => Err("internal: not an `up` command".into()),
        Err(e) => Err(format!("the scenario's settings are refused: {e}")),
    }
}

/// Something the run will do at a time.
enum Due {
    /// A step of the plan: its line, when to undo it (if ever), and whether the timeline (not the nemesis)
    /// asked for it.
    Step(String, Option<Duration>, bool),
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

async fn execute(
    plan: &Plan,
    up: &crate::cli::UpArgs,
    spec: crate::cluster::ClusterSpec,
    cast: Option<crate::record::asciicast::CastWriter>,
) -> Result<Vec<Finding>, ExitCode> {
    let s = &plan.scenario;
    let (cluster, mut session, mut rx) = start_session(up, spec).await?;
    let mut feed = ConsoleFeed::new();
    feed.out.cast = cast;
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
    let mut healed = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupted = None;
    loop {
        let now = Duration::from_millis(cluster.now_ms());
        if now >= end {
            break;
        }
        // Everything due now, in order.
        due.sort_by_key(|(at, _)| *at);
        while due.first().is_some_and(|(at, _)| *at <= now) {
            let (_, d) = due.remove(0);
            match d {
                Due::Step(line, until, from_timeline) => {
                    let into = if from_timeline {
                        &mut refused
                    } else {
                        &mut nemesis_refused
                    };
                    if let Some(undo) =
                        perform_step(&cluster, &mut feed, &line, until, now, into).await
                    {
                        due.push(undo);
                    }
                }
                Due::Undo(cmd, what) => {
                    let outcome = cluster.perform(cmd.clone()).await;
                    say_outcome(
                        &mut feed,
                        &cluster,
                        &format!("{cmd} (ends {what})"),
                        &outcome,
                    );
                    liveness.fault_ended(Duration::from_millis(cluster.now_ms()), what);
                }
            }
        }
        if !healed && now >= fault_end {
            healed = true;
            // The final heal undoes whatever is still in force.
            due.clear();
            if s.final_heal {
                final_heal(&cluster, &mut feed, &session.state).await;
                liveness.fault_ended(Duration::from_millis(cluster.now_ms()), "final heal");
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
            _ = tokio::signal::ctrl_c() => { interrupted = Some("interrupted"); break; }
            _ = tokio::time::sleep(wait) => {}
            _ = tick.tick() => {
                let now_ms = cluster.now_ms();
                feed.release(now_ms);
                let st = &session.state;
                liveness.observe(Sample {
                    at: Duration::from_millis(now_ms),
                    // After the fault phase the cluster owes progress whatever state it was left in (with
                    // `final-heal = false` it may have been left without a majority): Jepsen's "after the
                    // final heal, the system must recover".
                    healthy: healthy(st) || healed,
                    leader: st.leader,
                    commit_index: st.commit_high,
                });
            }
            Some(e) = rx.recv() => feed.on_event(&mut session, e, cluster.now_ms()),
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
        findings.extend(judge(plan, &cluster, &mut feed, &mut session, &liveness).await);
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
    end_session(&cluster, &mut session, &mut rx).await;
    Ok(findings)
}

/// Performs one planned step; returns its undo when it has `until`. A step that could not be performed is
/// added to `refused` (with why), so the verdict says the run was not the one planned.
async fn perform_step(
    cluster: &Cluster,
    feed: &mut ConsoleFeed,
    line: &str,
    until: Option<Duration>,
    now: Duration,
    refused: &mut Vec<String>,
) -> Option<(Duration, Due)> {
    let cmd = match command::parse(line) {
        Ok(c) => c,
        Err(e) => {
            feed.out.say(format_args!("scenario: {line}: error: {e}"));
            refused.push(format!("`{line}` at {}: {e}", fmt_ms(now)));
            return None;
        }
    };
    // A `leader` target is pinned now, so the undo reaches the node that was hit.
    let pin = |t: Target| match t {
        Target::Leader => cluster
            .leader()
            .map(|(id, _)| Target::Node(id))
            .unwrap_or(t),
        other => other,
    };
    let (cmd, undo) = match (cmd, until) {
        (Command::Kill(t), Some(u)) => {
            let t = pin(t);
            (Command::Kill(t), Some((u, Command::Restart(t))))
        }
        (Command::Terminate(t), Some(u)) => {
            let t = pin(t);
            (Command::Terminate(t), Some((u, Command::Restart(t))))
        }
        (Command::Pause(t), Some(u)) => {
            let t = pin(t);
            (Command::Pause(t), Some((u, Command::Resume(t))))
        }
        (Command::PowerCut(crate::cluster::disk::PowerTarget::One(t), torn), Some(u)) => {
            let t = pin(t);
            (
                Command::PowerCut(crate::cluster::disk::PowerTarget::One(t), torn),
                Some((u, Command::Restart(t))),
            )
        }
        (Command::Disk(t, a), Some(u)) => {
            let t = pin(t);
            let heal = command::parse(&format!("disk {t} heal")).ok();
            (Command::Disk(t, a), heal.map(|h| (u, h)))
        }
        (Command::Clock(t, a), Some(u)) => {
            let t = pin(t);
            let heal = command::parse(&format!("clock {t} heal")).ok();
            (Command::Clock(t, a), heal.map(|h| (u, h)))
        }
        (Command::Fault(mut f), Some(u)) if f.duration.is_none() => {
            // The fault set removes it itself at the right time.
            f.duration = Some(u.saturating_sub(now));
            (Command::Fault(f), None)
        }
        (c, _) => (c, None),
    };
    let shown = cmd.to_string();
    let outcome = cluster.perform(cmd).await;
    say_outcome(feed, cluster, &shown, &outcome);
    if let Outcome::Refused(why) = &outcome {
        refused.push(format!("`{shown}` at {}: {why}", fmt_ms(now)));
    }
    match (undo, outcome.is_ok()) {
        (Some((u, undo)), true) => Some((u, Due::Undo(undo, shown))),
        _ => None,
    }
}

fn say_outcome(feed: &mut ConsoleFeed, cluster: &Cluster, what: &str, outcome: &Outcome) {
    feed.flush();
    if let Some(cast) = &feed.out.cast {
        cast.marker(what.to_string());
    }
    let at = cluster.now_ms() as f64 / 1000.0;
    for l in outcome.console_lines() {
        feed.out
            .say(format_args!("{at:>8.3}s  scenario: {what} → {l}"));
    }
}

/// Heals every network fault and brings every node back: paused ones resumed, stopped ones restarted.
async fn final_heal(cluster: &Cluster, feed: &mut ConsoleFeed, state: &ClusterState) {
    let heal = cluster.perform(Command::Heal(None)).await;
    say_outcome(feed, cluster, "heal (final)", &heal);
    for (id, n) in &state.nodes {
        if state.membership(*id) == Some(crate::state::MemberRole::Removed) {
            // Stopped on purpose: it is no longer a member.
            continue;
        }
        let cmd = match n.process {
            ProcessState::Paused { .. } => Command::Resume(Target::Node(*id)),
            ProcessState::Running { .. } | ProcessState::Starting => continue,
            _ => Command::Restart(Target::Node(*id)),
        };
        let shown = format!("{cmd} (final)");
        let outcome = cluster.perform(cmd).await;
        say_outcome(feed, cluster, &shown, &outcome);
    }
}

async fn judge(
    plan: &Plan,
    cluster: &Cluster,
    feed: &mut ConsoleFeed,
    session: &mut crate::app::Session,
    liveness: &Liveness,
) -> Vec<Finding> {
    let s = &plan.scenario;
    let mut findings = Vec::new();
    if s.checks.counter || s.checks.linearizable {
        let outcome = cluster.perform(Command::Check).await;
        say_outcome(feed, cluster, "check", &outcome);
        let (verdict, evidence) = match outcome {
            Outcome::Verdict { verdict, report } => (
                match verdict {
                    Verdict::Ok => "valid",
                    Verdict::Violated => "invalid",
                    Verdict::Inconclusive => "unknown",
                },
                report,
            ),
            other => ("unknown", format!("{other:?}")),
        };
        findings.push(Finding {
            check: if s.workload.kind == WorkloadKind::LinKv {
                "linearizable"
            } else {
                "counter"
            },
            verdict,
            evidence,
        });
    }
    if s.checks.invariants {
        let v = session.state.invariants.violations();
        findings.push(Finding {
            check: "invariants",
            verdict: if v.is_empty() { "valid" } else { "invalid" },
            evidence: if v.is_empty() {
                "election safety, log matching, leader completeness, state-machine safety, monotonic commit \
                 and term held on every status"
                    .into()
            } else {
                let mut e: Vec<String> = v.iter().take(3).map(|v| v.to_string()).collect();
                if v.len() > 3 {
                    e.push(format!("and {} more", v.len() - 3));
                }
                e.join("; ")
            },
        });
    }
    if s.checks.liveness {
        let f = liveness.failures();
        let recoveries: Vec<String> = liveness
            .recoveries()
            .iter()
            .map(|r| match r.took() {
                Some(t) => format!("{} → {}", r.what, fmt_ms(t)),
                None => format!("{} → not recovered", r.what),
            })
            .collect();
        findings.push(Finding {
            check: "liveness",
            verdict: if f.is_empty() { "valid" } else { "invalid" },
            evidence: if f.is_empty() {
                format!(
                    "a leader and commits within {} whenever healthy; recovery: {}",
                    fmt_duration(s.checks.liveness_bound),
                    if recoveries.is_empty() {
                        "nothing to recover from".into()
                    } else {
                        recoveries.join(", ")
                    }
                )
            } else {
                f.iter()
                    .map(|f| {
                        format!(
                            "{} from {} to {} while progress was owed",
                            f.what,
                            fmt_ms(f.from),
                            fmt_ms(f.to)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        });
    }
    findings
}

fn fmt_ms(d: Duration) -> String {
    crate::units::duration(d)
}
