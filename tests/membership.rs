//! Membership changes end to end (issue 14): real node processes behind the proxy, a headless session driven
//! with `add`, `remove N`, `replace N`, the workload on and its check after each change, and what the nodes
//! themselves report (`squall status --json`: the `config` object and each node's own configuration).
//!
//! Sessions run one at a time (a lock below) with election timeouts of 600–1200 ms, so a loaded machine does
//! not turn a slow scheduler into spurious elections. Everything waits by polling with a deadline.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{Lines, wait_gone};

const WAIT: Duration = Duration::from_secs(90);
static SERIAL: Mutex<()> = Mutex::new(());

/// A running `squall up --headless` session.
struct Session {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// One node as `squall status --json` reports it.
#[derive(Debug, Clone)]
struct Node {
    id: u64,
    reachable: bool,
    role: String,
    term: u64,
    commit: u64,
    pid: Option<u32>,
    membership: Option<String>,
    voters: BTreeSet<u64>,
    learners: BTreeSet<u64>,
    committed: bool,
}

/// What `squall status --json` says: the leader's configuration and every node.
#[derive(Debug, Clone)]
struct Status {
    voters: BTreeSet<u64>,
    learners: BTreeSet<u64>,
    nodes: Vec<Node>,
}

impl Status {
    fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
    fn leader(&self) -> Option<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.reachable && n.role == "leader")
            .max_by_key(|n| n.term)
    }
}

fn ids(v: &serde_json::Value) -> BTreeSet<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

fn set(v: &[u64]) -> BTreeSet<u64> {
    v.iter().copied().collect()
}

impl Session {
    fn start(nodes: u64, extra: &[&str]) -> Session {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        Session::start_in(tempfile::tempdir().unwrap(), serial, nodes, extra)
    }

    /// A session on `tmp/cluster`, which an earlier session may have used.
    fn start_in(
        tmp: tempfile::TempDir,
        serial: std::sync::MutexGuard<'static, ()>,
        nodes: u64,
        extra: &[&str],
    ) -> Session {
        let dir = tmp.path().join("cluster");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
        cmd.args(["up", "--headless", "-n", &nodes.to_string(), "--seed", "7"])
            .args(["--election-timeout", "600..1200ms", "--heartbeat", "100ms"])
            .args(extra)
            .arg("--dir")
            .arg(&dir);
        let (child, stdin, out) = support::up_until_nodes_up(cmd, WAIT);
        let mut s = Session {
            child,
            stdin,
            out,
            dir,
            _tmp: tmp,
            _serial: serial,
        };
        s.until("a leader", |st| st.leader().map(|_| ()));
        s
    }

    fn ok(&mut self, cmd: &str) -> String {
        support::ask(&mut self.stdin, &mut self.out, cmd, "")
    }

    fn refused(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.out
            .wait_for(&format!("the refusal of `{cmd}`"), WAIT, |l| {
                if l.starts_with("ok:") {
                    panic!("`{cmd}` should have been refused: {l}");
                }
                l.starts_with("error:").then(|| l.to_string())
            })
    }

    /// Waits for a console line containing `text`; fails on a membership step that failed.
    fn feed(&mut self, text: &str) -> String {
        self.out
            .wait_for(&format!("a line with `{text}`"), WAIT, |l| {
                assert!(
                    !l.contains(" failed: ")
                        || !l.contains("add node") && !l.contains("remove node"),
                    "a membership step failed: {l}"
                );
                l.contains(text).then(|| l.to_string())
            })
    }

