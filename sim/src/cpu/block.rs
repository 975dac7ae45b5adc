//! Tier 2: superblocks with precomputed cycle costs
//! (`../shared/docs/design.md` §8, docs/tiers.md).
//!
//! A block is a run of one page's decoded instructions in the order they
//! run if its conditional branches fall through and its direct jumps within
//! the page are taken (`build`): it leaves after the slot of a branch that
//! is taken or a transfer it does not follow, and stops before a CP0
//! instruction (those stay with the interpreter: they read the instruction
//! count, change the translation context or the interrupt state), at the
//! page's end, or at [`MAX_LEN`]. The common instructions are micro-ops
//! calling the interpreter's family handlers (`exec::alu`, `branch`,
//! `muldiv`, `mem`) and the bus's RAM accessors; the rest run through the
//! same [`execute`] as tier 1, so semantics are written once. What a block saves is the per-instruction bookkeeping: the
//! fetch and its page check, the event check, the interlock lookup and the
//! retire tail.
//!
//! Cycle accounting is tier 1's exactly. The static costs (issue cycles,
//! load-use stalls inside the block) are a table built with it; the stall
//! of its first instruction comes from the load that ended the previous
//! block (carried in `Core::load_dest`); taken branches, multiply/divide
//! readiness and device penalties are added as they happen, at the same
//! moment as in tier 1. Events are checked once per block: a block runs only
//! if the most it can cost cannot reach the next event, otherwise the
//! interpreter runs up to that event, so interrupts and quantum ends land
//! on the same cycle in both tiers. A device access or a store that changes
//! decoded code ends the block after that instruction, as the interpreter
//! would look at both before the next.

mod build;
mod compiled;
pub(crate) mod ctx;
pub(crate) mod regop;

use super::exec::{execute, Flow, Regs};
use super::native::Native;
use super::{Access, Core};
use crate::mem::{Bus, PAGE_SHIFT};
use crate::obs::Event;
use crate::timing::TIMING;
pub use build::Block;
use build::{build, MAX_LEN};
use ctx::{BlockCtx, Next, Start};

/// Entries of the direct-mapped block cache.
pub(super) const CACHE_SIZE: usize = 4096;

/// The blocks of every CPU, direct-mapped by physical address.
#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    entries: Vec<Block>,
    /// Blocks built (statistics and tests).
    pub(crate) built: u64,
    /// Tier 3's compiler.
    pub(crate) tier3: compiled::Tier3,
}

impl BlockCache {
    #[inline(always)]
    fn slot(pa: u64) -> usize {
        // Masked to the table size: exact.
        (pa >> 2) as usize & (CACHE_SIZE - 1)
    }

    /// The block at `pa` for virtual page `vpage` if it is cached and its
    /// page is unchanged.
    #[inline(always)]
    fn get(&self, pa: u64, vpage: u32, generation: u32) -> Option<&Block> {
        let b = self.entries.get(Self::slot(pa))?;
        (b.pa == pa && b.vpage == vpage && b.generation == generation).then_some(b)
    }

    #[cold]
    fn insert(&mut self, b: Block) -> Option<&Block> {
        if self.entries.is_empty() {
            self.entries = vec![Block::EMPTY; CACHE_SIZE];
        }
        self.built += 1;
        let e = self.entries.get_mut(Self::slot(b.pa))?;
        if let Some(gone) = e.code {
            self.tier3.forget(gone);
        }
        *e = b;
        Some(e)
    }
}

impl Core {
    /// Tier 2's loop: blocks until the next event is due, or until
    /// something needs the interpreter (a new page, a delay slot to enter,
    /// a CP0 instruction, an event a block could cross).
    #[inline(never)]
    /// `JIT`: tier 3, hot blocks compiled (the traced loop runs them as
    /// tier 2 does).
    pub(super) fn run_blocks<const TRACE: bool, const JIT: bool>(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
    ) {
        // Out of the bus while blocks run, so a block can be read in place
        // while its instructions write to the bus.
        let mut cache = std::mem::take(&mut bus.blocks);
        if JIT {
            cache.tier3.poll();
        }
        // Whatever ran since the last compiled exit, it was not linked.
        cache.tier3.exited(None);
        self.run_cached::<TRACE, JIT>(&mut cache, regs, bus);
        bus.blocks = cache;
    }

