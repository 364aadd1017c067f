//! Clock faults end to end: `squall up --headless --disk-faults` on real node processes with squall's time
//! shim preloaded. A jump moves only a node's wall clock (seen in the timestamps of its own log), its
//! monotonic clock (its `uptime_ms`, measured with `Instant`) never leaps or goes back, and neither a
//! backward jump nor a plain `heal` after `+1h` stops the node. Needs /dev/fuse and root, as every
//! `--disk-faults` test (CI's `.ci/run` installs fuse3).

mod support;

use std::io::Write;
use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

use support::{Lines, ask, headless_with_leader, now_secs, rfc3339_secs};

const WAIT: Duration = Duration::from_secs(30);

struct Session {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    dir: tempfile::TempDir,
    started: Instant,
    /// A node that did not lead at the start: the one whose clock the test fakes.
    target: u64,
}

impl Session {
    fn up(seed: &str) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (child, stdin, out, (leader, _)) = headless_with_leader(
            &dir.path().join("c"),
            &[
                "--disk-faults",
                "-n",
                "3",
                "--workload",
                "--rate",
                "50",
                "--seed",
                seed,
            ],
            WAIT,
        );
        Session {
            child,
            stdin,
            out,
            dir,
            started,
            target: if leader == 2 { 3 } else { 2 },
        }
    }

    fn ask(&mut self, cmd: &str, answer: &str) -> String {
        ask(&mut self.stdin, &mut self.out, cmd, answer)
    }

    /// Each node's commit index, from the console's `status`.
    fn commits(&mut self) -> Vec<(u64, u64)> {
        writeln!(self.stdin, "status").unwrap();
        let mut seen = Vec::new();
        let mut lines = 0;
        self.out.wait_for("status lines", WAIT, |l| {
            if let Some(rest) = l.strip_prefix("status: n") {
                lines += 1;
                let id = rest.split_whitespace().next().and_then(|n| n.parse().ok());
                let commit = l
                    .split(" commit ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|c| c.parse().ok());
                if let (Some(id), Some(c)) = (id, commit) {
                    seen.push((id, c));
                }
            }
            (lines == 3).then_some(())
        });
        seen
    }

    /// Waits until node `id`'s own commit index grew by `n`: it keeps taking part in the cluster.
    fn node_commits_grow(&mut self, id: u64, n: u64, after: &str) {
        let of = |v: &[(u64, u64)]| v.iter().find(|(i, _)| *i == id).map(|(_, c)| *c);
        let start = of(&self.commits()).unwrap_or(0);
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.commits();
            if of(&now).is_some_and(|c| c >= start + n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} stopped after {after}: its commit index stayed near {start} for {WAIT:?} \
                 (status: {now:?})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The wall-clock times (s since the epoch) of node `id`'s log lines that contain `what`.
    fn node_log_times(&self, id: u64, what: &str) -> Vec<i64> {
        let log = self.dir.path().join(format!("c/node-{id}/node.log"));
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(what))
            .filter_map(|l| rfc3339_secs(l.split_whitespace().next()?))
            .collect()
    }

    /// Makes node `id` lead (so it logs with its wall clock, and runs its heartbeat timer from then on);
    /// returns the wall-clock time of its `became leader` line. A transfer can be refused or lose its
    /// election on a loaded machine, so it is asked again every 5 s, for up to 45 s.
    fn lead(&mut self, id: u64) -> i64 {
        let since = self.node_log_times(id, "became leader").len();
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut answers = Vec::new();
        loop {
            writeln!(self.stdin, "transfer {id}").unwrap();
            answers.push(self.out.wait_for("an answer to `transfer`", WAIT, |l| {
                (l.starts_with("ok:") || l.starts_with("error:")).then(|| l.to_string())
            }));
            let retry = Instant::now() + Duration::from_secs(5);
            while Instant::now() < retry {
                if let Some(&t) = self.node_log_times(id, "became leader").get(since) {
                    return t;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not become leader within 45 s; the transfers were answered {answers:?}"
            );
        }
    }

    /// Quits; returns node `id`'s uptimes (ms) in the order the event log recorded them.
    fn quit(mut self, id: u64) -> Vec<u64> {
        writeln!(self.stdin, "quit").unwrap();
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "squall did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.dir.path().join("c/events.jsonl.gz");
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&log).unwrap()),
            &mut text,
        )
        .unwrap();
        let mut uptimes = Vec::new();
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                collect_uptimes(&v, id, &mut uptimes);
            }
        }
        uptimes
    }
}

