//! `squall agent`: what runs on a host over SSH and owns that host's part of a cluster — its node processes
//! (through the same [`Supervisor`] a local cluster uses: launch, signals, restart, wipe) and the proxies of
//! every directed link whose sender is on the host (through the same [`Network`], built for the kind the same
//! way). It speaks [`crate::remote::protocol`] on standard input and output and listens on nothing else.
//!
//! Losing the controller is not losing the nodes: when standard input ends (the controller or its SSH connection
//! is gone), or the controller that pinged stops pinging, the agent keeps its nodes for its grace period
//! (`--grace`, 10 s) and waits on its socket (`DIR/.agent/sock`, in a directory of mode 0700) for a controller
//! to come back through `squall agent --attach DIR` over a new ssh. No orphans: when none does, it stops its
//! nodes (SIGTERM, then SIGKILL), unmounts their fault filesystems and exits; if the agent itself is killed,
//! its nodes follow it through the supervisor's lifeline, and the dead FUSE mounts it leaves are detached by the
//! next squall in its directory ([`detach_dead_mounts`]: the controller's `--attach` that finds no agent, or
//! the next agent).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall_chaos::{LinkId, Network, ProcessSpec, Supervisor};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::cli::AgentArgs;
use crate::cluster::clockset::{self, Clocks};
use crate::cluster::diskops;
use crate::cluster::diskset::{Disks, fault_seed};
use crate::remote::protocol::{AgentEvent, Answer, ClockOp, DiskOp, Message, Op, Request};

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
        .with_writer(|| Diagnostics)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let rt = crate::setup::runtime();
    let code = match args.attach {
        Some(dir) => rt.block_on(relay(&dir)),
        None => match rt.block_on(serve(args.dir, args.grace)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::setup::fail(1, format!("agent: {e:#}")),
        },
    };
    // A read of a standard input that never ends (an old controller's channel, half open) must not hold the
    // exit.
    rt.shutdown_background();
    code
}

/// Standard error that never fails. Once the controller's ssh is gone nothing reads it, and the first
/// diagnostic after that ("the controller is gone; keeping the nodes…") must not end the agent: a write error
/// makes tracing-subscriber say so on standard error with `eprintln!`, which panics on the broken pipe, and the
/// panic took the agent and its nodes down at once (issue 24: a host whose ssh sessions were killed was lost,
/// never reconnected).
struct Diagnostics;

impl std::io::Write for Diagnostics {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Where a message goes: the channel of the controller attached now, or (while none is) a backlog of events
/// it gets when one attaches. Replies to a controller that is gone are dropped with it.
#[derive(Default)]
struct Outbox {
    tx: Option<mpsc::UnboundedSender<Message>>,
    backlog: std::collections::VecDeque<AgentEvent>,
}

/// At most this many events wait for a controller to attach; the oldest go first.
const BACKLOG: usize = 10_000;

impl Outbox {
    fn event(&mut self, e: AgentEvent) {
        if let Some(tx) = &self.tx {
            match tx.send(Message::Event(e)) {
                Ok(()) => return,
                Err(mpsc::error::SendError(Message::Event(e))) => {
                    self.tx = None;
                    self.backlog.push_back(e);
                }
                Err(_) => self.tx = None,
            }
        } else {
            self.backlog.push_back(e);
        }
        while self.backlog.len() > BACKLOG {
            self.backlog.pop_front();
        }
    }

    /// A controller attached through `tx`: it gets what waited.
    fn attach(&mut self, tx: mpsc::UnboundedSender<Message>) {
        for e in self.backlog.drain(..) {
            let _ = tx.send(Message::Event(e));
        }
        self.tx = Some(tx);
    }

