//! `squall bench`: the benchmarks, each over real clusters started as sessions. `writes`: throughput, latency
//! and failover time; `disk`: the cost of the fault filesystem; `membership`: the time and cost of
//! membership changes.

pub mod disk;
pub mod membership;
pub mod writes;

pub use writes::run;
