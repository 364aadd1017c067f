//! Real etcd members with every peer link through squall's per-destination rafthttp proxies: elections,
//! per-kind counters on the right directed links, one-way cuts, message filters, hold and step, and the v3
//! client through the cluster.
//!
//! Needs `etcd` on PATH (Debian's `etcd-server`). Without it the tests say so loudly and pass, unless `CI` is
//! set, where a missing etcd fails them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use squall::kind::etcd::classify::EtcdClassifier;
use squall::kind::etcd::client::{EtcdClient, EtcdStatus};
use squall::kind::etcd::member_id;
use squall_chaos::{Endpoint, Fault, FaultSpec, Framing, LabelSet, LinkId, Network};

/// etcd's program, found on PATH (Debian's `etcd-server` puts it in /usr/bin), as [`support::etcd::present`]
/// looks for it.
const ETCD: &str = "etcd";
const TOKEN: &str = "squall-etcd-test";

/// How one member is started.
#[derive(Clone, Copy)]
struct Timing {
    heartbeat_ms: u64,
    election_ms: u64,
}

const DEFAULT_TIMING: Timing = Timing {
    heartbeat_ms: 100,
    election_ms: 1500,
};

/// Three etcd members behind per-destination proxies; kills its members when dropped.
struct EtcdCluster {
    net: Network,
    children: BTreeMap<Endpoint, Child>,
    clients: BTreeMap<Endpoint, EtcdClient>,
    ids: BTreeMap<Endpoint, u64>,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for c in self.children.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A port the OS says is free now. Another process may take it before etcd binds it; [`EtcdCluster::start`]
/// notices (a member that exits at once) and starts over with new ports.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl EtcdCluster {
    /// Starts three members (node ids 1..=3) with `timing(node)`, after `setup` has put faults on the network.
    async fn start(timing: impl Fn(Endpoint) -> Timing, setup: impl Fn(&Network)) -> EtcdCluster {
        for attempt in 1..=3 {
            match Self::try_start(&timing, &setup).await {
                Ok(c) => return c,
                Err(why) => eprintln!("attempt {attempt}: {why}; starting over with new ports"),
            }
        }
        panic!("three attempts to start etcd failed");
    }

