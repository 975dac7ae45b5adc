//! Tier 2's block loop, generic over the CPU it runs on (issue #16's
//! context-generic executor, docs/tiers.md): the micro-op table, the static
//! cost table with its in-block interlocks, the flow and the exits are the
//! loop's own, written once; what differs between the native CPU and a
//! virtual one (the clock, data accesses, the multiplier, the general path
//! and the retire) is a [`BlockCtx`]. The loop is monomorphised per
//! context, so the native CPU's copy is the code it always was.

use super::build::{Block, Kind, Uop, LOOK_AFTER, MAX_LEN};
use crate::cpu::exec::{alu, branch, mem, muldiv, Regs};
use crate::timing::TIMING;

/// What tier 2's block loop asks of the CPU it runs on. Every method is
/// called at the modelled cycle its effect happens at (`at`), which the
/// loop knows from its static cost table; a context that keeps a clock of
/// its own is brought up to date with [`BlockCtx::set_clock`] only before
/// the general path and at a block's exit.
pub trait BlockCtx {
    /// The memory the CPU reaches (the native CPU's bus, a monitor's
    /// guest), handed to every method beside the CPU itself.
    type Mem;
    /// The clock.
    fn clock(&mut self, mem: &mut Self::Mem) -> u64;
    /// Brings the clock to `at`.
    fn set_clock(&mut self, mem: &mut Self::Mem, at: u64);
    /// An aligned load of a micro-op, of `width` bytes at `ea`, at cycle
    /// `at` of the block's instruction `k` (`k_at`): the value
    /// zero-extended, or `None` to send the instruction the general path's
    /// way (which raises what the hardware would). Cycles the access costs
    /// beyond the instruction's own go to `extra`.
    fn load(
        &mut self,
        mem: &mut Self::Mem,
        k_at: (usize, u64),
        ea: u64,
        width: u8,
        extra: &mut u64,
    ) -> Option<u64>;
    /// An aligned store of a micro-op, as [`BlockCtx::load`]; whether it
    /// was done.
    fn store(
        &mut self,
        mem: &mut Self::Mem,
        k_at: (usize, u64),
        ea: u64,
        width: u8,
        value: u64,
        extra: &mut u64,
    ) -> bool;
    /// A load micro-op wrote `rt`: the interlock a block ending here
    /// carries to the next.
    fn loaded(&mut self, mem: &mut Self::Mem, rt: u8);
    /// MULT or MULTU issued at cycle `at` (HI and LO are written).
    fn mult_started(&mut self, mem: &mut Self::Mem, at: u64);
    /// MFHI or MFLO reached at cycle `at`: the cycles it waits.
    fn hilo_stall(&mut self, mem: &mut Self::Mem, at: u64) -> u64;
    /// Instruction `k` of `b` (at `pc`) through the general path, the clock
    /// brought up to date; `target` is the taken transfer whose slot it may
    /// be. `Some(whole)` if the block ends there (the context has retired
    /// and left it).
    fn general(
        &mut self,
        mem: &mut Self::Mem,
        regs: &mut Regs,
        b: &Block,
        k: usize,
        pc: u64,
        target: &mut Option<u64>,
    ) -> Option<bool>;
    /// After a memory access that is not the block's last: whether the
    /// block ends before the next instruction (a device was touched or code
    /// changed, which the interpreter looks at between instructions).
    fn access_ends_block(&mut self, mem: &mut Self::Mem) -> bool;
    /// Retires the block's first `done` instructions and continues at
    /// `next`, the clock already at the block's end.
    fn leave(&mut self, mem: &mut Self::Mem, regs: &mut Regs, b: &Block, done: usize, next: u64);

    /// Whether the loop asks [`BlockCtx::boundary`] at the instructions
    /// [`BlockCtx::next_boundary`] names (a superblock of a translator's
    /// blocks, whose boundaries its counters see). Natively not: the
    /// check is compiled out.
    const BOUNDARIES: bool = false;

    /// The first instruction at or after `k` (at least 1) where a
    /// translator's block starts, or `usize::MAX` if none does: the loop
    /// runs up to it without looking (a test per boundary, not one per
    /// instruction).
    #[inline(always)]
    fn next_boundary(&self, _k: usize) -> usize {
        usize::MAX
    }

    /// The block ran to its end (`done` instructions) through a taken
    /// transfer to `next`, the clock at its end: the context leaves it as
    /// [`BlockCtx::leave`] does and, where the block is a superblock chained
    /// to itself, may run it again: `Some(c0)`, the clock at its start, the
    /// interlock carried into it paid. Only asked where
    /// [`BlockCtx::BOUNDARIES`].
    #[inline(always)]
    fn again(
        &mut self,
        mem: &mut Self::Mem,
        regs: &mut Regs,
        b: &Block,
        done: usize,
        next: u64,
    ) -> Option<u64> {
        self.leave(mem, regs, b, done, next);
        None
    }

