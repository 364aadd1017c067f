//! [`ClusterState`]: everything the dashboard shows, folded from [`Stamped`] events.

use std::collections::{BTreeMap, VecDeque};

use squall_node::raft::types::Role;
use squall_node::rpc::NodeStatus;

use super::event::{Event, LinkView, ProcessState, Stamped};
use super::feed::{FeedKind, FeedLine};
use super::lane::{Lane, LaneRole};
use super::series::RateSeries;
use crate::check::brief::BriefStatus;

/// Most sampled client operations kept for latency figures.
pub const CLIENT_OPS_CAPACITY: usize = 256;

/// What is known about one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// Node id.
    pub id: u64,
    /// The latest full status it reported (kept after it dies, for the last known values), from a kind whose
    /// status driver has the full picture (squall's); `None` for a kind that reports only [`BriefStatus`].
    pub status: Option<NodeStatus>,
    /// The latest role, term, leader, commit and applied index it reported, from any kind (kept after it dies,
    /// for the last known values). What the kind cannot report is `None` here and `—` on screen.
    pub brief: Option<BriefStatus>,
    /// False once the process died or restarted since `status` was taken.
    pub status_fresh: bool,
    /// Its process.
    pub process: ProcessState,
    /// Whether the last status poll succeeded.
    pub reachable: bool,
    /// The last poll error while unreachable.
    pub error: Option<String>,
    /// Role over the last minute.
    pub lane: Lane,
    /// The role its own feed last reported, to tell a step-down from an ordinary change.
    pub(super) feed_role: Option<Role>,
    /// The term its own feed last said it leads, until its feed or a newer term says otherwise: its feed is
    /// read ahead of the status that shows it leading.
    pub(super) feed_leads: Option<u64>,
    /// The running process's pid and how far its clock (milliseconds since it started) lags session time,
    /// learned from its statuses, to place its feed records at the moment they happened.
    pub(super) clock: Option<(u32, i64)>,
    /// A truncation not reported yet: (when, first index, count); see `RaftEvent::LogTruncated`.
    pub(super) truncated: Option<(u64, u64, u64)>,
    /// Disk faults in force on it, in words (`squall up --disk-faults`).
    pub disk_faults: Vec<String>,
    /// Its faked clock's offset and rate, in words; `None` while it runs true.
    pub clock_fault: Option<String>,
    /// Whether a configuration ever named it (so one that no longer does means it was removed).
    pub was_member: bool,
    /// Whether it was removed from the configuration (its own word, or squall's removal step).
    pub removed: bool,
    /// Why it did not start at the session's start (its own last error), until a process of it runs.
    pub refused: Option<String>,
    /// The host that runs it, while that host is unreachable or lost (`--hosts`): then its process and role
    /// are not known, and the dashboard says `unreachable` rather than guess.
    pub host_unreachable: Option<String>,
    /// Its host is lost (`--hosts`): the agent is gone and stopped it, so no process of it runs in this
    /// session. Set with [`NodeView::host_unreachable`], cleared with it.
    pub host_lost: bool,
}

impl NodeView {
    fn new(id: u64) -> Self {
        Self {
            id,
            reachable: true,
            ..Self::default()
        }
    }

    /// The status, when it describes the running process (not a dead or replaced one).
    pub fn live_status(&self) -> Option<&NodeStatus> {
        self.status.as_ref().filter(|_| self.known_live())
    }

    /// Whether what it last reported describes its running process now: fresh, answering, alive, and its host
    /// reachable.
    fn known_live(&self) -> bool {
        self.status_fresh
            && self.reachable
            && self.process.is_alive()
            && self.host_unreachable.is_none()
    }

    /// The brief status, when it describes the running process (not a dead or replaced one).
    pub fn live_brief(&self) -> Option<&BriefStatus> {
        self.brief.as_ref().filter(|_| self.known_live())
    }

    /// What its lane shows now, from the process first and the status second.
    pub fn lane_role(&self) -> LaneRole {
        match &self.process {
            ProcessState::Killed { .. }
            | ProcessState::Exited { .. }
            | ProcessState::Restarting { .. } => LaneRole::Down,
            ProcessState::Paused { .. } => LaneRole::Paused,
            ProcessState::Starting => LaneRole::Unknown,
            ProcessState::Running { .. } => match self.live_brief().and_then(|b| b.role) {
                Some(role) => role.into(),
                None => LaneRole::Unknown,
            },
        }
    }
}

