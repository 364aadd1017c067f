//! `squall report`: one self-contained HTML file of a session, drawn from its event log: latency over time
//! with fault windows and role lanes, throughput and latency quantiles per second, every check's verdict
//! (and a fresh linearizability check of the lin-kv history, with its failing window drawn), and a table of
//! faults, elections and recovery times. Plots are SVG from `plotters`, inline: no network needed to open it.

pub mod charts;
pub mod flow;
pub mod html;
pub mod model;
pub mod spill;
pub mod stream;
pub mod verdicts;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use crate::check::diagram::describe;
use crate::check::{Report, Verdict};
use crate::cli::ReportArgs;
use crate::record::eventlog::EventLogReader;
use crate::setup::fail;
use crate::state::{Stamped, Verdict as SessionVerdict};
use html::{Html, Svg};
use model::Model;

fn ms(v: Option<u64>) -> String {
    v.map_or("—".to_string(), |v| format!("{v} ms"))
}

/// The whole report as HTML, through [`html::Html`], so every piece of session data is escaped by
/// construction. `check` is the linearizability check of the history, when there is one.
///
/// # Errors
/// A plot could not be drawn (plotters' error, in words).
pub fn render(m: &Model, check: Option<(&Report, std::time::Duration)>) -> Result<String, String> {
    let mut h = Html::new()
        .markup("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">")
        .el_text("title", format!("squall report: {}", m.cluster_id))
        .nl()
        .markup(
            "<style>body{font-family:sans-serif;margin:2em;max-width:1040px}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.ok{color:#2a7}.bad{color:#d33;font-weight:bold}\
             .unknown{color:#c80}pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>\n",
        )
        .el_text("h1", format!("squall session {}", m.cluster_id))
        .nl()
        .el_text(
            "p",
            format!(
                "{}, {:.1} s, {} operations, {} faults, {} {}.",
                node_count(m),
                m.end_ms as f64 / 1e3,
                m.ops_total,
                m.faults.len(),
                m.elections,
                if m.paxos { "ballots led" } else { "elections" }
            ),
        )
        .nl()
        .append(membership(m))
        .el_text("h2", "Verdicts")
        .nl()
        .append(verdicts_section(m, check));
    h = h.nl();
    if let Some((r, took)) = check
        && let Verdict::Invalid(f) = &r.verdict
    {
        h = h.el_text("h2", "Failing window").nl();
        if f.window.len() > charts::MAX_WINDOW_OPS {
            h = h
                .el_text(
                    "p",
                    format!(
                        "{} operations; the first {} are drawn.",
                        f.window.len(),
                        charts::MAX_WINDOW_OPS
                    ),
                )
                .nl();
        }
        h = h.svg(Svg(charts::window(f)?)).nl();
        h = h.el("pre", None, |mut h| {
            for line in describe(r, took)
                .iter()
                .skip(1)
                .take(charts::MAX_WINDOW_OPS * 2 + 4)
            {
                h = h.text(line).nl();
            }
            h
        });
        h = h.nl();
    }
    h = h
        .el_text("h2", "Latency")
        .nl()
        .svg(Svg(charts::latency(m)?))
        .nl()
        .el_text("p", lanes_legend(m.paxos))
        .nl()
        .el_text("h2", "Throughput")
        .nl()
        .svg(Svg(charts::throughput(m)?))
        .nl()
        .el_text("h2", "Latency quantiles")
        .nl()
        .svg(Svg(charts::quantiles(m)?))
        .nl()
        .el_text("h2", "Faults")
        .nl();
    h = h.el("table", None, |mut h| {
        h = h
            .row(
                "th",
                [
                    "at",
                    "fault",
                    "until",
                    "first commit after the fault",
                    "recovery (end → first commit)",
                ],
            )
            .nl();
        for f in &m.faults {
            h = h
                .row(
                    "td",
                    [
                        format!("{:.1} s", f.start_ms as f64 / 1e3),
                        f.label.clone(),
                        match (&f.ended_by, f.end_ms) {
                            (Some(by), Some(t)) => format!("{:.1} s ({by})", t as f64 / 1e3),
                            (None, Some(t)) => format!("{:.1} s", t as f64 / 1e3),
                            _ => "the end".to_string(),
                        },
                        ms(f.commit_after_start_ms),
                        ms(f.recovery_ms),
                    ],
                )
                .nl();
        }
        h
    });
    Ok(h.nl()
        .el_text(
            "p",
            if m.paxos {
                format!(
                    "Ballots led: {} (ballots in which a node was seen leading as the distinguished proposer).",
                    m.elections
                )
            } else {
                format!(
                    "Elections won: {} (terms in which a node was seen leading).",
                    m.elections
                )
            },
        )
        .nl()
        .markup("</body></html>\n")
        .into_string())
}

/// Whether the session changed its membership (a request, a step, a node added or a new configuration).
fn changed_membership(m: &Model) -> bool {
    !m.membership.is_empty() || m.ever.len() > m.nodes.len() || m.configs.len() > 1
}

/// The summary's node count: `3 nodes`, or with membership changes `3 nodes at the start, 9 over the run,
/// 1 in the final configuration`.
fn node_count(m: &Model) -> String {
    let plural = |n: usize| if n == 1 { "node" } else { "nodes" };
    let start = m.nodes.len();
    if !changed_membership(m) {
        return format!("{start} {}", plural(start));
    }
    let mut out = format!(
        "{start} {} at the start, {} over the run",
        plural(start),
        m.ever.len()
    );
    if let Some(last) = m.configs.last() {
        let _ = write!(out, ", {} in the final configuration", last.size());
    }
    out
}

/// The membership section: node ids over the run, the configuration's size over time, every request and
/// step with its time, and the final configuration. Empty for a session that changed no membership.
fn membership(m: &Model) -> Html {
    if !changed_membership(m) {
        return Html::new();
    }
    let mut h = Html::new().el_text("h2", "Membership").nl();
    let ids: Vec<String> = m.ever.iter().map(|i| format!("n{i}")).collect();
    h = h
        .el_text(
            "p",
            format!("Node ids over the run ({}): {}.", ids.len(), ids.join(" ")),
        )
        .nl();
    if !m.configs.is_empty() {
        let sizes: Vec<String> = m
            .configs
            .iter()
            .map(|c| {
                format!(
                    "{} at {:.1} s ({})",
                    c.size(),
                    c.at_ms as f64 / 1e3,
                    c.text()
                )
            })
            .collect();
        h = h
            .el_text(
                "p",
                format!(
                    "Members over time, as the leader knew them: {}.",
                    sizes.join(" → ")
                ),
            )
            .nl();
    }
    h = match m.configs.last() {
        Some(c) => h.el_text(
            "p",
            format!(
                "Final configuration: {} (entry {}, from {:.1} s).",
                c.text(),
                c.index,
                c.at_ms as f64 / 1e3
            ),
        ),
        None => h.el_text("p", "No leader reported a configuration."),
    }
    .nl();
    if !m.membership.is_empty() {
        h = h.el("table", None, |mut h| {
            h = h.row("th", ["at", "node", "step", "what"]).nl();
            for r in &m.membership {
                h = h
                    .row(
                        "td",
                        [
                            format!("{:.1} s", r.at_ms as f64 / 1e3),
                            r.node.map_or("—".to_string(), |n| format!("n{n}")),
                            r.step.to_string(),
                            r.text.clone(),
                        ],
                    )
                    .nl();
            }
            h
        });
        h = h.nl();
    }
    h
}

fn session_class(v: SessionVerdict) -> &'static str {
    match v {
        SessionVerdict::Ok => "ok",
        SessionVerdict::Violated => "bad",
        SessionVerdict::Inconclusive => "unknown",
    }
}

