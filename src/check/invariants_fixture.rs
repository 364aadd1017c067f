//! What the live-invariant tests build their sessions from, Raft's (`invariants_feed_tests`) and Paxos's
//! (`invariants_paxos_tests`) alike: statuses (from [`crate::state::fixture`], which the dashboard's tests
//! use too), a three-node session fed through the dashboard state, and the lines it printed as broken.

use squall_node::paxos::Ballot;
use squall_node::rpc::{EventRecord, NodeEvent, NodeStatus};

pub(super) use crate::state::fixture::{node_status as status, paxos_status};
use crate::state::{ClusterState, Event, FeedKind, ProcessState, Stamped};

/// Ballot `round.proposer`.
pub(super) fn b(round: u64, proposer: u64) -> Ballot {
    Ballot { round, proposer }
}

/// A session of nodes 1–3 that has started, no process reported yet.
pub(super) fn session() -> ClusterState {
    let mut s = ClusterState::new();
    s.apply(&Stamped::new(
        0,
        Event::SessionStarted {
            cluster_id: "c".into(),
            nodes: vec![1, 2, 3],
            dir: "/d".into(),
        },
    ));
    s
}

/// A [`session`] whose three processes run, node N as pid `1000 + N`.
pub(super) fn started() -> ClusterState {
    let mut s = session();
    for node in 1..=3 {
        running(&mut s, 1, node, 1000 + node as u32);
    }
    s
}

/// Node `node`'s process runs as `pid` from `at`.
pub(super) fn running(s: &mut ClusterState, at: u64, node: u64, pid: u32) {
    s.apply(&Stamped::new(
        at,
        Event::Process {
            node,
            state: ProcessState::Running { pid },
        },
    ));
}

/// Node `node`'s process is restarted at `at` (`wipe`: with its data removed).
pub(super) fn restarting(s: &mut ClusterState, at: u64, node: u64, wipe: bool) {
    s.apply(&Stamped::new(
        at,
        Event::Process {
            node,
            state: ProcessState::Restarting { wipe },
        },
    ));
}

/// A status poll of `node` at `at`.
pub(super) fn polled(s: &mut ClusterState, at: u64, node: u64, status: NodeStatus) {
    s.apply(&Stamped::new(at, Event::Status { node, status }));
}

/// A poll of Raft node `node` (process `pid`) in `term` with its log ending at `last`, all committed.
pub(super) fn poll(s: &mut ClusterState, at: u64, node: u64, pid: u32, term: u64, last: u64) {
    polled(s, at, node, status(node, pid, term, last));
}

/// Record `seq` of `node`'s event feed, said at `at`.
pub(super) fn fed(s: &mut ClusterState, at: u64, node: u64, seq: u64, event: NodeEvent) {
    s.apply(&Stamped::new(
        at,
        Event::NodeFeed {
            node,
            record: EventRecord {
                seq,
                at_ms: at,
                event,
            },
        },
    ));
}

/// The feed's `INVARIANT BROKEN` lines, oldest first.
pub(super) fn broken(s: &ClusterState) -> Vec<String> {
    s.feed
        .iter()
        .filter(|l| l.kind == FeedKind::Violation)
        .map(|l| l.text.clone())
        .collect()
}
