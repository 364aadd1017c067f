//! Peer RPC: openraft's vote, append-entries and snapshot-chunk messages as JSON in length-prefixed frames
//! (`[u32 length BE][JSON]`) over TCP, one request then its answer at a time on a connection.
//!
//! Why this framing and not HTTP: squall's per-sender proxies cut a length-prefixed stream into whole
//! messages, so every link fault — loss, duplication of nothing half, `hold` and `step`, message filters —
//! acts on one Raft message at a time and never tears a message in two. Each node is told one address per
//! peer (`--peer ID=ADDR`, the proxy squall puts on that directed link) and dials it; the answers come back
//! on the same connection, as squall's own node does.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::{Raft, TypeConfig};

/// The largest frame either side accepts.
const MAX_FRAME: usize = 64 << 20;

/// A message to a peer.
#[derive(Serialize, Deserialize)]
enum PeerRequest {
    Vote(VoteRequest<u64>),
    Append(AppendEntriesRequest<TypeConfig>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
}

/// A peer's answer; `Err` carries openraft's error as text (the sender treats it as a failed call).
#[derive(Serialize, Deserialize)]
enum PeerResponse {
    Vote(VoteResponse<u64>),
    Append(AppendEntriesResponse<u64>),
    Snapshot(InstallSnapshotResponse<u64>),
    Err(String),
}

async fn write_frame(s: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf).await
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes is over the {MAX_FRAME}-byte limit"
        )));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(body)
}

