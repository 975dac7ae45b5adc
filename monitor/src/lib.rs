//! disco-monitor: a Disco-style virtual machine monitor.
//!
//! The monitor runs "in kernel mode" on the simulated multiprocessor: every
//! exception a physical CPU takes while running a guest is an exit to the
//! Rust code here (see `sim::hv`), which handles it with kernel privilege,
//! charges its modelled cost (`cost`) and resumes. Guest kernels run in
//! supervisor mode, their processes in user mode (`../shared/docs/design.md` §4).
#![deny(
    clippy::unwrap_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]

mod access;
pub mod bt;
pub mod build;
pub mod coalesce;
pub mod commpage;
pub mod cost;
pub mod engine;
pub mod exit;
pub mod files;
pub mod flow;
pub mod gdb;
pub mod guest;
pub mod host;
pub mod l2tlb;
pub mod mem;
pub mod memstate;
pub mod obs;
mod parallel;
pub mod remap;
mod sched;
mod seat;
pub mod spec;
pub mod stats;
pub mod timeline;
pub mod tlbctl;
pub mod vcpu;
pub mod virt;
pub mod vm;

use std::collections::VecDeque;

use sim::hv::{Board, BoardConfig, Machine, MachineConfig, PAGE_SHIFT, PAGE_SIZE};

use crate::mem::{Asids, FrameAllocator, GuestPhys, Memmap, Pmap};
use crate::obs::{MonEvent, Trace};
pub use crate::parallel::SplitPolicy;
pub use crate::sched::BATCH_CYCLES;
use crate::vcpu::Vcpu;
pub use crate::vm::{Vm, VmConfig, VmEnd, VmImage};

/// Host-side failures setting the monitor up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MonitorError {
    #[error("no VM to run")]
    NoVms,
    /// The problem names the size and why it is refused.
    #[error("VM {vm}: mem={problem}")]
    BadMemory { vm: String, problem: String },
    /// The VMs' memory and commpages exceed the machine memory given, or
    /// the documented bound, or what the host can allocate.
    #[error("{0}")]
    MachineMemory(String),
    #[error("VM {vm}: {vcpus} VCPUs; between 1 and 64 are supported")]
    BadVcpus { vm: String, vcpus: usize },
    #[error("VM {vm}: image segment at guest-physical {gpa:#x} (+{len:#x}) lies outside its {mem:#x} bytes of memory")]
    SegmentOutside {
        vm: String,
        gpa: u64,
        len: u64,
        mem: u64,
    },
    #[error("{pcpus} physical CPUs; between 1 and 64 are supported")]
    BadPcpus { pcpus: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    pub pcpus: usize,
    /// Cycles a physical CPU runs before the next one gets its turn.
    pub quantum: u64,
    /// Cycles a VCPU keeps a physical CPU when others are waiting for one.
    pub slice: u64,
    pub max_cycles: Option<u64>,
    pub vms: Vec<VmConfig>,
    /// The machine's memory; `None`: what the VMs need (their memory and
    /// a commpage per VCPU). At most `sim::hv::config::MAX_MACHINE_MEM`.
    pub machine_mem: Option<u64>,
    /// Seed of every VM's mp hardware_random register.
    pub seed: u64,
    /// Seconds since 1970 every VM's rtc reports at cycle 0.
    pub epoch: u64,
    /// The monitor's cost table (`--cost NAME=CYCLES` overrides entries).
    pub cost: cost::Cost,
    /// Execution tier of the physical CPUs (`sim::hv::Tier`).
    pub tier: sim::hv::Tier,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            pcpus: 1,
            quantum: 10_000,
            slice: 100_000,
            max_cycles: None,
            vms: Vec::new(),
            machine_mem: None,
            seed: 0,
            epoch: 0,
            cost: cost::COST,
            tier: sim::hv::Tier::default(),
        }
    }
}

/// Why `Monitor::run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorExit {
    /// Every VM halted or was stopped.
    AllEnded,
    CycleLimit {
        cycles: u64,
    },
    /// A debugger breakpoint, watchpoint or step stopped this VCPU
    /// (`gdb`); the next `run_quantum` resumes exactly there.
    Debug {
        vm: usize,
        vcpu: usize,
    },
}

