//! Tier 3: hot tier-2 blocks compiled to native code by `disco-jit`
//! (docs/tiers.md). A block is lowered to the compiler's IR from its
//! micro-ops and its cost table, so the compiled code charges exactly what
//! tier 2 would: each exit adds a constant (the static cost up to it), and
//! taken transfers add theirs. Loads and stores go through one callout into
//! the same translation-cache and RAM path as tier 2 ([`Mem`]); whatever
//! the compiled code cannot do (a miss, a fault, a device, the
//! interpreter's instructions) it hands back at that instruction, and tier
//! 2's executor finishes the block from there. MULT/MULTU and MFHI/MFLO
//! are compiled, with HI/LO readiness carried in and out as tier 2 does.
//! The dispatch links a compiled exit to the compiled block it goes on to
//! ([`Tier3::link`]), and a new link that closes a cycle of blocks has them
//! compiled again as one loop (`Jit::close_loop`); dropping a block
//! forgets the links and its loops (`Jit::forget`).

use disco_jit::ir::{self, Alu, Cond, Imm, Op, Shift};
use disco_jit::{Code, Exit, Fast, Jit, Memory, Mode, State};

use super::build::{Block, Kind, MAX_LEN};
use super::{BlockCache, Start, CACHE_SIZE};
use crate::cpu::exec::{alu, mem, Regs};
use crate::cpu::{Access, Core};
use crate::mem::Bus;
use crate::mem::PAGE_SHIFT;
use crate::timing::TIMING;

/// Runs of a block before it is compiled: chosen from a measurement over
/// the kits and kestrel-bench (docs/tiers.md, "The threshold"). Compiling
/// a block costs milliseconds, and Cranelift's set-up more: below about
/// 1,000 the compiler cost more than it saved everywhere, and 10,000 was
/// the best of the thresholds tried, within the noise. Cold code (boot,
/// one-off initialisation) never pays the compiler.
pub(crate) const HOT: u32 = 10_000;

/// Compiled blocks (live or dropped) before all code is freed at once:
/// a block's code is dropped with it, but the memory comes back only when
/// the whole module is freed.
const MAX_COMPILED: usize = 4 * CACHE_SIZE;

/// Tier 3's compiler and its counters (part of the block cache).
#[derive(Debug)]
pub(crate) struct Tier3 {
    /// Made when the first block gets hot; boxed, as the cache moves in
    /// and out of the bus on every `run_blocks`.
    jit: Option<Box<Jit>>,
    /// The host has no compiler: tier 3 runs as tier 2.
    unavailable: bool,
    /// Runs before a block is compiled ([`HOT`]; tests lower it).
    pub(crate) threshold: u32,
    /// Where blocks are compiled: on the compiler thread by default, the
    /// CPU running a block in tier 2 until its code is installed.
    pub(crate) mode: Mode,
    /// Blocks sent to the compiler (statistics and tests): what was asked,
    /// so the same in every mode whatever the compiler's timing.
    pub(crate) compiled: u64,
    /// The exit the last compiled run left through, while the dispatch
    /// goes on to the next block: linked to it if it is compiled.
    from: Option<From>,
}

/// A compiled block's exit, as [`Tier3::link`] needs it.
#[derive(Clone, Copy, Debug)]
pub(super) struct From {
    code: Code,
    /// Instructions run: the exit.
    done: usize,
    /// Where it went.
    pc: u64,
    vpage: u32,
    page: u64,
    generation: u32,
}

impl Default for Tier3 {
    fn default() -> Self {
        Tier3 {
            jit: None,
            unavailable: false,
            threshold: HOT,
            mode: Mode::Background,
            compiled: 0,
            from: None,
        }
    }
}

impl Tier3 {
    /// The compiler, once made.
    #[inline(always)]
    pub(super) fn jit(&self) -> Option<&Jit> {
        self.jit.as_deref()
    }

    /// Installs the code the compiler thread has finished, if any is on
    /// its way (between blocks: no compiled code is running).
    #[inline(always)]
    pub(super) fn poll(&mut self) {
        if let Some(jit) = self.jit.as_mut() {
            if jit.pending() > 0 {
                jit.poll();
            }
        }
    }

