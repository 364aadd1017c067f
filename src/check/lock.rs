//! The lock checker: mutual exclusion as the protected resource saw it.
//!
//! Kleppmann, "How to do distributed locking" (2016): a lease lock hands the resource to one client at a
//! time only if every client stops writing when its lease runs out, and a client cannot know that it stopped
//! in time (a garbage-collection pause, a slow network, a clock jump can fall between its "do I still hold
//! the lease?" and its write). The cure is a fencing token: a number the lock service raises with each grant,
//! sent with each write, and a resource that refuses a token lower than one it has already seen.
//!
//! The checker reads the lock workload's records ([`LockEvent`]): the grants the lock service made (each
//! with its token and lease window) and the resource's log of writes (accepted or rejected, with the token
//! each carried, in the order the resource took them). Mutual exclusion holds when the tokens of the
//! accepted writes never go down: once the resource has taken a write under grant `n`, a write under an
//! earlier grant is a client writing after another client was given the lock — its protected write slipped
//! in between the other client's writes. A write the resource rejected for its stale token is the fencing
//! doing its job, and is counted, not blamed.
//!
//! Pure: no I/O, no clock. The live `check` and `squall report` (offline, from the event log) run the same
//! [`check`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// One record of the lock workload, as the event log keeps it. Times are milliseconds of session time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockEvent {
    /// The lock workload started (or switched variant): whether its resource checks fencing tokens, and the
    /// lease every grant carries.
    Started {
        /// Whether the resource rejects a write whose token is below the highest it has seen.
        fenced: bool,
        /// The lease (time to live) of every grant, in milliseconds.
        ttl_ms: u64,
    },
    /// The lock service (a compare-and-swap through the consensus cluster) granted the lock.
    Granted {
        /// The client that holds it now (1-based).
        client: u64,
        /// The fencing token of the grant: one more than the grant before it.
        token: u64,
        /// When the lease began (the client's request was sent), in ms.
        from_ms: u64,
        /// When the lease runs out, in ms: `from_ms` plus the lease.
        until_ms: u64,
    },
    /// The resource received a protected write; the resource's log, in the order it took the writes.
    Wrote {
        /// The writing client.
        client: u64,
        /// The token the write carried (the grant the client believes it holds).
        token: u64,
        /// The write's number at the resource, from 1.
        write: u64,
        /// When the resource received it, in ms.
        at_ms: u64,
        /// Whether the resource took it (`false`: rejected for a stale token; only a fenced resource does).
        accepted: bool,
        /// The highest token the resource had seen before this write.
        highest: u64,
    },
    /// A `pause-client` struck: the client stopped at its protected write (after it checked its lease,
    /// before it wrote), for `pause_ms`.
    PauseStruck {
        /// The client.
        client: u64,
        /// The grant it holds (or held) as the pause struck.
        token: u64,
        /// How long it stays stopped, in ms.
        pause_ms: u64,
        /// When the pause struck, in ms.
        at_ms: u64,
    },
}

/// A lease, as a violation names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The client that held it.
    pub client: u64,
    /// Its grant's token.
    pub token: u64,
    /// Its window in ms (`None`: the grant is not in the records, for instance its compare-and-swap timed out
    /// yet took effect).
    pub window: Option<(u64, u64)>,
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            Some((from, until)) => write!(
                f,
                "client {} (token {}, lease {}–{})",
                self.client,
                self.token,
                secs(from),
                secs(until)
            ),
            None => write!(
                f,
                "client {} (token {}, lease not recorded)",
                self.client, self.token
            ),
        }
    }
}

/// Two clients' protected writes interleaved: `stale` was accepted after `current`'s write under a later
/// grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The client whose write slipped in, and its lease.
    pub stale: Lease,
    /// The write that slipped in: its number at the resource and when it arrived (ms).
    pub write: (u64, u64),
    /// The client that held the lock by then, and its lease.
    pub current: Lease,
    /// That client's write the resource had already taken (number, ms).
    pub before: (u64, u64),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expired = match self.stale.window {
            Some((_, until)) if self.write.1 > until => {
                format!(
                    ", {} after its lease ran out",
                    ms_text(self.write.1 - until)
                )
            }
            _ => String::new(),
        };
        write!(
            f,
            "write #{} at {} by {} slipped in{expired}: the resource had already taken write #{} at {} by {}",
            self.write.0,
            secs(self.write.1),
            self.stale,
            self.before.0,
            secs(self.before.1),
            self.current
        )
    }
}

