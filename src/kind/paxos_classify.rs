//! Labels the peer traffic of squall's node run with `--protocol paxos` (kind `paxos`) by Paxos message kind:
//! `prepare`, `promise`, `accept`, `accepted`, `nack`, `heartbeat`, `catch-up`, `chosen`, `snapshot`, so link
//! counters count them, `only` filters pick them and a held frame reads as what it is.
//!
//! A frame is one `PaxosPeerService` call from its sender (`squall_node::rpc`): messages of one kind that queued
//! for that peer at once, usually one. It is labelled by its first message, read from the frame's first bytes
//! with a mirror of the envelope that stops at that message's variant. The answers (an acknowledgement of the
//! call, no Paxos content) carry no label.

use bincode::Options as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use squall_chaos::{Classifier, Flow};
use squall_node::rpc::PaxosPeerServiceRequest;

use super::tarpc_head::{ClientMessageHead, options};

/// The labels, in index order (kept with the command vocabulary, which checks `only` filters against them).
pub use crate::command::fault::PAXOS_LABELS as LABELS;

/// The classifier named `squall-paxos`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PaxosClassifier;

/// Mirrors `PaxosPeerServiceRequest`.
#[derive(Deserialize)]
enum PaxosRequestHead {
    Paxos {
        #[allow(dead_code)]
        cluster: String,
        #[allow(dead_code)]
        from: u64,
        messages: FirstKind,
    },
}

/// Mirrors `squall_node::paxos::Message`'s variant order; only the variant index is read.
#[derive(Deserialize)]
enum MessageHead {
    Prepare,
    Promise,
    Accept,
    Accepted,
    Nack,
    Heartbeat,
    CatchUp,
    Chosen,
    Snapshot,
}

/// The label of the first message of a sequence (the last thing read, so nothing after it is misread).
struct FirstKind(Option<u8>);

impl<'de> Deserialize<'de> for FirstKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct First;
        impl<'de> Visitor<'de> for First {
            type Value = FirstKind;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of Paxos messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstKind, A::Error> {
                let first: Option<MessageHead> = seq.next_element()?;
                Ok(FirstKind(first.map(|m| m as u8)))
            }
        }
        d.deserialize_seq(First).map_err(de::Error::custom)
    }
}

impl Classifier for PaxosClassifier {
    fn labels(&self) -> &[&'static str] {
        &LABELS
    }

    fn classify(&self, flow: Flow, prefix: &[u8]) -> Option<u8> {
        if flow != Flow::Request {
            return None;
        }
        let head: ClientMessageHead<PaxosRequestHead> = options().deserialize(prefix).ok()?;
        let PaxosRequestHead::Paxos { messages, .. } = head.into_message()?;
        messages.0
    }

    fn describe(&self, flow: Flow, payload: &[u8]) -> String {
        if flow != Flow::Request {
            return "acknowledgement".into();
        }
        let msg: tarpc::ClientMessage<PaxosPeerServiceRequest> =
            match options().deserialize(payload) {
                Ok(m) => m,
                Err(_) => return "(not a Paxos peer request)".into(),
            };
        let tarpc::ClientMessage::Request(r) = msg else {
            return "cancel".into();
        };
        let PaxosPeerServiceRequest::Paxos { from, messages, .. } = r.message;
        let kinds: Vec<&str> = messages.iter().map(|m| m.kind()).collect();
        format!("from n{from}: {}", kinds.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_node::paxos::{Ballot, Message};

    fn frame(messages: Vec<Message>) -> Vec<u8> {
        let m = tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 3,
            message: PaxosPeerServiceRequest::Paxos {
                cluster: "squall-1".into(),
                from: 2,
                messages,
            },
        });
        options().serialize(&m).unwrap()
    }

    #[test]
    fn every_message_kind_gets_its_label_from_the_frame_s_first_bytes() {
        let b = Ballot {
            round: 3,
            proposer: 2,
        };
        let all = vec![
            Message::Prepare {
                ballot: b,
                from_slot: 1,
            },
            Message::Promise {
                ballot: b,
                chosen_to: 0,
                snapshot_slot: 0,
                accepted: vec![],
            },
            Message::Accept {
                ballot: b,
                chosen_to: 0,
                values: vec![],
            },
            Message::Accepted {
                ballot: b,
                slots: vec![1],
                chosen_to: 0,
            },
            Message::Nack {
                ballot: b,
                promised: b,
                leader: None,
            },
            Message::Heartbeat {
                ballot: b,
                chosen_to: 4,
            },
            Message::CatchUp { from_slot: 1 },
            Message::Chosen {
                values: vec![],
                chosen_to: 1,
            },
            Message::Snapshot {
                slot: 9,
                data: vec![0; 100],
            },
        ];
        for m in all {
            let kind = m.kind();
            let bytes = frame(vec![m]);
            let label = PaxosClassifier.classify(Flow::Request, &bytes[..bytes.len().min(40)]);
            assert_eq!(label.map(|l| LABELS[l as usize]), Some(kind));
        }
        assert_eq!(
            PaxosClassifier.classify(Flow::Request, &frame(vec![])),
            None
        );
        let text = PaxosClassifier.describe(
            Flow::Request,
            &frame(vec![
                Message::CatchUp { from_slot: 1 },
                Message::CatchUp { from_slot: 2 },
            ]),
        );
        assert_eq!(text, "from n2: catch-up, catch-up");
    }
}