/// The verdict of the session and every check behind it: the verdict table of a `squall run` as it printed
/// it, the checks run by command, a fresh linearizability check, and Raft's invariants replayed from the
/// log (how many broke and the first few), so a report never reads better than the run it shows.
fn verdicts_section(m: &Model, check: Option<(&Report, std::time::Duration)>) -> Html {
    let v = &m.verdicts;
    let invariants = if v.violations == 0 {
        SessionVerdict::Ok
    } else {
        SessionVerdict::Violated
    };
    let fresh = check.map(|(r, _)| match r.verdict {
        Verdict::Valid => SessionVerdict::Ok,
        Verdict::Invalid(_) => SessionVerdict::Violated,
        Verdict::Unknown(_) => SessionVerdict::Inconclusive,
    });
    let mut h = Html::new();
    if v.run.is_empty() {
        let all = m
            .checks
            .iter()
            .map(|c| c.verdict)
            .chain(fresh)
            .chain(m.lock.as_ref().map(|(v, _)| *v))
            .chain([invariants]);
        let overall = verdicts::overall(all);
        h = h
            .el("p", Some(session_class(overall)), |h| {
                h.text(format!(
                    "verdict: {} (from the checks below; no `squall run` verdict table was recorded)",
                    verdicts::word(overall)
                ))
            })
            .nl();
    } else {
        let overall = verdicts::overall(v.run.iter().map(|f| f.verdict));
        let why: Vec<&str> = v
            .run
            .iter()
            .filter(|f| f.verdict == overall && overall != SessionVerdict::Ok)
            .map(|f| f.check.as_str())
            .collect();
        h = h
            .el("p", Some(session_class(overall)), |h| {
                h.text(if why.is_empty() {
                    format!("verdict: {} (the run's verdict)", verdicts::word(overall))
                } else {
                    format!(
                        "verdict: {} (the run's verdict; {}: {})",
                        verdicts::word(overall),
                        verdicts::word(overall),
                        why.join(", ")
                    )
                })
            })
            .nl()
            .el("table", None, |mut h| {
                h = h.row("th", ["check", "verdict", "evidence"]).nl();
                for f in &v.run {
                    h = h
                        .el("tr", Some(session_class(f.verdict)), |h| {
                            h.el_text("td", &f.check)
                                .el_text("td", verdicts::word(f.verdict))
                                .el_text("td", &f.evidence)
                        })
                        .nl();
                }
                h
            })
            .nl();
    }
    h.el("ul", None, |mut h| {
        h = h.nl();
        if let Some((r, took)) = check {
            let (class, _) = verdict_class(&r.verdict);
            h = h
                .el("li", Some(class), |h| {
                    h.text(format!(
                        "linearizability of the recorded history (checked for this report): {}",
                        describe(r, took)[0]
                    ))
                })
                .nl();
        }
        if let Some((verdict, text)) = &m.lock {
            h = h
                .el("li", Some(session_class(*verdict)), |h| {
                    h.text(format!(
                        "mutual exclusion of the lock workload (checked for this report from the grants and \
                         the resource's log): {text}"
                    ))
                })
                .nl();
        }
        for c in &m.checks {
            h = h
                .el("li", Some(session_class(c.verdict)), |h| {
                    h.text(format!(
                        "{:.1} s, {} check in the session: {}",
                        c.at_ms as f64 / 1e3,
                        c.which,
                        c.report
                    ))
                })
                .nl();
        }
        h = h
            .el("li", Some(session_class(invariants)), |mut h| {
                if v.violations == 0 {
                    h.text(format!(
                        "invariants (replayed from the log): valid: {}",
                        v.held
                    ))
                } else {
                    h = h.text(format!(
                        "invariants (replayed from the log): invalid: {} violation(s) of {} {}:",
                        v.violations,
                        v.broken.len(),
                        if v.broken.len() == 1 {
                            "property"
                        } else {
                            "properties"
                        }
                    ));
                    // One collapsible block per property, so no kind hides behind another's count.
                    for b in &v.broken {
                        h = h.el("details", None, |mut h| {
                            h = h.el_text(
                                "summary",
                                format!("{}: {} violation(s)", b.property, b.count),
                            );
                            if b.count > b.lines.len() {
                                h = h.el_text(
                                    "p",
                                    format!(
                                        "the first {} of {} are listed here; every line is in {}",
                                        b.lines.len(),
                                        b.count,
                                        v.every_file
                                            .as_deref()
                                            .unwrap_or("the session's console feed")
                                    ),
                                );
                            }
                            h.el("pre", None, |mut h| {
                                for line in &b.lines {
                                    h = h.text(format!("INVARIANT BROKEN: {line}")).nl();
                                }
                                h
                            })
                        });
                    }
                    h
                }
            })
            .nl();
        h
    })
    .nl()
}

