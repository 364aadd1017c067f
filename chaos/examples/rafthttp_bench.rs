//! Measures what the rafthttp framing with sender identification costs per frame against the per-sender,
//! length-prefixed proxy, side by side in one run.
//!
//! Two request/response exchanges of one small raft message each, direct and through the proxy:
//! - `length-prefixed`: a 4-byte length + 64-byte protobuf message echoed back, through a per-sender link
//!   proxy (`Network::add_link`);
//! - `rafthttp`: etcd's pipeline exchange, `POST /raft` with the same message as body and a `204 No Content`
//!   answer, through a per-destination proxy (`Network::add_destination`) that identifies the sender from
//!   `X-Server-From`, parses both directions with httparse and judges the message as a frame.
//!
//! Both proxies run with the same classifier (it reads the protobuf's type field). The added median round trip
//! of each is the proxy's cost for two frames (one each way); the difference between them is what the
//! framing adds. Then throughput, alternated the same way: 64 KiB length-prefixed frames pushed one way direct,
//! through a proxy without a classifier (`plain`, as proxy_bench's) and with one (`labelled`), and 64 KiB
//! pipeline POSTs direct and through the rafthttp proxy; each proxy's ratio to its direct path. Prints one
//! JSON line. Run with `cargo run --release -p squall-chaos --example rafthttp_bench`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use squall_chaos::proxy::protobuf::{Fields, Value, put_uint};
use squall_chaos::{Classifier, Flow, Framing, Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod benchkit;

const SAMPLES: usize = 4000;
const ROUNDS: usize = 4;
const MEMBER: u64 = 0xabc;
const BULK_BODY: usize = 64 * 1024;
const BULK_BYTES: usize = 128 * 1024 * 1024;

/// A MsgHeartbeat-like message of about 64 bytes.
fn message() -> Vec<u8> {
    let mut pb = Vec::new();
    for (n, v) in [
        (1, 8),
        (2, 2),
        (3, MEMBER),
        (4, 5),
        (5, 0),
        (6, 0),
        (8, 123_456),
    ] {
        put_uint(&mut pb, n, v);
    }
    while pb.len() < 64 {
        put_uint(&mut pb, 11, 0);
    }
    pb
}

/// Labels by the protobuf's type field, as etcd's classifier does.
struct TypeClassifier;

impl Classifier for TypeClassifier {
    fn labels(&self) -> &[&'static str] {
        &["heartbeat", "other"]
    }
    fn classify(&self, _flow: Flow, prefix: &[u8]) -> Option<u8> {
        match Fields::new(prefix).next()? {
            (1, Value::Varint(8)) => Some(0),
            _ => Some(1),
        }
    }
    fn describe(&self, _flow: Flow, payload: &[u8]) -> String {
        format!("{} bytes", payload.len())
    }
}

/// Answers every `POST /raft` with `204 No Content` once its body is in, like etcd's pipeline handler.
async fn pipeline_server() -> SocketAddr {
    benchkit::server(|mut s| async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = req.parse(&buf) {
                let len: usize = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= head + len {
                    buf.drain(..head + len);
                    if s.write_all(ANSWER).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
}

const ANSWER: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";

/// One pipeline `POST /raft` from member [`MEMBER`] carrying `body`.
fn post(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /raft HTTP/1.1\r\nHost: bench\r\nContent-Type: application/protobuf\r\n\
         X-Server-From: {MEMBER:x}\r\nX-Etcd-Cluster-ID: 1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

async fn http_rtts(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let req = post(&message());
    let mut got = vec![0u8; ANSWER.len()];
    benchkit::timed(n, async || {
        s.write_all(&req).await.unwrap();
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, ANSWER);
    })
    .await
}

/// MB/s of pipeline POSTs with [`BULK_BODY`]-byte bodies written back to back (the answers read meanwhile)
/// until every answer is in.
async fn http_throughput(addr: SocketAddr) -> f64 {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let req = post(&vec![1u8; BULK_BODY]);
    let count = BULK_BYTES / req.len();
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = vec![0u8; ANSWER.len() * count];
        rd.read_exact(&mut got).await.unwrap();
    });
    for _ in 0..count {
        wr.write_all(&req).await.unwrap();
    }
    reader.await.unwrap();
    (count * req.len()) as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// MB/s of length-delimited frames of [`BULK_BODY`] bytes pushed one way.
async fn lp_throughput(addr: SocketAddr) -> f64 {
    let mut frame = (BULK_BODY as u32).to_be_bytes().to_vec();
    frame.extend(vec![1u8; BULK_BODY]);
    benchkit::push_throughput(addr, &frame, BULK_BYTES / frame.len()).await
}

#[tokio::main]
async fn main() {
    let echo = benchkit::echo_server().await;
    let sink = benchkit::sink_server().await;
    let pipeline = pipeline_server().await;
    let classifier = || -> Arc<dyn Classifier> { Arc::new(TypeClassifier) };

    let lp = Network::with_classifier(1, classifier());
    lp.set_upstream(2, echo);
    lp.set_upstream(3, sink);
    let lp_proxy = lp.add_link(1, 2).await.unwrap();
    let lp_sink = lp.add_link(1, 3).await.unwrap();
    // The proxy without a classifier, as proxy_bench's `plain`.
    let plain = Network::new(1);
    plain.set_upstream(3, sink);
    let plain_sink = plain.add_link(1, 3).await.unwrap();

    let rh = Network::with_framing(1, Framing::RaftHttp, Some(classifier()));
    rh.set_upstream(2, pipeline);
    rh.senders().set(MEMBER, 1);
    let rh_proxy = rh.add_destination(2).await.unwrap();

    #[derive(Clone, Copy)]
    enum Path {
        Lp(SocketAddr),
        Http(SocketAddr),
    }
    let paths = [
        Path::Lp(echo),
        Path::Lp(lp_proxy),
        Path::Http(pipeline),
        Path::Http(rh_proxy),
    ];
    let payload = message();
    let s = benchkit::alternate(&paths, ROUNDS, async |p| match p {
        Path::Lp(a) => benchkit::lp_rtts(a, &payload, SAMPLES / ROUNDS).await,
        Path::Http(a) => http_rtts(a, SAMPLES / ROUNDS).await,
    })
    .await;
    let p: Vec<f64> = s.iter().map(|v| benchkit::pct(v, 0.5)).collect();
    let lp_added = p[1] - p[0];
    let rh_added = p[3] - p[2];
    let link = rh
        .link_stats(squall_chaos::LinkId::new(1, 2))
        .expect("the sender was identified");
    assert!(
        link.frames_forwarded as usize >= SAMPLES,
        "every POST was a frame on link 1->2: {link:?}"
    );

    // Throughput, alternated the same way: direct, plain proxy, labelled proxy; direct and rafthttp proxy.
    let mut tp: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for _ in 0..3 {
        tp[0].push(lp_throughput(sink).await);
        tp[1].push(lp_throughput(plain_sink).await);
        tp[2].push(lp_throughput(lp_sink).await);
        tp[3].push(http_throughput(pipeline).await);
        tp[4].push(http_throughput(rh_proxy).await);
    }
    let t: Vec<f64> = tp.iter_mut().map(|v| benchkit::median(v)).collect();
    println!(
        "{{\"samples\":{SAMPLES},\"lp_direct_p50_us\":{:.1},\"lp_proxied_p50_us\":{:.1},\
         \"rafthttp_direct_p50_us\":{:.1},\"rafthttp_proxied_p50_us\":{:.1},\
         \"lp_added_p50_us\":{lp_added:.1},\"rafthttp_added_p50_us\":{rh_added:.1},\
         \"rafthttp_minus_lp_per_frame_us\":{:.1},\"bulk_unit_bytes\":{BULK_BODY},\
         \"lp_direct_mb_s\":{:.0},\"plain_mb_s\":{:.0},\"labelled_mb_s\":{:.0},\
         \"rafthttp_direct_mb_s\":{:.0},\"rafthttp_proxied_mb_s\":{:.0},\
         \"throughput_ratio_plain\":{:.3},\"throughput_ratio_labelled\":{:.3},\"throughput_ratio_rafthttp\":{:.3}}}",
        p[0],
        p[1],
        p[2],
        p[3],
        (rh_added - lp_added) / 2.0,
        t[0],
        t[1],
        t[2],
        t[3],
        t[4],
        t[1] / t[0],
        t[2] / t[0],
        t[4] / t[3],
    );
}
