//! Frames of etcd's peer protocol, rafthttp (etcd 3.4, `etcdserver/api/rafthttp`), cut out of a proxied
//! connection.
//!
//! rafthttp is HTTP/1.1 on the peer port. Raft messages travel three ways:
//! - **pipeline**: `POST /raft`, the body one protobuf `raftpb.Message` (with a Content-Length). The whole
//!   request is one frame; dropping it closes the connection, as a lost request would show to the sender.
//! - **streams**: the member that wants to *receive* opens `GET /raft/stream/message/<its id>` or
//!   `GET /raft/stream/msgapp/<its id>` (headers `X-Server-From` = its id, `X-Raft-To` = the remote's), and the
//!   remote writes its messages into the *response* body, chunked, for as long as the connection lives. The
//!   `message` encoding is an 8-byte big-endian length and the protobuf; `msgappv2` is a 1-byte type then:
//!   type 0 a link heartbeat (nothing else), type 2 an 8-byte length and a whole protobuf message, type 1 a
//!   MsgApp abbreviated against the decoder's state (8-byte entry count, each entry as 8-byte length and
//!   protobuf, then the 8-byte commit; term and index are those the previous message left).
//! - **snapshots**: `POST /raft/snapshot`, the body a `message`-encoded MsgSnap followed by the database bytes.
//!
//! Everything else (`/members`, `/version`, `/raft/probing`, response heads, non-message bodies) passes
//! through as protocol bytes, never dropped or held.
//!
//! Re-emitting: chunked bodies are taken apart and each message goes out as a chunk of its own, so a message
//! can be dropped or held and the stream stays valid HTTP. msgappv2's abbreviated MsgApp only decodes right if
//! the receiver saw every message before it; since the proxy may drop, hold or duplicate messages, it re-encodes
//! every abbreviated MsgApp as a whole one (type 2) with the term and index the sender meant, so the receiver's
//! decoder never depends on what it missed.
//!
//! Limits: a message held while its stream ends is released after the stream's last chunk, which the receiver
//! then reads as a new (garbled) response and closes the connection; etcd redials.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::classify::Flow;
use super::frame::MAX_FRAME;
use super::framing::{Unit, UnitKind};
use super::protobuf::{self, Fields, Value};

/// The largest HTTP head the framer waits for before it gives up on the connection being HTTP.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a head may have.
const MAX_HEADERS: usize = 64;

/// raftpb.MessageType values used here.
const MSG_APP: u64 = 3;
const MSG_HEARTBEAT: u64 = 8;

/// What a link heartbeat of the msgappv2 stream carries, as the protobuf the classifier reads: an empty
/// MsgHeartbeat (no sender, no receiver), which is how the `message` stream encodes its link heartbeats.
const LINK_HEARTBEAT_PB: &[u8] = &[0x08, MSG_HEARTBEAT as u8];

/// What the response to a request will carry, learnt from the request (HTTP/1.1 answers in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A stream of the remote's messages to the requester.
    Stream {
        /// msgappv2 rather than `message`.
        msgapp: bool,
        /// The member writing the stream (the request's `X-Raft-To`), if given.
        from: Option<u64>,
        /// The member reading it (the request's `X-Server-From`), if given.
        to: Option<u64>,
    },
    /// Anything else.
    Other,
}

/// What both directions of one connection share.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    expects: Mutex<VecDeque<Expect>>,
    /// The member id of the side that opened the connection, from its first request with `X-Server-From`.
    sender: OnceLock<u64>,
}

impl ConnState {
    /// The member id of the connection's opener, once a request has named it.
    pub(crate) fn sender(&self) -> Option<u64> {
        self.sender.get().copied()
    }

    fn push(&self, e: Expect) {
        self.expects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(e);
    }

    fn pop(&self) -> Expect {
        self.expects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
            .unwrap_or(Expect::Other)
    }
}

/// How the messages inside a body are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// No messages: passed on as protocol bytes.
    Opaque,
    /// `message` encoding: 8-byte length + protobuf, repeated.
    Messages,
    /// msgappv2, with the state the sender's encoder is in.
    MsgApp {
        from: u64,
        to: u64,
        term: u64,
        index: u64,
    },
    /// A snapshot: one `message`-encoded MsgSnap, then opaque database bytes.
    Snapshot { first_done: bool },
}

