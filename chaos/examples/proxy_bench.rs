//! Measures what the link proxy costs, side by side in one run: round-trip time of a small frame (p50/p99) and
//! one-way throughput, direct and through four proxies:
//! - `plain`: a network without a classifier, no fault (the proxy as it was before message labels);
//! - `labelled`: with a classifier, no fault (every frame's prefix is classified and counted per label);
//! - `filtered`: with a classifier and a message-filtered fault set on the measured links (100 % loss of a label
//!   the bench frames never carry, so every frame is cut out whole, classified, judged and forwarded);
//!
//! Then the median round trip under a 100 ms latency fault. Prints one JSON line. Run with `cargo run --release -p squall-chaos --example proxy_bench`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use squall_chaos::{Classifier, Fault, FaultSpec, Flow, LabelSet, LinkId, Network};

mod benchkit;

const RTT_SAMPLES: usize = 5000;
const SMALL: usize = 64;
const BULK_FRAME: usize = 64 * 1024;
const BULK_BYTES: usize = 256 * 1024 * 1024;
const FAULT_SAMPLES: usize = 40;

async fn rtts(addr: SocketAddr, n: usize) -> Vec<Duration> {
    benchkit::lp_rtts(addr, &[7u8; SMALL], n).await
}

/// MB/s of length-delimited frames pushed one way until the receiver has them all.
async fn throughput(addr: SocketAddr) -> f64 {
    let mut frame = (BULK_FRAME as u32).to_be_bytes().to_vec();
    frame.extend(vec![1u8; BULK_FRAME]);
    benchkit::push_throughput(addr, &frame, BULK_BYTES / frame.len()).await
}

/// A stand-in for squall's wire classifier (which reads a bincode-encoded tarpc envelope): it decodes up to
/// eight bincode varints from the prefix, about the work of reading an envelope up to an AppendEntries' entry
/// count, and labels every bench frame `data`.
struct VarintClassifier;

impl Classifier for VarintClassifier {
    fn labels(&self) -> &[&'static str] {
        &["data", "vote-reply"]
    }
    fn classify(&self, _flow: Flow, prefix: &[u8]) -> Option<u8> {
        let mut at = 0;
        let mut sum = 0u64;
        for _ in 0..8 {
            let b = *prefix.get(at)?;
            let (v, n) = match b {
                0..=250 => (u64::from(b), 1),
                251 => (
                    u64::from(u16::from_le_bytes([
                        *prefix.get(at + 1)?,
                        *prefix.get(at + 2)?,
                    ])),
                    3,
                ),
                _ => (u64::from(b), 1),
            };
            sum = sum.wrapping_add(v);
            at += n;
        }
        Some(u8::from(sum == u64::MAX))
    }
    fn describe(&self, _flow: Flow, payload: &[u8]) -> String {
        format!("{} bytes", payload.len())
    }
}

/// A network whose links 1->2 (to the echo server) and 1->3 (to the sink) are proxied.
async fn network(
    net: Network,
    echo: SocketAddr,
    sink: SocketAddr,
) -> (Network, SocketAddr, SocketAddr) {
    net.set_upstream(2, echo);
    net.set_upstream(3, sink);
    let to_echo = net.add_link(1, 2).await.unwrap();
    let to_sink = net.add_link(1, 3).await.unwrap();
    (net, to_echo, to_sink)
}

