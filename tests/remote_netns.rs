//! Nodes on other machines (issue 24) on real hosts: network namespaces joined by a bridge, each with its own
//! address and its own sshd (`tests/support/netns.rs` builds them and says how). The controller (this test,
//! ssh, `squall status`, the workload client) runs in the root namespace and reaches the hosts over the
//! bridge, as it would reach machines over a LAN.
//!
//! These tests need root (network namespaces): elsewhere they print "skipped: ..." and pass, except with
//! `CI=true`, where they fail.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;

use support::agent::{Agent, launch_squall_node, leader, read_addrs};
use support::netns;
use support::session::Up;

const SQUALL: &str = env!("CARGO_BIN_EXE_squall");

#[test]
fn a_world_subnet_is_taken_only_where_nothing_else_is_routed() {
    assert!(netns::overlaps("10.0.0.0/8", 77));
    assert!(netns::overlaps("10.77.77.0/24", 77));
    assert!(netns::overlaps("10.77.77.9", 77));
    assert!(netns::overlaps("10.77.77.128/25", 77));
    assert!(!netns::overlaps("10.77.78.0/24", 77));
    assert!(!netns::overlaps("192.0.2.0/24", 77));
}

/// The namespaces, the root interface and the sshd processes of world `n`, as the system lists them.
fn traces_of_world(n: u8, sshd: &[u32]) -> Vec<String> {
    let mut left = Vec::new();
    let list = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("ip").args(args).output().unwrap().stdout)
            .into_owned()
    };
    for ns in list(&["netns", "list"]).lines() {
        if ns.starts_with(&format!("sqw{n}-")) {
            left.push(format!("namespace {ns}"));
        }
    }
    for l in list(&["-br", "link"]).lines() {
        if l.starts_with(&format!("sqw{n}-")) {
            left.push(format!("interface {l}"));
        }
    }
    for p in sshd.iter().filter(|p| support::alive(**p)) {
        left.push(format!("sshd pid {p}"));
    }
    left
}

#[test]
fn a_world_gives_each_host_only_its_own_address_and_is_torn_down_when_its_test_panics() {
    let Some(w) = netns::world(2) else { return };
    let n = w.n;
    let dir = w.path().to_path_buf();
    // Each host sees its own loopback and its one address, and reaches the other host over the bridge (ssh
    // from host1 to host2, with the same config: the files are shared).
    let out = w
        .ssh(0)
        .arg(format!(
            "ip -br -4 addr; ssh -F {} -T -o BatchMode=yes host2 'echo from host2'",
            w.ssh_config().display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addrs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains('/'))
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        addrs,
        ["127.0.0.1/8".to_string(), format!("{}/24", w.host(0).addr)],
        "host1's addresses: {text}"
    );
    assert!(text.contains("from host2"), "{text}");
    let sshd: Vec<u32> = (0..2).filter_map(|i| w.sshd_pid(i)).collect();
    assert_eq!(sshd.len(), 2);
    assert!(traces_of_world(n, &[]).len() >= 4, "the world is not there");
    // A test that fails while it holds the world: unwinding drops it.
    let failed = std::thread::spawn(move || {
        let _held = w;
        panic!("a failing test");
    })
    .join();
    assert!(failed.is_err());
    let left = traces_of_world(n, &sshd);
    assert!(left.is_empty(), "left after the failed test: {left:?}");
    assert!(!dir.exists(), "{} left", dir.display());
}

