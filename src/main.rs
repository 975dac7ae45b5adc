//! The `disco` command: argument parsing and wiring only.

mod bench;
mod benchkit;
mod cli;
mod files;
mod gdb;
mod report;
mod run;
mod vms;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => run::run(*args),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| 0),
        Some(Command::Flow(args)) => flow(&args).map(|()| 0),
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
    let name = args.trace.display();
    if lines.iter().any(|l| monitor::flow::is_bare_machine_line(l))
        && monitor::flow::steps(lines.iter().copied()).is_empty()
    {
        anyhow::bail!(
            "{name}: a bare-machine trace has no guest or monitor to draw; \
             flow reads a monitor trace (disco run --vm IMAGE --trace exc --trace-file FILE)"
        );
    }
    let which = match (args.last, args.nth) {
        (true, _) => monitor::flow::Occurrence::Last,
        (false, n) => monitor::flow::Occurrence::Nth(n.unwrap_or(1)),
    };
    let window = monitor::flow::window(&lines, args.from.as_deref(), args.to.as_deref(), which)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let (start, end) = (window.start, window.end);
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
