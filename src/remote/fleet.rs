//! Keeping every host's agent connected (issue 24): the controller pings each agent every 250 ms; a host whose
//! agent does not answer a ping within 700 ms (so silence shows within 950 ms, inside the 1 s), or
//! whose ssh ends, is *unreachable* — its nodes are neither dead nor alive
//! as far as anyone here knows, and a request for them is refused naming the host — and squall reconnects
//! through a new ssh (`squall agent --attach DIR`, relayed to the agent that kept its nodes for its grace
//! period), with a backoff, saying each attempt. The cluster's backend holds a [`Fleet`] and asks it for the
//! client of a node's host; what happens to hosts comes out as [`HostEvent`]s for the feed and the dashboard.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::client::AgentClient;
use super::connect::{Agents, STOP_DEADLINE};
use super::protocol::{AgentEvent, Answer, Op};
use super::ssh::{AttachError, Connection, SshHost};

/// How often and how patiently the controller checks its agents, and how it retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between pings (250 ms; a ping waits for the one before it to be answered).
    pub ping_every: Duration,
    /// A ping not answered within this (700 ms) makes the host unreachable. With `ping_every` it bounds how
    /// long a silent host takes to show: silence begun just after an answer is seen at most
    /// `ping_every + answer_within` (950 ms) later, inside issue 24's 1 s.
    pub answer_within: Duration,
    /// The wait after the first failed reconnect (250 ms); it doubles after each failure, up to `backoff_max`.
    pub backoff_first: Duration,
    /// The longest wait between reconnects (1 s): with `attempt_within` it keeps attempts about every 3 s at
    /// most while a host is silent, so one lands soon after it answers again, well inside the agent's grace.
    pub backoff_max: Duration,
    /// A reconnect attempt that has not attached within this (4 s) is given up and counted as failed (its ssh
    /// killed), so a dead connection (an old master waiting out its keep-alives) cannot hold the one attempt
    /// past the agent's grace period (tester 9's finding 2).
    pub attempt_within: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ping_every: Duration::from_millis(250),
            answer_within: Duration::from_millis(700),
            backoff_first: Duration::from_millis(250),
            backoff_max: Duration::from_secs(1),
            attempt_within: Duration::from_secs(4),
        }
    }
}

/// Where a host stands, as far as the controller knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostState {
    /// Its agent answers.
    Up {
        /// The agent's pid on the host.
        pid: u32,
    },
    /// Its agent stopped answering or its ssh ended; squall is reconnecting. Its nodes may run or not.
    Unreachable {
        /// Why, for a person.
        why: String,
    },
    /// Its agent is gone (it stopped its nodes after its grace period): nothing to reconnect to.
    Lost {
        /// Why, for a person.
        why: String,
    },
}

/// What happened to a host, for the feed and the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    /// The host's agent stopped answering, or its ssh ended: its nodes are unreachable (never guessed dead or
    /// alive) until it is back.
    Unreachable {
        /// The host's label.
        host: String,
        /// Its nodes.
        nodes: Vec<u64>,
        /// Why, for a person.
        why: String,
    },
    /// Reconnect attempt `attempt` (the first is 1) starts.
    Reconnecting {
        /// The host's label.
        host: String,
        /// Which attempt.
        attempt: u32,
    },
    /// Reconnect attempt `attempt` failed; the next starts after `retry_in`.
    AttemptFailed {
        /// The host's label.
        host: String,
        /// Which attempt.
        attempt: u32,
        /// Why, for a person.
        why: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// The host is back: the same agent, which kept its nodes.
    Reconnected {
        /// The host's label.
        host: String,
        /// Its nodes.
        nodes: Vec<u64>,
        /// The agent's pid on the host.
        pid: u32,
    },
    /// The host answered but its agent is gone, and its nodes with it; squall stops trying.
    Lost {
        /// The host's label.
        host: String,
        /// Its nodes.
        nodes: Vec<u64>,
        /// Why, for a person, in one short line.
        why: String,
        /// What `why` sums up (each dead fault filesystem detached, or not), for the event log.
        details: Vec<String>,
    },
    /// Something the host's agent reported.
    Agent {
        /// The host's label.
        host: String,
        /// What.
        event: AgentEvent,
    },
}

