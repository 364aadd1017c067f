//! squall: a terminal cluster orchestrator and chaos tool for Raft. The binary `squall` wires these modules.

pub mod app;
pub mod bench;
pub mod bench_disk;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod input;
pub mod record;
pub mod state;
pub mod ui;
