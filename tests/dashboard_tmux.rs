//! The real dashboard in a real terminal: tmux runs `squall up --record`, `send-keys` types as a person
//! would and `capture-pane` reads the screen. Kill the leader, isolate a node, heal, quit; then check that no
//! node process is left and that the recording is a valid asciicast whose markers name the faults.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::wait_gone;

const WAIT: Duration = Duration::from_secs(40);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
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

/// "leader n2  term 5" in the header.
fn header_leader(screen: &str) -> Option<(u64, u64)> {
    let line = screen.lines().find(|l| l.contains("leader n"))?;
    let rest = &line[line.find("leader n")? + "leader n".len()..];
    let leader: u64 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let t = &line[line.find("term ")? + 5..];
    let term: u64 = t
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((leader, term))
}

/// How many cells of the links matrix show a cut (✕), reading only the matrix rows of the links panel.
fn cut_cells(screen: &str) -> Option<usize> {
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines.iter().position(|l| l.contains("links from→to"))?;
    let byte = lines[top].find("┌ links")?;
    let col = lines[top][..byte].chars().count();
    let mut cuts = 0;
    for line in &lines[top + 1..] {
        let panel: String = line.chars().skip(col).collect();
        if panel.starts_with('└') {
            break;
        }
        if panel.trim_start_matches('│').starts_with('n') {
            cuts += panel.matches('✕').count();
        }
    }
    Some(cuts)
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dashboard_in_tmux_kill_leader_isolate_heal_quit_and_record() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let cast = dir.path().join("session.cast");
    let conf = dir.path().join("tmux.conf");
    std::fs::write(
        &conf,
        "set -g remain-on-exit on\nset -g default-terminal xterm-256color\n",
    )
    .unwrap();
    let tmux = Tmux {
        socket: format!("squall-e2e-{}", std::process::id()),
    };
    let command = format!(
        "sh -c '{} up -n 3 --seed 3 --dir {} --record {}; echo squall exited with $?'",
        env!("CARGO_BIN_EXE_squall"),
        cdir.display(),
        cast.display()
    );
    let st = tmux
        .cmd()
        .arg("-f")
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "160",
            "-y",
            "48",
            &command,
        ])
        .status()
        .expect("tmux new-session");
    assert!(st.success());

    tmux.wait_for("a leader in the header", header_leader);
    tmux.wait_for("the recording indicator", |s| {
        s.contains("REC").then_some(())
    });

    tmux.keys(&["K"]);
    // The feed names the node the key killed (leadership may have moved since the header was read).
    let (leader, term) = tmux.wait_for("the kill in the event feed", support::killed_leader);
    let (new_leader, new_term) = tmux.wait_for("a different leader in a higher term", |s| {
        header_leader(s).filter(|(l, t)| *l != leader && *t > term)
    });

    // Isolate a live node other than the new leader.
    let victim = (1..=3).find(|n| *n != leader && *n != new_leader).unwrap();
    tmux.keys(&[&victim.to_string()]);
    tmux.keys(&["i"]);
    // Isolating one node of three cuts its four directed links.
    tmux.wait_for("the isolation in the links panel", |s| {
        cut_cells(s).filter(|n| *n >= 4).map(|_| ())
    });
    tmux.wait_for("the isolation in the event feed", |s| {
        s.contains(&format!("isolate node {victim}")).then_some(())
    });

    tmux.keys(&["h"]);
    tmux.wait_for("links healed", |s| {
        (cut_cells(s) == Some(0) && s.contains("heal every network fault")).then_some(())
    });

    let pids = support::node_pids(&cdir);
    assert!(!pids.is_empty());

    tmux.keys(&["q"]);
    // The pane's shell prints squall's exit status once squall is gone (tmux's own pane_dead_status is not
    // always filled in, so it is not relied on).
    let code = tmux.wait_for("squall to exit after q", |s| {
        let line = s.lines().find(|l| l.starts_with("squall exited with "))?;
        Some(
            line.trim_start_matches("squall exited with ")
                .trim()
                .to_string(),
        )
    });
    assert_eq!(
        code,
        "0",
        "squall's exit status; screen:\n{}",
        tmux.screen()
    );
    let left = wait_gone(&pids, Duration::from_secs(5));
    assert!(left.is_empty(), "node processes left after quit: {left:?}");

    check_recording(&cast, leader, term, victim);
    assert!(new_term > term);
}

