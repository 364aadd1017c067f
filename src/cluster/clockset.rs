//! The faked clocks of a session's nodes, by node: the control files squall's time shim reads
//! ([`squall_chaos::clock::FakeClock`]) and the tasks that re-report a drifting clock. The `clock` command is
//! performed in [`super::clock`]; this room holds the state it changes, so the cluster's handle can own it
//! without depending on the command's code.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use squall_chaos::clock::{FakeClock, preload_env};

use super::clock::ClockAction;
use super::command::NodeId;

struct NodeClock {
    clock: FakeClock,
    /// The task that re-reports a running rate's offset to the dashboard once a second.
    reporter: Option<tokio::task::AbortHandle>,
}

/// `ns` as a signed duration in the console's words (`+1h`, `-30s`, `+250ms`), to the second above 1 s.
pub(crate) fn signed(ns: i64) -> String {
    let d = Duration::from_nanos(ns.unsigned_abs());
    let d = if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    format!(
        "{}{}",
        if ns < 0 { '-' } else { '+' },
        crate::command::fault::human(d)
    )
}

/// A node's clock faults in words; `None` when its clock is true.
pub(crate) fn describe(c: &FakeClock) -> Option<String> {
    if !c.is_faked() {
        return None;
    }
    let mut parts = Vec::new();
    let off = c.realtime_offset();
    if off.abs() >= 1_000_000 {
        parts.push(signed(off));
    }
    if (c.rate() - 1.0).abs() >= f64::EPSILON {
        parts.push(format!("×{}", c.rate()));
    }
    if let Some(d) = c.strobe() {
        parts.push(format!("strobe {}ms", d.as_millis()));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What a `clock` command did to node `id`, in words: `action` applied, `lead` the monotonic clock's lasting
/// lead in ns a heal left, `now` the clock in words afterwards, `running` whether the node runs (else it starts
/// with this clock). Shared by the local cluster and `squall agent`.
pub(crate) fn said(
    id: NodeId,
    action: &ClockAction,
    lead: i64,
    now: &str,
    running: bool,
) -> String {
    let down = if running {
        ""
    } else {
        " (the node is not running: it starts with this clock)"
    };
    match action {
        ClockAction::Heal => format!(
            "heal node {id}'s clock: its wall clock is true again; its monotonic clock runs on at the real \
             rate{}, never back{down}",
            if lead.abs() >= 1_000_000 {
                format!(" ({} from where it stood)", signed(lead))
            } else {
                String::new()
            }
        ),
        other => {
            let reach = match other {
                ClockAction::Jump(_) => {
                    "the wall clock only; its monotonic clock and timers run on"
                }
                ClockAction::Rate(_) => "wall and monotonic clocks, sleeps and timers",
                _ => "wall clock ahead and back each second; monotonic clock ahead, then held",
            };
            format!("clock of node {id}: {other} (now {now}; {reach}){down}")
        }
    }
}

/// The faked clocks, by node (empty without `--disk-faults`).
#[derive(Default)]
pub(crate) struct Clocks {
    shim: Option<PathBuf>,
    nodes: Mutex<BTreeMap<NodeId, NodeClock>>,
}

impl Clocks {
    /// Clocks faked through the time shim at `shim` (`None`: no clock faults).
    pub(crate) fn new(shim: Option<PathBuf>) -> Clocks {
        Clocks {
            shim,
            nodes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The environment node `id` runs with: the shim preloaded, reading `node_dir/clock`, which starts
    /// true.
    pub(crate) fn env(
        &self,
        id: NodeId,
        node_dir: &Path,
    ) -> anyhow::Result<Vec<(OsString, OsString)>> {
        let Some(shim) = &self.shim else {
            return Ok(vec![]);
        };
        let clock = FakeClock::create(&node_dir.join("clock"))?;
        let env = preload_env(shim, clock.path());
        if let Some(old) = self.nodes.lock().unwrap().insert(
            id,
            NodeClock {
                clock,
                reporter: None,
            },
        ) && let Some(h) = old.reporter
        {
            h.abort();
        }
        Ok(env)
    }

    /// Node `id`'s clock in words; `None` when true.
    pub(crate) fn describe(&self, id: NodeId) -> Option<String> {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .and_then(|c| describe(&c.clock))
    }

    /// Makes every clock true (wall clocks set back to true time, monotonic clocks running on from where
    /// they stand); returns the nodes whose clock was faked.
    pub(crate) fn heal_all(&self) -> Vec<NodeId> {
        let mut nodes = self.nodes.lock().unwrap();
        let mut healed = Vec::new();
        for (&id, c) in nodes.iter_mut() {
            if c.clock.is_faked() {
                healed.push(id);
            }
            c.clock.heal();
            if let Some(h) = c.reporter.take() {
                h.abort();
            }
        }
        healed
    }

    /// Whether node `id`'s clock runs at another rate (its offset keeps changing).
    pub(crate) fn drifting(&self, id: NodeId) -> bool {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .is_some_and(|c| (c.clock.rate() - 1.0).abs() >= f64::EPSILON)
    }

    /// Applies `action` to node `id`'s clock, whose process is `pid` when it runs; returns the
    /// monotonic clock's lasting lead in ns for a heal (0 otherwise).
    pub(crate) fn apply(
        &self,
        id: NodeId,
        pid: Option<u32>,
        action: &ClockAction,
    ) -> Result<i64, String> {
        let mut nodes = self.nodes.lock().unwrap();
        let c = nodes.get_mut(&id).ok_or_else(|| {
            "clock faults are off: start the cluster with `squall up --disk-faults`".to_string()
        })?;
        // The shim may be in a child of the node's process: a Maelstrom node's process is the bridge, the node
        // program its child, and the last to load the shim is the one recorded (tester 10's finding 7).
        if let Some(pid) = pid
            && !c
                .clock
                .attached_pid()
                .is_some_and(|a| descends_from(a, pid))
            && *action != ClockAction::Heal
        {
            return Err(format!(
                "node {id} (pid {pid}) did not load squall's time shim: its binary ignores LD_PRELOAD \
                 (statically linked, or a Go program), so its clock cannot be faked"
            ));
        }
        let refused = |e: squall_chaos::clock::ClockError| {
            format!("`clock {id} {action}` refused: {e}; `clock {id} heal` makes it true")
        };
        match action {
            ClockAction::Jump(ms) => c
                .clock
                .jump(ms.saturating_mul(1_000_000))
                .map_err(refused)?,
            ClockAction::Rate(r) => c.clock.set_rate(*r).map_err(refused)?,
            ClockAction::Strobe(d) => c.clock.set_strobe(*d).map_err(refused)?,
            ClockAction::Heal => {
                if let Some(h) = c.reporter.take() {
                    h.abort();
                }
                return Ok(c.clock.heal());
            }
        }
        Ok(0)
    }

    /// Sets (or with `None` stops) the task re-reporting node `id`'s drifting clock.
    pub(crate) fn set_reporter(&self, id: NodeId, h: Option<tokio::task::AbortHandle>) {
        if let Some(c) = self.nodes.lock().unwrap().get_mut(&id)
            && let Some(old) = std::mem::replace(&mut c.reporter, h)
        {
            old.abort();
        }
    }
}

/// Whether process `pid` is `ancestor` or one of its descendants (by the parent pids in `/proc`); `false` when
/// the chain cannot be read.
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == ancestor {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            return false;
        };
        // `PID (COMM) STATE PPID ...`: COMM may hold blanks and parentheses, so read after the last `)`.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|f| f.parse::<u32>().ok())
        else {
            return false;
        };
        if ppid == 0 {
            return false;
        }
        p = ppid;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_descends_from_itself_and_its_parents_not_from_its_child() {
        let me = std::process::id();
        assert!(descends_from(me, me));
        assert!(descends_from(me, 1));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(descends_from(child.id(), me));
        assert!(!descends_from(me, child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
