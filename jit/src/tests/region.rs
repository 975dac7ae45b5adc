//! Loops: blocks linked into a cycle compiled as one function run the
//! passes the chained calls would, without the calls' bound, and stop
//! where the dispatch would stop them.

use std::sync::atomic::Ordering::Relaxed;

use super::chain::{counting_loop, run, BASE};
use super::fast::Words;
use super::leave;
use super::{addiu, block, branch};
use crate::ir::{Alu, Block, Cond, Op};
use crate::region::MAX_PASSES;
use crate::{Code, Jit, State, MAX_CHAIN};

/// The counting loop linked to itself (`stall` on each entry), closed
/// into a loop if `close`.
fn self_loop(stall: u64, close: bool) -> (Jit, Code) {
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&counting_loop()).unwrap();
    assert!(jit.link((code, 3), (code, BASE), 13, stall));
    assert_eq!(jit.close_loop(code), close);
    (jit, code)
}

#[test]
fn a_closed_self_loop_runs_past_the_chain_bound_until_its_branch_falls_through() {
    let mut m = Words::new(true);
    let (jit, code) = self_loop(0, true);
    assert_eq!((jit.compiled(), jit.loops()), (1, 1));
    let n = 10 * u64::from(MAX_CHAIN);
    let (exit, st, g) = run(&jit, code, n, 1 << 40, &mut m);
    assert_eq!((exit, g[1]), (leave(3, BASE + 12, 3), n));
    assert_eq!((st.c0, st.retired), ((n - 1) * 13, (n - 1) * 3));
    // The carried stall is paid on every pass.
    let (jit, code) = self_loop(2, true);
    let (_, st, _) = run(&jit, code, n, 1 << 40, &mut m);
    assert_eq!(st.c0, (n - 1) * 15);
    // Closing it again changes nothing.
    let mut jit = jit;
    assert!(!jit.close_loop(code));
}

#[test]
fn a_loop_stops_where_the_next_event_could_be_crossed() {
    let mut m = Words::new(true);
    let (jit, code) = self_loop(0, true);
    // Passes end at 13, 26, 39: the pass from 39 could end at 52.
    let (exit, st, g) = run(&jit, code, 1000, 50, &mut m);
    assert_eq!(
        (exit, st.c0, st.retired, g[1]),
        (leave(3, BASE, 13), 26, 6, 3)
    );
    let (_, st, _) = run(&jit, code, 1000, 52, &mut m);
    assert_eq!(st.c0, 26);
    let (_, st, _) = run(&jit, code, 1000, 53, &mut m);
    assert_eq!(st.c0, 39);
}

#[test]
fn a_loop_is_bounded_and_needs_the_tables_and_the_generation() {
    let mut m = Words::new(true);
    let (jit, code) = self_loop(0, true);
    // Each call (the run's and the chained ones) makes MAX_PASSES jumps,
    // then chains through the exit's link, into the loop again.
    let calls = u64::from(MAX_CHAIN) + 1;
    let passes = calls * (u64::from(MAX_PASSES) + 1);
    let (exit, st, g) = run(&jit, code, 1 << 30, 1 << 40, &mut m);
    assert_eq!(
        (exit, st.retired, g[1]),
        (leave(3, BASE, 13), 3 * (passes - 1), passes)
    );
    let (exit, st, g) = run(&jit, code, 1000, 1 << 40, &mut Words::new(false));
    assert_eq!((exit, st.retired, g[1]), (leave(3, BASE, 13), 0, 1));
    m.pages[0].generation.store(1, Relaxed);
    let (_, st, g) = run(&jit, code, 1000, 1 << 40, &mut m);
    assert_eq!((st.retired, g[1]), (0, 1));
}

/// `access`; r1 += 1; bne r1, r2 back; nop: compiled, linked to itself
/// and closed into a loop.
fn access_loop(access: Op) -> (Jit, Code) {
    let ops = [access, addiu(1, 1, 1), branch(Cond::Ne, 1, 2, -12), Op::Nop];
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&block(&ops, &[3], &[])).unwrap();
    assert!(jit.link((code, 4), (code, BASE), 14, 0));
    assert!(jit.close_loop(code));
    (jit, code)
}

