//! The real dashboard in a real terminal: tmux runs `squall up --record`, `send-keys` types as a person
//! would and `capture-pane` reads the screen. Kill the leader, isolate a node, heal, quit; then check that no
//! node process is left and that the recording is a valid asciicast whose markers name the faults.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::tmux::{Tmux, header_leader, skipped_without_tmux};
use support::wait_gone;

const WAIT: Duration = Duration::from_secs(40);

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

#[test]
fn dashboard_in_tmux_kill_leader_isolate_heal_quit_and_record() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let cast = dir.path().join("session.cast");
    let tmux = Tmux::start(
        "main",
        dir.path(),
        &format!(
            "up -n 3 --seed 3 --dir {} --record {}",
            cdir.display(),
            cast.display()
        ),
    );

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

    // E writes the session so far as a scenario file and names it; the file holds the isolation and the
    // heal in the console's words, and `squall run --dry-run` accepts it.
    tmux.keys(&["E"]);
    let written = tmux.wait_for("the scenario file named in the feed", |s| {
        let at = s.find("as a scenario: ")?;
        let rest = &s[at + "as a scenario: ".len()..];
        Some(rest.split_whitespace().next()?.to_string())
    });
    let scenario = std::fs::read_to_string(&written)
        .unwrap_or_else(|e| panic!("the feed names {written}, which cannot be read: {e}"));
    assert!(
        scenario.contains(&format!("do = \"isolate {victim}\""))
            && scenario.contains("do = \"heal\""),
        "{scenario}"
    );
    let dry = std::process::Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["run", "--dry-run", &written])
        .output()
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );

    // The links matrix takes the keyboard: one keystroke cuts the directed link under its cursor (a one-way
    // partition), the same key again takes the cut away.
    tmux.keys(&["m"]);
    let (from, to) = tmux.wait_for("the link cursor", |s| {
        let at = s.find(" link ")?;
        let rest = &s[at + " link ".len()..];
        let (a, b) = rest.split_whitespace().next()?.split_once("->")?;
        Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
    });
    tmux.keys(&["x"]);
    tmux.wait_for("the one-way cut in the header and the matrix", |s| {
        let faults = s.lines().nth(1)?;
        (faults.contains(&format!("cut {from}->{to}")) && cut_cells(s) == Some(1)).then_some(())
    });
    tmux.keys(&["x"]);
    tmux.wait_for("the cut taken away", |s| {
        (cut_cells(s) == Some(0) && s.contains("remove #")).then_some(())
    });
    tmux.keys(&["Escape"]);
    // The fault prompt takes a console line: a timed fault that ends by itself.
    tmux.keys(&[":"]);
    tmux.keys(&["-l", "delay * 30ms for 2s"]);
    tmux.wait_for("the grammar hint", |s| {
        s.contains("delay TARGET DUR").then_some(())
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the timed fault in the header", |s| {
        s.lines().nth(1)?.contains("delay * 30ms").then_some(())
    });
    tmux.wait_for("the timed fault's end in the feed", |s| {
        s.contains("ended after 2s").then_some(())
    });

    let pids = support::node_pids(&cdir);
    assert!(!pids.is_empty());

    tmux.keys(&["q"]);
    // The pane's shell prints squall's exit status once squall is gone (tmux's own pane_dead_status is not
    // always filled in, so it is not relied on).
    let code = tmux.exit_status("squall to exit after q");
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
    let asciinema = Command::new("asciinema")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !asciinema {
        assert!(
            std::env::var_os("CI").is_none(),
            "asciinema is required in CI (.ci/run installs it)"
        );
        eprintln!("asciinema not installed: skipped `asciinema cat`");
        return;
    }
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

