//! Raft's safety properties, checked continuously from what the nodes report (Ongaro & Ousterhout, "In
//! Search of an Understandable Consensus Algorithm", §5.2–5.4, Figure 3): election safety, log matching,
//! leader completeness and state-machine safety, plus two properties of a durable node: its commit index
//! never goes backwards while the process lives, and its term never goes backwards, even across a restart
//! (the term is on disk), unless its data was declared lost by the action that destroyed it
//! ([`Invariants::data_lost`], called when a wipe is performed) — a node that comes back empty without one
//! has lost data it should have kept, and that is reported, not excused.
//!
//! A wipe starts a new *life* of the node: what the checker remembers of a node (its term, commit index, the
//! entries, commits and leaderships it showed) is kept per (node, life), so the wiped node is never compared
//! with its former self as if it were one durable node, yet what its former life showed still binds everyone
//! (a wiped node leading a term it led before is two leaders in one term). Lines name a node that was wiped
//! with its life, `n2#2`; its votes stay keyed by the node alone (one voter, one vote per term, across wipes).
//!
//! A Paxos node (its status carries a [`squall_node::rpc::PaxosView`]) is judged by Paxos's own properties
//! where Raft's do not fit (Lamport, "Paxos Made Simple" §2.2: only a single value is chosen; an acceptor
//! never accepts a proposal numbered below one it promised): *one value chosen per slot* across all nodes and
//! time, *a chosen value never changes* on a node, and *no accept below a promise* — a slot's accepted ballot
//! that appeared or changed since the node's previous poll is below the promise that poll showed (promises
//! only grow, so it was accepted after that promise). Its promised ballot stands where Raft's term does for
//! election safety (one leader per ballot) and monotonicity (*promised ballot monotonic*), and lines name
//! ballots as `round.proposer`.
//! Log matching and leader completeness compare Raft terms a Paxos node does not have and are not run on it.
//!
//! Pure: [`Invariants::observe`] takes one node's [`Observation`] (one status poll) and returns the
//! violations it reveals, each with its evidence. Polls see only what a node shows at that moment (its term,
//! indexes, the tail of its log and a hash of what it applied), so a leader that rose and fell between two
//! polls is never seen. The votes are therefore checked from the node's own event feed instead
//! ([`Invariants::on_vote`]): one voter casts at most one vote per term (§5.2, the rule election safety rests
//! on), keyed by node identity, across restarts and wipes. Memory is bounded: the checker remembers a sliding
//! window of the most recent indexes and terms ([`WINDOW`]), enough to compare what the nodes' log tails show.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use squall_node::paxos::Ballot;

/// How many recent log indexes (and terms) the checker remembers.
pub const WINDOW: u64 = 20_000;

/// One node's state at one poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// The node.
    pub node: u64,
    /// When it was seen, from the start of the session.
    pub at: Duration,
    /// Changes whenever the node's process restarts (its pid serves).
    pub incarnation: u64,
    /// Current term.
    pub term: u64,
    /// The node says it leads in `term`.
    pub leader: bool,
    /// Commit index.
    pub commit_index: u64,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// Highest index applied to its state machine.
    pub applied_index: u64,
    /// A running hash of every command applied up to `applied_index`, if the node reports one.
    pub applied_hash: Option<u64>,
    /// The end of its log it shows: `(index, term, command text)`, oldest first.
    pub log: Vec<(u64, u64, String)>,
    /// Which of the fields above the node's kind reports; a property that needs a field it does not report is
    /// not judged from this observation.
    pub knows: Knows,
    /// A Paxos node's promise and accepted ballots (`None` for a Raft node): its `term` is then its promised
    /// ballot packed ([`Ballot::pack`]), and its `log` the chosen values (term 0).
    pub paxos: Option<PaxosSeen>,
}

/// What a Paxos node's status shows beyond the Raft-shaped fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaxosSeen {
    /// The highest ballot it promised.
    pub promised: Ballot,
    /// Its latest accepted slots and the ballot each value was accepted with, oldest first.
    pub accepted: Vec<(u64, Ballot)>,
}

impl Observation {
    /// How a line names the observed node's `term`: a ballot `round.proposer` on a Paxos node, else `term N`.
    fn term_text(&self, term: u64) -> String {
        term_text(self.paxos.is_some(), term)
    }
}

/// `ballot 1.3` for a Paxos node (its term is a packed ballot), `term 5` for a Raft node.
pub fn term_text(paxos: bool, term: u64) -> String {
    if paxos {
        format!("ballot {}", Ballot::unpack(term))
    } else {
        format!("term {term}")
    }
}

/// Which parts of an [`Observation`] the node's kind reports. Every field `true` (the default) for a kind with
/// the full picture (squall's); a kind that reports only role, term, leader, commit and applied index
/// ([`crate::state::BriefStatus`]) shows no log, no vote and no state hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knows {
    /// The term (and so whether it leads in it).
    pub term: bool,
    /// The commit index.
    pub commit: bool,
    /// The last log index and the log's tail.
    pub log: bool,
    /// A hash of what it applied.
    pub applied_hash: bool,
    /// Its votes, from an event feed.
    pub votes: bool,
}

impl Default for Knows {
    fn default() -> Self {
        Knows {
            term: true,
            commit: true,
            log: true,
            applied_hash: true,
            votes: true,
        }
    }
}

