//! Teaching mode in the real dashboard (issue 20): tmux runs `squall up --slow`, keys and the prompt drive
//! it as a teacher would, and the screen is read back. The walk from "all followers" to "n3 leads" one message
//! at a time with the held-queue panel open; the links matrix's keys acting on the cursor's link only; the
//! feed's order with held frames; the log panel scrolled to a divergent range showing both sides.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::tmux::{Tmux, header_leader, skipped_without_tmux};

/// One cluster at a time: five `--slow` nodes and a dashboard are a lot for a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `squall up ARGS` in a 160×50 terminal with its cluster in `dir`.
fn up(tag: &str, dir: &std::path::Path, args: &str) -> Tmux {
    let cdir = dir.join("cluster");
    let mut t = Tmux::start_sized(
        tag,
        dir,
        &format!("up {args} --dir {}", cdir.display()),
        160,
        50,
    );
    t.wait = Duration::from_secs(60);
    t
}

/// The held-queue panel's title: how many frames it lists.
fn held_count(screen: &str) -> Option<usize> {
    let at = screen.find(" held: ")?;
    let rest = &screen[at + " held: ".len()..];
    if rest.starts_with("none") {
        return Some(0);
    }
    rest.split_whitespace().next()?.parse().ok()
}

/// The held-queue panel's line marked `▶` (the frame `step *` delivers next), as `(link, detail)`:
/// `("3->1", "pre-vote n3 term 2 last 4/1")`.
fn next_frame(screen: &str) -> Option<(String, String)> {
    screen.lines().find_map(|l| {
        let at = l.find("│▶ ")?;
        let rest = l[at + "│▶ ".len()..].trim_start();
        let (link, detail) = rest.split_once(' ')?;
        let (a, b) = link.split_once("->")?;
        a.parse::<u64>().ok()?;
        b.parse::<u64>().ok()?;
        let detail = detail.split('│').next()?.trim_end();
        let detail = detail.trim_end_matches("stale").trim_end();
        Some((link.to_string(), detail.to_string()))
    })
}

/// The links of the frames the held-queue panel lists, oldest first.
fn held_links(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(top) = lines.iter().position(|l| l.contains("┌ held: ")) else {
        return Vec::new();
    };
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.starts_with('└'))
        .filter_map(|l| {
            let inner = l.strip_prefix('│')?;
            let link = inner.chars().skip(3).collect::<String>();
            let link = link.split_whitespace().next()?.to_string();
            link.contains("->").then_some(link)
        })
        .collect()
}

/// The nodes table's row of node `id`.
fn node_row(screen: &str, id: u64) -> Option<&str> {
    let name = format!(" n{id} ");
    screen
        .lines()
        .find(|l| l.starts_with('│') && l.contains(&name) && l.contains('/'))
}

/// The kind of message a held frame is (`pre-vote n3 term 2 …`: a pre-vote, its own kind), in protocol terms.
fn kind(detail: &str) -> &'static str {
    let w: Vec<&str> = detail.split_whitespace().collect();
    match (w.first().copied(), w.get(1).copied()) {
        (Some("pre-vote"), Some(n)) if n.starts_with('n') => "pre-vote",
        (Some("vote"), Some(n)) if n.starts_with('n') => "vote",
        (Some("pre-vote-reply"), Some(n)) if n.starts_with('n') => "pre-vote-reply",
        (Some("vote-reply"), Some(n)) if n.starts_with('n') => "vote-reply",
        _ => "other",
    }
}

