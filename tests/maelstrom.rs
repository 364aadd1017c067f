//! Maelstrom nodes under squall, end to end: `squall up --maelstrom NODE` runs the Python nodes of
//! tests/maelstrom-nodes as real processes, squall's proxies carry every message between them, squall's
//! clients run Maelstrom's lin-kv workload, and the linearizability check judges the history — a correct
//! node passes through a leader kill and restart, a one-way cut, a loss limited to one message type and
//! stepped messages; a node that serves reads from a local cache fails; a node writing garbage keeps going.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::maelstrom::{Session, WAIT, node_script, run_scenario_text};

#[test]
fn a_correct_lin_kv_node_passes_through_kill_restart_one_way_cut_filtered_loss_and_stepping() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "7",
            "--workload",
            "lin-kv",
            "--rate",
            "60",
        ],
        &[],
    );
    let mut ops = s.passes_with_ops(0, 40).0;

    // n1 holds the store: kill it, then restart it; the new process gets `init` again.
    s.ok("kill 1");
    s.out.wait_for("n1 to end", WAIT, |l| {
        (l.contains("n1") && (l.contains("killed") || l.contains("exited"))).then_some(())
    });
    s.ok("restart 1");
    ops = s.passes_with_ops(ops, 40).0;
    let inits = s.log_of(1).matches("init: ['n1', 'n2', 'n3']").count();
    assert_eq!(
        inits,
        2,
        "n1 was initialised once per process:\n{}",
        s.log_of(1)
    );

    // A one-way cut: n2's forwards never reach n1, n3's do. The history stays linearizable.
    let before = Session::kind_counts(&s.link(2, 1), "read");
    s.ok("cut 2->1");
    ops = s.passes_with_ops(ops, 30).0;
    // As below: the history grows until n2 has forwarded a read to n1 under the cut, or the deadline passes.
    let deadline = Instant::now() + WAIT;
    let (cut, after) = loop {
        let cut = s.link(2, 1);
        let after = Session::kind_counts(&cut, "read");
        if after.1 > before.1 || Instant::now() > deadline {
            break (cut, after);
        }
        ops = s.passes_with_ops(ops, 10).0;
    };
    assert!(
        after.1 > before.1,
        "reads on the cut link were dropped: {cut}"
    );
    let healthy = s.link(3, 1);
    assert!(Session::kind_counts(&healthy, "read").0 > 0, "{healthy}");
    s.ok("heal");

    // Loss limited to one type: every forwarded write to n1 is lost, reads still pass.
    // The counts are read once the fault is in force, so every write counted after them met it.
    s.ok("loss *->1 100% only write");
    let line = s.link(3, 1);
    let before = (
        Session::kind_counts(&line, "write"),
        Session::kind_counts(&line, "read"),
    );
    // Which node a client's operation goes to is up to the workload, so the history grows until n3 has
    // forwarded both a write and a read to n1 (or the deadline passes), not by a fixed number of operations.
    let deadline = Instant::now() + WAIT;
    let (line, writes, reads) = loop {
        ops = s.passes_with_ops(ops, 10).0;
        let line = s.link(3, 1);
        let (writes, reads) = (
            Session::kind_counts(&line, "write"),
            Session::kind_counts(&line, "read"),
        );
        if (writes.0 > before.0.0 && reads.0 > before.1.0) || Instant::now() > deadline {
            break (line, writes, reads);
        }
    };
    assert!(writes.0 > before.0.0, "writes were sent on 3->1: {line}");
    assert_eq!(
        writes.0 - before.0.0,
        writes.1 - before.0.1,
        "every new write on 3->1 was dropped: {line}"
    );
    assert!(reads.0 > before.1.0, "reads were sent on 3->1: {line}");
    assert_eq!(reads.1, before.1.1, "no read on 3->1 was dropped: {line}");
    s.ok("heal");

    // Hold n3's messages to n1, read one held message, step it, then release the rest.
    s.ok("hold 3->1");
    let deadline = Instant::now() + WAIT;
    let held = loop {
        writeln!(s.stdin, "held").unwrap();
        let answer = s.out.wait_for("the held listing", WAIT, |l| {
            (l.starts_with("held:") || l.starts_with("ok:")).then(|| l.to_string())
        });
        if answer.starts_with("held:") {
            s.out.wait_for("the end of the held listing", WAIT, |l| {
                l.starts_with("ok:").then_some(())
            });
            break answer;
        }
        assert!(Instant::now() < deadline, "nothing was held on 3->1");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        held.contains("n3->n1") && held.contains("key="),
        "a held message reads as what it is: {held}"
    );
    // `links` counts the held messages on their link (it said `held-now 0` while `held` listed them).
    let line = s.link(3, 1);
    assert!(
        line.contains(" held-now ") && !line.contains(" held-now 0 "),
        "the held messages are counted on 3->1: {line}"
    );
    let stepped = s.ok("step 3->1 1");
    assert!(stepped.contains("n3->n1"), "{stepped}");
    s.ok("release 3->1");
    s.passes_with_ops(ops, 30);
    s.quit();
}

