//! Nodes on other machines (issue 24) through a real OpenSSH: every "host" is a directory on this machine
//! reached through an ssh `Host` alias whose `ProxyCommand` runs `/usr/sbin/sshd -i` with the test's own
//! config, host key and authorized key (a real sshd per connection, in inetd mode: no listening port).
//! Tests that need sshd skip with a message where it is not installed (`.ci/run` installs it).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::agent::{
    Agent, launch_squall_node, launch_squall_node_with, leader, read_addrs, squall_node_args,
};

/// Where the nodes of these tests listen: every "host" is this machine.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const SQUALL: &str = env!("CARGO_BIN_EXE_squall");

/// A private sshd setup: keys, sshd_config, and an ssh_config with aliases `host-a`, `host-b` (real sshd) and
/// `host-down` (ssh exits 255).
struct Sshd {
    dir: tempfile::TempDir,
}

impl Sshd {
    /// `None` (with a message) when sshd cannot run here.
    fn new() -> Option<Sshd> {
        if !Path::new("/usr/sbin/sshd").exists() || which("ssh-keygen").is_none() {
            eprintln!(
                "SKIP: /usr/sbin/sshd or ssh-keygen is missing (apt-get install openssh-server openssh-client)"
            );
            return None;
        }
        // sshd refuses to start without its privilege separation directory; root may create it.
        if !Path::new("/run/sshd").exists() && std::fs::create_dir_all("/run/sshd").is_err() {
            eprintln!(
                "SKIP: /run/sshd is missing and cannot be created (sshd needs it; run as root)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for key in ["hostkey", "userkey"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(p.join(key))
                .status()
                .unwrap();
            assert!(st.success(), "ssh-keygen {key}");
        }
        std::fs::copy(p.join("userkey.pub"), p.join("authorized_keys")).unwrap();
        std::fs::write(
            p.join("sshd_config"),
            format!(
                "HostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\nLogLevel ERROR\n",
                p.display()
            ),
        )
        .unwrap();
        let alias = |name: &str, proxy: &str| {
            format!(
                "Host {name}\n  ProxyCommand {proxy}\n  IdentityFile {}/userkey\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  LogLevel ERROR\n",
                p.display()
            )
        };
        let sshd = format!("/usr/sbin/sshd -i -f {}/sshd_config", p.display());
        std::fs::write(
            p.join("ssh_config"),
            [
                alias("host-a", &sshd),
                alias("host-b", &sshd),
                alias("host-down", "false"),
            ]
            .concat(),
        )
        .unwrap();
        Some(Sshd { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("ssh_config")
    }

    /// The `cache` of squall binaries [`Sshd::hosts_file`] gives host `alias`.
    fn cache(&self, alias: &str) -> PathBuf {
        self.path().join(format!("cache-{alias}"))
    }

    /// An agent on host `alias`, in `dir`, over ssh, with `flags` added to its command line.
    fn agent_with(&self, alias: &str, dir: &Path, flags: &str) -> Agent {
        let mut ssh = Command::new("ssh");
        ssh.arg("-F")
            .arg(self.config())
            .args(["-T", "-o", "BatchMode=yes", alias]);
        Agent::over_ssh_with(ssh, dir, flags)
    }

    /// A hosts file: each `(alias, subdir, nodes)` one `[[host]]`, each alias with a `cache` of its own (as
    /// if each were its own machine).
    fn hosts_file(&self, hosts: &[(&str, &str, &[u64])]) -> PathBuf {
        let mut text = String::new();
        for (alias, sub, nodes) in hosts {
            text.push_str(&format!(
                "[[host]]\nssh = \"{alias}\"\nssh_config = \"{}\"\ndir = \"{}\"\ncache = \"{}\"\n\
                 nodes = {nodes:?}\n\n",
                self.config().display(),
                self.path().join(sub).display(),
                self.cache(alias).display()
            ));
        }
        let f = self.path().join("hosts.toml");
        std::fs::write(&f, text).unwrap();
        f
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The pids of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
            && support::alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

impl Sshd {
    /// Asserts that within 15 s no live process mentions this server's directory (every agent, node and ssh
    /// of a session gone); `after` says after what, for the failure message.
    fn assert_nothing_left(&self, after: &str) {
        let left = wait_none_mention(&self.path().display().to_string(), Duration::from_secs(15));
        assert!(left.is_empty(), "still running {after}: {left:?}");
    }
}

/// Starts `squall up --headless ARGS` on the cluster directory `dir`, waiting up to `wait` for each step.
fn up_in(args: &[&str], dir: PathBuf, wait: Duration) -> support::session::Session {
    support::session::Up::new(args).wait(wait).dir(dir).start()
}

/// Polls until no live process mentions `needle`; the ones left at the deadline.
fn wait_none_mention(needle: &str, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_host_ssh_cannot_reach_is_refused_with_exit_2_naming_it_and_nothing_left() {
    if which("ssh").is_none() {
        eprintln!("SKIP: no ssh client (apt-get install openssh-client)");
        return;
    }
    // No sshd needed: the alias's ProxyCommand fails, so ssh exits 255 as for an unreachable host.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    std::fs::write(&config, "Host host-down\n  ProxyCommand false\n").unwrap();
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(
        &hosts,
        format!(
            "[[host]]\nssh = \"host-down\"\nssh_config = \"{}\"\ndir = \"{}/a\"\nnodes = [1, 2, 3]\n",
            config.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new(SQUALL)
        .args(["up", "--headless", "--hosts"])
        .arg(&hosts)
        .arg("--dir")
        .arg(dir.path().join("cluster"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains("cannot reach host host-down over ssh"),
        "stderr: {err}"
    );
    assert!(
        err.contains(&format!(
            "BatchMode=yes -F {} host-down true",
            config.display()
        )),
        "stderr: {err}"
    );
    // Nothing was started, and the session's ssh control directory is gone.
    assert!(!dir.path().join("cluster").join("node-1").exists());
    let control = format!("/tmp/squall-ssh-{pid}-0");
    assert!(!Path::new(&control).exists(), "{control} left behind");
}

#[test]
fn without_an_ssh_client_hosts_are_refused_with_exit_2_saying_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = support::ended(
        Command::new(SQUALL)
            .args(["up", "--headless", "--host", "1=a,2=a,3=b", "--dir"])
            .arg(dir.path().join("cluster"))
            .env("PATH", dir.path()),
    );
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains("cannot run `ssh` (the OpenSSH client)"),
        "stderr: {err}"
    );
    assert!(
        err.contains("apt-get install openssh-client"),
        "stderr: {err}"
    );
}

#[test]
fn a_bad_hosts_file_is_refused_with_exit_2_naming_its_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(
        &hosts,
        "[[host]]\nssh = \"a\"\nnodes = [1, 2]\n\n[[host]]\nssh = \"b\"\nnodes = [2, 3]\n",
    )
    .unwrap();
    let (code, err) = support::up_ended(&["--hosts", hosts.to_str().unwrap()], None);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "{}:7: `nodes`: node 2 is on two hosts",
            hosts.display()
        )),
        "stderr: {err}"
    );
}

/// `--disk-faults` with `--hosts` asks every host what it can serve before any node starts (issue 24): a host
/// that cannot (here host-b, whose directory has a directory where squall's time shim must go, so the shim
/// cannot be installed even by root) is refused with exit 2 naming it and why; the host that can is not
/// named, no node directory is made, and no agent is left running.
#[test]
fn disk_faults_on_a_host_that_cannot_serve_them_are_refused_with_exit_2_naming_the_host() {
    let Some(sshd) = Sshd::new() else { return };
    let blocked = sshd.path().join("b").join("time-shim.so");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"not a shim").unwrap();
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let out = Command::new(SQUALL)
        .args(["up", "--headless", "--disk-faults", "--hosts"])
        .arg(&hosts)
        .arg("--dir")
        .arg(sshd.path().join("cluster"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains("host host-b cannot serve clock faults: cannot install squall's time shim")
            && err.contains("drop --disk-faults, or fix those hosts"),
        "stderr: {err}"
    );
    assert!(!err.contains("host host-a cannot"), "stderr: {err}");
    for n in 1..=3 {
        for sub in ["a", "b"] {
            let made = std::fs::read_dir(sshd.path().join(sub))
                .unwrap()
                .flatten()
                .any(|e| e.path().join(format!("node-{n}")).exists());
            assert!(!made, "node {n}'s directory was made on {sub}");
        }
    }
    sshd.assert_nothing_left("after the refusal");
}

/// The `dropped` count of a `links:` line (`links: 1->2 frames 9 bytes 900 dropped 4 …`).
fn dropped_on(line: &str) -> u64 {
    let w: Vec<&str> = line.split_whitespace().collect();
    let at = w
        .iter()
        .position(|x| *x == "dropped")
        .expect("a dropped count");
    w[at + 1].parse().expect("a number")
}

/// `squall up --headless --hosts FILE` runs the cluster through the agents (issue 24): 3 nodes on 2 hosts
/// (node 1 on host-a, nodes 2 and 3 on host-b), the lin-kv workload from the controller, a leader killed and
/// replaced, a cut on a link whose sender is on the other host than its receiver, a hold stepped on such a
/// link, a partition, a heal, a passing check; `quit` leaves no agent and no node anywhere. The second `up`
/// finds this very build on the hosts and copies nothing.
#[test]
fn up_with_hosts_runs_the_cluster_through_the_agents_and_leaves_nothing_running() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let cdir = sshd.path().join("cluster");
    let wait = Duration::from_secs(60);
    let args = [
        "--hosts",
        hosts.to_str().unwrap(),
        "--workload",
        "lin-kv",
        "--seed",
        "24",
    ];
    let mut s = up_in(&args, cdir.clone(), wait);
    for (alias, sub) in [("host-a", "a"), ("host-b", "b")] {
        let (copied, linked) = (
            format!("host {alias}: copying squall ("),
            format!(
                "/squall, linked to {}/squall (",
                sshd.path().join(sub).display()
            ),
        );
        assert!(
            s.out
                .seen
                .iter()
                .any(|l| l.contains(&copied) && l.contains(&linked)),
            "no `{copied}` … `{linked}`:\n{}",
            s.out.seen.join("\n")
        );
        assert!(
            s.out
                .seen
                .iter()
                .any(|l| l.contains(&format!("host {alias}: agent pid"))),
            "{}",
            s.out.seen.join("\n")
        );
    }
    // Tester 9's finding 8d: `--workload lin-kv` said the workload was off, then that it was on; one true line.
    if !s.out.seen.iter().any(|l| l.contains("workload on at ")) {
        s.out.wait_for("workload on", wait, |l| {
            l.contains("workload on at ").then_some(())
        });
    }
    let said = s.out.seen.join("\n");
    assert!(said.contains("workload lin-kv: "), "{said}");
    assert!(!said.contains("the workload is off"), "{said}");
    // Every node runs on its host, in the agent's directory there (the cluster's folder under it, named in
    // the cluster directory's `hosts-dir`), a child of that host's agent.
    let folder = hosts_folder(&cdir);
    for (sub, n) in [("a", 1), ("b", 2), ("b", 3)] {
        let node_dir = sshd
            .path()
            .join(sub)
            .join(&folder)
            .join(format!("node-{n}"));
        assert!(
            node_dir.join("addr.json").is_file(),
            "node {n} did not report its ports in {}",
            node_dir.display()
        );
        assert!(
            !cdir.join(format!("node-{n}")).exists(),
            "node {n} ran here"
        );
    }

    let kill = s.ask("kill leader", "kill node");
    let (old, term) =
        support::killed_leader(&kill).expect("the kill names the leader and its term");
    s.out.wait_for("a new leader in a higher term", wait, |l| {
        support::leader_term(l).filter(|(n, t)| *n != old && *t > term)
    });
    s.ask(&format!("restart {old}"), &format!("restart node {old}"));

    // A link from the leader to a follower on the other host: its sender's frames cross hosts (node 1 on
    // host-a, nodes 2 and 3 on host-b), and it carries traffic (appends, heartbeats) all the time.
    let (l, _) = s.current_leader();
    let f = if l == 1 { 2 } else { 1 };
    let link = format!("{l}->{f}");
    let dropped = |s: &mut support::session::Session| {
        let line = s
            .listing("links", "links:")
            .into_iter()
            .find(|x| x.starts_with(&format!("{link} ")))
            .unwrap_or_else(|| panic!("link {link} not listed"));
        (dropped_on(&line), line)
    };
    let cut = s.ask(&format!("cut {link}"), &format!("cut {link}"));
    let (before, _) = dropped(&mut s);
    let deadline = Instant::now() + wait;
    loop {
        let (now, line) = dropped(&mut s);
        if now > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cut dropped nothing on {link}: {line}\n{}",
            s.out.seen.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s.ok(&format!("heal {}", support::session::fault_id(&cut)));

    // A hold on the same cross-host link: its frames wait, `step` delivers the oldest.
    s.ask(&format!("hold {link}"), &format!("hold {link}"));
    let deadline = Instant::now() + wait;
    loop {
        let held = s.listing("held", "held:");
        if held.iter().any(|x| x.contains(&link)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing held on {link}: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stepped = s.ask(&format!("step {link} 1"), &format!("deliver {link}"));
    assert!(
        stepped.starts_with(&format!("ok: deliver {link} ")),
        "{stepped}"
    );
    s.ok("heal");

    s.ask("partition halves", "partition");
    s.ok("heal");
    // The lin-kv history, recorded by the clients here, is judged here.
    let verdict = s.answer("check");
    assert!(
        verdict.starts_with("ok: linearizability check passed"),
        "{verdict}"
    );
    let dir = s.quit();
    sshd.assert_nothing_left("after quit");
    drop(dir);

    // The second time the hosts hold this very build: nothing is copied, and the cluster starts again.
    let s = up_in(&args, cdir, wait);
    assert!(
        !s.out.seen.iter().any(|l| l.contains("copying squall")),
        "{}",
        s.out.seen.join("\n")
    );
    s.quit();
    let left = wait_none_mention(&sshd.path().display().to_string(), Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "still running after the second quit: {left:?}"
    );
}

/// The cluster's folder under each host's `dir`, as the cluster directory `cdir` names it.
fn hosts_folder(cdir: &Path) -> String {
    let f = cdir.join("hosts-dir");
    let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    text.trim().to_string()
}

/// Whether every node of the session started on an empty data directory (its feed's first words about it);
/// the lines seen when one did not.
/// Asserts that the resumed session `s` started nodes 1–3 on their data (not empty), quits it, and waits until no
/// process mentions `sshd`'s directory.
fn resumed_on_its_data_then_quit(mut s: support::session::Session, sshd: &Sshd) {
    assert!(
        started_empty(&mut s, &[1, 2, 3]).is_err(),
        "the resumed cluster started on empty node directories"
    );
    s.quit();
    sshd.assert_nothing_left("after quit");
}

fn started_empty(s: &mut support::session::Session, nodes: &[u64]) -> Result<(), Vec<String>> {
    let mut not = Vec::new();
    for n in nodes {
        let started = |l: &str| l.contains(&format!("n{n} started")).then(|| l.to_string());
        let line = match s.out.seen.iter().find_map(|l| started(l)) {
            Some(l) => l,
            None => s.out.wait_for(&format!("n{n} started"), s.wait, started),
        };
        if !line.contains(&format!("n{n} started with an empty data dir")) {
            not.push(line);
        }
    }
    if not.is_empty() { Ok(()) } else { Err(not) }
}

/// Tester 7's finding 2 (issue 24): a cluster directory deleted and made again under the same name (as every
/// `squall run` bundle's `cluster`) is a fresh cluster: its nodes start on empty data directories on their
/// hosts, never on the data the earlier cluster of that name left there; the same directory resumed starts on
/// its own data again.
#[test]
fn a_fresh_cluster_directory_of_an_earlier_ones_name_starts_on_empty_node_dirs_on_the_hosts() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let cdir = sshd.path().join("c1");
    let wait = Duration::from_secs(60);
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let up = || up_in(&args, cdir.clone(), wait);
    let mut s = up();
    started_empty(&mut s, &[1, 2, 3]).unwrap_or_else(|l| panic!("first session: {l:?}"));
    let first = hosts_folder(&cdir);
    s.quit();
    // The same directory again: its nodes find their data.
    let mut s = up();
    let resumed = started_empty(&mut s, &[1, 2, 3]);
    assert!(
        resumed.is_err(),
        "a resumed cluster started on empty node directories"
    );
    assert_eq!(hosts_folder(&cdir), first);
    s.quit();
    std::fs::remove_dir_all(&cdir).unwrap();
    let mut s = up();
    let second = hosts_folder(&cdir);
    started_empty(&mut s, &[1, 2, 3]).unwrap_or_else(|l| {
        panic!(
            "the re-made {} started on earlier data: {l:?}",
            cdir.display()
        )
    });
    assert_ne!(second, first, "both clusters use one folder on the hosts");
    s.quit();
    sshd.assert_nothing_left("after quit");
}

/// Tester 9's finding 1 (issue 24): two cluster directories of one name (`A/cc`, `B/cc`) on the same hosts get
/// folders of their own there, and each resume finds its own folder and its nodes' data. (The old rule's
/// failure, both getting `cc`, is seen in `cluster::files`'s unit test: it needed a directory that was not
/// starting for the first time and had no `hosts-dir`.)
#[test]
fn two_cluster_directories_of_one_name_get_their_own_folders_on_a_host_and_each_resume_finds_its_own()
 {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let up = |cdir: &Path| up_in(&args, cdir.to_path_buf(), Duration::from_secs(60));
    let dirs = [sshd.path().join("A/cc"), sshd.path().join("B/cc")];
    let mut folders = Vec::new();
    for cdir in &dirs {
        std::fs::create_dir_all(cdir.parent().unwrap()).unwrap();
        let mut s = up(cdir);
        started_empty(&mut s, &[1, 2, 3])
            .unwrap_or_else(|l| panic!("{}: first session: {l:?}", cdir.display()));
        s.quit();
        folders.push(hosts_folder(cdir));
    }
    assert_ne!(
        folders[0], folders[1],
        "both clusters use one folder on the hosts"
    );
    for f in &folders {
        assert!(f.starts_with("cc-"), "{f}");
        let node1 = sshd.path().join("a").join(f).join("node-1");
        assert!(node1.is_dir(), "{} is missing", node1.display());
    }
    for (cdir, folder) in dirs.iter().zip(&folders) {
        let mut s = up(cdir);
        assert!(
            started_empty(&mut s, &[1, 2, 3]).is_err(),
            "{}: the resumed cluster started on empty node directories",
            cdir.display()
        );
        assert_eq!(&hosts_folder(cdir), folder, "{}", cdir.display());
        s.quit();
    }
    sshd.assert_nothing_left("after quit");
}

/// Issue 24 (a new user's finding): a cluster directory resumed with a hosts file that puts some of its nodes on
/// other hosts than the ones holding their data started them there empty, without a word. Now it is refused
/// (exit 2) before anything starts, naming each moved node with the host that has its data and the one the file
/// names, and what to do; nothing is left running, and the file put back resumes the cluster on its data.
#[test]
fn a_resume_with_nodes_moved_to_other_hosts_is_refused_naming_them_and_the_hosts() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let cdir = sshd.path().join("c1");
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let up = || up_in(&args, cdir.clone(), Duration::from_secs(60));
    let mut s = up();
    started_empty(&mut s, &[1, 2, 3]).unwrap_or_else(|l| panic!("first session: {l:?}"));
    s.quit();
    // Node 2 now on host-a: its data is on host-b.
    let text = std::fs::read_to_string(&hosts).unwrap();
    sshd.hosts_file(&[("host-a", "a", &[1, 2]), ("host-b", "b", &[3])]);
    let (code, err) = support::up_ended(&args, Some(&cdir));
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "node 2's data is on host host-b ({}), but the hosts file puts it on host-a ({})",
            sshd.path().join("b").display(),
            sshd.path().join("a").display()
        )),
        "stderr: {err}"
    );
    assert!(err.contains("put node 2 back"), "says what to do: {err}");
    assert!(
        !err.contains("node 1's data") && !err.contains("node 3's data"),
        "{err}"
    );
    sshd.assert_nothing_left("after the refusal");
    // Put back: the cluster resumes on its data.
    std::fs::write(&hosts, text).unwrap();
    let s = up();
    resumed_on_its_data_then_quit(s, &sshd);
}

