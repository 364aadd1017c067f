//! Snapshot tests of the dashboard, drawn with ratatui's `TestBackend` from the fixed fixture session (its
//! pids, paths and times are constants, so the screens are stable without filters).

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;
use squall::state::{ClusterState, Tab, ViewState, fixture};

fn render(
    width: u16,
    height: u16,
    state: &ClusterState,
    view: &ViewState,
) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    t.draw(|f| squall::ui::draw(f, state, view)).expect("draw");
    t
}

fn selected(node: u64) -> ViewState {
    ViewState {
        selected: Some(node),
        ..ViewState::new()
    }
}

#[test]
fn main_screen_5_nodes_160x48() {
    let state = fixture::sample_state(5);
    let t = render(160, 48, &state, &selected(2));
    insta::assert_snapshot!("main_160x48", t.backend().to_string());
}

#[test]
fn main_screen_9_nodes_200x60() {
    let state = fixture::sample_state(9);
    let t = render(200, 60, &state, &selected(4));
    insta::assert_snapshot!("main_9_nodes_200x60", t.backend().to_string());
}

#[test]
fn help_overlay() {
    let state = fixture::sample_state(5);
    let view = ViewState {
        help: true,
        ..selected(1)
    };
    let t = render(160, 48, &state, &view);
    insta::assert_snapshot!("help_160x48", t.backend().to_string());
    let t = render(80, 24, &state, &view);
    let screen = t.backend().to_string();
    // Every key still fits in a small terminal.
    for key in [
        "kill the leader",
        "freeze",
        "quit",
        "transfer leadership",
        "verify",
    ] {
        assert!(
            screen.contains(key),
            "{key:?} missing from the 80x24 help:\n{screen}"
        );
    }
    insta::assert_snapshot!("help_80x24", screen);
}

#[test]
fn small_terminal_shows_one_panel_per_tab() {
    let state = fixture::sample_state(5);
    for tab in Tab::ALL {
        let view = ViewState { tab, ..selected(2) };
        let t = render(80, 24, &state, &view);
        let screen = t.backend().to_string();
        let header = screen.lines().next().expect("a header line");
        assert!(
            header.contains("● REC"),
            "the recording indicator must survive 80 columns: {header}"
        );
        insta::assert_snapshot!(
            format!("tab_{}_80x24", tab.title().to_lowercase()),
            t.backend().to_string()
        );
    }
}

#[test]
fn partition_prompt_and_frozen_banner() {
    let state = fixture::sample_state(3);
    let view = ViewState {
        prompt: Some("1|2,3".into()),
        frozen: true,
        ..selected(3)
    };
    let t = render(120, 30, &state, &view);
    let screen = t.backend().to_string();
    let footer = screen.lines().last().expect("a footer line");
    assert!(footer.contains("1|2,3"), "prompt text missing: {footer}");
    assert!(screen.lines().next().expect("header").contains("FROZEN"));
    insta::assert_snapshot!("prompt_frozen_120x30", screen);
}

#[test]
fn layout_follows_resizes() {
    let state = fixture::sample_state(5);
    let view = selected(1);
    let mut t = render(160, 48, &state, &view);
    assert!(!t.backend().to_string().contains("Tab next panel"));
    t.backend_mut().resize(80, 24);
    t.draw(|f| squall::ui::draw(f, &state, &view))
        .expect("draw");
    let small = t.backend().to_string();
    assert_eq!(small.lines().count(), 24);
    assert!(
        small.contains("Tab next panel"),
        "no tabs after shrinking:\n{small}"
    );
    t.backend_mut().resize(160, 48);
    t.draw(|f| squall::ui::draw(f, &state, &view))
        .expect("draw");
    assert_eq!(
        t.backend().to_string(),
        render(160, 48, &state, &view).backend().to_string()
    );
}

#[test]
fn committed_and_uncommitted_cells_look_different() {
    let state = fixture::sample_state(5);
    let t = render(160, 48, &state, &selected(2));
    let buf = t.backend().buffer();
    let screen = t.backend().to_string();
    // Row of node 2's strip in the logs panel (it holds three term-1 entries the others replaced).
    let row = screen
        .lines()
        .position(|l| l.contains("│▶n2  1"))
        .expect("node 2's log strip") as u16;
    let mut bgs = Vec::new();
    let mut underlined = 0;
    for x in 0..buf.area.width {
        let cell = &buf[(x, row)];
        if cell.symbol() == "1" {
            bgs.push(cell.bg);
            if cell.modifier.contains(Modifier::UNDERLINED) {
                underlined += 1;
            }
        }
    }
    assert_eq!(
        underlined, 3,
        "node 2's three uncommitted entries should be underlined"
    );
    assert!(
        bgs.contains(&ratatui::style::Color::Reset),
        "uncommitted cells have no background"
    );
    assert!(
        bgs.iter().any(|b| *b != ratatui::style::Color::Reset),
        "committed cells are solid"
    );
}