    /// The controller of `tx` is gone (a newer one may have attached meanwhile: it stays).
    fn detach(&mut self, tx: &mpsc::UnboundedSender<Message>) {
        if self.tx.as_ref().is_some_and(|t| t.same_channel(tx)) {
            self.tx = None;
        }
    }
}

/// What the request handlers share.
struct Agent {
    dir: PathBuf,
    sup: Supervisor,
    net: Mutex<Option<Network>>,
    /// The nodes' fault filesystems (the same room a local cluster keeps them in).
    disks: Disks,
    /// The nodes' faked clocks, through the shim in the agent's directory.
    clocks: Clocks,
    out: Mutex<Outbox>,
    /// When the last `ping` came; `None` before the first (then the agent is not held to pings).
    last_ping: Mutex<Option<Instant>>,
    grace: Duration,
    /// The controller's fault ids and the ids this host's network gave them.
    faults: Mutex<std::collections::HashMap<u64, u64>>,
}

/// A request and the channel its reply goes back on.
type Work = (Request, mpsc::UnboundedSender<Message>);

/// Why a controller's channel ended.
enum End {
    /// It asked to shut down (the request's id and its channel, and the channel's writer).
    Shutdown(
        u64,
        mpsc::UnboundedSender<Message>,
        tokio::task::JoinHandle<()>,
    ),
    /// Its channel ended (end of file, or its output closed): wait for another to attach.
    Gone,
    /// Another controller attached (it said [`ATTACH_HELLO`] first): it takes over, with what it sent after
    /// the hello still to read.
    Replaced(Attached),
    /// Pinged once, then silent for the grace period: gone for good.
    Silent,
}

/// The first line a controller attaching through the agent's socket sends (`squall agent --attach` sends it):
/// only a connection that says it replaces the attached controller. A bare connect (another squall's probe for
/// a live agent in the directory, as `listen` makes) replaces no one (tester 10's finding 2: a second squall's
/// probe took every host away from the running session).
pub const ATTACH_HELLO: &str = "squall-agent-attach";

/// How long a connection to the agent's socket gets to say [`ATTACH_HELLO`].
const HELLO_DEADLINE: Duration = Duration::from_secs(5);

/// A controller that attached through the agent's socket: its input (past the hello) and output.
type Attached = (
    BufReader<tokio::net::unix::OwnedReadHalf>,
    tokio::net::unix::OwnedWriteHalf,
);

/// Accepts on the agent's socket for as long as the agent runs, and passes on each connection that says
/// [`ATTACH_HELLO`] within [`HELLO_DEADLINE`]; any other (a probe that connects and leaves, or one that
/// says something else) is closed and counts for nothing.
fn accept_attaches(listener: UnixListener) -> mpsc::UnboundedReceiver<Attached> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let s = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting on the agent's socket failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let pass = tx.clone();
            tokio::spawn(async move {
                let (r, w) = s.into_split();
                let mut r = BufReader::new(r);
                let mut first = String::new();
                let said = tokio::time::timeout(HELLO_DEADLINE, r.read_line(&mut first)).await;
                if matches!(said, Ok(Ok(n)) if n > 0) && first.trim_end() == ATTACH_HELLO {
                    let _ = pass.send((r, w));
                }
            });
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

/// The agent's socket in `dir`: `dir/.agent/sock`, in a directory only the agent's user may enter.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(".agent").join("sock")
}

/// Listens on the agent's socket in `dir`, in a directory of mode 0700. A socket left by an agent that died
/// is replaced; one a live agent answers on is refused (two agents in one directory would run the same
/// nodes over the same data).
fn listen(dir: &Path) -> anyhow::Result<UnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let sock = socket_path(dir);
    let room = sock.parent().expect("the socket is in a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(room)
        .with_context(|| format!("cannot create {}", room.display()))?;
    std::fs::set_permissions(room, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (mode 0700)", room.display()))?;
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        anyhow::bail!(
            "another agent runs in {} (its socket {} answers): it keeps its nodes for its grace period after \
             its controller left, then stops them; attach to it (`squall agent --attach {}`) or use another \
             `dir`",
            dir.display(),
            sock.display(),
            dir.display()
        );
    }
    let _ = std::fs::remove_file(&sock);
    UnixListener::bind(&sock).with_context(|| format!("cannot listen on {}", sock.display()))
}

