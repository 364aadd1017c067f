//! etcd under `squall up --node-kind etcd`, end to end on real etcd 3.4 members: a leader is elected and shown,
//! `kill leader` gives a new leader in a higher term, `cut *->L` unseats L, `hold` + `step` deliver real etcd
//! frames one at a time, lin-kv under a nemesis is judged linearizable and a doctored copy of its history is
//! not, a vote-reply filter keeps a node from ever leading, and clock faults are refused with the kind's reason.
//!
//! Needs `etcd` on PATH (Debian's `etcd-server`). Without it the tests say so loudly and pass, unless `CI` is
//! set, where a missing etcd fails them. The sessions run one at a time: three etcd members each already keep
//! a two-core machine busy.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::etcd::{self, agreed_leader, leader_where, restarted_args};
use support::killed_leader;
use support::session::{Session, Up};

static SERIAL: Mutex<()> = Mutex::new(());

fn etcd_session(extra: &[&str]) -> Session {
    let mut args = vec!["-n", "3", "--node-kind", "etcd"];
    args.extend(extra);
    Up::new(&args)
        .wait(Duration::from_secs(60))
        .serial(&SERIAL)
        .start()
}

#[test]
fn etcd_elects_a_leader_survives_its_kill_and_a_cut_and_steps_held_frames_under_a_checked_workload()
{
    if !etcd::present("etcd_elects_a_leader…") {
        return;
    }
    let mut s = etcd_session(&["--workload", "lin-kv", "--rate", "40", "--seed", "21"]);
    let (first, term) = s.first_leader.expect("a leader line");
    // Shown: the leader's own status line says it leads, in that term or later.
    let line = s.node_line(first);
    assert!(line.contains("leader"), "n{first} is shown leading: {line}");

    // Clock faults cannot reach a Go binary: refused with the kind's reason, nothing done.
    let refused = s.refused("clock 1 +5s");
    assert!(
        refused.contains("Go binary") && refused.contains("nothing was done"),
        "{refused}"
    );

    // kill leader: a new leader in a higher term.
    let kill = s.ask("kill leader", "kill node");
    let (old, old_term) = killed_leader(&kill).expect("the kill names the leader and its term");
    assert!(old_term >= term, "{kill}");
    let (second, second_term) = leader_where(&mut s, "a new leader after the kill", |n, t| {
        n != old && t > old_term
    });
    s.ok(&format!("restart {old}"));
    // The restart followed the kind's peer model (one proxy in front of each member): its command line was
    // built anew, an existing member's, not the first one kept.
    let args = restarted_args(&mut s, old);
    assert!(
        args.windows(2)
            .any(|a| a[0] == "--initial-cluster-state" && a[1] == "existing"),
        "n{old} restarted with {args:?}"
    );

    // cut *->L: the leader hears nothing, the others elect another.
    s.ok(&format!("cut *->{second}"));
    leader_where(&mut s, "a new leader after the cut", |n, t| {
        n != second && t > second_term
    });
    s.ok("heal");

    // hold + step: real etcd heartbeats held on one link and delivered one at a time.
    let leader = agreed_leader(&mut s, 3, "the three members");
    let follower = if leader == 1 { 2 } else { 1 };
    s.ok(&format!("hold {leader}->{follower} only heartbeat"));
    let deadline = Instant::now() + s.wait;
    let held = loop {
        let lines = s.listing("held", "held:");
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeats were held: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(held.iter().all(|l| l.contains("heartbeat")), "{held:#?}");
    let stepped = s.ok(&format!("step {leader}->{follower}"));
    assert!(
        stepped.contains("1 frame") || stepped.contains("heartbeat"),
        "one held heartbeat delivered: {stepped}"
    );
    s.ok(&format!("release {leader}->{follower}"));
    s.heal_all();

    // A nemesis of each link and process fault, then the workload's history is judged linearizable.
    let nemesis = [
        format!("pause {follower}"),
        format!("resume {follower}"),
        "partition halves for 3s".to_string(),
        format!("cut {leader}->{follower} for 3s"),
        "delay * 30ms jitter 10ms for 3s".to_string(),
        "loss * 10% for 3s".to_string(),
    ];
    for cmd in &nemesis {
        s.ok(cmd);
        std::thread::sleep(Duration::from_millis(1500));
    }
    s.heal_all();
    let (verdict, operations) = etcd::lin_kv_check(&mut s, 100);
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    assert!(operations >= 100, "too few operations judged: {verdict}");
    let dir = s.quit();

    // The same history with one stale read spliced in is not linearizable.
    let log = dir.path().join("cluster").join("events.jsonl.gz");
    let exported = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("history")
        .arg(&log)
        .output()
        .unwrap();
    assert!(exported.status.success(), "{exported:?}");
    let history = String::from_utf8(exported.stdout).unwrap();
    let (doctored, stale) = support::history::splice_stale_read(&history)
        .expect("two completed writes on one key, one after the other");
    let bad = dir.path().join("doctored.jsonl");
    std::fs::write(&bad, doctored).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("check-history")
        .arg(&bad)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout).to_string()
        + &String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.starts_with("invalid: "), "{said}");
    assert!(
        said.lines().any(|l| l.contains('✗') && l.contains(&stale)),
        "the window marks the stale read `{stale}`:\n{said}"
    );
}

