//! Unit tests of recovery from possible data loss (the `recovery` module): issue 18's S2, S3 and H3 at the
//! level of the core.

use super::tests::{append, cfg, log_of, node, vote_req};
use super::*;

/// The probes `r` sent in its last ready: peer and the position asked about.
fn probes(r: &mut Raft) -> Vec<(NodeId, (Term, Index))> {
    r.take_ready()
        .messages
        .into_iter()
        .filter_map(|(to, m)| match m {
            Request::Vote(v) if v.pre_vote && v.term == 0 => {
                Some((to, (v.last_log_term, v.last_log_index)))
            }
            _ => None,
        })
        .collect()
}

/// A probe answer from `from`: its term, and whether it vouches for the probed position.
fn answer(r: &mut Raft, from: NodeId, term: Term, vouched: bool) {
    r.handle_reply(
        from,
        Reply::Vote(RequestVoteReply {
            term,
            voter: from,
            granted: vouched,
            pre_vote: true,
            removed_by: None,
        }),
    );
}

fn heartbeat(term: Term, leader: NodeId, prev: (Index, Term), commit: Index) -> AppendEntries {
    AppendEntries {
        leader,
        heartbeat: true,
        ..append(term, prev, vec![], commit)
    }
}

/// A node restored from `restored` whose storage said it may have lost data.
fn marked(id: NodeId, n: u64, term: Term, terms: &[Term]) -> Raft {
    let mut r = node(id, n, term, terms);
    r.mark_lost_data();
    r
}

#[test]
fn a_wiped_node_never_grants_a_second_vote_in_a_term_it_may_have_voted_in() {
    // S2: node 3 voted for node 1 in term 5, then lost its disk. Node 2 never heard of term 5.
    let mut voter = node(3, 3, 4, &[1]);
    assert!(
        voter
            .handle_request_vote(vote_req(5, 1, (1, 1), false))
            .granted
    );
    let mut voter = marked(3, 3, 0, &[]);
    assert!(voter.recovering(), "a wiped node starts recovering");
    for pre_vote in [true, false] {
        assert!(
            !voter
                .handle_request_vote(vote_req(5, 2, (1, 1), pre_vote))
                .granted,
            "granted term 5 again (pre_vote {pre_vote}) before learning anything"
        );
    }
    voter.tick();
    let sent = probes(&mut voter);
    assert_eq!(
        sent.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![1, 2],
        "probes the other voters"
    );
    // Only node 2 answers (node 1 is cut off): not a majority of the others, so nothing is learned.
    answer(&mut voter, 2, 4, false);
    assert!(voter.recovering());
    assert!(
        !voter
            .handle_request_vote(vote_req(5, 2, (1, 1), false))
            .granted,
        "granted term 5 on one answer"
    );
    // A stale leader of term 4 is answered with term 0, which no leader counts.
    let rep = voter.handle_append_entries(heartbeat(4, 2, (0, 0), 0));
    assert_eq!(rep.term, 0);
    assert!(!rep.success);
    // Node 1 answers with term 5: T = 5.
    answer(&mut voter, 1, 5, false);
    assert!(voter.recovering(), "an empty log needs a leader's catch-up");
    assert!(
        !voter
            .handle_request_vote(vote_req(5, 2, (1, 1), false))
            .granted,
        "granted term 5, which a majority says may have been voted in"
    );
    assert_eq!(
        voter.handle_append_entries(heartbeat(4, 2, (0, 0), 0)).term,
        5,
        "a leader of a term below T is not told T (so it would lead on)"
    );
    // The leader of term 5 catches it up through its term's no-op, committed: recovered, its term-5 vote
    // counted as cast for that leader.
    let rep = voter.handle_append_entries(append(5, (0, 0), log_of(&[1, 5]), 2));
    assert!(rep.success);
    assert!(!voter.recovering());
    assert_eq!((voter.term(), voter.vote), (5, Some(2)));
    assert!(
        voter
            .take_warnings()
            .iter()
            .any(|w| w.contains("recovered"))
    );
    assert!(
        !voter
            .handle_request_vote(vote_req(5, 1, (1, 1), false))
            .granted
    );
    voter.leader_contact = 100;
    assert!(
        voter
            .handle_request_vote(vote_req(6, 1, (2, 5), false))
            .granted,
        "a later term is a new vote"
    );
}

