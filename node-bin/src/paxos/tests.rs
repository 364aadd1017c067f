//! Unit tests of the Multi-Paxos core, per handler, on a small in-memory network whose driver follows the
//! `Ready` contract (persist, then send, then `on_persisted`).

use std::collections::{BTreeMap, VecDeque};

use super::*;

fn cfg(id: NodeId, n: u64, leases: bool) -> Config {
    Config {
        id,
        peers: (1..=n).filter(|&p| p != id).collect(),
        leases,
        lease_ticks_min: 10,
        lease_ticks_max: 20,
        heartbeat_ticks: 2,
        max_batch: 3,
        seed: id,
    }
}

fn cmd(b: u8) -> Payload {
    Payload::Command(vec![b])
}

/// What a node keeps on disk.
#[derive(Clone, Debug, Default)]
struct Disk {
    promised: Ballot,
    accepted: BTreeMap<Slot, Accepted>,
    snapshot: Option<(Slot, Vec<u8>)>,
}

/// Nodes 1..=n (index i is node i+1), their disks, what each applied, and messages in flight.
struct Net {
    nodes: Vec<Option<Paxos>>,
    disks: Vec<Disk>,
    applied: Vec<Vec<(Slot, Payload)>>,
    wire: VecDeque<(NodeId, NodeId, Message)>,
    leases: bool,
}

