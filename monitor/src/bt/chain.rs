//! Superblocks of translated blocks: a run of a translator's blocks of one
//! page, each reached from the one before through a chained exit whose target
//! is known at translation time (a not-taken conditional branch's
//! fall-through, a direct jump, a leaf's proved return), run by tier 2's
//! block loop in one call instead of one trip through the dispatcher per
//! block (docs/translation.md, "Superblocks of translated blocks"). The
//! translator's blocks stay what the modelled machine counts: at each
//! boundary the loop hands over to `code::Guest::boundary`, which makes the
//! dispatcher's checks before the next block (the budget, the timer, the
//! board) and stops the superblock wherever the dispatcher would do anything
//! but find it; the counters a block adds to are summed over the superblock.
//! Only when tracing is off: a traced run prints a line per block from the
//! dispatcher.

use std::sync::Arc;

use sim::hv::isa::{Class, Op};
use sim::hv::BlockCode;

use super::block::{self, Block, Ctx};
use super::run::{RunState, BLOCK_SLOTS};
use crate::guest::GuestCtx;

/// A superblock: the translator's blocks it runs, in order, as one of tier
/// 2's blocks.
#[derive(Debug)]
pub(super) struct Super {
    /// The blocks; the first is the one it is found by.
    pub(super) blocks: Vec<Arc<Block>>,
    /// Bit k: a block (not the first) starts at instruction k of `code`.
    pub(super) starts: u32,
    pub(super) code: BlockCode,
    /// The run's epoch in which each block was last the dispatcher's.
    epoch: u64,
}

/// Times a block's superblock is looked for without finding a successor
/// before it is left alone (its successors may not have run yet).
const TRIES: u8 = 4;

/// A run's superblocks, by their first block's PC as the run's block table.
#[derive(Debug)]
pub(super) struct Supers {
    slots: Vec<Option<Slot>>,
}

#[derive(Debug)]
struct Slot {
    head: Arc<Block>,
    /// `None` while no successor was found (`tries` so far).
    sup: Option<Box<Super>>,
    tries: u8,
}

impl Default for Supers {
    fn default() -> Supers {
        Supers {
            slots: (0..BLOCK_SLOTS).map(|_| None).collect(),
        }
    }
}

