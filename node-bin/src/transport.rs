//! Framing shared by every tarpc connection squall makes: length-delimited frames with an explicit limit,
//! bincode inside, TCP_NODELAY on, and the API port's one-byte service selector.
//!
//! Two ways to use it. [`framed`] wraps a stream for tarpc's own client and server (the orchestrator's calls,
//! the Paxos node's sender). The node's own write path does without tarpc's tasks but not without its wire:
//! [`encode_frame`] and [`decode_frame`] make and read the very bytes `framed` does (tarpc's `ClientMessage`
//! and `Response` in bincode with tokio-serde's default options, behind a 4-byte big-endian length), and a
//! [`FrameWriter`] lets whoever holds an answer (the actor, the persist thread) write its frame to the socket
//! at once, with a connection task writing only what the socket would not take right away. So the link proxy,
//! its classifier, held frames, `step` and the trace see the same frames as before.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tarpc::client;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use crate::rpc::{self, ControlServiceClient, MAX_FRAME_BYTES, PeerServiceClient};

/// A tarpc transport over TCP with squall's framing.
pub type TcpTransport<Item, SinkItem> =
    tarpc::serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>;

/// Wraps an open stream in squall's framing (frame limit set explicitly).
pub fn framed<Item, SinkItem>(stream: TcpStream) -> TcpTransport<Item, SinkItem>
where
    Item: for<'de> Deserialize<'de>,
    SinkItem: Serialize,
{
    let _ = stream.set_nodelay(true);
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec();
    tarpc::serde_transport::new(Framed::new(stream, codec), Bincode::default())
}

/// A tarpc context whose deadline is `timeout` from now (tarpc's 10 s default is never right here).
pub fn deadline(timeout: Duration) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

/// Opens a TCP connection within `timeout`.
pub async fn dial(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {addr} timed out after {timeout:?}"),
        )),
    }
}

