//! Exception entry, one test (at least) per ExcCode (`../shared/docs/r4000-reference.md`
//! §4): EPC, Cause.BD/CE/ExcCode, BadVAddr, Context.BadVPN2, EntryHi.VPN2,
//! EXL, the vector (refill 0x000 only with EXL = 0; BEV), delay slots, ERET,
//! interrupts and their masking.
//!
//! The handlers at the vectors set v1 (1 = refill 0x000, 3 = general 0x180)
//! and halt: 24 cycles. Exception entry costs 8; the faulting instruction
//! does not retire.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use sim::cpu::cp0::reg as r;

fn cp0(m: &Machine) -> &sim::cpu::Cp0 {
    m.cpus[0].cp0()
}

/// Checks the common entry state: vector marker, code, EPC, BD, EXL set.
fn assert_entry(m: &Machine, vector: u64, code: ExcCode, epc: u64, bd: bool) {
    let c = cp0(m);
    assert_eq!(gpr(m, Reg::V1), vector, "vector");
    assert_eq!(exc_code(m), code as u32, "ExcCode");
    assert_eq!(c.epc, epc, "EPC");
    assert_eq!(c.cause & cause::BD != 0, bd, "Cause.BD");
    assert!(c.exl(), "EXL set");
}

// --- Int -------------------------------------------------------------------

#[test]
fn int_from_count_compare_on_ip7_between_branch_and_slot() {
    // 0-1: li t0, IE|IM7            cycles 0..2
    // 2:   mtc0 t0, Status          -> 3
    // 3:   mtc0 zero, Count         executes at cycle 3: Count = cycles/2 - 1
    // 4:   addiu t1, zero, 5        -> 5
    // 5:   mtc0 t1, Compare         at cycle 5 Count = 1: due 4 ticks later,
    //                               i.e. at cycle (5/2 + 4) * 2 = 12
    // 6:   loop: beq zero, zero, loop   6 -> 9
    // 7:     nop                        9 -> 10
    //      beq                          10 -> 13
    // At cycle 13 >= 12 the interrupt is taken before the slot (nop): EPC =
    // the branch, BD = 1. Total 13 + 8 + 24 = 45.
    let mut a = asm();
    a.li(Reg::T0, status::IE | (0x80 << status::IM_SHIFT));
    mtc0(&mut a, Reg::T0, r::STATUS);
    mtc0(&mut a, Reg::ZERO, r::COUNT);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 5);
    mtc0(&mut a, Reg::T1, r::COMPARE);
    a.label("loop");
    a.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "loop");
    a.nop();
    let m = run(&a, &[]);
    assert_entry(&m, AT_GENERAL, ExcCode::Int, pc_of(6), true);
    assert_ne!(cp0(&m).cause & cause::IP7, 0, "IP7 pending");
    // Count = cycles / 2 - 1: 5 = Compare at cycle 13 when IP7 rose, 21 at the halt (45).
    assert_eq!(m.cpus[0].count(), 45 / 2 - 1);
    assert_eq!(cycles(&m), 13 + EXC + HANDLER);
}

#[test]
fn writing_compare_clears_ip7() {
    // Like the test above, but the handler reads Cause, writes Compare and
    // reads Cause again:
    //   0x180: mfc0 t2, Cause; mtc0 zero, Compare; mfc0 t3, Cause; halt
    // 13 + 8 + 3 + 23 = 47.
    let mut a = asm();
    a.li(Reg::T0, status::IE | (0x80 << status::IM_SHIFT));
    mtc0(&mut a, Reg::T0, r::STATUS);
    mtc0(&mut a, Reg::ZERO, r::COUNT);
    a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 5);
    mtc0(&mut a, Reg::T1, r::COMPARE);
    a.label("loop");
    a.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "loop");
    a.nop();
    let mut m = machine(&a, &[]);
    let mut h = Asm::new(0x8000_0180);
    mfc0(&mut h, Reg::T2, r::CAUSE);
    mtc0(&mut h, Reg::ZERO, r::COMPARE);
    mfc0(&mut h, Reg::T3, r::CAUSE);
    halt(&mut h, Reg::ZERO);
    place(&mut m, &h);
    run_to_halt(&mut m);
    assert_ne!(gpr(&m, Reg::T2) & u64::from(cause::IP7), 0);
    assert_eq!(gpr(&m, Reg::T3) & u64::from(cause::IP7), 0);
    // Cause read through MFC0 is sign-extended (BD is bit 31).
    assert_eq!(gpr(&m, Reg::T2) >> 32, 0xFFFF_FFFF);
    assert_eq!(cycles(&m), 13 + EXC + 3 + HALT);
}

