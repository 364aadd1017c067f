//! The safety checker of the simulation: it watches what every node persists, applies and acknowledges,
//! and reports the first violation of a Raft safety property.

use std::collections::{HashMap, HashSet};

use squall_node::raft::{Entry, Index, NodeId, Payload, Term};

/// Compact identity of an entry's payload (0 for a no-op, 1 + command id for a command, a hash of the
/// configuration with the top bit set for a configuration entry).
pub fn payload_key(p: &Payload) -> u64 {
    match p {
        Payload::Noop => 0,
        Payload::Config(c) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(c, &mut h);
            std::hash::Hasher::finish(&h) | (1 << 63)
        }
        Payload::Command(c) => 1 + u64::from_le_bytes(c[..8].try_into().expect("8-byte command")),
    }
}

/// A committed entry as observed through applies.
#[derive(Clone, Copy, Debug)]
struct Committed {
    term: Term,
    key: u64,
    /// An upper bound of the term in which it was committed (min over the appliers' terms).
    commit_term: Term,
}

/// An acknowledged client write.
#[derive(Clone, Copy, Debug)]
struct Acked {
    index: Index,
    term: Term,
    key: u64,
}

/// Incremental checks of election safety, log matching, leader completeness, state machine safety and
/// acknowledged-write durability.
#[derive(Default)]
pub struct Checker {
    /// term -> its leader.
    leaders: HashMap<Term, NodeId>,
    /// (index, term) -> (payload key, term of the previous entry): two equal pairs must match fully.
    entries: HashMap<(Index, Term), (u64, Term)>,
    /// index -> the committed entry there.
    committed: Vec<Option<Committed>>,
    acked: Vec<Acked>,
    /// Highest index of an acknowledged write.
    pub max_acked: Index,
    /// (voter, term) -> the candidate it voted for, kept across the voter's crashes, power cuts and wipes: a
    /// node is one voter for its whole life, whatever happened to its disk.
    votes: HashMap<(NodeId, Term), NodeId>,
    /// How many times each node lost its durable data (wiped, a damaged record cut): a vote cast before the
    /// latest loss may be forgotten by the node.
    losses: HashMap<NodeId, u32>,
    /// (voter, term) -> the loss count when its vote was cast.
    vote_epochs: HashMap<(NodeId, Term), u32>,
    /// (candidate, term) of self-votes the candidate forgot in a data loss and then replaced by a vote for
    /// another node: no other node may grant that candidacy a vote any more.
    forgotten_candidacies: HashSet<(NodeId, Term)>,
}

/// A view of a leader's log for the completeness checks.
pub struct LeaderLog<'a> {
    /// Last index covered by its snapshot.
    pub snapshot_index: Index,
    /// Its entries after the snapshot.
    pub entries: &'a [Entry],
}

impl LeaderLog<'_> {
    fn term_at(&self, index: Index) -> Option<Term> {
        let first = self.snapshot_index + 1;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize).map(|e| e.term)
    }
}

impl Checker {
    /// `node` leads `term`. Returns whether this is the first sighting (so completeness was checked).
    pub fn on_leader(
        &mut self,
        term: Term,
        node: NodeId,
        log: &LeaderLog<'_>,
    ) -> Result<bool, String> {
        match self.leaders.get(&term) {
            Some(&l) if l == node => return Ok(false),
            Some(&l) => {
                return Err(format!(
                    "election safety: nodes {l} and {node} both lead term {term}"
                ));
            }
            None => {}
        }
        self.leaders.insert(term, node);
        for index in (log.snapshot_index + 1) as usize..self.committed.len() {
            let Some(c) = self.committed[index] else {
                continue;
            };
            if c.commit_term < term && log.term_at(index as Index) != Some(c.term) {
                return Err(format!(
                    "leader completeness: entry {index} (term {}, committed by term {}) missing from node \
                     {node}, leader of term {term} (has term {:?})",
                    c.term,
                    c.commit_term,
                    log.term_at(index as Index)
                ));
            }
        }
        for a in &self.acked {
            if a.term < term && a.index > log.snapshot_index && log.term_at(a.index) != Some(a.term)
            {
                return Err(format!(
                    "acknowledged write lost: entry {} term {} (command {}) missing from node {node}, leader \
                     of term {term}",
                    a.index, a.term, a.key
                ));
            }
        }
        Ok(true)
    }

    /// `node` persisted `entry` right after an entry (or snapshot) of term `prev_term`.
    pub fn on_append(
        &mut self,
        node: NodeId,
        entry: &Entry,
        prev_term: Term,
    ) -> Result<(), String> {
        let key = payload_key(&entry.payload);
        match self.entries.get(&(entry.index, entry.term)) {
            Some(&(k, p)) if k != key || p != prev_term => Err(format!(
                "log matching: node {node} stored entry {} term {} (payload {key}, previous term {prev_term}) but \
                 another node has payload {k}, previous term {p} there",
                entry.index, entry.term
            )),
            Some(_) => Ok(()),
            None => {
                self.entries
                    .insert((entry.index, entry.term), (key, prev_term));
                Ok(())
            }
        }
    }

