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
