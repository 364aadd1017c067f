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
use squall_node::paxos::{Message, Slot};
use squall_node::rpc::PaxosPeerServiceRequest;

use super::tarpc_head::{ClientMessageHead, options};
use crate::state::held::HEARTBEAT_ANSWER;

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
        describe_messages(from, &messages)
    }
}

/// A held frame's detail: its first message's kind, its sender and what it carries, then each further message
/// the call batched (`accept n1 ballot 3.1 slots 5..7 chosen 4; accept ballot 3.1 slot 8 chosen 4`). Ballots
/// read `round.proposer`: the held queue judges stale frames by them (`state::held`).
pub fn describe_messages(from: u64, messages: &[Message]) -> String {
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("{} n{from} {}", m.kind(), carries(m)));
        } else {
            out.push_str(&format!("; {} {}", m.kind(), carries(m)));
        }
    }
    if out.is_empty() {
        "(no message)".into()
    } else {
        out
    }
}

/// What one message carries, in words: its ballot, slots and chosen prefix.
fn carries(m: &Message) -> String {
    match m {
        Message::Prepare { ballot, from_slot } => format!("ballot {ballot} from slot {from_slot}"),
        Message::Promise {
            ballot,
            chosen_to,
            accepted,
            ..
        } => format!(
            "ballot {ballot} chosen {chosen_to} accepted {}",
            accepted.len()
        ),
        Message::Accept {
            ballot,
            chosen_to,
            values,
        } => {
            let slots: Vec<Slot> = values.iter().map(|(s, _)| *s).collect();
            format!("ballot {ballot} {} chosen {chosen_to}", slots_text(&slots))
        }
        Message::Accepted {
            ballot,
            slots,
            chosen_to,
        } if slots.is_empty() => {
            format!("ballot {ballot} {HEARTBEAT_ANSWER} chosen {chosen_to}")
        }
        Message::Accepted {
            ballot,
            slots,
            chosen_to,
        } => format!("ballot {ballot} {} chosen {chosen_to}", slots_text(slots)),
        Message::Nack {
            ballot,
            promised,
            leader,
        } => match leader {
            Some(l) => format!("ballot {ballot} promised {promised} (keeps n{l}'s lease)"),
            None => format!("ballot {ballot} promised {promised}"),
        },
        Message::Heartbeat { ballot, chosen_to } => format!("ballot {ballot} chosen {chosen_to}"),
        Message::CatchUp { from_slot } => format!("from slot {from_slot}"),
        Message::Chosen { values, chosen_to } => {
            let slots: Vec<Slot> = values.iter().map(|(s, _)| *s).collect();
            format!("{} prefix {chosen_to}", slots_text(&slots))
        }
        Message::Snapshot { slot, data } => format!("slot {slot} ({} bytes)", data.len()),
    }
}

/// Slots as a person reads them: `slot 5`, `slots 5..7`, `slots 5, 7, 9`, `no slot`.
fn slots_text(slots: &[Slot]) -> String {
    match slots {
        [] => "no slot".into(),
        [one] => format!("slot {one}"),
        [first, .., last] if slots.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("slots {first}..{last}")
        }
        _ if slots.len() > 6 => format!(
            "slots {}, … {} in all",
            slots[..3]
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            slots.len()
        ),
        _ => format!(
            "slots {}",
            slots
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_node::paxos::{Ballot, Message, Payload};

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
        assert_eq!(text, "catch-up n2 from slot 1; catch-up from slot 2");
    }

    /// Issue 23 (new-user tester): a held Paxos frame read `from n1: accept`, with no ballot or slot, so no
    /// stale mark could be judged. Seen failing before `describe` named them.
    #[test]
    fn a_held_frame_names_its_ballot_and_slots() {
        let b = |round, proposer| Ballot { round, proposer };
        let said = |m: Message| PaxosClassifier.describe(Flow::Request, &frame(vec![m]));
        assert_eq!(
            said(Message::Prepare {
                ballot: b(3, 2),
                from_slot: 5
            }),
            "prepare n2 ballot 3.2 from slot 5"
        );
        assert_eq!(
            said(Message::Accept {
                ballot: b(3, 2),
                chosen_to: 4,
                values: vec![(5, Payload::Noop), (6, Payload::Noop), (7, Payload::Noop)],
            }),
            "accept n2 ballot 3.2 slots 5..7 chosen 4"
        );
        assert_eq!(
            said(Message::Accepted {
                ballot: b(3, 2),
                slots: vec![],
                chosen_to: 4,
            }),
            "accepted n2 ballot 3.2 (heartbeat answer) chosen 4"
        );
        assert_eq!(
            said(Message::Accepted {
                ballot: b(3, 2),
                slots: vec![5, 7],
                chosen_to: 4,
            }),
            "accepted n2 ballot 3.2 slots 5, 7 chosen 4"
        );
        assert_eq!(
            said(Message::Nack {
                ballot: b(1, 1),
                promised: b(3, 2),
                leader: Some(3),
            }),
            "nack n2 ballot 1.1 promised 3.2 (keeps n3's lease)"
        );
        assert_eq!(
            said(Message::Heartbeat {
                ballot: b(3, 2),
                chosen_to: 9
            }),
            "heartbeat n2 ballot 3.2 chosen 9"
        );
        assert_eq!(
            said(Message::Promise {
                ballot: b(3, 2),
                chosen_to: 4,
                snapshot_slot: 0,
                accepted: vec![],
            }),
            "promise n2 ballot 3.2 chosen 4 accepted 0"
        );
    }
}