#[test]
fn agents_in_three_namespaces_run_five_nodes_that_elect_replicate_and_fail_over_across_the_bridge()
{
    let Some(w) = netns::world(3) else { return };
    let placement: [&[u64]; 3] = [&[1, 2], &[3, 4], &[5]];
    let host_of = |n: u64| placement.iter().position(|p| p.contains(&n)).unwrap();
    let addr_of = |h: usize| IpAddr::V4(w.host(h).addr);
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| Agent::over_ssh(w.ssh(i), &w.host(i).dir))
        .collect();
    for (i, a) in agents.iter_mut().enumerate() {
        let hello = a.call(serde_json::json!({"op": "hello"}));
        let pid = hello["hello"]["pid"].as_u64().unwrap() as u32;
        // The agent runs on its host: in that host's namespace.
        assert!(
            w.processes(i).contains(&pid),
            "agent pid {pid} is not in {}'s namespace: {:?}",
            w.host(i).alias,
            w.describe_processes(i)
        );
        a.call(
            serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""},
            "seed": 24, "bind": addr_of(i).to_string()}),
        );
    }
    // Every directed link's proxy on its sender's host, listening on that host's address.
    let mut proxies = std::collections::BTreeMap::new();
    for from in 1..=5u64 {
        for to in (1..=5u64).filter(|&t| t != from) {
            let r = agents[host_of(from)]
                .call(serde_json::json!({"op": "link", "from": from, "to": to}));
            let addr: SocketAddr = r["link"]["addr"].as_str().unwrap().parse().unwrap();
            assert_eq!(addr.ip(), addr_of(host_of(from)), "link {from}->{to}");
            proxies.insert((from, to), addr);
        }
    }
    let node_dir = |id: u64| w.host(host_of(id)).dir.join(format!("node-{id}"));
    for id in 1..=5u64 {
        let peers = proxies
            .iter()
            .filter(|((f, _), _)| *f == id)
            .map(|((_, t), a)| (*t, *a))
            .collect();
        launch_squall_node(
            &mut agents[host_of(id)],
            id,
            &node_dir(id),
            peers,
            addr_of(host_of(id)),
        );
    }
    let mut apis = Vec::new();
    for id in 1..=5u64 {
        let (peer, api) = read_addrs(&node_dir(id), Duration::from_secs(30));
        assert_eq!(peer.ip(), addr_of(host_of(id)), "node {id}'s peer port");
        assert_eq!(api.ip(), addr_of(host_of(id)), "node {id}'s API port");
        apis.push((id, api));
        for a in agents.iter_mut() {
            a.call(serde_json::json!({"op": "upstream", "to": id, "addr": peer.to_string()}));
        }
    }
    // The controller (this namespace) reaches every node's API over the bridge.
    let first = leader(&apis, Duration::from_secs(30), None);
    let peers: Vec<String> = apis.iter().map(|(id, a)| format!("{id}={a}")).collect();
    let kv = |args: &[&str]| {
        let out = Command::new(SQUALL)
            .args(["kv", "--timeout", "10s", "--peers", &peers.join(",")])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = kv(&["put", "across", "hosts"]);
    assert_eq!(code, Some(0), "put: {err}");
    // The leader's frames crossed the bridge: its links towards nodes on other hosts forwarded them.
    let status = agents[host_of(first)].call(serde_json::json!({"op": "status"}));
    let crossed: Vec<u64> = status["status"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["link"]["from"] == first)
        .filter(|l| host_of(l["link"]["to"].as_u64().unwrap()) != host_of(first))
        .filter(|l| l["frames_forwarded"].as_u64().unwrap() > 0)
        .map(|l| l["link"]["to"].as_u64().unwrap())
        .collect();
    assert!(
        !crossed.is_empty(),
        "no frame from leader {first} crossed to another host: {status}"
    );
    // Kill the leader through its host's agent: the other four, on three hosts, elect a new one, which has
    // the write.
    agents[host_of(first)].call(serde_json::json!({"op": "kill", "node": first}));
    let live: Vec<(u64, SocketAddr)> = apis
        .iter()
        .copied()
        .filter(|(id, _)| *id != first)
        .collect();
    let second = leader(&live, Duration::from_secs(30), Some(first));
    assert_ne!(first, second);
    let (code, value, err) = kv(&["get", "across"]);
    assert_eq!((code, value.as_str()), (Some(0), "hosts"), "get: {err}");
    // Each agent stops its nodes when told, and nothing is left in any host.
    for a in agents.iter_mut() {
        a.call(serde_json::json!({"op": "shutdown"}));
    }
    for a in agents.iter_mut() {
        let _ = a.process.wait();
    }
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn a_host_whose_sshd_is_stopped_is_refused_with_exit_2_naming_it_and_nothing_is_left_on_the_others()
{
    let Some(mut w) = netns::world(2) else { return };
    let hosts = w.hosts_file(&[&[1, 2], &[3]]);
    w.stop_sshd(1);
    let out = Command::new(SQUALL)
        .args(["up", "--headless", "--hosts"])
        .arg(&hosts)
        .arg("--dir")
        .arg(w.path().join("cluster"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let seen = format!(
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(2), "{seen}");
    assert!(err.contains("cannot reach host host2 over ssh"), "{seen}");
    assert!(err.contains("Connection refused"), "{seen}");
    assert!(!err.contains("host host1"), "host1 was reachable: {seen}");
    // host1's agent had started; it was stopped with everything it ran.
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}\n{seen}");
}

/// A length-prefixed echo server (4-byte big-endian length, then the body, sent back whole), listening on
/// `argv[1]` port 0; prints its port.
const ECHO_PY: &str = r#"
import socket, sys, threading
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = c.makefile("rb")
    while True:
        h = f.read(4)
        if len(h) < 4:
            return
        body = f.read(int.from_bytes(h, "big"))
        c.sendall(h + body)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Round trips of one 64-byte frame to `argv[1]` (direct) and `argv[2]` (through the proxy), interleaved in
/// `argv[3]` rounds of `argv[4]` each after a warm-up; prints p50/p99 of each in microseconds, as JSON.
const PINGPONG_PY: &str = r#"
import json, socket, sys, time
def conn(a):
    h, p = a.rsplit(":", 1)
    c = socket.create_connection((h, int(p)))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c, c.makefile("rb")
frame = (60).to_bytes(4, "big") + b"\x07" * 60
def rtts(cf, n):
    c, f = cf
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        c.sendall(frame)
        r = f.read(len(frame))
        out.append(time.perf_counter_ns() - t)
        assert r == frame, r
    return out
direct, proxied = conn(sys.argv[1]), conn(sys.argv[2])
rounds, each = int(sys.argv[3]), int(sys.argv[4])
rtts(direct, 300); rtts(proxied, 300)
d, p = [], []
for _ in range(rounds):
    d += rtts(direct, each)
    p += rtts(proxied, each)
def q(v, x):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * x))] / 1000, 1)
print(json.dumps({"frame_bytes": len(frame), "samples": len(d),
    "direct_p50_us": q(d, .5), "direct_p99_us": q(d, .99),
    "proxied_p50_us": q(p, .5), "proxied_p99_us": q(p, .99),
    "added_p50_us": round(q(p, .5) - q(d, .5), 1), "added_p99_us": round(q(p, .99) - q(d, .99), 1)}))
