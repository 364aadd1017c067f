//! Issue 18's reproductions through `squall up --headless`, on real node processes: a WAL record written but
//! never synced before a crash is made durable when the node reopens it (S1), a wiped voter must not vote twice
//! in a term (S2), a wiped member must not vote with its startup configuration for a removed node (S3), a
//! damaged last WAL record must not let a leader lacking it be elected (H3), an emptied WAL beside a
//! snapshot is refused with its cause said once (D2), and a wiped voter is not kept recovering by a removed
//! voter that the leader's snapshot still names (tester3 finding 1). Each watches the live invariants in the event feed
//! (`INVARIANT BROKEN` lines) and reads the acknowledged value back. The S1 and H3 tests need the fault
//! filesystem (/dev/fuse and root, as CI's `.ci/run` installs).
//!
//! `SQUALL_TEST_NODE_BIN=PATH` runs them against another build of `squall-node`, such as the node before the
//! fixes (each of them fails there).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::leader_term;
use support::session::{Session, Up, fault_id};

const WAIT: Duration = Duration::from_secs(30);

/// A 3-node session with `extra` flags, started once a leader is named.
fn up(extra: &[&str]) -> Session {
    let mut args = vec!["-n", "3"];
    args.extend_from_slice(extra);
    Up::new(&args).wait(WAIT).start()
}

/// Heals every fault, shows the cluster takes and reads back a write, that no invariant broke then or for two
/// seconds after, and quits.
fn heal_write_and_quit(mut s: Session) {
    s.heal_all();
    s.kv(&["put", "after", "heal"]);
    assert!(s.kv(&["get", "after"]).contains("heal"));
    s.no_invariant_broken_for(Duration::from_secs(2), "after heal");
    s.assert_no_invariant_broken();
    s.quit();
}

fn others(of: u64) -> Vec<u64> {
    (1..=3).filter(|&n| n != of).collect()
}

