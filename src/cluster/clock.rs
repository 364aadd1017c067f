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
//! libfaketime applies a rate from the process's start; squall moves the offset so that a rate set while a
//! node runs takes effect from that moment instead of jumping the clock.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Cluster;
use super::command::{Command, NodeId, Target};

/// A clock fault to set on one node, or `Heal` to make its clock true again.
#[derive(Clone, Debug, PartialEq)]
pub enum ClockAction {
    /// Jump the clock by this many milliseconds (negative: back).
    Jump(i64),
    /// Run the clock at this rate (0.5 … 4).
    Rate(f64),
    /// Flip the clock between its offset and this much ahead, every second.
    Strobe(Duration),
    /// Make the clock true again.
    Heal,
}

impl std::fmt::Display for ClockAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockAction::Jump(ms) => write!(
                f,
                "{}{}ms",
                if *ms < 0 { '-' } else { '+' },
                ms.unsigned_abs()
            ),
            ClockAction::Rate(r) => write!(f, "x{r}"),
            ClockAction::Strobe(d) => write!(f, "strobe {}ms", d.as_millis()),
            ClockAction::Heal => f.write_str("heal"),
        }
    }
}

/// Help for the console.
pub const HELP: &str = "clock N +1h|-30s|x4|x0.5|strobe 200ms|heal";

/// Parses the words after `clock`.
pub fn parse_clock(rest: &[&str]) -> Result<Command, String> {
    let target = match rest.first().copied() {
        None => return Err("`clock` needs a node id (or `leader`), e.g. `clock 2 +1h`".into()),
        Some("leader") => Target::Leader,
        Some(w) => Target::Node(
            w.parse()
                .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)"))?,
        ),
    };
    let usage =
        "use `clock N +1h`, `clock N -30s`, `clock N x4`, `clock N strobe 200ms` or `clock N heal`";
    let action = match rest.get(1..).unwrap_or(&[]) {
        [w] if w.starts_with('+') || w.starts_with('-') => {
            let d = humantime::parse_duration(&w[1..])
                .map_err(|_| format!("`{w}` is not a clock jump like +1h or -30s"))?;
            let ms = i64::try_from(d.as_millis()).map_err(|_| format!("`{w}` is too far"))?;
            ClockAction::Jump(if w.starts_with('-') { -ms } else { ms })
        }
        [w] if w.starts_with('x') || w.starts_with('×') => {
            let num = w.trim_start_matches(['x', '×']);
            let r: f64 = num
                .parse()
                .map_err(|_| format!("`{w}` is not a clock rate like x4 or x0.5"))?;
            if !(0.5..=4.0).contains(&r) {
                return Err(format!("clock rate {r} is outside x0.5 … x4"));
            }
            ClockAction::Rate(r)
        }
        ["strobe", d] => {
            let d = humantime::parse_duration(d)
                .map_err(|_| format!("`{d}` is not a duration like 200ms"))?;
            if d.is_zero() {
                return Err("a strobe needs a size above 0".into());
            }
            ClockAction::Strobe(d)
        }
        ["heal"] => ClockAction::Heal,
        [] => return Err(format!("`clock` needs a fault; {usage}")),
        other => {
            return Err(format!(
                "unknown clock fault `{}`; {usage}",
                other.join(" ")
            ));
        }
    };
    Ok(Command::Clock(target, action))
}

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
    /// When the current process started (libfaketime's reference point for rates).
    started: Instant,
    /// Offset in ms at `since`, and the rate from then on.
    offset_ms: f64,
    rate: f64,
    since: Instant,
    strobe: Option<(Duration, tokio::task::AbortHandle)>,
}

impl NodeClock {
    /// The offset now, in ms.
    fn offset_now(&self) -> f64 {
        self.offset_ms + self.since.elapsed().as_secs_f64() * 1000.0 * (self.rate - 1.0)
    }

    /// The control file's line: libfaketime computes start + O + (now - start) × rate, so O is chosen to give
    /// `offset_ms` at `since` with the rate applying from `since`.
    fn spec(&self, extra_ms: f64) -> String {
        let from_start_ms = self.since.duration_since(self.started).as_secs_f64() * 1000.0;
        let o = self.offset_ms + extra_ms - from_start_ms * (self.rate - 1.0);
        if (self.rate - 1.0).abs() < f64::EPSILON {
            format!("{:+.3}", o / 1000.0)
        } else {
            format!("{:+.3} x{}", o / 1000.0, self.rate)
        }
    }

