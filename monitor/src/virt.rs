//! Runtime virtualization: sliding the monitor under a kernel that booted
//! on the bare machine, and taking it out again (docs/devirtualization.md).
//!
//! Both switches happen at a quantum boundary, where every CPU is between
//! instructions. [`virtualize`] turns each CPU's architectural state into
//! a VCPU of VM `vm0` (VCPU i pinned to CPU i), moves the board into the VM and
//! gives it an identity pmap built as one range; [`devirtualize`] checks
//! that the VM can run on the bare machine again and loads each VCPU's
//! state back into its CPU with exits off. [`Host`](crate::host::Host) owns whichever of the
//! machine or the monitor runs and carries out the run's timeline.

use std::collections::VecDeque;

use sim::hv::{
    config::show_size, cp0::reg, Board, CpuState, Machine, RunState, PAGE_SHIFT, PAGE_SIZE,
};

use crate::cost::{Cost, VirtCost};
use crate::mem::{Asids, Pmap};
use crate::memstate::{MemoryState, PageSet};
use crate::obs::Trace;
use crate::vcpu::{Vcpu, VcpuState};
use crate::{tlbctl, Monitor, MonitorConfig, Vm};

/// What one switch did, for its timeline line and the tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch {
    /// CPUs that became VCPUs, or VCPUs handed back to CPUs.
    pub cpus: usize,
    /// Bytes of guest-physical memory, identity-mapped.
    pub mem: u64,
    /// Pages whose contents moved, of them `indirect` through a free page.
    pub pages_moved: u64,
    pub indirect: u64,
    /// The VM's memory afterwards (`None`: the kernel runs natively).
    pub memory: Option<MemoryState>,
    /// Cycles every CPU of the guest was held at the boundary.
    pub pause: u64,
    /// What moved, one line per step (the trace and the trap-flow
    /// snapshots show it).
    pub log: Vec<String>,
}

/// One CPU's state as the switch log shows it.
fn describe(regs: &sim::hv::Regs, cp0: &sim::hv::Cp0, tlb: &sim::hv::Tlb, count: u32) -> String {
    let used = (0..sim::hv::TLB_ENTRIES)
        .filter(|&i| {
            let e = tlb.read(i);
            e.lo.iter().any(|l| l & sim::hv::tlb::lo::V != 0)
        })
        .count();
    format!(
        "pc {:#010x} {:?} mode, status {:#010x}, ASID {}, {} wired and {} valid of 48 TLB entries, count {:#x}, compare {:#x}",
        regs.pc as u32,
        cp0.mode(),
        cp0.status,
        cp0.asid(),
        cp0.wired,
        used,
        count,
        cp0.compare
    )
}

/// The board state that moves with the kernel, as the switch log shows it.
fn describe_board(board: &Board, n: usize) -> String {
    let per_cpu: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "cpu{i} lines {:#06x} ipis {:?}",
                board.irq_lines(i),
                board.mp.pending_ipis(i)
            )
        })
        .collect();
    format!(
        "board: mp memory {}, {}, console output {} bytes not yet collected",
        show_size(board.mp.memory()),
        per_cpu.join(", "),
        board.console_out.len()
    )
}

/// The guest pause of a switch on `cpus` CPUs: each CPU moves its own
/// registers, CP0 and TLB in parallel, then CPU 0 moves the pmap and the
/// board while the others wait at the barrier.
fn pause(c: &VirtCost, tlb_entries: u64) -> u64 {
    c.cpu_state + tlb_entries * c.tlb_entry + c.pmap_range + c.board
}

fn vcpu_state(s: RunState) -> VcpuState {
    match s {
        RunState::Parked => VcpuState::Parked,
        RunState::Running => VcpuState::Runnable,
        RunState::Waiting => VcpuState::Waiting,
        RunState::Stopped => VcpuState::Stopped,
    }
}

fn run_state(s: VcpuState) -> RunState {
    match s {
        VcpuState::Parked => RunState::Parked,
        VcpuState::Runnable => RunState::Running,
        VcpuState::Waiting => RunState::Waiting,
        VcpuState::Stopped => RunState::Stopped,
    }
}

