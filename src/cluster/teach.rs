//! Teaching mode: time stands still for the nodes while a person steps an election by hand (`freeze`, `thaw`,
//! `timeout N`, `heartbeat`), the held queue's stale frames (`drop-stale`, the marks of `held`), and the log
//! range a dashboard scrolled back past the status's tail fetches ([`Cluster::log_range`]).
//!
//! Whether a node can be frozen is its kind's business: squall's node can (its control service stops its
//! timers). Every call that asks a node goes through one function per control below ([`set_node_frozen`],
//! [`fire_node_timeout`], [`node_heartbeats`]), so a node-kind layer routes them, or refuses them for a kind
//! that cannot, in one place.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use squall_node::raft::types::Role;
use squall_node::rpc::{Campaign, LogCell};

use super::command::{FaultTarget, NodeId};
use super::{Cluster, Outcome};
use crate::state::HeldView;
use crate::state::held::{held_line, next_to_step, refusal, stale, superseded_note, surplus};

/// The node flag that starts a node frozen: nodes that start or restart during teaching mode get it.
pub(super) const FROZEN_FLAG: &str = "--frozen";

/// How long a node has to answer a teaching-mode control.
const CONTROL_DEADLINE: Duration = Duration::from_secs(2);

/// Stops (or restarts) node `addr`'s timers.
async fn set_node_frozen(addr: SocketAddr, frozen: bool) -> Result<(), String> {
    let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
        .await
        .map_err(|e| format!("unreachable ({e})"))?;
    client
        .set_frozen(squall_node::transport::deadline(CONTROL_DEADLINE), frozen)
        .await
        .map_err(|e| format!("did not answer ({e})"))?
}

/// Fires node `addr`'s election timer.
async fn fire_node_timeout(addr: SocketAddr) -> Result<Campaign, String> {
    let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
        .await
        .map_err(|e| format!("unreachable ({e})"))?;
    client
        .fire_election_timeout(squall_node::transport::deadline(CONTROL_DEADLINE))
        .await
        .map_err(|e| format!("did not answer ({e})"))?
}

/// Has leader `addr` send its heartbeats; answers how many followers it sent one.
async fn node_heartbeats(addr: SocketAddr) -> Result<u32, String> {
    let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
        .await
        .map_err(|e| format!("unreachable ({e})"))?;
    client
        .send_heartbeats(squall_node::transport::deadline(CONTROL_DEADLINE))
        .await
        .map_err(|e| format!("did not answer ({e})"))?
}

/// Asks node `addr` for its entries at `from..=to`.
async fn node_log_range(addr: SocketAddr, from: u64, to: u64) -> Result<Vec<LogCell>, String> {
    let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
        .await
        .map_err(|e| format!("unreachable ({e})"))?;
    client
        .log_range(squall_node::transport::deadline(CONTROL_DEADLINE), from, to)
        .await
        .map_err(|e| format!("did not answer ({e})"))?
}

/// Where a node's process is, for the teaching controls' refusals.
enum Proc {
    Running,
    Paused,
    Down,
}

impl Cluster {
    /// Whether teaching mode is on.
    pub fn frozen(&self) -> bool {
        self.inner.frozen.load(Ordering::SeqCst)
    }

    /// Puts [`FROZEN_FLAG`] in a node's restart flags exactly when teaching mode is on.
    pub(super) fn frozen_flag(&self, args: &mut Vec<std::ffi::OsString>) {
        args.retain(|a| a != FROZEN_FLAG);
        if self.frozen() {
            args.push(FROZEN_FLAG.into());
        }
    }

    fn proc(&self, id: NodeId) -> Proc {
        match self.inner.procs.state(id) {
            Some(squall_chaos::ProcState::Running { .. }) => Proc::Running,
            Some(squall_chaos::ProcState::Paused { .. }) => Proc::Paused,
            _ => Proc::Down,
        }
    }

