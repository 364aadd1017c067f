//! Membership changes driven from the orchestrator: `add`, `remove N`, `replace N`, `promote N`.
//!
//! The node makes single-server changes through its log; squall's part is the processes and the links around
//! them, and the order of the steps. Each step goes to the leader through the kind's membership driver
//! ([`crate::kind::membership::MembershipDriver`], chosen by its `[membership] protocol`); a kind without one
//! refuses these commands with its reason. The steps:
//! - `add`: the next free id (never reused; nine in all), a new node directory, a proxy for every link between
//!   the new node and each existing one (faults in force whose target covers them apply at once), the process
//!   started with `--join` and `--peers` of its outbound proxies, every running node told the new node's address
//!   (its inbound proxy), then `AddLearner` on the leader, a wait until the leader's progress shows it caught
//!   up (by snapshot when it is far behind), then `Promote`.
//! - `remove N`: `Remove` on the leader; once committed, N's process is stopped (its directory is kept).
//! - `replace N`: `add`, then `remove N` once the new node votes.
//! - `promote N`: `Promote` on the leader, answered once committed.
//!
//! Steps that can take long (a learner catching up, a change waiting for a majority of the current
//! configuration while the cluster is partitioned) run in the background and report each step as an
//! [`Event::Membership`]; the command itself answers once the first step is under way. One change at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use squall_node::raft::types::Membership;

use crate::kind::PeerModel;
use crate::kind::membership::{ChangeAnswer, MemberChange, MembershipDriver};

use super::Cluster;
use super::command::{Command, NodeId};
use super::guard::{self, MemberFacts};
use super::handle::removed_text;
use crate::state::{Event, MembershipStep, ProcessState};

/// How long a background change keeps trying before it gives up and says so.
const CHANGE_LIMIT: Duration = Duration::from_secs(180);
/// How long `add` waits for the learner step of a kind that adds a member before starting it (the command
/// answers only then, since the node cannot start before).
const ADD_FIRST_LIMIT: Duration = Duration::from_secs(30);
/// How often the feed says how far a learner catching up has come.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How far behind the leader's last index a learner may be and still count as caught up.
pub const CATCH_UP_SLACK: u64 = 64;

pub use super::handle::id_list;

/// `{1,2,3,4,6}`, with ` learners {6}` when there are learners: a configuration for a person.
pub fn config_text(m: &Membership) -> String {
    let set = |s: &BTreeSet<NodeId>| {
        let v: Vec<String> = s.iter().map(u64::to_string).collect();
        format!("{{{}}}", v.join(","))
    };
    if m.learners.is_empty() {
        set(&m.voters)
    } else {
        format!("{} learners {}", set(&m.voters), set(&m.learners))
    }
}

/// "n4 catching up: match index 120 of leader n3's 4800 (4680 behind; `remove 4` cancels the add)".
fn catching_up_text(id: NodeId, matched: u64, leader: NodeId, last: u64) -> String {
    format!(
        "n{id} catching up: match index {matched} of leader n{leader}'s {last} ({} behind; `remove {id}` cancels \
         the add)",
        last.saturating_sub(matched)
    )
}

/// Which of a change's steps a call was, for the feed.
#[derive(Clone, Copy)]
enum Step {
    Learner(NodeId),
    Promote(NodeId),
    Remove(NodeId),
    Demote(NodeId),
}

impl Step {
    fn change(self) -> MemberChange {
        match self {
            Step::Learner(n) => MemberChange::AddLearner(n),
            Step::Promote(n) => MemberChange::Promote(n),
            Step::Remove(n) => MemberChange::Remove(n),
            Step::Demote(n) => MemberChange::Demote(n),
        }
    }
}

/// What a membership command answers: the node it changed, in words, and whether it is still under way.
pub(super) struct Said {
    /// The node it changed (the one an `add` or `replace` started).
    pub node: Option<NodeId>,
    /// What it did, or what it waits for.
    pub text: String,
    /// Under way: the feed tells the outcome.
    pub pending: bool,
}

impl Said {
    fn done(node: Option<NodeId>, text: String) -> Said {
        Said {
            node,
            text,
            pending: false,
        }
    }
}

/// How long a membership command may hold its caller before it answers `pending` and goes on as a task.
const PROMPT: Duration = Duration::from_secs(2);

/// The configuration a committed step left and its entry's index, when the driver said.
type Done = (Membership, u64);

/// What one attempt at a step came to.
enum Attempt {
    /// Committed: by this call (`true`), or already, as the node says (`false`).
    Done(Option<Done>, bool),
    /// Not yet: try again shortly; the reason in words, for the feed when it persists.
    Wait(String),
    /// It cannot happen; the reason in words.
    Fail(String),
}

impl Cluster {
    /// The configuration as the cluster knows it: the leader's, else the most recent (highest configuration
    /// index) any live node reported.
    pub(super) fn known_config(&self) -> Option<(Membership, u64, bool)> {
        // `leader()` takes the same lock: ask it first.
        let leader = self.leader().map(|(l, _)| l);
        let latest = self.inner.latest.lock().unwrap();
        if let Some(s) = leader.and_then(|l| latest.get(&l)) {
            return Some((
                s.core.config.clone(),
                s.core.config_index,
                s.core.config_committed,
            ));
        }
        latest
            .values()
            .filter(|s| !s.core.config.voters.is_empty())
            .max_by_key(|s| (s.core.config_index, s.core.config_committed))
            .map(|s| {
                (
                    s.core.config.clone(),
                    s.core.config_index,
                    s.core.config_committed,
                )
            })
    }

