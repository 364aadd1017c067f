//! Message labels: how the proxy tells one kind of frame from another without knowing the protocol.
//!
//! The proxy stays protocol-agnostic. Whoever builds the [`Network`](super::Network) may hand it a
//! [`Classifier`], which looks at a frame's payload and answers with a label index into its own list of label
//! names (`vote`, `heartbeat`, … for squall's Raft). The proxy then
//! - counts frames per label on every link ([`LinkStats::by_label`](super::LinkStats::by_label)),
//! - applies a fault with a [`LabelSet`] filter only to frames whose label is in the set (a frame the classifier
//!   cannot place is never matched by a filter), and
//! - asks the classifier to describe each frame it holds ([`Fault::Hold`](super::Fault::Hold)), so a person
//!   stepping through held frames can read what each one carries.
//!
//! On the no-fault path the classifier sees only the first [`PREFIX`] bytes of a frame's payload (the proxy
//! streams the rest without buffering it), so a label must be decidable from a prefix; `describe` always gets
//! the whole payload.

use std::fmt;
use std::sync::Arc;

/// Payload bytes a classifier sees on the streaming path: labels must be decidable from this many.
pub const PREFIX: usize = 192;

/// The most labels a classifier may define (a [`LabelSet`] is a bit set of this width).
pub const MAX_LABELS: usize = 16;

/// Which way a frame travels on a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// From the side that opened the connection (requests, in an RPC protocol).
    Request,
    /// From the side that accepted it (replies).
    Reply,
}

/// Turns frames into labels. Implementations must be cheap in [`Classifier::classify`]: it runs once per frame
/// on every link while a classifier is installed.
pub trait Classifier: Send + Sync + 'static {
    /// The label names, in index order (at most [`MAX_LABELS`]).
    fn labels(&self) -> &[&'static str];
    /// The label index of a frame whose payload (length prefix excluded) begins with `prefix`, or `None` when
    /// the frame is not one the classifier knows (or the prefix is too short to tell).
    fn classify(&self, flow: Flow, prefix: &[u8]) -> Option<u8>;
    /// A short description of a whole frame's payload for a person ("pre-vote term 3 last 12/2").
    fn describe(&self, flow: Flow, payload: &[u8]) -> String;
    /// The message's kind as the message trace records it (and a Lamport diagram labels its arrow), for a
    /// frame whose payload begins with `prefix` and that [`Classifier::classify`] gave `label`. By default the
    /// label's name; a classifier whose protocol names more kinds than it has labels (a Maelstrom body's
    /// `type`, where every type a node invents shares the label `other`) names the kind itself. Called only
    /// while the trace records.
    fn kind(
        &self,
        flow: Flow,
        prefix: &[u8],
        label: Option<u8>,
    ) -> Option<std::borrow::Cow<'static, str>> {
        let _ = (flow, prefix);
        label
            .and_then(|l| self.labels().get(usize::from(l)).copied())
            .map(std::borrow::Cow::Borrowed)
    }
}

/// A shared classifier.
pub type SharedClassifier = Arc<dyn Classifier>;

/// A set of label indexes; the filter of a fault.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct LabelSet(pub u16);

impl LabelSet {
    /// The empty set.
    pub const EMPTY: LabelSet = LabelSet(0);

    /// A set of the given label indexes (indexes at or above [`MAX_LABELS`] are ignored).
    pub fn of(labels: impl IntoIterator<Item = u8>) -> LabelSet {
        let mut bits = 0u16;
        for l in labels {
            if usize::from(l) < MAX_LABELS {
                bits |= 1 << l;
            }
        }
        LabelSet(bits)
    }

    /// Whether `label` is in the set.
    pub fn contains(self, label: u8) -> bool {
        usize::from(label) < MAX_LABELS && self.0 & (1 << label) != 0
    }

    /// The label indexes in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..MAX_LABELS as u8).filter(move |&l| self.contains(l))
    }
}

impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for l in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "#{l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_hold_what_they_were_given() {
        let s = LabelSet::of([0, 3, 15, 16, 200]);
        assert!(s.contains(0) && s.contains(3) && s.contains(15));
        assert!(!s.contains(1) && !s.contains(16));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 15]);
        assert_eq!(LabelSet::EMPTY.iter().count(), 0);
    }
}
