//! `disco bench`: how fast the simulator runs and what the monitor costs,
//! measured on the same binaries in one run. Every figure is the median of
//! `--runs` runs, with min and max, because these machines are shared and
//! noisy. Speed is never asserted; CI runs `--quick` only to prove it works.

use std::path::PathBuf;
use std::time::Instant;

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};
use serde::Serialize;
use sim::dev::Board;
use sim::workload::{self, Image};
use sim::{Exit, Machine, MachineConfig};

use crate::benchkit::{self, KIT_WORKLOADS};

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// A sanity run that finishes in well under two minutes (less work, one run each).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Runs of each measurement; the table shows the median with min and max.
    #[arg(long, default_value_t = 3, value_parser = crate::cli::at_least_one,
          allow_negative_numbers = true)]
    pub(crate) runs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Regenerate this Markdown page (docs/performance.md) from the results.
    #[arg(long, value_name = "FILE")]
    pub(crate) doc: Option<PathBuf>,
    /// Also run the same bare-metal workload on GXemul and QEMU (bench/peers.sh).
    #[arg(long)]
    pub(crate) peers: bool,
    /// Only the parallel mode's rows (docs/parallel.md), deterministic and
    /// on host threads side by side.
    #[arg(long, conflicts_with_all = ["doc", "peers"])]
    pub(crate) parallel_only: bool,
}

/// Median, minimum and maximum of a measured figure.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stat {
    pub(crate) fn of(mut xs: Vec<f64>) -> Stat {
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        if n == 0 {
            return Stat::default();
        }
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Stat {
            median,
            min: xs[0],
            max: xs[n - 1],
        }
    }
}

/// The wall time and host CPU time (every thread of the process, user and
/// system) of one measured run, from [`Clock::start`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Took {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
}

/// Started just before a run, after its machine is built and loaded, so
/// that set-up (the same in every mode) is not counted.
pub(crate) struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            cpu: cpu_seconds().unwrap_or(0.0),
            wall: Instant::now(),
        }
    }

    pub(crate) fn took(&self) -> Took {
        Took {
            wall: self.wall.elapsed().as_secs_f64(),
            cpu: cpu_seconds().unwrap_or(0.0) - self.cpu,
        }
    }
}

