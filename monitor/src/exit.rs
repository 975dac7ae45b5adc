//! The one `match` over monitor exits: what the real CPU's exception means
//! for the guest, and what the monitor does about it.

use sim::hv::{
    cp0::{cause, sext32, status},
    Access, ExcCode, Exception, Lookup, Mode, Regs,
};

use crate::coalesce::{self, DeviceTrap};
use crate::commpage;
use crate::engine::{self, EngineStop};
use crate::guest::GuestCtx;
use crate::mem::GuestPhys;
use crate::obs::MonEvent;
use crate::tlbctl;

/// What the physical CPU does next with this VCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep running it.
    Resume,
    /// It waits for an interrupt: give the CPU to another VCPU.
    Wait,
    /// The budget ran out inside the engine.
    Budget,
    /// Its board has actions (or the VM must stop).
    Board,
    /// A debugger stopped it between two instructions.
    Debug,
}

impl From<EngineStop> for Outcome {
    fn from(s: EngineStop) -> Outcome {
        match s {
            EngineStop::Direct => Outcome::Resume,
            EngineStop::Wait => Outcome::Wait,
            EngineStop::Budget => Outcome::Budget,
            EngineStop::Board => Outcome::Board,
            EngineStop::Debug => Outcome::Debug,
        }
    }
}

/// Handles one exit: the real CPU took exception `code` while running the
/// guest; its CP0 holds EPC, Cause and BadVAddr as hardware left them.
pub fn handle(ctx: &mut GuestCtx<'_>, regs: &mut Regs, code: ExcCode, budget_end: u64) -> Outcome {
    let real = ctx.core.cp0();
    let epc = real.epc;
    let bd = real.cause & cause::BD != 0;
    let ce = ((real.cause & cause::CE_MASK) >> cause::CE_SHIFT) as u8;
    let badvaddr = real.bad_vaddr;
    // The mode the guest ran in: EXL is now set, KSU still tells.
    let from = if (real.status & status::KSU_MASK) >> status::KSU_SHIFT == 2 {
        Mode::User
    } else {
        Mode::Supervisor
    };
    let fault_pc = if bd { epc.wrapping_add(4) } else { epc };
    let trap = Trap {
        code,
        epc,
        fault_pc,
        bd,
        badvaddr,
    };
    if let Some(n) = ctx.vcpu.stats.exits.get_mut(code as usize) {
        *n += 1;
    }
    // A user's system call into a translated handler takes no exit.
    let inline = crate::bt::reflects_inline(ctx, code, from, bd);
    let exit_cost = if inline { 0 } else { ctx.cost.exit };
    ctx.core.charge(exit_cost);
    ctx.vcpu.stats.monitor_cycles += exit_cost;
    if ctx.trace.enabled {
        let word = engine::peek_word(ctx, fault_pc);
        ctx.trace
            .emit(MonEvent::exit(code, fault_pc, bd, badvaddr, from, word));
    }
    if !matches!(
        code,
        ExcCode::AdEL | ExcCode::AdES | ExcCode::TlbL | ExcCode::TlbS | ExcCode::Mod
    ) {
        // Any other exit delivers a `coalesce=ring` ring.
        coalesce::ring::flush(ctx);
    }
    match code {
        // The guest kernel's own page beside the commpage (which shares its
        // real TLB pair): interpret, never compose over the commpage entry.
        ExcCode::TlbL | ExcCode::TlbS | ExcCode::Mod
            if from == Mode::Supervisor && (badvaddr as u32) >> 13 == commpage::BASE >> 13 =>
        {
            regs.jump_to(epc);
            engine::run(ctx, regs, 1 + u32::from(bd), budget_end).into()
        }
        ExcCode::TlbL | ExcCode::TlbS | ExcCode::Mod => tlb_fault(ctx, regs, &trap, budget_end),
        // A privileged instruction of the guest kernel: emulate it (and the
        // branch before it when it sat in a delay slot).
        ExcCode::CpU if ce == 0 && from == Mode::Supervisor => {
            // Patched even where it will run translated: the page may run
            // directly again (docs/translation.md, the commpage).
            commpage::patch(ctx, fault_pc);
            if let Some(stop) = crate::bt::after_exit(ctx, regs, fault_pc, epc, budget_end) {
                return stop.into();
            }
            regs.jump_to(epc);
            engine::run(ctx, regs, 1 + u32::from(bd), budget_end).into()
        }
        // The guest kernel touched KSEG0/KSEG1/kseg3, or jumped there:
        // interpret from the faulting instruction on.
        ExcCode::AdEL | ExcCode::AdES if from == Mode::Supervisor => {
            kseg_access(ctx, regs, &trap, budget_end)
        }
        // Real interrupts are off while guests run; nothing to do.
        ExcCode::Int => {
            regs.jump_to(epc);
            Outcome::Resume
        }
        // No FPU: a guest that claimed CP1 gets RI, one that did not gets CpU.
        ExcCode::CpU if ctx.vcpu.cp0.cop_usable(ce) => {
            let e = Exception::new(ExcCode::Ri);
            engine::reflect(ctx, regs, &e, fault_pc, bd);
            Outcome::Resume
        }
        _ => {
            let mut e = Exception::new(code);
            e.ce = ce;
            if matches!(code, ExcCode::AdEL | ExcCode::AdES) {
                e.badvaddr = Some(badvaddr);
            }
            if inline {
                crate::bt::reflect_inline(ctx, regs, &e, fault_pc, bd);
            } else {
                engine::reflect(ctx, regs, &e, fault_pc, bd);
            }
            Outcome::Resume
        }
    }
}

