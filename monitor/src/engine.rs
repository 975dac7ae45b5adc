//! The emulation engine: the simulator's own interpreter (`sim::hv::execute`)
//! run against a virtual CPU. It executes what cannot run directly in
//! supervisor mode: single privileged instructions, the guest's KSEG0 code
//! (boot stub, vector trampolines) and KSEG0/KSEG1 data accesses.

use sim::hv::{
    cp0::sext32,
    isa::{Insn, Op, Reg},
    tlb::lo,
    Access, Cp0Write, ExcCode, Exception, ExecContext, Flow, Regs, Tlb,
};

use crate::guest::{directly_executable, GuestCtx, Shootdown, Wide};
use crate::mem::GuestPhys;
use crate::obs::{low32, GuestInsn, MonEvent};
use crate::tlbctl;
use crate::vcpu::VcpuState;

/// Why the engine stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineStop {
    /// The PC is somewhere direct execution can continue.
    Direct,
    /// The guest executed WAIT.
    Wait,
    /// The cycle budget ran out while still emulating.
    Budget,
    /// A device asked the monitor to act (halt, start a VCPU), or the VM
    /// must stop.
    Board,
    /// A debugger's breakpoint or step stopped it (`gdb`).
    Debug,
}

// The engine's own side of a guest context: the guest TLB writes it
// emulates (its data path is `access`).
impl GuestCtx<'_> {
    /// Drops `what` from this VCPU's L2TLB and this CPU's real TLB now (an
    /// entry composed next must survive it), and from the other physical
    /// CPUs' TLBs when the context ends.
    fn shoot_down(&mut self, what: Shootdown) {
        let (first, last) = what.pairs();
        self.vcpu.l2tlb.drop_range(first, last);
        tlbctl::shoot_down(self.core, self.wide.asids, self.vcpu.space, what);
        self.shootdowns
            .push((self.core.id(), self.vcpu.space, what));
        self.charge(self.cost.shootdown);
    }

    /// A guest TLBWI/TLBWR: replace virtual entry `index`, drop composed
    /// pairs the guest can no longer expect to be cached (see `l2tlb`), and
    /// compose the new one for the page the guest is refilling (BadVAddr) if
    /// it covers it.
    fn write_vtlb(&mut self, index: usize, random: bool) {
        let index = index % sim::hv::TLB_ENTRIES;
        let old = self.vcpu.tlb.read(index);
        let new = Tlb::entry_from(&self.vcpu.cp0);
        self.vcpu.tlb.write(index, new);
        self.vcpu.tlb_writes += 1;
        self.trace.emit(MonEvent::GuestTlbWrite {
            index,
            random,
            vpn2: new.vpn2,
            asid: new.asid,
            global: new.global,
            pfn: new.lo.map(|l| l >> lo::PFN_SHIFT),
        });
        let never_matches = new.lo[0] & lo::V == 0 && new.lo[1] & lo::V == 0
            || (0x8000_0000..0xC000_0000).contains(&new.vpn2);
        if !random && never_matches {
            // A flush: whatever the guest believes was evicted must go too.
            self.shoot_down(Shootdown::Space);
        } else {
            if !random {
                self.shoot_down(Shootdown::covering(&old));
            }
            // A TLBWR's victim stays cached (see `l2tlb`).
            self.shoot_down(Shootdown::covering(&new));
        }
        let bad = self.vcpu.cp0.bad_vaddr as u32;
        let asid = self.vcpu.cp0.asid();
        if new.matches(bad, asid) {
            tlbctl::compose_and_install(self, bad, index);
        }
    }
}

