//! What performing a [`Command`](crate::command::Command) came to, typed: callers (the console, the dashboard, the bench,
//! scenario steps) decide from the variant and read the [`Effect`], never by matching the text. The words a
//! person sees on the console are rendered here, in [`Outcome::console_lines`], and nowhere else.

use crate::command::Effect;
use crate::state::Verdict;

/// The result of one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It was done: the command as recorded, the node it acted on and what changed.
    Done(Effect),
    /// A check ran; its verdict and the evidence.
    Verdict {
        /// The finding.
        verdict: Verdict,
        /// The evidence in words.
        report: String,
    },
    /// Information asked for (faults, held frames, status): a summary and one line per item.
    Listing {
        /// One line for the whole ("3 faults in force").
        summary: String,
        /// What the console prints before its answer, one per line, each beginning with `prefix`.
        lines: Vec<String>,
        /// The word that begins each line on the console (`faults:`, `held:`, `status:`).
        prefix: &'static str,
    },
    /// It was not done, and why (the target cannot take it, bad parameters for this cluster, …).
    Refused(String),
    /// The session is to end.
    Quit,
}

impl Outcome {
    /// True when the command did what was asked (a check counts only when it found nothing wrong).
    pub fn is_ok(&self) -> bool {
        match self {
            Outcome::Done(_) | Outcome::Listing { .. } | Outcome::Quit => true,
            Outcome::Verdict { verdict, .. } => *verdict == Verdict::Ok,
            Outcome::Refused(_) => false,
        }
    }

    /// The lines the headless console answers with: listing lines first, then `ok: …` or `error: …`.
    /// Each is one line: a text of several lines (an error quoting a node's log tail) is joined with ` | `,
    /// so a script reads exactly one answer line per command.
    pub fn console_lines(&self) -> Vec<String> {
        match self {
            Outcome::Done(effect) if effect.pending => {
                vec![format!("pending: {}", one_line(&effect.to_string()))]
            }
            Outcome::Done(effect) => vec![format!("ok: {}", one_line(&effect.to_string()))],
            Outcome::Verdict { verdict, report } if *verdict == Verdict::Ok => {
                vec![format!("ok: {}", one_line(report))]
            }
            Outcome::Verdict { report, .. } => vec![format!("error: {}", one_line(report))],
            Outcome::Listing {
                summary,
                lines,
                prefix,
            } => lines
                .iter()
                .map(|l| format!("{prefix} {}", one_line(l)))
                .chain(std::iter::once(format!("ok: {}", one_line(summary))))
                .collect(),
            Outcome::Refused(why) => vec![format!("error: {}", one_line(why))],
            Outcome::Quit => vec!["ok: quit".into()],
        }
    }

    /// The effect, when the command was done.
    pub fn effect(&self) -> Option<&Effect> {
        match self {
            Outcome::Done(e) => Some(e),
            _ => None,
        }
    }

    /// The outcome as a `Result` of its text, for callers that only need to know whether it worked.
    pub fn into_result(self) -> Result<String, String> {
        let ok = self.is_ok();
        let text = match self {
            Outcome::Done(e) => e.change,
            Outcome::Refused(t) => t,
            Outcome::Verdict { report, .. } => report,
            Outcome::Listing { summary, .. } => summary,
            Outcome::Quit => "quit".into(),
        };
        if ok { Ok(text) } else { Err(text) }
    }
}

/// `text` on one line: its lines trimmed, blank ones dropped, joined with ` | ` (what the headless console
/// prints, for answers and event lines alike).
pub fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_answers_by_variant() {
        assert_eq!(
            Outcome::Done(Effect::new(
                crate::command::Command::Kill(crate::command::Target::Leader),
                Some(2),
                "kill node 2"
            ))
            .console_lines(),
            vec!["ok: kill node 2"]
        );
        assert_eq!(
            Outcome::Refused("no node 9".into()).console_lines(),
            vec!["error: no node 9"]
        );
        let bad = Outcome::Verdict {
            verdict: Verdict::Violated,
            report: "lost".into(),
        };
        assert_eq!(bad.console_lines(), vec!["error: lost"]);
        assert!(!bad.is_ok());
        let list = Outcome::Listing {
            summary: "2 faults".into(),
            lines: vec!["#1 cut 1->2".into(), "#2 isolate 3".into()],
            prefix: "faults:",
        };
        assert_eq!(
            list.console_lines(),
            vec![
                "faults: #1 cut 1->2",
                "faults: #2 isolate 3",
                "ok: 2 faults"
            ]
        );
    }

    #[test]
    fn every_answer_is_one_console_line_even_when_it_quotes_a_node_s_log() {
        let refused = Outcome::Refused(
            "node 2 did not start: address in use\nits log ends:\n  line one\r\n\n  line two\n"
                .into(),
        );
        assert_eq!(
            refused.console_lines(),
            vec![
                "error: node 2 did not start: address in use | its log ends: | line one | line two"
            ]
        );
        let done = Outcome::Done(Effect::new(
            crate::command::Command::Kill(crate::command::Target::Node(2)),
            Some(2),
            "kill node 2\nit had led",
        ));
        assert_eq!(done.console_lines(), vec!["ok: kill node 2 | it had led"]);
        let verdict = Outcome::Verdict {
            verdict: Verdict::Ok,
            report: "check passed\n3 keys".into(),
        };
        assert_eq!(verdict.console_lines(), vec!["ok: check passed | 3 keys"]);
        let list = Outcome::Listing {
            summary: "1 fault\nin force".into(),
            lines: vec!["#1 cut 1->2\nsince 3s".into()],
            prefix: "faults:",
        };
        assert_eq!(
            list.console_lines(),
            vec!["faults: #1 cut 1->2 | since 3s", "ok: 1 fault | in force"]
        );
    }
}
