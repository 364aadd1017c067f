//! The consensus core: a pure, deterministic Raft state machine.
//!
//! No I/O, clocks or OS randomness here. Time moves when the driver calls [`Raft::tick`]; randomness comes
//! from the seed in [`Config`]. Requests go in through `handle_*`, replies through [`Raft::handle_reply`],
//! client work through [`Raft::propose`] and [`Raft::read_index`]; the work that results comes out as a
//! [`Ready`] (see its docs for the order the driver must follow).

mod election;
#[cfg(test)]
mod liveness_tests;
mod log;
pub mod membership;
#[cfg(test)]
mod membership_tests;
mod progress;
mod read_index;
mod recovery;
#[cfg(test)]
mod recovery_tests;
mod replication;
mod snapshot;
mod teach;
#[cfg(test)]
mod teach_tests;
#[cfg(test)]
mod tests;
pub mod types;

use std::collections::BTreeMap;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use self::log::RaftLog;
use self::progress::Progress;
use self::read_index::ReadIndex;
pub use teach::{Campaign, TeachRefused};
pub use types::*;

/// Tunables of the core, in ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The other voters of the bootstrap configuration, used only when the restored state carries no
    /// configuration (an empty node) and `join` is false.
    pub peers: Vec<NodeId>,
    /// Start with no configuration (joining a running cluster): neither voter nor learner until a leader's
    /// log or snapshot says otherwise. Used only when the restored state carries no configuration.
    pub join: bool,
    /// Election timeout lower bound, in ticks (inclusive).
    pub election_ticks_min: u32,
    /// Election timeout upper bound, in ticks (exclusive); each timeout is drawn uniformly from the range.
    pub election_ticks_max: u32,
    /// Heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// Run a pre-vote round before a real election.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down; followers that
    /// heard from a leader within the minimum election timeout refuse (pre-)votes (leader lease).
    pub check_quorum: bool,
    /// AppendEntries batches in flight per follower.
    pub max_inflight: usize,
    /// Most entries in one AppendEntries.
    pub max_batch_entries: usize,
    /// Most payload bytes in one AppendEntries.
    pub max_batch_bytes: usize,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Seed of the RNG that randomises election timeouts.
    pub seed: u64,
}

/// How many entries a leader keeps in memory after compacting, for followers catching up from the log (etcd
/// calls them catch-up entries). Without them a follower even one entry behind the compaction point needs the
/// whole snapshot, and a follower on a slow link, which is always a little behind, gets a new snapshot at
/// nearly every compaction (etcd#2698, etcd#3292). The default keeps nothing (the old behaviour); the node
/// binary sets it with [`Raft::set_catch_up`].
///
/// At a compaction at index `i` the log keeps the entries after `min(i - entries, m)`, where `m` is the lowest
/// match index of a follower that answered within the last election timeout and is not receiving a snapshot
/// (it is catching up from the log right now), but never more than `bytes` of entry payload in all: a lagging
/// follower whose missing entries are bigger than that gets the snapshot. Entries a snapshot transfer in
/// progress needs are kept regardless (see [`Raft::compact`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Entries always kept before the snapshot index (when they fit in `bytes`).
    pub entries: u64,
    /// Most bytes of entries ([`Entry::size_hint`]) kept before the snapshot index for catching-up followers.
    pub bytes: u64,
}

/// What the core starts from: the durable state read back from storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Term and vote.
    pub hard_state: HardState,
    /// Latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Log entries after the snapshot, in order.
    pub entries: Vec<Entry>,
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Only a leader can transfer.
    #[error("this node is not the leader (leader: {leader_hint:?})")]
    NotLeader {
        /// The known leader.
        leader_hint: Option<NodeId>,
    },
    /// The target is not a voter of the configuration (unknown, a learner, or removed).
    #[error("node {0} is not a voter of the configuration; only a voter can take over")]
    UnknownNode(NodeId),
    /// The target already leads.
    #[error("node {0} already leads")]
    AlreadyLeader(NodeId),
}

