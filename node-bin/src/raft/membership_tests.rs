//! Unit tests of membership changes (the rules in the `membership` module), each one failing on a core
//! without the rule it names.

use super::membership::PROMOTE_MAX_LAG;
use super::tests::{
    append, appends_to, cfg, chunks_to, leader, log_of, node, ok_reply, take_warnings_empty,
    vote_req,
};
use super::*;

fn conf(voters: &[NodeId], learners: &[NodeId]) -> Membership {
    Membership {
        voters: voters.iter().copied().collect(),
        learners: learners.iter().copied().collect(),
    }
}

fn conf_entry(index: Index, term: Term, c: Membership) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Config(c),
    }
}

/// Node `id` of a 3-voter bootstrap cluster restored with `entries` (configuration entries among them).
fn restored(id: NodeId, term: Term, entries: Vec<Entry>) -> Raft {
    Raft::new(
        cfg(id, 3),
        Restored {
            hard_state: HardState { term, vote: None },
            snapshot: None,
            entries,
        },
    )
}

/// Node 1 leading {1,2,3} in term 2 with its no-op (index 1) committed by node 2's answer.
fn ready_leader() -> Raft {
    let mut r = leader(3, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.take_ready();
    assert_eq!(r.log.commit, 1);
    r
}

/// Persists what the leader appended and has node 2 acknowledge it all.
fn persist_and_ack(r: &mut Raft, from: NodeId) {
    let (i, t) = (r.log.last_index(), r.log.last_term());
    r.take_ready();
    r.on_persisted(i, t);
    r.handle_reply(from, ok_reply(from, r.term(), i, 0));
}

/// `ready_leader` after {1,2,3} + learner 4 committed at index 2.
fn leader_with_learner() -> Raft {
    let mut r = ready_leader();
    assert_eq!(r.propose_conf_change(ConfChange::AddLearner(4)), Ok((2, 2)));
    persist_and_ack(&mut r, 2);
    assert_eq!(r.log.commit, 2);
    r.take_ready();
    r
}

fn elections_started(r: &mut Raft) -> usize {
    r.take_ready()
        .events
        .iter()
        .filter(|e| matches!(e, RaftEvent::ElectionStarted { .. }))
        .count()
}

// ---- the safeguards of single-server changes ----

#[test]
fn only_one_uncommitted_change_at_a_time() {
    let mut r = ready_leader();
    assert_eq!(r.propose_conf_change(ConfChange::AddLearner(4)), Ok((2, 2)));
    assert_eq!(
        r.propose_conf_change(ConfChange::AddLearner(5)),
        Err(MembershipError::InProgress { index: 2 })
    );
    persist_and_ack(&mut r, 2);
    assert_eq!(r.propose_conf_change(ConfChange::AddLearner(5)), Ok((3, 2)));
}

#[test]
fn a_new_leader_commits_an_entry_of_its_term_before_a_change() {
    let mut r = leader(3, 1, &[1, 1]);
    assert_eq!(
        r.propose_conf_change(ConfChange::AddLearner(4)),
        Err(MembershipError::LeaderNotReady)
    );
    r.handle_reply(2, ok_reply(2, 2, 3, 0));
    assert_eq!(r.log.commit, 3);
    assert!(r.propose_conf_change(ConfChange::AddLearner(4)).is_ok());
}

#[test]
fn changes_are_checked_against_the_configuration() {
    let mut r = leader_with_learner();
    let mut refuse = |c| r.propose_conf_change(c).unwrap_err();
    assert_eq!(
        refuse(ConfChange::AddLearner(2)),
        MembershipError::AlreadyMember { id: 2 }
    );
    assert_eq!(
        refuse(ConfChange::Promote(2)),
        MembershipError::NotLearner { id: 2 }
    );
    assert_eq!(
        refuse(ConfChange::Promote(7)),
        MembershipError::NotMember { id: 7 }
    );
    assert_eq!(
        refuse(ConfChange::Remove(7)),
        MembershipError::NotMember { id: 7 }
    );
    let mut follower = node(2, 3, 2, &[]);
    assert_eq!(
        follower.propose_conf_change(ConfChange::AddLearner(4)),
        Err(MembershipError::NotLeader { leader: None })
    );
    let mut lone = leader(1, 0, &[]);
    assert_eq!(
        lone.propose_conf_change(ConfChange::Remove(1)),
        Err(MembershipError::LastVoter)
    );
}

#[test]
fn a_configuration_takes_effect_when_appended_and_a_truncation_reverts_it() {
    let mut f = node(3, 3, 1, &[]);
    f.take_ready();
    let grown = conf(&[1, 2, 3], &[4]);
    f.handle_append_entries(append(1, (0, 0), vec![conf_entry(1, 1, grown.clone())], 0));
    let st = f.status();
    assert_eq!(
        (&st.config, st.config_index, st.config_committed),
        (&grown, 1, false)
    );
    assert!(f.take_ready().events.contains(&RaftEvent::ConfigChanged {
        index: 1,
        config: grown.clone()
    }));
    // A new leader overwrites the uncommitted configuration entry: the bootstrap configuration is back.
    f.handle_append_entries(append(2, (0, 0), vec![super::tests::ent(1, 2)], 0));
    let st = f.status();
    assert_eq!((&st.config, st.config_index), (&conf(&[1, 2, 3], &[]), 0));
    assert!(f.take_ready().events.contains(&RaftEvent::ConfigChanged {
        index: 0,
        config: conf(&[1, 2, 3], &[])
    }));
    // Committing it reports the commit.
    f.handle_append_entries(append(3, (1, 2), vec![conf_entry(2, 3, grown.clone())], 2));
    let st = f.status();
    assert_eq!((st.config_index, st.config_committed), (2, true));
    assert!(f.take_ready().events.contains(&RaftEvent::ConfigCommitted {
        index: 2,
        config: grown
    }));
}

#[test]
fn the_leader_uses_a_new_configuration_as_soon_as_it_appends_it() {
    let mut r = ready_leader();
    // Removing node 3: the entry (and everything after it) needs a majority of {1,2} only.
    r.propose_conf_change(ConfChange::Remove(3)).unwrap();
    persist_and_ack(&mut r, 2);
    assert_eq!(r.log.commit, 2);
    assert_eq!(r.status().config, conf(&[1, 2], &[]));
}

// ---- learners ----

#[test]
fn a_learner_never_counts_toward_commitment() {
    let mut r = leader_with_learner();
    r.propose(vec![7]).unwrap();
    persist_and_ack(&mut r, 4);
    assert_eq!(r.log.commit, 2, "committed with the learner's copy");
    r.handle_reply(2, ok_reply(2, 2, 3, 0));
    assert_eq!(r.log.commit, 3);
}

#[test]
fn a_learner_never_counts_toward_a_read_index_round() {
    let mut r = leader_with_learner();
    r.read_index(9).unwrap();
    r.take_ready();
    let round = r.reads.round;
    r.handle_reply(4, ok_reply(4, 2, 2, round));
    assert!(
        r.take_ready().read_states.is_empty(),
        "confirmed by a learner"
    );
    r.handle_reply(3, ok_reply(3, 2, 2, round));
    assert_eq!(
        r.take_ready().read_states,
        vec![ReadState { ctx: 9, index: 2 }]
    );
}

#[test]
fn a_learner_never_counts_toward_check_quorum() {
    let mut r = leader_with_learner();
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(
        r.role(),
        Role::Leader,
        "node 2 answered in the first window"
    );
    for _ in 0..10 {
        r.handle_reply(4, ok_reply(4, 2, 2, 0));
        r.tick();
    }
    assert_eq!(
        r.role(),
        Role::Follower,
        "kept leading on a learner's answers"
    );
    assert!(
        r.take_ready()
            .events
            .contains(&RaftEvent::QuorumLost { term: 2 })
    );
}

#[test]
fn a_learner_never_campaigns_and_its_vote_never_counts() {
    let learner_conf = conf_entry(1, 1, conf(&[1, 2, 3], &[4]));
    let mut l = Raft::new(
        cfg(4, 4),
        Restored {
            hard_state: HardState {
                term: 1,
                vote: None,
            },
            snapshot: None,
            entries: vec![learner_conf.clone()],
        },
    );
    for _ in 0..100 {
        l.tick();
    }
    l.handle_timeout_now(TimeoutNow { term: 1, leader: 1 });
    assert_eq!(elections_started(&mut l), 0);
    assert_eq!(l.role(), Role::Follower);

    let mut c = restored(1, 1, vec![learner_conf]);
    c.start_election(false, false);
    let rd = c.take_ready();
    assert!(
        rd.messages.iter().all(|(p, _)| *p != 4),
        "asked the learner for a vote"
    );
    c.handle_reply(
        4,
        Reply::Vote(RequestVoteReply {
            term: 2,
            voter: 4,
            granted: true,
            pre_vote: false,
            removed_by: None,
        }),
    );
    assert_eq!(c.role(), Role::Candidate, "won with a learner's vote");
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
    assert_eq!(c.role(), Role::Leader);
}

#[test]
fn promotion_waits_until_the_learner_is_close_to_the_leader() {
    let mut r = leader(3, 1, &[1; 600]);
    r.handle_reply(2, ok_reply(2, 2, 601, 0));
    r.propose_conf_change(ConfChange::AddLearner(4)).unwrap();
    persist_and_ack(&mut r, 2);
    assert_eq!(r.log.commit, 602);
    let behind = 602 - PROMOTE_MAX_LAG - 1;
    r.handle_reply(4, ok_reply(4, 2, behind, 0));
    assert_eq!(
        r.propose_conf_change(ConfChange::Promote(4)),
        Err(MembershipError::LearnerBehind {
            id: 4,
            match_index: behind,
            last_index: 602
        })
    );
    r.handle_reply(4, ok_reply(4, 2, behind + 1, 0));
    assert_eq!(r.propose_conf_change(ConfChange::Promote(4)), Ok((603, 2)));
    // A voter now: commitment needs 3 of {1,2,3,4}.
    r.take_ready();
    r.on_persisted(603, 2);
    r.handle_reply(2, ok_reply(2, 2, 603, 0));
    assert_eq!(r.log.commit, 602);
    r.handle_reply(4, ok_reply(4, 2, 603, 0));
    assert_eq!(r.log.commit, 603);
}

#[test]
fn a_far_behind_learner_gets_a_snapshot_that_carries_the_configuration() {
    let mut r = leader_with_learner();
    r.compact(2, b"state".to_vec());
    r.take_ready();
    // The learner's probe is rejected: it holds nothing.
    r.handle_reply(
        4,
        Reply::Append(AppendEntriesReply {
            term: 2,
            follower: 4,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            last_log_index: 0,
            read_round: 0,
            req_prev_index: 2,
            req_last_index: 2,
            heartbeat: false,
            recovering: false,
        }),
    );
    let chunks = chunks_to(&r.take_ready(), 4);
    assert_eq!(chunks.len(), 1);
    let want = ConfState {
        index: 2,
        config: conf(&[1, 2, 3], &[4]),
    };
    assert_eq!(chunks[0].config, Some(want.clone()));

    // The joining node takes its configuration from it.
    let mut j = Raft::new(
        Config {
            join: true,
            ..cfg(4, 1)
        },
        Restored::default(),
    );
    assert_eq!(j.status().config, Membership::default());
    let mut chunk = chunks[0].clone();
    chunk.data = b"state".to_vec();
    chunk.done = true;
    assert!(j.handle_install_snapshot(chunk).done);
    let st = j.status();
    assert_eq!(
        (st.config, st.config_index, st.config_committed),
        (want.config.clone(), 2, true)
    );
    assert_eq!(j.take_ready().snapshot.unwrap().config, Some(want));
}

// ---- removal ----

#[test]
fn a_leader_that_removes_itself_leads_until_the_change_commits_then_hands_over() {
    let mut r = ready_leader();
    r.propose_conf_change(ConfChange::Remove(1)).unwrap();
    persist_and_ack(&mut r, 2);
    assert_eq!(
        r.log.commit, 1,
        "counted itself for the configuration that removes it"
    );
    assert_eq!(r.role(), Role::Leader);
    // Still leading: heartbeats go out.
    r.take_ready();
    r.tick();
    r.tick();
    assert!(!appends_to(&r.take_ready(), 3).is_empty());
    // Node 3 catches up too and the change commits.
    r.handle_reply(3, ok_reply(3, 2, 2, 0));
    assert_eq!(r.log.commit, 2);
    let rd = r.take_ready();
    assert!(
        rd.messages
            .iter()
            .any(|(p, m)| matches!(m, Request::TimeoutNow(_)) && *p == 3)
    );
    assert!(rd.events.contains(&RaftEvent::Removed { index: 2 }));
    assert_eq!(r.role(), Role::Follower);
    assert!(!take_warnings_empty(&mut r));
    for _ in 0..100 {
        r.tick();
    }
    assert_eq!(elections_started(&mut r), 0, "a removed leader campaigned");
}

#[test]
fn the_self_removing_leader_hands_over_to_the_most_up_to_date_voter() {
    let mut r = leader(5, 1, &[]);
    r.handle_reply(2, ok_reply(2, 2, 1, 0));
    r.handle_reply(3, ok_reply(3, 2, 1, 0));
    r.take_ready();
    r.propose_conf_change(ConfChange::Remove(1)).unwrap();
    r.propose(vec![1]).unwrap();
    let (i, t) = (r.log.last_index(), r.log.last_term());
    r.take_ready();
    r.on_persisted(i, t);
    // Nodes 2, 3 and 4 hold the removal (a majority of {2,3,4,5}); only 4 holds the entry after it.
    r.handle_reply(2, ok_reply(2, 2, 2, 0));
    r.handle_reply(3, ok_reply(3, 2, 2, 0));
    r.handle_reply(4, ok_reply(4, 2, 3, 0));
    assert_eq!(r.log.commit, 2);
    let rd = r.take_ready();
    let to: Vec<NodeId> = rd
        .messages
        .iter()
        .filter(|(_, m)| matches!(m, Request::TimeoutNow(_)))
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(to, vec![4]);
}

#[test]
fn a_removed_node_learns_its_removal_logs_it_once_and_never_campaigns() {
    let mut r = ready_leader();
    r.handle_reply(3, ok_reply(3, 2, 1, 0));
    r.take_ready();
    r.propose_conf_change(ConfChange::Remove(3)).unwrap();
    // Replication to node 3 goes on until the removal commits.
    let rd = r.take_ready();
    let to3 = appends_to(&rd, 3);
    assert!(
        to3.iter().any(|a| !a.entries.is_empty()),
        "node 3 was not sent the removal"
    );
    let (i, t) = (r.log.last_index(), r.log.last_term());
    r.on_persisted(i, t);
    r.handle_reply(2, ok_reply(2, 2, 2, 0));
    assert_eq!(r.log.commit, 2);
    // Node 3 still gets the log until it holds the removal; one last heartbeat anchored there then
    // tells it the commit index, and nothing more goes to it.
    r.take_ready();
    r.handle_reply(3, ok_reply(3, 2, 2, 0));
    let last = appends_to(&r.take_ready(), 3);
    assert!(
        last.iter()
            .any(|a| a.heartbeat && a.prev_log_index == 2 && a.leader_commit >= 2),
        "{last:?}"
    );
    for _ in 0..4 {
        r.tick();
    }
    assert!(appends_to(&r.take_ready(), 3).is_empty());

    let mut f = node(3, 3, 2, &[2]);
    f.take_ready();
    let removal = conf_entry(2, 2, conf(&[1, 2], &[]));
    let req = AppendEntries {
        leader: 1,
        ..append(2, (1, 2), vec![removal], 1)
    };
    f.handle_append_entries(req.clone());
    let warnings = f.take_warnings();
    assert_eq!(
        warnings,
        vec![
            "node 3 is no longer a member of the cluster (configuration {1,2} at index 2)"
                .to_string()
        ]
    );
    f.handle_append_entries(req);
    assert!(take_warnings_empty(&mut f), "logged twice");
    f.handle_append_entries(AppendEntries {
        leader: 1,
        heartbeat: true,
        ..append(2, (2, 2), vec![], 2)
    });
    assert!(
        f.take_ready()
            .events
            .contains(&RaftEvent::Removed { index: 2 })
    );
    for _ in 0..100 {
        f.tick();
    }
    assert_eq!(elections_started(&mut f), 0);
}

#[test]
fn a_removed_node_restarted_with_its_old_data_campaigns_only_until_told_the_removal_committed() {
    let mut f = restored(
        3,
        2,
        vec![
            super::tests::ent(1, 2),
            conf_entry(2, 2, conf(&[1, 2], &[])),
        ],
    );
    assert!(!f.is_voter());
    assert_eq!(f.take_warnings().len(), 1);
    // It does not know whether its removal committed, so it may hold the log that must win: it asks.
    let req = campaign(&mut f);
    let mut v = member_after_removal(2);
    f.handle_reply(2, Reply::Vote(v.handle_request_vote(req)));
    f.take_warnings();
    f.take_ready();
    for _ in 0..100 {
        f.tick();
    }
    assert_eq!(elections_started(&mut f), 0);
}

#[test]
fn a_removed_node_cannot_disrupt_a_member_under_the_lease_nor_win_on_its_log() {
    // Node 2 of {1,2}, which removed node 3 at index 2.
    let mut v = restored(
        2,
        2,
        vec![
            super::tests::ent(1, 2),
            conf_entry(2, 2, conf(&[1, 2], &[])),
        ],
    );
    v.handle_append_entries(AppendEntries {
        leader: 1,
        heartbeat: true,
        ..append(2, (2, 2), vec![], 2)
    });
    // Node 3 never got the removal: its log ends at index 1. Under the lease nothing is granted or adopted.
    for pre_vote in [true, false] {
        let rep = v.handle_request_vote(vote_req(9, 3, (1, 2), pre_vote));
        assert!(!rep.granted, "granted node 3 (pre_vote {pre_vote})");
    }
    assert_eq!(v.term(), 2, "adopted a removed node's term under the lease");
    // Out of the lease, its pre-vote still fails on the log check, which changes nothing here.
    v.leader_contact = 100;
    assert!(!v.handle_request_vote(vote_req(9, 3, (1, 2), true)).granted);
    assert_eq!(v.term(), 2);
}

#[test]
fn a_far_behind_node_without_a_configuration_still_votes_for_a_voter() {
    // The liveness case the simulation found: a voter promoted while far behind, still holding no
    // configuration, must grant its vote to an up-to-date voter of the configuration.
    let mut j = Raft::new(
        Config {
            join: true,
            ..cfg(5, 1)
        },
        Restored {
            hard_state: HardState {
                term: 3,
                vote: None,
            },
            snapshot: None,
            entries: log_of(&[1, 1, 1]),
        },
    );
    j.leader_contact = 100;
    assert!(
        j.handle_request_vote(vote_req(4, 3, (60, 3), false))
            .granted
    );
}

// ---- joining ----

#[test]
fn a_joining_node_waits_for_a_configuration_and_never_campaigns() {
    let mut j = Raft::new(
        Config {
            join: true,
            ..cfg(4, 1)
        },
        Restored::default(),
    );
    for _ in 0..200 {
        j.tick();
    }
    assert_eq!(elections_started(&mut j), 0);
    // Older configurations without it arrive first: that is not a removal.
    j.handle_append_entries(append(
        2,
        (0, 0),
        vec![
            conf_entry(1, 1, conf(&[1, 2, 3], &[])),
            conf_entry(2, 2, conf(&[1, 2, 3], &[4])),
        ],
        2,
    ));
    assert!(
        take_warnings_empty(&mut j) || !j.take_warnings().iter().any(|w| w.contains("no longer"))
    );
    assert!(
        !j.take_ready()
            .events
            .iter()
            .any(|e| matches!(e, RaftEvent::Removed { .. }))
    );
    assert_eq!(j.status().config, conf(&[1, 2, 3], &[4]));
}

#[test]
fn an_empty_node_without_join_boots_with_its_flags_and_a_restarted_one_from_its_log() {
    let fresh = node(1, 3, 0, &[]);
    assert_eq!(fresh.status().config, conf(&[1, 2, 3], &[]));
    // A node with data takes the configuration from its log, whatever its flags say.
    let mut entries = log_of(&[1]);
    entries.push(conf_entry(2, 1, conf(&[1, 2, 3, 4], &[5])));
    entries.push(super::tests::ent(3, 1));
    let r = Raft::new(
        cfg(1, 7),
        Restored {
            hard_state: HardState {
                term: 1,
                vote: None,
            },
            snapshot: None,
            entries,
        },
    );
    let st = r.status();
    assert_eq!((st.config, st.config_index), (conf(&[1, 2, 3, 4], &[5]), 2));
    // ... or from its snapshot.
    let r = Raft::new(
        cfg(1, 7),
        Restored {
            hard_state: HardState {
                term: 1,
                vote: None,
            },
            snapshot: Some(Snapshot {
                meta: SnapshotMeta {
                    last_index: 5,
                    last_term: 1,
                },
                data: vec![],
                config: Some(ConfState {
                    index: 4,
                    config: conf(&[1, 4], &[]),
                }),
            }),
            entries: vec![],
        },
    );
    let st = r.status();
    assert_eq!(
        (st.config, st.config_index, st.config_committed),
        (conf(&[1, 4], &[]), 4, true)
    );
}

#[test]
fn compaction_keeps_the_configuration_in_effect_at_the_snapshot() {
    let mut r = leader_with_learner();
    r.propose(vec![1]).unwrap();
    persist_and_ack(&mut r, 2);
    r.take_ready();
    r.compact(3, b"s".to_vec());
    assert_eq!(
        r.snapshot_conf(),
        Some(ConfState {
            index: 2,
            config: conf(&[1, 2, 3], &[4])
        })
    );
}

#[test]
fn a_new_leader_tells_a_node_an_earlier_change_removed() {
    // Node 3 was removed at index 2 (then node 4 added at 3) by a leader that is gone; the next leader
    // still replicates to node 3 until it holds its removal and knows it committed.
    let mut r = restored(
        1,
        1,
        vec![
            super::tests::ent(1, 1),
            conf_entry(2, 1, conf(&[1, 2], &[])),
            conf_entry(3, 1, conf(&[1, 2], &[4])),
        ],
    );
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
    assert_eq!(r.role(), Role::Leader);
    let ids = |r: &Raft| r.status().progress.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(&r), vec![2, 3, 4]);
    persist_and_ack(&mut r, 2);
    assert_eq!(r.log.commit, 4);
    r.take_ready();
    r.handle_reply(3, ok_reply(3, 2, 4, 0));
    let last = appends_to(&r.take_ready(), 3);
    assert!(
        last.iter().any(|a| a.heartbeat && a.leader_commit >= 2),
        "{last:?}"
    );
    assert_eq!(ids(&r), vec![2, 4]);
    // Later changes do not bring it back (learner 4 answers first: a silent learner is not promoted).
    r.handle_reply(4, ok_reply(4, 2, 4, 0));
    r.propose_conf_change(ConfChange::Promote(4)).unwrap();
    assert_eq!(ids(&r), vec![2, 4]);
}