impl Net {
    fn new(n: u64, leases: bool) -> Net {
        Net {
            nodes: (1..=n)
                .map(|id| Some(Paxos::new(cfg(id, n, leases), Restored::default())))
                .collect(),
            disks: vec![Disk::default(); n as usize],
            applied: vec![Vec::new(); n as usize],
            wire: VecDeque::new(),
            leases,
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Paxos {
        self.nodes[id as usize - 1].as_mut().expect("node is up")
    }

    /// Follows the ready contract for one node.
    fn drain(&mut self, id: NodeId) {
        let Some(p) = self.nodes[id as usize - 1].as_mut() else {
            return;
        };
        while p.has_ready() {
            let rd = p.take_ready();
            let disk = &mut self.disks[id as usize - 1];
            if let Some((slot, data)) = &rd.snapshot {
                disk.snapshot = Some((*slot, data.clone()));
                disk.accepted.retain(|&s, _| s > *slot);
                self.applied[id as usize - 1].retain(|(s, _)| s > slot);
            }
            if let Some(b) = rd.promised {
                assert!(b >= disk.promised, "node {id}: promise went back");
                disk.promised = b;
            }
            for (s, a) in &rd.accepted {
                disk.accepted.insert(*s, a.clone());
            }
            for (to, m) in rd.messages {
                self.wire.push_back((id, to, m));
            }
            p.on_persisted();
            self.applied[id as usize - 1].extend(rd.chosen);
        }
    }

    fn drain_all(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.drain(id);
        }
    }

    /// Delivers messages (and what they cause) until none are left; `pass` decides which arrive.
    fn run(&mut self, pass: impl Fn(NodeId, NodeId, &Message) -> bool) {
        self.drain_all();
        let mut steps = 0;
        while let Some((from, to, m)) = self.wire.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "messages never stop");
            if !pass(from, to, &m) {
                continue;
            }
            if let Some(p) = self.nodes[to as usize - 1].as_mut() {
                p.step(from, m);
                self.drain(to);
            }
        }
    }

    /// `n` ticks of every node that is up, one tick at a time, delivering everything after each.
    fn tick_all(&mut self, n: u32) {
        for _ in 0..n {
            for p in self.nodes.iter_mut().flatten() {
                p.tick();
            }
            self.run(|_, _, _| true);
        }
    }

    /// The node that leads, if exactly one does.
    fn leader(&mut self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .flatten()
            .filter(|p| p.role() == PaxosRole::Leader)
            .map(|p| p.id())
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    fn tick(&mut self, id: NodeId, n: u32) {
        for _ in 0..n {
            if let Some(p) = self.nodes[id as usize - 1].as_mut() {
                p.tick();
            }
        }
        self.drain(id);
    }

    /// Node `id` runs phase 1 now and everything is delivered.
    fn elect(&mut self, id: NodeId) {
        self.node(id).start_prepare();
        self.run(|_, _, _| true);
        assert_eq!(self.node(id).role(), PaxosRole::Leader);
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes[id as usize - 1] = None;
        self.wire.retain(|(f, t, _)| *f != id && *t != id);
    }

    fn restart(&mut self, id: NodeId) {
        let n = self.nodes.len() as u64;
        let disk = self.disks[id as usize - 1].clone();
        self.applied[id as usize - 1] = Vec::new();
        let restored = Restored {
            promised: disk.promised,
            accepted: disk.accepted.into_iter().collect(),
            snapshot: disk.snapshot,
        };
        self.nodes[id as usize - 1] = Some(Paxos::new(cfg(id, n, self.leases), restored));
    }

    fn applied(&self, id: NodeId) -> Vec<Payload> {
        self.applied[id as usize - 1]
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[test]
fn a_leader_chooses_values_and_every_node_learns_them_in_order() {
    let mut net = Net::new(3, true);
    net.elect(1);
    for b in 1..=5 {
        net.node(1).propose(cmd(b)).expect("leader takes values");
    }
    net.run(|_, _, _| true);
    // The acceptors learn the chosen prefix from the next heartbeat.
    net.tick(1, 2);
    net.run(|_, _, _| true);
    let want: Vec<Payload> = (1..=5).map(cmd).collect();
    for id in 1..=3 {
        assert_eq!(net.applied(id), want, "node {id}");
        assert_eq!(net.node(id).leader(), Some(1));
    }
}

#[test]
fn a_follower_refuses_values_and_names_the_leader() {
    let mut net = Net::new(3, true);
    net.elect(1);
    assert_eq!(
        net.node(2).propose(cmd(1)),
        Err(NotLeader {
            leader_hint: Some(1)
        })
    );
}

#[test]
fn a_lost_lease_starts_phase_one_and_a_new_leader_takes_over() {
    let mut net = Net::new(3, true);
    net.elect(1);
    net.crash(1);
    // Lease timeouts are at most 20 ticks.
    net.tick_all(20);
    let l = net.leader().expect("one leader");
    assert!(net.node(l).promised().round > 1);
}

#[test]
fn an_acceptor_refuses_accepts_below_its_promise() {
    let mut net = Net::new(3, true);
    net.elect(1);
    let old = net.node(1).promised();
    // Node 3 promises a higher ballot (its lease of node 1 has run out).
    net.tick(3, 10);
    let high = Ballot {
        round: old.round + 1,
        proposer: 2,
    };
    net.node(3).step(
        2,
        Message::Prepare {
            ballot: high,
            from_slot: 1,
        },
    );
    net.drain(3);
    net.wire.clear();
    net.node(3).step(
        1,
        Message::Accept {
            ballot: old,
            chosen_to: 0,
            values: vec![(1, cmd(7))],
        },
    );
    net.drain(3);
    assert_eq!(net.node(3).accepted_at(1), None);
    let (_, to, m) = net.wire.pop_front().expect("an answer");
    assert_eq!(to, 1);
    assert_eq!(
        m,
        Message::Nack {
            ballot: old,
            promised: high,
            leader: None
        }
    );
}

#[test]
fn a_leader_that_learns_of_a_higher_ballot_prepares_again_above_it() {
    let mut net = Net::new(3, true);
    net.elect(1);
    let old = net.node(1).promised();
    net.node(1).step(
        3,
        Message::Nack {
            ballot: old,
            promised: Ballot {
                round: 9,
                proposer: 3,
            },
            leader: None,
        },
    );
    net.run(|_, _, _| true);
    assert_eq!(net.node(1).role(), PaxosRole::Leader);
    assert_eq!(net.node(1).promised().round, 10);
}

#[test]
fn an_acceptor_keeping_a_lease_refuses_another_proposer() {
    let mut net = Net::new(3, true);
    net.elect(1);
    net.node(2).step(
        3,
        Message::Prepare {
            ballot: Ballot {
                round: 5,
                proposer: 3,
            },
            from_slot: 1,
        },
    );
    net.drain(2);
    let (_, to, m) = net.wire.pop_back().expect("an answer");
    assert_eq!(to, 3);
    assert!(
        matches!(
            m,
            Message::Nack {
                leader: Some(1),
                ..
            }
        ),
        "{m:?}"
    );
    assert_eq!(net.node(2).promised().round, 1);
}

#[test]
fn a_proposer_that_crashes_between_phases_never_reuses_its_ballot() {
    let mut net = Net::new(3, true);
    net.node(1).start_prepare();
    let first = net.node(1).promised();
    // Its promise is durable before the prepare leaves; it crashes before any promise arrives.
    net.drain(1);
    assert_eq!(net.disks[0].promised, first);
    net.crash(1);
    net.restart(1);
    net.node(1).start_prepare();
    assert!(net.node(1).promised() > first);
    net.run(|_, _, _| true);
    assert_eq!(net.node(1).role(), PaxosRole::Leader);
}

#[test]
fn a_value_accepted_by_one_acceptor_before_its_proposer_crashed_is_recovered_not_replaced() {
    let mut net = Net::new(3, true);
    net.elect(1);
    net.node(1).propose(cmd(42)).unwrap();
    // Phase 2 reaches only node 2; node 1 crashes before it hears back.
    net.run(|from, to, m| !(from == 1 && to == 3 && m.kind() == "accept") && to != 1);
    assert_eq!(
        net.disks[1].accepted.get(&1).map(|a| a.value.clone()),
        Some(cmd(42))
    );
    net.crash(1);
    // Node 3 may take over: with node 2's promise it must propose 42 in slot 1 before its own value.
    net.tick_all(20);
    let l = net.leader().expect("one leader");
    net.node(l).propose(cmd(9)).unwrap();
    net.tick_all(4);
    assert_eq!(net.applied(2), vec![cmd(42), cmd(9)]);
    assert_eq!(net.applied(3), vec![cmd(42), cmd(9)]);
    // The crashed proposer comes back and learns the same history.
    net.restart(1);
    net.tick_all(4);
    assert_eq!(net.applied(1), vec![cmd(42), cmd(9)]);
}

#[test]
fn a_new_leader_fills_holes_with_no_ops() {
    let mut net = Net::new(3, true);
    net.elect(1);
    // Slots 1 and 2 reach nobody; slot 3 reaches node 2 only. Then node 1 is gone.
    net.node(1).propose(cmd(1)).unwrap();
    net.node(1).propose(cmd(2)).unwrap();
    net.run(|from, _, _| from != 1);
    net.node(1).propose(cmd(3)).unwrap();
    net.run(|from, to, _| from == 1 && to == 2);
    net.crash(1);
    net.tick_all(22);
    assert!(net.leader().is_some());
    // Slots 1 and 2 had values only on the crashed node: no-ops now. Slot 3 keeps its value.
    assert_eq!(net.applied(2), vec![Payload::Noop, Payload::Noop, cmd(3)]);
    assert_eq!(net.applied(3), net.applied(2));
}

#[test]
fn a_minority_acceptor_that_missed_slots_catches_up_from_the_leader() {
    let mut net = Net::new(3, true);
    net.elect(1);
    for b in 1..=7 {
        net.node(1).propose(cmd(b)).unwrap();
    }
    // Node 3 misses every accept; nodes 1 and 2 choose all seven.
    net.run(|_, to, _| to != 3);
    assert_eq!(net.node(1).chosen_to(), 7);
    assert!(net.applied(3).is_empty());
    // The next heartbeat tells node 3 the chosen prefix; it asks for the values (three per batch).
    net.tick(1, 2);
    net.run(|_, _, _| true);
    assert_eq!(net.applied(3), (1..=7).map(cmd).collect::<Vec<_>>());
}

#[test]
fn a_minority_acceptor_behind_a_snapshot_installs_it() {
    let mut net = Net::new(3, true);
    net.elect(1);
    for b in 1..=4 {
        net.node(1).propose(cmd(b)).unwrap();
    }
    net.run(|_, to, _| to != 3);
    net.node(1).compact(4, b"state at 4".to_vec());
    net.tick(1, 2);
    net.run(|_, _, _| true);
    assert_eq!(net.disks[2].snapshot, Some((4, b"state at 4".to_vec())));
    assert_eq!(net.node(3).chosen_to(), 4);
    net.node(1).propose(cmd(5)).unwrap();
    net.run(|_, _, _| true);
    net.tick(1, 2);
    net.run(|_, _, _| true);
    assert_eq!(net.applied(3), vec![cmd(5)]);
}

#[test]
fn a_proposer_behind_an_acceptors_snapshot_catches_up_before_it_leads() {
    let mut net = Net::new(3, true);
    net.elect(1);
    for b in 1..=4 {
        net.node(1).propose(cmd(b)).unwrap();
    }
    net.run(|_, to, _| to != 3);
    net.tick(1, 2);
    net.run(|_, to, _| to != 3);
    net.node(1).compact(4, b"s4".to_vec());
    net.node(2).compact(4, b"s4".to_vec());
    net.crash(1);
    // Node 3 knows nothing chosen; node 2 cannot report slots 1..4 and sends its snapshot instead. (Node 2's
    // lease runs out only after node 3's timeout, so node 3 prepares first.)
    net.node(3).tick();
    net.node(2).lease_elapsed = 10;
    net.node(3).start_prepare();
    net.run(|_, _, _| true);
    assert_eq!(net.node(3).role(), PaxosRole::Leader);
    assert_eq!(net.disks[2].snapshot, Some((4, b"s4".to_vec())));
    net.node(3).propose(cmd(5)).unwrap();
    net.run(|_, _, _| true);
    assert_eq!(net.node(3).chosen_to(), 5);
}

#[test]
fn a_leader_that_hears_no_majority_within_a_lease_steps_down() {
    let mut net = Net::new(3, true);
    net.elect(1);
    net.crash(2);
    net.crash(3);
    net.tick(1, 20);
    assert_eq!(net.node(1).role(), PaxosRole::Acceptor);
    assert_eq!(net.node(1).leader(), None);
}

#[test]
fn without_leases_any_node_takes_values_and_a_preempted_proposer_retries_at_once() {
    let mut net = Net::new(3, false);
    assert_eq!(net.node(2).propose(cmd(1)), Ok(None));
    assert_eq!(net.node(2).role(), PaxosRole::Preparing);
    let first = net.node(2).promised();
    net.node(2).step(
        3,
        Message::Nack {
            ballot: first,
            promised: Ballot {
                round: 4,
                proposer: 3,
            },
            leader: None,
        },
    );
    assert_eq!(net.node(2).role(), PaxosRole::Preparing);
    assert_eq!(net.node(2).promised().round, 5);
    net.run(|_, _, _| true);
    assert_eq!(net.node(2).role(), PaxosRole::Leader);
    net.tick(2, 2);
    net.run(|_, _, _| true);
    assert_eq!(net.applied(1), vec![cmd(1)]);
}

#[test]
fn without_leases_two_proposers_can_preempt_each_other_forever() {
    // Paxos Made Simple §2.4: each proposer's prepare lands between the other's phase 1 and phase 2.
    let mut net = Net::new(3, false);
    net.node(1).propose(cmd(1)).unwrap();
    net.node(3).propose(cmd(3)).unwrap();
    net.drain_all();
    for _ in 0..50 {
        // Deliver in waves: everything in flight now, then what that caused.
        let wave: Vec<_> = net.wire.drain(..).collect();
        for (from, to, m) in wave {
            if let Some(p) = net.nodes[to as usize - 1].as_mut() {
                p.step(from, m);
            }
        }
        net.drain_all();
    }
    let chosen: Vec<Slot> = (1..=3).map(|id| net.node(id).chosen_to()).collect();
    assert_eq!(chosen, vec![0, 0, 0], "nothing is ever chosen");
    assert!(net.node(1).promised().round > 20);
}

#[test]
fn ballots_pack_into_one_number_in_the_same_order() {
    let a = Ballot {
        round: 7,
        proposer: 65535,
    };
    let b = Ballot {
        round: 8,
        proposer: 1,
    };
    assert!(a.pack() < b.pack());
    assert_eq!(Ballot::unpack(a.pack()), a);
    assert_eq!(a.to_string(), "7.65535");
    assert_eq!(
        cfg(70000, 3, true).validate(),
        Err(ConfigError::IdTooLarge(70000))
    );
}

#[test]
fn slots_chosen_past_a_hole_in_the_prefix_are_listed_for_status() {
    // A leader learns slots 3 and 5 chosen before 1 and 2 (acceptors answered out of order): the prefix
    // stays at 0, and status lists 3 and 5 so the dashboard marks them chosen.
    let mut p = Paxos::new(cfg(1, 3, true), Restored::default());
    p.learn(3, cmd(3));
    p.learn(5, cmd(5));
    assert_eq!(p.chosen_to(), 0);
    assert_eq!(p.chosen_above(64), vec![3, 5]);
    assert_eq!(p.chosen_above(1), vec![3]);
    p.learn(1, cmd(1));
    p.learn(2, cmd(2));
    assert_eq!(p.chosen_to(), 3);
    assert_eq!(p.chosen_above(64), vec![5]);
}
