//! Chaining: at an exit through which the block leaves whole, the block
//! linked there (`crate::Jit::link`) runs next without a return to the
//! caller's dispatch, if everything that dispatch would check still holds:
//! the successor is the one linked for this address, the page's generation
//! is unchanged (a store from another thread), no store of this block went
//! to the callout (it may have changed code or asked to stop), the run has
//! chained calls left (the stack bound, safety point 5), and the
//! successor's worst case ends before the next event, counted as the
//! dispatch counts it (before the carried interlock's stall). The
//! successor then starts with the state the dispatch would give it: its
//! start cycle past this block's cost and the stall, the instructions
//! retired so far, HI/LO in `State` (written back already).

use std::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{InstBuilder, Value};

use super::Lower;
use crate::fast::{CodePage, Tables};
use crate::{Link, State};

impl Lower<'_> {
    /// At the exit after `done` instructions for `pc`, whose static cost is
    /// `end` (registers written back): calls the linked block and returns
    /// what it returns if it may run, else goes on in a new block.
    pub(super) fn chain(&mut self, done: usize, pc: Value, end: u64) {
        let (st, fl) = (self.state, Self::flags());
        let no = self.f.create_block();
        let off = (done as i64 - 1) * size_of::<Link>() as i64;
        let cell = self.f.ins().iconst(self.callouts.ptr, self.links + off);
        let field = |l: &mut Self, ty, at: usize| l.f.ins().load(ty, fl, cell, at as i32);
        let want = field(self, I64, offset_of!(Link, pc));
        let other = self.f.ins().icmp(IntCC::NotEqual, want, pc);
        self.unless(other, no);
        let func = field(self, I64, offset_of!(Link, func));
        let none = self.f.ins().icmp_imm_s(IntCC::Equal, func, 0);
        self.unless(none, no);
        let called = self.f.use_var(self.store_called);
        self.unless(called, no);
        let left = self
            .f
            .ins()
            .load(I32, fl, st, offset_of!(State, links) as i32);
        let out = self.f.ins().icmp_imm_s(IntCC::Equal, left, 0);
        self.unless(out, no);
        let changed = self.generation_changed();
        self.unless(changed, no);
        // The cycle this block ends at, and the successor's worst end.
        let taken = self.f.use_var(self.taken);
        let c0 = self.f.use_var(self.c0);
        let at = self.f.ins().iadd(c0, taken);
        let at = self.f.ins().iadd_imm_s(at, end as i64);
        let max = field(self, I64, offset_of!(Link, max_cost));
        let worst = self.f.ins().iadd(at, max);
        let event = self
            .f
            .ins()
            .load(I64, fl, st, offset_of!(State, next_event) as i32);
        let late = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, worst, event);
        self.unless(late, no);
        let stall = field(self, I64, offset_of!(Link, stall));
        let c0 = self.f.ins().iadd(at, stall);
        self.f.ins().store(fl, c0, st, offset_of!(State, c0) as i32);
        let retired = self.retired_now();
        let retired = self.f.ins().iadd_imm_s(retired, done as i64);
        self.f
            .ins()
            .store(fl, retired, st, offset_of!(State, retired) as i32);
        let left = self.f.ins().iadd_imm_s(left, -1);
        self.f
            .ins()
            .store(fl, left, st, offset_of!(State, links) as i32);
        let args = [self.gpr, self.state, self.mem, self.vbase, self.tables];
        let call = self.f.ins().call_indirect(self.block_sig, func, &args);
        let code = self.f.inst_results(call).to_vec();
        self.f.ins().return_(&code);
        self.f.switch_to_block(no);
    }

    /// Not zero if the page `State::page` names is not at
    /// `State::generation` any more, or is not in `Tables::pages` (no
    /// tables: no chaining).
    pub(super) fn generation_changed(&mut self) -> Value {
        let (st, fl, t) = (self.state, Self::flags(), self.tables);
        let page = self
            .f
            .ins()
            .load(I64, fl, st, offset_of!(State, page) as i32);
        let len = self
            .f
            .ins()
            .load(I64, fl, t, offset_of!(Tables, pages_len) as i32);
        let outside = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, page, len);
        let inside = self.f.create_block();
        let join = self.f.create_block();
        self.f.append_block_param(join, I32);
        let yes = self.f.ins().iconst(I32, 1);
        self.f.ins().brif(outside, join, &[yes.into()], inside, &[]);
        self.f.switch_to_block(inside);
        let pages = self
            .f
            .ins()
            .load(I64, fl, t, offset_of!(Tables, pages) as i32);
        let off = self.f.ins().imul_imm_s(page, size_of::<CodePage>() as i64);
        let p = self.f.ins().iadd(pages, off);
        let p = self
            .f
            .ins()
            .iadd_imm_s(p, offset_of!(CodePage, generation) as i64);
        let now = self.f.ins().atomic_load(I32, fl, p);
        let want = self
            .f
            .ins()
            .load(I32, fl, st, offset_of!(State, generation) as i32);
        let changed = self.f.ins().icmp(IntCC::NotEqual, now, want);
        let changed = self.f.ins().uextend(I32, changed);
        self.f.ins().jump(join, &[changed.into()]);
        self.f.switch_to_block(join);
        self.f.block_params(join)[0]
    }
}
