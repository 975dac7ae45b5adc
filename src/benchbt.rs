//! `disco bench`: what each execution policy of guest-kernel code costs
//! (`--vm …,exec=direct|translate|adaptive`, docs/translation.md): every
//! kestrel workload and the unrelinked KSEG0 compute loop under each
//! policy, in simulated cycles and host time against the bare machine.

use std::fmt::Write as _;

use monitor::bt::Exec;
use serde::Serialize;
use sim::workload;

use crate::bench::{monitor_run, native_run, progress, to_image, vm, Stat};
use crate::benchkit::{self, KIT_WORKLOADS};

const POLICIES: [Exec; 3] = [Exec::Direct, Exec::Translate, Exec::Adaptive];

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PolicyRow {
    pub(crate) workload: String,
    pub(crate) policy: &'static str,
    pub(crate) native_cycles: u64,
    pub(crate) cycles: u64,
    pub(crate) overhead_percent: f64,
    /// Host seconds under the policy over host seconds natively (for a
    /// kestrel workload, those of the whole boot).
    pub(crate) host_time_ratio: Stat,
}

fn overhead(cycles: u64, native: u64) -> f64 {
    100.0 * (cycles as f64 / native.max(1) as f64 - 1.0)
}

/// Every row: the KSEG0 loop, then (not under `--quick`, which keeps to
/// its two minutes) each kestrel workload, under each policy.
pub(crate) fn measure(quick: bool, runs: usize) -> anyhow::Result<Vec<PolicyRow>> {
    let mut rows = kseg0_loop(if quick { 20 } else { 400 }, runs)?;
    if !quick {
        rows.extend(kestrel(runs)?);
    }
    Ok(rows)
}

/// The unrelinked KSEG0 compute loop (`sim::workload::mixed_integer`, the
/// bare-metal row's kernel, at 0x80001000): its code and data in KSEG0.
fn kseg0_loop(passes: u32, runs: usize) -> anyhow::Result<Vec<PolicyRow>> {
    let image = to_image(workload::mixed_integer(0x8000_1000, passes))?;
    let name = format!("unrelinked KSEG0 compute loop ({passes} passes)");
    let mut rows = Vec::new();
    for exec in POLICIES {
        progress(&format!(
            "policy: {name}, exec={}, {runs} run(s)",
            exec.name()
        ));
        let (mut native, mut cycles, mut ratios) = (0, 0, Vec::new());
        for _ in 0..runs {
            let (_, c, native_secs) = native_run(&image, 1)?;
            let (m, secs) = monitor_run(
                vec![monitor::VmConfig {
                    exec,
                    ..vm("loop", &image)
                }],
                1,
            )?;
            let st = m.vm_stats().into_iter().next().unwrap_or_default();
            native = c;
            cycles = st.guest_cycles + st.monitor_cycles;
            ratios.push(secs / native_secs.max(1e-9));
        }
        rows.push(PolicyRow {
            workload: name.clone(),
            policy: exec.name(),
            native_cycles: native,
            cycles,
            overhead_percent: overhead(cycles, native),
            host_time_ratio: Stat::of(ratios),
        });
    }
    Ok(rows)
}

/// Each kestrel-bench workload under each policy; cycles are the guest's
/// own `bench:` figures.
fn kestrel(runs: usize) -> anyhow::Result<Vec<PolicyRow>> {
    let path = crate::run::images_dir().join("kestrel-bench.elf");
    let mut rows = Vec::new();
    for exec in POLICIES {
        progress(&format!(
            "policy: kestrel-bench, exec={}, {runs} run(s)",
            exec.name()
        ));
        let mut ratios = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let native = benchkit::native(&path, 1, &KIT_WORKLOADS)?;
            let vm = benchkit::under_monitor(&path, 1, &KIT_WORKLOADS, exec)?;
            ratios.push(vm.seconds / native.seconds.max(1e-9));
            last = Some((native, vm));
        }
        let (native, vm) = last.ok_or_else(|| anyhow::anyhow!("no runs"))?;
        let ratio = Stat::of(ratios);
        rows.extend(
            native
                .workloads
                .iter()
                .zip(&vm.workloads)
                .map(|(n, v)| PolicyRow {
                    workload: format!("{} (kestrel)", n.name),
                    policy: exec.name(),
                    native_cycles: n.cycles,
                    cycles: v.cycles,
                    overhead_percent: overhead(v.cycles, n.cycles),
                    host_time_ratio: ratio,
                }),
        );
    }
    Ok(rows)
}

pub(crate) fn render(rows: &[PolicyRow], s: &mut String) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Execution policies of guest-kernel code (one VM, `exec=`; docs/translation.md)\n"
    );
    let _ = writeln!(
        s,
        "| workload | policy | native cycles | monitor cycles | overhead | host-time ratio |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2}% | {} |",
            r.workload, r.policy, r.native_cycles, r.cycles, r.overhead_percent, r.host_time_ratio
        );
    }
}
