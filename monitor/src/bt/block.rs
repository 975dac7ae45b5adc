//! Translated blocks and the translation cache.
//!
//! A block is the straight run of guest instructions from a PC to the first
//! control transfer (with its delay slot), to a privileged instruction that
//! may change the mode or the mappings, or to the end of the page. It is
//! decoded once from the bus's decoded copy of the page (`Bus::decoded`)
//! and keyed by machine address and virtual PC: the same code mapped at two
//! addresses is two blocks, because `j`/`jal` targets depend on the PC.
//! A block remembers its page's code generation (`Bus::code_gen`): a guest
//! store into the page makes it stale, and the next lookup translates the
//! words afresh. A page the monitor moves to another machine page
//! (`remap`) is found under its new machine address; the old key is never
//! looked up again.

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

use sim::hv::{
    isa::{Class, Insn, Op},
    Access, PAGE_SHIFT,
};

use super::run::{RunState, BLOCK_SLOTS};
use super::state::unchained_exit;
pub(super) use super::state::{Block, Ctx};
use crate::guest::GuestCtx;
use crate::obs::MonEvent;

/// Longest block: bounds the translation charged for code never run.
const MAX_INSNS: usize = 64;

/// Whether a block ends after `insn` (its delay slot is added separately).
fn ends_block(insn: &Insn) -> bool {
    matches!(
        insn.op,
        Op::Mtc0 | Op::Dmtc0 | Op::Tlbwi | Op::Tlbwr | Op::Tlbr | Op::Tlbp | Op::Eret | Op::Wait
    ) || matches!(insn.op, Op::Syscall | Op::Break)
}

/// The block at `pc` for context `entry`, translated now if it is not
/// cached or is stale.
/// `None` if `pc` cannot be fetched (unaligned, unmapped, not RAM): the
/// caller lets the engine deliver the fault. A block found in this run is
/// taken from the run's own table (`RunState::blocks`), checked against the
/// same key and generation, so a block costs the host no hashing.
pub(super) fn find(
    ctx: &mut GuestCtx<'_>,
    st: &mut RunState,
    pc: u64,
    entry: Ctx,
) -> Option<Arc<Block>> {
    // Masked to the table's size: exact.
    let slot = (pc >> 2) as usize % BLOCK_SLOTS;
    if let Some((b, seen)) = st.blocks.get(slot).and_then(Option::as_ref) {
        // Found in this epoch, so its page is still `pc`'s; the same
        // checks as below but the address's translation.
        if *seen == st.epoch
            && b.pc == pc
            && b.entry == entry
            && ctx.bus.code_gen(b.page) == b.generation
        {
            return Some(Arc::clone(b));
        }
    }
    if pc & 3 != 0 {
        return None;
    }
    let gpa = match crate::engine::kseg_phys(ctx, pc) {
        Some(gpa) => gpa,
        None => st.guest_phys(ctx, pc, Access::Fetch).ok()?,
    };
    if gpa.0 >= ctx.pmap.size() {
        return None;
    }
    let ma = ctx.pmap.translate(gpa)?.0;
    let page = usize::try_from(ma >> PAGE_SHIFT).ok()?;
    // The page decoded (and its generation tracked) before it is read.
    ctx.bus.decoded(ma)?;
    let generation = ctx.bus.code_gen(page);
    let epoch = st.epoch;
    if let Some(Some((b, seen))) = st.blocks.get_mut(slot) {
        // The same first word and PC: the cache's key (`ma` is the page's
        // machine address plus the PC's offset in it).
        if b.pc == pc && b.page == page && b.generation == generation && b.entry == entry {
            *seen = epoch;
            return Some(Arc::clone(b));
        }
    }
    let key = (ma, pc as u32, entry);
    let b = match ctx.wide.bt.cache.blocks.get(&key) {
        Some(b) if b.generation == generation => Arc::clone(b),
        cached => {
            if cached.is_some() {
                ctx.wide.bt.stats.invalidated += 1;
            }
            let b = Arc::new(translate(ctx, (pc, ma, page, generation), entry)?);
            if insert(ctx, key, &b) {
                // A flush drops this run's blocks too: what is still in
                // use is translated again, and pays for it, as the
                // policy says.
                st.drop_blocks(ctx.wide.bt.cache.flushes);
            }
            b
        }
    };
    if let Some(e) = st.blocks.get_mut(slot) {
        *e = Some((Arc::clone(&b), st.epoch));
    }
    Some(b)
}

/// Caches block `b`, emptying the cache first if `b` would overfill it.
/// Emptying it all is the policy: no per-block bookkeeping on the hot
/// path, chained exits never point at a dropped block (a translator's
/// chains are patched jumps, which a partial eviction would have to
/// find and undo), and what is still in use is translated again at
/// `bt_translate` per instruction (counted: `flushes`). Whether it
/// emptied the cache.
fn insert(ctx: &mut GuestCtx<'_>, key: (u64, u32, Ctx), b: &Arc<Block>) -> bool {
    let cache = &mut ctx.wide.bt.cache;
    if let Some(old) = cache.blocks.remove(&key) {
        cache.insns -= old.insns.len();
    }
    let flush = cache.insns + b.insns.len() > cache.capacity && !cache.blocks.is_empty();
    if flush {
        ctx.wide.bt.stats.flushes += 1;
        ctx.wide.bt.stats.flushed_blocks += cache.blocks.len() as u64;
        cache.blocks.clear();
        cache.insns = 0;
        cache.flushes += 1;
    }
    cache.insns += b.insns.len();
    cache.blocks.insert(key, Arc::clone(b));
    flush
}

