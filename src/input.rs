//! Keys to [`Action`]s, and the actions that only change what is shown.
//!
//! [`map_key`] is pure: it never performs anything. The caller hands cluster actions to the cluster layer (which
//! acts on [`ViewState::selected`] for node actions and reports the effect as an event) and visual ones to
//! [`apply_view`].

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::command::{Command, Target};
use crate::command::{FaultCmd, FaultKind, FaultTarget, PartitionShape};
use crate::state::{ClusterState, ViewState};

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
    /// A command chosen in the links matrix (cut / delay / loss / hold the cell's link, step held frames).
    Run(Command),
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
    let toggle = |kind| Action::Run(Command::ToggleFault(FaultCmd::new(link.clone(), kind)));
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
        KeyCode::Char('n') => Action::Run(Command::Step(FaultTarget::All, 1)),
        KeyCode::Char('z') => Action::Run(Command::DropHeld(FaultTarget::All, 1)),
        KeyCode::Char('a') => Action::Run(Command::Release(FaultTarget::All)),
        KeyCode::Char('h') => Action::Run(Command::Heal(None)),
        KeyCode::Char(':') | KeyCode::Char('f') => Action::CommandPrompt,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('q') => Action::Quit,
        _ => Action::None,
    }
}

/// The command a cluster key asks for, with node keys acting on the selected node (`None` for visual keys,
/// or node keys with nothing selected).
pub fn command_for(action: &Action, view: &ViewState) -> Option<Command> {
    let sel = view.selected.map(Target::Node);
    let node = |t: Target| FaultTarget::Node(t);
    Some(match action {
        Action::Kill => Command::Kill(sel?),
        Action::Terminate => Command::Terminate(sel?),
        Action::PauseResume => Command::TogglePause(sel?),
        Action::Restart => Command::Restart(sel?),
        Action::Wipe => Command::Wipe(sel?),
        Action::Isolate => Command::Fault(FaultCmd::new(node(sel?), FaultKind::Cut)),
        Action::CycleDelay => Command::CycleDelay(sel?),
        Action::CycleLoss => Command::CycleLoss(sel?),
        Action::TransferHere => Command::Transfer(sel?),
        Action::KillLeader => Command::Kill(Target::Leader),
        Action::AddNode => Command::Add,
        Action::RemoveNode => Command::Remove(view.selected?),
        Action::Partition(shape) => Command::Fault(FaultCmd::new(
            FaultTarget::Shape(PartitionShape::parse(shape).ok()?),
            FaultKind::Cut,
        )),
        Action::Heal => Command::Heal(None),
        Action::ToggleWorkload => Command::Workload(None),
        Action::RateUp => Command::WorkloadStep(true),
        Action::RateDown => Command::WorkloadStep(false),
        Action::Check => Command::Check,
        Action::SwitchWorkload => Command::SetWorkloadKind(None),
        Action::Run(cmd) => cmd.clone(),
        _ => return None,
    })
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
        Action::Help => {
            view.help = !view.help;
            view.help_page = 0;
        }
        Action::NextTab => view.tab = view.tab.next(),
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
            Action::Run(Command::ToggleFault(FaultCmd::new(
                FaultTarget::Link(1, 3),
                FaultKind::Cut
            )))
        );
        assert_eq!(
            command_for(&cut, &v).map(|c| c.to_string()),
            Some("toggle cut 1->3".into())
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
