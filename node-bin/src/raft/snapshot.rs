//! Snapshots over the wire: the leader streams a snapshot in chunks (one in flight, each named by an id the
//! answer echoes, resumed from the follower's offset, and finished even if the leader compacts again
//! meanwhile); the follower buffers them and, on the last one, resets its log to the snapshot.

use super::Raft;
use super::progress::Mode;
use super::types::{
    InstallSnapshot, InstallSnapshotReply, NodeId, RaftEvent, Request, Role, Snapshot,
};

impl Raft {
    /// Answers one InstallSnapshot chunk.
    pub fn handle_install_snapshot(&mut self, req: InstallSnapshot) -> InstallSnapshotReply {
        let mut reply = InstallSnapshotReply {
            term: self.term,
            follower: self.config.id,
            meta: req.meta,
            next_offset: 0,
            done: false,
            chunk_id: req.chunk_id,
            chunk_offset: req.offset,
        };
        if req.term < self.term || (req.term == self.term && self.role == Role::Leader) {
            return reply;
        }
        if !self.accepts_leader(req.term) {
            // See `handle_append_entries`: a recovering node's answer to an unvalidated leader counts for
            // nothing, and one below the term it learned is told that term.
            reply.term = self.refused_leader_term(req.term);
            return reply;
        }
        self.follow_leader(req.term, req.leader);
        reply.term = self.term;
        let end = req.offset + req.data.len() as u64;
        let meta = req.meta;
        if meta.last_index <= self.log.commit
            || self.log.term(meta.last_index) == Some(meta.last_term)
        {
            // Our log already holds everything the snapshot covers: just commit up to it.
            if meta.last_index > self.log.commit {
                self.log.commit = meta.last_index;
                self.note_commit();
            }
            self.incoming_snapshot = None;
            reply.next_offset = end;
            reply.done = true;
            return reply;
        }
        if self
            .incoming_snapshot
            .as_ref()
            .is_none_or(|(m, _)| *m != meta)
        {
            if req.offset != 0 {
                // A chunk from the middle of a snapshot we have not started: ask for the beginning.
                return reply;
            }
            self.incoming_snapshot = Some((meta, Vec::new()));
        }
        let (_, buf) = self.incoming_snapshot.as_mut().expect("set above");
        if req.offset == buf.len() as u64 {
            buf.extend_from_slice(&req.data);
        }
        reply.next_offset = buf.len() as u64;
        if !(req.done && end == buf.len() as u64) {
            return reply;
        }
        let (meta, data) = self.incoming_snapshot.take().expect("set above");
        let snapshot = Snapshot {
            meta,
            data,
            config: req.config.clone(),
        };
        // Uncommitted entries the snapshot replaces are reported only where they are known to conflict with
        // the leader's log: from the first one whose term is above the snapshot's last term (a committed entry
        // at or before the snapshot's index never has a higher term), or from the snapshot's index if the log
        // reaches it (its term there differs, or the snapshot would just commit). By Log Matching every entry
        // after a conflicting one conflicts too. Entries the snapshot merely covers may match the leader's (a
        // node whose commit index lagged, or whose disk filled), so they are not called conflicting.
        let last = self.log.last_index();
        let covered = last.min(meta.last_index);
        let conflict = (self.log.commit + 1..=covered)
            .find(|&i| self.log.term(i).is_some_and(|t| t > meta.last_term))
            .or((last >= meta.last_index).then_some(meta.last_index));
        if let Some(from) = conflict.filter(|&f| f > self.log.commit && f <= last) {
            self.events.push(RaftEvent::LogTruncated {
                from_index: from,
                count: last - from + 1,
            });
        }
        self.log.restore(&snapshot);
        self.snapshot_conf = Some(
            snapshot
                .config
                .clone()
                .unwrap_or_else(|| self.bootstrap.clone()),
        );
        self.pending_snapshot = Some(snapshot);
        self.events.push(RaftEvent::SnapshotInstalled { meta });
        self.reset_membership(req.config);
        self.note_commit();
        reply.done = true;
        reply
    }

    /// The follower's answer to a chunk: send the next one, or resume normal replication when done. Only the
    /// answer to the chunk in flight moves the transfer on; a late or duplicated answer is ignored (a `done`
    /// still records what the follower holds).
    pub(super) fn handle_snapshot_reply(&mut self, from: NodeId, r: InstallSnapshotReply) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.silent_ticks = 0;
        let current = pr.chunk_in_flight == Some(r.chunk_id);
        if current {
            pr.chunk_in_flight = None;
        }
        if r.done {
            if r.meta.last_index > pr.match_index {
                pr.match_index = r.meta.last_index;
            }
            if pr.next_index <= pr.match_index {
                pr.next_index = pr.match_index + 1;
            }
            let finished = match &pr.mode {
                Mode::Snapshot { meta, .. } => current || pr.match_index >= meta.last_index,
                _ => false,
            };
            if finished {
                let next = pr.match_index + 1;
                pr.become_probe(next, false);
            }
            self.maybe_commit();
            if finished {
                self.maybe_send_timeout_now(from);
                self.send_append(from);
            }
            return;
        }
        if !current {
            return;
        }
        if let Mode::Snapshot { meta, offset, .. } = &mut pr.mode {
            if *meta == r.meta {
                *offset = r.next_offset;
            } else {
                *offset = 0;
            }
            self.send_snapshot_chunk(from);
        }
    }

    /// Sends the next chunk of the snapshot being streamed to `peer` unless one is already in flight.
    pub(super) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let chunk_bytes = self.config.snapshot_chunk_bytes.max(1) as u64;
        let chunk_id = self.next_chunk_id;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        if pr.chunk_in_flight.is_some() {
            return;
        }
        let Mode::Snapshot {
            meta,
            data,
            offset,
            waited,
            config,
        } = &mut pr.mode
        else {
            return;
        };
        *waited = 0;
        let len = data.len() as u64;
        let start = (*offset).min(len);
        let end = (start + chunk_bytes).min(len);
        pr.chunk_in_flight = Some(chunk_id);
        let msg = InstallSnapshot {
            term: self.term,
            leader: self.config.id,
            meta: *meta,
            offset: start,
            data: data[start as usize..end as usize].to_vec(),
            done: end == len,
            chunk_id,
            config: config.clone(),
        };
        self.next_chunk_id += 1;
        self.messages.push((peer, Request::Snapshot(msg)));
    }
}
