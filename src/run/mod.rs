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
mod say;
mod steps;
mod verdict;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command as CliCommand, RunArgs};
use crate::scenario::validate::load;
use crate::scenario::{Plan, WorkloadKind, fmt_duration};
use crate::setup::fail;
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
    let findings = match crate::setup::runtime().block_on(steps::execute(&plan, &up, spec, cast)) {
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