pub struct Monitor {
    pub machine: Machine,
    pub vms: Vec<Vm>,
    pub trace: Trace,
    config: MonitorConfig,
    current: Vec<Option<(usize, usize)>>,
    slice_end: Vec<u64>,
    runq: VecDeque<(usize, usize)>,
    asids: Asids,
    pub memmap: Memmap,
    /// A concurrent remapping under way (`remap`): a batch at a time, at
    /// quantum boundaries.
    pub remap: Option<remap::Job>,
    /// (physical CPU already done, address space, what).
    shootdowns: Vec<(usize, usize, guest::Shootdown)>,
    /// Per physical CPU, the real TLB entry its next refill replaces.
    tlb_cursor: Vec<usize>,
    /// The ASID generation every real TLB has been flushed for.
    flushed_generation: u64,
    now: u64,
    /// A debugger attached to one VM (`gdb`); `None` costs nothing.
    pub debug: Option<gdb::VmDebug>,
    /// A quantum stopped by the debugger: its end and the physical CPU
    /// to resume.
    paused: Option<(u64, usize)>,
    /// The host threads of the parallel mode, if it is on.
    par: Option<parallel::Parallel>,
    /// Which VMs the parallel mode may split over threads.
    split: SplitPolicy,
}

/// The machine memory for VMs of `(memory, VCPUs)`: the size `given`, or
/// what they need (their memory and a commpage per VCPU), checked against
/// the documented bound and against what the host can allocate. Front ends
/// call it before loading images, so a run that cannot fit is refused
/// first.
pub fn machine_memory(vms: &[(u64, usize)], given: Option<u64>) -> Result<u64, MonitorError> {
    use sim::hv::config::{check_host_memory, show_size, MAX_MACHINE_MEM};
    let vcpus: usize = vms.iter().map(|v| v.1).sum();
    let needed = vms
        .iter()
        .fold(0u64, |sum, v| sum.saturating_add(v.0))
        .saturating_add((vcpus as u64).saturating_mul(PAGE_SIZE));
    let need = || {
        let vms = match vms.len() {
            1 => "the VM needs".to_string(),
            n => format!("{n} VMs need"),
        };
        format!(
            "{vms} {} of machine memory (their memory and a 4K commpage for each of {vcpus} VCPUs)",
            show_size(needed)
        )
    };
    let ram = match given {
        Some(given) if given < needed => {
            return Err(MonitorError::MachineMemory(format!(
                "{}, more than the machine's {}",
                need(),
                show_size(given)
            )))
        }
        Some(given) => given,
        None => needed,
    };
    if ram > MAX_MACHINE_MEM || ram % PAGE_SIZE != 0 {
        return Err(MonitorError::MachineMemory(format!(
            "{}; the monitor manages at most {} in whole 4K pages",
            need(),
            show_size(MAX_MACHINE_MEM)
        )));
    }
    check_host_memory(ram).map_err(|e| MonitorError::MachineMemory(format!("{}: {e}", need())))?;
    Ok(ram)
}

/// The machine pages every VM's memory needs, once the configuration is
/// known to be one the monitor can run.
fn checked_pages(config: &MonitorConfig) -> Result<u64, MonitorError> {
    if config.vms.is_empty() {
        return Err(MonitorError::NoVms);
    }
    if !(1..=sim::hv::MAX_CPUS).contains(&config.pcpus) {
        return Err(MonitorError::BadPcpus {
            pcpus: config.pcpus,
        });
    }
    let mut total_pages = 0u64;
    for v in &config.vms {
        sim::hv::config::check_ram(v.mem_bytes, &sim::hv::config::show_size(v.mem_bytes)).map_err(
            |problem| MonitorError::BadMemory {
                vm: v.name.clone(),
                problem,
            },
        )?;
        if !(1..=64).contains(&v.vcpus) {
            return Err(MonitorError::BadVcpus {
                vm: v.name.clone(),
                vcpus: v.vcpus,
            });
        }
        total_pages += v.mem_bytes >> PAGE_SHIFT;
    }
    Ok(total_pages)
}

/// Where the next VM's pieces come from while the monitor is built: its
/// machine pages, its VCPUs' commpages and their address-space numbers.
struct Placement {
    frames: FrameAllocator,
    next_commpage: u64,
    spaces: usize,
}

