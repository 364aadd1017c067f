//! Maelstrom's workloads besides lin-kv, with Maelstrom's own request and reply bodies (jepsen-io/maelstrom,
//! doc/workloads.md), so a node written for Maelstrom runs them unchanged, and a checker for each:
//!
//! - `echo`: `echo` → `echo_ok`; every reply carries its request's `echo`.
//! - `unique-ids`: `generate` → `generate_ok` with `id`; no id is given out twice.
//! - `broadcast`: first `topology` (a grid, as Maelstrom's default) to every node, then `broadcast` of a
//!   fresh integer and `read` → `read_ok` with `messages`; every acknowledged value is eventually read on
//!   every node, and no node reads a value never broadcast (a value taken by a node that does not answer the
//!   final read is owed once it is back, not before). The check reports stable latency (from a value's
//!   broadcast until every node has read it) and node-to-node messages per operation.
//! - `g-counter`: `add` of `delta` and `read` → `read_ok` with `value`; every node's final read shows every
//!   add acknowledged before the reads began and no more than was ever attempted (an add whose reply was lost
//!   may have happened); with the workload stopped, that is Maelstrom's "equals the acknowledged adds".
//! - `kafka`: `send` of `msg` to `key` → `send_ok` with `offset`; `poll` → `poll_ok` with `msgs`;
//!   `commit_offsets`; `list_committed_offsets`. No offset of a key is given to two messages, a poll reads at
//!   an acknowledged offset the message sent there, and a poll skips no offset acknowledged before it began
//!   within the range it returned (a lost send).
//!
//! This module is pure: it draws requests (from a generator seeded with the session's seed), keeps the
//! history of completed operations, and judges it with the nodes' final reads. The orchestrator sends and
//! times the requests (`cluster::clients`) and asks for the final reads (`cluster::verify`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use super::node_name;
use crate::command::WorkloadKind;
use crate::state::Verdict;

/// Keys of the kafka workload (`k0`…).
pub const KAFKA_KEYS: usize = 4;
/// At most this many completed operations are kept for the check; later ones are counted, not judged.
pub const MAX_OPS: usize = 500_000;

/// One request: to which node, with what body (`msg_id` is the client's to add).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The node it goes to.
    pub node: u64,
    /// Maelstrom's request body.
    pub body: Value,
}

/// How an operation ended, by Maelstrom's rules.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A reply that is not an error: its body.
    Ok(Value),
    /// A definite error, or nothing was sent: it did not happen.
    Fail(String),
    /// An indefinite error, or no reply: it may have happened.
    Info(String),
}

/// One completed operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// The request.
    pub req: Request,
    /// Session time it was sent (ns).
    pub invoked_ns: u64,
    /// Session time it ended (ns).
    pub completed_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// The finding in words (`… check passed: N operations …`).
    pub report: String,
    /// Whether the verdict can stand: `false` while a value may still be on its way (a broadcast not yet
    /// read everywhere, counters not yet converged), so the caller reads again until its deadline.
    pub settled: bool,
}

/// One of the workloads this module draws and judges: Maelstrom's, not squall's own (`counter`, `lin-kv`,
/// `lock`, `lock-fenced`, which the kv clients run). Made from a [`WorkloadKind`] with `try_from`, which
/// refuses squall's own with [`NotMaelstrom`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaelstromWorkload {
    /// `echo`.
    Echo,
    /// `unique-ids`.
    UniqueIds,
    /// `broadcast`.
    Broadcast,
    /// `g-counter`.
    GCounter,
    /// `kafka`.
    Kafka,
}

/// A workload of squall's own offered to the Maelstrom workload driver, which neither draws nor judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "workload `{}` is squall's own, not one of Maelstrom's (echo, unique-ids, broadcast, g-counter, kafka): \
     the Maelstrom workload driver neither draws nor judges it",
    .0.as_str()
)]
pub struct NotMaelstrom(pub WorkloadKind);

impl TryFrom<WorkloadKind> for MaelstromWorkload {
    type Error = NotMaelstrom;

