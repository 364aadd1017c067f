//! Frames to an animated SVG that plays in a browser with CSS alone (no script).
//!
//! The first frame is the whole screen; every later frame is a group of patches: for each run of cells
//! that changed (runs a few cells apart are joined), an opaque background and the run's text, drawn over
//! everything before it. A frame's group appears at its time through a CSS animation (one `@keyframes` a
//! frame) and stays until the loop starts over, so a frame costs what changed, not a copy of the screen.
//! Text is a `<tspan>` per colour run of a changed line, placed at its column when blank or unchanged cells
//! come before it (so a fallback font cannot shift the columns past a gap) and continuing where the run
//! before it ends otherwise; a run in the text's own colour that continues needs no tspan at all (bare
//! characters). A frame's rows are one `<text>`, each row's first tspan carrying its baseline. Backgrounds
//! are one `<path>` per colour, a stroke one cell high per run, each after the first moved relative to the
//! end of the one before (`Strokes`).
//! Text styles (colour and attributes) are classes with short names given on first use (`.b`), one per style
//! used; a short gap after a run is spaces rather than an `x`.

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
/// A run at most this many cells after the previous run's glyphs is reached with spaces when they are fewer
/// bytes than its `x` (` x="1431"` is nine).
const MAX_PAD: usize = 8;

/// One row's tspans as they are drawn, and the column where the last one's glyphs end.
#[derive(Default)]
struct RowText {
    text: String,
    pen: Option<usize>,
}

/// One background colour's path in a frame: strokes one cell high along the rows' middles, in cell units
/// (the group scales them). The first is placed absolutely (`M3 12.5h4` covers cells 3..7 of row 12), each
/// later one relative to where the one before ended (`m5 0h2`, `m-40 1h6`): shorter than absolute moves,
/// and a third of a filled rectangle's path.
#[derive(Default)]
struct Strokes {
    d: String,
    /// Where the last stroke ended: (column, row).
    end: Option<(usize, usize)>,
}

impl Strokes {
    /// Adds a stroke over cells `x..x + len` of row `y`.
    fn stroke(&mut self, x: usize, y: usize, len: usize) {
        match self.end {
            None => {
                let _ = write!(self.d, "M{x} {y}.5h{len}");
            }
            Some((ex, ey)) => {
                let (dx, dy) = (x as i64 - ex as i64, y as i64 - ey as i64);
                let _ = write!(self.d, "m{dx} {dy}h{len}");
            }
        }
        self.end = Some((x + len, y));
    }
}