    async fn try_start(
        timing: &impl Fn(Endpoint) -> Timing,
        setup: &impl Fn(&Network),
    ) -> Result<EtcdCluster, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let net = Network::with_framing(7, Framing::RaftHttp, Some(Arc::new(EtcdClassifier)));
        setup(&net);
        let nodes: Vec<Endpoint> = vec![1, 2, 3];
        let mut proxy = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for &n in &nodes {
            let addr = net.add_destination(n).await.expect("proxy");
            let url = format!("http://{addr}");
            let id = member_id(&[&url], TOKEN);
            net.senders().set(id, n);
            ids.insert(n, id);
            proxy.insert(n, url);
        }
        let initial: Vec<String> = nodes.iter().map(|n| format!("n{n}={}", proxy[n])).collect();
        let mut children = BTreeMap::new();
        let mut clients = BTreeMap::new();
        for &n in &nodes {
            let peer = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let client = SocketAddr::from(([127, 0, 0, 1], free_port()));
            net.set_upstream(n, peer);
            let t = timing(n);
            let log = std::fs::File::create(dir.path().join(format!("n{n}.log"))).expect("log");
            let child = Command::new(ETCD)
                .args(["--name", &format!("n{n}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("n{n}")))
                .args(["--listen-peer-urls", &format!("http://{peer}")])
                .args(["--initial-advertise-peer-urls", &proxy[&n]])
                .args(["--listen-client-urls", &format!("http://{client}")])
                .args(["--advertise-client-urls", &format!("http://{client}")])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", TOKEN])
                .args(["--heartbeat-interval", &t.heartbeat_ms.to_string()])
                .args(["--election-timeout", &t.election_ms.to_string()])
                .arg("--pre-vote")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot run {ETCD}: {e}"))?;
            children.insert(n, child);
            clients.insert(n, EtcdClient::new(client, Duration::from_secs(2)));
        }
        let mut cluster = EtcdCluster {
            net,
            children,
            clients,
            ids,
            _dir: dir,
        };
        // A member whose port was taken meanwhile exits at once.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for (n, c) in cluster.children.iter_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let log =
                        std::fs::read_to_string(cluster._dir.path().join(format!("n{n}.log")))
                            .unwrap_or_default();
                    let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                    return Err(format!("member {n} exited ({status}): {tail}"));
                }
            }
            let mut up = 0;
            for c in cluster.clients.values() {
                if c.status().await.is_ok() {
                    up += 1;
                }
            }
            if up == 3 {
                return Ok(cluster);
            }
            if Instant::now() > deadline {
                return Err("members did not answer status within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn statuses(&self) -> BTreeMap<Endpoint, EtcdStatus> {
        let mut out = BTreeMap::new();
        for (&n, c) in &self.clients {
            if let Ok(s) = c.status().await {
                out.insert(n, s);
            }
        }
        out
    }

    fn node_of(&self, member: u64) -> Option<Endpoint> {
        self.ids
            .iter()
            .find(|(_, id)| **id == member)
            .map(|(n, _)| *n)
    }

    /// Waits until every member in `among` names the same leader, also in `among`, at a term above
    /// `above_term`; returns (leader node, term).
    async fn leader(
        &self,
        among: &[Endpoint],
        above_term: u64,
        within: Duration,
    ) -> (Endpoint, u64) {
        self.leader_never(among, above_term, within, None).await
    }

    /// Like [`EtcdCluster::leader`], and fails at once if any member names `never` as its leader.
    async fn leader_never(
        &self,
        among: &[Endpoint],
        above_term: u64,
        within: Duration,
        never: Option<Endpoint>,
    ) -> (Endpoint, u64) {
        let deadline = Instant::now() + within;
        let mut seen = BTreeMap::new();
        while Instant::now() < deadline {
            seen = self.statuses().await;
            if let Some(n) = never {
                for (m, s) in &seen {
                    assert_ne!(
                        s.leader.and_then(|l| self.node_of(l)),
                        Some(n),
                        "node {m} names node {n} as leader: {seen:?}"
                    );
                }
            }
            let leaders: Vec<Option<Endpoint>> = among
                .iter()
                .map(|n| {
                    seen.get(n)
                        .and_then(|s| s.leader)
                        .and_then(|l| self.node_of(l))
                })
                .collect();
            if let Some(Some(l)) = leaders.first()
                && leaders.iter().all(|x| *x == Some(*l))
                && among.contains(l)
                && seen[l].term > above_term
            {
                return (*l, seen[l].term);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader among {among:?} above term {above_term} within {within:?}; saw {seen:?}");
    }

    /// Frames of `label` seen on link `from -> to` (forwarded or dropped).
    fn frames(&self, from: Endpoint, to: Endpoint, label: &str) -> (u64, u64) {
        self.net
            .link_stats(LinkId::new(from, to))
            .and_then(|s| s.by_label.into_iter().find(|l| l.label == label))
            .map_or((0, 0), |l| (l.frames, l.dropped))
    }

    fn labels(&self, names: &[&str]) -> LabelSet {
        let all = self.net.labels();
        LabelSet::of(
            names
                .iter()
                .map(|n| all.iter().position(|l| l == n).expect("known label") as u8),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_through_the_proxies_elects_counts_per_link_and_survives_a_cut_into_the_leader() {
    if !support::etcd::present("etcd_through_the_proxies_elects") {
        return;
    }
    let c = EtcdCluster::start(|_| DEFAULT_TIMING, |_| {}).await;
    let all = [1, 2, 3];
    let (leader, term) = c.leader(&all, 0, Duration::from_secs(30)).await;
    eprintln!("leader n{leader} at term {term}");

    // The v3 client through the cluster: writes through a follower, reads and compare-and-sets.
    let follower = *all.iter().find(|&&n| n != leader).unwrap();
    let kv = &c.clients[&follower];
    kv.put("k1", "1").await.expect("put");
    assert_eq!(kv.get("k1").await.expect("get"), Some("1".to_string()));
    assert_eq!(kv.get("nope").await.expect("get absent"), None);
    kv.cas("k1", Some("1"), "2").await.expect("cas that holds");
    let refused = kv
        .cas("k1", Some("1"), "3")
        .await
        .expect_err("cas that does not hold");
    assert!(
        refused.is_fail(),
        "a compare that failed is a definite fail: {refused}"
    );
    kv.cas("k2", None, "9").await.expect("cas on an absent key");
    assert!(kv.cas("k2", None, "10").await.unwrap_err().is_fail());
    assert_eq!(
        c.clients[&leader].get("k1").await.unwrap(),
        Some("2".into())
    );

    // Per-kind counters on the right directed links. Replies to heartbeats flow back on links into the
    // leader; the leader's appends and heartbeats go out on links from it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = all.iter().filter(|&&f| f != leader).all(|&f| {
            c.frames(leader, f, "heartbeat").0 > 0
                && c.frames(leader, f, "append").0 > 0
                && c.frames(f, leader, "heartbeat-reply").0 > 0
                && c.frames(f, leader, "append-reply").0 > 0
                && c.frames(f, leader, "heartbeat").0 == 0
        });
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per-kind counters never showed the leader's traffic: {:#?}",
            c.net.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let votes_into_leader: u64 = all
        .iter()
        .filter(|&&f| f != leader)
        .map(|&f| c.frames(f, leader, "vote-reply").0)
        .sum();
    assert!(
        votes_into_leader > 0,
        "the leader was elected with vote replies on links into it"
    );

    // cut *->L: the leader hears nothing; the others elect a new leader at a higher term.
    let into: Vec<LinkId> = all
        .iter()
        .filter(|&&f| f != leader)
        .map(|&f| LinkId::new(f, leader))
        .collect();
    let cut = c
        .net
        .add_fault(into, FaultSpec::permanent(Fault::Blackhole));
    let others: Vec<Endpoint> = all.iter().copied().filter(|&n| n != leader).collect();
    let (new_leader, new_term) = c.leader(&others, term, Duration::from_secs(30)).await;
    eprintln!("after cut *->n{leader}: leader n{new_leader} at term {new_term}");
    assert_ne!(new_leader, leader);
    let dropped: u64 = others
        .iter()
        .map(|&f| {
            c.net
                .link_stats(LinkId::new(f, leader))
                .unwrap()
                .frames_dropped
        })
        .sum();
    assert!(dropped > 0, "the cut dropped frames into the old leader");
    c.net.remove_fault_id(cut);
    let (_, _) = c.leader(&all, term, Duration::from_secs(30)).await;
    c.clients[&leader]
        .put("k3", "after")
        .await
        .expect("put after the heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_every_vote_reply_to_a_node_keeps_it_from_leading_across_elections() {
    if !support::etcd::present("losing_every_vote_reply") {
        return;
    }
    // Node 1 times out first every time, so without the filter it would win nearly every election. Under load
    // it also drops out of following now and then (a pre-candidate knows no leader), so agreement on the
    // leader is asked of the other members only, while every poll checks that nobody names node 1.
    const N: Endpoint = 1;
    let timing = |n| {
        if n == N {
            Timing {
                heartbeat_ms: 100,
                election_ms: 600,
            }
        } else {
            Timing {
                heartbeat_ms: 100,
                election_ms: 3000,
            }
        }
    };
    let filter = |net: &Network| {
        let all = net.labels();
        let set = LabelSet::of(
            ["vote-reply", "pre-vote-reply"]
                .iter()
                .map(|n| all.iter().position(|l| l == n).unwrap() as u8),
        );
        net.add_fault(
            [LinkId::new(2, N), LinkId::new(3, N)],
            FaultSpec::permanent(Fault::Loss { p: 1.0 }).only(set),
        );
    };
    let c = EtcdCluster::start(timing, filter).await;
    let all = [1, 2, 3];
    let within = Duration::from_secs(60);
    let (mut leader, mut term) = c.leader_never(&[2, 3], 0, within, Some(N)).await;
    assert_ne!(
        leader, N,
        "node {N} led although every vote reply to it was lost"
    );
    for round in 1..=3 {
        // Isolate the leader: the other two must elect, and node 1 campaigns first.
        let links: Vec<LinkId> = all
            .iter()
            .filter(|&&x| x != leader)
            .flat_map(|&x| [LinkId::new(x, leader), LinkId::new(leader, x)])
            .collect();
        let cut = c
            .net
            .add_fault(links, FaultSpec::permanent(Fault::Blackhole));
        let others: Vec<Endpoint> = all
            .iter()
            .copied()
            .filter(|&n| n != leader && n != N)
            .collect();
        let (l, t) = c.leader_never(&others, term, within, Some(N)).await;
        eprintln!("round {round}: n{leader} isolated, n{l} leads at term {t}");
        assert_ne!(
            l, N,
            "round {round}: node {N} led although every vote reply to it was lost"
        );
        c.net.remove_fault_id(cut);
        (leader, term) = c.leader_never(&[2, 3], t - 1, within, Some(N)).await;
        assert_ne!(leader, N, "round {round}: node {N} led after the heal");
    }
    let dropped: u64 = [2, 3]
        .iter()
        .map(|&x| c.frames(x, N, "pre-vote-reply").1 + c.frames(x, N, "vote-reply").1)
        .sum();
    assert!(
        dropped > 0,
        "node {N} campaigned and its replies were dropped: {:#?}",
        c.net.stats()
    );
    eprintln!("vote replies dropped on their way to node {N}: {dropped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_etcd_heartbeats_are_stepped_one_at_a_time_and_the_stream_stays_valid() {
    if !support::etcd::present("held_etcd_heartbeats") {
        return;
    }
    let c = EtcdCluster::start(|_| DEFAULT_TIMING, |_| {}).await;
    let all = [1, 2, 3];
    let (leader, term) = c.leader(&all, 0, Duration::from_secs(30)).await;
    let f = *all.iter().find(|&&n| n != leader).unwrap();
    let link = LinkId::new(leader, f);
    let hold = c.net.add_fault(
        [link],
        FaultSpec::permanent(Fault::Hold).only(c.labels(&["heartbeat"])),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.net.held().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "no heartbeats held: {:?}",
            c.net.held()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        let oldest = c.net.held()[0].clone();
        assert_eq!(oldest.link, link);
        assert_eq!(oldest.label.as_deref(), Some("heartbeat"));
        let want = format!("heartbeat {:x}->{:x} term ", c.ids[&leader], c.ids[&f]);
        assert!(
            oldest.detail.starts_with(&want),
            "described as {:?}",
            oldest.detail
        );
        let stepped = c.net.step(|l| l == link, 1);
        assert_eq!(stepped.len(), 1);
        assert_eq!(
            stepped[0].frame.seq, oldest.seq,
            "the oldest is stepped first"
        );
        assert!(stepped[0].delivered, "stepped into the live stream");
        assert!(c.net.held().iter().all(|h| h.seq != oldest.seq));
    }
    c.net.remove_fault_id(hold);
    assert!(
        c.net.held().is_empty(),
        "removing the hold delivers what it held"
    );
    // The stream stayed valid HTTP: the same leader keeps its term and the follower takes writes.
    c.clients[&f]
        .put("after-hold", "1")
        .await
        .expect("put through the follower");
    let (l, t) = c.leader(&all, 0, Duration::from_secs(10)).await;
    assert_eq!(
        (l, t),
        (leader, term),
        "no election: the follower kept hearing its leader"
    );
}
