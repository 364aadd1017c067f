//! One poller per node: status and event feed about ten times a second, each call with its own deadline,
//! so a paused or dead node costs a timeout in its own task and never stalls anything else.

use std::net::SocketAddr;
use std::time::Duration;

use squall_node::rpc::{ControlServiceClient, NodeStatus};
use squall_node::transport::{connect_control, deadline};

use super::Cluster;
use super::command::NodeId;
use crate::state::Event;

const PERIOD: Duration = Duration::from_millis(100);
const CALL_TIMEOUT: Duration = Duration::from_millis(400);

/// Status equality that ignores what changes on every poll (uptime, RPC counters).
fn same(a: &NodeStatus, b: &NodeStatus) -> bool {
    a.core == b.core
        && a.applied_index == b.applied_index
        && a.log_tail == b.log_tail
        && a.pid == b.pid
        && a.keys == b.keys
        && a.frozen == b.frozen
}

/// Reports a node unreachable once per loss of contact, not on every failed poll.
fn lost(cluster: &Cluster, id: NodeId, reachable: &mut bool, error: String) {
    if std::mem::replace(reachable, false) {
        cluster.emit(Event::Unreachable { node: id, error });
    }
}

pub(super) async fn poll_node(cluster: Cluster, id: NodeId) {
    let mut stop = cluster.stopping();
    let mut api = cluster.inner.api.subscribe();
    let mut conn: Option<(SocketAddr, ControlServiceClient)> = None;
    let mut last: Option<NodeStatus> = None;
    let mut last_counters_at = std::time::Instant::now();
    let mut cursor = 0u64;
    let mut pid = 0u32;
    let mut reachable = true;
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(addr) = api.borrow_and_update().get(&id).copied() else {
            continue;
        };
        if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
            conn = match connect_control(addr, CALL_TIMEOUT).await {
                Ok(c) => Some((addr, c)),
                Err(e) => {
                    lost(&cluster, id, &mut reachable, e.to_string());
                    continue;
                }
            };
        }
        let client = conn.as_ref().expect("connected").1.clone();
        let status = match client.status(deadline(CALL_TIMEOUT)).await {
            Ok(s) => s,
            Err(e) => {
                conn = None;
                lost(&cluster, id, &mut reachable, e.to_string());
                continue;
            }
        };
        reachable = true;
        if status.pid != pid {
            // A new process: its event feed starts again at 0.
            pid = status.pid;
            cursor = 0;
        }
        // The feed is read after the status, so it holds everything the node did up to that status, and it
        // is reported first: what a node did (asked for votes, won them) reaches the feed ahead of the status
        // that shows the outcome (it leads), and the story reads in order.
        if let Ok(batch) = client.events(deadline(CALL_TIMEOUT), cursor, 512).await {
            cursor = batch.next_cursor;
            for record in batch.events {
                cluster.emit(Event::NodeFeed { node: id, record });
            }
        }
        cluster.record_status(id, &status);
        let changed = last.as_ref().is_none_or(|l| !same(l, &status));
        if changed || last_counters_at.elapsed() >= Duration::from_secs(1) {
            last_counters_at = std::time::Instant::now();
            cluster.emit(Event::Status {
                node: id,
                status: status.clone(),
            });
            last = Some(status);
        }
    }
}
