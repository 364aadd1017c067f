//! The session event log: JSON Lines with a versioned header, written on a background thread.
//!
//! The first line is a header object `{"squall_event_log": FORMAT_VERSION, "created": ..., "cluster_id":
//! ..., "squall_version": ..., "closing_record": true}`; every further line is one event, and a log that was
//! closed ends with a closing record `{"squall_event_log_end": {"events": N}}`. The writer is generic over
//! the event type so this module knows nothing of the cluster; the reader gives errors a person can act on for
//! a file that is not a squall log, a log of another format version, or a corrupt line, and reads a log that
//! ended early (a cut-off last line, a compressed stream that stops, no closing record: as after a crash) up
//! to its last whole event, marking it truncated with a warning that says where.
//!
//! A path ending in `.gz` is written gzip-compressed (the default for sessions: a busy cluster's statuses
//! compress about forty-fold). Every event reaches the file within [`FLUSH_EVERY`] of being queued: a flush
//! ends the deflate block with a sync flush and writes it out, so a reader of a file cut at any point after
//! it decodes everything up to it. A crash (`kill -9` included: the written bytes are in the page cache)
//! loses at most that long. The reader streams ([`EventLogReader`]): memory is one line, not the file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
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

/// The longest an event waits in the writer before it is in the file (each flush of a compressed log ends a
/// deflate block, so not after every event; at most five a second costs a few bytes each).
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The key of the closing record, the last line of a log that was closed rather than cut off.
const END_KEY: &str = "squall_event_log_end";

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
    /// Whether the writer ends the log with a closing record, so a log without one was cut off. Logs from
    /// before it existed lack the field and are judged by their last line alone.
    #[serde(default)]
    pub closing_record: bool,
}

