//! The seeded random nemesis: at random intervals it injects a random fault of the kinds a scenario allows,
//! for a random time, never taking down more nodes at once than the scenario permits. Modelled on Jepsen's
//! combined nemesis (jepsen.nemesis.combined: a mix of partition, kill, pause, clock and packet faults on a
//! schedule, 10 s between operations by default). Pure: the schedule is a function of the seed.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Step, fmt_duration};
use crate::command::{
    ClockAction, Command, FaultCmd, FaultKind, FaultTarget, PartitionShape, PowerTarget, Target,
};

/// One kind of fault the nemesis may choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NemesisKind {
    /// SIGKILL a node (`kill N`), restarted when the fault ends.
    Kill,
    /// SIGSTOP a node (`pause N`), resumed when the fault ends.
    Pause,
    /// Split the cluster with a named shape (halves, random-halves, bridge, ring).
    Partition,
    /// Cut every link of one node.
    Isolate,
    /// A one-way cut: a node that can send but not receive, or the converse.
    OneWay,
    /// Added latency on one node's links.
    Delay,
    /// Frame loss on one node's links.
    Loss,
    /// A power cut of one node (needs `disk-faults`), restarted when the fault ends.
    Powercut,
    /// A clock jump on one node.
    Clock,
}

impl NemesisKind {
    /// Every kind, in the order scenario files name them.
    pub const ALL: [NemesisKind; 9] = [
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::Partition,
        NemesisKind::Isolate,
        NemesisKind::OneWay,
        NemesisKind::Delay,
        NemesisKind::Loss,
        NemesisKind::Powercut,
        NemesisKind::Clock,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Kill => "kill",
            NemesisKind::Pause => "pause",
            NemesisKind::Partition => "partition",
            NemesisKind::Isolate => "isolate",
            NemesisKind::OneWay => "one-way",
            NemesisKind::Delay => "delay",
            NemesisKind::Loss => "loss",
            NemesisKind::Powercut => "powercut",
            NemesisKind::Clock => "clock",
        }
    }

    /// Parses a scenario file's name for a kind.
    pub fn from_name(s: &str) -> Option<NemesisKind> {
        NemesisKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// True for kinds that take a node down (counted against `max-down`).
    pub fn takes_node_down(self) -> bool {
        matches!(
            self,
            NemesisKind::Kill | NemesisKind::Pause | NemesisKind::Powercut
        )
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scenario's random nemesis.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisSpec {
    /// The kinds it chooses from, uniformly.
    pub kinds: Vec<NemesisKind>,
    /// Time between the start of one fault and the next, drawn uniformly from this range.
    pub interval: (Duration, Duration),
    /// How long each fault lasts, drawn uniformly from this range.
    pub fault_duration: (Duration, Duration),
    /// At most this many nodes killed, paused or powered off at once.
    pub max_down: u64,
    /// First fault no earlier than this.
    pub start: Duration,
}

fn draw(rng: &mut StdRng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    let ms = rng.random_range(lo.as_millis() as u64..=hi.as_millis() as u64);
    Duration::from_millis(ms)
}

impl NemesisSpec {
    /// One line naming every setting.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        format!(
            "kinds {} · interval {}..{} · fault duration {}..{} · max-down {} · from {}",
            kinds.join(","),
            fmt_duration(self.interval.0),
            fmt_duration(self.interval.1),
            fmt_duration(self.fault_duration.0),
            fmt_duration(self.fault_duration.1),
            self.max_down,
            fmt_duration(self.start),
        )
    }

    /// The schedule `seed` expands into for a cluster of `nodes` and a fault phase of `duration`: steps in
    /// time order, each with the time it is undone. A fault never outlasts the fault phase (the final heal
    /// ends it), and at no instant are more than `max_down` nodes down because of the nemesis.
    pub fn schedule(&self, seed: u64, nodes: u64, duration: Duration) -> Vec<Step> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
        let mut steps: Vec<Step> = Vec::new();
        if self.kinds.is_empty() || nodes == 0 {
            return steps;
        }
        let mut t = self.start.max(draw(&mut rng, self.interval));
        while t < duration {
            let until = (t + draw(&mut rng, self.fault_duration)).min(duration);
            // Nodes down (by this schedule) at `t`, and which ones.
            let down: Vec<u64> = steps
                .iter()
                .filter(|s| s.until.is_some_and(|u| u > t))
                .filter_map(|s| down_node(&s.command))
                .collect();
            let allowed: Vec<NemesisKind> = self
                .kinds
                .iter()
                .copied()
                .filter(|k| !k.takes_node_down() || (down.len() as u64) < self.max_down)
                .collect();
            if !allowed.is_empty() {
                let kind = allowed[rng.random_range(0..allowed.len())];
                let up: Vec<u64> = (1..=nodes).filter(|n| !down.contains(n)).collect();
                if let Some(command) = command_for(kind, &up, nodes, &mut rng) {
                    steps.push(Step {
                        at: t,
                        command,
                        until: Some(until),
                        line: 0,
                    });
                }
            }
            t += draw(&mut rng, self.interval).max(Duration::from_millis(1));
        }
        steps
    }
}

