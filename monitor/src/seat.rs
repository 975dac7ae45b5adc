//! One VCPU seated on one physical CPU: everything a step of it borrows
//! (the physical CPU, a bus, its VM, the ASIDs, a trace, the shootdown
//! list). The deterministic scheduler seats a VCPU from the monitor's own
//! fields (`Monitor::seat`); the parallel mode (`parallel`) from what a
//! host thread was handed for the quantum. Both step it with the same code.

use sim::hv::{
    cp0::{reg, status},
    Bus, Cpu, ExcCode, Exception, Mode, RunExit,
};

use crate::engine::{self, EngineStop};
use crate::exit::{self, Outcome};
use crate::guest::{self, FetchPage, GuestCtx, Shootdown, VmParts};
use crate::mem::{Asids, Pmap};
use crate::obs::{MonEvent, Place, Trace};
use crate::vm::{Vm, VmEnd};
use crate::{bt, commpage, cost, gdb, tlbctl};

/// A VCPU and the physical CPU it runs on, with what a step may touch.
pub(crate) struct Seat<'a> {
    /// Physical CPU, VM, VCPU.
    pub(crate) p: usize,
    pub(crate) v: usize,
    pub(crate) c: usize,
    pub(crate) cpu: &'a mut Cpu,
    pub(crate) bus: &'a mut Bus,
    pub(crate) vm: &'a mut Vm,
    /// The VM's pmap when it is not in `vm`: a VM split over threads keeps
    /// it outside its lock, read-only, for the engines running outside it.
    pub(crate) pmap: Option<&'a Pmap>,
    pub(crate) asids: &'a mut Asids,
    pub(crate) trace: &'a mut Trace,
    pub(crate) shootdowns: &'a mut Vec<(usize, usize, Shootdown)>,
    pub(crate) tlb_cursor: &'a mut usize,
    pub(crate) debug: Option<&'a mut gdb::VmDebug>,
    pub(crate) cost: cost::Cost,
}

impl Seat<'_> {
    /// Delivers pending virtual interrupts, then runs the VCPU until an
    /// exit has been handled, the engine stops, or the budget is used.
    pub(crate) fn step(&mut self, end: u64) -> Outcome {
        if let Some(outcome) = self.enter(end) {
            return outcome;
        }
        let ran = run_direct(
            self.cpu,
            self.bus,
            self.debug.as_deref_mut(),
            self.v,
            self.c,
            end,
        );
        self.leave(ran, end)
    }

    /// The part of a step before the guest runs directly: pending virtual
    /// interrupts, then the engine or the translator for code that cannot
    /// run directly. `None`: the real CPU is ready to run the guest.
    pub(crate) fn enter(&mut self, end: u64) -> Option<Outcome> {
        match self.enter_part(end, true) {
            Enter::Direct => None,
            Enter::Done(outcome) => Some(outcome),
            // Not asked for.
            Enter::Engine => Some(Outcome::Resume),
        }
    }

    /// [`Seat::enter`], except that with `engine` false it stops where the
    /// engine would start (`Enter::Engine`), for the caller to run it
    /// elsewhere (outside a split VM's lock: `parallel::run`).
    pub(crate) fn enter_part(&mut self, end: u64, engine: bool) -> Enter {
        let (v, c) = (self.v, self.c);
        self.trace.place = Place {
            pcpu: self.p,
            vm: v,
            vcpu: c,
        };
        let stepped = self.with_ctx(|ctx, regs| {
            let lines = ctx.wide.board.irq_lines(ctx.vcpu.index);
            let pending = ctx.vcpu.update_interrupts(ctx.now, lines);
            if pending != 0 {
                ctx.trace.emit(MonEvent::Interrupt { pending });
                let (pc, bd) = (regs.pc, regs.delay_slot);
                engine::reflect(ctx, regs, &Exception::new(ExcCode::Int), pc, bd);
            }
            if bt::chooses(ctx, regs.pc) {
                return Some(Some(bt::run(ctx, regs, end)));
            }
            if !guest::directly_executable(regs.pc, ctx.vcpu.mode()) {
                if !engine {
                    return None;
                }
                return Some(Some(engine::run(ctx, regs, 0, end)));
            }
            enter_guest(ctx);
            Some(None)
        });
        match stepped {
            None => Enter::Done(Outcome::Budget),
            Some(None) => Enter::Engine,
            Some(Some(Some(stop))) => Enter::Done(engine_outcome(stop)),
            Some(Some(None)) => Enter::Direct,
        }
    }

    /// The part of a step after the guest ran directly (`ran`): its
    /// statistics, then the exit's handling.
    pub(crate) fn leave(&mut self, ran: Ran, end: u64) -> Outcome {
        if let Some(vc) = self.vm.vcpus.get_mut(self.c) {
            vc.stats.guest_cycles += ran.cycles;
            vc.stats.guest_insns += ran.insns;
        }
        match ran.exit {
            RunExit::Exception(code) => self
                .with_ctx(|ctx, regs| exit::handle(ctx, regs, code, end))
                .unwrap_or(Outcome::Budget),
            RunExit::Debug => Outcome::Debug,
            RunExit::Budget | RunExit::Board | RunExit::NotRunning => Outcome::Budget,
        }
    }

    /// Builds the guest context of the seated VCPU and runs `f` in it.
    pub(crate) fn with_ctx<R>(
        &mut self,
        f: impl FnOnce(&mut GuestCtx<'_>, &mut sim::hv::Regs) -> R,
    ) -> Option<R> {
        let (v, c) = (self.v, self.c);
        let Cpu { regs, core } = &mut *self.cpu;
        let Vm {
            pmap,
            board,
            vcpus,
            end,
            io,
            bt,
            ..
        } = &mut *self.vm;
        let pmap: &Pmap = self.pmap.unwrap_or(pmap);
        let vcpu = vcpus.get_mut(c)?;
        let now = core.cycles();
        self.trace.now = now;
        let mut stop = None;
        let r = {
            let mut ctx = GuestCtx {
                vm: v,
                vcpu,
                pmap,
                wide: VmParts {
                    board,
                    asids: self.asids,
                    io,
                    bt,
                },
                bus: self.bus,
                core,
                trace: self.trace,
                shootdowns: self.shootdowns,
                now,
                stop: &mut stop,
                tlb_cursor: self.tlb_cursor,
                debug: gdb::VmDebug::control(self.debug.as_deref_mut(), v, c),
                cost: self.cost,
                fetch: FetchPage::default(),
            };
            commpage::load(&mut ctx);
            f(&mut ctx, regs)
        };
        stop_vm(stop, end, self.trace);
        Some(r)
    }
}