#[test]
fn a_node_that_cut_its_tail_does_not_help_elect_a_leader_lacking_it() {
    // H3: node 2 acknowledged entry 3 (term 1) with node 1; a bit flip made it cut entry 3. Node 3 never
    // received it and campaigns for term 2 while node 1 is down.
    let mut f = marked(2, 3, 1, &[1, 1]);
    f.tick();
    assert_eq!(probes(&mut f), vec![(1, (1, 2)), (3, (1, 2))]);
    answer(&mut f, 3, 1, true);
    for pre_vote in [true, false] {
        assert!(
            !f.handle_request_vote(vote_req(2, 3, (2, 1), pre_vote))
                .granted,
            "helped elect node 3 (pre_vote {pre_vote}) without hearing from node 1"
        );
    }
    // Node 1 is back and answers: its log (entry 3) is ahead of node 2's position.
    answer(&mut f, 1, 1, false);
    assert!(f.recovering());
    assert!(
        !f.handle_request_vote(vote_req(2, 3, (2, 1), false)).granted,
        "elected a leader lacking entry 3"
    );
    // Node 1 campaigns with entry 3: it holds everything node 2 may have lost.
    assert!(
        !f.handle_request_vote(vote_req(2, 1, (3, 1), true)).granted,
        "the first request only raises the probed position"
    );
    f.tick();
    let sent = probes(&mut f);
    assert!(sent.contains(&(1, (1, 3))), "{sent:?}");
    answer(&mut f, 1, 1, true);
    assert!(
        f.handle_request_vote(vote_req(2, 1, (3, 1), true)).granted,
        "pre-vote for the candidate holding the cut entry"
    );
    assert!(f.handle_request_vote(vote_req(2, 1, (3, 1), false)).granted);
    assert!(
        f.recovering(),
        "still recovering until the new leader catches it up"
    );
    assert!(
        !f.handle_request_vote(vote_req(2, 3, (2, 1), false)).granted,
        "voted twice in term 2"
    );
    let rep = f.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(
            2,
            (2, 1),
            vec![super::tests::ent(3, 1), super::tests::ent(4, 2)],
            4,
        )
    });
    assert!(rep.success);
    assert!(!f.recovering());
}

#[test]
fn a_recovering_node_does_not_vouch_for_another_recovering_node() {
    // Simulation seed 796581733296: node 2 led term 1 and committed entry 7 with node 3 (node 1 is at 4).
    // Node 3 cut entry 7 as a damaged record; before anyone caught it up, node 2 was wiped. A wiped node's
    // empty log is "behind" every position, but it is no witness: it has forgotten what it acknowledged, so
    // its answer must not complete the majority of the others that lets node 3 finish (and then lead term 20
    // lacking entry 7).
    let mut cut = marked(3, 3, 1, &[1, 1, 1, 1, 1, 1]);
    let mut wiped = marked(2, 3, 0, &[]);
    assert!(wiped.recovering());
    let mut behind = node(1, 3, 15, &[1, 1, 1, 1]);
    cut.tick();
    let probe = cut
        .take_ready()
        .messages
        .into_iter()
        .find_map(|(to, m)| match m {
            Request::Vote(v) if to == 2 && v.term == 0 => Some(v),
            _ => None,
        })
        .expect("a probe to node 2");
    assert_eq!((probe.last_log_term, probe.last_log_index), (1, 6));
    let from_wiped = wiped.handle_request_vote(probe.clone());
    let from_behind = behind.handle_request_vote(probe);
    assert!(from_behind.granted, "node 1 (at 4) vouches for position 6");
    cut.handle_reply(2, Reply::Vote(from_wiped));
    cut.handle_reply(1, Reply::Vote(from_behind));
    assert!(
        cut.recovering(),
        "finished recovering on a wiped node's word, lacking committed entry 7"
    );
    assert!(
        !cut.handle_request_vote(vote_req(16, 1, (4, 1), false))
            .granted,
        "voted for a candidate lacking entry 7"
    );
}

