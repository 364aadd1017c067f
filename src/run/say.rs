//! How the run says what it did on the console: each performed step with its answer, times as a person reads
//! them.

use std::time::Duration;

use crate::cluster::{Cluster, Outcome};
use crate::session::ConsoleFeed;

/// Says what a step did (`what`) and the answer it got, as of now: held back with the event lines, so it
/// prints after the events the step caused that happened before its answer came; marks the cast, if one is
/// recorded.
pub(super) fn say_outcome(
    feed: &mut ConsoleFeed,
    cluster: &Cluster,
    what: &str,
    outcome: &Outcome,
) {
    if let Some(cast) = &feed.out.cast {
        cast.marker(what.to_string());
    }
    let at = cluster.now_ms();
    for l in outcome.console_lines() {
        feed.hold(at, format!("scenario: {what} → {l}"));
    }
}

/// Says a scenario's `heal` that found nothing in force: a no-op line of the timeline, not a failed step
/// (see [`super::steps`]), said so rather than as `ok:` or `error:`.
pub(super) fn say_no_op(feed: &mut ConsoleFeed, cluster: &Cluster, what: &str, why: &str) {
    if let Some(cast) = &feed.out.cast {
        cast.marker(what.to_string());
    }
    feed.hold(cluster.now_ms(), format!("scenario: {what} → no-op: {why}"));
}

/// A duration as the console prints it.
pub(super) fn fmt_ms(d: Duration) -> String {
    crate::units::duration(d)
}
