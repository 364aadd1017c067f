//! A `squall agent` driven by hand, line by line over its standard input and output (through ssh, or as a
//! local child), and the agent-level steps the tests of nodes on other machines share: launch squall's own
//! node through an agent, read its addresses, find the leader with `squall status`.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SQUALL: &str = env!("CARGO_BIN_EXE_squall");

/// An agent session, driven line by line.
pub struct Agent {
    /// The process carrying it (ssh, or the agent itself).
    pub process: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next: u64,
    /// Every line that was not the reply being waited for (the agent's events among them).
    pub events: Vec<String>,
}

impl Agent {
    /// `squall agent --dir DIR` run by `ssh` (a command that ends with the destination).
    pub fn over_ssh(ssh: Command, dir: &Path) -> Agent {
        Agent::over_ssh_with(ssh, dir, "")
    }

    /// [`Agent::over_ssh`] with `flags` added to the agent's command line (`--grace 1s`).
    pub fn over_ssh_with(mut ssh: Command, dir: &Path, flags: &str) -> Agent {
        std::fs::create_dir_all(dir).unwrap();
        ssh.arg(format!(
            "exec {SQUALL} agent --dir {} {flags}",
            dir.display()
        ));
        Agent::spawn(ssh)
    }

    /// An agent on this machine, without ssh.
    pub fn local(dir: &Path) -> Agent {
        let mut c = Command::new(SQUALL);
        c.arg("agent").arg("--dir").arg(dir);
        Agent::spawn(c)
    }

    /// An agent (or ssh to one) run by `c`, its standard input and output piped.
    pub fn spawn(mut c: Command) -> Agent {
        let mut process = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = process.stdin.take().unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Agent {
            process,
            stdin,
            lines,
            next: 1,
            events: Vec::new(),
        }
    }

    /// Sends `op` (a JSON object without its id) and waits up to 30 s for its reply, keeping other lines in
    /// [`Agent::events`].
    fn reply(&mut self, op: serde_json::Value) -> (serde_json::Value, String) {
        let id = self.next;
        self.next += 1;
        let mut req = op;
        req["id"] = id.into();
        writeln!(self.stdin, "{req}").unwrap_or_else(|e| panic!("cannot send {req}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no reply to {req} ({e}); events: {:?}", self.events));
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["reply"]["id"] == id {
                return (v["reply"].clone(), req.to_string());
            }
            self.events.push(line);
        }
    }

    /// Sends `op` and returns the reply's error; panics when it was done.
    pub fn refused(&mut self, op: serde_json::Value) -> String {
        let (reply, req) = self.reply(op);
        reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{req} was done: {reply}"))
            .to_string()
    }

    /// Sends `op` and returns the reply's `ok` value; panics on an error reply.
    pub fn call(&mut self, op: serde_json::Value) -> serde_json::Value {
        let (reply, req) = self.reply(op);
        if let Some(e) = reply["error"].as_str() {
            panic!("{req} refused: {e}");
        }
        reply["ok"].clone()
    }
}

/// The leader all reachable nodes at `apis` agree on (and not `not`), polled with `squall status --json`.
pub fn leader(apis: &[(u64, SocketAddr)], timeout: Duration, not: Option<u64>) -> u64 {
    let peers: Vec<String> = apis.iter().map(|(id, a)| format!("{id}={a}")).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let out = Command::new(SQUALL)
            .args([
                "status",
                "--json",
                "--timeout",
                "1s",
                "--peers",
                &peers.join(","),
            ])
            .output()
            .unwrap();
        let seen = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&seen) {
            let nodes = v
                .as_array()
                .cloned()
                .or_else(|| v["nodes"].as_array().cloned())
                .unwrap_or_default();
            let leaders: Vec<u64> = nodes
                .iter()
                .filter(|n| {
                    n["role"]
                        .as_str()
                        .is_some_and(|r| r.eq_ignore_ascii_case("leader"))
                })
                .filter_map(|n| n["id"].as_u64())
                .filter(|id| Some(*id) != not)
                .collect();
            if leaders.len() == 1 {
                return leaders[0];
            }
        }
        assert!(
            Instant::now() < deadline,
            "no single leader within {timeout:?}; last status: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node's peer and API addresses from its `addr.json`, polled until it is written.
pub fn read_addrs(node_dir: &Path, timeout: Duration) -> (SocketAddr, SocketAddr) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(node_dir.join("addr.json"))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let (Some(p), Some(a)) = (v["peer"].as_str(), v["api"].as_str())
        {
            return (p.parse().unwrap(), a.parse().unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            node_dir.join("addr.json").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Launches squall's node `id` through `agent`, with the squall kind's own command line, its ports bound to
/// `bind` (the kind's `{host}`); its pid.
pub fn launch_squall_node(
    agent: &mut Agent,
    id: u64,
    node_dir: &Path,
    peers: Vec<(u64, SocketAddr)>,
    bind: IpAddr,
) -> u32 {
    launch_squall_node_with(
        agent,
        id,
        node_dir,
        peers,
        bind,
        serde_json::json!([]),
        true,
    )
}

/// [`launch_squall_node`] with extra environment `env` (a JSON list of pairs); `wipeable`: the launch names
/// the data directory a wiping restart empties (not when it is a fault filesystem's mount point).
pub fn launch_squall_node_with(
    agent: &mut Agent,
    id: u64,
    node_dir: &Path,
    peers: Vec<(u64, SocketAddr)>,
    bind: IpAddr,
    env: serde_json::Value,
    wipeable: bool,
) -> u32 {
    let args = squall_node_args(id, node_dir, peers, bind);
    std::fs::create_dir_all(node_dir).unwrap();
    let data_dir = wipeable.then(|| node_dir.join("data").display().to_string());
    let r = agent.call(serde_json::json!({
        "op": "launch", "node": id, "program": null, "args": args, "env": env,
        "log": node_dir.join("node.log").display().to_string(),
        "data_dir": data_dir,
    }));
    r["pid"]["pid"].as_u64().unwrap() as u32
}

/// The squall kind's command line for node `id` in `node_dir` (data in `node_dir/data`), dialing `peers`, its
/// ports bound to `bind`.
pub fn squall_node_args(
    id: u64,
    node_dir: &Path,
    peers: Vec<(u64, SocketAddr)>,
    bind: IpAddr,
) -> Vec<String> {
    let kind = squall::kind::Kind::builtin("squall").unwrap();
    let facts = squall::kind::launch::NodeFacts {
        id,
        cluster_id: "agent-test".into(),
        node_dir: node_dir.to_path_buf(),
        data_dir: node_dir.join("data"),
        initial_state: squall::kind::launch::InitialState::New,
        seed: id,
        election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
        heartbeat: Duration::from_millis(50),
        snapshot_every: 500,
        peers,
        ports: Default::default(),
        join: false,
        options: vec![],
        host: bind,
    };
    let mut args: Vec<String> = kind
        .leading_args()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
    args.extend(
        kind.command_line(&facts)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap()),
    );
    args
}
