//! The block IR to Cranelift IR. Safe code: it only describes a function;
//! `lib.rs` compiles and calls it.
//!
//! Guest registers live in Cranelift variables for the whole block: the ones
//! the block mentions are loaded on entry, and the ones it writes are stored
//! back at every exit. The dynamic cycles (taken transfers, HI/LO waits),
//! the pending target and whether one is pending are variables too; every
//! other cycle count is a constant of the exit it belongs to.

use std::mem::offset_of;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Function, InstBuilder, MemFlagsData, SigRef, Signature, StackSlot, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use crate::ir::{Alu, Block, Cond, Imm, Op, Shift};
use crate::State;

mod chain;
mod hilo;
mod ram;
mod region;

/// A block to compile into a function, with the address of its link cells
/// (`crate::Link`) and, in a loop, its exits that jump to another member.
pub(crate) struct Member<'a> {
    pub(crate) block: &'a Block,
    pub(crate) links: i64,
    pub(crate) edges: Vec<Edge>,
}

/// An exit of a loop's member that jumps to member `to` (an index in the
/// loop) when it leaves for that member's address and the chain's
/// conditions hold; `max_cost` and `stall` as in `crate::Link`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    pub(crate) done: usize,
    pub(crate) to: usize,
    pub(crate) max_cost: u64,
    pub(crate) stall: u64,
}

/// Exit codes the compiled function returns (see [`crate::Exit`]).
pub(crate) const LEAVE: u32 = 0;
pub(crate) const STOP: u32 = 1;
pub(crate) const RESUME: u32 = 2;
pub(crate) const RESUME_TARGET: u32 = 3;

/// `kind` bit of a load callout: sign-extend.
pub(crate) const SIGNED: u32 = 0x10;
/// `kind` bit of a store callout: say whether the block must stop after it.
pub(crate) const CHECK: u32 = 0x100;

/// The compiled block's signature: `(gpr, state, mem, vbase, tables) ->
/// exit code`, as `crate::BlockFn` spells it.
pub(crate) fn block_signature(cc: CallConv, ptr: Type) -> Signature {
    let mut s = Signature::new(cc);
    s.params
        .extend([ptr, ptr, ptr, I64, ptr].map(AbiParam::new));
    s.returns.push(AbiParam::new(I32));
    s
}

/// `(mem, ea, kind, out) -> ok`, as `crate::LoadFn` spells it.
pub(crate) fn load_signature(cc: CallConv, ptr: Type) -> Signature {
    let mut s = Signature::new(cc);
    s.params.extend([ptr, I64, I32, ptr].map(AbiParam::new));
    s.returns.push(AbiParam::new(I32));
    s
}

/// `(mem, ea, value, kind) -> 0 not done, 1 done, 2 done and stop`, as
/// `crate::StoreFn` spells it.
pub(crate) fn store_signature(cc: CallConv, ptr: Type) -> Signature {
    let mut s = Signature::new(cc);
    s.params.extend([ptr, I64, I64, I32].map(AbiParam::new));
    s.returns.push(AbiParam::new(I32));
    s
}

/// Where the callouts are, as integers for `call_indirect`.
#[derive(Clone, Copy)]
pub(crate) struct Callouts {
    pub(crate) load: i64,
    pub(crate) store: i64,
    pub(crate) cc: CallConv,
    pub(crate) ptr: Type,
    pub(crate) config: TargetFrontendConfig,
}

#[derive(Clone, Copy)]
struct HiLo {
    hi: Variable,
    lo: Variable,
    ready: Variable,
}

struct Lower<'a> {
    f: FunctionBuilder<'a>,
    b: &'a Block,
    gpr: Value,
    state: Value,
    mem: Value,
    vbase: Value,
    regs: [Option<Variable>; 32],
    /// Registers the block writes: stored back at every exit.
    written: u32,
    taken: Variable,
    target: Variable,
    pending: Variable,
    /// The pending transfer's target as an offset from `vbase` when the
    /// code says it (a conditional branch's), so that a loop's jump knows
    /// its member without a test.
    known_target: Option<i64>,
    /// The dynamic cycles with the pending transfer's penalty, while
    /// nothing but that transfer changed them: what they are in its slot's
    /// exit (taken there), where the select need not run.
    taken_if: Option<Value>,
    /// HI, LO, their ready cycle and the block's start cycle, when the
    /// block multiplies or reads HI/LO.
    hilo: Option<HiLo>,
    /// The RAM fast path's tables (`fast::Tables`).
    tables: Value,
    /// The pages the accesses went to last (when the function has any).
    cache: Option<ram::Cache>,
    out: StackSlot,
    load_sig: SigRef,
    store_sig: SigRef,
    callouts: Callouts,
    /// The current block's start cycle (`State::c0` in and out).
    c0: Variable,
    /// Instructions retired by the blocks before it (`State::retired`).
    retired: Variable,
    /// The members (one, unless a loop), the one being lowered, the
    /// start of each and, in a loop, what its jumps check.
    members: &'a [Member<'a>],
    member: usize,
    edges: &'a [Edge],
    heads: Vec<cranelift_codegen::ir::Block>,
    looping: Option<region::Looping>,
    /// Not zero once a store went to the callout: the block then never
    /// chains (the callout may have changed code or asked to stop).
    store_called: Variable,
    /// The address of the function's link cells (`crate::Link`).
    links: i64,
    block_sig: SigRef,
}

