//! Per-VM statistics for `--stats`: exits by reason, emulated instructions
//! by kind, L2TLB hits and misses, monitor and guest cycles.

use std::fmt::Write as _;

use sim::hv::ExcCode;

use crate::vcpu::{VcpuStats, EMULATED};
use crate::Monitor;

/// The sums over one VM's VCPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmStats {
    pub name: String,
    pub exits: [u64; 32],
    pub emulated: [u64; EMULATED.len()],
    pub reflected: u64,
    pub engine_insns: u64,
    pub vdev_accesses: u64,
    pub device_exits: u64,
    pub device_exits_tlb: u64,
    pub kseg_exits: u64,
    pub patched: u64,
    pub composed: u64,
    pub passed_through: u64,
    /// Whether its memory is composed, passed through or partly each.
    pub memory: Option<crate::memstate::MemoryState>,
    pub l2tlb_hits: u64,
    pub l2tlb_misses: u64,
    pub monitor_cycles: u64,
    pub guest_cycles: u64,
    pub guest_insns: u64,
    /// Coalesced I/O: the VM's policy, counters and table (blocks, singles).
    pub coalesce: crate::coalesce::Policy,
    pub io: crate::coalesce::IoStats,
    pub io_table: (usize, usize),
    /// Binary translation: policy, counters, regions (`bt`).
    pub exec: crate::bt::Exec,
    pub bt: crate::bt::BtStats,
    pub regions: Vec<(u32, crate::bt::region::Region)>,
}

impl VmStats {
    pub fn total_exits(&self) -> u64 {
        self.exits.iter().sum()
    }

    /// Monitor cycles as a share of all cycles this VM used.
    pub fn monitor_share(&self) -> f64 {
        let total = self.monitor_cycles + self.guest_cycles;
        if total == 0 {
            0.0
        } else {
            self.monitor_cycles as f64 / total as f64
        }
    }

    fn add(&mut self, s: &VcpuStats) {
        for (a, b) in self.exits.iter_mut().zip(s.exits.iter()) {
            *a += b;
        }
        for (a, b) in self.emulated.iter_mut().zip(s.emulated.iter()) {
            *a += b;
        }
        self.reflected += s.reflected;
        self.engine_insns += s.engine_insns;
        self.vdev_accesses += s.vdev_accesses;
        self.device_exits += s.device_exits;
        self.device_exits_tlb += s.device_exits_tlb;
        self.kseg_exits += s.kseg_exits;
        self.patched += s.patched;
        self.composed += s.composed;
        self.passed_through += s.passed_through;
        self.monitor_cycles += s.monitor_cycles;
        self.guest_cycles += s.guest_cycles;
        self.guest_insns += s.guest_insns;
    }
}

impl Monitor {
    /// Statistics of every VM, in VM order.
    pub fn vm_stats(&self) -> Vec<VmStats> {
        self.vms
            .iter()
            .map(|vm| {
                let mut st = VmStats {
                    name: vm.name.clone(),
                    coalesce: vm.io.config.policy,
                    io: vm.io.stats,
                    io_table: vm.io.table_size(),
                    memory: Some(vm.pmap.state()),
                    exec: vm.bt.exec,
                    bt: vm.bt.stats,
                    regions: vm.bt.regions.list(),
                    ..VmStats::default()
                };
                for vc in &vm.vcpus {
                    st.add(&vc.stats);
                    st.l2tlb_hits += vc.l2tlb.hits;
                    st.l2tlb_misses += vc.l2tlb.misses;
                }
                st
            })
            .collect()
    }

    /// The `--stats` report.
    pub fn stats_report(&self) -> String {
        let mut out = String::new();
        for st in self.vm_stats() {
            let _ = writeln!(out, "VM {}:", st.name);
            let _ = writeln!(
                out,
                "  guest: {} instructions, {} cycles; monitor: {} cycles ({:.1}% of the VM's cycles)",
                st.guest_insns,
                st.guest_cycles,
                st.monitor_cycles,
                100.0 * st.monitor_share()
            );
            let _ = write!(out, "  exits: {} total", st.total_exits());
            for code in ExcCode::ALL {
                let n = st.exits.get(code as usize).copied().unwrap_or(0);
                if n > 0 {
                    let _ = write!(out, ", {code} {n}");
                }
            }
            out.push('\n');
            let _ = writeln!(
                out,
                "  device-access exits: {} ({} through a TLB-mapped device page); other address-error exits (KSEG0 data): {}",
                st.device_exits, st.device_exits_tlb, st.kseg_exits
            );
            let _ = write!(out, "  emulated:");
            let mut any = false;
            for (name, n) in EMULATED.iter().zip(st.emulated.iter()) {
                if *n > 0 {
                    let _ = write!(out, " {name} {n}");
                    any = true;
                }
            }
            if !any {
                out.push_str(" none");
            }
            out.push('\n');
            let _ = writeln!(
                out,
                "  reflected to the guest: {}; engine instructions: {}; virtual device accesses: {}; MFC0/MTC0 sites patched to the commpage: {}",
                st.reflected, st.engine_insns, st.vdev_accesses, st.patched
            );
            let _ = writeln!(
                out,
                "  L2TLB: {} hits, {} misses",
                st.l2tlb_hits, st.l2tlb_misses
            );
            // Only a kernel virtualized at run time passes memory through.
            if let Some(state) = st.memory.filter(|_| st.passed_through > 0) {
                let _ = writeln!(
                    out,
                    "  memory: {state}; guest TLB entries installed: {} composed, {} passed through",
                    st.composed, st.passed_through
                );
            }
            coalesce_lines(&mut out, &st);
            crate::bt::stats_lines(&mut out, &st);
        }
        out
    }
}

/// The coalesced-I/O lines of `--stats` (docs/monitor.md §4).
fn coalesce_lines(out: &mut String, st: &VmStats) {
    use crate::coalesce::Policy;
    let io = &st.io;
    match st.coalesce {
        Policy::Off => {}
        Policy::Ring => {
            let _ = writeln!(
                out,
                "  coalesce ring: {} writes queued, {} deliveries",
                io.ring_queued, io.ring_flushes
            );
        }
        Policy::Block | Policy::Second => {
            let _ = writeln!(
                out,
                "  coalesce {}: {} blocks covering {} device accesses in {} instructions ({} ended early); table: {} blocks, {} single accesses ({} declined blocks); {} hits in {} lookups, {} dropped; {} scans of {} instructions",
                st.coalesce.name(),
                io.blocks,
                io.block_accesses,
                io.block_insns,
                io.cut,
                st.io_table.0,
                st.io_table.1,
                io.declined,
                io.hits,
                io.lookups,
                io.dropped,
                io.scans,
                io.scanned
            );
        }
    }
}
