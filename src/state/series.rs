//! Per-second counters over session time, for sparklines and rates.

use std::collections::VecDeque;

/// How many seconds of history a [`RateSeries`] keeps.
pub const RATE_HISTORY_SECS: usize = 180;

/// Counts per whole second of session time (`at_ms / 1000`), the last [`RATE_HISTORY_SECS`] of them.
///
/// The newest bucket is the second in progress; [`RateSeries::completed`] leaves it out so a sparkline never
/// shows a half-filled last bar as a sudden drop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateSeries {
    first_sec: u64,
    buckets: VecDeque<u64>,
}

impl RateSeries {
    /// Moves the series forward so its newest bucket is the second holding `at_ms`. Time never moves back:
    /// an older `at_ms` leaves the series as it is.
    pub fn advance(&mut self, at_ms: u64) {
        let sec = at_ms / 1000;
        if self.buckets.is_empty() {
            self.first_sec = sec;
            self.buckets.push_back(0);
            return;
        }
        let next = self.first_sec + self.buckets.len() as u64;
        if sec < next {
            return;
        }
        let gap = sec - next + 1;
        if gap as usize >= RATE_HISTORY_SECS {
            // A long silence: everything kept is older than the window.
            self.buckets.clear();
            self.buckets
                .extend(std::iter::repeat_n(0, RATE_HISTORY_SECS));
            self.first_sec = sec + 1 - RATE_HISTORY_SECS as u64;
            return;
        }
        for _ in 0..gap {
            self.buckets.push_back(0);
        }
        while self.buckets.len() > RATE_HISTORY_SECS {
            self.buckets.pop_front();
            self.first_sec += 1;
        }
    }

    /// Adds `n` to the bucket of `at_ms` (after advancing to it). Counts for seconds already dropped are ignored.
    pub fn add(&mut self, at_ms: u64, n: u64) {
        self.advance(at_ms);
        let sec = at_ms / 1000;
        if sec >= self.first_sec
            && let Some(b) = self.buckets.get_mut((sec - self.first_sec) as usize)
        {
            *b += n;
        }
    }

    /// Up to `n` most recent completed seconds, oldest first.
    pub fn completed(&self, n: usize) -> impl Iterator<Item = u64> + '_ {
        let done = self.buckets.len().saturating_sub(1);
        let skip = done.saturating_sub(n);
        self.buckets.iter().take(done).skip(skip).copied()
    }

    /// The count of the last completed second (0 before one completed).
    pub fn last_rate(&self) -> u64 {
        let done = self.buckets.len().saturating_sub(1);
        if done == 0 { 0 } else { self.buckets[done - 1] }
    }

    /// The largest count among the last `n` completed seconds.
    pub fn max_over(&self, n: usize) -> u64 {
        self.completed(n).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_session_seconds() {
        let mut s = RateSeries::default();
        s.add(100, 3);
        s.add(900, 2);
        assert_eq!(s.last_rate(), 0, "the first second is still in progress");
        s.add(1_500, 7);
        assert_eq!(s.completed(10).collect::<Vec<_>>(), vec![5]);
        s.advance(4_000);
        assert_eq!(s.completed(10).collect::<Vec<_>>(), vec![5, 7, 0, 0]);
        assert_eq!(s.last_rate(), 0);
        assert_eq!(s.max_over(10), 7);
        assert_eq!(s.completed(2).collect::<Vec<_>>(), vec![0, 0]);
    }

    #[test]
    fn history_is_bounded_and_survives_long_gaps() {
        let mut s = RateSeries::default();
        for sec in 0..1000u64 {
            s.add(sec * 1000, sec);
        }
        assert_eq!(s.buckets.len(), RATE_HISTORY_SECS);
        assert_eq!(s.last_rate(), 998);
        s.add(10_000_000, 4);
        assert_eq!(s.buckets.len(), RATE_HISTORY_SECS);
        assert_eq!(s.max_over(RATE_HISTORY_SECS), 0);
        s.advance(10_001_000);
        assert_eq!(s.last_rate(), 4);
        // Time going backwards changes nothing.
        s.add(5, 100);
        assert_eq!(s.max_over(RATE_HISTORY_SECS), 4);
    }
}
