//! Frames to an animated GIF: colours from one fixed palette (xterm's 256), the first frame whole, every
//! later frame only the rectangle that changed with its unchanged pixels transparent, and each frame's delay
//! the time until the next change.
//!
//! Each frame carries the few palette colours it uses as a local colour table, numbered from 0: LZW's
//! code size follows the highest index in the data, so a frame of 12 colours is coded with 5-bit instead
//! of 9-bit codes, which makes the file about a third smaller for the cost of a few bytes of table.
//!
//! Speed: LZW coding is most of the work (a busy dashboard changes from its header to its charts ten times
//! a second, so most frames are most of the screen). It is done by [`lzw`], which writes what the `gif`
//! crate's coder writes, faster for a small alphabet; and since a frame's coding depends only on its own
//! pixels, frames are coded on one worker thread per core while the next ones are drawn, and written in
//! order: the file is byte for byte what coding them one after another with `gif` gives. Drawing writes a
//! glyph's row of eight pixels at once and numbers the frame's colours from its cells, not its pixels.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::error::RenderError;
use super::font::{CELL_H, CELL_W, CellBits, Rasteriser};
use super::lzw;
use super::palette::{self, TRANSPARENT};
use super::screen::Screen;
use super::timeline::{FrameSink, MIN_DELAY_CS};

/// Writes frames as a looping GIF into `W`.
pub struct GifSink<W: Write> {
    encoder: gif::Encoder<W>,
    raster: Rasteriser,
    shown: Option<Screen>,
    lzw: Lzw,
    /// The start times (cs) of the frames handed to `lzw` and not written yet, oldest first: a frame's
    /// delay is known once the next one's start is.
    waiting: VecDeque<u32>,
    /// Pixels encoded so far (the sum of the frames' rectangles), for the summary.
    pub pixels: u64,
}

/// LZW-codes frames on worker threads ([`lzw::encode`]) and hands them back
/// in the order they came: frame k goes to worker k mod n, and each worker answers in its own order.
struct Lzw {
    workers: Vec<Worker>,
    sent: usize,
    received: usize,
}

struct Worker {
    to: Option<mpsc::Sender<gif::Frame<'static>>>,
    from: mpsc::Receiver<gif::Frame<'static>>,
    thread: Option<JoinHandle<()>>,
}

impl Lzw {
    /// One worker a core (at least one, at most eight).
    fn new() -> Result<Self, RenderError> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (to, inbox) = mpsc::channel::<gif::Frame<'static>>();
            let (outbox, from) = mpsc::channel();
            let thread = std::thread::Builder::new()
                .name(format!("gif-lzw-{i}"))
                .spawn(move || {
                    while let Ok(mut frame) = inbox.recv() {
                        frame.buffer = Cow::Owned(lzw::encode(&frame.buffer));
                        if outbox.send(frame).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(Worker {
                to: Some(to),
                from,
                thread: Some(thread),
            });
        }
        Ok(Lzw {
            workers,
            sent: 0,
            received: 0,
        })
    }

    /// Frames given and not taken back yet.
    fn in_flight(&self) -> usize {
        self.sent - self.received
    }

    fn send(&mut self, frame: gif::Frame<'static>) -> Result<(), RenderError> {
        let n = self.workers.len();
        let worker = &self.workers[self.sent % n];
        worker
            .to
            .as_ref()
            .and_then(|to| to.send(frame).ok())
            .ok_or_else(lost_worker)?;
        self.sent += 1;
        Ok(())
    }

    /// The oldest frame given, coded.
    fn recv(&mut self) -> Result<gif::Frame<'static>, RenderError> {
        let n = self.workers.len();
        let frame = self.workers[self.received % n]
            .from
            .recv()
            .map_err(|_| lost_worker())?;
        self.received += 1;
        Ok(frame)
    }
}

fn lost_worker() -> RenderError {
    RenderError::Write(std::io::Error::other("a GIF coding thread ended early"))
}

