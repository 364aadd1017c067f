//! `squall up --headless`: one line per event on standard output, commands read from standard input.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::command::{self, Command};
use crate::cluster::{Cluster, Outcome};
use crate::session::{Broken, ConsoleFeed, Session, StopSignals, console_line, eprintln_quiet};
use crate::state::Stamped;

/// What the thread reading standard input hands the loop.
enum Input {
    /// One line: a command's text, or why it is not one.
    Line(Result<String, String>),
    /// The end of input: the session ends as on `quit`.
    End,
    /// Reading failed other than at the end (`EIO`, a directory as input): the session ends on an error.
    Failed(std::io::Error),
}

/// Runs the console until `quit`, the end of input, a signal, or an I/O error (`Err`, said on standard error
/// already; the caller stops the nodes all the same).
pub(super) async fn run(
    cluster: &Cluster,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
) -> Result<ExitCode, Broken> {
    let (line_tx, mut lines) = mpsc::unbounded_channel::<Input>();
    // Standard input is read on a thread: tokio's stdin would keep the runtime alive at exit.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let last = loop {
            let mut bytes = Vec::new();
            // `read_until` retries an interrupted read itself: any error here is one.
            match stdin.read_until(b'\n', &mut bytes) {
                Ok(0) => break Input::End,
                Err(e) => break Input::Failed(e),
                Ok(_) => {
                    if line_tx.send(Input::Line(console_line(&bytes))).is_err() {
                        return;
                    }
                }
            }
        };
        let _ = line_tx.send(last);
    });
    let mut feed = ConsoleFeed::new();
    let mut release = tokio::time::interval(Duration::from_millis(50));
    release.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The running node kind's message kinds, for the help (a Paxos cluster's are not Raft's).
    let kinds = cluster.message_kinds();
    feed.out.say(format_args!(
        "squall: {} nodes up; {}",
        cluster.node_ids().len(),
        command::ConsoleHelp(&kinds)
    ));
    let mut signals = match StopSignals::new() {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    loop {
        if let Some(e) = feed.out.failed.take() {
            return match Broken::output(e) {
                // Whoever read the console went away (`| head`): stop as at the end of input.
                None => {
                    eprintln_quiet("squall: standard output closed: stopping the cluster");
                    Ok(ExitCode::SUCCESS)
                }
                Some(broken) => Err(stopping(broken)),
            };
        }
        if let Some(broken) = session.record_failure() {
            settle(&mut feed, session, rx, cluster.now_ms());
            return Err(stopping(broken));
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                settle(&mut feed, session, rx, cluster.now_ms());
                feed.out.say(format_args!("squall: interrupted: stopping the cluster"));
                return Ok(ExitCode::SUCCESS);
            }
            why = signals.recv() => {
                settle(&mut feed, session, rx, cluster.now_ms());
                feed.out.say(format_args!("squall: {why}: stopping the cluster"));
                return Ok(ExitCode::SUCCESS);
            }
            _ = release.tick() => feed.release(cluster.now_ms()),
            Some(e) = rx.recv() => feed.on_event(session, e, cluster.now_ms()),
            line = lines.recv() => {
                let line = match line {
                    Some(Input::Line(line)) => line,
                    Some(Input::Failed(e)) => {
                        settle(&mut feed, session, rx, cluster.now_ms());
                        let why = e.to_string();
                        return Err(stopping(Broken::Input { what: "standard input", why }));
                    }
                    Some(Input::End) | None => {
                        settle(&mut feed, session, rx, cluster.now_ms());
                        feed.out.say(format_args!("squall: end of input: stopping the cluster"));
                        return Ok(ExitCode::SUCCESS);
                    }
                };
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        feed.out.say(format_args!("error: {e}"));
                        continue;
                    }
                };
                let outcome = match line.split_whitespace().next() {
                    None => Outcome::Refused(crate::command::verbs::EMPTY_LINE.into()),
                    Some(verb @ ("help" | "?")) if line.split_whitespace().nth(1).is_some() => {
                        Outcome::Refused(format!(
                            "`{verb}` takes no arguments, got `{}`; type `help` alone to list the commands",
                            line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
                        ))
                    }
                    Some("help" | "?") => {
                        let lines = crate::command::verbs::help_lines(&kinds);
                        Outcome::Listing {
                            summary: format!("help: {} commands", lines.len() - 1),
                            lines,
                            prefix: "help:",
                        }
                    }
                    Some(_) => match command::parse_for(&line, &kinds) {
                    Ok(Command::Quit) => {
                        // Every event already emitted (a `check` just before emitted its findings) and every
                        // line held back for ordering goes out before the answer.
                        settle(&mut feed, session, rx, cluster.now_ms());
                        Outcome::Quit
                    }
                    Ok(Command::Status) => {
                        let state = &session.state;
                        let mut lines: Vec<String> = state
                            .nodes
                            .values()
                            .map(|n| state.status_line(n, cluster.changes_membership()))
                            .collect();
                        let nodes = lines.len();
                        if let Some(change) = cluster.change_under_way() {
                            lines.push(format!("change pending: {change} (the feed tells its outcome)"));
                        }
                        Outcome::Listing {
                            summary: format!("status of {nodes} nodes"),
                            lines,
                            prefix: "status:",
                        }
                    }
                    // Answer in order: the console is a script's conversation partner.
                    Ok(cmd) => cluster.perform(cmd).await,
                    Err(e) => Outcome::Refused(e),
                    },
                };
                for l in outcome.console_lines() {
                    feed.out.say(format_args!("{l}"));
                }
                if outcome == Outcome::Quit {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}

/// Says on standard error (standard output may be what failed) that the session ends on `broken`, before
/// its nodes are stopped; returns it for the exit.
fn stopping(broken: Broken) -> Broken {
    eprintln_quiet(&format!(
        "squall: error: {broken}: stopping every node as `quit` does"
    ));
    broken
}

/// Before the session ends: folds every event already sent (a `check` answered just before emits its
/// findings as events, which would otherwise die in the channel) and prints every held line.
fn settle(
    feed: &mut ConsoleFeed,
    session: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    now_ms: u64,
) {
    while let Ok(e) = rx.try_recv() {
        feed.on_event(session, e, now_ms);
    }
    feed.flush();
}