/// Where in the stream the framer is.
#[derive(Debug)]
enum State {
    /// Waiting for a request or response head.
    Head,
    /// A body of known length, passed on as it comes.
    Fixed { left: u64 },
    /// A pipeline POST: head and body kept until the body is whole.
    WholeMessage {
        left: u64,
        held: BytesMut,
        head: usize,
    },
    /// A chunked body: waiting for a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data.
    ChunkData { left: u64 },
    /// After a chunk's data: its CRLF.
    ChunkEnd,
    /// After the last chunk: trailers up to an empty line, kept in `raw`.
    Trailers { raw: BytesMut },
    /// A response without a length: passed on until the connection ends.
    UntilEof,
    /// Not HTTP as expected: everything from here on is passed on as protocol bytes.
    Broken,
}

/// Cuts one direction of a rafthttp connection into [`Unit`]s.
#[derive(Debug)]
pub(crate) struct RaftHttp {
    flow: Flow,
    state: State,
    body: Body,
    /// De-chunked body bytes not yet cut into messages.
    dechunked: BytesMut,
}

impl RaftHttp {
    /// A framer for the direction `flow` (requests from the connection's opener, or responses).
    pub(crate) fn new(flow: Flow) -> RaftHttp {
        RaftHttp {
            flow,
            state: State::Head,
            body: Body::Opaque,
            dechunked: BytesMut::new(),
        }
    }

