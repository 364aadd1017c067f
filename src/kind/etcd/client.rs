//! A client for etcd's v3 API through its JSON gateway: the lin-kv reads, writes and compare-and-sets, member
//! status, and membership changes.
//!
//! Why the JSON gateway and not gRPC: every etcd 3.4 member serves it on the client port (`/v3/kv/range`,
//! `/v3/kv/txn`, `/v3/maintenance/status`, `/v3/cluster/member/*`), it is plain HTTP/1.1 and JSON, and the
//! requests squall needs are a handful of small messages. gRPC would need `tonic`, `prost`, HTTP/2 and code
//! generated from etcd's `.proto` files: several times the build on this project's two-core machines, for no
//! behaviour the checker can see. The answers are the same protobuf messages in JSON (64-bit integers as
//! strings, bytes as base64, proto field names).
//!
//! Why `hyper` (1.x, `client` + `http1`, with `hyper-util`'s tokio adapter and `http-body-util`): it is the HTTP
//! implementation under reqwest and axum, MIT-licensed, maintained by the tokio project, and its HTTP/1.1 client
//! connection is all this needs; reqwest would add a connection pool, TLS stacks and redirects squall does not
//! use, and a blocking client (ureq) would need a thread per call in squall's async cluster layer.
//!
//! Errors tell the checker what it may assume ([`EtcdError`]): [`EtcdError::Fail`] only when the operation is
//! known not to have taken effect (a compare that did not hold, a connection never made, an error etcd gives
//! before proposing the request, or any failed read, which changes nothing); everything else, timeouts, resets,
//! "leader changed" and "request timed out" among them, is [`EtcdError::Info`]: etcd may have applied the
//! write anyway (etcd-io/etcd#14890 and #18424 show writes applied after the client saw an error).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What a failed operation means for the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// Known not to have taken effect: the history records `fail`.
    #[error("{op} on {addr} did not happen: {reason}")]
    Fail {
        /// The operation (`get`, `put`, `cas`, `status`, `member add`, …).
        op: &'static str,
        /// The member's client address.
        addr: SocketAddr,
        /// What etcd or the connection said.
        reason: String,
    },
    /// May or may not have taken effect: the history records `info`.
    #[error("{op} on {addr} has an unknown outcome: {reason}")]
    Info {
        /// The operation.
        op: &'static str,
        /// The member's client address.
        addr: SocketAddr,
        /// What etcd or the connection said.
        reason: String,
    },
}

impl EtcdError {
    /// Whether the operation is known not to have happened.
    pub fn is_fail(&self) -> bool {
        matches!(self, EtcdError::Fail { .. })
    }
}

/// One member's status, as `/v3/maintenance/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdStatus {
    /// This member's id.
    pub member_id: u64,
    /// The leader's member id as this member knows it; `None` while it knows none.
    pub leader: Option<u64>,
    /// Raft term.
    pub term: u64,
    /// Raft index: the last entry this member has (etcd reports no commit index).
    pub raft_index: u64,
    /// Raft applied index.
    pub applied: u64,
    /// Whether this member is a learner.
    pub is_learner: bool,
    /// The server's version.
    pub version: String,
}

/// A cluster member, as the member API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// Name (empty for a member added but not yet started).
    pub name: String,
    /// Peer URLs (the proxies', under squall).
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until started).
    pub client_urls: Vec<String>,
    /// A learner (non-voting) member.
    pub is_learner: bool,
}

/// What a call came back with, before the operation decides what it means.
#[derive(Debug)]
enum CallError {
    /// The connection could not be made: nothing was sent.
    NotSent(String),
    /// Sent, or maybe sent, with no answer.
    NoAnswer(String),
    /// etcd answered with an error: gRPC status code and message.
    Refused { code: i64, message: String },
}

/// A client of one etcd member's JSON gateway. Keeps one HTTP/1.1 connection and makes a new one after an error.
#[derive(Debug)]
pub struct EtcdClient {
    addr: SocketAddr,
    timeout: Duration,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl EtcdClient {
    /// A client of the member whose client URL is `http://addr`; every call gives up after `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> EtcdClient {
        EtcdClient {
            addr,
            timeout,
            conn: Mutex::new(None),
        }
    }

