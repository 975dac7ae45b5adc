//! One VM under the monitor as a GDB target (`disco run --vm … --gdb PORT
//! --gdb-vm NAME`): each of its VCPUs is a thread; registers are the
//! guest's (the physical CPU's while the VCPU is scheduled, the saved ones
//! otherwise) with its *virtual* Status, Cause and BadVAddr; memory is the
//! guest's virtual address space as its kernel sees it (its virtual TLB and
//! current ASID, then the pmap), RAM only.
//!
//! Breakpoints and steps apply wherever guest code runs: directly on the
//! physical CPU (the traced loop checks them) and in the monitor's engine
//! (KSEG0 code; `stops_engine`). A vector trampoline the monitor would
//! follow in one move is interpreted while a breakpoint lies on it
//! (`breaks_in`). Watchpoints are checked in direct execution only. A step
//! over an instruction that traps to the monitor stops once the monitor has
//! handled it.

use sim::hv::{
    gdb::machine::{debug_control, kernel_translate, read_ram, watch_stop},
    gdb::target::{self, regnum},
    gdb::{Point, Resume, Stop, Target},
    Bus, Cpu, DebugControl, RunExit,
};

use crate::guest::GuestCtx;
use crate::mem::GuestPhys;
use crate::vcpu::VcpuState;
use crate::{Monitor, MonitorExit, VmEnd};

/// The debugger's requests for one VM: per VCPU, the debug control its
/// physical CPU runs with while it runs that VCPU.
#[derive(Clone, Debug, Default)]
pub struct VmDebug {
    pub vm: usize,
    pub vcpus: Vec<DebugControl>,
}

impl VmDebug {
    /// Runs VCPU `vcpu` on `cpu` with its debug control (the traced loop
    /// while the debugger has anything set, the fast loop otherwise).
    pub fn run(&mut self, cpu: &mut Cpu, bus: &mut Bus, vcpu: usize, end: u64) -> RunExit {
        let Some(ctl) = self.vcpus.get_mut(vcpu).filter(|c| c.active) else {
            return cpu.run::<false>(bus, end);
        };
        cpu.swap_debug(ctl);
        let exit = cpu.run::<true>(bus, end);
        // Nobody observes the machine's own events under the monitor.
        cpu.discard_events();
        cpu.swap_debug(ctl);
        exit
    }
}

impl VmDebug {
    /// The control of VCPU `vcpu` of VM `vm`, if the debugger is attached
    /// to that VM and has anything set for it.
    pub fn control(
        debug: Option<&mut VmDebug>,
        vm: usize,
        vcpu: usize,
    ) -> Option<&mut DebugControl> {
        debug
            .filter(|d| d.vm == vm)?
            .vcpus
            .get_mut(vcpu)
            .filter(|c| c.active)
    }
}

/// Whether the engine stops for the debugger before the guest instruction
/// at `pc`, as the traced loop would before executing it (`interpreted`:
/// the engine has already interpreted one of its own this time). A step
/// stops after one interpreted instruction, or once a step that trapped to
/// the monitor has been handled; breakpoints are checked where the engine
/// interprets, the traced loop checks them where code runs directly.
pub(crate) fn stops_engine(ctx: &mut GuestCtx<'_>, pc: u64, interpreted: bool) -> bool {
    let direct = crate::guest::directly_executable(pc, ctx.vcpu.mode());
    let Some(ctl) = ctx.debug.as_deref_mut() else {
        return false;
    };
    if std::mem::take(&mut ctl.stop_on_entry) || (ctl.stepping && interpreted) {
        ctl.stepping = false;
        return true;
    }
    if direct {
        return false;
    }
    if ctl.breakpoints.contains(&pc) && !ctl.resuming {
        return true;
    }
    ctl.resuming = false;
    false
}

/// Whether the debugger has a breakpoint in the `len` bytes at `addr`. The
/// monitor then interprets a vector trampoline there instead of following
/// it in one move, so that the breakpoint fires.
pub(crate) fn breaks_in(ctl: Option<&DebugControl>, addr: u64, len: u32) -> bool {
    ctl.is_some_and(|c| {
        // The low word: 32-bit addressing.
        c.breakpoints
            .iter()
            .any(|&b| (b as u32).wrapping_sub(addr as u32) < len)
    })
}