    /// `freeze` (`frozen`) or `thaw`: tells every running node, and makes nodes that start later start so.
    /// Refused when it is already so, and when no running node could be told.
    pub(super) async fn freeze(&self, frozen: bool) -> Result<String, String> {
        let verb = if frozen { "freeze" } else { "thaw" };
        if self.inner.frozen.swap(frozen, Ordering::SeqCst) == frozen {
            return Err(if frozen {
                "the nodes are frozen already (teaching mode); `thaw` runs their timers again"
                    .into()
            } else {
                "the nodes are not frozen; `freeze` stops their timers".into()
            });
        }
        // Nodes told before a failure stay told, so the flag follows what was asked even when refused below.
        let ids = self.node_ids();
        let addrs = self.api_addrs();
        let mut told = Vec::new();
        let mut notes = Vec::new();
        for &id in &ids {
            match self.proc(id) {
                Proc::Down => notes.push(format!(
                    "n{id} is down and starts {}",
                    if frozen {
                        "frozen"
                    } else {
                        "with its timers running"
                    }
                )),
                Proc::Paused => notes.push(format!(
                    "n{id} is paused and {} when resumed",
                    if frozen { "is frozen" } else { "thawed" }
                )),
                Proc::Running => {
                    let Some(&addr) = addrs.get(&id) else {
                        notes.push(format!("n{id}'s address is not known yet; `{verb}` again"));
                        continue;
                    };
                    match set_node_frozen(addr, frozen).await {
                        Ok(()) => told.push(format!("n{id}")),
                        Err(e) => notes.push(format!("n{id} {e}")),
                    }
                }
            }
        }
        if told.is_empty() && !notes.is_empty() && notes.iter().all(|n| !n.contains("is down")) {
            self.inner.frozen.store(!frozen, Ordering::SeqCst);
            return Err(format!("no node could be told: {}", notes.join("; ")));
        }
        for id in ids {
            self.restart_frozen_flag(id);
        }
        let what = if frozen {
            "election and heartbeat timers stopped on"
        } else {
            "timers run again on"
        };
        let mut said = if told.is_empty() {
            format!("{verb}: no node runs now")
        } else {
            format!("{verb}: {what} {}", told.join(" "))
        };
        if !notes.is_empty() {
            said.push_str(&format!(" ({})", notes.join("; ")));
        }
        Ok(said)
    }

    /// Sets [`FROZEN_FLAG`] in the flags node `id`'s supervisor restarts it with.
    fn restart_frozen_flag(&self, id: NodeId) {
        let mut slots = self.inner.slots.lock().unwrap();
        let Some(slot) = slots.get_mut(&id) else {
            return;
        };
        let mut args = slot.spec.args.clone();
        self.frozen_flag(&mut args);
        slot.spec.args = args;
        if let Err(e) = self.inner.procs.set_spec(id, slot.spec.clone()) {
            tracing::warn!(node = id, error = %e, "cannot set the frozen flag");
        }
    }

    /// After `resume N`: node N, paused when `freeze` or `thaw` came, is told now (its last status says whether
    /// it missed one). Says so (or why not) for the resume's answer; nothing when it missed none.
    pub(super) async fn freeze_resumed(&self, id: NodeId) -> String {
        let frozen = self.frozen();
        if self.status(id).is_none_or(|s| s.frozen == frozen) {
            return String::new();
        }
        let (verb, done) = if frozen {
            ("freeze", "frozen (teaching mode)")
        } else {
            ("thaw", "thawed")
        };
        let Some(addr) = self.api_addrs().get(&id).copied() else {
            return format!("; its address is not known, so it was not {done}: `{verb}` again");
        };
        match set_node_frozen(addr, frozen).await {
            Ok(()) => format!("; {done}"),
            Err(e) => format!("; not {done}, it {e}: `{verb}` again"),
        }
    }

