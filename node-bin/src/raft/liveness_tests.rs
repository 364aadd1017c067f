//! Unit tests of the core's liveness under slow followers, lost chunks, self-removal and learners
//! (issue 18, "Liveness").

use super::tests::*;
use super::*;

/// Leader of term 2 in a 3-node cluster with entries 1..=`n` (1 is its no-op) committed by node 3, and node 2
/// replicating in step up to `f_match`. Returns the leader after its ready was taken.
fn leader_with_follower_at(n: Index, f_match: Index) -> Raft {
    let mut r = leader(3, 1, &[]);
    for i in 1..n {
        r.propose(vec![i as u8]).unwrap();
    }
    let rd = r.take_ready();
    let last = rd.entries.last().unwrap().clone();
    r.on_persisted(last.index, last.term);
    r.handle_reply(3, ok_reply(3, 2, n, 0));
    r.handle_reply(2, ok_reply(2, 2, f_match, 0));
    r.take_ready();
    assert_eq!(r.commit_index(), n);
    r
}

/// Node 2, `behind` entries behind the compaction point, asks for what follows its log: is it sent a
/// snapshot (true) or entries (false)?
fn follower_behind_gets_snapshot(catch_up: CatchUp, behind: Index) -> bool {
    let n = 40;
    let mut r = leader_with_follower_at(n, n - behind);
    r.set_catch_up(catch_up);
    r.compact(n, b"state".to_vec());
    // Its next batch is lost, so it is probed again from its match index (what a slow link does).
    r.handle_reply(
        2,
        Reply::Append(AppendEntriesReply {
            term: 2,
            follower: 2,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: n - behind + 1,
            last_log_index: n - behind,
            read_round: 0,
            req_prev_index: n - behind,
            req_last_index: n,
            heartbeat: false,
            recovering: false,
        }),
    );
    r.tick();
    for _ in 0..2 {
        r.tick();
    }
    let rd = r.take_ready();
    let snapshot = !chunks_to(&rd, 2).is_empty();
    let entries = appends_to(&rd, 2)
        .iter()
        .any(|a| a.prev_log_index == n - behind && !a.entries.is_empty());
    assert!(snapshot != entries, "either a snapshot or entries is sent");
    snapshot
}

#[test]
fn a_follower_a_few_entries_behind_the_compaction_continues_from_the_log() {
    // The reproduction: without a catch-up tail a follower 3 entries behind needs the whole snapshot.
    assert!(follower_behind_gets_snapshot(CatchUp::default(), 3));
    let tail = CatchUp {
        entries: 10,
        bytes: 1 << 20,
    };
    assert!(!follower_behind_gets_snapshot(tail, 3), "within the tail");
    assert!(
        !follower_behind_gets_snapshot(tail, 10),
        "at the tail's end"
    );
    // Further behind than the tail, but it answers and replicates from the log: kept for it too.
    assert!(
        !follower_behind_gets_snapshot(tail, 30),
        "an active follower"
    );
    // The byte budget bounds what is kept, whatever the followers do.
    let small = CatchUp {
        entries: 10,
        bytes: 5 * 25,
    };
    assert!(!follower_behind_gets_snapshot(small, 5));
    assert!(
        follower_behind_gets_snapshot(small, 6),
        "over the byte budget"
    );
}

fn conf_change_done(r: &mut Raft) {
    let (i, t) = (r.log.last_index(), r.log.last_term());
    r.take_ready();
    r.on_persisted(i, t);
}

