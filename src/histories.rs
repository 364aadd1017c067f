//! `squall check-history` and `squall history`: reading histories from files and event logs, checking them,
//! and printing verdicts. The checking itself is [`crate::check`]'s.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::check::diagram::describe;
use crate::check::format::{parse_jsonl_from, to_edn, to_jsonl};
use crate::check::{OpEvent, Verdict, history, linear};
use crate::cli::{CheckHistoryArgs, HistoryArgs, HistoryFormat};
use crate::record::eventlog::EventLogReader;
use crate::setup::fail;
use crate::state::{Event, Stamped};

/// Exit code of a valid history.
pub const EXIT_VALID: u8 = 0;
/// Exit code of an invalid history.
pub const EXIT_INVALID: u8 = 1;
/// Exit code of bad input.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code of a check stopped at its deadline.
pub const EXIT_UNKNOWN: u8 = 3;

/// The exit code of a verdict.
pub fn exit_code(v: &Verdict) -> u8 {
    match v {
        Verdict::Valid => EXIT_VALID,
        Verdict::Invalid(_) => EXIT_INVALID,
        Verdict::Unknown(_) => EXIT_UNKNOWN,
    }
}

/// `squall check-history FILE`.
pub fn check_history(args: CheckHistoryArgs) -> ExitCode {
    let name = args.file.display().to_string();
    let parsed = if name == "-" {
        parse_jsonl_from(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => parse_jsonl_from(std::io::BufReader::new(f)),
            Err(e) => return fail(EXIT_BAD_INPUT, format!("cannot read {name}: {e}")),
        }
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            return fail(
                EXIT_BAD_INPUT,
                format!(
                    "{name} line {}: {}; each line should be one operation event, see `squall check-history --help` and the README",
                    e.line, e.message
                ),
            );
        }
    };
    let started = Instant::now();
    let ops = match history::pair(&parsed.events) {
        Ok(ops) => ops,
        Err(e) => {
            return fail(
                EXIT_BAD_INPUT,
                format!(
                    "{name} line {}: {}",
                    parsed.lines.get(e.position).copied().unwrap_or(0),
                    e.message
                ),
            );
        }
    };
    let report = linear::check(&ops, Some(started + args.timeout));
    let took = started.elapsed();
    let mut out = std::io::stdout().lock();
    for line in describe(&report, took) {
        let _ = writeln!(out, "{line}");
    }
    ExitCode::from(exit_code(&report.verdict))
}

/// The operation events recorded in an event log, in the order they were logged.
///
/// # Errors
/// The log cannot be read (see [`EventLogReader`]).
pub fn history_of_log(path: &Path) -> Result<Vec<OpEvent>, String> {
    read_history(path).map(|h| h.events)
}

/// The operation history an event log holds, read as a stream (memory is the history, not the log).
pub struct LogHistory {
    /// The operation events, in the order they were logged.
    pub events: Vec<OpEvent>,
    /// Set when the log ended early (see [`crate::record::truncation_warning`]): what to tell the person.
    /// The history is then the part of the session the log holds: invocations without their completion count
    /// as unknown (`info`), as for any history cut short, so it is judged only on what it contains.
    pub truncated: Option<String>,
}

/// Reads the operation history out of the event log at `path`.
///
/// # Errors
/// The log cannot be read (see [`EventLogReader`]).
pub fn read_history(path: &Path) -> Result<LogHistory, String> {
    let mut reader = EventLogReader::<Stamped>::open(path).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    let mut last_ms = 0;
    for stamped in &mut reader {
        let stamped = stamped.map_err(|e| e.to_string())?;
        last_ms = stamped.at_ms;
        if let Event::Op { op } = stamped.event {
            events.push(op);
        }
    }
    let truncated = reader.warning().map(|w| {
        format!(
            "{w}; the last event kept is at {:.1} s of the session",
            last_ms as f64 / 1e3
        )
    });
    Ok(LogHistory { events, truncated })
}

/// The operation events among `events`.
pub fn ops_of<'a>(events: impl Iterator<Item = &'a Event>) -> Vec<OpEvent> {
    events
        .filter_map(|e| match e {
            Event::Op { op } => Some(*op),
            _ => None,
        })
        .collect()
}

/// `squall history LOG [--format jsonl|edn]`.
pub fn history(args: HistoryArgs) -> ExitCode {
    let LogHistory { events, truncated } = match read_history(&args.log) {
        Ok(h) => h,
        Err(e) => return fail(EXIT_BAD_INPUT, e),
    };
    if let Some(w) = truncated {
        eprintln!("squall: warning: {w}");
    }
    if events.is_empty() {
        eprintln!(
            "squall: {} holds no operation history (only the lin-kv workload records one: \
             `squall up --workload lin-kv`, or `workload lin-kv` in a session)",
            args.log.display()
        );
    }
    let text = match args.format {
        HistoryFormat::Jsonl => to_jsonl(&events),
        HistoryFormat::Edn => to_edn(&events),
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}
