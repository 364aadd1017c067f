//! The lock workloads' shared state: the variant (fenced or not), the client faults (`pause-client`,
//! `slow-client`), the resource's highest token and write count, and the checker every lock record is fed
//! to as it is emitted. The clients and the resource that act on it are in `super::lock_client`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::check::lock::{LockChecker, LockEvent, LockReport};
use crate::state::Event;

/// Lock clients, numbered 1 to `CLIENTS` (`pause-client C`, `slow-client C`).
pub const CLIENTS: u64 = 3;
/// The lease every grant carries.
pub const LEASE: Duration = Duration::from_secs(1);

/// Faults on one client.
#[derive(Clone, Copy, Debug, Default)]
struct ClientFaults {
    /// A pause waiting for the client's next protected write.
    pause: Option<Duration>,
    /// Added before every step.
    slow: Option<Duration>,
}

/// What the lock workload's clients, its resource and the `check` share.
pub(super) struct LockWorkload {
    fenced: AtomicBool,
    faults: Mutex<[ClientFaults; CLIENTS as usize]>,
    /// The checker, fed every record as it is emitted (under its lock, so the log's order is its order).
    checker: Mutex<LockChecker>,
    /// The resource's address, once started.
    pub(super) resource: tokio::sync::OnceCell<SocketAddr>,
    /// Whether the lock key holds a lock value yet.
    pub(super) initialised: tokio::sync::OnceCell<()>,
    /// The resource's state: the highest token seen and the writes taken so far.
    resource_state: Mutex<(u64, u64)>,
}

impl LockWorkload {
    pub(super) fn new() -> Self {
        LockWorkload {
            fenced: AtomicBool::new(false),
            faults: Mutex::new([ClientFaults::default(); CLIENTS as usize]),
            checker: Mutex::new(LockChecker::default()),
            resource: tokio::sync::OnceCell::new(),
            initialised: tokio::sync::OnceCell::new(),
            resource_state: Mutex::new((0, 0)),
        }
    }

    /// Hands `record` to `emit` as an event and feeds it to the checker, under one lock (so the event log's
    /// order is the checker's).
    pub(super) fn record(&self, emit: impl FnOnce(Event), record: LockEvent) {
        let mut c = self.checker.lock().unwrap();
        c.observe(&record);
        emit(Event::Lock { record });
    }

    /// Whether the lock workload has made any record this session (so `check` judges it).
    pub(super) fn ran(&self) -> bool {
        let c = self.checker.lock().unwrap();
        let r = c.report();
        r.grants + r.accepted + r.rejected > 0
    }

    /// The checker's finding so far.
    pub(super) fn report(&self) -> LockReport {
        self.checker.lock().unwrap().report().clone()
    }

    /// Chooses the variant (`lock-fenced`: the resource checks tokens) and records it.
    pub(super) fn start(&self, emit: impl FnOnce(Event), fenced: bool) {
        self.fenced.store(fenced, Ordering::SeqCst);
        self.record(
            emit,
            LockEvent::Started {
                fenced,
                ttl_ms: LEASE.as_millis() as u64,
            },
        );
    }

    fn slot(client: u64) -> Result<usize, String> {
        if (1..=CLIENTS).contains(&client) {
            Ok(client as usize - 1)
        } else {
            Err(format!(
                "there is no lock client {client}: the lock workload runs clients 1 to {CLIENTS} (nothing was done)"
            ))
        }
    }

    /// Arms a pause of `d` at client `client`'s next protected write.
    pub(super) fn arm_pause(&self, client: u64, d: Duration) -> Result<(), String> {
        let i = Self::slot(client)?;
        self.faults.lock().unwrap()[i].pause = Some(d);
        Ok(())
    }

    pub(super) fn take_pause(&self, client: u64) -> Option<Duration> {
        self.faults.lock().unwrap()[client as usize - 1]
            .pause
            .take()
    }

    /// Slows every step of client `client` by `d`.
    pub(super) fn set_slow(&self, client: u64, d: Duration) -> Result<(), String> {
        let i = Self::slot(client)?;
        self.faults.lock().unwrap()[i].slow = Some(d);
        Ok(())
    }

    pub(super) fn slow(&self, client: u64) -> Option<Duration> {
        self.faults.lock().unwrap()[client as usize - 1].slow
    }