    /// Instruction `k` (at `pc`) starts a translator's block, the clock at
    /// the previous one's end and no transfer pending: whether the loop
    /// goes on.
    #[inline(always)]
    fn boundary(
        &mut self,
        _mem: &mut Self::Mem,
        _regs: &mut Regs,
        _b: &Block,
        _k: usize,
        _pc: u64,
    ) -> Boundary {
        Boundary::On
    }
}

/// What a superblock's boundary says ([`BlockCtx::boundary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// Into the next block.
    On,
    /// The block ends here and goes on at this address
    /// ([`BlockCtx::leave`] is called).
    Leave(u64),
}

/// Where [`exec_from`] starts in a block: at instruction `k`, with the
/// cycles before the static costs (`c0`) and a taken transfer's target
/// (`k` is its slot) as its loop keeps them.
pub(super) struct Start {
    pub(super) k: usize,
    pub(super) c0: u64,
    pub(super) target: Option<u64>,
}

impl Start {
    /// A block's start, the interlock carried into it paid.
    #[inline(always)]
    pub(super) fn block(c0: u64) -> Start {
        Start {
            k: 0,
            c0,
            target: None,
        }
    }
}

/// What follows an instruction of a block.
pub(super) enum Next {
    /// The block's next instruction.
    On,
    /// The block ends here: it has run this many instructions and goes on
    /// at this address; `true` if it ran to one of its exits.
    Leave(usize, u64, bool),
}

/// Block `b`, in a page whose base is `vbase`, from where `from` says, on
/// `cx`. Returns false if it stopped early (an exception, a device access,
/// a code write) or left through an instruction the general path must
/// finish.
///
/// The cycle count is `c0 + b.cost_to(k)`: the block's static costs
/// (issue cycles, in-block load-use stalls) come from its masks, and `c0`
/// gathers the dynamic ones (taken branches, HI/LO waits, what a context's
/// accesses cost, the general path). It goes to the context before the
/// general path and at every exit.
#[inline(always)]
pub(super) fn exec_from<C: BlockCtx>(
    cx: &mut C,
    mem: &mut C::Mem,
    regs: &mut Regs,
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
    // The loop runs up to the next boundary (natively, to the block's end)
    // with no other bound live, and looks at the boundary outside it.
    let mut end = if C::BOUNDARIES {
        n.min(cx.next_boundary(k.max(1)))
    } else {
        n
    };
    'run: loop {
        while k < end {
            let op = b.uops[k % MAX_LEN];
            let g = &mut regs.gpr;
            let (d, s, t) = (
                usize::from(op.d & 31),
                usize::from(op.s & 31),
                usize::from(op.t & 31),
            );
            let (rs, rt) = (g[s], g[t]);
            // Whether the micro-op could not finish here and the general path
            // must run the instruction.
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
                    (regs.hi, regs.lo) = if op.kind == Kind::Mult {
                        muldiv::mult(rs, rt)
                    } else {
                        muldiv::multu(rs, rt)
                    };
                    cx.mult_started(mem, c0 + b.cost_to(k));
                    false
                }
                Kind::Mfhi | Kind::Mflo => {
                    c0 += cx.hilo_stall(mem, c0 + b.cost_to(k));
                    regs.gpr[d] = if op.kind == Kind::Mfhi {
                        regs.hi
                    } else {
                        regs.lo
                    };
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
                Kind::Lw => {
                    load::<C, 4, true>(cx, mem, (k, &op), g, rs, c0 + b.cost_to(k), &mut c0)
                }
                Kind::Lh => {
                    load::<C, 2, true>(cx, mem, (k, &op), g, rs, c0 + b.cost_to(k), &mut c0)
                }
                Kind::Lhu => {
                    load::<C, 2, false>(cx, mem, (k, &op), g, rs, c0 + b.cost_to(k), &mut c0)
                }
                Kind::Lb => {
                    load::<C, 1, true>(cx, mem, (k, &op), g, rs, c0 + b.cost_to(k), &mut c0)
                }
                Kind::Lbu => {
                    load::<C, 1, false>(cx, mem, (k, &op), g, rs, c0 + b.cost_to(k), &mut c0)
                }
                Kind::Sw => store::<C, 4>(cx, mem, (k, &op), rs, rt, c0 + b.cost_to(k), &mut c0),
                Kind::Sh => store::<C, 2>(cx, mem, (k, &op), rs, rt, c0 + b.cost_to(k), &mut c0),
                Kind::Sb => store::<C, 1>(cx, mem, (k, &op), rs, rt, c0 + b.cost_to(k), &mut c0),
                Kind::Generic => true,
            };
            if slow {
                let at = c0 + b.cost_to(k);
                cx.set_clock(mem, at);
                let pc = b.pc(vbase, k);
                if let Some(stop) = cx.general(mem, regs, b, k, pc, &mut target) {
                    return stop;
                }
                c0 += cx.clock(mem) - at;
            }
            if op.s & LOOK_AFTER != 0 {
                // A micro-op's load touched neither a device nor code.
                let check = slow || matches!(op.kind, Kind::Sw | Kind::Sh | Kind::Sb);
                if let Next::Leave(done, next, whole) =
                    after(cx, mem, b, k, vbase, &mut target, check)
                {
                    cx.set_clock(mem, c0 + b.cost_to_end(done));
                    if C::BOUNDARIES && whole && done == n {
                        let Some(c) = cx.again(mem, regs, b, done, next) else {
                            return true;
                        };
                        (k, c0, target) = (0, c, None);
                        end = n.min(cx.next_boundary(1));
                        continue 'run;
                    }
                    cx.leave(mem, regs, b, done, next);
                    return whole;
                }
            }
            k += 1;
        }
        if !C::BOUNDARIES || k >= n {
            break;
        }
        cx.set_clock(mem, c0 + b.cost_to_end(k));
        let pc = b.pc(vbase, k);
        match cx.boundary(mem, regs, b, k, pc) {
            Boundary::On => {}
            Boundary::Leave(next) => {
                cx.leave(mem, regs, b, k, next);
                return true;
            }
        }
        end = n.min(cx.next_boundary(k + 1));
    }
    cx.set_clock(mem, c0 + b.cost_to_end(n));
    let next = b.pc(vbase, n.wrapping_sub(1)).wrapping_add(4);
    cx.leave(mem, regs, b, n, target.unwrap_or(next));
    true
}

