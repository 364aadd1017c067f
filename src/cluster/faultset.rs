//! The active network faults of a session: a set of faults with ids, each installed on the links its target
//! covers, composing with the others (two isolations cut both nodes; a delay on top of a partition keeps
//! both). Timed faults remove themselves and say so in the feed.

use squall_chaos::{FaultSpec, LabelSet, LinkId, Partition};

use super::Cluster;
use super::command::NodeId;
use super::command::Target;
use super::fault::{FaultCmd, FaultKind, FaultTarget, MESSAGE_KINDS, ToChaos, human};
use super::faults::Active;
use crate::state::{ActiveFault, Event, FaultEnd};

/// The label set of an `only` list: positions in the network's classifier's labels (squall's classifier
/// labels in [`MESSAGE_KINDS`] order; a network without a classifier falls back to that order).
fn labels(net: &[&str], only: &[String]) -> Option<LabelSet> {
    if only.is_empty() {
        return None;
    }
    let names: &[&str] = if net.is_empty() { &MESSAGE_KINDS } else { net };
    Some(LabelSet::of(only.iter().filter_map(|k| {
        names.iter().position(|m| m == k).map(|i| i as u8)
    })))
}

impl Cluster {
    fn node_id(&self, t: Target) -> Result<NodeId, String> {
        self.resolve(t)
    }

    fn known(&self, id: NodeId) -> Result<NodeId, String> {
        self.resolve(Target::Node(id))
    }

    /// The target with `leader` replaced by the node that leads now (and every node id checked).
    pub(super) fn pin(&self, t: &FaultTarget) -> Result<FaultTarget, String> {
        Ok(match t {
            FaultTarget::Node(n) => FaultTarget::Node(Target::Node(self.node_id(*n)?)),
            FaultTarget::From(n) => FaultTarget::From(Target::Node(self.node_id(*n)?)),
            FaultTarget::To(n) => FaultTarget::To(Target::Node(self.node_id(*n)?)),
            FaultTarget::Link(a, b) => FaultTarget::Link(self.known(*a)?, self.known(*b)?),
            FaultTarget::Both(a, b) => FaultTarget::Both(self.known(*a)?, self.known(*b)?),
            other => other.clone(),
        })
    }