    /// `timeout N`: node N's election timer fires now.
    pub(super) async fn timeout(&self, id: NodeId) -> Result<String, String> {
        let id = self.resolve(crate::command::Target::Node(id))?;
        match self.proc(id) {
            Proc::Down => {
                return Err(format!(
                    "node {id} is down: it has no timer to fire; `restart {id}` first"
                ));
            }
            Proc::Paused => {
                return Err(format!(
                    "node {id} is paused: it cannot campaign; `resume {id}` first"
                ));
            }
            Proc::Running => {}
        }
        let addr = self
            .api_addrs()
            .get(&id)
            .copied()
            .ok_or_else(|| format!("node {id}'s address is not known yet; try again"))?;
        let c = fire_node_timeout(addr).await.map_err(|e| named(id, e))?;
        Ok(if c.pre_vote {
            format!("timeout {id}: n{id} asks for pre-votes for term {}", c.term)
        } else {
            format!("timeout {id}: n{id} starts an election in term {}", c.term)
        })
    }

    /// `heartbeat`: the leader sends its heartbeats now.
    pub(super) async fn heartbeat(&self) -> Result<String, String> {
        let (leader, term) = self.ask_leader().await.ok_or(
            "no node leads right now, so no one sends heartbeats; `timeout N` starts an election",
        )?;
        let addr = self
            .api_addrs()
            .get(&leader)
            .copied()
            .ok_or_else(|| format!("leader {leader}'s address is not known yet; try again"))?;
        let n = node_heartbeats(addr)
            .await
            .map_err(|e| format!("leader {leader}: {e}"))?;
        Ok(format!(
            "heartbeat: n{leader} (leader, term {term}) sent heartbeats to {n} follower{}",
            if n == 1 { "" } else { "s" }
        ))
    }

    /// Node `id`'s entries at `from..=to` (at most `squall_node::rpc::MAX_LOG_RANGE`), for the log panel
    /// scrolled back past the tail its status carries. `Err` says why not: the node is down or paused, its
    /// address is not known, or its kind reports no log (only squall's node has the control).
    pub async fn log_range(&self, id: NodeId, from: u64, to: u64) -> Result<Vec<LogCell>, String> {
        if self.status(id).is_none() {
            return Err(format!(
                "n{id}'s kind ({}) reports no log, so it has none to fetch",
                self.inner.spec.kind.name
            ));
        }
        match self.proc(id) {
            Proc::Down => return Err(format!("n{id} is down")),
            Proc::Paused => return Err(format!("n{id} is paused")),
            Proc::Running => {}
        }
        let addr = self
            .api_addrs()
            .get(&id)
            .copied()
            .ok_or_else(|| format!("n{id}'s address is not known yet"))?;
        node_log_range(addr, from, to)
            .await
            .map_err(|e| format!("n{id} {e}"))
    }

