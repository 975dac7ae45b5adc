//! The CPU on real hardware: translation through the TLB and the software
//! translation cache, the bus, exception entry, and the stepping loop.

use super::cp0::{self, sext32};
use super::exec::{execute, ExecContext, Flow, MulDiv, Regs};
use super::tlb::Tlb;
use super::XLATE_SIZE;
use super::{Access, Core, Cpu, ExcCode, Exception, RunState, XlateEntry};
use crate::isa::{Insn, Reg};
use crate::machine::Tier;
use crate::mem::{Bus, PAGE_SHIFT};
use crate::obs::Event;
use crate::timing::TIMING;

/// Why [`Cpu::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// The cycle budget is used up.
    Budget,
    /// A device queued an action for the machine (halt, start a CPU).
    Board,
    /// The CPU is parked or stopped.
    NotRunning,
    /// The CPU took an exception and hypervisor exits are on: the hardware
    /// part of exception entry is done (EPC, Cause, BadVAddr, EXL, …) and the
    /// handler is the caller's to run.
    Exception(ExcCode),
    /// A debugger breakpoint or single step stopped the CPU between two
    /// instructions (traced loop only).
    Debug,
}

impl Cpu {
    /// Runs until `budget_end` cycles or until the machine must act.
    /// `TRACE` selects the traced loop, which records [`Event`]s in
    /// `self.events`; the untraced loop never touches them.
    pub fn run<const TRACE: bool>(&mut self, bus: &mut Bus, budget_end: u64) -> RunExit {
        let Cpu { regs, core } = self;
        if matches!(core.state, RunState::Parked | RunState::Stopped) {
            return RunExit::NotRunning;
        }
        core.budget_end = budget_end;
        core.next_event = 0;
        loop {
            if core.cycles >= core.next_event {
                if let Some(exit) = core.handle_event::<TRACE>(regs, bus) {
                    return exit;
                }
                continue;
            }
            if TRACE && core.debug.active {
                if core.debug.stop_on_entry {
                    core.debug.stop_on_entry = false;
                    return RunExit::Debug;
                }
                // The debugger's loop: one instruction at a time, so it can
                // stop between any two without changing what they do.
                if core.debug.breakpoints.contains(&regs.pc) && !core.debug.resuming {
                    return RunExit::Debug;
                }
                core.debug.resuming = false;
                core.step::<TRACE>(regs, bus);
                if core.debug.stepping && core.hv_exit.is_some() {
                    // The step trapped to the hypervisor: stop once its
                    // handler has run (the next call to `run`).
                    core.debug.stepping = false;
                    core.debug.stop_on_entry = true;
                    continue;
                }
                if core.debug.watch_hit.is_some() {
                    return RunExit::Debug;
                }
                if core.debug.stepping {
                    core.debug.stepping = false;
                    return RunExit::Debug;
                }
                continue;
            }
            match core.tier {
                Tier::Interp => core.run_fast::<TRACE>(regs, bus),
                Tier::Blocks => core.run_blocks::<TRACE, false>(regs, bus),
                Tier::Compiled => core.run_blocks::<TRACE, true>(regs, bus),
            }
        }
    }

    /// Executes exactly one instruction (or takes one pending interrupt).
    pub fn step_one<const TRACE: bool>(&mut self, bus: &mut Bus) {
        let Cpu { regs, core } = self;
        if core.state != RunState::Running {
            return;
        }
        core.poll_interrupts::<TRACE>(regs, bus);
        core.step::<TRACE>(regs, bus);
    }
}

impl Core {
    /// Timer, interrupts, budget and board requests: the rare work the hot
    /// loop leaves to one compare of `cycles` against `next_event`.
    #[cold]
    fn handle_event<const TRACE: bool>(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
    ) -> Option<RunExit> {
        if let Some(code) = self.hv_exit.take() {
            return Some(RunExit::Exception(code));
        }
        if bus.code_stale((self.fetch_ppage >> PAGE_SHIFT) as usize) {
            // Another thread wrote the code this CPU runs (parallel mode).
            self.fetch_page = super::FETCH_INVALID;
        }
        if self.board_pending {
            self.board_pending = false;
            return Some(RunExit::Board);
        }
        if self.poll_interrupts::<TRACE>(regs, bus) {
            return None;
        }
        if self.cycles >= self.budget_end {
            return Some(RunExit::Budget);
        }
        let until = self.timer_due.min(self.budget_end);
        if self.state == RunState::Waiting {
            // Idle: skip to the next event instead of spinning.
            self.stats.wait_cycles += until - self.cycles;
            self.cycles = until;
        }
        self.next_event = until;
        None
    }