    /// The directed links a (pinned) target covers, with a description of a partition's groups.
    fn links_of(&self, t: &FaultTarget) -> Result<(Vec<LinkId>, Option<String>), String> {
        let ids = self.node_ids();
        let pairs = |f: &dyn Fn(NodeId, NodeId) -> bool| -> Vec<LinkId> {
            let mut v = Vec::new();
            for &a in &ids {
                for &b in &ids {
                    if a != b && f(a, b) {
                        v.push(LinkId::new(a, b));
                    }
                }
            }
            v
        };
        let node = |n: &Target| match n {
            Target::Node(id) => *id,
            Target::Leader => 0,
        };
        Ok(match t {
            FaultTarget::Node(n) => {
                let n = node(n);
                (pairs(&|a, b| a == n || b == n), None)
            }
            FaultTarget::From(n) => {
                let n = node(n);
                (pairs(&|a, _| a == n), None)
            }
            FaultTarget::To(n) => {
                let n = node(n);
                (pairs(&|_, b| b == n), None)
            }
            FaultTarget::Link(a, b) => (vec![LinkId::new(*a, *b)], None),
            FaultTarget::Both(a, b) => (vec![LinkId::new(*a, *b), LinkId::new(*b, *a)], None),
            // Every link between members: a removed node's links are gone from the configuration, and a
            // `hold *` or `cut *` that counted them said it covered links no member uses.
            FaultTarget::All => (
                pairs(&|a, b| !self.is_removed(a) && !self.is_removed(b)),
                None,
            ),
            FaultTarget::Shape(s) => {
                let shape = super::fault::chaos_shape(s);
                // A shape divides the configuration's members: drawn over removed nodes too, `halves` could
                // put every member on one side and cut nothing that matters.
                let members: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !self.is_removed(*id))
                    .collect();
                if let squall_chaos::Shape::Custom(groups) = &shape
                    && let Some(n) = groups.iter().flatten().find(|n| !members.contains(n))
                    && ids.contains(n)
                {
                    return Err(format!(
                        "node {n} was removed from the configuration: a partition divides the members ({})",
                        super::membership::id_list(&members)
                    ));
                }
                let seed = self.inner.spec.seed ^ self.now_ms();
                let p = Partition::build(&shape, &members, seed).map_err(|e| e.to_string())?;
                (p.cut_links(), Some(p.describe()))
            }
        })
    }

    /// The directed links a target covers now (`leader` resolved, node ids checked).
    pub(super) fn links_for(&self, t: &FaultTarget) -> Result<Vec<LinkId>, String> {
        let pinned = self.pin(t)?;
        Ok(self.links_of(&pinned)?.0)
    }

    /// Adds a fault to the set (replacing the same fault on the same target; a zero delay or percentage only
    /// removes it). With `toggle`, an existing same fault is removed instead of replaced. Returns the effect.
    pub(super) fn add_fault(&self, cmd: FaultCmd, toggle: bool) -> Result<String, String> {
        let pinned = FaultCmd {
            target: self.pin(&cmd.target)?,
            ..cmd.clone()
        };
        // Refused before anything changes: a filter the node kind's classifier cannot match.
        let known = self.inner.links.labels();
        if let Some(k) = pinned
            .only
            .iter()
            .find(|k| !known.is_empty() && !known.contains(&k.as_str()))
        {
            return Err(format!(
                "node kind `{}` has no message kind `{k}`; its kinds: {}",
                self.inner.spec.kind.name,
                known.join(", ")
            ));
        }
        // squall's clients reach each node's API port directly: no client request crosses a peer link, so a
        // fault `only client` there would match nothing and answer `ok` for a fault that does nothing.
        if self.inner.spec.kind.peers.classifier == "squall-raft"
            && pinned.only.iter().any(|k| k == "client")
        {
            return Err(format!(
                "`only client`: node kind `{}` carries no client traffic on its peer links (clients reach each \
                 node's API port directly, not through squall's proxies), so this fault would match nothing \
                 (nothing was done); pick peer messages: {}",
                self.inner.spec.kind.name,
                known
                    .iter()
                    .filter(|k| **k != "client")
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let described = match &cmd.target {
            FaultTarget::Node(t) | FaultTarget::From(t) | FaultTarget::To(t) => {
                let id = self.node_id(*t)?;
                self.describe_node(id)
            }
            _ => String::new(),
        };
        let (links, groups) = self.links_of(&pinned.target)?;
        // A link's proxies run on its sender's host and its receiver's: both must take the fault now.
        self.inner.links.reachable(&links)?;
        if links.is_empty() && !pinned.kind.is_zero() {
            // Nothing would be faulted, so the answer is not `ok`.
            return Err(format!(
                "`{}` covers no link: the cluster has no other node on it",
                cmd
            ));
        }
        let why = if pinned.kind.is_zero() || toggle {
            FaultEnd::Removed
        } else {
            FaultEnd::Replaced
        };
        let replaced = self.remove_where(|a| a.cmd.replaces(&pinned), why);
        if pinned.kind.is_zero() || (toggle && !replaced.is_empty()) {
            if replaced.is_empty() {
                // Nothing happened, so the answer is not `ok`.
                return Err(format!(
                    "nothing to remove: no {} fault on {} is in force (`faults` lists them)",
                    pinned.kind.verb(),
                    pinned.target
                ));
            }
            self.publish_faults();
            return Ok(format!("remove {}", list(&replaced)));
        }
        let spec = FaultSpec {
            fault: pinned.kind.to_chaos(),
            duration: None,
            filter: labels(&self.inner.links.labels(), &pinned.only),
        };
        let chaos = self.inner.links.add_fault(links.clone(), spec);
        let now = self.now_ms();
        let short = short_name(&pinned, groups.as_deref());
        let until_ms = pinned.duration.map(|d| now + d.as_millis() as u64);
        let id = self.inner.faults.lock().unwrap().insert(Active {
            cmd: pinned.clone(),
            chaos,
            links: links.clone(),
            short: short.clone(),
            since_ms: now,
            until_ms,
        });
        if let Some(d) = pinned.duration {
            let c = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                c.expire(id);
            });
        }
        self.publish_faults();
        let mut effect = format!(
            "#{id} {}",
            effect_text(&pinned, &described, groups.as_deref(), links.len())
        );
        if !replaced.is_empty() {
            effect.push_str(&format!(" (replaces {})", list(&replaced)));
        }
        Ok(effect)
    }

    /// A node joined: every fault in force whose target covers some of its links (`*`, `*->N`, `isolate N`, ...)
    /// is installed on them too, under the fault's own id, so it applies to the new node like to any other and
    /// `heal` removes it everywhere. A partition's groups were drawn before the node existed; they stay as drawn
    /// (the new node is in none of them). Returns how many faults now cover its links.
    pub(super) fn extend_faults_to(&self, node: NodeId) -> usize {
        let mut set = self.inner.faults.lock().unwrap();
        let mut covered = 0;
        for a in set.active.values_mut() {
            if matches!(a.cmd.target, FaultTarget::Shape(_)) {
                continue;
            }
            let Ok((links, _)) = self.links_of(&a.cmd.target) else {
                continue;
            };
            let new: Vec<LinkId> = links
                .into_iter()
                .filter(|l| (l.from == node || l.to == node) && !a.links.contains(l))
                .collect();
            if new.is_empty() {
                continue;
            }
            let spec = FaultSpec {
                fault: a.cmd.kind.to_chaos(),
                duration: None,
                filter: labels(&self.inner.links.labels(), &a.cmd.only),
            };
            self.inner.links.extend_fault(a.chaos, new.clone(), spec);
            a.links.extend(new);
            covered += 1;
        }
        covered
    }

    /// Removes a timed fault when its time is up (unless it was removed or replaced first) and says so.
    fn expire(&self, id: u64) {
        let gone = {
            let mut set = self.inner.faults.lock().unwrap();
            set.active.remove(&id)
        };
        if let Some(a) = gone {
            self.inner.links.remove_fault_id(a.chaos);
            self.publish_faults();
            self.emit(Event::FaultEnded {
                id,
                fault: a.cmd,
                why: FaultEnd::Expired,
            });
        }
    }

    /// Removes the faults matching `pred` and reports each as ended for `why`; returns them with their ids.
    fn remove_where(&self, pred: impl Fn(&Active) -> bool, why: FaultEnd) -> Vec<(u64, Active)> {
        let gone: Vec<(u64, Active)> = {
            let mut set = self.inner.faults.lock().unwrap();
            let ids: Vec<u64> = set
                .active
                .iter()
                .filter(|(_, a)| pred(a))
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| set.active.remove(&id).map(|a| (id, a)))
                .collect()
        };
        for (id, a) in &gone {
            self.inner.links.remove_fault_id(a.chaos);
            self.emit(Event::FaultEnded {
                id: *id,
                fault: a.cmd.clone(),
                why,
            });
        }
        gone
    }

    /// `heal` (every network fault) or `heal ID`. A plain heal answers `Ok(None)` when no network fault was
    /// in force and no frame was held: it changed nothing on the links, and the caller says so.
    pub(super) fn heal(&self, id: Option<u64>) -> Result<Option<String>, String> {
        match id {
            None => {
                // Ending a hold delivers what it held, as `release` does: the answer says how many.
                let held = self.inner.links.held_now().len();
                let gone = self.remove_where(|_| true, FaultEnd::Healed);
                // Also whatever was set on the links by other means.
                self.inner.links.heal_all();
                self.publish_faults();
                let delivered = match held {
                    0 => String::new(),
                    1 => "; 1 held frame delivered".into(),
                    n => format!("; {n} held frames delivered"),
                };
                Ok(if !gone.is_empty() {
                    Some(format!(
                        "heal every network fault: {}{delivered}",
                        list(&gone)
                    ))
                } else if held > 0 {
                    Some("heal every network fault: held frames released".into())
                } else {
                    None
                })
            }
            Some(id) => {
                let exists = self.inner.faults.lock().unwrap().active.contains_key(&id);
                if !exists {
                    let ids: Vec<String> = self
                        .inner
                        .faults
                        .lock()
                        .unwrap()
                        .active
                        .keys()
                        .map(|k| format!("#{k}"))
                        .collect();
                    return Err(if ids.is_empty() {
                        format!("no fault #{id}: no fault is in force")
                    } else {
                        format!("no fault #{id}; in force: {}", ids.join(" "))
                    });
                }
                let gone = {
                    let a = self.inner.faults.lock().unwrap().active.remove(&id);
                    a.map(|a| vec![(id, a)]).unwrap_or_default()
                };
                for (id, a) in &gone {
                    self.emit(Event::FaultEnded {
                        id: *id,
                        fault: a.cmd.clone(),
                        why: FaultEnd::Healed,
                    });
                }
                for (_, a) in &gone {
                    self.inner.links.remove_fault_id(a.chaos);
                }
                self.publish_faults();
                // In the words every removal of one fault answers with (`delay 2 0`: "remove #3 …"), so a
                // links-matrix key pressed again, which now sends `heal ID`, reads as it did before.
                Ok(Some(format!("heal {id}: remove {}", list(&gone))))
            }
        }
    }

    /// The fault set, one line per fault.
    pub(super) fn fault_lines(&self) -> Vec<String> {
        let now = self.now_ms();
        let set = self.inner.faults.lock().unwrap();
        set.active
            .iter()
            .map(|(id, a)| {
                let left = a
                    .until_ms
                    // The faults line's words for time left (`5s`), never the exact `4998ms` of a measured
                    // remainder (fixes3 item 5).
                    .map(|u| format!(" ({} left)", crate::state::left_text(u.saturating_sub(now))))
                    .unwrap_or_default();
                format!(
                    "#{id} {}{left} — {} link{}",
                    a.cmd,
                    a.links.len(),
                    if a.links.len() == 1 { "" } else { "s" }
                )
            })
            .collect()
    }

    /// Ends the hold faults that lie wholly within the links the target covers (for `release`); returns them,
    /// and the holds that also cover links outside the target, which go on holding: ending one would deliver
    /// the frames it holds everywhere, so `release 1->2` (the links matrix's `a` on one link) under `hold *`
    /// would let every link's frames go.
    pub(super) fn end_holds_on(&self, target: &FaultTarget) -> (Vec<String>, Vec<String>) {
        let Ok(pinned) = self.pin(target) else {
            return (Vec::new(), Vec::new());
        };
        let Ok((links, _)) = self.links_of(&pinned) else {
            return (Vec::new(), Vec::new());
        };
        let gone = self.remove_where(
            |a| a.cmd.kind == FaultKind::Hold && a.links.iter().all(|l| links.contains(l)),
            FaultEnd::Released,
        );
        if !gone.is_empty() {
            self.publish_faults();
        }
        let wider = self
            .inner
            .faults
            .lock()
            .unwrap()
            .active
            .iter()
            .filter(|(_, a)| {
                a.cmd.kind == FaultKind::Hold && a.links.iter().any(|l| links.contains(l))
            })
            .map(|(id, a)| format!("#{id} {}", a.cmd))
            .collect();
        (
            gone.iter()
                .map(|(id, a)| format!("#{id} {}", a.cmd))
                .collect(),
            wider,
        )
    }

    /// Sends the set to the dashboard and the event log.
    pub(super) fn publish_faults(&self) {
        let faults: Vec<ActiveFault> = {
            let set = self.inner.faults.lock().unwrap();
            set.active
                .iter()
                .map(|(id, a)| ActiveFault {
                    id: *id,
                    text: a.cmd.to_string(),
                    short: a.short.clone(),
                    since_ms: a.since_ms,
                    until_ms: a.until_ms,
                    fault: Some(a.cmd.clone()),
                })
                .collect()
        };
        self.emit(Event::FaultSet { faults });
    }
}