    /// `squall status --json --dir DIR`, parsed.
    fn status(&self) -> Status {
        let o = Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["status", "--json", "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json is not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        let nodes = doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| Node {
                id: n["id"].as_u64().unwrap(),
                reachable: n["reachable"].as_bool().unwrap_or(false),
                role: n["role"].as_str().unwrap_or("").to_string(),
                term: n["term"].as_u64().unwrap_or(0),
                commit: n["commit_index"].as_u64().unwrap_or(0),
                pid: n["pid"].as_u64().map(|p| p as u32),
                membership: n["membership"].as_str().map(String::from),
                voters: ids(&n["own_config"]["voters"]),
                learners: ids(&n["own_config"]["learners"]),
                committed: n["own_config"]["committed"].as_bool().unwrap_or(false),
            })
            .collect();
        Status {
            voters: ids(&doc["config"]["voters"]),
            learners: ids(&doc["config"]["learners"]),
            nodes,
        }
    }

    /// Polls `squall status --json` until `f` accepts it; panics with the last one seen.
    fn until<T>(&mut self, what: &str, mut f: impl FnMut(&Status) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let st = self.status();
            if let Some(v) = f(&st) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; status: {st:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every reachable member reports the same committed configuration with these voters and no
    /// learners, and the leader's `config` says the same.
    fn settled(&mut self, voters: &[u64]) -> Status {
        let want = set(voters);
        self.until(&format!("every node on configuration {want:?}"), |st| {
            let members: Vec<&Node> = want.iter().filter_map(|id| st.node(*id)).collect();
            (st.voters == want
                && st.learners.is_empty()
                && members.len() == want.len()
                && members.iter().all(|n| {
                    n.reachable && n.voters == want && n.learners.is_empty() && n.committed
                }))
            .then(|| st.clone())
        })
    }

    /// The leader's commit index now.
    fn commit(&mut self) -> u64 {
        self.until("a leader's commit index", |st| {
            st.leader().map(|l| l.commit)
        })
    }

    /// Waits for the workload to commit `n` more entries.
    fn writes_continue(&mut self, n: u64) {
        let from = self.commit();
        self.until(&format!("{n} more entries committed"), |st| {
            st.leader().filter(|l| l.commit >= from + n).map(|_| ())
        });
    }

    /// `check` until a verdict that is not inconclusive; it must pass.
    fn check_passes(&mut self) {
        support::check_passes(&mut self.stdin, &mut self.out, WAIT);
    }

    fn finish(self) {
        let _kept = self.finish_keeping();
    }

    /// Quits, checks no node outlives the session, and hands back its directory (still locked for this test).
    fn finish_keeping(mut self) -> (tempfile::TempDir, std::sync::MutexGuard<'static, ()>) {
        let pids: Vec<u32> = support::node_pids(&self.dir);
        writeln!(self.stdin, "quit").unwrap();
        assert!(self.child.wait().unwrap().success());
        let left = wait_gone(&pids, Duration::from_secs(10));
        assert!(left.is_empty(), "nodes left behind: {left:?}");
        (self._tmp, self._serial)
    }
}

/// The add's answer names the new node: `ok: add node 4: started (pid 123); ...`.
fn added_id(answer: &str) -> u64 {
    let at = answer.find("node ").expect("a node id") + 5;
    answer[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn grow_three_to_five_and_shrink_back_with_passing_checks() {
    let mut s = Session::start(3, &["--workload", "--rate", "40"]);
    s.writes_continue(20);
    for want in [4, 5] {
        let answer = s.ok("add");
        assert_eq!(added_id(&answer), want, "{answer}");
        s.feed(&format!("n{want} joins as a learner"));
        s.feed(&format!("n{want} caught up, promoted to voter"));
        s.feed("committed at");
    }
    let st = s.settled(&[1, 2, 3, 4, 5]);
    for id in 1..=5 {
        assert_eq!(
            st.node(id).unwrap().membership.as_deref(),
            Some("voter"),
            "{st:#?}"
        );
    }
    // The text table has the membership too.
    let o = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["status", "--dir"])
        .arg(&s.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().next().unwrap().contains("MEMBER"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("5 "))
        .expect("a row for node 5");
    assert!(row.contains(" voter "), "{text}");
    s.writes_continue(20);
    s.check_passes();
    // The guard: one change at a time, and nothing that names a node the cluster does not have.
    let e = s.refused("remove 9");
    assert!(e.contains("there is no node 9"), "{e}");
    let e = s.refused("promote 4");
    assert!(e.contains("voter already"), "{e}");

    for gone in [5, 4] {
        let pid = s.status().node(gone).and_then(|n| n.pid).unwrap();
        s.ok(&format!("remove {gone}"));
        s.feed(&format!("n{gone} removed: its process stopped"));
        assert!(
            wait_gone(&[pid], Duration::from_secs(10)).is_empty(),
            "node {gone} (pid {pid}) still runs after its removal"
        );
    }
    let st = s.settled(&[1, 2, 3]);
    for id in [4, 5] {
        assert_eq!(
            st.node(id).unwrap().membership.as_deref(),
            Some("removed"),
            "{st:#?}"
        );
    }
    s.writes_continue(20);
    s.check_passes();
    // The console's own status names each node's membership too.
    writeln!(s.stdin, "status").unwrap();
    s.out.wait_for("n4 listed as removed", WAIT, |l| {
        (l.starts_with("status: n4") && l.ends_with("member removed")).then_some(())
    });
    s.finish();
}

#[test]
fn removing_the_leader_moves_leadership_and_writes_continue() {
    let mut s = Session::start(3, &["--workload", "--rate", "40"]);
    s.writes_continue(10);
    let st = s.status();
    let leader = st.leader().unwrap().clone();
    s.ok(&format!("remove {}", leader.id));
    s.feed(&format!("n{} removed: its process stopped", leader.id));
    let pid = leader.pid.unwrap();
    assert!(
        wait_gone(&[pid], Duration::from_secs(10)).is_empty(),
        "the removed leader (pid {pid}) still runs"
    );
    let rest: Vec<u64> = (1..=3).filter(|i| *i != leader.id).collect();
    let st = s.settled(&rest);
    let new = st.leader().unwrap();
    assert_ne!(new.id, leader.id);
    assert!(new.term >= leader.term);
    s.writes_continue(20);
    s.check_passes();
    s.finish();
}

#[test]
fn an_add_while_partitioned_waits_for_a_majority_then_completes_after_heal() {
    let mut s = Session::start(3, &["--workload", "--rate", "20"]);
    s.writes_continue(5);
    let leader = s.status().leader().unwrap().id;
    let followers: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    for f in &followers {
        s.ok(&format!("isolate {f}"));
    }
    let answer = s.ok("add");
    let new = added_id(&answer);
    s.feed("waits for a majority of the current configuration");
    // No majority of {1,2,3} is reachable: the new node's acknowledgements must not make one, so no
    // configuration that names it commits anywhere while the partition lasts.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let st = s.status();
        for n in st.nodes.iter().filter(|n| n.reachable) {
            let names_new = n.voters.contains(&new) || n.learners.contains(&new);
            assert!(
                !(names_new && n.committed),
                "a configuration naming node {new} committed without a majority: {st:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    s.ok("heal");
    s.feed(&format!("n{new} caught up, promoted to voter"));
    s.settled(&[1, 2, 3, new]);
    s.writes_continue(10);
    s.check_passes();
    s.finish();
}

#[test]
fn killing_the_leader_mid_change_never_half_applies_it() {
    let mut s = Session::start(3, &["--workload", "--rate", "30"]);
    s.writes_continue(10);
    let answer = s.ok("add");
    let new = added_id(&answer);
    let killed = s.ok("kill leader");
    let (old, _) = support::killed_leader(&killed).expect("the kill names the leader");
    s.ok(&format!("restart {old}"));
    // The change either went through before the kill or is finished by the next leader: every node ends on
    // one configuration, the same everywhere.
    s.feed(&format!("n{new} caught up, promoted to voter"));
    let st = s.settled(&[1, 2, 3, new]);
    let configs: BTreeSet<(Vec<u64>, Vec<u64>)> = st
        .nodes
        .iter()
        .filter(|n| n.reachable)
        .map(|n| {
            (
                n.voters.iter().copied().collect(),
                n.learners.iter().copied().collect(),
            )
        })
        .collect();
    assert_eq!(configs.len(), 1, "nodes disagree: {st:#?}");
    s.writes_continue(10);
    s.check_passes();
    s.finish();
}

#[test]
fn a_learner_far_behind_catches_up_by_snapshot_before_promotion() {
    let mut s = Session::start(
        3,
        &["--workload", "--rate", "200", "--snapshot-every", "100"],
    );
    // Many writes, compacted: the new node's log cannot come from entries alone.
    s.until("600 entries committed and compacted", |st| {
        st.leader().filter(|l| l.commit >= 600).map(|_| ())
    });
    let answer = s.ok("add");
    let new = added_id(&answer);
    let installed = s.feed(&format!("n{new} installs the leader's snapshot"));
    let promoted = s.feed(&format!("n{new} caught up, promoted to voter"));
    let at = |l: &str| -> f64 {
        l.split_whitespace()
            .next()
            .and_then(|w| w.strip_suffix('s'))
            .and_then(|w| w.parse().ok())
            .unwrap()
    };
    assert!(
        at(&installed) <= at(&promoted),
        "promoted before its snapshot: {installed} / {promoted}"
    );
    s.settled(&[1, 2, 3, new]);
    s.check_passes();
    s.finish();
}

#[test]
fn a_removed_node_restarted_with_its_old_data_causes_no_election() {
    let mut s = Session::start(3, &["--workload", "--rate", "20"]);
    s.writes_continue(10);
    let leader = s.status().leader().unwrap().id;
    let gone = (1..=3).find(|i| *i != leader).unwrap();
    s.ok(&format!("remove {gone}"));
    s.feed(&format!("n{gone} removed: its process stopped"));
    let rest: Vec<u64> = (1..=3).filter(|i| *i != gone).collect();
    let st = s.settled(&rest);
    let (l, term) = st.leader().map(|l| (l.id, l.term)).unwrap();
    let answer = s.ok(&format!("restart {gone}"));
    assert!(answer.contains("as a non-member"), "{answer}");
    s.until(&format!("node {gone} answering again"), |st| {
        st.node(gone).filter(|n| n.reachable).map(|_| ())
    });
    // Twenty heartbeats and several election timeouts of the restarted node: the members' term and leader
    // never move.
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        let st = s.status();
        for id in &rest {
            if let Some(n) = st.node(*id).filter(|n| n.reachable) {
                assert_eq!(
                    n.term, term,
                    "node {id}'s term moved after the removed node {gone} came back: {st:#?}"
                );
            }
        }
        assert_eq!(st.leader().map(|n| n.id), Some(l), "{st:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    s.writes_continue(10);
    s.check_passes();
    s.finish();
}

#[test]
fn a_reused_directory_starts_the_recorded_members_after_changes() {
    // 3 → add 4 → remove 1, remove 2: the configuration is {3,4}.
    let mut s = Session::start(3, &[]);
    let answer = s.ok("add");
    assert_eq!(added_id(&answer), 4, "{answer}");
    s.feed("n4 caught up, promoted to voter");
    s.settled(&[1, 2, 3, 4]);
    for gone in [1, 2] {
        s.ok(&format!("remove {gone}"));
        s.feed(&format!("n{gone} removed"));
    }
    s.settled(&[3, 4]);
    let (tmp, serial) = s.finish_keeping();
    let record =
        std::fs::read_to_string(tmp.path().join("cluster/members.json")).unwrap_or_default();
    // The same directory again, with `-n 3`: nodes 3 and 4 start (4 with --join), never 1 and 2.
    let mut s = Session::start_in(tmp, serial, 3, &["--workload", "--rate", "40"]);
    let st = s.settled(&[3, 4]);
    let started: BTreeSet<u64> = st.nodes.iter().map(|n| n.id).collect();
    assert_eq!(started, set(&[3, 4]), "members.json: {record}\n{st:#?}");
    s.writes_continue(10);
    let e = s.refused("restart 1");
    assert!(e.contains("node 1 was removed"), "{e}");
    // Ids are never reused: the next node is 5, and it joins the recorded configuration.
    let answer = s.ok("add");
    assert_eq!(added_id(&answer), 5, "{answer}");
    s.feed("n5 caught up, promoted to voter");
    s.settled(&[3, 4, 5]);
    s.check_passes();
    s.finish();
}

#[test]
fn a_learner_that_cannot_catch_up_says_how_far_it_is_and_remove_cancels_the_add() {
    let mut s = Session::start(
        3,
        &["--workload", "--rate", "200", "--snapshot-every", "100"],
    );
    s.until("300 entries committed and compacted", |st| {
        st.leader().filter(|l| l.commit >= 300).map(|_| ())
    });
    // No snapshot reaches anyone: the new node can never catch up.
    s.ok("loss * 100% only snapshot");
    let answer = s.ok("add");
    let new = added_id(&answer);
    let line = s.feed(&format!("n{new} catching up: match index"));
    assert!(line.contains(&format!("`remove {new}` cancels")), "{line}");
    let pid = s.status().node(new).and_then(|n| n.pid).unwrap();
    let answer = s.ok(&format!("remove {new}"));
    assert!(answer.contains("cancelled"), "{answer}");
    s.feed(&format!("n{new} removed"));
    assert!(
        wait_gone(&[pid], Duration::from_secs(10)).is_empty(),
        "node {new} (pid {pid}) still runs after its add was cancelled"
    );
    s.ok("heal");
    // The change is over: the configuration is the first three again, and a new change may start.
    s.settled(&[1, 2, 3]);
    let e = s.refused(&format!("promote {new}"));
    assert!(!e.contains("under way"), "{e}");
    s.writes_continue(20);
    s.finish();
}

#[test]
fn a_removal_without_a_running_majority_is_refused_and_a_dead_node_s_removal_says_so() {
    let mut s = Session::start(3, &[]);
    let leader = s.until("a leader", |st| st.leader().map(|l| l.id));
    let others: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let (down, up) = (others[0], others[1]);
    s.ok(&format!("kill {down}"));
    // The leader's removal would leave {down, up} with only `up` running: no majority.
    let e = s.refused(&format!("remove {leader}"));
    assert!(
        e.contains("need 2") && e.contains(&format!("restart {down}")),
        "{e}"
    );
    // Removing the dead node itself is fine, and the feed does not claim it stopped a process.
    s.ok(&format!("remove {down}"));
    let line = s.feed(&format!("n{down} removed"));
    assert!(
        line.contains("was not running") && !line.contains("process stopped"),
        "{line}"
    );
    s.settled(&[leader, up]);
    // A removed node can neither lead nor be wiped back into the cluster as a voter.
    let e = s.refused(&format!("wipe {down}"));
    assert!(e.contains("not a member"), "{e}");
    let e = s.refused(&format!("transfer {down}"));
    assert!(e.contains("was removed") && !e.contains("restart"), "{e}");
    s.finish();
}

#[test]
fn a_partition_shape_is_drawn_over_the_members_and_never_answers_ok_for_no_cut() {
    let mut s = Session::start(5, &[]);
    for gone in [1, 2] {
        s.ok(&format!("remove {gone}"));
        s.feed(&format!("n{gone} removed"));
    }
    s.settled(&[3, 4, 5]);
    // Over all five ids `halves` was {1,2} | {3,4,5}: it cut only links to removed nodes.
    let answer = s.ok("partition halves");
    assert!(answer.contains("3 | 4,5"), "{answer}");
    s.ok("heal");
    let e = s.refused("partition 1,2|3,4,5");
    assert!(e.contains("removed"), "{e}");
    s.finish();
}

#[test]
fn add_learner_stays_a_learner_and_demote_makes_a_voter_a_learner() {
    let mut s = Session::start(3, &["--workload", "--rate", "40"]);
    let answer = s.ok("add --learner");
    assert!(answer.contains("as a learner"), "{answer}");
    let new = added_id(&answer);
    s.feed(&format!("n{new} joins as a learner"));
    // Caught up with the leader, and well past it: never promoted by itself.
    s.until(&format!("learner {new} caught up"), |st| {
        let leader = st.leader()?.commit;
        st.node(new)
            .filter(|n| n.reachable && n.commit + 5 >= leader && leader > 0)
            .map(|_| ())
    });
    s.writes_continue(30);
    let st = s.status();
    assert_eq!(st.voters, set(&[1, 2, 3]), "{st:#?}");
    assert_eq!(st.learners, set(&[new]), "{st:#?}");

    let leader = st.leader().unwrap().id;
    let voter = (1..=3).find(|i| *i != leader).unwrap();
    let answer = s.ok(&format!("demote {voter}"));
    assert!(
        answer.contains(&format!("demote node {voter} to learner")),
        "{answer}"
    );
    let rest: BTreeSet<u64> = (1..=3).filter(|i| *i != voter).collect();
    s.until(&format!("node {voter} a learner"), |st| {
        (st.voters == rest && st.learners == set(&[voter, new])).then_some(())
    });
    let e = s.refused(&format!("demote {voter}"));
    assert!(e.contains("learner already"), "{e}");
    s.ok(&format!("promote {new}"));
    s.writes_continue(10);
    s.check_passes();
    s.finish();
}
