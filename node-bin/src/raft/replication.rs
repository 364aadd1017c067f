//! Log replication: the follower's side of AppendEntries, the leader's sending (probe, pipelined batches,
//! heartbeats), its handling of replies (fast backtracking by term), and the commit rule.

use super::Raft;
use super::progress::Mode;
use super::types::{
    AppendEntries, AppendEntriesReply, Index, NodeId, Payload, RaftEvent, Reply, Request, Role,
    Term,
};

impl Raft {
    /// Answers AppendEntries (or a heartbeat). The driver releases the reply only after persisting the
    /// ready that follows, so a success means the entries are durable when the leader hears of it.
    pub fn handle_append_entries(&mut self, req: AppendEntries) -> AppendEntriesReply {
        let mut reply = AppendEntriesReply {
            term: self.term,
            follower: self.config.id,
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 0,
            last_log_index: self.log.last_index(),
            read_round: req.read_round,
            req_prev_index: req.prev_log_index,
            req_last_index: req.prev_log_index + req.entries.len() as u64,
            heartbeat: req.heartbeat,
            recovering: self.recovery.is_some(),
        };
        if req.term < self.term {
            return reply;
        }
        if !self.accepts_leader(req.term) {
            // Recovering from data loss and this leader is not known to be current: answer with term 0, which
            // the leader ignores, so nothing this node says counts towards a quorum (see `recovery`); or, to a
            // leader below the term `T` it learned, with `T`, so that leader steps down.
            reply.term = self.refused_leader_term(req.term);
            return reply;
        }
        if let Err(why) = well_formed(&req) {
            // A malformed request is a bug in the sender (or not from a squall leader): refuse it whole, in
            // release builds too, rather than store a log that breaks Raft's invariants.
            self.warnings.push(format!(
                "refused a malformed AppendEntries from node {} in term {}: {why}",
                req.leader, req.term
            ));
            return reply;
        }
        if req.term == self.term && self.role == Role::Leader {
            // Two leaders in one term cannot happen; refuse rather than corrupt anything.
            return reply;
        }
        self.follow_leader(req.term, req.leader);
        reply.term = self.term;
        if self.pending_snapshot.is_some() {
            // A snapshot the driver has not taken yet resets the log; keep that ready free of entries.
            reply.conflict_index = self.log.last_index() + 1;
            return reply;
        }
        let prev = req.prev_log_index;
        let snap = self.log.snapshot_meta().last_index;
        if prev > self.log.last_index() {
            reply.conflict_index = self.log.last_index() + 1;
            return reply;
        }
        if prev >= snap {
            let term = self.log.term(prev).expect("index within the log");
            if term != req.prev_log_term {
                reply.conflict_term = Some(term);
                reply.conflict_index = self.log.first_index_of_term(prev, term);
                return reply;
            }
        }
        // Entries before our snapshot are committed and so match the leader's; skip them.
        let last_new = prev + req.entries.len() as u64;
        for (i, entry) in req.entries.into_iter().enumerate() {
            let index = prev + 1 + i as u64;
            if index <= snap {
                continue;
            }
            match self.log.term(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    if index <= self.log.commit {
                        // A leader contradicting a committed entry is a safety bug elsewhere: refuse it.
                        reply.last_log_index = self.log.last_index();
                        return reply;
                    }
                    let count = self.log.truncate(index);
                    self.events.push(RaftEvent::LogTruncated {
                        from_index: index,
                        count,
                    });
                    self.revert_membership(index);
                    self.append_from_leader(entry);
                }
                None => self.append_from_leader(entry),
            }
        }
        let commit = req.leader_commit.min(last_new);
        if commit > self.log.commit {
            self.log.commit = commit;
            self.note_commit();
        }
        reply.success = true;
        reply.match_index = last_new;
        reply.last_log_index = self.log.last_index();
        // A leader's commit index is volatile: after a restart it covers every committed entry only once it
        // has committed one of its own term (Raft §5.4.2), so only then does catching up to it prove this node
        // holds every committed entry.
        if self.log.commit >= req.leader_commit
            && self.log.term(req.leader_commit) == Some(req.term)
        {
            self.maybe_finish_recovery(Some((req.leader, req.term)));
        }
        reply.recovering = self.recovery.is_some();
        reply
    }

    /// Appends an entry received from the leader; a configuration entry takes effect at once.
    fn append_from_leader(&mut self, entry: super::types::Entry) {
        let config = match &entry.payload {
            Payload::Config(c) => Some((entry.index, c.clone())),
            _ => None,
        };
        self.log.push(entry);
        if let Some((index, c)) = config {
            self.set_membership(index, c);
        }
    }

    /// Feeds a peer's answer into the core.
    pub fn handle_reply(&mut self, from: NodeId, reply: Reply) {
        match reply {
            Reply::Vote(r) => self.handle_vote_reply(from, r),
            Reply::Append(r) => {
                if r.term == 0 && self.role == Role::Leader {
                    self.append_unvalidated(from, &r);
                } else if self.check_reply_term(r.term) {
                    self.handle_append_reply(from, r);
                }
            }
            Reply::Snapshot(r) => {
                if r.term == 0 && self.role == Role::Leader {
                    // A recovering follower that has not yet learned the current term refused the chunk (see
                    // the `recovery` module, rule 1): free its slot so the next heartbeat resends it, rather
                    // than waiting out the chunk timeout as for a lost answer.
                    if let Some(pr) = self.progress.get_mut(&from)
                        && pr.chunk_in_flight == Some(r.chunk_id)
                    {
                        pr.chunk_in_flight = None;
                    }
                } else if self.check_reply_term(r.term) {
                    self.handle_snapshot_reply(from, r);
                }
            }
        }
    }

    /// Steps down on a newer term; returns whether a leader reply of this term should be processed.
    fn check_reply_term(&mut self, term: Term) -> bool {
        if term > self.term {
            self.become_follower(term, None);
            return false;
        }
        term == self.term && self.role == Role::Leader
    }

    /// Acts on an answer to AppendEntries. The answer names its request (`req_prev_index`, `req_last_index`),
    /// so a rejection that is no longer about the current probe or batches (late, duplicated, overtaken by
    /// later successes) is ignored rather than sending the follower back to probing, or to a snapshot.
    fn handle_append_reply(&mut self, from: NodeId, r: AppendEntriesReply) {
        let last_index = self.log.last_index();
        let max_inflight = self.config.max_inflight;
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.silent_ticks = 0;
        pr.read_acked = pr.read_acked.max(r.read_round);
        if pr.validated()
            && let Mode::Probe { paused } = &mut pr.mode
        {
            // It can validate this leader now: probe at once rather than at the end of the wait.
            *paused = false;
        }
        // A late answer from before the follower finished recovering may say it still recovers (which only
        // delays a promotion); one saying it finished counts only when it is current, as a follower that
        // loses data again starts recovering again.
        if r.recovering || (r.success && r.match_index >= pr.match_index) {
            pr.recovering = r.recovering;
        }
        let heartbeat = r.heartbeat;
        if r.success {
            let advanced = r.match_index > pr.match_index;
            if advanced {
                pr.match_index = r.match_index;
            }
            pr.free_inflight_to(r.match_index);
            match pr.mode {
                // A success at or past the probe point shows where the logs match.
                Mode::Probe { .. } if pr.match_index + 1 >= pr.next_index => pr.become_replicate(),
                Mode::Snapshot { meta, .. } if pr.match_index >= meta.last_index => {
                    pr.become_replicate()
                }
                Mode::Replicate if heartbeat && pr.inflight.len() >= max_inflight.max(1) => {
                    // The follower is alive but a full window of batches is unanswered: one was lost
                    // without its loss being reported. Free a slot so replication goes on; the gap shows
                    // as a rejection of the next batch, which sends the follower back to probing.
                    pr.inflight.pop_front();
                }
                _ => {}
            }
            if pr.next_index <= pr.match_index {
                pr.next_index = pr.match_index + 1;
            }
            if advanced {
                self.maybe_commit();
            }
        } else {
            let current = match pr.mode {
                Mode::Probe { .. } => {
                    r.req_prev_index + 1 == pr.next_index || r.req_prev_index == pr.match_index
                }
                // A refused batch still in the window holds entries past the match index that the follower
                // lacks, even when an older batch's success (reordered, or delivered twice) raised the match
                // index past the refused batch's start: left alone, nothing resends them once the clients are
                // quiet (simulation seed 796594048973).
                Mode::Replicate => {
                    r.req_prev_index >= pr.match_index
                        || (r.req_last_index > pr.match_index
                            && pr.inflight.contains(&r.req_last_index))
                }
                Mode::Snapshot { .. } => false,
            };
            if !current {
                self.confirm_reads();
                return;
            }
            if heartbeat
                && r.req_prev_index == pr.match_index
                && (r.last_log_index < pr.match_index || r.conflict_term.is_some())
            {
                // A heartbeat sent after the follower acknowledged its match index finds it holding less, or
                // another term there (a cut damaged record had overwritten an older entry at that index, and
                // the older one is back): it lost data. Forget what we thought it had so it can be brought
                // back; left alone, the probe is clamped above the match index and refused forever
                // (simulation seed 796592838934). (Any other rejection may predate the acknowledgement,
                // reordered on the way back: it lowers nothing.)
                pr.match_index = match r.conflict_term {
                    Some(_) => r.conflict_index.saturating_sub(1).min(r.last_log_index),
                    None => r.last_log_index,
                };
            }
            let mut next = match r.conflict_term {
                Some(t) => self
                    .log
                    .last_index_of_term(t)
                    .map_or(r.conflict_index, |i| i + 1),
                None => r.conflict_index,
            };
            let pr = self.progress.get_mut(&from).expect("checked above");
            next = next.clamp(pr.match_index + 1, last_index + 1);
            pr.become_probe(next, false);
        }
        self.confirm_reads();
        self.maybe_send_timeout_now(from);
        self.send_append(from);
        self.release_departed(from);
    }

    /// A recovering follower that cannot validate this leader yet (it does not know the current term from
    /// every other voter: the `recovery` module, rule 1) answered with term 0: nothing it says counts, but a
    /// batch it refused so is not stored there. Handled as a lost batch: back to probing from the match index,
    /// resumed by the next heartbeat. Left in the window, nothing sends its entries again once the clients are
    /// quiet, since the follower's heartbeat answers after it finished recovering only confirm the match
    /// index (simulation seed 830000000369: the batch that made a new voter made the follower unable to
    /// validate the leader until it had probed that voter).
    ///
    /// Entries refused so are sent again only after a wait that doubles with each refusal in a row, up to
    /// [`super::progress::MAX_UNVALIDATED_BACKOFF`] heartbeats (empty heartbeats still go every time); the first
    /// answer in this leader's term ends the wait.
    fn append_unvalidated(&mut self, from: NodeId, r: &AppendEntriesReply) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if r.heartbeat {
            return;
        }
        pr.refused_unvalidated();
        // (A probe refused so needs nothing more: it is paused until a heartbeat sends it again.)
        if matches!(pr.mode, Mode::Replicate)
            && r.req_last_index > pr.match_index
            && pr.inflight.contains(&r.req_last_index)
        {
            let next = pr.match_index + 1;
            pr.become_probe(next, true);
        }
    }

    /// An RPC to `peer` failed or timed out: forget it as in flight and fall back to probing, resumed by
    /// the next heartbeat.
    pub fn report_unreachable(&mut self, peer: NodeId, req: &Request) {
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        match req {
            Request::Append(a) if a.term == self.term => match pr.mode {
                // A lost heartbeat leaves nothing missing; a lost batch still in flight leaves a gap to
                // re-probe from (the failure of one already answered, or from an earlier run, changes nothing).
                // A batch whose slot a heartbeat answer already freed (a full window unanswered) is no longer
                // in flight, but if the follower does not hold it yet the gap is there all the same: waiting for
                // the next batch to be rejected waits for good once the clients are quiet (simulation seed
                // 796590903054).
                Mode::Replicate
                    if !a.entries.is_empty()
                        && (pr
                            .inflight
                            .contains(&(a.prev_log_index + a.entries.len() as u64))
                            || (a.prev_log_index + a.entries.len() as u64 > pr.match_index
                                && a.prev_log_index < pr.next_index)) =>
                {
                    let next = pr.match_index + 1;
                    pr.become_probe(next, true);
                }
                Mode::Probe { .. } => pr.mode = Mode::Probe { paused: true },
                _ => {}
            },
            // Only the failure of the chunk in flight frees the slot; the next heartbeat resends.
            Request::Snapshot(s)
                if s.term == self.term && pr.chunk_in_flight == Some(s.chunk_id) =>
            {
                pr.chunk_in_flight = None;
            }
            _ => {}
        }
    }

    /// Sends `peer` what it needs next, as far as its mode allows: a probe, pipelined batches, or a
    /// snapshot chunk.
    pub(super) fn send_append(&mut self, peer: NodeId) {
        loop {
            let Some(pr) = self.progress.get(&peer) else {
                return;
            };
            if let Mode::Snapshot { .. } = pr.mode {
                self.send_snapshot_chunk(peer);
                return;
            }
            if !pr.can_send(self.config.max_inflight) {
                return;
            }
            let next = pr.next_index;
            let replicating = matches!(pr.mode, Mode::Replicate);
            let prev = next - 1;
            let Some(prev_term) = self.log.term(prev) else {
                // The entries it needs were compacted away.
                let meta = self.log.snapshot_meta();
                let Some(data) = self.log.snapshot_shared() else {
                    return;
                };
                let config = self.snapshot_conf.clone();
                self.progress
                    .get_mut(&peer)
                    .expect("present")
                    .become_snapshot(meta, data, config);
                continue;
            };
            let entries = self.log.slice(
                next,
                self.config.max_batch_entries,
                self.config.max_batch_bytes,
            );
            if replicating && entries.is_empty() {
                return;
            }
            let last = prev + entries.len() as u64;
            let msg = AppendEntries {
                term: self.term,
                leader: self.config.id,
                prev_log_index: prev,
                prev_log_term: prev_term,
                entries,
                leader_commit: self.log.commit,
                read_round: self.reads.round,
                heartbeat: false,
            };
            self.messages.push((peer, Request::Append(msg)));
            let pr = self.progress.get_mut(&peer).expect("present");
            if replicating {
                pr.next_index = last + 1;
                pr.inflight.push_back(last);
            } else {
                pr.mode = Mode::Probe { paused: true };
                return;
            }
        }
    }

    /// Heartbeats to every follower: asserts leadership, carries the commit index and the ReadIndex round.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let chunk_timeout = self.snapshot_chunk_timeout();
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            let pr = self.progress.get_mut(&peer).expect("present");
            match &mut pr.mode {
                Mode::Probe { .. } => {
                    // An empty heartbeat, which always fits a frame, so the follower hears from its leader
                    // whatever the probe carries; then the probe again in case it or its answer was lost
                    // (unless the follower refuses entries with term 0: then only after a wait).
                    let resend = pr.heartbeat_may_resend();
                    if resend && let Mode::Probe { paused } = &mut pr.mode {
                        *paused = false;
                    }
                    let hb = self.heartbeat_for(peer);
                    self.messages.push((peer, Request::Append(hb)));
                    self.send_append(peer);
                }
                Mode::Snapshot { waited, .. } => {
                    // The driver reports every chunk answered or failed; resend only if that seems lost,
                    // not on every heartbeat (chunks are large).
                    *waited += self.config.heartbeat_ticks;
                    if *waited >= chunk_timeout {
                        pr.chunk_in_flight = None;
                    }
                    let hb = self.heartbeat_for(peer);
                    self.messages.push((peer, Request::Append(hb)));
                    self.send_snapshot_chunk(peer);
                }
                Mode::Replicate => {
                    let hb = self.heartbeat_for(peer);
                    self.messages.push((peer, Request::Append(hb)));
                    self.send_append(peer);
                }
            }
        }
    }

    /// An empty AppendEntries anchored at what the follower is known to hold, so it succeeds and lets the
    /// follower commit up to there.
    pub(super) fn heartbeat_for(&self, peer: NodeId) -> AppendEntries {
        let matched = self.progress.get(&peer).map_or(0, |p| p.match_index);
        let (prev, prev_term) = match self.log.term(matched) {
            Some(t) => (matched, t),
            None => (0, 0),
        };
        AppendEntries {
            term: self.term,
            leader: self.config.id,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.log.commit,
            read_round: self.reads.round,
            heartbeat: true,
        }
    }

    /// Advances the commit index to the highest index a majority holds, but only through an entry of the
    /// current term (older entries commit with it; counting replicas of old-term entries is unsafe).
    pub(super) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        // Only voters count, this node included only if it votes (a leader that removed itself does not).
        let config = self.membership();
        let quorum = config.quorum();
        if quorum == 0 {
            return;
        }
        let own = self.log.persisted().min(self.log.last_index());
        let mut matches: Vec<Index> = config
            .voters
            .iter()
            .map(|&v| {
                if v == self.config.id {
                    own
                } else {
                    self.progress.get(&v).map_or(0, |p| p.match_index)
                }
            })
            .collect();
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[quorum - 1];
        if candidate > self.log.commit && self.log.term(candidate) == Some(self.term) {
            self.log.commit = candidate;
            self.on_commit_advanced();
        }
    }
}

/// Checks what a follower relies on in an AppendEntries: entries numbered from `prev_log_index + 1` without
/// gaps, terms never decreasing (starting at or above `prev_log_term`) and none above the leader's term.
fn well_formed(req: &AppendEntries) -> Result<(), String> {
    let mut prev_term = req.prev_log_term;
    if prev_term > req.term {
        return Err(format!(
            "prev_log_term {prev_term} is above the leader's term {}",
            req.term
        ));
    }
    for (expected, e) in (req.prev_log_index + 1..).zip(&req.entries) {
        if e.index != expected {
            return Err(format!(
                "entry {} where {expected} was due (prev_log_index {})",
                e.index, req.prev_log_index
            ));
        }
        if e.term < prev_term || e.term > req.term {
            return Err(format!(
                "entry {} has term {}, outside {prev_term}..={}",
                e.index, e.term, req.term
            ));
        }
        prev_term = e.term;
    }
    Ok(())
}
