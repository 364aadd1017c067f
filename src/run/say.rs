//! How the run says what it did on the console: each performed step with its answer, times as a person reads
//! them.

use std::time::Duration;

use crate::cluster::{Cluster, Outcome};
use crate::session::ConsoleFeed;

/// Prints what a step did (`what`) and the answer it got, after every event line held back until then; marks
/// the cast, if one is recorded.
pub(super) fn say_outcome(
    feed: &mut ConsoleFeed,
    cluster: &Cluster,
    what: &str,
    outcome: &Outcome,
) {
    feed.flush();
    if let Some(cast) = &feed.out.cast {
        cast.marker(what.to_string());
    }
    let at = cluster.now_ms() as f64 / 1000.0;
    for l in outcome.console_lines() {
        feed.out
            .say(format_args!("{at:>8.3}s  scenario: {what} → {l}"));
    }
}

/// Prints a scenario's `heal` that found nothing in force: a no-op line of the timeline, not a failed step
/// (see [`super::steps`]), said so rather than as `ok:` or `error:`.
pub(super) fn say_no_op(feed: &mut ConsoleFeed, cluster: &Cluster, what: &str, why: &str) {
    feed.flush();
    if let Some(cast) = &feed.out.cast {
        cast.marker(what.to_string());
    }
    let at = cluster.now_ms() as f64 / 1000.0;
    feed.out
        .say(format_args!("{at:>8.3}s  scenario: {what} → no-op: {why}"));
}

/// A duration as the console prints it.
pub(super) fn fmt_ms(d: Duration) -> String {
    crate::units::duration(d)
}
