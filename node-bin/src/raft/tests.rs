//! Unit tests of the consensus core, per handler: votes, appends, replies, the commit rule, ReadIndex,
//! transfer, snapshots and CheckQuorum.

use super::*;

pub(super) fn cfg(id: NodeId, n: u64) -> Config {
    Config {
        id,
        peers: (1..=n).filter(|&p| p != id).collect(),
        join: false,
        election_ticks_min: 10,
        election_ticks_max: 20,
        heartbeat_ticks: 2,
        pre_vote: true,
        check_quorum: true,
        max_inflight: 3,
        max_batch_entries: 2,
        max_batch_bytes: 1 << 20,
        snapshot_chunk_bytes: 4,
        seed: 1,
    }
}

pub(super) fn ent(index: Index, term: Term) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(vec![index as u8]),
    }
}

pub(super) fn log_of(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| ent(i as Index + 1, t))
        .collect()
}

/// A node restored with `term` and a log whose entry i+1 has term `terms[i]`.
pub(super) fn node(id: NodeId, n: u64, term: Term, terms: &[Term]) -> Raft {
    let restored = Restored {
        hard_state: HardState { term, vote: None },
        snapshot: None,
        entries: log_of(terms),
    };
    Raft::new(cfg(id, n), restored)
}

/// Node 1 made leader of the next term by votes from everyone, its no-op persisted, ready drained.
pub(super) fn leader(n: u64, term: Term, terms: &[Term]) -> Raft {
    let mut r = node(1, n, term, terms);
    r.start_election(false, false);
    for p in 2..=n {
        r.handle_reply(
            p,
            Reply::Vote(RequestVoteReply {
                term: r.term(),
                voter: p,
                granted: true,
                pre_vote: false,
                removed_by: None,
            }),
        );
    }
    assert_eq!(r.role(), Role::Leader);
    r.take_ready();
    let (i, t) = (r.log.last_index(), r.log.last_term());
    r.on_persisted(i, t);
    r
}

pub(super) fn vote_req(
    term: Term,
    candidate: NodeId,
    last: (Index, Term),
    pre_vote: bool,
) -> RequestVote {
    RequestVote {
        term,
        candidate,
        last_log_index: last.0,
        last_log_term: last.1,
        pre_vote,
        transfer: false,
        round: 0,
    }
}

pub(super) fn append(
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry>,
    commit: Index,
) -> AppendEntries {
    AppendEntries {
        term,
        leader: 2,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_round: 0,
        heartbeat: false,
    }
}

pub(super) fn ok_reply(from: NodeId, term: Term, match_index: Index, read_round: u64) -> Reply {
    Reply::Append(AppendEntriesReply {
        term,
        follower: from,
        success: true,
        match_index,
        conflict_term: None,
        conflict_index: 0,
        last_log_index: match_index,
        read_round,
        req_prev_index: 0,
        req_last_index: match_index,
        heartbeat: false,
        recovering: false,
    })
}

pub(super) fn appends_to(rd: &Ready, peer: NodeId) -> Vec<AppendEntries> {
    rd.messages
        .iter()
        .filter_map(|(p, m)| match m {
            Request::Append(a) if *p == peer => Some(a.clone()),
            _ => None,
        })
        .collect()
}

// ---- votes ----

#[test]
fn vote_granted_once_per_term_and_persisted() {
    let mut r = node(1, 3, 1, &[1]);
    let rep = r.handle_request_vote(vote_req(2, 2, (1, 1), false));
    assert!(rep.granted);
    assert_eq!((r.term(), r.vote), (2, Some(2)));
    let rd = r.take_ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(2)
        })
    );
    assert!(rd.events.contains(&RaftEvent::VoteGranted {
        candidate: 2,
        term: 2,
        pre_vote: false,
        round: 0,
    }));
    assert!(
        !r.handle_request_vote(vote_req(2, 3, (5, 1), false)).granted,
        "second candidate, same term"
    );
    assert!(
        r.handle_request_vote(vote_req(2, 2, (1, 1), false)).granted,
        "same candidate again"
    );
}

#[test]
fn vote_refused_for_stale_term() {
    let mut r = node(1, 3, 5, &[]);
    let rep = r.handle_request_vote(vote_req(4, 2, (9, 4), false));
    assert!(!rep.granted);
    assert_eq!(rep.term, 5);
}

#[test]
fn vote_refused_for_outdated_log() {
    let mut r = node(1, 3, 2, &[1, 2]);
    assert!(
        !r.handle_request_vote(vote_req(3, 2, (3, 1), false)).granted,
        "lower last term"
    );
    assert!(
        !r.handle_request_vote(vote_req(3, 2, (1, 2), false)).granted,
        "shorter log, same last term"
    );
    assert_eq!(
        r.term(),
        3,
        "the higher term is adopted even when the vote is refused"
    );
    assert!(r.handle_request_vote(vote_req(3, 3, (2, 2), false)).granted);
}

