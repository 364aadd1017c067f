//! The part of a rendering both sources share: which stretch of the session (`--from`, `--to`, as times or
//! marker names), how fast (`--speed`), and which screens become frames.
//!
//! A source reports each change of the screen with [`Frames::before_change`] and its output time. Changes
//! closer together than a frame (`--fps`, and never closer than [`MIN_DELAY_CS`]: browsers draw shorter GIF
//! delays as a tenth of a second, which would slow the animation down) are folded into one frame showing
//! the last of them, and a screen identical to the frame before it
//! makes no frame: that frame is shown longer instead. The encoder thus gets only real changes, each with
//! the time it appears.

use std::path::Path;

use super::error::RenderError;
use super::screen::Screen;

/// The shortest delay between two frames, in hundredths of a second (GIF's unit).
pub const MIN_DELAY_CS: u32 = 2;

/// How long the last frame stays at least, in hundredths of a second, so a looping animation shows the end
/// before it starts over.
pub const FINAL_HOLD_CS: u32 = 100;

/// A chapter of a recording: an asciicast `"m"` event, or for an event log the feed line squall marks
/// recordings with (faults, leader changes, exits, checks).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Seconds since the recording began.
    pub at: f64,
    /// Its label.
    pub label: String,
}

/// The stretch of a recording to render and how fast, resolved to seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Start, seconds since the recording began.
    pub from: f64,
    /// End, seconds since the recording began (inclusive).
    pub to: f64,
    /// Playback speed: 2 plays twice as fast.
    pub speed: f64,
    /// The shortest time between two frames, in hundredths of a second (from `--fps`).
    pub frame_cs: u32,
}

impl Range {
    /// Output time in hundredths of a second of the recording's time `t` (seconds).
    pub fn cs(&self, t: f64) -> u32 {
        (((t - self.from).max(0.0) / self.speed) * 100.0).round() as u32
    }
}

/// Parses a time a person typed: seconds (`90`, `12.5`), `M:SS` or `H:MM:SS` (`1:30`), or a duration
/// (`90s`, `1m30s`, `500ms`). `None` if it is none of those (then it names a marker).
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let v: f64 = if i + 1 == parts.len() {
                p.parse().ok()?
            } else {
                f64::from(p.parse::<u32>().ok()?)
            };
            if !v.is_finite() || v < 0.0 {
                return None;
            }
            total = total * 60.0 + v;
        }
        return Some(total);
    }
    humantime::parse_duration(s).ok().map(|d| d.as_secs_f64())
}

/// Finds the first marker at or after `after` whose label is `name`, or else the first whose label
/// contains it (case-insensitive).
fn find_marker<'a>(markers: &'a [Marker], name: &str, after: f64) -> Option<&'a Marker> {
    let later = || markers.iter().filter(move |m| m.at >= after);
    let lower = name.to_lowercase();
    later()
        .find(|m| m.label == name)
        .or_else(|| later().find(|m| m.label.to_lowercase().contains(&lower)))
}

/// Resolves `--from` and `--to` (a time or a marker name each) against a recording `length` seconds long
/// with `markers`. A `--to` marker is looked for after the start. Errors name the input and the flag.
pub fn resolve(
    input: &Path,
    from: Option<&str>,
    to: Option<&str>,
    (speed, fps): (f64, f64),
    markers: &[Marker],
    length: f64,
) -> Result<Range, RenderError> {
    let bound = |flag: &str, s: &str, after: f64| -> Result<f64, RenderError> {
        if let Some(t) = parse_time(s) {
            return Ok(t);
        }
        find_marker(markers, s, after).map(|m| m.at).ok_or_else(|| {
            let known = if markers.is_empty() {
                "it has no markers".to_owned()
            } else {
                let names: Vec<String> = markers
                    .iter()
                    .take(8)
                    .map(|m| format!("{:.1}s {}", m.at, m.label))
                    .collect();
                let more = if markers.len() > 8 { ", …" } else { "" };
                format!("its markers: {}{more}", names.join(", "))
            };
            RenderError::Usage(format!(
                "{flag} `{s}` is neither a time (90, 1:30, 90s, 1m30s) nor a marker of {} ({known})",
                input.display()
            ))
        })
    };
    let start = from
        .map(|s| bound("--from", s, 0.0))
        .transpose()?
        .unwrap_or(0.0);
    let end = to
        .map(|s| bound("--to", s, start))
        .transpose()?
        .unwrap_or(length);
    if start > length {
        return Err(RenderError::Usage(format!(
            "--from {start:.1}s is after the end of {} ({length:.1}s long)",
            input.display()
        )));
    }
    if end <= start {
        return Err(RenderError::Usage(format!(
            "--to ({end:.1}s) must come after --from ({start:.1}s) in {}",
            input.display()
        )));
    }
    Ok(Range {
        from: start,
        to: end,
        speed,
        frame_cs: ((100.0 / fps).round() as u32).max(MIN_DELAY_CS),
    })
}

/// Where frames go: the GIF and SVG writers.
pub trait FrameSink {
    /// A screen that shows from `t_cs` (hundredths of a second since the start) until the next one; it
    /// differs from the one before.
    fn frame(&mut self, t_cs: u32, screen: &Screen) -> Result<(), RenderError>;
    /// The end: the last frame lasts until `end_cs`.
    fn finish(&mut self, end_cs: u32) -> Result<(), RenderError>;
}

/// Turns a source's changes into frames: folds close changes together, drops repeats.
pub struct Frames<'a> {
    sink: &'a mut dyn FrameSink,
    frame_cs: u32,
    window: u32,
    last: Option<Screen>,
    last_t: u32,
    /// Frames handed to the sink.
    pub count: usize,
}

