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
use squall_chaos::{FaultSpec, HeldFrame, LinkId, LinkStats, MessageEvent, ProcState, Stepped};

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
    // --- remote1: faults over many links, held frames, the message trace, node files ---
    /// Installs `spec` on every link of `links` (all of them with their sender on this host) under the
    /// controller's fault id `fault`, beside the faults already there; [`Op::RemoveFault`] with the same id
    /// removes it.
    AddFault {
        /// The controller's fault id (not `id`: that is the request's).
        fault: u64,
        /// The links, each `from` on this host.
        links: Vec<LinkId>,
        /// The fault.
        spec: FaultSpec,
    },
    /// Installs fault `fault` (added before by [`Op::AddFault`], or new here) on more links.
    ExtendFault {
        /// The controller's fault id.
        fault: u64,
        /// The links to add it to.
        links: Vec<LinkId>,
        /// The fault.
        spec: FaultSpec,
    },
    /// Removes fault `fault` from every link of this host it is on (frames it held or delayed are delivered).
    RemoveFault {
        /// The controller's fault id.
        fault: u64,
    },
    /// Every link's counters and the frames held now, in one answer: [`Answer::Links`].
    Links,
    /// Delivers (`deliver`) or discards the `n` oldest frames held on `links`. Answered with
    /// [`Answer::Stepped`].
    Step {
        /// The links to take from.
        links: Vec<LinkId>,
        /// How many frames, at most.
        n: usize,
        /// Deliver them (`step`) rather than discard them (`drop-held`).
        deliver: bool,
    },
    /// Delivers every frame held on `links` (the holds stay). Answered with [`Answer::Stepped`].
    Release {
        /// The links.
        links: Vec<LinkId>,
    },
    /// Discards the held frames with these sequence numbers (this host's, as [`Answer::Links`] gave them).
    /// Answered with [`Answer::Stepped`].
    DropFrames {
        /// The frames' sequence numbers.
        seqs: Vec<u64>,
    },
    /// Switches the proxies' message trace on and returns what it recorded after `cursor`. Answered with
    /// [`Answer::Trace`].
    Trace {
        /// The `next` of the previous answer; 0 at first.
        cursor: u64,
    },
    /// A file under the agent's directory (a node's address file): [`Answer::File`], `None` when it is not
    /// there. A path outside the agent's directory is refused.
    ReadFile {
        /// Its absolute path on the host.
        path: String,
    },
    /// Removes a file under the agent's directory if it is there (an earlier session's address file).
    RemoveFile {
        /// Its absolute path on the host.
        path: String,
    },
    // What lives on the host (issue 24): the controller's heartbeat, what the host can serve, disk and clock
    // faults.
    /// The controller is here; answered with [`Answer::Done`] at once. Once a ping has come, an agent that hears
    /// none for its grace period (`squall agent --grace`, 10 s) takes its controller for gone: it stops its
    /// nodes, unmounts their fault filesystems and exits. (An agent never pinged, driven by hand, is not held to
    /// it.)
    Ping,
    /// What this host can serve. Answered with [`Answer::Can`].
    Capabilities,
    /// Node `node`'s fault filesystem.
    Disk {
        /// The node id.
        node: u64,
        /// What to do.
        action: DiskOp,
    },
    /// Cuts the power of these nodes of this host at once (their disks stop answering, they are SIGKILLed and
    /// reaped, what was not durable is thrown away); they stay down. Answered with [`Answer::PowerCut`].
    PowerCut {
        /// The node ids.
        nodes: Vec<u64>,
        /// How the cut tears unsynced writes; `None`: it drops them all.
        #[serde(default)]
        torn: Option<crate::command::disk::TornMode>,
        /// The seed of the torn cuts' random choices (the k-th disk's is SplitMix64 of the pair).
        #[serde(default)]
        seed: u64,
    },
    /// Node `node`'s faked clock.
    Clock {
        /// The node id.
        node: u64,
        /// What to do.
        action: ClockOp,
    },
    // A per-destination kind on hosts (etcd), and ports picked where the node runs.
    /// Starts (or finds) the proxy in front of node `to` (which runs on this host) that every sender dials: a
    /// per-destination kind's ([`squall_chaos::Network::add_destination`]). Answered with [`Answer::Link`].
    Destination {
        /// The receiver.
        to: u64,
        /// The address the proxy must listen on, its port included: where it listened in an earlier session,
        /// which the members stored (a resumed cluster directory's `advertised.json`); `None` (and absent in
        /// an older controller's frame): the host's address, a port the OS chooses.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<SocketAddr>,
    },
    /// Says that member id `member` (as the kind's framing names senders, etcd's `X-Server-From`) is node
    /// `node`, for the proxies in front of this host's nodes.
    Sender {
        /// The member id.
        member: u64,
        /// The node id.
        node: u64,
    },
    /// Picks a free port on this host for each of `names` (all different), on `bind` (the host's `address`;
    /// `None`: 127.0.0.1): the ports a kind's `{port.NAME}` names, picked where the node binds them. Answered
    /// with [`Answer::Ports`].
    Ports {
        /// The kind's port names.
        names: Vec<String>,
        /// The address the node binds them on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bind: Option<std::net::IpAddr>,
    },
    /// Finds the node program on this host: a path is checked as it is (an executable file), a bare name is
    /// looked up on the agent's `PATH`. Answered with [`Answer::Program`]; an error says what was not found.
    Program {
        /// The program as the kind (or `--node-bin`) names it.
        program: String,
    },
    /// Whether each of `paths` is an executable file on this host (the programs its nodes will run, checked
    /// before anything starts). Answered with [`Answer::Notes`]: one line per path that is not, empty when
    /// all are.
    Programs {
        /// Absolute paths on the host.
        paths: Vec<String>,
    },
}