    /// Raises IP7 when Count has reached Compare, samples the board's lines
    /// and takes an interrupt if one is pending and enabled. Returns whether
    /// one was taken.
    fn poll_interrupts<const TRACE: bool>(&mut self, regs: &mut Regs, bus: &mut Bus) -> bool {
        if self.cycles >= self.timer_due {
            self.cp0.cause |= cp0::cause::IP7;
            self.timer_due += 2u64 << 32;
        }
        let lines = bus.irq_lines(self.id);
        if lines & 0x7C00 != self.irq_lines {
            self.irq_lines = lines & 0x7C00;
            self.cp0.cause = (self.cp0.cause & !0x7C00) | self.irq_lines;
        }
        let pending = self.cp0.pending_interrupts();
        if pending == 0 {
            return false;
        }
        if self.state == RunState::Waiting {
            self.state = RunState::Running;
        }
        self.stats.interrupts += 1;
        if TRACE {
            self.emit(Event::Interrupt { pending });
        }
        self.take_exception::<TRACE>(regs, Exception::new(ExcCode::Int));
        true
    }

    /// Runs instructions until the next event is due, with the PC, the
    /// next PC and the delay-slot flag in locals: they carry the loop from
    /// one instruction to the next, and keeping them out of memory shortens
    /// that chain. Anything unusual (a new page, an exception, ERET, WAIT)
    /// writes them back and goes through [`Core::step`].
    #[inline(always)]
    pub(super) fn run_fast<const TRACE: bool>(&mut self, regs: &mut Regs, bus: &mut Bus) {
        let (mut pc, mut npc, mut delay_slot) = (regs.pc, regs.npc, regs.delay_slot);
        loop {
            let va = pc as u32;
            let insn = if va & 0xFFFF_F003 == self.fetch_page {
                bus.code(self.fetch_base + ((va & 0xFFF) >> 2) as usize)
            } else {
                None
            };
            let Some(insn) = insn else { break };
            if TRACE {
                self.emit(Event::Insn {
                    pc,
                    word: self.fetched_word(bus, pc),
                    mode: self.cp0.mode(),
                });
            }
            self.interlock(&insn);
            let result = execute(regs, &mut Native::<TRACE> { core: self, bus }, insn, pc);
            match result {
                Ok(Flow::Next) => {
                    pc = npc;
                    npc = npc.wrapping_add(4);
                    delay_slot = false;
                }
                Ok(Flow::Taken(target)) => {
                    pc = npc;
                    npc = target;
                    delay_slot = true;
                    self.cycles += TIMING.taken_branch;
                }
                Ok(Flow::NotTaken) => {
                    pc = npc;
                    npc = npc.wrapping_add(4);
                    delay_slot = true;
                }
                Ok(Flow::Annul) => {
                    pc = npc.wrapping_add(4);
                    npc = pc.wrapping_add(4);
                    delay_slot = false;
                    self.cycles += TIMING.annulled_slot;
                }
                Ok(flow @ (Flow::Jump(_) | Flow::Wait)) => {
                    (regs.pc, regs.npc, regs.delay_slot) = (pc, npc, delay_slot);
                    self.retire::<TRACE>(regs, flow);
                    return;
                }
                Err(e) => {
                    (regs.pc, regs.npc, regs.delay_slot) = (pc, npc, delay_slot);
                    self.take_exception::<TRACE>(regs, e);
                    return;
                }
            }
            self.instret += 1;
            self.cycles += TIMING.base;
            if self.cycles >= self.next_event {
                break;
            }
        }
        (regs.pc, regs.npc, regs.delay_slot) = (pc, npc, delay_slot);
        if self.cycles < self.next_event {
            // A new page: translate it (and take any fault) the slow way.
            self.step::<TRACE>(regs, bus);
        }
    }