// ---- a removed node that never held its removal learns it from a voter ----

/// Node 2 of {1,2}, which removed node 3 at index 2; `commit` is its commit index.
fn member_after_removal(commit: Index) -> Raft {
    let mut v = restored(
        2,
        2,
        vec![
            super::tests::ent(1, 2),
            conf_entry(2, 2, conf(&[1, 2], &[])),
        ],
    );
    v.handle_append_entries(AppendEntries {
        leader: 1,
        heartbeat: true,
        ..append(2, (2, 2), vec![], commit)
    });
    v.take_ready();
    v
}

/// Ticks `r` until it sends (pre-)vote requests; returns the first one.
fn campaign(r: &mut Raft) -> RequestVote {
    for _ in 0..100 {
        r.tick();
        let rd = r.take_ready();
        if let Some((_, Request::Vote(v))) = rd.messages.into_iter().next() {
            return v;
        }
    }
    panic!("node {} did not campaign in 100 ticks", r.id());
}

#[test]
fn a_voter_tells_a_candidate_its_committed_configuration_excludes_it_and_only_that() {
    let removal = ConfState {
        index: 2,
        config: conf(&[1, 2], &[]),
    };
    // Committed: node 3's pre-vote and vote are refused (lease, log) and carry the removal.
    let mut v = member_after_removal(2);
    for pre_vote in [true, false] {
        let rep = v.handle_request_vote(vote_req(9, 3, (1, 2), pre_vote));
        assert!(!rep.granted);
        assert_eq!(rep.removed_by, Some(removal.clone()), "pre_vote {pre_vote}");
    }
    // A member of that configuration is told nothing.
    assert_eq!(
        v.handle_request_vote(vote_req(9, 1, (2, 2), true))
            .removed_by,
        None
    );
    // Not committed yet on this voter: the removal may still be truncated away, so it says nothing.
    let mut v = member_after_removal(1);
    v.leader_contact = 100;
    assert_eq!(
        v.handle_request_vote(vote_req(9, 3, (1, 2), true))
            .removed_by,
        None
    );
    // A node with only its bootstrap configuration (index 0) proves nothing about anyone.
    let mut fresh = Raft::new(
        Config {
            join: true,
            ..cfg(4, 3)
        },
        Restored::default(),
    );
    assert_eq!(
        fresh
            .handle_request_vote(vote_req(9, 3, (1, 2), true))
            .removed_by,
        None
    );
}