#[test]
fn pre_vote_changes_no_state() {
    let mut r = node(1, 3, 1, &[1]);
    r.take_ready();
    let rep = r.handle_request_vote(vote_req(2, 2, (1, 1), true));
    assert!(rep.granted && rep.pre_vote);
    assert_eq!(rep.term, 2);
    assert_eq!((r.term(), r.vote, r.role()), (1, None, Role::Follower));
    assert_eq!(r.take_ready().hard_state, None);
    assert!(
        !r.handle_request_vote(vote_req(2, 2, (0, 0), true)).granted,
        "log behind"
    );
}

#[test]
fn lease_refuses_votes_until_leader_silent_unless_transfer() {
    let mut r = node(1, 3, 1, &[]);
    assert!(
        r.handle_append_entries(append(1, (0, 0), vec![], 0))
            .success
    );
    assert!(
        !r.handle_request_vote(vote_req(2, 3, (5, 1), true)).granted,
        "pre-vote refused in lease"
    );
    assert!(
        !r.handle_request_vote(vote_req(2, 3, (5, 1), false)).granted,
        "vote refused in lease"
    );
    assert_eq!(r.term(), 1, "a refused campaign does not raise the term");
    let mut transfer = vote_req(2, 3, (5, 1), false);
    transfer.transfer = true;
    let mut r2 = node(1, 3, 1, &[]);
    r2.handle_append_entries(append(1, (0, 0), vec![], 0));
    assert!(
        r2.handle_request_vote(transfer).granted,
        "a transfer campaign ignores the lease"
    );
    for _ in 0..10 {
        r.tick();
        r.take_ready();
    }
    // After the minimum election timeout without contact the lease is over (the node may campaign itself,
    // but a real vote in a higher term is granted).
    assert!(r.handle_request_vote(vote_req(5, 3, (5, 1), false)).granted);
}

#[test]
fn election_with_pre_vote_then_vote() {
    let mut r = node(1, 3, 1, &[1]);
    for _ in 0..20 {
        r.tick();
    }
    assert_eq!(r.role(), Role::PreCandidate);
    assert_eq!(r.term(), 1, "a pre-vote round keeps the term");
    let rd = r.take_ready();
    assert!(rd.hard_state.is_none());
    assert!(
        rd.messages
            .iter()
            .all(|(_, m)| matches!(m, Request::Vote(v) if v.pre_vote && v.term == 2))
    );
    r.handle_reply(
        2,
        Reply::Vote(RequestVoteReply {
            term: 2,
            voter: 2,
            granted: true,
            pre_vote: true,
            removed_by: None,
        }),
    );
    assert_eq!((r.role(), r.term(), r.vote), (Role::Candidate, 2, Some(1)));
    let rd = r.take_ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(1)
        })
    );
    r.handle_reply(
        3,
        Reply::Vote(RequestVoteReply {
            term: 2,
            voter: 3,
            granted: true,
            pre_vote: false,
            removed_by: None,
        }),
    );
    assert_eq!(r.role(), Role::Leader);
    let rd = r.take_ready();
    assert_eq!(
        rd.entries,
        vec![Entry {
            index: 2,
            term: 2,
            payload: Payload::Noop
        }],
        "no-op at term start"
    );
    assert!(rd.events.contains(&RaftEvent::LeaderChanged {
        leader: Some(1),
        term: 2
    }));
}

#[test]
fn each_campaign_numbers_its_round_and_a_grant_names_the_round_it_answers() {
    // Successive pre-vote rounds ask for the same term; the round tells an observer which one a grant answers.
    let mut r = node(1, 3, 1, &[1]);
    let mut rounds = Vec::new();
    while rounds.len() < 2 {
        r.tick();
        let rd = r.take_ready();
        for e in &rd.events {
            if let RaftEvent::ElectionStarted {
                term,
                pre_vote,
                round,
            } = e
            {
                rounds.push((*term, *pre_vote, *round));
                let asked: Vec<u64> = rd
                    .messages
                    .iter()
                    .filter_map(|(_, m)| match m {
                        Request::Vote(v) => Some(v.round),
                        _ => None,
                    })
                    .collect();
                assert_eq!(asked, vec![*round, *round], "its requests carry its round");
            }
        }
    }
    assert_eq!(rounds, vec![(2, true, 1), (2, true, 2)]);
    // A voter's grant names the round of the request.
    let mut v = node(2, 3, 1, &[1]);
    let req = RequestVote {
        round: 2,
        ..vote_req(2, 1, (1, 1), true)
    };
    assert!(v.handle_request_vote(req).granted);
    assert!(v.take_ready().events.contains(&RaftEvent::VoteGranted {
        candidate: 1,
        term: 2,
        pre_vote: true,
        round: 2,
    }));
}

#[test]
fn refused_pre_vote_with_higher_term_makes_follower() {
    let mut r = node(1, 3, 1, &[]);
    for _ in 0..20 {
        r.tick();
    }
    assert_eq!(r.role(), Role::PreCandidate);
    r.handle_reply(
        2,
        Reply::Vote(RequestVoteReply {
            term: 7,
            voter: 2,
            granted: false,
            pre_vote: true,
            removed_by: None,
        }),
    );
    assert_eq!((r.role(), r.term()), (Role::Follower, 7));
}

// ---- append ----

