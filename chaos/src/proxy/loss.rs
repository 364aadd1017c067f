//! Loss: drop whole frames with probability `p`.
//!
//! The proxy cuts the stream at frame boundaries, so a dropped frame vanishes completely and the receiver's
//! decoder never sees half of one. Dropped frames are counted on the link and are the only data any fault is
//! allowed to lose (with blackhole, which is loss with `p = 1`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Whether to drop the next frame.
pub(crate) fn drops(p: f64, rng: &mut ChaCha8Rng) -> bool {
    rng.random_bool(p)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::proxy::testkit::{AB, Client, Pair, seed};
    use crate::proxy::{Fault, FaultKind, FaultSpec};

    #[tokio::test]
    async fn drops_about_p_of_whole_frames() {
        const N: u64 = 3000;
        const P: f64 = 0.2;
        let pair = Pair::new(seed(11)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net
            .set_fault(AB, FaultSpec::permanent(Fault::Loss { p: P }));
        for seq in 0..N {
            // Sizes vary so frames straddle reads in every way.
            assert!(c.send(seq, (seq as usize * 37) % 700).await);
        }
        // Once every frame is judged, remove the fault so the marker gets through.
        crate::proxy::testkit::poll_until("all frames judged", Duration::from_secs(10), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_forwarded + s.frames_dropped == N, format!("{s:?}"))
        })
        .await;
        pair.net.remove_fault(AB, FaultKind::Loss);
        let got = c.drain_to_marker(Duration::from_secs(10)).await;
        let stats = pair.net.link_stats(AB).unwrap();
        let lost = N - got.len() as u64;
        // Four standard deviations of a binomial: fails by chance about once in 15,000 seeds.
        let sd = (N as f64 * P * (1.0 - P)).sqrt();
        let expect = N as f64 * P;
        eprintln!("lost {lost} of {N} (expected {expect} ± {:.0})", 4.0 * sd);
        assert!(
            (lost as f64 - expect).abs() < 4.0 * sd,
            "lost {lost} of {N}"
        );
        assert_eq!(stats.frames_dropped, lost, "{stats:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "loss reordered frames");
        assert_eq!(pair.echo.torn(), 0, "a frame was torn");
        assert_eq!(pair.echo.received().len(), got.len() + 1);
    }

    #[tokio::test]
    async fn p_one_drops_everything_and_p_zero_nothing() {
        let pair = Pair::new(seed(12)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net.set_fault(AB, Fault::Loss { p: 1.0 }.into());
        for seq in 0..50 {
            assert!(c.send(seq, 10).await);
        }
        crate::proxy::testkit::poll_until("50 drops", Duration::from_secs(5), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_dropped == 50, format!("{s:?}"))
        })
        .await;
        pair.net.set_fault(AB, Fault::Loss { p: 0.0 }.into());
        for seq in 50..100 {
            assert!(c.send(seq, 10).await);
        }
        let got = c.drain_to_marker(Duration::from_secs(5)).await;
        assert_eq!(got, (50..100).collect::<Vec<_>>());
    }
}
