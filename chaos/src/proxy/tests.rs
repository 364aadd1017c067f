//! Tests across fault kinds: the no-fault path, switching faults under a live stream, partitions over real
//! proxies, upstream changes and counters.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::splice::SPLICE_MIN;
use super::testkit::{A, AB, B, BA, Client, Echo, Got, Pair, poll_until, seed};
use super::*;
use crate::partition::Shape;

#[tokio::test]
async fn passes_frames_of_every_size_untouched() {
    let pair = Pair::new(seed(71)).await;
    let mut c = Client::connect(pair.proxy).await;
    let sizes = [
        0usize,
        1,
        3,
        4,
        5,
        100,
        4096,
        65_535,
        65_536,
        300_000,
        1 << 20,
    ];
    for (seq, &size) in sizes.iter().enumerate() {
        assert!(c.send(seq as u64, size).await);
    }
    let got = c.drain_to_marker(Duration::from_secs(10)).await;
    assert_eq!(got, (0..sizes.len() as u64).collect::<Vec<_>>());
    let s = pair.net.link_stats(AB).unwrap();
    assert_eq!(s.frames_forwarded, sizes.len() as u64 + 1, "{s:?}");
    let body: u64 = sizes.iter().map(|&n| 4 + 12 + n as u64).sum::<u64>() + 16;
    assert_eq!(s.bytes_forwarded, body);
    assert_eq!(
        pair.net.link_stats(BA).unwrap().bytes_forwarded,
        body,
        "echo direction"
    );
    assert_eq!(s.connections_open, 1);
}

/// Faults switch on and off at random moments while frames of random sizes stream both ways; nothing may be
/// torn, lost (no loss fault is used) or reordered (no reorder fault is used).
#[tokio::test]
async fn switching_faults_mid_stream_loses_and_tears_nothing() {
    let seed = seed(72);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pair = Pair::new(seed).await;
    let mut tx = Client::connect(pair.proxy).await;
    let faults = [
        Fault::Latency {
            base: Duration::from_millis(3),
            jitter: Duration::from_millis(2),
            dist: Distribution::Uniform,
        },
        Fault::Bandwidth {
            bytes_per_sec: 20_000_000,
        },
    ];
    const N: u64 = 600;
    for seq in 0..N {
        if rng.random_bool(0.1) {
            let f = &faults[rng.random_range(0..faults.len())];
            let link = if rng.random_bool(0.5) { AB } else { BA };
            if rng.random_bool(0.5) {
                pair.net.set_fault(link, f.clone().into());
            } else {
                pair.net.remove_fault(link, f.kind());
            }
        }
        // Mostly small frames, sometimes big ones that span many reads.
        let size = if rng.random_bool(0.05) {
            rng.random_range(50_000..400_000)
        } else {
            rng.random_range(0..2000)
        };
        assert!(tx.send(seq, size).await);
    }
    pair.net.heal_all();
    let got = tx.drain_to_marker(Duration::from_secs(20)).await;
    assert_eq!(got.len() as u64, N, "frames lost");
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "frames reordered");
    assert_eq!(pair.echo.torn(), 0);
}

/// The same, with duplicate and loss in the mix: frames may vanish or repeat, but never tear.
#[tokio::test]
async fn lossy_faults_mid_stream_never_tear() {
    let seed = seed(73);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pair = Pair::new(seed).await;
    let mut c = Client::connect(pair.proxy).await;
    let faults = [
        Fault::Loss { p: 0.3 },
        Fault::Duplicate { p: 0.3 },
        Fault::Blackhole,
    ];
    for seq in 0..400u64 {
        if rng.random_bool(0.1) {
            let f = &faults[rng.random_range(0..faults.len())];
            if rng.random_bool(0.5) {
                pair.net.set_fault(AB, f.clone().into());
            } else {
                pair.net.remove_fault(AB, f.kind());
            }
        }
        let size = if rng.random_bool(0.05) {
            rng.random_range(50_000..300_000)
        } else {
            rng.random_range(0..1500)
        };
        assert!(c.send(seq, size).await);
    }
    pair.net.heal_all();
    let got = c.drain_to_marker(Duration::from_secs(20)).await;
    assert!(got.windows(2).all(|w| w[0] <= w[1]), "order broken");
    assert_eq!(pair.echo.torn(), 0);
}