#[test]
fn a_leader_that_has_not_committed_in_its_term_does_not_end_recovery() {
    // Simulation seed 796582025176: entry 4 (term 3) was committed by nodes 1 and 2; node 3 lacks it. Node 2
    // was wiped. Node 1 restarted (its commit index is volatile: 0) and won term 6; its first appends carry
    // commit 0, which the wiped node "caught up to" with one entry. Finishing then let node 2 vote for node 3
    // in term 7, which led lacking entry 4.
    let mut w = marked(2, 3, 0, &[]);
    assert!(w.recovering());
    answer(&mut w, 1, 5, false);
    answer(&mut w, 3, 4, false);
    assert!(w.recovering());
    let rep = w.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(6, (0, 0), vec![super::tests::ent(1, 1)], 0)
    });
    assert!(rep.success);
    assert!(
        w.recovering(),
        "finished on a leader's commit index that covers nothing of its own term"
    );
    assert!(
        !w.handle_request_vote(vote_req(7, 3, (3, 3), false)).granted,
        "voted for a candidate lacking entry 4"
    );
    let rep = w.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(
            6,
            (1, 1),
            vec![
                super::tests::ent(2, 1),
                super::tests::ent(3, 3),
                super::tests::ent(4, 3),
                super::tests::ent(5, 6),
            ],
            5,
        )
    });
    assert!(rep.success);
    assert!(
        !w.recovering(),
        "caught up through an entry the leader committed in its own term"
    );
}

#[test]
fn a_snapshot_chunk_a_recovering_follower_refused_is_resent_at_the_next_heartbeat() {
    // Simulation seed 796582026241: node 2 cut a damaged record, restarted (forgetting what it had probed)
    // and was sent a snapshot chunk before it had learned the current term; its answer (term 0, which no
    // leader counts) left the chunk "in flight" until the chunk timeout, 20 election timeouts, so the
    // transfer and node 2's recovery did not finish within the run.
    let (mut r, first) = super::tests::leader_streaming_snapshot(b"0123456789");
    let mut f = marked(2, 3, 1, &[]);
    f.take_ready();
    let answer = f.handle_install_snapshot(first.clone());
    assert_eq!(
        answer.term, 0,
        "the recovering follower has not validated the leader"
    );
    r.handle_reply(2, Reply::Snapshot(answer));
    let mut resent = Vec::new();
    for _ in 0..4 {
        r.tick();
        resent.extend(super::tests::chunks_to(&r.take_ready(), 2));
    }
    assert!(
        resent.iter().any(|c| c.offset == first.offset),
        "the refused chunk was not resent within two heartbeats: {resent:?}"
    );
}

#[test]
fn a_new_cluster_does_not_recover_and_two_empty_recovering_nodes_do_not_vouch_for_each_other() {
    // A new member (an empty directory started `--initial-state new`) has never voted: it is not recovering.
    let mut r = node(1, 3, 0, &[]);
    assert!(!r.recovering());
    let mut campaigned = false;
    for _ in 0..40 {
        r.tick();
        campaigned |= r
            .take_ready()
            .events
            .iter()
            .any(|e| matches!(e, RaftEvent::ElectionStarted { .. }));
    }
    assert!(campaigned);
    // A node that lost its data is no witness, not even for another empty one (tester report A1).
    let mut w = marked(1, 3, 0, &[]);
    w.tick();
    assert_eq!(probes(&mut w), vec![(2, (0, 0)), (3, (0, 0))]);
    let mut peer = marked(2, 3, 0, &[]);
    let rep = peer.handle_request_vote(RequestVote {
        term: 0,
        candidate: 1,
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: true,
        transfer: false,
        round: 0,
    });
    assert_eq!(
        (rep.term, rep.granted),
        (0, false),
        "an empty recovering node vouched"
    );
    assert!(
        peer.take_ready().events.is_empty(),
        "a probe changes nothing"
    );
    w.handle_reply(2, Reply::Vote(rep));
    // A new member (empty, not recovering) of the same cluster does vouch: it holds nothing that was lost.
    let fresh = node(3, 3, 0, &[]).handle_request_vote(RequestVote {
        term: 0,
        candidate: 1,
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: true,
        transfer: false,
        round: 0,
    });
    assert_eq!((fresh.term, fresh.granted), (0, true));
    w.handle_reply(3, Reply::Vote(fresh));
    assert!(
        w.recovering(),
        "one of two others is not a majority of them"
    );
}

