//! The remote backend through the fleet (issue 24): every request to a host goes through the fleet's current
//! client for it (a reconnect makes a new one), and what the fleet tells of the hosts is followed here.
//!
//! While a host is unreachable squall sends it nothing: a request that needs an answer (a kill, a restart, a
//! read) is refused at once naming the host, and one that cannot wait for an answer (a fault removed by a
//! `heal` or its expiry, a node's restart arguments) waits here and is sent first, in order, when the host is
//! back, so what the controller holds in force and what the host does never part. The state and link reads
//! skip the host meanwhile; when it is back, its process states are read again at once. A host lost for
//! good (its agent gone after its grace period) gets nothing more.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::{DEADLINE, Links, Procs, REFRESH, Remote, split};
use crate::remote::client::AgentClient;
use crate::remote::fleet::HostEvent;
use crate::remote::protocol::{Answer, Op};
use crate::state::Event;
use squall_chaos::LinkId;

/// Whether squall sends to one host now, and what waits for it meanwhile.
#[derive(Debug, Default)]
pub(super) struct Reach {
    /// Why not (a refusal for a person, naming the host), while the host is unreachable or lost.
    down: Option<String>,
    /// The host is lost for good: nothing waits for it.
    lost: bool,
    /// Changes that could not wait for an answer, made while the host was unreachable, oldest first.
    waiting: Vec<Op>,
}

impl Reach {
    /// Why squall sends the host nothing now (a refusal naming it), while it is unreachable or lost.
    pub(super) fn down(&self) -> Option<&str> {
        self.down.as_deref()
    }
}

impl Remote {
    /// The fleet's current client for host `h`. `Err` (for a person, naming the host) while it is unreachable
    /// or lost, or back but not yet sent what waited for it: then nothing was asked.
    pub(super) fn client(&self, h: usize) -> Result<AgentClient, String> {
        if let Some(why) = &self.reach.lock().unwrap()[h].down {
            return Err(why.clone());
        }
        self.fleet.client(&self.agents[h].label)
    }

    /// Sends `op` to host `h` now and logs a refusal when it comes (for callers that cannot wait); while the
    /// host is unreachable, `op` waits and is sent first when it is back (see the module comment).
    pub(super) fn send(&self, h: usize, op: Op) {
        let label = self.agents[h].label.clone();
        let mut reach = self.reach.lock().unwrap();
        let r = &mut reach[h];
        if r.lost {
            tracing::warn!(host = %label, ?op, "not sent: the host is lost");
            return;
        }
        let client = match r.down {
            None => self.fleet.client(&label).ok().filter(|c| !c.is_closed()),
            Some(_) => None,
        };
        match client {
            Some(c) => queue(&c, op),
            None => r.waiting.push(op),
        }
    }

    /// Reads host `h`'s process states into the cache, unless the host is unreachable. A state read is taken
    /// only for a node nothing else changed since the read was sent (a reply or an exit event is newer).
    pub(super) async fn read_states(&self, h: usize) {
        let Ok(client) = self.client(h) else { return };
        let asked = self.changes.load(std::sync::atomic::Ordering::Relaxed);
        let Ok(Answer::Status { nodes, .. }) = client.call(Op::Status, REFRESH * 4).await else {
            return;
        };
        let mut states = self.states.lock().unwrap();
        for (node, state) in nodes {
            let newer = states.get(&node).is_some_and(|(_, n)| *n >= asked);
            if !newer {
                states.insert(node, (state, 0));
            }
        }
    }

    /// Host `h` stopped answering: nothing is sent to it from now on.
    fn went(&self, h: usize, why: &str) {
        let label = &self.agents[h].label;
        self.reach.lock().unwrap()[h].down = Some(format!(
            "host {label} is unreachable ({why}); squall is reconnecting, nothing was done"
        ));
    }

    /// Host `h` is back: what waited for it is sent first, in order, then everything else may be.
    fn back(&self, h: usize) {
        let label = &self.agents[h].label;
        let mut reach = self.reach.lock().unwrap();
        let r = &mut reach[h];
        // Gone again already: the fleet's next event says so, and what waits goes on waiting.
        let Ok(client) = self.fleet.client(label) else {
            return;
        };
        for op in r.waiting.drain(..) {
            queue(&client, op);
        }
        r.down = None;
    }

