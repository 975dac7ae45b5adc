//! The runtime (de)virtualization half of `disco bench`
//! (docs/devirtualization.md): the guest pause to slide the monitor under
//! kestrel-bench (32M of memory, 1 and 2 CPUs), and devirtualizing it with
//! 25% of its pages displaced, paused and concurrent, through each remap
//! index. Cycles are simulated, exact and deterministic, so each
//! configuration runs once; host times are of this machine now.

use std::fmt::Write as _;
use std::time::Instant;

use monitor::remap::{self, Moved, RemapIndex, RemapMode};
use monitor::virt;
use monitor::Monitor;
use serde::Serialize;
use sim::dev::{Board, BoardConfig};
use sim::{Machine, MachineConfig};

/// The kernel's memory (what mp tells it) and the machine's.
const BOOT_MEM: u64 = 32 << 20;
const MACHINE_MEM: u64 = 64 << 20;
/// Kernel memory displaced before devirtualizing: 8M-16M, 25% of 32M.
const DISPLACED: (u64, u64) = (8 << 20, 16 << 20);

#[derive(Clone, Debug, Serialize)]
pub(crate) struct VirtualizeRow {
    pub(crate) cpus: usize,
    pub(crate) mem: u64,
    /// Guest pause in simulated cycles, from the cost table.
    pub(crate) pause: u64,
    pub(crate) host_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct DevirtualizeRow {
    pub(crate) cpus: usize,
    pub(crate) mode: String,
    pub(crate) index: String,
    /// Simulated cycles from the start of the remapping to its end (the
    /// hand-back follows at once).
    pub(crate) cycles: u64,
    /// The largest guest pause, the hand-back's included.
    pub(crate) largest_pause: u64,
    pub(crate) direct: u64,
    pub(crate) indirect: u64,
    pub(crate) waits: u64,
    /// Host time of the remapping and hand-back (concurrent: the guest's
    /// run in between included).
    pub(crate) host_seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RemapResults {
    pub(crate) virtualize: Vec<VirtualizeRow>,
    pub(crate) devirtualize: Vec<DevirtualizeRow>,
}

/// kestrel-bench booted natively on `cpus` CPUs, run to cycle `until`.
fn booted(cpus: usize, until: u64) -> anyhow::Result<Box<Machine>> {
    let path = crate::run::images_dir().join("kestrel-bench.elf");
    let (image, _) = crate::run::load_image(&path, BOOT_MEM)?;
    let mut m = Machine::new(
        MachineConfig {
            ncpus: cpus,
            ram_bytes: MACHINE_MEM,
            ..MachineConfig::default()
        },
        Board::with_config(BoardConfig {
            ncpus: cpus,
            ram_bytes: BOOT_MEM,
            disk: None,
            disk_irq_latency: None,
            seed: 0,
            epoch: 0,
        }),
    );
    anyhow::ensure!(image.load_into(&mut m), "{}: does not fit", path.display());
    while m.now < until {
        anyhow::ensure!(m.run_quantum().is_none(), "kestrel-bench ended early");
    }
    Ok(Box::new(m))
}

fn virtualized(m: Box<Machine>) -> anyhow::Result<Box<Monitor>> {
    virt::virtualize(m)
        .map(|(mon, _)| mon)
        .map_err(|(_, why)| anyhow::anyhow!("virtualize refused: {why}"))
}

fn virtualize_row(cpus: usize, at: u64) -> anyhow::Result<VirtualizeRow> {
    let m = booted(cpus, at)?;
    let start = Instant::now();
    let (_, s) = virt::virtualize(m).map_err(|(_, why)| anyhow::anyhow!("{why}"))?;
    Ok(VirtualizeRow {
        cpus,
        mem: s.mem,
        pause: s.pause,
        host_seconds: start.elapsed().as_secs_f64(),
    })
}

fn devirtualize_row(
    cpus: usize,
    at: u64,
    mode: RemapMode,
    index: RemapIndex,
) -> anyhow::Result<DevirtualizeRow> {
    let mut mon = virtualized(booted(cpus, at)?)?;
    remap::evacuate(&mut mon, 0, DISPLACED, None, index).map_err(anyhow::Error::msg)?;
    // The guest first runs off the evacuation's pause, so that the
    // devirtualization's cycles are its own.
    while mon.machine.cpus.iter().any(|c| c.cycles() > mon.now()) {
        anyhow::ensure!(mon.run_quantum().is_none(), "kestrel-bench ended early");
    }
    let first = mon.now();
    let start = Instant::now();
    let job = remap::identity(&mon, 0, index)
        .map_err(anyhow::Error::msg)?
        .ok_or_else(|| anyhow::anyhow!("nothing displaced"))?;
    let (moved, before) = match mode {
        RemapMode::Paused => (
            remap::run_paused(&mut mon, job).map_err(anyhow::Error::msg)?,
            Moved::default(),
        ),
        RemapMode::Concurrent => {
            remap::run_concurrent(&mut mon, job);
            let moved = loop {
                anyhow::ensure!(
                    mon.run_quantum().is_none(),
                    "kestrel-bench ended while remapping"
                );
                if let Some(done) = remap::take_done(&mut mon) {
                    break done.map_err(anyhow::Error::msg)?;
                }
            };
            (moved, moved)
        }
    };
    let end = mon.now();
    let (_, s) = virt::devirtualize_remapped(mon, index, before)
        .map_err(|(_, why)| anyhow::anyhow!("devirtualize refused: {why}"))?;
    let host_seconds = start.elapsed().as_secs_f64();
    Ok(DevirtualizeRow {
        cpus,
        mode: format!("{mode:?}").to_lowercase(),
        index: format!("{index:?}").to_lowercase(),
        cycles: (end - first).max(moved.cycles),
        largest_pause: match mode {
            RemapMode::Paused => moved.pause + s.pause,
            RemapMode::Concurrent => s.pause,
        },
        direct: moved.direct,
        indirect: moved.indirect,
        waits: moved.waits,
        host_seconds,
    })
}

/// Every row; `quick` switches at 2M cycles instead of 20M.
pub(crate) fn measure(quick: bool) -> anyhow::Result<RemapResults> {
    let at = if quick { 2_000_000 } else { 20_000_000 };
    let mut r = RemapResults::default();
    for cpus in [1, 2] {
        crate::out::say(&format!(
            "[bench] virtualize kestrel-bench on {cpus} CPU(s)"
        ));
        r.virtualize.push(virtualize_row(cpus, at)?);
    }
    for mode in [RemapMode::Paused, RemapMode::Concurrent] {
        for index in [
            RemapIndex::Backmap,
            RemapIndex::Refcount,
            RemapIndex::Search,
        ] {
            crate::out::say(&format!(
                "[bench] devirtualize with 25% displaced: {mode:?}, {index:?}"
            ));
            r.devirtualize.push(devirtualize_row(2, at, mode, index)?);
        }
    }
    Ok(r)
}

pub(crate) fn render(r: &RemapResults, s: &mut String) {
    if r.virtualize.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Runtime virtualization (kestrel-bench, 32M on a 64M machine; docs/devirtualization.md)\n"
    );
    let _ = writeln!(
        s,
        "| switch | CPUs | memory | guest pause (cycles) | host ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for row in &r.virtualize {
        let _ = writeln!(
            s,
            "| virtualize | {} | {} | {} | {:.3} |",
            row.cpus,
            sim::config::show_size(row.mem),
            row.pause,
            row.host_seconds * 1e3
        );
    }
    let _ = writeln!(
        s,
        "\n| devirtualize, 25% displaced | CPUs | index | cycles | largest pause | pages direct / indirect | stores that waited | host ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for row in &r.devirtualize {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} / {} | {} | {:.1} |",
            row.mode,
            row.cpus,
            row.index,
            row.cycles,
            row.largest_pause,
            row.direct,
            row.indirect,
            row.waits,
            row.host_seconds * 1e3
        );
    }
}
