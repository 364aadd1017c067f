//! `squall bench`: the benchmarks, each over real clusters started as sessions. `writes`: throughput, latency
//! and failover time (with `write_path`: where one write's time goes, against its floor); `disk`: the cost of the fault filesystem; `membership`: the time and cost of
//! membership changes; `kind`: another node kind's writes through squall's proxies against direct links;
//! `protocols`: the `writes` benchmark on Raft and on Multi-Paxos side by side.

pub mod disk;
pub mod kind;
pub mod membership;
pub mod protocols;
pub mod write_path;
pub mod writes;

use std::process::ExitCode;

use crate::cli::BenchArgs;

/// Runs the benchmark `args` asks for and prints its figures (human lines, then one JSON line).
pub async fn run(args: BenchArgs) -> ExitCode {
    if !args.protocol.is_empty() {
        protocols::run(args).await
    } else if args
        .node_kind
        .as_deref()
        .is_some_and(|k| k != crate::kind::DEFAULT)
    {
        kind::run(args).await
    } else if args.disk_faults {
        disk::run(args).await
    } else if args.membership {
        membership::run(args).await
    } else {
        writes::run(args).await
    }
}
