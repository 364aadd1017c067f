//! Linearizability of a key-value history, checked key by key.
//!
//! The search is Wing & Gong's, with Lowe's memoisation ("Testing for linearizability", G. Lowe, 2017): the
//! history's invocation and completion events form a doubly linked list in time order; the search walks it
//! from the front, tentatively linearizing an operation whose invocation it meets (removing the operation's
//! events from the list, "lifting" it) when the register model accepts it, and backtracking to the last choice
//! when it meets a completion whose operation is not yet linearized. A configuration already explored (the set
//! of decided operations as a bitset, and the model state) is never explored again. Keys are independent
//! registers, so each key's sub-history is checked on its own (Horn & Kroening's P-compositionality), which is
//! what makes long histories tractable.
//!
//! `fail` operations never happened and are left out. `info` operations (and invocations never completed)
//! have no completion event: the search may linearize them at any point after their invocation, or decide
//! that they never took effect (a step that leaves the state as it is); it succeeds once every `ok`
//! operation is linearized. An `info` read constrains nothing and is left out. Deciding every operation,
//! rather than leaving skipped ones in the list, is what lets a configuration be remembered exactly in a
//! few words: every operation below a frontier is decided, and only the bits from the frontier to the
//! highest decided operation (the concurrency window) are stored.
//!
//! On an invalid key the report is found apart from the search, because the point where one search got
//! deepest can lie on a wrong branch and blame an operation that some other order linearizes fine
//! (`minimal_failure`): the *culprit* is the operation whose completion first makes the key's history
//! non-linearizable (the shortest failing prefix, found by bisection over completion times, operations still
//! running at that time counted as of unknown outcome). The operations before the window are those that
//! completed before every operation of the window began (a clean cut in real time, so every linearization
//! of the prefix puts them first); the window is the rest of the prefix (the culprit and the operations
//! concurrent with it, transitively), shrunk greedily to a subset that cannot be linearized from any state
//! the operations before it can leave. Only if a search is cut short by the deadline does the report fall
//! back to the deepest point of the first search.

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
    /// Every state the operations before the window can leave the key in (`state_before` is one of them);
    /// the window cannot be linearized from any of them. Empty when only `state_before` is known (a search
    /// cut short by its deadline).
    pub possible_states_before: Vec<Option<i64>>,
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

