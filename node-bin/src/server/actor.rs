//! The actor loop: one task owns the core, the storage and the state machine. Each turn takes one input plus
//! whatever else is queued, then drains the core's `Ready` batches (writes handed to the persist thread,
//! messages out, apply); replies leave once what they claim is durable (module `persist`).

use tokio::sync::mpsc;

use crate::kv::KvStore;
use crate::raft::{Payload, Ready, Request, Role, Snapshot, SnapshotMeta};
use crate::rpc::{EventBatch, KvReply, LogCell, NodeEvent, NodeStatus};

use super::{Cmd, Held, LOG_TAIL, Node};

impl Node {
    pub(super) async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    self.handle(cmd)?;
                    // Take whatever else is queued so one write covers the whole batch.
                    for _ in 0..512 {
                        match rx.try_recv() {
                            Ok(cmd) => self.handle(cmd)?,
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => {
                    // Time does not run for a term or vote that is not durable yet: a candidate's election
                    // timeout starts once its vote requests can go out, so a disk slower than the timeout
                    // delays an election instead of restarting it forever (module `persist`).
                    if !self.pipeline.hard_state_pending() {
                        self.raft.tick();
                    }
                    self.expire_reads();
                    self.expire_conf_changes();
                }
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    return Ok(());
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT: shutting down");
                    return Ok(());
                }
            }
            self.drain_ready()?;
        }
    }

    pub(super) fn handle(&mut self, cmd: Cmd) -> anyhow::Result<()> {
        match cmd {
            Cmd::Vote(req, tx) => {
                self.counters.vote_in += 1;
                let reply = self.raft.handle_request_vote(req);
                self.fresh.push(Held::Vote(reply, tx));
            }
            Cmd::Append(req, tx) => {
                self.counters.append_in += 1;
                let reply = self.raft.handle_append_entries(req);
                self.fresh.push(Held::Append(reply, tx));
            }
            Cmd::Snapshot(req, tx) => {
                self.counters.snapshot_in += 1;
                // What an AppendEntries success may still claim without waiting if this chunk completes a
                // snapshot: the core counts the snapshot as held from here on, before it is durable.
                let floor = self.raft.persisted_index().min(self.raft.commit_index());
                self.install_floor = Some(self.install_floor.map_or(floor, |f| f.min(floor)));
                let reply = self.raft.handle_install_snapshot(req);
                self.fresh.push(Held::Snapshot(reply, tx));
            }
            Cmd::TimeoutNow(req) => {
                self.counters.timeout_now_in += 1;
                self.raft.handle_timeout_now(req);
            }
            Cmd::Reply(from, reply) => {
                self.counters.reply_in += 1;
                self.raft.handle_reply(from, reply);
            }
            Cmd::Unreachable(peer, req) => {
                self.counters.peer_errors += 1;
                self.raft.report_unreachable(peer, &req);
            }
            Cmd::Client(req, tx) => {
                self.counters.client_in += 1;
                self.client_request(req, tx);
            }
            Cmd::Status(tx) => self.status_fresh.push(tx),
            Cmd::Persisted => self.take_persisted()?,
            Cmd::AppendRoundTrip(rtt) => self.timings.round_trip(rtt),
            Cmd::WritePath(tx) => drop(tx.send(self.timings.figures())),
            Cmd::Events(cursor, max, tx) => {
                let _ = tx.send(self.events_from(cursor, max));
            }
            Cmd::Transfer(target, tx) => {
                let _ = tx.send(
                    self.raft
                        .transfer_leadership(target)
                        .map_err(|e| e.to_string()),
                );
            }
            Cmd::ChangeMembership(change, tx) => self.change_membership(change, tx),
            Cmd::SetPeerAddr(id, addr, tx) => {
                let _ = tx.send(self.set_peer_addr(id, addr));
            }
            Cmd::Teach(cmd) => self.teach(cmd),
        }
        Ok(())
    }

    /// Logs the core's warnings, and removes the storage's lost-data marker once the core finished recovering
    /// (called after a turn's writes, so the hard state that records its counted vote is durable first).
    pub(super) fn log_warnings_and_recovery(&mut self) {
        for warning in self.raft.take_warnings() {
            tracing::warn!("{warning}");
        }
        if self.raft.recovering() {
            return;
        }
        let mut storage = self.storage.lock().unwrap_or_else(|e| e.into_inner());
        if storage.lost_data()
            && let Err(e) = storage.finish_recovery()
        {
            // The marker stays: the next start recovers again, which is safe.
            tracing::warn!(error = %e, "cannot remove the lost-data marker");
        }
    }

    pub(super) fn drain_ready(&mut self) -> anyhow::Result<()> {
        while self.raft.has_ready() {
            let ready = self.raft.take_ready();
            self.process_ready(ready);
        }
        self.install_floor = None;
        // Each reply and status request of this turn waits for the writes it depends on (module `persist`).
        for h in std::mem::take(&mut self.fresh) {
            let need = self.needs(&h);
            match h {
                // An AppendEntries success that waits for its entries leaves from the persist thread the
                // moment they are durable (`need` is the last job handed over; the thread drops it unsent if
                // that write fails, as `disk_full` drops what is held here).
                Held::Append(r, tx)
                    if need > self.pipeline.io.answered && !self.pipeline.io.failed =>
                {
                    self.pipeline.io.release(Box::new(move || tx.send(r)));
                }
                h => self.held.push((need, h)),
            }
        }
        // Status shows a term and vote only once durable (module `disk_full` relies on it); the log tail and
        // commit index it shows may include entries still being written.
        let need = if self.pipeline.hard_state_pending() {
            self.pipeline.submitted()
        } else {
            0
        };
        for tx in std::mem::take(&mut self.status_fresh) {
            self.status_waiting.push((need, tx));
        }
        self.after_persisted()?;
        if self.raft.role() != Role::Leader && !self.proposals.is_empty() {
            for (_, (_, tx)) in self.proposals.drain() {
                tx.send(KvReply::Retry {
                    reason: "leadership lost before commit".into(),
                });
            }
        }
        Ok(())
    }

    /// Sends one request to a peer, counting it.
    pub(super) fn send(&mut self, peer: crate::raft::NodeId, req: Request) {
        match &req {
            Request::Vote(_) => self.counters.vote_out += 1,
            Request::Append(_) => self.counters.append_out += 1,
            Request::Snapshot(_) => self.counters.snapshot_out += 1,
            Request::TimeoutNow(_) => self.counters.timeout_now_out += 1,
        }
        if let Some(tx) = self.peers.get(&peer) {
            let frozen = self.raft.frozen();
            let _ = tx.send(super::peers::Outgoing { req, frozen });
        }
    }

    pub(super) fn process_ready(&mut self, ready: Ready) {
        let Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot,
            messages,
            committed_entries,
            read_states,
            failed_reads,
            events,
        } = ready;
        // Written by the persist thread while the rest of the ready goes on (module `persist`).
        self.submit(hard_state, truncate_from, entries);
        // A snapshot from the leader is installed by the persist thread, after the writes before it and before
        // those after it (module `persist`); the actor goes on meanwhile.
        let installed = snapshot.is_some();
        if let Some(snapshot) = snapshot {
            let floor = self.install_floor.unwrap_or(0);
            self.submit_install(snapshot, floor);
        }
        // A request waits only for the term and vote it was decided in (a leader's new entries travel while it
        // writes them); one behind a waiting request waits too, so a peer sees them in order.
        let wait = self.pipeline.hard_state_pending() || !self.deferred.is_empty();
        for (peer, req) in messages {
            if wait {
                self.deferred
                    .push_back((self.pipeline.submitted(), peer, req));
            } else {
                self.send(peer, req);
            }
        }
        // Events wait the same way: a term or vote is told (event feed, log) only once durable, and so is an
        // installed snapshot.
        let wait =
            installed || self.pipeline.hard_state_pending() || !self.deferred_events.is_empty();
        for event in events {
            if wait {
                self.deferred_events
                    .push_back((self.pipeline.submitted(), event));
            } else {
                self.announce(event);
            }
        }
        for entry in committed_entries {
            if self.pipeline.installing.is_empty() {
                self.apply(entry);
            } else {
                // They follow the snapshot being installed: applied once its state machine is in.
                self.apply_after_install.push(entry);
            }
        }
        for rs in read_states {
            if let Some(read) = self.reads.get_mut(&rs.ctx) {
                read.index = Some(rs.index);
            }
        }
        for failed in failed_reads {
            if let Some(read) = self.reads.remove(&failed.ctx) {
                read.tx.send(KvReply::NotLeader {
                    leader: failed.leader_hint,
                });
            }
        }
        self.serve_reads();
        self.maybe_snapshot();
    }

    /// Logs and records one event of the core.
    pub(super) fn announce(&mut self, event: crate::raft::RaftEvent) {
        if let crate::raft::RaftEvent::LeaderChanged { leader, term } = event {
            if self.leader_announced == Some((term, leader)) {
                // A core rebuilt after a full disk learned the leader it already knew: not news.
                return;
            }
            self.leader_announced = Some((term, leader));
        }
        log_event(&event);
        self.record(NodeEvent::Raft(event));
    }

    /// Takes a snapshot of the state machine every `snapshot_every` applied entries and hands it to the persist
    /// thread, which saves it and compacts the WAL off the actor (module `persist`); one at a time.
    pub(super) fn maybe_snapshot(&mut self) {
        let applied = self.kv.applied_index();
        if self.cfg.snapshot_every == 0
            || applied < self.last_snapshot_index + self.cfg.snapshot_every
            || self.pipeline.compacting.is_some()
            || !self.pipeline.installing.is_empty()
            || !self.snapshot_allowed()
        {
            return;
        }
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: applied,
                last_term: self.last_applied_term,
            },
            data: self.kv.snapshot(),
            config: Some(self.raft.conf_at(applied)),
        };
        self.submit_compaction(applied, snapshot);
    }

    pub(super) fn record(&mut self, event: NodeEvent) {
        self.events.record(event);
    }

    pub(super) fn events_from(&self, cursor: u64, max: u32) -> EventBatch {
        self.events.from(cursor, max)
    }

    /// Up to `max` entries from index `from` on, as the dashboard draws them.
    pub(super) fn log_cells(&self, from: u64, max: usize) -> Vec<LogCell> {
        self.raft
            .entries_from(from, max)
            .into_iter()
            .map(|e| LogCell {
                index: e.index,
                term: e.term,
                text: match &e.payload {
                    Payload::Noop => "noop".to_string(),
                    Payload::Command(d) => KvStore::describe(d),
                    Payload::Config(c) => format!("config {c}"),
                },
            })
            .collect()
    }

    pub(super) fn status(&self) -> NodeStatus {
        let mut core = self.raft.status();
        core.commit_index = self.reported_commit();
        let from = core
            .last_log_index
            .saturating_sub(LOG_TAIL as u64 - 1)
            .max(1);
        let log_tail = self.log_cells(from, LOG_TAIL);
        NodeStatus {
            cluster_id: self.cfg.cluster_id.clone(),
            pid: std::process::id(),
            core,
            applied_index: self.kv.applied_index(),
            applied_hash: u64::from(self.kv.applied_hash()),
            log_tail,
            rpc: self.counters.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            keys: self.kv.len() as u64,
            recovering: self.raft.recovering(),
            recovery_wait: self.raft.recovery_wait(),
            frozen: self.raft.frozen(),
            election_due_ms: self.election_due_ms(),
            recovered: self.raft.recovered().cloned(),
            paxos: None,
            first_log_index: self
                .raft
                .entries_from(0, 1)
                .first()
                .map_or(self.raft.snapshot_meta().last_index + 1, |e| e.index),
        }
    }
}

pub(super) fn log_event(event: &crate::raft::RaftEvent) {
    use crate::raft::RaftEvent as E;
    match event {
        E::RoleChanged { role, term } => tracing::info!(term, "became {}", role.as_str()),
        E::LeaderChanged { leader, term } => tracing::info!(term, ?leader, "leader changed"),
        E::LogTruncated { from_index, count } => {
            tracing::warn!(from_index, count, "truncated conflicting log entries")
        }
        E::SnapshotInstalled { meta } => {
            tracing::info!(index = meta.last_index, "snapshot installed")
        }
        E::QuorumLost { term } => {
            tracing::warn!(term, "lost contact with a majority: stepping down")
        }
        E::ConfigChanged { index, config } => {
            tracing::info!(index, "configuration {config} in effect (appended)")
        }
        E::ConfigCommitted { index, config } => {
            tracing::info!(index, "configuration {config} committed")
        }
        E::Removed { index } => {
            tracing::warn!(
                index,
                "removed from the cluster by the configuration committed at {index}"
            )
        }
        other => tracing::debug!(?other, "raft event"),
    }
}
