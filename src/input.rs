//! Keys to [`Action`]s, and the actions that only change what is shown.
//!
//! [`map_key`] is pure: it never performs anything. The caller hands cluster actions to the cluster layer (which
//! acts on [`ViewState::selected`] for node actions and reports the effect as an event) and visual ones to
//! [`apply_view`].

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::command::{
    Command, DELAY_STEPS_MS, FaultCmd, FaultKind, FaultTarget, LOSS_STEPS_PCT, PartitionShape,
    Target, WorkloadKind, next_rate, next_step,
};
use crate::state::{ClusterState, ProcessState, ViewState};

/// What a key asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Select the next node (wraps).
    SelectNext,
    /// Select the previous node (wraps).
    SelectPrev,
    /// Select this node id.
    Select(u64),
    /// Kill the selected node (SIGKILL).
    Kill,
    /// Terminate the selected node (SIGTERM).
    Terminate,
    /// Pause the selected node, or resume it when paused.
    PauseResume,
    /// Restart the selected node.
    Restart,
    /// Wipe the selected node's data and restart it.
    Wipe,
    /// Cut every link to and from the selected node.
    Isolate,
    /// Cycle the latency added on the selected node's links (0, 50, 200, 1000 ms).
    CycleDelay,
    /// Cycle the loss on the selected node's links (0, 10, 30, 100 %).
    CycleLoss,
    /// Transfer leadership to the selected node.
    TransferHere,
    /// Kill whichever node leads.
    KillLeader,
    /// Start a new node and make it a voter (`add`).
    AddNode,
    /// Remove the selected node from the configuration and stop it (`remove N`).
    RemoveNode,
    /// Open the partition prompt.
    PartitionMenu,
    /// Partition the cluster: `"halves"`, `"bridge"`, `"ring"` or a grouping like `"1,2|3,4,5"`.
    Partition(String),
    /// Remove every network fault.
    Heal,
    /// Start or stop the built-in client workload.
    ToggleWorkload,
    /// Switch the workload between counter and lin-kv.
    SwitchWorkload,
    /// Raise the workload rate.
    RateUp,
    /// Lower the workload rate.
    RateDown,
    /// Check the workload's counters for lost acknowledged writes.
    Check,
    /// Freeze or unfreeze the display.
    Freeze,
    /// Open or close the message-flow panel (in place of the event feed).
    FlowPanel,
    /// Open or close the help overlay.
    Help,
    /// Show the next panel (small terminals).
    NextTab,
    /// Start or stop the terminal recording.
    ToggleRecord,
    /// Write the session so far as a scenario file (`squall run` reruns it).
    ExportScenario,
    /// Scroll the event feed back (older lines) by a page.
    FeedPageUp,
    /// Scroll the event feed forward by a page.
    FeedPageDown,
    /// Show the oldest lines the feed keeps.
    FeedOldest,
    /// Follow the newest lines again.
    FeedNewest,
    /// Show the next page of the help overlay.
    HelpNextPage,
    /// Quit the session.
    Quit,
    /// Type a character into the partition prompt.
    PromptInput(char),
    /// Delete the last character of the partition prompt.
    PromptBackspace,
    /// Close the partition prompt without partitioning.
    PromptCancel,
    /// Open the fault prompt (any line of the headless vocabulary).
    CommandPrompt,
    /// Type a character into the fault prompt.
    CommandInput(char),
    /// Delete the last character of the fault prompt.
    CommandBackspace,
    /// Close the fault prompt.
    CommandCancel,
    /// Complete the verb being typed in the fault prompt (Tab), when only one fits.
    CommandComplete,
    /// Run the fault prompt's line (parsed by the caller, like a console line).
    Submit(String),
    /// Give the keyboard to the links matrix (cell cursor), or take it back.
    LinkMode,
    /// Move the links matrix's cell cursor by (columns, rows).
    LinkMove(i8, i8),
    /// A fault chosen in the links matrix for the cell's link (cut / delay / loss / hold): added, or healed
    /// when the link has it already.
    LinkFault(FaultCmd),
    /// A command chosen in the links matrix (step, drop or release held frames, heal).
    Run(Command),
    /// Teaching mode on or off: `freeze` when the nodes run their timers, `thaw` when they are frozen.
    FreezeThaw,
    /// The selected node's election timer fires now (`timeout N`).
    TimeoutHere,
    /// The leader sends its heartbeats now (`heartbeat`).
    Heartbeat,
    /// Open or close the held-queue panel.
    HeldPanel,
    /// Scroll the log panel back (older entries) by [`LOG_PAGE`].
    LogBack,
    /// Scroll the log panel on by [`LOG_PAGE`]; past the end it follows the end again.
    LogOn,
    /// Scroll the log panel so that it shows this index (`log N` in the prompt); `None` follows the end.
    LogAt(Option<u64>),
    /// Nothing.
    None,
}

impl Action {
    /// True for actions that only change the view ([`apply_view`] handles them completely).
    pub fn is_visual(&self) -> bool {
        matches!(
            self,
            Action::SelectNext
                | Action::SelectPrev
                | Action::Select(_)
                | Action::Freeze
                | Action::Help
                | Action::NextTab
                | Action::PartitionMenu
                | Action::PromptInput(_)
                | Action::PromptBackspace
                | Action::PromptCancel
                | Action::CommandPrompt
                | Action::CommandInput(_)
                | Action::CommandBackspace
                | Action::CommandCancel
                | Action::CommandComplete
                | Action::LinkMode
                | Action::LinkMove(..)
                | Action::FeedPageUp
                | Action::FeedPageDown
                | Action::FeedOldest
                | Action::FeedNewest
                | Action::HelpNextPage
                | Action::HeldPanel
                | Action::LogBack
                | Action::LogOn
                | Action::LogAt(_)
                | Action::None
        )
    }

