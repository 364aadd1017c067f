//! The Paxos node's transport: one sender task per peer that batches the core's messages into
//! [`PaxosPeerService`](crate::rpc::PaxosPeerService) calls, the peer listener that hands incoming batches to
//! the actor, and the API port (the same client and control services as a Raft node, those a Paxos node has).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::paxos::Message;
use crate::raft::{MembershipError, NodeId};
use crate::rpc::{
    self, ClientServiceRequest, ClientServiceResponse, ControlServiceRequest,
    ControlServiceResponse, EventBatch, KvReply, PaxosPeerServiceClient, PaxosPeerServiceRequest,
    PaxosPeerServiceResponse, PeerError,
};
use crate::transport::{self, deadline};

use super::super::api::{API_JUNK, Answer, PEER_JUNK, Responder, await_actor, serve_in_order};
use super::Cmd;

/// Most messages in one call.
const MAX_BATCH: usize = 256;

/// Sends the core's messages to one peer. What queued at once goes out in calls of one message kind each (so a
/// frame's kind, which the link proxy filters on, is every message's kind), each call in a task of its own:
/// Paxos needs no order between messages, and a call held or lost on the link never holds up the next. Paxos
/// tolerates loss, so a failed call is dropped (the core sends again what matters) and the connection rebuilt,
/// and what queued while it could not be rebuilt is dropped too.
pub(super) async fn peer_sender(
    peer: NodeId,
    addr: SocketAddr,
    cluster: String,
    from: NodeId,
    rpc_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    let mut client: Option<PaxosPeerServiceClient> = None;
    let broken = Arc::new(AtomicBool::new(false));
    let mut backoff = Duration::from_millis(20);
    while let Some(first) = rx.recv().await {
        let mut queued = vec![first];
        while queued.len() < MAX_BATCH
            && let Ok(m) = rx.try_recv()
        {
            queued.push(m);
        }
        if broken.swap(false, Ordering::Relaxed) {
            // tarpc does not reconnect on its own.
            client = None;
        }
        if client.is_none() {
            match transport::dial(addr, rpc_timeout).await {
                Ok(stream) => {
                    backoff = Duration::from_millis(20);
                    client = Some(
                        PaxosPeerServiceClient::new(
                            tarpc::client::Config::default(),
                            transport::framed(stream),
                        )
                        .spawn(),
                    );
                }
                Err(e) => {
                    tracing::debug!(peer, %addr, "cannot reach peer: {e}");
                    // A pause before the next attempt, then only what queued since is tried.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    while rx.try_recv().is_ok() {}
                    continue;
                }
            }
        }
        let c = client.clone().expect("connected");
        for group in by_kind(queued) {
            let (c, cluster, broken) = (c.clone(), cluster.clone(), broken.clone());
            tokio::spawn(async move {
                match c.paxos(deadline(rpc_timeout), cluster, from, group).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(peer, "peer refused messages: {e}"),
                    Err(e) => {
                        tracing::debug!(peer, "call failed: {e}");
                        broken.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    }
}

/// Splits messages into runs of one kind, in order.
fn by_kind(messages: Vec<Message>) -> Vec<Vec<Message>> {
    let mut groups: Vec<Vec<Message>> = Vec::new();
    for m in messages {
        match groups.last_mut() {
            Some(g) if g[0].kind() == m.kind() => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    groups
}

pub(super) async fn accept_peers(
    listener: TcpListener,
    cluster: String,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cluster = cluster.clone();
        let tx = tx.clone();
        tokio::spawn(serve_in_order(
            stream,
            move |req: PaxosPeerServiceRequest, r: Responder<_>| {
                r.later(dispatch_peer(req, &cluster, &tx))
            },
            &PEER_JUNK,
        ));
    }
}

fn dispatch_peer(
    req: PaxosPeerServiceRequest,
    cluster: &str,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<PaxosPeerServiceResponse> {
    let PaxosPeerServiceRequest::Paxos {
        cluster: got,
        from,
        messages,
    } = req;
    let answer = if got != cluster {
        let err = PeerError::WrongCluster {
            expected: cluster.to_string(),
            got,
        };
        tracing::warn!(error = %err, "refusing peer messages");
        Err(err)
    } else if tx.send(Cmd::Peer(from, messages)).is_err() {
        Err(PeerError::Stopping)
    } else {
        Ok(())
    };
    Box::pin(async move { PaxosPeerServiceResponse::Paxos(answer) })
}

pub(super) async fn accept_api(listener: TcpListener, tx: mpsc::UnboundedSender<Cmd>) {
    loop {
        let Ok((mut stream, from)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut which = [0u8; 1];
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut which)).await;
            match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    API_JUNK.note(Some(from), "sent nothing within 5 s");
                    return;
                }
            }
            match which[0] {
                rpc::API_CLIENT => {
                    serve_in_order(
                        stream,
                        move |req: ClientServiceRequest, r: Responder<_>| {
                            r.later(dispatch_client(req, &tx))
                        },
                        &API_JUNK,
                    )
                    .await
                }
                rpc::API_CONTROL => {
                    serve_in_order(
                        stream,
                        move |req: ControlServiceRequest, r: Responder<_>| {
                            r.later(dispatch_control(req, &tx))
                        },
                        &API_JUNK,
                    )
                    .await
                }
                other => API_JUNK.note(
                    Some(from),
                    &format!("asked for an unknown service (first byte {other:#04x})"),
                ),
            }
        });
    }
}

fn dispatch_client(
    req: ClientServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ClientServiceResponse> {
    let ClientServiceRequest::Execute { req } = req;
    let (otx, orx) = oneshot::channel();
    let _ = tx.send(Cmd::Client(req, otx));
    await_actor(orx, ClientServiceResponse::Execute, || {
        ClientServiceResponse::Execute(KvReply::Retry {
            reason: "node is shutting down".into(),
        })
    })
}

/// What a Paxos node says to a control call it has no counterpart for.
fn unsupported(what: &str) -> String {
    format!("a Paxos node (--protocol paxos) has no {what}")
}

fn dispatch_control(
    req: ControlServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ControlServiceResponse> {
    let ready = |r: ControlServiceResponse| -> Answer<ControlServiceResponse> {
        Box::pin(async move { r })
    };
    match req {
        ControlServiceRequest::Status {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Status(otx));
            Box::pin(async move {
                match orx.await {
                    Ok(s) => ControlServiceResponse::Status(s),
                    Err(_) => std::future::pending().await,
                }
            })
        }
        ControlServiceRequest::Events { cursor, max } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Events(cursor, max, otx));
            await_actor(orx, ControlServiceResponse::Events, || {
                ControlServiceResponse::Events(EventBatch {
                    events: vec![],
                    next_cursor: 0,
                    missed: 0,
                })
            })
        }
        ControlServiceRequest::TransferLeadership { .. } => ready(
            ControlServiceResponse::TransferLeadership(Err(unsupported("leadership transfer"))),
        ),
        ControlServiceRequest::ChangeMembership { .. } => ready(
            ControlServiceResponse::ChangeMembership(Err(MembershipError::Unsupported {
                reason: unsupported("membership changes"),
            })),
        ),
        ControlServiceRequest::SetPeerAddr { .. } => ready(ControlServiceResponse::SetPeerAddr(
            Err(unsupported("peers added at run time")),
        )),
        ControlServiceRequest::WritePath {} => ready(ControlServiceResponse::WritePath(Vec::new())),
        ControlServiceRequest::SetFrozen { .. } => ready(ControlServiceResponse::SetFrozen(Err(
            unsupported("teaching mode (freeze)"),
        ))),
        ControlServiceRequest::FireElectionTimeout {} => ready(
            ControlServiceResponse::FireElectionTimeout(Err(unsupported("election timer"))),
        ),
        ControlServiceRequest::SendHeartbeats {} => ready(ControlServiceResponse::SendHeartbeats(
            Err(unsupported("heartbeats on demand")),
        )),
        ControlServiceRequest::LogRange { .. } => {
            ready(ControlServiceResponse::LogRange(Ok(Vec::new())))
        }
    }
}
