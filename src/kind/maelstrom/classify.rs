//! Labels Maelstrom messages on peer links by their body's `type`, so link counters count messages per type,
//! filters apply to some types only, and a held message reads as what it is.
//!
//! A proxy classifier has at most [`squall_chaos::proxy::classify::MAX_LABELS`] labels, while Maelstrom
//! nodes invent their own types: the labels are the types node-to-node traffic of the common workloads and of
//! Raft assignments uses (the reads and writes a node forwards, broadcast gossip, Raft's two RPCs and their
//! replies), and every other type is `other`. The bridge puts the type before the message ([`super::bridge`]),
//! so the label is read from the first bytes however long the message is.

use std::borrow::Cow;

use squall_chaos::{Classifier, Flow};

/// The labels, in index order; the last one takes every type not listed (kept with the command vocabulary,
/// which checks `only` filters against them).
pub use crate::command::fault::MAELSTROM_LABELS as LABELS;

/// The classifier of kind `maelstrom`.
#[derive(Debug, Default, Clone, Copy)]
pub struct MaelstromClassifier;

/// The label of a body type.
pub fn label_of(kind: &str) -> u8 {
    LABELS[..LABELS.len() - 1]
        .iter()
        .position(|l| *l == kind)
        .unwrap_or(LABELS.len() - 1) as u8
}

impl Classifier for MaelstromClassifier {
    fn labels(&self) -> &[&'static str] {
        &LABELS
    }

    fn classify(&self, _flow: Flow, prefix: &[u8]) -> Option<u8> {
        let nl = prefix.iter().position(|&b| b == b'\n')?;
        Some(label_of(std::str::from_utf8(&prefix[..nl]).ok()?))
    }

    /// The body's `type` itself, not its label: a type a node invents (`gossip_ok`, `heartbeat`) is named
    /// in the message trace, the dashboard's flow panel and the report's diagram, though its label is `other`.
    fn kind(&self, _flow: Flow, prefix: &[u8], label: Option<u8>) -> Option<Cow<'static, str>> {
        let named = prefix
            .iter()
            .position(|&b| b == b'\n')
            .and_then(|nl| std::str::from_utf8(&prefix[..nl]).ok())
            .filter(|t| !t.is_empty());
        match named {
            // A listed type is its label's name, which costs no allocation.
            Some(t) => Some(match LABELS.iter().find(|l| **l == t) {
                Some(l) => Cow::Borrowed(*l),
                None => Cow::Owned(t.to_string()),
            }),
            None => label.and_then(|l| LABELS.get(usize::from(l)).map(|l| Cow::Borrowed(*l))),
        }
    }

    fn describe(&self, _flow: Flow, payload: &[u8]) -> String {
        let Some(nl) = payload.iter().position(|&b| b == b'\n') else {
            return format!("{} bytes, not a bridged message", payload.len());
        };
        let kind = String::from_utf8_lossy(&payload[..nl]);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&payload[nl + 1..]) else {
            return format!("{kind} (body not JSON)");
        };
        let mut out = format!(
            "{kind} {}->{}",
            v["src"].as_str().unwrap_or("?"),
            v["dest"].as_str().unwrap_or("?")
        );
        // The reserved keys first, then the fields people key on, short.
        for key in [
            "msg_id",
            "in_reply_to",
            "key",
            "value",
            "from",
            "to",
            "term",
            "message",
            "code",
        ] {
            let f = &v["body"][key];
            if !f.is_null() {
                let mut s = f.to_string();
                if s.len() > 24 {
                    s.truncate(21);
                    s.push_str("...");
                }
                out.push_str(&format!(" {key}={s}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_get_their_label_and_invented_ones_are_other() {
        let c = MaelstromClassifier;
        assert_eq!(c.classify(Flow::Request, b"read\n{\"src\""), Some(0));
        assert_eq!(
            c.classify(Flow::Request, b"request_vote_res\n{"),
            Some(label_of("request_vote_res"))
        );
        assert_eq!(
            c.labels()[usize::from(label_of("request_vote_res"))],
            "request_vote_res"
        );
        assert_eq!(c.classify(Flow::Request, b"my_own_type\n{"), Some(15));
        assert_eq!(c.classify(Flow::Request, b"no newline yet"), None);
    }

    #[test]
    fn the_trace_names_a_message_by_its_body_type_even_an_invented_one() {
        let c = MaelstromClassifier;
        let kind = |p: &[u8]| c.kind(Flow::Request, p, c.classify(Flow::Request, p));
        assert_eq!(kind(b"gossip_ok\n{}").as_deref(), Some("gossip_ok"));
        assert!(matches!(kind(b"read\n{}"), Some(Cow::Borrowed("read"))));
        // No type before the message: what the label says, if anything.
        assert_eq!(kind(b"no newline").as_deref(), None);
        assert_eq!(
            c.kind(Flow::Request, b"\n{}", Some(15)).as_deref(),
            Some("other")
        );
    }

    #[test]
    fn a_held_message_is_described_by_type_ends_and_key_fields() {
        let d = MaelstromClassifier.describe(
            Flow::Request,
            br#"cas
{"src":"n2","dest":"n1","body":{"type":"cas","msg_id":7,"key":3,"from":1,"to":2}}"#,
        );
        assert_eq!(d, "cas n2->n1 msg_id=7 key=3 from=1 to=2");
    }
}
