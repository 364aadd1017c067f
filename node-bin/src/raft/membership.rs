//! Cluster membership: which nodes vote and which only learn, how the configuration changes through the log,
//! and what every quorum counts.
//!
//! # Single-server changes, not joint consensus
//! squall changes the configuration one server at a time (Raft dissertation §4.1): add a learner, promote a
//! learner to voter, remove a voter or learner. Any two configurations one such change apart have
//! overlapping majorities, so no two leaders can be elected in one term across the change and a committed
//! entry is held by a majority of the next configuration. Every operation squall offers (grow, shrink, replace a
//! node) is a sequence of single changes, so joint consensus (§4.3), which exists for changing many servers at
//! once, would add a second kind of configuration entry and a two-phase commit for no operation that needs it.
//! The safeguards single-server changes need:
//! - **One change at a time.** A leader refuses a change while the previous configuration entry is not
//!   committed ([`MembershipError::InProgress`]); otherwise two uncommitted changes could be two servers apart.
//! - **A new leader first commits an entry of its own term** ([`MembershipError::LeaderNotReady`]). This is
//!   the fix for the bug found after the dissertation (Ongaro, raft-dev, 2015): without it, a leader of an old
//!   configuration can propose a change that conflicts with an uncommitted change of an earlier leader and
//!   both can commit. Committing the term's no-op proves any earlier leader's uncommitted change is either in
//!   this leader's log (so it is the base of the next change) or can no longer commit.
//! - **A configuration takes effect when appended**, committed or not, on every node, and a configuration
//!   entry removed by a log truncation reverts the node to the configuration before it (§4.1). The core
//!   keeps the configuration entries after its snapshot (`Raft::confs`) for exactly that.
//!
//! # Learners (§4.2.1)
//! A learner receives the log, and a snapshot when it is far behind, like any follower, but it never
//! campaigns, and its answers never count toward an election, commitment, CheckQuorum or a ReadIndex round:
//! every quorum counts only the voters of the configuration in effect (including this node only if it
//! votes). A learner is promoted only when the leader heard from it within an election timeout, it matched
//! part of the leader's log, and its match index is within [`PROMOTE_MAX_LAG`] entries of the leader's last
//! index, so the new voter is alive and does not leave the cluster waiting on its catch-up (§4.2.1).
//!
//! # Removing a node, and the leader removing itself (§4.2.2)
//! A removed node's replication continues until it holds the removal entry and the entry is committed (it
//! counts toward nothing meanwhile); one last heartbeat then carries the commit index to it, so it learns that
//! it was removed, logs it once and never campaigns again. A leader that removes itself keeps leading until the change commits (counting only the
//! new configuration's voters), then hands leadership to the most up-to-date voter with TimeoutNow and steps
//! down.
//!
//! # Removed and not-yet-added nodes do not disrupt the cluster (§4.2.3)
//! A node that is not a voter in its own configuration never campaigns (a node started with `--join` has no
//! configuration at all until a leader's log or snapshot gives it one). A removed node that never learned of
//! its removal (it was cut off, or restarted from old data) still believes it votes; its campaigns stay harmless:
//! - with CheckQuorum, every member that heard from its leader within the minimum election timeout (and the
//!   leader itself) refuses its (pre-)votes without adopting its term (the lease of §4.2.3);
//! - with PreVote, its pre-votes also fail on the log check: it lacks the removal entry, which a majority of
//!   the new configuration holds, so it never raises its term even while the cluster has no leader;
//! - it can never win: the removal committed on a majority of the new configuration, and any majority of
//!   the old one that it counts on contains at least one of those nodes, which refuse it on the log check.
//!
//! With both PreVote and CheckQuorum turned off (`--no-pre-vote --no-check-quorum`) nothing stops such a node:
//! every campaign raises the term and deposes the current leader, so a cluster that changes its membership
//! should keep at least one of them on (both are on by default).
//!
//! Members do **not** refuse votes from candidates outside their own configuration. It looks like extra
//! protection, but a node's configuration may lag far behind (a learner just promoted, a node that joined and
//! holds no configuration yet), and then it would refuse the very voters the current configuration needs:
//! the simulation found a cluster {3,5} stuck without a leader because node 5, promoted while far behind,
//! still held no configuration and refused node 3. Granting a vote only needs the term and log checks.
//!
//! # How a removed node that never held its removal learns it
//! Harmless is not enough: a node removed while it was down (or while its disk was full) restarts from a
//! log without its removal, believes it votes, and would ask for pre-votes every election timeout forever
//! without ever saying why. So every (pre-)vote reply, granted or not, carries the voter's **committed**
//! configuration when that configuration excludes the candidate (neither voter nor learner) and was set by a
//! log entry ([`RequestVoteReply::removed_by`](super::types::RequestVoteReply)). The candidate acts on it
//! (`Raft::learn_removed`) only when no configuration in its own log has a higher index; then it records
//! that it is not a member, logs "node N is no longer a member of the cluster (configuration {…} at index I)"
//! once, reports [`RaftEvent::Removed`], ends the campaign and campaigns no more.
//!
//! Why this never silences a node that is (or may become) a member without being told:
//! - The configuration is committed on the voter (its entry is at or below the voter's commit index, or in
//!   its snapshot), so it is in every future leader's log (Leader Completeness). An uncommitted configuration
//!   that excludes the candidate is never sent: it may still be truncated away. The bootstrap configuration
//!   (index 0) is never sent either: it is a start-up flag, not a log entry, and a joining node's is empty.
//! - Let I be the committed configuration's index and J the index of the configuration in effect on the
//!   candidate (its latest configuration entry), which includes it. If J <= I, the candidate's entry at J is
//!   either in the committed log (then the committed configuration at I came after it and excludes the
//!   candidate: it was removed) or it is not and never will be (the committed log holds another entry at J,
//!   or, at J = I, the one that excludes it). Either way the candidate is not a member as of I, and only a
//!   later configuration entry can make it one again. If J > I the voter's knowledge may be stale (a node
//!   added after I campaigns while a voter's commit index lags): the candidate ignores it.
//! - A later configuration that includes the node again (squall never reuses ids, but the core does not rely
//!   on that) reaches it the way every configuration reaches a member: the leader replicates to every member
//!   of its configuration. When such a configuration (index above I) takes effect on the node, the record is
//!   cleared and it votes and campaigns again. A truncation that reverts to an older configuration
//!   including it does not clear it (that configuration is at or below I).
//! - Nothing else changes: the reply's grant is decided as before, and the node still answers votes and
//!   appends, so a removal learned this way costs the cluster nothing.