/// A leadership transfer in progress.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    /// The node that should take over.
    target: NodeId,
    /// Ticks since it started; it is abandoned after an election timeout.
    elapsed: u32,
    /// TimeoutNow was sent.
    sent: bool,
}

/// The Raft consensus core of one node. See the module docs for how a driver uses it.
#[derive(Debug)]
pub struct Raft {
    config: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    rng: ChaCha8Rng,
    /// Ticks since the election timer was reset (on a leader: since the last CheckQuorum round).
    election_elapsed: u32,
    /// This term's randomised election timeout.
    election_timeout: u32,
    /// Ticks the driver last took to make a write durable (see [`Raft::set_vote_latency`]): a candidate waits
    /// this much longer than its election timeout for its votes.
    vote_latency: u32,
    /// Ticks since the leader last sent heartbeats.
    heartbeat_elapsed: u32,
    /// Ticks since a leader was last heard from (the leader lease of CheckQuorum).
    leader_contact: u32,
    /// Votes (or pre-votes) received in the current campaign: voter -> granted.
    votes: BTreeMap<NodeId, bool>,
    /// The current campaign was started by TimeoutNow.
    campaign_transfer: bool,
    /// Leader only: per-follower replication state.
    progress: BTreeMap<NodeId, Progress>,
    /// Leader only: a transfer in progress.
    transfer: Option<Transfer>,
    /// Leader only: ReadIndex bookkeeping.
    reads: ReadIndex,
    /// Follower only: chunks of a snapshot being received.
    incoming_snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// A received snapshot the driver has not taken yet.
    pending_snapshot: Option<Snapshot>,
    /// Proposals arrived since the last ready: replicate them when the ready is taken, in as few batches
    /// as possible.
    broadcast_pending: bool,
    /// Term and vote as last handed to the driver.
    last_hard_state: HardState,
    messages: Vec<(NodeId, Request)>,
    events: Vec<RaftEvent>,
    read_states: Vec<ReadState>,
    failed_reads: Vec<ReadFailed>,
    /// Id of the next snapshot chunk sent (answers echo it).
    next_chunk_id: u64,
    /// Set while this node recovers from possible data loss (started empty, or marked by the driver): it
    /// neither votes nor campaigns nor counts towards a quorum. See the `recovery` module.
    recovery: Option<recovery::Recovery>,
    /// The recoveries this core finished and how the latest ended (see [`Raft::recovered`]).
    recovered: Option<Recovered>,
    /// Things the driver should log (refused malformed requests).
    warnings: Vec<String>,
    /// Configurations that may still be in effect, oldest first, never empty: the one in effect at the
    /// snapshot (or the bootstrap one), then one per configuration entry after it. The last is in effect; a
    /// truncation pops the ones it removes (see the `membership` module).
    confs: Vec<ConfState>,
    /// The configuration used when neither the log nor a snapshot carries one: this node and
    /// `Config::peers` as voters, or nothing for a node joining a running cluster.
    bootstrap: ConfState,
    /// This node was a member of a configuration in effect here (so a configuration without it means it
    /// was removed, not that it waits to be added). True from the start unless it joined.
    was_member: bool,
    /// The configuration index whose "no longer a member" line was logged.
    removed_warned: Option<Index>,
    /// A voter's committed configuration at this index excludes this node, and no configuration in this
    /// node's log is newer: it was removed without holding the removal, and never campaigns (see the
    /// `membership` module). Cleared when a later configuration that includes it takes effect.
    removed_at: Option<Index>,
    /// The configuration index whose commit was reported.
    conf_commit_reported: Option<Index>,
    /// Leader only: its committed configuration excludes it; it hands over and steps down.
    leaving: bool,
    /// The configuration in effect at the latest snapshot, sent with it.
    snapshot_conf: Option<ConfState>,
    /// Leader only: nodes a configuration change removed, still replicated to until they hold that
    /// change (at the index given) and know it committed.
    departing: BTreeMap<NodeId, Index>,
    /// Leader only: removed nodes already told (or given up on) in this term.
    released: std::collections::BTreeSet<NodeId>,
    /// Entries kept after a compaction for followers catching up from the log.
    catch_up: CatchUp,
    /// A leader that removed itself and handed over: see [`HandedOver`].
    handed_over: Option<HandedOver>,
    /// Teaching mode: the timers that make a node act on its own (election timeout, heartbeats, CheckQuorum's
    /// step-down, hand-over and recovery probes) stand still; see the `teach` module.
    frozen: bool,
    /// Campaigns (pre-vote rounds and elections) started since the process began: the next one's
    /// [`RequestVote::round`](types::RequestVote::round) is one more. Not persisted; an observer tells two
    /// processes' rounds apart by the process.
    campaigns: u64,
}