#[test]
fn a_store_through_the_callout_ends_the_loop_at_its_next_jump() {
    // store r1 to 0x10; r1 += 1; bne r1, r2 back; nop.
    let (jit, code) = access_loop(Op::Store {
        t: 1,
        s: 0,
        off: 0x10,
        width: 4,
    });
    let mut m = Words::new(true);
    let (exit, st, g) = run(&jit, code, 100, 1 << 40, &mut m);
    assert_eq!(
        (exit, st.retired, g[1]),
        (leave(4, BASE + 16, 4), 4 * 99, 100)
    );
    // Into a page with code the store goes to the callout, which may have
    // changed code: no jump after it.
    m.pages[0].has_code.store(true, Relaxed);
    let (exit, st, g) = run(&jit, code, 100, 1 << 40, &mut m);
    assert_eq!((exit, st.retired, g[1]), (leave(4, BASE, 14), 0, 1));
}

#[test]
fn only_where_other_threads_store_does_a_jump_read_the_generation() {
    // lw r3, 0x3000(r0) (through the callout, where "another thread"
    // changes the loop's page); r1 += 1; bne r1, r2 back; nop.
    let (jit, code) = access_loop(Op::Load {
        t: 3,
        s: 0,
        off: 0x3000,
        width: 4,
        signed: false,
    });
    let mut m = Words::new(true);
    m.racer = true;
    m.concurrent = true;
    let (exit, st, g) = run(&jit, code, 100, 1 << 40, &mut m);
    assert_eq!((exit, st.retired, g[1]), (leave(4, BASE, 14), 0, 1));
    // One thread: only its own stores change code, and those go to the
    // callout (`a_store_through_the_callout_ends_the_loop_at_its_next_jump`),
    // so the jumps do not look (the racer cannot happen there).
    m.concurrent = false;
    m.pages[0].generation.store(0, Relaxed);
    let (exit, st, g) = run(&jit, code, 100, 1 << 40, &mut m);
    assert_eq!(
        (exit, st.retired, g[1]),
        (leave(4, BASE + 16, 4), 4 * 99, 100)
    );
}

/// A at word 0: r1 += 1; beq r0, r0 to B (word 8); r3 = r3 + r1 in its
/// slot. B at word 8: r4 += 1; bne r1, r2 back to A; nop.
pub(super) fn two_blocks() -> (Block, Block) {
    let a = block(
        &[
            addiu(1, 1, 1),
            branch(Cond::Eq, 0, 0, 24),
            Op::Alu {
                op: Alu::Addu,
                d: 3,
                s: 3,
                t: 1,
            },
        ],
        &[2],
        &[],
    );
    let mut b = counting_loop();
    b.insns[0].op = addiu(4, 4, 1);
    b.insns[1].op = branch(Cond::Ne, 1, 2, -40);
    for (k, i) in b.insns.iter_mut().enumerate() {
        i.word = 8 + k as u16;
    }
    b.tag = 1;
    (a, b)
}

#[test]
fn two_blocks_linked_both_ways_loop_as_the_chain_would_run_them() {
    let mut m = Words::new(true);
    let (a, b) = two_blocks();
    // Both closed and not: the same registers, cycles and retired counts
    // where the chain's bound does not come in.
    let mut results = Vec::new();
    for close in [false, true] {
        let mut jit = Jit::new().unwrap();
        let (ca, cb) = (jit.compile(&a).unwrap(), jit.compile(&b).unwrap());
        // Each costs 3 cycles, 13 with its branch taken.
        assert!(jit.link((ca, 3), (cb, BASE + 32), 13, 1));
        assert!(jit.link((cb, 3), (ca, BASE), 13, 0));
        if close {
            assert!(jit.close_loop(cb));
        }
        let (exit, st, g) = run(&jit, ca, 20, 1 << 40, &mut m);
        // Calls left differ: the loop (headed by B) makes one, from A.
        let calls = if close { 1 } else { 39 };
        assert_eq!(st.links, MAX_CHAIN - calls);
        let st = State { links: 0, ..st };
        results.push((exit, st, g[1], g[3], g[4]));
        // Past the chain's bound, only the loop goes on.
        let (_, st, g) = run(&jit, ca, 1000, 1 << 40, &mut m);
        // Unclosed: the run and 64 calls, ending in A's 33rd pass.
        let ended = if close { (1000, 1) } else { (33, 0) };
        assert_eq!((g[1], st.tag), ended);
    }
    // A's passes: 20, each 13 + 1 stall into B; B's: 19 taken (13 each),
    // the last falls through (3).
    let (exit, st, r1, r3, r4) = results[0];
    assert_eq!(
        (exit, st.tag, r1, r3, r4),
        (leave(3, BASE + 44, 3), 1, 20, 210, 20)
    );
    assert_eq!((st.c0, st.retired), (20 * 14 + 19 * 13, 39 * 3));
    assert_eq!(results[0], results[1]);
}

