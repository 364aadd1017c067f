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

use support::session::{Session, Up};
use support::{killed_leader, leader_term};

static SERIAL: Mutex<()> = Mutex::new(());

/// Whether etcd is here; without it, outside CI, the test is skipped with a loud message.
fn etcd_present(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()));
    if found {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: etcd is not on PATH under CI; .ci/run installs the etcd-server package"
    );
    eprintln!("\n!!! SKIPPED {test}: etcd is not on PATH (apt-get install etcd-server) !!!\n");
    false
}

fn etcd_session(extra: &[&str]) -> Session {
    let mut args = vec!["-n", "3", "--node-kind", "etcd"];
    args.extend(extra);
    Up::new(&args)
        .wait(Duration::from_secs(60))
        .serial(&SERIAL)
        .start()
}

/// The command line of node `n`'s process once it runs again after a restart (its pid from `status`, its
/// arguments from `/proc`).
fn restarted_args(s: &mut Session, n: u64) -> Vec<String> {
    let deadline = Instant::now() + s.wait;
    loop {
        // etcd's status lines: `n1 running pid 9 follower term 2 leader n2 commit — applied 274`.
        let pid = s.listing("status", "status:").iter().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&format!("n{n}").as_str())
                && w.get(1) == Some(&"running")
                && w.get(2) == Some(&"pid"))
            .then(|| w.get(3)?.parse::<u32>().ok())
            .flatten()
        });
        let args: Vec<String> = pid
            .and_then(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.len() > 1 {
            return args;
        }
        assert!(
            Instant::now() < deadline,
            "n{n} was not running again within {:?} (pid {pid:?})",
            s.wait
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a feed line naming a leader that `accept` takes; returns (leader, term).
fn leader_where(s: &mut Session, what: &str, accept: impl Fn(u64, u64) -> bool) -> (u64, u64) {
    s.out.wait_for(what, s.wait, |l| {
        if l.contains("no leader") {
            return None;
        }
        leader_term(l).filter(|(n, t)| accept(*n, *t))
    })
}

/// One node of `status` as etcd's kind shows it (`n1 running pid 9 follower term 2 leader n2 commit — applied
/// 274`: etcd reports no commit index): running now, role, term and the leader it names.
#[derive(Debug)]
struct Brief {
    running: bool,
    leader: Option<u64>,
}

fn briefs(s: &mut Session) -> BTreeMap<u64, Brief> {
    s.listing("status", "status:")
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let id = w.first()?.strip_prefix('n')?.parse().ok()?;
            let live = !l.contains("(last known)") && !l.contains("(not answering)");
            let t = w.iter().position(|x| *x == "term")?;
            let leader = w[t..]
                .iter()
                .position(|x| *x == "leader")
                .and_then(|i| w.get(t + i + 1)?.strip_prefix('n')?.parse().ok());
            Some((
                id,
                Brief {
                    running: live && w.get(1) == Some(&"running"),
                    leader,
                },
            ))
        })
        .collect()
}

/// The leader every running node names now, from `status` (polled until the three agree).
fn agreed_leader(s: &mut Session) -> u64 {
    let deadline = Instant::now() + s.wait;
    loop {
        let nodes = briefs(s);
        let leaders: Vec<Option<u64>> = nodes
            .values()
            .filter(|n| n.running)
            .map(|n| n.leader)
            .collect();
        if let Some(Some(first)) = leaders.first().copied()
            && leaders.len() == 3
            && leaders.iter().all(|l| *l == Some(first))
        {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not agree on a leader within {:?}: {nodes:#?}",
            s.wait
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn etcd_elects_a_leader_survives_its_kill_and_a_cut_and_steps_held_frames_under_a_checked_workload()
{
    if !etcd_present("etcd_elects_a_leader…") {
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
    let leader = agreed_leader(&mut s);
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
    if !etcd_present("etcd_node_that_hears_no_vote_replies_never_leads") {
        return;
    }
    let mut s = etcd_session(&["--seed", "22"]);
    let leader = agreed_leader(&mut s);
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
        agreed_leader(&mut s);
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

/// etcd's member list, asked of the member whose client port `api` is: `(name, is a learner)` per member
/// (a member added but not started yet has an empty name). Plain HTTP/1.1 to the JSON gateway, so the test
/// reads etcd's own word rather than squall's.
fn etcd_members(api: &str) -> Vec<(String, bool)> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(api).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = "{}";
    write!(
        conn,
        "POST /v3/cluster/member/list HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let json = &answer[answer.find("\r\n\r\n").expect("an HTTP answer") + 4..];
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("member list answer {answer:?}: {e}"));
    v["members"]
        .as_array()
        .unwrap_or(&Vec::new())
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
    if !etcd_present("etcd_membership_goes_through_its_member_api…") {
        return;
    }
    let mut s = etcd_session(&["--workload", "counter", "--rate", "20", "--seed", "23"]);
    agreed_leader(&mut s);

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
        let nodes = briefs(&mut s);
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
    if !etcd_present("an_etcd_power_cut_says_what_etcd_never_made_durable") {
        return;
    }
    let mut s = etcd_session(&["--disk-faults", "--seed", "24"]);
    agreed_leader(&mut s);
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
    if !etcd_present("an_etcd_add_without_a_majority_answers_pending…") {
        return;
    }
    let mut s = etcd_session(&["--seed", "25"]);
    let leader = agreed_leader(&mut s);
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
    if !etcd_present("an_etcd_remove_of_a_node_whose_add_is_pending…") {
        return;
    }
    let mut s = etcd_session(&["--seed", "26"]);
    let leader = agreed_leader(&mut s);
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
/// session put those proxies on new ports. The directory resumes: the same proxies come back, a leader is
/// elected, a write of the first session is read back, and the second session's lin-kv history is valid.
#[test]
fn an_etcd_cluster_directory_resumes_with_its_data_and_a_leader() {
    if !etcd_present("an_etcd_cluster_directory_resumes…") {
        return;
    }
    let mut s = etcd_session(&["--workload", "lin-kv", "--rate", "20", "--seed", "27"]);
    agreed_leader(&mut s);
    s.kv(&["put", "resume", "kept"]);
    let cdir = s.cdir.clone();
    let _first = s.quit();

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
    agreed_leader(&mut s);
    let got = s.kv(&["get", "resume"]);
    assert_eq!(got.trim(), "kept", "the first session's write, read back");
    // The workload runs on in the resumed cluster and its history is judged.
    let deadline = Instant::now() + s.wait;
    let verdict = loop {
        let verdict = s.answer("check");
        let operations: usize = verdict
            .split("valid: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if operations >= 20 || verdict.contains("FAILED") {
            break verdict;
        }
        assert!(
            Instant::now() < deadline,
            "too few operations judged within {:?}: {verdict}",
            s.wait
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    s.quit();
}
