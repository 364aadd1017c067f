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
        // Held frames whose connection ended are dropped (and counted) by the proxy; the feed says so once
        // per batch rather than let the queue shrink unexplained (a Paxos node reconnects per timed-out call).
        for text in cluster.lost_held_lines(&cluster.inner.links.take_lost_held()) {
            cluster.emit(Event::Note { text });
        }
        let held: Vec<HeldView> = cluster.held_views().await;
        if held != last_held {
            cluster.emit(Event::Held {
                frames: held.clone(),
            });
            last_held = held;
        }
        let links: Vec<LinkView> = cluster.link_views().await;
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
    /// The feed's lines for held frames dropped because their connection ended: one per cause, naming the link
    /// (`3 held frames on 1->2 dropped: connection closed`) or, when several links lost frames for one cause,
    /// each link's count (`5 held frames dropped: connection closed (1->2 3, 2->1 2)`). The cause is the
    /// sender's or receiver's process when it is down (`n1 was killed`), else the connection's close (a call
    /// the sender gave up on, which squall's Paxos node answers with a new connection).
    pub(super) fn lost_held_lines(&self, lost: &[squall_chaos::LostHeld]) -> Vec<String> {
        let mut by_cause: std::collections::BTreeMap<String, Vec<&squall_chaos::LostHeld>> =
            std::collections::BTreeMap::new();
        for l in lost.iter().filter(|l| l.frames > 0) {
            by_cause
                .entry(self.why_connection_ended(l.link))
                .or_default()
                .push(l);
        }
        by_cause
            .into_iter()
            .map(|(why, links)| lost_held_line(&why, &links))
            .collect()
    }

    /// Why a connection of `link` ended, as far as the processes tell: its sender or receiver is down.
    fn why_connection_ended(&self, link: squall_chaos::LinkId) -> String {
        let state = |id: u64| self.inner.procs.state(id);
        for id in [link.from, link.to] {
            match state(id) {
                Some(squall_chaos::ProcState::Exited {
                    signal: Some(sig), ..
                }) if sig == "SIGKILL" => {
                    return format!("n{id} was killed");
                }
                Some(
                    squall_chaos::ProcState::Exited { .. } | squall_chaos::ProcState::Restarting,
                ) => {
                    return format!("n{id} went down");
                }
                _ => {}
            }
        }
        "connection closed".to_string()
    }

    /// Node-to-node messages the proxies have seen so far (delivered or dropped), over every link.
    pub(super) fn node_messages(&self) -> u64 {
        self.inner
            .links
            .stats_now()
            .iter()
            .map(|s| s.frames_forwarded + s.frames_dropped)
            .sum()
    }

    /// Every link as the links matrix shows it, read now (remote: from every host).
    pub(super) async fn link_views(&self) -> Vec<LinkView> {
        self.inner
            .links
            .stats()
            .await
            .into_iter()
            .map(link_view)
            .collect()
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

/// One feed line for held frames of `links` lost for one cause `why`.
fn lost_held_line(why: &str, links: &[&squall_chaos::LostHeld]) -> String {
    let total: u64 = links.iter().map(|l| l.frames).sum();
    let frames = if total == 1 { "frame" } else { "frames" };
    match links {
        [one] => format!("{total} held {frames} on {} dropped: {why}", one.link),
        _ => {
            let each: Vec<String> = links
                .iter()
                .map(|l| format!("{} {}", l.link, l.frames))
                .collect();
            format!("{total} held {frames} dropped: {why} ({})", each.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use squall_chaos::{LinkId, LostHeld};

    use super::lost_held_line;

    #[test]
    fn lost_held_frames_are_told_once_per_cause_naming_each_link() {
        let a = LostHeld {
            link: LinkId::new(1, 2),
            frames: 3,
        };
        let b = LostHeld {
            link: LinkId::new(2, 1),
            frames: 1,
        };
        assert_eq!(
            lost_held_line("connection closed", &[&a]),
            "3 held frames on 1->2 dropped: connection closed"
        );
        assert_eq!(
            lost_held_line("n2 was killed", &[&b]),
            "1 held frame on 2->1 dropped: n2 was killed"
        );
        assert_eq!(
            lost_held_line("connection closed", &[&a, &b]),
            "4 held frames dropped: connection closed (1->2 3, 2->1 1)"
        );
    }
}