/// `li t0, status; mtc0 t0, Status; ori t1, zero, 0x100; mtc0 t1, Cause;
/// addiu t2, zero, 1; halt` — sets the software interrupt IP0.
fn soft_interrupt(status_bits: u32) -> Machine {
    let mut a = asm();
    a.li(Reg::T0, status_bits);
    mtc0(&mut a, Reg::T0, r::STATUS);
    a.imm(Op::Ori, Reg::T1, Reg::ZERO, 0x100);
    mtc0(&mut a, Reg::T1, r::CAUSE);
    a.imm(Op::Addiu, Reg::T2, Reg::ZERO, 1);
    halt(&mut a, Reg::ZERO);
    run(&a, &[])
}

#[test]
fn int_from_software_ip0_is_taken_right_after_mtc0_cause() {
    // Taken before instruction 5 (addiu): 5 + 8 + 24 = 37; t2 never set.
    let m = soft_interrupt(status::IE | (1 << status::IM_SHIFT));
    assert_entry(&m, AT_GENERAL, ExcCode::Int, pc_of(5), false);
    assert_eq!(cp0(&m).cause & cause::IP_MASK, 0x100);
    assert_eq!(gpr(&m, Reg::T2), 0);
    assert_eq!(cycles(&m), 5 + EXC + HANDLER);
}

#[test]
fn interrupts_are_masked_by_ie_im_exl_and_erl() {
    // Each of these leaves IP0 pending but not taken: the program runs to
    // its halt, 6 + 23 = 29 cycles.
    let im0 = 1 << status::IM_SHIFT;
    for bits in [
        im0,                                     // IE = 0
        status::IE | (0xFE << status::IM_SHIFT), // IM0 = 0
        status::IE | im0 | status::EXL,
        status::IE | im0 | status::ERL,
    ] {
        let m = soft_interrupt(bits);
        assert_eq!(gpr(&m, Reg::V1), 0, "status {bits:#x}: no interrupt");
        assert_eq!(gpr(&m, Reg::T2), 1);
        assert_eq!(cp0(&m).cause & cause::IP_MASK, 0x100, "still pending");
        assert_eq!(cycles(&m), 6 + HALT);
    }
}

// --- TLB exceptions ----------------------------------------------------------

const ASID: u32 = 0x25;
const MAPPED: u32 = 0x0050_0000;

/// Maps the pair at MAPPED (ASID 0x25) to PA 0x10000/0x11000 with the given
/// flags, sets Context.PTEBase = 0xFF80_0000, and leaves EntryHi on another
/// VPN2 with the same ASID, so the exception visibly rewrites VPN2.
/// 16 + 3 + 3 = 22 cycles.
fn tlb_prelude(a: &mut Asm, flags0: u32, flags1: u32) {
    tlb_map(
        a,
        7,
        MAPPED | ASID,
        entry_lo(0x10000, flags0),
        entry_lo(0x11000, flags1),
        0,
    );
    a.li(Reg::K0, 0xFF80_0000);
    mtc0(a, Reg::K0, r::CONTEXT);
    a.li(Reg::K0, 0x1234_0000 | ASID);
    mtc0(a, Reg::K0, r::ENTRY_HI);
}
const TLB_PRELUDE: u64 = 22;

fn assert_tlb_regs(m: &Machine, va: u32) {
    let c = cp0(m);
    assert_eq!(c.bad_vaddr, sext(va), "BadVAddr");
    assert_eq!(
        c.context,
        0xFFFF_FFFF_FF80_0000 | u64::from((va >> 13) << 4),
        "Context"
    );
    assert_eq!(
        c.entry_hi,
        sext((va & 0xFFFF_E000) | ASID),
        "EntryHi: VPN2 + unchanged ASID"
    );
}

/// `tlb_prelude; li a0, va; <op> t0, 0(a0); halt`: 22 + 2, then the fault.
fn tlb_fault(op: Op, va: u32, flags0: u32, flags1: u32) -> Machine {
    let mut a = asm();
    tlb_prelude(&mut a, flags0, flags1);
    a.li(Reg::A0, va);
    a.mem(op, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, 0x99)]);
    assert_eq!(cycles(&m), TLB_PRELUDE + 2 + EXC + HANDLER);
    assert_eq!(gpr(&m, Reg::T0), 0x99, "destination untouched");
    m
}

#[test]
fn tlbl_refill_uses_the_refill_vector() {
    let va = 0x0060_1234; // no entry
    let m = tlb_fault(Op::Lw, va, V | D, V | D);
    assert_entry(&m, AT_REFILL, ExcCode::TlbL, pc_of(24), false);
    assert_tlb_regs(&m, va);
}

