//! Paxos's live invariants (issue 23): statuses of Paxos nodes that break one value per slot, a chosen value
//! never changing, or no accept below a promise, fed to the checker directly and through the dashboard state.

use squall_node::paxos::Ballot;

use super::invariants::{Invariants, Observation, PAXOS_PROPERTIES, Property};
use super::invariants_fixture::{b, broken, fed, paxos_status as status, polled, session};

/// A poll of Paxos node `node` (process `100 + node`) at 1 s: promised `promised`, chosen `chosen` (slot, value)
/// up to the last of them, accepted `accepted` (slot, ballot).
fn paxos(
    node: u64,
    promised: Ballot,
    chosen: &[(u64, &str)],
    accepted: &[(u64, Ballot)],
) -> Observation {
    Invariants::observation(1_000, node, &status(node, promised, chosen, accepted))
}

fn one(found: Vec<super::invariants::Violation>, p: Property) -> super::invariants::Violation {
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].property, p, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn a_healthy_paxos_stream_breaks_nothing_and_names_paxos_properties() {
    let mut c = Invariants::new();
    let chosen = [(1, "noop"), (2, "put a=1")];
    let acc = [(1, b(1, 1)), (2, b(1, 1))];
    for node in 1..=3 {
        assert!(c.observe(&paxos(node, b(1, 1), &chosen, &acc)).is_empty());
    }
    // A new leader at a higher ballot re-accepts slot 3; slots accepted at an older ballot stay below the
    // new promise, which is no violation: they were accepted before it.
    let acc2 = [(1, b(1, 1)), (2, b(1, 1)), (3, b(2, 3))];
    let chosen2 = [(1, "noop"), (2, "put a=1"), (3, "put b=2")];
    for node in 1..=3 {
        assert!(
            c.observe(&paxos(node, b(2, 3), &chosen2, &acc2)).is_empty(),
            "{:?}",
            c.violations()
        );
    }
    assert_eq!(c.properties(), PAXOS_PROPERTIES);
    let held = c.held_text();
    assert!(held.contains("paxos: one value chosen per slot"), "{held}");
    assert!(!held.contains("log matching"), "{held}");
}

#[test]
fn two_values_chosen_in_one_slot_on_two_nodes() {
    let mut c = Invariants::new();
    c.observe(&paxos(1, b(2, 1), &[(5, "put a=1")], &[(5, b(2, 1))]));
    let v = one(
        c.observe(&paxos(3, b(3, 3), &[(5, "put a=2")], &[(5, b(3, 3))])),
        Property::OneValuePerSlot,
    );
    assert_eq!(v.nodes, vec![1, 3]);
    assert_eq!(
        v.to_string(),
        "paxos: one value chosen per slot violated: slot 5 was chosen as `put a=1` on n1 (accepted at \
         ballot 2.1) but as `put a=2` on n3 (accepted at ballot 3.3)"
    );
}

#[test]
fn a_chosen_value_that_changes_on_one_node() {
    let mut c = Invariants::new();
    c.observe(&paxos(2, b(1, 1), &[(4, "put a=1")], &[(4, b(1, 1))]));
    let v = one(
        c.observe(&paxos(2, b(2, 2), &[(4, "noop")], &[(4, b(2, 2))])),
        Property::ChosenNeverChanges,
    );
    assert!(
        v.evidence.contains(
            "n2 showed slot 4 chosen as `put a=1` (accepted at ballot 1.1) and later as `noop`"
        ),
        "{v}"
    );
}