/// The nodes table rows of the screen ("│  n1   4107    running   follower …").
fn node_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|l| {
            let t = l.trim_start_matches(['│', ' ', '▶']);
            t.starts_with('n') && t[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .filter(|l| l.contains("running") || l.contains("no answer") || l.contains("paused"))
        .collect()
}

/// A directory kept from an earlier session (whose workload wrote its counters) is reused by the dashboard:
/// every node answers, a check passes, and the keys a new user tripped over answer for themselves.
#[test]
fn dashboard_in_tmux_reuses_a_kept_directory_and_its_check_passes() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");

    // The earlier session: headless, its workload writing until a check has counted some writes.
    let mut first = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args([
            "up",
            "--headless",
            "-n",
            "3",
            "--workload",
            "--rate",
            "50",
            "--dir",
        ])
        .arg(&cdir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    let mut out = support::Lines::new(first.stdout.take().unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        use std::io::Write;
        writeln!(stdin, "check").unwrap();
        let answer = out.wait_for("a check's answer", WAIT, |l| {
            (l.starts_with("ok: check") || l.starts_with("error: check")).then(|| l.to_string())
        });
        if answer.starts_with("ok: check passed") && !answer.contains(" 0 were acknowledged") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no passing check in the first session: {answer}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let old_pids = support::node_pids(&cdir);
    drop(stdin);
    assert!(first.wait().unwrap().success());
    assert!(wait_gone(&old_pids, Duration::from_secs(5)).is_empty());

    // The dashboard on the kept directory.
    let tmux = Tmux::start(
        "reuse",
        dir.path(),
        &format!("up -n 3 --workload --dir {}", cdir.display()),
    );
    tmux.wait_for("a leader in the header", header_leader);
    // Every node runs and answers (none stuck at an earlier session's address).
    tmux.wait_for("three running nodes that answer", |s| {
        let rows = node_rows(s);
        (rows.len() == 3 && rows.iter().all(|r| r.contains("running"))).then_some(())
    });

    // A digit for a node that does not exist says so, and `k` then kills nothing.
    tmux.keys(&["7"]);
    tmux.wait_for("the answer to 7", |s| s.contains("no node 7").then_some(()));
    tmux.keys(&["k"]);
    tmux.wait_for("a request to select a node", |s| {
        s.contains("select a node first").then_some(())
    });
    tmux.keys(&["1"]);

    // The help's second page explains the symbols; Esc closes it.
    tmux.keys(&["?"]);
    tmux.wait_for("the keys page", |s| s.contains("keys 1/2").then_some(()));
    tmux.keys(&["?"]);
    tmux.wait_for("the symbols page", |s| {
        (s.contains("symbols 2/2") && s.contains("rpc in/out/err")).then_some(())
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("help closed", |s| {
        (!s.contains("symbols 2/2")).then_some(())
    });

    // The check on the reused directory judges this session's writes, and passes.
    tmux.wait_for("the workload acknowledging writes", |s| {
        let line = s.lines().next()?;
        let rate = &line[line.find("client ")? + 7..];
        let ok: u64 = rate.split('/').next()?.trim().parse().ok()?;
        (ok > 0).then_some(())
    });
    tmux.keys(&["v"]);
    tmux.wait_for("a passing check", |s| {
        assert!(!s.contains("check FAILED"), "the check failed:\n{s}");
        (s.contains("check passed") && s.contains("✓ nothing lost")).then_some(())
    });

    // The feed scrolls back and follows again, once it holds more than a panel: each key is a line.
    for _ in 0..8 {
        tmux.keys(&["d"]);
        tmux.keys(&["h"]);
    }
    tmux.wait_for("more lines than the panel holds", |s| {
        let n: usize = s
            .lines()
            .find(|l| l.contains("┌ events "))?
            .split("┌ events ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse()
            .ok()?;
        (n > 30).then_some(())
    });
    tmux.keys(&["PageUp"]);
    tmux.wait_for("the feed scrolled back", |s| {
        s.contains("End follows").then_some(())
    });
    tmux.keys(&["End"]);
    tmux.wait_for("the feed following", |s| {
        s.contains("PgUp scrolls back").then_some(())
    });

    // `R` records beside the event log, not into the directory squall was started from, and stopping
    // names the file.
    let cast = cdir.join("squall.cast");
    tmux.keys(&["R"]);
    tmux.wait_for("the recording to start", |s| {
        s.contains(&format!("recording to {}", cast.display()))
            .then_some(())
    });
    tmux.keys(&["R"]);
    tmux.wait_for("the recording to stop, named", |s| {
        s.contains(&format!(
            "recording stopped: {} is complete",
            cast.display()
        ))
        .then_some(())
    });
    assert!(cast.exists());

    let pids = support::node_pids(&cdir);
    // `q` quits even with the help open.
    tmux.keys(&["?"]);
    tmux.keys(&["q"]);
    let code = tmux.exit_status("squall to exit after q");
    assert_eq!(code, "0", "screen:\n{}", tmux.screen());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());
    // Both sessions' event logs are there.
    assert!(cdir.join("events.jsonl.gz").exists());
    assert!(cdir.join("events-2.jsonl.gz").exists());
}

/// Closing the terminal (tmux kills the pane: SIGHUP) stops the dashboard's cluster as cleanly as `q`: no
/// node is left and the event log is whole, ending with the session's end.
#[test]
fn closing_the_terminal_stops_the_dashboard_cleanly() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::on_socket("hup");
    // squall's standard error stays on the terminal, as it would for a person.
    let command = format!(
        "{} up -n 3 --workload --dir {}",
        env!("CARGO_BIN_EXE_squall"),
        cdir.display(),
    );
    let st = tmux
        .cmd()
        .args([
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "120",
            "-y",
            "40",
            &command,
        ])
        .status()
        .expect("tmux new-session");
    assert!(st.success());
    tmux.wait_for("a leader in the header", header_leader);
    let pids = support::node_pids(&cdir);
    assert_eq!(pids.len(), 3);
    let _ = tmux.cmd().arg("kill-server").status();
    let left = wait_gone(&pids, Duration::from_secs(20));
    assert!(
        left.is_empty(),
        "nodes left after the terminal closed: {left:?}"
    );
    // squall finishes its event log after the nodes stop; wait for the session's end to be in it.
    let log = cdir.join("events.jsonl.gz");
    let deadline = Instant::now() + WAIT;
    loop {
        let read: Option<squall::record::eventlog::EventLog<serde_json::Value>> =
            squall::record::eventlog::read_event_log(&log).ok();
        if let Some(read) = read
            && !read.truncated
            && read
                .events
                .iter()
                .any(|e| e.to_string().contains("\"Quit\""))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event log never recorded the session's end"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `C` switches the workload to lin-kv, `c` starts it, and `v` checks its history for linearizability; the
/// latency chart sits beside the feed at 160 columns.
#[test]
fn dashboard_in_tmux_switches_to_lin_kv_and_checks_linearizability() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::start(
        "lin",
        dir.path(),
        &format!("up -n 3 --seed 5 --dir {}", cdir.display()),
    );
    tmux.wait_for("a leader in the header", header_leader);
    tmux.wait_for("the latency chart", |s| {
        s.contains("latency ms").then_some(())
    });
    tmux.keys(&["C"]);
    tmux.wait_for("the switch in the feed", |s| {
        s.contains("workload lin-kv").then_some(())
    });
    tmux.keys(&["c"]);
    tmux.wait_for("lin-kv running in the header", |s| {
        s.lines()
            .take(4)
            .any(|l| l.contains("lin-kv"))
            .then_some(())
    });
    // Check until the history has something in it and the verdict is in the feed.
    let deadline = Instant::now() + WAIT;
    loop {
        tmux.keys(&["v"]);
        let found = tmux.wait_for("a check's answer", |s| {
            if s.contains("linearizability check passed: valid:") {
                Some(true)
            } else if s.contains("check passed") || s.contains("inconclusive") {
                Some(false)
            } else {
                None
            }
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no linearizability verdict:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(!tmux.screen().contains("check FAILED"), "{}", tmux.screen());
    let pids = support::node_pids(&cdir);
    tmux.keys(&["q"]);
    let code = tmux.exit_status("squall to exit after q");
    assert_eq!(code, "0", "screen:\n{}", tmux.screen());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());
}

#[test]
fn dashboard_in_tmux_command_prompt_sets_and_heals_disk_and_clock_faults() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::start(
        "disk",
        dir.path(),
        &format!("up -n 3 --seed 4 --disk-faults --dir {}", cdir.display()),
    );
    tmux.wait_for("a leader in the header", header_leader);

    tmux.keys(&[":"]);
    tmux.wait_for("the fault prompt", |s| s.contains(" fault ").then_some(()));
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
        (!s.contains("n1 disk stalled") && s.contains("disk and clock faults healed on nodes 1, 2"))
            .then_some(())
    });
    tmux.keys(&["q"]);
    let code = tmux.exit_status("squall to exit after q");
    assert_eq!(code, "0", "squall exited with {code}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(cdir.to_str().unwrap()),
        "a fault filesystem outlived the dashboard:\n{mounts}"
    );
}

/// Membership from the keyboard: `a` starts node 4, the table shows it join and vote, `4` then `D` removes it
/// and its row goes once its process stops.
#[test]
fn dashboard_in_tmux_adds_a_node_with_a_and_removes_it_with_d() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::start(
        "members",
        dir.path(),
        &format!("up -n 3 --seed 5 --dir {}", cdir.display()),
    );
    tmux.wait_for("a leader in the header", header_leader);
    tmux.keys(&["a"]);
    tmux.wait_for("n4 promoted in the feed", |s| {
        s.contains("n4 caught up, promoted to voter").then_some(())
    });
    // 160 columns: the member column, and the configuration in the table's title.
    tmux.wait_for("n4 a voter in the table", |s| {
        let row = node_rows(s).into_iter().find(|r| r.contains(" n4 "))?;
        (row.contains("voter") && s.contains("config {1,2,3,4} at")).then_some(())
    });
    let pids = support::node_pids(&cdir);
    tmux.keys(&["4"]);
    tmux.keys(&["D"]);
    tmux.wait_for("n4 removed in the feed", |s| {
        s.contains("n4 removed: its process stopped").then_some(())
    });
    tmux.wait_for("n4's row gone and the configuration back to three", |s| {
        (!node_rows(s).iter().any(|r| r.contains(" n4 ")) && s.contains("config {1,2,3} at"))
            .then_some(())
    });
    tmux.keys(&["q"]);
    let code = tmux.exit_status("squall to exit after q");
    assert_eq!(code, "0", "screen:\n{}", tmux.screen());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());
}

/// While the "terminal too small" screen hides the dashboard, keys do nothing but quit: `K` there used to
/// kill the leader unseen.
#[test]
fn only_quit_acts_while_the_terminal_is_too_small() {
    if skipped_without_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("cluster");
    let tmux = Tmux::start(
        "small",
        dir.path(),
        &format!("up -n 3 --dir {}", cdir.display()),
    );
    tmux.wait_for("a leader in the header", header_leader);
    let pids = support::node_pids(&cdir);
    let resize = |w: &str, h: &str| {
        let st = tmux
            .cmd()
            .args(["resize-window", "-t", "main", "-x", w, "-y", h])
            .status()
            .expect("tmux resize-window");
        assert!(st.success());
    };
    resize("60", "20");
    tmux.wait_for("the too-small screen", |s| {
        s.contains("is too small").then_some(())
    });
    // Kill the leader, kill the selected node, isolate it, add a node: none may act unseen.
    tmux.keys(&["K", "k", "i", "a"]);
    resize("160", "48");
    tmux.wait_for("the dashboard again", |s| header_leader(s).map(|_| ()));
    // A key that acted would have stopped a node within milliseconds; watch well past that.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let screen = tmux.screen();
        assert!(
            pids.iter().all(|p| support::alive(*p)),
            "a key acted while the dashboard was hidden; pids {pids:?}; the screen shows:\n{screen}"
        );
        assert!(
            !screen.contains("kill node") && cut_cells(&screen) == Some(0),
            "a key acted while the dashboard was hidden; the screen shows:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(support::node_pids(&cdir).len(), 3, "a node was added");
    resize("60", "20");
    tmux.wait_for("the too-small screen", |s| {
        s.contains("is too small").then_some(())
    });
    tmux.keys(&["q"]);
    tmux.wait_for("squall to quit from the too-small screen", |s| {
        s.contains("squall exited with 0").then_some(())
    });
    assert!(wait_gone(&pids, Duration::from_secs(10)).is_empty());
}