/// Slides the monitor under the kernel running on `machine`, CPUs and
/// memory, at the default costs.
pub fn virtualize(machine: Box<Machine>) -> Result<(Box<Monitor>, Switch), (Box<Machine>, String)> {
    virtualize_with(machine, &crate::cost::COST, false)
}

/// Slides the monitor, charging `cost`, under the kernel running on
/// `machine`; with `cpu_only` its memory stays pass-through (every page on
/// itself, the guest's entries installed as they are). Refused, with the
/// machine given back untouched, when the monitor has no machine memory of
/// its own above the kernel's (one commpage per VCPU), when a CPU is paused
/// through mp, or when the machine has halted.
pub fn virtualize_with(
    mut machine: Box<Machine>,
    cost: &Cost,
    cpu_only: bool,
) -> Result<(Box<Monitor>, Switch), (Box<Machine>, String)> {
    if let Some(why) = virtualize_refusal(&machine) {
        return Err((machine, why));
    }
    let n = machine.cpus.len();
    let boot = machine.bus.board.mp.memory();
    let ram = machine.bus.ram_len();
    let now = machine.now;
    let tlb = sim::hv::TLB_ENTRIES as u64;
    // Capturing the guest's TLB, then emptying the real one.
    let pause = pause(&cost.virt, tlb) + tlb * cost.virt.tlb_flush_entry;
    let board = std::mem::replace(&mut machine.bus.board, Board::new(n));
    let mut log = vec![describe_board(&board, n)];
    let (vcpus, current) = vcpus_of(&mut machine, boot, pause, &mut log);
    let config = MonitorConfig {
        pcpus: n,
        quantum: machine.config.quantum,
        max_cycles: machine.config.max_cycles,
        machine_mem: Some(ram),
        cost: *cost,
        ..MonitorConfig::default()
    };
    let pages = u32::try_from(boot >> PAGE_SHIFT).unwrap_or(u32::MAX);
    let mut pmap = Pmap::range(0, pages);
    if cpu_only {
        pmap.passthrough = PageSet::of(0, pages);
    }
    log.push(format!(
        "pmap vm0: guest-physical 0..{} -> machine 0..{}, one range (identity){}; commpages at machine {:#x}",
        show_size(boot),
        show_size(boot),
        if cpu_only {
            ", every page passed through (the guest's entries installed as they are, frames checked against its memory)"
        } else {
            ""
        },
        boot
    ));
    log.push(format!(
        "real TLBs emptied, exits on; guest paused {pause} cycles; commpage patching off (vm0 may be devirtualized)"
    ));
    let vm = Vm {
        id: 0,
        name: "vm0".to_string(),
        pmap,
        vcpus,
        board,
        end: None,
        console: Vec::new(),
        io: crate::coalesce::VmIo::default(),
        // A kernel the monitor slides under at run time keeps
        // trap-and-emulate (`--vm`'s default is `adaptive`): the flows and
        // figures of docs/devirtualization.md are about it.
        bt: crate::bt::Bt::new(crate::bt::Exec::Direct),
    };
    let memmap = crate::remap::memmap_of(ram, std::slice::from_ref(&vm));
    let slice_end = machine
        .cpus
        .iter()
        .map(|c| c.cycles() + config.slice)
        .collect();
    let monitor = Box::new(Monitor {
        current,
        slice_end,
        runq: VecDeque::new(),
        asids: Asids::new(n),
        trace: Trace {
            vm_names: vec![vm.name.clone()],
            now,
            ..Trace::default()
        },
        vms: vec![vm],
        memmap,
        remap: None,
        shootdowns: Vec::new(),
        tlb_cursor: vec![0; n],
        flushed_generation: 0,
        now,
        debug: None,
        paused: None,
        par: None,
        split: crate::SplitPolicy::default(),
        machine: *machine,
        config,
    });
    let switch = Switch {
        cpus: n,
        mem: boot,
        pages_moved: 0,
        indirect: 0,
        memory: monitor.vms.first().map(|vm| vm.pmap.state()),
        pause,
        log,
    };
    Ok((monitor, switch))
}

