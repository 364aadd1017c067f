//! [`ClusterState`]: everything the dashboard shows, folded from [`Stamped`] events.

use std::collections::{BTreeMap, VecDeque};

use squall_node::raft::types::{RaftEvent, Role};
use squall_node::rpc::{NodeEvent, NodeStatus};

use super::event::{Event, LinkState, LinkView, ProcessState, Stamped};
use super::lane::{Lane, LaneRole};
use super::series::RateSeries;

/// Most lines the event feed keeps.
pub const FEED_CAPACITY: usize = 500;
/// A line counts as a repeat only within this long of the previous occurrence.
const REPEAT_WINDOW_MS: u64 = 3_000;
/// How far back a vote looks for the request it answers (and a request for votes that came first).
const BALLOT_LOOKBACK: usize = 200;
/// Most sampled client operations kept for latency figures.
pub const CLIENT_OPS_CAPACITY: usize = 256;

/// What a feed line is about, for colour and for recording markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// Session bookkeeping (start, workload changes, reachability).
    Info,
    /// An election or pre-vote round started, or a new term began.
    Election,
    /// A vote or pre-vote was granted.
    Vote,
    /// A node became the cluster's leader in a newer term.
    Leader,
    /// A leader stepped down or handed leadership over.
    Role,
    /// Log truncation, snapshots.
    Log,
    /// A process started, paused, resumed or was restarted.
    Process,
    /// A process ended (killed or exited).
    Exit,
    /// A fault injected or a key action performed.
    Fault,
    /// An action failed or a node stopped answering.
    Error,
    /// Terminal recording started or stopped.
    Recording,
    /// A check of the workload's counters passed or could not decide.
    Check,
    /// A check found an acknowledged write lost (or a write nobody sent).
    Violation,
}

impl FeedKind {
    /// Whether lines of this kind report what a person did or asked (a fault, an action's failure, a check,
    /// a recording): each is its own line, never folded into an earlier one as a repeat.
    pub fn is_operator(self) -> bool {
        matches!(
            self,
            FeedKind::Fault
                | FeedKind::Error
                | FeedKind::Check
                | FeedKind::Violation
                | FeedKind::Recording
        )
    }
}

/// One line of the event feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLine {
    /// Session time it happened.
    pub at_ms: u64,
    /// The node it concerns, if one.
    pub node: Option<u64>,
    /// What kind of event.
    pub kind: FeedKind,
    /// Words for a person.
    pub text: String,
    /// How many times it happened in a row (a node isolated asks for pre-votes every election timeout;
    /// the feed shows one line with a count instead of a screenful).
    pub repeats: u32,
    /// Session time of the last repeat.
    pub last_ms: u64,
    /// Its place in the order lines were added (see [`ClusterState::feed_since`]).
    pub seq: u64,
    /// What must precede or follow it whatever the clocks say.
    cause: Option<Causal>,
    /// For a candidate's request: the nodes that granted it, shown on its line rather than one line each.
    pub votes: Vec<u64>,
    /// The text without the votes.
    base: String,
}

impl FeedLine {
    /// Records `voter`'s grant on this request's line.
    fn add_vote(&mut self, voter: u64) {
        let Some(Causal::Asks(ballot)) = self.cause else {
            return;
        };
        if let Err(at) = self.votes.binary_search(&voter) {
            self.votes.insert(at, voter);
        }
        let voters: Vec<String> = self.votes.iter().map(|v| format!("n{v}")).collect();
        let what = if ballot.pre_vote {
            "granted by"
        } else {
            "votes from"
        };
        self.text = format!("{} — {what} {}", self.base, voters.join(" "));
    }
}

/// Most other precandidates' requests a pre-vote request folds across onto its own earlier line (9 nodes).
const PRE_VOTE_CYCLE: usize = 8;

/// Where `line` repeats a recent line of `lines` (newest last): the line right before it with the same node,
/// kind and words, seen (`seen`: its latest time) within [`REPEAT_WINDOW_MS`]. Precandidates that cannot win
/// keep asking in turn ("n3 asks…", "n7 asks…", "n3 asks…"): a pre-vote request also repeats its own line
/// across other nodes' pre-vote requests (up to [`PRE_VOTE_CYCLE`] of them), so two or more of them fold as
/// one does. An operator's line never repeats.
fn repeat_of(
    lines: &VecDeque<FeedLine>,
    line: &FeedLine,
    seen: impl Fn(&FeedLine) -> u64,
) -> Option<usize> {
    if line.kind.is_operator() {
        return None;
    }
    let same = |l: &FeedLine| {
        l.node == line.node
            && l.kind == line.kind
            && l.base == line.base
            && line.at_ms.saturating_sub(seen(l)) <= REPEAT_WINDOW_MS
    };
    let pre_vote = |l: &FeedLine| matches!(l.cause, Some(Causal::Asks(b)) if b.pre_vote);
    for (back, i) in (0..lines.len()).rev().enumerate() {
        let l = &lines[i];
        if same(l) {
            return Some(i);
        }
        let across = back < PRE_VOTE_CYCLE
            && pre_vote(line)
            && pre_vote(l)
            && l.node != line.node
            && line.at_ms.saturating_sub(seen(l)) <= REPEAT_WINDOW_MS;
        if !across {
            return None;
        }
    }
    None
}

