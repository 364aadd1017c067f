//! Maelstrom's workloads under squall, end to end (issue 22): `squall up --maelstrom NODE --workload W` runs
//! the Python nodes of tests/maelstrom-nodes as real processes with squall's clients speaking Maelstrom's own
//! request and reply bodies, and `check` judges each workload with its checker — a correct node passes under
//! faults, and the node's `WRONG=1` mode is caught (every checker can fail). Also: the weaker services
//! `seq-kv` and `lww-kv` expose a lin-kv node built on them, malformed lines reach the feed (rate-limited and
//! counted), a node may report its role and term to the reserved destination `squall`, a Maelstrom session
//! refuses squall's counter workload naming `g-counter`, and its exported scenario names the node program.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::maelstrom::{Session, WAIT, node_script, run_scenario_text};

/// Kill node 2, let the workload run on, restart it: the check passes before, during and after.
fn through_kill_and_restart(s: &mut Session) -> u64 {
    let (ops, _) = s.passes_with_ops(0, 30);
    s.ok("kill 2");
    let (ops, _) = s.passes_with_ops(ops, 20);
    s.ok("restart 2");
    s.passes_with_ops(ops, 30).0
}

#[test]
fn echo_passes_through_a_kill_and_restart_and_a_changed_echo_fails() {
    let mut s = Session::workload("echo.py", "echo", "21", &[]);
    through_kill_and_restart(&mut s);
    s.quit();
    let mut s = Session::workload("echo.py", "echo", "22", &[("WRONG", "1")]);
    let verdict = s.fails();
    assert!(verdict.contains("echo check FAILED"), "{verdict}");
    s.quit();
}

#[test]
fn unique_ids_pass_through_a_kill_and_restart_and_repeated_ids_fail() {
    let mut s = Session::workload("unique_ids.py", "unique-ids", "23", &[]);
    through_kill_and_restart(&mut s);
    s.quit();
    let mut s = Session::workload("unique_ids.py", "unique-ids", "24", &[("WRONG", "1")]);
    let verdict = s.fails();
    assert!(
        verdict.contains("unique-ids check FAILED") && verdict.contains("given out"),
        "{verdict}"
    );
    s.quit();
}

#[test]
fn broadcast_on_a_grid_survives_loss_of_gossip_and_a_restart_and_reports_latency_and_messages() {
    let mut s = Session::workload("broadcast.py", "broadcast", "25", &[]);
    let (ops, _) = s.passes_with_ops(0, 30);
    // While n3 cannot reach its only neighbour its values cannot spread (a check now would rightly fail):
    // the faults act on gossip, then the check after the heal finds every value everywhere.
    s.ok("loss *->2 50% only gossip");
    s.ok("cut 3->1");
    s.dropped_at_least(3, 1, "gossip", 10);
    s.dropped_at_least(1, 2, "gossip", 5);
    s.ok("heal");
    s.ok("kill 3");
    s.ok("restart 3");
    let (_, answer) = s.passes_with_ops(ops, 30);
    assert!(
        answer.contains("stable latency p50") && answer.contains("messages per operation"),
        "{answer}"
    );
    // The grid went to every node before the first operation.
    let log = std::fs::read_to_string(s.cdir().join("node-1/node.log")).unwrap();
    assert!(log.contains("neighbours ['n2'"), "{log}");
    s.quit();
    let mut s = Session::workload("broadcast.py", "broadcast", "26", &[("WRONG", "1")]);
    let verdict = s.fails();
    assert!(
        verdict.contains("broadcast check FAILED") && verdict.contains("never read"),
        "{verdict}"
    );
    s.quit();
}

#[test]
fn g_counter_passes_through_a_restart_and_a_one_way_cut_and_a_counter_that_never_gossips_fails() {
    let mut s = Session::workload("gcounter.py", "g-counter", "27", &[]);
    let ops = through_kill_and_restart(&mut s);
    s.ok("cut 1->3");
    s.passes_with_ops(ops, 20);
    s.quit();
    let mut s = Session::workload("gcounter.py", "g-counter", "28", &[("WRONG", "1")]);
    let verdict = s.fails();
    assert!(verdict.contains("g-counter check FAILED"), "{verdict}");
    s.quit();
}

#[test]
fn kafka_passes_through_a_follower_restart_and_logs_kept_per_node_fail() {
    let mut s = Session::workload("kafka.py", "kafka", "29", &[]);
    through_kill_and_restart(&mut s);
    s.quit();
    let mut s = Session::workload("kafka.py", "kafka", "30", &[("WRONG", "1")]);
    let verdict = s.fails();
    assert!(
        verdict.contains("kafka check FAILED") && verdict.contains("offset"),
        "{verdict}"
    );
    s.quit();
}

#[test]
fn a_lin_kv_node_built_on_seq_kv_or_lww_kv_is_caught_by_the_linearizability_check() {
    for service in ["seq-kv", "lww-kv"] {
        let mut s = Session::start(
            "linkv.py",
            &[
                "-n",
                "3",
                "--seed",
                "31",
                "--workload",
                "lin-kv",
                "--rate",
                "80",
            ],
            &[("SERVICE", service)],
        );
        let verdict = s.fails();
        assert!(
            verdict.contains("linearizability check FAILED"),
            "{service}: {verdict}"
        );
        let log = std::fs::read_to_string(s.cdir().join("node-2/node.log")).unwrap();
        assert!(
            log.contains(&format!("answered by the {service} service")),
            "{log}"
        );
        s.quit();
    }
}

