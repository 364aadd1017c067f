//! Issue 18's reproductions through `squall up --headless`, on real node processes: a wiped voter must not vote
//! twice in a term (S2), a damaged last WAL record must not let a leader lacking it be elected (H3), and an
//! emptied WAL beside a snapshot is refused with its cause said once (D2). Each watches the live invariants in
//! the event feed (`INVARIANT BROKEN` lines) and reads the acknowledged value back. The H3 test needs the fault
//! filesystem (/dev/fuse and root, as CI's `.ci/run` installs).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Lines, ask, leader_term};

const WAIT: Duration = Duration::from_secs(30);

struct Session {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    _dir: tempfile::TempDir,
    cdir: PathBuf,
}

fn up(extra: &[&str]) -> Session {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "3", "--dir"])
        .arg(&cdir)
        .args(extra)
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
        _dir: dir,
        cdir,
    };
    s.out.wait_for("a leader", WAIT, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
    s
}

impl Session {
    fn ask(&mut self, cmd: &str, answer: &str) -> String {
        ask(&mut self.stdin, &mut self.out, cmd, answer)
    }

    /// Sends `cmd` and returns its answer line, `ok:` or `error:`.
    fn answer(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the answer to `{cmd}`"), WAIT, |l| {
                (l.starts_with("ok:") || l.starts_with("error:")).then(|| l.to_string())
            })
    }

    /// The node that leads now (from `status`, polled until one does), and its term.
    fn current_leader(&mut self) -> (u64, u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            writeln!(self.stdin, "status").unwrap();
            let mut leader = None;
            let mut lines = 0;
            self.out.wait_for("status lines", WAIT, |l| {
                if let Some(rest) = l.strip_prefix("status: n")
                    && rest.contains(" leader term ")
                {
                    let id = rest.split_whitespace().next().and_then(|n| n.parse().ok());
                    let term = rest
                        .split(" leader term ")
                        .nth(1)
                        .and_then(|t| t.split_whitespace().next())
                        .and_then(|t| t.parse().ok());
                    leader = id.zip(term);
                }
                if l.starts_with("status:") {
                    lines += 1;
                }
                (lines == 3).then_some(())
            });
            if let Some(l) = leader {
                return l;
            }
            assert!(Instant::now() < deadline, "no node led within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Watches the feed for `window`, failing on any broken invariant (a bounded observation: the bugs this
    /// file reproduces showed theirs within a second or two).
    fn no_invariant_broken_for(&mut self, window: Duration, what: &str) {
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

    fn assert_no_invariant_broken(&self) {
        let broken: Vec<&String> = self
            .out
            .seen
            .iter()
            .filter(|l| l.contains("INVARIANT BROKEN"))
            .collect();
        assert!(broken.is_empty(), "{broken:#?}");
    }

    /// `squall kv --dir DIR ARGS...`, retried until it answers (a cluster without a leader answers nothing).
    fn kv(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
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
                "`kv {}` failed for {WAIT:?}: {text}{}",
                args.join(" ").chars().take(80).collect::<String>(),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn quit(mut self) {
        writeln!(self.stdin, "quit").unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "squall exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "squall did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn others(of: u64) -> Vec<u64> {
    (1..=3).filter(|&n| n != of).collect()
}

/// S2: leader L of term t is cut from A and B, which elect A in term t+1 (B votes for A); A and B are cut
/// apart; B is wiped; L and B can talk again. Before the fix B's hold ran out at term 0 and it granted L term
/// t+1, the term it had already voted in: two leaders of one term.
#[test]
fn a_wiped_voter_never_votes_twice_in_a_term() {
    let mut s = up(&["--seed", "7"]);
    let (l, t) = s.current_leader();
    let pair = others(l);
    let mut cut_ids = std::collections::BTreeMap::new();
    for &n in &pair {
        let answer = s.ask(&format!("cut {l}<->{n}"), "cut");
        cut_ids.insert(n, fault_id(&answer));
    }
    let (a, _) = s.out.wait_for("a leader of the pair", WAIT, |line| {
        leader_term(line).filter(|&(who, term)| who != l && term > t)
    });
    let b = if pair[0] == a { pair[1] } else { pair[0] };
    s.ask(&format!("cut {a}<->{b}"), "cut");
    s.ask(&format!("wipe {b}"), "restart it empty");
    s.ask(&format!("heal #{}", cut_ids[&b]), "");
    s.no_invariant_broken_for(
        Duration::from_secs(6),
        "the wiped node voted again in a term it had voted in",
    );
    s.ask("heal", "heal");
    s.kv(&["put", "after", "heal"]);
    assert!(s.kv(&["get", "after"]).contains("heal"));
    s.no_invariant_broken_for(Duration::from_secs(2), "after heal");
    s.assert_no_invariant_broken();
    s.quit();
}

/// H3: an acknowledged write (durable on L and F; G cut off) whose last WAL record on F is damaged while L is
/// down. Before the fix F cut it as a torn write, F and G elected G without it, and it was gone for good.
#[test]
fn a_damaged_last_wal_record_does_not_elect_a_leader_lacking_it() {
    let mut s = up(&["--disk-faults", "--snapshot-every", "0", "--seed", "9"]);
    let (l, _) = s.current_leader();
    let pair = others(l);
    let (f, g) = (pair[0], pair[1]);
    s.ask(&format!("isolate {g}"), "isolate");
    let big = "v".repeat(120_000);
    s.kv(&["put", "big", &big]);
    s.ask(&format!("kill {f}"), "kill");
    s.ask(&format!("kill {l}"), "kill");
    s.ask("heal", "heal");
    // Damage one byte well inside F's last record (the 120 kB value), through the disk's backing file.
    let wal = s.cdir.join(format!("node-{f}/disk/wal.log"));
    flip_near_end(&wal, 1000);
    let restarted = s.answer(&format!("restart {f}"));
    assert!(restarted.starts_with("ok:"), "{restarted}");
    s.no_invariant_broken_for(
        Duration::from_secs(5),
        "F and G elected a leader lacking the cut entry",
    );
    let restarted = s.answer(&format!("restart {l}"));
    assert!(restarted.starts_with("ok:"), "{restarted}");
    let got = s.kv(&["get", "big"]);
    assert!(
        got.contains(&big[..100]),
        "the acknowledged value is gone: {}",
        got.chars().take(200).collect::<String>()
    );
    s.no_invariant_broken_for(Duration::from_secs(2), "after L returned");
    s.assert_no_invariant_broken();
    let log = std::fs::read_to_string(s.cdir.join(format!("node-{f}/node.log"))).unwrap();
    assert!(log.contains("may have been acknowledged"), "{log}");
    s.quit();
}

/// The id of the fault a fault command's answer reports (`ok: … #3 …`).
fn fault_id(answer: &str) -> u64 {
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

/// Flips one bit `back` bytes before the end of `path`.
fn flip_near_end(path: &Path, back: u64) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = bytes.len() - back as usize;
    bytes[at] ^= 0x04;
    std::fs::write(path, &bytes).unwrap();
}

/// D2: a stopped node's `wal.log` emptied beside its snapshot. Before the fix it started silently at term 0
/// with its acknowledged entries gone; now it refuses, like a deleted log, and says why once.
#[test]
fn an_emptied_wal_beside_a_snapshot_is_refused_with_its_cause_said_once() {
    let mut s = up(&["--snapshot-every", "20", "--seed", "5"]);
    let (l, _) = s.current_leader();
    let victim = others(l)[0];
    for i in 0..40 {
        s.kv(&["put", &format!("k{i}"), "v"]);
    }
    let data = s.cdir.join(format!("node-{victim}/data"));
    let deadline = Instant::now() + WAIT;
    while !data.join("snapshot.bin").exists() {
        assert!(Instant::now() < deadline, "node {victim} took no snapshot");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ask(&format!("kill {victim}"), "kill");
    std::fs::write(data.join("wal.log"), b"").unwrap();
    let answer = s.answer(&format!("restart {victim}"));
    assert!(answer.starts_with("error:"), "{answer}");
    let log = std::fs::read_to_string(s.cdir.join(format!("node-{victim}/node.log"))).unwrap();
    assert!(log.contains("empty while snapshot.bin exists"), "{log}");
    assert_eq!(
        log.matches("could vote twice").count(),
        1,
        "the cause is said more than once:\n{log}"
    );
    s.assert_no_invariant_broken();
    s.quit();
}