/// A whole event log read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLog<T> {
    /// The first line.
    pub header: EventLogHeader,
    /// Every whole event, in file order.
    pub events: Vec<T>,
    /// Whether the log ended early (a cut-off last line, left out of `events`; a compressed stream that
    /// stops; no closing record): the session's last moments are missing.
    pub truncated: bool,
    /// A message for the person reading, set when `truncated` is: that the log is truncated and where.
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
    /// The first write error, set by the writer thread when it happens (so a session can stop at once).
    failure: Arc<OnceLock<String>>,
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
            closing_record: true,
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
        let failure = Arc::new(OnceLock::new());
        let report = failure.clone();
        let thread = std::thread::Builder::new()
            .name("squall-event-log".into())
            .spawn(move || write_events(out, rx, &thread_path, compressed, &report))
            .map_err(io_err)?;
        Ok(EventLogWriter {
            path,
            tx: Some(tx),
            thread: Some(thread),
            compressed,
            failure,
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

    /// The first error writing the file (`event log PATH: CAUSE`), as soon as the writer thread met it; `None`
    /// while every write so far succeeded. Everything queued after it is lost: the log ends there.
    pub fn failed(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
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
/// An event is flushed at most [`FLUSH_EVERY`] after the first unflushed one was written, however busy the
/// queue (waiting for a quiet moment could wait forever under a steady stream); a plain log also whenever the
/// thread has caught up. When every sender is gone the closing record goes last.
fn write_events<T: Serialize>(
    mut out: Box<dyn Write + Send>,
    rx: Receiver<T>,
    path: &Path,
    compressed: bool,
    report: &OnceLock<String>,
) -> Result<(), EventLogError> {
    let mut failed: Option<EventLogError> = None;
    let io_err = |cause| EventLogError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut written: u64 = 0;
    // When the oldest event not yet flushed was written.
    let mut dirty_since: Option<Instant> = None;
    loop {
        let next = match dirty_since {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(_) if !compressed => rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
            }),
            Some(since) => rx.recv_timeout(FLUSH_EVERY.saturating_sub(since.elapsed())),
        };
        match next {
            Ok(event) => {
                if failed.is_none() {
                    failed = serde_json::to_writer(&mut out, &event)
                        .map_err(|cause| EventLogError::Serialize {
                            path: path.to_path_buf(),
                            cause,
                        })
                        .and_then(|()| out.write_all(b"\n").map_err(io_err))
                        .err();
                    written += 1;
                }
                let since = *dirty_since.get_or_insert_with(Instant::now);
                if since.elapsed() < FLUSH_EVERY {
                    continue;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if failed.is_none() && dirty_since.is_some() {
            failed = out.flush().map_err(io_err).err();
        }
        if let Some(e) = &failed {
            report.get_or_init(|| e.to_string());
        }
        dirty_since = None;
    }
    if failed.is_none() {
        let end = serde_json::json!({ END_KEY: { "events": written } });
        failed = writeln!(out, "{end}")
            .and_then(|()| out.flush())
            .map_err(io_err)
            .err();
    }
    // Dropping the encoder writes the gzip trailer.
    drop(out);
    failed.map_or(Ok(()), Err)
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

/// Reads a whole event log into memory. A log that ended early is not an error: the events before the cut
/// are returned with `truncated` set and a warning to show. Use [`EventLogReader`] to stream a long log.
pub fn read_event_log<T: DeserializeOwned>(
    path: impl AsRef<Path>,
) -> Result<EventLog<T>, EventLogError> {
    let mut reader = EventLogReader::open(path)?;
    let mut events = Vec::new();
    for event in &mut reader {
        events.push(event?);
    }
    Ok(EventLog {
        header: reader.header().clone(),
        events,
        truncated: reader.truncated(),
        warning: reader.warning().map(str::to_owned),
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

/// Reads an event log one event at a time (gzip or plain), holding one line in memory.
///
/// Iterate for the events; an error ends the iteration. Once it has ended, [`EventLogReader::truncated`]
/// and [`EventLogReader::warning`] say whether the log ended early (a cut-off last line, a compressed
/// stream that stops, or no closing record in a log whose header promises one) and where.
pub struct EventLogReader<T> {
    path: PathBuf,
    input: Box<dyn io::BufRead>,
    header: EventLogHeader,
    /// 1-based number of the line read last.
    line: usize,
    events: u64,
    /// Set once the iteration has ended.
    ending: Option<Ending>,
    buf: Vec<u8>,
    _events: PhantomData<fn() -> T>,
}

/// How a log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// With its closing record, or (a log from before closing records) with a whole last line.
    Closed,
    /// Early; the text says how and where.
    Truncated(String),
    /// With an error (already returned).
    Failed,
}

impl<T: DeserializeOwned> EventLogReader<T> {
    /// Opens `path` and reads its header.
    ///
    /// # Errors
    /// The file cannot be read, is empty, is not a squall event log, or is in a format version this build
    /// does not read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EventLogError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |cause| EventLogError::Io {
            path: path.clone(),
            cause,
        };
        let mut file = io::BufReader::new(File::open(&path).map_err(io_err)?);
        let gzip = io::BufRead::fill_buf(&mut file)
            .map_err(io_err)?
            .starts_with(&[0x1f, 0x8b]);
        let mut input: Box<dyn io::BufRead> = if gzip {
            Box::new(io::BufReader::new(flate2::bufread::MultiGzDecoder::new(
                file,
            )))
        } else {
            Box::new(file)
        };
        let mut first = Vec::new();
        let read = read_line(&mut *input, &mut first);
        if first.is_empty() {
            return Err(match read {
                Err(cause) if !gzip => io_err(cause),
                _ => EventLogError::Empty { path },
            });
        }
        let header = read_header(&path, &first)?;
        Ok(EventLogReader {
            path,
            input,
            header,
            line: 1,
            events: 0,
            ending: None,
            buf: Vec::new(),
            _events: PhantomData,
        })
    }

    /// The log's first line.
    pub fn header(&self) -> &EventLogHeader {
        &self.header
    }

    /// Whether the log ended early (known once the iteration has ended).
    pub fn truncated(&self) -> bool {
        matches!(self.ending, Some(Ending::Truncated(_)))
    }

    /// What to tell the person reading a log that ended early: that it is truncated and where.
    pub fn warning(&self) -> Option<&str> {
        match &self.ending {
            Some(Ending::Truncated(w)) => Some(w),
            _ => None,
        }
    }

    fn truncate(&mut self, how: String) -> Option<Result<T, EventLogError>> {
        self.ending = Some(Ending::Truncated(format!(
            "{} is truncated: {how}, as after a crash; read the {} whole events before it (the session's \
             last moments are missing)",
            self.path.display(),
            self.events
        )));
        None
    }
}

/// Reads one line into `buf` (cleared first), without its newline; `Ok(true)` when it ended in one.
fn read_line(input: &mut dyn io::BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    input.read_until(b'\n', buf)?;
    Ok(if buf.last() == Some(&b'\n') {
        buf.pop();
        true
    } else {
        false
    })
}

impl<T: DeserializeOwned> Iterator for EventLogReader<T> {
    type Item = Result<T, EventLogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ending.is_some() {
            return None;
        }
        loop {
            let Ok(whole) = read_line(&mut *self.input, &mut self.buf) else {
                // A compressed stream that stops (or cannot be read) mid-way: its last line may be part of
                // one that happens to parse, so it is dropped.
                let line = self.line + 1;
                return self.truncate(format!("its compressed stream stops inside line {line}"));
            };
            if self.buf.is_empty() && !whole {
                // The end of the file.
                if self.header.closing_record {
                    let line = self.line + 1;
                    return self
                        .truncate(format!("it ends at line {line} without its closing record"));
                }
                self.ending = Some(Ending::Closed);
                return None;
            }
            self.line += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let closing = self.buf.starts_with(format!("{{\"{END_KEY}\"").as_bytes())
                && (whole || serde_json::from_slice::<Value>(&self.buf).is_ok());
            if !whole && !closing && self.header.closing_record {
                // A log that promises a closing record and ends in a line without a newline was cut off there,
                // even if what is left happens to parse (`{"n":12` cut from `{"n":123}` does not, `12` from
                // `123` does).
                let (line, len) = (self.line, self.buf.len());
                return self.truncate(format!(
                    "it ends in a cut-off line (line {line}, {len} bytes)"
                ));
            }
            if closing {
                let mut rest = Vec::new();
                let after = read_line(&mut *self.input, &mut rest);
                if after.is_ok() && !rest.iter().all(u8::is_ascii_whitespace) {
                    self.ending = Some(Ending::Failed);
                    return Some(Err(EventLogError::Corrupt {
                        path: self.path.clone(),
                        line: self.line + 1,
                        reason: "a line after the closing record".into(),
                        text: shorten(&rest),
                    }));
                }
                self.ending = Some(Ending::Closed);
                return None;
            }
            let parsed = if self.header.squall_event_log < 4 {
                serde_json::from_slice::<Value>(&self.buf)
                    .map(upgrade_v3)
                    .and_then(serde_json::from_value::<T>)
            } else {
                serde_json::from_slice::<T>(&self.buf)
            };
            return match parsed {
                Ok(event) => {
                    self.events += 1;
                    Some(Ok(event))
                }
                Err(_) if !whole => {
                    let (line, len) = (self.line, self.buf.len());
                    self.truncate(format!(
                        "it ends in a cut-off line (line {line}, {len} bytes)"
                    ))
                }
                Err(e) => {
                    self.ending = Some(Ending::Failed);
                    Some(Err(EventLogError::Corrupt {
                        path: self.path.clone(),
                        line: self.line,
                        reason: e.to_string(),
                        text: shorten(&self.buf),
                    }))
                }
            };
        }
    }
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
        assert_eq!(text.lines().count(), 5);
        assert_eq!(
            text.lines().last(),
            Some("{\"squall_event_log_end\":{\"events\":3}}")
        );
    }

    /// The sample log without its closing record: what a killed session leaves.
    fn write_unclosed_sample(path: &Path) -> Vec<u8> {
        write_sample(path);
        let full = std::fs::read(path).unwrap();
        let end = full[..full.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        std::fs::write(path, &full[..end]).unwrap();
        full[..end].to_vec()
    }

    #[test]
    fn a_log_without_its_closing_record_is_truncated_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("killed.jsonl");
        write_unclosed_sample(&path);
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert_eq!(log.events, sample(), "every whole event is read");
        assert!(log.truncated);
        let warning = log.warning.unwrap();
        assert!(
            warning.contains("killed.jsonl is truncated")
                && warning.contains("line 5 without its closing record")
                && warning.contains("3 whole events"),
            "{warning}"
        );
        // A log from before closing records ends with its last event and is whole.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(",\"closing_record\":true", "")).unwrap();
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert!(!log.truncated && log.warning.is_none());
        assert_eq!(log.events, sample());
    }

    #[test]
    fn a_line_after_the_closing_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("appended.jsonl");
        write_sample(&path);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"kind\":\"leader\",\"at_ms\":9,\"node\":1,\"term\":9}\n");
        std::fs::write(&path, text).unwrap();
        let err = read_event_log::<Ev>(&path).unwrap_err();
        assert!(
            matches!(err, EventLogError::Corrupt { line: 6, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("after the closing record"),
            "{err}"
        );
    }

    #[test]
    fn an_open_compressed_log_holds_every_event_within_the_flush_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open.jsonl.gz");
        let w = EventLogWriter::<u64>::create(&path, "c").unwrap();
        // A steady stream for a while, then one last event; the writer stays open, as in a session that is
        // about to be killed.
        let stream_until = Instant::now() + FLUSH_EVERY * 3;
        let mut sent = 0u64;
        while Instant::now() < stream_until {
            w.append(sent);
            sent += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        w.append(sent);
        let queued = Instant::now();
        let deadline = queued + Duration::from_secs(10);
        let seen = loop {
            let log = read_event_log::<u64>(&path).unwrap();
            assert!(log.truncated, "an open log has no closing record yet");
            if log.events.last() == Some(&sent) {
                break queued.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "event {sent} not in the file 10 s after it was queued; the file holds {} events",
                log.events.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let log = read_event_log::<u64>(&path).unwrap();
        assert_eq!(log.events, (0..=sent).collect::<Vec<_>>(), "{seen:?}");
        w.finish().unwrap();
        assert!(!read_event_log::<u64>(&path).unwrap().truncated);
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
        let full = write_unclosed_sample(&path);
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
        // Only the closing record's newline lost: nothing is missing.
        write_sample(&path);
        let closed = std::fs::read(&path).unwrap();
        std::fs::write(&path, &closed[..closed.len() - 1]).unwrap();
        let log: EventLog<Ev> = read_event_log(&path).unwrap();
        assert!(!log.truncated, "{:?}", log.warning);
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
        let warning = log.warning.unwrap();
        assert!(
            warning.contains("is truncated") && warning.contains("stream stops inside line"),
            "{warning}"
        );
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