#[test]
fn any_size_and_any_state_draws_without_panicking() {
    let full = fixture::sample_state(9);
    let empty = ClusterState::new();
    let view = ViewState {
        help: true,
        ..selected(9)
    };
    for w in (1..=130).step_by(7) {
        for h in (1..=50).step_by(3) {
            render(w, h, &full, &view);
            render(w, h, &empty, &ViewState::new());
        }
    }
}

#[test]
fn a_failed_check_shows_in_the_header_and_the_feed() {
    use squall::state::{Event, Stamped, Verdict};
    let mut state = fixture::sample_state(5);
    let at = state.now_ms + 100;
    state.apply(&Stamped::new(
        at,
        Event::Checked {
            verdict: Verdict::Violated,
            report:
                "check FAILED: acknowledged writes lost or invented: c3 holds 7 but 9 increments \
                     were acknowledged before it was read (2 lost)"
                    .into(),
        },
    ));
    let t = render(160, 48, &state, &selected(1));
    let screen = t.backend().to_string();
    let header = screen.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains("check ✗ ACKNOWLEDGED WRITES LOST"),
        "header: {header}"
    );
    assert!(screen.contains("c3 holds 7 but 9 increments"), "{screen}");
    // A passing check replaces it.
    state.apply(&Stamped::new(
        at + 5_000,
        Event::Checked {
            verdict: Verdict::Ok,
            report: "check passed: no acknowledged write lost".into(),
        },
    ));
    let t = render(160, 48, &state, &selected(1));
    let screen = t.backend().to_string();
    assert!(
        screen
            .lines()
            .nth(1)
            .unwrap_or_default()
            .contains("check ✓ nothing lost"),
        "{screen}"
    );
}

#[test]
fn help_explains_every_symbol_on_its_second_page_at_80x24() {
    let state = fixture::sample_state(5);
    let view = ViewState {
        help: true,
        help_page: 1,
        ..selected(1)
    };
    let screen = render(80, 24, &state, &view).backend().to_string();
    for symbol in [
        "··",
        "✗N",
        "lag",
        "rpc in/out/err",
        "░░",
        "last idx/term",
        "precand",
    ] {
        assert!(
            screen.contains(symbol),
            "{symbol:?} is not explained:\n{screen}"
        );
    }
    insta::assert_snapshot!("help_symbols_80x24", screen);
}

/// The feed panel's rows, from the screen.
fn feed_rows(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("┌ events"))
        .expect("the feed panel");
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.contains("└"))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn the_feed_wraps_long_lines_and_scrolls_back() {
    let mut state = fixture::sample_state(5);
    let verdict = "check FAILED: acknowledged writes lost or invented: c3.1a2b holds 38 but 61 increments \
                   were acknowledged before it was read (23 lost); c5.1a2b holds 2 but 40 increments were \
                   acknowledged before it was read (38 lost)";
    state.apply(&squall::state::Stamped::new(
        61_000,
        squall::state::Event::Checked {
            verdict: squall::state::Verdict::Violated,
            report: verdict.into(),
        },
    ));
    let screen = render(120, 40, &state, &selected(1)).backend().to_string();
    let rows = feed_rows(&screen);
    let joined: String = rows
        .iter()
        .map(|r| r.trim_matches(|c| c == '│' || c == '"').trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        joined.contains("(38 lost)"),
        "the end of a long line is on screen:\n{screen}"
    );

    // Scrolled back to the oldest line: the panel starts with the session's first line, and the title says
    // how to return.
    let view = ViewState {
        feed_scroll: usize::MAX,
        ..selected(1)
    };
    let screen = render(120, 40, &state, &view).backend().to_string();
    let rows = feed_rows(&screen);
    assert!(
        rows.first().is_some_and(|r| r.contains("cluster ")),
        "the oldest line is the first row shown:\n{screen}"
    );
    assert!(screen.contains("End follows"), "{screen}");
    assert!(
        rows.iter()
            .all(|r| !r.trim_matches(|c| c == '│' || c == '"').trim().is_empty()),
        "the panel is full:\n{screen}"
    );
}

#[test]
fn a_terminal_too_small_says_so_and_80_columns_show_the_workload() {
    let state = fixture::sample_state(5);
    let screen = render(60, 20, &state, &selected(1)).backend().to_string();
    assert!(
        screen.contains("60×20 is too small") && screen.contains("80×24"),
        "{screen}"
    );
    let screen = render(80, 24, &state, &selected(1)).backend().to_string();
    let header = screen.lines().next().unwrap();
    assert!(header.contains("client off"), "{header}");
}