    /// `node` removed `entry` from its stable log.
    pub fn on_truncate(&self, node: NodeId, entry: &Entry) -> Result<(), String> {
        match self.committed.get(entry.index as usize).copied().flatten() {
            Some(c) if c.term == entry.term => Err(format!(
                "committed entry {} (term {}) truncated on node {node}",
                entry.index, entry.term
            )),
            _ => Ok(()),
        }
    }

    /// `node`, at term `node_term`, applied the entry at `index`.
    pub fn on_apply(
        &mut self,
        node: NodeId,
        node_term: Term,
        index: Index,
        term: Term,
        key: u64,
    ) -> Result<(), String> {
        let i = index as usize;
        if self.committed.len() <= i {
            self.committed.resize(i + 1, None);
        }
        match &mut self.committed[i] {
            Some(c) if c.key != key || c.term != term => Err(format!(
                "state machine safety: node {node} applied (term {term}, payload {key}) at {index}, another node \
                 applied (term {}, payload {})",
                c.term, c.key
            )),
            Some(c) => {
                c.commit_term = c.commit_term.min(node_term);
                Ok(())
            }
            slot @ None => {
                *slot = Some(Committed {
                    term,
                    key,
                    commit_term: node_term,
                });
                Ok(())
            }
        }
    }

    /// `node` restored its state machine from a snapshot holding (index, payload key) pairs.
    pub fn on_restore(&self, node: NodeId, applied: &[(Index, u64)]) -> Result<(), String> {
        for &(index, key) in applied {
            match self.committed.get(index as usize).copied().flatten() {
                Some(c) if c.key == key => {}
                other => {
                    return Err(format!(
                        "state machine safety: node {node} restored a snapshot with payload {key} at {index}, \
                         committed there: {other:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// A client write was acknowledged: its entry applied on the leader that proposed it, in its term.
    pub fn on_ack(&mut self, index: Index, term: Term, key: u64) {
        self.acked.push(Acked { index, term, key });
        self.max_acked = self.max_acked.max(index);
    }

    /// `voter` lost its durable data (its directory wiped, or a damaged record cut by the open): votes it
    /// cast before may be forgotten.
    pub fn on_data_lost(&mut self, voter: NodeId) {
        *self.losses.entry(voter).or_default() += 1;
    }

    /// `voter` cast its (real, not pre-) vote in `term` for `candidate`: granted it in an answer it sent, or
    /// voted for itself as a candidate whose requests went out. Election safety rests on one vote per voter per
    /// term (Raft §5.2); a second one, to anyone else, is a violation even before a second leader results.
    ///
    /// One exception: a node that lost its data (see [`Checker::on_data_lost`]) after voting for itself as a
    /// candidate, while no other node had granted that candidacy a vote, may vote again in that term. It
    /// cannot know of the forgotten vote (the recovery rule only learns the term from the other voters, whose
    /// majority may not include anyone who saw the candidacy), and the candidacy had no second voter, so it
    /// cannot have made, nor can it later make, a second leader: from then on a grant to that candidacy is a
    /// violation. A forgotten vote for another node, or for itself where someone else granted it, stays a
    /// violation: that candidacy may have reached a quorum.
    pub fn on_vote(&mut self, voter: NodeId, term: Term, candidate: NodeId) -> Result<(), String> {
        if voter != candidate && self.forgotten_candidacies.contains(&(candidate, term)) {
            return Err(format!(
                "one vote per term: node {voter} granted node {candidate} a vote in term {term}, whose own vote \
                 for itself there it forgot in a data loss and replaced by a vote for node {}",
                self.votes[&(candidate, term)]
            ));
        }
        let epoch = self.losses.get(&voter).copied().unwrap_or(0);
        let earlier_epoch = self.vote_epochs.insert((voter, term), epoch);
        match self.votes.insert((voter, term), candidate) {
            Some(earlier) if earlier != candidate => {
                let lost_since = earlier_epoch.is_some_and(|e| e < epoch);
                let granted_by_other = self
                    .votes
                    .iter()
                    .any(|(&(v, t), &c)| t == term && c == voter && v != voter);
                if lost_since && earlier == voter && !granted_by_other {
                    self.forgotten_candidacies.insert((voter, term));
                    return Ok(());
                }
                Err(format!(
                    "one vote per term: node {voter} voted for node {candidate} in term {term} after voting \
                     for node {earlier} in that term"
                ))
            }
            _ => Ok(()),
        }
    }

    /// The candidate `voter` voted for in `term`, if it did.
    pub fn vote_of(&self, voter: NodeId, term: Term) -> Option<NodeId> {
        self.votes.get(&(voter, term)).copied()
    }

    /// Number of acknowledged writes.
    pub fn acked(&self) -> usize {
        self.acked.len()
    }

    /// (index, payload key) of the first `n` acknowledged writes: a read that started after they were
    /// acknowledged must see every one of them.
    pub fn acked_writes(&self, n: usize) -> impl Iterator<Item = (Index, u64)> + '_ {
        self.acked.iter().take(n).map(|a| (a.index, a.key))
    }
}