/// Why the bare machine `machine` cannot be virtualized now, if it cannot.
fn virtualize_refusal(machine: &Machine) -> Option<String> {
    let n = machine.cpus.len();
    let boot = machine.bus.board.mp.memory();
    let ram = machine.bus.ram_len();
    let need = boot.saturating_add(n as u64 * PAGE_SIZE);
    if !boot.is_multiple_of(PAGE_SIZE) || need > ram {
        return Some(format!(
            "the monitor needs {n} free 4K page(s) of machine memory above the kernel's {} for its VCPUs' commpages, and the machine has {}; give --mem more than --boot-mem",
            show_size(boot),
            show_size(ram)
        ));
    }
    if machine.halted.is_some() {
        return Some("the machine has halted".to_string());
    }
    (0..n)
        .find(|&i| machine.bus.board.paused(i))
        .map(|i| format!("CPU {i} is paused through mp, which a VM cannot express yet"))
}

/// A VCPU on a physical CPU: (VM, VCPU), as `Monitor::current` holds it.
type Seated = (usize, usize);

/// The VCPUs of vm0, one per CPU of `machine`, each holding its CPU's
/// state (its commpage above the kernel's `boot` memory); the real CPUs
/// become the monitor's, each charged `pause`. Also which VCPU each
/// physical CPU runs now (`Monitor::current`). One `log` line per CPU.
/// (Boxed as `Vm::vcpus` holds them.)
#[allow(clippy::vec_box)]
fn vcpus_of(
    machine: &mut Machine,
    boot: u64,
    pause: u64,
    log: &mut Vec<String>,
) -> (Vec<Box<Vcpu>>, Vec<Option<Seated>>) {
    let n = machine.cpus.len();
    let mut vcpus = Vec::with_capacity(n);
    let mut current = vec![None; n];
    for (i, cpu) in machine.cpus.iter_mut().enumerate() {
        let s = cpu.capture();
        log.push(format!(
            "cpu{i} -> vm0.{i} ({:?}): {}",
            s.state,
            describe(&s.regs, &s.cp0, &s.tlb, s.count)
        ));
        let mut vc = Vcpu::new(i, i, boot + i as u64 * PAGE_SIZE);
        vc.commpage_on = false;
        vc.pinned = Some(i);
        vc.regs = s.regs;
        vc.cp0 = s.cp0;
        vc.tlb = s.tlb;
        vc.write_cp0(reg::COUNT, u64::from(s.count), cpu.cycles());
        vc.state = vcpu_state(s.state);
        tlbctl::flush_real_tlb(cpu);
        cpu.set_hv_exits(true);
        // The real CPU is the monitor's from now on; the VCPU's own state
        // decides whether the guest runs.
        cpu.set_run_state(RunState::Running);
        cpu.charge(pause);
        vc.stats.monitor_cycles += pause;
        if vc.state == VcpuState::Runnable {
            vc.on_pcpu = Some(i);
            if let Some(slot) = current.get_mut(i) {
                *slot = Some((0, i));
            }
        }
        vcpus.push(Box::new(vc));
    }
    (vcpus, current)
}

/// Why VM `vm0` of `m` cannot be handed back to the bare machine, if it
/// cannot.
pub(crate) fn devirtualize_refusal(m: &Monitor) -> Option<String> {
    let Some(vm) = m.vms.first() else {
        return Some("there is no VM".to_string());
    };
    if let Some(other) = m.vms.iter().skip(1).find(|v| v.running()) {
        return Some(format!(
            "{} is still running; the CPUs can only be handed back to the only VM",
            other.name
        ));
    }
    if !vm.running() {
        return Some(format!("{} has ended", vm.name));
    }
    if vm.vcpus.len() > m.machine.cpus.len() {
        return Some(format!(
            "{} has {} VCPUs and the machine {} CPUs; each VCPU needs a CPU of its own",
            vm.name,
            vm.vcpus.len(),
            m.machine.cpus.len()
        ));
    }
    if vm.pmap.size() > m.machine.bus.ram_len() {
        return Some(format!(
            "{}'s memory is larger than machine memory",
            vm.name
        ));
    }
    if vm.vcpus.iter().any(|v| v.stats.patched > 0) {
        return Some(format!(
            "{}'s kernel code was patched for the commpage (it was booted under the monitor)",
            vm.name
        ));
    }
    if m.debug.is_some() {
        return Some("a debugger is attached".to_string());
    }
    None
}

