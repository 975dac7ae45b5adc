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
pub(crate) mod regop;

use super::exec::{alu, branch, execute, mem, muldiv, Flow, Regs};
use super::native::Native;
use super::{Access, Core};
use crate::mem::{Bus, PAGE_SHIFT};
use crate::obs::Event;
use crate::timing::TIMING;
use build::{build, Block, Kind, MAX_LEN};

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

/// Where [`Core::exec_from`] starts in a block: at instruction `k`, with
/// the cycles before the static costs (`c0`) and a taken transfer's target
/// (`k` is its slot) as its loop keeps them.
struct Start {
    k: usize,
    c0: u64,
    target: Option<u64>,
}

impl Start {
    /// A block's start, the interlock carried into it paid.
    #[inline(always)]
    fn block(c0: u64) -> Start {
        Start {
            k: 0,
            c0,
            target: None,
        }
    }
}

/// What follows an instruction of a block.
enum Next {
    /// The block's next instruction.
    On,
    /// The block ends here: it has run this many instructions and goes on
    /// at this address; `true` if it ran to one of its exits.
    Leave(usize, u64, bool),
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

    /// Block `b`, in a page whose base is `vbase`, from where `from` says.
    #[inline(always)]
    fn exec_from(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        b: &Block,
        vbase: u64,
        from: Start,
    ) -> bool {
        let n = usize::from(b.len).min(MAX_LEN);
        let Start {
            mut k,
            mut c0,
            mut target,
        } = from;
        while k < n {
            let op = b.uops[k % MAX_LEN];
            let g = &mut regs.gpr;
            let (d, s, t) = (
                usize::from(op.d & 31),
                usize::from(op.s & 31),
                usize::from(op.t & 31),
            );
            let (rs, rt) = (g[s], g[t]);
            // Whether the micro-op could not finish here and the
            // interpreter's path must run the instruction.
            let slow = match op.kind {
                Kind::Nop => false,
                Kind::Sll => set(&mut g[d], alu::sll(rt, op.imm)),
                Kind::Srl => set(&mut g[d], alu::srl(rt, op.imm)),
                Kind::Sra => set(&mut g[d], alu::sra(rt, op.imm)),
                Kind::Addu => set(&mut g[d], alu::addu(rs, rt)),
                Kind::Subu => set(&mut g[d], alu::subu(rs, rt)),
                Kind::And => set(&mut g[d], rs & rt),
                Kind::Or => set(&mut g[d], rs | rt),
                Kind::Xor => set(&mut g[d], rs ^ rt),
                Kind::Nor => set(&mut g[d], alu::nor(rs, rt)),
                Kind::Slt => set(&mut g[d], alu::slt(rs, rt)),
                Kind::Sltu => set(&mut g[d], alu::sltu(rs, rt)),
                Kind::Addiu => set(&mut g[t], alu::addu(rs, op.simm())),
                Kind::Slti => set(&mut g[t], alu::slt(rs, op.simm())),
                Kind::Sltiu => set(&mut g[t], alu::sltu(rs, op.simm())),
                Kind::Andi => set(&mut g[t], rs & u64::from(op.imm)),
                Kind::Ori => set(&mut g[t], rs | u64::from(op.imm)),
                Kind::Xori => set(&mut g[t], rs ^ u64::from(op.imm)),
                Kind::Lui => set(&mut g[t], alu::lui(op.imm)),
                Kind::Mult | Kind::Multu => {
                    self.mult(regs, op.kind, rs, rt, c0 + b.cost_to(k));
                    false
                }
                Kind::Mfhi | Kind::Mflo => {
                    c0 += self.mfhilo(regs, &op, c0 + b.cost_to(k));
                    false
                }
                Kind::Beq
                | Kind::Bne
                | Kind::Blez
                | Kind::Bgtz
                | Kind::Bltz
                | Kind::Bgez
                | Kind::J
                | Kind::Jal
                | Kind::Jr
                | Kind::Jalr => {
                    let to = transfer(&op, || b.pc(vbase, k), g, rs, rt);
                    if to.is_some() {
                        c0 += TIMING.taken_branch;
                        target = to;
                    }
                    false
                }
                Kind::Lw => self.load_fast::<4, true>(bus, g, &op, rs),
                Kind::Lh => self.load_fast::<2, true>(bus, g, &op, rs),
                Kind::Lhu => self.load_fast::<2, false>(bus, g, &op, rs),
                Kind::Lb => self.load_fast::<1, true>(bus, g, &op, rs),
                Kind::Lbu => self.load_fast::<1, false>(bus, g, &op, rs),
                Kind::Sw => !self.store_fast::<4>(bus, rs.wrapping_add(op.simm()), rt),
                Kind::Sh => !self.store_fast::<2>(bus, rs.wrapping_add(op.simm()), rt),
                Kind::Sb => !self.store_fast::<1>(bus, rs.wrapping_add(op.simm()), rt),
                Kind::Generic => true,
            };
            if slow {
                let at = c0 + b.cost_to(k);
                self.cycles = at;
                let pc = b.pc(vbase, k);
                if let Some(stop) = self.generic::<false>(regs, bus, b, k, pc, &mut target) {
                    return stop;
                }
                c0 += self.cycles - at;
            }
            if op.s & build::LOOK_AFTER != 0 {
                // A fast load touched neither a device nor code.
                let check = slow || matches!(op.kind, Kind::Sw | Kind::Sh | Kind::Sb);
                if let Next::Leave(done, next, whole) =
                    self.after(bus, b, k, vbase, &mut target, check)
                {
                    self.cycles = c0 + b.cost_to_end(done);
                    self.leave_block(regs, b, done, next);
                    return whole;
                }
            }
            k += 1;
        }
        self.cycles = c0 + b.cost_to_end(n);
        let next = b.pc(vbase, n.wrapping_sub(1)).wrapping_add(4);
        self.leave_block(regs, b, n, target.unwrap_or(next));
        true
    }

