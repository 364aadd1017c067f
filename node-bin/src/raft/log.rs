//! The in-memory Raft log: entries after the latest snapshot (and, on a leader, possibly some before it that a
//! follower receiving an older snapshot still needs), the commit and apply positions, and the bookkeeping of
//! what the driver has yet to persist (`truncate_from` + unstable entries) and has persisted.

use std::sync::Arc;

use super::types::{Entry, Index, Snapshot, SnapshotMeta, Term};

/// The log as the core sees it. Invariants: `entries[i].index == start.last_index + 1 + i`, and
/// `start.last_index <= snapshot.last_index <= last_index()`.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The latest snapshot's position.
    snapshot: SnapshotMeta,
    /// The latest snapshot's bytes, kept to send to followers that fell behind it.
    snapshot_data: Option<Arc<Vec<u8>>>,
    /// The position just before `entries[0]`: the snapshot's, or an older one while entries the snapshot
    /// covers are kept for a follower that is being sent an older snapshot.
    start: SnapshotMeta,
    /// Entries after `start`.
    entries: Vec<Entry>,
    /// Highest index known committed.
    pub(crate) commit: Index,
    /// Highest index handed to the driver in `committed_entries` (or covered by a snapshot).
    pub(crate) applied: Index,
    /// First index not yet handed to the driver for persistence.
    unstable_from: Index,
    /// Stored entries from this index on must be removed before the unstable ones are appended.
    pending_truncate: Option<Index>,
    /// Highest index the driver reported durable (with a matching term).
    persisted: Index,
}

