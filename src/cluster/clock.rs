//! Clock faults of `squall up --disk-faults`: every node runs with squall's time shim preloaded
//! (`squall_chaos::clock`, written into the cluster directory at start as `time-shim.so`), reading its
//! clocks' laws from a control file in its node directory (`node-N/clock`) that squall changes live.
//!
//! ```text
//! clock NODE +DUR|-DUR    clock NODE xRATE    clock NODE strobe DUR    clock NODE heal
//! ```
//!
//! A jump moves only the node's wall clock (`CLOCK_REALTIME`), as an NTP step does; a rate runs both its
//! wall and monotonic clocks fast or slow and scales its sleeps and timeouts, so its timers fire at the
//! faked pace; a strobe flips the wall clock ahead and back every second and steps the monotonic clock
//! ahead, then holds it. Healing makes the wall clock true and lets the monotonic clock run on at the real
//! rate from where it stands: no clock fault ever moves a monotonic clock back, so none stalls a node's
//! timers (with libfaketime, which moved both clocks together, `clock 2 +1h` then `heal` stopped node 2
//! for an hour). Binaries that ignore `LD_PRELOAD` (statically linked ones, Go programs) keep real time,
//! and a clock command on such a node is refused.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use squall_chaos::clock::{FakeClock, preload_env};

use super::Cluster;
use super::command::{Command, NodeId};
pub use crate::command::clock::{ClockAction, HELP, parse_clock};

struct NodeClock {
    clock: FakeClock,
    /// The task that re-reports a running rate's offset to the dashboard once a second.
    reporter: Option<tokio::task::AbortHandle>,
}

