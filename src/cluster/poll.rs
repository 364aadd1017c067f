//! One poller per node: status and event feed about ten times a second, through the kind's status driver, each
//! call with its own deadline, so a paused or dead node costs a timeout in its own task and never stalls
//! anything else. What a report becomes (events for the dashboard, the node's role for the leader's choice) is
//! decided by [`Reports`], which does no I/O.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use squall_node::rpc::NodeStatus;

use super::Cluster;
use super::command::NodeId;
use crate::kind::drivers::{StatusReport, StatusSource};
use crate::state::{BriefStatus, Event};

const PERIOD: Duration = Duration::from_millis(100);
const CALL_TIMEOUT: Duration = Duration::from_millis(400);
/// A full status is sent again at least this often even when unchanged, for its RPC counters.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Status equality that ignores what changes on every poll (uptime, RPC counters).
fn same(a: &NodeStatus, b: &NodeStatus) -> bool {
    a.core == b.core
        && a.applied_index == b.applied_index
        && a.log_tail == b.log_tail
        && a.pid == b.pid
        && a.keys == b.keys
        && a.frozen == b.frozen
}

/// Brief status equality that ignores the message counters (they change with every message).
fn same_brief(a: &BriefStatus, b: &BriefStatus) -> bool {
    BriefStatus {
        messages: None,
        ..a.clone()
    } == BriefStatus {
        messages: None,
        ..b.clone()
    }
}

/// Turns one node's successive status reports into the events the session gets: the node's feed records
/// first, then [`Event::Status`] for a kind with the full picture (when it changed, or every
/// [`COUNTERS_EVERY`]) or [`Event::Brief`] for a kind that reports only the brief fields (when they changed).
#[derive(Default)]
pub struct Reports {
    last: Option<NodeStatus>,
    last_brief: Option<BriefStatus>,
    counters_at: Option<Instant>,
}

impl Reports {
    /// The events for `report` of node `node`, polled at `now`. `pid` is the supervisor's pid of the node's
    /// process, used when the kind does not report one (it tells one process's reports from the next).
    pub fn events(
        &mut self,
        node: NodeId,
        mut report: StatusReport,
        pid: Option<u32>,
        now: Instant,
    ) -> Vec<Event> {
        // What a node did (asked for votes, won them) reaches the feed ahead of the status that shows the
        // outcome (it leads), and the story reads in order.
        let mut out: Vec<Event> = std::mem::take(&mut report.feed)
            .into_iter()
            .map(|record| Event::NodeFeed { node, record })
            .chain(
                std::mem::take(&mut report.notes)
                    .into_iter()
                    .map(|text| Event::Note { text }),
            )
            .collect();
        match report.detail {
            Some(status) => {
                let changed = self.last.as_ref().is_none_or(|l| !same(l, &status));
                let due = self
                    .counters_at
                    .is_none_or(|at| now.duration_since(at) >= COUNTERS_EVERY);
                if changed || due {
                    self.counters_at = Some(now);
                    self.last = Some(status.clone());
                    out.push(Event::Status { node, status });
                }
            }
            None => {
                let mut brief = report.brief();
                brief.pid = brief.pid.or(pid);
                // Message counts move with every message: a change of them alone goes out with the
                // counters' period, a change of anything else at once.
                let changed = self.last_brief.as_ref().is_none_or(|l| {
                    let due = self
                        .counters_at
                        .is_none_or(|at| now.duration_since(at) >= COUNTERS_EVERY);
                    !same_brief(l, &brief) || (l.messages != brief.messages && due)
                });
                if changed {
                    self.counters_at = Some(now);
                    self.last_brief = Some(brief.clone());
                    out.push(Event::Brief {
                        node,
                        status: brief,
                    });
                }
            }
        }
        out
    }

    /// Forgets what was sent, so the next report is sent whole (the node answered again after a silence, and
    /// the session marked it unreachable meanwhile).
    pub fn reset(&mut self) {
        *self = Reports::default();
    }
}

/// Reports a node unreachable once per loss of contact, not on every failed poll. Not a node whose removal
/// committed and whose process is on its way out (ending itself, or being stopped): that silence is its
/// removal, which the feed tells next (tester7's etcd removals said `n4 unreachable: … the client connection
/// is closing` first).
fn lost(cluster: &Cluster, id: NodeId, reachable: &mut bool, error: String) {
    let leaving = cluster.is_removed(id) && {
        let l = cluster.inner.leaving.lock().unwrap();
        l.asked.contains(&id) || l.stopping.contains(&id)
    };
    if std::mem::replace(reachable, false) && !leaving {
        cluster.emit(Event::Unreachable { node: id, error });
    }
}

