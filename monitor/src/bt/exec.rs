//! Running one translated block against the virtual CPU, with the cost
//! model of translated code (docs/timing.md, "Translated code"):
//! instructions at their native cycles (issue, taken branches, load-use
//! interlocks, multiply/divide latency, as `sim::timing` has them), data
//! accesses through the guest's composed mappings in the real TLB (a miss
//! costs what it costs direct execution), KSEG0/KSEG1 accesses an inline
//! address rewrite, privileged instructions their inline operation.

use std::sync::Arc;

use sim::hv::{
    isa::{Class, Insn, Reg},
    Access, Exception, ExecContext, Flow, MulDiv, Regs, TIMING,
};

use super::block::Block;
use super::run::RunState;
use super::state::Pic;
use super::Spent;
use crate::engine;
use crate::guest::GuestCtx;
use crate::mem::{GuestPhys, MachineAddr};
use crate::obs::MonEvent;

/// How a block left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BlockEnd {
    /// To a target known at translation time: a chained jump, free,
    /// handing on the block's exit context (`Block::exit`).
    Chained,
    /// Chained, but not through the block's own exit, so with no context:
    /// an exception or interrupt delivered (the reflection enters the
    /// vector's translated handler, whose address it keeps per vector), or
    /// an annulled delay slot that left the block early.
    Diverted,
    /// An indirect exit to the target its inline cache held.
    Predicted,
    /// Through the dispatcher: an indirect jump the inline cache missed,
    /// an ERET, code that changed under it.
    Lookup,
    /// The guest executed WAIT.
    Wait,
    /// A store waits for concurrent remapping to copy its page; the PC is
    /// still the store's.
    Blocked,
}

/// Runs block `b` (with the blocks its superblock chains to it, if it has
/// one: `chain`): how the last block run ended, and that block's exit
/// context; `budget_end` is the dispatcher's, which a superblock's
/// boundaries check.
pub(super) fn run_block(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    b: &Arc<Block>,
    st: &mut RunState,
    budget_end: u64,
) -> (BlockEnd, super::block::Ctx) {
    if let Some(sup) = super::chain::take(ctx, st, b) {
        let (end, exit) = super::code::run_chain(ctx, regs, &sup, st, budget_end);
        super::chain::put(st, sup, false);
        return (end, exit);
    }
    let snap = begin_block(ctx, b);
    let (end, insns) = super::code::run_insns(ctx, regs, b, st);
    end_block(ctx, st, b, snap, insns);
    (end, b.exit)
}

/// What `end_block` measures a block's cycles and privileged instructions
/// from.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Snap {
    cycles: u64,
    inline_ops: u64,
    monitor_cycles: u64,
}

/// Block `b` starts: counted (and traced).
#[inline(always)]
pub(super) fn begin_block(ctx: &mut GuestCtx<'_>, b: &Block) -> Snap {
    ctx.wide.bt.stats.blocks_run += 1;
    ctx.trace.now = ctx.core.cycles();
    if ctx.trace.enabled {
        ctx.trace.emit(MonEvent::BtBlock {
            pc: crate::obs::low32(b.pc),
            insns: b.insns.len() as u32,
        });
    }
    Snap {
        cycles: ctx.core.cycles(),
        inline_ops: ctx.wide.bt.stats.inline_ops,
        monitor_cycles: ctx.vcpu.stats.monitor_cycles,
    }
}

/// Block `b`, begun at `snap`, has run `insns` instructions: its cycles
/// counted, the guest's and its region's.
#[inline(always)]
pub(super) fn end_block(
    ctx: &mut GuestCtx<'_>,
    st: &mut RunState,
    b: &Block,
    snap: Snap,
    insns: u64,
) {
    let cycles = ctx.core.cycles() - snap.cycles;
    // Whatever the block's time was not the monitor's (its charges count
    // themselves) was the guest's own: the static costs, taken branches,
    // HI/LO waits.
    let guest = cycles - (ctx.vcpu.stats.monitor_cycles - snap.monitor_cycles);
    ctx.vcpu.stats.guest_cycles += guest;
    ctx.wide.bt.stats.cycles += guest;
    ctx.wide.bt.stats.insns += insns;
    let privileged = ctx.wide.bt.stats.inline_ops != snap.inline_ops;
    st.account(ctx, b.pc, insns, cycles, privileged);
}

