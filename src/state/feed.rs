//! The event feed's lines and how they are placed: a repeat folds onto its earlier line, a vote joins the line
//! of the request it answers, a round of compactions is one line, and a line that happened earlier than lines
//! already there goes in its place in time. Pure data: [`super::narrate`] says what each event means in words.

use std::collections::VecDeque;

/// Most lines the event feed keeps.
pub const FEED_CAPACITY: usize = 500;
/// A line counts as a repeat only within this long of the previous occurrence.
const REPEAT_WINDOW_MS: u64 = 3_000;
/// How far back a vote looks for the request it answers (and a request for votes that came first).
const BALLOT_LOOKBACK: usize = 200;

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
    /// Whether lines of this kind mark a chapter of a recording (a fault, a new leader, an exit, a check, a
    /// violation): the session's recorder gets a marker for each, and `squall render` finds the same ones in
    /// an event log.
    pub fn is_chapter(self) -> bool {
        matches!(
            self,
            FeedKind::Fault
                | FeedKind::Leader
                | FeedKind::Exit
                | FeedKind::Check
                | FeedKind::Violation
        )
    }

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
    /// Its place in the order lines were added (see [`ClusterState::feed_since`](super::ClusterState::feed_since)).
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

/// One round of (pre-)voting: a candidate asking for a term, in its campaign number `round` (successive
/// pre-vote rounds ask for the same term; 0 from a node that does not number them, whose rounds of one term
/// are one ballot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ballot {
    pub(super) candidate: u64,
    pub(super) term: u64,
    pub(super) pre_vote: bool,
    pub(super) round: u64,
}

/// A line's place in an election: a grant joins the line of the request it answers, which keeps them together
/// where the nodes' clocks (mapped onto session time within a millisecond or two) could not order them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Causal {
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

impl FeedLine {
    /// A line as first pushed: seen once, no votes on it yet; `seq` is its place in the ticker's order.
    pub(super) fn new(
        at_ms: u64,
        node: Option<u64>,
        kind: FeedKind,
        text: String,
        seq: u64,
        cause: Option<Causal>,
    ) -> Self {
        FeedLine {
            at_ms,
            node,
            kind,
            base: text.clone(),
            text,
            repeats: 1,
            last_ms: at_ms,
            seq,
            cause,
            votes: Vec::new(),
        }
    }

    /// The first line of a round of compactions: `node`'s, to `index`.
    pub(super) fn compaction(at_ms: u64, node: u64, index: u64, seq: u64) -> Self {
        let mut line = FeedLine::new(
            at_ms,
            Some(node),
            FeedKind::Log,
            compaction_text(&[node], index, index),
            seq,
            Some(Causal::Compaction {
                lo: index,
                hi: index,
            }),
        );
        line.votes = vec![node];
        line
    }
}

/// Whether a console already printed `line` (`ticker`: the lines printed, newest last): it prints a line again
/// only when something else came between or a few seconds passed.
pub(super) fn printed(ticker: &VecDeque<FeedLine>, line: &FeedLine) -> bool {
    repeat_of(ticker, line, |l| l.at_ms).is_some()
}

/// How long (session time between the grant and the newest line) a grant waits for its request's line before
/// it goes on the ticker without it (the candidate's report lost, or the candidate gone).
const EARLY_GRANT_WAIT_MS: u64 = 2_000;

/// The lines that go on the ticker now, in order, for `line` (not a repeat): a vote never goes before the
/// request it answers (F13: "n2 votes for n3 in term 5" printed above "n3 starts an election in term 5").
/// A grant whose request is on the ticker goes on no earlier in time than the request; one whose request is
/// not there yet waits in `early` until it comes, then follows it; a grant that waited
/// [`EARLY_GRANT_WAIT_MS`] goes on alone. The console's hold-back orders by time, then by ticker order, so
/// the request prints first.
pub(super) fn ticker_order(
    ticker: &VecDeque<FeedLine>,
    early: &mut Vec<FeedLine>,
    mut line: FeedLine,
) -> Vec<FeedLine> {
    let request_at = |ballot: Ballot| {
        ticker
            .iter()
            .rev()
            .take(BALLOT_LOOKBACK)
            .find(|l| l.cause == Some(Causal::Asks(ballot)))
            .map(|l| l.at_ms)
    };
    let not_before = |mut grant: FeedLine, at: u64| {
        grant.at_ms = grant.at_ms.max(at);
        grant.last_ms = grant.last_ms.max(grant.at_ms);
        grant
    };
    let newest = line.at_ms;
    let mut out = Vec::new();
    match line.cause {
        Some(Causal::Grants(ballot)) => match request_at(ballot) {
            Some(at) => out.push(not_before(line, at)),
            None => early.push(line),
        },
        Some(Causal::Asks(ballot)) => {
            let at = line.at_ms;
            let (answers, rest): (Vec<_>, Vec<_>) = std::mem::take(early)
                .into_iter()
                .partition(|g| g.cause == Some(Causal::Grants(ballot)));
            *early = rest;
            // The request's own time is its report's; votes its node's clock placed a moment earlier
            // follow it at its time.
            line.last_ms = line.last_ms.max(at);
            out.push(line);
            out.extend(answers.into_iter().map(|g| not_before(g, at)));
        }
        _ => out.push(line),
    }
    let (stale, waiting): (Vec<_>, Vec<_>) = std::mem::take(early)
        .into_iter()
        .partition(|g| newest.saturating_sub(g.at_ms) >= EARLY_GRANT_WAIT_MS);
    *early = waiting;
    out.extend(stale);
    out
}

