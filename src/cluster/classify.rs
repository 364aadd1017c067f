//! The classifier squall hands its link proxies: it reads squall's own wire protocol (tarpc messages,
//! bincode-encoded, see `squall_node::rpc` and `squall_node::transport`) and answers with message-kind labels,
//! so the protocol-agnostic proxy can filter faults by kind and count frames per kind.
//!
//! A frame on a peer link is one tarpc message: a `ClientMessage<PeerServiceRequest>` from the caller, or a
//! `Response<PeerServiceResponse>` back. The label is decided from the frame's first bytes only (the proxy streams
//! big frames without buffering them): the request envelope, the RPC variant and the first fields of its
//! argument, up to the entry count of an AppendEntries, which tells an append from a heartbeat. Those fields
//! are decoded with mirror types that stop there; `describe` decodes the whole frame with the real types.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use bincode::Options as _;
use squall_chaos::{Classifier, Flow};
use squall_node::raft::types::TimeoutNow;
use squall_node::rpc::{PeerServiceRequest, PeerServiceResponse};

use super::fault::MESSAGE_KINDS;
use crate::kind::tarpc_head::{ClientMessageHead, options};

/// Label indexes, in [`MESSAGE_KINDS`] order.
const VOTE: u8 = 0;
const VOTE_REPLY: u8 = 1;
const APPEND: u8 = 2;
const HEARTBEAT: u8 = 3;
const APPEND_REPLY: u8 = 4;
const SNAPSHOT: u8 = 5;
const SNAPSHOT_REPLY: u8 = 6;
const TIMEOUT_NOW: u8 = 7;
const PRE_VOTE: u8 = 9;
const PRE_VOTE_REPLY: u8 = 10;

/// Labels squall's peer traffic by Raft message kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct RaftClassifier;

/// Mirrors `PeerServiceRequest`'s variant order (the trait's method order).
#[derive(Deserialize)]
enum PeerRequestHead {
    RequestVote {
        #[allow(dead_code)]
        cluster: String,
        req: VoteHead,
    },
    AppendEntries {
        #[allow(dead_code)]
        cluster: String,
        req: AppendHead,
    },
    InstallSnapshot,
    TimeoutNow,
}

/// A RequestVote up to its pre-vote flag, which tells a pre-vote (Raft dissertation §9.6) from a vote.
#[derive(Deserialize)]
struct VoteHead {
    #[allow(dead_code)]
    term: u64,
    #[allow(dead_code)]
    candidate: u64,
    #[allow(dead_code)]
    last_log_index: u64,
    #[allow(dead_code)]
    last_log_term: u64,
    pre_vote: bool,
}

/// A RequestVote's answer up to its pre-vote flag.
#[derive(Deserialize)]
struct VoteReplyHead {
    #[allow(dead_code)]
    term: u64,
    #[allow(dead_code)]
    voter: u64,
    #[allow(dead_code)]
    granted: bool,
    pre_vote: bool,
}

/// An AppendEntries up to its entry count (the entries themselves are not read).
#[derive(Deserialize)]
struct AppendHead {
    #[allow(dead_code)]
    term: u64,
    #[allow(dead_code)]
    leader: u64,
    #[allow(dead_code)]
    prev_log_index: u64,
    #[allow(dead_code)]
    prev_log_term: u64,
    entries: EntryCount,
}

/// The length of a sequence, read without its elements (the last field read, so nothing after it is misread).
struct EntryCount(usize);

impl<'de> Deserialize<'de> for EntryCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = EntryCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<EntryCount, A::Error> {
                seq.size_hint()
                    .map(EntryCount)
                    .ok_or_else(|| de::Error::custom("sequence without a length"))
            }
        }
        d.deserialize_seq(Count)
    }
}

/// Whether a request is a pre-vote, a vote, an append, a heartbeat, a snapshot chunk or a TimeoutNow.
fn classify_request(prefix: &[u8]) -> Option<u8> {
    let head: ClientMessageHead<PeerRequestHead> = options().deserialize(prefix).ok()?;
    Some(match head.into_message()? {
        PeerRequestHead::RequestVote { req, .. } if req.pre_vote => PRE_VOTE,
        PeerRequestHead::RequestVote { .. } => VOTE,
        PeerRequestHead::AppendEntries { req, .. } if req.entries.0 > 0 => APPEND,
        PeerRequestHead::AppendEntries { .. } => HEARTBEAT,
        PeerRequestHead::InstallSnapshot => SNAPSHOT,
        PeerRequestHead::TimeoutNow => TIMEOUT_NOW,
    })
}

/// The head of a response: its request id, then which RPC answered (the variant index).
#[derive(Deserialize)]
struct ResponseHead {
    #[allow(dead_code)]
    request_id: u64,
    message: Result<PeerResponseHead, ServerErrorHead>,
}

#[derive(Deserialize)]
enum PeerResponseHead {
    /// The vote's answer, or the peer's refusal of the call (`PeerError`: it says no round).
    RequestVote(Result<VoteReplyHead, ServerErrorHead>),
    AppendEntries,
    InstallSnapshot,
    TimeoutNow,
}

