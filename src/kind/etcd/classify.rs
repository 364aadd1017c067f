//! The `etcd-raft` classifier: labels etcd's raft messages by `raftpb.MessageType` (etcd-io/raft, `raftpb/raft.proto`),
//! for the proxy's per-kind counters, message filters and held-frame descriptions.
//!
//! The proxy's rafthttp framing ([`squall_chaos::Framing::RaftHttp`]) hands over each message's protobuf (the
//! msgappv2 stream's link heartbeats as an empty MsgHeartbeat, the way the `message` stream encodes them).
//! gogoproto writes the fields in number order and writes every non-nullable one, so `type` (field 1) is the
//! first bytes of every message: a label needs a few bytes only. Label names match squall's own where the
//! meaning is the same (`vote`, `vote-reply`, `append`, `append-reply`, `heartbeat`, `snapshot`,
//! `timeout-now`), so `only vote-reply` means the same on both kinds.

use squall_chaos::proxy::protobuf::{Fields, Value};
use squall_chaos::{Classifier, Flow};

/// The labels, in index order (kept with the command vocabulary, which `only` checks against).
pub use crate::command::fault::ETCD_LABELS as LABELS;

/// raftpb.MessageType values.
mod msg {
    pub const PROP: u64 = 2;
    pub const APP: u64 = 3;
    pub const APP_RESP: u64 = 4;
    pub const VOTE: u64 = 5;
    pub const VOTE_RESP: u64 = 6;
    pub const SNAP: u64 = 7;
    pub const HEARTBEAT: u64 = 8;
    pub const HEARTBEAT_RESP: u64 = 9;
    pub const TIMEOUT_NOW: u64 = 14;
    pub const READ_INDEX: u64 = 15;
    pub const READ_INDEX_RESP: u64 = 16;
    pub const PRE_VOTE: u64 = 17;
    pub const PRE_VOTE_RESP: u64 = 18;
}

/// Labels etcd's peer messages by raft message type.
#[derive(Debug, Default, Clone, Copy)]
pub struct EtcdClassifier;

/// The fields of a raftpb.Message a person reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// raftpb.MessageType.
    pub typ: u64,
    /// Receiver member id.
    pub to: u64,
    /// Sender member id.
    pub from: u64,
    /// The sender's term.
    pub term: u64,
    /// Term of the entry at `index` (appends, votes: the last log term).
    pub log_term: u64,
    /// Index: the entry before the appended ones, or the last log index of a vote.
    pub index: u64,
    /// Entries carried.
    pub entries: u64,
    /// The sender's commit index.
    pub commit: u64,
    /// A rejection (vote refused, append not matching).
    pub reject: bool,
}

/// Reads the fields of a whole (or prefix of a) raftpb.Message.
pub fn summarize(pb: &[u8]) -> Summary {
    let mut s = Summary::default();
    for (number, value) in Fields::new(pb) {
        match (number, value) {
            (1, Value::Varint(v)) => s.typ = v,
            (2, Value::Varint(v)) => s.to = v,
            (3, Value::Varint(v)) => s.from = v,
            (4, Value::Varint(v)) => s.term = v,
            (5, Value::Varint(v)) => s.log_term = v,
            (6, Value::Varint(v)) => s.index = v,
            (7, Value::Bytes(_)) => s.entries += 1,
            (8, Value::Varint(v)) => s.commit = v,
            (10, Value::Varint(v)) => s.reject = v != 0,
            _ => {}
        }
    }
    s
}

/// The label index of a message type (`to`/`from` tell a link heartbeat, which names neither, from a raft one).
fn label_of(typ: u64, to: u64, from: u64) -> Option<u8> {
    let name = match typ {
        msg::VOTE => "vote",
        msg::VOTE_RESP => "vote-reply",
        msg::APP => "append",
        msg::HEARTBEAT if to == 0 && from == 0 => "link-heartbeat",
        msg::HEARTBEAT => "heartbeat",
        msg::APP_RESP => "append-reply",
        msg::SNAP => "snapshot",
        msg::TIMEOUT_NOW => "timeout-now",
        msg::PRE_VOTE => "pre-vote",
        msg::PRE_VOTE_RESP => "pre-vote-reply",
        msg::HEARTBEAT_RESP => "heartbeat-reply",
        msg::READ_INDEX => "read-index",
        msg::READ_INDEX_RESP => "read-index-reply",
        msg::PROP => "proposal",
        _ => return None,
    };
    LABELS.iter().position(|l| *l == name).map(|i| i as u8)
}