    fn try_from(kind: WorkloadKind) -> Result<Self, NotMaelstrom> {
        Ok(match kind {
            WorkloadKind::Echo => MaelstromWorkload::Echo,
            WorkloadKind::UniqueIds => MaelstromWorkload::UniqueIds,
            WorkloadKind::Broadcast => MaelstromWorkload::Broadcast,
            WorkloadKind::GCounter => MaelstromWorkload::GCounter,
            WorkloadKind::Kafka => MaelstromWorkload::Kafka,
            WorkloadKind::Counter
            | WorkloadKind::LinKv
            | WorkloadKind::Lock
            | WorkloadKind::LockFenced => return Err(NotMaelstrom(kind)),
        })
    }
}

impl From<MaelstromWorkload> for WorkloadKind {
    fn from(w: MaelstromWorkload) -> WorkloadKind {
        match w {
            MaelstromWorkload::Echo => WorkloadKind::Echo,
            MaelstromWorkload::UniqueIds => WorkloadKind::UniqueIds,
            MaelstromWorkload::Broadcast => WorkloadKind::Broadcast,
            MaelstromWorkload::GCounter => WorkloadKind::GCounter,
            MaelstromWorkload::Kafka => WorkloadKind::Kafka,
        }
    }
}

struct State {
    kind: Option<MaelstromWorkload>,
    rng: StdRng,
    ops: Vec<Op>,
    /// Operations completed beyond [`MAX_OPS`].
    unkept: u64,
    next_value: u64,
    /// Node-to-node messages counted when the workload was chosen.
    messages_at_start: u64,
    /// Per node, the client address its topology went to (a restarted node listens anew and gets it again).
    topology_sent: BTreeMap<u64, String>,
    /// Kafka: the highest offset acknowledged per key, to poll from.
    kafka_high: [u64; KAFKA_KEYS],
    /// Broadcast: every value handed to a client, completed or not (a read may show a value whose broadcast
    /// is still in flight).
    broadcast_drawn: std::collections::HashSet<u64>,
    /// G-counter: the deltas of every add handed to a client, completed or not (a read may show an add whose
    /// reply is still on its way).
    adds_drawn: u64,
}

/// One of Maelstrom's workloads: the requests it draws and the history it judges. Shared by the clients.
pub struct Workload {
    inner: Mutex<State>,
}

impl Workload {
    /// No workload chosen yet; draws follow `seed`.
    pub fn new(seed: u64) -> Workload {
        Workload {
            inner: Mutex::new(State {
                kind: None,
                rng: StdRng::seed_from_u64(seed ^ 0x776f_726b_6c6f_6164),
                ops: Vec::new(),
                unkept: 0,
                next_value: 0,
                messages_at_start: 0,
                topology_sent: BTreeMap::new(),
                kafka_high: [0; KAFKA_KEYS],
                broadcast_drawn: Default::default(),
                adds_drawn: 0,
            }),
        }
    }

    /// Chooses the workload; a different one than before starts a new history. `messages` is the node-to-node
    /// message count now (for messages per operation). `Err` refuses one of squall's own workloads (see
    /// [`MaelstromWorkload`]) and changes nothing.
    pub fn select(&self, kind: WorkloadKind, messages: u64) -> Result<(), NotMaelstrom> {
        let kind = MaelstromWorkload::try_from(kind)?;
        let mut g = self.inner.lock().unwrap();
        if g.kind != Some(kind) {
            g.kind = Some(kind);
            g.ops.clear();
            g.unkept = 0;
            g.messages_at_start = messages;
            g.topology_sent.clear();
        }
        Ok(())
    }

    /// The workload chosen, if any.
    pub fn kind(&self) -> Option<WorkloadKind> {
        self.inner.lock().unwrap().kind.map(WorkloadKind::from)
    }

    /// Operations completed so far.
    pub fn completed(&self) -> u64 {
        let g = self.inner.lock().unwrap();
        g.ops.len() as u64 + g.unkept
    }

