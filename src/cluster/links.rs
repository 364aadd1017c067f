//! The links as the dashboard sees them: held frames and per-link counters reported as events, and the
//! state a link's faults add up to.

use std::time::{Duration, Instant};

use squall_chaos::Fault;

use super::Cluster;
use crate::state::{Event, HeldView, LinkState, LinkView};

pub(super) async fn report_links(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let mut last_held: Vec<HeldView> = Vec::new();
    let mut last: Vec<LinkView> = Vec::new();
    let mut last_sent = Instant::now() - Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => return,
        }
        let held: Vec<HeldView> = cluster.held_views().await;
        if held != last_held {
            cluster.emit(Event::Held {
                frames: held.clone(),
            });
            last_held = held;
        }
        let links: Vec<LinkView> = cluster
            .inner
            .links
            .stats()
            .await
            .into_iter()
            .map(link_view)
            .collect();
        let states_changed =
            links.len() != last.len() || links.iter().zip(&last).any(|(a, b)| a.state != b.state);
        if states_changed || (links != last && last_sent.elapsed() >= Duration::from_secs(1)) {
            cluster.emit(Event::Links {
                links: links.clone(),
            });
            last = links;
            last_sent = Instant::now();
        }
    }
}

impl Cluster {
    /// Node-to-node messages the proxies have seen so far (delivered or dropped), over every link.
    pub(super) fn node_messages(&self) -> u64 {
        self.inner
            .links
            .stats_now()
            .iter()
            .map(|s| s.frames_forwarded + s.frames_dropped)
            .sum()
    }
}

/// What the links matrix shows of a link: the strongest fault on it (a cut over a hold over a delay over a
/// loss over anything else; a fault limited to some message kinds shows as "shaped"), and its counters.
pub(super) fn link_view(s: squall_chaos::LinkStats) -> LinkView {
    let rank = |st: LinkState| match st {
        LinkState::Cut => 5,
        LinkState::Held => 4,
        LinkState::Delayed(_) => 3,
        LinkState::Lossy(_) => 2,
        LinkState::Shaped => 1,
        LinkState::Ok => 0,
    };
    let mut state = LinkState::Ok;
    for f in &s.faults {
        let this = match &f.fault {
            _ if f.filter.is_some() => LinkState::Shaped,
            Fault::Blackhole | Fault::Reset => LinkState::Cut,
            Fault::Loss { p } if *p >= 1.0 => LinkState::Cut,
            Fault::Loss { p } => LinkState::Lossy((p * 100.0).round() as u8),
            Fault::Latency { base, .. } => LinkState::Delayed(base.as_millis() as u32),
            Fault::Hold => LinkState::Held,
            Fault::Duplicate { .. } | Fault::Reorder { .. } | Fault::Bandwidth { .. } => {
                LinkState::Shaped
            }
        };
        // Two delays on one link add up, as the proxy applies them.
        state = match (state, this) {
            (LinkState::Delayed(a), LinkState::Delayed(b)) => LinkState::Delayed(a + b),
            (a, b) if rank(b) > rank(a) => b,
            (a, _) => a,
        };
    }
    LinkView {
        from: s.link.from,
        to: s.link.to,
        state,
        frames: s.frames_forwarded,
        bytes: s.bytes_forwarded,
        dropped: s.frames_dropped,
        kinds: s
            .by_label
            .iter()
            .map(|c| (c.label.clone(), c.frames))
            .collect(),
        duplicated: s.frames_duplicated,
        delayed: s.frames_delayed,
    }
}