#[test]
fn a_wiped_member_with_a_stale_configuration_waits_for_the_current_leader() {
    // S3: the configuration is {2,3,4} (node 1 removed while down); node 3 is wiped and restarts with its
    // startup configuration {1,2,3}; a partition 1,3 | 2,4 lets it reach only node 1.
    let mut w = marked(3, 3, 0, &[]);
    w.tick();
    probes(&mut w);
    answer(&mut w, 1, 3, true);
    for t in [4, 5] {
        assert!(!w.handle_request_vote(vote_req(t, 1, (1, 1), false)).granted);
    }
    let rep = w.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(5, (0, 0), log_of(&[1]), 0)
    });
    assert_eq!(
        rep.term, 0,
        "answered the removed node as if it could count"
    );
    assert!(w.recovering());
    // The partition heals; node 2 answers (term 6), and the leader of {2,3,4} catches it up.
    answer(&mut w, 2, 6, false);
    assert!(
        !w.handle_request_vote(vote_req(6, 1, (1, 1), false)).granted,
        "voted in a term a majority may have used"
    );
    let conf = Entry {
        index: 2,
        term: 6,
        payload: Payload::Config(Membership::with_voters([2, 3, 4])),
    };
    let rep = w.handle_append_entries(AppendEntries {
        leader: 4,
        ..append(6, (0, 0), vec![super::tests::ent(1, 1), conf], 2)
    });
    assert!(rep.success);
    assert_eq!(w.membership(), &Membership::with_voters([2, 3, 4]));
    assert!(
        w.recovering(),
        "node 4, a voter of the configuration it learned, has not answered"
    );
    let mut sent = Vec::new();
    for _ in 0..3 {
        w.tick();
        sent.extend(probes(&mut w));
    }
    assert!(sent.contains(&(4, (6, 2))), "{sent:?}");
    answer(&mut w, 4, 6, true);
    w.handle_append_entries(heartbeat(6, 4, (2, 6), 2));
    assert!(!w.recovering());
    assert_eq!(w.vote, Some(4));
}

#[test]
fn a_two_voter_cluster_with_one_wiped_voter_still_elects() {
    // Configuration {2,3}: node 2 wiped, node 3 holds everything and needs node 2's vote.
    let mut w = Raft::new(
        Config {
            peers: vec![3],
            ..cfg(2, 3)
        },
        Restored::default(),
    );
    w.mark_lost_data();
    w.tick();
    assert_eq!(probes(&mut w), vec![(3, (0, 0))]);
    answer(&mut w, 3, 7, false);
    assert!(!w.handle_request_vote(vote_req(8, 3, (40, 7), true)).granted);
    w.tick();
    assert_eq!(probes(&mut w), vec![(3, (7, 40))]);
    answer(&mut w, 3, 7, true);
    assert!(
        !w.handle_request_vote(vote_req(7, 3, (40, 7), false))
            .granted,
        "term 7 may hold its forgotten vote"
    );
    assert!(
        w.handle_request_vote(vote_req(8, 3, (40, 7), false))
            .granted
    );
}

#[test]
fn a_recovering_nodes_refusal_answer_is_ignored_by_the_leader() {
    let mut l = super::tests::leader(3, 1, &[]);
    let before = l.status().progress;
    l.handle_reply(
        2,
        Reply::Append(AppendEntriesReply {
            term: 0,
            follower: 2,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            last_log_index: 0,
            read_round: 0,
            req_prev_index: 0,
            req_last_index: 0,
            heartbeat: true,
            recovering: false,
        }),
    );
    assert_eq!(l.role(), Role::Leader);
    assert_eq!(l.status().progress, before);
}

#[test]
fn a_sole_voter_that_lost_data_stays_recovering_and_says_what_to_do() {
    // Tester report C13: `-n 1`, `wipe 1` used to finish recovering at once and lead term 1 again. The only
    // voter has no one to learn its lost term from: it stays recovering until an operator acts.
    for restored in [
        Restored::default(),
        Restored {
            hard_state: HardState {
                term: 3,
                vote: None,
            },
            snapshot: None,
            entries: log_of(&[1, 3]),
        },
    ] {
        let mut r = Raft::new(
            Config {
                peers: vec![],
                ..cfg(1, 1)
            },
            restored,
        );
        r.mark_lost_data();
        let mut campaigned = false;
        for _ in 0..100 {
            r.tick();
            campaigned |= r
                .take_ready()
                .events
                .iter()
                .any(|e| matches!(e, RaftEvent::ElectionStarted { .. }));
        }
        assert!(r.recovering());
        assert!(!campaigned, "a sole voter that lost data campaigned");
        assert_ne!(r.role(), Role::Leader);
        let said = r.take_warnings();
        assert_eq!(
            said.iter().filter(|w| w.contains("only voter")).count(),
            1,
            "{said:?}"
        );
        assert!(said.iter().any(|w| w.contains("--initial-state new")));
    }
}

