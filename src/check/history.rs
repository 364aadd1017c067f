//! Histories of a key-value register workload, as Jepsen and Maelstrom record them: every operation is an
//! invocation event followed (usually) by one completion event from the same process.
//!
//! A completion is `ok` (it happened, with this result), `fail` (it definitely did not happen) or `info` (its
//! outcome is unknown: it may have taken effect at any time after its invocation, or never). An invocation
//! with no completion by the end of the history counts as `info`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a history event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpType {
    /// The operation began.
    Invoke,
    /// It completed and took effect, with the result in the event's value.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Its outcome is unknown (timed out, connection lost).
    Info,
}

impl OpType {
    /// The name used in the history formats (`invoke`, `ok`, `fail`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    /// Parses a name written by [`OpType::as_str`].
    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

/// The function an operation applies to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpF {
    /// Read the key's value.
    Read,
    /// Set the key's value.
    Write,
    /// Set the key's value to `to` if it is `from`.
    Cas,
}

impl OpF {
    /// The name used in the history formats (`read`, `write`, `cas`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpF::Read => "read",
            OpF::Write => "write",
            OpF::Cas => "cas",
        }
    }

    /// Parses a name written by [`OpF::as_str`].
    pub fn parse(s: &str) -> Option<OpF> {
        Some(match s {
            "read" => OpF::Read,
            "write" => OpF::Write,
            "cas" => OpF::Cas,
            _ => return None,
        })
    }
}

/// What an event says about its key, beside the key itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpValue {
    /// A read: `None` in an invocation (nothing known yet) and for an absent key in a completion.
    Read(Option<i64>),
    /// A write of this value.
    Write(i64),
    /// A compare-and-swap from the first value to the second.
    Cas(i64, i64),
}

impl OpValue {
    /// The function this value belongs to.
    pub fn f(self) -> OpF {
        match self {
            OpValue::Read(_) => OpF::Read,
            OpValue::Write(_) => OpF::Write,
            OpValue::Cas(..) => OpF::Cas,
        }
    }
}

/// One line of a history: an invocation or a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpEvent {
    /// Position in the history, from 0.
    pub index: u64,
    /// Invocation or which completion.
    pub kind: OpType,
    /// The client process (a process whose operation ended `info` continues under a new id).
    pub process: u64,
    /// Nanoseconds since the session started.
    pub time: u64,
    /// The key.
    pub key: i64,
    /// The function and its arguments or result.
    pub value: OpValue,
}

impl OpEvent {
    /// The function of this event.
    pub fn f(&self) -> OpF {
        self.value.f()
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Completed `ok`.
    Ok,
    /// Completed `fail`: never happened.
    Fail,
    /// Completed `info`, or never completed: may have happened at any time after its invocation, or never.
    Info,
}

/// An operation: an invocation paired with its completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The client process.
    pub process: u64,
    /// The key.
    pub key: i64,
    /// The function and its arguments; for a read, the value read when it completed `ok`.
    pub value: OpValue,
    /// How it ended.
    pub outcome: Outcome,
    /// Index of the invocation event.
    pub invoke_index: u64,
    /// Index of the completion event, when there is one.
    pub complete_index: Option<u64>,
    /// Time of the invocation, in nanoseconds.
    pub invoke_time: u64,
    /// Time of the completion, in nanoseconds, when there is one.
    pub complete_time: Option<u64>,
}

impl Operation {
    /// The operation as a person reads it: `write 3`, `read → 4`, `read → nil`, `cas 3→4`, with `?` for
    /// an unknown outcome and ` (fail)` for a failed one.
    pub fn describe(&self) -> String {
        let body = match (self.value, self.outcome) {
            (OpValue::Read(_), Outcome::Info) => "read → ?".to_string(),
            (OpValue::Read(Some(v)), _) => format!("read → {v}"),
            (OpValue::Read(None), _) => "read → nil".to_string(),
            (OpValue::Write(v), _) => format!("write {v}"),
            (OpValue::Cas(a, b), _) => format!("cas {a}→{b}"),
        };
        match self.outcome {
            Outcome::Ok => body,
            Outcome::Fail => format!("{body} (fail)"),
            Outcome::Info if self.value.f() != OpF::Read => format!("{body} ?"),
            Outcome::Info => body,
        }
    }
}

/// Why a sequence of events is not a well-formed history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    /// Position of the offending event in the sequence (0-based).
    pub position: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}: {}", self.position, self.message)
    }
}

impl std::error::Error for HistoryError {}

