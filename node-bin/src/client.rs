//! The bundled client: runs KV operations against a cluster, following leader hints and retrying with the
//! same `(client_id, seq)` so a write is applied at most once; and one-shot control calls (status).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::kv::{KvOp, KvResult};
use crate::raft::NodeId;
use crate::rpc::{ClientServiceRequest, ClientServiceResponse, KvReply, KvRequest, NodeStatus};
use crate::transport::{self, deadline};

/// Why an operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node answered with a result before the deadline.
    #[error("no leader answered within {}; last errors: {}", crate::cli::format_duration(*.waited), describe(.errors))]
    Unavailable {
        /// How long the client tried.
        waited: Duration,
        /// The last error seen from each node.
        errors: BTreeMap<NodeId, String>,
    },
    /// Every node refused the connection, twice over: nothing listens at the addresses given.
    #[error("nothing listens at any of the nodes' addresses ({}); is the cluster running?", describe(.errors))]
    Refused {
        /// Each node's connection error.
        errors: BTreeMap<NodeId, String>,
    },
    /// Every node given named a leader whose address was not given: no retry can reach it, so the client
    /// answers at once instead of waiting out its timeout.
    #[error("node {leader} leads, and its address was not given: add {leader}=ADDR to --peers, or use --dir DIR of the cluster ({})", describe(.errors))]
    LeaderNotGiven {
        /// The leader the nodes named.
        leader: NodeId,
        /// What each node answered.
        errors: BTreeMap<NodeId, String>,
    },
    /// The cluster map is empty.
    #[error("no nodes given: pass --dir DIR of a running cluster or --peers 1=ADDR,2=ADDR,...")]
    NoNodes,
    /// The key or value is over its limit; nothing was sent (or the node refused it unlogged).
    #[error("{0}")]
    TooLarge(#[from] crate::kv::SizeError),
}

