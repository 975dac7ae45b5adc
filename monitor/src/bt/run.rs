//! The state a run of translated code carries from one instruction and
//! one block to the next, kept per VCPU from one run to the next
//! (`exec` runs the blocks against it).

use std::sync::Arc;

use sim::hv::cp0::status;
use sim::hv::{Access, Exception, Lookup};

use super::block::{Block, Ctx};
use crate::guest::GuestCtx;
use crate::mem::GuestPhys;

/// What one run of translated code carries from one instruction and one
/// block to the next: the native pipeline state (the real CPU's
/// interlocks, which translated code also meets) and the host's caches of
/// things that cannot change under the run, so that a block costs the host
/// no hashing and an access no search of the real TLB. The caches are kept
/// per VCPU from one run to the next (`Bt::runs`; a kernel that traps often
/// runs translated code in many short runs): each entry is checked against
/// what it depends on at every use, and `begin` drops what such a check
/// cannot see.
#[derive(Debug)]
pub(super) struct RunState {
    pub(super) load_dest: u8,
    pub(super) hilo_ready: u64,
    /// Real-TLB pairs known to be present: (VA[31:13] + 1, index), by
    /// the pair's low bits; re-checked against the entry at every use.
    present: [(u32, u8); PRESENT_SLOTS],
    /// Blocks found in this run, by PC (`block::find` checks their key),
    /// each with the `epoch` its address was last translated in.
    pub(super) blocks: [Option<(Arc<Block>, u64)>; BLOCK_SLOTS],
    /// Counts the stretches of a run in which a guest PC's translation to
    /// a machine page cannot change (`block::find`): a new one starts with
    /// each run (the pmap may have changed between runs) and after
    /// anything that may change the mode or the guest's mappings (a
    /// privileged instruction, an exception, an interrupt, an engine
    /// step).
    pub(super) epoch: u64,
    /// Region accounting not yet handed to `region::ran`: (page PC,
    /// instructions, cycles) of consecutive privileged-free blocks of one
    /// page whose accounting decides nothing (see `account`).
    pending: Option<(u64, u64, u64)>,
    /// Guest translations through the virtual TLB found in this run (see
    /// `guest_phys`).
    vtlb: [Vtlb; VTLB_SLOTS],
    /// The context the last block's chained exit hands on (`Ctx`).
    pub(super) next: Ctx,
    /// The VCPU's `tlb_writes` when `vtlb` was last emptied: a guest TLB
    /// write by any path (inline, an exit, the engine) empties it.
    tlb_writes: u64,
    /// The cache's `Cache::flushes` when `blocks` was last emptied: a
    /// flush by another VCPU's run empties it too.
    flushes: u64,
    /// The KSEG0 window pair this run last found in the real TLB: its
    /// VA[31:13] + 1 (0: none), the machine ASID and the CPU's
    /// `Core::tlb_writes` then. While neither changed it is still there,
    /// so a run of accesses to one pair asks the TLB once (`window_mapped`).
    window: (u32, u8, u64),
    /// Superblocks of the blocks in `blocks` (`chain`).
    pub(super) supers: super::chain::Supers,
}

/// A successful translation of one 4K guest-virtual page, valid while
/// Status's mode bits (KSU, EXL, ERL) and the ASID are the ones it was
/// made under and the virtual TLB is not written: all `tlb::translate`
/// reads. (Not the rest of Status, which a kernel writes whenever it masks
/// interrupts, nor the rest of EntryHi, whose VPN2 changes at every TLB
/// miss.)
#[derive(Clone, Copy, Debug, Default)]
struct Vtlb {
    /// VA[31:12] + 1 (0: empty).
    tag: u32,
    /// Status & `MODE_BITS`.
    status: u32,
    asid: u8,
    /// Guest-physical page base.
    page: u64,
    writable: bool,
}

const VTLB_SLOTS: usize = 64;
/// The Status bits a translation depends on (`Cp0::mode`, `Cp0::erl`).
const MODE_BITS: u32 = status::KSU_MASK | status::EXL | status::ERL;
const PRESENT_SLOTS: usize = 64;
pub(super) const BLOCK_SLOTS: usize = 256;

impl Default for RunState {
    fn default() -> RunState {
        RunState {
            load_dest: 0,
            hilo_ready: 0,
            present: [(0, 0); PRESENT_SLOTS],
            blocks: std::array::from_fn(|_| None),
            epoch: 0,
            pending: None,
            vtlb: [Vtlb::default(); VTLB_SLOTS],
            next: Ctx::default(),
            tlb_writes: 0,
            flushes: 0,
            window: (0, 0, 0),
            supers: super::chain::Supers::default(),
        }
    }
}

impl RunState {
    /// Readies a kept state for a new run: the pipeline state is the
    /// previous run's no longer (the guest ran elsewhere since: its cost
    /// there is direct execution's or the engine's), and blocks dropped by
    /// a flush of the cache since are forgotten.
    pub(super) fn begin(&mut self, ctx: &GuestCtx<'_>) {
        (self.load_dest, self.hilo_ready, self.next) = (0, 0, Ctx::default());
        self.pending = None;
        // The VCPU may run on another CPU now, whose TLB count means
        // nothing to this one.
        self.window = (0, 0, 0);
        self.epoch += 1;
        if self.flushes != ctx.wide.bt.cache.flushes {
            self.drop_blocks(ctx.wide.bt.cache.flushes);
        }
    }