/// Fills `func` (whose signature is [`block_signature`]) with the code of
/// `members`, entered at the first.
pub(crate) fn lower(
    members: &[Member<'_>],
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    c: Callouts,
) {
    let mut f = FunctionBuilder::new(func, fctx);
    let entry = f.create_block();
    f.append_block_params_for_function_params(entry);
    f.switch_to_block(entry);
    let p = f.block_params(entry).to_vec();
    let (Some(&gpr), Some(&state), Some(&mem), Some(&vbase), Some(&tables), Some(first)) = (
        p.first(),
        p.get(1),
        p.get(2),
        p.get(3),
        p.get(4),
        members.first(),
    ) else {
        // The signature has five parameters and there is a member: not
        // reached. Kept total.
        f.ins().return_(&[]);
        f.seal_all_blocks();
        f.finalize(c.config);
        return;
    };
    let out = f.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
    let load_sig = f.import_signature(load_signature(c.cc, c.ptr));
    let store_sig = f.import_signature(store_signature(c.cc, c.ptr));
    let block_sig = f.import_signature(block_signature(c.cc, c.ptr));
    let store_called = f.declare_var(I32);
    let taken = f.declare_var(I64);
    let target = f.declare_var(I64);
    let pending = f.declare_var(I32);
    let zero32 = f.ins().iconst(I32, 0);
    f.def_var(store_called, zero32);
    let var = |f: &mut FunctionBuilder<'_>, off: usize| {
        let v = f.declare_var(I64);
        let x = f
            .ins()
            .load(I64, MemFlagsData::trusted(), state, off as i32);
        f.def_var(v, x);
        v
    };
    let c0 = var(&mut f, offset_of!(State, c0));
    let retired = var(&mut f, offset_of!(State, retired));
    let uses_hilo = members
        .iter()
        .flat_map(|m| &m.block.insns)
        .any(|i| matches!(i.op, Op::Mul { .. } | Op::MoveFrom { .. }));
    let hilo = uses_hilo.then(|| HiLo {
        hi: var(&mut f, offset_of!(State, hi)),
        lo: var(&mut f, offset_of!(State, lo)),
        ready: var(&mut f, offset_of!(State, hilo_ready)),
    });
    let heads = members.iter().map(|_| f.create_block()).collect();
    let mut l = Lower {
        f,
        hilo,
        tables,
        cache: None,
        known_target: None,
        taken_if: None,
        b: first.block,
        gpr,
        state,
        mem,
        vbase,
        regs: [None; 32],
        written: 0,
        taken,
        target,
        pending,
        out,
        load_sig,
        store_sig,
        callouts: c,
        c0,
        retired,
        store_called,
        links: first.links,
        block_sig,
        members,
        member: 0,
        edges: &first.edges,
        heads,
        looping: None,
    };
    l.load_registers();
    let accesses = members
        .iter()
        .flat_map(|m| &m.block.insns)
        .any(|i| matches!(i.op, Op::Load { .. } | Op::Store { .. }));
    if accesses {
        l.cache = Some(l.new_cache());
    }
    l.start_loop();
    for (j, m) in members.iter().enumerate() {
        (l.b, l.links, l.edges, l.member) = (m.block, m.links, &m.edges, j);
        if let Some(&head) = l.heads.get(j) {
            if j == 0 {
                l.f.ins().jump(head, &[]);
            }
            l.f.switch_to_block(head);
        }
        l.body();
    }
    l.f.seal_all_blocks();
    l.f.finalize(c.config);
}