/// Checks `ops` (as [`super::history::pair`] returns them), each key on its own, on up to one thread per
/// core. Past `deadline` the verdict is [`Verdict::Unknown`]; the search looks at the clock every few
/// thousand steps, so it stops within milliseconds of the deadline. When several keys are invalid, the
/// lowest is reported.
pub fn check(ops: &[Operation], deadline: Option<Instant>) -> Report {
    // Each key's operations in a vector of exactly their number (no doubling's slack at the peak).
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for op in ops {
        *counts.entry(op.key).or_default() += 1;
    }
    let mut by_key: BTreeMap<i64, Vec<SOp>> = counts
        .into_iter()
        .map(|(key, n)| (key, Vec::with_capacity(n)))
        .collect();
    for (origin, op) in ops.iter().enumerate() {
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
    let work: Vec<(i64, Vec<SOp>)> = by_key.into_iter().collect();
    // Keys are independent: check them on as many threads as there are cores (at most one per key).
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(work.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Once one key is invalid the history is, and the other keys' searches stop.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut results: Vec<(usize, KeyResult)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((key, sops)) = work.get(i) else {
                            return mine;
                        };
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return mine;
                        }
                        let r = check_key(*key, sops, ops, deadline, &stop);
                        if matches!(r.verdict, Verdict::Invalid(_)) {
                            stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        mine.push((i, r));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a key's check does not panic"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut explored = results.iter().map(|(_, r)| r.explored).sum();
    let mut unknown = None;
    let mut results = results.into_iter().peekable();
    for (i, (key, sops)) in work.iter().enumerate() {
        let r = match results.next_if(|(j, _)| *j == i) {
            Some((_, r)) if !r.stopped => r,
            // A key stopped (or never started) because a higher key was found invalid first, on another
            // thread: decide it now, so the lowest invalid key is the one reported whatever the timing.
            _ => {
                let r = check_key(
                    *key,
                    sops,
                    ops,
                    deadline,
                    &std::sync::atomic::AtomicBool::new(false),
                );
                explored += r.explored;
                r
            }
        };
        match r.verdict {
            Verdict::Invalid(f) => {
                return Report {
                    verdict: Verdict::Invalid(f),
                    operations: ops.len(),
                    keys,
                    explored,
                };
            }
            Verdict::Unknown(why) => {
                unknown.get_or_insert(why);
            }
            Verdict::Valid => {}
        }
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

struct KeyResult {
    verdict: Verdict,
    explored: u64,
    /// Stopped because another key was found invalid, not decided.
    stopped: bool,
}

fn check_key(
    key: i64,
    sops: &[SOp],
    ops: &[Operation],
    deadline: Option<Instant>,
    stop: &std::sync::atomic::AtomicBool,
) -> KeyResult {
    let mut search = Search::new(sops, None);
    search.stop = Some(stop);
    let mut stopped = false;
    let verdict = match search.run(deadline) {
        Found::Linearizable => Verdict::Valid,
        Found::Stopped if stop.load(std::sync::atomic::Ordering::Relaxed) => {
            stopped = true;
            Verdict::Unknown("stopped: another key is not linearizable".into())
        }
        Found::Stopped => Verdict::Unknown(format!(
            "the deadline passed while checking key {key} ({} operations)",
            sops.len()
        )),
        Found::NotLinearizable => Verdict::Invalid(Box::new(
            minimal_failure(key, ops, sops, deadline)
                .unwrap_or_else(|| search.failure(key, ops, sops, deadline)),
        )),
    };
    KeyResult {
        verdict,
        explored: search.explored,
        stopped,
    }
}

/// Whether `sops` can be linearized from `init`; `None` when the deadline passed first.
fn linearizable(sops: &[SOp], init: Option<i64>, deadline: Option<Instant>) -> Option<bool> {
    match Search::new(sops, init).run(deadline) {
        Found::Linearizable => Some(true),
        Found::NotLinearizable => Some(false),
        Found::Stopped => None,
    }
}

/// The key's history as it stood at time `t`: operations invoked by then, those still running counted as
/// of unknown outcome (a running read constrains nothing and is left out).
fn prefix_at(sops: &[SOp], t: u64) -> Vec<SOp> {
    sops.iter()
        .filter(|o| o.call <= t)
        .filter_map(|o| match o.ret {
            Some(r) if r <= t => Some(*o),
            _ if matches!(o.value, OpValue::Read(_)) => None,
            _ => Some(SOp { ret: None, ..*o }),
        })
        .collect()
}

/// The minimal failing window of a key whose history `sops` cannot be linearized (see the module comment),
/// or `None` when the deadline passed before it was found.
///
/// 1. Bisection over the completion times finds `t`, the earliest at which the history so far cannot be
///    linearized (a prefix that cannot be linearized stays so when it grows, so bisection is exact); the
///    culprit is the operation completing at `t` without which that prefix could be linearized.
/// 2. The window starts as the operations of that prefix not completed before the culprit began, grown
///    until every operation outside it completed before every operation in it began.
/// 3. The states the operations outside can leave are found by asking, for each value a last write among
///    them could have left, whether they can be linearized followed by a read of it.
/// 4. The window is shrunk greedily, in passes until none removes anything: an operation goes if the rest
///    still fails from every such state. No single operation of the result but the culprit can then go
///    (counting, as the prefix does, operations that completed after the culprit as of unknown outcome).
fn minimal_failure(
    key: i64,
    all: &[Operation],
    sops: &[SOp],
    deadline: Option<Instant>,
) -> Option<Failure> {
    let mut times: Vec<u64> = sops.iter().filter_map(|o| o.ret).collect();
    times.sort_unstable();
    times.dedup();
    // Invariant: the prefix at times[hi] fails; the prefix at times[lo - 1] (or the empty one) does not.
    let (mut lo, mut hi) = (0, times.len().checked_sub(1)?);
    if linearizable(&prefix_at(sops, times[hi]), None, deadline)? {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if linearizable(&prefix_at(sops, times[mid]), None, deadline)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let t = times[hi];
    let prefix = prefix_at(sops, t);
    // Positions in `prefix` of the operations completing at `t`; the culprit is one the prefix needs.
    let completing: Vec<usize> = (0..prefix.len())
        .filter(|&i| prefix[i].ret == Some(t))
        .collect();
    let mut culprit = *completing.first()?;
    for &i in &completing {
        let mut relaxed = prefix.clone();
        relaxed[i].ret = None;
        if matches!(relaxed[i].value, OpValue::Read(_)) {
            relaxed.remove(i);
        }
        if linearizable(&relaxed, None, deadline)? {
            culprit = i;
            break;
        }
    }
    // The clean cut: grow the window until everything outside completed before anything inside began.
    let mut inside: Vec<bool> = prefix
        .iter()
        .map(|o| o.ret.is_none_or(|r| r >= prefix[culprit].call))
        .collect();
    inside[culprit] = true;
    loop {
        let start = (0..prefix.len())
            .filter(|&i| inside[i])
            .map(|i| prefix[i].call)
            .min()
            .expect("the culprit is inside");
        let mut grew = false;
        for (i, o) in prefix.iter().enumerate() {
            if !inside[i] && o.ret.is_none_or(|r| r >= start) {
                inside[i] = true;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let before: Vec<SOp> = (0..prefix.len())
        .filter(|&i| !inside[i])
        .map(|i| prefix[i])
        .collect();
    // Every operation before the cut completed `ok`: each write and cas among them took effect, and the
    // state they leave is the value of one not followed in real time by another.
    let writes: Vec<&SOp> = before
        .iter()
        .filter(|o| !matches!(o.value, OpValue::Read(_)))
        .collect();
    let last_call = writes.iter().map(|o| o.call).max();
    let mut candidates: Vec<Option<i64>> = match last_call {
        None => vec![None],
        Some(c) => writes
            .iter()
            .filter(|o| o.ret.is_some_and(|r| r >= c))
            .map(|o| match o.value {
                OpValue::Write(v) | OpValue::Cas(_, v) => Some(v),
                OpValue::Read(v) => v,
            })
            .collect(),
    };
    candidates.sort_unstable();
    candidates.dedup();
    let end = before.iter().filter_map(|o| o.ret).max().unwrap_or(0) + 1;
    let mut states = Vec::new();
    for v in candidates {
        let mut probe = before.clone();
        probe.push(SOp {
            call: end,
            ret: Some(end),
            value: OpValue::Read(v),
            origin: usize::MAX,
        });
        if linearizable(&probe, None, deadline)? {
            states.push(v);
        }
    }
    if states.is_empty() {
        return None;
    }
    let fails_from_all = |window: &[SOp]| -> Option<bool> {
        for &v in &states {
            if linearizable(window, v, deadline)? {
                return Some(false);
            }
        }
        Some(true)
    };
    let mut window: Vec<usize> = (0..prefix.len()).filter(|&i| inside[i]).collect();
    // Passes until none removes anything: then no single operation but the culprit can go.
    let mut shrunk = true;
    while shrunk {
        shrunk = false;
        let mut i = 0;
        while i < window.len() {
            if window[i] == culprit {
                i += 1;
                continue;
            }
            let trial: Vec<SOp> = window
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &o)| prefix[o])
                .collect();
            if fails_from_all(&trial)? {
                window.remove(i);
                shrunk = true;
            } else {
                i += 1;
            }
        }
    }
    window.sort_by_key(|&o| (prefix[o].call, prefix[o].origin));
    Some(Failure {
        key,
        state_before: states[0],
        culprit: window.iter().position(|&o| o == culprit)?,
        window: window
            .iter()
            .map(|&o| all[prefix[o].origin].clone())
            .collect(),
        linearized_before: before.len(),
        possible_states_before: states,
    })
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

/// One remembered configuration: the decided set as the frontier `m` (every operation below it decided) and
/// the words of the bitset from `m / 64` up to the highest decided operation, stored in the arena.
#[derive(Clone, Copy)]
struct Entry {
    m: u32,
    off: u32,
    len: u32,
    /// The next entry with the same (hash, state), or `u32::MAX`.
    next: u32,
}

/// The decided operations as a bitset, with its incremental hash, its frontier (lowest undecided operation)
/// and its highest decided operation, so a configuration is remembered in a few words, not `n / 64`.
struct Decided {
    bits: Vec<u64>,
    hash: u64,
    /// Lowest undecided operation (`n` when all are decided).
    m: usize,
    /// One past the highest decided operation (0 when none is).
    top: usize,
}

impl Decided {
    fn new(n: usize) -> Self {
        Decided {
            bits: vec![0; n.div_ceil(64) + 1],
            hash: 0,
            m: 0,
            top: 0,
        }
    }

    fn has(&self, op: usize) -> bool {
        self.bits[op / 64] & (1 << (op % 64)) != 0
    }

    fn set(&mut self, op: usize, z: u64, n: usize) {
        self.bits[op / 64] |= 1 << (op % 64);
        self.hash ^= z;
        self.top = self.top.max(op + 1);
        while self.m < n && self.has(self.m) {
            // Skip whole words when they are full.
            if self.m.is_multiple_of(64) && self.bits[self.m / 64] == u64::MAX {
                self.m += 64;
            } else {
                self.m += 1;
            }
        }
        self.m = self.m.min(n);
    }

    fn clear(&mut self, op: usize, z: u64) {
        self.bits[op / 64] &= !(1 << (op % 64));
        self.hash ^= z;
        self.m = self.m.min(op);
        if op + 1 == self.top {
            let mut t = op;
            while t > 0 && !self.has(t - 1) {
                t -= 1;
            }
            self.top = t;
        }
    }

    /// The words that, with `m`, identify the set.
    fn key_words(&self) -> &[u64] {
        if self.top <= self.m {
            return &[];
        }
        &self.bits[self.m / 64..self.top.div_ceil(64)]
    }
}

/// Explored configurations: (hash of the decided set, state) → the first entry of a chain.
type Cache = HashMap<(u64, Option<i64>), u32, BuildHasherDefault<MixHasher>>;

/// How an operation on the search stack was decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Linearized: applied to the model.
    Applied,
    /// An unknown-outcome operation decided never to take effect.
    Skipped,
    /// A read linearized as soon as it could be (see [`Search::forced_read`]): no alternative to try.
    Forced,
}

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
    cache: Cache,
    entries: Vec<Entry>,
    arena: Vec<u64>,
    explored: u64,
    deepest: Option<Deepest>,
    /// Set by another key's search that found its key invalid.
    stop: Option<&'a std::sync::atomic::AtomicBool>,
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
            entries: Vec::new(),
            arena: Vec::new(),
            explored: 0,
            deepest: None,
            stop: None,
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

    /// Records (decided set, state) as explored; false when it was already.
    fn remember(&mut self, d: &Decided, state: Option<i64>) -> bool {
        let words = d.key_words();
        let m = d.m as u32;
        let slot = self.cache.entry((d.hash, state)).or_insert(u32::MAX);
        let mut i = *slot;
        while i != u32::MAX {
            let e = self.entries[i as usize];
            if e.m == m && &self.arena[e.off as usize..(e.off + e.len) as usize] == words {
                return false;
            }
            i = e.next;
        }
        let new = self.entries.len() as u32;
        self.entries.push(Entry {
            m,
            off: self.arena.len() as u32,
            len: words.len() as u32,
            next: *slot,
        });
        *slot = new;
        self.arena.extend_from_slice(words);
        true
    }

    /// Decides `op` as `how` from `state` if the model allows it and the resulting configuration is new;
    /// returns the state after it.
    fn try_decide(
        &mut self,
        d: &mut Decided,
        op: usize,
        how: Decision,
        state: Option<i64>,
    ) -> Option<Option<i64>> {
        let after = match how {
            Decision::Applied | Decision::Forced => step(state, self.ops[op].value)?,
            Decision::Skipped => state,
        };
        let n = self.ops.len();
        d.set(op, self.zobrist[op], n);
        if self.remember(d, after) {
            self.explored += 1;
            self.lift(op);
            Some(after)
        } else {
            d.clear(op, self.zobrist[op]);
            None
        }
    }

    /// A read that has completed `ok` with the current state's value and may be linearized now (its
    /// invocation comes before any pending completion): linearizing it at once never loses a solution, since
    /// it changes nothing and nothing has to precede it, so it is a forced move, never a choice.
    fn forced_read(&self, state: Option<i64>) -> Option<usize> {
        let mut e = self.next[self.head];
        while e != NIL && e.is_multiple_of(2) {
            let op = &self.ops[e / 2];
            if op.ret.is_some() && op.value == OpValue::Read(state) {
                return Some(e / 2);
            }
            e = self.next[e];
        }
        None
    }

    fn run(&mut self, deadline: Option<Instant>) -> Found {
        let n = self.ops.len();
        let mut d = Decided::new(n);
        let mut state = self.init;
        // At most one decision per operation is on the stack.
        let mut stack: Vec<(usize, Option<i64>, Decision)> = Vec::with_capacity(n);
        let mut entry = self.next[self.head];
        // True right after a decision, when the scan starts again from the head.
        let mut fresh = true;
        let mut steps = 0u32;
        loop {
            steps = steps.wrapping_add(1);
            if steps.is_multiple_of(4096)
                && (deadline.is_some_and(|dl| Instant::now() >= dl)
                    || self
                        .stop
                        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)))
            {
                return Found::Stopped;
            }
            let mut dead_end = false;
            if fresh {
                fresh = false;
                if let Some(op) = self.forced_read(state) {
                    if self
                        .try_decide(&mut d, op, Decision::Applied, state)
                        .is_some()
                    {
                        stack.push((op, state, Decision::Forced));
                        entry = self.next[self.head];
                        fresh = true;
                        continue;
                    }
                    // Explored before, without success: so is this configuration.
                    dead_end = true;
                }
            }
            if !dead_end {
                if entry == NIL {
                    // Nothing but unknown-outcome invocations remain: leave them unapplied.
                    return Found::Linearizable;
                }
                let op = entry / 2;
                if entry.is_multiple_of(2) {
                    let info = self.ops[op].ret.is_none();
                    let decided = self
                        .try_decide(&mut d, op, Decision::Applied, state)
                        .map(|s| (s, Decision::Applied))
                        .or_else(|| {
                            if info {
                                self.try_decide(&mut d, op, Decision::Skipped, state)
                                    .map(|s| (s, Decision::Skipped))
                            } else {
                                None
                            }
                        });
                    if let Some((after, how)) = decided {
                        stack.push((op, state, how));
                        state = after;
                        entry = self.next[self.head];
                        fresh = true;
                    } else {
                        entry = self.next[entry];
                    }
                    continue;
                }
                // A completion whose operation is not linearized: this branch cannot succeed.
                if self
                    .deepest
                    .as_ref()
                    .is_none_or(|dp| stack.len() > dp.depth)
                {
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
            }
            // Undo decisions back to one with an alternative left: a forced read has none; an unknown-outcome
            // operation that was applied is next tried skipped; anything else gives way to the entries after it.
            loop {
                let Some((back, before, how)) = stack.pop() else {
                    return Found::NotLinearizable;
                };
                d.clear(back, self.zobrist[back]);
                self.unlift(back);
                state = before;
                if how == Decision::Forced {
                    continue;
                }
                if how == Decision::Applied
                    && self.ops[back].ret.is_none()
                    && let Some(after) = self.try_decide(&mut d, back, Decision::Skipped, state)
                {
                    stack.push((back, state, Decision::Skipped));
                    state = after;
                    entry = self.next[self.head];
                    fresh = true;
                } else {
                    entry = self.next[2 * back];
                }
                break;
            }
        }
    }

    /// The failing window as the deepest point of this search saw it, shrunk greedily: the fallback when
    /// [`minimal_failure`] ran out of time.
    fn failure(
        &self,
        key: i64,
        all: &[Operation],
        sops: &[SOp],
        deadline: Option<Instant>,
    ) -> Failure {
        let Some(d) = self.deepest.as_ref() else {
            // Every failed search meets a completion it cannot pass first; this is only a safe answer.
            return Failure {
                key,
                state_before: self.init,
                window: Vec::new(),
                culprit: 0,
                linearized_before: 0,
                possible_states_before: Vec::new(),
            };
        };
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
            possible_states_before: Vec::new(),
        }
    }
}