#[test]
fn a_recovering_node_tells_a_candidate_of_a_term_it_cannot_grant_the_term_it_learned() {
    // Simulation seed 1885 (with data loss): node 2 campaigned for term 5, and node 3 (since removed by node
    // 1, without knowing it) adopted term 5; node 2 then cut that damaged record and is back at term 4. Node 1
    // leads nothing and needs node 2's vote; it is at term 4 and never hears of term 5 from anyone but node 2,
    // which learned it from node 3's probe answer. If node 2 refuses node 1's pre-vote for term 5 with its own
    // term 4, node 1 asks for term 5 again forever.
    let mut f = marked(2, 3, 4, &[3, 3]);
    f.tick();
    assert_eq!(probes(&mut f).len(), 2);
    // Node 1 holds more of the log; node 3 no more than node 2.
    answer(&mut f, 1, 4, false);
    answer(&mut f, 3, 5, true);
    assert!(f.recovering());
    let mut c = node(1, 3, 4, &[3, 3, 3]);
    let refused = f.handle_request_vote(vote_req(5, 1, (3, 3), true));
    assert!(
        !refused.granted,
        "granted a pre-vote for term 5, which may hold its forgotten vote"
    );
    assert_eq!(
        refused.term, 5,
        "the refusal does not carry the term node 2 learned"
    );
    // The candidate adopts it and asks for the next term. Its position, ahead of the probed one, is probed;
    // once node 1 vouches for it, node 2 grants.
    c.start_election(true, false);
    c.take_ready();
    c.handle_reply(2, Reply::Vote(refused));
    assert_eq!(c.term(), 5);
    assert!(!f.handle_request_vote(vote_req(6, 1, (3, 3), true)).granted);
    f.tick();
    assert_eq!(probes(&mut f), vec![(1, (3, 3))]);
    answer(&mut f, 1, 4, true);
    assert!(f.handle_request_vote(vote_req(6, 1, (3, 3), true)).granted);
}

#[test]
fn a_node_that_lost_its_vote_to_an_election_in_flight_never_votes_again_in_that_term() {
    // Simulation seed 800000000531: node 4 campaigned for term 1 and node 5 granted it its vote; node 5 then
    // cut the damaged record holding that vote (or lost its disk). Nodes 1, 2 and 3, a majority of node 5's
    // others, had not heard of term 1 yet and answered its probes with term 0. Node 4's election is still in
    // flight with node 5's forgotten vote: if node 5 now grants node 2 a vote in term 1, both can win term 1.
    let mut voter = node(5, 5, 0, &[]);
    assert!(
        voter
            .handle_request_vote(vote_req(1, 4, (0, 0), false))
            .granted
    );
    let mut voter = marked(5, 5, 0, &[]);
    voter.tick();
    assert_eq!(
        probes(&mut voter).iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    for peer in [1, 2, 3] {
        answer(&mut voter, peer, 0, true);
    }
    for pre_vote in [true, false] {
        assert!(
            !voter
                .handle_request_vote(vote_req(1, 2, (0, 0), pre_vote))
                .granted,
            "granted term 1 (pre_vote {pre_vote}) while node 4, which may hold its vote in term 1, is unheard"
        );
    }
    assert!(
        voter.recovering(),
        "finished recovering before hearing from node 4, whose election may hold its vote"
    );
    // The candidate stored term 1 before asking for votes, so its answer bounds the forgotten vote's term.
    answer(&mut voter, 4, 1, true);
    assert!(!voter.recovering());
    assert!(
        !voter
            .handle_request_vote(vote_req(1, 2, (0, 0), false))
            .granted,
        "granted a second vote in term 1"
    );
    assert!(
        voter
            .handle_request_vote(vote_req(2, 2, (0, 0), false))
            .granted,
        "a later term is a new vote"
    );
}

/// Node `id` restored at `term` with a log of term-1 entries of `len` entries, one of them (`at`) the
/// configuration `conf`, marked as one that may have lost data.
fn cut_with_config(id: NodeId, term: Term, len: Index, at: Index, conf: Membership) -> Raft {
    let entries = (1..=len)
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: if i == at {
                Payload::Config(conf.clone())
            } else {
                Payload::Command(vec![i as u8])
            },
        })
        .collect();
    let mut r = Raft::new(
        cfg(id, 3),
        Restored {
            hard_state: HardState {
                term,
                vote: Some(1),
            },
            snapshot: None,
            entries,
        },
    );
    r.mark_lost_data();
    r
}

