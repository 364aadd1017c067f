//! Unit tests of [`ClusterState::apply`]: statuses and events in, dashboard state out.

use squall_node::raft::types::{PeerProgress, RaftEvent, Role};
use squall_node::rpc::{EventRecord, LogCell, NodeEvent, NodeStatus};

use super::*;

/// Node `id` (pid `1000 + id`) in `role` and `term`, its log ending at `commit`, all committed, the last three
/// entries in its tail.
fn status(id: u64, role: Role, term: u64, commit: u64) -> NodeStatus {
    let mut s = fixture::node_status(id, 1000 + id as u32, term, commit);
    s.core.role = role;
    s.core.leader = (role == Role::Leader).then_some(id);
    s.log_tail = (commit.saturating_sub(3) + 1..=commit)
        .map(|index| LogCell {
            index,
            term,
            text: "noop".into(),
        })
        .collect();
    s
}

fn started(nodes: u64) -> ClusterState {
    let mut s = ClusterState::new();
    s.apply(&Stamped::new(
        0,
        Event::SessionStarted {
            cluster_id: "c".into(),
            nodes: (1..=nodes).collect(),
            dir: "/d".into(),
        },
    ));
    for node in 1..=nodes {
        s.apply(&Stamped::new(
            1,
            Event::Process {
                node,
                state: ProcessState::Running {
                    pid: 1000 + node as u32,
                },
            },
        ));
    }
    s
}

fn st(s: &mut ClusterState, at: u64, node: u64, role: Role, term: u64, commit: u64) {
    s.apply(&Stamped::new(
        at,
        Event::Status {
            node,
            status: status(node, role, term, commit),
        },
    ));
}

fn raft(s: &mut ClusterState, at: u64, node: u64, event: RaftEvent) {
    let record = EventRecord {
        seq: 0,
        at_ms: at,
        event: NodeEvent::Raft(event),
    };
    s.apply(&Stamped::new(at, Event::NodeFeed { node, record }));
}

fn feed_texts(s: &ClusterState) -> Vec<&str> {
    s.feed.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn statuses_give_nodes_leader_term_and_commit() {
    let mut s = started(3);
    st(&mut s, 100, 1, Role::Follower, 1, 4);
    st(&mut s, 100, 2, Role::Leader, 1, 5);
    st(&mut s, 100, 3, Role::Follower, 1, 4);
    assert_eq!(s.leader, Some(2));
    assert_eq!((s.term, s.leader_term, s.commit), (1, 1, 5));
    assert_eq!(s.nodes.len(), 3);
    assert_eq!(s.nodes[&2].process.pid(), Some(1002));
    assert_eq!(s.nodes[&2].lane.current(), LaneRole::Leader);
    assert_eq!(s.now_ms, 100, "uptime is the latest event time");
    assert!(feed_texts(&s).contains(&"n2 leads term 1"));
    assert_eq!(s.lag(1), Some(1));
    assert_eq!(s.lag(2), Some(0));
}

#[test]
fn a_leader_in_a_higher_term_takes_over_and_is_announced_once() {
    let mut s = started(3);
    st(&mut s, 100, 1, Role::Leader, 1, 5);
    st(&mut s, 100, 2, Role::Follower, 1, 5);
    // Node 1 is cut off but still believes it leads term 1; node 3 wins term 2.
    raft(
        &mut s,
        900,
        3,
        RaftEvent::ElectionStarted {
            term: 2,
            pre_vote: false,
            round: 0,
        },
    );
    raft(&mut s, 900, 3, RaftEvent::TermChanged { term: 2 });
    raft(
        &mut s,
        910,
        2,
        RaftEvent::VoteGranted {
            candidate: 3,
            term: 2,
            pre_vote: false,
            round: 0,
        },
    );
    raft(
        &mut s,
        920,
        3,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 2,
        },
    );
    assert_eq!(s.term, 2);
    st(&mut s, 1000, 3, Role::Leader, 2, 6);
    assert_eq!(s.leader, Some(3));
    assert_eq!(s.leader_term, 2);
    let announcements: Vec<_> = s
        .feed
        .iter()
        .filter(|l| l.kind == FeedKind::Leader)
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(announcements, ["n1 leads term 1", "n3 leads term 2"]);
    // The vote shows on the line of the request it answers.
    assert!(feed_texts(&s).contains(&"n3 starts an election in term 2 — votes from n2"));
    // The term is the candidate's: no line credits it to anyone else.
    assert!(!feed_texts(&s).iter().any(|l| l.contains("begins")));
    // The old leader steps down when it hears of term 2.
    raft(
        &mut s,
        1100,
        1,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 1,
        },
    );
    raft(
        &mut s,
        1200,
        1,
        RaftEvent::RoleChanged {
            role: Role::Follower,
            term: 2,
        },
    );
    assert!(feed_texts(&s).contains(&"n1 steps down in term 2"));
    assert_eq!(
        s.feed.iter().filter(|l| l.kind == FeedKind::Leader).count(),
        2,
        "no re-announcement of term 1"
    );
}

