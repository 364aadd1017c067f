//! Spawns and drives a local cluster: node processes through the chaos supervisor, every peer link through
//! the chaos proxy, status polling, the built-in workload, and actions turned into faults. Everything it
//! learns goes out as [`Stamped`] events; nothing here touches the terminal.

mod check;
pub mod classify;
mod clients;
pub mod clock;
mod clockset;
pub mod command;
pub mod disk;
mod diskset;
pub mod fault;
mod faults;
mod faultset;
pub mod files;
mod flow;
pub mod guard;
mod guarded;
mod handle;
mod links;
mod linkv;
pub mod membership;
pub mod outcome;
mod perform;
mod poll;
mod start;
mod teach;
mod verify;
mod workload;

pub use files::{ClusterFile, NodeEntry};
pub use handle::{Cluster, ClusterSpec};
// For `disk.rs`, which names it through the folder.
pub(crate) use handle::node_name;
pub use outcome::Outcome;
pub(crate) use start::pick_ports;