/// Drops the oldest lines past [`FEED_CAPACITY`].
pub(super) fn trim(lines: &mut VecDeque<FeedLine>) {
    while lines.len() > FEED_CAPACITY {
        lines.pop_front();
    }
}

/// Puts a line into the feed: a vote onto the line of the request it answers, a repeat onto the line it
/// repeats, anything else in its place in time.
pub(super) fn place(feed: &mut VecDeque<FeedLine>, mut line: FeedLine) {
    if let (Some(Causal::Grants(ballot)), Some(voter)) = (line.cause, line.node) {
        let request = feed
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
    // A new round of a request folds onto an earlier one's line only while that line was granted nothing:
    // the line then stands for the newest round, and a grant of an older round is a line of its own.
    let at_ms = line.at_ms;
    let asks = matches!(line.cause, Some(Causal::Asks(_)));
    let repeated = repeat_of(feed, &line, |l| l.last_ms)
        .filter(|&i| feed[i].at_ms <= at_ms && (!asks || feed[i].votes.is_empty()));
    if let Some(i) = repeated {
        let earlier = &mut feed[i];
        earlier.repeats += 1;
        earlier.last_ms = earlier.last_ms.max(at_ms);
        if asks {
            earlier.cause = line.cause;
            let mut request = feed.remove(i).expect("index checked");
            join_earlier_grants(feed, &mut request);
            feed.insert(i, request);
        }
        return;
    }
    join_earlier_grants(feed, &mut line);
    insert_in_time_order(feed, line);
    trim(feed);
}

/// Votes that arrived before `line`'s request (their node was polled first) join it.
fn join_earlier_grants(feed: &mut VecDeque<FeedLine>, line: &mut FeedLine) {
    let Some(Causal::Asks(ballot)) = line.cause else {
        return;
    };
    let from = feed.len().saturating_sub(BALLOT_LOOKBACK);
    let mut i = from;
    while i < feed.len() {
        if feed[i].cause == Some(Causal::Grants(ballot)) {
            let vote = feed.remove(i).expect("index checked");
            line.at_ms = line.at_ms.min(vote.at_ms);
            if let Some(voter) = vote.node {
                line.add_vote(voter);
            }
        } else {
            i += 1;
        }
    }
}

/// A grant of a request whose frame was delivered by hand after the request's line (frames held, then
/// `step` or `release`) answers that delivery, not the request's newest round: it becomes a line of its
/// own, never placed before the delivery (its node's clock may put it a moment earlier than the orchestrator
/// wrote the delivery down), and never joins a later round's line. Otherwise nothing changes.
pub(super) fn after_delivery(feed: &VecDeque<FeedLine>, line: &mut FeedLine) {
    let (Some(Causal::Grants(ballot)), Some(voter)) = (line.cause, line.node) else {
        return;
    };
    let from = feed.len().saturating_sub(BALLOT_LOOKBACK);
    let Some(request) = (from..feed.len())
        .rev()
        .find(|&i| feed[i].cause == Some(Causal::Asks(ballot)))
    else {
        return;
    };
    let link = format!("{}->{voter}", ballot.candidate);
    let delivery = feed
        .iter()
        .skip(request + 1)
        .filter(|l| l.kind == FeedKind::Fault && delivers(&l.text, &link))
        .map(|l| l.at_ms)
        .max();
    if let Some(at) = delivery {
        line.at_ms = line.at_ms.max(at);
        line.last_ms = line.at_ms;
        line.cause = None;
    }
}

/// Whether an operator's line (`deliver 2->3 …; 2->4 …`, `release 4 held frames on *`) let a held frame
/// of `link` through.
fn delivers(text: &str, link: &str) -> bool {
    if text.starts_with("release ") {
        return true;
    }
    let Some(items) = text.strip_prefix("deliver ") else {
        return false;
    };
    items
        .split("; ")
        .any(|item| item.split_whitespace().next() == Some(link))
}

/// Lines arrive almost in time order; one that happened before lines already there (a node polled a moment
/// later than another) goes in its place, so an election reads as it went.
pub(super) fn insert_in_time_order(feed: &mut VecDeque<FeedLine>, line: FeedLine) {
    let at = feed
        .iter()
        .rposition(|l| l.at_ms <= line.at_ms)
        .map_or(0, |i| i + 1);
    feed.insert(at, line);
}

/// Nodes compact at about the same index at about the same time: `node`'s compaction to `index` joins a round
/// of compactions already in the feed ("n1 n2 n3 compact their logs into snapshots (to 498–500)") when one is
/// close enough in time and does not name it yet. False when there is none: the compaction needs its own line.
pub(super) fn join_compaction_round(
    feed: &mut VecDeque<FeedLine>,
    happened: u64,
    node: u64,
    index: u64,
) -> bool {
    let round = feed.iter_mut().rev().take(BALLOT_LOOKBACK).find(|l| {
        matches!(l.cause, Some(Causal::Compaction { .. }))
            && happened.saturating_sub(l.at_ms) <= COMPACTION_ROUND_MS
            && !l.votes.contains(&node)
    });
    let Some(line) = round else {
        return false;
    };
    let Some(Causal::Compaction { lo, hi }) = line.cause else {
        return true;
    };
    let (lo, hi) = (lo.min(index), hi.max(index));
    line.cause = Some(Causal::Compaction { lo, hi });
    if let Err(at) = line.votes.binary_search(&node) {
        line.votes.insert(at, node);
    }
    line.text = compaction_text(&line.votes, lo, hi);
    line.base = line.text.clone();
    true
}