    #[inline(always)]
    fn run_cached<const TRACE: bool, const JIT: bool>(
        &mut self,
        cache: &mut BlockCache,
        regs: &mut Regs,
        bus: &mut Bus,
    ) {
        loop {
            let va = regs.pc as u32;
            if regs.delay_slot || va & 0xFFFF_F003 != self.fetch_page {
                self.step::<TRACE>(regs, bus);
                return;
            }
            let pa = self.fetch_ppage | u64::from(va & 0xFFF);
            let vpage = va >> 12;
            let generation = bus.code_gen((pa >> PAGE_SHIFT) as usize);
            let cached = cache.get(pa, vpage, generation).is_some();
            let found = if cached {
                cache.get(pa, vpage, generation)
            } else {
                let page = (pa >> PAGE_SHIFT) as usize;
                cache.insert(build(
                    bus.fresh(page),
                    self.fetch_base,
                    pa,
                    vpage,
                    generation,
                ))
            };
            let Some(b) = found.filter(|b| b.len > 0) else {
                self.step::<TRACE>(regs, bus);
                return;
            };
            if self.cycles + b.max_cost >= self.next_event {
                // The block might cross the event: the interpreter runs up
                // to it, so the event lands where it always does.
                self.run_fast::<TRACE>(regs, bus);
                return;
            }
            let ran = if TRACE {
                self.exec_block_traced(regs, bus, b)
            } else if JIT {
                self.exec_tier3(regs, bus, cache, BlockCache::slot(pa))
            } else {
                self.exec_block(regs, bus, b)
            };
            if !ran || self.cycles >= self.next_event {
                return;
            }
        }
    }

    /// Runs one block from `regs.pc` (not in a delay slot). Returns false
    /// if it stopped early (an exception, a device access, a code write)
    /// or left through an instruction the interpreter must finish.
    ///
    /// The cycle count is `c0 + b.cost_to(k)`: the block's static costs
    /// (issue cycles, in-block load-use stalls) come from its masks, and
    /// `c0` gathers the dynamic ones (taken branches, HI/LO waits, the
    /// interpreter's path). It goes back to `self.cycles` before anything
    /// that can look at it and at every exit.
    #[inline(always)]
    fn exec_block(&mut self, regs: &mut Regs, bus: &mut Bus, b: &Block) -> bool {
        self.carry_interlock(b);
        let c0 = self.cycles;
        self.exec_from(regs, bus, b, regs.pc & !0xFFF, Start::block(c0))
    }

    /// The stall of a block's first instruction on the load that ended the
    /// previous block.
    #[inline(always)]
    fn carry_interlock(&mut self, b: &Block) {
        if self.load_dest != 0 {
            self.cycles += interlock_stall(self.load_dest, b);
            self.load_dest = 0;
        }
    }

    /// Tier 3's step: block `slot` of `cache` compiled if it is hot, else
    /// as tier 2 runs it.
    #[inline(always)]
    fn exec_tier3(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        cache: &mut BlockCache,
        slot: usize,
    ) -> bool {
        let BlockCache { entries, tier3, .. } = cache;
        let mut reset = false;
        let code = match entries.get_mut(slot) {
            Some(b) => tier3.hot(b, &mut reset),
            None => return false,
        };
        if reset {
            // Every other block's code was freed with the module.
            for (i, e) in entries.iter_mut().enumerate() {
                if i != slot {
                    (e.code, e.runs) = (None, 0);
                }
            }
        }
        let Some(b) = entries.get(slot) else {
            return false;
        };
        let Some(code) = code else {
            tier3.exited(None);
            return self.exec_block(regs, bus, b);
        };
        tier3.link(b, code, regs.pc, self.load_dest);
        let Some(jit) = tier3.jit() else {
            return self.exec_block(regs, bus, b);
        };
        let (ran, from) = self.exec_compiled(regs, bus, (jit, code), entries, b);
        tier3.exited(from);
        ran
    }

