//! squall: a terminal cluster orchestrator and chaos tool for Raft. The binary `squall` wires these modules.

pub mod agent;
pub mod app;
pub mod bench;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod command;
pub mod commands;
pub mod histories;
pub mod input;
pub mod kind;

pub mod record;
pub mod remote;
pub mod render;
pub mod report;
pub mod run;
pub mod scenario;
pub mod session;
pub mod setup;
pub mod state;
pub mod ui;
pub mod units;