#[test]
#[ignore = "flaky: it asserts node 3's vote replies were dropped, but etcd's node 3 need not campaign before \
            another node wins (failed once in CI after the merge, 2026-12-07); run with --ignored"]
fn etcd_node_that_hears_no_vote_replies_never_leads() {
    if !etcd::present("etcd_node_that_hears_no_vote_replies_never_leads") {
        return;
    }
    let mut s = etcd_session(&["--seed", "22"]);
    let leader = agreed_leader(&mut s, 3, "the three members");
    let starved = if leader == 3 { 2 } else { 3 };
    s.ok(&format!("loss *->{starved} 100% only vote-reply"));
    // Two leader kills: each time the other live node must win, since `starved` can never count a vote.
    for round in 0..2 {
        let kill = s.ask("kill leader", "kill node");
        let (old, old_term) = killed_leader(&kill).expect("the kill names the leader");
        assert_ne!(old, starved, "round {round}: the starved node led: {kill}");
        let (next, _) = leader_where(&mut s, "a new leader", |_, t| t > old_term);
        assert_ne!(
            next, starved,
            "round {round}: the starved node won an election"
        );
        s.ok(&format!("restart {old}"));
        agreed_leader(&mut s, 3, "the three members");
    }
    // The filter really met vote replies: they were classified and dropped on the starved node's links.
    let links = s.listing("links", "links:");
    let dropped: u64 = links
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.ends_with(&format!("->{starved}")))
        })
        .filter_map(|l| {
            let at = l.find("vote-reply ")? + "vote-reply ".len();
            l[at..]
                .split([',', ' '])
                .next()?
                .split('/')
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(
        dropped > 0,
        "no vote reply to {starved} was dropped: {links:#?}"
    );
    s.quit();
}

/// etcd's member list, asked of the member whose client address is `api`: `(name, is a learner)` per member
/// (a member added but not started yet has an empty name).
fn etcd_members(api: &str) -> Vec<(String, bool)> {
    etcd::member_list(api.parse().unwrap())
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Node `n`'s client address, from the session's cluster file.
fn client_addr(s: &Session, n: u64) -> String {
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.cdir.join("cluster.json")).unwrap())
            .unwrap();
    file["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == n)
        .and_then(|e| e["api"].as_str())
        .unwrap_or_else(|| panic!("no client address for n{n}: {file}"))
        .to_string()
}

/// Polls etcd's member list (through node `via`) until `accept` takes it.
fn members_until(
    s: &Session,
    via: u64,
    what: &str,
    accept: impl Fn(&[(String, bool)]) -> bool,
) -> Vec<(String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let api = client_addr(s, via);
    loop {
        let members = etcd_members(&api);
        if accept(&members) {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "etcd's member list never showed {what}: {members:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// tester4 F3 and F4, and the counter check on etcd: `add` puts a member in through etcd's member API (a
/// learner, promoted once in sync) and `remove` takes one out, as etcd's own member list shows; `demote` is
/// refused with why (etcd 3.4 has no demote), as are squall's teaching controls, which the etcd kind file does
/// not list; and `check` judges the counter workload by reading etcd's counters through the kind's client.
#[test]
fn etcd_membership_goes_through_its_member_api_and_its_counters_are_checked() {
    if !etcd::present("etcd_membership_goes_through_its_member_api…") {
        return;
    }
    let mut s = etcd_session(&["--workload", "counter", "--rate", "20", "--seed", "23"]);
    agreed_leader(&mut s, 3, "the three members");

    for (cmd, control) in [
        ("freeze", "freeze"),
        ("heartbeat", "heartbeat"),
        ("timeout 2", "timeout"),
        ("transfer 2", "transfer"),
    ] {
        let refused = s.refused(cmd);
        assert!(
            refused.contains("node kind `etcd`")
                && refused.contains(&format!("`{control}`"))
                && refused.contains("[controls]")
                && refused.contains("nothing was done"),
            "{cmd}: {refused}"
        );
    }
    let refused = s.refused("demote 2");
    assert!(
        refused.contains("etcd 3.4 cannot demote") && refused.contains("nothing was done"),
        "{refused}"
    );
    // F23, F6: `wipe` would kill the member for good; refused with why, what to do, and the file that says so.
    let refused = s.refused("wipe 2");
    assert!(
        refused.contains("old member id")
            && refused.contains("`remove N`, then `add`")
            && refused.contains("kinds/etcd.toml"),
        "{refused}"
    );

    // etcd lists a member before it starts: the learner step comes first and may answer `pending:`.
    // `--learner`, so it stays one long enough to be seen as one.
    let added = s.accepted("add --learner", "node 4");
    assert!(
        added.contains("started") || added.starts_with("pending:"),
        "{added}"
    );
    members_until(&s, 1, "n4 a learner", |m| {
        m.len() == 4 && m.iter().any(|(n, learner)| n == "n4" && *learner)
    });
    // fixes3 item 3: etcd says `isLearner`; squall showed it as a follower.
    let deadline = Instant::now() + s.wait;
    loop {
        let line = s
            .listing("status", "status:")
            .into_iter()
            .find(|l| l.starts_with("n4 "))
            .unwrap_or_default();
        if line.contains(" learner term") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd's learner n4 is never shown as a learner: {line}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // fixes3 item 3: `squall status` shows every member's pid (etcd's status gives none; the supervisor
    // knows it) and the learner as one.
    let doc = support::status_json(&s.cdir);
    for n in doc["nodes"].as_array().unwrap() {
        assert!(n["pid"].as_u64().is_some(), "no pid: {n}");
        if n["id"] == 4 {
            assert_eq!(n["role"], "learner", "{n}");
        }
    }
    // fixes3 item 3: the first process line about n4 is said once its process exists (it said `n4 starting`
    // before). The console holds feed lines back a moment, so it may come after the status above.
    let process_line = |l: &str| {
        (l.contains("n4 starting") || l.contains("n4 running, pid")).then(|| l.to_string())
    };
    let first = match s.out.seen.iter().find_map(|l| process_line(l)) {
        Some(l) => l,
        None => s
            .out
            .wait_for("n4's first process line", s.wait, process_line),
    };
    assert!(first.contains("n4 running, pid"), "{first}");
    s.accepted("promote 4", "promote node 4");
    members_until(&s, 1, "n4 a voter", |m| {
        m.len() == 4 && m.iter().any(|(n, learner)| n == "n4" && !learner)
    });
    let deadline = Instant::now() + s.wait;
    loop {
        let nodes = etcd::members(&mut s);
        if nodes
            .get(&4)
            .is_some_and(|n| n.running && n.leader.is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n4 is not shown following a leader: {nodes:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    s.ask("remove 4", "remove node 4");
    members_until(&s, 1, "n4 gone", |m| {
        m.len() == 3 && !m.iter().any(|(n, _)| n == "n4")
    });
    // fixes3 item 2: etcd ends a removed member itself; that is its leaving, not a crash, and never "was
    // not running".
    let gone = s.out.wait_for("n4 removed in the feed", s.wait, |l| {
        (l.contains("n4 removed:") || l.contains("n4 left the cluster (removed"))
            .then(|| l.to_string())
    });
    assert!(!gone.contains("was not running"), "{gone}");
    // Either etcd ended it (`left the cluster`) or squall stopped it first (`its process stopped`, as for
    // squall's own node); either way its exit is its removal, told once: tester7 saw `n4 exited with code 2`
    // (read as a crash) before `n4 removed: its process stopped`.
    assert!(
        gone.contains("left the cluster (removed; its process ended itself")
            || gone.contains("n4 removed: its process stopped (its directory is kept)"),
        "{gone}"
    );
    // F7: a removed member is shown removed, and `*` no longer covers its links (3 members: 6 links).
    let line = s
        .listing("status", "status:")
        .into_iter()
        .find(|l| l.starts_with("n4 "))
        .unwrap_or_default();
    assert!(line.is_empty() || line.contains("member removed"), "{line}");
    let held = s.ask("hold *", "hold");
    assert!(held.contains("on 6 links"), "{held}");
    s.heal_all();

    // tester7: a removed learner is stopped by squall (etcd does not end it); its exit was told as
    // `n5 exited with code 2` (read as a crash) before `n5 removed: its process stopped`.
    s.accepted("add --learner", "node 5");
    members_until(&s, 1, "n5 a learner", |m| {
        m.len() == 4 && m.iter().any(|(n, learner)| n == "n5" && *learner)
    });
    s.ask("remove 5", "remove node 5");
    let gone = s.out.wait_for("n5 removed in the feed", s.wait, |l| {
        (l.contains("n5 removed:") || l.contains("n5 left the cluster (removed"))
            .then(|| l.to_string())
    });
    assert!(
        gone.contains("n5 left the cluster (removed; its process ended itself")
            || gone.contains("n5 removed: its process stopped (its directory is kept)"),
        "{gone}"
    );

    let verdict = s.check();
    assert!(verdict.starts_with("ok: check passed"), "{verdict}");
    for n in ["n4", "n5"] {
        let told: Vec<&String> = s
            .out
            .seen
            .iter()
            .filter(|l| {
                [" exited", " ended by", " removed:", " left the cluster"]
                    .iter()
                    .any(|w| l.contains(&format!("{n}{w}")))
            })
            .collect();
        assert_eq!(told.len(), 1, "{n}'s removal not told once: {told:?}");
    }
    s.quit();
}

/// etcd 3.4 never fsyncs its data directory after making `member/` (nor `member/snap` after `db`, nor
/// `wal.tmp`; compare etcd-io/etcd#6368), so a power cut takes `member/` whole and the members cannot come
/// back. The power cut's answer says what is gone and why, so the person knows it is etcd's doing.
#[test]
fn an_etcd_power_cut_says_what_etcd_never_made_durable() {
    if !etcd::present("an_etcd_power_cut_says_what_etcd_never_made_durable") {
        return;
    }
    let mut s = etcd_session(&["--disk-faults", "--seed", "24"]);
    agreed_leader(&mut s, 3, "the three members");
    let cut = s.ask("powercut all", "power cut");
    assert!(
        cut.contains("gone because no fsync of their directory made them durable: member/"),
        "{cut}"
    );
    s.quit();
}

/// F9: a membership change that waits for a commit does not hold the console. With two of three members
/// killed, etcd cannot commit the learner step of an `add` (etcd lists a member before it starts): the `add`
/// answers `pending:` at once, `status` typed meanwhile answers and shows the change as pending, and once the
/// members are back the feed tells the outcome.
#[test]
fn an_etcd_add_without_a_majority_answers_pending_and_status_still_answers() {
    if !etcd::present("an_etcd_add_without_a_majority_answers_pending…") {
        return;
    }
    let mut s = etcd_session(&["--seed", "25"]);
    let leader = agreed_leader(&mut s, 3, "the three members");
    let down: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    for n in &down {
        s.ask(&format!("kill {n}"), "kill node");
    }
    // Before, the console answered only when the learner step gave up (30 s); a generous bound on the
    // answer, not a timing: it catches the console held by the change.
    writeln!(s.stdin, "add").unwrap();
    let added = s
        .out
        .wait_for("the answer to `add`", Duration::from_secs(15), |l| {
            (l.starts_with("ok:") || l.starts_with("pending:") || l.starts_with("error:"))
                .then(|| l.to_string())
        });
    assert!(added.starts_with("pending: add a node: node 4"), "{added}");
    writeln!(s.stdin, "status").unwrap();
    let mut pending = None;
    s.out
        .wait_for("the answer to `status`", Duration::from_secs(15), |l| {
            if let Some(rest) = l.strip_prefix("status: change pending: ") {
                pending = Some(rest.to_string());
            }
            l.starts_with("ok: status").then_some(())
        });
    let pending = pending.expect("`status` shows the add as pending");
    assert!(pending.contains("node 4"), "{pending}");
    for n in &down {
        s.ask(&format!("restart {n}"), "restart node");
    }
    s.out
        .wait_for("the add's outcome in the feed", s.wait, |l| {
            (l.contains("n4 joins as a learner") || l.contains("add node 4 failed")).then_some(())
        });
    s.quit();
}

/// fixes3 item 1: `remove N` while N's `add` is still pending (its learner step waits for a majority) cancels
/// the add, as for squall's node, instead of being refused as "not a member yet": the member never gets into
/// etcd's member list (or is taken out again), its process is never started, and the feed says which.
#[test]
fn an_etcd_remove_of_a_node_whose_add_is_pending_cancels_the_add() {
    if !etcd::present("an_etcd_remove_of_a_node_whose_add_is_pending…") {
        return;
    }
    let mut s = etcd_session(&["--seed", "26"]);
    let leader = agreed_leader(&mut s, 3, "the three members");
    let down: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    for n in &down {
        s.ask(&format!("kill {n}"), "kill node");
    }
    let added = s.accepted("add", "node 4");
    assert!(added.starts_with("pending: add a node: node 4"), "{added}");
    let removed = s.ask("remove 4", "remove node 4");
    assert!(
        removed.contains("the add of node 4 is cancelled"),
        "{removed}"
    );
    for n in &down {
        s.ask(&format!("restart {n}"), "restart node");
    }
    let said = s.out.wait_for("what the cancel undid", s.wait, |l| {
        (l.contains("n4 never joined the configuration")
            || l.contains("n4 had joined the configuration: taken out again"))
        .then(|| l.to_string())
    });
    s.out.wait_for("n4 removed in the feed", s.wait, |l| {
        l.contains("n4 removed: its process was never started")
            .then_some(())
    });
    let members = members_until(&s, leader, "three named members", |m| {
        m.len() == 3 && m.iter().all(|(n, _)| !n.is_empty() && n != "n4")
    });
    let started: Vec<&String> = s
        .out
        .seen
        .iter()
        .filter(|l| l.contains("n4 running") || l.contains("n4 joins as a learner"))
        .collect();
    assert!(
        started.is_empty(),
        "a cancelled add went on ({said}; members {members:?}): {started:?}"
    );
    s.quit();
}

/// A new user's finding: `up --node-kind etcd --dir D`, `quit`, `up` again on D did not form a quorum (exit 2
/// after 15 s): every etcd member stores the peer URL of each member, the proxy in front of it, and the second
/// session put those proxies on new ports. The directory resumes: the same proxies come back (a member added in
/// the first session's too), a leader is elected, a write of the first session is read back, and the second
/// session's lin-kv history is valid. An address the members stored that another program holds is refused
/// with exit 2, naming it, and the directory is kept as it was.
#[test]
fn an_etcd_cluster_directory_resumes_with_its_data_its_added_member_and_a_leader() {
    if !etcd::present("an_etcd_cluster_directory_resumes…") {
        return;
    }
    let mut s = etcd_session(&["--workload", "lin-kv", "--rate", "20", "--seed", "27"]);
    agreed_leader(&mut s, 3, "the first session's three members");
    s.kv(&["put", "resume", "kept"]);
    // A member added in the session: its proxy's address is recorded when it is added.
    s.accepted("add", "node 4");
    members_until(&s, 1, "n4 a voter", |m| {
        m.len() == 4 && m.iter().any(|(n, learner)| n == "n4" && !learner)
    });
    agreed_leader(&mut s, 4, "the four members after the add");
    let cdir = s.cdir.clone();
    let _first = s.quit();

    // Another program holds the port of the proxy in front of node 2: refused before anything starts.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cdir.join("advertised.json")).unwrap())
            .unwrap();
    let at: std::net::SocketAddr = record["destinations"]["2"]
        .as_str()
        .unwrap_or_else(|| panic!("no address of n2's proxy in {record}"))
        .parse()
        .unwrap();
    let before = files_under(&cdir);
    let squatter = std::net::TcpListener::bind(at).unwrap();
    let (code, err) = support::up_ended(&["-n", "3", "--node-kind", "etcd"], Some(&cdir));
    assert_eq!(code, Some(2), "{err}");
    for part in [
        format!("node 2 must listen on {at} again"),
        format!("Free port {}", at.port()),
        "new --dir".to_string(),
    ] {
        assert!(err.contains(&part), "`{part}` in: {err}");
    }
    drop(squatter);
    assert_eq!(
        files_under(&cdir),
        before,
        "the refused start changed the directory"
    );

    let mut s = Up::new(&[
        "-n",
        "3",
        "--node-kind",
        "etcd",
        "--workload",
        "lin-kv",
        "--rate",
        "20",
        "--seed",
        "28",
    ])
    .dir(cdir)
    .wait(Duration::from_secs(60))
    .serial(&SERIAL)
    .start();
    agreed_leader(&mut s, 4, "the four members resumed");
    // Every peer URL etcd stored is listened on again: the added member's too (etcd works on without it, its
    // peers' messages to it going back over the streams it opens itself, so the leader alone does not show it).
    let members = etcd::stored_peer_urls_listened(client_addr(&s, 1).parse().unwrap());
    assert_eq!(members, 4);
    let got = s.kv(&["get", "resume"]);
    assert_eq!(got.trim(), "kept", "the first session's write, read back");
    // The workload runs on in the resumed cluster and its history is judged.
    let (verdict, _) = etcd::lin_kv_check(&mut s, 20);
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    s.quit();
}

/// Every file under `dir` (recursively) with its length and modification time, but the session lock's.
fn files_under(
    dir: &std::path::Path,
) -> BTreeMap<std::path::PathBuf, (u64, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if e.file_name() != "squall.lock" {
                files.insert(e.path(), (m.len(), m.modified().unwrap()));
            }
        }
    }
    files
}
