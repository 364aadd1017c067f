//! The replicated state machine: a map from key to value, with write and compare-and-set.
//!
//! It lives in memory and is rebuilt from the durable log after a restart (openraft re-applies the committed
//! entries once the leader tells the node the commit index). Snapshots are built and installed in memory
//! only; the node runs with `SnapshotPolicy::Never`, so the log is never purged and a snapshot is never
//! needed to rebuild the state.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::TypeConfig;

/// A command the log carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Set `key` to `value`.
    Write { key: String, value: String },
    /// Set `key` to `to` if it holds `from`.
    Cas {
        key: String,
        from: String,
        to: String,
    },
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What applying a command gave.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Response {
    /// For a cas: whether it swapped.
    pub swapped: Option<bool>,
}

/// The state the machine holds, shared with the HTTP reads.
#[derive(Default, Serialize, Deserialize)]
pub struct Data {
    /// The key-value map.
    pub kv: BTreeMap<String, String>,
    /// The last entry applied.
    pub last_applied: Option<LogId<u64>>,
    /// The membership as of the last applied membership entry.
    pub membership: StoredMembership<u64, openraft::BasicNode>,
}

/// The last snapshot built or installed: its description and the serialised [`Data`].
type StoredSnapshot = (SnapshotMeta<u64, openraft::BasicNode>, Vec<u8>);

/// The state machine; clones share the data.
#[derive(Clone, Default)]
pub struct StateMachine {
    /// The data (reads take the lock for a moment).
    pub data: Arc<RwLock<Data>>,
    snapshot: Arc<RwLock<Option<StoredSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let (bytes, meta) = {
            let data = self.data.read().unwrap();
            let bytes = serde_json::to_vec(&*data).map_err(|e| StorageError::IO {
                source: StorageIOError::read_state_machine(openraft::AnyError::new(&e)),
            })?;
            let meta = SnapshotMeta {
                last_log_id: data.last_applied,
                last_membership: data.membership.clone(),
                snapshot_id: format!("{}", data.last_applied.map(|l| l.index).unwrap_or_default()),
            };
            (bytes, meta)
        };
        *self.snapshot.write().unwrap() = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<u64>>,
            StoredMembership<u64, openraft::BasicNode>,
        ),
        StorageError<u64>,
    > {
        let data = self.data.read().unwrap();
        Ok((data.last_applied, data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut data = self.data.write().unwrap();
        let mut out = Vec::new();
        for entry in entries {
            data.last_applied = Some(entry.log_id);
            let resp = match entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Membership(m) => {
                    data.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::default()
                }
                EntryPayload::Normal(Request::Write { key, value }) => {
                    data.kv.insert(key, value);
                    Response::default()
                }
                EntryPayload::Normal(Request::Cas { key, from, to }) => {
                    let swapped = data.kv.get(&key) == Some(&from);
                    if swapped {
                        data.kv.insert(key, to);
                    }
                    Response {
                        swapped: Some(swapped),
                    }
                }
            };
            out.push(resp);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let new: Data = serde_json::from_slice(&bytes).map_err(|e| StorageError::IO {
            source: StorageIOError::write_state_machine(openraft::AnyError::new(&e)),
        })?;
        *self.data.write().unwrap() = Data {
            kv: new.kv,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        *self.snapshot.write().unwrap() = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self
            .snapshot
            .read()
            .unwrap()
            .as_ref()
            .map(|(meta, bytes)| Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(bytes.clone())),
            }))
    }
}