"#;

/// The figures of issue 24 for BENCHMARKS.md, printed as JSON lines (run with `cargo test --test remote_netns
/// figures -- --ignored --nocapture`): the round trip of a 64-byte frame from host1 to host2, direct and
/// through host1's sender-side proxy (run by a `squall agent` over ssh, as a cluster's is); the time from
/// `squall up --hosts` to the first leader line, five nodes on three hosts, against five local nodes; how long
/// a lost host takes to be reported unreachable.
#[test]
#[ignore = "prints the figures for BENCHMARKS.md; needs root and a quiet machine"]
fn figures() {
    let Some(w) = netns::world(3) else { return };
    let mut echo = w
        .exec(1, "python3")
        .arg("-c")
        .arg(ECHO_PY)
        .arg(w.host(1).addr.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = support::Lines::new(echo.stdout.take().unwrap());
    let port: u16 = lines.wait_for("the echo server's port", Duration::from_secs(10), |l| {
        l.trim().parse().ok()
    });
    let echo_addr = SocketAddr::new(IpAddr::V4(w.host(1).addr), port);
    let mut agent = Agent::over_ssh(w.ssh(0), &w.host(0).dir);
    agent.call(
        serde_json::json!({"op": "network", "kind": {"name": "squall", "digest": ""},
        "seed": 1, "bind": w.host(0).addr.to_string()}),
    );
    let r = agent.call(serde_json::json!({"op": "link", "from": 1, "to": 2}));
    let proxy = r["link"]["addr"].as_str().unwrap().to_string();
    agent.call(serde_json::json!({"op": "upstream", "to": 2, "addr": echo_addr.to_string()}));
    let out = w
        .exec(0, "python3")
        .arg("-c")
        .arg(PINGPONG_PY)
        .args([&echo_addr.to_string(), &proxy, "10", "1000"])
        .output()
        .unwrap();
    let _ = echo.kill();
    let _ = echo.wait();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{json}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["samples"], 10_000, "{v}");
    println!("remote link round trip: {v}");
    agent.call(serde_json::json!({"op": "shutdown"}));
    let _ = agent.process.wait();

    // From `squall up` to the first leader line: five nodes on three hosts (the first run copies squall to
    // each host), against the same five nodes on this machine.
    let hosts = w.hosts_file(&[&[1, 2], &[3, 4], &[5]]);
    let to_leader = |run: usize, remote: bool| -> f64 {
        let mut args = vec!["-n", "5"];
        if remote {
            args.extend(["--hosts", hosts.to_str().unwrap()]);
        }
        let t0 = std::time::Instant::now();
        let s = Up::new(&args)
            .dir(w.path().join(format!("up-{run}")))
            .wait(Duration::from_secs(60))
            .start();
        let took = t0.elapsed().as_secs_f64() * 1000.0;
        let _ = s.quit();
        took
    };
    let remote: Vec<f64> = (0..6).map(|run| to_leader(run, true)).collect();
    let local: Vec<f64> = (10..15).map(|run| to_leader(run, false)).collect();
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}");
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "up to leader: {}",
        serde_json::json!({"hosts": 3, "nodes": 5,
            "first_run_with_copy_ms": remote[0].round(),
            "remote_runs_ms": remote[1..].iter().map(|t| t.round()).collect::<Vec<_>>(),
            "remote_median_ms": median(&remote[1..]).round(),
            "local_runs_ms": local.iter().map(|t| t.round()).collect::<Vec<_>>(),
            "local_median_ms": median(&local).round()})
    );
}

