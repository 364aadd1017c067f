//! One drawn screen as plain data: a grid of cells with a character and two palette colours each. Both
//! sources (an asciicast interpreted by `avt`, a replay drawn into ratatui's `TestBackend`) become a
//! [`Screen`], and both encoders read only this.

use super::palette::{self, DEFAULT_BG, DEFAULT_FG, Quantiser};

/// Bold text (drawn emboldened).
pub const BOLD: u8 = 1;
/// Underlined text.
pub const UNDERLINE: u8 = 2;
/// Italic text (SVG only; the bitmap font has no italic).
pub const ITALIC: u8 = 4;

/// One character cell: what it shows, in which colours (palette indices, inverse already applied) and
/// with which attributes ([`BOLD`], [`UNDERLINE`], [`ITALIC`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    /// The character; `' '` for an empty cell and for the second half of a wide character.
    pub ch: char,
    /// Foreground palette index.
    pub fg: u8,
    /// Background palette index.
    pub bg: u8,
    /// Attribute bits.
    pub attrs: u8,
}

impl Cell {
    /// An empty cell in the default colours.
    pub const BLANK: Cell = Cell {
        ch: ' ',
        fg: DEFAULT_FG,
        bg: DEFAULT_BG,
        attrs: 0,
    };
}

/// A whole screen, `cols` × `rows` cells, row after row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// Width in cells.
    pub cols: usize,
    /// Height in cells.
    pub rows: usize,
    /// `rows * cols` cells, row-major.
    pub cells: Vec<Cell>,
}

impl Screen {
    /// A blank screen.
    pub fn new(cols: usize, rows: usize) -> Self {
        Screen {
            cols,
            rows,
            cells: vec![Cell::BLANK; cols * rows],
        }
    }

    /// The cells of row `y`.
    pub fn row(&self, y: usize) -> &[Cell] {
        &self.cells[y * self.cols..(y + 1) * self.cols]
    }

    /// The text of row `y`, trailing blanks kept.
    pub fn row_text(&self, y: usize) -> String {
        self.row(y).iter().map(|c| c.ch).collect()
    }

    /// The screen of an `avt` terminal, the cursor drawn as an inverse cell when it is visible. The
    /// terminal may have been resized to something else than `cols` × `rows`: it is cut or padded.
    pub fn from_avt(term: &avt::Terminal, cols: usize, rows: usize, q: &mut Quantiser) -> Self {
        let mut screen = Screen::new(cols, rows);
        for (y, line) in term.screen().visible_lines().take(rows).enumerate() {
            for (x, cell) in line.cells().iter().take(cols).enumerate() {
                let pen = cell.pen();
                let colour = |c: Option<avt::Color>, default: u8, q: &mut Quantiser| match c {
                    None => default,
                    Some(avt::Color::Indexed(i)) => palette::indexed(i),
                    Some(avt::Color::RGB(c)) => q.nearest(c.r, c.g, c.b),
                };
                let mut fg = colour(pen.foreground(), DEFAULT_FG, q);
                let mut bg = colour(pen.background(), DEFAULT_BG, q);
                if pen.is_bold() && fg < 8 && pen.foreground().is_some() {
                    // As xterm does by default: bold in one of the eight base colours is the bright one.
                    fg += 8;
                }
                if pen.is_inverse() {
                    std::mem::swap(&mut fg, &mut bg);
                }
                let ch = if cell.width() == 0 { ' ' } else { cell.char() };
                screen.cells[y * cols + x] = Cell {
                    ch,
                    fg,
                    bg,
                    attrs: attrs(pen.is_bold(), pen.is_underline(), pen.is_italic()),
                };
            }
        }
        if let Some((x, y)) = term.cursor().position()
            && x < cols
            && y < rows
        {
            let c = &mut screen.cells[y * cols + x];
            std::mem::swap(&mut c.fg, &mut c.bg);
        }
        screen
    }

    /// The screen ratatui drew into a buffer (a `TestBackend`'s), colours as a 256-colour terminal shows
    /// them.
    pub fn from_buffer(buffer: &ratatui::buffer::Buffer, q: &mut Quantiser) -> Self {
        use ratatui::style::Modifier;
        let cols = usize::from(buffer.area.width);
        let rows = usize::from(buffer.area.height);
        let mut screen = Screen::new(cols, rows);
        for (i, cell) in buffer.content().iter().enumerate().take(cols * rows) {
            let m = cell.modifier;
            let mut fg = ratatui_colour(cell.fg, DEFAULT_FG, q);
            let mut bg = ratatui_colour(cell.bg, DEFAULT_BG, q);
            if m.contains(Modifier::REVERSED) {
                std::mem::swap(&mut fg, &mut bg);
            }
            // A wide character's second cell holds an empty symbol.
            let ch = cell.symbol().chars().next().unwrap_or(' ');
            screen.cells[i] = Cell {
                ch,
                fg,
                bg,
                attrs: attrs(
                    m.contains(Modifier::BOLD),
                    m.contains(Modifier::UNDERLINED),
                    m.contains(Modifier::ITALIC),
                ),
            };
        }
        screen
    }
}

fn attrs(bold: bool, underline: bool, italic: bool) -> u8 {
    u8::from(bold) * BOLD + u8::from(underline) * UNDERLINE + u8::from(italic) * ITALIC
}

/// A ratatui colour as a palette index: the named colours are the sixteen system colours.
fn ratatui_colour(c: ratatui::style::Color, default: u8, q: &mut Quantiser) -> u8 {
    use ratatui::style::Color as C;
    match c {
        C::Reset => default,
        C::Black => 0,
        C::Red => 1,
        C::Green => 2,
        C::Yellow => 3,
        C::Blue => 4,
        C::Magenta => 5,
        C::Cyan => 6,
        C::Gray => 7,
        C::DarkGray => 8,
        C::LightRed => 9,
        C::LightGreen => 10,
        C::LightYellow => 11,
        C::LightBlue => 12,
        C::LightMagenta => 13,
        C::LightCyan => 14,
        C::White => 15,
        C::Indexed(i) => palette::indexed(i),
        C::Rgb(r, g, b) => q.nearest(r, g, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avt_screen_carries_text_colours_and_inverse() {
        let mut term = avt::Terminal::new(10, 2).unwrap();
        term.feed("\x1b[?25l\x1b[31mred\x1b[0m \x1b[7minv\x1b[0m\r\n\x1b[38;2;255;0;0;1mX");
        let s = Screen::from_avt(&term, 10, 2, &mut Quantiser::default());
        assert_eq!(s.row_text(0), "red inv   ");
        assert_eq!(s.cells[0].fg, 1);
        assert_eq!((s.cells[4].fg, s.cells[4].bg), (DEFAULT_BG, DEFAULT_FG));
        assert_eq!((s.cells[10].fg, s.cells[10].attrs), (9, BOLD));
    }
}