    /// The member's client address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads `key` (linearizable): its value, or `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<String>, EtcdError> {
        let op = "get";
        let v = self
            .call("/v3/kv/range", json!({ "key": B64.encode(key) }))
            .await
            .map_err(|e| self.judge(op, Kind::Read, e))?;
        let Some(kv) = v["kvs"].as_array().and_then(|k| k.first()) else {
            return Ok(None);
        };
        Ok(Some(self.text(op, &kv["value"])?))
    }

    /// Writes `value` to `key`.
    pub async fn put(&self, key: &str, value: &str) -> Result<(), EtcdError> {
        self.call(
            "/v3/kv/put",
            json!({ "key": B64.encode(key), "value": B64.encode(value) }),
        )
        .await
        .map_err(|e| self.judge("put", Kind::Write, e))?;
        Ok(())
    }

    /// Sets `key` to `new` if its value is `expected` (`None`: if the key does not exist, compared as
    /// `create_revision = 0`), in one transaction. A compare that did not hold is [`EtcdError::Fail`].
    pub async fn cas(&self, key: &str, expected: Option<&str>, new: &str) -> Result<(), EtcdError> {
        let op = "cas";
        let k = B64.encode(key);
        let compare = match expected {
            Some(e) => {
                json!({ "key": k, "result": "EQUAL", "target": "VALUE", "value": B64.encode(e) })
            }
            None => {
                json!({ "key": k, "result": "EQUAL", "target": "CREATE", "create_revision": "0" })
            }
        };
        let v = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [compare],
                    "success": [{ "request_put": { "key": k, "value": B64.encode(new) } }],
                }),
            )
            .await
            .map_err(|e| self.judge(op, Kind::Write, e))?;
        // proto3 JSON leaves `false` out.
        if v["succeeded"].as_bool() == Some(true) {
            Ok(())
        } else {
            Err(EtcdError::Fail {
                op,
                addr: self.addr,
                reason: format!(
                    "the value was not {}",
                    expected.map_or("absent".to_string(), |e| format!("{e:?}"))
                ),
            })
        }
    }

    /// This member's status.
    pub async fn status(&self) -> Result<EtcdStatus, EtcdError> {
        let op = "status";
        let v = self
            .call("/v3/maintenance/status", json!({}))
            .await
            .map_err(|e| self.judge(op, Kind::Read, e))?;
        let leader = num(&v["leader"]);
        Ok(EtcdStatus {
            member_id: num(&v["header"]["member_id"]),
            leader: (leader != 0).then_some(leader),
            term: num(&v["raftTerm"]),
            raft_index: num(&v["raftIndex"]),
            applied: num(&v["raftAppliedIndex"]),
            is_learner: v["isLearner"].as_bool().unwrap_or(false),
            version: v["version"].as_str().unwrap_or("").to_string(),
        })
    }

    /// The cluster's members.
    pub async fn members(&self) -> Result<Vec<Member>, EtcdError> {
        let v = self
            .call("/v3/cluster/member/list", json!({}))
            .await
            .map_err(|e| self.judge("member list", Kind::Read, e))?;
        Ok(members(&v["members"]))
    }

    /// Adds a member that will listen on `peer_urls` (as a learner if `learner`); returns it (with the id to
    /// put in the sender table) and the members after the change.
    pub async fn member_add(
        &self,
        peer_urls: &[String],
        learner: bool,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        let op = "member add";
        let v = self
            .call(
                "/v3/cluster/member/add",
                json!({ "peerURLs": peer_urls, "isLearner": learner }),
            )
            .await
            .map_err(|e| self.judge(op, Kind::Write, e))?;
        let added = members(&Value::Array(vec![v["member"].clone()]))
            .pop()
            .ok_or_else(|| EtcdError::Info {
                op,
                addr: self.addr,
                reason: format!("the answer names no member: {v}"),
            })?;
        Ok((added, members(&v["members"])))
    }

    /// Promotes learner `id` to a voting member.
    pub async fn member_promote(&self, id: u64) -> Result<Vec<Member>, EtcdError> {
        let v = self
            .call(
                "/v3/cluster/member/promote",
                json!({ "ID": id.to_string() }),
            )
            .await
            .map_err(|e| self.judge("member promote", Kind::Write, e))?;
        Ok(members(&v["members"]))
    }

    /// Removes member `id`.
    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>, EtcdError> {
        let v = self
            .call("/v3/cluster/member/remove", json!({ "ID": id.to_string() }))
            .await
            .map_err(|e| self.judge("member remove", Kind::Write, e))?;
        Ok(members(&v["members"]))
    }

    fn text(&self, op: &'static str, v: &Value) -> Result<String, EtcdError> {
        let raw = B64
            .decode(v.as_str().unwrap_or(""))
            .map_err(|e| EtcdError::Fail {
                op,
                addr: self.addr,
                reason: format!("the value is not base64: {e}"),
            })?;
        String::from_utf8(raw).map_err(|e| EtcdError::Fail {
            op,
            addr: self.addr,
            reason: format!("the value is not UTF-8: {e}"),
        })
    }

    fn judge(&self, op: &'static str, kind: Kind, e: CallError) -> EtcdError {
        let (definite, reason) = classify(kind, &e);
        if definite {
            EtcdError::Fail {
                op,
                addr: self.addr,
                reason,
            }
        } else {
            EtcdError::Info {
                op,
                addr: self.addr,
                reason,
            }
        }
    }

    /// One POST with a JSON body; the JSON answer, or why there is none.
    async fn call(&self, path: &str, body: Value) -> Result<Value, CallError> {
        let mut conn = self.conn.lock().await;
        let res = tokio::time::timeout(self.timeout, self.exchange(&mut conn, path, body)).await;
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if !matches!(e, CallError::Refused { .. }) {
                    *conn = None;
                }
                Err(e)
            }
            Err(_) => {
                *conn = None;
                Err(CallError::NoAnswer(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            }
        }
    }

    async fn exchange(
        &self,
        conn: &mut Option<SendRequest<Full<Bytes>>>,
        path: &str,
        body: Value,
    ) -> Result<Value, CallError> {
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| CallError::NotSent(format!("cannot connect: {e}")))?;
            let _ = stream.set_nodelay(true);
            let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| CallError::NotSent(format!("HTTP handshake failed: {e}")))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            *conn = Some(send);
        }
        let send = conn.as_mut().expect("connected above");
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::NotSent(format!("bad request: {e}")))?;
        send.ready()
            .await
            .map_err(|e| CallError::NoAnswer(format!("connection lost: {e}")))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| CallError::NoAnswer(format!("connection lost: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::NoAnswer(format!("answer cut short: {e}")))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            CallError::NoAnswer(format!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        if status.is_success() && v.get("error").is_none() {
            Ok(v)
        } else {
            Err(CallError::Refused {
                code: v["code"].as_i64().unwrap_or(-1),
                message: v["message"]
                    .as_str()
                    .or(v["error"].as_str())
                    .unwrap_or("")
                    .to_string(),
            })
        }
    }
}

