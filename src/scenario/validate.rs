//! A scenario's steps checked before anything runs: every command parses, names nodes the cluster can have,
//! needs no fault filesystem the scenario did not ask for, and can be undone where it has `until`.

use std::path::Path;

use super::{Scenario, parse_scenario};
use crate::cluster::command::{self, Command, NodeId, Target};
use crate::cluster::fault::FaultTarget;

/// The nodes a command names (to refuse a scenario that names a node the cluster does not have).
pub fn nodes_named(cmd: &Command) -> Vec<NodeId> {
    fn t(t: &Target) -> Vec<NodeId> {
        match t {
            Target::Node(n) => vec![*n],
            Target::Leader => vec![],
        }
    }
    fn ft(f: &FaultTarget) -> Vec<NodeId> {
        match f {
            FaultTarget::Node(x) | FaultTarget::From(x) | FaultTarget::To(x) => t(x),
            FaultTarget::Link(a, b) | FaultTarget::Both(a, b) => vec![*a, *b],
            FaultTarget::All => vec![],
            FaultTarget::Shape(crate::command::PartitionShape::Groups(g)) => {
                g.iter().flatten().copied().collect()
            }
            FaultTarget::Shape(_) => vec![],
        }
    }
    match cmd {
        Command::Kill(x)
        | Command::Terminate(x)
        | Command::Pause(x)
        | Command::Resume(x)
        | Command::TogglePause(x)
        | Command::Restart(x)
        | Command::Wipe(x)
        | Command::CycleDelay(x)
        | Command::CycleLoss(x)
        | Command::Transfer(x)
        | Command::Disk(x, _)
        | Command::Clock(x, _) => t(x),
        Command::PowerCut(crate::cluster::disk::PowerTarget::One(x), _) => t(x),
        Command::Fault(f) | Command::ToggleFault(f) => ft(&f.target),
        Command::Step(f, _) | Command::DropHeld(f, _) | Command::Release(f) => ft(f),
        Command::Remove(n) | Command::Replace(n) | Command::Promote(n) | Command::Demote(n) => {
            vec![*n]
        }
        _ => vec![],
    }
}

/// Whether a step with `until` can be undone: a fault without its own duration, a kill, terminate, pause or
/// power cut of one node (restarted or resumed), or a disk or clock fault (healed on that node).
fn undoable(cmd: &Command) -> bool {
    match cmd {
        Command::Fault(f) => f.duration.is_none(),
        Command::Kill(_) | Command::Terminate(_) | Command::Pause(_) => true,
        Command::PowerCut(crate::cluster::disk::PowerTarget::One(_), _) => true,
        Command::Disk(..) | Command::Clock(..) => true,
        _ => false,
    }
}

/// Checks one timeline line against the headless vocabulary and a cluster of `nodes` nodes.
pub fn validate_line(line: &str, nodes: u64) -> Result<(), String> {
    let cmd = command::parse(line)?;
    if matches!(cmd, Command::Quit) {
        return Err("`quit` ends a console session; a scenario ends after its duration".into());
    }
    for n in nodes_named(&cmd) {
        if n == 0 || n > nodes {
            return Err(format!(
                "there is no node {n} at this step: the cluster can have nodes 1 to {nodes} by then (its nodes plus one per earlier `add`, `add --learner` or `replace`)"
            ));
        }
    }
    Ok(())
}

/// Reads and validates a scenario file; `Err` is the message for a person.
pub fn load(file: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read scenario {}: {e}", file.display()))?;
    let scenario = parse_scenario(file, &text, &validate_line).map_err(|e| e.to_string())?;
    let needs_disk = |cmd: &Command| {
        matches!(
            cmd,
            Command::PowerCut(..) | Command::Disk(..) | Command::Clock(..)
        )
    };
    if !scenario.cluster.disk_faults {
        for s in &scenario.timeline {
            if needs_disk(&s.command) {
                return Err(format!(
                    "{}:{}: `{}` needs the fault filesystem: add `disk-faults = true` under [cluster]",
                    file.display(),
                    s.line,
                    s.command
                ));
            }
        }
        if let Some(n) = &scenario.nemesis
            && let Some(k) = n
                .kinds
                .iter()
                .find(|k| matches!(k, super::NemesisKind::Powercut | super::NemesisKind::Clock))
        {
            return Err(format!(
                "{}: nemesis kind \"{k}\" needs the fault filesystem: add `disk-faults = true` under [cluster]",
                file.display()
            ));
        }
    }
    let lock = matches!(
        scenario.workload.kind,
        super::WorkloadKind::Lock | super::WorkloadKind::LockFenced
    );
    for s in &scenario.timeline {
        if let Command::PauseClient(c, _) | Command::SlowClient(c, _) = s.command {
            if !lock {
                return Err(format!(
                    "{}:{}: `{}` acts on the lock workload's clients: set `kind = \"lock\"` or \
                     `kind = \"lock-fenced\"` under [workload]",
                    file.display(),
                    s.line,
                    s.command
                ));
            }
            if c > crate::cluster::LOCK_CLIENTS {
                return Err(format!(
                    "{}:{}: `{}`: there is no lock client {c}: the lock workload runs clients 1 to {}",
                    file.display(),
                    s.line,
                    s.command,
                    crate::cluster::LOCK_CLIENTS
                ));
            }
        }
        if s.until.is_some() && !undoable(&s.command) {
            return Err(format!(
                "{}:{}: `{}` cannot be undone: `until` takes a fault (cut, delay, loss, partition, …) \
                 without its own `for`, a kill, terminate, pause or power cut of one node, or a disk or \
                 clock fault",
                file.display(),
                s.line,
                s.command
            ));
        }
    }
    Ok(scenario)
}