/// Translates the block at `pc` (machine address `ma`, in machine `page`
/// at code `generation`) for context `entry`.
fn translate(
    ctx: &mut GuestCtx<'_>,
    (pc, ma, page, generation): (u64, u64, usize, u32),
    entry: Ctx,
) -> Option<Block> {
    let page_end = (ma | 0xFFF) + 1;
    let mut insns = Vec::new();
    let mut a = ma;
    let mut slot_left = None;
    while a < page_end && insns.len() < MAX_INSNS {
        let insn = ctx.bus.decoded(a)?;
        insns.push(insn);
        a += 4;
        if let Some(n) = slot_left.as_mut() {
            *n -= 1;
            if *n == 0 {
                break;
            }
            continue;
        }
        if matches!(insn.info().class, Class::Branch | Class::Jump) {
            // The delay slot belongs to the block.
            slot_left = Some(1);
        } else if ends_block(&insn) {
            break;
        }
    }
    let n = insns.len() as u64;
    let cost = ctx.cost.bt_translate.saturating_mul(n);
    super::charge(ctx, super::Spent::Translate, cost);
    ctx.wide.bt.stats.translated_blocks += 1;
    ctx.wide.bt.stats.translated_insns += n;
    if ctx.trace.enabled {
        ctx.trace.emit(MonEvent::BtTranslate {
            pc: crate::obs::low32(pc),
            insns: n as u32,
        });
    }
    let (shared_base, out_base) = shared_bases(&insns, entry.base);
    let returns_to = returns_to(&insns, entry);
    let exit = Ctx {
        link: exit_link(&insns, pc, entry, returns_to.is_some()),
        base: out_base,
    };
    Some(Block {
        pc,
        entry,
        exit,
        returns_to,
        page,
        generation,
        shared_base,
        code: super::state::code_of(&insns, pc),
        unchained: unchained_exit(&insns),
        insns,
        targets: std::array::from_fn(|_| AtomicU64::new(u64::MAX)),
        pic_resets: AtomicU32::new(0),
    })
}

/// Whether `insn` may write guest register `r`. Conservative: any
/// instruction naming `r` as its `rt` or `rd` (but a store or a branch,
/// which only read them; a store-conditional writes its `rt`), and the
/// linking jumps and branches for `$ra`.
pub(super) fn writes_reg(insn: &Insn, r: u32) -> bool {
    let class = insn.info().class;
    let reads_only =
        (class == Class::Store && !matches!(insn.op, Op::Sc | Op::Scd)) || class == Class::Branch;
    (!reads_only && (insn.rt.number() == r || insn.rd.number() == r))
        || (matches!(
            insn.op,
            Op::Jal | Op::Jalr | Op::Bgezal | Op::Bltzal | Op::Bgezall | Op::Bltzall
        ) && r == RA)
}

pub(super) const RA: u32 = 31;

/// The control transfer ending a block: its index, if the block ends with
/// a branch or jump and its delay slot.
pub(super) fn control(insns: &[Insn]) -> Option<usize> {
    let c = insns.len().checked_sub(2)?;
    insns
        .get(c)
        .filter(|i| matches!(i.info().class, Class::Branch | Class::Jump))
        .map(|_| c)
}

/// Leaf-return elision: the target of a block's `jr $ra` when its entry
/// context proves what `$ra` holds (the link of the `jal` that led here
/// through chained blocks, none of which wrote `$ra`) and nothing in the
/// block before the `jr` writes it either. The `jr` then becomes a direct
/// jump to the caller's translated block: chained, no compare.
fn returns_to(insns: &[Insn], entry: Ctx) -> Option<u64> {
    let link = entry.link?;
    let c = control(insns)?;
    let jr = insns.get(c)?;
    let before = insns.get(..c)?;
    (jr.op == Op::Jr && jr.rs.number() == RA && !before.iter().any(|i| writes_reg(i, RA)))
        // Sign-extended, as the PC is.
        .then_some(i64::from(link as i32) as u64)
}

/// What `$ra` provably holds after a block that ran to its end and left
/// through a chained exit: the link of its `jal` (when the delay slot does
/// not overwrite it), else the entry's value if nothing in the block may
/// write `$ra` (and the block did not return through it).
fn exit_link(insns: &[Insn], pc: u64, entry: Ctx, returned: bool) -> Option<u32> {
    if let Some(c) = control(insns) {
        let slot_keeps = insns.get(c + 1).is_some_and(|s| !writes_reg(s, RA));
        if insns.get(c).is_some_and(|i| i.op == Op::Jal) && slot_keeps {
            // The low word: 32-bit addressing.
            return Some((pc as u32).wrapping_add(4 * c as u32 + 8));
        }
    }
    if returned || insns.iter().any(|i| writes_reg(i, RA)) {
        return None;
    }
    entry.link
}

/// Which data accesses of a block reuse the previous access's KSEG0
/// rewrite (`Block::shared_base`), and whose rewrite the scratch register
/// holds at the block's end: the translator keeps the rewritten base in
/// one scratch register, valid until the guest register it came from may
/// be written (`writes_reg`), also across chained blocks (`entry`, the
/// base the scratch register holds on entry: `Ctx::base`).
fn shared_bases(insns: &[Insn], entry: Option<u8>) -> (u64, Option<u8>) {
    let mut shared = 0u64;
    let mut base: Option<u32> = entry.map(u32::from);
    for (i, insn) in insns.iter().enumerate().take(64) {
        let class = insn.info().class;
        let access = matches!(class, Class::Load | Class::Store);
        if access {
            let rs = insn.rs.number();
            if base == Some(rs) {
                shared |= 1 << i;
            }
            base = Some(rs);
        }
        if base.is_some_and(|r| writes_reg(insn, r)) {
            base = None;
        }
    }
    // A register number: below 32, exact.
    (shared, base.map(|r| r as u8))
}
