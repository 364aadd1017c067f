//! The node's own event feed, shared by the Raft and the Paxos drivers: a bounded buffer of numbered records
//! that the orchestrator reads from a cursor (`ControlService::events`), told how many it missed when the
//! buffer dropped them before it read.

use std::collections::VecDeque;
use std::time::Instant;

use crate::rpc::{EventBatch, EventRecord, NodeEvent};

use super::EVENT_BUFFER;

/// The last [`EVENT_BUFFER`] records of a node's feed, numbered from 0.
#[derive(Debug)]
pub(super) struct EventFeed {
    records: VecDeque<EventRecord>,
    next_seq: u64,
    /// The process start: records carry milliseconds since it.
    started: Instant,
}

impl EventFeed {
    /// An empty feed whose records count time from `started`.
    pub(super) fn new(started: Instant) -> EventFeed {
        EventFeed {
            records: VecDeque::new(),
            next_seq: 0,
            started,
        }
    }

    /// Appends `event`, stamped now; the oldest record goes when the buffer is full.
    pub(super) fn record(&mut self, event: NodeEvent) {
        let rec = EventRecord {
            seq: self.next_seq,
            at_ms: self.started.elapsed().as_millis() as u64,
            event,
        };
        self.next_seq += 1;
        self.records.push_back(rec);
        while self.records.len() > EVENT_BUFFER {
            self.records.pop_front();
        }
    }

    /// At most `max` (at least one) records from `cursor` on, the cursor to ask from next, and how many
    /// records before the oldest kept one the reader never saw.
    pub(super) fn from(&self, cursor: u64, max: u32) -> EventBatch {
        let oldest = self.records.front().map_or(self.next_seq, |e| e.seq);
        let start = cursor.max(oldest);
        let missed = oldest.saturating_sub(cursor);
        let events: Vec<EventRecord> = self
            .records
            .iter()
            .skip((start - oldest) as usize)
            .take(max.max(1) as usize)
            .cloned()
            .collect();
        let next_cursor = events.last().map_or(start, |e| e.seq + 1);
        EventBatch {
            events,
            next_cursor,
            missed,
        }
    }

    /// The records kept, oldest first.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &EventRecord> {
        self.records.iter()
    }
}
