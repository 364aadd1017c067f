//! Recovery of a node that may have lost durable state: a wiped (empty) data directory, a WAL tail cut on
//! open, or a recovery that an earlier process did not finish (the storage's durable `RECOVERING` marker).
//!
//! Such a node may have forgotten a vote it cast (so it could vote twice in one term: issue 18, S2), entries it
//! acknowledged (so it could help elect a leader lacking a committed entry: H3), and the committed
//! configuration (a wiped member restarts with its startup configuration: S3). The rule, after Paxos Made Live
//! (Chandra, Griesemer, Redstone, PODC '07, §5.1: a replica that lost its disk takes part as a non-voting
//! member until it has caught up) and Protocol-Aware Recovery (Alagappan et al., FAST '18, §4: a node
//! whose metadata is damaged stays out of elections until it learns the current term from a majority):
//!
//! 1. It neither votes, grants pre-votes, campaigns, nor answers a leader in a way that counts towards any
//!    quorum (commit, ReadIndex, CheckQuorum): to a leader it has not validated it answers with term 0,
//!    which every leader ignores, or, to a leader below the `T` of rule 2, with `T`, so that leader steps
//!    down and the next election is above `T` (simulation seed 796617983015: a follower that had learned 15
//!    answered the leader of term 13 with 0, and neither could ever move on). A `T` once learned stays good
//!    enough to take the appends of a leader of `T` or later when the configuration changes and a voter of the
//!    new one has not answered yet (tester3 finding 1: a snapshot's configuration, older than the removal
//!    that follows it in the leader's log, named a removed voter; waiting for it, the node refused the very
//!    append that would have removed it).
//! 2. It asks the *other* members of its configuration (voters and learners) for their current term and
//!    whether a log position `P` is at least as up to date as theirs (a "probe": a pre-vote request for term
//!    0, which no real campaign uses; the answer carries the answerer's term and `granted` = "`P` is at least
//!    as up to date as my log", and changes nothing there). Once *every* other voter answered, it knows `T`,
//!    the highest term among them: every term it may have voted in is at most `T`. A vote goes to a
//!    candidate, and a candidate stores its term before it asks (Raft §5.2, Figure 2), so the candidate
//!    holding the forgotten vote is at that term or later when it answers. A majority of the others is not
//!    enough: the candidate may be the one voter outside the majority, with its election still in flight
//!    because the majority has not heard of its term yet, and it can still win that term with the forgotten
//!    vote later (simulation seed 800000000531: nodes 1-3 answered term 0 while node 4, holding node 5's vote
//!    in term 1, still campaigned). A node that is recovering itself answers "nothing to tell" (term 0, not
//!    vouched; see `Raft::answer_probe`): it counts as heard, adding no term, because the process that
//!    campaigned before its loss is gone, and with it every election that process had in flight.
//!
//!    `P` counts as vouched for when *every* other member that is not recovering said so, and every other
//!    voter is one of them (a learner that is recovering acknowledged nothing that counted, and is passed
//!    over). "Member" here means a member of *any* configuration this node's log may still be in: the one in
//!    effect at its commit index (after a restart, its snapshot's or the bootstrap one) and every configuration
//!    entry after it, not only the latest. An entry past the commit index may never have been in effect on the
//!    cluster: a cut of a damaged last record can undo a truncation and bring back an overwritten,
//!    uncommitted configuration entry, and judged by it alone the voter that holds what this node lost may not
//!    be a member at all (simulation seed 796683164128, `tests/sim/ISSUE-18-SEEDS.md`: in {1,2,3}, node 2's
//!    cut brought back its old uncommitted `Remove(3)` and undid entry 7, committed by nodes 2 and 3; asking
//!    node 1 alone, node 2 finished recovering and led term 7 without entry 7). Raft lets a configuration
//!    entry take effect before it commits (dissertation §4.1), so until this node knows which of those
//!    entries committed, a committing quorum may lie in any of them; asking every member of all of them
//!    restores the "one change away" argument below for each. The terms of rule 2 (`T`) still come from the
//!    voters of the latest configuration only (see the caveats below): a removed voter may be gone for good,
//!    and `T` is what lets a leader catch this node up. Not a majority of the others: that majority meets every quorum that committed an entry only when
//!    it is judged with the configuration that committed it, and a node that lost data may hold an older
//!    one. The cut may have removed the very entry that changed the configuration (simulation seed
//!    796631174296: entry 44 changed {1,2,3,6} to {1,2,6} and committed with nodes 1 and 2; node 2 cut it,
//!    and nodes 3 and 6, a majority of its others in {1,2,3,6} but lacking entry 44, vouched for it). With
//!    every other member vouching, every node that may count in a configuration one change away from this
//!    node's (a voter removed, a learner promoted) has said that `P` is at least as up to date as its log, so
//!    any log at `P` or beyond holds every committed entry (the Leader Completeness argument, Raft
//!    dissertation §3.6.3): each committed entry has a holder outside this node that did not lose it, as long
//!    as fewer than half the voters lost data. This costs little: `T` already needs every other voter to
//!    answer, and then the one up-to-date candidate is vouched for by all. Answers from recovering nodes
//!    never vouch: they may have forgotten the entries they acknowledged. Other voters that are recovering too
//!    are passed over, as recovering learners always are, while they and this node are too few to make a
//!    quorum of this configuration or of one a single change away (together at most `(voters - 1) / 2`: two
//!    of five or six, three of seven, so no other of three or four); then every such quorum still holds a member that
//!    vouched (`passes_over_recovering_voters`). Without it two recovering voters never vote before a leader
//!    catches them up, and the others must elect unanimously (simulation seed 796680141338: two of six
//!    recovering, and no leader for 335 ticks after the faults healed).
//! 3. It finishes recovering, votes again only in terms above `T`, and counts its vote in its term as cast,
//!    when either a leader of term `T` or later caught it up to that leader's commit index, once that index
//!    is an entry of the leader's own term (so it holds every committed entry and the committed
//!    configuration as of then; a leader's commit index is volatile, and before it commits an entry of its
//!    term it may lag what earlier leaders committed, Raft §5.4.2), or every other member vouched for its own
//!    log position (rule 2). Either way `T` comes from every other voter of the configuration it holds then.
//!    A sole voter has no one to ask: it lost the only copy, so it stays recovering (tester report C13) until
//!    an operator accepts the loss (see below).
//! 4. Before that, it may still grant a vote (or pre-vote) in a term above `T` to a candidate whose log is at
//!    least as up to date as a position every other member vouched for (rule 2): such a candidate holds every
//!    committed entry. A candidate further ahead makes it probe again with the candidate's position, so a
//!    cluster whose only up-to-date voter needs this node's vote (two voters, one wiped) still elects. A
//!    candidate of a term up to `T` is refused with `T` as the answer's term: it may hear of `T` from no one
//!    else, and must campaign above it.
//! 5. Finishing leaves a durable trace: the vote counted as cast (rule 3) is stored with the term, and in a new
//!    cluster, where `T` is 0 and nobody campaigns, it is a vote in term 0 that means nothing else. Without
//!    it a node that recovered while holding nothing would start the next time as an empty, possibly wiped,
//!    node and recover again, and two such nodes of three are no witnesses for each other.
//! 6. A learner still recovering is not promoted (its append answers say whether it recovers): a voter whose
//!    log does not yet hold the entry that made it one knows no voters to probe and could never vote.
//!
//! A new node is not a node that lost its data, although both start with an empty directory. The core cannot
//! tell them apart, so it does not try: [`Raft::new`] takes an empty restored state as a new member, and a
//! driver whose storage may have lost data calls [`Raft::mark_lost_data`]. The node binary tells them apart
//! the way etcd does with `--initial-cluster-state new|existing`: its `--initial-state` flag, `existing`
//! by default (the safe one), says whether an empty data directory is a member of a cluster being created
//! now (`new`: it has never voted, so it has nothing to recover) or a member that lost its data
//! (`existing`). squall passes `new` only on a cluster's first start, to its initial members; every restart
//! and every wipe starts `existing`, and so does a node that `add` creates (it joins as a learner, recovers
//! until a leader catches it up, and is not promoted before). The flag means nothing once the directory holds
//! state.
//!
//! Why not the alternative the issue names (wipe as a replacement with a new identity, as etcd and
//! CockroachDB do): a cut WAL tail (H3) and an emptied WAL are losses of part of a directory, not of an
//! identity, so they need the rule above anyway, and one rule for every kind of loss keeps node ids stable
//! on the dashboard and in histories.
//!
//! The price of rule 2's "every other voter": while one voter is unreachable, a node that lost data does not
//! vote (a cluster of five with one voter down and one recovering needs all three others to agree), and
//! while a learner is unreachable it votes only after a leader caught it up. The same holds for a member of an
//! older configuration still past the snapshot (after a restart the commit index is the snapshot's): a node
//! removed and gone never vouches, so this node finishes only through a leader's catch-up (rule 3), which
//! moves its commit index past the removal. What this cannot see: a node
//! whose configuration lacks the candidate it voted for (a wiped member restarted with its startup
//! configuration while a later-added voter campaigned) does not ask that candidate; a configuration more than
//! one change away from the one it holds (a wiped member's startup configuration, or a cut record holding
//! two changes, one adding a node it never knew and one promoting it) may count voters it never asks; and a
//! candidate that lost its own data and campaigns again, after recovering, in the very term of its lost
//! campaign could count a grant delayed from before (two losses at once, one of them the candidate).
//!
//! If a majority of the voters lose data at once (or the only voter does), nothing any quorum
//! system does can keep what they lost: the nodes that lost data stay recovering, and the cluster makes no
//! progress, until a node holding the data returns or an operator accepts the loss by starting a new
//! cluster from what is left (etcd's `--force-new-cluster`; with squall, `squall up` on a new directory).
//!
//! A wiped voter with another voter down stays recovering until that voter answers (issue 18, decided: the
//! rule is kept). No safe rule uses only the reachable voters: the unreachable one may be the candidate
//! holding the forgotten vote, its election still in flight (simulation seed 800000000531), so nothing the
//! reachable voters say bounds the terms this node may have voted in. [`Raft::recovery_wait`] says whose term
//! it waits for, for status and the dashboard; `tests/node_safety.rs` keeps the end-to-end test of the other
//! choice, ignored with this reason.

