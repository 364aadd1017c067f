//! Issue 18's reproductions through `squall up --headless`, on real node processes: a wiped voter must not vote
//! twice in a term (S2), a damaged last WAL record must not let a leader lacking it be elected (H3), and an
//! emptied WAL beside a snapshot is refused with its cause said once (D2). Each watches the live invariants in
//! the event feed (`INVARIANT BROKEN` lines) and reads the acknowledged value back. The H3 test needs the fault
//! filesystem (/dev/fuse, root and libfaketime, as CI's `.ci/run` installs).

mod support;

use std::path::Path;
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