    /// Waits for the compiler thread and installs all it was asked for;
    /// the functions installed so far.
    pub(crate) fn wait(&mut self) -> u64 {
        self.jit.as_mut().map_or(0, |jit| {
            jit.wait();
            jit.installed()
        })
    }

    /// Records the exit the last compiled run left through, or that the
    /// dispatch ran something else since (`None`).
    #[inline(always)]
    pub(super) fn exited(&mut self, from: Option<From>) {
        self.from = from;
    }

    /// Forgets every link and the loops `gone` is in: it is dropped, and
    /// a link to it would report its cache slot, which now holds another
    /// block.
    #[cold]
    pub(super) fn forget(&mut self, gone: Code) {
        if let Some(jit) = self.jit.as_mut() {
            jit.forget(gone);
        }
    }

    /// Links the exit the last compiled run left through to `b`, compiled
    /// as `to`, which the dispatch is about to run at `pc` with the
    /// interlock `load_dest` carried: what the dispatch does there, the
    /// exit will then do itself. Only within one page at one generation
    /// (the successor runs in the same page's mapping, and one generation
    /// check covers both), and only where the dispatch went.
    #[inline(always)]
    pub(super) fn link(&mut self, b: &Block, to: Code, pc: u64, load_dest: u8) {
        let Some(f) = self.from.take() else {
            return;
        };
        let same = f.pc == pc
            && f.vpage == b.vpage
            && f.page == b.pa >> PAGE_SHIFT
            && f.generation == b.generation;
        if let (true, Some(jit)) = (same, self.jit.as_mut()) {
            let stall = super::interlock_stall(load_dest, b);
            if jit.link((f.code, f.done), (to, pc), b.max_cost, stall) {
                // A new link may close a loop through `to`.
                Self::close_loop(jit, to);
            }
        }
    }

    #[cold]
    fn close_loop(jit: &mut Jit, head: Code) {
        jit.close_loop(head);
    }

    /// Counts a run of `b` and compiles it once it is hot; `Some(code)` to
    /// run it compiled. Frees all code when too much has piled up (`reset`
    /// tells the caller to forget every block's handle).
    #[inline(always)]
    pub(super) fn hot(&mut self, b: &mut Block, reset: &mut bool) -> Option<Code> {
        if b.code.is_some() {
            return b.code;
        }
        b.runs = b.runs.saturating_add(1);
        // Exactly at the threshold: a block the compiler refused is not
        // offered again (its count goes on past it).
        if b.runs != self.threshold.max(1) || self.unavailable {
            return None;
        }
        self.compile(b, reset)
    }

    #[cold]
    fn compile(&mut self, b: &mut Block, reset: &mut bool) -> Option<Code> {
        if self.jit.is_none() {
            match Jit::with_mode(self.mode) {
                Ok(j) => self.jit = Some(Box::new(j)),
                Err(_) => {
                    self.unavailable = true;
                    return None;
                }
            }
        }
        let jit = self.jit.as_mut()?;
        if jit.compiled() >= MAX_COMPILED {
            jit.reset();
            *reset = true;
        }
        // A block the compiler refuses stays with tier 2; one sent to the
        // compiler thread runs in tier 2 until its code is installed.
        b.code = jit.compile(&lower(b)).ok();
        if *reset {
            self.from = None;
        }
        self.compiled += 1;
        b.code
    }
}

/// The IR of tier-2 block `b`.
fn lower(b: &Block) -> ir::Block {
    let n = usize::from(b.len).min(MAX_LEN);
    let insns = (0..n)
        .map(|k| {
            let bit = 1u32 << k;
            let op = b.uops[k];
            ir::Insn {
                op: op_of(&op),
                word: b.at[k],
                // The cost table is below 2^16 cycles: exact.
                start: b.cost_to(k) as u32,
                end: b.cost_to_end(k + 1) as u32,
                slot: b.slots & bit != 0,
                follow: b.follow & bit != 0,
                check: b.mem & bit != 0 && k + 1 < n,
            }
        })
        .collect();
    ir::Block {
        insns,
        taken_cost: TIMING.taken_branch,
        mul_busy: TIMING.base + TIMING.mult,
        issue: TIMING.base,
        // The cache slot: what a run reports it ended in.
        tag: BlockCache::slot(b.pa) as u32,
    }
}

