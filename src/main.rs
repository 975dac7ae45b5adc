//! The `disco` command: argument parsing and wiring only.

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "disco",
    version,
    about = "A MIPS R4000 multiprocessor simulator and Disco-style monitor"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure simulation speed and virtualization cost.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bench(args)) => bench::run(&args),
        None => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("disco: {e:#}");
        std::process::exit(2);
    }
}
