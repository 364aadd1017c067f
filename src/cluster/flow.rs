//! The proxies' message trace, read into the session: every [`POLL`] the messages traced since the last
//! read (from every host's proxies when the nodes run elsewhere), their times moved to session time, go out
//! as one [`Event::Messages`].

use std::time::Duration;

use super::Cluster;
use super::backend::TraceCursor;
use crate::state::Event;

/// How often the trace is read: the message-flow panel lags at most this much.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// Switches the trace on and reports its messages until the cluster stops.
pub(super) async fn report_messages(cluster: Cluster) {
    let mut stop = cluster.stopping();
    let mut cursor = TraceCursor::default();
    loop {
        let (messages, lost) = cluster
            .inner
            .links
            .read_trace(&mut cursor, cluster.inner.started)
            .await;
        if !messages.is_empty() || lost != 0 {
            cluster.emit(Event::Messages { messages, lost });
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}
