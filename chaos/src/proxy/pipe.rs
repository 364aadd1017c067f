//! One direction of one proxied connection: read from one socket, apply the governing link's plan frame by
//! frame, write to the other socket.
//!
//! With no fault set and nothing queued the pipe streams bytes straight through (only counting frame
//! boundaries), so the hot path is one read and one write. Once a fault is set it cuts whole frames and decides
//! each one's fate: dropped (blackhole, loss), copied (duplicate), or queued until its release time (latency,
//! bandwidth, reorder). Faults are judged when a frame arrives; a frame already queued keeps its release time
//! unless every delaying fault is removed, in which case the queue is delivered at once and in order, so
//! removing a fault never loses what is in flight.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Buf, Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bandwidth::Shaper;
use super::frame::{FrameCursor, Next, next_frame};
use super::link::{Link, Plan};
use super::{duplicate, latency, loss, reorder};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes held (queued or unwritten) before the pipe stops reading, so a slow link pushes back on its sender.
const HIGH_WATER: usize = 8 * 1024 * 1024;
/// Reads copied straight through before yielding back to the select loop (and to other tasks).
const BURST: usize = 16;

/// A frame waiting for its release time; ties keep arrival order.
struct Queued {
    release: Instant,
    seq: u64,
    frame: Bytes,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.release, self.seq).cmp(&(other.release, other.seq))
    }
}

/// One direction of a connection, governed by one link.
pub(crate) struct Pipe {
    src: OwnedReadHalf,
    dst: OwnedWriteHalf,
    link: Arc<Link>,
    plan_rx: watch::Receiver<Arc<Plan>>,
    plan: Arc<Plan>,
    rng: ChaCha8Rng,
    cursor: FrameCursor,
    inbuf: BytesMut,
    out: BytesMut,
    queue: BinaryHeap<Reverse<Queued>>,
    queued_bytes: usize,
    seq: u64,
    /// Release time of the last in-order frame: later frames never leave before it (latency keeps order).
    fifo_tail: Instant,
    shaper: Shaper,
    conn: CancellationToken,
}

impl Pipe {
    pub(crate) fn new(
        src: OwnedReadHalf,
        dst: OwnedWriteHalf,
        link: Arc<Link>,
        rng: ChaCha8Rng,
        conn: CancellationToken,
    ) -> Pipe {
        let mut plan_rx = link.subscribe();
        let plan = plan_rx.borrow_and_update().clone();
        Pipe {
            src,
            dst,
            link,
            plan_rx,
            plan,
            rng,
            cursor: FrameCursor::default(),
            inbuf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::new(),
            queue: BinaryHeap::new(),
            queued_bytes: 0,
            seq: 0,
            fifo_tail: Instant::now(),
            shaper: Shaper::default(),
            conn,
        }
    }

    /// Runs until the source ends and everything held is delivered, or the connection is cut.
    pub(crate) async fn run(mut self) {
        if self.plan.reset {
            self.reset();
        }
        let mut eof = false;
        loop {
            if eof && self.queue.is_empty() {
                // A partial frame at EOF was torn by the sender itself; pass it on as it is.
                if !self.inbuf.is_empty() {
                    let rest = self.inbuf.split();
                    self.link.counters.forwarded(0, rest.len());
                    self.out.extend_from_slice(&rest);
                }
                if self.out.is_empty() {
                    let _ = self.dst.shutdown().await;
                    self.forget_queue();
                    return;
                }
            }
            let can_read = !eof && self.out.len() + self.queued_bytes < HIGH_WATER;
            if can_read && self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 4 {
                self.inbuf.reserve(READ_CHUNK);
            }
            let next_release = self.queue.peek().map(|q| q.0.release);
            let has_out = !self.out.is_empty();
            tokio::select! {
                biased;
                _ = self.conn.cancelled() => {
                    self.forget_queue();
                    return;
                }
                changed = self.plan_rx.changed() => {
                    if changed.is_err() {
                        // The link is gone: the network was dropped.
                        self.conn.cancel();
                        continue;
                    }
                    self.plan = self.plan_rx.borrow_and_update().clone();
                    self.on_plan_change();
                }
                written = self.dst.write(&self.out), if has_out => match written {
                    Ok(n) if n > 0 => self.out.advance(n),
                    _ => self.conn.cancel(),
                },
                _ = tokio::time::sleep_until(next_release.unwrap_or_else(Instant::now)), if next_release.is_some() => {
                    self.release_due(Instant::now());
                }
                read = self.src.read_buf(&mut self.inbuf), if can_read => match read {
                    Ok(0) => eof = true,
                    Ok(_) => {
                        self.ingest();
                        eof = self.stream_while_clear();
                    }
                    Err(_) => self.conn.cancel(),
                },
            }
        }
    }