/// One round of (pre-)voting: a candidate asking for a term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ballot {
    candidate: u64,
    term: u64,
    pre_vote: bool,
}

/// A line's place in an election: a grant joins the line of the request it answers, which keeps them together
/// where the nodes' clocks (mapped onto session time within a millisecond or two) could not order them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Causal {
    /// The candidate asked.
    Asks(Ballot),
    /// A node granted it.
    Grants(Ballot),
    /// A round of log compactions (the nodes in `votes`), to indexes `lo` to `hi`.
    Compaction { lo: u64, hi: u64 },
}

/// How close in time compactions must be to count as one round.
const COMPACTION_ROUND_MS: u64 = 5_000;

/// "n2 compacts its log into a snapshot (to 500)" / "n1 n2 n3 compact their logs into snapshots (to 498–500)".
fn compaction_text(nodes: &[u64], lo: u64, hi: u64) -> String {
    let to = if lo == hi {
        format!("to {lo}")
    } else {
        format!("to {lo}–{hi}")
    };
    match nodes {
        [one] => format!("n{one} compacts its log into a snapshot ({to})"),
        many => {
            let names: Vec<String> = many.iter().map(|n| format!("n{n}")).collect();
            format!(
                "{} compact their logs into snapshots ({to})",
                names.join(" ")
            )
        }
    }
}

