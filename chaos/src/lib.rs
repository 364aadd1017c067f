//! squall's fault engine: the faults a person asks a cluster to suffer.
//!
//! Two halves, both unaware of Raft and of the terminal:
//! - [`process`]: start node processes and hit them with the named signals (kill, terminate, pause, resume),
//!   restart them with or without their data, observe every exit, and never leave one behind.
//! - [`proxy`]: a TCP proxy per directed link that understands length-delimited frames, so it can delay, drop,
//!   duplicate, reorder, throttle and cut traffic without tearing a frame; [`partition`] builds the named
//!   partition shapes out of link cuts.
//!
//! Beside them, [`disk`] (a fault filesystem) and [`clock`] (a preloaded time shim) fault what a process
//! reads from its disk and its clocks.

pub mod clock;
pub mod disk;
pub mod error;
pub mod partition;
pub mod process;
pub mod proxy;

pub use error::{ChaosError, PartitionError};
pub use partition::{Partition, Shape};
pub use process::{
    ExitEvent, LIFELINE_ENV, LIFELINE_EXIT_CODE, ProcState, ProcessSpec, Supervisor,
};
pub use proxy::{
    Classifier, Distribution, DropCause, Endpoint, Fate, Fault, FaultKind, FaultSpec, Flow,
    Framing, HeldFrame, LabelCount, LabelSet, LinkId, LinkStats, LostHeld, MessageEvent,
    MessageTrace, Network, SenderTable, Stepped,
};
/// The child's half of the lifeline, from its own crate (re-exported for programs that already link this one).
pub use squall_lifeline::watch_from_env as watch_lifeline_from_env;
