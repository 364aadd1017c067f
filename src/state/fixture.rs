//! A deterministic, made-up session for snapshot tests, benchmarks and demos of the dashboard.
//!
//! It tells a small story in about a minute: an election, a steady workload, the leader killed and replaced, the
//! old leader restarted with a diverged log and isolated before it could be repaired, latency on one node, and
//! (with five nodes or more) a paused node. Pids, paths and times are fixed so rendered screens are stable.

use squall_node::paxos::Ballot;
use squall_node::raft::types::{
    CoreStatus, Membership, PeerProgress, RaftEvent, Role, SnapshotMeta,
};
use squall_node::rpc::{EventRecord, LogCell, NodeEvent, NodeStatus, PaxosView, RpcCounters};

use super::{ClusterState, Event, LinkState, LinkView, ProcessState, Stamped};

/// When the first leader is killed.
const KILL_MS: u64 = 30_000;
/// When the second leader's first entry is written.
const SECOND_TERM_MS: u64 = 31_000;
/// When the workload is switched off, so the new leader's log stays close enough to compare with the old one's.
const WORKLOAD_OFF_MS: u64 = 31_250;
/// When the killed node comes back.
const RESTART_MS: u64 = 48_000;
/// When it is cut off.
const ISOLATE_MS: u64 = 48_100;
/// When latency is added to node 3.
const DELAY_MS: u64 = 52_000;
/// When node 5 is paused.
const PAUSE_MS: u64 = 55_000;
/// Where the session ends.
const END_MS: u64 = 62_000;
/// Index of the term-1 noop.
const FIRST_NOOP: u64 = 1;
/// Writes per second of the workload.
const RATE: u64 = 40;
/// The log was compacted up to here before the kill.
const SNAPSHOT_AT: u64 = 900;

/// The session's events, in order. `nodes` must be between 3 and 9.
pub fn sample_session(nodes: usize) -> Vec<Stamped> {
    assert!(
        (3..=9).contains(&nodes),
        "the fixture needs 3 to 9 nodes, not {nodes}"
    );
    Session::new(nodes as u64).run()
}

/// The state after the whole [`sample_session`].
pub fn sample_state(nodes: usize) -> ClusterState {
    let mut s = ClusterState::new();
    for e in sample_session(nodes) {
        s.apply(&e);
    }
    s
}

struct Session {
    n: u64,
    second_leader: u64,
    events: Vec<Stamped>,
    seq: Vec<u64>,
}

impl Session {
    fn new(n: u64) -> Self {
        Self {
            n,
            second_leader: if n >= 4 { 4 } else { 3 },
            events: Vec::new(),
            seq: vec![0; n as usize + 1],
        }
    }

    fn push(&mut self, at_ms: u64, event: Event) {
        self.events.push(Stamped { at_ms, event });
    }

    fn feed(&mut self, at_ms: u64, node: u64, event: RaftEvent) {
        let seq = self.seq[node as usize];
        self.seq[node as usize] += 1;
        let record = EventRecord {
            seq,
            at_ms,
            event: NodeEvent::Raft(event),
        };
        self.push(at_ms, Event::NodeFeed { node, record });
    }

    fn pid(&self, node: u64, restarted: bool) -> u32 {
        4100 + node as u32 * 7 + if restarted { 300 } else { 0 }
    }

    /// The cluster's last log index at `t` (the leader's).
    fn last_index(&self, t: u64) -> u64 {
        if t < 5_000 {
            FIRST_NOOP
        } else if t < KILL_MS {
            FIRST_NOOP + (t - 5_000) * RATE / 1000
        } else if t < SECOND_TERM_MS {
            self.last_index(KILL_MS - 1)
        } else {
            self.last_index(KILL_MS - 1)
                + 1
                + (t.min(WORKLOAD_OFF_MS) - SECOND_TERM_MS) * RATE / 1000
        }
    }

