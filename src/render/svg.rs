//! Frames to an animated SVG that plays in a browser with CSS alone (no script).
//!
//! Every distinct row of cells is written once, in `<defs>`, as its background runs and one `<text>`
//! (one glyph run per line, a `<tspan>` per colour run, each placed at its column so a fallback font
//! cannot shift the columns). Each row position of the screen is a one-row window onto a strip of the
//! rows it ever shows; a CSS animation moves the strip with a step at each change, so a change costs one
//! keyframe, not a copy of the screen.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::RenderError;
use super::palette::{self, DEFAULT_BG, DEFAULT_FG};
use super::screen::{BOLD, Cell, ITALIC, Screen, UNDERLINE};
use super::timeline::FrameSink;

/// Width of a cell in SVG units (px).
pub const CELL_W: usize = 9;
/// Height of a cell in SVG units (px).
pub const CELL_H: usize = 18;
/// Font size that makes a common monospace font's advance [`CELL_W`] (0.6 em).
const FONT_PX: usize = 15;

/// One row position: the distinct rows it shows (its strip) and when it changes to which.
#[derive(Default)]
struct Slot {
    strip: Vec<usize>,
    changes: Vec<(u32, usize)>,
}

/// Collects frames and writes the SVG document at the end.
pub struct SvgSink {
    cols: usize,
    rows: usize,
    /// Distinct rows, in order of first appearance; their index is their id.
    defs: Vec<Vec<Cell>>,
    ids: HashMap<Vec<Cell>, usize>,
    slots: Vec<Slot>,
    shown: Option<Screen>,
    doc: Option<String>,
}

impl SvgSink {
    /// An SVG of a `cols` × `rows` screen.
    pub fn new(cols: usize, rows: usize) -> Self {
        SvgSink {
            cols,
            rows,
            defs: Vec::new(),
            ids: HashMap::new(),
            slots: (0..rows).map(|_| Slot::default()).collect(),
            shown: None,
            doc: None,
        }
    }

    /// The document, once [`FrameSink::finish`] has run.
    pub fn document(&self) -> Option<&str> {
        self.doc.as_deref()
    }

    /// Distinct rows written (for the summary).
    pub fn distinct_rows(&self) -> usize {
        self.defs.len()
    }

    fn id_of(&mut self, row: &[Cell]) -> usize {
        if let Some(&id) = self.ids.get(row) {
            return id;
        }
        let id = self.defs.len();
        self.defs.push(row.to_vec());
        self.ids.insert(row.to_vec(), id);
        id
    }