#[test]
fn tlbs_refill_uses_the_refill_vector() {
    let va = 0x7FFF_F000;
    let m = tlb_fault(Op::Sw, va, V | D, V | D);
    assert_entry(&m, AT_REFILL, ExcCode::TlbS, pc_of(24), false);
    assert_tlb_regs(&m, va);
}

#[test]
fn tlbl_and_tlbs_invalid_use_the_general_vector() {
    // Odd page invalid (V = 0).
    let va = MAPPED + 0x1008;
    let m = tlb_fault(Op::Lw, va, V | D, D);
    assert_entry(&m, AT_GENERAL, ExcCode::TlbL, pc_of(24), false);
    assert_tlb_regs(&m, va);
    let m = tlb_fault(Op::Sb, va, V | D, D);
    assert_entry(&m, AT_GENERAL, ExcCode::TlbS, pc_of(24), false);
    assert_tlb_regs(&m, va);
}

#[test]
fn a_wrong_asid_misses() {
    // The entry's ASID is 0x25; make the current ASID 0x26: refill.
    let mut a = asm();
    tlb_prelude(&mut a, V | D, V | D);
    a.li(Reg::K0, 0x1234_0000 | 0x26);
    mtc0(&mut a, Reg::K0, r::ENTRY_HI);
    a.li(Reg::A0, MAPPED);
    a.mem(Op::Lw, Reg::T0, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_entry(&m, AT_REFILL, ExcCode::TlbL, pc_of(27), false);
    assert_eq!(cp0(&m).entry_hi, u64::from(MAPPED | 0x26));
    assert_eq!(cycles(&m), TLB_PRELUDE + 3 + 2 + EXC + HANDLER);
}

#[test]
fn mod_on_a_store_to_a_clean_page() {
    let va = MAPPED + 4;
    let m = tlb_fault(Op::Sw, va, V, V);
    assert_entry(&m, AT_GENERAL, ExcCode::Mod, pc_of(24), false);
    assert_tlb_regs(&m, va);
    assert_eq!(ram(&m, 0x10004, 4), [0; 4], "nothing stored");
}

#[test]
fn loads_and_stores_through_a_valid_mapping_work() {
    // Even page V|D: sw then lw through VA MAPPED+8 reach PA 0x10008.
    // 22 + 2 + sw + lw + 23 = 49.
    let mut a = asm();
    tlb_prelude(&mut a, V | D, V | D);
    a.li(Reg::A0, MAPPED);
    a.mem(Op::Sw, Reg::T0, 8, Reg::A0);
    a.mem(Op::Lw, Reg::T1, 8, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, 0xCAFE_F00D)]);
    assert_eq!(ram(&m, 0x10008, 4), [0xCA, 0xFE, 0xF0, 0x0D]);
    assert_eq!(gpr(&m, Reg::T1), sext(0xCAFE_F00D));
    assert_eq!(gpr(&m, Reg::V1), 0);
    assert_eq!(cycles(&m), TLB_PRELUDE + 4 + HALT);
}

