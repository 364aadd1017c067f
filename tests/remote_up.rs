//! `squall up --hosts FILE` end to end on real hosts (issue 24): network namespaces joined by a bridge, each
//! with its own address and sshd (`tests/support/netns.rs`), the controller in the root namespace. The
//! session is the headless console, driven as every other end-to-end test drives it.
//!
//! These tests need root (network namespaces): elsewhere they print "skipped: ..." and pass, except with
//! `CI=true`, where they fail.

use std::io::Write;
use std::time::Duration;

mod support;

use support::netns::{self, World};
use support::session::{Session, Up};

/// Where each of the five nodes runs: nodes 1 and 2 on host1, 3 and 4 on host2, 5 on host3.
const PLACEMENT: [&[u64]; 3] = [&[1, 2], &[3, 4], &[5]];

fn host_of(node: u64) -> usize {
    PLACEMENT.iter().position(|p| p.contains(&node)).unwrap()
}

/// A 5-node session on the world's three hosts, with `args` after `-n 5 --hosts FILE`, waited on until a
/// leader is named.
fn up_on(w: &World, args: &[&str]) -> Session {
    let hosts = w.hosts_file(&PLACEMENT);
    let mut all = vec!["-n", "5", "--hosts", hosts.to_str().unwrap()];
    all.extend_from_slice(args);
    Up::new(&all)
        .dir(w.path().join("cluster"))
        .wait(Duration::from_secs(60))
        .start()
}

/// Every node process the session started runs in its host's namespace.
fn nodes_run_on_their_hosts(w: &World, s: &Session) {
    let pids = support::node_pids(&s.cdir);
    assert_eq!(pids.len(), 5, "cluster.json lists {pids:?}");
    for (i, pid) in pids.iter().enumerate() {
        let node = i as u64 + 1;
        let h = host_of(node);
        assert!(
            w.processes(h).contains(pid),
            "node {node} (pid {pid}) is not in {}'s namespace: {:?}",
            w.host(h).alias,
            w.describe_processes(h)
        );
    }
}

/// Polls `status` until a running node other than `not` leads in a term above `above`; (leader, term).
fn new_leader(s: &mut Session, not: u64, above: u64) -> (u64, u64) {
    s.until("a new leader", |ns| {
        ns.values()
            .filter(|n| n.running && n.role == "leader" && n.id != not && n.term > above)
            .max_by_key(|n| n.term)
            .map(|n| (n.id, n.term))
    })
}