#[derive(Deserialize)]
struct ServerErrorHead;

fn classify_reply(prefix: &[u8]) -> Option<u8> {
    let head: ResponseHead = options().deserialize(prefix).ok()?;
    Some(match head.message.ok()? {
        PeerResponseHead::RequestVote(Ok(r)) if r.pre_vote => PRE_VOTE_REPLY,
        PeerResponseHead::RequestVote(_) => VOTE_REPLY,
        PeerResponseHead::AppendEntries => APPEND_REPLY,
        PeerResponseHead::InstallSnapshot => SNAPSHOT_REPLY,
        PeerResponseHead::TimeoutNow => TIMEOUT_NOW,
    })
}

impl Classifier for RaftClassifier {
    fn labels(&self) -> &[&'static str] {
        &MESSAGE_KINDS
    }

    fn classify(&self, flow: Flow, prefix: &[u8]) -> Option<u8> {
        match flow {
            Flow::Request => classify_request(prefix),
            Flow::Reply => classify_reply(prefix),
        }
    }

    fn describe(&self, flow: Flow, payload: &[u8]) -> String {
        match flow {
            Flow::Request => describe_request(payload),
            Flow::Reply => describe_reply(payload),
        }
    }
}

fn describe_request(payload: &[u8]) -> String {
    let msg: tarpc::ClientMessage<PeerServiceRequest> = match options().deserialize(payload) {
        Ok(m) => m,
        Err(_) => return "(not a peer request)".into(),
    };
    let tarpc::ClientMessage::Request(r) = msg else {
        return "cancel".into();
    };
    match r.message {
        PeerServiceRequest::RequestVote { req, .. } => format!(
            "{} n{} term {} last {}/{}",
            if req.pre_vote { "pre-vote" } else { "vote" },
            req.candidate,
            req.term,
            req.last_log_index,
            req.last_log_term
        ),
        PeerServiceRequest::AppendEntries { req, .. } => {
            let what = if req.entries.is_empty() {
                "heartbeat".to_string()
            } else {
                format!(
                    "append {}..{}",
                    req.prev_log_index + 1,
                    req.prev_log_index + req.entries.len() as u64
                )
            };
            format!(
                "{what} n{} term {} prev {}/{} commit {}",
                req.leader, req.term, req.prev_log_index, req.prev_log_term, req.leader_commit
            )
        }
        PeerServiceRequest::InstallSnapshot { req, .. } => format!(
            "snapshot n{} term {} up to {}/{} bytes {}+{}{}",
            req.leader,
            req.term,
            req.meta.last_index,
            req.meta.last_term,
            req.offset,
            req.data.len(),
            if req.done { " (last)" } else { "" }
        ),
        PeerServiceRequest::TimeoutNow {
            req: TimeoutNow { term, leader },
            ..
        } => format!("timeout-now from n{leader} term {term}"),
    }
}