/// polish2 item 3: a cluster directory run on this machine, then resumed with `--hosts`, started its nodes empty
/// on the hosts without a word; and the reverse. Both are refused (exit 2) before anything starts, naming the
/// nodes, where their data is and what to do; nothing is left running, and each resumes as it was run.
#[test]
fn a_directory_run_here_resumed_on_hosts_or_the_reverse_is_refused_naming_where_the_data_is() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let hosts_args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let wait = Duration::from_secs(60);

    // Run here, then with --hosts.
    let here = sshd.path().join("here");
    let s = support::session::Up::new(&["--seed", "7"])
        .wait(wait)
        .dir(here.clone())
        .start();
    s.quit();
    let (code, err) = support::up_ended(&hosts_args, Some(&here));
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains("nodes 1, 2, 3 ran on this machine")
            && err.contains(&here.join("node-1").display().to_string())
            && err.contains("would start empty on the hosts")
            && err.contains("without --hosts"),
        "stderr: {err}"
    );
    sshd.assert_nothing_left("after the refusal");

    // Run on hosts, then without.
    let there = sshd.path().join("there");
    let mut s = support::session::Up::new(&hosts_args)
        .wait(wait)
        .dir(there.clone())
        .start();
    started_empty(&mut s, &[1, 2, 3]).unwrap_or_else(|l| panic!("first session: {l:?}"));
    s.quit();
    let (code, err) = support::up_ended(&["--seed", "7"], Some(&there));
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "node 2's data is on host host-b ({})",
            sshd.path().join("b").display()
        )) && err.contains("nodes 1, 2, 3 would start empty on this machine")
            && err.contains("with --hosts"),
        "stderr: {err}"
    );
    assert!(
        !there.join("node-1").exists(),
        "the refusal made a node directory here"
    );
    // As it was run: it resumes on its data.
    let s = support::session::Up::new(&hosts_args)
        .wait(wait)
        .dir(there.clone())
        .start();
    resumed_on_its_data_then_quit(s, &sshd);
}

