//! Micro benchmark of the write-ahead log: how many `Storage::persist` calls (each one write and one
//! fdatasync) and entries per second one thread gets at batch sizes 1, 16 and 64, with 100-byte commands.
//!
//! `cargo run --release -p squall-node --example wal_bench [-- DIR [SECONDS]]`; DIR defaults to a temporary
//! directory (make sure it is on a real disk, not tmpfs, or the figures mean nothing). A bare append +
//! fdatasync loop runs first as the disk's floor at that moment. Ends with one JSON line.

use std::time::{Duration, Instant};

use squall_node::raft::{Entry, HardState, Payload};
use squall_node::storage::Storage;

fn main() {
    let mut args = std::env::args().skip(1);
    let tmp;
    let dir = match args.next() {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).expect("create DIR");
            d
        }
        None => {
            tmp = tempfile::tempdir().expect("temporary directory");
            tmp.path().to_path_buf()
        }
    };
    let seconds: f64 = args
        .next()
        .map_or(3.0, |s| s.parse().expect("SECONDS must be a number"));
    println!(
        "wal_bench: dir {}, {seconds} s per batch size",
        dir.display()
    );

    // The disk's own floor at this moment: a bare append + fdatasync of a record-sized write.
    let raw = {
        use std::io::Write;
        let path = dir.join("raw-baseline");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("raw file");
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            f.write_all(&[b'x'; 140]).expect("raw write");
            f.sync_data().expect("raw fdatasync");
            n += 1;
        }
        let _ = std::fs::remove_file(&path);
        n as f64 / start.elapsed().as_secs_f64()
    };
    println!("raw append + fdatasync: {raw:>8.0} /s");
    let mut json = vec![format!("\"raw_fdatasync_per_s\":{raw:.0}")];
    for batch in [1usize, 16, 64] {
        let sub = dir.join(format!("batch-{batch}"));
        let _ = std::fs::remove_dir_all(&sub);
        let (mut st, _) = Storage::open(&sub).expect("open storage");
        st.persist(
            Some(&HardState {
                term: 1,
                vote: Some(1),
            }),
            None,
            &[],
        )
        .expect("persist hard state");
        let mut next = 1u64;
        let mut latencies = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs_f64(seconds) {
            let entries: Vec<Entry> = (next..next + batch as u64)
                .map(|index| Entry {
                    index,
                    term: 1,
                    payload: Payload::Command(vec![b'x'; 100]),
                })
                .collect();
            let t = Instant::now();
            st.persist(None, None, &entries).expect("persist");
            latencies.push(t.elapsed());
            next += batch as u64;
        }
        let elapsed = start.elapsed().as_secs_f64();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
        let syncs = latencies.len() as f64 / elapsed;
        let entries = (next - 1) as f64 / elapsed;
        println!(
            "batch {batch:>2}: {syncs:>8.0} persists/s  {entries:>9.0} entries/s  p50 {:.3} ms  p99 {:.3} ms",
            pct(0.5),
            pct(0.99)
        );
        json.push(format!(
            "\"batch_{batch}\":{{\"persists_per_s\":{syncs:.0},\"entries_per_s\":{entries:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
            pct(0.5),
            pct(0.99)
        ));
        drop(st);
        let _ = std::fs::remove_dir_all(&sub);
    }
    println!("{{{}}}", json.join(","));
}