impl Placement {
    /// VM `id`: its memory taken from the machine's pages with its image
    /// loaded, VCPU 0 booted at the image's entry, the others parked.
    fn vm(
        &mut self,
        machine: &mut Machine,
        id: usize,
        vc: &VmConfig,
        config: &MonitorConfig,
    ) -> Result<Vm, MonitorError> {
        let pages: Vec<u32> = (0..vc.mem_bytes >> PAGE_SHIFT)
            .map_while(|_| self.frames.alloc())
            .collect();
        let pmap = Pmap::new(pages);
        for (gpa, bytes) in &vc.image.segments {
            load_segment(machine, &pmap, *gpa, bytes).ok_or_else(|| {
                MonitorError::SegmentOutside {
                    vm: vc.name.clone(),
                    gpa: *gpa,
                    len: bytes.len() as u64,
                    mem: vc.mem_bytes,
                }
            })?;
        }
        let mut vcpus: Vec<Box<Vcpu>> = (0..vc.vcpus)
            .map(|c| {
                let mut v = Vcpu::new(c, self.spaces + c, self.next_commpage);
                v.commpage_on = vc.commpage;
                self.next_commpage += PAGE_SIZE;
                Box::new(v)
            })
            .collect();
        self.spaces += vc.vcpus;
        if let Some(v0) = vcpus.first_mut() {
            let sp = 0xFFFF_FFFF_8000_0000 + vc.mem_bytes - 16;
            v0.boot(vc.image.entry, sp, 0);
        }
        Ok(Vm {
            id,
            name: vc.name.clone(),
            pmap,
            vcpus,
            board: Board::with_config(BoardConfig {
                ncpus: vc.vcpus,
                ram_bytes: vc.mem_bytes,
                disk: vc.disk.clone(),
                disk_irq_latency: vc.disk_irq_latency,
                seed: config.seed,
                epoch: config.epoch,
            }),
            end: None,
            console: Vec::new(),
            io: coalesce::VmIo::new(vc.io),
            bt: bt::Bt::new(vc.exec),
        })
    }
}

impl Monitor {
    pub fn new(config: MonitorConfig) -> Result<Monitor, MonitorError> {
        let total_pages = checked_pages(&config)?;
        let shapes: Vec<(u64, usize)> = config.vms.iter().map(|v| (v.mem_bytes, v.vcpus)).collect();
        let ram_bytes = machine_memory(&shapes, config.machine_mem)?;
        let mut machine = Machine::new(
            MachineConfig {
                ncpus: config.pcpus,
                ram_bytes,
                quantum: config.quantum,
                max_cycles: config.max_cycles,
                tier: config.tier,
            },
            Board::new(config.pcpus),
        );
        let mut placement = Placement {
            frames: FrameAllocator::new(0, u32::try_from(total_pages).unwrap_or(u32::MAX)),
            // The commpages sit above every VM's memory, owned by the monitor.
            next_commpage: total_pages << PAGE_SHIFT,
            spaces: 0,
        };
        let mut vms = Vec::new();
        let mut runq = VecDeque::new();
        for (id, vc) in config.vms.iter().enumerate() {
            let vm = placement.vm(&mut machine, id, vc, &config)?;
            if !vm.vcpus.is_empty() {
                runq.push_back((id, 0));
            }
            vms.push(vm);
        }
        for cpu in &mut machine.cpus {
            cpu.set_hv_exits(true);
            // Every physical CPU belongs to the monitor from the start.
            cpu.boot(0xFFFF_FFFF_8000_0000, 0);
        }
        let trace = Trace {
            vm_names: vms.iter().map(|v| v.name.clone()).collect(),
            ..Trace::default()
        };
        let memmap = remap::memmap_of(ram_bytes, &vms);
        Ok(Monitor {
            current: vec![None; config.pcpus],
            slice_end: vec![0; config.pcpus],
            asids: Asids::new(placement.spaces),
            machine,
            vms,
            trace,
            runq,
            memmap,
            remap: None,
            shootdowns: Vec::new(),
            tlb_cursor: vec![0; config.pcpus],
            flushed_generation: 0,
            now: 0,
            debug: None,
            paused: None,
            par: None,
            split: SplitPolicy::default(),
            config,
        })
    }

    /// Runs until every VM has ended or the cycle limit passes.
    pub fn run(&mut self) -> MonitorExit {
        loop {
            if let Some(e) = self.run_quantum() {
                return e;
            }
        }
    }