impl Supers {
    /// Forgets them all (the cache was emptied).
    pub(super) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

/// The superblock that starts with block `b`, taken out of the run's table
/// (`put` hands it back), built if none is and `b`'s successors have run
/// in this epoch; each of its blocks the one the dispatcher would find now.
/// `None` if there is none (run `b` alone), and always when tracing (a
/// line per block) or where a block's region accounting may switch its
/// page's policy or the run may leave translation (`keeps`): a superblock
/// runs only where neither can happen, KSEG0/KSEG1 code or `exec=translate`.
pub(super) fn take(ctx: &GuestCtx<'_>, st: &mut RunState, b: &Arc<Block>) -> Option<Box<Super>> {
    let decides = ctx.wide.bt.exec == super::Exec::Adaptive
        && crate::guest::directly_executable(b.pc, ctx.vcpu.mode());
    if ctx.trace.enabled || decides || !super::wants(ctx, b.pc) {
        return None;
    }
    let found = st.supers.slots.get_mut(slot(b.pc))?;
    let mut sup = match found {
        Some(s) if Arc::ptr_eq(&s.head, b) => match s.sup.take() {
            Some(sup) => sup,
            None if s.tries >= TRIES => return None,
            None => {
                s.tries += 1;
                Box::new(build(ctx, st, b)?)
            }
        },
        _ => {
            *found = Some(Slot {
                head: Arc::clone(b),
                sup: None,
                tries: 1,
            });
            Box::new(build(ctx, st, b)?)
        }
    };
    if sup.epoch != st.epoch {
        // A new run, or the mode or mappings may have changed: each block
        // must be the one the dispatcher finds (it has found them again).
        for nb in sup.blocks.iter().skip(1) {
            if let Err(stale) = st.is_current(ctx, nb) {
                put(st, sup, stale);
                return None;
            }
        }
        sup.epoch = st.epoch;
    }
    Some(sup)
}

/// Hands superblock `sup` back to the run's table, unless `stale` (one of
/// its blocks is no longer the one the dispatcher would find: it is built
/// again next time).
pub(super) fn put(st: &mut RunState, sup: Box<Super>, stale: bool) {
    let Some(head) = sup.blocks.first() else {
        return;
    };
    if let Some(Some(s)) = st.supers.slots.get_mut(slot(head.pc)) {
        if Arc::ptr_eq(&s.head, head) {
            if stale {
                s.tries = 0;
            } else {
                s.sup = Some(sup);
            }
        }
    }
}

fn slot(pc: u64) -> usize {
    // Masked to the table's size: exact.
    (pc >> 2) as usize % BLOCK_SLOTS
}

/// Block `head` and the blocks its chained exits reach, as long as each is
/// the one the dispatcher would find now (`RunState::current`), in the
/// same page, of micro-ops only, within tier 2's 32 instructions.
fn build(ctx: &GuestCtx<'_>, st: &RunState, head: &Arc<Block>) -> Option<Super> {
    const MAX: usize = 32;
    let fits = |b: &Block| matches!(b.code.as_slice(), [c] if c.all_micro_ops());
    if !fits(head) {
        return None;
    }
    let vpage = head.pc & !0xFFF;
    let mut blocks = vec![Arc::clone(head)];
    let mut total = head.insns.len();
    let mut followed = Vec::new();
    while let Some(b) = blocks.last() {
        let Some((pc, follow)) = successor(b) else {
            break;
        };
        let Some(nb) = st.current(ctx, pc, b.exit) else {
            break;
        };
        let ok = nb.page == head.page
            && nb.pc & !0xFFF == vpage
            && total + nb.insns.len() <= MAX
            && fits(&nb);
        if !ok {
            break;
        }
        total += nb.insns.len();
        followed.push(follow);
        blocks.push(nb);
    }
    if blocks.len() < 2 {
        return None;
    }
    followed.push(false);
    let parts: Vec<(&[sim::hv::isa::Insn], u64, bool)> = blocks
        .iter()
        .zip(&followed)
        .map(|(b, f)| (b.insns.as_slice(), b.pc, *f))
        .collect();
    let code = BlockCode::chain(&parts);
    let mut starts = 0u32;
    let mut at = 0;
    for b in blocks.iter().take(blocks.len() - 1) {
        at += b.insns.len();
        starts |= 1 << at;
    }
    Some(Super {
        blocks,
        starts,
        code,
        epoch: st.epoch,
    })
}

/// Where block `b`, run to its end, goes through a chained exit whose
/// target is known now, and whether that is a jump the superblock follows
/// (else the fall-through of a conditional branch not taken, or of a block
/// without a transfer).
fn successor(b: &Block) -> Option<(u64, bool)> {
    let n = b.insns.len() as u64;
    let fall = b.pc.wrapping_add(4 * n);
    let Some(c) = block::control(&b.insns) else {
        let last = b.insns.last()?;
        let transfer = matches!(last.info().class, Class::Branch | Class::Jump);
        return (!transfer && !b.unchained).then_some((fall, false));
    };
    let t = b.insns.get(c)?;
    match t.op {
        Op::J | Op::Jal => {
            let slot = b.pc.wrapping_add(4 * c as u64 + 4);
            Some(((slot & !0x0FFF_FFFF) | u64::from(t.imm << 2), true))
        }
        // A proved leaf return whose slot leaves `$ra` as the `jr` read it
        // (the boundary checks the target against it).
        Op::Jr => {
            let slot = b.insns.get(c + 1)?;
            let to = b.returns_to?;
            (!block::writes_reg(slot, block::RA)).then_some((to, true))
        }
        _ if t.info().class == Class::Branch && !b.unchained => Some((fall, false)),
        _ => None,
    }
}

impl RunState {
    /// The block the dispatcher would find at `pc` for context `entry`
    /// from the run's table (`block::find`'s first check, which hands it
    /// back unchanged), if it would find it there.
    pub(super) fn current(&self, ctx: &GuestCtx<'_>, pc: u64, entry: Ctx) -> Option<Arc<Block>> {
        let (b, seen) = self.blocks.get(slot(pc))?.as_ref()?;
        (*seen == self.epoch
            && b.pc == pc
            && b.entry == entry
            && ctx.bus.code_gen(b.page) == b.generation)
            .then(|| Arc::clone(b))
    }

    /// Whether `b` is the block the dispatcher would find at its PC for
    /// its context now: `Ok`, or `Err(stale)`, `stale` if the run's table
    /// holds another block there (`b` was translated afresh or pushed out;
    /// else it was only not found yet in this epoch).
    #[inline(always)]
    pub(super) fn is_current(&self, ctx: &GuestCtx<'_>, b: &Arc<Block>) -> Result<(), bool> {
        match self.blocks.get(slot(b.pc)).and_then(Option::as_ref) {
            Some((x, seen)) if Arc::ptr_eq(x, b) => {
                if ctx.bus.code_gen(b.page) != b.generation {
                    Err(true)
                } else if *seen != self.epoch {
                    Err(false)
                } else {
                    Ok(())
                }
            }
            _ => Err(true),
        }
    }
}
