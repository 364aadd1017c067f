//! The message trace: what happened to each message on each directed link, kept in a bounded ring.
//!
//! Every whole message the proxy judges becomes one [`MessageEvent`]: its link, its kind (the classifier's
//! label), when it was sent (reached the proxy) and its fate — delivered (and when), dropped (and by what), or
//! held. A held message gets a second event with the same [`MessageEvent::id`] once a person steps, drops or
//! releases it. This is what a Lamport (space-time) diagram is drawn from: one lane per node, an arrow per
//! message from its send time on the sender's lane to its delivery time on the receiver's (Lamport, "Time,
//! Clocks, and the Ordering of Events in a Distributed System", CACM 1978, figure 1).
//!
//! The ring holds at most [`MessageTrace::capacity`] events; readers keep a cursor ([`MessageTrace::since`])
//! and are told how many events were overwritten before they read them, so a slow reader loses the oldest
//! events and knows how many. Nothing is recorded until the trace is switched on ([`MessageTrace::set_on`]),
//! so a network nobody watches pays one relaxed load per message.
//!
//! The trace knows nothing of the proxy: another router of messages (a Maelstrom node's stdout, say) records
//! into a trace of its own with [`MessageTrace::record`] and [`MessageTrace::resolve`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::LinkId;

/// Events a trace keeps by default: at 2,000 messages a second, the last four seconds.
pub const DEFAULT_CAPACITY: usize = 8_192;

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropCause {
    /// A loss fault drew it.
    Loss,
    /// A blackhole (a cut link or a partition) swallowed it.
    Blackhole,
    /// A person dropped it while it was held (`drop-held`, `drop-stale`).
    Dropped,
    /// It was held when the hold registry was full.
    HoldFull,
    /// Its connection closed before it could be delivered (a held or delayed message of a dead peer).
    Closed,
    /// The router refused it for another reason (an unknown destination, say).
    Refused,
}

impl DropCause {
    /// The cause in a word or two, for a diagram's legend or a listing.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::Loss => "loss",
            DropCause::Blackhole => "cut",
            DropCause::Dropped => "dropped",
            DropCause::HoldFull => "hold full",
            DropCause::Closed => "closed",
            DropCause::Refused => "refused",
        }
    }
}

/// What became of a message, as far as the trace knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "kebab-case")]
pub enum Fate {
    /// Handed to the receiver's socket (or due to be, at `at_us`, behind a latency fault).
    Delivered {
        /// Microseconds since the trace's origin.
        at_us: u64,
    },
    /// Never delivered.
    Dropped {
        /// What dropped it.
        by: DropCause,
        /// Microseconds since the trace's origin.
        at_us: u64,
    },
    /// Held by a hold fault; a later event with the same id says what became of it.
    Held,
}

/// One message on one directed link, or the later fate of a held one (same `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The message's number in its trace (increasing in send order); a held message's later fate repeats it.
    pub id: u64,
    /// The link it travelled: `from` sent it to `to`.
    pub link: LinkId,
    /// Its kind (the classifier's label, or a Maelstrom body's `type`); `None` when nothing could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Cow<'static, str>>,
    /// When it was sent (reached the router), in microseconds since the trace's origin.
    pub sent_us: u64,
    /// What became of it.
    #[serde(flatten)]
    pub fate: Fate,
}

/// The ring and its counters, under one lock.
#[derive(Debug)]
struct Ring {
    events: VecDeque<MessageEvent>,
    /// Events ever pushed: the cursor of the next one.
    pushed: u64,
    /// The next message id.
    next_id: u64,
}

/// A bounded record of messages and their fates. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct MessageTrace {
    origin: Instant,
    capacity: usize,
    on: AtomicBool,
    ring: Mutex<Ring>,
}

/// What [`MessageTrace::since`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceRead {
    /// The events after the cursor that are still in the ring, oldest first.
    pub events: Vec<MessageEvent>,
    /// Events after the cursor that were overwritten before this read.
    pub lost: u64,
    /// The cursor to pass next time.
    pub next: u64,
}

impl Default for MessageTrace {
    fn default() -> Self {
        MessageTrace::new(DEFAULT_CAPACITY)
    }
}

