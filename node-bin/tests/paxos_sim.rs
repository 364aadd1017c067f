//! Seeded simulation of 3–7 Multi-Paxos cores in memory, through the public API only, under message loss,
//! delay, reordering, duplication, partitions (symmetric and one-way), crashes (also between taking a ready and
//! persisting it, and between persisting and sending) and restarts from what was durable, with compaction and
//! catch-up by snapshot. A quarter of the seeds run with leases off (dueling proposers).
//!
//! The checks judge what the acceptors made *durable*, after every write and every apply:
//! - no acceptor accepts below its promise, and a promise never goes back;
//! - one ballot carries at most one value per slot;
//! - at most one value is chosen per slot (a value accepted by a majority at one ballot), across all nodes
//!   and all time, so a chosen value never changes;
//! - every node applies exactly the chosen values, slot after slot, and a snapshot holds exactly them.
//!
//! With leases on, liveness too: after the faults heal, a new value is chosen and every node applies the same
//! prefix. (With leases off progress is not promised, which is the point of the switch.)
//!
//! Each run takes [`DEFAULT_SEEDS`] seeds from a base that changes per run (printed). `SQUALL_SIM_SEED=N`
//! replays one seed (or several, separated by commas), `SQUALL_SIM_BASE=B` and `SQUALL_SIM_SEEDS=N` choose the
//! range B..B+N: the same variables as the Raft simulation's, read by the same driver (`seeds/mod.rs`).

mod seeds;

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use squall_node::paxos::{
    Accepted, Ballot, Config, Message, NodeId, Paxos, PaxosRole, Payload, Restored, Slot,
};

/// Seeds per run unless `SQUALL_SIM_SEEDS` says otherwise.
const DEFAULT_SEEDS: u64 = 400;
/// Ticks of faults per seed.
const FAULT_TICKS: u64 = 400;
/// After healing, a new value must be chosen and every node converge within this many ticks (lease timeouts are
/// 10–20 ticks).
const LIVENESS_TICKS: u64 = 300;

/// An acceptor's durable state: what survives a crash.
#[derive(Clone, Debug, Default)]
struct Disk {
    promised: Ballot,
    accepted: BTreeMap<Slot, Accepted>,
    snapshot: Option<(Slot, Vec<u8>)>,
}

/// One simulated process.
struct Node {
    core: Option<Paxos>,
    disk: Disk,
    /// The state machine: the values applied, slot 1 first.
    applied: Vec<Payload>,
    /// Ticks until it restarts, while down.
    down_for: u64,
}

/// A message on the wire.
struct Flight {
    at: u64,
    from: NodeId,
    to: NodeId,
    msg: Message,
}

/// The fault mix of one seed.
#[derive(Clone, Debug)]
struct Faults {
    loss: f64,
    dup: f64,
    max_delay: u64,
    crash: f64,
    mid_ready_crash: f64,
    partition: f64,
    compact: f64,
}

impl Faults {
    fn random(rng: &mut ChaCha8Rng) -> Faults {
        Faults {
            loss: [0.0, 0.02, 0.1, 0.3][rng.random_range(0..4)],
            dup: [0.0, 0.05][rng.random_range(0..2)],
            max_delay: [1, 3, 8][rng.random_range(0..3)],
            crash: [0.0, 0.003, 0.01][rng.random_range(0..3)],
            mid_ready_crash: [0.0, 0.02][rng.random_range(0..2)],
            partition: [0.0, 0.01, 0.03][rng.random_range(0..3)],
            compact: [0.0, 0.05][rng.random_range(0..2)],
        }
    }
}

/// What the acceptors made durable, over all time, and what follows from it.
#[derive(Default)]
struct Checker {
    quorum: usize,
    /// (slot, ballot) -> the value accepted there and by whom.
    votes: BTreeMap<(Slot, Ballot), (Payload, BTreeSet<NodeId>)>,
    /// The chosen value per slot, and the ballot it was first chosen at.
    chosen: BTreeMap<Slot, (Payload, Ballot)>,
}