/// CPU time of this process so far, all threads, user and system, from
/// /proc/self/stat (in clock ticks of 1/100 s, Linux's USER_HZ); `None`
/// where there is no /proc.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} ({:.1}–{:.1})", self.median, self.min, self.max)
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct SpeedRow {
    pub(crate) workload: String,
    pub(crate) cpus: usize,
    pub(crate) instructions: u64,
    pub(crate) cycles: u64,
    pub(crate) host_seconds: Stat,
    pub(crate) host_mips: Stat,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct VirtRow {
    pub(crate) workload: String,
    pub(crate) native_cycles: u64,
    pub(crate) monitor_cycles: u64,
    pub(crate) overhead_percent: f64,
    pub(crate) host_time_ratio: Stat,
    pub(crate) exits_per_kinsn: f64,
    pub(crate) exits_by_reason: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ConsolidationRow {
    pub(crate) vms: usize,
    pub(crate) pcpus: usize,
    pub(crate) guest_instructions: u64,
    pub(crate) cycles: u64,
    /// Guest instructions per simulated cycle, summed over the machine.
    pub(crate) throughput: f64,
    pub(crate) host_mips: Stat,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Results {
    pub(crate) machine: String,
    /// /proc/loadavg when the run began: a loaded machine slows every row.
    pub(crate) load_at_start: String,
    pub(crate) date: String,
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    pub(crate) speed: Vec<SpeedRow>,
    pub(crate) virtualization: Vec<VirtRow>,
    pub(crate) consolidation: Vec<ConsolidationRow>,
    pub(crate) notes: Vec<String>,
    /// What bench/peers.sh printed, when `--peers` was given.
    pub(crate) peers: String,
    /// Coalesced I/O (`benchio`).
    pub(crate) coalesce: crate::benchio::IoResults,
    /// Runtime (de)virtualization (`benchremap`).
    pub(crate) remap: crate::benchremap::RemapResults,
    /// The parallel mode against the deterministic one (`benchpar`).
    pub(crate) parallel: Vec<crate::benchpar::ParallelRow>,
    /// Each execution policy of guest-kernel code (`benchbt`).
    pub(crate) policies: Vec<crate::benchbt::PolicyRow>,
}

pub(crate) fn progress(what: &str) {
    crate::out::say(&format!("[bench] {what}"));
}

/// No workload here needs more simulated cycles than this; a run that
/// does is stuck, and stopping it keeps `--quick` quick.
const CYCLE_LIMIT: u64 = 2_000_000_000;

/// Runs `image` natively on `cpus` CPUs; returns (instructions, cycles, seconds).
pub(crate) fn native_run(image: &Image, cpus: usize) -> anyhow::Result<(u64, u64, f64)> {
    let (m, took) = native_run_on(image, cpus, None)?;
    let cycles = m.cpus.iter().map(|c| c.cycles()).max().unwrap_or(0);
    Ok((m.instructions(), cycles, took.wall))
}

/// [`native_run`] on `threads` host threads (`None`: deterministic): the
/// machine at its halt, and the run's wall and CPU time.
pub(crate) fn native_run_on(
    image: &Image,
    cpus: usize,
    threads: Option<usize>,
) -> anyhow::Result<(Machine, Took)> {
    let mut m = native_machine(image, cpus)?;
    m.set_parallel(threads);
    let clock = Clock::start();
    run_to_halt(&mut m)?;
    let took = clock.took();
    Ok((m, took))
}

/// A machine of `cpus` CPUs in the deterministic mode with `image` loaded.
pub(crate) fn native_machine(image: &Image, cpus: usize) -> anyhow::Result<Machine> {
    let mut m = Machine::new(
        MachineConfig {
            ncpus: cpus,
            max_cycles: Some(CYCLE_LIMIT),
            ..MachineConfig::default()
        },
        Board::new(cpus),
    );
    anyhow::ensure!(image.load_into(&mut m), "the workload does not fit in RAM");
    Ok(m)
}

/// Runs `m` until the workload halts, as it must, with status 0.
pub(crate) fn run_to_halt(m: &mut Machine) -> anyhow::Result<()> {
    let exit = m.run();
    anyhow::ensure!(
        exit == Exit::Halted { status: 0 },
        "the workload ended with {exit:?}"
    );
    Ok(())
}

pub(crate) fn vm(name: &str, image: &Image) -> VmConfig {
    VmConfig {
        name: name.to_string(),
        image: image.clone(),
        mem_bytes: 8 << 20,
        vcpus: 1,
        disk: None,
        disk_irq_latency: None,
        io: Default::default(),
        commpage: true,
        exec: monitor::bt::Exec::Direct,
    }
}

/// Runs `vms` under the monitor on `pcpus` CPUs; returns the monitor and seconds.
pub(crate) fn monitor_run(vms: Vec<VmConfig>, pcpus: usize) -> anyhow::Result<(Monitor, f64)> {
    let (m, took) = monitor_run_on(vms, pcpus, None)?;
    Ok((m, took.wall))
}

/// [`monitor_run`] on `threads` host threads (`None`: deterministic), with
/// the run's wall and CPU time (not the set-up's: building the machine
/// and loading the VMs).
pub(crate) fn monitor_run_on(
    vms: Vec<VmConfig>,
    pcpus: usize,
    threads: Option<usize>,
) -> anyhow::Result<(Monitor, Took)> {
    let mut m = Monitor::new(MonitorConfig {
        pcpus,
        max_cycles: Some(CYCLE_LIMIT),
        vms,
        ..MonitorConfig::default()
    })?;
    m.set_parallel(threads);
    let clock = Clock::start();
    let exit = m.run();
    let took = clock.took();
    anyhow::ensure!(
        exit == MonitorExit::AllEnded,
        "the monitor stopped with {exit:?}"
    );
    for v in &m.vms {
        anyhow::ensure!(
            v.end == Some(VmEnd::Halted(0)),
            "VM {} ended with {:?}",
            v.name,
            v.end
        );
    }
    Ok((m, took))
}

fn speed(name: &str, image: &Image, cpus: usize, runs: usize) -> anyhow::Result<SpeedRow> {
    progress(&format!("speed: {name}, {cpus} CPU(s), {runs} run(s)"));
    let mut secs = Vec::new();
    let (mut insns, mut cycles) = (0, 0);
    for _ in 0..runs {
        let (i, c, s) = native_run(image, cpus)?;
        (insns, cycles) = (i, c);
        secs.push(s);
    }
    let mips = secs.iter().map(|s| insns as f64 / s / 1e6).collect();
    Ok(SpeedRow {
        workload: name.to_string(),
        cpus,
        instructions: insns,
        cycles,
        host_seconds: Stat::of(secs),
        host_mips: Stat::of(mips),
    })
}

/// The bare-metal integer row once per execution tier (docs/tiers.md), the
/// tiers' runs interleaved (1 2 3 1 2 3 ...) so that a change in the
/// machine's load hits them alike.
fn tier_speed(image: &Image, runs: usize) -> anyhow::Result<Vec<SpeedRow>> {
    let tiers = [sim::Tier::Interp, sim::Tier::Blocks, sim::Tier::Compiled];
    progress(&format!(
        "speed per tier: bare-metal integer, {runs} interleaved run(s)"
    ));
    let mut secs = vec![Vec::new(); tiers.len()];
    let mut counts = vec![(0, 0); tiers.len()];
    for _ in 0..runs {
        for (i, &tier) in tiers.iter().enumerate() {
            let mut m = Machine::new(
                MachineConfig {
                    max_cycles: Some(CYCLE_LIMIT),
                    tier,
                    ..MachineConfig::default()
                },
                Board::new(1),
            );
            anyhow::ensure!(image.load_into(&mut m), "the workload does not fit in RAM");
            let start = Instant::now();
            let exit = m.run();
            let s = start.elapsed().as_secs_f64();
            anyhow::ensure!(
                exit == Exit::Halted { status: 0 },
                "tier {} ended with {exit:?}",
                tier.number()
            );
            if let (Some(t), Some(c)) = (secs.get_mut(i), counts.get_mut(i)) {
                t.push(s);
                *c = (m.instructions(), m.stats().total.cycles);
            }
        }
    }
    Ok(tiers
        .iter()
        .zip(secs.into_iter().zip(counts))
        .map(|(tier, (secs, (insns, cycles)))| SpeedRow {
            workload: format!("bare-metal integer, tier {}", tier.number()),
            cpus: 1,
            instructions: insns,
            cycles,
            host_mips: Stat::of(secs.iter().map(|s| insns as f64 / s / 1e6).collect()),
            host_seconds: Stat::of(secs),
        })
        .collect())
}

fn virtualization(name: &str, image: &Image, runs: usize) -> anyhow::Result<VirtRow> {
    progress(&format!("virtualization cost: {name}, {runs} run(s)"));
    let mut ratios = Vec::new();
    let mut row = None;
    for _ in 0..runs {
        let (_, native_cycles, native_secs) = native_run(image, 1)?;
        let (m, secs) = monitor_run(vec![vm(name, image)], 1)?;
        ratios.push(secs / native_secs.max(1e-9));
        let st = m.vm_stats().into_iter().next().unwrap_or_default();
        // The VM's own cycles and the monitor's work for it, exactly (the
        // physical CPU's clock runs on to the end of the quantum).
        let monitor_cycles = st.guest_cycles + st.monitor_cycles;
        let total_exits = st.total_exits();
        row = Some(VirtRow {
            workload: name.to_string(),
            native_cycles,
            monitor_cycles,
            overhead_percent: 100.0 * (monitor_cycles as f64 / native_cycles as f64 - 1.0),
            host_time_ratio: Stat::default(),
            exits_per_kinsn: 1000.0 * total_exits as f64 / st.guest_insns.max(1) as f64,
            exits_by_reason: exits_by_reason(&st.exits),
        });
    }
    let mut row = row.ok_or_else(|| anyhow::anyhow!("no runs"))?;
    row.host_time_ratio = Stat::of(ratios);
    Ok(row)
}

/// kestrel-bench natively on `cpus` CPUs, as a speed row.
fn kit_speed(cpus: usize, runs: usize) -> anyhow::Result<SpeedRow> {
    let path = crate::run::images_dir().join("kestrel-bench.elf");
    progress(&format!(
        "speed: kestrel-bench (whole boot), {cpus} CPU(s), {runs} run(s)"
    ));
    let mut secs = Vec::new();
    let (mut insns, mut cycles) = (0, 0);
    for _ in 0..runs {
        let r = benchkit::native(&path, cpus, &KIT_WORKLOADS)?;
        (insns, cycles) = (r.instructions, r.cycles);
        secs.push(r.seconds);
    }
    let mips = secs.iter().map(|s| insns as f64 / s / 1e6).collect();
    Ok(SpeedRow {
        workload: "kestrel-bench (whole boot, all five workloads)".to_string(),
        cpus,
        instructions: insns,
        cycles,
        host_seconds: Stat::of(secs),
        host_mips: Stat::of(mips),
    })
}

/// Every kestrel workload natively and in one VM: one row each.
fn kit_virtualization(runs: usize) -> anyhow::Result<Vec<VirtRow>> {
    let path = crate::run::images_dir().join("kestrel-bench.elf");
    let mut ratios = Vec::new();
    let mut last = None;
    for i in 0..runs {
        progress(&format!(
            "virtualization cost: kestrel-bench natively and in one VM, run {} of {runs}",
            i + 1
        ));
        let native = benchkit::native(&path, 1, &KIT_WORKLOADS)?;
        let vm = benchkit::under_monitor(&path, 1, &KIT_WORKLOADS, monitor::bt::Exec::Direct)?;
        ratios.push(vm.seconds / native.seconds.max(1e-9));
        last = Some((native, vm));
    }
    let (native, vm) = last.ok_or_else(|| anyhow::anyhow!("no runs"))?;
    let ratio = Stat::of(ratios);
    Ok(native
        .workloads
        .iter()
        .zip(&vm.workloads)
        .map(|(n, v)| VirtRow {
            workload: format!("{} (kestrel)", n.name),
            native_cycles: n.cycles,
            monitor_cycles: v.cycles,
            overhead_percent: 100.0 * (v.cycles as f64 / n.cycles.max(1) as f64 - 1.0),
            host_time_ratio: ratio,
            exits_per_kinsn: 1000.0 * v.exits.iter().sum::<u64>() as f64
                / v.guest_insns.max(1) as f64,
            exits_by_reason: exits_by_reason(&v.exits),
        })
        .collect())
}

fn exits_by_reason(exits: &[u64; 32]) -> Vec<(String, u64)> {
    sim::ExcCode::ALL
        .iter()
        .filter_map(|c| {
            let n = exits.get(*c as usize).copied().unwrap_or(0);
            (n > 0).then(|| (c.mnemonic().to_string(), n))
        })
        .collect()
}

/// `n` VMs of the kestrel demo on `n` physical CPUs.
fn kit_consolidation(n: usize, runs: usize) -> anyhow::Result<ConsolidationRow> {
    let path = crate::run::images_dir().join("kestrel.elf");
    progress(&format!(
        "consolidation: {n} VM(s) of kestrel on {n} CPU(s), {runs} run(s)"
    ));
    let mut mips = Vec::new();
    let mut row = None;
    for _ in 0..runs {
        let r = benchkit::under_monitor(&path, n, &[], monitor::bt::Exec::Direct)?;
        mips.push(r.instructions as f64 / r.seconds.max(1e-9) / 1e6);
        row = Some(ConsolidationRow {
            vms: n,
            pcpus: n,
            guest_instructions: r.instructions,
            cycles: r.cycles,
            throughput: r.instructions as f64 / r.cycles.max(1) as f64,
            host_mips: Stat::default(),
        });
    }
    let mut row = row.ok_or_else(|| anyhow::anyhow!("no runs"))?;
    row.host_mips = Stat::of(mips);
    Ok(row)
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let runs = if args.quick { 1 } else { args.runs };
    let mut r = Results {
        machine: crate::benchpage::machine_description(),
        load_at_start: crate::benchpage::load_average(),
        date: crate::benchpage::today(),
        quick: args.quick,
        runs,
        ..Results::default()
    };
    if args.parallel_only {
        r.parallel = crate::benchpar::measure(args.quick, runs)?;
        let mut table = String::new();
        crate::benchpar::render(&r.parallel, &mut table);
        crate::out::print(&table)?;
        return write_json(args.json.as_deref(), &r);
    }
    measure_speed(&mut r, args.quick, runs)?;
    measure_virtualization(&mut r, args.quick, runs)?;
    for n in [1, 2, 4, 8] {
        r.consolidation.push(kit_consolidation(n, runs)?);
    }
    r.policies = crate::benchbt::measure(args.quick, runs)?;
    r.coalesce = crate::benchio::measure(args.quick)?;
    r.remap = crate::benchremap::measure(args.quick)?;
    r.parallel = crate::benchpar::measure(args.quick, runs)?;
    if args.peers {
        run_peers(&mut r, args.quick);
    }
    let table = crate::benchpage::render(&r);
    crate::out::print(&table)?;
    write_json(args.json.as_deref(), &r)?;
    if let Some(path) = &args.doc {
        std::fs::write(path, crate::benchpage::render_doc(&r, &table))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `--json FILE`: the raw figures.
fn write_json(path: Option<&std::path::Path>, r: &Results) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    std::fs::write(path, serde_json::to_string_pretty(r)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Passes of the bare-metal integer workload in the speed and
/// virtualization tables: the same program in both.
fn integer_passes(quick: bool) -> u32 {
    if quick {
        200
    } else {
        4000
    }
}

/// The native speed table: the bare-metal workload on each tier and on
/// every CPU, and kestrel's bench booted on 1 and 4 CPUs.
fn measure_speed(r: &mut Results, quick: bool, runs: usize) -> anyhow::Result<()> {
    let passes = integer_passes(quick);
    let bare = to_image(workload::mixed_integer(0x8000_1000, passes))?;
    let smp = to_image(workload::mixed_integer_smp(0x8000_1000, passes, 4))?;
    r.speed.push(speed("bare-metal integer", &bare, 1, runs)?);
    r.speed.extend(tier_speed(&bare, runs)?);
    match speed("bare-metal integer (every CPU)", &smp, 4, runs) {
        Ok(row) => r.speed.push(row),
        Err(e) => r.notes.push(format!("4-CPU speed not measured: {e}")),
    }
    r.speed.push(kit_speed(1, runs)?);
    r.speed.push(kit_speed(4, runs)?);
    r.notes.push(
        "kestrel-bench on 4 CPUs: idle CPUs execute WAIT, so their cycles pass without instructions."
            .to_string(),
    );
    Ok(())
}

/// The virtualization cost table: kestrel's bench programs, then the
/// built-in microbenchmarks, natively and under the monitor.
fn measure_virtualization(r: &mut Results, quick: bool, runs: usize) -> anyhow::Result<()> {
    let windowed =
        workload::windowed_mixed_integer(integer_passes(quick)).map_err(anyhow::Error::msg)?;
    r.virtualization.extend(kit_virtualization(runs)?);
    r.notes.push(
        "kestrel rows: cycles are what the guest measured (CP0 Count x 2 around \
         fork...waitpid of each program, guest-kits/images/kestrel-bench.elf); the \
         host-time ratio is that of the whole boot; exits are attributed to a program \
         by watching its `bench:` line at quantum granularity, so compute's share \
         includes the boot (first touches of pages through the 16 MB window each compose \
         one 4 KB real entry: the TLBS exits). Where the monitor's cycles go: \
         docs/monitor.md."
            .to_string(),
    );
    r.notes.push(
        "synthetic rows: built-in microbenchmarks (sim::workload) whose kernel paths \
         are a few instructions long, so they show the cost of each exit rather than \
         that of a realistic kernel."
            .to_string(),
    );
    r.virtualization.push(virtualization(
        "synthetic compute (built-in, windowed)",
        &windowed,
        runs,
    )?);
    let n = if quick { 2_000 } else { 20_000 };
    let syscalls = workload::syscall_loop(n).map_err(anyhow::Error::msg)?;
    r.virtualization.push(virtualization(
        "synthetic syscall (built-in minikernel)",
        &syscalls,
        runs,
    )?);
    let rounds = if quick { 20 } else { 200 };
    let tlb = workload::tlb_stress(rounds).map_err(anyhow::Error::msg)?;
    r.virtualization.push(virtualization(
        "synthetic tlbstress (built-in minikernel)",
        &tlb,
        runs,
    )?);
    Ok(())
}

/// `--peers`: bench/peers.sh runs the same bare-metal workload on GXemul
/// and QEMU; its report goes into the page as it printed it.
fn run_peers(r: &mut Results, quick: bool) {
    progress("peers: bench/peers.sh (GXemul, QEMU)");
    let passes = if quick { "2000" } else { "20000" };
    let out = std::process::Command::new("bash")
        .arg(crate::run::images_dir().join("../../bench/peers.sh"))
        .arg(passes)
        .output();
    match out {
        Ok(o) => r.peers = String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(e) => r.notes.push(format!("peers not run: {e}")),
    }
}

pub(crate) fn to_image(a: sim::isa::asm::Asm) -> anyhow::Result<Image> {
    let bytes = a.bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Image {
        entry: i64::from(a.origin() as i32) as u64,
        segments: vec![(u64::from(a.origin() & 0x1FFF_FFFF), bytes)],
    })
}