    /// Where a block goes after its instruction `k`: on, or out through a
    /// taken branch's slot (unless the block follows that jump), or out
    /// before the next instruction when `check`ed memory access reached a
    /// device or changed code (the interpreter would look at both before
    /// the next instruction).
    #[inline(always)]
    fn after(
        &mut self,
        bus: &mut Bus,
        b: &Block,
        k: usize,
        vbase: u64,
        target: &mut Option<u64>,
        check: bool,
    ) -> Next {
        let bit = 1u32 << k;
        if b.slots & bit != 0 {
            if let Some(t) = *target {
                if b.follow & bit == 0 {
                    return Next::Leave(k + 1, t, true);
                }
                *target = None;
            }
        }
        if check
            && (b.mem >> k) & 1 != 0
            && k + 1 < usize::from(b.len)
            && (self.next_event == 0 || bus.take_code_written())
        {
            // Never between a branch and its slot: a branch is no memory
            // access.
            let at = b.at.get(k + 1).copied().unwrap_or(0);
            return Next::Leave(k + 1, vbase | (u64::from(at) << 2), false);
        }
        Next::On
    }

    /// MULT or MULTU issued at cycle `at`.
    #[inline(always)]
    fn mult(&mut self, regs: &mut Regs, kind: Kind, rs: u64, rt: u64, at: u64) {
        (regs.hi, regs.lo) = if kind == Kind::Mult {
            muldiv::mult(rs, rt)
        } else {
            muldiv::multu(rs, rt)
        };
        self.cycles = at;
        self.hilo_started(super::exec::MulDiv::Mult);
    }

    /// MFHI or MFLO reached at cycle `at`; the cycles it waited.
    #[inline(always)]
    fn mfhilo(&mut self, regs: &mut Regs, op: &build::Uop, at: u64) -> u64 {
        self.cycles = at;
        self.hilo_wait();
        regs.gpr[usize::from(op.d & 31)] = if op.kind == Kind::Mfhi {
            regs.hi
        } else {
            regs.lo
        };
        self.cycles - at
    }

    /// An aligned load that hits RAM through the translation cache into rt,
    /// extended as the interpreter extends it; false (done) or true (the interpreter's path must
    /// run it: a miss, a fault, a device).
    #[inline(always)]
    fn load_fast<const W: u8, const SIGNED: bool>(
        &mut self,
        bus: &Bus,
        g: &mut [u64; 32],
        op: &build::Uop,
        rs: u64,
    ) -> bool {
        let ea = rs.wrapping_add(op.simm());
        match self
            .xlate_hit(ea, W, Access::Load)
            .and_then(|pa| bus.read_ram(pa, W))
        {
            Some(v) => {
                let t = op.t & 31;
                g[usize::from(t)] = mem::extend::<W, SIGNED>(v);
                self.load_dest = t;
                false
            }
            None => true,
        }
    }

    /// An aligned store that hits RAM through the translation cache;
    /// whether it was done.
    #[inline(always)]
    fn store_fast<const W: u8>(&mut self, bus: &mut Bus, ea: u64, value: u64) -> bool {
        self.xlate_hit(ea, W, Access::Store)
            .is_some_and(|pa| bus.write_ram(self.id, pa, W, value))
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
            if let Next::Leave(done, next, whole) = self.after(bus, b, k, vbase, &mut target, check)
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

/// A branch or jump micro-op at `pc()` (asked only when needed): its target
/// if it is taken (JAL and JALR write their link).
#[inline(always)]
fn transfer(
    op: &build::Uop,
    pc: impl Fn() -> u64,
    g: &mut [u64; 32],
    rs: u64,
    rt: u64,
) -> Option<u64> {
    let taken = match op.kind {
        Kind::Beq => rs == rt,
        Kind::Bne => rs != rt,
        Kind::Blez => branch::lez(rs),
        Kind::Bgtz => branch::gtz(rs),
        Kind::Bltz => branch::ltz(rs),
        Kind::Bgez => branch::gez(rs),
        Kind::J | Kind::Jr => true,
        Kind::Jal => {
            g[31] = branch::link(pc());
            true
        }
        _ => {
            // JALR: the target was read (rs) before the link is written.
            g[usize::from(op.d & 31)] = branch::link(pc());
            true
        }
    };
    if !taken {
        return None;
    }
    Some(match op.kind {
        Kind::J | Kind::Jal => branch::jump_target(pc(), op.imm),
        Kind::Jr | Kind::Jalr => rs,
        _ => branch::branch_target(pc(), op.simm()),
    })
}

/// The stall block `b`'s first instruction pays on the load into
/// `load_dest` (0: none) that ended the block before it.
#[inline(always)]
fn interlock_stall(load_dest: u8, b: &Block) -> u64 {
    if load_dest != 0 && (b.first_reads >> (load_dest & 31)) & 1 != 0 {
        TIMING.load_use
    } else {
        0
    }
}

/// Writes an ALU result; false: the micro-op is done.
#[inline(always)]
fn set(r: &mut u64, v: u64) -> bool {
    *r = v;
    false
}
