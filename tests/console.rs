//! The headless console as a script meets it: lines print in the order things happened, every command
//! (`status` too) is answered with `ok:` or `error:`, and a line that is not a command (invalid UTF-8, 100 KB)
//! gets an `error:` without stopping the cluster or being echoed back.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{ask, wait_gone};

const WAIT: Duration = Duration::from_secs(30);

fn squall(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn the_console_orders_its_lines_answers_every_command_and_survives_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, _) =
        support::headless_with_leader(dir.path(), &["-n", "5", "--seed", "9"], WAIT);
    let pids = support::node_pids(dir.path());
    // An election with five nodes polled one after another: plenty of lines learned out of order.
    let kill = ask(&mut stdin, &mut out, "kill leader", "kill node");
    let (killed, _) = support::killed_leader(&kill).expect("the killed leader");
    out.wait_for("a new leader", WAIT, |l| {
        (l.contains(" leads term ") && !l.contains("term 1")).then_some(())
    });

    stdin.write_all(b"kill \xff\xfe 2\n").unwrap();
    out.wait_for("an error for invalid UTF-8", WAIT, |l| {
        (l.starts_with("error:") && l.contains("not valid UTF-8")).then_some(())
    });
    let long = "x".repeat(100_000);
    writeln!(stdin, "{long}").unwrap();
    let answer = out.wait_for("an error for a 100 KB line", WAIT, |l| {
        l.starts_with("error:").then(|| l.to_string())
    });
    assert!(
        answer.len() < 300,
        "the line was echoed: {} bytes",
        answer.len()
    );
    // Still running, and status answers ok.
    ask(&mut stdin, &mut out, "status", "status of 5 nodes");
    ask(&mut stdin, &mut out, "delay 2 200", "200");

    // `squall kv --peers` naming only a follower: the error says which node leads and that it was not given.
    let cluster: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cluster.json")).unwrap()).unwrap();
    let api = |id: u64| {
        cluster["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .and_then(|n| n["api"].as_str())
            .unwrap()
            .to_string()
    };
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let st = squall(&["status", "--json", "--dir"], dir.path());
        let doc: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        let follower = doc["nodes"].as_array().unwrap().iter().find(|n| {
            n["role"] == "follower" && n["leader"].as_u64().is_some_and(|l| l != n["id"])
        });
        if let Some(f) = follower {
            let (id, leader) = (f["id"].as_u64().unwrap(), f["leader"].as_u64().unwrap());
            let kv = Command::new(env!("CARGO_BIN_EXE_squall"))
                .args([
                    "kv",
                    "--timeout",
                    "2s",
                    "--peers",
                    &format!("{id}={}", api(id)),
                ])
                .args(["put", "k", "v"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&kv.stderr);
            if err.contains(&format!("names node {leader} as the leader")) {
                assert!(
                    err.contains(&format!("add {leader}=ADDR to --peers")),
                    "{err}"
                );
                assert!(!err.contains("no leader known"), "{err}");
                assert!(
                    !err.contains("ns;") && !err.contains("ns "),
                    "durations as people write them: {err}"
                );
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no follower named its leader"
        );
    }

    // A paused node: status does not wait long for it and still shows its pid.
    let p: u64 = if killed == 2 { 3 } else { 2 };
    let paused_pid = support::node_pids(dir.path())[p as usize - 1];
    ask(
        &mut stdin,
        &mut out,
        &format!("pause {p}"),
        &format!("pause node {p}"),
    );
    let st = squall(&["status", "--timeout", "30s", "--dir"], dir.path());
    let text = String::from_utf8_lossy(&st.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{p} ")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&paused_pid.to_string()) && row.contains("not answering within 1s"),
        "{row}"
    );
    ask(
        &mut stdin,
        &mut out,
        &format!("resume {p}"),
        &format!("resume node {p}"),
    );

    drop(stdin);
    out.wait_for("the end", WAIT, |l| {
        l.contains("end of input").then_some(())
    });
    assert!(child.wait().unwrap().success());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());

    // Timed lines never go back in time.
    let times: Vec<(f64, &String)> = out
        .seen
        .iter()
        .filter_map(|l| Some((support::line_secs(l)?, l)))
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[0].0 <= pair[1].0,
            "out of order:\n{}\n{}\n\nwhole output:\n{}",
            pair[0].1,
            pair[1].1,
            out.seen.join("\n")
        );
    }
}

