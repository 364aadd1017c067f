//! Duplicate: send a frame twice with probability `p`; the copy follows the original directly (both go through
//! whatever latency or reorder is also set).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Whether to send the next frame twice.
pub(crate) fn duplicates(p: f64, rng: &mut ChaCha8Rng) -> bool {
    rng.random_bool(p)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::proxy::testkit::{AB, Client, Pair, poll_until, seed};
    use crate::proxy::{Fault, FaultKind};

    #[tokio::test]
    async fn sends_about_p_of_frames_twice() {
        const N: u64 = 2000;
        const P: f64 = 0.25;
        let pair = Pair::new(seed(21)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net.set_fault(AB, Fault::Duplicate { p: P }.into());
        for seq in 0..N {
            assert!(c.send(seq, (seq as usize * 13) % 300).await);
        }
        poll_until("all frames judged", Duration::from_secs(10), || {
            let s = pair.net.link_stats(AB).unwrap();
            (
                s.frames_forwarded == N + s.frames_duplicated,
                format!("{s:?}"),
            )
        })
        .await;
        pair.net.remove_fault(AB, FaultKind::Duplicate);
        let got = c.drain_to_marker(Duration::from_secs(10)).await;
        let dups = got.len() as u64 - N;
        let sd = (N as f64 * P * (1.0 - P)).sqrt();
        eprintln!(
            "{dups} duplicates of {N} (expected {} ± {:.0})",
            N as f64 * P,
            4.0 * sd
        );
        assert!(
            (dups as f64 - N as f64 * P).abs() < 4.0 * sd,
            "{dups} duplicates"
        );
        assert_eq!(pair.net.link_stats(AB).unwrap().frames_duplicated, dups);
        // Every frame arrives once or twice, copies adjacent, order kept.
        assert!(
            got.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
            "order broken"
        );
        assert_eq!(got.first(), Some(&0));
        assert_eq!(got.last(), Some(&(N - 1)));
        assert_eq!(pair.echo.torn(), 0);
    }
}
