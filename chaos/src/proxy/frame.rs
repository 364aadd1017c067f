//! Frame boundaries of the length-delimited stream tarpc speaks.
//!
//! tarpc 0.38's `serde_transport` frames every message with tokio-util's `LengthDelimitedCodec` at its
//! defaults: a 4-byte big-endian length, then that many payload bytes (no length adjustment, no header kept).
//! The proxy only needs boundaries, so it tracks where the current frame ends rather than decoding anything.

use bytes::{Bytes, BytesMut};

use super::classify::PREFIX;

/// Bytes in the length prefix.
pub(crate) const HEADER: usize = 4;

/// The largest frame the proxy will hold whole while a fault is set. tarpc rejects frames over 8 MiB by default;
/// a bigger claimed length means the stream is not ours or is corrupt, and the connection is closed.
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Position inside the stream: how much of the current frame's header and body has gone past.
///
/// With [`FrameCursor::capturing`] it also keeps the first [`PREFIX`] payload bytes of each frame and hands them
/// to the caller once they are complete, so a classifier can label frames that stream through unbuffered.
#[derive(Debug, Default, Clone)]
pub(crate) struct FrameCursor {
    header: [u8; HEADER],
    have: usize,
    body_left: u64,
    /// Body length of the frame whose header came last: tells the pipe whether this stream carries big frames.
    last_body: u64,
    /// Keep payload prefixes.
    capture: bool,
    prefix: Vec<u8>,
    /// Prefix bytes wanted of the current frame; `usize::MAX` once handed over (or when not capturing).
    want: usize,
}

impl FrameCursor {
    /// A cursor that hands over each frame's payload prefix.
    pub(crate) fn capturing() -> FrameCursor {
        FrameCursor {
            capture: true,
            prefix: Vec::with_capacity(PREFIX),
            want: usize::MAX,
            ..FrameCursor::default()
        }
    }

    /// True between frames.
    pub(crate) fn at_boundary(&self) -> bool {
        self.have == 0 && self.body_left == 0
    }

    /// Body bytes of the current frame still to come (0 between frames and inside a header).
    pub(crate) fn body_left(&self) -> u64 {
        self.body_left
    }

    /// Header bytes still to come before the current frame's body starts (0 inside a body).
    pub(crate) fn header_left(&self) -> usize {
        if self.body_left > 0 {
            0
        } else {
            HEADER - self.have
        }
    }

    /// Body length of the most recent frame whose header has gone past.
    pub(crate) fn last_body(&self) -> u64 {
        self.last_body
    }

    /// Whether the current frame's payload prefix is still being collected for the classifier: its body must
    /// not be spliced past unseen until it is (a frame spliced unseen would be counted as `other`).
    pub(crate) fn prefix_pending(&self) -> bool {
        self.capture && self.want != usize::MAX
    }

    /// Hands over body bytes looked at ahead of time (peeked, not yet moved over) as the current frame's
    /// payload prefix, once the header is in; they are moved over later like any others.
    pub(crate) fn peeked_prefix(&mut self, bytes: &[u8], on_prefix: &mut impl FnMut(&[u8])) {
        if self.prefix_pending() && self.have == 0 {
            let n = bytes.len().min(self.want - self.prefix.len());
            self.prefix.extend_from_slice(&bytes[..n]);
            if self.prefix.len() == self.want {
                self.want = usize::MAX;
                on_prefix(&self.prefix);
            }
        }
    }

    /// Moves over `n` body bytes that went past without being looked at (spliced); returns whether the frame
    /// ended. `n` must not exceed [`FrameCursor::body_left`].
    pub(crate) fn skip_body(&mut self, n: u64, on_prefix: &mut impl FnMut(&[u8])) -> bool {
        if n > 0 && self.capture && self.want != usize::MAX {
            // The rest goes by unseen: the classifier gets what there is.
            self.want = usize::MAX;
            on_prefix(&self.prefix);
        }
        debug_assert!(
            n <= self.body_left,
            "skipping {n} of {} body bytes",
            self.body_left
        );
        self.body_left -= n.min(self.body_left);
        n > 0 && self.body_left == 0
    }

    /// Moves over `data`, returning how many frames ended inside it; each frame's payload prefix goes to
    /// `on_prefix` when capturing.
    pub(crate) fn feed(&mut self, mut data: &[u8], on_prefix: &mut impl FnMut(&[u8])) -> u64 {
        let mut frames = 0;
        while !data.is_empty() {
            let (used, ended) = self.step(data, on_prefix);
            frames += u64::from(ended);
            data = &data[used..];
        }
        frames
    }