#[test]
fn a_removed_node_restarted_without_its_removal_learns_it_from_a_pre_vote_answer() {
    // Node 3 was down when {1,2} removed it at index 2: its log ends at index 1, it still thinks it votes.
    let mut c = restored(3, 2, vec![super::tests::ent(1, 2)]);
    assert!(c.is_voter());
    let mut v = member_after_removal(2);
    let req = campaign(&mut c);
    assert!(req.pre_vote);
    let reply = v.handle_request_vote(req);
    c.handle_reply(2, Reply::Vote(reply.clone()));
    assert_eq!(c.role(), Role::Follower);
    assert_eq!(
        c.take_warnings(),
        vec![
            "node 3 is no longer a member of the cluster (configuration {1,2} at index 2): node 2 has it \
             committed; not campaigning again unless a leader's log includes this node"
                .to_string()
        ]
    );
    assert!(
        c.take_ready()
            .events
            .contains(&RaftEvent::Removed { index: 2 })
    );
    // Told again (a late answer), it logs and reports nothing more; it never asks for pre-votes again.
    c.handle_reply(1, Reply::Vote(reply));
    assert!(take_warnings_empty(&mut c), "logged twice");
    for _ in 0..200 {
        c.tick();
    }
    let rd = c.take_ready();
    assert!(rd.messages.is_empty(), "{:?}", rd.messages);
    assert!(!rd.events.iter().any(|e| matches!(
        e,
        RaftEvent::ElectionStarted { .. } | RaftEvent::Removed { .. }
    )));
    // It still answers: a vote request from a member is judged as before.
    assert!(c.handle_request_vote(vote_req(3, 1, (2, 2), true)).granted);
}