impl Knows {
    /// The properties that cannot be judged from what is known, each with the missing field in words.
    pub fn unjudged(self) -> Vec<(Property, &'static str)> {
        let mut out = Vec::new();
        if !self.term {
            out.push((Property::ElectionSafety, "terms"));
            out.push((Property::TermMonotonic, "terms"));
        }
        if !self.commit {
            out.push((Property::CommitMonotonic, "commit indexes"));
        }
        if !self.log {
            out.push((Property::LogMatching, "log entries"));
            out.push((Property::LeaderCompleteness, "log entries"));
        }
        if !self.log && !self.applied_hash {
            out.push((Property::StateMachineSafety, "log entries"));
        }
        if !self.votes {
            out.push((Property::OneVotePerTerm, "votes"));
        }
        out
    }
}

/// Raft's properties, in the order lines name them.
pub const PROPERTIES: &[Property] = &[
    Property::ElectionSafety,
    Property::OneVotePerTerm,
    Property::LogMatching,
    Property::LeaderCompleteness,
    Property::StateMachineSafety,
    Property::CommitMonotonic,
    Property::TermMonotonic,
];

/// The properties a Paxos node is judged by, in the order lines name them (see the module docs).
pub const PAXOS_PROPERTIES: &[Property] = &[
    Property::ElectionSafety,
    Property::OneValuePerSlot,
    Property::ChosenNeverChanges,
    Property::NoAcceptBelowPromise,
    Property::StateMachineSafety,
    Property::CommitMonotonic,
    Property::BallotMonotonic,
];

/// Which property was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// At most one leader per term (§5.2).
    ElectionSafety,
    /// Two logs with an entry of the same index and term hold the same command there (§5.3).
    LogMatching,
    /// A committed entry is in the log of every leader of a later term (§5.4).
    LeaderCompleteness,
    /// No two nodes apply (or commit) different commands at one index (§5.4.3).
    StateMachineSafety,
    /// A running node's commit index went backwards.
    CommitMonotonic,
    /// A node's term went backwards (within a process or across a restart with its data).
    TermMonotonic,
    /// A voter voted for two candidates in one term (§5.2), seen in the nodes' event feeds.
    OneVotePerTerm,
    /// Paxos: two nodes (or two lives of one) showed different values chosen in one slot.
    OneValuePerSlot,
    /// Paxos: a node showed a slot chosen with one value, then with another.
    ChosenNeverChanges,
    /// Paxos: an acceptor accepted a value at a ballot below one it had promised.
    NoAcceptBelowPromise,
    /// Paxos: a node's promised ballot went backwards (Raft's [`Property::TermMonotonic`], in ballots).
    BallotMonotonic,
}

impl Property {
    /// Its name in verdicts and the feed.
    pub fn name(self) -> &'static str {
        match self {
            Property::ElectionSafety => "election safety",
            Property::LogMatching => "log matching",
            Property::LeaderCompleteness => "leader completeness",
            Property::StateMachineSafety => "state-machine safety",
            Property::CommitMonotonic => "commit index monotonic",
            Property::TermMonotonic => "term monotonic",
            Property::OneVotePerTerm => "one vote per term",
            Property::OneValuePerSlot => "paxos: one value chosen per slot",
            Property::ChosenNeverChanges => "paxos: chosen value never changes",
            Property::NoAcceptBelowPromise => "paxos: no accept below promise",
            Property::BallotMonotonic => "paxos: promised ballot monotonic",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken property with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: Property,
    /// When it was seen.
    pub at: Duration,
    /// The nodes involved.
    pub nodes: Vec<u64>,
    /// What was seen, in words a person can check.
    pub evidence: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.evidence)
    }
}

/// One life of a node: its id and how many wipes came before it, plus one (1 until the first wipe).
type Life = (u64, u64);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Committed {
    term: u64,
    /// The lowest term of a node seen reporting it committed: it was committed in that term or earlier.
    by_term: u64,
    node: Life,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NodeSeen {
    incarnation: u64,
    commit_index: u64,
    term: u64,
    /// A Paxos node: its promise and accepted ballots by slot at the last poll.
    paxos: Option<(Ballot, BTreeMap<u64, Ballot>)>,
}

/// A value some node showed chosen in a slot: its text, the life that showed it first, and the ballot that
/// node had accepted it with, if it showed one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChosenSeen {
    text: String,
    node: Life,
    ballot: Option<Ballot>,
}

/// Which life of a node is running, and which process (pid) ran the life before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Lives {
    /// The current life, from 1.
    current: u64,
    /// The process that ran the previous life when the wipe was performed: its late polls are that life's.
    before: Option<u64>,
    /// The process whose start cut a damaged record and so began the current life, if that is how it began.
    cut_by: Option<u64>,
}

/// The checker's memory. Feed it every poll of every node with [`Invariants::observe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invariants {
    leaders: BTreeMap<u64, Life>,
    entries: BTreeMap<(u64, u64), (String, Life)>,
    committed: BTreeMap<u64, Committed>,
    applied: BTreeMap<u64, (u64, Life)>,
    nodes: HashMap<Life, NodeSeen>,
    /// Nodes that were wiped: their current life.
    lives: HashMap<u64, Lives>,
    /// (term, voter) -> the candidate it voted for, and the voter's life then.
    votes: BTreeMap<(u64, u64), (u64, u64)>,
    /// Paxos: the value first seen chosen per slot.
    chosen: BTreeMap<u64, ChosenSeen>,
    /// Whether a Raft node and a Paxos node were observed (which properties are judged).
    seen_raft: bool,
    seen_paxos: bool,
    high_index: u64,
    high_term: u64,
    violations: Vec<Violation>,
    /// Properties some observation could not be judged for (its kind does not report what they need), with
    /// the missing field in words; said once ([`Invariants::note_unjudged`]).
    unjudged: BTreeMap<Property, &'static str>,
}

