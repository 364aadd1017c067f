//! The held queue as a person reads it: which held frame the next `step` delivers, and which are stale: a newer
//! round from the same sender on the same link superseded them (delivering them shows nothing but an answer
//! the sender no longer waits for), or their receiver has moved past their term and will refuse or ignore
//! them (Raft §5.1: a request with a stale term is rejected, a reply with one is dropped).

use std::collections::{BTreeMap, BTreeSet};

use squall_node::raft::types::Role;

use super::HeldView;

/// The round a frame belongs to, ordered so that a later round compares greater: a request's or reply's
/// (term, step), where a pre-vote round of term T comes before the election of term T. `None` for frames that
/// are never superseded (entries, snapshot chunks, their replies, anything not understood): they carry data.
fn round(frame: &HeldView) -> Option<(&'static str, u64, u8)> {
    let (class, step) = match frame.detail.split_whitespace().next()? {
        "pre-vote" => ("vote", 0),
        "vote" => ("vote", 1),
        "pre-vote-reply" => ("vote-reply", 0),
        "vote-reply" => ("vote-reply", 1),
        "heartbeat" => ("heartbeat", 0),
        _ => return None,
    };
    Some((class, term_of(&frame.detail)?, step))
}

/// The term a frame carries (`… term 3 …`), if it names one.
fn term_of(detail: &str) -> Option<u64> {
    let mut words = detail.split_whitespace().skip_while(|w| *w != "term");
    words.next()?;
    words.next()?.parse().ok()
}

