//! The `squall` drivers: squall's node's control RPC for status and its event feed, and its key-value client
//! for the workloads (`squall_node::client`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use squall_node::client::KvClient as NodeClient;
use squall_node::kv::{KvOp, KvResult};
use squall_node::rpc::ControlServiceClient;
use squall_node::transport::{connect_control, deadline};

use super::drivers::{Addrs, KvAnswer, KvClient, KvOutcome, KvRequest, StatusReport, StatusSource};

/// Status through the control RPC, with the node's event feed read after each status.
pub struct SquallStatus {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<ControlServiceClient>,
    /// The event feed's cursor, and the process it belongs to (a new process starts its feed at 0).
    cursor: u64,
    pid: u32,
    /// Whether to read the event feed after each status.
    feed: bool,
}

impl SquallStatus {
    /// A source for the node whose control port is `addr`; every call has `timeout`.
    pub fn new(addr: SocketAddr, timeout: Duration) -> SquallStatus {
        SquallStatus {
            addr,
            timeout,
            conn: None,
            cursor: 0,
            pid: 0,
            feed: true,
        }
    }

    /// The same source, reading no event feed.
    pub fn without_feed(mut self) -> SquallStatus {
        self.feed = false;
        self
    }

    async fn poll_inner(&mut self) -> Result<StatusReport, String> {
        if self.conn.is_none() {
            self.conn = Some(
                connect_control(self.addr, self.timeout)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let client = self.conn.clone().expect("connected");
        let status = match client.status(deadline(self.timeout)).await {
            Ok(s) => s,
            Err(e) => {
                // tarpc does not reconnect on its own.
                self.conn = None;
                return Err(e.to_string());
            }
        };
        if status.pid != self.pid {
            self.pid = status.pid;
            self.cursor = 0;
        }
        // The feed is read after the status, so it holds everything the node did up to that status.
        let mut feed = Vec::new();
        if self.feed
            && let Ok(batch) = client
                .events(deadline(self.timeout), self.cursor, 512)
                .await
        {
            self.cursor = batch.next_cursor;
            feed = batch.events;
        }
        Ok(StatusReport {
            role: Some(status.core.role),
            term: Some(status.core.term),
            leader: Some(status.core.leader),
            commit: Some(status.core.commit_index),
            applied: Some(status.applied_index),
            pid: Some(status.pid),
            // The configuration in the full status says it.
            learner: false,
            detail: Some(status),
            feed,
            messages: None,
            notes: Vec::new(),
        })
    }
}

impl StatusSource for SquallStatus {
    fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>> {
        self.poll_inner().boxed()
    }
}

/// The workloads' client over squall's key-value API.
pub struct SquallKv {
    client: NodeClient,
}

/// How many workload clients were made in this process: the next one starts at the node after the last's.
static CLIENTS_MADE: AtomicUsize = AtomicUsize::new(0);

impl SquallKv {
    /// A client of the nodes at `addrs` (a fresh client id: sequence numbers restart with the client).
    ///
    /// Clients are spread over the nodes: each new one is bound to the node after the previous client's
    /// ([`NodeClient::bind_to`]), as Jepsen and Maelstrom bind each client to a node. A Raft node (or a Paxos node with
    /// leases) that does not lead names its leader and the client follows; a Paxos node without leases
    /// proposes what it is sent, so clients on every node make every node a proposer (dueling proposers).
    pub fn new(addrs: Addrs) -> SquallKv {
        let first = addrs
            .keys()
            .copied()
            .nth(CLIENTS_MADE.fetch_add(1, Ordering::Relaxed) % addrs.len().max(1));
        let mut client = NodeClient::new(addrs);
        client.op_timeout = Duration::from_secs(2);
        client.call_timeout = Duration::from_millis(500);
        if let Some(node) = first {
            client.bind_to(node);
        }
        SquallKv { client }
    }

    /// The node this client asks next: the one it started at, until a node names a leader.
    #[cfg(test)]
    fn asks_first(&self) -> Option<u64> {
        self.client.leader()
    }
}

impl KvClient for SquallKv {
    fn execute(&mut self, req: KvRequest) -> BoxFuture<'_, KvOutcome> {
        async move {
            let op = match req {
                KvRequest::Read { key } => KvOp::Get { key },
                KvRequest::Write { key, value } => KvOp::Put { key, value },
                KvRequest::Cas { key, from, to } => KvOp::Cas {
                    key,
                    expected: Some(from),
                    new: to,
                },
                KvRequest::Incr { key, by } => KvOp::Incr { key, by },
            };
            match self.client.execute(op).await {
                Ok(KvResult::Value(v)) => KvOutcome::Done(KvAnswer::Value(v)),
                Ok(KvResult::Ok { .. }) => KvOutcome::Done(KvAnswer::Written),
                Ok(KvResult::Cas { swapped, .. }) => KvOutcome::Done(KvAnswer::Swapped(swapped)),
                Ok(KvResult::Counter(n)) => KvOutcome::Done(KvAnswer::Counter(n)),
                // The state machine refused it when it applied it (a wrong type): it changed nothing.
                Ok(KvResult::Error(e)) => KvOutcome::Fail(e),
                // squall's client retries on its own; a call that timed out or lost its connection may have
                // been applied.
                Err(e) => KvOutcome::Info(e.to_string()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workload clients are spread over the nodes, not all started at the lowest id: a Paxos node without
    /// leases redirects nobody, so only spread clients make more than one proposer.
    #[test]
    fn workload_clients_start_at_every_node_in_turn() {
        let addrs: Addrs = (1..=3)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], 40000 + id as u16))))
            .collect();
        let mut asked = std::collections::BTreeMap::<u64, usize>::new();
        for _ in 0..30 {
            let first = SquallKv::new(addrs.clone())
                .asks_first()
                .expect("a client of three nodes starts at one of them");
            *asked.entry(first).or_default() += 1;
        }
        assert_eq!(
            asked.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3],
            "clients started at {asked:?}"
        );
    }
}
