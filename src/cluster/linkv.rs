//! The lin-kv workload, as Jepsen's and Maelstrom's: [`CLIENTS`] clients run reads, writes and
//! compare-and-swaps on [`KEYS`] integer keys, writes using values unique per key, and every operation is
//! recorded as an invocation and a completion (`ok`, `fail`: definitely did not happen, `info`: outcome
//! unknown). A client whose operation ended `info` continues as a new process, with a new client identity.
//! The history goes out as [`Event::Op`] events (so into the event log) and is kept for the check on disk, not
//! in memory ([`HistorySpill`]): an hours-long session's history would otherwise grow the orchestrator
//! without bound (about 25 MB an hour at 50 operations a second). The check reads all of it back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use squall_node::client::KvClient;
use squall_node::kv::{KvOp, KvResult};
use tokio::sync::mpsc;

use super::Cluster;
use crate::check::diagram::{DiagramLine, describe, draw};
use crate::check::{OpEvent, OpType, OpValue, Verdict as LinVerdict, history, linear};
use crate::state::{Event, Verdict};

/// Concurrent clients (processes at the start).
pub const CLIENTS: usize = 8;
/// Keys, numbered from 0.
pub const KEYS: usize = 5;
/// How long the live check may search before its verdict is `unknown`.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(10);

struct Inner {
    /// Every event so far, in index order, on disk.
    history: HistorySpill,
    next_process: u64,
    /// The last value each key was seen to hold (by a read, a write or a cas that completed `ok`).
    seen: [Option<i64>; KEYS],
    /// The last value handed to a write or cas on each key (values are unique per key).
    issued: [i64; KEYS],
}

/// The history so far and what the clients share.
pub(super) struct LinKv {
    inner: Mutex<Inner>,
    /// Tells this session's keys apart from any a reused cluster directory holds already.
    tag: u32,
}

impl LinKv {
    pub(super) fn new() -> Self {
        LinKv {
            inner: Mutex::new(Inner {
                history: HistorySpill::default(),
                next_process: CLIENTS as u64,
                seen: [None; KEYS],
                issued: [0; KEYS],
            }),
            tag: rand::random::<u32>() & 0xffff,
        }
    }

    /// The key's name in the store: `lin-TAG-K`.
    pub(super) fn store_key(&self, key: i64) -> String {
        format!("lin-{:04x}-{key}", self.tag)
    }

    /// The history recorded so far, read back whole (the checker needs all of it); an error when the disk
    /// failed it, never a shortened history.
    pub(super) fn events(&self) -> Result<Vec<OpEvent>, String> {
        self.inner.lock().unwrap().history.read_all()
    }

    /// Appends one event, stamped now, and sends it out; under one lock, so index order is time order.
    fn record(&self, cluster: &Cluster, kind: OpType, process: u64, key: i64, value: OpValue) {
        let mut g = self.inner.lock().unwrap();
        let event = OpEvent {
            index: g.history.len(),
            kind,
            process,
            time: cluster.inner.started.elapsed().as_nanos() as u64,
            key,
            value,
        };
        if kind == OpType::Ok {
            let k = key as usize;
            match value {
                OpValue::Read(v) => g.seen[k] = v,
                OpValue::Write(v) | OpValue::Cas(_, v) => g.seen[k] = Some(v),
            }
        }
        g.history.push(&event);
        cluster.emit(Event::Op { op: event });
    }

    /// A new operation: half reads, a quarter writes of a fresh value, a quarter cas from the value last
    /// seen (or an earlier one) to a fresh value.
    fn next_op(&self) -> (i64, OpValue) {
        let mut rng = rand::rng();
        let key = rng.random_range(0..KEYS);
        let mut g = self.inner.lock().unwrap();
        let value = match rng.random_range(0..4) {
            0 | 1 => OpValue::Read(None),
            2 => {
                g.issued[key] += 1;
                OpValue::Write(g.issued[key])
            }
            _ => {
                let from = match g.seen[key] {
                    Some(v) if rng.random_bool(0.8) => v,
                    _ => rng.random_range(0..=g.issued[key]),
                };
                g.issued[key] += 1;
                OpValue::Cas(from, g.issued[key])
            }
        };
        (key as i64, value)
    }

    fn new_process(&self) -> u64 {
        let mut g = self.inner.lock().unwrap();
        g.next_process += 1;
        g.next_process - 1
    }
}

