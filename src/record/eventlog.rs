//! The session event log: JSON Lines with a versioned header, written on a background thread.
//!
//! The first line is a header object `{"squall_event_log": FORMAT_VERSION, "created": ..., "cluster_id":
//! ..., "squall_version": ...}`; every further line is one event. The writer is generic over the event
//! type so this module knows nothing of the cluster; the reader gives errors a person can act on for a
//! file that is not a squall log, a log of another format version, or a corrupt line, and replays a log
//! whose last line was cut off (as after a crash) up to its last whole line, with a warning.
//!
//! A path ending in `.gz` is written gzip-compressed (the default for sessions: a busy cluster's statuses
//! compress about forty-fold), flushed at least every [`FLUSH_EVERY`] so a crash loses little; the reader
//! takes both forms and treats a compressed stream that ends early like a cut-off line.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event log format this build writes and reads. Bump it when a change to the event types would
/// make older logs replay differently.
pub const FORMAT_VERSION: u32 = 4;
/// The oldest format version this build still reads. Version 2 added check verdicts and the reason beside an
/// unasked-for exit; version 3 the fault set with ids (`FaultSet`), held frames (`Held`), per-kind link
/// counters, and the lin-kv workload's operation history, its kind and linearizability verdicts. An older
/// log holds none of these and replays as it was. Version 4 records performed commands as values
/// (`Performed { command, node, effect }`, `FaultEnded`) where older logs held text
/// (`Fault { description, effect }`); older lines are converted once, as they are read ([`upgrade_v3`]).
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// How often a compressed log is flushed (each flush ends a deflate block, so not after every event).
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The version of squall that writes logs of [`FORMAT_VERSION`].
const SQUALL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors from writing or reading an event log; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The file could not be created, written, opened or read.
    #[error("event log {path}: {cause}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// Why.
        cause: io::Error,
    },
    /// An event could not be turned into JSON (a bug in the event type, e.g. a map with non-string keys).
    #[error("event log {path}: cannot write an event as JSON: {cause}")]
    Serialize {
        /// The log file.
        path: PathBuf,
        /// Why.
        cause: serde_json::Error,
    },
    /// The file is empty.
    #[error(
        "{path} is empty: it is not a squall event log (those start with a {{\"squall_event_log\": ...}} line)"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The first line is not a squall event log header.
    #[error(
        "{path} is not a squall event log: its first line should be {{\"squall_event_log\": {FORMAT_VERSION}, ...}} but is {first_line}"
    )]
    NotSquallLog {
        /// The file.
        path: PathBuf,
        /// The first line, shortened.
        first_line: String,
    },
    /// The log was written in a format version this build does not read.
    #[error("{}", version_message(path, *found, written_by.as_deref()))]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The format version in the file's header.
        found: u64,
        /// The squall version that wrote it, if the header says.
        written_by: Option<String>,
    },
    /// A line before the last one is not a valid event (the file was edited or damaged).
    #[error("{path}: line {line} is not a valid event ({reason}): {text}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What the JSON parser said.
        reason: String,
        /// The line, shortened.
        text: String,
    },
}

fn version_message(path: &Path, found: u64, written_by: Option<&str>) -> String {
    let age = if found > u64::from(FORMAT_VERSION) {
        "newer"
    } else {
        "older"
    };
    let writer = written_by.map_or_else(|| "another squall".to_owned(), |v| format!("squall {v}"));
    format!(
        "{} is an event log in format version {found}, written by {writer}; this is squall \
         {SQUALL_VERSION}, which reads format versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}. The log \
         is {age}: replay it with {writer}.",
        path.display()
    )
}

/// The first line of an event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogHeader {
    /// The format version ([`FORMAT_VERSION`] when written by this build).
    pub squall_event_log: u32,
    /// When the log was created, RFC 3339 in UTC.
    pub created: String,
    /// The cluster the session ran.
    pub cluster_id: String,
    /// The squall version that wrote the log.
    #[serde(default)]
    pub squall_version: String,
}

/// A whole event log read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLog<T> {
    /// The first line.
    pub header: EventLogHeader,
    /// Every whole event, in file order.
    pub events: Vec<T>,
    /// Whether the last line was cut off (and left out of `events`).
    pub truncated: bool,
    /// A message for the person replaying, set when `truncated` is.
    pub warning: Option<String>,
}

