//! `squall`: argument parsing and wiring only; the work lives in the library modules.

use std::process::ExitCode;

use clap::Parser;
use squall::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints usage errors with a hint and exits 2; help and version exit 0.
            e.exit();
        }
    };
    match cli.command {
        Command::Node(args) => squall_node::cli::run_node(args),
        Command::Up(args) => squall::commands::up(args),
        Command::Status(args) => squall::commands::status(args),
        Command::Kv(args) => squall::commands::kv(args),
        Command::Replay(args) => squall::commands::replay(args),
        Command::Bench(args) => squall::commands::bench(args),
    }
}
