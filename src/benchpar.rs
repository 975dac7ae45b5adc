//! `disco bench`'s parallel-mode rows (docs/parallel.md): the same guest in
//! the deterministic mode and on host threads, run alternately (1 2 1 2 ...)
//! so that a change in the machine's load hits both alike, with wall time
//! and the process's CPU time: on a shared machine the wall time alone says
//! little, and the CPU time shows what the threads cost.

use std::fmt::Write as _;

use serde::Serialize;
use sim::workload;

use crate::bench::{native_machine, Stat, Took};
use crate::benchkit::{self, KIT_WORKLOADS};

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ParallelRow {
    pub(crate) workload: String,
    pub(crate) cpus: usize,
    /// Host threads; `None` is the deterministic mode.
    pub(crate) threads: Option<usize>,
    pub(crate) instructions: u64,
    pub(crate) wall_seconds: Stat,
    pub(crate) cpu_seconds: Stat,
    /// The deterministic row's median wall time over this row's.
    pub(crate) speedup: f64,
    /// Of a parallel row: the quanta its threads ran (natively every
    /// thread's, under the monitor its split VMs' parts'), and before how
    /// many they waited for each other (medians), to tell a row slowed by
    /// waiting from one slowed by the host.
    pub(crate) waits: Option<(u64, u64)>,
}

/// One measured run: instructions, the run's wall and CPU time (the
/// machine's set-up, the same in both modes, is not timed: as in the
/// other tables, the rows compare the runs) and, in the parallel mode, its
/// threads' quanta and waits (`Machine::parallel_waits`, or under the
/// monitor `Monitor::parallel_part_waits`: its split VMs' only).
type Run = (u64, Took, Option<(u64, u64)>);

/// A monitor's run as a [`Run`].
fn monitor_run(m: &monitor::Monitor, took: Took) -> Run {
    let insns = m.vm_stats().iter().map(|st| st.guest_insns).sum();
    (insns, took, m.parallel_part_waits())
}
/// Rows for `name` on `cpus` CPUs: deterministic, then on `cpus` threads.
fn side_by_side(
    name: &str,
    cpus: usize,
    runs: usize,
    run: impl Fn(Option<usize>) -> anyhow::Result<Run>,
) -> anyhow::Result<Vec<ParallelRow>> {
    crate::out::say(&format!(
        "[bench] parallel: {name}, {cpus} CPUs, deterministic and on {cpus} threads, {runs} run(s) each"
    ));
    let modes = [None, Some(cpus)];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
    for _ in 0..runs {
        for (mode, out) in modes.iter().zip(results.iter_mut()) {
            out.push(run(*mode)?);
        }
    }
    let wall = |rs: &[Run]| Stat::of(rs.iter().map(|r| r.1.wall).collect());
    let base = wall(&results[0]).median;
    Ok(modes
        .iter()
        .zip(&results)
        .map(|(threads, rs)| ParallelRow {
            workload: name.to_string(),
            cpus,
            threads: *threads,
            instructions: rs.last().map_or(0, |r| r.0),
            wall_seconds: wall(rs),
            cpu_seconds: Stat::of(rs.iter().map(|r| r.1.cpu).collect()),
            speedup: base / wall(rs).median.max(1e-9),
            waits: median_waits(rs),
        })
        .collect())
}

/// The median quanta and waits of `rs`, over the runs that counted any.
fn median_waits(rs: &[Run]) -> Option<(u64, u64)> {
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let counted: Vec<(u64, u64)> = rs.iter().filter_map(|r| r.2).filter(|w| w.0 > 0).collect();
    let quanta = median(counted.iter().map(|w| w.0).collect())?;
    let waits = median(counted.iter().map(|w| w.1).collect())?;
    Some((quanta, waits))
}

/// kestrel in its parallel mode (boot mode 6, guest-kits/user/par.c).
const PAR_IMAGE: &str = "kestrel-par.elf";
const PAR_NATIVE: &str = "kestrel-par (one compute-bound worker process per CPU), natively";
const PAR_VM: &str =
    "kestrel-par (one compute-bound worker process per CPU) in 1 VM of 2 VCPUs under the monitor";