    /// Takes what it can from the front of `buf`, appending units to `out`; bytes of an incomplete head, chunk
    /// header or message stay in `buf` (or inside the framer) until more come.
    pub(crate) fn decode(&mut self, conn: &ConnState, buf: &mut BytesMut, out: &mut Vec<Unit>) {
        loop {
            let progressed = match &mut self.state {
                State::Head => self.head(conn, buf, out),
                State::Fixed { left } => {
                    if buf.is_empty() {
                        false
                    } else {
                        let n = (*left).min(buf.len() as u64) as usize;
                        *left -= n as u64;
                        out.push(Unit::protocol(buf.split_to(n).freeze()));
                        if *left == 0 {
                            self.state = State::Head;
                        }
                        true
                    }
                }
                State::WholeMessage { left, held, head } => {
                    if buf.is_empty() {
                        false
                    } else {
                        let n = (*left).min(buf.len() as u64) as usize;
                        *left -= n as u64;
                        held.extend_from_slice(&buf.split_to(n));
                        if *left == 0 {
                            let wire = std::mem::take(held).freeze();
                            let payload = wire.slice(*head..);
                            out.push(Unit {
                                wire,
                                payload: Some(payload),
                                kind: UnitKind::Message {
                                    whole_request: true,
                                },
                            });
                            self.state = State::Head;
                        }
                        true
                    }
                }
                State::ChunkSize => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        buf.advance(used);
                        self.flush_body(out);
                        let mut raw = BytesMut::new();
                        raw.extend_from_slice(b"0\r\n");
                        self.state = State::Trailers { raw };
                        true
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = State::ChunkData { left: size };
                        true
                    }
                    Ok(httparse::Status::Partial) => {
                        if buf.len() > MAX_HEAD {
                            self.broken(buf, out, "chunk size line too long");
                        }
                        false
                    }
                    Err(_) => {
                        self.broken(buf, out, "bad chunk size line");
                        true
                    }
                },
                State::ChunkData { left } => {
                    if buf.is_empty() {
                        false
                    } else {
                        let n = (*left).min(buf.len() as u64) as usize;
                        *left -= n as u64;
                        self.dechunked.extend_from_slice(&buf.split_to(n));
                        if *left == 0 {
                            self.state = State::ChunkEnd;
                        }
                        self.cut_body(out);
                        true
                    }
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        false
                    } else if &buf[..2] == b"\r\n" {
                        buf.advance(2);
                        self.state = State::ChunkSize;
                        true
                    } else {
                        self.broken(buf, out, "chunk data not followed by CRLF");
                        true
                    }
                }
                State::Trailers { raw } => match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let line = buf.split_to(i + 1);
                        raw.extend_from_slice(&line);
                        if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                            out.push(Unit::protocol(std::mem::take(raw).freeze()));
                            self.state = State::Head;
                        }
                        true
                    }
                    None => false,
                },
                State::UntilEof | State::Broken => {
                    if buf.is_empty() {
                        false
                    } else {
                        out.push(Unit::protocol(buf.split().freeze()));
                        true
                    }
                }
            };
            if !progressed {
                return;
            }
        }
    }

    /// Parses a head at the front of `buf`, if whole.
    fn head(&mut self, conn: &ConnState, buf: &mut BytesMut, out: &mut Vec<Unit>) -> bool {
        if buf.is_empty() {
            return false;
        }
        let parsed = match self.flow {
            Flow::Request => parse_request(buf),
            Flow::Reply => parse_response(buf),
        };
        let head = match parsed {
            Ok(Some(h)) => h,
            Ok(None) => {
                if buf.len() > MAX_HEAD {
                    self.broken(buf, out, "head too long");
                    return true;
                }
                return false;
            }
            Err(e) => {
                self.broken(buf, out, e);
                return true;
            }
        };
        let len = head.len;
        self.body = Body::Opaque;
        self.dechunked.clear();
        match self.flow {
            Flow::Request => {
                if let Some(from) = head.server_from {
                    let _ = conn.sender.set(from);
                }
                let expect = match head.route {
                    Route::Stream { msgapp } => Expect::Stream {
                        msgapp,
                        from: head.raft_to,
                        to: head.server_from,
                    },
                    _ => Expect::Other,
                };
                conn.push(expect);
                if head.route == Route::Pipeline && !head.chunked {
                    match head.content_length {
                        Some(n) if n > 0 && n <= MAX_FRAME as u64 => {
                            let mut held = BytesMut::with_capacity(len + n as usize);
                            held.extend_from_slice(&buf.split_to(len));
                            self.state = State::WholeMessage {
                                left: n,
                                held,
                                head: len,
                            };
                            return true;
                        }
                        _ => {}
                    }
                }
                if head.route == Route::Snapshot {
                    self.body = Body::Snapshot { first_done: false };
                }
            }
            Flow::Reply => {
                if head.status >= 100 && head.status < 200 {
                    // An interim response: the real one follows, for the same request.
                    out.push(Unit::protocol(buf.split_to(len).freeze()));
                    return true;
                }
                let expect = conn.pop();
                if head.status == 200
                    && let Expect::Stream { msgapp, from, to } = expect
                {
                    self.body = match (msgapp, from, to) {
                        (false, _, _) => Body::Messages,
                        (true, Some(from), Some(to)) => Body::MsgApp {
                            from,
                            to,
                            term: 0,
                            index: 0,
                        },
                        // Without both ids an abbreviated MsgApp cannot be re-encoded: leave the stream alone.
                        (true, _, _) => Body::Opaque,
                    };
                }
                if head.status == 204 || head.status == 304 {
                    out.push(Unit::protocol(buf.split_to(len).freeze()));
                    self.state = State::Head;
                    return true;
                }
            }
        }
        out.push(Unit::protocol(buf.split_to(len).freeze()));
        self.state = if head.chunked {
            State::ChunkSize
        } else if let Some(n) = head.content_length {
            if n == 0 {
                State::Head
            } else {
                State::Fixed { left: n }
            }
        } else if self.flow == Flow::Request {
            State::Head
        } else {
            State::UntilEof
        };
        true
    }

    /// Cuts the messages that are whole out of the de-chunked body, each re-chunked on its own.
    fn cut_body(&mut self, out: &mut Vec<Unit>) {
        loop {
            let d = &self.dechunked;
            if d.is_empty() {
                return;
            }
            match &mut self.body {
                Body::Opaque => {
                    let data = self.dechunked.split();
                    out.push(Unit::protocol(chunk(&data)));
                    return;
                }
                Body::Snapshot { first_done: true } => {
                    let data = self.dechunked.split();
                    out.push(Unit::protocol(chunk(&data)));
                    return;
                }
                Body::Messages | Body::Snapshot { first_done: false } => {
                    if d.len() < 8 {
                        return;
                    }
                    let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
                    if n > MAX_FRAME as u64 {
                        self.body = Body::Opaque;
                        continue;
                    }
                    let total = 8 + n as usize;
                    if d.len() < total {
                        return;
                    }
                    let msg = self.dechunked.split_to(total);
                    if let Body::Snapshot { first_done } = &mut self.body {
                        *first_done = true;
                    }
                    out.push(message_unit(&msg, 8));
                }
                Body::MsgApp {
                    from,
                    to,
                    term,
                    index,
                } => match d[0] {
                    0 => {
                        self.dechunked.advance(1);
                        out.push(Unit {
                            wire: chunk(&[0]),
                            payload: Some(Bytes::from_static(LINK_HEARTBEAT_PB)),
                            kind: UnitKind::Message {
                                whole_request: false,
                            },
                        });
                    }
                    2 => {
                        if d.len() < 9 {
                            return;
                        }
                        let n = u64::from_be_bytes(d[1..9].try_into().expect("8 bytes"));
                        if n > MAX_FRAME as u64 {
                            self.body = Body::Opaque;
                            continue;
                        }
                        let total = 9 + n as usize;
                        if d.len() < total {
                            return;
                        }
                        let msg = self.dechunked.split_to(total);
                        let (t, i) = app_position(&msg[9..]);
                        *term = t;
                        *index = i;
                        out.push(message_unit(&msg, 9));
                    }
                    1 => {
                        let Some(total) = abbreviated_len(d) else {
                            return;
                        };
                        let msg = self.dechunked.split_to(total);
                        let (pb, count) = expand_app(&msg, *from, *to, *term, *index);
                        *index += count;
                        let mut whole = Vec::with_capacity(9 + pb.len());
                        whole.push(2);
                        whole.extend_from_slice(&(pb.len() as u64).to_be_bytes());
                        whole.extend_from_slice(&pb);
                        out.push(message_unit(&whole, 9));
                    }
                    t => {
                        tracing::warn!(
                            msg_type = t,
                            "unknown msgappv2 message type; passing the stream on as is"
                        );
                        self.body = Body::Opaque;
                    }
                },
            }
        }
    }

    /// Sends on what the body holds that is not a whole message (before the last chunk).
    fn flush_body(&mut self, out: &mut Vec<Unit>) {
        if !self.dechunked.is_empty() {
            let data = self.dechunked.split();
            out.push(Unit::protocol(chunk(&data)));
        }
    }

    /// Gives up on framing: everything from here on goes on as it came.
    fn broken(&mut self, buf: &mut BytesMut, out: &mut Vec<Unit>, why: &str) {
        tracing::warn!(flow = ?self.flow, why, "not rafthttp as expected; passing the connection on unframed");
        self.flush_body(out);
        if let State::WholeMessage { held, .. } | State::Trailers { raw: held } = &mut self.state
            && !held.is_empty()
        {
            out.push(Unit::protocol(std::mem::take(held).freeze()));
        }
        if !buf.is_empty() {
            out.push(Unit::protocol(buf.split().freeze()));
        }
        self.state = State::Broken;
    }
}