/// Writes events as JSON Lines on a background thread; [`EventLogWriter::append`] is only a channel send.
///
/// The thread flushes whenever it has caught up, so a crash loses at most what was still queued, and
/// dropping the writer (or [`EventLogWriter::finish`]) writes everything out.
pub struct EventLogWriter<T: Serialize + Send + 'static> {
    path: PathBuf,
    tx: Option<Sender<T>>,
    thread: Option<JoinHandle<Result<(), EventLogError>>>,
    compressed: bool,
    _events: PhantomData<fn(T)>,
}

impl<T: Serialize + Send + 'static> EventLogWriter<T> {
    /// Creates (or truncates) `path` and writes the header for a session of cluster `cluster_id`.
    pub fn create(path: impl AsRef<Path>, cluster_id: &str) -> Result<Self, EventLogError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |cause| EventLogError::Io {
            path: path.clone(),
            cause,
        };
        let file = File::create(&path).map_err(io_err)?;
        let header = EventLogHeader {
            squall_event_log: FORMAT_VERSION,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            cluster_id: cluster_id.to_owned(),
            squall_version: SQUALL_VERSION.to_owned(),
        };
        let compressed = path.extension().is_some_and(|e| e == "gz");
        let mut out: Box<dyn Write + Send> = if compressed {
            Box::new(GzEncoder::new(BufWriter::new(file), Compression::default()))
        } else {
            Box::new(BufWriter::new(file))
        };
        let line = serde_json::to_string(&header).map_err(|cause| EventLogError::Serialize {
            path: path.clone(),
            cause,
        })?;
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(io_err)?;
        let (tx, rx) = mpsc::channel();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("squall-event-log".into())
            .spawn(move || write_events(out, rx, &thread_path, compressed))
            .map_err(io_err)?;
        Ok(EventLogWriter {
            path,
            tx: Some(tx),
            thread: Some(thread),
            compressed,
            _events: PhantomData,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Queues one event; never blocks on the disk.
    pub fn append(&self, event: T) {
        if let Some(tx) = &self.tx {
            // Only fails if the writer thread is gone; its error surfaces in `finish`.
            let _ = tx.send(event);
        }
    }

    /// Writes out everything queued, closes the file and reports the first write error, if any.
    pub fn finish(mut self) -> Result<PathBuf, EventLogError> {
        self.close()?;
        Ok(self.path.clone())
    }

    fn close(&mut self) -> Result<(), EventLogError> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(EventLogError::Io {
                path: self.path.clone(),
                cause: io::Error::other("the event log writer thread panicked"),
            }),
        }
    }
}

impl<T: Serialize + Send + 'static> Drop for EventLogWriter<T> {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("{e}");
        }
    }
}

/// The writer thread: after the first error it keeps draining so senders never notice, and reports it.
/// A plain log is flushed whenever the thread has caught up; a compressed one at most every
/// [`FLUSH_EVERY`], since each flush ends a deflate block.
fn write_events<T: Serialize>(
    mut out: Box<dyn Write + Send>,
    rx: Receiver<T>,
    path: &Path,
    compressed: bool,
) -> Result<(), EventLogError> {
    let mut failed: Option<EventLogError> = None;
    let io_err = |cause| EventLogError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut last_flush = Instant::now();
    let mut dirty = false;
    let mut next = rx.recv().ok();
    while let Some(event) = next {
        if failed.is_none() {
            let written = serde_json::to_writer(&mut out, &event)
                .map_err(|cause| EventLogError::Serialize {
                    path: path.to_path_buf(),
                    cause,
                })
                .and_then(|()| out.write_all(b"\n").map_err(io_err));
            failed = written.err();
            dirty = true;
        }
        next = match rx.try_recv() {
            Ok(event) => Some(event),
            Err(TryRecvError::Empty) => {
                let due = !compressed || last_flush.elapsed() >= FLUSH_EVERY;
                if failed.is_none() && dirty && due {
                    failed = out.flush().map_err(io_err).err();
                    last_flush = Instant::now();
                    dirty = false;
                }
                if dirty {
                    // Wait for more, but not past the next flush.
                    let left = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
                    match rx.recv_timeout(left) {
                        Ok(event) => Some(event),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if failed.is_none() {
                                failed = out.flush().map_err(io_err).err();
                            }
                            last_flush = Instant::now();
                            dirty = false;
                            rx.recv().ok()
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => None,
                    }
                } else {
                    rx.recv().ok()
                }
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    if failed.is_none() {
        failed = out.flush().map_err(io_err).err();
    }
    // Dropping the encoder writes the gzip trailer.
    drop(out);
    failed.map_or(Ok(()), Err)
}

/// Decompresses a gzip log as far as it goes; the flag says whether the stream ended early (a crash).
fn gunzip(bytes: &[u8]) -> (Vec<u8>, bool) {
    use std::io::Read;
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return (out, true),
        }
    }
}

/// At most this many characters of a bad line go into an error message.
const SHOWN_CHARS: usize = 120;

fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}...")
    }
}

