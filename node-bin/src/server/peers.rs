//! The outgoing half of the peer transport: one task per peer keeps one connection (rebuilt with backoff after
//! it breaks), writes the core's requests on it as tarpc request frames and hands each answer straight back to
//! the actor (module docs of `transport`: the wire is tarpc's, the tasks are not).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::raft::{NodeId, Reply, Request};
use crate::rpc::{self, PeerError};
use crate::transport::{self, deadline};

use super::{Cmd, Node, patience};

/// How long a request sent in teaching mode may wait for its answer: a day. A frozen node's requests are
/// held by the proxy while a person steps them at a teacher's pace (`hold *`, `step`); with the usual
/// deadline (four election timeouts, 24 s at `--slow` timings) a request delivered after a long explanation
/// had already expired at the sender, so the grant it earned was thrown away (tester4 F2). Nothing waits on
/// the deadline meanwhile: the core sends on without the answer and Raft tolerates one that never comes.
pub const TEACHING_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// One request for a peer, as the actor hands it to the peer's sender.
pub(super) struct Outgoing {
    /// The request.
    pub(super) req: Request,
    /// Sent in teaching mode: its deadline is [`TEACHING_DEADLINE`].
    pub(super) frozen: bool,
}

/// The deadline of a request: a snapshot chunk's follows its measured round trips (`chunk`), a request sent in
/// teaching mode gets [`TEACHING_DEADLINE`], any other the node's RPC timeout.
pub(super) fn request_deadline(
    rpc_timeout: Duration,
    chunk: Option<Duration>,
    frozen: bool,
) -> Duration {
    if frozen {
        TEACHING_DEADLINE
    } else {
        chunk.unwrap_or(rpc_timeout)
    }
}

impl Node {
    /// Adds or replaces the sender for peer `id` (a node added at run time, or a moved proxy).
    pub(super) fn set_peer_addr(&mut self, id: NodeId, addr: SocketAddr) -> Result<(), String> {
        if id == self.cfg.id {
            return Err(format!(
                "node {id} is this node; give the address of another node"
            ));
        }
        if id == 0 {
            return Err("node ids start at 1".into());
        }
        let Some(tx) = self.self_tx.upgrade() else {
            return Err("node is shutting down".into());
        };
        let (ptx, prx) = mpsc::unbounded_channel();
        // Dropping the old sender ends the old task once its queue is empty.
        self.peers.insert(id, ptx);
        self.cfg.peers.insert(id, addr);
        tokio::spawn(peer_sender(
            id,
            addr,
            self.cfg.cluster_id.clone(),
            self.rpc_timeout,
            prx,
            tx,
        ));
        tracing::info!(peer = id, %addr, "peer address set");
        Ok(())
    }
}

/// A request on the wire, borrowed: serialises to exactly the bytes of the [`rpc::PeerServiceRequest`] tarpc
/// generates (the same variants in the same order, the same fields), so a request is written without being
/// cloned (a test below compares the two).
#[derive(serde::Serialize)]
enum WireRequest<'a> {
    RequestVote {
        cluster: &'a str,
        req: &'a crate::raft::RequestVote,
    },
    AppendEntries {
        cluster: &'a str,
        req: &'a crate::raft::AppendEntries,
    },
    InstallSnapshot {
        cluster: &'a str,
        req: &'a crate::raft::InstallSnapshot,
    },
    TimeoutNow {
        cluster: &'a str,
        req: &'a crate::raft::TimeoutNow,
    },
}

impl<'a> WireRequest<'a> {
    fn of(cluster: &'a str, req: &'a Request) -> WireRequest<'a> {
        match req {
            Request::Vote(req) => WireRequest::RequestVote { cluster, req },
            Request::Append(req) => WireRequest::AppendEntries { cluster, req },
            Request::Snapshot(req) => WireRequest::InstallSnapshot { cluster, req },
            Request::TimeoutNow(req) => WireRequest::TimeoutNow { cluster, req },
        }
    }
}

/// tarpc's request frame for `req` with request id `id` and a deadline `timeout` from now.
fn request_frame(
    cluster: &str,
    id: u64,
    req: &Request,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    transport::encode_frame(&tarpc::ClientMessage::Request(tarpc::Request {
        context: deadline(timeout),
        id,
        message: WireRequest::of(cluster, req),
    }))
}

