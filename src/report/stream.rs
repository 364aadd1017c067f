//! What the report's charts need, gathered as the events stream past with memory bounded whatever the log's
//! length: the latency plot's points as an even sample ([`PointSample`]), per-second throughput and
//! quantiles finished as each second closes ([`SecondsBuilder`]), and the lin-kv history paired on the fly
//! ([`LivePairs`]), only its operations in flight kept. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

use crate::check::{OpEvent, OpType, Outcome};

/// One completed operation as the latency plot shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpPoint {
    /// When it was invoked, in seconds since the session started.
    pub at_s: f64,
    /// Invocation to completion, in milliseconds.
    pub latency_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
}

/// Latency quantiles and throughput of one second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Second {
    /// Second since the session started.
    pub second: u64,
    /// Operations completed `ok` in it.
    pub ok: u64,
    /// Median latency of those, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// At most this many points in the latency plot; beyond it `ok` points are thinned evenly (every `fail` and
/// `info` is kept), so a long session still gives a file a browser opens quickly.
pub const MAX_POINTS: usize = 20_000;

/// How many points of one outcome class (`ok`, or `fail` and `info`) the sample keeps at most; the chart
/// draws at most [`MAX_POINTS`] of them, so up to that many of each class the chart is the
/// one drawn from every operation.
pub const SAMPLE_PER_CLASS: usize = MAX_POINTS;

/// A second's latencies are kept until events this much later than its end have been seen; an `ok`
/// operation that completes later still counts in its second's throughput and maximum, but not in its
/// quantiles. Client calls have deadlines of seconds, so this is never reached in squall's own workloads.
pub const LATE_MS: u64 = 60_000;

/// One outcome class of the sample: every `stride`-th point, the stride doubling (and every other kept point
/// dropped) whenever more than [`SAMPLE_PER_CLASS`] are kept, so the sample stays even over the whole run.
#[derive(Clone, Debug)]
struct Class {
    kept: Vec<(u64, OpPoint)>,
    seen: u64,
    stride: u64,
}

impl Default for Class {
    fn default() -> Self {
        Class {
            kept: Vec::new(),
            seen: 0,
            stride: 1,
        }
    }
}

impl Class {
    fn push(&mut self, p: OpPoint) {
        let n = self.seen;
        self.seen += 1;
        if !n.is_multiple_of(self.stride) {
            return;
        }
        self.kept.push((n, p));
        if self.kept.len() > SAMPLE_PER_CLASS {
            self.stride *= 2;
            let stride = self.stride;
            self.kept.retain(|(n, _)| n.is_multiple_of(stride));
        }
    }
}

/// The latency plot's points: all of them while each outcome class has at most [`SAMPLE_PER_CLASS`], else an
/// even sample of the class that has more.
#[derive(Clone, Debug, Default)]
pub struct PointSample {
    ok: Class,
    other: Class,
}

impl PointSample {
    /// Takes one completed operation.
    pub fn push(&mut self, p: OpPoint) {
        if p.outcome == Outcome::Ok {
            self.ok.push(p);
        } else {
            self.other.push(p);
        }
    }

    /// Operations taken in all.
    pub fn total(&self) -> usize {
        (self.ok.seen + self.other.seen) as usize
    }

    /// The points kept, in the order they were taken within each class, `ok` first.
    pub fn into_points(self) -> Vec<OpPoint> {
        self.ok
            .kept
            .into_iter()
            .chain(self.other.kept)
            .map(|(_, p)| p)
            .collect()
    }
}

/// Throughput and latency quantiles per second of `ok` operations, by the second they were invoked in, each
/// second finished (its latencies dropped) once the log has moved [`LATE_MS`] past it. One HDR histogram
/// (about 190 KB with these bounds) is reused from second to second.
pub struct SecondsBuilder {
    open: BTreeMap<u64, Vec<u64>>,
    done: Vec<Second>,
    histogram: Histogram<u64>,
}

impl Default for SecondsBuilder {
    fn default() -> Self {
        SecondsBuilder {
            open: BTreeMap::new(),
            done: Vec::new(),
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        }
    }
}

impl SecondsBuilder {
    /// One `ok` operation invoked at `at_s` (seconds since the start) that took `latency_ms`.
    pub fn add(&mut self, at_s: f64, latency_ms: f64) {
        let second = at_s as u64;
        let us = (latency_ms * 1e3).max(1.0) as u64;
        match self.done.binary_search_by_key(&second, |s| s.second) {
            // Its second was already finished: it still counts, its latency only in the maximum.
            Ok(i) => {
                let s = &mut self.done[i];
                s.ok += 1;
                s.max_ms = s.max_ms.max(us as f64 / 1e3);
            }
            Err(_) => self.open.entry(second).or_default().push(us),
        }
    }

