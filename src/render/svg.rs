//! Frames to an animated SVG that plays in a browser with CSS alone (no script).
//!
//! The first frame is the whole screen; every later frame is a group of patches: for each run of cells
//! that changed (runs a few cells apart are joined), an opaque background and the run's text, drawn over
//! everything before it. A frame's group appears at its time through a CSS animation (one `@keyframes` a
//! frame) and stays until the loop starts over, so a frame costs what changed, not a copy of the screen.
//! Text is a `<tspan>` per colour run of a changed line, placed at its column when blank or unchanged cells
//! come before it (so a fallback font cannot shift the columns past a gap) and continuing where the run
//! before it ends otherwise; a frame's rows are one `<text>`, each row's first tspan carrying its baseline. Backgrounds are one `<path>` per colour, a stroke one cell high
//! per run (`M3 12.5h4` in cell units).
//! Colours are classes (`.c196`), one per palette index used.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::error::RenderError;
use super::palette::{self, DEFAULT_BG, DEFAULT_FG};
use super::screen::{BOLD, Cell, ITALIC, Screen, UNDERLINE};
use super::timeline::FrameSink;

/// Width of a cell in SVG units (px).
pub const CELL_W: usize = 9;
/// Height of a cell in SVG units (px).
pub const CELL_H: usize = 18;
/// Font size that makes a common monospace font's advance [`CELL_W`] (0.6 em).
const FONT_PX: usize = 15;
/// Changed runs of a row closer than this many unchanged cells are drawn as one patch (fewer elements).
const JOIN_GAP: usize = 4;

/// One row's tspans as they are drawn, and the column where the last one's glyphs end.
#[derive(Default)]
struct RowText {
    text: String,
    pen: Option<usize>,
}

/// Collects frames and writes the SVG document at the end.
pub struct SvgSink {
    cols: usize,
    rows: usize,
    /// Each frame's time and its drawing (the first is the whole screen).
    frames: Vec<(u32, String)>,
    colours: BTreeSet<u8>,
    /// Background colours used (drawn as strokes: classes `.s196`).
    backgrounds: BTreeSet<u8>,
    shown: Option<Screen>,
    doc: Option<String>,
}

impl SvgSink {
    /// An SVG of a `cols` × `rows` screen.
    pub fn new(cols: usize, rows: usize) -> Self {
        SvgSink {
            cols,
            rows,
            frames: Vec::new(),
            colours: BTreeSet::from([DEFAULT_BG, DEFAULT_FG]),
            backgrounds: BTreeSet::new(),
            shown: None,
            doc: None,
        }
    }

    /// The document, once [`FrameSink::finish`] has run.
    pub fn document(&self) -> Option<&str> {
        self.doc.as_deref()
    }