/// Connects to a node's peer port.
pub async fn connect_peer(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<PeerServiceClient> {
    let stream = dial(addr, timeout).await?;
    Ok(PeerServiceClient::new(client::Config::default(), framed(stream)).spawn())
}

/// Opens a connection to a node's API port and selects a service with its first byte ([`rpc::API_CLIENT`]
/// or [`rpc::API_CONTROL`]).
pub async fn dial_api(
    addr: SocketAddr,
    timeout: Duration,
    service: u8,
) -> std::io::Result<TcpStream> {
    let mut stream = dial(addr, timeout).await?;
    stream.write_all(&[service]).await?;
    Ok(stream)
}

/// Connects to a node's API port and selects the client (KV) service.
pub async fn connect_client(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<rpc::ClientServiceClient> {
    let stream = dial_api(addr, timeout, rpc::API_CLIENT).await?;
    Ok(rpc::ClientServiceClient::new(client::Config::default(), framed(stream)).spawn())
}

/// Connects to a node's API port and selects the control service.
pub async fn connect_control(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<ControlServiceClient> {
    let stream = dial_api(addr, timeout, rpc::API_CONTROL).await?;
    Ok(ControlServiceClient::new(client::Config::default(), framed(stream)).spawn())
}

/// The bincode options of tarpc's framing (tokio-serde's default): varint integers, little-endian, no
/// trailing bytes.
fn bincode_options() -> bincode::DefaultOptions {
    bincode::DefaultOptions::new()
}

/// Encodes `item` as one frame exactly as [`framed`] sends it: its length as 4 bytes big-endian (the
/// default of tokio-util's `LengthDelimitedCodec`), then the item in bincode with tokio-serde's default
/// options. Errors: the item does not serialize, or its frame would exceed [`MAX_FRAME_BYTES`] (which the
/// other side would refuse).
pub fn encode_frame<T: Serialize>(item: &T) -> std::io::Result<Vec<u8>> {
    use bincode::Options as _;
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[0; 4]);
    bincode_options()
        .serialize_into(&mut buf, item)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a frame of {len} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes"),
        ));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Decodes the body of one frame (without its length), as [`framed`] reads it. Errors with
/// `InvalidData` on bytes that are not a `T`.
pub fn decode_frame<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::io::Result<T> {
    use bincode::Options as _;
    bincode_options()
        .deserialize(body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads the frames of a stream's read half one by one (each `Bytes` is a body, without its length), with
/// the frame limit of [`framed`].
pub fn frame_reader<R: tokio::io::AsyncRead>(
    read: R,
) -> tarpc::tokio_util::codec::FramedRead<R, LengthDelimitedCodec> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec();
    tarpc::tokio_util::codec::FramedRead::new(read, codec)
}

/// Most bytes a [`FrameWriter`] keeps for a socket that does not take them: beyond this the peer is not
/// reading (it is stopped, or its link holds everything) and the connection is given up as broken, as a
/// tarpc client's would be once its deadlines pass, instead of growing without bound.
pub const MAX_UNSENT_BYTES: usize = 8 * MAX_FRAME_BYTES;

/// The write half of one connection, shared by everyone who answers on it: [`FrameWriter::send`] writes a
/// whole frame to the socket from the caller's thread (any thread: the actor, the persist thread, a task) when
/// the socket takes it, which on loopback it nearly always does, so no task is woken for it; what the socket
/// does not take is kept, in order, and written by [`FrameWriter::flush`], which the connection's own task
/// runs. Frames never interleave: the lock is held from the first byte tried to the last kept.
pub struct FrameWriter {
    half: OwnedWriteHalf,
    out: std::sync::Mutex<Unsent>,
    wake: tokio::sync::Notify,
}

/// What a [`FrameWriter`] has not written yet.
#[derive(Default)]
struct Unsent {
    bytes: Vec<u8>,
    /// How much of `bytes` is written already.
    at: usize,
    /// The connection failed (or was given up): nothing more is written.
    broken: bool,
}

impl FrameWriter {
    /// A writer over `half`.
    pub fn new(half: OwnedWriteHalf) -> FrameWriter {
        FrameWriter {
            half,
            out: std::sync::Mutex::new(Unsent::default()),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Unsent> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one frame (from [`encode_frame`]), or keeps it for [`FrameWriter::flush`] behind what is kept
    /// already. Errors: the connection is broken (then nothing of the frame is kept), or it failed now.
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut out = self.lock();
        if out.broken {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if out.bytes.len() > out.at {
            if out.bytes.len() - out.at + frame.len() > MAX_UNSENT_BYTES {
                out.broken = true;
                drop(out);
                self.wake.notify_one();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the peer took none of the last {MAX_UNSENT_BYTES} bytes"),
                ));
            }
            out.bytes.extend_from_slice(frame);
            return Ok(());
        }
        let mut written = 0;
        while written < frame.len() {
            match self.half.try_write(&frame[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.broken = true;
                    drop(out);
                    self.wake.notify_one();
                    return Err(e);
                }
            }
        }
        if written < frame.len() {
            out.bytes.clear();
            out.at = 0;
            out.bytes.extend_from_slice(&frame[written..]);
            drop(out);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Gives the connection up: later sends fail, and [`FrameWriter::flush`] returns.
    pub fn close(&self) {
        self.lock().broken = true;
        self.wake.notify_one();
    }

    /// Writes what [`FrameWriter::send`] kept, whenever it keeps something, until the connection fails or is
    /// closed; returns why. Run by the connection's task beside its reading.
    pub async fn flush(&self) -> std::io::Error {
        loop {
            self.wake.notified().await;
            loop {
                {
                    let mut out = self.lock();
                    if out.broken {
                        return std::io::Error::new(
                            std::io::ErrorKind::BrokenPipe,
                            "the connection was given up",
                        );
                    }
                    if out.at == out.bytes.len() {
                        break;
                    }
                    let at = out.at;
                    match self.half.try_write(&out.bytes[at..]) {
                        Ok(n) => {
                            out.at += n;
                            if out.at == out.bytes.len() {
                                out.bytes.clear();
                                out.at = 0;
                                break;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            out.broken = true;
                            return e;
                        }
                    }
                }
                if let Err(e) = self.half.writable().await {
                    self.lock().broken = true;
                    return e;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_sent_from_any_thread_arrive_whole_and_in_order_also_when_the_reader_lags() {
        // The reader does not read until everything is sent, so the socket fills up and most of the bytes
        // take the kept path (`flush`); half the frames are sent from a thread outside the runtime, as the
        // persist thread sends its answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_r, w) = client.into_split();
        let writer = std::sync::Arc::new(FrameWriter::new(w));
        let flusher = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.flush().await })
        };
        let frames: Vec<Vec<u8>> = (0..40u32)
            .map(|i| encode_frame(&(i, vec![i as u8; 200_000 + i as usize])).unwrap())
            .collect();
        let total: usize = frames.iter().map(Vec::len).sum();
        {
            let writer = writer.clone();
            let frames = frames.clone();
            std::thread::spawn(move || {
                for (i, f) in frames.iter().enumerate() {
                    if i % 2 == 1 {
                        writer.send(f).unwrap();
                    }
                }
            })
            .join()
            .unwrap();
        }
        for (i, f) in frames.iter().enumerate() {
            if i % 2 == 0 {
                writer.send(f).unwrap();
            }
        }
        let mut reader = frame_reader(server);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got.len() < frames.len() {
            let body = tokio::time::timeout_at(deadline.into(), reader.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "only {} of {} frames arrived within 30 s",
                        got.len(),
                        frames.len()
                    )
                })
                .expect("the stream stays open")
                .expect("a whole frame");
            let (i, data): (u32, Vec<u8>) = decode_frame(&body).unwrap();
            assert!(
                data.iter().all(|&b| b == i as u8),
                "frame {i} arrived damaged"
            );
            got.push(i);
        }
        // The thread's (odd) frames were all sent first, then the task's, each in its sender's order.
        let expected: Vec<u32> = (0..40)
            .filter(|i| i % 2 == 1)
            .chain((0..40).filter(|i| i % 2 == 0))
            .collect();
        assert_eq!(got, expected);
        assert!(
            total > 4 * 1024 * 1024,
            "the frames overfill a loopback socket"
        );
        writer.close();
        let e = flusher.await.unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        assert!(
            writer.send(&frames[0]).is_err(),
            "a closed writer refuses frames"
        );
    }
}
