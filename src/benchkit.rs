//! The guest-kit half of `disco bench`: kestrel's workloads, natively and
//! under the monitor, per workload.
//!
//! `kestrel-bench.elf` boots, and its init runs compute, syscall,
//! tlbstress, forkexec and smp in turn, printing `bench: <prog> <N> cycles`
//! after each (N: CP0 Count × 2 around fork…waitpid on init's CPU; under
//! the monitor the virtual Count includes the monitor's cycles, so the two
//! N are directly comparable). Exits are attributed to a workload by
//! snapshotting the VM's exit counters whenever a `bench:` line appears (at
//! quantum granularity); the first workload's share includes the boot.

use crate::bench::Clock;
use std::path::Path;

use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd};
use sim::dev::Board;
use sim::{Exit, Machine, MachineConfig};

/// RAM of the machine natively and of the VM under the monitor.
pub(crate) const KIT_RAM: u64 = 32 << 20;
/// Far above what kestrel-bench needs (~240 M cycles under the monitor).
const KIT_CYCLE_LIMIT: u64 = 4_000_000_000;

/// The workloads kestrel-bench runs, in order.
pub(crate) const KIT_WORKLOADS: [&str; 5] = ["compute", "syscall", "tlbstress", "forkexec", "smp"];

/// One workload's figures from one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct KitWorkload {
    pub(crate) name: String,
    /// What the guest measured (`bench:` line).
    pub(crate) cycles: u64,
    /// Under the monitor: exits by ExcCode and guest instructions since the
    /// previous workload's line.
    pub(crate) exits: [u64; 32],
    pub(crate) guest_insns: u64,
}

/// One whole boot of a kit image.
#[derive(Clone, Debug, Default)]
pub(crate) struct KitRun {
    pub(crate) workloads: Vec<KitWorkload>,
    pub(crate) instructions: u64,
    pub(crate) cycles: u64,
    pub(crate) seconds: f64,
    /// Host CPU time of the run, every thread (the parallel mode's rows).
    pub(crate) cpu_seconds: f64,
    /// In the parallel mode: the quanta its threads ran, and before how
    /// many they waited for each other (natively every thread's; under the
    /// monitor, split VMs' parts').
    pub(crate) waits: Option<(u64, u64)>,
}

/// `bench: <prog> <N> cycles` → (prog, N).
pub(crate) fn parse_bench_line(line: &str) -> Option<(&str, u64)> {
    let rest = line.trim().strip_prefix("bench: ")?;
    let mut words = rest.split_whitespace();
    let (prog, n, unit) = (words.next()?, words.next()?, words.next()?);
    if unit != "cycles" || words.next().is_some() {
        return None;
    }
    Some((prog, n.parse().ok()?))
}

/// Feeds console bytes and hands complete lines to `line`.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8], mut line: impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' {
                line(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            } else {
                self.partial.push(b);
            }
        }
    }
}

/// Checks that every workload reported, in order.
fn check(path: &Path, workloads: &[KitWorkload], expected: &[&str]) -> anyhow::Result<()> {
    let got: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    anyhow::ensure!(
        got == expected,
        "{}: expected `bench:` lines for {expected:?}, got {got:?}",
        path.display()
    );
    Ok(())
}

fn load(path: &Path) -> anyhow::Result<sim::loader::Image> {
    Ok(crate::run::load_image(path, KIT_RAM)?.0)
}

/// Boots `path` natively on `cpus` CPUs; `expected` names the `bench:`
/// lines it must print (empty for the demo image).
pub(crate) fn native(path: &Path, cpus: usize, expected: &[&str]) -> anyhow::Result<KitRun> {
    native_on(path, cpus, None, expected)
}

/// [`native`] on `threads` host threads (`None`: deterministic).
pub(crate) fn native_on(
    path: &Path,
    cpus: usize,
    threads: Option<usize>,
    expected: &[&str],
) -> anyhow::Result<KitRun> {
    let image = load(path)?;
    let mut m = Machine::new(
        MachineConfig {
            ncpus: cpus,
            ram_bytes: KIT_RAM,
            max_cycles: Some(KIT_CYCLE_LIMIT),
            ..MachineConfig::default()
        },
        Board::new(cpus),
    );
    anyhow::ensure!(
        image.load_into(&mut m),
        "{}: does not fit in RAM",
        path.display()
    );
    m.set_parallel(threads);
    let mut lines = Lines::default();
    let mut workloads = Vec::new();
    let clock = Clock::start();
    let exit = loop {
        let step = m.run_quantum();
        lines.feed(&m.take_console(), |l| {
            if let Some((prog, cycles)) = parse_bench_line(l) {
                workloads.push(KitWorkload {
                    name: prog.to_string(),
                    cycles,
                    ..KitWorkload::default()
                });
            }
        });
        if let Some(e) = step {
            break e;
        }
    };
    let took = clock.took();
    anyhow::ensure!(
        exit == Exit::Halted { status: 0 },
        "{} natively on {cpus} CPU(s) ended with {exit:?}",
        path.display()
    );
    check(path, &workloads, expected)?;
    Ok(KitRun {
        workloads,
        instructions: m.instructions(),
        cycles: m.cpus.iter().map(|c| c.cycles()).max().unwrap_or(0),
        seconds: took.wall,
        cpu_seconds: took.cpu,
        waits: m.parallel_waits(),
    })
}