/// A message unit whose protobuf starts `at` bytes into `encoded`, re-chunked.
fn message_unit(encoded: &[u8], at: usize) -> Unit {
    let (head, wire) = chunk_with_head(encoded);
    let payload = wire.slice(head + at..head + encoded.len());
    Unit {
        wire,
        payload: Some(payload),
        kind: UnitKind::Message {
            whole_request: false,
        },
    }
}

/// `data` as one HTTP chunk.
fn chunk(data: &[u8]) -> Bytes {
    chunk_with_head(data).1
}

/// `data` as one HTTP chunk, and the length of the chunk's size line.
fn chunk_with_head(data: &[u8]) -> (usize, Bytes) {
    let size = format!("{:x}\r\n", data.len());
    let mut b = BytesMut::with_capacity(size.len() + data.len() + 2);
    b.put_slice(size.as_bytes());
    b.put_slice(data);
    b.put_slice(b"\r\n");
    (size.len(), b.freeze())
}

/// The bytes of a whole abbreviated MsgApp at the front of `d` (type byte included), or `None` if not all
/// there yet.
fn abbreviated_len(d: &[u8]) -> Option<usize> {
    let be = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?))
    };
    let count = be(1)?;
    let mut pos = 9usize;
    for _ in 0..count {
        let size = be(pos)?;
        pos = pos
            .checked_add(8)?
            .checked_add(usize::try_from(size).ok()?)?;
        if pos > d.len() {
            return None;
        }
    }
    be(pos)?;
    Some(pos + 8)
}

