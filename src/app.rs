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
use crate::cluster::command::{self, Command, Target};
use crate::cluster::{Cluster, ClusterSpec};
use crate::input::{self, Action};
use crate::record::asciicast::{Recorder, TeeWriter};
use crate::record::eventlog::EventLogWriter;
use crate::state::{ClusterState, Event, FeedKind, Stamped, StatusCompressor, ViewState};

/// Where the session's pieces go, decided before the cluster starts.
struct Session {
    log: Option<EventLogWriter<Stamped>>,
    state: ClusterState,
    recorder: Option<Recorder>,
    feed_seen: u64,
    compressor: StatusCompressor,
    dump_screens: Option<std::path::PathBuf>,
    applied: u64,
}

impl Session {
    /// Folds one event into the state and the event log; returns feed lines it added.
    fn apply(&mut self, mut e: Stamped) -> Vec<crate::state::FeedLine> {
        // The compact form is what gets applied and logged, so a replay goes through the very same updates.
        e.event = self.compressor.encode(e.event);
        self.state.apply(&e);
        self.applied += 1;
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

/// Runs `squall up` (dashboard or headless) until quit; stops every node before returning.
pub async fn run(args: UpArgs, spec: ClusterSpec) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&spec.dir) {
        return crate::commands::fail(
            2,
            format!(
                "cannot create cluster directory {}: {e}",
                spec.dir.display()
            ),
        );
    }
    let events_path = args
        .events
        .clone()
        .unwrap_or_else(|| spec.dir.join("events.jsonl.gz"));
    let log = match EventLogWriter::create(&events_path, &spec.cluster_id) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("squall: warning: no event log: {e}");
            None
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cluster = match Cluster::start(spec, tx.clone()).await {
        Ok(c) => c,
        // A fault filesystem that cannot be mounted is a problem with the machine or the flags: exit 2.
        Err(e) if e.downcast_ref::<squall_chaos::disk::DiskError>().is_some() => {
            return crate::commands::fail(2, format!("{e:#}"));
        }
        Err(e) => return crate::commands::fail(1, format!("{e:#}")),
    };
    let mut session = Session {
        log,
        state: ClusterState::new(),
        recorder: None,
        feed_seen: 0,
        compressor: StatusCompressor::new(),
        dump_screens: args.dump_screens.clone(),
        applied: 0,
    };
    if args.workload {
        let _ = cluster.perform(Command::Workload(Some(true))).await;
    }
    let code = if args.headless {
        headless(&cluster, &mut session, &mut rx).await
    } else {
        dashboard(&cluster, &mut session, &mut rx, &args).await
    };
    cluster.shutdown().await;
    // What happened up to the end (an action's report still queued, the nodes' exits at shutdown) goes into
    // the event log too.
    while let Ok(e) = rx.try_recv() {
        session.apply(e);
    }
    session.dump_screen();
    if let Some(log) = session.log.take() {
        log.append(Stamped::new(cluster.now_ms(), Event::Quit));
        // `up` says where the log is, once it knows whether the cluster directory is kept.
        if let Err(e) = log.finish() {
            eprintln!("squall: warning: event log incomplete: {e}");
        }
    }
    code
}

async fn headless(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
) -> ExitCode {
    let (line_tx, mut lines) = mpsc::unbounded_channel::<Option<String>>();
    // Standard input is read on a thread: tokio's stdin would keep the runtime alive at exit.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if line_tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = line_tx.send(None);
    });
    let mut out = Console::default();
    let mut last_summary = (None, 0);
    let mut last_commit_line = std::time::Instant::now();
    let mut last_commit = 0;
    out.say(format_args!(
        "squall: {} nodes up; {}",
        cluster.node_ids().len(),
        command::HEADLESS_HELP
    ));
    let mut sigterm = match terminate_signal() {
        Ok(s) => s,
        Err(code) => return code,
    };
    loop {
        if out.closed {
            // Whoever read the console went away (`| head`): stop as at the end of input.
            eprintln_quiet("squall: standard output closed: stopping the cluster");
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                out.say(format_args!("squall: interrupted: stopping the cluster"));
                return ExitCode::SUCCESS;
            }
            _ = sigterm.recv() => {
                out.say(format_args!("squall: terminated: stopping the cluster"));
                return ExitCode::SUCCESS;
            }
            Some(e) = rx.recv() => {
                for line in session.apply(e) {
                    out.say(format_args!("{:>8.3}s  {}", line.at_ms as f64 / 1000.0, line.text));
                }
                // Leader and term changes print at once; commit progress at most once a second.
                let s = &session.state;
                let leadership = (s.leader, s.term);
                let commit = s.commit_index();
                if leadership != last_summary
                    || (commit != last_commit && last_commit_line.elapsed() >= Duration::from_secs(1))
                {
                    out.say(format_args!("{:>8.3}s  {}", cluster.now_ms() as f64 / 1000.0, summary_line(s)));
                    last_summary = leadership;
                    last_commit = commit;
                    last_commit_line = std::time::Instant::now();
                }
            }
            line = lines.recv() => {
                let Some(Some(line)) = line else {
                    out.say(format_args!("squall: end of input: stopping the cluster"));
                    return ExitCode::SUCCESS;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match command::parse(&line) {
                    Ok(Command::Quit) => {
                        out.say(format_args!("ok: quit"));
                        return ExitCode::SUCCESS;
                    }
                    Ok(Command::Status) => {
                        for n in session.state.nodes.values() {
                            out.say(format_args!("status: {}", crate::state::describe_node(n)));
                        }
                    }
                    Ok(cmd) => {
                        // Answer in order: the console is a script's conversation partner.
                        match cluster.perform(cmd).await {
                            Ok(effect) => out.say(format_args!("ok: {effect}")),
                            Err(e) => out.say(format_args!("error: {e}")),
                        }
                    }
                    Err(e) => out.say(format_args!("error: {e}")),
                }
            }
        }
    }
}