#[test]
fn a_refill_with_exl_set_goes_to_the_general_vector_and_keeps_epc() {
    // li t0, EXL; mtc0 t0, Status; li t0, 0xBEEF0; mtc0 t0, EPC;
    // li a0, 0x00601000; lw t1, 0(a0)  -> 8 instructions, then the fault.
    // EPC and BD are not written with EXL = 1. 8 + 8 + 24 = 40.
    let mut a = asm();
    a.li(Reg::T0, status::EXL);
    mtc0(&mut a, Reg::T0, r::STATUS);
    a.li(Reg::T0, 0x000B_EEF0);
    mtc0(&mut a, Reg::T0, r::EPC);
    a.li(Reg::A0, 0x0060_1000);
    a.mem(Op::Lw, Reg::T1, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let mut m = machine(&a, &[]);
    testkit::cp0_mut(&mut m.cpus[0]).cause = cause::BD;
    run_to_halt(&mut m);
    assert_entry(&m, AT_GENERAL, ExcCode::TlbL, 0xB_EEF0, true);
    assert_eq!(cp0(&m).bad_vaddr, 0x0060_1000);
    assert_eq!(cycles(&m), 8 + EXC + HANDLER);
}

#[test]
fn a_fetch_refill_reports_the_target() {
    // li t0, 0x00603000; jr t0; nop -> fetch at an unmapped address.
    // EPC = BadVAddr = target, BD = 0. 2 + 3 + 1 + 8 + 24 = 38.
    let mut a = asm();
    a.li(Reg::T0, 0x0060_3000);
    a.emit(
        Op::Jr,
        Operands {
            rs: Reg::T0.number(),
            ..Default::default()
        },
    );
    a.nop();
    let m = run(&a, &[]);
    assert_entry(&m, AT_REFILL, ExcCode::TlbL, 0x0060_3000, false);
    assert_eq!(cp0(&m).bad_vaddr, 0x0060_3000);
    assert_eq!(cycles(&m), 6 + EXC + HANDLER);
}

// --- Address errors ----------------------------------------------------------

#[test]
fn adel_on_fetch_from_a_misaligned_pc() {
    // li t0, ORIGIN + 0x102; jr t0; nop. EPC = BadVAddr = target, BD = 0.
    // 2 + 3 + 1 + 8 + 24 = 38.
    let target = ORIGIN + 0x102;
    let mut a = asm();
    a.li(Reg::T0, target);
    a.emit(
        Op::Jr,
        Operands {
            rs: Reg::T0.number(),
            ..Default::default()
        },
    );
    a.nop();
    let m = run(&a, &[]);
    assert_entry(&m, AT_GENERAL, ExcCode::AdEL, sext(target), false);
    assert_eq!(cp0(&m).bad_vaddr, sext(target));
    assert_eq!(cycles(&m), 6 + EXC + HANDLER);
}

/// Runs `user` code in `ksu` mode after the 26-cycle prelude.
fn in_mode(ksu: u32, extra: u32, user: &Asm, regs: &[(Reg, u64)]) -> Machine {
    let mut a = asm();
    to_user(&mut a, ksu, extra);
    let mut m = machine(&a, regs);
    place(&mut m, user);
    run_to_halt(&mut m);
    m
}

#[test]
fn user_and_supervisor_access_to_kernel_segments_is_an_address_error() {
    // One access at USER_PC: 26 + 8 + 24 = 58 cycles. EXL is set by the
    // exception; KSU keeps the mode the fault came from.
    let cases: &[(u32, Op, u32, ExcCode)] = &[
        (KSU_USER, Op::Lw, 0x8000_2000, ExcCode::AdEL),
        (KSU_USER, Op::Sw, 0x8000_2000, ExcCode::AdES),
        (KSU_USER, Op::Lb, 0xA000_2000, ExcCode::AdEL),
        (KSU_USER, Op::Lw, 0xC000_0000, ExcCode::AdEL),
        (KSU_SUPERVISOR, Op::Lw, 0x8000_2000, ExcCode::AdEL),
        (KSU_SUPERVISOR, Op::Sh, 0xBFC0_0000, ExcCode::AdES),
        (KSU_SUPERVISOR, Op::Lw, 0xE000_0000, ExcCode::AdEL),
    ];
    for &(ksu, op, va, code) in cases {
        let mut u = Asm::new(USER_PC);
        u.mem(op, Reg::T0, 0, Reg::A0);
        let m = in_mode(ksu, 0, &u, &[(Reg::A0, sext(va))]);
        assert_entry(&m, AT_GENERAL, code, u64::from(USER_PC), false);
        assert_eq!(cp0(&m).bad_vaddr, sext(va), "{op:?} {va:#x}");
        assert_eq!(cp0(&m).status & status::KSU_MASK, ksu);
        assert_eq!(cycles(&m), TO_USER + EXC + HANDLER, "{op:?} {va:#x}");
    }
}

#[test]
fn supervisor_may_use_sseg_through_the_tlb() {
    // A supervisor load from 0xC000_0000 is legal: it misses the TLB and
    // takes a refill, not an address error. 26 + 8 + 24.
    let mut u = Asm::new(USER_PC);
    u.mem(Op::Lw, Reg::T0, 0, Reg::A0);
    let m = in_mode(KSU_SUPERVISOR, 0, &u, &[(Reg::A0, sext(0xC000_0000))]);
    assert_entry(&m, AT_REFILL, ExcCode::TlbL, u64::from(USER_PC), false);
    assert_eq!(cycles(&m), TO_USER + EXC + HANDLER);
}

#[test]
fn user_fetch_from_kseg0_is_adel() {
    // jr a0 (a0 = ORIGIN) from user mode; slot nop; the fetch faults.
    // 26 + 3 + 1 + 8 + 24 = 62.
    let mut u = Asm::new(USER_PC);
    u.emit(
        Op::Jr,
        Operands {
            rs: Reg::A0.number(),
            ..Default::default()
        },
    );
    u.nop();
    let m = in_mode(KSU_USER, 0, &u, &[(Reg::A0, sext(ORIGIN))]);
    assert_entry(&m, AT_GENERAL, ExcCode::AdEL, sext(ORIGIN), false);
    assert_eq!(cp0(&m).bad_vaddr, sext(ORIGIN));
    assert_eq!(cycles(&m), TO_USER + 4 + EXC + HANDLER);
}

// --- Bus errors ----------------------------------------------------------------

const NOWHERE: u32 = 0xA800_0000; // PA 0x0800_0000: past the 32 MB of RAM, no device

#[test]
fn ibe_on_fetch_outside_ram_and_devices() {
    // li t0, NOWHERE; jr t0; nop. BadVAddr is not loaded (stays 0).
    // 2 + 3 + 1 + 8 + 24 = 38.
    let mut a = asm();
    a.li(Reg::T0, NOWHERE);
    a.emit(
        Op::Jr,
        Operands {
            rs: Reg::T0.number(),
            ..Default::default()
        },
    );
    a.nop();
    let m = run(&a, &[]);
    assert_entry(&m, AT_GENERAL, ExcCode::Ibe, sext(NOWHERE), false);
    assert_eq!(cp0(&m).bad_vaddr, 0);
    assert_eq!(cycles(&m), 6 + EXC + HANDLER);
}

#[test]
fn dbe_on_load_and_store_outside_ram_and_devices() {
    // li a0, NOWHERE; lw/sw t0, 0(a0): the access goes to the bus as an
    // uncached device access (+20) and nobody answers.
    // 2 + 20 + 8 + 24 = 54.
    for (op, code) in [(Op::Lw, ExcCode::Dbe), (Op::Sw, ExcCode::Dbe)] {
        let mut a = asm();
        a.li(Reg::A0, NOWHERE);
        a.mem(op, Reg::T0, 0, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run(&a, &[(Reg::T0, 0x42)]);
        assert_entry(&m, AT_GENERAL, code, pc_of(2), false);
        assert_eq!(cp0(&m).bad_vaddr, 0, "not loaded on bus errors");
        assert_eq!(gpr(&m, Reg::T0), 0x42);
        assert_eq!(cycles(&m), 2 + 20 + EXC + HANDLER, "{op:?}");
    }
}

// --- Sys, Bp, RI, CpU, Ov, Tr ---------------------------------------------------

#[test]
fn syscall_and_break() {
    // One instruction: 8 + 24 = 32.
    for (op, code) in [(Op::Syscall, ExcCode::Sys), (Op::Break, ExcCode::Bp)] {
        let mut a = asm();
        a.emit(
            op,
            Operands {
                imm: 0x12345,
                ..Default::default()
            },
        );
        halt(&mut a, Reg::ZERO);
        let m = run(&a, &[]);
        assert_entry(&m, AT_GENERAL, code, pc_of(0), false);
        assert_eq!(cycles(&m), EXC + HANDLER);
    }
}

#[test]
fn exceptions_in_delay_slots_point_epc_at_the_branch() {
    // beq zero, zero, 1f; <faulting slot>. EPC = the branch, BD = 1.
    // 3 (taken) + 8 + 24 = 35. Also for a not-taken branch (1 + 8 + 24)
    // and a taken branch-likely.
    let slots: &[(Op, ExcCode)] = &[(Op::Syscall, ExcCode::Sys), (Op::Break, ExcCode::Bp)];
    for &(slot, code) in slots {
        for (br, taken) in [(Op::Beq, true), (Op::Bne, false), (Op::Beql, true)] {
            let mut a = asm();
            a.branch(br, Reg::ZERO, Reg::ZERO, "out");
            a.emit(slot, Operands::default());
            a.label("out");
            halt(&mut a, Reg::ZERO);
            let m = run(&a, &[]);
            assert_entry(&m, AT_GENERAL, code, pc_of(0), true);
            let branch = if taken { 3 } else { 1 };
            assert_eq!(cycles(&m), branch + EXC + HANDLER, "{br:?} {slot:?}");
        }
    }
    // A trapping ADD in the slot of a jump: destination unchanged too.
    let mut a = asm();
    a.jump(Op::J, "out");
    a.r3(Op::Add, Reg::T2, Reg::T0, Reg::T0);
    a.label("out");
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, 0x7FFF_FFFF), (Reg::T2, 5)]);
    assert_entry(&m, AT_GENERAL, ExcCode::Ov, pc_of(0), true);
    assert_eq!(gpr(&m, Reg::T2), 5);
    assert_eq!(cycles(&m), 3 + EXC + HANDLER);
}