fn describe(errors: &BTreeMap<NodeId, String>) -> String {
    if errors.is_empty() {
        return "none".into();
    }
    errors
        .iter()
        .map(|(id, e)| format!("node {id}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A KV client bound to one cluster.
pub struct KvClient {
    nodes: BTreeMap<NodeId, SocketAddr>,
    client_id: u64,
    seq: u64,
    leader: Option<NodeId>,
    /// The node this client is bound to ([`KvClient::bind_to`]): asked first, and first again after a retry.
    home: Option<NodeId>,
    conns: HashMap<NodeId, Conn>,
    /// How long one operation may take in all, retries included.
    pub op_timeout: Duration,
    /// Deadline of one RPC.
    pub call_timeout: Duration,
    /// Longest pause between retries (they back off from 10 ms up to this).
    pub max_backoff: Duration,
}

impl KvClient {
    /// A client for the nodes at these API addresses, with a random client id.
    pub fn new(nodes: BTreeMap<NodeId, SocketAddr>) -> Self {
        Self::with_id(nodes, rand::random())
    }

    /// A client with a chosen id (ids must be unique among concurrent clients).
    pub fn with_id(nodes: BTreeMap<NodeId, SocketAddr>, client_id: u64) -> Self {
        Self {
            nodes,
            client_id,
            seq: 0,
            leader: None,
            home: None,
            conns: HashMap::new(),
            op_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_millis(1000),
            max_backoff: Duration::from_millis(200),
        }
    }

    /// Names the node to ask first (a leader known from elsewhere); ignored when it is not one of the
    /// client's nodes. Without it the client starts from the lowest id and follows leader hints.
    pub fn prefer(&mut self, node: NodeId) {
        if self.nodes.contains_key(&node) {
            self.leader = Some(node);
        }
    }

    /// Binds the client to `node` (ignored when it is not one of the client's nodes), as Jepsen and Maelstrom
    /// bind each client to a node: it asks `node` first, follows a leader hint from it, and after a retry
    /// starts again at `node` rather than at the lowest id. Clients bound to different nodes then reach every
    /// node that takes values itself (a Paxos node without leases), not only the lowest.
    pub fn bind_to(&mut self, node: NodeId) {
        if self.nodes.contains_key(&node) {
            self.home = Some(node);
            self.leader = Some(node);
        }
    }

    /// The node this client currently believes leads.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Runs one operation to completion: follows leader hints, retries on other nodes, gives up at `op_timeout`.
    pub async fn execute(&mut self, op: KvOp) -> Result<KvResult, ClientError> {
        if self.nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        op.check_size()?;
        self.seq += 1;
        let req = KvRequest {
            client_id: self.client_id,
            seq: self.seq,
            op,
        };
        let started = Instant::now();
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        // The home node first (see `bind_to`), else the lowest id; then each in turn.
        let mut rotate = self
            .home
            .and_then(|h| ids.iter().position(|&id| id == h))
            .unwrap_or(0);
        let mut backoff = Duration::from_millis(10).min(self.max_backoff);
        let mut errors = BTreeMap::new();
        // Connection refusals in a row: once every node has refused twice, nothing is listening.
        let mut refusals = 0usize;
        // Leader hints followed since the last pause. The first is followed at once; during a leadership
        // transfer the old leader and the target point at each other, so later ones wait like any retry.
        let mut hops = 0u32;
        // The nodes that named a leader the client has no address for, with the leader each named.
        let mut named_elsewhere: BTreeMap<NodeId, NodeId> = BTreeMap::new();
        loop {
            if started.elapsed() >= self.op_timeout {
                return Err(ClientError::Unavailable {
                    waited: started.elapsed(),
                    errors,
                });
            }
            let target = match self.leader {
                Some(l) if self.nodes.contains_key(&l) => l,
                _ => {
                    let next = ids[rotate % ids.len()];
                    rotate += 1;
                    next
                }
            };
            match self.call(target, req.clone()).await {
                Ok(KvReply::Done(result)) => {
                    self.leader = Some(target);
                    return Ok(result);
                }
                Ok(KvReply::NotLeader { leader: Some(l) })
                    if l != target && self.nodes.contains_key(&l) =>
                {
                    errors.insert(target, format!("not the leader (hint: node {l})"));
                    self.leader = Some(l);
                    refusals = 0;
                    hops += 1;
                    if hops > 1 {
                        let remaining = self.op_timeout.saturating_sub(started.elapsed());
                        tokio::time::sleep(backoff.min(remaining)).await;
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                    continue;
                }
                Ok(KvReply::NotLeader { leader: Some(l) }) if l != target => {
                    errors.insert(
                        target,
                        format!(
                            "not the leader; it names node {l} as the leader, whose address was not given \
                             (add {l}=ADDR to --peers, or use --dir)"
                        ),
                    );
                    refusals = 0;
                    named_elsewhere.insert(target, l);
                    // Every node given points at the same leader out of reach: say so now.
                    if named_elsewhere.len() == ids.len()
                        && named_elsewhere.values().all(|&n| n == l)
                    {
                        return Err(ClientError::LeaderNotGiven { leader: l, errors });
                    }
                }
                Ok(KvReply::TooLarge(e)) => return Err(ClientError::TooLarge(e)),
                Ok(KvReply::NotLeader { .. }) => {
                    errors.insert(target, "not the leader, no leader known".into());
                }
                Ok(KvReply::Retry { reason }) => {
                    errors.insert(target, reason);
                }
                Err(e) => {
                    self.conns.remove(&target);
                    if e.contains("onnection refused") {
                        refusals += 1;
                    } else {
                        refusals = 0;
                    }
                    errors.insert(target, e);
                    if refusals >= 2 * ids.len() {
                        return Err(ClientError::Refused { errors });
                    }
                }
            }
            if !matches!(errors.get(&target), Some(e) if e.contains("onnection refused")) {
                refusals = 0;
            }
            self.leader = None;
            hops = 0;
            let remaining = self.op_timeout.saturating_sub(started.elapsed());
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }

    async fn call(&mut self, node: NodeId, req: KvRequest) -> Result<KvReply, String> {
        let timeout = self.call_timeout;
        if !self.conns.contains_key(&node) {
            let addr = self.nodes[&node];
            let c = Conn::open(addr, timeout)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            self.conns.insert(node, c);
        }
        let conn = self.conns.get_mut(&node).expect("inserted");
        match tokio::time::timeout(timeout, conn.execute(req, timeout)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            // The connection may hold half a frame now: the caller drops it.
            Err(_) => Err("deadline exceeded".into()),
        }
    }
}

/// One connection to a node's client service, used by one caller at a time: the caller's own task writes the
/// request frame and reads the answer (tarpc's `ClientMessage` and `Response` frames, as tarpc's client would
/// send them), with no dispatch task in between.
struct Conn {
    read: tarpc::tokio_util::codec::FramedRead<
        tokio::net::tcp::OwnedReadHalf,
        tarpc::tokio_util::codec::LengthDelimitedCodec,
    >,
    write: tokio::net::tcp::OwnedWriteHalf,
    next_id: u64,
}

impl Conn {
    async fn open(addr: SocketAddr, timeout: Duration) -> std::io::Result<Conn> {
        let stream = transport::dial_api(addr, timeout, crate::rpc::API_CLIENT).await?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok(Conn {
            read: transport::frame_reader(read),
            write,
            next_id: 0,
        })
    }

    /// Sends `req` and waits for its answer (an answer to an earlier request that timed out is skipped).
    async fn execute(&mut self, req: KvRequest, timeout: Duration) -> std::io::Result<KvReply> {
        use futures::StreamExt as _;
        use tokio::io::AsyncWriteExt as _;
        self.next_id += 1;
        let id = self.next_id;
        let frame = transport::encode_frame(&tarpc::ClientMessage::Request(tarpc::Request {
            context: deadline(timeout),
            id,
            message: ClientServiceRequest::Execute { req },
        }))?;
        self.write.write_all(&frame).await?;
        loop {
            let body = match self.read.next().await {
                Some(body) => body?,
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            };
            let resp: tarpc::Response<ClientServiceResponse> = transport::decode_frame(&body)?;
            if resp.request_id != id {
                continue;
            }
            return match resp.message {
                Ok(ClientServiceResponse::Execute(reply)) => Ok(reply),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
        }
    }
}

/// Fetches one node's status from its API address.
pub async fn fetch_status(addr: SocketAddr, timeout: Duration) -> Result<NodeStatus, String> {
    let client = transport::connect_control(addr, timeout)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    client
        .status(deadline(timeout))
        .await
        .map_err(|e| format!("{addr}: {e}"))
}

/// Fetches where one node's recent writes spent their time, stage by stage (see [`crate::rpc::StageTiming`]).
/// A node older than the call answers with an error.
pub async fn fetch_write_path(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Vec<crate::rpc::StageTiming>, String> {
    let client = transport::connect_control(addr, timeout)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    client
        .write_path(deadline(timeout))
        .await
        .map_err(|e| format!("{addr}: {e}"))
}
