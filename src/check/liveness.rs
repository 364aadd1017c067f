//! Liveness, judged apart from safety (as TigerBeetle's simulator does): whenever the cluster is healthy
//! (every running node connected, a majority up, no fault in force) and outside a declared
//! "beyond tolerance" window, a leader must exist within a bound, and, while clients ask for operations, an
//! operation must complete (a commit, or an acknowledged read) within it. Progress is judged by what was
//! asked of the cluster: with no workload, or with the workload switched off, a leader is all that is owed
//! (issue 19, item 0b: a healthy cluster with nothing to commit was judged not live). Also measures
//! recovery: fault end → first progress (or a leader, when nothing is asked), and leader lost → new leader.
//!
//! Two findings name a cause rather than only a symptom:
//! - **Livelock** (issue 23), judged whether or not a fault is in force (outside excused windows): within one
//!   bound, the highest term (a Raft term, or a Paxos ballot) rose at least [`LIVELOCK_RISES`] times and
//!   either the leadership (who leads, at which term; or nobody) changed at least [`LIVELOCK_CHANGES`] times
//!   or every member ran with every link between them passing traffic (at most delayed, so no quorum was
//!   missing: [`Sample::connected`]), while fewer than [`LIVELOCK_FRACTION`] of the operations asked in that
//!   time were served.
//!   This is the shape of dueling proposers (Lamport, "Paxos Made Simple" §2.4: two proposers keep issuing
//!   higher ballots and none is chosen), or of a Raft election storm. Requiring the leadership to change, not
//!   only terms to rise, keeps out a node cut off alone that raises its ballot again and again: it never wins
//!   phase 1 (or an election), so the leadership the majority agrees on (or its absence) stays as it was.
//! - **Data loss** (issue 18, F15): a failure found while nodes report that they lost data and are recovering
//!   ([`Liveness::note_data_loss`]) says which ones and what they wait for, so "no leader" after `wipe` of a
//!   majority reads as its cause, not as a bug.
//!
//! Recoveries are measured from the events' own times, not from the poll that happened to see them: a caller
//! that hands every event in with [`Liveness::event`] (the cluster as that event left it, at the event's
//! time) has "leader n1 lost" begin at the fault's `Performed` time (or, with no fault just before, at the
//! event that showed the leader gone) and end at the first status that shows a new leader, and a fault's
//! recovery end at the event that showed the first progress after it; its samples then only judge the
//! obligations. Without events, the samples measure recoveries too (at their coarser times).
//!
//! **Host outages** (`--hosts`, issue 24): while a host's agent does not answer, squall cannot see that host's
//! nodes, so "no leader" may only mean "no leader squall could see". As Jepsen does with an operation whose
//! outcome is unknown (`:info`), such information is indeterminate, not evidence against the cluster: a failure
//! whose window overlaps a host outage ([`Liveness::host_unreachable`] to [`Liveness::host_back`], taken to
//! begin [`UNSEEN_BEFORE`] before it was declared, since silence takes that long to show) is *unknown*, naming
//! the outage ([`Liveness::judged`]), never invalid. A failure while every host was observed stays invalid.
//!
//! Pure: the caller reports time passing with [`Liveness::observe`], events with [`Liveness::event`], faults
//! with [`Liveness::fault_performed`] and fault ends with [`Liveness::fault_ended`]; time is the session's, so a
//! replayed stream gives the same verdict.

use std::collections::VecDeque;
use std::time::Duration;

/// How many times the highest term must rise within one bound for a livelock (with progress stalled).
pub const LIVELOCK_RISES: usize = 5;

/// How many times the leadership (who leads at which term, or nobody) must change within that bound too:
/// what tells dueling leaders from a node alone (or a minority) raising its term without a quorum.
pub const LIVELOCK_CHANGES: usize = 2;

/// Below this share of the operations asked within one bound (the workload's rate × the bound), progress
/// counts as stalled for the livelock judgement.
pub const LIVELOCK_FRACTION: f64 = 0.25;

/// How long before a host was declared unreachable its nodes may already have gone unseen: its agent must miss
/// a ping of 700 ms, sent every 250 ms (`remote::fleet`), so silence shows within 950 ms.
pub const UNSEEN_BEFORE: Duration = Duration::from_secs(1);

/// A period in which squall could not observe a host's nodes (`--hosts`): from the host's `unreachable` to its
/// `back` (`to: None` while it has not come back, or when it was lost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The host's label.
    pub host: String,
    /// The nodes it runs.
    pub nodes: Vec<u64>,
    /// When it was declared unreachable, from the start of the session.
    pub from: Duration,
    /// When it was back; `None` while it has not been.
    pub to: Option<Duration>,
}

impl Outage {
    /// Whether squall could not see this host's nodes at some time within `from..=to` (the outage taken to begin
    /// [`UNSEEN_BEFORE`] before it was declared).
    pub fn overlaps(&self, from: Duration, to: Duration) -> bool {
        self.from.saturating_sub(UNSEEN_BEFORE) <= to && self.to.is_none_or(|end| end >= from)
    }
}

/// A period during which liveness is not expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Excused {
    /// Start, from the start of the session.
    pub from: Duration,
    /// End.
    pub to: Duration,
}