#[test]
fn a_learner_never_heard_from_is_not_promoted() {
    // L1: {1} plus learner 2, whose process never started. Its match index 0 is within 512 entries of the
    // leader's last index, which was all the old check asked.
    let mut r = leader(1, 1, &[]);
    r.propose_conf_change(ConfChange::AddLearner(2)).unwrap();
    conf_change_done(&mut r);
    assert_eq!(r.commit_index(), 2);
    let refused = r.propose_conf_change(ConfChange::Promote(2)).unwrap_err();
    assert_eq!(
        refused,
        MembershipError::LearnerSilent {
            id: 2,
            why: "yet".into()
        }
    );
    assert!(
        refused
            .to_string()
            .contains("learner 2 has not answered the leader yet")
    );
    // It answers and catches up: promoted.
    r.handle_reply(2, ok_reply(2, 2, 2, 0));
    assert!(r.propose_conf_change(ConfChange::Promote(2)).is_ok());

    // Heard from once, then silent for more than an election timeout: refused again.
    let mut r = leader(1, 1, &[]);
    r.propose_conf_change(ConfChange::AddLearner(2)).unwrap();
    conf_change_done(&mut r);
    r.handle_reply(2, ok_reply(2, 2, 2, 0));
    for _ in 0..=r.config.election_ticks_max {
        r.tick();
    }
    assert_eq!(
        r.propose_conf_change(ConfChange::Promote(2)),
        Err(MembershipError::LearnerSilent {
            id: 2,
            why: "within an election timeout".into()
        })
    );
}

/// A vote (or pre-vote) reply granting `term`.
fn granted(voter: NodeId, term: Term, pre_vote: bool) -> Reply {
    Reply::Vote(RequestVoteReply {
        term,
        voter,
        granted: true,
        pre_vote,
        removed_by: None,
    })
}

#[test]
fn a_leader_that_removed_itself_and_lost_leadership_before_the_commit_campaigns_to_finish_it() {
    // openraft#2091: `up -n 2`; A (node 1) leads {1,2}; `remove 1` reaches only A's log; A loses leadership.
    let mut a = leader(2, 1, &[]);
    a.handle_reply(2, ok_reply(2, 2, 1, 0));
    a.take_ready();
    a.propose_conf_change(ConfChange::Remove(1)).unwrap();
    conf_change_done(&mut a);
    assert_eq!((a.commit_index(), a.log.last_index()), (1, 2));
    // No answer from B for a CheckQuorum round: A steps down, holding {2} uncommitted at index 2.
    for _ in 0..=a.config.election_ticks_min * 2 {
        a.tick();
    }
    assert_eq!(a.role(), Role::Follower);
    a.take_ready();
    // B holds {1,2} and the log to 1: A refuses B's pre-votes on the log check, so B never wins.
    let b_asks = vote_req(3, 2, (1, 2), true);
    assert!(!a.handle_request_vote(b_asks).granted);
    // A campaigns, counting only B, the voter of its configuration.
    for _ in 0..a.config.election_ticks_max * 2 {
        a.tick();
    }
    let rd = a.take_ready();
    let asked: Vec<&RequestVote> = rd
        .messages
        .iter()
        .filter_map(|(p, m)| match m {
            Request::Vote(v) if *p == 2 => Some(v),
            _ => None,
        })
        .collect();
    assert!(
        asked.first().is_some_and(|v| v.pre_vote),
        "the self-removed node never campaigned: {:?}",
        rd.messages
    );
    a.handle_reply(2, granted(2, 3, true));
    a.take_ready();
    a.handle_reply(2, granted(2, 3, false));
    assert_eq!(a.role(), Role::Leader, "B's vote is a majority of {{2}}");
    // It commits the removal with B's acknowledgement, then hands over to B and steps down.
    let (i, t) = (a.log.last_index(), a.log.last_term());
    a.take_ready();
    a.on_persisted(i, t);
    a.handle_reply(2, ok_reply(2, 3, i, 0));
    assert_eq!(a.commit_index(), i);
    let rd = a.take_ready();
    assert!(
        rd.messages
            .iter()
            .any(|(p, m)| *p == 2 && matches!(m, Request::TimeoutNow(_)))
    );
    assert_eq!(a.role(), Role::Follower);
    // Removed, committed: it never campaigns again.
    for _ in 0..200 {
        a.tick();
    }
    assert!(
        !a.take_ready()
            .events
            .iter()
            .any(|e| matches!(e, RaftEvent::ElectionStarted { .. }))
    );
}

