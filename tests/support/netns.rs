//! Real hosts for the tests of nodes on other machines (issue 24): a small world of Linux network namespaces,
//! each a "host" with its own address and its own `sshd`, reached from the test (the controller) over real
//! TCP, as `squall up --hosts` reaches real machines.
//!
//! ## The world
//! ```text
//!   root namespace (the test, the controller, ssh, the workload client, `squall status`)
//!     sqwN-r  10.77.N.254/24 ──veth──┐
//!                                    │   namespace sqwN-br: bridge br0, no address of its own
//!                                    ├── ctl   (the root namespace's cable)
//!                                    ├── h1 ──veth── namespace sqwN-h1: eth0 10.77.N.1/24, lo; sshd -D on :22
//!                                    ├── h2 ──veth── namespace sqwN-h2: eth0 10.77.N.2/24, lo; sshd -D on :22
//!                                    └── ...
//! ```
//! - **Addresses.** Every world has a /24 of its own, `10.77.N.0/24` with N in 1..=250: the hosts are `.1`,
//!   `.2`, ..., the controller `.254`. No other address is assigned anywhere, and N is only taken when the
//!   root namespace has no address or route inside `10.77.N.0/24` (a world never shadows a real network).
//! - **Unique names, parallel tests.** N is held by an advisory lock on `/tmp/squall-netns/N.lock` for the
//!   world's life (the kernel drops it when the test process dies, however it dies), so parallel tests, and
//!   tests of parallel `cargo test` runs, never share a subnet or a name. Every name carries N: namespaces
//!   `sqwN-br`, `sqwN-hI`, the root interface `sqwN-r`. Leftovers of a killed run under a free N are removed
//!   before N is used again.
//! - **The controller's route.** The test, `ssh`, the workload client and `squall status` run in the root
//!   namespace: the veth `sqwN-r` (in the root namespace, address `.254`) has its other end `ctl` on the
//!   bridge, so the kernel's connected route `10.77.N.0/24 dev sqwN-r` reaches every host, and the hosts reach
//!   the controller at `.254`. Nothing else in the root namespace changes (no forwarding, no NAT, no bridge).
//! - **The bridge** lives in a namespace of its own, so it never touches the root namespace's interfaces.
//! - **sshd.** Each host runs Debian's `/usr/sbin/sshd -D` on its own address (port 22 of its namespace),
//!   entered with `nsenter --net` (only the network namespace: processes, files and mounts are shared with
//!   the root namespace, so a test sees a host's processes in `/proc` and its FUSE mounts in
//!   `/proc/self/mountinfo`). Keys are the test's own (`ssh-keygen` in the world's temp dir): a host key, and
//!   one user key authorised for root. Key-based login only (no password, no PAM).
//! - **ssh client config.** [`World::ssh_config`] has an alias per host, `host1`, `host2`, ... with its
//!   address, user root, the identity, and no known-hosts file (the host keys are new every run). A hosts
//!   file points at it with `ssh_config` ([`World::hosts_file`] writes one).
//! - **Tear-down.** Dropping the world (also while a failed test unwinds) kills every process left in each
//!   host's namespace (agents, nodes, sshd and its sessions), lazily unmounts anything mounted under the
//!   world's directory, deletes the root interface and every namespace, then the temp dir; the lock goes last.
//!
//! ## Where it cannot run
//! Without root, `ip` (iproute2), `nsenter` (util-linux) or a working `ip netns add`, [`world`] prints
//! "skipped: needs root for network namespaces (why)" and returns `None`, and the test passes; without sshd,
//! "skipped: needs /usr/sbin/sshd (...)". With `CI=true` both panic instead, so CI really runs these tests
//! (`.ci/run` installs openssh-server and iproute2, and runs as root or with sudo).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the per-subnet locks live.
const LOCK_DIR: &str = "/tmp/squall-netns";

