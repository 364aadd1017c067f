//! Reset: close the link's connections with a TCP RST and refuse new ones (accept, then reset at once).
//!
//! A TCP connection cannot be reset in one direction only, so a reset on `a -> b` closes every proxied
//! connection that carries `a`'s bytes to `b`: those on the `a -> b` proxy and those on the `b -> a` proxy
//! (where `a` sends replies). Both proxies refuse new connections while it is on.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::proxy::testkit::{A, AB, B, Client, Echo, Got, poll_until, seed};
    use crate::proxy::{Fault, FaultKind, FaultSpec, LinkId, Network};

    async fn expect_closed(c: &mut Client, what: &str) {
        match c.recv(Duration::from_secs(5)).await {
            Got::Closed => {}
            other => panic!("{what}: expected the connection closed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn closes_open_connections_both_ways_and_refuses_new_ones() {
        let net = Network::new(seed(61));
        let (echo_a, echo_b) = (Echo::start().await, Echo::start().await);
        net.set_upstream(A, echo_a.addr);
        net.set_upstream(B, echo_b.addr);
        let (ab, ba) = (
            net.add_link(A, B).await.unwrap(),
            net.add_link(B, A).await.unwrap(),
        );
        let mut from_a = Client::connect(ab).await;
        let mut from_b = Client::connect(ba).await;
        from_a.rtt(0, 8).await;
        from_b.rtt(0, 8).await;

        net.set_fault(AB, Fault::Reset.into());
        expect_closed(&mut from_a, "a's connection on 1->2").await;
        expect_closed(&mut from_b, "b's connection on 2->1 (carries a's replies)").await;
        let mut again = Client::connect(ab).await;
        again.send(1, 8).await;
        expect_closed(&mut again, "a new connection while reset is on").await;
        let s = net.link_stats(AB).unwrap();
        assert!(
            s.connections_refused >= 1 && s.connections_reset >= 1,
            "{s:?}"
        );
        poll_until(
            "no open connections on 1->2",
            Duration::from_secs(5),
            || {
                let s = net.link_stats(AB).unwrap();
                (s.connections_open == 0, format!("{s:?}"))
            },
        )
        .await;

        net.remove_fault(AB, FaultKind::Reset);
        Client::connect(ab).await.rtt(2, 8).await;
        Client::connect(ba).await.rtt(2, 8).await;
    }

    #[tokio::test]
    async fn a_timed_reset_removes_itself() {
        let net = Network::new(seed(62));
        let echo_b = Echo::start().await;
        net.set_upstream(B, echo_b.addr);
        let ab = net.add_link(A, B).await.unwrap();
        let link = LinkId::new(A, B);
        net.set_fault(
            link,
            FaultSpec::lasting(Fault::Reset, Duration::from_millis(100)),
        );
        assert_eq!(net.faults(link).len(), 1);
        poll_until("the reset to expire", Duration::from_secs(5), || {
            let f = net.faults(link);
            (f.is_empty(), format!("{f:?}"))
        })
        .await;
        Client::connect(ab).await.rtt(1, 8).await;
    }
}
