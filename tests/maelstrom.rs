//! Maelstrom nodes under squall, end to end: `squall up --maelstrom NODE` runs the Python nodes of
//! tests/maelstrom-nodes as real processes, squall's proxies carry every message between them, squall's
//! clients run Maelstrom's lin-kv workload, and the linearizability check judges the history — a correct
//! node passes through a leader kill and restart, a one-way cut, a loss limited to one message type and
//! stepped messages; a node that serves reads from a local cache fails; a node writing garbage keeps going.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use support::Lines;

const WAIT: Duration = Duration::from_secs(60);

fn node_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/maelstrom-nodes")
        .join(name)
}

/// A headless `squall up --maelstrom` session.
struct Session {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    dir: tempfile::TempDir,
}

impl Session {
    fn start(node: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
        cmd.args(["up", "--headless", "--dir"])
            .arg(dir.path().join("cluster"))
            .arg("--maelstrom")
            .arg(node_script(node))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut out = Lines::new(child.stdout.take().unwrap());
        out.wait_for("the nodes to come up", WAIT, |l| {
            l.contains("nodes up").then_some(())
        });
        Session {
            child,
            stdin,
            out,
            dir,
        }
    }

    fn cdir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn ok(&mut self, cmd: &str) -> String {
        support::ask(&mut self.stdin, &mut self.out, cmd, "")
    }

    /// The answer line of `check`, `ok: …` or `error: …`.
    fn check(&mut self) -> String {
        writeln!(self.stdin, "check").unwrap();
        self.out.wait_for("the check's verdict", WAIT, |l| {
            ((l.starts_with("ok: ") || l.starts_with("error: ")) && l.contains("check"))
                .then(|| l.to_string())
        })
    }

    /// The operations the history holds, from a `check` answer (`… valid: 388 operations …`).
    fn operations(answer: &str) -> u64 {
        answer
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[1] == "operations")
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0)
    }

    /// Polls `check` until the history holds `more` operations beyond `from`; returns the count. Every
    /// verdict meanwhile must be a pass.
    fn passes_with_ops(&mut self, from: u64, more: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.check();
            // Before the workload's first write there is nothing to judge yet.
            let judged = !answer.contains("nothing to judge");
            assert!(
                !judged || !answer.starts_with("error"),
                "the check failed: {answer}"
            );
            let n = Self::operations(&answer);
            if n >= from + more {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "the history grew from {from} to only {n} operations in {WAIT:?}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The `links:` line of link `from->to`.
    fn link(&mut self, from: u64, to: u64) -> String {
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
    fn kind_counts(line: &str, kind: &str) -> (u64, u64) {
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

    /// Quits, and checks that no process of the cluster (a bridge or a node, found by its working directory
    /// or command line under the session's directory) outlived squall.
    fn quit(mut self) {
        writeln!(self.stdin, "quit").unwrap();
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "squall did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
        let root = self.dir.path().to_path_buf();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_under(&root);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "processes outlived squall: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Pids of live processes whose working directory or command line is under `root`.
fn processes_under(root: &Path) -> Vec<u32> {
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

fn log_of(s: &Session, node: u64) -> String {
    std::fs::read_to_string(s.cdir().join(format!("node-{node}/node.log"))).unwrap_or_default()
}

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
    let mut ops = s.passes_with_ops(0, 40);

    // n1 holds the store: kill it, then restart it; the new process gets `init` again.
    s.ok("kill 1");
    s.out.wait_for("n1 to end", WAIT, |l| {
        (l.contains("n1") && (l.contains("killed") || l.contains("exited"))).then_some(())
    });
    s.ok("restart 1");
    ops = s.passes_with_ops(ops, 40);
    let inits = log_of(&s, 1).matches("init: ['n1', 'n2', 'n3']").count();
    assert_eq!(
        inits,
        2,
        "n1 was initialised once per process:\n{}",
        log_of(&s, 1)
    );

    // A one-way cut: n2's forwards never reach n1, n3's do. The history stays linearizable.
    let before = Session::kind_counts(&s.link(2, 1), "read");
    s.ok("cut 2->1");
    ops = s.passes_with_ops(ops, 30);
    // As below: the history grows until n2 has forwarded a read to n1 under the cut, or the deadline passes.
    let deadline = Instant::now() + WAIT;
    let (cut, after) = loop {
        let cut = s.link(2, 1);
        let after = Session::kind_counts(&cut, "read");
        if after.1 > before.1 || Instant::now() > deadline {
            break (cut, after);
        }
        ops = s.passes_with_ops(ops, 10);
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
        ops = s.passes_with_ops(ops, 10);
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
    let log = log_of(&s, 2);
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
    // A filter the kind does not label is refused, naming the kind's labels; nothing changes.
    writeln!(s.stdin, "loss *->1 100% only vote").unwrap();
    let refused = s.out.wait_for("the refusal", WAIT, |l| {
        (l.starts_with("error:") || l.starts_with("ok:")).then(|| l.to_string())
    });
    assert!(
        refused.starts_with("error: node kind `maelstrom` has no message kind `vote`"),
        "{refused}"
    );
    s.quit();

    // A program that is not a Maelstrom node: the start fails and says so from the node's log.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "up",
            "--headless",
            "-n",
            "2",
            "--maelstrom",
            "/bin/true",
            "--dir",
        ])
        .arg(dir.path().join("cluster"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("before answering `init` with `init_ok`"),
        "{err}"
    );

    // The bare kind has no node to run.
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "--node-kind", "maelstrom", "--dir"])
        .arg(dir.path().join("bare"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("name it with `--maelstrom PATH`"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "--maelstrom", "/nonexistent/mynode"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--maelstrom /nonexistent/mynode: no such file"),
        "{err}"
    );
}

/// `squall run` of a scenario whose `[cluster] maelstrom` names the node: its exit code and verdict line.
fn run_scenario(node: &str, env: &[(&str, &str)], expect: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("maelstrom.toml");
    std::fs::write(
        &file,
        format!(
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
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("bundle"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_under(dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes outlived squall run: {:?}",
            processes_under(dir.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (o.status.code(), format!("{stdout}\n--- stderr\n{stderr}"))
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
    let mut ops = s.passes_with_ops(0, 40);
    s.ok("kill 1");
    ops = s.passes_with_ops(ops, 40);
    s.ok("restart 1");
    s.ok("cut 2<->3");
    s.passes_with_ops(ops, 40);
    for n in [2, 3] {
        let log = log_of(&s, n);
        assert!(
            log.contains("answered by the lin-kv service"),
            "n{n}:\n{log}"
        );
    }
    s.quit();
}
