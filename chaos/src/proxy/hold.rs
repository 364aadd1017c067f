//! Hold: frames on the link are queued instead of forwarded, until a person steps, drops or releases them.
//!
//! Each held frame is kept whole, in arrival order across every held link of the network, with its label and
//! its classifier's description, so a person can walk a protocol through one message at a time:
//! [`Network::step`](super::Network::step) delivers the oldest held frames of some links,
//! [`Network::drop_held`](super::Network::drop_held) discards them, [`Network::release`](super::Network::release)
//! delivers them all. Removing a hold fault delivers what it held (a fault's removal never loses data).
//! Frames on one connection leave in the order they came, because the oldest is always stepped first. At most
//! [`MAX_HELD`] frames are held at once; beyond that a held link drops new frames (counted as dropped).
//!
//! **A held frame leaves only on the connection it came on.** When that connection ends while the frame is
//! held (its sender closed it: a call whose deadline passed, a killed node; or the receiver went away), the
//! frame can no longer be delivered: it leaves the queue at once, is counted as dropped on its link
//! ([`LinkStats::frames_dropped`](super::LinkStats::frames_dropped)) and in the link's
//! [`LinkStats::held_lost`](super::LinkStats::held_lost), and [`Network::take_lost_held`](super::Network::take_lost_held)
//! reports it once per link and batch, so the person is told rather than seeing the queue shrink. Nothing
//! vanishes uncounted: frames that entered a hold ([`LinkStats::frames_held`](super::LinkStats::frames_held))
//! are held now, delivered, or dropped.
//!
//! Why not deliver such a frame on the link's next connection, as a teacher stepping a Paxos message (a whole
//! message in one frame) might expect? What the proxy can do safely depends on the framing, and for none of
//! squall's framings is moving a frame safe:
//! - length-prefixed frames carry tarpc requests and replies, whose request ids are the connection's own: a
//!   request moved to another connection is answered there under an id that connection's client may be using
//!   for another call, so the answer completes the wrong call (for a service with several methods, with a
//!   reply of the wrong kind); a reply moved finds no caller at all. The proxy knows nothing of tarpc, so it
//!   cannot renumber them.
//! - rafthttp frames are messages inside an HTTP stream or request whose headers (sender, cluster id) and
//!   chunking belong to that connection; bytes-framed traffic is opaque.
//!
//! Nor does the proxy keep a closed connection's upstream half open until its held frames are stepped: the
//! sender that closed it gave up on the calls (or died), the receiver's answers would reset the connection
//! after the first, and a node that reconnects per timed-out call (squall's Paxos node under `hold *`) would
//! leave a socket pair open per call on both the proxy and the node for as long as nobody steps. A real
//! network that loses a connection loses what was in flight on it too; the sender's next connection carries
//! its retransmissions, which the hold then holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::LinkId;
use super::trace::{DropCause, Fate, MessageTrace};

/// The most frames the network holds at once. Beyond it a held link drops new frames (counted as dropped)
/// rather than growing without bound while nobody steps.
pub const MAX_HELD: usize = 10_000;

/// What became of a frame offered to the registry.
pub(crate) enum Offer {
    /// Held until stepped, dropped or released.
    Held,
    /// The hold was lifted meanwhile: send it on as usual.
    NotHeld,
    /// [`MAX_HELD`] frames are held already: drop it.
    Full,
}

/// A held frame, as a person sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldFrame {
    /// Position in the network-wide arrival order (increasing).
    pub seq: u64,
    /// The link it was held on.
    pub link: LinkId,
    /// Its label, if the classifier knew it.
    pub label: Option<String>,
    /// The classifier's description of it (empty without a classifier).
    pub detail: String,
    /// Its size, length prefix included.
    pub bytes: usize,
    /// How long it has been held.
    pub held_for: Duration,
}

impl HeldFrame {
    /// The frame in words for a listing: its label, then the classifier's description, the label left out
    /// when the description begins with it already (`append-reply n2 term 3 ok match 7`, not
    /// `append-reply append-reply n2 …`) but kept when it says more (`vote pre-vote n2 term 3`: `hold vote`
    /// holds pre-votes too). `other` for an unlabelled frame.
    pub fn what(&self) -> String {
        let label = self.label.as_deref().unwrap_or("other");
        if self.detail.is_empty() {
            label.to_string()
        } else if self.detail.split_whitespace().next() == Some(label) {
            self.detail.clone()
        } else {
            format!("{label} {}", self.detail)
        }
    }
}

/// What became of a held frame that was stepped or dropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stepped {
    /// The frame.
    pub frame: HeldFrame,
    /// False when its connection had closed meanwhile, so it could not be delivered.
    pub delivered: bool,
}