#[test]
fn malformed_lines_show_in_the_feed_rate_limited_and_counted() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "32",
            "--workload",
            "lin-kv",
            "--rate",
            "40",
        ],
        &[("GARBAGE", "1")],
    );
    let started = Instant::now();
    // Three garbage lines before every answer: more than a hundred within a few seconds.
    let first = s.out.wait_for("a malformed line in the feed", WAIT, |l| {
        (l.contains("n2 wrote") && l.contains("malformed line")).then(|| l.to_string())
    });
    assert!(first.contains("dropped"), "{first}");
    let counted = s.out.wait_for("a feed line counting many", WAIT, |l| {
        let n: u64 = l
            .split(" malformed lines in all")
            .next()?
            .rsplit(' ')
            .next()?
            .trim_start_matches('(')
            .parse()
            .ok()?;
        (l.contains("n2 ") && n >= 30).then_some(n)
    });
    let elapsed = started.elapsed().as_secs() + 2;
    let shown = s
        .out
        .seen
        .iter()
        .filter(|l| l.contains("n2 wrote") && l.contains("malformed line"))
        .count() as u64;
    assert!(
        shown <= elapsed,
        "{counted} malformed lines of n2 were shown in {shown} feed lines in about {elapsed} s: at most \
         one a second"
    );
    s.passes_with_ops(0, 20);
    s.quit();
}

#[test]
fn a_node_reporting_to_squall_shows_its_role_and_term_in_status() {
    let mut s = Session::start("echo.py", &["-n", "3"], &[("REPORT", "1")]);
    let deadline = Instant::now() + WAIT;
    let line = |s: &Session, n: u64| {
        s.out
            .seen
            .iter()
            .rev()
            .find(|l| l.starts_with(&format!("status: n{n} ")))
            .cloned()
            .unwrap_or_default()
    };
    loop {
        s.ok("status");
        let (n1, n2) = (line(&s, 1), line(&s, 2));
        if n1.contains("leader") && n2.contains("follower") {
            assert!(n1.contains("term 2"), "{n1}");
            assert!(n2.contains("term 2"), "{n2}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes' reports never showed:\n{n1}\n{n2}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The reports are squall's, not malformed lines.
    let log = std::fs::read_to_string(s.cdir().join("node-1/node.log")).unwrap();
    assert!(!log.contains("unknown destination `squall`"), "{log}");
    s.quit();
}

#[test]
fn squall_s_counter_workload_is_refused_on_a_maelstrom_session_naming_g_counter() {
    let mut s = Session::start("linkv.py", &["-n", "2"], &[]);
    let refused = s.answer("workload counter");
    assert!(
        refused.starts_with("error:") && refused.contains("g-counter"),
        "{refused}"
    );
    // The workload did not switch: `workload on` runs the session's default for a Maelstrom node, lin-kv.
    s.ok("workload on");
    let (_, answer) = s.passes_with_ops(0, 20);
    assert!(answer.contains("linearizability check passed"), "{answer}");
    s.ok("workload g-counter");
    s.quit();
}

#[test]
fn a_maelstrom_session_exports_a_scenario_naming_its_node_program() {
    let s = Session::workload("echo.py", "echo", "33", &[]);
    let dir = s.quit();
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("scenario")
        .arg(dir.path().join("cluster/events.jsonl.gz"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = format!("maelstrom = \"{}\"", node_script("echo.py").display());
    assert!(text.contains(&want), "{text}");
    assert!(!text.contains("kind = \"maelstrom\""), "{text}");
    // The workload as the session's own (`--workload echo`), or as steps when the nodes took over 2 s to
    // come up under load (the export's rule for telling a start flag from a command).
    assert!(
        text.contains("kind = \"echo\"") || text.contains("do = \"workload echo\""),
        "{text}"
    );
}

/// `squall run` of a scenario running Maelstrom workload `workload` on `node` with the liveness check on (the
/// default): its exit code and output.
fn run_scenario(
    node: &str,
    workload: &str,
    env: &[(&str, &str)],
    expect: &str,
) -> (Option<i32>, String) {
    run_scenario_text(
        &format!(
            r#"name = "maelstrom-{workload}"
expect = "{expect}"

[cluster]
nodes = 3
seed = 40
maelstrom = "{node}"

[workload]
kind = "{workload}"
rate = 40

[run]
duration = "7s"
recovery = "3s"

[checks]
liveness-bound = "2s"

[[timeline]]
at = "2s"
do = "kill 2"

[[timeline]]
at = "3s"
do = "restart 2"
"#,
            node = node_script(node).display()
        ),
        env,
    )
}

#[test]
fn squall_run_judges_maelstrom_workloads_and_liveness_by_completed_operations() {
    // No node reports a leader: liveness is judged by completed operations, and the workload's own check runs.
    let (code, out) = run_scenario("gcounter.py", "g-counter", &[], "valid");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("verdict: valid (expected valid)"), "{out}");
    assert!(out.contains("g-counter check passed"), "{out}");
    assert!(
        out.contains("completed operations (the nodes report no leader)"),
        "{out}"
    );
    // Nodes that stop answering: nothing completes while healthy, and liveness says so.
    let (code, out) = run_scenario("echo.py", "echo", &[("MUTE_AFTER", "20")], "invalid");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("verdict: invalid (expected invalid)"), "{out}");
    assert!(out.contains("no operation completed"), "{out}");
}
