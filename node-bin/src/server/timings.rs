//! Where one write's time goes on this node, stage by stage, measured with timestamps the node takes itself
//! (no profiler): the persist thread's queue and write, the leader's AppendEntries round trips, and for each
//! client write the leader proposed, how long until its own copy was durable, until it committed, and until
//! it was answered. Each stage keeps its last [`SAMPLES`] durations; `squall bench` reads them through the
//! control API (`write_path`) and prints them beside the client's own latency.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::raft::Index;
use crate::rpc::StageTiming;

/// Durations kept per stage.
pub(super) const SAMPLES: usize = 8192;

/// Proposals older than this are forgotten without a sample (a leader that lost office never commits them).
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// Recent durations of one stage, in microseconds.
#[derive(Default)]
struct Stage(VecDeque<u64>);

impl Stage {
    fn add(&mut self, d: Duration) {
        if self.0.len() == SAMPLES {
            self.0.pop_front();
        }
        self.0
            .push_back(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    fn figures(&self, stage: &str) -> StageTiming {
        let mut v: Vec<u64> = self.0.iter().copied().collect();
        v.sort_unstable();
        // Nearest-rank percentile.
        let at = |q: f64| -> u64 {
            if v.is_empty() {
                return 0;
            }
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[rank - 1]
        };
        StageTiming {
            stage: stage.to_string(),
            count: v.len() as u64,
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
        }
    }
}

/// A client write the leader proposed and has not answered yet.
struct Proposed {
    at: Instant,
    durable: bool,
}

/// The write-path timings of one node.
#[derive(Default)]
pub(super) struct Timings {
    persist_queue: Stage,
    persist_write: Stage,
    round_trip: Stage,
    leader_durable: Stage,
    commit: Stage,
    apply: Stage,
    server: Stage,
    proposed: BTreeMap<Index, Proposed>,
}

impl Timings {
    /// A job waited `waited` for the persist thread, whose write took `wrote` (including the fdatasync).
    pub(super) fn persist(&mut self, waited: Duration, wrote: Duration) {
        self.persist_queue.add(waited);
        self.persist_write.add(wrote);
    }

    /// An AppendEntries with entries was answered after `rtt`.
    pub(super) fn round_trip(&mut self, rtt: Duration) {
        self.round_trip.add(rtt);
    }

    /// This node, as leader, proposed a client write at `index`.
    pub(super) fn proposed(&mut self, index: Index) {
        let now = Instant::now();
        while let Some(entry) = self.proposed.first_entry() {
            if now.duration_since(entry.get().at) < FORGET_AFTER {
                break;
            }
            entry.remove();
        }
        self.proposed.insert(
            index,
            Proposed {
                at: now,
                durable: false,
            },
        );
    }

    /// Entries up to `index` are durable on this node.
    pub(super) fn persisted_to(&mut self, index: Index) {
        let now = Instant::now();
        for p in self.proposed.range_mut(..=index).map(|(_, p)| p) {
            if !p.durable {
                p.durable = true;
                self.leader_durable.add(now.duration_since(p.at));
            }
        }
    }

    /// The write at `index` committed and is being applied; returns when it was proposed, if here.
    pub(super) fn committed(&mut self, index: Index) -> Option<Instant> {
        let p = self.proposed.remove(&index)?;
        self.commit.add(p.at.elapsed());
        Some(p.at)
    }

    /// The write proposed at `proposed` was applied in `apply` and answered.
    pub(super) fn answered(&mut self, proposed: Instant, apply: Duration) {
        self.apply.add(apply);
        self.server.add(proposed.elapsed());
    }

    /// The figures of every stage, in write-path order.
    pub(super) fn figures(&self) -> Vec<StageTiming> {
        vec![
            self.persist_queue.figures("persist queue"),
            self.persist_write.figures("persist write"),
            self.round_trip.figures("append round trip"),
            self.leader_durable.figures("leader durable"),
            self.commit.figures("commit"),
            self.apply.figures("apply"),
            self.server.figures("server"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = Stage::default();
        for us in 1..=100 {
            s.add(Duration::from_micros(us));
        }
        let f = s.figures("x");
        assert_eq!((f.count, f.p50_us, f.p90_us, f.p99_us), (100, 50, 90, 99));
        assert_eq!(Stage::default().figures("y").count, 0);
    }

    #[test]
    fn a_write_is_timed_from_proposal_to_answer() {
        let mut t = Timings::default();
        t.proposed(7);
        t.persisted_to(7);
        t.persisted_to(7);
        let at = t.committed(7).expect("proposed here");
        t.answered(at, Duration::from_micros(3));
        let f = t.figures();
        let count = |name: &str| f.iter().find(|s| s.stage == name).expect("stage").count;
        assert_eq!(count("leader durable"), 1, "counted once");
        assert_eq!(
            (count("commit"), count("apply"), count("server")),
            (1, 1, 1)
        );
        assert!(t.committed(7).is_none(), "forgotten once committed");
    }
}
