//! [`HoldBack`]: lines for a console, held back for a moment and released in the order they happened.
//!
//! Nodes are polled one after another, so a console learns of events out of order: what happened at 0.151 s
//! may arrive after what happened at 0.156 s. Holding each line until it is [`HoldBack::hold_ms`] old lets the
//! late ones take their place. Pure: the caller passes session time.

/// Console lines waiting for their turn.
#[derive(Clone, Debug, Default)]
pub struct HoldBack {
    /// The shortest a line waits (session milliseconds after it happened) before it is printed.
    pub hold_ms: u64,
    /// (happened, arrival order, text, whether it is a summary that a newer summary replaces).
    pending: Vec<(u64, u64, String, bool)>,
    pushed: u64,
    /// How late lines arrived lately: (arrival, lateness), the last [`LATENESS_WINDOW_MS`].
    lateness: std::collections::VecDeque<(u64, u64)>,
    /// When the newest line released so far happened: a line that arrives after it, though it happened
    /// earlier, is released at this time with its own time in its text, so released times never go back.
    released: u64,
}

/// How far back arrivals count towards the hold (a loaded machine polls late; the hold grows to match).
const LATENESS_WINDOW_MS: u64 = 10_000;
/// The longest a line is ever held.
pub const MAX_HOLD_MS: u64 = 2_000;

impl HoldBack {
    /// An empty hold-back of `hold_ms` milliseconds.
    pub fn new(hold_ms: u64) -> Self {
        Self {
            hold_ms,
            ..Self::default()
        }
    }

    /// Queues a line that happened at session time `at_ms` and arrived at `now_ms`.
    pub fn push(&mut self, at_ms: u64, now_ms: u64, text: String) {
        self.queue(at_ms, text, false);
        self.note_lateness(at_ms, now_ms);
    }

    /// Queues a line that happened at `at_ms` and arrived at `now_ms` late for a reason no hold can mend (a
    /// host's backlog, sent when the host is back after an outage): it takes its place like any line (with
    /// its own time in words if newer lines were released), but its lateness does not make the hold longer,
    /// which would delay every line after it by up to 2 s for the next 10 s.
    pub fn push_backlog(&mut self, at_ms: u64, now_ms: u64, text: String) {
        self.queue(at_ms, text, false);
        self.note_lateness(now_ms, now_ms);
    }

    /// Queues a summary of the state as of `now_ms` (the console's "leader 3 term 2 commit 812"). A summary
    /// still held when a newer one comes is dropped: it described a state that no longer holds by the time it
    /// would print, and it is stamped with the time it was learned, so a line that happened earlier but
    /// arrived later (a node polled later) would print before it and contradict it ("n9 leads term 2", then
    /// "no leader (term 1)").
    pub fn push_summary(&mut self, now_ms: u64, text: String) {
        self.pending.retain(|(_, _, _, summary)| !summary);
        self.queue(now_ms, text, true);
        self.note_lateness(now_ms, now_ms);
    }

    fn queue(&mut self, at_ms: u64, text: String, summary: bool) {
        self.pending.push((at_ms, self.pushed, text, summary));
        self.pushed += 1;
    }

    /// Counts a line that happened at `at_ms` and arrived at `now_ms` towards the hold.
    fn note_lateness(&mut self, at_ms: u64, now_ms: u64) {
        while self
            .lateness
            .front()
            .is_some_and(|(t, _)| t + LATENESS_WINDOW_MS < now_ms)
        {
            self.lateness.pop_front();
        }
        self.lateness
            .push_back((now_ms, now_ms.saturating_sub(at_ms)));
    }

    /// How long lines are held now: [`HoldBack::hold_ms`], or longer when lines lately arrived later than
    /// that (up to `MAX_HOLD_MS`, 2 s).
    pub fn current_hold(&self) -> u64 {
        let late = self.lateness.iter().map(|(_, l)| *l).max().unwrap_or(0);
        (late + late / 4).clamp(self.hold_ms, MAX_HOLD_MS.max(self.hold_ms))
    }