    /// Host `h`'s agent is gone, and its nodes with it: nothing is sent to it any more.
    fn lost(&self, h: usize, why: &str) {
        let label = &self.agents[h].label;
        let mut reach = self.reach.lock().unwrap();
        let r = &mut reach[h];
        r.lost = true;
        r.waiting.clear();
        r.down = Some(crate::remote::fleet::lost_refusal("", label, why));
    }
}

/// Waits (up to 2 s) until `exits` carries node `node`'s exit of process `pid`. A restart's old process is
/// reaped before the agent starts the new one and its exit event goes out first, but it reaches the session
/// through the fleet on another path than the restart's answer: waited for, the session hears `killed` before
/// `running`, as a local restart tells it, not a running node then marked killed.
pub(super) async fn exit_told(
    mut exits: tokio::sync::broadcast::Receiver<squall_chaos::ExitEvent>,
    node: u64,
    pid: u32,
) {
    let name = super::name(node);
    let seen = async {
        loop {
            match exits.recv().await {
                Ok(e) if e.name == name && e.pid == pid => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), seen).await;
}

/// Sends `op` through `client` and logs a refusal when it comes.
fn queue(client: &AgentClient, op: Op) {
    let answer = client.queue(op, DEADLINE);
    let label = client.label().to_string();
    tokio::spawn(async move {
        if let Err(e) = answer.await {
            tracing::warn!(host = %label, error = %e, "an agent refused a change");
        }
    });
}

/// Follows what the fleet tells of the hosts until the backend is gone: the agents' exits go to the process
/// states and the exits' followers, a host's changes to `feed` (the session's feed and dashboard, through
/// [`Procs::host_events`]) and to which hosts squall sends to; a host back has its states read again at once.
pub(super) async fn follow_hosts(
    remote: Weak<Remote>,
    mut events: mpsc::UnboundedReceiver<HostEvent>,
    feed: mpsc::UnboundedSender<Event>,
) {
    while let Some(e) = events.recv().await {
        let Some(r) = remote.upgrade() else { return };
        let host = match &e {
            HostEvent::Unreachable { host, .. }
            | HostEvent::Reconnecting { host, .. }
            | HostEvent::AttemptFailed { host, .. }
            | HostEvent::Reconnected { host, .. }
            | HostEvent::Lost { host, .. }
            | HostEvent::Agent { host, .. } => host,
        };
        let Some(h) = r.agents.iter().position(|a| &a.label == host) else {
            continue;
        };
        match &e {
            HostEvent::Agent { event, .. } => super::on_agent_event(&r, event.clone()),
            HostEvent::Unreachable { why, .. } => r.went(h, why),
            HostEvent::Reconnected { .. } => {
                r.back(h);
                // Read beside the agent's backlog of exits, which arrives now too: whichever is newer wins.
                let again: Arc<Remote> = r.clone();
                tokio::spawn(async move { again.read_states(h).await });
            }
            HostEvent::Lost { why, .. } => r.lost(h, why),
            HostEvent::Reconnecting { .. } | HostEvent::AttemptFailed { .. } => {}
        }
        if let Some(event) = e.to_state() {
            let _ = feed.send(event);
        }
    }
}

impl Procs {
    /// What happens to the hosts (unreachable, reconnecting, back, lost), as session events, from the start;
    /// `None` for a local cluster, or once taken (there is one reader).
    pub(in crate::cluster) fn host_events(&self) -> Option<mpsc::UnboundedReceiver<Event>> {
        match self {
            Procs::Local(_) => None,
            Procs::Remote(r) => r.host_events.lock().unwrap().take(),
        }
    }

    /// Whether node `id`'s host takes requests now. `Err` (for a person) names the host and why not; a node
    /// no host runs, and every node of a local cluster, is `Ok` here (others say what is wrong with it).
    pub(in crate::cluster) fn reachable(&self, id: u64) -> Result<(), String> {
        match self {
            Procs::Local(_) => Ok(()),
            Procs::Remote(r) => match r.host_of.lock().unwrap().get(&id).copied() {
                Some(h) => r.client(h).map(drop),
                None => Ok(()),
            },
        }
    }
}

impl Links {
    /// Whether every host carrying `links` (each link's sender's and receiver's) takes requests now. `Err` (for
    /// a person) names the first host that does not, and why.
    pub(in crate::cluster) fn reachable(&self, links: &[LinkId]) -> Result<(), String> {
        match self {
            Links::Local(_) => Ok(()),
            Links::Remote(r) => split(r, links.to_vec())
                .into_keys()
                .try_for_each(|h| r.client(h).map(drop)),
        }
    }
}