#[test]
fn wide_tables_show_whole_roles_and_the_log_ruler_never_cuts_a_label() {
    use squall_node::raft::types::Role;
    let mut state = fixture::sample_state(5);
    if let Some(n) = state.nodes.get_mut(&3) {
        // The table draws the role every kind reports (the brief status), which a full status also sets.
        if let Some(s) = n.status.as_mut() {
            s.core.role = Role::PreCandidate;
        }
        if let Some(b) = n.brief.as_mut() {
            b.role = Some(Role::PreCandidate);
        }
    }
    for width in [120u16, 160] {
        let screen = render(width, 48, &state, &selected(1))
            .backend()
            .to_string();
        assert!(screen.contains("precandidate"), "{screen}");
    }
    // At 80×24 the role column has 9 columns: the short form, never a cut word.
    let view = ViewState {
        tab: Tab::Nodes,
        ..selected(1)
    };
    let screen = render(80, 24, &state, &view).backend().to_string();
    let row = screen
        .lines()
        .find(|l| l.contains(" n3   "))
        .expect("n3's row");
    assert!(row.contains(" precand "), "{screen}");
    assert!(!screen.contains("precandid"), "{screen}");
    for width in 120u16..=200 {
        let screen = render(width, 48, &state, &selected(1))
            .backend()
            .to_string();
        let ruler = screen
            .lines()
            .find(|l| l.contains('╷'))
            .expect("the log ruler");
        for label in ruler.split('╷').skip(1) {
            let digits: String = label.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits.parse().unwrap_or_else(|_| panic!("{ruler}"));
            assert_eq!(n % 10, 0, "a cut label at width {width}: {ruler}");
        }
    }
}

/// A state with a link report where every link of node 2 is delayed by `ms`, the fault set and held frames
/// that report implies, at session time 20 s.
fn faulted_state(ms: u32) -> ClusterState {
    use squall::state::{ActiveFault, Event, HeldView, LinkState, Stamped};
    let mut state = fixture::sample_state(3);
    let now = state.now_ms + 1;
    let mut links = state.links.clone();
    for l in &mut links {
        l.state = if l.from == 2 || l.to == 2 {
            LinkState::Delayed(ms)
        } else if (l.from, l.to) == (1, 3) {
            LinkState::Held
        } else {
            LinkState::Ok
        };
    }
    state.apply(&Stamped::new(now, Event::Links { links }));
    state.apply(&Stamped::new(
        now,
        Event::FaultSet {
            faults: vec![
                ActiveFault {
                    id: 3,
                    text: format!("delay 2 {ms}ms for 10s"),
                    short: format!("delay 2 {ms}ms"),
                    since_ms: now - 2000,
                    until_ms: Some(now + 8000),
                    fault: None,
                },
                ActiveFault {
                    id: 4,
                    text: "hold 1->3".into(),
                    short: "hold 1->3".into(),
                    since_ms: now,
                    until_ms: None,
                    fault: None,
                },
            ],
        },
    ));
    state.apply(&Stamped::new(
        now,
        Event::Held {
            frames: vec![HeldView {
                seq: 1,
                from: 1,
                to: 3,
                kind: Some("heartbeat".into()),
                detail: "heartbeat n1 term 2 prev 40/2 commit 40".into(),
            }],
        },
    ));
    state
}

/// The columns of the matrix row of node `row` at which each cell's text ends.
fn cell_ends(screen: &str, row: u64) -> Vec<usize> {
    let line = screen
        .lines()
        .find(|l| l.contains("links from→to"))
        .map(|_| ())
        .and_then(|_| {
            screen
                .lines()
                .skip_while(|l| !l.contains("links from→to"))
                .find(|l| {
                    let after = l.rsplit('│').nth(1).unwrap_or("");
                    after.trim_start().starts_with(&format!("n{row} "))
                })
        })
        .expect("a matrix row");
    let cells = line.rsplit('│').nth(1).expect("the links panel");
    let chars: Vec<char> = cells.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i] != ' ' && chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '['))
        .collect()
}

#[test]
fn the_links_matrix_stays_aligned_at_a_one_second_delay() {
    // Issue 13: `+1000` took five columns and pushed every cell after it one to the right.
    let fast = render(160, 48, &faulted_state(50), &selected(2));
    let slow = render(160, 48, &faulted_state(1000), &selected(2));
    let (fast, slow) = (fast.backend().to_string(), slow.backend().to_string());
    assert!(slow.contains("+1s"), "a second reads as +1s:\n{slow}");
    for row in 1..=3 {
        assert_eq!(
            cell_ends(&fast, row),
            cell_ends(&slow, row),
            "row n{row} moved:\n{slow}"
        );
    }
}

