//! The replicated state machine: a key-value store with get, put, delete, compare-and-swap and increment.
//! Writes carry `(client_id, seq)`, so a retried write is applied once and answered with its first result.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::raft::Index;

/// One operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a key (served by ReadIndex, never logged).
    Get {
        /// The key.
        key: String,
    },
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` only if its value is `expected` (`None`: only if absent).
    Cas {
        /// The key.
        key: String,
        /// Value required now.
        expected: Option<String>,
        /// Value to set.
        new: String,
    },
    /// Add `by` to the integer at `key` (absent counts as 0).
    Incr {
        /// The key.
        key: String,
        /// Amount.
        by: i64,
    },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvResult {
    /// Put or delete done; for delete, whether the key existed.
    Ok {
        /// Previous value, if any.
        previous: Option<String>,
    },
    /// A read's value.
    Value(Option<String>),
    /// Compare-and-swap: whether it swapped, and the value now.
    Cas {
        /// True when the swap happened.
        swapped: bool,
        /// The value after the operation.
        current: Option<String>,
    },
    /// Increment: the new value.
    Counter(i64),
    /// The operation could not apply (for example incr of a non-integer).
    Error(String),
}

/// A logged write: the operation with its client identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// Client that sent it.
    pub client_id: u64,
    /// That client's sequence number.
    pub seq: u64,
    /// The write.
    pub op: KvOp,
}

/// A command or snapshot that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The bytes are not a valid encoding of `what`.
    #[error("cannot decode {what} ({len} bytes): {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Size of the input.
        len: usize,
        /// The decoder's error.
        source: bincode::Error,
    },
}

/// What the store remembers per client, so a retried write is answered without being applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// The highest sequence number applied for this client.
    seq: u64,
    /// What that write returned.
    result: KvResult,
}

/// The replicated key-value state machine: the map, the per-client dedup table and the index applied so far.
/// Every replica that applies the same commands in the same order holds the same state and encodes the same
/// snapshot bytes (ordered maps, fixed encoding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    applied: Index,
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
}

/// Longest key or value text in [`KvStore::describe`] before it is cut.
const DESCRIBE_MAX: usize = 16;

impl KvStore {
    /// An empty store at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a logged command at `index`. A retried `(client_id, seq)` returns its first result without being
    /// applied again; a `seq` below the client's last applied one is refused as stale. A `Get` (which should
    /// not be logged) reads without changing anything.
    pub fn apply(&mut self, index: Index, cmd: &KvCommand) -> KvResult {
        self.applied = self.applied.max(index);
        if let KvOp::Get { key } = &cmd.op {
            return KvResult::Value(self.data.get(key).cloned());
        }
        if let Some(session) = self.sessions.get(&cmd.client_id) {
            if cmd.seq == session.seq {
                return session.result.clone();
            }
            if cmd.seq < session.seq {
                return KvResult::Error(format!(
                    "stale request: client {} seq {} is older than its last applied seq {}",
                    cmd.client_id, cmd.seq, session.seq
                ));
            }
        }
        let result = self.execute(&cmd.op);
        self.sessions.insert(cmd.client_id, Session { seq: cmd.seq, result: result.clone() });
        result
    }

    fn execute(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { key } => KvResult::Value(self.data.get(key).cloned()),
            KvOp::Put { key, value } => KvResult::Ok { previous: self.data.insert(key.clone(), value.clone()) },
            KvOp::Delete { key } => KvResult::Ok { previous: self.data.remove(key) },
            KvOp::Cas { key, expected, new } => {
                let current = self.data.get(key);
                if current == expected.as_ref() {
                    self.data.insert(key.clone(), new.clone());
                    KvResult::Cas { swapped: true, current: Some(new.clone()) }
                } else {
                    KvResult::Cas { swapped: false, current: current.cloned() }
                }
            }
            KvOp::Incr { key, by } => {
                let now = match self.data.get(key) {
                    None => 0,
                    Some(v) => match v.parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => {
                            return KvResult::Error(format!(
                                "cannot increment key {key:?}: its value {:?} is not an integer",
                                truncate(v)
                            ));
                        }
                    },
                };
                match now.checked_add(*by) {
                    Some(n) => {
                        self.data.insert(key.clone(), n.to_string());
                        KvResult::Counter(n)
                    }
                    None => KvResult::Error(format!("cannot increment key {key:?}: {now} + {by} overflows i64")),
                }
            }
        }
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Index of the last log entry applied.
    pub fn applied_index(&self) -> Index {
        self.applied
    }

    /// Moves the applied index past an entry that carries no command (a leader's no-op).
    pub fn set_applied_index(&mut self, index: Index) {
        self.applied = self.applied.max(index);
    }

    /// Serialises the whole state (map, dedup table, applied index) for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a map of strings always encodes")
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes.
    pub fn restore(data: &[u8]) -> Result<KvStore, KvError> {
        bincode::deserialize(data).map_err(|source| KvError::Decode { what: "kv snapshot", len: data.len(), source })
    }

    /// Encodes a command for a log entry.
    pub fn encode_command(cmd: &KvCommand) -> Vec<u8> {
        bincode::serialize(cmd).expect("a command always encodes")
    }

    /// Decodes a log entry's command.
    pub fn decode_command(data: &[u8]) -> Result<KvCommand, KvError> {
        bincode::deserialize(data).map_err(|source| KvError::Decode { what: "kv command", len: data.len(), source })
    }

    /// Short text for the dashboard's log cells: `put k=v`, `del k`, `cas k`, `incr k+1`, with long keys and
    /// values cut to about 16 characters.
    pub fn describe(data: &[u8]) -> String {
        let Ok(cmd) = Self::decode_command(data) else {
            return format!("? {} bytes", data.len());
        };
        match &cmd.op {
            KvOp::Get { key } => format!("get {}", truncate(key)),
            KvOp::Put { key, value } => format!("put {}={}", truncate(key), truncate(value)),
            KvOp::Delete { key } => format!("del {}", truncate(key)),
            KvOp::Cas { key, .. } => format!("cas {}", truncate(key)),
            KvOp::Incr { key, by } => format!("incr {}{by:+}", truncate(key)),
        }
    }
}

/// Cuts `s` to [`DESCRIBE_MAX`] characters, marking the cut with an ellipsis.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(DESCRIBE_MAX) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}