    /// The log has reached `now_ms`: finishes every second that ended [`LATE_MS`] before it.
    pub fn advance(&mut self, now_ms: u64) {
        let until = now_ms.saturating_sub(LATE_MS) / 1000;
        while let Some(entry) = self.open.first_entry() {
            if (*entry.key() + 1) > until {
                break;
            }
            let (second, latencies) = entry.remove_entry();
            self.finish_one(second, latencies);
        }
    }

    fn finish_one(&mut self, second: u64, latencies_us: Vec<u64>) {
        let h = &mut self.histogram;
        h.reset();
        for us in latencies_us {
            h.saturating_record(us);
        }
        let s = Second {
            second,
            ok: h.len(),
            p50_ms: h.value_at_quantile(0.5) as f64 / 1e3,
            p95_ms: h.value_at_quantile(0.95) as f64 / 1e3,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1e3,
            max_ms: h.max() as f64 / 1e3,
        };
        let at = self.done.partition_point(|d| d.second < second);
        self.done.insert(at, s);
    }

    /// Every second, ascending.
    pub fn finish(mut self) -> Vec<Second> {
        let open = std::mem::take(&mut self.open);
        for (second, latencies) in open {
            self.finish_one(second, latencies);
        }
        self.done
    }
}

/// The lin-kv history paired as it streams past, for the charts: each invocation waits for its process's
/// completion, so only the operations in flight are kept. The strict pairing (every rule of
/// [`crate::check::history::pair`]) is the checker's, one key at a time.
#[derive(Clone, Debug, Default)]
pub struct LivePairs {
    pending: HashMap<u64, OpEvent>,
    /// Invocations seen.
    pub invocations: u64,
}

impl LivePairs {
    /// Takes one history event; returns the completed operation's point when `e` completes one.
    pub fn push(&mut self, e: &OpEvent) -> Option<OpPoint> {
        if e.kind == OpType::Invoke {
            self.invocations += 1;
            self.pending.insert(e.process, *e);
            return None;
        }
        let invoked = self.pending.remove(&e.process)?;
        if invoked.key != e.key || invoked.f() != e.f() || e.time < invoked.time {
            return None;
        }
        Some(OpPoint {
            at_s: invoked.time as f64 / 1e9,
            latency_ms: (e.time - invoked.time) as f64 / 1e6,
            outcome: match e.kind {
                OpType::Ok => Outcome::Ok,
                OpType::Fail => Outcome::Fail,
                _ => Outcome::Info,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(i: u64, outcome: Outcome) -> OpPoint {
        OpPoint {
            at_s: i as f64 / 100.0,
            latency_ms: 1.0 + (i % 7) as f64,
            outcome,
        }
    }

    #[test]
    fn the_sample_keeps_everything_up_to_its_bound_then_an_even_bounded_sample() {
        let mut s = PointSample::default();
        for i in 0..SAMPLE_PER_CLASS as u64 {
            s.push(point(i, Outcome::Ok));
        }
        s.push(point(0, Outcome::Fail));
        assert_eq!(s.total(), SAMPLE_PER_CLASS + 1);
        assert_eq!(s.clone().into_points().len(), SAMPLE_PER_CLASS + 1);
        // Ten times more: still bounded, and spread evenly over the whole run.
        for i in SAMPLE_PER_CLASS as u64..10 * SAMPLE_PER_CLASS as u64 {
            s.push(point(i, Outcome::Ok));
        }
        let kept = s.into_points();
        let oks: Vec<&OpPoint> = kept.iter().filter(|p| p.outcome == Outcome::Ok).collect();
        assert!(
            oks.len() <= SAMPLE_PER_CLASS && oks.len() > SAMPLE_PER_CLASS / 4,
            "{}",
            oks.len()
        );
        let last = oks.last().unwrap().at_s;
        let end = (10 * SAMPLE_PER_CLASS) as f64 / 100.0;
        assert!(
            last > end * 0.95,
            "the sample reaches the end: {last} of {end}"
        );
        assert_eq!(kept.len() - oks.len(), 1, "the fail is kept");
    }

    #[test]
    fn seconds_finished_as_the_log_moves_on_equal_those_of_the_whole() {
        // Operations in time order, some completing a few seconds after they began.
        let ops: Vec<(f64, f64)> = (0..30_000u64)
            .map(|i| (i as f64 / 100.0, 0.5 + (i * 7919 % 3000) as f64))
            .collect();
        let mut whole = SecondsBuilder::default();
        for &(at, lat) in &ops {
            whole.add(at, lat);
        }
        let whole = whole.finish();
        let mut streamed = SecondsBuilder::default();
        let mut most_open = 0;
        for &(at, lat) in &ops {
            streamed.add(at, lat);
            streamed.advance(((at * 1e3) + lat) as u64);
            most_open = most_open.max(streamed.open.len());
        }
        assert_eq!(streamed.finish(), whole);
        assert!(most_open <= LATE_MS as usize / 1000 + 5, "{most_open}");
    }
}
