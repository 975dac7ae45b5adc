//! What translated code knows along a chain of blocks, and its indirect
//! exits (docs/translation.md, "Chains"): a leaf callee's `jr $ra` becomes
//! a direct jump when `$ra` provably holds the caller's link, never when
//! the callee writes `$ra` (also when it starts to after translation); an
//! indirect jump among a few targets hits its polymorphic inline cache,
//! charged per entry tried.

#![allow(clippy::panic, clippy::unwrap_used)]

use monitor::bt::{Exec, Spent};
use monitor::cost::COST;
use monitor::Monitor;
use sim::isa::asm::Asm;
use sim::isa::{Op, Reg};

use Reg as R;

mod btkit;

use btkit::{native, virtualized};

const CALLS: u32 = 100;

/// `CALLS` times from one site: `jal f`; the two instructions at the link
/// add 1 and 16 to `s1`. Halts with `s1`. `f` at 0x80001100 is `callee`.
fn caller(callee: &dyn Fn(&mut Asm)) -> Asm {
    let mut a = Asm::new(0x8000_1000);
    a.imm(Op::Addiu, R::S0, R::ZERO, i64::from(CALLS));
    a.label("loop");
    a.jump(Op::Jal, "f");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, 1);
    a.imm(Op::Addiu, R::S1, R::S1, 16);
    a.imm(Op::Addiu, R::S0, R::S0, -1);
    a.bnez(R::S0, "loop");
    a.nop();
    sim::testkit::halt(&mut a, R::S1);
    while a.here() < 0x8000_1100 {
        a.nop();
    }
    a.label("f");
    callee(&mut a);
    a
}

/// The same halt status natively and under `exec`.
fn same_as_natively(a: &Asm, exec: Exec) -> Monitor {
    let (_, status) = native(&[a]);
    let (_, vstatus, m) = virtualized(&[a], exec);
    assert_eq!(vstatus, status, "{exec:?}");
    m
}

fn spent(m: &Monitor, what: Spent) -> u64 {
    m.vms[0].bt.stats.spent[what as usize]
}

/// A leaf (it never writes `$ra`, here across a branch into a second
/// block) returns through a direct jump: no compare, no lookup.
#[test]
fn a_leaf_callees_return_is_a_chained_jump() {
    let a = caller(&|a| {
        a.imm(Op::Addiu, R::V0, R::ZERO, 3);
        a.bnez(R::V0, "ret");
        a.nop();
        a.label("ret");
        a.jr(R::RA);
        a.nop();
    });
    for exec in [Exec::Translate, Exec::Adaptive] {
        let m = same_as_natively(&a, exec);
        let st = &m.vms[0].bt.stats;
        assert_eq!(st.predicted, 0, "{exec:?}");
        // The run's entry only.
        assert_eq!(st.lookups, 1, "{exec:?}");
        assert_eq!(spent(&m, Spent::Predict), 0, "{exec:?}");
    }
}

/// A callee that writes `$ra` (here: returns past the two instructions
/// at its link) keeps its `jr $ra` indirect, and returns where `$ra` says.
#[test]
fn a_callee_that_writes_ra_returns_where_ra_says() {
    let a = caller(&|a| {
        a.imm(Op::Addiu, R::RA, R::RA, 8);
        a.jr(R::RA);
        a.nop();
    });
    let m = same_as_natively(&a, Exec::Translate);
    let st = &m.vms[0].bt.stats;
    assert_eq!(st.predicted + st.lookups, u64::from(CALLS) + 1);
    // A non-leaf: its nested call's link is not its own.
    let a = caller(&|a| {
        a.move_(R::T9, R::RA);
        a.jump(Op::Jal, "g");
        a.nop();
        a.move_(R::RA, R::T9);
        a.jr(R::RA);
        a.nop();
        a.label("g");
        a.imm(Op::Addiu, R::S1, R::S1, 256);
        a.jr(R::RA);
        a.nop();
    });
    let m = same_as_natively(&a, Exec::Translate);
    assert_eq!(m.vms[0].bt.stats.predicted, u64::from(CALLS) - 1);
}

