//! Test support: a length-delimited echo server and client that check every frame for tearing.
//!
//! Every test payload is `seq (8 bytes) | body length (4 bytes) | body`, where body byte `i` is `seq + i`, so any
//! torn, merged or corrupted frame fails the check on either end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use super::{Endpoint, LinkId, Network};

/// Marks the end of a test run; sent after faults are removed.
pub(crate) const MARKER: u64 = u64::MAX;

/// The seed for a randomised test: `SQUALL_CHAOS_SEED` if set, else `default`; printed so a failure can be rerun.
pub(crate) fn seed(default: u64) -> u64 {
    let seed = std::env::var("SQUALL_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (rerun with SQUALL_CHAOS_SEED={seed})");
    seed
}

/// The payload for frame `seq` with `size` body bytes.
pub(crate) fn payload(seq: u64, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(12 + size);
    b.put_u64(seq);
    b.put_u32(size as u32);
    b.extend((0..size).map(|i| seq.wrapping_add(i as u64) as u8));
    b.freeze()
}

/// The sequence number of a well-formed payload, or what is wrong with it.
pub(crate) fn check(frame: &[u8]) -> Result<u64, String> {
    if frame.len() < 12 {
        return Err(format!(
            "frame of {} bytes is shorter than its header",
            frame.len()
        ));
    }
    let seq = u64::from_be_bytes(frame[..8].try_into().expect("8 bytes"));
    let size = u32::from_be_bytes(frame[8..12].try_into().expect("4 bytes")) as usize;
    if frame.len() != 12 + size {
        return Err(format!(
            "frame {seq}: {} bytes, header says {}",
            frame.len(),
            12 + size
        ));
    }
    if let Some(i) = (0..size).find(|&i| frame[12 + i] != seq.wrapping_add(i as u64) as u8) {
        return Err(format!("frame {seq}: byte {i} corrupt"));
    }
    Ok(seq)
}

/// An echo server that records what it received.
pub(crate) struct Echo {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u64>>>,
    torn: Arc<AtomicU64>,
}

impl Echo {
    pub(crate) async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("echo addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let torn = Arc::new(AtomicU64::new(0));
        let (r, t) = (received.clone(), torn.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (r, t) = (r.clone(), t.clone());
                tokio::spawn(async move {
                    let (rx, tx) = sock.into_split();
                    let mut rx = FramedRead::new(rx, LengthDelimitedCodec::new());
                    let mut tx = FramedWrite::new(tx, LengthDelimitedCodec::new());
                    while let Some(Ok(frame)) = rx.next().await {
                        match check(&frame) {
                            Ok(seq) => r.lock().unwrap().push(seq),
                            Err(e) => {
                                eprintln!("echo: {e}");
                                t.fetch_add(1, Relaxed);
                            }
                        }
                        if tx.send(frame.freeze()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Echo {
            addr,
            received,
            torn,
        }
    }

    /// Sequence numbers received so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<u64> {
        self.received.lock().unwrap().clone()
    }

    /// Frames that failed the check.
    pub(crate) fn torn(&self) -> u64 {
        self.torn.load(Relaxed)
    }
}

/// A client of the echo server.
pub(crate) struct Client {
    tx: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    rx: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
}

/// What a receive saw.
#[derive(Debug, PartialEq)]
pub(crate) enum Got {
    Frame(u64),
    Timeout,
    Closed,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        let sock = TcpStream::connect(addr).await.expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        let (rx, tx) = sock.into_split();
        Client {
            tx: FramedWrite::new(tx, LengthDelimitedCodec::new()),
            rx: FramedRead::new(rx, LengthDelimitedCodec::new()),
        }
    }

    /// The sending and receiving halves, to drive both at once (a transfer bigger than the socket buffers would
    /// otherwise stall against its own echo).
    pub(crate) fn into_halves(
        self,
    ) -> (
        FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
        FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    ) {
        (self.tx, self.rx)
    }

    /// Sends frame `seq`; false if the connection is gone.
    pub(crate) async fn send(&mut self, seq: u64, size: usize) -> bool {
        self.tx.send(payload(seq, size)).await.is_ok()
    }

    /// Writes raw bytes, bypassing the framing (to stop half-way through a frame).
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.tx.get_mut().write_all(bytes).await.expect("raw write");
    }

    /// Waits up to `wait` for the next echoed frame, panicking on a torn one.
    pub(crate) async fn recv(&mut self, wait: Duration) -> Got {
        match tokio::time::timeout(wait, self.rx.next()).await {
            Err(_) => Got::Timeout,
            Ok(None) | Ok(Some(Err(_))) => Got::Closed,
            Ok(Some(Ok(frame))) => Got::Frame(check(&frame).unwrap_or_else(|e| panic!("{e}"))),
        }
    }

    /// Sends the marker and collects echoed frames until it returns (within `deadline`).
    pub(crate) async fn drain_to_marker(&mut self, deadline: Duration) -> Vec<u64> {
        assert!(
            self.send(MARKER, 0).await,
            "connection closed before the marker"
        );
        let end = Instant::now() + deadline;
        let mut got = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Got::Frame(MARKER) => return got,
                Got::Frame(seq) => got.push(seq),
                other => panic!(
                    "marker not echoed: {other:?} after {} frames: {got:?}",
                    got.len()
                ),
            }
        }
    }