#[test]
fn a_node_that_cut_a_configuration_entry_does_not_help_elect_a_leader_lacking_it() {
    // Simulation seed 796631174296: the configuration was {1,2,3,6} (entry 2 here); entry 4, the change to
    // {1,2,6}, committed with the acknowledgements of nodes 1 and 2, a majority of the new configuration. Node 2
    // then cut the damaged record holding entry 4, so it judges majorities with {1,2,3,6} again. Nodes 3 and 6
    // lack entry 4 and vouch for node 2's position (3, term 1): a majority of its others, but not a witness
    // of the commit, whose quorum outside node 2 is node 1 alone. Node 2 finished recovering on their word and
    // then led term 10 with their votes, lacking entry 4.
    let mut f = cut_with_config(2, 1, 3, 2, Membership::with_voters([1, 2, 3, 6]));
    assert_eq!(f.membership(), &Membership::with_voters([1, 2, 3, 6]));
    f.tick();
    assert_eq!(probes(&mut f), vec![(1, (1, 3)), (3, (1, 3)), (6, (1, 3))]);
    answer(&mut f, 3, 1, true);
    answer(&mut f, 6, 1, true);
    // Node 1 holds entry 4: it does not vouch.
    answer(&mut f, 1, 1, false);
    assert!(
        f.recovering(),
        "finished recovering on the word of nodes 3 and 6, which lack the committed entry 4"
    );
    for candidate in [3, 6] {
        for pre_vote in [true, false] {
            assert!(
                !f.handle_request_vote(vote_req(5, candidate, (3, 1), pre_vote))
                    .granted,
                "granted node {candidate} (pre_vote {pre_vote}), which lacks the committed entry 4"
            );
        }
    }
    // Node 1, holding entry 4, campaigns: its position is probed, and once every other member vouched for it,
    // node 2 grants.
    assert!(!f.handle_request_vote(vote_req(6, 1, (4, 1), true)).granted);
    let mut sent = Vec::new();
    for _ in 0..3 {
        f.tick();
        sent.extend(probes(&mut f));
    }
    assert!(sent.contains(&(1, (1, 4))), "{sent:?}");
    answer(&mut f, 1, 1, true);
    assert!(f.handle_request_vote(vote_req(6, 1, (4, 1), true)).granted);
    assert!(f.handle_request_vote(vote_req(6, 1, (4, 1), false)).granted);
    assert!(f.recovering(), "it still lacks entry 4");
}

#[test]
fn a_term_learned_once_stays_good_for_a_leader_after_a_stale_snapshot_configuration_names_a_removed_voter()
 {
    // Tester3 finding 1: node 3, wiped, learned T = 5 from nodes 1 and 2 (its configuration {1,2,3}). The
    // leader's snapshot was taken before node 4 was removed, so it carries {1,2,3,4}; the removal follows in
    // the leader's log. Node 4 is gone and never answers a probe: if T had to be learned again from every voter
    // of the snapshot's configuration, node 3 would answer every append with term 0 and never receive the
    // removal that would free it.
    let mut w = marked(3, 3, 0, &[]);
    w.tick();
    assert_eq!(probes(&mut w), vec![(1, (0, 0)), (2, (0, 0))]);
    answer(&mut w, 1, 5, false);
    answer(&mut w, 2, 5, false);
    let meta = SnapshotMeta {
        last_index: 10,
        last_term: 4,
    };
    let rep = w.handle_install_snapshot(InstallSnapshot {
        term: 5,
        leader: 1,
        meta,
        offset: 0,
        data: b"state".to_vec(),
        done: true,
        chunk_id: 1,
        config: Some(ConfState {
            index: 8,
            config: Membership::with_voters([1, 2, 3, 4]),
        }),
    });
    assert_eq!((rep.term, rep.done), (5, true));
    assert_eq!(w.membership(), &Membership::with_voters([1, 2, 3, 4]));
    assert!(w.recovering());
    w.take_ready();
    let removal = Entry {
        index: 11,
        term: 5,
        payload: Payload::Config(Membership::with_voters([1, 2, 3])),
    };
    let rep = w.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(5, (10, 4), vec![removal, super::tests::ent(12, 5)], 12)
    });
    assert_eq!(
        rep.term, 5,
        "answered the leader of the term it learned with term 0, waiting for the removed node 4"
    );
    assert!(rep.success);
    assert_eq!(w.membership(), &Membership::with_voters([1, 2, 3]));
    assert!(
        !w.recovering(),
        "caught up by the leader of T through an entry of its term"
    );
}

