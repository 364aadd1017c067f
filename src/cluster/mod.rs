//! Spawns and drives a local cluster: node processes through the chaos supervisor, every peer link through
//! the chaos proxy, status polling, the built-in workload, and actions turned into faults. Everything it
//! learns goes out as [`Stamped`](crate::state::Stamped) events; nothing here touches the terminal.

mod advertised;
mod backend;
mod check;
pub mod classify;
mod clients;
pub mod clock;
pub(crate) mod clockset;
pub mod command;
pub mod disk;
pub(crate) mod diskops;
pub(crate) mod diskset;
pub mod fault;
mod faults;
mod faultset;
pub mod files;
mod flow;
mod fresh;
pub mod guard;
mod guarded;
mod handle;
mod links;
mod linkv;
mod lock;
mod lock_client;
pub mod membership;
pub mod outcome;
mod perform;
mod placement;
pub use placement::nodes_needing_a_host;
mod poll;
mod ports;
mod start;
mod teach;
mod verify;
mod workload;

pub use files::{ClusterFile, NodeEntry};
pub use handle::{Cluster, ClusterSpec};
/// How many clients the lock workloads run (`pause-client C` and `slow-client C` name 1 to this).
pub use lock::CLIENTS as LOCK_CLIENTS;
pub use outcome::Outcome;
pub use perform::NOTHING_TO_HEAL;
pub(crate) use ports::{free_ports, pick_ports};
pub use start::network_for;
