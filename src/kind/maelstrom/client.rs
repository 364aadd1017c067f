//! The `maelstrom` drivers: a lin-kv client that speaks Maelstrom's workload protocol (doc/workloads.md,
//! "lin-kv": `read`, `write`, `cas`) to the nodes through their bridges' client ports, and the status
//! source, which reads a bridge's counters. A Maelstrom node reports no role, term, leader or index, so every
//! one of those is `None` (drawn `—`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bridge::{STATUS_REQUEST, Status};
use super::{error_code, node_id, node_name};
use crate::kind::drivers::{
    Addrs, KvAnswer, KvClient, KvOutcome, KvRequest, StatusReport, StatusSource,
};
use squall_node::raft::Role;

/// How long a client waits for a reply before it records the operation as indefinite.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long connecting to a bridge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Client names are `c1`, `c2`, … across the whole squall process, never reused (a client that saw an
/// indefinite outcome continues as a new one).
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// Why a call got no reply body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Nothing was sent (the node's bridge could not be reached): the operation did not happen.
    NotSent(String),
    /// The request was sent and no reply came (a timeout, a broken connection): it may have happened.
    NoReply(String),
}

/// One Maelstrom client `cK` talking to the nodes' bridges: sends a request body to a node and waits for the
/// reply that names its `msg_id`, with Maelstrom's request and reply bodies unchanged.
pub struct MaelstromCaller {
    name: String,
    addrs: Addrs,
    conns: BTreeMap<u64, TcpStream>,
    next_msg: u64,
}

impl MaelstromCaller {
    /// A new client (a new name) of the nodes whose bridges' client ports are `addrs`.
    pub fn new(addrs: Addrs) -> MaelstromCaller {
        let n = NEXT_CLIENT.fetch_add(1, Relaxed);
        MaelstromCaller {
            name: format!("c{n}"),
            addrs,
            conns: BTreeMap::new(),
            next_msg: 1,
        }
    }

    /// The client's Maelstrom name (`c3`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nodes it can reach.
    pub fn nodes(&self) -> Vec<u64> {
        self.addrs.keys().copied().collect()
    }

    /// Sends `body` (its `msg_id` is set here) to node `node` and waits up to `timeout` for the reply's body.
    pub async fn call(
        &mut self,
        node: u64,
        mut body: Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let msg_id = self.next_msg;
        self.next_msg += 1;
        body["msg_id"] = json!(msg_id);
        let msg = json!({"src": self.name, "dest": node_name(node), "body": body});
        let payload = serde_json::to_vec(&msg).expect("json");
        if !self.conns.contains_key(&node) {
            let Some(&addr) = self.addrs.get(&node) else {
                return Err(CallError::NotSent(format!(
                    "{} is not a node of this cluster",
                    node_name(node)
                )));
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(c)) => {
                    let _ = c.set_nodelay(true);
                    self.conns.insert(node, c);
                }
                Ok(Err(e)) => {
                    return Err(CallError::NotSent(format!(
                        "{} unreachable: {e}",
                        node_name(node)
                    )));
                }
                Err(_) => {
                    return Err(CallError::NotSent(format!(
                        "{} unreachable: connect timed out",
                        node_name(node)
                    )));
                }
            }
        }
        let conn = self.conns.get_mut(&node).expect("connected");
        let sent = async {
            conn.write_all(&(payload.len() as u32).to_be_bytes())
                .await?;
            conn.write_all(&payload).await
        };
        if let Err(e) = sent.await {
            self.conns.remove(&node);
            return Err(CallError::NoReply(format!(
                "sending to {}: {e}",
                node_name(node)
            )));
        }
        match tokio::time::timeout(timeout, read_reply(conn, msg_id)).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => {
                self.conns.remove(&node);
                Err(CallError::NoReply(format!(
                    "connection to {} broke: {e}",
                    node_name(node)
                )))
            }
            Err(_) => Err(CallError::NoReply(format!(
                "timeout: no reply from {} within {} ms",
                node_name(node),
                timeout.as_millis()
            ))),
        }
    }
}

/// One lin-kv client: sends each operation to the next node in turn, as Maelstrom's clients spread theirs.
pub struct MaelstromKv {
    caller: MaelstromCaller,
    turn: usize,
}

impl MaelstromKv {
    /// A new client of the nodes whose bridges' client ports are `addrs`.
    pub fn new(addrs: Addrs) -> MaelstromKv {
        let caller = MaelstromCaller::new(addrs);
        let turn = caller.name[1..].parse().unwrap_or(0);
        MaelstromKv { caller, turn }
    }

    /// The client's Maelstrom name (`c3`).
    pub fn name(&self) -> &str {
        self.caller.name()
    }