/// The IR of a micro-op: the same semantics as tier 2's executor (`exec`'s
/// family handlers), with immediates extended here.
fn op_of(u: &super::build::Uop) -> Op {
    let (d, s, t) = (u.d & 31, u.s & 31, u.t & 31);
    let alu = |op| Op::Alu { op, d, s, t };
    let imm = |op, imm| Op::Imm { op, t, s, imm };
    let shift = |op| Op::Shift {
        op,
        d,
        t,
        // A shift amount: below 32.
        sa: (u.imm & 31) as u8,
    };
    let load = |width, signed| Op::Load {
        t,
        s,
        off: u.simm(),
        width,
        signed,
    };
    let store = |width| Op::Store {
        t,
        s,
        off: u.simm(),
        width,
    };
    let branch = |cond| Op::Branch {
        cond,
        s,
        t,
        off: u.simm(),
    };
    match u.kind {
        Kind::Nop => Op::Nop,
        Kind::Generic => Op::Interp,
        Kind::Mult | Kind::Multu => Op::Mul {
            signed: u.kind == Kind::Mult,
            s,
            t,
        },
        Kind::Mfhi | Kind::Mflo => Op::MoveFrom {
            d,
            hi: u.kind == Kind::Mfhi,
        },
        Kind::Sll => shift(Shift::Sll),
        Kind::Srl => shift(Shift::Srl),
        Kind::Sra => shift(Shift::Sra),
        Kind::Addu => alu(Alu::Addu),
        Kind::Subu => alu(Alu::Subu),
        Kind::And => alu(Alu::And),
        Kind::Or => alu(Alu::Or),
        Kind::Xor => alu(Alu::Xor),
        Kind::Nor => alu(Alu::Nor),
        Kind::Slt => alu(Alu::Slt),
        Kind::Sltu => alu(Alu::Sltu),
        Kind::Addiu => imm(Imm::Addu, u.simm()),
        Kind::Slti => imm(Imm::Slt, u.simm()),
        Kind::Sltiu => imm(Imm::Sltu, u.simm()),
        Kind::Andi => imm(Imm::And, u64::from(u.imm)),
        Kind::Ori => imm(Imm::Or, u64::from(u.imm)),
        Kind::Xori => imm(Imm::Xor, u64::from(u.imm)),
        Kind::Lui => Op::Const {
            t,
            value: alu::lui(u.imm),
        },
        Kind::Lw => load(4, true),
        Kind::Lh => load(2, true),
        Kind::Lhu => load(2, false),
        Kind::Lb => load(1, true),
        Kind::Lbu => load(1, false),
        Kind::Sw => store(4),
        Kind::Sh => store(2),
        Kind::Sb => store(1),
        Kind::Beq => branch(Cond::Eq),
        Kind::Bne => branch(Cond::Ne),
        Kind::Blez => branch(Cond::Lez),
        Kind::Bgtz => branch(Cond::Gtz),
        Kind::Bltz => branch(Cond::Ltz),
        Kind::Bgez => branch(Cond::Gez),
        Kind::J => Op::Jump {
            index: u.imm,
            link: false,
        },
        Kind::Jal => Op::Jump {
            index: u.imm,
            link: true,
        },
        Kind::Jr => Op::JumpReg { s, link: 0 },
        Kind::Jalr => Op::JumpReg { s, link: d },
    }
}

/// The compiled code's memory: tier 2's fast path (the translation cache
/// and the bus's RAM accessors); anything else is declined and runs in the
/// interpreter's path.
struct Mem<'a> {
    core: &'a mut Core,
    bus: &'a mut Bus,
}