use std::collections::{BTreeMap, BTreeSet};

use super::Raft;
use super::types::{ConfState, NodeId, Request, RequestVote, Term};

/// A log position: (last term, last index), ordered as Raft's up-to-date rule orders them.
type LogPos = (Term, u64);

/// What a recovering node has learned so far (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct Recovery {
    /// The highest term each other voter answered a probe with, since this process started recovering; 0 for
    /// one that answered "nothing to tell" (it is recovering too): heard, but no witness of any term.
    terms: BTreeMap<NodeId, Term>,
    /// Voters that answered that the probed position is at least as up to date as their log. The position
    /// only grows, so an answer about an earlier one holds for `probe_pos` too.
    vouched: BTreeSet<NodeId>,
    /// The position probes ask about: this node's own at first, raised to a candidate's that is further ahead.
    probe_pos: LogPos,
    /// Ticks until the next round of probes.
    probe_in: u32,
    /// [`SOLE_VOTER_LOST`] was said.
    said_sole: bool,
    /// The highest `T` learned so far (from every other voter of the configuration of the time): it stays
    /// good enough to take a leader's appends after the configuration changes (rule 1 of the module docs).
    learned: Option<Term>,
}

/// What a sole voter that may have lost data says (once): it held the only copy, so it cannot learn what it
/// lost from anyone, and it stays recovering rather than reuse a term it may have voted in (tester report C13).
pub(crate) const SOLE_VOTER_LOST: &str = "recovering: this node is the only voter and may have lost data, so no other      voter can tell it what it lost; it does not vote, campaign or lead until an operator acts: bring back a copy      of its data directory, or accept the loss by starting a new cluster (an empty data directory started with      --initial-state new; with squall, `squall up` on a new --dir)";