#[test]
fn the_fault_set_held_frames_and_the_link_cursor_show() {
    let state = faulted_state(200);
    let view = ViewState {
        link_cursor: Some((2, 3)),
        ..selected(2)
    };
    let t = render(160, 48, &state, &view);
    let screen = t.backend().to_string();
    let header = screen.lines().nth(1).expect("the faults line");
    assert!(
        header.contains("#3 delay 2 200ms 8s"),
        "time left in the header: {header}"
    );
    assert!(header.contains("#4 hold 1->3"), "{header}");
    assert!(
        screen.contains("#3 delay 2 200ms for 10s 8s"),
        "the set in the links panel:\n{screen}"
    );
    assert!(
        screen.contains("‖ 1->3 heartbeat n1 term 2"),
        "held frames listed:\n{screen}"
    );
    assert!(screen.contains("[+200"), "the cursor marks 2->3:\n{screen}");
    assert!(
        screen.contains(" link 2->3 "),
        "the footer names the link:\n{screen}"
    );
    insta::assert_snapshot!("links_cursor_faults_held_160x48", screen);
}

#[test]
fn the_fault_prompt_shows_the_grammar_of_the_verb_being_typed() {
    let state = fixture::sample_state(3);
    let mut view = selected(1);
    view.command = Some("loss *->1 100%".into());
    let t = render(160, 48, &state, &view);
    let screen = t.backend().to_string();
    let footer = screen.lines().last().unwrap_or("");
    assert!(footer.contains("loss *->1 100%▏"), "{footer}");
    assert!(
        footer.contains("loss TARGET PCT [for DUR] [only KIND,..]"),
        "{footer}"
    );
    view.command = Some("re".into());
    let t = render(160, 48, &state, &view);
    let footer = t
        .backend()
        .to_string()
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    assert!(
        footer.contains("restart · reorder · reset · release"),
        "{footer}"
    );
}

/// Nine nodes fit 80×24 with their membership: the learner and a removed node (still running) say so in the
/// role column, the title names the configuration, and a removed node's row goes once its process stops.
#[test]
fn nine_nodes_show_their_membership_at_80x24_and_a_stopped_removed_node_leaves() {
    use squall::state::{Event, ProcessState, Stamped};
    let mut state = fixture::sample_state(9);
    let at = state.now_ms;
    let mut leader = state.nodes[&4].status.clone().expect("the leader's status");
    leader.core.config.voters.remove(&8);
    leader.core.config_index = leader.core.last_log_index;
    state.apply(&Stamped::new(
        at,
        Event::Status {
            node: 4,
            status: leader,
        },
    ));
    let view = ViewState {
        tab: Tab::Nodes,
        ..selected(9)
    };
    let screen = render(80, 24, &state, &view).backend().to_string();
    let row = |screen: &str, id: u64| {
        screen
            .lines()
            .find(|l| l.contains(&format!(" n{id}   ")))
            .map(String::from)
    };
    for id in 1..=9 {
        assert!(row(&screen, id).is_some(), "no row for n{id}:\n{screen}");
    }
    assert!(row(&screen, 9).unwrap().contains("learner"), "{screen}");
    assert!(row(&screen, 8).unwrap().contains("removed"), "{screen}");
    assert!(
        screen.contains("config {1,2,3,4,5,6,7} l{9} at 1011"),
        "{screen}"
    );
    insta::assert_snapshot!("nine_nodes_membership_80x24", screen);
    // The removed node's process stops: its row goes.
    state.apply(&Stamped::new(
        at + 10,
        Event::Process {
            node: 8,
            state: ProcessState::Exited {
                pid: 4156,
                code: Some(0),
                signal: None,
                reason: None,
            },
        },
    ));
    let screen = render(80, 24, &state, &view).backend().to_string();
    assert!(row(&screen, 8).is_none(), "n8 still shown:\n{screen}");
    assert!(row(&screen, 9).is_some(), "{screen}");
}

#[test]
fn a_removed_node_leaves_the_selection_the_lanes_the_links_and_the_faults() {
    use squall::state::{Event, ProcessState, Stamped};
    let mut state = fixture::sample_state(5);
    let at = state.now_ms;
    // The leader (n4) drops n1 from its configuration, then squall stops n1's process.
    let mut leader = state.nodes[&4].status.clone().expect("the leader's status");
    leader.core.config.voters.remove(&1);
    leader.core.config_index = leader.core.last_log_index;
    state.apply(&Stamped::new(
        at,
        Event::Status {
            node: 4,
            status: leader,
        },
    ));
    // n1's own process exits (an exit of another pid is an older process's, told late, and is ignored).
    let pid = state.nodes[&1].process.pid().expect("n1 runs");
    state.apply(&Stamped::new(
        at + 10,
        Event::Process {
            node: 1,
            state: ProcessState::Exited {
                pid,
                code: Some(0),
                signal: None,
                reason: None,
            },
        },
    ));
    let mut view = selected(1);
    squall::input::keep_selection(&mut view, &state);
    assert_eq!(
        view.selected,
        Some(2),
        "the selection moves to a node there is"
    );
    assert!(
        state.faults.iter().all(|f| !f.starts_with("n1 ")),
        "a removed node's exit is not a fault: {:?}",
        state.faults
    );
    let screen = render(160, 48, &state, &view).backend().to_string();
    let footer = screen.lines().last().unwrap_or_default();
    assert!(footer.contains(" n2 "), "{footer}");
    // Above the event feed (which keeps its history) nothing names n1.
    let panels: String = screen
        .lines()
        .take_while(|l| !l.contains("┌ events"))
        .collect();
    assert!(
        !panels.contains("n1"),
        "n1 still named (lane, links row or column, log strip, faults):\n{screen}"
    );
    insta::assert_snapshot!("removed_node_leaves_160x48", screen);
}

