//! A translated block's instructions through tier 2's block loop
//! (`sim::hv::run_block`), against the virtual CPU: the loop has the
//! micro-ops, the static costs (issue cycles and load-use stalls summed
//! when the block is built) and one retire per block; this module is the
//! virtual CPU it runs on (`sim::hv::BlockCtx`): KSEG0/KSEG1 loads and
//! stores with their inline rewrite, the multiplier's timing, the general
//! path through `execute` and how a block ends. Cycles, counters and
//! traces are those of running each instruction through `execute`
//! (docs/translation.md, "Fifth round").

use std::marker::PhantomData;

use sim::hv::{execute, Access, BlockCode, BlockCtx, Exception, Flow, MulDiv, Regs, TIMING};

use super::block::Block;
use super::exec::{self, BlockEnd, Xlat};
use super::run::RunState;
use crate::engine;
use crate::guest::GuestCtx;
use crate::vcpu::VcpuState;

/// Runs block `b`'s instructions; how it ended and the instructions it
/// retired.
pub(super) fn run_insns(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    b: &Block,
    st: &mut RunState,
) -> (BlockEnd, u64) {
    let mut g = Guest {
        st,
        b,
        first: 0,
        counted: 0,
        retired: 0,
        end: None,
        pending: None,
        early: 0,
        entered_in_slot: regs.delay_slot,
        ctx: PhantomData,
    };
    let mut pc = b.pc;
    for (n, code) in b.code.iter().enumerate() {
        g.counted = 0;
        if g.st.load_dest != 0 {
            // The stall of the first instruction on the load that ended
            // what ran before: the guest's own time.
            ctx.core.charge(code.carried_stall(g.st.load_dest));
            g.st.load_dest = 0;
        }
        let c0 = ctx.core.cycles();
        let vbase = pc & !0xFFF;
        let mut from = (0, c0, None);
        if n == 0 && (ctx.vcpu.may_interrupt || regs.delay_slot) {
            // An interrupt let in before the block (by a reflection that
            // ended the previous one) is looked at after its first
            // instruction, and a block entered at a delay slot (its branch
            // ended the previous block at a page's end) may leave its
            // straight run: the general path runs that instruction.
            let mut target = None;
            if g.general(ctx, regs, code, 0, pc, &mut target).is_some() {
                return g.ended();
            }
            from = (1, g.clock(ctx), target);
        }
        sim::hv::run_block(&mut g, ctx, regs, code, vbase, from);
        if g.end.is_some() {
            return g.ended();
        }
        g.first += code.len();
        pc = pc.wrapping_add(4 * code.len() as u64);
    }
    // Not reached: the last part's exit ends the block.
    g.end.get_or_insert(BlockEnd::Lookup);
    g.ended()
}

/// The virtual CPU as tier 2's block loop sees it, running one part
/// (`Block::code`) of a translated block at a time.
struct Guest<'r, 'a> {
    st: &'r mut RunState,
    b: &'r Block,
    /// The part's first instruction in the block.
    first: usize,
    /// The part's instructions counted (`guest_insns`) so far.
    counted: usize,
    /// The block's instructions retired.
    retired: u64,
    /// How the block ended, once it has.
    end: Option<BlockEnd>,
    /// A micro-op's access that failed after its cost was paid: the
    /// general path raises it without running the instruction again.
    pending: Option<Exception>,
    /// The issue cycle the general path charged for an instruction the
    /// loop's static table also counts.
    early: u64,
    /// The block was entered at a delay slot (`regs` holds its branch's
    /// target).
    entered_in_slot: bool,
    ctx: PhantomData<fn(&mut GuestCtx<'a>)>,
}

impl Guest<'_, '_> {
    fn ended(self) -> (BlockEnd, u64) {
        (self.end.unwrap_or(BlockEnd::Lookup), self.retired)
    }

    /// The part's first `k` instructions counted: Random follows the
    /// count, so it is current before anything that may read it.
    fn count(&mut self, ctx: &mut GuestCtx<'_>, k: usize) {
        let n = k.saturating_sub(self.counted) as u64;
        ctx.vcpu.stats.guest_insns += n;
        self.retired += n;
        self.counted = self.counted.max(k);
    }