use super::Raft;
use super::progress::Progress;
use super::types::{
    ConfChange, ConfState, Index, Membership, MembershipError, NodeId, RaftEvent, Role, Term,
};

/// Largest gap, in entries, between a learner's match index and the leader's last index at which the
/// learner may be promoted. Chosen as one full AppendEntries batch of the node binary (512 entries): a learner
/// this close is replicating in step and closes the gap in one round trip, so promoting it does not stall
/// commitment. A learner still receiving a snapshot is always further behind.
pub const PROMOTE_MAX_LAG: Index = 512;

impl Raft {
    /// The configuration in effect on this node.
    pub fn membership(&self) -> &Membership {
        &self.confs.last().expect("never empty").config
    }

    /// Index of the entry that set the configuration in effect (0: bootstrap).
    pub fn membership_index(&self) -> Index {
        self.confs.last().expect("never empty").index
    }

    /// Whether this node votes in its configuration.
    pub fn is_voter(&self) -> bool {
        self.membership().is_voter(self.config.id)
    }

    /// The configuration in effect at `index` (the latest configuration entry at or before it), for an
    /// index at or after the latest snapshot.
    pub fn conf_at(&self, index: Index) -> ConfState {
        self.confs
            .iter()
            .rev()
            .find(|c| c.index <= index)
            .unwrap_or(&self.confs[0])
            .clone()
    }

