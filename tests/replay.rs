//! A live session and the replay of its event log show the same screens: at every fault and at the end,
//! `squall up --dump-screens` wrote what the live state rendered; applying the log's events up to the same
//! point renders identically. Also: `squall replay` on files that are not usable logs says why.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use squall::record::eventlog::read_event_log;
use squall::record::player::Player;
use squall::state::{ClusterState, Stamped, ViewState};
use squall::ui::render_text;
use support::{Lines, ask, killed_leader, leader_term};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn replaying_the_event_log_reproduces_the_live_screens() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let screens = dir.path().join("screens");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "up",
            "--headless",
            "-n",
            "5",
            "--seed",
            "21",
            "--workload",
            "--rate",
            "50",
            "--dir",
        ])
        .arg(&cdir)
        .arg("--dump-screens")
        .arg(&screens)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let (_, term) = out.wait_for("a leader", WAIT, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
    // Every command must succeed, or it injects no fault and dumps no screen; so the pause and the wipe
    // go to nodes that the leader kill left running.
    let kill = ask(&mut stdin, &mut out, "kill leader", "kill node");
    let (killed, _) = killed_leader(&kill).expect("the kill names the leader");
    let others: Vec<u64> = (1..=5).filter(|n| *n != killed).collect();
    let (paused, wiped) = (others[1], others[0]);
    for cmd in [
        "partition 1,2|3,4,5".to_string(),
        "heal".to_string(),
        format!("pause {paused}"),
        format!("resume {paused}"),
        format!("wipe {wiped}"),
    ] {
        ask(&mut stdin, &mut out, &cmd, "");
    }
    // A check is an event of its own (not a fault): it goes through the log and the replay too.
    writeln!(stdin, "check").unwrap();
    out.wait_for("the check's answer", WAIT, |l| {
        (l.starts_with("ok: check") || l.starts_with("error: check")).then_some(())
    });
    out.wait_for("a later leader", WAIT, |l| {
        leader_term(l).filter(|(_, t)| *t > term)
    });
    // The lin-kv workload's history and its linearizability verdict go through the log and the replay too.
    ask(&mut stdin, &mut out, "workload lin-kv", "workload lin-kv");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        writeln!(stdin, "check").unwrap();
        let answer = out.wait_for("the check's answer", WAIT, |l| {
            ((l.starts_with("ok:") || l.starts_with("error:")) && l.contains("check"))
                .then(|| l.to_string())
        });
        if answer.contains("linearizability check passed") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no linearizability verdict: {answer}"
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());

    let log = read_event_log::<Stamped>(&cdir.join("events.jsonl.gz"))
        .expect("the session's event log reads back");
    assert!(!log.truncated);
    assert!(
        log.events
            .iter()
            .any(|e| matches!(e.event, squall::state::Event::Checked { .. })),
        "the check is in the event log"
    );
    for (what, found) in [
        (
            "the history",
            log.events
                .iter()
                .any(|e| matches!(e.event, squall::state::Event::Op { .. })),
        ),
        (
            "the linearizability verdict",
            log.events
                .iter()
                .any(|e| matches!(e.event, squall::state::Event::LinChecked { .. })),
        ),
    ] {
        assert!(found, "{what} is in the event log");
    }
    let mut dumps: Vec<(usize, String)> = std::fs::read_dir(&screens)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let k: usize = name.trim_start_matches("screen-").parse().unwrap();
            (k, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    dumps.sort();
    assert!(
        dumps.len() >= 7,
        "a screen per fault and one at the end: {}",
        dumps.len()
    );
    let view = ViewState::new();
    for (k, live) in &dumps {
        let mut state = ClusterState::new();
        for e in &log.events[..*k] {
            state.apply(e);
        }
        let replayed = render_text(&state, &view, 160, 48);
        assert_eq!(
            &replayed, live,
            "screen after {k} events differs between live and replay"
        );
    }
    // The player, seeking to the end, reaches the final live state too.
    let (last_k, last_screen) = dumps.last().unwrap();
    let events: Vec<Stamped> = log.events[..*last_k].to_vec();
    let mut player = Player::from_events(events, "test", None);
    player.seek_to(u64::MAX);
    assert_eq!(&render_text(player.state(), &view, 160, 48), last_screen);
}

#[test]
fn replay_refuses_files_that_are_not_squall_logs() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.txt");
    std::fs::write(&bogus, "hello\nworld\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("replay")
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("not a squall"),
        "{err}"
    );

    let newer = dir.path().join("newer.jsonl");
    std::fs::write(
        &newer,
        "{\"squall_event_log\":99,\"created\":0,\"cluster_id\":\"c\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("replay")
        .arg(&newer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("99"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let missing = dir.path().join("missing.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("replay")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl"));
}