/// The first free name in the series `events.jsonl.gz`, `events-2.jsonl.gz`, `events-3.jsonl.gz`, ... (the
/// number goes before the first dot, so every extension is kept), so a session never overwrites the event
/// log of an earlier one. Recordings follow the same rule.
pub fn next_free_path(base: &Path) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot belongs to the stem (`.events.jsonl` numbers as `.events-2.jsonl`).
    let split = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '.')
        .map_or(name.len(), |(i, _)| i);
    let (stem, ext) = name.split_at(split);
    (1u32..)
        .map(|n| {
            if n == 1 {
                base.to_path_buf()
            } else {
                base.with_file_name(format!("{stem}-{n}{ext}"))
            }
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| base.to_path_buf())
}

/// Reads a whole event log. A cut-off last line is not an error: the events before it are returned with
/// `truncated` set and a warning to show.
pub fn read_event_log<T: DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<EventLog<T>, EventLogError> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|cause| EventLogError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let (bytes, stream_cut) = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw)
    } else {
        (raw, false)
    };
    if bytes.is_empty() {
        return Err(EventLogError::Empty {
            path: path.to_path_buf(),
        });
    }
    let ends_whole = bytes.ends_with(b"\n");
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if ends_whole || (stream_cut && lines.len() > 1) {
        // A compressed stream that ends early may end inside a line that happens to parse: drop it.
        lines.pop();
    }
    let header = read_header(path, lines[0])?;
    let mut events = Vec::with_capacity(lines.len());
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate().skip(1) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = if header.squall_event_log < 4 {
            serde_json::from_slice::<Value>(line)
                .map(upgrade_v3)
                .and_then(serde_json::from_value::<T>)
        } else {
            serde_json::from_slice::<T>(line)
        };
        match parsed {
            Ok(event) => events.push(event),
            Err(_) if i == last && !ends_whole => {
                let warning = format!(
                    "{} ends in a cut-off line (line {}, {} bytes), as after a crash: replaying the {} whole \
                     events before it",
                    path.display(),
                    i + 1,
                    line.len(),
                    events.len()
                );
                return Ok(EventLog {
                    header,
                    events,
                    truncated: true,
                    warning: Some(warning),
                });
            }
            Err(e) => {
                return Err(EventLogError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: e.to_string(),
                    text: shorten(line),
                });
            }
        }
    }
    let warning = stream_cut.then(|| {
        format!(
            "{} is a compressed log that ends early, as after a crash: replaying the {} whole events in it",
            path.display(),
            events.len()
        )
    });
    Ok(EventLog {
        header,
        events,
        truncated: stream_cut,
        warning,
    })
}

