//! `squall run FILE.toml`: runs a scenario to a verdict against a real cluster, headless. It prints every
//! setting the seed expanded into, one line per event as `up --headless` does, then a verdict table; it
//! writes a bundle (the scenario, the event log, the history, the HTML report, `repro.sh`) and exits by the
//! verdict: 0 valid, 1 invalid, 2 could not run, 3 unknown (Jepsen's `true / false / :unknown`).
//!
//! The run's phases: the workload starts; timeline and nemesis steps are performed at their times (a step
//! with `until` is undone then: a fault gets that duration, a killed node is restarted, a paused one resumed);
//! at the end of the fault phase everything is healed and every node brought back; after the recovery period
//! the checks run. The loop is in `steps.rs`, the bundle's files in `bundle.rs`, the checks in `verdict.rs`.
//!
//! `--protocol raft,paxos` runs the scenario on each protocol of squall's own node, one after the other with
//! the same seed, and prints one table comparing them (`compare.rs`).

/// `println!` that never panics: a run whose standard output fails (a full disk, a closed pipe) goes on, its
/// bundle and exit code being its result; the console loop says a failure other than a closed pipe and ends the
/// run `unknown` (see `steps.rs`).
macro_rules! outln {
    ($($t:tt)*) => { $crate::setup::say(format_args!($($t)*)) };
}

mod bundle;
mod churn;
pub mod compare;
mod say;
mod steps;
mod verdict;

use std::path::Path;
use std::process::ExitCode;

use crate::cli::RunArgs;
use crate::cluster::ClusterSpec;
use crate::scenario::validate::load;
use crate::scenario::{Plan, Scenario, WorkloadKind, protocol_name};
use crate::session::SessionConfig;
use crate::setup::{cluster_id, fail, node_program_where};
use crate::state::WorkloadKind as SessionWorkload;
use bundle::{bundle_dir, finish_bundle, write_bundle_start};
use verdict::{exit_code, overall};

pub use compare::Measures;
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
    // `--protocol P[,Q…]`: each protocol's version of the scenario, all checked before anything runs.
    let mut versions = Vec::new();
    for (i, p) in args.protocol.iter().enumerate() {
        if args.protocol[..i].contains(p) {
            return fail(
                2,
                format!(
                    "--protocol names {} twice: name each protocol once (raft,paxos)",
                    protocol_name(*p)
                ),
            );
        }
        match scenario.with_protocol(*p) {
            Ok(s) => versions.push((protocol_name(*p), s)),
            Err(e) => return fail(2, format!("{}: {e}", args.file.display())),
        }
    }
    if versions.len() >= 2 {
        return side_by_side(&args, &versions, seed);
    }
    let scenario = versions.pop().map_or(scenario, |(_, s)| s);
    let plan = scenario.plan(seed);
    if args.dry_run {
        // The hosts are checked (not reached) too: a hosts file's mistake stops the dry run like the kind's.
        let ids: Vec<u64> = (1..=scenario.cluster.nodes).collect();
        if let Err(e) = crate::remote::connect::hosts_of(
            args.hosts.as_deref(),
            args.host.as_deref(),
            &ids,
            crate::cluster::guard::MAX_NODES,
        ) {
            return fail(2, e);
        }
        return match dry_run(&plan, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(2, e),
        };
    }
    // A kind file's mistake or a step the kind refuses stops the run before its bundle is made, so a refused
    // run leaves nothing behind (a bundle left by one made the next `--out` to the same path refused).
    if let Err(e) = kind_takes(&plan, &args.file) {
        return fail(2, e);
    }
    let out = match bundle_dir(&args, &scenario.name, seed) {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = write_bundle_start(&args, &out, seed) {
        return fail(2, e);
    }
    outln!("squall run: {} → {}", args.file.display(), out.display());
    match run_plan(&args, &plan, &out) {
        Ok((findings, _)) => ExitCode::from(exit_code(overall(&findings))),
        Err(e) => fail(2, e),
    }
}

/// `--dry-run`: the kind is loaded as the run would load it, so a broken kind file stops the dry run (exit 2,
/// naming its file, line and field) rather than a plan that cannot run, and so does a step the kind refuses
/// (naming the step's line in the scenario file) and an `--out` the run would refuse. Its program need not be
/// here.
fn dry_run(plan: &Plan, args: &RunArgs) -> Result<(), String> {
    kind_takes(plan, &args.file)?;
    // The run refuses an `--out` that is taken (exit 2): so does its dry run, in the same words.
    bundle::out_taken(args)?;
    put(&plan.describe());
    Ok(())
}

/// Loads the plan's node kind (not a Maelstrom node's, which has no file) and checks every step against it.
fn kind_takes(plan: &Plan, file: &Path) -> Result<(), String> {
    if plan.scenario.cluster.maelstrom.is_none() {
        let kind = crate::setup::load_kind(plan.scenario.cluster.kind.as_deref())?;
        steps_the_kind_takes(plan, &kind, file)?;
    }
    Ok(())
}