/// A leader that removed itself sent TimeoutNow and stepped down. If that message is lost, no voter
/// campaigns until its election timer runs out (after its lease), and the cluster waits an election timeout
/// for nothing. So while the term has not moved on, TimeoutNow goes to the next voter, best match first, every
/// two heartbeat intervals: longer than a round trip (so a target that got it has already raised the term on
/// the other voters), shorter than the minimum election timeout. Each voter is told at most once; a voter
/// that already campaigned ignores it (its term is higher).
#[derive(Clone, Debug)]
struct HandedOver {
    /// The term it led.
    term: Term,
    /// Voters not yet told, best match first.
    next: Vec<NodeId>,
    /// Ticks since the last TimeoutNow.
    elapsed: u32,
}

impl Raft {
    /// A core restored from durable state. It starts as a follower with commit and applied at the snapshot.
    /// An empty `restored` is a new member; a driver whose storage may have lost data (a wiped directory, a cut
    /// record) calls [`Raft::mark_lost_data`] next.
    pub fn new(config: Config, restored: Restored) -> Raft {
        let mut config = config;
        config.peers.retain(|&p| p != config.id);
        config.peers.sort_unstable();
        config.peers.dedup();
        config.election_ticks_min = config.election_ticks_min.max(1);
        config.election_ticks_max = config.election_ticks_max.max(config.election_ticks_min + 1);
        config.heartbeat_ticks = config.heartbeat_ticks.max(1);
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let hs = restored.hard_state;
        let snapshot_conf = restored.snapshot.as_ref().and_then(|s| s.config.clone());
        let snapshot_index = restored.snapshot.as_ref().map_or(0, |s| s.meta.last_index);
        let has_snapshot = restored.snapshot.is_some();
        let entry_confs: Vec<ConfState> = restored
            .entries
            .iter()
            .filter(|e| e.index > snapshot_index)
            .filter_map(|e| match &e.payload {
                Payload::Config(c) => Some(ConfState {
                    index: e.index,
                    config: c.clone(),
                }),
                _ => None,
            })
            .collect();
        let lease = config.election_ticks_min;
        let bootstrap = ConfState {
            index: 0,
            config: if config.join {
                Membership::default()
            } else {
                Membership::with_voters(
                    std::iter::once(config.id).chain(config.peers.iter().copied()),
                )
            },
        };
        let mut raft = Raft {
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log: RaftLog::new(restored.snapshot, restored.entries),
            rng,
            election_elapsed: 0,
            election_timeout: 0,
            vote_latency: 0,
            heartbeat_elapsed: 0,
            leader_contact: lease,
            votes: BTreeMap::new(),
            campaign_transfer: false,
            progress: BTreeMap::new(),
            transfer: None,
            reads: ReadIndex::default(),
            incoming_snapshot: None,
            pending_snapshot: None,
            broadcast_pending: false,
            last_hard_state: hs,
            messages: Vec::new(),
            events: Vec::new(),
            read_states: Vec::new(),
            failed_reads: Vec::new(),
            next_chunk_id: 1,
            recovery: None,
            recovered: None,
            warnings: Vec::new(),
            confs: Vec::new(),
            bootstrap,
            was_member: !config.join,
            removed_warned: None,
            removed_at: None,
            conf_commit_reported: None,
            leaving: false,
            snapshot_conf: None,
            departing: BTreeMap::new(),
            released: Default::default(),
            catch_up: CatchUp::default(),
            handed_over: None,
            frozen: false,
            campaigns: 0,
            config,
        };
        // The configuration comes from the snapshot and the log; the flags only for a node without one.
        let base = snapshot_conf.unwrap_or_else(|| raft.bootstrap.clone());
        raft.snapshot_conf = has_snapshot.then(|| base.clone());
        raft.confs.push(base);
        let last = raft.log.last_index();
        raft.confs
            .extend(entry_confs.into_iter().filter(|c| c.index <= last));
        if raft.confs.iter().any(|c| c.config.contains(raft.config.id)) {
            raft.was_member = true;
        }
        let latest = raft.confs.pop().expect("one pushed above");
        raft.set_membership(latest.index, latest.config);
        // What the node starts with is in its status, not news for the event feed (which reports changes);
        // a "no longer a member" warning for a restarted removed node stays.
        raft.events.clear();
        // An empty restored state is a new member here: only the driver's storage knows whether it lost data
        // (then it calls `mark_lost_data`; the `recovery` module says how the node binary tells the two apart).
        raft.reset_election_timer();
        raft
    }