#[test]
fn dropping_a_member_reverts_its_loops() {
    let mut m = Words::new(true);
    let (a, b) = two_blocks();
    let mut jit = Jit::new().unwrap();
    let (ca, cb) = (jit.compile(&a).unwrap(), jit.compile(&b).unwrap());
    assert!(jit.link((ca, 3), (cb, BASE + 32), 13, 0));
    assert!(!jit.link((ca, 3), (cb, BASE + 32), 13, 0));
    assert!(!jit.close_loop(ca));
    assert!(jit.link((cb, 3), (ca, BASE), 13, 0));
    assert!(jit.close_loop(ca));
    // B is in A's loop: entered through B, it chains into it.
    assert!(!jit.close_loop(cb));
    assert_eq!((jit.compiled(), jit.loops()), (2, 1));
    let (_, st, _) = run(&jit, ca, 1000, 1 << 40, &mut m);
    assert_eq!(st.retired, 999 * 6 + 3);
    // Dropping B (its slot now names another block): A runs alone.
    jit.forget(cb);
    let (exit, st, g) = run(&jit, ca, 1000, 1 << 40, &mut m);
    assert_eq!(
        (exit, st.retired, st.tag, g[1]),
        (leave(3, BASE + 32, 13), 0, 0, 1)
    );
    // Relinked, the loop closes again.
    assert!(jit.link((ca, 3), (cb, BASE + 32), 13, 0));
    assert!(jit.link((cb, 3), (ca, BASE), 13, 0));
    assert!(jit.close_loop(ca));
    jit.reset();
    assert!(!jit.close_loop(ca));
}

/// A at word 0: r1 += 1; bne r1, r2 back to A (a side exit); nop;
/// r4 += 1; beq r0, r0 to B (word 8); nop. B at word 8: r5 += 1; bne r1,
/// r2 back to A; nop.
pub(super) fn side_exit_blocks() -> (Block, Block) {
    let a = block(
        &[
            addiu(1, 1, 1),
            branch(Cond::Ne, 1, 2, -8),
            Op::Nop,
            addiu(4, 4, 1),
            branch(Cond::Eq, 0, 0, 12),
            Op::Nop,
        ],
        &[2, 5],
        &[],
    );
    let (_, mut b) = two_blocks();
    b.insns[0].op = addiu(5, 5, 1);
    (a, b)
}

#[test]
fn a_link_between_members_made_after_the_loop_closed_compiles_it_again() {
    let mut m = Words::new(true);
    let (a, b) = side_exit_blocks();
    let mut jit = Jit::new().unwrap();
    let (ca, cb) = (jit.compile(&a).unwrap(), jit.compile(&b).unwrap());
    assert!(jit.link((ca, 6), (cb, BASE + 32), 13, 0));
    assert!(jit.link((cb, 3), (ca, BASE), 16, 0));
    assert!(jit.close_loop(ca));
    // A's side exit is not linked: the loop leaves there on every pass.
    let (exit, st, g) = run(&jit, ca, 20, 1 << 40, &mut m);
    assert_eq!((exit, st.retired, g[1]), (leave(3, BASE, 13), 0, 1));
    // Linked now, the loop is compiled again with it as a jump: no call.
    assert!(jit.link((ca, 3), (ca, BASE), 16, 0));
    assert!(jit.close_loop(ca));
    assert_eq!((jit.loops(), jit.relinked()), (1, 1));
    let (exit, st, g) = run(&jit, ca, 20, 1 << 40, &mut m);
    assert_eq!(st.links, MAX_CHAIN);
    // 19 passes back to A, then A falls through into B, which falls
    // through too: as the chained calls would run it.
    assert_eq!(
        (exit, st.retired, g[1], g[4], g[5]),
        (leave(3, BASE + 44, 3), 19 * 3 + 6, 20, 1, 1)
    );
    let mut chain = Jit::new().unwrap();
    let (xa, xb) = (chain.compile(&a).unwrap(), chain.compile(&b).unwrap());
    assert!(chain.link((xa, 6), (xb, BASE + 32), 13, 0));
    assert!(chain.link((xb, 3), (xa, BASE), 16, 0));
    assert!(chain.link((xa, 3), (xa, BASE), 16, 0));
    let (cexit, cst, cg) = run(&chain, xa, 20, 1 << 40, &mut m);
    let strip = |s: State| State { links: 0, ..s };
    assert_eq!((exit, strip(st), g), (cexit, strip(cst), cg));
    // Once per new link: nothing new, nothing compiled.
    assert!(!jit.close_loop(ca));
    assert!(!jit.close_loop(cb));
    assert!(!jit.link((ca, 3), (ca, BASE), 16, 0));
    assert_eq!(jit.relinked(), 1);
}