    fn term_of(&self, index: u64) -> u64 {
        if index <= self.last_index(KILL_MS - 1) {
            1
        } else {
            2
        }
    }

    /// The configuration and the index of the entry that set it: every node votes (the bootstrap configuration),
    /// except that with nine nodes node 9 only learns, added by the entry after the second leader's noop.
    fn config(&self) -> (Membership, u64) {
        let learner = (self.n >= 9).then_some(self.n);
        let config = Membership {
            voters: (1..=self.n).filter(|&i| Some(i) != learner).collect(),
            learners: learner.into_iter().collect(),
        };
        let index = if learner.is_some() {
            self.last_index(KILL_MS - 1) + 2
        } else {
            0
        };
        (config, index)
    }

    fn cells(&self, from: u64, to: u64, term_of: impl Fn(u64) -> u64) -> Vec<LogCell> {
        let noop2 = self.last_index(KILL_MS - 1) + 1;
        let (config, config_index) = self.config();
        (from.max(SNAPSHOT_AT + 1).max(to.saturating_sub(63))..=to)
            .map(|index| LogCell {
                index,
                term: term_of(index),
                text: if index == FIRST_NOOP || index == noop2 {
                    "noop".into()
                } else if index == config_index {
                    let ids = |s: &std::collections::BTreeSet<u64>| {
                        s.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
                    };
                    format!(
                        "config v{{{}}} l{{{}}}",
                        ids(&config.voters),
                        ids(&config.learners)
                    )
                } else {
                    format!("put k{index}=v")
                },
            })
            .collect()
    }

