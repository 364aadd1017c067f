//! `squall bench --disk-faults`: the cost of serving every node's data directory through squall's fault
//! filesystem with no fault set. Runs the same write benchmark twice in one invocation, on a fresh 3-node
//! cluster each time (without, then with `--disk-faults`), prints both side by side with their ratio, the
//! FUSE operations the nodes made and their handler time, and a direct measurement of one small write plus
//! fdatasync through the mount and beside it. Ends with one JSON line.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::BenchArgs;

async fn one_run(
    args: &BenchArgs,
    disk_faults: bool,
) -> Result<(serde_json::Value, Vec<squall_chaos::disk::OpStat>), String> {
    let dir = std::env::temp_dir().join(format!(
        "squall-bench-{}-{}",
        std::process::id(),
        if disk_faults { "fuse" } else { "plain" }
    ));
    let cluster =
        super::writes::start(super::writes::bench_session(args, dir.clone(), disk_faults))
            .await
            .map_err(|(_, e)| e)?;
    let no_failovers = BenchArgs {
        failovers: 0,
        ..args.clone()
    };
    let result = super::writes::measure(&cluster, &no_failovers).await;
    let ops = cluster.disk_op_stats();
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|r| (r, ops))
}

/// Mean time of `n` × (append 128 bytes, fdatasync) in `dir`, in microseconds.
fn append_sync_micros(dir: &std::path::Path, n: u32) -> Result<f64, String> {
    let path = dir.join("probe");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let buf = [7u8; 128];
    let t = Instant::now();
    for _ in 0..n {
        f.write_all(&buf).map_err(|e| e.to_string())?;
        f.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(n))
}

/// Runs `squall bench --disk-faults`.
pub async fn run(args: BenchArgs) -> ExitCode {
    if let Err(e) = squall_chaos::disk::available() {
        return crate::setup::fail(2, format!("--disk-faults: {e}"));
    }
    eprintln!("without --disk-faults:");
    let plain = match one_run(&args, false).await {
        Ok((r, _)) => r,
        Err(e) => return crate::setup::fail(1, e),
    };
    eprintln!("with --disk-faults (fault filesystem and time shim, no fault set):");
    let (fuse, ops) = match one_run(&args, true).await {
        Ok(r) => r,
        Err(e) => return crate::setup::fail(1, e),
    };
    let mut ratios = Vec::new();
    for (a, b) in plain["levels"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(fuse["levels"].as_array().into_iter().flatten())
    {
        let (wa, wb) = (
            a["writes_per_sec"].as_f64().unwrap_or(0.0),
            b["writes_per_sec"].as_f64().unwrap_or(0.0),
        );
        let ratio = if wa > 0.0 { wb / wa } else { 0.0 };
        eprintln!(
            "clients {:>3}: {wa:>8.0} writes/s without, {wb:>8.0} with: ratio {ratio:.2}",
            a["clients"]
        );
        ratios.push(
            serde_json::json!({"clients": a["clients"], "ratio": (ratio * 100.0).round() / 100.0}),
        );
    }
    eprintln!("FUSE operations the nodes made (count, mean handler time):");
    let mut op_json = Vec::new();
    for s in ops.iter().filter(|s| s.count > 0) {
        let mean = s.handler_nanos as f64 / s.count as f64 / 1000.0;
        eprintln!("  {:<9} {:>9}  {mean:>8.1} µs", s.op, s.count);
        op_json.push(serde_json::json!({"op": s.op, "count": s.count, "mean_handler_us": (mean * 10.0).round() / 10.0}));
    }
    // One small append plus fdatasync, through a mount and beside it: the whole round trip a node pays.
    let probe = async {
        let tmp = std::env::temp_dir().join(format!("squall-bench-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let disk = squall_chaos::disk::MountedDisk::mount(&tmp.join("backing"), &tmp.join("mnt"))
            .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(tmp.join("plain")).map_err(|e| e.to_string())?;
        let direct = append_sync_micros(&tmp.join("plain"), 2000)?;
        let mounted = append_sync_micros(disk.mountpoint(), 2000)?;
        disk.unmount().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&tmp);
        Ok::<_, String>((direct, mounted))
    };
    let (direct, mounted) = match probe.await {
        Ok(p) => p,
        Err(e) => return crate::setup::fail(1, format!("append+fdatasync probe: {e}")),
    };
    eprintln!(
        "append 128 B + fdatasync: {direct:.0} µs direct, {mounted:.0} µs through the fault filesystem (+{:.0} µs)",
        mounted - direct
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "squall-disk-faults", "without": plain["levels"], "with": fuse["levels"],
            "ratio": ratios, "fuse_ops": op_json,
            "append_fdatasync_us": {"direct": direct.round(), "fuse": mounted.round()},
        })
    );
    ExitCode::SUCCESS
}