/// The registers an instruction reads and the one it writes (0: none).
fn uses(op: &Op) -> (u32, u8) {
    let bit = |r: u8| 1u32 << (r & 31);
    match *op {
        Op::Nop | Op::Interp => (0, 0),
        Op::Alu { d, s, t, .. } => (bit(s) | bit(t), d),
        Op::Imm { t, s, .. } => (bit(s), t),
        Op::Shift { d, t, .. } => (bit(t), d),
        Op::Const { t, .. } => (0, t),
        Op::Load { t, s, .. } => (bit(s), t),
        Op::Store { t, s, .. } => (bit(s) | bit(t), 0),
        Op::Branch { s, t, .. } => (bit(s) | bit(t), 0),
        Op::Jump { link, .. } => (0, if link { 31 } else { 0 }),
        Op::JumpReg { s, link } => (bit(s), link),
        Op::Mul { s, t, .. } => (bit(s) | bit(t), 0),
        Op::MoveFrom { d, .. } => (0, d),
    }
}

impl Lower<'_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    /// Loads every register the block mentions into its variable.
    fn load_registers(&mut self) {
        let mut mentioned = 0u32;
        for i in self.members.iter().flat_map(|m| &m.block.insns) {
            let (reads, write) = uses(&i.op);
            mentioned |= reads | 1 << (write & 31);
            if write & 31 != 0 {
                self.written |= 1 << (write & 31);
            }
        }
        for r in 1..32u8 {
            if mentioned >> r & 1 == 0 {
                continue;
            }
            let v = self.f.declare_var(I64);
            let x = self
                .f
                .ins()
                .load(I64, Self::flags(), self.gpr, i32::from(r) * 8);
            self.f.def_var(v, x);
            if let Some(slot) = self.regs.get_mut(usize::from(r)) {
                *slot = Some(v);
            }
        }
    }

    fn get(&mut self, r: u8) -> Value {
        match self.regs.get(usize::from(r & 31)).copied().flatten() {
            Some(v) => self.f.use_var(v),
            None => self.f.ins().iconst(I64, 0),
        }
    }

    fn set(&mut self, r: u8, x: Value) {
        if let Some(v) = self.regs.get(usize::from(r & 31)).copied().flatten() {
            if r & 31 != 0 {
                self.f.def_var(v, x);
            }
        }
    }

    fn sext32(&mut self, x: Value) -> Value {
        let w = self.f.ins().ireduce(I32, x);
        self.f.ins().sextend(I64, w)
    }

    fn flag(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        let c = self.f.ins().icmp(cc, a, b);
        self.f.ins().uextend(I64, c)
    }

    /// The address of instruction `k`.
    fn pc(&mut self, k: usize) -> Value {
        let off = self.offset(k);
        self.f.ins().iadd_imm_s(self.vbase, off)
    }

    /// The address of instruction `k` less the page's.
    fn offset(&self, k: usize) -> i64 {
        i64::from(self.b.insns.get(k).map_or(0, |i| i.word)) << 2
    }

    /// Ends the function: registers back, the exit's state, its code.
    fn exit(&mut self, code: Value, at: usize, pc: Value, cycles: u64) {
        self.write_back();
        self.finish(code, at, pc, cycles);
    }

    /// The registers and HI/LO the block wrote, back where they came from.
    fn write_back(&mut self) {
        for r in 1..32u8 {
            if self.written >> r & 1 != 0 {
                let x = self.get(r);
                self.f
                    .ins()
                    .store(Self::flags(), x, self.gpr, i32::from(r) * 8);
            }
        }
        let st = self.state;
        let fl = Self::flags();
        if let Some(h) = self.hilo {
            for (v, off) in [
                (h.hi, offset_of!(State, hi)),
                (h.lo, offset_of!(State, lo)),
                (h.ready, offset_of!(State, hilo_ready)),
            ] {
                let x = self.f.use_var(v);
                self.f.ins().store(fl, x, st, off as i32);
            }
        }
    }

    /// Returns `code`, with the exit's state (registers written back).
    fn finish(&mut self, code: Value, at: usize, pc: Value, cycles: u64) {
        let (st, fl) = (self.state, Self::flags());
        let taken = self.f.use_var(self.taken);
        let cycles = self.f.ins().iadd_imm_s(taken, cycles as i64);
        let tag = self.f.ins().iconst(I32, i64::from(self.b.tag));
        self.f
            .ins()
            .store(fl, tag, st, offset_of!(State, tag) as i32);
        self.f.ins().store(fl, pc, st, offset_of!(State, pc) as i32);
        self.f
            .ins()
            .store(fl, cycles, st, offset_of!(State, cycles) as i32);
        let at = self.f.ins().iconst(I32, at as i64);
        self.f.ins().store(fl, at, st, offset_of!(State, at) as i32);
        let c0 = self.f.use_var(self.c0);
        self.f.ins().store(fl, c0, st, offset_of!(State, c0) as i32);
        let retired = self.retired_now();
        self.f
            .ins()
            .store(fl, retired, st, offset_of!(State, retired) as i32);
        self.f.ins().return_(&[code]);
    }

    /// Leaves after `done` instructions for `pc` (`known`: it is `vbase`
    /// plus that); through one of the block's exits (`LEAVE`), on to the
    /// block linked there if it may run.
    fn leave(&mut self, code: u32, done: usize, pc: Value, known: Option<i64>) {
        let end = done
            .checked_sub(1)
            .and_then(|k| self.b.insns.get(k))
            .map_or(0, |i| u64::from(i.end));
        if code == LEAVE {
            if let Some(&e) = self.edges.iter().find(|e| e.done == done) {
                self.jump(e, pc, end, known);
            }
        }
        self.write_back();
        if code == LEAVE && done > 0 {
            self.chain(done, pc, end);
        }
        let code = self.f.ins().iconst(I32, i64::from(code));
        self.finish(code, done, pc, end);
    }

    /// Stops before instruction `k` for the interpreter, with the pending
    /// target if there is one.
    fn resume(&mut self, k: usize) {
        let pending = self.f.use_var(self.pending);
        let code = self.f.ins().iadd_imm_s(pending, i64::from(RESUME));
        let target = self.f.use_var(self.target);
        self.exit(code, k, target, 0);
    }

    /// Branches to a new block that runs `exit` when `cond` is not zero;
    /// code goes on in the other.
    fn exit_if(&mut self, cond: Value, exit: impl FnOnce(&mut Self)) {
        let out = self.f.create_block();
        let on = self.f.create_block();
        self.f.ins().brif(cond, out, &[], on, &[]);
        self.f.switch_to_block(out);
        exit(self);
        self.f.switch_to_block(on);
    }

    fn take(&mut self, cond: Value, to: Value, known: Option<i64>) {
        self.known_target = known;
        // Select, not branch: a taken transfer only sets state.
        let cost = self.b.taken_cost as i64;
        let old = self.f.use_var(self.taken);
        let more = self.f.ins().iadd_imm_s(old, cost);
        let taken = self.f.ins().select(cond, more, old);
        self.f.def_var(self.taken, taken);
        self.taken_if = Some(more);
        let old = self.f.use_var(self.target);
        let target = self.f.ins().select(cond, to, old);
        self.f.def_var(self.target, target);
        let p = self.f.ins().uextend(I32, cond);
        self.f.def_var(self.pending, p);
    }

    fn body(&mut self) {
        let zero = self.f.ins().iconst(I64, 0);
        self.f.def_var(self.taken, zero);
        self.f.def_var(self.target, zero);
        let zero32 = self.f.ins().iconst(I32, 0);
        self.f.def_var(self.pending, zero32);
        (self.known_target, self.taken_if) = (None, None);
        let n = self.b.insns.len();
        for k in 0..n {
            let Some(&i) = self.b.insns.get(k) else { break };
            let mut stop = None;
            match i.op {
                Op::Nop => {}
                Op::Mul { signed, s, t } => match self.hilo {
                    Some(h) => self.mul(h, k, signed, s, t),
                    None => {
                        self.resume(k);
                        return;
                    }
                },
                Op::MoveFrom { d, hi } => match self.hilo {
                    Some(h) => self.move_from(h, k, d, hi),
                    None => {
                        self.resume(k);
                        return;
                    }
                },
                Op::Interp => {
                    self.resume(k);
                    return;
                }
                Op::Alu { op, d, s, t } => {
                    let (a, b) = (self.get(s), self.get(t));
                    let ins = self.f.ins();
                    let x = match op {
                        Alu::Addu => {
                            let x = ins.iadd(a, b);
                            self.sext32(x)
                        }
                        Alu::Subu => {
                            let x = ins.isub(a, b);
                            self.sext32(x)
                        }
                        Alu::And => ins.band(a, b),
                        Alu::Or => ins.bor(a, b),
                        Alu::Xor => ins.bxor(a, b),
                        Alu::Nor => {
                            let x = ins.bor(a, b);
                            self.f.ins().bnot(x)
                        }
                        Alu::Slt => self.flag(IntCC::SignedLessThan, a, b),
                        Alu::Sltu => self.flag(IntCC::UnsignedLessThan, a, b),
                    };
                    self.set(d, x);
                }
                Op::Imm { op, t, s, imm } => {
                    let a = self.get(s);
                    let imm = imm as i64;
                    let x = match op {
                        Imm::Addu => {
                            let x = self.f.ins().iadd_imm_s(a, imm);
                            self.sext32(x)
                        }
                        Imm::Slt => {
                            let c = self.f.ins().icmp_imm_s(IntCC::SignedLessThan, a, imm);
                            self.f.ins().uextend(I64, c)
                        }
                        Imm::Sltu => {
                            let c = self.f.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, imm);
                            self.f.ins().uextend(I64, c)
                        }
                        Imm::And => self.f.ins().band_imm_s(a, imm),
                        Imm::Or => self.f.ins().bor_imm_s(a, imm),
                        Imm::Xor => self.f.ins().bxor_imm_s(a, imm),
                    };
                    self.set(t, x);
                }
                Op::Shift { op, d, t, sa } => {
                    let a = self.get(t);
                    let w = self.f.ins().ireduce(I32, a);
                    let sa = i64::from(sa & 31);
                    let x = match op {
                        Shift::Sll => self.f.ins().ishl_imm_s(w, sa),
                        Shift::Srl => self.f.ins().ushr_imm_s(w, sa),
                        Shift::Sra => self.f.ins().sshr_imm_s(w, sa),
                    };
                    let x = self.f.ins().sextend(I64, x);
                    self.set(d, x);
                }
                Op::Const { t, value } => {
                    let x = self.f.ins().iconst(I64, value as i64);
                    self.set(t, x);
                }
                Op::Load {
                    t,
                    s,
                    off,
                    width,
                    signed,
                } => self.load(k, (t, s, off), width, signed),
                Op::Store { t, s, off, width } => {
                    stop = self.store(k, &i, (t, s, off), width);
                }
                Op::Branch { cond, s, t, off } => {
                    let a = self.get(s);
                    let c = match cond {
                        Cond::Eq | Cond::Ne => {
                            let b = self.get(t);
                            let cc = if cond == Cond::Eq {
                                IntCC::Equal
                            } else {
                                IntCC::NotEqual
                            };
                            self.f.ins().icmp(cc, a, b)
                        }
                        Cond::Lez => self.f.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, a, 0),
                        Cond::Gtz => self.f.ins().icmp_imm_s(IntCC::SignedGreaterThan, a, 0),
                        Cond::Ltz => self.f.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0),
                        Cond::Gez => self
                            .f
                            .ins()
                            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, a, 0),
                    };
                    let at = self.offset(k).wrapping_add(off as i64).wrapping_add(4);
                    let to = self.f.ins().iadd_imm_s(self.vbase, at);
                    self.take(c, to, Some(at));
                }
                Op::Jump { index, link } => {
                    let pc = self.pc(k);
                    if link {
                        let r = self.f.ins().iadd_imm_s(pc, 8);
                        self.set(31, r);
                    }
                    let slot = self.f.ins().iadd_imm_s(pc, 4);
                    let region = self.f.ins().band_imm_s(slot, !0x0FFF_FFFFi64);
                    let to = self.f.ins().bor_imm_s(region, i64::from(index) << 2);
                    let yes = self.f.ins().iconst(I8, 1);
                    self.take(yes, to, None);
                }
                Op::JumpReg { s, link } => {
                    let to = self.get(s);
                    if link != 0 {
                        let pc = self.pc(k);
                        let r = self.f.ins().iadd_imm_s(pc, 8);
                        self.set(link, r);
                    }
                    let yes = self.f.ins().iconst(I8, 1);
                    self.take(yes, to, None);
                }
            }
            if i.slot {
                if i.follow {
                    let zero = self.f.ins().iconst(I32, 0);
                    self.f.def_var(self.pending, zero);
                } else {
                    let p = self.f.use_var(self.pending);
                    let (known, taken) = (self.known_target, self.taken_if);
                    self.exit_if(p, |l| {
                        if let Some(t) = taken {
                            l.f.def_var(l.taken, t);
                        }
                        let to = l.f.use_var(l.target);
                        l.leave(LEAVE, k + 1, to, known);
                    });
                }
            }
            if let Some(r) = stop {
                let must = self.f.ins().icmp_imm_s(IntCC::Equal, r, 2);
                self.exit_if(must, |l| {
                    let next = l.pc(k + 1);
                    l.leave(STOP, k + 1, next, Some(l.offset(k + 1)));
                });
            }
        }
        let after = self.offset(n.saturating_sub(1)) + 4;
        let next = self.f.ins().iadd_imm_s(self.vbase, after);
        self.leave(LEAVE, n, next, Some(after));
    }
}
