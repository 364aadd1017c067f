//! asciicast v2 recordings of exactly what the dashboard drew.
//!
//! The dashboard's terminal backend writes into a [`TeeWriter`], which passes every byte on to the real
//! terminal and, while a recording runs, collects the bytes of one frame (everything up to a `flush()`)
//! into a single `"o"` event. A [`Recorder`] is the shared handle that starts and stops recordings at run
//! time (the `R` key), adds markers (chapters in the asciinema player) and resize events, and asks the
//! caller for a full redraw when a recording starts mid-session so the file begins with a whole screen.
//!
//! File I/O happens on a background thread fed by an unbounded channel: the dashboard only ever pays for
//! a channel send, and no output event is ever dropped (the writer thread buffers with a `BufWriter`).
//!
//! [`read_cast`] parses and validates a recording; tests and the end-to-end checks use it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use serde_json::{Value, json};

/// Errors from writing or reading an asciicast file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// The recording file could not be created.
    #[error("cannot create recording {path}: {source}")]
    Create {
        /// The file that could not be created.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing to the recording failed (disk full, file removed, ...).
    #[error("cannot write recording {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The recording could not be read back.
    #[error("cannot read recording {path}: {source}")]
    Read {
        /// The file being read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a valid asciicast v2 recording.
    #[error("{path} is not a valid asciicast v2 recording: line {line}: {reason}")]
    Invalid {
        /// The file being read.
        path: PathBuf,
        /// 1-based line number of the problem.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Every `NAME-N` candidate for a new recording already exists.
    #[error("no free file name for a new recording next to {base}")]
    NoFreeName {
        /// The base name the numbered names derive from.
        base: PathBuf,
    },
}

/// One line sent to the writer thread; `t_us` is microseconds since the recording began.
struct Line {
    t_us: u64,
    code: &'static str,
    data: String,
}

/// An open asciicast v2 file being written on a background thread.
///
/// Events are timestamped when they are handed over (not when they reach the disk) and the writer thread
/// keeps times non-decreasing even when events come from several threads.
pub struct CastWriter {
    path: PathBuf,
    start: Instant,
    tx: Option<Sender<Line>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl CastWriter {
    /// Creates (or truncates) `path` and writes the asciicast v2 header for a `width`×`height` terminal.
    pub fn create(
        path: impl AsRef<Path>,
        width: u16,
        height: u16,
        title: &str,
    ) -> Result<Self, CastError> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| CastError::Create {
            path: path.clone(),
            source,
        })?;
        Self::from_file(file, path, width, height, title)
    }

    fn from_file(
        file: File,
        path: PathBuf,
        width: u16,
        height: u16,
        title: &str,
    ) -> Result<Self, CastError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": timestamp,
            "title": title,
            "env": {
                "TERM": std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
                "SHELL": std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            },
        });
        let mut out = BufWriter::new(file);
        writeln!(out, "{header}")
            .and_then(|()| out.flush())
            .map_err(|source| CastError::Write {
                path: path.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("squall-cast-writer".into())
            .spawn(move || write_lines(out, rx))
            .map_err(|source| CastError::Create {
                path: path.clone(),
                source,
            })?;
        Ok(CastWriter {
            path,
            start: Instant::now(),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// The file this recording goes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, code: &'static str, data: String) {
        let t_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Some(tx) = &self.tx {
            // A send only fails if the writer thread died; its error surfaces in `finish`.
            let _ = tx.send(Line { t_us, code, data });
        }
    }

    /// Records terminal output (an `"o"` event) at the current time.
    pub fn output(&self, data: String) {
        self.send("o", data);
    }

    /// Records a marker (an `"m"` event, a chapter in the asciinema player) at the current time.
    pub fn marker(&self, label: impl Into<String>) {
        self.send("m", label.into());
    }

    /// Records a terminal resize (an `"r"` event, data `"WxH"`) at the current time.
    pub fn resize(&self, width: u16, height: u16) {
        self.send("r", format!("{width}x{height}"));
    }

    /// Writes out everything queued, closes the file and reports any write error.
    pub fn finish(mut self) -> Result<PathBuf, CastError> {
        self.close()?;
        Ok(self.path.clone())
    }

    fn close(&mut self) -> Result<(), CastError> {
        drop(self.tx.take());
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let result = thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the recording writer thread panicked")));
        result.map_err(|source| CastError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for CastWriter {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("{e}");
        }
    }
}

/// The writer thread: one JSON array per line, flushed whenever the queue runs dry so a crash loses
/// little. After an error it keeps draining the channel so senders never notice, and reports the first
/// error when the channel closes.
fn write_lines(mut out: BufWriter<File>, rx: Receiver<Line>) -> io::Result<()> {
    let mut last_us = 0u64;
    let mut failed: Option<io::Error> = None;
    let mut next = rx.recv().ok();
    while let Some(line) = next {
        last_us = last_us.max(line.t_us);
        if failed.is_none() {
            let secs = last_us as f64 / 1_000_000.0;
            let value = json!([secs, line.code, line.data]);
            if let Err(e) = writeln!(out, "{value}") {
                failed = Some(e);
            }
        }
        next = match rx.try_recv() {
            Ok(line) => Some(line),
            Err(TryRecvError::Empty) => {
                if failed.is_none()
                    && let Err(e) = out.flush()
                {
                    failed = Some(e);
                }
                rx.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
    }
    if failed.is_none()
        && let Err(e) = out.flush()
    {
        failed = Some(e);
    }
    failed.map_or(Ok(()), Err)
}

/// The first free name in the series `base`, `stem-2.ext`, `stem-3.ext`, ... (`demo.cast`,
/// `demo-2.cast`, ...), so a new recording never overwrites an earlier one.
pub fn next_free_path(base: &Path) -> PathBuf {
    (1..)
        .map(|n| numbered_path(base, n))
        .find(|p| !p.exists())
        .unwrap_or_else(|| base.to_path_buf())
}

/// The `n`th name in the series of [`next_free_path`]; `n = 1` is `base` itself.
fn numbered_path(base: &Path, n: u32) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    base.with_file_name(name)
}

/// What [`Recorder::toggle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toggled {
    /// A new recording started into this file.
    Started(PathBuf),
    /// The recording into this file stopped and the file is complete.
    Stopped(PathBuf),
}

struct Shared {
    /// Read on every write of the backend, so it must be cheaper than the lock.
    active: AtomicBool,
    /// Bumped at each start so bytes held over from an earlier recording are never mixed into a new one.
    generation: AtomicU64,
    /// Set at each start; the caller clears the terminal so the first frame is a full redraw.
    redraw: AtomicBool,
    state: Mutex<RecState>,
}

struct RecState {
    base: PathBuf,
    title: String,
    writer: Option<CastWriter>,
}

/// A shared, cloneable handle to the session's recording: starts and stops recordings, adds markers and
/// resizes, and is what [`TeeWriter`] sends frames through.
///
/// Recordings go to `base` and, when that exists, to the next free numbered name ([`next_free_path`]):
/// a recording never overwrites a file. Call [`Recorder::stop`] before the program exits so the file is
/// complete: the terminal (which holds a clone inside its [`TeeWriter`]) is usually never dropped.
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl Recorder {
    /// A recorder that is not yet recording; recordings will be named after `base` and carry `title`.
    pub fn new(base: impl Into<PathBuf>, title: impl Into<String>) -> Self {
        Recorder {
            shared: Arc::new(Shared {
                active: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                redraw: AtomicBool::new(false),
                state: Mutex::new(RecState {
                    base: base.into(),
                    title: title.into(),
                    writer: None,
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RecState> {
        // A panic while holding this lock cannot leave the state half-updated in a harmful way.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a new recording of a `width`×`height` terminal and returns its file. If one is already
    /// running, returns that one's file and changes nothing.
    ///
    /// After this, [`Recorder::take_redraw_request`] returns `true` once: clear the terminal before the
    /// next draw so the recording starts with a whole screen.
    pub fn start(&self, width: u16, height: u16) -> Result<PathBuf, CastError> {
        let mut state = self.lock();
        if let Some(w) = &state.writer {
            return Ok(w.path().to_path_buf());
        }
        let writer = create_new_numbered(&state.base, width, height, &state.title)?;
        let path = writer.path().to_path_buf();
        state.writer = Some(writer);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.active.store(true, Ordering::SeqCst);
        self.shared.redraw.store(true, Ordering::SeqCst);
        Ok(path)
    }

    /// Stops the running recording, waits for its file to be complete and returns it; `None` if no
    /// recording was running.
    pub fn stop(&self) -> Result<Option<PathBuf>, CastError> {
        let writer = {
            let mut state = self.lock();
            self.shared.active.store(false, Ordering::SeqCst);
            state.writer.take()
        };
        writer.map(CastWriter::finish).transpose()
    }

    /// Starts a recording if none runs, otherwise stops it (the `R` key).
    pub fn toggle(&self, width: u16, height: u16) -> Result<Toggled, CastError> {
        if self.is_recording()
            && let Some(path) = self.stop()?
        {
            return Ok(Toggled::Stopped(path));
        }
        self.start(width, height).map(Toggled::Started)
    }

    /// Whether a recording is running (for the header's indicator).
    pub fn is_recording(&self) -> bool {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The file of the running recording, if any.
    pub fn current_path(&self) -> Option<PathBuf> {
        self.lock().writer.as_ref().map(|w| w.path().to_path_buf())
    }

    /// `true` once after each start: the caller should call [`force_full_redraw`] before its next draw so
    /// that the recording's first frame redraws the whole screen.
    pub fn take_redraw_request(&self) -> bool {
        self.shared.redraw.swap(false, Ordering::SeqCst)
    }

    /// Adds a marker (a chapter in the player) to the running recording; does nothing when not recording.
    pub fn marker(&self, label: impl Into<String>) {
        if let Some(w) = &self.lock().writer {
            w.marker(label);
        }
    }

    /// Records a terminal resize in the running recording; does nothing when not recording.
    pub fn resize(&self, width: u16, height: u16) {
        if let Some(w) = &self.lock().writer {
            w.resize(width, height);
        }
    }

    /// Hands one frame to the running recording, unless it is not the recording `generation` began in.
    fn output(&self, generation: u64, data: String) {
        let state = self.lock();
        if self.shared.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Some(w) = &state.writer {
            w.output(data);
        }
    }
}

/// Creates the first free numbered file with `create_new`, so two recorders never share a file.
fn create_new_numbered(
    base: &Path,
    width: u16,
    height: u16,
    title: &str,
) -> Result<CastWriter, CastError> {
    for n in 1..10_000 {
        let path = numbered_path(base, n);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return CastWriter::from_file(file, path, width, height, title),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(CastError::Create { path, source }),
        }
    }
    Err(CastError::NoFreeName {
        base: base.to_path_buf(),
    })
}

/// Turns byte chunks into UTF-8 strings, holding back a character cut in two at the end of a chunk until
/// the rest arrives. Bytes that can never be UTF-8 become U+FFFD: asciicast data must be a JSON string.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    held: Vec<u8>,
}

impl Utf8Carry {
    /// Decodes `bytes` after whatever was held back, holding back an incomplete trailing character.
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(bytes);
        let mut out = String::with_capacity(buf.len());
        let mut rest = &buf[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        None => {
                            self.held = after.to_vec();
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        out
    }

    /// Forgets anything held back (a recording ended or restarted).
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// Wraps the terminal's writer (what ratatui's `CrosstermBackend` writes into): every byte goes to the
/// terminal, and while `recorder` is recording, each `flush()` (one per drawn frame) becomes one `"o"`
/// event of everything written since the previous flush.
///
/// ```no_run
/// use squall::record::asciicast::{Recorder, TeeWriter};
/// let recorder = Recorder::new("demo.cast", "squall up");
/// let backend = ratatui::backend::CrosstermBackend::new(TeeWriter::new(std::io::stdout(), recorder.clone()));
/// let mut terminal = ratatui::Terminal::new(backend).unwrap();
/// ```
pub struct TeeWriter<W: Write> {
    inner: W,
    recorder: Recorder,
    pending: Vec<u8>,
    /// The recording generation `pending` and `carry` belong to.
    generation: u64,
    carry: Utf8Carry,
}

impl<W: Write> TeeWriter<W> {
    /// Tees `inner` into `recorder`'s recordings.
    pub fn new(inner: W, recorder: Recorder) -> Self {
        TeeWriter {
            inner,
            recorder,
            pending: Vec::new(),
            generation: 0,
            carry: Utf8Carry::default(),
        }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The recorder this writer feeds.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

impl<W: Write> Write for TeeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.recorder.is_recording() {
            let generation = self.recorder.shared.generation.load(Ordering::SeqCst);
            if generation != self.generation {
                self.pending.clear();
                self.carry.clear();
                self.generation = generation;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.inner.flush();
        if !self.pending.is_empty() {
            let data = self.carry.decode(&self.pending);
            self.pending.clear();
            if !data.is_empty() {
                self.recorder.output(self.generation, data);
            }
        }
        flushed
    }
}

/// The terminal of a dashboard whose output can be recorded.
pub type RecordingTerminal = Terminal<CrosstermBackend<TeeWriter<io::Stdout>>>;

/// Like `ratatui::try_init` (raw mode, alternate screen, a panic hook that restores the terminal; undo
/// with `ratatui::restore()`), but the backend writes through a [`TeeWriter`] feeding `recorder`.
pub fn try_init_terminal(recorder: Recorder) -> io::Result<RecordingTerminal> {
    drop(ratatui::try_init()?);
    Terminal::new(CrosstermBackend::new(TeeWriter::new(
        io::stdout(),
        recorder,
    )))
}

/// Clears the screen and forgets what was drawn, so the next draw writes every cell: what a recording
/// that starts mid-session needs for its first frame (see [`Recorder::take_redraw_request`]).
///
/// Unlike `Terminal::clear`, this never asks the terminal for its cursor position, which would wait for a
/// reply on stdin while the dashboard's own input reader may be consuming it.
pub fn force_full_redraw<B: Backend>(terminal: &mut Terminal<B>) -> Result<(), B::Error> {
    terminal.backend_mut().clear()?;
    // `swap_buffers` resets the buffer holding the last frame, and the other one is already empty:
    // the next diff is against a blank screen, which is what the terminal now shows.
    terminal.swap_buffers();
    Ok(())
}

/// The header of an asciicast v2 file, as read back by [`read_cast`].
#[derive(Debug, Clone, PartialEq)]
pub struct CastHeader {
    /// Terminal width in columns.
    pub width: u16,
    /// Terminal height in rows.
    pub height: u16,
    /// Unix time the recording began, if present.
    pub timestamp: Option<u64>,
    /// The title, if present.
    pub title: Option<String>,
    /// `env.TERM`, if present.
    pub term: Option<String>,
}

/// One event of an asciicast v2 file.
#[derive(Debug, Clone, PartialEq)]
pub struct CastEvent {
    /// Seconds since the recording began.
    pub time: f64,
    /// `"o"` output, `"i"` input, `"m"` marker or `"r"` resize.
    pub code: String,
    /// The event's data: output text, marker label, or `"WxH"`.
    pub data: String,
}

/// A whole asciicast v2 recording read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The first line.
    pub header: CastHeader,
    /// Every event, in file order.
    pub events: Vec<CastEvent>,
}

impl Cast {
    /// The labels of all markers, in order.
    pub fn markers(&self) -> Vec<&str> {
        self.events_of("m").map(|e| e.data.as_str()).collect()
    }

    /// Events with the given code (`"o"`, `"m"`, `"r"`, ...).
    pub fn events_of<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a CastEvent> + 'a {
        self.events.iter().filter(move |e| e.code == code)
    }
}

/// Reads and validates an asciicast v2 file: a version-2 header with width and height, then events
/// `[time, code, data]` with non-decreasing times and string data.
pub fn read_cast(path: impl AsRef<Path>) -> Result<Cast, CastError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| CastError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |line: usize, reason: String| CastError::Invalid {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = BufReader::new(file).lines();
    let mut next_line = |n: usize| -> Result<Option<String>, CastError> {
        lines
            .next()
            .transpose()
            .map_err(|source| CastError::Read {
                path: path.to_path_buf(),
                source,
            })
            .and_then(|l| match l {
                Some(l) if l.trim().is_empty() => Err(invalid(n, "empty line".into())),
                other => Ok(other),
            })
    };
    let first = next_line(1)?.ok_or_else(|| invalid(1, "the file is empty".into()))?;
    let header: Value =
        serde_json::from_str(&first).map_err(|e| invalid(1, format!("header is not JSON: {e}")))?;
    if header.get("version").and_then(Value::as_u64) != Some(2) {
        return Err(invalid(1, format!("header has no \"version\": 2: {first}")));
    }
    let dim = |key: &str| {
        header
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| invalid(1, format!("header lacks a numeric \"{key}\"")))
    };
    let header = CastHeader {
        width: dim("width")?,
        height: dim("height")?,
        timestamp: header.get("timestamp").and_then(Value::as_u64),
        title: header
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned),
        term: header
            .pointer("/env/TERM")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let mut events = Vec::new();
    let mut last = 0.0f64;
    let mut n = 1;
    loop {
        n += 1;
        let Some(line) = next_line(n)? else { break };
        let value: Value =
            serde_json::from_str(&line).map_err(|e| invalid(n, format!("not JSON: {e}")))?;
        let (Some(time), Some(code), Some(data), Some(3)) = (
            value.get(0).and_then(Value::as_f64),
            value.get(1).and_then(Value::as_str),
            value.get(2).and_then(Value::as_str),
            value.as_array().map(Vec::len),
        ) else {
            return Err(invalid(
                n,
                format!("not an event [time, code, data]: {line}"),
            ));
        };
        if time < last {
            return Err(invalid(n, format!("time {time} goes back from {last}")));
        }
        last = time;
        events.push(CastEvent {
            time,
            code: code.to_owned(),
            data: data.to_owned(),
        });
    }
    Ok(Cast { header, events })
}

#[cfg(test)]
#[path = "asciicast_tests.rs"]
mod tests;
