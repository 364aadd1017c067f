//! The listeners: the peer port (incoming Raft RPCs) and the API port (client and control services), each
//! request handed to the actor in the order it arrived and answered when the actor replies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use tarpc::server::{BaseChannel, Channel};
use tarpc::{ClientMessage, Response, ServerError};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::raft::MembershipError;
use crate::rpc::{
    self, ClientServiceRequest, ClientServiceResponse, ControlServiceRequest,
    ControlServiceResponse, EventBatch, KvReply, PeerError, PeerServiceRequest,
    PeerServiceResponse,
};
use crate::transport;

use super::Cmd;
use super::teach::TeachCmd;

pub(super) type Answer<R> = BoxFuture<'static, R>;

/// Answers with `make` once the actor replies on the oneshot, or with `closed` if it went away.
pub(super) fn await_actor<T: Send + 'static, R: Send + 'static>(
    rx: oneshot::Receiver<T>,
    ok: impl FnOnce(T) -> R + Send + 'static,
    closed: impl FnOnce() -> R + Send + 'static,
) -> Answer<R> {
    Box::pin(async move {
        match rx.await {
            Ok(v) => ok(v),
            Err(_) => closed(),
        }
    })
}

/// Logs connections that are not squall's (garbage bytes, an unknown service, a connection that sends nothing)
/// with the peer address, at most once a second per port, counting the ones left out, so a flood of junk is
/// visible without flooding the log.
pub(super) struct JunkLog {
    /// Which port: `peer` or `API`.
    port: &'static str,
    /// When the last line was logged, and how many were left out since.
    state: std::sync::Mutex<(Option<Instant>, u64)>,
}

impl JunkLog {
    const fn new(port: &'static str) -> JunkLog {
        JunkLog {
            port,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    pub(super) fn note(&self, from: Option<SocketAddr>, why: &str) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if st
            .0
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            st.1 += 1;
            return;
        }
        let left_out = std::mem::take(&mut st.1);
        st.0 = Some(now);
        drop(st);
        let from = from.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        tracing::warn!(
            port = self.port,
            %from,
            left_out,
            "junk connection on the {} port from {from}: {why} ({left_out} more since the last such line)",
            self.port
        );
    }
}

pub(super) static PEER_JUNK: JunkLog = JunkLog::new("peer");
pub(super) static API_JUNK: JunkLog = JunkLog::new("API");

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
            move |req: PeerServiceRequest| dispatch_peer(req, &cluster, &tx),
            &PEER_JUNK,
        ));
    }
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
                        move |req: ClientServiceRequest| dispatch_client(req, &tx),
                        &API_JUNK,
                    )
                    .await
                }
                rpc::API_CONTROL => {
                    serve_in_order(
                        stream,
                        move |req: ControlServiceRequest| dispatch_control(req, &tx),
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

/// Serves one tarpc connection, handing each request to the actor in the order it arrived (so pipelined
/// AppendEntries are not reordered by task scheduling), then waiting for the answer in a task of its own.
/// Bytes that are not a request end the connection and are noted in `junk`.
pub(super) async fn serve_in_order<Req, Resp, F>(
    stream: TcpStream,
    mut dispatch: F,
    junk: &'static JunkLog,
) where
    Req: tarpc::RequestName + Clone + Send + Unpin + 'static + for<'de> serde::Deserialize<'de>,
    Resp: Send + Unpin + 'static + serde::Serialize,
    F: FnMut(Req) -> Answer<Resp>,
{
    let from = stream.peer_addr().ok();
    let transport = transport::framed::<ClientMessage<Req>, Response<Resp>>(stream);
    let mut requests = BaseChannel::with_defaults(transport).requests();
    loop {
        let in_flight = match requests.next().await {
            Some(Ok(r)) => r,
            None => return,
            Some(Err(e)) => {
                // A peer or client that went away resets the connection; anything else is not squall's.
                let io = match &e {
                    tarpc::ChannelError::Read(io) => Some(io.kind()),
                    _ => None,
                };
                if matches!(
                    io,
                    Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput)
                        | Some(std::io::ErrorKind::Other)
                ) {
                    let cause =
                        std::error::Error::source(&e).map_or(e.to_string(), |c| c.to_string());
                    junk.note(from, &format!("not a squall request ({cause})"));
                }
                return;
            }
        };
        let answer = dispatch(in_flight.get().message.clone());
        tokio::spawn(
            in_flight.execute(tarpc::server::serve(move |_, _| async move {
                Ok::<_, ServerError>(answer.await)
            })),
        );
    }
}

pub(super) fn dispatch_peer(
    req: PeerServiceRequest,
    cluster: &str,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<PeerServiceResponse> {
    let wrong = |got: &str| PeerError::WrongCluster {
        expected: cluster.to_string(),
        got: got.to_string(),
    };
    macro_rules! call {
        ($variant:ident, $cmd:ident, $got:expr, $req:expr) => {{
            if $got != cluster {
                let err = wrong(&$got);
                tracing::warn!(error = %err, "refusing peer RPC");
                return Box::pin(async move { PeerServiceResponse::$variant(Err(err)) });
            }
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::$cmd($req, otx));
            await_actor(
                orx,
                |r| PeerServiceResponse::$variant(Ok(r)),
                || PeerServiceResponse::$variant(Err(PeerError::Stopping)),
            )
        }};
    }
    match req {
        PeerServiceRequest::RequestVote { cluster: got, req } => call!(RequestVote, Vote, got, req),
        PeerServiceRequest::AppendEntries { cluster: got, req } => {
            call!(AppendEntries, Append, got, req)
        }
        PeerServiceRequest::InstallSnapshot { cluster: got, req } => {
            call!(InstallSnapshot, Snapshot, got, req)
        }
        PeerServiceRequest::TimeoutNow { cluster: got, req } => {
            if got != cluster {
                let err = wrong(&got);
                return Box::pin(async move { PeerServiceResponse::TimeoutNow(Err(err)) });
            }
            let _ = tx.send(Cmd::TimeoutNow(req));
            Box::pin(async { PeerServiceResponse::TimeoutNow(Ok(())) })
        }
    }
}

pub(super) fn dispatch_client(
    req: ClientServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ClientServiceResponse> {
    match req {
        ClientServiceRequest::Execute { req } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Client(req, otx));
            await_actor(orx, ClientServiceResponse::Execute, || {
                ClientServiceResponse::Execute(KvReply::Retry {
                    reason: "node is shutting down".into(),
                })
            })
        }
    }
}

