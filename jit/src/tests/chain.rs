//! Chained blocks: a block linked to itself loops in compiled code as long
//! as the dispatch would have run it again, and stops where it would not.

use std::sync::atomic::Ordering::Relaxed;

use super::fast::Words;
use super::{addiu, block, branch};
use crate::ir::{Cond, Op};
use crate::{Code, Exit, Jit, State, MAX_CHAIN};

pub(super) const BASE: u64 = 0xFFFF_FFFF_8000_1000;

/// r1 += 1; bne r1, r2, back to the start; nop. Each pass costs 3 cycles,
/// 13 when the branch is taken.
pub(super) fn counting_loop() -> crate::ir::Block {
    block(
        &[addiu(1, 1, 1), branch(Cond::Ne, 1, 2, -8), Op::Nop],
        &[2],
        &[],
    )
}

/// Runs the loop linked to itself (`stall` on each entry) until r1 = `to`,
/// with the next event at `next_event`; the exit, the state and r1.
fn run_loop(to: u64, next_event: u64, stall: u64, m: &mut Words) -> (Exit, State, u64) {
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&counting_loop()).unwrap();
    assert!(jit.link((code, 3), (code, BASE), 13, stall));
    let (exit, state, gpr) = run(&jit, code, to, next_event, m);
    (exit, state, gpr[1])
}

/// Runs `code` with r2 = `to` and the next event at `next_event`; the
/// exit, the state and the registers.
pub(super) fn run(
    jit: &Jit,
    code: Code,
    to: u64,
    next_event: u64,
    m: &mut Words,
) -> (Exit, State, [u64; 32]) {
    let mut gpr = [0u64; 32];
    gpr[2] = to;
    let mut state = State {
        next_event,
        ..State::default()
    };
    let exit = jit.run(code, &mut gpr, &mut state, BASE, m).unwrap();
    (exit, state, gpr)
}

fn taken(cycles: u64) -> Exit {
    Exit::Leave {
        done: 3,
        pc: BASE,
        cycles,
        whole: true,
    }
}

#[test]
fn a_self_linked_block_loops_until_its_branch_falls_through() {
    let mut m = Words::new(true);
    let (exit, st, r1) = run_loop(10, 1 << 40, 0, &mut m);
    let out = Exit::Leave {
        done: 3,
        pc: BASE + 12,
        cycles: 3,
        whole: true,
    };
    assert_eq!((exit, r1), (out, 10));
    // Nine taken passes before the last, 13 cycles and 3 instructions each.
    assert_eq!((st.c0, st.retired), (9 * 13, 9 * 3));
    // The carried stall is paid on every entry.
    let (_, st, _) = run_loop(10, 1 << 40, 2, &mut m);
    assert_eq!(st.c0, 9 * 15);
}

#[test]
fn the_chain_stops_where_the_next_event_could_be_crossed() {
    let mut m = Words::new(true);
    // Passes end at 13, 26, 39: the pass from 39 could end at 52.
    let (exit, st, r1) = run_loop(1000, 50, 0, &mut m);
    assert_eq!((exit, st.c0, st.retired, r1), (taken(13), 26, 6, 3));
    // At 52 exactly it is refused too: the event would be reached.
    let (_, st, _) = run_loop(1000, 52, 0, &mut m);
    assert_eq!(st.c0, 26);
    let (_, st, _) = run_loop(1000, 53, 0, &mut m);
    assert_eq!(st.c0, 39);
}

#[test]
fn the_chain_is_bounded_and_needs_the_tables_and_the_generation() {
    let mut m = Words::new(true);
    let (exit, st, r1) = run_loop(1000, 1 << 40, 0, &mut m);
    let n = u64::from(MAX_CHAIN);
    assert_eq!((exit, st.retired, r1), (taken(13), 3 * n, n + 1));
    // No tables lent: every run returns to the caller.
    let (exit, st, r1) = run_loop(1000, 1 << 40, 0, &mut Words::new(false));
    assert_eq!((exit, st.retired, r1), (taken(13), 0, 1));
    // The page's generation moved on (a store from another thread).
    m.pages[0].generation.store(1, Relaxed);
    let (_, st, r1) = run_loop(1000, 1 << 40, 0, &mut m);
    assert_eq!((st.retired, r1), (0, 1));
}

#[test]
fn unlinked_or_stale_links_do_not_chain() {
    let mut m = Words::new(true);
    let mut jit = Jit::new().unwrap();
    let code = jit.compile(&counting_loop()).unwrap();
    // No exit after 4 instructions; an exit linked then unlinked.
    assert!(!jit.link((code, 4), (code, BASE), 13, 0));
    assert!(jit.link((code, 3), (code, BASE), 13, 0));
    jit.unlink_all();
    let mut gpr = [0u64; 32];
    gpr[2] = 1000;
    let mut state = State {
        next_event: 1 << 40,
        ..State::default()
    };
    let exit = jit.run(code, &mut gpr, &mut state, BASE, &mut m).unwrap();
    assert_eq!((exit, state.retired, gpr[1]), (taken(13), 0, 1));
    jit.reset();
    assert!(!jit.link((code, 3), (code, BASE), 13, 0));
}
