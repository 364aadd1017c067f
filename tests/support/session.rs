//! A `squall up --headless` session driven through its console, shared by the end-to-end tests: start it, send
//! console lines, read `status` as values, poll for a condition with a deadline (printing what was seen on
//! timeout), read and write keys with `squall kv`, watch the live invariants, and quit leaving nothing behind.
//!
//! `SQUALL_TEST_NODE_BIN=PATH` runs every session's nodes from that build of `squall-node` (`up --node-bin
//! PATH`), so a reproduction can be run against the node as it was before a fix.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Lines, leader_term, node_pids, wait_gone};

/// The environment variable naming a `squall-node` build to run instead of squall itself.
pub const NODE_BIN_VAR: &str = "SQUALL_TEST_NODE_BIN";

/// `squall up --headless --dir DIR`, with `--node-bin` added when [`NODE_BIN_VAR`] names a node build.
pub fn squall_up(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
    cmd.args(["up", "--headless", "--dir"]).arg(dir);
    if let Some(bin) = std::env::var_os(NODE_BIN_VAR) {
        eprintln!("nodes run {} ({NODE_BIN_VAR})", bin.to_string_lossy());
        cmd.arg("--node-bin").arg(bin);
    }
    cmd
}

/// One node as the console's `status` listing shows it
/// (`n1 running pid 9 leader term 3 leader n1 commit 10 applied 10 last 10/3 snapshot 0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: u64,
    /// Running and answering now (not a `(last known)` or `(not answering)` status).
    pub running: bool,
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit: u64,
    pub snapshot: u64,
    pub pid: Option<u32>,
    /// The whole line, without its `status:` prefix.
    pub line: String,
}

/// Parses one `status` line (without its prefix); None for a node that reports no term.
pub fn parse_node(line: &str) -> Option<Node> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let id = w.first()?.strip_prefix('n')?.parse().ok()?;
    // A Paxos node shows `ballot R.P` where Raft shows `term T`; it is read as the packed ballot, which orders
    // the same way.
    let t = w.iter().position(|x| *x == "term" || *x == "ballot")?;
    let after = |key: &str, from: usize| -> Option<&str> {
        let i = w[from..].iter().position(|x| *x == key)? + from;
        w.get(i + 1).copied()
    };
    // A status from before a node stopped answering says nothing about now.
    let live = !line.contains("(last known)") && !line.contains("(not answering)");
    Some(Node {
        id,
        running: live && w.get(1) == Some(&"running"),
        role: w.get(t.checked_sub(1)?)?.to_string(),
        term: super::term_number(w.get(t + 1)?)?,
        leader: after("leader", t).and_then(|l| l.strip_prefix('n')?.parse().ok()),
        commit: after("commit", t)?.parse().ok()?,
        snapshot: after("snapshot", t)?.parse().ok()?,
        pid: after("pid", 0).and_then(|p| p.parse().ok()),
        line: line.to_string(),
    })
}

/// The number after `word ` in a status line.
pub fn status_field(line: &str, word: &str) -> u64 {
    line.split(&format!(" {word} "))
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {word} in {line:?}"))
}

/// The id of the fault a fault command's answer reports (`ok: #3 isolate node 2 …`).
pub fn fault_id(answer: &str) -> u64 {
    let at = answer
        .find('#')
        .unwrap_or_else(|| panic!("no fault id in {answer}"));
    answer[at + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no fault id in {answer}"))
}

/// What a starting session waits for before the test goes on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ready {
    /// A feed line naming a leader.
    Leader,
    /// The `nodes up` line: every node started, no leader yet perhaps.
    NodesUp,
}

/// How to start a session: the arguments after `up --headless --dir DIR`, what to wait for, and how long any
/// one wait of the session may take.
pub struct Up {
    args: Vec<String>,
    ready: Ready,
    wait: Duration,
    serial: Option<&'static Mutex<()>>,
    dir: Option<PathBuf>,
}

impl Up {
    /// Waits for [`Ready::Leader`], 30 s per wait, in a fresh temporary directory.
    pub fn new(args: &[&str]) -> Up {
        Up {
            args: args.iter().map(|a| a.to_string()).collect(),
            ready: Ready::Leader,
            wait: Duration::from_secs(30),
            serial: None,
            dir: None,
        }
    }

    pub fn ready(mut self, ready: Ready) -> Up {
        self.ready = ready;
        self
    }

    /// The longest any one wait of the session (a start, an answer, a condition) may take.
    pub fn wait(mut self, wait: Duration) -> Up {
        self.wait = wait;
        self
    }

    /// Holds `lock` for the session's life, so sessions of one test binary run one at a time.
    pub fn serial(mut self, lock: &'static Mutex<()>) -> Up {
        self.serial = Some(lock);
        self
    }

    /// Runs the cluster in `dir` (perhaps one an earlier session left) instead of a fresh one.
    pub fn dir(mut self, dir: PathBuf) -> Up {
        self.dir = Some(dir);
        self
    }