    /// The messages a node must get before the workload's requests, for the nodes whose client ports are
    /// `addrs` (node → address): `broadcast`'s topology, to each node it has not yet gone to at that address.
    /// Mark each delivered with [`Workload::setup_done`].
    pub fn setup_due(&self, addrs: &BTreeMap<u64, String>) -> Vec<Request> {
        let g = self.inner.lock().unwrap();
        if g.kind != Some(MaelstromWorkload::Broadcast) {
            return Vec::new();
        }
        let nodes: Vec<u64> = addrs.keys().copied().collect();
        let topology = grid(&nodes);
        addrs
            .iter()
            .filter(|(n, a)| g.topology_sent.get(n) != Some(a))
            .map(|(&node, _)| Request {
                node,
                body: json!({"type": "topology", "topology": topology}),
            })
            .collect()
    }

    /// Records that node `node` at `addr` got its setup.
    pub fn setup_done(&self, node: u64, addr: String) {
        self.inner.lock().unwrap().topology_sent.insert(node, addr);
    }

    /// Draws the next request to one of `nodes`; `None` when no workload is chosen or no node is up.
    pub fn next(&self, nodes: &[u64]) -> Option<Request> {
        let mut g = self.inner.lock().unwrap();
        let kind = g.kind?;
        if nodes.is_empty() {
            return None;
        }
        let node = nodes[g.rng.random_range(0..nodes.len())];
        let read = g.rng.random_bool(0.5);
        g.next_value += 1;
        let n = g.next_value;
        let body = match kind {
            MaelstromWorkload::Echo => json!({"type": "echo", "echo": format!("squall says {n}")}),
            MaelstromWorkload::UniqueIds => json!({"type": "generate"}),
            MaelstromWorkload::Broadcast if read => json!({"type": "read"}),
            MaelstromWorkload::Broadcast => {
                g.broadcast_drawn.insert(n);
                json!({"type": "broadcast", "message": n})
            }
            MaelstromWorkload::GCounter if read => json!({"type": "read"}),
            MaelstromWorkload::GCounter => {
                let delta: u64 = g.rng.random_range(1..=5);
                g.adds_drawn += delta;
                json!({"type": "add", "delta": delta})
            }
            MaelstromWorkload::Kafka => {
                let k = g.rng.random_range(0..KAFKA_KEYS);
                let key = format!("k{k}");
                match g.rng.random_range(0..10) {
                    0..5 => json!({"type": "send", "key": key, "msg": n}),
                    5..8 => {
                        let high = g.kafka_high[k];
                        let from = g.rng.random_range(0..=high);
                        json!({"type": "poll", "offsets": {key: from}})
                    }
                    8 => {
                        let at = g.kafka_high[k];
                        json!({"type": "commit_offsets", "offsets": {key: at}})
                    }
                    _ => json!({"type": "list_committed_offsets", "keys": [key]}),
                }
            }
        };
        Some(Request { node, body })
    }

    /// Records a completed operation.
    pub fn record(&self, op: Op) {
        let mut g = self.inner.lock().unwrap();
        if let (Outcome::Ok(reply), Some(key)) = (&op.outcome, op.req.body["key"].as_str())
            && let (Some(offset), Some(k)) = (
                reply["offset"].as_u64(),
                key.strip_prefix('k').and_then(|k| k.parse::<usize>().ok()),
            )
            && k < KAFKA_KEYS
        {
            g.kafka_high[k] = g.kafka_high[k].max(offset);
        }
        if g.ops.len() < MAX_OPS {
            g.ops.push(op);
        } else {
            g.unkept += 1;
        }
    }

    /// The request each node answers for the final check (`read` for broadcast and g-counter), if the
    /// workload has one.
    pub fn final_read(&self) -> Option<Value> {
        match self.kind()? {
            WorkloadKind::Broadcast | WorkloadKind::GCounter => Some(json!({"type": "read"})),
            _ => None,
        }
    }