fn new_client(cluster: &Cluster) -> KvClient {
    let mut c = KvClient::new(cluster.api_addrs());
    c.op_timeout = Duration::from_secs(2);
    c.call_timeout = Duration::from_millis(500);
    c
}

/// One client: takes a token per operation, runs it, records invocation and completion.
pub(super) async fn worker(
    cluster: Cluster,
    slot: usize,
    tokens: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    done: mpsc::UnboundedSender<bool>,
) {
    let lin = &cluster.inner.workload.lin;
    let mut process = slot as u64;
    let mut client = new_client(&cluster);
    let mut addrs = cluster.api_addrs();
    loop {
        if tokens.lock().await.recv().await.is_none() {
            return;
        }
        if cluster.api_addrs() != addrs {
            // A node restarted on new ports: the old client cannot reach it. Nothing is in flight now.
            addrs = cluster.api_addrs();
            client = new_client(&cluster);
        }
        let (key, value) = lin.next_op();
        let store_key = lin.store_key(key);
        let op = match value {
            OpValue::Read(_) => KvOp::Get { key: store_key },
            OpValue::Write(v) => KvOp::Put {
                key: store_key,
                value: v.to_string(),
            },
            OpValue::Cas(from, to) => KvOp::Cas {
                key: store_key,
                expected: Some(from.to_string()),
                new: to.to_string(),
            },
        };
        lin.record(&cluster, OpType::Invoke, process, key, value);
        let started = Instant::now();
        let result = client.execute(op).await;
        let latency_us = started.elapsed().as_micros() as u64;
        let (kind, value, why) = match (value, result) {
            (OpValue::Read(_), Ok(KvResult::Value(v))) => match v.map(|s| s.parse::<i64>()) {
                None => (OpType::Ok, OpValue::Read(None), None),
                Some(Ok(n)) => (OpType::Ok, OpValue::Read(Some(n)), None),
                Some(Err(_)) => (
                    OpType::Info,
                    value,
                    Some("holds a value that is not an integer: written by hand?".to_string()),
                ),
            },
            (OpValue::Write(_), Ok(KvResult::Ok { .. })) => (OpType::Ok, value, None),
            (OpValue::Cas(..), Ok(KvResult::Cas { swapped: true, .. })) => {
                (OpType::Ok, value, None)
            }
            (OpValue::Cas(..), Ok(KvResult::Cas { swapped: false, .. })) => {
                (OpType::Fail, value, Some("precondition failed".to_string()))
            }
            (_, Ok(KvResult::Error(e))) => (OpType::Fail, value, Some(e)),
            (_, Ok(other)) => (OpType::Info, value, Some(format!("unexpected {other:?}"))),
            (_, Err(e)) => (OpType::Info, value, Some(e.to_string())),
        };
        lin.record(&cluster, kind, process, key, value);
        let _ = done.send(kind == OpType::Ok);
        cluster.emit(Event::ClientOp {
            op: describe_op(key, value),
            result: match (kind, why) {
                (OpType::Ok, _) => "ok".to_string(),
                (k, Some(why)) => format!("{}: {why}", k.as_str()),
                (k, None) => k.as_str().to_string(),
            },
            latency_us,
        });
        if kind == OpType::Info {
            // Its outcome is unknown: as in Jepsen, the client continues as a new process.
            process = lin.new_process();
            client = new_client(&cluster);
        }
    }
}

fn describe_op(key: i64, value: OpValue) -> String {
    match value {
        OpValue::Read(Some(v)) => format!("read {key} → {v}"),
        OpValue::Read(None) => format!("read {key}"),
        OpValue::Write(v) => format!("write {key} {v}"),
        OpValue::Cas(a, b) => format!("cas {key} {a}→{b}"),
    }
}