impl Drop for Lzw {
    fn drop(&mut self) {
        // Closing the inboxes ends the workers once they have coded what they hold.
        for w in &mut self.workers {
            w.to = None;
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
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
            lzw: Lzw::new()?,
            waiting: VecDeque::new(),
            pixels: 0,
        })
    }

    /// Finishes the file and hands back the writer.
    pub fn into_inner(self) -> Result<W, RenderError> {
        self.encoder.into_inner().map_err(encoding)
    }

    /// The frame that turns `before` (or nothing) into `now`: the bounding rectangle of the cells to
    /// redraw, the others in it transparent, its colours numbered from 0 in the order their first pixel
    /// comes (see `compact_colours`: the same table that numbering the finished pixels would give, found
    /// from the cells instead of from every pixel).
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
        // Each row of the rectangle as runs, left to right: a cell drawn (its pixels), or cells left
        // transparent.
        let mut runs: Vec<Vec<Run>> = Vec::with_capacity(hc);
        for y in y0..=y1 {
            let row = now.row(y);
            let mut line = Vec::new();
            let mut x = 0;
            while x < cols {
                // A wide glyph covers the next cell too; walk the row from its start so that is known.
                let wide = self.raster.is_wide(row[x].ch) && x + 1 < cols;
                let span = if wide { 2 } else { 1 };
                let draw = dirty[y * cols + x] || (wide && dirty[y * cols + x + 1]);
                let px = x.saturating_sub(x0) * CELL_W;
                if draw && x >= x0 && x <= x1 {
                    // A wide glyph cut by the rectangle's right edge: its left half only.
                    let room = if x + span - 1 <= x1 { span } else { 1 };
                    let bits = self.raster.bits(&row[x], room);
                    line.push(Run::Cell(px, bits, row[x].fg, row[x].bg));
                } else if x + span > x0 && x <= x1 {
                    let end = ((x + span).min(x1 + 1) - x0) * CELL_W;
                    match line.last_mut() {
                        Some(Run::Clear(_, e)) if *e == px => *e = end,
                        _ => line.push(Run::Clear(px, end)),
                    }
                }
                x += span;
            }
            runs.push(line);
        }
        let (table, map) = first_use_colours(&runs, before.is_some());
        let clear = map[usize::from(TRANSPARENT)];
        let mut pixels = vec![clear; stride * hc * CELL_H];
        for (ry, line) in runs.iter().enumerate() {
            for run in line {
                if let Run::Cell(px, bits, fg, bg) = run {
                    let (fg, bg) = (map[usize::from(*fg)], map[usize::from(*bg)]);
                    Rasteriser::put(&mut pixels, stride, (*px, ry * CELL_H), bits, fg, bg);
                }
            }
        }
        self.pixels += pixels.len() as u64;
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

    /// Writes the oldest frame handed to the coders, shown until `until_cs`.
    fn write_oldest(&mut self, until_cs: u32) -> Result<(), RenderError> {
        let Some(t_cs) = self.waiting.pop_front() else {
            return Ok(());
        };
        let mut frame = self.lzw.recv()?;
        let delay = until_cs.saturating_sub(t_cs).max(MIN_DELAY_CS);
        frame.delay = u16::try_from(delay).unwrap_or(u16::MAX);
        self.encoder
            .write_lzw_pre_encoded_frame(&frame)
            .map_err(encoding)
    }
}

/// A stretch of one row of a frame's rectangle: a cell to draw at pixel `x` (its bits, foreground and
/// background palette indices), or the pixels from `x` to `end` left transparent.
enum Run {
    Cell(usize, CellBits, u8, u8),
    Clear(usize, usize),
}

/// The local colour table of a frame whose rows are `runs`, and the palette index → table index map: the
/// colours numbered from 0 in the order their first pixel comes, reading the frame's pixels row by row
/// (`TRANSPARENT` first when `transparent`), as `compact_colours` numbers finished pixels. The pixel
/// rows are walked a cell at a time: a cell's row of pixels holds its first pixel's colour and, when its
/// bits are mixed, the other one.
fn first_use_colours(runs: &[Vec<Run>], transparent: bool) -> (Vec<u8>, [u8; 256]) {
    let mut map = [0u8; 256];
    let mut seen = [false; 256];
    let mut table = Vec::new();
    let mut see = |c: u8, table: &mut Vec<u8>| {
        if !seen[usize::from(c)] {
            seen[usize::from(c)] = true;
            map[usize::from(c)] = (table.len() / 3) as u8;
            let (r, g, b) = palette::rgb(c);
            table.extend_from_slice(&[r, g, b]);
        }
    };
    if transparent {
        see(TRANSPARENT, &mut table);
    }
    for line in runs {
        for dy in 0..CELL_H {
            for run in line {
                match run {
                    Run::Clear(..) => see(TRANSPARENT, &mut table),
                    Run::Cell(_, bits, fg, bg) => {
                        let row = bits.rows[dy];
                        let (first, other) = if row & 0x8000 != 0 {
                            (*fg, *bg)
                        } else {
                            (*bg, *fg)
                        };
                        see(first, &mut table);
                        if row != 0 && row != bits.full() {
                            see(other, &mut table);
                        }
                    }
                }
            }
        }
    }
    (table, map)
}