fn check_recording(cast: &Path, leader: u64, term: u64, victim: u64) {
    let parsed =
        squall::record::asciicast::read_cast(cast).expect("the recording parses as asciicast v2");
    assert_eq!(
        (parsed.header.width, parsed.header.height),
        (160, 48),
        "the header carries the terminal size"
    );
    assert!(
        parsed.events_of("o").count() > 10,
        "the recording holds the frames"
    );
    let markers = parsed.markers();
    let kill = format!("kill node {leader} (leader, term {term})");
    assert!(
        markers.iter().any(|m| m.contains(&kill)),
        "a marker names `{kill}`: {markers:?}"
    );
    assert!(
        markers
            .iter()
            .any(|m| m.contains(&format!("isolate node {victim}"))),
        "{markers:?}"
    );
    assert!(
        markers.iter().any(|m| m.contains("leads term")),
        "a marker names the new leader: {markers:?}"
    );
    // asciinema 2 opens /dev/tty even for `cat`, so give it a pseudo-terminal through script(1).
    let cat = format!("asciinema cat '{}' > /dev/null", cast.display());
    match Command::new("script")
        .args(["-qec", &cat, "/dev/null"])
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "asciinema cat: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "asciinema is required in CI (.ci/run installs it)"
            );
            eprintln!("asciinema not installed: skipped `asciinema cat`");
        }
    }
}

#[test]
fn dashboard_in_tmux_command_prompt_sets_and_heals_disk_and_clock_faults() {
    if !tmux_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let conf = dir.path().join("tmux.conf");
    std::fs::write(
        &conf,
        "set -g remain-on-exit on\nset -g default-terminal xterm-256color\n",
    )
    .unwrap();
    let tmux = Tmux {
        socket: format!("squall-e2e-disk-{}", std::process::id()),
    };
    let command = format!(
        "sh -c '{} up -n 3 --seed 4 --disk-faults --dir {}; echo squall exited with $?'",
        env!("CARGO_BIN_EXE_squall"),
        cdir.display(),
    );
    let st = tmux
        .cmd()
        .arg("-f")
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "160",
            "-y",
            "48",
            &command,
        ])
        .status()
        .expect("tmux new-session");
    assert!(st.success());
    tmux.wait_for("a leader in the header", header_leader);

    tmux.keys(&[":"]);
    tmux.wait_for("the command prompt", |s| {
        s.contains(" command ").then_some(())
    });
    tmux.keys(&["disk 1 stall", "Enter"]);
    tmux.wait_for("the stall in the faults line", |s| {
        s.contains("n1 disk stalled").then_some(())
    });
    tmux.keys(&[":"]);
    tmux.keys(&["clock 2 +1h", "Enter"]);
    tmux.wait_for("node 2's clock in the nodes table", |s| {
        (s.contains("clock") && s.contains("+1h")).then_some(())
    });
    tmux.keys(&[":"]);
    tmux.keys(&["disk 9 melt", "Enter"]);
    tmux.wait_for("the bad line's error in the feed", |s| {
        s.contains("unknown disk fault").then_some(())
    });

    tmux.keys(&["h"]);
    tmux.wait_for("every fault healed", |s| {
        (!s.contains("n1 disk stalled") && s.contains("heal every network, disk and clock fault"))
            .then_some(())
    });
    tmux.keys(&["q"]);
    let code = tmux.wait_for("squall to exit after q", |s| {
        let line = s.lines().find(|l| l.starts_with("squall exited with "))?;
        Some(
            line.trim_start_matches("squall exited with ")
                .trim()
                .to_string(),
        )
    });
    assert_eq!(code, "0", "squall exited with {code}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(cdir.to_str().unwrap()),
        "a fault filesystem outlived the dashboard:\n{mounts}"
    );
}