    fn on_plan_change(&mut self) {
        if self.plan.reset {
            self.reset();
            return;
        }
        if !self.plan.delays() {
            // Nothing holds frames back any more: deliver the queue now, in release order.
            self.release_due(Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600));
            self.fifo_tail = Instant::now();
            self.shaper = Shaper::default();
        }
    }

    /// Closes both sockets of the connection with RST, as a reset fault promises.
    fn reset(&mut self) {
        let _ = self.src.as_ref().set_zero_linger();
        let _ = self.dst.as_ref().set_zero_linger();
        self.link.counters.connections_reset.fetch_add(1, Relaxed);
        self.conn.cancel();
    }

    fn ingest(&mut self) {
        if self.plan.is_clear() && self.queue.is_empty() {
            self.pass_through();
            return;
        }
        let now = Instant::now();
        if !self.cursor.at_boundary() {
            // The frame began while no fault was set; its rest follows it unchanged.
            let (used, ended) = self.cursor.finish_frame(&self.inbuf);
            let part = self.inbuf.split_to(used);
            self.out.extend_from_slice(&part);
            self.link.counters.forwarded(u64::from(ended), used);
            if !ended {
                return;
            }
        }
        loop {
            match next_frame(&mut self.inbuf) {
                Next::Frame(frame) => self.admit(frame, now),
                Next::Need(total) => {
                    self.inbuf.reserve(total.saturating_sub(self.inbuf.len()));
                    break;
                }
                Next::TooBig(len) => {
                    tracing::warn!(
                        link = %self.link.id,
                        len,
                        "frame larger than the proxy holds; closing the connection"
                    );
                    self.conn.cancel();
                    return;
                }
            }
        }
        self.release_due(now);
    }

    /// While no fault is set and the destination keeps up, keeps copying without going back through the
    /// select loop (a bulk transfer then costs one wakeup per burst, not two per chunk). Returns true at EOF.
    fn stream_while_clear(&mut self) -> bool {
        for _ in 0..BURST {
            if !self.out.is_empty() || !self.plan.is_clear() || !self.queue.is_empty() {
                return false;
            }
            if self.plan_rx.has_changed().unwrap_or(true) {
                return false;
            }
            if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 4 {
                self.inbuf.reserve(READ_CHUNK);
            }
            match self.src.try_read_buf(&mut self.inbuf) {
                Ok(0) => return true,
                Ok(_) => self.pass_through(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => {
                    self.conn.cancel();
                    return false;
                }
            }
        }
        false
    }

    /// The no-fault path: count boundaries, try to write at once, keep what the socket did not take.
    fn pass_through(&mut self) {
        let frames = self.cursor.feed(&self.inbuf);
        self.link.counters.forwarded(frames, self.inbuf.len());
        if self.out.is_empty() {
            if let Ok(n) = self.dst.try_write(&self.inbuf) {
                self.inbuf.advance(n);
            }
            // Swap rather than copy: `out` takes the unwritten bytes, `inbuf` gets the spare buffer.
            std::mem::swap(&mut self.out, &mut self.inbuf);
            self.inbuf.clear();
        } else {
            self.out.extend_from_slice(&self.inbuf);
            self.inbuf.clear();
        }
    }

    /// Decides one whole frame's fate under the current plan.
    fn admit(&mut self, frame: Bytes, now: Instant) {
        let plan = self.plan.clone();
        let len = frame.len();
        let counters = &self.link.counters;
        if plan.blackhole {
            counters.dropped(len);
            return;
        }
        if plan.loss.is_some_and(|p| loss::drops(p, &mut self.rng)) {
            counters.dropped(len);
            return;
        }
        let copies = if plan
            .duplicate
            .is_some_and(|p| duplicate::duplicates(p, &mut self.rng))
        {
            counters.frames_duplicated.fetch_add(1, Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut ready = now;
            if let Some(l) = &plan.latency {
                ready += latency::sample(l, &mut self.rng);
            }
            ready = ready.max(self.fifo_tail);
            if let Some(rate) = plan.bandwidth {
                ready = self.shaper.schedule(ready, len, rate);
            }
            self.fifo_tail = ready;
            let mut release = ready;
            if let Some(r) = &plan.reorder {
                release += reorder::extra_delay(r, &mut self.rng);
            }
            if release > now {
                self.link.counters.frames_delayed.fetch_add(1, Relaxed);
            }
            self.seq += 1;
            self.queued_bytes += len;
            self.link.counters.frames_queued.fetch_add(1, Relaxed);
            self.queue.push(Reverse(Queued {
                release,
                seq: self.seq,
                frame: frame.clone(),
            }));
        }
    }

    /// Moves every frame due by `now` to the output, in release order.
    fn release_due(&mut self, now: Instant) {
        while self.queue.peek().is_some_and(|q| q.0.release <= now) {
            let Some(Reverse(q)) = self.queue.pop() else {
                break;
            };
            self.queued_bytes -= q.frame.len();
            self.link.counters.frames_queued.fetch_sub(1, Relaxed);
            self.link.counters.forwarded(1, q.frame.len());
            self.out.extend_from_slice(&q.frame);
        }
    }

    /// Keeps the queued-frames gauge honest when a connection ends with frames still held.
    fn forget_queue(&mut self) {
        let n = self.queue.len() as u64;
        if n > 0 {
            self.link.counters.frames_queued.fetch_sub(n, Relaxed);
            self.queue.clear();
            self.queued_bytes = 0;
        }
    }
}