    /// Whether the voters that satisfy `acked` (this node counted by `me`) form a majority of the voters.
    pub(super) fn has_quorum(&self, me: bool, acked: impl Fn(NodeId) -> bool) -> bool {
        let config = self.membership();
        let id = self.config.id;
        let count = config
            .voters
            .iter()
            .filter(|&&v| if v == id { me } else { acked(v) })
            .count();
        count >= config.quorum() && config.quorum() > 0
    }

    /// Whether this node is the only voter (its own answers are a majority).
    pub(super) fn sole_voter(&self) -> bool {
        let config = self.membership();
        config.voters.len() == 1 && config.is_voter(self.config.id)
    }

    /// The configuration committed on this node, when it was set by a log entry (not the bootstrap) and
    /// excludes `id` (neither voter nor learner).
    pub(super) fn committed_conf_excluding(&self, id: NodeId) -> Option<ConfState> {
        let conf = self.conf_at(self.log.commit);
        (conf.index > 0 && conf.index <= self.log.commit && !conf.config.contains(id))
            .then_some(conf)
    }

    /// `voter` answered a campaign of this node with its committed configuration `conf`, which excludes this
    /// node. When no configuration in this node's log is newer than `conf` (see the module docs for why that
    /// makes it final), this node records that it is not a member, says so once, reports
    /// [`RaftEvent::Removed`] and ends its campaign. Returns whether it did.
    pub(super) fn learn_removed(&mut self, voter: NodeId, conf: &ConfState) -> bool {
        let id = self.config.id;
        if conf.index == 0 || conf.config.contains(id) || conf.index < self.membership_index() {
            // The bootstrap configuration proves nothing; a configuration this node holds a newer one than
            // may be superseded by it.
            return false;
        }
        if self.removed_at.is_none_or(|at| conf.index > at) {
            self.removed_at = Some(conf.index);
            self.events.push(RaftEvent::Removed { index: conf.index });
            if self.removed_warned != Some(conf.index) {
                self.removed_warned = Some(conf.index);
                self.warnings.push(format!(
                    "node {id} is no longer a member of the cluster (configuration {} at index {}): node \
                     {voter} has it committed; not campaigning again unless a leader's log includes this node",
                    describe(&conf.config),
                    conf.index
                ));
            }
        }
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            let term = self.term;
            self.become_follower(term, None);
        }
        true
    }

    /// Proposes one configuration change (see the module docs for the rules). On the leader the new
    /// configuration's entry is appended and its (index, term) returned; it takes effect at once and the
    /// change is done when that entry commits.
    pub fn propose_conf_change(
        &mut self,
        change: ConfChange,
    ) -> Result<(Index, Term), MembershipError> {
        if self.role != Role::Leader || self.transfer.is_some() || self.leaving {
            let leader = match self.transfer {
                Some(t) if self.role == Role::Leader => Some(t.target),
                _ => self.leader.filter(|&l| l != self.config.id),
            };
            return Err(MembershipError::NotLeader { leader });
        }
        if change == ConfChange::Demote(self.config.id) {
            // A leader that stops voting would lead a configuration it is not a voter of; hand leadership
            // over first.
            return Err(MembershipError::DemoteLeader);
        }
        if self.log.term(self.log.commit) != Some(self.term) {
            return Err(MembershipError::LeaderNotReady);
        }
        let current = self.membership_index();
        if current > self.log.commit {
            return Err(MembershipError::InProgress { index: current });
        }
        let next = self.membership().apply(change)?;
        if let ConfChange::Promote(id) = change {
            // A learner never heard from (or silent for an election timeout) may be dead: as a voter it
            // could leave the cluster without a majority for good ({1} plus a dead learner 2 promoted).
            let heard = self.progress.get(&id).map(|p| {
                (
                    p.match_index > 0,
                    p.silent_ticks <= self.config.election_ticks_max,
                )
            });
            match heard {
                Some((true, true)) => {}
                Some((true, false)) => {
                    return Err(MembershipError::LearnerSilent {
                        id,
                        why: "within an election timeout".into(),
                    });
                }
                _ => {
                    return Err(MembershipError::LearnerSilent {
                        id,
                        why: "yet".into(),
                    });
                }
            }
            if self.progress.get(&id).is_none_or(|p| p.recovering) {
                return Err(MembershipError::LearnerRecovering { id });
            }
            let match_index = self.progress.get(&id).map_or(0, |p| p.match_index);
            let last_index = self.log.last_index();
            if match_index + PROMOTE_MAX_LAG < last_index {
                return Err(MembershipError::LearnerBehind {
                    id,
                    match_index,
                    last_index,
                });
            }
        }
        let index = self.log.last_index() + 1;
        self.log.push(super::types::Entry {
            index,
            term: self.term,
            payload: super::types::Payload::Config(next.clone()),
        });
        self.set_membership(index, next);
        self.broadcast_pending = true;
        self.maybe_commit();
        Ok((index, self.term))
    }

    /// A configuration entry at `index` was appended to the log: it takes effect now.
    pub(super) fn set_membership(&mut self, index: Index, config: Membership) {
        self.confs.retain(|c| c.index < index);
        self.confs.push(ConfState {
            index,
            config: config.clone(),
        });
        self.conf_taken_effect();
    }

    /// Entries from `from` on were removed: configurations they set are undone.
    pub(super) fn revert_membership(&mut self, from: Index) {
        if self.membership_index() < from {
            return;
        }
        self.confs.retain(|c| c.index < from);
        if self.confs.is_empty() {
            self.confs.push(self.bootstrap.clone());
        }
        self.conf_taken_effect();
    }

    /// Resets the configuration history to the one a snapshot carries (`None`: the bootstrap one).
    pub(super) fn reset_membership(&mut self, conf: Option<ConfState>) {
        let conf = conf.unwrap_or_else(|| self.bootstrap.clone());
        if self.confs.len() == 1 && self.confs[0] == conf {
            return;
        }
        self.confs = vec![conf];
        self.conf_taken_effect();
    }

    /// The configuration in effect changed: report it, fix the leader's replication set, and note a
    /// membership this node gained or lost.
    fn conf_taken_effect(&mut self) {
        let ConfState { index, config } = self.confs.last().expect("never empty").clone();
        self.events.push(RaftEvent::ConfigChanged {
            index,
            config: config.clone(),
        });
        let id = self.config.id;
        if config.contains(id) {
            self.was_member = true;
            if self.removed_at.is_none_or(|at| index > at) {
                // A configuration after the one that excluded it includes it again: it is back.
                self.removed_at = None;
                self.removed_warned = None;
            }
        } else if self.was_member && self.removed_warned != Some(index) {
            self.removed_warned = Some(index);
            self.warnings.push(format!(
                "node {id} is no longer a member of the cluster (configuration {} at index {index})",
                describe(&config)
            ));
        }
        if !config.is_voter(id) && matches!(self.role, Role::Candidate | Role::PreCandidate) {
            // A campaign in a configuration that no longer lets this node vote ends here.
            let term = self.term;
            self.become_follower(term, None);
        }
        if self.role == Role::Leader {
            self.sync_progress();
            if let Some(t) = self.transfer
                && !config.is_voter(t.target)
            {
                self.transfer = None;
            }
        }
        self.conf_commit_reported = None;
        self.note_commit();
    }

    /// Leader: replicates to every member but itself, and to the nodes that changes still in its history
    /// removed, until they hold their removal and know it committed (see [`Raft::release_departed`]).
    pub(super) fn sync_progress(&mut self) {
        let id = self.config.id;
        let members: Vec<NodeId> = self.membership().members().filter(|&m| m != id).collect();
        // Every node a configuration still in the history removed (by the latest change, or an earlier one a
        // previous leader may not have told it about), with the index of the entry that removed it.
        for pair in self.confs.windows(2) {
            let (before, after) = (&pair[0].config, &pair[1]);
            for p in before
                .members()
                .filter(|&m| m != id && !after.config.contains(m) && !self.released.contains(&m))
            {
                self.departing.entry(p).or_insert(after.index);
            }
        }
        self.released.retain(|p| !members.contains(p));
        self.departing.retain(|p, _| !members.contains(p));
        let keep: Vec<NodeId> = members
            .into_iter()
            .chain(self.departing.keys().copied())
            .collect();
        self.progress.retain(|p, _| keep.contains(p));
        let next = self.log.last_index() + 1;
        for m in keep {
            self.progress
                .entry(m)
                .or_insert_with(|| Progress::new(next));
        }
    }

    /// Leader: once a removed node holds its removal entry and that entry is committed, one last heartbeat
    /// (anchored at what it holds, so it may commit that far) tells it so, and it is sent nothing more. A
    /// removed node silent for ten election timeouts is dropped too.
    pub(super) fn release_departed(&mut self, peer: NodeId) {
        let Some(&index) = self.departing.get(&peer) else {
            return;
        };
        let Some(p) = self.progress.get(&peer) else {
            self.departing.remove(&peer);
            return;
        };
        let silent = p.silent_ticks > self.config.election_ticks_max.saturating_mul(10);
        if p.match_index >= index && self.log.commit >= index {
            let hb = self.heartbeat_for(peer);
            self.messages
                .push((peer, super::types::Request::Append(hb)));
        } else if !silent {
            return;
        }
        self.departing.remove(&peer);
        self.released.insert(peer);
        self.progress.remove(&peer);
    }

    /// The commit index may have moved: report a newly committed configuration, let nodes a committed
    /// removal dropped hear of it, and have a leader that removed itself hand over.
    pub(super) fn note_commit(&mut self) {
        let ConfState { index, config } = self.confs.last().expect("never empty").clone();
        if index > self.log.commit || self.conf_commit_reported == Some(index) {
            return;
        }
        self.conf_commit_reported = Some(index);
        if index > 0 {
            self.events.push(RaftEvent::ConfigCommitted {
                index,
                config: config.clone(),
            });
        }
        let id = self.config.id;
        if !config.contains(id) && self.was_member {
            self.events.push(RaftEvent::Removed { index });
        }
        if self.role != Role::Leader {
            return;
        }
        let departing: Vec<NodeId> = self.departing.keys().copied().collect();
        for peer in departing {
            self.release_departed(peer);
        }
        if !config.is_voter(id) && !self.leaving {
            self.leaving = true;
            self.hand_over();
        }
    }

    /// A leader no longer in its committed configuration hands leadership to the voter with the highest match
    /// index (TimeoutNow once it is up to date; see `maybe_send_timeout_now`), then steps down.
    fn hand_over(&mut self) {
        let voters = self.membership().voters.clone();
        let target = voters
            .iter()
            .filter_map(|v| self.progress.get(v).map(|p| (p.match_index, *v)))
            .max()
            .map(|(_, v)| v);
        let Some(target) = target else {
            let term = self.term;
            self.become_follower(term, None);
            return;
        };
        if self.transfer_leadership(target).is_err() {
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}

/// `{1,2,4}`, or `{1,2,4} and learners {6}`: a configuration for a log line.
pub fn describe(config: &Membership) -> String {
    let list = |s: &std::collections::BTreeSet<NodeId>| {
        s.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    if config.learners.is_empty() {
        format!("{{{}}}", list(&config.voters))
    } else {
        format!(
            "{{{}}} and learners {{{}}}",
            list(&config.voters),
            list(&config.learners)
        )
    }
}
