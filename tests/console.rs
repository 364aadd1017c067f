//! The headless console as a script meets it: lines print in the order things happened, every command
//! (`status` too) is answered with `ok:` or `error:`, and a line that is not a command (invalid UTF-8, 100 KB)
//! gets an `error:` without stopping the cluster or being echoed back.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Lines, ask, leader_term, wait_gone};

const WAIT: Duration = Duration::from_secs(30);

/// The session time a console line starts with ("   0.156s  …").
fn time_of(line: &str) -> Option<f64> {
    line.split_whitespace()
        .next()?
        .strip_suffix('s')?
        .parse()
        .ok()
}

#[test]
fn the_console_orders_its_lines_answers_every_command_and_survives_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "5", "--seed", "9", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    out.wait_for("a leader", WAIT, |l| {
        if l.contains("no leader") {
            None
        } else {
            leader_term(l)
        }
    });
    let pids = support::node_pids(dir.path());
    // An election with five nodes polled one after another: plenty of lines learned out of order.
    ask(&mut stdin, &mut out, "kill leader", "kill node");
    out.wait_for("a new leader", WAIT, |l| {
        (l.contains(" leads term ") && !l.contains("term 1")).then_some(())
    });

    stdin.write_all(b"kill \xff\xfe 2\n").unwrap();
    out.wait_for("an error for invalid UTF-8", WAIT, |l| {
        (l.starts_with("error:") && l.contains("not valid UTF-8")).then_some(())
    });
    let long = "x".repeat(100_000);
    writeln!(stdin, "{long}").unwrap();
    let answer = out.wait_for("an error for a 100 KB line", WAIT, |l| {
        l.starts_with("error:").then(|| l.to_string())
    });
    assert!(
        answer.len() < 300,
        "the line was echoed: {} bytes",
        answer.len()
    );
    // Still running, and status answers ok.
    ask(&mut stdin, &mut out, "status", "status of 5 nodes");
    ask(&mut stdin, &mut out, "delay 2 200", "200");

    drop(stdin);
    out.wait_for("the end", WAIT, |l| {
        l.contains("end of input").then_some(())
    });
    assert!(child.wait().unwrap().success());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());

    // Timed lines never go back in time.
    let times: Vec<(f64, &String)> = out
        .seen
        .iter()
        .filter_map(|l| Some((time_of(l)?, l)))
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[0].0 <= pair[1].0,
            "out of order:\n{}\n{}\n\nwhole output:\n{}",
            pair[0].1,
            pair[1].1,
            out.seen.join("\n")
        );
    }
}
