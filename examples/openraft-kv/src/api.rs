//! The HTTP API, JSON in and out.
//!
//! - `GET /status`: `{"id", "role", "term", "leader", "commit", "applied", "last_log_index", "vote":
//!   {"term", "node", "committed"}, "members", "learners", "committed_members", "committed_learners", "pid"}`
//!   (`members`, `learners`: the voters' and learners' ids in the effective configuration, the latest in the
//!   log, committed or not; `committed_*`: in the latest committed one); `role` is `leader`, `follower`,
//!   `candidate`, `learner` or `shutdown`; absent values are `null`.
//! - `POST /read {"key"}` → `200 {"value": V or null}`; `POST /write {"key", "value"}` → `200 {}`;
//!   `POST /cas {"key", "from", "to"}` → `200 {"swapped": BOOL}` (`false`: the key held another value and
//!   nothing changed).
//!
//! Membership, asked of the leader (openraft's `add_learner` and `change_membership`; each answers once the
//! change is committed), bodies `{"id"}` (a number or a string of digits):
//! - `POST /add-learner {"id", "addr"}`: add node `id` as a learner, reached at `addr` (HOST:PORT, which
//!   this node dials from now on), and wait until it has caught up;
//! - `POST /promote {"id"}`: make learner `id` a voter; `POST /demote {"id"}`: make voter `id` a learner;
//! - `POST /remove {"id"}`: take node `id` (voter or learner) out of the configuration;
//! - `POST /peer {"id", "addr"}` (any node): node `id` is reached at `addr` from now on.
//!
//! Each answers `200 {"log_index"}` once committed (`/peer`: `200 {}`), `409 {"error"}` when the
//! configuration already is so (nothing was done), `421` when not the leader, `503` when another change is
//! under way, `400` when it cannot be (the last voter, a node that is not a learner), and `500`/`504` when
//! its outcome is unknown.
//!
//! Errors say whether the operation happened:
//! - `421 {"error", "leader"}`: this node is not the leader; nothing was done (try `leader`, a node id or
//!   `null`).
//! - `503 {"error"}`: a read that could not confirm leadership; reads change nothing, so nothing was done.
//! - `500 {"error"}` / `504 {"error"}`: a write or cas whose outcome is unknown — it was proposed and may
//!   commit later (leadership lost with it in flight, or no answer in time).
//! - `400 {"error"}`: a request body that is not the JSON asked for; nothing was done.

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request as HttpRequest, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use openraft::ServerState;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::Raft;
use crate::sm::{Request, StateMachine};
use crate::store::LogStore;

/// What the API needs of the node.
#[derive(Clone)]
pub struct Node {
    pub id: u64,
    pub raft: Raft,
    pub log: LogStore,
    pub sm: StateMachine,
    /// Where this node reaches each peer (set by `/peer` and `/add-learner`).
    pub peers: crate::net::Peers,
    /// How long a write waits for its entry to commit and apply before answering "unknown".
    pub write_timeout: Duration,
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, node: Node) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let node = node.clone();
                async move { Ok::<_, Infallible>(handle(&node, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(code: StatusCode, body: Value) -> HttpResponse<Full<Bytes>> {
    HttpResponse::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

#[derive(Deserialize)]
struct ReadBody {
    key: String,
}

#[derive(Deserialize)]
struct WriteBody {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct CasBody {
    key: String,
    from: String,
    to: String,
}

async fn handle(node: &Node, req: HttpRequest<Incoming>) -> HttpResponse<Full<Bytes>> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
    };
    match (method, path.as_str()) {
        (Method::GET, "/status") => reply(StatusCode::OK, status(node).await),
        (Method::POST, "/read") => match serde_json::from_slice::<ReadBody>(&body) {
            Ok(b) => read(node, b.key).await,
            Err(e) => bad_body("{\"key\"}", e),
        },
        (Method::POST, "/write") => match serde_json::from_slice::<WriteBody>(&body) {
            Ok(b) => {
                write(
                    node,
                    Request::Write {
                        key: b.key,
                        value: b.value,
                    },
                )
                .await
            }
            Err(e) => bad_body("{\"key\", \"value\"}", e),
        },
        (Method::POST, "/cas") => match serde_json::from_slice::<CasBody>(&body) {
            Ok(b) => {
                write(
                    node,
                    Request::Cas {
                        key: b.key,
                        from: b.from,
                        to: b.to,
                    },
                )
                .await
            }
            Err(e) => bad_body("{\"key\", \"from\", \"to\"}", e),
        },
        (Method::POST, op @ ("/add-learner" | "/promote" | "/demote" | "/remove" | "/peer")) => {
            match serde_json::from_slice::<MemberBody>(&body) {
                Ok(b) => membership(node, op, b).await,
                Err(e) => reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("the body must be a JSON object {{\"id\"}} (with \"addr\" for /add-learner and /peer): {e}")}),
                ),
            }
        }
        (m, p) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no {m} {p}; see GET /status, POST /read, /write, /cas, /add-learner, /promote, /demote, /remove, /peer")}),
        ),
    }
}