impl Classifier for EtcdClassifier {
    fn labels(&self) -> &[&'static str] {
        &LABELS
    }

    fn classify(&self, _flow: Flow, prefix: &[u8]) -> Option<u8> {
        // type, to and from are the first three fields; nothing past them is needed.
        let (mut typ, mut to, mut from) = (None, 0, 0);
        for (number, value) in Fields::new(prefix) {
            match (number, value) {
                (1, Value::Varint(v)) => typ = Some(v),
                (2, Value::Varint(v)) => to = v,
                (3, Value::Varint(v)) => {
                    from = v;
                    break;
                }
                (n, _) if n > 3 => break,
                _ => {}
            }
        }
        label_of(typ?, to, from)
    }

    fn describe(&self, flow: Flow, payload: &[u8]) -> String {
        let s = summarize(payload);
        let name = self
            .classify(flow, payload)
            .and_then(|l| LABELS.get(usize::from(l)))
            .copied()
            .unwrap_or("message");
        let mut out = format!("{name} {:x}->{:x} term {}", s.from, s.to, s.term);
        match s.typ {
            msg::APP | msg::SNAP => out.push_str(&format!(
                " index {} log term {} entries {} commit {}",
                s.index, s.log_term, s.entries, s.commit
            )),
            msg::VOTE | msg::PRE_VOTE => out.push_str(&format!(" last {}/{}", s.index, s.log_term)),
            msg::HEARTBEAT => out.push_str(&format!(" commit {}", s.commit)),
            msg::APP_RESP => out.push_str(&format!(" index {}", s.index)),
            _ => {}
        }
        if s.reject {
            out.push_str(" reject");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_chaos::proxy::protobuf::{put_bytes, put_uint};

    fn message(typ: u64, to: u64, from: u64, term: u64, reject: bool) -> Vec<u8> {
        let mut pb = Vec::new();
        for (n, v) in [(1, typ), (2, to), (3, from), (4, term), (5, 2), (6, 9)] {
            put_uint(&mut pb, n, v);
        }
        put_bytes(&mut pb, 7, b"\x10\x02\x18\x0a");
        put_uint(&mut pb, 8, 8);
        put_uint(&mut pb, 10, u64::from(reject));
        pb
    }

    fn label(pb: &[u8]) -> Option<&'static str> {
        EtcdClassifier
            .classify(Flow::Reply, pb)
            .map(|l| LABELS[usize::from(l)])
    }

    #[test]
    fn message_types_get_squalls_label_names() {
        let cases = [
            (msg::VOTE, "vote"),
            (msg::VOTE_RESP, "vote-reply"),
            (msg::PRE_VOTE, "pre-vote"),
            (msg::PRE_VOTE_RESP, "pre-vote-reply"),
            (msg::APP, "append"),
            (msg::APP_RESP, "append-reply"),
            (msg::HEARTBEAT, "heartbeat"),
            (msg::HEARTBEAT_RESP, "heartbeat-reply"),
            (msg::SNAP, "snapshot"),
            (msg::TIMEOUT_NOW, "timeout-now"),
            (msg::PROP, "proposal"),
        ];
        for (typ, want) in cases {
            assert_eq!(
                label(&message(typ, 2, 1, 3, false)),
                Some(want),
                "type {typ}"
            );
        }
        assert_eq!(
            label(&message(12, 2, 1, 3, false)),
            None,
            "MsgCheckQuorum is local"
        );
        assert_eq!(label(&[0x08, 0x08]), Some("link-heartbeat"));
        assert_eq!(label(&[]), None);
        assert_eq!(label(&[0xff]), None, "not protobuf");
    }

    #[test]
    fn the_type_is_read_from_a_few_bytes() {
        let pb = message(msg::VOTE_RESP, 0x1234_5678_9abc, 7, 3, true);
        assert_eq!(label(&pb[..12]), Some("vote-reply"));
    }

    #[test]
    fn describe_gives_term_index_log_term_commit_and_reject() {
        let d = EtcdClassifier.describe(Flow::Reply, &message(msg::APP, 2, 1, 3, true));
        assert_eq!(
            d,
            "append 1->2 term 3 index 9 log term 2 entries 1 commit 8 reject"
        );
        let d = EtcdClassifier.describe(Flow::Reply, &message(msg::VOTE, 2, 1, 4, false));
        assert_eq!(d, "vote 1->2 term 4 last 9/2");
    }
}