#[test]
fn a_recovering_node_answers_a_leader_below_the_term_it_learned_with_that_term() {
    // Simulation seed 796617983015: node 4 cut a damaged record and learned T = 15 from node 2's probe
    // answer (node 2 had campaigned alone up to 15, and was wiped before anyone else heard of it). Node 5 leads
    // term 13. Node 4 answered its appends with term 0, which a leader ignores: node 5 led on, node 4 could
    // never accept a leader below 15, and it stayed behind for good. Told 15, the stale leader steps down and
    // the next election is above it.
    let mut l = super::tests::leader(3, 12, &[1]);
    l.take_ready();
    assert_eq!(l.term(), 13);
    let mut f = marked(2, 3, 12, &[1]);
    f.tick();
    probes(&mut f);
    // Node 1 holds more than node 2 (what node 2 cut): node 2 stays recovering.
    answer(&mut f, 1, 13, false);
    answer(&mut f, 3, 15, true);
    assert!(f.recovering());
    let hb = super::tests::appends_to(
        &{
            for _ in 0..2 {
                l.tick();
            }
            l.take_ready()
        },
        2,
    )
    .into_iter()
    .next()
    .expect("a heartbeat to node 2");
    let rep = f.handle_append_entries(hb);
    assert!(!rep.success);
    assert_eq!(rep.term, 15, "a leader below T was not told T");
    l.handle_reply(2, Reply::Append(rep));
    assert_eq!((l.role(), l.term()), (Role::Follower, 15));
    // A snapshot chunk of a stale leader is answered the same way.
    let rep = f.handle_install_snapshot(InstallSnapshot {
        term: 14,
        leader: 3,
        meta: SnapshotMeta {
            last_index: 5,
            last_term: 1,
        },
        offset: 0,
        data: vec![1],
        done: true,
        chunk_id: 1,
        config: None,
    });
    assert_eq!(rep.term, 15);
}

/// Drives recovering node `id` of an `n`-voter cluster through a probe round at `(0, 0)` (every other voter at
/// `term`, the ones in `recovering` answering "nothing to tell"), a campaign of `candidate` at `pos` that
/// raises the probed position, and a second round where every voter not recovering vouches for `pos`.
/// Returns whether it then grants `candidate`'s vote in `term + 1`.
fn grants_with_others_recovering(
    id: NodeId,
    n: u64,
    recovering: &[NodeId],
    candidate: NodeId,
    pos: (Index, Term),
    term: Term,
) -> bool {
    let mut w = marked(id, n, 0, &[]);
    for round in 0..2 {
        w.tick();
        for (peer, _) in probes(&mut w) {
            if recovering.contains(&peer) {
                answer(&mut w, peer, 0, false);
            } else {
                answer(&mut w, peer, term, round == 1);
            }
        }
        if round == 0 {
            assert!(
                !w.handle_request_vote(vote_req(term + 1, candidate, pos, false))
                    .granted,
                "granted before any voter vouched for the candidate's position"
            );
            // The next tick probes again at once with the candidate's position.
        }
    }
    w.handle_request_vote(vote_req(term + 1, candidate, pos, false))
        .granted
}