    /// The links of target `t` for a command on held frames (`step`, `drop-held`, `release`, `drop-stale`),
    /// refused, naming the host, while a host that holds frames of them is unreachable: squall cannot see
    /// those frames, so it can neither say none is held nor act on them now (tester10 finding 4, issue 24).
    pub(super) fn held_links_for(
        &self,
        t: &FaultTarget,
    ) -> Result<Vec<squall_chaos::LinkId>, String> {
        let links = self.links_for(t)?;
        let out = self.inner.links.out_of_reach(&links);
        if out.is_empty() {
            return Ok(links);
        }
        Err(out
            .iter()
            .map(|(why, on)| {
                format!(
                    "frames of {} are held where squall cannot reach: {why}",
                    link_list(on)
                )
            })
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// The lines `held` adds for the hosts it could not read: which links' frames it does not list.
    fn unlisted(&self) -> Vec<String> {
        let links: Vec<squall_chaos::LinkId> = self
            .inner
            .links
            .stats_now()
            .iter()
            .map(|s| s.link)
            .collect();
        self.inner
            .links
            .out_of_reach(&links)
            .iter()
            .map(|(why, on)| {
                let why = why
                    .trim_end_matches("; squall is reconnecting, nothing was done")
                    .trim_end_matches("; nothing was done");
                format!("not listed: the frames held on {} ({why})", link_list(on))
            })
            .collect()
    }

    /// The held frames as the dashboard and `held` see them.
    pub(super) async fn held_views(&self) -> Vec<HeldView> {
        self.inner
            .links
            .held()
            .await
            .into_iter()
            .map(|h| HeldView {
                seq: h.seq,
                from: h.link.from,
                to: h.link.to,
                kind: h.label,
                detail: h.detail,
            })
            .collect()
    }

    /// Polls the receivers of the frames held on the links `on` accepts now, and waits for their statuses
    /// (see [`Cluster::poll_fresh`]): a step just before may have moved their terms, and their stale marks and
    /// refusal notes are judged by them.
    pub(super) async fn poll_receivers(&self, on: impl Fn(squall_chaos::LinkId) -> bool) {
        let mut receivers: Vec<NodeId> = self
            .inner
            .links
            .held()
            .await
            .iter()
            .filter(|h| on(h.link))
            .map(|h| h.link.to)
            .collect();
        receivers.sort_unstable();
        receivers.dedup();
        self.poll_fresh(&receivers).await;
    }

    /// Each node's term as its last status showed it: what says a held frame's receiver will refuse it.
    pub(super) fn terms(&self) -> std::collections::BTreeMap<NodeId, u64> {
        self.node_ids()
            .into_iter()
            .filter_map(|id| Some((id, self.status(id)?.core.term)))
            .collect()
    }

    /// Each node's role as its last status showed it: what says a vote answer stepped to it is surplus.
    pub(super) fn roles(&self) -> std::collections::BTreeMap<NodeId, Role> {
        self.node_ids()
            .into_iter()
            .filter_map(|id| Some((id, self.status(id)?.core.role)))
            .collect()
    }

    /// The held frames a newer round on their link supersedes (see [`stale`], judged without terms).
    pub(super) async fn superseded(&self) -> std::collections::BTreeSet<u64> {
        stale(&self.held_views().await, &std::collections::BTreeMap::new())
    }

    /// What a frame about to be delivered will do for nothing, for the `step` answer: a vote answer its
    /// candidate no longer needs ([`surplus`]: ` (delivered, but surplus: n3 already leads term 2)`), a
    /// frame its receiver will refuse or ignore for its term ([`refusal`]: ` (delivered, but n2 refuses it
    /// as stale: n2 is already in term 2)`), or one a newer round on its link supersedes
    /// ([`superseded_note`]). `terms`, `roles` and `superseded` are as they were before the delivery.
    pub(super) fn refusal_note(
        &self,
        frame: &squall_chaos::HeldFrame,
        terms: &std::collections::BTreeMap<NodeId, u64>,
        roles: &std::collections::BTreeMap<NodeId, Role>,
        superseded: &std::collections::BTreeSet<u64>,
    ) -> String {
        let view = HeldView {
            seq: frame.seq,
            from: frame.link.from,
            to: frame.link.to,
            kind: frame.label.clone(),
            detail: frame.detail.clone(),
        };
        let surplus = || {
            let (term, role) = (terms.get(&view.to)?, roles.get(&view.to)?);
            surplus(&view, *term, *role)
        };
        let superseded = || {
            superseded
                .contains(&view.seq)
                .then(|| superseded_note(&view))
                .flatten()
        };
        surplus()
            .or_else(|| refusal(&view, terms))
            .or_else(superseded)
            .map(|why| format!(" (delivered, but {why})"))
            .unwrap_or_default()
    }

    /// `held`: the queue, oldest first, with the next frame `step *` delivers and the stale ones marked.
    pub(super) async fn held_listing(&self) -> Outcome {
        let frames = self.held_views().await;
        let stale = stale(&frames, &self.terms());
        let next = next_to_step(&frames);
        let mut lines: Vec<String> = frames.iter().map(|f| held_line(f, next, &stale)).collect();
        let unlisted = self.unlisted();
        let mut summary = match (lines.len(), stale.len()) {
            (0, _) => "no frame held".to_string(),
            (n, 0) => format!("{n} frame{} held", if n == 1 { "" } else { "s" }),
            (n, s) => format!(
                "{n} frame{} held, {s} stale (`drop-stale *` drops them)",
                if n == 1 { "" } else { "s" }
            ),
        };
        if !unlisted.is_empty() {
            summary.push_str(&format!(
                "; not counted: the frames of {} unreachable host{} (listed last)",
                unlisted.len(),
                if unlisted.len() == 1 { "" } else { "s" }
            ));
            lines.extend(unlisted);
        }
        Outcome::Listing {
            summary,
            lines,
            prefix: "held:",
        }
    }

    /// `drop-stale TARGET`: discards the stale held frames on the target's links.
    pub(super) async fn drop_stale(&self, t: &FaultTarget) -> Result<String, String> {
        let links = self.held_links_for(t)?;
        let frames = self.held_views().await;
        let stale: std::collections::BTreeSet<u64> = stale(&frames, &self.terms())
            .into_iter()
            .filter(|seq| {
                frames.iter().any(|f| {
                    f.seq == *seq && links.contains(&squall_chaos::LinkId::new(f.from, f.to))
                })
            })
            .collect();
        if stale.is_empty() {
            return Err(format!(
                "no held frame on {t} is stale (none has a newer round from its sender on its link, none a term \
                 or ballot its receiver has passed); `held` lists them"
            ));
        }
        let out = self
            .inner
            .links
            .drop_held_frames(|seq| stale.contains(&seq))
            .await;
        if out.is_empty() {
            return Err(format!(
                "the stale frames on {t} left the queue meanwhile (delivered or their connection closed); `held` lists what is"
            ));
        }
        let items: Vec<String> = out
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.frame.link,
                    s.frame.label.as_deref().unwrap_or("other")
                )
            })
            .collect();
        Ok(stale_summary(&items))
    }
}

