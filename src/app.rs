//! The live session loop of `squall up`: one `tokio::select!` over keys (or console lines), cluster events
//! and a render tick. Nothing here awaits a node: actions run in tasks of their own and report back as events.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::cli::UpArgs;
use crate::cluster::command::{self, Command};
use crate::cluster::{Cluster, ClusterSpec, Outcome};
use crate::input::{self, Action};
use crate::record::asciicast::{Recorder, TeeWriter};
use crate::record::eventlog::EventLogWriter;
use crate::state::{ClusterState, Event, FeedKind, HoldBack, Stamped, StatusCompressor, ViewState};

/// Where the session's pieces go, decided before the cluster starts.
pub(crate) struct Session {
    log: Option<EventLogWriter<Stamped>>,
    pub(crate) state: ClusterState,
    recorder: Option<Recorder>,
    feed_seen: u64,
    compressor: StatusCompressor,
    dump_screens: Option<std::path::PathBuf>,
    applied: u64,
    /// The events a scenario is made of (settings, workload, actions), for `E` in the dashboard.
    scenario_events: Vec<Stamped>,
}

impl Session {
    /// Folds one event into the state and the event log; returns feed lines it added.
    pub(crate) fn apply(&mut self, mut e: Stamped) -> Vec<crate::state::FeedLine> {
        // The compact form is what gets applied and logged, so a replay goes through the very same updates.
        e.event = self.compressor.encode(e.event);
        self.state.apply(&e);
        self.applied += 1;
        if matches!(
            e.event,
            Event::SessionStarted { .. }
                | Event::Settings { .. }
                | Event::WorkloadKind { .. }
                | Event::Fault { .. }
        ) {
            self.scenario_events.push(e.clone());
        }
        let fault = matches!(e.event, Event::Fault { .. });
        if let Some(log) = &self.log {
            log.append(e);
        }
        if fault {
            self.dump_screen();
        }
        let new: Vec<_> = self.state.feed_since(self.feed_seen).cloned().collect();
        self.feed_seen = self.state.feed_total();
        if let Some(rec) = &self.recorder {
            for line in &new {
                if matches!(
                    line.kind,
                    FeedKind::Fault
                        | FeedKind::Leader
                        | FeedKind::Exit
                        | FeedKind::Check
                        | FeedKind::Violation
                ) {
                    rec.marker(line.text.clone());
                }
            }
        }
        new
    }

    fn dump_screen(&self) {
        if let Some(dir) = &self.dump_screens {
            let text = crate::ui::render_text(&self.state, &ViewState::new(), 160, 48);
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("screen-{}.txt", self.applied)), text);
        }
    }
}

/// Writes the session so far as a scenario file beside its event log (`scenario.toml`, or the next free
/// name); returns where.
fn export_scenario(session: &Session, args: &UpArgs) -> Result<std::path::PathBuf, String> {
    let log = args
        .events
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("events.jsonl.gz"));
    let dir = log
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let path = crate::record::eventlog::next_free_path(&dir.join("scenario.toml"));
    let text =
        crate::scenario::export::scenario_of(&session.scenario_events, &log.display().to_string());
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// A started session: the cluster, what folds its events, and where they arrive.
pub(crate) type Started = (Cluster, Session, mpsc::UnboundedReceiver<Stamped>);