impl Invariants {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every violation seen so far, oldest first.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Builds the observation of one status poll (`at` in session milliseconds).
    pub fn observation(
        at_ms: u64,
        node: u64,
        status: &squall_node::rpc::NodeStatus,
    ) -> Observation {
        Observation {
            node,
            at: Duration::from_millis(at_ms),
            incarnation: u64::from(status.pid),
            term: status.core.term,
            leader: status.core.role == squall_node::raft::Role::Leader,
            commit_index: status.core.commit_index,
            last_log_index: status.core.last_log_index,
            applied_index: status.applied_index,
            // 0: a status from before the hash existed, or a node binary that does not report it.
            applied_hash: (status.applied_hash != 0).then_some(status.applied_hash),
            log: status
                .log_tail
                .iter()
                .map(|c| (c.index, c.term, c.text.clone()))
                .collect(),
            knows: Knows::default(),
            paxos: status.paxos.as_ref().map(|p| PaxosSeen {
                promised: p.promised,
                accepted: p.accepted.clone(),
            }),
        }
    }

    /// Builds the observation of one status poll of a kind that reports only the brief fields (`at` in
    /// session milliseconds; `incarnation` tells one process from the next, 0 when unknown). No log, votes or
    /// state hash: the properties that need them are not judged ([`Knows::unjudged`]).
    pub fn brief_observation(
        at_ms: u64,
        node: u64,
        brief: &super::brief::BriefStatus,
        incarnation: u64,
    ) -> Observation {
        Observation {
            node,
            at: Duration::from_millis(at_ms),
            incarnation,
            term: brief.term.unwrap_or(0),
            leader: brief.leads().is_some(),
            commit_index: brief.commit.unwrap_or(0),
            last_log_index: 0,
            applied_index: brief.applied.unwrap_or(0),
            applied_hash: None,
            log: Vec::new(),
            knows: Knows {
                term: brief.term.is_some(),
                commit: brief.commit.is_some(),
                log: false,
                applied_hash: false,
                votes: false,
            },
            paxos: None,
        }
    }

    /// The properties judged in this session, in the order lines name them: Raft's ([`PROPERTIES`]) for Raft
    /// nodes, Paxos's ([`PAXOS_PROPERTIES`]) for Paxos nodes, both (without repeats) if both were seen, Raft's
    /// before any node was.
    pub fn properties(&self) -> Vec<Property> {
        let mut out: Vec<Property> = Vec::new();
        let lists: &[&[Property]] = match (self.seen_raft, self.seen_paxos) {
            (false, true) => &[PAXOS_PROPERTIES],
            (true, true) => &[PROPERTIES, PAXOS_PROPERTIES],
            _ => &[PROPERTIES],
        };
        for p in lists.iter().flat_map(|l| l.iter()) {
            if !out.contains(p) {
                out.push(*p);
            }
        }
        out
    }

    /// Remembers which properties `o` cannot be judged for, and returns a line for the feed the first time a
    /// property joins that list (naming every property not judged and what the kind does not report), else
    /// `None`.
    pub fn note_unjudged(&mut self, o: &Observation) -> Option<String> {
        let mut grew = false;
        for (p, why) in o.knows.unjudged() {
            grew |= self.unjudged.insert(p, why).is_none();
        }
        grew.then(|| self.unjudged_text())
    }