#[tokio::test]
async fn partitions_give_the_promised_reachability_through_real_proxies() {
    let nodes: Vec<Endpoint> = (1..=5).collect();
    let net = Network::new(seed(74));
    let mut echoes = BTreeMap::new();
    for &n in &nodes {
        let echo = Echo::start().await;
        net.set_upstream(n, echo.addr);
        echoes.insert(n, echo);
    }
    let mut clients = BTreeMap::new();
    for &a in &nodes {
        for &b in &nodes {
            if a != b {
                clients.insert(
                    (a, b),
                    Client::connect(net.add_link(a, b).await.unwrap()).await,
                );
            }
        }
    }
    let shapes = [
        Shape::Isolate(3),
        Shape::Halves,
        Shape::RandomHalves,
        Shape::Bridge,
        Shape::MajoritiesRing,
        Shape::Custom(vec![vec![1, 4], vec![2], vec![3, 5]]),
    ];
    for (round, shape) in shapes.iter().enumerate() {
        let p = Partition::build(shape, &nodes, round as u64).unwrap();
        net.apply_partition(&p);
        let seq = round as u64 * 1000;
        let before: BTreeMap<_, _> = echoes
            .iter()
            .map(|(&n, e)| (n, e.received().len()))
            .collect();
        for ((a, b), c) in clients.iter_mut() {
            assert!(c.send(seq + a * 10 + b, 4).await);
        }
        // Each echo server must receive exactly the frames from nodes that reach it.
        poll_until(
            &format!("reachability of {}", p.describe()),
            Duration::from_secs(5),
            || {
                let mut ok = true;
                let mut seen = String::new();
                for (&b, e) in &echoes {
                    let recv = &e.received()[before[&b]..];
                    let mut from: Vec<u64> = recv.iter().map(|s| (s - seq) / 10).collect();
                    from.sort();
                    let want: Vec<u64> = nodes
                        .iter()
                        .copied()
                        .filter(|&a| a != b && p.reaches(a, b))
                        .collect();
                    ok &= from == want;
                    seen += &format!("{b} heard {from:?} want {want:?}; ");
                }
                (ok, seen)
            },
        )
        .await;
        // Replies only return where both directions are open; drain them so the next round starts clean.
        net.heal_all();
        for c in clients.values_mut() {
            let _ = c.drain_to_marker(Duration::from_secs(5)).await;
        }
    }
}

#[tokio::test]
async fn a_new_partition_replaces_the_old_one() {
    let net = Network::new(1);
    let nodes = [1, 2, 3];
    net.apply_partition(&Partition::build(&Shape::Isolate(1), &nodes, 0).unwrap());
    assert_eq!(
        net.faults(LinkId::new(1, 2)),
        vec![FaultSpec::permanent(Fault::Blackhole)]
    );
    net.set_fault(LinkId::new(2, 3), Fault::latency_ms(5).into());
    net.apply_partition(&Partition::build(&Shape::Isolate(3), &nodes, 0).unwrap());
    assert!(net.faults(LinkId::new(1, 2)).is_empty());
    assert_eq!(
        net.faults(LinkId::new(3, 1)),
        vec![FaultSpec::permanent(Fault::Blackhole)]
    );
    let f = net.faults(LinkId::new(2, 3));
    assert_eq!(f.len(), 2, "latency kept beside the blackhole: {f:?}");
    net.heal_all();
    assert!(net.stats().iter().all(|s| s.faults.is_empty()));
}

#[tokio::test]
async fn set_fault_replaces_the_same_kind_and_stats_list_faults() {
    let net = Network::new(1);
    net.set_fault(AB, Fault::latency_ms(10).into());
    net.set_fault(AB, Fault::Loss { p: 0.5 }.into());
    net.set_fault(AB, Fault::latency_ms(20).into());
    assert_eq!(
        net.faults(AB),
        vec![
            FaultSpec::permanent(Fault::latency_ms(20)),
            FaultSpec::permanent(Fault::Loss { p: 0.5 })
        ]
    );
    let stats = net.stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].faults.len(), 2);
    net.clear_link(AB);
    assert!(net.faults(AB).is_empty());
    assert!(Fault::Loss { p: 1.5 }.validate().is_err());
    assert!(Fault::Bandwidth { bytes_per_sec: 0 }.validate().is_err());
    assert!(
        Fault::Reorder {
            max_extra: Duration::ZERO,
            p: 0.5
        }
        .validate()
        .is_ok()
    );
    assert_eq!(Fault::Loss { p: 0.25 }.to_string(), "loss 25.0%");
}