/// Whether a recovering voter may pass over the `recovering` other voters (those that answered its probes with
/// "nothing to tell") when it asks whether every other member vouched for a position, in a configuration of
/// `voters` voters (rule 2 of the module docs).
///
/// The position is safe when every quorum that may have committed an entry holds a member that vouched for it:
/// a quorum of this node's configuration or of one a single change away (a voter removed, a learner promoted).
/// A quorum that no voucher is part of lies within the nodes that lost data, this one and the recovering
/// ones. The smallest such quorum is a majority of `voters - 1` (after a removal), `(voters - 1) / 2 + 1`
/// nodes; so the recovering voters are passed over when they and this node number at most `(voters - 1) / 2`
/// (two of five or six, three of seven; none of three or four, where one more loss could complete a quorum).
/// A promotion adds at most one recovering learner to at most `voters + 1` voters, whose majority is larger by
/// one or more, so the bound covers it too. Otherwise every other voter must vouch, and the nodes that lost
/// data wait for a leader to catch them up (rule 3). Without passing over, two recovering voters never finish
/// or vote for each other's sake, and the voters left must elect a leader unanimously (simulation seed
/// 796680141338: of six voters, two recovering left four to agree, and without PreVote a stale node's
/// campaigns kept them from it for 335 ticks after the faults healed).
fn passes_over_recovering_voters(voters: usize, recovering: usize) -> bool {
    // This node and the recovering others: `1 + recovering <= (voters - 1) / 2`.
    recovering > 0 && recovering < voters.saturating_sub(1) / 2
}