/// One frame in the registry, with the way back to the connection that must send it.
pub(crate) struct Entry {
    pub link: LinkId,
    pub label: Option<String>,
    pub detail: String,
    pub frame: Bytes,
    pub since: Instant,
    pub deliver: mpsc::UnboundedSender<Bytes>,
    /// Its message id in the network's trace and when it was sent, if the trace recorded it as held.
    pub traced: Option<(u64, u64)>,
    /// Its kind as the trace recorded it when it was held, so its later fate carries the same kind.
    pub traced_kind: Option<std::borrow::Cow<'static, str>>,
}

impl Entry {
    fn lost(&self) -> Lost {
        Lost {
            link: self.link,
            bytes: self.frame.len(),
            label: self.label.clone(),
        }
    }

    fn view(&self, seq: u64) -> HeldFrame {
        HeldFrame {
            seq,
            link: self.link,
            label: self.label.clone(),
            detail: self.detail.clone(),
            bytes: self.frame.len(),
            held_for: self.since.elapsed(),
        }
    }
}

/// A held frame that left the registry because its connection ended, not yet counted on its link.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lost {
    pub link: LinkId,
    pub bytes: usize,
    pub label: Option<String>,
}

/// Every held frame of a network, in arrival order.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<(u64, BTreeMap<u64, Entry>)>,
    /// Frames whose connection ended while they were held, waiting to be counted
    /// ([`Registry::take_lost`]).
    lost: Mutex<Vec<Lost>>,
    /// Where a traced frame's fate is recorded when it leaves the registry.
    trace: Arc<MessageTrace>,
}

impl Registry {
    /// An empty registry recording the fates of traced frames in `trace`.
    pub(crate) fn new(trace: Arc<MessageTrace>) -> Registry {
        Registry {
            entries: Mutex::default(),
            lost: Mutex::default(),
            trace,
        }
    }

    /// Notes that a held frame was lost with its connection, for [`Registry::take_lost`].
    pub(crate) fn note_lost(&self, lost: Lost) {
        self.lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(lost);
    }