/// Serves controllers until one asks to shut down or none is left for the grace period, then stops every
/// node, unmounts their disks and exits. The first controller is on standard input and output; later ones
/// attach through the agent's socket (`squall agent --attach DIR` over a new ssh, which says [`ATTACH_HELLO`] first), each replacing the last; a connection that does not say it replaces no one.
async fn serve(dir: PathBuf, grace: Duration) -> anyhow::Result<()> {
    let mut attaches = accept_attaches(listen(&dir)?);
    // No other agent runs here now: a fault filesystem left under the directory is a killed agent's.
    for said in detach_dead_mounts(&dir) {
        tracing::warn!("{said}");
    }
    let sup = Supervisor::new()?;
    let agent = Arc::new(Agent {
        clocks: Clocks::new(Some(dir.join(squall_chaos::clock::SHIM_FILE_NAME))),
        dir: dir.clone(),
        sup: sup.clone(),
        net: Mutex::new(None),
        disks: Disks::default(),
        out: Mutex::new(Outbox::default()),
        last_ping: Mutex::new(None),
        grace,
        faults: Mutex::new(std::collections::HashMap::new()),
    });
    tokio::spawn(forward_exits(agent.clone()));
    // Requests that change something are done one after another, in the order they came (a `launch` then a
    // `kill` never race), whichever controller sent them.
    let (work, mut queue) = mpsc::unbounded_channel::<Work>();
    let mut worker = {
        let a = agent.clone();
        tokio::spawn(async move {
            while let Some((req, tx)) = queue.recv().await {
                a.answer(req, &tx).await;
            }
        })
    };
    let mut channel: Option<(Input, Output)> =
        Some((Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout())));
    let shutdown = loop {
        let end = match channel.take() {
            Some((input, output)) => agent.session(input, output, &mut attaches, &work).await,
            None => {
                tracing::warn!(
                    "the controller is gone; keeping the nodes for {grace:?} for one to attach"
                );
                match tokio::time::timeout(grace, attaches.recv()).await {
                    Ok(Some(a)) => End::Replaced(a),
                    Ok(None) | Err(_) => End::Silent,
                }
            }
        };
        match end {
            End::Shutdown(id, tx, writer) => break Some((id, tx, writer)),
            End::Gone => channel = None,
            End::Replaced((r, w)) => {
                channel = Some((Box::new(r), Box::new(w)));
            }
            End::Silent => break None,
        }
    };
    // Nothing more is started; what did start is stopped. A controller that asked to shut down gets what it
    // asked before that done first (a `launch` then a `shutdown` leaves nothing running either way).
    drop(work);
    if shutdown.is_some() {
        let _ = (&mut worker).await;
    } else {
        worker.abort();
    }
    agent.stop().await;
    let _ = std::fs::remove_file(socket_path(&dir));
    if let Some((id, tx, writer)) = shutdown {
        let _ = tx.send(Message::Reply {
            id,
            ok: Some(Answer::Done),
            error: None,
        });
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    }
    Ok(())
}

type Input = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Output = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

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
                agent.out.lock().unwrap().event(AgentEvent::Exit {
                    node,
                    pid: e.pid,
                    code: e.code,
                    signal: e.signal,
                    expected: e.expected,
                });
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