#[test]
fn append_rejects_mismatch_with_conflict_hints() {
    let mut r = node(1, 3, 3, &[1, 1, 2, 2]);
    let rep = r.handle_append_entries(append(3, (4, 3), vec![], 0));
    assert!(!rep.success);
    assert_eq!((rep.conflict_term, rep.conflict_index), (Some(2), 3));
    let rep = r.handle_append_entries(append(3, (6, 3), vec![], 0));
    assert_eq!(
        (rep.conflict_term, rep.conflict_index, rep.last_log_index),
        (None, 5, 4)
    );
    let rep = r.handle_append_entries(append(2, (0, 0), vec![], 0));
    assert!(!rep.success && rep.term == 3, "stale leader refused");
}

#[test]
fn conflicting_entries_are_truncated_and_reported() {
    let mut r = node(1, 3, 2, &[1, 1, 2, 2]);
    let rep = r.handle_append_entries(append(3, (2, 1), vec![ent(3, 3)], 2));
    assert!(rep.success);
    assert_eq!(rep.match_index, 3);
    assert_eq!(r.log.last_index(), 3);
    let rd = r.take_ready();
    assert_eq!(rd.truncate_from, Some(3));
    assert_eq!(rd.entries, vec![ent(3, 3)]);
    assert!(rd.events.contains(&RaftEvent::LogTruncated {
        from_index: 3,
        count: 2
    }));
}

#[test]
fn stale_duplicate_append_does_not_truncate() {
    let mut r = node(1, 3, 1, &[]);
    assert!(
        r.handle_append_entries(append(1, (0, 0), log_of(&[1, 1, 1, 1]), 0))
            .success
    );
    r.take_ready();
    // An older, shorter copy of the same batch arrives late.
    let rep = r.handle_append_entries(append(1, (0, 0), log_of(&[1, 1]), 0));
    assert!(rep.success);
    assert_eq!(rep.match_index, 2);
    assert_eq!(r.log.last_index(), 4);
    let rd = r.take_ready();
    assert_eq!((rd.truncate_from, rd.entries.len()), (None, 0));
}

#[test]
fn follower_commit_advances_only_through_matched_entries() {
    let mut r = node(1, 3, 1, &[1, 1]);
    assert!(
        r.handle_append_entries(append(1, (1, 1), vec![], 5))
            .success
    );
    assert_eq!(
        r.log.commit, 1,
        "a heartbeat anchored at 1 commits no further"
    );
    r.handle_append_entries(append(1, (2, 1), vec![ent(3, 1)], 5));
    assert_eq!(r.log.commit, 3);
    let rd = r.take_ready();
    assert_eq!(
        rd.committed_entries
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

// ---- replies ----

#[test]
fn fast_backtracking_by_term() {
    let mut r = leader(3, 6, &[1, 1, 4, 4, 5, 5, 6, 6]);
    r.take_ready();
    let rej = |term, idx, prev| {
        Reply::Append(AppendEntriesReply {
            term: 7,
            follower: 2,
            success: false,
            match_index: 0,
            conflict_term: term,
            conflict_index: idx,
            last_log_index: 9,
            read_round: 0,
            req_prev_index: prev,
            req_last_index: prev + 1,
            heartbeat: false,
            recovering: false,
        })
    };
    // The follower has term 2 at the probe point, which the leader never had: skip its whole run.
    r.handle_reply(2, rej(Some(2), 3, 8));
    let a = &appends_to(&r.take_ready(), 2)[0];
    assert_eq!(a.prev_log_index, 2);
    // The follower has term 4 there, which the leader has too: resume after the leader's last term-4 entry.
    r.handle_reply(2, rej(Some(4), 3, 2));
    let a = &appends_to(&r.take_ready(), 2)[0];
    assert_eq!(a.prev_log_index, 4);
    // The follower's log is shorter.
    r.handle_reply(2, rej(None, 2, 4));
    let a = &appends_to(&r.take_ready(), 2)[0];
    assert_eq!(a.prev_log_index, 1);
}

#[test]
fn pipelining_respects_inflight_limit_and_probe_sends_one() {
    let mut r = leader(3, 1, &[]);
    // Probe: the no-op went out; nothing more until an answer, however many proposals.
    for i in 0..10 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.take_ready();
    assert!(
        appends_to(&rd, 2).is_empty(),
        "probe mode sends one at a time"
    );
    // The probe's answer switches to replicate: up to 3 batches of 2.
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    let rd = r.take_ready();
    let sent = appends_to(&rd, 2);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|a| a.entries.len() == 2));
    assert_eq!(sent[1].prev_log_index, 3, "optimistic next index");
    assert_eq!(r.status().progress[0].inflight, 3);
    // One acknowledged frees one slot.
    r.handle_reply(2, ok_reply(2, 2, 3, 0));
    let sent = appends_to(&r.take_ready(), 2);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].prev_log_index, 7);
    // A lost batch drops back to probing from the match point, paused until the next heartbeat.
    r.report_unreachable(2, &Request::Append(sent[0].clone()));
    r.propose(vec![99]).unwrap();
    assert!(appends_to(&r.take_ready(), 2).is_empty());
    r.tick();
    r.tick();
    // The heartbeat: an empty message anchored at the match point, then the probe again.
    let sent = appends_to(&r.take_ready(), 2);
    assert_eq!(sent.len(), 2);
    assert!(sent[0].entries.is_empty());
    assert_eq!(sent[1].prev_log_index, 3);
    assert!(!sent[1].entries.is_empty());
}

