//! Node processes and the faults done to them with named signals: spawn, kill (SIGKILL), terminate (SIGTERM),
//! pause (SIGSTOP), resume (SIGCONT), restart with or without the data directory; every exit observed.
//!
//! No orphans, by three layers, because no single one covers every way the orchestrator can end:
//! - **Lifeline.** Each [`Supervisor`] holds the write end of a pipe; every child gets the read end's number in
//!   `SQUALL_LIFELINE_FD` and calls [`squall_lifeline::watch_from_env`], whose thread exits the child at end-of-file.
//!   The kernel closes the write end however the orchestrator dies (panic, signal, SIGKILL) or when the
//!   supervisor is dropped. A stopped child cannot read, so this alone misses paused nodes.
//! - **Parent-death signal.** Children are forked from one process-wide thread that never exits, with
//!   `PR_SET_PDEATHSIG = SIGKILL`. The kernel fires it when the forking *thread* ends, which is why it must not be
//!   a tokio worker that may be retired; with a thread that lives as long as the process it fires exactly when
//!   the process dies, and SIGKILL also ends stopped children.
//! - **Process groups.** Each child leads its own group, and signals go to the group, so anything a node starts
//!   goes with it; shutdown and drop kill every group.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot, watch};

use crate::error::ChaosError;

pub use squall_lifeline::{LIFELINE_ENV, LIFELINE_EXIT_CODE};

/// How long a restart waits for the old process to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What to run for one named process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The name faults refer to (e.g. `node-3`); unique within a supervisor.
    pub name: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables (the rest is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// stdout and stderr are appended here; parent directories are created.
    pub log_path: PathBuf,
    /// The data directory a wiping restart deletes.
    pub data_dir: Option<PathBuf>,
}

/// Where a process stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcState {
    /// Alive and not stopped.
    Running {
        /// Its pid (also its process group).
        pid: u32,
    },
    /// Stopped by SIGSTOP.
    Paused {
        /// Its pid.
        pid: u32,
    },
    /// Gone.
    Exited {
        /// The pid it had.
        pid: u32,
        /// Its exit code, if it exited on its own.
        code: Option<i32>,
        /// The signal that ended it, e.g. `"SIGKILL"`.
        signal: Option<String>,
        /// When its exit was observed.
        at: SystemTime,
    },
    /// Between the old process's death and the new one's start.
    Restarting,
}

/// One observed exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitEvent {
    /// The process name.
    pub name: String,
    /// The pid that exited.
    pub pid: u32,
    /// Its exit code, if it exited on its own.
    pub code: Option<i32>,
    /// The signal that ended it, e.g. `"SIGKILL"`.
    pub signal: Option<String>,
    /// When the exit was observed.
    pub at: SystemTime,
    /// True when we had sent it SIGKILL or SIGTERM (a fault or shutdown), false for a crash or a clean exit of
    /// its own accord.
    pub expected: bool,
}

/// One named process and its current incarnation.
struct Proc {
    spec: ProcessSpec,
    state: ProcState,
    incarnation: u64,
    expected: bool,
    exited: watch::Receiver<bool>,
}

impl Proc {
    fn live_pid(&self) -> Option<u32> {
        match self.state {
            ProcState::Running { pid } | ProcState::Paused { pid } => Some(pid),
            _ => None,
        }
    }
}

/// What exit watchers share with the supervisor handles.
struct Shared {
    procs: Mutex<HashMap<String, Proc>>,
    exits: broadcast::Sender<ExitEvent>,
}

