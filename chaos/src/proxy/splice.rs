//! Zero-copy forwarding of big frame bodies on the no-fault path: socket → kernel pipe → socket with splice(2).
//!
//! Copying a body through user space costs two memory copies per byte (into the proxy, out of it) on top of the
//! two the endpoints pay anyway; on loopback that halves throughput. splice(2) moves page references instead,
//! so the proxy touches only the 4-byte headers it must read to keep frame boundaries. The pipe only ever
//! splices the body of a frame already begun, so a fault switched on meanwhile still starts at the next
//! boundary, and the copying path remains for faults, small frames and systems where splice is refused.
//!
//! The bytes before the body (its header, perhaps the frames before it) are written into the pipe ahead of
//! the body, so the header does not leave as a segment of its own. The pipe then takes one pull from the
//! socket and is drained completely before the next. That keeps the meaning of `EAGAIN` unambiguous: on a pull
//! it can only mean "the socket has nothing" (the pipe has room: at most one page of it is used), on a push only
//! "the socket is full", so clearing the socket's readiness on it is always right.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use nix::sys::socket::{MsgFlags, recv};
use nix::unistd::{pipe2, write};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::frame::HEADER;

/// Frame bodies with at least this many bytes still to come are spliced; smaller ones are cheaper to copy
/// than to pay three system calls for.
pub(crate) const SPLICE_MIN: u64 = 16 * 1024;

/// At most this many bytes already read go into the pipe ahead of a body: one page, which a pipe always takes
/// whole when empty (writes up to `PIPE_BUF` are atomic).
pub(crate) const AHEAD_MAX: usize = 4096;

/// Pipe capacity asked of the kernel. More than the 64 KiB default means fewer calls per big frame; the
/// request may be refused (per-user pipe limits), and the default works too.
const PIPE_SIZE: i32 = 256 * 1024;

/// A kernel pipe owned by one direction of one connection, and how much of it is full.
pub(crate) struct Splicer {
    rd: OwnedFd,
    wr: OwnedFd,
    cap: usize,
    in_pipe: usize,
    /// A pull has filled the pipe and it has not been drained since.
    pulled: bool,
}

impl Splicer {
    /// Opens the pipe (non-blocking, close-on-exec) and tries to enlarge it.
    pub(crate) fn new() -> io::Result<Splicer> {
        let (rd, wr) = pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let cap = match fcntl(&wr, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
            Ok(n) if n > 0 => n as usize,
            _ => 64 * 1024,
        };
        Ok(Splicer {
            rd,
            wr,
            cap,
            in_pipe: 0,
            pulled: false,
        })
    }

    /// Bytes sitting in the pipe, read from the source but not yet written to the destination.
    pub(crate) fn in_pipe(&self) -> usize {
        self.in_pipe
    }

    /// Whether the pipe may take a pull: it holds at most the bytes put ahead of a body.
    pub(crate) fn can_pull(&self) -> bool {
        !self.pulled
    }

