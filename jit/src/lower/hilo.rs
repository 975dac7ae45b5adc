//! MULT/MULTU and MFHI/MFLO, with HI/LO and the cycle they are ready at
//! carried in variables as tier 2 carries them in the core.

use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, Value};

use super::{HiLo, Lower};

impl Lower<'_> {
    /// The cycle instruction `k` starts at: the block's start, the dynamic
    /// cycles so far, its static start.
    fn now(&mut self, k: usize) -> Value {
        let start = self.b.insns.get(k).map_or(0, |i| i.start);
        let taken = self.f.use_var(self.taken);
        let c0 = self.f.use_var(self.c0);
        let at = self.f.ins().iadd(c0, taken);
        self.f.ins().iadd_imm_s(at, i64::from(start))
    }

    /// MULT/MULTU at `k` (tier 2's `Core::mult`).
    pub(super) fn mul(&mut self, h: HiLo, k: usize, signed: bool, s: u8, t: u8) {
        let (a, b) = (self.get(s), self.get(t));
        let (a, b) = (self.f.ins().ireduce(I32, a), self.f.ins().ireduce(I32, b));
        let (a, b) = if signed {
            (self.f.ins().sextend(I64, a), self.f.ins().sextend(I64, b))
        } else {
            (self.f.ins().uextend(I64, a), self.f.ins().uextend(I64, b))
        };
        let p = self.f.ins().imul(a, b);
        let lo = self.sext32(p);
        let high = self.f.ins().ushr_imm_s(p, 32);
        let hi = self.sext32(high);
        self.f.def_var(h.lo, lo);
        self.f.def_var(h.hi, hi);
        let now = self.now(k);
        let ready = self.f.ins().iadd_imm_s(now, self.b.mul_busy as i64);
        self.f.def_var(h.ready, ready);
    }

    /// MFHI/MFLO at `k` (tier 2's `Core::mfhilo`): the wait joins the
    /// dynamic cycles.
    pub(super) fn move_from(&mut self, h: HiLo, k: usize, d: u8, hi: bool) {
        // It waits until `ready - issue` (never before 0): counted past
        // `issue`, that is `max(now + issue, ready)`, with no underflow.
        let now = self.now(k);
        let ready = self.f.use_var(h.ready);
        let from = self.f.ins().iadd_imm_s(now, self.b.issue as i64);
        let until = self.f.ins().umax(from, ready);
        let wait = self.f.ins().isub(until, from);
        let taken = self.f.use_var(self.taken);
        let taken = self.f.ins().iadd(taken, wait);
        self.f.def_var(self.taken, taken);
        self.taken_if = None;
        let x = self.f.use_var(if hi { h.hi } else { h.lo });
        self.set(d, x);
    }
}
