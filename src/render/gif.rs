//! Frames to an animated GIF: colours from one fixed palette (xterm's 256), the first frame whole, every
//! later frame only the rectangle that changed with its unchanged pixels transparent, and each frame's delay
//! the time until the next change.
//!
//! Each frame carries the few palette colours it uses as a local colour table, numbered from 0: LZW's
//! code size follows the highest index in the data, so a frame of 12 colours is coded with 5-bit instead
//! of 9-bit codes, which makes the file about a third smaller for the cost of a few bytes of table.
//!
//! Speed: LZW coding is most of the work (a busy dashboard changes from its header to its charts ten times
//! a second, so most frames are most of the screen). A frame's coding depends only on its own pixels, so
//! frames are coded (by the `gif` crate's own coder) on one worker thread per core while the next ones are
//! drawn, and written in order: the file is byte for byte what coding them one after another gives.
//! Drawing writes a glyph's row of eight pixels at once.
//!
//! Size: a pixel of a redrawn cell that shows what the frame before showed there is written transparent
//! too, not only the cells that did not change (a digit that changes keeps most of its background): the
//! rectangle is then long runs of one index, which LZW codes short. The sink keeps the picture as shown
//! (`canvas`) to know.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::error::RenderError;
use super::font::{CELL_H, CELL_W, Rasteriser};
use super::palette::{self, TRANSPARENT};
use super::screen::Screen;
use super::timeline::{FrameSink, MIN_DELAY_CS};

/// Writes frames as a looping GIF into `W`.
pub struct GifSink<W: Write> {
    encoder: gif::Encoder<W>,
    raster: Rasteriser,
    shown: Option<Screen>,
    /// The picture as the frames so far leave it, palette indices, the whole screen row after row.
    canvas: Vec<u8>,
    lzw: Lzw,
    /// The start times (cs) of the frames handed to `lzw` and not written yet, oldest first: a frame's
    /// delay is known once the next one's start is.
    waiting: VecDeque<u32>,
    /// Pixels encoded so far (the sum of the frames' rectangles), for the summary.
    pub pixels: u64,
}

