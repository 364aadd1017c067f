//! Elections: campaigning (with an optional pre-vote round), answering (pre-)votes under the leader lease,
//! counting votes, becoming leader, and TimeoutNow.

use super::Raft;
use super::types::{
    Entry, NodeId, Payload, RaftEvent, Request, RequestVote, RequestVoteReply, Role, Term,
    TimeoutNow,
};

impl Raft {
    /// A message from the leader of `term` (not older than ours): follow it and restart the election timer.
    pub(super) fn follow_leader(&mut self, term: Term, leader: NodeId) {
        if term > self.term || self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(term, Some(leader));
        } else {
            self.reset_election_timer();
        }
        self.leader_contact = 0;
    }

    /// Starts a campaign: a pre-vote round when `pre_vote`, else a real election in the next term.
    /// `transfer` marks a campaign ordered by TimeoutNow, which voters honour despite their lease.
    pub(super) fn start_election(&mut self, pre_vote: bool, transfer: bool) {
        let campaign_term = if pre_vote {
            self.set_role(Role::PreCandidate);
            self.term + 1
        } else {
            self.set_term(self.term + 1);
            self.vote = Some(self.config.id);
            self.set_role(Role::Candidate);
            self.term
        };
        self.set_leader(None);
        self.campaign_transfer = transfer;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_timer();
        self.campaigns += 1;
        self.events.push(RaftEvent::ElectionStarted {
            term: campaign_term,
            pre_vote,
            round: self.campaigns,
        });
        if self.tally_votes() {
            return;
        }
        let req = RequestVote {
            term: campaign_term,
            candidate: self.config.id,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
            transfer,
            round: self.campaigns,
        };
        let id = self.config.id;
        let voters: Vec<NodeId> = self.membership().voters.iter().copied().collect();
        for peer in voters.into_iter().filter(|&v| v != id) {
            self.messages.push((peer, Request::Vote(req.clone())));
        }
    }

    /// Acts on the votes counted so far; returns true when the campaign ended.
    fn tally_votes(&mut self) -> bool {
        // Only the voters of this node's configuration count (a learner's answer never does).
        let config = self.membership();
        let counted = |want: bool| {
            self.votes
                .iter()
                .filter(|&(v, &g)| g == want && config.is_voter(*v))
                .count()
        };
        let (granted, refused) = (counted(true), counted(false));
        let quorum = config.quorum();
        if quorum == 0 {
            return false;
        }
        if granted >= quorum {
            if self.role == Role::PreCandidate {
                self.start_election(false, self.campaign_transfer);
            } else {
                self.become_leader();
            }
            true
        } else if refused >= quorum {
            self.become_follower(self.term, None);
            true
        } else {
            false
        }
    }

    /// Whether this node still trusts a live leader (CheckQuorum's lease) and so ignores campaigns.
    fn in_lease(&self) -> bool {
        // Frozen (teaching mode), no leader sends heartbeats on its own, so none is heard "recently": a
        // campaign is answered on terms and logs alone (see the `teach` module).
        self.config.check_quorum
            && !self.frozen
            && match self.leader {
                Some(l) if l == self.config.id => self.role == Role::Leader,
                Some(_) => self.leader_contact < self.config.election_ticks_min,
                None => false,
            }
    }

    /// Answers a RequestVote or pre-vote.
    pub fn handle_request_vote(&mut self, req: RequestVote) -> RequestVoteReply {
        let voter = self.config.id;
        // Granted or not, a candidate that this node's committed configuration excludes is told so.
        let removed_by = self.committed_conf_excluding(req.candidate);
        let refuse = |term: Term| RequestVoteReply {
            term,
            voter,
            granted: false,
            pre_vote: req.pre_vote,
            removed_by: removed_by.clone(),
        };
        if req.pre_vote && req.term == 0 {
            // A recovering peer's probe (no campaign asks for term 0): see the `recovery` module.
            let (term, granted) = self.answer_probe(&req);
            return RequestVoteReply {
                granted,
                ..refuse(term)
            };
        }
        if self.recovery.is_some() {
            // It may have voted in this term (or a later one) before it lost data, and may lack entries it
            // acknowledged: it grants only what the `recovery` module's rule 4 allows.
            if req.term > self.term && !req.transfer && self.in_lease() {
                return refuse(self.term);
            }
            let had_voted = self.vote.is_some() && self.term == req.term;
            if !self.recovering_vote(&req) {
                // The refusal carries `T`, the highest term it learned from every other voter, when that is
                // higher: a candidate of a term up to `T` is never granted, and may hear of `T` from no one
                // else (simulation seed 1885), so it must campaign above it. Adopting a term a voter reached
                // changes nothing else there.
                return refuse(self.term.max(self.known_term().unwrap_or(0)));
            }
            if !req.pre_vote && !had_voted {
                self.events.push(RaftEvent::VoteGranted {
                    candidate: req.candidate,
                    term: self.term,
                    pre_vote: false,
                    round: req.round,
                });
            }
            return RequestVoteReply {
                term: if req.pre_vote { req.term } else { self.term },
                voter,
                granted: true,
                pre_vote: req.pre_vote,
                removed_by,
            };
        }
        if req.term > self.term && !req.transfer && self.in_lease() {
            // A leader we heard from recently is alive: a node returning from a partition must not depose it.
            return refuse(self.term);
        }
        if req.term < self.term {
            return refuse(self.term);
        }
        let log_ok = self
            .log
            .is_up_to_date(req.last_log_term, req.last_log_index);
        if req.pre_vote {
            // A pre-vote changes nothing here; it only says whether a real vote would be granted.
            let granted = log_ok && req.term > self.term;
            if !granted {
                return refuse(self.term);
            }
            self.events.push(RaftEvent::VoteGranted {
                candidate: req.candidate,
                term: req.term,
                pre_vote: true,
                round: req.round,
            });
            return RequestVoteReply {
                term: req.term,
                voter: self.config.id,
                granted: true,
                pre_vote: true,
                removed_by,
            };
        }
        if req.term > self.term {
            self.become_follower(req.term, None);
        }
        let can_vote = self.vote.is_none_or(|v| v == req.candidate);
        if !(can_vote && log_ok) {
            return refuse(self.term);
        }
        if self.vote.is_none() {
            self.events.push(RaftEvent::VoteGranted {
                candidate: req.candidate,
                term: self.term,
                pre_vote: false,
                round: req.round,
            });
        }
        self.vote = Some(req.candidate);
        self.reset_election_timer();
        RequestVoteReply {
            term: self.term,
            voter: self.config.id,
            granted: true,
            pre_vote: false,
            removed_by,
        }
    }

    /// Counts a vote reply.
    pub(super) fn handle_vote_reply(&mut self, from: NodeId, reply: RequestVoteReply) {
        if let Some(conf) = &reply.removed_by
            && self.learn_removed(from, conf)
        {
            return;
        }
        if self.recovery.is_some() {
            // A recovering node never campaigns: every vote answer it gets answers its probe.
            self.handle_probe_reply(from, reply.term, reply.granted);
            return;
        }
        if reply.pre_vote {
            if self.role != Role::PreCandidate {
                return;
            }
            if reply.granted {
                if reply.term != self.term + 1 {
                    return;
                }
            } else if reply.term > self.term {
                self.become_follower(reply.term, None);
                return;
            }
        } else {
            if reply.term > self.term {
                self.become_follower(reply.term, None);
                return;
            }
            if self.role != Role::Candidate || reply.term != self.term {
                return;
            }
        }
        self.votes.insert(from, reply.granted);
        self.tally_votes();
    }

    /// Wins the election: take the lead and append this term's no-op entry.
    pub(super) fn become_leader(&mut self) {
        self.set_role(Role::Leader);
        self.set_leader(Some(self.config.id));
        self.votes.clear();
        self.campaign_transfer = false;
        self.transfer = None;
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        let next = self.log.last_index() + 1;
        self.progress.clear();
        self.sync_progress();
        self.log.push(Entry {
            index: next,
            term: self.term,
            payload: Payload::Noop,
        });
        if self.sole_voter() {
            self.maybe_commit();
        }
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for p in peers {
            self.send_append(p);
        }
    }

    /// The leader asks this node to campaign at once (leadership transfer).
    pub fn handle_timeout_now(&mut self, req: TimeoutNow) {
        if req.term < self.term
            || self.role == Role::Leader
            || !self.is_voter()
            || self.recovery.is_some()
        {
            return;
        }
        if req.term > self.term {
            self.become_follower(req.term, Some(req.leader));
        }
        self.start_election(false, true);
    }
}