pub(crate) fn measure(quick: bool, runs: usize) -> anyhow::Result<Vec<ParallelRow>> {
    // Long enough (about 2 s a CPU, deterministic) that a quantum's barrier
    // and the threads' start-up do not decide the ratio.
    let passes = if quick { 200 } else { 40_000 };
    let mut rows = Vec::new();
    let single = crate::bench::to_image(workload::mixed_integer(0x8000_1000, passes))?;
    rows.extend(side_by_side(HOST_CEILING, 2, runs, |threads| {
        independent_machines(&single, threads.is_some())
    })?);
    // 4 CPUs on 4 threads on a 2-core host: more threads than cores, which
    // shows that the mode degrades to the cores' share rather than collapsing.
    for cpus in [2, 4] {
        let smp = workload::mixed_integer_smp(0x8000_1000, passes, cpus as u32);
        let smp = crate::bench::to_image(smp)?;
        rows.extend(side_by_side(
            "bare-metal integer on every CPU (sim::workload::mixed_integer_smp)",
            cpus,
            runs,
            |threads| {
                let (m, took) = crate::bench::native_run_on(&smp, cpus, threads)?;
                Ok((m.instructions(), took, m.parallel_waits()))
            },
        )?);
    }
    // A twentieth of the passes: the monitor's engine runs this kernel code
    // (exec=direct) at 20 cycles an instruction, and eight VMs on two CPUs
    // must stay below the cycle limit.
    let integer = crate::bench::to_image(workload::mixed_integer(0x8000_1000, passes / 20))?;
    for vms in [1, 2, 4, 8] {
        let name = format!(
            "{vms} VM(s) under the monitor, each a bare-metal integer workload (sim::workload::mixed_integer)"
        );
        let pcpus = vms.min(2);
        rows.extend(side_by_side(&name, pcpus, runs, |threads| {
            let configs = (0..vms)
                .map(|i| crate::bench::vm(&format!("vm{i}"), &integer))
                .collect();
            let (m, took) = crate::bench::monitor_run_on(configs, pcpus, threads)?;
            Ok(monitor_run(&m, took))
        })?);
    }
    // One VM of two VCPUs whose work is parallel (issue #13's "one 2-CPU
    // guest"): its CPUs are split over the threads (docs/parallel.md).
    let smp = crate::bench::to_image(workload::mixed_integer_smp(0x8000_1000, passes / 20, 2))?;
    rows.extend(two_vcpus(
        "1 VM of 2 VCPUs under the monitor, a bare-metal integer workload on each (sim::workload::mixed_integer_smp)",
        &crate::bench::vm("vm0", &smp),
        runs,
    )?);
    // The same guest shape run directly (supervisor mode in the window):
    // each VCPU leaves direct execution only at its first TLB misses, its
    // mp accesses and the halt, so the VM's lock is almost never taken and
    // the split can pay (issue #13's >= 1.6x). Full passes: direct
    // execution runs at the native tiers' speed.
    let windowed = workload::windowed_mixed_integer_smp(passes, 2).map_err(anyhow::Error::msg)?;
    rows.extend(two_vcpus(
        "1 VM of 2 VCPUs under the monitor, windowed (direct) integer work on each (sim::workload::windowed_mixed_integer_smp)",
        &crate::bench::vm("vm0", &windowed),
        runs,
    )?);
    // A real kernel's parallel work: kestrel-par's init runs `par`, one
    // compute-bound worker process per CPU; the kernel (in the window) and
    // the workers (user mode) both run directly under the monitor, which
    // sees only timer ticks, so the VM is split and its VCPUs scale.
    let par = crate::run::images_dir().join(PAR_IMAGE);
    rows.extend(side_by_side(PAR_NATIVE, 2, runs, |threads| {
        kit_natively(&par, 2, threads, &["par"])
    })?);
    let par_image = crate::run::load_image(&par, benchkit::KIT_RAM)?.0;
    rows.extend(two_vcpus(
        PAR_VM,
        &monitor::VmConfig::new("vm0", par_image, benchkit::KIT_RAM),
        runs,
    )?);
    let kestrel = crate::run::images_dir().join("kestrel-bench.elf");
    for cpus in [2, 4] {
        rows.extend(side_by_side(
            "kestrel-bench (whole boot, all five workloads)",
            cpus,
            runs,
            |threads| kit_natively(&kestrel, cpus, threads, &KIT_WORKLOADS),
        )?);
    }
    Ok(rows)
}

/// The first row: what two host threads give on this host at this moment,
/// whatever the simulator does.
const HOST_CEILING: &str = "host ceiling: two independent 1-CPU machines (sim::workload::mixed_integer), one after the other, then both at once on 2 threads (nothing shared, no meetings)";