#[test]
fn a_candidate_ignores_a_committed_configuration_older_than_its_own() {
    // Node 5 was added and promoted at index 3; node 2's commit index lags at 2, whose configuration
    // {1,2,3} does not name node 5. Node 5 must keep campaigning: that configuration is stale, not final.
    let mut c = restored(
        5,
        2,
        vec![
            super::tests::ent(1, 2),
            conf_entry(2, 2, conf(&[1, 2, 3], &[])),
            conf_entry(3, 2, conf(&[1, 2, 3, 5], &[])),
        ],
    );
    assert!(c.is_voter());
    let req = campaign(&mut c);
    let stale = RequestVoteReply {
        term: 2,
        voter: 2,
        granted: false,
        pre_vote: true,
        removed_by: Some(ConfState {
            index: 2,
            config: conf(&[1, 2, 3], &[]),
        }),
    };
    assert!(req.pre_vote);
    c.handle_reply(2, Reply::Vote(stale));
    assert!(take_warnings_empty(&mut c));
    assert!(
        !c.take_ready()
            .events
            .iter()
            .any(|e| matches!(e, RaftEvent::Removed { .. }))
    );
    // It campaigns again at its next timeout.
    campaign(&mut c);
}

#[test]
fn a_node_that_learned_its_removal_rejoins_when_a_leader_log_includes_it() {
    let mut c = restored(3, 2, vec![super::tests::ent(1, 2)]);
    let mut v = member_after_removal(2);
    let req = campaign(&mut c);
    c.handle_reply(2, Reply::Vote(v.handle_request_vote(req)));
    c.take_warnings();
    c.take_ready();
    // A leader re-adds node 3 (id reuse, which squall never does) after the removal: index 3 learner,
    // index 4 voter. Its log reaches node 3 by replication like any member's.
    let entries = vec![
        conf_entry(2, 2, conf(&[1, 2], &[])),
        conf_entry(3, 2, conf(&[1, 2], &[3])),
        conf_entry(4, 2, conf(&[1, 2, 3], &[])),
    ];
    c.handle_append_entries(AppendEntries {
        leader: 1,
        ..append(2, (1, 2), entries, 4)
    });
    assert!(c.is_voter());
    c.take_ready();
    c.leader_contact = 100;
    campaign(&mut c);
}