fn describe_reply(payload: &[u8]) -> String {
    let msg: tarpc::Response<PeerServiceResponse> = match options().deserialize(payload) {
        Ok(m) => m,
        Err(_) => return "(not a peer reply)".into(),
    };
    match msg.message {
        Err(e) => format!("error {e}"),
        Ok(PeerServiceResponse::RequestVote(Ok(r))) => format!(
            "{} n{} term {} {}",
            if r.pre_vote {
                "pre-vote-reply"
            } else {
                "vote-reply"
            },
            r.voter,
            r.term,
            if r.granted { "granted" } else { "refused" }
        ),
        Ok(PeerServiceResponse::AppendEntries(Ok(r))) => format!(
            "append-reply n{} term {} {} match {}",
            r.follower,
            r.term,
            if r.success { "ok" } else { "reject" },
            r.match_index
        ),
        Ok(PeerServiceResponse::InstallSnapshot(Ok(r))) => format!(
            "snapshot-reply n{} term {} next {}{}",
            r.follower,
            r.term,
            r.next_offset,
            if r.done { " done" } else { "" }
        ),
        Ok(PeerServiceResponse::TimeoutNow(Ok(()))) => "timeout-now ok".into(),
        Ok(
            PeerServiceResponse::RequestVote(Err(e))
            | PeerServiceResponse::AppendEntries(Err(e))
            | PeerServiceResponse::InstallSnapshot(Err(e))
            | PeerServiceResponse::TimeoutNow(Err(e)),
        ) => format!("refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_node::raft::types::{
        AppendEntries, AppendEntriesReply, Entry, Payload, RequestVote, RequestVoteReply,
    };

    fn request(msg: PeerServiceRequest) -> Vec<u8> {
        let m = tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 7,
            message: msg,
        });
        options().serialize(&m).unwrap()
    }

    fn reply(msg: PeerServiceResponse) -> Vec<u8> {
        options()
            .serialize(&tarpc::Response {
                request_id: 7,
                message: Ok(msg),
            })
            .unwrap()
    }

    fn append(entries: usize) -> PeerServiceRequest {
        PeerServiceRequest::AppendEntries {
            cluster: "squall-1234".into(),
            req: AppendEntries {
                term: 3,
                leader: 1,
                prev_log_index: 10,
                prev_log_term: 2,
                entries: (0..entries)
                    .map(|i| Entry {
                        index: 11 + i as u64,
                        term: 3,
                        payload: Payload::Command(vec![9; 5000]),
                    })
                    .collect(),
                leader_commit: 10,
                read_round: 0,
                heartbeat: entries == 0,
            },
        }
    }

    #[test]
    fn requests_are_labelled_from_a_prefix() {
        let c = RaftClassifier;
        let vote = request(PeerServiceRequest::RequestVote {
            cluster: "squall-1234".into(),
            req: RequestVote {
                term: 4,
                candidate: 2,
                last_log_index: 12,
                last_log_term: 3,
                pre_vote: true,
                transfer: false,
                round: 0,
            },
        });
        let label = |f: &[u8]| {
            c.classify(
                Flow::Request,
                &f[..f.len().min(squall_chaos::proxy::classify::PREFIX)],
            )
        };
        assert_eq!(label(&vote), Some(PRE_VOTE));
        assert_eq!(
            c.describe(Flow::Request, &vote),
            "pre-vote n2 term 4 last 12/3"
        );
        let big = request(append(20));
        assert!(big.len() > 100_000);
        assert_eq!(label(&big), Some(APPEND));
        assert_eq!(label(&request(append(0))), Some(HEARTBEAT));
        assert!(
            c.describe(Flow::Request, &request(append(0)))
                .starts_with("heartbeat n1 term 3"),
            "{}",
            c.describe(Flow::Request, &request(append(0)))
        );
        assert_eq!(c.classify(Flow::Request, b"garbage"), None);
        assert_eq!(c.labels()[usize::from(HEARTBEAT)], "heartbeat");
    }

    #[test]
    fn a_pre_vote_and_its_answer_are_their_own_kinds() {
        // teach2 item 5: a pre-vote was labelled `vote`, so `only vote` matched pre-votes and the links
        // matrix, the held list and the flow panel counted them as votes.
        let c = RaftClassifier;
        let name = |flow: Flow, f: &[u8]| {
            let prefix = &f[..f.len().min(squall_chaos::proxy::classify::PREFIX)];
            c.classify(flow, prefix)
                .map(|l| c.labels()[usize::from(l)])
                .unwrap_or("other")
        };
        for (pre_vote, want) in [(true, "pre-vote"), (false, "vote")] {
            let f = request(PeerServiceRequest::RequestVote {
                cluster: "squall-1234".into(),
                req: RequestVote {
                    term: 4,
                    candidate: 2,
                    last_log_index: 12,
                    last_log_term: 3,
                    pre_vote,
                    transfer: false,
                    round: 0,
                },
            });
            assert_eq!(name(Flow::Request, &f), want);
        }
        for (pre_vote, granted, want) in [
            (true, true, "pre-vote-reply"),
            (true, false, "pre-vote-reply"),
            (false, true, "vote-reply"),
        ] {
            let f = reply(PeerServiceResponse::RequestVote(Ok(RequestVoteReply {
                term: 4,
                voter: 3,
                granted,
                pre_vote,
                removed_by: None,
            })));
            assert_eq!(name(Flow::Reply, &f), want, "pre-vote {pre_vote}");
        }
        // A refusal by the peer's service (it is stopping) tells no round: a vote reply.
        let f = reply(PeerServiceResponse::RequestVote(Err(
            squall_node::rpc::PeerError::Stopping,
        )));
        assert_eq!(name(Flow::Reply, &f), "vote-reply");
    }

    #[test]
    fn replies_are_labelled_by_the_rpc_they_answer() {
        let c = RaftClassifier;
        let v = reply(PeerServiceResponse::RequestVote(Ok(RequestVoteReply {
            term: 4,
            voter: 3,
            granted: true,
            pre_vote: false,
            removed_by: None,
        })));
        assert_eq!(c.classify(Flow::Reply, &v), Some(VOTE_REPLY));
        assert_eq!(c.describe(Flow::Reply, &v), "vote-reply n3 term 4 granted");
        let a = reply(PeerServiceResponse::AppendEntries(Ok(AppendEntriesReply {
            term: 4,
            follower: 2,
            success: true,
            match_index: 30,
            conflict_term: None,
            conflict_index: 0,
            last_log_index: 30,
            read_round: 0,
            req_prev_index: 20,
            req_last_index: 30,
            heartbeat: false,
            recovering: false,
        })));
        assert_eq!(c.classify(Flow::Reply, &a), Some(APPEND_REPLY));
        // A request read as a reply is not mistaken for one of squall's kinds.
        assert_ne!(
            c.classify(Flow::Reply, &request(append(0))),
            Some(VOTE_REPLY)
        );
    }
}