#[test]
fn commit_counts_only_current_term_entries() {
    // Figure 8: an entry of an older term on a majority is not committed by counting.
    let mut r = leader(3, 2, &[1, 2]);
    assert_eq!(r.term(), 3);
    r.take_ready();
    r.handle_reply(2, ok_reply(2, 3, 2, 0));
    assert_eq!(
        r.log.commit, 0,
        "index 2 (term 2) is on a majority but not of this term"
    );
    r.handle_reply(2, ok_reply(2, 3, 3, 0));
    assert_eq!(r.log.commit, 3);
    let rd = r.take_ready();
    assert_eq!(rd.committed_entries.len(), 3);
}

#[test]
fn leader_counts_itself_only_once_persisted() {
    let mut r = node(1, 3, 1, &[]);
    r.start_election(false, false);
    r.handle_reply(
        2,
        Reply::Vote(RequestVoteReply {
            term: 2,
            voter: 2,
            granted: true,
            pre_vote: false,
            removed_by: None,
        }),
    );
    r.take_ready();
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    assert_eq!(
        r.log.commit, 0,
        "one follower has the no-op but the leader's own copy is not durable yet"
    );
    r.on_persisted(1, 1);
    assert_eq!(r.log.commit, 0, "a report with the wrong term is ignored");
    r.on_persisted(1, 2);
    assert_eq!(r.log.commit, 1);
}

// ---- read index ----

#[test]
fn read_index_waits_for_own_term_commit_and_heartbeat_round() {
    let mut r = leader(3, 1, &[1]);
    r.take_ready();
    r.read_index(7).unwrap();
    let rd = r.take_ready();
    assert!(rd.read_states.is_empty());
    assert!(
        appends_to(&rd, 2).iter().all(|a| a.read_round == 0),
        "no round before the term's first commit"
    );
    r.handle_reply(2, ok_reply(2, 2, 2, 0));
    assert_eq!(r.log.commit, 2);
    let rd = r.take_ready();
    let round = appends_to(&rd, 2)
        .iter()
        .map(|a| a.read_round)
        .max()
        .unwrap();
    assert_eq!(round, 1, "a heartbeat round started once committed");
    assert!(rd.read_states.is_empty(), "not before a majority confirms");
    r.handle_reply(3, ok_reply(3, 2, 0, round));
    let rd = r.take_ready();
    assert_eq!(rd.read_states, vec![ReadState { ctx: 7, index: 2 }]);
}

#[test]
fn read_index_old_round_ack_does_not_confirm() {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.take_ready();
    r.read_index(1).unwrap();
    r.read_index(2).unwrap();
    r.take_ready();
    r.handle_reply(3, ok_reply(3, 2, 1, 1));
    assert_eq!(
        r.take_ready().read_states,
        vec![ReadState { ctx: 1, index: 1 }]
    );
    r.handle_reply(2, ok_reply(2, 2, 1, 2));
    assert_eq!(
        r.take_ready().read_states,
        vec![ReadState { ctx: 2, index: 1 }]
    );
}

#[test]
fn read_index_single_node_is_immediate_and_fails_off_leader() {
    let mut r = leader(1, 0, &[]);
    assert_eq!(r.log.commit, 1);
    r.read_index(3).unwrap();
    assert_eq!(
        r.take_ready().read_states,
        vec![ReadState { ctx: 3, index: 1 }]
    );

    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.read_index(4).unwrap();
    r.handle_append_entries(AppendEntries {
        leader: 3,
        ..append(9, (0, 0), vec![], 0)
    });
    let rd = r.take_ready();
    assert_eq!(
        rd.failed_reads,
        vec![ReadFailed {
            ctx: 4,
            leader_hint: Some(3)
        }]
    );
    assert_eq!(
        r.read_index(5),
        Err(NotLeader {
            leader_hint: Some(3)
        })
    );
}

// ---- transfer ----

#[test]
fn transfer_brings_target_up_to_date_then_sends_timeout_now() {
    let mut r = leader(3, 1, &[]);
    assert_eq!(
        r.transfer_leadership(1),
        Err(TransferError::AlreadyLeader(1))
    );
    assert_eq!(r.transfer_leadership(9), Err(TransferError::UnknownNode(9)));
    r.transfer_leadership(2).unwrap();
    assert_eq!(
        r.propose(vec![1]),
        Err(NotLeader {
            leader_hint: Some(2)
        })
    );
    let rd = r.take_ready();
    assert!(
        !rd.messages
            .iter()
            .any(|(_, m)| matches!(m, Request::TimeoutNow(_))),
        "target not caught up"
    );
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    let rd = r.take_ready();
    assert!(
        rd.messages
            .contains(&(2, Request::TimeoutNow(TimeoutNow { term: 2, leader: 1 })))
    );
    // Not taken over within an election timeout: abandoned, proposals accepted again.
    for _ in 0..10 {
        r.tick();
    }
    assert!(r.propose(vec![1]).is_ok());
}