/// The built-in client workload as last reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadView {
    /// Whether it runs.
    pub on: bool,
    /// Target writes per second.
    pub rate: u32,
    /// Successful operations so far.
    pub ok: u64,
    /// Failed or timed-out operations so far (errors of the system, or outcomes unknown).
    pub failed: u64,
    /// lin-kv compare-and-swaps whose precondition did not hold: definite `fail`s, not errors.
    pub cas_failed: u64,
}

/// One sampled client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOpView {
    /// When it completed.
    pub at_ms: u64,
    /// The operation.
    pub op: String,
    /// Its outcome.
    pub result: String,
    /// Latency in microseconds.
    pub latency_us: u64,
}

/// Traffic through one directed link, per second, from the last two link reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkRate {
    /// Frames forwarded per second.
    pub frames: f64,
    /// Bytes forwarded per second.
    pub bytes: f64,
    /// Frames dropped per second.
    pub dropped: f64,
}

/// Everything the dashboard shows, updated only by [`ClusterState::apply`].
///
/// `apply` is pure and deterministic: time comes from the events, never from a clock, so a replayed event log
/// rebuilds the very states a live session went through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterState {
    /// Cluster id.
    pub cluster_id: String,
    /// Cluster directory.
    pub dir: String,
    /// Nodes by id.
    pub nodes: BTreeMap<u64, NodeView>,
    /// The leader of the highest term among live nodes that believe they lead.
    pub leader: Option<u64>,
    /// That leader's term.
    pub leader_term: u64,
    /// The highest term seen anywhere.
    pub term: u64,
    /// The leader's commit index, or the highest live one when there is no leader.
    pub commit: u64,
    /// The highest commit index ever seen; its growth feeds [`ClusterState::writes`].
    pub commit_high: u64,
    /// Committed entries per second of session time.
    pub writes: RateSeries,
    /// Successful workload operations per second.
    pub workload_ok: RateSeries,
    /// The event feed, oldest first, at most [`FEED_CAPACITY`](super::feed::FEED_CAPACITY) lines.
    pub feed: VecDeque<FeedLine>,
    /// Lines ever pushed to the feed.
    pub(super) pushed: u64,
    /// Every line as it came, before votes joined their requests and repeats were counted, newest last: what
    /// a console prints and a recording marks.
    pub(super) ticker: VecDeque<FeedLine>,
    /// Grants that came before the request they answer (the voter was polled first): held off the ticker
    /// until the request's line is on it, so a console never prints a vote before its election.
    pub(super) early_grants: Vec<FeedLine>,
    /// The latest link report.
    pub links: Vec<LinkView>,
    /// Per-link traffic rates, keyed by `(from, to)`.
    pub link_rates: BTreeMap<(u64, u64), LinkRate>,
    pub(super) links_at_ms: Option<u64>,
    /// The built-in workload.
    pub workload: WorkloadView,
    /// The latest sampled client operations, oldest first.
    pub client_ops: VecDeque<ClientOpView>,
    /// Faults in force now, in words ("n2 paused", "partition 1,2|3,4,5").
    pub faults: Vec<String>,
    /// The network fault set, by id, once the cluster has reported it ([`Event::FaultSet`]); `None` for event
    /// logs written before faults had ids (the faults line then names faults from the link report).
    pub fault_set: Option<Vec<super::ActiveFault>>,
    /// Frames held for stepping, oldest first.
    pub held: Vec<super::HeldView>,
    /// The messages of the last seconds, for the message-flow panel.
    pub flow: super::flow::FlowWindow,
    /// Whether a terminal recording runs.
    pub recording: bool,
    /// Its file.
    pub recording_path: Option<String>,
    /// Session time of the latest event: the uptime.
    pub now_ms: u64,
    /// Set by [`Event::Quit`].
    pub ended: bool,
    /// The last (leader, term) announced in the feed, so two sources never announce it twice.
    pub(super) announced: Option<(u64, u64)>,
    /// The latest terms whose leader was announced (a bounded number; see `narrate.rs`).
    pub(super) announced_terms: std::collections::BTreeSet<u64>,
    /// Whether a commit index was seen, so growth from then on counts as writes.
    commit_seen: bool,
    /// When the workload's counters were last checked, and what was found.
    pub last_check: Option<(u64, super::Verdict)>,
    /// Which operations the built-in workload runs.
    pub workload_kind: super::WorkloadKind,
    /// The nodes run Multi-Paxos (the session's kind is `paxos`, or a node's status or feed spoke Paxos): terms
    /// are packed ballots, and lines name them `ballot round.proposer` ([`ClusterState::term_text`]).
    pub paxos: bool,
    /// Raft's safety properties, checked on every status (see [`crate::check::invariants`]).
    pub invariants: crate::check::invariants::Invariants,
    /// Each node's last full log tail, to expand [`Event::StatusDelta`] exactly as it was encoded.
    tails: BTreeMap<u64, Vec<squall_node::rpc::LogCell>>,
    /// The configuration as the leader knows it; `None` before any status carried one.
    pub config: Option<super::config::ConfigView>,
    /// When faults were injected (session milliseconds, the latest `FAULT_MARKS`): the latency chart marks
    /// these, and not every command performed (a `heal`, `workload on` or `check` is no fault).
    pub fault_marks: std::collections::VecDeque<u64>,
    /// The lock workload's client faults in force, by client: in words, for the faults line.
    pub(super) client_faults: BTreeMap<u64, ClientFaultView>,
}