/// A real exception as the exit found it.
#[derive(Clone, Copy, Debug)]
struct Trap {
    code: ExcCode,
    /// The real EPC: the branch when the instruction sat in a delay slot.
    epc: u64,
    /// The instruction that trapped.
    fault_pc: u64,
    bd: bool,
    badvaddr: u64,
}

/// The guest kernel touched KSEG0/KSEG1/kseg3 (a device's registers are
/// emulated, coalesced where they can be) or jumped there.
fn kseg_access(ctx: &mut GuestCtx<'_>, regs: &mut Regs, t: &Trap, budget_end: u64) -> Outcome {
    let &Trap { code, epc, bd, .. } = t;
    let fault_pc = t.fault_pc;
    let fetch = code == ExcCode::AdEL && t.badvaddr == sext32(fault_pc);
    if !fetch {
        let access = if code == ExcCode::AdEL {
            Access::Load
        } else {
            Access::Store
        };
        match ctx.translate(t.badvaddr, access) {
            Ok(gpa) if is_device(ctx, gpa) => {
                ctx.vcpu.stats.device_exits += 1;
                let t = DeviceTrap {
                    epc,
                    fault_pc,
                    bd,
                    gpa,
                };
                return coalesce::device_trap(ctx, regs, &t, budget_end).into();
            }
            _ => ctx.vcpu.stats.kseg_exits += 1,
        }
    }
    let from_pc = if fetch { fault_pc } else { epc };
    if let Some(stop) = crate::bt::after_exit(ctx, regs, fault_pc, from_pc, budget_end) {
        return stop.into();
    }
    regs.jump_to(if fetch { fault_pc } else { epc });
    let at_least = if fetch { 0 } else { 1 + u32::from(bd) };
    engine::run(ctx, regs, at_least, budget_end).into()
}

fn tlb_fault(ctx: &mut GuestCtx<'_>, regs: &mut Regs, t: &Trap, budget_end: u64) -> Outcome {
    let Trap {
        code,
        epc,
        fault_pc,
        bd,
        badvaddr,
    } = *t;
    // The VA's low word: 32-bit addressing.
    let va = badvaddr as u32;
    let sva = sext32(u64::from(va));
    let masid = ctx.core.cp0().asid();
    let guest_asid = ctx.vcpu.cp0.asid();
    let store = code != ExcCode::TlbL;
    let miss_code = if store { ExcCode::TlbS } else { ExcCode::TlbL };
    if matches!(ctx.core.tlb().lookup(va, masid), Lookup::Miss) {
        // A real refill: L2TLB, then the virtual TLB, then the guest.
        if tlbctl::refill(ctx, va) {
            regs.jump_to(epc);
            return Outcome::Resume;
        }
        let e = Exception::tlb(miss_code, sva, true);
        engine::reflect(ctx, regs, &e, fault_pc, bd);
        return Outcome::Resume;
    }
    // A real entry exists but is invalid or write-protected: ask the guest's TLB.
    match ctx.vcpu.tlb.lookup(va, guest_asid) {
        Lookup::Miss => {
            let e = Exception::tlb(miss_code, sva, true);
            engine::reflect(ctx, regs, &e, fault_pc, bd);
        }
        Lookup::Hit(g) | Lookup::Multiple(g) => {
            if !g.valid() {
                let e = Exception::tlb(miss_code, sva, false);
                engine::reflect(ctx, regs, &e, fault_pc, bd);
            } else if store && !g.dirty() {
                let e = Exception::tlb(ExcCode::Mod, sva, false);
                engine::reflect(ctx, regs, &e, fault_pc, bd);
            } else if store && ctx.pmap.write_protected(GuestPhys(g.paddr(va))) {
                // Concurrent remapping is copying the page: the store runs
                // again once the copy is done.
                crate::remap::wait_for_copy(ctx, budget_end);
                regs.jump_to(epc);
                return Outcome::Budget;
            } else if ctx.pmap.translate(GuestPhys(g.paddr(va))).is_some() {
                // The real entry is older than the guest's: compose afresh.
                tlbctl::compose_and_install(ctx, va, g.index);
                regs.jump_to(epc);
            } else if sva != sext32(fault_pc) && is_device(ctx, GuestPhys(g.paddr(va))) {
                // The guest mapped a page of its board: every VM sees the
                // same board, so the access reaches the VM's device (the
                // real entry stays invalid, so each access traps here).
                ctx.vcpu.stats.device_exits += 1;
                ctx.vcpu.stats.device_exits_tlb += 1;
                let t = DeviceTrap {
                    epc,
                    fault_pc,
                    bd,
                    gpa: GuestPhys(g.paddr(va)),
                };
                return coalesce::device_trap(ctx, regs, &t, budget_end).into();
            } else {
                // The guest mapped a physical page it does not have.
                let fetch = !store && sva == sext32(fault_pc);
                let e = Exception::new(if fetch { ExcCode::Ibe } else { ExcCode::Dbe });
                engine::reflect(ctx, regs, &e, fault_pc, bd);
            }
        }
    }
    Outcome::Resume
}

/// Whether guest-physical `gpa` is a register of the VM's board (outside
/// its RAM, inside a device window of `../shared/docs/board-testmips.md`).
pub fn is_device(ctx: &GuestCtx<'_>, gpa: GuestPhys) -> bool {
    gpa.0 >= ctx.pmap.size()
        && sim::hv::REGISTRY
            .iter()
            .any(|&(_, base, size)| gpa.0.checked_sub(base).is_some_and(|off| off < size))
}
