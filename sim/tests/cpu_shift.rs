//! Shifts (`../shared/docs/r4000-reference.md` §5.7): 32-bit shifts use bits 31:0 of rt and
//! sign-extend the result; variable shifts use rs[4:0] (rs[5:0] for the
//! 64-bit forms); DSxx32 add 32 to the amount.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;

const MIN32: u64 = 0xFFFF_FFFF_8000_0000;

/// `op t2, t1, sa`, then halt: 1 + 23 cycles.
fn shift(op: Op, rt: u64, sa: u32) -> u64 {
    let mut a = asm();
    a.shift(op, Reg::T2, Reg::T1, sa);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T1, rt)]);
    assert_eq!(cycles(&m), 1 + HALT);
    assert_eq!(gpr(&m, Reg::T1), rt);
    assert_eq!(gpr(&m, Reg::V1), 0, "no exception");
    assert_code_intact(&m, &a);
    gpr(&m, Reg::T2)
}

/// `op t2, t1, t0` (amount in t0), then halt: 1 + 23 cycles.
fn shiftv(op: Op, rt: u64, rs: u64) -> u64 {
    let mut a = asm();
    a.shiftv(op, Reg::T2, Reg::T1, Reg::T0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T1, rt), (Reg::T0, rs)]);
    assert_eq!(cycles(&m), 1 + HALT);
    assert_eq!(gpr(&m, Reg::V1), 0, "no exception");
    assert_code_intact(&m, &a);
    gpr(&m, Reg::T2)
}

#[test]
fn immediate_shifts_at_every_edge_amount() {
    let cases: &[(Op, u64, u32, u64)] = &[
        (Op::Sll, 1, 0, 1),
        (Op::Sll, 1, 31, MIN32),
        (Op::Sll, 0x0000_0000_4000_0000, 1, MIN32),
        (Op::Sll, 0xFFFF_FFFF_FFFF_FFFF, 16, 0xFFFF_FFFF_FFFF_0000),
        // Bits above 31 of the input are ignored.
        (Op::Sll, 0x1234_5678_0000_0003, 4, 0x30),
        (Op::Srl, MIN32, 31, 1),
        (Op::Srl, MIN32, 1, 0x4000_0000),
        // SRL by 0 is a sign-extending copy of the low word.
        (Op::Srl, 0x0000_0001_8000_0000, 0, MIN32),
        (Op::Srl, 0xFFFF_FFFF_FFFF_FFFF, 0, u64::MAX),
        (Op::Sra, MIN32, 31, u64::MAX),
        (Op::Sra, MIN32, 4, 0xFFFF_FFFF_F800_0000),
        (Op::Sra, 0x7FFF_FFFF, 30, 1),
        (Op::Sra, 0x0000_0001_7FFF_FFFF, 0, 0x7FFF_FFFF),
        (Op::Dsll, 1, 31, 0x8000_0000),
        (Op::Dsll32, 1, 31, 0x8000_0000_0000_0000),
        (Op::Dsll32, 0xFFFF_FFFF, 0, 0xFFFF_FFFF_0000_0000),
        (Op::Dsrl, u64::MAX, 1, 0x7FFF_FFFF_FFFF_FFFF),
        (Op::Dsrl32, u64::MAX, 31, 1),
        (Op::Dsra, 0x8000_0000_0000_0000, 4, 0xF800_0000_0000_0000),
        (Op::Dsra32, 0x8000_0000_0000_0000, 31, u64::MAX),
        (Op::Dsra32, 0x4000_0000_0000_0000, 0, 0x4000_0000),
    ];
    for &(op, rt, sa, want) in cases {
        assert_eq!(shift(op, rt, sa), want, "{op:?} {rt:#x} by {sa}");
    }
}

#[test]
fn variable_shifts_mask_the_amount() {
    let cases: &[(Op, u64, u64, u64)] = &[
        (Op::Sllv, 1, 31, MIN32),
        // Only rs[4:0] counts: 33 -> 1, 32 -> 0.
        (Op::Sllv, 1, 33, 2),
        (Op::Sllv, 0x0000_0001_8000_0000, 32, MIN32),
        (Op::Srlv, MIN32, 0xFFFF_FFFF_FFFF_FFFF, 1),
        (Op::Srlv, MIN32, 0, MIN32),
        (Op::Srav, MIN32, 0x20 + 31, u64::MAX),
        (Op::Srav, 0x4000_0000, 30, 1),
        // The 64-bit forms use rs[5:0]: 64 + 4 -> 4.
        (Op::Dsllv, 1, 63, 0x8000_0000_0000_0000),
        (Op::Dsllv, 1, 64 + 4, 0x10),
        (Op::Dsrlv, u64::MAX, 63, 1),
        (Op::Dsrav, 0x8000_0000_0000_0000, 63, u64::MAX),
        (Op::Dsrav, 0x8000_0000_0000_0000, 64, 0x8000_0000_0000_0000),
    ];
    for &(op, rt, rs, want) in cases {
        assert_eq!(shiftv(op, rt, rs), want, "{op:?} {rt:#x} by {rs}");
    }
}

#[test]
fn sll_zero_is_the_nop_word_and_touches_nothing() {
    // Three NOP words then halt: 3 + 23 cycles; every register unchanged.
    let mut a = asm();
    a.nop().nop().nop();
    halt(&mut a, Reg::ZERO);
    assert_eq!(a.finish().unwrap()[0], 0);
    let m = run(&a, &[(Reg::T0, 0x1234)]);
    assert_eq!(gpr(&m, Reg::T0), 0x1234);
    assert_eq!(gpr(&m, Reg::ZERO), 0);
    assert_eq!(cycles(&m), 3 + HALT);
    assert_code_intact(&m, &a);
}
