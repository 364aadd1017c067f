//! Measures what the link proxy costs: round-trip time of a small frame direct vs proxied (p50/p99),
//! one-way throughput direct vs proxied, and the median round trip under a 100 ms latency fault.
//! Prints one JSON line. Run with `cargo run --release -p squall-chaos --example proxy_bench`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use squall_chaos::{Fault, LinkId, Network};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const RTT_SAMPLES: usize = 5000;
const SMALL: usize = 64;
const BULK_FRAME: usize = 64 * 1024;
const BULK_BYTES: usize = 512 * 1024 * 1024;
const FAULT_SAMPLES: usize = 40;

/// Echoes every length-delimited frame.
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

/// Counts bytes until EOF, then answers with the count.
async fn sink_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
                let _ = s.write_all(&total.to_be_bytes()).await;
            });
        }
    });
    addr
}

async fn rtts(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut f = Framed::new(s, LengthDelimitedCodec::new());
    let payload = bytes::Bytes::from(vec![7u8; SMALL]);
    let mut out = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        f.send(payload.clone()).await.unwrap();
        f.next().await.unwrap().unwrap();
        if i >= n / 10 {
            out.push(start.elapsed()); // the first tenth warms up
        }
    }
    out.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// MB/s of length-delimited frames pushed one way until the receiver has them all.
async fn throughput(addr: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut frame = (BULK_FRAME as u32).to_be_bytes().to_vec();
    frame.extend(vec![1u8; BULK_FRAME]);
    let count = BULK_BYTES / frame.len();
    let start = Instant::now();
    for _ in 0..count {
        s.write_all(&frame).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        u64::from_be_bytes(ack),
        (count * frame.len()) as u64,
        "bytes lost"
    );
    (count * frame.len()) as f64 / secs / 1e6
}

#[tokio::main]
async fn main() {
    let net = Network::new(1);
    let echo = echo_server().await;
    let sink = sink_server().await;
    net.set_upstream(2, echo);
    net.set_upstream(3, sink);
    let to_echo = net.add_link(1, 2).await.unwrap();
    let to_sink = net.add_link(1, 3).await.unwrap();

    // Alternate direct and proxied runs so drift on a shared machine hits both alike.
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    for _ in 0..2 {
        direct.extend(rtts(echo, RTT_SAMPLES / 2).await);
        proxied.extend(rtts(to_echo, RTT_SAMPLES / 2).await);
    }
    direct.sort();
    proxied.sort();
    let mut tput_direct = Vec::new();
    let mut tput_proxied = Vec::new();
    for _ in 0..3 {
        tput_direct.push(throughput(sink).await);
        tput_proxied.push(throughput(to_sink).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (td, tp) = (median(&mut tput_direct), median(&mut tput_proxied));

    net.set_fault(LinkId::new(1, 2), Fault::latency_ms(100).into());
    let faulted = rtts(to_echo, FAULT_SAMPLES).await;

    println!(
        "{{\"rtt_direct_p50_us\":{:.1},\"rtt_direct_p99_us\":{:.1},\"rtt_proxied_p50_us\":{:.1},\"rtt_proxied_p99_us\":{:.1},\"rtt_added_p50_us\":{:.1},\"frame_bytes\":{},\"rtt_samples\":{},\"throughput_direct_mb_s\":{:.0},\"throughput_proxied_mb_s\":{:.0},\"throughput_ratio\":{:.3},\"bulk_frame_bytes\":{},\"bulk_total_bytes\":{},\"latency_fault_ms\":100,\"latency_fault_rtt_p50_ms\":{:.2},\"latency_fault_rtt_max_ms\":{:.2},\"latency_fault_samples\":{}}}",
        pct(&direct, 0.5),
        pct(&direct, 0.99),
        pct(&proxied, 0.5),
        pct(&proxied, 0.99),
        pct(&proxied, 0.5) - pct(&direct, 0.5),
        SMALL,
        direct.len(),
        td,
        tp,
        tp / td,
        BULK_FRAME,
        BULK_BYTES,
        pct(&faulted, 0.5) / 1000.0,
        pct(&faulted, 1.0) / 1000.0,
        faulted.len(),
    );
}