/// Why `frame`'s receiver will refuse (a request) or ignore (a reply) it, judged from the receiver's term as
/// last seen (`terms`, by node): `n2 refuses it as stale: n2 is already in term 2`. A request or reply of a
/// term below the receiver's is stale (Raft §5.1); a pre-vote must ask for a term above the receiver's, and a granted pre-vote
/// answer counts only while its receiver has not reached that term (Raft dissertation §9.6). `None` when the
/// frame names no term, the receiver's term is not known, or nothing makes it stale.
pub fn refusal(frame: &HeldView, terms: &BTreeMap<u64, u64>) -> Option<String> {
    let theirs = *terms.get(&frame.to)?;
    let first = frame.detail.split_whitespace().next()?;
    let term = term_of(&frame.detail)?;
    let reply = first.ends_with("-reply");
    let at_most = match first {
        "pre-vote" => true,
        "pre-vote-reply" => frame.detail.ends_with(" granted"),
        _ => false,
    };
    let stale = if at_most {
        term <= theirs
    } else {
        term < theirs
    };
    stale.then(|| {
        let to = frame.to;
        let verb = if reply { "ignores" } else { "refuses" };
        // In words (a tester, issue 20: `stale term 2 ≤ 2` read wrong): why the receiver will not take it.
        let rule = if first == "pre-vote" && term == theirs {
            ", and a pre-vote must ask for a later term"
        } else {
            ""
        };
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
    let asked = term_of(&frame.detail)?;
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

/// The `seq`s of the stale frames among `frames`: a vote request (or pre-vote) for which the same link holds
/// a later request of the same or a later round (repeated pre-vote rounds ask for the same term), a vote reply
/// for which it holds one of a later round, a heartbeat for which the same link holds a later
/// heartbeat of the same or a later term (it says nothing the newer one does not), and any frame its receiver
/// will refuse or ignore for its term ([`refusal`], from the receivers' `terms`).
pub fn stale(frames: &[HeldView], terms: &BTreeMap<u64, u64>) -> BTreeSet<u64> {
    let mut out: BTreeSet<u64> = frames
        .iter()
        .filter(|f| refusal(f, terms).is_some())
        .map(|f| f.seq)
        .collect();
    for a in frames {
        let Some((class, term, step)) = round(a) else {
            continue;
        };
        let superseded = frames.iter().any(|b| {
            b.from == a.from
                && b.to == a.to
                && b.seq > a.seq
                && round(b).is_some_and(|(c, t, s)| {
                    // A heartbeat, or a vote request, repeated in the same term says nothing the newer one
                    // does not: a pre-vote does not raise the term, so a candidate's successive pre-vote
                    // rounds all ask for the same term (Raft dissertation §9.6), and only the last one
                    // matters. A reply answers its own request, so only a later round supersedes it.
                    c == class
                        && if class == "heartbeat" || class == "vote" {
                            (t, s) >= (term, step)
                        } else {
                            (t, s) > (term, step)
                        }
                })
        });
        if superseded {
            out.insert(a.seq);
        }
    }
    out
}

/// The frame the next `step *` delivers: the oldest held.
pub fn next_to_step(frames: &[HeldView]) -> Option<u64> {
    frames.iter().map(|f| f.seq).min()
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
    use super::*;

    fn f(seq: u64, from: u64, to: u64, kind: &str, detail: &str) -> HeldView {
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
        let frames = vec![
            f(1, 2, 3, "pre-vote", "pre-vote n2 term 2 last 1/1"),
            f(2, 2, 4, "pre-vote", "pre-vote n2 term 2 last 1/1"),
            f(3, 2, 3, "pre-vote", "pre-vote n2 term 3 last 1/1"),
            f(4, 2, 3, "vote", "vote n2 term 3 last 1/1"),
            f(
                5,
                3,
                2,
                "pre-vote-reply",
                "pre-vote-reply n3 term 2 granted",
            ),
            f(
                6,
                1,
                3,
                "heartbeat",
                "heartbeat n1 term 1 prev 4/1 commit 4",
            ),
            f(
                7,
                1,
                3,
                "heartbeat",
                "heartbeat n1 term 1 prev 4/1 commit 4",
            ),
            f(8, 1, 3, "append", "append 5..5 n1 term 1 prev 4/1 commit 4"),
            f(9, 1, 3, "append", "append 6..6 n1 term 1 prev 5/1 commit 4"),
        ];
        // 1: pre-vote 2 then pre-vote 3 on 2->3; 3: pre-vote 3 then the election of 3; 6: a newer heartbeat.
        // 2 is the only frame on 2->4; 5 is the only reply; appends carry entries and are never stale.
        assert_eq!(stale(&frames, &BTreeMap::new()), BTreeSet::from([1, 3, 6]));
        assert_eq!(next_to_step(&frames), Some(1));
    }

    #[test]
    fn repeated_pre_vote_rounds_for_one_term_leave_only_the_last_unstale() {
        // tester5 F8: a candidate cut off under `hold * only pre-vote` repeats its pre-vote round for the same
        // term; none was marked stale, and `drop-stale` found nothing.
        let frames = vec![
            f(1, 3, 2, "pre-vote", "pre-vote n3 term 2 last 1/1"),
            f(2, 2, 3, "pre-vote", "pre-vote n2 term 2 last 1/1"),
            f(3, 3, 2, "pre-vote", "pre-vote n3 term 2 last 1/1"),
            f(4, 2, 3, "pre-vote", "pre-vote n2 term 2 last 1/1"),
            f(5, 3, 2, "pre-vote", "pre-vote n3 term 2 last 1/1"),
            f(
                6,
                2,
                3,
                "pre-vote-reply",
                "pre-vote-reply n2 term 2 granted",
            ),
            f(
                7,
                2,
                3,
                "pre-vote-reply",
                "pre-vote-reply n2 term 2 granted",
            ),
        ];
        assert_eq!(stale(&frames, &BTreeMap::new()), BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn a_frame_whose_receiver_moved_past_its_term_is_refused_and_stale() {
        // teach2 item 2: a step delivered a heartbeat of term 1 to a node in term 2 and said only `deliver`.
        let terms = BTreeMap::from([(1, 1), (2, 2), (3, 2)]);
        let hb = f(
            1,
            1,
            2,
            "heartbeat",
            "heartbeat n1 term 1 prev 4/1 commit 4",
        );
        assert_eq!(
            refusal(&hb, &terms).as_deref(),
            Some("n2 refuses it as stale: n2 is already in term 2")
        );
        let reply = f(2, 2, 1, "vote-reply", "vote-reply n2 term 1 granted");
        assert_eq!(refusal(&reply, &terms), None, "n1 is in term 1 still");
        let reply = f(3, 1, 3, "append-reply", "append-reply n1 term 1 ok match 4");
        assert_eq!(
            refusal(&reply, &terms).as_deref(),
            Some("n3 ignores it as stale: n3 is already in term 2")
        );
        // A pre-vote asks for a term above the receiver's; one for the receiver's own term is refused.
        let pv = f(4, 3, 2, "pre-vote", "pre-vote n3 term 2 last 4/1");
        assert_eq!(
            refusal(&pv, &terms).as_deref(),
            Some(
                "n2 refuses it as stale: n2 is already in term 2, and a pre-vote must ask for a later term"
            )
        );
        let pv = f(5, 3, 2, "pre-vote", "pre-vote n3 term 3 last 4/1");
        assert_eq!(refusal(&pv, &terms), None);
        // A granted pre-vote answer of term 2 no longer counts once its receiver reached term 2.
        let pvr = f(
            6,
            2,
            3,
            "pre-vote-reply",
            "pre-vote-reply n2 term 2 granted",
        );
        assert!(refusal(&pvr, &terms).is_some());
        // Unknown receivers and frames without a term are never judged.
        assert_eq!(
            refusal(&f(7, 1, 9, "heartbeat", "heartbeat n1 term 1"), &terms),
            None
        );
        assert_eq!(
            refusal(&f(8, 1, 2, "timeout-now", "timeout-now ok"), &terms),
            None
        );
        let frames = vec![hb, pv.clone(), pvr];
        assert_eq!(stale(&frames, &terms), BTreeSet::from([1, 6]));
    }

    #[test]
    fn a_stale_note_says_in_words_why_the_frame_is_stale() {
        // Tester (issue 20): `stale term 2 ≤ 2` reads wrong; say why the frame is stale in words.
        let terms = BTreeMap::from([(2, 2), (3, 3)]);
        let pvr = f(
            1,
            3,
            2,
            "pre-vote-reply",
            "pre-vote-reply n3 term 2 granted",
        );
        let why = refusal(&pvr, &terms).expect("n2 is in term 2 already");
        assert_eq!(why, "n2 ignores it as stale: n2 is already in term 2");
        assert!(!why.contains('≤') && !why.contains('<'), "{why}");
        let vote = f(2, 2, 3, "vote", "vote n2 term 2 last 4/1");
        assert_eq!(
            refusal(&vote, &terms).as_deref(),
            Some("n3 refuses it as stale: n3 is already in term 3")
        );
    }

    #[test]
    fn a_vote_answer_reaching_a_candidate_that_won_or_moved_on_is_surplus() {
        // Tester (issue 20): a vote reply stepped to a candidate that had already won said only `deliver`.
        let reply = f(1, 4, 3, "vote-reply", "vote-reply n4 term 2 granted");
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
        let no = f(2, 5, 3, "vote-reply", "vote-reply n5 term 2 refused");
        assert_eq!(
            surplus(&no, 2, Role::Leader).as_deref(),
            Some("surplus: n3 already leads term 2")
        );
        // A pre-vote answer for term 2 (asked from term 1) once its receiver won the pre-vote and campaigns,
        // or leads, in term 2; or once it stopped asking in term 1.
        let pvr = f(
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
        let hb = f(
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
        let pv = f(1, 2, 3, "pre-vote", "pre-vote n2 term 2 last 1/1");
        assert_eq!(
            superseded_note(&pv).as_deref(),
            Some("stale: a newer round of n2's pre-vote is held")
        );
        let v = f(2, 2, 3, "vote", "vote n2 term 3 last 1/1");
        assert_eq!(
            superseded_note(&v).as_deref(),
            Some("stale: a newer round of n2's vote request is held")
        );
        let hb = f(
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
        let r = f(
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
        let a = f(5, 1, 3, "append", "append 5..5 n1 term 1 prev 4/1 commit 4");
        assert_eq!(superseded_note(&a), None, "entries are never superseded");
    }

    #[test]
    fn a_held_line_names_link_kind_fields_and_marks() {
        let a = f(4, 2, 3, "pre-vote", "pre-vote n2 term 3 last 12/2");
        let stale = BTreeSet::from([4]);
        assert_eq!(
            held_line(&a, Some(4), &stale),
            "4 2->3 pre-vote n2 term 3 last 12/2 (stale) ← next"
        );
        let b = f(
            5,
            1,
            2,
            "heartbeat",
            "heartbeat n1 term 2 prev 3/2 commit 3",
        );
        assert_eq!(
            held_line(&b, Some(4), &BTreeSet::new()),
            "5 1->2 heartbeat n1 term 2 prev 3/2 commit 3"
        );
    }
}