#[test]
fn ri_for_reserved_words() {
    // Words that encode nothing on the R4000 (so they are written as raw
    // words on purpose): SPECIAL2 MUL (0x1C), MOVZ (funct 0x0A), opcode 0x33
    // (LWC3/PREF), REGIMM rt = 0x04, COP0 BC0F, COP0 RFE. 8 + 24 each.
    for word in [
        0x7000_0002u32,
        0x0000_000A,
        0xCC00_0000,
        0x0404_0000,
        0x4100_0000,
        0x4200_0010,
    ] {
        let mut a = asm();
        a.word(word);
        halt(&mut a, Reg::ZERO);
        let m = run(&a, &[]);
        assert_entry(&m, AT_GENERAL, ExcCode::Ri, pc_of(0), false);
        assert_eq!(cycles(&m), EXC + HANDLER, "{word:#010x}");
    }
}

#[test]
fn ri_for_64_bit_operations_in_user_and_supervisor_mode() {
    // 26 + 8 + 24 = 58 each with UX/SX = 0; with UX/SX = 1 the operation
    // runs: 26 + 1, then `syscall` (8 + 24) = 59.
    let ops: &[Op] = &[
        Op::Dadd,
        Op::Daddu,
        Op::Dsll,
        Op::Dsra32,
        Op::Dmult,
        Op::Ddivu,
        Op::Ld,
        Op::Sd,
        Op::Lwu,
        Op::Ldl,
    ];
    for &op in ops {
        for (ksu, enable) in [(KSU_USER, status::UX), (KSU_SUPERVISOR, status::SX)] {
            let mut u = Asm::new(USER_PC);
            match op.info().format {
                sim::isa::Format::Mem => {
                    u.mem(op, Reg::T0, 0, Reg::A0);
                }
                _ => {
                    u.r3(op, Reg::T0, Reg::T1, Reg::T1);
                }
            }
            u.emit(Op::Syscall, Operands::default());
            // a0 points at the (mapped) user page.
            let regs = [(Reg::A0, u64::from(USER_PC + 0x800)), (Reg::T1, 3)];
            let m = in_mode(ksu, 0, &u, &regs);
            assert_entry(&m, AT_GENERAL, ExcCode::Ri, u64::from(USER_PC), false);
            assert_eq!(cycles(&m), TO_USER + EXC + HANDLER, "{op:?}");
            let m = in_mode(ksu, enable, &u, &regs);
            assert_entry(&m, AT_GENERAL, ExcCode::Sys, u64::from(USER_PC + 4), false);
            assert_eq!(cycles(&m), TO_USER + 1 + EXC + HANDLER, "{op:?}");
        }
    }
}

