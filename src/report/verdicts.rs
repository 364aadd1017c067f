//! The report's verdicts beyond the checks the session ran by command: the verdict table a `squall run`
//! recorded, and Raft's safety invariants, replayed from the log through the same
//! [`ClusterState::apply`] the live session used, so the report breaks the invariants the feed did.

use crate::state::{ClusterState, Event, Stamped, Verdict};

/// How many lines of one broken property the page itself lists (every line of a property past it goes to a
/// text file beside the report, which the page names): bounds the page at a few hundred KB per property.
pub const LINES_PER_PROPERTY: usize = 500;

/// One row of the verdict table a `squall run` printed, as its event log recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFinding {
    /// The check (`counter`, `invariants`, `liveness`, `catch-up`, `steps`).
    pub check: String,
    /// `Ok` valid, `Violated` invalid, `Inconclusive` unknown.
    pub verdict: Verdict,
    /// The evidence in words.
    pub evidence: String,
}

/// One broken Raft property: how often, and the lines that say each time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokenProperty {
    /// The property's name (`election safety`, `state-machine safety`, …).
    pub property: String,
    /// How many times it broke.
    pub count: usize,
    /// The first [`LINES_PER_PROPERTY`] of them in words, as the feed said them, oldest first.
    pub lines: Vec<String>,
}

/// What [`Judge`] found in a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// The run's verdict table; empty for a session that was not a `squall run`.
    pub run: Vec<RunFinding>,
    /// How many times an invariant broke.
    pub violations: usize,
    /// What a clean record says: the properties judged and, for a kind that does not report what some need,
    /// which were not judged.
    pub held: String,
    /// The broken properties in the order each first broke (tester2 item 8: the page showed 5 of 548
    /// violations, and a property that broke 145 times was never named).
    pub broken: Vec<BrokenProperty>,
    /// Every violation in words, oldest first, kept only when some property has more lines than the page
    /// lists ([`LINES_PER_PROPERTY`]), for the text file beside the report.
    pub every: Vec<String>,
    /// The file beside the report that holds [`Verdicts::every`], once `squall report` has written it.
    pub every_file: Option<String>,
}

/// `invalid` if any finding is, else `unknown` if any is, else `valid` (the run's own rule).
pub fn overall(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Ok;
    for v in verdicts {
        match v {
            Verdict::Violated => return Verdict::Violated,
            Verdict::Inconclusive => out = Verdict::Inconclusive,
            Verdict::Ok => {}
        }
    }
    out
}

/// `valid`, `invalid` or `unknown`, the words of the run's verdict table.
pub fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "valid",
        Verdict::Violated => "invalid",
        Verdict::Inconclusive => "unknown",
    }
}

/// Folds a log's events, one at a time, into [`Verdicts`].
#[derive(Default)]
pub struct Judge {
    state: ClusterState,
    run: Vec<RunFinding>,
}

impl Judge {
    /// Takes one event.
    pub fn observe(&mut self, e: &Stamped) {
        if let Event::Judged {
            check,
            verdict,
            evidence,
        } = &e.event
        {
            self.run.push(RunFinding {
                check: check.clone(),
                verdict: *verdict,
                evidence: evidence.clone(),
            });
        }
        self.state.apply(e);
    }