/// One lock client's faults, as the faults line shows them.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ClientFaultView {
    /// `slow-client C DUR` in force.
    pub(super) slow: Option<std::time::Duration>,
    /// `pause-client C DUR` armed, not struck yet.
    pub(super) armed: Option<std::time::Duration>,
    /// A pause struck and runs until then (session ms).
    pub(super) paused_until_ms: Option<u64>,
}

/// How many fault times [`ClusterState::fault_marks`] keeps.
pub const FAULT_MARKS: usize = 256;

impl ClusterState {
    /// An empty state, before any event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event into the state. After [`Event::Quit`] nothing changes: the nodes stopping at the end
    /// of a session are in its log, but the state stays as the last screen showed it.
    pub fn apply(&mut self, e: &Stamped) {
        if self.ended {
            return;
        }
        let at = e.at_ms;
        self.now_ms = self.now_ms.max(at);
        self.writes.advance(self.now_ms);
        self.workload_ok.advance(self.now_ms);
        match &e.event {
            Event::SessionStarted {
                cluster_id,
                nodes,
                dir,
            } => {
                self.cluster_id = cluster_id.clone();
                self.dir = dir.clone();
                for &n in nodes {
                    self.nodes.entry(n).or_insert_with(|| NodeView::new(n));
                }
                let text = format!("cluster {cluster_id}: {} nodes in {dir}", nodes.len());
                self.push(at, None, FeedKind::Info, text);
            }
            Event::Status { node, status } => {
                self.tails.insert(*node, status.log_tail.clone());
                self.on_status(at, *node, status)
            }
            Event::StatusDelta {
                node,
                status,
                tail_start,
                keep_through,
            } => {
                let prev = self.tails.get(node).map(Vec::as_slice).unwrap_or(&[]);
                let full = super::compress::expand(prev, status, *tail_start, *keep_through);
                self.tails.insert(*node, full.log_tail.clone());
                self.on_status(at, *node, &full);
            }
            Event::Brief { node, status } => self.on_brief(at, *node, status),
            Event::NodeFeed { node, record } => {
                let happened = self.event_time(*node, at, record.at_ms);
                self.on_feed(at, happened, *node, &record.event)
            }
            Event::Unreachable { node, error } => {
                let n = self.node_mut(*node);
                let was = n.reachable;
                n.reachable = false;
                n.error = Some(error.clone());
                let running = matches!(n.process, ProcessState::Running { .. });
                if was && running {
                    self.push(
                        at,
                        Some(*node),
                        FeedKind::Error,
                        format!("n{node} unreachable: {error}"),
                    );
                }
                self.refresh_node(at, *node);
            }
            Event::Process { node, state } => self.on_process(at, *node, state),
            Event::Performed {
                command, effect, ..
            } => {
                // The effect is already in words ("kill node 2 (leader, term 4)"); the command is only a fallback.
                let text = if effect.is_empty() {
                    command.to_string()
                } else {
                    effect.clone()
                };
                self.on_client_fault(command);
                if command.injects_fault() {
                    if self.fault_marks.len() == FAULT_MARKS {
                        self.fault_marks.pop_front();
                    }
                    self.fault_marks.push_back(at);
                }
                self.push(at, None, FeedKind::Fault, text);
            }
            // Only an expiry gets a line: the command that ended any other fault has its own, naming it.
            Event::FaultEnded {
                id,
                fault,
                why: super::FaultEnd::Expired,
            } => {
                let text = match fault.duration {
                    Some(d) => format!(
                        "fault #{id} ({fault}) ended after {}",
                        crate::command::fault::human(d)
                    ),
                    None => format!("fault #{id} ({fault}) ended"),
                };
                self.push(at, None, FeedKind::Fault, text);
            }
            Event::FaultEnded { .. } => {}
            Event::Refused {
                node,
                reason,
                running,
            } => {
                self.node_mut(*node).refused = Some(reason.clone());
                let ids: Vec<String> = running.iter().map(|id| format!("n{id}")).collect();
                self.push(
                    at,
                    Some(*node),
                    FeedKind::Error,
                    format!(
                        "n{node} did not start: {reason}; {} (a majority) run without it: fix what it says \
                         and `restart {node}`; only if its data is damaged, `wipe {node}` to start it empty",
                        ids.join(", ")
                    ),
                );
            }
            Event::ActionFailed { action, error } => {
                self.push(
                    at,
                    None,
                    FeedKind::Error,
                    format!("{action} failed: {error}"),
                );
            }
            Event::NodeFaults { node, disk, clock } => {
                let n = self.node_mut(*node);
                n.disk_faults = disk.clone();
                n.clock_fault = clock.clone();
                self.refresh_faults();
            }
            Event::Links { links } => self.on_links(at, links),
            Event::FaultSet { faults } => {
                self.fault_set = Some(faults.clone());
                self.refresh_faults();
            }
            Event::Held { frames } => self.held = frames.clone(),
            Event::Messages { messages, lost } => self.flow.apply(messages, *lost),
            Event::Workload {
                on,
                rate,
                ok,
                failed,
                cas_failed,
            } => {
                // No feed line: switching the workload is a key action, reported as a Fault with its effect.
                let before = self.workload.clone();
                // Counters only grow within a session; a smaller value means the workload restarted its count.
                let gained = ok.checked_sub(before.ok).unwrap_or(*ok);
                self.workload_ok.add(at, gained);
                self.workload = WorkloadView {
                    on: *on,
                    rate: *rate,
                    ok: *ok,
                    failed: *failed,
                    cas_failed: *cas_failed,
                };
            }
            Event::ClientOp {
                op,
                result,
                latency_us,
            } => {
                if self.client_ops.len() == CLIENT_OPS_CAPACITY {
                    self.client_ops.pop_front();
                }
                self.client_ops.push_back(ClientOpView {
                    at_ms: at,
                    op: op.clone(),
                    result: result.clone(),
                    latency_us: *latency_us,
                });
            }
            Event::Checked { verdict, report } | Event::LockChecked { verdict, report } => {
                let kind = match verdict {
                    super::Verdict::Violated => FeedKind::Violation,
                    super::Verdict::Ok | super::Verdict::Inconclusive => FeedKind::Check,
                };
                self.last_check = Some((at, *verdict));
                self.push(at, None, kind, report.clone());
            }
            Event::Op { .. } => {}
            Event::Lock { record } => self.on_lock(at, record),
            Event::WorkloadKind { kind } => self.workload_kind = *kind,
            Event::LinChecked {
                verdict,
                report,
                window,
            } => {
                let kind = match verdict {
                    super::Verdict::Violated => FeedKind::Violation,
                    super::Verdict::Ok | super::Verdict::Inconclusive => FeedKind::Check,
                };
                self.last_check = Some((at, *verdict));
                self.push(at, None, kind, report.clone());
                for line in window {
                    let kind = if line.culprit {
                        FeedKind::Violation
                    } else {
                        FeedKind::Check
                    };
                    self.push(at, None, kind, line.text.clone());
                }
            }
            Event::Recording { on, path } => {
                self.recording = *on;
                self.recording_path = path.clone().filter(|_| *on);
                let text = match (on, path) {
                    (true, Some(p)) => format!("recording to {p}"),
                    (true, None) => "recording".to_string(),
                    (false, Some(p)) => format!("recording stopped: {p} is complete"),
                    (false, None) => "recording stopped".to_string(),
                };
                self.push(at, None, FeedKind::Recording, text);
            }
            // For `squall scenario`; nothing to show.
            Event::Settings { kind, .. } => {
                if kind.as_ref().is_some_and(|k| k.name == "paxos") {
                    self.paxos = true;
                }
            }
            // `squall run` prints its verdict table itself; the report shows it from the log.
            Event::Judged { .. } | Event::RunPlanned { .. } | Event::FaultPhaseEnded => {}
            Event::Note { text } => self.push(at, None, FeedKind::Info, text.clone()),
            Event::Host {
                host,
                nodes,
                change,
            } => self.on_host(at, host, nodes, change),
            Event::Membership { node, step, text } => {
                self.node_mut(*node);
                self.on_membership(at, *node, *step, text)
            }
            Event::Quit => {
                self.ended = true;
                self.push(at, None, FeedKind::Info, "session ended".to_string());
            }
        }
    }

