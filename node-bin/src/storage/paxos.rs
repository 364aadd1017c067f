//! A Multi-Paxos acceptor's durable state (its promise and what it accepted per slot) on the node's own
//! write-ahead log and snapshot file, with the same discipline as Raft's: one write and one `fdatasync` per
//! ready, torn tails cut on open, snapshots replaced atomically, the directory locked.
//!
//! The mapping onto the WAL's records:
//! - the promised ballot is the hard state's term, packed ([`Ballot::pack`]: round in the high 48 bits,
//!   proposer in the low 16), so the WAL's own guard that a term never goes back keeps a promise from going
//!   back;
//! - slot `s` is the entry at index `s`, term 0, whose payload is the bincode of its [`Accepted`] (ballot and
//!   value), or a no-op where nothing was accepted (the WAL's log has no holes; Paxos's slots may);
//! - a snapshot's last index is its last slot.
//!
//! Accepting again in a slot that holds a value rewrites the log from that slot on in the same write unit (a
//! truncation and the entries after it), so a crash keeps the old values or the new ones, never a mix. A new
//! leader re-proposes its open slots in order, so that tail is short.

use std::path::Path;

use super::{InitialState, Storage, StorageError};
use crate::paxos::{Accepted, Ballot, Restored, Slot};
use crate::raft::{Entry, HardState, Payload, Snapshot, SnapshotMeta};

/// An open, locked data directory holding a Paxos acceptor's state.
#[derive(Debug)]
pub struct PaxosStorage {
    inner: Storage,
}

/// What [`PaxosStorage::open_as`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaxosRecovered {
    /// The state to start the core from.
    pub restored: Restored,
    /// The directory held no state.
    pub empty: bool,
    /// Why this node may have lost durable state (see [`super::Recovered::lost_data`]); a Paxos acceptor that
    /// lost its promise or an accepted value could break safety, so the node refuses to start with it.
    pub lost_data: Option<String>,
}

impl PaxosStorage {
    /// Opens (creating if missing) and locks `dir`, and reads back the promise, the accepted values and the
    /// snapshot. `initial` says how to take an empty directory, as for Raft.
    pub fn open_as(
        dir: &Path,
        initial: InitialState,
    ) -> Result<(PaxosStorage, PaxosRecovered), StorageError> {
        let (inner, rec) = Storage::open_as(dir, initial)?;
        let mut accepted = Vec::new();
        for e in &rec.entries {
            if let Some(a) = decode(e).map_err(|detail| StorageError::Corrupt {
                path: dir.join(super::WAL_FILE_NAME),
                detail,
            })? {
                accepted.push((e.index, a));
            }
        }
        let restored = Restored {
            promised: Ballot::unpack(rec.hard_state.term),
            accepted,
            snapshot: rec.snapshot.map(|s| (s.meta.last_index, s.data)),
        };
        Ok((
            PaxosStorage { inner },
            PaxosRecovered {
                restored,
                empty: rec.empty,
                lost_data: rec.lost_data,
            },
        ))
    }

    /// Makes a new promise (if any) and newly accepted values durable in one write: each value replaces what
    /// its slot held. Slots at or below the snapshot are ignored (they are chosen and compacted).
    pub fn persist(
        &mut self,
        promised: Option<Ballot>,
        accepted: &[(Slot, Accepted)],
    ) -> Result<(), StorageError> {
        let hard_state = promised.map(|b| HardState {
            term: b.pack(),
            vote: None,
        });
        let base = self.inner.snapshot_meta().last_index;
        let mut new: Vec<&(Slot, Accepted)> = accepted.iter().filter(|(s, _)| *s > base).collect();
        new.sort_by_key(|(s, _)| *s);
        let (Some(first), Some(last_new)) = (new.first().map(|a| a.0), new.last().map(|a| a.0))
        else {
            return self.inner.persist(hard_state.as_ref(), None, &[]);
        };
        let last = self.inner.last_index();
        let start = first.min(last + 1);
        let truncate_from = (first <= last).then_some(first);
        let mut entries = Vec::with_capacity((last_new.max(last) - start + 1) as usize);
        let mut next = new.into_iter().peekable();
        for slot in start..=last_new.max(last) {
            let mut replacement = None;
            while let Some((s, a)) = next.peek() {
                if *s != slot {
                    break;
                }
                replacement = Some(a);
                next.next();
            }
            let entry = match replacement {
                Some(a) => encode(slot, a)?,
                None if slot <= last => self.inner.entries()[(slot - base - 1) as usize].clone(),
                None => hole(slot),
            };
            entries.push(entry);
        }
        self.inner
            .persist(hard_state.as_ref(), truncate_from, &entries)
    }

    /// Saves a snapshot this node took at `slot` and drops the slots up to it from the log.
    pub fn save_snapshot(&mut self, slot: Slot, data: Vec<u8>) -> Result<(), StorageError> {
        self.inner.save_snapshot(&snapshot(slot, data))
    }