/// What [`Seat::enter_part`] decided.
pub(crate) enum Enter {
    /// The real CPU is ready to run the guest directly.
    Direct,
    /// The engine must run the VCPU from here (not run, as asked).
    Engine,
    Done(Outcome),
}

/// What the step does after the engine stopped so.
pub(crate) fn engine_outcome(stop: EngineStop) -> Outcome {
    match stop {
        EngineStop::Direct => Outcome::Resume,
        stop => stop.into(),
    }
}

/// Ends the VM (`end`) for the reason a guest context left in `stop`, if
/// any and if it has not ended already.
pub(crate) fn stop_vm(stop: Option<String>, end: &mut Option<VmEnd>, trace: &mut Trace) {
    if let Some(reason) = stop {
        if end.is_none() {
            trace.emit(MonEvent::Stop);
            trace.emit(MonEvent::StopReason {
                reason: reason.clone(),
            });
            *end = Some(VmEnd::Stopped(reason));
        }
    }
}

/// What a direct run of the guest did: how it ended, and the cycles and
/// instructions it took.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ran {
    pub(crate) exit: RunExit,
    pub(crate) cycles: u64,
    pub(crate) insns: u64,
}

/// Runs the guest directly on `cpu` until an exception or `end`: the one
/// part of a step that needs neither the VM nor the monitor (the parallel
/// mode runs it without the VM's lock).
pub(crate) fn run_direct(
    cpu: &mut Cpu,
    bus: &mut Bus,
    debug: Option<&mut gdb::VmDebug>,
    v: usize,
    c: usize,
    end: u64,
) -> Ran {
    let (c0, i0) = (cpu.cycles(), cpu.instret());
    let exit = match debug {
        Some(d) if d.vm == v => d.run(cpu, bus, c, end),
        _ => cpu.run::<false>(bus, end),
    };
    Ran {
        exit,
        cycles: cpu.cycles() - c0,
        insns: cpu.instret() - i0,
    }
}

/// Puts the real CPU in the state that runs the guest directly: supervisor
/// mode for the guest kernel, user mode for its processes, no coprocessors,
/// real interrupts off (the monitor delivers virtual ones), EXL clear, the
/// machine ASID of the guest's current ASID.
fn enter_guest(ctx: &mut GuestCtx<'_>) {
    let ksu: u32 = if ctx.vcpu.mode() == Mode::User { 2 } else { 1 };
    let status_value = ksu << status::KSU_SHIFT;
    if ctx.core.cp0().status != status_value {
        ctx.core.write_cp0(reg::STATUS, u64::from(status_value));
    }
    tlbctl::load_asid(ctx);
    if ctx.vcpu.mode() != Mode::User {
        commpage::store(ctx);
    }
    commpage::map(ctx);
}