    /// Block `b`, in a page whose base is `vbase`, from where `from` says
    /// (tier 2's generic loop on this CPU).
    #[inline(always)]
    fn exec_from(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        vbase: u64,
        from: Start,
    ) -> bool {
        ctx::exec_from(self, bus, regs, b, vbase, from)
    }

    /// [`Core::exec_block`] for the traced loop: every instruction through
    /// the interpreter's path, recorded as the interpreter records it.
    #[inline(never)]
    fn exec_block_traced(&mut self, regs: &mut Regs, bus: &mut Bus, b: &Block) -> bool {
        let n = usize::from(b.len).min(MAX_LEN);
        let vbase = regs.pc & !0xFFF;
        let mut target: Option<u64> = None;
        let mut next = regs.pc;
        for (k, &at) in b.at.iter().take(n).enumerate() {
            let pc = vbase | u64::from(at) << 2;
            if let Some(stop) = self.generic::<true>(regs, bus, b, k, pc, &mut target) {
                return stop;
            }
            self.cycles += TIMING.base;
            let check = (b.mem >> k) & 1 != 0;
            if let Next::Leave(done, next, whole) =
                ctx::after(self, bus, b, k, vbase, &mut target, check)
            {
                self.leave_block(regs, b, done, next);
                return whole;
            }
            next = pc.wrapping_add(4);
        }
        self.leave_block(regs, b, n, target.unwrap_or(next));
        true
    }

    /// Retires the block's first `done` instructions and continues at
    /// `next`: a load as the last of them leaves its destination for the
    /// next block's interlock; anything else clears it.
    #[inline(always)]
    fn leave_block(&mut self, regs: &mut Regs, b: &Block, done: usize, next: u64) {
        self.instret += done as u64;
        if (b.loads >> (done - 1)) & 1 == 0 {
            self.load_dest = 0;
        }
        regs.jump_to(next);
    }

    /// The physical address of an aligned access that hits the translation
    /// cache; `None` sends the access the interpreter's way (which also
    /// raises its faults).
    #[inline(always)]
    fn xlate_hit(&self, vaddr: u64, width: u8, access: Access) -> Option<u64> {
        if vaddr & (u64::from(width) - 1) != 0 {
            return None;
        }
        let va = vaddr as u32;
        let vpn = va >> 12;
        let e = self.xlate.get(vpn as usize & (super::XLATE_SIZE - 1))?;
        (e.tag == vpn | self.xctx && (access != Access::Store || e.writable))
            .then_some(e.pbase | u64::from(va & 0xFFF))
    }