impl Agent {
    /// Serves one controller's channel until it ends; see [`End`].
    async fn session(
        self: &Arc<Self>,
        input: Input,
        output: Output,
        attaches: &mut mpsc::UnboundedReceiver<Attached>,
        work: &mpsc::UnboundedSender<Work>,
    ) -> End {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        // One writer: every line whole, in the order sent. A closed output (the controller gone) ends the
        // channel.
        let (gone_tx, mut gone) = tokio::sync::watch::channel(false);
        let writer = tokio::spawn(async move {
            let mut output = output;
            while let Some(m) = rx.recv().await {
                let mut line = serde_json::to_vec(&m).expect("messages serialise");
                line.push(b'\n');
                if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                    let _ = gone_tx.send(true);
                    return;
                }
            }
        });
        self.out.lock().unwrap().attach(tx.clone());
        {
            // A controller attaching is a sign of life.
            let mut last = self.last_ping.lock().unwrap();
            if last.is_some() {
                *last = Some(Instant::now());
            }
        }
        let mut lines = BufReader::new(input).lines();
        let mut tick = tokio::time::interval(
            Duration::from_millis(100)
                .min(self.grace)
                .max(Duration::from_millis(1)),
        );
        let end = loop {
            let line = tokio::select! {
                l = lines.next_line() => l,
                _ = gone.changed() => break End::Gone,
                a = attaches.recv() => match a {
                    Some(a) => break End::Replaced(a),
                    None => continue,
                },
                _ = tick.tick() => {
                    let silent = self
                        .last_ping
                        .lock()
                        .unwrap()
                        .is_some_and(|t| t.elapsed() > self.grace);
                    if silent {
                        tracing::warn!("no ping from the controller for {:?}", self.grace);
                        break End::Silent;
                    }
                    continue;
                }
            };
            let line = match line {
                Ok(Some(l)) => l,
                Ok(None) | Err(_) => break End::Gone,
            };
            if line.trim().is_empty() {
                continue;
            }
            let req: Request = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    // No id to answer to when the line is not a request: id 0 is never a controller's.
                    let _ = tx.send(Message::Reply {
                        id: 0,
                        ok: None,
                        error: Some(format!("not a request ({e}): {}", preview(&line))),
                    });
                    continue;
                }
            };
            match req.op {
                Op::Shutdown => {
                    self.out.lock().unwrap().detach(&tx);
                    return End::Shutdown(req.id, tx, writer);
                }
                Op::Ping => {
                    *self.last_ping.lock().unwrap() = Some(Instant::now());
                    let _ = tx.send(Message::Reply {
                        id: req.id,
                        ok: Some(Answer::Done),
                        error: None,
                    });
                }
                // The read-only ones answer at once, even while a restart waits for its node.
                Op::Hello
                | Op::Status
                | Op::Log { .. }
                | Op::Capabilities
                | Op::Trace { .. }
                | Op::Program { .. }
                | Op::ReadFile { .. }
                | Op::Programs { .. } => {
                    let (a, tx) = (self.clone(), tx.clone());
                    tokio::spawn(async move { a.answer(req, &tx).await });
                }
                _ => {
                    if work.send((req, tx.clone())).is_err() {
                        break End::Silent;
                    }
                }
            }
        };
        self.out.lock().unwrap().detach(&tx);
        end
    }

    /// Stops every node (their disks healed first, so none is stuck in stalled I/O), then unmounts their fault
    /// filesystems.
    async fn stop(&self) {
        self.disks.heal_all();
        self.sup.shutdown(STOP_GRACE).await;
        for e in self.disks.unmount_all() {
            tracing::warn!(error = %e, "cannot unmount a fault filesystem");
        }
    }

    /// Does `req` and sends its reply on `tx`.
    async fn answer(&self, req: Request, tx: &mpsc::UnboundedSender<Message>) {
        let (ok, error) = match self.handle(req.op).await {
            Ok(answer) => (Some(answer), None),
            Err(e) => (None, Some(e)),
        };
        let _ = tx.send(Message::Reply {
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
                loopback: crate::remote::loopback_id(),
            }),
            Op::Network { kind, seed, bind } => {
                // The proxies need the kind's framing and classifier only: a Maelstrom kind's node program is
                // not looked for here but by `programs`, which names every host that lacks it.
                let kind = match kind.maelstrom {
                    Some(_) => crate::kind::Kind::builtin(crate::kind::maelstrom::KIND)
                        .expect("the maelstrom kind is built in"),
                    None => {
                        crate::kind::Kind::from_record(&kind)
                            .map_err(|e| {
                                format!("this host cannot load node kind `{}`: {e}", kind.name)
                            })?
                            .0
                    }
                };
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
                    Some(p) => find_program(&p)?,
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
            Op::Destination { to, at } => {
                let net = self.net()?;
                let addr = match at {
                    // A resumed cluster's: where the members stored that this proxy listens.
                    Some(at) => net.add_destination_at(to, at).await,
                    None => net.add_destination(to).await,
                }
                .map_err(|e| format!("starting the proxy in front of node {to}: {e}"))?;
                Ok(Answer::Link { addr })
            }
            op @ (Op::Sender { .. } | Op::Ports { .. } | Op::Program { .. }) => self.hosted(op),
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
            // The loop answers these itself.
            Op::Shutdown | Op::Ping => done,
            Op::Capabilities => Ok(Answer::Can {
                disk: crate::cluster::diskops::disk_faults_unavailable(),
                clock: squall_chaos::clock::install_shim(&self.dir)
                    .err()
                    .map(|e| format!("cannot install squall's time shim: {e}")),
            }),
            Op::Disk { node, action } => self.disk(node, action).await,
            Op::Programs { paths } => Ok(Answer::Notes {
                notes: paths.iter().filter_map(|p| not_a_program(p)).collect(),
            }),
            Op::PowerCut { nodes, torn, seed } => {
                let mut disks = Vec::new();
                for id in nodes {
                    disks.push((id, self.disk_of(id)?, String::new()));
                }
                let mut k = 0;
                let out = diskops::cut_power(&self.sup, disks, torn, || {
                    k += 1;
                    fault_seed(seed, k)
                })
                .await;
                Ok(Answer::PowerCut {
                    done: out.done,
                    problems: out.problems,
                })
            }
            Op::Clock {
                node,
                action: ClockOp::Prepare { node_dir },
            } => {
                squall_chaos::clock::install_shim(&self.dir)
                    .map_err(|e| format!("cannot install squall's time shim: {e}"))?;
                let env = self
                    .clocks
                    .env(node, Path::new(&node_dir))
                    .map_err(|e| format!("node {node}'s clock: {e:#}"))?;
                Ok(Answer::Env {
                    env: env
                        .into_iter()
                        .map(|(k, v)| {
                            (
                                k.to_string_lossy().into_owned(),
                                v.to_string_lossy().into_owned(),
                            )
                        })
                        .collect(),
                })
            }
            Op::Clock {
                node,
                action: ClockOp::Set(action),
            } => {
                let pid = match self.sup.state(&name(node)) {
                    Some(
                        squall_chaos::ProcState::Running { pid }
                        | squall_chaos::ProcState::Paused { pid },
                    ) => Some(pid),
                    _ => None,
                };
                let lead = self.clocks.apply(node, pid, &action)?;
                let now = self.clocks.describe(node);
                Ok(Answer::Clock {
                    said: clockset::said(
                        node,
                        &action,
                        lead,
                        now.as_deref().unwrap_or("true"),
                        pid.is_some(),
                    ),
                    now,
                })
            }
        }
    }

    /// The requests of a per-destination kind on hosts and of ports picked where the node runs.
    fn hosted(&self, op: Op) -> Result<Answer, String> {
        match op {
            Op::Sender { member, node } => {
                self.net()?.senders().set(member, node);
                Ok(Answer::Done)
            }
            Op::Ports { names, bind } => {
                let ip = bind.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
                Ok(Answer::Ports {
                    ports: crate::cluster::free_ports(ip, &names)?,
                })
            }
            Op::Program { program } => Ok(Answer::Program {
                path: find_program(&program)?.display().to_string(),
            }),
            other => Err(format!("not a hosted request: {other:?}")),
        }
    }

    fn disk_of(&self, node: u64) -> Result<squall_chaos::disk::DiskFaults, String> {
        self.disks.faults(node).ok_or_else(|| {
            format!(
                "node {node} has no fault filesystem on this host: mount it (`disk` `mount`) before its launch"
            )
        })
    }

    async fn disk(&self, node: u64, action: DiskOp) -> Result<Answer, String> {
        match action {
            DiskOp::Mount { backing, data_dir } => {
                let data_dir = PathBuf::from(data_dir);
                let left = self
                    .disks
                    .mount(node, Path::new(&backing), &data_dir)
                    .map_err(|e| format!("node {node}'s fault filesystem: {e:#}"))?;
                Ok(Answer::Notes {
                    notes: diskops::leftover_notes(node, &data_dir, &left),
                })
            }
            DiskOp::Fault {
                action,
                seed,
                not_data,
                what,
            } => {
                let disk = self.disk_of(node)?;
                let not_data: Vec<PathBuf> = not_data.into_iter().map(PathBuf::from).collect();
                let (said, flipped) =
                    diskops::apply(&self.sup, node, &disk, &action, &what, || seed, &not_data)?;
                Ok(Answer::Disk {
                    said,
                    faults: self.disks.describe(node),
                    flipped: flipped.map(|f| (f.file.display().to_string(), f.offset)),
                })
            }
            DiskOp::Wipe => {
                let disk = self.disk_of(node)?;
                diskops::wipe(&self.sup, node, &disk).await?;
                Ok(Answer::Done)
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

/// The node program `program` on this host: a path (it has a `/`) as it is, a bare name looked up on the
/// agent's `PATH`; either must be an executable file. `Err` says what was not found, and where it was looked
/// for.
fn find_program(program: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if runnable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "program {program} is not an executable file on this host"
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| {
            format!(
                "program `{program}` is not on this host's PATH ({})",
                path.to_string_lossy()
            )
        })
}

/// What is wrong with `path` as a program this host runs, for a person (`None` when it is an executable file).
fn not_a_program(path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("{path}: no such file")),
        Err(e) => Some(format!("{path}: {e}")),
        Ok(m) if !m.is_file() => Some(format!("{path}: not a file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some(format!("{path}: not executable (chmod +x it)"))
        }
        Ok(_) => None,
    }
}

/// `squall agent --attach DIR`: relays standard input and output to the agent running in `dir`, until either
/// side ends. Exits 3 (saying so) when no agent runs there.
async fn relay(dir: &Path) -> ExitCode {
    let sock = socket_path(dir);
    let stream = match UnixStream::connect(&sock).await {
        Ok(s) => s,
        Err(e) => {
            // The controller gives up on the host now (it is lost), so what a killed agent left behind goes
            // now: its nodes followed it through their lifeline, its fault filesystems did not.
            let detached = detach_dead_mounts(dir);
            return crate::setup::fail(
                crate::remote::ssh::NO_AGENT_EXIT as u8,
                format!(
                    "no agent runs in {} ({}: {e}): it stopped its nodes after its grace period, was killed, \
                     or never ran{}",
                    dir.display(),
                    sock.display(),
                    if detached.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", detached.join("; "))
                    }
                ),
            );
        }
    };
    let (mut from_agent, mut to_agent) = stream.into_split();
    if to_agent
        .write_all(format!("{ATTACH_HELLO}\n").as_bytes())
        .await
        .is_err()
    {
        return crate::setup::fail(
            crate::remote::ssh::NO_AGENT_EXIT as u8,
            format!(
                "no agent runs in {} (its socket {} closed at once)",
                dir.display(),
                sock.display()
            ),
        );
    }
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut to_agent).await;
        // The controller is gone: the agent reads end of file and waits for the next.
        let _ = to_agent.shutdown().await;
    });
    let mut stdout = tokio::io::stdout();
    let _ = tokio::io::copy(&mut from_agent, &mut stdout).await;
    let _ = stdout.flush().await;
    up.abort();
    ExitCode::SUCCESS
}

