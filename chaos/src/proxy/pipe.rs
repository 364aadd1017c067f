//! One direction of one proxied connection: read from one socket, apply the governing link's plan frame by
//! frame, write to the other socket.
//!
//! With no fault set and nothing queued the pipe streams bytes straight through (only counting frame
//! boundaries), so the hot path is one read and one write; the body of a big frame is not even copied but
//! spliced from socket to socket through a kernel pipe (`splice`), only its header being looked at. Once a
//! fault is set it cuts whole frames and decides each one's fate: dropped (blackhole, loss), copied
//! (duplicate), or queued until its release time (latency, bandwidth, reorder). Faults are judged when a frame
//! arrives; a frame already queued keeps its release time unless every delaying fault is removed, in which case
//! the queue is delivered at once and in order, so removing a fault never loses what is in flight.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bandwidth::Shaper;
use super::classify::{Flow, PREFIX};
use super::frame::{FrameCursor, HEADER, Next, next_frame};
use super::framing::{Framing, Unit, UnitKind};
use super::hold;
use super::link::{Link, Plan, Plans};
use super::rafthttp::{ConnState, RaftHttp};
use super::sender::Attribution;
use super::splice::{self, SPLICE_MIN, Splicer};
use super::trace::{DropCause, Fate};
use super::{Shared, duplicate, latency, loss, reorder};
use std::borrow::Cow;
use tokio::sync::mpsc;

/// Bytes asked of the kernel per read.
pub(crate) const READ_CHUNK: usize = 256 * 1024;
/// Bytes held (queued or unwritten) before the pipe stops reading, so a slow link pushes back on its sender.
const HIGH_WATER: usize = 8 * 1024 * 1024;
/// Reads copied straight through before yielding back to the select loop (and to other tasks).
const BURST: usize = 16;

/// What became of a frame offered to the hold registry.
enum Held {
    /// Held, or dropped because the registry was full: nothing more to do.
    Kept,
    /// The hold was lifted meanwhile: judge it as if never held.
    GoOn,
    /// As `GoOn`, and the trace already has its fate.
    GoOnTraced,
}

/// A frame waiting for its release time; ties keep arrival order.
struct Queued {
    release: Instant,
    seq: u64,
    frame: Bytes,
    /// Counted as a frame when it leaves (protocol bytes of a framing are not).
    message: bool,
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
    plan_rx: watch::Receiver<Arc<Plans>>,
    plan: Arc<Plans>,
    /// Which way this pipe's frames go (requests or replies), for the classifier.
    flow: Flow,
    shared: Arc<Shared>,
    /// Held frames come back through here when stepped or released.
    release_tx: mpsc::UnboundedSender<Bytes>,
    release_rx: mpsc::UnboundedReceiver<Bytes>,
    rng: ChaCha8Rng,
    cursor: FrameCursor,
    inbuf: BytesMut,
    out: BytesMut,
    /// The source has ended.
    eof: bool,
    /// The kernel pipe for splicing big bodies, opened on first use.
    splicer: Option<Splicer>,
    /// Body bytes of the current frame still to splice from the source.
    splice_left: u64,
    /// A peeked length prefix spliced along with its body, and how many of its bytes are still to be pulled
    /// (the cursor learns them as they are).
    peeked: [u8; HEADER],
    peeked_left: usize,
    /// The first body bytes of that frame, peeked with its header for the classifier (which must label a
    /// frame before it is spliced past unseen).
    peeked_body: Vec<u8>,
    /// Splicing failed here once (no pipe, or refused by the kernel): copy from now on.
    splice_off: bool,
    queue: BinaryHeap<Reverse<Queued>>,
    queued_bytes: usize,
    seq: u64,
    /// Release time of the last in-order frame: later frames never leave before it (latency keeps order).
    fifo_tail: Instant,
    shaper: Shaper,
    conn: CancellationToken,
    /// The framing when it is not the length prefix (`None`: [`FrameCursor`] and the zero-copy path).
    framer: Option<Framer>,
    /// Units cut by the framer, waiting to be judged.
    units: Vec<Unit>,
    /// For a per-destination proxy: how the connection learns its sender, and whether this pipe has moved to
    /// its link yet.
    attribution: Option<Arc<Attribution>>,
    attributed: bool,
    /// What both directions of the connection share (rafthttp's request/response pairing), when not attributed.
    conn_state: Arc<ConnState>,
    /// The frame judged last was dropped.
    dropped_last: bool,
}

