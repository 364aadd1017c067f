//! `squall replay FILE`: the live dashboard, driven by an event log instead of a cluster.
//!
//! A [`Player`] owns the logged events, a [`ReplayController`] and the [`ClusterState`] rebuilt from the
//! events through the same [`ClusterState::apply`] a live session uses, so every replayed screen is the
//! screen the live session drew from the same events. Seeking backwards restarts from the nearest saved
//! copy of the state (a checkpoint) rather than from the very first event, so seeking stays quick on long
//! logs. [`run_replay`] puts a `Player` in a terminal; tests drive a `Player` with `TestBackend`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Frame;

use super::eventlog::{EventLog, read_event_log};
use super::replay::{Apply, ReplayController, Timed};
use crate::command::Command;
use crate::state::{ClusterState, Event, Stamped, ViewState};

impl Timed for Stamped {
    fn at_ms(&self) -> u64 {
        self.at_ms
    }

    /// `[`/`]` jump between injected faults and key actions.
    fn is_marker(&self) -> bool {
        matches!(
            self.event,
            Event::Performed { .. }
                | Event::FaultEnded {
                    why: crate::state::FaultEnd::Expired,
                    ..
                }
        )
    }
}

/// An event as the controller sees it: its time, and whether `[`/`]` land on it.
struct Landing {
    at_ms: u64,
    marker: bool,
}

impl Timed for Landing {
    fn at_ms(&self) -> u64 {
        self.at_ms
    }

    fn is_marker(&self) -> bool {
        self.marker
    }
}

/// How long after a fault its effect may show and still be where `[`/`]` land for it.
const SETTLE_MS: u64 = 1_000;

/// Where `[`/`]` land for each fault: on the report that shows its effect when one follows within
/// [`SETTLE_MS`] (a kill's exit, a network fault's link report), so the faults line shows the fault as the
/// live screen showed it at that moment; on the fault itself otherwise.
fn landing_points(events: &[Stamped]) -> Vec<Landing> {
    let mut out: Vec<Landing> = events
        .iter()
        .map(|e| Landing {
            at_ms: e.at_ms,
            marker: false,
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        let command = match &e.event {
            Event::Performed { command, .. } => Some(command),
            Event::FaultEnded {
                why: crate::state::FaultEnd::Expired,
                ..
            } => None,
            _ => continue,
        };
        let effect = |ev: &Event| match (ev, command) {
            (Event::Process { state, .. }, Some(c)) => {
                matches!(
                    c,
                    Command::Kill(_) | Command::Terminate(_) | Command::PowerCut(..)
                ) && !state.is_alive()
            }
            (Event::Links { .. }, Some(c)) => matches!(
                c,
                Command::Fault(_)
                    | Command::ToggleFault(_)
                    | Command::Heal(_)
                    | Command::CycleDelay(_)
                    | Command::CycleLoss(_)
            ),
            _ => false,
        };
        let settled = events[i + 1..]
            .iter()
            .take_while(|later| later.at_ms <= e.at_ms + SETTLE_MS)
            .position(|later| effect(&later.event))
            .map_or(i, |k| i + 1 + k);
        out[settled.max(i)].marker = true;
    }
    out
}

/// How often a checkpoint of the state is kept while playing forward, in events.
const CHECKPOINT_EVERY: usize = 2_000;

/// How long the replay waits for a key before advancing the clock: the frame interval.
const FRAME: Duration = Duration::from_millis(50);

/// The key hints shown in the footer during a replay.
const REPLAY_KEYS: &str = "space play/pause  +/- speed  ←/→ 5 s  [/] fault  Home/End  ↑/↓ select  PgUp/PgDn feed  Tab panel  ? help  q quit";

/// Whether the replay goes on after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep replaying.
    Continue,
    /// The person asked to quit.
    Quit,
}

/// A replay in progress: events, position, and the state and view they produce.
pub struct Player {
    events: Vec<Stamped>,
    controller: ReplayController,
    state: ClusterState,
    view: ViewState,
    /// Shown in the banner when the log was cut off.
    warning: Option<String>,
    /// Saved states after the first `n` events, `n` ascending.
    checkpoints: Vec<(usize, ClusterState)>,
    checkpoint_every: usize,
}