/// Hands the machine back to the kernel in VM `vm0`: each VCPU's
/// registers, CP0 and TLB go into the CPU of the same number, the board
/// returns to the machine, exits go off. Refused, with the monitor given
/// back untouched, when `devirtualize_refusal` says why.
pub fn devirtualize(m: Box<Monitor>) -> Result<(Box<Machine>, Switch), (Box<Monitor>, String)> {
    devirtualize_with(m, crate::remap::RemapIndex::Backmap)
}

/// [`devirtualize`], finding machine pages' users through `index` while
/// remapping to the identity.
pub fn devirtualize_with(
    m: Box<Monitor>,
    index: crate::remap::RemapIndex,
) -> Result<(Box<Machine>, Switch), (Box<Monitor>, String)> {
    devirtualize_remapped(m, index, crate::remap::Moved::default())
}

/// [`devirtualize_with`] after `before` was moved by a concurrent
/// remapping to the identity (`--remap concurrent`).
pub fn devirtualize_remapped(
    mut m: Box<Monitor>,
    index: crate::remap::RemapIndex,
    before: crate::remap::Moved,
) -> Result<(Box<Machine>, Switch), (Box<Monitor>, String)> {
    if let Some(why) = devirtualize_refusal(&m) {
        return Err((m, why));
    }
    let moved = match crate::remap::to_identity(&mut m, 0, index) {
        Ok(moved) => moved,
        Err(why) => return Err((m, why)),
    };
    for p in 0..m.current.len() {
        m.schedule_out(p);
    }
    let Some(vm) = std::mem::take(&mut m.vms).into_iter().next() else {
        return Err((m, "there is no VM".to_string()));
    };
    let Monitor {
        machine,
        now,
        config,
        ..
    } = *m;
    let mut machine = Box::new(machine);
    let tlb = sim::hv::TLB_ENTRIES as u64;
    let pause = pause(&config.cost.virt, tlb);
    let mut log = vec![format!(
        "pmap {}: guest-physical 0..{} remapped to the identity: {} pages moved ({} direct, {} indirect), pause {} cycles; nothing composed from now on",
        vm.name,
        show_size(vm.pmap.size()),
        moved.pages(),
        moved.direct,
        moved.indirect,
        moved.pause
    )];
    if before.pages() > 0 {
        log.insert(0, format!(
            "pmap {}: {} pages moved concurrently before the hand-back ({} direct, {} indirect) in {} cycles, {} stores waited for a copy, largest guest pause {} cycles",
            vm.name,
            before.pages(),
            before.direct,
            before.indirect,
            before.cycles,
            before.waits,
            before.pause
        ));
    }
    for (i, cpu) in machine.cpus.iter_mut().enumerate() {
        cpu.set_hv_exits(false);
        match vm.vcpus.get(i) {
            Some(vc) => {
                let count = vc.count(cpu.cycles());
                log.push(format!(
                    "{}.{i} ({:?}) -> cpu{i}: {}",
                    vm.name,
                    vc.state,
                    describe(&vc.regs, &vc.cp0, &vc.tlb, count)
                ));
                cpu.restore(&CpuState {
                    regs: vc.regs.clone(),
                    cp0: vc.cp0.clone(),
                    tlb: vc.tlb.clone(),
                    count,
                    state: run_state(vc.state),
                });
            }
            None => cpu.set_run_state(RunState::Parked),
        }
        cpu.charge(pause);
    }
    log.push(describe_board(&vm.board, machine.cpus.len()));
    log.push(format!(
        "exits off, guest TLB writes no longer inspected; no commpage patches to undo; guest paused {} cycles in all ({pause} for the hand-back)",
        pause + moved.pause
    ));
    let mut board = vm.board;
    let mut out = vm.console;
    out.append(&mut board.console_out);
    board.console_out = out;
    machine.bus.board = board;
    machine.now = now;
    let switch = Switch {
        cpus: vm.vcpus.len(),
        mem: vm.pmap.size(),
        pages_moved: moved.pages() + before.pages(),
        indirect: moved.indirect + before.indirect,
        memory: None,
        pause: (pause + moved.pause).max(before.pause),
        log,
    };
    Ok((machine, switch))
}