/// The cluster as one poll saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When, from the start of the session.
    pub at: Duration,
    /// Every running node is connected to every other, a majority is up, and no fault is in force.
    pub healthy: bool,
    /// The leader a majority of nodes agree on, if any.
    pub leader: Option<u64>,
    /// The highest commit index any node reports.
    pub commit_index: u64,
    /// Whether clients are asking for operations (the workload runs); when not, no commit is owed.
    pub asked: bool,
    /// Client operations acknowledged so far (cumulative): a read served counts as progress, since it
    /// commits nothing.
    pub served: u64,
    /// Whether the nodes report their leader. A kind that reports none (a Maelstrom node that does not use
    /// the destination `squall`) owes no leader: only progress is judged, by completed operations while they
    /// are asked for, and nothing while they are not.
    pub reports_leader: bool,
    /// The highest term (or packed Paxos ballot, see `squall_node::paxos::Ballot::pack`) any node reports;
    /// 0 for a kind that reports none.
    pub term: u64,
    /// Who leads and at which term (or packed ballot) as far as anything has told, the statuses or a node's
    /// own feed ("n2 leads ballot 494.2", seen between two polls): `(None, highest term)` when nobody is known
    /// to lead. The livelock judgement counts its changes.
    pub leadership: (Option<u64>, u64),
    /// Every member runs and every link between them passes traffic, at most slowed by a delay: no quorum is
    /// missing, so terms that keep rising while nothing is served are a livelock even with no leader ever
    /// seen (proposers preempting each other in phase 1).
    pub connected: bool,
    /// Operations per second the workload asks for (0 when none): the rate a livelock's progress is measured
    /// against.
    pub rate: u32,
}

/// A healthy period in which the cluster made no progress within the bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// When the obligation began (the cluster became healthy, or last made progress).
    pub from: Duration,
    /// When the bound ran out.
    pub to: Duration,
    /// What was missing: no leader, or a leader but no commit.
    pub what: String,
}

/// One measured recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// What happened: the fault that ended, or "leader n2 lost".
    pub what: String,
    /// When it happened.
    pub from: Duration,
    /// When the cluster recovered (a commit after a fault ended, a new leader after one was lost);
    /// `None` while it has not.
    pub to: Option<Duration>,
}

impl Recovery {
    /// How long recovery took, if it has happened.
    pub fn took(&self) -> Option<Duration> {
        self.to.map(|t| t.saturating_sub(self.from))
    }
}

/// The liveness tracker.
#[derive(Clone, Debug)]
pub struct Liveness {
    bound: Duration,
    excused: Vec<Excused>,
    /// Start of the current obligation (healthy, not excused, no progress since).
    owed_since: Option<Duration>,
    commit_at_start: u64,
    failed_this_period: bool,
    served_at_start: u64,
    leader: Option<u64>,
    last_commit: u64,
    last_served: u64,
    /// Healthy time with a leader while no operation was asked: no commit was owed then.
    idle: Duration,
    last_at: Option<Duration>,
    failures: Vec<Failure>,
    recoveries: Vec<Recovery>,
    /// Samples within the last bound, for the livelock judgement: `(at, term, served, leadership changed
    /// here, term rose here, connected)`.
    window: VecDeque<(Duration, u64, u64, bool, bool, bool)>,
    /// The last leadership seen, `(leader, its term)` (`(None, 0)` for nobody); `None` before any sample.
    last_leadership: Option<(Option<u64>, u64)>,
    /// Whether terms are Paxos ballots (for the evidence's words).
    paxos: bool,
    /// What the nodes that lost data wait for, as the latest poll told ([`Liveness::note_data_loss`]).
    data_loss: Vec<String>,
    /// Recoveries are measured from events ([`Liveness::event`]), not from samples.
    by_events: bool,
    /// The leader, highest commit index and operations served as the last event left them.
    ev_leader: Option<u64>,
    ev_commit: u64,
    ev_served: u64,
    /// When the last fault was performed while a leader was known: where a leader loss it caused begins.
    fault_at: Option<Duration>,
    /// When a fault phase ended that left nothing to heal ([`Liveness::nothing_to_heal`]).
    quiet_end: Option<Duration>,
    /// The host outages so far, in the order they began.
    outages: Vec<Outage>,
}

/// A liveness failure that cannot be held against the cluster: squall could not observe the nodes during it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unobserved<'a> {
    /// The failure as the samples saw it.
    pub failure: &'a Failure,
    /// The host outages that overlap it.
    pub outages: Vec<&'a Outage>,
}

impl Liveness {
    /// A tracker that allows `bound` of healthy time without progress, except within `excused` windows.
    pub fn new(bound: Duration, excused: Vec<Excused>) -> Self {
        Liveness {
            bound,
            excused,
            owed_since: None,
            commit_at_start: 0,
            failed_this_period: false,
            served_at_start: 0,
            leader: None,
            last_commit: 0,
            last_served: 0,
            idle: Duration::ZERO,
            last_at: None,
            failures: Vec::new(),
            recoveries: Vec::new(),
            window: VecDeque::new(),
            last_leadership: None,
            paxos: false,
            data_loss: Vec::new(),
            by_events: false,
            ev_leader: None,
            ev_commit: 0,
            ev_served: 0,
            fault_at: None,
            quiet_end: None,
            outages: Vec::new(),
        }
    }

    /// Host `host` (running `nodes`) stopped answering at `at`: its nodes cannot be observed until
    /// [`Liveness::host_back`]. A host already unreachable (or lost) stays so from its first report.
    pub fn host_unreachable(&mut self, at: Duration, host: &str, nodes: &[u64]) {
        if !self
            .outages
            .iter()
            .any(|o| o.host == host && o.to.is_none())
        {
            self.outages.push(Outage {
                host: host.to_string(),
                nodes: nodes.to_vec(),
                from: at,
                to: None,
            });
        }
    }

    /// Host `host` is back at `at`, with its nodes as its agent kept them: its outage ends.
    pub fn host_back(&mut self, at: Duration, host: &str) {
        for o in self
            .outages
            .iter_mut()
            .filter(|o| o.host == host && o.to.is_none())
        {
            o.to = Some(at);
        }
    }