impl Raft {
    /// Marks this node as one that may have lost durable state (the driver calls it when the storage says so:
    /// a damaged WAL record cut, or a recovery an earlier process did not finish). A node restored from
    /// nothing is marked already. See the `recovery` module for what it then does.
    pub fn mark_lost_data(&mut self) {
        if self.recovery.is_none() {
            self.recovery = Some(Recovery {
                probe_pos: self.own_pos(),
                ..Recovery::default()
            });
        }
    }

    /// True while this node recovers from possible data loss: it does not vote (except as the `recovery`
    /// module's rule 4 allows), campaign or count towards any quorum until it has learned the current term
    /// from every other voter and either holds every committed entry or was caught up by a leader.
    pub fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// Same as [`Raft::recovering`] (the name used before recovery replaced the empty-node hold).
    pub fn voting_held(&self) -> bool {
        self.recovering()
    }

    fn own_pos(&self) -> LogPos {
        (self.log.last_term(), self.log.last_index())
    }

    /// The other voters of this node's configuration.
    fn other_voters(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != id)
            .collect()
    }

    /// `T`: the highest term the other voters answered with, once every one of them has (rule 2 of the module
    /// docs: the candidate holding a forgotten vote may be any one of them). A sole voter has no one to ask
    /// (0); a node that knows of no voter (joining) has no `T` until it learns a configuration.
    pub(super) fn probed_term(&self) -> Option<Term> {
        let rec = self.recovery.as_ref()?;
        let others = self.other_voters();
        if others.is_empty() {
            return self.is_voter().then_some(0);
        }
        others
            .iter()
            .map(|v| rec.terms.get(v).copied())
            .collect::<Option<Vec<Term>>>()
            .map(|answered| answered.into_iter().max().unwrap_or(0))
    }

    /// The configurations this node's log may still be in: the one in effect at its commit index (after a
    /// restart, the snapshot's or the bootstrap one) and every later one, oldest first (rule 2 of the module
    /// docs: a configuration entry past the commit index may be one a cut brought back, and never in effect
    /// on the cluster).
    fn open_confs(&self) -> Vec<&ConfState> {
        let from = self.conf_at(self.log.commit).index;
        self.confs.iter().filter(|c| c.index >= from).collect()
    }

    /// The other members of every configuration this node may be in ([`Raft::open_confs`]), voters and
    /// learners, each once, in the order of the configurations (voters before learners): the nodes probes ask
    /// whether a position is at least as up to date as their logs (rule 2 of the module docs).
    fn witnesses(&self) -> Vec<NodeId> {
        let id = self.config.id;
        let mut out = Vec::new();
        for c in self.open_confs() {
            for &w in c.config.voters.iter().chain(c.config.learners.iter()) {
                if w != id && !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        out
    }

    /// Whether every other member vouched that `probe_pos` is at least as up to date as its log (rule 2 of the
    /// module docs: with a configuration that may be older than the committed one, a majority of the others
    /// is not enough). A learner that answered "nothing to tell" (it is recovering itself) objects to nothing:
    /// it acknowledged nothing that counted. A voter that did is no witness, and leaves it unvouched, unless
    /// [`passes_over_recovering_voters`] says the recovering voters are too few to matter. A sole
    /// voter has no witness: it held the only copy of what it committed.
    fn all_vouched(&self) -> bool {
        let Some(rec) = self.recovery.as_ref() else {
            return false;
        };
        if self.other_voters().is_empty() {
            return false;
        }
        let id = self.config.id;
        let confs = self.open_confs();
        // "Nothing to tell" (term 0, not vouched) comes only from a node that is recovering itself: a member
        // that is not recovering and at term 0 has an empty log, which is behind every position.
        let recovering = |w: &NodeId| !rec.vouched.contains(w) && rec.terms.get(w) == Some(&0);
        // Recovering voters are passed over only when they are too few in every configuration this node may
        // be in.
        let pass_over_voters = confs.iter().all(|c| {
            let voters = &c.config.voters;
            let r = voters
                .iter()
                .filter(|&&v| v != id && recovering(&v))
                .count();
            r == 0 || passes_over_recovering_voters(voters.len(), r)
        });
        let voter_anywhere = |w: NodeId| confs.iter().any(|c| c.config.is_voter(w));
        self.witnesses().iter().all(|w| {
            rec.vouched.contains(w) || (recovering(w) && (!voter_anywhere(*w) || pass_over_voters))
        })
    }

    /// The highest `T` this node knows: [`Raft::probed_term`] for its configuration now, or the one learned
    /// with an earlier configuration, whichever is higher. A voter of a later configuration that has not
    /// answered yet does not make it forget a term it learned (tester3 finding 1: a snapshot's configuration,
    /// older than the removal that follows it in the leader's log, named a removed voter that never answered,
    /// and the node refused every append, the removal's too, for good).
    pub(super) fn known_term(&self) -> Option<Term> {
        let learned = self.recovery.as_ref().and_then(|r| r.learned);
        match (self.probed_term(), learned) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records `T` once every other voter answered (see [`Raft::known_term`]).
    fn note_learned_term(&mut self) {
        let probed = self.probed_term();
        if let (Some(t), Some(rec)) = (probed, self.recovery.as_mut()) {
            rec.learned = Some(rec.learned.map_or(t, |l| l.max(t)));
        }
    }

    /// Whether a recovering node may act on a message from the leader of `term` (append, snapshot): always
    /// when it is not a voter (a learner's answers count towards nothing) or not recovering; otherwise only
    /// once it knows a `T` ([`Raft::known_term`]) and `term` is not below it.
    pub(super) fn accepts_leader(&self, term: Term) -> bool {
        if self.recovery.is_none() || !self.is_voter() {
            return true;
        }
        self.known_term().is_some_and(|t| term >= t)
    }

    /// The term a recovering node answers a leader it does not accept with ([`Raft::accepts_leader`]): `T`
    /// when the leader is below it, so that a stale leader steps down and the next election is above `T`
    /// (simulation seed 796617983015: answered with 0, which no leader counts, a leader of term 13 led on
    /// while the node, having learned 15, could accept none below it); 0 while `T` is unknown, which every
    /// leader ignores.
    pub(super) fn refused_leader_term(&self, term: Term) -> Term {
        self.known_term().filter(|&t| t > term).unwrap_or(0)
    }

    /// A probe (pre-vote for term 0) from a recovering peer: this node's term, and whether the probed position
    /// is at least as up to date as this node's log. Changes nothing here.
    ///
    /// A node that is itself recovering is never a witness, not even when it and the prober are both empty: it
    /// may have forgotten the terms it saw and the entries it acknowledged, so neither its term nor an empty or
    /// cut log "behind" the probed position says anything about the quorums rule 2 relies on. It answers
    /// "nothing to tell" (term 0, not vouched), which the prober does not count. (An earlier exception let two
    /// empty recovering nodes vouch for each other, for a new cluster's sake; the vouch then carried over when
    /// the probed position rose to a stale candidate's, and two wiped voters of five elected a leader lacking
    /// committed entries: tester report A1. A new cluster is now told apart by its start flag instead, see the
    /// module docs.)
    pub(super) fn answer_probe(&self, req: &RequestVote) -> (Term, bool) {
        if self.recovery.is_some() {
            return (0, false);
        }
        (
            self.term,
            self.log
                .is_up_to_date(req.last_log_term, req.last_log_index),
        )
    }

    /// Whether this recovering node grants `req` (a vote or pre-vote), by the `recovery` module's rule 4. A
    /// granted real vote is recorded like any vote. A candidate further ahead than the probed position makes
    /// the next probes ask about its position.
    pub(super) fn recovering_vote(&mut self, req: &RequestVote) -> bool {
        let Some(t) = self.probed_term() else {
            return false;
        };
        let floor = t.max(self.term);
        if req.term <= t
            || (req.pre_vote && req.term <= floor)
            || (!req.pre_vote && req.term < self.term)
        {
            return false;
        }
        let pos = (req.last_log_term, req.last_log_index);
        let Some(rec) = self.recovery.as_mut() else {
            return false;
        };
        if pos > rec.probe_pos {
            rec.probe_pos = pos;
            rec.probe_in = 0;
            return false;
        }
        if pos < rec.probe_pos || !self.all_vouched() {
            return false;
        }
        if req.pre_vote {
            return true;
        }
        if req.term > self.term {
            self.become_follower(req.term, None);
        }
        if self.vote.is_some_and(|v| v != req.candidate) {
            return false;
        }
        self.vote = Some(req.candidate);
        self.reset_election_timer();
        true
    }

    /// Each tick while recovering: probes the other members that have not vouched yet, once per heartbeat
    /// interval. A sole voter has no one to ask: it says once that it stays recovering, and what to do.
    pub(super) fn tick_recovery(&mut self) {
        // A configuration that shrank may complete `T` without a new answer.
        self.note_learned_term();
        let heartbeat = self.config.heartbeat_ticks;
        let own = self.own_pos();
        let sole = self.sole_voter();
        let Some(rec) = self.recovery.as_mut() else {
            return;
        };
        if sole && !rec.said_sole {
            rec.said_sole = true;
            self.warnings.push(SOLE_VOTER_LOST.to_string());
        }
        rec.probe_pos = rec.probe_pos.max(own);
        if rec.probe_in > 0 {
            rec.probe_in -= 1;
            return;
        }
        rec.probe_in = heartbeat;
        let vouched = rec.vouched.clone();
        let (last_log_term, last_log_index) = rec.probe_pos;
        let probe = RequestVote {
            term: 0,
            candidate: self.config.id,
            last_log_index,
            last_log_term,
            pre_vote: true,
            transfer: false,
            round: 0,
        };
        for peer in self.witnesses() {
            if !vouched.contains(&peer) {
                self.messages.push((peer, Request::Vote(probe.clone())));
            }
        }
        self.maybe_finish_recovery(None);
    }

    /// Sends the next round of probes at once, as the heartbeat-paced timer of [`Raft::tick_recovery`] does
    /// when it runs out (teaching mode's `timeout N` of a recovering node).
    pub(super) fn probe_now(&mut self) {
        if let Some(rec) = self.recovery.as_mut() {
            rec.probe_in = 0;
        }
        self.tick_recovery();
    }

    /// A vote reply while recovering answers a probe (a recovering node never campaigns): records it.
    pub(super) fn handle_probe_reply(&mut self, from: NodeId, term: Term, vouched: bool) {
        if let Some(rec) = self.recovery.as_mut() {
            // "Nothing to tell" (term 0, not vouched) comes from a voter recovering too (see `answer_probe`): it
            // is heard, so its lost campaigns are no longer feared, but it witnesses no term and no position.
            let t = rec.terms.entry(from).or_default();
            *t = (*t).max(term);
            if vouched {
                rec.vouched.insert(from);
            }
        }
        self.note_learned_term();
        self.maybe_finish_recovery(None);
    }

    /// Ends recovery when its conditions hold (rule 3). `caught_up` names the leader (and its term) that has
    /// just brought this node's commit index up to its own.
    pub(super) fn maybe_finish_recovery(&mut self, caught_up: Option<(NodeId, Term)>) {
        let Some(rec) = self.recovery.as_ref() else {
            return;
        };
        let Some(probed) = self.probed_term() else {
            return;
        };
        let holds_all = self.all_vouched() && self.own_pos() >= rec.probe_pos;
        let leader = match caught_up {
            Some((leader, term)) if term >= probed => Some(leader),
            _ if holds_all => None,
            _ => return,
        };
        self.recovery = None;
        if self.term < probed {
            self.set_term(probed);
        }
        if self.vote.is_none() {
            // Whatever it voted in this term before the loss, that vote counts as cast: never grant it again.
            // In term 0 (a new cluster), where nobody campaigns, the vote only leaves a durable trace that this
            // node finished: without one, a node still holding nothing would start the next time as an empty,
            // possibly wiped, node and recover again, and two such nodes of three are no witnesses for each
            // other (simulation seed 2843).
            self.vote = Some(leader.unwrap_or(self.config.id));
        }
        let by = match leader {
            Some(leader) => super::types::RecoveredBy::Leader {
                leader,
                term: self.term,
            },
            None => super::types::RecoveredBy::Vouched { term: probed },
        };
        let count = self.recovered.as_ref().map_or(0, |r| r.count) + 1;
        self.recovered = Some(super::types::Recovered { count, by });
        self.warnings.push(match leader {
            Some(l) => format!(
                "recovered: every other voter is at term {probed} or below, and leader {l} caught this \
                 node up in term {}; voting again from term {}",
                self.term,
                self.term + 1
            ),
            None => format!(
                "recovered: every other voter is at term {probed} or below, and no other member holds \
                 anything this node lacks; voting again from term {}",
                self.term + 1
            ),
        });
        self.reset_election_timer();
    }
}

impl Raft {
    /// The recoveries this core finished and how the latest one ended; `None` before the first. Status
    /// carries it so that a recovery finished between two polls still reaches the feed, told the way it
    /// happened.
    pub fn recovered(&self) -> Option<&super::types::Recovered> {
        self.recovered.as_ref()
    }

    /// What this node waits for while it recovers (`None` when it is not recovering): the terms of the other
    /// voters not heard from yet (rule 2), then a leader of term `T` or later (rule 3); a sole voter waits for
    /// an operator, a learner for any leader.
    pub fn recovery_wait(&self) -> Option<super::types::RecoveryWait> {
        use super::types::RecoveryWait;
        let rec = self.recovery.as_ref()?;
        if !self.is_voter() {
            return Some(RecoveryWait::Leader { term: 0 });
        }
        if self.sole_voter() {
            return Some(RecoveryWait::Operator);
        }
        let voters: Vec<NodeId> = self
            .other_voters()
            .into_iter()
            .filter(|v| !rec.terms.contains_key(v))
            .collect();
        if !voters.is_empty() {
            return Some(RecoveryWait::Terms { voters });
        }
        Some(RecoveryWait::Leader {
            term: self.probed_term().unwrap_or(0),
        })
    }
}