/// What the checker found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockReport {
    /// Whether the lock workload started (a [`LockEvent::Started`] was seen).
    pub started: bool,
    /// Whether the resource checked fencing tokens (from the last [`LockEvent::Started`]).
    pub fenced: bool,
    /// Grants recorded.
    pub grants: usize,
    /// Writes the resource took.
    pub accepted: usize,
    /// Writes the resource rejected for a stale token.
    pub rejected: usize,
    /// The first rejected write, in words (the fencing at work).
    pub first_rejection: Option<String>,
    /// Clients that wrote.
    pub clients: BTreeSet<u64>,
    /// The first violations of mutual exclusion (up to 16), in resource order.
    pub violations: Vec<Violation>,
    /// How many violations there were in all.
    pub violations_total: usize,
}

/// The three verdicts a check can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockVerdict {
    /// Mutual exclusion held at the resource.
    Valid,
    /// Two clients' protected writes interleaved.
    Invalid,
    /// Nothing to judge: no write reached the resource.
    Unknown,
}

impl LockReport {
    /// The verdict.
    pub fn verdict(&self) -> LockVerdict {
        if !self.violations.is_empty() {
            LockVerdict::Invalid
        } else if self.accepted + self.rejected == 0 {
            LockVerdict::Unknown
        } else {
            LockVerdict::Valid
        }
    }

    /// The finding in words, as `check`, the verdict table and the report print it.
    pub fn text(&self) -> String {
        let variant = if self.fenced {
            "lock-fenced"
        } else {
            "lock (no fencing)"
        };
        let counts = format!(
            "{} protected writes taken from {} clients under {} grants, {} rejected for a stale token",
            self.accepted,
            self.clients.len(),
            self.grants,
            self.rejected
        );
        match self.verdict() {
            LockVerdict::Unknown => format!(
                "lock check: nothing to judge: no protected write reached the resource ({} grants; start the \
                 workload with `workload on`)",
                self.grants
            ),
            LockVerdict::Invalid => {
                let more = match self.violations_total {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                format!(
                    "lock check FAILED ({variant}): mutual exclusion broken at the resource: {}{more}; {counts}",
                    self.violations[0]
                )
            }
            LockVerdict::Valid => {
                let fencing = match &self.first_rejection {
                    Some(r) => format!("; the fencing token stopped {r}"),
                    None => String::new(),
                };
                format!(
                    "lock check passed ({variant}): no two clients' protected writes interleaved: {counts}{fencing}"
                )
            }
        }
    }
}

/// Checks mutual exclusion over the lock workload's records, in the order they were logged.
pub fn check<'a>(events: impl IntoIterator<Item = &'a LockEvent>) -> LockReport {
    let mut c = LockChecker::default();
    for e in events {
        c.observe(e);
    }
    c.report
}

/// How many violations a report keeps in full (it counts every one).
const KEPT_VIOLATIONS: usize = 16;

/// The checker fed one record at a time (the live session feeds it as records are made; the offline check
/// folds the event log through it). What it keeps grows with the grants (one lease each), not the writes.
#[derive(Clone, Debug, Default)]
pub struct LockChecker {
    report: LockReport,
    /// Each grant's (client, lease start, lease end), by token.
    leases: BTreeMap<u64, (u64, u64, u64)>,
    /// The accepted write with the highest token so far: (client, token, write, at).
    top: Option<(u64, u64, u64, u64)>,
}

impl LockChecker {
    /// The finding so far.
    pub fn report(&self) -> &LockReport {
        &self.report
    }

    fn lease(&self, client: u64, token: u64) -> Lease {
        Lease {
            client,
            token,
            window: self
                .leases
                .get(&token)
                .filter(|(c, _, _)| *c == client)
                .map(|(_, f, u)| (*f, *u)),
        }
    }

    /// Takes in the next record.
    pub fn observe(&mut self, e: &LockEvent) {
        let (client, token, write, at_ms, accepted, highest) = match *e {
            LockEvent::Started { fenced, .. } => {
                self.report.started = true;
                self.report.fenced = fenced;
                return;
            }
            LockEvent::Granted {
                client,
                token,
                from_ms,
                until_ms,
            } => {
                self.report.grants += 1;
                self.leases.insert(token, (client, from_ms, until_ms));
                return;
            }
            LockEvent::PauseStruck { .. } => return,
            LockEvent::Wrote {
                client,
                token,
                write,
                at_ms,
                accepted,
                highest,
            } => (client, token, write, at_ms, accepted, highest),
        };
        self.report.clients.insert(client);
        if !accepted {
            self.report.rejected += 1;
            if self.report.first_rejection.is_none() {
                self.report.first_rejection = Some(format!(
                    "write #{write} at {} by {} (the resource had seen token {highest})",
                    secs(at_ms),
                    self.lease(client, token)
                ));
            }
            return;
        }
        self.report.accepted += 1;
        match self.top {
            Some((c, t, n, at)) if token < t => {
                self.report.violations_total += 1;
                if self.report.violations.len() < KEPT_VIOLATIONS {
                    let v = Violation {
                        stale: self.lease(client, token),
                        write: (write, at_ms),
                        current: self.lease(c, t),
                        before: (n, at),
                    };
                    self.report.violations.push(v);
                }
            }
            Some((_, t, _, _)) if token == t => {}
            _ => self.top = Some((client, token, write, at_ms)),
        }
    }
}

