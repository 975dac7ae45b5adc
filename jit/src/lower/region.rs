//! A loop's jumps (`crate::region`): at an exit that leads to another
//! member, the member's code runs next, in the same function, if the chain
//! would have called it (`chain.rs`): the address is the member's, no
//! store went to the callout, the page's generation is unchanged, the
//! member's worst case ends before the next event, and the run has passes
//! left. What those checks read and do not change during a run (the page's
//! generation cell, the wanted generation, the next event) is read once,
//! on entry.

use std::mem::{offset_of, size_of};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{Block as Label, InstBuilder, Value};
use cranelift_frontend::Variable;

use super::{Edge, Lower};
use crate::fast::{CodePage, Tables, CONCURRENT};
use crate::region::{MAX_MEMBERS, MAX_PASSES};
use crate::State;

/// The bit of `Looping::passes` that says other threads may store to RAM:
/// the sign, so that a jump's one test (`passes > 0`) fails for it too.
const SHARED: u32 = 1 << 31;
/// The bit of `Looping::passes` that says no more jumps (with the sign):
/// the count below it stays what it was, for [`Lower::retired_now`].
const STOPPED: u32 = 1 << 30;
/// The jumps left, in `Looping::passes`.
const COUNT: u32 = STOPPED - 1;

/// A loop whose members each have one edge, to the next (the last to the
/// first): after `j` jumps the run is in member `j % k`, and what it
/// retired follows from `j` (`Lower::retired_now`), so no count is kept.
#[derive(Clone, Copy)]
struct Cycle {
    k: u64,
    /// Instructions retired by one pass, and by the jumps into each member
    /// from the first.
    pass: u64,
    before: [u64; MAX_MEMBERS],
}

#[derive(Clone, Copy)]
pub(super) struct Looping {
    /// Jumps left in this run ([`COUNT`]), [`STOPPED`] from the start if
    /// the page is not in the tables (no tables lent) or not at the wanted
    /// generation, and from the first store that went to the callout (it
    /// may have changed code or asked to stop), so that one test at each
    /// jump covers the three; with [`SHARED`] or'ed in where other threads
    /// store, and with stopping.
    passes: Variable,
    cycle: Option<Cycle>,
    /// The page's generation cell (read at a jump only where other threads
    /// store: `SHARED`).
    cell: Value,
    generation: Value,
    next_event: Value,
}