    /// How many lines were ever pushed to the feed (dropped ones included), so a reader can tell which lines
    /// are new since it last looked: pass the count it saw to [`ClusterState::feed_since`].
    pub fn feed_total(&self) -> u64 {
        self.pushed
    }

    /// How lines name a term: `term 4`, or `ballot 1.3` when the nodes run Paxos (see [`ClusterState::paxos`]).
    pub fn term_text(&self, term: u64) -> String {
        crate::check::invariants::term_text(self.paxos, term)
    }

    /// The bare term as a column shows it: `4`, or `1.3` for a Paxos ballot.
    pub fn term_label(&self, term: u64) -> String {
        if self.paxos {
            squall_node::paxos::Ballot::unpack(term).to_string()
        } else {
            term.to_string()
        }
    }

    /// Who leads, as far as anything has told: `(leader, term)` with the highest term seen. The leader is the
    /// one the statuses show ([`ClusterState::leader`]) unless a live node's own feed said it leads a newer
    /// term: a node's feed is read ahead of its status, so between "n9 leads term 2" and the status that
    /// shows it, the statuses alone would say there is no leader (or the old one). The term is the leader's
    /// own (a node cut off and campaigning may have reached a higher one), or with no leader the highest term
    /// seen. The console's summary line ("leader 9 term 2 commit 812") comes from this.
    pub fn leadership(&self) -> (Option<u64>, u64) {
        let fed = self
            .nodes
            .values()
            .filter(|n| n.process.is_alive() && n.reachable)
            .filter_map(|n| n.feed_leads.map(|t| (t, n.id)))
            .max();
        match (self.leader, fed) {
            (Some(_), Some((t, id))) if t > self.leader_term => (Some(id), t),
            (Some(l), _) => (Some(l), self.leader_term),
            (None, Some((t, id))) if t >= self.term => (Some(id), t),
            (None, _) => (None, self.term),
        }
    }

