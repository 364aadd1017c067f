//! Disk fault commands of `squall up --disk-faults` as values: `powercut` and `disk`.
//!
//! ```text
//! powercut NODE|leader|all [torn [writes|pages]]
//! disk NODE slow DUR [sync] | stall | fail-fsync [once|always] | full [after BYTES] | flip [FILE [at OFFSET]] | heal
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fault::{human, parse_duration};
use super::target::{NodeId, Target};

/// Whether an injected fsync failure happens once or on every sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsyncFailure {
    /// The next fsync/fdatasync fails, later ones succeed.
    Once,
    /// Every fsync/fdatasync fails until healed.
    Always,
}

/// Which part of the unsynced writes survives a torn power cut (the fault filesystem's modes, after LazyFS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TornMode {
    /// The last unsynced write of each file keeps a random prefix; every other unsynced write is lost.
    Prefix,
    /// Each unsynced write survives whole or not at all, independently (LazyFS `torn-seq`).
    Writes,
    /// Each unsynced write is split at 4 KiB pages and each piece survives independently (LazyFS `torn-op`).
    Pages,
}

impl std::fmt::Display for TornMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TornMode::Prefix => "torn",
            TornMode::Writes => "torn writes",
            TornMode::Pages => "torn pages",
        })
    }
}

/// Which nodes lose power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerTarget {
    /// One node (or the leader).
    One(Target),
    /// Every node at once: a coordinated power failure.
    All,
}

impl std::fmt::Display for PowerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PowerTarget::One(t) => t.fmt(f),
            PowerTarget::All => f.write_str("all"),
        }
    }
}

/// A disk fault to set on one node, or `Heal` to remove them all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskAction {
    /// Every operation (or only syncs) takes this much longer.
    Slow {
        /// Added time per operation.
        delay: Duration,
        /// Only file and directory syncs are slowed.
        syncs_only: bool,
    },
    /// I/O blocks until healed; the process keeps running.
    Stall,
    /// The next (or every) fsync/fdatasync fails with EIO, dropping that file's unsynced data.
    FailFsync(FsyncFailure),
    /// Writes fail with ENOSPC after this many more bytes.
    Full {
        /// Bytes still allowed.
        after: u64,
    },
    /// Flip one bit of this file (relative to the data directory; a random non-empty file when `None`) at this
    /// byte offset (random when `None`; only with a file).
    Flip {
        /// The file, relative to the data directory.
        file: Option<String>,
        /// The byte offset.
        at: Option<u64>,
    },
    /// Remove every disk fault of the node.
    Heal,
}

impl std::fmt::Display for DiskAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskAction::Slow { delay, syncs_only } => write!(
                f,
                "slow {}{}",
                human(*delay),
                if *syncs_only { " sync" } else { "" }
            ),
            DiskAction::Stall => f.write_str("stall"),
            DiskAction::FailFsync(FsyncFailure::Once) => f.write_str("fail-fsync once"),
            DiskAction::FailFsync(FsyncFailure::Always) => f.write_str("fail-fsync always"),
            DiskAction::Full { after } => write!(f, "full after {after}"),
            DiskAction::Flip { file: None, .. } => f.write_str("flip"),
            DiskAction::Flip {
                file: Some(file),
                at: None,
            } => write!(f, "flip {file}"),
            DiskAction::Flip {
                file: Some(file),
                at: Some(at),
            } => write!(f, "flip {file} at {at}"),
            DiskAction::Heal => f.write_str("heal"),
        }
    }
}

/// Help for the console.
pub const HELP: &str = "powercut N|leader|all [torn [writes|pages]], disk N slow 50ms [sync]|stall|\
fail-fsync [once|always]|full [after BYTES]|flip [FILE [at OFFSET]]|heal";

fn node_target(word: Option<&str>, cmd: &str) -> Result<Target, String> {
    match word {
        None => Err(format!(
            "`{cmd}` needs a node id (or `leader`), e.g. `{cmd} 2 …`"
        )),
        Some("leader") => Ok(Target::Leader),
        Some(w) => w
            .parse::<NodeId>()
            .map(Target::Node)
            .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)")),
    }
}

/// Parses the words after `powercut`.
pub fn parse_powercut(rest: &[&str]) -> Result<(PowerTarget, Option<TornMode>), String> {
    let target = match rest.first().copied() {
        Some("all") => PowerTarget::All,
        w => PowerTarget::One(node_target(w, "powercut")?),
    };
    match &rest[1..] {
        [] => Ok((target, None)),
        ["torn"] | ["torn", "prefix"] => Ok((target, Some(TornMode::Prefix))),
        ["torn", "writes"] => Ok((target, Some(TornMode::Writes))),
        ["torn", "pages"] => Ok((target, Some(TornMode::Pages))),
        other => Err(format!(
            "`powercut` takes a node (or leader, or all) and optionally `torn`, `torn writes` or `torn pages`, \
             not `{}`",
            other.join(" ")
        )),
    }
}

/// Parses the words after `disk`.
pub fn parse_disk(rest: &[&str]) -> Result<(Target, DiskAction), String> {
    let target = node_target(rest.first().copied(), "disk")?;
    let usage = "use `disk N slow 50ms [sync]`, `stall`, `fail-fsync [once|always]`, `full [after BYTES]`, \
                 `flip [FILE [at OFFSET]]` or `heal`";
    let words = rest.get(1..).unwrap_or(&[]);
    let action = match words {
        ["slow", d, more @ ..] => {
            let delay = parse_duration(d, "duration")?;
            let syncs_only = match more {
                [] => false,
                ["sync"] => true,
                other => {
                    return Err(format!(
                        "`disk N slow {d}` takes only `sync` after it, not `{}`",
                        other.join(" ")
                    ));
                }
            };
            if delay.is_zero() {
                return Err("a slow disk needs a delay above 0 (`disk N heal` removes it)".into());
            }
            DiskAction::Slow { delay, syncs_only }
        }
        ["slow"] => {
            return Err("`disk N slow` needs a delay, e.g. `disk 1 slow 50ms` (add `sync` to slow only syncs)".into());
        }
        ["stall"] => DiskAction::Stall,
        ["fail-fsync"] | ["fail-fsync", "once"] => DiskAction::FailFsync(FsyncFailure::Once),
        ["fail-fsync", "always"] => DiskAction::FailFsync(FsyncFailure::Always),
        ["full"] => DiskAction::Full { after: 0 },
        ["full", "after", n] => DiskAction::Full {
            after: parse_bytes(n)?,
        },
        ["flip"] => DiskAction::Flip {
            file: None,
            at: None,
        },
        ["flip", file] => DiskAction::Flip {
            file: Some(file.to_string()),
            at: None,
        },
        ["flip", file, "at", offset] => DiskAction::Flip {
            file: Some(file.to_string()),
            at: Some(offset.parse::<u64>().map_err(|_| {
                format!("`{offset}` is not a byte offset (a whole number, e.g. `disk 2 flip wal.log at 4096`)")
            })?),
        },
        ["flip", _, "at"] => {
            return Err("`flip FILE at` needs a byte offset, e.g. `disk 2 flip wal.log at 4096`".into());
        }
        ["heal"] => DiskAction::Heal,
        [] => return Err(format!("`disk` needs a fault; {usage}")),
        other => return Err(format!("unknown disk fault `{}`; {usage}", other.join(" "))),
    };
    Ok((target, action))
}

/// `4096`, `64k`, `10KiB`, `1m`, `2MB`: a byte count.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let lower = s.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let mult = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` is not a byte count like 4096, 64k or 1m")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a byte count like 4096, 64k or 1m"))
}
