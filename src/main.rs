//! The `disco` command: argument parsing and wiring only.

mod bench;
mod benchbt;
mod benchio;
mod benchkit;
mod benchpage;
mod benchpar;
mod benchremap;
mod cli;
mod exit;
mod files;
mod gdb;
mod lab;
mod out;
mod report;
mod run;
mod timeline;
mod vms;
mod watch;

use clap::Parser;

use crate::cli::{Cli, Command, RunArgs};
use crate::exit::{Ending, EXIT_BAD_INPUT, EXIT_OK, EXIT_OUTPUT, EXIT_PIPE_CLOSED};
use crate::out::OutputError;

fn main() {
    watch::install();
    let result = match Cli::try_parse() {
        Ok(cli) => match cli.command {
            Some(Command::Run(args)) => run::run(*args).map(Some),
            Some(Command::Bench(args)) => bench::run(&args).map(|()| None),
            Some(Command::Flow(args)) => flow(&args).map(|()| None),
            Some(Command::Lab(args)) => {
                lab::run(&args).map(|status| Some(Ending::Graded { status }))
            }
            None => run::run(RunArgs::default()).map(Some),
        },
        // Usage errors: clap's message, status 2 (bad input).
        Err(e) if e.use_stderr() => e.exit(),
        // --help and --version: output like any other.
        Err(e) => e
            .print()
            .map(|()| None)
            .map_err(|err| OutputError::stdout(err).into()),
    };
    let (status, line) = ending(result.and_then(|e| {
        out::flush_stdout()?;
        Ok(e)
    }));
    if let Some(line) = line {
        out::say(&line);
    }
    std::process::exit(status);
}

/// The exit status and the line on standard error that names it
/// (src/exit.rs): a run's ending, or the error that stopped disco.
fn ending(result: anyhow::Result<Option<Ending>>) -> (i32, Option<String>) {
    match result {
        Ok(Some(e)) => e.status(),
        Ok(None) => (EXIT_OK, None),
        Err(e) => match e.chain().find_map(|c| c.downcast_ref::<OutputError>()) {
            Some(OutputError::Closed) => (EXIT_PIPE_CLOSED, None),
            Some(o) => (
                EXIT_OUTPUT,
                Some(format!("disco: {o} (exit status {EXIT_OUTPUT})")),
            ),
            None => (EXIT_BAD_INPUT, Some(format!("disco: {e:#}"))),
        },
    }
}

/// `disco flow`: a trace window as a Markdown table (and an HTML page).
fn flow(args: &cli::FlowArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", args.trace.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let name = args.trace.display();
    if lines.iter().any(|l| monitor::flow::is_bare_machine_line(l))
        && monitor::flow::records(lines.iter().copied(), 1).is_ok_and(|(r, _)| r.is_empty())
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
    let window = lines.get(start..end).unwrap_or(&[]).iter().copied();
    let (records, names) =
        monitor::flow::records(window, start + 1).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let steps = monitor::flow::steps(&records, &names);
    if steps.is_empty() {
        anyhow::bail!(
            "{}: no monitor trace lines in that window",
            args.trace.display()
        );
    }
    out::print(&monitor::flow::markdown(&steps))?;
    if let Some(out) = &args.html {
        let title = format!("Trap flow: {}", args.trace.display());
        std::fs::write(out, monitor::flow::html(&title, &steps))
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    }
    Ok(())
}