#[test]
fn a_lost_timeout_now_after_self_removal_goes_to_the_next_voter() {
    // L2: leader 1 of {1,2,3,4} removes itself; node 4 holds the most, so it is told first.
    let mut r = leader(4, 1, &[]);
    for p in 2..=4 {
        r.handle_reply(p, ok_reply(p, 2, 1, 0));
    }
    r.take_ready();
    r.propose_conf_change(ConfChange::Remove(1)).unwrap();
    conf_change_done(&mut r);
    r.handle_reply(3, ok_reply(3, 2, 2, 0));
    r.handle_reply(4, ok_reply(4, 2, 2, 0));
    let told = |rd: &Ready| -> Vec<NodeId> {
        rd.messages
            .iter()
            .filter(|(_, m)| matches!(m, Request::TimeoutNow(_)))
            .map(|(p, _)| *p)
            .collect()
    };
    let first = told(&r.take_ready());
    assert_eq!(first.len(), 1);
    assert_eq!(r.role(), Role::Follower);
    // That TimeoutNow is lost: nothing raises the term. Within two heartbeats the next voter is told, long
    // before an election timeout.
    let mut next = Vec::new();
    for _ in 0..r.config.heartbeat_ticks * 2 {
        r.tick();
        next.extend(told(&r.take_ready()));
    }
    assert_eq!(next.len(), 1, "told {next:?}");
    assert_ne!(next[0], first[0]);
    assert!(2 * r.config.heartbeat_ticks < r.config.election_ticks_min);
    // Once the term moves on (a voter campaigned), nobody else is told.
    r.handle_append_entries(AppendEntries {
        leader: 3,
        ..append(3, (0, 0), vec![], 0)
    });
    for _ in 0..r.config.heartbeat_ticks * 4 {
        r.tick();
        assert!(told(&r.take_ready()).is_empty());
    }
}

#[test]
fn a_core_rebuilt_in_the_same_process_keeps_its_lease() {
    // L2: a follower of a live leader rebuilds its core (full disk) and is asked for a pre-vote at once.
    let mut f = node(3, 3, 1, &[1, 1]);
    f.handle_append_entries(append(1, (2, 1), vec![], 2));
    let lease = f.lease().expect("following leader 2");
    assert_eq!((lease.0, lease.1), (1, 2));
    let asks = || vote_req(2, 1, (2, 1), true);
    let mut rebuilt = node(3, 3, 1, &[1, 1]);
    assert!(
        rebuilt.handle_request_vote(asks()).granted,
        "the reproduction: a fresh core grants at once"
    );
    let mut rebuilt = node(3, 3, 1, &[1, 1]);
    rebuilt.restore_lease(lease);
    assert!(!rebuilt.handle_request_vote(asks()).granted, "in lease");
    // The lease runs out as usual.
    for _ in 0..rebuilt.config.election_ticks_min {
        rebuilt.tick();
    }
    assert!(rebuilt.handle_request_vote(asks()).granted);
    // A lease from an older term than the durable one is ignored.
    let mut newer = node(3, 3, 2, &[1, 1]);
    newer.restore_lease(lease);
    assert!(newer.lease().is_none());
}

/// Leader of term 2 in a 3-node cluster whose node 2 has matched its no-op (index 1); its ready taken.
fn leader_matched_by_node_2() -> Raft {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.take_ready();
    r
}

/// Node 2's answer to a heartbeat of the leader of term 2 anchored at index 1, where their logs match.
fn heartbeat_answer_at_1() -> Reply {
    Reply::Append(AppendEntriesReply {
        term: 2,
        follower: 2,
        success: true,
        match_index: 1,
        conflict_term: None,
        conflict_index: 0,
        last_log_index: 1,
        read_round: 0,
        req_prev_index: 1,
        req_last_index: 1,
        heartbeat: true,
        recovering: false,
    })
}