/// A request sent and not answered yet.
struct InFlight {
    req: Request,
    sent: Instant,
    deadline: Instant,
    frozen: bool,
}

/// What one peer's link task keeps between requests.
struct Link {
    peer: NodeId,
    cluster: String,
    rpc_timeout: Duration,
    tx: mpsc::UnboundedSender<Cmd>,
    /// Snapshot chunks are large: their deadline follows their measured round trips (module `patience`).
    patience: patience::ChunkPatience,
    next_id: u64,
}

impl Link {
    fn unreachable(&self, req: Request) {
        let _ = self.tx.send(Cmd::Unreachable(self.peer, req));
    }

    /// An answer came for `f`: hand it to the actor (with the round trip of a batch of entries, and of a
    /// chunk for its patience). `Err`: the peer refused it, or the connection must be rebuilt (`true`).
    fn answered(
        &mut self,
        f: InFlight,
        resp: Result<rpc::PeerServiceResponse, tarpc::ServerError>,
    ) -> bool {
        use rpc::PeerServiceResponse as R;
        let rtt = f.sent.elapsed();
        let outcome: Result<Option<Reply>, String> = match resp {
            Ok(R::RequestVote(r)) => flatten(r).map(|r| Some(Reply::Vote(r))),
            Ok(R::AppendEntries(r)) => flatten(r).map(|r| Some(Reply::Append(r))),
            Ok(R::InstallSnapshot(r)) => flatten(r).map(|r| Some(Reply::Snapshot(r))),
            Ok(R::TimeoutNow(r)) => flatten(r).map(|()| None),
            Err(e) => {
                tracing::debug!(peer = self.peer, error = %e, "peer RPC failed");
                self.unreachable(f.req);
                return true;
            }
        };
        let chunk = matches!(f.req, Request::Snapshot(_));
        if chunk && !f.frozen && outcome.is_ok() {
            self.patience.answered(rtt);
        }
        if let (Request::Append(a), Ok(Some(_))) = (&f.req, &outcome)
            && !a.entries.is_empty()
        {
            let _ = self.tx.send(Cmd::AppendRoundTrip(rtt));
        }
        match outcome {
            Ok(Some(reply)) => drop(self.tx.send(Cmd::Reply(self.peer, reply))),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(peer = self.peer, error = %e, "peer RPC failed");
                self.unreachable(f.req);
            }
        }
        false
    }

    /// A request whose deadline passed unanswered.
    fn expired(&mut self, f: InFlight) {
        if matches!(f.req, Request::Snapshot(_)) && !f.frozen {
            self.patience.timed_out();
        }
        tracing::debug!(peer = self.peer, "peer RPC failed: deadline exceeded");
        self.unreachable(f.req);
    }
}

/// Sends the core's requests to one peer over one connection it keeps (rebuilt, with backoff, after it breaks)
/// and hands each answer straight to the actor: the task writes each request frame itself (tarpc's
/// `ClientMessage`, a request id of its own, the request's deadline), reads the `Response` frames, and reports
/// a request unanswered by its deadline, or lost with a broken connection, as unreachable. No task per
/// request, no tarpc client in between.
pub(super) async fn peer_sender(
    peer: NodeId,
    addr: SocketAddr,
    cluster: String,
    rpc_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let mut link = Link {
        peer,
        cluster,
        rpc_timeout,
        tx,
        patience: patience::ChunkPatience::new(rpc_timeout, rpc_timeout * 10),
        next_id: 0,
    };
    let mut backoff = Duration::from_millis(20);
    let mut next_attempt = Instant::now();
    let mut first: Option<Outgoing> = None;
    loop {
        let out = match first.take() {
            Some(o) => o,
            None => match rx.recv().await {
                Some(o) => o,
                None => return,
            },
        };
        if Instant::now() < next_attempt {
            link.unreachable(out.req);
            continue;
        }
        let stream = match transport::dial(addr, rpc_timeout).await {
            Ok(s) => {
                backoff = Duration::from_millis(20);
                s
            }
            Err(e) => {
                tracing::debug!(peer, %addr, error = %e, "peer unreachable");
                next_attempt = Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                link.unreachable(out.req);
                continue;
            }
        };
        first = connected(&mut link, stream, out, &mut rx).await;
        if first.is_none() && rx.is_closed() && rx.is_empty() {
            return;
        }
    }
}