/// Tester 9's findings 4 and 5 (issue 24): a cluster that grew (node 4, added on host-a, the host with the fewest
/// nodes) and shrank (node 2 removed) resumes with a hosts file that no longer names node 2: a removed node stays
/// stopped and needs no host. Each agent's start-up line names the nodes the host runs now (the added node 4 on
/// host-a), never the removed node as a spare; a file that still names node 2, on another host than its data's,
/// is accepted and says so, without starting it.
#[test]
fn a_resume_after_add_and_remove_needs_no_host_for_the_removed_node_and_names_what_each_host_runs()
{
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let cdir = sshd.path().join("c1");
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let wait = Duration::from_secs(60);
    let up = || up_in(&args, cdir.clone(), wait);
    let mut s = up();
    let added = s.accepted("add", "node 4");
    assert!(added.contains("host-a"), "{added}");
    s.out.wait_for("n4 promoted", wait, |l| {
        l.contains("n4 caught up, promoted to voter").then_some(())
    });
    s.accepted("remove 2", "remove node 2");
    s.out.wait_for("n2 removed", wait, |l| {
        l.contains("n2 removed").then_some(())
    });
    s.quit();
    let agent_line = |s: &support::session::Session, host: &str| {
        s.out
            .seen
            .iter()
            .find(|l| l.contains(&format!("host {host}: agent pid")))
            .cloned()
            .unwrap_or_else(|| panic!("no start-up line of {host}:\n{}", s.out.seen.join("\n")))
    };
    // Node 2 named nowhere: accepted; host-a runs 1 and 4, host-b runs 3.
    sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[3])]);
    let s = up();
    let (a, b) = (agent_line(&s, "host-a"), agent_line(&s, "host-b"));
    assert!(a.ends_with("for node 1, 4"), "{a}");
    assert!(b.ends_with("for node 3"), "{b}");
    s.quit();
    // Node 2 named on host-a (its data is on host-b): accepted, and said to be removed, not a spare.
    sshd.hosts_file(&[("host-a", "a", &[1, 2]), ("host-b", "b", &[3])]);
    let mut s = up();
    let a = agent_line(&s, "host-a");
    assert!(a.ends_with("for node 1, 4 (removed: 2)"), "{a}");
    assert!(
        !s.out.seen.iter().any(|l| l.contains("node 2's data")),
        "{}",
        s.out.seen.join("\n")
    );
    assert!(
        started_empty(&mut s, &[1, 3, 4]).is_err(),
        "the resumed cluster started on empty node directories"
    );
    // Tester 9's finding 8: a wipe on hosts names the host, as the other disk answers do.
    s.ask("wipe 3", "ok: host host-b: wipe data of node 3");
    s.quit();
    sshd.assert_nothing_left("after quit");
}