#[test]
fn a_node_serving_reads_from_a_local_cache_fails_the_linearizability_check() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "8",
            "--workload",
            "lin-kv",
            "--rate",
            "80",
        ],
        &[("WRONG", "1")],
    );
    let deadline = Instant::now() + WAIT;
    let verdict = loop {
        let answer = s.check();
        if answer.starts_with("error: ") && !answer.contains("nothing to judge") {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "the stale reads were never caught: {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(verdict.contains("FAILED"), "{verdict}");
    s.quit();
}

#[test]
fn a_node_writing_garbage_to_stdout_is_logged_and_counted_and_the_cluster_keeps_going() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "9",
            "--workload",
            "lin-kv",
            "--rate",
            "40",
        ],
        &[("GARBAGE", "1")],
    );
    s.passes_with_ops(0, 60);
    let log = s.log_of(2);
    assert!(
        log.contains("dropped line #1 the node wrote: not a Maelstrom message"),
        "{log}"
    );
    assert!(log.contains("unknown destination `n99`"), "{log}");
    let last = log
        .lines()
        .filter_map(|l| {
            l.split("dropped line #")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        last >= 30,
        "every garbage line was counted (the last number {last}):\n{log}"
    );
    s.quit();
}

#[test]
fn an_echo_node_answers_squall_s_client_and_a_missing_node_program_exits_2() {
    let mut s = Session::start("echo.py", &["-n", "2"], &[]);
    let addrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.cdir().join("node-2/addr.json")).unwrap()).unwrap();
    let mut conn = TcpStream::connect(addrs["client"].as_str().unwrap()).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let req = br#"{"src":"c9","dest":"n2","body":{"type":"echo","msg_id":1,"echo":"hi there"}}"#;
    conn.write_all(&(req.len() as u32).to_be_bytes()).unwrap();
    conn.write_all(req).unwrap();
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    conn.read_exact(&mut reply).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(v["src"], "n2");
    assert_eq!(v["dest"], "c9");
    assert_eq!(v["body"]["type"], "echo_ok");
    assert_eq!(v["body"]["echo"], "hi there");
    assert_eq!(v["body"]["in_reply_to"], 1);
    // A Maelstrom node reports its process only: the rest is `—`, never a guess (once the first poll landed).
    let deadline = Instant::now() + WAIT;
    loop {
        s.ok("status");
        let n1 = s
            .out
            .seen
            .iter()
            .rev()
            .find(|l| l.starts_with("status: n1 "))
            .cloned()
            .unwrap_or_default();
        if !n1.contains("no status yet") {
            assert!(n1.contains("running pid") && n1.contains("term —"), "{n1}");
            break;
        }
        assert!(Instant::now() < deadline, "n1 was never polled: {n1}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What it does report: its messages, received/sent by type — n2 got the client's `echo` and answered
    // `echo_ok` (the counts reach the session at most once a second).
    let deadline = Instant::now() + WAIT;
    loop {
        s.ok("status");
        let n2 = s
            .out
            .seen
            .iter()
            .rev()
            .find(|l| l.starts_with("status: n2 "))
            .cloned()
            .unwrap_or_default();
        // The poll that first saw the echo may have come before the node answered it: poll on.
        if n2.contains("echo 1/0") && n2.contains("echo_ok 0/1") {
            assert!(
                n2.contains(" messages in ") && n2.contains("init 1/0"),
                "{n2}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n2's status never counted the echo: {n2}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `squall status --json` reads the same counts from the bridges.
    let st = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["status", "--json", "--dir"])
        .arg(s.cdir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n2 = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 2)
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(n2["messages"]["in"]["echo"], 1, "{text}");
    assert_eq!(n2["messages"]["out"]["echo_ok"], 1, "{text}");
    assert_eq!(n2["role"], serde_json::Value::Null, "{text}");
    let plain = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["status", "--dir"])
        .arg(s.cdir())
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.contains("MESSAGES (received/sent by type)") && plain.contains("echo_ok 0/1"),
        "{plain}"
    );
    // A filter the kind does not label is refused, naming the kind's labels; nothing changes.
    writeln!(s.stdin, "loss *->1 100% only vote").unwrap();
    let refused = s.out.wait_for("the refusal", WAIT, |l| {
        (l.starts_with("error:") || l.starts_with("ok:")).then(|| l.to_string())
    });
    assert!(
        refused.starts_with("error: node kind `maelstrom` has no message kind `vote`"),
        "{refused}"
    );
    // fixes3 item 4: `wipe` says what wiping means for a Maelstrom node; it promised squall's node's recovery.
    let wiped = s.ok("wipe 2");
    assert!(
        wiped.contains("starts as if new") && !wiped.contains("recovers before it votes"),
        "{wiped}"
    );
    s.quit();

    // A program that is not a Maelstrom node: the start fails and says so from the node's log.
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    let (code, err) = support::up_ended(&["-n", "2", "--maelstrom", "/bin/true"], Some(&cluster));
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("before answering `init` with `init_ok`"),
        "{err}"
    );

    // The bare kind has no node to run.
    let bare = dir.path().join("bare");
    let (code, err) = support::up_ended(&["--node-kind", "maelstrom"], Some(&bare));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("name it with `--maelstrom PATH`"), "{err}");

    let (code, err) = support::up_ended(&["--maelstrom", "/nonexistent/mynode"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--maelstrom /nonexistent/mynode: no such file"),
        "{err}"
    );
}