/// Whether an operation can change the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// Errors etcd gives before a request is proposed, or that make its apply a no-op, so it did not happen.
const NOT_PROPOSED: &[&str] = &[
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: no space",
    "etcdserver: not capable",
    "etcdserver: permission denied",
    "etcdserver: user name is empty",
    "etcdserver: invalid auth token",
    "etcdserver: authentication failed",
    "etcdserver: Peer URLs already exists",
    "etcdserver: member not found",
    "etcdserver: member ID already exist",
    "etcdserver: can only promote a learner member",
    "etcdserver: can only promote a learner member which is in sync with leader",
    "etcdserver: too many learner members in cluster",
    // A member change refused by the reconfiguration check (a member not connected long enough, or the
    // change would leave too few started members), before anything is proposed.
    "etcdserver: unhealthy cluster",
];

/// gRPC codes that etcd only gives when nothing was proposed: InvalidArgument (also the gateway's own
/// "cannot parse"), PermissionDenied, Unimplemented, Unauthenticated.
const NOT_PROPOSED_CODES: &[i64] = &[3, 7, 12, 16];

/// Whether the operation is known not to have happened, and the reason for a person.
fn classify(kind: Kind, e: &CallError) -> (bool, String) {
    match e {
        CallError::NotSent(why) => (true, why.clone()),
        // A read changes nothing, so one whose outcome is unknown is as if it never happened.
        CallError::NoAnswer(why) => (kind == Kind::Read, why.clone()),
        CallError::Refused { code, message } => {
            let definite = kind == Kind::Read
                || NOT_PROPOSED.iter().any(|m| message.starts_with(m))
                || NOT_PROPOSED_CODES.contains(code);
            (definite, format!("{message} (code {code})"))
        }
    }
}

