//! The Paxos node's durability on the persist thread it shares with the Raft node (module `durable`): the
//! promise and accepted values of each ready are handed over as one write, written in order with one
//! `fdatasync` for every write that queued meanwhile (group commit), and so are snapshots, taken locally or
//! received from a peer. The actor goes on ticking, heartbeating and learning meanwhile.
//!
//! What may go out before a write is durable, and what may not ("Paxos Made Live" §4: an acceptor's state
//! must be on disk before it answers; the same rule as the Raft node's, module `persist`):
//! - A promise, and an accepted answer that names slots, wait until everything handed over before them is
//!   durable: what they claim is in a write of their own ready or an earlier one.
//! - While a new promise is being written, every message waits (a prepare of this node's own new ballot among
//!   them), and so does every message behind a waiting one, so a peer sees them in order.
//! - The leader's accepts, heartbeats, chosen values and catch-up travel at once: the leader counts its own
//!   acceptance only once the ready that carried it is reported durable
//!   ([`crate::paxos::Paxos::on_persisted_through`]).
//! - Chosen values are applied at once (chosen is a fact a majority's durable acceptances make), except those
//!   after a snapshot being installed, which wait for its state machine.
//! - Status waits for everything handed over before it, and shows the durable promise.
//!
//! Any failure stops the node (fail-stop): an acceptor must never answer for state it could not store.

use std::collections::VecDeque;

use anyhow::Context as _;

use crate::kv::KvStore;
use crate::paxos::{Accepted, Ballot, Message, Payload, Slot};
use crate::raft::NodeId;
use crate::rpc::NodeStatus;
use crate::storage::StorageError;
use crate::storage::paxos::PaxosStorage;

use super::super::durable::{self, Answer, Durable};
use super::PaxosNode;

/// The durable half of one ready.
pub(in crate::server) struct PaxosWrite {
    /// The new promise, if it changed.
    promised: Option<Ballot>,
    /// Values accepted, by slot.
    accepted: Vec<(Slot, Accepted)>,
    /// The number of the ready ([`crate::paxos::Paxos::readies_taken`]).
    ready: u64,
}

impl Durable for PaxosStorage {
    type Write = PaxosWrite;
    type Snapshot = (Slot, Vec<u8>);

    fn joins(_: &PaxosWrite) -> bool {
        // A later value for a slot replaces an earlier one within a unit, as across units.
        true
    }

    fn write(&mut self, group: &[&PaxosWrite]) -> Result<bool, StorageError> {
        let promised = group.iter().rev().find_map(|w| w.promised);
        let accepted: Vec<(Slot, Accepted)> = group
            .iter()
            .flat_map(|w| w.accepted.iter().cloned())
            .collect();
        let before = self.wal_bytes();
        self.persist(promised, &accepted)?;
        Ok(self.wal_bytes() != before)
    }

    fn compact(&mut self, (slot, data): &(Slot, Vec<u8>)) -> Result<(), StorageError> {
        self.save_snapshot(*slot, data.clone())
    }

    fn install(&mut self, (slot, data): &(Slot, Vec<u8>)) -> Result<(), StorageError> {
        self.install_snapshot(*slot, data.clone())
    }

    fn state_machine((_, data): &(Slot, Vec<u8>)) -> &[u8] {
        data
    }
}

/// The persist thread and what the Paxos node tracks of it.
pub(super) struct Persist {
    /// The persist thread and its job numbers.
    pub(super) io: durable::Pipeline<PaxosStorage>,
    /// The promise of the last write handed over that carried one.
    submitted_promise: Ballot,
    /// The promise known durable.
    pub(super) durable_promise: Ballot,
    /// Messages waiting for the job of this number.
    deferred: VecDeque<(u64, NodeId, Message)>,
    /// Status requests waiting for the job of this number.
    status_waiting: Vec<(u64, tokio::sync::oneshot::Sender<NodeStatus>)>,
    /// Snapshots from peers being installed (job number, last slot), oldest first.
    installing: VecDeque<(u64, Slot)>,
    /// Chosen values after a snapshot being installed, applied once its state machine is in.
    apply_after_install: Vec<(Slot, Payload)>,
    /// The compaction in flight (job number, slot, state machine bytes): at most one.
    compacting: Option<(u64, Slot, Vec<u8>)>,
}

impl Persist {
    /// Starts the persist thread over `storage`, whose durable promise is `promised`; it wakes the actor
    /// through `wake` after each job.
    pub(super) fn start(
        storage: PaxosStorage,
        promised: Ballot,
        wake: tokio::sync::mpsc::WeakUnboundedSender<super::Cmd>,
    ) -> std::io::Result<Persist> {
        let storage = std::sync::Arc::new(std::sync::Mutex::new(storage));
        let io = durable::Pipeline::start(storage, move || {
            wake.upgrade()
                .is_some_and(|w| w.send(super::Cmd::Persisted).is_ok())
        })?;
        Ok(Persist {
            io,
            submitted_promise: promised,
            durable_promise: promised,
            deferred: VecDeque::new(),
            status_waiting: Vec::new(),
            installing: VecDeque::new(),
            apply_after_install: Vec::new(),
            compacting: None,
        })
    }

    fn promise_pending(&self) -> bool {
        self.submitted_promise != self.durable_promise
    }
}

/// Whether a message claims an acceptor's state that must be durable before it leaves.
fn claims_durable(m: &Message) -> bool {
    match m {
        Message::Promise { .. } => true,
        Message::Accepted { slots, .. } => !slots.is_empty(),
        _ => false,
    }
}