#[test]
fn a_recovering_voter_passes_over_another_recovering_voter_while_the_rest_meet_every_quorum() {
    // Simulation seed 796680141338: of six voters, node 5 cut a damaged record and node 3 was wiped. Each
    // answered the other's probes with "nothing to tell", so neither could ever have every other voter vouch,
    // and neither voted until a leader caught it up: the four others had to elect unanimously, and without
    // PreVote a stale node's campaigns kept that from happening for 335 ticks after the faults healed. The
    // two of six that lost data are fewer than any quorum of a configuration one change away can hold
    // (a majority of five is three), so nodes 1, 2, 4 and 6 vouching is enough.
    assert!(
        grants_with_others_recovering(3, 6, &[5], 2, (33, 63), 63),
        "node 3 refused the up-to-date candidate although every voter not recovering vouched for it"
    );
    // Seven voters, three recovering (nodes 1, 6 and 7): fewer than four, a majority of the six left after a
    // removal.
    assert!(grants_with_others_recovering(
        1,
        7,
        &[6, 7],
        2,
        (33, 63),
        63
    ));
}

#[test]
fn a_recovering_voter_does_not_pass_over_recovering_voters_that_could_complete_a_quorum() {
    // Three voters: the wiped node and one more recovering are a majority (tester report A1 at its smallest).
    assert!(!grants_with_others_recovering(1, 3, &[3], 2, (33, 63), 63));
    // Five voters, three of them recovering: a majority of five.
    assert!(!grants_with_others_recovering(
        1,
        5,
        &[4, 5],
        2,
        (33, 63),
        63
    ));
    // Six voters, three of them recovering: in the configuration without one of the others (five voters),
    // the three are a majority, and such a quorum may have committed what all three lost.
    assert!(!grants_with_others_recovering(
        3,
        6,
        &[5, 6],
        2,
        (33, 63),
        63
    ));
    // Four voters, two recovering: half of four, and a majority of three after a removal.
    assert!(!grants_with_others_recovering(1, 4, &[4], 2, (33, 63), 63));
}

#[test]
fn a_node_whose_cut_brought_back_an_uncommitted_removal_still_asks_the_removed_voter() {
    // Simulation seed 796683164128: in {1,2,3}, leader 2 of term 1 appended `Remove(3)` (entry 8 here) that
    // never committed. Node 3 led term 4; node 2 truncated its entries from 7 on, took node 3's entry 7 (term
    // 4), which committed with nodes 2 and 3. Node 2 then cut its damaged last WAL record, which undid both the
    // truncation and entry 7: it holds its old term-1 entries 1-14 again, `Remove(3)` among them, so {1,2} is in
    // effect. Node 1 (at 5, term 1) lacks entry 7 and vouches; node 3, the only other holder of entry 7, is the
    // one the removal leaves out. Asking node 1 alone, node 2 finished recovering and led term 7 without entry 7.
    let mut f = cut_with_config(2, 4, 14, 8, Membership::with_voters([1, 2]));
    assert_eq!(f.membership(), &Membership::with_voters([1, 2]));
    f.tick();
    assert_eq!(
        probes(&mut f),
        vec![(1, (1, 14)), (3, (1, 14))],
        "the removal at 8 is not committed here, so {{1,2,3}} may still be in effect: node 3 is asked too"
    );
    answer(&mut f, 1, 4, true);
    assert!(
        f.recovering(),
        "finished recovering on node 1's word alone, which lacks the committed entry 7 (term 4)"
    );
    for pre_vote in [true, false] {
        assert!(
            !f.handle_request_vote(vote_req(7, 1, (5, 1), pre_vote))
                .granted,
            "granted node 1 (pre_vote {pre_vote}), which lacks the committed entry 7"
        );
    }
    // Node 3 holds entry 7 of term 4: it does not vouch for (1, 14).
    answer(&mut f, 3, 4, false);
    assert!(f.recovering(), "node 3 holds what node 2 lacks");
    // Node 3, holding entry 7, campaigns in term 7: its position is probed, and once every member of every
    // configuration node 2 may be in vouched for it, node 2 grants.
    assert!(!f.handle_request_vote(vote_req(7, 3, (7, 4), true)).granted);
    let mut sent = Vec::new();
    for _ in 0..3 {
        f.tick();
        sent.extend(probes(&mut f));
    }
    // Node 1 vouched for (1, 14), so for the later (4, 7) too: only node 3 is asked again.
    assert_eq!(sent.first(), Some(&(3, (4, 7))), "{sent:?}");
    assert!(sent.iter().all(|p| p.0 == 3), "{sent:?}");
    answer(&mut f, 3, 4, true);
    assert!(f.handle_request_vote(vote_req(7, 3, (7, 4), true)).granted);
    assert!(f.handle_request_vote(vote_req(7, 3, (7, 4), false)).granted);
}