#[test]
fn a_voter_is_demoted_to_learner_and_the_quorum_shrinks() {
    // Leader 1 of voters {1,2,3} and learner 4 (see `leader_with_learner`).
    let mut r = leader_with_learner();
    let (index, _) = r.propose_conf_change(ConfChange::Demote(3)).unwrap();
    let m = r.membership().clone();
    assert!(!m.is_voter(3) && m.is_learner(3), "{m}");
    assert_eq!(m.quorum(), 2, "{m}");
    assert_eq!(r.membership_index(), index);
}

#[test]
fn demotion_is_refused_for_learners_strangers_the_last_voter_and_the_leader() {
    let mut r = leader_with_learner();
    let mut refuse = |c| r.propose_conf_change(c).unwrap_err();
    assert_eq!(
        refuse(ConfChange::Demote(4)),
        MembershipError::NotVoter { id: 4 }
    );
    assert_eq!(
        refuse(ConfChange::Demote(7)),
        MembershipError::NotMember { id: 7 }
    );
    assert_eq!(refuse(ConfChange::Demote(1)), MembershipError::DemoteLeader);
    let m = Membership::with_voters([5]);
    assert_eq!(
        m.apply(ConfChange::Demote(5)),
        Err(MembershipError::LastVoter)
    );
}