#[test]
fn cpu_for_cop1_with_ce_1_even_in_kernel_mode() {
    // CU1 = 0: Coprocessor Unusable, CE = 1. 8 + 24.
    for op in [Op::Cop1, Op::Lwc1, Op::Sdc1] {
        let mut a = asm();
        a.emit(op, Operands::default());
        halt(&mut a, Reg::ZERO);
        let m = run(&a, &[]);
        assert_entry(&m, AT_GENERAL, ExcCode::CpU, pc_of(0), false);
        assert_eq!(
            cp0(&m).cause & cause::CE_MASK,
            1 << cause::CE_SHIFT,
            "{op:?}"
        );
        assert_eq!(cycles(&m), EXC + HANDLER);
    }
}

#[test]
fn cpu_for_mtc0_in_user_mode_with_ce_0() {
    // User mode, CU0 = 0: mtc0 t0, Compare -> CpU, CE = 0. The CE field is
    // cleared even if the last exception had set it. 26 + 8 + 24.
    let mut u = Asm::new(USER_PC);
    mtc0(&mut u, Reg::T0, r::COMPARE);
    u.emit(Op::Syscall, Operands::default());
    let mut a = asm();
    to_user(&mut a, KSU_USER, 0);
    let mut m = machine(&a, &[(Reg::T0, 1234)]);
    place(&mut m, &u);
    testkit::cp0_mut(&mut m.cpus[0]).cause = 3 << cause::CE_SHIFT;
    run_to_halt(&mut m);
    assert_entry(&m, AT_GENERAL, ExcCode::CpU, u64::from(USER_PC), false);
    assert_eq!(cp0(&m).cause & cause::CE_MASK, 0);
    assert_eq!(cp0(&m).compare, 0, "not written");
    assert_eq!(cycles(&m), TO_USER + EXC + HANDLER);
    // With CU0 = 1 user mode may use CP0: mtc0 runs, then syscall.
    let m = in_mode(KSU_USER, status::CU0, &u, &[(Reg::T0, 1234)]);
    assert_entry(&m, AT_GENERAL, ExcCode::Sys, u64::from(USER_PC + 4), false);
    assert_eq!(cp0(&m).compare, 1234);
    assert_eq!(cycles(&m), TO_USER + 1 + EXC + HANDLER);
}

