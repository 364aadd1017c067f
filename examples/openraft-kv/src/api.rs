//! The HTTP API, JSON in and out.
//!
//! - `GET /status`: `{"id", "role", "term", "leader", "commit", "applied", "last_log_index", "vote":
//!   {"term", "node", "committed"}, "members", "pid"}`; `role` is `leader`, `follower`, `candidate`,
//!   `learner` or `shutdown`; absent values are `null`.
//! - `POST /read {"key"}` → `200 {"value": V or null}`; `POST /write {"key", "value"}` → `200 {}`;
//!   `POST /cas {"key", "from", "to"}` → `200 {"swapped": BOOL}` (`false`: the key held another value and
//!   nothing changed).
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
        (Method::GET, "/status") => reply(StatusCode::OK, status(node)),
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
        (m, p) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no {m} {p}; see GET /status, POST /read, /write, /cas")}),
        ),
    }
}

fn bad_body(shape: &str, e: serde_json::Error) -> HttpResponse<Full<Bytes>> {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"error": format!("the body must be a JSON object {shape} of strings: {e}")}),
    )
}

fn status(node: &Node) -> Value {
    let m = node.raft.metrics().borrow().clone();
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