    /// Every host outage so far, in the order they began.
    pub fn outages(&self) -> &[Outage] {
        &self.outages
    }

    /// The failures split by what they say: those found while every host was observed (held against the
    /// cluster: invalid), and those whose window overlaps a host outage (unknown, with the outages).
    pub fn judged(&self) -> (Vec<&Failure>, Vec<Unobserved<'_>>) {
        let mut held = Vec::new();
        let mut unobserved = Vec::new();
        for f in &self.failures {
            let outages: Vec<&Outage> = self
                .outages
                .iter()
                .filter(|o| o.overlaps(f.from, f.to))
                .collect();
            if outages.is_empty() {
                held.push(f);
            } else {
                unobserved.push(Unobserved {
                    failure: f,
                    outages,
                });
            }
        }
        (held, unobserved)
    }

    /// A fault was performed at `at` (its `Performed` event's time). If the leader of that moment is then lost
    /// (within the bound), its recovery is measured from here: the fault is when leadership was lost, not the
    /// later moment a status showed it.
    pub fn fault_performed(&mut self, at: Duration) {
        let leader = if self.by_events {
            self.ev_leader
        } else {
            self.leader
        };
        if leader.is_some() {
            self.fault_at = Some(at);
        }
    }

    /// The cluster as event `s.at` left it (its own time; `s.leader`, `s.commit_index`, `s.served`, `s.asked`
    /// and `s.reports_leader` are read, the rest ignored): measures recoveries at that time. From the first
    /// call on, samples ([`Liveness::observe`]) no longer measure recoveries.
    pub fn event(&mut self, s: &Sample) {
        self.by_events = true;
        let progressed = s.commit_index > self.ev_commit || s.served > self.ev_served;
        let has_leader = s.leader.is_some() || !s.reports_leader;
        let prev = self.ev_leader;
        self.track_recoveries(s.at, prev, s.leader, progressed || (has_leader && !s.asked));
        self.ev_leader = s.leader;
        self.ev_commit = self.ev_commit.max(s.commit_index);
        self.ev_served = self.ev_served.max(s.served);
    }