#[test]
fn the_clock_column_is_blank_for_nodes_whose_clock_is_not_faked() {
    use squall::state::{Event, Stamped};
    let mut state = fixture::sample_state(3);
    let now = state.now_ms + 1;
    state.apply(&Stamped::new(
        now,
        Event::NodeFaults {
            node: 2,
            disk: vec![],
            clock: Some("+1h".into()),
        },
    ));
    let screen = render(160, 48, &state, &selected(1)).backend().to_string();
    assert!(screen.contains("clock"), "no clock column:\n{screen}");
    assert!(screen.contains("+1h"), "node 2's offset missing:\n{screen}");
    assert!(
        !screen.contains("true"),
        "a node whose clock is not faked shows `true`:\n{screen}"
    );
}

/// tester-report-1 C1: a node that does not vote because it may have lost acknowledged data says
/// `recovering` in the role column (`recovery` where the column has 9 columns), not `follower`.
#[test]
fn a_recovering_node_says_so_in_the_role_column() {
    let mut state = fixture::sample_state(5);
    if let Some(s) = state.nodes.get_mut(&3).and_then(|n| n.status.as_mut()) {
        s.recovering = true;
    }
    let row_of_n3 = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains(" n3 ") && l.contains("running"))
            .unwrap_or_else(|| panic!("n3's row in {screen}"))
            .to_string()
    };
    let screen = render(160, 48, &state, &selected(1)).backend().to_string();
    let row = row_of_n3(&screen);
    assert!(row.contains(" recovering "), "{row}");
    let view = ViewState {
        tab: Tab::Nodes,
        ..selected(1)
    };
    let screen = render(80, 24, &state, &view).backend().to_string();
    assert!(row_of_n3(&screen).contains(" recovery "), "{screen}");
}

#[test]
fn the_held_queue_panel_lists_each_frame_with_the_next_and_stale_marks() {
    use squall::state::{Event, HeldView, Stamped};
    let mut state = faulted_state(200);
    let f = |seq, from, to, kind: &str, detail: &str| HeldView {
        seq,
        from,
        to,
        kind: Some(kind.into()),
        detail: detail.into(),
    };
    state.apply(&Stamped::new(
        state.now_ms + 1,
        Event::Held {
            frames: vec![
                f(
                    1,
                    1,
                    3,
                    "heartbeat",
                    "heartbeat n1 term 2 prev 40/2 commit 40",
                ),
                f(
                    2,
                    1,
                    2,
                    "heartbeat",
                    "heartbeat n1 term 2 prev 40/2 commit 40",
                ),
                f(
                    3,
                    1,
                    3,
                    "heartbeat",
                    "heartbeat n1 term 2 prev 40/2 commit 40",
                ),
            ],
        },
    ));
    let view = ViewState {
        held: true,
        link_cursor: Some((1, 2)),
        ..selected(1)
    };
    for (w, h) in [(160, 48), (80, 24)] {
        let screen = render(w, h, &state, &view).backend().to_string();
        assert!(
            screen.contains(" held: 3 frames, 1 stale "),
            "{w}×{h}:\n{screen}"
        );
        assert!(
            screen.contains("│▶  1->3 heartbeat n1 term 2 prev 40/2 commit 40  stale"),
            "{w}×{h}:\n{screen}"
        );
        assert!(
            screen.contains("│n▶ 1->2 heartbeat n1 term 2"),
            "the cursor's frame:\n{screen}"
        );
    }
}

#[test]
fn wide_and_frozen_tables_show_the_election_timers_and_the_leaders_next_and_match() {
    let mut state = fixture::sample_state(5);
    let leader = state.leader.expect("a leader in the fixture");
    let ids: Vec<u64> = state.nodes.keys().copied().collect();
    for id in ids {
        if let Some(s) = state.nodes.get_mut(&id).and_then(|n| n.status.as_mut()) {
            s.election_due_ms = (id != leader).then_some(1_000 + id * 100);
            s.frozen = true;
        }
    }
    let screen = render(160, 48, &state, &selected(2)).backend().to_string();
    assert!(screen.contains("timer"), "{screen}");
    let stopped = state
        .nodes
        .keys()
        .filter(|&&i| i != leader)
        .filter(|&&i| screen.contains(&format!("stop {:.1}s", (1_000 + i * 100) as f64 / 1000.0)))
        .count();
    assert!(
        stopped >= 3,
        "the followers' timers standing still:\n{screen}"
    );
    assert!(screen.contains("next  match"), "{screen}");
}