#[test]
fn a_leader_that_removed_itself_and_restarted_before_the_commit_still_campaigns_to_finish_it() {
    // Simulation seed 796580109240: node 1 led term 1 of {1,2,3} and appended {2,3} at index 3 (its own
    // removal), then restarted. Node 3 holds less of the log (node 1 refuses it on the log check) and node 2
    // is recovering (it only votes for a position the other voters vouch for), so only node 1 can win.
    let entries = || {
        vec![
            super::tests::ent(1, 1),
            super::tests::ent(2, 1),
            conf_entry(3, 1, conf(&[2, 3], &[])),
        ]
    };
    let restart = |vote| {
        Raft::new(
            cfg(1, 3),
            Restored {
                hard_state: HardState { term: 1, vote },
                snapshot: None,
                entries: entries(),
            },
        )
    };
    let mut a = restart(Some(1));
    a.take_ready();
    assert!(!a.is_voter());
    // Seed 796580107216: a real vote request of a later term from a voter with less of the log is refused,
    // and resets the durable vote; the node still campaigns (its uncommitted removal says it may).
    let refused = a.handle_request_vote(vote_req(5, 2, (2, 1), false));
    assert!(!refused.granted);
    assert_eq!((a.term(), a.vote), (5, None));
    for _ in 0..a.config.election_ticks_max * 2 {
        a.tick();
    }
    let rd = a.take_ready();
    let asked: Vec<NodeId> = rd
        .messages
        .iter()
        .filter_map(|(p, m)| matches!(m, Request::Vote(v) if v.pre_vote).then_some(*p))
        .collect();
    assert!(
        asked.starts_with(&[2, 3]),
        "it did not pre-campaign: {:?}",
        rd.messages
    );
    // Its pre-vote needs both voters of {2,3}: its own does not count.
    a.handle_reply(2, vote_granted(2, 6, true));
    assert_eq!(a.role(), Role::PreCandidate);
    a.handle_reply(3, vote_granted(3, 6, true));
    assert_eq!(a.role(), Role::Candidate);
    a.take_ready();
    a.handle_reply(2, vote_granted(2, 6, false));
    a.handle_reply(3, vote_granted(3, 6, false));
    assert_eq!(a.role(), Role::Leader);
}