/// A leaf whose return was made a direct jump, then rewritten to write
/// `$ra` (return past its link): the next call runs the new code, whose
/// return is indirect again.
#[test]
fn a_leaf_rewritten_to_write_ra_after_translation_returns_where_ra_says() {
    let mut patch = Asm::new(0x8000_1100);
    patch.imm(Op::Addiu, R::RA, R::RA, 8);
    let new_word = patch.finish().unwrap()[0];
    let mut a = Asm::new(0x8000_1000);
    a.imm(Op::Addiu, R::S0, R::ZERO, 3);
    a.label("loop");
    a.jump(Op::Jal, "f");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, 1);
    a.imm(Op::Addiu, R::S1, R::S1, 16);
    a.li(R::T0, new_word);
    a.li(R::T1, 0x8000_1100);
    a.mem(Op::Sw, R::T0, 0, R::T1);
    a.imm(Op::Addiu, R::S0, R::S0, -1);
    a.bnez(R::S0, "loop");
    a.nop();
    sim::testkit::halt(&mut a, R::S1);
    while a.here() < 0x8000_1100 {
        a.nop();
    }
    a.label("f");
    a.imm(Op::Addiu, R::V0, R::ZERO, 3);
    a.jr(R::RA);
    a.nop();
    let (_, status) = native(&[&a]);
    assert_eq!(status, 17, "only the first call returns to its link");
    for exec in [Exec::Translate, Exec::Adaptive] {
        let m = same_as_natively(&a, exec);
        assert!(m.vms[0].bt.stats.invalidated >= 1, "{exec:?}");
    }
}

/// Targets of the indirect jump below, in the order it takes them.
const CASES: [u32; 3] = [0x8000_1100, 0x8000_1200, 0x8000_1300];
const TABLE: u32 = 0x8000_1400;
const ROUNDS: u32 = 50;

/// `ROUNDS` times, a `jr` through a table to each of `CASES` in turn;
/// case `i` adds `1 << i` to `s1`. Halts with `s1`.
fn switch() -> Asm {
    let mut a = Asm::new(0x8000_1000);
    a.imm(Op::Addiu, R::S0, R::ZERO, i64::from(ROUNDS * 3));
    a.li(R::S3, TABLE);
    // The loop's own block takes every jump.
    a.b("loop");
    a.nop();
    a.label("loop");
    a.shift(Op::Sll, R::T0, R::S2, 2);
    a.r3(Op::Addu, R::T1, R::S3, R::T0);
    a.mem(Op::Lw, R::T2, 0, R::T1);
    a.jr(R::T2);
    a.nop();
    a.label("next");
    a.imm(Op::Addiu, R::S2, R::S2, 1);
    a.imm(Op::Addiu, R::T3, R::S2, -3);
    a.bnez(R::T3, "same");
    a.nop();
    a.move_(R::S2, R::ZERO);
    a.label("same");
    a.imm(Op::Addiu, R::S0, R::S0, -1);
    a.bnez(R::S0, "loop");
    a.nop();
    sim::testkit::halt(&mut a, R::S1);
    for (i, case) in CASES.iter().enumerate() {
        while a.here() < *case {
            a.nop();
        }
        a.imm(Op::Addiu, R::S1, R::S1, 1 << i);
        a.b("next");
        a.nop();
    }
    while a.here() < TABLE {
        a.nop();
    }
    for case in CASES {
        a.word(case);
    }
    a
}

/// Each case's first jump misses (the entries fill in the order taken);
/// afterwards a jump to case `i` hits entry `i`, having tried `i + 1`
/// entries at `bt_predict` each.
#[test]
fn an_indirect_jump_among_a_few_targets_hits_its_polymorphic_inline_cache() {
    let a = switch();
    let m = same_as_natively(&a, Exec::Translate);
    let st = &m.vms[0].bt.stats;
    let hits_each = u64::from(ROUNDS) - 1;
    assert_eq!(st.predicted, 3 * hits_each);
    // The entry, and the three first jumps.
    assert_eq!(st.lookups, 4);
    // The third target's miss tried two entries, the first one's compare
    // being `bt_lookup`'s.
    let compares = hits_each * (1 + 2 + 3) + 1;
    assert_eq!(spent(&m, Spent::Predict), compares * COST.bt_predict);
}