#[tokio::test]
async fn new_connections_follow_a_changed_upstream() {
    let pair = Pair::new(seed(75)).await;
    let mut old = Client::connect(pair.proxy).await;
    old.rtt(1, 8).await;
    let moved = Echo::start().await;
    pair.net.set_upstream(B, moved.addr);
    Client::connect(pair.proxy).await.rtt(2, 8).await;
    old.rtt(3, 8).await;
    assert_eq!(pair.echo.received(), vec![1, 3]);
    assert_eq!(moved.received(), vec![2]);
}

#[tokio::test]
async fn unknown_upstream_closes_the_client_and_counts_it() {
    let net = Network::new(1);
    let proxy = net.add_link(A, B).await.unwrap();
    assert_eq!(
        net.add_link(A, B).await.unwrap(),
        proxy,
        "add_link is idempotent"
    );
    let mut c = Client::connect(proxy).await;
    assert_eq!(
        c.recv(Duration::from_secs(5)).await,
        super::testkit::Got::Closed
    );
    assert_eq!(net.link_stats(AB).unwrap().upstream_failures, 1);
}

#[tokio::test]
async fn dropping_the_network_closes_its_connections() {
    let pair = Pair::new(1).await;
    let mut c = Client::connect(pair.proxy).await;
    c.rtt(1, 8).await;
    drop(pair.net);
    assert_eq!(
        c.recv(Duration::from_secs(5)).await,
        super::testkit::Got::Closed
    );
}

/// The whole wire form (length prefix included) of test frame `seq`.
fn wire(seq: u64, size: usize) -> Vec<u8> {
    let p = super::testkit::payload(seq, size);
    let mut v = (p.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&p);
    v
}

#[tokio::test]
async fn a_fault_set_mid_frame_spares_the_frame_already_begun() {
    let pair = Pair::new(seed(76)).await;
    let mut c = Client::connect(pair.proxy).await;
    let first = wire(0, 10_000);
    c.send_raw(&first[..2]).await; // half a length prefix
    poll_until("2 bytes through", Duration::from_secs(5), || {
        let s = pair.net.link_stats(AB).unwrap();
        (s.bytes_forwarded == 2, format!("{s:?}"))
    })
    .await;
    pair.net.set_fault(AB, Fault::Loss { p: 1.0 }.into());
    c.send_raw(&first[2..5000]).await;
    let mut rest = first[5000..].to_vec();
    rest.extend(wire(1, 100)); // begins under the fault: dropped
    c.send_raw(&rest).await;
    poll_until("frame 1 dropped", Duration::from_secs(5), || {
        let s = pair.net.link_stats(AB).unwrap();
        (s.frames_dropped == 1, format!("{s:?}"))
    })
    .await;
    pair.net.remove_fault(AB, FaultKind::Loss);
    assert_eq!(c.drain_to_marker(Duration::from_secs(5)).await, vec![0]);
    assert_eq!(pair.echo.torn(), 0);
}

#[tokio::test]
async fn a_frame_held_whole_under_a_fault_survives_its_removal() {
    let pair = Pair::new(seed(77)).await;
    let mut c = Client::connect(pair.proxy).await;
    pair.net.set_fault(AB, Fault::latency_ms(10).into());
    let frame = wire(0, 50_000);
    c.send_raw(&frame[..3]).await;
    c.send_raw(&frame[3..20_000]).await;
    // The proxy has read part of a frame while the fault is on; it must not forward the part on its own.
    assert_eq!(
        c.recv(Duration::from_millis(50)).await,
        super::testkit::Got::Timeout
    );
    assert_eq!(pair.net.link_stats(AB).unwrap().bytes_forwarded, 0);
    pair.net.remove_fault(AB, FaultKind::Latency);
    c.send_raw(&frame[20_000..]).await;
    assert_eq!(c.drain_to_marker(Duration::from_secs(5)).await, vec![0]);
    assert_eq!(pair.echo.torn(), 0);
}

