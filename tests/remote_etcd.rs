//! etcd on other machines (issue 24): `squall up --node-kind etcd --hosts FILE` on real hosts, network
//! namespaces joined by a bridge, each with its own address and sshd (`tests/support/netns.rs`), the
//! controller in the root namespace. One real etcd 3.4 member per host; the proxy in front of each member runs
//! on that member's host, bound to the host's address (etcd's members all dial one advertised URL per member,
//! so a per-destination kind cannot put its proxies on the senders' hosts); squall picks each member's ports
//! on its host. The session is the headless console, driven as every other end-to-end test drives it.
//!
//! These tests need root (network namespaces) and `/usr/bin/etcd` (Debian's `etcd-server`): without either
//! they print "skipped: ..." and pass, except with `CI=true`, where they fail.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::etcd::{self, agreed_leader, leader_where, restarted_args};
use support::killed_leader;
use support::netns::{self, World};
use support::session::{Session, Up};

/// One member per host: node 1 on host1, 2 on host2, 3 on host3.
const PLACEMENT: [&[u64]; 3] = [&[1], &[2], &[3]];

fn host_of(node: u64) -> usize {
    PLACEMENT.iter().position(|p| p.contains(&node)).unwrap()
}

/// A 3-member etcd session on the world's three hosts, with `args` after the kind and hosts, waited on until a
/// leader is named.
fn etcd_on(w: &World, args: &[&str]) -> Session {
    let hosts = w.hosts_file(&PLACEMENT);
    let mut all = vec![
        "-n",
        "3",
        "--node-kind",
        "etcd",
        "--hosts",
        hosts.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    Up::new(&all)
        .dir(w.path().join("cluster"))
        .wait(Duration::from_secs(90))
        .start()
}

/// What `cluster.json` says of node `n`: its (client, peer) addresses and pid.
fn node_entry(s: &Session, n: u64) -> (SocketAddr, SocketAddr, u32) {
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.cdir.join("cluster.json")).unwrap())
            .unwrap();
    let e = file["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == n)
        .unwrap_or_else(|| panic!("no n{n} in {file}"));
    let addr = |k: &str| -> SocketAddr {
        e[k].as_str()
            .unwrap_or_else(|| panic!("no {k} for n{n}: {file}"))
            .parse()
            .unwrap()
    };
    (addr("api"), addr("peer"), e["pid"].as_u64().unwrap() as u32)
}

/// etcd's own member list, asked of the member at client address `api`: member name → its advertised peer
/// URLs.
fn etcd_peer_urls(api: SocketAddr) -> BTreeMap<String, Vec<String>> {
    etcd::member_list(api)
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["peerURLs"]
                    .as_array()
                    .unwrap_or(&Vec::new())
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect(),
            )
        })
        .collect()
}

/// The frames forwarded on link `from->to`, from the console's `links` listing (`links: 1->2 frames 123 …`).
fn forwarded(s: &mut Session, from: u64, to: u64) -> u64 {
    let lines = s.listing("links", "links:");
    lines
        .iter()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w == format!("{from}->{to}"))
        })
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "frames")?;
            w.get(i + 1)?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no forwarded count for {from}->{to} in {lines:#?}"))
}