/// Serves peers on `listener`: each connection is a sequence of request, answer.
pub async fn serve(listener: TcpListener, raft: Raft) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        tokio::spawn(async move {
            while let Ok(body) = read_frame(&mut stream).await {
                let Ok(req) = serde_json::from_slice::<PeerRequest>(&body) else {
                    return;
                };
                let resp = match req {
                    PeerRequest::Vote(r) => match raft.vote(r).await {
                        Ok(v) => PeerResponse::Vote(v),
                        Err(e) => PeerResponse::Err(e.to_string()),
                    },
                    PeerRequest::Append(r) => match raft.append_entries(r).await {
                        Ok(v) => PeerResponse::Append(v),
                        Err(e) => PeerResponse::Err(e.to_string()),
                    },
                    PeerRequest::Snapshot(r) => match raft.install_snapshot(r).await {
                        Ok(v) => PeerResponse::Snapshot(v),
                        Err(e) => PeerResponse::Err(e.to_string()),
                    },
                };
                let out = serde_json::to_vec(&resp).expect("answers serialise");
                if write_frame(&mut stream, &out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Peer id to the address this node dials for it: from `--peers` at start, then from `POST /peer` and
/// `POST /add-learner` (a node added while this one runs).
pub type Peers = Arc<RwLock<BTreeMap<u64, String>>>;

/// Makes a client per peer from the addresses the node was told (`--peers`, `POST /peer`), not from the
/// membership's node records: the address to dial is squall's proxy for this directed link.
#[derive(Clone)]
pub struct Network {
    /// Where each peer is reached.
    pub peers: Peers,
    /// How long replication to a peer that could not be reached waits before it tries again: see
    /// [`backoff_for`].
    pub backoff: Duration,
}

/// The wait after a peer could not be reached, for a cluster whose largest election timeout is
/// `election_max` and heartbeat `heartbeat`: `2 × election_max + heartbeat`, longer than a follower waits
/// before it campaigns.
///
/// openraft 0.9 has no CheckQuorum: a leader that hears no answer keeps sending, and every append a follower
/// receives renews the leader's lease there. A follower campaigns only after `leader_lease + election_timeout`
/// without one (openraft's `handle_tick_election`; the lease is `election_timeout_max`), up to
/// `2 × election_max`. openraft's default backoff, a fixed 500 ms, plus one heartbeat timeout was about that
/// long with squall's 150..300 ms timeouts (550 to 600 ms against 450 to 600 ms), so a leader whose every
/// link in was cut could keep its followers from electing for a minute (tests/openraft.rs,
/// `cutting_every_link_into_the_leader_gives_a_new_leader`, under load); with `--election-timeout
/// 280..300ms` no follower ever campaigned (40 s watched), with this backoff one leads within a second.
pub fn backoff_for(election_max: Duration, heartbeat: Duration) -> Duration {
    election_max * 2 + heartbeat
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            fallback: node.addr.clone(),
            peers: self.peers.clone(),
            conn: Arc::new(Mutex::new(None)),
            backoff: self.backoff,
        }
    }
}

/// One peer's connection, made on first use and again after any failure.
pub struct PeerClient {
    target: u64,
    /// The address in the membership's node record, dialled only when this node was told none.
    fallback: String,
    peers: Peers,
    conn: Arc<Mutex<Option<TcpStream>>>,
    /// See [`backoff_for`].
    backoff: Duration,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl PeerClient {
    /// Sends one request and reads its answer within `ttl`. Any failure drops the connection: a late answer
    /// on it would be taken for the next request's. So does a call dropped half way (openraft's own timeout
    /// around it fired first): the connection is out of its slot while the call runs, and put back only once
    /// the answer is read.
    ///
    /// The callers pass openraft's soft ttl, shorter than the timeout openraft puts around the call: a peer
    /// that does not answer is reported `Unreachable` (openraft backs off, [`backoff_for`]), not left to
    /// openraft's own timeout, which reports `Timeout` and sends again at the next heartbeat, renewing the
    /// followers' leader lease. With the two deadlines equal, which fired first was down to the scheduler.
    async fn call(&self, req: &PeerRequest, ttl: Duration) -> Result<PeerResponse, String> {
        let mut conn = self.conn.lock().await;
        // Looked up on every call: an address told after the client was made (`POST /peer`) takes effect.
        let addr = self
            .peers
            .read()
            .unwrap()
            .get(&self.target)
            .cloned()
            .unwrap_or_else(|| self.fallback.clone());
        let taken = conn.take();
        let attempt = async {
            let mut s = match taken {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(&addr)
                        .await
                        .map_err(|e| format!("connect {addr}: {e}"))?;
                    let _ = s.set_nodelay(true);
                    s
                }
            };
            let body = serde_json::to_vec(req).expect("requests serialise");
            write_frame(&mut s, &body)
                .await
                .map_err(|e| e.to_string())?;
            let answer = read_frame(&mut s).await.map_err(|e| e.to_string())?;
            let answer =
                serde_json::from_slice::<PeerResponse>(&answer).map_err(|e| e.to_string())?;
            Ok((s, answer))
        };
        match tokio::time::timeout(ttl, attempt).await {
            Ok(Ok((s, answer))) => {
                *conn = Some(s);
                Ok(answer)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer from {addr} within {ttl:?}")),
        }
    }
}

fn unreachable<E: std::error::Error>(why: String) -> RpcErr<E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why)))
}

fn network<E: std::error::Error>(why: String) -> RpcErr<E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(why)))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.backoff))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self
            .call(&PeerRequest::Append(rpc), option.soft_ttl())
            .await
        {
            Ok(PeerResponse::Append(r)) => Ok(r),
            Ok(PeerResponse::Err(e)) => Err(network(e)),
            Ok(_) => Err(network("a different answer kind".into())),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self
            .call(&PeerRequest::Snapshot(rpc), option.soft_ttl())
            .await
        {
            Ok(PeerResponse::Snapshot(r)) => Ok(r),
            Ok(PeerResponse::Err(e)) => Err(network(e)),
            Ok(_) => Err(network("a different answer kind".into())),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        match self.call(&PeerRequest::Vote(rpc), option.soft_ttl()).await {
            Ok(PeerResponse::Vote(r)) => Ok(r),
            Ok(PeerResponse::Err(e)) => Err(network(e)),
            Ok(_) => Err(network("a different answer kind".into())),
            Err(e) => Err(unreachable(e)),
        }
    }
}