/// The pid the supervisor knows for node `id`'s process, while it runs or is paused.
fn supervised_pid(cluster: &Cluster, id: NodeId) -> Option<u32> {
    match cluster.inner.procs.state(id)? {
        squall_chaos::ProcState::Running { pid } | squall_chaos::ProcState::Paused { pid } => {
            Some(pid)
        }
        _ => None,
    }
}

pub(super) async fn poll_node(cluster: Cluster, id: NodeId) {
    let mut stop = cluster.stopping();
    let mut source: Option<(SocketAddr, Box<dyn StatusSource>)> = None;
    let mut reports = Reports::default();
    let mut reachable = true;
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut asks = cluster.inner.fresh.asks();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // An out-of-turn poll (`Cluster::poll_soon`).
            Ok(()) = asks.changed() => {}
            _ = stop.changed() => return,
        }
        // The asks this poll answers: those made before it begins.
        let asked = *asks.borrow_and_update();
        // Looked up on every tick: a restarted node may listen on new ports.
        let Some(addr) = cluster.status_addr(id) else {
            continue;
        };
        if source.as_ref().is_none_or(|(a, _)| *a != addr) {
            source = Some((
                addr,
                cluster.inner.spec.kind.status_source(addr, CALL_TIMEOUT),
            ));
        }
        let report = match source.as_mut().expect("made").1.poll().await {
            Ok(r) => r,
            Err(e) => {
                lost(&cluster, id, &mut reachable, e);
                cluster.inner.fresh.finished(id, asked);
                continue;
            }
        };
        if !std::mem::replace(&mut reachable, true) {
            // The session marked it unreachable: its next status says it answers again, even unchanged.
            reports.reset();
        }
        // The full status first: whoever reads the leader from the roles finds its configuration there.
        if let Some(status) = &report.detail {
            cluster.record_status(id, status);
        }
        cluster.record_role(id, report.role, report.term);
        for event in reports.events(id, report, supervised_pid(&cluster, id), Instant::now()) {
            cluster.emit(event);
        }
        cluster.inner.fresh.finished(id, asked);
    }
}

impl Cluster {
    /// Asks every node's poller for a poll now rather than at its next tick (after a `step` or a `release`,
    /// whose effects the dashboard and the next command should see at once). Answers the ask's number.
    pub(super) fn poll_soon(&self) -> u64 {
        self.inner.fresh.ask()
    }

    /// Polls `ids` now and waits until each one's poller finished that poll, for at most twice a poll call's
    /// deadline, so what is judged next (a `step`'s refusal notes) is judged by their state after every step
    /// before. A node whose poll does not finish in time (down, paused, hung) is judged by its last status.
    pub(super) async fn poll_fresh(&self, ids: &[NodeId]) {
        let live: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|&id| self.alive(id) && self.status_addr(id).is_some())
            .collect();
        if live.is_empty() {
            return;
        }
        let ask = self.poll_soon();
        let late = self.inner.fresh.wait(&live, ask, 2 * CALL_TIMEOUT).await;
        if !late.is_empty() {
            tracing::debug!(?late, "no fresh status in time; judged by the last one");
        }
    }
}

#[cfg(test)]
mod tests {
    //! A kind whose status driver reports only role, term, leader, commit and applied (any of them unknown),
    //! through a fake [`StatusSource`]: what the session, the dashboard, the console and the invariants make
    //! of it is what is under test.

    use std::collections::VecDeque;

    use futures::FutureExt as _;
    use futures::future::BoxFuture;
    use squall_node::raft::Role;

    use super::*;
    use crate::state::{ClusterState, ProcessState, Stamped, ViewState};

    /// Answers the reports it was given, in order.
    struct Scripted(VecDeque<Result<StatusReport, String>>);