/// Renumbers the palette indices of `pixels` from 0 in order of first use ([`TRANSPARENT`] first when
/// `transparent`) and returns the matching local colour table (RGB triples). The definition
/// [`first_use_colours`] keeps to, kept for the tests that check it does.
#[cfg(test)]
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
        self.lzw.send(frame)?;
        self.waiting.push_back(t_cs);
        // Two frames a worker keep them all busy; the older ones' delays are known, so write them.
        while self.lzw.in_flight() > 2 * self.lzw.workers.len() {
            let next = self.waiting[1];
            self.write_oldest(next)?;
        }
        self.shown = Some(screen.clone());
        Ok(())
    }

    fn finish(&mut self, end_cs: u32) -> Result<(), RenderError> {
        while !self.waiting.is_empty() {
            let until = self.waiting.get(1).copied().unwrap_or(end_cs);
            self.write_oldest(until)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::render::screen::{BOLD, Cell, UNDERLINE};

    /// A frame's rectangle (left, top, width, height), pixels and colour table.
    type Drawn = (u16, u16, u16, u16, Vec<u8>, Vec<u8>);

    /// The frame as drawn before frames were drawn from runs: every pixel of the rectangle drawn in palette
    /// indices (unchanged ones [`TRANSPARENT`]), then renumbered by `compact_colours`.
    fn reference(raster: &mut Rasteriser, now: &Screen, before: Option<&Screen>) -> Option<Drawn> {
        let cols = now.cols;
        let mut dirty = vec![before.is_none(); now.cells.len()];
        if let Some(b) = before {
            for (i, (n, o)) in now.cells.iter().zip(&b.cells).enumerate() {
                if n != o {
                    dirty[i] = true;
                    if i % cols + 1 < cols && (raster.is_wide(n.ch) || raster.is_wide(o.ch)) {
                        dirty[i + 1] = true;
                    }
                }
            }
        }
        let cells: Vec<usize> = (0..dirty.len()).filter(|&i| dirty[i]).collect();
        let x0 = cells.iter().map(|i| i % cols).min()?;
        let x1 = cells.iter().map(|i| i % cols).max()?;
        let y0 = cells.iter().map(|i| i / cols).min()?;
        let y1 = cells.iter().map(|i| i / cols).max()?;
        let stride = (x1 - x0 + 1) * CELL_W;
        let mut pixels = vec![TRANSPARENT; stride * (y1 - y0 + 1) * CELL_H];
        for y in y0..=y1 {
            let row = now.row(y);
            let mut x = 0;
            while x < cols {
                let wide = raster.is_wide(row[x].ch) && x + 1 < cols;
                let span = if wide { 2 } else { 1 };
                let draw = dirty[y * cols + x] || (wide && dirty[y * cols + x + 1]);
                if draw && x >= x0 && x <= x1 {
                    let room = if x + span - 1 <= x1 { span } else { 1 };
                    let at = ((x - x0) * CELL_W, (y - y0) * CELL_H);
                    // Pixel by pixel, from Unifont's own bits: what the table-driven drawing must equal.
                    let bits = raster.bits(&row[x], room);
                    for (dy, r) in bits.rows.iter().enumerate() {
                        for dx in 0..bits.width {
                            pixels[(at.1 + dy) * stride + at.0 + dx] = if r & (0x8000 >> dx) != 0 {
                                row[x].fg
                            } else {
                                row[x].bg
                            };
                        }
                    }
                }
                x += span;
            }
        }
        let table = compact_colours(&mut pixels, before.is_some());
        Some((
            (x0 * CELL_W) as u16,
            (y0 * CELL_H) as u16,
            stride as u16,
            ((y1 - y0 + 1) * CELL_H) as u16,
            pixels,
            table,
        ))
    }

    /// A screen of text in a few colours with some bold, underlined and wide characters.
    fn random_screen(rng: &mut StdRng, cols: usize, rows: usize) -> Screen {
        let chars = ['a', 'Z', ' ', '─', '│', '●', '⣿', '中', '✓', '█'];
        let mut s = Screen::new(cols, rows);
        for c in &mut s.cells {
            *c = Cell {
                ch: chars[rng.random_range(0..chars.len())],
                fg: [1, 7, 9, 15, 200][rng.random_range(0..5)],
                bg: [0, 0, 0, 4, 236][rng.random_range(0..5)],
                attrs: [0, 0, BOLD, UNDERLINE, BOLD | UNDERLINE][rng.random_range(0..5)],
            };
        }
        s
    }

    #[test]
    fn frames_drawn_from_runs_equal_frames_drawn_pixel_by_pixel() {
        let seed: u64 = std::env::var("SQUALL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("seed {seed} (SQUALL_TEST_SEED={seed} replays it)");
        let mut rng = StdRng::seed_from_u64(seed);
        let (cols, rows) = (13, 5);
        let mut sink = GifSink::new(Vec::new(), cols, rows).unwrap();
        let mut raster = Rasteriser::default();
        let mut before: Option<Screen> = None;
        let mut now = random_screen(&mut rng, cols, rows);
        for step in 0..300 {
            let got = sink.frame_of(&now, before.as_ref()).map(|f| {
                (
                    f.left,
                    f.top,
                    f.width,
                    f.height,
                    f.buffer.into_owned(),
                    f.palette.unwrap_or_default(),
                )
            });
            assert_eq!(
                got,
                reference(&mut raster, &now, before.as_ref()),
                "seed {seed}, step {step}"
            );
            // The next screen changes a few cells (sometimes none, sometimes next to a wide glyph).
            let next = {
                let mut s = now.clone();
                let other = random_screen(&mut rng, cols, rows);
                for _ in 0..rng.random_range(0..6) {
                    let i = rng.random_range(0..s.cells.len());
                    s.cells[i] = other.cells[i];
                }
                s
            };
            before = Some(std::mem::replace(&mut now, next));
        }
    }

    #[test]
    fn frames_coded_on_worker_threads_make_the_file_coding_them_in_turn_makes() {
        // The same frames through the sink (coded in parallel) and through `gif`'s own `write_frame`.
        let seed: u64 = std::env::var("SQUALL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("seed {seed} (SQUALL_TEST_SEED={seed} replays it)");
        let mut rng = StdRng::seed_from_u64(seed);
        let (cols, rows) = (20, 6);
        let screens: Vec<Screen> = (0..40)
            .map(|_| random_screen(&mut rng, cols, rows))
            .collect();
        let mut sink = GifSink::new(Vec::new(), cols, rows).unwrap();
        for (i, s) in screens.iter().enumerate() {
            sink.frame(i as u32 * 7, s).unwrap();
        }
        sink.finish(40 * 7 + 100).unwrap();
        let parallel = sink.into_inner().unwrap();

        let (w, h) = ((cols * CELL_W) as u16, (rows * CELL_H) as u16);
        let mut serial = gif::Encoder::new(Vec::new(), w, h, &palette::gif_table()).unwrap();
        serial.set_repeat(gif::Repeat::Infinite).unwrap();
        let mut raster = Rasteriser::default();
        let mut before: Option<&Screen> = None;
        for (i, s) in screens.iter().enumerate() {
            let (left, top, width, height, buffer, table) =
                reference(&mut raster, s, before).expect("random screens differ");
            let until = if i + 1 < screens.len() {
                (i as u32 + 1) * 7
            } else {
                40 * 7 + 100
            };
            let frame = gif::Frame {
                left,
                top,
                width,
                height,
                buffer: Cow::Owned(buffer),
                transparent: before.map(|_| 0),
                palette: Some(table),
                dispose: gif::DisposalMethod::Keep,
                delay: (until - i as u32 * 7).max(MIN_DELAY_CS) as u16,
                ..gif::Frame::default()
            };
            serial.write_frame(&frame).unwrap();
            before = Some(s);
        }
        let serial = serial.into_inner().unwrap();
        assert!(parallel == serial, "seed {seed}: the files differ");
    }
}