/// What to do with a node's fault filesystem ([`Op::Disk`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskOp {
    /// Mounts the node's fault filesystem: `backing` (where the data really is) served at `data_dir` (the
    /// node's data directory), before its launch; a launch then gives no `data_dir` (a wipe goes through the
    /// disk). Answered with [`Answer::Notes`]: what it found left by an agent that died while mounted.
    Mount {
        /// The backing directory on the host.
        backing: String,
        /// The mount point: the node's data directory.
        data_dir: String,
    },
    /// Sets a disk fault (or heals them all). Answered with [`Answer::Disk`].
    Fault {
        /// The fault, as the `disk` command has it.
        action: crate::command::disk::DiskAction,
        /// The seed of a flip's random choices.
        #[serde(default)]
        seed: u64,
        /// Files (relative to the data directory) a random flip never picks: the kind's `[disk] not_data`.
        #[serde(default)]
        not_data: Vec<String>,
        /// Words after the node's id in the answer, as the local command puts them (the controller's view of
        /// the node: `" (leader, term 4)"`); empty by default.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        what: String,
    },
    /// Disk loss: SIGKILLs the node (it must be reaped within 10 s) and deletes its data. Answered with
    /// [`Answer::Done`].
    Wipe,
}

/// What to do with a node's faked clock ([`Op::Clock`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockOp {
    /// Readies the node's faked clock before its launch: installs squall's time shim in the agent's directory
    /// and a true clock's control file `node_dir/clock`. Answered with [`Answer::Env`], the environment the
    /// node must be launched with.
    Prepare {
        /// The node's directory on the host.
        node_dir: String,
    },
    /// Sets a clock fault (or heals it). Answered with [`Answer::Clock`].
    Set(crate::command::clock::ClockAction),
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
        /// Which loopback the host has ([`crate::remote::loopback_id`]); empty when unknown.
        #[serde(default)]
        loopback: String,
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
    // --- remote1 ---
    /// Link counters and held frames ([`Op::Links`]).
    Links {
        /// Every link of this host's proxies.
        links: Vec<LinkStats>,
        /// The frames held now, oldest first; their `seq` numbers are this host's.
        held: Vec<HeldFrame>,
    },
    /// Frames stepped, dropped or released, oldest first.
    Stepped {
        /// Each frame and whether it was delivered.
        frames: Vec<Stepped>,
    },
    /// The message trace after a cursor ([`Op::Trace`]).
    Trace {
        /// The events, oldest first; their times count from the host trace's own origin.
        events: Vec<MessageEvent>,
        /// Events overwritten before this read.
        lost: u64,
        /// The cursor for the next read.
        next: u64,
        /// The trace's clock now (microseconds since its origin), to move its times to the controller's.
        now_us: u64,
    },
    /// A file's text ([`Op::ReadFile`]).
    File {
        /// The text, `None` when the file is not there.
        text: Option<String>,
    },
    // What lives on the host (issue 24).
    /// What this host can serve: `None` where it can, else why not (for a person).
    Can {
        /// Disk faults (FUSE: `/dev/fuse`, and root or `fusermount3`).
        disk: Option<String>,
        /// Clock faults (squall's time shim, written into the agent's directory).
        clock: Option<String>,
    },
    /// Things for the feed (what a mount cleaned up).
    Notes {
        /// One line each.
        notes: Vec<String>,
    },
    /// What a disk fault did.
    Disk {
        /// In words, as the local `disk` command says it (without the node's role).
        said: String,
        /// The node's disk faults in force afterwards, in words, for the dashboard.
        faults: Vec<String>,
        /// Where a flip flipped: the file (relative to the data directory), the byte offset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flipped: Option<(String, u64)>,
    },
    /// What a power cut did.
    PowerCut {
        /// Rolled back: "node N: report".
        done: Vec<String>,
        /// What was not done and why.
        problems: Vec<String>,
    },
    /// The environment a node launches with.
    Env {
        /// Name and value.
        env: Vec<(String, String)>,
    },
    /// What a clock fault did.
    Clock {
        /// In words, as the local `clock` command says it.
        said: String,
        /// The node's clock afterwards in words; `None` when true.
        now: Option<String>,
    },
    /// Free ports on the host ([`Op::Ports`]).
    Ports {
        /// Port name → port number.
        ports: std::collections::BTreeMap<String, u16>,
    },
    /// The node program found on the host ([`Op::Program`]).
    Program {
        /// Its absolute path there.
        path: String,
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

    #[test]
    fn host_fault_requests_and_answers_round_trip() {
        use crate::command::clock::ClockAction;
        use crate::command::disk::{DiskAction, TornMode};
        let ping: Request = serde_json::from_str(r#"{"id":3,"op":"ping"}"#).unwrap();
        assert_eq!(ping.op, Op::Ping);
        let ops = [
            Op::Capabilities,
            Op::Disk {
                node: 2,
                action: DiskOp::Mount {
                    backing: "/h/node-2/disk".into(),
                    data_dir: "/h/node-2/data".into(),
                },
            },
            Op::Disk {
                node: 2,
                action: DiskOp::Fault {
                    action: DiskAction::Slow {
                        delay: std::time::Duration::from_millis(50),
                        syncs_only: true,
                    },
                    seed: 9,
                    not_data: vec!["LOCK".into()],
                    what: " (leader, term 4)".into(),
                },
            },
            Op::Disk {
                node: 2,
                action: DiskOp::Fault {
                    action: DiskAction::Flip {
                        file: Some("wal.log".into()),
                        at: None,
                    },
                    seed: 1,
                    not_data: vec![],
                    what: String::new(),
                },
            },
            Op::Disk {
                node: 1,
                action: DiskOp::Wipe,
            },
            Op::PowerCut {
                nodes: vec![1, 2],
                torn: Some(TornMode::Writes),
                seed: 7,
            },
            Op::Clock {
                node: 3,
                action: ClockOp::Prepare {
                    node_dir: "/h/node-3".into(),
                },
            },
            Op::Clock {
                node: 3,
                action: ClockOp::Set(ClockAction::Rate(2.0)),
            },
            Op::Clock {
                node: 3,
                action: ClockOp::Set(ClockAction::Heal),
            },
        ];
        for op in ops {
            let r = Request { id: 5, op };
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r, "{line}");
        }
        let answers = [
            Answer::Can {
                disk: Some("no /dev/fuse".into()),
                clock: None,
            },
            Answer::Notes {
                notes: vec!["node 1: detached".into()],
            },
            Answer::Disk {
                said: "stall node 1's disk".into(),
                faults: vec!["stall".into()],
                flipped: Some(("wal.log".into(), 17)),
            },
            Answer::PowerCut {
                done: vec!["node 1: 1 file rolled back".into()],
                problems: vec![],
            },
            Answer::Env {
                env: vec![("LD_PRELOAD".into(), "/h/time-shim.so".into())],
            },
            Answer::Clock {
                said: "clock of node 3: x2".into(),
                now: Some("×2".into()),
            },
        ];
        for a in answers {
            let m = Message::Reply {
                id: 5,
                ok: Some(a),
                error: None,
            };
            let line = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Message>(&line).unwrap(), m, "{line}");
        }
    }

    fn round_trips_op(op: Op, expect: &str) {
        let r = Request { id: 3, op };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, expect);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
    }

    fn round_trips_answer(a: Answer) {
        let m = Message::Reply {
            id: 3,
            ok: Some(a),
            error: None,
        };
        let line = serde_json::to_string(&m).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(serde_json::from_str::<Message>(&line).unwrap(), m);
    }

    #[test]
    fn the_fault_ops_round_trip() {
        let spec = FaultSpec::permanent(squall_chaos::Fault::Blackhole);
        let spec_json = serde_json::to_string(&spec).unwrap();
        let links = r#"[{"from":1,"to":2}]"#;
        round_trips_op(
            Op::AddFault {
                fault: 4,
                links: vec![LinkId::new(1, 2)],
                spec: spec.clone(),
            },
            &format!(r#"{{"id":3,"op":"add-fault","fault":4,"links":{links},"spec":{spec_json}}}"#),
        );
        round_trips_op(
            Op::ExtendFault {
                fault: 4,
                links: vec![LinkId::new(1, 2)],
                spec,
            },
            &format!(
                r#"{{"id":3,"op":"extend-fault","fault":4,"links":{links},"spec":{spec_json}}}"#
            ),
        );
        round_trips_op(
            Op::RemoveFault { fault: 4 },
            r#"{"id":3,"op":"remove-fault","fault":4}"#,
        );
    }

    #[test]
    fn the_held_frame_ops_and_their_answers_round_trip() {
        let links = r#"[{"from":2,"to":3}]"#;
        round_trips_op(Op::Links, r#"{"id":3,"op":"links"}"#);
        round_trips_op(
            Op::Step {
                links: vec![LinkId::new(2, 3)],
                n: 2,
                deliver: true,
            },
            &format!(r#"{{"id":3,"op":"step","links":{links},"n":2,"deliver":true}}"#),
        );
        round_trips_op(
            Op::Release {
                links: vec![LinkId::new(2, 3)],
            },
            &format!(r#"{{"id":3,"op":"release","links":{links}}}"#),
        );
        round_trips_op(
            Op::DropFrames { seqs: vec![5, 9] },
            r#"{"id":3,"op":"drop-frames","seqs":[5,9]}"#,
        );
        let frame = HeldFrame {
            seq: 5,
            link: LinkId::new(2, 3),
            label: Some("vote".into()),
            detail: "vote n2 term 3".into(),
            bytes: 40,
            held_for: std::time::Duration::from_millis(1500),
        };
        round_trips_answer(Answer::Links {
            links: Vec::new(),
            held: vec![frame.clone()],
        });
        round_trips_answer(Answer::Stepped {
            frames: vec![Stepped {
                frame,
                delivered: true,
            }],
        });
    }

    #[test]
    fn the_destination_sender_ports_and_program_ops_and_their_answers_round_trip() {
        round_trips_op(
            Op::Destination { to: 2, at: None },
            r#"{"id":3,"op":"destination","to":2}"#,
        );
        round_trips_op(
            Op::Destination {
                to: 2,
                at: Some("10.0.0.2:40123".parse().unwrap()),
            },
            r#"{"id":3,"op":"destination","to":2,"at":"10.0.0.2:40123"}"#,
        );
        round_trips_op(
            Op::Sender {
                member: 0xabc,
                node: 2,
            },
            r#"{"id":3,"op":"sender","member":2748,"node":2}"#,
        );
        round_trips_op(
            Op::Ports {
                names: vec!["peer".into(), "client".into()],
                bind: Some(std::net::IpAddr::from([10, 0, 0, 2])),
            },
            r#"{"id":3,"op":"ports","names":["peer","client"],"bind":"10.0.0.2"}"#,
        );
        round_trips_op(
            Op::Program {
                program: "etcd".into(),
            },
            r#"{"id":3,"op":"program","program":"etcd"}"#,
        );
        round_trips_answer(Answer::Ports {
            ports: [("client".to_string(), 2379), ("peer".to_string(), 2380)].into(),
        });
        round_trips_answer(Answer::Program {
            path: "/usr/bin/etcd".into(),
        });
    }

    #[test]
    fn the_trace_and_file_ops_and_their_answers_round_trip() {
        round_trips_op(
            Op::Trace { cursor: 12 },
            r#"{"id":3,"op":"trace","cursor":12}"#,
        );
        round_trips_op(
            Op::ReadFile {
                path: "/var/tmp/squall/c/node-1/addr.json".into(),
            },
            r#"{"id":3,"op":"read-file","path":"/var/tmp/squall/c/node-1/addr.json"}"#,
        );
        round_trips_op(
            Op::RemoveFile {
                path: "/var/tmp/squall/c/node-1/addr.json".into(),
            },
            r#"{"id":3,"op":"remove-file","path":"/var/tmp/squall/c/node-1/addr.json"}"#,
        );
        round_trips_answer(Answer::Trace {
            events: vec![MessageEvent {
                id: 1,
                link: LinkId::new(1, 2),
                kind: Some("append".into()),
                sent_us: 10,
                fate: squall_chaos::Fate::Delivered { at_us: 12 },
            }],
            lost: 0,
            next: 1,
            now_us: 20,
        });
        round_trips_answer(Answer::File {
            text: Some("{\"peer\":\"127.0.0.1:1\"}".into()),
        });
        round_trips_answer(Answer::File { text: None });
    }
}
