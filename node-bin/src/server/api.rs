//! The listeners: the peer port (incoming Raft RPCs) and the API port (client and control services), each
//! request handed to the actor in the order it arrived with a [`ReplyTo`] that writes the answer's frame on its
//! connection from wherever the answer is made (the actor; the persist thread for an answer that waits for a
//! write), so no task stands between the answer and the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
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
use crate::transport::{self, FrameWriter};

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
            move |req: PeerServiceRequest, r| dispatch_peer(req, &cluster, &tx, r),
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
                        move |req: ClientServiceRequest, r| dispatch_client(req, &tx, r),
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

/// Where the answer to one request goes: handed to the actor with the request, answered by whoever holds it
/// when the answer is known (the actor, or the persist thread once what the answer claims is durable), which
/// writes the response frame to the connection at once ([`Responder`]), with no task in between. Dropped
/// unanswered (the node is stopping, or the answer depended on a write that failed), it answers what its
/// maker chose for that case, or nothing.
pub(super) struct ReplyTo<T> {
    answer: Option<Box<dyn FnOnce(Option<T>) + Send>>,
}

impl<T> ReplyTo<T> {
    /// A reply that calls `answer` with the value, or with `None` if dropped unanswered.
    pub(super) fn new(answer: impl FnOnce(Option<T>) + Send + 'static) -> ReplyTo<T> {
        ReplyTo {
            answer: Some(Box::new(answer)),
        }
    }

    /// Answers with `value`.
    pub(super) fn send(mut self, value: T) {
        if let Some(answer) = self.answer.take() {
            answer(Some(value));
        }
    }
}

impl<T> Drop for ReplyTo<T> {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            answer(None);
        }
    }
}

impl<T: Send + 'static> From<oneshot::Sender<T>> for ReplyTo<T> {
    /// A reply into a oneshot channel (tests, and callers that await the answer).
    fn from(tx: oneshot::Sender<T>) -> ReplyTo<T> {
        ReplyTo::new(move |v| {
            if let Some(v) = v {
                let _ = tx.send(v);
            }
        })
    }
}

/// The answer to one request read by [`serve_in_order`]: tarpc's `Response` frame with the request's id,
/// written on the connection the request came in on.
pub(super) struct Responder<Resp> {
    writer: Arc<FrameWriter>,
    id: u64,
    /// The ids of the connection's requests not answered yet (see [`serve_in_order`]); this one leaves it
    /// when the responder is done with, answered or not.
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
    _resp: std::marker::PhantomData<fn(Resp)>,
}

impl<Resp> Drop for Responder<Resp> {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl<Resp: serde::Serialize + Send + 'static> Responder<Resp> {
    /// Answers now.
    pub(super) fn answer(self, resp: Resp) {
        // Out of the in-flight set once the answer is written: when `self` drops at the end.
        let response = Response {
            request_id: self.id,
            message: Ok::<Resp, ServerError>(resp),
        };
        match transport::encode_frame(&response) {
            // A connection that broke meanwhile takes no answer; the caller's deadline speaks for it.
            Ok(frame) => drop(self.writer.send(&frame)),
            Err(e) => tracing::warn!(error = %e, "cannot send an answer"),
        }
    }

    /// Answers with what `answer` gives: at once if it is ready, else from a task that waits for it.
    pub(super) fn later(self, mut answer: Answer<Resp>) {
        use futures::FutureExt as _;
        match (&mut answer).now_or_never() {
            Some(resp) => self.answer(resp),
            None => {
                tokio::spawn(async move { self.answer(answer.await) });
            }
        }
    }

    /// A [`ReplyTo`] for the actor: `ok` makes the response from its value; `closed` the response when it is
    /// dropped unanswered (`None`: no response, the caller's deadline speaks).
    pub(super) fn reply<T: 'static>(
        self,
        ok: impl FnOnce(T) -> Resp + Send + 'static,
        closed: impl FnOnce() -> Option<Resp> + Send + 'static,
    ) -> ReplyTo<T> {
        ReplyTo::new(move |v| {
            let resp = match v {
                Some(v) => Some(ok(v)),
                None => closed(),
            };
            if let Some(resp) = resp {
                self.answer(resp);
            }
        })
    }
}

