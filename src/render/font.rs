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
/// walks a table of ranges).
#[derive(Debug, Default)]
pub struct Rasteriser {
    glyphs: HashMap<char, Glyph>,
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
        *self.glyphs.entry(ch).or_insert_with(|| lookup(ch))
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
        let glyph = self.glyph(cell.ch);
        let cells = if glyph.wide && room >= 2 { 2 } else { 1 };
        let width = cells * CELL_W;
        for (dy, &bits) in glyph.rows.iter().enumerate() {
            let mut bits = bits;
            if cell.attrs & BOLD != 0 {
                // Overstrike one pixel to the right, as terminals without a bold face do.
                bits |= bits >> 1;
            }
            if cell.attrs & UNDERLINE != 0 && dy == CELL_H - 2 {
                bits = u16::MAX;
            }
            let row = &mut pixels[(y + dy) * stride + x..][..width];
            for (dx, p) in row.iter_mut().enumerate() {
                *p = if bits & (0x8000 >> dx) != 0 {
                    cell.fg
                } else {
                    cell.bg
                };
            }
        }
        cells
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
}