/// An instruction at `pc` that raised `e`: the block ends.
pub(super) fn failed(ctx: &mut GuestCtx<'_>, regs: &mut Regs, e: &Exception, pc: u64) -> BlockEnd {
    // A store to a page being copied (concurrent remapping) is no
    // exception: it runs again once the copy is done.
    if std::mem::take(&mut ctx.vcpu.remap_blocked) {
        return BlockEnd::Blocked;
    }
    fault(ctx, regs, e, pc);
    BlockEnd::Diverted
}

/// How block `b`, run to its end, leaves.
pub(super) fn block_exit(ctx: &mut GuestCtx<'_>, regs: &Regs, b: &Block) -> BlockEnd {
    if !b.unchained {
        return BlockEnd::Chained;
    }
    if let Some(target) = b.returns_to {
        // Proved at translation time (`block::returns_to`).
        debug_assert_eq!(regs.pc, target, "an elided return went elsewhere");
        if regs.pc == target {
            return BlockEnd::Chained;
        }
    }
    // The first entry's compare is the single-entry cache's: a hit costs
    // `bt_predict` (charged by the caller), a miss `bt_lookup`; each
    // further entry tried is one compare and branch more.
    let predict = ctx.cost.bt_predict;
    match b.predicts(regs.pc) {
        Pic::Hit(k) => {
            super::charge(ctx, Spent::Predict, predict * k as u64);
            BlockEnd::Predicted
        }
        Pic::Miss(n) => {
            let extra = n.saturating_sub(1) as u64;
            super::charge(ctx, Spent::Predict, predict * extra);
            BlockEnd::Lookup
        }
    }
}

/// The guest-physical RAM address of a KSEG0/KSEG1 access by the guest
/// kernel, which `GuestCtx::translate` would give without a search (the
/// segments are unmapped in kernel mode); `None` for everything else,
/// which takes the general path.
#[inline(always)]
pub(super) fn kseg_ram(ctx: &GuestCtx<'_>, vaddr: u64) -> Option<GuestPhys> {
    engine::kseg_phys(ctx, vaddr).filter(|gpa| gpa.0 < ctx.pmap.size())
}

/// The inline rewrite of a KSEG0/KSEG1 RAM access and its cost, unless
/// the access reuses the previous one's rewrite (`shared`).
#[inline(always)]
pub(super) fn kseg_cost(ctx: &mut GuestCtx<'_>, st: &mut RunState, shared: bool, gpa: GuestPhys) {
    kseg_rewrite(ctx, shared);
    kseg_window(ctx, st, gpa.0);
}

/// The inline rewrite's cost, unless the access reuses the previous one's
/// rewrite (`shared`).
#[inline(always)]
pub(super) fn kseg_rewrite(ctx: &mut GuestCtx<'_>, shared: bool) {
    if !shared {
        super::charge(ctx, Spent::Kseg, ctx.cost.bt_kseg);
    }
}

/// The KSEG0/KSEG1 RAM page that translated code's last access through
/// `kseg_ram` and `kseg_cost` reached, so that the next access to it skips
/// their mode test, the pmap and the window check: for as long as the
/// guest's mode is unchanged (its holder forgets it before anything that
/// may change the mode, the pmap or the ASID: the general path) and the
/// real TLB too (its write count is compared), each would give the same
/// answer and leave the same state (the window pair the last one found).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct KsegPage {
    /// The page's virtual address >> 12 (32-bit, as `kseg_phys`); 0 (a
    /// KUSEG page, never one of these): none.
    vpn: u32,
    /// The page can be written (not write-protected for a copy).
    writable: bool,
    /// `Core::tlb_writes` when its window pair was last found mapped.
    tlb_writes: u64,
    /// Its machine page's address.
    ma: u64,
}

