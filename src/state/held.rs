//! The held queue as a person reads it: which held frame the next `step` delivers, and which are stale: a newer
//! round from the same sender on the same link superseded them (delivering them shows nothing but an answer
//! the sender no longer waits for), or their receiver has moved past their term and will refuse or ignore
//! them (Raft §5.1: a request with a stale term is rejected, a reply with one is dropped).
//!
//! Multi-Paxos frames (squall's node run with `--protocol paxos`, described by `kind::paxos_classify` as
//! `prepare n2 ballot 3.2 from slot 5`) are judged the same way by their ballot: a proposer's prepare or
//! accept is superseded once the same link carries a later frame of a higher ballot from it (it moved on, and
//! answers to the old ballot are ignored), a prepare or heartbeat by a later one of the same or a higher
//! ballot; an acceptor's answer by a later answer of a higher ballot. A request below its receiver's promise is
//! refused (nack), an answer below its receiver's ballot ignored (Lamport, "Paxos Made Simple" §2.2–2.3; the
//! core's handlers in `squall_node::paxos`).

use std::collections::{BTreeMap, BTreeSet};

use squall_node::paxos::Ballot;
use squall_node::raft::types::Role;

use super::HeldView;

/// Where a frame stands among its sender's rounds on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Round {
    /// Frames of one class on one link supersede each other.
    class: &'static str,
    /// Later rounds compare greater: a Raft frame's (term, step), where a pre-vote round of term T comes
    /// before the election of term T; a Paxos frame's (packed ballot, step), where a prepare comes before
    /// the accepts and heartbeats of its ballot.
    at: (u64, u8),
    /// A later frame of the class at the same place supersedes it too (it only repeats: a heartbeat, a vote
    /// request, a prepare); otherwise only a later place does (it carries something of its own: a reply, an
    /// accept's values).
    repeats: bool,
}

/// The round a frame belongs to. `None` for frames that are never superseded (entries, snapshot chunks,
/// catch-up, their replies, anything not understood): they carry data.
fn round(frame: &HeldView) -> Option<Round> {
    let first = frame.detail.split_whitespace().next()?;
    let (level, paxos) = level(&frame.detail)?;
    let (class, step, repeats) = match (first, paxos) {
        ("pre-vote", false) => ("vote", 0, true),
        ("vote", false) => ("vote", 1, true),
        ("pre-vote-reply", false) => ("vote-reply", 0, false),
        ("vote-reply", false) => ("vote-reply", 1, false),
        ("heartbeat", false) => ("heartbeat", 0, true),
        ("prepare", true) => ("proposer", 0, true),
        ("accept", true) => ("proposer", 1, false),
        ("heartbeat", true) => ("proposer", 1, true),
        ("promise" | "nack", true) => ("acceptor", 0, false),
        // A heartbeat's answer (no slots) says only that the acceptor is there.
        ("accepted", true) => ("acceptor", 0, frame.detail.contains(HEARTBEAT_ANSWER)),
        _ => return None,
    };
    Some(Round {
        class,
        at: (level, step),
        repeats,
    })
}

/// How a Paxos `accepted` that answers a heartbeat (it names no slot) reads in a held frame's detail.
pub const HEARTBEAT_ANSWER: &str = "(heartbeat answer)";

/// The term a Raft frame carries (`… term 3 …`), or the highest ballot a Paxos frame's messages carry
/// (`… ballot 3.2 …`, packed so it orders as ballots do), with whether it is a ballot. `None` when the frame
/// names neither.
fn level(detail: &str) -> Option<(u64, bool)> {
    let words: Vec<&str> = detail.split_whitespace().collect();
    if let Some(term) = after(&words, "term").find_map(|t| t.parse().ok()) {
        return Some((term, false));
    }
    after(&words, "ballot")
        .filter_map(parse_ballot)
        .map(Ballot::pack)
        .max()
        .map(|b| (b, true))
}

/// The word after each `key` among `words`, without a trailing `,` or `;`.
fn after<'a>(words: &'a [&'a str], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    words
        .windows(2)
        .filter(move |w| w[0] == key)
        .map(|w| w[1].trim_end_matches([',', ';']))
}

/// `3.2` as ballot round 3 of proposer 2.
fn parse_ballot(text: &str) -> Option<Ballot> {
    let (round, proposer) = text.split_once('.')?;
    Some(Ballot {
        round: round.parse().ok()?,
        proposer: proposer.parse().ok()?,
    })
}