impl ExecContext for GuestCtx<'_> {
    fn allow64(&self) -> bool {
        self.vcpu.cp0.allow64()
    }

    fn cop_usable(&self, n: u8) -> bool {
        self.vcpu.cp0.cop_usable(n)
    }

    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        self.data_load(vaddr, width)
    }

    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        self.data_store(vaddr, width, value)
    }

    fn load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        self.data_load_linked(vaddr, width)
    }

    fn store_conditional(&mut self, vaddr: u64, width: u8, value: u64) -> Result<bool, Exception> {
        self.data_store_conditional(vaddr, width, value)
    }

    // lab emulate: begin mfc0
    fn read_cp0(&mut self, reg: u32) -> u64 {
        self.count_emulated("mfc0");
        if reg == sim::hv::cp0::reg::CAUSE {
            // Cause's IP2..IP6 follow the board's lines as they are now: a
            // device write this turn (an IPI to itself, an ipi_flush) must
            // show in the next read, as on the bare machine.
            let lines = self.wide.board.irq_lines(self.vcpu.index);
            self.vcpu.set_lines(lines);
        }
        let v = self.vcpu.read_cp0(reg, self.now);
        self.trace.emit(MonEvent::Cp0Read {
            reg,
            value: low32(v),
        });
        v
    }
    // lab emulate: end mfc0

    // lab emulate: begin mtc0
    fn write_cp0(&mut self, reg: u32, value: u64, _dword: bool) {
        self.count_emulated("mtc0");
        // Status's IE and IM, Cause's software interrupts.
        self.vcpu.may_interrupt = true;
        self.trace.emit(MonEvent::Cp0Write {
            reg,
            value: low32(value),
        });
        match self.vcpu.write_cp0(reg, value, self.now) {
            Cp0Write::Context | Cp0Write::Status => tlbctl::load_asid(self),
            _ => {}
        }
    }
    // lab emulate: end mtc0

    fn tlbr(&mut self) {
        self.count_emulated("tlbr");
        // A guest reading its TLB may be looking for entries to retire
        // without writing them; evicted pairs must not outlive that.
        self.shoot_down(Shootdown::Space);
        self.vcpu.tlb.read_into(&mut self.vcpu.cp0);
        tlbctl::load_asid(self);
    }

    // lab emulate: begin tlbwi
    fn tlbwi(&mut self) {
        self.count_emulated("tlbwi");
        let index = (self.vcpu.cp0.index & 0x3F) as usize;
        self.write_vtlb(index, false);
    }
    // lab emulate: end tlbwi

    // lab emulate: begin tlbwr
    fn tlbwr(&mut self) {
        self.count_emulated("tlbwr");
        let index = self.vcpu.random() as usize;
        self.write_vtlb(index, true);
    }
    // lab emulate: end tlbwr

    // lab emulate: begin tlbp
    fn tlbp(&mut self) {
        self.count_emulated("tlbp");
        // The search the hardware does, written out: the TLBP the emulate
        // lab's student writes (labs/emulate/README.md). VPN2 compared under
        // each entry's page mask; the ASID unless the entry is global.
        let hi = self.vcpu.cp0.entry_hi as u32;
        let (va, asid) = (hi & 0xFFFF_E000, hi as u8);
        let hit = self.vcpu.tlb.entries.iter().position(|t| {
            let mask = !(t.page_mask | 0x1FFF);
            (va & mask) == (t.vpn2 & mask) && (t.global || t.asid == asid)
        });
        match hit {
            Some(i) => self.vcpu.cp0.index = i as u32,
            // Index keeps its low bits on a miss; only P is set.
            None => self.vcpu.cp0.index |= 0x8000_0000,
        }
        if self.vcpu.cp0.index & 0x8000_0000 != 0 {
            // The guest now believes the pair is not cached anywhere.
            let first = (self.vcpu.cp0.entry_hi as u32) & !0x1FFF;
            self.shoot_down(Shootdown::Range {
                first,
                last: first | 0x1FFF,
            });
        }
    }
    // lab emulate: end tlbp

    // lab emulate: begin eret
    fn eret(&mut self) -> u64 {
        self.count_emulated("eret");
        self.vcpu.may_interrupt = true;
        let c = &mut self.vcpu.cp0;
        let to = if c.erl() {
            c.status &= !sim::hv::cp0::status::ERL;
            c.error_epc
        } else {
            c.status &= !sim::hv::cp0::status::EXL;
            c.epc
        };
        self.bus.unlink(self.core.id());
        self.trace.emit(MonEvent::GuestEret {
            to: low32(to),
            mode: self.vcpu.cp0.mode(),
        });
        to
    }
    // lab emulate: end eret

    fn cache(&mut self, _op: u32, _vaddr: u64) -> Result<(), Exception> {
        // No cache model: CACHE is a no-op for the guest too.
        self.count_emulated("cache");
        Ok(())
    }
}

