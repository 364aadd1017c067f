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
use super::{error_code, node_name};
use crate::kind::drivers::{
    Addrs, KvAnswer, KvClient, KvOutcome, KvRequest, StatusReport, StatusSource,
};

/// How long a client waits for a reply before it records the operation as indefinite.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long connecting to a bridge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Client names are `c1`, `c2`, … across the whole squall process, never reused (a client that saw an
/// indefinite outcome continues as a new one).
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// One Maelstrom client `cK`: sends each operation to the next node in turn, as Maelstrom's clients spread
/// theirs, and waits for the reply that names its `msg_id`.
pub struct MaelstromKv {
    name: String,
    addrs: Addrs,
    conns: BTreeMap<u64, TcpStream>,
    next_msg: u64,
    turn: usize,
}

impl MaelstromKv {
    /// A new client of the nodes whose bridges' client ports are `addrs`.
    pub fn new(addrs: Addrs) -> MaelstromKv {
        let n = NEXT_CLIENT.fetch_add(1, Relaxed);
        MaelstromKv {
            name: format!("c{n}"),
            addrs,
            conns: BTreeMap::new(),
            next_msg: 1,
            turn: n as usize,
        }
    }

    /// The client's Maelstrom name (`c3`).
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn execute_inner(&mut self, req: KvRequest) -> KvOutcome {
        let ids: Vec<u64> = self.addrs.keys().copied().collect();
        if ids.is_empty() {
            return KvOutcome::Fail("no node to send to".into());
        }
        let node = ids[self.turn % ids.len()];
        self.turn += 1;
        let msg_id = self.next_msg;
        self.next_msg += 1;
        let body = match &req {
            KvRequest::Read { key } => json!({"type": "read", "msg_id": msg_id, "key": key}),
            KvRequest::Write { key, value } => {
                json!({"type": "write", "msg_id": msg_id, "key": key, "value": number(value)})
            }
            KvRequest::Cas { key, from, to } => json!({
                "type": "cas", "msg_id": msg_id, "key": key, "from": number(from), "to": number(to)
            }),
            KvRequest::Incr { .. } => {
                return KvOutcome::Fail(
                    "Maelstrom's lin-kv has no increment; use --workload lin-kv".into(),
                );
            }
        };
        let msg = json!({"src": self.name, "dest": node_name(node), "body": body});
        let payload = serde_json::to_vec(&msg).expect("json");
        if !self.conns.contains_key(&node) {
            let addr = self.addrs[&node];
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(c)) => {
                    let _ = c.set_nodelay(true);
                    self.conns.insert(node, c);
                }
                // Nothing was sent: the operation did not happen.
                Ok(Err(e)) => {
                    return KvOutcome::Fail(format!("{} unreachable: {e}", node_name(node)));
                }
                Err(_) => {
                    return KvOutcome::Fail(format!(
                        "{} unreachable: connect timed out",
                        node_name(node)
                    ));
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
            return KvOutcome::Info(format!("sending to {}: {e}", node_name(node)));
        }
        let reply = tokio::time::timeout(REPLY_TIMEOUT, read_reply(conn, msg_id)).await;
        match reply {
            Ok(Ok(body)) => outcome(&req, &body),
            Ok(Err(e)) => {
                self.conns.remove(&node);
                KvOutcome::Info(format!("connection to {} broke: {e}", node_name(node)))
            }
            Err(_) => KvOutcome::Info(format!(
                "timeout: no reply from {} within {} ms",
                node_name(node),
                REPLY_TIMEOUT.as_millis()
            )),
        }
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

/// Reads a bridge's [`Status`]: the process id is all a Maelstrom node's status has of the fields squall
/// draws.
pub struct MaelstromStatus {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<TcpStream>,
}

impl MaelstromStatus {
    /// A source for the bridge whose client port is `addr`; every call has `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> MaelstromStatus {
        MaelstromStatus {
            addr,
            timeout,
            conn: None,
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
            Ok(StatusReport {
                pid: Some(s.pid),
                ..StatusReport::default()
            })
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
    fn integer_values_travel_as_numbers() {
        assert_eq!(number("12"), json!(12));
        assert_eq!(number("x"), json!("x"));
        assert_eq!(text(&json!(12)), Some("12".into()));
        assert_eq!(text(&Value::Null), None);
    }
}