    /// The properties not judged (some node's kind did not report what they need), with the missing fields.
    pub fn unjudged(&self) -> &BTreeMap<Property, &'static str> {
        &self.unjudged
    }

    /// What a clean record says: the properties judged, held on every status, and (for a kind that does not
    /// report what some need) which were not judged and why.
    pub fn held_text(&self) -> String {
        let judged: Vec<&str> = self
            .properties()
            .iter()
            .filter(|p| !self.unjudged.contains_key(p))
            .map(|p| p.name())
            .collect();
        let mut out = format!("{} held on every status", judged.join(", "));
        if !self.unjudged.is_empty() {
            let mut missing: Vec<&str> = self.unjudged.values().copied().collect();
            missing.sort_unstable();
            missing.dedup();
            let not: Vec<&str> = self
                .properties()
                .iter()
                .filter(|p| self.unjudged.contains_key(p))
                .map(|p| p.name())
                .collect();
            out.push_str(&format!(
                "; not judged: {} (the node kind does not report {})",
                not.join(", "),
                missing.join(", ")
            ));
        }
        out
    }

    /// The properties not judged and those judged, in words ("invariants: not judged: log matching, … (this
    /// node kind reports no log entries); judged: election safety, …"); `""` when every one is judged.
    pub fn unjudged_text(&self) -> String {
        if self.unjudged.is_empty() {
            return String::new();
        }
        let mut missing: Vec<&str> = self.unjudged.values().copied().collect();
        missing.sort_unstable();
        missing.dedup();
        let not: Vec<&str> = self
            .properties()
            .iter()
            .filter(|p| self.unjudged.contains_key(p))
            .map(|p| p.name())
            .collect();
        let judged: Vec<&str> = self
            .properties()
            .iter()
            .filter(|p| !self.unjudged.contains_key(p))
            .map(|p| p.name())
            .collect();
        format!(
            "invariants: not judged: {} (the node kind does not report {}); judged: {}",
            not.join(", "),
            missing.join(", "),
            if judged.is_empty() {
                "none".to_string()
            } else {
                judged.join(", ")
            }
        )
    }

    /// The node's data was destroyed on purpose (wiped), told by the action that did it: its next process
    /// starts a new life (see the module docs), which may start again from term 0. A poll of the old process
    /// that arrives afterwards still belongs to the old life. The votes it cast stay remembered: a node that
    /// lost its disk is still the same voter.
    pub fn data_lost(&mut self, node: u64) {
        let lives = self.lives.get(&node).copied().unwrap_or(Lives {
            current: 1,
            before: None,
            cut_by: None,
        });
        let running = self
            .nodes
            .get(&(node, lives.current))
            .map(|s| s.incarnation);
        self.lives.insert(
            node,
            Lives {
                current: lives.current + 1,
                before: running.or(lives.before),
                cut_by: None,
            },
        );
    }

    /// The node's process `incarnation` (pid) started by cutting a damaged *complete* WAL record, which may
    /// have held a term, a vote or entries it had acknowledged: like a wipe, data was lost, so this process
    /// starts a new life (its term may be lower than its former self showed; issue 18, C4). A torn final
    /// write is not such a loss (it was never synced, so nothing in it was acknowledged) and keeps the life.
    /// Nothing is done when `incarnation` already runs a life started this way (the feed's record came again).
    pub fn damaged_tail_cut(&mut self, node: u64, incarnation: u64) {
        if self.lives.get(&node).and_then(|l| l.cut_by) == Some(incarnation) {
            return;
        }
        let current = self.current_life(node);
        let seen = self.nodes.get(&current).map(|s| s.incarnation);
        self.data_lost(node);
        if seen == Some(incarnation) {
            // The new process was polled before its feed said what it cut: that poll is the new life's (a term
            // it showed lower than its former self's was already reported then; the feed usually comes first).
            if let Some(s) = self.nodes.remove(&current) {
                self.nodes.insert(self.current_life(node), s);
            }
        }
        if let Some(l) = self.lives.get_mut(&node) {
            if seen == Some(incarnation) {
                l.before = None;
            }
            l.cut_by = Some(incarnation);
        }
    }

    /// The life of `node` that its process `incarnation` (pid) runs.
    fn life(&self, node: u64, incarnation: u64) -> Life {
        match self.lives.get(&node) {
            Some(l) if l.before == Some(incarnation) => (node, l.current - 1),
            Some(l) => (node, l.current),
            None => (node, 1),
        }
    }

    /// The life a node's event feed speaks for: the current one.
    fn current_life(&self, node: u64) -> Life {
        (node, self.lives.get(&node).map_or(1, |l| l.current))
    }

    /// How a line names one life of a node (see [`name_in`]).
    fn name(&self, life: Life) -> String {
        name_in(&self.lives, life)
    }

    /// A node's event feed says `voter` cast its vote in `term` for `candidate` (a vote it granted, or its
    /// own vote as a candidate; pre-votes are not votes). Returns the violation if it had voted for another
    /// candidate in that term before (also kept in [`Invariants::violations`]).
    pub fn on_vote(
        &mut self,
        at: Duration,
        voter: u64,
        term: u64,
        candidate: u64,
    ) -> Option<Violation> {
        let now = self.current_life(voter);
        let (earlier, then) = *self
            .votes
            .entry((term, voter))
            .or_insert((candidate, now.1));
        self.high_term = self.high_term.max(term);
        if earlier == candidate {
            return None;
        }
        let evidence = if then == now.1 {
            format!(
                "{} voted for n{candidate} in term {term} after voting for n{earlier} in that term",
                self.name(now)
            )
        } else {
            format!(
                "{} voted for n{candidate} in term {term} after {} voted for n{earlier} in that term",
                self.name(now),
                self.name((voter, then))
            )
        };
        let violation = Violation {
            property: Property::OneVotePerTerm,
            at,
            nodes: vec![voter, earlier, candidate],
            evidence,
        };
        if self.violations.contains(&violation) {
            return None;
        }
        self.violations.push(violation.clone());
        Some(violation)
    }

    /// The votes in one record of a node's event feed, checked with [`Invariants::on_vote`]. A new process
    /// (`Started`) forgets the node's votes for itself: a candidate's tally dies with its process, so a later
    /// process may vote for another in that term; what it granted others stays.
    pub fn on_node_event(
        &mut self,
        at: Duration,
        node: u64,
        event: &squall_node::rpc::NodeEvent,
    ) -> Option<Violation> {
        use squall_node::raft::RaftEvent;
        use squall_node::rpc::NodeEvent;
        match event {
            NodeEvent::Raft(RaftEvent::VoteGranted {
                candidate,
                term,
                pre_vote: false,
                ..
            }) => self.on_vote(at, node, *term, *candidate),
            NodeEvent::Raft(RaftEvent::ElectionStarted {
                term,
                pre_vote: false,
                ..
            }) => self.on_vote(at, node, *term, node),
            NodeEvent::Started { .. } => {
                self.votes
                    .retain(|&(_, voter), (candidate, _)| !(voter == node && *candidate == node));
                None
            }
            _ => None,
        }
    }

    /// Checks one poll of one node against everything seen before, remembers it, and returns the
    /// violations it reveals (also kept in [`Invariants::violations`]). A property already reported for the
    /// same nodes and index or term is not reported again.
    pub fn observe(&mut self, o: &Observation) -> Vec<Violation> {
        let me = self.life(o.node, o.incarnation);
        let who = name_in(&self.lives, me);
        let mut found = Vec::new();
        let mut v = |property, nodes: Vec<u64>, evidence: String| {
            found.push(Violation {
                property,
                at: o.at,
                nodes,
                evidence,
            })
        };

        // Monotonic term and commit index, within one life. A wiped node's new life starts over; any other
        // restart keeps its term, and one that comes back empty lost what it should have kept.
        let restarted = |seen: &NodeSeen| seen.incarnation != o.incarnation;
        if let Some(seen) = self.nodes.get(&me).filter(|s| s.incarnation != 0) {
            if o.knows.term && o.term < seen.term {
                let how = if !restarted(seen) {
                    "while running"
                } else if o.term == 0 && o.last_log_index == 0 {
                    "across a restart: it came back empty, though it was not wiped (its data was lost)"
                } else {
                    "across a restart with its data"
                };
                let (property, what) = if o.paxos.is_some() {
                    (Property::BallotMonotonic, "promised ballot")
                } else {
                    (Property::TermMonotonic, "term")
                };
                let (from, to) = if o.paxos.is_some() {
                    (
                        Ballot::unpack(seen.term).to_string(),
                        Ballot::unpack(o.term).to_string(),
                    )
                } else {
                    (seen.term.to_string(), o.term.to_string())
                };
                v(
                    property,
                    vec![o.node],
                    format!("{who}'s {what} went from {from} to {to} {how}"),
                );
            }
            if o.knows.commit
                && seen.incarnation == o.incarnation
                && o.commit_index < seen.commit_index
            {
                v(
                    Property::CommitMonotonic,
                    vec![o.node],
                    format!(
                        "{who}'s commit index went from {} to {} while its process ran",
                        seen.commit_index, o.commit_index
                    ),
                );
            }
        }

        // Election safety.
        if o.leader && o.knows.term {
            match self.leaders.get(&o.term) {
                Some(&other) if other != me => v(
                    Property::ElectionSafety,
                    vec![other.0, o.node],
                    format!(
                        "{} and {who} both led {}",
                        name_in(&self.lives, other),
                        o.term_text(o.term)
                    ),
                ),
                Some(_) => {}
                None => {
                    self.leaders.insert(o.term, me);
                }
            }
        }

        if let Some(px) = &o.paxos {
            self.seen_paxos = true;
            self.observe_paxos(o, me, px, &mut v);
        } else {
            self.seen_raft = true;
        }

        // Log matching, and commitment as this node shows it (Raft: a Paxos node's slots have no terms).
        for (index, term, text) in o.log.iter().filter(|_| o.paxos.is_none()) {
            match self.entries.get(&(*index, *term)) {
                Some((other_text, other)) if other_text != text => v(
                    Property::LogMatching,
                    vec![other.0, o.node],
                    format!(
                        "index {index} term {term} holds `{other_text}` on {} but `{text}` on {who}",
                        name_in(&self.lives, *other)
                    ),
                ),
                Some(_) => {}
                None => {
                    self.entries.insert((*index, *term), (text.clone(), me));
                }
            }
            if *index <= o.commit_index {
                match self.committed.get_mut(index) {
                    Some(c) if c.term != *term => v(
                        Property::StateMachineSafety,
                        vec![c.node.0, o.node],
                        format!(
                            "index {index} is committed with term {} on {} but with term {term} on {who}",
                            c.term,
                            name_in(&self.lives, c.node)
                        ),
                    ),
                    Some(c) => c.by_term = c.by_term.min(o.term),
                    None => {
                        self.committed.insert(
                            *index,
                            Committed {
                                term: *term,
                                by_term: o.term,
                                node: me,
                            },
                        );
                    }
                }
            }
        }

        // Leader completeness: every entry committed in an earlier term is in this leader's log.
        if o.leader && o.knows.log && o.paxos.is_none() {
            let shown: HashMap<u64, u64> = o.log.iter().map(|(i, t, _)| (*i, *t)).collect();
            for (index, c) in &self.committed {
                if c.by_term >= o.term {
                    continue;
                }
                if *index > o.last_log_index {
                    v(
                        Property::LeaderCompleteness,
                        vec![c.node.0, o.node],
                        format!(
                            "index {index} (term {}) was committed by term {} but {who}, leader of term {}, has a log ending at {}",
                            c.term, c.by_term, o.term, o.last_log_index
                        ),
                    );
                    break;
                }
                if let Some(&t) = shown.get(index)
                    && t != c.term
                {
                    v(
                        Property::LeaderCompleteness,
                        vec![c.node.0, o.node],
                        format!(
                            "index {index} was committed with term {} but {who}, leader of term {}, holds term {t} there",
                            c.term, o.term
                        ),
                    );
                    break;
                }
            }
        }

        // State-machine safety from the running hash of applied commands.
        if let Some(hash) = o.applied_hash
            && o.applied_index > 0
        {
            match self.applied.get(&o.applied_index) {
                Some(&(h, other)) if h != hash => v(
                    Property::StateMachineSafety,
                    vec![other.0, o.node],
                    format!(
                        "{} and {who} applied different commands up to index {} (state hashes {h:016x} and {hash:016x})",
                        name_in(&self.lives, other),
                        o.applied_index
                    ),
                ),
                Some(_) => {}
                None => {
                    self.applied.insert(o.applied_index, (hash, me));
                }
            }
        }

        // What the kind does not report never moves what was seen (so it is never compared either).
        let before = self.nodes.get(&me).cloned().unwrap_or_default();
        self.nodes.insert(
            me,
            NodeSeen {
                incarnation: o.incarnation,
                commit_index: if o.knows.commit {
                    o.commit_index
                } else {
                    before.commit_index
                },
                term: if o.knows.term { o.term } else { before.term },
                paxos: o
                    .paxos
                    .as_ref()
                    .map(|p| (p.promised, p.accepted.iter().copied().collect())),
            },
        );
        self.high_index = self.high_index.max(o.last_log_index).max(o.applied_index);
        self.high_term = self.high_term.max(o.term);
        self.forget_old();

        // Report each (property, nodes) pair once per index/term: the same stale state polled again is
        // the same violation.
        found.retain(|f| {
            !self
                .violations
                .iter()
                .any(|old| old.property == f.property && old.evidence == f.evidence)
        });
        self.violations.extend(found.iter().cloned());
        found
    }

    /// Paxos's properties on one poll of a Paxos node (see the module docs); violations go to `v`.
    fn observe_paxos(
        &mut self,
        o: &Observation,
        me: Life,
        px: &PaxosSeen,
        v: &mut impl FnMut(Property, Vec<u64>, String),
    ) {
        let who = name_in(&self.lives, me);
        let accepted: HashMap<u64, Ballot> = px.accepted.iter().copied().collect();
        let with_ballot = |b: Option<Ballot>| match b {
            Some(b) => format!(" (accepted at ballot {b})"),
            None => String::new(),
        };
        // One value chosen per slot, and never changed on a node.
        for (slot, _, text) in o.log.iter().filter(|(s, _, _)| *s <= o.commit_index) {
            let ballot = accepted.get(slot).copied();
            match self.chosen.get(slot) {
                Some(c) if c.text != *text => {
                    let (property, evidence) = if c.node == me {
                        (
                            Property::ChosenNeverChanges,
                            format!(
                                "{who} showed slot {slot} chosen as `{}`{} and later as `{text}`{}",
                                c.text,
                                with_ballot(c.ballot),
                                with_ballot(ballot)
                            ),
                        )
                    } else {
                        (
                            Property::OneValuePerSlot,
                            format!(
                                "slot {slot} was chosen as `{}` on {}{} but as `{text}` on {who}{}",
                                c.text,
                                name_in(&self.lives, c.node),
                                with_ballot(c.ballot),
                                with_ballot(ballot)
                            ),
                        )
                    };
                    v(property, vec![c.node.0, o.node], evidence);
                }
                Some(_) => {}
                None => {
                    self.chosen.insert(
                        *slot,
                        ChosenSeen {
                            text: text.clone(),
                            node: me,
                            ballot,
                        },
                    );
                }
            }
        }
        // No accept below a promise: a slot whose accepted ballot appeared or changed since the last poll of
        // this life was accepted after the promise that poll showed (a promise only grows, and is durable).
        if let Some((promised, before)) = self.nodes.get(&me).and_then(|s| s.paxos.as_ref()) {
            for (slot, ballot) in &px.accepted {
                if before.get(slot) != Some(ballot) && ballot < promised {
                    v(
                        Property::NoAcceptBelowPromise,
                        vec![o.node],
                        format!(
                            "{who} accepted slot {slot} at ballot {ballot} after promising ballot {promised}"
                        ),
                    );
                }
            }
        }
    }

    fn forget_old(&mut self) {
        let floor = self.high_index.saturating_sub(WINDOW);
        self.entries = self.entries.split_off(&(floor, 0));
        self.committed = self.committed.split_off(&floor);
        self.chosen = self.chosen.split_off(&floor);
        self.applied = self.applied.split_off(&floor);
        let term_floor = self.high_term.saturating_sub(WINDOW);
        self.leaders = self.leaders.split_off(&term_floor);
        self.votes = self.votes.split_off(&(term_floor, 0));
    }
}

