//! Slow and stalled disks: every operation passes a gate first, which may add a delay (to every operation, or
//! only to syncs) or hold it until the stall is healed. A power cut opens the gate so a stalled operation of
//! a killed process can finish (with EIO) and the process can be reaped.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Settings {
    slow: Option<(Duration, bool)>,
    stalled: bool,
    powered_off: bool,
}

/// The gate every operation passes.
#[derive(Default)]
pub(crate) struct Gate {
    settings: Mutex<Settings>,
    changed: Condvar,
}

/// What the gate decided for one operation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Go ahead.
    Go,
    /// The power is off: fail with EIO and touch nothing.
    PoweredOff,
}

impl Gate {
    pub(crate) fn set_slow(&self, slow: Option<(Duration, bool)>) {
        self.settings.lock().unwrap().slow = slow;
    }

    pub(crate) fn set_stalled(&self, stalled: bool) {
        self.settings.lock().unwrap().stalled = stalled;
        self.changed.notify_all();
    }

    pub(crate) fn set_powered_off(&self, off: bool) {
        self.settings.lock().unwrap().powered_off = off;
        self.changed.notify_all();
    }

    pub(crate) fn powered_off(&self) -> bool {
        self.settings.lock().unwrap().powered_off
    }

    pub(crate) fn settings(&self) -> (Option<(Duration, bool)>, bool) {
        let s = self.settings.lock().unwrap();
        (s.slow, s.stalled)
    }

    /// Blocks while stalled, then sleeps the slow delay if it applies to this operation.
    pub(crate) fn pass(&self, is_sync: bool) -> Pass {
        let mut s = self.settings.lock().unwrap();
        while s.stalled && !s.powered_off {
            s = self.changed.wait(s).unwrap();
        }
        if s.powered_off {
            return Pass::PoweredOff;
        }
        let delay = match s.slow {
            Some((d, syncs_only)) if is_sync || !syncs_only => d,
            _ => Duration::ZERO,
        };
        drop(s);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Pass::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn stall_holds_until_healed_and_power_off_releases() {
        let gate = Arc::new(Gate::default());
        gate.set_stalled(true);
        let g = gate.clone();
        let waiter = std::thread::spawn(move || g.pass(false));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a stalled operation went through");
        gate.set_stalled(false);
        assert_eq!(waiter.join().unwrap(), Pass::Go);

        gate.set_stalled(true);
        let g = gate.clone();
        let waiter = std::thread::spawn(move || g.pass(true));
        gate.set_powered_off(true);
        assert_eq!(waiter.join().unwrap(), Pass::PoweredOff);
    }

    #[test]
    fn slow_syncs_only_leaves_other_operations_alone() {
        let gate = Gate::default();
        gate.set_slow(Some((Duration::from_millis(80), true)));
        let t = Instant::now();
        gate.pass(false);
        let plain = t.elapsed();
        let t = Instant::now();
        gate.pass(true);
        let sync = t.elapsed();
        assert!(sync >= Duration::from_millis(80), "sync took {sync:?}");
        assert!(
            plain < Duration::from_millis(80),
            "a plain op took {plain:?}"
        );
    }
}
