//! `squall agent`: what runs on a host over SSH and owns that host's part of a cluster — its node processes
//! (through the same [`Supervisor`] a local cluster uses: launch, signals, restart, wipe) and the proxies of
//! every directed link whose sender is on the host (through the same [`Network`], built for the kind the same
//! way). It speaks [`crate::remote::protocol`] on standard input and output and listens on nothing else.
//!
//! No orphans: when standard input ends (the controller or its SSH connection is gone) the agent stops its
//! nodes and exits; if the agent itself is killed, its nodes follow it through the supervisor's lifeline.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use squall_chaos::{LinkId, Network, ProcessSpec, Supervisor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::cli::AgentArgs;
use crate::remote::protocol::{AgentEvent, Answer, Message, Op, Request};

/// How long nodes get to end on SIGTERM when the agent stops, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// `squall agent`.
pub fn run(args: AgentArgs) -> ExitCode {
    if args.build_id {
        return match crate::remote::build_id() {
            Ok(id) => {
                println!("{id}");
                ExitCode::SUCCESS
            }
            Err(e) => crate::setup::fail(1, e),
        };
    }
    // Diagnostics go to standard error, which ssh carries back to the controller.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let rt = crate::setup::runtime();
    match rt.block_on(serve(args.dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::setup::fail(1, format!("agent: {e:#}")),
    }
}

/// What the request handlers share.
struct Agent {
    dir: PathBuf,
    sup: Supervisor,
    net: Mutex<Option<Network>>,
    out: mpsc::UnboundedSender<Message>,
    /// The controller's fault ids and the ids this host's network gave them.
    faults: Mutex<std::collections::HashMap<u64, u64>>,
}

/// Serves requests from standard input until it ends or a `shutdown` comes, then stops every node.
async fn serve(dir: PathBuf) -> anyhow::Result<()> {
    let sup = Supervisor::new()?;
    let (out, mut rx) = mpsc::unbounded_channel::<Message>();
    let agent = Arc::new(Agent {
        dir,
        sup: sup.clone(),
        net: Mutex::new(None),
        out,
        faults: Mutex::new(std::collections::HashMap::new()),
    });
    // One writer: every line whole, in the order sent. A closed output (the controller gone) ends the agent.
    let (gone_tx, mut gone) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(m) = rx.recv().await {
            let mut line = serde_json::to_vec(&m).expect("messages serialise");
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                let _ = gone_tx.send(true);
                return;
            }
        }
    });
    tokio::spawn(forward_exits(agent.clone()));
    let (work, mut queue) = mpsc::unbounded_channel::<Request>();
    let mut worker = {
        let a = agent.clone();
        tokio::spawn(async move {
            while let Some(req) = queue.recv().await {
                a.answer(req).await;
            }
        })
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            _ = gone.changed() => break,
        };
        let line = match line {
            Ok(Some(l)) => l,
            Ok(None) | Err(_) => break,
        };
        if line.trim().is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                // No id to answer to when the line is not a request: id 0 is never a controller's.
                let _ = agent.out.send(Message::Reply {
                    id: 0,
                    ok: None,
                    error: Some(format!("not a request ({e}): {}", preview(&line))),
                });
                continue;
            }
        };
        if req.op == Op::Shutdown {
            drop(work);
            let _ = (&mut worker).await;
            agent.sup.shutdown(STOP_GRACE).await;
            let _ = agent.out.send(Message::Reply {
                id: req.id,
                ok: Some(Answer::Done),
                error: None,
            });
            break;
        }
        // Requests that change something are done one after another, in the order they came (a `launch` then
        // a `kill` never race); the read-only ones answer at once, even while a restart waits for its node.
        let a = agent.clone();
        if matches!(
            req.op,
            Op::Hello | Op::Status | Op::Log { .. } | Op::Trace { .. } | Op::ReadFile { .. }
        ) {
            tokio::spawn(async move { a.answer(req).await });
        } else if work.send(req).is_err() {
            break;
        }
    }
    // Nothing more is started once the controller is gone; what did start is stopped.
    worker.abort();
    sup.shutdown(STOP_GRACE).await;
    drop(agent);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    Ok(())
}

fn preview(line: &str) -> String {
    line.chars().take(80).collect()
}

/// The supervisor's name for node `id`'s process.
fn name(id: u64) -> String {
    format!("node-{id}")
}