/// Runs the engine from the VCPU's current PC. It executes at least
/// `at_least` instructions (the one that trapped, and its branch when it sat
/// in a delay slot), then stops as soon as the PC can run directly.
pub fn run<'a, W: Wide<'a>>(
    ctx: &mut GuestCtx<'a, W>,
    regs: &mut Regs,
    at_least: u32,
    budget_end: u64,
) -> EngineStop
where
    GuestCtx<'a, W>: ExecContext,
{
    let mut done = 0u32;
    // Left by emulation outside a run: the next step_vcpu looks anyway.
    ctx.vcpu.may_interrupt = false;
    loop {
        // A device request (a halt, a VCPU start) is served before the guest
        // runs on, as it would be on the real machine.
        if W::attention(ctx) || ctx.stop.is_some() {
            return EngineStop::Board;
        }
        if done >= at_least {
            // The engine runs guest code as the CPU would: a debugger stops it too.
            let (pc, interpreted) = (regs.pc, done > at_least);
            if ctx.debug.is_some()
                && W::locked(ctx, |ctx| crate::gdb::stops_engine(ctx, pc, interpreted))
            {
                return EngineStop::Debug;
            }
            if directly_executable(regs.pc, ctx.vcpu.mode()) {
                return EngineStop::Direct;
            }
        }
        if ctx.core.cycles() >= budget_end {
            return EngineStop::Budget;
        }
        // The instructions a trap asked for are emulated (one handler per
        // instruction); what follows is interpretation of guest code.
        let cost = if done < at_least {
            ctx.cost.emulate
        } else {
            ctx.cost.engine_insn
        };
        done += 1;
        if step(ctx, regs, cost) == Some(Flow::Wait) {
            return EngineStop::Wait;
        }
        if std::mem::take(&mut ctx.vcpu.remap_blocked) {
            W::locked(ctx, |ctx| crate::remap::wait_for_copy(ctx, budget_end));
            return EngineStop::Budget;
        }
        // Only after what may let an interrupt in: cheaper than looking at
        // the board's lines after every instruction.
        if std::mem::take(&mut ctx.vcpu.may_interrupt) {
            deliver_interrupts(ctx, regs);
        }
    }
}

/// Takes a pending, enabled virtual interrupt now, as the bare machine
/// would right after the instruction that allowed it (the VCPU's timer is
/// looked at when its turn starts, as before).
pub fn deliver_interrupts<'a, W: Wide<'a>>(ctx: &mut GuestCtx<'a, W>, regs: &mut Regs) {
    W::locked(ctx, |ctx| {
        let lines = ctx.wide.board.irq_lines(ctx.vcpu.index);
        ctx.vcpu.set_lines(lines);
        let pending = ctx.vcpu.cp0.pending_interrupts();
        if pending != 0 {
            ctx.trace.emit(MonEvent::Interrupt { pending });
            let (pc, bd) = (regs.pc, regs.delay_slot);
            reflect(ctx, regs, &Exception::new(ExcCode::Int), pc, bd);
        }
    });
}