/// One host of a [`World`]: a network namespace with an address and an sshd.
#[derive(Debug)]
pub struct Host {
    /// The ssh alias of [`World::ssh_config`] (and the host's label in squall's messages): `host1`, ...
    pub alias: String,
    /// The network namespace's name (`sqwN-hI`).
    pub ns: String,
    /// The host's address.
    pub addr: Ipv4Addr,
    /// The host's directory (its agent's `dir`): under the world's temp dir, so shared with the test.
    pub dir: PathBuf,
    sshd: Option<Child>,
}

/// A set of hosts on one bridge, reachable from the test; torn down on drop. See the module doc.
#[derive(Debug)]
pub struct World {
    /// The subnet's third byte: hosts are `10.77.N.I`.
    pub n: u8,
    hosts: Vec<Host>,
    dir: tempfile::TempDir,
    _lock: File,
}

/// Why a world cannot be built on this machine (a skip, not a failure).
struct Skip(String);

/// A world of `hosts` hosts, each with its sshd accepting the test's key; `None` when this machine cannot
/// build one (said on standard error), which fails the test instead when `CI=true`.
pub fn world(hosts: usize) -> Option<World> {
    match World::new(hosts) {
        Ok(w) => Some(w),
        Err(Skip(why)) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{}; CI=true, so this fails instead of skipping: run it as root on a machine with \
                     iproute2, util-linux and openssh-server (.ci/run installs them)",
                    why.replacen("skipped: ", "cannot run: ", 1)
                );
            }
            eprintln!("{why}");
            None
        }
    }
}

fn skip_root(why: impl std::fmt::Display) -> Skip {
    Skip(format!(
        "skipped: needs root for network namespaces ({why})"
    ))
}

