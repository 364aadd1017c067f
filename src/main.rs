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
        Command::MaelstromNode(args) => squall::kind::maelstrom::bridge::run(args),
        Command::Agent(args) => squall::agent::run(args),
        Command::MaelstromBenchNode => squall::kind::maelstrom::benchnode::run(),
        Command::Up(args) => squall::commands::up(args),
        Command::Status(args) => {
            die_on_closed_output();
            squall::commands::status(args)
        }
        Command::Kv(args) => {
            die_on_closed_output();
            squall::commands::kv(args)
        }
        Command::Replay(args) => squall::commands::replay(args),
        Command::Render(args) => {
            die_on_closed_output();
            squall::render::render(args)
        }
        Command::CheckHistory(args) => {
            die_on_closed_output();
            squall::histories::check_history(args)
        }
        Command::History(args) => {
            die_on_closed_output();
            squall::histories::history(args)
        }
        Command::Report(args) => squall::report::report(args),
        Command::Run(args) => squall::run::run(args),
        Command::Scenario(args) => {
            die_on_closed_output();
            squall::scenario::export::export(args)
        }
        Command::Kinds => {
            die_on_closed_output();
            squall::commands::kinds()
        }
        Command::Bench(args) => {
            die_on_closed_output();
            squall::commands::bench(args)
        }
    }
}

/// Lets a write to a closed pipe end the process quietly, as it does `ls` in `ls | head`, instead of the
/// panic Rust's ignored SIGPIPE turns it into. Only for commands that hold nothing a signal would leave
/// behind: `up` handles a closed output itself and stops its cluster first (a bench's nodes follow their
/// supervisor through its lifeline).
fn die_on_closed_output() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler code, and no other thread exists yet.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