/// Converts one line of a log older than format version 4: a performed command recorded as text,
/// `{"event": {"Fault": {"description", "effect"}}}`, becomes `Performed` with the command read from its
/// description (the dashboard's toggles, which older logs wrote as `pause/resume 2`, `toggle cut 1->2`,
/// `cycle delay 2`, `workload toggle|faster|slower|switch`, as the toggle commands), and an expiry
/// (`#4 cut 1->2 for 3s ends`) becomes `FaultEnded`. A description no command reads becomes a `Note` with its
/// words, so the feed still shows it. Every other line is returned as it is.
pub fn upgrade_v3(mut line: Value) -> Value {
    use crate::command::{self, Command, FaultCmd};
    use crate::state::{Event, FaultEnd};
    let Some(old) = line.get("event").and_then(|e| e.get("Fault")) else {
        return line;
    };
    let text = |k: &str| old.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (description, effect) = (text("description"), text("effect"));
    let fault = |words: &str| -> Option<FaultCmd> {
        let mut w = words.split_whitespace();
        let verb = w.next()?;
        let rest: Vec<&str> = w.collect();
        match command::parse(words) {
            Ok(Command::Fault(f)) => Some(f),
            _ => command::parse_fault(verb, &rest).ok(),
        }
    };
    let expiry = description
        .strip_prefix('#')
        .and_then(|d| d.strip_suffix(" ends"))
        .and_then(|d| d.split_once(' '))
        .and_then(|(id, f)| Some((id.parse::<u64>().ok()?, fault(f)?)));
    let legacy = |d: &str| -> Option<Command> {
        let target = |w: &str| w.parse().ok().map(command::Target::Node);
        Some(match d.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["pause/resume", n] => Command::TogglePause(target(n)?),
            ["cycle", "delay", n] => Command::CycleDelay(target(n)?),
            ["cycle", "loss", n] => Command::CycleLoss(target(n)?),
            ["toggle", ..] => Command::ToggleFault(fault(d.strip_prefix("toggle ")?)?),
            ["workload", "toggle"] => Command::Workload(None),
            ["workload", "faster"] => Command::WorkloadStep(true),
            ["workload", "slower"] => Command::WorkloadStep(false),
            ["workload", "switch"] => Command::SetWorkloadKind(None),
            _ => return None,
        })
    };
    // The node a command hit, as the effect named it ("kill node 2 (leader, term 4)").
    let node = effect.find("node ").and_then(|at| {
        effect[at + 5..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    let event = if let Some((id, fault)) = expiry {
        Event::FaultEnded {
            id,
            fault,
            why: FaultEnd::Expired,
        }
    } else if let Some(command) = command::parse(&description)
        .ok()
        .or_else(|| legacy(&description))
    {
        Event::Performed {
            node: command.target().and(node),
            command,
            effect,
        }
    } else {
        Event::Note {
            text: if effect.is_empty() {
                description
            } else {
                effect
            },
        }
    };
    if let (Some(slot), Ok(v)) = (line.get_mut("event"), serde_json::to_value(event)) {
        *slot = v;
    }
    line
}

fn read_header(path: &Path, line: &[u8]) -> Result<EventLogHeader, EventLogError> {
    let not_squall = || EventLogError::NotSquallLog {
        path: path.to_path_buf(),
        first_line: shorten(line),
    };
    let value: Value = serde_json::from_slice(line).map_err(|_| not_squall())?;
    let Some(found) = value.get("squall_event_log").and_then(Value::as_u64) else {
        return Err(not_squall());
    };
    if !(u64::from(OLDEST_READABLE_VERSION)..=u64::from(FORMAT_VERSION)).contains(&found) {
        return Err(EventLogError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            written_by: value
                .get("squall_version")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    serde_json::from_value(value).map_err(|e| EventLogError::Corrupt {
        path: path.to_path_buf(),
        line: 1,
        reason: format!("bad header: {e}"),
        text: shorten(line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_log_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("events.jsonl.gz");
        assert_eq!(next_free_path(&base), base);
        std::fs::write(&base, "x").unwrap();
        let second = dir.path().join("events-2.jsonl.gz");
        assert_eq!(next_free_path(&base), second);
        std::fs::write(&second, "x").unwrap();
        assert_eq!(next_free_path(&base), dir.path().join("events-3.jsonl.gz"));
        let plain = dir.path().join("run");
        std::fs::write(&plain, "x").unwrap();
        assert_eq!(next_free_path(&plain), dir.path().join("run-2"));
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Ev {
        Leader { at_ms: u64, node: u32, term: u64 },
        Fault { at_ms: u64, what: String },
    }

    fn sample() -> Vec<Ev> {
        vec![
            Ev::Leader {
                at_ms: 10,
                node: 1,
                term: 1,
            },
            Ev::Fault {
                at_ms: 2_000,
                what: "kill node 1 (leader, term 1) — ✓".into(),
            },
            Ev::Leader {
                at_ms: 2_400,
                node: 3,
                term: 2,
            },
        ]
    }

    fn write_sample(path: &Path) {
        let w = EventLogWriter::create(path, "c-42").unwrap();
        for e in sample() {
            w.append(e);
        }
        w.finish().unwrap();
    }

    #[test]
    fn round_trip_with_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        write_sample(&path);
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert_eq!(log.events, sample());
        assert!(!log.truncated && log.warning.is_none());
        assert_eq!(log.header.squall_event_log, FORMAT_VERSION);
        assert_eq!(log.header.cluster_id, "c-42");
        assert_eq!(log.header.squall_version, SQUALL_VERSION);
        assert!(
            humantime::parse_rfc3339(&log.header.created).is_ok(),
            "{}",
            log.header.created
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("{{\"squall_event_log\":{FORMAT_VERSION},")),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4);
    }

    #[test]
    fn dropping_the_writer_flushes_everything_sent_from_many_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drop.jsonl");
        let w = EventLogWriter::<Ev>::create(&path, "c").unwrap();
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let w = &w;
                s.spawn(move || {
                    for i in 0..1_000 {
                        w.append(Ev::Leader {
                            at_ms: i,
                            node: t,
                            term: i,
                        });
                    }
                });
            }
        });
        drop(w);
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert_eq!(log.events.len(), 4_000);
    }

    #[test]
    fn a_file_that_is_not_a_squall_log_is_named_with_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.cast");
        std::fs::write(
            &path,
            "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"x\"]\n",
        )
        .unwrap();
        let err = read_event_log::<Ev>(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EventLogError::NotSquallLog { .. }), "{msg}");
        assert!(
            msg.contains("demo.cast") && msg.contains("not a squall event log"),
            "{msg}"
        );
        assert!(msg.contains("\\\"version\\\":2"), "{msg}");

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "just some notes\n").unwrap();
        let msg = read_event_log::<Ev>(&text).unwrap_err().to_string();
        assert!(
            msg.contains("notes.txt") && msg.contains("just some notes"),
            "{msg}"
        );

        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        let msg = read_event_log::<Ev>(&empty).unwrap_err().to_string();
        assert!(
            msg.contains("empty.jsonl") && msg.contains("is empty"),
            "{msg}"
        );

        let missing = dir.path().join("missing.jsonl");
        let msg = read_event_log::<Ev>(&missing).unwrap_err().to_string();
        assert!(msg.contains("missing.jsonl"), "{msg}");
    }

    #[test]
    fn every_readable_version_reads() {
        let dir = tempfile::tempdir().unwrap();
        for v in OLDEST_READABLE_VERSION..=FORMAT_VERSION {
            let path = dir.path().join(format!("v{v}.jsonl"));
            let header = format!(
                "{{\"squall_event_log\":{v},\"created\":\"2026-01-01T00:00:00Z\",\"cluster_id\":\"c\"}}\n"
            );
            std::fs::write(&path, header).unwrap();
            let log = read_event_log::<Ev>(&path).unwrap_or_else(|e| panic!("version {v}: {e}"));
            assert_eq!(log.header.squall_event_log, v);
        }
    }

    #[test]
    fn newer_and_older_versions_name_both_versions_and_the_squall_that_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        for (found, age) in [(FORMAT_VERSION + 1, "newer"), (0, "older")] {
            let path = dir.path().join(format!("v{found}.jsonl"));
            let header = format!(
                "{{\"squall_event_log\":{found},\"created\":\"2026-01-01T00:00:00Z\",\"cluster_id\":\"c\",\"squall_version\":\"9.9.{found}\"}}\n"
            );
            std::fs::write(&path, header).unwrap();
            let err = read_event_log::<Ev>(&path).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, EventLogError::UnsupportedVersion { .. }),
                "{msg}"
            );
            assert!(msg.contains(&format!("v{found}.jsonl")), "{msg}");
            assert!(msg.contains(&format!("format version {found}")), "{msg}");
            assert!(
                msg.contains(&format!(
                    "format versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}"
                )),
                "{msg}"
            );
            assert!(msg.contains(age), "{msg}");
            assert!(
                msg.contains(&format!("replay it with squall 9.9.{found}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_cut_off_last_line_replays_the_whole_lines_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.jsonl");
        write_sample(&path);
        let full = std::fs::read(&path).unwrap();
        // Cut inside the last event at every point, including inside the multi-byte characters.
        let last_start = full[..full.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start + 1..full.len() - 1 {
            std::fs::write(&path, &full[..cut]).unwrap();
            let log: EventLog<Ev> = read_event_log(&path).unwrap();
            assert!(log.truncated, "cut at {cut}");
            assert_eq!(log.events, sample()[..2], "cut at {cut}");
            let warning = log.warning.unwrap();
            assert!(
                warning.contains("crash.jsonl") && warning.contains("line 4"),
                "{warning}"
            );
            assert!(warning.contains("2 whole events"), "{warning}");
        }
        // Only the final newline lost: nothing is missing.
        std::fs::write(&path, &full[..full.len() - 1]).unwrap();
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert!(!log.truncated);
        assert_eq!(log.events, sample());
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        write_sample(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "{\"kind\":\"fault\",\"at_ms\":\"soon\"}";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let err = read_event_log::<Ev>(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, EventLogError::Corrupt { line: 3, .. }),
            "{msg}"
        );
        assert!(msg.contains("bad.jsonl") && msg.contains("line 3"), "{msg}");
        assert!(msg.contains("soon"), "{msg}");

        // A bad last line that does end in a newline was written whole, so it is corrupt, not cut off.
        lines[2] = "{\"kind\":\"leader\",\"at_ms\":1,\"node\":1,\"term\":1}";
        lines[3] = "garbage";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let err = read_event_log::<Ev>(&path).unwrap_err();
        assert!(
            matches!(err, EventLogError::Corrupt { line: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn compressed_logs_round_trip_and_a_cut_stream_replays_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl.gz");
        let w = EventLogWriter::<u64>::create(&path, "c").unwrap();
        assert!(w.compressed());
        for i in 0..5000u64 {
            w.append(i);
        }
        w.finish().unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(raw.starts_with(&[0x1f, 0x8b]), "gzip magic");
        let log = read_event_log::<u64>(&path).unwrap();
        assert_eq!(log.events, (0..5000).collect::<Vec<_>>());
        assert!(!log.truncated);
        // Cut the file short, as a crash would: what decodes still replays, with a warning.
        std::fs::write(&path, &raw[..raw.len() / 2]).unwrap();
        let log = read_event_log::<u64>(&path).unwrap();
        assert!(log.truncated, "a cut stream is reported");
        assert!(log.warning.unwrap().contains("ends early"));
        assert!(log.events.len() < 5000);
        assert!(
            log.events.iter().enumerate().all(|(i, e)| *e == i as u64),
            "a prefix, in order"
        );
    }
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;
    use crate::command::{Command, Target, parse};
    use crate::state::{Event, FaultEnd, Stamped};

    #[test]
    fn a_format_3_log_reads_as_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.jsonl");
        let lines = [
            r##"{"squall_event_log":3,"created":"2026-01-01T00:00:00Z","cluster_id":"c"}"##,
            r##"{"at_ms":100,"event":{"Fault":{"description":"kill 4","effect":"kill node 4 (leader, term 3)"}}}"##,
            r##"{"at_ms":200,"event":{"Fault":{"description":"pause/resume 2","effect":"pause node 2"}}}"##,
            r##"{"at_ms":300,"event":{"Fault":{"description":"cut 1->2 for 2s","effect":"#1 cut 1->2 for 2s on 1 link"}}}"##,
            r##"{"at_ms":2300,"event":{"Fault":{"description":"#1 cut 1->2 for 2s ends","effect":"fault #1 (cut 1->2 for 2s) ended after 2s"}}}"##,
            r##"{"at_ms":2400,"event":{"Fault":{"description":"something else","effect":"words"}}}"##,
            r##"{"at_ms":2500,"event":"Quit"}"##,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let log = read_event_log::<Stamped>(&path).unwrap();
        let events: Vec<Event> = log.events.into_iter().map(|s| s.event).collect();
        assert_eq!(
            events,
            vec![
                Event::Performed {
                    command: Command::Kill(Target::Node(4)),
                    node: Some(4),
                    effect: "kill node 4 (leader, term 3)".into(),
                },
                Event::Performed {
                    command: Command::TogglePause(Target::Node(2)),
                    node: Some(2),
                    effect: "pause node 2".into(),
                },
                Event::Performed {
                    command: parse("cut 1->2 for 2s").unwrap(),
                    node: None,
                    effect: "#1 cut 1->2 for 2s on 1 link".into(),
                },
                Event::FaultEnded {
                    id: 1,
                    fault: crate::command::parse_fault("cut", &["1->2", "for", "2s"]).unwrap(),
                    why: FaultEnd::Expired,
                },
                Event::Note {
                    text: "words".into()
                },
                Event::Quit,
            ]
        );
    }
}