    /// Empties every real TLB, as heavy use by other VMs would. The guests'
    /// virtual TLBs and L2TLBs keep their entries, so the next misses are
    /// refilled by the monitor alone (used by tests and demonstrations).
    pub fn flush_real_tlbs(&mut self) {
        for cpu in &mut self.machine.cpus {
            tlbctl::flush_real_tlb(cpu);
        }
        self.trace.emit(MonEvent::RealTlbsFlushed);
    }

    /// How many times the machine ASIDs ran out and every real TLB was
    /// flushed (in the parallel mode, also a VM's own ASIDs and the real
    /// TLBs of its CPUs).
    pub fn asid_generation(&self) -> u64 {
        let own = self
            .par
            .as_ref()
            .map_or(0, |par| par.asids.iter().map(|a| a.generation).sum::<u64>());
        self.asids.generation + own
    }

    /// Runs the physical CPUs on `threads` host threads from the next
    /// quantum on (docs/parallel.md); `None` is the deterministic mode.
    /// More threads than physical CPUs are not started. A debugger or a
    /// remapping job needs the deterministic mode: the monitor goes back
    /// to it when either is there at a quantum boundary.
    pub fn set_parallel(&mut self, threads: Option<usize>) {
        // The two modes allocate machine ASIDs differently (`parallel`):
        // no real TLB entry survives the change.
        self.par = None;
        self.asids.new_generation();
        self.flushed_generation = self.asids.generation;
        for cpu in &mut self.machine.cpus {
            tlbctl::flush_real_tlb(&mut cpu.core);
        }
        if let Some(n) = threads {
            let n = n.clamp(1, self.current.len().max(1));
            self.par = Some(parallel::Parallel::start(
                n,
                &mut self.machine.bus,
                self.vms.len(),
                self.asids.spaces(),
                self.current.len(),
                self.split,
            ));
            for cpu in &mut self.machine.cpus {
                // The buses they run on change.
                cpu.core.bus_changed();
            }
        }
    }

    /// Which VMs the parallel mode may split over host threads
    /// (docs/parallel.md, "Which VMs are split"); `SplitPolicy::Auto` by
    /// default. The deterministic mode ignores it.
    pub fn set_split(&mut self, split: SplitPolicy) {
        self.split = split;
        if let Some(par) = self.par.as_mut() {
            par.split = split;
        }
    }

    /// The host threads of the parallel mode, `None` in the deterministic
    /// mode.
    pub fn parallel_threads(&self) -> Option<usize> {
        self.par.as_ref().map(parallel::Parallel::threads)
    }

    /// How many batches the parallel mode ran, and in how many of them a
    /// VM's CPUs were on more than one host thread (docs/parallel.md);
    /// `None` in the deterministic mode.
    pub fn parallel_batches(&self) -> Option<(u64, u64)> {
        self.par.as_ref().map(|p| (p.batches, p.split_batches))
    }

    /// How many quanta the threads holding parts of split VMs ran, and
    /// before how many of them a thread waited for another to catch up
    /// (docs/parallel.md, "Split VMs run ahead"); `None` in the
    /// deterministic mode.
    pub fn parallel_part_waits(&self) -> Option<(u64, u64)> {
        self.par.as_ref().map(|p| (p.part_quanta, p.part_waits))
    }

    /// Machine time: every physical CPU has reached it.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Console output of VM `vm` since the last call.
    pub fn take_console(&mut self, vm: usize) -> Vec<u8> {
        let Some(v) = self.vms.get_mut(vm) else {
            return Vec::new();
        };
        let mut out = std::mem::take(&mut v.console);
        out.append(&mut v.board.console_out);
        out
    }
}

/// Copies an image segment into guest-physical memory page by page.
fn load_segment(machine: &mut Machine, pmap: &Pmap, gpa: u64, bytes: &[u8]) -> Option<()> {
    let end = gpa.checked_add(bytes.len() as u64)?;
    if end > pmap.size() {
        return None;
    }
    let mut off = 0usize;
    while off < bytes.len() {
        let g = gpa + off as u64;
        let in_page = (PAGE_SIZE - (g & (PAGE_SIZE - 1))) as usize;
        let n = in_page.min(bytes.len() - off);
        let ma = pmap.translate(GuestPhys(g))?;
        if !machine.bus.write_bytes(ma.0, bytes.get(off..off + n)?) {
            return None;
        }
        off += n;
    }
    Some(())
}
