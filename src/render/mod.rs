//! `squall render`: a recording to an animated GIF or SVG that plays in a browser and on a slide.
//!
//! Two sources, one pipeline. An asciicast v2 recording (`squall up --record`) is interpreted by `avt`,
//! asciinema's terminal emulator ([`cast`]); an event log is replayed by `squall replay`'s player and
//! drawn headlessly into ratatui's `TestBackend` at a chosen size ([`log`]). Either way each change of the
//! screen becomes a [`screen::Screen`], [`timeline`] folds them into frames (the stretch `--from`/`--to`
//! picks, at `--speed`, identical screens dropped), and a writer encodes them: [`gif`] (one fixed palette,
//! only the changed rectangle per frame, variable delays) or [`svg`] (each distinct row once, a CSS
//! animation per row position).
//!
//! Licences (checked December 2026; squall is MIT OR Apache-2.0): `avt` is Apache-2.0, `gif` is MIT OR
//! Apache-2.0, and the glyphs are GNU Unifont's under the SIL Open Font License 1.1 (see [`font`]).
//! `gifski`, the usual GIF encoder for terminal recordings, is AGPL-3.0 and is not used.

pub mod cast;
pub mod error;
pub mod font;
pub mod gif;
pub mod log;
pub mod palette;
pub mod screen;
pub mod svg;
pub mod timeline;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub use error::RenderError;

use crate::cli::RenderArgs;
use crate::record::asciicast::{Cast, read_cast};
use crate::record::eventlog::{EventLog, read_event_log};
use crate::state::Stamped;

/// The output formats, chosen by the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An animated GIF.
    Gif,
    /// An animated SVG (CSS animation).
    Svg,
}

impl Format {
    /// The format `path`'s extension names (`.gif` or `.svg`, any case).
    pub fn of(path: &Path) -> Result<Format, RenderError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "gif" => Ok(Format::Gif),
            "svg" => Ok(Format::Svg),
            _ => Err(RenderError::Usage(format!(
                "-o {}: cannot tell the format from the name; end it in .gif or .svg",
                path.display()
            ))),
        }
    }
}

/// A recording read in: an asciicast or a squall event log.
pub enum Input {
    /// An asciicast v2 recording.
    Cast(Cast),
    /// A squall event log.
    Log(EventLog<Stamped>),
}

/// Reads `path` as an asciicast (`.cast`, or a first line that is an asciicast header) or else as an event
/// log (`.jsonl`, `.jsonl.gz`). Errors name the file and say what it should be.
pub fn read_input(path: &Path) -> Result<Input, RenderError> {
    let what =
        "give an asciicast v2 recording (`squall up --record`) or an event log (events.jsonl.gz)";
    let mut file = File::open(path)
        .map_err(|e| RenderError::Usage(format!("cannot read {}: {e}; {what}", path.display())))?;
    let mut head = Vec::new();
    let _ = Read::by_ref(&mut file).take(4096).read_to_end(&mut head);
    let name = path.to_string_lossy().to_lowercase();
    let first_line = BufReader::new(&head[..])
        .lines()
        .next()
        .and_then(Result::ok);
    let looks_like_cast = first_line
        .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .is_some_and(|v| v.get("width").is_some() && v.get("version").is_some());
    if name.ends_with(".cast") || (!name.ends_with(".jsonl") && looks_like_cast) {
        return read_cast(path)
            .map(Input::Cast)
            .map_err(|e| RenderError::Usage(format!("{e}; {what}")));
    }
    read_event_log(path)
        .map(Input::Log)
        .map_err(|e| RenderError::Usage(format!("{e}; {what}")))
}

/// What a rendering produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Frames written.
    pub frames: usize,
    /// Width and height of the picture (pixels for GIF, SVG units for SVG).
    pub size: (usize, usize),
    /// The animation's length in seconds.
    pub seconds: f64,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The options of one rendering, as `squall render` takes them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Start: a time or a marker name.
    pub from: Option<String>,
    /// End: a time or a marker name.
    pub to: Option<String>,
    /// Playback speed.
    pub speed: f64,
    /// Frames per second at most.
    pub fps: f64,
    /// Screen size for an event log's replay (columns, rows).
    pub size: Option<(u16, u16)>,
}

/// The replay's screen size when `--size` is not given.
pub const DEFAULT_SIZE: (u16, u16) = (160, 45);