    /// Starts the commit index of a core just built by [`Raft::new`] at `known`, an index the driver knew
    /// committed before it rebuilt the core in the same process (after a full disk), as far as the restored
    /// log reaches (never past its last entry, never below the snapshot). Entries from the snapshot up to
    /// there come out as `committed_entries` again; the driver skips those it applied.
    ///
    /// Why this is safe: an entry known committed at index i is the entry every future leader holds at i
    /// (Leader Completeness), so a follower never removes it (it refuses a leader that contradicts its commit
    /// index, and no legitimate one does). Every entry the durable log holds at or below `known` is therefore
    /// either one it held when `known` was observed (all writes of that turn had succeeded, so the log was
    /// durable up to the commit index) or one a leader sent since, which matches the committed entry at its
    /// index. A snapshot the driver stored in between covers only committed entries too. So every restored
    /// entry up to `min(known, last index)` is committed, with the term it has here. The driver must pass
    /// only an index observed committed by a core of this node whose log was durable up to it; a node that
    /// restarts as a new process starts from its snapshot as usual.
    ///
    /// Without it the rebuilt core counts those committed entries as uncommitted, and a snapshot from the
    /// leader reports them as superseded ([`RaftEvent::LogTruncated`]) though they match the leader's.
    /// Events this raises (the committed configuration, a removal) are not news, so none are reported.
    pub fn restore_commit(&mut self, known: Index) {
        let to = known.min(self.log.last_index());
        if to > self.log.commit {
            self.log.commit = to;
            let pending = self.events.len();
            self.note_commit();
            self.events.truncate(pending);
        }
    }

    /// The leader this follower trusts under CheckQuorum's lease: (term, leader, ticks since it was last
    /// heard from). A driver that rebuilds the core in the same process (after a full disk) hands it to
    /// [`Raft::restore_lease`], so the new core does not grant pre-votes at once to a node cut off from a
    /// leader that is alive.
    pub fn lease(&self) -> Option<(Term, NodeId, u32)> {
        match self.leader {
            Some(l) if l != self.config.id && self.role == Role::Follower => {
                Some((self.term, l, self.leader_contact))
            }
            _ => None,
        }
    }

    /// Carries over the lease of a core this one replaces in the same process (see [`Raft::lease`]). Ignored
    /// unless this core is a follower in that same term (the durable term may be older, if the full disk
    /// kept the newer one from being stored), or it is recovering from a possible loss of data.
    pub fn restore_lease(&mut self, lease: (Term, NodeId, u32)) {
        let (term, leader, contact) = lease;
        if term != self.term || self.role != Role::Follower || self.recovery.is_some() {
            return;
        }
        // Not news for the feed: the driver already reported this leader.
        self.leader = Some(leader);
        self.leader_contact = contact;
    }