impl KsegPage {
    /// The machine address of an access at `vaddr` to this page, if it is
    /// this page's, a store only where the page can be written.
    #[inline(always)]
    pub(super) fn hit(&self, ctx: &GuestCtx<'_>, vaddr: u64, store: bool) -> Option<MachineAddr> {
        let hit = (vaddr as u32) >> 12 == self.vpn
            && ctx.core.tlb_writes() == self.tlb_writes
            && (self.writable || !store);
        hit.then_some(MachineAddr(self.ma | (vaddr & 0xFFF)))
    }

    /// The page of an access at `vaddr` (`gpa`) that has just taken
    /// `kseg_ram` and `kseg_cost` (its window pair is mapped now).
    #[inline(always)]
    pub(super) fn found(ctx: &GuestCtx<'_>, vaddr: u64, gpa: GuestPhys) -> KsegPage {
        let Some(ma) = ctx.pmap.translate(GuestPhys(gpa.0 & !0xFFF)) else {
            return KsegPage::default();
        };
        KsegPage {
            vpn: (vaddr as u32) >> 12,
            writable: !ctx.pmap.write_protected(gpa),
            tlb_writes: ctx.core.tlb_writes(),
            ma: ma.0,
        }
    }
}

/// The cycles an instruction that ran to `flow` takes beyond its issue.
#[inline(always)]
pub(super) fn extra_cycles(flow: Flow) -> u64 {
    match flow {
        Flow::Taken(_) => TIMING.taken_branch,
        Flow::Annul => TIMING.annulled_slot,
        Flow::Jump(_) => TIMING.eret,
        Flow::Next | Flow::NotTaken | Flow::Wait => 0,
    }
}

/// Whether `insn` may change decoded code: a store, or a device access
/// (a device's DMA); nothing else writes memory.
pub(super) fn may_write_code(insn: &Insn) -> bool {
    matches!(insn.info().class, Class::Load | Class::Store | Class::Cop)
}

/// An exception raised by a translated instruction, delivered with the EPC
/// and BD the hardware would give; charged as direct execution pays for it
/// (the hardware entry and an exit, then the reflection).
fn fault(ctx: &mut GuestCtx<'_>, regs: &mut Regs, e: &Exception, pc: u64) {
    super::charge(ctx, Spent::Fault, TIMING.exception + ctx.cost.exit);
    engine::reflect(ctx, regs, e, pc, regs.delay_slot);
}

/// Where translated code reaches the guest's KSEG0/KSEG1 RAM: guest-physical
/// `gpa` at `KSEG_WINDOW + gpa`, in kseg3, which the guest kernel (in
/// supervisor mode) can never address, so the window is the monitor's.
const KSEG_WINDOW: u32 = 0xE000_0000;

/// A KSEG0/KSEG1 RAM access of translated code: its address is rewritten
/// into the window (`bt_kseg`, one add), whose 8K pairs are composed into
/// the real TLB like any other mapping: a missing pair costs the refill exit
/// a mapped access pays.
#[inline(always)]
fn kseg_window(ctx: &mut GuestCtx<'_>, st: &mut RunState, gpa: u64) {
    // gpa < 512 MB (KSEG0 is 512 MB): exact.
    let wva = KSEG_WINDOW + gpa as u32;
    let masid = ctx.core.cp0().asid();
    if !st.window_mapped(ctx, wva, masid) {
        window_refill(ctx, st, gpa, wva, masid);
    }
}