/// The whole MsgApp an abbreviated one stands for, as protobuf, and how many entries it carries. `msg` starts
/// at the type byte and is whole ([`abbreviated_len`]).
fn expand_app(msg: &[u8], from: u64, to: u64, term: u64, index: u64) -> (Vec<u8>, u64) {
    let be = |at: usize| u64::from_be_bytes(msg[at..at + 8].try_into().expect("checked whole"));
    let count = be(1);
    let mut pb = Vec::with_capacity(msg.len() + 48);
    protobuf::put_uint(&mut pb, 1, MSG_APP);
    protobuf::put_uint(&mut pb, 2, to);
    protobuf::put_uint(&mut pb, 3, from);
    protobuf::put_uint(&mut pb, 4, term);
    protobuf::put_uint(&mut pb, 5, term);
    protobuf::put_uint(&mut pb, 6, index);
    let mut pos = 9;
    for _ in 0..count {
        let size = be(pos) as usize;
        protobuf::put_bytes(&mut pb, 7, &msg[pos + 8..pos + 8 + size]);
        pos += 8 + size;
    }
    protobuf::put_uint(&mut pb, 8, be(pos));
    (pb, count)
}

/// The (term, index) a whole message leaves msgappv2's decoder in: its term, and the index of its last entry
/// (or its own index when it has none).
fn app_position(pb: &[u8]) -> (u64, u64) {
    let (mut term, mut index, mut last) = (0, 0, None);
    for (number, value) in Fields::new(pb) {
        match (number, value) {
            (4, Value::Varint(t)) => term = t,
            (6, Value::Varint(i)) => index = i,
            (7, Value::Bytes(entry)) => {
                last = Fields::new(entry).find_map(|(n, v)| match (n, v) {
                    (3, Value::Varint(i)) => Some(i),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    (term, last.unwrap_or(index))
}

/// Which rafthttp endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `POST /raft`.
    Pipeline,
    /// `GET /raft/stream/message/ID` or `GET /raft/stream/msgapp/ID`.
    Stream { msgapp: bool },
    /// `POST /raft/snapshot`.
    Snapshot,
    /// Anything else (and every response).
    Other,
}

impl Route {
    fn of(method: &str, path: &str) -> Route {
        match (method, path) {
            ("POST", "/raft") => Route::Pipeline,
            ("POST", p) if p.starts_with("/raft/snapshot") => Route::Snapshot,
            (_, p) if p.starts_with("/raft/stream/message/") => Route::Stream { msgapp: false },
            (_, p) if p.starts_with("/raft/stream/msgapp/") => Route::Stream { msgapp: true },
            _ => Route::Other,
        }
    }
}

/// The parts of a head the framer uses.
struct Head {
    len: usize,
    route: Route,
    status: u16,
    chunked: bool,
    content_length: Option<u64>,
    server_from: Option<u64>,
    raft_to: Option<u64>,
}

fn parse_request(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let mut head = fields(req.headers, len);
            head.route = Route::of(req.method.unwrap_or(""), req.path.unwrap_or(""));
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err("bad request head"),
    }
}

fn parse_response(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let mut head = fields(res.headers, len);
            head.status = res.code.unwrap_or(0);
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err("bad response head"),
    }
}

/// The headers the framer reads; the route and status are filled in by the caller.
fn fields(headers: &[httparse::Header<'_>], len: usize) -> Head {
    let mut head = Head {
        len,
        route: Route::Other,
        status: 0,
        chunked: false,
        content_length: None,
        server_from: None,
        raft_to: None,
    };
    for h in headers {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        } else if h.name.eq_ignore_ascii_case("x-server-from") {
            head.server_from = u64::from_str_radix(value, 16).ok();
        } else if h.name.eq_ignore_ascii_case("x-raft-to") {
            head.raft_to = u64::from_str_radix(value, 16).ok();
        }
    }
    head
}

#[cfg(test)]
mod tests;