    /// Each live node's term as its last status showed it, by node id (nodes whose kind reports no term are
    /// left out): what tells a held frame its receiver will refuse ([`super::held::refusal`]).
    pub fn terms(&self) -> BTreeMap<u64, u64> {
        self.nodes
            .values()
            .filter_map(|n| Some((n.id, n.live_brief()?.term?)))
            .collect()
    }

    /// The cluster's commit index: the leader's, or the highest live one while there is no leader.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// The cluster's commit index as far as it is known now: [`Self::commit_index`], unless that is below the
    /// highest this session saw. A node's commit index is not kept on disk: nodes just restarted (`restart
    /// all`) report 0 until a leader tells them again, which says nothing about what they recovered (the
    /// console said `commit 0`). `None` then.
    pub fn commit_known(&self) -> Option<u64> {
        (!self.commit_seen || self.commit >= self.commit_high).then_some(self.commit)
    }

    /// Whether some live node reports a commit index (etcd's status has none: its `commit` is not known, and
    /// [`Self::commit_index`]'s 0 then means nothing).
    pub fn commit_reported(&self) -> bool {
        self.nodes
            .values()
            .any(|n| n.live_brief().is_some_and(|b| b.commit.is_some()))
    }

    /// The highest last log index a live node reports (what restarted nodes recovered from their disks);
    /// `None` for a kind that reports no log.
    pub fn recovered_last(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter_map(|n| Some(n.live_status()?.core.last_log_index))
            .max()
    }

    /// Lines pushed after the first `seen` (as counted by [`ClusterState::feed_total`]), one per event in the
    /// order they came (votes not joined into their request's line; a line seen within the last few seconds
    /// not again): what a console prints and a recording marks. Only the last [`FEED_CAPACITY`](super::feed::FEED_CAPACITY) are kept.
    pub fn feed_since(&self, seen: u64) -> impl Iterator<Item = &FeedLine> {
        self.ticker.iter().filter(move |l| l.seq >= seen)
    }

