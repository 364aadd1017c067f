//! The built-in client workload: a steady stream of KV operations at a chosen rate, through the bundled
//! client, reported as cumulative counts and as one event per operation. Two kinds: counter increments (this
//! file) and lin-kv reads, writes and cas with a recorded history ([`super::linkv`]).
//!
//! Each write adds 1 to one of [`COUNTERS`] counters (`c0`…), and the workload keeps a tally of the increments
//! it sent and of those acknowledged. That makes it checkable at any moment, as Jepsen checks a counter: a
//! linearizable read of a counter must show at least every increment acknowledged before the read began
//! (fewer means an acknowledged write was lost) and at most every increment sent by the time it ended.
//!
//! This file holds the workload's shared state; the pacer and the clients that act on it are in
//! [`super::clients`].

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use rand::Rng;

use super::linkv;
use crate::state::WorkloadKind;

/// How many counters the workload spreads its increments over.
pub const COUNTERS: usize = 8;

/// The key of counter `i` in the session tagged `session`: `c3.7f3a`. Each session writes counters of its own,
/// so a cluster directory reused from an earlier session (whose counters survive in the nodes' data) never
/// confuses this session's check, whose tally starts at zero.
pub fn counter_key(session: &str, i: usize) -> String {
    format!("c{i}.{session}")
}

/// Increments per counter: sent (perhaps applied) and acknowledged (certainly applied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Increments sent, whatever became of them.
    pub attempted: [u64; COUNTERS],
    /// Increments the cluster acknowledged.
    pub acked: [u64; COUNTERS],
}

/// Shared on/off switch and rate, and the tally of increments.
pub(super) struct Control {
    /// This session's tag in the counters' keys (see [`counter_key`]).
    pub(super) session: String,
    inner: Mutex<(bool, u32)>,
    /// Notified when the switch or the rate changes, so an idle pacer wakes at once.
    pub(super) changed: tokio::sync::Notify,
    /// Increments sent and acknowledged, per counter.
    pub(super) tally: Mutex<Tally>,
    kind: Mutex<WorkloadKind>,
    /// The lin-kv workload's history and shared client state.
    pub(super) lin: linkv::LinKv,
    /// Maelstrom's other workloads (echo, unique-ids, broadcast, g-counter, kafka): requests and history.
    pub(super) mael: crate::kind::maelstrom::workload::Workload,
    /// The lock workloads' client faults, resource and checker.
    pub(super) lock: super::lock::LockWorkload,
    /// Set while a workload is selected to be switched on at once ([`super::Cluster::start_workload`]): its
    /// selection's answer then does not say it is off (tester 9's finding 8).
    pub(super) on_next: std::sync::atomic::AtomicBool,
}

/// The file in a cluster directory that lists the key tag of every session that ran on it, one a line
/// (`7f3a`).
pub const SESSION_TAGS_FILE: &str = "session-tags";

/// A key tag for a new session on the cluster directory `dir`: drawn with `rng` among the 65,536 four-digit
/// hex tags, never one an earlier session on `dir` used. It is appended to [`SESSION_TAGS_FILE`] and synced
/// before any key is written, so this session's keys hold nothing an earlier session wrote, even one killed
/// with SIGKILL whose event log lost its last second, and its checks judge a history only on state the
/// history contains (a random tag alone collided once in 65,536 sessions). `Err` when the file cannot be read
/// or written, or every tag is taken.
pub fn new_session_tag(dir: &Path, rng: &mut impl Rng) -> Result<u16, String> {
    let path = dir.join(SESSION_TAGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let used: std::collections::HashSet<u16> = text
        .lines()
        .filter_map(|l| u16::from_str_radix(l.trim(), 16).ok())
        .collect();
    if used.len() > usize::from(u16::MAX) {
        return Err(format!(
            "every session tag is taken in {}: start this cluster in a new directory",
            path.display()
        ));
    }
    let tag = loop {
        let t: u16 = rng.random();
        if !used.contains(&t) {
            break t;
        }
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            writeln!(f, "{tag:04x}")?;
            Ok(f)
        })
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
    Ok(tag)
}