fn bad_body(shape: &str, e: serde_json::Error) -> HttpResponse<Full<Bytes>> {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("the body must be a JSON object {shape} of strings: {e}")}),
    )
}

async fn status(node: &Node) -> Value {
    let m = node.raft.metrics().borrow().clone();
    // The configuration whose entry is committed, as this node knows it (openraft's metrics carry only the
    // effective one, which may be an entry a new leader still truncates).
    let committed = node
        .raft
        .with_raft_state(|st| {
            let c = st.membership_state.committed();
            (
                c.voter_ids().collect::<Vec<u64>>(),
                c.membership().learner_ids().collect::<Vec<u64>>(),
            )
        })
        .await
        .ok();
    let role = match m.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    let vote = node.log.vote().map(|v| {
        json!({
            "term": v.leader_id.term,
            "node": v.leader_id.voted_for(),
            "committed": v.committed,
        })
    });
    let commit = node
        .log
        .committed
        .load(std::sync::atomic::Ordering::Relaxed);
    let members: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let learners: Vec<u64> = m.membership_config.membership().learner_ids().collect();
    json!({
        "id": node.id,
        "role": role,
        "term": m.current_term,
        "leader": m.current_leader,
        // What openraft last told the store (save_committed); 0 until it has, as after a restart (the commit
        // index is volatile in Raft).
        "commit": commit,
        "applied": m.last_applied.map(|l| l.index),
        "last_log_index": m.last_log_index,
        "vote": vote,
        "members": members,
        "learners": learners,
        "committed_members": committed.as_ref().map(|c| &c.0),
        "committed_learners": committed.as_ref().map(|c| &c.1),
        "pid": std::process::id(),
    })
}

fn not_leader(node: &Node) -> HttpResponse<Full<Bytes>> {
    let leader = node.raft.metrics().borrow().current_leader;
    reply(
        StatusCode::MISDIRECTED_REQUEST,
        json!({"error": "not the leader", "leader": leader}),
    )
}

async fn read(node: &Node, key: String) -> HttpResponse<Full<Bytes>> {
    match node.raft.ensure_linearizable().await {
        Ok(_) => {
            let value = node.sm.data.read().unwrap().kv.get(&key).cloned();
            reply(StatusCode::OK, json!({ "value": value }))
        }
        Err(e) => match e.forward_to_leader::<openraft::BasicNode>() {
            Some(_) => not_leader(node),
            None => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": format!("read not served: {e}")}),
            ),
        },
    }
}

async fn write(node: &Node, req: Request) -> HttpResponse<Full<Bytes>> {
    // Only a node that believes it leads proposes; a follower's refusal is certain (nothing proposed).
    if node.raft.metrics().borrow().current_leader != Some(node.id) {
        return not_leader(node);
    }
    match tokio::time::timeout(node.write_timeout, node.raft.client_write(req)).await {
        Ok(Ok(resp)) => match resp.data.swapped {
            Some(swapped) => reply(StatusCode::OK, json!({ "swapped": swapped })),
            None => reply(StatusCode::OK, json!({})),
        },
        // From here the entry may have been appended: a ForwardToLeader after a truncation, or a stop,
        // leaves copies on other nodes that a later leader can still commit. Unknown, never "failed".
        Ok(Err(e)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": format!("outcome unknown: {e}")}),
        ),
        Err(_) => reply(
            StatusCode::GATEWAY_TIMEOUT,
            json!({"error": format!("outcome unknown: no commit within {:?}", node.write_timeout)}),
        ),
    }
}

