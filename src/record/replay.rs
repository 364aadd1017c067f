//! The replay controller: play, pause, speed, seek and jumps between faults over a list of logged events.
//!
//! It is pure: it never reads a clock (the caller passes in how much wall time went by) and never touches
//! the state. It only says which events to apply next, as an [`Apply`]: a range of events to apply in
//! order, possibly after resetting the state to empty. Seeking backwards is a reset followed by
//! re-applying from the start, which is exact because applying an event is pure.
//!
//! The state at position `t` is what applying the longest prefix of events whose times are all `<= t`
//! gives; for a log in time order (as written) that is every event at or before `t`.

use std::ops::Range;
use std::time::Duration;

/// What the replay controller needs to know about a logged event.
pub trait Timed {
    /// Milliseconds since the session began.
    fn at_ms(&self) -> u64;
    /// Whether `[`/`]` stop at this event (faults injected, as a rule).
    fn is_marker(&self) -> bool;
}

/// Which events the caller should apply: if `reset`, start again from an empty state, then apply
/// `events[range]` in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// Start over from an empty state before applying `range`.
    pub reset: bool,
    /// The events to apply, in order.
    pub range: Range<usize>,
}

impl Apply {
    /// Whether nothing needs doing.
    pub fn is_noop(&self) -> bool {
        !self.reset && self.range.is_empty()
    }
}

/// The slowest speed is 2^MIN_SPEED_EXP (0.25×).
const MIN_SPEED_EXP: i8 = -2;
/// The fastest speed is 2^MAX_SPEED_EXP (16×).
const MAX_SPEED_EXP: i8 = 4;
/// How far ←/→ seek.
pub const SEEK_STEP_MS: u64 = 5_000;

/// Replay position, speed and play/pause over a fixed list of events.
#[derive(Debug, Clone)]
pub struct ReplayController {
    times: Vec<u64>,
    /// Indices of marker events, in order.
    markers: Vec<usize>,
    /// How many events (a prefix) the caller's state has applied.
    applied: usize,
    /// Microseconds, so slow speeds do not lose time to rounding.
    pos_us: u64,
    end_ms: u64,
    speed_exp: i8,
    paused: bool,
}

