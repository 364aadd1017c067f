//! What performing a command came to, as a value: the command as it is recorded, the node it acted on, and
//! what changed. The console's `ok: …`, the feed, the event log's `Performed` record and a scenario step's
//! answer are all rendered from one [`Effect`], so no caller reads the words back to learn what happened.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Command, NodeId};

/// A command that was done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// The command in its console form, as an export writes it and a rerun reads it: a dashboard key already
    /// resolved on the input side into the command it meant, `leader` kept symbolic (`kill leader`).
    pub command: Command,
    /// The node it acted on: the node `leader` resolved to (`kill leader` performed on node 2: `Some(2)`), the
    /// node an `add` or `replace` started, the node a `remove`, `promote` or `demote` changed; `None` for
    /// commands that act on no one node (`heal`, `partition halves`, the workload).
    pub node: Option<NodeId>,
    /// What changed, in words ("kill node 2 (leader, term 4)", "#3 cut 1->2 on 1 link"): the one text a person
    /// sees for it, on the console after `ok:`, in the feed and in the event log.
    pub change: String,
    /// The command is under way, not done (a membership change waiting for its commit): the console answers
    /// `pending:` instead of `ok:`, and the feed tells the outcome when it comes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl Effect {
    /// An effect of `command` that acted on `node`, described by `change`.
    pub fn new(command: Command, node: Option<NodeId>, change: impl Into<String>) -> Effect {
        Effect {
            command,
            node,
            change: change.into(),
            pending: false,
        }
    }

    /// The same effect, marked under way ([`Effect::pending`]).
    pub fn under_way(self) -> Effect {
        Effect {
            pending: true,
            ..self
        }
    }
}

impl fmt::Display for Effect {
    /// What changed, as the console answers it after `ok:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.change)
    }
}