/// Tester 9's finding 7 (issue 24): every host `dir` got its own copy of squall (284 MB), also several dirs on
/// one machine. Two entries of one destination (two dirs on one machine) now copy it once, into the machine's
/// cache, and link it into each dir (one file, no second copy); the copy line says how big it is. A later
/// session copies nothing.
#[test]
fn two_host_entries_on_one_machine_copy_squall_once_and_link_it_into_both_dirs() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.path().join("hosts.toml");
    let cache = sshd.path().join("cache");
    let mut text = String::new();
    for (sub, nodes) in [("a", "[1]"), ("b", "[2, 3]")] {
        text.push_str(&format!(
            "[[host]]\nssh = \"host-a\"\nssh_config = \"{}\"\ndir = \"{}\"\ncache = \"{}\"\nnodes = {nodes}\n\n",
            sshd.config().display(),
            sshd.path().join(sub).display(),
            cache.display()
        ));
    }
    std::fs::write(&hosts, text).unwrap();
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "7"];
    let cdir = sshd.path().join("c1");
    let up = || up_in(&args, cdir.clone(), Duration::from_secs(60));
    let s = up();
    let copies: Vec<&String> = s
        .out
        .seen
        .iter()
        .filter(|l| l.contains("copying squall"))
        .collect();
    assert_eq!(copies.len(), 1, "{}", s.out.seen.join("\n"));
    let size = std::fs::metadata(SQUALL).unwrap().len();
    assert!(
        copies[0].contains(&format!(
            "copying squall ({} MB) to {}/",
            (size as f64 / 1e6).round(),
            cache.display()
        )),
        "{}",
        copies[0]
    );
    assert!(
        s.out
            .seen
            .iter()
            .any(|l| l.contains("is in the host's cache") && l.contains("nothing copied")),
        "{}",
        s.out.seen.join("\n")
    );
    // One file: the dirs' binaries are the cache's (hard links).
    use std::os::unix::fs::MetadataExt;
    let inode = |p: PathBuf| {
        std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .ino()
    };
    let (a, b) = (
        inode(sshd.path().join("a/squall")),
        inode(sshd.path().join("b/squall")),
    );
    assert_eq!(a, b, "two copies of squall on one machine");
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path().join("squall"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(inode(cached[0].clone()), a);
    s.quit();
    let s = up();
    assert!(
        !s.out
            .seen
            .iter()
            .any(|l| l.contains("copying squall") || l.contains("linked")),
        "{}",
        s.out.seen.join("\n")
    );
    resumed_on_its_data_then_quit(s, &sshd);
}

/// Tester 7's finding 1 (issue 24): `squall run SCENARIO --hosts` keeps the scenario's clock for after the hosts
/// are reached, as a local run does: the README's kill-leader scenario (at half scale: `kill leader` at 2 s)
/// finds a leader to kill, and the run's verdict is the expected `valid` (exit 0), the first run on the hosts
/// (which copies squall to them, seconds) included.
#[test]
fn a_scenario_run_on_hosts_starts_its_timeline_when_the_nodes_start_and_is_valid() {
    let Some(sshd) = Sshd::new() else { return };
    let (code, text) = run_on_hosts(&sshd, "kill-leader.toml");
    assert!(
        text.contains("copying squall"),
        "the first run copied nothing:\n{text}"
    );
    assert!(
        text.contains("verdict: valid"),
        "the run on hosts is not valid:\n{text}"
    );
    assert_eq!(code, Some(0), "{text}");
    sshd.assert_nothing_left("after the run");
}

/// `squall run` of the library's `scenario` (a file of `scenarios/`) at half scale, seed 7, its nodes on two
/// hosts (`host-a` runs node 1 in `a`, `host-b` nodes 2 and 3 in `b`): its exit code and what it printed (standard
/// output, then standard error).
fn run_on_hosts(sshd: &Sshd, scenario: &str) -> (Option<i32>, String) {
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let o = Command::new(SQUALL)
        .arg("run")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(scenario),
        )
        .args([
            "--hosts",
            hosts.to_str().unwrap(),
            "--scale",
            "0.5",
            "--seed",
            "7",
        ])
        .arg("--out")
        .arg(sshd.path().join("run"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

/// `squall run` of a scenario with `disk-faults = true` on hosts (issue 24): the library's power-cut scenario
/// (a leader's power cut, every node's, a torn one) runs its nodes on two hosts' fault filesystems, through
/// their agents, and is valid; no process and no mount is left on the hosts.
#[test]
fn the_power_cut_scenario_runs_on_hosts_with_their_fault_filesystems_and_is_valid() {
    let Some(sshd) = Sshd::new() else { return };
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        eprintln!("SKIP: this machine cannot serve disk faults (/dev/fuse: {e})");
        return;
    }
    let (code, text) = run_on_hosts(&sshd, "power-cut.toml");
    assert!(
        text.contains("verdict: valid (expected valid)"),
        "the power-cut scenario on hosts is not valid:\n{text}"
    );
    assert!(
        text.contains("power cut of every node: host host-a: node 1"),
        "the cut of every node did not go through the hosts:\n{text}"
    );
    assert_eq!(code, Some(0), "{text}");
    sshd.assert_nothing_left("after the run");
    assert_eq!(
        mounts_under(sshd.path()),
        Vec::<String>::new(),
        "mounts left on the hosts"
    );
}

/// Tester 7's finding 6 (issue 24): two host entries that reach one machine (here `host-a` and `host-b`, both
/// this machine's sshd) with the same `dir`: no racy copy error, but a refusal (exit 2) naming both entries,
/// the shared dir and the fix; nothing is left running.
#[test]
fn two_host_entries_sharing_a_dir_on_one_machine_are_refused_naming_both_and_the_fix() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "s", &[1]), ("host-b", "s", &[2, 3])]);
    let cluster = sshd.path().join("cluster");
    let (code, err) = support::up_ended(&["--hosts", hosts.to_str().unwrap()], Some(&cluster));
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(!err.contains("cannot copy"), "the copies raced: {err}");
    let shared = sshd.path().join("s");
    assert!(
        err.contains(&format!(
            "hosts host-a and host-b name the same dir {}: if they reach one machine, give each its own `dir`",
            shared.display()
        )),
        "stderr: {err}"
    );
    // The failure itself first, the advice after it (issue 24: the advice read as the cause).
    assert!(
        !err.contains("squall: error: hosts host-a and host-b"),
        "the advice came before the failure: {err}"
    );
    sshd.assert_nothing_left("after the refusal");
}

