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

use std::time::Duration;

use super::Cluster;
use super::command::Command;
pub use crate::command::clock::{ClockAction, HELP, parse_clock};

impl Cluster {
    /// Performs a `clock` command.
    pub(super) async fn perform_clock(&self, cmd: Command) -> Result<String, String> {
        let Command::Clock(t, action) = cmd else {
            return Err(format!("`{cmd}` is not a clock command"));
        };
        let id = self.resolve(t)?;
        if self.inner.procs.is_remote() {
            // The node's clock control file is on its host: its agent changes it and says what it did.
            if !self.disk_faults_on() {
                return Err(
                    "clock faults are off: start the cluster with `squall up --disk-faults`".into(),
                );
            }
            let said = self.inner.procs.clock_on_host(id, &action).await?;
            self.report_node_faults(id);
            return Ok(said);
        }
        let pid = match self.inner.procs.state(id) {
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
        Ok(super::clockset::said(
            id,
            &action,
            lead,
            now.as_str(),
            pid.is_some(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::clockset::{describe, signed};
    use super::*;
    use crate::command::Target;
    use squall_chaos::clock::FakeClock;

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