/// Sends `check` until the lin-kv verdict is conclusive (up to ten tries); the verdict line.
fn lin_kv_check(s: &mut Session) -> String {
    for _ in 0..10 {
        writeln!(s.stdin, "check").unwrap();
        let line = s
            .out
            .wait_for("the check's verdict", Duration::from_secs(60), |l| {
                ((l.starts_with("ok:") || l.starts_with("error:")) && l.contains("check"))
                    .then(|| l.to_string())
            });
        if !line.contains("inconclusive") {
            return line;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("ten lin-kv checks in a row were inconclusive");
}

/// Quits the session, then checks that no process is left on any host and nothing is mounted.
fn quit_leaving_nothing(w: &World, s: Session) {
    let _dir = s.quit();
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running on the hosts: {left:?}");
    assert_eq!(w.mounts(), Vec::<String>::new(), "mounts left");
}

#[test]
fn five_nodes_on_three_hosts_elect_survive_a_leader_kill_a_one_way_cut_and_a_partition_and_lin_kv_is_linearizable()
 {
    let Some(w) = netns::world(3) else { return };
    let mut s = up_on(
        &w,
        &["--workload", "lin-kv", "--rate", "20", "--seed", "24"],
    );
    nodes_run_on_their_hosts(&w, &s);
    let (_, term) = s.first_leader.expect("a leader line");

    // kill leader: the four others, on three hosts, elect a new one in a higher term.
    let kill = s.ask("kill leader", "kill node");
    let (old, old_term) = support::killed_leader(&kill).expect("the kill names the leader");
    assert!(old_term >= term, "{kill}");
    let (second, second_term) = new_leader(&mut s, old, old_term);
    s.ok(&format!("restart {old}"));

    // A one-way cut between hosts: nothing the leader sends reaches the nodes of the other hosts, so they stop
    // hearing it and elect another leader; the old one still hears them.
    let others: Vec<u64> = (1..=5).filter(|n| host_of(*n) != host_of(second)).collect();
    for n in &others {
        s.ok(&format!("cut {second}->{n}"));
    }
    let (_, third_term) = new_leader(&mut s, second, second_term);
    s.heal_all();

    // A partition along the hosts: host1 against host2 and host3. The majority side (3 nodes) elects or keeps
    // a leader and goes on committing; after the heal the cluster is whole again.
    s.ok("partition 1,2|3,4,5");
    s.until("a leader on the majority side", |ns| {
        ns.values()
            .find(|n| n.running && n.role == "leader" && n.id >= 3 && n.term >= third_term)
            .map(|n| n.id)
    });
    let before = s.max_commit();
    s.until("commits on the majority side", |ns| {
        ns.values()
            .any(|n| n.id >= 3 && n.commit >= before + 20)
            .then_some(())
    });
    s.heal_all();
    s.until("every node to follow one leader", |ns| {
        let leaders: Vec<Option<u64>> = ns
            .values()
            .filter(|n| n.running)
            .map(|n| n.leader)
            .collect();
        (leaders.len() == 5 && leaders.iter().all(|l| l.is_some() && *l == leaders[0]))
            .then_some(())
    });

    // The workload ran through all of it: its history is linearizable.
    let verdict = lin_kv_check(&mut s);
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    quit_leaving_nothing(&w, s);
}

#[test]
fn killing_the_controller_with_sigkill_leaves_no_node_process_and_no_mount_on_any_host_after_the_grace_period()
 {
    let Some(w) = netns::world(3) else { return };
    let mut s = up_on(&w, &["--workload"]);
    nodes_run_on_their_hosts(&w, &s);
    let pids = support::node_pids(&s.cdir);
    // SIGKILL: squall stops nothing itself. Its ssh connections end, each agent reads end-of-file, keeps its
    // nodes for its grace period (a controller that comes back could take them over), then stops them.
    s.child.kill().unwrap();
    let _ = s.child.wait();
    let left = w.wait_hosts_empty(Duration::from_secs(45));
    assert!(
        left.is_empty(),
        "still running on the hosts 45 s after the controller died: {left:?}"
    );
    assert!(support::wait_gone(&pids, Duration::from_secs(1)).is_empty());
    assert_eq!(w.mounts(), Vec::<String>::new(), "mounts left");
}

/// The first output line from index `from` on that `f` accepts: one already read (a listing may have read past
/// it), else the next one, waited for up to `timeout`.
fn feed_line(
    s: &mut Session,
    from: usize,
    what: &str,
    timeout: Duration,
    f: impl Fn(&str) -> bool,
) -> String {
    if let Some(l) = s.out.seen[from.min(s.out.seen.len())..]
        .iter()
        .find(|l| f(l))
    {
        return l.clone();
    }
    s.out
        .wait_for(what, timeout, |l| f(l).then(|| l.to_string()))
}

/// The pids `status` shows for `nodes`, in order; fails the test for a node without one.
fn status_pids(s: &mut Session, nodes: &[u64]) -> Vec<u32> {
    let listing = s.listing("status", "status:");
    nodes
        .iter()
        .map(|n| {
            let line = listing
                .iter()
                .find(|l| l.starts_with(&format!("n{n} ")))
                .unwrap_or_else(|| panic!("no status line for n{n}: {listing:#?}"));
            support::session::parse_node(line)
                .and_then(|p| p.pid)
                .unwrap_or_else(|| panic!("no pid in {line:?}"))
        })
        .collect()
}

/// Issue 24 through `up --hosts`: host1's ssh sessions are killed (what a host that went down takes with it).
/// The feed says host1 is unreachable, squall reconnects to the agent that kept its nodes — the same node
/// processes — and its nodes take commands again, their exits followed through the new connection.
#[test]
fn a_host_whose_ssh_sessions_die_is_shown_unreachable_then_back_with_the_same_node_processes() {
    let Some(w) = netns::world(3) else { return };
    let mut s = up_on(&w, &[]);
    let host1 = w.host(0).alias.clone();
    let before = status_pids(&mut s, &[1, 2]);
    let from = s.out.seen.len();
    w.drop_ssh_sessions(0);
    let t0 = std::time::Instant::now();
    let gone = feed_line(
        &mut s,
        from,
        "host1 shown unreachable",
        Duration::from_secs(10),
        |l| l.contains(&format!("host {host1} unreachable")),
    );
    eprintln!("shown unreachable after {:?}: {gone}", t0.elapsed());
    assert!(gone.contains("n1, n2 unreachable"), "{gone}");
    let back = feed_line(&mut s, from, "host1 back", Duration::from_secs(30), |l| {
        l.contains(&format!("host {host1} back"))
    });
    eprintln!("back after {:?}: {back}", t0.elapsed());
    // The same agent kept the same node processes.
    assert_eq!(status_pids(&mut s, &[1, 2]), before, "{back}");
    for p in &before {
        assert!(w.processes(0).contains(p), "pid {p} is gone from host1");
    }
    // Commands reach host1 through the new connection, and its exits are followed again.
    s.ok("kill 2");
    s.until("n2 shown killed", |ns| {
        ns.get(&2)
            .is_some_and(|n| n.line.starts_with("n2 killed"))
            .then_some(())
    });
    s.ok("restart 2");
    s.until("n2 running again", |ns| {
        ns.get(&2).is_some_and(|n| n.running).then_some(())
    });
    quit_leaving_nothing(&w, s);
}

/// Issue 24 through `up --hosts`: host1's sshd stops and its cable is pulled. The feed says host1 is
/// unreachable, its nodes show so in `status` (never guessed), commands on them are refused naming the host,
/// the other hosts go on taking commands; when sshd and the cable are back, so is the host, with the same
/// node processes.
#[test]
fn a_host_whose_sshd_stops_and_cable_is_pulled_is_unreachable_refused_and_recovers_when_both_return()
 {
    let Some(mut w) = netns::world(3) else { return };
    let mut s = up_on(&w, &[]);
    let host1 = w.host(0).alias.clone();
    let before = status_pids(&mut s, &[1, 2]);
    let from = s.out.seen.len();
    w.stop_sshd(0);
    w.cable(0, false);
    let t0 = std::time::Instant::now();
    let gone = feed_line(
        &mut s,
        from,
        "host1 shown unreachable",
        Duration::from_secs(10),
        |l| l.contains(&format!("host {host1} unreachable")),
    );
    eprintln!("shown unreachable after {:?}: {gone}", t0.elapsed());
    // Its agent keeps the nodes for its grace period (10 s) after the last ping: what follows is quick.
    let refused = s.refused("kill 1");
    assert!(
        refused.contains(&format!("host {host1} is unreachable"))
            && refused.contains("nothing was done"),
        "{refused}"
    );
    let refused = s.refused("cut 3->2");
    assert!(refused.contains(&format!("host {host1}")), "{refused}");
    let line = s.node_line(2);
    assert!(
        line.starts_with(&format!("n2 unreachable (host {host1} does not answer")),
        "{line}"
    );
    // The other hosts keep working.
    s.ok("pause 5");
    s.ok("resume 5");
    s.ok("cut 3->5");
    s.heal_all();
    w.cable(0, true);
    w.start_sshd(0);
    let back = feed_line(&mut s, from, "host1 back", Duration::from_secs(30), |l| {
        l.contains(&format!("host {host1} back"))
    });
    eprintln!("back after {:?}: {back}", t0.elapsed());
    assert_eq!(status_pids(&mut s, &[1, 2]), before, "{back}");
    s.ok("pause 1");
    s.ok("resume 1");
    s.until("n1 and n2 answering again", |ns| {
        [1, 2]
            .iter()
            .all(|id| ns.get(id).is_some_and(|n| n.running))
            .then_some(())
    });
    quit_leaving_nothing(&w, s);
}

/// A deliberate restart on hosts is not a fault (tester 7): `restart 2`, `wipe 4` and `restart all` said
/// `n2 unreachable: the connection to the server was already shutdown` then `n2 answers again` on hosts,
/// where locally the same restarts say neither. Their feed has no `unreachable` line.
#[test]
fn a_restart_a_wipe_and_restart_all_on_hosts_tell_no_node_unreachable() {
    let Some(w) = netns::world(3) else { return };
    let mut s = up_on(&w, &[]);
    let from = s.out.seen.len();
    let answering = |ids: &'static [u64]| {
        move |ns: &std::collections::BTreeMap<u64, support::session::Node>| {
            ids.iter()
                .all(|id| ns.get(id).is_some_and(|n| n.running))
                .then_some(())
        }
    };
    s.ok("restart 2");
    s.until("n2 answering after its restart", answering(&[2]));
    s.ok("wipe 4");
    s.until("n4 answering after its wipe", answering(&[4]));
    s.ok("restart all");
    s.until(
        "every node answering after restart all",
        answering(&[1, 2, 3, 4, 5]),
    );
    let told: Vec<&String> = s.out.seen[from..]
        .iter()
        .filter(|l| l.contains(" unreachable") || l.contains("answers again"))
        .collect();
    assert!(
        told.is_empty(),
        "a deliberate restart was told as a fault:\n{}",
        told.iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    quit_leaving_nothing(&w, s);
}
