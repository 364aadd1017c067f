//! The embedded bitmap font: GNU Unifont's glyphs, 8×16 pixels (16×16 for wide characters), through the
//! `unifont` crate.
//!
//! Licence check (December 2026): the `unifont` crate's code is MIT; the glyph data it carries is GNU
//! Unifont 15.1.05, which since Unifont 13.0.04 is dual-licensed under the SIL Open Font License 1.1 and
//! the GNU GPL 2+ with the GNU font embedding exception. squall takes it under the OFL 1.1, which allows
//! bundling the font with software under any licence (the font itself is not sold alone, and keeps its
//! name and notice); pictures drawn with it are not covered by the font's licence. Unifont covers the whole
//! Basic Multilingual Plane: box drawing, block elements, arrows, dingbats (✓ ✗), geometric shapes (● ◆ ▶),
//! everything the dashboard draws. Characters outside it (emoji) are drawn as U+FFFD.

use std::collections::HashMap;

use super::screen::{BOLD, Cell, UNDERLINE};

/// Width of one cell in pixels.
pub const CELL_W: usize = 8;
/// Height of one cell in pixels.
pub const CELL_H: usize = 16;

/// A glyph's rows, the leftmost pixel in the top bit of a 16-bit row; `wide` glyphs use all 16 bits,
/// narrow ones the top 8.
#[derive(Debug, Clone, Copy)]
struct Glyph {
    rows: [u16; CELL_H],
    wide: bool,
}

fn lookup(ch: char) -> Glyph {
    let g = unifont::get_glyph(ch)
        .or_else(|| unifont::get_glyph(char::REPLACEMENT_CHARACTER))
        .expect("Unifont has U+FFFD");
    match g {
        unifont::Glyph::Halfwidth(rows) => Glyph {
            rows: rows.map(|r| u16::from(r) << 8),
            wide: false,
        },
        unifont::Glyph::Fullwidth(rows) => Glyph {
            rows: *rows,
            wide: true,
        },
    }
}

/// Draws cells into an indexed-colour pixel buffer, remembering glyphs it has looked up (Unifont's lookup
/// walks a table of ranges): a character of the Basic Multilingual Plane finds its glyph through a table
/// indexed by code point, so a frame's thousands of lookups cost an index each.
#[derive(Debug, Default)]
pub struct Rasteriser {
    /// Slot + 1 in `glyphs` of each BMP code point looked up so far, 0 for not yet (grown on first use).
    slots: Vec<u16>,
    glyphs: Vec<Glyph>,
    /// Characters beyond the BMP (drawn as U+FFFD, or whatever Unifont has).
    astral: HashMap<char, Glyph>,
}

/// The pixels a cell draws, as bits: row `dy`'s leftmost pixel in the top bit, `width` pixels (8 or 16)
/// of each row used, set bits in the foreground colour and clear ones in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellBits {
    /// The sixteen rows, bold and underline applied, bits beyond `width` cleared.
    pub rows: [u16; CELL_H],
    /// Width in pixels: [`CELL_W`] or twice that.
    pub width: usize,
}

impl CellBits {
    /// The bits of a row whose every pixel is set.
    pub fn full(&self) -> u16 {
        left_bits(self.width)
    }
}

/// The top `n` bits of a row (`n` at most 16).
fn left_bits(n: usize) -> u16 {
    u16::MAX.checked_shr(n as u32).map_or(u16::MAX, |r| !r)
}

/// `SPREAD[b]`: the eight pixels of byte `b` (leftmost in the top bit) as a mask of eight bytes in memory
/// order, 0xff where the bit is set: a glyph row becomes pixels with two ANDs and an OR, no branch a pixel.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut k = 0;
        while k < 8 {
            if b & (0x80 >> k) != 0 {
                t[b] |= 0xff << (8 * k);
            }
            k += 1;
        }
        b += 1;
    }
    t
};

/// Eight pixels of `bits` (leftmost in the top bit) in `fg` where set and `bg` where clear, into `out`.
fn put8(out: &mut [u8], bits: u8, fg: u8, bg: u8) {
    let mask = SPREAD[usize::from(bits)];
    let (f, b) = (
        u64::from(fg) * 0x0101_0101_0101_0101,
        u64::from(bg) * 0x0101_0101_0101_0101,
    );
    out[..8].copy_from_slice(&((mask & f) | (!mask & b)).to_le_bytes());
}

impl Rasteriser {
    /// Whether `ch` is drawn two cells wide.
    pub fn is_wide(&mut self, ch: char) -> bool {
        self.glyph(ch).wide
    }

    fn glyph(&mut self, ch: char) -> Glyph {
        if ch == ' ' {
            return Glyph {
                rows: [0; CELL_H],
                wide: false,
            };
        }
        let Ok(cp) = u16::try_from(u32::from(ch)) else {
            return *self.astral.entry(ch).or_insert_with(|| lookup(ch));
        };
        let cp = usize::from(cp);
        if cp >= self.slots.len() {
            // Grown to cover what has been asked for: a dashboard of ASCII and box drawing stays small.
            self.slots.resize((cp + 1).next_power_of_two(), 0);
        }
        match self.slots[cp] {
            0 => {
                let g = lookup(ch);
                self.glyphs.push(g);
                // At most 65,536 glyphs, one per BMP code point: the slot fits.
                self.slots[cp] = self.glyphs.len() as u16;
                g
            }
            slot => self.glyphs[usize::from(slot) - 1],
        }
    }

