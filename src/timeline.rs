//! `disco run IMAGE --at WHEN:ACTION`: a kernel booted on the bare machine
//! that the monitor may be slid under and taken out of again. The work is
//! `monitor::host`; this file parses the entries and prints.

use std::io::Write;
use std::time::Instant;

use anyhow::{anyhow, bail};
use monitor::host::{Host, HostExit, Phase, Running};
use monitor::remap::RemapIndex;
use monitor::timeline::{self, At, Timeline};
use sim::config::Settings;
use sim::Machine;

use crate::cli::{DumpFormat, RunArgs};
use crate::run::{EXIT_CYCLE_LIMIT, EXIT_IDLE};

/// The timeline: the `--at` flags, or else the config file's `[[at]]`
/// tables.
pub(crate) fn entries(args: &RunArgs, s: &Settings) -> anyhow::Result<Vec<At>> {
    if args.at.is_empty() && s.at.is_empty() && s.remap_index.is_some() {
        bail!("--remap-index: there is no --at timeline whose remapping it would choose for");
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

pub(crate) fn run(
    args: &RunArgs,
    s: &Settings,
    m: Machine,
    entries: Vec<At>,
    dump: Option<DumpFormat>,
) -> anyhow::Result<i32> {
    if args.gdb.is_some() {
        bail!("--gdb cannot follow a kernel across --at virtualize/devirtualize yet");
    }
    let mut host = Host::new(m, Timeline::new(entries));
    if let Some(i) = &s.remap_index {
        host.remap_index = RemapIndex::parse(i)
            .ok_or_else(|| anyhow!("--remap-index {i:?}: give backmap, refcount or search"))?;
    }
    let start = Instant::now();
    let input = crate::run::stdin_bytes();
    let stdout = std::io::stdout();
    let pump = |host: &mut Host| {
        while let Ok(bytes) = input.try_recv() {
            host.push_input(&bytes);
        }
        let out = host.take_console();
        let lines = host.take_lines();
        let log = host.take_switch_log();
        if !out.is_empty() {
            let mut lock = stdout.lock();
            let _ = lock.write_all(&out);
            let _ = lock.flush();
        }
        for l in lines {
            eprintln!("disco: {l}");
        }
        if s.trace.is_some() {
            for (cycle, l) in log {
                eprintln!("{cycle:>12} {l}");
            }
        }
    };
    let exit = loop {
        pump(&mut host);
        let step = host.run_quantum();
        pump(&mut host);
        if let Some(e) = step {
            break e;
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let status = match &exit {
        HostExit::Halted(status) => (status & 0xFF) as i32,
        HostExit::CycleLimit(cycles) => {
            eprintln!(
                "disco: stopped after {cycles} cycles (--max-cycles); the guest had not halted"
            );
            EXIT_CYCLE_LIMIT
        }
        HostExit::Idle => {
            eprintln!("disco: every CPU is parked, paused or stopped and nothing can wake them");
            EXIT_IDLE
        }
        HostExit::Stopped(why) => {
            eprintln!("disco: the monitor stopped the kernel: {why}");
            1
        }
    };
    let phases = host.finish().to_vec();
    if s.stats == Some(true) {
        match host.running() {
            Some(Running::Native(m)) => crate::report::native_stats(m, secs),
            Some(Running::Virtual(mon)) => print!("{}", mon.stats_report()),
            None => {}
        }
        print_phases(&phases);
    }
    match (dump, host.running()) {
        (Some(fmt), Some(Running::Native(m))) => crate::report::dump_native(m, fmt),
        (Some(fmt), Some(Running::Virtual(mon))) => crate::report::dump_monitor(mon, fmt),
        _ => {}
    }
    Ok(status)
}

/// `--stats`: one line per phase of the run.
fn print_phases(phases: &[Phase]) {
    println!("phases:");
    for p in phases {
        let busy = p.guest_cycles + p.monitor_cycles;
        let share = if busy == 0 {
            0.0
        } else {
            100.0 * p.monitor_cycles as f64 / busy as f64
        };
        println!(
            "  {:<8} cycles {}..{}: {} exits, monitor {:.1}% ({} cycles), guest {} cycles, {} instructions",
            if p.virtual_ { "virtual" } else { "native" },
            p.start,
            p.end,
            p.exits,
            share,
            p.monitor_cycles,
            p.guest_cycles,
            p.instructions
        );
    }
}
