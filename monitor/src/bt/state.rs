//! One VM's translator state as data: policy, translation cache, regions,
//! counters, what a `GuestCtx` carries (`crate::guest`). Nothing here takes
//! a `GuestCtx`, so it sits below the translator's functions that do.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use sim::hv::isa::{Insn, Op};

/// `--vm …,exec=POLICY`: which guest-kernel code is translated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exec {
    /// Trap-and-emulate: window code runs directly, KSEG0/KSEG1 code in
    /// the engine.
    Direct,
    /// Every guest-kernel instruction runs translated.
    Translate,
    /// The default: KSEG0/KSEG1 code translated; window pages direct until
    /// their exit rate makes them translated (`region`).
    #[default]
    Adaptive,
}

impl Exec {
    pub const NAMES: [&'static str; 3] = ["direct", "translate", "adaptive"];

    pub fn parse(s: &str) -> Result<Exec, String> {
        match s {
            "direct" => Ok(Exec::Direct),
            "translate" => Ok(Exec::Translate),
            "adaptive" => Ok(Exec::Adaptive),
            _ => Err(format!(
                "exec={s:?} is not one of {}",
                Exec::NAMES.join(", ")
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Exec::Direct => "direct",
            Exec::Translate => "translate",
            Exec::Adaptive => "adaptive",
        }
    }
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BtStats {
    /// Blocks translated (a stale block translated again counts again).
    pub translated_blocks: u64,
    pub translated_insns: u64,
    /// Blocks dropped because the guest wrote their code.
    pub invalidated: u64,
    /// Blocks run, and how many of them were entered through a chained
    /// exit (free) or a lookup (indirect jump, return, entry).
    pub blocks_run: u64,
    pub lookups: u64,
    /// Indirect exits whose target was the one the block's inline cache held.
    pub predicted: u64,
    /// Guest instructions run translated and the cycles they took
    /// (including the inline operations and lookups).
    pub insns: u64,
    pub cycles: u64,
    /// Privileged instructions run inline: each one an exit direct
    /// execution would have taken (unless commpage patching had removed it).
    pub inline_ops: u64,
    /// Code left to direct execution or the engine: with a debugger
    /// attached (its breakpoints and steps), and PCs that cannot be fetched
    /// (the engine delivers the fault).
    pub fallback_debugger: u64,
    pub fallback_fetch: u64,
    /// Times the translation cache was full and emptied, and the blocks
    /// it dropped then.
    pub flushes: u64,
    pub flushed_blocks: u64,
    /// Superblocks run (`chain`): dispatches that ran more than one block
    /// in one call. The host's business, not the modelled machine's: not
    /// in `--stats`, and a traced run (per block) has none.
    pub superblocks: u64,
    /// The monitor-side cycles of translated code by what paid them
    /// (indexed by [`Spent`]): where the cycles beyond native go.
    pub spent: [u64; Spent::COUNT],
}

/// What monitor-side cycles of translated code paid for (`--stats`,
/// docs/translation.md "Where the cycles go").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spent {
    /// `bt_translate`, once per instruction.
    Translate,
    /// `bt_lookup`: unchained exits and entries.
    Lookup,
    /// `bt_predict`: inline-cache hits.
    Predict,
    /// `bt_leave`: into a page that runs directly.
    Leave,
    /// `bt_mfc0` and `bt_mtc0`.
    Cp0,
    /// `bt_eret`.
    Eret,
    /// `bt_tlb`.
    Tlb,
    /// `bt_kseg` and the window's refills.
    Kseg,
    /// Exceptions raised by translated instructions, and real-TLB refills
    /// of their mapped accesses: the hardware entry and the exit.
    Fault,
    /// `bt_reflect`: a user's system call reflected straight into the
    /// translated handler.
    Reflect,
}

impl Spent {
    pub const COUNT: usize = 10;
    pub const ALL: [Spent; Spent::COUNT] = [
        Spent::Translate,
        Spent::Lookup,
        Spent::Predict,
        Spent::Leave,
        Spent::Cp0,
        Spent::Eret,
        Spent::Tlb,
        Spent::Kseg,
        Spent::Fault,
        Spent::Reflect,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Spent::Translate => "translate",
            Spent::Lookup => "lookup",
            Spent::Predict => "predict",
            Spent::Leave => "leave",
            Spent::Cp0 => "mfc0/mtc0",
            Spent::Eret => "eret",
            Spent::Tlb => "tlb",
            Spent::Kseg => "kseg",
            Spent::Fault => "faults",
            Spent::Reflect => "reflect",
        }
    }
}

/// One VM's translator: policy, translation cache, regions, counters.
#[derive(Debug, Default)]
pub struct Bt {
    pub exec: Exec,
    pub cache: Cache,
    pub regions: Regions,
    pub stats: BtStats,
    /// Per VCPU: the PC its last run stopped at because its turn ended,
    /// the context the block there was to be entered with, and the guest's
    /// instruction count then (the context holds only if it is unchanged:
    /// nothing ran in between). Resuming
    /// there is free and keeps the context: the end of a turn is the
    /// simulator's scheduling, not an event of the modelled machine.
    pub(super) budget_stop: Vec<Option<(u64, Ctx, u64)>>,
    /// Per VCPU: its reflection count when its last run ended (a run that
    /// starts after a reflection enters the handler through the vector's
    /// chained entry).
    pub(super) reflected: Vec<u64>,
    /// Per VCPU: the state its runs of translated code keep from one to
    /// the next (`RunState`), boxed so a run takes and puts it back
    /// without copying.
    pub(super) runs: Vec<Option<Box<super::run::RunState>>>,
}

impl Bt {
    pub fn new(exec: Exec) -> Bt {
        Bt {
            exec,
            ..Bt::default()
        }
    }
}

/// What the translation of a chain of blocks knows on entry to a block,
/// proved at translation time from the blocks chained before it (a real
/// translator keeps one copy of the block per context, so the cache is keyed
/// by it too): the value `$ra` holds (the link of a `jal` whose callee has
/// not written `$ra` since), and the guest base register whose KSEG0
/// rewrite the scratch register still holds. Only a chained exit carries
/// it; a lookup, an inline-cache hit, an exception or an interrupt enters
/// with none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Ctx {
    pub(super) link: Option<u32>,
    pub(super) base: Option<u8>,
}

#[derive(Debug)]
pub(super) struct Block {
    /// Guest virtual PC of the first instruction.
    pub(super) pc: u64,
    /// The context this copy was translated for, and the one its chained
    /// exits hand on (`block::exit_ctx`).
    pub(super) entry: Ctx,
    pub(super) exit: Ctx,
    /// A `jr $ra` exit whose target the entry context proves: a direct,
    /// chained jump to it, no compare (`block::returns_to`).
    pub(super) returns_to: Option<u64>,
    /// Machine page and the code generation the words were read at.
    pub(super) page: usize,
    pub(super) generation: u32,
    /// Its instructions.
    pub(super) insns: Vec<Insn>,
    /// The same as tier 2's micro-ops and static costs, at most 32
    /// instructions each (`code_of`): what runs (`exec::run_insns`).
    pub(super) code: Vec<sim::hv::BlockCode>,
    /// `unchained_exit`, computed once.
    pub(super) unchained: bool,
    /// Bit i: instruction i is a data access through the same base register
    /// as the block's previous one, unchanged since, so a KSEG0 address
    /// rewrite of that access is reused (`block::shared_bases`).
    pub(super) shared_base: u64,
    /// The polymorphic inline cache of an indirect exit: the targets it
    /// took, in the order they were first taken (`u64::MAX`: empty).
    pub(super) targets: [AtomicU64; PIC_ENTRIES],
    /// Times the inline cache was full and emptied (`predicts`).
    pub(super) pic_resets: AtomicU32,
}

/// Block `insns` from `pc` as tier 2's blocks (`sim::hv::BlockCode`) of
/// at most 32 instructions, a transfer and its delay slot in the same one.
pub(super) fn code_of(insns: &[Insn], pc: u64) -> Vec<sim::hv::BlockCode> {
    const MAX: usize = 32;
    let mut code = Vec::new();
    let mut at = 0;
    while at < insns.len() {
        let mut end = (at + MAX).min(insns.len());
        let splits_slot = end < insns.len()
            && insns.get(end - 1).is_some_and(|i| {
                matches!(
                    i.info().class,
                    sim::hv::isa::Class::Branch | sim::hv::isa::Class::Jump
                )
            });
        if splits_slot {
            end -= 1;
        }
        let from = insns.get(at..end).unwrap_or_default();
        code.push(sim::hv::BlockCode::straight(from, pc + 4 * at as u64));
        at = end;
    }
    code
}

/// Times a block's inline cache may be emptied before its site counts as
/// megamorphic: from then on it is a single-entry cache (one compare, a
/// miss straight to `bt_lookup`), as a translator re-patches a site whose
/// targets outnumber its entries, so that such a site pays no more than
/// with one entry.
const PIC_RESETS: u32 = 8;

/// Entries of an indirect exit's inline cache: a `switch` through a jump
/// table with a few cases in turn (kestrel's system calls) hits one of
/// them; each entry is one compare-and-branch more on the path to a miss.
pub(super) const PIC_ENTRIES: usize = 4;

/// An indirect exit's inline cache consulted (`Block::predicts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pic {
    /// The target was entry `k` (from 0): `k + 1` compares tried.
    Hit(usize),
    /// No entry held it, `n` entries were tried; it now has an entry (the
    /// first of an emptied cache, when all were in use).
    Miss(usize),
}