/// The window pair of `gpa` (at `wva`) is not in the real TLB: composed
/// and installed, at the cost of the refill exit a mapped access pays.
#[inline(never)]
fn window_refill(ctx: &mut GuestCtx<'_>, st: &mut RunState, gpa: u64, wva: u32, masid: u8) {
    use sim::hv::tlb::lo;
    let base = gpa & !0x1FFF;
    let half = |h: u64| {
        ctx.pmap
            .translate(crate::mem::GuestPhys(base + h * 0x1000))
            .map_or(0, |ma| {
                // Machine memory is below 4 GB: exact.
                (((ma.0 >> 12) as u32) << lo::PFN_SHIFT) | lo::D | lo::V | (3 << lo::C_SHIFT)
            })
    };
    let l2 = crate::l2tlb::L2Entry {
        vpn2: wva >> 13,
        guest_asid: 0,
        global: false,
        vtlb_index: 0,
        lo: [half(0), half(1)],
    };
    let index = crate::tlbctl::install(ctx, &l2);
    st.remember(wva, index);
    st.window_found(ctx, wva, masid);
    super::charge(
        ctx,
        Spent::Kseg,
        TIMING.exception + ctx.cost.exit + ctx.cost.l2tlb_refill,
    );
}

/// CP0 registers whose write does more than store the value.
const SIDE_EFFECTS: [u32; 6] = [
    sim::hv::cp0::reg::STATUS,
    sim::hv::cp0::reg::CAUSE,
    sim::hv::cp0::reg::ENTRY_HI,
    sim::hv::cp0::reg::COUNT,
    sim::hv::cp0::reg::COMPARE,
    sim::hv::cp0::reg::WIRED,
];

/// The virtual CPU as translated code sees it.
pub(super) struct Xlat<'c, 'a> {
    pub(super) ctx: &'c mut GuestCtx<'a>,
    pub(super) st: &'c mut RunState,
    /// This access's base was rewritten already (`Block::shared_base`).
    pub(super) shared_base: bool,
}

impl Xlat<'_, '_> {
    /// The address path of a data access and its cost: KSEG0/KSEG1 are
    /// rewritten inline (`bt_kseg`); mapped addresses go through the real
    /// TLB, where a missing composed entry costs the refill exit direct
    /// execution would take (a guest miss is the fault path's).
    fn data(&mut self, vaddr: u64) {
        let ctx = &mut *self.ctx;
        if crate::commpage::covers(ctx, vaddr) {
            return;
        }
        let va = vaddr as u32;
        if (0x8000_0000..0xC000_0000).contains(&va) {
            if !self.shared_base {
                super::charge(ctx, Spent::Kseg, ctx.cost.bt_kseg);
            }
            let gpa = u64::from(va & 0x1FFF_FFFF);
            if gpa < ctx.pmap.size() {
                kseg_window(ctx, self.st, gpa);
            }
            return;
        }
        if va >= 0xE000_0000 {
            return;
        }
        let masid = ctx.core.cp0().asid();
        if !self.st.mapped(ctx, va, masid) && crate::tlbctl::refill(ctx, va) {
            super::charge(ctx, Spent::Fault, TIMING.exception + ctx.cost.exit);
        }
    }

    fn inline_op(&mut self, what: Spent, cycles: u64) {
        self.ctx.wide.bt.stats.inline_ops += 1;
        self.ctx.now = self.ctx.core.cycles();
        super::charge(self.ctx, what, cycles);
    }
}

impl ExecContext for Xlat<'_, '_> {
    fn allow64(&self) -> bool {
        self.ctx.allow64()
    }