#[test]
fn timeout_now_campaigns_at_once_skipping_pre_vote() {
    let mut r = node(2, 3, 2, &[1]);
    r.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(2, (1, 1), vec![], 1)
    });
    r.take_ready();
    r.handle_timeout_now(TimeoutNow { term: 2, leader: 1 });
    assert_eq!((r.role(), r.term()), (Role::Candidate, 3));
    let rd = r.take_ready();
    assert!(
        rd.messages
            .iter()
            .all(|(_, m)| matches!(m, Request::Vote(v) if v.transfer && !v.pre_vote))
    );
    // A voter in lease honours it.
    let mut voter = node(3, 3, 2, &[1]);
    voter.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(2, (1, 1), vec![], 1)
    });
    let Request::Vote(v) = rd.messages[0].1.clone() else {
        unreachable!()
    };
    assert!(voter.handle_request_vote(v).granted);
}

// ---- snapshots ----

#[test]
fn compact_drops_entries_and_keeps_data() {
    let mut r = leader(1, 0, &[]);
    for i in 0..4 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.take_ready();
    let last = rd.entries.last().unwrap();
    r.on_persisted(last.index, last.term);
    assert_eq!(
        r.take_ready().committed_entries.last().map(|e| e.index),
        Some(5)
    );
    r.compact(4, b"state".to_vec());
    assert_eq!(r.status().snapshot_index, 4);
    assert_eq!(r.entries_from(0, 10).len(), 1);
    let rd = r.take_ready();
    assert!(rd.events.contains(&RaftEvent::SnapshotTaken {
        meta: SnapshotMeta {
            last_index: 4,
            last_term: 1
        }
    }));
    assert!(rd.committed_entries.is_empty());
    r.compact(9, vec![]);
    assert_eq!(r.status().snapshot_index, 4, "cannot compact past applied");
}

