//! The session's message record: every message the proxies traced, in its own capped file beside the event
//! log (`events.jsonl.gz` → `events.messages.jsonl.gz`), so the report can draw a message-flow diagram of any
//! window without the event log growing by thousands of lines a second under a workload.
//!
//! The file is an event log ([`super::eventlog`]: header, JSON Lines, closing record) of [`MessageLine`]s.
//! At most [`MESSAGE_LOG_CAP`] messages are written: the first ones of the session, since the report's
//! default window is the first fault and the election after it. What is left out is counted, not lost
//! silently: the last line says how many messages the cap left out and how many the proxies' trace overwrote
//! before the session read them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use squall_chaos::MessageEvent;

use super::eventlog::{EventLogError, EventLogReader, EventLogWriter};

/// Messages a session's record keeps at most (about 10 MB of JSON before compression).
pub const MESSAGE_LOG_CAP: u64 = 100_000;

/// One line of the message record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageLine {
    /// A message, or the later fate of a held one (same id); times in microseconds of session time.
    Message(MessageEvent),
    /// The last line: what the record does not hold.
    Omitted {
        /// Messages (or fates) past [`MESSAGE_LOG_CAP`], counted and not written.
        omitted: u64,
        /// Messages the proxies' trace overwrote before the session read them.
        lost: u64,
    },
}

/// Where the message record of the event log at `events` goes.
pub fn messages_path(events: &Path) -> PathBuf {
    let name = events
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".jsonl.gz")
        .map(|s| (s, ".jsonl.gz"))
        .or_else(|| name.strip_suffix(".jsonl").map(|s| (s, ".jsonl")));
    let file = match stem {
        Some((s, ext)) => format!("{s}.messages{ext}"),
        None => format!("{name}.messages.jsonl"),
    };
    events.with_file_name(file)
}

/// Writes a session's messages, up to the cap.
pub struct MessageLog {
    writer: EventLogWriter<MessageLine>,
    written: u64,
    omitted: u64,
    lost: u64,
}

impl MessageLog {
    /// Creates the record for the event log at `events`.
    pub fn create(events: &Path, cluster_id: &str) -> Result<MessageLog, EventLogError> {
        Ok(MessageLog {
            writer: EventLogWriter::create(messages_path(events), cluster_id)?,
            written: 0,
            omitted: 0,
            lost: 0,
        })
    }

    /// Writes a batch (or counts it, past the cap); `lost` is what the trace overwrote before it.
    pub fn append(&mut self, batch: &[MessageEvent], lost: u64) {
        self.lost += lost;
        for m in batch {
            if self.written < MESSAGE_LOG_CAP {
                self.writer.append(MessageLine::Message(m.clone()));
                self.written += 1;
            } else {
                self.omitted += 1;
            }
        }
    }

    /// The first error writing the record, as soon as it happened ([`EventLogWriter::failed`]).
    pub fn failed(&self) -> Option<&str> {
        self.writer.failed()
    }

    /// Writes the closing counts and closes the file.
    pub fn finish(self) -> Result<PathBuf, EventLogError> {
        self.writer.append(MessageLine::Omitted {
            omitted: self.omitted,
            lost: self.lost,
        });
        self.writer.finish()
    }
}

/// A message record read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Messages {
    /// Every message, each with its latest fate, in record order (send order).
    pub messages: Vec<MessageEvent>,
    /// Messages the record left out (the cap, or the trace overwrote them).
    pub left_out: u64,
    /// The record ended early (the session was killed): its last messages are missing.
    pub truncated: bool,
}

/// Reads the message record beside the event log at `events`, keeping only messages that `keep` accepts
/// (the report's window), so memory is the window, not the session. `Ok(None)` when the session wrote none.
pub fn read_messages(
    events: &Path,
    keep: impl Fn(&MessageEvent) -> bool,
) -> Result<Option<Messages>, EventLogError> {
    let path = messages_path(events);
    if !path.exists() {
        return Ok(None);
    }
    let mut reader = EventLogReader::<MessageLine>::open(&path)?;
    let mut out = Messages::default();
    let mut at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for line in &mut reader {
        match line? {
            MessageLine::Message(m) => {
                if let Some(&i) = at.get(&m.id) {
                    out.messages[i].fate = m.fate;
                } else if keep(&m) {
                    at.insert(m.id, out.messages.len());
                    out.messages.push(m);
                }
            }
            MessageLine::Omitted { omitted, lost } => out.left_out += omitted + lost,
        }
    }
    out.truncated = reader.truncated();
    Ok(Some(out))
}

/// How the live session batched the trace (`cluster::flow`'s poll): a replay batches the record the same way.
const REPLAY_BATCH_MS: u64 = 100;