/// Milliseconds of session time as seconds with two decimals (`5.21s`).
fn secs(ms: u64) -> String {
    format!("{}.{:02}s", ms / 1000, (ms % 1000) / 10)
}

fn ms_text(ms: u64) -> String {
    crate::units::duration(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: u64, token: u64, from_ms: u64) -> LockEvent {
        LockEvent::Granted {
            client,
            token,
            from_ms,
            until_ms: from_ms + 1000,
        }
    }

    fn wrote(client: u64, token: u64, write: u64, at_ms: u64, accepted: bool) -> LockEvent {
        LockEvent::Wrote {
            client,
            token,
            write,
            at_ms,
            accepted,
            highest: 0,
        }
    }

    #[test]
    fn writes_in_grant_order_are_mutually_exclusive() {
        let events = [
            LockEvent::Started {
                fenced: false,
                ttl_ms: 1000,
            },
            grant(1, 1, 0),
            wrote(1, 1, 1, 10, true),
            wrote(1, 1, 2, 20, true),
            grant(2, 2, 100),
            wrote(2, 2, 3, 110, true),
        ];
        let r = check(&events);
        assert_eq!(r.verdict(), LockVerdict::Valid, "{}", r.text());
        assert!(
            r.text()
                .contains("3 protected writes taken from 2 clients under 2 grants")
        );
    }

    /// Kleppmann's figure: client 1's lease runs out while it is paused, client 2 is granted the lock and
    /// writes, and client 1 wakes and writes under its old grant. The violation names both clients, both
    /// leases and the write that slipped in.
    #[test]
    fn a_paused_clients_late_write_names_both_clients_their_leases_and_the_write() {
        let events = [
            grant(1, 33, 1000),
            LockEvent::PauseStruck {
                client: 1,
                token: 33,
                pause_ms: 3000,
                at_ms: 1010,
            },
            grant(2, 34, 2500),
            wrote(2, 34, 1, 2510, true),
            wrote(1, 33, 2, 4010, true),
        ];
        let r = check(&events);
        assert_eq!(r.verdict(), LockVerdict::Invalid);
        let t = r.text();
        assert!(
            t.contains(
                "write #2 at 4.01s by client 1 (token 33, lease 1.00s–2.00s) slipped in, 2s after its lease ran out"
            ),
            "{t}"
        );
        assert!(
            t.contains("write #1 at 2.51s by client 2 (token 34, lease 2.50s–3.50s)"),
            "{t}"
        );
    }

    #[test]
    fn a_stale_write_the_fenced_resource_rejected_is_fencing_at_work_not_a_violation() {
        let events = [
            LockEvent::Started {
                fenced: true,
                ttl_ms: 1000,
            },
            grant(1, 33, 1000),
            grant(2, 34, 2500),
            wrote(2, 34, 1, 2510, true),
            LockEvent::Wrote {
                client: 1,
                token: 33,
                write: 2,
                at_ms: 4010,
                accepted: false,
                highest: 34,
            },
        ];
        let r = check(&events);
        assert_eq!(r.verdict(), LockVerdict::Valid, "{}", r.text());
        let t = r.text();
        assert!(t.contains("lock-fenced"), "{t}");
        assert!(t.contains("1 rejected for a stale token"), "{t}");
        assert!(
            t.contains("stopped write #2 at 4.01s by client 1 (token 33, lease 1.00s–2.00s) (the resource had seen token 34)"),
            "{t}"
        );
    }

    #[test]
    fn no_write_is_nothing_to_judge_and_an_unrecorded_grant_is_said_so() {
        let r = check(&[grant(1, 1, 0)]);
        assert_eq!(r.verdict(), LockVerdict::Unknown);
        assert!(r.text().contains("nothing to judge"), "{}", r.text());
        // A grant whose cas answer was lost is not in the records: the lease is named as unknown.
        let r = check(&[wrote(2, 5, 1, 10, true), wrote(1, 4, 2, 20, true)]);
        assert_eq!(r.verdict(), LockVerdict::Invalid);
        assert!(
            r.text().contains("client 1 (token 4, lease not recorded)"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn lock_events_round_trip_through_json() {
        let e = LockEvent::PauseStruck {
            client: 2,
            token: 7,
            pause_ms: 3000,
            at_ms: 5,
        };
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<LockEvent>(&j).unwrap(), e);
    }
}
