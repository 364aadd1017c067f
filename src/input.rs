//! Keys to [`Action`]s, and the actions that only change what is shown.
//!
//! [`map_key`] is pure: it never performs anything. The caller hands cluster actions to the cluster layer (which
//! acts on [`ViewState::selected`] for node actions and reports the effect as an event) and visual ones to
//! [`apply_view`].

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::state::{ClusterState, ViewState};

/// What a key asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Open the partition prompt.
    PartitionMenu,
    /// Partition the cluster: `"halves"`, `"bridge"`, `"ring"` or a grouping like `"1,2|3,4,5"`.
    Partition(String),
    /// Remove every network fault.
    Heal,
    /// Start or stop the built-in client workload.
    ToggleWorkload,
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
    /// Quit the session.
    Quit,
    /// Type a character into the partition prompt.
    PromptInput(char),
    /// Delete the last character of the partition prompt.
    PromptBackspace,
    /// Close the partition prompt without partitioning.
    PromptCancel,
    /// Open the command prompt (`:`), which takes any headless command line.
    CommandPrompt,
    /// Run a line typed at the command prompt (parsed by the cluster layer; a bad line is reported there).
    RunCommand(String),
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
                | Action::CommandPrompt
                | Action::PromptInput(_)
                | Action::PromptBackspace
                | Action::PromptCancel
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
        )
    }
}

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
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Enter if text.trim().is_empty() => Action::PromptCancel,
            KeyCode::Enter => Action::RunCommand(text.trim().to_string()),
            KeyCode::Backspace => Action::PromptBackspace,
            KeyCode::Char(c) => Action::PromptInput(c),
            _ => Action::None,
        };
    }
    if let Some(text) = &view.prompt {
        return match key.code {
            KeyCode::Esc => Action::PromptCancel,
            KeyCode::Enter => match text.trim() {
                "" => Action::None,
                "1" => Action::Partition("halves".into()),
                "2" => Action::Partition("bridge".into()),
                "3" => Action::Partition("ring".into()),
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
    if view.help && matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
        return Action::Help;
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
        KeyCode::Char('x') => Action::PartitionMenu,
        KeyCode::Char(':') => Action::CommandPrompt,
        KeyCode::Char('h') => Action::Heal,
        KeyCode::Char('c') => Action::ToggleWorkload,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::RateUp,
        KeyCode::Char('-') | KeyCode::Char('_') => Action::RateDown,
        KeyCode::Char('v') => Action::Check,
        KeyCode::Char(' ') => Action::Freeze,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Esc if view.help => Action::Help,
        KeyCode::Tab | KeyCode::BackTab => Action::NextTab,
        KeyCode::Char('R') => Action::ToggleRecord,
        KeyCode::Char('q') => Action::Quit,
        _ => Action::None,
    }
}

/// Applies the visual part of `action` to the view. Cluster actions leave it alone, except that choosing a
/// partition closes the prompt.
pub fn apply_view(view: &mut ViewState, action: &Action, state: &ClusterState) {
    let ids: Vec<u64> = state.nodes.keys().copied().collect();
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
    match action {
        Action::SelectNext => step(true, view),
        Action::SelectPrev => step(false, view),
        Action::Select(n) if ids.contains(n) => view.selected = Some(*n),
        Action::Freeze => view.frozen = !view.frozen,
        Action::Help => view.help = !view.help,
        Action::NextTab => view.tab = view.tab.next(),
        Action::PartitionMenu => view.prompt = Some(String::new()),
        Action::CommandPrompt => view.command = Some(String::new()),
        Action::PromptInput(c) => {
            if let Some(text) = view.command.as_mut().or(view.prompt.as_mut())
                && text.len() < 60
            {
                text.push(*c);
            }
        }
        Action::PromptBackspace => {
            if let Some(text) = view.command.as_mut().or(view.prompt.as_mut()) {
                text.pop();
            }
        }
        Action::PromptCancel | Action::Partition(_) | Action::RunCommand(_) => {
            view.prompt = None;
            view.command = None;
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
            ('x', Action::PartitionMenu),
            ('h', Action::Heal),
            ('c', Action::ToggleWorkload),
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
    fn command_prompt_takes_any_console_line() {
        let state = ClusterState::new();
        let mut v = ViewState::default();
        assert_eq!(map_key(ch(':'), &v), Action::CommandPrompt);
        apply_view(&mut v, &Action::CommandPrompt, &state);
        for c in "powercut 2x".chars() {
            let a = map_key(ch(c), &v);
            assert_eq!(a, Action::PromptInput(c), "keys are typed, not obeyed");
            apply_view(&mut v, &a, &state);
        }
        apply_view(&mut v, &Action::PromptBackspace, &state);
        assert_eq!(v.command.as_deref(), Some("powercut 2"));
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        let a = map_key(enter, &v);
        assert_eq!(a, Action::RunCommand("powercut 2".into()));
        apply_view(&mut v, &a, &state);
        assert_eq!(v.command, None);
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

        // A lone preset digit followed by Enter picks the preset.
        apply_view(&mut v, &Action::PartitionMenu, &state);
        type_key(&mut v, ch('2'), &state);
        assert_eq!(
            map_key(press(KeyCode::Enter), &v),
            Action::Partition("bridge".into())
        );
        type_key(&mut v, press(KeyCode::Esc), &state);
        assert_eq!(v.prompt, None);
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
        assert_eq!(v.selected, Some(1));
        apply_view(&mut v, &Action::Select(2), &state);
        assert_eq!(v.selected, Some(2));
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
            Action::Help,
            "q closes help before it quits"
        );
        apply_view(&mut v, &Action::Kill, &state);
        assert!(Action::Kill.needs_selection() && !Action::Kill.is_visual());
        assert!(v.help, "cluster actions leave the view alone");
    }
}