    pub fn start(self) -> Session {
        let serial = self
            .serial
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        let tmp = tempfile::tempdir().unwrap();
        let cdir = self.dir.unwrap_or_else(|| tmp.path().join("cluster"));
        let mut child = squall_up(&cdir)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = Lines::new(child.stdout.take().unwrap());
        let mut s = Session {
            child,
            stdin,
            out,
            dir: tmp,
            cdir,
            pids: Vec::new(),
            first_leader: None,
            wait: self.wait,
            _serial: serial,
        };
        match self.ready {
            Ready::Leader => s.first_leader = Some(s.leader_line()),
            Ready::NodesUp => {
                s.out.wait_for("the session to start", s.wait, |l| {
                    l.contains("nodes up").then_some(())
                });
            }
        }
        s.pids = node_pids(&s.cdir);
        s
    }
}

/// A running `squall up --headless` session.
pub struct Session {
    pub child: Child,
    pub stdin: ChildStdin,
    pub out: Lines,
    /// The temporary directory the cluster lives in (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The cluster directory (`node-N/`, `cluster.json`, the event log).
    pub cdir: PathBuf,
    /// The node processes seen at the start.
    pub pids: Vec<u32>,
    /// The (leader, term) the start waited for ([`Ready::Leader`]).
    pub first_leader: Option<(u64, u64)>,
    /// The longest any one wait may take.
    pub wait: Duration,
    _serial: Option<MutexGuard<'static, ()>>,
}

impl Session {
    /// Sends `cmd` and waits for its `ok:` answer, which must contain `answer`; an `error:` fails the test.
    pub fn ask(&mut self, cmd: &str, answer: &str) -> String {
        super::ask(&mut self.stdin, &mut self.out, cmd, answer)
    }