    /// The pixels `cell` draws: `wide` glyphs two cells wide when `room` allows, else their left half.
    pub fn bits(&mut self, cell: &Cell, room: usize) -> CellBits {
        let glyph = self.glyph(cell.ch);
        let cells = if glyph.wide && room >= 2 { 2 } else { 1 };
        let width = cells * CELL_W;
        let keep = left_bits(width);
        let mut rows = glyph.rows;
        for (dy, bits) in rows.iter_mut().enumerate() {
            if cell.attrs & BOLD != 0 {
                // Overstrike one pixel to the right, as terminals without a bold face do.
                *bits |= *bits >> 1;
            }
            if cell.attrs & UNDERLINE != 0 && dy == CELL_H - 2 {
                *bits = u16::MAX;
            }
            *bits &= keep;
        }
        CellBits { rows, width }
    }

    /// Draws `bits` in colours `fg` and `bg` with its top-left pixel at `(x, y)` of `pixels` (`stride`
    /// pixels a row).
    pub fn put(
        pixels: &mut [u8],
        stride: usize,
        (x, y): (usize, usize),
        bits: &CellBits,
        fg: u8,
        bg: u8,
    ) {
        for (dy, &row) in bits.rows.iter().enumerate() {
            let out = &mut pixels[(y + dy) * stride + x..][..bits.width];
            let [hi, lo] = row.to_be_bytes();
            put8(&mut out[..CELL_W], hi, fg, bg);
            if bits.width > CELL_W {
                put8(&mut out[CELL_W..], lo, fg, bg);
            }
        }
    }

    /// Draws `cell` with its top-left pixel at `(x, y)` of `pixels` (`stride` pixels a row), `wide` cells
    /// two cells wide when `room` allows. Returns how many cells it covered (1 or 2).
    pub fn draw(
        &mut self,
        pixels: &mut [u8],
        stride: usize,
        (x, y): (usize, usize),
        cell: &Cell,
        room: usize,
    ) -> usize {
        let bits = self.bits(cell, room);
        Self::put(pixels, stride, (x, y), &bits, cell.fg, cell.bg);
        bits.width / CELL_W
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboards_glyphs_are_in_the_font() {
        // Every non-ASCII character squall's dashboard draws, plus ratatui's borders.
        for ch in "·×—…─→✓✗▶–◆░←┤├↓↑✕│⏸⚠◂▏⏎●█▆▄▁╷╳┅␣•‖┌┐└┘╭╮╯╰▂▃▅▇⣿".chars()
        {
            assert!(unifont::get_glyph(ch).is_some(), "{ch:?} is not in Unifont");
        }
    }

    #[test]
    fn a_glyph_lands_in_its_cell_in_its_colours() {
        let mut r = Rasteriser::default();
        let mut px = vec![0u8; 2 * CELL_W * CELL_H];
        let cell = Cell {
            ch: '─',
            fg: 3,
            bg: 4,
            attrs: 0,
        };
        assert_eq!(r.draw(&mut px, 2 * CELL_W, (CELL_W, 0), &cell, 1), 1);
        // The left cell is untouched; the line runs across the whole right cell on one row.
        assert!(
            px.chunks(2 * CELL_W)
                .all(|row| row[..CELL_W] == [0; CELL_W])
        );
        let full: Vec<usize> = (0..CELL_H)
            .filter(|&y| px[y * 2 * CELL_W + CELL_W..][..CELL_W] == [3; CELL_W])
            .collect();
        assert_eq!(full.len(), 1, "one row of the line: {full:?}");
        assert!(px.iter().all(|&p| p == 0 || p == 3 || p == 4));
    }

    #[test]
    fn bits_drawn_by_spreading_match_the_glyph_pixel_by_pixel() {
        // The table-driven drawing against Unifont's own pixels, for narrow, wide, bold and underlined cells.
        let mut r = Rasteriser::default();
        for (ch, attrs, room) in [
            ('A', 0, 1),
            ('g', BOLD, 1),
            ('─', UNDERLINE, 1),
            ('⣿', 0, 1),
            ('中', 0, 2),
            ('中', BOLD, 1),
        ] {
            let cell = Cell {
                ch,
                fg: 9,
                bg: 4,
                attrs,
            };
            let mut px = vec![0u8; 2 * CELL_W * CELL_H];
            let cells = r.draw(&mut px, 2 * CELL_W, (0, 0), &cell, room);
            let glyph = unifont::get_glyph(ch).unwrap();
            for y in 0..CELL_H {
                for x in 0..cells * CELL_W {
                    let mut on = glyph.get_pixel(x, y);
                    if attrs & BOLD != 0 && x > 0 {
                        on |= glyph.get_pixel(x - 1, y);
                    }
                    if attrs & UNDERLINE != 0 && y == CELL_H - 2 {
                        on = true;
                    }
                    let want = if on { 9 } else { 4 };
                    assert_eq!(
                        px[y * 2 * CELL_W + x],
                        want,
                        "{ch:?} attrs {attrs} at ({x}, {y})"
                    );
                }
            }
            assert_eq!(cells, if ch == '中' && room == 2 { 2 } else { 1 }, "{ch:?}");
        }
    }
}
