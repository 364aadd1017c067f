//! Latency: every frame on the link waits a drawn delay (fixed, uniform `base ± jitter`, or normal with
//! standard deviation `jitter`), never below zero.
//!
//! Latency models a longer wire, not a shuffling one: frames keep their order, so a frame whose draw is shorter
//! than its predecessor's leaves right after it. Use [`Fault::Reorder`](super::Fault::Reorder) to shuffle.
//! Removing the fault delivers every held frame at once.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Normal};

use super::Distribution;
use super::link::LatencyPlan;

/// Draws one frame's delay.
pub(crate) fn sample(l: &LatencyPlan, rng: &mut ChaCha8Rng) -> Duration {
    let base = l.base.as_secs_f64();
    let jitter = l.jitter.as_secs_f64();
    let secs = match l.dist {
        Distribution::Fixed => return l.base,
        _ if jitter == 0.0 => return l.base,
        Distribution::Uniform => base + rng.random_range(-jitter..=jitter),
        Distribution::Normal => match Normal::new(base, jitter) {
            Ok(n) => n.sample(rng),
            Err(_) => base,
        },
    };
    Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::testkit::{AB, BA, Client, Got, Pair, poll_until, seed};
    use crate::proxy::{Fault, FaultKind, FaultSpec};
    use rand::SeedableRng;

    fn plan(base: u64, jitter: u64, dist: Distribution) -> LatencyPlan {
        LatencyPlan {
            base: Duration::from_millis(base),
            jitter: Duration::from_millis(jitter),
            dist,
        }
    }

    #[test]
    fn draws_follow_the_distribution() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed(7));
        let fixed = plan(100, 30, Distribution::Fixed);
        assert!((0..100).all(|_| sample(&fixed, &mut rng) == Duration::from_millis(100)));

        let uniform = plan(100, 30, Distribution::Uniform);
        let draws: Vec<f64> = (0..5000)
            .map(|_| sample(&uniform, &mut rng).as_secs_f64())
            .collect();
        assert!(
            draws.iter().all(|&d| (0.070..=0.130).contains(&d)),
            "uniform draw out of range"
        );
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.100).abs() < 0.002, "uniform mean {mean}");

        let normal = plan(100, 10, Distribution::Normal);
        let draws: Vec<f64> = (0..5000)
            .map(|_| sample(&normal, &mut rng).as_secs_f64())
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.100).abs() < 0.001, "normal mean {mean}");
        assert!(
            (var.sqrt() - 0.010).abs() < 0.001,
            "normal sd {}",
            var.sqrt()
        );

        let wide = plan(5, 50, Distribution::Normal);
        assert!((0..1000).all(|_| sample(&wide, &mut rng) >= Duration::ZERO));
    }

    #[tokio::test]
    async fn delays_requests_on_an_open_connection() {
        let pair = Pair::new(seed(1)).await;
        let mut c = Client::connect(pair.proxy).await;
        c.rtt(0, 16).await; // the connection exists before the fault
        pair.net.set_fault(AB, Fault::latency_ms(40).into());
        let mut rtts: Vec<Duration> = Vec::new();
        for seq in 1..=9 {
            rtts.push(c.rtt(seq, 16).await);
        }
        rtts.sort();
        eprintln!("rtts with 40 ms on 1->2: {rtts:?}");
        assert!(
            rtts[0] >= Duration::from_millis(40),
            "a frame beat its delay: {rtts:?}"
        );
        // Generous bound: only catches delays applied twice or not released.
        assert!(
            rtts[4] < Duration::from_millis(200),
            "median far above 40 ms: {rtts:?}"
        );
        let stats = pair.net.link_stats(AB).unwrap();
        assert_eq!(stats.frames_delayed, 9, "{stats:?}");
    }

    #[tokio::test]
    async fn delays_replies_when_set_on_the_reverse_link() {
        let pair = Pair::new(seed(2)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net.set_fault(BA, Fault::latency_ms(30).into());
        let rtt = c.rtt(1, 16).await;
        assert!(
            rtt >= Duration::from_millis(30),
            "reply not delayed: {rtt:?}"
        );
        assert_eq!(pair.net.link_stats(BA).unwrap().frames_delayed, 1);
        assert_eq!(pair.net.link_stats(AB).unwrap().frames_delayed, 0);
    }

    #[tokio::test]
    async fn removal_delivers_held_frames_in_order() {
        let pair = Pair::new(seed(3)).await;
        let mut c = Client::connect(pair.proxy).await;
        let spec = FaultSpec::permanent(Fault::Latency {
            base: Duration::from_secs(30),
            jitter: Duration::from_secs(5),
            dist: Distribution::Uniform,
        });
        pair.net.set_fault(AB, spec);
        for seq in 0..20 {
            assert!(c.send(seq, 100).await);
        }
        poll_until("20 frames held on 1->2", Duration::from_secs(5), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_queued == 20, format!("{s:?}"))
        })
        .await;
        assert_eq!(c.recv(Duration::from_millis(50)).await, Got::Timeout);
        pair.net.remove_fault(AB, FaultKind::Latency);
        let got = c.drain_to_marker(Duration::from_secs(5)).await;
        assert_eq!(
            got,
            (0..20).collect::<Vec<_>>(),
            "held frames lost or reordered"
        );
        assert_eq!(pair.echo.torn(), 0);
        assert_eq!(pair.net.link_stats(AB).unwrap().frames_queued, 0);
    }
}