impl Player {
    /// A player at the start of `log`, read from the file `source`, with the message record beside it (the
    /// `M` panel's messages) folded in when the session kept one.
    pub fn new(log: EventLog<Stamped>, source: &Path) -> Self {
        let name = source
            .file_name()
            .unwrap_or(source.as_os_str())
            .to_string_lossy()
            .into_owned();
        let (events, note) = super::messages::with_messages(log.events, source);
        let mut player = Self::from_events(events, &name, log.warning);
        if let Some(note) = note {
            player.view.footer = player
                .view
                .footer
                .take()
                .map(|f| format!("⚠ {note}  │ {f}"));
        }
        player
    }

    /// A player at the start of `events`; `source` names them and `warning`, when
    /// set, says the log was cut off (both shown in the footer).
    pub fn from_events(events: Vec<Stamped>, source: &str, warning: Option<String>) -> Self {
        let controller = ReplayController::new(&landing_points(&events));
        let mut view = ViewState::new();
        view.replay = true;
        view.footer = Some(match &warning {
            Some(_) => format!(
                "⚠ {source} is truncated: replaying up to its last whole event  │ {REPLAY_KEYS}"
            ),
            None => REPLAY_KEYS.to_owned(),
        });
        let mut player = Player {
            events,
            controller,
            state: ClusterState::new(),
            view,
            warning,
            checkpoints: Vec::new(),
            checkpoint_every: CHECKPOINT_EVERY,
        };
        player.refresh_banner();
        player
    }

    /// The state the replay shows now.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The view (selection, overlays, and the replay's banner and footer).
    pub fn view(&self) -> &ViewState {
        &self.view
    }

    /// The position, speed and play/pause.
    pub fn controller(&self) -> &ReplayController {
        &self.controller
    }

    /// The events being replayed.
    pub fn events(&self) -> &[Stamped] {
        &self.events
    }

    /// Advances by `elapsed` wall time at the replay speed.
    pub fn tick(&mut self, elapsed: Duration) {
        let apply = self.controller.tick(elapsed);
        self.apply(apply);
    }