    /// True for actions on the selected node, which need a selection to mean anything.
    pub fn needs_selection(&self) -> bool {
        matches!(
            self,
            Action::Kill
                | Action::Terminate
                | Action::PauseResume
                | Action::Restart
                | Action::Wipe
                | Action::Isolate
                | Action::CycleDelay
                | Action::CycleLoss
                | Action::TransferHere
                | Action::RemoveNode
        )
    }
}

/// One row of the dashboard's `?` page: the keys as shown, what they do, and for each key that acts on the
/// cluster the console line it sends, with `N` for the selected node and a capital word for a value that
/// depends on what the dashboard shows (`pause|resume N`: either word). The page is drawn from
/// [`KEYS`], and a test presses every key listed here and checks the command against its console form.
#[derive(Clone, Copy, Debug)]
pub struct KeyHelp {
    /// The `?` page's section.
    pub section: &'static str,
    /// The keys, as the page shows them (`k  s`).
    pub keys: &'static str,
    /// What they do.
    pub what: &'static str,
    /// Each cluster key of the row with its console form (`('k', "kill N")`); empty for keys that only change
    /// the view.
    pub console: &'static [(char, &'static str)],
}

const fn row(section: &'static str, keys: &'static str, what: &'static str) -> KeyHelp {
    KeyHelp {
        section,
        keys,
        what,
        console: &[],
    }
}

/// The live dashboard's keys, in the order of the `?` page.
pub const KEYS: &[KeyHelp] = &[
    row("selected node", "↑ ↓  1-9", "select a node"),
    KeyHelp {
        console: &[('k', "kill N"), ('s', "terminate N")],
        ..row(
            "selected node",
            "k  s",
            "kill (SIGKILL) / terminate (SIGTERM)",
        )
    },
    KeyHelp {
        console: &[('p', "pause|resume N")],
        ..row("selected node", "p", "pause / resume (SIGSTOP / SIGCONT)")
    },
    KeyHelp {
        console: &[('r', "restart N"), ('w', "wipe N")],
        ..row(
            "selected node",
            "r  w",
            "restart / wipe its data and restart",
        )
    },
    KeyHelp {
        console: &[('i', "isolate N")],
        ..row("selected node", "i", "isolate from every peer")
    },
    KeyHelp {
        console: &[('d', "delay N DUR")],
        ..row(
            "selected node",
            "d",
            "cycle latency on its links: 0, 50, 200, 1000 ms",
        )
    },
    KeyHelp {
        console: &[('l', "loss N PCT")],
        ..row(
            "selected node",
            "l",
            "cycle loss on its links: 0, 10, 30, 100 %",
        )
    },
    KeyHelp {
        console: &[('t', "transfer N")],
        ..row("selected node", "t", "transfer leadership to it")
    },
    KeyHelp {
        console: &[('D', "remove N")],
        ..row(
            "selected node",
            "D",
            "remove it from the configuration, then stop it",
        )
    },
    KeyHelp {
        console: &[('e', "timeout N")],
        ..row(
            "selected node",
            "e",
            "its election timer fires now (teaching: start an election)",
        )
    },
    KeyHelp {
        console: &[('K', "kill leader")],
        ..row("cluster", "K", "kill the leader")
    },
    KeyHelp {
        console: &[('F', "freeze|thaw")],
        ..row(
            "cluster",
            "F  H",
            "teaching: freeze / thaw the nodes' timers; H the held-queue panel",
        )
    },
    KeyHelp {
        console: &[('b', "heartbeat")],
        ..row("cluster", "b", "the leader sends its heartbeats now")
    },
    KeyHelp {
        console: &[('a', "add")],
        ..row("cluster", "a", "add a node: learner, caught up, then voter")
    },
    row(
        "cluster",
        "x",
        "partition: h halves, b bridge, r ring, or 1,2|3,4,5 ⏎",
    ),
    KeyHelp {
        console: &[('h', "heal")],
        ..row(
            "cluster",
            "h",
            "heal every fault (network; disk, clock too)",
        )
    },
    row(
        "cluster",
        "m",
        "links matrix: ←↑↓→ a link, x cut d delay l loss o hold",
    ),
    row(
        "cluster",
        ":  f",
        "any console line: cut 1->2 for 5s, powercut 2, disk 1 stall",
    ),
    KeyHelp {
        console: &[
            ('c', "workload on|off"),
            ('C', "workload lin-kv|counter"),
            ('+', "workload rate R"),
            ('-', "workload rate R"),
        ],
        ..row(
            "cluster",
            "c C + -",
            "workload: start / stop, counter ⇄ lin-kv, rate up / down",
        )
    },
    KeyHelp {
        console: &[('v', "check")],
        ..row(
            "cluster",
            "v",
            "verify: nothing acknowledged lost; lin-kv linearizable",
        )
    },
    row(
        "display",
        "space",
        "freeze the display (the cluster keeps running)",
    ),
    row(
        "display",
        "PgUp PgDn  [ ]",
        "feed / logs back, on (`log N` too); Home End: oldest / newest lines",
    ),
    row(
        "display",
        "M",
        "message flow: the last seconds of peer messages as arrows, in place of the feed",
    ),
    row("display", "R", "record to a new .cast beside the event log"),
    row(
        "display",
        "E",
        "write this session so far as a scenario file",
    ),
    row("display", "Tab", "next panel, when the terminal is small"),
    row(
        "display",
        "?  Esc",
        "next help page (symbols) / close this help",
    ),
    row(
        "display",
        "q  Ctrl-C",
        "quit: stop every node and restore the terminal",
    ),
];

/// Entries `[` and `]` scroll the log panel by.
pub const LOG_PAGE: u64 = 20;
/// How far past index N the window of `log N` ends, so N is seen with what follows it.
pub const LOG_AHEAD: u64 = 8;

