//! Judging the workload's counters: what a linearizable read of each counter showed, against the increments
//! acknowledged before the read began and the increments sent by the time it ended.

use crate::state::Verdict;

/// One counter as the check saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterReading {
    /// The counter's key.
    pub key: String,
    /// Increments acknowledged before the read began: the read must show at least these.
    pub acked_before: u64,
    /// The value read, or why it could not be read.
    pub read: Result<u64, String>,
    /// Increments sent by the time the read ended: the read can show at most these.
    pub sent_after: u64,
}

/// The verdict over every counter, and a report in words.
pub fn judge(readings: &[CounterReading]) -> (Verdict, String) {
    let mut violations = Vec::new();
    let mut unread = Vec::new();
    let (mut held, mut acked, mut sent) = (0u64, 0u64, 0u64);
    for r in readings {
        acked += r.acked_before;
        sent += r.sent_after;
        match &r.read {
            Ok(v) => {
                held += v;
                if *v < r.acked_before {
                    violations.push(format!(
                        "{} holds {v} but {} increments were acknowledged before it was read ({} lost)",
                        r.key,
                        r.acked_before,
                        r.acked_before - v
                    ));
                } else if *v > r.sent_after {
                    violations.push(format!(
                        "{} holds {v} but only {} increments were ever sent",
                        r.key, r.sent_after
                    ));
                }
            }
            Err(e) => unread.push(format!("{} ({e})", r.key)),
        }
    }
    if sent == 0 && violations.is_empty() {
        return (
            Verdict::Inconclusive,
            "check: nothing to judge: the workload has sent no write this session (start it with \
             `workload on`, or `c` in the dashboard, then check again)"
                .to_string(),
        );
    }
    if !violations.is_empty() {
        return (
            Verdict::Violated,
            format!(
                "check FAILED: acknowledged writes lost or invented: {}",
                violations.join("; ")
            ),
        );
    }
    if unread.len() == readings.len() {
        return (
            Verdict::Inconclusive,
            format!(
                "check inconclusive: no counter could be read: {}",
                unread.join(", ")
            ),
        );
    }
    if !unread.is_empty() {
        return (
            Verdict::Inconclusive,
            format!(
                "check inconclusive: could not read {}; the counters read hold every acknowledged increment",
                unread.join(", ")
            ),
        );
    }
    (
        Verdict::Ok,
        format!(
            "check passed: no acknowledged write lost ({} counters hold {held} increments; {acked} were \
             acknowledged before the reads, {sent} sent)",
            readings.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(
        key: &str,
        acked_before: u64,
        read: Result<u64, &str>,
        sent_after: u64,
    ) -> CounterReading {
        CounterReading {
            key: key.into(),
            acked_before,
            read: read.map_err(str::to_string),
            sent_after,
        }
    }

    #[test]
    fn counters_within_bounds_pass() {
        // c1 holds two increments whose acknowledgement never came (timed out, yet applied): allowed.
        let (v, report) = judge(&[reading("c0", 5, Ok(5), 5), reading("c1", 3, Ok(5), 6)]);
        assert_eq!(v, Verdict::Ok, "{report}");
        assert!(report.contains("no acknowledged write lost"), "{report}");
        assert!(report.contains("hold 10 increments"), "{report}");
    }

    #[test]
    fn a_counter_short_of_its_acknowledged_increments_is_a_lost_write() {
        let (v, report) = judge(&[reading("c0", 5, Ok(5), 5), reading("c3", 9, Ok(7), 12)]);
        assert_eq!(v, Verdict::Violated);
        assert!(
            report.contains("c3 holds 7 but 9 increments were acknowledged")
                && report.contains("2 lost"),
            "{report}"
        );
    }

    #[test]
    fn a_counter_above_what_was_sent_is_a_violation_too() {
        let (v, report) = judge(&[reading("c2", 1, Ok(4), 3)]);
        assert_eq!(v, Verdict::Violated);
        assert!(
            report.contains("only 3 increments were ever sent"),
            "{report}"
        );
    }

    #[test]
    fn a_check_with_nothing_to_judge_says_so_instead_of_passing() {
        // The workload never ran: every counter reads 0 and nothing was sent.
        let (v, report) = judge(&[reading("c0", 0, Ok(0), 0), reading("c1", 0, Ok(0), 0)]);
        assert_eq!(v, Verdict::Inconclusive, "{report}");
        assert!(report.contains("nothing to judge"), "{report}");
        assert!(!report.contains("no acknowledged write lost"), "{report}");
        // No counter readable: inconclusive, and no claim about what the counters hold.
        let (v, report) = judge(&[
            reading("c0", 2, Err("no leader"), 2),
            reading("c1", 1, Err("no leader"), 1),
        ]);
        assert_eq!(v, Verdict::Inconclusive, "{report}");
        assert!(report.contains("no counter could be read"), "{report}");
        assert!(!report.contains("hold every"), "{report}");
    }

    #[test]
    fn an_unreadable_counter_makes_the_check_inconclusive_unless_another_is_violated() {
        let (v, report) = judge(&[
            reading("c0", 2, Err("no leader"), 2),
            reading("c1", 1, Ok(1), 1),
        ]);
        assert_eq!(v, Verdict::Inconclusive);
        assert!(report.contains("c0 (no leader)"), "{report}");
        let (v, _) = judge(&[
            reading("c0", 2, Err("no leader"), 2),
            reading("c1", 3, Ok(1), 3),
        ]);
        assert_eq!(v, Verdict::Violated);
    }
}