    fn member_facts(&self) -> MemberFacts {
        let config = self.known_config().map(|c| c.0).unwrap_or_default();
        MemberFacts {
            ids: self.inner.roster.lock().unwrap().ids.clone(),
            voters: config.voters,
            learners: config.learners,
            under_way: self.inner.change.lock().unwrap().clone(),
            adding: self.inner.adding.lock().unwrap().as_ref().map(|(n, _)| *n),
            live: self
                .node_ids()
                .into_iter()
                .filter(|n| {
                    matches!(
                        self.inner.procs.state(*n),
                        Some(squall_chaos::ProcState::Running { .. })
                    )
                })
                .collect(),
        }
    }

    /// What `wipe {id}` costs the quorum, for its answer ([`guard::wipe_cost`]; empty when nothing): judged on
    /// the configuration and the running voters now, as `remove` is. A kind whose node is not told it lost data
    /// (it starts as if new and votes at once) is not judged.
    pub(super) async fn wipe_cost(&self, id: NodeId) -> String {
        if !self.inner.spec.kind.told_of_lost_data() {
            return String::new();
        }
        guard::wipe_cost(id, &self.member_facts_now().await).unwrap_or_default()
    }

    /// [`Self::member_facts`], with the configuration asked of the membership driver when the kind's status
    /// reports none (etcd's member list).
    async fn member_facts_now(&self) -> MemberFacts {
        let mut facts = self.member_facts();
        if self.known_config().is_none()
            && let Some((config, _)) = self.config_now().await
        {
            facts.voters = config.voters;
            facts.learners = config.learners;
        }
        facts
    }

    /// The configuration now and whether it is committed: [`Self::known_config`], else the membership
    /// driver's word, asked of the leader (or any node with an address), for a kind whose status has no
    /// configuration. A driver answers from the applied configuration (etcd's member list), so committed.
    async fn config_now(&self) -> Option<(Membership, bool)> {
        if let Some((config, _, committed)) = self.known_config() {
            return Some((config, committed));
        }
        let driver = self.driver().ok()?;
        let mut asked: Vec<NodeId> = self.leader().map(|(l, _)| l).into_iter().collect();
        asked.extend(self.node_ids().into_iter().filter(|n| self.alive(*n)));
        for n in asked {
            if let Some(addr) = self.membership_addr(n)
                && let Some(config) = driver.config(addr).await
            {
                return Some((config, true));
            }
        }
        None
    }

    fn step_event(&self, node: NodeId, step: MembershipStep, text: String) {
        self.emit(Event::Membership { node, step, text });
    }

    /// `add`, `remove N`, `replace N`, `promote N`, `demote N` (see the module docs).
    /// Returns the node it changed (the one an `add` or `replace` started) with what it did, or that it is
    /// under way: a step that waits for a commit never holds the caller (the console, the feed) longer than
    /// [`PROMPT`]; it goes on as a task and the feed tells its outcome.
    pub(super) async fn perform_membership(&self, cmd: Command) -> Result<Said, String> {
        // Who leads now and what the configuration is, not what the last poll saw.
        let _ = self.ask_leader().await;
        guard::admit_membership(&cmd, &self.member_facts_now().await)?;
        let first = matches!(
            cmd,
            Command::Add | Command::AddLearner | Command::Replace(_)
        );
        if first && self.driver()?.adds_before_start() {
            // The learner step comes before the process starts and waits for its commit (etcd): as a task.
            let next = self.next_id();
            let what = match cmd {
                Command::Replace(n) => format!("replace node {n}"),
                _ => "add a node".to_string(),
            };
            *self.inner.change.lock().unwrap() =
                Some(format!("{what} (node {next}: its learner step)"));
            // Its own task, whose abort handle `adding` holds from the start: `remove {next}` cancels the add
            // while its learner step waits (tester: it was refused as "not a member yet" until the process
            // started). Held across the spawn, so the task cannot replace it with its own before it is set.
            let work = {
                let mut adding = self.inner.adding.lock().unwrap();
                let c = self.clone();
                let work = tokio::spawn(async move { c.grow_after_start(cmd).await });
                *adding = Some((next, work.abort_handle()));
                work
            };
            let c = self.clone();
            return self
                .answer_or_pending(
                    next,
                    format!(
                        "{what}: node {next} joins the configuration as a learner before it starts (this kind lists a member first), and that waits for a commit; the feed tells each step"
                    ),
                    async move {
                        let r = match work.await {
                            Ok(r) => r,
                            // `remove {next}` aborted it and tells the rest in the feed.
                            Err(e) if e.is_cancelled() => {
                                return Ok(format!(
                                    "{what}: cancelled by `remove {next}` (the feed tells what was undone)"
                                ));
                            }
                            Err(e) => Err(format!("{what}: {e}")),
                        };
                        if r.is_err() {
                            *c.inner.change.lock().unwrap() = None;
                            let mut adding = c.inner.adding.lock().unwrap();
                            if adding.as_ref().is_some_and(|(a, _)| *a == next) {
                                *adding = None;
                            }
                        }
                        r.map(|(_, said)| said)
                    },
                )
                .await;
        }
        if let Command::Promote(n) | Command::Demote(n) = cmd {
            let promote = matches!(cmd, Command::Promote(_));
            let what = if promote { "promote" } else { "demote" };
            *self.inner.change.lock().unwrap() = Some(format!("{what} node {n}"));
            let c = self.clone();
            // A quick answer (committed, or refused with the leader's reason) is the command's own; a change
            // that waits for a majority (a partition) answers `pending` and reports to the feed.
            return self
                .answer_or_pending(
                    n,
                    format!(
                        "{what} node {n}: the leader has not committed it yet; the feed tells its outcome"
                    ),
                    async move {
                        let r = if promote {
                            c.promote_by_hand(n).await
                        } else {
                            c.demote(n).await
                        };
                        *c.inner.change.lock().unwrap() = None;
                        r
                    },
                )
                .await;
        }
        self.grow_after_start(cmd)
            .await
            .map(|(node, text)| Said::done(node, text))
    }