    /// Whether this access's base was rewritten already.
    fn shared(&self, k: usize) -> bool {
        let i = self.first + k;
        i < 64 && (self.b.shared_base >> i) & 1 != 0
    }

    /// The block ends at instruction `k` of the part (done, or raised).
    fn finish(&mut self, end: BlockEnd) -> Option<bool> {
        self.end = Some(end);
        Some(false)
    }

    /// The registers before instruction `k` at `pc` (the loop keeps only
    /// the general ones): in `target`'s delay slot, or the straight run.
    fn regs_before(
        &self,
        regs: &mut Regs,
        code: &BlockCode,
        k: usize,
        pc: u64,
        target: Option<u64>,
    ) {
        if self.first + k == 0 && self.entered_in_slot {
            return;
        }
        regs.pc = pc;
        regs.npc = target.unwrap_or(pc.wrapping_add(4));
        regs.delay_slot = code.is_slot(k);
    }

    /// The clock at cycle `at` (it only goes forward).
    fn clock_to(ctx: &mut GuestCtx<'_>, at: u64) {
        let now = ctx.core.cycles();
        debug_assert!(at >= now, "the clock went back: {now} -> {at}");
        ctx.core.charge(at.saturating_sub(now));
        ctx.now = at;
    }
}

impl<'a> BlockCtx for Guest<'_, 'a> {
    type Mem = GuestCtx<'a>;

    #[inline(always)]
    fn clock(&mut self, ctx: &mut GuestCtx<'a>) -> u64 {
        ctx.core.cycles() - std::mem::take(&mut self.early)
    }

    #[inline(always)]
    fn set_clock(&mut self, ctx: &mut GuestCtx<'a>, at: u64) {
        let now = ctx.core.cycles();
        ctx.core.charge(at.saturating_sub(now));
    }

    /// A KSEG0/KSEG1 RAM load by the guest kernel: what `execute` does
    /// through `Xlat` for it (the inline rewrite and its cost, the access),
    /// without them. Anything else takes the general path.
    #[inline(always)]
    fn load(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        (k, at): (usize, u64),
        ea: u64,
        width: u8,
        extra: &mut u64,
    ) -> Option<u64> {
        if ea & u64::from(width - 1) != 0 {
            return None;
        }
        let gpa = exec::kseg_ram(ctx, ea)?;
        Self::clock_to(ctx, at);
        exec::kseg_cost(ctx, self.st, self.shared(k), gpa);
        *extra += ctx.core.cycles() - at;
        match ctx.read_ram(gpa, width, Access::Load) {
            Ok(raw) => Some(raw),
            Err(e) => {
                self.pending = Some(e);
                None
            }
        }
    }

    #[inline(always)]
    fn store(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        (k, at): (usize, u64),
        ea: u64,
        width: u8,
        value: u64,
        extra: &mut u64,
    ) -> bool {
        if ea & u64::from(width - 1) != 0 {
            return false;
        }
        let Some(gpa) = exec::kseg_ram(ctx, ea) else {
            return false;
        };
        Self::clock_to(ctx, at);
        exec::kseg_cost(ctx, self.st, self.shared(k), gpa);
        *extra += ctx.core.cycles() - at;
        match ctx.write_ram(gpa, width, value) {
            Ok(()) => true,
            Err(e) => {
                self.pending = Some(e);
                false
            }
        }
    }

    #[inline(always)]
    fn loaded(&mut self, _: &mut GuestCtx<'a>, rt: u8) {
        self.st.load_dest = rt;
    }

    #[inline(always)]
    fn mult_started(&mut self, ctx: &mut GuestCtx<'a>, at: u64) {
        Self::clock_to(ctx, at);
        exec::muldiv_started(ctx, self.st, MulDiv::Mult);
    }

    #[inline(always)]
    fn hilo_stall(&mut self, ctx: &mut GuestCtx<'a>, at: u64) -> u64 {
        Self::clock_to(ctx, at);
        exec::hilo_wait(ctx, self.st);
        ctx.core.cycles() - at
    }