#[test]
fn a_failed_start_shows_the_node_s_reason_and_old_logs_without_one_still_read() {
    let mut s = started(3);
    s.apply(&Stamped::new(
        1_000,
        Event::Process {
            node: 2,
            state: ProcessState::Exited {
                pid: 1002,
                code: Some(2),
                signal: None,
                reason: Some("wal.log is corrupt".into()),
            },
        },
    ));
    assert_eq!(
        feed_texts(&s).last(),
        Some(&"n2 exited with code 2: wal.log is corrupt")
    );
    // An event written before the reason existed has no such field.
    let old: ProcessState =
        serde_json::from_str(r#"{"Exited":{"pid":7,"code":1,"signal":null}}"#).unwrap();
    assert_eq!(
        old,
        ProcessState::Exited {
            pid: 7,
            code: Some(1),
            signal: None,
            reason: None
        }
    );
}

/// n2 a follower and n3 a learner in term 2 under n1, as a kind whose status carries no configuration reports
/// them (etcd's brief says `isLearner`; its role stays follower).
fn follower_and_learner(s: &mut ClusterState) {
    for (node, learner) in [(2, false), (3, true)] {
        let status = crate::check::brief::BriefStatus {
            role: Some(Role::Follower),
            term: Some(2),
            leader: Some(Some(1)),
            applied: Some(10),
            learner,
            ..Default::default()
        };
        s.apply(&Stamped::new(100, Event::Brief { node, status }));
    }
}

/// fixes3 item 3: etcd says a member is a learner (`isLearner`) while its role says follower; the console's
/// status line and the node's membership say `learner`, and a brief without the field (older logs) reads.
#[test]
fn a_learner_a_kind_reports_is_shown_as_a_learner_not_a_follower() {
    let mut s = started(3);
    follower_and_learner(&mut s);
    let three = describe_node(&s.nodes[&3]);
    assert!(
        three.contains(" learner term 2") && !three.contains("follower"),
        "{three}"
    );
    assert_eq!(s.membership(3), Some(MemberRole::Learner));
    assert!(describe_node(&s.nodes[&2]).contains(" follower term 2"));
    assert_eq!(s.membership(2), None, "no configuration known: not guessed");
    let old: crate::check::brief::BriefStatus =
        serde_json::from_str(r#"{"role":"Follower","term":2}"#).unwrap();
    assert!(!old.learner);
}

/// tester7 (finding 7): on etcd (no configuration in its status) a voter's status line said no `member`
/// while a learner's said `member learner`; a cancelled `add` whose process never started read
/// `n5 starting no status yet member removed`. Seen failing before `status_line` named voters and
/// `describe_node` a never-started node.
#[test]
fn etcd_status_lines_name_voters_and_a_cancelled_add_that_never_started() {
    let mut s = started(3);
    follower_and_learner(&mut s);
    let two = s.status_line(&s.nodes[&2], true);
    assert!(two.ends_with(" member voter"), "{two}");
    let three = s.status_line(&s.nodes[&3], true);
    assert!(three.ends_with(" member learner"), "{three}");
    // A kind that cannot change membership (a Maelstrom node) is not called a voter.
    assert!(!s.status_line(&s.nodes[&2], false).contains("member"));
    // Tester 9's finding 8: a partitioned member knows no leader, so etcd gives it no role; it is a voter
    // all the same (its role is `—`: follower or candidate, etcd does not say).
    let status = crate::check::brief::BriefStatus {
        role: None,
        term: Some(3),
        leader: Some(None),
        applied: Some(237),
        ..Default::default()
    };
    s.apply(&Stamped::new(150, Event::Brief { node: 1, status }));
    let one = s.status_line(&s.nodes[&1], true);
    assert!(one.ends_with(" member voter"), "{one}");
    // `add` then `remove 4` before its process started.
    s.apply(&Stamped::new(
        200,
        Event::Process {
            node: 4,
            state: ProcessState::Starting,
        },
    ));
    s.apply(&Stamped::new(
        300,
        Event::Membership {
            node: 4,
            step: MembershipStep::Removed,
            text: "n4 removed: its process was never started".into(),
        },
    ));
    let four = s.status_line(&s.nodes[&4], true);
    assert_eq!(four, "n4 never started member removed");
}

/// fixes3 item 2: an etcd member ends its own process once removed; that exit is its leaving, said once, and
/// not a fault of the run (the feed said "exited with code 1" and the faults line "n3 exited").
#[test]
fn a_member_that_ends_itself_once_removed_left_the_cluster_and_is_no_fault() {
    let mut s = started(3);
    s.apply(&Stamped::new(
        1_000,
        Event::Membership {
            node: 3,
            step: MembershipStep::Removed,
            text: "n3 left the cluster (removed; its process ended itself, exit code 1)".into(),
        },
    ));
    s.apply(&Stamped::new(
        1_001,
        Event::Process {
            node: 3,
            state: ProcessState::Exited {
                pid: 1003,
                code: Some(1),
                signal: None,
                reason: None,
            },
        },
    ));
    let texts = feed_texts(&s);
    assert_eq!(
        texts.last(),
        Some(&"n3 left the cluster (removed; its process ended itself, exit code 1)"),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.contains("exited")), "{texts:?}");
    assert!(s.faults.is_empty(), "{:?}", s.faults);
}

#[test]
fn a_process_exit_shows_everywhere() {
    let mut s = started(3);
    st(&mut s, 100, 1, Role::Leader, 3, 10);
    st(&mut s, 100, 2, Role::Follower, 3, 10);
    s.apply(&Stamped::new(
        2_000,
        Event::Process {
            node: 1,
            state: ProcessState::Exited {
                pid: 1001,
                code: None,
                signal: Some("SIGTERM".into()),
                reason: None,
            },
        },
    ));
    let n = &s.nodes[&1];
    assert_eq!(n.process.label(), "sig TERM");
    assert_eq!(n.lane.current(), LaneRole::Down);
    assert!(
        n.live_status().is_none(),
        "a dead process's status is history"
    );
    assert_eq!(s.leader, None, "a dead leader leads nothing");
    assert_eq!(s.faults, ["n1 exited"]);
    let last = s.feed.back().expect("a feed line");
    assert_eq!(
        (last.kind, last.text.as_str()),
        (FeedKind::Exit, "n1 ended by SIGTERM")
    );

    // Restarted, but its old status (leader of term 3) must not make it the leader again.
    s.apply(&Stamped::new(
        2_500,
        Event::Process {
            node: 1,
            state: ProcessState::Restarting { wipe: true },
        },
    ));
    s.apply(&Stamped::new(
        2_600,
        Event::Process {
            node: 1,
            state: ProcessState::Running { pid: 2001 },
        },
    ));
    assert_eq!(s.leader, None);
    assert!(s.faults.is_empty());
    assert!(feed_texts(&s).contains(&"n1 restarting with its data wiped"));
    st(&mut s, 2_700, 1, Role::Follower, 3, 0);
    assert_eq!(s.nodes[&1].lane.current(), LaneRole::Follower);
}

#[test]
fn unreachable_is_logged_once_per_outage() {
    let mut s = started(2);
    st(&mut s, 100, 1, Role::Follower, 1, 1);
    for at in [200, 300, 400] {
        s.apply(&Stamped::new(
            at,
            Event::Unreachable {
                node: 1,
                error: "deadline".into(),
            },
        ));
    }
    st(&mut s, 500, 1, Role::Follower, 1, 1);
    let texts = feed_texts(&s);
    assert_eq!(
        texts.iter().filter(|t| t.contains("unreachable")).count(),
        1,
        "{texts:?}"
    );
    assert!(texts.contains(&"n1 answers again"));
    assert!(s.nodes[&1].reachable);
}

#[test]
fn feed_is_bounded_and_readers_can_find_new_lines() {
    let mut s = ClusterState::new();
    for i in 0..(FEED_CAPACITY as u64 + 100) {
        s.apply(&Stamped::new(
            i,
            Event::Performed {
                command: crate::command::Command::Heal(None),
                node: None,
                effect: format!("fault {i}"),
            },
        ));
    }
    assert_eq!(s.feed.len(), FEED_CAPACITY);
    assert_eq!(s.feed_total(), FEED_CAPACITY as u64 + 100);
    assert_eq!(s.feed.front().expect("kept").text, "fault 100");
    let new: Vec<_> = s
        .feed_since(s.feed_total() - 2)
        .map(|l| l.text.clone())
        .collect();
    assert_eq!(new, ["fault 598", "fault 599"]);
    assert_eq!(
        s.feed_since(0).count(),
        FEED_CAPACITY,
        "lines already dropped are skipped"
    );
}

#[test]
fn writes_per_second_come_from_commit_growth() {
    let mut s = started(3);
    // The commit index the session joins at is not counted as writes.
    st(&mut s, 100, 1, Role::Leader, 1, 500);
    for (at, commit) in [
        (600, 510),
        (1_200, 530),
        (1_900, 560),
        (2_100, 561),
        (4_500, 600),
    ] {
        st(&mut s, at, 1, Role::Leader, 1, commit);
    }
    assert_eq!(
        s.writes.completed(10).collect::<Vec<_>>(),
        vec![10, 50, 1, 0]
    );
    assert_eq!(s.writes.last_rate(), 0);
    assert_eq!(s.commit, 600);
    // A follower with a lower commit index changes nothing.
    st(&mut s, 4_600, 2, Role::Follower, 1, 590);
    assert_eq!(s.commit, 600);
    assert_eq!(s.commit_high, 600);
}

#[test]
fn workload_and_client_ops_give_rates_and_latencies() {
    let mut s = ClusterState::new();
    for (at, ok) in [(500, 0), (1_500, 40), (2_500, 85)] {
        s.apply(&Stamped::new(
            at,
            Event::Workload {
                on: true,
                rate: 50,
                ok,
                failed: 1,
                cas_failed: 0,
            },
        ));
    }
    s.apply(&Stamped::new(
        3_100,
        Event::Workload {
            on: true,
            rate: 50,
            ok: 90,
            failed: 1,
            cas_failed: 0,
        },
    ));
    assert_eq!(
        s.workload_ok.completed(5).collect::<Vec<_>>(),
        vec![0, 40, 45]
    );
    for (i, lat) in [900u64, 1_000, 1_100, 50_000].iter().enumerate() {
        let result = if i == 3 { "timeout" } else { "ok" };
        s.apply(&Stamped::new(
            3_200,
            Event::ClientOp {
                op: "put".into(),
                result: result.into(),
                latency_us: *lat,
            },
        ));
    }
    assert_eq!(
        s.latency_percentiles(10_000),
        Some((1_000, 1_100)),
        "failed ops are left out"
    );
}

#[test]
fn links_give_rates_and_named_faults() {
    let link = |from, to, state, frames| LinkView {
        from,
        to,
        state,
        frames,
        bytes: frames * 100,
        dropped: 0,
        kinds: Vec::new(),
        duplicated: 0,
        delayed: 0,
    };
    let all = |state: &dyn Fn(u64, u64) -> LinkState, frames: u64| {
        let mut v = Vec::new();
        for a in 1..=5 {
            for b in 1..=5 {
                if a != b {
                    v.push(link(a, b, state(a, b), frames));
                }
            }
        }
        v
    };
    let mut s = started(5);
    s.apply(&Stamped::new(
        1_000,
        Event::Links {
            links: all(&|_, _| LinkState::Ok, 100),
        },
    ));
    assert!(s.link_rates.is_empty(), "one report gives no rate");
    s.apply(&Stamped::new(
        3_000,
        Event::Links {
            links: all(&|_, _| LinkState::Ok, 300),
        },
    ));
    assert_eq!(s.link_rates[&(1, 2)].frames, 100.0);
    assert_eq!(s.link_rates[&(1, 2)].bytes, 10_000.0);
    assert!(s.faults.is_empty());

    let side = |n: u64| n <= 2;
    let partition = all(
        &|a, b| {
            if side(a) != side(b) {
                LinkState::Cut
            } else {
                LinkState::Ok
            }
        },
        300,
    );
    assert_eq!(describe_links(&partition), ["partition 1,2|3,4,5"]);
    let isolate = all(
        &|a, b| {
            if a == 4 || b == 4 {
                LinkState::Cut
            } else {
                LinkState::Ok
            }
        },
        300,
    );
    assert_eq!(describe_links(&isolate), ["n4 isolated"]);
    // A bridge: 3 talks to both sides, so there are no separate groups, only cut links.
    let bridge = all(
        &|a, b| {
            let far = (a <= 2 && b >= 4) || (b <= 2 && a >= 4);
            if far { LinkState::Cut } else { LinkState::Ok }
        },
        300,
    );
    assert_eq!(describe_links(&bridge), ["8 links cut"]);
    let slow = all(
        &|a, b| {
            if a == 2 || b == 2 {
                LinkState::Delayed(200)
            } else if (a, b) == (4, 5) {
                LinkState::Lossy(30)
            } else {
                LinkState::Ok
            }
        },
        300,
    );
    assert_eq!(describe_links(&slow), ["n2 +200ms", "1 link 30% loss"]);

    s.apply(&Stamped::new(4_000, Event::Links { links: isolate }));
    s.apply(&Stamped::new(
        4_100,
        Event::Process {
            node: 5,
            state: ProcessState::Paused { pid: 1005 },
        },
    ));
    assert_eq!(s.faults, ["n5 paused", "n4 isolated"]);
}

#[test]
fn role_lanes_show_brief_elections_from_the_feed() {
    let mut s = started(2);
    st(&mut s, 1_000, 1, Role::Follower, 1, 1);
    raft(
        &mut s,
        30_000,
        1,
        RaftEvent::RoleChanged {
            role: Role::Candidate,
            term: 2,
        },
    );
    st(&mut s, 30_100, 1, Role::Follower, 2, 1);
    s.apply(&Stamped::new(60_000, Event::Quit));
    let mut cells = [LaneRole::Unknown; 60];
    s.nodes[&1]
        .lane
        .sample(s.now_ms, LANE_WINDOW_MS, &mut cells);
    assert_eq!(cells[0], LaneRole::Unknown, "before the first status");
    assert_eq!(cells[29], LaneRole::Follower);
    assert_eq!(cells[30], LaneRole::Candidate);
    assert_eq!(cells[31], LaneRole::Follower);
    assert!(s.ended);
}

#[test]
fn recording_flag_follows_recording_events() {
    let mut s = ClusterState::new();
    s.apply(&Stamped::new(
        5,
        Event::Recording {
            on: true,
            path: Some("a.cast".into()),
        },
    ));
    assert!(s.recording);
    assert_eq!(s.recording_path.as_deref(), Some("a.cast"));
    s.apply(&Stamped::new(
        6,
        Event::Recording {
            on: false,
            path: Some("a.cast".into()),
        },
    ));
    assert!(!s.recording);
    assert_eq!(s.recording_path, None);
    assert_eq!(
        feed_texts(&s),
        [
            "recording to a.cast",
            "recording stopped: a.cast is complete"
        ]
    );
}

#[test]
fn replaying_the_same_events_rebuilds_the_same_state_through_json() {
    let events = fixture::sample_session(5);
    let mut live = ClusterState::new();
    let mut replayed = ClusterState::new();
    for e in &events {
        live.apply(e);
        let line = serde_json::to_string(e).expect("encode");
        let back: Stamped = serde_json::from_str(&line).expect("decode");
        assert_eq!(&back, e);
        replayed.apply(&back);
    }
    assert_eq!(live, replayed);
    assert_eq!(live.leader, Some(4));
    assert_eq!(
        live.nodes[&2].status.as_ref().map(|s| s.core.last_log_term),
        Some(1)
    );
}

#[test]
fn lag_prefers_the_leaders_match_index() {
    let mut s = started(2);
    let mut leader = status(1, Role::Leader, 2, 20);
    leader.core.progress = vec![PeerProgress {
        id: 2,
        match_index: 12,
        next_index: 13,
        inflight: 0,
        snapshotting: false,
    }];
    s.apply(&Stamped::new(
        10,
        Event::Status {
            node: 1,
            status: leader,
        },
    ));
    // Node 2 holds 15 entries, but 13..15 are from an old term the leader does not match.
    st(&mut s, 10, 2, Role::Follower, 1, 15);
    assert_eq!(s.lag(2), Some(8));
}

#[test]
fn lag_counts_a_diverged_log_from_where_it_parts_from_the_leaders() {
    // Issue 20: a follower as long as the leader but with other terms at the end said lag 0 while the new
    // leader had no match index for it yet.
    let mut s = started(2);
    let mut leader = status(1, Role::Leader, 3, 20);
    // The leader's tail: 18 of term 2, 19 and 20 of term 3.
    leader.log_tail[0].term = 2;
    leader.core.progress = vec![PeerProgress {
        id: 2,
        match_index: 0,
        next_index: 21,
        inflight: 0,
        snapshotting: false,
    }];
    s.apply(&Stamped::new(
        10,
        Event::Status {
            node: 1,
            status: leader,
        },
    ));
    // Node 2 holds 18..20 all of term 2: it agrees with the leader up to 18.
    let mut f = status(2, Role::Follower, 3, 20);
    for c in &mut f.log_tail {
        c.term = 2;
    }
    f.core.last_log_term = 2;
    s.apply(&Stamped::new(
        10,
        Event::Status {
            node: 2,
            status: f.clone(),
        },
    ));
    assert_eq!(s.lag(2), Some(2));
    // Nothing in common in the two tails: at least the whole tail differs.
    for c in &mut f.log_tail {
        c.term = 1;
    }
    s.apply(&Stamped::new(11, Event::Status { node: 2, status: f }));
    assert_eq!(s.lag(2), Some(3));
}

#[test]
fn describe_node_gives_one_line_for_text_output() {
    let mut s = started(2);
    st(&mut s, 100, 1, Role::Leader, 3, 7);
    assert_eq!(
        describe_node(&s.nodes[&1]),
        "n1 running pid 1001 leader term 3 leader n1 commit 7 applied 7 last 7/3 snapshot 0"
    );
    assert_eq!(
        describe_node(&s.nodes[&2]),
        "n2 running pid 1002 no status yet"
    );
    s.apply(&Stamped::new(
        200,
        Event::Process {
            node: 1,
            state: ProcessState::Killed { pid: 1001 },
        },
    ));
    assert!(describe_node(&s.nodes[&1]).ends_with("(last known)"));
}

#[test]
fn a_line_repeated_within_seconds_is_counted_not_repeated() {
    let mut s = started(3);
    let before = s.feed_total();
    let pre_vote = || RaftEvent::ElectionStarted {
        term: 2,
        pre_vote: true,
        round: 0,
    };
    // An isolated node asks for pre-votes every election timeout.
    for i in 0..5 {
        raft(&mut s, 10_000 + i * 250, 3, pre_vote());
    }
    assert_eq!(s.feed_total() - before, 1, "one line: {:?}", feed_texts(&s));
    let line = s.feed.back().expect("a line");
    assert_eq!(
        (line.repeats, line.at_ms, line.last_ms),
        (5, 10_000, 11_000)
    );
    // Another node's identical event is its own line; so is the same one after a quiet spell.
    raft(&mut s, 11_100, 2, pre_vote());
    raft(&mut s, 20_000, 3, pre_vote());
    assert_eq!(s.feed_total() - before, 3, "{:?}", feed_texts(&s));
    assert_eq!(s.feed.back().expect("a line").repeats, 1);
}

fn raft_at(s: &mut ClusterState, arrival: u64, node: u64, node_ms: u64, event: RaftEvent) {
    let record = EventRecord {
        seq: 0,
        at_ms: node_ms,
        event: NodeEvent::Raft(event),
    };
    s.apply(&Stamped::new(arrival, Event::NodeFeed { node, record }));
}

#[test]
fn a_grant_of_a_held_request_comes_after_the_delivery_that_caused_it() {
    // Issue 20: with frames held, `n2 asks for pre-votes for term 2 — granted by n3` appeared above
    // `deliver 2->3 …`, crediting a grant of an earlier, held round to the newest one.
    let mut s = started(3);
    for node in [2, 3] {
        let mut status = status(node, Role::Follower, 1, 1);
        status.uptime_ms = 1_000;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    let asks = RaftEvent::ElectionStarted {
        term: 2,
        pre_vote: true,
        round: 0,
    };
    // Two rounds of the same term, their frames held; then the first one's frame to n3 is delivered by hand.
    raft_at(&mut s, 2_000, 2, 2_000, asks.clone());
    s.apply(&Stamped::new(
        2_500,
        Event::Performed {
            command: crate::command::parse("hold *").unwrap(),
            node: None,
            effect: "hold every link".into(),
        },
    ));
    raft_at(&mut s, 3_000, 2, 3_000, asks);
    s.apply(&Stamped::new(
        4_000,
        Event::Performed {
            command: crate::command::parse("step * 1").unwrap(),
            node: None,
            effect: "deliver 2->3 pre-vote n2 term 2 last 1/1".into(),
        },
    ));
    // n3's clock puts its grant a moment before the orchestrator wrote the delivery down.
    raft_at(
        &mut s,
        4_100,
        3,
        3_990,
        RaftEvent::VoteGranted {
            candidate: 2,
            term: 2,
            pre_vote: true,
            round: 0,
        },
    );
    let texts = feed_texts(&s);
    let tail = &texts[texts.len() - 3..];
    assert_eq!(
        tail,
        [
            "n2 asks for pre-votes for term 2",
            "deliver 2->3 pre-vote n2 term 2 last 1/1",
            "n3 pre-votes for n2 in term 2",
        ],
        "{texts:#?}"
    );
    // The console's lines come in the same order.
    let ticker: Vec<&str> = s.feed_since(0).map(|l| l.text.as_str()).collect();
    let at = |t: &str| ticker.iter().position(|x| *x == t).unwrap();
    assert!(
        at("deliver 2->3 pre-vote n2 term 2 last 1/1") < at("n3 pre-votes for n2 in term 2"),
        "{ticker:#?}"
    );
    let times: Vec<u64> = s.feed.iter().rev().take(2).map(|l| l.at_ms).collect();
    assert!(
        times[0] >= times[1],
        "the grant is not placed before the delivery: {times:?}"
    );
}

#[test]
fn a_grant_is_credited_to_its_own_round_not_to_a_newer_one_of_the_same_term() {
    // Issue 20 (teach3 item 2): successive pre-vote rounds ask for the same term. n2's first round is held,
    // its frame to n3 delivered by hand, and n2 starts a second round before n3's grant of the first reaches
    // the feed: the grant was credited to the second round's line (`… — granted by n3`).
    let mut s = started(3);
    for node in [2, 3] {
        let mut status = status(node, Role::Follower, 1, 1);
        status.uptime_ms = 1_000;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    let asks = |round| RaftEvent::ElectionStarted {
        term: 2,
        pre_vote: true,
        round,
    };
    raft_at(&mut s, 2_000, 2, 2_000, asks(1));
    s.apply(&Stamped::new(
        2_500,
        Event::Performed {
            command: crate::command::parse("hold *").unwrap(),
            node: None,
            effect: "hold every link".into(),
        },
    ));
    s.apply(&Stamped::new(
        4_000,
        Event::Performed {
            command: crate::command::parse("step 2->3 1").unwrap(),
            node: None,
            effect: "deliver 2->3 pre-vote n2 term 2 last 1/1".into(),
        },
    ));
    raft_at(&mut s, 4_100, 2, 4_050, asks(2));
    raft_at(
        &mut s,
        4_150,
        3,
        4_010,
        RaftEvent::VoteGranted {
            candidate: 2,
            term: 2,
            pre_vote: true,
            round: 1,
        },
    );
    let texts = feed_texts(&s);
    assert!(
        !texts.iter().any(|t| t.contains("granted by")),
        "no round but the first was granted: {texts:#?}"
    );
    let at = |t: &str| {
        texts
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("no line {t:?} in {texts:#?}"))
    };
    assert!(
        at("deliver 2->3 pre-vote n2 term 2 last 1/1") < at("n3 pre-votes for n2 in term 2"),
        "the grant is its own line after the delivery that caused it: {texts:#?}"
    );
    // A grant of the newest round joins its line, as before.
    raft_at(
        &mut s,
        4_300,
        1,
        4_200,
        RaftEvent::VoteGranted {
            candidate: 2,
            term: 2,
            pre_vote: true,
            round: 2,
        },
    );
    let texts = feed_texts(&s);
    assert!(
        texts.contains(&"n2 asks for pre-votes for term 2 — granted by n1"),
        "{texts:#?}"
    );
}

#[test]
fn feed_lines_take_the_time_they_happened_on_the_node_and_go_in_time_order() {
    let mut s = started(3);
    // Both nodes started 10 ms into the session: their statuses say so (uptime 990 ms at 1000 ms).
    for node in [1, 2] {
        let mut status = status(node, Role::Follower, 0, 0);
        status.uptime_ms = 990;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    let seen = s.feed_total();
    // n2 is polled first, though n1 asked for the pre-vote before n2 granted it.
    let pre_vote = |candidate| RaftEvent::VoteGranted {
        candidate,
        term: 1,
        pre_vote: true,
        round: 0,
    };
    raft_at(&mut s, 1_150, 2, 1_095, pre_vote(1));
    raft_at(
        &mut s,
        1_250,
        1,
        1_090,
        RaftEvent::ElectionStarted {
            term: 1,
            pre_vote: true,
            round: 0,
        },
    );
    // The feed has the request at the time it was made, with the vote on its line.
    let last = s.feed.back().expect("a line");
    assert_eq!(
        (last.at_ms, last.text.as_str()),
        (1_100, "n1 asks for pre-votes for term 1 — granted by n2")
    );
    // A console gets each event with the time it happened, a vote after the request it answers (it waited
    // for it: F13).
    let new: Vec<(u64, &str)> = s
        .feed_since(seen)
        .map(|l| (l.at_ms, l.text.as_str()))
        .collect();
    assert_eq!(
        new,
        [
            (1_100, "n1 asks for pre-votes for term 1"),
            (1_105, "n2 pre-votes for n1 in term 1"),
        ]
    );
    assert!(s.feed_since(s.feed_total()).next().is_none());

    // A restarted process has a clock of its own: until its first status, its records keep their arrival.
    s.apply(&Stamped::new(
        2_000,
        Event::Process {
            node: 1,
            state: ProcessState::Running { pid: 7777 },
        },
    ));
    raft_at(
        &mut s,
        2_100,
        1,
        40,
        RaftEvent::ElectionStarted {
            term: 2,
            pre_vote: true,
            round: 0,
        },
    );
    let last = s.feed.back().unwrap();
    assert_eq!(
        (last.at_ms, last.text.as_str()),
        (2_100, "n1 asks for pre-votes for term 2")
    );
}

#[test]
fn a_new_term_is_credited_to_the_candidate_that_started_it_not_to_whoever_reports_first() {
    let mut s = started(3);
    for node in [1, 2, 3] {
        let mut status = status(node, Role::Follower, 0, 0);
        status.uptime_ms = 1_000;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    // A voter and the old leader report the new term before the candidate's feed is read.
    raft_at(&mut s, 1_300, 2, 1_210, RaftEvent::TermChanged { term: 1 });
    raft_at(&mut s, 1_320, 1, 1_215, RaftEvent::TermChanged { term: 1 });
    raft_at(&mut s, 1_350, 3, 1_200, RaftEvent::TermChanged { term: 1 });
    raft_at(
        &mut s,
        1_350,
        3,
        1_200,
        RaftEvent::ElectionStarted {
            term: 1,
            pre_vote: false,
            round: 0,
        },
    );
    assert_eq!(s.term, 1);
    let about_term: Vec<(u64, &str)> = s
        .feed
        .iter()
        .filter(|l| l.text.contains("term 1"))
        .map(|l| (l.at_ms, l.text.as_str()))
        .collect();
    assert_eq!(about_term, [(1_200, "n3 starts an election in term 1")]);
}

#[test]
fn votes_join_the_request_they_answer_whichever_arrives_first() {
    let mut s = started(3);
    for node in [1, 2, 3] {
        let mut status = status(node, Role::Follower, 0, 0);
        status.uptime_ms = 1_000;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    let ballot = |pre_vote| RaftEvent::VoteGranted {
        candidate: 1,
        term: 1,
        pre_vote,
        round: 0,
    };
    let asks = |pre_vote| RaftEvent::ElectionStarted {
        term: 1,
        pre_vote,
        round: 0,
    };
    // n2's pre-vote arrives before n1's request; n3's after it.
    raft_at(&mut s, 1_300, 2, 1_199, ballot(true));
    raft_at(&mut s, 1_310, 1, 1_200, asks(true));
    raft_at(&mut s, 1_320, 3, 1_198, ballot(true));
    // The election proper: n1 asks, n3 and n2 vote.
    raft_at(&mut s, 1_330, 1, 1_240, asks(false));
    raft_at(&mut s, 1_340, 3, 1_250, ballot(false));
    raft_at(&mut s, 1_350, 2, 1_251, ballot(false));
    let lines: Vec<(u64, &str)> = s
        .feed
        .iter()
        .filter(|l| matches!(l.kind, FeedKind::Vote | FeedKind::Election))
        .map(|l| (l.at_ms, l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (1_199, "n1 asks for pre-votes for term 1 — granted by n2 n3"),
            (1_240, "n1 starts an election in term 1 — votes from n2 n3"),
        ]
    );
    let request = s
        .feed
        .iter()
        .find(|l| l.text.starts_with("n1 starts"))
        .unwrap();
    assert_eq!(request.votes, [2, 3]);
}

#[test]
fn operator_actions_are_never_folded_and_nothing_folds_across_another_line() {
    let mut s = started(3);
    let fault = |s: &mut ClusterState, at, effect: &str| {
        s.apply(&Stamped::new(
            at,
            Event::Performed {
                command: crate::command::Command::Heal(None),
                node: None,
                effect: effect.into(),
            },
        ))
    };
    let seen = s.feed_total();
    fault(&mut s, 1_000, "heal every network fault");
    fault(&mut s, 1_100, "partition 1,2 | 3 (ring)");
    fault(&mut s, 1_200, "heal every network fault");
    fault(&mut s, 1_300, "heal every network fault");
    let texts: Vec<(&str, u32)> = s
        .feed
        .iter()
        .filter(|l| l.kind == FeedKind::Fault)
        .map(|l| (l.text.as_str(), l.repeats))
        .collect();
    assert_eq!(
        texts,
        [
            ("heal every network fault", 1),
            ("partition 1,2 | 3 (ring)", 1),
            ("heal every network fault", 1),
            ("heal every network fault", 1),
        ]
    );
    // A console prints every one of them too.
    assert_eq!(s.feed_since(seen).count(), 4);

    // A node's repeated line folds only onto the line right before it.
    let pre_vote = || RaftEvent::ElectionStarted {
        term: 5,
        pre_vote: true,
        round: 0,
    };
    raft(&mut s, 2_000, 3, pre_vote());
    raft(&mut s, 2_200, 3, pre_vote());
    assert_eq!(s.feed.back().unwrap().repeats, 2);
    fault(&mut s, 2_300, "isolate node 2");
    raft(&mut s, 2_400, 3, pre_vote());
    let last = s.feed.back().unwrap();
    assert_eq!(
        (last.text.as_str(), last.repeats),
        ("n3 asks for pre-votes for term 5", 1)
    );
}

#[test]
fn entries_superseded_by_a_snapshot_are_not_called_conflicting_and_compactions_fold_into_a_round() {
    use squall_node::raft::types::SnapshotMeta;
    let mut s = started(3);
    let meta = |last_index| SnapshotMeta {
        last_index,
        last_term: 2,
    };
    raft(
        &mut s,
        1_000,
        3,
        RaftEvent::LogTruncated {
            from_index: 425,
            count: 76,
        },
    );
    raft(
        &mut s,
        1_000,
        3,
        RaftEvent::SnapshotInstalled { meta: meta(500) },
    );
    assert_eq!(
        feed_texts(&s).last().copied(),
        Some(
            "n3 installs the leader's snapshot to 500 (term 2), superseding 76 uncommitted entries from index 425"
        )
    );
    assert!(!feed_texts(&s).iter().any(|l| l.contains("conflicting")));
    // A truncation on its own is a conflict with the leader, reported by the node's next status at the latest.
    raft(
        &mut s,
        1_500,
        2,
        RaftEvent::LogTruncated {
            from_index: 10,
            count: 2,
        },
    );
    st(&mut s, 1_600, 2, Role::Follower, 2, 10);
    assert!(
        feed_texts(&s).contains(&"n2 drops 2 conflicting entries from index 10"),
        "{:?}",
        feed_texts(&s)
    );
    // Three nodes compacting within a moment: one line.
    let before = s.feed.len();
    raft(
        &mut s,
        3_000,
        1,
        RaftEvent::SnapshotTaken { meta: meta(1000) },
    );
    raft(
        &mut s,
        3_010,
        2,
        RaftEvent::SnapshotTaken { meta: meta(1001) },
    );
    raft(
        &mut s,
        3_020,
        3,
        RaftEvent::SnapshotTaken { meta: meta(1000) },
    );
    assert_eq!(s.feed.len(), before + 1, "{:?}", feed_texts(&s));
    assert_eq!(
        feed_texts(&s).last().copied(),
        Some("n1 n2 n3 compact their logs into snapshots (to 1000–1001)")
    );
}

#[test]
fn a_broken_raft_invariant_is_a_red_feed_line_and_counted() {
    let mut s = started(3);
    st(&mut s, 10, 1, Role::Leader, 3, 5);
    st(&mut s, 20, 2, Role::Follower, 3, 5);
    assert!(s.invariants.violations().is_empty());
    // A doctored stream: node 2 also claims to lead term 3.
    st(&mut s, 30, 2, Role::Leader, 3, 5);
    assert_eq!(s.invariants.violations().len(), 1);
    let line = s
        .feed
        .iter()
        .find(|l| l.kind == FeedKind::Violation)
        .expect("a violation line");
    assert!(
        line.text
            .contains("INVARIANT BROKEN: election safety violated: n1 and n2 both led term 3"),
        "{}",
        line.text
    );
    // The same stale state polled again is not a second violation.
    st(&mut s, 40, 2, Role::Leader, 3, 5);
    assert_eq!(s.invariants.violations().len(), 1);
}

#[test]
fn a_failed_linearizability_check_shows_its_window_lanes_in_the_feed() {
    use crate::check::diagram::DiagramLine;
    let mut s = started(3);
    s.apply(&Stamped::new(
        100,
        Event::WorkloadKind {
            kind: WorkloadKind::LinKv,
        },
    ));
    assert_eq!(s.workload_kind, WorkloadKind::LinKv);
    let line = |text: &str, culprit| DiagramLine {
        text: text.into(),
        culprit,
    };
    s.apply(&Stamped::new(
        5_000,
        Event::LinChecked {
            verdict: Verdict::Violated,
            report: "linearizability check FAILED: key 2 cannot be linearized".into(),
            window: vec![
                line("key 2: state before the window 7", false),
                line("p3    ├──────┤  write 8", false),
                line("p9       ├──┤  read → 7  ✗ cannot be placed", true),
            ],
        },
    ));
    assert_eq!(s.last_check, Some((5_000, Verdict::Violated)));
    let tail: Vec<(FeedKind, &str)> = s
        .feed
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|l| (l.kind, l.text.as_str()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (
                FeedKind::Violation,
                "linearizability check FAILED: key 2 cannot be linearized"
            ),
            (FeedKind::Check, "key 2: state before the window 7"),
            (FeedKind::Check, "p3    ├──────┤  write 8"),
            (
                FeedKind::Violation,
                "p9       ├──┤  read → 7  ✗ cannot be placed"
            ),
        ]
    );
}

#[test]
fn disk_and_clock_faults_show_in_the_faults_line_and_the_node_until_healed() {
    let mut s = started(3);
    s.apply(&Stamped::new(
        1_000,
        Event::NodeFaults {
            node: 2,
            disk: vec!["stalled".into()],
            clock: Some("+1h ×4".into()),
        },
    ));
    assert_eq!(s.faults, ["n2 disk stalled", "n2 clock +1h ×4"]);
    assert_eq!(s.nodes[&2].clock_fault.as_deref(), Some("+1h ×4"));
    s.apply(&Stamped::new(
        2_000,
        Event::NodeFaults {
            node: 2,
            disk: vec![],
            clock: None,
        },
    ));
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    assert_eq!(s.nodes[&2].clock_fault, None);
}

#[test]
fn precandidates_asking_in_turn_fold_like_one_asking_again() {
    let mut s = started(9);
    let before = s.feed_total();
    let pre_vote = || RaftEvent::ElectionStarted {
        term: 3,
        pre_vote: true,
        round: 0,
    };
    // Two precandidates that cannot win ask in turn, about ten times a second between them.
    for i in 0..20 {
        let node = if i % 2 == 0 { 3 } else { 7 };
        raft(&mut s, 10_000 + i * 100, node, pre_vote());
    }
    let asks: Vec<(&str, u32)> = s
        .feed
        .iter()
        .filter(|l| l.kind == FeedKind::Election)
        .map(|l| (l.text.as_str(), l.repeats))
        .collect();
    assert_eq!(
        asks,
        [
            ("n3 asks for pre-votes for term 3", 10),
            ("n7 asks for pre-votes for term 3", 10)
        ]
    );
    assert_eq!(
        s.feed_total() - before,
        2,
        "a console prints each once: {:?}",
        feed_texts(&s)
    );
    // Any other line between ends the fold: the story after it is told again.
    raft(&mut s, 12_100, 4, RaftEvent::QuorumLost { term: 2 });
    raft(&mut s, 12_200, 3, pre_vote());
    let last = s.feed.back().unwrap();
    assert_eq!(
        (last.text.as_str(), last.repeats),
        ("n3 asks for pre-votes for term 3", 1)
    );
    // A real election is never folded across.
    raft(
        &mut s,
        12_300,
        7,
        RaftEvent::ElectionStarted {
            term: 3,
            pre_vote: false,
            round: 0,
        },
    );
    raft(&mut s, 12_400, 3, pre_vote());
    assert_eq!(s.feed.back().unwrap().repeats, 1);
}

#[test]
fn a_leader_its_own_feed_announced_counts_before_its_status_shows_it() {
    let mut s = started(3);
    for n in 1..=3 {
        let role = if n == 1 { Role::Leader } else { Role::Follower };
        st(&mut s, 100, n, role, 1, 10);
    }
    assert_eq!(s.leadership(), (Some(1), 1));
    // n9's case in the report: n3 wins term 2 and its feed says so, while n1's last status still shows it
    // leading term 1 and n3's status still shows a candidate.
    raft(&mut s, 200, 3, RaftEvent::TermChanged { term: 2 });
    raft(
        &mut s,
        210,
        3,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 2,
        },
    );
    st(&mut s, 220, 3, Role::Candidate, 2, 10);
    assert_eq!(s.leadership(), (Some(3), 2), "n3 leads term 2");
    // The old leader steps down: still n3, never "no leader".
    st(&mut s, 230, 1, Role::Follower, 2, 10);
    assert_eq!(s.leadership(), (Some(3), 2));
    st(&mut s, 240, 3, Role::Leader, 2, 11);
    assert_eq!(s.leadership(), (Some(3), 2));
    // Its feed says it stepped down: no leader until someone says otherwise.
    raft(
        &mut s,
        300,
        3,
        RaftEvent::RoleChanged {
            role: Role::Follower,
            term: 3,
        },
    );
    st(&mut s, 310, 3, Role::Follower, 3, 11);
    assert_eq!(s.leadership(), (None, 3));
    // A leader that dies is not the leader, whatever its feed said.
    raft(
        &mut s,
        400,
        2,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 3,
        },
    );
    assert_eq!(s.leadership(), (Some(2), 3));
    s.apply(&Stamped::new(
        410,
        Event::Process {
            node: 2,
            state: ProcessState::Killed { pid: 1002 },
        },
    ));
    assert_eq!(s.leadership(), (None, 3));
}

#[test]
fn the_latency_chart_marks_faults_not_every_action() {
    // Issue 19: every action (a heal, `workload on`, a restart) was drawn as a red fault line.
    let mut s = ClusterState::new();
    for (at, line) in [
        (1_000, "workload on"),
        (2_000, "kill leader"),
        (3_000, "restart 2"),
        (4_000, "isolate 3"),
        (5_000, "heal"),
        (6_000, "delay 2 0"),
    ] {
        s.apply(&Stamped::new(
            at,
            Event::Performed {
                command: crate::command::parse(line).expect("a console line"),
                node: None,
                effect: String::new(),
            },
        ));
    }
    assert_eq!(
        s.fault_marks.iter().copied().collect::<Vec<_>>(),
        [2_000, 4_000]
    );
}

#[test]
fn a_leader_that_hands_over_within_a_poll_is_announced_from_its_feed_in_its_place() {
    // Issue 19: n4 wins term 3 and removes itself a few ms later (it held its own removal, uncommitted, from
    // an earlier leadership): no status poll ever shows it leading, and the next leader's status (term 4)
    // arrived before n4's feed records. The feed said nothing of term 3.
    let mut s = started(5);
    st(&mut s, 1000, 1, Role::Leader, 2, 10);
    for n in 2..=5 {
        st(&mut s, 1000, n, Role::Follower, 2, 10);
    }
    st(&mut s, 1200, 2, Role::Leader, 4, 12);
    // n4's own clock started with its status at 1000: its records at 100-104 ms happened at 1100-1104.
    for (ms, event) in [
        (
            100,
            RaftEvent::ElectionStarted {
                term: 3,
                pre_vote: false,
                round: 0,
            },
        ),
        (
            101,
            RaftEvent::RoleChanged {
                role: Role::Leader,
                term: 3,
            },
        ),
        (102, RaftEvent::Removed { index: 11 }),
        (103, RaftEvent::TransferStarted { target: 2, term: 3 }),
        (
            104,
            RaftEvent::RoleChanged {
                role: Role::Follower,
                term: 3,
            },
        ),
    ] {
        raft_at(&mut s, 1250, 4, ms, event);
    }
    let texts = feed_texts(&s);
    let at = |needle: &str| {
        texts
            .iter()
            .position(|t| t.starts_with(needle))
            .unwrap_or_else(|| panic!("no line {needle:?} in the feed: {texts:#?}"))
    };
    assert!(
        at("n4 leads term 3") < at("n4 hands leadership to n2")
            && at("n4 hands leadership to n2") < at("n2 leads term 4"),
        "{texts:#?}"
    );
    assert_eq!(
        at("n4 leads term 3"),
        at("n4 starts an election in term 3") + 1
    );
    // Announced once per term: a stale status of the old leader never brings term 2 (or 3) back.
    st(&mut s, 1300, 1, Role::Leader, 2, 10);
    raft_at(
        &mut s,
        1310,
        4,
        101,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 3,
        },
    );
    let leads: Vec<&str> = feed_texts(&s)
        .into_iter()
        .filter(|t| t.contains(" leads term "))
        .collect();
    assert_eq!(
        leads,
        ["n1 leads term 2", "n4 leads term 3", "n2 leads term 4"],
        "{:#?}",
        feed_texts(&s)
    );
}

/// tester-report-1 C1: a node that may have lost acknowledged data and does not vote says so in `status`
/// and in the feed, and says so again when it recovered.
#[test]
fn a_recovering_node_shows_as_recovering_in_status_and_the_feed() {
    let mut s = started(3);
    st(&mut s, 100, 3, Role::Follower, 2, 5);
    let mut recovering = status(3, Role::Follower, 0, 0);
    recovering.recovering = true;
    s.apply(&Stamped::new(
        200,
        Event::Status {
            node: 3,
            status: recovering,
        },
    ));
    let line = crate::state::describe_node(&s.nodes[&3]);
    assert!(line.contains(" recovering term 0 "), "{line}");
    assert!(
        feed_texts(&s)
            .iter()
            .any(|t| t.starts_with("n3 is recovering: it may have lost data it acknowledged")),
        "{:?}",
        feed_texts(&s)
    );
    st(&mut s, 300, 3, Role::Follower, 2, 5);
    let line = crate::state::describe_node(&s.nodes[&3]);
    assert!(line.contains(" follower term 2 "), "{line}");
    assert_eq!(
        feed_texts(&s).last().copied(),
        Some("n3 recovered; it votes again"),
        "a status that does not say how it recovered claims no way"
    );
}

/// Safety round 4: the feed says which way a node recovered (a leader caught it up, or every other member
/// vouched for its log), and a recovery finished between two polls (a wiped node whose first poll already
/// shows it recovered) still reaches the feed, once. Seen failing: every recovery was "a leader caught it
/// up", and the one between polls was never told.
#[test]
fn the_feed_says_how_a_node_recovered_even_when_no_poll_saw_it_recovering() {
    use squall_node::raft::{Recovered, RecoveredBy};
    let mut s = started(3);
    st(&mut s, 100, 3, Role::Follower, 2, 5);
    let mut recovering = status(3, Role::Follower, 0, 0);
    recovering.recovering = true;
    s.apply(&Stamped::new(
        200,
        Event::Status {
            node: 3,
            status: recovering.clone(),
        },
    ));
    let mut vouched = status(3, Role::Follower, 2, 5);
    vouched.recovered = Some(Recovered {
        count: 1,
        by: RecoveredBy::Vouched { term: 2 },
    });
    s.apply(&Stamped::new(
        300,
        Event::Status {
            node: 3,
            status: vouched.clone(),
        },
    ));
    let told = |s: &ClusterState| -> Vec<String> {
        feed_texts(s)
            .iter()
            .filter(|t| t.starts_with("n3 recovered"))
            .map(|t| t.to_string())
            .collect()
    };
    assert_eq!(
        told(&s),
        [
            "n3 recovered: every other member vouched that its log holds everything committed (no leader was \
          needed); it votes again"
        ]
    );
    // The same status again: nothing new to tell.
    s.apply(&Stamped::new(
        400,
        Event::Status {
            node: 3,
            status: vouched,
        },
    ));
    assert_eq!(told(&s).len(), 1, "{:?}", told(&s));

    // Wiped again: a new process that recovered, by a leader this time, before its first poll.
    let mut between = status(3, Role::Follower, 4, 9);
    between.pid += 1;
    between.recovered = Some(Recovered {
        count: 1,
        by: RecoveredBy::Leader { leader: 1, term: 4 },
    });
    s.apply(&Stamped::new(
        500,
        Event::Status {
            node: 3,
            status: between,
        },
    ));
    assert_eq!(
        told(&s).last().map(String::as_str),
        Some("n3 recovered: leader n1 caught it up in term 4; it votes again"),
        "{:?}",
        feed_texts(&s)
    );
}

/// Issue 18: what a recovering node waits for is in its status line and, each time it changes, in the feed.
#[test]
fn a_recovering_node_says_what_it_waits_for_in_status_and_the_feed() {
    use squall_node::raft::RecoveryWait;
    let mut s = started(5);
    let mut recovering = status(2, Role::Follower, 0, 0);
    recovering.recovering = true;
    recovering.recovery_wait = Some(RecoveryWait::Terms { voters: vec![5] });
    for at in [100, 200] {
        s.apply(&Stamped::new(
            at,
            Event::Status {
                node: 2,
                status: recovering.clone(),
            },
        ));
    }
    let line = crate::state::describe_node(&s.nodes[&2]);
    assert!(
        line.ends_with(" recovering: waiting for n5's term"),
        "{line}"
    );
    let said = |s: &ClusterState, text: &str| feed_texts(s).iter().filter(|t| **t == text).count();
    assert_eq!(
        said(&s, "n2 recovering: waiting for n5's term"),
        1,
        "said once while it does not change: {:?}",
        feed_texts(&s)
    );
    recovering.recovery_wait = Some(RecoveryWait::Leader { term: 3 });
    s.apply(&Stamped::new(
        300,
        Event::Status {
            node: 2,
            status: recovering,
        },
    ));
    assert_eq!(
        feed_texts(&s).last().copied(),
        Some("n2 recovering: waiting for a leader of term 3 or later to catch it up")
    );
    assert_eq!(
        RecoveryWait::Terms {
            voters: vec![3, 4, 5]
        }
        .to_string(),
        "waiting for n3's, n4's and n5's terms"
    );
}

/// tester-report-1 C5: a node that cut a damaged complete WAL record on start says "damaged", not "torn"
/// (a damaged record may have been acknowledged; a torn final write never was).
#[test]
fn a_cut_damaged_record_is_called_damaged_and_a_torn_write_torn() {
    use squall_node::rpc::{EventRecord, NodeEvent};
    let mut s = started(3);
    for (at, damaged_tail) in [(100, true), (200, false)] {
        s.apply(&Stamped::new(
            at,
            Event::NodeFeed {
                node: 3,
                record: EventRecord {
                    seq: 0,
                    at_ms: at,
                    event: NodeEvent::Started {
                        term: 2,
                        last_index: 40,
                        snapshot_index: 0,
                        empty: false,
                        truncated_tail_bytes: 117,
                        damaged_tail,
                    },
                },
            },
        ));
    }
    let texts = feed_texts(&s);
    assert!(
        texts.contains(&"n3 started: term 2, log to 40, snapshot 0, cut 117 damaged WAL bytes"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"n3 started: term 2, log to 40, snapshot 0, cut 117 torn WAL bytes"),
        "{texts:?}"
    );
}

#[test]
fn the_summary_pairs_the_leader_with_its_own_term_not_the_highest_seen() {
    // teach2 item 3: the console's summary line said `leader 1 term 4` while n1 led term 1 and only n3, cut
    // off and campaigning, had reached term 4.
    let mut s = started(3);
    st(&mut s, 100, 1, Role::Leader, 1, 10);
    st(&mut s, 100, 2, Role::Follower, 1, 10);
    st(&mut s, 200, 3, Role::PreCandidate, 4, 9);
    assert_eq!(s.term, 4, "the highest term seen");
    assert_eq!(s.leadership(), (Some(1), 1), "n1 leads its own term 1");
    // A leader its feed announced is paired with the term it announced.
    raft(
        &mut s,
        300,
        2,
        RaftEvent::RoleChanged {
            role: Role::Leader,
            term: 3,
        },
    );
    assert_eq!(s.leadership(), (Some(2), 3));
}

#[test]
fn no_fold_of_repeated_lines_crosses_a_heal_whatever_the_arrival_order() {
    // teach2 item 4: the ×N fold of a repeated line must never count repeats from both sides of a heal.
    // Seeded: node lines arrive up to 400 ms after they happened (a node is polled every 100 ms or so, and
    // its clock maps its records a little early or late), in arrival order, as the session applies them.
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("FOLD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("seeds {seed}..{} (FOLD_SEED=N replays from N)", seed + 300);
    for seed in seed..seed + 300 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut s = started(5);
        for node in 1..=5 {
            let mut st = status(node, Role::Follower, 1, 1);
            st.uptime_ms = 1_000;
            s.apply(&Stamped::new(1_000, Event::Status { node, status: st }));
        }
        // (arrival, happened, node) of each pre-vote round of the cut-off nodes 2 and 3, and the heal.
        let mut lines: Vec<(u64, u64, u64)> = Vec::new();
        for node in [2, 3] {
            let mut t = 2_000 + rng.random_range(0..300);
            while t < 12_000 {
                lines.push((t + rng.random_range(0..400), t, node));
                t += rng.random_range(150..600);
            }
        }
        let heal_at = rng.random_range(4_000..10_000);
        lines.push((heal_at, heal_at, 0));
        lines.sort();
        for (arrival, happened, node) in lines {
            if node == 0 {
                s.apply(&Stamped::new(
                    arrival,
                    Event::Performed {
                        command: crate::command::parse("heal").unwrap(),
                        node: None,
                        effect: "heal every network fault".into(),
                    },
                ));
            } else {
                raft_at(
                    &mut s,
                    arrival,
                    node,
                    happened,
                    RaftEvent::ElectionStarted {
                        term: 2,
                        pre_vote: true,
                        round: 0,
                    },
                );
            }
        }
        let heal = s
            .feed
            .iter()
            .position(|l| l.kind == FeedKind::Fault)
            .expect("the heal's line");
        let h = s.feed[heal].at_ms;
        let shown: Vec<(u64, u64, &str, u32)> = s
            .feed
            .iter()
            .map(|l| (l.at_ms, l.last_ms, l.text.as_str(), l.repeats))
            .collect();
        for (i, l) in s.feed.iter().enumerate() {
            assert!(
                i > heal || l.last_ms <= h,
                "seed {seed}: a line above the heal at {h} counts a repeat after it: {shown:#?}"
            );
            assert!(
                i < heal || l.at_ms >= h,
                "seed {seed}: a line below the heal at {h} started before it: {shown:#?}"
            );
        }
    }
}

/// Issue 23: the lock clients' faults show in the faults line: an armed pause until it strikes, the pause
/// while it runs, a slowed client until `heal`.
#[test]
fn client_faults_show_in_the_faults_line_until_they_end() {
    use crate::check::lock::LockEvent;
    use crate::command::Command;
    use std::time::Duration;
    let mut s = started(3);
    let performed = |at: u64, command: Command| {
        Stamped::new(
            at,
            Event::Performed {
                command,
                node: None,
                effect: String::new(),
            },
        )
    };
    s.apply(&performed(
        1_000,
        Command::PauseClient(1, Duration::from_secs(3)),
    ));
    s.apply(&performed(
        1_100,
        Command::SlowClient(2, Duration::from_millis(50)),
    ));
    assert_eq!(s.faults, ["client 1 pause 3s armed", "client 2 slow +50ms"]);
    s.apply(&Stamped::new(
        1_500,
        Event::Lock {
            record: LockEvent::PauseStruck {
                client: 1,
                token: 4,
                pause_ms: 3_000,
                at_ms: 1_500,
            },
        },
    ));
    assert_eq!(s.faults, ["client 1 paused", "client 2 slow +50ms"]);
    s.apply(&performed(2_000, Command::Heal(None)));
    assert_eq!(
        s.faults,
        ["client 1 paused"],
        "a pause under way runs its course"
    );
    s.apply(&Stamped::new(4_600, Event::Links { links: vec![] }));
    assert!(s.faults.is_empty(), "{:?}", s.faults);
}

/// F13: the headless console printed `n2 votes for n3 in term 5` above `n3 starts an election in term 5`: the
/// voter was polled first and its clock put the vote a moment before the candidate's report. The console's
/// lines (ticker, then hold-back) put the request first, the vote no earlier in time.
#[test]
fn a_console_prints_a_vote_after_the_election_it_answers() {
    let mut s = started(3);
    for node in [2, 3] {
        let mut status = status(node, Role::Follower, 4, 4);
        status.uptime_ms = 990;
        s.apply(&Stamped::new(1_000, Event::Status { node, status }));
    }
    let seen = s.feed_total();
    let vote = RaftEvent::VoteGranted {
        candidate: 3,
        term: 5,
        pre_vote: false,
        round: 1,
    };
    let asks = RaftEvent::ElectionStarted {
        term: 5,
        pre_vote: false,
        round: 1,
    };
    // n2's vote arrives first and its clock places it 2 ms before n3's own report of the election.
    raft_at(&mut s, 1_150, 2, 1_095, vote);
    assert!(
        s.feed_since(seen).next().is_none(),
        "the vote waits for its election"
    );
    raft_at(&mut s, 1_250, 3, 1_097, asks);
    let mut held = crate::state::HoldBack::new(300);
    for l in s.feed_since(seen) {
        held.push(l.at_ms, 1_250, l.text.clone());
    }
    let printed: Vec<String> = held.drain().into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        printed,
        [
            "n3 starts an election in term 5",
            "n2 votes for n3 in term 5"
        ],
        "{printed:#?}"
    );

    // A vote whose election is never reported goes out on its own once later lines show it waited long.
    let seen = s.feed_total();
    raft_at(
        &mut s,
        3_000,
        2,
        2_990,
        RaftEvent::VoteGranted {
            candidate: 1,
            term: 6,
            pre_vote: false,
            round: 1,
        },
    );
    raft_at(
        &mut s,
        6_000,
        3,
        5_990,
        RaftEvent::ElectionStarted {
            term: 7,
            pre_vote: true,
            round: 1,
        },
    );
    let texts: Vec<&str> = s.feed_since(seen).map(|l| l.text.as_str()).collect();
    assert!(texts.contains(&"n2 votes for n1 in term 6"), "{texts:#?}");
}
