//! How long a snapshot chunk may go unanswered before the leader gives up on it and sends it again.
//!
//! A chunk lost on the way (a lossy link drops whole frames) is noticed only by its missing answer. The fixed
//! deadline this replaces was ten RPC deadlines, 12 s with the default timings, so one lost chunk out of a
//! dozen stalled a 12 MB catch-up for 12 s. The deadline now follows the chunk round trips measured on the
//! link, the way TCP sets its retransmission timeout (RFC 6298, §2; Jacobson and Karels, "Congestion
//! Avoidance and Control", SIGCOMM '88): the smoothed round trip plus four times its mean deviation, so a
//! lost chunk is resent after about one round trip's worth of patience, and a link that turns slower is
//! followed within a few chunks. Each timeout doubles the deadline until an answer comes back (RFC 6298
//! §5.5), so a link slower than the estimate is never flooded with resends: the chunk gets through once the
//! deadline exceeds its real round trip. A resend is harmless in any case: the follower keeps only the
//! bytes at the offset it expects and answers with the offset it holds.

use std::time::Duration;

/// The shortest deadline: below this a loaded machine's scheduling alone looks like loss.
pub(super) const MIN_PATIENCE: Duration = Duration::from_millis(200);

/// The round-trip estimate of snapshot chunks to one peer, and the deadline it gives.
#[derive(Clone, Debug)]
pub(super) struct ChunkPatience {
    /// Smoothed round trip, once one was measured.
    srtt: Option<Duration>,
    /// Mean deviation of the round trip.
    rttvar: Duration,
    /// The deadline for the next chunk.
    rto: Duration,
    /// The longest deadline (also the first one, before anything was measured).
    max: Duration,
}

impl ChunkPatience {
    /// An estimate with nothing measured yet: the first chunk gets `initial`, and no deadline ever exceeds
    /// `max`.
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        ChunkPatience {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(MIN_PATIENCE, max.max(MIN_PATIENCE)),
            max: max.max(MIN_PATIENCE),
        }
    }

    /// The deadline for the next chunk.
    pub(super) fn deadline(&self) -> Duration {
        self.rto
    }

    /// A chunk was answered `rtt` after it was sent.
    pub(super) fn answered(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                // RFC 6298's gains: 1/4 for the deviation, 1/8 for the mean.
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.expect("set above");
        self.rto = (srtt + self.rttvar * 4).clamp(MIN_PATIENCE, self.max);
    }

    /// A chunk went unanswered for the whole deadline: wait twice as long for the next one.
    pub(super) fn timed_out(&mut self) {
        self.rto = (self.rto * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_deadline_follows_measured_round_trips_within_its_bounds() {
        let mut p = ChunkPatience::new(ms(1200), ms(12_000));
        assert_eq!(p.deadline(), ms(1200), "nothing measured yet");
        for _ in 0..20 {
            p.answered(ms(30));
        }
        assert_eq!(p.deadline(), MIN_PATIENCE, "a fast link gets the floor");
        // A link 150 ms each way: about one round trip plus a margin, far below the old 12 s.
        for _ in 0..20 {
            p.answered(ms(320));
        }
        let d = p.deadline();
        assert!(d >= ms(320) && d <= ms(700), "{d:?}");
    }

    #[test]
    fn timeouts_back_off_until_a_slow_chunk_gets_through() {
        let mut p = ChunkPatience::new(ms(300), ms(12_000));
        // The real round trip is 2 s (a 1 MiB chunk at 512 KB/s): deadlines double until one covers it.
        let mut tries = 1;
        while p.deadline() < ms(2000) {
            p.timed_out();
            tries += 1;
        }
        assert_eq!(tries, 4, "300 → 600 → 1200 → 2400 ms");
        p.answered(ms(2000));
        assert!(p.deadline() >= ms(2000), "{:?}", p.deadline());
        for _ in 0..10 {
            p.timed_out();
        }
        assert_eq!(p.deadline(), ms(12_000), "never beyond the maximum");
    }
}