    fn write(&self, extra_ms: f64) -> std::io::Result<()> {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", self.spec(extra_ms)))?;
        std::fs::rename(&tmp, &self.file)
    }

    fn describe(&self) -> Option<String> {
        let off = self.offset_now();
        let mut parts = Vec::new();
        if off.abs() >= 1000.0 {
            let d = humantime::format_duration(Duration::from_millis(off.abs() as u64))
                .to_string()
                .replace(' ', "");
            parts.push(format!("{}{d}", if off < 0.0 { '-' } else { '+' }));
        }
        if (self.rate - 1.0).abs() >= f64::EPSILON {
            parts.push(format!("×{}", self.rate));
        }
        if let Some((d, _)) = &self.strobe {
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
        let now = Instant::now();
        let clock = NodeClock {
            file: file.clone(),
            started: now,
            offset_ms: 0.0,
            rate: 1.0,
            since: now,
            strobe: None,
        };
        clock.write(0.0)?;
        self.nodes.lock().unwrap().insert(id, clock);
        Ok(vec![
            ("LD_PRELOAD".into(), lib.clone().into_os_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), file.into_os_string()),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
        ])
    }

    /// Node `id` (re)started now: its libfaketime counts rates from here.
    pub(super) fn restarted(&self, id: NodeId) {
        if let Some(c) = self.nodes.lock().unwrap().get_mut(&id) {
            let now = Instant::now();
            c.offset_ms = c.offset_now();
            c.since = now;
            c.started = now;
            let _ = c.write(0.0);
        }
    }

    /// Node `id`'s clock in words; `None` when true.
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

    fn apply(&self, id: NodeId, action: &ClockAction) -> Result<(), String> {
        let mut nodes = self.nodes.lock().unwrap();
        let c = nodes.get_mut(&id).ok_or_else(|| {
            "clock faults are off: start the cluster with `squall up --disk-faults`".to_string()
        })?;
        let now = Instant::now();
        c.offset_ms = c.offset_now();
        c.since = now;
        match action {
            ClockAction::Jump(ms) => c.offset_ms += *ms as f64,
            ClockAction::Rate(r) => c.rate = *r,
            ClockAction::Strobe(d) => {
                if let Some((_, h)) = c.strobe.take() {
                    h.abort();
                }
                let file = c.file.clone();
                let (d, base) = (*d, (c.offset_ms, c.rate, c.started, c.since));
                let task = tokio::spawn(async move {
                    let clock = NodeClock {
                        file,
                        started: base.2,
                        offset_ms: base.0,
                        rate: base.1,
                        since: base.3,
                        strobe: None,
                    };
                    let mut ahead = false;
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        ahead = !ahead;
                        let extra = if ahead { d.as_secs_f64() * 1000.0 } else { 0.0 };
                        let _ = clock.write(extra);
                    }
                });
                c.strobe = Some((d, task.abort_handle()));
            }
            ClockAction::Heal => {
                if let Some((_, h)) = c.strobe.take() {
                    h.abort();
                }
                c.offset_ms = 0.0;
                c.rate = 1.0;
            }
        }
        c.write(0.0)
            .map_err(|e| format!("cannot write {}: {e}", c.file.display()))
    }
}

impl Cluster {
    /// Performs a `clock` command.
    pub(super) async fn perform_clock(&self, cmd: Command) -> Result<String, String> {
        let Command::Clock(t, action) = cmd else {
            return Err(format!("`{cmd}` is not a clock command"));
        };
        let id = self.resolve(t)?;
        self.inner.clocks.apply(id, &action)?;
        self.report_node_faults(id);
        let now = self
            .inner
            .clocks
            .describe(id)
            .unwrap_or_else(|| "true".into());
        Ok(match action {
            ClockAction::Heal => format!("heal node {id}'s clock"),
            other => format!("clock of node {id}: {other} (now {now}; applies within 1 s)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_rate_set_mid_run_does_not_jump_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now() - Duration::from_secs(100);
        let c = NodeClock {
            file: dir.path().join("faketime"),
            started: start,
            offset_ms: 5000.0,
            rate: 4.0,
            since: start + Duration::from_secs(100),
            strobe: None,
        };
        // libfaketime: fake - real = O + elapsed_since_start × (rate - 1); at `since` it must be +5 s.
        let spec = c.spec(0.0);
        let o: f64 = spec.split_whitespace().next().unwrap().parse().unwrap();
        assert!((o + 100.0 * 3.0 - 5.0).abs() < 0.01, "{spec}");
        assert!(spec.ends_with(" x4"), "{spec}");
    }
}