    /// Moves to `t_ms` since the session began.
    pub fn seek_to(&mut self, t_ms: u64) {
        let apply = self.controller.seek_to(t_ms);
        self.apply(apply);
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) -> Flow {
        if key.kind == KeyEventKind::Release {
            return Flow::Continue;
        }
        if self.view.help {
            // As in the live dashboard: `?` turns the page, `q` quits (the help says so), any other key closes.
            match key.code {
                KeyCode::Char('q') => return Flow::Quit,
                KeyCode::Char('?') => {
                    self.view.help_page = (self.view.help_page + 1) % crate::input::HELP_PAGES;
                }
                _ => self.view.help = false,
            }
            return Flow::Continue;
        }
        let c = &mut self.controller;
        let apply = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Flow::Quit,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Flow::Quit;
            }
            KeyCode::Char(' ') => c.toggle_pause(),
            KeyCode::Char('+') | KeyCode::Char('=') => {
                c.faster();
                c.seek_by(0)
            }
            KeyCode::Char('-') | KeyCode::Char('_') => {
                c.slower();
                c.seek_by(0)
            }
            KeyCode::Left => c.seek_back(),
            KeyCode::Right => c.seek_forward(),
            KeyCode::Char('[') => c.prev_marker(),
            KeyCode::Char(']') => c.next_marker(),
            KeyCode::Home => c.home(),
            KeyCode::End => c.end(),
            KeyCode::Char('?') => {
                self.view.help = true;
                return Flow::Continue;
            }
            KeyCode::Tab => {
                self.view.tab = self.view.tab.next();
                return Flow::Continue;
            }
            KeyCode::PageUp | KeyCode::PageDown => {
                let page = crate::input::FEED_PAGE;
                self.view.feed_scroll = if key.code == KeyCode::PageUp {
                    (self.view.feed_scroll + page).min(self.state.feed.len().saturating_sub(1))
                } else {
                    self.view.feed_scroll.saturating_sub(page)
                };
                return Flow::Continue;
            }
            KeyCode::Up | KeyCode::Down => {
                self.select_step(key.code == KeyCode::Down);
                return Flow::Continue;
            }
            KeyCode::Char(d @ '1'..='9') => {
                let id = u64::from(d as u8 - b'0');
                if self.state.shows_node(id) {
                    self.view.selected = Some(id);
                }
                return Flow::Continue;
            }
            _ => return Flow::Continue,
        };
        self.apply(apply);
        Flow::Continue
    }

    /// Draws the dashboard for the current position.
    pub fn draw(&self, frame: &mut Frame<'_>) {
        crate::ui::draw(frame, &self.state, &self.view);
    }

    fn select_step(&mut self, down: bool) {
        let ids: Vec<u64> = self.state.shown_ids();
        if ids.is_empty() {
            return;
        }
        let at = self
            .view
            .selected
            .and_then(|s| ids.iter().position(|&i| i == s));
        let next = match (at, down) {
            (None, _) => 0,
            (Some(i), true) => (i + 1) % ids.len(),
            (Some(i), false) => (i + ids.len() - 1) % ids.len(),
        };
        self.view.selected = Some(ids[next]);
    }

    fn apply(&mut self, apply: Apply) {
        let mut from = apply.range.start;
        if apply.reset {
            let target = apply.range.end;
            let saved = self.checkpoints.iter().rev().find(|(n, _)| *n <= target);
            (from, self.state) = match saved {
                Some((n, s)) => (*n, s.clone()),
                None => (0, ClusterState::new()),
            };
        }
        for i in from..apply.range.end {
            self.state.apply(&self.events[i]);
            let applied = i + 1;
            if applied % self.checkpoint_every == 0
                && self.checkpoints.last().is_none_or(|(n, _)| *n < applied)
            {
                self.checkpoints.push((applied, self.state.clone()));
            }
        }
        crate::input::keep_selection(&mut self.view, &self.state);
        self.refresh_banner();
    }

    fn refresh_banner(&mut self) {
        // Short: it shares the header's first row with the cluster summary.
        let (passed, faults) = self.controller.markers_passed();
        let mut banner = format!(
            "REPLAY {}  fault {passed}/{faults}",
            self.controller.status()
        );
        if self.warning.is_some() {
            banner.push_str("  ⚠ log cut off");
        }
        self.view.banner = Some(banner);
    }
}