/// `#3 isolate 2, #4 cut 1->2`.
fn list(faults: &[(u64, Active)]) -> String {
    faults
        .iter()
        .map(|(id, a)| format!("#{id} {}", a.cmd))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The header's short name of a fault.
fn short_name(cmd: &FaultCmd, groups: Option<&str>) -> String {
    let only = if cmd.only.is_empty() {
        String::new()
    } else {
        format!(" only {}", cmd.only.join(","))
    };
    match (&cmd.kind, &cmd.target) {
        (FaultKind::Cut, FaultTarget::Node(t)) => format!("n{t} isolated{only}"),
        (FaultKind::Cut, FaultTarget::Shape(_)) => {
            format!("partition {}{only}", groups.unwrap_or("?"))
        }
        _ => {
            let mut c = cmd.clone();
            c.duration = None;
            c.to_string()
        }
    }
}

/// The effect text an answer and the feed show (the words `isolate node N` and `partition …` are kept from
/// before faults had ids, so scripts that looked for them still find them).
fn effect_text(cmd: &FaultCmd, described: &str, groups: Option<&str>, links: usize) -> String {
    let timed = cmd
        .duration
        .map(|d| format!(" for {}", human(d)))
        .unwrap_or_default();
    let only = if cmd.only.is_empty() {
        String::new()
    } else {
        format!(" (only {} frames)", cmd.only.join(", "))
    };
    let noun = if links == 1 { "link" } else { "links" };
    match (&cmd.kind, &cmd.target) {
        (FaultKind::Cut, FaultTarget::Node(t)) => {
            format!("isolate node {t}{described}{only}{timed}")
        }
        (FaultKind::Cut, FaultTarget::Shape(_)) => {
            format!("partition {}{only}{timed}", groups.unwrap_or("?"))
        }
        (FaultKind::Delay { delay, .. }, FaultTarget::Node(t)) => format!(
            "delay node {t}'s links by {} ms{only}{timed}",
            delay.as_millis()
        ),
        (FaultKind::Loss(p), FaultTarget::Node(t)) => {
            format!("drop {p}% of frames on node {t}'s links{only}{timed}")
        }
        (_, target) => {
            let node = match target {
                FaultTarget::Node(t) | FaultTarget::From(t) | FaultTarget::To(t)
                    if !described.is_empty() =>
                {
                    format!(", node {t}{described}")
                }
                _ => String::new(),
            };
            format!("{cmd} on {links} {noun}{node}")
        }
    }
}