/// LZW-codes frames on worker threads (`gif`'s [`gif::Frame::make_lzw_pre_encoded`]) and hands them back
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
                        frame.make_lzw_pre_encoded();
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
            canvas: Vec::new(),
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
    /// redraw, the others in it transparent, and so are the pixels of redrawn cells that show what the
    /// canvas shows already; its colours numbered from 0 in order of first use (`compact_colours`).
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
        // The cells to draw; the rest of the rectangle stays transparent.
        let mut pixels = vec![TRANSPARENT; stride * hc * CELL_H];
        for y in y0..=y1 {
            let row = now.row(y);
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
                    let at = (px, (y - y0) * CELL_H);
                    Rasteriser::put(&mut pixels, stride, at, &bits, row[x].fg, row[x].bg);
                }
                x += span;
            }
        }
        // What the frame before showed at a pixel need not be drawn again: transparent, it shows through.
        let width = cols * CELL_W;
        if self.canvas.len() != width * now.rows * CELL_H {
            self.canvas = vec![TRANSPARENT; width * now.rows * CELL_H];
        }
        let keep_same = before.is_some();
        for (ry, row) in pixels.chunks_exact_mut(stride).enumerate() {
            let at = (y0 * CELL_H + ry) * width + x0 * CELL_W;
            for (p, c) in row.iter_mut().zip(&mut self.canvas[at..at + stride]) {
                if *p == TRANSPARENT {
                    continue;
                }
                if keep_same && *p == *c {
                    *p = TRANSPARENT;
                } else {
                    *c = *p;
                }
            }
        }
        let table = compact_colours(&mut pixels, before.is_some());
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

    /// The whole screen pixel by pixel from Unifont's own bits, as RGB: what every frame, composited over
    /// the ones before, must show.
    fn whole(raster: &mut Rasteriser, s: &Screen) -> Vec<[u8; 3]> {
        let width = s.cols * CELL_W;
        let mut out = vec![[0u8; 3]; width * s.rows * CELL_H];
        for y in 0..s.rows {
            let row = s.row(y);
            let mut x = 0;
            while x < s.cols {
                let room = if raster.is_wide(row[x].ch) && x + 1 < s.cols {
                    2
                } else {
                    1
                };
                let bits = raster.bits(&row[x], room);
                for (dy, r) in bits.rows.iter().enumerate() {
                    for dx in 0..bits.width {
                        let c = if r & (0x8000 >> dx) != 0 {
                            row[x].fg
                        } else {
                            row[x].bg
                        };
                        let (r, g, b) = palette::rgb(c);
                        out[(y * CELL_H + dy) * width + x * CELL_W + dx] = [r, g, b];
                    }
                }
                x += bits.width / CELL_W;
            }
        }
        out
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

    fn seed() -> u64 {
        let seed: u64 = std::env::var("SQUALL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("seed {seed} (SQUALL_TEST_SEED={seed} replays it)");
        seed
    }

    /// The cell after a wide glyph holds a blank, as a terminal's screen does (`avt` gives the second half
    /// of a wide character no character of its own).
    fn as_a_terminal_has_it(raster: &mut Rasteriser, s: &mut Screen) {
        for y in 0..s.rows {
            let mut x = 0;
            while x < s.cols {
                let i = y * s.cols + x;
                if raster.is_wide(s.cells[i].ch) && x + 1 < s.cols {
                    s.cells[i + 1].ch = ' ';
                    x += 2;
                } else {
                    x += 1;
                }
            }
        }
    }

    /// Screens that change a few cells at a time (sometimes none, sometimes next to a wide glyph).
    fn screens(rng: &mut StdRng, cols: usize, rows: usize, n: usize) -> Vec<Screen> {
        let mut raster = Rasteriser::default();
        let mut first = random_screen(rng, cols, rows);
        as_a_terminal_has_it(&mut raster, &mut first);
        let mut out = vec![first];
        while out.len() < n {
            let mut s = out.last().expect("one").clone();
            let other = random_screen(rng, cols, rows);
            for _ in 0..rng.random_range(0..8) {
                let i = rng.random_range(0..s.cells.len());
                s.cells[i] = other.cells[i];
            }
            as_a_terminal_has_it(&mut raster, &mut s);
            out.push(s);
        }
        out
    }

    #[test]
    fn every_frame_composited_over_the_ones_before_shows_its_whole_screen() {
        let seed = seed();
        let mut rng = StdRng::seed_from_u64(seed);
        let (cols, rows) = (13, 5);
        let shots = screens(&mut rng, cols, rows, 200);
        let mut sink = GifSink::new(Vec::new(), cols, rows).unwrap();
        // The screens that make a frame (a repeat makes none), at 10 cs apart.
        let mut shown = Vec::new();
        for (i, s) in shots.iter().enumerate() {
            if shown.last() != Some(s) {
                shown.push(s.clone());
            }
            sink.frame(i as u32 * 10, s).unwrap();
        }
        sink.finish(shots.len() as u32 * 10).unwrap();
        let bytes = sink.into_inner().unwrap();

        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(&bytes[..]).unwrap();
        let width = usize::from(dec.width());
        let mut canvas = vec![[0u8; 3]; width * usize::from(dec.height())];
        let mut raster = Rasteriser::default();
        let mut k = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            let (l, t, w) = (
                usize::from(f.left),
                usize::from(f.top),
                usize::from(f.width),
            );
            for (i, p) in f.buffer.chunks_exact(4).enumerate() {
                if p[3] != 0 {
                    canvas[(t + i / w) * width + l + i % w] = [p[0], p[1], p[2]];
                }
            }
            assert!(
                canvas == whole(&mut raster, &shown[k]),
                "seed {seed}: frame {k} does not show its screen"
            );
            k += 1;
        }
        assert_eq!(k, shown.len(), "seed {seed}: one frame a change");
    }

    #[test]
    fn frames_coded_on_worker_threads_make_the_file_coding_them_in_turn_makes() {
        // The same frames through the sink (coded in parallel) and through `gif`'s own `write_frame`.
        let seed = seed();
        let mut rng = StdRng::seed_from_u64(seed);
        let (cols, rows) = (20, 6);
        let shots = screens(&mut rng, cols, rows, 60);
        let end = shots.len() as u32 * 7 + 100;
        let mut sink = GifSink::new(Vec::new(), cols, rows).unwrap();
        for (i, s) in shots.iter().enumerate() {
            sink.frame(i as u32 * 7, s).unwrap();
        }
        sink.finish(end).unwrap();
        let parallel = sink.into_inner().unwrap();

        // The frames as `frame_of` draws them, written one after another.
        let mut drawer = GifSink::new(Vec::new(), cols, rows).unwrap();
        let (w, h) = ((cols * CELL_W) as u16, (rows * CELL_H) as u16);
        let mut serial = gif::Encoder::new(Vec::new(), w, h, &palette::gif_table()).unwrap();
        serial.set_repeat(gif::Repeat::Infinite).unwrap();
        let mut frames: Vec<(u32, gif::Frame<'static>)> = Vec::new();
        let mut before: Option<&Screen> = None;
        for (i, s) in shots.iter().enumerate() {
            if let Some(f) = drawer.frame_of(s, before) {
                frames.push((i as u32 * 7, f));
                before = Some(s);
            }
        }
        for k in 0..frames.len() {
            let until = frames.get(k + 1).map_or(end, |(t, _)| *t);
            let (t, f) = &mut frames[k];
            f.delay = (until - *t).max(MIN_DELAY_CS) as u16;
            serial.write_frame(f).unwrap();
        }
        let serial = serial.into_inner().unwrap();
        assert!(parallel == serial, "seed {seed}: the files differ");
    }
}
