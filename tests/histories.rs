//! Histories end to end: a lin-kv session under faults checks valid live and after export; the same history
//! with a stale read spliced in checks invalid with that read in the window; `check-history` on bad input,
//! on a deadline, and on simulated histories.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use squall::check::format::to_jsonl;
use squall::check::sim::{SimSpec, simulate};
use support::{Lines, ask, killed_leader, leader_term, wait_gone};

const WAIT: Duration = Duration::from_secs(30);

fn squall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_squall"))
}

fn check_history(path: &Path, extra: &[&str]) -> Output {
    squall()
        .arg("check-history")
        .arg(path)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Sends `check` until the lin-kv verdict is not inconclusive; returns the answer line.
fn lin_check(stdin: &mut std::process::ChildStdin, out: &mut Lines) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        writeln!(stdin, "check").unwrap();
        let answer = out.wait_for("the check's answer", WAIT, |l| {
            ((l.starts_with("ok:") || l.starts_with("error:")) && l.contains("check"))
                .then(|| l.to_string())
        });
        // Before the first operation completes there is no history to check yet.
        if answer.contains("linearizability") && !answer.contains("inconclusive") {
            return answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "every check was inconclusive; last: {answer}"
        );
    }
}

/// Checks (each must pass) until the history holds at least 100 operations more than `before`; returns how
/// many it holds.
fn run_until_more_operations(
    stdin: &mut std::process::ChildStdin,
    out: &mut Lines,
    before: usize,
) -> usize {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let passed = lin_check(stdin, out);
        assert!(
            passed.starts_with("ok: linearizability check passed"),
            "{passed}"
        );
        let n = operations(&passed);
        if n >= before + 100 {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the history grew from {before} to only {n} operations in {WAIT:?}: {passed}"
        );
    }
}