/// Boots `vms` VMs of `path` (one VCPU each) on as many physical CPUs,
/// their guest kernels run as `exec` says; per-workload figures are those
/// of the first VM.
pub(crate) fn under_monitor(
    path: &Path,
    vms: usize,
    expected: &[&str],
    exec: monitor::bt::Exec,
) -> anyhow::Result<KitRun> {
    let image = load(path)?;
    let mut m = Monitor::new(MonitorConfig {
        pcpus: vms,
        max_cycles: Some(KIT_CYCLE_LIMIT),
        vms: (0..vms)
            .map(|i| VmConfig {
                exec,
                ..VmConfig::new(&format!("vm{i}"), image.clone(), KIT_RAM)
            })
            .collect(),
        ..MonitorConfig::default()
    })?;
    let mut lines = Lines::default();
    let mut workloads = Vec::new();
    let mut last = ([0u64; 32], 0u64);
    let clock = Clock::start();
    let exit = loop {
        let step = m.run_quantum();
        for v in 1..vms {
            m.take_console(v);
        }
        let out = m.take_console(0);
        let mut reported = Vec::new();
        lines.feed(&out, |l| {
            if let Some((prog, cycles)) = parse_bench_line(l) {
                reported.push((prog.to_string(), cycles));
            }
        });
        for (name, cycles) in reported {
            let st = m.vm_stats().into_iter().next().unwrap_or_default();
            let mut exits = st.exits;
            for (e, before) in exits.iter_mut().zip(last.0) {
                *e -= before;
            }
            workloads.push(KitWorkload {
                name,
                cycles,
                exits,
                guest_insns: st.guest_insns - last.1,
            });
            last = (st.exits, st.guest_insns);
        }
        if let Some(e) = step {
            break e;
        }
    };
    let took = clock.took();
    anyhow::ensure!(
        exit == MonitorExit::AllEnded,
        "{} in {vms} VM(s): the monitor stopped with {exit:?}",
        path.display()
    );
    for v in &m.vms {
        anyhow::ensure!(
            v.end == Some(VmEnd::Halted(0)),
            "{}: VM {} ended with {:?}",
            path.display(),
            v.name,
            v.end
        );
    }
    check(path, &workloads, expected)?;
    Ok(KitRun {
        workloads,
        instructions: m.vm_stats().iter().map(|s| s.guest_insns).sum(),
        cycles: m.now(),
        seconds: took.wall,
        cpu_seconds: took.cpu,
        waits: m.parallel_part_waits(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_are_recognized_exactly() {
        assert_eq!(
            parse_bench_line("bench: syscall 122690482 cycles"),
            Some(("syscall", 122_690_482))
        );
        assert_eq!(parse_bench_line("bench: smp 5 cycles extra"), None);
        assert_eq!(parse_bench_line("bench: smp many cycles"), None);
        assert_eq!(parse_bench_line("smp: cpu 0 did 500 increments"), None);
    }

    #[test]
    fn console_bytes_become_lines_across_quanta() {
        let mut l = Lines::default();
        let mut got = Vec::new();
        l.feed(b"bench: comp", |s| got.push(s.to_string()));
        l.feed(b"ute 7 cycles\nnext", |s| got.push(s.to_string()));
        assert_eq!(got, ["bench: compute 7 cycles"]);
    }

    /// The committed image, natively and in one VM: every workload reports,
    /// in order, and exits are attributed to each (they sum to the total).
    #[test]
    fn kestrel_bench_reports_every_workload_natively_and_in_a_vm() {
        let path = crate::run::images_dir().join("kestrel-bench.elf");
        let n = native(&path, 1, &KIT_WORKLOADS).unwrap();
        let v = under_monitor(&path, 1, &KIT_WORKLOADS, monitor::bt::Exec::Direct).unwrap();
        assert!(n.workloads.iter().all(|w| w.cycles > 0));
        // The syscall workload is made of system calls: Sys exits dominate.
        let sys = v.workloads[1].exits[sim::ExcCode::Sys as usize];
        assert!(sys >= 400_000, "{:?}", v.workloads[1]);
        assert!(v.workloads[0].exits[sim::ExcCode::Sys as usize] < sys / 10);
    }
}
