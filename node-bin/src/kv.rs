//! The replicated state machine: a key-value store with get, put, delete, compare-and-swap and increment.
//! Writes carry `(client_id, seq)`, so a retried write is applied once and answered with its first result.

use std::collections::{BTreeMap, BTreeSet};

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

/// A key or value over its size limit ([`crate::rpc::MAX_KEY_BYTES`], [`crate::rpc::MAX_VALUE_BYTES`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SizeError {
    /// The key is too long.
    #[error("key too large: {bytes} bytes, the limit is {limit}")]
    Key {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The value (for cas: the expected and new values together) is too long.
    #[error("value too large: {bytes} bytes, the limit is {limit}")]
    Value {
        /// Its length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl KvOp {
    /// The key the operation names.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get { key }
            | KvOp::Put { key, .. }
            | KvOp::Delete { key }
            | KvOp::Cas { key, .. }
            | KvOp::Incr { key, .. } => key,
        }
    }

    /// Bytes of values the operation carries (for cas: expected and new together).
    pub fn value_bytes(&self) -> usize {
        match self {
            KvOp::Put { value, .. } => value.len(),
            KvOp::Cas { expected, new, .. } => expected.as_ref().map_or(0, String::len) + new.len(),
            KvOp::Get { .. } | KvOp::Delete { .. } | KvOp::Incr { .. } => 0,
        }
    }

    /// Checks the key and value limits. Every operation that passes encodes to at most
    /// [`crate::rpc::MAX_COMMAND_BYTES`], so it fits one AppendEntries with room to spare.
    pub fn check_size(&self) -> Result<(), SizeError> {
        use crate::rpc::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
        let key = self.key().len();
        if key > MAX_KEY_BYTES {
            return Err(SizeError::Key {
                bytes: key,
                limit: MAX_KEY_BYTES,
            });
        }
        let value = self.value_bytes();
        if value > MAX_VALUE_BYTES {
            return Err(SizeError::Value {
                bytes: value,
                limit: MAX_VALUE_BYTES,
            });
        }
        Ok(())
    }
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
    /// Log index of that write: how recently the client was heard from.
    index: Index,
}

/// Clients remembered at most. Beyond this the one heard from longest ago is forgotten, the same one on every
/// replica (they apply the same commands in the same order), so the table stays bounded however many
/// clients come and go (`squall kv` is a new client each time). A forgotten client's retry of its last
/// write would be applied again; that needs this many other clients to write between its attempt and
/// its retry.
pub const MAX_SESSIONS: usize = 10_000;

