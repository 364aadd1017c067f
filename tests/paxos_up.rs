//! `squall up --protocol paxos` end to end: three real `squall node --protocol paxos` processes behind the fault
//! proxy elect a distinguished proposer, a lin-kv workload runs through a kill of that leader and its restart,
//! and `check` judges the history linearizable, with no invariant broken on the way; Paxos heartbeats are then
//! held by kind on one link, listed with their ballots, the superseded ones dropped, and stepped.

mod support;

use std::time::Duration;

use support::killed_leader;
use support::session::Up;

#[test]
fn paxos_runs_lin_kv_through_a_leader_kill_and_checks_valid() {
    let mut s = Up::new(&[
        "-n",
        "3",
        "--protocol",
        "paxos",
        "--workload",
        "lin-kv",
        "--rate",
        "40",
        "--seed",
        "23",
    ])
    .wait(Duration::from_secs(60))
    .start();
    let (first, _) = s.first_leader.expect("a leader line");
    let line = s.node_line(first);
    assert!(line.contains("leader"), "n{first} is shown leading: {line}");
    // Issue 23: the ballot as round.proposer where Raft shows a term, never packed (65539).
    let ballot = line
        .split_whitespace()
        .skip_while(|w| *w != "ballot")
        .nth(1)
        .and_then(|b| b.split_once('.'));
    assert!(
        ballot.is_some_and(|(r, p)| r.parse::<u64>().is_ok() && p == first.to_string()),
        "n{first}'s own ballot is shown as round.proposer: {line}"
    );
    assert!(!line.contains(" term "), "{line}");
    // Writes are chosen before the kill.
    s.until("writes to be chosen", |ns| {
        ns.values().any(|n| n.commit >= 20).then_some(())
    });

    let kill = s.ask("kill leader", "kill node");
    let (old, old_term) = killed_leader(&kill).expect("the kill names the leader and its ballot");
    // Another node leads at a higher ballot (shown where Raft shows a term).
    s.until("a new leader after the kill", |ns| {
        ns.values()
            .find(|n| n.running && n.role == "leader" && n.id != old && n.term > old_term)
            .map(|n| n.id)
    });
    let before = s.max_commit();
    s.until("writes to be chosen under the new leader", |ns| {
        ns.values().any(|n| n.commit >= before + 20).then_some(())
    });
    s.ok(&format!("restart {old}"));
    // The restarted node catches up with the others.
    s.until("the restarted node to catch up", |ns| {
        let top = ns.values().map(|n| n.commit).max().unwrap_or(0);
        ns.get(&old)
            .filter(|n| n.running && n.commit + 5 >= top && n.commit > before)
            .map(|_| ())
    });
    let verdict = s.ask("check", "linearizability check");
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    let operations: usize = verdict
        .split("valid: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(operations >= 40, "too few operations judged: {verdict}");
    s.assert_no_invariant_broken();

    // Paxos message kinds on the links: heartbeats held on one link, stepped one at a time, then released.
    let (leader, _) = s.current_leader();
    let follower = if leader == 1 { 2 } else { 1 };
    s.ok(&format!("hold {leader}->{follower} only heartbeat"));
    let deadline = std::time::Instant::now() + s.wait;
    let held = loop {
        let lines = s.listing("held", "held:");
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no heartbeats were held: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(held.iter().all(|l| l.contains("heartbeat")), "{held:#?}");
    // Issue 23: each held frame names its sender's ballot, and an older heartbeat on the link is stale (the
    // newer one says all it does); `drop-stale` drops those. Seen failing: the lines read `from n1:
    // heartbeat` and nothing was stale.
    assert!(
        held.iter()
            .all(|l| l.contains(&format!("heartbeat n{leader} ballot "))),
        "{held:#?}"
    );
    assert!(held.iter().any(|l| l.contains("(stale)")), "{held:#?}");
    let dropped = s.ask(&format!("drop-stale {leader}->{follower}"), "stale frame");
    assert!(
        dropped.contains(&format!("{leader}->{follower} heartbeat")),
        "{dropped}"
    );
    s.ok(&format!("step {leader}->{follower}"));
    s.ok(&format!("release {leader}->{follower}"));
    // tester7 (finding 9): `heal` ending the hold delivered its frames but said only `heal every network
    // fault: #1 hold …`. Seen failing before the answer counted them. `release` ended the hold: hold again,
    // wait for a frame (only a kill or a closed connection drops one), then heal.
    s.ok(&format!("hold {leader}->{follower} only heartbeat"));
    let deadline = std::time::Instant::now() + s.wait;
    let held = loop {
        let lines = s.listing("held", "held:");
        if !lines.is_empty() {
            break lines.len();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no heartbeat was held again after the release"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let healed = s.heal_all();
    assert!(
        healed.starts_with("ok: heal every network fault: #") && healed.contains(" held frame"),
        "{held} held before the heal: {healed}"
    );
    s.assert_no_invariant_broken();

    // Tester finding F23: `wipe` on a Paxos node killed the member for good (the node refuses to start on a
    // data directory that lost its promises). It is refused, saying why, and the node keeps running with its
    // data.
    let victim = if leader == 3 { 2 } else { 3 };
    let before = s.node_line(victim);
    let refusal = s.refused(&format!("wipe {victim}"));
    assert!(
        refusal.contains("node kind `paxos` cannot take wiping a node's data")
            && refusal.contains("promises and accepted values")
            && refusal.contains("nothing was done"),
        "{refusal}"
    );
    let after = s.node_line(victim);
    let pid = |l: &str| support::session::parse_node(l).and_then(|n| n.pid);
    assert!(
        pid(&after).is_some() && pid(&after) == pid(&before),
        "n{victim} still runs the same process: {before} / {after}"
    );
    let top = s.max_commit();
    s.until("the cluster still commits after the refused wipe", |ns| {
        ns.values().any(|n| n.commit >= top + 5).then_some(())
    });
    s.assert_no_invariant_broken();
    s.quit();
}

/// Task held, item 1: with squall's Paxos node under `hold *` the held queue stayed at about 32 while frame ids
/// climbed and `links` said `dropped 0`: a held call times out, the node calls again on a new connection, and
/// the old connection's held frames vanished uncounted. Now each is counted as dropped on its link and the
/// feed says so once per batch; with the senders paused (nothing moves), every frame that entered the holds
/// is either held or counted dropped.
#[test]
fn paxos_frames_held_on_a_closed_connection_are_counted_as_dropped() {
    let mut s = Up::new(&["-n", "3", "--protocol", "paxos", "--seed", "31"])
        .wait(Duration::from_secs(60))
        .start();
    s.ok("hold *");
    let told = s.out.wait_for(
        "the feed to tell held frames dropped with their connection",
        s.wait,
        |l| {
            (l.contains(" held frame") && l.contains(" dropped: connection closed"))
                .then(|| l.to_string())
        },
    );
    for n in 1..=3 {
        s.ok(&format!("pause {n}"));
    }
    // Connections that were closing as the nodes paused settle within a report or two; then nothing moves,
    // and two readings in a row agree.
    let deadline = std::time::Instant::now() + s.wait;
    let (links, (now, total, dropped, lost)) = loop {
        let (links, first) = link_sums(&mut s);
        let (_, second) = link_sums(&mut s);
        let (now, total, dropped, _) = first;
        if first == second && now + dropped == total {
            break (links, first);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "held now + dropped != frames that entered the holds (held-now, held-total, dropped, held-lost): \
             {first:?} then {second:?} in {links:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "{told}; held now {now}, entered the holds {total}, dropped {dropped} (with their connection {lost})"
    );
    assert!(total > 0 && lost > 0, "{told}; {links:#?}");
    assert_eq!(
        dropped, lost,
        "only a closed connection drops a frame here: {links:#?}"
    );
    let held = s.listing("held", "held:");
    assert_eq!(
        held.iter().filter(|l| l.contains("->")).count() as u64,
        now,
        "{held:#?} / {links:#?}"
    );
    s.quit();
}

/// The `links` listing and its sums over every link: (held now, held since the start, dropped, of which lost
/// with their connection).
fn link_sums(s: &mut support::session::Session) -> (Vec<String>, (u64, u64, u64, u64)) {
    let lines = s.listing("links", "links:");
    let field = |w: &str| -> u64 {
        lines
            .iter()
            .map(|l| support::session::status_field(l, w))
            .sum()
    };
    let sums = (
        field("held-now"),
        field("held-total"),
        field("dropped"),
        field("held-lost"),
    );
    (lines, sums)
}

/// Runs `squall ARGS` to completion; its exit code and everything it printed.
fn squall(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("squall runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn switches_that_do_not_fit_the_protocol_are_refused_with_exit_2() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = tmp.path().join("data");
    let data = data.to_str().expect("a UTF-8 path");
    // A Raft node has no lease switch.
    let (code, text) = squall(&["node", "--id", "1", "--data-dir", data, "--no-leases"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--no-leases applies to --protocol paxos only"),
        "{text}"
    );
    // A Paxos node has no pre-vote: the kind says it has no such option, and nothing starts.
    let dir = tmp.path().join("cluster");
    let (code, text) = squall(&[
        "up",
        "--headless",
        "--protocol",
        "paxos",
        "--no-pre-vote",
        "--dir",
        dir.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--no-pre-vote") && text.contains("`paxos`"),
        "{text}"
    );
    // A Paxos node joins nothing: --join is refused.
    let (code, text) = squall(&[
        "node",
        "--protocol",
        "paxos",
        "--id",
        "1",
        "--data-dir",
        data,
        "--join",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no membership changes"), "{text}");
}

/// Runs the library scenario `name` at half length with seed 11; its stdout, after checking it exited 0
/// with the verdict it expects (valid), and the highest Paxos round a status showed (the console's
/// `leader N ballot R.P` lines).
fn run_paxos_scenario(name: &str) -> (String, u64) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    let out = tempfile::tempdir().expect("a temporary directory");
    let bundle = out.path().join("bundle");
    let (code, text) = squall(&[
        "run",
        file.to_str().expect("a UTF-8 path"),
        "--scale",
        "0.5",
        "--seed",
        "11",
        "--out",
        bundle.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(code, Some(0), "{name}: expected exit 0\n{text}");
    assert!(
        text.contains("verdict: valid (expected valid)"),
        "{name}:\n{text}"
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    // Issue 23: a ballot is shown as round.proposer, never packed into one number.
    let packed: Vec<&[&str]> = words
        .windows(2)
        .filter(|w| w[0] == "term" && w[1].parse::<u64>().is_ok_and(|t| t >= 1 << 16))
        .collect();
    assert!(
        packed.is_empty(),
        "{name}: packed ballots shown: {packed:?}\n{text}"
    );
    let round = words
        .windows(2)
        .filter(|w| w[0] == "ballot")
        .filter_map(|w| {
            w[1].trim_end_matches(|c: char| !c.is_ascii_digit())
                .split_once('.')
        })
        .filter_map(|(round, _)| round.parse::<u64>().ok())
        .max()
        .unwrap_or_else(|| panic!("{name}: no `ballot R.P` in the output:\n{text}"));
    (text, round)
}

/// Issue 23's dueling proposers: with leases off and clients bound to every node, every node proposes and
/// the proposers keep preempting each other, so ballots climb by tens of rounds a second and the leader keeps
/// changing; with leases on (the twin) one leader keeps one ballot. Both stay safe and, on loopback, live:
/// a duel here is not a livelock (see the scenario's comment), which the liveness row says.
#[test]
fn without_leases_the_proposers_duel_and_with_leases_one_leader_keeps_its_ballot() {
    let (dueling, rounds) = run_paxos_scenario("paxos-dueling-proposers");
    assert!(
        rounds >= 30,
        "leases off: the highest round was {rounds}, expected the proposers to duel past round 30\n{dueling}"
    );
    let liveness = dueling
        .lines()
        .find(|l| l.starts_with("liveness "))
        .unwrap_or_else(|| panic!("no liveness row:\n{dueling}"));
    assert!(
        liveness.contains("valid") && !liveness.contains("invalid"),
        "{liveness}"
    );
    let (leased, rounds) = run_paxos_scenario("paxos-distinguished-proposer");
    assert!(
        rounds <= 5,
        "leases on: the highest round was {rounds}, expected one leader at an early ballot\n{leased}"
    );
}

/// Issue 23's livelock: the dueling proposers with every link slowed by 80 ms preempt each other until few
/// writes are chosen, and the liveness verdict names the livelock with the ballots it saw rise (judged while
/// the delay, a fault, is in force). Full scale: the livelock is judged over the 3 s liveness bound.
#[test]
fn slowed_dueling_proposers_are_judged_a_livelock() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("scenarios/paxos-dueling-livelock.toml");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bundle = dir.path().join("bundle");
    let (code, text) = squall(&[
        "run",
        file.to_str().expect("a UTF-8 path"),
        "--seed",
        "11",
        "--out",
        bundle.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(code, Some(1), "expected exit 1 (invalid)\n{text}");
    assert!(
        text.contains("verdict: invalid (expected invalid)"),
        "{text}"
    );
    let liveness = text
        .lines()
        .find(|l| l.starts_with("liveness "))
        .unwrap_or_else(|| panic!("no liveness row:\n{text}"));
    assert!(
        liveness.contains("invalid  livelock: ballot rose "),
        "{liveness}"
    );
    let safe = |check: &str| {
        text.lines()
            .any(|l| l.starts_with(check) && l.contains(" valid ") && !l.contains("invalid"))
    };
    assert!(safe("linearizable") && safe("invariants"), "{text}");
}
