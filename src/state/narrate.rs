//! The feed narration: what a node's own event feed, its process and squall's leader sightings mean, in words
//! for a person, pushed onto the feed and the console's ticker.

use squall_node::raft::types::{RaftEvent, Role};
use squall_node::rpc::NodeEvent;

use super::cluster::ClusterState;
use super::event::ProcessState;
use super::feed::{self, Ballot, Causal, FeedKind, FeedLine};
use super::lane::LaneRole;

/// How many announced terms the state remembers, so a leader is announced once per term.
const ANNOUNCED_TERMS: usize = 64;

impl ClusterState {
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
        let mut line = FeedLine::new(at_ms, node, kind, text, self.pushed, cause);
        feed::after_delivery(&self.feed, &mut line);
        if !feed::printed(&self.ticker, &line) {
            for l in feed::ticker_order(&self.ticker, &mut self.early_grants, line.clone()) {
                self.tick(l);
            }
        }
        feed::place(&mut self.feed, line);
    }

    /// Adds a line to the ticker, the lines as they came (see [`ClusterState::feed_since`]); its `seq` is its
    /// place there (a grant held for its request gets its place when it goes on).
    fn tick(&mut self, mut line: FeedLine) {
        line.seq = self.pushed;
        self.pushed += 1;
        self.ticker.push_back(line);
        feed::trim(&mut self.ticker);
    }

    /// Session time of a node's feed record: the node's own clock mapped onto the session's through the offset
    /// its statuses gave, never later than the record's arrival; the arrival time until a status of the
    /// process was seen.
    pub(super) fn event_time(&self, node: u64, arrival: u64, node_ms: u64) -> u64 {
        match self.nodes.get(&node).and_then(|n| n.clock) {
            Some((_, offset)) => (offset + node_ms as i64).clamp(0, arrival as i64) as u64,
            None => arrival,
        }
    }

    /// Reports a held truncation that no snapshot install followed: entries in conflict with the leader's.
    pub(super) fn flush_truncation(&mut self, node: u64) {
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
        if feed::join_compaction_round(&mut self.feed, happened, node, index) {
            return;
        }
        let line = FeedLine::compaction(happened, node, index, self.pushed);
        self.tick(line.clone());
        feed::insert_in_time_order(&mut self.feed, line);
        feed::trim(&mut self.feed);
    }

    /// A record of a node's own feed, which arrived at `at` and happened at `happened` (the feed line's time;
    /// role lanes keep arrival time, as they only ever move forward).
    pub(super) fn on_feed(&mut self, at: u64, happened: u64, node: u64, event: &NodeEvent) {
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
        let translated;
        let raft = match event {
            NodeEvent::Paxos(p) => {
                self.paxos = true;
                translated = paxos_as_raft(p);
                &translated
            }
            NodeEvent::Started {
                term,
                last_index,
                snapshot_index,
                empty,
                truncated_tail_bytes,
                damaged_tail,
            } => {
                let mut text = if *empty {
                    format!("n{node} started with an empty data dir")
                } else {
                    format!(
                        "n{node} started: {}, log to {last_index}, snapshot {snapshot_index}",
                        self.term_text(*term)
                    )
                };
                if *truncated_tail_bytes > 0 {
                    let what = if *damaged_tail { "damaged" } else { "torn" };
                    text.push_str(&format!(", cut {truncated_tail_bytes} {what} WAL bytes"));
                }
                if *damaged_tail
                    && *truncated_tail_bytes > 0
                    && let Some(pid) = self.node_mut(node).process.pid()
                {
                    self.invariants.damaged_tail_cut(node, u64::from(pid));
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
                    Role::Leader => self.announce_from_feed(happened, node, *term),
                    Role::Follower if before == Some(Role::Leader) => {
                        self.push(
                            happened,
                            Some(node),
                            FeedKind::Role,
                            format!("n{node} steps down in {}", self.term_text(*term)),
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
            RaftEvent::ElectionStarted {
                term,
                pre_vote,
                round,
            } => {
                let text = if *pre_vote {
                    format!("n{node} asks for pre-votes for term {term}")
                } else if self.paxos {
                    // Paxos's phase 1 where Raft has an election (see `paxos_as_raft`).
                    format!("n{node} starts phase 1 with {}", self.term_text(*term))
                } else {
                    format!("n{node} starts an election in term {term}")
                };
                let ballot = Ballot {
                    candidate: node,
                    term: *term,
                    pre_vote: *pre_vote,
                    round: *round,
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
                round,
            } => {
                let what = if *pre_vote { "pre-votes" } else { "votes" };
                let ballot = Ballot {
                    candidate: *candidate,
                    term: *term,
                    pre_vote: *pre_vote,
                    round: *round,
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

    pub(super) fn on_process(&mut self, at: u64, node: u64, state: &ProcessState) {
        if matches!(state, ProcessState::Restarting { wipe: true }) {
            // The wipe itself says the data is gone, so the node's next process may start from term 0.
            self.invariants.data_lost(node);
        }
        let n = self.node_mut(node);
        // The exit of a process older than the one running now (a restart's, told late by another host's
        // agent): it ended before this one started, and says nothing about it.
        if !state.is_alive()
            && n.process.is_alive()
            && state.pid().is_some()
            && state.pid() != n.process.pid()
        {
            return;
        }
        // Removed already (a member that ends itself once removed, as etcd's do): the removal said it left.
        let quiet = n.removed && matches!(state, ProcessState::Exited { .. });
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
        if !quiet {
            self.push(at, Some(node), kind, text);
        }
        self.refresh_node(at, node);
        self.refresh_faults();
    }

    /// Announces a leader the statuses show ("n2 leads term 4"), once per term and only in a term newer than
    /// every one announced: a status of an older term's leader is a stale one (cut off, not yet told), not news.
    pub(super) fn announce(&mut self, at: u64, leader: u64, term: u64) {
        if self.announced.is_some_and(|(_, t)| t >= term) {
            return;
        }
        self.announce_term(at, leader, term);
    }

    /// Announces a leader its own feed reported, once per term, also in a term older than one announced: a
    /// leadership of a few ms (a leader that removes itself and hands over at once) shows in no status poll,
    /// and its records can arrive after the next leader's status. Raft elects at most one leader per term
    /// (Raft §5.2), so the record is a fact, and its line goes in its place in time.
    pub(super) fn announce_from_feed(&mut self, happened: u64, leader: u64, term: u64) {
        let forgotten = self.announced_terms.len() == ANNOUNCED_TERMS
            && self.announced_terms.first().is_some_and(|&t| term < t);
        if self.announced_terms.contains(&term) || forgotten {
            return;
        }
        self.announce_term(happened, leader, term);
    }

    fn announce_term(&mut self, at: u64, leader: u64, term: u64) {
        if self.announced.is_none_or(|(_, t)| term > t) {
            self.announced = Some((leader, term));
        }
        self.announced_terms.insert(term);
        if self.announced_terms.len() > ANNOUNCED_TERMS {
            self.announced_terms.pop_first();
        }
        self.push(
            at,
            Some(leader),
            FeedKind::Leader,
            format!("n{leader} leads {}", self.term_text(term)),
        );
    }
}

impl ClusterState {
    /// A performed command's effect on the lock clients' faults (`pause-client`, `slow-client`, `heal`).
    pub(super) fn on_client_fault(&mut self, command: &crate::command::Command) {
        use crate::command::Command;
        match command {
            Command::PauseClient(c, d) => {
                self.client_faults.entry(*c).or_default().armed = Some(*d)
            }
            Command::SlowClient(c, d) => self.client_faults.entry(*c).or_default().slow = Some(*d),
            Command::Heal(None) => {
                for f in self.client_faults.values_mut() {
                    f.slow = None;
                    f.armed = None;
                }
            }
            _ => return,
        }
        self.refresh_faults();
    }

    /// A lock workload record, narrated where a person would want to see it: the pause striking and a write
    /// the fenced resource rejected. Grants and accepted writes are too many to narrate.
    pub(super) fn on_lock(&mut self, at_ms: u64, record: &crate::check::lock::LockEvent) {
        use crate::check::lock::LockEvent;
        if let LockEvent::PauseStruck {
            client, pause_ms, ..
        } = record
        {
            let f = self.client_faults.entry(*client).or_default();
            f.armed = None;
            f.paused_until_ms = Some(at_ms + pause_ms);
            self.refresh_faults();
        }
        let text = match record {
            LockEvent::PauseStruck {
                client,
                token,
                pause_ms,
                ..
            } => format!(
                "client {client} paused at its protected write (token {token}) for {}",
                crate::units::duration(std::time::Duration::from_millis(*pause_ms))
            ),
            LockEvent::Wrote {
                client,
                token,
                write,
                accepted: false,
                highest,
                ..
            } => format!(
                "resource rejected write #{write} by client {client}: token {token} is below {highest}, the \
                 highest it has seen (fencing)"
            ),
            _ => return,
        };
        self.push(at_ms, None, FeedKind::Fault, text);
    }
}

/// A Paxos node's event in the Raft terms the feed narrates (a Paxos node reports its ballot packed into one
/// number where Raft reports a term; the lines unpack it, [`ClusterState::term_text`]): phase 1 as an election, leading at a ballot as leading in a term, giving
/// up a ballot as stepping down.
fn paxos_as_raft(p: &squall_node::paxos::PaxosEvent) -> RaftEvent {
    use squall_node::paxos::PaxosEvent as P;
    use squall_node::raft::SnapshotMeta;
    match p {
        P::PrepareStarted { ballot } => RaftEvent::ElectionStarted {
            term: ballot.pack(),
            pre_vote: false,
            round: 0,
        },
        P::BecameLeader { ballot, .. } => RaftEvent::RoleChanged {
            role: Role::Leader,
            term: ballot.pack(),
        },
        P::SteppedDown { ballot, .. } => RaftEvent::RoleChanged {
            role: Role::Follower,
            term: ballot.pack(),
        },
        P::LeaderChanged { leader, ballot } => RaftEvent::LeaderChanged {
            leader: *leader,
            term: ballot.pack(),
        },
        P::SnapshotInstalled { slot } => RaftEvent::SnapshotInstalled {
            meta: SnapshotMeta {
                last_index: *slot,
                last_term: 0,
            },
        },
        P::SnapshotTaken { slot } => RaftEvent::SnapshotTaken {
            meta: SnapshotMeta {
                last_index: *slot,
                last_term: 0,
            },
        },
    }
}
