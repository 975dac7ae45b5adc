//! The coalesced-I/O half of `disco bench` (docs/monitor.md §4): kestrel's
//! demo boot and its disk-heavy boot from kfs, natively and in one VM under
//! each `coalesce` policy and cost table, and the exit cost at which blocks
//! start to pay. Every figure is in simulated cycles, which are exact and
//! deterministic, so each configuration runs once.

use std::fmt::Write as _;

use monitor::coalesce::{IoConfig, Policy};
use monitor::cost::{Cost, COST};
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};
use serde::Serialize;
use sim::dev::{Board, BoardConfig};
use sim::{Exit, Machine, MachineConfig};

/// RAM of the machine natively and of the VM.
const RAM: u64 = 32 << 20;
const CYCLE_LIMIT: u64 = 2_000_000_000;

/// One workload under one policy and cost table.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct IoRow {
    pub(crate) workload: String,
    /// The `--cost` overrides (empty: the real table).
    pub(crate) cost: String,
    pub(crate) policy: String,
    pub(crate) device_exits: u64,
    pub(crate) total_exits: u64,
    pub(crate) monitor_cycles: u64,
    /// The VM's own cycles and the monitor's for it.
    pub(crate) cycles: u64,
    pub(crate) native_cycles: u64,
    pub(crate) overhead_percent: f64,
    /// Cycles against the same cost table with `coalesce=off`.
    pub(crate) vs_off_percent: f64,
    pub(crate) table_blocks: usize,
    pub(crate) table_singles: usize,
    pub(crate) hit_rate: f64,
    pub(crate) declined: u64,
    pub(crate) blocks: u64,
    pub(crate) block_accesses: u64,
    pub(crate) ring_queued: u64,
}

/// `block` against `off` as the exit cost grows.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BreakEven {
    pub(crate) workload: String,
    /// The engine's cost per instruction the sweep assumed.
    pub(crate) engine_insn: u64,
    /// (exit cost, cycles with `block` relative to `off`, in %).
    pub(crate) points: Vec<(u64, f64)>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct IoResults {
    pub(crate) rows: Vec<IoRow>,
    pub(crate) break_even: Vec<BreakEven>,
}

struct Workload {
    name: &'static str,
    image: sim::loader::Image,
    disk: Option<sim::dev::DiskImage>,
}

fn workloads(quick: bool) -> anyhow::Result<Vec<Workload>> {
    let dir = crate::run::images_dir();
    let (image, _) = crate::run::load_image(&dir.join("kestrel.elf"), RAM)?;
    let mut w = vec![Workload {
        name: "kestrel demo boot",
        image: image.clone(),
        disk: None,
    }];
    if !quick {
        let disk_path = dir.join("kestrel-disk.img");
        let disk = sim::dev::DiskImage::open(&disk_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", disk_path.display()))?;
        w.push(Workload {
            name: "kestrel from kfs (disk-heavy)",
            image,
            disk: Some(disk),
        });
    }
    Ok(w)
}

fn native(w: &Workload) -> anyhow::Result<u64> {
    let mut m = Machine::new(
        MachineConfig {
            ncpus: 1,
            ram_bytes: RAM,
            max_cycles: Some(CYCLE_LIMIT),
            ..MachineConfig::default()
        },
        Board::with_config(BoardConfig {
            ncpus: 1,
            ram_bytes: RAM,
            disk: w.disk.clone(),
            ..BoardConfig::default()
        }),
    );
    anyhow::ensure!(w.image.load_into(&mut m), "{}: does not fit", w.name);
    let exit = m.run();
    anyhow::ensure!(exit == Exit::Halted { status: 0 }, "{}: {exit:?}", w.name);
    Ok(m.cpus.iter().map(|c| c.cycles()).max().unwrap_or(0))
}

fn in_vm(w: &Workload, policy: Policy, cost: Cost) -> anyhow::Result<Monitor> {
    let mut vm = VmConfig::new("vm0", w.image.clone(), RAM);
    vm.disk = w.disk.clone();
    vm.io = IoConfig {
        policy,
        extent: None,
    };
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(CYCLE_LIMIT),
        vms: vec![vm],
        cost,
        ..MonitorConfig::default()
    })?;
    anyhow::ensure!(m.run() == MonitorExit::AllEnded, "{}: cycle limit", w.name);
    anyhow::ensure!(
        m.vms.first().and_then(|v| v.end.clone()) == Some(VmEnd::Halted(0)),
        "{}: did not halt with 0",
        w.name
    );
    Ok(m)
}

fn with(overrides: &[(&str, u64)]) -> Cost {
    let mut c = COST;
    for (name, v) in overrides {
        // The names are this file's own, all in the table.
        let _ = c.set(name, *v);
    }
    c
}