impl Shared {
    fn procs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Proc>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Owned by the supervisor handles only, so its drop means "the orchestrator let go".
struct Inner {
    shared: Arc<Shared>,
    lifeline_read: OwnedFd,
    // Held only to be closed on drop: that end-of-file is what children watch.
    _lifeline_write: OwnedFd,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for p in self.shared.procs().values() {
            if let Some(pid) = p.live_pid() {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Starts node processes, injects process faults into them and reports their exits. Clone it freely; when the
/// last clone is dropped every process it started is killed.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("lifeline_fd", &self.inner.lifeline_read.as_raw_fd())
            .finish_non_exhaustive()
    }
}

/// A request to the spawner thread.
struct SpawnRequest {
    cmd: tokio::process::Command,
    rt: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<tokio::process::Child>>,
}

/// The process-wide spawner thread's queue. The thread is never joined and never exits, so the parent-death
/// signal of the children it forks fires only when the whole process dies.
fn spawner() -> Result<&'static std_mpsc::Sender<SpawnRequest>, ChaosError> {
    static SPAWNER: OnceLock<std_mpsc::Sender<SpawnRequest>> = OnceLock::new();
    static FAILED: OnceLock<String> = OnceLock::new();
    if let Some(tx) = SPAWNER.get() {
        return Ok(tx);
    }
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new()
            .name("squall-spawner".into())
            .spawn(move || {
                for mut req in rx {
                    let _rt = req.rt.enter();
                    let _ = req.reply.send(req.cmd.spawn());
                }
            });
        if let Err(e) = started {
            let _ = FAILED.set(e.to_string());
        }
        tx
    });
    match FAILED.get() {
        Some(e) => Err(ChaosError::Spawner(e.clone())),
        None => Ok(tx),
    }
}

