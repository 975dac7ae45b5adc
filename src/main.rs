//! The `disco` command: argument parsing and wiring only.

mod bench;
mod cli;
mod gdb;
mod report;
mod run;
mod trace;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| 0),
        None => run::run(RunArgs::default()),
    };
    match result {
        Ok(status) => std::process::exit(status),
        Err(e) => {
            eprintln!("disco: {e:#}");
            std::process::exit(run::EXIT_BAD_INPUT);
        }
    }
}