    /// A multiply or divide started: HI/LO are busy for its latency.
    #[inline(always)]
    pub(super) fn hilo_started(&mut self, kind: MulDiv) {
        let latency = match kind {
            MulDiv::Mult => TIMING.mult,
            MulDiv::Div => TIMING.div,
            MulDiv::Dmult => TIMING.dmult,
            MulDiv::Ddiv => TIMING.ddiv,
        };
        // The instruction's own issue cycle is added after it completes.
        self.hilo_ready = self.cycles + TIMING.base + latency;
    }

    /// MFHI/MFLO stall until the result is ready (the issue cycle of the
    /// MFHI itself is added after it completes).
    #[inline(always)]
    pub(super) fn hilo_wait(&mut self) {
        let ready = self.hilo_ready.saturating_sub(TIMING.base);
        self.cycles = self.cycles.max(ready);
    }

    /// The load-use interlock: an instruction that reads the register the
    /// previous one loaded waits for it.
    #[inline(always)]
    fn interlock(&mut self, insn: &Insn) {
        if self.load_dest != 0 {
            if reads_reg(insn, self.load_dest) {
                self.cycles += TIMING.load_use;
            }
            self.load_dest = 0;
        }
    }

    /// The bookkeeping of a completed instruction on the slow path: counts,
    /// interlocks, the PC, and the cycle cost of its flow.
    pub(super) fn retire<const TRACE: bool>(&mut self, regs: &mut Regs, flow: Flow) {
        self.instret += 1;
        self.cycles += TIMING.base;
        regs.advance(flow);
        match flow {
            Flow::Taken(_) => self.cycles += TIMING.taken_branch,
            Flow::Annul => self.cycles += TIMING.annulled_slot,
            Flow::Jump(_) => self.cycles += TIMING.eret,
            Flow::Wait => {
                self.state = RunState::Waiting;
                self.next_event = 0;
                if TRACE {
                    self.emit(Event::Wait { pc: regs.pc });
                }
            }
            Flow::Next | Flow::NotTaken => {}
        }
    }

    #[inline(always)]
    pub(super) fn step<const TRACE: bool>(&mut self, regs: &mut Regs, bus: &mut Bus) {
        let insn = match self.fetch(regs, bus) {
            Ok(i) => i,
            Err(e) => {
                self.take_exception::<TRACE>(regs, e);
                return;
            }
        };
        if TRACE {
            self.emit(Event::Insn {
                pc: regs.pc,
                word: self.fetched_word(bus, regs.pc),
                mode: self.cp0.mode(),
            });
        }
        self.interlock(&insn);
        let pc = regs.pc;
        let result = execute(regs, &mut Native::<TRACE> { core: self, bus }, insn, pc);
        match result {
            Ok(flow) => self.retire::<TRACE>(regs, flow),
            Err(e) => self.take_exception::<TRACE>(regs, e),
        }
    }

    #[inline(always)]
    fn fetch(&mut self, regs: &Regs, bus: &mut Bus) -> Result<Insn, Exception> {
        let va = regs.pc as u32;
        if va & 0xFFFF_F003 != self.fetch_page {
            self.refill_fetch(regs.pc, bus)?;
        }
        let index = ((va & 0xFFF) >> 2) as usize;
        bus.code(self.fetch_base + index)
            .ok_or(Exception::new(ExcCode::Ibe))
    }

    /// The word at `pc` in the fetch page, for a trace: decoded
    /// instructions do not keep it, and the decoded copy follows RAM.
    pub(crate) fn fetched_word(&self, bus: &Bus, pc: u64) -> u32 {
        // A 4-byte read, so the narrowing is exact.
        bus.read_ram(self.fetch_ppage | (pc & 0xFFF), 4)
            .map_or(0, |w| w as u32)
    }

    #[cold]
    fn refill_fetch(&mut self, pc: u64, bus: &mut Bus) -> Result<(), Exception> {
        if pc & 3 != 0 {
            return Err(Exception::address(ExcCode::AdEL, sext32(pc)));
        }
        let pa = self.translate(pc, Access::Fetch)?;
        // Nothing answers instruction fetches outside RAM.
        let base = bus
            .code_base((pa >> PAGE_SHIFT) as usize)
            .ok_or(Exception::new(ExcCode::Ibe))?;
        self.fetch_page = (pc as u32) & !0xFFF;
        self.fetch_base = base;
        self.fetch_ppage = pa & !0xFFF;
        Ok(())
    }