fn label(overrides: &[(&str, u64)]) -> String {
    let v: Vec<String> = overrides.iter().map(|(n, c)| format!("{n}={c}")).collect();
    if v.is_empty() {
        "real".to_string()
    } else {
        v.join(",")
    }
}

/// The rows and the break-even sweep.
pub(crate) fn measure(quick: bool) -> anyhow::Result<IoResults> {
    let mut r = IoResults::default();
    let costs: Vec<Vec<(&str, u64)>> = if quick {
        vec![vec![], vec![("exit", 1000)]]
    } else {
        vec![vec![], vec![("exit", 100)], vec![("exit", 1000)]]
    };
    for w in workloads(quick)? {
        eprintln!("[bench] coalesced I/O: {}", w.name);
        let native_cycles = native(&w)?;
        for overrides in &costs {
            let mut off_cycles = 0;
            for p in Policy::NAMES {
                let policy = Policy::parse(p).unwrap_or_default();
                let m = in_vm(&w, policy, with(overrides))?;
                let st = m.vm_stats().into_iter().next().unwrap_or_default();
                let cycles = st.guest_cycles + st.monitor_cycles;
                if policy == Policy::Off {
                    off_cycles = cycles;
                }
                r.rows.push(IoRow {
                    workload: w.name.to_string(),
                    cost: label(overrides),
                    policy: p.to_string(),
                    device_exits: st.device_exits,
                    total_exits: st.total_exits(),
                    monitor_cycles: st.monitor_cycles,
                    cycles,
                    native_cycles,
                    overhead_percent: 100.0 * (cycles as f64 / native_cycles as f64 - 1.0),
                    vs_off_percent: 100.0 * (cycles as f64 / off_cycles.max(1) as f64 - 1.0),
                    table_blocks: st.io_table.0,
                    table_singles: st.io_table.1,
                    hit_rate: st.io.hits as f64 / st.io.lookups.max(1) as f64,
                    declined: st.io.declined,
                    blocks: st.io.blocks,
                    block_accesses: st.io.block_accesses,
                    ring_queued: st.io.ring_queued,
                });
            }
        }
        let exits: &[u64] = if quick {
            &[12, 1000]
        } else {
            &[12, 25, 50, 75, 100, 150, 200, 300, 500, 1000]
        };
        // Interpreted blocks (the engine's 20 cycles an instruction), and
        // what translated blocks (issue 16) might cost: a few cycles each.
        for engine_insn in [COST.engine_insn, 3] {
            let mut points = Vec::new();
            for &exit in exits {
                let c = [("exit", exit), ("engine_insn", engine_insn)];
                let off = cycles(&in_vm(&w, Policy::Off, with(&c))?);
                let block = cycles(&in_vm(&w, Policy::Block, with(&c))?);
                points.push((exit, 100.0 * (block as f64 / off.max(1) as f64 - 1.0)));
            }
            r.break_even.push(BreakEven {
                workload: w.name.to_string(),
                engine_insn,
                points,
            });
        }
    }
    Ok(r)
}

fn cycles(m: &Monitor) -> u64 {
    let st = m.vm_stats().into_iter().next().unwrap_or_default();
    st.guest_cycles + st.monitor_cycles
}

/// The tables, in Markdown.
pub(crate) fn render(r: &IoResults, s: &mut String) {
    if r.rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Coalesced I/O (one VM, one CPU; docs/monitor.md §4)\n"
    );
    let _ = writeln!(s, "| workload | cost | coalesce | device exits | total exits | monitor cycles | cycles | overhead | vs off | table (blocks/singles) | hit rate | declined | blocks (accesses) | ring writes |");
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for x in &r.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2}% | {:+.2}% | {}/{} | {:.1}% | {} | {} ({}) | {} |",
            x.workload,
            x.cost,
            x.policy,
            x.device_exits,
            x.total_exits,
            x.monitor_cycles,
            x.cycles,
            x.overhead_percent,
            x.vs_off_percent,
            x.table_blocks,
            x.table_singles,
            100.0 * x.hit_rate,
            x.declined,
            x.blocks,
            x.block_accesses,
            x.ring_queued
        );
    }
    let _ = writeln!(
        s,
        "\nCycles with `coalesce=block` against `coalesce=off` as the cost of an exit grows \
         (`--cost exit=N`; engine_insn 3 is a projection of translated blocks):\n"
    );
    let Some(first) = r.break_even.first() else {
        return;
    };
    let mut head = "| workload | engine_insn |".to_string();
    let mut rule = "|---|---|".to_string();
    for (exit, _) in &first.points {
        let _ = write!(head, " exit={exit} |");
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for b in &r.break_even {
        let _ = write!(s, "| {} | {} |", b.workload, b.engine_insn);
        for (_, pct) in &b.points {
            let _ = write!(s, " {pct:+.2}% |");
        }
        s.push('\n');
    }
}