/// The answer to `drop-stale` for the dropped frames `items` (`2->1 heartbeat`, in drop order): each link and
/// kind once, with its count when above one (`2->1 heartbeat ×40`), so 92 frames are a short line, not 92
/// items (tester7).
fn stale_summary(items: &[String]) -> String {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for item in items {
        match groups.iter_mut().find(|(g, _)| *g == item.as_str()) {
            Some((_, n)) => *n += 1,
            None => groups.push((item, 1)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(g, n)| {
            if *n == 1 {
                g.to_string()
            } else {
                format!("{g} ×{n}")
            }
        })
        .collect();
    format!(
        "drop {} stale frame{}: {}",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        parts.join("; ")
    )
}

/// A node's refusal as the console answers it: prefixed with the node once, not again when the node's own
/// words name it already ("node 2 never campaigns now: …"; tester finding F16 saw `node 2: node 2 …`).
fn named(id: NodeId, e: String) -> String {
    if e.starts_with(&format!("node {id} ")) {
        e
    } else {
        format!("node {id}: {e}")
    }
}

/// `1->2, 2->1`.
fn link_list(links: &[squall_chaos::LinkId]) -> String {
    links
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    /// tester7 (finding 9): `drop-stale` listed every frame, 92 of them on one line. Seen failing before the
    /// answer grouped them by link and kind.
    #[test]
    fn dropping_many_stale_frames_answers_one_short_line() {
        let mut items = vec!["2->1 heartbeat".to_string(); 40];
        items.extend(vec!["3->1 heartbeat".to_string(); 51]);
        items.push("3->1 vote".to_string());
        assert_eq!(
            super::stale_summary(&items),
            "drop 92 stale frames: 2->1 heartbeat ×40; 3->1 heartbeat ×51; 3->1 vote"
        );
        assert_eq!(
            super::stale_summary(&["1->2 append".to_string()]),
            "drop 1 stale frame: 1->2 append"
        );
    }

    #[test]
    fn a_refusal_that_names_its_node_is_not_prefixed_again() {
        assert_eq!(
            super::named(2, "node 2 never campaigns now: it is recovering".into()),
            "node 2 never campaigns now: it is recovering"
        );
        assert_eq!(
            super::named(2, "connection refused".into()),
            "node 2: connection refused"
        );
        assert_eq!(
            super::named(2, "node 21 is gone".into()),
            "node 2: node 21 is gone"
        );
    }
}