    /// Virtual to physical for the current mode and ASID.
    #[inline(always)]
    pub(crate) fn translate(&mut self, vaddr: u64, access: Access) -> Result<u64, Exception> {
        let va = vaddr as u32;
        let vpn = va >> 12;
        if let Some(e) = self.xlate.get(vpn as usize & (XLATE_SIZE - 1)) {
            if e.tag == vpn | self.xctx && (access != Access::Store || e.writable) {
                return Ok(e.pbase | u64::from(va & 0xFFF));
            }
        }
        self.translate_slow(va, access)
    }

    /// The architectural translation (`../shared/docs/r4000-reference.md` §1.3, §3.3).
    #[cold]
    #[inline(never)]
    fn translate_slow(&mut self, va: u32, access: Access) -> Result<u64, Exception> {
        let t = super::tlb::translate(&self.cp0, &self.tlb, va, access)?;
        if t.multiple {
            // TLB shutdown (§3.5): flag it and go on with the first match.
            self.cp0.status |= cp0::status::TS;
        }
        let (pa, writable) = (t.pa, t.writable);
        let watch = self.cp0.watch_lo & 3;
        if watch != 0 {
            // Watch is matched on the physical doubleword; no caching while on.
            let target = (u64::from(self.cp0.watch_hi) << 32) | u64::from(self.cp0.watch_lo & !7);
            let armed = match access {
                Access::Load => watch & 2 != 0,
                Access::Store => watch & 1 != 0,
                Access::Fetch => false,
            };
            if armed && pa >> 3 == target >> 3 && !self.cp0.exl() {
                return Err(Exception::new(ExcCode::Watch));
            }
            return Ok(pa);
        }
        let vpn = va >> 12;
        let tag = vpn | self.xctx;
        if let Some(e) = self.xlate.get_mut(vpn as usize & (XLATE_SIZE - 1)) {
            *e = XlateEntry {
                tag,
                pbase: pa & !0xFFF,
                writable,
            };
        }
        Ok(pa)
    }

    fn cache_op(&mut self, op: u32, vaddr: u64) -> Result<(), Exception> {
        let cache = (op & 3) as usize;
        let index = cache * 1024 + ((vaddr as usize >> 4) & 1023);
        match op >> 2 {
            // Index_Load_Tag / Index_Store_Tag round-trip through TagLo, which
            // cache-sizing firmware relies on (`../shared/docs/r4000-reference.md` §5.13).
            1 => {
                if let Some(t) = self.cache_tags.get(index) {
                    self.cp0.tag_lo = *t;
                }
            }
            2 => {
                if let Some(t) = self.cache_tags.get_mut(index) {
                    *t = self.cp0.tag_lo;
                }
            }
            // Hit operations translate their address and can fault.
            4..=6 => {
                self.translate(vaddr, Access::Load)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether `insn` reads register number `r` (for the load-use interlock).
#[inline(always)]
fn reads_reg(insn: &Insn, r: u8) -> bool {
    insn.reads_reg(r)
}

/// The execution context of a CPU on the real machine.
pub(super) struct Native<'a, const TRACE: bool> {
    pub(super) core: &'a mut Core,
    pub(super) bus: &'a mut Bus,
}

impl<const TRACE: bool> Native<'_, TRACE> {
    #[cold]
    fn mmio_read(&mut self, pa: u64, width: u8) -> Result<u64, Exception> {
        let c = &mut *self.core;
        c.cycles += TIMING.mmio;
        let v = self
            .bus
            .with_board(|b| b.read(c.id, c.cycles, pa, width))
            .ok_or(Exception::new(ExcCode::Dbe))?;
        if TRACE {
            c.emit(Event::Mmio {
                paddr: pa,
                width,
                value: v,
                write: false,
            });
        }
        c.next_event = 0;
        Ok(v)
    }

    #[cold]
    fn mmio_write(&mut self, pa: u64, width: u8, value: u64) -> Result<(), Exception> {
        let c = &mut *self.core;
        c.cycles += TIMING.mmio;
        if TRACE {
            c.emit(Event::Mmio {
                paddr: pa,
                width,
                value,
                write: true,
            });
        }
        let (ok, actions) = self.bus.with_board(|b| {
            let ok = b.write(c.id, c.cycles, pa, width, value);
            (ok, b.has_actions())
        });
        if !ok {
            return Err(Exception::new(ExcCode::Dbe));
        }
        if actions {
            c.board_pending = true;
        }
        c.next_event = 0;
        Ok(())
    }

    fn write_tlb(&mut self, index: usize, random: bool) {
        let c = &mut *self.core;
        let entry = Tlb::entry_from(&c.cp0);
        c.tlb.write(index, entry);
        c.flush_translations();
        if TRACE {
            c.emit(Event::TlbWrite {
                index: index % super::TLB_ENTRIES,
                random,
                entry,
            });
        }
    }
}

impl<const TRACE: bool> ExecContext for Native<'_, TRACE> {
    #[inline(always)]
    fn allow64(&self) -> bool {
        self.core.cp0.allow64()
    }

    #[inline(always)]
    fn cop_usable(&self, n: u8) -> bool {
        self.core.cp0.cop_usable(n)
    }

    #[inline(always)]
    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        let pa = self.core.translate(vaddr, Access::Load)?;
        if TRACE && self.core.debug.active {
            self.core.debug.access(vaddr, width, false);
        }
        match self.bus.read_ram(pa, width) {
            Some(v) => Ok(v),
            None => self.mmio_read(pa, width),
        }
    }