#[test]
fn flags_and_stopped_clusters_get_messages_a_person_can_act_on() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["up", "--headless", "--heartbeat", "0ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--heartbeat 0s is shorter") && !err.contains("0ns"),
        "{err}"
    );

    let out = run(&["up", "--headless", "--rate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));

    let out = run(&["up", "--headless", "--record", "x.cast"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--record") && err.contains("--headless"),
        "{err}"
    );

    let help = String::from_utf8_lossy(&run(&["up", "--help"]).stdout).into_owned();
    assert!(help.contains("0 turns snapshots off"), "{help}");

    // Nothing listens at either address: fail at once, not after the whole --timeout.
    let closed: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let started = std::time::Instant::now();
    let out = run(&[
        "kv",
        "--timeout",
        "60s",
        "--peers",
        &format!("1=127.0.0.1:{},2=127.0.0.1:{}", closed[0], closed[1]),
        "get",
        "k",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing listens"), "{err}");
    // Generous: only catches waiting out the 60 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// Sends `line` and returns every line up to and including its `ok:`/`error:` answer.
fn answer_to(stdin: &mut impl Write, out: &mut support::Lines, line: &str) -> Vec<String> {
    writeln!(stdin, "{line}").unwrap();
    let mut got = Vec::new();
    out.wait_for(&format!("the answer to {line:?}"), WAIT, |l| {
        got.push(l.to_string());
        (l.starts_with("ok:") || l.starts_with("error:")).then_some(())
    });
    got
}

#[test]
fn help_lists_the_vocabulary_and_a_blank_line_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "1", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = support::Lines::new(child.stdout.take().unwrap());

    let help = answer_to(&mut stdin, &mut out, "help");
    let last = help.last().unwrap();
    assert!(last.starts_with("ok:"), "help answered: {help:?}");
    let listed: Vec<&String> = help.iter().filter(|l| l.starts_with("help:")).collect();
    for verb in [
        "kill",
        "partition",
        "heal",
        "remove",
        "workload",
        "status",
        "quit",
    ] {
        assert!(
            listed.iter().any(|l| l.contains(verb)),
            "`{verb}` missing from help: {help:?}"
        );
    }
    assert_eq!(
        answer_to(&mut stdin, &mut out, "?").last(),
        Some(last),
        "`?` answers as `help` does"
    );

    // A blank line (empty or only spaces) is answered like every other line, never silently skipped.
    for blank in ["", "   \t"] {
        let answer = answer_to(&mut stdin, &mut out, blank);
        assert_eq!(
            answer.last().map(String::as_str),
            Some("error: empty line; type `help` for the commands"),
            "{blank:?}: {answer:?}"
        );
    }
    ask(&mut stdin, &mut out, "status", "status of 1 nodes");

    // Tester C6: `workload off` when it was never on answered `ok: workload off at 20 writes/s`. An action
    // that did not happen is refused, saying why; the one that does happen is answered `ok`.
    for (line, answer) in [
        ("workload off", "error: the workload is already off"),
        ("workload on", "ok: workload on"),
        ("workload on", "error: the workload is already on"),
        ("workload off", "ok: workload off"),
    ] {
        let got = answer_to(&mut stdin, &mut out, line);
        assert!(
            got.last().is_some_and(|l| l.starts_with(answer)),
            "{line}: {got:?}"
        );
    }

    // `squall status` and `squall status --json` exit alike: 0 while a node answers, 1 when none does (the
    // table or the document is printed either way).
    let codes = |dir: &std::path::Path| {
        let plain = squall(&["status", "--dir"], dir);
        let json = squall(&["status", "--json", "--dir"], dir);
        let doc: serde_json::Value = serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {json:?}"));
        assert_eq!(doc["nodes"].as_array().map(Vec::len), Some(1), "{doc}");
        (plain.status.code(), json.status.code())
    };
    assert_eq!(codes(dir.path()), (Some(0), Some(0)), "running");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(codes(dir.path()), (Some(1), Some(1)), "stopped");
}

#[test]
fn isolate_is_refused_only_when_every_link_of_the_node_is_already_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, _) =
        support::headless_with_leader(dir.path(), &["-n", "3"], WAIT);
    ask(&mut stdin, &mut out, "cut 1<->2", "cut");
    ask(&mut stdin, &mut out, "cut 3->1", "cut");
    // 1->3 still carries frames: isolating node 1 cuts it.
    let answer = answer_to(&mut stdin, &mut out, "isolate 1");
    assert!(
        answer.last().is_some_and(|l| l.starts_with("ok:")),
        "isolate 1 with 1->3 still open: {answer:?}"
    );
    let answer = answer_to(&mut stdin, &mut out, "isolate 1");
    assert!(
        answer
            .last()
            .is_some_and(|l| l.starts_with("error:") && l.contains("already cut off")),
        "isolate 1 again: {answer:?}"
    );
    // A plain `heal` heals what is in force and says what; with nothing in force it did nothing, so it is
    // refused saying so (issue 19: it answered `ok: heal every network fault (none was in force)`).
    let healed = answer_to(&mut stdin, &mut out, "heal");
    assert!(
        healed
            .last()
            .is_some_and(|l| l.starts_with("ok: heal every network fault: ")),
        "heal with cuts in force: {healed:?}"
    );
    let nothing = answer_to(&mut stdin, &mut out, "heal");
    assert!(
        nothing
            .last()
            .is_some_and(|l| l.starts_with("error: nothing to heal: no fault is in force")),
        "heal with nothing in force: {nothing:?}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn restart_all_brings_back_every_node_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, _) =
        support::headless_with_leader(dir.path(), &["-n", "3"], WAIT);
    let before = support::node_pids(dir.path());
    // Every node down, as after `powercut all`.
    for id in 1..=3 {
        ask(&mut stdin, &mut out, &format!("kill {id}"), "kill node");
    }
    assert!(wait_gone(&before, Duration::from_secs(10)).is_empty());
    let answer = ask(&mut stdin, &mut out, "restart all", "restart nodes");
    assert!(
        answer.contains("1, 2 and 3") || answer.contains("1, 2, 3"),
        "{answer}"
    );
    let after = support::node_pids(dir.path());
    assert_eq!(after.len(), 3, "{after:?}");
    for pid in &after {
        assert!(
            support::alive(*pid) && !before.contains(pid),
            "pids before {before:?}, after {after:?}"
        );
    }
    out.wait_for("a leader after the restart", WAIT, |l| {
        (l.contains(" leads term ") && !l.contains("term 1 ")).then_some(())
    });
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(wait_gone(&after, Duration::from_secs(5)).is_empty());
}

#[test]
fn a_restart_that_fails_half_way_says_what_it_had_done() {
    // tester2 item 3 (issue 19): an action that fails half way says what was done and what was not. A running
    // node whose WAL is damaged in the middle is stopped by `restart`, then refuses its data: the answer
    // must say the node was stopped, not only why the new process did not come up.
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, _) =
        support::headless_with_leader(dir.path(), &["-n", "3"], WAIT);
    ask(&mut stdin, &mut out, "workload on", "workload on");
    let wal = dir.path().join("node-2").join("data").join("wal.log");
    let deadline = std::time::Instant::now() + WAIT;
    // The node preallocates its WAL: the log ends at the last non-zero byte, not at the file's end.
    let logged =
        || std::fs::read(&wal).map_or(0, |b| b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1));
    while logged() < 4_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "node 2's WAL never held 4000 bytes of log: {} bytes",
            logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ask(&mut stdin, &mut out, "workload off", "workload off");
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&wal)
            .unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(200)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(200)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
    }
    let answer = answer_to(&mut stdin, &mut out, "restart 2");
    let last = answer.last().unwrap();
    assert!(last.starts_with("error: "), "{answer:?}");
    assert!(
        last.contains("done before it failed: node 2 was stopped (it ran before)")
            && last.contains("not done: node 2 is not running again"),
        "{answer:?}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Client requests never cross a peer link on squall's kind: a fault `only client` would match nothing and
/// answer `ok` for a fault that does nothing. It is refused; peer message kinds are still taken.
#[test]
fn a_fault_only_on_client_traffic_is_refused_on_squall_s_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, _) =
        support::headless_with_leader(dir.path(), &["-n", "3"], WAIT);
    for line in ["hold * only client", "delay 1->2 50ms only client,vote"] {
        let answer = answer_to(&mut stdin, &mut out, line);
        assert!(
            answer.last().is_some_and(|l| l.starts_with("error: ")
                && l.contains("only client")
                && l.contains("nothing was done")),
            "{line}: {answer:?}"
        );
    }
    let faults = answer_to(&mut stdin, &mut out, "faults");
    assert!(
        faults.last().is_some_and(|l| l.starts_with("ok: "))
            && !faults.iter().any(|l| l.starts_with("faults:")),
        "no fault was put in place: {faults:?}"
    );
    ask(&mut stdin, &mut out, "cut 1->2 only vote", "cut");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