impl<'a> Frames<'a> {
    /// Frames into `sink`, the first one at time 0, at least `frame_cs` hundredths of a second apart
    /// (never less than [`MIN_DELAY_CS`]).
    pub fn new(sink: &'a mut dyn FrameSink, frame_cs: u32) -> Self {
        Frames {
            sink,
            frame_cs: frame_cs.max(MIN_DELAY_CS),
            window: 0,
            last: None,
            last_t: 0,
            count: 0,
        }
    }

    /// Call before the source applies a change that shows at `t_cs`; `screen` gives the screen as it is
    /// before that change, and is only asked for when the frame it ends is due.
    pub fn before_change(
        &mut self,
        t_cs: u32,
        screen: impl FnOnce() -> Screen,
    ) -> Result<(), RenderError> {
        if t_cs >= self.window + self.frame_cs {
            self.emit(screen())?;
            self.window = t_cs;
        }
        Ok(())
    }

    fn emit(&mut self, screen: Screen) -> Result<(), RenderError> {
        if self.last.as_ref() != Some(&screen) {
            self.sink.frame(self.window, &screen)?;
            self.count += 1;
            self.last_t = self.window;
            self.last = Some(screen);
        }
        Ok(())
    }

    /// Ends at `end_cs` with the final `screen`; the last frame lasts until `end_cs`, and at least
    /// [`FINAL_HOLD_CS`]. Returns how many frames there are and the animation's length in hundredths of
    /// a second.
    pub fn finish(mut self, end_cs: u32, screen: Screen) -> Result<(usize, u32), RenderError> {
        self.emit(screen)?;
        let end = end_cs.max(self.last_t + FINAL_HOLD_CS);
        self.sink.finish(end)?;
        Ok((self.count, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form_a_person_types() {
        assert_eq!(parse_time("90"), Some(90.0));
        assert_eq!(parse_time("12.5"), Some(12.5));
        assert_eq!(parse_time("1:30"), Some(90.0));
        assert_eq!(parse_time("1:00:05"), Some(3605.0));
        assert_eq!(parse_time("1m30s"), Some(90.0));
        assert_eq!(parse_time("500ms"), Some(0.5));
        assert_eq!(parse_time("kill node 2"), None);
        assert_eq!(parse_time("-3"), None);
    }

    fn markers() -> Vec<Marker> {
        let m = |at, label: &str| Marker {
            at,
            label: label.into(),
        };
        vec![
            m(5.0, "kill node 2"),
            m(7.5, "node 3 leads term 5"),
            m(20.0, "kill node 3"),
            m(22.0, "node 1 leads term 6"),
        ]
    }

    #[test]
    fn markers_resolve_by_name_and_the_end_is_found_after_the_start() {
        let p = Path::new("demo.cast");
        let r = resolve(
            p,
            Some("kill node 3"),
            Some("leads"),
            (1.0, 10.0),
            &markers(),
            30.0,
        )
        .unwrap();
        assert_eq!((r.from, r.to), (20.0, 22.0));
        let r = resolve(p, Some("KILL"), None, (2.0, 10.0), &markers(), 30.0).unwrap();
        assert_eq!((r.from, r.to, r.speed, r.frame_cs), (5.0, 30.0, 2.0, 10));
        assert_eq!(r.cs(7.0), 100);
    }

    #[test]
    fn a_bad_bound_names_the_flag_the_input_and_the_markers() {
        let p = Path::new("demo.cast");
        let e = resolve(p, Some("partition"), None, (1.0, 10.0), &markers(), 30.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--from `partition`") && e.contains("demo.cast"),
            "{e}"
        );
        assert!(e.contains("5.0s kill node 2"), "{e}");
        let e = resolve(p, Some("10"), Some("5"), (1.0, 10.0), &[], 30.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must come after"), "{e}");
        let e = resolve(p, Some("40"), None, (1.0, 10.0), &[], 30.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("after the end"), "{e}");
        let e = resolve(p, Some("x"), None, (1.0, 10.0), &[], 30.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no markers"), "{e}");
    }

    struct Log(Vec<(u32, String)>, Option<u32>);

    impl FrameSink for Log {
        fn frame(&mut self, t_cs: u32, screen: &Screen) -> Result<(), RenderError> {
            self.0.push((t_cs, screen.row_text(0)));
            Ok(())
        }
        fn finish(&mut self, end_cs: u32) -> Result<(), RenderError> {
            self.1 = Some(end_cs);
            Ok(())
        }
    }

    fn screen(text: &str) -> Screen {
        let mut s = Screen::new(text.len(), 1);
        for (c, ch) in s.cells.iter_mut().zip(text.chars()) {
            c.ch = ch;
        }
        s
    }

    #[test]
    fn close_changes_fold_into_one_frame_and_repeats_make_none() {
        let mut log = Log(Vec::new(), None);
        let mut f = Frames::new(&mut log, MIN_DELAY_CS);
        // Shown: "a" from 0; the change at 1 cs folds into the first frame ("b" is what shows at 0-2).
        f.before_change(1, || screen("a")).unwrap();
        f.before_change(10, || screen("b")).unwrap();
        f.before_change(20, || screen("c")).unwrap();
        // An identical screen makes no frame.
        f.before_change(30, || screen("c")).unwrap();
        let (count, end) = f.finish(50, screen("d")).unwrap();
        assert_eq!(count, 3);
        assert_eq!(
            log.0,
            vec![(0, "b".into()), (10, "c".into()), (30, "d".into())]
        );
        assert_eq!((end, log.1), (130, Some(130)));
    }
}
