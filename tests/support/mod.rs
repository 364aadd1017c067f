//! Helpers shared by the end-to-end tests: reading a child's output with deadlines, process liveness, and
//! (in `session`) a headless session driven through its console, (in `tmux`) the dashboard in a real terminal,
//! (in `maelstrom`) a `squall up --maelstrom` session, (in `etcd`) the steps of a session of real etcd
//! members, (in `scenario`) scenario files run by `squall run`, (in `agent`) a `squall agent` driven by hand,
//! and (in `netns`) real hosts: network namespaces with an sshd each.

#![allow(dead_code)]

pub mod agent;
pub mod etcd;
pub mod history;
pub mod maelstrom;
pub mod netns;
pub mod scenario;
pub mod session;
pub mod tmux;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `cmd`, a `squall` that must end by itself (a refusal, a start that fails), with no input: its exit code
/// and standard error.
pub fn ended(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err)
}

/// [`ended`] of `squall up --headless ARGS`, with `--dir DIR` when `dir` is given.
pub fn up_ended(args: &[&str], dir: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_squall"));
    cmd.args(["up", "--headless"]).args(args);
    if let Some(dir) = dir {
        cmd.arg("--dir").arg(dir);
    }
    ended(&mut cmd)
}

/// Lines read from a child's pipe on a thread, so a test can wait for one with a deadline.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<String>,
}

impl Lines {
    /// Starts reading `pipe` line by line.
    pub fn new(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line for which `f` returns Some, up to `timeout`; panics with everything seen otherwise.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = f(&line);
                    self.seen.push(line);
                    if let Some(v) = hit {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "waited {timeout:?} for {what}; output so far:\n{}",
                    self.seen[self.seen.len().saturating_sub(80)..].join("\n")
                ),
            }
        }
    }
}

/// Sends `cmd` to a headless session and waits for its `ok:` answer, which must contain `answer`; an `error:`
/// answer fails the test, naming the command. Returns the answer line.
pub fn ask(stdin: &mut impl Write, out: &mut Lines, cmd: &str, answer: &str) -> String {
    writeln!(stdin, "{cmd}").unwrap();
    out.wait_for(
        &format!("the answer to `{cmd}`"),
        Duration::from_secs(30),
        |l| {
            if l.starts_with("error:") {
                panic!("`{cmd}` failed: {l}");
            }
            (l.starts_with("ok:") && l.contains(answer)).then(|| l.to_string())
        },
    )
}

/// Sends `check` until a verdict that is not inconclusive comes back, for up to `wait`; it must be a pass.
pub fn check_passes(stdin: &mut impl Write, out: &mut Lines, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        writeln!(stdin, "check").unwrap();
        let answer = out.wait_for("the check's answer", wait, |l| {
            (l.starts_with("ok: check") || l.starts_with("error: check")).then(|| l.to_string())
        });
        if !answer.contains("inconclusive") {
            assert!(answer.starts_with("ok:"), "the check failed: {answer}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "every check was inconclusive: {answer}"
        );
    }
}

/// True while a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Polls until none of `pids` is alive; returns those still alive at the deadline.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Parses "leader N term T" out of a line.
pub fn leader_term(line: &str) -> Option<(u64, u64)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "leader")?;
    let leader = words.get(i + 1)?.parse().ok()?;
    let j = words.iter().position(|w| *w == "term" || *w == "ballot")?;
    let term = term_number(
        words
            .get(j + 1)?
            .trim_end_matches(|c: char| !c.is_ascii_digit()),
    )?;
    Some((leader, term))
}

/// A term as a line shows it: `4`, or a Paxos ballot `R.P` read as the packed ballot (`R << 16 | P`, which
/// orders like ballots).
pub fn term_number(word: &str) -> Option<u64> {
    match word.split_once('.') {
        Some((round, proposer)) => {
            Some((round.parse::<u64>().ok()? << 16) | proposer.parse::<u64>().ok()?)
        }
        None => word.parse().ok(),
    }
}

/// Parses the leader kill out of text that reports it ("kill node N (leader, term T)"): which node was
/// killed and in which term it led. Tests learn the victim from this rather than from an earlier look at
/// the cluster, because leadership may move between that look and the kill.
pub fn killed_leader(text: &str) -> Option<(u64, u64)> {
    let at = text.find("kill node ")?;
    let rest = &text[at + "kill node ".len()..];
    let (node, rest) = rest
        .split_once(" (leader, term ")
        .or_else(|| rest.split_once(" (leader, ballot "))?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Some((node.trim().parse().ok()?, term_number(&digits)?))
}

/// The node pids a running `squall up` lists in its cluster directory's `cluster.json`.
pub fn node_pids(dir: &std::path::Path) -> Vec<u32> {
    let path = dir.join("cluster.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file: serde_json::Value = serde_json::from_slice(&bytes).expect("cluster.json is JSON");
    file["nodes"]
        .as_array()
        .expect("a nodes array")
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .map(|p| p as u32)
        .collect()
}

/// A `squall up --headless` session started in `dir` with `args` (after `up --headless --dir DIR`), waited
/// on until its console names a leader: the child, its standard input, its output, and (leader, term).
pub fn headless_with_leader(
    dir: &std::path::Path,
    args: &[&str],
    wait: Duration,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    Lines,
    (u64, u64),
) {
    use std::process::Stdio;
    let mut child = session::squall_up(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let leader = out.wait_for("a leader", wait, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
    (child, stdin, out, leader)
}

/// Spawns `cmd` (a `squall up --headless …`) with its console on pipes (its standard error inherited) and
/// waits up to `wait` for the `nodes up` line: the child, its console input and its output so far.
pub fn up_until_nodes_up(
    mut cmd: std::process::Command,
    wait: Duration,
) -> (std::process::Child, std::process::ChildStdin, Lines) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    out.wait_for("the nodes to come up", wait, |l| {
        l.contains("nodes up").then_some(())
    });
    (child, stdin, out)
}

/// `squall status --json --dir DIR` of a running session, which must succeed: its JSON document.
pub fn status_json(dir: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["status", "--json", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`squall status --json --dir {}` failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`squall status --json` is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Seconds since the epoch of an RFC 3339 UTC time as tracing writes it (`2026-12-06T20:45:12.123456Z`).
pub fn rfc3339_secs(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.trim_end_matches('Z').split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + sec)
}

/// Seconds since the epoch now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The session time, in seconds, a console event line starts with (`   12.345s  …`); `None` for other lines.
pub fn line_secs(line: &str) -> Option<f64> {
    line.split_whitespace()
        .next()?
        .strip_suffix('s')?
        .parse()
        .ok()
}