impl Memory for Mem<'_> {
    #[inline]
    fn load(&mut self, ea: u64, width: u8, signed: bool) -> Option<u64> {
        let pa = self.core.xlate_hit(ea, width, Access::Load)?;
        let v = self.bus.read_ram(pa, width)?;
        Some(match (width, signed) {
            (1, true) => mem::extend::<1, true>(v),
            (2, true) => mem::extend::<2, true>(v),
            (4, true) => mem::extend::<4, true>(v),
            _ => v,
        })
    }

    #[inline]
    fn store(&mut self, ea: u64, width: u8, value: u64, check: bool) -> Option<bool> {
        let pa = self.core.xlate_hit(ea, width, Access::Store)?;
        if !self.bus.write_ram(self.core.id, pa, width, value) {
            return None;
        }
        // Tier 2's `after`: a device touched or code changed.
        Some(check && (self.core.next_event == 0 || self.bus.take_code_written()))
    }

    #[inline(always)]
    fn fast(&self) -> Option<Fast<'_>> {
        let (ram, pages, linked, unchanged, concurrent) = self.bus.fast_ram();
        Some(Fast {
            xlate: &self.core.xlate,
            xctx: self.core.xctx,
            ram,
            pages,
            linked,
            // A store done inline answers "go on": only so while the
            // callout would (`store` above; neither condition changes in
            // a block but through the callout itself).
            stores: unchanged && self.core.next_event != 0,
            concurrent,
        })
    }
}

/// The destination of the last load among block `b`'s first `done`
/// instructions, or 0: the interlock tier 2 would carry at that point.
fn last_load(b: &Block, done: usize) -> u8 {
    let mask = if done >= 32 {
        u32::MAX
    } else {
        (1u32 << done) - 1
    };
    let loads = b.loads & mask;
    if loads == 0 {
        return 0;
    }
    let k = 31 - loads.leading_zeros() as usize;
    b.uops.get(k).map_or(0, |u| u.t & 31)
}

impl Core {
    /// Runs block `b` compiled as `code`, and the blocks chained to it,
    /// which are in `entries`; as [`Core::exec_block`]. `from`: the exit it
    /// left through, if it left whole.
    #[inline(always)]
    pub(super) fn exec_compiled(
        &mut self,
        regs: &mut Regs,
        bus: &mut Bus,
        (jit, code): (&Jit, Code),
        entries: &[Block],
        b: &Block,
    ) -> (bool, Option<From>) {
        self.carry_interlock(b);
        let vbase = regs.pc & !0xFFF;
        let mut state = State {
            hi: regs.hi,
            lo: regs.lo,
            hilo_ready: self.hilo_ready,
            c0: self.cycles,
            next_event: self.next_event,
            page: b.pa >> PAGE_SHIFT,
            generation: b.generation,
            ..State::default()
        };
        let exit = jit.run(
            code,
            &mut regs.gpr,
            &mut state,
            vbase,
            &mut Mem { core: self, bus },
        );
        (regs.hi, regs.lo, self.hilo_ready) = (state.hi, state.lo, state.hilo_ready);
        // The block the run ended in: the last of the chain.
        let last = entries.get(state.tag as usize).unwrap_or(b);
        self.instret += state.retired;
        let c0 = state.c0;
        match exit {
            Some(Exit::Leave {
                done,
                pc,
                cycles,
                whole,
            }) => {
                self.cycles = c0 + cycles;
                self.instret += done as u64;
                // The last instruction's load, if it is one, is carried.
                self.load_dest = match done.checked_sub(1) {
                    Some(k) if (last.loads >> (k & 31)) & 1 != 0 => last_load(last, done),
                    _ => 0,
                };
                regs.jump_to(pc);
                let from = last.code.filter(|_| whole).map(|code| From {
                    code,
                    done,
                    pc,
                    vpage: last.vpage,
                    page: last.pa >> PAGE_SHIFT,
                    generation: last.generation,
                });
                (whole, from)
            }
            Some(Exit::Resume { at, target, cycles }) => {
                self.load_dest = last_load(last, at);
                let from = Start {
                    k: at,
                    c0: c0 + cycles,
                    target,
                };
                (self.exec_from(regs, bus, last, vbase, from), None)
            }
            // A stale handle (not kept): tier 2 runs the block.
            None => (self.exec_from(regs, bus, b, vbase, Start::block(c0)), None),
        }
    }
}