impl Checker {
    /// Node `id` made `promised` and `accepted` durable in one write, over the durable promise `before`.
    fn on_write(
        &mut self,
        id: NodeId,
        before: Ballot,
        promised: Option<Ballot>,
        accepted: &[(Slot, Accepted)],
    ) -> Result<(), String> {
        if let Some(p) = promised
            && p < before
        {
            return Err(format!("node {id}: promise went back from {before} to {p}"));
        }
        for (slot, a) in accepted {
            if a.ballot < before {
                return Err(format!(
                    "node {id} accepted at slot {slot} with ballot {} below its promise {before}",
                    a.ballot
                ));
            }
            let (value, by) = self
                .votes
                .entry((*slot, a.ballot))
                .or_insert_with(|| (a.value.clone(), BTreeSet::new()));
            if *value != a.value {
                return Err(format!(
                    "ballot {} carries two values at slot {slot}: {value:?} and {:?}",
                    a.ballot, a.value
                ));
            }
            by.insert(id);
            if by.len() >= self.quorum {
                match self.chosen.get(slot) {
                    Some((v, b)) if *v != a.value => {
                        return Err(format!(
                            "two values chosen at slot {slot}: {v:?} at ballot {b}, then {:?} at ballot {} \
                             (accepted by {by:?})",
                            a.value, a.ballot
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.chosen.insert(*slot, (a.value.clone(), a.ballot));
                    }
                }
            }
        }
        Ok(())
    }

    /// Node `id` applies `value` at `slot`.
    fn on_apply(&self, id: NodeId, slot: Slot, value: &Payload) -> Result<(), String> {
        match self.chosen.get(&slot) {
            Some((v, _)) if v == value => Ok(()),
            Some((v, b)) => Err(format!(
                "node {id} applied {value:?} at slot {slot}, but {v:?} was chosen there (ballot {b})"
            )),
            None => Err(format!(
                "node {id} applied {value:?} at slot {slot}, which no majority durably accepted"
            )),
        }
    }
}

struct Sim {
    rng: ChaCha8Rng,
    now: u64,
    leases: bool,
    faults: Faults,
    nodes: Vec<Node>,
    wire: Vec<Flight>,
    /// Directed links cut: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Ticks until the partition heals.
    partition_for: u64,
    checker: Checker,
    next_value: u64,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    proposed: u64,
    chosen: u64,
    crashes: u64,
    mid_ready_crashes: u64,
    partitions: u64,
    snapshots: u64,
    leaders: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.proposed += o.proposed;
        self.chosen += o.chosen;
        self.crashes += o.crashes;
        self.mid_ready_crashes += o.mid_ready_crashes;
        self.partitions += o.partitions;
        self.snapshots += o.snapshots;
        self.leaders += o.leaders;
    }
}

fn config(id: NodeId, n: u64, leases: bool, seed: u64) -> Config {
    Config {
        id,
        peers: (1..=n).filter(|&p| p != id).collect(),
        leases,
        lease_ticks_min: 10,
        lease_ticks_max: 20,
        heartbeat_ticks: 2,
        max_batch: 4,
        seed: seed.wrapping_mul(31).wrapping_add(id),
    }
}

impl Sim {
    fn new(seed: u64, n: u64, leases: bool, faults: Faults) -> Sim {
        Sim {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x9a05),
            now: 0,
            leases,
            faults,
            nodes: (1..=n)
                .map(|id| Node {
                    core: Some(Paxos::new(config(id, n, leases, seed), Restored::default())),
                    disk: Disk::default(),
                    applied: Vec::new(),
                    down_for: 0,
                })
                .collect(),
            wire: Vec::new(),
            cut: BTreeSet::new(),
            partition_for: 0,
            checker: Checker {
                quorum: n as usize / 2 + 1,
                ..Checker::default()
            },
            next_value: 1,
            stats: Stats::default(),
        }
    }

