//! The VMs of a run under the monitor, built from their specifications:
//! names, files kept apart, images loaded, disks shared, and the machine's
//! memory (docs/config.md, "Under the monitor").

use std::fs::File;
use std::path::PathBuf;

use anyhow::anyhow;
use monitor::{Monitor, MonitorConfig, MonitorError, VmConfig};
use sim::config::{ConfigError, Settings};
use sim::dev::DiskImage;

use crate::cli::{vm_names, RunArgs, VmSpec};
use crate::run::{load_image, open_disk, setting_error};

/// The monitor running `specs`, every check passed; nothing written yet.
pub(crate) fn monitor(
    args: &RunArgs,
    s: &Settings,
    (pcpus, quantum, max_cycles): (usize, u64, Option<u64>),
    specs: &[VmSpec],
) -> anyhow::Result<Monitor> {
    // Under the monitor `mem` is the machine's memory.
    let machine_mem = s.machine_mem().map_err(|e| setting_error(args, e))?;
    let refused = |e: MonitorError| match e {
        MonitorError::MachineMemory(problem) if s.mem.is_some() => setting_error(
            args,
            ConfigError::Invalid {
                key: "mem",
                problem,
            },
        ),
        e => anyhow!("{e}"),
    };
    let shapes: Vec<(u64, usize)> = specs
        .iter()
        .map(|v| (mem_of(v), v.cpus.unwrap_or(1)))
        .collect();
    monitor::machine_memory(&shapes, machine_mem).map_err(refused)?;
    let names = vm_names(specs).map_err(|e| anyhow!("{e}"))?;
    crate::files::vms_apart(specs, s, args.config.as_deref())?;
    let mut vms = Vec::new();
    // One image per disk file, shared by the VMs that name it.
    let mut disks: Vec<(PathBuf, DiskImage)> = Vec::new();
    for (spec, name) in specs.iter().zip(names) {
        let mem = mem_of(spec);
        let (img, _) = load_image(&spec.image, mem)?;
        let disk = match &spec.disk {
            Some(path) => Some(match disks.iter().find(|(p, _)| p == path) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = open_disk(path)?;
                    disks.push((path.clone(), d.clone()));
                    d
                }
            }),
            None => None,
        };
        vms.push(VmConfig {
            name,
            image: img,
            mem_bytes: mem,
            vcpus: spec.cpus.unwrap_or(1),
            disk,
            disk_irq_latency: s.disk_irq,
            io: spec.io,
            commpage: spec.commpage,
            exec: spec.exec,
        });
    }
    Monitor::new(MonitorConfig {
        pcpus,
        quantum,
        max_cycles,
        vms,
        machine_mem,
        seed: s.seed.unwrap_or(0),
        epoch: s.epoch.unwrap_or(0),
        cost: cost_table(s, &args.costs)?,
        tier: s.tier().map_err(|e| anyhow!("{e}"))?,
        ..MonitorConfig::default()
    })
    .map_err(refused)
}

/// A VM's memory: its own `mem`, or the bare machine's default.
fn mem_of(spec: &VmSpec) -> u64 {
    spec.mem.unwrap_or(sim::config::DEFAULT_RAM)
}

/// Each VM's console file, if it has one, created (emptied).
pub(crate) fn console_files(specs: &[VmSpec]) -> anyhow::Result<Vec<Option<File>>> {
    specs
        .iter()
        .map(|spec| {
            spec.console
                .as_ref()
                .map(|path| {
                    File::create(path).map_err(|e| {
                        anyhow!("{}: cannot create the console file: {e}", path.display())
                    })
                })
                .transpose()
        })
        .collect()
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