/// A framing other than the length prefix.
enum Framer {
    Bytes,
    RaftHttp(RaftHttp),
}

impl Pipe {
    pub(crate) fn new(
        src: OwnedReadHalf,
        dst: OwnedWriteHalf,
        link: Arc<Link>,
        rng: ChaCha8Rng,
        conn: CancellationToken,
        flow: Flow,
        shared: Arc<Shared>,
    ) -> Pipe {
        let mut plan_rx = link.subscribe();
        let plan = plan_rx.borrow_and_update().clone();
        let (release_tx, release_rx) = mpsc::unbounded_channel();
        let cursor = if shared.classifier.is_some() {
            FrameCursor::capturing()
        } else {
            FrameCursor::default()
        };
        Pipe {
            src,
            dst,
            link,
            plan_rx,
            plan,
            flow,
            shared,
            release_tx,
            release_rx,
            rng,
            cursor,
            inbuf: BytesMut::with_capacity(READ_CHUNK),
            out: BytesMut::new(),
            eof: false,
            splicer: None,
            splice_left: 0,
            peeked: [0; HEADER],
            peeked_left: 0,
            peeked_body: Vec::new(),
            splice_off: false,
            queue: BinaryHeap::new(),
            queued_bytes: 0,
            seq: 0,
            fifo_tail: Instant::now(),
            shaper: Shaper::default(),
            conn,
            framer: None,
            units: Vec::new(),
            attribution: None,
            attributed: false,
            conn_state: Arc::default(),
            dropped_last: false,
        }
    }

    /// Cuts frames with `framing` instead of the length prefix (which is the default); `conn` is shared with
    /// the pipe of the other direction.
    pub(crate) fn framed(mut self, framing: Framing, conn: Arc<ConnState>) -> Pipe {
        self.conn_state = conn;
        self.framer = match framing {
            Framing::LengthPrefixed => None,
            Framing::Bytes => Some(Framer::Bytes),
            Framing::RaftHttp => Some(Framer::RaftHttp(RaftHttp::new(self.flow))),
        };
        self
    }

    /// Starts on an unattributed link and moves to the sender's link once `attribution` resolves.
    pub(crate) fn attributed_by(mut self, attribution: Arc<Attribution>) -> Pipe {
        self.attribution = Some(attribution);
        self
    }

    /// Moves to the sender's link if the connection's sender has become known.
    fn attribute(&mut self) {
        if self.attributed {
            return;
        }
        let Some(attr) = self.attribution.clone() else {
            return;
        };
        let shared = self.shared.clone();
        let Some((fwd, back)) = attr.resolve(&shared.senders, |from, to| {
            shared.link(super::LinkId { from, to })
        }) else {
            return;
        };
        let link = match self.flow {
            Flow::Request => fwd.clone(),
            Flow::Reply => back.clone(),
        };
        self.attributed = true;
        self.link = link;
        self.plan_rx = self.link.subscribe();
        self.plan = self.plan_rx.borrow_and_update().clone();
        self.on_plan_change();
    }