    fn n(&self) -> u64 {
        self.nodes.len() as u64
    }

    fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[id as usize - 1];
        node.core = None;
        node.down_for = self.rng.random_range(5..60);
        self.stats.crashes += 1;
    }

    fn restart(&mut self, id: NodeId, seed: u64) {
        let n = self.n();
        let node = &mut self.nodes[id as usize - 1];
        let restored = Restored {
            promised: node.disk.promised,
            accepted: node
                .disk
                .accepted
                .iter()
                .map(|(&s, a)| (s, a.clone()))
                .collect(),
            snapshot: node.disk.snapshot.clone(),
        };
        node.applied = match &node.disk.snapshot {
            Some((_, data)) => bincode::deserialize(data).expect("snapshot decodes"),
            None => Vec::new(),
        };
        node.core = Some(Paxos::new(
            config(id, n, self.leases, seed.wrapping_add(self.now)),
            restored,
        ));
    }

    /// Follows the ready contract for node `id`, with crashes between its steps.
    fn drain(&mut self, id: NodeId, faults: bool) -> Result<(), String> {
        let i = id as usize - 1;
        loop {
            let Some(core) = self.nodes[i].core.as_mut() else {
                return Ok(());
            };
            if !core.has_ready() {
                return Ok(());
            }
            let rd = core.take_ready();
            if faults && self.rng.random_bool(self.faults.mid_ready_crash) {
                // Crash before anything of the ready was written.
                self.stats.mid_ready_crashes += 1;
                self.crash(id);
                return Ok(());
            }
            let node = &mut self.nodes[i];
            if let Some((slot, data)) = &rd.snapshot {
                let sm: Vec<Payload> = bincode::deserialize(data).expect("snapshot decodes");
                if sm.len() as u64 != *slot {
                    return Err(format!(
                        "node {id}: snapshot at slot {slot} holds {} values",
                        sm.len()
                    ));
                }
                for (i, v) in sm.iter().enumerate() {
                    self.checker.on_apply(id, i as Slot + 1, v)?;
                }
                node.disk.snapshot = Some((*slot, data.clone()));
                node.disk.accepted.retain(|&s, _| s > *slot);
                node.applied = sm;
                self.stats.snapshots += 1;
            }
            let base = node.disk.snapshot.as_ref().map_or(0, |s| s.0);
            let accepted: Vec<(Slot, Accepted)> =
                rd.accepted.into_iter().filter(|(s, _)| *s > base).collect();
            self.checker
                .on_write(id, node.disk.promised, rd.promised, &accepted)?;
            if let Some(p) = rd.promised {
                node.disk.promised = p;
            }
            for (s, a) in accepted {
                node.disk.accepted.insert(s, a);
            }
            if faults && self.rng.random_bool(self.faults.mid_ready_crash) {
                // Crash after the write, before sending what depends on it.
                self.stats.mid_ready_crashes += 1;
                self.crash(id);
                return Ok(());
            }
            for (to, msg) in rd.messages {
                self.send(id, to, msg, faults);
            }
            let node = &mut self.nodes[i];
            let core = node.core.as_mut().expect("up");
            core.on_persisted();
            for (slot, value) in rd.chosen {
                if slot != node.applied.len() as Slot + 1 {
                    return Err(format!(
                        "node {id} applied slot {slot} after slot {}",
                        node.applied.len()
                    ));
                }
                self.checker.on_apply(id, slot, &value)?;
                node.applied.push(value);
            }
            if faults
                && self.rng.random_bool(self.faults.compact)
                && node.applied.len() as Slot > core.snapshot_slot()
            {
                let slot = node.applied.len() as Slot;
                let data = bincode::serialize(&node.applied).expect("encodes");
                core.compact(slot, data.clone());
                node.disk.snapshot = Some((slot, data));
                node.disk.accepted.retain(|&s, _| s > slot);
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message, faults: bool) {
        let copies = if faults && self.rng.random_bool(self.faults.dup) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if faults && self.rng.random_bool(self.faults.loss) {
                continue;
            }
            let delay = self.rng.random_range(1..=self.faults.max_delay);
            self.wire.push(Flight {
                at: self.now + delay,
                from,
                to,
                msg: msg.clone(),
            });
        }
    }

    /// One tick: faults, a client value now and then, every node's tick, and the messages due.
    fn tick(&mut self, faults: bool, seed: u64) -> Result<(), String> {
        self.now += 1;
        let n = self.n();
        for id in 1..=n {
            let node = &mut self.nodes[id as usize - 1];
            if node.core.is_none() {
                node.down_for = node.down_for.saturating_sub(1);
                if node.down_for == 0 {
                    self.restart(id, seed);
                }
            }
        }
        if faults {
            if self.rng.random_bool(self.faults.crash) {
                let id = self.rng.random_range(1..=n);
                if self.nodes[id as usize - 1].core.is_some() {
                    self.crash(id);
                }
            }
            if self.partition_for > 0 {
                self.partition_for -= 1;
                if self.partition_for == 0 {
                    self.cut.clear();
                }
            } else if self.rng.random_bool(self.faults.partition) {
                self.partition();
            }
        }
        if self.rng.random_bool(0.3) {
            self.client_value(faults)?;
        }
        for id in 1..=n {
            if let Some(core) = self.nodes[id as usize - 1].core.as_mut() {
                let was = core.role();
                core.tick();
                if was != PaxosRole::Leader && core.role() == PaxosRole::Leader {
                    self.stats.leaders += 1;
                }
            }
            self.drain(id, faults)?;
        }
        let now = self.now;
        let mut due: Vec<Flight> = Vec::new();
        let mut i = 0;
        while i < self.wire.len() {
            if self.wire[i].at <= now {
                due.push(self.wire.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.shuffle(&mut self.rng);
        for f in due {
            if self.cut.contains(&(f.from, f.to)) {
                continue;
            }
            let Some(core) = self.nodes[f.to as usize - 1].core.as_mut() else {
                continue;
            };
            let was = core.role();
            core.step(f.from, f.msg);
            if was != PaxosRole::Leader && core.role() == PaxosRole::Leader {
                self.stats.leaders += 1;
            }
            self.drain(f.to, faults)?;
        }
        Ok(())
    }

    /// A random partition: two groups (sometimes cut one way only), or one node isolated.
    fn partition(&mut self) {
        let n = self.n();
        let mut ids: Vec<NodeId> = (1..=n).collect();
        ids.shuffle(&mut self.rng);
        let k = self.rng.random_range(1..=(n as usize / 2));
        let (a, b) = ids.split_at(k);
        let one_way = self.rng.random_bool(0.25);
        self.cut.clear();
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                if !one_way {
                    self.cut.insert((y, x));
                }
            }
        }
        self.partition_for = self.rng.random_range(10..80);
        self.stats.partitions += 1;
    }

    /// A client offers a new value: to the leader a random node names (leases on), or to any node.
    fn client_value(&mut self, faults: bool) -> Result<(), String> {
        let n = self.n();
        let mut id = self.rng.random_range(1..=n);
        let value = Payload::Command(self.next_value.to_le_bytes().to_vec());
        self.next_value += 1;
        for _ in 0..2 {
            let Some(core) = self.nodes[id as usize - 1].core.as_mut() else {
                return Ok(());
            };
            match core.propose(value.clone()) {
                Ok(_) => {
                    self.stats.proposed += 1;
                    return self.drain(id, faults);
                }
                Err(e) => match e.leader_hint {
                    Some(l) => id = l,
                    None => return Ok(()),
                },
            }
        }
        Ok(())
    }

    fn heal(&mut self, seed: u64) {
        self.cut.clear();
        self.partition_for = 0;
        for id in 1..=self.n() {
            if self.nodes[id as usize - 1].core.is_none() {
                self.restart(id, seed);
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .filter(|c| c.role() == PaxosRole::Leader)
            .map(|c| c.id())
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    fn describe(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| match &n.core {
                Some(c) => {
                    let s = c.status();
                    format!(
                        "  node {}: {} promised {} leader {:?} chosen_to {} applied {} snapshot {} last accepted {}",
                        i + 1,
                        s.role.name(),
                        s.promised,
                        s.leader,
                        s.chosen_to,
                        s.applied,
                        s.snapshot_slot,
                        s.last_accepted
                    )
                }
                None => format!("  node {}: down", i + 1),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn run_seed(seed: u64) -> Result<Stats, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = [3, 3, 3, 4, 5, 5, 6, 7][rng.random_range(0..8)];
    let leases = rng.random_bool(0.75);
    let faults = Faults::random(&mut rng);
    let mut sim = Sim::new(seed, n, leases, faults.clone());
    let result = (|| {
        for _ in 0..FAULT_TICKS {
            sim.tick(true, seed)?;
        }
        sim.heal(seed);
        if !leases {
            // Safety only: without leases progress is not promised. Let what is in flight settle.
            for _ in 0..LIVENESS_TICKS / 4 {
                sim.tick(false, seed)?;
            }
            return Ok(());
        }
        // Liveness: a value offered after healing is chosen, and every node applies the same prefix.
        let mut ticks = 0;
        let target = loop {
            if ticks == LIVENESS_TICKS {
                return Err(format!(
                    "liveness: no leader took a new value within {LIVENESS_TICKS} ticks after healing"
                ));
            }
            if let Some(l) = sim.leader() {
                let value = Payload::Command(u64::MAX.to_le_bytes().to_vec());
                let core = sim.nodes[l as usize - 1].core.as_mut().expect("up");
                if let Ok(Some(slot)) = core.propose(value.clone()) {
                    sim.drain(l, false)?;
                    break (slot, value);
                }
            }
            sim.tick(false, seed)?;
            ticks += 1;
        };
        loop {
            let done = sim.nodes.iter().all(|node| {
                node.applied.len() as Slot >= target.0
                    && node.applied.len() == sim.nodes[0].applied.len()
            });
            if done {
                break;
            }
            if ticks == LIVENESS_TICKS {
                let (slot, value) = &target;
                let chosen = sim.checker.chosen.get(slot).map(|c| c.0.clone());
                return Err(format!(
                    "liveness: nodes did not all apply through slot {slot} within {LIVENESS_TICKS} ticks after \
                     healing (the value offered there was {value:?}, chosen there: {chosen:?})"
                ));
            }
            sim.tick(false, seed)?;
            ticks += 1;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            let mut st = std::mem::take(&mut sim.stats);
            st.chosen = sim.checker.chosen.len() as u64;
            Ok(st)
        }
        Err(e) => Err(format!(
            "{e}\n  at tick {}; {n} nodes, leases {leases}, {faults:?}\n{}",
            sim.now,
            sim.describe()
        )),
    }
}

#[test]
fn paxos_safety_and_liveness_under_random_faults() {
    let seeds = seeds::seeds_of_run(DEFAULT_SEEDS);
    println!(
        "paxos simulation: {} seeds from {} (replay one with SQUALL_SIM_SEED=N)",
        seeds.len(),
        seeds.first().copied().unwrap_or(0)
    );
    let (passed, failures) = seeds::run_seeds(&seeds, run_seed);
    let mut total = Stats::default();
    for st in &passed {
        total.add(st);
    }
    println!(
        "paxos simulation: {} of {} seeds passed; {} values offered, {} slots chosen, {} leaders, {} crashes \
         ({} mid-ready), {} partitions, {} snapshots installed",
        seeds.len() - failures.len(),
        seeds.len(),
        total.proposed,
        total.chosen,
        total.leaders,
        total.crashes,
        total.mid_ready_crashes,
        total.partitions,
        total.snapshots
    );
    seeds::fail_on(&failures, "paxos_sim");
}
