//! Sessions never lose or confuse earlier sessions: a reused cluster directory gives a whole cluster and a
//! check that judges only this session, event logs are never overwritten, a session without a kept
//! directory keeps its event log somewhere durable, SIGHUP stops as cleanly as SIGTERM, and setup errors
//! exit 2.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Lines, ask, leader_term, wait_gone};

const WAIT: Duration = Duration::from_secs(30);

fn squall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_squall"))
}

fn headless(dir: &Path, extra: &[&str]) -> (Child, Lines) {
    let mut child = squall()
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Lines::new(child.stdout.take().unwrap());
    (child, out)
}

fn wait_leader(out: &mut Lines) {
    out.wait_for("a leader", WAIT, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
}

/// Polls `squall status --json --dir` until every node answers with a live pid not in `old`; panics with the
/// last answer otherwise.
fn wait_every_node_answers(dir: &Path, old: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + WAIT;
    loop {
        let st = squall()
            .args(["status", "--json", "--timeout", "1s", "--dir"])
            .arg(dir)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        let pids: Vec<u32> = doc["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|n| n["reachable"] == true)
                    .filter_map(|n| n["pid"].as_u64())
                    .map(|p| p as u32)
                    .collect()
            })
            .unwrap_or_default();
        if pids.len() == 3 && pids.iter().all(|p| !old.contains(p) && support::alive(*p)) {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "not every node of the new session answered within {WAIT:?}; last status: {doc}\n{}",
            String::from_utf8_lossy(&st.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child, stdin: std::process::ChildStdin, pids: &[u32]) {
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let left = wait_gone(pids, Duration::from_secs(5));
    assert!(left.is_empty(), "nodes left: {left:?}");
}

/// Sends `check` until the answer is not "inconclusive" (no leader for a moment); returns the answer.
fn check(stdin: &mut std::process::ChildStdin, out: &mut Lines) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        writeln!(stdin, "check").unwrap();
        let answer = out.wait_for("the check's answer", WAIT, |l| {
            (l.starts_with("ok: check") || l.starts_with("error: check")).then(|| l.to_string())
        });
        if !answer.contains("inconclusive") {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "every check was inconclusive; last: {answer}"
        );
    }
}

/// Checks until a decided check counted at least `n` acknowledged writes; returns that answer.
fn check_after_writes(stdin: &mut std::process::ChildStdin, out: &mut Lines, n: u64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = check(stdin, out);
        let acked = answer
            .split_once(" were acknowledged before the reads")
            .and_then(|(head, _)| head.rsplit(' ').next()?.parse::<u64>().ok());
        if !answer.contains("nothing to judge") && acked.is_none_or(|a| a >= n) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} writes acknowledged; last: {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_reused_directory_gives_a_whole_cluster_a_fair_check_and_a_new_event_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");

    // Session 1 writes to the counters, then stops, leaving its addresses, data and event log behind.
    let (child, mut out) = headless(&dir, &["--workload", "--rate", "50"]);
    wait_leader(&mut out);
    let old = wait_every_node_answers(&dir, &[]);
    let mut child = child;
    let mut stdin = child.stdin.take().unwrap();
    let first = check_after_writes(&mut stdin, &mut out, 30);
    assert!(first.starts_with("ok: check passed"), "{first}");
    stop(child, stdin, &old);
    let first_log = dir.join("events.jsonl.gz");
    let first_bytes = std::fs::read(&first_log).expect("session 1's event log");

    // Session 2 on the same directory: every node answers at its new address, ...
    let (mut child, mut out) = headless(&dir, &[]);
    let mut stdin = child.stdin.take().unwrap();
    wait_leader(&mut out);
    let new = wait_every_node_answers(&dir, &old);
    // ... a check before the workload ran has nothing to judge, ...
    let empty = check(&mut stdin, &mut out);
    assert!(
        empty.starts_with("error: check") && empty.contains("nothing to judge"),
        "{empty}"
    );
    // ... and once it ran, the check judges this session's writes only.
    ask(&mut stdin, &mut out, "workload on", "workload on");
    let second = check_after_writes(&mut stdin, &mut out, 10);
    assert!(second.starts_with("ok: check passed"), "{second}");
    stop(child, stdin, &new);

    // The first session's event log is untouched; the second has its own.
    assert_eq!(std::fs::read(&first_log).unwrap(), first_bytes);
    let second_log = dir.join("events-2.jsonl.gz");
    assert!(second_log.exists(), "{} missing", second_log.display());
    assert!(
        out.seen
            .iter()
            .any(|l| l.contains(&second_log.display().to_string())),
        "the session names its event log:\n{}",
        out.seen.join("\n")
    );
}

#[test]
fn events_file_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let events = tmp.path().join("run.jsonl");
    std::fs::write(&events, "precious\n").unwrap();
    let out = squall()
        .args(["up", "--headless", "-n", "1", "--dir"])
        .arg(tmp.path().join("c"))
        .arg("--events")
        .arg(&events)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&events).unwrap(), "precious\n");
    let next = tmp.path().join("run-2.jsonl");
    let text = std::fs::read_to_string(&next).expect("the new log under the next free name");
    assert!(text.starts_with("{\"squall_event_log\""), "{text}");
}