/// Two machines that share nothing, each running `image` on one CPU in the
/// deterministic mode: one after the other on this thread, or `at_once` on
/// two threads. On a quiet host with two free cores the two at once take
/// the time of one; on a shared virtual host they often do not (a core
/// shared with another tenant, the two virtual CPUs on one physical
/// core's hyperthreads, memory bandwidth), and every other 2-thread row
/// is bounded by that (docs/parallel.md, "The host's own ceiling").
fn independent_machines(image: &sim::workload::Image, at_once: bool) -> anyhow::Result<Run> {
    if !at_once {
        let (a, b) = (native_machine(image, 1)?, native_machine(image, 1)?);
        let clock = crate::bench::Clock::start();
        let insns = finish(a)? + finish(b)?;
        return Ok((insns, clock.took(), None));
    }
    // A machine is not `Send` (its observers): each thread builds its own,
    // and the clock starts when both are built.
    let built = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let m = native_machine(image, 1);
            built.wait();
            finish(m?)
        });
        let m = native_machine(image, 1);
        built.wait();
        let clock = crate::bench::Clock::start();
        let mine = finish(m?);
        let theirs = other
            .join()
            .map_err(|_| anyhow::anyhow!("the second machine's thread panicked"))?;
        Ok((mine? + theirs?, clock.took(), None))
    })
}

/// Runs `m` to its halt; its instructions.
fn finish(mut m: sim::Machine) -> anyhow::Result<u64> {
    crate::bench::run_to_halt(&mut m)?;
    Ok(m.instructions())
}

/// `vm` given two VCPUs, alone on two CPUs, deterministic and on two
/// threads.
fn two_vcpus(name: &str, vm: &monitor::VmConfig, runs: usize) -> anyhow::Result<Vec<ParallelRow>> {
    side_by_side(name, 2, runs, |threads| {
        let vm = monitor::VmConfig {
            vcpus: 2,
            ..vm.clone()
        };
        let (m, took) = crate::bench::monitor_run_on(vec![vm], 2, threads)?;
        Ok(monitor_run(&m, took))
    })
}

/// A kit image booted natively (`benchkit::native_on`) as one measured run.
fn kit_natively(
    path: &std::path::Path,
    cpus: usize,
    threads: Option<usize>,
    expected: &[&str],
) -> anyhow::Result<Run> {
    let r = benchkit::native_on(path, cpus, threads, expected)?;
    let took = Took {
        wall: r.seconds,
        cpu: r.cpu_seconds,
    };
    Ok((r.instructions, took, r.waits))
}

/// A median with its range, to the hundredth: runs of well under a second
/// (the monitor's rows) would otherwise show one or two digits.
fn hundredths(s: Stat) -> String {
    format!("{:.2} ({:.2}–{:.2})", s.median, s.min, s.max)
}

pub(crate) fn render(rows: &[ParallelRow], s: &mut String) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## The parallel mode (docs/parallel.md): deterministic and on host threads, side by side\n"
    );
    let _ = writeln!(
        s,
        "| workload | CPUs | mode | instructions | wall s | CPU s | speed-up (wall) | threads waited before |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let mode = r.threads.map_or("deterministic".to_string(), |t| {
            format!("parallel, {t} threads")
        });
        let waits = r
            .waits
            .map_or("–".to_string(), |(q, w)| format!("{w} of {q} quanta"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2}x | {} |",
            r.workload,
            r.cpus,
            mode,
            r.instructions,
            hundredths(r.wall_seconds),
            hundredths(r.cpu_seconds),
            r.speedup,
            waits
        );
    }
    let _ = writeln!(
        s,
        "\nLoad average when the parallel rows were written: {} (wall s and CPU s are those of the runs, after each machine is built and loaded; CPU s counts every thread of the process). The last column tells a row slowed by waiting from one slowed by the host: the quanta the threads ran, each thread's counted, and before how many of them one waited for the slowest (natively every thread; under the monitor only VMs split over threads, the others never wait within a batch; docs/parallel.md, \"Split VMs run ahead\").",
        crate::benchpage::load_average()
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A parallel row shows its threads' median quanta and waits (natively
    /// every thread's, under the monitor its split VMs' parts'); the
    /// deterministic rows, and runs that counted none, show a dash.
    #[test]
    fn the_table_says_how_often_the_threads_waited() {
        let took = Took {
            wall: 1.0,
            cpu: 1.0,
        };
        let runs = [
            (1, took, Some((29_200, 300))),
            (1, took, Some((29_000, 40))),
            (1, took, Some((29_400, 100))),
        ];
        assert_eq!(median_waits(&runs), Some((29_200, 100)));
        assert_eq!(
            median_waits(&[(1, took, Some((0, 0))), (1, took, None)]),
            None
        );
        let rows = side_by_side("a VM", 2, 1, |threads| {
            Ok((10, took, threads.map(|_| (2_000, 7))))
        })
        .unwrap();
        let mut table = String::new();
        render(&rows, &mut table);
        let lines: Vec<&str> = table.lines().filter(|l| l.starts_with("| a VM")).collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].ends_with("| 1.00x | – |"), "{}", lines[0]);
        assert!(lines[1].ends_with("| 7 of 2000 quanta |"), "{}", lines[1]);
    }
}
