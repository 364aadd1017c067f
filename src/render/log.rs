//! Frames from an event log: the replay dashboard (`squall replay`'s [`Player`]) drawn headlessly into
//! ratatui's `TestBackend` at a chosen size, one step of session time after another. No terminal is
//! needed, and the screens are the ones `squall replay` shows for the same moments.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::error::RenderError;
use super::palette::Quantiser;
use super::screen::Screen;
use super::timeline::{self, FrameSink, Frames, Marker};
use crate::record::player::Player;
use crate::state::{ClusterState, Stamped};

/// Session time between two drawn screens at speed 1, in milliseconds (the replay's own frame is 50 ms;
/// the dashboard's clock shows tenths).
pub const STEP_MS: u64 = 100;

/// The feed lines squall marks recordings with (see the session's recorder): the log's chapters.
pub fn markers(events: &[Stamped]) -> Vec<Marker> {
    let mut state = ClusterState::new();
    let mut seen = 0;
    let mut out = Vec::new();
    for e in events {
        state.apply(e);
        for line in state.feed_since(seen) {
            if line.kind.is_chapter() {
                out.push(Marker {
                    at: line.at_ms as f64 / 1e3,
                    label: line.text.clone(),
                });
            }
        }
        seen = state.feed_total();
    }
    out
}

/// The log's length: its last event's session time, in seconds.
pub fn length(events: &[Stamped]) -> f64 {
    events.last().map_or(0.0, |e| e.at_ms as f64 / 1e3)
}

/// Renders `range` of the replay of `events` (named `source`, cut off if `warning`) at `cols` × `rows`
/// into `sink`. Returns (frames, length in cs).
pub fn render(
    events: Vec<Stamped>,
    source: &str,
    warning: Option<String>,
    (cols, rows): (u16, u16),
    range: timeline::Range,
    sink: &mut dyn FrameSink,
) -> Result<(usize, u32), RenderError> {
    let mut player = Player::from_events(events, source, warning);
    let mut terminal = Terminal::new(TestBackend::new(cols, rows))
        .map_err(|e| RenderError::Write(std::io::Error::other(e.to_string())))?;
    let mut q = Quantiser::default();
    let mut draw = |player: &Player| -> Screen {
        // Drawing into a TestBackend cannot fail.
        let frame = terminal.draw(|f| player.draw(f));
        match frame {
            Ok(done) => Screen::from_buffer(done.buffer, &mut q),
            Err(_) => Screen::new(usize::from(cols), usize::from(rows)),
        }
    };
    // At high speeds a step of session time would be shorter than a frame.
    let step = STEP_MS.max((range.speed * f64::from(range.frame_cs) * 10.0).ceil() as u64);
    let (from_ms, to_ms) = ((range.from * 1e3) as u64, (range.to * 1e3) as u64);
    player.seek_to(from_ms);
    let mut frames = Frames::new(sink, range.frame_cs);
    let mut t = from_ms;
    while t < to_ms {
        t = (t + step).min(to_ms);
        frames.before_change(range.cs(t as f64 / 1e3), || draw(&player))?;
        player.seek_to(t);
    }
    let last = draw(&player);
    frames.finish(range.cs(range.to), last)
}
