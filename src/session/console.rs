//! The headless console's output: event lines held back so they print in order, summary lines, and a standard
//! output that may close. Shared by `up --headless` and `squall run`.

use std::io::Write;
use std::time::Duration;

use super::Session;
use crate::state::{ClusterState, Event, FeedLine, HoldBack, HostChange, Stamped};

/// How long the console holds a line back so that lines learned late still print in the order they happened.
const CONSOLE_HOLD_MS: u64 = 300;
/// The longest console line read as a command; longer ones are refused without being echoed.
const MAX_CONSOLE_LINE: usize = 1024;

/// One console line as read: its text without the line end, or why it is not a command (not UTF-8, too long).
pub fn console_line(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.len() > MAX_CONSOLE_LINE {
        return Err(format!(
            "a line of {} bytes is not a command (at most {MAX_CONSOLE_LINE}); type `help` for the commands",
            bytes.len()
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "the line is not valid UTF-8 (from byte {} on); commands are plain text, type `help` for them",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The headless console's event lines: each feed line held back a moment so lines learned late still print
/// in the order they happened, plus a summary line when leadership changes (and on commit progress, at most
/// once a second). Shared by `up --headless` and `squall run`.
pub struct ConsoleFeed {
    /// Standard output.
    pub out: Console,
    held: HoldBack,
    /// When each node's host last came back (session ms), for nodes on hosts that were cut off.
    host_back: std::collections::HashMap<u64, u64>,
    last_summary: (Option<u64>, u64),
    last_commit_line: std::time::Instant,
    last_commit: u64,
}

impl Default for ConsoleFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleFeed {
    /// An empty feed on standard output.
    pub fn new() -> Self {
        ConsoleFeed {
            out: Console::default(),
            held: HoldBack::new(CONSOLE_HOLD_MS),
            host_back: Default::default(),
            last_summary: (None, 0),
            last_commit_line: std::time::Instant::now(),
            last_commit: 0,
        }
    }

    /// Folds an event into the session and holds the lines it makes.
    pub fn on_event(&mut self, session: &mut Session, e: Stamped, now_ms: u64) {
        self.note_host(&e);
        let lines = session.apply(e);
        self.hold_lines(&session.state, lines, now_ms);
        let s = &session.state;
        let leadership = s.leadership();
        let commit = s.commit_index();
        if leadership != self.last_summary
            || (commit != self.last_commit
                && self.last_commit_line.elapsed() >= Duration::from_secs(1))
        {
            self.held.push_summary(now_ms, summary_line(s));
            self.last_summary = leadership;
            self.last_commit = commit;
            self.last_commit_line = std::time::Instant::now();
        }
    }

    /// Notes when a host came back after being unreachable or lost (`--hosts`): its nodes' records from
    /// before then arrive late, from the host's backlog.
    fn note_host(&mut self, e: &Stamped) {
        if let Event::Host {
            nodes,
            change: HostChange::Back { .. },
            ..
        } = &e.event
        {
            for &n in nodes {
                self.host_back.insert(n, e.at_ms);
            }
        }
    }

    /// Holds the feed lines one event made, which arrived at `now_ms`. A line of a node whose host is cut off,
    /// or that happened before its host came back, comes from the host's backlog: it arrives seconds late
    /// however long lines are held, so it takes its place (in words, if later lines were printed) without
    /// making every later line wait longer ([`HoldBack::push_backlog`]).
    fn hold_lines(&mut self, state: &ClusterState, lines: Vec<FeedLine>, now_ms: u64) {
        for line in lines {
            let backlog = line.node.is_some_and(|n| {
                state
                    .nodes
                    .get(&n)
                    .is_some_and(|v| v.host_unreachable.is_some())
                    || self
                        .host_back
                        .get(&n)
                        .is_some_and(|&back| line.at_ms < back)
            });
            if backlog {
                self.held.push_backlog(line.at_ms, now_ms, line.text);
            } else {
                self.held.push(line.at_ms, now_ms, line.text);
            }
        }
    }

    /// Holds a line of the session's own (`scenario: kill leader → ok: …`) that happened at `at_ms`, so it
    /// prints in time order with the event lines: the events a step caused can reach the feed after its
    /// answer, though they happened before it (tester7: `4.011s scenario: kill leader → ok` printed before
    /// `4.007s n3 killed`).
    pub fn hold(&mut self, at_ms: u64, text: String) {
        self.held.push(at_ms, at_ms, text);
    }

    /// Prints the held lines old enough to be in order.
    pub fn release(&mut self, now_ms: u64) {
        for (at, text) in self.held.release(now_ms) {
            self.out.say(format_args!("{}", event_line(at, &text)));
        }
    }

    /// Prints every held line (before an answer that ends the session).
    pub fn flush(&mut self) {
        for (at, text) in self.held.drain() {
            self.out.say(format_args!("{}", event_line(at, &text)));
        }
    }
}

/// The headless console's standard output. A write that fails ends the session: the loop then stops the
/// cluster instead of panicking as `println!` would, and says why ([`super::Broken::output`]: a reader that
/// went away is no error, a full disk is).
#[derive(Default)]
pub struct Console {
    /// Why a write failed, once one has; nothing more is written to standard output then.
    pub failed: Option<std::io::Error>,
    /// Every line also goes here, as terminal output of an asciicast (`squall run --record`).
    pub cast: Option<crate::record::asciicast::CastWriter>,
}

impl Console {
    /// Prints one line (and adds it to the cast); after a failed write, only to the cast.
    pub fn say(&mut self, line: std::fmt::Arguments) {
        if let Some(cast) = &self.cast {
            cast.output(format!("{line}\r\n"));
        }
        if self.failed.is_some() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            self.failed = Some(e);
        }
    }
}

/// One event line as the console prints it: the session time, then the text on one line (a feed line that
/// quotes a node's log tail is joined with ` | `, as answers are), so a script reads one line per event.
fn event_line(at_ms: u64, text: &str) -> String {
    format!(
        "{:>8.3}s  {}",
        at_ms as f64 / 1000.0,
        crate::cluster::outcome::one_line(text)
    )
}

/// A note on standard error that may be closed too.
pub fn eprintln_quiet(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One line on leader, term (a Paxos node's ballot, `round.proposer`) and commit, printed when it changes.
/// A kind whose nodes report no commit index (etcd's status has none) gets no commit words, not `commit 0`.
fn summary_line(s: &ClusterState) -> String {
    let commit = if s.commit_reported() {
        format!(" {}", commit_words(s))
    } else {
        String::new()
    };
    match s.leadership() {
        (Some(l), term) => format!("leader {l} {}{commit}", s.term_text(term)),
        (None, term) => format!("no leader ({}){commit}", s.term_text(term)),
    }
}

/// `commit 812`, or, while the nodes' commit index is below what was committed before (restarted nodes
/// learn it from the next leader), what is known instead of their `0`.
fn commit_words(s: &ClusterState) -> String {
    match (s.commit_known(), s.recovered_last()) {
        (Some(c), _) => format!("commit {c}"),
        (None, Some(last)) => format!(
            "commit not known until a leader says (the nodes' logs reach {last}; {} was committed before)",
            s.commit_high
        ),
        (None, None) => format!(
            "commit not known until a leader says ({} was committed before)",
            s.commit_high
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_is_one_console_line_even_when_it_quotes_a_node_s_log() {
        assert_eq!(
            event_line(
                2_345,
                "restart 2 failed: node 2 did not start: port in use; its log ends with:\nline one\n\nline two"
            ),
            "   2.345s  restart 2 failed: node 2 did not start: port in use; its log ends with: | line one | line two"
        );
        assert_eq!(
            event_line(7, "n1 leads term 2"),
            "   0.007s  n1 leads term 2"
        );
    }

    use crate::check::brief::BriefStatus;
    use crate::state::ProcessState;
    use squall_node::raft::types::Role;

    /// A session of nodes 1 and 2, not started yet.
    fn two_nodes() -> ClusterState {
        let mut s = ClusterState::new();
        s.apply(&Stamped::new(
            1,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: vec![1, 2],
                dir: "/d".into(),
            },
        ));
        s
    }

    /// Nodes 1 and 2 running at `at` as pids `base + 1` and `base + 2` (new processes when `base` is new).
    fn running(s: &mut ClusterState, at: u64, base: u32) {
        for node in [1, 2] {
            let pid = base + node as u32;
            let state = ProcessState::Running { pid };
            s.apply(&Stamped::new(at, Event::Process { node, state }));
        }
    }

    /// The brief of node 1 (`one`) and node 2 (`two`) at `at`.
    fn briefs(s: &mut ClusterState, at: u64, one: BriefStatus, two: BriefStatus) {
        for (node, status) in [(1, one), (2, two)] {
            s.apply(&Stamped::new(at, Event::Brief { node, status }));
        }
    }

    /// `role` in term `term` following `leader`, with commit index `commit` when the kind reports one.
    fn brief(role: Role, leader: Option<u64>, commit: Option<u64>) -> BriefStatus {
        BriefStatus {
            role: Some(role),
            term: Some(3),
            leader: Some(leader),
            commit,
            ..Default::default()
        }
    }

    /// fixes3 item 5: after `restart all` every node reports commit 0 until a leader tells it the commit
    /// index again (it is not kept on disk); the summary said `commit 0`.
    #[test]
    fn restarted_nodes_commit_zero_is_not_the_cluster_s_commit() {
        let mut s = two_nodes();
        running(&mut s, 2, 10);
        let leader = brief(Role::Leader, Some(1), Some(50));
        briefs(&mut s, 3, leader, brief(Role::Follower, Some(1), Some(50)));
        assert_eq!(summary_line(&s), "leader 1 term 3 commit 50");
        // Restarted: no leader yet, and the commit index they start from.
        running(&mut s, 4, 20);
        let restarted = brief(Role::Follower, None, Some(0));
        briefs(&mut s, 5, restarted.clone(), restarted);
        let line = summary_line(&s);
        assert!(
            line.starts_with("no leader (term 3) commit not known until a leader says")
                && line.contains("50 was committed before")
                && !line.contains("commit 0"),
            "{line}"
        );
    }

    /// tester7 (finding 7): etcd reports no commit index, and the summary said `leader 1 term 2 commit 0`.
    /// Seen failing before the summary asked whether any node reports one.
    #[test]
    fn a_summary_says_no_commit_where_no_node_reports_one() {
        let mut s = two_nodes();
        running(&mut s, 1, 10);
        let leader = brief(Role::Leader, Some(1), None);
        briefs(&mut s, 1, leader, brief(Role::Follower, Some(1), None));
        assert_eq!(summary_line(&s), "leader 1 term 3");
    }

    /// One event into the state and the feed, as `on_event` does with a session.
    fn step(feed: &mut ConsoleFeed, s: &mut ClusterState, e: Stamped, now_ms: u64) {
        let seen = s.feed_total();
        feed.note_host(&e);
        s.apply(&e);
        let lines = s.feed_since(seen).cloned().collect();
        feed.hold_lines(s, lines, now_ms);
    }

    /// An event of node `node`'s own feed that happened at `node_ms` on its clock: it starts an election.
    fn election(node: u64, node_ms: u64, term: u64) -> Event {
        use squall_node::raft::types::RaftEvent;
        use squall_node::rpc::{EventRecord, NodeEvent};
        let event = RaftEvent::ElectionStarted {
            term,
            pre_vote: false,
            round: 1,
        };
        Event::NodeFeed {
            node,
            record: EventRecord {
                seq: 0,
                at_ms: node_ms,
                event: NodeEvent::Raft(event),
            },
        }
    }

    /// polish2 item 1: a host's cable pulled for a few seconds; once it is back its nodes' records arrive
    /// 1–3 s after they happened. The hold grew to 2 s on them, so every console line (the next `host …
    /// unreachable` too) printed 2 s late for the next 10 s. Holding cannot put those in order anyway: they
    /// come out in place, with their own time in words, and leave the hold as it was.
    #[test]
    fn a_host_s_backlog_does_not_make_the_console_hold_lines_longer() {
        let mut s = two_nodes();
        running(&mut s, 2, 10);
        // Node 2's clock: its status at 1.000 s says it has been up 990 ms (session time = its time + 10).
        for node in [1, 2] {
            let mut status = crate::state::fixture::node_status(node, 10 + node as u32, 1, 1);
            status.uptime_ms = 990;
            s.apply(&Stamped::new(1_000, Event::Status { node, status }));
        }
        let mut feed = ConsoleFeed::new();
        let host = |change| Event::Host {
            host: "db-2".into(),
            nodes: vec![2],
            change,
        };
        let why = "no answer to a ping within 700 ms".to_string();
        step(
            &mut feed,
            &mut s,
            Stamped::new(5_000, host(HostChange::Unreachable { why })),
            5_000,
        );
        step(
            &mut feed,
            &mut s,
            Stamped::new(8_000, host(HostChange::Back { pid: 7 })),
            8_000,
        );
        assert_eq!(feed.held.current_hold(), CONSOLE_HOLD_MS);
        let out = feed.held.release(8_300);
        assert!(
            out.iter().any(|(_, t)| t.starts_with("host db-2 back")),
            "{out:#?}"
        );
        // From the host's backlog: happened at 6.490 s, arrives at 8.350 s.
        step(
            &mut feed,
            &mut s,
            Stamped::new(8_350, election(2, 6_480, 2)),
            8_350,
        );
        assert_eq!(
            feed.held.current_hold(),
            CONSOLE_HOLD_MS,
            "a line from the host's backlog does not grow the hold"
        );
        let out: Vec<(u64, String)> = feed.held.release(8_400);
        assert!(
            out.iter().any(|(at, t)| *at == 8_000
                && t.starts_with("n2 starts an election in term 2 (happened at 6.490s")),
            "{out:#?}"
        );
        // A line from a node whose host was never cut off, late because the machine is loaded, still does.
        step(
            &mut feed,
            &mut s,
            Stamped::new(9_000, election(1, 8_190, 3)),
            9_000,
        );
        assert_eq!(feed.held.current_hold(), 1_000);
    }

    #[test]
    fn a_console_line_that_is_not_a_command_is_refused_without_echoing_it() {
        assert_eq!(console_line(b"kill 2\r\n"), Ok("kill 2".to_string()));
        let e = console_line(b"kill \xff2\n").unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
        let long = vec![b'x'; 100_000];
        let e = console_line(&long).unwrap_err();
        assert!(e.contains("100000 bytes") && e.len() < 200, "{e}");
    }
}
