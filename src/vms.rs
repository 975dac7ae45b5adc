//! The VMs of a run under the monitor: the command line and the config
//! file mapped onto `monitor::build`, its refusals named as the user gave
//! them (docs/config.md, "Under the monitor").

use anyhow::anyhow;
use monitor::build::{BuildError, Built, Setup};
use monitor::spec::VmSpec;
use monitor::{MonitorConfig, MonitorError};
use sim::config::{ConfigError, Settings};

use crate::cli::RunArgs;
use crate::run::setting_error;

/// The monitor running `specs`, every check passed, and the VMs' console
/// files, created last.
pub(crate) fn monitor(
    args: &RunArgs,
    s: &Settings,
    (pcpus, quantum, max_cycles): (usize, u64, Option<u64>),
    specs: &[VmSpec],
) -> anyhow::Result<Built> {
    // Under the monitor `mem` is the machine's memory.
    let machine_mem = s.machine_mem().map_err(|e| setting_error(args, e))?;
    let setup = Setup {
        monitor: MonitorConfig {
            machine_mem,
            ..MonitorConfig::default()
        },
        disk_irq: s.disk_irq,
        reads: args
            .config
            .iter()
            .map(|c| ("config file", c.as_path()))
            .collect(),
        writes: s
            .trace_file
            .iter()
            .map(|t| ("trace file", t.as_path()))
            .collect(),
    };
    let refused = |e: BuildError| match e {
        BuildError::Monitor(MonitorError::MachineMemory(problem)) if s.mem.is_some() => {
            setting_error(
                args,
                ConfigError::Invalid {
                    key: "mem",
                    problem,
                },
            )
        }
        e => anyhow!("{e}"),
    };
    // The VMs' files are checked and read before the cost table and the
    // tier, as they always were: the first problem reported stays the same.
    let vms = monitor::build::prepare(specs, &setup).map_err(refused)?;
    vms.into_monitor(MonitorConfig {
        pcpus,
        quantum,
        max_cycles,
        machine_mem,
        seed: s.seed.unwrap_or(0),
        epoch: s.epoch.unwrap_or(0),
        cost: cost_table(s, &args.costs)?,
        tier: s.tier().map_err(|e| anyhow!("{e}"))?,
        ..MonitorConfig::default()
    })
    .map_err(refused)
}

/// The monitor's cost table: the config file's `[cost]` entries, then the
/// `--cost NAME=CYCLES` flags.
pub(crate) fn cost_table(s: &Settings, flags: &[String]) -> anyhow::Result<monitor::cost::Cost> {
    let mut cost = monitor::cost::COST;
    for (name, v) in s.cost.iter().flatten() {
        let cycles = v
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| anyhow!("cost.{name}: {v} is not a number of cycles"))?;
        cost.set(name, cycles)
            .map_err(|e| anyhow!("cost.{name}: {e}"))?;
    }
    for f in flags {
        cost.apply(f).map_err(|e| anyhow!("--cost {e}"))?;
    }
    Ok(cost)
}