/// Checks the history so far for linearizability (invocations still open count as `info`), off the async
/// threads, within [`CHECK_DEADLINE`]. `None` when there is no history yet.
pub(super) async fn check(cluster: &Cluster) -> Option<(Verdict, String, Vec<DiagramLine>)> {
    let events = match cluster.inner.workload.lin.events() {
        Ok(events) if events.is_empty() => return None,
        Ok(events) => events,
        Err(e) => {
            return Some((
                Verdict::Inconclusive,
                format!("linearizability check inconclusive: {e}"),
                vec![],
            ));
        }
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let ops = history::pair(&events).map_err(|e| e.to_string())?;
        let report = linear::check(&ops, Some(started + CHECK_DEADLINE));
        Ok::<_, String>((report, started.elapsed()))
    })
    .await;
    Some(match outcome {
        Ok(Ok((report, took))) => {
            let lines = describe(&report, took);
            let (verdict, head, window) = match &report.verdict {
                LinVerdict::Valid => (Verdict::Ok, "linearizability check passed", vec![]),
                LinVerdict::Unknown(_) => (
                    Verdict::Inconclusive,
                    "linearizability check inconclusive",
                    vec![],
                ),
                LinVerdict::Invalid(f) => (
                    Verdict::Violated,
                    "linearizability check FAILED",
                    draw(f, 40),
                ),
            };
            (verdict, format!("{head}: {}", lines[0]), window)
        }
        Ok(Err(e)) => (
            Verdict::Inconclusive,
            format!("linearizability check inconclusive: the recorded history is malformed ({e})"),
            vec![],
        ),
        Err(e) => (
            Verdict::Inconclusive,
            format!("linearizability check inconclusive: the check did not finish ({e})"),
            vec![],
        ),
    })
}

/// The lin-kv history kept on disk: an unlinked file in the temporary directory (gone when squall exits,
/// however it exits), each event bincode-encoded (about 50 bytes). Only the count and a write buffer stay in
/// memory. A write that fails is remembered and makes every later read an error, so a check never judges
/// a history with a hole in it.
pub(super) struct HistorySpill {
    out: Option<std::io::BufWriter<std::fs::File>>,
    len: u64,
    failed: Option<String>,
}

impl Default for HistorySpill {
    fn default() -> Self {
        let (out, failed) = match spill_file() {
            Ok(f) => (Some(std::io::BufWriter::new(f)), None),
            Err(e) => (None, Some(e)),
        };
        HistorySpill {
            out,
            len: 0,
            failed,
        }
    }
}

/// A new file in the temporary directory, already unlinked.
fn spill_file() -> Result<std::fs::File, String> {
    let path = std::env::temp_dir().join(format!(
        "squall-history-{}-{:016x}.bin",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot keep the history in {}: {e}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

impl HistorySpill {
    /// Events recorded so far.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one event.
    pub(super) fn push(&mut self, event: &OpEvent) {
        self.len += 1;
        if self.failed.is_some() {
            return;
        }
        if let Some(out) = &mut self.out
            && let Err(e) = bincode::serialize_into(out, event)
        {
            self.failed = Some(format!(
                "the history could not be kept on disk after {} events ({e})",
                self.len - 1
            ));
        }
    }

    /// Every event recorded, in order.
    pub(super) fn read_all(&mut self) -> Result<Vec<OpEvent>, String> {
        use std::io::{Seek as _, Write as _};
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(out) = &mut self.out else {
            return Ok(Vec::new());
        };
        out.flush()
            .map_err(|e| format!("the history could not be written out ({e})"))?;
        let mut file = out
            .get_ref()
            .try_clone()
            .map_err(|e| format!("the history cannot be read back ({e})"))?;
        // The clone shares the write position: read from the start, then put it back at the end.
        let read = (|| {
            file.rewind()?;
            let mut input = std::io::BufReader::new(&file);
            let mut events = Vec::with_capacity(self.len as usize);
            for _ in 0..self.len {
                events.push(bincode::deserialize_from(&mut input).map_err(std::io::Error::other)?);
            }
            Ok::<_, std::io::Error>(events)
        })();
        let back = file.seek(std::io::SeekFrom::End(0));
        let events = read.map_err(|e| format!("the history cannot be read back ({e})"))?;
        back.map_err(|e| format!("the history cannot be read back ({e})"))?;
        Ok(events)
    }
}

#[cfg(test)]
mod spill_tests {
    use super::*;
    use crate::check::sim::{SimSpec, simulate};

    #[test]
    fn the_history_on_disk_reads_back_whole_and_in_order_between_appends() {
        let history = simulate(SimSpec {
            ops: 3_000,
            clients: 8,
            keys: 5,
            info: 0.05,
            stale_reads: 0.0,
            seed: 11,
        });
        let mut spill = HistorySpill::default();
        assert_eq!(spill.read_all().unwrap(), vec![]);
        for (i, e) in history.iter().enumerate() {
            spill.push(e);
            if i % 1_000 == 7 {
                // A check in the middle of the session, then more appends after it.
                assert_eq!(spill.read_all().unwrap(), history[..=i]);
            }
        }
        assert_eq!(spill.len(), history.len() as u64);
        assert_eq!(spill.read_all().unwrap(), history);
    }
}
