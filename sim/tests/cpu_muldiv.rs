//! Multiply and divide (`../shared/docs/r4000-reference.md` §5.7, §6.2): results in HI/LO,
//! sign-extended for the 32-bit forms; divide by zero and INT_MIN / -1 never
//! trap and follow QEMU (divisor taken as 1: LO = dividend, HI = 0). MFHI/MFLO
//! interlock until the result is ready: MULT 10, DIV 69, DMULT 20, DDIV 133
//! cycles after the operation issues.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;

const MIN32: u64 = 0xFFFF_FFFF_8000_0000;

/// `op t0, t1; mflo t2; mfhi t3; halt`.
/// Cycles: op issues in cycle 1 and HI/LO are ready at 1 + latency; MFLO
/// waits for that, MFHI takes one more, then the halt's 23:
/// 1 + latency + 1 + 23.
fn muldiv(op: Op, rs: u64, rt: u64) -> (u64, u64) {
    let latency = match op {
        Op::Mult | Op::Multu => 10,
        Op::Div | Op::Divu => 69,
        Op::Dmult | Op::Dmultu => 20,
        _ => 133,
    };
    let mut a = asm();
    a.rs_rt(op, Reg::T0, Reg::T1);
    a.emit(
        Op::Mflo,
        Operands {
            rd: Reg::T2.number(),
            ..Default::default()
        },
    );
    a.emit(
        Op::Mfhi,
        Operands {
            rd: Reg::T3.number(),
            ..Default::default()
        },
    );
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, rs), (Reg::T1, rt)]);
    assert_eq!(cycles(&m), 1 + latency + 1 + HALT, "{op:?}");
    assert_eq!(gpr(&m, Reg::V1), 0, "{op:?}: no exception");
    assert_eq!(
        (m.cpus[0].regs.lo, m.cpus[0].regs.hi),
        (gpr(&m, Reg::T2), gpr(&m, Reg::T3))
    );
    assert_code_intact(&m, &a);
    (gpr(&m, Reg::T2), gpr(&m, Reg::T3))
}

#[test]
fn multiplies() {
    // (op, rs, rt, LO, HI)
    let cases: &[(Op, u64, u64, u64, u64)] = &[
        (Op::Mult, 6, 7, 42, 0),
        (Op::Mult, u64::MAX, u64::MAX, 1, 0),
        (Op::Mult, u64::MAX, 2, u64::MAX - 1, u64::MAX),
        // (-2^31)^2 = 2^62: LO = 0, HI = 0x4000_0000.
        (Op::Mult, MIN32, MIN32, 0, 0x4000_0000),
        // 0x7FFF_FFFF^2 = 0x3FFF_FFFF_0000_0001.
        (Op::Mult, 0x7FFF_FFFF, 0x7FFF_FFFF, 1, 0x3FFF_FFFF),
        // LO bit 31 set: sign-extended.
        (Op::Mult, 0x4000_0000, 2, MIN32, 0),
        // Bits above 31 are ignored.
        (Op::Mult, 0x1_0000_0003, 0x2_0000_0005, 15, 0),
        (Op::Multu, u64::MAX, u64::MAX, 1, 0xFFFF_FFFF_FFFF_FFFE),
        (Op::Multu, MIN32, 2, 0, 1),
        (Op::Dmult, u64::MAX, 2, u64::MAX - 1, u64::MAX),
        (
            Op::Dmult,
            0x8000_0000_0000_0000,
            0x8000_0000_0000_0000,
            0,
            0x4000_0000_0000_0000,
        ),
        (Op::Dmultu, u64::MAX, u64::MAX, 1, u64::MAX - 1),
    ];
    for &(op, rs, rt, lo, hi) in cases {
        assert_eq!(muldiv(op, rs, rt), (lo, hi), "{op:?} {rs:#x} {rt:#x}");
    }
}

#[test]
fn divides_including_the_undefined_cases() {
    let m7 = (-7i64) as u64;
    let cases: &[(Op, u64, u64, u64, u64)] = &[
        (Op::Div, 7, 2, 3, 1),
        // Truncating; the remainder takes the dividend's sign.
        (Op::Div, m7, 2, (-3i64) as u64, u64::MAX),
        (Op::Div, 7, (-2i64) as u64, (-3i64) as u64, 1),
        (Op::Div, m7, (-2i64) as u64, 3, u64::MAX),
        // Undefined: divide by zero and INT_MIN / -1 (QEMU: LO = dividend, HI = 0).
        (Op::Div, 7, 0, 7, 0),
        (Op::Div, MIN32, 0, MIN32, 0),
        (Op::Div, MIN32, u64::MAX, MIN32, 0),
        (Op::Divu, 0xFFFF_FFFF_FFFF_FFFF, 2, 0x7FFF_FFFF, 1),
        (Op::Divu, MIN32, 0xFFFF_FFFF_FFFF_FFFF, 0, MIN32),
        (Op::Divu, MIN32, 0, MIN32, 0),
        (Op::Ddiv, m7, 2, (-3i64) as u64, u64::MAX),
        (
            Op::Ddiv,
            0x8000_0000_0000_0000,
            u64::MAX,
            0x8000_0000_0000_0000,
            0,
        ),
        (Op::Ddiv, 12345, 0, 12345, 0),
        (Op::Ddivu, u64::MAX, 0x1_0000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (Op::Ddivu, u64::MAX, 0, u64::MAX, 0),
    ];
    for &(op, rs, rt, lo, hi) in cases {
        assert_eq!(muldiv(op, rs, rt), (lo, hi), "{op:?} {rs:#x} {rt:#x}");
    }
}

#[test]
fn independent_instructions_hide_the_multiply_latency() {
    // mult t0, t1      cycle 1, HI/LO ready at 11
    // 5 × addiu        cycles 2..6
    // mflo t2          issues at 7, waits until 11
    // mtlo t0          12
    // mthi t1          13
    // mflo t4; mfhi t5 14, 15 (no wait: MTLO/MTHI have no latency)
    // halt             +23 = 38
    let mut a = asm();
    a.rs_rt(Op::Mult, Reg::T0, Reg::T1);
    for _ in 0..5 {
        a.imm(Op::Addiu, Reg::T3, Reg::T3, 1);
    }
    a.emit(
        Op::Mflo,
        Operands {
            rd: Reg::T2.number(),
            ..Default::default()
        },
    );
    a.emit(
        Op::Mtlo,
        Operands {
            rs: Reg::T0.number(),
            ..Default::default()
        },
    );
    a.emit(
        Op::Mthi,
        Operands {
            rs: Reg::T1.number(),
            ..Default::default()
        },
    );
    a.emit(
        Op::Mflo,
        Operands {
            rd: Reg::T4.number(),
            ..Default::default()
        },
    );
    a.emit(
        Op::Mfhi,
        Operands {
            rd: Reg::T5.number(),
            ..Default::default()
        },
    );
    halt(&mut a, Reg::ZERO);
    let big = 0x1234_5678_9ABC_DEF0;
    let m = run(&a, &[(Reg::T0, 3), (Reg::T1, big)]);
    assert_eq!(gpr(&m, Reg::T2), sext((3u64 * 0x9ABC_DEF0) as u32));
    assert_eq!(gpr(&m, Reg::T3), 5);
    // MTLO/MTHI move all 64 bits.
    assert_eq!(gpr(&m, Reg::T4), 3);
    assert_eq!(gpr(&m, Reg::T5), big);
    assert_eq!(cycles(&m), 15 + HALT);
    assert_code_intact(&m, &a);
}