/// Renders `input` into `output` (its extension picks the format). The file is written under a temporary
/// name and renamed at the end, so a failed rendering leaves no half file.
pub fn render_file(input: &Path, output: &Path, opts: &Options) -> Result<Summary, RenderError> {
    let format = Format::of(output)?;
    let recording = read_input(input)?;
    let (cols, rows) = match &recording {
        Input::Cast(c) => {
            if opts.size.is_some() {
                return Err(RenderError::Usage(format!(
                    "--size is for event logs; {} is an asciicast and keeps its own size ({}x{})",
                    input.display(),
                    c.header.width,
                    c.header.height
                )));
            }
            (usize::from(c.header.width), usize::from(c.header.height))
        }
        Input::Log(_) => {
            let (c, r) = opts.size.unwrap_or(DEFAULT_SIZE);
            (usize::from(c), usize::from(r))
        }
    };
    let (markers, length) = match &recording {
        Input::Cast(c) => (cast::markers(c), cast::length(c)),
        Input::Log(l) => (log::markers(&l.events), log::length(&l.events)),
    };
    let range = timeline::resolve(
        input,
        opts.from.as_deref(),
        opts.to.as_deref(),
        (opts.speed, opts.fps),
        &markers,
        length,
    )?;
    let partial = partial_name(output);
    let file = File::create(&partial)
        .map_err(|e| RenderError::Usage(format!("cannot create {}: {e}", output.display())))?;
    let result = (|| {
        let mut out = BufWriter::new(file);
        let (frames, end_cs, size) = match format {
            Format::Gif => {
                let mut sink = gif::GifSink::new(&mut out, cols, rows)?;
                let (frames, end) = run_source(input, recording, (cols, rows), range, &mut sink)?;
                sink.into_inner()?;
                (frames, end, (cols * font::CELL_W, rows * font::CELL_H))
            }
            Format::Svg => {
                let mut sink = svg::SvgSink::new(cols, rows);
                let (frames, end) = run_source(input, recording, (cols, rows), range, &mut sink)?;
                out.write_all(sink.document().unwrap_or_default().as_bytes())?;
                (frames, end, (cols * svg::CELL_W, rows * svg::CELL_H))
            }
        };
        out.flush()?;
        drop(out);
        std::fs::rename(&partial, output)?;
        Ok(Summary {
            frames,
            size,
            seconds: f64::from(end_cs) / 100.0,
            bytes: std::fs::metadata(output).map(|m| m.len()).unwrap_or(0),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn run_source(
    input: &Path,
    recording: Input,
    (cols, rows): (usize, usize),
    range: timeline::Range,
    sink: &mut dyn timeline::FrameSink,
) -> Result<(usize, u32), RenderError> {
    match recording {
        Input::Cast(c) => cast::render(input, &c, range, sink),
        Input::Log(l) => {
            let name = input
                .file_name()
                .unwrap_or(input.as_os_str())
                .to_string_lossy()
                .into_owned();
            let warning = crate::record::truncation_warning(&l);
            // Both fit in u16: they came from `--size`.
            let size = (cols as u16, rows as u16);
            log::render(l.events, &name, warning, size, range, sink)
        }
    }
}

/// `demo.gif` → `demo.gif.partial` beside it.
fn partial_name(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    output.with_file_name(name)
}

/// The notice and licence of the glyphs every rendered GIF and SVG embeds (GNU Unifont under the SIL Open
/// Font License 1.1, whose condition 2 asks that a binary distribution carry them): `squall render --licence`.
pub const FONT_LICENCE: &str = include_str!("../../LICENSES/Unifont-OFL-1.1.txt");

/// `squall render`: exit 0 with a summary line, 2 for bad input (named), 1 when writing failed.
pub fn render(args: RenderArgs) -> ExitCode {
    if args.licence {
        print!("{FONT_LICENCE}");
        return ExitCode::SUCCESS;
    }
    let (Some(input), Some(output)) = (args.input, args.output) else {
        return crate::setup::fail(
            2,
            "squall render needs an input file and -o OUTPUT.gif|.svg (or --licence alone)",
        );
    };
    let opts = Options {
        from: args.from,
        to: args.to,
        speed: args.speed,
        fps: args.fps,
        size: args.size,
    };
    let started = Instant::now();
    match render_file(&input, &output, &opts) {
        Ok(s) => {
            println!(
                "squall: wrote {}: {}×{}, {} frames, {:.1} s, {:.2} MB, in {:.1} s",
                output.display(),
                s.size.0,
                s.size.1,
                s.frames,
                s.seconds,
                s.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e @ RenderError::Usage(_)) => crate::setup::fail(2, e),
        Err(e) => crate::setup::fail(1, format!("{e} ({})", output.display())),
    }
}