/// Whether a block of `insns` has an exit that needs a lookup (its target
/// is not known at translation time): an indirect jump or an ERET. Other
/// exits are chained, patched once into a direct jump to the next block.
pub(super) fn unchained_exit(insns: &[Insn]) -> bool {
    insns
        .iter()
        .rev()
        .take(2)
        .any(|i| matches!(i.op, Op::Jr | Op::Jalr | Op::Eret))
}

impl Block {
    /// Whether an indirect exit to `target` hits the block's inline cache,
    /// which tries its entries in order; a miss appends `target`, or, when
    /// all entries are in use, empties the cache and makes `target` its
    /// first entry (so one entry is the single-target cache that replaces
    /// its target at every miss). Emptying rather than replacing one
    /// entry lets a site whose targets change (a `switch` whose first cases
    /// were other calls, at boot) settle on its current ones in the order
    /// it takes them.
    pub(super) fn predicts(&self, target: u64) -> Pic {
        let mut tried = 0;
        let entries = if self.pic_resets.load(Ordering::Relaxed) > PIC_RESETS {
            1
        } else {
            PIC_ENTRIES
        };
        for e in self.targets.iter().take(entries) {
            let t = e.load(Ordering::Relaxed);
            if t == target {
                return Pic::Hit(tried);
            }
            if t == u64::MAX {
                e.store(target, Ordering::Relaxed);
                return Pic::Miss(tried);
            }
            tried += 1;
        }
        self.pic_resets.fetch_add(1, Ordering::Relaxed);
        for (i, e) in self.targets.iter().enumerate() {
            e.store(if i == 0 { target } else { u64::MAX }, Ordering::Relaxed);
        }
        Pic::Miss(tried)
    }
}