/// Tester 10's finding 2 (issue 24): a second squall on the same hosts (same `dir`s) is refused, and its probe
/// for a live agent there takes nothing from the running session: its hosts stay reachable (no `unreachable`
/// line) and answer at once. Before, the running agent took the probe's connection for a controller
/// attaching and dropped the real one.
#[test]
fn a_second_squall_s_probe_leaves_the_running_session_s_hosts_reachable() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "10"];
    let mut s = up_in(&args, sshd.path().join("first"), Duration::from_secs(60));
    let (code, err) = support::up_ended(&args, Some(&sshd.path().join("second")));
    assert_eq!(code, Some(2), "the second squall: {err}");
    assert!(err.contains("another agent runs in"), "{err}");
    // Requests that go through each host's agent are answered, by the agents that kept their controller.
    for n in [1, 2] {
        s.ask(&format!("pause {n}"), &format!("pause node {n}"));
        s.ask(&format!("resume {n}"), &format!("resume node {n}"));
    }
    let unreachable: Vec<&String> = s
        .out
        .seen
        .iter()
        .filter(|l| l.contains("unreachable"))
        .collect();
    assert!(
        unreachable.is_empty(),
        "the probe took a host away: {unreachable:?}\n{}",
        s.out.seen.join("\n")
    );
    s.quit();
    sshd.assert_nothing_left("after quit");
}

/// Tester 7's finding 3 (issue 24): on hosts, held frames a kill drops are told in the feed (`… held frames
/// dropped: n1 was killed`, as locally) and counted: every link's `held-total` is at least its `held-now`.
#[test]
fn held_frames_a_kill_drops_on_hosts_are_told_and_counted() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let wait = Duration::from_secs(60);
    let mut s = support::session::Up::new(&["--hosts", hosts.to_str().unwrap()])
        .wait(wait)
        .start();
    s.ask("hold *", "hold");
    let deadline = Instant::now() + wait;
    loop {
        let held = s.listing("held", "held:");
        if held.iter().any(|x| x.contains("->1 ")) {
            break;
        }
        assert!(Instant::now() < deadline, "nothing held to n1: {held:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for line in s.listing("links", "links:") {
        let field = |w: &str| support::session::status_field(&line, w);
        assert!(field("held-total") >= field("held-now"), "{line}");
    }
    s.ask("kill 1", "kill node 1");
    let told = s
        .out
        .wait_for("the held frames the kill dropped", wait, |l| {
            (l.contains("held frame") && l.contains("dropped: n1 was killed"))
                .then(|| l.to_string())
        });
    assert!(told.contains("1->") || told.contains("->1"), "{told}");
    s.ok("heal");
    s.quit();
    sshd.assert_nothing_left("after quit");
}

/// Issue 24 (a new user's finding): `--host` entries all keep their agents in the default dir, and when ssh could
/// not reach them the answer began with "hosts A and B name the same dir" advice, the real cause (ssh's error)
/// after it. Now ssh's error comes first, and the advice is not given: ssh never reached those hosts, so a
/// shared dir cannot be the cause.
#[test]
fn a_host_flag_whose_hosts_ssh_cannot_reach_says_ssh_s_error_first_without_shared_dir_advice() {
    if which("ssh").is_none() {
        eprintln!("SKIP: no ssh client (apt-get install openssh-client)");
        return;
    }
    // Port 1 of this machine's loopback: nothing listens, ssh exits 255 at once.
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = support::up_ended(
        &[
            "--host",
            "1=ssh://one@127.0.0.1:1,2=ssh://two@127.0.0.1:1,3=ssh://two@127.0.0.1:1",
        ],
        Some(&dir.path().join("cluster")),
    );
    assert_eq!(code, Some(2), "stderr: {err}");
    let first = err
        .lines()
        .find_map(|l| l.strip_prefix("squall: error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        first.starts_with("cannot reach host ssh://"),
        "ssh's error is not first: {err}"
    );
    assert!(
        !err.contains("name the same dir"),
        "advice that does not apply: {err}"
    );
}

/// The agent ops a cluster run through agents adds (issue 24): a fault over two links under the controller's
/// id, shown in `links` and removed by that id; `read-file`/`remove-file` inside the agent's directory, and
/// refused outside it, naming the path.
#[test]
fn an_agent_keeps_a_fault_under_the_controllers_id_and_reads_only_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::local(dir.path());
    agent.call(
        serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""}, "seed": 1}),
    );
    for (from, to) in [(1, 2), (1, 3)] {
        agent.call(serde_json::json!({"op": "link", "from": from, "to": to}));
    }
    agent.call(serde_json::json!({"op": "add-fault", "fault": 9,
        "links": [{"from": 1, "to": 2}, {"from": 1, "to": 3}],
        "spec": {"fault": "Blackhole", "duration": null}}));
    // Per link `from->to`, how many faults it has (the proxies also count the answers back, as `2->1`, `3->1`).
    let faults = |agent: &mut Agent| -> Vec<(String, usize)> {
        let r = agent.call(serde_json::json!({"op": "links"}));
        r["links"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let id = format!("{}->{}", l["link"]["from"], l["link"]["to"]);
                (id, l["faults"].as_array().unwrap().len())
            })
            .filter(|(id, _)| id.starts_with("1->"))
            .collect()
    };
    assert_eq!(
        faults(&mut agent),
        vec![("1->2".to_string(), 1), ("1->3".to_string(), 1)]
    );
    agent.call(serde_json::json!({"op": "remove-fault", "fault": 9}));
    assert_eq!(
        faults(&mut agent),
        vec![("1->2".to_string(), 0), ("1->3".to_string(), 0)]
    );

    let inside = dir.path().join("c").join("addr.json");
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::write(&inside, "{}").unwrap();
    let read = agent.call(serde_json::json!({"op": "read-file", "path": inside}));
    assert_eq!(read["file"]["text"], "{}");
    agent.call(serde_json::json!({"op": "remove-file", "path": inside}));
    assert!(!inside.exists());
    let read = agent.call(serde_json::json!({"op": "read-file", "path": inside}));
    assert!(read["file"]["text"].is_null(), "{read}");
    for outside in [
        "/etc/passwd".to_string(),
        format!("{}/../x", dir.path().display()),
    ] {
        let e = agent.refused(serde_json::json!({"op": "read-file", "path": outside}));
        assert!(
            e.contains(&outside) && e.contains("not a path inside the agent's directory"),
            "{e}"
        );
    }
}

