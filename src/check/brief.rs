//! What any node kind can report of one node ([`BriefStatus`]): the fields the live invariants and the picture
//! judge a kind by when it does not report squall's full status. Pure data, below the state that carries it.

use std::collections::BTreeMap;

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
    /// The node says it is a learner (a non-voting member): etcd's `isLearner`. Its role (a follower) is
    /// shown as `learner`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learner: bool,
    /// The messages the node received and sent, by type, from a kind whose driver counts them (a Maelstrom
    /// node's bridge); `None` for a kind that does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageCounts>,
}

/// Messages one node process received and sent, by message type (a Maelstrom body's `type`), counted since
/// the process started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCounts {
    /// Messages written to the node, by type.
    #[serde(default, rename = "in")]
    pub received: BTreeMap<String, u64>,
    /// Messages the node wrote, by type.
    #[serde(default, rename = "out")]
    pub sent: BTreeMap<String, u64>,
}

impl MessageCounts {
    /// Messages received in all.
    pub fn total_in(&self) -> u64 {
        self.received.values().sum()
    }

    /// Messages sent in all.
    pub fn total_out(&self) -> u64 {
        self.sent.values().sum()
    }

    /// Every type with its (received, sent) counts, the busiest first (ties by name).
    pub fn by_type(&self) -> Vec<(&str, u64, u64)> {
        let mut out: Vec<(&str, u64, u64)> = self
            .received
            .keys()
            .chain(self.sent.keys())
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|t| {
                let get = |m: &BTreeMap<String, u64>| m.get(t).copied().unwrap_or(0);
                (t, get(&self.received), get(&self.sent))
            })
            .collect();
        out.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(b.0)));
        out
    }

    /// In words: `in 12 out 11: read 5/5, write 4/4, init 1/0` (each type's received/sent, busiest first).
    pub fn describe(&self) -> String {
        let types: Vec<String> = self
            .by_type()
            .into_iter()
            .map(|(t, i, o)| format!("{t} {i}/{o}"))
            .collect();
        let mut out = format!("in {} out {}", self.total_in(), self.total_out());
        if !types.is_empty() {
            out.push_str(": ");
            out.push_str(&types.join(", "));
        }
        out
    }
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
            learner: false,
            messages: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_read_busiest_type_first_with_in_and_out() {
        let mut c = MessageCounts::default();
        assert_eq!(c.describe(), "in 0 out 0");
        c.received.insert("init".into(), 1);
        c.sent.insert("init_ok".into(), 1);
        c.received.insert("read".into(), 5);
        c.sent.insert("read_ok".into(), 4);
        c.received.insert("gossip".into(), 2);
        c.sent.insert("gossip".into(), 3);
        assert_eq!((c.total_in(), c.total_out()), (8, 8));
        assert_eq!(
            c.describe(),
            "in 8 out 8: gossip 2/3, read 5/0, read_ok 0/4, init 1/0, init_ok 0/1"
        );
        // The JSON names the directions as the dashboard does.
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["in"]["read"], 5);
        assert_eq!(v["out"]["read_ok"], 4);
    }
}