#[test]
fn trap_instructions() {
    // (op, rs, rt-or-imm, traps). One instruction then halt: trap 8 + 24,
    // no trap 1 + 23.
    let neg = u64::MAX;
    let r3: &[(Op, u64, u64, bool)] = &[
        (Op::Teq, 5, 5, true),
        (Op::Teq, 5, 6, false),
        (Op::Tne, 5, 6, true),
        (Op::Tge, 0, neg, true),
        (Op::Tgeu, 0, neg, false),
        (Op::Tlt, neg, 0, true),
        (Op::Tltu, neg, 0, false),
    ];
    let imm: &[(Op, u64, i64, bool)] = &[
        (Op::Teqi, neg, -1, true),
        (Op::Tnei, 0, 0, false),
        (Op::Tgei, 0, -1, true),
        // Unsigned after sign extension: 0 >= 0xFFFF_FFFF_FFFF_FFFF is false.
        (Op::Tgeiu, 0, -1, false),
        (Op::Tlti, neg, 0, true),
        (Op::Tltiu, 5, -1, true),
    ];
    for &(op, rs, rt, traps) in r3 {
        let mut a = asm();
        a.rs_rt(op, Reg::T0, Reg::T1);
        halt(&mut a, Reg::ZERO);
        let mut m = machine(&a, &[(Reg::T0, rs), (Reg::T1, rt)]);
        run_to_halt(&mut m);
        assert_eq!(
            gpr(&m, Reg::V1) == AT_GENERAL,
            traps,
            "{op:?} {rs:#x} {rt:#x}"
        );
        assert_eq!(cycles(&m), if traps { EXC + HANDLER } else { 1 + HALT });
        if traps {
            assert_eq!(exc_code(&m), ExcCode::Tr as u32);
        }
    }
    for &(op, rs, v, traps) in imm {
        let mut a = asm();
        a.emit(
            op,
            Operands {
                rs: Reg::T0.number(),
                imm: v as u32,
                ..Default::default()
            },
        );
        halt(&mut a, Reg::ZERO);
        let mut m = machine(&a, &[(Reg::T0, rs)]);
        run_to_halt(&mut m);
        assert_eq!(gpr(&m, Reg::V1) == AT_GENERAL, traps, "{op:?} {rs:#x} {v}");
        assert_eq!(cycles(&m), if traps { EXC + HANDLER } else { 1 + HALT });
        if traps {
            assert_eq!(exc_code(&m), ExcCode::Tr as u32);
        }
    }
}

// --- Watch ------------------------------------------------------------------------