/// Why `frame`'s receiver will refuse (a request) or ignore (a reply) it, judged from the receiver's term as
/// last seen (`terms`, by node; a Paxos node's is its promise, packed): `n2 refuses it as stale: n2 is already
/// in term 2`. A request or reply of a term below the receiver's is stale (Raft §5.1); a pre-vote must ask for
/// a term above the receiver's, and a granted pre-vote answer counts only while its receiver has not reached
/// that term (Raft dissertation §9.6). A Paxos request below the receiver's promise is refused with a nack, an
/// answer below the ballot its receiver now holds is ignored. `None` when the frame names no term or ballot,
/// the receiver's is not known, or nothing makes it stale.
pub fn refusal(frame: &HeldView, terms: &BTreeMap<u64, u64>) -> Option<String> {
    let theirs = *terms.get(&frame.to)?;
    let first = frame.detail.split_whitespace().next()?;
    let (level, paxos) = level(&frame.detail)?;
    let verb = |reply: bool| if reply { "ignores" } else { "refuses" };
    if paxos {
        let reply = matches!(first, "promise" | "accepted" | "nack");
        if !matches!(first, "prepare" | "accept" | "heartbeat") && !reply {
            return None;
        }
        return (level < theirs).then(|| {
            format!(
                "n{} {} it: stale ballot {} < {} {}",
                frame.to,
                verb(reply),
                Ballot::unpack(level),
                if reply { "its ballot" } else { "promise" },
                Ballot::unpack(theirs)
            )
        });
    }
    let reply = first.ends_with("-reply");
    let at_most = match first {
        "pre-vote" => true,
        "pre-vote-reply" => frame.detail.ends_with(" granted"),
        _ => false,
    };
    let stale = if at_most {
        level <= theirs
    } else {
        level < theirs
    };
    stale.then(|| {
        let to = frame.to;
        // In words (a tester, issue 20: `stale term 2 ≤ 2` read wrong): why the receiver will not take it.
        let rule = if first == "pre-vote" && level == theirs {
            ", and a pre-vote must ask for a later term"
        } else {
            ""
        };
        let verb = verb(reply);
        format!("n{to} {verb} it as stale: n{to} is already in term {theirs}{rule}")
    })
}

