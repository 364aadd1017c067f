//! Linearizable reads by ReadIndex: the leader notes its commit index, then proves it still leads with a
//! heartbeat round acknowledged by a majority before it releases the read.

use std::collections::VecDeque;

use super::Raft;
use super::types::{Index, NotLeader, ReadFailed, ReadState, Role};

/// A read waiting for its heartbeat round.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    ctx: u64,
    index: Index,
    round: u64,
}

/// The leader's ReadIndex bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct ReadIndex {
    /// Latest heartbeat round started; carried in every AppendEntries.
    pub(crate) round: u64,
    /// A round was started since the last ready: heartbeat everyone when it is taken.
    pub(crate) heartbeat_pending: bool,
    /// Reads whose index is known, waiting for their round to be acknowledged, oldest first.
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before this term's first entry committed (the commit index is not yet
    /// known to be current), in arrival order.
    waiting: Vec<u64>,
}

impl Raft {
    /// Asks for a linearizable read point. The answer arrives in `Ready.read_states` (or
    /// `Ready.failed_reads` if leadership is lost first) with the same `ctx`.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.log.term(self.log.commit) != Some(self.term) {
            // Until an entry of this term commits, our commit index may lag the previous leader's.
            self.reads.waiting.push(ctx);
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    fn start_read(&mut self, ctx: u64) {
        let index = self.log.commit;
        if self.sole_voter() {
            self.read_states.push(ReadState { ctx, index });
            return;
        }
        self.reads.round += 1;
        let round = self.reads.round;
        self.reads
            .pending
            .push_back(PendingRead { ctx, index, round });
        self.reads.heartbeat_pending = true;
    }

    /// The commit index moved on the leader: reads waiting for this term's first commit can start, and a
    /// transfer target may now be up to date.
    pub(super) fn on_commit_advanced(&mut self) {
        self.note_commit();
        if self.log.term(self.log.commit) == Some(self.term) && !self.reads.waiting.is_empty() {
            for ctx in std::mem::take(&mut self.reads.waiting) {
                self.start_read(ctx);
            }
        }
    }

    /// Releases every pending read whose round a majority (counting this node) has acknowledged.
    pub(super) fn confirm_reads(&mut self) {
        while let Some(front) = self.reads.pending.front() {
            let round = front.round;
            let confirmed = self.has_quorum(true, |v| {
                self.progress.get(&v).is_some_and(|p| p.read_acked >= round)
            });
            if !confirmed {
                break;
            }
            // Rounds only grow, so the acknowledgement of a later round covers every earlier read too.
            let r = self.reads.pending.pop_front().expect("front exists");
            self.read_states.push(ReadState {
                ctx: r.ctx,
                index: r.index,
            });
        }
    }

    /// Leadership is gone: every read not yet confirmed fails with a hint where to retry.
    pub(super) fn fail_reads(&mut self) {
        let hint = self.leader.filter(|&l| l != self.config.id);
        let pending = std::mem::take(&mut self.reads.pending);
        let waiting = std::mem::take(&mut self.reads.waiting);
        self.reads.heartbeat_pending = false;
        self.failed_reads.extend(
            pending
                .into_iter()
                .map(|r| r.ctx)
                .chain(waiting)
                .map(|ctx| ReadFailed {
                    ctx,
                    leader_hint: hint,
                }),
        );
    }
}