    /// Instruction `k` of block `b`, at `pc`, through the interpreter's
    /// [`execute`]. `Some(result)` when the block ends here.
    #[inline(never)]
    fn generic<const TRACE: bool>(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        k: usize,
        pc: u64,
        target: &mut Option<u64>,
    ) -> Option<bool> {
        let at = b.at.get(k).map_or(0, |&w| usize::from(w));
        let Some(insn) = bus.code(self.fetch_base + at) else {
            // Not reached: the block was built from these entries.
            (regs.pc, regs.npc, regs.delay_slot) = (pc, pc.wrapping_add(4), false);
            self.instret += k as u64;
            return Some(false);
        };
        if TRACE {
            self.emit(Event::Insn {
                pc,
                word: self.fetched_word(bus, pc),
                mode: self.cp0.mode(),
            });
            // The interlock, after the event as in tier 1.
            if k == 0 && self.load_dest != 0 {
                if (b.first_reads >> self.load_dest) & 1 != 0 {
                    self.cycles += TIMING.load_use;
                }
                self.load_dest = 0;
            } else if (b.stalls >> k) & 1 != 0 {
                self.cycles += TIMING.load_use;
            }
        }
        match execute(regs, &mut Native::<TRACE> { core: self, bus }, insn, pc) {
            Ok(Flow::Next | Flow::NotTaken) => None,
            Ok(Flow::Taken(t)) => {
                self.cycles += TIMING.taken_branch;
                *target = Some(t);
                None
            }
            Ok(Flow::Annul) => {
                self.instret += k as u64 + 1;
                self.cycles += TIMING.base + TIMING.annulled_slot;
                self.load_dest = 0;
                regs.jump_to(pc.wrapping_add(8));
                Some(true)
            }
            Ok(flow @ (Flow::Jump(_) | Flow::Wait)) => {
                // Not built into blocks (CP0 instructions); kept total.
                self.instret += k as u64;
                (regs.pc, regs.npc, regs.delay_slot) = (pc, pc.wrapping_add(4), false);
                self.retire::<TRACE>(regs, flow);
                Some(false)
            }
            Err(e) => {
                self.instret += k as u64;
                regs.pc = pc;
                regs.npc = target.unwrap_or(pc.wrapping_add(4));
                regs.delay_slot = (b.slots >> k) & 1 != 0;
                self.take_exception::<TRACE>(regs, e);
                Some(false)
            }
        }
    }
}

/// The stall block `b`'s first instruction pays on the load into
/// `load_dest` (0: none) that ended the block before it.
#[inline(always)]
fn interlock_stall(load_dest: u8, b: &Block) -> u64 {
    b.carried_stall(load_dest)
}

/// The native CPU as tier 2's generic loop sees it: its translation cache
/// and its bus's RAM, its clock and multiplier, the interpreter's path.
impl BlockCtx for Core {
    type Mem = Bus;

    #[inline(always)]
    fn clock(&mut self, _: &mut Bus) -> u64 {
        self.cycles
    }

    #[inline(always)]
    fn set_clock(&mut self, _: &mut Bus, at: u64) {
        self.cycles = at;
    }

    #[inline(always)]
    fn load(
        &mut self,
        bus: &mut Bus,
        (_k, _at): (usize, u64),
        ea: u64,
        width: u8,
        _extra: &mut u64,
    ) -> Option<u64> {
        self.xlate_hit(ea, width, Access::Load)
            .and_then(|pa| bus.read_ram(pa, width))
    }

    #[inline(always)]
    fn store(
        &mut self,
        bus: &mut Bus,
        (_k, _at): (usize, u64),
        ea: u64,
        width: u8,
        value: u64,
        _extra: &mut u64,
    ) -> bool {
        self.xlate_hit(ea, width, Access::Store)
            .is_some_and(|pa| bus.write_ram(self.id, pa, width, value))
    }

    #[inline(always)]
    fn loaded(&mut self, _: &mut Bus, rt: u8) {
        self.load_dest = rt;
    }

    #[inline(always)]
    fn mult_started(&mut self, _: &mut Bus, at: u64) {
        self.cycles = at;
        self.hilo_started(super::exec::MulDiv::Mult);
    }

    #[inline(always)]
    fn hilo_stall(&mut self, _: &mut Bus, at: u64) -> u64 {
        self.cycles = at;
        Core::hilo_wait(self);
        self.cycles - at
    }

    #[inline(always)]
    fn general(
        &mut self,
        bus: &mut Bus,
        regs: &mut Regs,
        b: &Block,
        k: usize,
        pc: u64,
        target: &mut Option<u64>,
    ) -> Option<bool> {
        self.generic::<false>(regs, bus, b, k, pc, target)
    }

    #[inline(always)]
    fn access_ends_block(&mut self, bus: &mut Bus) -> bool {
        self.next_event == 0 || bus.take_code_written()
    }

    #[inline(always)]
    fn leave(&mut self, _: &mut Bus, regs: &mut Regs, b: &Block, done: usize, next: u64) {
        self.leave_block(regs, b, done, next);
    }
}
