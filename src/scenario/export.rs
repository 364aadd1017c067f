//! `squall scenario LOG`: a recorded session (hand-driven in the dashboard or the console) written as a
//! scenario file, so `squall run` replays the same commands at the same times against a fresh cluster.
//!
//! It reads values, never words: every `Performed` event of the log holds the command in its console form
//! (a dashboard toggle already resolved into what it meant, `leader` kept symbolic), and each becomes a
//! timeline step. The file is serialised with serde and the `toml` crate (the format's reference
//! implementation in Rust, already what reads scenarios), so quoting and escaping are the TOML library's,
//! never Rust's `{:?}`. The cluster section holds the session's settings (event logs from before settings
//! were logged get the defaults).

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::fmt_duration;
use crate::cli::ScenarioArgs;
use crate::command::Command;
use crate::record::eventlog::read_event_log;
use crate::setup::fail;
use crate::state::{Event, Stamped, WorkloadKind};

/// The scenario file as written (field names as the scenario parser reads them).
#[derive(Serialize)]
struct File {
    name: &'static str,
    expect: &'static str,
    cluster: ClusterSection,
    workload: WorkloadSection,
    run: RunSection,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    timeline: Vec<Step>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterSection {
    nodes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    election_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_every: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<Seed>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    disk_faults: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_bin: Option<String>,
    /// The node kind (a built-in name or a kind file's path); absent for the default and for a Maelstrom
    /// node, which `maelstrom` names instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    /// The Maelstrom node program, for a session of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    maelstrom: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    node_args: Vec<String>,
}

/// A seed: TOML integers stop at 2^63 - 1, and the scenario parser reads a larger seed from a string.
#[derive(Serialize)]
#[serde(untagged)]
enum Seed {
    Int(i64),
    Text(String),
}

#[derive(Serialize)]
struct WorkloadSection {
    kind: &'static str,
    rate: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct RunSection {
    duration: String,
    recovery: String,
    #[serde(skip_serializing_if = "is_true")]
    final_heal: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Serialize)]
struct Step {
    at: String,
    #[serde(rename = "do")]
    command: String,
}

/// The commands of a session's events that become timeline steps, with their times (session ms), the
/// initial workload choice, and the performed commands that have no console form (from logs older than
/// format version 4, which recorded the dashboard's toggles as they were pressed).
pub struct SessionCommands {
    /// (session ms, command) in order.
    pub steps: Vec<(u64, Command)>,
    /// Whether the workload was started with the session (`--workload`).
    pub workload_on: bool,
    /// Commands performed that the console cannot type, with their times.
    pub skipped: Vec<(u64, Command)>,
}

/// Picks the timeline of a session from its events.
pub fn session_commands(events: &[Stamped]) -> SessionCommands {
    let mut out = SessionCommands {
        steps: Vec::new(),
        workload_on: false,
        skipped: Vec::new(),
    };
    for e in events {
        if e.event == Event::FaultPhaseEnded {
            // A `squall run` log: the final heal and what follows are the run's own ending, which the
            // exported scenario's run does again.
            break;
        }
        let Event::Performed { command, .. } = &e.event else {
            continue;
        };
        if !command.has_console_form() {
            out.skipped.push((e.at_ms, command.clone()));
            continue;
        }
        let initial = out.steps.is_empty() && e.at_ms < 2_000;
        match command {
            // Started with the session (`--workload`): the scenario's workload section says so.
            Command::Workload(Some(true)) if initial => out.workload_on = true,
            // `--workload lin-kv` chooses the workload before starting it.
            Command::SetWorkloadKind(_) | Command::WorkloadRate(_) if initial => {}
            c => out.steps.push((e.at_ms, c.clone())),
        }
    }
    out
}

/// Writes the scenario of `events` (a session's event log) as TOML. `source` names the log in the header.
pub fn scenario_of(events: &[Stamped], source: &str) -> String {
    scenario_until(events, source, 0)
}

/// The `node-args` that give a rerun's nodes what the session's ran with: `--unsafe-no-fsync`, each kind
/// switch as its `squall up` flag (`no-pre-vote` → `--no-pre-vote`), then a scenario's own arguments, each
/// once.
fn exported_node_args(
    unsafe_no_fsync: bool,
    options: &[String],
    node_args: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let flags = unsafe_no_fsync
        .then(|| "--unsafe-no-fsync".to_string())
        .into_iter()
        .chain(options.iter().map(|o| format!("--{o}")))
        .chain(node_args.iter().cloned());
    for a in flags {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// [`scenario_of`] for a session still running at `now_ms` (the dashboard's `E`): the fault phase lasts
/// until then, not until the last command, so a fault still in force when the key was pressed runs as long
/// in the rerun (tester2 item 4: a `cut … for 20s` lasted 1.6 s in the rerun).
pub fn scenario_until(events: &[Stamped], source: &str, now_ms: u64) -> String {
    let mut settings = None;
    let mut nodes = 3;
    let mut kind = WorkloadKind::Counter;
    let mut end_ms = now_ms;
    // A `squall run` log says how its run was planned; a hand-driven session lasts as long as it did.
    let mut planned = None;
    for e in events {
        end_ms = end_ms.max(e.at_ms);
        match &e.event {
            Event::RunPlanned {
                duration_ms,
                recovery_ms,
                final_heal,
            } => planned = Some((*duration_ms, *recovery_ms, *final_heal)),
            Event::SessionStarted { nodes: n, .. } => nodes = n.len() as u64,
            Event::Settings { .. } => settings = Some(e.event.clone()),
            Event::WorkloadKind { kind: k } => kind = *k,
            _ => {}
        }
    }
    let picked = session_commands(events);
    let duration = Duration::from_millis(end_ms.max(1_000).div_ceil(1_000) * 1_000);
    let ms = |v: u64| fmt_duration(Duration::from_millis(v));
    let (cluster, rate) = match &settings {
        Some(Event::Settings {
            nodes,
            election_timeout_ms,
            heartbeat_ms,
            snapshot_every,
            seed,
            disk_faults,
            node_bin,
            rate,
            unsafe_no_fsync,
            kind: node_kind,
            options,
            node_args,
        }) => (
            ClusterSection {
                nodes: *nodes,
                election_timeout: Some(format!(
                    "{}..{}",
                    ms(election_timeout_ms.0),
                    ms(election_timeout_ms.1)
                )),
                heartbeat: Some(ms(*heartbeat_ms)),
                snapshot_every: Some(*snapshot_every),
                seed: Some(match i64::try_from(*seed) {
                    Ok(s) => Seed::Int(s),
                    Err(_) => Seed::Text(seed.to_string()),
                }),
                disk_faults: *disk_faults,
                node_bin: node_bin.clone(),
                // The same node kind; the default one is left out, as a person's scenario would.
                kind: node_kind
                    .as_ref()
                    .filter(|k| !k.is_default() && k.maelstrom.is_none())
                    .map(|k| k.arg().to_string()),
                maelstrom: node_kind.as_ref().and_then(|k| k.maelstrom.clone()),
                // The rerun must be the same experiment (tester2 item 4b): every switch and argument the
                // nodes ran with.
                node_args: exported_node_args(*unsafe_no_fsync, options, node_args),
            },
            *rate,
        ),
        _ => (
            ClusterSection {
                nodes,
                election_timeout: None,
                heartbeat: None,
                snapshot_every: None,
                seed: None,
                disk_faults: false,
                node_bin: None,
                kind: None,
                maelstrom: None,
                node_args: Vec::new(),
            },
            20,
        ),
    };
    let file = File {
        name: "session",
        expect: "valid",
        cluster,
        workload: WorkloadSection {
            kind: match (picked.workload_on, kind) {
                (false, _) => "none",
                (true, k) => k.as_str(),
            },
            rate,
        },
        run: match planned {
            Some((duration, recovery, final_heal)) => RunSection {
                duration: ms(duration),
                recovery: ms(recovery),
                final_heal,
            },
            None => RunSection {
                duration: fmt_duration(duration),
                recovery: "10s".into(),
                final_heal: true,
            },
        },
        timeline: picked
            .steps
            .iter()
            .map(|(at, c)| Step {
                at: ms(*at),
                command: c.to_string(),
            })
            .collect(),
    };
    let mut t = format!(
        "# The commands of the session recorded in {source}, at the times they were performed.\n\
         # Rerun it with `squall run FILE`; `squall run FILE --seed N` varies the cluster's timeouts.\n"
    );
    if settings.is_none() {
        t.push_str("# (this log predates logged settings: timings are the defaults)\n");
    }
    t.push('\n');
    t.push_str(&toml::to_string(&file).expect("a scenario of strings and numbers serialises"));
    for (at, c) in &picked.skipped {
        t.push_str(&format!(
            "\n# at {}: `{c:?}` (a dashboard toggle from a log older than format 4, which did not record \
             what it resolved to; not replayed)\n",
            ms(*at)
        ));
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::command::parse;

    fn settings() -> Stamped {
        Stamped::new(
            0,
            Event::Settings {
                nodes: 5,
                election_timeout_ms: (150, 300),
                heartbeat_ms: 50,
                snapshot_every: 500,
                seed: 7,
                rate: 20,
                disk_faults: true,
                node_bin: None,
                unsafe_no_fsync: false,
                kind: None,
                options: Vec::new(),
                node_args: Vec::new(),
            },
        )
    }

    fn performed(at: u64, command: Command, node: Option<u64>) -> Stamped {
        Stamped::new(
            at,
            Event::Performed {
                effect: format!("did {command}"),
                command,
                node,
            },
        )
    }

    fn steps(text: &str) -> Vec<(String, String)> {
        let s = crate::scenario::parse::parse_scenario(
            std::path::Path::new("exported.toml"),
            text,
            &crate::scenario::validate::validate_line,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        s.timeline
            .iter()
            .map(|st| (fmt_duration(st.at), st.command.to_string()))
            .collect()
    }

    #[test]
    fn kill_leader_exports_as_kill_leader_not_the_node_it_hit() {
        // Issue 19: `K` was saved as `kill 4`, and the rerun killed a follower.
        let text = scenario_of(
            &[
                settings(),
                performed(3_000, parse("kill leader").unwrap(), Some(4)),
            ],
            "log",
        );
        assert_eq!(steps(&text), vec![("3s".into(), "kill leader".into())]);
    }

    /// Tester C10: exporting a `squall run` log made its 65 s run 76 s long (the session's length, recovery
    /// and checks included) and its final heal a `heal` step of the timeline.
    #[test]
    fn a_run_log_exports_its_planned_run_without_its_final_heal() {
        let text = scenario_of(
            &[
                settings(),
                Stamped::new(
                    5,
                    Event::RunPlanned {
                        duration_ms: 65_000,
                        recovery_ms: 10_000,
                        final_heal: true,
                    },
                ),
                performed(3_000, parse("cut 1->2 for 2s").unwrap(), None),
                Stamped::new(65_010, Event::FaultPhaseEnded),
                performed(65_020, parse("heal").unwrap(), None),
                performed(65_030, parse("restart 2").unwrap(), Some(2)),
                Stamped::new(76_400, Event::Quit),
            ],
            "log",
        );
        assert_eq!(steps(&text), vec![("3s".into(), "cut 1->2 for 2s".into())]);
        assert!(
            text.contains("duration = \"65s\"") && text.contains("recovery = \"10s\""),
            "{text}"
        );
        assert!(!text.contains("final-heal"), "{text}");
        let kept = scenario_of(
            &[
                settings(),
                Stamped::new(
                    5,
                    Event::RunPlanned {
                        duration_ms: 20_000,
                        recovery_ms: 5_000,
                        final_heal: false,
                    },
                ),
                Stamped::new(20_000, Event::FaultPhaseEnded),
            ],
            "log",
        );
        assert!(kept.contains("final-heal = false"), "{kept}");
        assert!(
            crate::scenario::parse::parse_scenario(
                std::path::Path::new("exported.toml"),
                &kept,
                &crate::scenario::validate::validate_line,
            )
            .is_ok_and(|s| !s.final_heal && s.duration == Duration::from_secs(20))
        );
    }

    #[test]
    fn an_export_of_a_running_session_lasts_until_the_export() {
        // tester2 item 4 (runs/dash3): `cut 1->2 for 20s` at 2.4 s, `E` at 11.5 s wrote `duration = "4s"`, so
        // the rerun's final heal ended the cut after 1.6 s.
        let events = [
            settings(),
            performed(2_400, parse("cut 1->2 for 20s").unwrap(), None),
        ];
        let text = scenario_until(&events, "log", 11_500);
        let s = crate::scenario::parse::parse_scenario(
            std::path::Path::new("exported.toml"),
            &text,
            &crate::scenario::validate::validate_line,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.duration, Duration::from_secs(12), "{text}");
        assert!(text.contains("duration = \"12s\""), "{text}");
    }

    #[test]
    fn an_unsafe_no_fsync_session_exports_its_node_flag() {
        // tester2 item 4b: the rerun of an `--unsafe-no-fsync` session ran a cluster that fsyncs.
        let mut s = settings();
        if let Event::Settings {
            unsafe_no_fsync, ..
        } = &mut s.event
        {
            *unsafe_no_fsync = true;
        }
        let text = scenario_of(&[s], "log");
        assert!(
            text.contains("node-args = [\"--unsafe-no-fsync\"]"),
            "{text}"
        );
    }

    #[test]
    fn a_session_s_node_kind_is_exported_and_the_default_one_left_out() {
        let with = |kind: crate::kind::KindRecord| {
            let mut s = settings();
            if let Event::Settings { kind: k, .. } = &mut s.event {
                *k = Some(kind);
            }
            scenario_of(&[s], "log")
        };
        let mine = crate::kind::KindRecord {
            name: "mine".into(),
            file: Some("/kinds/mine.toml".into()),
            digest: "0123456789abcdef".into(),
            maelstrom: None,
        };
        let text = with(mine);
        assert!(text.contains("kind = \"/kinds/mine.toml\""), "{text}");
        let builtin = crate::kind::Kind::builtin("squall").unwrap().record();
        let text = with(builtin);
        assert!(!text.contains("kind = \"squall\""), "{text}");
        // tester4 F9a: a Maelstrom session's export named the bare kind, which no scenario can run.
        let mut node = crate::kind::Kind::builtin("maelstrom").unwrap().record();
        node.maelstrom = Some("/home/me/mynode".into());
        let text = with(node);
        assert!(text.contains("maelstrom = \"/home/me/mynode\""), "{text}");
        assert!(!text.contains("kind = \"maelstrom\""), "{text}");
    }

    #[test]
    fn node_switches_and_scenario_node_args_export_as_node_args_once_each() {
        // Issue 19: `--no-pre-vote`/`--no-check-quorum` were not in the logged settings, so exports dropped them.
        let mut s = settings();
        if let Event::Settings {
            options, node_args, ..
        } = &mut s.event
        {
            *options = vec!["no-pre-vote".into(), "no-check-quorum".into()];
            *node_args = vec!["--no-pre-vote".into(), "--extra".into()];
        }
        let text = scenario_of(&[s], "log");
        assert!(
            text.contains("node-args = [\"--no-pre-vote\", \"--no-check-quorum\", \"--extra\"]"),
            "{text}"
        );
    }

    #[test]
    fn durations_export_exactly() {
        // Issue 19: a 1550 ms delay was written as `1.6s`.
        let text = scenario_of(
            &[
                settings(),
                performed(2_345, parse("delay 2 1550ms").unwrap(), Some(2)),
            ],
            "log",
        );
        assert_eq!(
            steps(&text),
            vec![("2345ms".into(), "delay 2 1550ms".into())]
        );
    }

    #[test]
    fn dashboard_keys_export_as_the_commands_they_resolved_to() {
        // Issue 19: `c`, `d`, `l`, `p` and the links matrix's toggles became comments ("a key with no console
        // form"). Performing a toggle now records the command it meant then.
        let events = [
            settings(),
            performed(2_000, Command::Workload(Some(false)), None), // c
            performed(2_100, parse("delay 2 50ms").unwrap(), Some(2)), // d
            performed(2_200, parse("loss 2 10%").unwrap(), Some(2)), // l
            performed(2_300, parse("pause 3").unwrap(), Some(3)),   // p
            performed(2_400, parse("cut 1->2").unwrap(), None),     // links matrix x
            performed(2_500, parse("heal 3").unwrap(), None),       // x again on that link
        ];
        let text = scenario_of(&events, "log");
        assert!(!text.contains("no console form"), "{text}");
        let lines: Vec<String> = steps(&text).into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            lines,
            [
                "workload off",
                "delay 2 50ms",
                "loss 2 10%",
                "pause 3",
                "cut 1->2",
                "heal 3"
            ]
        );
    }

    #[test]
    fn a_value_with_quotes_and_backslashes_is_quoted_by_toml() {
        let mut s = settings();
        if let Event::Settings { node_bin, .. } = &mut s.event {
            *node_bin = Some("/opt/my \"node\"\\bin".into());
        }
        let text = scenario_of(&[s], "log");
        let v: toml::Value = toml::from_str(&text).expect("valid TOML");
        assert_eq!(
            v["cluster"]["node-bin"].as_str(),
            Some("/opt/my \"node\"\\bin")
        );
    }

    #[test]
    fn export_parse_export_is_identical_for_random_sessions() {
        let seed = crate::command::arbitrary::seed();
        println!("seed {seed} (rerun with SQUALL_SEED={seed})");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for round in 0..200 {
            let mut events = vec![settings()];
            let mut at = 2_000;
            for _ in 0..rng.random_range(1..12) {
                at += rng.random_range(0..5_000);
                let c = crate::command::arbitrary::command(&mut rng, 3);
                events.push(performed(at, c, None));
            }
            let first = scenario_of(&events, "log");
            let again: Vec<Stamped> = std::iter::once(settings())
                .chain(steps(&first).into_iter().map(|(at, line)| {
                    let at = crate::command::fault::parse_duration(&at, "time").unwrap();
                    performed(at.as_millis() as u64, parse(&line).unwrap(), None)
                }))
                .collect();
            let second = scenario_of(&again, "log");
            assert_eq!(first, second, "round {round}, seed {seed}");
        }
    }
}