#[derive(Deserialize)]
struct MemberBody {
    id: Value,
    addr: Option<String>,
}

/// How long a membership change may take: an add waits for the learner to catch up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

type ChangeResult = Result<
    openraft::raft::ClientWriteResponse<crate::TypeConfig>,
    openraft::error::RaftError<u64, openraft::error::ClientWriteError<u64, openraft::BasicNode>>,
>;

fn refuse(code: StatusCode, why: String) -> HttpResponse<Full<Bytes>> {
    reply(code, json!({ "error": why }))
}

/// `/add-learner`, `/promote`, `/demote`, `/remove`, `/peer` (see the module docs).
async fn membership(node: &Node, op: &str, b: MemberBody) -> HttpResponse<Full<Bytes>> {
    let id =
        b.id.as_u64()
            .or_else(|| b.id.as_str()?.trim().parse().ok())
            .filter(|&id| id > 0);
    let Some(id) = id else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("`id` must be a node id (a positive integer), not {}", b.id),
        );
    };
    let addr = match (op, b.addr) {
        ("/add-learner" | "/peer", None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("{op} needs `addr`, the HOST:PORT node {id} is reached at"),
            );
        }
        (_, a) => a,
    };
    if op == "/peer" {
        node.peers
            .write()
            .unwrap()
            .insert(id, addr.unwrap_or_default());
        return reply(StatusCode::OK, json!({}));
    }
    let m = node.raft.metrics().borrow().clone();
    if m.current_leader != Some(node.id) {
        return not_leader(node);
    }
    let config = m.membership_config.membership();
    let voter = config.voter_ids().any(|v| v == id);
    let learner = config.learner_ids().any(|l| l == id);
    let raft = &node.raft;
    let result: ChangeResult = match op {
        "/add-learner" => {
            if voter || learner {
                return refuse(
                    StatusCode::CONFLICT,
                    format!("node {id} is already a member"),
                );
            }
            let addr = addr.unwrap_or_default();
            node.peers.write().unwrap().insert(id, addr.clone());
            match tokio::time::timeout(
                CHANGE_TIMEOUT,
                raft.add_learner(id, openraft::BasicNode::new(addr), true),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => return change_timed_out(),
            }
        }
        "/promote" | "/demote" | "/remove" => {
            let change = match op {
                "/promote" if voter => {
                    return refuse(
                        StatusCode::CONFLICT,
                        format!("node {id} is already a voter"),
                    );
                }
                "/promote" if !learner => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        format!("node {id} is not a learner: add it first"),
                    );
                }
                "/promote" => openraft::ChangeMembers::AddVoterIds([id].into()),
                "/demote" if learner => {
                    return refuse(
                        StatusCode::CONFLICT,
                        format!("node {id} is already a learner"),
                    );
                }
                "/demote" if !voter => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        format!("node {id} is not a member"),
                    );
                }
                "/demote" => openraft::ChangeMembers::RemoveVoters([id].into()),
                _ if voter => openraft::ChangeMembers::RemoveVoters([id].into()),
                _ if learner => openraft::ChangeMembers::RemoveNodes([id].into()),
                _ => {
                    return refuse(StatusCode::CONFLICT, format!("node {id} is not a member"));
                }
            };
            // `retain`: a demoted voter stays as a learner; a removed one leaves.
            let retain = op == "/demote";
            match tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership(change, retain)).await
            {
                Ok(r) => r,
                Err(_) => return change_timed_out(),
            }
        }
        _ => unreachable!("routed above"),
    };
    change_answer(node, result)
}

fn change_timed_out() -> HttpResponse<Full<Bytes>> {
    refuse(
        StatusCode::GATEWAY_TIMEOUT,
        format!("outcome unknown: not committed within {CHANGE_TIMEOUT:?}"),
    )
}

fn change_answer(node: &Node, result: ChangeResult) -> HttpResponse<Full<Bytes>> {
    use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
    match result {
        Ok(resp) => reply(StatusCode::OK, json!({ "log_index": resp.log_id.index })),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => not_leader(node),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => match e {
            ChangeMembershipError::InProgress(_) => {
                refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            _ => refuse(StatusCode::BAD_REQUEST, e.to_string()),
        },
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("outcome unknown: {e}"),
        ),
    }
}