    impl StatusSource for Scripted {
        fn poll(&mut self) -> BoxFuture<'_, Result<StatusReport, String>> {
            let next = self.0.pop_front().expect("a scripted report");
            async move { next }.boxed()
        }
    }

    fn brief(role: Option<Role>, term: Option<u64>, leader: Option<Option<u64>>) -> StatusReport {
        StatusReport {
            role,
            term,
            leader,
            commit: Some(7),
            applied: None,
            ..StatusReport::default()
        }
    }

    /// Polls `source` `times` times for node `id`, folding what the poller sends into `state`.
    fn poll_into(
        state: &mut ClusterState,
        reports: &mut Reports,
        source: &mut dyn StatusSource,
        id: u64,
        times: usize,
        at: &mut u64,
    ) -> usize {
        let mut sent = 0;
        for _ in 0..times {
            let report = futures::executor::block_on(source.poll()).expect("answers");
            for e in reports.events(id, report, Some(100 + id as u32), Instant::now()) {
                sent += 1;
                state.apply(&Stamped::new(*at, e));
            }
            *at += 100;
        }
        sent
    }

    fn started(nodes: &[u64]) -> ClusterState {
        let mut state = ClusterState::new();
        state.apply(&Stamped::new(
            0,
            Event::SessionStarted {
                cluster_id: "c".into(),
                nodes: nodes.to_vec(),
                dir: "/d".into(),
            },
        ));
        for &n in nodes {
            state.apply(&Stamped::new(
                0,
                Event::Process {
                    node: n,
                    state: ProcessState::Running {
                        pid: 100 + n as u32,
                    },
                },
            ));
        }
        state
    }

    #[test]
    fn a_kind_with_only_brief_fields_is_drawn_with_dashes_and_its_leader_shown() {
        let mut state = started(&[1, 2, 3]);
        let mut at = 100;
        let mut sent = 0;
        // n1 leads term 3; n2 follows it; n3's kind reports neither role nor term nor leader.
        let scripts = [
            (1, brief(Some(Role::Leader), Some(3), Some(Some(1)))),
            (2, brief(Some(Role::Follower), Some(3), Some(Some(1)))),
            (3, brief(None, None, None)),
        ];
        for (id, r) in scripts {
            let mut source = Scripted(std::iter::repeat_n(Ok(r), 5).collect());
            let mut reports = Reports::default();
            sent += poll_into(&mut state, &mut reports, &mut source, id, 5, &mut at);
        }
        // Unchanged reports are sent once per node.
        assert_eq!(sent, 3, "events sent for 15 polls of unchanged reports");
        assert_eq!(state.leader, Some(1), "the leader the brief statuses show");
        assert_eq!(state.leader_term, 3);
        assert_eq!(state.leadership(), (Some(1), 3));
        assert_eq!(state.commit_index(), 7);
        assert!(
            state
                .feed
                .iter()
                .any(|l| l.text.contains("n1 leads term 3")),
            "the feed announces the leader (what a console `wait` for a leader reads): {:?}",
            state.feed.iter().map(|l| &l.text).collect::<Vec<_>>()
        );

        // The console's `status` lines: what the kind does not report is `—`, never a guess.
        let lines: Vec<String> = state
            .nodes
            .values()
            .map(crate::state::describe_node)
            .collect();
        assert_eq!(
            lines,
            [
                "n1 running pid 101 leader term 3 leader n1 commit 7 applied —",
                "n2 running pid 102 follower term 3 leader n1 commit 7 applied —",
                "n3 running pid 103 — term — leader — commit 7 applied —",
            ]
        );

        // The dashboard: roles and terms where reported, `—` for the vote, the log and the rest.
        let screen = crate::ui::render_text(&state, &ViewState::default(), 140, 40);
        let row = |n: &str| {
            screen
                .lines()
                .find(|l| l.contains(&format!(" {n} ")) && l.contains("running"))
                .unwrap_or_else(|| panic!("no row for {n} in\n{screen}"))
                .to_string()
        };
        let n1 = row("n1");
        assert!(
            n1.contains("leader") && n1.contains(" 3 ") && n1.contains("n1"),
            "{n1}"
        );
        assert!(
            n1.contains('—'),
            "the vote, applied and log columns are unknown: {n1}"
        );
        let n3 = row("n3");
        assert!(!n3.contains("follower") && !n3.contains("leader"), "{n3}");
        assert!(
            n3.matches('—').count() >= 5,
            "role, term, vote, leader, log unknown: {n3}"
        );
        assert!(
            screen.contains("this node kind reports no log entries"),
            "the log panel says why it is empty:\n{screen}"
        );
    }

    #[test]
    fn the_invariants_run_on_what_is_reported_and_say_once_which_they_cannot_judge() {
        let mut state = started(&[1, 2]);
        let mut at = 100;
        let mut r1 = Reports::default();
        let mut s1 = Scripted(
            [
                Ok(brief(Some(Role::Leader), Some(2), Some(Some(1)))),
                Ok(brief(Some(Role::Leader), Some(2), Some(Some(1)))),
            ]
            .into(),
        );
        poll_into(&mut state, &mut r1, &mut s1, 1, 2, &mut at);
        let said: Vec<&String> = state
            .feed
            .iter()
            .map(|l| &l.text)
            .filter(|t| t.starts_with("invariants: not judged"))
            .collect();
        assert_eq!(
            said,
            [
                "invariants: not judged: one vote per term, log matching, leader completeness, state-machine \
                 safety (the node kind does not report log entries, votes); judged: election safety, commit \
                 index monotonic, term monotonic"
            ],
            "said once"
        );
        // Election safety is judged from role and term alone: a second leader of term 2 is caught.
        let mut r2 = Reports::default();
        let mut s2 = Scripted([Ok(brief(Some(Role::Leader), Some(2), Some(Some(2))))].into());
        poll_into(&mut state, &mut r2, &mut s2, 2, 1, &mut at);
        let broken: Vec<String> = state
            .invariants
            .violations()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(
            broken,
            ["election safety violated: n1 and n2 both led term 2"]
        );
        // The commit index going back while the process runs is caught too.
        let mut s3 = Scripted(
            [Ok(StatusReport {
                commit: Some(3),
                ..brief(Some(Role::Follower), Some(2), Some(Some(2)))
            })]
            .into(),
        );
        poll_into(&mut state, &mut r1, &mut s3, 1, 1, &mut at);
        assert!(
            state
                .invariants
                .violations()
                .iter()
                .any(|v| v.to_string().contains("commit index went from 7 to 3")),
            "{:?}",
            state.invariants.violations()
        );
        // Not said again.
        assert_eq!(
            state
                .feed
                .iter()
                .filter(|l| l.text.starts_with("invariants: not judged"))
                .count(),
            1
        );
    }

    #[test]
    fn message_counts_alone_go_out_once_a_second_and_other_changes_at_once() {
        let mut reports = Reports::default();
        let t0 = Instant::now();
        let counted = |n: u64, role: Option<Role>| {
            let mut r = brief(role, None, None);
            let mut c = crate::state::MessageCounts::default();
            c.received.insert("echo".into(), n);
            c.sent.insert("echo_ok".into(), n);
            r.messages = Some(c);
            r
        };
        let sent = |events: Vec<Event>| -> Option<u64> {
            match &events[..] {
                [] => None,
                [Event::Brief { status, .. }] => Some(status.messages.as_ref().unwrap().total_in()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(sent(reports.events(1, counted(1, None), None, t0)), Some(1));
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            sent(reports.events(1, counted(2, None), None, at(100))),
            None
        );
        assert_eq!(
            sent(reports.events(1, counted(9, None), None, at(900))),
            None
        );
        assert_eq!(
            sent(reports.events(1, counted(10, None), None, at(1_000))),
            Some(10)
        );
        // A field that is not a counter goes out at once, with the counts of that moment.
        let leads = Some(Role::Leader);
        assert_eq!(
            sent(reports.events(1, counted(11, leads), None, at(1_100))),
            Some(11)
        );
        // Unchanged counts are not sent again however long it has been.
        assert_eq!(
            sent(reports.events(1, counted(11, leads), None, at(5_000))),
            None
        );
    }

    #[test]
    fn a_node_that_answers_again_unchanged_is_sent_again() {
        let mut reports = Reports::default();
        let r = brief(Some(Role::Follower), Some(1), Some(None));
        let now = Instant::now();
        assert_eq!(reports.events(1, r.clone(), Some(9), now).len(), 1);
        assert_eq!(reports.events(1, r.clone(), Some(9), now).len(), 0);
        reports.reset();
        let again = reports.events(1, r, Some(9), now);
        assert!(
            matches!(&again[..], [Event::Brief { status, .. }] if status.leader == Some(None) && status.pid == Some(9)),
            "{again:?}"
        );
    }
}