    async fn execute_inner(&mut self, req: KvRequest) -> KvOutcome {
        let ids = self.caller.nodes();
        if ids.is_empty() {
            return KvOutcome::Fail("no node to send to".into());
        }
        let node = ids[self.turn % ids.len()];
        self.turn += 1;
        let body = match &req {
            KvRequest::Read { key } => json!({"type": "read", "key": key}),
            KvRequest::Write { key, value } => {
                json!({"type": "write", "key": key, "value": number(value)})
            }
            KvRequest::Cas { key, from, to } => json!({
                "type": "cas", "key": key, "from": number(from), "to": number(to)
            }),
            KvRequest::Incr { .. } => {
                return KvOutcome::Fail(
                    "Maelstrom's lin-kv has no increment; use --workload lin-kv".into(),
                );
            }
        };
        match self.caller.call(node, body, REPLY_TIMEOUT).await {
            Ok(body) => outcome(&req, &body),
            Err(CallError::NotSent(e)) => KvOutcome::Fail(e),
            Err(CallError::NoReply(e)) => KvOutcome::Info(e),
        }
    }
}

/// What a reply (or its absence) means for an operation of Maelstrom's other workloads
/// ([`super::workload`]): an `error` with a definite code, or a request never sent, did not happen (`Fail`);
/// an indefinite code or no reply may have (`Info`); any other reply is the operation's answer.
pub fn workload_outcome(reply: Result<Value, CallError>) -> super::workload::Outcome {
    use super::workload::Outcome;
    match reply {
        Ok(body) if body["type"] == "error" => {
            let code = body["code"].as_u64();
            let said = body["text"].as_str().unwrap_or("");
            let (definite, name) = code.map_or((false, None), error_code);
            let what = format!(
                "error {} {}{}{said}",
                code.map_or("without a code".to_string(), |c| c.to_string()),
                name.unwrap_or("(custom)"),
                if said.is_empty() { "" } else { ": " }
            );
            if definite {
                Outcome::Fail(what)
            } else {
                Outcome::Info(what)
            }
        }
        Ok(body) => Outcome::Ok(body),
        Err(CallError::NotSent(e)) => Outcome::Fail(e),
        Err(CallError::NoReply(e)) => Outcome::Info(e),
    }
}

/// An integer as a JSON number (Maelstrom's lin-kv values are integers), anything else as a string.
fn number(v: &str) -> Value {
    v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n))
}

/// A JSON value as the workload's value text (`None` for null).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Reads frames until the reply to `msg_id`, skipping late replies to earlier (timed-out) requests.
async fn read_reply(conn: &mut TcpStream, msg_id: u64) -> std::io::Result<Value> {
    loop {
        let payload = read_frame(conn).await?;
        let Ok(v) = serde_json::from_slice::<Value>(&payload) else {
            continue;
        };
        if v["body"]["in_reply_to"].as_u64() == Some(msg_id) {
            return Ok(v["body"].clone());
        }
    }
}

async fn read_frame(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).await?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    conn.read_exact(&mut payload).await?;
    Ok(payload)
}

/// What a reply body means for the request, after Maelstrom's rules: an `error` with a definite code did not
/// happen (`Fail`), one with an indefinite code may have (`Info`); `key-does-not-exist` is a read of nothing
/// and a cas that found another value, `precondition-failed` a cas that found another value.
pub fn outcome(req: &KvRequest, body: &Value) -> KvOutcome {
    let kind = body["type"].as_str().unwrap_or("");
    match (req, kind) {
        (KvRequest::Read { .. }, "read_ok") => {
            KvOutcome::Done(KvAnswer::Value(text(&body["value"])))
        }
        (KvRequest::Write { .. }, "write_ok") => KvOutcome::Done(KvAnswer::Written),
        (KvRequest::Cas { .. }, "cas_ok") => KvOutcome::Done(KvAnswer::Swapped(true)),
        (_, "error") => {
            let code = body["code"].as_u64();
            let said = body["text"].as_str().unwrap_or("");
            match (req, code) {
                (KvRequest::Read { .. }, Some(20)) => KvOutcome::Done(KvAnswer::Value(None)),
                (KvRequest::Cas { .. }, Some(20 | 22)) => KvOutcome::Done(KvAnswer::Swapped(false)),
                (_, Some(c)) => {
                    let (definite, name) = error_code(c);
                    let what = format!(
                        "error {c} {}{}{said}",
                        name.unwrap_or("(custom)"),
                        if said.is_empty() { "" } else { ": " }
                    );
                    if definite {
                        KvOutcome::Fail(what)
                    } else {
                        KvOutcome::Info(what)
                    }
                }
                (_, None) => KvOutcome::Info(format!("an error without a code: {body}")),
            }
        }
        (_, other) => KvOutcome::Info(format!("unexpected reply type `{other}`")),
    }
}