/// The mount points in /proc/mounts under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// `squall kv --peers 1=API OP...`: its standard output, or a panic with what it said.
fn kv(api: std::net::SocketAddr, op: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(SQUALL)
            .args(["kv", "--timeout", "2s", "--peers", &format!("1={api}")])
            .args(op)
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "squall kv {op:?} kept failing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_node_with_disk_and_clock_faults_through_its_agent_keeps_synced_data_through_a_powercut_and_nothing_outlives_its_ssh()
 {
    let Some(sshd) = Sshd::new() else { return };
    let host = sshd.path().join("a");
    let mut agent = sshd.agent_with("host-a", &host, "--grace 1s");
    let can = agent.call(serde_json::json!({"op": "capabilities"}));
    if let Some(why) = can["can"]["disk"].as_str() {
        eprintln!("SKIP: this machine cannot serve disk faults: {why}");
        return;
    }
    assert!(can["can"]["clock"].is_null(), "{can}");
    let node_dir = host.join("node-1");
    let data = node_dir.join("data");
    let mounted = agent.call(
        serde_json::json!({"op": "disk", "node": 1, "action": {"mount": {
        "backing": node_dir.join("disk").display().to_string(),
        "data_dir": data.display().to_string()}}}),
    );
    assert_eq!(
        mounted["notes"]["notes"],
        serde_json::json!([]),
        "{mounted}"
    );
    assert_eq!(mounts_under(&host), vec![data.display().to_string()]);
    let env = agent.call(
        serde_json::json!({"op": "clock", "node": 1, "action": {"prepare": {
        "node_dir": node_dir.display().to_string()}}}),
    );
    let env = env["env"]["env"].clone();
    assert!(
        env.to_string().contains("LD_PRELOAD"),
        "no shim in the node's environment: {env}"
    );
    let pid = launch_squall_node_with(&mut agent, 1, &node_dir, vec![], LOOPBACK, env, false);
    let (_, api) = read_addrs(&node_dir, Duration::from_secs(20));
    // An acknowledged write (the node syncs it), and two files of the test's own: one synced, one not.
    kv(api, &["put", "k", "kept"]);
    let mut synced = std::fs::File::create(data.join("synced")).unwrap();
    synced.write_all(b"durable").unwrap();
    synced.sync_all().unwrap();
    std::fs::File::open(&data).unwrap().sync_all().unwrap();
    std::fs::write(data.join("unsynced"), b"lost").unwrap();
    // A disk fault and a clock fault through the agent, in the local commands' words.
    let slow = agent.call(
        serde_json::json!({"op": "disk", "node": 1, "action": {"fault": {
        "action": {"Slow": {"delay": {"secs": 0, "nanos": 1_000_000}, "syncs_only": true}}}}}),
    );
    assert_eq!(
        slow["disk"]["said"], "slow node 1's disk: every sync +1 ms",
        "{slow}"
    );
    assert_eq!(
        slow["disk"]["faults"],
        serde_json::json!(["slow +1ms (syncs)"]),
        "{slow}"
    );
    let clock = agent.call(
        serde_json::json!({"op": "clock", "node": 1, "action": {"set": {"Jump": 3_600_000}}}),
    );
    assert!(
        clock["clock"]["said"]
            .as_str()
            .unwrap()
            .starts_with("clock of node 1: +1h (now +1h;"),
        "{clock}"
    );
    // The power cut through the agent: the node is killed, the unsynced file is gone, the synced one kept.
    let cut = agent.call(serde_json::json!({"op": "power-cut", "nodes": [1], "seed": 7}));
    assert_eq!(cut["power-cut"]["problems"], serde_json::json!([]), "{cut}");
    assert!(
        cut["power-cut"]["done"][0]
            .as_str()
            .unwrap()
            .starts_with("node 1: "),
        "{cut}"
    );
    assert!(support::wait_gone(&[pid], Duration::from_secs(10)).is_empty());
    assert_eq!(
        std::fs::read(data.join("synced")).unwrap(),
        b"durable",
        "the synced file"
    );
    assert!(
        !data.join("unsynced").exists(),
        "an unsynced new file survived the power cut"
    );
    // The node comes back on its disk with its acknowledged write.
    let _ = std::fs::remove_file(node_dir.join("addr.json"));
    let again = agent.call(serde_json::json!({"op": "restart", "node": 1, "wipe": false}));
    let again = again["pid"]["pid"].as_u64().unwrap() as u32;
    let (_, api) = read_addrs(&node_dir, Duration::from_secs(20));
    assert_eq!(kv(api, &["get", "k"]), "kept");
    // SIGKILL the ssh: the agent waits its grace (1 s) for a controller, then stops the node and unmounts.
    agent.process.kill().unwrap();
    let _ = agent.process.wait();
    let left = wait_none_mention(&host.display().to_string(), Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}");
    assert!(!support::alive(again));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mounts_under(&host).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still mounted after the agent left: {:?}",
            mounts_under(&host)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_agent_pinged_once_then_never_again_stops_its_nodes_after_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(SQUALL);
    c.args(["agent", "--grace", "1s", "--dir"]).arg(dir.path());
    let mut agent = Agent::spawn(c);
    // Never pinged: not held to pings (a person driving it by hand is not).
    let node_dir = dir.path().join("node-1");
    let pid = launch_squall_node(&mut agent, 1, &node_dir, vec![], LOOPBACK);
    read_addrs(&node_dir, Duration::from_secs(20));
    agent.call(serde_json::json!({"op": "ping"}));
    // Standard input stays open; only the pings stop.
    let left = support::wait_gone(&[pid], Duration::from_secs(15));
    assert!(left.is_empty(), "node 1 (pid {pid}) outlived the silence");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = agent.process.try_wait().unwrap() {
            assert!(st.success(), "the agent exited {st}");
            break;
        }
        assert!(Instant::now() < deadline, "the agent did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!squall::agent::socket_path(dir.path()).exists());
}

/// The next host event of kind `what` (`unreachable` or `reconnected`), waiting up to 30 s; every event on the
/// way is kept in `seen` for the failure message. A host lost fails at once.
async fn next_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<squall::remote::fleet::HostEvent>,
    seen: &mut Vec<String>,
    what: &str,
) -> squall::remote::fleet::HostEvent {
    use squall::remote::fleet::HostEvent;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some(e)) => {
                seen.push(format!("{e:?}"));
                match (&e, what) {
                    (HostEvent::Unreachable { .. }, "unreachable")
                    | (HostEvent::Reconnected { .. }, "reconnected") => return e,
                    (HostEvent::Lost { .. }, _) => panic!("host lost: {seen:?}"),
                    _ => {}
                }
            }
            other => panic!("no {what} event ({other:?}); seen: {seen:?}"),
        }
    }
}

#[test]
fn a_host_whose_ssh_is_killed_shows_unreachable_reconnects_and_keeps_the_same_node_processes() {
    use squall::remote::connect::Agents;
    use squall::remote::fleet::{Fleet, HostEvent, HostState};
    use squall::remote::protocol::{Answer, Op};
    let Some(sshd) = Sshd::new() else { return };
    let host_dir = sshd.path().join("a");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let control = squall::remote::ssh::control_dir().unwrap();
        let host = squall::remote::hosts::Host {
            label: "host-a".into(),
            ssh: "host-a".into(),
            identity: None,
            ssh_config: Some(sshd.config()),
            dir: host_dir.display().to_string(),
            nodes: vec![1],
            address: None,
            cache: sshd.cache("host-a").display().to_string(),
        };
        let h = squall::remote::ssh::SshHost::new(host, &control).with_exe(Path::new(SQUALL));
        let conn = h.connect(&|_: String| {}).await.unwrap();
        let agent_pid = match &conn.hello {
            Answer::Hello { pid, .. } => *pid,
            other => panic!("{other:?}"),
        };
        let node_dir = host_dir.join("node-1");
        std::fs::create_dir_all(&node_dir).unwrap();
        let launched = conn
            .client
            .call(
                Op::Launch {
                    node: 1,
                    program: None,
                    args: squall_node_args(1, &node_dir, vec![], LOOPBACK),
                    env: vec![],
                    log: node_dir.join("node.log").display().to_string(),
                    data_dir: Some(node_dir.join("data").display().to_string()),
                },
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        let Answer::Pid { pid: node_pid } = launched else {
            panic!("{launched:?}")
        };
        let ssh_pid = conn.ssh_pid().unwrap();
        let (fleet, mut events) = Fleet::start(Agents::from_connections(vec![(h, conn)], control));
        assert_eq!(
            fleet.state("host-a"),
            Some(HostState::Up { pid: agent_pid })
        );
        // SIGKILL the ssh carrying the agent's channel; the agent lives on the host.
        let killed = Instant::now();
        assert!(
            Command::new("kill")
                .args(["-KILL", &ssh_pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let mut seen = Vec::new();
        let unreachable = next_event(&mut events, &mut seen, "unreachable").await;
        eprintln!(
            "host-a shown unreachable {:?} after its ssh was killed: {unreachable:?}",
            killed.elapsed()
        );
        assert!(
            matches!(&unreachable, HostEvent::Unreachable { host, nodes, why }
                if host == "host-a" && nodes == &[1] && why.contains("ssh connection ended")),
            "{unreachable:?}"
        );
        let back = next_event(&mut events, &mut seen, "reconnected").await;
        assert_eq!(
            back,
            HostEvent::Reconnected {
                host: "host-a".into(),
                nodes: vec![1],
                pid: agent_pid
            }
        );
        // The same node process, never restarted, answering through the new connection.
        let status = fleet
            .client_for_node(1)
            .unwrap()
            .call(Op::Status, Duration::from_secs(10))
            .await
            .unwrap();
        let Answer::Status { nodes, .. } = status else {
            panic!("{status:?}")
        };
        assert_eq!(
            nodes,
            vec![(1, squall_chaos::ProcState::Running { pid: node_pid })]
        );
        assert!(support::alive(node_pid));
        fleet.stop().await;
    });
    let left = wait_none_mention(&host_dir.display().to_string(), Duration::from_secs(15));
    assert!(left.is_empty(), "still running after stop: {left:?}");
}

#[test]
fn a_killed_agent_takes_its_nodes_with_it_through_the_lifeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::local(dir.path());
    // An address this machine does not have is refused at once, naming it (192.0.2.1: TEST-NET-1).
    let e = agent.refused(
        serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""},
        "seed": 1, "bind": "192.0.2.1"}),
    );
    assert!(e.contains("cannot listen on 192.0.2.1"), "{e}");
    agent.call(
        serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""}, "seed": 1}),
    );
    let node_dir = dir.path().join("node-1");
    let pid = launch_squall_node(&mut agent, 1, &node_dir, vec![], LOOPBACK);
    // Listening, so past its start-up: then SIGKILL the agent, which cannot stop anything itself.
    read_addrs(&node_dir, Duration::from_secs(20));
    assert!(support::alive(pid));
    agent.process.kill().unwrap();
    let _ = agent.process.wait();
    let left = support::wait_gone(&[pid], Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "node 1 (pid {pid}) outlived its killed agent"
    );
}