impl HostEvent {
    /// The session event that shows this on the dashboard and in the feed; `None` for an agent's own event
    /// (the cluster's backend turns an exit into a process event).
    pub fn to_state(&self) -> Option<crate::state::Event> {
        use crate::state::{Event, HostChange};
        let host_event = |host: &str, nodes: &[u64], change| Event::Host {
            host: host.to_string(),
            nodes: nodes.to_vec(),
            change,
        };
        Some(match self {
            HostEvent::Unreachable { host, nodes, why } => {
                host_event(host, nodes, HostChange::Unreachable { why: why.clone() })
            }
            HostEvent::Reconnecting { host, attempt } => {
                host_event(host, &[], HostChange::Reconnecting { attempt: *attempt })
            }
            HostEvent::AttemptFailed {
                host,
                attempt,
                why,
                retry_in,
            } => host_event(
                host,
                &[],
                HostChange::AttemptFailed {
                    attempt: *attempt,
                    why: why.clone(),
                    retry_in_ms: retry_in.as_millis() as u64,
                },
            ),
            HostEvent::Reconnected { host, nodes, pid } => {
                host_event(host, nodes, HostChange::Back { pid: *pid })
            }
            HostEvent::Lost {
                host,
                nodes,
                why,
                details,
            } => host_event(
                host,
                nodes,
                HostChange::Lost {
                    why: why.clone(),
                    details: details.clone(),
                },
            ),
            HostEvent::Agent { .. } => return None,
        })
    }
}

/// A lost host's reason as the feed's one line gives it, and the details it leaves out for the event log.
/// The reconnect that finds no agent detaches the dead fault filesystems the killed agent left, one clause each
/// (`detached the dead fault filesystem on P`, or `cannot detach … on P (why): detach it with …`); the line says
/// how many and under which directory instead, and the clauses go in the details.
fn lost_words(why: &str) -> (String, Vec<String>) {
    const DONE: &str = "detached the dead fault filesystem on ";
    const STUCK: &str = "cannot detach the dead fault filesystem on ";
    let (mut kept, mut details) = (Vec::new(), Vec::new());
    let (mut done, mut stuck) = (Vec::new(), Vec::new());
    for part in clauses(why) {
        if let Some(p) = part.strip_prefix(DONE) {
            done.push(p);
        } else if let Some(rest) = part.strip_prefix(STUCK) {
            stuck.push(rest.split(" (").next().unwrap_or(rest));
        } else {
            kept.push(part.to_string());
            continue;
        }
        details.push(part.to_string());
    }
    if details.is_empty() {
        return (why.to_string(), details);
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if !done.is_empty() {
        kept.push(format!(
            "detached {} dead fault filesystem{} {}",
            done.len(),
            plural(done.len()),
            place_words(&done)
        ));
    }
    if !stuck.is_empty() {
        kept.push(format!(
            "{} could not be detached, {} (`umount -l` {}; the event log says why)",
            stuck.len(),
            place_words(&stuck),
            if stuck.len() == 1 { "it" } else { "them" }
        ));
    }
    (kept.join("; "), details)
}

/// `why`'s clauses: split at each `; ` outside parentheses (a clause's own reason may hold one).
fn clauses(why: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in why.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth <= 0 && why[i..].starts_with("; ") => {
                out.push(&why[start..i]);
                start = i + 2;
            }
            _ => {}
        }
    }
    out.push(&why[start..]);
    out
}

/// `on P` for one path, `under D` for several (`D` the deepest directory holding them all).
fn place_words(paths: &[&str]) -> String {
    use std::path::{Path, PathBuf};
    if let [one] = paths {
        return format!("on {one}");
    }
    let mut common: Vec<_> = Path::new(paths[0]).components().collect();
    for p in &paths[1..] {
        let same = common
            .iter()
            .zip(Path::new(p).components())
            .take_while(|(a, b)| **a == *b)
            .count();
        common.truncate(same);
    }
    format!("under {}", common.iter().collect::<PathBuf>().display())
}

