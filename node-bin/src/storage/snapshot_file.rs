//! The snapshot file: `[8-byte magic][u64 payload len][u32 crc32(payload)][payload]`, the payload a
//! bincode-encoded [`Snapshot`]. Written to a temporary file, fsynced, renamed over the old one and the
//! directory fsynced, so a crash leaves either the old snapshot or the new one, never a mix.
//!
//! Format 2 (magic `SQSNAP\0\2`) adds the configuration in effect at the snapshot's last index. Format 1
//! files (magic `SQSNAP\0\1`, written before membership changes existed) are still read, with no
//! configuration: the node then uses its bootstrap configuration, which is what it ran with then. A file
//! of any other format is refused with a message naming it.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::{StorageError, sync_dir, write_new_file};
use serde::Deserialize;

use crate::raft::{Snapshot, SnapshotMeta};

/// File name of the snapshot inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
/// Where a new snapshot is written before the rename.
pub(crate) const SNAPSHOT_TMP_FILE: &str = "snapshot.bin.tmp";
const MAGIC: &[u8; 8] = b"SQSNAP\x00\x02";
/// Magic of format 1: the same layout, the payload a [`SnapshotV1`].
const MAGIC_V1: &[u8; 8] = b"SQSNAP\x00\x01";
/// What format 1 held: no configuration.
#[derive(Deserialize)]
struct SnapshotV1 {
    meta: SnapshotMeta,
    #[serde(with = "crate::raft::types::as_bytes")]
    data: Vec<u8>,
}
const HEADER_LEN: usize = 8 + 8 + 4;

/// Writes `snapshot` into `dir` atomically. On a full disk the temporary file is removed and the error is
/// [`StorageError::DiskFull`] (the old snapshot is untouched).
pub(crate) fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let tmp = dir.join(SNAPSHOT_TMP_FILE);
    let dst = dir.join(SNAPSHOT_FILE);
    let payload = bincode::serialize(snapshot).map_err(|source| StorageError::Encode {
        what: "snapshot",
        source,
    })?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StorageError::Io { path, op, source }
    };
    let f = write_new_file(&tmp, &bytes)?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, &dst).map_err(io("rename into place", &dst))?;
    sync_dir(dir)
}

/// What a node whose snapshot file is damaged can do: the snapshot holds committed state no other file of
/// the directory has, so the directory cannot be repaired in place.
const RECOVER_HINT: &str = "the snapshot cannot be repaired in place (to recover, move the data directory \
     aside: the node then starts empty and recovers from the other voters, who hold what it lost; with squall, \
     `wipe N` does that)";

/// Reads the snapshot in `dir`, if there is one.
pub(crate) fn read(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StorageError::Io {
                path,
                op: "read",
                source,
            });
        }
    };
    // Damage, not a version: say how to recover (tester finding F17), as a damaged WAL record does.
    let corrupt = |detail: String| StorageError::Corrupt {
        path: path.clone(),
        detail: format!("{detail}; {RECOVER_HINT}"),
    };
    if bytes.len() >= 8
        && bytes[..6] == MAGIC[..6]
        && &bytes[..8] != MAGIC
        && &bytes[..8] != MAGIC_V1
    {
        return Err(StorageError::Corrupt {
            path: path.clone(),
            detail: format!(
                "written in snapshot format {} by a newer squall, which this one cannot read; run the squall \
             that wrote it",
                u16::from_be_bytes([bytes[6], bytes[7]])
            ),
        });
    }
    if bytes.len() < HEADER_LEN || (&bytes[..8] != MAGIC && &bytes[..8] != MAGIC_V1) {
        return Err(corrupt(format!(
            "not a squall snapshot file ({} bytes, bad header)",
            bytes.len()
        )));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(corrupt(format!(
            "header announces {len} payload bytes, file holds {}",
            payload.len()
        )));
    }
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(corrupt(format!(
            "CRC mismatch (stored {crc:#010x}, computed {actual:#010x})"
        )));
    }
    if &bytes[..8] == MAGIC_V1 {
        return bincode::deserialize::<SnapshotV1>(payload)
            .map(|s| {
                Some(Snapshot {
                    meta: s.meta,
                    data: s.data,
                    config: None,
                })
            })
            .map_err(|e| corrupt(format!("payload (format 1) does not decode: {e}")));
    }
    bincode::deserialize(payload)
        .map(Some)
        .map_err(|e| corrupt(format!("payload does not decode: {e}")))
}