    /// Judges the history with the nodes' final reads (node → reply body, or why there is none), which began
    /// at session time `reads_began_ns` (only what was acknowledged before then must show in them; the
    /// workload may still run), `messages` node-to-node messages having been sent by now, session time
    /// `now_ns`.
    pub fn judge(
        &self,
        finals: &BTreeMap<u64, Result<Value, String>>,
        reads_began_ns: u64,
        messages: u64,
        now_ns: u64,
    ) -> Judgement {
        let g = self.inner.lock().unwrap();
        let Some(kind) = g.kind else {
            return Judgement {
                verdict: Verdict::Inconclusive,
                report: "check: nothing to judge: no Maelstrom workload was chosen".into(),
                settled: true,
            };
        };
        let name = WorkloadKind::from(kind).as_str();
        let counts = Counts::of(&g.ops, g.unkept);
        if counts.ok == 0 {
            return Judgement {
                verdict: Verdict::Inconclusive,
                report: format!(
                    "{name} check: nothing to judge: no operation succeeded yet ({counts}; start the workload \
                     with `workload on`)"
                ),
                settled: true,
            };
        }
        let found = match kind {
            MaelstromWorkload::Echo => echo(&g.ops),
            MaelstromWorkload::UniqueIds => unique_ids(&g.ops),
            MaelstromWorkload::Broadcast => {
                broadcast(&g.ops, &g.broadcast_drawn, finals, reads_began_ns, now_ns)
            }
            MaelstromWorkload::GCounter => g_counter(&g.ops, g.adds_drawn, finals, reads_began_ns),
            MaelstromWorkload::Kafka => kafka(&g.ops),
        };
        let per_op = messages.saturating_sub(g.messages_at_start) as f64 / counts.total() as f64;
        let messages = format!("{per_op:.1} node-to-node messages per operation");
        match found {
            Found::Passed(what) => Judgement {
                verdict: Verdict::Ok,
                report: format!("{name} check passed: {counts}; {what}; {messages}"),
                settled: true,
            },
            Found::Pending(what) => Judgement {
                verdict: Verdict::Violated,
                report: format!("{name} check FAILED: {counts}; {what}; {messages}"),
                settled: false,
            },
            Found::Failed(what) => Judgement {
                verdict: Verdict::Violated,
                report: format!("{name} check FAILED: {counts}; {what}; {messages}"),
                settled: true,
            },
            Found::Unknown(what) => Judgement {
                verdict: Verdict::Inconclusive,
                report: format!("{name} check inconclusive: {counts}; {what}"),
                settled: false,
            },
        }
    }
}

/// The grid Maelstrom gives by default: nodes in rows of ⌈√n⌉, each the neighbour of the nodes above,
/// below, left and right of it.
pub fn grid(nodes: &[u64]) -> BTreeMap<String, Vec<String>> {
    let n = nodes.len();
    let width = (1..=n.max(1)).find(|w| w * w >= n).unwrap_or(1);
    let mut out = BTreeMap::new();
    for (i, &node) in nodes.iter().enumerate() {
        let mut near = Vec::new();
        if i % width > 0 {
            near.push(nodes[i - 1]);
        }
        if i % width + 1 < width && i + 1 < n {
            near.push(nodes[i + 1]);
        }
        if i >= width {
            near.push(nodes[i - width]);
        }
        if i + width < n {
            near.push(nodes[i + width]);
        }
        near.sort_unstable();
        out.insert(
            node_name(node),
            near.into_iter().map(node_name).collect::<Vec<_>>(),
        );
    }
    out
}

/// Operations by outcome.
struct Counts {
    ok: u64,
    fail: u64,
    info: u64,
}

impl Counts {
    fn of(ops: &[Op], unkept: u64) -> Counts {
        let mut c = Counts {
            ok: 0,
            fail: 0,
            info: unkept,
        };
        for op in ops {
            match op.outcome {
                Outcome::Ok(_) => c.ok += 1,
                Outcome::Fail(_) => c.fail += 1,
                Outcome::Info(_) => c.info += 1,
            }
        }
        c
    }

    fn total(&self) -> u64 {
        (self.ok + self.fail + self.info).max(1)
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} operations ({} ok, {} failed, {} unknown)",
            self.ok + self.fail + self.info,
            self.ok,
            self.fail,
            self.info
        )
    }
}

