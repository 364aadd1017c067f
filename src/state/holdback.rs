//! [`HoldBack`]: lines for a console, held back for a moment and released in the order they happened.
//!
//! Nodes are polled one after another, so a console learns of events out of order: what happened at 0.151 s
//! may arrive after what happened at 0.156 s. Holding each line until it is [`HoldBack::hold_ms`] old lets the
//! late ones take their place. Pure: the caller passes session time.

/// Console lines waiting for their turn.
#[derive(Clone, Debug, Default)]
pub struct HoldBack {
    /// How long a line waits (session milliseconds after it happened) before it is printed.
    pub hold_ms: u64,
    pending: Vec<(u64, u64, String)>,
    pushed: u64,
}

impl HoldBack {
    /// An empty hold-back of `hold_ms` milliseconds.
    pub fn new(hold_ms: u64) -> Self {
        Self {
            hold_ms,
            ..Self::default()
        }
    }

    /// Queues a line that happened at session time `at_ms`.
    pub fn push(&mut self, at_ms: u64, text: String) {
        self.pending.push((at_ms, self.pushed, text));
        self.pushed += 1;
    }

    /// The lines that happened at least `hold_ms` before `now_ms`, oldest first (ties in arrival order).
    pub fn release(&mut self, now_ms: u64) -> Vec<(u64, String)> {
        self.pending.sort_by_key(|(at, seq, _)| (*at, *seq));
        let ready = self
            .pending
            .iter()
            .take_while(|(at, _, _)| at + self.hold_ms <= now_ms)
            .count();
        self.pending
            .drain(..ready)
            .map(|(at, _, text)| (at, text))
            .collect()
    }

    /// Every line still held, oldest first: for the end of the session.
    pub fn drain(&mut self) -> Vec<(u64, String)> {
        self.release(u64::MAX - self.hold_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_in_the_order_they_happened_once_old_enough() {
        let mut h = HoldBack::new(300);
        h.push(156, "b".into());
        h.push(151, "a".into());
        h.push(156, "c".into());
        assert!(h.release(400).is_empty(), "nothing is 300 ms old yet");
        assert_eq!(
            h.release(456),
            [(151, "a".into()), (156, "b".into()), (156, "c".into())]
        );
        h.push(900, "late".into());
        h.push(500, "early".into());
        assert_eq!(h.release(850), [(500, "early".into())]);
        assert_eq!(h.drain(), [(900, "late".into())]);
        assert!(h.drain().is_empty());
    }
}
