//! Status events in a compact form: a node's log tail changes by a few cells between polls, so a status is
//! sent as the cells that are new plus the range carried over from the previous one. Encoding and expanding
//! are pure, so the live session and a replay of its log rebuild exactly the same statuses.

use std::collections::BTreeMap;

use squall_node::rpc::{LogCell, NodeStatus};

use super::event::Event;

/// Turns `Event::Status` into `Event::StatusDelta` against the previous status of the same node.
#[derive(Debug, Default)]
pub struct StatusCompressor {
    prev: BTreeMap<u64, Vec<LogCell>>,
}

impl StatusCompressor {
    /// A compressor that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes a status event; every other event passes through unchanged.
    pub fn encode(&mut self, event: Event) -> Event {
        let Event::Status { node, mut status } = event else {
            return event;
        };
        let tail = std::mem::take(&mut status.log_tail);
        let prev = self.prev.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        let tail_start = tail.first().map(|c| c.index).unwrap_or(0);
        // The longest prefix of the new tail that the previous tail holds cell for cell.
        let carried = tail
            .iter()
            .take_while(|c| {
                prev.binary_search_by_key(&c.index, |p| p.index)
                    .is_ok_and(|i| prev[i] == **c)
            })
            .count();
        let keep_through = if carried == 0 {
            tail_start.saturating_sub(1)
        } else {
            tail[carried - 1].index
        };
        status.log_tail = tail[carried..].to_vec();
        let delta = Event::StatusDelta {
            node,
            status,
            tail_start,
            keep_through,
        };
        self.prev.insert(node, tail);
        delta
    }
}

/// Rebuilds the full status from the previous tail and a delta.
pub fn expand(
    prev: &[LogCell],
    delta: &NodeStatus,
    tail_start: u64,
    keep_through: u64,
) -> NodeStatus {
    let mut full = delta.clone();
    let mut tail: Vec<LogCell> = prev
        .iter()
        .filter(|c| c.index >= tail_start && c.index <= keep_through)
        .cloned()
        .collect();
    tail.extend(delta.log_tail.iter().cloned());
    full.log_tail = tail;
    full
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixture;

    fn cell(index: u64, term: u64) -> LogCell {
        LogCell {
            index,
            term,
            text: format!("put k{index}"),
        }
    }

    fn status_with(tail: Vec<LogCell>) -> NodeStatus {
        let mut s = fixture::sample_state(3).nodes[&1]
            .status
            .clone()
            .expect("fixture status");
        s.log_tail = tail;
        s
    }

    #[test]
    fn deltas_expand_back_to_the_same_statuses_through_growth_truncation_and_restart() {
        let tails = vec![
            (1..=10).map(|i| cell(i, 1)).collect::<Vec<_>>(),
            (1..=12).map(|i| cell(i, 1)).collect(),
            (1..=12).map(|i| cell(i, 1)).collect(), // unchanged
            (1..=9)
                .map(|i| cell(i, 1))
                .chain((10..=11).map(|i| cell(i, 2)))
                .collect(), // conflict truncated
            (40..=103).map(|i| cell(i, 3)).collect(), // jumped ahead (snapshot)
            vec![],                                 // wiped
            (1..=3).map(|i| cell(i, 4)).collect(),
        ];
        let mut enc = StatusCompressor::new();
        let mut prev: Vec<LogCell> = vec![];
        let mut sent_cells = 0;
        for t in tails {
            let full = status_with(t.clone());
            let Event::StatusDelta {
                status,
                tail_start,
                keep_through,
                ..
            } = enc.encode(Event::Status {
                node: 1,
                status: full.clone(),
            })
            else {
                panic!("a status becomes a delta");
            };
            sent_cells += status.log_tail.len();
            let back = expand(&prev, &status, tail_start, keep_through);
            assert_eq!(back, full, "round trip of tail {t:?}");
            prev = back.log_tail;
        }
        // 10 at first, 2 appended, none unchanged, 2 rewritten, 64 after the jump, none wiped, 3 new.
        assert_eq!(sent_cells, 81, "only new cells are sent");
    }

    #[test]
    fn other_events_pass_through() {
        let mut enc = StatusCompressor::new();
        let e = Event::Quit;
        assert_eq!(enc.encode(e.clone()), e);
    }
}