/// A checker's finding.
enum Found {
    /// Nothing wrong: what holds.
    Passed(String),
    /// Wrong now, but values may still be on their way: read again until the deadline.
    Pending(String),
    /// Wrong, whatever comes later.
    Failed(String),
    /// Cannot tell (a node did not answer its final read).
    Unknown(String),
}

/// Up to `n` items, then how many more.
fn some<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, n: usize) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(" and {} more", items.len() - n));
    }
    s
}

fn ok_ops(ops: &[Op]) -> impl Iterator<Item = (&Op, &Value)> {
    ops.iter().filter_map(|op| match &op.outcome {
        Outcome::Ok(reply) => Some((op, reply)),
        _ => None,
    })
}

fn echo(ops: &[Op]) -> Found {
    let wrong: Vec<String> = ok_ops(ops)
        .filter(|(op, reply)| reply["type"] != "echo_ok" || reply["echo"] != op.req.body["echo"])
        .map(|(op, reply)| {
            format!(
                "{} answered {} with {}",
                node_name(op.req.node),
                op.req.body["echo"],
                reply
            )
        })
        .collect();
    if wrong.is_empty() {
        Found::Passed("every echo_ok carried its request's echo".into())
    } else {
        Found::Failed(format!(
            "{} replies did not carry their request's echo: {}",
            wrong.len(),
            some(wrong, 3)
        ))
    }
}

fn unique_ids(ops: &[Op]) -> Found {
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    let mut missing = 0;
    for (op, reply) in ok_ops(ops) {
        if reply["id"].is_null() {
            missing += 1;
            continue;
        }
        by_id
            .entry(reply["id"].to_string())
            .or_default()
            .push(op.req.node);
    }
    let mut twice: Vec<(String, Vec<u64>)> =
        by_id.into_iter().filter(|(_, n)| n.len() > 1).collect();
    twice.sort();
    if !twice.is_empty() {
        let shown = twice.iter().map(|(id, nodes)| {
            format!(
                "{id} by {}",
                nodes
                    .iter()
                    .map(|&n| node_name(n))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        });
        return Found::Failed(format!(
            "{} ids given out more than once: {}",
            twice.len(),
            some(shown, 3)
        ));
    }
    if missing > 0 {
        return Found::Failed(format!("{missing} generate_ok replies had no `id`"));
    }
    Found::Passed("every id given out once".into())
}

/// The integers of a `read_ok`'s `messages`.
fn messages_of(reply: &Value) -> Option<BTreeSet<u64>> {
    reply["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn broadcast(
    ops: &[Op],
    drawn: &std::collections::HashSet<u64>,
    finals: &BTreeMap<u64, Result<Value, String>>,
    reads_began_ns: u64,
    now_ns: u64,
) -> Found {
    let mut sent: HashMap<u64, u64> = HashMap::new(); // value -> invoked
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let down = unanswered(finals);
    for op in ops {
        if op.req.body["type"] == "broadcast"
            && let Some(v) = op.req.body["message"].as_u64()
        {
            sent.insert(v, op.invoked_ns);
            // A value a node took and could not pass on before it went down is owed once it is back.
            if matches!(op.outcome, Outcome::Ok(_))
                && op.completed_ns <= reads_began_ns
                && !down.contains(&op.req.node)
            {
                acked.insert(v);
            }
        }
    }
    // Per value and node, when a read on that node first showed it.
    let mut first_seen: HashMap<(u64, u64), u64> = HashMap::new();
    let mut invented = BTreeSet::new();
    for (op, reply) in ok_ops(ops) {
        if op.req.body["type"] != "read" {
            continue;
        }
        for v in messages_of(reply).unwrap_or_default() {
            if !drawn.contains(&v) {
                invented.insert(v);
            }
            first_seen
                .entry((v, op.req.node))
                .or_insert(op.completed_ns);
        }
    }
    if !invented.is_empty() {
        return Found::Failed(format!(
            "reads showed {} values never broadcast: {}",
            invented.len(),
            some(&invented, 5)
        ));
    }
    let mut lost: Vec<String> = Vec::new();
    let mut unread: Vec<String> = Vec::new();
    for (&node, read) in finals {
        match read.as_ref().map(messages_of) {
            Ok(Some(got)) => {
                for &v in &got {
                    first_seen.entry((v, node)).or_insert(now_ns);
                }
                let missing: Vec<u64> = acked.difference(&got).copied().collect();
                if !missing.is_empty() {
                    lost.push(format!(
                        "{} acknowledged values never read on {} ({})",
                        missing.len(),
                        node_name(node),
                        some(&missing, 5)
                    ));
                }
            }
            Ok(None) => unread.push(format!("{} (a reply without `messages`)", node_name(node))),
            Err(e) => unread.push(format!("{} ({e})", node_name(node))),
        }
    }
    if !lost.is_empty() {
        return Found::Pending(lost.join("; "));
    }
    if unread.len() == finals.len() {
        return Found::Unknown(format!("no final read from {}", unread.join(", ")));
    }
    // Stable latency: from a value's broadcast until the last node read showed it.
    let nodes: Vec<u64> = finals
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| *n)
        .collect();
    let mut stable: Vec<u64> = acked
        .iter()
        .filter_map(|v| {
            let last = nodes
                .iter()
                .map(|n| first_seen.get(&(*v, *n)).copied())
                .collect::<Option<Vec<u64>>>()?
                .into_iter()
                .max()?;
            Some(last.saturating_sub(sent[v]) / 1_000_000)
        })
        .collect();
    stable.sort_unstable();
    let latency = if stable.is_empty() {
        "stable latency p50 — (no value acknowledged)".to_string()
    } else {
        format!(
            "stable latency p50 {} ms, p99 {} ms, max {} ms",
            quantile(&stable, 0.5),
            quantile(&stable, 0.99),
            stable[stable.len() - 1]
        )
    };
    Found::Passed(format!(
        "all {} acknowledged values read on every node{}; {latency}",
        acked.len(),
        not_read(&unread)
    ))
}

/// `; not read now: n2 (why)` for the nodes whose final read failed (a node that is down), else nothing.
fn not_read(unread: &[String]) -> String {
    if unread.is_empty() {
        String::new()
    } else {
        format!(" that answered (not read now: {})", unread.join(", "))
    }
}

/// The nodes whose final read got no answer (down, paused, cut off from squall's client).
fn unanswered(finals: &BTreeMap<u64, Result<Value, String>>) -> BTreeSet<u64> {
    finals
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| *n)
        .collect()
}

