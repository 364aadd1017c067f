//! The Maelstrom routing benchmark (BENCHMARKS.md, "Maelstrom message routing"); ignored by default, run it
//! with `cargo test --test maelstrom_bench -- --ignored --nocapture` (add `--release` for release numbers).
//!
//! Two nodes of `squall maelstrom-bench-node` (a Rust echo node, so the node's cost is small) run under
//! `squall up --maelstrom`, no fault set. K clients (1, 16, 64) each keep one echo in flight against n1 for a
//! few seconds: plain echoes (client → n1 → client) and relayed ones (n1 asks n2 first: two node-to-node
//! messages through squall's bridges and proxies). Messages per second count every message a bridge routed;
//! the added latency of one node-to-node hop is half the difference of the relayed and plain round trips.
//!
//! The baseline is the same node on a direct pipe, no squall: K requests kept in flight on its stdin, replies
//! read from its stdout. Half its echo round trip is what one message costs over a pipe, so a hop through
//! squall adds its hop figure minus that.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::Lines;

const RUN: Duration = Duration::from_secs(4);

/// Round trips (µs) of `clients` clients each sending echoes to `addr` for [`RUN`].
fn drive(addr: &str, clients: usize, via: Option<&str>) -> Vec<u64> {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.to_string();
            let via = via.map(str::to_string);
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(&addr).unwrap();
                conn.set_nodelay(true).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut rtts = Vec::new();
                let end = Instant::now() + RUN;
                let mut id = 0u64;
                while Instant::now() < end {
                    id += 1;
                    let mut body = serde_json::json!({"type": "echo", "msg_id": id, "echo": id});
                    if let Some(v) = &via {
                        body["via"] = serde_json::json!(v);
                    }
                    let msg = serde_json::to_vec(&serde_json::json!({
                        "src": format!("c{}", c + 100), "dest": "n1", "body": body
                    }))
                    .unwrap();
                    let t = Instant::now();
                    conn.write_all(&(msg.len() as u32).to_be_bytes()).unwrap();
                    conn.write_all(&msg).unwrap();
                    let mut len = [0u8; 4];
                    conn.read_exact(&mut len).unwrap();
                    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
                    conn.read_exact(&mut reply).unwrap();
                    rtts.push(t.elapsed().as_micros() as u64);
                }
                rtts
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// Round trips (µs) of echoes to the bench node on a direct pipe, `in_flight` kept outstanding for [`RUN`].
fn drive_pipe(in_flight: usize) -> Vec<u64> {
    use std::collections::HashMap;
    use std::io::BufRead as _;
    use std::sync::{Arc, Mutex};
    let mut node = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("maelstrom-bench-node")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = std::io::BufWriter::new(node.stdin.take().unwrap());
    let mut stdout = std::io::BufReader::new(node.stdout.take().unwrap());
    writeln!(
        stdin,
        r#"{{"src":"c0","dest":"n1","body":{{"type":"init","msg_id":0,"node_id":"n1","node_ids":["n1"]}}}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("init_ok"), "{line}");
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let (tokens_tx, tokens_rx) = std::sync::mpsc::sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        tokens_tx.send(()).unwrap();
    }
    let writer = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + RUN;
            let mut id = 0u64;
            while Instant::now() < end {
                if tokens_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                    break;
                }
                id += 1;
                sent.lock().unwrap().insert(id, Instant::now());
                writeln!(
                    stdin,
                    r#"{{"src":"c1","dest":"n1","body":{{"type":"echo","msg_id":{id},"echo":{id}}}}}"#
                )
                .unwrap();
                stdin.flush().unwrap();
            }
            // Dropping stdin ends the node once it has answered everything.
        })
    };
    let mut rtts = Vec::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let Some(id) = v["body"]["in_reply_to"].as_u64() else {
            continue;
        };
        if let Some(t) = sent.lock().unwrap().remove(&id) {
            rtts.push(t.elapsed().as_micros() as u64);
        }
        let _ = tokens_tx.try_send(());
    }
    writer.join().unwrap();
    let _ = node.wait();
    rtts
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn maelstrom_routing_throughput_and_added_latency_per_hop() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("bench-node.sh");
    std::fs::write(
        &node,
        format!(
            "#!/bin/sh\nexec {} maelstrom-bench-node\n",
            env!("CARGO_BIN_EXE_squall")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cdir = dir.path().join("cluster");
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .args(["up", "--headless", "-n", "2", "--dir"])
        .arg(&cdir)
        .arg("--maelstrom")
        .arg(&node)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    out.wait_for("the nodes to come up", Duration::from_secs(60), |l| {
        l.contains("nodes up").then_some(())
    });
    let addrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cdir.join("node-1/addr.json")).unwrap()).unwrap();
    let addr = addrs["client"].as_str().unwrap().to_string();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());
    println!(
        "clients | mode  | ops/s  | routed msgs/s | node-to-node msgs/s | rtt p50 µs | rtt p99 µs"
    );
    let mut p50s = Vec::new();
    let mut pipe_half = Vec::new();
    for in_flight in [1usize, 16, 64] {
        let mut rtts = drive_pipe(in_flight);
        rtts.sort_unstable();
        let ops = rtts.len() as f64 / RUN.as_secs_f64();
        let (p50, p99) = (pct(&rtts, 0.5), pct(&rtts, 0.99));
        println!(
            "{in_flight:>7} | pipe  | {ops:>6.0} | {:>13.0} | {:>19} | {p50:>10} | {p99:>10}",
            ops * 2.0,
            0
        );
        pipe_half.push(p50 as f64 / 2.0);
    }
    for (i, clients) in [1usize, 16, 64].into_iter().enumerate() {
        let mut row = Vec::new();
        for (mode, via, per_op, hops) in [("echo", None, 2u64, 0u64), ("relay", Some("n2"), 4, 2)] {
            let mut rtts = drive(&addr, clients, via);
            rtts.sort_unstable();
            let ops = rtts.len() as f64 / RUN.as_secs_f64();
            let (p50, p99) = (pct(&rtts, 0.5), pct(&rtts, 0.99));
            println!(
                "{clients:>7} | {mode:<5} | {ops:>6.0} | {:>13.0} | {:>19.0} | {p50:>10} | {p99:>10}",
                ops * per_op as f64,
                ops * hops as f64
            );
            row.push((p50, p99));
        }
        let hop50 = (row[1].0 as f64 - row[0].0 as f64) / 2.0;
        let hop99 = (row[1].1 as f64 - row[0].1 as f64) / 2.0;
        println!(
            "{clients:>7} | per node-to-node hop through squall: p50 {hop50:.0} µs, p99 {hop99:.0} µs; \
             one message on a direct pipe (half its echo p50): {:.0} µs; added by squall: {:.0} µs",
            pipe_half[i],
            hop50 - pipe_half[i]
        );
        p50s.push(hop50);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    writeln!(stdin, "quit").unwrap();
    let _ = child.wait();
    assert!(!p50s.is_empty());
}
