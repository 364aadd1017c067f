//! Performing one command: deciding (the listings, the preconditions in [`super::guard`], which room does it)
//! and doing (the process, network and workload actions), then reporting the [`Effect`] as an event.

use std::time::Duration;

use super::command::{Command, Effect, NodeId, Target};
use crate::command::DiskAction;

use super::{Cluster, Outcome, linkv, lock, membership};
use crate::state::{Event, ProcessState};

/// Why a plain `heal` does nothing: no fault is in force ([`Cluster::faults_in_force`] is empty).
pub const NOTHING_TO_HEAL: &str = "nothing to heal: no fault is in force (`faults` lists the network's, \
                                   `status` each node's disk and clock)";

impl Cluster {
    /// What a restart or wipe of node `id` that failed had already done, for its answer (tester2 item 3:
    /// `wipe 3` had killed node 3 and emptied its data, and answered only "cannot spawn"): read from what is
    /// there now, so it holds wherever the failure came. A prefix of the answer (`done before it failed: …;
    /// not done: …; why: `), empty when nothing changed.
    fn half_done(&self, id: NodeId, was_running: bool, wipe: bool) -> String {
        let mut done = Vec::new();
        let running = self.alive(id);
        if was_running && !running {
            done.push(format!("node {id} was stopped (it ran before)"));
        }
        // Looked at only for a wipe, and never through a stalled fault disk: reading it would block until
        // the disk is healed (a stalled disk is what refused the wipe in the first place).
        let data_dir = self
            .inner
            .slots
            .lock()
            .unwrap()
            .get(&id)
            .map(|s| s.facts.data_dir.clone())
            .filter(|_| wipe && !self.inner.disks.stalled(id) && !self.inner.procs.is_remote());
        let emptied = data_dir.as_ref().is_some_and(|d| {
            std::fs::read_dir(d).map_or(true, |mut entries| entries.next().is_none())
        });
        if emptied {
            done.push(format!("node {id}'s data was wiped"));
        }
        if done.is_empty() {
            return String::new();
        }
        let not_done = if wipe {
            format!("node {id} is not running again empty")
        } else {
            format!("node {id} is not running again")
        };
        let now = if running {
            String::new()
        } else {
            format!("; not done: {not_done} (`restart {id}` tries again)")
        };
        format!("done before it failed: {}{now}; why: ", done.join(", "))
    }

    /// Every fault in force, one line each, as `faults` lists them: the network's (with their ids), each
    /// node's disk and clock faults, and the client faults. Empty when a `heal` would have nothing to heal.
    pub fn faults_in_force(&self) -> Vec<String> {
        let mut lines = self.fault_lines();
        // Disk and clock faults have no id (`disk N heal`, `clock N heal` remove them).
        for id in self.node_ids() {
            for d in self.node_disk_faults(id) {
                lines.push(format!("n{id} disk {d} (`disk {id} heal` removes it)"));
            }
            if let Some(c) = self.node_clock(id) {
                lines.push(format!("n{id} clock {c} (`clock {id} heal` removes it)"));
            }
        }
        lines.extend(self.inner.workload.lock.describe());
        lines
    }

