//! The fixed palette every rendered frame uses: xterm's 256 colours, with true colour quantised to the
//! nearest of them.
//!
//! A fixed palette keeps the GIF to one global colour table (no per-frame tables, no dithering) and makes
//! a colour the same index in every frame, so unchanged pixels compare equal. Index 16 of xterm's table is
//! black, the same as index 0; squall remaps it to 0 and keeps 16 free as the GIF's transparent index for
//! the pixels of a frame's rectangle that did not change.

use std::collections::HashMap;

/// The palette index left free for "unchanged" pixels (xterm's 16 is black, drawn as index 0 instead).
pub const TRANSPARENT: u8 = 16;

/// The default background (black) and foreground (xterm's light grey, colour 7).
pub const DEFAULT_BG: u8 = 0;
/// See [`DEFAULT_BG`].
pub const DEFAULT_FG: u8 = 7;

/// xterm's first sixteen colours (its defaults in `XTerm-col.ad`).
const SYSTEM: [(u8, u8, u8); 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x00, 0x00),
    (0x00, 0xcd, 0x00),
    (0xcd, 0xcd, 0x00),
    (0x00, 0x00, 0xee),
    (0xcd, 0x00, 0xcd),
    (0x00, 0xcd, 0xcd),
    (0xe5, 0xe5, 0xe5),
    (0x7f, 0x7f, 0x7f),
    (0xff, 0x00, 0x00),
    (0x00, 0xff, 0x00),
    (0xff, 0xff, 0x00),
    (0x5c, 0x5c, 0xff),
    (0xff, 0x00, 0xff),
    (0x00, 0xff, 0xff),
    (0xff, 0xff, 0xff),
];

/// The six levels of each channel in xterm's 6×6×6 colour cube (indices 16 to 231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The RGB value of palette index `i`: 0–15 the system colours, 16–231 the colour cube, 232–255 the
/// grey ramp (8, 18, ..., 238).
pub fn rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => SYSTEM[usize::from(i)],
        16..=231 => {
            let n = i - 16;
            (
                CUBE[usize::from(n / 36)],
                CUBE[usize::from(n / 6 % 6)],
                CUBE[usize::from(n % 6)],
            )
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
    }
}

/// The whole table as GIF wants it: 256 RGB triples, 768 bytes.
pub fn gif_table() -> Vec<u8> {
    (0..=255u8)
        .flat_map(|i| {
            let (r, g, b) = rgb(i);
            [r, g, b]
        })
        .collect()
}

/// `#rrggbb` of palette index `i`, for SVG.
pub fn hex(i: u8) -> String {
    let (r, g, b) = rgb(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// An indexed colour as drawn: xterm's 16 (black) is drawn as 0 so that 16 stays free for transparency.
pub fn indexed(i: u8) -> u8 {
    if i == TRANSPARENT { 0 } else { i }
}

/// Maps true colour to the nearest palette index (squared RGB distance), remembering each answer: a
/// dashboard uses a handful of colours thousands of times.
#[derive(Debug, Default)]
pub struct Quantiser {
    known: HashMap<(u8, u8, u8), u8>,
}

impl Quantiser {
    /// The palette index nearest to `(r, g, b)`; never [`TRANSPARENT`].
    pub fn nearest(&mut self, r: u8, g: u8, b: u8) -> u8 {
        *self.known.entry((r, g, b)).or_insert_with(|| {
            let distance = |i: u8| {
                let (pr, pg, pb) = rgb(i);
                let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
                d(pr, r) + d(pg, g) + d(pb, b)
            };
            (0..=255u8)
                .filter(|&i| i != TRANSPARENT)
                .min_by_key(|&i| distance(i))
                .unwrap_or(DEFAULT_FG)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_xterms() {
        assert_eq!(rgb(1), (0xcd, 0, 0));
        assert_eq!(rgb(16), (0, 0, 0));
        assert_eq!(rgb(196), (255, 0, 0));
        assert_eq!(rgb(231), (255, 255, 255));
        assert_eq!(rgb(232), (8, 8, 8));
        assert_eq!(rgb(255), (238, 238, 238));
        assert_eq!(gif_table().len(), 768);
        assert_eq!(hex(12), "#5c5cff");
    }

    #[test]
    fn true_colour_goes_to_the_nearest_entry_and_never_to_the_transparent_one() {
        let mut q = Quantiser::default();
        assert_eq!(q.nearest(0, 0, 0), 0);
        assert_eq!(q.nearest(255, 0, 0), 9);
        assert_eq!(q.nearest(0, 95, 135), 16 + 6 + 2);
        assert_eq!(q.nearest(100, 100, 100), rgb_index_of_grey(98));
        assert_eq!(indexed(16), 0);
        assert_eq!(indexed(17), 17);
    }

    fn rgb_index_of_grey(level: u8) -> u8 {
        232 + (level - 8) / 10
    }
}
