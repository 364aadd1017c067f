//! Preconditions of actions: whether the node an action names can take it right now. An action that cannot
//! happen (kill a node that is down, pause a paused node, resume a running one, hand leadership to a node that
//! is down, paused or cut off) is refused with the reason and what to do instead, so it never answers `ok`.
//!
//! Pure: [`Cluster::perform`](super::Cluster::perform) gathers the [`Facts`] and asks [`admit`] before acting.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{Command, NodeId};
use crate::command::clock::ClockAction;
use crate::command::disk::DiskAction;

/// What a node's process is doing, as far as an action cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// Alive and not stopped.
    Running,
    /// Stopped by SIGSTOP.
    Paused,
    /// Between a restart's kill and its new process.
    Restarting,
    /// Not running: killed (SIGKILL) or otherwise exited.
    Down {
        /// Whether squall killed it (else it stopped or exited).
        killed: bool,
    },
}

/// What the guard knows of the cluster when an action is asked for.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Every node's process.
    pub procs: BTreeMap<NodeId, Proc>,
    /// Directed links `(from, to)` that carry nothing (cut by a partition, isolation or 100 % loss).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes whose removal from the configuration committed: no longer members.
    pub removed: BTreeSet<NodeId>,
    /// Nodes with a disk fault in force; `None` when disk faults are off (a `disk` command then says how to
    /// turn them on).
    pub disk_faults: Option<BTreeSet<NodeId>>,
    /// Nodes whose clock is faked; `None` when clock faults are off.
    pub faked_clocks: Option<BTreeSet<NodeId>>,
}

impl Facts {
    fn proc(&self, id: NodeId) -> Proc {
        self.procs
            .get(&id)
            .copied()
            .unwrap_or(Proc::Down { killed: false })
    }

    /// Whether every link to and from `id` carries nothing: isolating it again would change nothing. (One open
    /// direction is enough for frames to flow, so [`Facts::reachable_from`] is not the test.)
    fn cut_off(&self, id: NodeId) -> bool {
        self.procs
            .keys()
            .filter(|&&o| o != id)
            .all(|&o| self.cut.contains(&(id, o)) && self.cut.contains(&(o, id)))
    }

    /// The other nodes `id` can exchange messages with both ways.
    fn reachable_from(&self, id: NodeId) -> usize {
        self.procs
            .keys()
            .filter(|&&o| o != id && !self.cut.contains(&(id, o)) && !self.cut.contains(&(o, id)))
            .count()
    }
}

fn down(id: NodeId, killed: bool) -> String {
    if killed {
        format!("node {id} is not running (killed)")
    } else {
        format!("node {id} is not running")
    }
}