/// Interprets the one guest instruction at the PC, charging `cost`: its
/// flow, or `None` if it raised an exception (delivered to the guest).
#[inline]
pub fn step<'a, W: Wide<'a>>(ctx: &mut GuestCtx<'a, W>, regs: &mut Regs, cost: u64) -> Option<Flow>
where
    GuestCtx<'a, W>: ExecContext,
{
    ctx.charge(cost);
    ctx.vcpu.stats.engine_insns += 1;
    let pc = regs.pc;
    let (insn, ma) = match fetch(ctx, pc) {
        Ok(fetched) => fetched,
        Err(e) => {
            deliver(ctx, regs, &e);
            return None;
        }
    };
    if ctx.trace.enabled {
        ctx.trace.emit(MonEvent::Engine {
            pc: low32(pc),
            insn: GuestInsn::Word {
                pc: low32(pc),
                // The decoded form does not keep the word; the decoded
                // copy follows RAM, so RAM has it.
                word: ctx.bus.read_ram(ma, 4).map_or(0, |w| w as u32),
            },
        });
    }
    match sim::hv::execute(regs, ctx, insn, pc) {
        Ok(flow) => {
            ctx.vcpu.stats.guest_insns += 1;
            regs.advance(flow);
            if flow == Flow::Wait {
                ctx.count_emulated("wait");
                ctx.vcpu.state = VcpuState::Waiting;
            }
            Some(flow)
        }
        // A store to a page being copied is no exception: it runs again
        // once the copy is done (`remap::wait_for_copy`).
        Err(_) if ctx.vcpu.remap_blocked => None,
        Err(e) => {
            deliver(ctx, regs, &e);
            None
        }
    }
}

/// The instruction at `pc` and the machine address it was fetched from.
#[inline]
fn fetch<W>(ctx: &mut GuestCtx<'_, W>, pc: u64) -> Result<(Insn, u64), Exception> {
    if pc & 3 != 0 {
        return Err(Exception::address(ExcCode::AdEL, sext32(pc)));
    }
    let gpa = match kseg_phys(ctx, pc) {
        Some(gpa) => gpa,
        None => ctx.translate(pc, Access::Fetch)?,
    };
    // The bus's decoded copy of the page: no decode per fetch (stores keep
    // it current). Nothing outside the VM's RAM answers a fetch.
    let bus_error = GuestCtx::<'_, W>::bus_error(Access::Fetch);
    if gpa.0 >= ctx.pmap.size() {
        return Err(bus_error);
    }
    let ma = ctx.pmap.translate(gpa).ok_or(bus_error)?;
    let insn = ctx.fetch.decoded(ctx.bus, ma.0).ok_or(bus_error)?;
    Ok((insn, ma.0))
}

/// The guest-physical address of KSEG0/KSEG1 address `vaddr` when the
/// guest is in kernel mode: what `GuestCtx::translate` gives there (the
/// segments are unmapped), without its general search. `None` elsewhere.
#[inline]
pub fn kseg_phys<W>(ctx: &GuestCtx<'_, W>, vaddr: u64) -> Option<GuestPhys> {
    // The low word: 32-bit addressing, as `translate`.
    let va = vaddr as u32;
    ((0x8000_0000..0xC000_0000).contains(&va) && ctx.vcpu.mode() == sim::hv::Mode::Kernel)
        .then_some(GuestPhys(u64::from(va & 0x1FFF_FFFF)))
}

/// The guest kits' vector trampoline, `lui k0,HI; ori|addiu k0,k0,LO;
/// jr k0; nop`: its target, if the words at `vector` are exactly that.
pub(crate) fn trampoline_target(ctx: &GuestCtx<'_>, vector: u64) -> Option<u64> {
    let word = |i: u64| peek_word(ctx, vector.wrapping_add(4 * i));
    let (lui, low, jr, slot) = (word(0)?, word(1)?, word(2)?, word(3)?);
    const K0: u32 = 26;
    if lui >> 16 != (0x0F << 10) | K0 || jr != 0x0340_0008 || slot != 0 {
        return None;
    }
    let hi = u64::from(lui & 0xFFFF) << 16;
    let target = match low >> 16 {
        // ori k0,k0,LO
        x if x == (0x0D << 10) | (K0 << 5) | K0 => hi | u64::from(low & 0xFFFF),
        // addiu k0,k0,LO
        x if x == (0x09 << 10) | (K0 << 5) | K0 => {
            hi.wrapping_add(i64::from(low as u16 as i16) as u64)
        }
        _ => return None,
    };
    Some(sext32(target))
}

/// Reflects an exception raised inside the engine to the guest.
fn deliver<'a, W: Wide<'a>>(ctx: &mut GuestCtx<'a, W>, regs: &mut Regs, e: &Exception) {
    let (pc, bd) = (regs.pc, regs.delay_slot);
    W::locked(ctx, |ctx| reflect(ctx, regs, e, pc, bd));
}

/// Delivers `e`, raised by the instruction at `pc` (`bd`: in a delay slot),
/// to the guest's vector. A guest whose vector itself faults would loop
/// forever, as the real machine would; the monitor stops such a VM instead.
// lab reflect: begin deliver
pub fn reflect(ctx: &mut GuestCtx<'_>, regs: &mut Regs, e: &Exception, pc: u64, bd: bool) {
    ctx.charge(ctx.cost.reflect);
    let vector = ctx.vcpu.reflect(regs, e, pc, bd);
    ctx.trace.emit(MonEvent::Reflect {
        code: e.code,
        epc: low32(ctx.vcpu.cp0.epc),
        vector: low32(vector),
        badvaddr: e.badvaddr.map(low32),
    });
    // A trampoline into the window is followed at once, with its one
    // architectural effect (k0 = the target): the guest sees exactly what
    // interpreting its four instructions would give.
    let debugged = crate::gdb::breaks_in(ctx.debug.as_deref(), vector, 16);
    if let Some(target) = trampoline_target(ctx, vector).filter(|_| !debugged) {
        ctx.charge(ctx.cost.trampoline);
        // The guest executed its four instructions, logically.
        ctx.vcpu.stats.guest_insns += 4;
        regs.set(Reg::K0, target);
        regs.jump_to(target);
        ctx.trace.emit(MonEvent::Trampoline {
            vector: low32(vector),
            target: low32(target),
        });
    }
    if pc == vector && ctx.stop.is_none() {
        *ctx.stop = Some(format!(
            "{} at the exception vector {:#010x} itself: the guest can never handle it",
            e.code, vector as u32
        ));
    }
}
// lab reflect: end deliver

/// Reads the instruction word at guest virtual `pc` without side effects
/// (for traces); `None` if it is not mapped or not RAM.
pub fn peek_word(ctx: &GuestCtx<'_>, pc: u64) -> Option<u32> {
    ctx.code_word(pc).map(|(_, w)| w)
}

/// Whether `op` is one the monitor emulates when the guest kernel executes it.
pub fn is_privileged(op: Op) -> bool {
    matches!(
        op,
        Op::Mfc0
            | Op::Mtc0
            | Op::Dmfc0
            | Op::Dmtc0
            | Op::Tlbr
            | Op::Tlbwi
            | Op::Tlbwr
            | Op::Tlbp
            | Op::Eret
            | Op::Wait
            | Op::Cache
            | Op::Cop0Nop
    )
}
