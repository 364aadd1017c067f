//! The proxies' message trace, read into the session: every [`POLL`] the messages traced since the last
//! read, their times moved from the trace's origin to session time, go out as one [`Event::Messages`].

use std::time::Duration;

use squall_chaos::{Fate, MessageEvent};

use super::Cluster;
use crate::state::Event;

/// How often the trace is read: the message-flow panel lags at most this much.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// Switches the trace on and reports its messages until the cluster stops.
pub(super) async fn report_messages(cluster: Cluster) {
    let trace = cluster.inner.net.trace().clone();
    trace.set_on(true);
    // The trace counts from the network's creation, a little after the session's start.
    let offset_us = trace
        .origin()
        .saturating_duration_since(cluster.inner.started)
        .as_micros() as u64;
    let mut stop = cluster.stopping();
    let mut cursor = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        let read = trace.since(cursor);
        cursor = read.next;
        if read.events.is_empty() && read.lost == 0 {
            continue;
        }
        let messages = read
            .events
            .into_iter()
            .map(|m| to_session(m, offset_us))
            .collect();
        cluster.emit(Event::Messages {
            messages,
            lost: read.lost,
        });
    }
}

/// The message with its times in microseconds of session time.
fn to_session(mut m: MessageEvent, offset_us: u64) -> MessageEvent {
    m.sent_us += offset_us;
    m.fate = match m.fate {
        Fate::Delivered { at_us } => Fate::Delivered {
            at_us: at_us + offset_us,
        },
        Fate::Dropped { by, at_us } => Fate::Dropped {
            by,
            at_us: at_us + offset_us,
        },
        Fate::Held => Fate::Held,
    };
    m
}
