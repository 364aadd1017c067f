//! A disk slower than the election timeout, end to end through `squall up --headless --disk-faults`: every
//! node's fsync takes 400 ms (the default election timeout is 150..300 ms). A leader whose writes are slow
//! but progressing keeps its office: it keeps heartbeating while its persist is in flight, and its followers
//! answer heartbeats at once, since those claim nothing that is not durable yet (issue 18, "Liveness").
//! Needs /dev/fuse and root, as `tests/disk_faults.rs` does.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{Lines, check_passes, headless_with_leader};

const WAIT: Duration = Duration::from_secs(60);

/// (leader, term, highest commit index, highest snapshot index) from one `status`; leader 0 when none leads.
fn status(stdin: &mut impl Write, out: &mut Lines) -> (u64, u64, u64, u64) {
    writeln!(stdin, "status").unwrap();
    let (mut leader, mut leader_term, mut term, mut commit, mut snapshot, mut lines) =
        (0, 0, 0, 0, 0, 0);
    out.wait_for("status lines", WAIT, |l| {
        let rest = l.strip_prefix("status: n")?;
        lines += 1;
        let words: Vec<&str> = rest.split_whitespace().collect();
        let after = |w: &str| {
            words
                .iter()
                .position(|x| *x == w)
                .and_then(|i| words.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        // "status: n1 running pid 1001 leader term 3 leader n1 commit 7 …". A killed node's line keeps what it
        // last showed, a leader's role too: only a running node's counts, and of two the higher term.
        let t = after("term").unwrap_or(0);
        if rest.contains(" leader term ") && words.get(1) == Some(&"running") && t >= leader_term {
            leader = words[0].parse().unwrap_or(0);
            leader_term = t;
        }
        term = term.max(t);
        commit = commit.max(after("commit").unwrap_or(0));
        snapshot = snapshot.max(after("snapshot").unwrap_or(0));
        (lines == 3).then_some(())
    });
    (leader, term, commit, snapshot)
}

/// A 3-node cluster with a workload and `extra` flags, once it has a settled leader, with every node's fsync
/// slowed to 400 ms: the session, its console and output, the leader and its term.
fn cluster_with_slow_disks(
    dir: &std::path::Path,
    extra: &[&str],
) -> (
    std::process::Child,
    std::process::ChildStdin,
    Lines,
    (u64, u64),
) {
    let mut args = vec![
        "--disk-faults",
        "-n",
        "3",
        "--workload",
        "--rate",
        "20",
        "--seed",
        "18",
    ];
    args.extend_from_slice(extra);
    let (child, mut stdin, mut out, (leader, term)) =
        headless_with_leader(&dir.join("c"), &args, WAIT);
    // Settle: the leader announced first may still be replaced by a concurrent election at startup.
    let deadline = Instant::now() + WAIT;
    let (leader, term) = loop {
        let (l, t, ..) = status(&mut stdin, &mut out);
        if l != 0 {
            break (l, t);
        }
        assert!(
            Instant::now() < deadline,
            "no leader after start ({leader} in {term} announced)"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for n in 1..=3 {
        support::ask(
            &mut stdin,
            &mut out,
            &format!("disk {n} slow 400ms sync"),
            "slow node",
        );
    }
    (child, stdin, out, (leader, term))
}

/// Entries between two snapshots in [`a_leader_whose_every_fsync_takes_400ms_keeps_leading_and_commits`]:
/// small enough that the run crosses two compactions, each of which fsyncs four times (the snapshot's
/// temporary file, its directory, the rewritten WAL, its directory), 1.6 s at 400 ms a sync.
const SNAPSHOT_EVERY: u64 = 60;

#[test]
fn a_leader_whose_every_fsync_takes_400ms_keeps_leading_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let every = SNAPSHOT_EVERY.to_string();
    let (mut child, mut stdin, mut out, (leader, term)) =
        cluster_with_slow_disks(dir.path(), &["--snapshot-every", &every]);
    let (_, _, commit0, snapshot0) = status(&mut stdin, &mut out);
    let started = Instant::now();
    let mut seen = Vec::new();
    // At least 15 s, and until the leader has compacted twice under the slow disk: a compaction must not
    // keep the leader from heartbeating.
    let compactions = |seen: &[(u64, u64, u64, u64)]| {
        let mut snapshots: Vec<u64> = seen
            .iter()
            .map(|s| s.3)
            .filter(|&s| s > snapshot0)
            .collect();
        snapshots.dedup();
        snapshots.len()
    };
    while started.elapsed() < Duration::from_secs(15) || compactions(&seen) < 2 {
        assert!(
            started.elapsed() < 4 * WAIT,
            "no two compactions within {:?} under 400 ms fsyncs (snapshot at {snapshot0} before); \
             (leader, term, commit, snapshot) each second: {seen:?}",
            4 * WAIT
        );
        // Sampling once a second, not synchronising: the loop ends on what it saw.
        std::thread::sleep(Duration::from_secs(1));
        seen.push(status(&mut stdin, &mut out));
    }
    let (_, _, commit1, _) = status(&mut stdin, &mut out);
    for n in 1..=3 {
        support::ask(&mut stdin, &mut out, &format!("disk {n} heal"), "heal node");
    }
    let last_term = seen.iter().map(|s| s.1).max().unwrap_or(term);
    let deposed = seen.iter().filter(|s| s.0 != leader).count();
    eprintln!(
        "leader {leader} in term {term}; over {:?} of 400 ms fsyncs and {} compactions: terms up to {last_term}, \
         {deposed} of {} samples without leader {leader}, commit {commit0} -> {commit1}",
        started.elapsed(),
        compactions(&seen),
        seen.len()
    );
    assert_eq!(
        (last_term, deposed),
        (term, 0),
        "a leader with a slow but working disk was deposed; (leader, term, commit, snapshot) each second: \
         {seen:?}"
    );
    assert!(
        commit1 > commit0,
        "writes stopped committing under 400 ms fsyncs: commit {commit0} -> {commit1}"
    );
    check_passes(&mut stdin, &mut out, WAIT);
    writeln!(stdin, "quit").unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_election_under_400ms_fsyncs_on_every_node_finishes() {
    // The leader is lost while every fsync takes 400 ms, longer than the 150–300 ms election timeout: a
    // candidate's own term and vote take 400 ms to store (its timer waits for them), and so does each vote it
    // is granted (a voter stores its vote before granting it). Without a candidate timeout that allows for the
    // voters' fsync, every candidate gives up before any vote arrives and no election ever finishes.
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, (leader, term)) = cluster_with_slow_disks(dir.path(), &[]);
    support::ask(&mut stdin, &mut out, &format!("kill {leader}"), "kill node");
    let started = Instant::now();
    let mut seen = Vec::new();
    let elected = loop {
        let now = status(&mut stdin, &mut out);
        seen.push(now);
        if now.0 != 0 && now.0 != leader && now.1 > term {
            break now;
        }
        assert!(
            started.elapsed() < WAIT,
            "no new leader within {WAIT:?} of killing leader {leader} (term {term}) under 400 ms fsyncs; \
             (leader, term, commit) each poll: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "leader {leader} of term {term} killed; n{} leads term {} after {:?}",
        elected.0,
        elected.1,
        started.elapsed()
    );
    for n in (1..=3).filter(|&n| n != leader) {
        support::ask(&mut stdin, &mut out, &format!("disk {n} heal"), "heal node");
    }
    writeln!(stdin, "quit").unwrap();
    assert!(child.wait().unwrap().success());
}