#[test]
fn the_teaching_walk_in_the_dashboard_elects_n3_one_message_at_a_time() {
    if skipped_without_tmux() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tmux = up("walk", dir.path(), "-n 5 --seed 7 --slow");
    let (old, term) = tmux.wait_for("a leader in the header", header_leader);
    let c = if old == 3 { 4 } else { 3 };
    tmux.keys(&["F"]);
    tmux.wait_for("teaching mode in the header", |s| {
        s.contains("TIMERS FROZEN").then_some(())
    });
    // The nodes table's timer column says the followers' timers stand still.
    tmux.wait_for("the frozen timers in the nodes table", |s| {
        let stopped = (1..=5)
            .filter(|&n| n != old)
            .filter(|&n| node_row(s, n).is_some_and(|r| r.contains(" stop ")))
            .count();
        (stopped == 4).then_some(())
    });
    tmux.prompt("hold *");
    tmux.prompt("held");
    tmux.wait_for("the held-queue panel, empty", |s| {
        (held_count(s) == Some(0)).then_some(())
    });
    tmux.keys(&[&c.to_string()]);
    tmux.keys(&["e"]);
    tmux.wait_for("n3's pre-vote round in the feed", |s| {
        s.contains(&format!("n{c} asks for pre-votes for term {}", term + 1))
            .then_some(())
    });
    let mut steps: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let screen = tmux.screen();
        if header_leader(&screen) == Some((c, term + 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no leader after {} steps: {steps:#?}\n{screen}",
            steps.len()
        );
        let Some(next) = next_frame(&screen) else {
            // A delivered request's answer is on its way back to the proxy.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        assert!(
            steps.len() < 15,
            "n{c} does not lead after 15 steps: {steps:#?}\n{screen}"
        );
        tmux.prompt("step * 1");
        // The step's message shows in the feed, as the panel named it, and the panel moves on (in frozen
        // time no two held frames read the same, so the ▶ line changes with every step).
        let line = format!("deliver {} ", next.0);
        tmux.wait_for("the delivery in the feed and the panel moving on", |s| {
            (s.lines().any(|l| l.contains(&line) && l.contains(&next.1))
                && next_frame(s).as_ref() != Some(&next))
            .then_some(())
        });
        eprintln!("step {}: {} {}", steps.len() + 1, next.0, next.1);
        steps.push(next);
    }
    // In the protocol's order: the pre-votes before the votes, a vote before its answer.
    let kinds: Vec<&str> = steps.iter().map(|(_, d)| kind(d)).collect();
    assert!(!kinds.contains(&"other"), "{steps:#?}");
    let first = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or(usize::MAX);
    let last = |k: &str| kinds.iter().rposition(|x| *x == k).unwrap_or(0);
    assert!(
        last("pre-vote") < first("vote") && first("pre-vote-reply") < first("vote"),
        "{kinds:?}"
    );
    assert!(first("vote") < first("vote-reply"), "{kinds:?}");
    // Thawed and released, the cluster runs on under n3; the leader's `rpc in` counts the answers it gets.
    tmux.keys(&["F"]);
    tmux.prompt("release *");
    tmux.wait_for("n3 still leading, timers running", |s| {
        (header_leader(s) == Some((c, term + 1)) && !s.contains("TIMERS FROZEN")).then_some(())
    });
    tmux.wait_for("the leader's rpc in counting its answers", |s| {
        let row = node_row(s, c)?;
        let rpc = row
            .split_whitespace()
            .find(|w| w.matches('/').count() == 2)?;
        (rpc.split('/').next()? != "0").then_some(())
    });
    tmux.keys(&["q"]);
    tmux.wait_for("squall's exit", |s| {
        s.contains("squall exited with 0").then_some(())
    });
}

#[test]
fn links_matrix_keys_act_on_the_cursors_link_only() {
    if skipped_without_tmux() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tmux = up("cursor", dir.path(), "-n 3 --seed 7 --slow");
    let (l, _) = tmux.wait_for("a leader in the header", header_leader);
    tmux.keys(&["F"]);
    tmux.wait_for("teaching mode", |s| {
        s.contains("TIMERS FROZEN").then_some(())
    });
    tmux.prompt("hold *");
    tmux.keys(&["H"]);
    tmux.keys(&["b"]);
    tmux.wait_for("two heartbeats held", |s| {
        (held_count(s) == Some(2)).then_some(())
    });
    let (first, _) = tmux.wait_for("the next frame marked", next_frame);
    // The cursor goes on the other heartbeat's link: the one `step *` would not deliver.
    let other = (1..=3)
        .filter(|&n| n != l)
        .map(|n| format!("{l}->{n}"))
        .find(|k| *k != first)
        .unwrap();
    tmux.keys(&[&l.to_string()]);
    tmux.keys(&["m"]);
    for _ in 0..3 {
        if tmux.screen().contains(&format!("link {other}")) {
            break;
        }
        tmux.keys(&["Right"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux.wait_for("the cursor on the other link", |s| {
        s.contains(&format!("link {other}")).then_some(())
    });
    // `n` steps the cursor's link, not the oldest frame: the other heartbeat stays next.
    tmux.keys(&["n"]);
    tmux.wait_for(
        "the cursor's heartbeat delivered, the other still held",
        |s| {
            (s.contains(&format!("deliver {other} heartbeat"))
                && !held_links(s).contains(&other)
                && next_frame(s).is_some_and(|(k, _)| k == first))
            .then_some(())
        },
    );
    // Another round of heartbeats (through the prompt: the cursor keeps the keyboard), then `z` drops the
    // one on the cursor's link only.
    tmux.prompt("heartbeat");
    tmux.wait_for("a heartbeat held on the cursor's link", |s| {
        held_links(s).contains(&other).then_some(())
    });
    let before = held_links(&tmux.screen());
    tmux.keys(&["z"]);
    let after = tmux.wait_for("the cursor's frame dropped", |s| {
        (s.contains(&format!("drop {other} heartbeat")) && !held_links(s).contains(&other))
            .then(|| held_links(s))
    });
    let mut expected = before.clone();
    expected.retain(|k| *k != other);
    assert_eq!(after, expected, "only the cursor's frame left the queue");
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    tmux.wait_for("squall's exit", |s| {
        s.contains("squall exited with 0").then_some(())
    });
}

#[test]
fn a_grant_of_a_held_request_shows_after_its_delivery() {
    if skipped_without_tmux() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let tmux = up("order", dir.path(), "-n 3 --seed 7 --slow");
    let (l, term) = tmux.wait_for("a leader in the header", header_leader);
    let f = (1..=3).find(|&n| n != l).unwrap();
    tmux.keys(&["F"]);
    tmux.wait_for("teaching mode", |s| {
        s.contains("TIMERS FROZEN").then_some(())
    });
    tmux.prompt("hold *");
    tmux.keys(&["H"]);
    // Two pre-vote rounds of the same term, both held.
    let asks = format!("n{f} asks for pre-votes for term {}", term + 1);
    tmux.keys(&[&f.to_string()]);
    tmux.keys(&["e"]);
    tmux.wait_for("the first round held", |s| {
        (held_count(s) == Some(2)).then_some(())
    });
    tmux.keys(&["e"]);
    tmux.wait_for("the second round held", |s| {
        (held_count(s) == Some(4)).then_some(())
    });
    // The oldest frame, the first round's, goes through; its receiver grants the pre-vote.
    let (link, _) = tmux.wait_for("the next frame", next_frame);
    let voter: u64 = link.split("->").nth(1).unwrap().parse().unwrap();
    tmux.prompt("step * 1");
    let grant = format!("n{voter} pre-votes for n{f} in term {}", term + 1);
    let screen = tmux.wait_for("the grant in the feed", |s| {
        s.contains(&grant).then(|| s.to_string())
    });
    let row = |t: &str| screen.lines().position(|l| l.contains(t));
    let delivered = row(&format!("deliver {link}")).expect("the delivery line");
    assert!(
        delivered < row(&grant).unwrap(),
        "the grant shows after the delivery that caused it:\n{screen}"
    );
    assert!(
        !screen.contains(&format!("{asks} — granted by")),
        "no request line is credited with the held round's grant:\n{screen}"
    );
    tmux.keys(&["q"]);
    tmux.wait_for("squall's exit", |s| {
        s.contains("squall exited with 0").then_some(())
    });
}

/// The log panel's row of node `id` (the strip right of its label).
fn log_row(screen: &str, id: u64) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines.iter().position(|l| l.contains("┌ logs "))?;
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.starts_with('└'))
        .find(|l| {
            let t = l.trim_start_matches('│');
            t.starts_with(&format!(" n{id} ")) || t.starts_with(&format!("▶n{id} "))
        })
        .map(|l| {
            // The logs panel is the left one; the links matrix beside it ends the row.
            l.split('│').nth(1).unwrap_or("").to_string()
        })
}

/// `last idx/term` of node `id` in the nodes table.
fn last_index(screen: &str, id: u64) -> Option<u64> {
    node_row(screen, id)?
        .split_whitespace()
        .filter(|w| w.matches('/').count() == 1)
        .find_map(|w| {
            let (i, t) = w.split_once('/')?;
            t.parse::<u64>().ok()?;
            i.parse().ok()
        })
}

#[test]
fn the_log_panel_scrolled_to_a_divergent_range_shows_both_sides() {
    if skipped_without_tmux() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    // No CheckQuorum: the isolated leader keeps leading, and appending, in its old term. No snapshots: the
    // range looked at is never compacted away, however slowly the test runs.
    let tmux = up(
        "diverge",
        dir.path(),
        "-n 3 --seed 7 --no-check-quorum --snapshot-every 0",
    );
    let (l, term) = tmux.wait_for("a leader in the header", header_leader);
    tmux.prompt("workload rate 200");
    tmux.keys(&["c"]);
    tmux.wait_for("writes committing", |s| {
        last_index(s, l).filter(|&i| i > 20).map(|_| ())
    });
    tmux.prompt(&format!("isolate {l}"));
    let (nl, nterm) = tmux.wait_for("a new leader among the others", |s| {
        header_leader(s).filter(|&(n, t)| n != l && t > term)
    });
    // The majority runs far past the old leader's last entry: beyond the tail its status carries.
    let old_last = tmux.wait_for("the majority far ahead", |s| {
        let old = last_index(s, l)?;
        (last_index(s, nl)? > old + 150).then_some(old)
    });
    tmux.prompt(&format!("log {old_last}"));
    let term_digits = |row: &str, t: u64| row.matches(&format!(" {t:>2}")).count();
    let screen = tmux.wait_for("both sides of the divergent range", |s| {
        let old_row = log_row(s, l)?;
        let new_row = log_row(s, nl)?;
        (s.contains("scrolled")
            && !new_row.contains("··")
            && term_digits(&new_row, nterm) > 0
            && term_digits(&old_row, term) > 0)
            .then(|| s.to_string())
    });
    eprintln!("{screen}");
    // `log` follows the end again.
    tmux.prompt("log");
    tmux.wait_for("the panel following the end", |s| {
        (!s.contains("scrolled")).then_some(())
    });
    tmux.keys(&["q"]);
    tmux.wait_for("squall's exit", |s| {
        s.contains("squall exited with 0").then_some(())
    });
}