    /// Writes `bytes` (at most [`AHEAD_MAX`]) into the empty pipe, ahead of the body to be pulled.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.in_pipe > 0 || bytes.len() > AHEAD_MAX {
            return Err(io::Error::other("the pipe cannot take these bytes whole"));
        }
        let n = write(&self.wr, bytes)?;
        self.in_pipe = n;
        if n < bytes.len() {
            // Cannot happen for an empty pipe and a write of at most PIPE_BUF; refuse rather than tear.
            return Err(io::Error::other("short write into an empty pipe"));
        }
        Ok(())
    }

    /// Moves up to `len` bytes from `src` into the pipe, behind what was put there. `Ok(0)` is end of stream;
    /// `WouldBlock` means `src` has nothing now (its readiness is cleared).
    pub(crate) fn pull(&mut self, src: &TcpStream, len: u64) -> io::Result<usize> {
        debug_assert!(self.can_pull(), "pull into a pipe that still holds a pull");
        let len = len.min((self.cap - self.in_pipe) as u64) as usize;
        let n = src.try_io(Interest::READABLE, || {
            splice(src, None, &self.wr, None, len, flags()).map_err(io::Error::from)
        })?;
        self.in_pipe += n;
        self.pulled = n > 0;
        Ok(n)
    }

    /// Free bytes in the pipe, as far as byte counts tell.
    pub(crate) fn room(&self) -> usize {
        self.cap - self.in_pipe
    }

    /// Adds up to `len` more bytes from `src` behind a pull the pipe still holds. Unlike [`Splicer::pull`] this
    /// leaves the socket's readiness alone: `WouldBlock` here may mean the pipe is out of slots rather than
    /// the socket out of data, so it only says "push first".
    pub(crate) fn pull_more(&mut self, src: &TcpStream, len: u64) -> io::Result<usize> {
        let len = len.min(self.room() as u64) as usize;
        let n = splice(src, None, &self.wr, None, len, flags()).map_err(io::Error::from)?;
        self.in_pipe += n;
        self.pulled |= n > 0;
        Ok(n)
    }

    /// Moves what the pipe holds into `dst`, as much as it takes. `WouldBlock` means `dst` is full now.
    pub(crate) fn push(&mut self, dst: &TcpStream) -> io::Result<usize> {
        let len = self.in_pipe;
        let n = dst.try_io(Interest::WRITABLE, || {
            splice(&self.rd, None, dst, None, len, flags()).map_err(io::Error::from)
        })?;
        if n == 0 {
            // A pipe that holds bytes never reads as empty; a zero here means the socket is unusable.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "splice into the socket moved nothing",
            ));
        }
        self.in_pipe -= n;
        if self.in_pipe == 0 {
            self.pulled = false;
        }
        Ok(n)
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK
}

/// Looks at the next frame's length prefix without taking it from `src`: `Ok(None)` when fewer than four bytes
/// are there (or the stream ended), `WouldBlock` when nothing is.
///
/// Peeking lets header and body be spliced in one call when a stream carries big frames back to back, where
/// reading the header (and writing it into the pipe) would cost two more system calls per frame.
pub(crate) fn peek_header(src: &TcpStream) -> io::Result<Option<[u8; HEADER]>> {
    let mut header = [0u8; HEADER];
    let n = src.try_io(Interest::READABLE, || {
        recv(src.as_raw_fd(), &mut header, MsgFlags::MSG_PEEK).map_err(io::Error::from)
    })?;
    Ok((n == HEADER).then_some(header))
}

/// Looks at a frame's length prefix and up to `body.len()` of its first body bytes without taking them:
/// `None` unless the whole header is there; else the header and how many body bytes were copied into `body`.
/// Leaves the socket's readiness alone (like [`peek_header_now`]).
pub(crate) fn peek_head_now(src: &TcpStream, body: &mut [u8]) -> Option<([u8; HEADER], usize)> {
    let mut buf = [0u8; HEADER + super::classify::PREFIX];
    let want = HEADER + body.len().min(super::classify::PREFIX);
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(src.as_raw_fd(), &mut buf[..want], flags) {
        Ok(n) if n >= HEADER => {
            let mut header = [0u8; HEADER];
            header.copy_from_slice(&buf[..HEADER]);
            body[..n - HEADER].copy_from_slice(&buf[HEADER..n]);
            Some((header, n - HEADER))
        }
        _ => None,
    }
}

/// Like [`peek_header`] but leaving the socket's readiness alone, for a look taken while there is other work
/// (bytes in the pipe to push): `None` for anything short of a whole prefix, `WouldBlock` included.
pub(crate) fn peek_header_now(src: &TcpStream) -> Option<[u8; HEADER]> {
    let mut header = [0u8; HEADER];
    let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    match recv(src.as_raw_fd(), &mut header, flags) {
        Ok(HEADER) => Some(header),
        _ => None,
    }
}

/// Whether a failed pull means "splice is not possible here" (so copying should take over) rather than a broken
/// connection.
pub(crate) fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::EINVAL || code == nix::libc::ENOSYS || code == nix::libc::EOPNOTSUPP
    )
}