    /// Runs until the source ends and everything held is delivered, or the connection is cut.
    pub(crate) async fn run(mut self) {
        if self.plan.reset {
            self.reset();
        }
        loop {
            if self.eof && self.queue.is_empty() && !self.splicing() {
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
            let splice_due = self.splice_due();
            if splice_due && self.out.len() <= splice::AHEAD_MAX {
                self.start_splice();
            }
            let splicing = self.splicing();
            // While a splice is due, bytes already copied go out first and nothing more is read.
            let can_read = !self.eof
                && !splicing
                && !splice_due
                && self.out.len() + self.queued_bytes < HIGH_WATER;
            let in_pipe = self.splicer.as_ref().map_or(0, |s| s.in_pipe());
            let can_pull = self.splicer.as_ref().is_some_and(|s| s.can_pull());
            let splice_src = splicing && can_pull && self.splice_left > 0;
            let splice_dst = splicing && !splice_src && in_pipe > 0;
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
                _ = tokio::time::sleep_until(next_release.unwrap_or_else(Instant::now)), if next_release.is_some() => {
                    self.release_due(Instant::now());
                }
                Some(frame) = self.release_rx.recv() => {
                    // A held frame stepped or released: it goes out behind whatever is already leaving.
                    self.link.counters.forwarded(1, frame.len());
                    self.out.extend_from_slice(&frame);
                }
                ready = self.dst.as_ref().writable(), if has_out || splice_dst => match ready {
                    Ok(()) if splicing => self.splice_some(),
                    Ok(()) => self.write_out(),
                    Err(_) => self.conn.cancel(),
                },
                ready = self.src.as_ref().readable(), if can_read || splice_src => match ready {
                    Ok(()) if splicing => self.splice_some(),
                    Ok(()) => self.read_some(),
                    Err(_) => self.conn.cancel(),
                },
            }
        }
    }

    /// Writes what is waiting in `out` until the destination would block.
    fn write_out(&mut self) {
        while !self.out.is_empty() {
            match self.dst.try_write(&self.out) {
                Ok(n) if n > 0 => self.out.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                _ => {
                    self.conn.cancel();
                    return;
                }
            }
        }
    }