#[test]
fn lagging_follower_gets_snapshot_in_chunks() {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(3, ok_reply(3, 2, 1, 0));
    for i in 0..4 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.take_ready();
    let last = rd.entries.last().unwrap().clone();
    r.on_persisted(last.index, last.term);
    r.handle_reply(3, ok_reply(3, 2, 5, 0));
    r.take_ready();
    r.compact(5, b"0123456789".to_vec());
    // Follower 2 never answered; its probe is rejected with a short log.
    r.handle_reply(
        2,
        Reply::Append(AppendEntriesReply {
            term: 2,
            follower: 2,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            last_log_index: 0,
            read_round: 0,
            req_prev_index: 0,
            req_last_index: 1,
            heartbeat: false,
            recovering: false,
        }),
    );
    let rd = r.take_ready();
    let chunks: Vec<InstallSnapshot> = rd
        .messages
        .iter()
        .filter_map(|(_, m)| {
            if let Request::Snapshot(s) = m {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(chunks.len(), 1, "one chunk in flight");
    assert_eq!(
        (chunks[0].offset, chunks[0].data.as_slice(), chunks[0].done),
        (0, &b"0123"[..], false)
    );
    assert!(r.status().progress[0].snapshotting);

    let mut f = node(2, 3, 1, &[1, 1, 1, 1, 1, 1, 1]); // diverging old log
    f.take_ready();
    let rep = f.handle_install_snapshot(chunks[0].clone());
    assert_eq!((rep.next_offset, rep.done), (4, false));
    // A duplicate of the first chunk changes nothing.
    assert_eq!(f.handle_install_snapshot(chunks[0].clone()).next_offset, 4);
    r.handle_reply(2, Reply::Snapshot(rep));
    let mut next = r.take_ready();
    loop {
        let Some(Request::Snapshot(c)) = next
            .messages
            .iter()
            .map(|(_, m)| m.clone())
            .find(|m| matches!(m, Request::Snapshot(_)))
        else {
            panic!("expected another chunk")
        };
        let rep = f.handle_install_snapshot(c.clone());
        r.handle_reply(2, Reply::Snapshot(rep.clone()));
        next = r.take_ready();
        if rep.done {
            break;
        }
    }
    let rd = f.take_ready();
    let snap = rd.snapshot.expect("snapshot handed to the driver");
    assert_eq!(
        (snap.meta.last_index, snap.data.as_slice()),
        (5, &b"0123456789"[..])
    );
    assert!(rd.entries.is_empty() && rd.truncate_from.is_none() && rd.committed_entries.is_empty());
    assert!(
        rd.events
            .iter()
            .any(|e| matches!(e, RaftEvent::SnapshotInstalled { .. }))
    );
    assert_eq!((f.log.commit, f.log.last_index()), (5, 5));
    // The leader resumes normal replication after the snapshot.
    assert_eq!(r.status().progress[0].match_index, 5);
    assert!(!r.status().progress[0].snapshotting);
}

#[test]
fn snapshot_chunk_out_of_order_asks_for_resume_point() {
    let mut f = node(2, 3, 1, &[]);
    let meta = SnapshotMeta {
        last_index: 9,
        last_term: 1,
    };
    let chunk = |offset: u64, data: &[u8], done| InstallSnapshot {
        term: 1,
        leader: 1,
        meta,
        offset,
        data: data.to_vec(),
        done,
        chunk_id: offset + 1,
        config: None,
    };
    assert_eq!(
        f.handle_install_snapshot(chunk(4, b"4567", false))
            .next_offset,
        0
    );
    assert_eq!(
        f.handle_install_snapshot(chunk(0, b"0123", false))
            .next_offset,
        4
    );
    assert_eq!(
        f.handle_install_snapshot(chunk(8, b"89", true)).next_offset,
        4,
        "gap: not done"
    );
    assert!(f.take_ready().snapshot.is_none());
    assert_eq!(
        f.handle_install_snapshot(chunk(4, b"4567", false))
            .next_offset,
        8
    );
    assert!(f.handle_install_snapshot(chunk(8, b"89", true)).done);
    assert_eq!(f.take_ready().snapshot.unwrap().data, b"0123456789");
}

#[test]
fn snapshot_matching_own_log_just_commits() {
    let mut f = node(2, 3, 1, &[1, 1, 1, 1]);
    let rep = f.handle_install_snapshot(InstallSnapshot {
        term: 1,
        leader: 1,
        meta: SnapshotMeta {
            last_index: 3,
            last_term: 1,
        },
        offset: 0,
        data: vec![1],
        done: false,
        chunk_id: 1,
        config: None,
    });
    assert!(rep.done);
    assert_eq!((f.log.commit, f.log.last_index()), (3, 4));
    let rd = f.take_ready();
    assert!(rd.snapshot.is_none());
    assert_eq!(rd.committed_entries.len(), 3);
}

// ---- check quorum ----

#[test]
fn leader_without_majority_steps_down() {
    let mut r = leader(5, 1, &[]);
    r.take_ready();
    // One follower answers, two are needed besides the leader.
    for _ in 0..9 {
        r.tick();
        r.handle_reply(2, ok_reply(2, 2, 0, 0));
    }
    assert_eq!(r.role(), Role::Leader);
    r.tick();
    assert_eq!(r.role(), Role::Follower);
    let rd = r.take_ready();
    assert!(rd.events.contains(&RaftEvent::QuorumLost { term: 2 }));
    assert!(rd.events.contains(&RaftEvent::RoleChanged {
        role: Role::Follower,
        term: 2
    }));
}

#[test]
fn leader_with_majority_keeps_leading() {
    let mut r = leader(3, 1, &[]);
    for _ in 0..50 {
        r.tick();
        r.handle_reply(3, ok_reply(3, 2, 0, 0));
    }
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn higher_term_reply_deposes_leader() {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 5, 0, 0));
    assert_eq!((r.role(), r.term(), r.leader()), (Role::Follower, 5, None));
}

// ---- hostile conditions (issue 8) ----

pub(super) fn reply_to(a: &AppendEntries, follower: NodeId, success: bool, last: Index) -> Reply {
    let req_last = a.prev_log_index + a.entries.len() as u64;
    Reply::Append(AppendEntriesReply {
        term: a.term,
        follower,
        success,
        match_index: if success { req_last } else { 0 },
        conflict_term: None,
        conflict_index: if success { 0 } else { last + 1 },
        last_log_index: last,
        read_round: a.read_round,
        req_prev_index: a.prev_log_index,
        req_last_index: req_last,
        heartbeat: a.heartbeat,
        recovering: false,
    })
}

pub(super) fn chunks_to(rd: &Ready, peer: NodeId) -> Vec<InstallSnapshot> {
    rd.messages
        .iter()
        .filter_map(|(p, m)| match m {
            Request::Snapshot(s) if *p == peer => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_late_rejection_overtaken_by_successes_is_ignored() {
    // Batches [2,3] and [4,5] in flight; [4,5] is rejected first (the follower holds only 1), then both
    // are acknowledged, then the rejection arrives again, late.
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.take_ready();
    for i in 0..4 {
        r.propose(vec![i]).unwrap();
    }
    let sent = appends_to(&r.take_ready(), 2);
    assert_eq!(
        sent.iter().map(|a| a.prev_log_index).collect::<Vec<_>>(),
        vec![1, 3]
    );
    let rejection = reply_to(&sent[1], 2, false, 1);
    r.handle_reply(2, rejection.clone());
    let probe = appends_to(&r.take_ready(), 2);
    assert_eq!(probe[0].prev_log_index, 1, "probes from the follower's end");
    r.handle_reply(2, reply_to(&sent[0], 2, true, 3));
    r.handle_reply(2, reply_to(&probe[0], 2, true, 3));
    for a in appends_to(&r.take_ready(), 2) {
        let last = a.prev_log_index + a.entries.len() as u64;
        r.handle_reply(2, reply_to(&a, 2, true, last));
    }
    r.take_ready();
    assert_eq!(r.status().progress[0].match_index, 5);
    // Compact, then the late rejection: the follower must not be sent back to probing, nor a snapshot.
    r.handle_reply(3, ok_reply(3, 2, 5, 0));
    r.take_ready();
    r.compact(5, b"state".to_vec());
    r.handle_reply(2, rejection);
    let rd = r.take_ready();
    let p = r.status().progress[0];
    assert_eq!(p.match_index, 5, "a stale answer lowered the match index");
    assert!(!p.snapshotting && chunks_to(&rd, 2).is_empty());
    assert!(appends_to(&rd, 2).is_empty(), "nothing to resend");
}

/// Leader (term 2) whose log 1..=5 is compacted into `data`, with follower 2 being sent that snapshot:
/// returns the leader and the first chunk.
pub(super) fn leader_streaming_snapshot(data: &[u8]) -> (Raft, InstallSnapshot) {
    let mut r = leader(3, 1, &[]);
    for i in 0..4 {
        r.propose(vec![i]).unwrap();
    }
    let rd = r.take_ready();
    let last = rd.entries.last().unwrap().clone();
    r.on_persisted(last.index, last.term);
    r.handle_reply(3, ok_reply(3, 2, 5, 0));
    r.take_ready();
    r.compact(5, data.to_vec());
    r.handle_reply(
        2,
        Reply::Append(AppendEntriesReply {
            term: 2,
            follower: 2,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            last_log_index: 0,
            read_round: 0,
            req_prev_index: 0,
            req_last_index: 1,
            heartbeat: false,
            recovering: false,
        }),
    );
    let chunks = chunks_to(&r.take_ready(), 2);
    assert_eq!(chunks.len(), 1);
    (r, chunks[0].clone())
}

#[test]
fn at_most_one_snapshot_chunk_is_in_flight_whatever_answers_repeat() {
    let (mut r, first) = leader_streaming_snapshot(b"0123456789");
    let mut f = node(2, 3, 1, &[]);
    f.take_ready();
    let answer = f.handle_install_snapshot(first.clone());
    r.handle_reply(2, Reply::Snapshot(answer.clone()));
    let second = chunks_to(&r.take_ready(), 2);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].offset, 4);
    assert_ne!(second[0].chunk_id, first.chunk_id);
    // The same answer again (a duplicated request answered twice, or a late one): nothing more is sent.
    r.handle_reply(2, Reply::Snapshot(answer.clone()));
    assert!(
        chunks_to(&r.take_ready(), 2).is_empty(),
        "a second chunk went out"
    );
    // The answer to a duplicate of the first chunk, arriving late, neither.
    let dup = f.handle_install_snapshot(first);
    assert_eq!(dup.chunk_id, answer.chunk_id);
    r.handle_reply(2, Reply::Snapshot(dup));
    assert!(chunks_to(&r.take_ready(), 2).is_empty());
    // A report that the first chunk failed does not free the slot of the second.
    r.report_unreachable(2, &Request::Snapshot(second[0].clone()).clone());
    r.report_unreachable(
        2,
        &Request::Snapshot(InstallSnapshot {
            chunk_id: answer.chunk_id,
            ..second[0].clone()
        }),
    );
    let resent = chunks_to(&r.take_ready(), 2);
    assert!(
        resent.is_empty(),
        "an unreachable report resends only at the heartbeat"
    );
}

#[test]
fn a_snapshot_transfer_finishes_across_new_compactions_and_continues_with_entries() {
    let (mut r, first) = leader_streaming_snapshot(b"AAAAAAAAAA");
    let mut f = node(2, 3, 1, &[]);
    f.take_ready();
    let mut answer = f.handle_install_snapshot(first);
    // Meanwhile the leader commits more and compacts again, twice.
    for round in 0..2u8 {
        for i in 0..3 {
            r.propose(vec![round * 10 + i]).unwrap();
        }
        let rd = r.take_ready();
        let last = rd.entries.last().unwrap().clone();
        r.on_persisted(last.index, last.term);
        r.handle_reply(3, ok_reply(3, 2, last.index, 0));
        r.take_ready();
        r.compact(last.index, vec![b'B' + round; 10]);
        assert_eq!(r.snapshot_meta().last_index, last.index);
        // The follower keeps answering within the CheckQuorum window.
        r.handle_reply(2, Reply::Snapshot(answer.clone()));
        let next = chunks_to(&r.take_ready(), 2);
        assert_eq!(next.len(), 1);
        assert_eq!(
            next[0].meta.last_index, 5,
            "the transfer switched to the newer snapshot (round {round})"
        );
        assert_eq!(&next[0].data[..], &b"AAAA"[..next[0].data.len().min(4)]);
        answer = f.handle_install_snapshot(next[0].clone());
        if answer.done {
            break;
        }
    }
    assert!(answer.done, "10 bytes in chunks of 4 take three answers");
    let rd = f.take_ready();
    assert_eq!(rd.snapshot.unwrap().meta.last_index, 5);
    r.handle_reply(2, Reply::Snapshot(answer));
    let rd = r.take_ready();
    // Entries 6.. were kept for it: replication continues from the snapshot it installed.
    let next = appends_to(&rd, 2);
    assert!(
        chunks_to(&rd, 2).is_empty(),
        "a second snapshot was started"
    );
    assert_eq!(next[0].prev_log_index, 5);
    assert!(!next[0].entries.is_empty());
}

pub(super) fn take_warnings_empty(r: &mut Raft) -> bool {
    r.take_warnings().is_empty()
}

#[test]
fn the_heartbeat_of_a_follower_in_probe_is_empty() {
    let mut r = leader(3, 1, &[]);
    r.take_ready();
    r.propose(vec![7; 4096]).unwrap();
    r.take_ready();
    r.tick();
    r.tick();
    let sent = appends_to(&r.take_ready(), 2);
    assert!(
        sent.iter().any(|a| a.entries.is_empty()),
        "the probe's entries were the only heartbeat: {sent:?}"
    );
}

#[test]
fn a_heartbeat_answer_frees_a_slot_held_by_a_silently_lost_batch() {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.take_ready();
    for i in 0..10 {
        r.propose(vec![i]).unwrap();
    }
    let sent = appends_to(&r.take_ready(), 2);
    assert_eq!(sent.len(), 3, "window full");
    // All three are lost and nobody reports it; the follower answers heartbeats.
    r.tick();
    r.tick();
    let hb = appends_to(&r.take_ready(), 2)
        .into_iter()
        .find(|a| a.entries.is_empty())
        .expect("a heartbeat");
    r.handle_reply(2, reply_to(&hb, 2, true, 1));
    let sent = appends_to(&r.take_ready(), 2);
    assert_eq!(sent.len(), 1, "a slot was freed");
    // Its rejection (the gap) sends the follower back to probing from where it is.
    r.handle_reply(2, reply_to(&sent[0], 2, false, 1));
    let probe = appends_to(&r.take_ready(), 2);
    assert_eq!(probe[0].prev_log_index, 1);
}

#[test]
fn a_malformed_append_is_refused_in_release_builds_too() {
    let mut f = node(2, 3, 1, &[1]);
    let gap = append(1, (1, 1), vec![ent(2, 1), ent(4, 1)], 0);
    let rep = f.handle_append_entries(gap);
    assert!(!rep.success);
    assert_eq!(f.log.last_index(), 1);
    let rep = f.handle_append_entries(append(1, (1, 1), vec![ent(2, 3)], 0));
    assert!(!rep.success, "entry term above the leader's");
    let rep = f.handle_append_entries(append(2, (1, 1), vec![ent(2, 2), ent(3, 1)], 0));
    assert!(!rep.success, "terms going down");
    let warnings = f.take_warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].contains("malformed"), "{warnings:?}");
}

/// A core rebuilt in-process from a log of `terms` (after a full disk), knowing `known` committed.
fn rebuilt(terms: &[Term], known: Index) -> Raft {
    let mut f = node(2, 3, 1, terms);
    f.restore_commit(known);
    f
}

#[test]
fn a_rebuilt_core_restores_the_commit_index_it_knew_as_far_as_its_log_reaches() {
    let mut f = rebuilt(&[1, 1, 1, 1, 1], 3);
    assert_eq!(f.commit_index(), 3);
    let rd = f.take_ready();
    assert_eq!(
        rd.committed_entries
            .iter()
            .map(|e| e.index)
            .collect::<Vec<_>>(),
        vec![1, 2, 3],
        "the driver re-gets them and skips what it applied"
    );
    assert!(rd.events.is_empty(), "{:?}", rd.events);
    // Never past the restored log (a floor above it says nothing of entries it does not hold).
    assert_eq!(rebuilt(&[1, 1], 9).commit_index(), 2);
    // Never back.
    let mut f = rebuilt(&[1, 1, 1], 3);
    f.restore_commit(1);
    assert_eq!(f.commit_index(), 3);
    // Entries it knows committed are never truncated by a conflicting AppendEntries.
    let mut f = rebuilt(&[1, 1, 1], 3);
    let rep = f.handle_append_entries(append(2, (1, 1), vec![ent(2, 2)], 2));
    assert!(!rep.success);
    assert_eq!(f.log.term(2), Some(1));
}

#[test]
fn a_snapshot_after_a_full_disk_does_not_call_committed_entries_superseded() {
    // 234 entries, all committed and matching the leader's, when the disk filled; the leader's snapshot
    // to 500 arrives after it heals.
    let install_at = |f: &mut Raft, last_term: Term| {
        f.handle_install_snapshot(InstallSnapshot {
            term: 2,
            leader: 1,
            meta: SnapshotMeta {
                last_index: 500,
                last_term,
            },
            offset: 0,
            data: vec![1],
            done: true,
            chunk_id: 1,
            config: None,
        });
        f.take_ready().events
    };
    let install = |f: &mut Raft| install_at(f, 1);
    let truncated = |events: &[RaftEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, RaftEvent::LogTruncated { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut f = rebuilt(&[1; 234], 234);
    let events = install(&mut f);
    assert!(truncated(&events).is_empty(), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RaftEvent::SnapshotInstalled { .. }))
    );
    // Uncommitted entries the snapshot covers may match the leader's: not called conflicting.
    let mut f = rebuilt(&[1; 234], 230);
    assert_eq!(truncated(&install(&mut f)), vec![]);
    // Entries of a term above the snapshot's last term cannot be the leader's: reported, with all after them.
    let mut f = rebuilt(&[1, 1, 1, 1, 2, 1, 1], 3);
    assert_eq!(
        truncated(&install(&mut f)),
        vec![RaftEvent::LogTruncated {
            from_index: 5,
            count: 3
        }]
    );
    // A log reaching past the snapshot's index with another term there: from that index on.
    let mut f = rebuilt(&[1; 510], 3);
    assert_eq!(
        truncated(&install_at(&mut f, 2)),
        vec![RaftEvent::LogTruncated {
            from_index: 500,
            count: 11
        }]
    );
}
