//! Linearizability of a key-value history, checked key by key.
//!
//! The search is Wing & Gong's, with Lowe's memoisation ("Testing for linearizability", G. Lowe, 2017): the
//! history's invocation and completion events form a doubly linked list in time order; the search walks it
//! from the front, tentatively linearizing an operation whose invocation it meets (removing the operation's
//! events from the list, "lifting" it) when the register model accepts it, and backtracking to the last choice
//! when it meets a completion whose operation is not yet linearized. A configuration already explored (the set
//! of linearized operations as a bitset, and the model state) is never explored again. Keys are independent
//! registers, so each key's sub-history is checked on its own (Horn & Kroening's P-compositionality), which is
//! what makes long histories tractable.
//!
//! `fail` operations never happened and are left out. `info` operations (and invocations never completed)
//! have no completion event: the search may linearize them at any point after their invocation, or never;
//! it succeeds once every `ok` operation is linearized. An `info` read constrains nothing and is left out.
//!
//! On an invalid key the search reports where it got furthest: the model state there, the operation whose
//! completion it could not pass, and the operations still pending at that point; that window is then shrunk
//! greedily to a subset that still cannot be linearized from that state.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use super::history::{OpValue, Operation, Outcome};

/// The verdict of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some total order of the operations respects real time and the register's semantics.
    Valid,
    /// No such order exists; one key's failing window shows why.
    Invalid(Box<Failure>),
    /// The search was stopped at its deadline before it could decide; the reason says which key.
    Unknown(String),
}

impl Verdict {
    /// `valid`, `invalid` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::Unknown(_) => "unknown",
        }
    }
}

/// Where a key's history cannot be linearized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The key.
    pub key: i64,
    /// The model state before the window (`None`: the key absent), as the furthest partial linearization
    /// left it.
    pub state_before: Option<i64>,
    /// The operations that cannot be linearized from that state, in invocation order.
    pub window: Vec<Operation>,
    /// Position in `window` of the operation whose completion the search could not get past.
    pub culprit: usize,
    /// Operations of this key linearized before the window.
    pub linearized_before: usize,
}

/// How a check went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Operations in the history (every invocation), including `fail` ones.
    pub operations: usize,
    /// Keys in the history.
    pub keys: usize,
    /// Configurations the search explored (a measure of its work).
    pub explored: u64,
}

/// One operation as the search sees it.
#[derive(Clone, Copy, Debug)]
struct SOp {
    call: u64,
    /// `None`: the outcome is unknown; the operation may be linearized after `call`, or never.
    ret: Option<u64>,
    value: OpValue,
    /// Position in the caller's operation list.
    origin: usize,
}

/// The register model: the state after applying `value` to `state`, or `None` when it cannot apply there.
fn step(state: Option<i64>, value: OpValue) -> Option<Option<i64>> {
    match value {
        OpValue::Read(v) => (state == v).then_some(state),
        OpValue::Write(v) => Some(Some(v)),
        OpValue::Cas(from, to) => (state == Some(from)).then_some(Some(to)),
    }
}

/// Checks `ops` (as [`super::history::pair`] returns them). Past `deadline` the verdict is
/// [`Verdict::Unknown`]; the search looks at the clock every few thousand steps, so it stops within
/// milliseconds of the deadline.
pub fn check(ops: &[Operation], deadline: Option<Instant>) -> Report {
    let mut by_key: BTreeMap<i64, Vec<SOp>> = BTreeMap::new();
    for (origin, op) in ops.iter().enumerate() {
        by_key.entry(op.key).or_default();
        let ret = match op.outcome {
            Outcome::Fail => continue,
            Outcome::Ok => Some(op.complete_time.unwrap_or(u64::MAX)),
            Outcome::Info if matches!(op.value, OpValue::Read(_)) => continue,
            Outcome::Info => None,
        };
        by_key.get_mut(&op.key).expect("key").push(SOp {
            call: op.invoke_time,
            ret,
            value: op.value,
            origin,
        });
    }
    let keys = by_key.len();
    let mut explored = 0u64;
    let mut unknown = None;
    for (key, sops) in &by_key {
        let mut search = Search::new(sops, None);
        match search.run(deadline) {
            Found::Linearizable => {}
            Found::Stopped => {
                explored += search.explored;
                unknown.get_or_insert(format!(
                    "the deadline passed while checking key {key} ({} operations)",
                    sops.len()
                ));
                continue;
            }
            Found::NotLinearizable => {
                explored += search.explored;
                let failure = search.failure(*key, ops, sops, deadline);
                return Report {
                    verdict: Verdict::Invalid(Box::new(failure)),
                    operations: ops.len(),
                    keys,
                    explored,
                };
            }
        }
        explored += search.explored;
    }
    Report {
        verdict: match unknown {
            Some(why) => Verdict::Unknown(why),
            None => Verdict::Valid,
        },
        operations: ops.len(),
        keys,
        explored,
    }
}

enum Found {
    Linearizable,
    NotLinearizable,
    Stopped,
}

const NIL: usize = usize::MAX;

/// The furthest the search got before an invalid verdict.
struct Deepest {
    depth: usize,
    state: Option<i64>,
    culprit: usize,
    pending: Vec<usize>,
}

/// A fast hasher for keys that are already well-mixed `u64`s.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// splitmix64: the per-operation random words of the incremental (Zobrist) hash of the linearized set.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Explored configurations, keyed by (hash of the linearized set, state).
type Cache = HashMap<(u64, Option<i64>), Vec<Box<[u64]>>, BuildHasherDefault<MixHasher>>;

