//! Teaching mode: time stands still for the node while a person steps an election by hand.
//!
//! Frozen, the core's *active* timers stop: a follower's election timer never runs out, a leader sends no
//! heartbeats and never runs CheckQuorum's step-down, a leader that handed over sends no further TimeoutNow,
//! a recovering node sends no probes (but [`Raft::fire_election_timeout`] sends it a round). Messages still flow and are handled exactly as usual (a vote request is
//! answered, an AppendEntries appended, a new leader still sends its first AppendEntries at once), so what a
//! person sees is Raft, only slower. CheckQuorum's lease (a follower that heard from its leader within the
//! minimum election timeout refuses campaigns; Raft dissertation §9.6) is not in force while frozen: it guards
//! against a node that cannot hear a leader the others still hear, and a frozen leader sends nothing on its
//! own, so no follower hears it "recently"; the person's `timeout N` stands for the election timeout that
//! would have passed. Votes are then decided on terms and logs alone, as in the Raft paper (§5.2, §5.4.1).
//!
//! By hand, [`Raft::fire_election_timeout`] is what the election timer does when it runs out (Raft §5.2;
//! with pre-vote, dissertation §9.6), and [`Raft::send_heartbeats`] is what the heartbeat timer does on a leader.

use super::Raft;
use super::types::{Role, Term};

/// Why a hand-made timer event did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TeachRefused {
    /// A leader has no election timer (its election timeout is CheckQuorum's round).
    #[error("node {id} leads term {term}: a leader has no election timer to fire")]
    Leads {
        /// This node.
        id: u64,
        /// Its term.
        term: Term,
    },
    /// Heartbeats come only from a leader.
    #[error(
        "node {id} does not lead (it is {role} in term {term}); only a leader sends heartbeats"
    )]
    NotLeader {
        /// This node.
        id: u64,
        /// Its role, as the status names it.
        role: &'static str,
        /// Its term.
        term: Term,
    },
    /// The node never campaigns: a learner, removed, waiting to be added, or recovering from possible data
    /// loss (it asks the others for their term instead).
    #[error("node {id} never campaigns now: {why}")]
    CannotCampaign {
        /// This node.
        id: u64,
        /// What keeps it from campaigning.
        why: &'static str,
    },
}

/// Why `timeout N` of a recovering node starts no campaign, and what it did instead.
const RECOVERING_PROBED: &str = "it is recovering from possible data loss; instead it asked the other \
     members for their terms now (one round of probes, as its timer does; frozen, only `timeout` sends one), \
     and it votes again once it has recovered";

/// What firing the election timer started: a pre-vote round for `term`, or an election in `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Campaign {
    /// The term campaigned for.
    pub term: Term,
    /// A pre-vote round (the real election starts once a majority grants it).
    pub pre_vote: bool,
}

impl Raft {
    /// Stops (`true`) or restarts (`false`) the node's own timers; see the module docs. Thawing restarts the
    /// election timer from a fresh random timeout, so nodes do not all time out at once, and a leader's
    /// heartbeat and CheckQuorum rounds from zero.
    pub fn set_frozen(&mut self, frozen: bool) {
        if self.frozen == frozen {
            return;
        }
        self.frozen = frozen;
        if !frozen {
            if self.role == Role::Leader {
                self.heartbeat_elapsed = 0;
                self.election_elapsed = 0;
                // Followers were not heard from while frozen only because nothing was sent to them.
                for p in self.progress.values_mut() {
                    p.recent_active = true;
                }
            } else {
                self.reset_election_timer();
            }
        }
    }

    /// Whether the node's timers are stopped (teaching mode).
    pub fn frozen(&self) -> bool {
        self.frozen
    }

    /// A tick while frozen: only the lease's passive clock moves.
    pub(super) fn tick_frozen(&mut self) {
        if self.role != Role::Leader {
            self.leader_contact = self.leader_contact.saturating_add(1);
        }
    }

    /// Ticks until this node's election timer runs out (`None` on a leader, which has none, and on a node
    /// that never campaigns now). Frozen, it stays where it stopped.
    pub fn election_ticks_left(&self) -> Option<u32> {
        if self.role == Role::Leader || self.campaign_refusal().is_some() {
            return None;
        }
        Some(
            self.election_deadline()
                .saturating_sub(self.election_elapsed),
        )
    }

    /// What keeps a non-leader from campaigning when its timer runs out, if anything.
    fn campaign_refusal(&self) -> Option<&'static str> {
        if self.recovery.is_some() {
            Some(
                "it is recovering from possible data loss and asks the other voters for their term first",
            )
        } else if !((self.is_voter() && self.removed_at.is_none()) || self.finishing_own_removal())
        {
            Some(
                "it is not a voter of its configuration (a learner, removed, or waiting to be added)",
            )
        } else {
            None
        }
    }

    /// The election timer runs out now, frozen or not: a follower or candidate starts a pre-vote round
    /// (with pre-vote on) or an election in the next term, exactly as [`Raft::tick`] would. Refused on a
    /// leader and on a node that never campaigns now.
    pub fn fire_election_timeout(&mut self) -> Result<Campaign, TeachRefused> {
        let id = self.config.id;
        if self.role == Role::Leader {
            return Err(TeachRefused::Leads {
                id,
                term: self.term,
            });
        }
        if self.recovery.is_some() {
            // What its timer does when it runs out while it recovers: a round of probes for the other voters'
            // terms. Frozen, that timer stands still, so without this a wiped node would never recover while
            // a person steps the cluster (tester finding F16), though the refusal says it asks.
            self.probe_now();
            return Err(TeachRefused::CannotCampaign {
                id,
                why: RECOVERING_PROBED,
            });
        }
        if let Some(why) = self.campaign_refusal() {
            return Err(TeachRefused::CannotCampaign { id, why });
        }
        let pre_vote = self.config.pre_vote;
        self.start_election(pre_vote, false);
        // A pre-vote round won at once (a sole voter) went on to the election.
        Ok(Campaign {
            term: if self.role == Role::PreCandidate {
                self.term + 1
            } else {
                self.term
            },
            pre_vote: self.role == Role::PreCandidate,
        })
    }

    /// The heartbeat timer runs out now on a leader: heartbeats (or the probe or entries each follower is
    /// due) go to every follower, and the heartbeat interval starts again. Returns how many followers were
    /// sent one. Refused on a node that does not lead.
    pub fn send_heartbeats(&mut self) -> Result<usize, TeachRefused> {
        if self.role != Role::Leader {
            return Err(TeachRefused::NotLeader {
                id: self.config.id,
                role: self.role.as_str(),
                term: self.term,
            });
        }
        self.heartbeat_elapsed = 0;
        self.broadcast_heartbeat();
        Ok(self.progress.len())
    }
}