/// A Maelstrom session (a kind that reports no role, term or log, whose bridge counts messages by type): n1 and
/// n2 running, n3 killed; the messages between them traced with the names the Maelstrom classifier gives them.
fn maelstrom_state() -> ClusterState {
    use squall::kind::maelstrom::classify::MaelstromClassifier;
    use squall::state::{BriefStatus, Event, MessageCounts, ProcessState, Stamped};
    use squall_chaos::{Classifier as _, DropCause, Fate, Flow, LinkId, MessageEvent};
    let mut state = ClusterState::new();
    state.apply(&Stamped::new(
        0,
        Event::SessionStarted {
            cluster_id: "squall-mael".into(),
            nodes: vec![1, 2, 3],
            dir: "/tmp/squall-mael".into(),
        },
    ));
    let counts = |pairs: &[(&str, u64, u64)]| {
        let mut c = MessageCounts::default();
        for &(t, i, o) in pairs {
            if i > 0 {
                c.received.insert(t.into(), i);
            }
            if o > 0 {
                c.sent.insert(t.into(), o);
            }
        }
        c
    };
    let nodes = [
        (
            1,
            counts(&[
                ("init", 1, 0),
                ("init_ok", 0, 1),
                ("topology", 1, 0),
                ("broadcast", 40, 0),
                ("broadcast_ok", 0, 40),
                ("gossip", 120, 118),
                ("gossip_ok", 118, 120),
                ("read", 35, 0),
                ("read_ok", 0, 35),
            ]),
        ),
        (
            2,
            counts(&[("init", 1, 0), ("init_ok", 0, 1), ("gossip", 7, 3)]),
        ),
        (3, counts(&[("init", 1, 0), ("init_ok", 0, 1)])),
    ];
    for (id, c) in nodes {
        let pid = 4000 + id as u32;
        state.apply(&Stamped::new(
            10,
            Event::Process {
                node: id,
                state: ProcessState::Running { pid },
            },
        ));
        state.apply(&Stamped::new(
            500,
            Event::Brief {
                node: id,
                status: BriefStatus {
                    pid: Some(pid),
                    messages: Some(c),
                    ..BriefStatus::default()
                },
            },
        ));
    }
    state.apply(&Stamped::new(
        4_000,
        Event::Process {
            node: 3,
            state: ProcessState::Killed { pid: 4003 },
        },
    ));
    // Bridge frames as the proxies see them: the body's type, a newline, the message.
    let c = MaelstromClassifier;
    let mut messages = Vec::new();
    let mut msg = |from: u64, to: u64, kind: &str, sent_ms: u64, fate: Fate| {
        let frame = format!(
            "{kind}\n{{\"src\":\"n{from}\",\"dest\":\"n{to}\",\"body\":{{\"type\":\"{kind}\"}}}}"
        );
        let label = c.classify(Flow::Request, frame.as_bytes());
        messages.push(MessageEvent {
            id: messages.len() as u64 + 1,
            link: LinkId::new(from, to),
            kind: c.kind(Flow::Request, frame.as_bytes(), label),
            sent_us: sent_ms * 1000,
            fate,
        });
    };
    let at = |ms: u64| Fate::Delivered {
        at_us: ms * 1000 + 200,
    };
    msg(1, 2, "gossip", 2_000, at(2_000));
    msg(2, 1, "gossip_ok", 2_001, at(2_001));
    msg(1, 3, "gossip", 2_500, at(2_500));
    msg(3, 1, "gossip_ok", 2_501, at(2_501));
    msg(
        1,
        2,
        "gossip",
        3_000,
        Fate::Dropped {
            by: DropCause::Blackhole,
            at_us: 3_000_000,
        },
    );
    msg(2, 3, "read", 3_400, Fate::Held);
    state.apply(&Stamped::new(4_100, Event::Messages { messages, lost: 0 }));
    state
}