/// `squall run` of a scenario whose `[cluster] maelstrom` names the node: its exit code and verdict line.
fn run_scenario(node: &str, env: &[(&str, &str)], expect: &str) -> (Option<i32>, String) {
    run_scenario_text(
        &format!(
            r#"name = "maelstrom-lin-kv"
expect = "{expect}"

[cluster]
nodes = 3
seed = 12
maelstrom = "{node}"

[workload]
kind = "lin-kv"
rate = 60

[run]
duration = "8s"
recovery = "2s"

# A Maelstrom node reports no leader, so there is no leader for the liveness check to wait for.
[checks]
liveness = false

[[timeline]]
at = "2s"
do = "kill 1"

[[timeline]]
at = "3s"
do = "restart 1"

[[timeline]]
at = "4s"
do = "loss 2->1 100% only write"
until = "6s"
"#,
            node = node_script(node).display()
        ),
        env,
    )
}

#[test]
fn a_scenario_naming_a_maelstrom_node_runs_to_its_verdict_correct_valid_and_wrong_invalid() {
    let (code, out) = run_scenario("linkv.py", &[], "valid");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("verdict: valid (expected valid)"), "{out}");
    let (code, out) = run_scenario("linkv.py", &[("WRONG", "1")], "invalid");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("verdict: invalid (expected invalid)"), "{out}");
}