    /// Moves over `data` only up to the end of the frame already begun; returns the bytes used and whether the
    /// frame ended. Used when faults switch on mid-frame: the rest of that frame must follow its start untouched.
    pub(crate) fn finish_frame(
        &mut self,
        mut data: &[u8],
        on_prefix: &mut impl FnMut(&[u8]),
    ) -> (usize, bool) {
        let mut total = 0;
        while !self.at_boundary() && !data.is_empty() {
            let (used, ended) = self.step(data, on_prefix);
            total += used;
            data = &data[used..];
            if ended {
                return (total, true);
            }
        }
        (total, false)
    }

    /// Consumes a header piece or a body piece; returns the bytes used and whether a frame ended.
    fn step(&mut self, data: &[u8], on_prefix: &mut impl FnMut(&[u8])) -> (usize, bool) {
        if self.body_left > 0 {
            let take = (self.body_left.min(data.len() as u64)) as usize;
            if self.want != usize::MAX {
                let n = take.min(self.want - self.prefix.len());
                self.prefix.extend_from_slice(&data[..n]);
                if self.prefix.len() == self.want {
                    self.want = usize::MAX;
                    on_prefix(&self.prefix);
                }
            }
            self.body_left -= take as u64;
            return (take, self.body_left == 0);
        }
        let take = (HEADER - self.have).min(data.len());
        self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
        self.have += take;
        if self.have < HEADER {
            return (take, false);
        }
        self.have = 0;
        self.body_left = u64::from(u32::from_be_bytes(self.header));
        self.last_body = self.body_left;
        if self.capture {
            self.prefix.clear();
            self.want = (self.body_left as usize).min(PREFIX);
            if self.want == 0 {
                self.want = usize::MAX;
                on_prefix(&[]);
            }
        }
        (take, self.body_left == 0)
    }
}

/// Outcome of looking for a whole frame at the front of a buffer.
pub(crate) enum Next {
    /// A complete frame, header included.
    Frame(Bytes),
    /// More bytes are needed; this many in total for the frame at the front.
    Need(usize),
    /// The frame at the front claims more than [`MAX_FRAME`] bytes.
    TooBig(usize),
}

/// Splits one whole frame off the front of `buf` (which must start at a boundary).
pub(crate) fn next_frame(buf: &mut BytesMut) -> Next {
    if buf.len() < HEADER {
        return Next::Need(HEADER);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Next::TooBig(len);
    }
    let total = HEADER + len;
    if buf.len() < total {
        return Next::Need(total);
    }
    Next::Frame(buf.split_to(total).freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Vec<u8> {
        let mut v = (len as u32).to_be_bytes().to_vec();
        v.extend(std::iter::repeat_n(7u8, len));
        v
    }

    #[test]
    fn cursor_counts_frames_across_any_split() {
        let stream: Vec<u8> = [0, 1, 300, 5, 0, 70_000]
            .iter()
            .flat_map(|&l| frame(l))
            .collect();
        for chunk in [1, 2, 3, 5, 64, 1000, stream.len()] {
            let mut c = FrameCursor::default();
            let frames: u64 = stream.chunks(chunk).map(|p| c.feed(p, &mut |_| {})).sum();
            assert_eq!(frames, 6, "chunk size {chunk}");
            assert!(c.at_boundary());
        }
    }

    #[test]
    fn a_capturing_cursor_hands_over_each_prefix_once_across_any_split() {
        let lens = [0usize, 3, 300, 5];
        let stream: Vec<u8> = lens.iter().flat_map(|&l| frame(l)).collect();
        for chunk in [1, 2, 7, 64, stream.len()] {
            let mut c = FrameCursor::capturing();
            let mut got = Vec::new();
            for p in stream.chunks(chunk) {
                c.feed(p, &mut |pre: &[u8]| got.push(pre.len()));
            }
            assert_eq!(got, vec![0, 3, PREFIX, 5], "chunk size {chunk}");
        }
    }

    #[test]
    fn finish_frame_stops_at_the_boundary() {
        let stream: Vec<u8> = [10, 20].iter().flat_map(|&l| frame(l)).collect();
        let mut c = FrameCursor::default();
        c.feed(&stream[..2], &mut |_| {}); // half a header
        let (used, ended) = c.finish_frame(&stream[2..], &mut |_| {});
        assert_eq!((used, ended), (12, true));
        assert!(c.at_boundary());
        let (used, ended) = c.finish_frame(&stream[14..], &mut |_| {});
        assert_eq!(
            (used, ended),
            (0, false),
            "already at a boundary: nothing to finish"
        );
    }

    #[test]
    fn next_frame_splits_whole_frames_only() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame(3));
        buf.extend_from_slice(&frame(5)[..6]);
        assert!(matches!(next_frame(&mut buf), Next::Frame(f) if f.len() == 7));
        assert!(matches!(next_frame(&mut buf), Next::Need(9)));
        buf.clear();
        buf.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(next_frame(&mut buf), Next::TooBig(_)));
    }
}
