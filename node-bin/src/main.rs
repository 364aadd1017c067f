//! `squall-node`: one Raft node of a squall cluster.

use clap::Parser;

/// One node of a squall Raft cluster: durable Raft over tarpc with a replicated key-value store.
#[derive(Parser, Debug)]
#[command(name = "squall-node", version)]
struct Cli {
    #[command(flatten)]
    node: squall_node::cli::NodeArgs,
}

fn main() -> std::process::ExitCode {
    squall_node::cli::run_node(Cli::parse().node)
}
