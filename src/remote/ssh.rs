//! The SSH transport: the system's OpenSSH client, started by squall, one multiplexed connection per host
//! (ControlMaster/ControlPath, so the version check, the binary copy and the agent's session share one login),
//! never asking a person anything (BatchMode: key-based login only).
//!
//! Why the system client rather than an SSH crate: it is what every operator already runs and has configured
//! (keys, agents, `Host` aliases, jump hosts, ProxyCommand, known hosts), squall needs nothing from SSH but a
//! byte pipe to one remote command, and it adds no dependency to audit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::client::AgentClient;
use super::forward::{Forwards, Mux};
use super::hosts::Host;
use super::protocol::{AgentEvent, Answer, Op};

/// How long `hello` may take once the agent's session is open.
const HELLO_DEADLINE: Duration = Duration::from_secs(20);

/// How long ssh gets to exit on its own after the agent's channel failed, before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// How long the multiplexing master outlives its last session (then it exits on its own).
const CONTROL_PERSIST_SECS: u32 = 10;

/// How long a reconnect's ssh waits for the host's TCP connect and greeting (s): short, so an attempt made
/// while the host is silent ends soon and the next one follows (tester 9's finding 2).
const ATTACH_CONNECT_SECS: u32 = 2;

/// One host reached through ssh.
#[derive(Debug, Clone)]
pub struct SshHost {
    /// The host as the hosts file gives it.
    pub host: Host,
    control_dir: PathBuf,
    /// The squall executable the host must run (copied there when it differs); `None`: this one.
    exe: Option<PathBuf>,
    /// The remote forwards of its connection ([`super::forward`]), shared by every clone.
    forwards: Forwards,
}

/// A running agent: its client, its events, and the ssh process carrying it (killed when dropped).
pub struct Connection {
    /// Requests to the agent.
    pub client: AgentClient,
    /// What the agent reports on its own; ends when the connection does.
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
    /// The agent's `hello`: its pid on the host among others.
    pub hello: Answer,
    child: Child,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Why reconnecting to a host's agent failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// The host answered, but no agent runs in its directory any more (it stopped its nodes after its grace
    /// period): there is nothing to reconnect to.
    NoAgent(String),
    /// ssh or the relay failed (the host unreachable, for one); trying again may work.
    Failed(String),
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachError::NoAgent(e) | AttachError::Failed(e) => f.write_str(e),
        }
    }
}

impl From<String> for AttachError {
    fn from(e: String) -> AttachError {
        AttachError::Failed(e)
    }
}

/// `squall agent --attach`'s exit code when no agent runs in the directory.
pub const NO_AGENT_EXIT: i32 = 3;

impl Connection {
    /// The pid (on this machine) of the ssh process carrying the agent's channel.
    pub fn ssh_pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Asks the agent to stop its nodes and end, then waits (up to `deadline`) for ssh to exit; kills it if
    /// it has not.
    pub async fn shutdown(mut self, deadline: Duration) {
        let _ = self.client.call(Op::Shutdown, deadline).await;
        if tokio::time::timeout(deadline, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Checks that the OpenSSH client is installed. `Err` says what to install.
pub fn check_client() -> Result<(), String> {
    match std::process::Command::new("ssh")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot run `ssh` (the OpenSSH client), which --hosts/--host need: {e}; install it (apt-get \
             install openssh-client) or put it on PATH"
        )),
    }
}