/// Restores the terminal however the replay ends.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Replays the event log at `path` in the terminal until the person quits.
///
/// Errors (not a squall log, another format version, a corrupt line, no terminal) come back before the
/// terminal is touched; a cut-off log replays with a warning in the banner.
pub fn run_replay(path: &Path) -> anyhow::Result<()> {
    let log: EventLog<Stamped> = read_event_log(path)?;
    if let Some(w) = super::truncation_warning(&log) {
        eprintln!("squall: warning: {w}");
    }
    use crossterm::tty::IsTty as _;
    if !std::io::stdout().is_tty() || !std::io::stdin().is_tty() {
        anyhow::bail!(
            "squall replay needs a terminal: standard input and output must be a TTY (replaying {})",
            path.display()
        );
    }
    let mut player = Player::new(log, path);
    // Sets a panic hook that restores the terminal too.
    let mut terminal = ratatui::try_init().context("cannot open the terminal")?;
    let _restore = RestoreOnDrop;
    let mut last = Instant::now();
    loop {
        terminal
            .draw(|f| player.draw(f))
            .context("drawing the replay failed")?;
        if event::poll(FRAME).context("reading the keyboard failed")? {
            match event::read().context("reading the keyboard failed")? {
                TermEvent::Key(k) if player.handle_key(k) == Flow::Quit => return Ok(()),
                TermEvent::Resize(..) => terminal.autoresize().context("resizing failed")?,
                _ => {}
            }
        }
        let now = Instant::now();
        player.tick(now - last);
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::eventlog::EventLogWriter;
    use crate::state::fixture::sample_session;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    fn render_player(player: &Player) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| player.draw(f)).unwrap();
        t.backend().buffer().clone()
    }

    /// What a live session shows after the events up to `t_ms`, drawn with the replay's view.
    fn render_direct(events: &[Stamped], t_ms: u64, view: &ViewState) -> (ClusterState, Buffer) {
        let mut state = ClusterState::new();
        for e in events.iter().take_while(|e| e.at_ms <= t_ms) {
            state.apply(e);
        }
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| crate::ui::draw(f, &state, view)).unwrap();
        (state, t.backend().buffer().clone())
    }

    fn assert_same_as_live(player: &Player, events: &[Stamped]) {
        let t = player.controller().position_ms();
        let (state, screen) = render_direct(events, t, player.view());
        assert!(player.state() == &state, "state differs at {t} ms");
        assert_eq!(render_player(player), screen, "screen differs at {t} ms");
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// The fixture session written to a real log and read back, as `squall replay` does.
    /// A replay records nothing, so its header must not say `● REC` although the session it replays did
    /// record (issue 20).
    #[test]
    fn the_replay_header_does_not_claim_to_record() {
        let mut events = sample_session(3);
        let at = events.first().map_or(0, |e| e.at_ms);
        events.insert(
            0,
            Stamped::new(
                at,
                Event::Recording {
                    on: true,
                    path: Some("demo.cast".into()),
                },
            ),
        );
        let mut player = Player::from_events(events, "events.jsonl", None);
        player.seek_to(u64::MAX / 2);
        assert!(player.state().recording, "the session recorded");
        let screen = render_player(&player);
        let header: String = (0..screen.area.width)
            .map(|x| screen[(x, 0)].symbol().to_owned())
            .collect();
        assert!(!header.contains("REC"), "{header}");
    }

    fn logged_session() -> (tempfile::TempDir, std::path::PathBuf, Vec<Stamped>) {
        let events = sample_session(5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let w = EventLogWriter::create(&path, "fixture").unwrap();
        for e in &events {
            w.append(e.clone());
        }
        w.finish().unwrap();
        (dir, path, events)
    }

    #[test]
    fn the_replay_reads_the_message_record_into_the_flow_panel() {
        // teach2 item 6: `squall replay` read only the event log, so the `M` panel stayed empty although the
        // session kept its messages beside it (`events.messages.jsonl.gz`).
        use squall_chaos::{Fate, LinkId, MessageEvent};
        let (_dir, path, events) = logged_session();
        let end_us = events.last().unwrap().at_ms * 1_000;
        let m = |id: u64, sent_us: u64, fate| MessageEvent {
            id,
            link: LinkId::new(1, 2),
            kind: Some("pre-vote".into()),
            sent_us,
            fate,
        };
        let mut log = crate::record::messages::MessageLog::create(&path, "fixture").unwrap();
        log.append(&[m(1, 10_000_000, Fate::Held)], 0);
        log.append(
            &[m(
                2,
                end_us / 4,
                Fate::Delivered {
                    at_us: end_us / 4 + 500,
                },
            )],
            0,
        );
        // The held one, stepped later: its later fate.
        log.append(
            &[m(
                1,
                10_000_000,
                Fate::Delivered {
                    at_us: end_us / 4 + 900,
                },
            )],
            2,
        );
        log.finish().unwrap();
        let mut player = Player::new(read_event_log(&path).unwrap(), &path);
        player.seek_to(10_500);
        let early: Vec<_> = player.state().flow.messages().cloned().collect();
        assert_eq!(early.len(), 1, "{early:?}");
        assert_eq!(early[0].fate, Fate::Held, "not stepped yet at 10.5 s");
        player.seek_to(u64::MAX / 2);
        let flow = &player.state().flow;
        let all: Vec<_> = flow.messages().cloned().collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0].fate,
            Fate::Delivered {
                at_us: end_us / 4 + 900
            }
        );
        assert_eq!(flow.lost, 2);
        // Seeking back rebuilds the flow as it was.
        player.seek_to(10_500);
        assert_eq!(player.state().flow.messages().count(), 1);
    }

    #[test]
    fn replay_reaches_the_live_final_screen_and_the_live_screens_at_seek_points() {
        let (_dir, path, events) = logged_session();
        let log = read_event_log::<Stamped>(&path).unwrap();
        assert_eq!(log.events, events);
        let mut player = Player::new(log, &path);
        player.checkpoint_every = 7;
        // Play the whole session in uneven steps.
        let mut steps = 0;
        while player.controller().position_ms() < player.controller().total_ms() {
            player.tick(Duration::from_millis(1_337));
            steps += 1;
            assert!(steps < 1_000, "replay never reached the end");
        }
        assert_eq!(player.controller().applied(), events.len());
        assert_same_as_live(&player, &events);

        // Backwards (through checkpoints) and forwards to a few moments, and to every fault.
        let end = player.controller().total_ms();
        for t in [end / 2, 1_000, end / 3, end - 1, 0, end / 2 + 2_500] {
            player.seek_to(t);
            assert_same_as_live(&player, &events);
        }
        player.handle_key(key(KeyCode::End));
        let mut faults = 0;
        while player.controller().markers_passed().0 > 1 {
            player.handle_key(key(KeyCode::Char('[')));
            assert_same_as_live(&player, &events);
            faults += 1;
            assert!(faults < 100, "`[` never reached the first fault");
        }
        assert!(
            faults >= 2,
            "the fixture should hold several faults, saw {faults} jumps"
        );
    }

    #[test]
    fn jumping_to_a_fault_shows_it_in_force_and_the_end_shows_the_last_live_screen() {
        let events = crate::state::fixture::sample_session(5);
        let mut player = Player::from_events(events.clone(), "fixture", None);
        let mut seen_kill = false;
        let mut seen_isolate = false;
        for _ in 0..20 {
            player.handle_key(key(KeyCode::Char(']')));
            let feed_has = |t: &str| player.state().feed.iter().any(|l| l.text.starts_with(t));
            let faults = player.state().faults.join(" · ");
            if feed_has("kill node 2") && !seen_kill {
                seen_kill = true;
                assert!(faults.contains("n2 killed"), "at the kill: {faults}");
            }
            if feed_has("isolate node 2") && !seen_isolate {
                seen_isolate = true;
                assert!(faults.contains("n2 isolated"), "at the isolation: {faults}");
            }
            // Wherever `]` lands, the screen is the live state at that time.
            assert_same_as_live(&player, &events);
        }
        assert!(seen_kill && seen_isolate);

        // Events after the session's end (nodes stopping) leave the last screen as it was.
        let mut with_end = events.clone();
        let end = with_end.last().unwrap().at_ms;
        with_end.push(Stamped::new(end + 1, Event::Quit));
        with_end.push(Stamped::new(
            end + 5,
            Event::Process {
                node: 1,
                state: crate::state::ProcessState::Exited {
                    pid: 1,
                    code: Some(0),
                    signal: None,
                    reason: None,
                },
            },
        ));
        let mut player = Player::from_events(with_end, "fixture", None);
        player.handle_key(key(KeyCode::End));
        assert!(
            !player
                .state()
                .faults
                .iter()
                .any(|f| f.contains("n1 exited")),
            "{:?}",
            player.state().faults
        );
    }

    #[test]
    fn keys_control_the_replay() {
        let (_dir, path, events) = logged_session();
        let mut player = Player::new(read_event_log(&path).unwrap(), &path);
        player.tick(Duration::ZERO);
        assert!(!player.controller().is_paused());
        player.handle_key(key(KeyCode::Char(' ')));
        assert!(player.controller().is_paused());
        player.tick(Duration::from_secs(10));
        assert_eq!(player.controller().position_ms(), 0);
        player.handle_key(key(KeyCode::Char(' ')));
        player.handle_key(key(KeyCode::Char('+')));
        player.handle_key(key(KeyCode::Char('+')));
        assert_eq!(player.controller().speed(), 4.0);
        player.tick(Duration::from_secs(2));
        assert_eq!(player.controller().position_ms(), 8_000);
        player.handle_key(key(KeyCode::Char('-')));
        assert_eq!(player.controller().speed(), 2.0);
        player.handle_key(key(KeyCode::Right));
        assert_eq!(player.controller().position_ms(), 13_000);
        player.handle_key(key(KeyCode::Left));
        player.handle_key(key(KeyCode::Left));
        assert_eq!(player.controller().position_ms(), 3_000);
        assert_same_as_live(&player, &events);
        player.handle_key(key(KeyCode::Char(']')));
        let fault_at = player.controller().position_ms();
        assert!(
            events.iter().any(|e| e.at_ms == fault_at && e.is_marker()),
            "`]` went to {fault_at} ms, where no fault is"
        );
        player.handle_key(key(KeyCode::End));
        assert_eq!(
            player.controller().position_ms(),
            player.controller().total_ms()
        );
        player.handle_key(key(KeyCode::Char('3')));
        assert_eq!(player.view().selected, Some(3));
        player.handle_key(key(KeyCode::Down));
        assert_eq!(player.view().selected, Some(4));
        player.handle_key(key(KeyCode::Home));
        assert_eq!(player.controller().position_ms(), 0);
        let banner = player.view().banner.clone().unwrap();
        assert!(
            banner.starts_with("REPLAY ⏸ 2× 0:00.0/") && banner.contains("fault 0/"),
            "{banner}"
        );
        assert!(
            player
                .view()
                .footer
                .as_deref()
                .is_some_and(|f| f.contains("[/] fault"))
        );
        player.handle_key(key(KeyCode::Char('?')));
        assert!(player.view().help);
        // The help lists replay's own keys, not the live dashboard's.
        let screen = crate::ui::render_text(player.state(), player.view(), 120, 40);
        for keys in ["play / pause", "previous / next fault", "faster / slower"] {
            assert!(screen.contains(keys), "{keys} missing:\n{screen}");
        }
        for live in [
            "kill (SIGKILL)",
            "kill the leader",
            "heal every network fault",
        ] {
            assert!(
                !screen.contains(live),
                "{live} is not a replay key:\n{screen}"
            );
        }
        player.handle_key(key(KeyCode::Char('?')));
        let screen = crate::ui::render_text(player.state(), player.view(), 120, 40);
        assert!(screen.contains("symbols 2/2"), "{screen}");
        assert_eq!(player.handle_key(key(KeyCode::Esc)), Flow::Continue);
        assert!(!player.view().help);
        player.handle_key(key(KeyCode::Char('?')));
        assert_eq!(player.handle_key(key(KeyCode::Char('q'))), Flow::Quit);
    }

    #[test]
    fn a_cut_off_log_replays_its_whole_lines_and_says_so() {
        let (_dir, path, events) = logged_session();
        let bytes = std::fs::read(&path).unwrap();
        // Without its closing record (a killed session) the log is truncated though every event is whole.
        let closing = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        std::fs::write(&path, &bytes[..closing]).unwrap();
        let log = read_event_log::<Stamped>(&path).unwrap();
        assert!(log.truncated);
        assert_eq!(log.events, events);
        let footer = Player::new(log, &path).view().footer.clone().unwrap();
        assert!(footer.contains("events.jsonl is truncated"), "{footer}");
        // Cut inside the last event too.
        std::fs::write(&path, &bytes[..closing - 7]).unwrap();
        let log = read_event_log::<Stamped>(&path).unwrap();
        assert!(log.truncated);
        let mut player = Player::new(log, &path);
        player.handle_key(key(KeyCode::End));
        assert_eq!(player.events(), &events[..events.len() - 1]);
        assert_same_as_live(&player, &events[..events.len() - 1]);
        let banner = player.view().banner.clone().unwrap();
        assert!(banner.contains("log cut off"), "{banner}");
        let footer = player.view().footer.clone().unwrap();
        assert!(footer.contains("events.jsonl is truncated"), "{footer}");
    }
}