/// Why a vote or pre-vote answer delivered to `frame.to`, whose term is `term` and role `role`, counts for
/// nothing although it is not stale ([`refusal`] judges terms): its candidate already won, or moved on. A
/// vote answer counts only while its receiver is a candidate in the answer's term; a granted pre-vote answer
/// (it carries the term asked for) only while its receiver asks for pre-votes for the term after its own.
/// `surplus: n3 already leads term 2`. `None` for other frames and for answers that still count.
pub fn surplus(frame: &HeldView, term: u64, role: Role) -> Option<String> {
    let to = frame.to;
    let (asked, paxos) = level(&frame.detail)?;
    if paxos {
        return None;
    }
    match frame.detail.split_whitespace().next()? {
        "vote-reply" if asked == term => match role {
            Role::Candidate => None,
            Role::Leader => Some(format!("surplus: n{to} already leads term {term}")),
            Role::Follower | Role::PreCandidate => Some(format!(
                "surplus: n{to} is no longer a candidate in term {term}"
            )),
        },
        "pre-vote-reply" if frame.detail.ends_with(" granted") => {
            if asked == term && matches!(role, Role::Candidate | Role::Leader) {
                Some(format!(
                    "surplus: n{to} already won its pre-vote for term {term}"
                ))
            } else if asked == term + 1 && role != Role::PreCandidate {
                Some(format!("surplus: n{to} is no longer asking for pre-votes"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Why a superseded frame (one [`stale`] finds a newer round of on its link) is stale, in words:
/// `stale: a newer round of n2's pre-vote is held`. `None` for frames that are never superseded.
pub fn superseded_note(frame: &HeldView) -> Option<String> {
    let from = frame.from;
    let what = match frame.detail.split_whitespace().next()? {
        "pre-vote" => format!("a newer round of n{from}'s pre-vote is held"),
        "vote" => format!("a newer round of n{from}'s vote request is held"),
        "heartbeat" => format!("a newer heartbeat of n{from} is held"),
        "pre-vote-reply" | "vote-reply" => format!("n{from}'s answer to a newer round is held"),
        _ => return None,
    };
    Some(format!("stale: {what}"))
}

/// The `seq`s of the stale frames among `frames`: one for which the same link holds a later frame of its
/// class that supersedes it (its `Round`: a vote request or pre-vote by a later request of the same or a later
/// round, as repeated pre-vote rounds ask for the same term; a vote reply by one of a later round; a heartbeat
/// by a later heartbeat of the same or a later term; Paxos's as the module docs say), and any frame its
/// receiver will refuse or ignore ([`refusal`], from the receivers' `terms`).
pub fn stale(frames: &[HeldView], terms: &BTreeMap<u64, u64>) -> BTreeSet<u64> {
    let mut out: BTreeSet<u64> = frames
        .iter()
        .filter(|f| refusal(f, terms).is_some())
        .map(|f| f.seq)
        .collect();
    for a in frames {
        let Some(ra) = round(a) else {
            continue;
        };
        let superseded = frames.iter().any(|b| {
            b.from == a.from
                && b.to == a.to
                && b.seq > a.seq
                && round(b).is_some_and(|rb| {
                    // A heartbeat, a vote request or a prepare repeated at the same place says nothing the
                    // newer one does not: a pre-vote does not raise the term, so a candidate's successive
                    // pre-vote rounds all ask for the same term (Raft dissertation §9.6), and only the last
                    // one matters. A reply answers its own request, so only a later round supersedes it.
                    rb.class == ra.class
                        && if ra.repeats {
                            rb.at >= ra.at
                        } else {
                            rb.at > ra.at
                        }
                })
        });
        if superseded {
            out.insert(a.seq);
        }
    }
    out
}

/// The frame the next `step *` delivers: the oldest held, the first of `frames` (every list of held frames is
/// oldest first). Not the lowest `seq`: on other hosts each host numbers its own frames, so seqs are not in
/// arrival order across hosts (tester 7's finding 4: `← next` on a frame `step` did not take).
pub fn next_to_step(frames: &[HeldView]) -> Option<u64> {
    frames.first().map(|f| f.seq)
}

/// One line of the held list: `seq link kind detail`, with `← next` on the frame `step *` delivers next and
/// `(stale)` on superseded and refused ones.
pub fn held_line(frame: &HeldView, next: Option<u64>, stale: &BTreeSet<u64>) -> String {
    let kind = frame.kind.as_deref().unwrap_or("other");
    // The detail starts with the kind for most frames (`vote n2 …`); do not say it twice.
    let detail = if frame.detail.starts_with(kind) {
        frame.detail.clone()
    } else {
        format!("{kind} {}", frame.detail)
    };
    format!(
        "{} {}->{} {detail}{}{}",
        frame.seq,
        frame.from,
        frame.to,
        if stale.contains(&frame.seq) {
            " (stale)"
        } else {
            ""
        },
        if next == Some(frame.seq) {
            " ← next"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use squall_node::paxos::Ballot;

    use super::*;

    /// Held frames written as `held` lists them, one a line: `SEQ FROM->TO DETAIL`, the kind being the
    /// detail's first word.
    fn frames(listing: &str) -> Vec<HeldView> {
        listing
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut words = l.splitn(3, ' ');
                let seq = words.next().and_then(|w| w.parse().ok()).expect("a seq");
                let (from, to) = words
                    .next()
                    .and_then(|w| w.split_once("->"))
                    .expect("a link");
                let detail = words.next().expect("a detail").to_string();
                HeldView {
                    seq,
                    from: from.parse().expect("a sender"),
                    to: to.parse().expect("a receiver"),
                    kind: detail.split_whitespace().next().map(str::to_string),
                    detail,
                }
            })
            .collect()
    }

    fn f(line: &str) -> HeldView {
        frames(line).remove(0)
    }

    fn fv(seq: u64, from: u64, to: u64, kind: &str, detail: &str) -> HeldView {
        HeldView {
            seq,
            from,
            to,
            kind: Some(kind.into()),
            detail: detail.into(),
        }
    }

    #[test]
    fn an_older_round_on_the_same_link_is_stale_and_nothing_else_is() {
        let frames = frames(
            "1 2->3 pre-vote n2 term 2 last 1/1
             2 2->4 pre-vote n2 term 2 last 1/1
             3 2->3 pre-vote n2 term 3 last 1/1
             4 2->3 vote n2 term 3 last 1/1
             5 3->2 pre-vote-reply n3 term 2 granted
             6 1->3 heartbeat n1 term 1 prev 4/1 commit 4
             7 1->3 heartbeat n1 term 1 prev 4/1 commit 4
             8 1->3 append 5..5 n1 term 1 prev 4/1 commit 4
             9 1->3 append 6..6 n1 term 1 prev 5/1 commit 4",
        );
        // 1: pre-vote 2 then pre-vote 3 on 2->3; 3: pre-vote 3 then the election of 3; 6: a newer heartbeat.
        // 2 is the only frame on 2->4; 5 is the only reply; appends carry entries and are never stale.
        assert_eq!(stale(&frames, &BTreeMap::new()), BTreeSet::from([1, 3, 6]));
        assert_eq!(next_to_step(&frames), Some(1));
    }

    /// Tester 7's finding 4: on other hosts the list is oldest first but its seqs are each host's own numbers
    /// made unique (`7` from one host held before `5` from another): `← next` is on the first line, the
    /// frame `step *` takes.
    #[test]
    fn the_next_frame_is_the_oldest_listed_not_the_lowest_seq() {
        let frames = vec![
            fv(
                7,
                2,
                3,
                "heartbeat",
                "heartbeat n2 term 1 prev 1/1 commit 1",
            ),
            fv(
                5,
                2,
                3,
                "pre-vote-reply",
                "pre-vote-reply n2 term 1 refused",
            ),
            fv(
                8,
                1,
                3,
                "pre-vote-reply",
                "pre-vote-reply n1 term 1 refused",
            ),
        ];
        assert_eq!(next_to_step(&frames), Some(7));
        let lines: Vec<String> = frames
            .iter()
            .map(|f| held_line(f, next_to_step(&frames), &BTreeSet::new()))
            .collect();
        assert!(lines[0].ends_with("← next"), "{lines:?}");
        assert!(!lines[1].contains("next"), "{lines:?}");
        assert_eq!(next_to_step(&[]), None);
    }

    #[test]
    fn repeated_pre_vote_rounds_for_one_term_leave_only_the_last_unstale() {
        // tester5 F8: a candidate cut off under `hold * only pre-vote` repeats its pre-vote round for the same
        // term; none was marked stale, and `drop-stale` found nothing.
        let frames = frames(
            "1 3->2 pre-vote n3 term 2 last 1/1
             2 2->3 pre-vote n2 term 2 last 1/1
             3 3->2 pre-vote n3 term 2 last 1/1
             4 2->3 pre-vote n2 term 2 last 1/1
             5 3->2 pre-vote n3 term 2 last 1/1
             6 2->3 pre-vote-reply n2 term 2 granted
             7 2->3 pre-vote-reply n2 term 2 granted",
        );
        assert_eq!(stale(&frames, &BTreeMap::new()), BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn a_frame_whose_receiver_moved_past_its_term_is_refused_and_stale() {
        // teach2 item 2: a step delivered a heartbeat of term 1 to a node in term 2 and said only `deliver`.
        let terms = BTreeMap::from([(1, 1), (2, 2), (3, 2)]);
        let hb = f("1 1->2 heartbeat n1 term 1 prev 4/1 commit 4");
        assert_eq!(
            refusal(&hb, &terms).as_deref(),
            Some("n2 refuses it as stale: n2 is already in term 2")
        );
        let reply = f("2 2->1 vote-reply n2 term 1 granted");
        assert_eq!(refusal(&reply, &terms), None, "n1 is in term 1 still");
        let reply = f("3 1->3 append-reply n1 term 1 ok match 4");
        assert_eq!(
            refusal(&reply, &terms).as_deref(),
            Some("n3 ignores it as stale: n3 is already in term 2")
        );
        // A pre-vote asks for a term above the receiver's; one for the receiver's own term is refused.
        let pv = f("4 3->2 pre-vote n3 term 2 last 4/1");
        assert_eq!(
            refusal(&pv, &terms).as_deref(),
            Some(
                "n2 refuses it as stale: n2 is already in term 2, and a pre-vote must ask for a later term"
            )
        );
        let pv = f("5 3->2 pre-vote n3 term 3 last 4/1");
        assert_eq!(refusal(&pv, &terms), None);
        // A granted pre-vote answer of term 2 no longer counts once its receiver reached term 2.
        let pvr = f("6 2->3 pre-vote-reply n2 term 2 granted");
        assert!(refusal(&pvr, &terms).is_some());
        // Unknown receivers and frames without a term are never judged.
        assert_eq!(refusal(&f("7 1->9 heartbeat n1 term 1"), &terms), None);
        assert_eq!(refusal(&f("8 1->2 timeout-now ok"), &terms), None);
        let frames = vec![hb, pv.clone(), pvr];
        assert_eq!(stale(&frames, &terms), BTreeSet::from([1, 6]));
    }

    /// Issue 23 (new-user tester): Paxos's held frames were never marked stale, so `drop-stale` found
    /// nothing on a Paxos cluster. Seen failing (an empty set) before frames were judged by their ballots.
    #[test]
    fn a_paxos_proposer_s_older_ballot_is_superseded_and_its_answers_too() {
        let frames = frames(
            "1 1->2 prepare n1 ballot 1.1 from slot 5
             2 1->2 accept n1 ballot 1.1 slots 5..6 chosen 4
             3 1->2 heartbeat n1 ballot 1.1 chosen 4
             4 1->2 accept n1 ballot 1.1 slot 7 chosen 4
             5 1->2 heartbeat n1 ballot 1.1 chosen 6
             6 3->2 prepare n3 ballot 1.3 from slot 5
             7 3->2 prepare n3 ballot 2.3 from slot 5
             8 2->3 promise n2 ballot 1.3 chosen 4 accepted 2
             9 2->3 accepted n2 ballot 2.3 (heartbeat answer) chosen 4
             10 2->3 accepted n2 ballot 2.3 slots 5..6 chosen 4
             11 2->3 accepted n2 ballot 2.3 (heartbeat answer) chosen 4
             12 1->2 catch-up n1 from slot 5",
        );
        // 1: n1's prepare of 1.1 before its accepts of 1.1 (phase 2 began); 2 and 4 carry values at n1's
        // current ballot and are kept; 3: an older heartbeat. 6: n3 moved to 2.3. 8: n2's promise of 1.3 and
        // 9: a heartbeat's answer, both answered again at 2.3 since. 10 carries slots; 12 data.
        assert_eq!(
            stale(&frames, &BTreeMap::new()),
            BTreeSet::from([1, 3, 6, 8, 9])
        );
        // n1's accepts of 1.1 go stale once it sends at a higher ballot.
        let mut moved = frames.clone();
        moved.push(f("13 1->2 prepare n1 ballot 4.1 from slot 5"));
        assert!(
            stale(&moved, &BTreeMap::new()).is_superset(&BTreeSet::from([2, 4, 5])),
            "{:?}",
            stale(&moved, &BTreeMap::new())
        );
    }

    #[test]
    fn a_paxos_frame_below_its_receiver_s_promise_is_refused_or_ignored() {
        let b = |round, proposer| Ballot { round, proposer }.pack();
        let terms = BTreeMap::from([(1, b(1, 1)), (2, b(2, 3)), (3, b(2, 3))]);
        let accept = f("1 1->2 accept n1 ballot 1.1 slot 7 chosen 4");
        assert_eq!(
            refusal(&accept, &terms).as_deref(),
            Some("n2 refuses it: stale ballot 1.1 < promise 2.3")
        );
        let promise = f("2 2->1 promise n2 ballot 1.1 chosen 4 accepted 0");
        assert_eq!(refusal(&promise, &terms), None, "n1 still prepares 1.1");
        let accepted = f("3 2->3 accepted n2 ballot 1.1 slot 7 chosen 4");
        assert_eq!(
            refusal(&accepted, &terms).as_deref(),
            Some("n3 ignores it: stale ballot 1.1 < its ballot 2.3")
        );
        assert_eq!(
            refusal(&f("4 3->2 prepare n3 ballot 2.3 from slot 5"), &terms),
            None
        );
        assert_eq!(refusal(&f("5 1->2 catch-up n1 from slot 5"), &terms), None);
        // A frame carrying several messages counts by its highest ballot.
        let two = f("6 1->2 heartbeat n1 ballot 1.1 chosen 4; heartbeat ballot 3.1 chosen 4");
        assert_eq!(refusal(&two, &terms), None);
    }

    #[test]
    fn a_stale_note_says_in_words_why_the_frame_is_stale() {
        // Tester (issue 20): `stale term 2 ≤ 2` reads wrong; say why the frame is stale in words.
        let terms = BTreeMap::from([(2, 2), (3, 3)]);
        let pvr = fv(
            1,
            3,
            2,
            "pre-vote-reply",
            "pre-vote-reply n3 term 2 granted",
        );
        let why = refusal(&pvr, &terms).expect("n2 is in term 2 already");
        assert_eq!(why, "n2 ignores it as stale: n2 is already in term 2");
        assert!(!why.contains('≤') && !why.contains('<'), "{why}");
        let vote = fv(2, 2, 3, "vote", "vote n2 term 2 last 4/1");
        assert_eq!(
            refusal(&vote, &terms).as_deref(),
            Some("n3 refuses it as stale: n3 is already in term 3")
        );
    }

    #[test]
    fn a_vote_answer_reaching_a_candidate_that_won_or_moved_on_is_surplus() {
        // Tester (issue 20): a vote reply stepped to a candidate that had already won said only `deliver`.
        let reply = fv(1, 4, 3, "vote-reply", "vote-reply n4 term 2 granted");
        assert_eq!(
            surplus(&reply, 2, Role::Leader).as_deref(),
            Some("surplus: n3 already leads term 2")
        );
        assert_eq!(
            surplus(&reply, 2, Role::Follower).as_deref(),
            Some("surplus: n3 is no longer a candidate in term 2")
        );
        // The candidate still counts it; a later term is stale, not surplus (see `refusal`).
        assert_eq!(surplus(&reply, 2, Role::Candidate), None);
        assert_eq!(surplus(&reply, 3, Role::Follower), None);
        // A refusal arriving after the win counts for nothing either.
        let no = fv(2, 5, 3, "vote-reply", "vote-reply n5 term 2 refused");
        assert_eq!(
            surplus(&no, 2, Role::Leader).as_deref(),
            Some("surplus: n3 already leads term 2")
        );
        // A pre-vote answer for term 2 (asked from term 1) once its receiver won the pre-vote and campaigns,
        // or leads, in term 2; or once it stopped asking in term 1.
        let pvr = fv(
            3,
            4,
            3,
            "pre-vote-reply",
            "pre-vote-reply n4 term 2 granted",
        );
        assert_eq!(
            surplus(&pvr, 2, Role::Candidate).as_deref(),
            Some("surplus: n3 already won its pre-vote for term 2")
        );
        assert_eq!(
            surplus(&pvr, 2, Role::Leader).as_deref(),
            Some("surplus: n3 already won its pre-vote for term 2")
        );
        assert_eq!(
            surplus(&pvr, 1, Role::Follower).as_deref(),
            Some("surplus: n3 is no longer asking for pre-votes")
        );
        assert_eq!(surplus(&pvr, 1, Role::PreCandidate), None);
        // Anything else is never surplus.
        let hb = fv(
            4,
            1,
            3,
            "heartbeat",
            "heartbeat n1 term 2 prev 4/1 commit 4",
        );
        assert_eq!(surplus(&hb, 2, Role::Leader), None);
    }

    #[test]
    fn a_superseded_frame_says_what_supersedes_it() {
        // Tester (issue 20): say why a frame is stale in words, e.g. `a newer round of n2's pre-vote`.
        let pv = fv(1, 2, 3, "pre-vote", "pre-vote n2 term 2 last 1/1");
        assert_eq!(
            superseded_note(&pv).as_deref(),
            Some("stale: a newer round of n2's pre-vote is held")
        );
        let v = fv(2, 2, 3, "vote", "vote n2 term 3 last 1/1");
        assert_eq!(
            superseded_note(&v).as_deref(),
            Some("stale: a newer round of n2's vote request is held")
        );
        let hb = fv(
            3,
            1,
            3,
            "heartbeat",
            "heartbeat n1 term 1 prev 4/1 commit 4",
        );
        assert_eq!(
            superseded_note(&hb).as_deref(),
            Some("stale: a newer heartbeat of n1 is held")
        );
        let r = fv(
            4,
            3,
            2,
            "pre-vote-reply",
            "pre-vote-reply n3 term 2 granted",
        );
        assert_eq!(
            superseded_note(&r).as_deref(),
            Some("stale: n3's answer to a newer round is held")
        );
        let a = fv(5, 1, 3, "append", "append 5..5 n1 term 1 prev 4/1 commit 4");
        assert_eq!(superseded_note(&a), None, "entries are never superseded");
    }

    #[test]
    fn a_held_line_names_link_kind_fields_and_marks() {
        let a = f("4 2->3 pre-vote n2 term 3 last 12/2");
        let stale = BTreeSet::from([4]);
        assert_eq!(
            held_line(&a, Some(4), &stale),
            "4 2->3 pre-vote n2 term 3 last 12/2 (stale) ← next"
        );
        let b = f("5 1->2 heartbeat n1 term 2 prev 3/2 commit 3");
        assert_eq!(
            held_line(&b, Some(4), &BTreeSet::new()),
            "5 1->2 heartbeat n1 term 2 prev 3/2 commit 3"
        );
    }
}