/// How long an unreachable host takes to show in `squall up --hosts`'s feed, printed as a JSON line (run with
/// `cargo test --test remote_netns figures -- --ignored --nocapture`, which runs [`figures`] too): five nodes on
/// three hosts, host1 lost in one of two ways, 5 trials each, timed from the loss to the headless console's
/// `host host1 unreachable` line as the test reads it (the console holds each line 300 ms to print lines in
/// the order they happened; the dashboard shows the state at its next redraw): its ssh sessions killed (the
/// connection ends), then its cable unplugged on the bridge (nothing answers; the pings time out). After each
/// trial host1 comes back (`back` line) before the next. host1's nodes' feed records of a cable outage arrive
/// 1–3 s late once it is back; they no longer grow the console's hold (they come from the host's backlog, see
/// `ConsoleFeed`), so every cable trial prints at the fleet's loss plus the 300 ms hold (1.20–1.25 s; it was
/// 2.95–3.0 s after a reconnect while they did); [`figures_unreachable_on_the_dashboard`] is the issue's
/// figure (BENCHMARKS.md).
#[test]
#[ignore = "prints the figures for BENCHMARKS.md; needs root and a quiet machine"]
fn figures_unreachable_through_up() {
    let Some(w) = netns::world(3) else { return };
    let hosts = w.hosts_file(&[&[1, 2], &[3, 4], &[5]]);
    let mut s = Up::new(&["-n", "5", "--hosts", hosts.to_str().unwrap()])
        .dir(w.path().join("cluster"))
        .wait(Duration::from_secs(60))
        .start();
    let host1 = w.host(0).alias.clone();
    let mut shown = std::collections::BTreeMap::<&str, Vec<f64>>::new();
    for how in ["ssh", "cable"] {
        for _ in 0..5 {
            let t0 = std::time::Instant::now();
            if how == "cable" {
                w.cable(0, false);
            } else {
                w.drop_ssh_sessions(0);
            }
            s.out.wait_for(
                &format!("host1 unreachable ({how})"),
                Duration::from_secs(30),
                |l| {
                    l.contains(&format!("host {host1} unreachable"))
                        .then_some(())
                },
            );
            shown
                .entry(how)
                .or_default()
                .push(t0.elapsed().as_secs_f64() * 1000.0);
            // Back within the agent's grace period (10 s), so the next trial finds the same agent.
            w.cable(0, true);
            s.out.wait_for(
                &format!("host1 back ({how})"),
                Duration::from_secs(30),
                |l| l.contains(&format!("host {host1} back")).then_some(()),
            );
        }
    }
    let _ = s.quit();
    let left = w.wait_hosts_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "still running: {left:?}");
    println!(
        "unreachable shown in up --hosts after: {}",
        serde_json::json!({
            "cable_unplugged_ms": shown["cable"].iter().map(|t| t.round()).collect::<Vec<_>>(),
            "ssh_killed_ms": shown["ssh"].iter().map(|t| t.round()).collect::<Vec<_>>()})
    );
}