#[test]
fn an_accept_below_the_promise_of_the_previous_poll() {
    let mut c = Invariants::new();
    c.observe(&paxos(2, b(4, 1), &[], &[(7, b(4, 1))]));
    // Slot 8 appears accepted at ballot 3.3, below the 4.1 promised at the previous poll.
    let v = one(
        c.observe(&paxos(2, b(4, 1), &[], &[(7, b(4, 1)), (8, b(3, 3))])),
        Property::NoAcceptBelowPromise,
    );
    assert_eq!(v.nodes, vec![2]);
    assert_eq!(
        v.evidence,
        "n2 accepted slot 8 at ballot 3.3 after promising ballot 4.1"
    );
    // The same state polled again is not a new accept.
    assert!(
        c.observe(&paxos(2, b(4, 1), &[], &[(7, b(4, 1)), (8, b(3, 3))]))
            .is_empty()
    );
    // A slot re-accepted at a lower ballot than it held is also below the promise.
    let v = one(
        c.observe(&paxos(2, b(4, 1), &[], &[(7, b(2, 2)), (8, b(3, 3))])),
        Property::NoAcceptBelowPromise,
    );
    assert!(v.evidence.contains("slot 7 at ballot 2.2"), "{v}");
}

#[test]
fn ballots_are_named_round_dot_proposer_in_election_safety_and_monotonicity() {
    let mut c = Invariants::new();
    let mut lead = paxos(1, b(1, 3), &[], &[]);
    lead.leader = true;
    c.observe(&lead);
    // Another node claiming to lead the same ballot (1.3 is n3's ballot, so this is a node lying about it).
    let mut other = paxos(2, b(1, 3), &[], &[]);
    other.leader = true;
    let v = one(c.observe(&other), Property::ElectionSafety);
    assert!(v.evidence.contains("both led ballot 1.3"), "{v}");
    let back = paxos(1, b(1, 2), &[], &[]);
    // Named in ballots: a Paxos session's evidence never says `term monotonic` (issue 23).
    let v = one(c.observe(&back), Property::BallotMonotonic);
    assert_eq!(v.property.name(), "paxos: promised ballot monotonic");
    assert!(
        v.evidence
            .contains("n1's promised ballot went from 1.3 to 1.2 while running"),
        "{v}"
    );
}

#[test]
fn the_dashboard_prints_a_broken_paxos_invariant_naming_slot_nodes_and_ballots() {
    let mut s = session();
    polled(
        &mut s,
        100,
        1,
        status(1, b(1, 1), &[(1, "put x=1")], &[(1, b(1, 1))]),
    );
    polled(
        &mut s,
        200,
        2,
        status(2, b(2, 2), &[(1, "put x=9")], &[(1, b(2, 2))]),
    );
    let broken = broken(&s);
    assert_eq!(
        broken,
        [
            "INVARIANT BROKEN: paxos: one value chosen per slot violated: slot 1 was chosen as `put x=1` on n1 \
          (accepted at ballot 1.1) but as `put x=9` on n2 (accepted at ballot 2.2)"
        ],
        "{broken:#?}"
    );
    assert_eq!(s.invariants.violations().len(), 1);
}

#[test]
fn the_feed_and_status_lines_name_ballots_as_round_dot_proposer() {
    use squall_node::paxos::PaxosEvent;
    use squall_node::rpc::NodeEvent;
    let mut s = session();
    polled(&mut s, 50, 3, status(3, b(1, 3), &[], &[]));
    let feed = |s: &mut crate::state::ClusterState, at: u64, seq: u64, event: PaxosEvent| {
        fed(s, at, 3, seq, NodeEvent::Paxos(event));
    };
    feed(
        &mut s,
        100,
        0,
        PaxosEvent::PrepareStarted { ballot: b(1, 3) },
    );
    feed(
        &mut s,
        110,
        1,
        PaxosEvent::BecameLeader {
            ballot: b(1, 3),
            recovered: 0,
        },
    );
    let lines: Vec<String> = s.feed.iter().map(|l| l.text.clone()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "n3 starts phase 1 with ballot 1.3"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l == "n3 leads ballot 1.3"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("65539")),
        "a packed ballot: {lines:#?}"
    );
    assert_eq!(s.term_text(b(1, 3).pack()), "ballot 1.3");
}
