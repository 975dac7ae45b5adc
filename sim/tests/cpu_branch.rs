//! Branches and jumps (`../shared/docs/r4000-reference.md` §5.7, §5.9): delay slots,
//! branch-likely annulment, links of the AL forms even when not taken,
//! JAL/JALR/JR/J, 64-bit compares. Timing: a taken branch costs 1 + 2, an
//! annulled slot 1.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Taken,
    NotTaken,
    Annulled,
}

/// ```text
/// 0: <op> t0, t1, target
/// 1:   addiu t2, t2, 1      delay slot
/// 2: addiu t3, t3, 1        fall-through only
/// 3: target: halt
/// ```
/// Taken: 1 + 2 + 1 (slot) + 23 = 27. Not taken: 1 + 1 + 1 + 23 = 26.
/// Annulled (likely, not taken): 1 + 1 (wasted slot) + 1 + 23 = 26.
fn branch(op: Op, rs: u64, rt: u64) -> (Machine, Outcome) {
    let mut a = asm();
    a.branch(op, Reg::T0, Reg::T1, "target");
    a.imm(Op::Addiu, Reg::T2, Reg::T2, 1);
    a.imm(Op::Addiu, Reg::T3, Reg::T3, 1);
    a.label("target");
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, rs), (Reg::T1, rt), (Reg::RA, 0x5A5A)]);
    let outcome = match (gpr(&m, Reg::T2), gpr(&m, Reg::T3)) {
        (1, 0) => Outcome::Taken,
        (1, 1) => Outcome::NotTaken,
        (0, 1) => Outcome::Annulled,
        other => panic!("{op:?}: impossible slot/fall-through counts {other:?}"),
    };
    let want_cycles = if outcome == Outcome::Taken { 27 } else { 26 };
    assert_eq!(cycles(&m), want_cycles, "{op:?} {outcome:?}");
    assert_eq!(gpr(&m, Reg::V1), 0, "{op:?}: no exception");
    assert_code_intact(&m, &a);
    (m, outcome)
}

#[test]
fn conditional_branches_compare_all_64_bits() {
    use Outcome::*;
    let neg = 0xFFFF_FFFF_FFFF_FFFFu64;
    let cases: &[(Op, u64, u64, Outcome)] = &[
        (Op::Beq, 5, 5, Taken),
        (Op::Beq, 5, 6, NotTaken),
        // Equal low words, different high words: not equal.
        (Op::Beq, 0x1_0000_0005, 5, NotTaken),
        (Op::Bne, 0x1_0000_0005, 5, Taken),
        (Op::Bne, 7, 7, NotTaken),
        (Op::Blez, 0, 0, Taken),
        (Op::Blez, neg, 0, Taken),
        (Op::Blez, 1, 0, NotTaken),
        (Op::Bgtz, 1, 0, Taken),
        (Op::Bgtz, 0, 0, NotTaken),
        (Op::Bgtz, 0x8000_0000_0000_0000, 0, NotTaken),
        (Op::Bltz, neg, 0, Taken),
        (Op::Bltz, 0, 0, NotTaken),
        (Op::Bgez, 0, 0, Taken),
        (Op::Bgez, 0xFFFF_FFFF_8000_0000, 0, NotTaken),
        // Likely forms: the slot runs only when taken.
        (Op::Beql, 3, 3, Taken),
        (Op::Beql, 3, 4, Annulled),
        (Op::Bnel, 3, 4, Taken),
        (Op::Bnel, 3, 3, Annulled),
        (Op::Blezl, 0, 0, Taken),
        (Op::Blezl, 1, 0, Annulled),
        (Op::Bgtzl, 1, 0, Taken),
        (Op::Bgtzl, 0, 0, Annulled),
        (Op::Bltzl, neg, 0, Taken),
        (Op::Bltzl, 0, 0, Annulled),
        (Op::Bgezl, 0, 0, Taken),
        (Op::Bgezl, neg, 0, Annulled),
    ];
    for &(op, rs, rt, want) in cases {
        let (m, got) = branch(op, rs, rt);
        assert_eq!(got, want, "{op:?} {rs:#x} {rt:#x}");
        assert_eq!(gpr(&m, Reg::RA), 0x5A5A, "{op:?} must not link");
    }
}

#[test]
fn and_link_forms_link_whether_or_not_taken() {
    use Outcome::*;
    let neg = u64::MAX;
    let cases: &[(Op, u64, Outcome)] = &[
        (Op::Bltzal, neg, Taken),
        (Op::Bltzal, 0, NotTaken),
        (Op::Bgezal, 0, Taken),
        (Op::Bgezal, neg, NotTaken),
        (Op::Bltzall, neg, Taken),
        (Op::Bltzall, 1, Annulled),
        (Op::Bgezall, 1, Taken),
        (Op::Bgezall, neg, Annulled),
    ];
    for &(op, rs, want) in cases {
        let (m, got) = branch(op, rs, 0);
        assert_eq!(got, want, "{op:?} {rs:#x}");
        // r31 = branch + 8, sign-extended (KSEG0 address).
        assert_eq!(gpr(&m, Reg::RA), pc_of(2), "{op:?} link");
    }
}

