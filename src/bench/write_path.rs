//! Where one write's time goes, and the floor it is measured against (issue 18, "Write path").
//!
//! The breakdown comes from the nodes' own stage timings (control call `write_path`, see
//! [`squall_node::rpc::StageTiming`]); the floor is measured by the bench itself on the same machine in the
//! same run: one `fdatasync` of a WAL-sized record in the directory the nodes write to, plus two loopback round
//! trips through squall's link proxy. A write cannot be acknowledged faster than that: the client's request
//! and answer are one round trip, the leader's AppendEntries to a follower and its answer another, and the
//! follower's fdatasync lies between them (the leader's own fdatasync overlaps it, Raft thesis §10.2.1).
//!
//! The node preallocates its WAL (`squall_node::storage::PREALLOCATE_STEP`), so its appends overwrite
//! allocated space, which syncs faster than an append that grows the file. The floor is kept as defined (an
//! appending fdatasync), and a second one beside it uses the node's way: an overwrite of `fallocate`d space,
//! measured in the same loop, sample for sample alternating with the appending one, so noise hits both alike.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use squall_chaos::proxy::Network;
use squall_node::rpc::StageTiming;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cluster::Cluster;

/// Bytes of one record in the floor's fdatasync: about one small put with its WAL framing.
const RECORD_BYTES: usize = 128;
/// Samples of each floor measurement.
const SAMPLES: usize = 400;

/// The floor of one write on this machine, in microseconds (medians).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Floor {
    /// One write of [`RECORD_BYTES`] appended to a file plus its `fdatasync`.
    pub fsync_us: u64,
    /// One write of [`RECORD_BYTES`] into `fallocate`d space of a file plus its `fdatasync`, as the node's WAL
    /// appends are; `None` when the filesystem refuses `fallocate`.
    pub overwrite_fsync_us: Option<u64>,
    /// One small request and its answer over loopback through one proxy link.
    pub proxy_round_trip_us: u64,
}

impl Floor {
    /// One fdatasync plus two proxy round trips.
    pub(crate) fn total_us(&self) -> u64 {
        self.fsync_us + 2 * self.proxy_round_trip_us
    }

    /// The same with the overwriting fdatasync, when measured.
    pub(crate) fn overwrite_total_us(&self) -> Option<u64> {
        self.overwrite_fsync_us
            .map(|f| f + 2 * self.proxy_round_trip_us)
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let ms = |us: u64| us as f64 / 1000.0;
        serde_json::json!({
            "fdatasync_ms": ms(self.fsync_us),
            "proxy_round_trip_ms": ms(self.proxy_round_trip_us),
            "floor_ms": ms(self.total_us()),
            "overwrite_fdatasync_ms": self.overwrite_fsync_us.map(ms),
            "overwrite_floor_ms": self.overwrite_total_us().map(ms),
        })
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[(v.len() - 1) / 2]
}

/// Measures the floor: fdatasyncs of files in `dir` (the filesystem the nodes write to), appending and
/// overwriting preallocated space in turn, and round trips through a proxy link of squall's chaos crate to an
/// echo server, all on this machine now.
pub(crate) async fn measure_floor(dir: &Path) -> Result<Floor, String> {
    let path = dir.join("floor-fsync.tmp");
    let prealloc_path = dir.join("floor-fsync-prealloc.tmp");
    let (fsync_us, overwrite_fsync_us) =
        tokio::task::spawn_blocking(move || -> Result<(u64, Option<u64>), String> {
            use std::os::unix::fs::FileExt as _;
            let open = |p: &Path, append: bool| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .read(true)
                    .write(true)
                    .append(append)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))
            };
            let mut f = open(&path, true)?;
            let g = open(&prealloc_path, false)?;
            let room = (SAMPLES * RECORD_BYTES) as i64;
            let preallocated =
                nix::fcntl::fallocate(&g, nix::fcntl::FallocateFlags::empty(), 0, room).is_ok()
                    && g.sync_all().is_ok();
            let record = [0x5au8; RECORD_BYTES];
            let mut samples = Vec::with_capacity(SAMPLES);
            let mut overwrites = Vec::with_capacity(SAMPLES);
            for i in 0..SAMPLES {
                let t = Instant::now();
                f.write_all(&record)
                    .and_then(|()| f.sync_data())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                samples.push(t.elapsed().as_micros() as u64);
                if preallocated {
                    let t = Instant::now();
                    g.write_all_at(&record, (i * RECORD_BYTES) as u64)
                        .and_then(|()| g.sync_data())
                        .map_err(|e| format!("{}: {e}", prealloc_path.display()))?;
                    overwrites.push(t.elapsed().as_micros() as u64);
                }
            }
            drop((f, g));
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&prealloc_path);
            Ok((median(samples), preallocated.then(|| median(overwrites))))
        })
        .await
        .map_err(|e| e.to_string())??;
    let proxy_round_trip_us = tokio::time::timeout(Duration::from_secs(30), proxy_round_trip())
        .await
        .map_err(|_| "the proxy round trips of the floor took over 30 s".to_string())??;
    Ok(Floor {
        fsync_us,
        overwrite_fsync_us,
        proxy_round_trip_us,
    })
}