#[test]
fn a_node_another_leader_removed_campaigns_while_its_removal_is_uncommitted() {
    // Simulation seed 10054: node 3 led term 1 of {1,2,3} and appended {1,3} at index 3 (node 2's removal),
    // which node 2 holds; node 3 then cut that record as a damaged one and recovers, and node 1 holds less of
    // the log. Node 2 holds the only log node 3 may vouch for (with node 1), so it must campaign; it counts only
    // the voters of {1,3}.
    let entries = vec![
        super::tests::ent(1, 1),
        super::tests::ent(2, 1),
        conf_entry(3, 1, conf(&[1, 3], &[])),
    ];
    let mut b = Raft::new(
        cfg(2, 3),
        Restored {
            hard_state: HardState {
                term: 1,
                vote: Some(3),
            },
            snapshot: None,
            entries,
        },
    );
    b.take_ready();
    assert!(!b.is_voter());
    let req = campaign(&mut b);
    assert!(req.pre_vote && req.last_log_index == 3);
    b.handle_reply(1, vote_granted(1, 2, true));
    assert_eq!(b.role(), Role::PreCandidate, "counted itself");
    b.handle_reply(3, vote_granted(3, 2, true));
    assert_eq!(b.role(), Role::Candidate);
    // A voter holding the removal committed tells it so: it stops for good.
    let told = RequestVoteReply {
        term: 2,
        voter: 1,
        granted: false,
        pre_vote: false,
        removed_by: Some(ConfState {
            index: 3,
            config: conf(&[1, 3], &[]),
        }),
    };
    b.handle_reply(1, Reply::Vote(told));
    assert_eq!(b.role(), Role::Follower);
    b.take_ready();
    for _ in 0..b.config.election_ticks_max * 4 {
        b.tick();
    }
    assert_eq!(elections_started(&mut b), 0);
}

fn vote_granted(voter: NodeId, term: Term, pre_vote: bool) -> Reply {
    Reply::Vote(RequestVoteReply {
        term,
        voter,
        granted: true,
        pre_vote,
        removed_by: None,
    })
}

// ---- a learner that is still recovering ----