/// A JSON number or numeric string (proto3 JSON writes 64-bit integers as strings); 0 when absent.
fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn members(v: &Value) -> Vec<Member> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m.is_object())
                .map(|m| Member {
                    id: num(&m["ID"]),
                    name: m["name"].as_str().unwrap_or("").to_string(),
                    peer_urls: strings(&m["peerURLs"]),
                    client_urls: strings(&m["clientURLs"]),
                    is_learner: m["isLearner"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: i64, message: &str) -> CallError {
        CallError::Refused {
            code,
            message: message.to_string(),
        }
    }

    #[test]
    fn only_errors_known_to_precede_the_proposal_are_fail_for_writes() {
        let fail = [
            CallError::NotSent("cannot connect: Connection refused".into()),
            refused(8, "etcdserver: too many requests"),
            refused(3, "etcdserver: request is too large"),
            refused(3, "unexpected EOF"),
            refused(7, "etcdserver: permission denied"),
            // A member change refused by etcd's reconfiguration check, before it proposes anything.
            refused(14, "etcdserver: unhealthy cluster"),
            refused(8, "etcdserver: mvcc: database space exceeded"),
        ];
        // The last one is ResourceExhausted with a message not in the list: unknown after all.
        for (i, e) in fail.iter().enumerate() {
            let (definite, reason) = classify(Kind::Write, e);
            assert_eq!(definite, i < 6, "{reason}");
        }
        let info = [
            CallError::NoAnswer("no answer within 1s".into()),
            CallError::NoAnswer("connection lost: connection reset by peer".into()),
            refused(14, "etcdserver: leader changed"),
            refused(14, "etcdserver: request timed out"),
            refused(14, "etcdserver: no leader"),
            refused(
                14,
                "etcdserver: request timed out, possibly due to connection lost",
            ),
            refused(2, "etcdserver: server stopped"),
            refused(4, "context deadline exceeded"),
        ];
        for e in &info {
            let (definite, reason) = classify(Kind::Write, e);
            assert!(!definite, "a write with {reason} may have happened");
        }
    }

    #[test]
    fn a_read_that_failed_in_any_way_did_not_happen() {
        for e in [
            CallError::NoAnswer("no answer within 1s".into()),
            refused(14, "etcdserver: leader changed"),
        ] {
            assert!(classify(Kind::Read, &e).0);
        }
    }

    #[test]
    fn numbers_come_as_strings_or_numbers() {
        assert_eq!(num(&json!("13668033151171901709")), 13668033151171901709);
        assert_eq!(num(&json!(7)), 7);
        assert_eq!(num(&Value::Null), 0);
    }

    #[test]
    fn members_are_read_from_the_list_answer() {
        let v = json!([{ "ID": "12", "name": "n1", "peerURLs": ["http://127.0.0.1:1"],
                         "clientURLs": [], "isLearner": true }]);
        let m = members(&v);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].id, m[0].is_learner, m[0].name.as_str()),
            (12, true, "n1")
        );
    }
}