#[test]
fn a_batch_lost_behind_an_answered_heartbeat_is_sent_again_without_new_proposals() {
    // Simulation seed 796590903054: one batch in flight to node 2 (window 1) is lost; a heartbeat answer
    // frees its slot (a full window unanswered), and the failure report that follows no longer matches
    // anything in flight. The gap was meant to show as a rejection of the next batch, but with the clients
    // quiet there is none: node 2 never got the entry (here a configuration change that then never commits).
    let mut r = leader_matched_by_node_2();
    r.config.max_inflight = 1;
    let (index, _) = r.propose(vec![9]).unwrap();
    let rd = r.take_ready();
    let batch = appends_to(&rd, 2);
    assert!(batch.iter().any(|a| !a.entries.is_empty()), "{batch:?}");
    r.on_persisted(index, 2);
    let heartbeat_answer = heartbeat_answer_at_1();
    let mut resent = false;
    for _ in 0..3 {
        r.handle_reply(2, heartbeat_answer.clone());
        r.report_unreachable(2, &Request::Append(batch[0].clone()));
        for _ in 0..r.config.heartbeat_ticks {
            r.tick();
        }
        resent |= appends_to(&r.take_ready(), 2)
            .iter()
            .any(|a| a.entries.iter().any(|e| e.index == index));
    }
    assert!(resent, "entry {index} was never sent to node 2 again");
}

#[test]
fn a_batch_a_recovering_follower_answered_with_term_0_is_sent_again_without_new_proposals() {
    // Simulation seed 830000000369: node 2, recovering after a cut damaged record, acknowledged a batch that
    // also made node 7 a voter. It had never probed node 7, so it no longer knew `T` (every other voter must
    // answer) and answered the next batch with term 0, as a recovering node does to a leader it cannot
    // validate. The leader ignored that answer without freeing the batch's slot; node 2 finished recovering
    // and acknowledged every heartbeat at its old match index, and with one batch of a window of four in
    // flight nothing sent the entries again while the clients were quiet.
    let mut r = leader_matched_by_node_2();
    let (last, _) = r.propose(vec![9]).unwrap();
    r.on_persisted(last, 2);
    let batch = appends_to(&r.take_ready(), 2);
    assert_eq!(batch.len(), 1, "{batch:?}");
    let Reply::Append(mut unvalidated) = reply_to(&batch[0], 2, false, 1) else {
        unreachable!("reply_to answers AppendEntries");
    };
    unvalidated.term = 0;
    unvalidated.conflict_index = 0;
    unvalidated.recovering = true;
    r.handle_reply(2, Reply::Append(unvalidated));
    let mut resent = appends_to(&r.take_ready(), 2);
    for _ in 0..3 {
        r.handle_reply(2, heartbeat_answer_at_1());
        for _ in 0..r.config.heartbeat_ticks {
            r.tick();
        }
        resent.extend(appends_to(&r.take_ready(), 2));
    }
    assert!(
        resent
            .iter()
            .any(|a| a.entries.iter().any(|e| e.index == last)),
        "entry {last} was not sent to node 2 again after a term-0 answer: {resent:?}, progress {:?}",
        r.status().progress
    );
}