impl KvClient for MaelstromKv {
    fn execute(&mut self, req: KvRequest) -> BoxFuture<'_, KvOutcome> {
        self.execute_inner(req).boxed()
    }
}

/// Reads a bridge's [`Status`]: its process id, and the role, term, leader and commit index the node told
/// squall through the destination `squall` (none of them when it never did); its malformed lines become
/// notes for the feed, at most one a [`NOTE_EVERY`].
pub struct MaelstromStatus {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<TcpStream>,
    notes: MalformedNotes,
}

/// How often a node's malformed lines may reach the feed (each is in its log regardless).
pub const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Turns a bridge's count of malformed lines into feed notes, at most one per [`NOTE_EVERY`], each saying
/// how many lines it stands for and how many there were in all.
#[derive(Debug, Default)]
pub struct MalformedNotes {
    /// (bridge pid, malformed lines already told of).
    told: Option<(u32, u64)>,
    last: Option<std::time::Instant>,
}

impl MalformedNotes {
    /// The note for status `s` read at `now`, if one is due.
    pub fn note(&mut self, s: &Status, now: std::time::Instant) -> Option<String> {
        let told = match self.told {
            // A new bridge process counts from zero again.
            Some((pid, n)) if pid == s.pid => n,
            _ => 0,
        };
        if s.malformed <= told
            || self
                .last
                .is_some_and(|at| now.duration_since(at) < NOTE_EVERY)
        {
            return None;
        }
        self.told = Some((s.pid, s.malformed));
        self.last = Some(now);
        let last = s.recent_malformed.last().map_or("", String::as_str);
        let new = s.malformed - told;
        Some(if new == 1 {
            format!(
                "{} wrote a malformed line, dropped ({} malformed lines in all): {last}",
                s.node, s.malformed
            )
        } else {
            format!(
                "{} wrote {new} malformed lines, dropped ({} malformed lines in all; each is in its log), the \
                 last: {last}",
                s.node, s.malformed
            )
        })
    }
}

/// The role a report names, as squall's type has it.
fn role(name: &str) -> Option<Role> {
    Some(match name {
        "leader" => Role::Leader,
        "follower" => Role::Follower,
        "candidate" => Role::Candidate,
        "pre-candidate" => Role::PreCandidate,
        _ => return None,
    })
}

/// The status report of a bridge's counters: the process, and what the node reported of itself.
pub fn report_of(s: &Status) -> StatusReport {
    let r = s.reported.clone().unwrap_or_default();
    StatusReport {
        pid: Some(s.pid),
        role: r.role.as_deref().and_then(role),
        term: r.term,
        leader: r.leader.map(|l| l.as_deref().and_then(node_id)),
        commit: r.commit,
        messages: Some(crate::check::brief::MessageCounts {
            received: s.received.clone(),
            sent: s.sent.clone(),
        }),
        ..StatusReport::default()
    }
}

impl MaelstromStatus {
    /// A source for the bridge whose client port is `addr`; every call has `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> MaelstromStatus {
        MaelstromStatus {
            addr,
            timeout,
            conn: None,
            notes: MalformedNotes::default(),
        }
    }

    /// The bridge's counters.
    pub async fn status(&mut self) -> Result<Status, String> {
        let timeout = self.timeout;
        let addr = self.addr;
        let conn = &mut self.conn;
        let got = tokio::time::timeout(timeout, async {
            if conn.is_none() {
                *conn = Some(TcpStream::connect(addr).await?);
            }
            let c = conn.as_mut().expect("connected");
            c.write_all(&(STATUS_REQUEST.len() as u32).to_be_bytes())
                .await?;
            c.write_all(STATUS_REQUEST).await?;
            read_frame(c).await
        })
        .await;
        let payload = match got {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(format!("bridge at {addr}: {e}"));
            }
            Err(_) => {
                self.conn = None;
                return Err(format!("bridge at {addr}: no answer within {timeout:?}"));
            }
        };
        serde_json::from_slice(&payload).map_err(|e| format!("bridge at {addr}: {e}"))
    }
}