pub(super) fn dispatch_control(
    req: ControlServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
) -> Answer<ControlServiceResponse> {
    match req {
        ControlServiceRequest::Status {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Status(otx));
            // A node that is shutting down has no status to give: let the deadline speak for it.
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
        ControlServiceRequest::TransferLeadership { target } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Transfer(target, otx));
            await_actor(orx, ControlServiceResponse::TransferLeadership, || {
                ControlServiceResponse::TransferLeadership(Err("node is shutting down".into()))
            })
        }
        ControlServiceRequest::ChangeMembership { change } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::ChangeMembership(change, otx));
            // A node that stops before the change commits cannot tell how it ended.
            await_actor(orx, ControlServiceResponse::ChangeMembership, || {
                ControlServiceResponse::ChangeMembership(Err(MembershipError::Timeout))
            })
        }
        ControlServiceRequest::WritePath {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::WritePath(otx));
            await_actor(orx, ControlServiceResponse::WritePath, || {
                ControlServiceResponse::WritePath(Vec::new())
            })
        }
        ControlServiceRequest::SetFrozen { frozen } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Teach(TeachCmd::Freeze(frozen, otx)));
            await_actor(
                orx,
                |()| ControlServiceResponse::SetFrozen(Ok(())),
                || ControlServiceResponse::SetFrozen(Err("node is shutting down".into())),
            )
        }
        ControlServiceRequest::FireElectionTimeout {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Teach(TeachCmd::Timeout(otx)));
            await_actor(orx, ControlServiceResponse::FireElectionTimeout, || {
                ControlServiceResponse::FireElectionTimeout(Err("node is shutting down".into()))
            })
        }
        ControlServiceRequest::SendHeartbeats {} => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Teach(TeachCmd::Heartbeat(otx)));
            await_actor(orx, ControlServiceResponse::SendHeartbeats, || {
                ControlServiceResponse::SendHeartbeats(Err("node is shutting down".into()))
            })
        }
        ControlServiceRequest::LogRange { from, to } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::Teach(TeachCmd::LogRange(from, to, otx)));
            await_actor(orx, ControlServiceResponse::LogRange, || {
                ControlServiceResponse::LogRange(Err("node is shutting down".into()))
            })
        }
        ControlServiceRequest::SetPeerAddr { id, addr } => {
            let (otx, orx) = oneshot::channel();
            let _ = tx.send(Cmd::SetPeerAddr(id, addr, otx));
            await_actor(orx, ControlServiceResponse::SetPeerAddr, || {
                ControlServiceResponse::SetPeerAddr(Err("node is shutting down".into()))
            })
        }
    }
}