/// The translation cache of one VM, shared by its VCPUs (blocks depend on
/// memory only), bounded by the guest instructions its blocks hold.
#[derive(Debug)]
pub struct Cache {
    pub(super) blocks: FxHashMap<(u64, u32, Ctx), Arc<Block>>,
    /// Guest instructions in the cached blocks.
    pub(super) insns: usize,
    /// The most instructions the cache holds (`CAPACITY` unless a test
    /// makes it smaller). A translation that would pass it empties the
    /// cache first (`block::find`).
    pub capacity: usize,
    /// Times the cache was emptied (`block::find`): the tables of blocks
    /// the VCPUs' runs keep hold only within one of these.
    pub(super) flushes: u64,
}

/// The translation cache's size, in guest instructions: 64K instructions
/// (256 KB of guest code; kestrel's whole text, its embedded programs
/// included, is 95 KB) translated into host code several times their size.
pub const CAPACITY: usize = 1 << 16;

impl Default for Cache {
    fn default() -> Cache {
        Cache {
            blocks: FxHashMap::default(),
            insns: 0,
            capacity: CAPACITY,
            flushes: 0,
        }
    }
}

impl Cache {
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Guest instructions in the cached blocks.
    pub fn insns(&self) -> usize {
        self.insns
    }
}

/// Exits in one window that switch a page to translation, at first.
pub(super) const THRESHOLD: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub translated: bool,
    pub(super) threshold: u32,
    pub(super) window_start: u64,
    pub(super) window_exits: u32,
    pub(super) quiet: u64,
    /// Switches either way.
    pub switches: u32,
    /// Exits taken while it ran directly.
    pub exits: u64,
    /// Instructions and cycles run translated.
    pub insns: u64,
    pub cycles: u64,
    /// Blocks that executed a privileged instruction inline.
    pub privileged_blocks: u64,
}

impl Default for Region {
    fn default() -> Region {
        Region {
            translated: false,
            threshold: THRESHOLD,
            window_start: 0,
            window_exits: 0,
            quiet: 0,
            switches: 0,
            exits: 0,
            insns: 0,
            cycles: 0,
            privileged_blocks: 0,
        }
    }
}

/// The regions of one VM, by virtual page number.
#[derive(Debug, Default)]
pub struct Regions {
    pub(super) pages: FxHashMap<u32, Region>,
}

pub(super) fn page_of(pc: u64) -> u32 {
    // The low word: 32-bit addressing.
    (pc as u32) >> 12
}

impl Regions {
    /// Whether the page of `pc` runs translated under `adaptive`.
    pub fn translated(&self, pc: u64) -> bool {
        self.pages.get(&page_of(pc)).is_some_and(|r| r.translated)
    }

    /// Every region seen, by page address.
    pub fn list(&self) -> Vec<(u32, Region)> {
        let mut v: Vec<(u32, Region)> = self.pages.iter().map(|(p, r)| (p << 12, *r)).collect();
        v.sort_by_key(|e| e.0);
        v
    }
}
