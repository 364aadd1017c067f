//! Liveness end to end (issue 18, "Liveness"): real node processes behind the link proxy, driven through
//! `squall up --headless`, asserting on what the nodes report.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::session::{Session, Up};

const WAIT: Duration = Duration::from_secs(90);

/// A session with `args`, started once a leader is named.
fn up(args: &[&str]) -> Session {
    Up::new(args).wait(WAIT).start()
}

/// A follower behind the leader's snapshot catches up through a link that drops `loss` % of snapshot
/// chunks: returns how long from its restart until it holds the leader's commit index.
fn catch_up_through_lossy_link(loss: u32, seed: u64) -> Duration {
    // Default timings (election timeout 150–300 ms): a chunk's fixed deadline was 12 s. The seed also
    // seeds the proxy's loss.
    let seed = seed.to_string();
    let mut s = up(&["-n", "3", "--seed", &seed, "--snapshot-every", "4"]);
    let (leader, _) = s.first_leader.unwrap();
    let f = (1..=3).find(|n| *n != leader).unwrap();
    s.ok(&format!("kill {f}"));
    // About 12 MB of state, so the snapshot is a dozen 1 MiB chunks.
    let value = "x".repeat(1_000_000);
    for i in 0..12 {
        let mut put = Command::new(env!("CARGO_BIN_EXE_squall"))
            .args(["kv", "--dir"])
            .arg(&s.cdir)
            .args(["put", &format!("big{i}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        put.stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        assert!(put.wait().unwrap().success(), "put big{i}");
    }
    let target = s.until("the leader to compact", |ns| {
        let l = ns.values().find(|n| n.role == "leader" && n.running)?;
        (l.snapshot >= 8).then_some(l.commit)
    });
    s.ok(&format!("loss *->{f} {loss}% only snapshot"));
    let restarted = Instant::now();
    s.ok(&format!("restart {f}"));
    s.until("the follower to install the snapshot and catch up", |ns| {
        let n = ns.get(&f)?;
        (n.running && n.snapshot > 0 && n.commit >= target).then_some(())
    });
    let took = restarted.elapsed();
    s.quit();
    took
}

/// A lost snapshot chunk is resent after about a round trip's patience, not after a 12 s deadline: through
/// a link losing half the chunks, a 12 MB catch-up (about a dozen drops) takes seconds, where each drop used
/// to cost 12 s. `SQUALL_LOSS=10 SQUALL_SEED=N` measures the figures in BENCHMARKS.md.
#[test]
fn a_catch_up_through_a_lossy_link_resends_lost_chunks_promptly() {
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (loss, seed) = (env("SQUALL_LOSS", 50) as u32, env("SQUALL_SEED", 7));
    let took = catch_up_through_lossy_link(loss, seed);
    eprintln!("seed {seed}: 12 MB catch-up through {loss}% chunk loss took {took:?}");
    // The old 12 s deadline per lost chunk made this about 12 × 12 s; 60 s tells the two apart with room for a
    // loaded machine (it took 23 s once in a full-suite run beside other tests, 9–12 s alone).
    assert!(
        took < Duration::from_secs(60),
        "12 MB catch-up through {loss}% chunk loss took {took:?}"
    );
}

/// openraft#2091's shape: a leader removes itself, the change reaches only its own log, and it loses its
/// leadership before the change commits. It holds the newest log (configuration without itself); the other
/// voter, still in the old configuration, asks it for pre-votes and is refused on the log check. Before the
/// fix it never campaigned, and no leader was elected for as long as anyone waited.
#[test]
fn a_leader_that_removed_itself_and_lost_leadership_before_the_commit_still_lets_a_leader_be_elected()
 {
    let mut s = up(&["-n", "2", "--seed", "3"]);
    let (a, _) = s.first_leader.unwrap();
    let b = 3 - a;
    s.ok(&format!("hold {a}->{b} only append"));
    s.ok(&format!("remove {a}"));
    // The removal entry is on A alone, held on its way to B (the change is proposed after the answer).
    let deadline = Instant::now() + WAIT;
    loop {
        let held = s.listing("held", "held:");
        if held.iter().any(|l| l.contains(&format!("{a}->{b}"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing held on {a}->{b}: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A loses its leadership: no answers reach it.
    s.ok(&format!("cut {a}<->{b} for 2s"));
    s.until("A to step down", |ns| {
        ns.get(&a)
            .is_some_and(|n| n.running && n.role != "leader")
            .then_some(())
    });
    s.ok(&format!("drop-held {a}->{b}"));
    s.ok("heal");
    let healed = Instant::now();
    let leader = s.until("a leader after the heal", |ns| {
        ns.iter()
            .find(|(_, n)| n.running && n.role == "leader")
            .map(|(id, _)| *id)
    });
    eprintln!("node {leader} leads {:?} after the heal", healed.elapsed());
    // A finishes its removal and hands over: B ends up leading, and A's process is stopped.
    s.until("B to lead and A to be gone", |ns| {
        let bn = ns.get(&b)?;
        let an_running = ns.get(&a).is_some_and(|n| n.running);
        (bn.running && bn.role == "leader" && !an_running).then_some(())
    });
    s.quit();
}
