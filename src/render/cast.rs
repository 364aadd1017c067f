//! Frames from an asciicast v2 recording: its output interpreted by `avt`, asciinema's terminal emulator.

use std::path::Path;

use super::error::RenderError;
use super::palette::Quantiser;
use super::screen::Screen;
use super::timeline::{self, FrameSink, Frames, Marker};
use crate::record::asciicast::Cast;

/// The recording's markers (`"m"` events), in order.
pub fn markers(cast: &Cast) -> Vec<Marker> {
    cast.events_of("m")
        .map(|e| Marker {
            at: e.time,
            label: e.data.clone(),
        })
        .collect()
}

/// The recording's length: the time of its last event, in seconds.
pub fn length(cast: &Cast) -> f64 {
    cast.events.last().map_or(0.0, |e| e.time)
}

/// Parses an `"r"` event's `"COLSxROWS"`.
fn size_of(data: &str) -> Option<(usize, usize)> {
    let (c, r) = data.split_once('x')?;
    Some((c.trim().parse().ok()?, r.trim().parse().ok()?))
}

/// Renders `range` of `cast` (read from `input`) into `sink`: the screen as it is at `range.from` first,
/// then every change up to `range.to`. The picture has the header's size; a resize in the recording
/// changes the emulated terminal, whose screen is cut or padded to it. Returns (frames, length in cs).
pub fn render(
    input: &Path,
    cast: &Cast,
    range: timeline::Range,
    sink: &mut dyn FrameSink,
) -> Result<(usize, u32), RenderError> {
    let (cols, rows) = (
        usize::from(cast.header.width),
        usize::from(cast.header.height),
    );
    let mut term = avt::Terminal::new(cols, rows).map_err(|e| {
        RenderError::Usage(format!(
            "{} has a header of a {cols}×{rows} terminal: {e}",
            input.display()
        ))
    })?;
    let mut q = Quantiser::default();
    let mut frames = Frames::new(sink, range.frame_cs);
    for e in &cast.events {
        if e.time > range.to {
            break;
        }
        if e.code != "o" && e.code != "r" {
            continue;
        }
        if e.time >= range.from {
            frames.before_change(range.cs(e.time), || {
                Screen::from_avt(&term, cols, rows, &mut q)
            })?;
        }
        match e.code.as_str() {
            "o" => term.feed(e.data.as_str()),
            _ => {
                if let Some((c, r)) = size_of(&e.data) {
                    term.resize(c, r);
                }
            }
        }
    }
    let last = Screen::from_avt(&term, cols, rows, &mut q);
    frames.finish(range.cs(range.to), last)
}