impl ReplayController {
    /// A controller at the start (position 0, nothing applied), playing at 1×. Call
    /// [`ReplayController::tick`] every frame; the first tick applies the events at time 0.
    pub fn new<E: Timed>(events: &[E]) -> Self {
        let times: Vec<u64> = events.iter().map(Timed::at_ms).collect();
        let markers = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_marker())
            .map(|(i, _)| i)
            .collect();
        let end_ms = times.iter().copied().max().unwrap_or(0);
        ReplayController {
            times,
            markers,
            applied: 0,
            pos_us: 0,
            end_ms,
            speed_exp: 0,
            paused: false,
        }
    }

    /// Advances the position by `elapsed` wall time at the current speed (unless paused) and returns the
    /// events that became due. Playing pauses itself at the end.
    pub fn tick(&mut self, elapsed: Duration) -> Apply {
        if !self.paused {
            let wall_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            let play_us = if self.speed_exp >= 0 {
                wall_us.saturating_mul(1 << self.speed_exp)
            } else {
                wall_us >> -self.speed_exp
            };
            self.pos_us = self.pos_us.saturating_add(play_us).min(self.end_ms * 1_000);
            if self.pos_us == self.end_ms * 1_000 {
                self.paused = true;
            }
        }
        self.catch_up()
    }

    /// Space: pauses, or resumes; resuming at the end starts again from the beginning.
    pub fn toggle_pause(&mut self) -> Apply {
        if self.paused && self.pos_us >= self.end_ms * 1_000 && self.end_ms > 0 {
            self.paused = false;
            return self.seek_to(0);
        }
        self.paused = !self.paused;
        Apply {
            reset: false,
            range: self.applied..self.applied,
        }
    }

    /// `+`: doubles the speed, up to 16×.
    pub fn faster(&mut self) {
        self.speed_exp = (self.speed_exp + 1).min(MAX_SPEED_EXP);
    }

    /// `-`: halves the speed, down to 0.25×.
    pub fn slower(&mut self) {
        self.speed_exp = (self.speed_exp - 1).max(MIN_SPEED_EXP);
    }

    /// Moves to `t_ms` (clamped to the log's span), keeping play/pause as it was.
    pub fn seek_to(&mut self, t_ms: u64) -> Apply {
        self.pos_us = t_ms.min(self.end_ms) * 1_000;
        let target = self.prefix_len(t_ms.min(self.end_ms));
        if target < self.applied {
            self.applied = target;
            Apply {
                reset: true,
                range: 0..target,
            }
        } else {
            let from = self.applied;
            self.applied = target;
            Apply {
                reset: false,
                range: from..target,
            }
        }
    }

    /// Moves by `delta_ms` (negative is backwards), clamped to the log's span.
    pub fn seek_by(&mut self, delta_ms: i64) -> Apply {
        let target = if delta_ms < 0 {
            self.position_ms().saturating_sub(delta_ms.unsigned_abs())
        } else {
            self.position_ms().saturating_add(delta_ms.unsigned_abs())
        };
        self.seek_to(target)
    }

    /// ←: five seconds back.
    pub fn seek_back(&mut self) -> Apply {
        self.seek_by(-(SEEK_STEP_MS as i64))
    }

    /// →: five seconds forward.
    pub fn seek_forward(&mut self) -> Apply {
        self.seek_by(SEEK_STEP_MS as i64)
    }

    /// `]`: to the first marker after the current position; nothing if there is none.
    pub fn next_marker(&mut self) -> Apply {
        let now_us = self.pos_us;
        match self
            .markers
            .iter()
            .map(|&i| self.times[i])
            .find(|&t| t * 1_000 > now_us)
        {
            Some(t) => self.seek_to(t),
            None => self.seek_to(self.position_ms()),
        }
    }

    /// `[`: to the last marker before the current position (one you are exactly on counts as passed);
    /// nothing if there is none.
    pub fn prev_marker(&mut self) -> Apply {
        let now_us = self.pos_us;
        match self
            .markers
            .iter()
            .rev()
            .map(|&i| self.times[i])
            .find(|&t| t * 1_000 < now_us)
        {
            Some(t) => self.seek_to(t),
            None => self.noop(),
        }
    }

    /// Home: to the beginning.
    pub fn home(&mut self) -> Apply {
        self.seek_to(0)
    }

    /// End: to the last event, paused there.
    pub fn end(&mut self) -> Apply {
        self.paused = true;
        self.seek_to(self.end_ms)
    }

    /// The position, in milliseconds since the session began.
    pub fn position_ms(&self) -> u64 {
        self.pos_us / 1_000
    }

    /// The time of the last event: the length of the replay.
    pub fn total_ms(&self) -> u64 {
        self.end_ms
    }

    /// The playback speed factor, 0.25 to 16.
    pub fn speed(&self) -> f64 {
        2f64.powi(i32::from(self.speed_exp))
    }

    /// Whether playback is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// How many events (from the start) the caller's state now has applied.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// How many markers lie at or before the position, and how many there are (for "fault 2/5").
    pub fn markers_passed(&self) -> (usize, usize) {
        let passed = self.markers.iter().filter(|&&i| i < self.applied).count();
        (passed, self.markers.len())
    }

    /// A one-line summary for the status bar, e.g. `▶ 2× 0:12.3/1:05.0`.
    pub fn status(&self) -> String {
        let icon = if self.paused { "⏸" } else { "▶" };
        let speed = match self.speed_exp {
            -2 => "0.25".to_owned(),
            -1 => "0.5".to_owned(),
            e => (1u32 << e).to_string(),
        };
        format!(
            "{icon} {speed}× {}/{}",
            format_ms(self.position_ms()),
            format_ms(self.end_ms)
        )
    }

    fn noop(&self) -> Apply {
        Apply {
            reset: false,
            range: self.applied..self.applied,
        }
    }

    /// Applies whatever became due at the current position.
    fn catch_up(&mut self) -> Apply {
        self.seek_to(self.position_ms())
    }

    /// The length of the longest prefix of events all at or before `t_ms`.
    fn prefix_len(&self, t_ms: u64) -> usize {
        self.times
            .iter()
            .position(|&t| t > t_ms)
            .unwrap_or(self.times.len())
    }
}