#[test]
fn a_refused_batch_overtaken_by_an_older_success_is_sent_again_without_new_proposals() {
    // Simulation seed 796594048973: a window of batches [2,3], [4,5], [6] to node 2 fails and is resent as
    // [2,3], [4,5], [6,7] once a heartbeat shows where the logs match. Node 2 gets [6,7] first and refuses it
    // (it holds only 3), then the new [2,3] and [4,5], then the old [6] (delivered twice). The old batch's
    // success raises the match index to 6, past the refused batch's start, and the refusal that follows was
    // ignored as stale: entry 7, in no other batch, was never sent again while the clients were quiet.
    let mut r = leader_matched_by_node_2();
    for i in 0..5 {
        r.propose(vec![i]).unwrap();
    }
    let old = appends_to(&r.take_ready(), 2);
    let spans = |batches: &[AppendEntries]| -> Vec<(Index, usize)> {
        batches
            .iter()
            .map(|a| (a.prev_log_index, a.entries.len()))
            .collect()
    };
    assert_eq!(spans(&old), vec![(1, 2), (3, 2), (5, 1)]);
    r.report_unreachable(2, &Request::Append(old[0].clone()));
    let (last, _) = r.propose(vec![9]).unwrap();
    r.on_persisted(last, 2);
    r.take_ready();
    let heartbeat_answer = heartbeat_answer_at_1();
    r.handle_reply(2, heartbeat_answer);
    let new = appends_to(&r.take_ready(), 2);
    assert_eq!(spans(&new), vec![(1, 2), (3, 2), (5, 2)]);
    r.handle_reply(2, reply_to(&new[0], 2, true, 3));
    r.handle_reply(2, reply_to(&new[1], 2, true, 5));
    r.handle_reply(2, reply_to(&old[2], 2, true, 6));
    r.take_ready();
    r.handle_reply(2, reply_to(&new[2], 2, false, 3));
    let resent = appends_to(&r.take_ready(), 2);
    assert!(
        resent
            .iter()
            .any(|a| a.entries.iter().any(|e| e.index == last)),
        "entry {last} was not sent to node 2 again after its batch was refused: {:?}, progress {:?}",
        spans(&resent),
        r.status().progress
    );
}

#[test]
fn a_follower_holding_another_term_at_its_match_index_is_probed_below_it() {
    // Simulation seed 796592838934: node 2 acknowledged entry 4 of term 2, which had overwritten its older
    // entry 4 of term 1; the record holding the overwrite is damaged and cut, so the older entry is back. The
    // leader's heartbeats, anchored at match 4, are refused with conflict term 1; every probe was clamped above
    // the match index, at prev 4 again, and refused forever.
    let mut r = leader(3, 1, &[1, 1, 1]);
    assert_eq!((r.log.last_index(), r.term()), (4, 2));
    r.handle_reply(2, ok_reply(2, 2, 4, 0));
    r.take_ready();
    // (It learned the current term from the other voters already, so it answers the leader; the leader's
    // side is what is tested here.)
    let mut follower = node(2, 3, 2, &[1, 1, 1, 1]);
    let mut delivered = 0;
    for _ in 0..4 {
        for _ in 0..r.config.heartbeat_ticks {
            r.tick();
        }
        for a in appends_to(&r.take_ready(), 2) {
            let reply = follower.handle_append_entries(a);
            follower.take_ready();
            r.handle_reply(2, Reply::Append(reply));
            delivered += 1;
        }
        for a in appends_to(&r.take_ready(), 2) {
            let reply = follower.handle_append_entries(a);
            follower.take_ready();
            r.handle_reply(2, Reply::Append(reply));
        }
    }
    assert!(delivered > 0);
    assert_eq!(
        follower.log.term(4),
        Some(2),
        "node 2 still holds the older entry 4; leader's progress {:?}",
        r.status().progress
    );
    assert_eq!(r.status().progress[0].match_index, 4);
}