/// Creates the cluster directory and the event log, starts every node, and starts the workload when `args`
/// asks for it. Errors are the exit code (2) after the message.
pub(crate) async fn start_session(args: &UpArgs, spec: ClusterSpec) -> Result<Started, ExitCode> {
    if let Err(e) = std::fs::create_dir_all(&spec.dir) {
        return Err(crate::setup::fail(
            2,
            format!(
                "cannot create cluster directory {}: {e}",
                spec.dir.display()
            ),
        ));
    }
    let events_path = args
        .events
        .clone()
        .unwrap_or_else(|| spec.dir.join("events.jsonl.gz"));
    let log = match EventLogWriter::create(&events_path, &spec.cluster_id) {
        Ok(w) => Some(w),
        Err(e) => {
            return Err(crate::setup::fail(
                2,
                format!("{e}; name a writable file with --events FILE"),
            ));
        }
    };
    let settings = Event::Settings {
        nodes: spec.nodes,
        election_timeout_ms: (
            spec.election_timeout.0.as_millis() as u64,
            spec.election_timeout.1.as_millis() as u64,
        ),
        heartbeat_ms: spec.heartbeat.as_millis() as u64,
        snapshot_every: spec.snapshot_every,
        seed: spec.seed,
        rate: spec.rate,
        disk_faults: spec.disk_faults,
        node_bin: args.node_bin.as_ref().map(|p| p.display().to_string()),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let cluster = match Cluster::start(spec, tx.clone()).await {
        Ok(c) => c,
        Err(e) => return Err(crate::setup::fail(2, format!("{e:#}"))),
    };
    let session = Session {
        log,
        state: ClusterState::new(),
        recorder: None,
        feed_seen: 0,
        compressor: StatusCompressor::new(),
        dump_screens: args.dump_screens.clone(),
        applied: 0,
        scenario_events: Vec::new(),
    };
    let mut session = session;
    session.apply(Stamped::new(cluster.now_ms(), settings));
    if let Some(kind) = args.workload {
        if kind == crate::cli::WorkloadArg::LinKv {
            let _ = cluster
                .perform(Command::SetWorkloadKind(Some(
                    crate::state::WorkloadKind::LinKv,
                )))
                .await;
        }
        let _ = cluster.perform(Command::Workload(Some(true))).await;
    }
    Ok((cluster, session, rx))
}

/// Ends a session: what is still queued goes into the event log, then the end of the session, then every
/// node stops and the log is finished.
pub(crate) async fn end_session(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
) {
    // What happened up to the end (an action's report still queued) goes into the event log, then the end of
    // the session: what the last screen showed is what a replay shows at its end. The nodes' exits at
    // shutdown follow it in the log, where they change nothing on screen.
    while let Ok(e) = rx.try_recv() {
        session.apply(e);
    }
    session.apply(Stamped::new(cluster.now_ms(), Event::Quit));
    cluster.shutdown().await;
    while let Ok(e) = rx.try_recv() {
        session.apply(e);
    }
    session.dump_screen();
    if let Some(log) = session.log.take() {
        // `up` says where the log is, once it knows whether the cluster directory is kept.
        if let Err(e) = log.finish() {
            eprintln_quiet(&format!("squall: warning: event log incomplete: {e}"));
        }
    }
}

/// Runs `squall up` (dashboard or headless) until quit; stops every node before returning.
pub async fn run(args: UpArgs, spec: ClusterSpec) -> ExitCode {
    let (cluster, mut session, mut rx) = match start_session(&args, spec).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let code = if args.headless {
        headless(&cluster, &mut session, &mut rx).await
    } else {
        dashboard(&cluster, &mut session, &mut rx, &args).await
    };
    end_session(&cluster, &mut session, &mut rx).await;
    code
}

async fn headless(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
) -> ExitCode {
    let (line_tx, mut lines) = mpsc::unbounded_channel::<Option<Result<String, String>>>();
    // Standard input is read on a thread: tokio's stdin would keep the runtime alive at exit.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut bytes = Vec::new();
            match stdin.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line_tx.send(Some(console_line(&bytes))).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = line_tx.send(None);
    });
    let mut feed = ConsoleFeed::new();
    let mut release = tokio::time::interval(Duration::from_millis(50));
    release.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    feed.out.say(format_args!(
        "squall: {} nodes up; {}",
        cluster.node_ids().len(),
        command::HEADLESS_HELP
    ));
    let mut signals = match StopSignals::new() {
        Ok(s) => s,
        Err(code) => return code,
    };
    loop {
        if feed.out.closed {
            // Whoever read the console went away (`| head`): stop as at the end of input.
            eprintln_quiet("squall: standard output closed: stopping the cluster");
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                feed.flush();
                feed.out.say(format_args!("squall: interrupted: stopping the cluster"));
                return ExitCode::SUCCESS;
            }
            why = signals.recv() => {
                feed.flush();
                feed.out.say(format_args!("squall: {why}: stopping the cluster"));
                return ExitCode::SUCCESS;
            }
            _ = release.tick() => feed.release(cluster.now_ms()),
            Some(e) = rx.recv() => feed.on_event(session, e, cluster.now_ms()),
            line = lines.recv() => {
                let Some(Some(line)) = line else {
                    feed.flush();
                    feed.out.say(format_args!("squall: end of input: stopping the cluster"));
                    return ExitCode::SUCCESS;
                };
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        feed.out.say(format_args!("error: {e}"));
                        continue;
                    }
                };
                let outcome = match line.split_whitespace().next() {
                    None => Outcome::Refused(command::EMPTY_LINE.into()),
                    Some("help" | "?") => Outcome::Listing {
                        summary: format!("help: {} groups of commands", command::HELP_LINES.len()),
                        lines: command::HELP_LINES.iter().map(|l| l.to_string()).collect(),
                        prefix: "help:",
                    },
                    Some(_) => match command::parse(&line) {
                    Ok(Command::Quit) => {
                        // Every event line held back for ordering goes out before the answer.
                        feed.flush();
                        Outcome::Quit
                    }
                    Ok(Command::Status) => {
                        let state = &session.state;
                        let lines: Vec<String> = state
                            .nodes
                            .values()
                            .map(|n| match state.membership(n.id) {
                                // Out of the leader's latest configuration, which has not committed: not removed yet.
                                Some(crate::state::MemberRole::Removed)
                                    if !n.removed
                                        && state.config.as_ref().is_some_and(|c| !c.committed) =>
                                {
                                    format!(
                                        "{} member removing (the configuration without it is not committed yet)",
                                        crate::state::describe_node(n)
                                    )
                                }
                                Some(m) => format!("{} member {}", crate::state::describe_node(n), m.as_str()),
                                None => crate::state::describe_node(n),
                            })
                            .collect();
                        Outcome::Listing {
                            summary: format!("status of {} nodes", lines.len()),
                            lines,
                            prefix: "status:",
                        }
                    }
                    // Answer in order: the console is a script's conversation partner.
                    Ok(cmd) => cluster.perform(cmd).await,
                    Err(e) => Outcome::Refused(e),
                    },
                };
                for l in outcome.console_lines() {
                    feed.out.say(format_args!("{l}"));
                }
                if outcome == Outcome::Quit {
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
}