impl StatusSource for MaelstromStatus {
    fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>> {
        async move {
            let s = self.status().await?;
            let mut report = report_of(&s);
            report
                .notes
                .extend(self.notes.note(&s, std::time::Instant::now()));
            Ok(report)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read() -> KvRequest {
        KvRequest::Read { key: "k".into() }
    }
    fn cas() -> KvRequest {
        KvRequest::Cas {
            key: "k".into(),
            from: "1".into(),
            to: "2".into(),
        }
    }
    fn write() -> KvRequest {
        KvRequest::Write {
            key: "k".into(),
            value: "1".into(),
        }
    }

    #[test]
    fn replies_map_to_outcomes_by_maelstrom_s_rules() {
        assert_eq!(
            outcome(&read(), &json!({"type": "read_ok", "value": 4})),
            KvOutcome::Done(KvAnswer::Value(Some("4".into())))
        );
        assert_eq!(
            outcome(&read(), &json!({"type": "error", "code": 20})),
            KvOutcome::Done(KvAnswer::Value(None))
        );
        assert_eq!(
            outcome(&cas(), &json!({"type": "error", "code": 22})),
            KvOutcome::Done(KvAnswer::Swapped(false))
        );
        assert_eq!(
            outcome(&cas(), &json!({"type": "cas_ok"})),
            KvOutcome::Done(KvAnswer::Swapped(true))
        );
        assert_eq!(
            outcome(&write(), &json!({"type": "write_ok"})),
            KvOutcome::Done(KvAnswer::Written)
        );
        // Definite: it did not happen.
        assert!(matches!(
            outcome(&write(), &json!({"type": "error", "code": 11, "text": "no leader"})),
            KvOutcome::Fail(e) if e == "error 11 temporarily-unavailable: no leader"
        ));
        // Indefinite: crash, timeout, any custom code.
        assert!(matches!(
            outcome(&write(), &json!({"type": "error", "code": 13})),
            KvOutcome::Info(_)
        ));
        assert!(matches!(
            outcome(&write(), &json!({"type": "error", "code": 0})),
            KvOutcome::Info(_)
        ));
        assert!(matches!(
            outcome(&write(), &json!({"type": "error", "code": 1005})),
            KvOutcome::Info(_)
        ));
        // A reply of another shape says nothing.
        assert!(matches!(
            outcome(&write(), &json!({"type": "read_ok"})),
            KvOutcome::Info(_)
        ));
    }

    #[test]
    fn a_node_s_report_fills_what_it_said_and_leaves_the_rest_unknown() {
        let mut s = Status {
            pid: 7,
            ..Status::default()
        };
        let r = report_of(&s);
        assert_eq!(
            (r.role, r.term, r.leader, r.commit),
            (None, None, None, None)
        );
        s.reported = Some(super::super::bridge::Reported {
            role: Some("leader".into()),
            term: Some(4),
            leader: Some(Some("n3".into())),
            commit: Some(12),
        });
        let r = report_of(&s);
        assert_eq!(
            (r.role, r.term, r.leader, r.commit, r.pid),
            (
                Some(Role::Leader),
                Some(4),
                Some(Some(3)),
                Some(12),
                Some(7)
            )
        );
        s.reported.as_mut().unwrap().leader = Some(None);
        assert_eq!(report_of(&s).leader, Some(None));
    }

    #[test]
    fn malformed_lines_reach_the_feed_at_most_once_a_second_and_counted() {
        let t0 = std::time::Instant::now();
        let mut notes = MalformedNotes::default();
        let mut s = Status {
            node: "n2".into(),
            pid: 9,
            ..Status::default()
        };
        assert_eq!(notes.note(&s, t0), None);
        s.malformed = 1;
        s.recent_malformed = vec!["unknown destination `n99`: {…}".into()];
        let first = notes.note(&s, t0).unwrap();
        assert!(
            first.starts_with("n2 wrote a malformed line, dropped (1 malformed lines in all)"),
            "{first}"
        );
        s.malformed = 40;
        assert_eq!(notes.note(&s, t0 + Duration::from_millis(500)), None);
        let next = notes.note(&s, t0 + Duration::from_millis(1_000)).unwrap();
        assert!(
            next.starts_with("n2 wrote 39 malformed lines, dropped (40 malformed lines in all"),
            "{next}"
        );
        assert_eq!(notes.note(&s, t0 + Duration::from_secs(5)), None);
        // A restarted bridge counts from zero.
        s.pid = 10;
        s.malformed = 2;
        let again = notes.note(&s, t0 + Duration::from_secs(6)).unwrap();
        assert!(again.starts_with("n2 wrote 2 malformed lines"), "{again}");
    }

    #[test]
    fn integer_values_travel_as_numbers() {
        assert_eq!(number("12"), json!(12));
        assert_eq!(number("x"), json!("x"));
        assert_eq!(text(&json!(12)), Some("12".into()));
        assert_eq!(text(&Value::Null), None);
    }
}