/// A fresh private directory for the multiplexing sockets of one session (short: a socket path has a limit of
/// about 100 bytes), `/tmp/squall-ssh-PID-N`. Those of earlier sessions whose process is gone (a controller
/// killed with SIGKILL removes nothing: tester 9's finding 8) are removed first ([`remove_stale_control_dirs`]).
pub fn control_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let base = PathBuf::from("/tmp");
    remove_stale_control_dirs(&base);
    for n in 0..100u32 {
        let dir = base.join(format!("squall-ssh-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err("cannot create a directory for ssh's control sockets under /tmp".into())
}

/// Removes every `squall-ssh-PID-N` directory under `base` that this user owns and whose PID runs no process
/// (a session that ended without cleaning up: killed with SIGKILL). One whose PID lives (another session, or
/// the PID taken again by another process) is left alone; so is anything that is not such a directory.
pub fn remove_stale_control_dirs(base: &Path) {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::Uid::effective().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("squall-ssh-")) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let (Ok(pid), true) = (pid.parse::<i32>(), n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if pid <= 0 || !meta.is_dir() || meta.uid() != me {
            continue;
        }
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The cache's folder for build `build` (`squall 0.1.0 sha1:HEX` → `0.1.0-HEX`): one name per build, safe in
/// a path.
fn cache_key_of(build: &str) -> String {
    let key = build
        .strip_prefix("squall ")
        .unwrap_or(build)
        .replace(" sha1:", "-");
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `bytes` in megabytes for a person (`284 MB`; `0.4 MB` below one).
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if mb >= 1.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{mb:.1} MB")
    }
}

/// `s` quoted for a POSIX shell on the host; a leading `~/` stays unquoted so the remote shell expands it.
pub fn shell_quote(s: &str) -> String {
    let quote = |t: &str| format!("'{}'", t.replace('\'', r"'\''"));
    match s.strip_prefix("~/") {
        Some(rest) => format!("~/{}", quote(rest)),
        None => quote(s),
    }
}

impl SshHost {
    /// `host`, with its multiplexing socket in `control_dir`.
    pub fn new(host: Host, control_dir: &Path) -> SshHost {
        SshHost {
            host,
            control_dir: control_dir.to_path_buf(),
            exe: None,
            forwards: Default::default(),
        }
    }

    /// The same host, given the squall executable at `exe` to run rather than the running one (for a program
    /// that is not squall itself but drives agents: a test, an embedding).
    pub fn with_exe(mut self, exe: &Path) -> SshHost {
        self.exe = Some(exe.to_path_buf());
        self
    }

    /// The squall executable the host must run, and its build identity.
    fn local(&self) -> Result<(PathBuf, String), String> {
        match &self.exe {
            Some(exe) => Ok((exe.clone(), super::build_id_cached(exe)?)),
            None => {
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot find squall's own executable: {e}"))?;
                Ok((exe, super::build_id()?))
            }
        }
    }

    /// The agent's binary on the host.
    fn remote_bin(&self) -> String {
        format!("{}/squall", self.host.dir)
    }

    /// `ssh` with squall's options and the host's, ready for the remote command.
    fn ssh(&self, control: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-T", "-e", "none"]).args(control);
        for o in [
            "BatchMode=yes".to_string(),
            "ConnectTimeout=10".to_string(),
            "ServerAliveInterval=2".to_string(),
            "ServerAliveCountMax=3".to_string(),
            "ControlMaster=auto".to_string(),
            format!("ControlPath={}/%C", self.control_dir.display()),
            format!("ControlPersist={CONTROL_PERSIST_SECS}"),
        ] {
            c.arg("-o").arg(o);
        }
        if let Some(f) = &self.host.ssh_config {
            c.arg("-F").arg(f);
        }
        if let Some(i) = &self.host.identity {
            c.arg("-i").arg(i).arg("-o").arg("IdentitiesOnly=yes");
        }
        c.arg(&self.host.ssh);
        c.stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    /// Runs `script` on the host; `Err` when ssh cannot start or reach the host (exit 255), with ssh's own
    /// words and what to check.
    async fn run(
        &self,
        script: &str,
        input: Option<&Path>,
    ) -> Result<std::process::Output, String> {
        let mut c = self.ssh(&[]);
        c.arg(script);
        if let Some(path) = input {
            let f = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            c.stdin(Stdio::from(f));
        }
        let out = c
            .output()
            .await
            .map_err(|e| format!("cannot run ssh for host {}: {e}", self.host.label))?;
        if out.status.code() == Some(255) {
            return Err(self.unreachable(&out.stderr));
        }
        Ok(out)
    }

    fn unreachable(&self, stderr: &[u8]) -> String {
        let said = String::from_utf8_lossy(stderr);
        let said = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let said = said.as_str();
        format!(
            "cannot reach host {} over ssh ({}): {}; check the destination, that its sshd runs and that \
             key-based login works without a prompt (`ssh -o BatchMode=yes {}{}{} true`)",
            self.host.label,
            self.host.ssh,
            if said.is_empty() {
                "ssh exited with 255 and said nothing"
            } else {
                said
            },
            self.host
                .ssh_config
                .as_ref()
                .map(|f| format!("-F {} ", f.display()))
                .unwrap_or_default(),
            self.host
                .identity
                .as_ref()
                .map(|f| format!("-i {} ", f.display()))
                .unwrap_or_default(),
            self.host.ssh
        )
    }

    /// The binary of build `build` (a [`super::build_id`]) in the host's cache: `CACHE/VERSION-SHA1/squall`.
    fn cached_bin(&self, build: &str) -> String {
        format!("{}/{}/squall", self.host.cache, cache_key_of(build))
    }

    /// Makes sure the host runs this very build of squall, starts `squall agent` there and greets it. The
    /// binary the agent runs is `DIR/squall`; when it is not this build, it is linked (a hard link, else a copy
    /// on the host) from the host's cache of builds (`cache`, shared by every `dir` on the machine), and only
    /// when the cache lacks it is squall copied there over ssh (which `say` reports, with its size): once per
    /// machine, not once per `dir` (tester 9's finding 7). A copy is written under a temporary name, synced
    /// and renamed, so no half-copied binary is ever run. `Err` names the host and what to do; nothing is left
    /// running on it.
    pub async fn connect(&self, say: &(dyn Fn(String) + Sync)) -> Result<Connection, String> {
        let (exe, local) = self.local()?;
        let bin = shell_quote(&self.remote_bin());
        let dir = shell_quote(&self.host.dir);
        let cached = self.cached_bin(&local);
        let cbin = shell_quote(&cached);
        let want = shell_quote(&local);
        // A name of this copy's own: two host entries reaching one machine with one `dir` copy at once
        // (tester 7's finding 6), and a shared temporary file raced (`chmod: cannot access`, `Text file busy`).
        static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let tmp = shell_quote(&format!("{}/.squall.new.{pid}.{n}", self.host.dir));
        let ctmp = shell_quote(&format!("{cached}.new.{pid}.{n}"));
        // Into DIR from the cache: a hard link where both are on one filesystem, else a synced copy.
        let link = format!(
            "{{ ln -f {cbin} {tmp} 2>/dev/null || {{ cp {cbin} {tmp} && {{ sync {tmp} 2>/dev/null || sync; }}; }}; }} \
             && mv -f {tmp} {bin}"
        );
        let out = self
            .run(
                &format!(
                    "mkdir -p {dir} || exit 3; \
                     had=$({bin} agent --build-id 2>/dev/null); \
                     [ \"$had\" = {want} ] && {{ echo same; exit 0; }}; \
                     if [ \"$({cbin} agent --build-id 2>/dev/null)\" = {want} ]; then \
                       {{ {link}; }} || exit 4; echo linked; exit 0; fi; \
                     echo \"none $had\""
                ),
                None,
            )
            .await?;
        let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            return Err(format!(
                "host {}: cannot {} there: {}",
                self.host.label,
                if out.status.code() == Some(3) {
                    format!("create {}", self.host.dir)
                } else {
                    format!("link {cached} to {}", self.remote_bin())
                },
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if said == "linked" {
            say(format!(
                "host {}: squall of this build is in the host's cache ({cached}): linked to {}, nothing copied",
                self.host.label,
                self.remote_bin()
            ));
        } else if let Some(had) = said.strip_prefix("none") {
            let had = had.trim();
            let size = std::fs::metadata(&exe).map(|m| m.len()).unwrap_or(0);
            say(format!(
                "host {}: copying squall ({}) to {cached}, linked to {} ({local}; it had {})",
                self.host.label,
                megabytes(size),
                self.remote_bin(),
                if had.is_empty() { "none" } else { had }
            ));
            let cdir = shell_quote(cached.rsplit_once('/').map_or(cached.as_str(), |(d, _)| d));
            let cache = shell_quote(&self.host.cache);
            // Builds no `dir` links any more (their binary has one link, the cache's) go, so the cache holds
            // no more than the builds in use (and this one).
            let evict = format!(
                "for b in {cache}/*/squall; do [ \"$b\" = {cbin} ] && continue; \
                 [ -f \"$b\" ] && [ \"$(find \"$b\" -links 1 2>/dev/null)\" = \"$b\" ] \
                 && rm -rf \"${{b%/squall}}\"; done; true"
            );
            let out = self
                .run(
                    &format!(
                        "mkdir -p {cdir} && cat > {ctmp} && {{ sync {ctmp} 2>/dev/null || sync; }} \
                         && chmod 755 {ctmp} && mv -f {ctmp} {cbin} && {{ {link}; }} && {{ {evict}; }}"
                    ),
                    Some(&exe),
                )
                .await?;
            if !out.status.success() {
                return Err(format!(
                    "host {}: cannot copy squall to {cached} and link it to {}: {}; give the host a `cache` it \
                     can write (on the filesystem of its `dir`, to share one copy)",
                    self.host.label,
                    self.remote_bin(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        self.open(&format!("exec {bin} agent --dir {dir}"), &local)
            .await
            .map_err(|e| match e {
                AttachError::Failed(e) | AttachError::NoAgent(e) => e,
            })
    }

    /// Reconnects to the agent already running on the host (`squall agent --attach DIR` over a new ssh
    /// session), which kept its nodes since its last controller left: the same agent, the same node
    /// processes. `fresh_master`: close the host's multiplexing master first (a later attempt, when the old
    /// one may be dead). `Err` says why not: [`AttachError::NoAgent`] when no agent runs there any more.
    pub async fn attach(&self, fresh_master: bool) -> Result<Connection, AttachError> {
        let (_, local) = self.local()?;
        let bin = shell_quote(&self.remote_bin());
        let dir = shell_quote(&self.host.dir);
        // The old master may be dead without knowing it yet (its keep-alives take 6 s to give up): a session
        // through it waits that long and then fails (tester 9's finding 2). With `fresh_master` it is closed
        // first, so this attempt makes a new one, whose TCP connect and greeting give up after
        // ATTACH_CONNECT_SECS. (Not on a first attempt: a healthy master may serve another host entry naming
        // the same machine.)
        if fresh_master {
            self.exit_master(Duration::from_secs(1)).await;
        }
        let timeout = format!("ConnectTimeout={ATTACH_CONNECT_SECS}");
        let conn = self
            .open_with(
                &["-o", &timeout],
                &format!("exec {bin} agent --attach {dir}"),
                &local,
            )
            .await?;
        // A new master has none of the old one's forwards: the services' forward is made again (issue 24).
        for said in self.remake_forwards().await {
            tracing::warn!(host = %self.host.label, "{said}");
        }
        Ok(conn)
    }

    /// Runs `command` (an agent, or a relay to one) over ssh and greets the agent.
    async fn open(&self, command: &str, local: &str) -> Result<Connection, AttachError> {
        self.open_with(&[], command, local).await
    }

    /// [`Self::open`] with `options` (ssh's `-o` pairs) ahead of squall's own, so they take precedence.
    async fn open_with(
        &self,
        options: &[&str],
        command: &str,
        local: &str,
    ) -> Result<Connection, AttachError> {
        let mut c = self.ssh(options);
        c.arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot run ssh for host {}: {e}", self.host.label))?;
        let (stdin, stdout, stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        // The agent's diagnostics (and ssh's): kept for the error below, and logged.
        let (err_tx, mut err_rx) = mpsc::unbounded_channel::<String>();
        let label = self.host.label.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                tracing::warn!(host = %label, "{l}");
                let _ = err_tx.send(l);
            }
        });
        let (client, events) = AgentClient::new(&self.host.label, stdin, stdout);
        let hello = match client.call(Op::Hello, HELLO_DEADLINE).await {
            Ok(h) => h,
            Err(e) => {
                // Its exit code says why (255: ssh could not reach the host; 3: no agent to attach to), so it
                // gets a moment to exit on its own before it is killed.
                let status = match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
                    Ok(Ok(s)) => s.code(),
                    _ => {
                        let _ = child.kill().await;
                        child.wait().await.ok().and_then(|s| s.code())
                    }
                };
                let mut said = Vec::new();
                while let Ok(l) = err_rx.try_recv() {
                    said.push(l);
                }
                if status == Some(255) {
                    return Err(self.unreachable(said.join("\n").as_bytes()).into());
                }
                let said = if said.is_empty() {
                    String::new()
                } else {
                    format!(": {}", said.join("; "))
                };
                if status == Some(NO_AGENT_EXIT) {
                    return Err(AttachError::NoAgent(format!(
                        "host {}: no agent runs there any more{said}",
                        self.host.label
                    )));
                }
                return Err(format!(
                    "host {}: the agent did not start ({e}){said}",
                    self.host.label
                )
                .into());
            }
        };
        if let Answer::Hello { build, .. } = &hello
            && build != local
        {
            let _ = child.kill().await;
            return Err(format!(
                "host {}: the agent is build {build}, not this squall's {local} (another squall replaced it \
                 meanwhile?); run again",
                self.host.label
            )
            .into());
        }
        Ok(Connection {
            client,
            events,
            hello,
            child,
        })
    }

    /// How [`super::forward`] reaches this host's master.
    fn mux<'a>(&'a self, ssh: &'a (dyn Fn(&[&str]) -> Command + Sync)) -> Mux<'a> {
        Mux {
            ssh,
            label: &self.host.label,
            dest: &self.host.ssh,
        }
    }

    /// Forwards TCP port `local` of this machine's loopback to a port the host allocates on its own loopback
    /// (`ssh -O forward -R 127.0.0.1:0:127.0.0.1:LOCAL` through the control socket, [`super::forward`]);
    /// returns the address a program on the host connects to (`127.0.0.1:PORT`, the host's loopback). Asking
    /// again for the same `local` answers the same address. Needs the host's multiplexed connection (made by
    /// [`SshHost::connect`]). `Err` names the host and what to check.
    pub async fn forward_here(&self, local: u16) -> Result<SocketAddr, String> {
        let ssh = |args: &[&str]| self.ssh(args);
        self.forwards.forward_here(&self.mux(&ssh), local).await
    }

    /// The host's address of the forward of `local`, if one was made.
    pub fn forwarded(&self, local: u16) -> Option<SocketAddr> {
        self.forwards.forwarded(local)
    }

    /// Makes every forward again after a reconnect; what changed or failed, for a person.
    async fn remake_forwards(&self) -> Vec<String> {
        let ssh = |args: &[&str]| self.ssh(args);
        self.forwards.remake(&self.mux(&ssh)).await
    }

    /// Cancels every forward of this host (before its master closes).
    pub async fn cancel_forwards(&self) {
        let ssh = |args: &[&str]| self.ssh(args);
        self.forwards.cancel(&self.mux(&ssh)).await
    }

    /// Closes the host's multiplexing master at once (else it ends on its own shortly after its last session).
    pub async fn close_master(&self) {
        self.cancel_forwards().await;
        self.exit_master(Duration::from_secs(5)).await;
    }

    /// Asks the host's multiplexing master to exit (`ssh -O exit`), waiting at most `within`; quiet when there
    /// is none.
    async fn exit_master(&self, within: Duration) {
        let mut c = self.ssh(&["-O", "exit"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let _ = tokio::time::timeout(within, c.status()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tester 9's finding 8: a controller killed with SIGKILL left its empty `/tmp/squall-ssh-PID-0`. The next
    /// start removes those of dead processes, and only those.
    #[test]
    fn control_dirs_of_dead_processes_are_removed_and_others_kept() {
        let base = tempfile::tempdir().unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let stale = base.path().join(format!("squall-ssh-{dead_pid}-0"));
        let live = base
            .path()
            .join(format!("squall-ssh-{}-3", std::process::id()));
        let other = base.path().join(format!("squall-ssh-{dead_pid}-x"));
        for d in [&stale, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(stale.join("sock"), b"").unwrap();
        remove_stale_control_dirs(base.path());
        assert!(!stale.exists(), "{} kept", stale.display());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn a_build_s_cache_folder_is_its_version_and_hash() {
        assert_eq!(cache_key_of("squall 0.1.0 sha1:1d48881f"), "0.1.0-1d48881f");
        assert_eq!(cache_key_of("squall 0 sha1:a/b c"), "0-a_b_c");
        assert_eq!(megabytes(284_123_456), "284 MB");
        assert_eq!(megabytes(400_000), "0.4 MB");
    }

    #[test]
    fn shell_quoting_keeps_quotes_and_a_home_prefix() {
        assert_eq!(shell_quote("/var/tmp/squall"), "'/var/tmp/squall'");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(shell_quote("~/squall"), "~/'squall'");
    }
}