    /// A status of `node` at `t` in the main history (everything but the restarted old leader).
    fn status(&self, node: u64, t: u64) -> NodeStatus {
        let leader = if t < KILL_MS {
            Some(2)
        } else if t < KILL_MS + 340 {
            None
        } else {
            Some(self.second_leader)
        };
        let term = if t < KILL_MS + 320 { 1 } else { 2 };
        let top = self.last_index(t);
        let behind = if Some(node) == leader || t >= WORKLOAD_OFF_MS {
            0
        } else {
            1
        };
        let last = top - behind.min(top);
        let commit = if Some(node) == leader || t >= WORKLOAD_OFF_MS {
            last
        } else {
            last.saturating_sub(1)
        };
        let role = if Some(node) == leader {
            Role::Leader
        } else {
            Role::Follower
        };
        let progress = if Some(node) == leader {
            (1..=self.n)
                .filter(|&p| p != node)
                .map(|p| PeerProgress {
                    id: p,
                    match_index: if p == 2 && t >= KILL_MS {
                        self.last_index(KILL_MS - 1)
                    } else if t >= WORKLOAD_OFF_MS {
                        top
                    } else {
                        top - 1
                    },
                    next_index: top + 1,
                    inflight: 1,
                    snapshotting: false,
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut s = node_status(node, self.pid(node, false), term, last);
        s.cluster_id = "demo-7f3a".into();
        s.core.role = role;
        s.core.vote = Some(if term == 1 { 2 } else { self.second_leader });
        s.core.leader = leader;
        s.core.commit_index = commit;
        s.core.last_log_term = self.term_of(last);
        s.core.snapshot_index = if t >= 27_500 { SNAPSHOT_AT } else { 0 };
        s.core.progress = progress;
        (s.core.config, s.core.config_index) = self.config();
        s.core.config_committed = commit >= s.core.config_index;
        s.applied_index = commit;
        s.log_tail = self.cells(1, last, |i| self.term_of(i));
        s.rpc = RpcCounters {
            append_in: t / 50,
            append_out: if Some(node) == leader {
                t / 50 * (self.n - 1)
            } else {
                0
            },
            ..RpcCounters::default()
        };
        s.uptime_ms = t;
        s.keys = commit.saturating_sub(2);
        s
    }

    /// The old leader after its restart: its log still ends in term-1 entries nobody else has.
    fn stale_status(&self, t: u64) -> NodeStatus {
        let committed = self.last_index(KILL_MS - 1);
        let last = committed + 3;
        let mut s = node_status(2, self.pid(2, true), 1, last);
        s.cluster_id = "demo-7f3a".into();
        s.core.vote = Some(2);
        s.core.commit_index = committed;
        s.core.snapshot_index = SNAPSHOT_AT;
        // Restarted with a log from before node 9 joined.
        s.core.config = Membership {
            voters: (1..=self.n)
                .filter(|&i| self.n < 9 || i != self.n)
                .collect(),
            learners: Default::default(),
        };
        s.applied_index = committed;
        s.log_tail = self.cells(1, last, |_| 1);
        s.uptime_ms = t - RESTART_MS;
        s.keys = committed - 2;
        s
    }

    fn links(&self, t: u64) -> Vec<LinkView> {
        let mut out = Vec::new();
        for from in 1..=self.n {
            for to in 1..=self.n {
                if from == to {
                    continue;
                }
                let touches = |x: u64| from == x || to == x;
                let state = if touches(2) && t >= ISOLATE_MS {
                    LinkState::Cut
                } else if touches(3) && t >= DELAY_MS {
                    LinkState::Delayed(200)
                } else {
                    LinkState::Ok
                };
                let base = t / 50 + from * 3 + to;
                let cut_since = if touches(2) && t >= ISOLATE_MS {
                    (t - ISOLATE_MS) / 50
                } else {
                    0
                };
                out.push(LinkView {
                    from,
                    to,
                    state,
                    frames: base - cut_since,
                    bytes: (base - cut_since) * 180,
                    dropped: cut_since,
                    kinds: Vec::new(),
                    duplicated: 0,
                    delayed: 0,
                });
            }
        }
        out
    }

    fn run(mut self) -> Vec<Stamped> {
        let n = self.n;
        self.push(
            0,
            Event::SessionStarted {
                cluster_id: "demo-7f3a".into(),
                nodes: (1..=n).collect(),
                dir: "/tmp/squall-demo".into(),
            },
        );
        for node in 1..=n {
            let pid = self.pid(node, false);
            self.push(
                10 * node,
                Event::Process {
                    node,
                    state: ProcessState::Running { pid },
                },
            );
            let record = EventRecord {
                seq: 0,
                at_ms: 200,
                event: NodeEvent::Started {
                    term: 0,
                    last_index: 0,
                    snapshot_index: 0,
                    empty: true,
                    truncated_tail_bytes: 0,
                    damaged_tail: false,
                },
            };
            self.seq[node as usize] = 1;
            self.push(300, Event::NodeFeed { node, record });
        }
        // The first election: node 2 wins term 1.
        self.feed(
            800,
            2,
            RaftEvent::ElectionStarted {
                term: 1,
                pre_vote: true,
                round: 0,
            },
        );
        self.feed(
            800,
            2,
            RaftEvent::RoleChanged {
                role: Role::PreCandidate,
                term: 0,
            },
        );
        self.feed(
            810,
            1,
            RaftEvent::VoteGranted {
                candidate: 2,
                term: 1,
                pre_vote: true,
                round: 0,
            },
        );
        self.feed(
            820,
            2,
            RaftEvent::RoleChanged {
                role: Role::Candidate,
                term: 1,
            },
        );
        self.feed(820, 2, RaftEvent::TermChanged { term: 1 });
        self.feed(
            820,
            2,
            RaftEvent::ElectionStarted {
                term: 1,
                pre_vote: false,
                round: 0,
            },
        );
        for v in [1, 3] {
            self.feed(830, v, RaftEvent::TermChanged { term: 1 });
            self.feed(
                830,
                v,
                RaftEvent::VoteGranted {
                    candidate: 2,
                    term: 1,
                    pre_vote: false,
                    round: 0,
                },
            );
        }
        self.feed(
            840,
            2,
            RaftEvent::RoleChanged {
                role: Role::Leader,
                term: 1,
            },
        );
        self.push(
            5_000,
            Event::Performed {
                command: crate::command::parse("workload on").expect("a console line"),
                node: None,
                effect: "workload on at 40 writes/s".into(),
            },
        );

        let mut ok = 0u64;
        let mut failed = 0u64;
        let mut t = 1_000;
        while t <= END_MS {
            if t == 20_000 {
                self.push(
                    t,
                    Event::Recording {
                        on: true,
                        path: Some("demo.cast".into()),
                    },
                );
            }
            if t == 28_000 {
                let meta = SnapshotMeta {
                    last_index: SNAPSHOT_AT,
                    last_term: 1,
                };
                for node in 1..=n {
                    self.feed(t - 500, node, RaftEvent::SnapshotTaken { meta });
                }
            }
            if t == KILL_MS {
                self.push(
                    t,
                    Event::Performed {
                        command: crate::command::parse("kill 2").expect("a console line"),
                        node: Some(2),
                        effect: "kill node 2 (leader, term 1)".into(),
                    },
                );
                let pid = self.pid(2, false);
                self.push(
                    t + 2,
                    Event::Process {
                        node: 2,
                        state: ProcessState::Killed { pid },
                    },
                );
                let l = self.second_leader;
                self.feed(
                    t + 300,
                    l,
                    RaftEvent::ElectionStarted {
                        term: 2,
                        pre_vote: true,
                        round: 0,
                    },
                );
                self.feed(
                    t + 310,
                    l,
                    RaftEvent::RoleChanged {
                        role: Role::PreCandidate,
                        term: 1,
                    },
                );
                self.feed(
                    t + 320,
                    l,
                    RaftEvent::RoleChanged {
                        role: Role::Candidate,
                        term: 2,
                    },
                );
                self.feed(t + 320, l, RaftEvent::TermChanged { term: 2 });
                self.feed(
                    t + 320,
                    l,
                    RaftEvent::ElectionStarted {
                        term: 2,
                        pre_vote: false,
                        round: 0,
                    },
                );
                for v in [1, 3] {
                    self.feed(
                        t + 330,
                        v,
                        RaftEvent::VoteGranted {
                            candidate: l,
                            term: 2,
                            pre_vote: false,
                            round: 0,
                        },
                    );
                }
                self.feed(
                    t + 340,
                    l,
                    RaftEvent::RoleChanged {
                        role: Role::Leader,
                        term: 2,
                    },
                );
                failed += 6;
            }
            if t == RESTART_MS {
                self.push(
                    t - 100,
                    Event::Performed {
                        command: crate::command::parse("restart 2").expect("a console line"),
                        node: Some(2),
                        effect: "restart node 2".into(),
                    },
                );
                self.push(
                    t - 90,
                    Event::Process {
                        node: 2,
                        state: ProcessState::Restarting { wipe: false },
                    },
                );
                let pid = self.pid(2, true);
                self.push(
                    t,
                    Event::Process {
                        node: 2,
                        state: ProcessState::Running { pid },
                    },
                );
                self.push(
                    t + 100,
                    Event::Performed {
                        command: crate::command::parse("isolate 2").expect("a console line"),
                        node: Some(2),
                        effect: "isolate node 2 (follower): 2 of 2 directions cut to every peer"
                            .into(),
                    },
                );
            }
            if t == DELAY_MS {
                self.push(
                    t,
                    Event::Performed {
                        command: crate::command::parse("delay 3 200ms").expect("a console line"),
                        node: Some(3),
                        effect: "delay node 3 200ms on 4 links".into(),
                    },
                );
            }
            if t == PAUSE_MS && n >= 5 {
                self.push(
                    t,
                    Event::Performed {
                        command: crate::command::parse("pause 5").expect("a console line"),
                        node: Some(5),
                        effect: "pause node 5 (follower)".into(),
                    },
                );
                let pid = self.pid(5, false);
                self.push(
                    t + 1,
                    Event::Process {
                        node: 5,
                        state: ProcessState::Paused { pid },
                    },
                );
            }
            for node in 1..=n {
                let at = t + node * 10;
                if node == 2 && t >= KILL_MS {
                    if (KILL_MS..RESTART_MS).contains(&t) {
                        continue;
                    }
                    let status = self.stale_status(at);
                    self.push(at, Event::Status { node, status });
                    if t > ISOLATE_MS && t % 3000 == 0 {
                        self.feed(
                            at,
                            2,
                            RaftEvent::ElectionStarted {
                                term: 2,
                                pre_vote: true,
                                round: 0,
                            },
                        );
                        self.feed(
                            at,
                            2,
                            RaftEvent::RoleChanged {
                                role: Role::PreCandidate,
                                term: 1,
                            },
                        );
                        self.feed(
                            at + 400,
                            2,
                            RaftEvent::RoleChanged {
                                role: Role::Follower,
                                term: 1,
                            },
                        );
                    }
                    continue;
                }
                if node == 5 && t > PAUSE_MS {
                    let error = "status deadline (300 ms) passed".to_string();
                    self.push(at, Event::Unreachable { node, error });
                    continue;
                }
                let status = self.status(node, at);
                self.push(at, Event::Status { node, status });
            }
            if t == 32_000 {
                self.push(
                    WORKLOAD_OFF_MS,
                    Event::Performed {
                        command: crate::command::parse("workload off").expect("a console line"),
                        node: None,
                        effect: String::new(),
                    },
                );
                ok += 10;
                self.push(
                    WORKLOAD_OFF_MS,
                    Event::Workload {
                        on: false,
                        rate: RATE as u32,
                        ok,
                        failed,
                        cas_failed: 0,
                    },
                );
            }
            if (5_000..32_000).contains(&t) {
                let gained = if (KILL_MS..SECOND_TERM_MS).contains(&t) {
                    0
                } else {
                    RATE
                };
                ok += gained;
                self.push(
                    t + 100,
                    Event::Workload {
                        on: true,
                        rate: RATE as u32,
                        ok,
                        failed,
                        cas_failed: 0,
                    },
                );
                for k in 0..2u64 {
                    let i = t / 500 + k;
                    let down = (KILL_MS..SECOND_TERM_MS).contains(&t);
                    self.push(
                        t + 200 + k * 500,
                        Event::ClientOp {
                            op: format!("put k{i}=v"),
                            result: if down { "timeout".into() } else { "ok".into() },
                            latency_us: if down { 500_000 } else { 900 + (i * 37) % 400 },
                        },
                    );
                }
            }
            if t % 2000 == 0 {
                let links = self.links(t + 300);
                self.push(t + 300, Event::Links { links });
            }
            t += 1000;
        }
        self.events.sort_by_key(|e| e.at_ms);
        self.events
    }
}

/// A node's status as the invariant and dashboard tests build it: node `id`, process `pid`, a follower in
/// `term` whose log ends at `last`, everything up to there committed and applied, no log tail, no Paxos view.
pub fn node_status(id: u64, pid: u32, term: u64, last: u64) -> NodeStatus {
    NodeStatus {
        cluster_id: "c".into(),
        pid,
        core: CoreStatus {
            id,
            role: Role::Follower,
            term,
            vote: None,
            leader: None,
            commit_index: last,
            last_log_index: last,
            last_log_term: term,
            snapshot_index: 0,
            progress: Vec::new(),
            config: Default::default(),
            config_index: 0,
            config_committed: true,
        },
        applied_index: last,
        applied_hash: 0,
        log_tail: Vec::new(),
        rpc: RpcCounters::default(),
        uptime_ms: 0,
        keys: 0,
        recovering: false,
        recovery_wait: None,
        first_log_index: 0,
        frozen: false,
        election_due_ms: None,
        recovered: None,
        paxos: None,
    }
}

/// A Paxos node's status as squall's node reports it (process `100 + id`, a follower): `promised` packed
/// where Raft shows a term, `chosen` (slot, command text) its chosen prefix, up to the last of them, shown as
/// its log tail (term 0), and `accepted` (slot, ballot, ascending) the ballots of the values it accepted
/// since slot 1 (so a slot up to its last that `accepted` leaves out is a gap). Its last slot is the highest
/// chosen or accepted.
pub fn paxos_status(
    id: u64,
    promised: Ballot,
    chosen: &[(u64, &str)],
    accepted: &[(u64, Ballot)],
) -> NodeStatus {
    let chosen_to = chosen.last().map_or(0, |c| c.0);
    let last = accepted.last().map_or(chosen_to, |a| a.0.max(chosen_to));
    let mut s = node_status(id, 100 + id as u32, promised.pack(), chosen_to);
    s.core.last_log_index = last;
    s.core.last_log_term = 0;
    s.first_log_index = 1;
    s.log_tail = chosen
        .iter()
        .map(|(slot, text)| LogCell {
            index: *slot,
            term: 0,
            text: text.to_string(),
        })
        .collect();
    s.paxos = Some(PaxosView {
        promised,
        leader_ballot: None,
        accepted: accepted.to_vec(),
        leases: true,
        accepted_from: 1,
        chosen_above: Vec::new(),
    });
    s
}

/// A three-node Multi-Paxos cluster after two changes of distinguished proposer: n1 led at ballot 1.1 and
/// was cut off with slots 41–45 accepted but never chosen; n3 led at 2.3 (slots 41–70); n2 leads at 3.2,
/// has slots 71–77 chosen, 79 chosen past the prefix, and 78 and 80 accepted, not chosen yet; n3 missed the
/// accept of slot 78 (a gap) and accepted 79.
pub fn paxos_state() -> ClusterState {
    let ballot = |round, proposer| Ballot { round, proposer };
    let by = |s: u64| match s {
        1..=40 => ballot(1, 1),
        41..=70 => ballot(2, 3),
        _ => ballot(3, 2),
    };
    let chosen = |to: u64| -> Vec<(u64, String)> {
        (to.saturating_sub(63).max(1)..=to)
            .map(|s| (s, format!("put k{s}=v")))
            .collect()
    };
    let status = |id, promised, chosen_to, accepted: Vec<(u64, Ballot)>| {
        let chosen = chosen(chosen_to);
        let chosen: Vec<(u64, &str)> = chosen.iter().map(|(s, t)| (*s, t.as_str())).collect();
        paxos_status(id, promised, &chosen, &accepted)
    };
    let n1 = status(
        1,
        ballot(1, 1),
        40,
        (1..=45).map(|s| (s, ballot(1, 1))).collect(),
    );
    let mut n2 = status(2, ballot(3, 2), 77, (1..=80).map(|s| (s, by(s))).collect());
    n2.core.role = Role::Leader;
    n2.core.leader = Some(2);
    if let Some(p) = n2.paxos.as_mut() {
        p.leader_ballot = Some(ballot(3, 2));
        p.chosen_above = vec![79];
    }
    let mut n3 = status(
        3,
        ballot(3, 2),
        77,
        (1..=79).filter(|&s| s != 78).map(|s| (s, by(s))).collect(),
    );
    n3.core.leader = Some(2);
    let mut s = ClusterState::new();
    s.apply(&Stamped::new(
        0,
        Event::SessionStarted {
            cluster_id: "paxos-5c1e".into(),
            nodes: vec![1, 2, 3],
            dir: "/tmp/squall-paxos".into(),
        },
    ));
    for (node, status) in [(1, n1), (2, n2), (3, n3)] {
        s.apply(&Stamped::new(
            10 * node,
            Event::Process {
                node,
                state: ProcessState::Running {
                    pid: 100 + node as u32,
                },
            },
        ));
        s.apply(&Stamped::new(1_000 + node, Event::Status { node, status }));
    }
    s
}
