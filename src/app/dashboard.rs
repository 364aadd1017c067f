//! `squall up`'s dashboard: keys in, the screen drawn at most 20 times a second, the terminal restored on
//! every exit path.

use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::cli::UpArgs;
use crate::cluster::Cluster;
use crate::cluster::command::{self, Command};
use crate::input::{self, Action};
use crate::record::asciicast::{Recorder, TeeWriter};
use crate::session::{Broken, Session, StopSignals};
use crate::state::{ClusterState, Event, Stamped, ViewState};

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
    let text = crate::scenario::export::scenario_until(
        session.scenario_events(),
        &log.display().to_string(),
        session.state.now_ms,
    );
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// One node's answer to the log panel's fetch.
struct Fetched {
    node: u64,
    /// Asked for by a key, so a refusal is said; a periodic fetch's refusals are not repeated.
    loud: bool,
    cells: Result<Vec<squall_node::rpc::LogCell>, String>,
}

/// How often a scrolled log panel fetches its window again.
const LOG_REFETCH: Duration = Duration::from_secs(2);
/// Entries fetched back from the window's end: more than the widest panel shows.
const LOG_FETCH: u64 = 160;

/// Asks every shown node for the entries of the scrolled log window, each answer arriving on `tx`.
fn fetch_log(
    cluster: &Cluster,
    state: &ClusterState,
    view: &ViewState,
    tx: &mpsc::UnboundedSender<Fetched>,
    loud: bool,
) {
    let Some(end) = view.log_end else {
        return;
    };
    let end = end.min(state.log_end()).max(1);
    let from = end.saturating_sub(LOG_FETCH - 1).max(1);
    for node in state.shown_ids() {
        let (c, tx) = (cluster.clone(), tx.clone());
        tokio::spawn(async move {
            let cells = c.log_range(node, from, end).await;
            let _ = tx.send(Fetched { node, loud, cells });
        });
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

pub(super) async fn run(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    args: &UpArgs,
) -> Result<ExitCode, Broken> {
    use crossterm::tty::IsTty;
    if !std::io::stdout().is_tty() || !std::io::stdin().is_tty() {
        eprintln!(
            "squall: standard input/output is not a terminal; use `squall up --headless` for scripts"
        );
        return Ok(ExitCode::from(2));
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
        return Ok(crate::setup::fail(
            2,
            format!(
                "cannot put the terminal in raw mode: {e}; use `squall up --headless` without one"
            ),
        ));
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
            return Ok(crate::setup::fail(
                2,
                format!("cannot open the terminal: {e}; use `squall up --headless` without one"),
            ));
        }
    };
    let mut view = ViewState::new();
    view.selected = Some(1);
    view.message_kinds = cluster.message_kinds();
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
        Err(code) => return Ok(code),
    };
    let mut dirty = true;
    // Entries fetched for a scrolled log panel, and when they were last asked for.
    let (fetch_tx, mut fetch_rx) = mpsc::unbounded_channel::<Fetched>();
    let mut fetched_at: Option<std::time::Instant> = None;
    loop {
        // Events only mark the screen dirty; it is drawn on the next render tick (at most 20 frames a second)
        // or at once after a key, so a burst of events never costs a burst of frames.
        let mut draw_now = false;
        tokio::select! {
            // In raw mode Ctrl-C arrives as a key (mapped to quit); these cover signals sent from outside.
            _ = tokio::signal::ctrl_c() => {
                let _ = recorder.stop();
                return Ok(ExitCode::SUCCESS);
            }
            _ = signals.recv() => {
                let _ = recorder.stop();
                return Ok(ExitCode::SUCCESS);
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
            Some(f) = fetch_rx.recv() => {
                // An answer for a window no longer shown is dropped.
                if view.log_end.is_some() {
                    match f.cells {
                        Ok(cells) => { view.log_fetched.insert(f.node, cells); }
                        Err(e) => {
                            view.log_fetched.remove(&f.node);
                            if f.loud {
                                view.notice = Some(format!("log entries not fetched: {e}"));
                            }
                        }
                    }
                    dirty = true;
                }
            }
            key = keys.next() => {
                let ev = match key {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => {
                        let _ = recorder.stop();
                        return Err(Broken::Input { what: "the terminal's keys", why: e.to_string() });
                    }
                    None => continue,
                };
                match ev {
                    TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                        let action = input::map_key(k, &view);
                        if action == Action::Quit {
                            let _ = recorder.stop();
                            return Ok(ExitCode::SUCCESS);
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
                        // `log N` in the prompt scrolls the log panel (a dashboard line; the console has
                        // no log panel).
                        let action = match action {
                            Action::Submit(line) => match input::parse_log_line(&line) {
                                Some(Ok(a)) => { view.command = None; a }
                                Some(Err(error)) => {
                                    let _ = local_tx.send(Stamped::new(
                                        cluster.now_ms(),
                                        Event::ActionFailed { action: line.clone(), error },
                                    ));
                                    Action::Submit(String::new())
                                }
                                None => Action::Submit(line),
                            },
                            a => a,
                        };
                        let scrolled_before = view.log_end;
                        input::apply_view(&mut view, &action, &session.state);
                        if view.log_end != scrolled_before {
                            if view.log_end.is_none() {
                                view.log_fetched.clear();
                                fetched_at = None;
                            } else {
                                fetch_log(cluster, &session.state, &view, &fetch_tx, true);
                                fetched_at = Some(std::time::Instant::now());
                            }
                        }
                        if view.frozen && frozen.is_none() {
                            frozen = Some(session.state.clone());
                        } else if !view.frozen {
                            frozen = None;
                        }
                        // A typed partition goes through the console's parser too, so a bad grouping is
                        // refused with its reason.
                        let action = match action {
                            Action::Partition(shape) => Action::Submit(format!("partition {shape}")),
                            a => a,
                        };
                        let cmd = match &action {
                            // The fault prompt's line goes through the console's parser.
                            Action::Submit(line) if line.is_empty() => None,
                            Action::Submit(line) => match command::parse_for(line, &view.message_kinds) {
                                Ok(Command::Quit) => {
                                    let _ = recorder.stop();
                                    return Ok(ExitCode::SUCCESS);
                                }
                                // The held queue has its own panel: `held` opens it.
                                Ok(Command::Held) => {
                                    view.held = true;
                                    None
                                }
                                Ok(Command::Status | Command::Faults | Command::Links) => {
                                    // Listings answer the console; here the screen already shows them.
                                    let _ = local_tx.send(Stamped::new(
                                        cluster.now_ms(),
                                        Event::ActionFailed {
                                            action: line.clone(),
                                            error: "the dashboard shows this already: nodes in the table, faults in the \
                                                    header and the links panel, per-kind counts under the links \
                                                    matrix (m)"
                                                .into(),
                                        },
                                    ));
                                    None
                                }
                                Ok(cmd) => Some(cmd),
                                // `help` opens the help overlay, which names the running kind's message
                                // kinds (the parser's answer lists squall's Raft ones).
                                Err(_) if matches!(line.trim(), "help" | "?") => {
                                    view.help = true;
                                    None
                                }
                                Err(error) => {
                                    let _ = local_tx.send(Stamped::new(
                                        cluster.now_ms(),
                                        Event::ActionFailed { action: line.clone(), error },
                                    ));
                                    None
                                }
                            },
                            a => input::command_for(a, &view, &session.state),
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
            _ = render.tick() => {
                if let Some(broken) = session.record_failure() {
                    let _ = recorder.stop();
                    return Err(broken);
                }
                draw_now = true;
                // Scrolled, the fetched entries are asked for again every few seconds, so a divergence
                // being repaired is seen as it is.
                if view.log_end.is_some() && fetched_at.is_none_or(|t| t.elapsed() >= LOG_REFETCH) {
                    fetch_log(cluster, &session.state, &view, &fetch_tx, false);
                    fetched_at = Some(std::time::Instant::now());
                }
            }
        }
        if dirty && draw_now {
            if recorder.take_redraw_request() {
                // Not terminal.clear(): that asks the terminal for its cursor and the key stream eats the answer.
                let _ = crate::record::asciicast::force_full_redraw(&mut terminal);
            }
            let shown = frozen.as_ref().unwrap_or(&session.state);
            if let Err(e) = terminal.draw(|f| crate::ui::draw(f, shown, &view)) {
                let _ = recorder.stop();
                return Err(Broken::Terminal(e.to_string()));
            }
            dirty = false;
        }
    }
}