/// The number of operations a check's answer says it checked (`valid: N operations ...`).
fn operations(answer: &str) -> usize {
    answer
        .split("valid: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Counts the lin-kv operations that completed, from the history file.
fn completed(history: &str) -> usize {
    history
        .lines()
        .filter(|l| l.contains("\"type\": \"ok\""))
        .count()
}

#[test]
fn a_lin_kv_session_through_a_leader_kill_a_partition_and_a_heal_is_linearizable_and_its_export_checks_the_same()
 {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let mut child = squall()
        .args([
            "up",
            "--headless",
            "-n",
            "3",
            "--seed",
            "21",
            "--workload",
            "lin-kv",
            "--rate",
            "100",
            "--dir",
        ])
        .arg(&cdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    out.wait_for("a leader", WAIT, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
    let pids = support::node_pids(&cdir);
    // Let the clients run a while, then break things while they keep running.
    let mut done = run_until_more_operations(&mut stdin, &mut out, 0);
    let kill = ask(&mut stdin, &mut out, "kill leader", "kill node");
    let (leader, term) = killed_leader(&kill).expect("the kill names the leader and its term");
    out.wait_for("a new leader in a higher term", WAIT, |l| {
        leader_term(l).filter(|(n, t)| *n != leader && *t > term)
    });
    ask(
        &mut stdin,
        &mut out,
        &format!("restart {leader}"),
        &format!("restart node {leader}"),
    );
    done = run_until_more_operations(&mut stdin, &mut out, done);
    ask(&mut stdin, &mut out, "partition halves", "partition");
    // The majority side goes on (perhaps under a new leader) while the clients keep trying everyone.
    done = run_until_more_operations(&mut stdin, &mut out, done);
    ask(&mut stdin, &mut out, "heal", "heal");
    run_until_more_operations(&mut stdin, &mut out, done);
    let verdict = lin_check(&mut stdin, &mut out);
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "squall up exited with {status}");
    let mut all = pids;
    all.extend(support::node_pids(&cdir));
    assert!(wait_gone(&all, Duration::from_secs(5)).is_empty());

    // The history is in the event log; exported, it checks the same.
    let log = cdir.join("events.jsonl.gz");
    let exported = squall().arg("history").arg(&log).output().unwrap();
    assert!(exported.status.success(), "{}", text(&exported));
    let history = String::from_utf8(exported.stdout).unwrap();
    assert!(
        completed(&history) > 20,
        "few operations completed:\n{history}"
    );
    assert!(
        history
            .lines()
            .next()
            .unwrap()
            .starts_with("{\"index\": 0, \"type\": \"invoke\", \"f\": ")
    );
    let file = dir.path().join("history.jsonl");
    std::fs::write(&file, &history).unwrap();
    let checked = check_history(&file, &[]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    assert!(text(&checked).starts_with("valid: "), "{}", text(&checked));

    let edn = squall()
        .args(["history", "--format", "edn"])
        .arg(&log)
        .output()
        .unwrap();
    let edn = String::from_utf8(edn.stdout).unwrap();
    assert_eq!(edn.lines().count(), history.lines().count());
    assert!(edn.starts_with("{:index 0, :type :invoke, :f :"), "{edn}");

    // The report: one file, its plots inline, the faults labelled, the verdict given.
    let html = dir.path().join("report.html");
    let report = squall()
        .arg("report")
        .arg(&log)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", text(&report));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.matches("<svg").count() >= 3, "plots inline");
    assert!(
        page.contains(&format!("kill node {leader} (leader, term {term})")),
        "fault labelled"
    );
    assert!(page.contains("partition "), "partition labelled");
    assert!(
        page.contains("class=\"ok\">linearizability"),
        "verdict given"
    );

    // A stale read spliced in: after a write of v2 completed, a new process reads v1, which an earlier,
    // completed write set. Values are unique per key, so v1 can never be current again.
    let (doctored, stale) =
        support::history::splice_stale_read(&history).expect("two completed writes on one key");
    let bad = dir.path().join("doctored.jsonl");
    std::fs::write(&bad, doctored).unwrap();
    let checked = check_history(&bad, &[]);
    let said = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.starts_with("invalid: "), "{said}");
    assert!(
        said.lines().any(|l| l.contains('✗') && l.contains(&stale)),
        "the window marks the stale read `{stale}`:\n{said}"
    );
}

#[test]
fn history_and_report_name_a_missing_log_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl.gz");
    for args in [vec!["history"], vec!["report"]] {
        let o = squall().args(&args).arg(&missing).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("nope.jsonl.gz"), "{args:?}: {}", text(&o));
    }
}

#[test]
fn check_history_names_a_malformed_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.jsonl");
    std::fs::write(
        &file,
        "{\"index\": 0, \"type\": \"invoke\", \"f\": \"write\", \"process\": 0, \"time\": 5, \"value\": [1, 2]}\n\
         {\"index\": 1, \"type\": \"ok\", \"f\": \"write\", \"process\": 0, \"time\": 9}\n",
    )
    .unwrap();
    let o = check_history(&file, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("line 2: missing \"value\""),
        "{}",
        text(&o)
    );
    // A completion with nothing pending, named by its line.
    std::fs::write(
        &file,
        "\n{\"index\": 0, \"type\": \"ok\", \"f\": \"read\", \"process\": 4, \"time\": 5, \"value\": [1, 2]}\n",
    )
    .unwrap();
    let o = check_history(&file, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("line 2: process 4 completes a read"),
        "{}",
        text(&o)
    );
    let o = check_history(&dir.path().join("missing.jsonl"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing.jsonl"), "{}", text(&o));
}

#[test]
fn check_history_gives_valid_invalid_and_unknown_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SimSpec {
        ops: 3_000,
        clients: 10,
        keys: 5,
        info: 0.02,
        stale_reads: 0.0,
        seed: 7,
    };
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, to_jsonl(&simulate(spec))).unwrap();
    let o = check_history(&good, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        to_jsonl(&simulate(SimSpec {
            stale_reads: 0.05,
            ..spec
        })),
    )
    .unwrap();
    let o = check_history(&bad, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("state before the window"), "{}", text(&o));
    // A deadline already passed on a history too long to finish before the first look at the clock.
    let long = dir.path().join("long.jsonl");
    std::fs::write(
        &long,
        to_jsonl(&simulate(SimSpec {
            ops: 40_000,
            keys: 1,
            ..spec
        })),
    )
    .unwrap();
    let o = check_history(&long, &["--timeout", "0s"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).starts_with("unknown: "), "{}", text(&o));
}

/// Runs `check-history` on `input` with a hang guard; returns its output, or panics naming what it printed
/// and its peak memory when it does not finish within `limit`.
fn check_history_bounded(input: &Path, limit: Duration) -> (Output, u64) {
    let child = squall()
        .arg("check-history")
        .arg(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + limit;
    let mut peak_kb = 0u64;
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        // A zombie (finished, not yet reaped) has no VmHWM line.
        if !status.contains("VmHWM") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if std::time::Instant::now() > deadline && support::alive(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let o = child.wait_with_output().unwrap();
        panic!(
            "check-history {} still ran after {limit:?} (peak RSS {peak_kb} kB): {}",
            input.display(),
            text(&o)
        );
    }
    (child.wait_with_output().unwrap(), peak_kb)
}

#[test]
fn check_history_stops_at_the_first_bad_line_of_endless_input_with_bounded_memory() {
    for (device, expect) in [("/dev/zero", "line 1"), ("/dev/urandom", "line ")] {
        let (o, peak_kb) = check_history_bounded(Path::new(device), Duration::from_secs(20));
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{device}: {said}");
        assert!(
            said.contains(device) && said.contains(expect),
            "{device}: {said}"
        );
        assert!(
            peak_kb < 64 * 1024,
            "{device}: peak RSS {peak_kb} kB: {said}"
        );
    }
}