impl Supervisor {
    /// Creates the lifeline and makes sure the spawner thread runs.
    pub fn new() -> Result<Supervisor, ChaosError> {
        spawner()?;
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ChaosError::Lifeline)?;
        // Children's fds 0-2 are replaced by their stdio, so the lifeline must not sit there.
        let read = if read.as_raw_fd() < 3 {
            let fd = fcntl(&read, FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(ChaosError::Lifeline)?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(fd) }
        } else {
            read
        };
        let (exits, _) = broadcast::channel(1024);
        Ok(Supervisor {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    procs: Mutex::new(HashMap::new()),
                    exits,
                }),
                lifeline_read: read,
                _lifeline_write: write,
            }),
        })
    }

    /// Starts `spec` in its own process group with stdout and stderr appended to its log file, and returns its
    /// pid. A name whose process has exited may be reused (its spec is replaced); a live one may not.
    pub async fn spawn(&self, spec: ProcessSpec) -> Result<u32, ChaosError> {
        if let Some(pid) = self
            .inner
            .shared
            .procs()
            .get(&spec.name)
            .and_then(Proc::live_pid)
        {
            return Err(ChaosError::AlreadyRunning {
                name: spec.name,
                pid,
            });
        }
        self.start(spec).await
    }

    async fn start(&self, spec: ProcessSpec) -> Result<u32, ChaosError> {
        let name = spec.name.clone();
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| ChaosError::NoRuntime { name: name.clone() })?;
        let log_err = |source| ChaosError::Log {
            name: name.clone(),
            path: spec.log_path.clone(),
            source,
        };
        let log = open_log(&spec).map_err(log_err)?;
        let log2 = log.try_clone().map_err(log_err)?;

        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(
                LIFELINE_ENV,
                self.inner.lifeline_read.as_raw_fd().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .kill_on_drop(false);
        let lifeline = self.inner.lifeline_read.as_raw_fd();
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec and only makes raw syscalls (prctl, getppid,
        // fcntl), which are async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let os = |e: Errno| io::Error::from_raw_os_error(e as i32);
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(os)?;
                // The parent may have died between fork and prctl; then nobody would send the signal.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(Errno::ESRCH as i32));
                }
                let fd = BorrowedFd::borrow_raw(lifeline);
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(os)?;
                Ok(())
            });
        }

        let (reply, child) = oneshot::channel();
        spawner()?
            .send(SpawnRequest { cmd, rt, reply })
            .map_err(|_| ChaosError::Spawner("the spawner thread has stopped".into()))?;
        let spawn_err = |source| ChaosError::Spawn {
            name: name.clone(),
            program: spec.program.clone(),
            source,
        };
        let mut child = child
            .await
            .map_err(|_| ChaosError::Spawner("the spawner thread dropped a request".into()))?
            .map_err(spawn_err)?;
        let pid = child
            .id()
            .ok_or_else(|| spawn_err(io::Error::other("child exited before its pid was read")))?;

        let (exited_tx, exited) = watch::channel(false);
        let incarnation = {
            let mut procs = self.inner.shared.procs();
            let incarnation = procs.get(&name).map_or(1, |p| p.incarnation + 1);
            procs.insert(
                name.clone(),
                Proc {
                    spec,
                    state: ProcState::Running { pid },
                    incarnation,
                    expected: false,
                    exited,
                },
            );
            incarnation
        };
        tracing::info!(%name, pid, "process started");
        let shared = self.inner.shared.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            record_exit(&shared, &name, incarnation, pid, status);
            let _ = exited_tx.send(true);
        });
        Ok(pid)
    }

    /// SIGKILL to the process group.
    pub fn kill(&self, name: &str) -> Result<(), ChaosError> {
        self.signal(name, Signal::SIGKILL)
    }

    /// SIGTERM to the process group (a graceful stop). A paused process is also resumed so it can act on it.
    pub fn terminate(&self, name: &str) -> Result<(), ChaosError> {
        self.signal(name, Signal::SIGTERM)
    }

    /// SIGSTOP to the process group: it stays alive but does nothing, like a long GC pause or a frozen VM.
    pub fn pause(&self, name: &str) -> Result<(), ChaosError> {
        self.signal(name, Signal::SIGSTOP)
    }

    /// SIGCONT to the process group.
    pub fn resume(&self, name: &str) -> Result<(), ChaosError> {
        self.signal(name, Signal::SIGCONT)
    }

    fn signal(&self, name: &str, sig: Signal) -> Result<(), ChaosError> {
        let mut procs = self.inner.shared.procs();
        let p = procs
            .get_mut(name)
            .ok_or_else(|| ChaosError::UnknownProcess { name: name.into() })?;
        let pid = p.live_pid().ok_or_else(|| ChaosError::NotRunning {
            name: name.into(),
            signal: sig.as_str(),
        })?;
        let group = Pid::from_raw(pid as i32);
        let fatal = matches!(sig, Signal::SIGKILL | Signal::SIGTERM);
        if fatal {
            p.expected = true;
        }
        let sent = killpg(group, sig).and_then(|()| {
            if sig == Signal::SIGTERM && matches!(p.state, ProcState::Paused { .. }) {
                killpg(group, Signal::SIGCONT)
            } else {
                Ok(())
            }
        });
        match sent {
            Ok(()) => {}
            // Already dead and about to be reaped: what a fatal signal asked for has happened.
            Err(Errno::ESRCH) if fatal => return Ok(()),
            Err(source) => {
                return Err(ChaosError::Signal {
                    name: name.into(),
                    pid,
                    signal: sig.as_str(),
                    source,
                });
            }
        }
        match sig {
            Signal::SIGSTOP => p.state = ProcState::Paused { pid },
            Signal::SIGCONT | Signal::SIGTERM => p.state = ProcState::Running { pid },
            _ => {}
        }
        tracing::info!(%name, pid, signal = sig.as_str(), "signal sent");
        Ok(())
    }

    /// Kills the process if alive, waits for its exit, deletes its data directory if `wipe_data` (disk loss),
    /// and starts the same spec again. Returns the new pid.
    pub async fn restart(&self, name: &str, wipe_data: bool) -> Result<u32, ChaosError> {
        let (spec, mut exited, pid) = {
            let procs = self.inner.shared.procs();
            let p = procs
                .get(name)
                .ok_or_else(|| ChaosError::UnknownProcess { name: name.into() })?;
            (p.spec.clone(), p.exited.clone(), p.live_pid())
        };
        if let Some(pid) = pid {
            match self.kill(name) {
                // It died (and was reaped) since it was looked at: what the kill was for has happened.
                Ok(()) | Err(ChaosError::NotRunning { .. }) => {}
                Err(e) => return Err(e),
            }
            let waited = tokio::time::timeout(KILL_WAIT, exited.wait_for(|done| *done)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(ChaosError::ExitTimeout {
                    name: name.into(),
                    pid,
                    waited_ms: KILL_WAIT.as_millis() as u64,
                });
            }
        }
        if let Some(p) = self.inner.shared.procs().get_mut(name) {
            p.state = ProcState::Restarting;
        }
        if wipe_data && let Some(dir) = &spec.data_dir {
            let wipe_err = |source| ChaosError::Wipe {
                name: name.into(),
                path: dir.clone(),
                source,
            };
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(wipe_err(e)),
            }
            std::fs::create_dir_all(dir).map_err(wipe_err)?;
            tracing::info!(%name, dir = %dir.display(), "data directory wiped");
        }
        self.start(spec).await
    }

    /// The state of `name`, if it was ever spawned.
    pub fn state(&self, name: &str) -> Option<ProcState> {
        self.inner.shared.procs().get(name).map(|p| p.state.clone())
    }

    /// The names of every process ever spawned, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.inner.shared.procs().keys().cloned().collect();
        names.sort();
        names
    }

    /// Replaces the spec the next [`Supervisor::restart`] of `spec.name` starts (new flags for a node that
    /// is restarted or wiped); the process running now is untouched.
    pub fn set_spec(&self, spec: ProcessSpec) -> Result<(), ChaosError> {
        let mut procs = self.inner.shared.procs();
        let p = procs
            .get_mut(&spec.name)
            .ok_or_else(|| ChaosError::UnknownProcess {
                name: spec.name.clone(),
            })?;
        p.spec = spec;
        Ok(())
    }

    /// The spec `name` runs with.
    pub fn spec(&self, name: &str) -> Option<ProcessSpec> {
        self.inner.shared.procs().get(name).map(|p| p.spec.clone())
    }

    /// Every exit from now on (buffered up to 1024 unread events).
    pub fn exits(&self) -> broadcast::Receiver<ExitEvent> {
        self.inner.shared.exits.subscribe()
    }

    /// SIGTERM to every live process (paused ones are resumed), then SIGKILL to whatever is still alive after
    /// `grace`; returns once every process has exited (or 10 s after the SIGKILL, so shutdown cannot hang).
    pub async fn shutdown(&self, grace: Duration) {
        let live: Vec<(String, watch::Receiver<bool>)> = self
            .inner
            .shared
            .procs()
            .iter()
            .filter(|(_, p)| p.live_pid().is_some())
            .map(|(n, p)| (n.clone(), p.exited.clone()))
            .collect();
        for (name, _) in &live {
            let _ = self.terminate(name);
        }
        let wait_all = |mut rxs: Vec<watch::Receiver<bool>>| async move {
            for rx in rxs.iter_mut() {
                let _ = rx.wait_for(|done| *done).await;
            }
        };
        let rxs: Vec<_> = live.iter().map(|(_, rx)| rx.clone()).collect();
        if tokio::time::timeout(grace, wait_all(rxs)).await.is_ok() {
            return;
        }
        for (name, rx) in &live {
            if !*rx.borrow() {
                tracing::warn!(%name, "still alive after SIGTERM grace; sending SIGKILL");
                let _ = self.kill(name);
            }
        }
        let rxs: Vec<_> = live.into_iter().map(|(_, rx)| rx).collect();
        let _ = tokio::time::timeout(KILL_WAIT, wait_all(rxs)).await;
    }
}