/// How long the console holds a line back so that lines learned late still print in the order they happened.
const CONSOLE_HOLD_MS: u64 = 300;
/// The longest console line read as a command; longer ones are refused without being echoed.
const MAX_CONSOLE_LINE: usize = 1024;

/// One console line as read: its text without the line end, or why it is not a command (not UTF-8, too long).
fn console_line(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.len() > MAX_CONSOLE_LINE {
        return Err(format!(
            "a line of {} bytes is not a command (at most {MAX_CONSOLE_LINE}); type `help` for the commands",
            bytes.len()
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "the line is not valid UTF-8 (from byte {} on); commands are plain text, type `help` for them",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The headless console's event lines: each feed line held back a moment so lines learned late still print
/// in the order they happened, plus a summary line when leadership changes (and on commit progress, at most
/// once a second). Shared by `up --headless` and `squall run`.
pub(crate) struct ConsoleFeed {
    /// Standard output.
    pub(crate) out: Console,
    held: HoldBack,
    last_summary: (Option<u64>, u64),
    last_commit_line: std::time::Instant,
    last_commit: u64,
}

impl ConsoleFeed {
    pub(crate) fn new() -> Self {
        ConsoleFeed {
            out: Console::default(),
            held: HoldBack::new(CONSOLE_HOLD_MS),
            last_summary: (None, 0),
            last_commit_line: std::time::Instant::now(),
            last_commit: 0,
        }
    }

    /// Folds an event into the session and holds the lines it makes.
    pub(crate) fn on_event(&mut self, session: &mut Session, e: Stamped, now_ms: u64) {
        for line in session.apply(e) {
            self.held.push(line.at_ms, now_ms, line.text);
        }
        let s = &session.state;
        let leadership = s.leadership();
        let commit = s.commit_index();
        if leadership != self.last_summary
            || (commit != self.last_commit
                && self.last_commit_line.elapsed() >= Duration::from_secs(1))
        {
            self.held.push_summary(now_ms, summary_line(s));
            self.last_summary = leadership;
            self.last_commit = commit;
            self.last_commit_line = std::time::Instant::now();
        }
    }

    /// Prints the held lines old enough to be in order.
    pub(crate) fn release(&mut self, now_ms: u64) {
        for (at, text) in self.held.release(now_ms) {
            self.out
                .say(format_args!("{:>8.3}s  {text}", at as f64 / 1000.0));
        }
    }

    /// Prints every held line (before an answer that ends the session).
    pub(crate) fn flush(&mut self) {
        for (at, text) in self.held.drain() {
            self.out
                .say(format_args!("{:>8.3}s  {text}", at as f64 / 1000.0));
        }
    }
}

/// The headless console's standard output. A write that fails means the reader is gone; the loop then
/// stops the cluster instead of panicking as `println!` would.
#[derive(Default)]
pub(crate) struct Console {
    pub(crate) closed: bool,
    /// Every line also goes here, as terminal output of an asciicast (`squall run --record`).
    pub(crate) cast: Option<crate::record::asciicast::CastWriter>,
}

impl Console {
    pub(crate) fn say(&mut self, line: std::fmt::Arguments) {
        if let Some(cast) = &self.cast {
            cast.output(format!("{line}\r\n"));
        }
        if self.closed {
            return;
        }
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            self.closed = true;
        }
    }
}

/// A note on standard error that may be closed too.
fn eprintln_quiet(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// SIGTERM and SIGHUP (the terminal closed), so both loops stop the cluster cleanly on either, finishing the
/// event log, instead of dying with it half written.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> Result<StopSignals, ExitCode> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind, name: &str| {
            signal(kind)
                .map_err(|e| crate::setup::fail(1, format!("cannot listen for {name}: {e}")))
        };
        Ok(StopSignals {
            term: listen(SignalKind::terminate(), "SIGTERM")?,
            hup: listen(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Waits for either; says which ("terminated", "hung up").
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "terminated",
            _ = self.hup.recv() => "hung up",
        }
    }
}

/// One line on leader, term and commit, printed when it changes.
fn summary_line(s: &ClusterState) -> String {
    match s.leadership() {
        (Some(l), term) => format!("leader {l} term {term} commit {}", s.commit_index()),
        (None, term) => format!("no leader (term {term}) commit {}", s.commit_index()),
    }
}

/// Puts the terminal back however the dashboard ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

async fn dashboard(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    args: &UpArgs,
) -> ExitCode {
    use crossterm::tty::IsTty;
    if !std::io::stdout().is_tty() || !std::io::stdin().is_tty() {
        eprintln!(
            "squall: standard input/output is not a terminal; use `squall up --headless` for scripts"
        );
        return ExitCode::from(2);
    }
    // `R` records beside the event log (kept when the cluster directory is not), never into whatever directory
    // squall was started from.
    let base = args.record.clone().unwrap_or_else(|| {
        args.events
            .as_deref()
            .and_then(|e| e.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(cluster.dir())
            .join("squall.cast")
    });
    let recorder = Recorder::new(base, format!("squall — {}", cluster.dir().display()));
    session.recorder = Some(recorder.clone());
    if let Err(e) = crossterm::terminal::enable_raw_mode() {
        return crate::setup::fail(
            2,
            format!(
                "cannot put the terminal in raw mode: {e}; use `squall up --headless` without one"
            ),
        );
    }
    let _guard = TerminalGuard;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        hook(info);
    }));
    let mut stdout = std::io::stdout();
    let _ = crossterm::execute!(stdout, crossterm::terminal::EnterAlternateScreen);
    let backend = CrosstermBackend::new(TeeWriter::new(std::io::stdout(), recorder.clone()));
    // Never dropped: ratatui's drop shows the cursor and, when the terminal is gone (SIGHUP), reports that with
    // `eprintln!`, which panics on the dead terminal before the session can end cleanly. `TerminalGuard`
    // shows the cursor on every exit path instead, ignoring a terminal that is gone.
    let mut terminal = match Terminal::new(backend) {
        Ok(t) => std::mem::ManuallyDrop::new(t),
        Err(e) => {
            return crate::setup::fail(
                2,
                format!("cannot open the terminal: {e}; use `squall up --headless` without one"),
            );
        }
    };
    let mut view = ViewState::new();
    view.selected = Some(1);
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<Stamped>();
    if args.record.is_some() {
        let size = terminal.size().unwrap_or_default();
        match recorder.start(size.width, size.height) {
            Ok(p) => {
                let _ = local_tx.send(Stamped::new(
                    cluster.now_ms(),
                    Event::Recording {
                        on: true,
                        path: Some(p.display().to_string()),
                    },
                ));
            }
            Err(e) => {
                let _ = local_tx.send(Stamped::new(
                    cluster.now_ms(),
                    Event::ActionFailed {
                        action: "record".into(),
                        error: e.to_string(),
                    },
                ));
            }
        }
    }
    let mut keys = EventStream::new();
    let mut render = tokio::time::interval(Duration::from_millis(50));
    render.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut frozen: Option<ClusterState> = None;
    let mut signals = match StopSignals::new() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut dirty = true;
    loop {
        // Events only mark the screen dirty; it is drawn on the next render tick (at most 20 frames a second)
        // or at once after a key, so a burst of events never costs a burst of frames.
        let mut draw_now = false;
        tokio::select! {
            // In raw mode Ctrl-C arrives as a key (mapped to quit); these cover signals sent from outside.
            _ = tokio::signal::ctrl_c() => {
                let _ = recorder.stop();
                return ExitCode::SUCCESS;
            }
            _ = signals.recv() => {
                let _ = recorder.stop();
                return ExitCode::SUCCESS;
            }
            Some(e) = rx.recv() => {
                let before = session.state.feed.len();
                session.apply(e);
                // Scrolled back, the lines in view stay put while new ones arrive below them.
                if view.feed_scroll > 0 && !view.frozen {
                    view.feed_scroll += session.state.feed.len().saturating_sub(before);
                }
                if !view.frozen {
                    input::keep_selection(&mut view, &session.state);
                }
                dirty = true;
            }
            Some(e) = local_rx.recv() => { session.apply(e); dirty = true; }
            key = keys.next() => {
                let Some(Ok(ev)) = key else { continue };
                match ev {
                    TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                        let action = input::map_key(k, &view);
                        if action == Action::Quit {
                            let _ = recorder.stop();
                            return ExitCode::SUCCESS;
                        }
                        // The too-small screen hides the cluster: a key acting there (`K` kills the leader)
                        // would act unseen, so only quit does.
                        if crate::ui::too_small(terminal.size().unwrap_or_default().into()) {
                            continue;
                        }
                        if action == Action::ExportScenario {
                            let ev = match export_scenario(session, args) {
                                Ok(p) => Event::Note {
                                    text: format!(
                                        "wrote this session's faults as a scenario: {} (rerun it with squall run)",
                                        p.display()
                                    ),
                                },
                                Err(e) => Event::ActionFailed { action: "export scenario".into(), error: e },
                            };
                            let _ = local_tx.send(Stamped::new(cluster.now_ms(), ev));
                        }
                        if action == Action::ToggleRecord {
                            let size = terminal.size().unwrap_or_default();
                            let ev = match recorder.toggle(size.width, size.height) {
                                Ok(crate::record::asciicast::Toggled::Started(p)) => Event::Recording { on: true, path: Some(p.display().to_string()) },
                                Ok(crate::record::asciicast::Toggled::Stopped(p)) => Event::Recording { on: false, path: Some(p.display().to_string()) },
                                Err(e) => Event::ActionFailed { action: "record".into(), error: e.to_string() },
                            };
                            let _ = local_tx.send(Stamped::new(cluster.now_ms(), ev));
                        }
                        input::apply_view(&mut view, &action, &session.state);
                        if view.frozen && frozen.is_none() {
                            frozen = Some(session.state.clone());
                        } else if !view.frozen {
                            frozen = None;
                        }
                        let cmd = match &action {
                            // The fault prompt's line goes through the console's parser.
                            Action::Submit(line) => match command::parse(line) {
                                Ok(Command::Quit) => {
                                    let _ = recorder.stop();
                                    return ExitCode::SUCCESS;
                                }
                                Ok(Command::Status | Command::Faults | Command::Held | Command::Links) => {
                                    // Listings answer the console; here the screen already shows them.
                                    let _ = local_tx.send(Stamped::new(
                                        cluster.now_ms(),
                                        Event::ActionFailed {
                                            action: line.clone(),
                                            error: "the dashboard shows this already: nodes in the table, faults in the \
                                                    header and the links panel, held frames and per-kind counts (m) \
                                                    under the links matrix"
                                                .into(),
                                        },
                                    ));
                                    None
                                }
                                Ok(cmd) => Some(cmd),
                                Err(error) => {
                                    let _ = local_tx.send(Stamped::new(
                                        cluster.now_ms(),
                                        Event::ActionFailed { action: line.clone(), error },
                                    ));
                                    None
                                }
                            },
                            a => input::command_for(a, &view),
                        };
                        if let Some(cmd) = cmd {
                            if view.frozen {
                                view.notice = Some(format!("display frozen: `{cmd}` sent; space shows what it did"));
                            }
                            let c = cluster.clone();
                            tokio::spawn(async move { let _ = c.perform(cmd).await; });
                        }
                        dirty = true;
                        draw_now = true;
                    }
                    TermEvent::Resize(w, h) => {
                        recorder.resize(w, h);
                        let _ = terminal.autoresize();
                        dirty = true;
                        draw_now = true;
                    }
                    _ => {}
                }
            }
            _ = render.tick() => draw_now = true,
        }
        if dirty && draw_now {
            if recorder.take_redraw_request() {
                // Not terminal.clear(): that asks the terminal for its cursor and the key stream eats the answer.
                let _ = crate::record::asciicast::force_full_redraw(&mut terminal);
            }
            let shown = frozen.as_ref().unwrap_or(&session.state);
            if let Err(e) = terminal.draw(|f| crate::ui::draw(f, shown, &view)) {
                drop(_guard);
                return crate::setup::fail(1, format!("drawing failed: {e}"));
            }
            dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_line_that_is_not_a_command_is_refused_without_echoing_it() {
        assert_eq!(console_line(b"kill 2\r\n"), Ok("kill 2".to_string()));
        let e = console_line(b"kill \xff2\n").unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
        let long = vec![b'x'; 100_000];
        let e = console_line(&long).unwrap_err();
        assert!(e.contains("100000 bytes") && e.len() < 200, "{e}");
    }
}
