//! Teaching mode on the node: the control service's freeze, thaw, election timeout and heartbeats, handed to
//! the consensus core (which owns the rules; see `raft::teach`), and the log range a scrolled dashboard
//! fetches.

use tokio::sync::oneshot;

use crate::raft::Campaign;
use crate::rpc::{LogCell, MAX_LOG_RANGE};

use super::Node;

/// A teaching-mode control, with where to answer.
pub(super) enum TeachCmd {
    /// Stop (`true`) or restart the timers.
    Freeze(bool, oneshot::Sender<()>),
    /// Fire the election timer now.
    Timeout(oneshot::Sender<Result<Campaign, String>>),
    /// A leader sends its heartbeats now; answers how many followers were sent one.
    Heartbeat(oneshot::Sender<Result<u32, String>>),
    /// The entries at `from..=to` (at most `MAX_LOG_RANGE`).
    LogRange(u64, u64, oneshot::Sender<Result<Vec<LogCell>, String>>),
}

impl Node {
    pub(super) fn teach(&mut self, cmd: TeachCmd) {
        match cmd {
            TeachCmd::Freeze(frozen, tx) => {
                self.raft.set_frozen(frozen);
                tracing::info!(
                    "{}",
                    if frozen {
                        "frozen: election and heartbeat timers stopped"
                    } else {
                        "thawed: election and heartbeat timers run again"
                    }
                );
                let _ = tx.send(());
            }
            TeachCmd::Timeout(tx) => {
                let _ = tx.send(self.raft.fire_election_timeout().map_err(|e| e.to_string()));
            }
            TeachCmd::LogRange(from, to, tx) => {
                let _ = tx.send(if from > to {
                    Err(format!("an empty range: {from} is after {to}"))
                } else {
                    // Index 0 is never an entry; a range from it starts at the first.
                    let n = (to - from.max(1) + 1).min(MAX_LOG_RANGE) as usize;
                    Ok(self
                        .log_cells(from.max(1), n)
                        .into_iter()
                        .take_while(|c| c.index <= to)
                        .collect())
                });
            }
            TeachCmd::Heartbeat(tx) => {
                let _ = tx.send(
                    self.raft
                        .send_heartbeats()
                        .map(|n| n as u32)
                        .map_err(|e| e.to_string()),
                );
            }
        }
    }

    /// Milliseconds until the election timer runs out, for the status (see `NodeStatus::election_due_ms`).
    pub(super) fn election_due_ms(&self) -> Option<u64> {
        let tick_ms = self.cfg.tick.as_millis() as u64;
        self.raft
            .election_ticks_left()
            .map(|t| u64::from(t) * tick_ms)
    }
}