    /// Reads what the source has, up to a burst: under a fault one read per wakeup (timers must run between),
    /// with no fault set and the destination keeping up several, so a bulk transfer costs one wakeup per burst.
    fn read_some(&mut self) {
        for _ in 0..BURST {
            match self.peek_big_frame() {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.conn.cancel();
                    return;
                }
            }
            let limit = self.read_limit();
            // Growing only when little is left (not whenever a read could take more) keeps allocations rare.
            if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 4 {
                self.inbuf.reserve(READ_CHUNK);
            }
            match self.src.try_read_buf(&mut (&mut self.inbuf).limit(limit)) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(_) => self.ingest(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.conn.cancel();
                    return;
                }
            }
            if !self.out.is_empty()
                || !self.plan.clear
                || !self.queue.is_empty()
                || self.plan_rx.has_changed().unwrap_or(true)
                || self.splice_due()
            {
                return;
            }
        }
    }

    /// In a stream of big frames, at a boundary, looks at the next length prefix: if a big body follows, the
    /// splice takes header and body together (true). Otherwise the header is read as usual.
    fn peek_big_frame(&mut self) -> std::io::Result<bool> {
        let at_boundary = self.cursor.header_left() == HEADER;
        if !(at_boundary
            && self.cursor.last_body() >= SPLICE_MIN
            && self.splice_allowed()
            && self.inbuf.is_empty()
            && self.out.is_empty()
            && !self.eof)
        {
            return Ok(false);
        }
        let Some(header) = splice::peek_header(self.src.as_ref())? else {
            return Ok(false);
        };
        if u64::from(u32::from_be_bytes(header)) < SPLICE_MIN {
            return Ok(false);
        }
        if !self.peek_prefix(u64::from(u32::from_be_bytes(header))) {
            return Ok(false);
        }
        if !self.open_splicer() {
            return Ok(false);
        }
        self.peeked = header;
        self.peeked_left = HEADER;
        self.splice_left = HEADER as u64 + u64::from(u32::from_be_bytes(header));
        Ok(true)
    }

    /// With a classifier, a frame of body length `len` may be spliced only once its payload prefix can be
    /// peeked whole: keeps it in `peeked_body` and says so. Without one, always true.
    fn peek_prefix(&mut self, len: u64) -> bool {
        self.peeked_body.clear();
        if self.shared.classifier.is_none() {
            return true;
        }
        let want = (len as usize).min(PREFIX);
        let mut body = [0u8; PREFIX];
        match splice::peek_head_now(self.src.as_ref(), &mut body[..want]) {
            Some((_, n)) if n == want => {
                self.peeked_body.extend_from_slice(&body[..want]);
                true
            }
            // Not all there yet: this frame goes the copying way, where its prefix is seen as it arrives.
            _ => false,
        }
    }

    /// How many bytes the next read may take. On the no-fault path, after a big frame, only the next header is
    /// read, so that a big body behind it can be spliced rather than copied; otherwise a large chunk.
    fn read_limit(&self) -> usize {
        let big_frames = self.cursor.last_body() >= SPLICE_MIN;
        let header_left = self.cursor.header_left();
        if big_frames && header_left > 0 && self.splice_allowed() && self.inbuf.is_empty() {
            header_left
        } else {
            READ_CHUNK
        }
    }

    /// Nothing stands in the way of splicing: no fault, nothing held, splice not found wanting.
    fn splice_allowed(&self) -> bool {
        !self.splice_off && self.plan.clear && self.queue.is_empty()
    }

    /// A big enough body has begun with nothing of it buffered here: its rest can be spliced.
    fn splice_due(&self) -> bool {
        !self.eof
            && !self.splicing()
            && self.inbuf.is_empty()
            && self.cursor.body_left() >= SPLICE_MIN
            && !self.cursor.prefix_pending()
            && self.splice_allowed()
    }

    /// A splice is under way: body bytes still to pull, or bytes in the kernel pipe still to push.
    fn splicing(&self) -> bool {
        self.splice_left > 0 || self.splicer.as_ref().is_some_and(|s| s.in_pipe() > 0)
    }

    /// Commits to splicing the rest of the current body (it then goes through whatever faults are set later).
    fn start_splice(&mut self) {
        if !self.open_splicer() {
            return;
        }
        if !self.out.is_empty() {
            let sp = self.splicer.as_mut().expect("opened above");
            match sp.put(&self.out) {
                Ok(()) => self.out.clear(),
                // Let the bytes go out the ordinary way first; the splice starts once they have.
                Err(_) => return,
            }
        }
        self.splice_left = self.cursor.body_left();
    }

    /// Opens the kernel pipe on first use; false (and copying from now on) if that fails.
    fn open_splicer(&mut self) -> bool {
        if self.splicer.is_none() {
            match Splicer::new() {
                Ok(s) => self.splicer = Some(s),
                Err(e) => {
                    tracing::debug!(link = %self.link.id, error = %e, "no pipe for splice; copying instead");
                    self.splice_off = true;
                    return false;
                }
            }
        }
        true
    }

    /// Moves body bytes through the kernel pipe until a socket would block, the body is done, or a burst ends.
    fn splice_some(&mut self) {
        if self.splicer.is_none() {
            self.splice_left = 0;
            return;
        }
        // Set once the source has nothing more right now: what the pipe holds goes out.
        let mut src_dry = false;
        for _ in 0..BURST {
            let sp = self.splicer.as_mut().expect("checked above");
            let room = sp.room();
            let pulled = if sp.can_pull() && self.splice_left > 0 {
                sp.pull(self.src.as_ref(), self.splice_left)
            } else if self.splice_left > 0 && !src_dry && room >= SPLICE_MIN as usize {
                // Top up the pipe before pushing, so one push carries as much as a copying write would.
                match sp.pull_more(self.src.as_ref(), self.splice_left) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        src_dry = true;
                        continue;
                    }
                    other => other,
                }
            } else if self.splice_left == 0 && !src_dry && room >= SPLICE_MIN as usize {
                if !self.next_into_pipe() {
                    src_dry = true;
                }
                continue;
            } else if sp.in_pipe() > 0 {
                match sp.push(self.dst.as_ref()) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                    Err(_) => {
                        self.conn.cancel();
                        return;
                    }
                }
            } else {
                return;
            };
            match pulled {
                Ok(0) => {
                    // The sender stopped mid-frame; what came of the frame still goes out.
                    self.splice_left = 0;
                    self.peeked_left = 0;
                    self.eof = true;
                    src_dry = true;
                }
                Ok(n) => self.spliced_in(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if splice::unsupported(&e) => {
                    // Nothing was taken from the socket: the copying path carries on from here, after
                    // whatever the pipe holds.
                    tracing::debug!(link = %self.link.id, error = %e, "splice refused; copying instead");
                    self.splice_off = true;
                    self.splice_left = 0;
                    self.peeked_left = 0;
                    src_dry = true;
                }
                Err(_) => {
                    self.conn.cancel();
                    return;
                }
            }
        }
    }

    /// Accounts for `n` bytes pulled into the pipe. A peeked header comes first; the cursor reads it as if it
    /// had been read here.
    fn spliced_in(&mut self, n: usize) {
        self.splice_left -= n as u64;
        let h = n.min(self.peeked_left);
        let from = HEADER - self.peeked_left;
        let (flow, shared, link) = (self.flow, &self.shared, &self.link);
        let mut label = |prefix: &[u8]| count_label(shared, link, flow, prefix);
        let mut frames = self.cursor.feed(&self.peeked[from..from + h], &mut label);
        self.peeked_left -= h;
        if h > 0 && self.peeked_left == 0 {
            self.cursor.peeked_prefix(&self.peeked_body, &mut label);
        }
        frames += u64::from(self.cursor.skip_body((n - h) as u64, &mut label));
        self.link.counters.forwarded(frames, n);
        self.link
            .counters
            .bytes_spliced
            .fetch_add(n as u64, Relaxed);
    }

    /// With a frame just spliced whole and bytes still in the pipe: if the next frame is big too and no fault
    /// has been set meanwhile, commits to splicing it behind them (true). The peek leaves the socket's
    /// readiness alone, so a false answer never hides data from the next wait.
    fn next_into_pipe(&mut self) -> bool {
        if !(self.cursor.header_left() == HEADER
            && self.splice_allowed()
            && !self.eof
            && self.inbuf.is_empty()
            && self.out.is_empty()
            && !self.plan_rx.has_changed().unwrap_or(true))
        {
            return false;
        }
        let Some(header) = splice::peek_header_now(self.src.as_ref()) else {
            return false;
        };
        let len = u64::from(u32::from_be_bytes(header));
        if len < SPLICE_MIN || !self.peek_prefix(len) {
            return false;
        }
        self.peeked = header;
        self.peeked_left = HEADER;
        self.splice_left = HEADER as u64 + len;
        true
    }

    fn on_plan_change(&mut self) {
        if self.plan.reset {
            self.reset();
            return;
        }
        if !self.plan.delays {
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
        if self.framer.is_some() {
            self.ingest_units();
            return;
        }
        if self.plan.clear && self.queue.is_empty() {
            self.pass_through();
            return;
        }
        let now = Instant::now();
        if !self.cursor.at_boundary() {
            // The frame began while no fault was set; its rest follows it unchanged.
            let (flow, shared, link) = (self.flow, &self.shared, &self.link);
            let (used, ended) = self.cursor.finish_frame(&self.inbuf, &mut |prefix: &[u8]| {
                count_label(shared, link, flow, prefix)
            });
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

    /// Cuts what was read into units with the framer and judges each; protocol bytes keep their place in line.
    fn ingest_units(&mut self) {
        let now = Instant::now();
        let mut units = std::mem::take(&mut self.units);
        match &mut self.framer {
            Some(Framer::RaftHttp(f)) => {
                f.decode(&self.conn_state, &mut self.inbuf, &mut units);
            }
            Some(Framer::Bytes) if !self.inbuf.is_empty() => {
                units.push(Unit {
                    wire: self.inbuf.split().freeze(),
                    payload: None,
                    kind: UnitKind::Opaque,
                });
            }
            Some(Framer::Bytes) | None => {}
        }
        self.attribute();
        for u in units.drain(..) {
            if self.conn.is_cancelled() {
                break;
            }
            self.judge(u, now);
        }
        self.units = units;
        self.release_due(now);
    }

    /// Decides one unit's fate under the current plan.
    fn judge(&mut self, unit: Unit, now: Instant) {
        let Unit {
            wire,
            payload,
            kind,
        } = unit;
        let label = match (&self.shared.classifier, &payload) {
            (Some(c), Some(p)) => {
                let label = c.classify(self.flow, &p[..p.len().min(PREFIX)]);
                self.link.counters.labelled(label);
                label
            }
            _ => None,
        };
        match kind {
            UnitKind::Protocol => {
                if self.queue.is_empty() && !self.plan.delays {
                    self.link.counters.forwarded(0, wire.len());
                    self.out.extend_from_slice(&wire);
                } else {
                    self.enqueue(wire, now, None, false);
                }
            }
            UnitKind::Message { whole_request } => {
                if self.plan.clear && self.queue.is_empty() {
                    self.link.counters.forwarded(1, wire.len());
                    self.out.extend_from_slice(&wire);
                    if let Some(p) = &payload {
                        self.trace(label, &p[..p.len().min(PREFIX)], now, None, None);
                    }
                } else {
                    self.admit_with(wire, payload, label, !whole_request, true, now);
                    if whole_request && self.dropped_last {
                        // The sender waits for a reply to this request: a lost request shows as a lost
                        // connection.
                        self.conn.cancel();
                    }
                }
            }
            UnitKind::Opaque => {
                if self.plan.clear && self.queue.is_empty() {
                    self.link.counters.forwarded(0, wire.len());
                    self.out.extend_from_slice(&wire);
                } else {
                    self.admit_with(wire, None, None, true, false, now);
                }
            }
        }
    }

    /// Queues `frame` behind what is queued, after the latency `plan` draws and the bandwidth allows.
    fn enqueue(
        &mut self,
        frame: Bytes,
        now: Instant,
        plan: Option<&Plan>,
        message: bool,
    ) -> Instant {
        let mut ready = now;
        let (latency, bandwidth, reorder) = match plan {
            Some(p) => (p.latency, p.bandwidth, p.reorder),
            None => (None, self.plan.base.bandwidth, None),
        };
        if let Some(l) = &latency {
            ready += latency::sample(l, &mut self.rng);
        }
        ready = ready.max(self.fifo_tail);
        if let Some(rate) = bandwidth {
            ready = self.shaper.schedule(ready, frame.len(), rate);
        }
        self.fifo_tail = ready;
        let mut release = ready;
        if let Some(r) = &reorder {
            release += reorder::extra_delay(r, &mut self.rng);
        }
        if release > now && message {
            self.link.counters.frames_delayed.fetch_add(1, Relaxed);
        }
        self.seq += 1;
        self.queued_bytes += frame.len();
        self.link.counters.frames_queued.fetch_add(1, Relaxed);
        self.queue.push(Reverse(Queued {
            release,
            seq: self.seq,
            frame,
            message,
        }));
        release
    }

    /// The no-fault path: count boundaries, try to write at once, keep what the socket did not take.
    fn pass_through(&mut self) {
        let (flow, shared, link) = (self.flow, &self.shared, &self.link);
        let frames = self.cursor.feed(&self.inbuf, &mut |prefix: &[u8]| {
            count_label(shared, link, flow, prefix)
        });
        self.link.counters.forwarded(frames, self.inbuf.len());
        // A big body follows these few bytes: they go into the kernel pipe ahead of it rather than out on their
        // own, so header and body leave in one send (a lone 4-byte send costs a segment and a wakeup downstream).
        let ahead_of_splice = self.out.is_empty()
            && self.inbuf.len() <= splice::AHEAD_MAX
            && self.cursor.body_left() >= SPLICE_MIN
            && self.splice_allowed();
        if self.out.is_empty() {
            if !ahead_of_splice && let Ok(n) = self.dst.try_write(&self.inbuf) {
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

    /// Decides one whole length-prefixed frame's fate under the current plan.
    fn admit(&mut self, frame: Bytes, now: Instant) {
        let len = frame.len();
        let label = match &self.shared.classifier {
            Some(c) => {
                let body = &frame[HEADER..len.min(HEADER + PREFIX)];
                let label = c.classify(self.flow, body);
                self.link.counters.labelled(label);
                label
            }
            None => None,
        };
        let payload = self
            .shared
            .classifier
            .is_some()
            .then(|| frame.slice(HEADER..));
        self.admit_with(frame, payload, label, true, true, now);
    }

    /// Decides a frame's fate under the plan for `label`: `payload` is what the classifier describes when the
    /// frame is held; `may_duplicate` is false for frames a second copy would break. Sets `dropped_last`.
    fn admit_with(
        &mut self,
        frame: Bytes,
        payload: Option<Bytes>,
        label: Option<u8>,
        may_duplicate: bool,
        holdable: bool,
        now: Instant,
    ) {
        self.dropped_last = false;
        let mut traced = payload.is_some() && self.shared.classifier.is_some();
        // The start of the payload names the message's kind in the trace (the hold takes the payload).
        let head = payload
            .as_ref()
            .map(|p| p.slice(..p.len().min(PREFIX)))
            .unwrap_or_default();
        let plans = self.plan.clone();
        let len = frame.len();
        let plan = plans.for_label(label);
        if holdable && plan.hold && !plan.blackhole {
            match self.hold(frame.clone(), payload, label) {
                Held::Kept => return,
                Held::GoOn => {}
                Held::GoOnTraced => traced = false,
            }
        }
        let counters = &self.link.counters;
        let cut = plan.blackhole;
        if cut || plan.loss.is_some_and(|p| loss::drops(p, &mut self.rng)) {
            counters.dropped(len, label);
            self.dropped_last = true;
            if traced {
                let by = if cut {
                    DropCause::Blackhole
                } else {
                    DropCause::Loss
                };
                self.trace(label, &head, now, Some(by), None);
            }
            return;
        }
        let copies = if may_duplicate
            && plan
                .duplicate
                .is_some_and(|p| duplicate::duplicates(p, &mut self.rng))
        {
            counters.frames_duplicated.fetch_add(1, Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let release = self.enqueue(frame.clone(), now, Some(plan), true);
            if traced {
                self.trace(label, &head, now, None, Some(release));
            }
        }
    }

    /// Records a message of `label` that arrived at `now` in the network's trace: dropped by `dropped`, or
    /// delivered at `release` (at once when `None`).
    fn trace(
        &self,
        label: Option<u8>,
        prefix: &[u8],
        now: Instant,
        dropped: Option<DropCause>,
        release: Option<Instant>,
    ) {
        let trace = &self.shared.trace;
        if !trace.is_on() {
            return;
        }
        let sent_us = trace.micros(now.into_std());
        let fate = match (dropped, release) {
            (Some(by), _) => Fate::Dropped { by, at_us: sent_us },
            (None, Some(r)) => Fate::Delivered {
                at_us: trace.micros(r.into_std()),
            },
            (None, None) => Fate::Delivered { at_us: sent_us },
        };
        let kind = kind_of(&self.shared, self.flow, prefix, label);
        trace.record(self.link.id, kind, sent_us, fate);
    }

    /// Puts a frame in the network's hold registry: kept (held, or dropped because the registry is full), or
    /// to go on as if never held because the hold was lifted just now.
    fn hold(&mut self, frame: Bytes, payload: Option<Bytes>, label: Option<u8>) -> Held {
        let shared = &self.shared;
        let trace = &shared.trace;
        let traced_kind = match (&shared.classifier, &payload) {
            (Some(c), Some(p)) if trace.is_on() => {
                c.kind(self.flow, &p[..p.len().min(PREFIX)], label)
            }
            _ => None,
        };
        let (label_name, detail) = match (&shared.classifier, payload) {
            (Some(c), Some(p)) => (
                label.and_then(|l| c.labels().get(usize::from(l)).map(|s| s.to_string())),
                c.describe(self.flow, &p),
            ),
            _ => (None, String::new()),
        };
        let sent_us = trace.now_us();
        let traced = (shared.classifier.is_some() && trace.is_on())
            .then(|| trace.record(self.link.id, traced_kind.clone(), sent_us, Fate::Held))
            .flatten()
            .map(|id| (id, sent_us));
        let entry = hold::Entry {
            link: self.link.id,
            label: label_name,
            detail,
            frame,
            since: std::time::Instant::now(),
            deliver: self.release_tx.clone(),
            traced,
            traced_kind: traced_kind.clone(),
        };
        let link = &self.link;
        let len = entry.frame.len();
        let kind = traced_kind;
        let offer = shared
            .held
            .hold(entry, || link.plan().for_label(label).hold);
        // A frame recorded as held that the registry did not keep: its fate follows under the same id.
        let settle = |fate: Fate| {
            if let Some((id, sent_us)) = traced {
                trace.resolve(id, link.id, kind.clone(), sent_us, fate);
            }
        };
        match offer {
            hold::Offer::Held => {
                link.counters.frames_held.fetch_add(1, Relaxed);
                Held::Kept
            }
            hold::Offer::NotHeld => {
                settle(Fate::Delivered { at_us: sent_us });
                if traced.is_some() {
                    Held::GoOnTraced
                } else {
                    Held::GoOn
                }
            }
            hold::Offer::Full => {
                link.counters.dropped(len, label);
                let by = DropCause::HoldFull;
                settle(Fate::Dropped { by, at_us: sent_us });
                Held::Kept
            }
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
            self.link
                .counters
                .forwarded(u64::from(q.message), q.frame.len());
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

impl Drop for Pipe {
    /// The connection ended (whichever way: its source closed, an error, a reset, the network dropped): the
    /// frames it had in the hold registry can no longer be delivered, nor can those stepped a moment ago and
    /// not yet written. They are dropped and counted now, not left to vanish from the queue ([`hold`] says why
    /// they are not moved to another connection).
    fn drop(&mut self) {
        let held = &self.shared.held;
        held.abandon(&self.release_tx);
        while let Ok(frame) = self.release_rx.try_recv() {
            held.note_lost(hold::Lost {
                link: self.link.id,
                bytes: frame.len(),
                label: None,
            });
        }
        self.shared.settle_lost();
    }
}

/// Counts a streamed frame under its label, from its payload prefix, and traces it as delivered now (no
/// fault is set on the streaming path).
fn count_label(shared: &Shared, link: &Link, flow: Flow, prefix: &[u8]) {
    if let Some(c) = &shared.classifier {
        let label = c.classify(flow, prefix);
        link.counters.labelled(label);
        if shared.trace.is_on() {
            let at_us = shared.trace.now_us();
            let kind = kind_of(shared, flow, prefix, label);
            shared
                .trace
                .record(link.id, kind, at_us, Fate::Delivered { at_us });
        }
    }
}

/// A message's kind for the trace: what the classifier names it from its payload's first bytes and label.
fn kind_of(
    shared: &Shared,
    flow: Flow,
    prefix: &[u8],
    label: Option<u8>,
) -> Option<Cow<'static, str>> {
    shared.classifier.as_ref()?.kind(flow, prefix, label)
}