    /// Instruction `k` through `execute`, as a translated instruction ran
    /// before the block loop: retired with its flow's cycles when the
    /// block ends there, else left to the loop's table.
    #[inline(never)]
    fn general(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        regs: &mut Regs,
        code: &BlockCode,
        k: usize,
        pc: u64,
        target: &mut Option<u64>,
    ) -> Option<bool> {
        let i = self.first + k;
        let last = i + 1 >= self.b.insns.len();
        let insn = *self.b.insns.get(i)?;
        self.count(ctx, k);
        self.regs_before(regs, code, k, pc, *target);
        // The interlock was counted before the instruction.
        self.st.load_dest = 0;
        if let Some(e) = self.pending.take() {
            return self.finish(exec::failed(ctx, regs, &e, pc));
        }
        ctx.now = ctx.core.cycles();
        let shared_base = self.shared(k);
        let result = execute(
            regs,
            &mut Xlat {
                ctx,
                st: self.st,
                shared_base,
            },
            insn,
            pc,
        );
        let flow = match result {
            Ok(flow) => flow,
            Err(e) => return self.finish(exec::failed(ctx, regs, &e, pc)),
        };
        regs.advance(flow);
        self.count(ctx, k + 1);
        ctx.core.charge(TIMING.base + exec::extra_cycles(flow));
        if flow == Flow::Wait {
            ctx.vcpu.state = VcpuState::Waiting;
            return self.finish(BlockEnd::Wait);
        }
        if exec::may_write_code(&insn) && ctx.bus.code_gen(self.b.page) != self.b.generation {
            // It wrote its own code: what follows is translated afresh.
            return self.finish(BlockEnd::Lookup);
        }
        if std::mem::take(&mut ctx.vcpu.may_interrupt) {
            let at = regs.pc;
            // The virtual timer too: an MTC0 may enable an IP7 already due.
            if ctx.core.cycles() >= ctx.vcpu.timer_due {
                let lines = ctx.board.irq_lines(ctx.vcpu.index);
                ctx.vcpu.update_interrupts(ctx.core.cycles(), lines);
            }
            engine::deliver_interrupts(ctx, regs);
            if regs.pc != at || ctx.board.has_actions() || ctx.stop.is_some() {
                return self.finish(BlockEnd::Diverted);
            }
        }
        if last {
            let end = exec::block_exit(ctx, regs, self.b);
            return self.finish(end);
        }
        if regs.pc != pc.wrapping_add(4) {
            // A branch-likely annulled its slot, or the block's first
            // instruction was a taken branch's slot: off the straight run,
            // where the block's exit context does not hold.
            return self.finish(BlockEnd::Diverted);
        }
        // Goes on in the loop, whose table has the issue cycle.
        self.early = TIMING.base;
        if let Flow::Taken(t) = flow {
            *target = Some(t);
        }
        None
    }

    #[inline(always)]
    fn access_ends_block(&mut self, ctx: &mut GuestCtx<'a>) -> bool {
        let changed = ctx.bus.code_gen(self.b.page) != self.b.generation;
        if changed {
            self.end = Some(BlockEnd::Lookup);
        }
        changed
    }

    #[inline(always)]
    fn leave(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        regs: &mut Regs,
        code: &BlockCode,
        done: usize,
        next: u64,
    ) {
        self.count(ctx, done);
        let k = done.saturating_sub(1);
        if !code.is_load(k) {
            self.st.load_dest = 0;
        }
        regs.jump_to(next);
        if self.end.is_some() || done < code.len() {
            return;
        }
        if code.is_register_only(k) {
            // A register-only last instruction (never a transfer: one
            // without its slot runs the general path): `ctx.now` at its
            // start, as for any other.
            ctx.now = ctx.core.cycles() - TIMING.base;
        }
        if code.is_access(k) && ctx.bus.code_gen(self.b.page) != self.b.generation {
            self.end = Some(BlockEnd::Lookup);
        } else if self.first + done >= self.b.insns.len() {
            self.end = Some(exec::block_exit(ctx, regs, self.b));
        }
    }
}
