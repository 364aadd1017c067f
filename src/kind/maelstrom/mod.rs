//! Maelstrom nodes under squall: any executable that speaks Maelstrom's protocol (JSON messages, one per line,
//! on stdin and stdout; jepsen-io/maelstrom, doc/protocol.md) runs as a node kind whose network is squall.
//!
//! Each node process is started by a bridge, `squall maelstrom-node` ([`bridge`]), which owns the node's stdin
//! and stdout: it sends the node Maelstrom's `init`, reads every line the node writes, and sends a message for
//! node `nK` as one length-prefixed frame to the squall proxy of the directed link to `K` — so every link fault
//! of the chaos crate (cut, delay, loss, duplication, reordering, partitions, hold and step) applies per
//! message, with no second copy of that logic. Frames arriving from peers' proxies, and requests from squall's
//! clients (`c1`, `c2`, …, on the bridge's client port), are written to the node's stdin. The node kind is
//! kinds/maelstrom.toml; `squall up --maelstrom ./node` fills in the program.
//!
//! [`client`] is the lin-kv client driver (read / write / cas with Maelstrom's error codes, definite or not)
//! and the status driver; [`workload`] draws and judges Maelstrom's other workloads (echo, unique-ids,
//! broadcast, g-counter, kafka); [`service`] serves `lin-kv`, `seq-kv` and `lww-kv`; [`classify`] labels
//! frames by the body's `type`.

pub mod benchnode;
pub mod bridge;
pub mod classify;
pub mod client;
pub mod service;
pub mod workload;

use serde::Deserialize;

/// The built-in kind's name.
pub const KIND: &str = "maelstrom";

/// The node name Maelstrom gives node `id` (`n1`, `n2`, …).
pub fn node_name(id: u64) -> String {
    format!("n{id}")
}

/// The node id of a Maelstrom node name (`n3` → 3), `None` for anything else (clients, services).
pub fn node_id(name: &str) -> Option<u64> {
    name.strip_prefix('n')?.parse().ok().filter(|&id| id > 0)
}

/// What the router reads of a message: where it goes and what type its body has; the rest passes untouched.
#[derive(Debug, Deserialize)]
pub struct Head {
    /// The sender (`n1`, `c3`).
    #[serde(default)]
    pub src: String,
    /// The destination.
    pub dest: String,
    /// The body's reserved keys.
    pub body: BodyHead,
}

/// A body's reserved keys (doc/protocol.md, "Message Bodies").
#[derive(Debug, Deserialize)]
pub struct BodyHead {
    /// The message type (`read`, `read_ok`, `error`, or any the node invents).
    #[serde(rename = "type")]
    pub kind: String,
    /// The sender's id for this request.
    #[serde(default)]
    pub msg_id: Option<u64>,
    /// The request this answers.
    #[serde(default)]
    pub in_reply_to: Option<u64>,
}

/// Why a line a node wrote was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not a JSON object with `dest` and `body.type`.
    #[error("not a Maelstrom message ({0})")]
    NotAMessage(String),
    /// `dest` names no node, client or service squall knows.
    #[error("unknown destination `{0}`")]
    UnknownDest(String),
    /// A message to the reserved destination `squall` that is not a status report squall can read.
    #[error("{0}")]
    BadReport(String),
}

/// Reads a line's head. `Err` says why the line is not a message.
pub fn head(line: &[u8]) -> Result<Head, Malformed> {
    serde_json::from_slice::<Head>(line).map_err(|e| Malformed::NotAMessage(e.to_string()))
}

/// Maelstrom's error codes (doc/protocol.md, "Errors"): the name, and whether the error is definite (the
/// operation did not and never will happen). Codes not in the table, custom ones included, are indefinite.
pub const ERRORS: &[(u64, &str, bool)] = &[
    (0, "timeout", false),
    (1, "node-not-found", true),
    (10, "not-supported", true),
    (11, "temporarily-unavailable", true),
    (12, "malformed-request", true),
    (13, "crash", false),
    (14, "abort", true),
    (20, "key-does-not-exist", true),
    (21, "key-already-exists", true),
    (22, "precondition-failed", true),
    (30, "txn-conflict", true),
];

/// Whether error `code` is definite, and its name (`None` for a code Maelstrom does not define).
pub fn error_code(code: u64) -> (bool, Option<&'static str>) {
    match ERRORS.iter().find(|(c, _, _)| *c == code) {
        Some((_, name, definite)) => (*definite, Some(name)),
        None => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip_and_clients_are_not_nodes() {
        assert_eq!(node_id(&node_name(7)), Some(7));
        assert_eq!(node_id("c1"), None);
        assert_eq!(node_id("n0"), None);
        assert_eq!(node_id("lin-kv"), None);
        assert_eq!(node_id("nx"), None);
    }

    #[test]
    fn a_head_is_read_and_other_fields_pass() {
        let h = head(
            br#"{"src":"n1","dest":"c2","body":{"type":"read_ok","in_reply_to":4,"value":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!((h.src.as_str(), h.dest.as_str()), ("n1", "c2"));
        assert_eq!(h.body.kind, "read_ok");
        assert_eq!(h.body.in_reply_to, Some(4));
        assert!(matches!(head(b"hello"), Err(Malformed::NotAMessage(_))));
        assert!(matches!(
            head(br#"{"src":"n1","body":{"type":"x"}}"#),
            Err(Malformed::NotAMessage(_))
        ));
    }

    #[test]
    fn definite_errors_are_maelstrom_s_and_unknown_codes_are_indefinite() {
        assert_eq!(error_code(20), (true, Some("key-does-not-exist")));
        assert_eq!(error_code(11), (true, Some("temporarily-unavailable")));
        assert_eq!(error_code(13), (false, Some("crash")));
        assert_eq!(error_code(0), (false, Some("timeout")));
        assert_eq!(error_code(1234), (false, None));
    }
}