/// Detaches every dead fault filesystem at or under `dir`: the mounts of an agent killed before it could
/// unmount (SIGKILL, a crash, the machine's OOM killer), whose FUSE server died with it. Its nodes died with it
/// too (their lifeline), but its mounts stay, failing every access with "Transport endpoint is not connected",
/// until someone unmounts them; called where no agent runs in `dir` (so every mount of ours there is dead): by
/// `--attach` finding none, and by a new agent once it holds the directory's socket. A live fault filesystem
/// (one that answers) and any other kind of mount are left alone. Returns what was done or failed, one line
/// each, for a person.
pub fn detach_dead_mounts(dir: &Path) -> Vec<String> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(&dir))
        .collect();
    // Deepest first, so a mount inside another comes off before it.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    let mut said = Vec::new();
    for p in points {
        match squall_chaos::disk::detach_stale_mount(&p) {
            Ok(true) => said.push(format!(
                "detached the dead fault filesystem on {}",
                p.display()
            )),
            Ok(false) | Err(squall_chaos::disk::DiskError::Refused(_)) => {}
            // Not root: a user's FUSE mount comes off through fusermount's setuid helper.
            Err(e) => match fusermount_detach(&p) {
                Ok(()) => said.push(format!(
                    "detached the dead fault filesystem on {}",
                    p.display()
                )),
                Err(more) => said.push(format!(
                    "cannot detach the dead fault filesystem on {} ({e}; {more}): detach it with `umount -l {}` \
                     or `fusermount3 -u -z {}`",
                    p.display(),
                    p.display(),
                    p.display()
                )),
            },
        }
    }
    said
}

