//! The cluster's configuration as the dashboard shows it: who votes, who only learns, who was removed, folded
//! from the nodes' statuses and squall's membership steps ([`super::Event::Membership`]).

use squall_node::rpc::NodeStatus;

use super::cluster::ClusterState;
use super::config::{ConfigView, MemberRole};
use super::event::MembershipStep;
use super::feed::FeedKind;

impl ClusterState {
    /// Node `id`'s place in the configuration; `None` while no configuration is known (event logs from before
    /// membership changes).
    pub fn membership(&self, id: u64) -> Option<MemberRole> {
        let n = self.nodes.get(&id)?;
        let Some(config) = self.config.as_ref() else {
            // A kind whose status has no configuration may still say the node is a learner (etcd).
            return (!n.removed && n.live_brief().is_some_and(|b| b.learner))
                .then_some(MemberRole::Learner);
        };
        Some(if config.voters.contains(&id) {
            MemberRole::Voter
        } else if config.learners.contains(&id) {
            MemberRole::Learner
        } else if n.removed || n.was_member {
            MemberRole::Removed
        } else {
            MemberRole::Joining
        })
    }

    /// The console's `status` line for node `n`: [`super::describe_node`] and its place in the configuration.
    /// `changes_membership`: the node kind has a membership driver. When its status carries no configuration
    /// (etcd), a node that reports (with a role or, knowing no leader, without), is no learner and was not
    /// removed is a voter, and says so as a learner says `member learner`.
    pub fn status_line(&self, n: &super::NodeView, changes_membership: bool) -> String {
        let line = super::describe_node(n);
        match self.membership(n.id) {
            // Out of the leader's latest configuration, which has not committed: not removed yet.
            Some(MemberRole::Removed)
                if !n.removed && self.config.as_ref().is_some_and(|c| !c.committed) =>
            {
                format!(
                    "{line} member removing (the configuration without it is not committed yet)"
                )
            }
            Some(m) => format!("{line} member {}", m.as_str()),
            // A kind whose status has no configuration (etcd): squall's own removal says it.
            None if n.removed => format!("{line} member removed"),
            // Whatever role it reports: a partitioned etcd member knows no leader, so no role (tester 9's
            // finding 8), and is a member all the same.
            None if changes_membership && n.live_brief().is_some() => {
                format!("{line} member {}", MemberRole::Voter.as_str())
            }
            None => line,
        }
    }

    /// Whether the node table shows node `id`: every node but a removed one whose process has stopped.
    pub fn shows_node(&self, id: u64) -> bool {
        let Some(n) = self.nodes.get(&id) else {
            return false;
        };
        // A kind whose status has no configuration (etcd) knows a removal from squall's step alone.
        let removed = match self.membership(id) {
            Some(role) => role == MemberRole::Removed,
            None => n.removed,
        };
        !removed || n.process.is_alive()
    }

    /// The ids the dashboard shows, ascending: every node but a removed one whose process has stopped (see
    /// [`ClusterState::shows_node`]). The selection, the role lanes and the links matrix use these.
    pub fn shown_ids(&self) -> Vec<u64> {
        self.nodes
            .keys()
            .copied()
            .filter(|&id| self.shows_node(id))
            .collect()
    }

    /// Whether node `id` is out of the cluster for good: removed from the configuration and its process
    /// stopped. Its exit is then the end of a removal, not a fault.
    pub fn is_gone(&self, id: u64) -> bool {
        self.nodes.contains_key(&id) && !self.shows_node(id)
    }

    /// Takes the configuration from a status when it comes from the leader, or when no leader is known and it
    /// is newer than the one held. Called after the leader was re-derived.
    pub(super) fn observe_config(&mut self, node: u64, status: &NodeStatus) {
        let c = &status.core;
        if c.config.voters.is_empty() {
            return;
        }
        let from_leader = self.leader == Some(node);
        let newer = self
            .config
            .as_ref()
            .is_none_or(|k| c.config_index > k.index);
        if !(from_leader || (self.leader.is_none() && newer)) {
            return;
        }
        let view = ConfigView {
            voters: c.config.voters.clone(),
            learners: c.config.learners.clone(),
            index: c.config_index,
            committed: c.config_committed,
        };
        for id in view.voters.iter().chain(view.learners.iter()) {
            if let Some(n) = self.nodes.get_mut(id) {
                n.was_member = true;
                n.removed = false;
            }
        }
        self.config = Some(view);
        self.refresh_faults();
    }