impl MessageTrace {
    /// An empty trace, off, keeping at most `capacity` events (at least 1), with its origin now.
    pub fn new(capacity: usize) -> MessageTrace {
        MessageTrace {
            origin: Instant::now(),
            capacity: capacity.max(1),
            on: AtomicBool::new(false),
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                pushed: 0,
                next_id: 1,
            }),
        }
    }

    /// The instant every `*_us` time of this trace counts from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The most events kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Switches recording on or off (off by default). Events already kept stay.
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Relaxed);
    }

    /// Whether recording is on.
    pub fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Microseconds from the origin to `at`.
    pub fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// Microseconds from the origin to now.
    pub fn now_us(&self) -> u64 {
        self.micros(Instant::now())
    }

    /// Records a new message and returns its id (`None`, recording nothing, while the trace is off).
    pub fn record(
        &self,
        link: LinkId,
        kind: Option<Cow<'static, str>>,
        sent_us: u64,
        fate: Fate,
    ) -> Option<u64> {
        if !self.is_on() {
            return None;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let id = ring.next_id;
        ring.next_id += 1;
        self.push(
            &mut ring,
            MessageEvent {
                id,
                link,
                kind,
                sent_us,
                fate,
            },
        );
        Some(id)
    }

    /// Records the later fate of message `id` (a held one stepped, dropped or released). Recorded even while
    /// the trace is off, so a message held while it was on is never left held in the record.
    pub fn resolve(
        &self,
        id: u64,
        link: LinkId,
        kind: Option<Cow<'static, str>>,
        sent_us: u64,
        fate: Fate,
    ) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        self.push(
            &mut ring,
            MessageEvent {
                id,
                link,
                kind,
                sent_us,
                fate,
            },
        );
    }

    fn push(&self, ring: &mut Ring, event: MessageEvent) {
        if ring.events.len() == self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event);
        ring.pushed += 1;
    }

    /// The events recorded at or after `cursor` (0 for all), and how many of those were overwritten already.
    pub fn since(&self, cursor: u64) -> TraceRead {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let cursor = cursor.min(ring.pushed);
        let first_kept = ring.pushed - ring.events.len() as u64;
        let from = cursor.max(first_kept);
        let skip = (from - first_kept) as usize;
        TraceRead {
            events: ring.events.iter().skip(skip).cloned().collect(),
            lost: from - cursor,
            next: ring.pushed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> LinkId {
        LinkId::new(1, 2)
    }

    #[test]
    fn nothing_is_recorded_while_the_trace_is_off() {
        let t = MessageTrace::new(4);
        assert_eq!(t.record(link(), None, 0, Fate::Held), None);
        assert!(t.since(0).events.is_empty());
    }

    #[test]
    fn a_slow_reader_is_told_how_many_events_it_missed() {
        let t = MessageTrace::new(3);
        t.set_on(true);
        for i in 0..5 {
            t.record(link(), Some("vote".into()), i, Fate::Delivered { at_us: i });
        }
        let r = t.since(0);
        assert_eq!(r.lost, 2, "{r:?}");
        assert_eq!(
            r.events.iter().map(|e| e.sent_us).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(r.next, 5);
        let again = t.since(r.next);
        assert!(again.events.is_empty() && again.lost == 0, "{again:?}");
        let partial = t.since(3);
        assert_eq!(partial.events.len(), 2);
        assert_eq!(partial.lost, 0);
    }

    #[test]
    fn a_held_message_s_fate_repeats_its_id_and_survives_switching_off() {
        let t = MessageTrace::new(8);
        t.set_on(true);
        let id = t
            .record(link(), Some("vote".into()), 10, Fate::Held)
            .unwrap();
        t.set_on(false);
        t.resolve(
            id,
            link(),
            Some("vote".into()),
            10,
            Fate::Dropped {
                by: DropCause::Dropped,
                at_us: 20,
            },
        );
        let r = t.since(0);
        assert_eq!(r.events.len(), 2);
        assert!(r.events.iter().all(|e| e.id == id));
    }

    #[test]
    fn events_read_back_from_json() {
        let e = MessageEvent {
            id: 7,
            link: link(),
            kind: Some("append".into()),
            sent_us: 5,
            fate: Fate::Dropped {
                by: DropCause::Loss,
                at_us: 5,
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"fate\":\"dropped\""), "{text}");
        assert_eq!(serde_json::from_str::<MessageEvent>(&text).unwrap(), e);
    }
}

/// The trace as the proxy fills it: real sockets through a real proxy.
#[cfg(test)]
mod through_the_proxy {
    use std::time::Duration;

    use super::{DropCause, Fate, MessageEvent};
    use crate::proxy::testkit::{AB, Client, Got, Pair, poll_until, seed};
    use crate::proxy::{Fault, FaultSpec};

    fn kinds(events: &[MessageEvent]) -> Vec<(String, Fate)> {
        events
            .iter()
            .filter(|e| e.link == AB)
            .map(|e| (e.kind.clone().unwrap_or_default().into_owned(), e.fate))
            .collect()
    }

    #[tokio::test]
    async fn streamed_lost_and_held_messages_are_traced_with_their_fates() {
        let pair = Pair::labelled(seed(91)).await;
        let trace = pair.net.trace().clone();
        trace.set_on(true);
        let mut c = Client::connect(pair.proxy).await;
        // Streamed, no fault: delivered as sent.
        assert!(c.send(0, 16).await);
        assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(0));
        // Cut: dropped by the blackhole.
        let cut = pair
            .net
            .add_fault([AB], FaultSpec::permanent(Fault::Blackhole));
        assert!(c.send(1, 16).await);
        poll_until("the cut frame traced", Duration::from_secs(5), || {
            let r = trace.since(0);
            (kinds(&r.events).len() >= 2, format!("{r:?}"))
        })
        .await;
        pair.net.remove_fault_id(cut);
        // Held, then stepped: one event when held, one with the same id when delivered.
        let hold = pair.net.add_fault([AB], FaultSpec::permanent(Fault::Hold));
        assert!(c.send(2, 16).await);
        poll_until("one frame held", Duration::from_secs(5), || {
            let h = pair.net.held();
            (h.len() == 1, format!("{h:?}"))
        })
        .await;
        pair.net.step(|_| true, 1);
        assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(2));
        pair.net.remove_fault_id(hold);
        let r = trace.since(0);
        let seen = kinds(&r.events);
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0].0, "even");
        assert!(matches!(seen[0].1, Fate::Delivered { .. }), "{seen:?}");
        assert_eq!(seen[1].0, "odd");
        assert!(
            matches!(
                seen[1].1,
                Fate::Dropped {
                    by: DropCause::Blackhole,
                    ..
                }
            ),
            "{seen:?}"
        );
        assert_eq!(seen[2], ("even".to_string(), Fate::Held));
        assert!(matches!(seen[3].1, Fate::Delivered { .. }), "{seen:?}");
        let ab: Vec<&MessageEvent> = r.events.iter().filter(|e| e.link == AB).collect();
        assert_eq!(ab[2].id, ab[3].id);
        let (sent, at) = match ab[3].fate {
            Fate::Delivered { at_us } => (ab[3].sent_us, at_us),
            _ => unreachable!(),
        };
        assert!(at >= sent, "delivered at {at} before sent at {sent}");
        assert_eq!(r.lost, 0);
    }

    #[tokio::test]
    async fn a_delayed_message_is_delivered_at_its_release_time() {
        let pair = Pair::labelled(seed(92)).await;
        let trace = pair.net.trace().clone();
        trace.set_on(true);
        let mut c = Client::connect(pair.proxy).await;
        pair.net
            .add_fault([AB], FaultSpec::permanent(Fault::latency_ms(40)));
        assert!(c.send(4, 16).await);
        assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(4));
        let r = trace.since(0);
        let e = r.events.iter().find(|e| e.link == AB).expect("traced");
        match e.fate {
            Fate::Delivered { at_us } => assert!(
                at_us >= e.sent_us + 40_000,
                "sent {} delivered {at_us}",
                e.sent_us
            ),
            f => panic!("{f:?}"),
        }
    }
}