/// Called after every quantum the debugger runs (consoles, trace).
pub type QuantumHook<'a> = dyn FnMut(&mut Monitor) + 'a;

/// VM `vm` of a [`Monitor`] behind the [`Target`] trait.
pub struct MonitorTarget<'a> {
    pub monitor: &'a mut Monitor,
    pub vm: usize,
    hook: Option<&'a mut QuantumHook<'a>>,
    points: Vec<Point>,
    /// How the monitor's run ended while the debugger ran it.
    pub exit: Option<MonitorExit>,
}

impl<'a> MonitorTarget<'a> {
    /// Attaches to VM `vm` (by index; see [`Monitor::vm_named`]).
    pub fn new(monitor: &'a mut Monitor, vm: usize) -> MonitorTarget<'a> {
        let n = monitor.vms.get(vm).map_or(0, |v| v.vcpus.len());
        monitor.debug = Some(VmDebug {
            vm,
            vcpus: vec![DebugControl::default(); n],
        });
        MonitorTarget {
            monitor,
            vm,
            hook: None,
            points: Vec::new(),
            exit: None,
        }
    }

    pub fn with_hook(mut self, hook: &'a mut QuantumHook<'a>) -> MonitorTarget<'a> {
        self.hook = Some(hook);
        self
    }

    /// The VCPU's live registers: on its physical CPU if scheduled.
    fn regs(&self, thread: usize) -> Option<&sim::hv::Regs> {
        let vc = self.monitor.vms.get(self.vm)?.vcpus.get(thread)?;
        match vc.on_pcpu {
            Some(p) => self.monitor.machine.cpus.get(p).map(|c| &c.regs),
            None => Some(&vc.regs),
        }
    }

    /// Machine address of guest virtual `va` as VCPU `thread`'s kernel sees it.
    fn translate(&self, thread: usize, va: u64) -> Option<u64> {
        let vm = self.monitor.vms.get(self.vm)?;
        let vc = vm.vcpus.get(thread)?;
        let gpa = kernel_translate(&vc.cp0, &vc.tlb, va)?;
        vm.pmap.translate(GuestPhys(gpa)).map(|m| m.0)
    }
}

impl Monitor {
    /// The index of the VM called `name`.
    pub fn vm_named(&self, name: &str) -> Option<usize> {
        self.vms.iter().position(|v| v.name == name)
    }
}