/// Bytes of `link` that went through the splice path rather than being copied.
fn spliced(net: &Network, link: LinkId) -> u64 {
    net.inner
        .shared
        .existing(link)
        .map_or(0, |l| l.counters.bytes_spliced.load(Relaxed))
}

/// A bulk transfer of big and small frames on the no-fault path: every byte arrives intact and in order both
/// ways, the frame and byte counters are exact, and the big bodies were spliced rather than copied.
#[tokio::test]
async fn a_bulk_transfer_through_the_splice_path_is_byte_exact_and_counted() {
    let seed = seed(78);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pair = Pair::new(seed).await;
    let (mut tx, mut rx) = Client::connect(pair.proxy).await.into_halves();
    // Mostly big frames (the splice path), with small ones between (the copying path, and a change of read
    // size at each switch).
    let sizes: Vec<usize> = (0..120)
        .map(|_| match rng.random_range(0..10) {
            0..=2 => rng.random_range(0..3000),
            3 => rng.random_range(16_000..70_000),
            _ => rng.random_range(100_000..600_000),
        })
        .collect();
    let n = sizes.len() as u64;
    let writer = {
        let sizes = sizes.clone();
        tokio::spawn(async move {
            for (seq, &size) in sizes.iter().enumerate() {
                tx.send(super::testkit::payload(seq as u64, size))
                    .await
                    .expect("send");
            }
            tx.send(super::testkit::payload(super::testkit::MARKER, 0))
                .await
                .expect("send marker");
            tx
        })
    };
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(deadline, rx.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} frames", got.len()))
            .expect("connection closed early")
            .expect("frame");
        let seq = super::testkit::check(&frame).unwrap_or_else(|e| panic!("{e}"));
        if seq == super::testkit::MARKER {
            break;
        }
        got.push(seq);
    }
    let _tx = writer.await.expect("writer");
    assert_eq!(got, (0..n).collect::<Vec<_>>());
    assert_eq!(pair.echo.torn(), 0);
    let bytes: u64 = sizes.iter().map(|&s| 4 + 12 + s as u64).sum::<u64>() + 16;
    // Read-after-write: the echo direction's counters are final once the marker is back; poll the
    // forward ones to the same end to be safe.
    poll_until("counters final", Duration::from_secs(5), || {
        let ab = pair.net.link_stats(AB).unwrap();
        let ba = pair.net.link_stats(BA).unwrap();
        (
            ab.frames_forwarded == n + 1
                && ab.bytes_forwarded == bytes
                && ba.frames_forwarded == n + 1
                && ba.bytes_forwarded == bytes,
            format!("{ab:?} {ba:?} want {} frames, {bytes} bytes", n + 1),
        )
    })
    .await;
    // Each big body is spliced but for what one copying read can have taken of it.
    let floor: u64 = sizes
        .iter()
        .map(|&s| (12 + s as u64).saturating_sub(super::pipe::READ_CHUNK as u64 + SPLICE_MIN))
        .sum();
    for link in [AB, BA] {
        let s = spliced(&pair.net, link);
        assert!(
            s >= floor && s > 0,
            "{link}: {s} bytes spliced of {bytes}, expected at least {floor}"
        );
    }
}