#[test]
fn jal_jr_and_jalr_with_delay_slots() {
    // 0: jal sub            ra = pc_of(2)                 1 + 2
    // 1:   addiu t0, t0, 1  slot                          1
    // 2: jalr t9, s0        s0 = "after": t9 = pc_of(4)   1 + 2
    // 3:   addiu t1, t1, 1  slot                          1
    // 4: addiu t5, t5, 1    skipped
    // 5: after: halt                                      23
    // sub:
    // 6: jr ra                                            1 + 2
    // 7:   addiu t2, t2, 1  slot                          1
    // Order: 0 1 6 7 2 3 5 -> 4 + 3 × 2 (taken) + 2 + 23... counted below.
    let mut a = asm();
    a.jump(Op::Jal, "sub");
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.emit(
        Op::Jalr,
        Operands {
            rd: Reg::T9.number(),
            rs: Reg::S0.number(),
            ..Default::default()
        },
    );
    a.imm(Op::Addiu, Reg::T1, Reg::T1, 1);
    a.imm(Op::Addiu, Reg::T5, Reg::T5, 1);
    a.label("after");
    halt(&mut a, Reg::ZERO);
    a.label("sub");
    a.emit(
        Op::Jr,
        Operands {
            rs: Reg::RA.number(),
            ..Default::default()
        },
    );
    a.imm(Op::Addiu, Reg::T2, Reg::T2, 1);
    let m = run(&a, &[(Reg::S0, pc_of(5))]);
    assert_eq!(gpr(&m, Reg::RA), pc_of(2));
    assert_eq!(gpr(&m, Reg::T9), pc_of(4));
    assert_eq!(
        (gpr(&m, Reg::T0), gpr(&m, Reg::T1), gpr(&m, Reg::T2)),
        (1, 1, 1)
    );
    assert_eq!(gpr(&m, Reg::T5), 0);
    // jal 3, slot 1, jr 3, slot 1, jalr 3, slot 1, halt 23 = 35.
    assert_eq!(cycles(&m), 3 * 4 + HALT);
    assert_code_intact(&m, &a);
}

#[test]
fn j_keeps_the_region_of_the_delay_slot() {
    // j far: the target's bits 31:28 come from the delay slot's address
    // (KSEG0, 0x8...), bits 27:2 from the instruction. 1 + 2 + 1 + 23.
    let mut a = asm();
    a.jump(Op::J, "far");
    a.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    a.imm(Op::Addiu, Reg::T1, Reg::T1, 1);
    a.label("far");
    halt(&mut a, Reg::ZERO);
    let w = a.finish().unwrap()[0];
    assert_eq!(w & 0x03FF_FFFF, (ORIGIN + 12) >> 2 & 0x03FF_FFFF);
    let m = run(&a, &[]);
    assert_eq!((gpr(&m, Reg::T0), gpr(&m, Reg::T1)), (1, 0));
    assert_eq!(
        m.cpus[0].regs.pc & 0xFFFF_FFFF_F000_0000,
        0xFFFF_FFFF_8000_0000
    );
    assert_eq!(cycles(&m), 4 + HALT);
}

#[test]
fn a_counted_loop() {
    // t0 = 10; t1 = 0; loop: t1 += t0; t0 -= 1; bne t0, zero, loop; nop
    // 2 + 10 × 4 + 9 taken × 2 + halt 23 = 83.
    let mut a = asm();
    a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 10);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 0);
    a.label("loop");
    a.r3(Op::Addu, Reg::T1, Reg::T1, Reg::T0);
    a.imm(Op::Addiu, Reg::T0, Reg::T0, -1);
    a.branch(Op::Bne, Reg::T0, Reg::ZERO, "loop");
    a.nop();
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(gpr(&m, Reg::T1), 55);
    assert_eq!(gpr(&m, Reg::T0), 0);
    assert_eq!(cycles(&m), 2 + 40 + 18 + HALT);
    assert_eq!(m.cpus[0].instret(), 2 + 40 + 3, "halt retires lui, ori, sw");
}

#[test]
fn a_taken_branch_likely_in_a_loop_runs_its_slot_every_time() {
    // t0 = 3; loop: bnel t0, zero, loop; addiu t0, t0, -1 (slot)
    // Taken 3 times (slot runs), then not taken with the slot annulled.
    // 1 + 3 × (1 + 2 + 1) + (1 + 1) + 23 = 38; t0 = 0.
    let mut a = asm();
    a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 3);
    a.label("loop");
    a.branch(Op::Bnel, Reg::T0, Reg::ZERO, "loop");
    a.imm(Op::Addiu, Reg::T0, Reg::T0, -1);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(gpr(&m, Reg::T0), 0);
    assert_eq!(cycles(&m), 1 + 12 + 2 + HALT);
}
