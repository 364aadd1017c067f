//! GIF's LZW coding of a frame's pixels (Welch, "A Technique for High-Performance Data Compression", IEEE
//! Computer 1984; the variable-length codes, clear and end codes and least-significant-bit-first packing of
//! the GIF89a specification, appendix F).
//!
//! The `gif` crate codes frames with `weezl`, whose string table is a tree made for any alphabet. A
//! frame here has a few colours (its local table, usually under 32), so the table is one dense array: the
//! code of "string `c` followed by colour `k`" is `next[c * K + k]`, K the alphabet's size, one load a
//! pixel. The codes it emits are the ones `weezl` emits, bit for bit (same moments of growing the code
//! size, same clear code when the table is full), so a file is the same whichever coder wrote it; the
//! tests check that against `gif`'s own coder. One quirk of `weezl` 0.1 is kept for that: it keeps up to
//! [`SHORT`] successors of a string in a short list, and when a seventeenth comes it moves the list to a
//! full table without recording the new string (its code is used up, the string is never matched). The
//! output stays valid LZW either way; keeping the quirk keeps the files identical.

/// The widest code GIF allows.
const MAX_CODE_BITS: u8 = 12;
/// Codes a table holds before it is cleared.
const MAX_ENTRIES: usize = 1 << MAX_CODE_BITS;
/// Successors of one string `weezl` records before it moves them to a full table (see the module's
/// comment).
const SHORT: u8 = 16;

/// LZW-codes `data` (palette indices) as a GIF image's data: the minimum code size byte (from the highest
/// index, at least 2), then the codes packed least significant bit first, without GIF's sub-block lengths.
/// This is what `gif::Frame::make_lzw_pre_encoded` makes of the same pixels.
pub fn encode(data: &[u8]) -> Vec<u8> {
    // The smallest code size that holds every index, as `gif` chooses it (at least 2).
    let highest = data.iter().copied().max().unwrap_or(0);
    let min_size = (u32::from(highest) + 1)
        .max(4)
        .next_power_of_two()
        .trailing_zeros() as u8;
    let mut out = Vec::with_capacity(data.len() / 4 + 16);
    out.push(min_size);
    let mut coder = Coder::new(min_size, out);
    coder.encode(data);
    coder.finish()
}

/// The coder's state: the string table, the code being extended, and the bits not yet written.
struct Coder {
    /// The alphabet's size (a power of two, 4 to 256).
    k: usize,
    clear: u16,
    /// `next[c * k + i]`: the code of string `c` followed by index `i`; 0 for none (code 0 is a single
    /// index, never a longer string).
    next: Vec<u16>,
    /// How many successors each string has recorded, up to [`SHORT`] + 1 (moved to a full table).
    kids: Vec<u8>,
    /// The next code the table will assign.
    free: usize,
    /// Bits a code takes now.
    bits: u8,
    acc: u64,
    acc_bits: u8,
    out: Vec<u8>,
    min_size: u8,
}

impl Coder {
    fn new(min_size: u8, out: Vec<u8>) -> Self {
        let k = 1usize << min_size;
        let mut c = Coder {
            k,
            clear: k as u16,
            next: vec![0; (MAX_ENTRIES + 1) * k],
            kids: vec![0; MAX_ENTRIES + 1],
            free: k + 2,
            bits: min_size + 1,
            acc: 0,
            acc_bits: 0,
            out,
            min_size,
        };
        c.put(c.clear);
        c
    }

    fn put(&mut self, code: u16) {
        self.acc |= u64::from(code) << self.acc_bits;
        self.acc_bits += self.bits;
        while self.acc_bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.acc_bits -= 8;
        }
    }

    /// Empties the table: the single indices stay, every longer string goes.
    fn reset(&mut self) {
        let used = self.free.min(MAX_ENTRIES + 1);
        self.next[..used * self.k].fill(0);
        self.kids[..used].fill(0);
        self.free = self.k + 2;
        self.bits = self.min_size + 1;
    }

    fn encode(&mut self, data: &[u8]) {
        let Some((&first, rest)) = data.split_first() else {
            self.put(self.clear + 1);
            return;
        };
        let mut current = u16::from(first);
        for &b in rest {
            let slot = usize::from(current) * self.k + usize::from(b);
            let n = self.next[slot];
            if n != 0 {
                current = n;
                continue;
            }
            // A string the table lacks: it gets the next code, and the longest known one goes out.
            let kids = &mut self.kids[usize::from(current)];
            if *kids == SHORT {
                // `weezl`'s move to a full table: this string's code is spent but not recorded.
                *kids += 1;
            } else {
                self.next[slot] = self.free as u16;
                *kids = (*kids + 1).min(SHORT + 1);
            }
            self.free += 1;
            self.put(current);
            if self.free > (1 << self.bits) && self.bits < MAX_CODE_BITS {
                self.bits += 1;
            }
            if self.free > MAX_ENTRIES {
                self.put(self.clear);
                self.reset();
            }
            current = u16::from(b);
        }
        self.put(current);
        // A decoder adds one more entry on reading that code, and may widen before the end code.
        if self.free >= (1 << self.bits) && self.bits < MAX_CODE_BITS {
            self.bits += 1;
        }
        self.put(self.clear + 1);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.acc_bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// What `gif`'s own coder (weezl) makes of `data`.
    fn theirs(data: &[u8]) -> Vec<u8> {
        let mut f = gif::Frame {
            buffer: Cow::Owned(data.to_vec()),
            ..gif::Frame::default()
        };
        f.make_lzw_pre_encoded();
        f.buffer.into_owned()
    }

    #[test]
    fn the_codes_are_the_ones_gifs_own_coder_writes() {
        let seed: u64 = std::env::var("SQUALL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("seed {seed} (SQUALL_TEST_SEED={seed} replays it)");
        let mut rng = StdRng::seed_from_u64(seed);
        // Edge cases first: one pixel, a long run (the table fills and is cleared many times), every index.
        let mut cases: Vec<Vec<u8>> = vec![
            vec![0],
            vec![3],
            vec![0; 200_000],
            (0..=255).collect(),
            (0..100_000).map(|i| (i % 256) as u8).collect(),
        ];
        // Frames as they come: runs of a few colours, a transparent 0, noise in places.
        for _ in 0..60 {
            let colours = rng.random_range(1..=40u8);
            let len = rng.random_range(1..60_000);
            let mut v = Vec::with_capacity(len);
            while v.len() < len {
                let c = rng.random_range(0..colours);
                let run = if rng.random_bool(0.3) {
                    rng.random_range(1..400)
                } else {
                    1
                };
                v.extend(std::iter::repeat_n(c, run.min(len - v.len())));
            }
            cases.push(v);
        }
        for (i, data) in cases.iter().enumerate() {
            assert!(
                encode(data) == theirs(data),
                "seed {seed}, case {i} ({} bytes): the codes differ",
                data.len()
            );
        }
    }
}