/// Reads the dashboard prompt's `log` line: `log` follows the end again, `log N` shows index N. `None` when
/// the line is not a `log` line; `Some(Err)` names the bad input and what to type.
pub fn parse_log_line(line: &str) -> Option<Result<Action, String>> {
    let mut words = line.split_whitespace();
    if words.next()? != "log" {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    Some(match rest.as_slice() {
        [] => Ok(Action::LogAt(None)),
        [n] => match n.parse::<u64>() {
            Ok(i) if i > 0 => Ok(Action::LogAt(Some(i))),
            _ => Err(format!(
                "`log {n}`: the index is a whole number from 1 (`log 120` shows entry 120; `log` follows the end)"
            )),
        },
        _ => Err(format!(
            "`{line}`: `log` takes one index (`log 120`), or none to follow the end"
        )),
    })
}

/// Lines PgUp / PgDn scroll the event feed by.
pub const FEED_PAGE: usize = 10;
/// Pages of the help overlay: keys, then symbols.
pub const HELP_PAGES: usize = 2;

/// Maps one key press to an action, given what is on screen (the prompt and help overlay capture keys).
pub fn map_key(key: KeyEvent, view: &ViewState) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Action::Quit;
    }
    if let Some(text) = &view.command {
        return match key.code {
            KeyCode::Esc => Action::CommandCancel,
            KeyCode::Enter if text.trim().is_empty() => Action::CommandCancel,
            KeyCode::Enter => Action::Submit(text.trim().to_string()),
            KeyCode::Backspace => Action::CommandBackspace,
            KeyCode::Tab => Action::CommandComplete,
            KeyCode::Char(c) if !ctrl => Action::CommandInput(c),
            _ => Action::None,
        };
    }
    if let Some(text) = &view.prompt {
        // No numeric shortcuts: digits are always part of a grouping being typed.
        return match key.code {
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Enter => match text.trim() {
                "" => Action::None,
                t => Action::Partition(t.to_string()),
            },
            KeyCode::Backspace => Action::PromptBackspace,
            KeyCode::Char('h') if text.is_empty() => Action::Partition("halves".into()),
            KeyCode::Char('b') if text.is_empty() => Action::Partition("bridge".into()),
            KeyCode::Char('r') if text.is_empty() => Action::Partition("ring".into()),
            KeyCode::Char(c) if c.is_ascii_digit() || matches!(c, ',' | '|' | ' ') => {
                Action::PromptInput(c)
            }
            _ => Action::None,
        };
    }
    if view.help {
        // The help overlay says `q` quits, so it does; `?` turns its page, Esc closes it.
        return match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::Help,
            KeyCode::Char('?') | KeyCode::Tab | KeyCode::Right | KeyCode::Left => {
                Action::HelpNextPage
            }
            _ => Action::Help,
        };
    }
    if let Some((from, to)) = view.link_cursor {
        return link_key(key.code, from, to);
    }
    match key.code {
        KeyCode::Up => Action::SelectPrev,
        KeyCode::Down => Action::SelectNext,
        KeyCode::Char(c @ '1'..='9') => Action::Select(u64::from(c as u8 - b'0')),
        KeyCode::Char('k') => Action::Kill,
        KeyCode::Char('s') => Action::Terminate,
        KeyCode::Char('p') => Action::PauseResume,
        KeyCode::Char('r') => Action::Restart,
        KeyCode::Char('w') => Action::Wipe,
        KeyCode::Char('i') => Action::Isolate,
        KeyCode::Char('d') => Action::CycleDelay,
        KeyCode::Char('l') => Action::CycleLoss,
        KeyCode::Char('t') => Action::TransferHere,
        KeyCode::Char('K') => Action::KillLeader,
        KeyCode::Char('e') => Action::TimeoutHere,
        KeyCode::Char('F') => Action::FreezeThaw,
        KeyCode::Char('b') => Action::Heartbeat,
        KeyCode::Char('a') => Action::AddNode,
        KeyCode::Char('D') => Action::RemoveNode,
        KeyCode::Char('x') => Action::PartitionMenu,
        KeyCode::Char('h') => Action::Heal,
        KeyCode::Char('c') => Action::ToggleWorkload,
        KeyCode::Char('C') => Action::SwitchWorkload,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::RateUp,
        KeyCode::Char('-') | KeyCode::Char('_') => Action::RateDown,
        KeyCode::Char('v') => Action::Check,
        KeyCode::Char(' ') => Action::Freeze,
        KeyCode::Char('M') => Action::FlowPanel,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Esc if view.help => Action::Help,
        KeyCode::Tab | KeyCode::BackTab => Action::NextTab,
        KeyCode::Char('R') => Action::ToggleRecord,
        KeyCode::Char('E') => Action::ExportScenario,
        KeyCode::PageUp => Action::FeedPageUp,
        KeyCode::PageDown => Action::FeedPageDown,
        KeyCode::Home => Action::FeedOldest,
        KeyCode::End => Action::FeedNewest,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('m') => Action::LinkMode,
        KeyCode::Char('H') => Action::HeldPanel,
        KeyCode::Char('[') => Action::LogBack,
        KeyCode::Char(']') => Action::LogOn,
        KeyCode::Char(':') | KeyCode::Char('f') => Action::CommandPrompt,
        _ => Action::None,
    }
}

/// Latency the links matrix's `d` puts on a link.
pub const LINK_DELAY: Duration = Duration::from_millis(200);
/// Loss the links matrix's `l` puts on a link, in percent.
pub const LINK_LOSS_PCT: f64 = 30.0;