impl PaxosNode {
    /// Hands the durable half of a ready over (the ready of number `ready`), if there is any.
    pub(super) fn submit(
        &mut self,
        promised: Option<Ballot>,
        accepted: Vec<(Slot, Accepted)>,
        ready: u64,
    ) {
        if promised.is_none() && accepted.is_empty() {
            return;
        }
        let p = &mut self.persist;
        if let Some(b) = promised {
            p.submitted_promise = b;
        }
        p.io.write(PaxosWrite {
            promised,
            accepted,
            ready,
        });
    }

    /// Hands a peer's snapshot over: installed after the writes before it, and its state machine swapped in
    /// when the persist thread answers.
    pub(super) fn submit_install(&mut self, slot: Slot, data: Vec<u8>) {
        let seq = self.persist.io.install((slot, data));
        self.persist.installing.push_back((seq, slot));
    }

    /// Whether a snapshot from a peer is being installed.
    pub(super) fn installing(&self) -> bool {
        !self.persist.installing.is_empty()
    }

    /// Whether a snapshot may be taken now: one compaction at a time, and none while a peer's snapshot is
    /// being installed.
    pub(super) fn may_compact(&self) -> bool {
        self.persist.compacting.is_none() && !self.installing()
    }

    /// Hands a snapshot taken at applied slot `slot` over; the core drops the slots it covers once it is
    /// durable.
    pub(super) fn submit_compaction(&mut self, slot: Slot, data: Vec<u8>) {
        debug_assert!(self.may_compact(), "one compaction at a time");
        let seq = self.persist.io.compact((slot, data.clone()));
        self.persist.compacting = Some((seq, slot, data));
    }

    /// Sends a message now, or once what it depends on is durable (see the module docs).
    pub(super) fn send_or_defer(&mut self, to: NodeId, m: Message) {
        let p = &self.persist;
        let wait = claims_durable(&m) || p.promise_pending() || !p.deferred.is_empty();
        let need = p.io.submitted;
        if wait && need > p.io.answered {
            self.persist.deferred.push_back((need, to, m));
        } else {
            self.send(to, m);
        }
    }

    /// Applies a chosen value now, or after the snapshot being installed.
    pub(super) fn apply_or_keep(&mut self, slot: Slot, value: Payload) {
        if self.installing() {
            self.persist.apply_after_install.push((slot, value));
        } else {
            self.apply(slot, value);
        }
    }

    /// Answers a status request once everything handed over before it is durable.
    pub(super) fn status_when_durable(&mut self, tx: tokio::sync::oneshot::Sender<NodeStatus>) {
        let need = self.persist.io.submitted;
        if need <= self.persist.io.answered {
            let _ = tx.send(self.status());
        } else {
            self.persist.status_waiting.push((need, tx));
        }
    }

    /// Takes every answer already in, then lets out what they made durable.
    pub(super) fn take_persisted(&mut self) -> anyhow::Result<()> {
        while let Some(answer) = self.persist.io.try_answer() {
            self.on_answer(answer)?;
        }
        let answered = self.persist.io.answered;
        while self
            .persist
            .deferred
            .front()
            .is_some_and(|(need, _, _)| *need <= answered)
        {
            let (_, to, m) = self.persist.deferred.pop_front().expect("front");
            self.send(to, m);
        }
        let waiting = std::mem::take(&mut self.persist.status_waiting);
        for (need, tx) in waiting {
            if need <= answered {
                let _ = tx.send(self.status());
            } else {
                self.persist.status_waiting.push((need, tx));
            }
        }
        Ok(())
    }

    fn on_answer(&mut self, answer: Answer<PaxosStorage>) -> anyhow::Result<()> {
        match answer {
            Answer::Written(done) => {
                done.result.map_err(|e| match e {
                    Some(e) => anyhow::Error::new(e)
                        .context("making the promise and accepted values durable"),
                    None => anyhow::anyhow!("a write was skipped after an earlier failure"),
                })?;
                if let Some(b) = done.write.promised {
                    self.persist.durable_promise = b;
                }
                self.core.on_persisted_through(done.write.ready);
                Ok(())
            }
            Answer::Compacted(seq, result) => {
                let Some((_, slot, data)) = self.persist.compacting.take_if(|c| c.0 == seq) else {
                    anyhow::bail!("the answer to compaction {seq} was not expected");
                };
                result
                    .map_err(|e| match e {
                        Some(e) => anyhow::Error::new(e),
                        None => anyhow::anyhow!("skipped after an earlier failure"),
                    })
                    .context("saving a snapshot")?;
                self.core.compact(slot, data);
                self.last_snapshot = self.last_snapshot.max(slot);
                Ok(())
            }
            Answer::Installed(seq, result) => {
                let Some((_, slot)) = self.persist.installing.pop_front() else {
                    anyhow::bail!("the answer to install {seq} was not expected");
                };
                let kv: Box<KvStore> = result.map_err(|e| {
                    e.unwrap_or_else(|| anyhow::anyhow!("skipped after an earlier failure"))
                        .context("installing a snapshot received from a peer")
                })?;
                self.kv = *kv;
                self.last_snapshot = slot;
                if self.persist.installing.is_empty() {
                    for (slot, value) in std::mem::take(&mut self.persist.apply_after_install) {
                        // Values a later snapshot covered were taken before it: its state machine has them.
                        if slot > self.kv.applied_index() {
                            self.apply(slot, value);
                        }
                    }
                }
                Ok(())
            }
        }
    }
}