    #[inline(always)]
    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        let pa = self.core.translate(vaddr, Access::Store)?;
        if TRACE && self.core.debug.active {
            self.core.debug.access(vaddr, width, true);
        }
        if self.bus.write_ram(self.core.id, pa, width, value) {
            return Ok(());
        }
        self.mmio_write(pa, width, value)
    }

    fn load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        let pa = self.core.translate(vaddr, Access::Load)?;
        let v = match self.bus.load_linked(self.core.id, pa, width) {
            Some(v) => v,
            None => {
                let v = self.mmio_read(pa, width)?;
                self.bus.link(self.core.id, pa);
                v
            }
        };
        // LLAddr holds PA[35:4] (§2.2).
        self.core.cp0.ll_addr = (pa >> 4) as u32;
        Ok(v)
    }

    fn store_conditional(&mut self, vaddr: u64, width: u8, value: u64) -> Result<bool, Exception> {
        // The address is translated (and may fault) even when the link is gone.
        let pa = self.core.translate(vaddr, Access::Store)?;
        match self.bus.store_conditional(self.core.id, pa, width, value) {
            Some(stored) => Ok(stored),
            None => self.mmio_write(pa, width, value).map(|()| true),
        }
    }

    fn read_cp0(&mut self, reg: u32) -> u64 {
        self.core.read_cp0(reg)
    }

    fn write_cp0(&mut self, reg: u32, value: u64, _dword: bool) {
        self.core.write_cp0(reg, value);
    }

    fn tlbr(&mut self) {
        let c = &mut *self.core;
        c.tlb.read_into(&mut c.cp0);
        // TLBR overwrites the current ASID (§3.4).
        c.context_changed();
    }

    fn tlbwi(&mut self) {
        let index = (self.core.cp0.index & 0x3F) as usize;
        self.write_tlb(index, false);
    }

    fn tlbwr(&mut self) {
        let index = self.core.random() as usize;
        self.write_tlb(index, true);
    }

    fn tlbp(&mut self) {
        let c = &mut *self.core;
        c.tlb.probe_into(&mut c.cp0);
    }

    fn eret(&mut self) -> u64 {
        let c = &mut *self.core;
        let from = c.cp0.epc;
        let to = if c.cp0.erl() {
            c.cp0.status &= !cp0::status::ERL;
            c.cp0.error_epc
        } else {
            c.cp0.status &= !cp0::status::EXL;
            c.cp0.epc
        };
        self.bus.unlink(c.id);
        c.context_changed();
        c.interrupts_changed();
        if TRACE {
            c.emit(Event::Eret {
                from,
                to,
                mode: c.cp0.mode(),
            });
        }
        to
    }

    fn cache(&mut self, op: u32, vaddr: u64) -> Result<(), Exception> {
        self.core.cache_op(op, vaddr)
    }

    #[inline(always)]
    fn loaded(&mut self, rt: Reg) {
        // rt is in 0..32: exact.
        self.core.load_dest = rt.number() as u8;
    }

    #[inline(always)]
    fn muldiv(&mut self, kind: MulDiv) {
        self.core.hilo_started(kind);
    }

    #[inline(always)]
    fn hilo_read(&mut self) {
        self.core.hilo_wait();
    }
}