/// When a record line became known to the session, in ms: its send, or its fate's time when later.
fn known_ms(m: &MessageEvent) -> u64 {
    let us = match m.fate {
        squall_chaos::Fate::Delivered { at_us } | squall_chaos::Fate::Dropped { at_us, .. } => {
            at_us.max(m.sent_us)
        }
        squall_chaos::Fate::Held => m.sent_us,
    };
    us.div_ceil(1_000)
}

/// `events` (an event log's, in file order) with the message record beside the log at `source` folded in as
/// the [`Event::Messages`](crate::state::Event::Messages) batches the live session applied, so a replay's
/// message-flow panel (`M`) shows what the live one did. Record lines keep their order (a held message's
/// later fate follows it); each batch is stamped when its newest line became known, never earlier than the
/// batch before. Returns the events, unchanged when the session kept no record, and a note for the person
/// when the record could not be read or ended early.
pub fn with_messages(
    events: Vec<crate::state::Stamped>,
    source: &Path,
) -> (Vec<crate::state::Stamped>, Option<String>) {
    use crate::state::{Event, Stamped};
    let path = messages_path(source);
    if !path.exists() {
        return (events, None);
    }
    let mut reader = match EventLogReader::<MessageLine>::open(&path) {
        Ok(r) => r,
        Err(e) => {
            return (
                events,
                Some(format!("message record {} not read: {e}", path.display())),
            );
        }
    };
    let mut batches: Vec<Stamped> = Vec::new();
    let mut batch: Vec<MessageEvent> = Vec::new();
    let mut stamp = 0;
    let mut lost = 0;
    let mut note = None;
    let flush = |batch: &mut Vec<MessageEvent>, stamp: u64, lost: u64, out: &mut Vec<Stamped>| {
        if !batch.is_empty() || lost > 0 {
            out.push(Stamped::new(
                stamp,
                Event::Messages {
                    messages: std::mem::take(batch),
                    lost,
                },
            ));
        }
    };
    for line in &mut reader {
        match line {
            Ok(MessageLine::Message(m)) => {
                let at = known_ms(&m).max(stamp);
                if !batch.is_empty() && at / REPLAY_BATCH_MS != stamp / REPLAY_BATCH_MS {
                    flush(&mut batch, stamp, 0, &mut batches);
                }
                stamp = at;
                batch.push(m);
            }
            Ok(MessageLine::Omitted {
                omitted: _,
                lost: l,
            }) => lost += l,
            Err(e) => {
                note = Some(format!(
                    "message record {} unreadable from here on: {e}",
                    path.display()
                ));
                break;
            }
        }
    }
    flush(&mut batch, stamp, lost, &mut batches);
    if note.is_none() && reader.truncated() {
        note = Some(format!(
            "message record {} ends early: its last messages are missing",
            path.display()
        ));
    }
    // Merged by time, the event log's order kept and each batch after the events of its millisecond.
    let mut out = Vec::with_capacity(events.len() + batches.len());
    let mut batches = batches.into_iter().peekable();
    for e in events {
        while let Some(b) = batches.next_if(|b| b.at_ms < e.at_ms) {
            out.push(b);
        }
        out.push(e);
    }
    out.extend(batches);
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use squall_chaos::{Fate, LinkId};

    #[test]
    fn the_record_sits_beside_the_event_log() {
        let p = |s: &str| messages_path(Path::new(s));
        assert_eq!(
            p("/d/events.jsonl.gz"),
            Path::new("/d/events.messages.jsonl.gz")
        );
        assert_eq!(
            p("/d/events-2.jsonl"),
            Path::new("/d/events-2.messages.jsonl")
        );
        assert_eq!(p("/d/log"), Path::new("/d/log.messages.jsonl"));
    }

    #[test]
    fn a_record_reads_back_with_later_fates_and_what_was_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl.gz");
        let mut log = MessageLog::create(&events, "c1").unwrap();
        let m = |id, fate| MessageEvent {
            id,
            link: LinkId::new(1, 2),
            kind: Some("vote".into()),
            sent_us: id * 10,
            fate,
        };
        log.append(&[m(1, Fate::Held), m(2, Fate::Delivered { at_us: 20 })], 3);
        log.append(&[m(1, Fate::Delivered { at_us: 99 })], 0);
        log.finish().unwrap();
        let read = read_messages(&events, |_| true).unwrap().unwrap();
        assert_eq!(read.messages.len(), 2);
        assert_eq!(read.messages[0].fate, Fate::Delivered { at_us: 99 });
        assert_eq!(read.left_out, 3);
        assert!(!read.truncated);
        let none = read_messages(&dir.path().join("other.jsonl.gz"), |_| true).unwrap();
        assert!(none.is_none());
    }
}
