//! The outgoing half of the peer transport: one sender task per peer that carries the core's requests over a
//! tarpc client (rebuilt with backoff after it breaks) and hands the answers back to the actor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Sends the core's requests to one peer over a tarpc client that is rebuilt (with backoff) after it breaks.
pub(super) async fn peer_sender(
    peer: NodeId,
    addr: SocketAddr,
    cluster: String,
    rpc_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    tx: mpsc::UnboundedSender<Cmd>,
) {
    let mut client: Option<rpc::PeerServiceClient> = None;
    let broken = Arc::new(AtomicBool::new(false));
    // Snapshot chunks are large: their deadline follows their measured round trips (module `patience`).
    let patience = Arc::new(std::sync::Mutex::new(patience::ChunkPatience::new(
        rpc_timeout,
        rpc_timeout * 10,
    )));
    let mut backoff = Duration::from_millis(20);
    let mut next_attempt = Instant::now();
    while let Some(Outgoing { req, frozen }) = rx.recv().await {
        if broken.swap(false, Ordering::SeqCst) {
            client = None;
        }
        if client.is_none() {
            if Instant::now() < next_attempt {
                let _ = tx.send(Cmd::Unreachable(peer, req));
                continue;
            }
            match transport::connect_peer(addr, rpc_timeout).await {
                Ok(c) => {
                    client = Some(c);
                    backoff = Duration::from_millis(20);
                }
                Err(e) => {
                    tracing::debug!(peer, %addr, error = %e, "peer unreachable");
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    let _ = tx.send(Cmd::Unreachable(peer, req));
                    continue;
                }
            }
        }
        let Some(c) = client.clone() else { continue };
        let tx = tx.clone();
        let cluster = cluster.clone();
        let broken = broken.clone();
        let patience = patience.clone();
        tokio::spawn(async move {
            let chunk = matches!(req, Request::Snapshot(_));
            let measured = chunk.then(|| patience.lock().expect("never poisoned").deadline());
            let timeout = request_deadline(rpc_timeout, measured, frozen);
            let sent = Instant::now();
            let ctx = deadline(timeout);
            let outcome: Result<Option<Reply>, String> = match req.clone() {
                Request::Vote(r) => {
                    flatten(c.request_vote(ctx, cluster, r).await).map(|r| Some(Reply::Vote(r)))
                }
                Request::Append(r) => {
                    flatten(c.append_entries(ctx, cluster, r).await).map(|r| Some(Reply::Append(r)))
                }
                Request::Snapshot(r) => flatten(c.install_snapshot(ctx, cluster, r).await)
                    .map(|r| Some(Reply::Snapshot(r))),
                Request::TimeoutNow(r) => {
                    flatten(c.timeout_now(ctx, cluster, r).await).map(|()| None)
                }
            };
            if chunk && !frozen {
                let mut p = patience.lock().expect("never poisoned");
                match &outcome {
                    Ok(_) => p.answered(sent.elapsed()),
                    Err(e) if e.contains("deadline") => p.timed_out(),
                    Err(_) => {}
                }
            }
            if let (Request::Append(a), Ok(Some(_))) = (&req, &outcome)
                && !a.entries.is_empty()
            {
                let _ = tx.send(Cmd::AppendRoundTrip(sent.elapsed()));
            }
            match outcome {
                Ok(Some(reply)) => drop(tx.send(Cmd::Reply(peer, reply))),
                Ok(None) => {}
                Err(e) => {
                    if !e.contains("deadline") {
                        broken.store(true, Ordering::SeqCst);
                    }
                    tracing::debug!(peer, error = %e, "peer RPC failed");
                    let _ = tx.send(Cmd::Unreachable(peer, req));
                }
            }
        });
    }
}

pub(super) fn flatten<T>(
    r: Result<Result<T, PeerError>, tarpc::client::RpcError>,
) -> Result<T, String> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            // A peer that is stopping or whose disk is full drops requests many times a second: not a warning.
            if matches!(e, PeerError::Stopping) {
                tracing::debug!(error = %e, "peer dropped RPC");
            } else {
                tracing::warn!(error = %e, "peer refused RPC");
            }
            Err(e.to_string())
        }
        Err(tarpc::client::RpcError::DeadlineExceeded) => Err("deadline exceeded".into()),
        Err(e) => Err(e.to_string()),
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
}