/// How a line names one life of a node: `n2`, or `n2#2` for a node that was wiped (it is in `lives`).
fn name_in(lives: &HashMap<u64, Lives>, (node, life): Life) -> String {
    if lives.contains_key(&node) {
        format!("n{node}#{life}")
    } else {
        format!("n{node}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(node: u64, term: u64, commit: u64, log: &[(u64, u64, &str)]) -> Observation {
        Observation {
            node,
            at: Duration::from_secs(1),
            incarnation: 100 + node,
            term,
            leader: false,
            commit_index: commit,
            last_log_index: log.last().map_or(0, |e| e.0),
            applied_index: commit,
            applied_hash: None,
            log: log
                .iter()
                .map(|(i, t, s)| (*i, *t, s.to_string()))
                .collect(),
            knows: Knows::default(),
            paxos: None,
        }
    }

    fn leader(mut o: Observation) -> Observation {
        o.leader = true;
        o
    }

    fn one(found: Vec<Violation>, p: Property) -> Violation {
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].property, p, "{found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    fn a_healthy_stream_breaks_nothing() {
        let mut c = Invariants::new();
        let log = [(1, 1, "noop"), (2, 1, "put a=1"), (3, 2, "noop")];
        for node in 1..=3 {
            assert!(c.observe(&obs(node, 2, 3, &log)).is_empty());
        }
        assert!(c.observe(&leader(obs(1, 2, 3, &log))).is_empty());
        assert!(
            c.observe(&leader(obs(1, 2, 3, &log))).is_empty(),
            "the same leader again"
        );
        let next = [
            (1, 1, "noop"),
            (2, 1, "put a=1"),
            (3, 2, "noop"),
            (4, 3, "noop"),
        ];
        assert!(
            c.observe(&leader(obs(2, 3, 4, &next))).is_empty(),
            "a later leader"
        );
        assert!(c.violations().is_empty());
    }

    #[test]
    fn two_leaders_in_one_term() {
        let mut c = Invariants::new();
        assert!(c.observe(&leader(obs(1, 5, 0, &[]))).is_empty());
        let v = one(
            c.observe(&leader(obs(2, 5, 0, &[]))),
            Property::ElectionSafety,
        );
        assert_eq!(v.nodes, vec![1, 2]);
        assert!(v.evidence.contains("n1 and n2 both led term 5"), "{v}");
        assert!(
            c.observe(&leader(obs(2, 5, 0, &[]))).is_empty(),
            "reported once"
        );
    }

    #[test]
    fn same_index_and_term_with_different_commands() {
        let mut c = Invariants::new();
        c.observe(&obs(1, 2, 0, &[(7, 2, "put a=1")]));
        let v = one(
            c.observe(&obs(3, 2, 0, &[(7, 2, "put a=2")])),
            Property::LogMatching,
        );
        assert!(v.evidence.contains("index 7 term 2"), "{v}");
        assert_eq!(v.nodes, vec![1, 3]);
    }

    #[test]
    fn a_later_leader_missing_a_committed_entry() {
        let mut c = Invariants::new();
        // n1 in term 2 says 1..=4 are committed.
        c.observe(&obs(1, 2, 4, &[(3, 2, "put a=1"), (4, 2, "put b=1")]));
        // n2 leads term 3 with a log ending at 3.
        let v = one(
            c.observe(&leader(obs(2, 3, 3, &[(3, 2, "put a=1")]))),
            Property::LeaderCompleteness,
        );
        assert!(v.evidence.contains("index 4"), "{v}");
        // A leader of the same term as the commit report is not judged by it (it may be the one that
        // committed it, or a stale old leader polled late).
        let mut c = Invariants::new();
        c.observe(&obs(1, 3, 4, &[(4, 2, "put b=1")]));
        assert!(c.observe(&leader(obs(2, 3, 3, &[(3, 2, "x")]))).is_empty());
    }

    #[test]
    fn a_later_leader_with_another_term_at_a_committed_index() {
        let mut c = Invariants::new();
        c.observe(&obs(1, 2, 4, &[(4, 2, "put b=1")]));
        // Also differs by term, so it is not a log-matching problem; it is leader completeness.
        let found = c.observe(&leader(obs(2, 4, 0, &[(4, 3, "put b=9")])));
        assert!(
            found
                .iter()
                .any(|v| v.property == Property::LeaderCompleteness),
            "{found:?}"
        );
    }

    #[test]
    fn two_nodes_committing_different_entries_at_one_index() {
        let mut c = Invariants::new();
        c.observe(&obs(1, 2, 5, &[(5, 2, "put a=1")]));
        let v = one(
            c.observe(&obs(2, 3, 5, &[(5, 3, "put a=2")])),
            Property::StateMachineSafety,
        );
        assert!(
            v.evidence.contains("index 5 is committed with term 2"),
            "{v}"
        );
    }

    #[test]
    fn different_applied_hashes_at_one_index() {
        let mut c = Invariants::new();
        let mut a = obs(1, 2, 9, &[]);
        a.applied_hash = Some(0xaa);
        c.observe(&a);
        let mut b = obs(2, 2, 9, &[]);
        b.applied_hash = Some(0xaa);
        assert!(c.observe(&b).is_empty(), "same hash");
        let mut d = obs(3, 2, 9, &[]);
        d.applied_hash = Some(0xbb);
        let v = one(c.observe(&d), Property::StateMachineSafety);
        assert!(v.evidence.contains("up to index 9"), "{v}");
    }

    #[test]
    fn commit_index_backwards_in_one_process_but_not_across_a_restart() {
        let mut c = Invariants::new();
        c.observe(&obs(1, 2, 10, &[]));
        let v = one(c.observe(&obs(1, 2, 8, &[])), Property::CommitMonotonic);
        assert!(v.evidence.contains("from 10 to 8"), "{v}");
        let mut restarted = obs(1, 2, 0, &[]);
        restarted.incarnation = 999;
        assert!(c.observe(&restarted).is_empty(), "commit is volatile");
    }

    #[test]
    fn term_backwards_within_a_process_or_across_a_restart_unless_wiped() {
        let mut c = Invariants::new();
        c.observe(&obs(1, 6, 0, &[]));
        let mut restarted = obs(1, 4, 0, &[]);
        restarted.incarnation = 999;
        let v = one(c.observe(&restarted), Property::TermMonotonic);
        assert!(v.evidence.contains("across a restart"), "{v}");
        c.observe(&obs(2, 6, 0, &[]));
        c.data_lost(2);
        let mut wiped = obs(2, 0, 0, &[]);
        wiped.incarnation = 1234;
        assert!(
            c.observe(&wiped).is_empty(),
            "a wiped node starts from term 0"
        );
    }

    #[test]
    fn an_empty_restart_without_a_wipe_is_data_loss() {
        // The old checker excused any process that came back with term 0 and an empty log, which hid a node
        // that lost its disk (or an emptied WAL) without anyone wiping it.
        let mut c = Invariants::new();
        c.observe(&obs(1, 6, 4, &[(4, 6, "put")]));
        let mut empty = obs(1, 0, 0, &[]);
        empty.incarnation = 999;
        let v = one(c.observe(&empty), Property::TermMonotonic);
        assert!(v.evidence.contains("came back empty"), "{v}");
    }

    #[test]
    fn a_wipe_is_known_from_the_action_not_from_term_zero() {
        // A wiped node may learn a term before its first poll: the old checker called that a term going
        // backwards across a restart with its data.
        let mut c = Invariants::new();
        c.observe(&obs(2, 6, 4, &[(4, 6, "put")]));
        c.data_lost(2);
        // A poll of the old process that was in flight when the wipe began does not cancel it.
        assert!(c.observe(&obs(2, 6, 4, &[(4, 6, "put")])).is_empty());
        let mut wiped = obs(2, 3, 0, &[]);
        wiped.incarnation = 1234;
        assert!(
            c.observe(&wiped).is_empty(),
            "a wiped node starts over: {:?}",
            c.violations()
        );
        // From then on it is judged like any node.
        let mut back = obs(2, 2, 0, &[]);
        back.incarnation = 1234;
        let v = one(c.observe(&back), Property::TermMonotonic);
        assert!(v.evidence.contains("while running"), "{v}");
        let mut again = obs(2, 1, 0, &[]);
        again.incarnation = 4321;
        one(c.observe(&again), Property::TermMonotonic);
    }

    #[test]
    fn one_voter_one_vote_per_term_across_a_wipe() {
        use squall_node::raft::RaftEvent;
        use squall_node::rpc::NodeEvent;
        let at = Duration::from_secs(2);
        let vote = |candidate, term, pre_vote| {
            NodeEvent::Raft(RaftEvent::VoteGranted {
                candidate,
                term,
                pre_vote,
                round: 0,
            })
        };
        let mut c = Invariants::new();
        assert_eq!(c.on_node_event(at, 3, &vote(2, 5, false)), None);
        assert_eq!(
            c.on_node_event(at, 3, &vote(2, 5, false)),
            None,
            "the same vote again"
        );
        assert_eq!(
            c.on_node_event(at, 3, &vote(1, 5, true)),
            None,
            "a pre-vote"
        );
        assert_eq!(
            c.on_node_event(at, 3, &vote(1, 6, false)),
            None,
            "a later term"
        );
        c.data_lost(3);
        let v = c
            .on_node_event(at, 3, &vote(1, 5, false))
            .expect("a second vote in term 5");
        assert_eq!(v.property, Property::OneVotePerTerm);
        assert_eq!(
            v.evidence,
            "n3#2 voted for n1 in term 5 after n3#1 voted for n2 in that term"
        );
        assert_eq!(c.violations(), [v]);
        // A candidate votes for itself: campaigning in a term it voted in is a second vote too.
        let campaign = NodeEvent::Raft(RaftEvent::ElectionStarted {
            term: 6,
            pre_vote: false,
            round: 0,
        });
        let v = c
            .on_node_event(at, 3, &campaign)
            .expect("campaign after a vote");
        assert!(
            v.evidence
                .contains("n3#2 voted for n3 in term 6 after n3#1 voted for n1"),
            "{v}"
        );
        let pre = NodeEvent::Raft(RaftEvent::ElectionStarted {
            term: 7,
            pre_vote: true,
            round: 0,
        });
        assert_eq!(c.on_node_event(at, 3, &pre), None);
        assert_eq!(c.on_node_event(at, 4, &vote(3, 7, false)), None);
        // A candidate's own vote dies with its process; what it granted others does not.
        let started = NodeEvent::Started {
            term: 7,
            last_index: 0,
            snapshot_index: 0,
            empty: false,
            truncated_tail_bytes: 0,
            damaged_tail: false,
        };
        let campaign = |term| {
            NodeEvent::Raft(RaftEvent::ElectionStarted {
                term,
                pre_vote: false,
                round: 0,
            })
        };
        assert_eq!(c.on_node_event(at, 4, &campaign(8)), None);
        assert!(
            c.on_node_event(at, 4, &vote(2, 8, false)).is_some(),
            "same process"
        );
        assert_eq!(c.on_node_event(at, 4, &campaign(9)), None);
        assert_eq!(c.on_node_event(at, 4, &started), None);
        assert_eq!(
            c.on_node_event(at, 4, &vote(2, 9, false)),
            None,
            "a new process"
        );
        assert!(
            c.on_node_event(at, 4, &vote(1, 7, false)).is_some(),
            "granted n3 in 7"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let mut c = Invariants::new();
        for i in 1..=(3 * WINDOW) {
            c.observe(&obs(1, 1, i, &[(i, 1, "put")]));
        }
        assert!(c.entries.len() as u64 <= WINDOW + 1);
        assert!(c.committed.len() as u64 <= WINDOW + 1);
        for t in 1..=(3 * WINDOW) {
            c.on_vote(Duration::ZERO, 1, t, 1);
        }
        c.observe(&obs(1, 3 * WINDOW, 3 * WINDOW, &[]));
        assert!(c.votes.len() as u64 <= WINDOW + 1);
        assert!(c.violations().is_empty());
    }
}