/// `ns` as a signed duration in the console's words (`+1h`, `-30s`, `+250ms`), to the second above 1 s.
fn signed(ns: i64) -> String {
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
fn describe(c: &FakeClock) -> Option<String> {
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

/// The faked clocks, by node (empty without `--disk-faults`).
#[derive(Default)]
pub(super) struct Clocks {
    shim: Option<PathBuf>,
    nodes: Mutex<BTreeMap<NodeId, NodeClock>>,
}

impl Clocks {
    /// Clocks faked through the time shim at `shim` (`None`: no clock faults).
    pub(super) fn new(shim: Option<PathBuf>) -> Clocks {
        Clocks {
            shim,
            nodes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The environment node `id` runs with: the shim preloaded, reading `node_dir/clock`, which starts
    /// true.
    pub(super) fn env(
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
    pub(super) fn describe(&self, id: NodeId) -> Option<String> {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .and_then(|c| describe(&c.clock))
    }

    /// Makes every clock true (wall clocks set back to true time, monotonic clocks running on from where
    /// they stand); returns the nodes whose clock was faked.
    pub(super) fn heal_all(&self) -> Vec<NodeId> {
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
    fn drifting(&self, id: NodeId) -> bool {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .is_some_and(|c| (c.clock.rate() - 1.0).abs() >= f64::EPSILON)
    }

    /// Applies `action` to node `id`'s clock, whose process is `pid` when it runs; returns the
    /// monotonic clock's lasting lead in ns for a heal (0 otherwise).
    fn apply(&self, id: NodeId, pid: Option<u32>, action: &ClockAction) -> Result<i64, String> {
        let mut nodes = self.nodes.lock().unwrap();
        let c = nodes.get_mut(&id).ok_or_else(|| {
            "clock faults are off: start the cluster with `squall up --disk-faults`".to_string()
        })?;
        if let Some(pid) = pid
            && c.clock.attached_pid() != Some(pid)
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
    fn set_reporter(&self, id: NodeId, h: Option<tokio::task::AbortHandle>) {
        if let Some(c) = self.nodes.lock().unwrap().get_mut(&id)
            && let Some(old) = std::mem::replace(&mut c.reporter, h)
        {
            old.abort();
        }
    }
}

impl Cluster {
    /// Performs a `clock` command.
    pub(super) async fn perform_clock(&self, cmd: Command) -> Result<String, String> {
        let Command::Clock(t, action) = cmd else {
            return Err(format!("`{cmd}` is not a clock command"));
        };
        let id = self.resolve(t)?;
        let pid = match self.inner.sup.state(&super::node_name(id)) {
            Some(
                squall_chaos::ProcState::Running { pid } | squall_chaos::ProcState::Paused { pid },
            ) => Some(pid),
            _ => None,
        };
        let lead = self.inner.clocks.apply(id, pid, &action)?;
        if self.inner.clocks.drifting(id) {
            // The dashboard's clock column shows the wall clock's offset, which a rate keeps moving.
            let cluster = self.clone();
            let task = tokio::spawn(async move {
                let mut stop = cluster.stopping();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    cluster.report_node_faults(id);
                }
            });
            self.inner
                .clocks
                .set_reporter(id, Some(task.abort_handle()));
        } else {
            self.inner.clocks.set_reporter(id, None);
        }
        self.report_node_faults(id);
        let now = self
            .inner
            .clocks
            .describe(id)
            .unwrap_or_else(|| "true".into());
        let down = if pid.is_none() {
            " (the node is not running: it starts with this clock)"
        } else {
            ""
        };
        Ok(match action {
            ClockAction::Heal => format!(
                "heal node {id}'s clock: its wall clock is true again; its monotonic clock runs on at \
                 the real rate{}, never back{down}",
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Target;

    #[test]
    fn parses_the_vocabulary() {
        let p = |s: &str| super::super::command::parse(s);
        assert_eq!(
            p("clock 2 +1h"),
            Ok(Command::Clock(
                Target::Node(2),
                ClockAction::Jump(3_600_000)
            ))
        );
        assert_eq!(
            p("clock 2 -30s"),
            Ok(Command::Clock(Target::Node(2), ClockAction::Jump(-30_000)))
        );
        assert_eq!(
            p("clock 1 x4"),
            Ok(Command::Clock(Target::Node(1), ClockAction::Rate(4.0)))
        );
        assert_eq!(
            p("clock 1 x0.5"),
            Ok(Command::Clock(Target::Node(1), ClockAction::Rate(0.5)))
        );
        assert_eq!(
            p("clock leader strobe 200ms"),
            Ok(Command::Clock(
                Target::Leader,
                ClockAction::Strobe(Duration::from_millis(200))
            ))
        );
        assert_eq!(
            p("clock 3 heal"),
            Ok(Command::Clock(Target::Node(3), ClockAction::Heal))
        );
        for s in ["clock 2 -30s", "clock 1 x0.5", "clock 1 strobe 200ms"] {
            let c = p(s).unwrap();
            assert_eq!(p(&c.to_string()), Ok(c), "{s}");
        }
        assert!(p("clock 1 x9").unwrap_err().contains("outside x0.5"));
        assert!(p("clock 1 +soon").unwrap_err().contains("not a clock jump"));
        assert!(p("clock 1").unwrap_err().contains("needs a fault"));
        assert!(
            p("clock 1 warp")
                .unwrap_err()
                .contains("unknown clock fault")
        );
    }

    #[test]
    fn the_grammar_refuses_what_the_shim_would() {
        let p = |s: &str| super::super::command::parse(s);
        let limit = squall_chaos::clock::MAX_OFFSET;
        let days = limit.as_secs() / 86_400;
        assert!(p(&format!("clock 1 +{days}d")).is_ok());
        assert!(p(&format!("clock 1 -{days}d")).is_ok());
        let e = p("clock 4 +1y").unwrap_err();
        assert!(e.contains("`+1y`") && e.contains("±7d"), "{e}");
        let e = p(&format!("clock 4 -{}d", days + 1)).unwrap_err();
        assert!(e.contains("±7d"), "{e}");
        let period = squall_chaos::clock::STROBE_PERIOD;
        assert!(p(&format!("clock 1 strobe {}ms", period.as_millis())).is_ok());
        let e = p(&format!("clock 1 strobe {}ms", period.as_millis() + 1)).unwrap_err();
        assert!(e.contains("at most 1s"), "{e}");
    }

    #[test]
    fn a_clock_in_words_names_the_wall_clock_offset_rate_and_strobe() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = FakeClock::create(&dir.path().join("clock")).unwrap();
        assert_eq!(describe(&c), None);
        c.jump(-30_000_000_000).unwrap();
        assert_eq!(describe(&c).as_deref(), Some("-30s"));
        c.jump(3_630_000_000_000).unwrap();
        c.set_strobe(Duration::from_millis(200)).unwrap();
        assert_eq!(describe(&c).as_deref(), Some("+1h strobe 200ms"));
        c.heal();
        assert_eq!(describe(&c), None);
        c.set_rate(4.0).unwrap();
        assert_eq!(describe(&c).as_deref(), Some("×4"));
        assert_eq!(signed(-250_000_000), "-250ms");
    }
}
