//! A cluster configuration as the dashboard names it: who votes, who only learns, who was removed. Pure data;
//! [`super::membership`] folds it from the nodes' statuses and squall's membership steps.

use std::collections::BTreeSet;

/// The configuration as the leader knows it (else the most recent one a live node reported).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigView {
    /// Voting members.
    pub voters: BTreeSet<u64>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<u64>,
    /// Log index of the entry that set it (0: the bootstrap configuration).
    pub index: u64,
    /// Whether that entry is committed (on the node it was learned from).
    pub committed: bool,
}

impl ConfigView {
    /// `{1,2,3,4,6}`, with ` l{6}` when there are learners.
    pub fn text(&self) -> String {
        let set = |s: &BTreeSet<u64>| {
            let v: Vec<String> = s.iter().map(u64::to_string).collect();
            format!("{{{}}}", v.join(","))
        };
        if self.learners.is_empty() {
            set(&self.voters)
        } else {
            format!("{} l{}", set(&self.voters), set(&self.learners))
        }
    }
}

/// A node's place in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Votes in elections and counts toward commitment.
    Voter,
    /// Receives the log; never votes or counts toward a quorum.
    Learner,
    /// Was a member and is no longer (or says so itself).
    Removed,
    /// Started by `add`, not yet in the configuration.
    Joining,
}

impl MemberRole {
    /// `voter`, `learner`, `removed`, `joining`: as `squall status --json` and the node table name it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "voter",
            MemberRole::Learner => "learner",
            MemberRole::Removed => "removed",
            MemberRole::Joining => "joining",
        }
    }
}

/// A node's place in a configuration read from one status (for `squall status --json`, which has no state):
/// `None` when the status carries no configuration (a node from before membership changes).
pub fn role_in(config: &squall_node::raft::types::Membership, id: u64) -> Option<MemberRole> {
    if config.voters.is_empty() {
        None
    } else if config.voters.contains(&id) {
        Some(MemberRole::Voter)
    } else if config.learners.contains(&id) {
        Some(MemberRole::Learner)
    } else {
        Some(MemberRole::Removed)
    }
}