    fn cop_usable(&self, n: u8) -> bool {
        self.ctx.cop_usable(n)
    }

    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        if let Some(gpa) = kseg_ram(self.ctx, vaddr) {
            kseg_cost(self.ctx, self.st, self.shared_base, gpa);
            return self.ctx.read_ram(gpa, width, Access::Load);
        }
        self.data(vaddr);
        if crate::commpage::covers(self.ctx, vaddr) {
            return self.ctx.load(vaddr, width);
        }
        // `GuestCtx::load`'s path, its translation remembered.
        let gpa = self.st.guest_phys(self.ctx, vaddr, Access::Load)?;
        self.ctx.read(gpa, width, Access::Load)
    }

    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        if let Some(gpa) = kseg_ram(self.ctx, vaddr) {
            kseg_cost(self.ctx, self.st, self.shared_base, gpa);
            return self.ctx.write_ram(gpa, width, value);
        }
        self.data(vaddr);
        if crate::commpage::covers(self.ctx, vaddr) {
            return self.ctx.store(vaddr, width, value);
        }
        let gpa = self.st.guest_phys(self.ctx, vaddr, Access::Store)?;
        self.ctx.write(gpa, width, value)
    }

    fn load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        self.data(vaddr);
        self.ctx.load_linked(vaddr, width)
    }

    fn store_conditional(&mut self, vaddr: u64, width: u8, value: u64) -> Result<bool, Exception> {
        self.data(vaddr);
        self.ctx.store_conditional(vaddr, width, value)
    }

    fn read_cp0(&mut self, reg: u32) -> u64 {
        self.inline_op(Spent::Cp0, self.ctx.cost.bt_mfc0);
        self.ctx.read_cp0(reg)
    }

    fn write_cp0(&mut self, reg: u32, value: u64, dword: bool) {
        // A plain register is a store into the VCPU; one with side effects
        // (interrupts, the ASID, the timer, Random) adds its check.
        let cost = if SIDE_EFFECTS.contains(&reg) {
            self.ctx.cost.bt_mtc0
        } else {
            0
        };
        self.inline_op(Spent::Cp0, cost);
        self.ctx.write_cp0(reg, value, dword);
    }

    fn tlbr(&mut self) {
        self.inline_op(Spent::Tlb, self.ctx.cost.bt_tlb);
        self.ctx.tlbr();
    }

    fn tlbwi(&mut self) {
        self.inline_op(Spent::Tlb, self.ctx.cost.bt_tlb);
        self.ctx.tlbwi();
    }

    fn tlbwr(&mut self) {
        self.inline_op(Spent::Tlb, self.ctx.cost.bt_tlb);
        self.ctx.tlbwr();
    }

    fn tlbp(&mut self) {
        self.inline_op(Spent::Tlb, self.ctx.cost.bt_tlb);
        self.ctx.tlbp();
    }

    fn eret(&mut self) -> u64 {
        self.inline_op(Spent::Eret, self.ctx.cost.bt_eret);
        self.ctx.eret()
    }

    fn cache(&mut self, op: u32, vaddr: u64) -> Result<(), Exception> {
        self.ctx.cache(op, vaddr)
    }

    fn loaded(&mut self, rt: Reg) {
        // rt is in 0..32: exact.
        self.st.load_dest = rt.number() as u8;
    }

    fn muldiv(&mut self, kind: MulDiv) {
        muldiv_started(self.ctx, self.st, kind);
    }

    fn hilo_read(&mut self) {
        hilo_wait(self.ctx, self.st);
    }
}

/// A multiplication or division issued now: HI and LO are ready after its
/// latency.
#[inline(always)]
pub(super) fn muldiv_started(ctx: &GuestCtx<'_>, st: &mut RunState, kind: MulDiv) {
    let latency = match kind {
        MulDiv::Mult => TIMING.mult,
        MulDiv::Div => TIMING.div,
        MulDiv::Dmult => TIMING.dmult,
        MulDiv::Ddiv => TIMING.ddiv,
    };
    st.hilo_ready = ctx.core.cycles() + TIMING.base + latency;
}

/// A read of HI or LO waits for the multiplication or division in flight.
#[inline(always)]
pub(super) fn hilo_wait(ctx: &mut GuestCtx<'_>, st: &RunState) {
    let ready = st.hilo_ready.saturating_sub(TIMING.base);
    let now = ctx.core.cycles();
    if ready > now {
        // The guest's own time (`run_block` counts it so).
        ctx.core.charge(ready - now);
    }
}
