//! Pure checkers: no I/O. Live Raft safety invariants and liveness from the nodes' statuses.

pub mod invariants;
pub mod liveness;