/// The search over one key's operations.
struct Search<'a> {
    ops: &'a [SOp],
    /// Entry `e`: operation `e / 2`, its invocation when `e` is even, its completion when odd.
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The list head (a sentinel entry).
    head: usize,
    init: Option<i64>,
    zobrist: Vec<u64>,
    /// Explored configurations: (hash of the linearized set, state) → the sets with that hash (trimmed of
    /// trailing zero words).
    cache: Cache,
    explored: u64,
    deepest: Option<Deepest>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [SOp], init: Option<i64>) -> Self {
        let n = ops.len();
        // Events in time order; on a tie an invocation comes first (the two operations overlap).
        let mut entries: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * n);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.call, 0, 2 * i));
            if let Some(r) = op.ret {
                entries.push((r, 1, 2 * i + 1));
            }
        }
        entries.sort_unstable();
        let head = 2 * n;
        let mut next = vec![NIL; 2 * n + 1];
        let mut prev = vec![NIL; 2 * n + 1];
        let mut last = head;
        for &(_, _, e) in &entries {
            next[last] = e;
            prev[e] = last;
            last = e;
        }
        Search {
            ops,
            next,
            prev,
            head,
            init,
            zobrist: (0..n as u64).map(mix).collect(),
            cache: HashMap::default(),
            explored: 0,
            deepest: None,
        }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(2 * op);
        if self.ops[op].ret.is_some() {
            self.unlink(2 * op + 1);
        }
    }

    fn unlift(&mut self, op: usize) {
        if self.ops[op].ret.is_some() {
            self.relink(2 * op + 1);
        }
        self.relink(2 * op);
    }

    /// Records (bits, state) as explored; false when it was already.
    fn remember(&mut self, hash: u64, state: Option<i64>, bits: &[u64]) -> bool {
        let mut len = bits.len();
        while len > 0 && bits[len - 1] == 0 {
            len -= 1;
        }
        let trimmed = &bits[..len];
        let bucket = self.cache.entry((hash, state)).or_default();
        if bucket.iter().any(|b| &b[..] == trimmed) {
            return false;
        }
        bucket.push(trimmed.into());
        true
    }

    fn run(&mut self, deadline: Option<Instant>) -> Found {
        let n = self.ops.len();
        let mut bits = vec![0u64; n.div_ceil(64)];
        let mut hash = 0u64;
        let mut state = self.init;
        let mut stack: Vec<(usize, Option<i64>)> = Vec::new();
        let mut entry = self.next[self.head];
        let mut steps = 0u32;
        loop {
            steps = steps.wrapping_add(1);
            if steps.is_multiple_of(4096)
                && let Some(d) = deadline
                && Instant::now() >= d
            {
                return Found::Stopped;
            }
            if entry == NIL {
                // Nothing but unknown-outcome invocations remain: leave them unapplied.
                return Found::Linearizable;
            }
            let op = entry / 2;
            if entry.is_multiple_of(2) {
                if let Some(after) = step(state, self.ops[op].value) {
                    bits[op / 64] |= 1 << (op % 64);
                    let h = hash ^ self.zobrist[op];
                    if self.remember(h, after, &bits) {
                        self.explored += 1;
                        stack.push((op, state));
                        state = after;
                        hash = h;
                        self.lift(op);
                        entry = self.next[self.head];
                        continue;
                    }
                    bits[op / 64] &= !(1 << (op % 64));
                }
                entry = self.next[entry];
            } else {
                // A completion whose operation is not linearized: this branch cannot succeed.
                if self.deepest.as_ref().is_none_or(|d| stack.len() > d.depth) {
                    let mut pending = Vec::new();
                    let mut e = self.next[self.head];
                    while e != entry && e != NIL {
                        if e.is_multiple_of(2) {
                            pending.push(e / 2);
                        }
                        e = self.next[e];
                    }
                    self.deepest = Some(Deepest {
                        depth: stack.len(),
                        state,
                        culprit: op,
                        pending,
                    });
                }
                let Some((back, before)) = stack.pop() else {
                    return Found::NotLinearizable;
                };
                bits[back / 64] &= !(1 << (back % 64));
                hash ^= self.zobrist[back];
                state = before;
                self.unlift(back);
                entry = self.next[2 * back];
            }
        }
    }

    /// The failing window of a key found not linearizable, shrunk greedily.
    fn failure(
        &self,
        key: i64,
        all: &[Operation],
        sops: &[SOp],
        deadline: Option<Instant>,
    ) -> Failure {
        let d = self
            .deepest
            .as_ref()
            .expect("a failed search records where");
        let mut window: Vec<usize> = d.pending.clone();
        if !window.contains(&d.culprit) {
            window.push(d.culprit);
        }
        // Drop each other operation in turn if the rest still cannot be linearized from the same state.
        let mut i = 0;
        while i < window.len() {
            if window[i] == d.culprit {
                i += 1;
                continue;
            }
            let trial: Vec<SOp> = window
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &o)| sops[o])
                .collect();
            let mut sub = Search::new(&trial, d.state);
            if matches!(sub.run(deadline), Found::NotLinearizable) {
                window.remove(i);
            } else {
                i += 1;
            }
        }
        window.sort_by_key(|&o| (sops[o].call, o));
        let culprit = window
            .iter()
            .position(|&o| o == d.culprit)
            .expect("culprit kept");
        Failure {
            key,
            state_before: d.state,
            window: window
                .iter()
                .map(|&o| all[sops[o].origin].clone())
                .collect(),
            culprit,
            linearized_before: d.depth,
        }
    }
}