/// The first of `names` not found on PATH.
fn missing_tool(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .find(|n| !std::env::split_paths(&path).any(|d| d.join(n).is_file()))
        .map(|n| n.to_string())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Runs `ip ARGS`; `Err` with its words when it fails.
fn ip_try(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`; panics with its words when it fails.
fn ip(args: &[&str]) -> String {
    ip_try(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The destination prefix of one line of `ip -4 route show table all` (after its type, if it names one);
/// `None` for the default route.
fn route_destination(line: &str) -> Option<&str> {
    const TYPES: [&str; 9] = [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
    ];
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let dest = if TYPES.contains(&first) {
        words.next()?
    } else {
        first
    };
    (dest != "default").then_some(dest)
}

/// Whether the IPv4 prefix `net` (`a.b.c.d/len`, or one address) overlaps `10.77.n.0/24`.
pub fn overlaps(net: &str, n: u8) -> bool {
    let (addr, len) = match net.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().unwrap_or(32)),
        None => (net, 32),
    };
    let Ok(addr) = addr.parse::<Ipv4Addr>() else {
        return false;
    };
    let ours = u32::from(Ipv4Addr::new(10, 77, n, 0));
    // Two prefixes overlap when they agree on the shorter one's bits.
    let bits = len.min(24);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(addr) & mask) == (ours & mask)
}

/// Kills every process in network namespace `ns` until none is left (up to 10 s); the ones left.
fn kill_all_in(ns: &str) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = ns_pids(ns);
        if pids.is_empty() || Instant::now() > deadline {
            return pids;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live processes in network namespace `ns` (`ip netns pids`, which leaves zombies out).
fn ns_pids(ns: &str) -> Vec<u32> {
    ip_try(&["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| super::alive(*p))
        .collect()
}

/// Mount points (from `/proc/self/mountinfo`, which every host shares) at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.display().to_string();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

impl World {
    fn new(count: usize) -> Result<World, Skip> {
        assert!((1..=250).contains(&count), "1 to 250 hosts, not {count}");
        if !is_root() {
            return Err(skip_root("not running as root"));
        }
        if let Some(tool) = missing_tool(&["ip", "nsenter"]) {
            return Err(skip_root(format!(
                "`{tool}` is not installed: apt-get install iproute2 util-linux"
            )));
        }
        if !Path::new("/usr/sbin/sshd").exists() || missing_tool(&["ssh", "ssh-keygen"]).is_some() {
            return Err(Skip(
                "skipped: needs /usr/sbin/sshd, ssh and ssh-keygen (apt-get install openssh-server \
                 openssh-client)"
                    .into(),
            ));
        }
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd")
            .map_err(|e| skip_root(format!("cannot create /run/sshd: {e}")))?;
        let (n, lock) = Self::take_subnet()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("squall-netns-{n}-"))
            .tempdir()
            .expect("a temp dir");
        let mut world = World {
            n,
            hosts: Vec::new(),
            dir,
            _lock: lock,
        };
        // From here on a failure is the test's, and the drop removes whatever was made.
        let bridge = world.bridge_ns();
        ip_try(&["netns", "add", &bridge]).map_err(skip_root)?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge, "link", "set", "br0", "up"]);
        let root_if = world.root_if();
        ip(&[
            "link", "add", &root_if, "type", "veth", "peer", "name", "ctl", "netns", &bridge,
        ]);
        ip(&["-n", &bridge, "link", "set", "ctl", "master", "br0", "up"]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", world.controller_addr()),
            "dev",
            &root_if,
        ]);
        ip(&["link", "set", &root_if, "up"]);
        world.write_keys_and_configs(count);
        for i in 1..=count {
            let ns = format!("sqw{n}-h{i}");
            ip(&["netns", "add", &ns]);
            let cable = format!("h{i}");
            ip(&[
                "-n", &bridge, "link", "add", &cable, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip(&["-n", &bridge, "link", "set", &cable, "master", "br0", "up"]);
            let addr = Ipv4Addr::new(10, 77, n, i as u8);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let dir = world.dir.path().join(format!("host{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            world.hosts.push(Host {
                alias: format!("host{i}"),
                ns,
                addr,
                dir,
                sshd: None,
            });
        }
        for i in 0..count {
            world.start_sshd(i);
        }
        eprintln!(
            "netns world {n}: hosts {} (controller {}), files in {}",
            world
                .hosts
                .iter()
                .map(|h| format!("{}={}", h.alias, h.addr))
                .collect::<Vec<_>>()
                .join(" "),
            world.controller_addr(),
            world.dir.path().display()
        );
        Ok(world)
    }

    /// Takes a free subnet number and its lock, removing a killed run's leftovers under it.
    fn take_subnet() -> Result<(u8, File), Skip> {
        std::fs::create_dir_all(LOCK_DIR)
            .map_err(|e| skip_root(format!("cannot create {LOCK_DIR}: {e}")))?;
        let addrs = ip_try(&["-4", "-o", "addr", "show"]).map_err(skip_root)?;
        let routes = ip_try(&["-4", "route", "show", "table", "all"]).map_err(skip_root)?;
        let netns = ip_try(&["netns", "list"]).map_err(skip_root)?;
        for n in 1..=250u8 {
            let file = File::create(format!("{LOCK_DIR}/{n}.lock"))
                .map_err(|e| skip_root(format!("cannot create a lock in {LOCK_DIR}: {e}")))?;
            if file.try_lock().is_err() {
                continue;
            }
            let ours = format!("sqw{n}-r");
            // Anything of ours under N is a leftover: N's lock was free, so no live world owns it.
            for ns in netns.lines().filter_map(|l| l.split_whitespace().next()) {
                if ns.starts_with(&format!("sqw{n}-")) {
                    kill_all_in(ns);
                    let _ = ip_try(&["netns", "del", ns]);
                }
            }
            let _ = ip_try(&["link", "del", &ours]);
            // Anything else inside 10.77.N.0/24 is someone's real network: leave N alone.
            let taken = addrs
                .lines()
                .filter(|l| !l.contains(&ours))
                .filter_map(|l| l.split_whitespace().nth(3))
                .chain(
                    routes
                        .lines()
                        .filter(|l| !l.contains(&ours))
                        .filter_map(route_destination),
                )
                .any(|net| overlaps(net, n));
            if !taken {
                return Ok((n, file));
            }
        }
        Err(Skip(
            "skipped: no free subnet 10.77.N.0/24 (N 1 to 250) for a test network".into(),
        ))
    }

    fn bridge_ns(&self) -> String {
        format!("sqw{}-br", self.n)
    }

    fn root_if(&self) -> String {
        format!("sqw{}-r", self.n)
    }

    /// The host key, the user key (authorised for root), sshd's config and the client's config.
    fn write_keys_and_configs(&self, count: usize) {
        let p = self.dir.path();
        for key in ["hostkey", "userkey"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "squall-test", "-f"])
                .arg(p.join(key))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ssh-keygen {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::copy(p.join("userkey.pub"), p.join("authorized_keys")).unwrap();
        std::fs::write(
            p.join("sshd_config"),
            format!(
                "HostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 UsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 100\n",
                p.display()
            ),
        )
        .unwrap();
        let mut config = String::new();
        for i in 1..=count {
            config.push_str(&format!(
                "Host host{i}\n  HostName {}\n  User root\n  Port 22\n  IdentityFile {}/userkey\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  \
                 LogLevel ERROR\n  ConnectTimeout 5\n\n",
                Ipv4Addr::new(10, 77, self.n, i as u8),
                p.display()
            ));
        }
        std::fs::write(p.join("ssh_config"), config).unwrap();
    }

    /// The world's temp dir (keys, configs, hosts files, each host's directory).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The controller's address on the bridge (the root namespace's end): `10.77.N.254`.
    pub fn controller_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.n, 254)
    }

    /// Host `i` (0-based; its alias is `host{i+1}`).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Every host.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The ssh client configuration with one alias per host.
    pub fn ssh_config(&self) -> PathBuf {
        self.path().join("ssh_config")
    }

    /// The private key every host's sshd accepts for root.
    pub fn identity(&self) -> PathBuf {
        self.path().join("userkey")
    }

    /// Writes a hosts file (issue 24's format) with one `[[host]]` per entry of `nodes` (host `i` runs
    /// `nodes[i]`; an empty list leaves the host out): its alias through [`World::ssh_config`], its
    /// directory and its address, and the world's one `cache` of squall binaries (every host is this
    /// machine: one copy, in the world's directory, gone with it). Returns its path.
    pub fn hosts_file(&self, nodes: &[&[u64]]) -> PathBuf {
        assert!(nodes.len() <= self.hosts.len(), "more entries than hosts");
        let mut text = String::new();
        for (h, nodes) in self.hosts.iter().zip(nodes).filter(|(_, n)| !n.is_empty()) {
            text.push_str(&format!(
                "[[host]]\nssh = \"{}\"\nssh_config = \"{}\"\ndir = \"{}\"\naddress = \"{}\"\ncache = \"{}\"\n\
                 nodes = {nodes:?}\n\n",
                h.alias,
                self.ssh_config().display(),
                h.dir.display(),
                h.addr,
                self.path().join("cache").display()
            ));
        }
        let f = self.path().join("hosts.toml");
        std::fs::write(&f, text).unwrap();
        f
    }

    /// `ssh` to host `i` with the world's config, in batch mode, ready for a remote command.
    pub fn ssh(&self, i: usize) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.ssh_config())
            .args(["-T", "-o", "BatchMode=yes"])
            .arg(&self.hosts[i].alias);
        c
    }

    /// A command run inside host `i`'s network namespace (`nsenter --net`; everything else shared).
    pub fn exec(&self, i: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.hosts[i].ns))
            .arg("--")
            .arg(program);
        c
    }

    /// Starts host `i`'s sshd (if it is not running) and waits until it accepts the test's key.
    pub fn start_sshd(&mut self, i: usize) {
        if self.hosts[i].sshd.is_some() {
            return;
        }
        let log = self
            .path()
            .join(format!("sshd-{}.log", self.hosts[i].alias));
        let mut c = self.exec(i, "/usr/sbin/sshd");
        c.args(["-D", "-f"])
            .arg(self.path().join("sshd_config"))
            .arg("-o")
            .arg(format!("ListenAddress={}:22", self.hosts[i].addr))
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("nsenter sshd");
        let addr = SocketAddr::from((self.hosts[i].addr, 22));
        let deadline = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "sshd of {} exited ({status}): {}",
                    self.hosts[i].alias,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(_) => break None,
                Err(e) if Instant::now() > deadline => break Some(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        self.hosts[i].sshd = Some(child);
        if let Some(e) = seen {
            panic!(
                "sshd of {} never listened on {addr} within 15 s (last: {e}): {}",
                self.hosts[i].alias,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let out = self
            .ssh(i)
            .arg("true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh {} true failed ({}): {}\nsshd log: {}",
            self.hosts[i].alias,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops host `i`'s listening sshd, as `systemctl stop ssh` does: new connections are refused, sessions
    /// already open go on (see [`World::drop_ssh_sessions`]).
    pub fn stop_sshd(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The pid of host `i`'s listening sshd, while it runs.
    pub fn sshd_pid(&self, i: usize) -> Option<u32> {
        self.hosts[i].sshd.as_ref().map(Child::id)
    }

    /// Kills every sshd session process of host `i` (what a host that went down takes with it): each open
    /// ssh connection to it ends.
    pub fn drop_ssh_sessions(&self, i: usize) {
        let listener = self.hosts[i].sshd.as_ref().map(Child::id);
        for p in ns_pids(&self.hosts[i].ns) {
            if Some(p) == listener {
                continue;
            }
            let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
            if exe == Path::new("/usr/sbin/sshd") || exe.ends_with("sshd-session") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Unplugs (`false`) or plugs back in (`true`) host `i`'s cable on the bridge: with it out, nothing
    /// reaches the host and the host reaches nothing; no process notices until it sends.
    pub fn cable(&self, i: usize, plugged: bool) {
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &format!("h{}", i + 1),
            if plugged { "up" } else { "down" },
        ]);
    }

    /// The live processes in host `i`'s namespace, its listening sshd left out.
    pub fn processes(&self, i: usize) -> Vec<u32> {
        let listener = self.hosts[i].sshd.as_ref().map(Child::id);
        ns_pids(&self.hosts[i].ns)
            .into_iter()
            .filter(|p| Some(*p) != listener)
            .collect()
    }

    /// Each process left in host `i`'s namespace (its listening sshd left out), with its command line.
    pub fn describe_processes(&self, i: usize) -> Vec<String> {
        self.processes(i)
            .into_iter()
            .map(|p| {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                format!(
                    "{p} {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ").trim()
                )
            })
            .collect()
    }

    /// Polls until no process but the listening sshd is left in any host's namespace, up to `timeout`;
    /// what is left at the deadline (host alias and process), empty when all are gone.
    pub fn wait_hosts_empty(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left: Vec<String> = (0..self.hosts.len())
                .flat_map(|i| {
                    self.describe_processes(i)
                        .into_iter()
                        .map(move |p| format!("host{}: {p}", i + 1))
                })
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every mount at or under the world's directory (the hosts' directories among them): every host shares
    /// the root namespace's mounts, so this is every mount any host made there.
    pub fn mounts(&self) -> Vec<String> {
        mounts_under(self.path())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for i in 0..self.hosts.len() {
            self.stop_sshd(i);
        }
        for h in &self.hosts {
            let left = kill_all_in(&h.ns);
            if !left.is_empty() {
                eprintln!(
                    "netns world {}: processes {left:?} in {} would not die",
                    self.n, h.ns
                );
            }
        }
        // Deepest first, so a mount inside another comes off before it.
        let mut mounts = mounts_under(self.path());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount")
                .args(["-l", &m])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = ip_try(&["link", "del", &self.root_if()]);
        for ns in self
            .hosts
            .iter()
            .map(|h| h.ns.clone())
            .chain([self.bridge_ns()])
        {
            if let Err(e) = ip_try(&["netns", "del", &ns]) {
                eprintln!("netns world {}: {e}", self.n);
            }
        }
    }
}
