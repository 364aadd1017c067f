//! Blackhole: the link accepts connections and delivers nothing.
//!
//! Like a cut cable under a connection that stays up: frames sent while the blackhole is on are dropped (and
//! counted), not held, so healing does not flood the receiver with stale traffic. Frames already queued by a
//! delaying fault when the blackhole starts were judged earlier and are still delivered. Because a link covers
//! every byte its sender sends, a blackhole on `a -> b` silences `a`'s requests to `b` and `a`'s replies to
//! `b`, while `b`'s requests still reach `a`: a one-way partition. Partition shapes are built from these.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::proxy::testkit::{A, AB, B, BA, Client, Echo, Got, poll_until, seed};
    use crate::proxy::{Fault, FaultKind, Network};

    #[tokio::test]
    async fn one_way_blackhole_blocks_one_direction_only() {
        let net = Network::new(seed(51));
        let (echo_a, echo_b) = (Echo::start().await, Echo::start().await);
        net.set_upstream(A, echo_a.addr);
        net.set_upstream(B, echo_b.addr);
        let mut from_a = Client::connect(net.add_link(A, B).await.unwrap()).await;
        let mut from_b = Client::connect(net.add_link(B, A).await.unwrap()).await;
        from_a.rtt(0, 8).await;
        from_b.rtt(0, 8).await;

        net.set_fault(AB, Fault::Blackhole.into());
        for seq in 1..=10 {
            assert!(from_a.send(seq, 64).await);
            assert!(from_b.send(seq, 64).await);
        }
        // b's requests reach a (2->1 is open); a's echoes to b and a's requests to b are dropped (1->2 is cut).
        poll_until(
            "b's frames at a, a's bytes dropped",
            Duration::from_secs(5),
            || {
                let at_a = echo_a.received().len();
                let dropped = net.link_stats(AB).unwrap().frames_dropped;
                (
                    at_a == 11 && dropped == 20,
                    format!("a received {at_a}, 1->2 dropped {dropped}"),
                )
            },
        )
        .await;
        assert_eq!(echo_b.received(), vec![0], "a's requests crossed the cut");
        assert_eq!(from_a.recv(Duration::from_millis(50)).await, Got::Timeout);
        assert_eq!(from_b.recv(Duration::from_millis(50)).await, Got::Timeout);
        assert_eq!(net.link_stats(BA).unwrap().frames_dropped, 0);

        // Healing drops nothing more; what was sent during the cut stays lost, the connections still work.
        net.remove_fault(AB, FaultKind::Blackhole);
        assert!(
            from_a
                .drain_to_marker(Duration::from_secs(5))
                .await
                .is_empty()
        );
        assert!(
            from_b
                .drain_to_marker(Duration::from_secs(5))
                .await
                .is_empty()
        );
        from_a.rtt(99, 8).await;
        from_b.rtt(99, 8).await;
        assert_eq!(echo_a.torn() + echo_b.torn(), 0);
    }

    #[tokio::test]
    async fn new_connections_are_accepted_but_silent() {
        let net = Network::new(seed(52));
        let echo_b = Echo::start().await;
        net.set_upstream(B, echo_b.addr);
        let proxy = net.add_link(A, B).await.unwrap();
        net.set_fault(AB, Fault::Blackhole.into());
        let mut c = Client::connect(proxy).await;
        assert!(c.send(1, 8).await);
        assert_eq!(c.recv(Duration::from_millis(100)).await, Got::Timeout);
        net.heal_all();
        c.rtt(2, 8).await;
        assert_eq!(echo_b.received(), vec![2]);
    }
}
