//! The `disco` command: argument parsing and wiring only.

mod bench;
mod benchkit;
mod cli;
mod gdb;
mod lab;
mod report;
mod run;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run::run(*args),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| 0),
        Some(Command::Flow(args)) => flow(&args).map(|()| 0),
        Some(Command::Lab(args)) => lab::run(&args),
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

/// `disco flow`: a trace window as a Markdown table (and an HTML page).
fn flow(args: &cli::FlowArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", args.trace.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let start = match &args.from {
        Some(f) => lines
            .iter()
            .position(|l| l.contains(f.as_str()))
            .ok_or_else(|| anyhow::anyhow!("{}: no line contains {f:?}", args.trace.display()))?,
        None => 0,
    };
    let end = match &args.to {
        Some(t) => lines
            .iter()
            .skip(start)
            .position(|l| l.contains(t.as_str()))
            .map(|i| start + i + 1)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no line after the start contains {t:?}",
                    args.trace.display()
                )
            })?,
        None => lines.len(),
    };
    let steps = monitor::flow::steps(lines.get(start..end).unwrap_or(&[]).iter().copied());
    if steps.is_empty() {
        anyhow::bail!(
            "{}: no monitor trace lines in that window",
            args.trace.display()
        );
    }
    print!("{}", monitor::flow::markdown(&steps));
    if let Some(out) = &args.html {
        let title = format!("Trap flow: {}", args.trace.display());
        std::fs::write(out, monitor::flow::html(&title, &steps))
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    }
    Ok(())
}
