//! Bandwidth: the link carries at most `bytes_per_sec`. Each frame finishes "transmitting" `len / rate` after
//! the previous one, so a burst spreads out in time and a steady sender above the rate is slowed by TCP back
//! pressure once the proxy holds its high-water mark.

use std::time::Duration;

use tokio::time::Instant;

/// The link's transmitter: when it is next free.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shaper {
    next_free: Option<Instant>,
}

impl Shaper {
    /// When a frame of `len` bytes that is ready at `ready` has been sent at `rate` bytes/s.
    pub(crate) fn schedule(&mut self, ready: Instant, len: usize, rate: u64) -> Instant {
        let start = self.next_free.map_or(ready, |free| free.max(ready));
        let done = start + Duration::from_secs_f64(len as f64 / rate.max(1) as f64);
        self.next_free = Some(done);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::testkit::{AB, Client, Pair, seed};
    use crate::proxy::{Fault, FaultKind};

    #[test]
    fn frames_queue_behind_each_other() {
        let t0 = Instant::now();
        let mut s = Shaper::default();
        assert_eq!(s.schedule(t0, 1000, 1000), t0 + Duration::from_secs(1));
        assert_eq!(s.schedule(t0, 500, 1000), t0 + Duration::from_millis(1500));
        // Idle time is not banked: a frame ready later starts when it is ready.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            s.schedule(later, 100, 1000),
            later + Duration::from_millis(100)
        );
    }

    #[tokio::test]
    async fn throttles_a_burst_to_the_rate() {
        const RATE: u64 = 200_000;
        let pair = Pair::new(seed(41)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net.set_fault(
            AB,
            Fault::Bandwidth {
                bytes_per_sec: RATE,
            }
            .into(),
        );
        let start = Instant::now();
        let frames = 40u64;
        for seq in 0..frames {
            assert!(c.send(seq, 1000).await);
        }
        let mut got = Vec::new();
        while got.len() < frames as usize {
            match c.recv(Duration::from_secs(10)).await {
                crate::proxy::testkit::Got::Frame(seq) => got.push(seq),
                other => panic!("after {} frames: {other:?}", got.len()),
            }
        }
        let elapsed = start.elapsed();
        let bytes = frames * (4 + 12 + 1000);
        let floor = Duration::from_secs_f64(bytes as f64 / RATE as f64 * 0.95);
        eprintln!("{bytes} bytes at {RATE} B/s took {elapsed:?} (floor {floor:?})");
        assert!(
            elapsed >= floor,
            "faster than the limit: {elapsed:?} < {floor:?}"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "far slower than the limit: {elapsed:?}"
        );
        assert_eq!(got, (0..frames).collect::<Vec<_>>());
        pair.net.remove_fault(AB, FaultKind::Bandwidth);
        assert!(c.drain_to_marker(Duration::from_secs(5)).await.is_empty());
    }
}