    /// Opens and closes recoveries for the cluster as seen at `at`: `prev` led before, `leader` leads now;
    /// `met`: progress since the last look (or a leader while nothing is asked), which ends the recoveries
    /// from faults that ended by then.
    fn track_recoveries(
        &mut self,
        at: Duration,
        prev: Option<u64>,
        leader: Option<u64>,
        met: bool,
    ) {
        if met {
            for r in self.recoveries.iter_mut().filter(|r| r.to.is_none()) {
                if !r.what.starts_with("leader") && r.from <= at {
                    r.to = Some(at);
                }
            }
        }
        let bound = self.bound;
        // The fault that struck the leader, if it came shortly before its loss showed.
        let struck = |fault_at: Option<Duration>| {
            fault_at.filter(|f| *f <= at && at.saturating_sub(*f) <= bound)
        };
        let open_leader = self
            .recoveries
            .iter()
            .any(|r| r.to.is_none() && r.what.starts_with("leader"));
        match (prev, leader) {
            (Some(old), None) => {
                let from = struck(self.fault_at.take()).unwrap_or(at);
                self.recoveries.push(Recovery {
                    what: format!("leader n{old} lost"),
                    from,
                    to: None,
                });
            }
            (Some(old), Some(new)) if old != new && !open_leader => {
                // Another leader showed with no moment between without one (the old one cut off while the
                // majority elected): measured from the fault that struck, when there was one.
                if let Some(from) = struck(self.fault_at.take()) {
                    self.recoveries.push(Recovery {
                        what: format!("leader n{old} lost"),
                        from,
                        to: Some(at),
                    });
                }
            }
            (_, Some(_)) => {
                for r in self.recoveries.iter_mut().filter(|r| r.to.is_none()) {
                    if r.what.starts_with("leader") {
                        r.to = Some(at);
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// Whether the nodes run Paxos: the evidence then names terms as ballots (`ballot 1.3`).
    pub fn set_paxos(&mut self, paxos: bool) {
        self.paxos = paxos;
    }

    /// The nodes that, as the latest poll shows, lost data and are recovering, one line each
    /// (`n2 lost data and is recovering: waiting for n3's term`); empty when none is. A failure found while
    /// any is names them.
    pub fn note_data_loss(&mut self, lines: Vec<String>) {
        self.data_loss = lines;
    }

    /// `what`, with the data loss in force named after it.
    fn with_cause(&self, what: String) -> String {
        if self.data_loss.is_empty() {
            what
        } else {
            format!("{what} (data loss: {})", self.data_loss.join("; "))
        }
    }

    /// Every liveness failure so far.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Healthy time with a leader during which no client operation was asked, so no commit was owed.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Every recovery measured so far, in the order they began.
    pub fn recoveries(&self) -> &[Recovery] {
        &self.recoveries
    }

    /// A fault (`what`, e.g. "partition bridge") was removed at `at`: measure the time to the next commit.
    pub fn fault_ended(&mut self, at: Duration, what: impl Into<String>) {
        self.recoveries.push(Recovery {
            what: format!("{} ended", what.into()),
            from: at,
            to: None,
        });
    }

    /// The fault phase ended at `at` with nothing in force, so the final heal ended nothing and is no
    /// recovery to time (tester7: `recovery 28ms (final heal, worst of 2)` for a heal that was a no-op). What
    /// is still owed then is owed by the end of the run all the same, as after a final heal that did
    /// something: [`Liveness::finish`] judges it.
    pub fn nothing_to_heal(&mut self, at: Duration) {
        self.quiet_end = Some(at);
    }

    /// The run ended at `at`. A recovery still owed then is a failure when it was owed for the whole bound, or
    /// when it is the final heal's (`fault_ended(_, "final heal")`), or was owed already when a fault phase
    /// that left nothing to heal ended ([`Liveness::nothing_to_heal`]): after the final heal the cluster must
    /// recover within the recovery period, and "final heal ended → not recovered" beside a `valid` verdict is
    /// what issue 19 found. A recovery that began less than the bound before the end (a leader lost a moment
    /// before the run stopped) is not judged, and one owed inside an excused window is not held against the
    /// cluster. Call once, after the last [`Liveness::observe`].
    pub fn finish(&mut self, at: Duration) {
        let bound = self.bound;
        let cause = |what: String| self.with_cause(what);
        let quiet_end = self.quiet_end;
        let owed: Vec<Failure> = self
            .recoveries
            .iter()
            .filter(|r| r.to.is_none() && !self.excused_at(r.from))
            .filter(|r| {
                at.saturating_sub(r.from) >= bound
                    || r.what == "final heal ended"
                    || quiet_end.is_some_and(|q| r.from <= q)
            })
            .map(|r| Failure {
                from: r.from,
                to: at,
                what: cause(format!("no recovery after {}", r.what)),
            })
            .collect();
        self.failures.extend(owed);
    }

    fn excused_at(&self, at: Duration) -> bool {
        self.excused.iter().any(|w| w.from <= at && at < w.to)
    }

    /// Takes one sample; returns the failure it reveals, if any (at most one per healthy period without
    /// progress).
    pub fn observe(&mut self, s: Sample) -> Option<Failure> {
        let progressed = s.commit_index > self.last_commit || s.served > self.last_served;
        // A kind that reports no leader owes none: the leader obligation counts as met, progress is judged.
        let has_leader = s.leader.is_some() || !s.reports_leader;
        // With nothing asked, a leader is all a recovery owes: there is nothing to commit.
        if !self.by_events {
            let prev = self.leader;
            self.track_recoveries(s.at, prev, s.leader, progressed || (has_leader && !s.asked));
        }
        if let Some(f) = self.livelock(&s) {
            self.failures.push(f.clone());
            self.leader = s.leader;
            self.last_commit = self.last_commit.max(s.commit_index);
            self.last_served = self.last_served.max(s.served);
            self.last_at = Some(s.at);
            return Some(f);
        }
        self.leader = s.leader;
        self.last_commit = self.last_commit.max(s.commit_index);
        self.last_served = self.last_served.max(s.served);
        let since_last = self
            .last_at
            .map_or(Duration::ZERO, |t| s.at.saturating_sub(t));
        self.last_at = Some(s.at);

        if !s.healthy || self.excused_at(s.at) {
            self.owed_since = None;
            self.failed_this_period = false;
            return None;
        }
        let Some(since) = self.owed_since else {
            self.owed_since = Some(s.at);
            self.commit_at_start = s.commit_index;
            self.served_at_start = s.served;
            return None;
        };
        let idle = has_leader && !s.asked;
        if idle {
            self.idle += since_last;
        }
        let progress = s.commit_index > self.commit_at_start || s.served > self.served_at_start;
        if has_leader && (progress || idle) {
            // Met (or nothing was asked, so a leader is all that is owed): a new obligation starts now (the
            // cluster must keep making progress).
            self.owed_since = Some(s.at);
            self.commit_at_start = s.commit_index;
            self.served_at_start = s.served;
            self.failed_this_period = false;
            return None;
        }
        if s.at.saturating_sub(since) > self.bound && !self.failed_this_period {
            self.failed_this_period = true;
            let what = if !s.reports_leader {
                "no operation completed (the nodes report no leader: progress is judged alone)"
                    .to_string()
            } else if s.leader.is_none() {
                "no leader".to_string()
            } else {
                format!(
                    "a leader but no commit past index {} and no operation served",
                    self.commit_at_start
                )
            };
            let f = Failure {
                from: since,
                to: s.at,
                what: self.with_cause(what),
            };
            self.failures.push(f.clone());
            return Some(f);
        }
        None
    }
}

impl Liveness {
    /// The livelock judgement for one sample (see the module docs); at most one failure per window: the window
    /// starts again after one is found.
    fn livelock(&mut self, s: &Sample) -> Option<Failure> {
        // Nobody leading is one state, whatever term has been reached meanwhile.
        let leadership = match s.leadership {
            (None, _) => (None, 0),
            known => known,
        };
        let won = self.last_leadership.is_some_and(|l| l != leadership);
        self.last_leadership = Some(leadership);
        if self.excused_at(s.at) || !s.asked || s.rate == 0 {
            self.window.clear();
            return None;
        }
        let rose = self.window.back().is_some_and(|w| s.term > w.1);
        self.window
            .push_back((s.at, s.term, s.served, won, rose, s.connected));
        while self
            .window
            .front()
            .is_some_and(|(at, ..)| s.at.saturating_sub(*at) > self.bound)
        {
            self.window.pop_front();
        }
        let &(from, first_term, first_served, ..) = self.window.front()?;
        let span = s.at.saturating_sub(from);
        // Judged only over a full bound (give or take one poll).
        if span + Duration::from_millis(200) < self.bound {
            return None;
        }
        let leaders = self.window.iter().filter(|w| w.3).count();
        let rises = self.window.iter().filter(|w| w.4).count();
        let connected = self.window.iter().all(|w| w.5);
        let served = s.served.saturating_sub(first_served);
        let asked = f64::from(s.rate) * span.as_secs_f64();
        if rises < LIVELOCK_RISES
            || (leaders < LIVELOCK_CHANGES && !connected)
            || served as f64 >= LIVELOCK_FRACTION * asked
        {
            return None;
        }
        self.window.clear();
        let what = format!(
            "livelock: {} rose {rises} times, from {} to {}, in {:.1} s (the leadership changed {leaders} times) while \
             {served} of about {asked:.0} asked operations were served",
            if self.paxos { "ballot" } else { "term" },
            term_number(self.paxos, first_term),
            term_number(self.paxos, s.term),
            span.as_secs_f64(),
        );
        Some(Failure {
            from,
            to: s.at,
            what: self.with_cause(what),
        })
    }
}

/// A term as a number (`4`), or a packed ballot as `round.proposer`.
fn term_number(paxos: bool, term: u64) -> String {
    if paxos {
        squall_node::paxos::Ballot::unpack(term).to_string()
    } else {
        term.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn sample(at: u64, healthy: bool, leader: Option<u64>, commit: u64) -> Sample {
        Sample {
            at: ms(at),
            healthy,
            leader,
            commit_index: commit,
            asked: true,
            served: 0,
            reports_leader: true,
            term: 1,
            leadership: (leader, 1),
            connected: healthy,
            rate: 0,
        }
    }

    #[test]
    fn a_kind_reporting_no_leader_is_judged_by_completed_operations() {
        let mut l = Liveness::new(ms(500), vec![]);
        let at = |t: u64, served: u64, asked: bool| Sample {
            at: ms(t),
            healthy: true,
            leader: None,
            commit_index: 0,
            asked,
            served,
            reports_leader: false,
            term: 0,
            leadership: (None, 0),
            connected: true,
            rate: 0,
        };
        // Operations complete: live, though no leader is ever reported.
        for t in 0..20 {
            assert_eq!(l.observe(at(t * 100, t, true)), None);
        }
        // Nothing asked: nothing owed.
        for t in 20..40 {
            assert_eq!(l.observe(at(t * 100, 19, false)), None);
        }
        // A fault's end is recovered from by the next completed operation.
        l.fault_ended(ms(4_000), "cut 1->2");
        l.observe(at(4_100, 20, true));
        assert_eq!(l.recoveries()[0].took(), Some(ms(100)));
        // Asked, and nothing completes past the bound: a failure that says what was judged.
        let mut failures = vec![];
        for t in 42..60 {
            failures.extend(l.observe(at(t * 100, 20, true)));
        }
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].what.starts_with("no operation completed"),
            "{failures:?}"
        );
        assert!(l.recoveries().iter().all(|r| !r.what.starts_with("leader")));
    }

    #[test]
    fn a_healthy_cluster_that_commits_is_live() {
        let mut l = Liveness::new(ms(1000), vec![]);
        for t in 0..100 {
            assert_eq!(l.observe(sample(t * 100, true, Some(1), t)), None);
        }
        assert!(l.failures().is_empty());
    }

    #[test]
    fn a_healthy_cluster_without_a_leader_past_the_bound_fails_once() {
        let mut l = Liveness::new(ms(1000), vec![]);
        let mut failures = vec![];
        for t in 0..40 {
            failures.extend(l.observe(sample(t * 100, true, None, 5)));
        }
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].what, "no leader");
        assert_eq!(failures[0].from, ms(0));
        assert_eq!(failures[0].to, ms(1100));
    }

    #[test]
    fn a_leader_that_commits_nothing_fails_too() {
        let mut l = Liveness::new(ms(500), vec![]);
        let mut failures = vec![];
        for t in 0..20 {
            failures.extend(l.observe(sample(t * 100, true, Some(2), 7)));
        }
        assert_eq!(failures.len(), 1);
        assert!(failures[0].what.contains("no commit past index 7"));
    }

    #[test]
    fn faults_and_excused_windows_owe_nothing() {
        let mut l = Liveness::new(
            ms(500),
            vec![Excused {
                from: ms(2000),
                to: ms(5000),
            }],
        );
        for t in 0..20 {
            assert_eq!(
                l.observe(sample(t * 100, false, None, 0)),
                None,
                "unhealthy"
            );
        }
        for t in 20..50 {
            assert_eq!(l.observe(sample(t * 100, true, None, 0)), None, "excused");
        }
        // Past the window the obligation starts: 500 ms later it fails.
        let mut failures = vec![];
        for t in 50..70 {
            failures.extend(l.observe(sample(t * 100, true, None, 0)));
        }
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].from, ms(5000));
    }

