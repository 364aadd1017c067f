//! The harness of the Maelstrom end-to-end tests (`tests/maelstrom.rs`, `tests/maelstrom_workloads.rs`): the
//! Python nodes of tests/maelstrom-nodes, a headless `squall up --maelstrom NODE` session driven through its
//! console (answers, `check` verdicts polled until the history grows, link counts by message type), a quit
//! that checks no bridge or node outlived squall, and `squall run` of a scenario naming a node.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::time::{Duration, Instant};

use super::Lines;

/// The longest any one wait of a Maelstrom test may take (Python nodes start slowly on a loaded machine).
pub const WAIT: Duration = Duration::from_secs(60);

/// The path of test node `name` (`echo.py`, `linkv.py`, …).
pub fn node_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/maelstrom-nodes")
        .join(name)
}

/// The arguments of a 3-node session running Maelstrom workload `name` at 40 operations a second.
pub fn workload_args(name: &str, seed: &str) -> Vec<String> {
    [
        "-n",
        "3",
        "--seed",
        seed,
        "--workload",
        name,
        "--rate",
        "40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A headless `squall up --maelstrom` session.
pub struct Session {
    pub child: Child,
    pub stdin: ChildStdin,
    pub out: Lines,
    /// The session's temporary directory; the cluster directory is `cluster` in it.
    pub dir: tempfile::TempDir,
}

impl Session {
    /// Starts `squall up --headless --maelstrom NODE ARGS` with `env` added, and waits for its nodes.
    pub fn start(node: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
        cmd.args(["up", "--headless", "--dir"])
            .arg(dir.path().join("cluster"))
            .arg("--maelstrom")
            .arg(node_script(node))
            .args(args)
            .envs(env.iter().copied());
        let (child, stdin, out) = super::up_until_nodes_up(cmd, WAIT);
        Session {
            child,
            stdin,
            out,
            dir,
        }
    }

    /// [`Session::start`] of a 3-node session running Maelstrom workload `w` ([`workload_args`]).
    pub fn workload(node: &str, w: &str, seed: &str, env: &[(&str, &str)]) -> Session {
        let args = workload_args(w, seed);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Session::start(node, &args, env)
    }

    /// The cluster directory.
    pub fn cdir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    /// Node `node`'s log (the bridge's and the node's stderr), empty while there is none.
    pub fn log_of(&self, node: u64) -> String {
        std::fs::read_to_string(self.cdir().join(format!("node-{node}/node.log")))
            .unwrap_or_default()
    }

    /// Sends `cmd` and waits for its `ok:` answer; an `error:` fails the test.
    pub fn ok(&mut self, cmd: &str) -> String {
        super::ask(&mut self.stdin, &mut self.out, cmd, "")
    }

    /// The answer line to `cmd`, `ok: …` or `error: …`.
    pub fn answer(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the answer to `{cmd}`"), WAIT, |l| {
                (l.starts_with("ok:") || l.starts_with("error:")).then(|| l.to_string())
            })
    }

    /// The answer line of `check`, `ok: …` or `error: …`.
    pub fn check(&mut self) -> String {
        writeln!(self.stdin, "check").unwrap();
        self.out.wait_for("the check's verdict", WAIT, |l| {
            ((l.starts_with("ok: ") || l.starts_with("error: ")) && l.contains("check"))
                .then(|| l.to_string())
        })
    }

    /// The operations a `check` answer counts (`… valid: 388 operations …`, `… 388 operations, …`).
    pub fn operations(answer: &str) -> u64 {
        answer
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[1].trim_end_matches([',', ';', ')']) == "operations")
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0)
    }

    /// Polls `check` until the history holds `more` operations beyond `from`; every verdict meanwhile must
    /// pass. Returns the count and the last answer.
    pub fn passes_with_ops(&mut self, from: u64, more: u64) -> (u64, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.check();
            // Before the workload's first operation there is nothing to judge yet.
            let judged = !answer.contains("nothing to judge");
            assert!(
                !judged || !answer.starts_with("error"),
                "the check failed: {answer}"
            );
            let n = Self::operations(&answer);
            if n >= from + more {
                return (n, answer);
            }
            assert!(
                Instant::now() < deadline,
                "the history grew from {from} to only {n} operations in {WAIT:?}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Polls `check` until it fails; returns the failing answer.
    pub fn fails(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.check();
            if answer.starts_with("error: ") && answer.contains("FAILED") {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "the wrong node was never caught: {answer}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The `links:` line of link `from->to`.
    pub fn link(&mut self, from: u64, to: u64) -> String {
        writeln!(self.stdin, "links").unwrap();
        let want = format!("links: {from}->{to} ");
        let line = self.out.wait_for("the links listing", WAIT, |l| {
            l.starts_with(&want).then(|| l.to_string())
        });
        self.out
            .wait_for("the end of the links listing", WAIT, |l| {
                l.starts_with("ok:").then_some(())
            });
        line
    }

    /// The seen/dropped counts of message kind `kind` on a `links:` line (`kinds read 5/0,write 3/3`).
    pub fn kind_counts(line: &str, kind: &str) -> (u64, u64) {
        let kinds = line.split(" kinds ").nth(1).unwrap_or("");
        for k in kinds.split(',') {
            if let Some((name, counts)) = k.trim().split_once(' ')
                && name == kind
                && let Some((seen, dropped)) = counts.split_once('/')
            {
                return (seen.parse().unwrap(), dropped.parse().unwrap());
            }
        }
        (0, 0)
    }

    /// Waits until link `from->to` has dropped `n` messages of body type `kind`.
    pub fn dropped_at_least(&mut self, from: u64, to: u64, kind: &str, n: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            let line = self.link(from, to);
            if Self::kind_counts(&line, kind).1 >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{kind} on {from}->{to} never dropped {n}: {line}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Quits, and checks that no process of the cluster (a bridge or a node, found by its working directory
    /// or command line under the session's directory) outlived squall. Returns the session's directory,
    /// removed when dropped.
    pub fn quit(mut self) -> tempfile::TempDir {
        writeln!(self.stdin, "quit").unwrap();
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "squall did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_none_outlived(self.dir.path(), "squall");
        self.dir
    }
}

/// Pids of live processes whose working directory or command line is under `root`.
pub fn processes_under(root: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let zombie = std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if !zombie
            && (cwd.starts_with(root)
                || String::from_utf8_lossy(&cmdline).contains(&*root.to_string_lossy()))
        {
            out.push(pid);
        }
    }
    out
}

/// Waits (up to 10 s) until no process under `root` is left after `who` ended; fails naming them.
pub fn assert_none_outlived(root: &Path, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_under(root);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived {who}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `squall run` of scenario `text` (written to a file in a fresh directory) with `env` added: its exit code
/// and its stdout and stderr. No process of the run may outlive it.
pub fn run_scenario_text(text: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maelstrom.toml");
    std::fs::write(&file, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("bundle"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_none_outlived(dir.path(), "squall run");
    (
        o.status.code(),
        format!(
            "{}\n--- stderr\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}
