//! What the proxy benches share: the servers on the far side of a proxy, round trips of one frame, throughput
//! of a one-way push, percentiles, and the alternating rounds that spread a shared machine's drift over every
//! path alike. Each bench includes it with `mod benchkit;` (it is not an example itself).

#![allow(dead_code)] // each bench uses its own part

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Serves every connection accepted on a fresh 127.0.0.1 port with `serve`; returns the port's address.
pub async fn server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            tokio::spawn(serve(s));
        }
    });
    addr
}

/// Echoes every length-delimited frame.
pub async fn echo_server() -> SocketAddr {
    server(|s| async move {
        let mut f = Framed::new(s, LengthDelimitedCodec::new());
        while let Some(Ok(frame)) = f.next().await {
            if f.send(frame.freeze()).await.is_err() {
                break;
            }
        }
    })
    .await
}

/// Round trips of `payload` as one length-delimited frame, `n` of them after `n / 10` to warm up.
pub async fn lp_rtts(addr: SocketAddr, payload: &[u8], n: usize) -> Vec<Duration> {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut f = Framed::new(s, LengthDelimitedCodec::new());
    let payload = bytes::Bytes::copy_from_slice(payload);
    timed(n, async || {
        f.send(payload.clone()).await.unwrap();
        f.next().await.unwrap().unwrap();
    })
    .await
}

/// Times `n` calls of `once` after `n / 10` unmeasured ones.
pub async fn timed(n: usize, mut once: impl AsyncFnMut()) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let start = Instant::now();
        once().await;
        if i >= n / 10 {
            out.push(start.elapsed());
        }
    }
    out
}

/// Runs `rounds` rounds; in each, `measure(path)` for every path in turn, so drift on a shared machine hits all
/// paths alike. Returns each path's samples, sorted.
pub async fn alternate<T: Copy>(
    paths: &[T],
    rounds: usize,
    mut measure: impl AsyncFnMut(T) -> Vec<Duration>,
) -> Vec<Vec<Duration>> {
    let mut out = vec![Vec::new(); paths.len()];
    for _ in 0..rounds {
        for (i, p) in paths.iter().enumerate() {
            out[i].extend(measure(*p).await);
        }
    }
    for s in &mut out {
        s.sort();
    }
    out
}

/// The `p` quantile of sorted samples, in µs.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// The median of `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Counts bytes until EOF, then answers with the count (8 bytes, big-endian).
pub async fn sink_server() -> SocketAddr {
    server(|mut s| async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        let _ = s.write_all(&total.to_be_bytes()).await;
    })
    .await
}

/// MB/s of `unit` written `count` times one way to a [`sink_server`] (directly or through a proxy) until it
/// has counted every byte.
pub async fn push_throughput(addr: SocketAddr, unit: &[u8], count: usize) -> f64 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    for _ in 0..count {
        s.write_all(unit).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        u64::from_be_bytes(ack),
        (count * unit.len()) as u64,
        "bytes lost"
    );
    (count * unit.len()) as f64 / secs / 1e6
}