/// Node `id`'s `uptime_ms` wherever a status of it appears in `v` (`{"node": id, "status": {…}}`).
fn collect_uptimes(v: &serde_json::Value, id: u64, out: &mut Vec<u64>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("node").and_then(|n| n.as_u64()) == Some(id)
                && let Some(u) = m
                    .get("status")
                    .and_then(|s| s.get("uptime_ms"))
                    .and_then(|u| u.as_u64())
            {
                out.push(u);
            }
            for x in m.values() {
                collect_uptimes(x, id, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_uptimes(x, id, out)),
        _ => {}
    }
}

/// The uptimes never went back and never ran ahead of the session's real age (no leap of the monotonic
/// clock), with `slack` for a node at another rate.
fn assert_monotonic_and_bounded(uptimes: &[u64], real: Duration, what: &str) {
    assert!(!uptimes.is_empty(), "{what}: no status recorded an uptime");
    for w in uptimes.windows(2) {
        assert!(
            w[1] >= w[0],
            "{what}: the node's monotonic clock went back from {} ms to {} ms",
            w[0],
            w[1]
        );
    }
    let max = *uptimes.iter().max().unwrap();
    assert!(
        max <= real.as_millis() as u64 + 5_000,
        "{what}: the node's monotonic clock leapt: uptime {max} ms in a {real:?} session"
    );
}

#[test]
fn a_backward_jump_moves_only_the_wall_clock_and_stops_no_node() {
    let mut s = Session::up("191");
    let n = s.target;
    s.ask(
        &format!("clock {n} -30s"),
        &format!("clock of node {n}: -30s"),
    );
    let logged = s.lead(n);
    let off = logged - now_secs();
    assert!(
        (-40..=-20).contains(&off),
        "node {n}'s log shows its wall clock {off} s from true time, not -30 s"
    );
    s.node_commits_grow(n, 50, &format!("`clock {n} -30s`"));
    let real = s.started.elapsed();
    let uptimes = s.quit(n);
    assert_monotonic_and_bounded(&uptimes, real, "after -30s");
}

#[test]
fn a_plain_heal_after_a_jump_ahead_stops_no_node() {
    let mut s = Session::up("192");
    let n = s.target;
    s.ask(
        &format!("clock {n} +1h"),
        &format!("clock of node {n}: +1h"),
    );
    let logged = s.lead(n);
    let off = logged - now_secs();
    assert!(
        (3590..=3610).contains(&off),
        "node {n}'s log shows its wall clock {off} s from true time, not +1h"
    );
    s.node_commits_grow(n, 20, &format!("`clock {n} +1h`"));
    let healed = s.ask("heal", "clock fault");
    assert!(
        healed.contains("never back"),
        "a plain heal says what it did to the clocks: {healed}"
    );
    s.node_commits_grow(n, 50, &format!("a plain `heal` after `clock {n} +1h`"));
    let faults = s.ask("faults", "fault");
    assert!(
        faults.contains("no fault in force"),
        "a fault is left: {faults}"
    );
    let real = s.started.elapsed();
    let uptimes = s.quit(n);
    assert_monotonic_and_bounded(&uptimes, real, "+1h then heal");
}

#[test]
fn clock_jumps_and_strobes_beyond_their_limits_are_refused_naming_the_limit() {
    let mut s = Session::up("193");
    for (cmd, limit) in [
        ("clock 4 +1y", "at most ±7d"),
        ("clock 2 -8d", "at most ±7d"),
        ("clock 2 strobe 2s", "at most 1s"),
    ] {
        writeln!(s.stdin, "{cmd}").unwrap();
        let line = s
            .out
            .wait_for(&format!("the refusal of `{cmd}`"), WAIT, |l| {
                l.starts_with("error:").then(|| l.to_string())
            });
        assert!(line.contains(limit), "`{cmd}`: {line}");
    }
    // Jumps add up to at most 7 days from true time.
    s.ask("clock 2 +5d", "clock of node 2: +5d");
    writeln!(s.stdin, "clock 2 +5d").unwrap();
    let line = s.out.wait_for("the refusal of a second +5d", WAIT, |l| {
        l.starts_with("error:").then(|| l.to_string())
    });
    assert!(
        line.contains("10d ahead") && line.contains("±7d"),
        "a second +5d: {line}"
    );
    let _ = s.quit(2);
}