fn verdict_class(v: &Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Valid => ("ok", "valid"),
        Verdict::Invalid(_) => ("bad", "invalid"),
        Verdict::Unknown(_) => ("unknown", "unknown"),
    }
}

/// `squall report LOG -o FILE`.
pub fn report(args: ReportArgs) -> ExitCode {
    let window = match args.flow.as_deref().map(flow::parse_window).transpose() {
        Ok(w) => w,
        Err(e) => return fail(2, e),
    };
    // Streamed: an hours-long session's log is never in memory whole (only what the model keeps).
    let mut reader = match EventLogReader::<Stamped>::open(&args.log) {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let mut failed = None;
    let mut last_ms = 0;
    // The history goes to disk as it streams past, one file per key, and is checked one key at a time.
    let mut spill = spill::KeySpill::default();
    let mut m = Model::build(
        reader.by_ref().map_while(|e| match e {
            Ok(s) => {
                last_ms = s.at_ms;
                Some(s)
            }
            Err(e) => {
                failed = Some(e);
                None
            }
        }),
        |op| spill.push(op),
    );
    if let Some(e) = failed {
        return fail(2, e);
    }
    let truncated = reader.warning().map(|w| {
        format!(
            "{w}; the last event kept is at {:.1} s of the session",
            last_ms as f64 / 1e3
        )
    });
    if let Some(w) = &truncated {
        eprintln!("squall: warning: {w}");
    }
    let check = if spill.is_empty() {
        None
    } else {
        let started = Instant::now();
        match spill.check(Some(started + args.timeout)) {
            Ok(r) => Some((r, started.elapsed())),
            Err(spill::SpillError::Malformed(e)) => {
                return fail(
                    2,
                    format!(
                        "{}: the recorded history is malformed: {e}",
                        args.log.display()
                    ),
                );
            }
            Err(spill::SpillError::Io(e)) => {
                return fail(1, format!("{}: {e}", args.log.display()));
            }
        }
    };
    if !m.verdicts.every.is_empty() {
        // More violations than the page lists: every line goes into a text file beside it, which it names.
        let file = args.output.with_extension("violations.txt");
        let mut text = std::mem::take(&mut m.verdicts.every).join("\n");
        text.push('\n');
        if let Err(e) = std::fs::write(&file, text) {
            return fail(2, format!("cannot write {}: {e}", file.display()));
        }
        m.verdicts.every_file = Some(file.display().to_string());
    }
    let mut html = match render(&m, check.as_ref().map(|(r, t)| (r, *t))) {
        Ok(h) => h,
        Err(e) => return fail(1, format!("drawing the report failed: {e}")),
    };
    match flow::section(&args.log, &m, window) {
        Ok(section) => {
            let at = html.find("<h2>Latency</h2>").unwrap_or(html.len());
            html.insert_str(at, &section.into_string());
        }
        Err(e) => eprintln!("squall: warning: no message-flow diagram: {e}"),
    }
    if let Some(w) = truncated
        && let Some(at) = html.find("</h1>\n")
    {
        // Under the title, before any figure, so nobody reads the report without knowing its end is missing.
        html.insert_str(
            at + "</h1>\n".len(),
            &Html::new()
                .el("p", Some("bad"), |h| h.text(&w))
                .nl()
                .into_string(),
        );
    }
    if let Err(e) = std::fs::write(&args.output, html) {
        return fail(2, format!("cannot write {}: {e}", args.output.display()));
    }
    crate::setup::say(format_args!("wrote {}", args.output.display()));
    ExitCode::SUCCESS
}

/// The latency chart's caption: its colours, fault bands and role lanes in the words of the protocol the
/// nodes ran (Multi-Paxos has no pre-vote, and its ballots are not Raft's terms).
fn lanes_legend(paxos: bool) -> &'static str {
    if paxos {
        "Blue ok, red fail, orange info (outcome unknown). Grey bands: fault windows, from the fault to \
         what undid it (heal, restart, resume) or its own end. Lanes: green leader (the distinguished \
         proposer), light grey follower, yellow candidate (preparing a higher ballot), dark down or paused."
    } else {
        "Blue ok, red fail, orange info (outcome unknown). Grey bands: fault windows, from the fault to \
         what undid it (heal, restart, resume) or its own end. Lanes: green leader, light grey follower, \
         yellow candidate, pale yellow pre-vote (asking whether it could win, term unchanged), dark down \
         or paused."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::sim::{SimSpec, simulate};
    use crate::check::{history, linear};
    use crate::state::Event;

    fn session(stale: f64, ops: usize) -> Vec<Stamped> {
        let history = simulate(SimSpec {
            ops,
            clients: 8,
            keys: 5,
            info: 0.02,
            stale_reads: stale,
            seed: 3,
        });
        let mut events = vec![Stamped::new(
            0,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: vec![1, 2, 3],
                dir: "/tmp/x".into(),
            },
        )];
        for (i, op) in history.into_iter().enumerate() {
            if i == 50 {
                events.push(Stamped::new(
                    op.time / 1_000_000,
                    Event::Performed {
                        command: crate::command::parse("partition halves").expect("a console line"),
                        node: None,
                        effect: "partition {1,2} {3}".into(),
                    },
                ));
            }
            events.push(Stamped::new(op.time / 1_000_000, Event::Op { op }));
        }
        events
    }

    fn render_session(events: &[Stamped]) -> String {
        let m = Model::from_events(events);
        let ops = history::pair(&m.history).unwrap();
        let r = linear::check(&ops, None);
        render(&m, Some((&r, std::time::Duration::from_millis(3)))).unwrap()
    }

    #[test]
    fn the_report_is_one_self_contained_file_with_its_plots_and_verdict() {
        let html = render_session(&session(0.0, 2_000));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(
            html.matches("<svg").count(),
            3,
            "latency, throughput, quantiles"
        );
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
        assert!(
            html.contains("class=\"ok\">linearizability"),
            "valid verdict shown"
        );
        assert!(
            html.contains("partition {1,2} {3}"),
            "the fault is labelled"
        );
    }

    /// Issue 23 (new-user tester): a Paxos session's report said "Elections won (terms …)". It counts the
    /// ballots a distinguished proposer led. Seen failing before the model knew the nodes ran Paxos.
    #[test]
    fn a_paxos_report_counts_ballots_led_by_the_distinguished_proposer() {
        use squall_node::paxos::Ballot;
        let mut events = session(0.0, 200);
        for (at, round, node) in [(1_000, 1, 1), (2_000, 2, 3)] {
            let mut status = crate::state::fixture::paxos_status(
                node,
                Ballot {
                    round,
                    proposer: node,
                },
                &[],
                &[],
            );
            status.core.role = squall_node::raft::types::Role::Leader;
            events.push(Stamped::new(at, Event::Status { node, status }));
        }
        let html = render_session(&events);
        assert!(
            html.contains(
                "Ballots led: 2 (ballots in which a node was seen leading as the distinguished proposer)."
            ),
            "{html}"
        );
        assert!(html.contains(", 2 ballots led."), "{html}");
        assert!(!html.contains("Elections won"), "{html}");
        // tester7: the lanes' caption offered Raft's pre-vote and "term unchanged" on a Paxos report.
        assert!(
            !html.contains("pre-vote") && !html.contains("term unchanged"),
            "{html}"
        );
        assert!(html.contains("preparing a higher ballot"), "{html}");
        // A Raft session keeps its words.
        let html = render_session(&session(0.0, 200));
        assert!(html.contains("Elections won: "), "{html}");
        assert!(html.contains("pale yellow pre-vote"), "{html}");
    }

    #[test]
    fn membership_changes_show_with_their_times_and_the_final_configuration() {
        use crate::state::MembershipStep;
        use squall_node::raft::types::Role;
        let leader_status = |voters: &[u64], learners: &[u64], index: u64| {
            let mut s = crate::state::fixture::sample_state(3).nodes[&3]
                .status
                .clone()
                .expect("a status");
            s.core.role = Role::Leader;
            s.core.config.voters = voters.iter().copied().collect();
            s.core.config.learners = learners.iter().copied().collect();
            s.core.config_index = index;
            s
        };
        let mut events = session(0.0, 200);
        let step = |at: u64, node: u64, step: MembershipStep, text: &str| {
            Stamped::new(
                at,
                Event::Membership {
                    node,
                    step,
                    text: text.into(),
                },
            )
        };
        events.extend([
            Stamped::new(
                1_000,
                Event::Status {
                    node: 3,
                    status: leader_status(&[1, 2, 3], &[], 0),
                },
            ),
            Stamped::new(
                2_000,
                Event::Performed {
                    command: crate::command::parse("add").expect("a console line"),
                    node: None,
                    effect: "add node 4: n4 joins as a learner".into(),
                },
            ),
            step(2_100, 4, MembershipStep::Learner, "n4 joins as a learner"),
            Stamped::new(
                2_200,
                Event::Status {
                    node: 3,
                    status: leader_status(&[1, 2, 3], &[4], 40),
                },
            ),
            step(
                3_000,
                4,
                MembershipStep::Promoted,
                "n4 caught up, promoted to voter",
            ),
            Stamped::new(
                3_100,
                Event::Status {
                    node: 3,
                    status: leader_status(&[1, 2, 3, 4], &[], 52),
                },
            ),
            Stamped::new(
                4_000,
                Event::Performed {
                    command: crate::command::parse("remove 1").expect("a console line"),
                    node: None,
                    effect: "remove node 1: under way".into(),
                },
            ),
            step(
                4_500,
                1,
                MembershipStep::Removed,
                "n1 removed: its process stopped",
            ),
            Stamped::new(
                4_400,
                Event::Status {
                    node: 3,
                    status: leader_status(&[2, 3, 4], &[], 61),
                },
            ),
        ]);
        let html = render_session(&events);
        assert!(
            html.contains("3 nodes at the start, 4 over the run, 3 in the final configuration"),
            "{html}"
        );
        assert!(html.contains("<h2>Membership</h2>"));
        assert!(
            html.contains("Node ids over the run (4): n1 n2 n3 n4."),
            "{html}"
        );
        assert!(
            html.contains("3 at 1.0 s ({1,2,3}) → 4 at 2.2 s ({1,2,3} learners {4}) → 4 at 3.1 s ({1,2,3,4}) → 3 at 4.4 s ({2,3,4})"),
            "{html}"
        );
        assert!(
            html.contains("Final configuration: {2,3,4} (entry 61, from 4.4 s)."),
            "{html}"
        );
        for row in [
            "<td>2.0 s</td><td>—</td><td>requested</td><td>add node 4: n4 joins as a learner</td>",
            "<td>3.0 s</td><td>n4</td><td>promoted</td><td>n4 caught up, promoted to voter</td>",
            "<td>4.0 s</td><td>n1</td><td>requested</td><td>remove node 1: under way</td>",
            "<td>4.5 s</td><td>n1</td><td>removed</td>",
        ] {
            assert!(html.contains(row), "{row} missing:\n{html}");
        }
        // A session without changes says it as before.
        let plain = render_session(&session(0.0, 200));
        assert!(plain.contains("<p>3 nodes, "), "{plain}");
        assert!(!plain.contains("Membership"));
    }

    #[test]
    fn an_invalid_history_gets_its_window_drawn_and_a_large_one_stays_small() {
        let html = render_session(&session(0.05, 2_000));
        assert!(html.contains("Failing window"));
        assert!(html.contains("cannot be placed"));
        assert_eq!(html.matches("<svg").count(), 4);
        let big = render_session(&session(0.0, 60_000));
        assert!(
            big.len() < 8 << 20,
            "a 60k-operation report is {} bytes",
            big.len()
        );
    }
}