    fn write(&self, end_cs: u32) -> String {
        let (w, h) = (self.cols * CELL_W, self.rows * CELL_H);
        let secs = f64::from(end_cs.max(1)) / 100.0;
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" viewBox="0 0 {w} {h}" xml:space="preserve">"#
        );
        let _ = write!(
            out,
            "<style>text{{font-family:'DejaVu Sans Mono','Menlo','Consolas','Liberation Mono',monospace;font-size:{FONT_PX}px;white-space:pre;fill:{}}}.b{{font-weight:bold}}.i{{font-style:italic}}.u{{text-decoration:underline}}.a{{animation-duration:{secs}s;animation-iteration-count:infinite;animation-timing-function:step-end}}",
            palette::hex(DEFAULT_FG)
        );
        for (y, slot) in self.slots.iter().enumerate() {
            if slot.strip.len() < 2 {
                continue;
            }
            let _ = write!(out, "@keyframes k{y}{{");
            for &(t, id) in &slot.changes {
                let k = slot.strip.iter().position(|&s| s == id).unwrap_or(0);
                let pct = f64::from(t) / f64::from(end_cs.max(1)) * 100.0;
                let _ = write!(
                    out,
                    "{}%{{transform:translateY(-{}px)}}",
                    trim(pct),
                    k * CELL_H
                );
            }
            out.push('}');
        }
        out.push_str("</style>");
        let _ = write!(
            out,
            r#"<rect width="{w}" height="{h}" fill="{}"/><defs>"#,
            palette::hex(DEFAULT_BG)
        );
        for (id, row) in self.defs.iter().enumerate() {
            write_row(&mut out, id, row);
        }
        out.push_str("</defs>");
        for (y, slot) in self.slots.iter().enumerate() {
            let top = y * CELL_H;
            match slot.strip.as_slice() {
                [] => {}
                [only] => {
                    let _ = write!(out, r##"<use xlink:href="#r{only}" y="{top}"/>"##);
                }
                strip => {
                    let _ = write!(
                        out,
                        r#"<svg y="{top}" width="{w}" height="{CELL_H}"><g class="a" style="animation-name:k{y}">"#
                    );
                    for (k, id) in strip.iter().enumerate() {
                        let _ = write!(out, r##"<use xlink:href="#r{id}" y="{}"/>"##, k * CELL_H);
                    }
                    out.push_str("</g></svg>");
                }
            }
        }
        out.push_str("</svg>\n");
        out
    }
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

/// `<g id="rID">`: background runs, then one `<text>` with a `<tspan>` per run of equal style.
fn write_row(out: &mut String, id: usize, row: &[Cell]) {
    let _ = write!(out, r#"<g id="r{id}">"#);
    let mut x = 0;
    while x < row.len() {
        let bg = row[x].bg;
        let run = row[x..].iter().take_while(|c| c.bg == bg).count();
        if bg != DEFAULT_BG {
            let _ = write!(
                out,
                r#"<rect x="{}" width="{}" height="{CELL_H}" fill="{}"/>"#,
                x * CELL_W,
                run * CELL_W,
                palette::hex(bg)
            );
        }
        x += run;
    }
    let baseline = CELL_H * 3 / 4 + 1;
    let _ = write!(out, r#"<text y="{baseline}">"#);
    let mut x = 0;
    while x < row.len() {
        let (fg, attrs) = (row[x].fg, row[x].attrs);
        let run = row[x..]
            .iter()
            .take_while(|c| c.fg == fg && c.attrs == attrs)
            .count();
        let text = &row[x..x + run];
        if text.iter().any(|c| c.ch != ' ') {
            let mut class = String::new();
            for (bit, name) in [(BOLD, "b"), (ITALIC, "i"), (UNDERLINE, "u")] {
                if attrs & bit != 0 {
                    class.push_str(name);
                    class.push(' ');
                }
            }
            let _ = write!(out, r#"<tspan x="{}""#, x * CELL_W);
            if fg != DEFAULT_FG {
                let _ = write!(out, r#" fill="{}""#, palette::hex(fg));
            }
            if !class.is_empty() {
                let _ = write!(out, r#" class="{}""#, class.trim_end());
            }
            out.push('>');
            let trimmed = text.len() - text.iter().rev().take_while(|c| c.ch == ' ').count();
            for c in &text[..trimmed] {
                escape(c.ch, out);
            }
            out.push_str("</tspan>");
        }
        x += run;
    }
    out.push_str("</text></g>");
}

impl FrameSink for SvgSink {
    fn frame(&mut self, t_cs: u32, screen: &Screen) -> Result<(), RenderError> {
        for y in 0..self.rows.min(screen.rows) {
            let row = screen.row(y);
            if self.shown.as_ref().is_some_and(|s| s.row(y) == row) {
                continue;
            }
            let id = self.id_of(row);
            let slot = &mut self.slots[y];
            if !slot.strip.contains(&id) {
                slot.strip.push(id);
            }
            slot.changes.push((t_cs, id));
        }
        self.shown = Some(screen.clone());
        Ok(())
    }

    fn finish(&mut self, end_cs: u32) -> Result<(), RenderError> {
        self.doc = Some(self.write(end_cs));
        Ok(())
    }
}
