//! What any node kind can report of one node ([`BriefStatus`]): the fields the live invariants and the picture
//! judge a kind by when it does not report squall's full status. Pure data, below the state that carries it.

use serde::{Deserialize, Serialize};
use squall_node::rpc::NodeStatus;

/// What any node kind can report of one node: each field `None` when its kind cannot report it (shown as `—`,
/// never guessed). `state::Event::Brief` carries it; a full [`NodeStatus`] yields one too ([`BriefStatus::of`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BriefStatus {
    /// Leader, follower, candidate…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<squall_node::raft::Role>,
    /// The node's current term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// The leader the node knows of: `Some(None)` when it knows of none, `None` when its kind cannot say.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub leader: Option<Option<u64>>,
    /// Highest index the node knows committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<u64>,
    /// Highest index applied to its state machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// The process the report came from (the node's own word, else the supervisor's), which tells one
    /// process's reports from the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl BriefStatus {
    /// The fields of a full status.
    pub fn of(status: &NodeStatus) -> BriefStatus {
        BriefStatus {
            role: Some(status.core.role),
            term: Some(status.core.term),
            leader: Some(status.core.leader),
            commit: Some(status.core.commit_index),
            applied: Some(status.applied_index),
            pid: Some(status.pid),
        }
    }

    /// The term it leads in, when it says it leads and its term is known.
    pub fn leads(&self) -> Option<u64> {
        (self.role == Some(squall_node::raft::Role::Leader))
            .then_some(self.term)
            .flatten()
    }
}

/// `Option<Option<T>>` in JSON: the field absent is `None`, `null` is `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
