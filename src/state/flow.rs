//! The messages the dashboard's message-flow panel draws: the proxies' trace of the last seconds, in session
//! time. Pure data: [`FlowWindow::apply`] folds one batch ([`Event::Messages`](super::Event::Messages)) in.

use std::collections::{BTreeMap, VecDeque};

use squall_chaos::{Fate, MessageEvent};

/// Session time the window keeps, in microseconds: the panel shows at most this much.
pub const FLOW_WINDOW_US: u64 = 30_000_000;

/// Messages the window keeps at most, whatever their age (about 30 s of a lightly loaded five-node cluster;
/// at workload rates the panel aggregates, so the oldest are the ones to lose).
pub const FLOW_CAPACITY: usize = 20_000;

/// The recent messages, oldest first by send time, each with its latest fate (a held message that was then
/// stepped shows as delivered, at its delivery time). Times are microseconds of session time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowWindow {
    messages: VecDeque<MessageEvent>,
    /// Where each message id sits in `messages`, offset by `base`.
    index: BTreeMap<u64, u64>,
    /// How many messages were ever pushed and later popped from the front (so `index` values stay valid).
    base: u64,
    /// Messages the proxies' trace overwrote before they were read (the panel says so).
    pub lost: u64,
    /// The newest send or delivery time seen: the panel's "now".
    pub latest_us: u64,
}

impl FlowWindow {
    /// Folds in a batch: new messages are appended, a later fate of a kept message replaces its fate.
    pub fn apply(&mut self, batch: &[MessageEvent], lost: u64) {
        self.lost += lost;
        for m in batch {
            let t = match m.fate {
                Fate::Delivered { at_us } | Fate::Dropped { at_us, .. } => at_us.max(m.sent_us),
                Fate::Held => m.sent_us,
            };
            self.latest_us = self.latest_us.max(t);
            if let Some(&pos) = self.index.get(&m.id)
                && let Some(kept) = self.messages.get_mut((pos - self.base) as usize)
            {
                kept.fate = m.fate;
                continue;
            }
            self.index
                .insert(m.id, self.base + self.messages.len() as u64);
            self.messages.push_back(m.clone());
        }
        let horizon = self.latest_us.saturating_sub(FLOW_WINDOW_US);
        while self.messages.len() > FLOW_CAPACITY
            || self.messages.front().is_some_and(|m| {
                m.sent_us < horizon && !matches!(m.fate, Fate::Held)
                    || m.sent_us < horizon.saturating_sub(FLOW_WINDOW_US)
            })
        {
            if let Some(m) = self.messages.pop_front() {
                self.index.remove(&m.id);
                self.base += 1;
            }
        }
    }

    /// The messages kept, oldest first.
    pub fn messages(&self) -> impl DoubleEndedIterator<Item = &MessageEvent> + ExactSizeIterator {
        self.messages.iter()
    }

    /// Whether nothing was traced yet.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_chaos::{DropCause, LinkId};

    fn msg(id: u64, sent_us: u64, fate: Fate) -> MessageEvent {
        MessageEvent {
            id,
            link: LinkId::new(1, 2),
            kind: Some("vote".into()),
            sent_us,
            fate,
        }
    }

    #[test]
    fn a_held_message_takes_its_later_fate_and_old_ones_leave() {
        let mut w = FlowWindow::default();
        w.apply(&[msg(1, 10, Fate::Held)], 0);
        w.apply(&[msg(1, 10, Fate::Delivered { at_us: 500 })], 2);
        assert_eq!(w.messages().count(), 1);
        assert_eq!(
            w.messages().next().unwrap().fate,
            Fate::Delivered { at_us: 500 }
        );
        assert_eq!(w.lost, 2);
        let late = FLOW_WINDOW_US + 1_000;
        let by = DropCause::Loss;
        w.apply(&[msg(2, late, Fate::Dropped { by, at_us: late })], 0);
        assert_eq!(w.messages().map(|m| m.id).collect::<Vec<_>>(), [2]);
        // The index still finds messages after the front moved.
        w.apply(&[msg(2, late, Fate::Delivered { at_us: late })], 0);
        assert_eq!(w.messages().count(), 1);
    }
}
