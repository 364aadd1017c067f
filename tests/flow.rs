//! Messages on screen and in the report, on real processes: tmux runs `squall up --slow`, `M` opens the
//! message-flow panel, `K` kills the leader, and the panel shows the election's vote and vote-reply arrows;
//! then `squall report` of that session draws the same window as an SVG Lamport diagram with an arrow for
//! every message of the window.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::wait_gone;

/// --slow elections take 3–6 s of timeout, and the machine may be loaded.
const WAIT: Duration = Duration::from_secs(60);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// Starts `squall SQUALL_ARGS` in a detached 160×48 session; `squall exited with N` follows its end.
    fn start(dir: &Path, squall_args: &str) -> Tmux {
        let conf = dir.join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g default-terminal xterm-256color\n",
        )
        .unwrap();
        let tmux = Tmux {
            socket: format!("squall-flow-{}", std::process::id()),
        };
        let command = format!(
            "sh -c '{} {squall_args}; echo squall exited with $?'",
            env!("CARGO_BIN_EXE_squall"),
        );
        let st = tmux
            .cmd()
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-s", "main", "-x", "160", "-y", "48"])
            .arg(&command)
            .status()
            .expect("tmux new-session");
        assert!(st.success());
        tmux
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "main"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Polls the screen until `f` finds what it wants; panics with the last screen otherwise.
    fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if let Some(v) = f(&screen) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// True (after saying so) when tmux is missing outside CI; in CI a missing tmux fails the test.
fn skipped_without_tmux() -> bool {
    let there = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if there {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tmux is required in CI (.ci/run installs it)"
    );
    eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
    true
}

/// A row of the flow panel drawing an arrow of `kind` sent by `from` (any sender when `None`): the kind,
/// the sender's dot on `from`'s lane, and an arrowhead.
fn arrow_row(screen: &str, kind: &str, from: Option<u64>) -> Option<String> {
    let panel = &screen[screen.find(" messages ")?..];
    let mut lines = panel.lines();
    let lanes = lines.nth(1)?;
    let col = |needle: &str| {
        lanes
            .chars()
            .collect::<String>()
            .find(needle)
            .map(|b| lanes[..b].chars().count())
    };
    let sender = match from {
        Some(n) => Some(col(&format!("n{n}"))?),
        None => None,
    };
    lines
        .find(|l| {
            let chars: Vec<char> = l.chars().collect();
            let dot = chars.iter().position(|c| *c == '●' || *c == '○');
            l.split(|c: char| !(c.is_alphanumeric() || c == '-'))
                .any(|w| w == kind)
                && dot.is_some()
                && sender.is_none_or(|x| dot == Some(x))
                && (l.contains('▶') || l.contains('◀'))
        })
        .map(str::to_string)
}

/// The leader named in the header ("leader n2").
fn leader(screen: &str) -> Option<u64> {
    let line = screen.lines().take(2).find(|l| l.contains("leader n"))?;
    let rest = &line[line.find("leader n")? + "leader n".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_flow_panel_shows_the_election_after_kill_leader_and_the_report_draws_it() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::start(
        dir.path(),
        &format!("up -n 3 --slow --seed 7 --dir {} --keep", cdir.display()),
    );
    let old = tmux.wait_for("a leader in the header", leader);
    tmux.keys(&["M"]);
    tmux.wait_for("the message-flow panel with heartbeats", |s| {
        arrow_row(s, "heartbeat", Some(old))
    });
    tmux.keys(&["K"]);
    // The panel stands where the feed was: the kill shows in the header's faults line.
    tmux.wait_for("the kill in the header", |s| {
        s.lines()
            .take(3)
            .any(|l| l.contains("killed"))
            .then_some(())
    });
    let new = tmux.wait_for("a new leader in the header", |s| {
        leader(s).filter(|l| *l != old)
    });
    // The winner asked for votes (its dot on its lane) and a voter answered it.
    let (vote, reply) = tmux.wait_for(
        "the new leader's vote and a vote-reply arrow in the panel",
        |s| {
            Some((
                arrow_row(s, "vote", Some(new))?,
                arrow_row(s, "vote-reply", None)?,
            ))
        },
    );
    eprintln!("vote row:  {vote}\nreply row: {reply}");
    let pids = support::node_pids(&cdir);
    tmux.keys(&["q"]);
    let code = tmux.wait_for("squall to exit after q", |s| {
        let line = s.lines().find(|l| l.starts_with("squall exited with "))?;
        Some(
            line.trim_start_matches("squall exited with ")
                .trim()
                .to_string(),
        )
    });
    assert_eq!(code, "0", "screen:\n{}", tmux.screen());
    let left = wait_gone(&pids, Duration::from_secs(5));
    assert!(left.is_empty(), "node processes left after quit: {left:?}");

    // The report of that session: its default window is the kill and the election after it.
    let log = cdir.join("events.jsonl.gz");
    assert!(
        cdir.join("events.messages.jsonl.gz").exists(),
        "no message record beside {}",
        log.display()
    );
    let html_path = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("report")
        .arg(&log)
        .arg("-o")
        .arg(&html_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    let at = html
        .find("<h2>Message flow</h2>")
        .expect("a message-flow section");
    let section = &html[at..];
    let svg = &section[section.find("<svg").expect("the diagram")..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    // The caption says how many messages the window holds; every one gets an arrow (none is sampled out
    // in an election at --slow timings).
    let n: usize = section
        .split(" of the session")
        .nth(1)
        .and_then(|r| r.split(": ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {}", &section[..section.len().min(600)]));
    assert!(n > 0, "{}", &section[..600.min(section.len())]);
    assert_eq!(svg.matches("<g class=\"msg").count(), n, "{svg}");
    assert!(svg.contains("data-kind=\"vote\""), "{svg}");
    assert!(svg.contains("data-kind=\"vote-reply\""), "{svg}");
    assert!(svg.contains("marker-end="), "{svg}");

    // A window a person types wrong is refused with the input named, exit 2.
    let bad = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("report")
        .arg(&log)
        .args(["-o", "/dev/null", "--flow", "14..12"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--flow") && err.contains("14..12"), "{err}");
}

#[test]
fn render_licence_prints_the_font_notice() {
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["render", "--licence"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SIL OPEN FONT LICENSE") && text.contains("Unifont"),
        "{text}"
    );
}
