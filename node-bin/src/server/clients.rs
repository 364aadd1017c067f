//! Work that clients and the control API hand to the actor: key-value writes and reads, configuration
//! changes; each is answered once its entry is applied (or its read confirmed), or refused with the reason.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::kv::{KvCommand, KvOp, KvResult, KvStore};
use crate::raft::{ConfChange, ConfChangeDone, Entry, MembershipError, Payload};
use crate::rpc::{self, KvReply, KvRequest};

use super::{ConfChangeAnswer, Node, PendingConfChange, PendingRead};

impl Node {
    /// Proposes `change` through the core; the answer waits for the entry to commit (see
    /// [`Node::answer_conf_changes`]).
    pub(super) fn change_membership(
        &mut self,
        change: ConfChange,
        tx: oneshot::Sender<ConfChangeAnswer>,
    ) {
        if let ConfChange::AddLearner(id) = change
            && id != self.cfg.id
            && !self.peers.contains_key(&id)
        {
            let _ = tx.send(Err(MembershipError::NoAddress { id }));
            return;
        }
        match self.raft.propose_conf_change(change) {
            Ok((index, term)) => {
                tracing::info!(%change, index, term, "proposed configuration change");
                self.conf_changes.push(PendingConfChange {
                    index,
                    term,
                    tx,
                    since: Instant::now(),
                });
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    }

    /// Answers configuration changes whose entry was applied: done when it is the entry proposed, refused
    /// (`NotLeader`) when a new leader replaced it.
    pub(super) fn answer_conf_changes(&mut self, entry: &Entry) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_changes)
            .into_iter()
            .partition(|p| p.index == entry.index);
        self.conf_changes = rest;
        for p in mine {
            let answer = match &entry.payload {
                Payload::Config(config) if entry.term == p.term => Ok(ConfChangeDone {
                    index: entry.index,
                    config: config.clone(),
                }),
                _ => Err(MembershipError::NotLeader {
                    leader: self.raft.leader(),
                }),
            };
            let _ = p.tx.send(answer);
        }
    }

    /// Answers `Timeout` to configuration changes not committed within [`rpc::CONF_CHANGE_TIMEOUT`].
    pub(super) fn expire_conf_changes(&mut self) {
        let applied = self.kv.applied_index();
        let (expired, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conf_changes)
            .into_iter()
            .partition(|p| p.since.elapsed() >= rpc::CONF_CHANGE_TIMEOUT || p.index <= applied);
        self.conf_changes = rest;
        for p in expired {
            // An entry at or below the applied index that was not answered was covered by a snapshot from
            // the leader: its outcome is unknown here.
            let _ = p.tx.send(Err(MembershipError::Timeout));
        }
    }

    pub(super) fn client_request(&mut self, req: KvRequest, tx: super::ReplyTo<KvReply>) {
        if let Err(e) = req.op.check_size() {
            tx.send(KvReply::TooLarge(e));
            return;
        }
        if !matches!(req.op, KvOp::Get { .. })
            && let Some(refusal) = self.refuse_write()
        {
            tx.send(refusal);
            return;
        }
        if let KvOp::Get { key } = &req.op {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            match self.raft.read_index(ctx) {
                Ok(()) => {
                    self.reads.insert(
                        ctx,
                        PendingRead {
                            key: key.clone(),
                            tx,
                            index: None,
                            since: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    tx.send(KvReply::NotLeader {
                        leader: e.leader_hint,
                    });
                }
            }
            return;
        }
        let cmd = KvCommand {
            client_id: req.client_id,
            seq: req.seq,
            op: req.op,
        };
        let command = KvStore::encode_command(&cmd);
        if command.len() > rpc::MAX_COMMAND_BYTES {
            // Unreachable for operations that pass check_size; a last guard for the log's frame budget.
            tx.send(KvReply::TooLarge(crate::kv::SizeError::Value {
                bytes: cmd.op.value_bytes(),
                limit: rpc::MAX_VALUE_BYTES,
            }));
            return;
        }
        match self.raft.propose(command) {
            Ok((index, term)) => {
                self.timings.proposed(index);
                if let Some((_, old)) = self.proposals.insert(index, (term, tx)) {
                    old.send(KvReply::Retry {
                        reason: "entry was overwritten".into(),
                    });
                }
            }
            Err(e) => {
                tx.send(KvReply::NotLeader {
                    leader: e.leader_hint,
                });
            }
        }
    }

    /// Answers `Retry` to reads not served in time (their confirmation or the apply they wait for may never
    /// come: a leader cut off from its followers, a heartbeat round lost), so none waits for good.
    pub(super) fn expire_reads(&mut self) {
        let timeout = self.read_timeout();
        let expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.since.elapsed() >= timeout)
            .map(|(&ctx, _)| ctx)
            .collect();
        for ctx in expired {
            if let Some(read) = self.reads.remove(&ctx) {
                read.tx.send(KvReply::Retry {
                    reason: format!("read not confirmed within {timeout:?}"),
                });
            }
        }
    }

    /// How long a read may wait for its confirmation and apply: four election timeouts, at least 2 s.
    pub(super) fn read_timeout(&self) -> Duration {
        (self.cfg.election_timeout.1 * 4).max(Duration::from_secs(2))
    }

    pub(super) fn apply(&mut self, entry: Entry) {
        if entry.index <= self.kv.applied_index() {
            return;
        }
        let proposed = self.timings.committed(entry.index);
        let applying = std::time::Instant::now();
        let config_bytes;
        let bytes: &[u8] = match &entry.payload {
            Payload::Noop => &[],
            Payload::Command(data) => data,
            Payload::Config(c) => {
                config_bytes = bincode::serialize(c).unwrap_or_default();
                &config_bytes
            }
        };
        self.kv.chain_applied(entry.index, entry.term, bytes);
        if !self.conf_changes.is_empty() {
            self.answer_conf_changes(&entry);
        }
        let result = match &entry.payload {
            Payload::Noop | Payload::Config(_) => {
                self.kv.set_applied_index(entry.index);
                None
            }
            Payload::Command(data) => match KvStore::decode_command(data) {
                Ok(cmd) => Some(self.kv.apply(entry.index, &cmd)),
                Err(e) => {
                    self.kv.set_applied_index(entry.index);
                    Some(KvResult::Error(format!("undecodable command: {e}")))
                }
            },
        };
        self.last_applied_term = entry.term;
        if let Some((term, tx)) = self.proposals.remove(&entry.index) {
            let reply = match result {
                Some(r) if term == entry.term => KvReply::Done(r),
                _ => KvReply::Retry {
                    reason: "entry was replaced by a new leader".into(),
                },
            };
            tx.send(reply);
            if let Some(at) = proposed {
                self.timings.answered(at, applying.elapsed());
            }
        }
    }

    pub(super) fn serve_reads(&mut self) {
        let applied = self.kv.applied_index();
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
            .map(|(&ctx, _)| ctx)
            .collect();
        for ctx in ready {
            if let Some(read) = self.reads.remove(&ctx) {
                let value = self.kv.get(&read.key).map(str::to_owned);
                read.tx.send(KvReply::Done(KvResult::Value(value)));
            }
        }
    }
}
