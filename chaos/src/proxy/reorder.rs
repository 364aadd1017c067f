//! Reorder: with probability `p` a frame waits an extra uniform delay in `[0, max_extra]`, and frames behind it
//! may overtake it. Frames not chosen keep their place relative to each other.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::link::ReorderPlan;

/// The extra delay for the next frame (zero when it is not chosen).
pub(crate) fn extra_delay(r: &ReorderPlan, rng: &mut ChaCha8Rng) -> Duration {
    if r.max_extra.is_zero() || !rng.random_bool(r.p) {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.random_range(0..=r.max_extra.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use crate::proxy::testkit::{AB, Client, Pair, poll_until, seed};
    use crate::proxy::{Fault, FaultKind};

    #[tokio::test]
    async fn reorders_without_losing_or_tearing() {
        const N: u64 = 300;
        let pair = Pair::new(seed(31)).await;
        let mut c = Client::connect(pair.proxy).await;
        let fault = Fault::Reorder {
            max_extra: Duration::from_millis(30),
            p: 0.3,
        };
        pair.net.set_fault(AB, fault.into());
        for seq in 0..N {
            assert!(c.send(seq, (seq as usize * 7) % 200).await);
        }
        poll_until("all frames delivered", Duration::from_secs(10), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_forwarded == N, format!("{s:?}"))
        })
        .await;
        pair.net.remove_fault(AB, FaultKind::Reorder);
        let got = c.drain_to_marker(Duration::from_secs(10)).await;
        let inversions = got.windows(2).filter(|w| w[0] > w[1]).count();
        eprintln!("{inversions} inversions in {N} frames");
        assert!(inversions > 0, "nothing was reordered");
        assert_eq!(got.len() as u64, N);
        assert_eq!(
            got.iter().copied().collect::<BTreeSet<_>>(),
            (0..N).collect::<BTreeSet<_>>()
        );
        assert_eq!(pair.echo.torn(), 0);
        assert!(pair.net.link_stats(AB).unwrap().frames_delayed > 0);
    }

    #[tokio::test]
    async fn removal_releases_frames_still_held() {
        let pair = Pair::new(seed(32)).await;
        let mut c = Client::connect(pair.proxy).await;
        let fault = Fault::Reorder {
            max_extra: Duration::from_secs(60),
            p: 1.0,
        };
        pair.net.set_fault(AB, fault.into());
        for seq in 0..10 {
            assert!(c.send(seq, 8).await);
        }
        poll_until("10 frames held", Duration::from_secs(5), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_queued == 10, format!("{s:?}"))
        })
        .await;
        pair.net.remove_fault(AB, FaultKind::Reorder);
        let mut got = c.drain_to_marker(Duration::from_secs(5)).await;
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