/// Runs one connection until it breaks, or until the actor dropped this peer and nothing is in flight.
/// Returns a request taken but not sent because the connection broke first (sent again on the next one).
async fn connected(
    link: &mut Link,
    stream: tokio::net::TcpStream,
    first: Outgoing,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> Option<Outgoing> {
    use futures::StreamExt as _;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let writer = transport::FrameWriter::new(write);
    let mut frames = transport::frame_reader(read);
    let mut in_flight: std::collections::HashMap<u64, InFlight> = std::collections::HashMap::new();
    let flush = writer.flush();
    tokio::pin!(flush);
    let far = || tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let timer = tokio::time::sleep_until(far());
    tokio::pin!(timer);
    let mut next = Some(first);
    let mut closed = false;
    let broken = loop {
        if let Some(Outgoing { req, frozen }) = next.take() {
            let chunk = matches!(req, Request::Snapshot(_));
            let measured = chunk.then(|| link.patience.deadline());
            let timeout = request_deadline(link.rpc_timeout, measured, frozen);
            link.next_id += 1;
            let id = link.next_id;
            match request_frame(&link.cluster, id, &req, timeout) {
                Ok(frame) => {
                    let now = Instant::now();
                    if let Err(e) = writer.send(&frame) {
                        tracing::debug!(peer = link.peer, error = %e, "peer connection broke");
                        break Some(Outgoing { req, frozen });
                    }
                    let deadline = now + timeout;
                    in_flight.insert(
                        id,
                        InFlight {
                            req,
                            sent: now,
                            deadline,
                            frozen,
                        },
                    );
                    if deadline < timer.deadline().into_std() {
                        timer.as_mut().reset(deadline.into());
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = link.peer, error = %e, "cannot send a request");
                    link.unreachable(req);
                }
            }
            continue;
        }
        if closed && in_flight.is_empty() {
            break None;
        }
        tokio::select! {
            out = rx.recv(), if !closed => match out {
                Some(o) => next = Some(o),
                None => closed = true,
            },
            frame = frames.next() => {
                let body = match frame {
                    Some(Ok(body)) => body,
                    Some(Err(e)) => {
                        tracing::debug!(peer = link.peer, error = %e, "peer connection broke");
                        break None;
                    }
                    None => {
                        tracing::debug!(peer = link.peer, "peer closed the connection");
                        break None;
                    }
                };
                let resp: tarpc::Response<rpc::PeerServiceResponse> = match transport::decode_frame(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(peer = link.peer, error = %e, "unreadable answer from peer");
                        break None;
                    }
                };
                // An answer to a request already given up on (its deadline passed) is not news.
                if let Some(f) = in_flight.remove(&resp.request_id)
                    && link.answered(f, resp.message)
                {
                    break None;
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                let expired: Vec<u64> = in_flight
                    .iter()
                    .filter(|(_, f)| f.deadline <= now)
                    .map(|(&id, _)| id)
                    .collect();
                for id in expired {
                    let f = in_flight.remove(&id).expect("listed");
                    link.expired(f);
                }
                let earliest = in_flight.values().map(|f| f.deadline).min();
                timer.as_mut().reset(earliest.map_or_else(far, Into::into));
            }
            e = &mut flush => {
                tracing::debug!(peer = link.peer, error = %e, "peer connection broke");
                break None;
            }
        }
    };
    writer.close();
    // What was in flight on a broken connection is lost: the core re-probes or resends.
    let mut lost: Vec<(u64, InFlight)> = in_flight.drain().collect();
    lost.sort_by_key(|(id, _)| *id);
    for (_, f) in lost {
        link.unreachable(f.req);
    }
    broken
}

/// A peer's answer, or why it refused (logged: a refusal other than a stopping peer's is a warning).
fn flatten<T>(r: Result<T, PeerError>) -> Result<T, String> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            // A peer that is stopping or whose disk is full drops requests many times a second: not a warning.
            if matches!(e, PeerError::Stopping) {
                tracing::debug!(error = %e, "peer dropped RPC");
            } else {
                tracing::warn!(error = %e, "peer refused RPC");
            }
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_sent_frozen_waits_a_day_for_its_answer() {
        // teach2 item 1 (tester4 F2): held at a teacher's pace, a request expired after the usual deadline.
        let usual = Duration::from_secs(24);
        assert_eq!(request_deadline(usual, None, false), usual);
        assert_eq!(request_deadline(usual, None, true), TEACHING_DEADLINE);
        let chunk = Duration::from_secs(3);
        assert_eq!(request_deadline(usual, Some(chunk), false), chunk);
        assert_eq!(
            request_deadline(usual, Some(chunk), true),
            TEACHING_DEADLINE
        );
    }

    fn requests() -> Vec<Request> {
        use crate::raft::{
            AppendEntries, Entry, InstallSnapshot, Payload, RequestVote, TimeoutNow,
        };
        vec![
            Request::Vote(RequestVote {
                term: 3,
                candidate: 2,
                last_log_index: 9,
                last_log_term: 2,
                pre_vote: true,
                transfer: false,
                round: 4,
            }),
            Request::Append(AppendEntries {
                term: 7,
                leader: 1,
                prev_log_index: 300,
                prev_log_term: 6,
                entries: vec![Entry {
                    index: 301,
                    term: 7,
                    payload: Payload::Command(b"put k=v".to_vec()),
                }],
                leader_commit: 299,
                heartbeat: false,
                read_round: 12,
            }),
            Request::Snapshot(InstallSnapshot {
                term: 7,
                leader: 1,
                meta: crate::raft::SnapshotMeta {
                    last_index: 300,
                    last_term: 6,
                },
                offset: 1024,
                data: vec![7; 100],
                done: false,
                chunk_id: 5,
                config: None,
            }),
            Request::TimeoutNow(TimeoutNow { term: 7, leader: 1 }),
        ]
    }

    #[test]
    fn a_request_frame_is_the_frame_tarpc_would_send() {
        // The proxy's classifier, held frames, `step` and the trace read tarpc's frames: the node's own
        // sender must write the very same bytes (the deadline aside, which is relative to the moment of
        // encoding; both are made from one context here).
        let cluster = "squall-1234";
        for req in requests() {
            let ctx = deadline(Duration::from_secs(3));
            let ours = transport::encode_frame(&tarpc::ClientMessage::Request(tarpc::Request {
                context: ctx,
                id: 41,
                message: WireRequest::of(cluster, &req),
            }))
            .unwrap();
            let cluster = cluster.to_string();
            let message = match req.clone() {
                Request::Vote(req) => rpc::PeerServiceRequest::RequestVote { cluster, req },
                Request::Append(req) => rpc::PeerServiceRequest::AppendEntries { cluster, req },
                Request::Snapshot(req) => rpc::PeerServiceRequest::InstallSnapshot { cluster, req },
                Request::TimeoutNow(req) => rpc::PeerServiceRequest::TimeoutNow { cluster, req },
            };
            let theirs = tarpc::ClientMessage::Request(tarpc::Request {
                context: ctx,
                id: 41,
                message,
            });
            // Encoded as `framed` encodes it: tokio-serde's bincode, then the length-delimited codec.
            let mut bincode = tarpc::tokio_serde::formats::Bincode::<
                (),
                tarpc::ClientMessage<rpc::PeerServiceRequest>,
            >::default();
            let body = tarpc::tokio_serde::Serializer::serialize(
                std::pin::Pin::new(&mut bincode),
                &theirs,
            )
            .unwrap();
            let mut framed = tarpc::tokio_util::bytes::BytesMut::new();
            tarpc::tokio_util::codec::Encoder::encode(
                &mut tarpc::tokio_util::codec::LengthDelimitedCodec::new(),
                body,
                &mut framed,
            )
            .unwrap();
            // The deadline is encoded relative to the moment of encoding: compare all but its bytes by
            // decoding both back.
            assert_eq!(ours.len(), framed.len(), "{req:?}");
            assert_eq!(ours[..4], framed[..4], "{req:?}");
            let a: tarpc::ClientMessage<rpc::PeerServiceRequest> =
                transport::decode_frame(&ours[4..]).unwrap();
            let b: tarpc::ClientMessage<rpc::PeerServiceRequest> =
                transport::decode_frame(&framed[4..]).unwrap();
            match (a, b) {
                (tarpc::ClientMessage::Request(a), tarpc::ClientMessage::Request(b)) => {
                    assert_eq!(a.id, b.id);
                    assert_eq!(
                        transport::encode_frame(&a.message).unwrap(),
                        transport::encode_frame(&b.message).unwrap(),
                        "{req:?}"
                    );
                }
                _ => panic!("both are requests"),
            }
        }
    }
}