    /// Ends every client fault (a pause not struck yet is disarmed; one under way runs its course, as a GC
    /// pause would); returns what ended, in words.
    pub(super) fn heal_all(&self) -> Vec<String> {
        let mut g = self.faults.lock().unwrap();
        let mut ended = Vec::new();
        for (i, f) in g.iter_mut().enumerate() {
            if let Some(d) = f.slow.take() {
                ended.push(format!("slow-client {} {}", i + 1, crate::units::exact(d)));
            }
            if let Some(d) = f.pause.take() {
                ended.push(format!(
                    "pause-client {} {} (not struck yet)",
                    i + 1,
                    crate::units::exact(d)
                ));
            }
        }
        ended
    }

    /// The resource's decision on a write from `client` carrying `token`, received at `now_ms`: taken, or
    /// (fenced) rejected for a token below the highest seen. Decided and recorded under one lock, so the
    /// log's order is the order the resource took the writes in. Returns its answer line: `ok N` or
    /// `rejected N HIGHEST`.
    pub(super) fn take_write(
        &self,
        emit: impl FnOnce(Event),
        now_ms: u64,
        client: u64,
        token: u64,
    ) -> String {
        let fenced = self.fenced.load(Ordering::SeqCst);
        let mut s = self.resource_state.lock().unwrap();
        let (highest, n) = &mut *s;
        *n += 1;
        let accepted = !fenced || token >= *highest;
        let before = *highest;
        if accepted {
            *highest = (*highest).max(token);
        }
        self.record(
            emit,
            LockEvent::Wrote {
                client,
                token,
                write: *n,
                at_ms: now_ms,
                accepted,
                highest: before,
            },
        );
        if accepted {
            format!("ok {n}")
        } else {
            format!("rejected {n} {before}")
        }
    }

    /// The client faults in force, one line each, for `faults`.
    pub(super) fn describe(&self) -> Vec<String> {
        let g = self.faults.lock().unwrap();
        let mut lines = Vec::new();
        for (i, f) in g.iter().enumerate() {
            let c = i + 1;
            if let Some(d) = f.slow {
                lines.push(format!(
                    "client {c} slow +{} a step (`heal` removes it)",
                    crate::units::exact(d)
                ));
            }
            if let Some(d) = f.pause {
                lines.push(format!(
                    "client {c} pause {} armed: strikes at its next protected write (`heal` disarms it)",
                    crate::units::exact(d)
                ));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(l: &LockWorkload, tokens: &[(u64, u64)]) -> Vec<String> {
        tokens
            .iter()
            .map(|&(c, t)| l.take_write(|_| {}, 0, c, t))
            .collect()
    }

    #[test]
    fn a_fenced_resource_rejects_a_token_below_the_highest_and_a_naive_one_takes_it() {
        let l = LockWorkload::new();
        l.start(|_| {}, true);
        assert_eq!(
            writes(&l, &[(1, 3), (2, 4), (1, 3), (2, 4)]),
            ["ok 1", "ok 2", "rejected 3 4", "ok 4"]
        );
        let r = l.report();
        assert_eq!((r.accepted, r.rejected, r.violations_total), (3, 1, 0));
        let l = LockWorkload::new();
        l.start(|_| {}, false);
        assert_eq!(
            writes(&l, &[(1, 3), (2, 4), (1, 3)]),
            ["ok 1", "ok 2", "ok 3"]
        );
        assert_eq!(l.report().violations_total, 1);
    }

    #[test]
    fn heal_disarms_a_pause_not_struck_and_ends_a_slow_client() {
        let l = LockWorkload::new();
        assert!(
            l.arm_pause(4, Duration::from_secs(1))
                .unwrap_err()
                .contains("clients 1 to 3")
        );
        l.arm_pause(1, Duration::from_secs(3)).unwrap();
        l.set_slow(2, Duration::from_millis(50)).unwrap();
        assert_eq!(l.describe().len(), 2);
        assert_eq!(l.take_pause(1), Some(Duration::from_secs(3)));
        assert_eq!(l.take_pause(1), None, "a pause strikes once");
        l.arm_pause(3, Duration::from_secs(1)).unwrap();
        let ended = l.heal_all();
        assert_eq!(
            ended,
            ["slow-client 2 50ms", "pause-client 3 1s (not struck yet)"]
        );
        assert!(l.describe().is_empty() && l.slow(2).is_none() && l.take_pause(3).is_none());
        assert!(l.heal_all().is_empty());
    }
}
