//! The agent's wire protocol: one JSON object per line, the controller's [`Request`]s on the agent's standard
//! input, its [`Message`]s (replies and events) on its standard output. Standard error carries the agent's own
//! diagnostics, which the controller keeps.
//!
//! Why line-delimited JSON rather than tarpc over the stdio stream: the channel is an SSH session, a plain byte
//! pipe, and a person can drive an agent by hand (`ssh host /var/tmp/squall/squall agent`, then type
//! `{"id":1,"op":"hello"}`); a mismatch between builds is caught by `hello` (and the binary copy before it),
//! not by a bincode decode error; the messages are few and small (a launch, a fault, an exit), so JSON's cost
//! does not matter, and nothing new is linked in (serde_json is already here).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use squall_chaos::{FaultSpec, LinkStats, ProcState};

/// One request: an id the reply repeats, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the controller; the reply carries it back.
    pub id: u64,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// What the controller asks of an agent. Node ids are the cluster's; the agent names their processes
/// `node-N` as the local supervisor does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Who are you: answered with [`Answer::Hello`].
    Hello,
    /// Sets up the proxy network for links whose sender is on this host: the kind's framing and classifier
    /// by the kind's record (a built-in kind by name, a kind file by its path on the host), seeded with `seed`.
    /// Must come before any [`Op::Link`].
    Network {
        /// The node kind, as `cluster.json` records it.
        kind: crate::kind::KindRecord,
        /// The proxies' seed.
        seed: u64,
        /// The address the proxies listen on (the host's `address`); `None`: 127.0.0.1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bind: Option<std::net::IpAddr>,
    },
    /// Starts node `node`. Answered with [`Answer::Pid`].
    Launch {
        /// The node id.
        node: u64,
        /// The program on the host; `None`: the agent's own executable (squall, for the `{squall}` kinds).
        program: Option<String>,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables.
        #[serde(default)]
        env: Vec<(String, String)>,
        /// Its log file on the host (standard output and error, appended).
        log: String,
        /// The data directory a wiping restart deletes.
        data_dir: Option<String>,
    },
    /// Replaces the arguments node `node` restarts with.
    SetArgs {
        /// The node id.
        node: u64,
        /// The new arguments.
        args: Vec<String>,
    },
    /// SIGKILL to the node's process group.
    Kill {
        /// The node id.
        node: u64,
    },
    /// SIGTERM to the node's process group.
    Terminate {
        /// The node id.
        node: u64,
    },
    /// SIGSTOP.
    Pause {
        /// The node id.
        node: u64,
    },
    /// SIGCONT.
    Resume {
        /// The node id.
        node: u64,
    },
    /// Kills the node if alive and starts it again, with its data directory emptied when `wipe`. Answered
    /// with [`Answer::Pid`].
    Restart {
        /// The node id.
        node: u64,
        /// Empty the data directory first.
        wipe: bool,
    },
    /// Starts (or finds) the proxy of link `from -> to` (`from` runs on this host). Answered with
    /// [`Answer::Link`]: the address `from` dials to reach `to`.
    Link {
        /// The sender.
        from: u64,
        /// The receiver.
        to: u64,
    },
    /// Where node `to` really listens (its peer port, on whatever host), for the proxies towards it.
    Upstream {
        /// The receiver.
        to: u64,
        /// Its address.
        addr: SocketAddr,
    },
    /// Sets a fault on link `from -> to`, replacing one of the same kind.
    Fault {
        /// The sender.
        from: u64,
        /// The receiver.
        to: u64,
        /// The fault.
        spec: FaultSpec,
    },
    /// Removes every fault of link `from -> to` (frames in flight are kept).
    Heal {
        /// The sender.
        from: u64,
        /// The receiver.
        to: u64,
    },
    /// Removes every fault of every link of this host.
    HealAll,
    /// Every node's process state and every link's counters. Answered with [`Answer::Status`].
    Status,
    /// The last `lines` lines of node `node`'s log. Answered with [`Answer::Log`].
    Log {
        /// The node id.
        node: u64,
        /// How many lines, at most.
        lines: usize,
    },
    /// Stops every node (SIGTERM, then SIGKILL after a grace) and ends the agent after the reply.
    Shutdown,
}

/// A line from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Message {
    /// The answer to request `id`: `ok` when it was done, `error` (why, for a person) when it was not.
    Reply {
        /// The request's id.
        id: u64,
        /// What was done.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Answer>,
        /// Why nothing (or not all) was done.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Something that happened on the host without being asked.
    Event(AgentEvent),
}

/// What a request did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Done, nothing to report.
    Done,
    /// The agent: its version and build, its directory and its pid.
    Hello {
        /// `squall VERSION`.
        version: String,
        /// The build identity ([`crate::remote::build_id`]).
        build: String,
        /// The agent's directory on the host.
        dir: String,
        /// The agent's pid on the host.
        pid: u32,
    },
    /// A process started: its pid.
    Pid {
        /// The pid on the host.
        pid: u32,
    },
    /// A link's proxy address.
    Link {
        /// Where the sender dials.
        addr: SocketAddr,
    },
    /// Process states and link counters.
    Status {
        /// Node id and state, for every node this agent started.
        nodes: Vec<(u64, ProcState)>,
        /// Every link of this host's proxies.
        links: Vec<LinkStats>,
    },
    /// A log's tail.
    Log {
        /// The text.
        text: String,
    },
}

/// What an agent reports on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentEvent {
    /// A node's process ended.
    Exit {
        /// The node id.
        node: u64,
        /// The pid that ended.
        pid: u32,
        /// Its exit code, if it exited on its own.
        code: Option<i32>,
        /// The signal that ended it.
        signal: Option<String>,
        /// Whether the agent had sent the signal (a fault or a shutdown).
        expected: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_messages_are_one_plain_json_line_each_and_round_trip() {
        let r = Request {
            id: 7,
            op: Op::Restart {
                node: 2,
                wipe: true,
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"id":7,"op":"restart","node":2,"wipe":true}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let hello: Request = serde_json::from_str(r#"{"id":1,"op":"hello"}"#).unwrap();
        assert_eq!(hello.op, Op::Hello);
        let m = Message::Reply {
            id: 7,
            ok: Some(Answer::Pid { pid: 42 }),
            error: None,
        };
        let line = serde_json::to_string(&m).unwrap();
        assert_eq!(line, r#"{"reply":{"id":7,"ok":{"pid":{"pid":42}}}}"#);
        assert_eq!(serde_json::from_str::<Message>(&line).unwrap(), m);
        let e = Message::Event(AgentEvent::Exit {
            node: 1,
            pid: 9,
            code: None,
            signal: Some("SIGKILL".into()),
            expected: true,
        });
        let line = serde_json::to_string(&e).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Message>(&line).unwrap(), e);
    }
}