/// The headless console's standard output. A write that fails means the reader is gone; the loop then
/// stops the cluster instead of panicking as `println!` would.
#[derive(Default)]
struct Console {
    closed: bool,
}

impl Console {
    fn say(&mut self, line: std::fmt::Arguments) {
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

/// SIGTERM as a stream, so both loops can stop the cluster cleanly when asked to.
fn terminate_signal() -> Result<tokio::signal::unix::Signal, ExitCode> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| crate::commands::fail(1, format!("cannot listen for SIGTERM: {e}")))
}

/// One line on leader, term and commit, printed when it changes.
fn summary_line(s: &ClusterState) -> String {
    match s.leader {
        Some(l) => format!("leader {l} term {} commit {}", s.term, s.commit_index()),
        None => format!("no leader (term {}) commit {}", s.term, s.commit_index()),
    }
}

fn command_for(action: &Action, view: &ViewState) -> Option<Command> {
    let sel = view.selected.map(Target::Node);
    Some(match action {
        Action::Kill => Command::Kill(sel?),
        Action::Terminate => Command::Terminate(sel?),
        Action::PauseResume => Command::TogglePause(sel?),
        Action::Restart => Command::Restart(sel?),
        Action::Wipe => Command::Wipe(sel?),
        Action::Isolate => Command::Isolate(sel?),
        Action::CycleDelay => Command::CycleDelay(sel?),
        Action::CycleLoss => Command::CycleLoss(sel?),
        Action::TransferHere => Command::Transfer(sel?),
        Action::KillLeader => Command::Kill(Target::Leader),
        Action::Partition(shape) => Command::Partition(shape.clone()),
        Action::Heal => Command::Heal,
        Action::ToggleWorkload => Command::Workload(None),
        Action::RateUp => Command::WorkloadStep(true),
        Action::RateDown => Command::WorkloadStep(false),
        Action::Check => Command::Check,
        Action::RunCommand(line) => return crate::cluster::command::parse(line).ok(),
        _ => return None,
    })
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
    let base = args
        .record
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("squall.cast"));
    let recorder = Recorder::new(base, format!("squall — {}", cluster.dir().display()));
    session.recorder = Some(recorder.clone());
    if let Err(e) = crossterm::terminal::enable_raw_mode() {
        return crate::commands::fail(1, format!("cannot put the terminal in raw mode: {e}"));
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
    let mut terminal = match Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => return crate::commands::fail(1, format!("cannot open the terminal: {e}")),
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
    let mut sigterm = match terminate_signal() {
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
            _ = sigterm.recv() => {
                let _ = recorder.stop();
                return ExitCode::SUCCESS;
            }
            Some(e) = rx.recv() => { session.apply(e); dirty = true; }
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
                        if action == Action::ToggleRecord {
                            let size = terminal.size().unwrap_or_default();
                            let ev = match recorder.toggle(size.width, size.height) {
                                Ok(crate::record::asciicast::Toggled::Started(p)) => Event::Recording { on: true, path: Some(p.display().to_string()) },
                                Ok(crate::record::asciicast::Toggled::Stopped(_)) => Event::Recording { on: false, path: None },
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
                        if let Action::RunCommand(line) = &action
                            && let Err(error) = crate::cluster::command::parse(line)
                        {
                            let ev = Event::ActionFailed { action: line.clone(), error };
                            let _ = local_tx.send(Stamped::new(cluster.now_ms(), ev));
                        }
                        if let Some(cmd) = command_for(&action, &view) {
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
                return crate::commands::fail(1, format!("drawing failed: {e}"));
            }
            dirty = false;
        }
    }
}
