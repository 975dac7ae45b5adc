//! ALU instructions (`../shared/docs/r4000-reference.md` §5.7, §5.8): 32-bit results are
//! sign-extended, immediates are sign- or zero-extended per instruction, and
//! ADD/ADDI/SUB/DADD/DADDI/DSUB trap on signed overflow with the
//! destination unchanged.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;

const MAX32: u64 = 0x7FFF_FFFF;
const MIN32: u64 = 0xFFFF_FFFF_8000_0000;
const PRESET: u64 = 0x0000_0000_DEAD_BEEF;

/// Runs `op t2, t0, t1` (or `op t2, t0, imm`) on the given inputs. Cycles: the
/// instruction (1) + halt (23) = 24.
fn r3(op: Op, rs: u64, rt: u64) -> Machine {
    let mut a = asm();
    a.r3(op, Reg::T2, Reg::T0, Reg::T1);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, rs), (Reg::T1, rt), (Reg::T2, PRESET)]);
    assert_eq!(cycles(&m), 1 + HALT, "{op:?}");
    assert_eq!(gpr(&m, Reg::T0), rs);
    assert_eq!(gpr(&m, Reg::T1), rt);
    assert_code_intact(&m, &a);
    m
}

fn ri(op: Op, rs: u64, imm: i64) -> Machine {
    let mut a = asm();
    a.imm(op, Reg::T2, Reg::T0, imm);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, rs), (Reg::T2, PRESET)]);
    assert_eq!(cycles(&m), 1 + HALT, "{op:?}");
    assert_code_intact(&m, &a);
    m
}

#[test]
fn three_register_ops_with_edge_values() {
    // (op, rs, rt, expected rd)
    let cases: &[(Op, u64, u64, u64)] = &[
        // 32-bit add/sub wrap without trapping and sign-extend bit 31.
        (Op::Addu, MAX32, 1, MIN32),
        (Op::Addu, 0xFFFF_FFFF_FFFF_FFFF, 1, 0),
        (Op::Subu, MIN32, 1, MAX32),
        (Op::Subu, 0, 1, u64::MAX),
        // Inputs that are not sign-extended: only bits 31:0 count (§5.8).
        (
            Op::Addu,
            0x1234_5678_0000_0001,
            0x0000_0001_7FFF_FFFF,
            MIN32,
        ),
        (Op::Add, 5, 0xFFFF_FFFF_FFFF_FFFD, 2),
        (Op::Add, MIN32, MAX32, u64::MAX),
        (Op::Sub, MAX32, MAX32, 0),
        (Op::Sub, 0, MAX32, 0xFFFF_FFFF_8000_0001),
        (
            Op::And,
            0xF0F0_F0F0_F0F0_F0F0,
            0xFF00_FF00_FF00_FF00,
            0xF000_F000_F000_F000,
        ),
        (
            Op::Or,
            0xF0F0_0000_0000_0000,
            0x0000_0000_0F0F_0000,
            0xF0F0_0000_0F0F_0000,
        ),
        (
            Op::Xor,
            u64::MAX,
            0x5555_5555_5555_5555,
            0xAAAA_AAAA_AAAA_AAAA,
        ),
        (Op::Nor, 0, 0, u64::MAX),
        (
            Op::Nor,
            0xFFFF_0000_FFFF_0000,
            0x0000_FFFF_0000_0000,
            0x0000_0000_0000_FFFF,
        ),
        // SLT/SLTU compare all 64 bits.
        (Op::Slt, MIN32, 1, 1),
        (Op::Slt, 1, MIN32, 0),
        (Op::Sltu, MIN32, 1, 0),
        (Op::Sltu, 1, MIN32, 1),
        (Op::Slt, 7, 7, 0),
        (Op::Sltu, 0x1_0000_0000, 0xFFFF_FFFF, 0),
        // 64-bit add/sub (legal in kernel mode).
        (Op::Daddu, 0x7FFF_FFFF_FFFF_FFFF, 1, 0x8000_0000_0000_0000),
        (Op::Daddu, MAX32, 1, 0x8000_0000),
        (
            Op::Dadd,
            0x0000_0001_0000_0000,
            0xFFFF_FFFF_FFFF_FFFF,
            0xFFFF_FFFF,
        ),
        (Op::Dsubu, 0, 1, u64::MAX),
        (Op::Dsub, 0x8000_0000_0000_0001, 1, 0x8000_0000_0000_0000),
    ];
    for &(op, rs, rt, want) in cases {
        let m = r3(op, rs, rt);
        assert_eq!(gpr(&m, Reg::T2), want, "{op:?} {rs:#x} {rt:#x}");
        assert_eq!(gpr(&m, Reg::V1), 0, "{op:?} must not trap");
    }
}

