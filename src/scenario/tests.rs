//! Scenario parsing: a full file, defaults, and every error path naming its line.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A stand-in for the headless parser: knows a few verbs and checks node ids against the cluster size.
fn vocab(line: &str, nodes: u64) -> Result<(), String> {
    let mut w = line.split_whitespace();
    match w.next() {
        Some("kill" | "pause" | "restart" | "isolate") => {
            let n: u64 = w
                .next()
                .ok_or("needs a node id")?
                .parse()
                .map_err(|_| "not a node id".to_string())?;
            if n == 0 || n > nodes {
                Err(format!("no node {n} (the cluster has nodes 1 to {nodes})"))
            } else {
                Ok(())
            }
        }
        Some("partition" | "heal") => Ok(()),
        Some(other) => Err(format!("unknown command `{other}`")),
        None => Err("empty command".into()),
    }
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    parse_scenario(Path::new("s.toml"), text, &vocab)
}

fn err(text: &str) -> (Option<usize>, String) {
    let e = parse(text).expect_err("should be refused");
    assert!(e.to_string().starts_with("s.toml"), "{e}");
    (e.line, e.message)
}

const FULL: &str = r#"
name = "bridge"
description = "a bridge node sees both sides"
expect = "valid"

[cluster]
nodes = 5
election-timeout = "150..300ms"
heartbeat = "50ms"
seed = 42

[workload]
kind = "counter"
rate = 50

[run]
duration = "20s"
recovery = "5s"

[[timeline]]
at = "5s"
do = "partition bridge"
until = "15s"

[[timeline]]
at = "2s"
do = "kill 2"

[nemesis]
kinds = ["kill", "pause"]
interval = "3s..6s"
max-down = 1

[[beyond-tolerance]]
from = "5s"
to = "15s"
"#;

#[test]
fn a_full_file_reads_into_every_setting() {
    let s = parse(FULL).unwrap();
    assert_eq!(s.name, "bridge");
    assert_eq!(s.expect, Expect::Valid);
    assert_eq!(s.cluster.nodes, 5);
    assert_eq!(
        s.cluster.election_timeout,
        (Duration::from_millis(150), Duration::from_millis(300))
    );
    assert_eq!(s.cluster.seed, Some(42));
    assert_eq!(s.workload.rate, 50);
    assert_eq!(s.duration, Duration::from_secs(20));
    assert_eq!(s.recovery, Duration::from_secs(5));
    // Sorted by time; each step remembers its line.
    assert_eq!(s.timeline[0].command.to_string(), "kill 2");
    assert_eq!(s.timeline[0].line, 27);
    assert_eq!(s.timeline[1].until, Some(Duration::from_secs(15)));
    assert!(s.checks.counter && !s.checks.linearizable && s.checks.invariants && s.checks.liveness);
    assert_eq!(s.checks.liveness_bound, Duration::from_secs(3));
    let n = s.nemesis.as_ref().unwrap();
    assert_eq!(n.kinds, vec![NemesisKind::Kill, NemesisKind::Pause]);
    assert_eq!(s.beyond_tolerance.len(), 1);
}

#[test]
fn an_empty_file_is_a_quiet_three_node_run_with_defaults() {
    let s = parse("").unwrap();
    assert_eq!(s.cluster.nodes, 3);
    assert_eq!(s.workload.kind, WorkloadKind::Counter);
    assert_eq!(s.duration, Duration::from_secs(30));
    assert!(s.final_heal);
    assert!(s.timeline.is_empty() && s.nemesis.is_none());
}