    /// What was found.
    pub fn finish(self) -> Verdicts {
        let v = self.state.invariants.violations();
        let mut broken: Vec<BrokenProperty> = Vec::new();
        for x in v {
            let name = x.property.name();
            let i = match broken.iter().position(|b| b.property == name) {
                Some(i) => i,
                None => {
                    broken.push(BrokenProperty {
                        property: name.to_string(),
                        ..BrokenProperty::default()
                    });
                    broken.len() - 1
                }
            };
            let b = &mut broken[i];
            b.count += 1;
            if b.lines.len() < LINES_PER_PROPERTY {
                b.lines.push(x.to_string());
            }
        }
        let capped = broken.iter().any(|b| b.count > b.lines.len());
        Verdicts {
            held: self.state.invariants.held_text(),
            run: self.run,
            violations: v.len(),
            broken,
            every: if capped {
                v.iter().map(|x| x.to_string()).collect()
            } else {
                Vec::new()
            },
            every_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use squall_node::raft::types::Role;

    use super::super::{model::Model, render};
    use crate::state::{Event, Stamped, Verdict};

    fn started() -> Stamped {
        Stamped::new(
            0,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: vec![1, 2, 3],
                dir: "/tmp/x".into(),
            },
        )
    }

    fn leader_of(node: u64, term: u64, at: u64) -> Stamped {
        let mut status = crate::state::fixture::node_status(node, 100 + node as u32, term, 5);
        status.core.role = Role::Leader;
        status.core.vote = Some(node);
        status.core.leader = Some(node);
        Stamped::new(at, Event::Status { node, status })
    }

    fn judged(check: &str, verdict: Verdict, evidence: &str) -> Stamped {
        Stamped::new(
            9_000,
            Event::Judged {
                check: check.into(),
                verdict,
                evidence: evidence.into(),
            },
        )
    }

    fn html(events: &[Stamped]) -> String {
        render(&Model::from_events(events), None).expect("a report")
    }

    #[test]
    fn the_report_of_an_invalid_run_says_invalid_and_which_check_failed() {
        // As the tester's bundle repro/wm1: the counter check passed, the catch-up check did not.
        let events = [
            started(),
            Stamped::new(
                8_000,
                Event::Checked {
                    verdict: Verdict::Ok,
                    report: "counter check: every acknowledged increment is there".into(),
                },
            ),
            judged(
                "counter",
                Verdict::Ok,
                "every acknowledged increment is there",
            ),
            judged(
                "catch-up",
                Verdict::Violated,
                "n1 never caught up after its wipe",
            ),
            judged("steps", Verdict::Ok, "every timeline step was performed"),
            Stamped::new(9_100, Event::Quit),
        ];
        let h = html(&events);
        assert!(
            h.contains("verdict: invalid (the run&#39;s verdict; invalid: catch-up)")
                || h.contains("verdict: invalid (the run's verdict; invalid: catch-up)"),
            "{h}"
        );
        assert!(h.contains("n1 never caught up after its wipe"), "{h}");
        assert!(!h.contains("verdict: valid"), "{h}");
    }

    #[test]
    fn every_broken_invariant_is_counted_by_property_and_each_line_is_in_the_page() {
        // tester2 item 8: "548 violation(s), the first 5", and the 145 state-machine safety ones never named.
        let mut events = vec![started(), leader_of(1, 3, 100), leader_of(2, 3, 200)];
        for (i, term) in (4..12).enumerate() {
            // Eight more terms with two leaders each: nine election safety violations.
            events.push(leader_of(1, term, 300 + 20 * i as u64));
            events.push(leader_of(2, term, 310 + 20 * i as u64));
        }
        // Node 1's term goes back in the same process: a second property.
        events.push(leader_of(1, 5, 1_000));
        let m = Model::from_events(&events);
        let names: Vec<(&str, usize)> = m
            .verdicts
            .broken
            .iter()
            .map(|b| (b.property.as_str(), b.count))
            .collect();
        assert!(names.contains(&("election safety", 9)), "{names:?}");
        assert!(
            names.iter().any(|(p, _)| *p == "term monotonic"),
            "{names:?}"
        );
        let h = html(&events);
        assert!(h.contains("verdict: invalid"), "{h}");
        assert!(
            h.contains(&format!(
                "invariants (replayed from the log): invalid: {} violation(s) of {} properties:",
                m.verdicts.violations,
                names.len()
            )),
            "{h}"
        );
        assert!(
            h.contains("<summary>election safety: 9 violation(s)</summary>"),
            "{h}"
        );
        assert!(h.contains("<summary>term monotonic: "), "{h}");
        for term in 3..12 {
            assert!(
                h.contains(&format!(
                    "INVARIANT BROKEN: election safety violated: n1 and n2 both led term {term}"
                )),
                "term {term} missing: {h}"
            );
        }
    }

    #[test]
    fn a_page_lists_a_bounded_number_of_lines_per_property_and_names_the_file_with_all() {
        let mut events = vec![started()];
        let n = super::LINES_PER_PROPERTY as u64 + 20;
        for term in 1..=n {
            events.push(leader_of(1, term, 10 * term));
            events.push(leader_of(2, term, 10 * term + 5));
        }
        let mut m = Model::from_events(&events);
        let b = &m.verdicts.broken[0];
        assert_eq!(
            (b.count, b.lines.len()),
            (n as usize, super::LINES_PER_PROPERTY)
        );
        assert_eq!(m.verdicts.every.len(), n as usize);
        m.verdicts.every_file = Some("report.violations.txt".into());
        let h = render(&m, None).expect("a report");
        assert_eq!(
            h.matches("INVARIANT BROKEN: election safety").count(),
            super::LINES_PER_PROPERTY
        );
        assert!(
            h.contains(
                "the first 500 of 520 are listed here; every line is in report.violations.txt"
            ),
            "{h}"
        );
    }

    #[test]
    fn a_session_whose_invariants_held_says_so() {
        let h = html(&[started(), leader_of(1, 3, 100)]);
        assert!(h.contains("verdict: valid"), "{h}");
        assert!(
            h.contains("invariants (replayed from the log): valid"),
            "{h}"
        );
    }
}