/// The median round trip of a 64-byte frame and its 64-byte answer through one proxy link.
async fn proxy_round_trip() -> Result<u64, String> {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("echo server: {e}"))?;
    let echo_addr = echo.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        if let Ok((mut s, _)) = echo.accept().await {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 64];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    break;
                }
            }
        }
    });
    let net = Network::new(0);
    net.set_upstream(2, echo_addr);
    let proxy: SocketAddr = net
        .add_link(1, 2)
        .await
        .map_err(|e| format!("proxy link: {e}"))?;
    let mut s = tokio::net::TcpStream::connect(proxy)
        .await
        .map_err(|e| format!("{proxy}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    // One frame as tarpc sends it (4-byte big-endian length, then the payload), which the proxy cuts on.
    let mut buf = [7u8; 64];
    buf[..4].copy_from_slice(&60u32.to_be_bytes());
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES + 20 {
        let t = Instant::now();
        s.write_all(&buf).await.map_err(|e| e.to_string())?;
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        // The first few warm the connection up.
        if i >= 20 {
            samples.push(t.elapsed().as_micros() as u64);
        }
    }
    drop(s);
    server.abort();
    Ok(median(samples))
}

/// Every node's stage timings (nodes that do not answer are left out).
pub(crate) async fn stages(cluster: &Cluster) -> Vec<(u64, Vec<StageTiming>)> {
    let mut out = Vec::new();
    for (node, addr) in cluster.api_addrs() {
        if let Ok(s) = squall_node::client::fetch_write_path(addr, Duration::from_millis(500)).await
        {
            out.push((node, s));
        }
    }
    out
}

fn p50(stages: &[StageTiming], name: &str) -> Option<u64> {
    stages
        .iter()
        .find(|s| s.stage == name && s.count > 0)
        .map(|s| s.p50_us)
}

/// The breakdown of one write at the level just measured, as lines for a person and one JSON value: the
/// leader's stages, the followers' persist, and what is left of the client's median for the client-to-leader
/// round trip (client p50 minus the leader's proposed-to-answered median).
pub(crate) fn breakdown(
    leader: u64,
    all: &[(u64, Vec<StageTiming>)],
    client_p50_us: u64,
) -> (Vec<String>, serde_json::Value) {
    let ms = |us: u64| us as f64 / 1000.0;
    let Some((_, l)) = all.iter().find(|(n, _)| *n == leader) else {
        return (
            vec![format!(
                "write path: leader {leader} did not answer write_path"
            )],
            serde_json::Value::Null,
        );
    };
    let followers: Vec<u64> = all
        .iter()
        .filter(|(n, _)| *n != leader)
        .filter_map(|(_, s)| p50(s, "persist write"))
        .collect();
    let follower_persist = median(followers);
    let get = |name| p50(l, name).unwrap_or(0);
    let server = get("server");
    let rows = [
        (
            "client -> leader -> client (network, RPC)",
            client_p50_us.saturating_sub(server),
        ),
        ("leader persist queue", get("persist queue")),
        (
            "leader persist write (write + fdatasync)",
            get("persist write"),
        ),
        (
            "leader durable (proposed -> own copy durable)",
            get("leader durable"),
        ),
        (
            "replication round trip (via proxy, incl. follower persist)",
            get("append round trip"),
        ),
        (
            "follower persist write (write + fdatasync)",
            follower_persist,
        ),
        ("commit (proposed -> committed)", get("commit")),
        ("apply and answer", get("apply")),
        ("server (proposed -> answered)", server),
    ];
    let mut lines = vec![format!(
        "write path of one write (medians, leader {leader}; stages overlap, they do not add up):"
    )];
    let mut json = serde_json::Map::new();
    for (name, us) in rows {
        lines.push(format!("  {name:<60} {:>7.3} ms", ms(us)));
        json.insert(name.to_string(), serde_json::json!(ms(us)));
    }
    (lines, serde_json::Value::Object(json))
}