#[test]
fn a_plan_prints_every_setting_and_is_the_same_for_the_same_seed() {
    let s = parse(FULL).unwrap();
    let a = s.plan(9);
    assert_eq!(a, s.plan(9));
    let text = a.describe();
    for want in [
        "seed                   9",
        "nodes                  5",
        "election-timeout       150ms..300ms",
        "step                         2s kill 2",
        "partition bridge until 15s",
        "(nemesis)",
        "beyond-tolerance       5s..15s",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The nemesis' steps sit among the timeline's in time order.
    assert!(a.steps.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(a.steps.len() > 2);
}

#[test]
fn syntax_errors_name_their_line() {
    let (line, msg) = err("name = \"x\"\n[cluster\nnodes = 3\n");
    assert_eq!(line, Some(2), "{msg}");
}

#[test]
fn unknown_keys_name_their_line() {
    let (line, msg) = err("[cluster]\nnodes = 3\nleader = 1\n");
    assert_eq!(line, Some(3), "{msg}");
    assert!(msg.contains("leader"), "{msg}");
}

#[test]
fn values_out_of_range_are_refused_with_the_range() {
    let (line, msg) = err("[cluster]\nnodes = 12\n");
    assert_eq!(line, Some(2));
    assert!(
        msg.contains("cluster.nodes = 12 is out of range: use 1 to 9"),
        "{msg}"
    );
    let (_, msg) = err("[workload]\nrate = 0\n");
    assert!(msg.contains("workload.rate = 0"), "{msg}");
    let (_, msg) = err("[cluster]\nheartbeat = \"5ms\"\n");
    assert!(msg.contains("at least 10ms"), "{msg}");
    let (_, msg) = err("[cluster]\nheartbeat = \"400ms\"\n");
    assert!(msg.contains("shorter than the election timeout"), "{msg}");
    let (_, msg) = err("[cluster]\nelection-timeout = \"300..150ms\"\n");
    assert!(msg.contains("lower bound is above"), "{msg}");
    let (_, msg) = err("[run]\nduration = \"0s\"\n");
    assert!(msg.contains("more than 0s"), "{msg}");
}

#[test]
fn wrong_types_are_refused() {
    let (line, msg) = err("[cluster]\nnodes = \"five\"\n");
    assert_eq!(line, Some(2), "{msg}");
}

#[test]
fn bad_durations_name_the_key_and_the_value() {
    let (line, msg) = err("[run]\nduration = \"soon\"\n");
    assert_eq!(line, Some(2));
    assert!(msg.contains("run.duration = \"soon\""), "{msg}");
    assert!(msg.contains("like 250ms"), "{msg}");
}

#[test]
fn timeline_times_outside_the_run_are_refused() {
    let text = "[run]\nduration = \"10s\"\n[[timeline]]\nat = \"12s\"\ndo = \"kill 1\"\n";
    let (line, msg) = err(text);
    assert_eq!(line, Some(4));
    assert!(msg.contains("after the end of the fault phase"), "{msg}");
    let text =
        "[run]\nduration = \"10s\"\n[[timeline]]\nat = \"5s\"\ndo = \"kill 1\"\nuntil = \"4s\"\n";
    let (line, msg) = err(text);
    assert_eq!(line, Some(6));
    assert!(msg.contains("must be after"), "{msg}");
}

#[test]
fn timeline_commands_go_through_the_vocabulary() {
    let (line, msg) = err("[[timeline]]\nat = \"1s\"\ndo = \"explode 2\"\n");
    assert_eq!(line, Some(3));
    assert!(
        msg.contains("`explode 2`: unknown command `explode`"),
        "{msg}"
    );
    let (line, msg) = err("[cluster]\nnodes = 3\n[[timeline]]\nat = \"1s\"\ndo = \"kill 7\"\n");
    assert_eq!(line, Some(5));
    assert!(msg.contains("no node 7"), "{msg}");
}

#[test]
fn unknown_fault_kinds_and_empty_nemeses_are_refused() {
    let (line, msg) = err("[nemesis]\nkinds = [\"kill\",\n \"meteor\"]\n");
    assert_eq!(line, Some(3));
    assert!(msg.contains("unknown fault kind \"meteor\""), "{msg}");
    assert!(msg.contains("kill, pause, partition"), "{msg}");
    let (_, msg) = err("[nemesis]\nkinds = []\n");
    assert!(msg.contains("nemesis.kinds is empty"), "{msg}");
    let (_, msg) = err("[cluster]\nnodes = 3\n[nemesis]\nkinds = [\"kill\"]\nmax-down = 4\n");
    assert!(msg.contains("nemesis.max-down = 4"), "{msg}");
}

#[test]
fn checks_must_fit_the_workload_and_expect_must_be_a_verdict() {
    let (_, msg) = err("[workload]\nkind = \"counter\"\n[checks]\nlinearizable = true\n");
    assert!(msg.contains("needs workload.kind = \"lin-kv\""), "{msg}");
    let (_, msg) = err("[workload]\nkind = \"bank\"\n");
    assert!(msg.contains("workload.kind = \"bank\""), "{msg}");
    let (line, msg) = err("expect = \"maybe\"\n");
    assert_eq!(line, Some(1));
    assert!(msg.contains("use \"valid\" or \"invalid\""), "{msg}");
}

#[test]
fn seeds_above_i64_are_written_as_strings_and_read_back() {
    let s = parse("[cluster]\nseed = \"17834951883251550270\"\n").unwrap();
    assert_eq!(s.cluster.seed, Some(17_834_951_883_251_550_270));
    let s = parse("[cluster]\nseed = 7\n").unwrap();
    assert_eq!(s.cluster.seed, Some(7));
    let (line, msg) = err("[cluster]\nseed = -1\n");
    assert_eq!(line, Some(2));
    assert!(msg.contains("cluster.seed must be a number"), "{msg}");
}

#[test]
fn lin_kv_clients_and_keys_other_than_the_workload_s_are_refused() {
    let (line, msg) = err("[workload]\nkind = \"lin-kv\"\nclients = 16\n");
    assert_eq!(line, Some(3));
    assert!(msg.contains("workload.clients = 16"), "{msg}");
    assert!(parse("[workload]\nkind = \"lin-kv\"\nclients = 8\nkeys = 5\n").is_ok());
}

#[test]
fn a_step_may_name_only_nodes_that_exist_by_then() {
    let file = |remove_at: &str| {
        format!(
            "[run]\nduration = \"20s\"\n\n[[timeline]]\nat = \"5s\"\ndo = \"add\"\n\n\
             [[timeline]]\nat = \"{remove_at}\"\ndo = \"remove 4\"\n"
        )
    };
    let real = &super::validate::validate_line;
    // Node 4 exists once the add at 5 s has run, not at 2 s.
    let e = parse_scenario(Path::new("s.toml"), &file("2s"), real).unwrap_err();
    assert_eq!(e.line, Some(10), "{e}");
    assert!(e.message.contains("there is no node 4"), "{e}");
    assert!(parse_scenario(Path::new("s.toml"), &file("8s"), real).is_ok());
}

#[test]
fn add_learner_counts_as_adding_a_node() {
    // tester2 item 9 (/work/tester2/repro/add-learner-validate.toml): `promote 4` after `add --learner` was
    // refused at load ("there is no node 4 at this step"), so the export of any session using it could not rerun.
    let file = "[run]\nduration = \"10s\"\n\n[[timeline]]\nat = \"2s\"\ndo = \"add --learner\"\n\n\
                [[timeline]]\nat = \"5s\"\ndo = \"promote 4\"\n";
    let real = &super::validate::validate_line;
    let s = parse_scenario(Path::new("s.toml"), file, real);
    assert!(s.is_ok(), "{:?}", s.err());
}

#[test]
fn a_misspelt_partition_shape_fails_at_load_naming_its_line() {
    // Issue 19: `partition hlaves` passed validation and failed mid-run.
    let (line, msg) =
        err("[run]\nduration = \"10s\"\n\n[[timeline]]\nat = \"1s\"\ndo = \"partition hlaves\"\n");
    assert_eq!(line, Some(6), "{msg}");
    assert!(
        msg.contains("`partition hlaves`: `hlaves` is not a partition shape"),
        "{msg}"
    );
}

/// Tester C3: `--scale 0.5` printed a 2 s step as `step 1s cut 1->2 for 10s` (its own `for` unscaled), and
/// `--scale 20` on `duration = "168h"` passed `--dry-run` as `duration 201600m`, past the 7-day limit.
#[test]
fn scaling_scales_a_step_s_own_duration_and_keeps_the_7_day_limit() {
    let s = parse(
        "[run]\nduration = \"20s\"\n[[timeline]]\nat = \"2s\"\ndo = \"partition halves for 10s\"\n",
    )
    .unwrap();
    let half = s.scaled(0.5).unwrap();
    assert_eq!(half.duration, Duration::from_secs(10));
    assert_eq!(half.timeline[0].at, Duration::from_secs(1));
    assert_eq!(
        half.timeline[0].command.to_string(),
        "partition halves for 5s"
    );
    let week = parse("[run]\nduration = \"168h\"\n").unwrap();
    let e = week.scaled(20.0).unwrap_err();
    assert!(
        e.contains("--scale 20") && e.contains("7 days") && e.contains("run.duration"),
        "{e}"
    );
    let e = s.scaled(100_000.0).unwrap_err();
    assert!(e.contains("7 days"), "{e}");
}

#[test]
fn maelstrom_workloads_need_a_maelstrom_node_and_a_maelstrom_node_has_no_counter() {
    // Issue 22: a scenario of Maelstrom's g-counter runs it; one without a Maelstrom node is refused at its line.
    let s = parse("[cluster]\nmaelstrom = \"/bin/mynode\"\n[workload]\nkind = \"g-counter\"\n")
        .unwrap();
    assert_eq!(
        s.workload.kind,
        WorkloadKind::Maelstrom(crate::command::WorkloadKind::GCounter)
    );
    assert!(!s.checks.counter && !s.checks.linearizable);
    let (line, msg) = err("[workload]\nkind = \"broadcast\"\n");
    assert_eq!(line, Some(2));
    assert!(msg.contains("cluster.maelstrom"), "{msg}");
    let (line, msg) =
        err("[cluster]\nmaelstrom = \"/bin/mynode\"\n[workload]\nkind = \"counter\"\n");
    assert_eq!(line, Some(4));
    assert!(msg.contains("\"g-counter\""), "{msg}");
    // With no workload named, a Maelstrom node runs lin-kv.
    let s = parse("[cluster]\nmaelstrom = \"/bin/mynode\"\n").unwrap();
    assert_eq!(s.workload.kind, WorkloadKind::LinKv);
    let (_, msg) = err("[workload]\nkind = \"gossip\"\n");
    assert!(msg.contains("\"kafka\""), "{msg}");
}

#[test]
fn protocol_names_squall_s_own_node_with_that_core_as_up_s_flag_does() {
    // Issue 23: `protocol = "paxos"` is `squall up --protocol paxos`, the kind `paxos`.
    let s = parse("[cluster]\nprotocol = \"paxos\"\n").unwrap();
    assert_eq!(s.cluster.protocol, Some(Protocol::Paxos));
    assert_eq!(s.cluster.kind.as_deref(), Some("paxos"));
    let s = parse("[cluster]\nprotocol = \"raft\"\n").unwrap();
    assert_eq!(s.cluster.protocol, Some(Protocol::Raft));
    assert_eq!(s.cluster.kind.as_deref(), Some(crate::kind::DEFAULT));
    // Beside a kind that agrees: accepted.
    let s = parse("[cluster]\nkind = \"paxos\"\nprotocol = \"paxos\"\n").unwrap();
    assert_eq!(s.cluster.kind.as_deref(), Some("paxos"));
    assert!(parse("[cluster]\nkind = \"squall\"\nprotocol = \"raft\"\n").is_ok());
    // No protocol line: none named, the kind as written.
    let s = parse("[cluster]\nkind = \"paxos\"\n").unwrap();
    assert_eq!(s.cluster.protocol, None);
    // The dry run prints it.
    let d = parse("[cluster]\nprotocol = \"paxos\"\n")
        .unwrap()
        .plan(1)
        .describe();
    assert!(d.contains("protocol") && d.contains("paxos"), "{d}");
}

#[test]
fn a_protocol_that_disagrees_with_the_kind_or_is_unknown_is_refused_at_its_line() {
    let (line, msg) = err("[cluster]\nkind = \"etcd\"\nprotocol = \"paxos\"\n");
    assert_eq!(line, Some(3));
    assert!(
        msg.contains("cluster.protocol = \"paxos\"")
            && msg.contains("cluster.kind = \"etcd\" (line 2)")
            && msg.contains("drop one"),
        "{msg}"
    );
    let (line, msg) = err("[cluster]\nprotocol = \"raft\"\nkind = \"paxos\"\n");
    assert_eq!(line, Some(2));
    assert!(msg.contains("runs node kind \"squall\""), "{msg}");
    let (line, msg) = err("[cluster]\nnodes = 3\nprotocol = \"zab\"\n");
    assert_eq!(line, Some(3));
    assert!(msg.contains("use \"raft\" or \"paxos\""), "{msg}");
    let (line, msg) = err("[cluster]\nmaelstrom = \"/bin/n\"\nprotocol = \"raft\"\n");
    assert_eq!(line, Some(3));
    assert!(msg.contains("cluster.maelstrom"), "{msg}");
}

#[test]
fn run_s_protocol_overrides_the_file_s_own_node_and_refuses_other_kinds() {
    let s = parse("[cluster]\nkind = \"paxos\"\n").unwrap();
    let raft = s.with_protocol(Protocol::Raft).unwrap();
    assert_eq!(raft.cluster.kind.as_deref(), Some(crate::kind::DEFAULT));
    assert_eq!(raft.cluster.protocol, Some(Protocol::Raft));
    let paxos = parse("").unwrap().with_protocol(Protocol::Paxos).unwrap();
    assert_eq!(paxos.cluster.kind.as_deref(), Some("paxos"));
    let e = parse("[cluster]\nkind = \"etcd\"\n")
        .unwrap()
        .with_protocol(Protocol::Paxos)
        .unwrap_err();
    assert!(
        e.contains("--protocol paxos") && e.contains("`etcd`"),
        "{e}"
    );
    let e = parse("[cluster]\nmaelstrom = \"/bin/n\"\n")
        .unwrap()
        .with_protocol(Protocol::Raft)
        .unwrap_err();
    assert!(e.contains("Maelstrom"), "{e}");
    // The dueling-proposers switch belongs to Paxos: a Raft run of it is refused before anything starts.
    let dueling = parse("[cluster]\nkind = \"paxos\"\nnode-args = [\"--no-leases\"]\n").unwrap();
    let e = dueling.with_protocol(Protocol::Raft).unwrap_err();
    assert!(e.contains("--no-leases"), "{e}");
    assert!(dueling.with_protocol(Protocol::Paxos).is_ok());
}