    /// One tick of logical time: drives election timeouts, heartbeats, CheckQuorum and transfer timeouts.
    pub fn tick(&mut self) {
        if self.frozen {
            self.tick_frozen();
            return;
        }
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.leader_contact = self.leader_contact.saturating_add(1);
            self.tick_handed_over();
            if self.recovery.is_some() {
                // A recovering node never campaigns; it asks the other voters for their term instead.
                self.tick_recovery();
                return;
            }
            self.election_elapsed += 1;
            if self.election_elapsed >= self.election_deadline() {
                if (self.is_voter() && self.removed_at.is_none()) || self.finishing_own_removal() {
                    self.start_election(self.config.pre_vote, false);
                } else {
                    // Not a voter here (a learner, removed, or waiting to be added): never campaign.
                    self.reset_election_timer();
                }
            }
        }
    }

    /// A leader that removed itself and handed over: TimeoutNow to the next voter while the term has not
    /// moved on (see [`HandedOver`]).
    fn tick_handed_over(&mut self) {
        let Some(h) = &mut self.handed_over else {
            return;
        };
        if self.term != h.term || h.next.is_empty() {
            self.handed_over = None;
            return;
        }
        h.elapsed += 1;
        if h.elapsed < self.config.heartbeat_ticks.saturating_mul(2) {
            return;
        }
        h.elapsed = 0;
        let to = h.next.remove(0);
        self.messages.push((
            to,
            Request::TimeoutNow(TimeoutNow {
                term: self.term,
                leader: self.config.id,
            }),
        ));
    }

    /// Whether this node may campaign though it is not a voter of its configuration: the latest
    /// configuration, not committed as far as this node knows, is the one that removed it from a configuration
    /// in which it voted. Such a node may hold the only log that can win: a leader that removed itself and lost
    /// its leadership before the change committed (openraft #2091), or a node another leader removed that holds
    /// more of the log than every voter able to vote (simulation seed 10054: the leader that appended the
    /// removal cut it again as a damaged record and recovers; the one voter left holds less). With the voters of
    /// the old configuration refusing each other on the log check, nobody else may ever win. As a candidate it
    /// counts only the new configuration's voters (not itself), exactly as the leader of that configuration does,
    /// so election safety is that of any single-server change; once elected it commits the change and hands
    /// over as usual (§4.2.2).
    ///
    /// Campaigns of removed nodes disrupt (Raft dissertation §4.2.3) only once the removal committed, and then a
    /// leader that reaches the node tells it (it keeps replicating to a departing node until it knows), and so
    /// does the first voter holding the change committed that answers one of its (pre-)votes (`removed_by`):
    /// either sets `removed_at`, after which it never campaigns again.
    fn finishing_own_removal(&self) -> bool {
        let id = self.config.id;
        let n = self.confs.len();
        self.removed_at.is_none()
            && !self.membership().contains(id)
            && self.membership_index() > self.log.commit
            && n >= 2
            && self.confs[n - 2].config.is_voter(id)
    }

    /// Things the driver should log, such as a refused malformed request; empties the list.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Ticks an unanswered snapshot chunk may take before it is sent again. The driver reports every chunk
    /// answered or failed, so this only covers a lost report; it is long because a chunk on a slow link
    /// (a megabyte at 1 MB/s, behind 150 ms of latency) takes seconds, and resending early would restart
    /// the wait.
    pub(super) fn snapshot_chunk_timeout(&self) -> u32 {
        self.config.election_ticks_max.saturating_mul(20)
    }

    fn tick_leader(&mut self) {
        for p in self.progress.values_mut() {
            p.silent_ticks = p.silent_ticks.saturating_add(1);
        }
        let departing: Vec<NodeId> = self.departing.keys().copied().collect();
        for peer in departing {
            self.release_departed(peer);
        }
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_ticks_min {
            self.election_elapsed = 0;
            if self.config.check_quorum {
                let active = self.has_quorum(true, |v| {
                    self.progress.get(&v).is_some_and(|p| p.recent_active)
                });
                if !active {
                    let term = self.term;
                    self.events.push(RaftEvent::QuorumLost { term });
                    self.become_follower(term, None);
                    return;
                }
            }
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
        }
        if let Some(t) = &mut self.transfer {
            t.elapsed += 1;
            if t.elapsed >= self.config.election_ticks_min {
                // The target did not take over in time: accept proposals again (or, for a leader that
                // removed itself, step down and let the voters elect).
                self.transfer = None;
                if self.leaving {
                    let term = self.term;
                    self.become_follower(term, None);
                }
            }
        }
    }

    /// Proposes a command. On the leader it is appended to the log and its (index, term) returned; the
    /// command is committed once that entry shows up in `committed_entries` with the same term.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        if let Some(t) = self.transfer {
            return Err(NotLeader {
                leader_hint: Some(t.target),
            });
        }
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            index,
            term: self.term,
            payload: Payload::Command(command),
        });
        self.broadcast_pending = true;
        if self.sole_voter() {
            self.maybe_commit();
        }
        Ok((index, self.term))
    }

    /// Starts handing leadership to `target`: proposals are refused while it runs; the target is brought
    /// up to date and then told to campaign at once. Abandoned after an election timeout.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if target == self.config.id {
            return Err(TransferError::AlreadyLeader(target));
        }
        if !self.progress.contains_key(&target) || !self.membership().is_voter(target) {
            return Err(TransferError::UnknownNode(target));
        }
        if self.transfer.is_some_and(|t| t.target == target) {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            target,
            elapsed: 0,
            sent: false,
        });
        self.events.push(RaftEvent::TransferStarted {
            target,
            term: self.term,
        });
        self.maybe_send_timeout_now(target);
        if self.transfer.is_some_and(|t| !t.sent) {
            self.send_append(target);
        }
        Ok(())
    }

    /// Sends TimeoutNow to the transfer target once its log matches ours.
    fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let Some(t) = self.transfer else { return };
        if t.target != peer || t.sent {
            return;
        }
        if self
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == self.log.last_index())
        {
            self.messages.push((
                peer,
                Request::TimeoutNow(TimeoutNow {
                    term: self.term,
                    leader: self.config.id,
                }),
            ));
            if let Some(t) = &mut self.transfer {
                t.sent = true;
            }
            if self.leaving {
                // Removed itself: the target campaigns now; this node stops leading, and tells the next
                // voter if the term does not move on (see `HandedOver`).
                let mut others: Vec<(Index, NodeId)> = self
                    .membership()
                    .voters
                    .iter()
                    .filter(|&&v| v != peer && v != self.config.id)
                    .map(|&v| (self.progress.get(&v).map_or(0, |p| p.match_index), v))
                    .collect();
                others.sort_unstable_by(|a, b| b.cmp(a));
                let term = self.term;
                self.become_follower(term, None);
                self.handed_over = Some(HandedOver {
                    term,
                    next: others.into_iter().map(|(_, v)| v).collect(),
                    elapsed: 0,
                });
            }
        }
    }

    /// Whether [`Raft::take_ready`] would return something.
    pub fn has_ready(&self) -> bool {
        self.broadcast_pending
            || self.reads.heartbeat_pending
            || HardState {
                term: self.term,
                vote: self.vote,
            } != self.last_hard_state
            || self.log.has_unstable()
            || self.pending_snapshot.is_some()
            || !self.messages.is_empty()
            || self.log.has_committed()
            || !self.read_states.is_empty()
            || !self.failed_reads.is_empty()
            || !self.events.is_empty()
    }

    /// Takes the work accumulated since the last call; see [`Ready`] for what the driver must do with it.
    pub fn take_ready(&mut self) -> Ready {
        if self.broadcast_pending {
            self.broadcast_pending = false;
            if self.role == Role::Leader {
                let peers: Vec<NodeId> = self.progress.keys().copied().collect();
                for p in peers {
                    self.send_append(p);
                }
            }
        }
        if self.reads.heartbeat_pending {
            self.reads.heartbeat_pending = false;
            if self.role == Role::Leader {
                self.broadcast_heartbeat();
            }
        }
        let hs = HardState {
            term: self.term,
            vote: self.vote,
        };
        let hard_state = (hs != self.last_hard_state).then_some(hs);
        self.last_hard_state = hs;
        let (truncate_from, entries) = self.log.take_unstable();
        Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot: self.pending_snapshot.take(),
            messages: std::mem::take(&mut self.messages),
            committed_entries: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
            failed_reads: std::mem::take(&mut self.failed_reads),
            events: std::mem::take(&mut self.events),
        }
    }

    /// The driver made entries up to `index` (whose term is `term`) durable. A leader counts its own log
    /// toward a majority only up to here.
    pub fn on_persisted(&mut self, index: Index, term: Term) {
        if self.log.persisted_to(index, term) && self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Sets how many entries are kept after a compaction for followers catching up from the log (see
    /// [`CatchUp`]).
    pub fn set_catch_up(&mut self, catch_up: CatchUp) {
        self.catch_up = catch_up;
    }

    /// The driver took a state machine snapshot at applied index `index`: entries up to it are dropped and
    /// `data` is kept to send to followers that fall behind it.
    ///
    /// Some entries the snapshot covers stay in memory: the catch-up tail of [`CatchUp`], so a follower a
    /// little behind continues from the log rather than starting a snapshot; and, on a leader, the entries
    /// after any older snapshot it is still streaming to a follower that answers, so that follower can
    /// continue with entries once it has installed it (instead of needing the newer snapshot, and then the
    /// next one, on a link slower than the compaction rate).
    pub fn compact(&mut self, index: Index, data: Vec<u8>) {
        let max_silence = self.snapshot_chunk_timeout();
        let pinned = self
            .progress
            .values()
            .filter_map(|p| p.snapshot_pin(max_silence))
            .min()
            .unwrap_or(Index::MAX);
        let keep_after = pinned.min(self.catch_up_from(index));
        if let Some(meta) = self.log.compact(index, data, keep_after) {
            let conf = self.conf_at(meta.last_index);
            // Only the configuration in effect at the snapshot and later ones can still matter.
            self.confs.retain(|c| c.index > conf.index);
            self.confs.insert(0, conf.clone());
            self.snapshot_conf = Some(conf);
            self.events.push(RaftEvent::SnapshotTaken { meta });
        }
    }

    /// The index after which a compaction at `index` keeps entries for catching-up followers (see
    /// [`CatchUp`]): `index` itself when nothing is kept.
    fn catch_up_from(&self, index: Index) -> Index {
        let CatchUp { entries, bytes } = self.catch_up;
        if bytes == 0 {
            return index;
        }
        // Followers replicating from the log that answered within an election timeout.
        let active = self
            .progress
            .values()
            .filter(|p| !p.is_snapshotting() && p.silent_ticks <= self.config.election_ticks_max)
            .map(|p| p.match_index)
            .min()
            .unwrap_or(index);
        let wanted = index.saturating_sub(entries).min(active);
        // Walk back from the snapshot index while the kept entries fit in the byte budget.
        let mut from = index;
        let mut kept: u64 = 0;
        while from > wanted {
            let Some(e) = self.log.entry(from) else { break };
            kept += e.size_hint() as u64;
            if kept > bytes {
                break;
            }
            from -= 1;
        }
        from
    }

    /// The configuration in effect at the latest snapshot (what a snapshot file must carry): `None` only
    /// when this node has no snapshot.
    pub fn snapshot_conf(&self) -> Option<ConfState> {
        self.snapshot_conf.clone()
    }

    /// A read-only view for status reports.
    pub fn status(&self) -> CoreStatus {
        CoreStatus {
            id: self.config.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit_index: self.log.commit,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            snapshot_index: self.log.snapshot_meta().last_index,
            config: self.membership().clone(),
            config_index: self.membership_index(),
            config_committed: self.membership_index() <= self.log.commit,
            progress: self
                .progress
                .iter()
                .map(|(&id, p)| PeerProgress {
                    id,
                    match_index: p.match_index,
                    next_index: p.next_index,
                    inflight: p.inflight.len(),
                    snapshotting: p.is_snapshotting(),
                })
                .collect(),
        }
    }

    /// Entries held in memory with index >= `from`, at most `max` of them.
    pub fn entries_from(&self, from: Index, max: usize) -> Vec<Entry> {
        if max == 0 {
            return Vec::new();
        }
        let from = from.max(self.log.first_index());
        let to = from.saturating_add(max as u64 - 1);
        self.log.range(from, to)
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The last log index the driver reported durable through [`Raft::on_persisted`] (or restored from
    /// storage), lowered when a truncation removes entries: a driver that persists asynchronously answers an
    /// AppendEntries success at once only if its `match_index` is at or below this.
    pub fn persisted_index(&self) -> Index {
        self.log.persisted()
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Highest committed index.
    pub fn commit_index(&self) -> Index {
        self.log.commit
    }

    /// Highest index handed to the driver for applying (or covered by the latest snapshot).
    pub fn applied_index(&self) -> Index {
        self.log.applied
    }

    /// The latest snapshot's position (all zero when none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot_meta()
    }

    /// Tells the core how long the driver's last writes took to become durable, in ticks (the driver measures
    /// its own write and fdatasync; 0, the default, when it does not). A candidate then waits that much longer
    /// than its randomised election timeout before it gives up on an election: every vote it needs is made
    /// durable by its voter before it is granted (Raft §5.2, Figure 2), so the round trip of a vote includes a
    /// voter's fsync, which the voters' disks, alike to this one, take about as long as this node's took. Raft's
    /// timing requirement (§9.3: broadcast time, persisting included, well below the election timeout) then
    /// still holds when the disk is slower than the configured timeout, which otherwise restarts every
    /// election before a vote can arrive. Followers keep the configured timeout, so losing a leader is noticed
    /// as fast as before. (etcd leaves this to the operator: its election timeout must be raised above the
    /// disk's latency by hand.)
    pub fn set_vote_latency(&mut self, ticks: u32) {
        self.vote_latency = ticks;
    }

    /// Ticks from the election timer's reset until it runs out: the randomised timeout, plus, on a candidate,
    /// the time its voters need to store their votes ([`Raft::set_vote_latency`]).
    fn election_deadline(&self) -> u32 {
        if self.role == Role::Candidate {
            self.election_timeout.saturating_add(self.vote_latency)
        } else {
            self.election_timeout
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let (lo, hi) = (
            self.config.election_ticks_min,
            self.config.election_ticks_max,
        );
        self.election_timeout = self.rng.random_range(lo..hi);
    }

    fn set_role(&mut self, role: Role) {
        if self.role == role {
            return;
        }
        let was_leader = self.role == Role::Leader;
        self.role = role;
        self.events.push(RaftEvent::RoleChanged {
            role,
            term: self.term,
        });
        if was_leader {
            self.progress.clear();
            self.departing.clear();
            self.released.clear();
            self.transfer = None;
            self.leaving = false;
            self.broadcast_pending = false;
        }
    }

    fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.events.push(RaftEvent::LeaderChanged {
                leader,
                term: self.term,
            });
        }
        if self.role != Role::Leader {
            // Reads a leader accepted can no longer be confirmed once it stops leading.
            self.fail_reads();
        }
    }

    fn set_term(&mut self, term: Term) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.events.push(RaftEvent::TermChanged { term });
        }
    }

    /// Becomes (or stays) a follower in `term`, following `leader` if known.
    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let new_term = term > self.term;
        self.set_term(term);
        self.set_role(Role::Follower);
        if new_term || leader.is_some() || self.leader == Some(self.config.id) {
            self.set_leader(leader);
        }
        self.fail_reads();
        self.votes.clear();
        self.campaign_transfer = false;
        self.reset_election_timer();
    }
}