#[test]
fn agents_over_sshd_run_squall_nodes_on_two_hosts_fault_their_links_and_die_with_their_ssh() {
    let Some(sshd) = Sshd::new() else { return };
    // Node 1 and 2 on host-a, node 3 on host-b; every link's proxy on its sender's host.
    let host_of = |n: u64| if n == 3 { "b" } else { "a" };
    // A short grace: SIGKILLing host-a's ssh below must stop its nodes soon after.
    let mut agents = [
        sshd.agent_with("host-a", &sshd.path().join("a"), "--grace 1s"),
        sshd.agent_with("host-b", &sshd.path().join("b"), "--grace 1s"),
    ];
    let agent_of = |n: u64| if n == 3 { 1 } else { 0 };
    // host-b's proxies listen on its own address (127.0.0.2, still loopback), as a hosts file's `address` says.
    for (a, bind) in agents.iter_mut().zip([None, Some("127.0.0.2")]) {
        let hello = a.call(serde_json::json!({"op": "hello"}));
        assert!(
            hello["hello"]["version"]
                .as_str()
                .unwrap()
                .starts_with("squall "),
            "{hello}"
        );
        a.call(
            serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""}, "seed": 7,
            "bind": bind}),
        );
    }
    let mut proxies = std::collections::BTreeMap::new();
    for from in 1..=3u64 {
        for to in (1..=3u64).filter(|&t| t != from) {
            let r = agents[agent_of(from)]
                .call(serde_json::json!({"op": "link", "from": from, "to": to}));
            let addr = r["link"]["addr"].as_str().unwrap().to_string();
            let want = if from == 3 {
                "127.0.0.2:"
            } else {
                "127.0.0.1:"
            };
            assert!(
                addr.starts_with(want),
                "link {from}->{to} listens on {addr}"
            );
            proxies.insert((from, to), addr);
        }
    }
    let mut pids = Vec::new();
    for id in 1..=3u64 {
        let node_dir = sshd.path().join(host_of(id)).join(format!("node-{id}"));
        let peers = proxies
            .iter()
            .filter(|((f, _), _)| *f == id)
            .map(|((_, t), a)| (*t, a.parse().unwrap()))
            .collect();
        pids.push(launch_squall_node(
            &mut agents[agent_of(id)],
            id,
            &node_dir,
            peers,
            LOOPBACK,
        ));
    }
    let mut apis = Vec::new();
    for id in 1..=3u64 {
        let (peer, api) = read_addrs(
            &sshd.path().join(host_of(id)).join(format!("node-{id}")),
            Duration::from_secs(20),
        );
        apis.push((id, api));
        // Every agent with a link towards `id` learns where it listens.
        for a in agents.iter_mut() {
            a.call(serde_json::json!({"op": "upstream", "to": id, "addr": peer.to_string()}));
        }
    }
    let first = leader(&apis, Duration::from_secs(20), None);
    // Kill the leader through its host's agent; the other two elect a new one.
    agents[agent_of(first)].call(serde_json::json!({"op": "kill", "node": first}));
    let live: Vec<_> = apis
        .iter()
        .copied()
        .filter(|(id, _)| *id != first)
        .collect();
    let second = leader(&live, Duration::from_secs(20), Some(first));
    assert_ne!(first, second);
    // Cut second -> the other live node with a blackhole on the sender's host: its frames are dropped there.
    let other = live
        .iter()
        .map(|(id, _)| *id)
        .find(|&id| id != second)
        .unwrap();
    let a = agent_of(second);
    agents[a].call(
        serde_json::json!({"op": "fault", "from": second, "to": other,
        "spec": {"fault": "Blackhole", "duration": null}}),
    );
    let dropped = |agents: &mut [Agent; 2]| -> u64 {
        let s = agents[a].call(serde_json::json!({"op": "status"}));
        s["status"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["link"]["from"] == second && l["link"]["to"] == other)
            .map(|l| l["frames_dropped"].as_u64().unwrap())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while dropped(&mut agents) == 0 {
        assert!(
            Instant::now() < deadline,
            "no frame dropped on the cut link {second}->{other}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agents[a].call(serde_json::json!({"op": "heal", "from": second, "to": other}));
    // Restart the killed node through its agent; a log tail comes back too.
    agents[agent_of(first)]
        .call(serde_json::json!({"op": "restart", "node": first, "wipe": false}));
    let log =
        agents[agent_of(first)].call(serde_json::json!({"op": "log", "node": first, "lines": 5}));
    assert!(log["log"]["text"].is_string(), "{log}");
    // The kill came back as an exit event (read while waiting for that host's later replies).
    let exit = agents[agent_of(first)]
        .events
        .iter()
        .find(|e| e.contains("\"exit\"") && e.contains(&format!("\"node\":{first},")))
        .cloned();
    let exit = exit.unwrap_or_else(|| {
        panic!(
            "no exit event for node {first}: {:?}",
            agents[agent_of(first)].events
        )
    });
    assert!(
        exit.contains("\"signal\":\"SIGKILL\"") && exit.contains("\"expected\":true"),
        "{exit}"
    );
    leader(&apis, Duration::from_secs(20), None);
    // SIGKILL the ssh client of host-a: its sshd session ends, the agent reads end-of-file, waits its grace
    // period (1 s) for a controller to attach, then stops its nodes. No orphans.
    let a_nodes: Vec<u32> = processes_mentioning(&sshd.path().join("a").display().to_string());
    agents[0].process.kill().unwrap();
    let _ = agents[0].process.wait();
    let left = wait_none_mention(
        &sshd.path().join("a").display().to_string(),
        Duration::from_secs(15),
    );
    assert!(
        left.is_empty(),
        "host-a processes still alive: {left:?} (were {a_nodes:?})"
    );
    // host-b ends the polite way: shutdown stops its node, and the agent exits.
    agents[1].call(serde_json::json!({"op": "shutdown"}));
    let left = wait_none_mention(
        &sshd.path().join("b").display().to_string(),
        Duration::from_secs(15),
    );
    assert!(left.is_empty(), "host-b processes still alive: {left:?}");
    let _ = agents[1].process.wait();
    assert!(support::wait_gone(&pids, Duration::from_secs(5)).is_empty());
}

/// Sends `word` to `addr` and reads it back (the test's echo service behind a forward); `Err` says what failed.
async fn echo_through(addr: std::net::SocketAddr, word: &[u8]) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    c.write_all(word).await.map_err(|e| e.to_string())?;
    let mut back = vec![0u8; word.len()];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut back))
        .await
        .map_err(|_| format!("no echo from {addr} within 10 s"))?
        .map_err(|e| format!("read from {addr}: {e}"))?;
    if back != word {
        return Err(format!("{addr} echoed {back:?}, not {word:?}"));
    }
    Ok(())
}

