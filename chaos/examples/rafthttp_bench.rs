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
//! framing adds. Prints one JSON line. Run with `cargo run --release -p squall-chaos --example rafthttp_bench`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use squall_chaos::proxy::protobuf::{Fields, Value, put_uint};
use squall_chaos::{Classifier, Flow, Framing, Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const SAMPLES: usize = 4000;
const ROUNDS: usize = 4;
const MEMBER: u64 = 0xabc;

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

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut f = Framed::new(s, LengthDelimitedCodec::new());
                while let Some(Ok(frame)) = f.next().await {
                    if f.send(frame.freeze()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Answers every `POST /raft` with `204 No Content` once its body is in, like etcd's pipeline handler.
async fn pipeline_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
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
                            if s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                                .await
                                .is_err()
                            {
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
            });
        }
    });
    addr
}

async fn lp_rtts(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut f = Framed::new(s, LengthDelimitedCodec::new());
    let payload = bytes::Bytes::from(message());
    let mut out = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        f.send(payload.clone()).await.unwrap();
        f.next().await.unwrap().unwrap();
        if i >= n / 10 {
            out.push(start.elapsed());
        }
    }
    out
}

async fn http_rtts(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let body = message();
    let mut req = format!(
        "POST /raft HTTP/1.1\r\nHost: bench\r\nContent-Type: application/protobuf\r\n\
         X-Server-From: {MEMBER:x}\r\nX-Etcd-Cluster-ID: 1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
    let mut got = vec![0u8; answer.len()];
    let mut out = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        s.write_all(&req).await.unwrap();
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, answer);
        if i >= n / 10 {
            out.push(start.elapsed());
        }
    }
    out
}

fn p50(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let echo = echo_server().await;
    let pipeline = pipeline_server().await;
    let classifier = || -> Arc<dyn Classifier> { Arc::new(TypeClassifier) };

    let lp = Network::with_classifier(1, classifier());
    lp.set_upstream(2, echo);
    let lp_proxy = lp.add_link(1, 2).await.unwrap();

    let rh = Network::with_framing(1, Framing::RaftHttp, Some(classifier()));
    rh.set_upstream(2, pipeline);
    rh.senders().set(MEMBER, 1);
    let rh_proxy = rh.add_destination(2).await.unwrap();

    // Alternate the paths so drift on a shared machine hits all alike.
    let mut s: Vec<Vec<Duration>> = vec![Vec::new(); 4];
    for _ in 0..ROUNDS {
        s[0].extend(lp_rtts(echo, SAMPLES / ROUNDS).await);
        s[1].extend(lp_rtts(lp_proxy, SAMPLES / ROUNDS).await);
        s[2].extend(http_rtts(pipeline, SAMPLES / ROUNDS).await);
        s[3].extend(http_rtts(rh_proxy, SAMPLES / ROUNDS).await);
    }
    let p: Vec<f64> = s.iter_mut().map(|v| p50(v)).collect();
    let lp_added = p[1] - p[0];
    let rh_added = p[3] - p[2];
    let link = rh
        .link_stats(squall_chaos::LinkId::new(1, 2))
        .expect("the sender was identified");
    assert!(
        link.frames_forwarded as usize >= SAMPLES,
        "every POST was a frame on link 1->2: {link:?}"
    );
    println!(
        "{{\"samples\":{SAMPLES},\"lp_direct_p50_us\":{:.1},\"lp_proxied_p50_us\":{:.1},\
         \"rafthttp_direct_p50_us\":{:.1},\"rafthttp_proxied_p50_us\":{:.1},\
         \"lp_added_p50_us\":{lp_added:.1},\"rafthttp_added_p50_us\":{rh_added:.1},\
         \"rafthttp_minus_lp_per_frame_us\":{:.1}}}",
        p[0],
        p[1],
        p[2],
        p[3],
        (rh_added - lp_added) / 2.0
    );
}
