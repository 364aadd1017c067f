//! Histories and the checks run on them: pure, no I/O (like the Raft core), so everything here is tested in
//! memory and can be handed histories from other systems.
//!
//! - [`history`]: the operation events (invoke / ok / fail / info of read, write and cas on integer keys)
//!   and their pairing into operations;
//! - [`format`](mod@format): the JSON Lines history format (read and written) and Jepsen's EDN (written);
//! - [`linear`]: the linearizability checker (Wing–Gong/Lowe search, per key, memoised);
//! - [`diagram`]: a failing window drawn as text lanes;
//! - [`sim`]: a seeded register simulator for benchmarks and tests;
//! - [`invariants`]: Raft's (and Paxos's) safety properties checked live from the nodes' statuses and event feeds;
//! - [`liveness`]: progress whenever the cluster is healthy, judged apart from safety, and recovery times;
//! - [`lock`]: mutual exclusion of the lock workload's protected writes, as the resource saw them.

pub mod brief;
pub mod diagram;
pub mod format;
pub mod history;
pub mod invariants;
pub mod linear;
pub mod liveness;
pub mod lock;
pub mod sim;

#[cfg(test)]
mod invariants_feed_tests;
#[cfg(test)]
mod invariants_fixture;
#[cfg(test)]
mod invariants_paxos_tests;
#[cfg(test)]
mod tests;

pub use history::{HistoryError, OpEvent, OpF, OpType, OpValue, Operation, Outcome};
pub use linear::{Failure, Report, Verdict};

/// Pairs `events` into operations and checks them for linearizability (see [`linear::check`]).
///
/// # Errors
/// The events do not form a history (see [`history::pair`]).
pub fn check_events(
    events: &[OpEvent],
    deadline: Option<std::time::Instant>,
) -> Result<Report, HistoryError> {
    let ops = history::pair(events)?;
    Ok(linear::check(&ops, deadline))
}
