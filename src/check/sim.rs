//! A seeded simulator of clients using a key-value register: histories for the benchmark and the tests.
//!
//! Each step advances time a little and lets one client act: invoke a new operation, reach the operation's
//! linearization point (where it reads or changes the register), or complete it. The register is correct
//! unless `stale_reads` is set, in which case that share of reads returns a value two writes old.

use std::collections::HashMap;

use super::history::{OpEvent, OpType, OpValue};

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct SimSpec {
    /// Operations to invoke.
    pub ops: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Keys.
    pub keys: usize,
    /// Share of operations whose outcome is reported `info` (half of them take effect).
    pub info: f64,
    /// Share of reads that return a stale value (0 for a correct register).
    pub stale_reads: f64,
    /// Seed.
    pub seed: u64,
}

/// A small deterministic generator (splitmix64), so a seed gives the same history everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)) < p
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Idle,
    Invoked,
    Applied(OpType, OpValue),
}

struct Client {
    process: u64,
    key: i64,
    value: OpValue,
    phase: Phase,
}

/// Simulates `spec` and returns the history's events.
pub fn simulate(spec: SimSpec) -> Vec<OpEvent> {
    let mut rng = Rng::new(spec.seed);
    let clients = spec.clients.max(1);
    let keys = spec.keys.max(1) as i64;
    let mut register: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut next_value: HashMap<i64, i64> = HashMap::new();
    let mut next_process = clients as u64;
    let mut cs: Vec<Client> = (0..clients)
        .map(|p| Client {
            process: p as u64,
            key: 0,
            value: OpValue::Read(None),
            phase: Phase::Idle,
        })
        .collect();
    let mut events = Vec::with_capacity(spec.ops * 2);
    let mut time = 0u64;
    let mut invoked = 0usize;
    let push = |events: &mut Vec<OpEvent>, kind, process, time, key, value| {
        let index = events.len() as u64;
        events.push(OpEvent {
            index,
            kind,
            process,
            time,
            key,
            value,
        });
    };
    loop {
        let busy = cs.iter().any(|c| !matches!(c.phase, Phase::Idle));
        if invoked >= spec.ops && !busy {
            break;
        }
        time += 1 + rng.below(2_000);
        let c = &mut cs[rng.below(clients as u64) as usize];
        match c.phase {
            Phase::Idle => {
                if invoked >= spec.ops {
                    continue;
                }
                invoked += 1;
                c.key = rng.below(keys as u64) as i64;
                let versions = register.entry(c.key).or_default();
                c.value = match rng.below(4) {
                    0 | 1 => OpValue::Read(None),
                    2 => {
                        let n = next_value.entry(c.key).or_insert(0);
                        *n += 1;
                        OpValue::Write(*n)
                    }
                    _ => {
                        // Mostly against the current value, so that many succeed.
                        let from = match versions.last() {
                            Some(&v) if rng.chance(0.7) => v,
                            _ => rng.below(3) as i64,
                        };
                        let n = next_value.entry(c.key).or_insert(0);
                        *n += 1;
                        OpValue::Cas(from, *n)
                    }
                };
                push(&mut events, OpType::Invoke, c.process, time, c.key, c.value);
                c.phase = Phase::Invoked;
            }
            Phase::Invoked => {
                let versions = register.entry(c.key).or_default();
                let current = versions.last().copied();
                let info = rng.chance(spec.info);
                let takes_effect = !info || rng.chance(0.5);
                let (kind, value) = match c.value {
                    OpValue::Read(_) => {
                        let v = if versions.len() >= 3 && rng.chance(spec.stale_reads) {
                            Some(versions[versions.len() - 3])
                        } else {
                            current
                        };
                        (OpType::Ok, OpValue::Read(v))
                    }
                    OpValue::Write(v) => {
                        if takes_effect {
                            versions.push(v);
                        }
                        (OpType::Ok, c.value)
                    }
                    OpValue::Cas(from, to) => {
                        if current == Some(from) {
                            if takes_effect {
                                versions.push(to);
                            }
                            (OpType::Ok, c.value)
                        } else {
                            (OpType::Fail, c.value)
                        }
                    }
                };
                let kind = if info { OpType::Info } else { kind };
                c.phase = Phase::Applied(kind, value);
            }
            Phase::Applied(kind, value) => {
                let value = match (kind, value) {
                    (OpType::Info, OpValue::Read(_)) => OpValue::Read(None),
                    _ => value,
                };
                push(&mut events, kind, c.process, time, c.key, value);
                if kind == OpType::Info {
                    c.process = next_process;
                    next_process += 1;
                }
                c.phase = Phase::Idle;
            }
        }
    }
    events
}