/// Keys while the links matrix has the keyboard: each acts on the directed link under the cursor, and a key
/// pressed again on the same link takes its fault away.
fn link_key(code: KeyCode, from: u64, to: u64) -> Action {
    let link = FaultTarget::Link(from, to);
    let toggle = |kind| Action::LinkFault(FaultCmd::new(link.clone(), kind));
    match code {
        KeyCode::Esc | KeyCode::Char('m') => Action::LinkMode,
        KeyCode::Left => Action::LinkMove(-1, 0),
        KeyCode::Right => Action::LinkMove(1, 0),
        KeyCode::Up => Action::LinkMove(0, -1),
        KeyCode::Down => Action::LinkMove(0, 1),
        KeyCode::Char('x') => toggle(FaultKind::Cut),
        KeyCode::Char('d') => toggle(FaultKind::Delay {
            delay: LINK_DELAY,
            jitter: None,
        }),
        KeyCode::Char('l') => toggle(FaultKind::Loss(LINK_LOSS_PCT)),
        KeyCode::Char('o') => toggle(FaultKind::Hold),
        KeyCode::Char('n') => Action::Run(Command::Step(link.clone(), 1)),
        KeyCode::Char('z') => Action::Run(Command::DropHeld(link.clone(), 1)),
        KeyCode::Char('a') => Action::Run(Command::Release(link)),
        KeyCode::Char('h') => Action::Run(Command::Heal(None)),
        KeyCode::Char('H') => Action::HeldPanel,
        KeyCode::Char(':') | KeyCode::Char('f') => Action::CommandPrompt,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('q') => Action::Quit,
        _ => Action::None,
    }
}

/// The command a cluster key asks for, in its console form, with node keys acting on the selected node
/// (`None` for visual keys, or node keys with nothing selected). A key that toggles is resolved here, against
/// what the dashboard shows (`state`), into the command it means: `p` pauses a running node and resumes a
/// paused one, `d` and `l` set the next latency or loss step after the one in force, `c` starts or stops the
/// workload, `+`/`-` set the next rate, `C` names the other workload, and a links-matrix key on a link that
/// has that fault sends `heal ID`. So every key sends a line the console could type, and the event log, the
/// export and a rerun hold exactly that.
pub fn command_for(action: &Action, view: &ViewState, state: &ClusterState) -> Option<Command> {
    let sel = view.selected.map(Target::Node);
    let node = |t: Target| FaultTarget::Node(t);
    Some(match action {
        Action::Kill => Command::Kill(sel?),
        Action::Terminate => Command::Terminate(sel?),
        Action::PauseResume => {
            let paused = state
                .nodes
                .get(&view.selected?)
                .is_some_and(|n| matches!(n.process, ProcessState::Paused { .. }));
            if paused {
                Command::Resume(sel?)
            } else {
                Command::Pause(sel?)
            }
        }
        Action::Restart => Command::Restart(sel?),
        Action::Wipe => Command::Wipe(sel?),
        Action::Isolate => Command::Fault(FaultCmd::new(node(sel?), FaultKind::Cut)),
        Action::CycleDelay => {
            let now = in_force(state, &node(sel?), |k| match k {
                FaultKind::Delay { delay, .. } => Some(delay.as_millis() as u64),
                _ => None,
            });
            let ms = next_step(&DELAY_STEPS_MS, now.unwrap_or(0));
            Command::Fault(FaultCmd::new(
                node(sel?),
                FaultKind::Delay {
                    delay: Duration::from_millis(ms),
                    jitter: None,
                },
            ))
        }
        Action::CycleLoss => {
            let now = in_force(state, &node(sel?), |k| match k {
                FaultKind::Loss(p) => Some(*p),
                _ => None,
            });
            let pct = next_step(&LOSS_STEPS_PCT.map(f64::from), now.unwrap_or(0.0));
            Command::Fault(FaultCmd::new(node(sel?), FaultKind::Loss(pct)))
        }
        Action::TransferHere => Command::Transfer(sel?),
        Action::KillLeader => Command::Kill(Target::Leader),
        Action::TimeoutHere => Command::Timeout(view.selected?),
        Action::Heartbeat => Command::Heartbeat,
        Action::FreezeThaw => {
            if state.frozen() {
                Command::Thaw
            } else {
                Command::Freeze
            }
        }
        Action::AddNode => Command::Add,
        Action::RemoveNode => Command::Remove(view.selected?),
        Action::Partition(shape) => Command::Fault(FaultCmd::new(
            FaultTarget::Shape(PartitionShape::parse(shape).ok()?),
            FaultKind::Cut,
        )),
        Action::Heal => Command::Heal(None),
        Action::ToggleWorkload => Command::Workload(Some(!state.workload.on)),
        Action::RateUp => Command::WorkloadRate(next_rate(state.workload.rate, true)),
        Action::RateDown => Command::WorkloadRate(next_rate(state.workload.rate, false)),
        Action::Check => Command::Check,
        // A kind without squall's counter (a Maelstrom node) refuses `workload counter` and says why; from one
        // of Maelstrom's own workloads the key goes back to lin-kv.
        Action::SwitchWorkload => Command::SetWorkloadKind(Some(match state.workload_kind {
            WorkloadKind::Counter => WorkloadKind::LinKv,
            WorkloadKind::LinKv | WorkloadKind::Lock | WorkloadKind::LockFenced => {
                WorkloadKind::Counter
            }
            _ => WorkloadKind::LinKv,
        })),
        Action::LinkFault(f) => {
            let id = state.fault_set.iter().flatten().find_map(|a| {
                a.fault
                    .as_ref()
                    .is_some_and(|g| g.replaces(f))
                    .then_some(a.id)
            });
            match id {
                Some(id) => Command::Heal(Some(id)),
                None => Command::Fault(f.clone()),
            }
        }
        Action::Run(cmd) => cmd.clone(),
        _ => return None,
    })
}

/// The parameter of the fault of this kind on `target` (no filter) in force now, if one is.
fn in_force<T>(
    state: &ClusterState,
    target: &FaultTarget,
    param: impl Fn(&FaultKind) -> Option<T>,
) -> Option<T> {
    state
        .fault_set
        .iter()
        .flatten()
        .filter_map(|a| a.fault.as_ref())
        .filter(|f| &f.target == target && f.only.is_empty())
        .find_map(|f| param(&f.kind))
}

