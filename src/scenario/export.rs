//! `squall scenario LOG`: a recorded session (hand-driven in the dashboard or the console) written as a
//! scenario file, so `squall run` replays the same faults at the same times against a fresh cluster. Every
//! action the session performed becomes a timeline step in the headless vocabulary; the cluster section
//! holds the session's settings (event logs from before settings were logged get the defaults).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use super::fmt_duration;
use crate::cli::ScenarioArgs;
use crate::record::eventlog::read_event_log;
use crate::setup::fail;
use crate::state::{Event, Stamped, WorkloadKind};

/// Writes the scenario of `events` (a session's event log) as TOML. `source` names the log in the header.
pub fn scenario_of(events: &[Stamped], source: &str) -> String {
    let mut settings = None;
    let mut nodes = 3;
    let mut kind = WorkloadKind::Counter;
    let mut workload_on = false;
    let mut steps: Vec<(u64, String)> = Vec::new();
    let mut skipped: Vec<(u64, String)> = Vec::new();
    let mut end_ms = 0;
    for e in events {
        end_ms = end_ms.max(e.at_ms);
        match &e.event {
            Event::SessionStarted { nodes: n, .. } => nodes = n.len() as u64,
            Event::Settings { .. } => settings = Some(e.event.clone()),
            Event::WorkloadKind { kind: k } => kind = *k,
            Event::Fault { description, .. } => {
                if description.starts_with('#') {
                    // A timed fault ending by itself (`#2 cut 1->2 for 2s ends`): its `for` replays that.
                    continue;
                }
                if crate::cluster::command::parse(description).is_ok() {
                    let initial = steps.is_empty() && e.at_ms < 2_000;
                    if initial && description == "workload on" {
                        // Started with the session (`--workload`): the scenario's workload section says so.
                        workload_on = true;
                        continue;
                    }
                    if initial
                        && description.starts_with("workload ")
                        && description != "workload off"
                    {
                        // `--workload lin-kv` chooses the workload before starting it.
                        continue;
                    }
                    steps.push((e.at_ms, description.clone()));
                } else {
                    skipped.push((e.at_ms, description.clone()));
                }
            }
            _ => {}
        }
    }
    let duration = Duration::from_millis(end_ms.max(1_000).div_ceil(1_000) * 1_000);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# The faults of the session recorded in {source}, at the times they were injected.\n\
         # Rerun it with `squall run FILE`; `squall run FILE --seed N` varies the cluster's timeouts."
    );
    let _ = writeln!(t, "name = \"session\"\nexpect = \"valid\"\n\n[cluster]");
    match &settings {
        Some(Event::Settings {
            nodes,
            election_timeout_ms,
            heartbeat_ms,
            snapshot_every,
            seed,
            disk_faults,
            node_bin,
            ..
        }) => {
            let _ = writeln!(t, "nodes = {nodes}");
            let (election_timeout_ms, heartbeat_ms) = (*election_timeout_ms, *heartbeat_ms);
            let _ = writeln!(
                t,
                "election-timeout = \"{}..{}\"",
                fmt_duration(Duration::from_millis(election_timeout_ms.0)),
                fmt_duration(Duration::from_millis(election_timeout_ms.1))
            );
            let _ = writeln!(
                t,
                "heartbeat = \"{}\"",
                fmt_duration(Duration::from_millis(heartbeat_ms))
            );
            let _ = writeln!(t, "snapshot-every = {snapshot_every}");
            if *seed <= i64::MAX as u64 {
                let _ = writeln!(t, "seed = {seed}");
            } else {
                // TOML integers stop at 2^63 - 1; the file reads a seed beyond that as a string.
                let _ = writeln!(t, "seed = \"{seed}\"");
            }
            if *disk_faults {
                let _ = writeln!(t, "disk-faults = true");
            }
            if let Some(b) = node_bin {
                let _ = writeln!(t, "node-bin = {b:?}");
            }
        }
        _ => {
            let _ = writeln!(
                t,
                "nodes = {nodes}\n# (this log predates logged settings: timings are the defaults)"
            );
        }
    }
    let rate = match &settings {
        Some(Event::Settings { rate, .. }) => *rate,
        _ => 20,
    };
    let kind_name = match (workload_on, kind) {
        (false, _) => "none",
        (true, WorkloadKind::Counter) => "counter",
        (true, WorkloadKind::LinKv) => "lin-kv",
    };
    let _ = writeln!(
        t,
        "\n[workload]\nkind = \"{kind_name}\"\nrate = {rate}\n\n[run]\nduration = \"{}\"\nrecovery = \"10s\"",
        fmt_duration(duration)
    );
    for (at, line) in &steps {
        let _ = writeln!(
            t,
            "\n[[timeline]]\nat = \"{}\"\ndo = {line:?}",
            fmt_duration(Duration::from_millis(*at))
        );
    }
    for (at, what) in &skipped {
        let _ = writeln!(
            t,
            "\n# at {}: `{what}` (a key with no console form; not replayed)",
            fmt_duration(Duration::from_millis(*at))
        );
    }
    t
}

/// `squall scenario LOG`.
pub fn export(args: ScenarioArgs) -> ExitCode {
    let log = match read_event_log::<Stamped>(&args.log) {
        Ok(l) => l,
        Err(e) => return fail(2, e),
    };
    if let Some(w) = crate::record::truncation_warning(&log) {
        eprintln!("squall: warning: {w}");
    }
    print!(
        "{}",
        scenario_of(&log.events, &args.log.display().to_string())
    );
    ExitCode::SUCCESS
}