/// Collects frames and writes the SVG document at the end.
pub struct SvgSink {
    cols: usize,
    rows: usize,
    /// Each frame's time and its drawing (the first is the whole screen).
    frames: Vec<(u32, String)>,
    /// Text styles used (colour and attributes) and their classes' short names.
    styles: BTreeMap<(u8, u8), String>,
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
            styles: BTreeMap::new(),
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
        bg: &mut BTreeMap<u8, Strokes>,
    ) {
        let RowText { text, pen } = line;
        let row = &screen.row(y)[a..b];
        let mut x = 0;
        while x < row.len() {
            let colour = row[x].bg;
            let run = row[x..].iter().take_while(|c| c.bg == colour).count();
            if cover || colour != DEFAULT_BG {
                self.backgrounds.insert(colour);
                bg.entry(colour).or_default().stroke(a + x, y, run);
            }
            x += run;
        }
        // A text run is the glyphs of one style and the blank cells between them (a blank draws nothing in
        // any colour, so it never splits a run), without blanks at either end.
        let blank = |c: &Cell| c.ch == ' ' && c.attrs & UNDERLINE == 0;
        let mut x = 0;
        while x < row.len() {
            if blank(&row[x]) {
                x += 1;
                continue;
            }
            let (fg, attrs) = (row[x].fg, row[x].attrs);
            let mut end = x + 1;
            for (k, c) in row.iter().enumerate().skip(x + 1) {
                if c.fg == fg && c.attrs == attrs {
                    end = k + 1;
                } else if !blank(c) {
                    break;
                }
            }
            let cells = &row[x..end];
            let col = a + x;
            // Where the previous run's glyphs end, the text position already is: no `x`. A short gap after
            // them is spaces (drawn as nothing), when fewer bytes than the `x`; the row's first run has no
            // pen and is always placed, so is a run after a long gap, so a fallback font's advance cannot
            // shift the columns far.
            let pad = pen
                .and_then(|p| col.checked_sub(p))
                .filter(|&g| g <= MAX_PAD && g < format!(r#" x="{}""#, col * CELL_W).len());
            if let Some(gap) = pad {
                text.extend(std::iter::repeat_n(' ', gap));
            }
            *pen = Some(end + a);
            let style = (fg != DEFAULT_FG || attrs & (BOLD | ITALIC | UNDERLINE) != 0)
                .then(|| self.style(fg, attrs));
            if pad.is_some() && style.is_none() {
                // In the text's own colour where the text position already is: bare characters, no tspan
                // (the row's first run always has a tspan, which carries the row's baseline).
                for c in cells {
                    escape(c.ch, text);
                }
                x = end;
                continue;
            }
            if pad.is_some() {
                text.push_str("<tspan");
            } else {
                let _ = write!(text, r#"<tspan x="{}""#, col * CELL_W);
            }
            // The default colour is the text's own (no class).
            if let Some(name) = style {
                let _ = write!(text, r#" class="{name}""#);
            }
            text.push('>');
            for c in cells {
                escape(c.ch, text);
            }
            text.push_str("</tspan>");
            x = end;
        }
    }

    /// The class of text in colour `fg` with `attrs`: a short name given on first use (one letter, then two),
    /// so a tspan's class costs two or three bytes rather than `c196 B`.
    fn style(&mut self, fg: u8, attrs: u8) -> String {
        let attrs = attrs & (BOLD | ITALIC | UNDERLINE);
        let n = self.styles.len();
        self.styles
            .entry((fg, attrs))
            .or_insert_with(|| short_name(n))
            .clone()
    }

    /// The drawing of `screen` over `before`: the changed runs of each row, or everything.
    fn patch(&mut self, screen: &Screen, before: Option<&Screen>) -> String {
        let mut out = String::new();
        let mut bg: BTreeMap<u8, Strokes> = BTreeMap::new();
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
            let _ = write!(paths, r#"<path class="s{colour}" d="{}"/>"#, d.d);
        }
        if paths.is_empty() {
            out
        } else {
            // Backgrounds in cell units (the style scales every path), under the text.
            format!("{paths}{out}")
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
            "<style>text{{font-family:'DejaVu Sans Mono',Menlo,Consolas,'Liberation Mono',monospace;font-size:{FONT_PX}px;white-space:pre;fill:{}}}g[style]{{animation-duration:{}s;animation-iteration-count:infinite;animation-timing-function:step-end}}",
            palette::hex(DEFAULT_FG),
            f64::from(end) / 100.0
        );
        for ((fg, attrs), name) in &self.styles {
            let _ = write!(out, ".{name}{{fill:{}", palette::hex(*fg));
            if attrs & BOLD != 0 {
                out.push_str(";font-weight:bold");
            }
            if attrs & ITALIC != 0 {
                out.push_str(";font-style:italic");
            }
            if attrs & UNDERLINE != 0 {
                out.push_str(";text-decoration:underline");
            }
            out.push('}');
        }
        // A CSS transform, not a `<g transform>` a frame: the group cost 31 bytes in each of ~1,500 frames.
        let _ = write!(
            out,
            "path{{fill:none;stroke-width:1;transform:scale({CELL_W},{CELL_H})}}"
        );
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
            r#"<rect width="{w}" height="{h}" fill="{}"/>"#,
            palette::hex(DEFAULT_BG)
        );
        for (k, (_, drawing)) in self.frames.iter().enumerate() {
            if k == 0 {
                let _ = write!(out, "<g>{drawing}</g>");
            } else {
                let _ = write!(out, r#"<g style="animation-name:k{k}">{drawing}</g>"#);
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

/// The `n`th text class's name: `b`…`z`, `A`…`Z` (not `a`, the frames' class), then two letters. Path
/// classes are `s` and digits, so none collides.
fn short_name(n: usize) -> String {
    const FIRST: &[u8] = b"bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const NEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut name = String::new();
    name.push(FIRST[n % FIRST.len()] as char);
    let mut rest = n / FIRST.len();
    while rest > 0 {
        rest -= 1;
        name.push(NEXT[rest % NEXT.len()] as char);
        rest /= NEXT.len();
    }
    name
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
        let mut screen = Screen::new(20, 1);
        for (x, ch) in "ab c        de".chars().enumerate() {
            screen.cells[x] = Cell {
                ch,
                fg: if x == 1 { 196 } else { DEFAULT_FG },
                ..Cell::BLANK
            };
        }
        let mut sink = SvgSink::new(20, 1);
        let drawing = sink.patch(&screen, Some(&Screen::new(20, 1)));
        // `a` at 0 on row 0's baseline, `b` (red, the first style: class `b`) right after it, `c` one blank
        // cell on (a space, cheaper than an `x`), and `de` eight cells further placed at its column 12.
        assert!(
            drawing.contains(
                r#"<text><tspan y="14" x="0">a</tspan><tspan class="b">b</tspan> c<tspan x="108">de</tspan></text>"#
            ),
            "{drawing}"
        );
        assert!(drawing.contains(r#"d="M0 0.5h4m8 0h2""#), "{drawing}");
    }

    #[test]
    fn a_default_coloured_run_that_continues_is_bare_text_and_later_strokes_move_relatively() {
        let mut screen = Screen::new(20, 3);
        for (x, ch) in "ab".chars().enumerate() {
            screen.cells[x] = Cell {
                ch,
                fg: if x == 0 { 196 } else { DEFAULT_FG },
                ..Cell::BLANK
            };
        }
        // Row 1: a cell at 5; row 2: a highlighted cell at 10 and one at 2 (on the same colour's path).
        screen.cells[20 + 5] = Cell {
            ch: 'y',
            ..Cell::BLANK
        };
        for x in [10, 2] {
            screen.cells[2 * 20 + x] = Cell {
                ch: 'x',
                bg: 21,
                ..Cell::BLANK
            };
        }
        let mut sink = SvgSink::new(20, 3);
        let drawing = sink.patch(&screen, Some(&Screen::new(20, 3)));
        assert!(
            drawing.contains(r#"<tspan y="14" x="0" class="b">a</tspan>b<tspan y="32" x="45">y"#),
            "`b` follows `a` in the text's own colour: {drawing}"
        );
        // The first stroke of a colour is absolute, the next ones move from where the one before ended.
        assert!(
            drawing.contains(&format!(
                r#"<path class="s{DEFAULT_BG}" d="M0 0.5h2m3 1h1"/>"#
            )),
            "{drawing}"
        );
        assert!(
            drawing.contains(r#"<path class="s21" d="M2 2.5h1m7 0h1"/>"#),
            "{drawing}"
        );
    }
}