/// The replicated key-value state machine: the map, the per-client dedup table and the index applied so far.
/// Every replica that applies the same commands in the same order holds the same state and encodes the same
/// snapshot bytes (ordered maps, fixed encoding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    applied: Index,
    /// A CRC-32 chained over every entry applied so far (index, term, payload), so two replicas can compare
    /// what they applied up to an index with one number (the orchestrator's state-machine safety check).
    /// Kept in snapshots, so a replica restored from one continues the same chain.
    applied_hash: u32,
    data: BTreeMap<String, String>,
    sessions: BTreeMap<u64, Session>,
    /// The sessions ordered by when their client was last heard from, `(index, client_id)`, so evicting the
    /// oldest is a lookup rather than a scan of all of them. Derived from `sessions`; not in snapshots.
    #[serde(skip)]
    by_recency: BTreeSet<(Index, u64)>,
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
        let previous = self.sessions.insert(
            cmd.client_id,
            Session {
                seq: cmd.seq,
                result: result.clone(),
                index,
            },
        );
        if let Some(old) = &previous {
            self.by_recency.remove(&(old.index, cmd.client_id));
        }
        self.by_recency.insert((index, cmd.client_id));
        if previous.is_none() && self.sessions.len() > MAX_SESSIONS {
            let (_, oldest) = self
                .by_recency
                .pop_first()
                .expect("more than MAX_SESSIONS sessions");
            self.sessions.remove(&oldest);
        }
        result
    }

    fn execute(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Get { key } => KvResult::Value(self.data.get(key).cloned()),
            KvOp::Put { key, value } => KvResult::Ok {
                previous: self.data.insert(key.clone(), value.clone()),
            },
            KvOp::Delete { key } => KvResult::Ok {
                previous: self.data.remove(key),
            },
            KvOp::Cas { key, expected, new } => {
                let current = self.data.get(key);
                if current == expected.as_ref() {
                    self.data.insert(key.clone(), new.clone());
                    KvResult::Cas {
                        swapped: true,
                        current: Some(new.clone()),
                    }
                } else {
                    KvResult::Cas {
                        swapped: false,
                        current: current.cloned(),
                    }
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
                    None => KvResult::Error(format!(
                        "cannot increment key {key:?}: {now} + {by} overflows i64"
                    )),
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
    /// Adds an applied entry to [`KvStore::applied_hash`]'s chain. The driver calls it once per entry, in
    /// index order, noops included.
    pub fn chain_applied(&mut self, index: Index, term: u64, payload: &[u8]) {
        let mut h = crc32fast::Hasher::new_with_initial(self.applied_hash);
        h.update(&index.to_le_bytes());
        h.update(&term.to_le_bytes());
        h.update(payload);
        self.applied_hash = h.finalize();
    }

    /// The chained hash of every entry applied up to [`KvStore::applied_index`].
    pub fn applied_hash(&self) -> u32 {
        self.applied_hash
    }

    pub fn set_applied_index(&mut self, index: Index) {
        self.applied = self.applied.max(index);
    }

    /// Serialises the whole state (map, dedup table, applied index) for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a map of strings always encodes")
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes.
    pub fn restore(data: &[u8]) -> Result<KvStore, KvError> {
        let mut kv: KvStore = bincode::deserialize(data).map_err(|source| KvError::Decode {
            what: "kv snapshot",
            len: data.len(),
            source,
        })?;
        kv.by_recency = kv.sessions.iter().map(|(&id, s)| (s.index, id)).collect();
        Ok(kv)
    }

    /// Encodes a command for a log entry.
    pub fn encode_command(cmd: &KvCommand) -> Vec<u8> {
        bincode::serialize(cmd).expect("a command always encodes")
    }

    /// Decodes a log entry's command.
    pub fn decode_command(data: &[u8]) -> Result<KvCommand, KvError> {
        bincode::deserialize(data).map_err(|source| KvError::Decode {
            what: "kv command",
            len: data.len(),
            source,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_applied_hash_matches_exactly_when_the_same_entries_were_applied_and_survives_a_snapshot()
    {
        let entries: Vec<(Index, u64, Vec<u8>)> =
            (1..=20).map(|i| (i, 1 + i / 7, vec![i as u8; 3])).collect();
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        for (i, t, p) in &entries {
            a.chain_applied(*i, *t, p);
            b.chain_applied(*i, *t, p);
        }
        assert_eq!(a.applied_hash(), b.applied_hash());
        assert_ne!(a.applied_hash(), 0);
        // One different entry (another term at index 20) gives another hash.
        let mut c = KvStore::new();
        for (i, t, p) in &entries[..19] {
            c.chain_applied(*i, *t, p);
        }
        c.chain_applied(20, 9, &entries[19].2);
        assert_ne!(a.applied_hash(), c.applied_hash());
        // A replica restored from a snapshot continues the same chain.
        let mut d = KvStore::new();
        for (i, t, p) in &entries[..10] {
            d.chain_applied(*i, *t, p);
        }
        let mut d = KvStore::restore(&d.snapshot()).unwrap();
        for (i, t, p) in &entries[10..] {
            d.chain_applied(*i, *t, p);
        }
        assert_eq!(d.applied_hash(), a.applied_hash());
    }

    fn cmd(client_id: u64, seq: u64, op: KvOp) -> KvCommand {
        KvCommand { client_id, seq, op }
    }
    fn put(k: &str, v: &str) -> KvOp {
        KvOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }
    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn each_operation() {
        let mut kv = KvStore::new();
        assert_eq!(
            kv.apply(1, &cmd(1, 1, put("a", "1"))),
            KvResult::Ok { previous: None }
        );
        assert_eq!(
            kv.apply(2, &cmd(1, 2, put("a", "2"))),
            KvResult::Ok {
                previous: some("1")
            }
        );
        assert_eq!(
            kv.apply(3, &cmd(1, 3, KvOp::Get { key: "a".into() })),
            KvResult::Value(some("2"))
        );
        assert_eq!(kv.get("a"), Some("2"));
        assert_eq!(
            kv.apply(4, &cmd(1, 4, KvOp::Delete { key: "a".into() })),
            KvResult::Ok {
                previous: some("2")
            }
        );
        assert_eq!(
            kv.apply(5, &cmd(1, 5, KvOp::Delete { key: "a".into() })),
            KvResult::Ok { previous: None }
        );
        assert_eq!(kv.get("a"), None);
        let cas = |expected: Option<&str>, new: &str| KvOp::Cas {
            key: "c".into(),
            expected: expected.map(String::from),
            new: new.into(),
        };
        // Absent key: only `expected: None` swaps.
        assert_eq!(
            kv.apply(6, &cmd(1, 6, cas(Some("x"), "y"))),
            KvResult::Cas {
                swapped: false,
                current: None
            }
        );
        assert_eq!(kv.get("c"), None);
        assert_eq!(
            kv.apply(7, &cmd(1, 7, cas(None, "x"))),
            KvResult::Cas {
                swapped: true,
                current: some("x")
            }
        );
        assert_eq!(
            kv.apply(8, &cmd(1, 8, cas(None, "z"))),
            KvResult::Cas {
                swapped: false,
                current: some("x")
            }
        );
        assert_eq!(
            kv.apply(9, &cmd(1, 9, cas(Some("x"), "y"))),
            KvResult::Cas {
                swapped: true,
                current: some("y")
            }
        );
        let incr = |by| KvOp::Incr {
            key: "n".into(),
            by,
        };
        assert_eq!(kv.apply(10, &cmd(1, 10, incr(5))), KvResult::Counter(5));
        assert_eq!(kv.apply(11, &cmd(1, 11, incr(-7))), KvResult::Counter(-2));
        assert_eq!(kv.get("n"), Some("-2"));
        assert_eq!(kv.len(), 2);
        assert_eq!(kv.applied_index(), 11);
    }

    #[test]
    fn incr_of_a_non_integer_or_past_i64_is_an_error_and_changes_nothing() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("n", "abc")));
        match kv.apply(
            2,
            &cmd(
                1,
                2,
                KvOp::Incr {
                    key: "n".into(),
                    by: 1,
                },
            ),
        ) {
            KvResult::Error(e) => assert!(e.contains("not an integer"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(kv.get("n"), Some("abc"));
        kv.apply(3, &cmd(1, 3, put("m", &i64::MAX.to_string())));
        match kv.apply(
            4,
            &cmd(
                1,
                4,
                KvOp::Incr {
                    key: "m".into(),
                    by: 1,
                },
            ),
        ) {
            KvResult::Error(e) => assert!(e.contains("overflows"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(kv.get("m"), Some(i64::MAX.to_string().as_str()));
    }

    #[test]
    fn a_retried_write_is_applied_once_and_answered_with_its_first_result() {
        let mut kv = KvStore::new();
        let c = cmd(
            7,
            1,
            KvOp::Incr {
                key: "n".into(),
                by: 1,
            },
        );
        assert_eq!(kv.apply(1, &c), KvResult::Counter(1));
        // The same (client, seq) logged again, e.g. after a leader change.
        assert_eq!(kv.apply(2, &c), KvResult::Counter(1));
        assert_eq!(kv.get("n"), Some("1"));
        // Another client's seq 1 is its own.
        assert_eq!(
            kv.apply(
                3,
                &cmd(
                    8,
                    1,
                    KvOp::Incr {
                        key: "n".into(),
                        by: 1
                    }
                )
            ),
            KvResult::Counter(2)
        );
        assert_eq!(
            kv.apply(
                4,
                &cmd(
                    7,
                    2,
                    KvOp::Incr {
                        key: "n".into(),
                        by: 1
                    }
                )
            ),
            KvResult::Counter(3)
        );
        assert_eq!(kv.applied_index(), 4);
    }

    #[test]
    fn the_client_table_is_bounded_and_forgets_the_longest_silent_client() {
        let mut kv = KvStore::new();
        let mut index = 0;
        let mut next = || {
            index += 1;
            index
        };
        // Client 0 writes first, then MAX_SESSIONS - 1 others, then client 0 again: all remembered.
        kv.apply(next(), &cmd(0, 1, put("a", "0")));
        for client in 1..MAX_SESSIONS as u64 {
            kv.apply(next(), &cmd(client, 1, put("k", "v")));
        }
        assert_eq!(kv.sessions.len(), MAX_SESSIONS);
        kv.apply(next(), &cmd(0, 2, put("a", "1")));
        // One more client: the table stays at the bound, and client 1 (silent longest) is forgotten.
        kv.apply(next(), &cmd(MAX_SESSIONS as u64, 1, put("k", "v")));
        assert_eq!(kv.sessions.len(), MAX_SESSIONS);
        assert!(!kv.sessions.contains_key(&1));
        // Client 0, heard from recently, still has its retry answered without a second apply.
        assert_eq!(
            kv.apply(next(), &cmd(0, 2, put("a", "2"))),
            KvResult::Ok {
                previous: some("0")
            }
        );
        assert_eq!(kv.get("a"), Some("1"));
        // Deterministic: a replica applying the same commands forgets the same client.
        let snapshot = kv.snapshot();
        assert_eq!(KvStore::restore(&snapshot).unwrap(), kv);
    }

    #[test]
    fn a_stale_seq_is_refused_without_applying() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 5, put("a", "new")));
        match kv.apply(2, &cmd(1, 4, put("a", "old"))) {
            KvResult::Error(e) => assert!(e.starts_with("stale request"), "{e}"),
            other => panic!("expected stale, got {other:?}"),
        }
        assert_eq!(kv.get("a"), Some("new"));
        // A get is never deduplicated nor refused.
        assert_eq!(
            kv.apply(3, &cmd(1, 1, KvOp::Get { key: "a".into() })),
            KvResult::Value(some("new"))
        );
    }

    #[test]
    fn snapshot_and_restore_round_trip() {
        let mut kv = KvStore::new();
        kv.apply(1, &cmd(1, 1, put("a", "1")));
        kv.apply(
            2,
            &cmd(
                2,
                1,
                KvOp::Incr {
                    key: "n".into(),
                    by: 3,
                },
            ),
        );
        kv.set_applied_index(3);
        let bytes = kv.snapshot();
        let mut back = KvStore::restore(&bytes).unwrap();
        assert_eq!(back, kv);
        assert_eq!(back.applied_index(), 3);
        // The dedup table came along: a retry is still answered, not applied.
        assert_eq!(
            back.apply(
                4,
                &cmd(
                    2,
                    1,
                    KvOp::Incr {
                        key: "n".into(),
                        by: 3
                    }
                )
            ),
            KvResult::Counter(3)
        );
        // Deterministic: two stores built the same way encode the same bytes.
        let mut twin = KvStore::new();
        twin.apply(1, &cmd(1, 1, put("a", "1")));
        twin.apply(
            2,
            &cmd(
                2,
                1,
                KvOp::Incr {
                    key: "n".into(),
                    by: 3,
                },
            ),
        );
        twin.set_applied_index(3);
        assert_eq!(twin.snapshot(), bytes);
        assert!(matches!(
            KvStore::restore(&bytes[..bytes.len() - 1]),
            Err(KvError::Decode { .. })
        ));
    }

    #[test]
    fn commands_encode_and_decode() {
        let c = cmd(
            3,
            9,
            KvOp::Cas {
                key: "k".into(),
                expected: None,
                new: "v".into(),
            },
        );
        assert_eq!(
            KvStore::decode_command(&KvStore::encode_command(&c)).unwrap(),
            c
        );
        let e = KvStore::decode_command(&[1, 2]).unwrap_err();
        assert!(e.to_string().contains("kv command (2 bytes)"), "{e}");
    }

    #[test]
    fn describe_is_short() {
        let d = |op| KvStore::describe(&KvStore::encode_command(&cmd(1, 1, op)));
        assert_eq!(d(put("k", "v")), "put k=v");
        assert_eq!(d(KvOp::Delete { key: "k".into() }), "del k");
        assert_eq!(
            d(KvOp::Cas {
                key: "k".into(),
                expected: None,
                new: "v".into()
            }),
            "cas k"
        );
        assert_eq!(
            d(KvOp::Incr {
                key: "k".into(),
                by: 1
            }),
            "incr k+1"
        );
        assert_eq!(
            d(KvOp::Incr {
                key: "k".into(),
                by: -2
            }),
            "incr k-2"
        );
        assert_eq!(d(KvOp::Get { key: "k".into() }), "get k");
        assert_eq!(
            d(put("k", &"é".repeat(40))),
            format!("put k={}…", "é".repeat(16))
        );
        assert_eq!(KvStore::describe(&[0xff]), "? 1 bytes");
    }

    #[test]
    fn a_restored_store_evicts_the_same_client_as_the_original() {
        let mut kv = KvStore::new();
        for client in 0..MAX_SESSIONS as u64 {
            kv.apply(client + 1, &cmd(client, 1, put("k", "v")));
        }
        let mut restored = KvStore::restore(&kv.snapshot()).unwrap();
        let next = MAX_SESSIONS as u64 + 1;
        kv.apply(next, &cmd(next, 1, put("k", "v")));
        restored.apply(next, &cmd(next, 1, put("k", "v")));
        assert!(!kv.sessions.contains_key(&0));
        assert_eq!(restored, kv);
    }

    #[test]
    fn size_limits_refuse_oversized_keys_and_values_and_the_largest_accepted_fits_a_command() {
        use crate::rpc::{MAX_COMMAND_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES};
        let big = |n: usize| "x".repeat(n);
        let largest = [
            put(&big(MAX_KEY_BYTES), &big(MAX_VALUE_BYTES)),
            KvOp::Cas {
                key: big(MAX_KEY_BYTES),
                expected: Some(big(MAX_VALUE_BYTES / 2)),
                new: big(MAX_VALUE_BYTES / 2),
            },
        ];
        for op in largest {
            op.check_size().unwrap();
            let encoded = KvStore::encode_command(&cmd(u64::MAX, u64::MAX, op));
            assert!(
                encoded.len() <= MAX_COMMAND_BYTES,
                "{} > {MAX_COMMAND_BYTES}",
                encoded.len()
            );
        }
        let err = put("k", &big(MAX_VALUE_BYTES + 1))
            .check_size()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "value too large: {} bytes, the limit is {MAX_VALUE_BYTES}",
                MAX_VALUE_BYTES + 1
            )
        );
        assert!(matches!(
            KvOp::Get {
                key: big(MAX_KEY_BYTES + 1)
            }
            .check_size(),
            Err(SizeError::Key { .. })
        ));
    }
}