/// Nanoseconds one `MessageTrace::record` takes on its own (one million calls into a ring that overflows,
/// as it does at workload rates).
fn record_cost() -> f64 {
    let trace = squall_chaos::MessageTrace::default();
    trace.set_on(true);
    let link = LinkId::new(1, 2);
    let n = 1_000_000u64;
    let start = std::time::Instant::now();
    for i in 0..n {
        let at_us = trace.now_us();
        trace.record(
            link,
            Some(std::borrow::Cow::Borrowed("append")),
            i,
            squall_chaos::Fate::Delivered { at_us },
        );
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

#[tokio::main]
async fn main() {
    let echo = benchkit::echo_server().await;
    let sink = benchkit::sink_server().await;
    let (plain, plain_echo, plain_sink) = network(Network::new(1), echo, sink).await;
    let classifier = || -> Arc<dyn Classifier> { Arc::new(VarintClassifier) };
    let (_labelled, lab_echo, lab_sink) =
        network(Network::with_classifier(1, classifier()), echo, sink).await;
    let (filtered, fil_echo, fil_sink) =
        network(Network::with_classifier(1, classifier()), echo, sink).await;
    // As `labelled`, with the message trace on: every frame is also recorded in the bounded ring.
    let (traced, tr_echo, tr_sink) =
        network(Network::with_classifier(1, classifier()), echo, sink).await;
    traced.trace().set_on(true);
    // Like `loss *->1 100% only vote-reply`, on the measured links (the echo link both ways; the sink link one
    // way, since the sink answers with a bare count, not a frame): no bench frame is a vote reply.
    filtered.add_fault(
        [LinkId::new(1, 2), LinkId::new(2, 1), LinkId::new(1, 3)],
        FaultSpec::permanent(Fault::Loss { p: 1.0 }).only(LabelSet::of([1])),
    );

    let targets = [echo, plain_echo, lab_echo, fil_echo, tr_echo];
    let samples = benchkit::alternate(&targets, 4, async |t| rtts(t, RTT_SAMPLES / 4).await).await;
    let sinks = [sink, plain_sink, lab_sink, fil_sink, tr_sink];
    let mut tputs: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for _ in 0..3 {
        for (i, t) in sinks.iter().enumerate() {
            tputs[i].push(throughput(*t).await);
        }
    }
    let tp: Vec<f64> = tputs.iter_mut().map(|v| benchkit::median(v)).collect();
    let p50: Vec<f64> = samples.iter().map(|s| benchkit::pct(s, 0.5)).collect();
    let p99: Vec<f64> = samples.iter().map(|s| benchkit::pct(s, 0.99)).collect();
    let dropped = filtered
        .link_stats(LinkId::new(1, 2))
        .map_or(0, |s| s.frames_dropped);
    assert_eq!(dropped, 0, "the filter matched a bench frame");

    plain.set_fault(LinkId::new(1, 2), Fault::latency_ms(100).into());
    let mut faulted = rtts(plain_echo, FAULT_SAMPLES).await;
    faulted.sort();

    let traced_events = traced.trace().since(0).next;
    let record_ns = record_cost();
    let names = ["direct", "plain", "labelled", "filtered", "traced"];
    let mut json = String::from("{");
    for (i, n) in names.iter().enumerate() {
        json.push_str(&format!(
            "\"rtt_{n}_p50_us\":{:.1},\"rtt_{n}_p99_us\":{:.1},\"throughput_{n}_mb_s\":{:.0},",
            p50[i], p99[i], tp[i]
        ));
    }
    json.push_str(&format!(
        "\"added_p50_plain_us\":{:.1},\"added_p50_labelled_us\":{:.1},\"added_p50_filtered_us\":{:.1},\
         \"labelled_minus_plain_p50_us\":{:.1},\"filtered_minus_plain_p50_us\":{:.1},\
         \"traced_minus_labelled_p50_us\":{:.1},\"throughput_ratio_traced\":{:.3},\"trace_events\":{traced_events},\
         \"trace_record_ns\":{record_ns:.1},\
         \"throughput_ratio_plain\":{:.3},\"throughput_ratio_labelled\":{:.3},\"throughput_ratio_filtered\":{:.3},\
         \"frame_bytes\":{SMALL},\"rtt_samples_each\":{},\"bulk_frame_bytes\":{BULK_FRAME},\"bulk_total_bytes\":{BULK_BYTES},\
         \"latency_fault_ms\":100,\"latency_fault_rtt_p50_ms\":{:.2},\"latency_fault_rtt_max_ms\":{:.2},\"latency_fault_samples\":{}}}",
        p50[1] - p50[0],
        p50[2] - p50[0],
        p50[3] - p50[0],
        p50[2] - p50[1],
        p50[3] - p50[1],
        p50[4] - p50[2],
        tp[4] / tp[0],
        tp[1] / tp[0],
        tp[2] / tp[0],
        tp[3] / tp[0],
        samples[0].len(),
        benchkit::pct(&faulted, 0.5) / 1000.0,
        benchkit::pct(&faulted, 1.0) / 1000.0,
        faulted.len(),
    ));
    println!("{json}");
}