/// Forwards every node exit as an event.
async fn forward_exits(agent: Arc<Agent>) {
    let mut exits = agent.sup.exits();
    loop {
        match exits.recv().await {
            Ok(e) => {
                let Some(node) = e.name.strip_prefix("node-").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let m = Message::Event(AgentEvent::Exit {
                    node,
                    pid: e.pid,
                    code: e.code,
                    signal: e.signal,
                    expected: e.expected,
                });
                if agent.out.send(m).is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

impl Agent {
    /// Does `req` and sends its reply.
    async fn answer(&self, req: Request) {
        let (ok, error) = match self.handle(req.op).await {
            Ok(answer) => (Some(answer), None),
            Err(e) => (None, Some(e)),
        };
        let _ = self.out.send(Message::Reply {
            id: req.id,
            ok,
            error,
        });
    }

    fn net(&self) -> Result<Network, String> {
        self.net.lock().unwrap().clone().ok_or_else(|| {
            "no network yet: send `network` (the kind and the seed) first".to_string()
        })
    }

    async fn handle(&self, op: Op) -> Result<Answer, String> {
        let done = Ok(Answer::Done);
        match op {
            Op::Hello => Ok(Answer::Hello {
                version: format!("squall {}", env!("CARGO_PKG_VERSION")),
                build: crate::remote::build_id()?,
                dir: self.dir.display().to_string(),
                pid: std::process::id(),
            }),
            Op::Network { kind, seed, bind } => {
                let (kind, _) = crate::kind::Kind::from_record(&kind)
                    .map_err(|e| format!("this host cannot load node kind `{}`: {e}", kind.name))?;
                let mut net = self.net.lock().unwrap();
                let n = net.get_or_insert_with(|| crate::cluster::network_for(&kind, seed));
                if let Some(ip) = bind {
                    // Checked here, so a wrong address is refused now rather than at the first link.
                    std::net::TcpListener::bind((ip, 0)).map_err(|e| {
                        format!("this host cannot listen on {ip} (the hosts file's `address`): {e}")
                    })?;
                    n.bind_on(ip);
                }
                done
            }
            Op::Launch {
                node,
                program,
                args,
                env,
                log,
                data_dir,
            } => {
                let program = match program {
                    Some(p) => PathBuf::from(p),
                    None => std::env::current_exe()
                        .map_err(|e| format!("cannot find the agent's own executable: {e}"))?,
                };
                let spec = ProcessSpec {
                    name: name(node),
                    program,
                    args: args.into_iter().map(OsString::from).collect(),
                    env: env
                        .into_iter()
                        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                        .collect(),
                    log_path: PathBuf::from(log),
                    data_dir: data_dir.map(PathBuf::from),
                };
                let pid = self
                    .sup
                    .spawn(spec)
                    .await
                    .map_err(|e| format!("starting node {node}: {e}"))?;
                Ok(Answer::Pid { pid })
            }
            Op::SetArgs { node, args } => {
                let mut spec = self
                    .sup
                    .spec(&name(node))
                    .ok_or_else(|| format!("node {node} was never launched here"))?;
                spec.args = args.into_iter().map(OsString::from).collect();
                self.sup.set_spec(spec).map_err(|e| e.to_string())?;
                done
            }
            Op::Kill { node } => self
                .sup
                .kill(&name(node))
                .map(|()| Answer::Done)
                .map_err(|e| e.to_string()),
            Op::Terminate { node } => self
                .sup
                .terminate(&name(node))
                .map(|()| Answer::Done)
                .map_err(|e| e.to_string()),
            Op::Pause { node } => self
                .sup
                .pause(&name(node))
                .map(|()| Answer::Done)
                .map_err(|e| e.to_string()),
            Op::Resume { node } => self
                .sup
                .resume(&name(node))
                .map(|()| Answer::Done)
                .map_err(|e| e.to_string()),
            Op::Restart { node, wipe } => self
                .sup
                .restart(&name(node), wipe)
                .await
                .map(|pid| Answer::Pid { pid })
                .map_err(|e| format!("restarting node {node}: {e}")),
            Op::Link { from, to } => {
                let addr = self
                    .net()?
                    .add_link(from, to)
                    .await
                    .map_err(|e| format!("starting the proxy for link {from}->{to}: {e}"))?;
                Ok(Answer::Link { addr })
            }
            Op::Upstream { to, addr } => {
                self.net()?.set_upstream(to, addr);
                done
            }
            Op::Fault { from, to, spec } => {
                spec.fault
                    .validate()
                    .map_err(|e| format!("fault on {from}->{to}: {e}"))?;
                self.net()?.set_fault(LinkId { from, to }, spec);
                done
            }
            Op::Heal { from, to } => {
                self.net()?.clear_link(LinkId { from, to });
                done
            }
            Op::HealAll => {
                self.net()?.heal_all();
                done
            }
            Op::Status => {
                let nodes: BTreeMap<u64, squall_chaos::ProcState> = self
                    .sup
                    .names()
                    .into_iter()
                    .filter_map(|n| {
                        let id = n.strip_prefix("node-")?.parse().ok()?;
                        Some((id, self.sup.state(&n)?))
                    })
                    .collect();
                let links = self
                    .net
                    .lock()
                    .unwrap()
                    .as_ref()
                    .map(Network::stats)
                    .unwrap_or_default();
                Ok(Answer::Status {
                    nodes: nodes.into_iter().collect(),
                    links,
                })
            }
            Op::Log { node, lines } => {
                let spec = self
                    .sup
                    .spec(&name(node))
                    .ok_or_else(|| format!("node {node} was never launched here"))?;
                let text = std::fs::read_to_string(&spec.log_path).map_err(|e| {
                    format!(
                        "cannot read node {node}'s log {}: {e}",
                        spec.log_path.display()
                    )
                })?;
                let all: Vec<&str> = text.lines().collect();
                let tail = all[all.len().saturating_sub(lines)..].join("\n");
                Ok(Answer::Log { text: tail })
            }
            // The loop answers it itself, after the nodes are stopped.
            Op::Shutdown => done,
            Op::AddFault { fault, links, spec } => {
                spec.fault
                    .validate()
                    .map_err(|e| format!("fault #{fault}: {e}"))?;
                let id = self.net()?.add_fault(links, spec);
                if let Some(old) = self.faults.lock().unwrap().insert(fault, id) {
                    // The controller never reuses an id; if it did, the older fault must not linger unnamed.
                    self.net()?.remove_fault_id(old);
                }
                done
            }
            Op::ExtendFault { fault, links, spec } => {
                let net = self.net()?;
                let known = self.faults.lock().unwrap().get(&fault).copied();
                match known {
                    Some(id) => net.extend_fault(id, links, spec),
                    None => {
                        let id = net.add_fault(links, spec);
                        self.faults.lock().unwrap().insert(fault, id);
                    }
                }
                done
            }
            Op::RemoveFault { fault } => {
                if let Some(id) = self.faults.lock().unwrap().remove(&fault) {
                    self.net()?.remove_fault_id(id);
                }
                done
            }
            Op::Links => {
                let net = self.net()?;
                Ok(Answer::Links {
                    links: net.stats(),
                    held: net.held(),
                })
            }
            Op::Step { links, n, deliver } => {
                let net = self.net()?;
                let pick = |l| links.contains(&l);
                let frames = if deliver {
                    net.step(pick, n)
                } else {
                    net.drop_held(pick, n)
                };
                Ok(Answer::Stepped { frames })
            }
            Op::Release { links } => Ok(Answer::Stepped {
                frames: self.net()?.release(|l| links.contains(&l)),
            }),
            Op::DropFrames { seqs } => Ok(Answer::Stepped {
                frames: self.net()?.drop_held_frames(|s| seqs.contains(&s)),
            }),
            Op::Trace { cursor } => {
                let net = self.net()?;
                let trace = net.trace();
                trace.set_on(true);
                let read = trace.since(cursor);
                Ok(Answer::Trace {
                    events: read.events,
                    lost: read.lost,
                    next: read.next,
                    now_us: trace.now_us(),
                })
            }
            Op::ReadFile { path } => {
                let path = self.inside(&path)?;
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Answer::File { text: Some(text) }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(Answer::File { text: None })
                    }
                    Err(e) => Err(format!("cannot read {}: {e}", path.display())),
                }
            }
            Op::RemoveFile { path } => {
                let path = self.inside(&path)?;
                match std::fs::remove_file(&path) {
                    Ok(()) => done,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => done,
                    Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
                }
            }
        }
    }

    /// `path` when it is an absolute path inside the agent's directory with no `..` in it: the controller
    /// reads and removes node files through the agent, nothing else on the host.
    fn inside(&self, path: &str) -> Result<PathBuf, String> {
        let p = PathBuf::from(path);
        let escapes = p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        if !p.is_absolute() || escapes || !p.starts_with(&self.dir) {
            return Err(format!(
                "{path} is not a path inside the agent's directory {}: the agent reads and removes only \
                 its own nodes' files",
                self.dir.display()
            ));
        }
        Ok(p)
    }
}
