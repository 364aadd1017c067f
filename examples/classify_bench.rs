//! What squall's wire classifier costs per frame: it runs on every frame of every link while the proxy has a
//! classifier, so it must stay far below the proxy's own per-frame cost. Times `classify` on the frame prefixes
//! the proxy hands it (a heartbeat, a vote reply, a 64-entry append) and prints one JSON line.
//! Run with `cargo run --release --example classify_bench`.

use std::hint::black_box;
use std::time::Instant;

use bincode::Options as _;
use squall::cluster::classify::RaftClassifier;
use squall_chaos::proxy::classify::PREFIX;
use squall_chaos::{Classifier, Flow};
use squall_node::raft::types::{AppendEntries, Entry, Payload, RequestVoteReply};
use squall_node::rpc::{PeerServiceRequest, PeerServiceResponse};

const ROUNDS: u32 = 1_000_000;

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::DefaultOptions::new()
        .serialize(v)
        .expect("encodes")
}

fn append(entries: usize) -> Vec<u8> {
    encode(&tarpc::ClientMessage::Request(tarpc::Request {
        context: tarpc::context::current(),
        id: 42,
        message: PeerServiceRequest::AppendEntries {
            cluster: "squall-1a2b".into(),
            req: AppendEntries {
                term: 7,
                leader: 2,
                prev_log_index: 1000,
                prev_log_term: 7,
                entries: (0..entries)
                    .map(|i| Entry {
                        index: 1001 + i as u64,
                        term: 7,
                        payload: Payload::Command(vec![1; 40]),
                    })
                    .collect(),
                leader_commit: 1000,
                read_round: 3,
                heartbeat: entries == 0,
            },
        },
    }))
}

fn ns_per_call(flow: Flow, frame: &[u8]) -> f64 {
    let c = RaftClassifier;
    let prefix = &frame[..frame.len().min(PREFIX)];
    let start = Instant::now();
    for _ in 0..ROUNDS {
        black_box(c.classify(flow, black_box(prefix)));
    }
    start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
}

fn main() {
    let heartbeat = append(0);
    let batch = append(64);
    let vote_reply = encode(&tarpc::Response {
        request_id: 42,
        message: Ok(PeerServiceResponse::RequestVote(Ok(RequestVoteReply {
            term: 7,
            voter: 3,
            granted: true,
            pre_vote: false,
            removed_by: None,
        }))),
    });
    let hb = ns_per_call(Flow::Request, &heartbeat);
    let ap = ns_per_call(Flow::Request, &batch);
    let vr = ns_per_call(Flow::Reply, &vote_reply);
    println!(
        "{{\"classify_heartbeat_ns\":{hb:.0},\"classify_append64_ns\":{ap:.0},\"classify_vote_reply_ns\":{vr:.0},\"heartbeat_bytes\":{},\"append64_bytes\":{},\"calls_each\":{ROUNDS}}}",
        heartbeat.len(),
        batch.len()
    );
}