    /// Sends `cmd` and waits for its `ok:` or `pending:` answer (a membership change that waits for a commit
    /// answers `pending:` and goes on; the feed tells its outcome), which must contain `answer`; an `error:`
    /// fails the test.
    pub fn accepted(&mut self, cmd: &str, answer: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the answer to `{cmd}`"), self.wait, |l| {
                if l.starts_with("error:") {
                    panic!("`{cmd}` failed: {l}");
                }
                ((l.starts_with("ok:") || l.starts_with("pending:")) && l.contains(answer))
                    .then(|| l.to_string())
            })
    }

    /// Sends a command and returns its `ok:` answer; fails the test on `error:`.
    pub fn ok(&mut self, cmd: &str) -> String {
        self.ask(cmd, "")
    }

    /// Makes sure no fault is in force: a plain `heal`, answered `ok:` when something was healed, or refused
    /// with `nothing to heal` when nothing was in force (an action that did not happen never answers `ok`).
    /// Any other refusal fails the test. Returns the answer line.
    pub fn heal_all(&mut self) -> String {
        let answer = self.answer("heal");
        assert!(
            answer.starts_with("ok: ") || answer.starts_with("error: nothing to heal: "),
            "`heal` failed: {answer}"
        );
        answer
    }

    /// Sends `cmd` and returns its answer line, `ok:` or `error:`.
    pub fn answer(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the answer to `{cmd}`"), self.wait, |l| {
                (l.starts_with("ok:") || l.starts_with("error:")).then(|| l.to_string())
            })
    }

    /// Sends a command that must be refused; returns the `error:` line.
    pub fn refused(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the refusal of `{cmd}`"), self.wait, |l| {
                if l.starts_with("ok:") {
                    panic!("`{cmd}` should have been refused: {l}");
                }
                l.starts_with("error:").then(|| l.to_string())
            })
    }

    /// Sends a change that must not happen and returns the line that says so, which must contain `reason`:
    /// its `error:` answer, or, for a membership change that keeps asking while the leader says "not now"
    /// (it answers `pending:` first), the feed line telling it was not made. An `ok:` fails the test.
    pub fn not_done(&mut self, cmd: &str, reason: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out.wait_for(
            &format!("`{cmd}` refused or given up ({reason})"),
            self.wait,
            |l| {
                if l.starts_with("ok:") {
                    panic!("`{cmd}` should not have been done: {l}");
                }
                (l.contains(reason) && !l.starts_with("pending:")).then(|| l.to_string())
            },
        )
    }

    /// A listing command's lines (those beginning with `prefix`, without it), up to its `ok:`.
    pub fn listing(&mut self, cmd: &str, prefix: &str) -> Vec<String> {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut lines = Vec::new();
        self.out
            .wait_for(&format!("the listing of `{cmd}`"), self.wait, |l| {
                if let Some(rest) = l.strip_prefix(prefix) {
                    lines.push(rest.trim().to_string());
                }
                l.starts_with("ok:").then_some(())
            });
        lines
    }

    /// Every node that reports a term in `status`, by id.
    pub fn nodes(&mut self) -> BTreeMap<u64, Node> {
        self.listing("status", "status:")
            .iter()
            .filter_map(|l| parse_node(l))
            .map(|n| (n.id, n))
            .collect()
    }

    /// Node `n`'s status line (without its prefix); fails the test if `status` does not list it.
    pub fn node_line(&mut self, n: u64) -> String {
        let lines = self.listing("status", "status:");
        let prefix = format!("n{n} ");
        lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no status line for node {n}: {lines:#?}"))
    }

    /// Polls `status` until `f` accepts the nodes; panics with the last ones seen.
    pub fn until<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&BTreeMap<u64, Node>) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + self.wait;
        loop {
            let nodes = self.nodes();
            if let Some(v) = f(&nodes) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {:?} for {what}; nodes: {nodes:#?}",
                self.wait
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a feed line naming a leader; returns (leader, term).
    pub fn leader_line(&mut self) -> (u64, u64) {
        self.out.wait_for("a leader", self.wait, |l| {
            if l.contains("no leader") {
                None
            } else {
                leader_term(l)
            }
        })
    }

    /// The running node that leads now, in the highest term any running node leads (`status`, polled until
    /// one does), and that term.
    pub fn current_leader(&mut self) -> (u64, u64) {
        self.until("a node to lead", |ns| {
            ns.values()
                .filter(|n| n.running && n.role == "leader")
                .max_by_key(|n| n.term)
                .map(|n| (n.id, n.term))
        })
    }

    /// The highest commit index any node reports in `status`.
    pub fn max_commit(&mut self) -> u64 {
        self.nodes().values().map(|n| n.commit).max().unwrap_or(0)
    }

    /// Runs `check` until it is conclusive (ten tries, a second apart); returns the verdict line (`ok: check
    /// passed…` or `error: check FAILED…`).
    pub fn check(&mut self) -> String {
        for _ in 0..10 {
            writeln!(self.stdin, "check").unwrap();
            let line = self
                .out
                .wait_for("the check's verdict", Duration::from_secs(60), |l| {
                    (l.starts_with("ok: check") || l.starts_with("error: check"))
                        .then(|| l.to_string())
                });
            if !line.contains("inconclusive") {
                return line;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!(
            "ten checks in a row were inconclusive:\n{}",
            self.out.seen.join("\n")
        );
    }

    /// Sends `check` until a verdict that is not inconclusive comes back; it must be a pass.
    pub fn check_passes(&mut self) {
        super::check_passes(&mut self.stdin, &mut self.out, self.wait);
    }

    /// `squall kv --timeout 5s --dir DIR ARGS...`, retried until it answers (a cluster without a leader
    /// answers nothing); returns its standard output.
    pub fn kv(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + self.wait;
        loop {
            let out = Command::new(env!("CARGO_BIN_EXE_squall"))
                .args(["kv", "--timeout", "5s", "--dir"])
                .arg(&self.cdir)
                .args(args)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.success() {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`kv {}` failed for {:?}: {text}{}",
                args.join(" ").chars().take(80).collect::<String>(),
                self.wait,
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Watches the feed for `window`, failing on any broken invariant (a bounded observation: the bugs the
    /// node-safety tests reproduce showed theirs within a second or two).
    pub fn no_invariant_broken_for(&mut self, window: Duration, what: &str) {
        let end = Instant::now() + window;
        writeln!(self.stdin, "faults").unwrap();
        while Instant::now() < end {
            let left = end.saturating_duration_since(Instant::now());
            let hit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.out.wait_for("a broken invariant", left, |l| {
                    l.contains("INVARIANT BROKEN").then(|| l.to_string())
                })
            }));
            if let Ok(line) = hit {
                panic!(
                    "{what}: {line}\n{}",
                    self.out.seen[self.out.seen.len().saturating_sub(60)..].join("\n")
                );
            }
        }
    }

    /// Fails the test if any `INVARIANT BROKEN` line was seen so far.
    pub fn assert_no_invariant_broken(&self) {
        let broken: Vec<&String> = self
            .out
            .seen
            .iter()
            .filter(|l| l.contains("INVARIANT BROKEN"))
            .collect();
        assert!(broken.is_empty(), "{broken:#?}");
    }

    /// Quits; checks that squall exited cleanly, that no node process outlived it and that no fault
    /// filesystem is left mounted. Returns the temporary directory (removed when dropped).
    pub fn quit(mut self) -> tempfile::TempDir {
        // Nodes restarted during the test have new pids: take them from the cluster file before quitting.
        let mut pids = self.pids.clone();
        if self.cdir.join("cluster.json").exists() {
            pids.extend(node_pids(&self.cdir));
        }
        writeln!(self.stdin, "quit").unwrap();
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "squall exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "squall did not quit within {:?}",
                self.wait
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = wait_gone(&pids, Duration::from_secs(10));
        assert!(left.is_empty(), "nodes left behind: {left:?}");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(
            !mounts.contains(self.cdir.to_str().unwrap()),
            "a fault filesystem outlived squall:\n{mounts}"
        );
        self.dir
    }
}