    #[test]
    fn a_final_heal_never_recovered_from_fails_the_verdict() {
        // Issue 19: the verdict said `valid` while its evidence said "final heal ended → not recovered". The
        // bound (10 s) is longer than the recovery period (5 s), so no sample alone reveals it.
        let mut l = Liveness::new(ms(10_000), vec![]);
        l.observe(sample(0, true, Some(1), 10));
        l.observe(sample(100, false, None, 10));
        l.fault_ended(ms(20_000), "final heal");
        for t in 201..250 {
            l.observe(sample(t * 100, true, Some(2), 10));
        }
        l.finish(ms(25_000));
        let f = l.failures();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].what, "no recovery after final heal ended");
        assert_eq!((f[0].from, f[0].to), (ms(20_000), ms(25_000)));
    }

    /// tester7: a final heal with nothing to heal is no recovery to time, but what was owed when the fault
    /// phase ended is still owed by the end of the run, as after a heal that did something.
    #[test]
    fn with_nothing_to_heal_what_is_owed_at_the_phase_end_is_owed_by_the_end() {
        let busy = |l: &mut Liveness| {
            for t in 0..199 {
                l.observe(sample(t * 100, true, Some(1), 10 + t));
            }
            l.observe(sample(19_900, true, None, 208));
            l.nothing_to_heal(ms(20_000));
        };
        let mut l = Liveness::new(ms(10_000), vec![]);
        busy(&mut l);
        for t in 201..250 {
            l.observe(sample(t * 100, true, None, 208));
        }
        l.finish(ms(25_000));
        assert!(
            !l.recoveries().iter().any(|r| r.what.contains("final heal")),
            "{:?}",
            l.recoveries()
        );
        let f = l.failures();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].what, "no recovery after leader n1 lost");
        // Recovered in time: nothing owed.
        let mut l = Liveness::new(ms(10_000), vec![]);
        busy(&mut l);
        l.observe(sample(21_000, true, Some(2), 209));
        l.finish(ms(25_000));
        assert!(l.failures().is_empty(), "{:?}", l.failures());
    }

    #[test]
    fn a_leader_lost_just_before_the_end_is_not_judged() {
        // Seen in the majorities-ring scenario under load: the leader stepped down 1 s before the run ended,
        // with a 3 s bound.
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..121 {
            l.observe(sample(t * 100, true, Some(1), 10 + t));
        }
        for t in 121..130 {
            l.observe(sample(t * 100, true, None, 130));
        }
        l.finish(ms(13_000));
        assert_eq!(l.recoveries()[0].to, None, "{:?}", l.recoveries());
        assert!(l.failures().is_empty(), "{:?}", l.failures());
    }

    #[test]
    fn a_run_that_recovered_owes_nothing_at_its_end() {
        let mut l = Liveness::new(ms(10_000), vec![]);
        l.observe(sample(0, true, Some(1), 10));
        l.fault_ended(ms(300), "final heal");
        l.observe(sample(400, true, Some(1), 11));
        l.finish(ms(5_000));
        assert!(l.failures().is_empty(), "{:?}", l.failures());
    }

    fn idle_sample(at: u64, leader: Option<u64>, commit: u64) -> Sample {
        Sample {
            asked: false,
            ..sample(at, true, leader, commit)
        }
    }

    #[test]
    fn a_healthy_cluster_with_nothing_asked_owes_only_a_leader() {
        // Issue 19, item 0b: `kind = "none"` was judged invalid ("a leader but no commit past index 1") with
        // no fault at all, and after `workload off` the kill-leader recovery was "not recovered".
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..100 {
            assert_eq!(l.observe(idle_sample(t * 100, Some(1), 1)), None);
        }
        l.observe(Sample {
            healthy: false,
            ..idle_sample(10_000, None, 1)
        });
        l.fault_ended(ms(10_100), "kill leader");
        for t in 101..120 {
            l.observe(idle_sample(t * 100, None, 1));
        }
        for t in 120..200 {
            l.observe(idle_sample(t * 100, Some(2), 2));
        }
        l.fault_ended(ms(20_000), "final heal");
        l.observe(idle_sample(20_100, Some(2), 2));
        l.finish(ms(25_000));
        assert!(l.failures().is_empty(), "{:?}", l.failures());
        let r = l.recoveries();
        assert_eq!(r[1].what, "kill leader ended");
        assert_eq!(r[1].took(), Some(ms(1_900)), "{r:?}");
        assert_eq!(r[2].took(), Some(ms(100)), "{r:?}");
        assert!(l.idle() >= ms(9_000), "{:?}", l.idle());
    }

    #[test]
    fn with_nothing_asked_a_missing_leader_still_fails() {
        let mut l = Liveness::new(ms(1_000), vec![]);
        let mut failures = vec![];
        for t in 0..30 {
            failures.extend(l.observe(idle_sample(t * 100, None, 1)));
        }
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].what, "no leader");
    }

    #[test]
    fn served_reads_are_progress_and_asked_operations_are_owed() {
        // lin-kv at 1 op/s: reads complete without a commit; they are progress. Once operations are asked
        // again, a leader that serves none fails.
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..100 {
            let s = Sample {
                served: t / 10,
                ..sample(t * 100, true, Some(1), 1)
            };
            assert_eq!(l.observe(s), None, "at {t}");
        }
        let mut failures = vec![];
        for t in 100..150 {
            let s = Sample {
                served: 9,
                ..sample(t * 100, true, Some(1), 1)
            };
            failures.extend(l.observe(s));
        }
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].what.contains("no commit past index 1"),
            "{failures:?}"
        );
    }

    #[test]
    fn recovery_times_are_measured() {
        let mut l = Liveness::new(ms(5000), vec![]);
        l.observe(sample(0, true, Some(1), 10));
        l.observe(sample(100, false, None, 10));
        l.fault_ended(ms(300), "partition halves");
        l.observe(sample(400, true, None, 10));
        l.observe(sample(650, true, Some(2), 10));
        l.observe(sample(900, true, Some(2), 11));
        let r = l.recoveries();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].what, "leader n1 lost");
        assert_eq!(r[0].took(), Some(ms(550)));
        assert_eq!(r[1].what, "partition halves ended");
        assert_eq!(r[1].took(), Some(ms(600)));
    }

    /// Task held, item 2: the verdict said `leader n1 lost → 300ms` where the event log and the side-by-side
    /// failover said 218 ms: the 100 ms polls saw the loss and the new leader late. Fed the events with their
    /// own times, the recoveries are exactly the events' distances; the same stream seen only through the
    /// polls gives the coarse figures, which this keeps as the contrast.
    #[test]
    fn recoveries_are_timed_by_the_events_not_by_the_polls() {
        // (time, leader, commit) of the events; the polls sample the state every 100 ms in between.
        let events: &[(u64, Option<u64>, u64)] = &[
            (950, Some(1), 10),
            // `kill leader` performed at 1_012; its process event shows n1 gone at 1_013.
            (1_013, None, 10),
            // The first status showing n2 leading.
            (1_230, Some(2), 10),
            (1_262, Some(2), 11),
            // The partition (performed at 2_500) ends by itself at 3_000; the first commit after it at 3_047.
            (3_047, Some(2), 12),
            // `isolate leader` performed at 4_000: n3 shows leading at 4_226, with no moment between without
            // a leader.
            (4_226, Some(3), 12),
            (4_300, Some(3), 13),
        ];
        let faults = [1_012u64, 2_500, 4_000];
        let run = |by_events: bool| {
            let mut l = Liveness::new(ms(5_000), vec![]);
            let mut state = (None, 0);
            let mut next = 0;
            for t in 0..=5_000u64 {
                // (The polls-only run is the old way: no fault times either.)
                if by_events && faults.contains(&t) {
                    l.fault_performed(ms(t));
                }
                if t == 3_000 {
                    l.fault_ended(ms(t), "partition halves");
                }
                if let Some(&(at, leader, commit)) = events.get(next)
                    && at == t
                {
                    next += 1;
                    state = (leader, commit);
                    if by_events {
                        l.event(&sample(t, true, leader, commit));
                    }
                }
                if t % 100 == 0 {
                    l.observe(sample(t, true, state.0, state.1));
                }
            }
            l.recoveries()
                .iter()
                .map(|r| (r.what.clone(), r.took()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(true),
            [
                ("leader n1 lost".to_string(), Some(ms(218))),
                ("partition halves ended".to_string(), Some(ms(47))),
                ("leader n2 lost".to_string(), Some(ms(226))),
            ]
        );
        // Through the polls alone: the loss seen at 1_100, the new leader at 1_300, the commit at 3_100, and
        // the handover to n3 (never a moment without a leader) measured as nothing at all.
        assert_eq!(
            run(false),
            [
                ("leader n1 lost".to_string(), Some(ms(200))),
                ("partition halves ended".to_string(), Some(ms(100))),
            ]
        );
    }

    /// A duel: a new proposer wins phase 1 every 300 ms at a higher ballot, and 2 writes in 10 s are served of
    /// 50/s asked.
    fn duel(at: u64, healthy: bool) -> Sample {
        let round = at / 300 + 1;
        let ballot = squall_node::paxos::Ballot {
            round,
            proposer: round % 3 + 1,
        }
        .pack();
        Sample {
            served: u64::from(at >= 5_000) + u64::from(at >= 9_000),
            term: ballot,
            leadership: (Some(round % 3 + 1), ballot),
            leader: Some(round % 3 + 1),
            rate: 50,
            ..sample(at, healthy, None, 1)
        }
    }

    #[test]
    fn dueling_proposers_are_named_a_livelock_even_while_a_fault_is_in_force() {
        // Issue 23: liveness was judged only with no fault in force, and a duel that elected a new leader
        // every poll while serving nothing was never called a livelock. Seen failing (no failure at all).
        for healthy in [true, false] {
            let mut l = Liveness::new(ms(10_000), vec![]);
            l.set_paxos(true);
            let mut failures = vec![];
            for t in 0..=100 {
                failures.extend(l.observe(duel(t * 100, healthy)));
            }
            let livelocks: Vec<_> = failures
                .iter()
                .filter(|f| f.what.starts_with("livelock"))
                .collect();
            assert_eq!(livelocks.len(), 1, "healthy {healthy}: {failures:?}");
            assert_eq!(
                livelocks[0].what,
                "livelock: ballot rose 32 times, from 1.2 to 33.1, in 9.8 s (the leadership changed 32 times) \
                 while 2 of about 490 asked operations were served"
            );
            assert_eq!((livelocks[0].from, livelocks[0].to), (ms(0), ms(9_800)));
        }
    }

    #[test]
    fn a_duel_that_still_commits_and_a_node_alone_raising_its_ballot_are_not_livelocks() {
        // Leaders change as fast, but operations are served at the asked rate: the loopback duel, live.
        let mut l = Liveness::new(ms(3_000), vec![]);
        l.set_paxos(true);
        for t in 0..100 {
            let s = Sample {
                served: t * 5,
                commit_index: t * 5,
                ..duel(t * 100, true)
            };
            assert_eq!(l.observe(s), None, "at {t}");
        }
        // A node cut off alone raises its ballot every poll but never wins phase 1: no leader, no livelock
        // (the cut is a fault in force, so nothing is owed either).
        let mut l = Liveness::new(ms(3_000), vec![]);
        l.set_paxos(true);
        for t in 0..100 {
            let s = Sample {
                leader: None,
                leadership: (None, 0x10000 * (t + 1)),
                connected: false,
                ..duel(t * 100, false)
            };
            assert_eq!(l.observe(s), None, "at {t}");
        }
        // A minority node raises its ballot, and the leader, stalled at one ballot, serves nothing: not a
        // livelock (the stall is judged as such once healthy; here a fault is in force).
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..100 {
            let s = Sample {
                leader: Some(1),
                leadership: (Some(1), 7),
                ..duel(t * 100, false)
            };
            assert_eq!(l.observe(s), None, "at {t}");
        }
        // Nothing asked: nothing owed, however often leadership changes.
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..100 {
            let s = Sample {
                asked: false,
                ..duel(t * 100, true)
            };
            assert_eq!(l.observe(s), None, "at {t}");
        }
    }

    #[test]
    fn proposers_preempting_each_other_in_phase_1_on_connected_links_are_a_livelock() {
        // Seen in paxos-dueling-livelock (links delayed 80 ms): all three nodes candidates, ballots rising
        // every 100 ms, nobody ever leading, nothing served; the rule that counted leadership changes alone
        // judged none of those 9 s a livelock.
        let mut l = Liveness::new(ms(3_000), vec![]);
        l.set_paxos(true);
        let mut failures = vec![];
        for t in 0..40 {
            failures.extend(l.observe(Sample {
                leader: None,
                leadership: (None, 0x10000 * (t + 1)),
                connected: true,
                served: 3,
                ..duel(t * 100, false)
            }));
        }
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0]
                .what
                .starts_with("livelock: ballot rose 9 times, from 1.2 to 10.2, in 2.8 s"),
            "{failures:?}"
        );
    }

    #[test]
    fn a_failure_while_nodes_recover_from_lost_data_names_the_loss() {
        // Issue 18 (F15): after `wipe` of two of three nodes the verdict said "no leader" and "not recovered"
        // without saying why. Seen failing (the evidence named no data loss).
        let mut l = Liveness::new(ms(1_000), vec![]);
        l.observe(sample(0, true, Some(1), 10));
        l.observe(sample(100, false, None, 10));
        l.fault_ended(ms(200), "final heal");
        l.note_data_loss(vec![
            "n2 lost data and is recovering: waiting for n3's term".into(),
            "n3 lost data and is recovering: waiting for n2's term".into(),
        ]);
        let mut failures = vec![];
        for t in 2..20 {
            failures.extend(l.observe(sample(t * 100, true, None, 10)));
        }
        l.finish(ms(2_000));
        assert_eq!(failures.len(), 1, "{failures:?}");
        let cause = "(data loss: n2 lost data and is recovering: waiting for n3's term; n3 lost data and is \
                     recovering: waiting for n2's term)";
        assert_eq!(failures[0].what, format!("no leader {cause}"));
        let all = l.failures();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(
            all[1].what,
            format!("no recovery after leader n1 lost {cause}")
        );
        assert_eq!(
            all[2].what,
            format!("no recovery after final heal ended {cause}")
        );
        // Once they recovered, a later failure names no loss.
        l.note_data_loss(vec![]);
        assert_eq!(l.with_cause("no leader".into()), "no leader");
    }

    /// Issue 24, tester10 finding 1: the controller's link went down for 4 s; every host was unreachable, so
    /// the statuses showed no leader for longer than the bound though n2 led throughout. That window is
    /// unknown, naming the outage; a no-leader window while every host was observed stays invalid.
    #[test]
    fn no_leader_while_a_host_is_unreachable_is_unknown_not_held_against_the_cluster() {
        let mut l = Liveness::new(ms(3_000), vec![]);
        let mut commit = 0;
        for t in 0..93 {
            commit += 1;
            l.observe(sample(t * 100, true, Some(2), commit));
        }
        // The nodes stop answering squall's polls at 9.6 s; the hosts are declared unreachable at 9.9 s.
        for t in 93..99 {
            l.observe(sample(t * 100, true, Some(2), commit));
        }
        for host in ["host1", "host2", "host3"] {
            l.host_unreachable(ms(9_900), host, &[host[4..].parse().unwrap()]);
        }
        for t in 99..153 {
            l.observe(sample(t * 100, true, None, commit));
        }
        for host in ["host3", "host2", "host1"] {
            l.host_back(ms(15_300), host);
        }
        for t in 153..170 {
            commit += 1;
            l.observe(sample(t * 100, true, Some(2), commit));
        }
        l.finish(ms(17_000));
        let (held, unobserved) = l.judged();
        assert!(held.is_empty(), "held against the cluster: {held:?}");
        assert_eq!(unobserved.len(), 1, "{unobserved:?}");
        assert_eq!(unobserved[0].failure.what, "no leader");
        let hosts: Vec<&str> = unobserved[0]
            .outages
            .iter()
            .map(|o| o.host.as_str())
            .collect();
        assert_eq!(hosts, ["host1", "host2", "host3"]);
        assert_eq!(unobserved[0].outages[0].to, Some(ms(15_300)));

        // The same gap with every host observed is invalid.
        let mut l = Liveness::new(ms(3_000), vec![]);
        for t in 0..93 {
            l.observe(sample(t * 100, true, Some(2), t));
        }
        for t in 93..153 {
            l.observe(sample(t * 100, true, None, 92));
        }
        l.finish(ms(15_300));
        let (held, unobserved) = l.judged();
        let what: Vec<&str> = held.iter().map(|f| f.what.as_str()).collect();
        assert_eq!(what, ["no leader", "no recovery after leader n2 lost"]);
        assert!(unobserved.is_empty(), "{unobserved:?}");

        // An outage long over before the gap began excuses nothing; one still open (a lost host) covers all
        // after it.
        let mut l = Liveness::new(ms(3_000), vec![]);
        l.host_unreachable(ms(500), "host1", &[1]);
        l.host_back(ms(1_500), "host1");
        for t in 0..50 {
            l.observe(sample(t * 100, true, Some(2), t));
        }
        for t in 50..90 {
            l.observe(sample(t * 100, true, None, 49));
        }
        l.host_unreachable(ms(12_000), "host3", &[3]);
        for t in 90..160 {
            l.observe(sample(t * 100, true, Some(2), 50));
        }
        l.finish(ms(16_000));
        let (held, unobserved) = l.judged();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].from, ms(4_900));
        assert_eq!(unobserved.len(), 1, "{unobserved:?}");
        assert_eq!(unobserved[0].outages[0].host, "host3");
    }
}