/// The refusal of a request for lost host `label` (`prefix` starts it: `"node 3: "`, or empty): what happened and
/// the way back. A new agent is not started within the session (it would need every proxy, fault, mount and
/// forward of the host set up again), so the way back is a new session on the same data.
pub fn lost_refusal(prefix: &str, label: &str, why: &str) -> String {
    format!(
        "{prefix}host {label} is lost ({why}); nothing was done: this session cannot start a new agent there; \
         `quit`, then `squall up` again with the same --dir and hosts file starts its nodes on their data"
    )
}

struct Slot {
    host: SshHost,
    state: HostState,
    client: Option<AgentClient>,
}

type Slots = Arc<Mutex<Vec<Slot>>>;

/// Every host's agent, kept connected. See the module's comment.
pub struct Fleet {
    slots: Slots,
    stop: watch::Sender<bool>,
    /// Taken by the first [`Fleet::stop`].
    tasks: Mutex<Vec<tokio::task::JoinHandle<Option<Connection>>>>,
    control_dir: std::path::PathBuf,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("hosts", &self.hosts())
            .finish_non_exhaustive()
    }
}

fn pid_of(hello: &Answer) -> u32 {
    match hello {
        Answer::Hello { pid, .. } => *pid,
        _ => 0,
    }
}

impl Fleet {
    /// Keeps `agents` connected with the default [`Timing`]. Returns the fleet and what happens to its hosts.
    pub fn start(agents: Agents) -> (Fleet, mpsc::UnboundedReceiver<HostEvent>) {
        Fleet::start_with(agents, Timing::default())
    }

    /// Keeps `agents` connected with `timing`.
    pub fn start_with(
        agents: Agents,
        timing: Timing,
    ) -> (Fleet, mpsc::UnboundedReceiver<HostEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let (stop, _) = watch::channel(false);
        let mut slots = Vec::new();
        let mut conns = Vec::new();
        for (host, conn) in agents.hosts {
            slots.push(Slot {
                host: host.clone(),
                state: HostState::Up {
                    pid: pid_of(&conn.hello),
                },
                client: Some(conn.client.clone()),
            });
            conns.push((host, conn));
        }
        let slots: Slots = Arc::new(Mutex::new(slots));
        let tasks = conns
            .into_iter()
            .enumerate()
            .map(|(i, (host, conn))| {
                tokio::spawn(keep(
                    i,
                    host,
                    conn,
                    slots.clone(),
                    events.clone(),
                    stop.subscribe(),
                    timing,
                ))
            })
            .collect();
        (
            Fleet {
                slots,
                stop,
                tasks: Mutex::new(tasks),
                control_dir: agents.control_dir,
            },
            rx,
        )
    }

    /// The hosts' labels, in the hosts file's order.
    pub fn hosts(&self) -> Vec<String> {
        self.slots
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.host.host.label.clone())
            .collect()
    }

    /// Where host `label` stands; `None` for no such host.
    pub fn state(&self, label: &str) -> Option<HostState> {
        self.slots
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.host.host.label == label)
            .map(|s| s.state.clone())
    }

    /// The host that runs node `node`, by label.
    pub fn host_of(&self, node: u64) -> Option<String> {
        self.slots
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.host.host.nodes.contains(&node))
            .map(|s| s.host.host.label.clone())
    }

    /// The client of the agent that runs node `node`. `Err` (for a person, naming the host) when its host is
    /// unreachable or lost: then nothing was asked of it.
    pub fn client_for_node(&self, node: u64) -> Result<AgentClient, String> {
        let slots = self.slots.lock().unwrap();
        let slot = slots
            .iter()
            .find(|s| s.host.host.nodes.contains(&node))
            .ok_or_else(|| format!("node {node} is on no host of the hosts file"))?;
        Self::client_of(slot, &format!("node {node}: "))
    }

    /// The client of host `label`'s agent; `Err` as for [`Fleet::client_for_node`].
    pub fn client(&self, label: &str) -> Result<AgentClient, String> {
        let slots = self.slots.lock().unwrap();
        let slot = slots
            .iter()
            .find(|s| s.host.host.label == label)
            .ok_or_else(|| format!("no host {label} in the hosts file"))?;
        Self::client_of(slot, "")
    }

    /// `prefix` starts a refusal (`"node 3: "`, or empty).
    fn client_of(slot: &Slot, prefix: &str) -> Result<AgentClient, String> {
        let label = &slot.host.host.label;
        match (&slot.state, &slot.client) {
            (HostState::Up { .. }, Some(c)) => Ok(c.clone()),
            (HostState::Lost { why }, _) => Err(lost_refusal(prefix, label, why)),
            (HostState::Unreachable { .. }, _) | (HostState::Up { .. }, None) => {
                let why = match &slot.state {
                    HostState::Unreachable { why } => why.as_str(),
                    _ => "no connection",
                };
                Err(format!(
                    "{prefix}host {label} is unreachable ({why}); squall is reconnecting, nothing was done"
                ))
            }
        }
    }

    /// Stops every connected agent (and so every node it runs) and closes the ssh connections. An agent that
    /// is unreachable stops its nodes on its own once its grace period passes without a controller. A second
    /// call finds nothing left to stop.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let mut conns = Vec::new();
        for t in tasks {
            if let Ok(Some(c)) = t.await {
                conns.push(c);
            }
        }
        futures::future::join_all(conns.into_iter().map(|c| c.shutdown(STOP_DEADLINE))).await;
        let hosts: Vec<SshHost> = self
            .slots
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.host.clone())
            .collect();
        for h in &hosts {
            h.close_master().await;
        }
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