    /// A node said it is no longer a member (its committed configuration excludes it).
    pub(super) fn on_removed(&mut self, happened: u64, node: u64, index: u64) {
        let n = self.node_mut(node);
        let first = !n.removed;
        n.removed = true;
        if first {
            self.push(
                happened,
                Some(node),
                FeedKind::Role,
                format!("n{node} is no longer a member (configuration at {index})"),
            );
        }
    }

    /// One of squall's membership steps: a feed line, and the node marked when it was removed.
    pub(super) fn on_membership(&mut self, at: u64, node: u64, step: MembershipStep, text: &str) {
        if step == MembershipStep::Removed {
            self.node_mut(node).removed = true;
            self.refresh_faults();
        }
        let kind = match step {
            MembershipStep::Waiting | MembershipStep::Failed => FeedKind::Error,
            _ => FeedKind::Fault,
        };
        self.push(at, Some(node), kind, text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Event, Stamped};

    #[test]
    fn membership_steps_are_feed_lines_and_survive_the_event_log() {
        let mut s = super::super::fixture::sample_state(3);
        let e = Stamped::new(
            s.now_ms + 5,
            Event::Membership {
                node: 4,
                step: MembershipStep::Learner,
                text: "n4 joins as a learner".into(),
            },
        );
        // Replay reads events back from JSON lines: the step must round-trip.
        let json = serde_json::to_string(&e).unwrap();
        let back: Stamped = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        s.apply(&back);
        let last = s.feed.back().unwrap();
        assert_eq!(last.text, "n4 joins as a learner");
        assert_eq!(last.kind, FeedKind::Fault);
        // Not in the configuration yet: joining.
        assert_eq!(s.membership(4), Some(MemberRole::Joining));
        s.apply(&Stamped::new(
            s.now_ms + 1,
            Event::Membership {
                node: 4,
                step: MembershipStep::Failed,
                text: "add node 4 failed: no".into(),
            },
        ));
        assert_eq!(s.feed.back().unwrap().kind, FeedKind::Error);
    }

    #[test]
    fn a_node_dropped_from_the_leaders_configuration_is_removed() {
        let mut s = super::super::fixture::sample_state(5);
        assert_eq!(s.membership(3), Some(MemberRole::Voter));
        assert_eq!(
            s.config.as_ref().map(ConfigView::text).as_deref(),
            Some("{1,2,3,4,5}")
        );
        let mut leader = s.nodes[&4].status.clone().unwrap();
        leader.core.config.voters.remove(&3);
        leader.core.config.learners.insert(3);
        leader.core.config_index = 1000;
        s.apply(&Stamped::new(
            s.now_ms,
            Event::Status {
                node: 4,
                status: leader.clone(),
            },
        ));
        assert_eq!(s.membership(3), Some(MemberRole::Learner));
        assert_eq!(s.config.as_ref().unwrap().text(), "{1,2,4,5} l{3}");
        leader.core.config.learners.clear();
        s.apply(&Stamped::new(
            s.now_ms,
            Event::Status {
                node: 4,
                status: leader,
            },
        ));
        assert_eq!(s.membership(3), Some(MemberRole::Removed));
        // Still running: its row stays.
        assert!(s.shows_node(3));
    }

    #[test]
    fn a_node_saying_it_was_removed_is_marked_once() {
        let mut s = super::super::fixture::sample_state(3);
        let before = s.feed.len();
        for _ in 0..2 {
            s.on_removed(s.now_ms, 2, 812);
        }
        assert_eq!(s.feed.len(), before + 1);
        assert!(
            s.feed
                .back()
                .unwrap()
                .text
                .contains("n2 is no longer a member")
        );
        assert_eq!(
            s.membership(2),
            Some(MemberRole::Voter),
            "the leader's word wins"
        );
        assert!(s.nodes[&2].removed);
    }
}