    /// One round trip of frame `seq`; its duration.
    pub(crate) async fn rtt(&mut self, seq: u64, size: usize) -> Duration {
        let start = Instant::now();
        assert!(self.send(seq, size).await);
        assert_eq!(self.recv(Duration::from_secs(10)).await, Got::Frame(seq));
        start.elapsed()
    }
}

/// Node 2 runs an echo server; node 1 reaches it through the proxy of link 1->2.
pub(crate) struct Pair {
    pub net: Network,
    pub echo: Echo,
    pub proxy: SocketAddr,
}

pub(crate) const A: Endpoint = 1;
pub(crate) const B: Endpoint = 2;
pub(crate) const AB: LinkId = LinkId { from: A, to: B };
pub(crate) const BA: LinkId = LinkId { from: B, to: A };

/// Labels test frames by their sequence number: `even` or `odd` (the marker is unlabelled).
pub(crate) struct Parity;

impl super::Classifier for Parity {
    fn labels(&self) -> &[&'static str] {
        &["even", "odd"]
    }
    fn classify(&self, _flow: super::Flow, prefix: &[u8]) -> Option<u8> {
        let seq = u64::from_be_bytes(prefix.get(..8)?.try_into().ok()?);
        (seq != MARKER).then_some((seq % 2) as u8)
    }
    fn describe(&self, flow: super::Flow, payload: &[u8]) -> String {
        format!("{flow:?} {:?}", check(payload))
    }
}

impl Pair {
    pub(crate) async fn new(seed: u64) -> Pair {
        Pair::on(Network::new(seed)).await
    }

    /// A pair whose network labels frames with [`Parity`].
    pub(crate) async fn labelled(seed: u64) -> Pair {
        Pair::on(Network::with_classifier(seed, std::sync::Arc::new(Parity))).await
    }

    async fn on(net: Network) -> Pair {
        let echo = Echo::start().await;
        net.set_upstream(B, echo.addr);
        let proxy = net.add_link(A, B).await.expect("add link");
        Pair { net, echo, proxy }
    }
}

/// Polls `f` until it returns true or `deadline` passes; on timeout panics with `what` and the last `seen`.
pub(crate) async fn poll_until<F: FnMut() -> (bool, String)>(
    what: &str,
    deadline: Duration,
    mut f: F,
) {
    let end = Instant::now() + deadline;
    loop {
        let (ok, seen) = f();
        if ok {
            return;
        }
        if Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