    /// How many entries `node` is behind the leader: the leader's last index minus the node's match index, or
    /// minus the node's own last index while the leader has no match for it yet.
    pub fn lag(&self, node: u64) -> Option<u64> {
        let leader = self.nodes.get(&self.leader?)?.live_status()?;
        if leader.core.id == node {
            return Some(0);
        }
        let n = self.nodes.get(&node)?;
        let own = n.status.as_ref().map(|s| s.core.last_log_index);
        let matched = leader
            .core
            .progress
            .iter()
            .find(|p| p.id == node)
            .map(|p| p.match_index);
        // A new leader's match indexes start at zero until the first acknowledgements: fall back to where the
        // node's log parts from the leader's, as far as the two tails tell (the match index wins once known).
        let held = match (matched.filter(|&m| m > 0), n.status.as_ref()) {
            (Some(m), _) => m,
            (None, Some(s)) => agreed_index(&leader.log_tail, &s.log_tail, own.unwrap_or(0)),
            (None, None) => return None,
        };
        Some(leader.core.last_log_index.saturating_sub(held))
    }

    /// The highest log index any node reports: where the log panel's window ends.
    pub fn log_end(&self) -> u64 {
        self.nodes
            .values()
            .filter_map(|n| n.status.as_ref())
            .map(|s| s.core.last_log_index)
            .max()
            .unwrap_or(0)
    }

