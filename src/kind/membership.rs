//! The membership seam: single-server configuration changes (add a learner, promote it, remove a member, demote
//! a voter) asked of the leader through the kind's `[membership]` driver. The orchestrator's `add`, `remove`,
//! `replace`, `promote` and `demote` decide the order of the steps and the processes around them
//! (`cluster/membership.rs`); a driver only carries one step to the node and says what came of it, in terms
//! that do not depend on the implementation.

use std::net::SocketAddr;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use squall_node::raft::types::{ConfChange, Membership};
use squall_node::rpc::MembershipError;
use squall_node::transport::{connect_control, deadline};

/// One single-server change (Ongaro's thesis, §4.1: one server at a time, so any two majorities of the old and
/// new configurations overlap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Add node `id` as a learner (it receives the log but does not vote).
    AddLearner(u64),
    /// Make learner `id` a voter.
    Promote(u64),
    /// Take node `id` out of the configuration.
    Remove(u64),
    /// Make voter `id` a learner.
    Demote(u64),
}

impl MemberChange {
    /// The node the change is about.
    pub fn node(self) -> u64 {
        match self {
            MemberChange::AddLearner(n)
            | MemberChange::Promote(n)
            | MemberChange::Remove(n)
            | MemberChange::Demote(n) => n,
        }
    }
}

/// What one try at a change came to, as the orchestrator acts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeAnswer {
    /// It committed; the configuration after it and the entry's index, when the driver knows them.
    Committed(Option<(Membership, u64)>),
    /// The configuration already has it (an earlier try whose answer was lost, or a leader since): done once
    /// that configuration is committed.
    Already,
    /// The node asked does not know where node `id` is reached: tell it ([`MembershipDriver::tell_peer`]) and
    /// try again.
    NoAddress(u64),
    /// The call timed out: the change may commit later; ask who leads now and try again.
    Timeout,
    /// Not now (not the leader, a change under way, a learner behind): try again; why, in words.
    Wait(String),
    /// It cannot happen (the last voter, the leader demoted); why, in words.
    Refused(String),
}

/// Carries membership changes to a kind's nodes. One driver per cluster; every call has its own deadline.
pub trait MembershipDriver: Send + Sync {
    /// Asks the node whose membership port is `addr` (the leader, as far as squall knows) to make `change`.
    /// `peer` is where the cluster's members reach the node the change is about (its inbound proxy): always
    /// for an add, and for every change of a per-destination kind, whose members store one address per
    /// member (etcd's peer URL, by which a member added but not started yet is found); else `None`.
    fn change(
        &self,
        addr: SocketAddr,
        change: MemberChange,
        peer: Option<SocketAddr>,
    ) -> BoxFuture<'_, ChangeAnswer>;

    /// Whether a node joins the configuration before its process starts: the learner step is made first, and
    /// the node is started only once it committed (etcd refuses a joining member the cluster does not list).
    /// The default, squall's order: the node starts, then asks to be added.
    fn adds_before_start(&self) -> bool {
        false
    }

    /// Why this implementation can never make `change` (etcd 3.4 has no demote), if it cannot: the command
    /// is refused before anything is done.
    fn cannot(&self, change: MemberChange) -> Option<String> {
        let _ = change;
        None
    }

    /// The configuration as the node whose membership port is `addr` knows it, for a kind whose status has
    /// no configuration (etcd's member list); `None` when it cannot say. The default cannot.
    fn config(&self, addr: SocketAddr) -> BoxFuture<'_, Option<Membership>> {
        let _ = addr;
        futures::future::ready(None).boxed()
    }

    /// Tells the node whose membership port is `addr` that node `id` is reached at `peer` (a per-sender kind
    /// whose members learn a new peer's address at run time). The default has nothing to tell.
    fn tell_peer(
        &self,
        addr: SocketAddr,
        id: u64,
        peer: SocketAddr,
    ) -> BoxFuture<'_, Result<(), String>> {
        let _ = (addr, id, peer);
        futures::future::ready(Ok(())).boxed()
    }
}

/// squall's node: `change_membership` and `set_peer_addr` on its control RPC.
pub struct SquallMembership {
    /// How long a change may take (the node answers once it commits).
    pub timeout: Duration,
}