#[test]
fn a_maelstrom_session_shows_messages_by_type_and_its_flow_by_body_type() {
    let state = maelstrom_state();
    let t = render(160, 40, &state, &selected(1));
    let screen = t.backend().to_string();
    let n1 = screen
        .lines()
        .find(|l| l.contains("n1") && l.contains("4001"))
        .unwrap_or_else(|| panic!("no row for n1:\n{screen}"));
    assert!(
        n1.contains("315/314") && n1.contains("gossip 120/118"),
        "n1's totals and its busiest type: {n1}"
    );
    assert!(screen.contains("msgs in/out"), "{screen}");
    insta::assert_snapshot!("maelstrom_nodes_160x40", screen);

    // The message-flow panel names each arrow by its body's type, the ones the classifier has no label for
    // (`gossip_ok`) included, and marks the lost and the held.
    let view = ViewState {
        flow: true,
        ..selected(1)
    };
    let t = render(160, 40, &state, &view);
    let screen = t.backend().to_string();
    assert!(screen.contains("gossip_ok"), "{screen}");
    assert!(
        !screen.contains("other"),
        "no type is lost to `other`:\n{screen}"
    );
    assert!(
        screen.contains('✕') && screen.contains("⏸ read held → n3"),
        "{screen}"
    );
    insta::assert_snapshot!("maelstrom_flow_160x40", screen);
}

/// A Paxos cluster's header names its highest ballot as `round.proposer`, as the nodes table does, never the
/// packed number the status's term carries (tester6 saw `term 65537` there).
#[test]
fn a_paxos_cluster_s_header_shows_its_ballot_as_round_dot_proposer() {
    let mut state = ClusterState::new();
    state.paxos = true;
    state.term = squall_node::paxos::Ballot {
        round: 3,
        proposer: 2,
    }
    .pack();
    let t = render(120, 40, &state, &selected(1));
    let screen = t.backend().to_string();
    let header: String = screen.lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(header.contains("ballot 3.2"), "{header}");
    assert!(
        !header.contains(&state.term.to_string()),
        "no packed ballot: {header}"
    );
}

/// The cells of row `y` of the screen between columns `from` and `to`, as (text, style of its first
/// character) per run of non-blank characters.
fn cells_of(
    t: &Terminal<TestBackend>,
    y: u16,
    from: u16,
    to: u16,
) -> Vec<(String, ratatui::style::Style)> {
    let buf = t.backend().buffer();
    let mut out: Vec<(String, ratatui::style::Style)> = Vec::new();
    let mut open = false;
    for x in from..to {
        let c = &buf[(x, y)];
        if c.symbol() == " " {
            open = false;
            continue;
        }
        if open {
            out.last_mut().expect("an open cell").0.push_str(c.symbol());
        } else {
            out.push((c.symbol().to_string(), c.style()));
            open = true;
        }
    }
    out
}

/// Issue 23 (new-user tester): a Paxos node's log panel showed `0` in every cell and the nodes table
/// `last idx/term 78/0`. Each cell is now a slot with the ballot its value was accepted in, solid once chosen,
/// outlined while only accepted, `--` for a gap, and the title says the slots in Paxos words. Seen failing
/// (every cell `0`, no `slots` title) before the panel read the Paxos view.
#[test]
fn a_paxos_log_panel_shows_each_slot_s_ballot_chosen_apart_from_accepted_and_gaps() {
    use ratatui::style::Color;
    let state = fixture::paxos_state();
    let t = render(160, 48, &state, &ViewState::new());
    let screen = t.backend().to_string();
    assert!(
        screen.contains(" slots 52–80 n2: last slot 80, chosen 77 (+1 past it), ballot 3.2 "),
        "{screen}"
    );
    assert!(
        screen.contains("last slot") && !screen.contains("last idx/term"),
        "{screen}"
    );
    // The backend quotes each row.
    let lines: Vec<&str> = screen.lines().map(|l| l.trim_matches('"')).collect();
    let panel = lines
        .iter()
        .position(|l| l.contains(" slots "))
        .expect("the slots panel");
    // The panel's right edge, beside the links panel.
    let right = lines[panel]
        .chars()
        .position(|c| c == '┐')
        .expect("the panel's corner") as u16;
    let row_of = |node: &str| {
        (panel..lines.len())
            .find(|&y| lines[y].starts_with(&format!("│ {node} ")))
            .unwrap_or_else(|| panic!("{node}'s strip:\n{screen}")) as u16
    };
    let strip = |node: &str| cells_of(&t, row_of(node), 5, right);
    let solid = |s: &ratatui::style::Style| s.bg.is_some_and(|b| b != Color::Reset);
    let outlined =
        |s: &ratatui::style::Style| !solid(s) && s.add_modifier.contains(Modifier::UNDERLINED);
    // n2 leads at 3.2: slots 52–77 chosen (2.3 up to 70, then 3.2), 78 and 80 accepted only, 79 chosen
    // past the prefix.
    let n2 = strip("n2");
    assert_eq!(n2.len(), 29, "{n2:?}");
    let texts: Vec<&str> = n2.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts[..19], ["2.3"; 19], "{texts:?}");
    assert_eq!(texts[19..], ["3.2"; 10], "{texts:?}");
    assert!(n2[..26].iter().all(|(_, s)| solid(s)), "{n2:?}");
    assert!(
        outlined(&n2[26].1) && solid(&n2[27].1) && outlined(&n2[28].1),
        "{n2:?}"
    );
    // Ballots have colours of their own.
    assert_ne!(n2[0].1.bg, n2[20].1.bg);
    // n3 missed slot 78 (a gap) and accepted 79, not chosen yet; its slots end there.
    let n3 = strip("n3");
    assert_eq!(n3.len(), 28, "{n3:?}");
    assert_eq!(n3[26].0, "--", "{n3:?}");
    assert!(n3[27].0 == "3.2" && outlined(&n3[27].1), "{n3:?}");
    // n1, cut off at 1.1 with slots up to 45, ends before the window.
    assert!(
        lines[row_of("n1") as usize].contains("◂ slots end at 45"),
        "{screen}"
    );
    // The nodes table and its status line say the last slot, never `78/0`.
    assert!(
        !screen.contains("80/0") && !screen.contains("79/0"),
        "{screen}"
    );
    let line = squall::state::describe_node(&state.nodes[&2]);
    assert!(
        line.contains(" last slot 80 ") && line.contains("ballot 3.2"),
        "{line}"
    );
    // Selected, n3's slots are named in the title.
    let t = render(160, 48, &state, &selected(3));
    assert!(
        t.backend()
            .to_string()
            .contains("n3: last slot 79, chosen 77, ballot 3.2 "),
        "{}",
        t.backend()
    );
    insta::assert_snapshot!("paxos_slots_160x48", screen);
}