fn open_log(spec: &ProcessSpec) -> io::Result<File> {
    if let Some(dir) = spec.log_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
}

/// Records an exit in the table (unless a newer incarnation took the name) and broadcasts it.
fn record_exit(
    shared: &Shared,
    name: &str,
    incarnation: u64,
    pid: u32,
    status: io::Result<ExitStatus>,
) {
    let (code, signal) = match &status {
        Ok(s) => (
            s.code(),
            s.signal().map(|n| {
                Signal::try_from(n)
                    .map_or_else(|_| format!("signal {n}"), |s| s.as_str().to_string())
            }),
        ),
        Err(e) => {
            tracing::warn!(%name, pid, error = %e, "waiting for the process failed");
            (None, None)
        }
    };
    let at = SystemTime::now();
    let mut expected = false;
    {
        let mut procs = shared.procs();
        if let Some(p) = procs.get_mut(name).filter(|p| p.incarnation == incarnation) {
            expected = p.expected;
            p.state = ProcState::Exited {
                pid,
                code,
                signal: signal.clone(),
                at,
            };
        }
    }
    tracing::info!(%name, pid, ?code, ?signal, expected, "process exited");
    let _ = shared.exits.send(ExitEvent {
        name: name.into(),
        pid,
        code,
        signal,
        at,
        expected,
    });
}