/// A fault switched on while a big body is being spliced leaves that frame whole and applies from the next
/// frame boundary: both for the first big frame (its header read, the rest of its body spliced) and for one
/// that follows a big frame (header and body spliced together).
#[tokio::test]
async fn a_fault_set_during_a_spliced_body_applies_from_the_next_frame() {
    let pair = Pair::new(seed(79)).await;
    let mut c = Client::connect(pair.proxy).await;
    let (first, second) = (wire(0, 2 << 20), wire(1, 2 << 20));
    let mut sent = 0u64;
    for (frame, what) in [(&first, "first"), (&second, "second")] {
        let before = spliced(&pair.net, AB);
        // All of the frame but its last MiB: the body is not over, so the splice must still be under way.
        let part = frame.len() - (1 << 20);
        c.send_raw(&frame[..part]).await;
        sent += part as u64;
        poll_until(
            &format!("{what} frame splicing"),
            Duration::from_secs(10),
            || {
                let s = pair.net.link_stats(AB).unwrap();
                let now = spliced(&pair.net, AB);
                (
                    now > before && s.bytes_forwarded == sent,
                    format!("{now} spliced (was {before}), {sent} sent; {s:?}"),
                )
            },
        )
        .await;
        pair.net.set_fault(AB, Fault::Loss { p: 1.0 }.into());
        let mut rest = frame[part..].to_vec();
        rest.extend(wire(10, 100)); // small, under the fault: dropped
        rest.extend(wire(11, 300_000)); // big, under the fault: dropped whole, not spliced
        c.send_raw(&rest).await;
        sent += frame.len() as u64 - part as u64;
        let dropped = pair.net.link_stats(AB).unwrap().frames_dropped;
        poll_until("frames 10 and 11 dropped", Duration::from_secs(10), || {
            let s = pair.net.link_stats(AB).unwrap();
            (s.frames_dropped == dropped + 2, format!("{s:?}"))
        })
        .await;
        pair.net.remove_fault(AB, FaultKind::Loss);
        // Bring the stream back to big frames so the second round takes the peeked-header path.
        let big = wire(2, 100_000);
        c.send_raw(&big).await;
        sent += big.len() as u64;
    }
    assert_eq!(
        c.drain_to_marker(Duration::from_secs(10)).await,
        vec![0, 2, 1, 2]
    );
    assert_eq!(pair.echo.torn(), 0);
    let s = pair.net.link_stats(AB).unwrap();
    assert_eq!(
        s.frames_forwarded, 5,
        "frames 0, 2, 1, 2 and the marker: {s:?}"
    );
    assert_eq!(s.bytes_forwarded, sent + 16, "{s:?}");
    assert_eq!(
        s.bytes_dropped,
        2 * ((4 + 12 + 100) + (4 + 12 + 300_000)),
        "{s:?}"
    );
}

#[tokio::test]
async fn a_filtered_fault_touches_only_its_labels_and_links_count_per_label() {
    use crate::proxy::{FaultSpec, LabelSet};
    let pair = Pair::labelled(seed(81)).await;
    let mut c = Client::connect(pair.proxy).await;
    // Drop every even frame; odd ones pass.
    let id = pair.net.add_fault(
        [AB],
        FaultSpec::permanent(Fault::Loss { p: 1.0 }).only(LabelSet::of([0])),
    );
    for seq in 0..20 {
        assert!(c.send(seq, 10).await);
    }
    poll_until("10 even frames dropped", Duration::from_secs(5), || {
        let s = pair.net.link_stats(AB).unwrap();
        (s.frames_dropped == 10, format!("{s:?}"))
    })
    .await;
    assert!(pair.net.remove_fault_id(id));
    let got = c.drain_to_marker(Duration::from_secs(5)).await;
    assert_eq!(got, (0..20).filter(|s| s % 2 == 1).collect::<Vec<_>>());
    let s = pair.net.link_stats(AB).unwrap();
    let count = |l: &str| s.by_label.iter().find(|c| c.label == l).cloned();
    let even = count("even").expect("even counted");
    let odd = count("odd").expect("odd counted");
    assert_eq!((even.frames, even.dropped), (10, 10), "{s:?}");
    assert_eq!((odd.frames, odd.dropped), (10, 0), "{s:?}");
    // The replies (echoes of odd frames) are counted on the reverse link, streamed without any fault.
    poll_until("echoes counted per label", Duration::from_secs(5), || {
        let s = pair.net.link_stats(BA).unwrap();
        let odd = s
            .by_label
            .iter()
            .find(|c| c.label == "odd")
            .map(|c| c.frames);
        (odd == Some(10), format!("{s:?}"))
    })
    .await;
}