/// Runs one plan into the bundle `out` (already holding the scenario and `repro.sh`): prints its settings, its
/// events and its verdict table, and writes the history and the report. `Err`: it could not run (exit 2).
fn run_plan(args: &RunArgs, plan: &Plan, out: &Path) -> Result<(Vec<Finding>, Measures), String> {
    put(&plan.describe());
    // The nodes run on the hosts `--hosts`/`--host` name (checked against the plan's nodes), each through its
    // agent; the kind's program is then looked for on those hosts, not here.
    let ids: Vec<u64> = (1..=plan.scenario.cluster.nodes).collect();
    let hosts = crate::remote::connect::hosts_of(
        args.hosts.as_deref(),
        args.host.as_deref(),
        &ids,
        crate::cluster::guard::MAX_NODES,
    )?;
    let mut config = session_config(plan, out, &args.file, hosts.is_some())?;
    config.spec.hosts = hosts;
    let cast = if args.record {
        Some(
            crate::record::asciicast::CastWriter::create(
                out.join("run.cast"),
                120,
                40,
                &format!("squall run {}", plan.scenario.name),
            )
            .map_err(|e| format!("--record: {e}"))?,
        )
    } else {
        None
    };
    let (findings, measures) =
        crate::setup::runtime().block_on(steps::execute(plan, config, cast))?;
    let verdict = overall(&findings);
    finish_bundle(out, plan.scenario.workload.kind);
    outln!("");
    outln!("{:<14} {:<8} evidence", "check", "verdict");
    for f in &findings {
        outln!("{:<14} {:<8} {}", f.check, f.verdict, f.evidence);
    }
    outln!(
        "verdict: {verdict} (expected {}{})",
        plan.scenario.expect,
        if verdict == plan.scenario.expect.to_string() {
            ""
        } else {
            ": NOT AS EXPECTED"
        }
    );
    outln!(
        "bundle: {} (rerun: sh {}/repro.sh)",
        out.display(),
        out.display()
    );
    Ok((findings, measures))
}

/// `--protocol raft,paxos`: the scenario on each protocol, one after the other with the same seed, each into
/// its own bundle under the run's (`raft/`, `paxos/`), then one table comparing them, printed and written to
/// the bundle (`comparison.txt`, `comparison.json`). Exits with the worst of the runs' codes.
fn side_by_side(args: &RunArgs, versions: &[(&'static str, Scenario)], seed: u64) -> ExitCode {
    let plans: Vec<(&'static str, Plan)> =
        versions.iter().map(|(p, s)| (*p, s.plan(seed))).collect();
    if args.dry_run {
        for (p, plan) in &plans {
            outln!("# --protocol {p}");
            if let Err(e) = dry_run(plan, args) {
                return fail(2, e);
            }
        }
        return ExitCode::SUCCESS;
    }
    let name = &plans[0].1.scenario.name;
    let expect = plans[0].1.scenario.expect.to_string();
    let out = match bundle_dir(args, name, seed) {
        Ok(d) => d,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = write_bundle_start(args, &out, seed) {
        return fail(2, e);
    }
    let names: Vec<&str> = plans.iter().map(|(p, _)| *p).collect();
    outln!(
        "squall run: {} on {} → {}",
        args.file.display(),
        names.join(", "),
        out.display()
    );
    let mut rows = Vec::new();
    for (p, plan) in &plans {
        let dir = out.join(p);
        let mut one = args.clone();
        one.protocol = vec![plan.scenario.cluster.protocol.unwrap_or_default()];
        outln!("");
        outln!("=== {p} ===");
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
            .and_then(|()| write_bundle_start(&one, &dir, seed))
            .and_then(|()| run_plan(&one, plan, &dir));
        if let Err(e) = &result {
            let _ = fail(2, format!("--protocol {p}: {e}"));
        }
        // Ctrl-C ends the side by side, not only the run it struck.
        let interrupted = result
            .as_ref()
            .is_ok_and(|(f, _)| f.iter().any(|f| f.check == "run"));
        rows.push(compare::Row {
            protocol: p,
            result,
            bundle: dir,
        });
        if interrupted {
            break;
        }
    }
    let table = compare::table(&rows, &expect);
    outln!("");
    outln!("side by side: {name}, seed {seed}");
    put(&table);
    let json = compare::json(&rows, name, seed, &expect);
    let _ = std::fs::write(out.join("comparison.txt"), &table);
    let _ = std::fs::write(
        out.join("comparison.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    );
    outln!(
        "bundle: {} (comparison.txt, comparison.json; rerun: sh {}/repro.sh)",
        out.display(),
        out.display()
    );
    ExitCode::from(compare::worst_exit_code(&rows))
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
fn session_config(
    plan: &Plan,
    out: &Path,
    file: &Path,
    on_hosts: bool,
) -> Result<SessionConfig, String> {
    let s = &plan.scenario;
    let c = &s.cluster;
    let kind = match &c.maelstrom {
        Some(program) => crate::kind::maelstrom_kind_for(program)?,
        None => crate::setup::load_kind(c.kind.as_deref())?,
    };
    steps_the_kind_takes(plan, &kind, file)?;
    crate::kind::needs_program(&kind)?;
    let (node_program, mut node_prefix_args) =
        node_program_where(&kind, c.node_bin.as_deref(), on_hosts)?;
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
            hosts: None,
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

/// `print!` of `text` that never panics (see `outln!`).
fn put(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}