    /// Forgets the blocks found so far: the cache was emptied (its
    /// `flushes` is now `flushes`).
    pub(super) fn drop_blocks(&mut self, flushes: u64) {
        self.blocks.iter_mut().for_each(|e| *e = None);
        self.supers.clear();
        self.flushes = flushes;
    }

    /// Whether the real TLB maps `va` under `masid`, as `Tlb::lookup`
    /// would say, looking at one remembered entry first.
    pub(super) fn mapped(&mut self, ctx: &GuestCtx<'_>, va: u32, masid: u8) -> bool {
        let tag = (va >> 13) + 1;
        let slot = (va >> 13) as usize % PRESENT_SLOTS;
        if let Some(&(t, i)) = self.present.get(slot) {
            let hit = ctx.core.tlb().entries.get(usize::from(i));
            if t == tag && hit.is_some_and(|e| e.matches(va, masid)) {
                return true;
            }
        }
        match ctx.core.tlb().lookup(va, masid) {
            Lookup::Miss => false,
            Lookup::Hit(h) | Lookup::Multiple(h) => {
                self.remember(va, h.index);
                true
            }
        }
    }

    /// `mapped` for a pair of the KSEG0 window, which a run of accesses
    /// through one pointer meets again and again: answered without a look
    /// at the TLB while the pair is the one last found and the TLB and
    /// the ASID are unchanged since. `found` records a pair just installed.
    #[inline(always)]
    pub(super) fn window_mapped(&mut self, ctx: &GuestCtx<'_>, va: u32, masid: u8) -> bool {
        let key = ((va >> 13) + 1, masid, ctx.core.tlb_writes());
        if self.window == key {
            return true;
        }
        self.window_looked_up(ctx, va, masid, key)
    }

    #[inline(never)]
    fn window_looked_up(
        &mut self,
        ctx: &GuestCtx<'_>,
        va: u32,
        masid: u8,
        key: (u32, u8, u64),
    ) -> bool {
        let hit = self.mapped(ctx, va, masid);
        if hit {
            self.window = key;
        }
        hit
    }

    /// The KSEG0 window pair of `va` was just installed in the real TLB.
    pub(super) fn window_found(&mut self, ctx: &GuestCtx<'_>, va: u32, masid: u8) {
        self.window = ((va >> 13) + 1, masid, ctx.core.tlb_writes());
    }

    pub(super) fn remember(&mut self, va: u32, index: usize) {
        let slot = (va >> 13) as usize % PRESENT_SLOTS;
        if let (Some(e), Ok(i)) = (self.present.get_mut(slot), u8::try_from(index)) {
            *e = ((va >> 13) + 1, i);
        }
    }

    /// `GuestCtx::translate` of guest-kernel address `vaddr`, looked up
    /// first among the translations kept: the virtual TLB is searched
    /// (all 48 entries, for the multiple-match check) only for a page not
    /// seen under the current Status and ASID since the last TLB write.
    /// Failures are not remembered: the general path raises them.
    pub(super) fn guest_phys(
        &mut self,
        ctx: &GuestCtx<'_>,
        vaddr: u64,
        access: Access,
    ) -> Result<GuestPhys, Exception> {
        let va = vaddr as u32;
        let tag = (va >> 12) + 1;
        let slot = (va >> 12) as usize % VTLB_SLOTS;
        if self.tlb_writes != ctx.vcpu.tlb_writes {
            self.vtlb = [Vtlb::default(); VTLB_SLOTS];
            self.tlb_writes = ctx.vcpu.tlb_writes;
        }
        let (status, asid) = (ctx.vcpu.cp0.status & MODE_BITS, ctx.vcpu.cp0.asid());
        if let Some(e) = self.vtlb.get(slot) {
            if e.tag == tag
                && e.status == status
                && e.asid == asid
                && (e.writable || access != Access::Store)
            {
                return Ok(GuestPhys(e.page | u64::from(va & 0xFFF)));
            }
        }
        let t = sim::hv::tlb::translate(&ctx.vcpu.cp0, &ctx.vcpu.tlb, va, access)?;
        if let Some(e) = self.vtlb.get_mut(slot) {
            *e = Vtlb {
                tag,
                status,
                asid,
                page: t.pa & !0xFFF,
                writable: t.writable,
            };
        }
        Ok(GuestPhys(t.pa))
    }

    /// Hands the batched region accounting to `region::ran`.
    pub(super) fn flush(&mut self, ctx: &mut GuestCtx<'_>) {
        if let Some((pc, insns, cycles)) = self.pending.take() {
            super::region::ran(ctx, pc, insns, cycles, false);
        }
    }

    /// `region::ran` for a block, batched while it only adds to counters:
    /// a privileged-free block whose page cannot switch back to direct
    /// execution (KSEG0/KSEG1 code, or `exec=translate`). Sums of such
    /// calls are the calls, and nothing reads the counters mid-run.
    pub(super) fn account(
        &mut self,
        ctx: &mut GuestCtx<'_>,
        pc: u64,
        insns: u64,
        cycles: u64,
        privileged: bool,
    ) {
        let decides = ctx.wide.bt.exec == super::Exec::Adaptive
            && crate::guest::directly_executable(pc, ctx.vcpu.mode());
        if privileged || decides {
            self.flush(ctx);
            super::region::ran(ctx, pc, insns, cycles, privileged);
            return;
        }
        match &mut self.pending {
            Some((p, i, c)) if super::state::page_of(*p) == super::state::page_of(pc) => {
                *i += insns;
                *c += cycles;
            }
            _ => {
                self.flush(ctx);
                self.pending = Some((pc, insns, cycles));
            }
        }
    }
}
