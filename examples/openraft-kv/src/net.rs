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
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            fallback: node.addr.clone(),
            peers: self.peers.clone(),
            conn: Arc::new(Mutex::new(None)),
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
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl PeerClient {
    /// Sends one request and reads its answer within `ttl`. Any failure drops the connection: a late answer
    /// on it would be taken for the next request's.
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
        let attempt = async {
            if conn.is_none() {
                let s = TcpStream::connect(&addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let _ = s.set_nodelay(true);
                *conn = Some(s);
            }
            let s = conn.as_mut().expect("connected");
            let body = serde_json::to_vec(req).expect("requests serialise");
            write_frame(s, &body).await.map_err(|e| e.to_string())?;
            let answer = read_frame(s).await.map_err(|e| e.to_string())?;
            serde_json::from_slice::<PeerResponse>(&answer).map_err(|e| e.to_string())
        };
        let result = match tokio::time::timeout(ttl, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer from {addr} within {ttl:?}")),
        };
        if result.is_err() {
            *conn = None;
        }
        result
    }
}

fn unreachable<E: std::error::Error>(why: String) -> RpcErr<E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why)))
}

fn network<E: std::error::Error>(why: String) -> RpcErr<E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(why)))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self
            .call(&PeerRequest::Append(rpc), option.hard_ttl())
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
            .call(&PeerRequest::Snapshot(rpc), option.hard_ttl())
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
        match self.call(&PeerRequest::Vote(rpc), option.hard_ttl()).await {
            Ok(PeerResponse::Vote(r)) => Ok(r),
            Ok(PeerResponse::Err(e)) => Err(network(e)),
            Ok(_) => Err(network("a different answer kind".into())),
            Err(e) => Err(unreachable(e)),
        }
    }
}