    /// Median and 99th percentile latency (µs) of successful sampled operations in the last `window_ms`,
    /// from an HDR histogram (3 significant figures).
    pub fn latency_percentiles(&self, window_ms: u64) -> Option<(u64, u64)> {
        let since = self.now_ms.saturating_sub(window_ms);
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
            .expect("valid bounds");
        for o in self
            .client_ops
            .iter()
            .filter(|o| o.at_ms >= since && o.result == "ok")
        {
            h.saturating_record(o.latency_us.max(1));
        }
        if h.is_empty() {
            return None;
        }
        Some((h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }

    pub(super) fn node_mut(&mut self, id: u64) -> &mut NodeView {
        self.nodes.entry(id).or_insert_with(|| NodeView::new(id))
    }

    fn on_status(&mut self, at: u64, node: u64, status: &NodeStatus) {
        self.paxos |= status.paxos.is_some();
        self.flush_truncation(node);
        let n = self.node_mut(node);
        let was_reachable = n.reachable;
        // The status was taken at most one round trip before it arrived: the smallest gap seen is the best.
        let offset = at as i64 - status.uptime_ms as i64;
        n.clock = match n.clock {
            Some((pid, best)) if pid == status.pid => Some((pid, best.min(offset))),
            _ => Some((status.pid, offset)),
        };
        if n.feed_leads.is_some_and(|t| status.core.term > t) {
            n.feed_leads = None;
        }
        let was_recovering = n.status.as_ref().is_some_and(|s| s.recovering);
        let waited_for = n.status.as_ref().and_then(|s| s.recovery_wait.clone());
        // Recoveries this process had finished at the last poll: one finished since, even with no poll seeing
        // it recover (a wiped node that recovered within one poll interval), is told in the feed.
        let recoveries_before = n
            .status
            .as_ref()
            .filter(|s| s.pid == status.pid)
            .and_then(|s| s.recovered.as_ref())
            .map_or(0, |r| r.count);
        n.status = Some(status.clone());
        n.brief = Some(BriefStatus::of(status));
        n.status_fresh = true;
        n.reachable = true;
        n.error = None;
        // A status can arrive before the supervisor's "running" report; the process is evidently up.
        if matches!(
            n.process,
            ProcessState::Starting | ProcessState::Restarting { .. }
        ) {
            n.process = ProcessState::Running { pid: status.pid };
        }
        if !was_reachable {
            self.push(
                at,
                Some(node),
                FeedKind::Info,
                format!("n{node} answers again"),
            );
        }
        let finished = status
            .recovered
            .as_ref()
            .filter(|r| !status.recovering && r.count > recoveries_before);
        if status.recovering && !was_recovering {
            let text = format!(
                "n{node} is recovering: it may have lost data it acknowledged, so it does not vote or campaign \
                 until it has learned the current term from every other voter and a leader caught it up (or every \
                 other member vouched for its log)"
            );
            self.push(at, Some(node), FeedKind::Info, text);
        } else if !status.recovering && (was_recovering || finished.is_some()) {
            // Say which way it recovered: a leader wrote to it, or every other member vouched for its log.
            let text = match finished.or(status.recovered.as_ref()) {
                Some(r) => format!("n{node} recovered: {}; it votes again", r.by),
                // A node (or an event log) from before status said how.
                None => format!("n{node} recovered; it votes again"),
            };
            self.push(at, Some(node), FeedKind::Info, text);
        }
        // What a recovering node waits for, each time it changes ("n2 recovering: waiting for n5's term").
        if let Some(wait) = status.recovery_wait.as_ref().filter(|_| status.recovering)
            && waited_for.as_ref() != Some(wait)
        {
            self.push(
                at,
                Some(node),
                FeedKind::Info,
                format!("n{node} recovering: {wait}"),
            );
        }
        if status.core.term > self.term {
            self.term = status.core.term;
        }
        let seen = crate::check::invariants::Invariants::observation(at, node, status);
        for v in self.invariants.observe(&seen) {
            self.push(
                at,
                None,
                FeedKind::Violation,
                format!("INVARIANT BROKEN: {v}"),
            );
        }
        self.refresh_node(at, node);
        self.observe_config(node, status);
    }

    /// A status from a kind that reports only the brief fields: drawn with `—` for what it does not report,
    /// and checked by the invariants that can be judged from it (the others are named once in the feed).
    fn on_brief(&mut self, at: u64, node: u64, brief: &BriefStatus) {
        self.flush_truncation(node);
        let n = self.node_mut(node);
        let was_reachable = n.reachable;
        if let (Some(t), Some(term)) = (n.feed_leads, brief.term)
            && term > t
        {
            n.feed_leads = None;
        }
        n.status = None;
        n.brief = Some(brief.clone());
        n.status_fresh = true;
        n.reachable = true;
        n.error = None;
        let pid = brief.pid.or(n.process.pid());
        if matches!(
            n.process,
            ProcessState::Starting | ProcessState::Restarting { .. }
        ) && let Some(pid) = pid
        {
            n.process = ProcessState::Running { pid };
        }
        if !was_reachable {
            self.push(
                at,
                Some(node),
                FeedKind::Info,
                format!("n{node} answers again"),
            );
        }
        if let Some(term) = brief.term
            && term > self.term
        {
            self.term = term;
        }
        let seen = crate::check::invariants::Invariants::brief_observation(
            at,
            node,
            brief,
            pid.map_or(0, u64::from),
        );
        if let Some(line) = self.invariants.note_unjudged(&seen) {
            self.push(at, None, FeedKind::Check, line);
        }
        for v in self.invariants.observe(&seen) {
            self.push(
                at,
                None,
                FeedKind::Violation,
                format!("INVARIANT BROKEN: {v}"),
            );
        }
        self.refresh_node(at, node);
    }

    /// Re-derives the node's lane, the cluster leader and the commit index after the node changed.
    pub(super) fn refresh_node(&mut self, at: u64, node: u64) {
        if let Some(n) = self.nodes.get_mut(&node) {
            let role = n.lane_role();
            n.lane.set(at, role);
        }
        // A node whose kind does not report its term cannot be placed among leaders: it is left out.
        let leader = self
            .nodes
            .values()
            .filter_map(|n| Some((n.live_brief()?.leads()?, n.id)))
            .max()
            .map(|(term, id)| (id, term));
        match leader {
            Some((id, term)) => {
                self.leader = Some(id);
                self.leader_term = term;
                self.announce(at, id, term);
            }
            None => self.leader = None,
        }
        let leader_commit = self
            .leader
            .and_then(|l| self.nodes.get(&l)?.live_brief()?.commit);
        let commit = match leader_commit {
            Some(c) => c,
            None => self
                .nodes
                .values()
                .filter_map(|n| n.live_brief()?.commit)
                .max()
                .unwrap_or(self.commit),
        };
        self.commit = commit;
        let any_live = self
            .nodes
            .values()
            .any(|n| n.live_brief().is_some_and(|b| b.commit.is_some()));
        if !self.commit_seen {
            // The first sighting is the state the session joined in, not writes made during it.
            if any_live {
                self.commit_seen = true;
                self.commit_high = commit;
            }
        } else if commit > self.commit_high {
            self.writes.add(at, commit - self.commit_high);
            self.commit_high = commit;
        }
    }
}

/// The role a person reads for a node: its Raft role, or `recovering` while the node does not vote or
/// campaign because it may have lost data it acknowledged (the node's `recovering` status field).
pub fn role_label(s: &NodeStatus) -> &'static str {
    if s.recovering {
        "recovering"
    } else {
        s.core.role.as_str()
    }
}

impl ClusterState {
    /// Teaching mode, as the nodes report it: some live node's timers stand still (`freeze`).
    pub fn frozen(&self) -> bool {
        self.nodes
            .values()
            .any(|n| n.live_status().is_some_and(|s| s.frozen))
    }
}

/// The last index at which a follower's log (ending at `own_last`, tail `theirs`) agrees with the leader's
/// (tail `ours`), from the two tails: by the Log Matching property (Raft §5.3) an entry of the same index
/// and term means the logs agree up to it. Where the tails overlap but no index agrees, the logs agree at
/// most up to the index before the overlap; where they do not overlap, the follower's last index (or the
/// leader's tail end, when the follower holds more) is all that is known.
fn agreed_index(
    ours: &[squall_node::rpc::LogCell],
    theirs: &[squall_node::rpc::LogCell],
    own_last: u64,
) -> u64 {
    let term_at = |tail: &[squall_node::rpc::LogCell], i: u64| {
        let first = tail.first()?.index;
        tail.get(i.checked_sub(first)? as usize)
            .filter(|c| c.index == i)
            .map(|c| c.term)
    };
    let Some(lo) = ours
        .first()
        .zip(theirs.first())
        .map(|(a, b)| a.index.max(b.index))
    else {
        return own_last;
    };
    let hi = own_last.min(ours.last().map_or(0, |c| c.index));
    if hi < lo {
        return hi;
    }
    (lo..=hi)
        .rev()
        .find(|&i| term_at(ours, i).is_some() && term_at(ours, i) == term_at(theirs, i))
        .unwrap_or(lo - 1)
}

/// One line about a node for text output: process, role, term, leader and log positions.
pub fn describe_node(n: &NodeView) -> String {
    // An `add` cancelled before its process started: it never ran, and has no status to wait for.
    if n.removed && matches!(n.process, ProcessState::Starting) {
        return format!("n{} never started", n.id);
    }
    let mut out = match &n.host_unreachable {
        // Its host's agent is gone and stopped it: no process, no pid, nothing "last known" about one (tester9).
        Some(host) if n.host_lost => format!(
            "n{} gone with host {host} (its agent is gone and stopped it; `quit`, then `squall up` again with the \
             same --dir and hosts file starts it on its data)",
            n.id
        ),
        // Its host does not answer: its process may run or not, and is not guessed (issue 24).
        Some(host) => format!(
            "n{} unreachable (host {host} does not answer; last known: {})",
            n.id,
            n.process.label()
        ),
        None => format!("n{} {}", n.id, n.process.label()),
    };
    if let Some(why) = &n.refused {
        out.push_str(&format!(" did not start ({why})"));
    }
    if let Some(pid) = n.process.pid().filter(|_| !n.host_lost) {
        out.push_str(&format!(" pid {pid}"));
    }
    if !n.reachable && n.process.is_alive() && !n.host_lost {
        out.push_str(" (not answering)");
    }
    let Some(b) = &n.brief else {
        out.push_str(" no status yet");
        return out;
    };
    // What the node's kind does not report is `—`, never guessed.
    let num = |v: Option<u64>| v.map_or("—".to_string(), |v| v.to_string());
    let role = match (&n.status, b.role) {
        (Some(s), _) => role_label(s),
        // A kind that says so (etcd): a learner, not the follower its role says.
        (None, Some(_)) if b.learner => "learner",
        (None, Some(r)) => r.as_str(),
        (None, None) => "—",
    };
    let leader = match b.leader {
        Some(Some(l)) => format!("n{l}"),
        Some(None) => "none".to_string(),
        None => "—".to_string(),
    };
    // A Paxos node: its promised ballot as `round.proposer` where Raft shows a term.
    let term = match n.status.as_ref().filter(|s| s.paxos.is_some()) {
        Some(s) => s.term_text(),
        None => format!("term {}", num(b.term)),
    };
    out.push_str(&format!(
        " {role} {term} leader {leader} commit {} applied {}",
        num(b.commit),
        num(b.applied)
    ));
    if let Some(s) = &n.status {
        let c = &s.core;
        // A Paxos node's last slot: its slots carry ballots, not one last term.
        let last = match &s.paxos {
            Some(_) => format!("slot {}", c.last_log_index),
            None => format!("{}/{}", c.last_log_index, c.last_log_term),
        };
        out.push_str(&format!(" last {last} snapshot {}", c.snapshot_index));
        // Teaching mode: the timers stand still, and how long the election timer has left.
        if s.frozen {
            out.push_str(" frozen");
        }
        if let Some(ms) = s.election_due_ms {
            out.push_str(&format!(" timeout-in {:.1}s", ms as f64 / 1000.0));
        }
        if let Some(wait) = s.recovery_wait.as_ref().filter(|_| s.recovering) {
            out.push_str(&format!(" recovering: {wait}"));
        }
    }
    // Messages by type (received/sent), from a kind whose driver counts them.
    if let Some(m) = &b.messages {
        out.push_str(&format!(" messages {}", m.describe()));
    }
    if n.live_brief().is_none() {
        out.push_str(" (last known)");
    }
    out
}