#[test]
fn three_etcd_members_on_three_hosts_elect_survive_a_leader_kill_and_a_partition_step_held_frames_and_lin_kv_is_linearizable()
 {
    if !etcd::present("three_etcd_members_on_three_hosts…") {
        return;
    }
    let Some(w) = netns::world(3) else { return };
    let mut s = etcd_on(
        &w,
        &["--workload", "lin-kv", "--rate", "20", "--seed", "24"],
    );
    let (_, term) = s.first_leader.expect("a leader line");
    let addr_of = |n: u64| IpAddr::V4(w.host(host_of(n)).addr);

    // Each member runs in its host's namespace, its ports picked and bound there, and advertises the proxy in
    // front of it on its own host's address.
    let mut apis = BTreeMap::new();
    for n in 1..=3u64 {
        let (api, peer, pid) = node_entry(&s, n);
        let h = host_of(n);
        assert!(
            w.processes(h).contains(&pid),
            "n{n} (pid {pid}) is not in {}'s namespace: {:?}",
            w.host(h).alias,
            w.describe_processes(h)
        );
        assert_eq!(api.ip(), addr_of(n), "n{n}'s client port");
        assert_eq!(peer.ip(), addr_of(n), "n{n}'s peer port");
        apis.insert(n, api);
    }
    let urls = etcd_peer_urls(apis[&1]);
    for n in 1..=3u64 {
        let advertised = &urls[&format!("n{n}")];
        let proxy: SocketAddr = advertised[0].trim_start_matches("http://").parse().unwrap();
        assert_eq!(proxy.ip(), addr_of(n), "n{n}'s proxy: {urls:?}");
        assert_ne!(
            proxy,
            node_entry(&s, n).1,
            "n{n} advertises its proxy, not itself"
        );
    }

    // The proxies on the three hosts tell the senders apart: frames are counted on links between hosts, in
    // both directions.
    let deadline = Instant::now() + s.wait;
    loop {
        let (a, b) = (forwarded(&mut s, 1, 2), forwarded(&mut s, 2, 1));
        if a > 0 && b > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "1->2 {a}, 2->1 {b} frames");
        std::thread::sleep(Duration::from_millis(200));
    }

    // kill leader: the two others, on two hosts, elect a new one in a higher term.
    let kill = s.ask("kill leader", "kill node");
    let (old, old_term) = killed_leader(&kill).expect("the kill names the leader");
    assert!(old_term >= term, "{kill}");
    let (second, _) = leader_where(&mut s, "a new leader after the kill", |n, t| {
        n != old && t > old_term
    });
    s.ok(&format!("restart {old}"));
    agreed_leader(&mut s, 3, "after the restart");
    // The restart followed the kind's peer model (one proxy in front of each member): its command line was
    // built anew, an existing member's, not the first one kept.
    let args = restarted_args(&mut s, old);
    assert!(
        args.windows(2)
            .any(|a| a[0] == "--initial-cluster-state" && a[1] == "existing"),
        "n{old} restarted with {args:?}"
    );

    // A partition between hosts: the leader's host against the other two. The majority side elects a leader
    // of its own; after the heal the three follow one leader again.
    let leader = agreed_leader(&mut s, 3, "before the partition");
    let others: Vec<String> = (1..=3u64)
        .filter(|n| *n != leader)
        .map(|n| n.to_string())
        .collect();
    s.ok(&format!("partition {leader}|{}", others.join(",")));
    leader_where(&mut s, "a leader on the majority side", |n, _| n != leader);
    s.heal_all();
    let leader = agreed_leader(&mut s, 3, "after the heal");
    assert_ne!(second, 0);

    // hold + step on a link between hosts: the leader's heartbeats to a follower (they travel on the stream
    // the follower opened to the proxy in front of the leader, on the leader's host) are held there, listed,
    // and delivered one at a time.
    let follower = (1..=3u64).find(|n| *n != leader).unwrap();
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
    assert!(
        held.iter()
            .all(|l| l.contains("heartbeat") && l.contains(&format!("{leader}->{follower}"))),
        "{held:#?}"
    );
    let stepped = s.ok(&format!("step {leader}->{follower}"));
    assert!(
        stepped.contains("1 frame") || stepped.contains("heartbeat"),
        "one held heartbeat delivered: {stepped}"
    );
    s.ok(&format!("release {leader}->{follower}"));
    s.heal_all();
    agreed_leader(&mut s, 3, "after the hold");

    // add: etcd (named bare, found on each host's PATH) starts on the host with the fewest members, the
    // first in the file among equals, and joins: the four follow one leader.
    // Answered `ok: add node 4 on host1 ... (pid N)` when the learner step commits at once, else `pending:`
    // (etcd may call the cluster unhealthy for a moment, seen under load): then the pid is in the feed.
    let add = s.accepted("add", "add");
    let pid4 = if add.starts_with("ok:") {
        assert!(add.contains("add node 4 on host1"), "{add}");
        pid_in(&add)
    } else {
        s.out.wait_for("node 4 running", s.wait, |l| {
            let at = l.find("n4 running, pid ")? + "n4 running, pid ".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()
        })
    };
    assert!(
        w.processes(0).contains(&pid4),
        "node 4 (pid {pid4}) is not in host1's namespace: {add}; host1 runs {:?}",
        w.describe_processes(0)
    );
    agreed_leader(&mut s, 4, "after the add");

    // The workload ran through all of it, its clients on the controller reaching the members' client ports
    // on their hosts: its history is linearizable.
    let (verdict, operations) = etcd::lin_kv_check(&mut s, 50);
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    assert!(operations >= 50, "too few operations judged: {verdict}");
    let _dir = s.quit();
    let left = w.wait_hosts_empty(Duration::from_secs(20));
    assert!(left.is_empty(), "still running on the hosts: {left:?}");

    // The directory resumes on the hosts: each proxy in front of a member, on its member's host, listens where
    // the members stored it does (the added member's too), so the four elect a leader and every stored peer
    // URL is listened on again.
    let mut s = etcd_on(&w, &["--seed", "25"]);
    agreed_leader(&mut s, 4, "the four members resumed on their hosts");
    assert_eq!(etcd::stored_peer_urls_listened(node_entry(&s, 1).0), 4);
    let _dir = s.quit();
    let left = w.wait_hosts_empty(Duration::from_secs(20));
    assert!(left.is_empty(), "still running on the hosts: {left:?}");
}

/// The pid in a membership answer's `(pid N)`.
fn pid_in(answer: &str) -> u32 {
    let at = answer.find("(pid ").expect("the answer names the pid") + "(pid ".len();
    answer[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {answer}"))
}

#[test]
fn hosts_without_the_kind_s_program_are_refused_with_exit_2_naming_each_and_the_kind_s_hint() {
    let Some(w) = netns::world(2) else { return };
    // etcd's kind with a program no host has; this machine need not have it either.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kinds/etcd.toml"))
        .unwrap()
        .replace(
            "program = \"etcd\"",
            "program = \"squall-test-no-such-etcd\"",
        )
        .replace(
            "missing = \"install etcd:",
            "missing = \"(the test's hint) install etcd:",
        );
    assert!(text.contains("squall-test-no-such-etcd") && text.contains("the test's hint"));
    let kind = w.path().join("no-etcd.toml");
    std::fs::write(&kind, text).unwrap();
    let hosts = w.hosts_file(&[&[1, 2], &[3]]);
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "--node-kind"])
        .arg(&kind)
        .arg("--hosts")
        .arg(&hosts)
        .arg("--dir")
        .arg(w.path().join("cluster"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let seen = format!(
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(2), "{seen}");
    for host in ["host1", "host2"] {
        assert!(
            err.contains(&format!(
                "host {host}: program `squall-test-no-such-etcd` is not on this host's PATH"
            )),
            "{host} is named: {seen}"
        );
    }
    assert!(err.contains("(the test's hint) install etcd"), "{seen}");
    // Nothing started: no node process, and the agents that were reached were stopped.
    assert!(!seen.contains("nodes up"), "{seen}");
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}\n{seen}");
}