impl Lower<'_> {
    /// In a loop, on entry: what its jumps check.
    pub(super) fn start_loop(&mut self) {
        if self.members.iter().all(|m| m.edges.is_empty()) {
            return;
        }
        let (st, t, fl) = (self.state, self.tables, Self::flags());
        // The page out of the tables or not at the wanted generation
        // already: no jumps (the chain would not call either).
        let changed = self.generation_changed();
        let field = |l: &mut Self, base, ty, off: usize| l.f.ins().load(ty, fl, base, off as i32);
        let page = field(self, st, I64, offset_of!(State, page));
        let pages = field(self, t, I64, offset_of!(Tables, pages));
        let off = self.f.ins().imul_imm_s(page, size_of::<CodePage>() as i64);
        let p = self.f.ins().iadd(pages, off);
        let cell = self
            .f
            .ins()
            .iadd_imm_s(p, offset_of!(CodePage, generation) as i64);
        let generation = field(self, st, I32, offset_of!(State, generation));
        let next_event = field(self, st, I64, offset_of!(State, next_event));
        let flags = field(self, t, I32, offset_of!(Tables, flags));
        let shared = self.f.ins().band_imm_s(flags, i64::from(CONCURRENT));
        let plain = self.f.ins().iconst(I32, i64::from(MAX_PASSES));
        let checked = self.f.ins().iconst(I32, i64::from(MAX_PASSES | SHARED));
        let n = self.f.ins().select(shared, checked, plain);
        let none = self
            .f
            .ins()
            .iconst(I32, i64::from(MAX_PASSES | SHARED | STOPPED));
        let n = self.f.ins().select(changed, none, n);
        let passes = self.f.declare_var(I32);
        self.f.def_var(passes, n);
        self.looping = Some(Looping {
            passes,
            cycle: self.cycle(),
            cell,
            generation,
            next_event,
        });
    }

    /// On to `go` if the run may jump again: passes left and, where other
    /// threads store (`SHARED`), the page still at its generation; else to
    /// `no`. Only the shared case leaves the one test of the counter.
    fn may_jump(&mut self, lp: Looping, go: Label, no: Label) {
        let passes = self.f.use_var(lp.passes);
        let plain = self.f.ins().icmp_imm_s(IntCC::SignedGreaterThan, passes, 0);
        let check = self.f.create_block();
        self.f.set_cold_block(check);
        self.f.ins().brif(plain, go, &[], check, &[]);
        self.f.switch_to_block(check);
        let stopped = self.f.ins().band_imm_s(passes, i64::from(STOPPED));
        self.unless(stopped, no);
        let left = self.f.ins().band_imm_s(passes, i64::from(COUNT));
        let out = self.f.ins().icmp_imm_s(IntCC::Equal, left, 0);
        self.unless(out, no);
        let now = self.f.ins().atomic_load(I32, Self::flags(), lp.cell);
        let changed = self.f.ins().icmp(IntCC::NotEqual, now, lp.generation);
        self.unless(changed, no);
        self.f.ins().jump(go, &[]);
        self.f.switch_to_block(go);
    }

    /// No more jumps in this run (a store went to the callout).
    pub(super) fn stop_looping(&mut self) {
        if let Some(lp) = self.looping {
            let passes = self.f.use_var(lp.passes);
            let passes = self.f.ins().bor_imm_s(passes, i64::from(SHARED | STOPPED));
            self.f.def_var(lp.passes, passes);
        }
    }

    /// At the exit `e` for `pc` (`known`: `vbase` plus that) whose static
    /// cost is `end`: on to member `e.to` if it may run now, as the
    /// dispatch would start it (its start cycle past this block's end and
    /// the stall, the instructions retired counted); else goes on in a new
    /// block.
    pub(super) fn jump(&mut self, e: Edge, pc: Value, end: u64, known: Option<i64>) {
        let (Some(lp), Some(&head), Some(to)) =
            (self.looping, self.heads.get(e.to), self.members.get(e.to))
        else {
            return;
        };
        let word = to.block.insns.first().map_or(0, |i| i.word);
        let at = i64::from(word) << 2;
        if known.is_some_and(|k| k != at) {
            return;
        }
        let no = self.f.create_block();
        if known.is_none() {
            let start = self.f.ins().iadd_imm_s(self.vbase, at);
            let other = self.f.ins().icmp(IntCC::NotEqual, pc, start);
            self.unless(other, no);
        }
        let go = self.f.create_block();
        self.may_jump(lp, go, no);
        let taken = self.f.use_var(self.taken);
        let c0 = self.f.use_var(self.c0);
        let at = self.f.ins().iadd(c0, taken);
        let at = self.f.ins().iadd_imm_s(at, end as i64);
        let worst = self.f.ins().iadd_imm_s(at, e.max_cost as i64);
        let late = self
            .f
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, worst, lp.next_event);
        self.unless(late, no);
        let c0 = self.f.ins().iadd_imm_s(at, e.stall as i64);
        self.f.def_var(self.c0, c0);
        if lp.cycle.is_none() {
            let retired = self.f.use_var(self.retired);
            let retired = self.f.ins().iadd_imm_s(retired, e.done as i64);
            self.f.def_var(self.retired, retired);
        }
        let passes = self.f.use_var(lp.passes);
        let passes = self.f.ins().iadd_imm_s(passes, -1);
        self.f.def_var(lp.passes, passes);
        self.f.ins().jump(head, &[]);
        self.f.switch_to_block(no);
    }

    /// The loop's members as a [`Cycle`], if they form one.
    fn cycle(&self) -> Option<Cycle> {
        let k = self.members.len();
        let mut before = [0; MAX_MEMBERS];
        let mut pass = 0;
        for (m, member) in self.members.iter().enumerate() {
            let [e] = member.edges[..] else { return None };
            if e.to != (m + 1) % k {
                return None;
            }
            *before.get_mut(m)? = pass;
            pass += e.done as u64;
        }
        Some(Cycle {
            k: k as u64,
            pass,
            before,
        })
    }

    /// `State::retired` as an exit of member `self.member` leaves it.
    pub(super) fn retired_now(&mut self) -> Value {
        let Some((lp, c)) = self.looping.and_then(|lp| Some((lp, lp.cycle?))) else {
            return self.f.use_var(self.retired);
        };
        let m = self.member as u64;
        let (st, fl) = (self.state, Self::flags());
        // Jumps made: the count's start less what is left; of them, the
        // whole passes (then `m` more into this member).
        let passes = self.f.use_var(lp.passes);
        let left = self.f.ins().band_imm_s(passes, i64::from(COUNT));
        let left = self.f.ins().uextend(I64, left);
        let all = self.f.ins().iconst(I64, i64::from(MAX_PASSES) - m as i64);
        let j = self.f.ins().isub(all, left);
        let whole = self.f.ins().udiv_imm_s(j, c.k as i64);
        let n = self.f.ins().imul_imm_s(whole, c.pass as i64);
        let before = c.before.get(self.member).copied().unwrap_or(0);
        let n = self.f.ins().iadd_imm_s(n, before as i64);
        let start = self
            .f
            .ins()
            .load(I64, fl, st, offset_of!(State, retired) as i32);
        self.f.ins().iadd(start, n)
    }
}
