//! Maelstrom nodes on other hosts (issue 24 over issue 22): `squall up --maelstrom NODE --hosts FILE` on real
//! hosts, network namespaces joined by a bridge, each with its own address and sshd (`tests/support/netns.rs`),
//! the controller in the root namespace. Each node's bridge runs on its host and reaches squall's kv services
//! (which live in the controller) through a port of its host's loopback that the host's ssh connection
//! forwards back here (`src/remote/forward.rs`): inside a host's namespace nothing else of the controller's is
//! on 127.0.0.1.
//!
//! These tests need root (network namespaces): elsewhere they print "skipped: ..." and pass, except with
//! `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::maelstrom::{Session, node_script};
use support::netns::{self, World};

/// Node `n` runs on host `n` (0-based host `n - 1`).
const PLACEMENT: [&[u64]; 3] = [&[1], &[2], &[3]];

/// A python3 a host's ssh session finds (ssh gives the login shell's default PATH, not this test's).
fn python3() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.is_file() {
        return system;
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("python3"))
                .find(|p| p.is_file())
        })
        .expect("python3 on PATH")
}

/// Writes an executable Maelstrom node at `path`: the test's lin-kv node forwarding every operation to
/// squall's `lin-kv` service (`SERVICE=lin-kv`, set here because the environment of this test does not reach
/// the hosts).
fn write_service_node(path: &Path) {
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\nSERVICE=lin-kv PYTHONDONTWRITEBYTECODE=1 exec {} {}\n",
            python3().display(),
            node_script("linkv.py").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Node `node`'s log on its host (under the host's dir, in the cluster's folder), empty while there is none.
fn remote_log(w: &World, cdir: &Path, node: u64) -> String {
    let folder = std::fs::read_to_string(cdir.join("hosts-dir")).unwrap_or_default();
    let host = PLACEMENT.iter().position(|p| p.contains(&node)).unwrap();
    let log = w
        .host(host)
        .dir
        .join(folder.trim())
        .join(format!("node-{node}"))
        .join("node.log");
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Polls `cluster.json` until node `node` runs with a pid other than `old`; that pid.
fn new_pid(cdir: &Path, node: u64, old: u32) -> u32 {
    let deadline = Instant::now() + support::maelstrom::WAIT;
    loop {
        let text = std::fs::read(cdir.join("cluster.json")).unwrap_or_default();
        let file: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        let pid = file["nodes"].as_array().and_then(|ns| {
            ns.iter()
                .find(|n| n["id"] == node)
                .and_then(|n| n["pid"].as_u64())
        });
        match pid {
            Some(p) if p as u32 != old => return p as u32,
            _ => assert!(
                Instant::now() < deadline,
                "node {node} never ran again with a new pid (was {old}); cluster.json: {file}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of `name` in process `pid`'s environment.
fn env_of(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
}

#[test]
fn a_lin_kv_node_calling_squall_s_lin_kv_service_on_three_hosts_passes_through_a_partition_and_leaves_nothing()
 {
    let Some(w) = netns::world(3) else { return };
    let node = w.path().join("linkv-service.sh");
    write_service_node(&node);
    let hosts = w.hosts_file(&PLACEMENT);
    let seed = "2424";
    eprintln!("seed {seed}");
    let mut s = Session::start(
        node.to_str().unwrap(),
        &[
            "-n",
            "3",
            "--seed",
            seed,
            "--hosts",
            hosts.to_str().unwrap(),
            "--workload",
            "lin-kv",
            "--rate",
            "40",
        ],
        &[],
    );
    let cdir = s.cdir();
    // Every bridge runs in its host's namespace, told a port of that host's loopback for the services.
    let pids = support::node_pids(&cdir);
    assert_eq!(pids.len(), 3, "cluster.json lists {pids:?}");
    let mut told = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            w.processes(i).contains(pid),
            "node {} (pid {pid}) is not in {}'s namespace: {:?}",
            i + 1,
            w.host(i).alias,
            w.describe_processes(i)
        );
        let services = env_of(*pid, "SQUALL_MAELSTROM_SERVICES")
            .unwrap_or_else(|| panic!("node {} was told no services address", i + 1));
        let addr: std::net::SocketAddr = services.parse().unwrap();
        assert!(addr.ip().is_loopback(), "node {}: {services}", i + 1);
        told.push(services);
    }

    // The workload runs: each node answers through the lin-kv service, reached over its host's ssh.
    let mut ops = s.passes_with_ops(0, 40).0;
    let deadline = Instant::now() + support::maelstrom::WAIT;
    for n in 1..=3 {
        loop {
            let log = remote_log(&w, &cdir, n);
            if log.contains("answered by the lin-kv service") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "n{n} never said the lin-kv service answered; its log on host{n}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Node 2 killed and restarted on its host: the new bridge is told the same forward and the service
    // answers it again.
    s.ok("kill 2");
    ops = s.passes_with_ops(ops, 20).0;
    s.ok("restart 2");
    let pid = new_pid(&cdir, 2, pids[1]);
    assert!(
        w.processes(1).contains(&pid),
        "restarted node 2 (pid {pid}) is not on host2"
    );
    assert_eq!(
        env_of(pid, "SQUALL_MAELSTROM_SERVICES"),
        Some(told[1].clone()),
        "the restarted node 2 was told another services address"
    );
    ops = s.passes_with_ops(ops, 40).0;

    // A partition between the hosts: the service is not behind any link, so operations go on; then it heals.
    s.ok("partition 1|2,3");
    ops = s.passes_with_ops(ops, 40).0;
    s.ok("heal");
    let (_, verdict) = s.passes_with_ops(ops, 40);
    assert!(
        verdict.starts_with("ok: ") && verdict.contains("linearizab"),
        "{verdict}"
    );

    s.quit();
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running on the hosts: {left:?}");
}

#[test]
fn hosts_without_the_maelstrom_program_are_refused_with_exit_2_naming_each_host_and_the_path() {
    let Some(w) = netns::world(3) else { return };
    // The program exists only here: squall runs in a mount namespace of its own where a tmpfs over `bin`
    // holds it; the hosts see this machine's `bin`, empty.
    let bin = w.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let staged = w.path().join("linkv-service.sh");
    write_service_node(&staged);
    let program = bin.join("linkv-service.sh");
    let hosts = w.hosts_file(&PLACEMENT);
    let cdir = w.path().join("cluster");
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs squall-test "$1" && cp "$2" "$1/" && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(&bin)
        .arg(&staged)
        .arg(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "--dir"])
        .arg(&cdir)
        .arg("--maelstrom")
        .arg(&program)
        .args(["-n", "3", "--hosts"])
        .arg(&hosts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux)");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "squall up did not end within 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for h in 1..=3 {
        let want = format!(
            "host host{h} has no program {}: no such file",
            program.display()
        );
        assert!(err.contains(&want), "`{want}` not in: {err}");
    }
    assert!(err.contains("install them there"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("nodes up"),
        "nodes started"
    );
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running on the hosts: {left:?}");
}