    /// Saves a snapshot received from a peer, covering slots up to `slot`; the accepted values after it stay.
    pub fn install_snapshot(&mut self, slot: Slot, data: Vec<u8>) -> Result<(), StorageError> {
        let base = self.inner.snapshot_meta().last_index;
        let keep: Vec<Entry> = self
            .inner
            .entries()
            .iter()
            .skip(slot.saturating_sub(base) as usize)
            .cloned()
            .collect();
        self.inner.install_snapshot(&snapshot(slot, data), &keep)
    }

    /// Removes the lost-data marker (see [`Storage::finish_recovery`]).
    pub fn finish_recovery(&mut self) -> Result<(), StorageError> {
        self.inner.finish_recovery()
    }

    /// The durable promise.
    pub fn promised(&self) -> Ballot {
        Ballot::unpack(self.inner.hard_state().term)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.inner.dir()
    }

    /// Size of the WAL file in bytes.
    pub fn wal_bytes(&self) -> u64 {
        self.inner.wal_bytes()
    }
}

fn snapshot(slot: Slot, data: Vec<u8>) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            last_index: slot,
            last_term: 0,
        },
        data,
        config: None,
    }
}

fn hole(slot: Slot) -> Entry {
    Entry {
        index: slot,
        term: 0,
        payload: Payload::Noop,
    }
}

fn encode(slot: Slot, a: &Accepted) -> Result<Entry, StorageError> {
    let bytes = bincode::serialize(a).map_err(|source| StorageError::Encode {
        what: "accepted value",
        source,
    })?;
    Ok(Entry {
        index: slot,
        term: 0,
        payload: Payload::Command(bytes),
    })
}

/// The accepted value an entry holds, `None` for a hole.
fn decode(e: &Entry) -> Result<Option<Accepted>, String> {
    match &e.payload {
        Payload::Noop => Ok(None),
        Payload::Command(bytes) => bincode::deserialize(bytes).map(Some).map_err(|err| {
            format!(
                "slot {} does not hold a Paxos accepted value ({err}); was this directory written by a Raft node?",
                e.index
            )
        }),
        Payload::Config(_) => Err(format!(
            "slot {} holds a Raft configuration entry: this directory was written by a Raft node",
            e.index
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(round: u64, proposer: u64, byte: u8) -> Accepted {
        Accepted {
            ballot: Ballot { round, proposer },
            value: Payload::Command(vec![byte]),
        }
    }

    fn open(dir: &Path) -> (PaxosStorage, PaxosRecovered) {
        PaxosStorage::open_as(dir, InitialState::New).expect("open")
    }

    #[test]
    fn promise_and_accepted_values_with_holes_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, rec) = open(dir.path());
        assert!(rec.empty);
        let b = Ballot {
            round: 3,
            proposer: 2,
        };
        st.persist(Some(b), &[(2, acc(3, 2, 20)), (5, acc(3, 2, 50))])
            .unwrap();
        drop(st);
        let (_, rec) = open(dir.path());
        assert_eq!(rec.restored.promised, b);
        assert_eq!(
            rec.restored.accepted,
            vec![(2, acc(3, 2, 20)), (5, acc(3, 2, 50))]
        );
    }

    #[test]
    fn accepting_again_replaces_one_slot_and_keeps_the_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open(dir.path());
        st.persist(
            Some(Ballot {
                round: 1,
                proposer: 1,
            }),
            &[(1, acc(1, 1, 1)), (2, acc(1, 1, 2)), (3, acc(1, 1, 3))],
        )
        .unwrap();
        // A new leader re-proposes slot 2 only (this acceptor missed its other accepts).
        st.persist(
            Some(Ballot {
                round: 2,
                proposer: 3,
            }),
            &[(2, acc(2, 3, 9))],
        )
        .unwrap();
        drop(st);
        let (_, rec) = open(dir.path());
        assert_eq!(
            rec.restored.accepted,
            vec![(1, acc(1, 1, 1)), (2, acc(2, 3, 9)), (3, acc(1, 1, 3))]
        );
    }

    #[test]
    fn a_promise_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open(dir.path());
        let high = Ballot {
            round: 4,
            proposer: 1,
        };
        st.persist(Some(high), &[]).unwrap();
        let err = st
            .persist(
                Some(Ballot {
                    round: 3,
                    proposer: 5,
                }),
                &[],
            )
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidWrite { .. }), "{err}");
        assert_eq!(st.promised(), high);
    }

    #[test]
    fn snapshots_drop_the_slots_they_cover_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut st, _) = open(dir.path());
        let b = Ballot {
            round: 1,
            proposer: 1,
        };
        let vals: Vec<(Slot, Accepted)> = (1..=6).map(|s| (s, acc(1, 1, s as u8))).collect();
        st.persist(Some(b), &vals).unwrap();
        st.save_snapshot(3, b"three".to_vec()).unwrap();
        // Accepting at and below the snapshot is ignored.
        st.persist(None, &[(2, acc(2, 2, 0))]).unwrap();
        st.install_snapshot(4, b"four".to_vec()).unwrap();
        drop(st);
        let (_, rec) = open(dir.path());
        assert_eq!(rec.restored.snapshot, Some((4, b"four".to_vec())));
        assert_eq!(rec.restored.accepted, vals[4..].to_vec());
        assert_eq!(rec.restored.promised, b);
    }
}