    /// The lines that happened at least [`HoldBack::current_hold`] before `now_ms`, oldest first (ties in
    /// arrival order). The times returned never go back across calls: a line that arrived later than even
    /// the grown hold, after newer lines were released, comes out at the newest released time with
    /// "(happened at 12.345s, learned late)" added to its text.
    pub fn release(&mut self, now_ms: u64) -> Vec<(u64, String)> {
        self.pending.sort_by_key(|(at, seq, _, _)| (*at, *seq));
        let hold = self.current_hold();
        let ready = self
            .pending
            .iter()
            .take_while(|(at, _, _, _)| at.saturating_add(hold) <= now_ms)
            .count();
        let released = &mut self.released;
        self.pending
            .drain(..ready)
            .map(|(at, _, text, _)| {
                if at < *released {
                    let late = format!(
                        "{text} (happened at {:.3}s, learned late)",
                        at as f64 / 1000.0
                    );
                    (*released, late)
                } else {
                    *released = at;
                    (at, text)
                }
            })
            .collect()
    }

    /// Every line still held, oldest first: for the end of the session.
    pub fn drain(&mut self) -> Vec<(u64, String)> {
        self.release(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_in_the_order_they_happened_once_old_enough() {
        let mut h = HoldBack::new(300);
        h.push(156, 160, "b".into());
        h.push(151, 170, "a".into());
        h.push(156, 170, "c".into());
        assert!(h.release(400).is_empty(), "nothing is 300 ms old yet");
        assert_eq!(
            h.release(456),
            [(151, "a".into()), (156, "b".into()), (156, "c".into())]
        );
        h.push(900, 900, "late".into());
        h.push(500, 600, "early".into());
        assert_eq!(h.release(850), [(500, "early".into())]);
        assert_eq!(h.drain(), [(900, "late".into())]);
        assert!(h.drain().is_empty());
    }

    #[test]
    fn a_summary_still_held_when_a_newer_one_comes_is_dropped() {
        let mut h = HoldBack::new(300);
        h.push_summary(1_000, "no leader (term 1) commit 10".into());
        // The new leader's own report happened before the summary above but arrived after it.
        h.push(900, 1_100, "n9 leads term 2".into());
        h.push_summary(1_100, "leader 9 term 2 commit 10".into());
        assert_eq!(
            h.drain(),
            [
                (900, "n9 leads term 2".to_string()),
                (1_100, "leader 9 term 2 commit 10".to_string())
            ]
        );
        // One already printed stays printed.
        h.push_summary(2_000, "no leader (term 2) commit 10".into());
        assert_eq!(h.release(3_000).len(), 1);
        h.push_summary(3_000, "leader 4 term 3 commit 11".into());
        assert_eq!(h.drain().len(), 1);
    }

    #[test]
    fn lines_arriving_late_make_the_hold_longer_for_a_while() {
        let mut h = HoldBack::new(300);
        // A loaded machine: this line arrived 800 ms after it happened.
        h.push(1_000, 1_800, "slow poll".into());
        assert_eq!(h.current_hold(), 1_000);
        h.push(1_900, 1_900, "b".into());
        h.push(1_500, 2_300, "a, late again".into());
        assert!(h.release(2_800).iter().all(|(at, _)| *at <= 1_800));
        assert_eq!(
            h.release(2_900),
            [(1_900, "b".to_string())],
            "b waits its full hold"
        );
        // The window forgets old lateness.
        h.push(20_000, 20_000, "calm".into());
        assert_eq!(h.current_hold(), 300);
        assert_eq!(HoldBack::new(300).current_hold(), 300);
    }

    #[test]
    fn a_backlog_line_takes_its_place_without_growing_the_hold() {
        let mut h = HoldBack::new(300);
        h.push(2_000, 2_000, "a".into());
        assert_eq!(h.release(2_300), [(2_000, "a".to_string())]);
        h.push_backlog(1_500, 2_400, "from the backlog".into());
        h.push_backlog(2_100, 2_400, "b".into());
        assert_eq!(h.current_hold(), 300);
        assert_eq!(
            h.release(2_400),
            [
                (
                    2_000,
                    "from the backlog (happened at 1.500s, learned late)".to_string()
                ),
                (2_100, "b".to_string())
            ]
        );
    }

    #[test]
    fn a_line_later_than_the_hold_comes_out_in_place_with_its_own_time_in_words() {
        let mut h = HoldBack::new(300);
        h.push(1_000, 1_000, "a".into());
        assert_eq!(h.release(1_300), [(1_000, "a".to_string())]);
        // Polled 400 ms late on a loaded machine, after "a" was printed.
        h.push(900, 1_300, "earlier".into());
        h.push(1_100, 1_300, "b".into());
        assert_eq!(
            h.drain(),
            [
                (
                    1_000,
                    "earlier (happened at 0.900s, learned late)".to_string()
                ),
                (1_100, "b".to_string())
            ]
        );
    }
}