/// `fusermount3 -u -z POINT` (then `fusermount`): a lazy unmount of a FUSE mount by its own user.
fn fusermount_detach(point: &Path) -> Result<(), String> {
    let mut why = Vec::new();
    for tool in ["fusermount3", "fusermount"] {
        match std::process::Command::new(tool)
            .args(["-u", "-z"])
            .arg(point)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => why.push(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => why.push(format!("{tool}: {e}")),
        }
    }
    Err(why.join("; "))
}

/// A path as `/proc/self/mountinfo` writes it, with its octal escapes (`\040` for a space) undone.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let digit = |k: usize| u32::from(bytes[i + k] - b'0');
            out.push((digit(1) * 64 + digit(2) * 8 + digit(3)) as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mountinfo_path_has_its_octal_escapes_undone_and_nothing_else() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b/c"), "/tmp/a b/c");
        assert_eq!(unescape_mountinfo(r"/x\011y\134z"), "/x\ty\\z");
        assert_eq!(unescape_mountinfo(r"/plain/path"), "/plain/path");
        // Not an escape: kept as it is.
        assert_eq!(unescape_mountinfo(r"/a\09"), r"/a\09");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }

    #[test]
    fn a_directory_with_no_mount_under_it_has_nothing_detached() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detach_dead_mounts(dir.path()).is_empty());
        assert!(detach_dead_mounts(&dir.path().join("missing")).is_empty());
    }
}