    /// The frames lost with their connections since the last call, to be counted on their links.
    pub(crate) fn take_lost(&self) -> Vec<Lost> {
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets every frame that `deliver` (a connection's way back) would have sent, because that connection
    /// ended: each is recorded as lost ([`Registry::take_lost`]) and its trace fate as dropped by the close.
    /// Returns how many there were.
    pub(crate) fn abandon(&self, deliver: &mpsc::UnboundedSender<Bytes>) -> usize {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at_us = self.trace.now_us();
        let mut n = 0;
        e.1.retain(|_, x| {
            let gone = x.deliver.same_channel(deliver);
            if gone {
                n += 1;
                let by = DropCause::Closed;
                self.resolve(x, Fate::Dropped { by, at_us });
                self.note_lost(x.lost());
            }
            !gone
        });
        n
    }

    /// Records what became of a traced frame that leaves the registry.
    fn resolve(&self, x: &Entry, fate: Fate) {
        if let Some((id, sent_us)) = x.traced {
            self.trace
                .resolve(id, x.link, x.traced_kind.clone(), sent_us, fate);
        }
    }

    /// Forgets the frames whose connection closed, recording them as lost. (A connection's end normally
    /// [abandons](Registry::abandon) its frames at once; this catches any it did not.)
    fn forget_closed(&self, entries: &mut BTreeMap<u64, Entry>) {
        let at_us = self.trace.now_us();
        entries.retain(|_, x| {
            let open = !x.deliver.is_closed();
            if !open {
                let by = DropCause::Closed;
                self.resolve(x, Fate::Dropped { by, at_us });
                self.note_lost(x.lost());
            }
            open
        });
    }

    /// Holds a frame if `still_held()` says its link still holds (asked under the registry's lock, so a hold
    /// removed meanwhile either sees the frame here or makes this refuse it); it leaves through
    /// `entry.deliver` when stepped or released. Says when the hold is gone (the caller sends the frame on), and refuses it
    /// when [`MAX_HELD`] frames are held already.
    pub(crate) fn hold(&self, entry: Entry, still_held: impl FnOnce() -> bool) -> Offer {
        // `entry` is dropped unless held: the caller keeps its own handle on the frame.
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !still_held() {
            return Offer::NotHeld;
        }
        if e.1.len() >= MAX_HELD {
            self.forget_closed(&mut e.1);
            if e.1.len() >= MAX_HELD {
                return Offer::Full;
            }
        }
        e.0 += 1;
        let seq = e.0;
        e.1.insert(seq, entry);
        Offer::Held
    }

    /// The held frames whose connection is still open, oldest first (forgetting those of closed ones).
    pub(crate) fn list(&self) -> Vec<HeldFrame> {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_closed(&mut e.1);
        e.1.iter().map(|(seq, x)| x.view(*seq)).collect()
    }

    /// Takes up to `n` of the oldest frames on links that `pick` accepts; delivers them when `deliver`.
    pub(crate) fn take(
        &self,
        pick: impl Fn(LinkId) -> bool,
        n: usize,
        deliver: bool,
    ) -> Vec<Stepped> {
        self.take_where(|_, link| pick(link), n, deliver)
    }

    /// Takes up to `n` of the oldest frames that `pick(seq, link)` accepts; delivers them when `deliver`.
    pub(crate) fn take_where(
        &self,
        pick: impl Fn(u64, LinkId) -> bool,
        n: usize,
        deliver: bool,
    ) -> Vec<Stepped> {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let seqs: Vec<u64> =
            e.1.iter()
                .filter(|(s, x)| pick(**s, x.link))
                .map(|(s, _)| *s)
                .take(n)
                .collect();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(x) = e.1.remove(&seq) else { continue };
            let view = x.view(seq);
            let at_us = self.trace.now_us();
            let closed = Fate::Dropped {
                by: DropCause::Closed,
                at_us,
            };
            let delivered = if deliver {
                let ok = x.deliver.send(x.frame.clone()).is_ok();
                self.resolve(
                    &x,
                    if ok {
                        Fate::Delivered { at_us }
                    } else {
                        closed
                    },
                );
                ok
            } else {
                let open = !x.deliver.is_closed();
                let by = DropCause::Dropped;
                self.resolve(
                    &x,
                    if open {
                        Fate::Dropped { by, at_us }
                    } else {
                        closed
                    },
                );
                open
            };
            out.push(Stepped {
                frame: view,
                delivered,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Entry, MAX_HELD, Offer, Registry};
    use crate::proxy::LinkId;

    #[test]
    fn the_registry_refuses_frames_beyond_its_cap_and_lifted_holds() {
        let reg = Registry::default();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let entry = || Entry {
            link: LinkId::new(1, 2),
            label: None,
            detail: String::new(),
            frame: bytes::Bytes::from_static(b"\0\0\0\0"),
            since: std::time::Instant::now(),
            deliver: tx.clone(),
            traced: None,
            traced_kind: None,
        };
        assert!(matches!(reg.hold(entry(), || false), Offer::NotHeld));
        for _ in 0..MAX_HELD {
            assert!(matches!(reg.hold(entry(), || true), Offer::Held));
        }
        assert!(matches!(reg.hold(entry(), || true), Offer::Full));
        assert_eq!(reg.list().len(), MAX_HELD);
        // Stepping makes room again.
        assert_eq!(reg.take(|_| true, 1, true).len(), 1);
        assert!(matches!(reg.hold(entry(), || true), Offer::Held));
    }

    use crate::proxy::testkit::{AB, Client, Got, Pair, poll_until, seed};
    use crate::proxy::{Fault, FaultSpec};

    #[tokio::test]
    async fn held_frames_leave_one_step_at_a_time_and_in_order() {
        let pair = Pair::new(seed(71)).await;
        let mut c = Client::connect(pair.proxy).await;
        let id = pair.net.add_fault([AB], FaultSpec::permanent(Fault::Hold));
        for seq in 0..5 {
            assert!(c.send(seq, 32).await);
        }
        poll_until("5 frames held", Duration::from_secs(5), || {
            let h = pair.net.held();
            (h.len() == 5, format!("{h:?}"))
        })
        .await;
        assert_eq!(c.recv(Duration::from_millis(50)).await, Got::Timeout);
        let stepped = pair.net.step(|l| l == AB, 1);
        assert_eq!(stepped.len(), 1);
        assert!(stepped[0].delivered);
        assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(0));
        let dropped = pair.net.drop_held(|l| l == AB, 1);
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert_eq!(pair.net.held().len(), 3);
        // Removing the hold delivers the rest, in order.
        pair.net.remove_fault_id(id);
        for want in 2..5 {
            assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(want));
        }
        assert!(pair.net.held().is_empty());
        assert_eq!(pair.echo.torn(), 0);
        let s = pair.net.link_stats(AB).unwrap();
        assert_eq!(s.frames_dropped, 1, "{s:?}");
    }

    #[tokio::test]
    async fn release_delivers_everything_held() {
        let pair = Pair::new(seed(72)).await;
        let mut c = Client::connect(pair.proxy).await;
        pair.net.add_fault([AB], FaultSpec::permanent(Fault::Hold));
        for seq in 0..4 {
            assert!(c.send(seq, 8).await);
        }
        poll_until("4 frames held", Duration::from_secs(5), || {
            let h = pair.net.held();
            (h.len() == 4, format!("{h:?}"))
        })
        .await;
        let released = pair.net.release(|l| l == AB);
        assert_eq!(released.len(), 4);
        for want in 0..4 {
            assert_eq!(c.recv(Duration::from_secs(5)).await, Got::Frame(want));
        }
    }
}
