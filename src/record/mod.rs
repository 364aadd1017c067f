//! Recording and replaying sessions.
//!
//! The first three know nothing of the cluster; the player ties them to the dashboard's state and widgets:
//! - [`asciicast`]: an asciicast v2 writer fed by a tee around the terminal backend's writer, so a
//!   recording holds exactly the bytes the dashboard drew, plus markers (chapters) and resizes.
//! - [`eventlog`]: a versioned JSON Lines log of everything that happened in a session, written on a
//!   background thread, and its reader with clear errors for foreign, mismatched or damaged files.
//! - [`replay`]: a pure controller (play, pause, speed, seek, jump to faults) that tells its caller which
//!   logged events to apply; the state is rebuilt by re-applying, since applying is pure.
//! - [`player`]: `squall replay`, the dashboard driven by a replay of an event log.

pub mod asciicast;
pub mod eventlog;
pub mod messages;
pub mod player;
pub mod replay;

/// What to tell a person reading a session's event log that ended early (killed, crashed): the log's own
/// warning (where it was cut) and the session time of the last event kept, so it is clear which part of the
/// session the output covers. `None` for a log that was closed.
pub fn truncation_warning(log: &eventlog::EventLog<crate::state::Stamped>) -> Option<String> {
    let warning = log.warning.as_deref()?;
    let last = log.events.last().map_or(0, |e| e.at_ms);
    Some(format!(
        "{warning}; the last event kept is at {:.1} s of the session",
        last as f64 / 1e3
    ))
}
