//! One poller per node: status and event feed about ten times a second, through the kind's status driver, each call with its own deadline,
//! so a paused or dead node costs a timeout in its own task and never stalls anything else.

use std::net::SocketAddr;
use std::time::Duration;

use squall_node::rpc::NodeStatus;

use super::Cluster;
use super::command::NodeId;
use crate::kind::drivers::StatusSource;
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
    let mut source: Option<(SocketAddr, Box<dyn StatusSource>)> = None;
    let mut last: Option<NodeStatus> = None;
    let mut last_counters_at = std::time::Instant::now();
    let mut reachable = true;
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        // Looked up on every tick: a restarted node may listen on new ports.
        let Some(addr) = cluster.status_addr(id) else {
            continue;
        };
        if source.as_ref().is_none_or(|(a, _)| *a != addr) {
            source = Some((
                addr,
                cluster.inner.spec.kind.status_source(addr, CALL_TIMEOUT),
            ));
        }
        let mut report = match source.as_mut().expect("made").1.poll().await {
            Ok(r) => r,
            Err(e) => {
                lost(&cluster, id, &mut reachable, e);
                continue;
            }
        };
        reachable = true;
        // What a node did (asked for votes, won them) reaches the feed ahead of the status that shows the
        // outcome (it leads), and the story reads in order.
        for record in std::mem::take(&mut report.feed) {
            cluster.emit(Event::NodeFeed { node: id, record });
        }
        // A kind without the full picture has nothing the dashboard can draw yet: the neutral fields are
        // what a later event will carry (see the README, "Node kinds").
        let Some(status) = report.detail else {
            cluster.record_role(id, report.role, report.term);
            continue;
        };
        // The full status first: whoever reads the leader from the roles finds its configuration there.
        cluster.record_status(id, &status);
        cluster.record_role(id, report.role, report.term);
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
