//! `disco run IMAGE --at WHEN:ACTION`: a kernel booted on the bare machine
//! that the monitor may be slid under and taken out of again. The work is
//! `monitor::host`; this file parses the entries and prints.

use std::io::Write;
use std::time::Instant;

use anyhow::{anyhow, bail};
use monitor::host::{Host, HostExit, Phase, Running};
use monitor::memstate::MemoryState;
use monitor::remap::{RemapIndex, RemapMode};
use monitor::timeline::{self, At, Timeline};
use sim::config::Settings;
use sim::Machine;

use crate::cli::{DumpFormat, RunArgs};
use crate::exit::Ending;
use crate::out::OutputError;

/// The timeline: the `--at` flags, or else the config file's `[[at]]`
/// tables.
pub(crate) fn entries(args: &RunArgs, s: &Settings) -> anyhow::Result<Vec<At>> {
    if args.at.is_empty() && s.at.is_empty() && s.remap_index.is_some() {
        bail!("--remap-index: there is no --at timeline whose remapping it would choose for");
    }
    if args.at.is_empty() && s.at.is_empty() && s.remap.is_some() {
        bail!("--remap: there is no --at timeline whose remapping it would choose for");
    }
    if !args.at.is_empty() {
        return args
            .at
            .iter()
            .map(|spec| timeline::parse_spec(spec).map_err(|e| anyhow!("{e}")))
            .collect();
    }
    let origin = args
        .config
        .as_ref()
        .map_or(String::new(), |p| format!("{}: ", p.display()));
    s.at.iter()
        .enumerate()
        .map(|(i, a)| {
            timeline::parse(&a.when, &a.action).map_err(|e| anyhow!("{origin}at[{i}]: {e}"))
        })
        .collect()
}

/// Runs the kernel along its timeline. Output goes through `crate::out`
/// like every run's: a closed pipe ends quietly, a failed write stops the
/// run, Ctrl-C reports where each CPU is.
pub(crate) fn run(
    args: &RunArgs,
    s: &Settings,
    m: Machine,
    entries: Vec<At>,
    dump: Option<DumpFormat>,
) -> anyhow::Result<Ending> {
    if args.gdb.is_some() {
        bail!("--gdb cannot follow a kernel across --at virtualize/devirtualize yet");
    }
    let mut host = Host::new(m, Timeline::new(entries));
    host.cost = crate::vms::cost_table(s, &args.costs)?;
    host.disk_irq = s.disk_irq;
    if let Some(i) = &s.remap_index {
        host.remap_index = RemapIndex::parse(i)
            .ok_or_else(|| anyhow!("--remap-index {i:?}: give backmap, refcount or search"))?;
    }
    if let Some(r) = &s.remap {
        host.remap_mode = RemapMode::parse(r)
            .ok_or_else(|| anyhow!("--remap {r:?}: give paused or concurrent"))?;
    }
    let start = Instant::now();
    let input = crate::run::stdin_bytes();
    let stdout = std::io::stdout();
    let tracing = s.trace.is_some();
    let mut pump = |host: &mut Host| -> Result<(), OutputError> {
        while let Ok(bytes) = input.try_recv() {
            host.push_input(&bytes);
        }
        let out = host.take_console();
        let lines = host.take_lines();
        let log = host.take_switch_log();
        if !out.is_empty() {
            let mut lock = stdout.lock();
            lock.write_all(&out)
                .and_then(|()| lock.flush())
                .map_err(OutputError::stdout)?;
        }
        for l in lines {
            crate::out::say(&format!("disco: {l}"));
        }
        if tracing {
            for (cycle, l) in log {
                crate::out::say(&format!("{cycle:>12} {l}"));
            }
        }
        Ok(())
    };
    let exit = crate::run::drive(&mut host, Host::run_quantum, &mut pump)?;
    let secs = start.elapsed().as_secs_f64();
    let ending = match exit {
        Some(HostExit::Halted(status)) => Ending::Halted { status },
        Some(HostExit::CycleLimit(cycles)) => Ending::CycleLimit { cycles },
        Some(HostExit::Idle) => Ending::Idle,
        Some(HostExit::Stopped(why)) => Ending::Stopped { why },
        None => Ending::Interrupted {
            cycles: host.machine().map_or(0, |m| m.now),
            positions: match host.running() {
                Some(Running::Native(m)) => {
                    crate::report::native_positions(m, &sim::loader::Symbols::default())
                }
                Some(Running::Virtual(mon)) => crate::report::monitor_positions(mon),
                None => Vec::new(),
            },
        },
    };
    let phases = host.finish().to_vec();
    let mut w = stdout.lock();
    if s.stats == Some(true) {
        match host.running() {
            Some(Running::Native(m)) => crate::report::native_stats(&mut w, m, secs),
            Some(Running::Virtual(mon)) => w.write_all(mon.stats_report().as_bytes()),
            None => Ok(()),
        }
        .and_then(|()| print_phases(&mut w, &phases))
        .map_err(OutputError::stdout)?;
    }
    match (dump, host.running()) {
        (Some(fmt), Some(Running::Native(m))) => crate::report::dump_native(&mut w, m, fmt),
        (Some(fmt), Some(Running::Virtual(mon))) => crate::report::dump_monitor(&mut w, mon, fmt),
        _ => Ok(()),
    }
    .and_then(|()| w.flush())
    .map_err(OutputError::stdout)?;
    Ok(ending)
}

/// `--stats`: one line per phase of the run.
fn print_phases(w: &mut impl Write, phases: &[Phase]) -> std::io::Result<()> {
    writeln!(w, "phases:")?;
    for p in phases {
        let busy = p.guest_cycles + p.monitor_cycles;
        let share = if busy == 0 {
            0.0
        } else {
            100.0 * p.monitor_cycles as f64 / busy as f64
        };
        // A memory state other than composed is named after the counts.
        let memory = match p.memory {
            Some(m) if m != MemoryState::Virtual => format!(", memory {m}"),
            _ => String::new(),
        };
        writeln!(
            w,
            "  {:<8} cycles {}..{}: {} exits, monitor {:.1}% ({} cycles), guest {} cycles, {} instructions{memory}",
            if p.virtual_ { "virtual" } else { "native" },
            p.start,
            p.end,
            p.exits,
            share,
            p.monitor_cycles,
            p.guest_cycles,
            p.instructions
        )?;
    }
    Ok(())
}