/// Whether `cmd`, aimed at node `id` (its target, already resolved), can happen. `Err` says why not and what
/// to do instead. Commands without a node target are always admitted; of the disk and clock commands only a
/// heal is judged (it must have something to heal).
pub fn admit(cmd: &Command, id: NodeId, facts: &Facts) -> Result<(), String> {
    // A heal is never held back by the process's state: a node stuck restarting behind a stalled disk needs it.
    match cmd {
        Command::Disk(_, DiskAction::Heal)
            if facts.disk_faults.as_ref().is_some_and(|f| !f.contains(&id)) =>
        {
            return Err(format!(
                "nothing to heal: node {id}'s disk has no fault in force (`status` lists each node's faults)"
            ));
        }
        Command::Clock(_, ClockAction::Heal)
            if facts
                .faked_clocks
                .as_ref()
                .is_some_and(|f| !f.contains(&id)) =>
        {
            return Err(format!(
                "nothing to heal: node {id}'s clock is not faked (`status` shows each node's clock)"
            ));
        }
        Command::Disk(..) | Command::Clock(..) => return Ok(()),
        _ => {}
    }
    let proc = facts.proc(id);
    if proc == Proc::Restarting {
        return Err(format!("node {id} is restarting; try again once it runs"));
    }
    if facts.removed.contains(&id) {
        match cmd {
            Command::Transfer(_) => {
                return Err(format!(
                    "node {id} was removed from the configuration: it cannot lead; transfer to a voter \
                     (`status` lists them)"
                ));
            }
            Command::Wipe(_) => {
                return Err(format!(
                    "node {id} was removed from the configuration: it is not a member, and once wiped it would \
                     start as a voter of the startup configuration; `add` starts a new node"
                ));
            }
            _ => {}
        }
    }
    match (cmd, proc) {
        (Command::Kill(_) | Command::Terminate(_), Proc::Down { killed }) => Err(format!(
            "{}: nothing to stop; `restart {id}` starts it again",
            down(id, killed)
        )),
        (Command::Pause(_) | Command::TogglePause(_), Proc::Down { killed }) => Err(format!(
            "{}: nothing to pause; `restart {id}` starts it again",
            down(id, killed)
        )),
        (Command::Pause(_), Proc::Paused) => Err(format!(
            "node {id} is already paused; `resume {id}` continues it"
        )),
        (Command::Resume(_), Proc::Running) => {
            Err(format!("node {id} is not paused: nothing to resume"))
        }
        (Command::Resume(_), Proc::Down { killed }) => Err(format!(
            "{}: nothing to resume; `restart {id}` starts it again",
            down(id, killed)
        )),
        (Command::Fault(f), _) if f.is_isolate() && facts.cut_off(id) && facts.procs.len() > 1 => {
            Err(format!(
                "node {id} is already cut off from every other node; `heal` reconnects it"
            ))
        }
        (Command::Transfer(_), Proc::Down { killed }) => Err(format!(
            "{}: it cannot take leadership; `restart {id}` first",
            down(id, killed)
        )),
        (Command::Transfer(_), Proc::Paused) => Err(format!(
            "node {id} is paused: it cannot take leadership; `resume {id}` first"
        )),
        (Command::Transfer(_), _) if (facts.reachable_from(id) + 1) * 2 <= facts.procs.len() => {
            Err(format!(
                "node {id} is cut off from a majority of the cluster: it could not win an election; \
                 `heal` first"
            ))
        }
        _ => Ok(()),
    }
}

/// What `wipe N` of a voter costs the cluster's quorum, judged as `remove N` is ([`admit_membership`]), for
/// its answer: a wiped voter recovers before it votes again (`raft::recovery`), so when the configuration's
/// voters other than `n` have no running majority of all its voters, the cluster has no quorum until one of
/// them returns. `Some(warning)` then (`; warning: …`, naming the voters, those down and what to restart);
/// `None` when the others are a majority, for a learner, a node of no known configuration, and the only voter
/// (its answer says what that costs). A warning, not a refusal as for `remove`: a wipe is a fault, as a `kill`
/// that costs the quorum is, and showing what a lost disk does is what it is for (issue 24: it answered a
/// plain `ok`).
pub fn wipe_cost(n: NodeId, f: &MemberFacts) -> Option<String> {
    if !f.voters.contains(&n) || f.voters.len() == 1 {
        return None;
    }
    let rest: BTreeSet<NodeId> = f.voters.iter().copied().filter(|v| *v != n).collect();
    let need = f.voters.len() / 2 + 1;
    let live = rest.intersection(&f.live).count();
    if live >= need {
        return None;
    }
    let down: BTreeSet<NodeId> = rest.difference(&f.live).copied().collect();
    let first = down.iter().next().copied().unwrap_or(n);
    Some(format!(
        "; warning: the cluster has no quorum now: of its {} voters a leader and each commit need {need}, and \
         node {n} votes again only once it has recovered, while of the others, {}, only {live} {} running ({} \
         not running or paused); `restart {first}` (or `resume {first}`) brings the quorum back (a `remove` that \
         leaves this is refused)",
        f.voters.len(),
        set_text(&rest),
        if live == 1 { "is" } else { "are" },
        set_text(&down)
    ))
}

/// Most nodes a cluster may have in all, counting every id ever used (ids are never reused).
pub const MAX_NODES: u64 = 9;