#[test]
fn a_candidate_waits_for_its_voters_fsync_as_long_as_its_own_writes_take() {
    // Every fsync takes 40 ticks, more than the 10..20-tick election timeout (tests/slow_disk.rs: 400 ms
    // against 150..300 ms). Each voter stores its vote before granting it, so no vote can arrive within the
    // timeout: a candidate that gives up then never wins.
    let mut c = node(1, 3, 1, &[1]);
    c.set_vote_latency(40);
    c.start_election(false, false);
    c.take_ready();
    for _ in 0..cfg(1, 3).election_ticks_max {
        c.tick();
    }
    assert_eq!(
        (c.role(), c.term()),
        (Role::Candidate, 2),
        "gave up on its election before a voter's fsync could finish"
    );
    c.handle_reply(
        2,
        Reply::Vote(RequestVoteReply {
            term: 2,
            voter: 2,
            granted: true,
            pre_vote: false,
            removed_by: None,
        }),
    );
    assert_eq!(
        c.role(),
        Role::Leader,
        "the vote stored in 40 ticks still counts"
    );
    // A candidate that gets no vote gives up after the timeout and the latency; a follower's timeout stays as
    // configured, so a lost leader is noticed as fast as before.
    let mut c = node(1, 3, 1, &[1]);
    c.set_vote_latency(40);
    c.start_election(false, false);
    let mut ticks = 0;
    while c.role() == Role::Candidate {
        c.tick();
        ticks += 1;
        assert!(ticks <= 20 + 40, "still a candidate after {ticks} ticks");
    }
    assert!(ticks > 40, "gave up after {ticks} ticks");
    let mut f = node(2, 3, 1, &[1]);
    f.set_vote_latency(40);
    let mut ticks = 0;
    while f.role() == Role::Follower {
        f.tick();
        ticks += 1;
        assert!(ticks <= 20, "a follower waited {ticks} ticks");
    }
}

#[test]
fn a_leader_backs_off_a_follower_that_refuses_entries_with_term_0() {
    // A recovering node (wiped, with another voter down) refuses every batch with term 0 until it learns the
    // current term from every other voter. The leader sent it a full batch on every heartbeat, about 3 MB/s
    // measured; now entries go again at heartbeats 1, 3, 7, 15, 31, then every 31 after the first refusal,
    // while empty heartbeats still go every time, and the first answer in the leader's term ends the wait.
    let mut r = leader(3, 1, &[]);
    for i in 0..20 {
        r.propose(vec![i; 1000]).unwrap();
    }
    let (last, term) = (r.log.last_index(), r.log.last_term());
    r.on_persisted(last, term);
    r.take_ready();
    let refuse = |a: &AppendEntries| {
        let Reply::Append(mut refused) = reply_to(a, 3, false, 0) else {
            unreachable!("reply_to answers AppendEntries");
        };
        refused.term = 0;
        refused.conflict_index = 0;
        refused.recovering = true;
        Reply::Append(refused)
    };
    let (mut with_entries, mut heartbeats) = (Vec::new(), 0);
    for h in 1..=100u32 {
        for _ in 0..r.config.heartbeat_ticks {
            r.tick();
        }
        r.handle_reply(2, heartbeat_answer_at_1());
        let sent = appends_to(&r.take_ready(), 3);
        heartbeats += sent.iter().filter(|a| a.heartbeat).count();
        for a in &sent {
            if !a.heartbeat {
                with_entries.push(h);
            }
            r.handle_reply(3, refuse(a));
        }
        r.take_ready();
    }
    assert_eq!(heartbeats, 100, "an empty heartbeat goes every time");
    // The first refusal is the probe of heartbeat 1; counted from there: 1, 3, 7, 15, 31, then every 31.
    assert_eq!(
        with_entries,
        vec![1, 2, 4, 8, 16, 32, 63, 94],
        "heartbeats at which entries went to node 3, which refuses them with term 0; progress {:?}",
        r.status().progress
    );
    // Recovered: it answers a heartbeat in the leader's term, and the probe goes at once.
    for _ in 0..r.config.heartbeat_ticks {
        r.tick();
    }
    let hb = appends_to(&r.take_ready(), 3)
        .into_iter()
        .find(|a| a.heartbeat)
        .expect("a heartbeat to node 3");
    r.handle_reply(3, reply_to(&hb, 3, true, 0));
    let probe = appends_to(&r.take_ready(), 3);
    assert!(
        probe.iter().any(|a| !a.heartbeat && !a.entries.is_empty()),
        "no entries went to node 3 once it answered in the leader's term: {probe:?}"
    );
}