/// Keeps the selection on a node the dashboard shows: when the selected node is gone (removed and its
/// process stopped), the selection moves to the next shown node (else the previous one), so the footer, the
/// logs panel and node keys follow a node that exists; the links cursor leaves a gone node too.
pub fn keep_selection(view: &mut ViewState, state: &ClusterState) {
    let ids = state.shown_ids();
    if let Some(sel) = view.selected
        && !ids.contains(&sel)
    {
        view.selected = ids
            .iter()
            .copied()
            .find(|&i| i > sel)
            .or_else(|| ids.last().copied());
    }
    if let Some((from, to)) = view.link_cursor
        && !(ids.contains(&from) && ids.contains(&to))
    {
        view.link_cursor = None;
    }
}

/// Applies the visual part of `action` to the view. Cluster actions leave it alone, except that choosing a
/// partition closes the prompt.
pub fn apply_view(view: &mut ViewState, action: &Action, state: &ClusterState) {
    let ids: Vec<u64> = state.shown_ids();
    let step = |forward: bool, view: &mut ViewState| {
        if ids.is_empty() {
            return;
        }
        let pos = view.selected.and_then(|s| ids.iter().position(|&i| i == s));
        let next = match (pos, forward) {
            (None, true) => 0,
            (None, false) => ids.len() - 1,
            (Some(p), true) => (p + 1) % ids.len(),
            (Some(p), false) => (p + ids.len() - 1) % ids.len(),
        };
        view.selected = Some(ids[next]);
    };
    view.notice = None;
    let page = FEED_PAGE;
    let oldest = state.feed.len().saturating_sub(1);
    match action {
        Action::SelectNext => step(true, view),
        Action::SelectPrev => step(false, view),
        Action::Select(n) if ids.contains(n) => view.selected = Some(*n),
        Action::Select(n) => {
            // Never leave the old selection in place: the next `k` would kill a node nobody chose.
            view.selected = None;
            view.notice = Some(match (ids.first(), ids.last()) {
                (Some(a), Some(b)) => format!("no node {n}: this cluster has n{a}–n{b}"),
                _ => format!("no node {n}"),
            });
        }
        a if a.needs_selection() && view.selected.is_none() => {
            view.notice = Some("select a node first (↑ ↓ or its number)".into());
        }
        Action::FeedPageUp => view.feed_scroll = (view.feed_scroll + page).min(oldest),
        Action::FeedPageDown => view.feed_scroll = view.feed_scroll.saturating_sub(page),
        Action::FeedOldest => view.feed_scroll = oldest,
        Action::FeedNewest => view.feed_scroll = 0,
        Action::HelpNextPage => view.help_page = (view.help_page + 1) % HELP_PAGES,
        Action::Freeze => view.frozen = !view.frozen,
        Action::FlowPanel => view.flow = !view.flow,
        Action::Help => {
            view.help = !view.help;
            view.help_page = 0;
        }
        Action::NextTab => view.tab = view.tab.next(),
        Action::HeldPanel => view.held = !view.held,
        Action::LogBack => {
            let end = view.log_end.unwrap_or(state.log_end()).min(state.log_end());
            view.log_end = Some(end.saturating_sub(LOG_PAGE).max(1));
        }
        Action::LogOn => {
            view.log_end = view
                .log_end
                .map(|e| e.min(state.log_end()) + LOG_PAGE)
                .filter(|&e| e < state.log_end());
        }
        Action::LogAt(None) => view.log_end = None,
        Action::LogAt(Some(i)) if *i > state.log_end() => {
            view.notice = Some(format!(
                "no node holds index {i}: the longest log ends at {}",
                state.log_end()
            ));
        }
        Action::LogAt(Some(i)) => view.log_end = Some(i + LOG_AHEAD),
        Action::PartitionMenu => view.prompt = Some(String::new()),
        Action::PromptInput(c) => {
            if let Some(text) = &mut view.prompt
                && text.len() < 40
            {
                text.push(*c);
            }
        }
        Action::PromptBackspace => {
            if let Some(text) = &mut view.prompt {
                text.pop();
            }
        }
        Action::PromptCancel | Action::Partition(_) => view.prompt = None,
        Action::CommandPrompt => view.command = Some(String::new()),
        Action::CommandInput(c) => {
            if let Some(text) = &mut view.command
                && text.len() < 120
            {
                text.push(*c);
            }
        }
        Action::CommandBackspace => {
            if let Some(text) = &mut view.command {
                text.pop();
            }
        }
        Action::CommandCancel | Action::Submit(_) => view.command = None,
        Action::CommandComplete => {
            if let Some(text) = &mut view.command
                && !text.contains(' ')
            {
                let fits: Vec<&str> = crate::command::verbs::VERBS
                    .iter()
                    .copied()
                    .filter(|v| v.starts_with(text.as_str()))
                    .collect();
                if let [only] = fits.as_slice() {
                    *text = format!("{only} ");
                }
            }
        }
        Action::LinkMode => {
            // In a small terminal (one panel per tab) the cursor is only visible on the links tab.
            view.tab = crate::state::Tab::Links;
            view.link_cursor = match view.link_cursor {
                Some(_) => None,
                None => {
                    let from = view
                        .selected
                        .filter(|s| ids.contains(s))
                        .or(ids.first().copied());
                    let to = ids.iter().copied().find(|i| Some(*i) != from);
                    from.zip(to)
                }
            }
        }
        Action::LinkMove(dx, dy) => {
            if let Some((from, to)) = view.link_cursor {
                let n = ids.len();
                let pos = |id: u64| ids.iter().position(|&i| i == id).unwrap_or(0);
                let (mut c, mut r) = (pos(to), pos(from));
                // Skip the diagonal (a node has no link to itself), wrapping around the edges.
                for _ in 0..n {
                    c = (c as i64 + i64::from(*dx)).rem_euclid(n as i64) as usize;
                    r = (r as i64 + i64::from(*dy)).rem_euclid(n as i64) as usize;
                    if c != r {
                        break;
                    }
                }
                if n > 1 && c != r {
                    view.link_cursor = Some((ids[r], ids[c]));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixture::sample_state;

    fn press(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ch(c: char) -> KeyEvent {
        press(KeyCode::Char(c))
    }

    /// Maps a key and applies it to the view, as the event loop does.
    fn type_key(v: &mut ViewState, key: KeyEvent, state: &ClusterState) -> Action {
        let a = map_key(key, v);
        apply_view(v, &a, state);
        a
    }

    #[test]
    fn keys_of_the_issue_map_to_their_actions() {
        let v = ViewState::new();
        let table = [
            ('k', Action::Kill),
            ('s', Action::Terminate),
            ('p', Action::PauseResume),
            ('r', Action::Restart),
            ('w', Action::Wipe),
            ('i', Action::Isolate),
            ('d', Action::CycleDelay),
            ('l', Action::CycleLoss),
            ('t', Action::TransferHere),
            ('K', Action::KillLeader),
            ('a', Action::AddNode),
            ('D', Action::RemoveNode),
            ('x', Action::PartitionMenu),
            ('h', Action::Heal),
            ('c', Action::ToggleWorkload),
            ('C', Action::SwitchWorkload),
            ('+', Action::RateUp),
            ('-', Action::RateDown),
            ('v', Action::Check),
            (' ', Action::Freeze),
            ('q', Action::Quit),
            ('?', Action::Help),
            ('R', Action::ToggleRecord),
            ('3', Action::Select(3)),
            ('9', Action::Select(9)),
            ('z', Action::None),
        ];
        for (c, want) in table {
            assert_eq!(map_key(ch(c), &v), want, "key {c:?}");
        }
        assert_eq!(map_key(press(KeyCode::Up), &v), Action::SelectPrev);
        assert_eq!(map_key(press(KeyCode::Down), &v), Action::SelectNext);
        assert_eq!(map_key(press(KeyCode::Tab), &v), Action::NextTab);
        assert_eq!(
            map_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &v),
            Action::Quit
        );
    }

    /// Whether a command's console line fits a documented form: word by word, `N` is the selected node (2), a
    /// capital word any value, `a|b` either word.
    fn fits(line: &str, form: &str) -> bool {
        let (got, want): (Vec<&str>, Vec<&str>) = (
            line.split_whitespace().collect(),
            form.split_whitespace().collect(),
        );
        got.len() == want.len()
            && got.iter().zip(&want).all(|(g, w)| match *w {
                "N" => *g == "2",
                w if w.chars().all(|c| c.is_ascii_uppercase()) => true,
                w => w.split('|').any(|alt| alt == *g),
            })
    }

    fn with_faults(state: &mut ClusterState, faults: &[(u64, &str)]) {
        use crate::state::{ActiveFault, Event, Stamped};
        let faults = faults
            .iter()
            .map(|(id, line)| {
                let Ok(Command::Fault(f)) = crate::command::parse(line) else {
                    panic!("{line} is no fault");
                };
                ActiveFault {
                    id: *id,
                    text: f.to_string(),
                    short: f.to_string(),
                    since_ms: 0,
                    until_ms: None,
                    fault: Some(f),
                }
            })
            .collect();
        state.apply(&Stamped::new(state.now_ms, Event::FaultSet { faults }));
    }

    /// Issue 19: every cluster key on the `?` page sends a line the console reads back to the same command,
    /// and that line is the console form the page's table gives for the key (a toggle is resolved here, on
    /// the input side, never sent as a toggle).
    #[test]
    fn every_key_sends_the_console_form_its_table_row_documents() {
        let state = sample_state(5);
        let mut v = ViewState::new();
        v.selected = Some(2);
        let mut checked = 0;
        for row in KEYS {
            assert!(
                row.console.iter().all(|(k, _)| row.keys.contains(*k)),
                "{row:?}: a console form for a key the row does not show"
            );
            for (key, form) in row.console {
                let action = map_key(ch(*key), &v);
                let cmd = command_for(&action, &v, &state)
                    .unwrap_or_else(|| panic!("`{key}` ({action:?}) sends no command"));
                let line = cmd.to_string();
                assert!(cmd.has_console_form(), "`{key}` sends the toggle {cmd:?}");
                assert_eq!(
                    crate::command::parse(&line),
                    Ok(cmd.clone()),
                    "`{key}`: {line}"
                );
                assert!(
                    fits(&line, form),
                    "`{key}` sends `{line}`, but the `?` page's table documents `{form}`"
                );
                let verb = form.split_whitespace().next().unwrap();
                assert!(
                    verb.split('|')
                        .all(|v| crate::command::verbs::find(v).is_some()),
                    "`{form}`: not a verb of the console"
                );
                checked += 1;
            }
        }
        assert!(checked >= 16, "only {checked} keys checked");
    }

    #[test]
    fn the_log_panel_scrolls_by_keys_and_by_log_n_and_follows_again() {
        let state = sample_state(5);
        let top = state.log_end();
        let mut v = ViewState::new();
        type_key(&mut v, ch('['), &state);
        assert_eq!(v.log_end, Some(top - LOG_PAGE));
        type_key(&mut v, ch('['), &state);
        type_key(&mut v, ch(']'), &state);
        assert_eq!(v.log_end, Some(top - LOG_PAGE));
        type_key(&mut v, ch(']'), &state);
        assert_eq!(v.log_end, None, "past the end it follows the end again");
        assert_eq!(parse_log_line("log 7"), Some(Ok(Action::LogAt(Some(7)))));
        assert_eq!(parse_log_line("log"), Some(Ok(Action::LogAt(None))));
        assert_eq!(parse_log_line("cut 1->2"), None);
        let e = parse_log_line("log seven").unwrap().unwrap_err();
        assert!(e.contains("`log seven`") && e.contains("log 120"), "{e}");
        assert!(parse_log_line("log 1 2").unwrap().is_err());
        apply_view(&mut v, &Action::LogAt(Some(7)), &state);
        assert_eq!(v.log_end, Some(7 + LOG_AHEAD));
        apply_view(&mut v, &Action::LogAt(Some(top + 1)), &state);
        assert_eq!(
            v.log_end,
            Some(7 + LOG_AHEAD),
            "an index past every log is refused"
        );
        assert!(v.notice.as_deref().unwrap().contains("no node holds index"));
        type_key(&mut v, ch('H'), &state);
        assert!(v.held);
        type_key(&mut v, ch('H'), &state);
        assert!(!v.held);
    }

    #[test]
    fn toggles_are_resolved_by_what_the_dashboard_shows() {
        let mut state = sample_state(5);
        let mut v = ViewState::new();
        let send = |key: char, v: &ViewState, state: &ClusterState| {
            command_for(&map_key(ch(key), v), v, state).map(|c| c.to_string())
        };
        // n5 is paused in the sample, n2 runs.
        v.selected = Some(5);
        assert_eq!(send('p', &v, &state).as_deref(), Some("resume 5"));
        v.selected = Some(2);
        assert_eq!(send('p', &v, &state).as_deref(), Some("pause 2"));
        // Latency and loss: the step after the one in force, back to none after the last.
        with_faults(&mut state, &[]);
        assert_eq!(send('d', &v, &state).as_deref(), Some("delay 2 50ms"));
        assert_eq!(send('l', &v, &state).as_deref(), Some("loss 2 10%"));
        with_faults(&mut state, &[(4, "delay 2 200ms"), (5, "loss 2 30%")]);
        assert_eq!(send('d', &v, &state).as_deref(), Some("delay 2 1s"));
        assert_eq!(send('l', &v, &state).as_deref(), Some("loss 2 100%"));
        with_faults(&mut state, &[(4, "delay 2 1s"), (5, "loss 2 100%")]);
        let off = |key| crate::command::parse(&send(key, &v, &state).unwrap()).unwrap();
        assert!(
            matches!(off('d'), Command::Fault(f) if f.kind.is_zero()),
            "{:?}",
            off('d')
        );
        assert!(matches!(off('l'), Command::Fault(f) if f.kind.is_zero()));
        // A delay on another node, or one limited to some kinds, is not this node's step.
        with_faults(
            &mut state,
            &[(4, "delay 3 1s"), (5, "delay 2 1s only vote")],
        );
        assert_eq!(send('d', &v, &state).as_deref(), Some("delay 2 50ms"));
        // The workload: on or off, the next rate, the other kind.
        let on = state.workload.on;
        assert_eq!(
            send('c', &v, &state),
            Some(format!("workload {}", if on { "off" } else { "on" }))
        );
        state.workload.rate = 20;
        assert_eq!(send('+', &v, &state).as_deref(), Some("workload rate 50"));
        assert_eq!(send('-', &v, &state).as_deref(), Some("workload rate 10"));
        state.workload_kind = WorkloadKind::Counter;
        assert_eq!(send('C', &v, &state).as_deref(), Some("workload lin-kv"));
        // From lin-kv `C` asks for the counter (a Maelstrom session refuses it and says why: issue 22); from
        // one of Maelstrom's own workloads it goes back to lin-kv, never silently to the counter.
        state.workload_kind = WorkloadKind::LinKv;
        assert_eq!(send('C', &v, &state).as_deref(), Some("workload counter"));
        state.workload_kind = WorkloadKind::GCounter;
        assert_eq!(send('C', &v, &state).as_deref(), Some("workload lin-kv"));
        // The links matrix: a key on a link adds its fault, and on a link that has it sends `heal ID`.
        v.link_cursor = Some((1, 3));
        with_faults(&mut state, &[(7, "cut 2->3")]);
        assert_eq!(send('x', &v, &state).as_deref(), Some("cut 1->3"));
        with_faults(&mut state, &[(7, "cut 2->3"), (9, "cut 1->3")]);
        assert_eq!(send('x', &v, &state).as_deref(), Some("heal 9"));
        assert_eq!(send('d', &v, &state).as_deref(), Some("delay 1->3 200ms"));
    }

    #[test]
    fn partition_prompt_takes_presets_and_groupings() {
        let state = sample_state(5);
        let mut v = ViewState::new();
        type_key(&mut v, ch('x'), &state);
        assert_eq!(v.prompt.as_deref(), Some(""));
        assert_eq!(map_key(ch('h'), &v), Action::Partition("halves".into()));
        assert_eq!(map_key(ch('b'), &v), Action::Partition("bridge".into()));
        assert_eq!(map_key(ch('r'), &v), Action::Partition("ring".into()));
        assert_eq!(
            map_key(ch('k'), &v),
            Action::None,
            "cluster keys are captured while the prompt is open"
        );
        for c in "1,2|3,4,5x".chars() {
            type_key(&mut v, ch(c), &state);
        }
        assert_eq!(v.prompt.as_deref(), Some("1,2|3,4,5"));
        type_key(&mut v, press(KeyCode::Backspace), &state);
        type_key(&mut v, ch('6'), &state);
        let a = map_key(press(KeyCode::Enter), &v);
        assert_eq!(a, Action::Partition("1,2|3,4,6".into()));
        apply_view(&mut v, &a, &state);
        assert_eq!(v.prompt, None);

        // A digit is always part of a grouping: no hidden numeric presets (`3` Enter is not a ring).
        apply_view(&mut v, &Action::PartitionMenu, &state);
        type_key(&mut v, ch('3'), &state);
        assert_eq!(
            map_key(press(KeyCode::Enter), &v),
            Action::Partition("3".into())
        );
        type_key(&mut v, press(KeyCode::Esc), &state);
        assert_eq!(v.prompt, None);
    }

    #[test]
    fn the_links_matrix_takes_the_keyboard_and_acts_on_the_cell_under_its_cursor() {
        let state = sample_state(3);
        let mut v = ViewState::new();
        v.selected = Some(2);
        type_key(&mut v, ch('m'), &state);
        assert_eq!(
            v.link_cursor,
            Some((2, 1)),
            "starts on the selected node's row"
        );
        type_key(&mut v, press(KeyCode::Right), &state);
        assert_eq!(v.link_cursor, Some((2, 3)), "skips the diagonal");
        type_key(&mut v, press(KeyCode::Down), &state);
        assert_eq!(
            v.link_cursor,
            Some((1, 3)),
            "down from 2->3 passes the diagonal 3->3 and wraps to 1->3"
        );
        let cut = map_key(ch('x'), &v);
        assert_eq!(
            cut,
            Action::LinkFault(FaultCmd::new(FaultTarget::Link(1, 3), FaultKind::Cut))
        );
        assert_eq!(
            command_for(&cut, &v, &state).map(|c| c.to_string()),
            Some("cut 1->3".into())
        );
        assert_eq!(map_key(ch('k'), &v), Action::None, "node keys are captured");
        type_key(&mut v, press(KeyCode::Esc), &state);
        assert_eq!(v.link_cursor, None);
    }

    #[test]
    fn the_fault_prompt_takes_any_line() {
        let state = sample_state(3);
        let mut v = ViewState::new();
        type_key(&mut v, ch(':'), &state);
        for c in "loss *->1 100% only vote-reply".chars() {
            type_key(&mut v, ch(c), &state);
        }
        let a = map_key(press(KeyCode::Enter), &v);
        assert_eq!(a, Action::Submit("loss *->1 100% only vote-reply".into()));
        apply_view(&mut v, &a, &state);
        assert_eq!(v.command, None);
        // Tab completes a verb when only one fits.
        type_key(&mut v, ch(':'), &state);
        for c in "ban".chars() {
            type_key(&mut v, ch(c), &state);
        }
        type_key(&mut v, press(KeyCode::Tab), &state);
        assert_eq!(v.command.as_deref(), Some("bandwidth "));
        type_key(&mut v, press(KeyCode::Esc), &state);
        type_key(&mut v, ch(':'), &state);
        type_key(&mut v, ch('r'), &state);
        type_key(&mut v, press(KeyCode::Tab), &state);
        assert_eq!(
            v.command.as_deref(),
            Some("r"),
            "several verbs fit: no completion"
        );
    }

    #[test]
    fn selection_wraps_and_ignores_unknown_nodes() {
        let state = sample_state(3);
        let mut v = ViewState::new();
        apply_view(&mut v, &Action::SelectNext, &state);
        assert_eq!(v.selected, Some(1));
        apply_view(&mut v, &Action::SelectPrev, &state);
        assert_eq!(v.selected, Some(3));
        apply_view(&mut v, &Action::SelectNext, &state);
        assert_eq!(v.selected, Some(1));
        apply_view(&mut v, &Action::Select(7), &state);
        assert_eq!(
            v.selected, None,
            "the old selection is not kept for the next key"
        );
        assert_eq!(
            v.notice.as_deref(),
            Some("no node 7: this cluster has n1–n3")
        );
        apply_view(&mut v, &Action::Kill, &state);
        assert!(
            v.notice
                .as_deref()
                .is_some_and(|n| n.contains("select a node first"))
        );
        apply_view(&mut v, &Action::Select(1), &state);
        assert_eq!(v.notice, None);
        apply_view(&mut v, &Action::Select(2), &state);
        assert_eq!(v.selected, Some(2));
    }

    #[test]
    fn the_feed_scrolls_back_by_pages_and_home_end_jump() {
        let state = sample_state(3);
        let mut v = ViewState::new();
        let keys = [
            (KeyCode::PageUp, Action::FeedPageUp),
            (KeyCode::PageDown, Action::FeedPageDown),
            (KeyCode::Home, Action::FeedOldest),
            (KeyCode::End, Action::FeedNewest),
        ];
        for (k, a) in keys {
            assert_eq!(map_key(press(k), &v), a);
        }
        type_key(&mut v, press(KeyCode::PageUp), &state);
        assert_eq!(v.feed_scroll, FEED_PAGE);
        type_key(&mut v, press(KeyCode::Home), &state);
        assert_eq!(v.feed_scroll, state.feed.len() - 1);
        type_key(&mut v, press(KeyCode::PageDown), &state);
        assert_eq!(v.feed_scroll, state.feed.len() - 1 - FEED_PAGE);
        type_key(&mut v, press(KeyCode::End), &state);
        assert_eq!(v.feed_scroll, 0);
    }

    #[test]
    fn visual_toggles_flip_and_help_closes_with_esc() {
        let state = sample_state(3);
        let mut v = ViewState::new();
        for a in [Action::Freeze, Action::Help, Action::NextTab] {
            assert!(a.is_visual());
            apply_view(&mut v, &a, &state);
        }
        assert!(v.frozen && v.help);
        assert_eq!(v.tab, crate::state::Tab::Logs);
        assert_eq!(map_key(press(KeyCode::Esc), &v), Action::Help);
        assert_eq!(
            map_key(ch('q'), &v),
            Action::Quit,
            "the help says q quits, so it does"
        );
        assert_eq!(map_key(ch('?'), &v), Action::HelpNextPage);
        apply_view(&mut v, &Action::HelpNextPage, &state);
        assert_eq!(v.help_page, 1);
        apply_view(&mut v, &Action::Kill, &state);
        assert!(Action::Kill.needs_selection() && !Action::Kill.is_visual());
        assert!(v.help, "cluster actions leave the view alone");
    }
}

#[cfg(test)]
mod link_cursor_tests {
    use super::*;

    /// Issue 20: with the cursor on 3->2, `n` delivered 1->2's frame and `a` released every link.
    #[test]
    fn the_links_matrix_step_drop_and_release_act_on_the_cursors_link_only() {
        let view = ViewState {
            link_cursor: Some((3, 2)),
            ..ViewState::new()
        };
        let key = |c| map_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE), &view);
        let link = FaultTarget::Link(3, 2);
        assert_eq!(key('n'), Action::Run(Command::Step(link.clone(), 1)));
        assert_eq!(key('z'), Action::Run(Command::DropHeld(link.clone(), 1)));
        assert_eq!(key('a'), Action::Run(Command::Release(link)));
    }
}