impl RaftLog {
    /// A log restored from storage: everything given is already durable.
    pub(crate) fn new(snapshot: Option<Snapshot>, entries: Vec<Entry>) -> RaftLog {
        let (meta, data) = match snapshot {
            Some(s) => (s.meta, Some(Arc::new(s.data))),
            None => (SnapshotMeta::default(), None),
        };
        // Storage may hand back entries the snapshot already covers; only the tail after it matters.
        let mut entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.index > meta.last_index)
            .collect();
        // Keep only a contiguous run starting right after the snapshot.
        let keep = (meta.last_index + 1..)
            .zip(&entries)
            .take_while(|(i, e)| e.index == *i)
            .count();
        entries.truncate(keep);
        let last = entries.last().map_or(meta.last_index, |e| e.index);
        RaftLog {
            snapshot: meta,
            snapshot_data: data,
            start: meta,
            entries,
            commit: meta.last_index,
            applied: meta.last_index,
            unstable_from: last + 1,
            pending_truncate: None,
            persisted: last,
        }
    }

    /// The snapshot's position.
    pub(crate) fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// The snapshot's bytes, if this node holds one.
    #[cfg(test)]
    pub(crate) fn snapshot_data(&self) -> Option<&[u8]> {
        self.snapshot_data.as_deref().map(Vec::as_slice)
    }

    /// The snapshot's bytes, shared (a transfer keeps them alive after a newer snapshot replaces them).
    pub(crate) fn snapshot_shared(&self) -> Option<Arc<Vec<u8>>> {
        self.snapshot_data.clone()
    }

    /// First index held in memory.
    pub(crate) fn first_index(&self) -> Index {
        self.start.last_index + 1
    }

    /// Index of the last entry (or of the snapshot when no entry follows it).
    pub(crate) fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.start.last_index, |e| e.index)
    }

    /// Term of the last entry (or of the snapshot).
    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.start.last_term, |e| e.term)
    }

    /// Highest durable index.
    pub(crate) fn persisted(&self) -> Index {
        self.persisted
    }

    /// Term of the entry at `index`, when known (the snapshot's own index counts; compacted ones don't).
    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.last_index {
            return Some(self.snapshot.last_term);
        }
        if index == self.start.last_index {
            return Some(self.start.last_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held in memory.
    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.start.last_index {
            return None;
        }
        self.entries.get((index - self.first_index()) as usize)
    }

    /// Whether a candidate whose log ends at (`last_term`, `last_index`) is at least as up to date as this log.
    pub(crate) fn is_up_to_date(&self, last_term: Term, last_index: Index) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries from `from` on, at most `max_entries` and about `max_bytes` (always at least one if any).
    pub(crate) fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        if from < self.first_index() || from > self.last_index() {
            return Vec::new();
        }
        let start = (from - self.first_index()) as usize;
        let mut bytes = 0;
        let mut out = Vec::new();
        for e in &self.entries[start..] {
            if out.len() >= max_entries.max(1) {
                break;
            }
            bytes += e.size_hint();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Entries with index in `[from, to]` that are in memory.
    pub(crate) fn range(&self, from: Index, to: Index) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return Vec::new();
        }
        let base = self.first_index();
        self.entries[(from - base) as usize..=(to - base) as usize].to_vec()
    }

    /// Appends one entry that must follow the last one (callers check; a mistake here is a bug, not input).
    pub(crate) fn push(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        self.entries.push(entry);
    }

    /// Removes entries with index >= `from`; returns how many were removed.
    pub(crate) fn truncate(&mut self, from: Index) -> u64 {
        let last = self.last_index();
        if from > last {
            return 0;
        }
        assert!(
            from > self.commit,
            "truncating committed entry {from} (commit {})",
            self.commit
        );
        let keep = (from - self.first_index()) as usize;
        self.entries.truncate(keep);
        if from < self.unstable_from {
            // Some of the removed entries were handed to the driver: it must drop them too.
            self.pending_truncate = Some(self.pending_truncate.map_or(from, |t| t.min(from)));
            self.unstable_from = from;
        }
        self.persisted = self.persisted.min(from - 1);
        last - from + 1
    }

    /// Index of the first entry of the run of `term` that contains `index` (not below the commit point).
    pub(crate) fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        let floor = self.first_index().max(self.commit + 1);
        let mut i = index;
        while i > floor && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index whose entry has `term`, if such an entry is in memory.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<Index> {
        // Terms never decrease along the log, so scan back from the end until they drop below `term`.
        for e in self.entries.iter().rev() {
            if e.term == term {
                return Some(e.index);
            }
            if e.term < term {
                return None;
            }
        }
        None
    }

    /// What the driver must persist next: a truncation point and the unstable entries.
    pub(crate) fn take_unstable(&mut self) -> (Option<Index>, Vec<Entry>) {
        let trunc = self.pending_truncate.take();
        let entries = self.range(self.unstable_from, self.last_index());
        self.unstable_from = self.last_index() + 1;
        (trunc, entries)
    }

    /// Whether there is anything to persist.
    pub(crate) fn has_unstable(&self) -> bool {
        self.pending_truncate.is_some() || self.unstable_from <= self.last_index()
    }

    /// The driver made entries up to `index` (of `term`) durable.
    pub(crate) fn persisted_to(&mut self, index: Index, term: Term) -> bool {
        // A stale report about entries since replaced by others has a term that no longer matches.
        if index > self.persisted && index < self.unstable_from && self.term(index) == Some(term) {
            self.persisted = index;
            return true;
        }
        false
    }

    /// Entries to apply next, and marks them applied.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        if self.applied >= self.commit {
            return Vec::new();
        }
        let out = self.range(self.applied + 1, self.commit);
        self.applied = self.commit;
        out
    }

    /// Whether committed entries wait to be applied.
    pub(crate) fn has_committed(&self) -> bool {
        self.applied < self.commit
    }

    /// The driver snapshotted the state machine at `index` (<= applied): drop entries up to it, or only up to
    /// `keep_after` when that is lower (entries a follower receiving an older snapshot will need next).
    pub(crate) fn compact(
        &mut self,
        index: Index,
        data: Vec<u8>,
        keep_after: Index,
    ) -> Option<SnapshotMeta> {
        if index <= self.snapshot.last_index || index > self.applied {
            return None;
        }
        let term = self.term(index)?;
        self.snapshot = SnapshotMeta {
            last_index: index,
            last_term: term,
        };
        self.snapshot_data = Some(Arc::new(data));
        let upto = index.min(keep_after.max(self.start.last_index));
        if upto > self.start.last_index {
            let upto_term = self.term(upto).expect("held in memory");
            let drop = (upto - self.first_index() + 1) as usize;
            self.entries.drain(..drop);
            self.start = SnapshotMeta {
                last_index: upto,
                last_term: upto_term,
            };
        }
        Some(self.snapshot)
    }

    /// Resets the log to a snapshot received from the leader (whose position this log does not match).
    pub(crate) fn restore(&mut self, snapshot: &Snapshot) {
        let meta = snapshot.meta;
        self.entries.clear();
        self.snapshot = meta;
        self.start = meta;
        self.snapshot_data = Some(Arc::new(snapshot.data.clone()));
        self.commit = meta.last_index;
        self.applied = meta.last_index;
        // The snapshot replaces everything stored; nothing older is left to truncate or append.
        self.pending_truncate = None;
        self.unstable_from = meta.last_index + 1;
        self.persisted = meta.last_index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Payload;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    #[test]
    fn restored_log_skips_covered_entries_and_gaps() {
        let snap = Snapshot {
            meta: SnapshotMeta {
                last_index: 3,
                last_term: 2,
            },
            data: vec![1],
            config: None,
        };
        let log = RaftLog::new(
            Some(snap),
            vec![e(2, 2), e(3, 2), e(4, 2), e(5, 3), e(7, 3)],
        );
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(2), None);
        assert_eq!(log.commit, 3);
        assert_eq!(log.persisted(), 5);
        assert!(!log.has_unstable());
    }

    #[test]
    fn truncation_of_handed_out_entries_is_reported() {
        let mut log = RaftLog::new(None, vec![]);
        for i in 1..=5 {
            log.push(e(i, 1));
        }
        let (t, es) = log.take_unstable();
        assert_eq!((t, es.len()), (None, 5));
        assert!(log.persisted_to(5, 1));
        assert_eq!(log.truncate(4), 2);
        log.push(e(4, 2));
        let (t, es) = log.take_unstable();
        assert_eq!(t, Some(4));
        assert_eq!(es, vec![e(4, 2)]);
        assert_eq!(log.persisted(), 3);
        // A late report about the replaced entry is ignored.
        assert!(!log.persisted_to(5, 1));
        assert!(!log.persisted_to(4, 1));
        assert!(log.persisted_to(4, 2));
    }

    #[test]
    fn slice_respects_limits_but_sends_one() {
        let mut log = RaftLog::new(None, vec![]);
        for i in 1..=10 {
            log.push(Entry {
                index: i,
                term: 1,
                payload: Payload::Command(vec![0; 100]),
            });
        }
        assert_eq!(log.slice(1, 3, 1 << 20).len(), 3);
        assert_eq!(log.slice(1, 100, 300).len(), 2);
        assert_eq!(log.slice(1, 100, 10).len(), 1);
        assert!(log.slice(11, 100, 10).is_empty());
    }

    #[test]
    fn compact_and_term_lookup() {
        let mut log = RaftLog::new(None, vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
        log.commit = 3;
        log.applied = 3;
        assert_eq!(log.compact(4, vec![], Index::MAX), None, "beyond applied");
        assert_eq!(
            log.compact(3, vec![9], Index::MAX),
            Some(SnapshotMeta {
                last_index: 3,
                last_term: 2
            })
        );
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.last_index_of_term(2), Some(4));
        assert_eq!(log.last_index_of_term(1), None);
        assert_eq!(log.snapshot_data(), Some(&[9u8][..]));
    }
}