impl Target for MonitorTarget<'_> {
    fn threads(&self) -> usize {
        self.monitor
            .vms
            .get(self.vm)
            .map_or(1, |v| v.vcpus.len().max(1))
    }

    fn thread_name(&self, thread: usize) -> String {
        let Some(vm) = self.monitor.vms.get(self.vm) else {
            return String::new();
        };
        let state = vm
            .vcpus
            .get(thread)
            .map_or("", |vc| match (vc.state, vc.on_pcpu) {
                (VcpuState::Parked, _) => " (parked)",
                (VcpuState::Waiting, _) => " (waiting)",
                (VcpuState::Stopped, _) => " (stopped)",
                (VcpuState::Runnable, Some(_)) => "",
                (VcpuState::Runnable, None) => " (descheduled)",
            });
        format!("{} VCPU {thread}{state}", vm.name)
    }

    fn read_register(&self, thread: usize, n: usize) -> Option<u64> {
        let vc = self.monitor.vms.get(self.vm)?.vcpus.get(thread)?;
        target::register(self.regs(thread)?, &vc.cp0, n)
    }

    fn write_register(&mut self, thread: usize, n: usize, value: u64) -> bool {
        let Some(vc) = self
            .monitor
            .vms
            .get_mut(self.vm)
            .and_then(|v| v.vcpus.get_mut(thread))
        else {
            return false;
        };
        let on = vc.on_pcpu;
        if n == regnum::PC {
            let pc = target::sign_extend(value);
            match on.and_then(|p| self.monitor.machine.cpus.get_mut(p)) {
                Some(cpu) => cpu.set_pc(pc),
                None => vc.regs.jump_to(pc),
            }
            return true;
        }
        match on.and_then(|p| self.monitor.machine.cpus.get_mut(p)) {
            Some(cpu) => target::write_gpr(&mut cpu.regs, n, value),
            None => target::write_gpr(&mut vc.regs, n, value),
        }
    }

    fn read_memory(&self, thread: usize, addr: u64, out: &mut [u8]) -> bool {
        read_ram(&self.monitor.machine.bus, addr, out, |va| {
            self.translate(thread, va)
        })
    }

    fn write_memory(&mut self, thread: usize, addr: u64, data: &[u8]) -> bool {
        let Some(parts) =
            sim::hv::gdb::machine::pieces(addr, data.len(), |va| self.translate(thread, va))
        else {
            return false;
        };
        // Already translated: write the machine addresses as they are.
        let bus = &mut self.monitor.machine.bus;
        if !parts.iter().all(|&(ma, _, n)| bus.in_ram(ma, n as u64)) {
            return false;
        }
        parts.into_iter().all(|(ma, off, n)| {
            data.get(off..off + n)
                .is_some_and(|b| bus.write_bytes(ma, b))
        })
    }

    fn insert_point(&mut self, p: Point) -> bool {
        if !self.points.contains(&p) {
            self.points.push(p);
        }
        true
    }

    fn remove_point(&mut self, p: Point) -> bool {
        self.points.retain(|q| *q != p);
        true
    }

    fn resume(&mut self, how: Resume) {
        let control = debug_control(&self.points);
        if let Some(d) = self.monitor.debug.as_mut() {
            for (i, ctl) in d.vcpus.iter_mut().enumerate() {
                *ctl = DebugControl {
                    stepping: how == Resume::Step(i),
                    ..control.clone()
                };
            }
        }
    }

    fn run(&mut self) -> Option<Stop> {
        if let Some(stop) = self.ended() {
            return Some(stop);
        }
        // Stepping a VCPU that cannot run would never stop: report at once.
        let stuck = self.monitor.debug.as_ref().and_then(|d| {
            d.vcpus.iter().position(|c| c.stepping).filter(|&i| {
                self.monitor
                    .vms
                    .get(self.vm)
                    .and_then(|v| v.vcpus.get(i))
                    .is_none_or(|vc| matches!(vc.state, VcpuState::Parked | VcpuState::Stopped))
            })
        });
        if let Some(i) = stuck {
            if let Some(c) = self.monitor.debug.as_mut().and_then(|d| d.vcpus.get_mut(i)) {
                c.stepping = false;
            }
            return Some(Stop::Trap { thread: i });
        }
        let e = self.monitor.run_quantum();
        if let Some(h) = self.hook.as_mut() {
            h(self.monitor);
        }
        match e {
            Some(MonitorExit::Debug { vcpu, .. }) => {
                let hit = self
                    .monitor
                    .debug
                    .as_mut()
                    .and_then(|d| d.vcpus.get_mut(vcpu))
                    .and_then(|c| c.watch_hit.take());
                Some(match hit {
                    Some((addr, store)) => watch_stop(&self.points, vcpu, addr, store),
                    None => Stop::Trap { thread: vcpu },
                })
            }
            Some(e) => {
                self.exit = Some(e);
                Some(self.ended().unwrap_or(Stop::Exited { status: 0 }))
            }
            None => self.ended(),
        }
    }

    fn detach(&mut self) {
        if let Some(d) = self.monitor.debug.as_mut() {
            for c in &mut d.vcpus {
                *c = DebugControl::default();
            }
        }
        self.monitor.debug = None;
        self.points.clear();
    }
}

impl MonitorTarget<'_> {
    /// The debugged VM's end, as GDB hears it.
    fn ended(&self) -> Option<Stop> {
        let status = match self.monitor.vms.get(self.vm)?.end.as_ref()? {
            VmEnd::Halted(s) => *s,
            VmEnd::Stopped(_) => 0xFF,
        };
        Some(Stop::Exited { status })
    }
}
