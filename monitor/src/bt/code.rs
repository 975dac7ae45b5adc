//! A translated block's instructions through tier 2's block loop
//! (`sim::hv::run_block`), against the virtual CPU: the loop has the
//! micro-ops, the static costs (issue cycles and load-use stalls summed
//! when the block is built) and one retire per block; this module is the
//! virtual CPU it runs on (`sim::hv::BlockCtx`): KSEG0/KSEG1 loads and
//! stores with their inline rewrite, the multiplier's timing, the general
//! path through `execute` and how a block ends. Cycles, counters and
//! traces are those of running each instruction through `execute`
//! (docs/translation.md, "How translated code runs fast"; its round:
//! docs/history/translation.md, "Fifth round").

use std::marker::PhantomData;

use sim::hv::{
    execute, Access, BlockCode, BlockCtx, Boundary, Exception, Flow, MulDiv, Regs, TIMING,
};

use super::block::{Block, Ctx};
use super::chain::Super;
use super::exec::{self, BlockEnd, KsegPage, Xlat};
use super::run::RunState;
use crate::engine;
use crate::guest::GuestCtx;
use crate::mem::{GuestPhys, MachineAddr};
use crate::vcpu::VcpuState;

/// Runs block `b`'s instructions; how it ended and the instructions it
/// retired.
pub(super) fn run_insns(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    b: &Block,
    st: &mut RunState,
) -> (BlockEnd, u64) {
    let mut g = Guest::new(st, b, regs.delay_slot, None);
    let mut pc = b.pc;
    for (n, code) in b.code.iter().enumerate() {
        g.counted = 0;
        g.run_part(ctx, regs, code, pc, n == 0);
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

/// Runs superblock `sup` (`chain`), the dispatcher's `budget_end` and
/// `quiet` count checked at its boundaries: how the last block it ran
/// ended, that block's exit context, and whether the superblock is stale
/// (a block it holds is no longer the one the dispatcher would find).
pub(super) fn run_chain(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    sup: &Super,
    st: &mut RunState,
    budget_end: u64,
) -> (BlockEnd, Ctx) {
    let Some(head) = sup.blocks.first() else {
        return (BlockEnd::Lookup, Ctx::default());
    };
    let snap = exec::begin_block(ctx, head);
    let mut g = Guest::new(st, head, regs.delay_slot, Some((sup, budget_end)));
    g.run_part(ctx, regs, &sup.code, head.pc, true);
    // The loop runs it again itself where it can (`BlockCtx::again`).
    while g.reruns(ctx, regs) {
        g.run_part(ctx, regs, &sup.code, head.pc, false);
    }
    let passed = g.passed + g.cur as u64;
    let end = g.end.unwrap_or(BlockEnd::Lookup);
    let (exit, retired) = (g.b.exit, g.retired);
    // The blocks after the first, begun; all of them ended: the sums of
    // what `exec::run_block` counts per block (one page, no privileged
    // instruction, a region that only sums: `chain::take`).
    ctx.wide.bt.stats.blocks_run += passed;
    ctx.wide.bt.stats.superblocks += 1;
    exec::end_block(ctx, st, head, snap, retired);
    (end, exit)
}

/// The dispatcher's checks before a chained block, which finds it and
/// goes on only if none acts (`keeps` holds in a superblock's page:
/// `chain::take`): the clock where the block begins, if so.
#[inline(always)]
fn dispatcher_goes_on(ctx: &mut GuestCtx<'_>, budget_end: u64) -> bool {
    let now = ctx.core.cycles();
    if now >= budget_end
        || now >= ctx.vcpu.timer_due
        || ctx.vcpu.may_interrupt
        || ctx.wide.board.has_actions()
        || ctx.stop.is_some()
    {
        return false;
    }
    ctx.now = now;
    ctx.trace.now = now;
    true
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
    /// The KSEG0/KSEG1 page micro-ops reached last, forgotten by the
    /// general path (which may change the mode or the ASID).
    kseg: KsegPage,
    /// Where the block starts in the part the loop runs (a superblock's
    /// block: not 0).
    base: usize,
    /// A superblock's: its blocks, which of them `b` is, bit k a block's
    /// start (0: no superblock), and the dispatcher's budget.
    sup: Option<&'r Super>,
    cur: usize,
    /// A superblock's blocks begun after its first, up to its last run.
    passed: u64,
    /// The clock below which the dispatcher's checks would pass, as they
    /// did at a boundary since the last general path (0: look again).
    quiet_until: u64,
    starts: u32,
    budget_end: u64,
    ctx: PhantomData<fn(&mut GuestCtx<'a>)>,
}

impl<'r, 'a> Guest<'r, 'a> {
    fn new(
        st: &'r mut RunState,
        b: &'r Block,
        entered_in_slot: bool,
        sup: Option<(&'r Super, u64)>,
    ) -> Self {
        Guest {
            st,
            b,
            first: 0,
            counted: 0,
            retired: 0,
            end: None,
            pending: None,
            early: 0,
            entered_in_slot,
            kseg: KsegPage::default(),
            base: 0,
            sup: sup.map(|s| s.0),
            cur: 0,
            passed: 0,
            quiet_until: 0,
            starts: sup.map_or(0, |s| s.0.starts),
            budget_end: sup.map_or(0, |s| s.1),
            ctx: PhantomData,
        }
    }

    /// Runs `code` from `pc` through the block loop; `first` if it is the
    /// block's first part (entered from the dispatcher).
    fn run_part(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        regs: &mut Regs,
        code: &BlockCode,
        pc: u64,
        first: bool,
    ) {
        let c0 = self.entered(ctx, code);
        let vbase = pc & !0xFFF;
        let mut from = (0, c0, None);
        if first && (ctx.vcpu.may_interrupt || regs.delay_slot) {
            // An interrupt let in before the block (by a reflection that
            // ended the previous one) is looked at after its first
            // instruction, and a block entered at a delay slot (its branch
            // ended the previous block at a page's end) may leave its
            // straight run: the general path runs that instruction.
            let mut target = None;
            if self.general(ctx, regs, code, 0, pc, &mut target).is_some() {
                return;
            }
            from = (1, self.clock(ctx), target);
        }
        sim::hv::run_block(self, ctx, regs, code, vbase, from);
    }
}

impl<'r> Guest<'r, '_> {
    /// `code` begins: the stall of its first instruction on the load that
    /// ended what ran before (the guest's own time) paid; the clock.
    #[inline(always)]
    fn entered(&mut self, ctx: &mut GuestCtx<'_>, code: &BlockCode) -> u64 {
        if self.st.load_dest != 0 {
            ctx.core.charge(code.carried_stall(self.st.load_dest));
            self.st.load_dest = 0;
        }
        ctx.core.cycles()
    }

    /// Whether the superblock, which has ended, runs again from its first
    /// block: it ended chained to itself (a loop whose body it is: the
    /// dispatcher would find its first block again, in the same context)
    /// and the dispatcher would go on. If so, its blocks are counted and it
    /// starts again.
    #[inline(always)]
    fn reruns(&mut self, ctx: &mut GuestCtx<'_>, regs: &Regs) -> bool {
        let Some(head) = self.sup.and_then(|s| s.blocks.first()) else {
            return false;
        };
        let again = self.end == Some(BlockEnd::Chained)
            && regs.pc == head.pc
            && self.b.exit == head.entry
            && self.dispatcher_goes_on(ctx);
        if again {
            self.passed += self.cur as u64 + 1;
            self.restart(head);
        }
        again
    }

    /// `dispatcher_goes_on`, whose answer holds below the budget's end
    /// and the virtual timer once it went on: only the general path changes
    /// the timer, the interrupt state, the board or a stop in between.
    #[inline(always)]
    fn dispatcher_goes_on(&mut self, ctx: &mut GuestCtx<'_>) -> bool {
        let now = ctx.core.cycles();
        if now >= self.quiet_until {
            if !dispatcher_goes_on(ctx, self.budget_end) {
                return false;
            }
            self.quiet_until = self.budget_end.min(ctx.vcpu.timer_due);
        }
        ctx.now = now;
        ctx.trace.now = now;
        true
    }

    /// A superblock from its first block again, `head`, which its last
    /// chained to.
    fn restart(&mut self, head: &'r Block) {
        self.b = head;
        self.cur = 0;
        self.base = 0;
        self.first = 0;
        self.counted = 0;
        self.end = None;
        self.entered_in_slot = false;
    }

    /// Instruction `k` of the part the loop runs, as an index in `b`.
    #[inline(always)]
    fn index(&self, k: usize) -> usize {
        self.first + k - self.base
    }

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
        let i = self.index(k);
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
        if self.index(k) == 0 && self.entered_in_slot {
            return;
        }
        regs.pc = pc;
        regs.npc = target.unwrap_or(pc.wrapping_add(4));
        regs.delay_slot = code.is_slot(k);
    }

    /// Where a micro-op's aligned access at `ea` (a store if `store`), at
    /// cycle `at` of instruction `k`, reaches the guest's KSEG0/KSEG1 RAM,
    /// its rewrite (and, on a new page, its window) paid, what that costs
    /// beyond the instruction added to `extra`. `None`: not KSEG0/KSEG1
    /// RAM, for the general path.
    #[inline(always)]
    fn kseg_target(
        &mut self,
        ctx: &mut GuestCtx<'_>,
        (k, at): (usize, u64),
        ea: u64,
        store: bool,
        extra: &mut u64,
    ) -> Option<KsegTarget> {
        if let Some(ma) = self.kseg.hit(ctx, ea, store) {
            Self::clock_to(ctx, at);
            exec::kseg_rewrite(ctx, self.shared(k));
            *extra += ctx.core.cycles() - at;
            return Some(KsegTarget::Remembered(ma));
        }
        let gpa = exec::kseg_ram(ctx, ea)?;
        self.kseg_page(ctx, (k, at), ea, gpa, extra);
        Some(KsegTarget::Found(gpa))
    }

    /// A micro-op's KSEG0/KSEG1 RAM access at `ea` (`gpa`) that `kseg`
    /// does not hold, at cycle `at` of instruction `k`: the rewrite and
    /// window paid (what they cost beyond the instruction in `extra`), its
    /// page remembered. (Out of line: the mapped accesses of a kernel like
    /// kestrel's leave before it, at `kseg_ram`'s inline test.)
    #[inline(never)]
    fn kseg_page(
        &mut self,
        ctx: &mut GuestCtx<'_>,
        (k, at): (usize, u64),
        ea: u64,
        gpa: GuestPhys,
        extra: &mut u64,
    ) {
        Self::clock_to(ctx, at);
        exec::kseg_cost(ctx, self.st, self.shared(k), gpa);
        *extra += ctx.core.cycles() - at;
        self.kseg = KsegPage::found(ctx, ea, gpa);
    }

    /// The clock at cycle `at` (it only goes forward).
    fn clock_to(ctx: &mut GuestCtx<'_>, at: u64) {
        let now = ctx.core.cycles();
        debug_assert!(at >= now, "the clock went back: {now} -> {at}");
        ctx.core.charge(at.saturating_sub(now));
        ctx.now = at;
    }
}

/// Where a KSEG0/KSEG1 access goes ([`Guest::kseg_target`]).
enum KsegTarget {
    /// The remembered page's machine address.
    Remembered(MachineAddr),
    /// The guest-physical address of a page just remembered.
    Found(GuestPhys),
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
        let read = match self.kseg_target(ctx, (k, at), ea, false, extra)? {
            KsegTarget::Remembered(ma) => ctx.read_machine(ma, width, Access::Load),
            KsegTarget::Found(gpa) => ctx.read_ram(gpa, width, Access::Load),
        };
        match read {
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
        let written = match self.kseg_target(ctx, (k, at), ea, true, extra) {
            Some(KsegTarget::Remembered(ma)) => ctx.write_machine(ma, width, value),
            Some(KsegTarget::Found(gpa)) => ctx.write_ram(gpa, width, value),
            None => return false,
        };
        match written {
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
        self.kseg = KsegPage::default();
        self.quiet_until = 0;
        let i = self.index(k);
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
                let lines = ctx.wide.board.irq_lines(ctx.vcpu.index);
                ctx.vcpu.update_interrupts(ctx.core.cycles(), lines);
            }
            engine::deliver_interrupts(ctx, regs);
            if regs.pc != at || ctx.wide.board.has_actions() || ctx.stop.is_some() {
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
        let block_end = self.index(done) >= self.b.insns.len();
        if self.end.is_some() || (done < code.len() && !block_end) {
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
        } else if block_end {
            self.end = Some(exec::block_exit(ctx, regs, self.b));
        }
    }

    const BOUNDARIES: bool = true;

    /// The superblock's end: left, and run again if it chains to itself
    /// (`reruns`) as `run_chain` would run it, without leaving the loop.
    #[inline(always)]
    fn again(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        regs: &mut Regs,
        code: &BlockCode,
        done: usize,
        next: u64,
    ) -> Option<u64> {
        self.leave(ctx, regs, code, done, next);
        if !self.reruns(ctx, regs) {
            return None;
        }
        Some(self.entered(ctx, code))
    }

    #[inline(always)]
    fn next_boundary(&self, k: usize) -> usize {
        let ahead = self.starts.checked_shr(k as u32).unwrap_or(0);
        if ahead == 0 {
            usize::MAX
        } else {
            k + ahead.trailing_zeros() as usize
        }
    }

    /// Block `cur` of the superblock has run to its end, chained: on into
    /// the next one, or out where the dispatcher would do more than find
    /// it (the loop then leaves block `cur` as any block is left). What
    /// ending one block and beginning the next adds to counters is summed
    /// over the superblock (`run_chain`): nothing reads it in between.
    #[inline(always)]
    fn boundary(
        &mut self,
        ctx: &mut GuestCtx<'a>,
        regs: &mut Regs,
        _code: &BlockCode,
        k: usize,
        pc: u64,
    ) -> Boundary {
        if self.b.returns_to.is_some_and(|t| t != regs.gpr[31]) {
            // Not reached: the return was proved (`block::returns_to`);
            // the dispatcher's path if it were.
            return Boundary::Leave(regs.gpr[31]);
        }
        let Some(nb) = self.sup.and_then(|s| s.blocks.get(self.cur + 1)) else {
            return Boundary::Leave(pc);
        };
        if !self.dispatcher_goes_on(ctx) {
            return Boundary::Leave(pc);
        }
        self.b = nb;
        self.cur += 1;
        self.base = k;
        self.first = 0;
        self.entered_in_slot = false;
        Boundary::On
    }
}