/// What the guard knows of the cluster's membership when a change is asked for.
#[derive(Clone, Debug, Default)]
pub struct MemberFacts {
    /// Every node id the session has started (removed nodes included: their ids stay taken).
    pub ids: BTreeSet<NodeId>,
    /// The configuration's voters, as the leader (else the most recent configuration any node has) knows them.
    pub voters: BTreeSet<NodeId>,
    /// Its learners.
    pub learners: BTreeSet<NodeId>,
    /// A change squall is making now, in words (`add node 6`), if any: one change at a time.
    pub under_way: Option<String>,
    /// The node an `add` or `replace` under way is adding: `remove` of it cancels the add.
    pub adding: Option<NodeId>,
    /// The nodes whose process runs (not down, not paused): they can vote.
    pub live: BTreeSet<NodeId>,
}

fn set_text(ids: &BTreeSet<NodeId>) -> String {
    let v: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("{{{}}}", v.join(","))
}

/// Whether a membership change (`add`, `remove N`, `replace N`, `promote N`) can be asked for now. `Err` says
/// why not and what to do instead. Other commands are always admitted here.
pub fn admit_membership(cmd: &Command, f: &MemberFacts) -> Result<(), String> {
    let is_change = matches!(
        cmd,
        Command::Add
            | Command::AddLearner
            | Command::Remove(_)
            | Command::Replace(_)
            | Command::Promote(_)
            | Command::Demote(_)
    );
    if !is_change {
        return Ok(());
    }
    let next = f.ids.iter().max().copied().unwrap_or(0) + 1;
    let full = || {
        format!(
            "node ids 1 to {MAX_NODES} are all taken (a removed node keeps its id: squall never reuses one); a cluster has at most {MAX_NODES} nodes in all"
        )
    };
    let member = |n: NodeId| -> Result<(), String> {
        if !f.ids.contains(&n) {
            let ids: Vec<String> = f.ids.iter().map(u64::to_string).collect();
            return Err(format!(
                "there is no node {n}: this cluster has nodes {}",
                ids.join(", ")
            ));
        }
        if !f.voters.contains(&n) && !f.learners.contains(&n) {
            if let Some(w) = &f.under_way {
                return Err(format!(
                    "node {n} is not a member of the configuration yet: a membership change is under way ({w}); \
                     wait until the feed says it is done"
                ));
            }
            return Err(format!(
                "node {n} is not a member of the configuration (voters {}{}): nothing to change; `add` starts a new node",
                set_text(&f.voters),
                if f.learners.is_empty() {
                    String::new()
                } else {
                    format!(", learners {}", set_text(&f.learners))
                }
            ));
        }
        Ok(())
    };
    let admitted = match cmd {
        Command::Add | Command::AddLearner if next > MAX_NODES => Err(full()),
        Command::Replace(n) => {
            member(*n)?;
            if next > MAX_NODES {
                return Err(full());
            }
            Ok(())
        }
        // `remove` of the node an `add` under way is adding cancels that add.
        Command::Remove(n) if f.adding == Some(*n) => return Ok(()),
        Command::Remove(n) => {
            member(*n)?;
            if f.voters.len() == 1 && f.voters.contains(n) {
                if next > MAX_NODES {
                    return Err(format!(
                        "node {n} is the last voter: removing it would leave no node to elect a leader or commit, \
                         and no node can be added ({}); it stays, or start a new cluster with a new --dir",
                        full()
                    ));
                }
                return Err(format!(
                    "node {n} is the last voter: removing it would leave no node to elect a leader or commit; `add` a node (it is promoted to voter) first"
                ));
            }
            if f.voters.contains(n) {
                let rest: BTreeSet<NodeId> = f.voters.iter().copied().filter(|v| v != n).collect();
                let need = rest.len() / 2 + 1;
                let live = rest.intersection(&f.live).count();
                if live < need {
                    let down: BTreeSet<NodeId> = rest.difference(&f.live).copied().collect();
                    let first = down.iter().next().copied().unwrap_or(*n);
                    return Err(format!(
                        "removing node {n} leaves voters {}, which need {need} running to elect a leader and \
                         commit, and only {live} {} running ({} not running or paused): the cluster would stop; \
                         `restart {first}` (or `resume {first}`) first, or remove a node that is down",
                        set_text(&rest),
                        if live == 1 { "is" } else { "are" },
                        set_text(&down)
                    ));
                }
            }
            Ok(())
        }
        Command::Demote(n) => {
            member(*n)?;
            if !f.voters.contains(n) {
                return Err(format!(
                    "node {n} is a learner already: nothing to demote (`promote {n}` makes it a voter)"
                ));
            }
            if f.voters.len() == 1 {
                return Err(format!(
                    "node {n} is the last voter: demoting it would leave no node to elect a leader or commit"
                ));
            }
            // For the quorums a demotion is a removal: the voters left must have a running majority.
            let rest: BTreeSet<NodeId> = f.voters.iter().copied().filter(|v| v != n).collect();
            let need = rest.len() / 2 + 1;
            let live = rest.intersection(&f.live).count();
            if live < need {
                let down: BTreeSet<NodeId> = rest.difference(&f.live).copied().collect();
                return Err(format!(
                    "demoting node {n} leaves voters {}, which need {need} running, and only {live} run ({} \
                     not running or paused): the cluster would stop; restart or resume one first",
                    set_text(&rest),
                    set_text(&down)
                ));
            }
            Ok(())
        }
        Command::Promote(n) => {
            member(*n)?;
            if f.voters.contains(n) {
                return Err(format!("node {n} is a voter already: nothing to promote"));
            }
            if !f.live.contains(n) {
                // As a voter it would count toward every majority without ever answering.
                return Err(format!(
                    "node {n} is not running: a learner that cannot answer would become a voter the cluster \
                     never hears from; `restart {n}` and promote it once it has caught up"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    };
    admitted?;
    if let Some(w) = &f.under_way {
        return Err(format!(
            "a membership change is under way ({w}); squall makes one at a time: wait until the feed says it is done"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::command::Target;

    fn members(ids: &[NodeId], voters: &[NodeId], learners: &[NodeId]) -> MemberFacts {
        MemberFacts {
            ids: ids.iter().copied().collect(),
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            under_way: None,
            adding: None,
            live: ids.iter().copied().collect(),
        }
    }

    #[test]
    fn misleading_hints_are_gone() {
        // `remove 4` while the add of 4 is under way cancels it; other changes naming 4 say it is under way.
        let mut f = members(&[1, 2, 3, 4], &[1, 2, 3], &[]);
        f.under_way = Some("add node 4".into());
        f.adding = Some(4);
        assert_eq!(admit_membership(&Command::Remove(4), &f), Ok(()));
        let e = admit_membership(&Command::Promote(4), &f).unwrap_err();
        assert!(
            e.contains("under way (add node 4)") && !e.contains("`add`"),
            "{e}"
        );
        // The last voter when all nine ids are taken: `add` is not the way out.
        let f = members(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[9], &[]);
        let e = admit_membership(&Command::Remove(9), &f).unwrap_err();
        assert!(
            e.contains("last voter") && e.contains("no node can be added"),
            "{e}"
        );
        assert!(!e.contains("`add` a node"), "{e}");
    }

    #[test]
    fn a_removal_that_leaves_no_running_majority_is_refused() {
        // Leader 2 of {1,2,3} with 3 killed: {1,3} needs both.
        let mut f = members(&[1, 2, 3], &[1, 2, 3], &[]);
        f.live.remove(&3);
        let e = admit_membership(&Command::Remove(2), &f).unwrap_err();
        assert!(
            e.contains("{1,3}") && e.contains("need 2") && e.contains("restart 3"),
            "{e}"
        );
        // Removing the dead node itself is fine, as is a learner.
        assert_eq!(admit_membership(&Command::Remove(3), &f), Ok(()));
        let mut f = members(&[1, 2, 3, 4], &[1, 2, 3], &[4]);
        f.live.remove(&3);
        assert_eq!(admit_membership(&Command::Remove(4), &f), Ok(()));
        // Five voters, one down: removing another leaves 3 of 4 running.
        let mut f = members(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], &[]);
        f.live.remove(&5);
        assert_eq!(admit_membership(&Command::Remove(1), &f), Ok(()));
        f.live.remove(&4);
        assert!(admit_membership(&Command::Remove(1), &f).is_err());
    }

    /// Issue 24: `wipe N` answered a plain `ok` with another voter down, leaving no quorum; judged as `remove N`
    /// is, and said as a warning.
    #[test]
    fn a_wipe_that_leaves_no_running_majority_of_voters_warns_where_a_remove_is_refused() {
        let facts = |voters: &[NodeId], live: &[NodeId]| MemberFacts {
            voters: voters.iter().copied().collect(),
            live: live.iter().copied().collect(),
            ..MemberFacts::default()
        };
        // 3 voters, node 1 down: wiping 2 leaves only node 3 voting.
        let f = facts(&[1, 2, 3], &[2, 3]);
        let w = wipe_cost(2, &f).unwrap();
        assert!(
            w.starts_with("; warning: the cluster has no quorum now: of its 3 voters a leader and each commit need 2")
                && w.contains("of the others, {1,3}, only 1 is running ({1} not running or paused)")
                && w.contains("`restart 1`"),
            "{w}"
        );
        // `remove 2` is refused in the same situation.
        let mut m = f.clone();
        m.ids = [1, 2, 3].into();
        assert!(admit_membership(&Command::Remove(2), &m).is_err());
        // Every voter running, or 5 voters with one down: the others are a majority.
        assert_eq!(wipe_cost(2, &facts(&[1, 2, 3], &[1, 2, 3])), None);
        assert_eq!(wipe_cost(2, &facts(&[1, 2, 3, 4, 5], &[2, 3, 4, 5])), None);
        // A wiped node that is down itself changes nothing in the count of the others.
        assert!(wipe_cost(2, &facts(&[1, 2, 3], &[3])).is_some());
        // A learner, the only voter, and no configuration known: nothing to say.
        assert_eq!(wipe_cost(4, &facts(&[1, 2, 3], &[4])), None);
        assert_eq!(wipe_cost(1, &facts(&[1], &[])), None);
        assert_eq!(wipe_cost(1, &facts(&[], &[])), None);
    }

    #[test]
    fn a_removed_node_cannot_lead_or_be_wiped_back_as_a_voter() {
        let mut f = facts(&[RUN, RUN, Proc::Down { killed: false }]);
        f.removed.insert(3);
        let e = admit(&Command::Transfer(N), 3, &f).unwrap_err();
        assert!(e.contains("was removed") && !e.contains("restart 3"), "{e}");
        let e = admit(&Command::Wipe(N), 3, &f).unwrap_err();
        assert!(e.contains("not a member"), "{e}");
        // Restarting it with its data is allowed: it learns it was removed.
        assert_eq!(admit(&Command::Restart(N), 3, &f), Ok(()));
    }

    #[test]
    fn membership_changes_that_cannot_happen_are_refused() {
        let f = members(&[1, 2, 3], &[1, 2, 3], &[]);
        assert_eq!(admit_membership(&Command::Add, &f), Ok(()));
        assert_eq!(admit_membership(&Command::Remove(2), &f), Ok(()));
        assert_eq!(admit_membership(&Command::Replace(2), &f), Ok(()));
        let e = admit_membership(&Command::Remove(7), &f).unwrap_err();
        assert!(
            e.contains("there is no node 7") && e.contains("1, 2, 3"),
            "{e}"
        );
        let e = admit_membership(&Command::Promote(2), &f).unwrap_err();
        assert!(e.contains("voter already"), "{e}");
        // The last voter.
        let f = members(&[1, 2, 3], &[1], &[]);
        let e = admit_membership(&Command::Remove(1), &f).unwrap_err();
        assert!(e.contains("last voter") && e.contains("`add`"), "{e}");
        let e = admit_membership(&Command::Remove(2), &f).unwrap_err();
        assert!(e.contains("not a member") && e.contains("{1}"), "{e}");
        // A learner can be promoted and removed.
        let mut f = members(&[1, 2, 3, 4], &[1, 2, 3], &[4]);
        assert_eq!(admit_membership(&Command::Promote(4), &f), Ok(()));
        assert_eq!(admit_membership(&Command::Remove(4), &f), Ok(()));
        // Not a learner that is down (L1): it would be a voter that never answers.
        f.live.remove(&4);
        let e = admit_membership(&Command::Promote(4), &f).unwrap_err();
        assert!(
            e.contains("node 4 is not running") && e.contains("`restart 4`"),
            "{e}"
        );
        assert_eq!(admit_membership(&Command::Remove(4), &f), Ok(()));
        // Nine ids in all, never reused: a removed node's id stays taken.
        let f = members(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[1, 2, 3], &[]);
        let e = admit_membership(&Command::Add, &f).unwrap_err();
        assert!(e.contains("at most 9 nodes"), "{e}");
        assert!(admit_membership(&Command::Replace(2), &f).is_err());
        // One change at a time.
        let mut f = members(&[1, 2, 3], &[1, 2, 3], &[]);
        f.under_way = Some("add node 4".into());
        let e = admit_membership(&Command::Remove(2), &f).unwrap_err();
        assert!(e.contains("under way (add node 4)"), "{e}");
        // What could never happen is named first, whatever is under way.
        let e = admit_membership(&Command::Remove(9), &f).unwrap_err();
        assert!(e.contains("there is no node 9"), "{e}");
        // Not a membership command: admitted here.
        assert_eq!(
            admit_membership(&Command::Kill(Target::Node(9)), &f),
            Ok(())
        );
    }

    fn facts(procs: &[Proc]) -> Facts {
        Facts {
            procs: procs
                .iter()
                .enumerate()
                .map(|(i, p)| (i as NodeId + 1, *p))
                .collect(),
            cut: BTreeSet::new(),
            removed: BTreeSet::new(),
            ..Facts::default()
        }
    }

    fn isolate(f: &mut Facts, id: NodeId) {
        let ids: Vec<NodeId> = f.procs.keys().copied().collect();
        for o in ids.into_iter().filter(|o| *o != id) {
            f.cut.insert((id, o));
            f.cut.insert((o, id));
        }
    }

    const RUN: Proc = Proc::Running;
    const KILLED: Proc = Proc::Down { killed: true };
    const N: Target = Target::Node(3);

    #[test]
    fn a_stopped_node_cannot_be_stopped_again_or_paused_or_lead() {
        let f = facts(&[RUN, RUN, KILLED]);
        for cmd in [Command::Kill(N), Command::Terminate(N)] {
            let e = admit(&cmd, 3, &f).unwrap_err();
            assert!(e.contains("node 3 is not running (killed)"), "{e}");
            assert!(e.contains("restart 3"), "{e}");
        }
        assert!(admit(&Command::Pause(N), 3, &f).is_err());
        assert!(admit(&Command::TogglePause(N), 3, &f).is_err());
        assert!(admit(&Command::Resume(N), 3, &f).is_err());
        let e = admit(&Command::Transfer(N), 3, &f).unwrap_err();
        assert!(e.contains("cannot take leadership"), "{e}");
        // Restarting a killed node is what it needs.
        assert_eq!(admit(&Command::Restart(N), 3, &f), Ok(()));
        assert_eq!(admit(&Command::Wipe(N), 3, &f), Ok(()));
    }

    #[test]
    fn pausing_twice_and_resuming_a_running_node_are_refused() {
        let f = facts(&[RUN, RUN, Proc::Paused]);
        let e = admit(&Command::Pause(N), 3, &f).unwrap_err();
        assert!(
            e.contains("already paused") && e.contains("resume 3"),
            "{e}"
        );
        assert_eq!(admit(&Command::Resume(N), 3, &f), Ok(()));
        assert_eq!(admit(&Command::TogglePause(N), 3, &f), Ok(()));
        let e = admit(&Command::Transfer(N), 3, &f).unwrap_err();
        assert!(e.contains("paused"), "{e}");
        // Killing a paused node is fine.
        assert_eq!(admit(&Command::Kill(N), 3, &f), Ok(()));
        let f = facts(&[RUN, RUN, RUN]);
        let e = admit(&Command::Resume(N), 3, &f).unwrap_err();
        assert!(e.contains("not paused"), "{e}");
        assert_eq!(admit(&Command::Pause(N), 3, &f), Ok(()));
    }

    /// Tester C6: `disk 1 heal` and `clock 1 heal` with nothing in force answered `ok: heal node 1's disk`.
    #[test]
    fn a_disk_or_clock_heal_with_nothing_in_force_is_refused_saying_nothing_to_heal() {
        let heal_disk = crate::cluster::command::parse("disk 3 heal").unwrap();
        let heal_clock = crate::cluster::command::parse("clock 3 heal").unwrap();
        let mut f = facts(&[RUN, RUN, RUN]);
        f.disk_faults = Some(BTreeSet::from([1]));
        f.faked_clocks = Some(BTreeSet::from([2]));
        let e = admit(&heal_disk, 3, &f).unwrap_err();
        assert!(
            e.contains("nothing to heal") && e.contains("node 3's disk"),
            "{e}"
        );
        let e = admit(&heal_clock, 3, &f).unwrap_err();
        assert!(
            e.contains("nothing to heal") && e.contains("node 3's clock"),
            "{e}"
        );
        // With a fault in force the heal goes ahead.
        f.disk_faults = Some(BTreeSet::from([3]));
        f.faked_clocks = Some(BTreeSet::from([3]));
        assert_eq!(admit(&heal_disk, 3, &f), Ok(()));
        assert_eq!(admit(&heal_clock, 3, &f), Ok(()));
        // Without disk faults the command's own answer says how to turn them on.
        let f = facts(&[RUN, RUN, RUN]);
        assert_eq!(admit(&heal_disk, 3, &f), Ok(()));
        assert_eq!(admit(&heal_clock, 3, &f), Ok(()));
    }

    #[test]
    fn leadership_cannot_go_to_a_node_cut_off_from_a_majority() {
        let mut f = facts(&[RUN, RUN, RUN]);
        assert_eq!(admit(&Command::Transfer(N), 3, &f), Ok(()));
        isolate(&mut f, 3);
        let e = admit(&Command::Transfer(N), 3, &f).unwrap_err();
        assert!(e.contains("cut off from a majority"), "{e}");
        let e = admit(&crate::cluster::command::parse("isolate 3").unwrap(), 3, &f).unwrap_err();
        assert!(e.contains("already cut off"), "{e}");
        assert_eq!(admit(&Command::Transfer(Target::Node(1)), 1, &f), Ok(()));
        // 1,2 | 3,4,5: node 1 reaches one other node of five.
        let mut f = facts(&[RUN; 5]);
        for a in [1, 2] {
            for b in [3, 4, 5] {
                f.cut.insert((a, b));
                f.cut.insert((b, a));
            }
        }
        assert!(admit(&Command::Transfer(Target::Node(1)), 1, &f).is_err());
        assert_eq!(admit(&Command::Transfer(Target::Node(4)), 4, &f), Ok(()));
        // One open direction (1->3 after `cut 1<->2` and `cut 3->1`) still carries frames: admitted.
        let mut f = Facts::default();
        for id in 1..=3 {
            f.procs.insert(id, Proc::Running);
        }
        f.cut.extend([(1, 2), (2, 1), (3, 1)]);
        let isolate_1 = crate::cluster::command::parse("isolate 1").unwrap();
        assert_eq!(admit(&isolate_1, 1, &f), Ok(()));
        f.cut.insert((1, 3));
        assert!(
            admit(&isolate_1, 1, &f)
                .unwrap_err()
                .contains("already cut off")
        );
    }

    #[test]
    fn a_restarting_node_takes_nothing() {
        let f = facts(&[RUN, RUN, Proc::Restarting]);
        let e = admit(&Command::Kill(N), 3, &f).unwrap_err();
        assert!(e.contains("restarting"), "{e}");
    }
}