/// Serves one tarpc connection without tarpc's tasks: reads each request frame (`ClientMessage`) and hands it
/// to `dispatch` in the order it arrived (so pipelined AppendEntries are not reordered by task scheduling),
/// with a [`Responder`] that writes its `Response` frame on this connection from wherever the answer is
/// made. This task only reads, and writes what the socket did not take at once. Bytes that are not a
/// request end the connection and are noted in `junk`; a cancellation is ignored (the caller ignores an
/// answer it no longer waits for). A second copy of a request still in flight on the connection (the same
/// id; the link's `dup` fault makes them) is dropped, as tarpc's server drops it; a copy that comes after the
/// answer is served again.
pub(super) async fn serve_in_order<Req, Resp, F>(
    stream: TcpStream,
    mut dispatch: F,
    junk: &'static JunkLog,
) where
    Req: for<'de> serde::Deserialize<'de>,
    Resp: serde::Serialize + Send + 'static,
    F: FnMut(Req, Responder<Resp>),
{
    let from = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let writer = Arc::new(FrameWriter::new(write));
    let mut frames = transport::frame_reader(read);
    let in_flight = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let flush = writer.flush();
    tokio::pin!(flush);
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = &mut flush => break,
        };
        let body = match frame {
            Some(Ok(body)) => body,
            None => break,
            Some(Err(e)) => {
                // A peer or client that went away resets the connection; anything else is not squall's.
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                        | std::io::ErrorKind::Other
                ) {
                    junk.note(from, &format!("not a squall request ({e})"));
                }
                break;
            }
        };
        match transport::decode_frame::<ClientMessage<Req>>(&body) {
            Ok(ClientMessage::Request(r)) => {
                if !in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(r.id)
                {
                    continue;
                }
                let responder = Responder {
                    writer: writer.clone(),
                    id: r.id,
                    in_flight: in_flight.clone(),
                    _resp: std::marker::PhantomData,
                };
                dispatch(r.message, responder)
            }
            Ok(_) => {}
            Err(e) => {
                junk.note(from, &format!("not a squall request ({e})"));
                break;
            }
        }
    }
    writer.close();
}

pub(super) fn dispatch_peer(
    req: PeerServiceRequest,
    cluster: &str,
    tx: &mpsc::UnboundedSender<Cmd>,
    r: Responder<PeerServiceResponse>,
) {
    let wrong = |got: &str| PeerError::WrongCluster {
        expected: cluster.to_string(),
        got: got.to_string(),
    };
    macro_rules! call {
        ($variant:ident, $cmd:ident, $got:expr, $req:expr) => {{
            if $got != cluster {
                let err = wrong(&$got);
                tracing::warn!(error = %err, "refusing peer RPC");
                return r.answer(PeerServiceResponse::$variant(Err(err)));
            }
            let reply = r.reply(
                |v| PeerServiceResponse::$variant(Ok(v)),
                || Some(PeerServiceResponse::$variant(Err(PeerError::Stopping))),
            );
            // An actor that is gone drops the command, and the reply in it answers `Stopping`.
            let _ = tx.send(Cmd::$cmd($req, reply));
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
                return r.answer(PeerServiceResponse::TimeoutNow(Err(wrong(&got))));
            }
            let _ = tx.send(Cmd::TimeoutNow(req));
            r.answer(PeerServiceResponse::TimeoutNow(Ok(())))
        }
    }
}

pub(super) fn dispatch_client(
    req: ClientServiceRequest,
    tx: &mpsc::UnboundedSender<Cmd>,
    r: Responder<ClientServiceResponse>,
) {
    match req {
        ClientServiceRequest::Execute { req } => {
            let reply = r.reply(ClientServiceResponse::Execute, || {
                Some(ClientServiceResponse::Execute(KvReply::Retry {
                    reason: "node is shutting down".into(),
                }))
            });
            let _ = tx.send(Cmd::Client(req, reply));
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
