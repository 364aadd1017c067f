//! What performing a [`super::Command`] came to, typed: callers (the console, the dashboard, the bench,
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
    pub fn console_lines(&self) -> Vec<String> {
        match self {
            Outcome::Done(effect) => vec![format!("ok: {effect}")],
            Outcome::Verdict { verdict, report } if *verdict == Verdict::Ok => {
                vec![format!("ok: {report}")]
            }
            Outcome::Verdict { report, .. } => vec![format!("error: {report}")],
            Outcome::Listing {
                summary,
                lines,
                prefix,
            } => lines
                .iter()
                .map(|l| format!("{prefix} {l}"))
                .chain(std::iter::once(format!("ok: {summary}")))
                .collect(),
            Outcome::Refused(why) => vec![format!("error: {why}")],
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
}