/// S1: a follower N is killed inside the write(2) of an entry's WAL record (its disk is slowed, and the test
/// waits until N's thread is in that call), so the record lands with no fdatasync after it; restarted, N
/// acknowledges the entry, and the write is acknowledged with N's vote (F is cut off). A power cut of N then
/// drops whatever N never synced, the leader is killed, and N and F must elect a leader holding the write.
///
/// Before the fix the restarted N trusted the unsynced record: the power cut took it, and N and F elected a
/// leader without it (seen with `SQUALL_TEST_NODE_BIN` on the node before the fix: `INVARIANT BROKEN:
/// state-machine safety violated: index 3 is committed with term 1 on n2 but with term 2 on n3`). Now opening
/// syncs what it recovered.
#[test]
fn a_wal_record_written_but_never_synced_before_a_crash_is_made_durable_on_reopen() {
    let mut s = up(&[
        "--disk-faults",
        "--election-timeout",
        "4000..8000ms",
        "--seed",
        "11",
    ]);
    let (l, t) = s.current_leader();
    let pair = others(l);
    let (n, f) = (pair[0], pair[1]);
    s.kv(&["put", "k", "old"]);
    // N holds everything so far, so the next WAL write it makes is the put's.
    s.until("N to hold what the leader committed", |ns| {
        let (ln, nn) = (ns.get(&l)?, ns.get(&n)?);
        (nn.running && nn.commit >= ln.commit).then_some(())
    });
    s.ask(&format!("isolate {f}"), "isolate");
    let pid = s.nodes()[&n]
        .pid
        .unwrap_or_else(|| panic!("no pid for node {n}"));
    // Every operation of N's disk takes 300 ms: the put's WAL write waits in the fault filesystem, N is killed
    // there, and the write lands as the killed process leaves it, with no fdatasync after it. Short enough that
    // N is back and acknowledges the entry before the client's attempt times out (1 s): a retry would append a
    // second entry whose write and fdatasync on N would make the first durable too.
    s.ask(&format!("disk {n} slow 300ms"), "slow node");
    let backing = s.cdir.join(format!("node-{n}/disk/wal.log"));
    let size = || std::fs::metadata(&backing).map_or(0, |m| m.len());
    let before = size();
    let mut put = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["kv", "--timeout", "60s", "--dir"])
        .arg(&s.cdir)
        .args(["put", "k", "acked"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while !writing(pid, "wal.log") {
        assert!(
            Instant::now() < deadline,
            "node {n} (pid {pid}) never wrote to its wal.log within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    s.ask(&format!("kill {n}"), "kill");
    let left = support::wait_gone(&[pid], WAIT);
    assert!(left.is_empty(), "node {n} (pid {pid}) outlived its kill");
    let landed = size();
    assert!(
        landed > before,
        "the killed write never landed: wal.log stayed at {before} bytes"
    );
    s.ask(&format!("disk {n} heal"), "heal");
    s.ask(&format!("restart {n}"), "restart");
    // The put is acknowledged once the restarted N answers the leader's probe.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = put.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the put was never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = put.wait_with_output().unwrap();
    assert!(
        status.success(),
        "the put was not acknowledged: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ask(&format!("powercut {n}"), "power cut");
    s.ask(&format!("kill {l}"), "kill");
    s.heal_all();
    s.ask(&format!("restart {n}"), "restart");
    s.until("N or F to lead a later term", |ns| {
        ns.values()
            .find(|x| x.running && x.role == "leader" && x.id != l && x.term > t)
            .map(|_| ())
    });
    s.no_invariant_broken_for(
        Duration::from_secs(3),
        "N and F elected a leader lacking the acknowledged write",
    );
    s.ask(&format!("restart {l}"), "restart");
    let got = s.kv(&["get", "k"]);
    assert!(
        got.contains("acked"),
        "the acknowledged value is gone: `get k` answered {got:?}"
    );
    s.no_invariant_broken_for(Duration::from_secs(2), "after L returned");
    s.assert_no_invariant_broken();
    s.quit();
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
    heal_write_and_quit(s);
}

/// S3: X of {X, Y, Z} is killed; node 4 is added and promoted, and X removed while down: the configuration is
/// {Y, Z, 4}. With {X, Z} cut from {Y, 4}, Z is wiped (it restarts with the bootstrap configuration {X, Y, Z})
/// and the removed X is restarted with its old log ({X, Y, Z}). Before the fix the empty Z granted X's votes and
/// X led {X, Y, Z} on the quorum {X, Z} while {Y, 4}, a majority of {Y, Z, 4}, had a leader of their own: two
/// leaders with disjoint quorums. Now Z recovers before it votes, and it cannot learn the term from a majority
/// of the others across the partition, so X never leads.
#[test]
fn a_wiped_member_does_not_elect_a_removed_node_with_its_startup_configuration() {
    let mut s = up(&["--seed", "13"]);
    let (l, _) = s.current_leader();
    // X is a follower, so that the kill costs no election.
    let pair = others(l);
    let (x, z) = (pair[0], pair[1]);
    let y = l;
    s.ask(&format!("kill {x}"), "kill");
    s.ask("add", "add node 4");
    s.until("node 4 to be a voter", |ns| {
        ns.get(&4)
            .is_some_and(|n| n.running && n.line.ends_with("member voter"))
            .then_some(())
    });
    s.ask(&format!("remove {x}"), "remove");
    let deadline = Instant::now() + WAIT;
    loop {
        let line = s.node_line(x);
        if line.ends_with("member removed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {x}'s removal did not commit within {WAIT:?}: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `partition` divides members only, and X is no longer one: the same cut, link by link.
    for (a, b) in [(x, y), (x, 4), (z, y), (z, 4)] {
        s.ask(&format!("cut {a}<->{b}"), "cut");
    }
    s.ask(&format!("wipe {z}"), "restart it empty");
    let restarted = s.answer(&format!("restart {x}"));
    assert!(restarted.starts_with("ok:"), "{restarted}");
    // Watch long enough for many of X's election timeouts (150–300 ms): it must never lead.
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        let ns = s.nodes();
        if let Some(n) = ns.get(&x).filter(|n| n.running && n.role == "leader") {
            let others: Vec<&String> = ns.values().map(|n| &n.line).collect();
            panic!(
                "the removed node {x} leads term {} on the wiped node {z}'s vote: {others:#?}",
                n.term
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    s.assert_no_invariant_broken();
    heal_write_and_quit(s);
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

/// True while a thread of process `pid` is inside write(2) or pwrite64(2) on a file whose path ends with `name` (read from
/// `/proc/PID/task/*/syscall`, which names the call and its arguments while a thread is blocked in one).
fn writing(pid: u32, name: &str) -> bool {
    // write(2) and pwrite64(2): the node writes its preallocated WAL at the log's end with pwrite.
    const WRITE: [u64; 2] = if cfg!(target_arch = "aarch64") {
        [64, 68]
    } else {
        [1, 18]
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let Ok(call) = std::fs::read_to_string(task.path().join("syscall")) else {
            return false;
        };
        let mut words = call.split_whitespace();
        let nr = words.next().and_then(|w| w.parse::<u64>().ok());
        let fd = words
            .next()
            .and_then(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok());
        nr.is_some_and(|nr| WRITE.contains(&nr))
            && fd.is_some_and(|fd| {
                std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|p| p.ends_with(name))
            })
    })
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

/// Tester report A1 (issue 18), the scenario `/work/tester/repro/minority-wipe.toml`: 5 voters; nodes 1 and 2 are
/// cut from {3, 4, 5} while {3, 4, 5} commit counter writes; nodes 3 and 4 are wiped (two of five: a minority);
/// then node 5 is cut from the rest. Before the fix nodes 3 and 4, both empty and recovering, vouched for each
/// other, granted node 1 term 2 and node 1 led without the writes {3, 4, 5} had committed: `squall run` exited 1
/// with `counter check: 7 lost` and `state-machine safety violated`. Now they wait for node 5. Seen failing on
/// the code before the fix (5b98261, this test unchanged): exit 1, `INVARIANT BROKEN: state-machine safety
/// violated: index 53 is committed with term 1 on n5 but with term 2 on n3`.
#[test]
fn two_wiped_voters_of_five_never_lose_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("minority-wipe.toml");
    std::fs::write(&file, MINORITY_WIPE).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squall"));
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("bundle"));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) && stdout.contains("verdict: valid (expected valid)"),
        "exit {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status.code()
    );
    assert!(
        !stdout.contains("INVARIANT BROKEN"),
        "an invariant broke:\n{stdout}"
    );
}

/// The tester's scenario (seed 13), unchanged.
const MINORITY_WIPE: &str = r#"
name = "minority-wipe"
expect = "valid"

[cluster]
nodes = 5
seed = 13

[workload]
kind = "counter"
rate = 20

[run]
duration = "16s"
recovery = "8s"

[[timeline]]
at = "3s"
do = "partition 1,2|3,4,5"
until = "8s"

[[timeline]]
at = "6s"
do = "wipe 3"

[[timeline]]
at = "6300ms"
do = "wipe 4"

[[timeline]]
at = "8010ms"
do = "partition 1,2,3,4|5"
until = "14s"
"#;

/// Tester report A3 (issue 18): after `add`, `add`, `remove 2`, a wiped node 1 restarted with its startup
/// `--peers` ({1, 2, 3}, node 2 long gone) and stayed at term 0 for good, so after `kill 4` the cluster had no
/// leader although 3 of its 4 voters ran. A restart now starts with the cluster's current configuration.
/// Seen failing on the code before the fix (5b98261, this test unchanged): `waited 30s for node 1 to be caught
/// up by a leader`, node 1 `running … follower term 0 leader none commit 0 … member voter`.
#[test]
fn a_wiped_node_restarts_with_the_current_configuration_and_the_cluster_survives_a_later_kill() {
    let mut s = up(&["--seed", "43"]);
    for id in [4, 5] {
        s.ask("add", &format!("add node {id}"));
        s.until(&format!("node {id} to be a voter"), |ns| {
            ns.get(&id)
                .is_some_and(|n| n.running && n.line.ends_with("member voter"))
                .then_some(())
        });
    }
    s.ask("remove 2", "remove");
    let deadline = Instant::now() + WAIT;
    loop {
        let line = s.node_line(2);
        if line.ends_with("member removed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2's removal did not commit within {WAIT:?}: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ask("wipe 1", "restart it empty");
    s.until("node 1 to be caught up by a leader", |ns| {
        let n1 = ns.get(&1)?;
        (n1.running && n1.term > 0 && n1.commit > 0 && n1.leader.is_some()).then_some(())
    });
    // Node 4 killed: voters {1, 3, 5} of {1, 3, 4, 5} still run and must elect (or keep) a leader.
    s.ask("kill 4", "kill");
    let (after, term) = s.until("a leader without node 4", |ns| {
        ns.values()
            .find(|n| n.running && n.role == "leader" && n.id != 4)
            .map(|n| (n.id, n.term))
    });
    s.kv(&["put", "after-wipe", "ok"]);
    assert_eq!(
        s.kv(&["get", "after-wipe"]).trim(),
        "ok",
        "leader {after} (term {term}) did not serve a write"
    );
    s.assert_no_invariant_broken();
}

/// Tester3 finding 1 (issue 18): a wiped voter learns the current term from the other voters of the
/// configuration it starts with ({1, 2, 3}), then installs the leader's snapshot, taken while node 4 was still a
/// voter; node 4's removal follows the snapshot in the leader's log, and node 4's process is stopped. The
/// snapshot's configuration {1, 2, 3, 4} made the wiped node wait to hear node 4's term before it took any
/// append, the removal's too, so it stayed `recovering` for good. A term once learned now stays good enough for
/// a leader's appends: the removal arrives, and the node recovers.
#[test]
fn a_wiped_voter_is_not_kept_recovering_by_a_removed_voter_in_the_leaders_snapshot() {
    let mut s = up(&["--snapshot-every", "20", "--seed", "21"]);
    s.ask("add", "add node 4");
    s.until("node 4 to be a voter", |ns| {
        ns.get(&4)
            .is_some_and(|n| n.running && n.line.ends_with("member voter"))
            .then_some(())
    });
    // Writes while node 4 votes, enough for a snapshot at 40: a compaction keeps a catch-up tail of one
    // snapshot interval (20 entries), so a snapshot at 20 would leave the whole log for the wiped node, and no
    // snapshot would be sent to it. Fewer than 60 entries in all, so no snapshot follows the removal.
    for i in 0..45 {
        s.kv(&["put", &format!("k{i}"), "v"]);
    }
    let (l, _) = s.current_leader();
    s.until("a snapshot at 40 on the leader", |ns| {
        ns.get(&l).is_some_and(|n| n.snapshot >= 40).then_some(())
    });
    s.ask("remove 4", "remove");
    s.until("node 4's removal to commit", |ns| {
        ns.get(&4)
            .is_some_and(|n| n.line.ends_with("member removed"))
            .then_some(())
    });
    let (l, _) = s.current_leader();
    let removed_by = s.nodes()[&l].commit;
    let w = others(l)[0];
    s.ask(&format!("wipe {w}"), "restart it empty");
    s.until(&format!("node {w} to recover"), |ns| {
        let n = ns.get(&w)?;
        (n.running && n.role != "recovering" && n.commit >= removed_by && n.leader.is_some())
            .then_some(())
    });
    let snap = s.nodes()[&w].snapshot;
    assert!(
        (40..removed_by).contains(&snap),
        "node {w} holds a snapshot at {snap}, not one from before the removal (committed by {removed_by}): \
         the test shows nothing"
    );
    s.assert_no_invariant_broken();
    heal_write_and_quit(s);
}

/// A wiped voter with another voter down: kill follower D, wipe follower W. W must learn the current term from
/// every other voter before it votes again (`raft::recovery`, rule 2), so it stays recovering, and says in
/// `status` whose term it waits for, until D returns; then it recovers and the cluster takes writes.
#[test]
fn a_wiped_voter_with_another_voter_down_stays_recovering_and_says_whose_term_it_waits_for() {
    let mut s = up(&["--seed", "5"]);
    let (l, _) = s.current_leader();
    let pair = others(l);
    let (down, wiped) = (pair[0], pair[1]);
    s.ask(&format!("kill {down}"), "kill");
    s.ask(&format!("wipe {wiped}"), "restart it empty");
    let waits = format!(" recovering: waiting for n{down}'s term");
    let deadline = Instant::now() + WAIT;
    loop {
        let line = s.node_line(wiped);
        if line.contains(&waits) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {wiped}, wiped with node {down} down, did not say \"{waits}\" within {WAIT:?}: {line}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `status --json` says it too, as values (tester finding F18: it said `follower` and nothing more).
    let recovery = json_node(&s, wiped)["recovery"].clone();
    assert_eq!(
        recovery["waiting_for_voters"],
        serde_json::json!([down]),
        "{recovery}"
    );
    assert!(
        recovery["recovering"] == true
            && recovery["waiting_for"]
                .as_str()
                .is_some_and(|w| w.contains(&format!("n{down}'s term"))),
        "{recovery}"
    );
    s.ask(&format!("restart {down}"), "restart");
    s.until(&format!("node {wiped} to recover"), |ns| {
        let n = ns.get(&wiped)?;
        (n.running && n.role != "recovering" && n.leader.is_some()).then_some(())
    });
    // The feed says which way it recovered, and `status --json` counts the recovery and says how it ended.
    let how = s.out.wait_for("the recovery in the feed", WAIT, |l| {
        l.split_once(&format!("n{wiped} recovered: "))
            .map(|(_, how)| how.to_string())
    });
    assert!(
        how.starts_with("leader n") || how.starts_with("every other member vouched"),
        "{how}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let recovery = json_node(&s, wiped)["recovery"].clone();
        if recovery["recovering"] == false {
            assert_eq!(recovery["recoveries"], 1, "{recovery}");
            assert!(recovery["recovered_by"].is_string(), "{recovery}");
            assert!(recovery["waiting_for"].is_null(), "{recovery}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`status --json` still shows node {wiped} recovering: {recovery}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    heal_write_and_quit(s);
}

/// Node `id`'s object in `squall status --json`.
fn json_node(s: &Session, id: u64) -> serde_json::Value {
    let doc = support::status_json(&s.cdir);
    doc["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no node {id} in `status --json`: {doc}"))
}

/// The last `n` lines of the session's output that are not answers to the test's own polls (`status`,
/// `held`), for a failure message.
fn feed_tail(s: &Session, n: usize) -> String {
    let feed: Vec<&str> = s
        .out
        .seen
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("status:") && !l.starts_with("held:") && !l.starts_with("ok:"))
        .collect();
    feed[feed.len().saturating_sub(n)..].join("\n")
}

/// The frames `held` lists: (from, to, kind) in arrival order.
fn held_frames(s: &mut Session) -> Vec<(u64, u64, String)> {
    s.listing("held", "held:")
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (from, to) = w.get(1)?.split_once("->")?;
            Some((from.parse().ok()?, to.parse().ok()?, w.get(2)?.to_string()))
        })
        .collect()
}

/// L1: `promote N` of a learner the leader never heard from. {1} with learner 2; every frame on every link is
/// held (`hold *` covers the links a new node gets), and node 3 is added as a learner: its learner step
/// commits on node 1 alone, but nothing node 1 sends reaches node 3 and nothing of node 3 comes back. Before
/// the fix its match index 0 was within 512 entries of the leader's log and the promotion was accepted: {1, 3}
/// with 3 never heard from, stuck for good. Now it is refused, saying why, the cluster still takes writes,
/// and once the frames flow the same `promote` succeeds. Seen failing with `SQUALL_TEST_NODE_BIN` on a node
/// with the check reverted (the promote answered `ok:`).
#[test]
fn promoting_a_learner_never_heard_from_is_refused_and_the_cluster_keeps_its_majority() {
    let mut s = Up::new(&["-n", "1", "--seed", "3"]).wait(WAIT).start();
    s.ask("add --learner", "");
    s.until("node 2 to be a learner", |ns| {
        ns.get(&2)
            .is_some_and(|n| n.running && n.line.ends_with("member learner"))
            .then_some(())
    });
    s.ask("hold *", "hold");
    s.ask("add --learner", "");
    s.until("node 3 to be a learner", |ns| {
        ns.get(&3)
            .is_some_and(|n| n.line.ends_with("member learner"))
            .then_some(())
    });
    let held = held_frames(&mut s);
    assert!(
        held.iter().any(|(from, to, _)| (*from, *to) == (1, 3)),
        "nothing node 1 sent node 3 is held: {held:?}"
    );
    // The leader refuses it as "not now"; the console keeps asking (answering `pending:`) and gives up, saying
    // why, as the feed tells.
    s.not_done("promote 3", "learner 3 has not answered the leader yet");
    s.kv(&["put", "still", "writes"]);
    assert!(s.kv(&["get", "still"]).contains("writes"));
    s.ok("release *");
    s.until("node 3 to answer the leader", |ns| {
        let n = ns.get(&3)?;
        (n.running && n.leader == Some(1) && n.commit >= ns.get(&1)?.commit).then_some(())
    });
    s.ask("promote 3", "");
    s.until("node 3 to be a voter", |ns| {
        ns.get(&3)
            .is_some_and(|n| n.line.ends_with("member voter"))
            .then_some(())
    });
    heal_write_and_quit(s);
}

/// L2: a leader removes itself; the TimeoutNow of its hand-over is lost. Every TimeoutNow the leader sends is
/// held, so none arrives: the removed leader (kept running by squall until a successor leads) must tell the
/// next voter, long before any election timeout (4–8 s here). The first frame is dropped and the second
/// released, and that voter leads the next term at once. Before the fix the leader told one voter only, and
/// squall stopped it as soon as its removal committed, so nothing came after the lost frame and the cluster
/// waited a whole election timeout. Seen failing with `SQUALL_TEST_NODE_BIN` on a node with the resend
/// reverted (one TimeoutNow held, never a second).
#[test]
fn a_timeout_now_lost_after_the_leader_removed_itself_goes_to_the_next_voter() {
    let mut s = up(&["--election-timeout", "4000..8000ms", "--seed", "21"]);
    let (l, t) = s.current_leader();
    s.kv(&["put", "before", "removal"]);
    s.until("every node to hold what the leader committed", |ns| {
        let lc = ns.get(&l)?.commit;
        ns.values()
            .all(|n| n.running && n.commit >= lc)
            .then_some(())
    });
    s.ask(&format!("hold {l}->* only timeout-now"), "hold");
    s.ask(&format!("remove {l}"), "remove");
    let timeouts = |s: &mut Session| -> Vec<u64> {
        held_frames(s)
            .into_iter()
            .filter(|(from, _, kind)| *from == l && kind == "timeout-now")
            .map(|(_, to, _)| to)
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    // The most voters seen told at once (held frames of a stopped node's links go with it).
    let mut most = Vec::new();
    let told = loop {
        let told = timeouts(&mut s);
        if told.len() >= 2 {
            break told;
        }
        if told.len() > most.len() {
            most = told;
        }
        assert!(
            Instant::now() < deadline,
            "the removed leader {l} told {most:?} (TimeoutNow held) and nobody after that within {WAIT:?}; \
             the feed:\n{}",
            feed_tail(&s, 40)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (first, second) = (told[0], told[1]);
    assert_ne!(first, second, "the same voter was told twice: {told:?}");
    s.ok(&format!("drop-held {l}->{first}"));
    s.ok(&format!("release {l}->{second}"));
    s.until(&format!("node {second} to lead a later term"), |ns| {
        ns.get(&second)
            .is_some_and(|n| n.running && n.role == "leader" && n.term > t)
            .then_some(())
    });
    s.out.wait_for("the removed leader to stop", WAIT, |line| {
        line.contains(&format!("n{l} removed: its process stopped"))
            .then_some(())
    });
    heal_write_and_quit(s);
}

/// The slow-follower snapshot loop (issue 18, etcd#2698/#3292): a follower down while the leader writes and
/// compacts comes back over a slow link (150 ms each way) and catches up by one snapshot. From then on it must
/// continue from the log across the leader's next compactions (the catch-up tail), not get a new full
/// snapshot at almost every one as before the fix (5 installs in 30 s then). Seen failing with
/// `SQUALL_TEST_NODE_BIN` on a node without the catch-up tail (a snapshot installed after catching up).
#[test]
fn a_follower_caught_up_by_snapshot_over_a_slow_link_continues_from_the_log_across_compactions() {
    let mut s = up(&["--snapshot-every", "50", "--seed", "17"]);
    let (l, _) = s.current_leader();
    let f = others(l)[0];
    s.ask(&format!("kill {f}"), "kill");
    let held = s.nodes()[&f].commit;
    s.ok("workload rate 40");
    s.ok("workload on");
    s.until("the leader to compact well past the follower's log", |ns| {
        (ns.get(&l)?.snapshot >= held + 150).then_some(())
    });
    s.ask(&format!("delay {f} 150ms"), "delay");
    s.ask(&format!("restart {f}"), "restart");
    let installs = format!("n{f} installs the leader's snapshot");
    s.out
        .wait_for("the follower's first snapshot install", WAIT, |line| {
            line.contains(&installs).then_some(())
        });
    s.until("the follower to catch up", |ns| {
        let (ln, fnode) = (ns.get(&l)?, ns.get(&f)?);
        (fnode.running && fnode.commit + 20 >= ln.commit).then_some(())
    });
    let mark = s.out.seen.len();
    let start = s.nodes()[&l].snapshot;
    let compactions = s.until("four more compactions on the leader", |ns| {
        let now = ns.get(&l)?.snapshot;
        (now >= start + 200).then_some(now)
    });
    let again: Vec<&String> = s.out.seen[mark..]
        .iter()
        .filter(|line| line.contains(&installs))
        .collect();
    assert!(
        again.is_empty(),
        "node {f} kept receiving full snapshots after catching up (leader compacted from {start} to \
         {compactions}): {again:#?}"
    );
    let fnode = s.nodes()[&f].clone();
    assert!(fnode.running, "{}", fnode.line);
    s.ok("workload off");
    heal_write_and_quit(s);
}

/// What option (b) would give: a wiped voter that finishes recovering with only the reachable voters while
/// another voter is down. Ignored on purpose: squall keeps the every-voter rule (option (a)), because no safe
/// rule can use only the reachable voters. The unreachable voter may be the candidate holding the wiped node's
/// forgotten vote, with its election still in flight (simulation seed 800000000531), so the wiped node cannot
/// know the highest term it may have voted in without hearing from it. Kept to show the limit in one run:
/// `cargo test --test node_safety -- --ignored` fails here by design.
#[test]
#[ignore = "option (a): a wiped voter waits for every other voter's term (raft::recovery, rule 2); no safe rule uses only the reachable voters"]
fn a_wiped_voter_with_another_voter_down_recovers_with_the_reachable_voters() {
    let mut s = up(&["--seed", "5"]);
    let (l, _) = s.current_leader();
    let pair = others(l);
    let (down, wiped) = (pair[0], pair[1]);
    s.ask(&format!("kill {down}"), "kill");
    s.ask(&format!("wipe {wiped}"), "restart it empty");
    s.until(
        &format!("node {wiped} to recover without node {down}"),
        |ns| {
            let n = ns.get(&wiped)?;
            (n.running && n.role != "recovering" && n.leader.is_some()).then_some(())
        },
    );
    heal_write_and_quit(s);
}