impl Drop for Fleet {
    /// A fleet dropped without [`Fleet::stop`] (a cluster that failed to start, a panic) stops pinging and
    /// reconnecting: its ssh connections end, and each agent stops its nodes after its grace period, as when
    /// the controller dies.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Keeps host `i` connected until `stop`; returns its connection then, if it has one.
async fn keep(
    i: usize,
    host: SshHost,
    mut conn: Connection,
    slots: Slots,
    events: mpsc::UnboundedSender<HostEvent>,
    mut stop: watch::Receiver<bool>,
    timing: Timing,
) -> Option<Connection> {
    let label = host.host.label.clone();
    let nodes = host.host.nodes.clone();
    let set = |state: HostState, client: Option<AgentClient>| {
        let mut s = slots.lock().unwrap();
        s[i].state = state;
        s[i].client = client;
    };
    loop {
        let Some(why) = watch_connection(
            &label,
            &conn.client,
            &mut conn.events,
            &events,
            &mut stop,
            timing,
        )
        .await
        else {
            return Some(conn);
        };
        // What the agent said before the connection went is still told.
        while let Ok(event) = conn.events.try_recv() {
            let _ = events.send(HostEvent::Agent {
                host: label.clone(),
                event,
            });
        }
        set(HostState::Unreachable { why: why.clone() }, None);
        let _ = events.send(HostEvent::Unreachable {
            host: label.clone(),
            nodes: nodes.clone(),
            why,
        });
        // The old ssh is killed: the agent reads end of file and waits for the new one.
        drop(conn);
        let mut attempt = 0;
        let mut wait = timing.backoff_first;
        conn = loop {
            attempt += 1;
            let _ = events.send(HostEvent::Reconnecting {
                host: label.clone(),
                attempt,
            });
            let r = tokio::select! {
                r = tokio::time::timeout(timing.attempt_within, host.attach(attempt > 1)) => r.unwrap_or_else(|_| {
                    Err(AttachError::Failed(format!(
                        "host {label}: no answer within {:?}",
                        timing.attempt_within
                    )))
                }),
                _ = stop.changed() => return None,
            };
            match r {
                Ok(c) => break c,
                Err(AttachError::NoAgent(why)) => {
                    let (why, details) = lost_words(&why);
                    set(HostState::Lost { why: why.clone() }, None);
                    let _ = events.send(HostEvent::Lost {
                        host: label.clone(),
                        nodes: nodes.clone(),
                        why,
                        details,
                    });
                    return None;
                }
                Err(AttachError::Failed(why)) => {
                    let _ = events.send(HostEvent::AttemptFailed {
                        host: label.clone(),
                        attempt,
                        why,
                        retry_in: wait,
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return None,
                    }
                    wait = (wait * 2).min(timing.backoff_max);
                }
            }
        };
        let pid = pid_of(&conn.hello);
        set(HostState::Up { pid }, Some(conn.client.clone()));
        let _ = events.send(HostEvent::Reconnected {
            host: label.clone(),
            nodes: nodes.clone(),
            pid,
        });
    }
}

/// Forwards the agent's events (`from`) and pings it through `client` until the connection is lost (returns
/// why) or `stop` comes (returns `None`).
async fn watch_connection(
    label: &str,
    client: &AgentClient,
    from: &mut mpsc::UnboundedReceiver<AgentEvent>,
    events: &mpsc::UnboundedSender<HostEvent>,
    stop: &mut watch::Receiver<bool>,
    timing: Timing,
) -> Option<String> {
    let mut events_open = true;
    let mut ping = tokio::time::interval(timing.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return None,
            e = from.recv(), if events_open => match e {
                Some(event) => {
                    let _ = events.send(HostEvent::Agent { host: label.to_string(), event });
                }
                None => events_open = false,
            },
            _ = client.closed() => return Some("its ssh connection ended".into()),
            _ = ping.tick() => {
                if let Err(e) = client.call(Op::Ping, timing.answer_within).await {
                    if client.is_closed() {
                        return Some("its ssh connection ended".into());
                    }
                    return Some(format!("no answer to a ping within {:?}: {e}", timing.answer_within));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::hosts::Host;

    fn fleet_of(state: HostState) -> Fleet {
        let host = Host {
            label: "db-2".into(),
            ssh: "db-2".into(),
            identity: None,
            ssh_config: None,
            dir: "/var/tmp/squall".into(),
            nodes: vec![2, 3],
            address: None,
            cache: crate::remote::hosts::DEFAULT_CACHE.into(),
        };
        let (stop, _) = watch::channel(false);
        Fleet {
            slots: Arc::new(Mutex::new(vec![Slot {
                host: SshHost::new(host, std::path::Path::new("/tmp")),
                state,
                client: None,
            }])),
            stop,
            tasks: Mutex::new(Vec::new()),
            control_dir: "/nonexistent".into(),
        }
    }

    /// An agent that answers `answered` pings and then falls silent with its pipe still open (a host whose cable
    /// was unplugged: no end of file, just nothing). Returns the client and its events, and a receiver that
    /// hears when the agent wrote its last answer.
    fn silent_after(
        answered: usize,
    ) -> (
        AgentClient,
        mpsc::UnboundedReceiver<AgentEvent>,
        tokio::sync::oneshot::Receiver<std::time::Instant>,
    ) {
        use super::super::protocol::{Message, Request};
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (to_agent, agent_in) = tokio::io::duplex(4096);
        let (mut agent_out, from_agent) = tokio::io::duplex(4096);
        let (silent_tx, silent) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(agent_in).lines();
            let mut left = answered;
            let mut silent_tx = Some(silent_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let req: Request = serde_json::from_str(&line).expect("the client sends requests");
                if left == 0 {
                    continue;
                }
                left -= 1;
                let reply = Message::Reply {
                    id: req.id,
                    ok: Some(Answer::Done),
                    error: None,
                };
                let mut out = serde_json::to_vec(&reply).unwrap();
                out.push(b'\n');
                // Taken before the last answer goes out: every later ping is sent after this.
                if left == 0
                    && let Some(t) = silent_tx.take()
                {
                    let _ = t.send(std::time::Instant::now());
                }
                agent_out.write_all(&out).await.unwrap();
            }
        });
        let (client, events) = AgentClient::new("db-2", to_agent, from_agent);
        (client, events, silent)
    }

    #[tokio::test]
    async fn an_agent_that_falls_silent_is_reported_unreachable_after_one_ping_deadline() {
        let timing = Timing::default();
        // The target: a silent host shows within 1 s. Silence begun just after an answer is seen at
        // most one ping interval plus one answer deadline later.
        assert!(
            timing.ping_every + timing.answer_within <= Duration::from_secs(1),
            "default timing {timing:?} would show a silent host later than 1 s"
        );
        let (client, mut from, silent) = silent_after(3);
        let (events, _rx) = mpsc::unbounded_channel();
        let (_stop_tx, mut stop) = watch::channel(false);
        let why = tokio::time::timeout(
            Duration::from_secs(20),
            watch_connection("db-2", &client, &mut from, &events, &mut stop, timing),
        )
        .await
        .expect("watch_connection still running 20 s after the agent fell silent");
        let why = why.expect("watch_connection returned without a reason");
        assert!(
            why.starts_with("no answer to a ping within 700ms"),
            "reason given: {why}"
        );
        // Not before a ping sent after the last answer had waited its whole deadline.
        let last_answer = silent
            .await
            .expect("the agent never wrote its third answer");
        assert!(
            last_answer.elapsed() >= timing.answer_within,
            "reported {:?} after the last answer, before a ping's deadline of {:?}",
            last_answer.elapsed(),
            timing.answer_within
        );
        assert!(!client.is_closed(), "the connection itself never ended");
    }

    #[test]
    fn a_request_for_a_node_of_an_unreachable_or_lost_host_is_refused_naming_the_host() {
        let f = fleet_of(HostState::Unreachable {
            why: "no answer to a ping within 1s".into(),
        });
        assert_eq!(f.host_of(3).as_deref(), Some("db-2"));
        assert_eq!(
            f.client_for_node(3).unwrap_err(),
            "node 3: host db-2 is unreachable (no answer to a ping within 1s); squall is reconnecting, \
             nothing was done"
        );
        assert_eq!(
            f.client_for_node(9).unwrap_err(),
            "node 9 is on no host of the hosts file"
        );
        let f = fleet_of(HostState::Lost {
            why: "no agent runs there any more".into(),
        });
        assert_eq!(
            f.client("db-2").unwrap_err(),
            "host db-2 is lost (no agent runs there any more); nothing was done: this session cannot start a \
             new agent there; `quit`, then `squall up` again with the same --dir and hosts file starts its nodes \
             on their data"
        );
        assert_eq!(f.hosts(), vec!["db-2".to_string()]);
    }

    /// polish2 item 4: the reconnect that finds no agent detaches every dead fault filesystem the killed agent
    /// left and says each, so the feed's `host … lost` line grew by one path per node. It is one short line: how
    /// many, and under which directory; each path goes in the event log.
    #[test]
    fn a_lost_host_s_line_counts_the_filesystems_detached_and_names_their_directory() {
        let dir = "/var/tmp/squall/c1-0a1b2c3d";
        let detached: Vec<String> = (1..=5)
            .map(|n| format!("detached the dead fault filesystem on {dir}/node-{n}/data"))
            .collect();
        let why = format!(
            "host db-2: no agent runs there any more: squall: error: no agent runs in /var/tmp/squall \
             (/var/tmp/squall/agent.sock: Connection refused (os error 111)): it stopped its nodes after its \
             grace period, was killed, or never ran; {}",
            detached.join("; ")
        );
        let (short, details) = lost_words(&why);
        assert!(
            short.ends_with(&format!("; detached 5 dead fault filesystems under {dir}")),
            "{short}"
        );
        assert!(!short.contains("node-1/data"), "{short}");
        assert_eq!(details, detached);
        // One that could not be detached is counted apart, with what to do; its words are in the details.
        let stuck = format!(
            "cannot detach the dead fault filesystem on {dir}/node-2/data (EPERM; fusermount3: not found): \
             detach it with `umount -l {dir}/node-2/data` or `fusermount3 -u -z {dir}/node-2/data`"
        );
        let why = format!("no agent runs in /x: never ran; {}; {stuck}", detached[0]);
        let (short, details) = lost_words(&why);
        assert_eq!(
            short,
            format!(
                "no agent runs in /x: never ran; detached 1 dead fault filesystem on {dir}/node-1/data; \
                 1 could not be detached, on {dir}/node-2/data (`umount -l` it; the event log says why)"
            )
        );
        assert_eq!(details, [detached[0].clone(), stuck]);
        // Nothing detached: the reason as it was.
        assert_eq!(
            lost_words("host db-2: no agent runs there any more"),
            (
                "host db-2: no agent runs there any more".to_string(),
                vec![]
            )
        );
    }
}