/// The pid of the multiplexing master of `host` whose sockets are in `control` (`ssh -O check`).
fn master_pid(sshd: &Sshd, control: &Path, host: &str) -> u32 {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(sshd.config())
        .arg("-o")
        .arg(format!("ControlPath={}/%C", control.display()))
        .args(["-O", "check", host])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    said.split("pid=")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no master pid in `ssh -O check`: {said}"))
}

#[test]
fn a_service_here_is_forwarded_to_a_host_s_loopback_made_again_on_its_port_after_the_master_dies_and_cancelled_at_close()
 {
    use squall::remote::protocol::Answer;
    let Some(sshd) = Sshd::new() else { return };
    let host_dir = sshd.path().join("a");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The controller's service: an echo on this machine's loopback.
        let service = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let here = service.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = service.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let control = squall::remote::ssh::control_dir().unwrap();
        let host = squall::remote::hosts::Host {
            label: "host-a".into(),
            ssh: "host-a".into(),
            identity: None,
            ssh_config: Some(sshd.config()),
            dir: host_dir.display().to_string(),
            nodes: vec![1],
            address: None,
            cache: sshd.cache("host-a").display().to_string(),
        };
        let h = squall::remote::ssh::SshHost::new(host, &control).with_exe(Path::new(SQUALL));
        let conn = h.connect(&|_: String| {}).await.unwrap();
        let agent_pid = match &conn.hello {
            Answer::Hello { pid, .. } => *pid,
            other => panic!("{other:?}"),
        };
        let there = h.forward_here(here.port()).await.unwrap();
        eprintln!("this machine's {here} is the host's {there}");
        assert!(there.ip().is_loopback(), "{there}");
        assert_ne!(there.port(), here.port(), "the host chose its own port");
        assert_eq!(
            h.forward_here(here.port()).await.unwrap(),
            there,
            "asked twice"
        );
        assert_eq!(h.forwarded(here.port()), Some(there));
        echo_through(there, b"first").await.unwrap();

        // The master dies (the host's connection with it, and the agent's channel): the forward is gone.
        let master = master_pid(&sshd, &control, "host-a");
        assert!(
            Command::new("kill")
                .args(["-KILL", &master.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(15);
        while echo_through(there, b"gone").await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the forward {there} still answers 15 s after its master (pid {master}) was killed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "the forward was gone {:?} after its master was killed",
            killed.elapsed()
        );
        drop(conn);
        // A reconnect (what the fleet does) makes it again, on the same port: bridges started before dial it.
        let again = h
            .attach(false)
            .await
            .unwrap_or_else(|e| panic!("attach {:?} after the kill: {e}", killed.elapsed()));
        assert!(
            matches!(&again.hello, Answer::Hello { pid, .. } if *pid == agent_pid),
            "{:?}",
            again.hello
        );
        assert_ne!(
            master_pid(&sshd, &control, "host-a"),
            master,
            "a new master"
        );
        assert_eq!(h.forwarded(here.port()), Some(there));
        echo_through(there, b"again").await.unwrap();

        // Shutdown cancels it before the master closes.
        again.shutdown(Duration::from_secs(10)).await;
        h.close_master().await;
        assert_eq!(h.forwarded(here.port()), None);
        let e = echo_through(there, b"closed").await.unwrap_err();
        assert!(e.contains("connect"), "{e}");
        let _ = std::fs::remove_dir_all(&control);
    });
    let left = wait_none_mention(&host_dir.display().to_string(), Duration::from_secs(15));
    assert!(left.is_empty(), "still running after close: {left:?}");
}

/// tester9's finding 3: a host whose agent is killed (SIGKILL) is lost; `status` then said its node was
/// `unreachable (…; last known: running) pid N (not answering)`, a process the agent had taken with it, and
/// `restart N` was refused without a way back. Now its node is `gone with host …` without a pid, and the
/// refusal says how to get it back (a new session on the same data). The status line was seen failing.
#[test]
fn a_host_whose_agent_is_killed_is_lost_and_its_node_is_gone_with_it_not_last_known_running() {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1, 2]), ("host-b", "b", &[3])]);
    let args = ["--hosts", hosts.to_str().unwrap(), "--seed", "3"];
    let mut s = up_in(&args, sshd.path().join("cluster"), Duration::from_secs(60));
    let said = "host host-b: agent pid ";
    let pid: i32 = s
        .out
        .seen
        .iter()
        .find_map(|l| l.split(said).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no `{said}`:\n{}", s.out.seen.join("\n")));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let wait = Duration::from_secs(30);
    let lost = s.out.wait_for("host-b lost", wait, |l| {
        l.contains("host host-b lost (").then(|| l.to_string())
    });
    let line = s.node_line(3);
    assert!(
        line.starts_with("n3 gone with host host-b (its agent is gone and stopped it;"),
        "{line} (after {lost})"
    );
    for word in ["last known: running", " pid ", "not answering"] {
        assert!(!line.contains(word), "`{word}` in {line}");
    }
    let refused = s.refused("restart 3");
    assert!(
        refused.contains("host host-b is lost (")
            && refused
                .contains("`quit`, then `squall up` again with the same --dir and hosts file"),
        "{refused}"
    );
    // The other host's nodes are untouched.
    let one = s.node_line(1);
    assert!(one.starts_with("n1 running"), "{one}");
    s.quit();
    sshd.assert_nothing_left("after quit");
}

/// Sends SIGCONT to a stopped agent when dropped, so a failing test leaves no agent stopped.
struct Stopped(nix::unistd::Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// Tester10's finding 4 (issue 24): while a host was unreachable, `step 2->1` said "no frame is held on
/// 2->1", `release 2->1` answered `ok`, and `held` left that host's links out without a word. Now each is
/// refused naming the host ("nothing was done"), and `held` says which links it could not list. The outage is
/// made by stopping host-b's agent (SIGSTOP): it misses its pings and squall cannot reconnect until SIGCONT.
#[test]
fn commands_on_held_frames_of_an_unreachable_host_are_refused_naming_it_and_held_says_what_it_left_out()
 {
    let Some(sshd) = Sshd::new() else { return };
    let hosts = sshd.hosts_file(&[("host-a", "a", &[1]), ("host-b", "b", &[2, 3])]);
    let wait = Duration::from_secs(60);
    let mut s = support::session::Up::new(&["--hosts", hosts.to_str().unwrap()])
        .wait(wait)
        .start();
    let agent: i32 = s
        .out
        .seen
        .iter()
        .find_map(|l| {
            let rest = l.split("host host-b: agent pid ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no agent pid for host-b:\n{}", s.out.seen.join("\n")));
    // Every link has an end on host-b (nodes 2 and 3): whichever frame is held first names one.
    s.ask("hold *", "hold");
    let deadline = Instant::now() + wait;
    let link = loop {
        let held = s.listing("held", "held:");
        if let Some(link) = held.first().and_then(|x| x.split_whitespace().nth(1)) {
            break link.to_string();
        }
        assert!(Instant::now() < deadline, "nothing held: {held:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let pid = nix::unistd::Pid::from_raw(agent);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stopped = Stopped(pid);
    s.out.wait_for("host-b unreachable", wait, |l| {
        l.contains("host host-b unreachable").then_some(())
    });
    for cmd in ["step", "drop-held", "release", "drop-stale"] {
        let cmd = format!("{cmd} {link}");
        let refused = s.refused(&cmd);
        assert!(
            refused.contains("host host-b is unreachable") && refused.contains("nothing was done"),
            "`{cmd}`: {refused}"
        );
        assert!(refused.contains(&link), "`{cmd}`: {refused}");
    }
    let held = s.listing("held", "held:");
    assert!(
        held.iter()
            .any(|l| l.starts_with("not listed: the frames held on ")
                && l.contains(&link)
                && l.contains("host host-b is unreachable")),
        "{held:?}"
    );
    drop(stopped);
    s.out.wait_for("host-b back", wait, |l| {
        l.contains("host host-b back").then_some(())
    });
    // Back: the frames are there, and `release` does what it says.
    let released = s.ask(&format!("release {link}"), "release");
    assert!(released.contains(&format!("on {link}")), "{released}");
    s.quit();
    sshd.assert_nothing_left("after quit");
}