/// The node a nemesis step takes down, if it is a kill, pause or power cut of a numbered node.
fn down_node(command: &Command) -> Option<u64> {
    match command {
        Command::Kill(Target::Node(n))
        | Command::Pause(Target::Node(n))
        | Command::PowerCut(PowerTarget::One(Target::Node(n)), _) => Some(*n),
        _ => None,
    }
}

fn command_for(kind: NemesisKind, up: &[u64], nodes: u64, rng: &mut StdRng) -> Option<Command> {
    let pick = |rng: &mut StdRng| {
        up.get(rng.random_range(0..up.len().max(1)))
            .copied()
            .map(Target::Node)
    };
    let any = |rng: &mut StdRng| rng.random_range(1..=nodes);
    let fault = |target, kind| Command::Fault(FaultCmd::new(target, kind));
    Some(match kind {
        NemesisKind::Kill => Command::Kill(pick(rng)?),
        NemesisKind::Pause => Command::Pause(pick(rng)?),
        NemesisKind::Powercut => Command::PowerCut(PowerTarget::One(pick(rng)?), None),
        NemesisKind::Partition => {
            let shapes: &[PartitionShape] = if nodes >= 3 {
                &[
                    PartitionShape::Halves,
                    PartitionShape::RandomHalves,
                    PartitionShape::Bridge,
                    PartitionShape::Ring,
                ]
            } else {
                &[PartitionShape::Halves, PartitionShape::RandomHalves]
            };
            let shape = shapes[rng.random_range(0..shapes.len())].clone();
            fault(FaultTarget::Shape(shape), FaultKind::Cut)
        }
        NemesisKind::Isolate => fault(FaultTarget::Node(Target::Node(any(rng))), FaultKind::Cut),
        NemesisKind::OneWay => {
            let n = Target::Node(any(rng));
            let target = if rng.random_bool(0.5) {
                FaultTarget::To(n)
            } else {
                FaultTarget::From(n)
            };
            fault(target, FaultKind::Cut)
        }
        NemesisKind::Delay => {
            let ms = [50, 100, 200, 500][rng.random_range(0..4)];
            let n = Target::Node(any(rng));
            fault(
                FaultTarget::Node(n),
                FaultKind::Delay {
                    delay: Duration::from_millis(ms),
                    jitter: None,
                },
            )
        }
        NemesisKind::Loss => {
            let pct = [10.0, 30.0, 50.0][rng.random_range(0..3)];
            let n = Target::Node(any(rng));
            fault(FaultTarget::Node(n), FaultKind::Loss(pct))
        }
        NemesisKind::Clock => {
            let s: i64 = [5, 30, 300][rng.random_range(0..3)];
            let sign = if rng.random_bool(0.5) { 1 } else { -1 };
            Command::Clock(Target::Node(any(rng)), ClockAction::Jump(sign * s * 1000))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kinds: &[NemesisKind], max_down: u64) -> NemesisSpec {
        NemesisSpec {
            kinds: kinds.to_vec(),
            interval: (Duration::from_secs(1), Duration::from_secs(3)),
            fault_duration: (Duration::from_secs(2), Duration::from_secs(6)),
            max_down,
            start: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let s = spec(&NemesisKind::ALL, 1);
        let a = s.schedule(7, 5, Duration::from_secs(60));
        assert_eq!(a, s.schedule(7, 5, Duration::from_secs(60)));
        assert_ne!(a, s.schedule(8, 5, Duration::from_secs(60)));
        assert!(a.len() >= 15, "a minute at 1–3 s intervals: {a:?}");
    }

    #[test]
    fn never_more_nodes_down_than_allowed_and_never_past_the_fault_phase() {
        for seed in 0..200 {
            for max_down in 0..3 {
                let s = spec(
                    &[NemesisKind::Kill, NemesisKind::Pause, NemesisKind::Delay],
                    max_down,
                );
                let end = Duration::from_secs(40);
                let steps = s.schedule(seed, 5, end);
                for st in &steps {
                    assert!(st.at >= s.start && st.at < end, "seed {seed}: {st:?}");
                    assert!(st.until.unwrap() <= end, "seed {seed}: {st:?}");
                    let down_then: Vec<u64> = steps
                        .iter()
                        .filter(|o| o.at <= st.at && o.until.unwrap() > st.at)
                        .filter_map(|o| down_node(&o.command))
                        .collect();
                    assert!(
                        down_then.len() as u64 <= max_down,
                        "seed {seed} max-down {max_down}: {down_then:?} down at {:?}",
                        st.at
                    );
                    let mut dedup = down_then.clone();
                    dedup.sort();
                    dedup.dedup();
                    assert_eq!(
                        dedup.len(),
                        down_then.len(),
                        "seed {seed}: a node downed twice"
                    );
                }
            }
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in NemesisKind::ALL {
            assert_eq!(NemesisKind::from_name(k.name()), Some(k));
        }
        assert_eq!(NemesisKind::from_name("meteor"), None);
    }
}