/// Where a block goes after its instruction `k`: on, or out through a
/// taken branch's slot (unless the block follows that jump), or out before
/// the next instruction when a `check`ed memory access reached a device or
/// changed code (the interpreter would look at both before the next
/// instruction).
#[inline(always)]
pub(super) fn after<C: BlockCtx>(
    cx: &mut C,
    mem: &mut C::Mem,
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
    if check && (b.mem >> k) & 1 != 0 && k + 1 < usize::from(b.len) && cx.access_ends_block(mem) {
        // Never between a branch and its slot: a branch is no memory
        // access.
        let at = b.at.get(k + 1).copied().unwrap_or(0);
        return Next::Leave(k + 1, vbase | (u64::from(at) << 2), false);
    }
    Next::On
}

/// A load micro-op into rt at cycle `at`, extended as the interpreter
/// extends it; false (done) or true (the general path must run it).
#[inline(always)]
fn load<C: BlockCtx, const W: u8, const SIGNED: bool>(
    cx: &mut C,
    mem: &mut C::Mem,
    (k, op): (usize, &Uop),
    g: &mut [u64; 32],
    rs: u64,
    at: u64,
    extra: &mut u64,
) -> bool {
    match cx.load(mem, (k, at), rs.wrapping_add(op.simm()), W, extra) {
        Some(v) => {
            let t = op.t & 31;
            g[usize::from(t)] = mem::extend::<W, SIGNED>(v);
            cx.loaded(mem, t);
            false
        }
        None => true,
    }
}

/// A store micro-op of rt at cycle `at`; false (done) or true (the general
/// path must run it).
#[inline(always)]
fn store<C: BlockCtx, const W: u8>(
    cx: &mut C,
    mem: &mut C::Mem,
    (k, op): (usize, &Uop),
    rs: u64,
    rt: u64,
    at: u64,
    extra: &mut u64,
) -> bool {
    !cx.store(mem, (k, at), rs.wrapping_add(op.simm()), W, rt, extra)
}

/// A branch or jump micro-op at `pc()` (asked only when needed): its target
/// if it is taken (JAL and JALR write their link).
#[inline(always)]
pub(super) fn transfer(
    op: &Uop,
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

/// Writes an ALU result; false: the micro-op is done.
#[inline(always)]
fn set(r: &mut u64, v: u64) -> bool {
    *r = v;
    false
}

/// Runs block `b` of a translator (`Block::straight`, at `pc` with its
/// page's base `pc & !0xFFF`) on `cx` from instruction `k`, `c0` being the
/// clock less the static costs up to `k` and `target` a taken transfer
/// whose slot `k` is: `cx.cycles()` and no target for a block's start, the
/// interlock carried into it paid (`Block::carried_stall`). Whether it ran
/// to its end.
#[inline(always)]
pub fn run_block<C: BlockCtx>(
    cx: &mut C,
    mem: &mut C::Mem,
    regs: &mut Regs,
    b: &Block,
    vbase: u64,
    (k, c0, target): (usize, u64, Option<u64>),
) -> bool {
    exec_from(cx, mem, regs, b, vbase, Start { k, c0, target })
}

/// The static cycles of block `b`'s first `done` instructions.
#[inline(always)]
pub fn static_cycles(b: &Block, done: usize) -> u64 {
    b.cost_to_end(done)
}