#[test]
fn a_scenario_naming_a_maelstrom_node_and_another_kind_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("both.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"both\"\n\n[cluster]\nnodes = 3\nkind = \"squall\"\nmaelstrom = \"{}\"\n",
            node_script("echo.py").display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--dry-run"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("both.toml:6:"), "the line is named: {err}");
    assert!(
        err.contains("drop cluster.kind and cluster.node-bin"),
        "{err}"
    );
}

#[test]
fn a_node_calling_squall_s_lin_kv_service_passes_while_a_node_is_killed_and_restarted() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "10",
            "--workload",
            "lin-kv",
            "--rate",
            "60",
        ],
        &[("SERVICE", "1")],
    );
    let mut ops = s.passes_with_ops(0, 40).0;
    s.ok("kill 1");
    ops = s.passes_with_ops(ops, 40).0;
    s.ok("restart 1");
    s.ok("cut 2<->3");
    s.passes_with_ops(ops, 40);
    for n in [2, 3] {
        let log = s.log_of(n);
        assert!(
            log.contains("answered by the lin-kv service"),
            "n{n}:\n{log}"
        );
    }
    s.quit();
}

#[test]
fn the_report_draws_a_maelstrom_session_s_messages_labelled_by_body_type_with_the_cut_ones_crossed()
{
    let mut s = Session::start(
        "broadcast.py",
        &[
            "-n",
            "3",
            "--seed",
            "11",
            "--workload",
            "broadcast",
            "--rate",
            "40",
        ],
        &[],
    );
    // Gossip flows between the nodes; a one-way cut drops n1's gossip to n2 until enough has been dropped.
    s.ok("cut 1->2");
    s.dropped_at_least(1, 2, "gossip", 3);
    s.ok("heal");
    let dir = s.quit();
    let cdir = dir.path().join("cluster");
    let html = dir.path().join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("report")
        .arg(cdir.join("events.jsonl.gz"))
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(&html).unwrap();
    let flow = report
        .split("Message flow</h2>")
        .nth(1)
        .unwrap_or_else(|| panic!("no message-flow section"));
    // The window is the cut's; the arrows carry the types the node wrote, `gossip_ok` (which the classifier
    // has no label for) included; n1's gossip to n2 stops under a cross.
    assert!(
        flow.contains("data-kind=\"gossip_ok\""),
        "an arrow labelled gossip_ok: {}",
        &flow[..flow.len().min(3000)]
    );
    assert!(
        flow.contains("class=\"msg\" data-kind=\"gossip\""),
        "{}",
        &flow[..flow.len().min(3000)]
    );
    assert!(
        flow.contains("<title>gossip n1→n2 dropped (cut)</title>"),
        "{}",
        &flow[..flow.len().min(3000)]
    );
    assert!(
        !flow.contains("data-kind=\"other\""),
        "no type is lost to `other`"
    );
    for lane in ["n1", "n2", "n3"] {
        assert!(flow.contains(&format!(">{lane}</text>")), "lane {lane}");
    }
}

/// Tester 10's finding 7: a clock fault on a Maelstrom node was refused ("did not load squall's time shim")
/// although the node program, the bridge's child, had loaded it. It is done, and the history stays
/// linearizable through it.
#[test]
fn a_clock_fault_on_a_maelstrom_node_reaches_its_program_through_the_bridge() {
    let mut s = Session::start(
        "linkv.py",
        &[
            "-n",
            "3",
            "--seed",
            "12",
            "--disk-faults",
            "--workload",
            "lin-kv",
            "--rate",
            "30",
        ],
        &[],
    );
    let ops = s.passes_with_ops(0, 20).0;
    let a = s.answer("clock 2 +1h");
    assert!(
        a.starts_with("ok: ") && a.contains("clock of node 2: +1h"),
        "{a}"
    );
    s.passes_with_ops(ops, 20);
    let healed = s.answer("heal");
    assert!(
        healed.starts_with("ok: ") && healed.contains("clock"),
        "{healed}"
    );
    s.quit();
}