impl MembershipDriver for SquallMembership {
    fn change(
        &self,
        addr: SocketAddr,
        change: MemberChange,
        _peer: Option<SocketAddr>,
    ) -> BoxFuture<'_, ChangeAnswer> {
        async move {
            let client = match connect_control(addr, Duration::from_secs(1)).await {
                Ok(c) => c,
                Err(e) => {
                    return ChangeAnswer::Wait(format!("cannot reach the node at {addr}: {e}"));
                }
            };
            let change = match change {
                MemberChange::AddLearner(n) => ConfChange::AddLearner(n),
                MemberChange::Promote(n) => ConfChange::Promote(n),
                MemberChange::Remove(n) => ConfChange::Remove(n),
                MemberChange::Demote(n) => ConfChange::Demote(n),
            };
            let answer = match client
                .change_membership(deadline(self.timeout + Duration::from_secs(1)), change)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    return ChangeAnswer::Wait(format!("the node at {addr} did not answer: {e}"));
                }
            };
            squall_answer(change, answer)
        }
        .boxed()
    }

    fn tell_peer(
        &self,
        addr: SocketAddr,
        id: u64,
        peer: SocketAddr,
    ) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let client = connect_control(addr, Duration::from_secs(1))
                .await
                .map_err(|e| format!("cannot reach it at {addr}: {e}"))?;
            client
                .set_peer_addr(deadline(Duration::from_secs(2)), id, peer)
                .await
                .map_err(|e| format!("it did not answer: {e}"))?
        }
        .boxed()
    }
}

/// squall's node's answer, in the driver's terms.
fn squall_answer(
    change: ConfChange,
    answer: Result<squall_node::rpc::ConfChangeDone, MembershipError>,
) -> ChangeAnswer {
    match (answer, change) {
        (Ok(done), _) => ChangeAnswer::Committed(Some((done.config, done.index))),
        (Err(MembershipError::AlreadyMember { .. }), ConfChange::AddLearner(_))
        | (Err(MembershipError::NotLearner { .. }), ConfChange::Promote(_))
        | (Err(MembershipError::NotMember { .. }), ConfChange::Remove(_))
        | (Err(MembershipError::NotVoter { .. }), ConfChange::Demote(_)) => ChangeAnswer::Already,
        (Err(MembershipError::NoAddress { id }), _) => ChangeAnswer::NoAddress(id),
        (Err(MembershipError::Timeout), _) => ChangeAnswer::Timeout,
        (
            Err(
                e @ (MembershipError::NotLeader { .. }
                | MembershipError::InProgress { .. }
                | MembershipError::LeaderNotReady
                | MembershipError::LearnerBehind { .. }
                | MembershipError::LearnerSilent { .. }
                | MembershipError::LearnerRecovering { .. }),
            ),
            _,
        ) => ChangeAnswer::Wait(e.to_string()),
        (
            Err(
                e @ (MembershipError::LastVoter
                | MembershipError::DemoteLeader
                | MembershipError::NotVoter { .. }
                | MembershipError::NotMember { .. }
                | MembershipError::NotLearner { .. }
                | MembershipError::AlreadyMember { .. }
                | MembershipError::Unsupported { .. }),
            ),
            _,
        ) => ChangeAnswer::Refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squall_s_answers_map_to_what_the_orchestrator_does() {
        let c = ConfChange::AddLearner(4);
        assert_eq!(
            squall_answer(c, Err(MembershipError::AlreadyMember { id: 4 })),
            ChangeAnswer::Already
        );
        assert_eq!(
            squall_answer(
                ConfChange::Remove(4),
                Err(MembershipError::AlreadyMember { id: 4 })
            ),
            ChangeAnswer::Refused(MembershipError::AlreadyMember { id: 4 }.to_string())
        );
        assert_eq!(
            squall_answer(c, Err(MembershipError::NoAddress { id: 4 })),
            ChangeAnswer::NoAddress(4)
        );
        assert_eq!(
            squall_answer(c, Err(MembershipError::Timeout)),
            ChangeAnswer::Timeout
        );
        assert!(matches!(
            squall_answer(c, Err(MembershipError::LeaderNotReady)),
            ChangeAnswer::Wait(_)
        ));
        assert!(matches!(
            squall_answer(ConfChange::Remove(1), Err(MembershipError::LastVoter)),
            ChangeAnswer::Refused(_)
        ));
    }
}