/// `m:ss.d` for a time in milliseconds.
pub fn format_ms(ms: u64) -> String {
    let tenths = ms / 100;
    format!("{}:{:02}.{}", tenths / 600, (tenths / 10) % 60, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Ev(u64, bool);

    impl Timed for Ev {
        fn at_ms(&self) -> u64 {
            self.0
        }
        fn is_marker(&self) -> bool {
            self.1
        }
    }

    /// Events at 0, 1 s, ... 20 s; faults (markers) at 3 s, 8 s and 15 s.
    fn events() -> Vec<Ev> {
        (0..=20)
            .map(|s| Ev(s * 1_000, matches!(s, 3 | 8 | 15)))
            .collect()
    }

    /// Applies `apply` to a model state (the list of applied indices) as a caller would.
    fn run(state: &mut Vec<usize>, apply: Apply) {
        if apply.reset {
            state.clear();
        }
        state.extend(apply.range);
    }

    fn expect_state(state: &[usize], c: &ReplayController) {
        let due: Vec<usize> = (0..events().len())
            .filter(|&i| events()[i].0 <= c.position_ms())
            .collect();
        assert_eq!(state, due, "at {} ms", c.position_ms());
        assert_eq!(c.applied(), state.len());
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn plays_at_one_times_speed_and_pauses_itself_at_the_end() {
        let mut c = ReplayController::new(&events());
        let mut st = Vec::new();
        run(&mut st, c.tick(Duration::ZERO));
        assert_eq!(st, [0]);
        run(&mut st, c.tick(S * 2 + Duration::from_millis(500)));
        assert_eq!(c.position_ms(), 2_500);
        expect_state(&st, &c);
        run(&mut st, c.tick(S * 100));
        assert_eq!(c.position_ms(), 20_000);
        assert!(c.is_paused());
        expect_state(&st, &c);
        assert_eq!(st.len(), 21);
        // Play at the end starts again from the beginning.
        run(&mut st, c.toggle_pause());
        assert!(!c.is_paused());
        assert_eq!(c.position_ms(), 0);
        expect_state(&st, &c);
    }

    #[test]
    fn pause_stops_time_and_resume_continues() {
        let mut c = ReplayController::new(&events());
        let mut st = Vec::new();
        run(&mut st, c.tick(S));
        assert!(c.toggle_pause().is_noop());
        assert!(c.is_paused());
        run(&mut st, c.tick(S * 5));
        assert_eq!(c.position_ms(), 1_000);
        c.toggle_pause();
        run(&mut st, c.tick(S));
        assert_eq!(c.position_ms(), 2_000);
        expect_state(&st, &c);
    }

    #[test]
    fn speed_doubles_and_halves_within_a_quarter_and_sixteen() {
        let mut c = ReplayController::new(&events());
        assert_eq!(c.speed(), 1.0);
        c.slower();
        c.slower();
        c.slower();
        assert_eq!(c.speed(), 0.25);
        c.tick(S * 2);
        assert_eq!(c.position_ms(), 500);
        for _ in 0..10 {
            c.faster();
        }
        assert_eq!(c.speed(), 16.0);
        c.tick(Duration::from_millis(500));
        assert_eq!(c.position_ms(), 8_500);
        c.slower();
        assert_eq!(c.speed(), 8.0);
        assert!(c.status().contains("8×"), "{}", c.status());
        // Many small ticks at a slow speed keep time (microsecond resolution).
        let mut c = ReplayController::new(&events());
        c.slower();
        c.slower();
        for _ in 0..1_000 {
            c.tick(Duration::from_millis(4));
        }
        assert_eq!(c.position_ms(), 1_000);
    }

    #[test]
    fn seeking_forward_applies_more_and_backward_resets_and_reapplies() {
        let mut c = ReplayController::new(&events());
        let mut st = Vec::new();
        run(&mut st, c.tick(S * 6));
        let fwd = c.seek_forward();
        assert!(!fwd.reset);
        assert_eq!(fwd.range, 7..12);
        run(&mut st, fwd);
        assert_eq!(c.position_ms(), 11_000);
        expect_state(&st, &c);
        let back = c.seek_back();
        assert_eq!(
            back,
            Apply {
                reset: true,
                range: 0..7
            }
        );
        run(&mut st, back);
        expect_state(&st, &c);
        // Clamped at both ends.
        for _ in 0..5 {
            run(&mut st, c.seek_back());
        }
        assert_eq!(c.position_ms(), 0);
        expect_state(&st, &c);
        for _ in 0..10 {
            run(&mut st, c.seek_forward());
        }
        assert_eq!(c.position_ms(), 20_000);
        expect_state(&st, &c);
        // Seeking back inside the span of one event needs no reset.
        let mut c = ReplayController::new(&[Ev(0, false), Ev(10_000, false)]);
        c.tick(S * 9);
        assert!(c.seek_back().is_noop());
        assert_eq!(c.position_ms(), 4_000);
    }

    #[test]
    fn jumps_between_markers() {
        let mut c = ReplayController::new(&events());
        let mut st = Vec::new();
        run(&mut st, c.tick(S));
        run(&mut st, c.next_marker());
        assert_eq!(c.position_ms(), 3_000);
        expect_state(&st, &c);
        assert_eq!(c.markers_passed(), (1, 3));
        run(&mut st, c.next_marker());
        assert_eq!(c.position_ms(), 8_000);
        run(&mut st, c.next_marker());
        assert_eq!(c.position_ms(), 15_000);
        // No marker after the last: stays put.
        assert!(c.next_marker().is_noop());
        assert_eq!(c.position_ms(), 15_000);
        // Previous from exactly on a marker goes to the one before.
        let back = c.prev_marker();
        assert!(back.reset);
        run(&mut st, back);
        assert_eq!(c.position_ms(), 8_000);
        expect_state(&st, &c);
        // Previous from just past a marker goes to that marker.
        run(&mut st, c.tick(Duration::from_millis(300)));
        run(&mut st, c.prev_marker());
        assert_eq!(c.position_ms(), 8_000);
        run(&mut st, c.prev_marker());
        assert_eq!(c.position_ms(), 3_000);
        assert!(c.prev_marker().is_noop());
        assert_eq!(c.position_ms(), 3_000);
        expect_state(&st, &c);
    }

    #[test]
    fn home_and_end() {
        let mut c = ReplayController::new(&events());
        let mut st = Vec::new();
        run(&mut st, c.end());
        assert!(c.is_paused());
        assert_eq!(c.position_ms(), c.total_ms());
        assert_eq!(st.len(), 21);
        run(&mut st, c.home());
        assert_eq!(st, [0]);
        assert_eq!(c.position_ms(), 0);
        assert_eq!(c.status(), "⏸ 1× 0:00.0/0:20.0");
    }

    #[test]
    fn out_of_order_times_apply_as_a_prefix() {
        let evs = [
            Ev(0, false),
            Ev(5_000, false),
            Ev(3_000, true),
            Ev(6_000, false),
        ];
        let mut c = ReplayController::new(&evs);
        let mut st = Vec::new();
        run(&mut st, c.seek_to(4_000));
        assert_eq!(st, [0]);
        run(&mut st, c.seek_to(5_000));
        assert_eq!(st, [0, 1, 2]);
        run(&mut st, c.end());
        assert_eq!(st, [0, 1, 2, 3]);
    }

    #[test]
    fn an_empty_log_is_harmless() {
        let mut c = ReplayController::new::<Ev>(&[]);
        assert!(c.tick(S).is_noop());
        assert!(c.next_marker().is_noop());
        assert!(c.prev_marker().is_noop());
        assert!(c.end().is_noop());
        assert!(c.home().is_noop());
        assert_eq!(c.total_ms(), 0);
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_ms(0), "0:00.0");
        assert_eq!(format_ms(65_432), "1:05.4");
        assert_eq!(format_ms(600_000), "10:00.0");
    }
}