    /// The membership change under way, in words ("demote node 4"), while there is one: `status` shows it as
    /// pending.
    pub fn change_under_way(&self) -> Option<String> {
        self.inner.change.lock().unwrap().clone()
    }

    /// The id the next `add` takes (never one taken before, removed nodes' included).
    fn next_id(&self) -> NodeId {
        self.inner
            .roster
            .lock()
            .unwrap()
            .ids
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            + 1
    }

    /// Runs `work` (a change about `node`) as a task; answers with its result if it ends within [`PROMPT`],
    /// else with `pending` (the task then reports a failure to the feed itself and clears the change under
    /// way).
    async fn answer_or_pending(
        &self,
        node: NodeId,
        pending: String,
        work: impl std::future::Future<Output = Result<String, String>> + Send + 'static,
    ) -> Result<Said, String> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let c = self.clone();
        tokio::spawn(async move {
            let r = work.await;
            if let Err(Err(why)) = tx.send(r) {
                // Nobody waits for the answer any more: the outcome goes to the feed.
                c.step_event(node, MembershipStep::Failed, why);
                *c.inner.change.lock().unwrap() = None;
            }
        });
        match tokio::time::timeout(PROMPT, &mut rx).await {
            Ok(Ok(r)) => r.map(|text| Said::done(Some(node), text)),
            Ok(Err(_)) => Err(format!(
                "the change about node {node} ended without an answer"
            )),
            Err(_) => {
                // Closed first: a result sent from here on goes to the feed, not to a caller gone.
                rx.close();
                match rx.try_recv() {
                    Ok(r) => r.map(|text| Said::done(Some(node), text)),
                    Err(_) => Ok(Said {
                        node: Some(node),
                        text: pending,
                        pending: true,
                    }),
                }
            }
        }
    }

    /// The body of [`Self::perform_membership`] once admitted.
    async fn grow_after_start(&self, cmd: Command) -> Result<(Option<NodeId>, String), String> {
        match cmd {
            Command::Add | Command::AddLearner | Command::Replace(_) => {
                let old = match cmd {
                    Command::Replace(n) => Some(n),
                    _ => None,
                };
                // `add --learner` stops after the learner step: no automatic promotion.
                let promote = cmd != Command::AddLearner;
                let what = match old {
                    Some(n) => format!("replace node {n}"),
                    None => "add a node".to_string(),
                };
                *self.inner.change.lock().unwrap() =
                    Some(format!("{what}: node {} joins", self.next_id()));
                let (id, pid, host) = match self.start_new_node(old).await {
                    Ok(x) => x,
                    Err(e) => {
                        *self.inner.change.lock().unwrap() = None;
                        return Err(format!("{what}: {e:#}"));
                    }
                };
                *self.inner.change.lock().unwrap() = Some(match old {
                    Some(n) => format!("replace node {n} by node {id}"),
                    None => format!("add node {id}"),
                });
                let c = self.clone();
                let task = tokio::spawn(async move {
                    c.grow(id, old, promote).await;
                    *c.inner.adding.lock().unwrap() = None;
                    *c.inner.change.lock().unwrap() = None;
                });
                *self.inner.adding.lock().unwrap() = Some((id, task.abort_handle()));
                if task.is_finished() {
                    *self.inner.adding.lock().unwrap() = None;
                }
                // On other hosts, where it runs and why: `add node 6 on host-b (...): started ...`.
                let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
                let said = match old {
                    None if !promote => format!(
                        "add node {id} as a learner{on}: started (pid {pid}); it joins as a learner and stays one \
                         (`promote {id}` makes it a voter; the feed tells each step)"
                    ),
                    Some(n) => format!(
                        "replace node {n}: node {id}{on} started (pid {pid}); it joins as a learner, is promoted \
                         once caught up, then node {n} is removed (the feed tells each step)"
                    ),
                    None => format!(
                        "add node {id}{on}: started (pid {pid}); it joins as a learner and is promoted once caught \
                         up (the feed tells each step)"
                    ),
                };
                Ok((Some(id), said))
            }
            Command::Remove(n)
                if self
                    .inner
                    .adding
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|(a, _)| *a == n) =>
            {
                if let Some((_, task)) = self.inner.adding.lock().unwrap().take() {
                    task.abort();
                }
                *self.inner.change.lock().unwrap() = Some(format!("remove node {n}"));
                self.step_event(
                    n,
                    MembershipStep::Waiting,
                    format!(
                        "add node {n} cancelled by `remove {n}`: node {n} leaves the configuration if it got in, \
                         then stops"
                    ),
                );
                let c = self.clone();
                tokio::spawn(async move {
                    c.cancel_add(n).await;
                    *c.inner.change.lock().unwrap() = None;
                });
                Ok((
                    Some(n),
                    format!(
                        "remove node {n}: the add of node {n} is cancelled; node {n} leaves the configuration if \
                         it got in, then its process stops (the feed tells each step)"
                    ),
                ))
            }
            Command::Remove(n) => {
                *self.inner.change.lock().unwrap() = Some(format!("remove node {n}"));
                let before = self.known_config().map(|c| config_text(&c.0));
                let c = self.clone();
                tokio::spawn(async move {
                    c.shrink(n).await;
                    *c.inner.change.lock().unwrap() = None;
                });
                Ok((
                    Some(n),
                    format!(
                        "remove node {n}{}: under way; its process stops once the change commits (the feed \
                         tells each step)",
                        before.map(|b| format!(" from {b}")).unwrap_or_default()
                    ),
                ))
            }
            Command::Promote(_) | Command::Demote(_) => {
                unreachable!("promote and demote are performed by perform_membership")
            }
            other => Err(format!("`{other}` is not a membership change")),
        }
    }

    /// `promote N`, answered once committed (or refused with the leader's reason).
    async fn promote_by_hand(&self, n: NodeId) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.attempt(Step::Promote(n)).await {
                Attempt::Done(done, _) => {
                    let text = self.committed_text(done.as_ref());
                    self.step_event(
                        n,
                        MembershipStep::Promoted,
                        format!("n{n} promoted to voter by hand"),
                    );
                    self.step_event(n, MembershipStep::Committed, text.clone());
                    return Ok(format!("promote node {n} to voter: {text}"));
                }
                Attempt::Fail(why) => return Err(format!("node {n} not promoted: {why}")),
                Attempt::Wait(why) if Instant::now() > deadline => {
                    return Err(format!("node {n} not promoted within 10 s: {why}"));
                }
                Attempt::Wait(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `demote N`, answered once committed (or refused with the leader's reason).
    async fn demote(&self, n: NodeId) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.attempt(Step::Demote(n)).await {
                Attempt::Done(done, _) => {
                    let text = self.committed_text(done.as_ref());
                    self.step_event(
                        n,
                        MembershipStep::Committed,
                        format!("n{n} demoted to learner: {text}"),
                    );
                    return Ok(format!("demote node {n} to learner: {text}"));
                }
                Attempt::Fail(why) => return Err(format!("node {n} not demoted: {why}")),
                Attempt::Wait(why) if Instant::now() > deadline => {
                    return Err(format!("node {n} not demoted within 10 s: {why}"));
                }
                Attempt::Wait(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// "configuration {1,2,3,4,6} committed at 812".
    fn committed_text(&self, done: Option<&Done>) -> String {
        match done {
            Some((config, index)) => {
                format!("configuration {} committed at {index}", config_text(config))
            }
            None => match self.known_config() {
                Some((m, index, _)) => {
                    format!("configuration {} committed at {index}", config_text(&m))
                }
                None => "configuration committed".to_string(),
            },
        }
    }

    /// Starts node `next free id` with `--join` (`replacing` a node: on that node's host when the nodes run on
    /// other hosts): its host, links, directory, process, and every running node told its address. Returns
    /// its id, its pid and, on other hosts, its host in words.
    async fn start_new_node(
        &self,
        replacing: Option<NodeId>,
    ) -> anyhow::Result<(NodeId, u32, Option<String>)> {
        // Before any link, slot or roster entry exists: a failed start leaves no phantom member (tester2 item 3).
        // On other hosts the program is looked up there (etcd's kind names it bare, for each agent's `PATH`):
        // the agents are asked, not this machine.
        let program = &self.inner.spec.node_program;
        if self.inner.procs.is_remote() {
            self.inner.procs.check_program(program).await
        } else {
            super::start::runnable(program)
        }
        .map_err(|why| anyhow::anyhow!("{why} (nothing was done)"))?;
        let existing = self.node_ids();
        // Never an id this directory held before, removed nodes' included.
        let id = self.next_id();
        let driver = self
            .driver()
            .map_err(|e| anyhow::anyhow!("{e} (nothing was done)"))?;
        // Its host first: its proxies, its process and its requests go there.
        let host = self
            .place_new(id, replacing)
            .map_err(|e| anyhow::anyhow!(e))?;
        let mut proxies = BTreeMap::new();
        match self.inner.spec.kind.peers.model {
            PeerModel::PerSender => {
                for &other in &existing {
                    for (from, to) in [(id, other), (other, id)] {
                        let addr = self.inner.links.add_link(from, to).await.map_err(|e| {
                            anyhow::anyhow!("starting the proxy for link {from}->{to}: {e}")
                        })?;
                        proxies.insert((from, to), addr);
                    }
                }
            }
            PeerModel::PerDestination => {
                // One proxy in front of each member, the new one's too; its `{peers}` lists every member
                // after the add (itself included), as etcd wants of a joining member, so not the removed.
                let own = self.inner.links.add_destination(id).await.map_err(|e| {
                    anyhow::anyhow!("starting the proxy in front of node {id}: {e}")
                })?;
                // Recorded before any member hears of it: they store it, and a later session must listen
                // there again (`advertised.json`).
                self.record_destination(id, own)
                    .map_err(|e| anyhow::anyhow!("{e} (node {id} was not added)"))?;
                proxies.insert((id, id), own);
                let removed = self.inner.roster.lock().unwrap().removed.clone();
                for &other in existing.iter().filter(|o| !removed.contains(o)) {
                    let addr = self.inner.links.add_destination(other).await.map_err(|e| {
                        anyhow::anyhow!("starting the proxy in front of node {other}: {e}")
                    })?;
                    proxies.insert((id, other), addr);
                    proxies.insert((other, id), own);
                }
            }
        }
        // A fresh id (ids are never reused: the roster keeps every one taken), so its empty directory is a new
        // member's, not one that lost data: it never voted and never acknowledged an entry, and starting it as
        // lost data would hold it in recovery until every other voter answered (the recovery rule since the
        // double-vote fix), so one voter down kept an added node from ever becoming a voter. Its restarts are
        // `existing` (`restart_flags`).
        let mut slot = self
            .slot_for(id, &proxies, true, squall_node::storage::InitialState::New)
            .await?;
        if self.inner.spec.disk_faults && self.inner.procs.is_remote() {
            // As for the first nodes (`start_nodes`): its data directory is its agent's fault filesystem, its
            // clock faked through the shim there.
            let env = self
                .mount_on_host(id, &slot.facts.node_dir)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("disk faults for node {id}: {e} (node {id} was not started)")
                })?;
            slot.spec.env.extend(env);
        }
        let spec = slot.spec.clone();
        self.inner.slots.lock().unwrap().insert(id, slot);
        // Recorded before it starts: a later session must know id `id` is taken, and that node `id` is not a
        // member until its learner step commits (tester2 item 1).
        self.update_roster(|r| {
            r.ids.insert(id);
            r.joined.insert(id);
            r.pending.insert(id);
        });
        let covered = self.extend_faults_to(id);
        if covered > 0 {
            self.publish_faults();
        }
        if driver.adds_before_start() {
            // The member goes into the configuration first (etcd refuses to start a member the cluster does
            // not list), with the address its peers reach it at: its proxy.
            let limit = Instant::now() + ADD_FIRST_LIMIT;
            if let Err(why) = self.until_committed(id, Step::Learner(id), limit).await {
                self.inner.slots.lock().unwrap().remove(&id);
                // The id stays taken (the learner step may still commit), but the node never ran: a later
                // session must not start it.
                self.update_roster(|r| {
                    r.joined.remove(&id);
                    r.pending.remove(&id);
                    r.removed.insert(id);
                });
                anyhow::bail!(
                    "node {id} was not added as a learner, so it was not started: {why} (if the cluster \
                     lists it after all, `remove {id}` takes it out)"
                );
            }
        }
        // Nothing is said before the process exists (a tester read `n5 starting` in the feed before there was
        // a process, and a spawn may still fail): its first line is "running, pid N", once spawned.
        let pid = match self.inner.procs.spawn(id, spec).await {
            Ok(pid) => pid,
            Err(e) => {
                self.inner.slots.lock().unwrap().remove(&id);
                // It never ran, so it holds no data: a later session must not start it as a member.
                self.update_roster(|r| {
                    r.ids.remove(&id);
                    r.joined.remove(&id);
                    r.pending.remove(&id);
                });
                anyhow::bail!("starting node {id}: {e}");
            }
        };
        self.emit(Event::Process {
            node: id,
            state: ProcessState::Running { pid },
        });
        self.await_listening(id).await?;
        tokio::spawn(super::poll::poll_node(self.clone(), id));
        // Every running node learns where the new node is: its inbound proxy from that node.
        for other in existing {
            if let Some(addr) = self.proxy_addr(other, id).await {
                let _ = self.set_peer_addr(other, id, addr).await;
            }
        }
        Ok((id, pid, host))
    }

    /// The proxy address of link `from -> to` (where `from` dials to reach `to`).
    /// The address `from` reaches `to` at: the proxy of that link (per sender) or the one in front of `to`
    /// (per destination).
    async fn proxy_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        match self.inner.spec.kind.peers.model {
            PeerModel::PerSender => self.inner.links.add_link(from, to).await.ok(),
            PeerModel::PerDestination => self.inner.links.add_destination(to).await.ok(),
        }
    }

    /// The kind's membership driver; `Err` says why the kind has none (checked before any change starts).
    fn driver(&self) -> Result<Box<dyn MembershipDriver>, String> {
        self.inner.spec.kind.membership_driver()
    }

    /// Where node `id`'s membership driver reaches it (the kind's membership port), once it is ready.
    fn membership_addr(&self, id: NodeId) -> Option<SocketAddr> {
        let port = self.inner.spec.kind.membership_port()?;
        let slots = self.inner.slots.lock().unwrap();
        slots.get(&id)?.addrs.as_ref()?.ports.get(port).copied()
    }

    /// Tells node `on` that node `id` is at `addr` (for a kind whose members learn new peers at run time).
    async fn set_peer_addr(&self, on: NodeId, id: NodeId, addr: SocketAddr) -> Result<(), String> {
        let at = self
            .membership_addr(on)
            .ok_or_else(|| format!("node {on} has no address yet"))?;
        self.driver()?
            .tell_peer(at, id, addr)
            .await
            .map_err(|e| format!("node {on}: {e}"))
    }

    /// After node `id` (re)started: tells it where every other node is that its `--peers` (`named`) does not
    /// name.
    pub(super) async fn tell_peer_addrs(
        &self,
        id: NodeId,
        named: &std::collections::BTreeSet<NodeId>,
    ) {
        for other in self.node_ids() {
            if other == id || named.contains(&other) {
                continue;
            }
            if let Some(addr) = self.proxy_addr(id, other).await {
                let _ = self.set_peer_addr(id, other, addr).await;
            }
        }
    }

    /// One try at a step on whichever node leads now.
    async fn attempt(&self, step: Step) -> Attempt {
        let driver = match self.driver() {
            Ok(d) => d,
            Err(why) => return Attempt::Fail(why),
        };
        let Some((leader, term)) = self.ask_leader().await else {
            return Attempt::Wait(self.waiting_for_majority("no node leads"));
        };
        let Some(at) = self.membership_addr(leader) else {
            return Attempt::Wait(format!("leader {leader}'s address is not known yet"));
        };
        let change = step.change();
        // Where the members reach a node being added: a kind that stores one address per member needs it.
        let peer = match change {
            MemberChange::AddLearner(id) => self.proxy_addr(leader, id).await,
            // A member store that names members by their peer address finds one not started yet by it.
            other if self.inner.spec.kind.peers.model == PeerModel::PerDestination => {
                self.proxy_addr(leader, other.node()).await
            }
            _ => None,
        };
        match driver.change(at, change, peer).await {
            ChangeAnswer::Committed(done) => Attempt::Done(done, true),
            // Already done, by this change's earlier try (whose answer was lost) or by a leader since.
            // The node's word alone is not enough: an entry it appended may not be committed (an add that
            // answered 504 after 10 s leaves one), so it is done only once a committed configuration shows it.
            ChangeAnswer::Already => match self.config_now().await {
                Some((config, true)) if shows(change, &config) => Attempt::Done(None, false),
                Some((config, committed)) => Attempt::Wait(format!(
                    "leader {leader} says the configuration already has it, but the {} configuration {} does \
                     not show it yet (the entry for it is not committed yet)",
                    if committed { "committed" } else { "latest" },
                    config_text(&config)
                )),
                None => Attempt::Wait(format!(
                    "leader {leader} says the configuration already has it, but no node says which \
                     configuration is committed yet"
                )),
            },
            ChangeAnswer::NoAddress(id) => {
                if let Some(addr) = self.proxy_addr(leader, id).await {
                    let _ = self.set_peer_addr(leader, id, addr).await;
                }
                Attempt::Wait(format!("leader {leader} did not know node {id}'s address"))
            }
            ChangeAnswer::Timeout => {
                // The call took long: say who leads now, not who led when it was made.
                match self.ask_leader().await {
                    Some((now, now_term)) if (now, now_term) == (leader, term) => {
                        Attempt::Wait(self.waiting_for_majority(&format!(
                            "leader {leader} (term {term}) has not committed it"
                        )))
                    }
                    Some((now, now_term)) => Attempt::Wait(format!(
                        "node {leader} no longer leads (node {now} leads term {now_term}); asking node {now}"
                    )),
                    None => Attempt::Wait(self.waiting_for_majority(&format!(
                        "no node leads since leader {leader} (term {term})"
                    ))),
                }
            }
            ChangeAnswer::Wait(why) => Attempt::Wait(why),
            ChangeAnswer::Refused(why) => Attempt::Fail(why),
        }
    }

    /// "the change waits for a majority of the current configuration {1,2,3} (no node leads)".
    fn waiting_for_majority(&self, why: &str) -> String {
        let config = self
            .known_config()
            .map(|(m, _, _)| format!(" {}", config_text(&m)))
            .unwrap_or_default();
        format!("the change waits for a majority of the current configuration{config} ({why})")
    }

    /// Repeats a step until it commits, it cannot happen, or [`CHANGE_LIMIT`] passes; says once in the feed
    /// what it waits for whenever that changes.
    async fn until_committed(
        &self,
        node: NodeId,
        step: Step,
        limit: Instant,
    ) -> Result<Option<Done>, String> {
        self.until_made(node, step, limit)
            .await
            .map(|(done, _)| done)
    }

    /// [`Self::until_committed`], also saying whether a call made the change (`false`: it was made already).
    async fn until_made(
        &self,
        node: NodeId,
        step: Step,
        limit: Instant,
    ) -> Result<(Option<Done>, bool), String> {
        let mut said: Option<String> = None;
        let mut stop = self.stopping();
        let budget = limit.saturating_duration_since(Instant::now());
        loop {
            match self.attempt(step).await {
                Attempt::Done(d, made) => return Ok((d, made)),
                Attempt::Fail(why) => return Err(why),
                Attempt::Wait(why) => {
                    if Instant::now() > limit {
                        // A driver's "…; retrying" was true until now.
                        let why = why.strip_suffix("; retrying").unwrap_or(&why);
                        return Err(format!(
                            "gave up after {}: {why}",
                            crate::units::duration(budget)
                        ));
                    }
                    // Say it when the kind of wait changes (the leader's own words vary with indexes).
                    let kind: String = why.chars().take(40).collect();
                    if said.as_deref() != Some(kind.as_str()) {
                        self.step_event(node, MembershipStep::Waiting, format!("n{node}: {why}"));
                        said = Some(kind);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return Err("the session is ending".into()),
            }
        }
    }

    fn fail_step(&self, node: NodeId, what: &str, why: &str, todo: &str) {
        self.step_event(
            node,
            MembershipStep::Failed,
            format!("{what} failed: {why}; {todo}"),
        );
    }

    /// The background part of `add` / `replace`: learner, catch-up, promotion, then (replace) removal.
    async fn grow(&self, id: NodeId, old: Option<NodeId>, promote: bool) {
        let limit = Instant::now() + CHANGE_LIMIT;
        let what = format!("add node {id}");
        let todo =
            format!("node {id} keeps running; `remove {id}` takes it out, `promote {id}` retries");
        match self.until_committed(id, Step::Learner(id), limit).await {
            Ok(done) => {
                // In the configuration now: a later session starts it (with `--join`).
                self.update_roster(|r| {
                    r.pending.remove(&id);
                });
                let at = self.committed_text(done.as_ref());
                self.step_event(
                    id,
                    MembershipStep::Learner,
                    format!("n{id} joins as a learner ({at})"),
                );
            }
            Err(why) => return self.fail_step(id, &what, &why, &todo),
        }
        if !promote {
            // `add --learner`: it stays a learner; `remove {id}` is an ordinary removal from here on.
            *self.inner.adding.lock().unwrap() = None;
            return;
        }
        if let Err(why) = self.await_caught_up(id, limit).await {
            return self.fail_step(id, &what, &why, &todo);
        }
        match self.until_committed(id, Step::Promote(id), limit).await {
            Ok(done) => {
                self.step_event(
                    id,
                    MembershipStep::Promoted,
                    format!("n{id} caught up, promoted to voter"),
                );
                let text = self.committed_text(done.as_ref());
                self.step_event(id, MembershipStep::Committed, text);
            }
            Err(why) => return self.fail_step(id, &what, &why, &todo),
        }
        // A voter now: `remove {id}` is an ordinary removal from here on.
        *self.inner.adding.lock().unwrap() = None;
        if let Some(old) = old {
            self.shrink(old).await;
        }
    }

    /// Waits until the leader's progress shows learner `id` within [`CATCH_UP_SLACK`] entries of its log;
    /// says once when a snapshot is being sent to it.
    async fn await_caught_up(&self, id: NodeId, limit: Instant) -> Result<(), String> {
        let mut said_snapshot = false;
        let mut stop = self.stopping();
        let mut next_report = Instant::now() + PROGRESS_EVERY;
        loop {
            if let Some((leader, _)) = self.ask_leader().await
                && let Some(s) = self.status(leader)
                && let Some(p) = s.core.progress.iter().find(|p| p.id == id)
            {
                if Instant::now() >= next_report {
                    next_report = Instant::now() + PROGRESS_EVERY;
                    self.step_event(
                        id,
                        MembershipStep::CatchingUp,
                        catching_up_text(id, p.match_index, leader, s.core.last_log_index),
                    );
                }
                if p.snapshotting && !said_snapshot {
                    said_snapshot = true;
                    self.step_event(
                        id,
                        MembershipStep::CatchingUp,
                        format!(
                            "n{id} catches up by snapshot ({} entries behind leader n{leader})",
                            s.core.last_log_index.saturating_sub(p.match_index)
                        ),
                    );
                }
                if p.match_index > 0 && p.match_index + CATCH_UP_SLACK >= s.core.last_log_index {
                    return Ok(());
                }
            } else if let Some((leader, _)) = self.leader()
                && self.status(leader).is_none()
                && let (Some(lc), Some(own)) =
                    (self.commit_of(leader).await, self.commit_of(id).await)
                && own + CATCH_UP_SLACK >= lc
            {
                // A kind that reports no replication progress: the learner's own commit index against the
                // leader's says how far behind it is.
                return Ok(());
            }
            if Instant::now() > limit {
                return Err(format!(
                    "node {id} did not catch up within {}",
                    crate::units::duration(CHANGE_LIMIT)
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => return Err("the session is ending".into()),
            }
        }
    }

    /// Node `id`'s commit index as its kind's status driver reports it now (`None`: not reported, no answer).
    async fn commit_of(&self, id: NodeId) -> Option<u64> {
        let addr = self.status_addr(id)?;
        let mut source = self
            .inner
            .spec
            .kind
            .status_once(addr, Duration::from_millis(500));
        let report = source.poll().await.ok()?;
        // A kind that reports no commit index (etcd) is judged by what it applied, which follows it.
        report.commit.or(report.applied)
    }

    /// The background part of `remove N`: `Remove` until committed, then N's process is stopped.
    async fn shrink(&self, n: NodeId) {
        let limit = Instant::now() + CHANGE_LIMIT;
        self.inner.leaving.lock().unwrap().asked.insert(n);
        match self.until_committed(n, Step::Remove(n), limit).await {
            Ok(done) => {
                self.update_roster(|r| {
                    r.removed.insert(n);
                });
                let text = self.committed_text(done.as_ref());
                self.step_event(n, MembershipStep::Committed, text);
            }
            Err(why) => {
                self.inner.leaving.lock().unwrap().asked.remove(&n);
                return self.fail_step(
                    n,
                    &format!("remove node {n}"),
                    &why,
                    &format!("node {n} keeps running; `remove {n}` tries again"),
                );
            }
        }
        self.await_successor(n).await;
        self.stop_removed(n).await;
    }

    /// Waits, before a removed node is stopped, until another node leads, for at most
    /// [`HANDOVER_TIMEOUTS`] election timeouts. A leader that removed itself hands leadership over with
    /// TimeoutNow, and when that message is lost it tells the next voter two heartbeats later (issue 18, L2):
    /// stopped as soon as its removal committed, it could not, and the cluster waited a whole election
    /// timeout for a leader. A removed follower finds a leader at once.
    async fn await_successor(&self, n: NodeId) {
        let limit = self.inner.spec.election_timeout.1 * HANDOVER_TIMEOUTS;
        let deadline = Instant::now() + limit;
        let mut stop = self.stopping();
        while Instant::now() < deadline && self.alive(n) {
            if self.ask_leader().await.is_some_and(|(l, _)| l != n) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The rest of `remove N` of the node an `add` under way was adding (its task already aborted): out of the
    /// configuration if it got in, then its process stops; never started again either way.
    async fn cancel_add(&self, n: NodeId) {
        if self.driver().is_ok_and(|d| d.adds_before_start()) {
            return self.cancel_listed_add(n).await;
        }
        let _ = self.ask_leader().await;
        let in_config = self
            .known_config()
            .is_some_and(|(m, _, _)| m.voters.contains(&n) || m.learners.contains(&n));
        if in_config {
            return self.shrink(n).await;
        }
        self.update_roster(|r| {
            r.removed.insert(n);
        });
        self.stop_removed(n).await;
        // An `AddLearner` the leader received just before the cancel may still be in its log: take it out.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = self.ask_leader().await;
        let got_in = self
            .known_config()
            .is_some_and(|(m, _, _)| m.voters.contains(&n) || m.learners.contains(&n));
        if got_in {
            let limit = Instant::now() + CHANGE_LIMIT;
            match self.until_committed(n, Step::Remove(n), limit).await {
                Ok(done) => {
                    let text = self.committed_text(done.as_ref());
                    self.step_event(n, MembershipStep::Committed, text);
                }
                Err(why) => self.fail_step(
                    n,
                    &format!("remove node {n}"),
                    &why,
                    &format!("`remove {n}` tries again"),
                ),
            }
        }
    }

    /// [`Self::cancel_add`] for a kind that lists a member before its process starts (etcd): the add may have
    /// stopped anywhere from before its learner step to after the process started. The member is removed
    /// through the driver, which finds it by name or, not started yet, by its peer URL (a member that is not
    /// there is already removed); then the process is stopped if it was started, and the feed says which of
    /// these happened. A learner step in flight when the add was cancelled may still be applied after that
    /// removal: looked for once more a moment later.
    async fn cancel_listed_add(&self, n: NodeId) {
        let limit = Instant::now() + CHANGE_LIMIT;
        self.inner.leaving.lock().unwrap().asked.insert(n);
        let removal = self.until_made(n, Step::Remove(n), limit).await;
        let spawned = self.inner.procs.state(n).is_some();
        self.update_roster(|r| {
            r.ids.insert(n);
            r.pending.remove(&n);
            r.removed.insert(n);
            if !spawned {
                r.joined.remove(&n);
            }
        });
        if !spawned {
            // It never ran: no process, no log, nothing to show (as for an add whose learner step failed).
            self.inner.slots.lock().unwrap().remove(&n);
        }
        match removal {
            Ok((done, true)) => {
                let text = self.committed_text(done.as_ref());
                self.step_event(
                    n,
                    MembershipStep::Committed,
                    format!("n{n} had joined the configuration: taken out again ({text})"),
                );
            }
            Ok((_, false)) => self.step_event(
                n,
                MembershipStep::Committed,
                format!("n{n} never joined the configuration: nothing to take out"),
            ),
            Err(why) => self.fail_step(
                n,
                &format!("remove node {n}"),
                &why,
                &format!(
                    "the cluster may still list node {n} as a learner; `remove {n}` tries again"
                ),
            ),
        }
        if spawned {
            self.stop_removed(n).await;
        } else {
            self.step_event(
                n,
                MembershipStep::Removed,
                format!("n{n} removed: its process was never started"),
            );
        }
        // A member add sent just before the cancel may be applied only now: take it out if so.
        let mut stop = self.stopping();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        if let Attempt::Done(done, true) = self.attempt(Step::Remove(n)).await {
            let text = self.committed_text(done.as_ref());
            self.step_event(
                n,
                MembershipStep::Committed,
                format!("n{n}'s learner step, sent before the cancel, was applied late: taken out ({text})"),
            );
        }
    }

    /// Stops node `n`'s process once it is out of the configuration (SIGTERM, then SIGKILL) and says so, once:
    /// the exit's watcher says it when it sees the exit first (see [`super::handle::Leaving`]).
    async fn stop_removed(&self, n: NodeId) {
        // Out of the configuration: its process has nothing left to do. SIGTERM, then wait for the exit.
        let was_running = {
            let mut leaving = self.inner.leaving.lock().unwrap();
            let running = self.alive(n);
            if !running && leaving.left.contains(&n) {
                // It ended itself once removed, and the feed said so then ("left the cluster").
                return;
            }
            if running {
                leaving.stopping.insert(n);
            }
            running
        };
        if was_running {
            if matches!(
                self.inner.procs.state(n),
                Some(squall_chaos::ProcState::Paused { .. })
            ) {
                let _ = self.inner.procs.resume(n).await;
            }
            let _ = self.inner.procs.terminate(n).await;
            self.await_exit(n, Duration::from_secs(5)).await;
            if self.alive(n) {
                let _ = self.inner.procs.kill(n).await;
                self.await_exit(n, Duration::from_secs(2)).await;
            }
            let mut leaving = self.inner.leaving.lock().unwrap();
            if leaving.stopping.remove(&n) {
                // The exit's watcher has not seen it yet: said here, under the lock, so the exit it sees next
                // finds the node removed and says nothing.
                self.step_event(n, MembershipStep::Removed, removed_text(n, true));
            }
            return;
        }
        self.step_event(n, MembershipStep::Removed, removed_text(n, false));
    }
}

/// Whether configuration `m` has `change` made: the node a learner or voter after an add, a voter after a
/// promotion, a learner after a demotion, in neither after a removal.
fn shows(change: MemberChange, m: &Membership) -> bool {
    match change {
        MemberChange::AddLearner(n) => m.voters.contains(&n) || m.learners.contains(&n),
        MemberChange::Promote(n) => m.voters.contains(&n),
        MemberChange::Demote(n) => m.learners.contains(&n) && !m.voters.contains(&n),
        MemberChange::Remove(n) => !m.voters.contains(&n) && !m.learners.contains(&n),
    }
}

/// How many election timeouts a removed node keeps running for its hand-over (see
/// `Cluster::await_successor`): enough for TimeoutNow to reach every other voter in turn.
const HANDOVER_TIMEOUTS: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_shown_only_by_a_configuration_that_has_it_made() {
        let m = Membership {
            voters: [1, 2, 3].into(),
            learners: [4].into(),
        };
        assert!(shows(MemberChange::AddLearner(4), &m));
        assert!(shows(MemberChange::AddLearner(2), &m));
        assert!(!shows(MemberChange::AddLearner(5), &m));
        assert!(!shows(MemberChange::Promote(4), &m));
        assert!(shows(MemberChange::Promote(3), &m));
        assert!(shows(MemberChange::Demote(4), &m));
        assert!(!shows(MemberChange::Demote(3), &m));
        assert!(shows(MemberChange::Remove(5), &m));
        assert!(!shows(MemberChange::Remove(4), &m));
    }

    #[test]
    fn a_removal_of_a_dead_node_does_not_say_its_process_stopped() {
        assert!(removed_text(5, true).contains("its process stopped"));
        let t = removed_text(5, false);
        assert!(!t.contains("stopped") && t.contains("not running"), "{t}");
    }

    #[test]
    fn the_catch_up_line_gives_both_indexes_and_how_to_cancel() {
        let t = catching_up_text(4, 120, 3, 4800);
        assert!(
            t.contains("match index 120") && t.contains("n3's 4800") && t.contains("4680 behind"),
            "{t}"
        );
        assert!(t.contains("`remove 4` cancels"), "{t}");
    }
}