fn g_counter(
    ops: &[Op],
    drawn: u64,
    finals: &BTreeMap<u64, Result<Value, String>>,
    reads_began_ns: u64,
) -> Found {
    let (mut acked, mut attempted, mut failed) = (0u64, 0u64, 0u64);
    let down = unanswered(finals);
    for op in ops {
        if op.req.body["type"] != "add" {
            continue;
        }
        let delta = op.req.body["delta"].as_u64().unwrap_or(0);
        match op.outcome {
            Outcome::Ok(_) => {
                // An add a node took and could not pass on before it went down is owed once it is back.
                if op.completed_ns <= reads_began_ns && !down.contains(&op.req.node) {
                    acked += delta;
                }
                attempted += delta;
            }
            Outcome::Info(_) => attempted += delta,
            Outcome::Fail(_) => failed += delta,
        }
    }
    // Adds still in flight may have happened too: everything handed out but what definitely failed.
    let attempted = attempted.max(drawn.saturating_sub(failed));
    let mut reads = Vec::new();
    let mut unread = Vec::new();
    for (&node, read) in finals {
        match read.as_ref().map(|r| r["value"].as_u64()) {
            Ok(Some(v)) => reads.push((node, v)),
            Ok(None) => unread.push(format!("{} (a reply without `value`)", node_name(node))),
            Err(e) => unread.push(format!("{} ({e})", node_name(node))),
        }
    }
    let shown = || {
        reads
            .iter()
            .map(|(n, v)| format!("{} reads {v}", node_name(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // While the workload runs, a read may show adds acknowledged after the reads began, and nodes may differ
    // by those: each read must lie between what was acknowledged before the reads and what was ever sent.
    let bounds = format!("{acked} acknowledged before the reads, at most {attempted} attempted");
    if reads.iter().any(|(_, v)| *v > attempted) {
        return Found::Pending(format!("{}: more than was ever added ({bounds})", shown()));
    }
    if reads.iter().any(|(_, v)| *v < acked) {
        return Found::Pending(format!(
            "the final reads miss acknowledged adds: {} ({bounds})",
            shown()
        ));
    }
    if reads.is_empty() {
        return Found::Unknown(format!("no final read from {}", unread.join(", ")));
    }
    let agree = if reads.windows(2).all(|w| w[0].1 == w[1].1) {
        "the same count"
    } else {
        "counts within the bounds"
    };
    Found::Passed(format!(
        "every node{} reads {agree}: {} ({bounds})",
        not_read(&unread),
        shown()
    ))
}

fn kafka(ops: &[Op]) -> Found {
    // (key, offset) -> the message acknowledged there.
    let mut at: HashMap<(String, u64), u64> = HashMap::new();
    // (key, offset) -> when its send was acknowledged.
    let mut acked_ns: HashMap<(String, u64), u64> = HashMap::new();
    let mut wrong: Vec<String> = Vec::new();
    for (op, reply) in ok_ops(ops) {
        if op.req.body["type"] != "send" {
            continue;
        }
        let (Some(key), Some(msg), Some(offset)) = (
            op.req.body["key"].as_str(),
            op.req.body["msg"].as_u64(),
            reply["offset"].as_u64(),
        ) else {
            wrong.push(format!("a send_ok without an offset: {reply}"));
            continue;
        };
        acked_ns
            .entry((key.to_string(), offset))
            .or_insert(op.completed_ns);
        if let Some(other) = at.insert((key.to_string(), offset), msg)
            && other != msg
        {
            wrong.push(format!(
                "offset {offset} of {key} given to two messages ({other} and {msg})"
            ));
        }
    }
    for (op, reply) in ok_ops(ops) {
        if op.req.body["type"] != "poll" {
            continue;
        }
        let Some(msgs) = reply["msgs"].as_object() else {
            continue;
        };
        for (key, list) in msgs {
            let mut last: Option<u64> = None;
            let mut seen = BTreeSet::new();
            for pair in list.as_array().into_iter().flatten() {
                let (Some(offset), Some(msg)) = (pair[0].as_u64(), pair[1].as_u64()) else {
                    continue;
                };
                if last.is_some_and(|l| offset <= l) {
                    wrong.push(format!(
                        "a poll on {} read {key} offsets out of order ({} then {offset})",
                        node_name(op.req.node),
                        last.unwrap_or(0)
                    ));
                }
                last = Some(offset);
                seen.insert(offset);
                if let Some(&sent) = at.get(&(key.clone(), offset))
                    && sent != msg
                {
                    wrong.push(format!(
                        "a poll on {} read {key} offset {offset} = {msg}, where {sent} was acknowledged",
                        node_name(op.req.node)
                    ));
                }
            }
            // A send acknowledged before the poll began, at an offset inside what the poll returned, must be
            // among what it returned: else it was lost.
            let from = op.req.body["offsets"][key.as_str()].as_u64().unwrap_or(0);
            if let Some(&high) = seen.last() {
                for o in from..high {
                    if !seen.contains(&o)
                        && acked_ns
                            .get(&(key.clone(), o))
                            .is_some_and(|&t| t < op.invoked_ns)
                    {
                        wrong.push(format!(
                            "a poll on {} of {key} from offset {from} skipped offset {o} (message {}, \
                             acknowledged before the poll): a lost send",
                            node_name(op.req.node),
                            at[&(key.clone(), o)]
                        ));
                    }
                }
            }
        }
    }
    if wrong.is_empty() {
        Found::Passed(format!(
            "{} acknowledged sends each at an offset of its own, and every poll read them there, none skipped",
            at.len()
        ))
    } else {
        Found::Failed(format!("{} problems: {}", wrong.len(), some(wrong, 3)))
    }
}

#[cfg(test)]
mod tests;