#[test]
fn a_session_without_a_kept_directory_keeps_its_event_log_and_says_where() {
    let state = tempfile::tempdir().unwrap();
    let out = squall()
        .args(["up", "--headless", "-n", "1"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let sessions = state.path().join("squall/sessions");
    let logs: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stdout}", sessions.display()))
        .map(|e| e.unwrap().path())
        // The message record (the flow diagram's) is kept beside its event log, under the log's name.
        .filter(|p| !p.to_string_lossy().ends_with(".messages.jsonl.gz"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert!(log.to_string_lossy().ends_with(".jsonl.gz"), "{log:?}");
    let read: squall::record::eventlog::EventLog<serde_json::Value> =
        squall::record::eventlog::read_event_log(log).unwrap();
    assert!(!read.truncated);
    // Said before deleting, and where the log is.
    assert!(stdout.contains("removing cluster directory"), "{stdout}");
    assert!(
        stdout.contains(&format!("squall replay {}", log.display())),
        "{stdout}"
    );
}

#[test]
fn sighup_stops_the_session_as_cleanly_as_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (mut child, mut out) = headless(&dir, &["--workload"]);
    wait_leader(&mut out);
    let pids = wait_every_node_answers(&dir, &[]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "squall ignored SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let left = wait_gone(&pids, Duration::from_secs(5));
    assert!(left.is_empty(), "nodes left: {left:?}");
    // The gzip stream is complete and holds the session's end.
    let log: squall::record::eventlog::EventLog<serde_json::Value> =
        squall::record::eventlog::read_event_log(dir.join("events.jsonl.gz")).unwrap();
    assert!(!log.truncated, "{:?}", log.warning);
    assert!(
        log.events
            .iter()
            .any(|e| e.to_string().contains("\"Quit\"")),
        "the session's end is logged"
    );
}

#[test]
fn setup_errors_exit_2_and_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = squall()
        .args(["up", "--headless", "--dir"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not-a-dir") && err.contains("not a directory"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("kept cluster directory"));

    let out = squall()
        .args(["up", "--headless", "--events"])
        .arg(tmp.path().join("missing/dir/events.jsonl"))
        .arg("--dir")
        .arg(tmp.path().join("c"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("missing/dir"), "{err}");
}

#[test]
fn a_killed_session_keeps_its_events_to_a_flush_and_every_reader_says_its_log_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (mut child, mut out) = headless(&dir, &["--workload", "lin-kv", "--rate", "50"]);
    wait_leader(&mut out);
    let pids = wait_every_node_answers(&dir, &[]);
    let mut stdin = child.stdin.take().unwrap();
    let log = dir.join("events.jsonl.gz");

    // An action while the session runs reaches the file soon after it is answered, not at the session's
    // end: read the open log until the action is in it.
    ask(&mut stdin, &mut out, "pause 2", "pause");
    let answered = Instant::now();
    let in_file = loop {
        let o = squall().arg("scenario").arg(&log).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        if text.contains("\"pause 2\"") {
            break answered.elapsed();
        }
        assert!(
            answered.elapsed() < Duration::from_secs(5),
            "`pause 2` not in the open event log 5 s after it was answered:\n{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("`pause 2` was in the open log {in_file:?} after its answer");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    let left = wait_gone(&pids, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "nodes left after squall up was killed: {left:?}"
    );

    // Every reader reads what the log holds and says it is truncated, and where.
    let report = tmp.path().join("report.html");
    for args in [
        vec!["history".to_string()],
        vec!["scenario".to_string()],
        vec![
            "report".to_string(),
            "-o".to_string(),
            report.display().to_string(),
        ],
    ] {
        let o = squall()
            .arg(&args[0])
            .arg(&log)
            .args(&args[1..])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            err.contains("events.jsonl.gz is truncated")
                && (err.contains("without its closing record") || err.contains("stream stops")),
            "{args:?} does not say the log is truncated: {err}"
        );
        assert!(err.contains("last event kept is at"), "{args:?}: {err}");
        if args[0] == "history" {
            // What the log holds is a history of its own: invocations it holds without their completion
            // count as unknown, and it checks valid.
            let history = tmp.path().join("history.jsonl");
            std::fs::write(&history, &o.stdout).unwrap();
            assert!(
                String::from_utf8_lossy(&o.stdout).lines().count() > 10,
                "too few operations in the killed session's history"
            );
            let c = squall()
                .arg("check-history")
                .arg(&history)
                .output()
                .unwrap();
            assert_eq!(
                c.status.code(),
                Some(0),
                "{}{}",
                String::from_utf8_lossy(&c.stdout),
                String::from_utf8_lossy(&c.stderr)
            );
        }
    }
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("is truncated"), "the report says so too");
}

#[test]
fn a_second_up_on_a_running_session_s_directory_is_refused_at_once_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let (mut child, mut out) = headless(&dir, &[]);
    wait_leader(&mut out);
    let pids = wait_every_node_answers(&dir, &[]);
    let mut stdin = child.stdin.take().unwrap();
    let cluster_json = std::fs::read(dir.join("cluster.json")).expect("the session's cluster.json");
    let addr_files: Vec<_> = (1..=3)
        .map(|id| dir.join(format!("node-{id}/addr.json")))
        .collect();
    let addrs: Vec<Vec<u8>> = addr_files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();

    let second = squall()
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("is in use by squall pid {}", child.id()))
            && err.contains("stop that session first"),
        "{err}"
    );
    // The running session's files are untouched, and it still answers.
    assert_eq!(
        std::fs::read(dir.join("cluster.json")).unwrap(),
        cluster_json
    );
    for (f, bytes) in addr_files.iter().zip(&addrs) {
        assert_eq!(&std::fs::read(f).unwrap(), bytes, "{}", f.display());
    }
    assert!(!dir.join("events-2.jsonl.gz").exists());
    ask(&mut stdin, &mut out, "status", "");
    stop(child, stdin, &pids);

    // Once that session has ended, the directory is free again.
    let (mut child, mut out) = headless(&dir, &[]);
    wait_leader(&mut out);
    let pids = wait_every_node_answers(&dir, &pids);
    let stdin = child.stdin.take().unwrap();
    stop(child, stdin, &pids);
}