    /// Performs one command and reports it as an event (`Fault` with its effect, `ActionFailed` with the
    /// refusal, `Checked` with a verdict). Returns what it came to.
    pub async fn perform(&self, cmd: Command) -> Outcome {
        // What is recorded is the command as asked, `leader` kept symbolic; the node it hit is recorded
        // beside it. Dashboard keys arrive already resolved (see `crate::input::command_for`).
        let mut command = cmd.clone();
        let cmd = self.pin_leader(cmd).await;
        let hit = match cmd.acts_on() {
            Some(Target::Node(id)) => Some(id),
            _ => None,
        };
        let asked = command.to_string();
        let outcome = match cmd {
            Command::Check => {
                // Each check's finding is an event of its own (emitted by `check_all`).
                let (verdict, report) = self.check_all().await;
                return Outcome::Verdict { verdict, report };
            }
            Command::Quit => return Outcome::Quit,
            Command::Faults => {
                let lines = self.faults_in_force();
                let summary = match lines.len() {
                    0 => "no fault in force".to_string(),
                    1 => "1 fault in force".to_string(),
                    n => format!("{n} faults in force"),
                };
                return Outcome::Listing {
                    summary,
                    lines,
                    prefix: "faults:",
                };
            }
            Command::Held => {
                // The stale marks judge by the receivers' state after the last step.
                self.poll_receivers(|_| true).await;
                return self.held_listing().await;
            }
            Command::Links => {
                // Frames held by `hold` (the teaching queue), per link; a link's own queue of frames waiting
                // out a delay or a reorder is another count (`queued-now`). Both were one number, which said
                // `held-now 0` while `held` listed 182 frames (tester6).
                let mut held: std::collections::HashMap<_, u64> = std::collections::HashMap::new();
                for f in self.inner.links.held().await {
                    *held.entry(f.link).or_default() += 1;
                }
                let lines: Vec<String> = self
                    .inner
                    .links
                    .stats()
                    .await
                    .iter()
                    .map(|l| {
                        let kinds: Vec<String> = l
                            .by_label
                            .iter()
                            .map(|c| format!("{} {}/{}", c.label, c.frames, c.dropped))
                            .collect();
                        // `held-total`: frames a hold took since the start, each held now, delivered or
                        // dropped since; `held-lost`: of those, dropped because their connection ended (in
                        // `dropped` too).
                        format!(
                            "{} frames {} bytes {} dropped {} duplicated {} delayed {} held-now {} held-total {} \
                             held-lost {} queued-now {} kinds {}",
                            l.link,
                            l.frames_forwarded,
                            l.bytes_forwarded,
                            l.frames_dropped,
                            l.frames_duplicated,
                            l.frames_delayed,
                            held.get(&l.link).copied().unwrap_or(0),
                            l.frames_held,
                            l.held_lost,
                            l.frames_queued,
                            if kinds.is_empty() { "-".into() } else { kinds.join(",") }
                        )
                    })
                    .collect();
                return Outcome::Listing {
                    summary: format!("{} links (kinds: seen/dropped frames)", lines.len()),
                    lines,
                    prefix: "links:",
                };
            }
            other => {
                let mut pending = false;
                let done = match self
                    .kind_refuses(&other)
                    .map_or_else(|| self.admit(&other), Err)
                {
                    Err(why) => Err(why),
                    // A membership change names its node itself: the one an `add` started.
                    Ok(()) if other.is_membership() => match self.perform_membership(other).await {
                        Ok(said) => {
                            pending = said.pending;
                            Ok((said.node, said.text))
                        }
                        Err(e) => Err(e),
                    },
                    // A flip's chosen offset becomes part of the command recorded (see the function).
                    Ok(()) if matches!(other, Command::Disk(_, DiskAction::Flip { .. })) => {
                        match self.perform_pinned_flip(command.clone(), other).await {
                            Ok((pinned, said)) => {
                                command = pinned;
                                Ok((hit, said))
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Ok(()) => self.perform_inner(other).await.map(|said| (hit, said)),
                };
                match done {
                    Ok((node, said)) if pending => {
                        Outcome::Done(Effect::new(command, node, said).under_way())
                    }
                    Ok((node, said)) => Outcome::Done(Effect::new(command, node, said)),
                    Err(why) => Outcome::Refused(why),
                }
            }
        };
        match &outcome {
            Outcome::Done(effect) => {
                // The links as they are now go first, so the fault's line and its effect on the links arrive
                // together (a replay that lands on the fault shows it in force).
                self.emit(Event::Links {
                    links: self.link_views().await,
                });
                self.emit(performed(effect));
            }
            Outcome::Refused(error) => self.emit(Event::ActionFailed {
                action: asked,
                error: error.clone(),
            }),
            _ => {}
        }
        outcome
    }

    /// Selects the workload `kind` (unless it is the counter, selected already) and switches it on, as
    /// `workload KIND` then `workload on` would, but the selection's answer does not say the workload is off
    /// just before the next answer switches it on (tester 9's finding 8: every `up --workload` said both).
    pub async fn start_workload(&self, kind: crate::state::WorkloadKind) {
        use std::sync::atomic::Ordering;
        if kind != crate::state::WorkloadKind::Counter {
            self.inner.workload.on_next.store(true, Ordering::Relaxed);
            let _ = self.perform(Command::SetWorkloadKind(Some(kind))).await;
            self.inner.workload.on_next.store(false, Ordering::Relaxed);
        }
        let _ = self.perform(Command::Workload(Some(true))).await;
    }

    /// Why the node kind cannot take `cmd`, if it cannot ([`crate::kind::Kind::refuses`]).
    fn kind_refuses(&self, cmd: &Command) -> Option<String> {
        self.inner.spec.kind.refuses(cmd)
    }

    async fn perform_inner(&self, cmd: Command) -> Result<String, String> {
        let procs = &self.inner.procs;
        match cmd {
            Command::Kill(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                procs.kill(id).await?;
                self.await_exit(id, Duration::from_secs(2)).await;
                Ok(format!("kill node {id}{what}"))
            }
            Command::Terminate(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                procs.terminate(id).await?;
                self.await_exit(id, Duration::from_secs(5)).await;
                Ok(format!("terminate node {id}{what}"))
            }
            Command::Pause(t) => {
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                procs.pause(id).await?;
                if let Some(squall_chaos::ProcState::Paused { pid }) = procs.state(id) {
                    self.emit(Event::Process {
                        node: id,
                        state: ProcessState::Paused { pid },
                    });
                }
                Ok(format!("pause node {id}{what}"))
            }
            Command::Resume(t) => {
                let id = self.resolve(t)?;
                procs.resume(id).await?;
                if let Some(squall_chaos::ProcState::Running { pid }) = procs.state(id) {
                    self.emit(Event::Process {
                        node: id,
                        state: ProcessState::Running { pid },
                    });
                }
                let frozen = self.freeze_resumed(id).await;
                Ok(format!("resume node {id}{frozen}"))
            }
            Command::Restart(t) | Command::Wipe(t) => {
                let wipe = matches!(cmd, Command::Wipe(_));
                let id = self.resolve(t)?;
                let what = self.describe_node(id);
                let sole = self
                    .known_config()
                    .is_some_and(|(c, _, _)| c.voters.len() == 1 && c.voters.contains(&id));
                let was_running = self.alive(id);
                // Another voter still recovering from a loss: say what a second one means (tester finding
                // F15: a second wipe got the same answer as the first).
                let warning = if wipe && !sole {
                    let _ = self.ask_leader().await;
                    let voters = self
                        .known_config()
                        .map(|(c, _, _)| c.voters)
                        .unwrap_or_default();
                    let recovering: Vec<NodeId> = {
                        let latest = self.inner.latest.lock().unwrap();
                        voters
                            .iter()
                            .copied()
                            .filter(|&v| v != id && self.alive(v))
                            .filter(|v| latest.get(v).is_some_and(|s| s.recovering))
                            .collect()
                    };
                    // No quorum left while it recovers (judged as `remove` is): said, not hidden (issue 24).
                    second_loss_warning(&recovering, voters.len()) + &self.wipe_cost(id).await
                } else {
                    String::new()
                };
                if let Err(e) = self.restart(id, wipe).await {
                    // First, on the answer's first line: what follows the cause may be the node's log.
                    return Err(format!("{}{e:#}", self.half_done(id, was_running, wipe)));
                }
                // On hosts a wipe names the host, as the other disk answers do (tester 9's finding 8).
                let on = match procs.host_label(id) {
                    Some(label) if wipe => format!("host {label}: "),
                    _ => String::new(),
                };
                let said = if wipe && !self.inner.spec.kind.told_of_lost_data() {
                    // Squall's recovery is its node's (tester: a Maelstrom node's wipe promised it).
                    format!(
                        "wipe data of node {id}{what} and restart it with an empty data directory: node kind \
                         `{}` is not told a node lost its data (its launch has no {{initial_state}}), so the \
                         node starts as if new, and whatever it kept there is gone; how it rejoins is its own",
                        self.inner.spec.kind.name
                    )
                } else if wipe && sole {
                    format!(
                        "wipe data of node {id}{what} and restart it empty; it was the only voter, so no other \
                         voter can tell it what it lost: it stays recovering and the cluster makes no progress \
                         (to accept the loss, start a new cluster: `squall up` on a new --dir)"
                    )
                } else if wipe {
                    format!(
                        "wipe data of node {id}{what} and restart it empty (it recovers before it votes again){warning}"
                    )
                } else if self.is_removed(id) {
                    // Allowed on purpose: a removed server coming back is a known hazard (Raft thesis §4.2.3)
                    // worth showing; the answer says it is not a member again.
                    format!(
                        "restart node {id}{what} with its data, as a non-member: it was removed from the \
                         configuration, and its pre-votes win nothing (`add` starts a new member)"
                    )
                } else {
                    format!("restart node {id}{what} with its data")
                };
                Ok(format!("{on}{said}"))
            }
            Command::RestartAll => {
                let ids: Vec<NodeId> = self
                    .node_ids()
                    .into_iter()
                    .filter(|id| !self.is_removed(*id))
                    .collect();
                // All at once, as after a power cut of the whole cluster: no node comes back to find the
                // others still up.
                let results = futures::future::join_all(ids.iter().map(|&id| {
                    let c = self.clone();
                    async move { (id, c.restart(id, false).await) }
                }))
                .await;
                let done: Vec<NodeId> = results
                    .iter()
                    .filter(|(_, r)| r.is_ok())
                    .map(|(id, _)| *id)
                    .collect();
                let failed: Vec<String> = results
                    .iter()
                    .filter_map(|(id, r)| r.as_ref().err().map(|e| format!("node {id}: {e:#}")))
                    .collect();
                if failed.is_empty() {
                    Ok(format!(
                        "restart nodes {} with their data",
                        membership::id_list(&done)
                    ))
                } else {
                    Err(format!(
                        "restart all: {}{}",
                        failed.join("; "),
                        if done.is_empty() {
                            String::new()
                        } else {
                            format!(" (nodes {} restarted)", membership::id_list(&done))
                        }
                    ))
                }
            }
            Command::Fault(f) => self.add_fault(f, false),
            crate::command::dashboard_toggle!() => Err(format!(
                "`{cmd}` is a dashboard key read from an old event log; the dashboard sends the command it \
                 means (`pause 2`, `delay 2 50ms`, `workload on`), and so can you"
            )),
            Command::Heal(Some(id)) => Ok(self.heal(Some(id))?.unwrap_or_default()),
            Command::Heal(None) => {
                let network = self.heal(None)?;
                let mut healed = Vec::new();
                if self.disk_faults_on() {
                    // A host that refused is named, with what was healed before it.
                    healed = self
                        .heal_disks_and_clocks()
                        .await
                        .map_err(|e| match &network {
                            Some(n) => format!("{e}; {n}"),
                            None => e,
                        })?;
                    for &node in &healed {
                        self.report_node_faults(node);
                    }
                }
                // An action that did not happen never answers `ok` (tester C6, issue 19): with nothing in
                // force anywhere, nothing was healed.
                let disks = (!healed.is_empty()).then(|| {
                    // Healing a clock never moves its monotonic clock back (`clock.rs`), so this stalls no node.
                    format!(
                        "disk and clock faults healed on {} {} (wall clocks true again; monotonic clocks run \
                         on, never back)",
                        if healed.len() == 1 { "node" } else { "nodes" },
                        membership::id_list(&healed)
                    )
                });
                let clients = self.inner.workload.lock.heal_all();
                let disks = match (disks, clients.is_empty()) {
                    (d, true) => d,
                    (None, false) => Some(format!("client faults ended: {}", clients.join(", "))),
                    (Some(d), false) => {
                        Some(format!("{d}; client faults ended: {}", clients.join(", ")))
                    }
                };
                match (network, disks) {
                    (None, None) => Err(NOTHING_TO_HEAL.into()),
                    (Some(n), None) => Ok(n),
                    (None, Some(d)) => Ok(format!("heal: {d}; no network fault was in force")),
                    (Some(n), Some(d)) => Ok(format!("{n}; {d}")),
                }
            }
            Command::Step(ref t, n) | Command::DropHeld(ref t, n) => {
                let deliver = matches!(cmd, Command::Step(..));
                let links = self.held_links_for(t)?;
                if deliver {
                    // The notes below judge by the receivers' state after the steps before.
                    self.poll_receivers(|l| links.contains(&l)).await;
                }
                // The receivers' terms before the delivery: what they will make of the frames.
                let (terms, roles) = (self.terms(), self.roles());
                let superseded = self.superseded().await;
                let out = if deliver {
                    self.inner.links.step(|l| links.contains(&l), n, true).await
                } else {
                    self.inner
                        .links
                        .step(|l| links.contains(&l), n, false)
                        .await
                };
                if out.is_empty() {
                    return Err(format!("no frame is held on {t}; `held` lists what is"));
                }
                // What the frames did shows at once, not at the pollers' next tick.
                self.poll_soon();
                let verb = if deliver { "deliver" } else { "drop" };
                let items: Vec<String> = out
                    .iter()
                    .map(|s| {
                        let lost = if deliver && !s.delivered {
                            " (lost: its connection closed)".to_string()
                        } else if deliver {
                            self.refusal_note(&s.frame, &terms, &roles, &superseded)
                        } else {
                            String::new()
                        };
                        format!("{} {}{lost}", s.frame.link, s.frame.what())
                    })
                    .collect();
                Ok(format!("{verb} {}", items.join("; ")))
            }
            Command::Release(t) => {
                let links = self.held_links_for(&t)?;
                // Ending a hold delivers what it held, so count the frames before either happens.
                let held = self
                    .inner
                    .links
                    .held()
                    .await
                    .iter()
                    .filter(|h| links.contains(&h.link))
                    .count();
                let (ended, wider) = self.end_holds_on(&t);
                let out = self.inner.links.release(|l| links.contains(&l)).await;
                self.poll_soon();
                if held == 0 && out.is_empty() && ended.is_empty() {
                    return Err(if wider.is_empty() {
                        format!(
                            "no frame is held on {t} and no hold covers it; `held` lists what is"
                        )
                    } else {
                        format!(
                            "no frame is held on {t}, and {} holds more links than {t}: release its target \
                             to end it; `held` lists what is held",
                            wider.join(", ")
                        )
                    });
                }
                Ok(format!(
                    "release {} held frame{} on {t}{}{}",
                    held.max(out.len()),
                    if held.max(out.len()) == 1 { "" } else { "s" },
                    if ended.is_empty() {
                        String::new()
                    } else {
                        format!(" and end {}", ended.join(", "))
                    },
                    if wider.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({} goes on holding there and elsewhere: release its target to end it)",
                            wider.join(", ")
                        )
                    }
                ))
            }
            Command::Transfer(t) => {
                let id = self.resolve(t)?;
                let (leader, term) = self.ask_leader().await.ok_or("no node leads right now")?;
                if leader == id {
                    return Err(format!("node {id} already leads term {term}"));
                }
                let addr = self
                    .api_addrs()
                    .get(&leader)
                    .copied()
                    .ok_or("leader address unknown")?;
                let client = squall_node::transport::connect_control(addr, Duration::from_secs(1))
                    .await
                    .map_err(|e| format!("cannot reach leader {leader}: {e}"))?;
                client
                    .transfer_leadership(
                        squall_node::transport::deadline(Duration::from_secs(2)),
                        id,
                    )
                    .await
                    .map_err(|e| format!("leader {leader} did not answer: {e}"))??;
                let c = self.clone();
                tokio::spawn(async move { c.follow_transfer(id, leader, term).await });
                Ok(format!(
                    "transfer leadership from node {leader} (term {term}) to node {id}"
                ))
            }
            Command::Workload(Some(on)) => {
                if self.inner.workload.is_on() == on {
                    return Err(if on {
                        "the workload is already on: nothing to start (`workload off` stops it)"
                            .into()
                    } else {
                        "the workload is already off: nothing to stop (`workload on` starts it)"
                            .into()
                    });
                }
                let on = self.inner.workload.set(Some(on));
                Ok(format!(
                    "workload {} at {} writes/s",
                    if on { "on" } else { "off" },
                    self.inner.workload.rate()
                ))
            }
            Command::WorkloadRate(r) => {
                self.inner.workload.set_rate(r);
                Ok(format!("workload rate {r} writes/s"))
            }
            Command::SetWorkloadKind(Some(kind)) => {
                if let Some(why) = self.inner.spec.kind.workload_refusal(kind) {
                    return Err(format!("workload {}: {why}", kind.as_str()));
                }
                if kind.is_maelstrom_only() {
                    // The Maelstrom driver refuses squall's own workloads by type; those run in the kv
                    // clients, and were not offered to it here.
                    self.inner
                        .workload
                        .mael
                        .select(kind, self.node_messages())
                        .map_err(|e| e.to_string())?;
                }
                let kind = self.inner.workload.set_kind(Some(kind));
                self.emit(Event::WorkloadKind { kind });
                // Selecting a workload does not start it: say so while it is off, or the answer describes
                // clients that are not running (tester5 F1).
                let off = if self.inner.workload.get().0
                    || self
                        .inner
                        .workload
                        .on_next
                        .load(std::sync::atomic::Ordering::Relaxed)
                {
                    ""
                } else {
                    " (selected; the workload is off: `workload on` starts it)"
                };
                let said = match kind {
                    crate::state::WorkloadKind::Counter => {
                        "workload counter: increments of 8 counters".to_string()
                    }
                    crate::state::WorkloadKind::LinKv => format!(
                        "workload lin-kv: {} clients, reads, writes and cas on {} keys, history recorded",
                        linkv::CLIENTS,
                        linkv::KEYS
                    ),
                    crate::state::WorkloadKind::Lock | crate::state::WorkloadKind::LockFenced => {
                        let fenced = kind == crate::state::WorkloadKind::LockFenced;
                        self.inner.workload.lock.start(|e| self.emit(e), fenced);
                        format!(
                            "workload {}: {} clients take a {} lease lock by cas and write to a resource under \
                             it{}",
                            kind.as_str(),
                            lock::CLIENTS,
                            crate::units::duration(lock::LEASE),
                            if fenced {
                                " that rejects a fencing token below the highest it has seen"
                            } else {
                                " that checks no token"
                            }
                        )
                    }
                    k => format!(
                        "workload {}: Maelstrom's, {} clients, checked by its checker",
                        k.as_str(),
                        super::clients::MAELSTROM_CLIENTS
                    ),
                };
                Ok(format!("{said}{off}"))
            }
            Command::PauseClient(c, d) | Command::SlowClient(c, d) => {
                use crate::state::WorkloadKind as W;
                let kind = self.inner.workload.kind();
                if !matches!(kind, W::Lock | W::LockFenced) {
                    return Err(format!(
                        "`{cmd}` acts on the lock workload's clients, and the workload is {} now (nothing was \
                         done; `workload lock` or `workload lock-fenced` starts them)",
                        kind.as_str()
                    ));
                }
                if !self.inner.workload.get().0 {
                    return Err(format!(
                        "`{cmd}` acts on the lock workload's clients, and they are not running: the workload \
                         is off (nothing was done; `workload on` starts them)"
                    ));
                }
                let lock = &self.inner.workload.lock;
                if matches!(cmd, Command::PauseClient(..)) {
                    lock.arm_pause(c, d)?;
                    Ok(format!(
                        "pause-client {c} {}: armed, strikes at client {c}'s next protected write (after its \
                         lease check, before the write)",
                        crate::units::exact(d)
                    ))
                } else {
                    lock.set_slow(c, d)?;
                    Ok(format!(
                        "slow-client {c}: every step of client {c} takes {} longer, until `heal`",
                        crate::units::exact(d)
                    ))
                }
            }
            Command::PowerCut(..) | Command::Disk(..) => self.perform_disk(cmd).await,
            Command::Add
            | Command::AddLearner
            | Command::Remove(_)
            | Command::Replace(_)
            | Command::Promote(_)
            | Command::Demote(_) => self.perform_membership(cmd).await.map(|said| said.text),
            Command::Clock(..) => self.perform_clock(cmd).await,
            Command::Freeze => self.freeze(true).await,
            Command::Thaw => self.freeze(false).await,
            Command::Timeout(id) => self.timeout(id).await,
            Command::Heartbeat => self.heartbeat().await,
            Command::DropStale(ref t) => {
                self.poll_receivers(|_| true).await;
                self.drop_stale(t).await
            }
            // Answered by `perform` itself (listings, verdicts) or by the caller (status, quit).
            Command::Status
            | Command::Check
            | Command::Quit
            | Command::Faults
            | Command::Held
            | Command::Links => Ok(String::new()),
        }
    }
}

/// The event log's record of a performed command: the [`Effect`] as it is.
fn performed(effect: &Effect) -> Event {
    Event::Performed {
        command: effect.command.clone(),
        node: effect.node,
        effect: effect.change.clone(),
    }
}

/// What `wipe N` adds to its answer while other voters still recover from a loss of their own (`recovering`,
/// out of `voters` voters): empty when none does. Nodes that lost data at once are witnesses for nothing
/// (`raft::recovery`): with a majority of the voters among them the cluster makes no progress, and what only
/// they held is gone for good.
fn second_loss_warning(recovering: &[NodeId], voters: usize) -> String {
    if recovering.is_empty() {
        return String::new();
    }
    let names: Vec<String> = recovering.iter().map(|n| format!("n{n}")).collect();
    let lost = recovering.len() + 1;
    let (list, verb) = match names.as_slice() {
        [one] => (one.clone(), "is"),
        [rest @ .., last] => (format!("{} and {last}", rest.join(", ")), "are"),
        [] => unreachable!("checked above"),
    };
    let then = if 2 * lost > voters {
        "a majority: nothing any quorum can do brings back what only they held, they stay recovering and the \
         cluster makes no progress (to accept the loss, start a new cluster: `squall up` on a new --dir)"
    } else {
        "still a minority, so nothing committed is lost, but a recovering node waits for every other voter, \
         so each recovery may wait for the other"
    };
    format!(
        "; warning: {list} {verb} still recovering, so {lost} of {voters} voters have lost data at once: {then}"
    )
}

#[cfg(test)]
mod tests {
    use super::second_loss_warning;

    /// Tester finding F15: a second `wipe` while another voter recovers answered as the first did. Now it
    /// warns, and names a majority's loss as one.
    #[test]
    fn a_wipe_while_other_voters_recover_warns_and_names_a_majority_loss() {
        assert_eq!(second_loss_warning(&[], 3), "");
        let minority = second_loss_warning(&[2], 5);
        assert!(
            minority.starts_with(
                "; warning: n2 is still recovering, so 2 of 5 voters have lost data at once"
            ) && minority.contains("still a minority"),
            "{minority}"
        );
        let majority = second_loss_warning(&[2, 4], 5);
        assert!(
            majority.starts_with("; warning: n2 and n4 are still recovering, so 3 of 5 voters")
                && majority.contains("a majority")
                && majority.contains("makes no progress"),
            "{majority}"
        );
        assert!(second_loss_warning(&[1], 3).contains("a majority"));
    }
}
