//! A node's role over the last minute, for the timeline lanes.

use std::collections::VecDeque;

use squall_node::raft::types::Role;

/// How far back a lane reaches, in milliseconds.
pub const LANE_WINDOW_MS: u64 = 60_000;
/// Most changes a lane keeps, so a flapping node cannot grow it without bound.
const MAX_SEGMENTS: usize = 4096;

/// What a lane shows at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LaneRole {
    /// Nothing known yet.
    #[default]
    Unknown,
    /// Following.
    Follower,
    /// Stopped with SIGSTOP.
    Paused,
    /// Leading.
    Leader,
    /// Asking for pre-votes.
    PreCandidate,
    /// Campaigning.
    Candidate,
    /// No process (killed, exited, being restarted).
    Down,
}

impl LaneRole {
    /// Which state wins when several share one cell of a lane: the rare, telling ones (a crash, an election)
    /// must stay visible however coarse the lane is.
    fn salience(self) -> u8 {
        match self {
            LaneRole::Unknown => 0,
            LaneRole::Follower => 1,
            LaneRole::Paused => 2,
            LaneRole::Leader => 3,
            LaneRole::PreCandidate => 4,
            LaneRole::Candidate => 5,
            LaneRole::Down => 6,
        }
    }
}

impl From<Role> for LaneRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Follower => LaneRole::Follower,
            Role::PreCandidate => LaneRole::PreCandidate,
            Role::Candidate => LaneRole::Candidate,
            Role::Leader => LaneRole::Leader,
        }
    }
}

/// Role changes of one node: each segment starts at its `at_ms` and lasts until the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lane {
    segments: VecDeque<(u64, LaneRole)>,
}

impl Lane {
    /// The role now (the last segment's).
    pub fn current(&self) -> LaneRole {
        self.segments.back().map(|s| s.1).unwrap_or_default()
    }

    /// Records that the node is in `role` from `at_ms` on, and forgets what lies wholly before the window.
    pub fn set(&mut self, at_ms: u64, role: LaneRole) {
        if self.current() == role && !self.segments.is_empty() {
            return;
        }
        self.segments.push_back((at_ms, role));
        self.prune(at_ms);
    }

    /// Records a role held for an instant (seen in a node's feed, already superseded): it shows in the lane
    /// without changing the current role.
    pub fn blip(&mut self, at_ms: u64, role: LaneRole) {
        let now = self.current();
        if role == now {
            return;
        }
        self.segments.push_back((at_ms, role));
        self.segments.push_back((at_ms, now));
        self.prune(at_ms);
    }

    fn prune(&mut self, now_ms: u64) {
        let horizon = now_ms.saturating_sub(LANE_WINDOW_MS);
        while self.segments.len() >= 2 && self.segments[1].0 < horizon {
            self.segments.pop_front();
        }
        while self.segments.len() > MAX_SEGMENTS {
            self.segments.pop_front();
        }
    }

    /// Splits `[to_ms - span_ms, to_ms)` into `out.len()` equal cells and fills each with the most telling
    /// role held during it.
    pub fn sample(&self, to_ms: u64, span_ms: u64, out: &mut [LaneRole]) {
        let n = out.len() as u64;
        if n == 0 {
            return;
        }
        let from = to_ms as i128 - span_ms as i128;
        let mut i = 0usize;
        // The segment in force at the start of the current cell.
        let mut active = LaneRole::Unknown;
        for (k, cell) in out.iter_mut().enumerate() {
            let t0 = from + (span_ms as i128 * k as i128) / n as i128;
            let t1 = from + (span_ms as i128 * (k as i128 + 1)) / n as i128;
            while i < self.segments.len() && (self.segments[i].0 as i128) < t0 {
                active = self.segments[i].1;
                i += 1;
            }
            // Changes at exactly t0 belong to this cell (a blip there must not be swallowed), and then the
            // role before t0 does not.
            let starts_here = i < self.segments.len() && self.segments[i].0 as i128 == t0;
            let mut best = if starts_here {
                LaneRole::Unknown
            } else {
                active
            };
            while i < self.segments.len() && (self.segments[i].0 as i128) < t1 {
                let r = self.segments[i].1;
                if r.salience() > best.salience() {
                    best = r;
                }
                active = r;
                i += 1;
            }
            *cell = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_brief_elections_visible() {
        let mut lane = Lane::default();
        lane.set(0, LaneRole::Follower);
        lane.blip(10_100, LaneRole::Candidate);
        lane.set(20_000, LaneRole::Leader);
        lane.set(30_000, LaneRole::Down);
        let mut out = [LaneRole::Unknown; 6];
        lane.sample(60_000, 60_000, &mut out);
        assert_eq!(
            out,
            [
                LaneRole::Follower,
                LaneRole::Candidate,
                LaneRole::Leader,
                LaneRole::Down,
                LaneRole::Down,
                LaneRole::Down
            ]
        );
        assert_eq!(lane.current(), LaneRole::Down);
    }

    #[test]
    fn before_the_first_change_is_unknown_and_old_changes_are_forgotten() {
        let mut lane = Lane::default();
        lane.set(50_000, LaneRole::Follower);
        let mut out = [LaneRole::Leader; 2];
        lane.sample(60_000, 20_000, &mut out);
        assert_eq!(out, [LaneRole::Unknown, LaneRole::Follower]);
        for t in 0..100u64 {
            lane.set(
                100_000 + t * 1000,
                if t % 2 == 0 {
                    LaneRole::Leader
                } else {
                    LaneRole::Follower
                },
            );
        }
        assert!(
            lane.segments.len() <= 62,
            "kept {} segments",
            lane.segments.len()
        );
    }
}
