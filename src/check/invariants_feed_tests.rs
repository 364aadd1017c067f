//! The live invariants as the dashboard state feeds them: a wipe is known from the event that performed it,
//! and votes are checked from the nodes' event feeds.

use squall_node::raft::types::{RaftEvent, Role};
use squall_node::rpc::NodeEvent;

use super::invariants_fixture::{broken, fed, poll, polled, restarting, running, started, status};
use crate::state::ClusterState;

/// A started cluster whose node 2, seen at term 6 with 40 entries, was restarted (`wipe`: empty) and runs
/// again as pid 2002, not yet polled.
fn node_2_restarted(wipe: bool) -> ClusterState {
    let mut s = started();
    poll(&mut s, 100, 2, 1002, 6, 40);
    restarting(&mut s, 200, 2, wipe);
    running(&mut s, 300, 2, 2002);
    s
}

#[test]
fn a_wiped_node_that_learned_a_term_before_its_first_poll_is_not_a_term_going_back() {
    let mut s = node_2_restarted(true);
    // Its first poll: it has already heard of term 3 (a vote request), log still empty.
    poll(&mut s, 400, 2, 2002, 3, 0);
    assert_eq!(broken(&s), Vec::<String>::new());
}

#[test]
fn a_node_back_empty_without_a_wipe_is_reported() {
    let mut s = node_2_restarted(false);
    poll(&mut s, 400, 2, 2002, 0, 0);
    let b = broken(&s);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(
        b[0].contains("term monotonic") && b[0].contains("came back empty"),
        "{b:?}"
    );
}

#[test]
fn a_second_vote_in_a_term_from_the_event_feed_is_reported() {
    let mut s = started();
    let feed = |s: &mut ClusterState, at: u64, seq: u64, candidate: u64| {
        let vote = RaftEvent::VoteGranted {
            candidate,
            term: 2,
            pre_vote: false,
            round: 0,
        };
        fed(s, at, 3, seq, NodeEvent::Raft(vote));
    };
    feed(&mut s, 100, 0, 1);
    restarting(&mut s, 200, 3, true);
    running(&mut s, 300, 3, 2003);
    feed(&mut s, 400, 0, 2);
    let b = broken(&s);
    assert_eq!(
        b,
        [
            "INVARIANT BROKEN: one vote per term violated: n3#2 voted for n2 in term 2 after n3#1 voted for n1 in that term"
        ]
    );
}

/// A poll of node 2 as leader of term 2 whose log tail holds `text` at index 5 (term 2).
fn leader_poll(s: &mut ClusterState, at: u64, pid: u32, text: &str) {
    let mut st = status(2, pid, 2, 5);
    st.core.role = Role::Leader;
    st.core.leader = Some(2);
    st.core.commit_index = 4;
    st.log_tail = vec![squall_node::rpc::LogCell {
        index: 5,
        term: 2,
        text: text.into(),
    }];
    polled(s, at, 2, st);
}

#[test]
fn a_wiped_node_is_told_apart_from_its_former_self_in_every_line() {
    // Node 2 leads term 2 holding `put a` at 5; it is wiped, comes back, and (through votes it should never
    // have got) leads term 2 again holding `put b` there. Both are real violations, but the lines used to
    // compare the node with itself ("holds `put a` on n2 but `put b` on n2"), and the second leadership of
    // term 2 was not reported at all: the leaders were keyed by node id only.
    let mut s = started();
    leader_poll(&mut s, 100, 1002, "put a");
    restarting(&mut s, 200, 2, true);
    running(&mut s, 300, 2, 2002);
    leader_poll(&mut s, 400, 2002, "put b");
    let b = broken(&s);
    assert_eq!(
        b,
        [
            "INVARIANT BROKEN: election safety violated: n2#1 and n2#2 both led term 2",
            "INVARIANT BROKEN: log matching violated: index 5 term 2 holds `put a` on n2#1 but `put b` on n2#2",
        ]
    );
}

#[test]
fn a_late_poll_of_the_process_before_a_wipe_belongs_to_the_old_life() {
    // The wipe is performed while a poll of the old process is still on its way: that poll is n2#1's, and
    // its term is not compared with the new process's (which started over from term 0).
    let mut s = node_2_restarted(true);
    poll(&mut s, 400, 2, 2002, 0, 0);
    poll(&mut s, 450, 2, 1002, 6, 40);
    poll(&mut s, 500, 2, 2002, 1, 0);
    assert_eq!(broken(&s), Vec::<String>::new());
}

/// The new process of node 2 says in its feed that it started by cutting `bytes` of WAL tail, `damaged` or
/// torn, back at term 5 with 39 entries.
fn started_after_cut(s: &mut ClusterState, at: u64, damaged: bool) {
    let started = NodeEvent::Started {
        term: 5,
        last_index: 39,
        snapshot_index: 0,
        empty: false,
        truncated_tail_bytes: 120,
        damaged_tail: damaged,
    };
    fed(s, at, 2, 0, started);
}

#[test]
fn a_restart_that_cut_a_damaged_record_starts_a_new_life() {
    // Node 2, seen at term 6, restarts without a wipe and cuts its last WAL record, damaged: that record held
    // its term 6 (maybe acknowledged), so it comes back at term 5. Like a wipe, this is data lost by a fault
    // squall was asked to make, not a term going back on a durable node: a new life, `n2#2`.
    let mut s = node_2_restarted(false);
    started_after_cut(&mut s, 350, true);
    poll(&mut s, 400, 2, 2002, 5, 39);
    assert_eq!(broken(&s), Vec::<String>::new());
    // Its new life is told apart from the old one in lines: leading term 6 again is two leaders.
    let mut st = status(2, 1002, 6, 40);
    st.core.role = Role::Leader;
    let mut s = started();
    polled(&mut s, 100, 2, st.clone());
    restarting(&mut s, 200, 2, false);
    running(&mut s, 300, 2, 2002);
    started_after_cut(&mut s, 350, true);
    st.pid = 2002;
    polled(&mut s, 400, 2, st);
    assert_eq!(
        broken(&s),
        ["INVARIANT BROKEN: election safety violated: n2#1 and n2#2 both led term 6"]
    );
}

#[test]
fn a_restart_that_cut_a_torn_write_keeps_its_life() {
    // A torn final write was never synced, so nothing in it was acknowledged: the node is the same durable
    // node, and its term going back from what a poll showed is still reported.
    let mut s = node_2_restarted(false);
    started_after_cut(&mut s, 350, false);
    poll(&mut s, 400, 2, 2002, 5, 39);
    let b = broken(&s);
    assert_eq!(
        b,
        [
            "INVARIANT BROKEN: term monotonic violated: n2's term went from 6 to 5 across a restart with its data"
        ]
    );
}
