//! The held queue as a person reads it: which held frame the next `step` delivers, and which are stale (a newer
//! round from the same sender on the same link superseded them, so delivering them shows nothing but an
//! answer the sender no longer waits for).

use std::collections::BTreeSet;

use super::HeldView;

/// The round a frame belongs to, ordered so that a later round compares greater: a request's or reply's
/// (term, step), where a pre-vote round of term T comes before the election of term T. `None` for frames that
/// are never superseded (entries, snapshot chunks, their replies, anything not understood): they carry data.
fn round(frame: &HeldView) -> Option<(&'static str, u64, u8)> {
    let mut words = frame.detail.split_whitespace();
    let (class, step) = match words.next()? {
        "pre-vote" => ("vote", 0),
        "vote" => ("vote", 1),
        "pre-vote-reply" => ("vote-reply", 0),
        "vote-reply" => ("vote-reply", 1),
        "heartbeat" => ("heartbeat", 0),
        _ => return None,
    };
    let mut rest = words.skip_while(|w| *w != "term");
    rest.next()?;
    let term = rest.next()?.parse().ok()?;
    Some((class, term, step))
}

/// The `seq`s of the stale frames among `frames`: a vote request (or pre-vote) for which the same link holds
/// a request of a later round, a vote reply likewise, and a heartbeat for which the same link holds a later
/// heartbeat of the same or a later term (it says nothing the newer one does not).
pub fn stale(frames: &[HeldView]) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for a in frames {
        let Some((class, term, step)) = round(a) else {
            continue;
        };
        let superseded = frames.iter().any(|b| {
            b.from == a.from
                && b.to == a.to
                && b.seq > a.seq
                && round(b).is_some_and(|(c, t, s)| {
                    c == class
                        && if class == "heartbeat" {
                            t >= term
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
/// `(stale)` on superseded ones.
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
            f(1, 2, 3, "vote", "pre-vote n2 term 2 last 1/1"),
            f(2, 2, 4, "vote", "pre-vote n2 term 2 last 1/1"),
            f(3, 2, 3, "vote", "pre-vote n2 term 3 last 1/1"),
            f(4, 2, 3, "vote", "vote n2 term 3 last 1/1"),
            f(5, 3, 2, "vote-reply", "pre-vote-reply n3 term 2 granted"),
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
        assert_eq!(stale(&frames), BTreeSet::from([1, 3, 6]));
        assert_eq!(next_to_step(&frames), Some(1));
    }

    #[test]
    fn a_held_line_names_link_kind_fields_and_marks() {
        let a = f(4, 2, 3, "vote", "pre-vote n2 term 3 last 12/2");
        let stale = BTreeSet::from([4]);
        assert_eq!(
            held_line(&a, Some(4), &stale),
            "4 2->3 vote pre-vote n2 term 3 last 12/2 (stale) ← next"
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