/// What is known about one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// Node id.
    pub id: u64,
    /// The latest status it reported (kept after it dies, for the last known values).
    pub status: Option<NodeStatus>,
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
    feed_role: Option<Role>,
    /// The term its own feed last said it leads, until its feed or a newer term says otherwise: its feed is
    /// read ahead of the status that shows it leading.
    feed_leads: Option<u64>,
    /// The running process's pid and how far its clock (milliseconds since it started) lags session time,
    /// learned from its statuses, to place its feed records at the moment they happened.
    clock: Option<(u32, i64)>,
    /// A truncation not reported yet: (when, first index, count); see `RaftEvent::LogTruncated`.
    truncated: Option<(u64, u64, u64)>,
    /// Disk faults in force on it, in words (`squall up --disk-faults`).
    pub disk_faults: Vec<String>,
    /// Its faked clock's offset and rate, in words; `None` while it runs true.
    pub clock_fault: Option<String>,
    /// Whether a configuration ever named it (so one that no longer does means it was removed).
    pub was_member: bool,
    /// Whether it was removed from the configuration (its own word, or squall's removal step).
    pub removed: bool,
    /// Why it refused its data at the session's start, until a process of it runs.
    pub refused: Option<String>,
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
        self.status
            .as_ref()
            .filter(|_| self.status_fresh && self.reachable && self.process.is_alive())
    }

    /// What its lane shows now, from the process first and the status second.
    pub fn lane_role(&self) -> LaneRole {
        match &self.process {
            ProcessState::Killed { .. }
            | ProcessState::Exited { .. }
            | ProcessState::Restarting { .. } => LaneRole::Down,
            ProcessState::Paused { .. } => LaneRole::Paused,
            ProcessState::Starting => LaneRole::Unknown,
            ProcessState::Running { .. } => match self.live_status() {
                Some(s) => s.core.role.into(),
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
    /// Failed operations so far.
    pub failed: u64,
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
    /// The event feed, oldest first, at most [`FEED_CAPACITY`] lines.
    pub feed: VecDeque<FeedLine>,
    /// Lines ever pushed to the feed.
    pushed: u64,
    /// Every line as it came, before votes joined their requests and repeats were counted, newest last: what
    /// a console prints and a recording marks.
    ticker: VecDeque<FeedLine>,
    /// The latest link report.
    pub links: Vec<LinkView>,
    /// Per-link traffic rates, keyed by `(from, to)`.
    pub link_rates: BTreeMap<(u64, u64), LinkRate>,
    links_at_ms: Option<u64>,
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
    /// Whether a terminal recording runs.
    pub recording: bool,
    /// Its file.
    pub recording_path: Option<String>,
    /// Session time of the latest event: the uptime.
    pub now_ms: u64,
    /// Set by [`Event::Quit`].
    pub ended: bool,
    /// The last (leader, term) announced in the feed, so two sources never announce it twice.
    announced: Option<(u64, u64)>,
    /// Whether a commit index was seen, so growth from then on counts as writes.
    commit_seen: bool,
    /// When the workload's counters were last checked, and what was found.
    pub last_check: Option<(u64, super::Verdict)>,
    /// Which operations the built-in workload runs.
    pub workload_kind: super::WorkloadKind,
    /// Raft's safety properties, checked on every status (see [`crate::check::invariants`]).
    pub invariants: crate::check::invariants::Invariants,
    /// Each node's last full log tail, to expand [`Event::StatusDelta`] exactly as it was encoded.
    tails: BTreeMap<u64, Vec<squall_node::rpc::LogCell>>,
    /// The configuration as the leader knows it; `None` before any status carried one.
    pub config: Option<super::membership::ConfigView>,
    /// When faults were injected (session milliseconds, the latest `FAULT_MARKS`): the latency chart marks
    /// these, and not every command performed (a `heal`, `workload on` or `check` is no fault).
    pub fault_marks: std::collections::VecDeque<u64>,
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
                        "n{node} refused its data: {reason}; {} (a majority) run without it: fix or move its \
                         data and `restart {node}`, or `wipe {node}` to start it empty",
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
            Event::Workload {
                on,
                rate,
                ok,
                failed,
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
            Event::Checked { verdict, report } => {
                let kind = match verdict {
                    super::Verdict::Violated => FeedKind::Violation,
                    super::Verdict::Ok | super::Verdict::Inconclusive => FeedKind::Check,
                };
                self.last_check = Some((at, *verdict));
                self.push(at, None, kind, report.clone());
            }
            Event::Op { .. } => {}
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
            Event::Settings { .. } => {}
            Event::Note { text } => self.push(at, None, FeedKind::Info, text.clone()),
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

    /// Who leads, as far as anything has told: `(leader, term)` with the highest term seen. The leader is the
    /// one the statuses show ([`ClusterState::leader`]) unless a live node's own feed said it leads a newer
    /// term: a node's feed is read ahead of its status, so between "n9 leads term 2" and the status that
    /// shows it, the statuses alone would say there is no leader (or the old one). The console's summary
    /// line ("leader 9 term 2 commit 812") comes from this.
    pub fn leadership(&self) -> (Option<u64>, u64) {
        let fed = self
            .nodes
            .values()
            .filter(|n| n.process.is_alive() && n.reachable)
            .filter_map(|n| n.feed_leads.map(|t| (t, n.id)))
            .max();
        let leader = match (self.leader, fed) {
            (Some(_), Some((t, id))) if t > self.leader_term => Some(id),
            (Some(l), _) => Some(l),
            (None, Some((t, id))) if t >= self.term => Some(id),
            (None, _) => None,
        };
        (leader, self.term)
    }

    /// The cluster's commit index: the leader's, or the highest live one while there is no leader.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// Lines pushed after the first `seen` (as counted by [`ClusterState::feed_total`]), one per event in the
    /// order they came (votes not joined into their request's line; a line seen within the last few seconds
    /// not again): what a console prints and a recording marks. Only the last [`FEED_CAPACITY`] are kept.
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
        // A new leader's match indexes start at zero until the first acknowledgements: fall back to what the
        // node itself reports (which over-counts a diverged log, so the match index wins once known).
        let held = match (matched.filter(|&m| m > 0), own) {
            (Some(m), _) => m,
            (None, Some(o)) => o,
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

    pub(super) fn push(&mut self, at_ms: u64, node: Option<u64>, kind: FeedKind, text: String) {
        self.push_line(at_ms, node, kind, text, None);
    }

    fn push_line(
        &mut self,
        at_ms: u64,
        node: Option<u64>,
        kind: FeedKind,
        text: String,
        cause: Option<Causal>,
    ) {
        let line = FeedLine {
            at_ms,
            node,
            kind,
            base: text.clone(),
            text,
            repeats: 1,
            last_ms: at_ms,
            seq: self.pushed,
            cause,
            votes: Vec::new(),
        };
        // A console prints a line again only when something else came between or a few seconds passed.
        let printed = repeat_of(&self.ticker, &line, |l| l.at_ms).is_some();
        if !printed {
            self.pushed += 1;
            self.ticker.push_back(line.clone());
            if self.ticker.len() > FEED_CAPACITY {
                self.ticker.pop_front();
            }
        }
        self.add_to_feed(line);
    }

    /// Puts a line into the feed: a vote onto the line of the request it answers, a repeat onto the line it
    /// repeats, anything else in its place in time.
    fn add_to_feed(&mut self, mut line: FeedLine) {
        if let (Some(Causal::Grants(ballot)), Some(voter)) = (line.cause, line.node) {
            let request = self
                .feed
                .iter_mut()
                .rev()
                .take(BALLOT_LOOKBACK)
                .find(|l| l.cause == Some(Causal::Asks(ballot)));
            if let Some(request) = request {
                request.add_vote(voter);
                return;
            }
        }
        // The same line again within a few seconds, with nothing else between, counts as a repeat of it. An
        // operator's action is never folded: two heals around a partition are two heals.
        let at_ms = line.at_ms;
        let repeated = repeat_of(&self.feed, &line, |l| l.last_ms)
            .filter(|&i| self.feed[i].at_ms <= at_ms)
            .and_then(|i| self.feed.get_mut(i));
        if let Some(earlier) = repeated {
            earlier.repeats += 1;
            earlier.last_ms = earlier.last_ms.max(at_ms);
            return;
        }
        if let Some(Causal::Asks(ballot)) = line.cause {
            // Votes that arrived before the request (their node was polled first) join it.
            let from = self.feed.len().saturating_sub(BALLOT_LOOKBACK);
            let mut i = from;
            while i < self.feed.len() {
                if self.feed[i].cause == Some(Causal::Grants(ballot)) {
                    let vote = self.feed.remove(i).expect("index checked");
                    line.at_ms = line.at_ms.min(vote.at_ms);
                    if let Some(voter) = vote.node {
                        line.add_vote(voter);
                    }
                } else {
                    i += 1;
                }
            }
        }
        self.insert_in_time_order(line);
        if self.feed.len() > FEED_CAPACITY {
            self.feed.pop_front();
        }
    }

    /// Lines arrive almost in time order; one that happened before lines already there (a node polled a moment
    /// later than another) goes in its place, so an election reads as it went.
    fn insert_in_time_order(&mut self, line: FeedLine) {
        let at = self
            .feed
            .iter()
            .rposition(|l| l.at_ms <= line.at_ms)
            .map_or(0, |i| i + 1);
        self.feed.insert(at, line);
    }

    /// Session time of a node's feed record: the node's own clock mapped onto the session's through the offset
    /// its statuses gave, never later than the record's arrival; the arrival time until a status of the
    /// process was seen.
    fn event_time(&self, node: u64, arrival: u64, node_ms: u64) -> u64 {
        match self.nodes.get(&node).and_then(|n| n.clock) {
            Some((_, offset)) => (offset + node_ms as i64).clamp(0, arrival as i64) as u64,
            None => arrival,
        }
    }

    /// Reports a held truncation that no snapshot install followed: entries in conflict with the leader's.
    fn flush_truncation(&mut self, node: u64) {
        if let Some((happened, from, count)) =
            self.nodes.get_mut(&node).and_then(|n| n.truncated.take())
        {
            let text = format!("n{node} drops {count} conflicting entries from index {from}");
            self.push(happened, Some(node), FeedKind::Log, text);
        }
    }

    /// Nodes compact at about the same index at about the same time: a round of compactions is one line
    /// ("n1 n2 n3 compact their logs into snapshots (to 498–500)") rather than one per node.
    fn on_compaction(&mut self, happened: u64, node: u64, index: u64) {
        let round = self.feed.iter_mut().rev().take(BALLOT_LOOKBACK).find(|l| {
            matches!(l.cause, Some(Causal::Compaction { .. }))
                && happened.saturating_sub(l.at_ms) <= COMPACTION_ROUND_MS
                && !l.votes.contains(&node)
        });
        if let Some(line) = round {
            let Some(Causal::Compaction { lo, hi }) = line.cause else {
                return;
            };
            let (lo, hi) = (lo.min(index), hi.max(index));
            line.cause = Some(Causal::Compaction { lo, hi });
            if let Err(at) = line.votes.binary_search(&node) {
                line.votes.insert(at, node);
            }
            line.text = compaction_text(&line.votes, lo, hi);
            line.base = line.text.clone();
            return;
        }
        let line = FeedLine {
            at_ms: happened,
            node: Some(node),
            kind: FeedKind::Log,
            text: compaction_text(&[node], index, index),
            repeats: 1,
            last_ms: happened,
            seq: self.pushed,
            cause: Some(Causal::Compaction {
                lo: index,
                hi: index,
            }),
            votes: vec![node],
            base: compaction_text(&[node], index, index),
        };
        self.pushed += 1;
        self.ticker.push_back(line.clone());
        if self.ticker.len() > FEED_CAPACITY {
            self.ticker.pop_front();
        }
        self.insert_in_time_order(line);
        if self.feed.len() > FEED_CAPACITY {
            self.feed.pop_front();
        }
    }

    fn on_status(&mut self, at: u64, node: u64, status: &NodeStatus) {
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
        n.status = Some(status.clone());
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

    /// A record of a node's own feed, which arrived at `at` and happened at `happened` (the feed line's time;
    /// role lanes keep arrival time, as they only ever move forward).
    fn on_feed(&mut self, at: u64, happened: u64, node: u64, event: &NodeEvent) {
        // Votes are checked from the feed, not from polls: a vote leaves no trace a later poll could see.
        let when = std::time::Duration::from_millis(happened);
        if let Some(v) = self.invariants.on_node_event(when, node, event) {
            self.push(
                at,
                None,
                FeedKind::Violation,
                format!("INVARIANT BROKEN: {v}"),
            );
        }
        if !matches!(event, NodeEvent::Raft(RaftEvent::SnapshotInstalled { .. })) {
            self.flush_truncation(node);
        }
        let raft = match event {
            NodeEvent::Started {
                term,
                last_index,
                snapshot_index,
                empty,
                truncated_tail_bytes,
            } => {
                let mut text = if *empty {
                    format!("n{node} started with an empty data dir")
                } else {
                    format!(
                        "n{node} started: term {term}, log to {last_index}, snapshot {snapshot_index}"
                    )
                };
                if *truncated_tail_bytes > 0 {
                    text.push_str(&format!(", cut {truncated_tail_bytes} torn WAL bytes"));
                }
                let n = self.node_mut(node);
                n.feed_role = Some(Role::Follower);
                n.feed_leads = None;
                self.push(happened, Some(node), FeedKind::Process, text);
                return;
            }
            NodeEvent::Raft(r) => r,
            NodeEvent::DiskFull { role, term, .. } => {
                let text = match role {
                    Role::Leader => format!("n{node} steps down in term {term}: its disk is full"),
                    Role::Candidate => format!(
                        "n{node} won the pre-vote for term {term} but cannot store its vote: its disk is \
                         full, no election"
                    ),
                    _ => format!("n{node}'s disk is full: it refuses writes until space returns"),
                };
                if matches!(role, Role::Leader | Role::Candidate) {
                    // Its step-down's RoleChanged follows; this line already tells it.
                    self.node_mut(node).feed_role = Some(Role::Follower);
                }
                self.push(happened, Some(node), FeedKind::Role, text);
                return;
            }
        };
        match raft {
            RaftEvent::RoleChanged { role, term } => {
                let n = self.node_mut(node);
                let before = n.feed_role.replace(*role);
                n.feed_leads = (*role == Role::Leader).then_some(*term);
                // The feed trails the status polls: the role shows as a blip unless it is the current one.
                let current = n.lane_role();
                if LaneRole::from(*role) != current {
                    n.lane.blip(at, (*role).into());
                }
                match role {
                    Role::Leader => self.announce(happened, node, *term),
                    Role::Follower if before == Some(Role::Leader) => {
                        self.push(
                            happened,
                            Some(node),
                            FeedKind::Role,
                            format!("n{node} steps down in term {term}"),
                        );
                    }
                    _ => {}
                }
                self.term = self.term.max(*term);
            }
            RaftEvent::TermChanged { term } => {
                // No line of its own: a term begins with the election a candidate starts for it, and that line
                // ("n3 starts an election in term 2") credits it. Voters and the old leader reach the term
                // by hearing of it, often before the candidate's own report arrives.
                self.term = self.term.max(*term);
            }
            RaftEvent::ElectionStarted { term, pre_vote } => {
                let text = if *pre_vote {
                    format!("n{node} asks for pre-votes for term {term}")
                } else {
                    format!("n{node} starts an election in term {term}")
                };
                let ballot = Ballot {
                    candidate: node,
                    term: *term,
                    pre_vote: *pre_vote,
                };
                self.push_line(
                    happened,
                    Some(node),
                    FeedKind::Election,
                    text,
                    Some(Causal::Asks(ballot)),
                );
            }
            RaftEvent::VoteGranted {
                candidate,
                term,
                pre_vote,
            } => {
                let what = if *pre_vote { "pre-votes" } else { "votes" };
                let ballot = Ballot {
                    candidate: *candidate,
                    term: *term,
                    pre_vote: *pre_vote,
                };
                self.push_line(
                    happened,
                    Some(node),
                    FeedKind::Vote,
                    format!("n{node} {what} for n{candidate} in term {term}"),
                    Some(Causal::Grants(ballot)),
                );
            }
            RaftEvent::LeaderChanged { .. } => {
                // Every follower reports the same change; the cluster-wide announcement covers it.
            }
            RaftEvent::LogTruncated { from_index, count } => {
                // Held until the node's next record or status: a snapshot install reports the entries it
                // replaces this way first, and those were superseded, not in conflict.
                self.node_mut(node).truncated = Some((happened, *from_index, *count));
            }
            RaftEvent::SnapshotInstalled { meta } => {
                let mut text = format!(
                    "n{node} installs the leader's snapshot to {} (term {})",
                    meta.last_index, meta.last_term
                );
                if let Some((_, from, count)) = self.node_mut(node).truncated.take() {
                    text.push_str(&format!(
                        ", superseding {count} uncommitted entries from index {from}"
                    ));
                }
                self.push(happened, Some(node), FeedKind::Log, text);
            }
            RaftEvent::SnapshotTaken { meta } => {
                self.on_compaction(happened, node, meta.last_index)
            }
            RaftEvent::QuorumLost { term } => {
                let n = self.node_mut(node);
                n.feed_role = Some(Role::Follower);
                n.feed_leads = None;
                let text = format!("n{node} lost its quorum and steps down in term {term}");
                self.push(happened, Some(node), FeedKind::Role, text);
            }
            RaftEvent::TransferStarted { target, term } => {
                let text = format!("n{node} hands leadership to n{target} in term {term}");
                self.push(happened, Some(node), FeedKind::Role, text);
            }
            // The statuses carry the configuration, and squall's own steps tell the story of a change.
            RaftEvent::ConfigChanged { .. } | RaftEvent::ConfigCommitted { .. } => {}
            RaftEvent::Removed { index } => self.on_removed(happened, node, *index),
        }
    }

    fn on_process(&mut self, at: u64, node: u64, state: &ProcessState) {
        if matches!(state, ProcessState::Restarting { wipe: true }) {
            // The wipe itself says the data is gone, so the node's next process may start from term 0.
            self.invariants.data_lost(node);
        }
        let n = self.node_mut(node);
        let before = std::mem::replace(&mut n.process, state.clone());
        if !matches!(
            state,
            ProcessState::Paused { .. } | ProcessState::Running { .. }
        ) || state.pid() != before.pid()
        {
            // Another process (or none): the old one's clock says nothing about it.
            n.clock = None;
        }
        if !state.is_alive()
            || matches!(
                before,
                ProcessState::Restarting { .. } | ProcessState::Starting
            )
        {
            // Whatever the old process reported no longer describes this one.
            n.status_fresh = false;
        }
        if matches!(state, ProcessState::Running { .. })
            && !matches!(before, ProcessState::Paused { .. })
        {
            n.refused = None;
            n.reachable = true;
            n.feed_role = None;
            n.feed_leads = None;
        }
        let (kind, text) = match state {
            ProcessState::Starting => (FeedKind::Process, format!("n{node} starting")),
            ProcessState::Running { pid } => match before {
                ProcessState::Paused { .. } => (FeedKind::Process, format!("n{node} resumed")),
                _ => (FeedKind::Process, format!("n{node} running, pid {pid}")),
            },
            ProcessState::Paused { .. } => (FeedKind::Process, format!("n{node} paused")),
            ProcessState::Killed { pid } => (FeedKind::Exit, format!("n{node} killed (pid {pid})")),
            ProcessState::Exited {
                code,
                signal,
                reason,
                ..
            } => {
                let how = match (code, signal) {
                    (Some(c), _) => format!("exited with code {c}"),
                    (None, Some(s)) => format!("ended by {s}"),
                    (None, None) => "exited".to_string(),
                };
                match reason {
                    Some(r) => (FeedKind::Exit, format!("n{node} {how}: {r}")),
                    None => (FeedKind::Exit, format!("n{node} {how}")),
                }
            }
            ProcessState::Restarting { wipe: true } => (
                FeedKind::Process,
                format!("n{node} restarting with its data wiped"),
            ),
            ProcessState::Restarting { wipe: false } => {
                (FeedKind::Process, format!("n{node} restarting"))
            }
        };
        self.push(at, Some(node), kind, text);
        self.refresh_node(at, node);
        self.refresh_faults();
    }

    fn on_links(&mut self, at: u64, links: &[LinkView]) {
        if let Some(prev_at) = self.links_at_ms
            && at > prev_at
        {
            let dt = (at - prev_at) as f64 / 1000.0;
            let old: BTreeMap<(u64, u64), &LinkView> =
                self.links.iter().map(|l| ((l.from, l.to), l)).collect();
            self.link_rates.clear();
            for l in links {
                if let Some(o) = old.get(&(l.from, l.to)) {
                    let d = |new: u64, old: u64| new.saturating_sub(old) as f64 / dt;
                    self.link_rates.insert(
                        (l.from, l.to),
                        LinkRate {
                            frames: d(l.frames, o.frames),
                            bytes: d(l.bytes, o.bytes),
                            dropped: d(l.dropped, o.dropped),
                        },
                    );
                }
            }
        }
        if self.links_at_ms.is_none_or(|p| at > p) {
            self.links_at_ms = Some(at);
        }
        self.links = links.to_vec();
        self.refresh_faults();
    }

    /// Re-derives the node's lane, the cluster leader and the commit index after the node changed.
    fn refresh_node(&mut self, at: u64, node: u64) {
        if let Some(n) = self.nodes.get_mut(&node) {
            let role = n.lane_role();
            n.lane.set(at, role);
        }
        let leader = self
            .nodes
            .values()
            .filter_map(|n| n.live_status())
            .filter(|s| s.core.role == Role::Leader)
            .max_by_key(|s| (s.core.term, s.core.id))
            .map(|s| (s.core.id, s.core.term));
        match leader {
            Some((id, term)) => {
                self.leader = Some(id);
                self.leader_term = term;
                self.announce(at, id, term);
            }
            None => self.leader = None,
        }
        let commit = match self.leader.and_then(|l| self.nodes.get(&l)?.live_status()) {
            Some(s) => s.core.commit_index,
            None => self
                .nodes
                .values()
                .filter_map(|n| n.live_status())
                .map(|s| s.core.commit_index)
                .max()
                .unwrap_or(self.commit),
        };
        self.commit = commit;
        let any_live = self.nodes.values().any(|n| n.live_status().is_some());
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

    fn announce(&mut self, at: u64, leader: u64, term: u64) {
        if self.announced.is_some_and(|(_, t)| t >= term) {
            return;
        }
        self.announced = Some((leader, term));
        self.push(
            at,
            Some(leader),
            FeedKind::Leader,
            format!("n{leader} leads term {term}"),
        );
    }

    /// The faults line: [`ClusterState::faults`], with the time left on each timed fault of the set
    /// (`#3 cut *->1 8s`), as of the latest event.
    pub fn fault_labels(&self) -> Vec<String> {
        let Some(set) = &self.fault_set else {
            return self.faults.clone();
        };
        let mut out: Vec<String> = self
            .faults
            .iter()
            .filter(|f| !f.starts_with('#'))
            .cloned()
            .collect();
        for f in set {
            let left = f
                .until_ms
                .map(|u| format!(" {}", left_text(u.saturating_sub(self.now_ms))))
                .unwrap_or_default();
            out.push(format!("#{} {}{left}", f.id, f.short));
        }
        out
    }

    /// Recomputes [`ClusterState::faults`] from the process states and the link report.
    pub(super) fn refresh_faults(&mut self) {
        let mut faults = Vec::new();
        // A removed node stopped by `remove` left the cluster; its exit is not a fault.
        for n in self.nodes.values().filter(|n| !self.is_gone(n.id)) {
            match &n.process {
                ProcessState::Paused { .. } => faults.push(format!("n{} paused", n.id)),
                ProcessState::Killed { .. } => faults.push(format!("n{} killed", n.id)),
                ProcessState::Exited { .. } => faults.push(format!("n{} exited", n.id)),
                _ => {}
            }
            for d in &n.disk_faults {
                faults.push(format!("n{} disk {d}", n.id));
            }
            if let Some(c) = &n.clock_fault {
                faults.push(format!("n{} clock {c}", n.id));
            }
        }
        match &self.fault_set {
            Some(set) => faults.extend(set.iter().map(|f| format!("#{} {}", f.id, f.short))),
            None => faults.extend(describe_links(&self.links)),
        }
        self.faults = faults;
    }
}

/// Time left on a timed fault, as a person says it: `8s`, `1m05s`, `0.4s`.
pub fn left_text(ms: u64) -> String {
    if ms < 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        let s = ms.div_ceil(1000);
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// One line about a node for text output: process, role, term, leader and log positions.
pub fn describe_node(n: &NodeView) -> String {
    let mut out = format!("n{} {}", n.id, n.process.label());
    if let Some(why) = &n.refused {
        out.push_str(&format!(" refused its data ({why})"));
    }
    if let Some(pid) = n.process.pid() {
        out.push_str(&format!(" pid {pid}"));
    }
    if !n.reachable && n.process.is_alive() {
        out.push_str(" (not answering)");
    }
    match &n.status {
        Some(s) => {
            let c = &s.core;
            let leader = c.leader.map_or("none".to_string(), |l| format!("n{l}"));
            out.push_str(&format!(
                " {} term {} leader {leader} commit {} applied {} last {}/{} snapshot {}",
                c.role.as_str(),
                c.term,
                c.commit_index,
                s.applied_index,
                c.last_log_index,
                c.last_log_term,
                c.snapshot_index
            ));
            if n.live_status().is_none() {
                out.push_str(" (last known)");
            }
        }
        None => out.push_str(" no status yet"),
    }
    out
}

/// Names the network faults in a link report: isolated nodes and partitions from the cut links, then
/// per-node or per-link delays and losses.
pub fn describe_links(links: &[LinkView]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids: Vec<u64> = links.iter().flat_map(|l| [l.from, l.to]).collect();
    ids.sort_unstable();
    ids.dedup();
    let state = |a: u64, b: u64| {
        links
            .iter()
            .find(|l| l.from == a && l.to == b)
            .map(|l| l.state)
    };

    // Cuts: nodes that still talk both ways form groups.
    let cuts = links.iter().filter(|l| l.state == LinkState::Cut).count();
    if cuts > 0 {
        let mut group: BTreeMap<u64, u64> = ids.iter().map(|&i| (i, i)).collect();
        fn root(g: &BTreeMap<u64, u64>, mut x: u64) -> u64 {
            while g[&x] != x {
                x = g[&x];
            }
            x
        }
        for &a in &ids {
            for &b in &ids {
                let linked = a < b
                    && state(a, b).is_some_and(|s| s != LinkState::Cut)
                    && state(b, a).is_some_and(|s| s != LinkState::Cut);
                if linked {
                    let (ra, rb) = (root(&group, a), root(&group, b));
                    group.insert(ra.max(rb), ra.min(rb));
                }
            }
        }
        let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &i in &ids {
            groups.entry(root(&group, i)).or_default().push(i);
        }
        let groups: Vec<Vec<u64>> = groups.into_values().collect();
        if groups.len() == 1 {
            out.push(format!("{cuts} links cut"));
        } else if groups.iter().filter(|g| g.len() > 1).count() <= 1 {
            for g in groups.iter().filter(|g| g.len() == 1) {
                out.push(format!("n{} isolated", g[0]));
            }
        } else {
            let shown: Vec<String> = groups
                .iter()
                .map(|g| g.iter().map(u64::to_string).collect::<Vec<_>>().join(","))
                .collect();
            out.push(format!("partition {}", shown.join("|")));
        }
    }

    // Delays and losses: a node whose every link carries the same fault is named once.
    let mut kinds: Vec<LinkState> = links
        .iter()
        .map(|l| l.state)
        .filter(|s| matches!(s, LinkState::Delayed(_) | LinkState::Lossy(_)))
        .collect();
    kinds.sort_by_key(|s| match s {
        LinkState::Delayed(d) => (0, *d),
        LinkState::Lossy(p) => (1, u32::from(*p)),
        _ => (2, 0),
    });
    kinds.dedup();
    for kind in kinds {
        let label = match kind {
            LinkState::Delayed(ms) => format!("+{ms}ms"),
            LinkState::Lossy(pct) => format!("{pct}% loss"),
            _ => unreachable!("filtered above"),
        };
        // Cut links are named above, so they do not stop a node from counting as wholly delayed or lossy.
        let covered: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&n| {
                let touching = || {
                    ids.iter()
                        .filter(move |&&m| m != n)
                        .flat_map(move |&m| [state(n, m), state(m, n)])
                };
                touching().all(|s| s == Some(kind) || s == Some(LinkState::Cut))
                    && touching().any(|s| s == Some(kind))
            })
            .collect();
        for n in &covered {
            out.push(format!("n{n} {label}"));
        }
        let rest = links
            .iter()
            .filter(|l| l.state == kind && !covered.contains(&l.from) && !covered.contains(&l.to))
            .count();
        if rest > 0 {
            let noun = if rest == 1 { "link" } else { "links" };
            out.push(format!("{rest} {noun} {label}"));
        }
    }
    out
}