/// tester7 (finding 8): a Paxos session's roles legend offered Raft's `pre-vote`; Multi-Paxos has none. A Raft
/// session's keeps it. Seen failing before the legend looked at the cluster's protocol.
#[test]
fn a_paxos_roles_legend_has_no_pre_vote() {
    let paxos = render(160, 48, &fixture::paxos_state(), &ViewState::new())
        .backend()
        .to_string();
    assert!(
        paxos.contains("candidate") && !paxos.contains("pre-vote"),
        "{paxos}"
    );
    let raft = render(160, 48, &fixture::sample_state(3), &ViewState::new())
        .backend()
        .to_string();
    assert!(raft.contains("pre-vote"), "{raft}");
}

/// Issue 23: the `?` page names the running node kind's message kinds for `only KIND` (a Paxos cluster's
/// help listed none, and the console's Raft's). Seen failing before the view carried the kinds.
#[test]
fn the_help_page_names_the_running_kind_s_message_kinds() {
    let state = fixture::paxos_state();
    let view = ViewState {
        help: true,
        message_kinds: squall::command::fault::PAXOS_LABELS.to_vec(),
        ..ViewState::new()
    };
    let screen = render(160, 60, &state, &view).backend().to_string();
    assert!(
        screen.contains(
            "only KIND  prepare promise accept accepted nack heartbeat catch-up chosen snapshot"
        ),
        "{screen}"
    );
}

/// polish2 item 2: a node whose host is cut off (`--hosts`) says `unreachable` in the process column, which was
/// 9 columns wide and showed `unreachab`. The column widens while a host is cut off; at 80 columns the table
/// still fits, `lag` last.
#[test]
fn a_node_whose_host_is_cut_off_says_unreachable_whole_at_any_width() {
    use squall::state::{Event, HostChange, Stamped};
    let mut state = fixture::sample_state(5);
    let now = state.now_ms + 1;
    state.apply(&Stamped::new(
        now,
        Event::Host {
            host: "db-2".into(),
            nodes: vec![2, 3],
            change: HostChange::Unreachable {
                why: "its ssh connection ended".into(),
            },
        },
    ));
    let nodes_tab = ViewState {
        tab: Tab::Nodes,
        ..selected(1)
    };
    for (width, height, view) in [(160, 48, selected(1)), (80, 24, nodes_tab.clone())] {
        let screen = render(width, height, &state, &view).backend().to_string();
        let table: Vec<&str> = screen
            .lines()
            .skip_while(|l| !(l.contains(" node ") && l.contains(" process ")))
            .take(6)
            .collect();
        assert!(
            table.first().is_some_and(|h| h.contains(" lag ")),
            "{width}x{height}: the table's header lost `lag`:\n{screen}"
        );
        for node in [2, 3] {
            let row = table
                .iter()
                .find(|l| l.contains(&format!(" n{node} ")))
                .unwrap_or_else(|| panic!("{width}x{height}: no row for n{node}:\n{screen}"));
            assert!(
                row.contains(" unreachable "),
                "{width}x{height}: n{node}'s process is cut short: {row}"
            );
        }
        let n1 = table.iter().find(|l| l.contains(" n1 ")).expect("n1's row");
        assert!(n1.contains(" running "), "{n1}");
    }
    let screen = render(80, 24, &state, &nodes_tab).backend().to_string();
    insta::assert_snapshot!("nodes_host_unreachable_80x24", screen);
}