/// Pairs every invocation with the next completion of the same process. Invocations never completed become
/// [`Outcome::Info`]. Returns the operations in invocation order.
///
/// # Errors
/// A completion with no pending invocation of its process, a second invocation while one is pending (unless
/// the pending one is left as unknown), a completion whose function or key differs from its invocation's,
/// or a write or cas completing with other arguments than it was invoked with.
pub fn pair(events: &[OpEvent]) -> Result<Vec<Operation>, HistoryError> {
    // Sized exactly: a report holds one key's operations at its peak, and doubling would hold up to twice.
    let invocations = events.iter().filter(|e| e.kind == OpType::Invoke).count();
    let mut ops: Vec<Operation> = Vec::with_capacity(invocations);
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    for (position, e) in events.iter().enumerate() {
        let err = |message: String| HistoryError { position, message };
        match e.kind {
            OpType::Invoke => {
                if let Some(&open) = pending.get(&e.process) {
                    return Err(err(format!(
                        "process {} invokes again while its {} invoked at event {} has not completed \
                         (a process whose outcome is unknown must continue under a new process id)",
                        e.process,
                        ops[open].value.f().as_str(),
                        ops[open].invoke_index
                    )));
                }
                pending.insert(e.process, ops.len());
                let value = match e.value {
                    OpValue::Read(_) => OpValue::Read(None),
                    v => v,
                };
                ops.push(Operation {
                    process: e.process,
                    key: e.key,
                    value,
                    outcome: Outcome::Info,
                    invoke_index: e.index,
                    complete_index: None,
                    invoke_time: e.time,
                    complete_time: None,
                });
            }
            kind => {
                let Some(open) = pending.remove(&e.process) else {
                    return Err(err(format!(
                        "process {} completes a {} ({}) with no invocation pending",
                        e.process,
                        e.f().as_str(),
                        kind.as_str()
                    )));
                };
                let op = &mut ops[open];
                if op.value.f() != e.f() || op.key != e.key {
                    return Err(err(format!(
                        "process {} completes {} on key {} but invoked {} on key {} at event {}",
                        e.process,
                        e.f().as_str(),
                        e.key,
                        op.value.f().as_str(),
                        op.key,
                        op.invoke_index
                    )));
                }
                if e.time < op.invoke_time {
                    return Err(err(format!(
                        "completion at time {} precedes its invocation at time {} (event {})",
                        e.time, op.invoke_time, op.invoke_index
                    )));
                }
                match (op.value, e.value) {
                    (OpValue::Read(_), OpValue::Read(v)) if kind == OpType::Ok => {
                        op.value = OpValue::Read(v);
                    }
                    (OpValue::Read(_), _) => {}
                    (a, b) if a != b && kind == OpType::Ok => {
                        return Err(err(format!(
                            "completion value {b:?} differs from the invocation's {a:?} (event {})",
                            op.invoke_index
                        )));
                    }
                    _ => {}
                }
                op.outcome = match kind {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.complete_index = Some(e.index);
                op.complete_time = Some(e.time);
            }
        }
    }
    Ok(ops)
}

/// Turns operations back into events (invocations and completions ordered by time, then by operation, so a
/// process's completion precedes its next invocation at the same time; indexes renumbered from 0). Operations with an unknown outcome and no completion stay open.
pub fn events_of(ops: &[Operation]) -> Vec<OpEvent> {
    let mut out: Vec<(u64, u8, usize, OpEvent)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        let invoke_value = match op.value {
            OpValue::Read(_) => OpValue::Read(None),
            v => v,
        };
        out.push((
            op.invoke_time,
            0,
            i,
            OpEvent {
                index: 0,
                kind: OpType::Invoke,
                process: op.process,
                time: op.invoke_time,
                key: op.key,
                value: invoke_value,
            },
        ));
        if let Some(t) = op.complete_time {
            let kind = match op.outcome {
                Outcome::Ok => OpType::Ok,
                Outcome::Fail => OpType::Fail,
                Outcome::Info => OpType::Info,
            };
            let value = match (op.value, op.outcome) {
                (OpValue::Read(v), Outcome::Ok) => OpValue::Read(v),
                (OpValue::Read(_), _) => OpValue::Read(None),
                (v, _) => v,
            };
            out.push((
                t,
                1,
                i,
                OpEvent {
                    index: 0,
                    kind,
                    process: op.process,
                    time: t,
                    key: op.key,
                    value,
                },
            ));
        }
    }
    out.sort_by_key(|(t, k, i, _)| (*t, *i, *k));
    out.into_iter()
        .enumerate()
        .map(|(n, (_, _, _, mut e))| {
            e.index = n as u64;
            e
        })
        .collect()
}
