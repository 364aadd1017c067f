//! Clock faults of `squall up --disk-faults`: every node runs with libfaketime preloaded (Debian's
//! `libfaketime`, `LD_PRELOAD`), reading its faked time from a control file in its node directory
//! (`FAKETIME_TIMESTAMP_FILE`, re-read at most once a second), so a change applies to the running process
//! without its cooperation. libfaketime fakes `CLOCK_REALTIME` and `CLOCK_MONOTONIC` alike, which is what
//! tokio's timers read.
//!
//! ```text
//! clock NODE +DUR|-DUR    clock NODE xRATE    clock NODE strobe DUR    clock NODE heal
//! ```
//!
//! Rates and strobes are driven by squall, not by libfaketime's own `xRATE` modifier: Debian's libfaketime
//! 0.9.10 accepts `+0 x4` in the control file but its `clock_gettime` then still advances at the real rate
//! (measured: a 2.5 s sleep read as 2.5 s under `+0 x4`, `+3600 x4` and `+0 x0.5`; `x4` alone shortens
//! sleeps to a quarter but leaves the clock at the real rate). So squall rewrites the node's offset once a
//! second (libfaketime re-reads the file at most once a second): a clock at ×4 gains 3 s each second in steps,
//! a clock at ×0.5 loses 0.5 s each second, which steps it back — time still goes forward between steps.
//!
//! Why a backward move stalls the node: in 0.9.10, an offset `±N` makes libfaketime compute every faked
//! clock as `start_realtime + N + elapsed_on_that_clock` (one faked start time for all clocks), so changing
//! `N` moves `CLOCK_MONOTONIC` exactly as much as `CLOCK_REALTIME`, back included, and tokio's timer wheel
//! (which never goes back) waits until real time catches up. The only per-clock control is the environment
//! variable `FAKETIME_DONT_FAKE_MONOTONIC`, fixed for the process's life; with it monotonic is not faked at
//! all, which would make jumps faithful (an NTP step moves only realtime) but take rates and strobes away
//! from the node's timers. Checked by running a process under each setting and reading both clocks.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Cluster;
use super::command::{Command, NodeId};
pub use crate::command::clock::{ClockAction, HELP, parse_clock};

/// Where libfaketime is: `SQUALL_LIBFAKETIME`, else Debian's multi-threaded build.
pub fn find_libfaketime() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SQUALL_LIBFAKETIME") {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "SQUALL_LIBFAKETIME names {}, which does not exist",
                p.display()
            ))
        };
    }
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            "clock faults need libfaketime, which is not installed: apt-get install libfaketime \
             (or point SQUALL_LIBFAKETIME at libfaketimeMT.so.1)"
                .to_string()
        })
}

struct NodeClock {
    file: PathBuf,
    /// Offset in ms at `since`, and the rate from then on.
    offset_ms: f64,
    rate: f64,
    since: Instant,
    /// Strobe size, and whether the clock is on its ahead half now.
    strobe: Option<Duration>,
    ahead: bool,
    /// The task stepping the offset once a second (rates and strobes).
    ticker: Option<tokio::task::AbortHandle>,
}

impl NodeClock {
    fn new(file: PathBuf) -> NodeClock {
        NodeClock {
            file,
            offset_ms: 0.0,
            rate: 1.0,
            since: Instant::now(),
            strobe: None,
            ahead: false,
            ticker: None,
        }
    }

    /// The offset now, in ms, as the rate would have it (strobe excluded).
    fn offset_now(&self) -> f64 {
        self.offset_ms + self.since.elapsed().as_secs_f64() * 1000.0 * (self.rate - 1.0)
    }

    /// The control file's line: an offset from real time in seconds (`+3600.000`), which libfaketime applies
    /// to the realtime and monotonic clocks alike.
    fn spec(&self) -> String {
        let extra = match (self.strobe, self.ahead) {
            (Some(d), true) => d.as_secs_f64() * 1000.0,
            _ => 0.0,
        };
        format!("{:+.3}", (self.offset_now() + extra) / 1000.0)
    }

    fn write(&self) -> std::io::Result<()> {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", self.spec()))?;
        std::fs::rename(&tmp, &self.file)
    }

    /// Whether squall must step the offset every second.
    fn needs_ticker(&self) -> bool {
        (self.rate - 1.0).abs() >= f64::EPSILON || self.strobe.is_some()
    }

