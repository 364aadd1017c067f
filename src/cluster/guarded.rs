//! The cluster side of [`super::guard`]: gathering the facts an action's preconditions are judged on,
//! asking the cluster who leads (not the last poll), waiting for a stop to take effect, and following an
//! accepted leadership transfer to report in the feed when it never completes.

use std::time::{Duration, Instant};

use squall_node::raft::Role;

use super::command::{Command, NodeId, Target};
use super::links::link_view;
use super::{Cluster, guard};
use crate::command::{ClockAction, DiskAction};
use crate::state::{Event, LinkState};

impl Cluster {
    /// What node `id`'s process is doing now, as the supervisor knows it (not as the last poll or event the
    /// state applied says: just after a `resume` or `restart` those lag behind).
    pub fn process(&self, id: NodeId) -> guard::Proc {
        match self.inner.procs.state(id) {
            Some(squall_chaos::ProcState::Running { .. }) => guard::Proc::Running,
            Some(squall_chaos::ProcState::Paused { .. }) => guard::Proc::Paused,
            Some(squall_chaos::ProcState::Restarting) => guard::Proc::Restarting,
            Some(squall_chaos::ProcState::Exited { signal, .. }) => guard::Proc::Down {
                killed: signal.as_deref() == Some("SIGKILL"),
            },
            None => guard::Proc::Down { killed: false },
        }
    }

    /// Whether the node `cmd` names can take it now (see [`guard`]).
    pub(super) fn admit(&self, cmd: &Command) -> Result<(), String> {
        let heal = match cmd {
            Command::Disk(t, DiskAction::Heal) | Command::Clock(t, ClockAction::Heal) => Some(*t),
            _ => None,
        };
        let Some(target) = cmd.target().or(heal) else {
            return Ok(());
        };
        let id = self.resolve(target)?;
        // Its host does not answer: whatever the node is doing, squall cannot act on it (issue 24).
        self.inner
            .procs
            .reachable(id)
            .map_err(|e| format!("node {id}: {e}"))?;
        let procs = self
            .node_ids()
            .into_iter()
            .map(|n| (n, self.process(n)))
            .collect();
        let cut = self
            .inner
            .links
            .stats_now()
            .into_iter()
            .map(link_view)
            .filter(|l| l.state == LinkState::Cut)
            .map(|l| (l.from, l.to))
            .collect();
        let removed = self.inner.roster.lock().unwrap().removed.clone();
        // Disk and clock faults exist only with `--disk-faults`; without, their commands say how to turn them on.
        let on = self.disk_faults_on();
        let nodes = self.node_ids();
        guard::admit(
            cmd,
            id,
            &guard::Facts {
                procs,
                cut,
                removed,
                disk_faults: on.then(|| {
                    nodes
                        .iter()
                        .copied()
                        .filter(|&n| !self.node_disk_faults(n).is_empty())
                        .collect()
                }),
                faked_clocks: on.then(|| {
                    nodes
                        .iter()
                        .copied()
                        .filter(|&n| self.node_clock(n).is_some())
                        .collect()
                }),
            },
        )
    }

    /// Waits (at most `limit`) until the supervisor has seen node `id` exit, so the next action sees it down.
    pub(super) async fn await_exit(&self, id: NodeId, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.alive(id) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The leader as the cluster says now (every live node asked at once), not as the last poll saw it: just
    /// after a leadership change the poll is behind.
    pub(super) async fn ask_leader(&self) -> Option<(NodeId, u64)> {
        let kind = &self.inner.spec.kind;
        let asks = self
            .node_ids()
            .into_iter()
            .filter(|id| self.alive(*id))
            .filter_map(|id| Some((id, self.status_addr(id)?)))
            .map(|(id, addr)| async move {
                let mut source = kind.status_once(addr, Duration::from_millis(500));
                source.poll().await.ok().map(|s| (id, s))
            });
        let answers: Vec<_> = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect();
        for (id, report) in &answers {
            // Fresher than the last poll: what the action's report says of the node comes from it too.
            if let Some(status) = &report.detail {
                self.record_status(*id, status);
            }
            self.record_role(*id, report.role, report.term);
        }
        answers
            .iter()
            .filter(|(_, s)| s.role == Some(Role::Leader))
            .filter_map(|(id, s)| Some((*id, s.term?)))
            .max_by_key(|(_, term)| *term)
            .or_else(|| self.leader())
    }

    /// `cmd` with a `leader` target replaced by the node that leads as the cluster says now (unchanged when no
    /// node answers as leader: resolving it then says so).
    pub(super) async fn pin_leader(&self, cmd: Command) -> Command {
        if cmd.acts_on() != Some(Target::Leader) {
            return cmd;
        }
        let Some((id, _)) = self.ask_leader().await else {
            return cmd;
        };
        let t = Target::Node(id);
        match cmd {
            Command::Kill(_) => Command::Kill(t),
            Command::Terminate(_) => Command::Terminate(t),
            Command::Pause(_) => Command::Pause(t),
            Command::Resume(_) => Command::Resume(t),
            Command::TogglePause(_) => Command::TogglePause(t),
            Command::Restart(_) => Command::Restart(t),
            Command::Wipe(_) => Command::Wipe(t),
            Command::Fault(mut f) if f.is_isolate() => {
                f.target = super::fault::FaultTarget::Node(t);
                Command::Fault(f)
            }
            Command::CycleDelay(_) => Command::CycleDelay(t),
            Command::CycleLoss(_) => Command::CycleLoss(t),
            Command::Transfer(_) => Command::Transfer(t),
            Command::PowerCut(crate::command::PowerTarget::One(_), torn) => {
                Command::PowerCut(crate::command::PowerTarget::One(t), torn)
            }
            Command::Disk(_, a) => Command::Disk(t, a),
            Command::Clock(_, a) => Command::Clock(t, a),
            other => other,
        }
    }

    /// After a transfer was accepted: reports in the feed when `to` has not taken leadership in time.
    pub(super) async fn follow_transfer(&self, to: NodeId, from: NodeId, term: u64) {
        let wait = (self.inner.spec.election_timeout.1 * 5).max(Duration::from_secs(2));
        let deadline = Instant::now() + wait;
        let mut stop = self.stopping();
        while Instant::now() < deadline {
            if self.leader().is_some_and(|(l, t)| l == to && t > term) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = stop.changed() => return,
            }
        }
        let now = match self.leader() {
            Some((l, t)) if l == from && t == term => format!("node {l} still leads term {t}"),
            Some((l, t)) => format!("node {l} leads term {t}"),
            None => "no node leads".to_string(),
        };
        self.emit(Event::ActionFailed {
            action: format!("transfer {to}"),
            error: format!(
                "node {to} did not take leadership within {}; {now}",
                crate::units::duration(wait)
            ),
        });
    }
}