/// Boots VM `config` beside the running ones, in machine memory from the
/// memmap's free list (`remap::allocate`: one range if it can, then a
/// commpage per VCPU), with its first VCPU runnable. Refused, with
/// nothing changed, when too little memory is free or the image does not
/// fit. Returns the VM's index and the machine address of its page 0.
pub fn start_vm(m: &mut Monitor, config: &crate::VmConfig) -> Result<(usize, u64), String> {
    if m.vms.iter().any(|v| v.name == config.name) {
        return Err(format!("a VM named {} exists already", config.name));
    }
    // Checked before any page is taken, so a refusal leaves nothing behind.
    for (gpa, bytes) in &config.image.segments {
        if gpa.saturating_add(bytes.len() as u64) > config.mem_bytes {
            return Err(format!(
                "{}: image segment at guest-physical {gpa:#x} (+{:#x}) lies outside its {} of memory",
                config.name,
                bytes.len(),
                show_size(config.mem_bytes)
            ));
        }
    }
    let pages = u32::try_from(config.mem_bytes >> PAGE_SHIFT).unwrap_or(u32::MAX);
    let id = m.vms.len();
    let (pmap, commpages) = match crate::remap::allocate(m, id, pages, config.vcpus) {
        Ok(got) => got,
        Err(free) => {
            return Err(format!(
                "{} needs {} of free machine memory ({} and a 4K commpage for each of {} VCPUs); the machine has {} free",
                config.name,
                show_size(config.mem_bytes + config.vcpus as u64 * PAGE_SIZE),
                show_size(config.mem_bytes),
                config.vcpus,
                show_size(free)
            ))
        }
    };
    let base = pmap.translate(crate::mem::GuestPhys(0)).map_or(0, |a| a.0);
    // A VM's memory starts zeroed, whoever used the pages before.
    let zeros = vec![0u8; PAGE_SIZE as usize];
    for gpn in 0..u64::from(pages) {
        if let Some(mpn) = pmap.machine_page(gpn) {
            m.machine
                .bus
                .write_bytes(u64::from(mpn) << PAGE_SHIFT, &zeros);
        }
    }
    for (gpa, bytes) in &config.image.segments {
        // Inside its memory (checked above), so it loads.
        let _ = crate::load_segment(&mut m.machine, &pmap, *gpa, bytes);
    }
    let first_space = m.asids.add_spaces(config.vcpus);
    let now = m.now;
    let mut vcpus: Vec<Box<Vcpu>> = commpages
        .iter()
        .enumerate()
        .map(|(c, &at)| Box::new(Vcpu::new(c, first_space + c, at)))
        .collect();
    if let Some(v0) = vcpus.first_mut() {
        v0.boot(
            config.image.entry,
            0xFFFF_FFFF_8000_0000 + config.mem_bytes - 16,
            now,
        );
        m.runq.push_back((id, 0));
    }
    m.vms.push(Vm {
        id,
        name: config.name.clone(),
        pmap,
        vcpus,
        board: Board::with_config(sim::hv::BoardConfig {
            ncpus: config.vcpus,
            ram_bytes: config.mem_bytes,
            disk: config.disk.clone(),
            disk_irq_latency: config.disk_irq_latency,
            seed: 0,
            epoch: 0,
        }),
        end: None,
        console: Vec::new(),
        io: crate::coalesce::VmIo::new(config.io),
        bt: crate::bt::Bt::new(config.exec),
    });
    m.trace.vm_names.push(config.name.clone());
    Ok((id, base))
}