#[test]
fn watch_on_a_load_from_the_watched_doubleword() {
    // WatchLo = PA 0x2000 | R. lw t0, 4(a0) (a0 = KSEG0 0x8000_2000) hits the
    // same doubleword: Watch (23), no BadVAddr. A store is not watched with W = 0.
    // li; mtc0; sw (runs); lw (faults): 2 + 1 + 1 + 8 + 24 = 36.
    let mut a = asm();
    a.li(Reg::T1, 0x2000 | 2);
    mtc0(&mut a, Reg::T1, r::WATCH_LO);
    a.mem(Op::Sw, Reg::T2, 0, Reg::A0);
    a.mem(Op::Lw, Reg::T0, 4, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run(
        &a,
        &[(Reg::A0, sext(0x8000_2000)), (Reg::T2, 7), (Reg::T0, 0x55)],
    );
    assert_entry(&m, AT_GENERAL, ExcCode::Watch, pc_of(4), false);
    assert_eq!(ram(&m, 0x2000, 4), [0, 0, 0, 7]);
    assert_eq!(gpr(&m, Reg::T0), 0x55);
    assert_eq!(cp0(&m).bad_vaddr, 0);
    assert_eq!(cycles(&m), 4 + EXC + HANDLER);
}

// --- Vectors with BEV = 1, nested exceptions, ERET --------------------------------

#[test]
fn bev_selects_the_bootstrap_vectors() {
    // Stepped one instruction at a time (the BEV vectors lie in the boot ROM
    // region, which our RAM does not cover). Each entry costs 8 cycles.
    let mut a = asm();
    a.emit(Op::Syscall, Operands::default());
    a.mem(Op::Lw, Reg::T0, 0, Reg::A0); // a0 unmapped: refill
    let mut m = machine(&a, &[(Reg::A0, 0x0070_0000)]);
    m.cpus[0].write_cp0(r::STATUS, u64::from(status::BEV));
    m.cpus[0].step_one::<false>(&mut m.bus);
    assert_eq!(m.cpus[0].regs.pc, 0xFFFF_FFFF_BFC0_0380);
    assert_eq!(cycles(&m), EXC);
    // Back to the load with EXL clear: the refill uses 0xBFC0_0200.
    m.cpus[0].write_cp0(r::STATUS, u64::from(status::BEV));
    m.cpus[0].set_pc(pc_of(1));
    m.cpus[0].step_one::<false>(&mut m.bus);
    assert_eq!(m.cpus[0].regs.pc, 0xFFFF_FFFF_BFC0_0200);
    assert_eq!(exc_code(&m), ExcCode::TlbL as u32);
    // And with EXL set, 0xBFC0_0380.
    m.cpus[0].set_pc(pc_of(1));
    m.cpus[0].step_one::<false>(&mut m.bus);
    assert_eq!(m.cpus[0].regs.pc, 0xFFFF_FFFF_BFC0_0380);
    assert_eq!(cp0(&m).epc, pc_of(1), "EPC kept from the first refill");
    assert_eq!(cycles(&m), 3 * EXC);
    assert_eq!(ram(&m, 0x1000, 4), a.bytes().unwrap()[..4]);
}

#[test]
fn eret_clears_erl_before_exl_and_has_no_delay_slot() {
    // Status = ERL | EXL, ErrorEPC = "first", EPC = "second".
    // 0-1 li t0, ERL|EXL; 2 mtc0 Status; 3-4 li t0, first; 5 mtc0 ErrorEPC;
    // 6-7 li t0, second; 8 mtc0 EPC; 9 eret; 10 addiu t1, t1, 1 (never runs)
    // first: 11 eret; 12 addiu t2, t2, 1 (never runs)
    // second: 13 halt
    // 9 + 4 + 4 + 23 = 40.
    let mut a = asm();
    a.li(Reg::T0, status::ERL | status::EXL);
    mtc0(&mut a, Reg::T0, r::STATUS);
    a.li(Reg::T0, ORIGIN + 11 * 4);
    mtc0(&mut a, Reg::T0, r::ERROR_EPC);
    a.li(Reg::T0, ORIGIN + 13 * 4);
    mtc0(&mut a, Reg::T0, r::EPC);
    cop0(&mut a, Op::Eret);
    a.imm(Op::Addiu, Reg::T1, Reg::T1, 1);
    cop0(&mut a, Op::Eret);
    a.imm(Op::Addiu, Reg::T2, Reg::T2, 1);
    mfc0(&mut a, Reg::T3, r::STATUS);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!((gpr(&m, Reg::T1), gpr(&m, Reg::T2)), (0, 0));
    assert_eq!(gpr(&m, Reg::T3) & u64::from(status::ERL | status::EXL), 0);
    assert_eq!(gpr(&m, Reg::V1), 0);
    assert_eq!(cycles(&m), 9 + 4 + 4 + 1 + HALT);
}

#[test]
fn eret_returns_to_user_mode_and_syscall_comes_back() {
    // The kernel enters user mode; user code does `addiu t0, t0, 1; syscall`.
    // 26 + 1 + 8 + 24 = 59; Status.KSU stays user, EXL set.
    let mut u = Asm::new(USER_PC);
    u.imm(Op::Addiu, Reg::T0, Reg::T0, 1);
    u.emit(Op::Syscall, Operands::default());
    let m = in_mode(KSU_USER, 0, &u, &[]);
    assert_entry(&m, AT_GENERAL, ExcCode::Sys, u64::from(USER_PC + 4), false);
    assert_eq!(gpr(&m, Reg::T0), 1);
    assert_eq!(cp0(&m).status & status::KSU_MASK, KSU_USER);
    assert_eq!(cycles(&m), TO_USER + 1 + EXC + HANDLER);
}

#[test]
fn a_fetch_fault_on_the_delay_slot_points_epc_at_the_branch() {
    // Kernel code maps the pair at 0x0040_0000 (identity) and jumps to its
    // last word, 0x0040_1FFC, which holds `b self`. The delay slot at
    // 0x0040_2000 is unmapped: TLBL refill on the fetch, EPC = the branch,
    // BD = 1, BadVAddr = the slot.
    // tlb_map 16 + li 2 + jr 3 + nop 1 + beq 3 + 8 + 24 = 57.
    let mut a = asm();
    tlb_map(
        &mut a,
        0,
        USER_PC,
        entry_lo(0x40_0000, V | D),
        entry_lo(0x40_1000, V | D),
        0,
    );
    a.li(Reg::T0, 0x0040_1FFC);
    a.emit(
        Op::Jr,
        Operands {
            rs: Reg::T0.number(),
            ..Default::default()
        },
    );
    a.nop();
    let mut b = Asm::new(0x0040_1FFC);
    b.label("self");
    b.branch(Op::Beq, Reg::ZERO, Reg::ZERO, "self");
    let mut m = machine(&a, &[]);
    place(&mut m, &b);
    run_to_halt(&mut m);
    assert_entry(&m, AT_REFILL, ExcCode::TlbL, 0x0040_1FFC, true);
    assert_eq!(cp0(&m).bad_vaddr, 0x0040_2000);
    assert_eq!(cp0(&m).entry_hi, 0x0040_2000);
    assert_eq!(cycles(&m), 16 + 2 + 4 + 3 + EXC + HANDLER);
}