#[test]
fn immediate_ops_extend_their_immediates() {
    // (op, rs, imm, expected rt)
    let cases: &[(Op, u64, i64, u64)] = &[
        // ADDIU sign-extends its immediate and its 32-bit result.
        (Op::Addiu, 0, -1, u64::MAX),
        (Op::Addiu, MAX32, 1, MIN32),
        (Op::Addi, 10, -11, u64::MAX),
        (Op::Addi, MIN32, 0x7FFF, 0xFFFF_FFFF_8000_7FFF),
        (Op::Daddiu, 0xFFFF_FFFF, 1, 0x1_0000_0000),
        (Op::Daddi, 0, -0x8000, 0xFFFF_FFFF_FFFF_8000),
        // SLTI signed; SLTIU compares unsigned against the sign-extended immediate.
        (Op::Slti, MIN32, -1, 1),
        (Op::Slti, 0, -1, 0),
        (Op::Sltiu, 0xFFFF_FFFF_FFFF_FFFE, -1, 1),
        (Op::Sltiu, u64::MAX, -1, 0),
        (Op::Sltiu, 5, 0x8000, 1),
        // ANDI/ORI/XORI zero-extend.
        (Op::Andi, u64::MAX, 0xFFFF, 0xFFFF),
        (Op::Ori, 0, 0x8000, 0x8000),
        (Op::Xori, u64::MAX, 0xFFFF, 0xFFFF_FFFF_FFFF_0000),
    ];
    for &(op, rs, imm, want) in cases {
        let m = ri(op, rs, imm);
        assert_eq!(gpr(&m, Reg::T2), want, "{op:?} {rs:#x} {imm}");
        assert_eq!(gpr(&m, Reg::V1), 0, "{op:?} must not trap");
    }
}

#[test]
fn lui_sign_extends_and_r0_stays_zero() {
    // lui t2, 0x8000; lui t3, 0x7fff; addiu zero, zero, 5; or t4, zero, zero
    // 4 instructions + halt = 27 cycles.
    let mut a = asm();
    a.imm(Op::Lui, Reg::T2, Reg::ZERO, 0x8000);
    a.imm(Op::Lui, Reg::T3, Reg::ZERO, 0x7FFF);
    a.imm(Op::Addiu, Reg::ZERO, Reg::ZERO, 5);
    a.r3(Op::Or, Reg::T4, Reg::ZERO, Reg::ZERO);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T4, PRESET)]);
    assert_eq!(gpr(&m, Reg::T2), 0xFFFF_FFFF_8000_0000);
    assert_eq!(gpr(&m, Reg::T3), 0x7FFF_0000);
    assert_eq!(gpr(&m, Reg::ZERO), 0);
    assert_eq!(gpr(&m, Reg::T4), 0);
    assert_eq!(cycles(&m), 4 + HALT);
    assert_code_intact(&m, &a);
}

/// Each overflowing operation traps with Ov through the general vector,
/// EPC = the instruction, BD = 0, and t2 keeps its old value.
/// Cycles: exception entry (8) + handler (1 + 23) = 32; the trapping
/// instruction itself does not retire.
#[test]
fn overflow_traps_leave_the_destination_unchanged() {
    enum Form {
        R3(u64, u64),
        Imm(u64, i64),
    }
    let cases: &[(Op, Form)] = &[
        (Op::Add, Form::R3(MAX32, 1)),
        (Op::Add, Form::R3(MIN32, u64::MAX)),
        (Op::Sub, Form::R3(MIN32, 1)),
        (Op::Sub, Form::R3(MAX32, u64::MAX)),
        (Op::Addi, Form::Imm(MAX32, 1)),
        (Op::Addi, Form::Imm(MIN32, -1)),
        (Op::Dadd, Form::R3(0x7FFF_FFFF_FFFF_FFFF, 1)),
        (Op::Dadd, Form::R3(0x8000_0000_0000_0000, u64::MAX)),
        (Op::Dsub, Form::R3(0x8000_0000_0000_0000, 1)),
        (Op::Dsub, Form::R3(0, 0x8000_0000_0000_0000)),
        (Op::Daddi, Form::Imm(0x7FFF_FFFF_FFFF_FFFF, 1)),
        (Op::Daddi, Form::Imm(0x8000_0000_0000_0000, -1)),
    ];
    for (op, form) in cases {
        let mut a = asm();
        let (rs, rt) = match *form {
            Form::R3(rs, rt) => {
                a.r3(*op, Reg::T2, Reg::T0, Reg::T1);
                (rs, rt)
            }
            Form::Imm(rs, imm) => {
                a.imm(*op, Reg::T2, Reg::T0, imm);
                (rs, 0)
            }
        };
        halt(&mut a, Reg::ZERO);
        let m = run(&a, &[(Reg::T0, rs), (Reg::T1, rt), (Reg::T2, PRESET)]);
        let c = m.cpus[0].cp0();
        assert_eq!(gpr(&m, Reg::V1), AT_GENERAL, "{op:?}");
        assert_eq!(exc_code(&m), ExcCode::Ov as u32, "{op:?}");
        assert_eq!(gpr(&m, Reg::T2), PRESET, "{op:?} wrote its destination");
        assert_eq!(c.epc, sext(ORIGIN));
        assert_eq!(c.cause & cause::BD, 0);
        assert_eq!(cycles(&m), EXC + HANDLER, "{op:?}");
        assert_eq!(
            m.cpus[0].instret(),
            4,
            "only the handler (ori, lui, ori, sw) retired"
        );
        assert_code_intact(&m, &a);
    }
}
