//! `squall run FILE.toml`: runs a scenario to a verdict against a real cluster, headless. It prints every
//! setting the seed expanded into, one line per event as `up --headless` does, then a verdict table; it
//! writes a bundle (the scenario, the event log, the history, the HTML report, `repro.sh`) and exits by the
//! verdict: 0 valid, 1 invalid, 2 could not run, 3 unknown (Jepsen's `true / false / :unknown`).
//!
//! The run's phases: the workload starts; timeline and nemesis steps are performed at their times (a step
//! with `until` is undone then: a fault gets that duration, a killed node is restarted, a paused one resumed);
//! at the end of the fault phase everything is healed and every node brought back; after the recovery period
//! the checks run. The loop is in `steps.rs`, the bundle's files in `bundle.rs`, the checks in `verdict.rs`.

mod bundle;
mod churn;
mod say;
mod steps;
mod verdict;

use std::path::Path;
use std::process::ExitCode;

use crate::cli::RunArgs;
use crate::cluster::ClusterSpec;
use crate::scenario::validate::load;
use crate::scenario::{Plan, WorkloadKind};
use crate::session::SessionConfig;
use crate::setup::{cluster_id, fail, node_program};
use crate::state::WorkloadKind as SessionWorkload;
use bundle::{bundle_dir, finish_bundle, write_bundle_start};
use verdict::{exit_code, overall};

pub use verdict::Finding;

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
        match scenario.scaled(args.scale) {
            Ok(s) => s,
            Err(e) => return fail(2, format!("{}: {e}", args.file.display())),
        }
    };
    let plan = scenario.plan(seed);
    if args.dry_run {
        // The kind is loaded as the run would load it, so a broken kind file stops the dry run (exit 2, naming
        // its file, line and field) rather than a plan that cannot run. Its program need not be here.
        if plan.scenario.cluster.maelstrom.is_none() {
            match crate::setup::load_kind(plan.scenario.cluster.kind.as_deref()) {
                Err(e) => return fail(2, e),
                Ok(kind) => {
                    if let Err(e) = steps_the_kind_takes(&plan, &kind, &args.file) {
                        return fail(2, e);
                    }
                }
            }
        }
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
    let config = match session_config(&plan, &out, &args.file) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
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
    let findings = match crate::setup::runtime().block_on(steps::execute(&plan, config, cast)) {
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

/// Checks every step of the plan (the timeline's and the nemesis's) against what the node kind can take, when
/// the scenario is loaded: a step the kind refuses (`freeze` on etcd) is a mistake in the file, exit 2 naming
/// its line, not a run that ends `unknown`.
fn steps_the_kind_takes(plan: &Plan, kind: &crate::kind::Kind, file: &Path) -> Result<(), String> {
    let refused: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|step| {
            let why = kind.refuses(&step.command)?;
            Some(match step.line {
                0 => format!(
                    "{}: the nemesis's step `{}`: {why}",
                    file.display(),
                    step.command
                ),
                line => format!("{}:{line}: `{}`: {why}", file.display(), step.command),
            })
        })
        .collect();
    match refused.first() {
        None => Ok(()),
        Some(first) if refused.len() == 1 => Err(format!(
            "{first}; take the step out or run the scenario on a kind that can take it"
        )),
        Some(first) => Err(format!(
            "{first}; and {} more step(s) the kind refuses; take them out or run the scenario on a kind that \
             can take them",
            refused.len() - 1
        )),
    }
}

/// The session a plan runs: its cluster settings as the scenario states them (already validated when it was
/// read), the event log in the bundle, and its workload.
fn session_config(plan: &Plan, out: &Path, file: &Path) -> Result<SessionConfig, String> {
    let s = &plan.scenario;
    let c = &s.cluster;
    let kind = match &c.maelstrom {
        Some(program) => crate::kind::maelstrom_kind_for(program)?,
        None => crate::setup::load_kind(c.kind.as_deref())?,
    };
    steps_the_kind_takes(plan, &kind, file)?;
    crate::kind::needs_program(&kind)?;
    let (node_program, mut node_prefix_args) = node_program(&kind, c.node_bin.as_deref())?;
    // `--unsafe-no-fsync` goes through the spec (which passes it on) so the session records it as a fault for
    // the whole session and the report lists it (tester2 item 7: the library scenario got no row).
    let unsafe_no_fsync = c.node_args.iter().any(|a| a == "--unsafe-no-fsync");
    node_prefix_args.extend(
        c.node_args
            .iter()
            .filter(|a| *a != "--unsafe-no-fsync")
            .map(Into::into),
    );
    Ok(SessionConfig {
        spec: ClusterSpec {
            nodes: c.nodes,
            dir: out.join("cluster"),
            kind,
            node_program,
            node_prefix_args,
            options: Vec::new(),
            cluster_id: cluster_id(plan.seed),
            election_timeout: c.election_timeout,
            heartbeat: c.heartbeat,
            snapshot_every: c.snapshot_every,
            seed: plan.seed,
            rate: s.workload.rate,
            disk_faults: c.disk_faults,
            unsafe_no_fsync,
        },
        events: Some(out.join("events.jsonl.gz")),
        workload: match s.workload.kind {
            WorkloadKind::Counter => Some(SessionWorkload::Counter),
            WorkloadKind::LinKv => Some(SessionWorkload::LinKv),
            WorkloadKind::Lock => Some(SessionWorkload::Lock),
            WorkloadKind::LockFenced => Some(SessionWorkload::LockFenced),
            WorkloadKind::Maelstrom(k) => Some(k),
            WorkloadKind::None => None,
        },
        node_bin: c.node_bin.clone(),
        dump_screens: None,
        node_args: c
            .node_args
            .iter()
            .filter(|a| *a != "--unsafe-no-fsync")
            .cloned()
            .collect(),
    })
}
