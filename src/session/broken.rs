//! A session that ends on an I/O error rather than on `quit`, a signal or the end of its input: what failed,
//! said so, and a non-zero exit ([`Broken::EXIT`]). Every loop stops its nodes as on `quit` first.
//!
//! One case is not an error: standard output closed by its reader (`squall up --headless | head`, a write
//! answered `EPIPE`) ends the session as the end of its input does, with exit 0: the reader chose to stop.

use std::fmt;
use std::io;

/// Why a session ended on an I/O error.
#[derive(Debug)]
pub enum Broken {
    /// A write to standard output failed (a full disk under a redirected output, an I/O error), other than its
    /// reader closing it.
    Output(io::Error),
    /// Reading the commands failed other than at their end (standard input, or the dashboard's terminal).
    Input {
        /// What was read: `standard input`, `the terminal's keys`.
        what: &'static str,
        /// The error, for a person.
        why: String,
    },
    /// The session's record (the event log, or the message record beside it) could not be written: its
    /// writer's error, which names the file. Going on would leave a log with a hole that replays wrong.
    Record(String),
    /// The dashboard could not draw on the terminal.
    Terminal(String),
}

impl Broken {
    /// The exit code of a session that ended on an I/O error: a runtime failure (2 is for bad input).
    pub const EXIT: u8 = 1;

    /// A write to standard output failed with `e`: `None` when the reader closed it (`EPIPE`), which ends the
    /// session as the end of input does (see the module comment).
    pub fn output(e: io::Error) -> Option<Broken> {
        (e.kind() != io::ErrorKind::BrokenPipe).then_some(Broken::Output(e))
    }

    /// Whether the cause is a full disk (or quota): then the advice is to free space.
    fn disk_full(&self) -> bool {
        const FULL: [&str; 2] = ["No space left on device", "Disk quota exceeded"];
        match self {
            Broken::Output(e) => {
                matches!(
                    e.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
                )
            }
            Broken::Record(why) => FULL.iter().any(|f| why.contains(f)),
            Broken::Input { .. } | Broken::Terminal(_) => false,
        }
    }

    /// What to do, for a person, once every node has stopped: `dir` is the cluster directory and whether it is
    /// kept (a temporary one is removed at exit).
    pub fn advice(&self, dir: &std::path::Path, kept: bool) -> String {
        let fix = match self {
            _ if self.disk_full() => match self {
                Broken::Output(_) => "free space on the disk that holds squall's standard output",
                _ => {
                    "free space on the disk that holds the event log (or name another with --events FILE)"
                }
            },
            Broken::Output(_) => "check the file or device squall's standard output goes to",
            Broken::Input { .. } => "check what squall's input comes from",
            Broken::Record(_) => "check that disk, or name another event log with --events FILE",
            Broken::Terminal(_) => "check the terminal, or use `squall up --headless`",
        };
        if kept {
            format!(
                "{fix}; then `squall up --dir {}` starts the nodes again on their data (each node's log is \
                 {}/node-N/node.log)",
                dir.display(),
                dir.display()
            )
        } else {
            format!("{fix}, then start again (pass --dir DIR to keep the nodes' data and logs)")
        }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broken::Output(e) => write!(f, "cannot write to standard output: {e}"),
            Broken::Input { what, why } => write!(f, "cannot read {what}: {why}"),
            Broken::Record(why) => write!(f, "cannot write the session's record: {why}"),
            Broken::Terminal(why) => write!(f, "cannot draw on the terminal: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_closed_pipe_is_no_error_and_a_full_disk_says_to_free_space() {
        assert!(Broken::output(io::Error::from(io::ErrorKind::BrokenPipe)).is_none());
        let full = Broken::output(io::Error::from_raw_os_error(28)).expect("ENOSPC is an error");
        assert!(
            full.to_string()
                .starts_with("cannot write to standard output: No space left")
        );
        let advice = full.advice(Path::new("/d"), true);
        assert!(
            advice.starts_with("free space on the disk that holds squall's standard output; then `squall up --dir /d`"),
            "{advice}"
        );
        let log = Broken::Record(
            "event log /l/events.jsonl.gz: No space left on device (os error 28)".into(),
        );
        assert!(
            log.advice(Path::new("/d"), false)
                .starts_with("free space on the disk that holds the event log")
        );
        let input = Broken::Input {
            what: "standard input",
            why: "Is a directory (os error 21)".into(),
        };
        assert_eq!(
            input.to_string(),
            "cannot read standard input: Is a directory (os error 21)"
        );
    }
}