/// Node `n`'s row of the dashboard's nodes table (the first line of the screen that starts with `n{n} ` once
/// the table's borders and cursor are left off: the nodes panel is the topmost).
fn node_row(screen: &str, n: u64) -> Option<&str> {
    screen.lines().find(|l| {
        l.trim_start_matches(['│', '▶', ' '])
            .starts_with(&format!("n{n} "))
    })
}

/// Polls `tmux`'s screen every 10 ms until `f` accepts it (up to 30 s, then fails showing the screen).
fn wait_screen(tmux: &support::tmux::Tmux, what: &str, f: &dyn Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux.screen();
        if f(&screen) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what}; the screen shows:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the dashboard shows nodes 1 and 2 (host1's) unreachable: both rows say so in their process column
/// (`unreachable`, whole: the column widens while a host is cut off), as a person reads it.
fn host1_shown_unreachable(screen: &str) -> Option<bool> {
    let rows = [node_row(screen, 1)?, node_row(screen, 2)?];
    Some(rows.iter().all(|r| r.contains(" unreachable ")))
}

/// How long an unreachable host takes to show **on the dashboard** (issue 24's figure), printed as a JSON line
/// (run with `cargo test -p squall --test remote_netns figures -- --ignored --nocapture`, which runs the other
/// figures too): `squall up -n 5 --hosts FILE` (nodes 1,2 on host1) in a real terminal (tmux, 160×48); host1
/// is lost by killing its sshd's session processes (`ssh`) or by unplugging its cable on the bridge (`cable`),
/// and each loss is timed from just before it to the first `capture-pane` (polled every 10 ms) whose rows
/// n1 and n2 both show `unreachable` in their process column. Each session loses host1 twice: first on the
/// connection `up` made (`fresh`), then, once the dashboard shows it back, right after that reconnect
/// (`after_reconnect`); 5 sessions per way of losing it.
#[test]
#[ignore = "prints the figures for BENCHMARKS.md; needs root, tmux and a quiet machine"]
fn figures_unreachable_on_the_dashboard() {
    use support::tmux::{Tmux, header_leader, skipped_without_tmux};
    if skipped_without_tmux() {
        return;
    }
    let Some(w) = netns::world(3) else { return };
    let hosts = w.hosts_file(&[&[1, 2], &[3, 4], &[5]]);
    let mut shown = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for how in ["ssh", "cable"] {
        for run in 0..5 {
            let dir = w.path().join(format!("dash-{how}-{run}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut tmux = Tmux::start(
                &format!("unreach-{how}-{run}"),
                &dir,
                &format!(
                    "up -n 5 --hosts {} --dir {}",
                    hosts.display(),
                    dir.join("cluster").display()
                ),
            );
            tmux.wait = Duration::from_secs(60);
            tmux.wait_for("a leader in the header", header_leader);
            for when in ["fresh", "after_reconnect"] {
                wait_screen(&tmux, "host1's nodes shown reachable", &|s| {
                    host1_shown_unreachable(s) == Some(false)
                });
                let t0 = std::time::Instant::now();
                if how == "cable" {
                    w.cable(0, false);
                } else {
                    w.drop_ssh_sessions(0);
                }
                wait_screen(&tmux, &format!("host1 unreachable ({how}, {when})"), &|s| {
                    host1_shown_unreachable(s) == Some(true)
                });
                shown
                    .entry(format!("{how}_{when}_ms"))
                    .or_default()
                    .push((t0.elapsed().as_secs_f64() * 1000.0).round());
                // Back within the agent's grace period (10 s), so the next loss finds the same agent.
                w.cable(0, true);
            }
            wait_screen(&tmux, "host1 back", &|s| {
                host1_shown_unreachable(s) == Some(false)
            });
            tmux.keys(&["q"]);
            let code = tmux.exit_status("squall to exit after q");
            assert_eq!(code, "0", "squall's exit status:\n{}", tmux.screen());
            let left = w.wait_hosts_empty(Duration::from_secs(30));
            assert!(left.is_empty(), "still running: {left:?}");
        }
    }
    println!(
        "unreachable shown on the dashboard after: {}",
        serde_json::to_string(&shown).unwrap()
    );
}

/// Issue 24: a host lost again right after squall reconnected to it (the new channel relayed through
/// `squall agent --attach` over the ssh master that survived the outage) shows unreachable on the dashboard as
/// soon as the first time. The headless console once took 3 s for it (its hold-back, grown by the outage's
/// late lines; BENCHMARKS.md, "The unreachable host on the dashboard"); the dashboard does not hold, and the
/// fleet pings the new channel as the first. The bound only catches a reconnect path that reports late (2.5 s;
/// 0.95 s is the design, the measured figures are in BENCHMARKS.md).
#[test]
fn a_host_whose_cable_is_pulled_again_right_after_a_reconnect_shows_unreachable_on_the_dashboard_as_fast()
 {
    use support::tmux::{Tmux, header_leader, skipped_without_tmux};
    if skipped_without_tmux() {
        return;
    }
    let Some(w) = netns::world(3) else { return };
    let hosts = w.hosts_file(&[&[1, 2], &[3, 4], &[5]]);
    let mut tmux = Tmux::start(
        "unreach-again",
        w.path(),
        &format!(
            "up -n 5 --hosts {} --dir {}",
            hosts.display(),
            w.path().join("cluster").display()
        ),
    );
    tmux.wait = Duration::from_secs(60);
    tmux.wait_for("a leader in the header", header_leader);
    let mut took = Vec::new();
    for when in ["on the first connection", "right after a reconnect"] {
        wait_screen(&tmux, "host1's nodes shown reachable", &|s| {
            host1_shown_unreachable(s) == Some(false)
        });
        let t0 = std::time::Instant::now();
        w.cable(0, false);
        wait_screen(&tmux, &format!("host1 unreachable {when}"), &|s| {
            host1_shown_unreachable(s) == Some(true)
        });
        took.push((when, t0.elapsed()));
        w.cable(0, true);
    }
    eprintln!("host1 shown unreachable after: {took:?}");
    for (when, t) in &took {
        assert!(
            *t < Duration::from_millis(2500),
            "host1 shown unreachable {when} only {t:?} after its cable was pulled: {took:?}"
        );
    }
    wait_screen(&tmux, "host1 back", &|s| {
        host1_shown_unreachable(s) == Some(false)
    });
    tmux.keys(&["q"]);
    let code = tmux.exit_status("squall to exit after q");
    assert_eq!(code, "0", "squall's exit status:\n{}", tmux.screen());
    let left = w.wait_hosts_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "still running: {left:?}");
}

/// Issue 24, "no orphans on remote hosts", when no controller is left to reconnect: an agent killed with
/// SIGKILL (its controller gone too) leaves its fault filesystem as a dead mount in its directory; the next
/// agent started there (the next `up`) detaches it before it serves anything.
#[test]
fn the_next_agent_in_a_directory_detaches_the_dead_fault_filesystem_a_killed_agent_left() {
    let Some(w) = netns::world(1) else { return };
    let dir = w.host(0).dir.clone();
    let mut first = Agent::over_ssh(w.ssh(0), &dir);
    let can = first.call(serde_json::json!({"op": "capabilities"}));
    if let Some(why) = can["can"]["disk"].as_str() {
        eprintln!("skipped: this machine cannot serve disk faults: {why}");
        return;
    }
    let data = dir.join("node-1/data");
    first.call(
        serde_json::json!({"op": "disk", "node": 1, "action": {"mount": {
        "backing": dir.join("node-1/disk").display().to_string(),
        "data_dir": data.display().to_string()}}}),
    );
    assert_eq!(w.mounts(), vec![data.display().to_string()]);
    let hello = first.call(serde_json::json!({"op": "hello"}));
    let pid = hello["hello"]["pid"].as_u64().unwrap() as u32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        support::wait_gone(&[pid], Duration::from_secs(10)).is_empty(),
        "agent {pid} outlived SIGKILL"
    );
    let _ = first.process.wait();
    // Nobody reattached: the dead mount is still there.
    assert_eq!(
        w.mounts(),
        vec![data.display().to_string()],
        "the killed agent's mount"
    );
    assert!(
        std::fs::metadata(&data).is_err(),
        "{} still answers after its agent was killed",
        data.display()
    );
    let mut next = Agent::over_ssh(w.ssh(0), &dir);
    next.call(serde_json::json!({"op": "hello"}));
    assert_eq!(
        w.mounts(),
        Vec::<String>::new(),
        "the next agent in {} left the dead mount",
        dir.display()
    );
    next.call(serde_json::json!({"op": "shutdown"}));
    let _ = next.process.wait();
    let left = w.wait_hosts_empty(Duration::from_secs(15));
    assert!(left.is_empty(), "still running: {left:?}");
}
