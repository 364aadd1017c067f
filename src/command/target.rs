//! Which node a command acts on: the leaf of the vocabulary, used by every sub-vocabulary (faults, disks,
//! clocks) and by the command itself.

use serde::{Deserialize, Serialize};

/// A node id.
pub type NodeId = u64;

/// Which node an action targets. `Leader` stays symbolic in the command (an export writes `kill leader`);
/// the event that records a performed command names the node it hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A node by id.
    Node(NodeId),
    /// Whichever node leads when the action runs.
    Leader,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node(id) => write!(f, "{id}"),
            Target::Leader => f.write_str("leader"),
        }
    }
}