impl Control {
    /// The workload's state for a session whose keys carry `tag` (see [`new_session_tag`]), running `kind`
    /// until another is chosen; Maelstrom's workloads draw their requests from `seed`.
    pub(super) fn new(rate: u32, tag: u16, kind: WorkloadKind, seed: u64) -> Self {
        Self {
            session: format!("{tag:04x}"),
            inner: Mutex::new((false, rate.max(1))),
            changed: tokio::sync::Notify::new(),
            tally: Mutex::new(Tally::default()),
            kind: Mutex::new(kind),
            on_next: std::sync::atomic::AtomicBool::new(false),
            lin: linkv::LinKv::new(tag),
            mael: crate::kind::maelstrom::workload::Workload::new(seed),
            lock: super::lock::LockWorkload::new(),
        }
    }

    /// Which operations the workload runs.
    pub(super) fn kind(&self) -> WorkloadKind {
        *self.kind.lock().unwrap()
    }

    /// Switches the kind of operations (`None`: to the other kind); returns the kind now.
    pub(super) fn set_kind(&self, kind: Option<WorkloadKind>) -> WorkloadKind {
        let mut g = self.kind.lock().unwrap();
        *g = kind.unwrap_or(match *g {
            WorkloadKind::Counter => WorkloadKind::LinKv,
            WorkloadKind::LinKv | WorkloadKind::Lock | WorkloadKind::LockFenced => {
                WorkloadKind::Counter
            }
            _ => WorkloadKind::LinKv,
        });
        *g
    }

    /// The tally so far.
    pub(super) fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Whether the workload runs.
    pub(super) fn is_on(&self) -> bool {
        self.inner.lock().unwrap().0
    }

    /// Sets on/off (`None` toggles); returns whether it is on now.
    pub(super) fn set(&self, on: Option<bool>) -> bool {
        let mut g = self.inner.lock().unwrap();
        g.0 = on.unwrap_or(!g.0);
        self.changed.notify_one();
        g.0
    }

    pub(super) fn rate(&self) -> u32 {
        self.inner.lock().unwrap().1
    }

    pub(super) fn set_rate(&self, r: u32) {
        self.inner.lock().unwrap().1 = r.max(1);
        self.changed.notify_one();
    }

    /// Whether it runs, and at what rate.
    pub(super) fn get(&self) -> (bool, u32) {
        *self.inner.lock().unwrap()
    }
}

/// What one workload operation came to, as the header counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Done {
    /// It completed `ok`.
    Ok,
    /// It failed or timed out: an error of the system, or an outcome unknown.
    Failed,
    /// A cas whose expected value was not there: a definite `fail` of that operation, not an error (F8).
    CasFailed,
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Issue 19: "never judge a history across sessions on state the history does not contain". Each session
    /// wrote keys under a random 16-bit tag, so one session in 65,536 on a reused directory read keys an
    /// earlier session wrote (a value its history never wrote: a false "not linearizable").
    #[test]
    fn a_session_tag_is_never_one_an_earlier_session_on_the_directory_used() {
        let dir = tempfile::tempdir().unwrap();
        let seed = rand::random();
        eprintln!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Every tag but one taken already: the new session gets that one.
        let free = 0x7f3a_u16;
        let taken: String = (0..=u16::MAX)
            .filter(|t| *t != free)
            .map(|t| format!("{t:04x}\n"))
            .collect();
        std::fs::write(dir.path().join(SESSION_TAGS_FILE), taken).unwrap();
        assert_eq!(new_session_tag(dir.path(), &mut rng), Ok(free));
        // It is recorded: the next session finds none left and says what to do.
        let e = new_session_tag(dir.path(), &mut rng).unwrap_err();
        assert!(e.contains("new directory"), "{e}");
        // On a fresh directory, two hundred sessions never repeat a tag.
        let fresh = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            assert!(seen.insert(new_session_tag(fresh.path(), &mut rng).unwrap()));
        }
    }
}