#[tokio::test]
async fn faults_compose_and_removing_one_keeps_the_other() {
    use crate::proxy::FaultSpec;
    let pair = Pair::new(seed(82)).await;
    let mut c = Client::connect(pair.proxy).await;
    let first = pair
        .net
        .add_fault([AB], FaultSpec::permanent(Fault::Blackhole));
    let second = pair
        .net
        .add_fault([AB, BA], FaultSpec::permanent(Fault::Blackhole));
    let delay = pair
        .net
        .add_fault([AB], FaultSpec::permanent(Fault::latency_ms(20)));
    assert_eq!(pair.net.faults(AB).len(), 3);
    assert!(pair.net.remove_fault_id(first));
    assert!(c.send(1, 8).await);
    assert_eq!(c.recv(Duration::from_millis(100)).await, Got::Timeout);
    assert!(pair.net.remove_fault_id(second));
    assert!(!pair.net.remove_fault_id(second), "already gone");
    let rtt = c.rtt(2, 8).await;
    assert!(
        rtt >= Duration::from_millis(20),
        "the delay stayed: {rtt:?}"
    );
    assert!(pair.net.remove_fault_id(delay));
    assert!(pair.net.faults(AB).is_empty());
}

#[tokio::test]
async fn big_frames_streamed_without_a_fault_are_counted_under_their_labels() {
    // Frames this big take the splice path (a peeked header, then header and body through a kernel pipe);
    // the classifier must still see each one's first bytes, not count it under `other`.
    let pair = Pair::labelled(seed(83)).await;
    let mut c = Client::connect(pair.proxy).await;
    let frames = 12u64;
    for seq in 0..frames {
        assert!(c.send(seq, 300_000).await);
    }
    let got = c.drain_to_marker(Duration::from_secs(20)).await;
    assert_eq!(got, (0..frames).collect::<Vec<_>>());
    let s = pair.net.link_stats(AB).unwrap();
    let count = |l: &str| {
        s.by_label
            .iter()
            .find(|c| c.label == l)
            .map_or(0, |c| c.frames)
    };
    assert_eq!(
        (count("even"), count("odd"), count("other")),
        (frames / 2, frames / 2, 1),
        "every frame but the (unlabelled) marker under its label: {s:?}"
    );
}

#[tokio::test]
async fn held_frames_whose_connection_closes_are_counted_as_dropped() {
    // Task held, item 1: a held frame whose connection closed vanished from the queue uncounted (`links` said
    // `dropped 0` while frame ids climbed). Seen failing: the drops stayed 0.
    let pair = Pair::labelled(seed(74)).await;
    let mut c = Client::connect(pair.proxy).await;
    pair.net.add_fault([AB], FaultSpec::permanent(Fault::Hold));
    for seq in 0..3 {
        assert!(c.send(seq, 16).await);
    }
    poll_until("3 frames held", Duration::from_secs(5), || {
        let h = pair.net.held();
        (h.len() == 3, format!("{h:?}"))
    })
    .await;
    drop(c);
    poll_until(
        "the held frames counted as dropped",
        Duration::from_secs(5),
        || {
            let s = pair.net.link_stats(AB).unwrap();
            let h = pair.net.held();
            (
                s.frames_dropped == 3 && h.is_empty(),
                format!("{s:?}; held {h:?}"),
            )
        },
    )
    .await;
    let s = pair.net.link_stats(AB).unwrap();
    let dropped = |l: &str| {
        s.by_label
            .iter()
            .find(|c| c.label == l)
            .map_or(0, |c| c.dropped)
    };
    assert_eq!((dropped("even"), dropped("odd")), (2, 1), "{s:?}");
    // Every frame that entered the hold is accounted for, and the loss is told once.
    assert_eq!(
        (s.frames_held, s.held_lost, s.frames_forwarded),
        (3, 3, 0),
        "{s:?}"
    );
    assert_eq!(
        pair.net.take_lost_held(),
        [LostHeld {
            link: AB,
            frames: 3
        }]
    );
    assert!(pair.net.take_lost_held().is_empty(), "told twice");
    // The link's next connection is held as before, and nothing of the closed one reaches it.
    let mut c = Client::connect(pair.proxy).await;
    assert!(c.send(10, 16).await);
    poll_until("the new frame held", Duration::from_secs(5), || {
        let h = pair.net.held();
        (h.len() == 1, format!("{h:?}"))
    })
    .await;
    assert_eq!(pair.net.step(|l| l == AB, 1).len(), 1);
    assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(10));
    assert_eq!(pair.echo.received(), vec![10]);
}