    fn describe(&self) -> Option<String> {
        let off = self.offset_now();
        let mut parts = Vec::new();
        if off.abs() >= 1000.0 {
            let d = humantime::format_duration(Duration::from_secs((off.abs() / 1000.0) as u64))
                .to_string()
                .replace(' ', "");
            parts.push(format!("{}{d}", if off < 0.0 { '-' } else { '+' }));
        }
        if (self.rate - 1.0).abs() >= f64::EPSILON {
            parts.push(format!("×{}", self.rate));
        }
        if let Some(d) = &self.strobe {
            parts.push(format!("strobe {}ms", d.as_millis()));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// The faked clocks, by node (empty without `--disk-faults`).
#[derive(Default)]
pub(super) struct Clocks {
    lib: Option<PathBuf>,
    nodes: Mutex<BTreeMap<NodeId, NodeClock>>,
}

impl Clocks {
    /// Clocks faked through the libfaketime at `lib` (`None`: no clock faults).
    pub(super) fn new(lib: Option<PathBuf>) -> Clocks {
        Clocks {
            lib,
            nodes: Mutex::new(BTreeMap::new()),
        }
    }

    /// The environment node `id` runs with: libfaketime preloaded, reading `node_dir/faketime`.
    pub(super) fn env(
        &self,
        id: NodeId,
        node_dir: &Path,
    ) -> anyhow::Result<Vec<(OsString, OsString)>> {
        let Some(lib) = &self.lib else {
            return Ok(vec![]);
        };
        let file = node_dir.join("faketime");
        let clock = NodeClock::new(file.clone());
        clock.write()?;
        self.nodes.lock().unwrap().insert(id, clock);
        Ok(vec![
            ("LD_PRELOAD".into(), lib.clone().into_os_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), file.into_os_string()),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ])
    }

    /// Node `id`'s clock in words; `None` when true.
    /// The node's faked offset now, in ms (0 when its clock is true).
    pub(super) fn offset_ms(&self, id: NodeId) -> f64 {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .map_or(0.0, NodeClock::offset_now)
    }

    pub(super) fn describe(&self, id: NodeId) -> Option<String> {
        self.nodes
            .lock()
            .unwrap()
            .get(&id)
            .and_then(NodeClock::describe)
    }

    /// Makes every clock true; returns the nodes whose clock was faked.
    pub(super) fn heal_all(&self) -> Vec<NodeId> {
        let ids: Vec<NodeId> = self.nodes.lock().unwrap().keys().copied().collect();
        ids.into_iter()
            .filter(|&id| {
                let faked = self.describe(id).is_some();
                let _ = self.apply(id, &ClockAction::Heal);
                faked
            })
            .collect()
    }

    /// One second's step of node `id`'s rate or strobe; false once it needs no more steps.
    fn step(&self, id: NodeId) -> bool {
        let mut nodes = self.nodes.lock().unwrap();
        let Some(c) = nodes.get_mut(&id) else {
            return false;
        };
        if !c.needs_ticker() {
            c.ticker = None;
            return false;
        }
        c.ahead = !c.ahead;
        let _ = c.write();
        true
    }

    /// Applies `action`; returns whether a ticker must be started for the node.
    fn apply(&self, id: NodeId, action: &ClockAction) -> Result<bool, String> {
        let mut nodes = self.nodes.lock().unwrap();
        let c = nodes.get_mut(&id).ok_or_else(|| {
            "clock faults are off: start the cluster with `squall up --disk-faults`".to_string()
        })?;
        c.offset_ms = c.offset_now();
        c.since = Instant::now();
        match action {
            ClockAction::Jump(ms) => c.offset_ms += *ms as f64,
            ClockAction::Rate(r) => c.rate = *r,
            ClockAction::Strobe(d) => c.strobe = Some(*d),
            ClockAction::Heal => {
                if let Some(h) = c.ticker.take() {
                    h.abort();
                }
                c.offset_ms = 0.0;
                c.rate = 1.0;
                c.strobe = None;
                c.ahead = false;
            }
        }
        c.write()
            .map_err(|e| format!("cannot write {}: {e}", c.file.display()))?;
        Ok(c.needs_ticker() && c.ticker.is_none())
    }

    fn set_ticker(&self, id: NodeId, h: tokio::task::AbortHandle) {
        if let Some(c) = self.nodes.lock().unwrap().get_mut(&id) {
            c.ticker = Some(h);
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
        let before = self.inner.clocks.offset_ms(id);
        if self.inner.clocks.apply(id, &action)? {
            let cluster = self.clone();
            let task = tokio::spawn(async move {
                let mut stop = cluster.stopping();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                    if !cluster.inner.clocks.step(id) {
                        return;
                    }
                    cluster.report_node_faults(id);
                }
            });
            self.inner.clocks.set_ticker(id, task.abort_handle());
        }
        self.report_node_faults(id);
        let now = self
            .inner
            .clocks
            .describe(id)
            .unwrap_or_else(|| "true".into());
        // libfaketime moves the monotonic clock with the realtime one, and a monotonic clock that goes back
        // stalls every timer of the process until real time catches up: say so rather than let the node look
        // hung for no reason.
        let back_ms = before - self.inner.clocks.offset_ms(id);
        let stall = if back_ms > 1000.0 {
            format!(
                "; WARNING: node {id}'s monotonic clock goes back {}, so its timers stall (it stops \
                 answering) until real time catches up",
                crate::units::duration(Duration::from_millis(back_ms as u64))
            )
        } else {
            String::new()
        };
        Ok(match action {
            ClockAction::Heal => format!("heal node {id}'s clock{stall}"),
            other => {
                format!(
                    "clock of node {id}: {other} (now {now}; applies within 1 s{})",
                    if matches!(other, ClockAction::Rate(_) | ClockAction::Strobe(_)) {
                        ", stepped once a second"
                    } else {
                        ""
                    }
                ) + &stall
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
    fn rates_and_strobes_are_offsets_stepped_by_squall() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = NodeClock::new(dir.path().join("faketime"));
        c.offset_ms = 5000.0;
        c.rate = 4.0;
        c.since = Instant::now() - Duration::from_secs(10);
        // 10 s at x4 gained 30 s on top of the +5 s jump; no libfaketime rate is written.
        let o: f64 = c.spec().parse().unwrap();
        assert!((o - 35.0).abs() < 0.1, "{}", c.spec());
        c.strobe = Some(Duration::from_millis(200));
        c.ahead = true;
        let o: f64 = c.spec().parse().unwrap();
        assert!((o - 35.2).abs() < 0.1, "{}", c.spec());
        assert!(c.needs_ticker());
        assert_eq!(c.describe().as_deref(), Some("+35s ×4 strobe 200ms"));
    }
}