    /// Draws the cells `a..b` of row `y` of `screen` into `line` (tspans) and `bg` (path segments by
    /// colour). `cover` draws the default background too (a patch must hide what was there).
    fn draw_run(
        &mut self,
        screen: &Screen,
        y: usize,
        (a, b): (usize, usize),
        cover: bool,
        line: &mut RowText,
        bg: &mut BTreeMap<u8, String>,
    ) {
        let RowText { text, pen } = line;
        let row = &screen.row(y)[a..b];
        let mut x = 0;
        while x < row.len() {
            let colour = row[x].bg;
            let run = row[x..].iter().take_while(|c| c.bg == colour).count();
            if cover || colour != DEFAULT_BG {
                self.backgrounds.insert(colour);
                // A stroke one cell high along the row's middle: `M3 12.5h4` covers cells 3..7 of row 12
                // (in cell units; the group scales them), a third of a filled rectangle's path.
                let _ = write!(bg.entry(colour).or_default(), "M{} {y}.5h{run}", a + x);
            }
            x += run;
        }
        let mut x = 0;
        while x < row.len() {
            let (fg, attrs) = (row[x].fg, row[x].attrs);
            let run = row[x..]
                .iter()
                .take_while(|c| c.fg == fg && c.attrs == attrs)
                .count();
            let cells = &row[x..x + run];
            let lead = cells.iter().take_while(|c| c.ch == ' ').count();
            let trail = cells.iter().rev().take_while(|c| c.ch == ' ').count();
            if lead < cells.len() {
                self.colours.insert(fg);
                let col = a + x + lead;
                // Where the previous run's glyphs end, the text position already is: no `x` (most of a
                // busy frame's tspans follow one another, and the attribute was a third of their bytes).
                // A run after skipped cells is placed at its column, so a fallback font's advance cannot
                // shift the columns past the next gap.
                if *pen == Some(col) {
                    text.push_str("<tspan");
                } else {
                    let _ = write!(text, r#"<tspan x="{}""#, col * CELL_W);
                }
                *pen = Some(a + x + run - trail);
                // The default colour is the text's own (no class).
                let mut classes: Vec<String> = Vec::new();
                if fg != DEFAULT_FG {
                    classes.push(format!("c{fg}"));
                }
                for (bit, name) in [(BOLD, "B"), (ITALIC, "I"), (UNDERLINE, "U")] {
                    if attrs & bit != 0 {
                        classes.push(name.to_owned());
                    }
                }
                if !classes.is_empty() {
                    let _ = write!(text, r#" class="{}""#, classes.join(" "));
                }
                text.push('>');
                for c in &cells[lead..cells.len() - trail] {
                    escape(c.ch, text);
                }
                text.push_str("</tspan>");
            }
            x += run;
        }
    }

    /// The drawing of `screen` over `before`: the changed runs of each row, or everything.
    fn patch(&mut self, screen: &Screen, before: Option<&Screen>) -> String {
        let mut out = String::new();
        let mut bg: BTreeMap<u8, String> = BTreeMap::new();
        for y in 0..self.rows.min(screen.rows) {
            let row = screen.row(y);
            let runs: Vec<(usize, usize)> = match before {
                None => vec![(0, self.cols)],
                Some(b) => changed_runs(row, b.row(y)),
            };
            if runs.is_empty() {
                continue;
            }
            let mut line = RowText::default();
            for run in runs {
                self.draw_run(screen, y, run, before.is_some(), &mut line, &mut bg);
            }
            let text = line.text;
            // One `<text>` a frame: the row's first tspan (always placed at its column) carries the row's
            // baseline, and the tspans after it stay on it.
            if let Some(rest) = text.strip_prefix("<tspan") {
                let _ = write!(
                    out,
                    r#"<tspan y="{}"{rest}"#,
                    y * CELL_H + CELL_H * 3 / 4 + 1
                );
            }
        }
        if !out.is_empty() {
            out = format!("<text>{out}</text>");
        }
        let mut paths = String::new();
        for (colour, d) in bg {
            let _ = write!(paths, r#"<path class="s{colour}" d="{d}"/>"#);
        }
        if paths.is_empty() {
            out
        } else {
            // Backgrounds in cell units, under the text.
            format!(r#"<g transform="scale({CELL_W} {CELL_H})">{paths}</g>{out}"#)
        }
    }

    fn write(&self, end_cs: u32) -> String {
        let (w, h) = (self.cols * CELL_W, self.rows * CELL_H);
        let end = end_cs.max(1);
        let mut out = String::with_capacity(self.frames.iter().map(|f| f.1.len() + 80).sum());
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" xml:space="preserve">"#
        );
        let _ = write!(
            out,
            "<style>text{{font-family:'DejaVu Sans Mono',Menlo,Consolas,'Liberation Mono',monospace;font-size:{FONT_PX}px;white-space:pre;fill:{}}}.B{{font-weight:bold}}.I{{font-style:italic}}.U{{text-decoration:underline}}g.a{{animation-duration:{}s;animation-iteration-count:infinite;animation-timing-function:step-end}}",
            palette::hex(DEFAULT_FG),
            f64::from(end) / 100.0
        );
        for c in &self.colours {
            let _ = write!(out, ".c{c}{{fill:{}}}", palette::hex(*c));
        }
        out.push_str("path{fill:none;stroke-width:1}");
        for c in &self.backgrounds {
            let _ = write!(out, ".s{c}{{stroke:{}}}", palette::hex(*c));
        }
        for (k, (t, _)) in self.frames.iter().enumerate().skip(1) {
            let pct = f64::from(*t) / f64::from(end) * 100.0;
            let _ = write!(
                out,
                "@keyframes k{k}{{0%{{opacity:0}}{}%{{opacity:1}}}}",
                trim(pct)
            );
        }
        out.push_str("</style>");
        let _ = write!(
            out,
            r#"<rect width="{w}" height="{h}" class="c{DEFAULT_BG}"/>"#
        );
        for (k, (_, drawing)) in self.frames.iter().enumerate() {
            if k == 0 {
                let _ = write!(out, "<g>{drawing}</g>");
            } else {
                let _ = write!(
                    out,
                    r#"<g class="a" style="animation-name:k{k}">{drawing}</g>"#
                );
            }
        }
        out.push_str("</svg>\n");
        out
    }
}

/// The runs `(start, end)` of cells that differ between `now` and `was`, joined across gaps shorter than
/// [`JOIN_GAP`].
fn changed_runs(now: &[Cell], was: &[Cell]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut x = 0;
    while x < now.len() {
        if now[x] == was[x] {
            x += 1;
            continue;
        }
        let start = x;
        while x < now.len() && now[x] != was[x] {
            x += 1;
        }
        match runs.last_mut() {
            Some(last) if start - last.1 < JOIN_GAP => last.1 = x,
            _ => runs.push((start, x)),
        }
    }
    runs
}

/// A percentage with at most three decimals and no trailing zeros.
fn trim(pct: f64) -> String {
    let s = format!("{pct:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(ch: char, out: &mut String) {
    match ch {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        // Not allowed in XML 1.0.
        c if (c as u32) < 0x20 => out.push(' '),
        c => out.push(c),
    }
}

impl FrameSink for SvgSink {
    fn frame(&mut self, t_cs: u32, screen: &Screen) -> Result<(), RenderError> {
        let shown = self.shown.take();
        let drawing = self.patch(screen, shown.as_ref());
        self.frames.push((t_cs, drawing));
        self.shown = Some(screen.clone());
        Ok(())
    }

    fn finish(&mut self, end_cs: u32) -> Result<(), RenderError> {
        self.doc = Some(self.write(end_cs));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str) -> Vec<Cell> {
        text.chars().map(|ch| Cell { ch, ..Cell::BLANK }).collect()
    }

    #[test]
    fn changed_runs_join_across_short_gaps_only() {
        let was = row("aaaaaaaaaaaaaaaaaaaa");
        let now = row("abbaaabaaaaaaaabaaaa");
        assert_eq!(changed_runs(&now, &was), vec![(1, 7), (15, 16)]);
        assert!(changed_runs(&was, &was).is_empty());
    }

    #[test]
    fn a_tspan_that_follows_the_previous_runs_glyphs_has_no_x_and_one_after_a_gap_has() {
        let mut screen = Screen::new(12, 1);
        for (x, ch) in "ab cd".chars().enumerate() {
            screen.cells[x] = Cell {
                ch,
                fg: if x == 1 { 196 } else { DEFAULT_FG },
                ..Cell::BLANK
            };
        }
        let mut sink = SvgSink::new(12, 1);
        let drawing = sink.patch(&screen, Some(&Screen::new(12, 1)));
        // `a` at 0 on row 0's baseline, `b` (red) right after it, then a blank cell, so `cd` is placed at
        // column 3; the changed cells' background (joined across the blank) is one stroke.
        assert!(
            drawing.contains(
                r#"<text><tspan y="14" x="0">a</tspan><tspan class="c196">b</tspan><tspan x="27">cd</tspan></text>"#
            ),
            "{drawing}"
        );
        assert!(drawing.contains(r#"d="M0 0.5h5""#), "{drawing}");
    }
}
