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
pub mod player;
pub mod replay;
