//! Actions never claim what did not happen: a fault or action whose target cannot take it answers `error:`
//! with the reason, and an action the cluster accepted but that then failed (a leadership transfer that
//! never completes) shows that failure in the feed.

mod support;

use std::io::Write;
use std::time::Duration;

use support::{Lines, ask, wait_gone};

const WAIT: Duration = Duration::from_secs(30);

/// Sends `cmd` and waits for its `error:` answer, which must contain `why`; an `ok:` fails the test.
fn refused(stdin: &mut impl Write, out: &mut Lines, cmd: &str, why: &str) -> String {
    writeln!(stdin, "{cmd}").unwrap();
    out.wait_for(&format!("`{cmd}` refused"), WAIT, |l| {
        if l.starts_with("ok:") {
            panic!("`{cmd}` answered {l}, but it cannot happen");
        }
        (l.starts_with("error:") && l.contains(why)).then(|| l.to_string())
    })
}

#[test]
fn actions_a_node_cannot_take_are_refused_and_a_failed_transfer_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut stdin, mut out, (leader, _)) =
        support::headless_with_leader(dir.path(), &["-n", "3", "--seed", "5"], WAIT);
    let pids = support::node_pids(dir.path());
    let others: Vec<u64> = (1..=3).filter(|n| *n != leader).collect();
    let (a, b) = (others[0], others[1]);

    // A killed node: no second kill, no pause, no leadership.
    ask(
        &mut stdin,
        &mut out,
        &format!("kill {a}"),
        &format!("kill node {a}"),
    );
    refused(
        &mut stdin,
        &mut out,
        &format!("kill {a}"),
        "is not running (killed)",
    );
    refused(
        &mut stdin,
        &mut out,
        &format!("pause {a}"),
        "is not running",
    );
    refused(
        &mut stdin,
        &mut out,
        &format!("transfer {a}"),
        "cannot take leadership",
    );
    // Unknown node.
    refused(&mut stdin, &mut out, "transfer 7", "no node 7");
    // Pause twice; resume a running node.
    ask(
        &mut stdin,
        &mut out,
        &format!("pause {b}"),
        &format!("pause node {b}"),
    );
    refused(
        &mut stdin,
        &mut out,
        &format!("pause {b}"),
        "already paused",
    );
    refused(&mut stdin, &mut out, &format!("transfer {b}"), "is paused");
    ask(
        &mut stdin,
        &mut out,
        &format!("resume {b}"),
        &format!("resume node {b}"),
    );
    refused(&mut stdin, &mut out, &format!("resume {b}"), "not paused");
    // An isolated node cannot win an election.
    ask(
        &mut stdin,
        &mut out,
        &format!("restart {a}"),
        &format!("restart node {a}"),
    );
    ask(
        &mut stdin,
        &mut out,
        &format!("isolate {a}"),
        &format!("isolate node {a}"),
    );
    refused(
        &mut stdin,
        &mut out,
        &format!("transfer {a}"),
        "cut off from a majority",
    );
    ask(&mut stdin, &mut out, "heal", "heal");

    // Accepted, then failed: with 99 % of its frames dropped, node b never takes over; the feed says so.
    ask(&mut stdin, &mut out, &format!("loss {b} 99%"), "drop 99%");
    writeln!(stdin, "transfer {b}").unwrap();
    let answer = out.wait_for("the transfer's answer", WAIT, |l| {
        (l.starts_with("ok:") || l.starts_with("error:")).then(|| l.to_string())
    });
    eprintln!("transfer answered: {answer}");
    if answer.starts_with("ok:") {
        out.wait_for("the transfer's failure in the feed", WAIT, |l| {
            l.contains(&format!(
                "transfer {b} failed: node {b} did not take leadership within"
            ))
            .then_some(())
        });
    } else {
        // Leadership moved meanwhile (b's loss can unsettle the cluster): only an honest refusal is fine.
        assert!(
            answer.contains("no node leads") || answer.contains("already leads"),
            "{answer}"
        );
    }

    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(wait_gone(&pids, Duration::from_secs(5)).is_empty());
}
