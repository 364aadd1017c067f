//! Frames to an animated GIF: colours from one fixed palette (xterm's 256), the first frame whole, every
//! later frame only the rectangle that changed with its unchanged pixels transparent, and each frame's delay
//! the time until the next change.
//!
//! Each frame carries the few palette colours it uses as a local colour table, numbered from 0: LZW's
//! code size follows the highest index in the data, so a frame of 12 colours is coded with 5-bit instead
//! of 9-bit codes, which makes the file about a third smaller for the cost of a few bytes of table.

use std::borrow::Cow;
use std::io::Write;

use super::error::RenderError;
use super::font::{CELL_H, CELL_W, Rasteriser};
use super::palette::{self, TRANSPARENT};
use super::screen::Screen;
use super::timeline::{FrameSink, MIN_DELAY_CS};

/// A frame waiting for the next one to learn its delay.
struct Pending {
    t_cs: u32,
    frame: gif::Frame<'static>,
}

/// Writes frames as a looping GIF into `W`.
pub struct GifSink<W: Write> {
    encoder: gif::Encoder<W>,
    raster: Rasteriser,
    shown: Option<Screen>,
    pending: Option<Pending>,
    /// Pixels encoded so far (the sum of the frames' rectangles), for the summary.
    pub pixels: u64,
}

fn encoding(e: gif::EncodingError) -> RenderError {
    RenderError::Write(std::io::Error::other(e))
}

impl<W: Write> GifSink<W> {
    /// A GIF of a `cols` × `rows` screen: `cols * 8` × `rows * 16` pixels.
    pub fn new(out: W, cols: usize, rows: usize) -> Result<Self, RenderError> {
        let (w, h) = (cols * CELL_W, rows * CELL_H);
        let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
            return Err(RenderError::Usage(format!(
                "a {cols}×{rows} screen is {w}×{h} pixels, more than a GIF holds (65535 a side)"
            )));
        };
        let mut encoder = gif::Encoder::new(out, w, h, &palette::gif_table()).map_err(encoding)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(encoding)?;
        Ok(GifSink {
            encoder,
            raster: Rasteriser::default(),
            shown: None,
            pending: None,
            pixels: 0,
        })
    }

    /// Finishes the file and hands back the writer.
    pub fn into_inner(self) -> Result<W, RenderError> {
        self.encoder.into_inner().map_err(encoding)
    }

    /// The frame that turns `before` (or nothing) into `now`: the bounding rectangle of the cells to
    /// redraw, the others in it transparent.
    fn frame_of(&mut self, now: &Screen, before: Option<&Screen>) -> Option<gif::Frame<'static>> {
        let cols = now.cols;
        // Which cells to draw: those that changed, and the cell after one that is or was a wide glyph
        // (its right half lies there).
        let mut dirty = vec![false; now.cells.len()];
        match before {
            None => dirty.fill(true),
            Some(b) => {
                for (i, (n, o)) in now.cells.iter().zip(&b.cells).enumerate() {
                    if n != o {
                        dirty[i] = true;
                        let x = i % cols;
                        if x + 1 < cols && (self.raster.is_wide(n.ch) || self.raster.is_wide(o.ch))
                        {
                            dirty[i + 1] = true;
                        }
                    }
                }
            }
        }
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (i, _) in dirty.iter().enumerate().filter(|(_, d)| **d) {
            let (x, y) = (i % cols, i / cols);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        if x0 == usize::MAX {
            return None;
        }
        let (wc, hc) = (x1 - x0 + 1, y1 - y0 + 1);
        let stride = wc * CELL_W;
        let mut pixels = vec![TRANSPARENT; stride * hc * CELL_H];
        for y in y0..=y1 {
            let row = now.row(y);
            let mut x = 0;
            while x < cols {
                // A wide glyph covers the next cell too; walk the row from its start so that is known.
                let wide = self.raster.is_wide(row[x].ch) && x + 1 < cols;
                let span = if wide { 2 } else { 1 };
                let draw = dirty[y * cols + x] || (wide && dirty[y * cols + x + 1]);
                if draw && x >= x0 && x + span - 1 <= x1 {
                    self.raster.draw(
                        &mut pixels,
                        stride,
                        ((x - x0) * CELL_W, (y - y0) * CELL_H),
                        &row[x],
                        span,
                    );
                } else if draw && x >= x0 && x <= x1 {
                    // A wide glyph cut by the rectangle's right edge: draw its left half only.
                    self.raster.draw(
                        &mut pixels,
                        stride,
                        ((x - x0) * CELL_W, (y - y0) * CELL_H),
                        &row[x],
                        1,
                    );
                }
                x += span;
            }
        }
        self.pixels += pixels.len() as u64;
        let table = compact_colours(&mut pixels, before.is_some());
        Some(gif::Frame {
            left: (x0 * CELL_W) as u16,
            top: (y0 * CELL_H) as u16,
            width: stride as u16,
            height: (hc * CELL_H) as u16,
            buffer: Cow::Owned(pixels),
            transparent: before.map(|_| 0),
            palette: Some(table),
            dispose: gif::DisposalMethod::Keep,
            ..gif::Frame::default()
        })
    }

    fn write_pending(&mut self, until_cs: u32) -> Result<(), RenderError> {
        if let Some(mut p) = self.pending.take() {
            let delay = until_cs.saturating_sub(p.t_cs).max(MIN_DELAY_CS);
            p.frame.delay = u16::try_from(delay).unwrap_or(u16::MAX);
            self.encoder.write_frame(&p.frame).map_err(encoding)?;
        }
        Ok(())
    }
}

/// Renumbers the palette indices of `pixels` from 0 in order of first use ([`TRANSPARENT`] first when
/// `transparent`) and returns the matching local colour table (RGB triples).
fn compact_colours(pixels: &mut [u8], transparent: bool) -> Vec<u8> {
    const UNUSED: u16 = u16::MAX;
    let mut map = [UNUSED; 256];
    let mut table = Vec::new();
    if transparent {
        map[usize::from(TRANSPARENT)] = 0;
        table.extend_from_slice(&[0, 0, 0]);
    }
    for p in pixels.iter_mut() {
        let slot = &mut map[usize::from(*p)];
        if *slot == UNUSED {
            *slot = (table.len() / 3) as u16;
            let (r, g, b) = palette::rgb(*p);
            table.extend_from_slice(&[r, g, b]);
        }
        // At most 256 distinct values, numbered 0 to 255.
        *p = *slot as u8;
    }
    table
}

impl<W: Write> FrameSink for GifSink<W> {
    fn frame(&mut self, t_cs: u32, screen: &Screen) -> Result<(), RenderError> {
        let shown = self.shown.take();
        let Some(frame) = self.frame_of(screen, shown.as_ref()) else {
            self.shown = shown;
            return Ok(());
        };
        self.write_pending(t_cs)?;
        self.pending = Some(Pending { t_cs, frame });
        self.shown = Some(screen.clone());
        Ok(())
    }

    fn finish(&mut self, end_cs: u32) -> Result<(), RenderError> {
        self.write_pending(end_cs)
    }
}