/// Hands every AppendEntries the leader has for `to` to it and its answers back; returns how many went.
fn pump_appends(leader: &mut Raft, to: &mut Raft) -> usize {
    let reqs = appends_to(&leader.take_ready(), to.id());
    for req in &reqs {
        let reply = to.handle_append_entries(req.clone());
        to.take_ready();
        leader.handle_reply(to.id(), Reply::Append(reply));
    }
    reqs.len()
}

#[test]
fn a_learner_still_recovering_is_not_promoted_until_a_leader_caught_it_up() {
    // Simulation seeds 3551, 3052, 3899: a spare joins empty (so it recovers, as a wiped node would), is
    // promoted while the leader still catches it up, and the leader then fails. As a voter whose log does not
    // yet hold its promotion, it knows no configuration naming it, so it has no voters to learn the term from
    // and never votes: the other voters can never win without it. A learner that finished recovering votes on
    // the log check alone, as any Raft node does.
    let mut r = leader_with_learner();
    for c in 0..4u8 {
        r.propose(vec![c]).unwrap();
    }
    persist_and_ack(&mut r, 2);
    assert_eq!(r.log.commit, 6);
    let mut l = Raft::new(
        Config {
            join: true,
            ..cfg(4, 3)
        },
        Restored::default(),
    );
    // Started `--initial-state existing` (the default), its empty directory may be a lost one.
    l.mark_lost_data();
    assert!(l.recovering());
    // The first batches (two entries each) match part of the log: the learner has answered and is close to
    // the leader, but it is not caught up to the leader's commit index yet, so it still recovers.
    for _ in 0..20 {
        if l.log.last_index() >= 2 {
            break;
        }
        pump_appends(&mut r, &mut l);
        r.tick();
    }
    assert!(l.log.last_index() >= 2, "nothing reached the learner");
    assert!(l.recovering());
    assert!(r.progress[&4].match_index > 0);
    assert_eq!(
        r.propose_conf_change(ConfChange::Promote(4)),
        Err(MembershipError::LearnerRecovering { id: 4 })
    );
    // It learns the current term from voters 1 and 2 (a majority of the voters it knows of), and once caught
    // up to a commit index of the leader's term it has finished, says so, and is promoted.
    for _ in 0..10 {
        l.tick();
        for (to, m) in l.take_ready().messages {
            let Request::Vote(probe) = m else { continue };
            let reply = match to {
                1 => r.handle_request_vote(probe),
                _ => RequestVoteReply {
                    term: 2,
                    voter: to,
                    granted: false,
                    pre_vote: true,
                    removed_by: None,
                },
            };
            l.handle_reply(to, Reply::Vote(reply));
        }
        pump_appends(&mut r, &mut l);
        r.tick();
    }
    assert!(
        !l.recovering(),
        "the learner was not caught up: last {} commit {}, leader commit {}",
        l.log.last_index(),
        l.log.commit,
        r.log.commit
    );
    assert!(r.propose_conf_change(ConfChange::Promote(4)).is_ok());
}

#[test]
fn a_leader_that_removed_itself_still_campaigns_after_a_later_term_and_a_restart() {
    // Simulation seed 3930: node 1 led term 1 of {1,2,3} and appended {2,3} at index 3 (its own removal),
    // then restarted. Its durable vote for itself is how a restart knows it removed itself; a later term it
    // adopts from an answer or a request it refuses must not erase that, or after the next restart it never
    // campaigns again, and with node 2 recovering (it votes only for the position the others vouch for, which
    // node 1's longer log keeps node 3 from vouching) nobody can win.
    let entries = vec![
        super::tests::ent(1, 1),
        super::tests::ent(2, 1),
        conf_entry(3, 1, conf(&[2, 3], &[])),
    ];
    let restart = |hard_state: HardState| {
        let mut r = Raft::new(
            cfg(1, 3),
            Restored {
                hard_state,
                snapshot: None,
                entries: entries.clone(),
            },
        );
        r.take_ready();
        r
    };
    let mut a = restart(HardState {
        term: 1,
        vote: Some(1),
    });
    // Node 3, behind, refuses its campaign with a later term.
    a.handle_reply(
        3,
        Reply::Vote(RequestVoteReply {
            term: 4,
            voter: 3,
            granted: false,
            pre_vote: false,
            removed_by: None,
        }),
    );
    let hs = a
        .take_ready()
        .hard_state
        .expect("the new term is persisted");
    assert_eq!(hs.term, 4);
    let mut a = restart(hs);
    assert_eq!(
        campaign(&mut a).candidate,
        1,
        "after an answer of a later term"
    );
    // A vote request of a later term from a candidate with less of the log, refused.
    let mut a = restart(hs);
    assert!(!a.handle_request_vote(vote_req(6, 3, (2, 1), false)).granted);
    let hs = a
        .take_ready()
        .hard_state
        .expect("the new term is persisted");
    assert_eq!(hs.term, 6);
    let mut a = restart(hs);
    assert_eq!(
        campaign(&mut a).candidate,
        1,
        "after a refused vote request"
    );
    // A candidate at least as up to date still gets its vote: it holds the removal too.
    let mut a = restart(hs);
    assert!(a.handle_request_vote(vote_req(7, 2, (3, 1), false)).granted);
}
