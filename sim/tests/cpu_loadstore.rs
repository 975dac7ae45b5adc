//! Loads and stores (`../shared/docs/r4000-reference.md` §5.7, §5.11): widths, sign and
//! zero extension, alignment exceptions, the unaligned LWL/LWR/SWL/SWR and
//! LDL/LDR/SDL/SDR pairs (big-endian), the load-use interlock (+2 cycles
//! when the very next instruction reads the loaded register), and stores
//! over code already decoded.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;

/// Data lives at physical 0x2000, reached through KSEG0 (a0 holds the base).
const DATA_PA: u64 = 0x2000;
const DATA: u64 = 0xFFFF_FFFF_8000_2000;
const BYTES: [u8; 16] = [
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
];

fn run_on_data(a: &Asm, regs: &[(Reg, u64)]) -> Machine {
    let mut m = machine(a, regs);
    assert!(m.bus.write_bytes(DATA_PA, &BYTES));
    m.cpus[0].regs.set(Reg::A0, DATA);
    run_to_halt(&mut m);
    m
}

#[test]
fn worked_example_of_the_reference() {
    // §5.11: memory 10 11 12 13 14 15 16 17, t0 = 0xFFFF_FFFF_AABB_CCDD.
    //   lwl t0, 1(a0)   -> 0x1112_13DD
    //   lwr t0, 4(a0)   -> 0x1112_1314 (reads t0, loaded just before: +2)
    //   swl t1, 1(a0)   t1 = 0xA1B2_C3D4: 0x1001..0x1003 <- A1 B2 C3
    //   swr t1, 4(a0)   0x1004 <- D4
    // Cycles: 1 + (2 + 1) + 1 + 1 + halt 23 = 29.
    let mut a = asm();
    a.mem(Op::Lwl, Reg::T0, 1, Reg::A0);
    a.mem(Op::Lwr, Reg::T0, 4, Reg::A0);
    a.mem(Op::Swl, Reg::T1, 1, Reg::A0);
    a.mem(Op::Swr, Reg::T1, 4, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run_on_data(
        &a,
        &[
            (Reg::T0, 0xFFFF_FFFF_AABB_CCDD),
            (Reg::T1, 0xFFFF_FFFF_A1B2_C3D4),
        ],
    );
    assert_eq!(gpr(&m, Reg::T0), 0x1112_1314);
    assert_eq!(
        ram(&m, DATA_PA, 8),
        [0x10, 0xA1, 0xB2, 0xC3, 0xD4, 0x15, 0x16, 0x17]
    );
    assert_eq!(cycles(&m), 4 + 2 + HALT);
    assert_code_intact(&m, &a);
}

#[test]
fn the_lwl_half_alone_matches_the_worked_example() {
    // lwl t0, 1(a0) alone: 0x1112_13DD, positive, so bits 63:32 clear.
    // Cycles: 1 + 23.
    let mut a = asm();
    a.mem(Op::Lwl, Reg::T0, 1, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run_on_data(&a, &[(Reg::T0, 0xFFFF_FFFF_AABB_CCDD)]);
    assert_eq!(gpr(&m, Reg::T0), 0x1112_13DD);
    assert_eq!(cycles(&m), 1 + HALT);
}

/// The §5.11 table, byte by byte: register bytes r[0..4] (r[0] = bits 31:24),
/// memory bytes m[0..4] of the aligned word.
fn lwl_model(m: &[u8], old: [u8; 4], k: usize) -> [u8; 4] {
    std::array::from_fn(|i| if i < 4 - k { m[k + i] } else { old[i] })
}
fn lwr_model(m: &[u8], old: [u8; 4], k: usize) -> [u8; 4] {
    std::array::from_fn(|i| if i >= 3 - k { m[i - (3 - k)] } else { old[i] })
}

#[test]
fn lwl_and_lwr_at_every_byte_offset() {
    // For k in 0..4: lwl t0, k(a0); lwr t1, k(a0) on the word 10 11 12 13,
    // with t0 = t1 = 0xA1B2C3D4 (sign-extended) beforehand. No load-use
    // (different registers): 2 + 23 cycles.
    let old = [0xA1, 0xB2, 0xC3, 0xD4];
    let reg0 = sext(u32::from_be_bytes(old));
    for k in 0..4usize {
        let mut a = asm();
        a.mem(Op::Lwl, Reg::T0, k as i16, Reg::A0);
        a.mem(Op::Lwr, Reg::T1, k as i16, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run_on_data(&a, &[(Reg::T0, reg0), (Reg::T1, reg0)]);
        let l = u32::from_be_bytes(lwl_model(&BYTES, old, k));
        let r = u32::from_be_bytes(lwr_model(&BYTES, old, k));
        // Both results are sign-extended from bit 31, as QEMU and MAME do.
        assert_eq!(gpr(&m, Reg::T0), sext(l), "lwl k={k}");
        assert_eq!(gpr(&m, Reg::T1), sext(r), "lwr k={k}");
        assert_eq!(cycles(&m), 2 + HALT);
        assert_eq!(ram(&m, DATA_PA, 16), BYTES);
    }
}

#[test]
fn swl_and_swr_at_every_byte_offset() {
    // swl t1, k(a0) on the first word, swr t1, 4+k(a0) on the second.
    // 2 stores + 23 = 25 cycles.
    let r = [0xA1u8, 0xB2, 0xC3, 0xD4];
    for k in 0..4usize {
        let mut a = asm();
        a.mem(Op::Swl, Reg::T1, k as i16, Reg::A0);
        a.mem(Op::Swr, Reg::T1, 4 + k as i16, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run_on_data(&a, &[(Reg::T1, sext(u32::from_be_bytes(r)))]);
        let mut want = BYTES;
        // SWL: A+k..A+3 <- r0 r1 ..; SWR: A..A+k <- .. r2 r3.
        want[k..4].copy_from_slice(&r[..4 - k]);
        want[4..=4 + k].copy_from_slice(&r[3 - k..]);
        assert_eq!(ram(&m, DATA_PA, 16), want, "k={k}");
        assert_eq!(cycles(&m), 2 + HALT);
    }
}

#[test]
fn unaligned_word_and_doubleword_pairs_at_every_offset() {
    // lwl t0, k(a0); lwr t0, k+3(a0)   -> the word at DATA+k (load-use +2)
    // ldl t1, k(a0); ldr t1, k+7(a0)   -> the doubleword at DATA+k (+2)
    // 4 instructions + 2 × 2 stalls + 23.
    for k in 0..8usize {
        let mut a = asm();
        a.mem(Op::Lwl, Reg::T0, k as i16, Reg::A0);
        a.mem(Op::Lwr, Reg::T0, k as i16 + 3, Reg::A0);
        a.mem(Op::Ldl, Reg::T1, k as i16, Reg::A0);
        a.mem(Op::Ldr, Reg::T1, k as i16 + 7, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run_on_data(&a, &[(Reg::T0, 0x5555), (Reg::T1, 0x6666)]);
        let w = u32::from_be_bytes(BYTES[k..k + 4].try_into().unwrap());
        let d = u64::from_be_bytes(BYTES[k..k + 8].try_into().unwrap());
        assert_eq!(gpr(&m, Reg::T0), sext(w), "word at +{k}");
        assert_eq!(gpr(&m, Reg::T1), d, "doubleword at +{k}");
        assert_eq!(cycles(&m), 4 + 4 + HALT);
    }
}

#[test]
fn unaligned_doubleword_stores_at_every_offset() {
    // sdl t1, k(a0); sdr t1, k+7(a0) writes the 8 bytes of t1 at DATA+k.
    // 2 + 23 cycles.
    let v: u64 = 0xA1B2_C3D4_E5F6_0718;
    for k in 0..8usize {
        let mut a = asm();
        a.mem(Op::Sdl, Reg::T1, k as i16, Reg::A0);
        a.mem(Op::Sdr, Reg::T1, k as i16 + 7, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run_on_data(&a, &[(Reg::T1, v)]);
        let mut want = BYTES;
        want[k..k + 8].copy_from_slice(&v.to_be_bytes());
        assert_eq!(ram(&m, DATA_PA, 16), want, "k={k}");
        assert_eq!(cycles(&m), 2 + HALT);
    }
}

#[test]
fn load_widths_and_extension() {
    // lb, lbu, lh, lhu, lw, lwu, ld from the second doubleword (80 81 … 87),
    // each into its own register: 7 loads; no load is read by the next
    // instruction, so 7 + 23 cycles.
    let mut a = asm();
    a.mem(Op::Lb, Reg::T0, 8, Reg::A0);
    a.mem(Op::Lbu, Reg::T1, 8, Reg::A0);
    a.mem(Op::Lh, Reg::T2, 10, Reg::A0);
    a.mem(Op::Lhu, Reg::T3, 10, Reg::A0);
    a.mem(Op::Lw, Reg::T4, 12, Reg::A0);
    a.mem(Op::Lwu, Reg::T5, 12, Reg::A0);
    a.mem(Op::Ld, Reg::T6, 8, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run_on_data(&a, &[]);
    assert_eq!(gpr(&m, Reg::T0), 0xFFFF_FFFF_FFFF_FF80);
    assert_eq!(gpr(&m, Reg::T1), 0x80);
    assert_eq!(gpr(&m, Reg::T2), 0xFFFF_FFFF_FFFF_8283);
    assert_eq!(gpr(&m, Reg::T3), 0x8283);
    assert_eq!(gpr(&m, Reg::T4), 0xFFFF_FFFF_8485_8687);
    assert_eq!(gpr(&m, Reg::T5), 0x8485_8687);
    assert_eq!(gpr(&m, Reg::T6), 0x8081_8283_8485_8687);
    assert_eq!(cycles(&m), 7 + HALT);
    assert_eq!(ram(&m, DATA_PA, 16), BYTES);
}

#[test]
fn store_widths_write_the_low_bytes() {
    // sb, sh, sw, sd of t0 = 0x0102_0304_0506_0708 at 0, 2, 4, 8, with a
    // negative offset once (a1 = a0 + 16): 4 + 23 cycles.
    let mut a = asm();
    a.mem(Op::Sb, Reg::T0, 0, Reg::A0);
    a.mem(Op::Sh, Reg::T0, 2, Reg::A0);
    a.mem(Op::Sw, Reg::T0, -12, Reg::A1);
    a.mem(Op::Sd, Reg::T0, 8, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run_on_data(
        &a,
        &[(Reg::T0, 0x0102_0304_0506_0708), (Reg::A1, DATA + 16)],
    );
    assert_eq!(
        ram(&m, DATA_PA, 16),
        [0x08, 0x11, 0x07, 0x08, 0x05, 0x06, 0x07, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]
    );
    assert_eq!(cycles(&m), 4 + HALT);
}

#[test]
fn load_use_interlock_costs_two_cycles_only_back_to_back() {
    // lw t0, 0(a0); addu t1, t0, t0     -> +2 (next instruction reads t0)
    // lw t2, 4(a0); nop; addu t3, t2, t2 -> no stall in this model (the
    //                                       reference's 1-cycle case is not modelled)
    // lw t4, 8(a0); sw t4, 0(a1)        -> +2 (store data is a use)
    // lw t6, 0(a0)                      -> then the halt, which does not read t6
    // 8 instructions + 4 + 23.
    let mut a = asm();
    a.mem(Op::Lw, Reg::T0, 0, Reg::A0);
    a.r3(Op::Addu, Reg::T1, Reg::T0, Reg::T0);
    a.mem(Op::Lw, Reg::T2, 4, Reg::A0);
    a.nop();
    a.r3(Op::Addu, Reg::T3, Reg::T2, Reg::T2);
    a.mem(Op::Lw, Reg::T4, 8, Reg::A0);
    a.mem(Op::Sw, Reg::T4, 0, Reg::A1);
    a.mem(Op::Lw, Reg::T6, 0, Reg::A0);
    halt(&mut a, Reg::ZERO);
    let m = run_on_data(&a, &[(Reg::A1, DATA + 16)]);
    assert_eq!(gpr(&m, Reg::T1), 0x2022_2426);
    assert_eq!(gpr(&m, Reg::T3), 0x282A_2C2E);
    assert_eq!(ram(&m, DATA_PA + 16, 4), [0x80, 0x81, 0x82, 0x83]);
    assert_eq!(gpr(&m, Reg::T6), 0x1011_1213);
    assert_eq!(cycles(&m), 8 + 4 + HALT);
}

#[test]
fn misaligned_accesses_raise_address_errors() {
    // One faulting access per run: EPC = it, BadVAddr = its address, general
    // vector, rt unchanged. Cycles: 8 + handler 24 = 32 (the fault retires nothing).
    let cases: &[(Op, Reg, i16, ExcCode)] = &[
        (Op::Lh, Reg::T0, 1, ExcCode::AdEL),
        (Op::Lhu, Reg::T0, 3, ExcCode::AdEL),
        (Op::Lw, Reg::T0, 2, ExcCode::AdEL),
        (Op::Lwu, Reg::T0, 1, ExcCode::AdEL),
        (Op::Ld, Reg::T0, 4, ExcCode::AdEL),
        (Op::Ll, Reg::T0, 2, ExcCode::AdEL),
        // A load to r0 still accesses memory, so it still faults.
        (Op::Lw, Reg::ZERO, 1, ExcCode::AdEL),
        (Op::Sh, Reg::T0, 1, ExcCode::AdES),
        (Op::Sw, Reg::T0, 3, ExcCode::AdES),
        (Op::Sd, Reg::T0, 2, ExcCode::AdES),
        (Op::Sc, Reg::T0, 1, ExcCode::AdES),
    ];
    for &(op, rt, off, code) in cases {
        let mut a = asm();
        a.mem(op, rt, off, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let m = run_on_data(&a, &[(Reg::T0, 0x77)]);
        let c = m.cpus[0].cp0();
        assert_eq!(gpr(&m, Reg::V1), AT_GENERAL, "{op:?}");
        assert_eq!(exc_code(&m), code as u32, "{op:?}");
        assert_eq!(c.bad_vaddr, DATA + off as u64, "{op:?}");
        assert_eq!(c.epc, sext(ORIGIN), "{op:?}");
        assert_eq!(gpr(&m, Reg::T0), 0x77, "{op:?}");
        assert_eq!(ram(&m, DATA_PA, 16), BYTES, "{op:?}");
        assert_eq!(cycles(&m), EXC + HANDLER, "{op:?}");
    }
}

#[test]
fn a_store_over_decoded_code_takes_effect() {
    // 0: sw t0, 12(a1)      a1 = ORIGIN; overwrites instruction 3
    // 1: addiu t2, zero, 1  (already decoded with its page)
    // 2: nop
    // 3: addiu t2, zero, 2  replaced by t0 = `addiu t2, zero, 42`
    // 4 + 23 cycles.
    let mut patch = Asm::new(0);
    patch.imm(Op::Addiu, Reg::T2, Reg::ZERO, 42);
    let new_word = patch.finish().unwrap()[0];
    let mut a = asm();
    a.mem(Op::Sw, Reg::T0, 12, Reg::A1);
    a.imm(Op::Addiu, Reg::T2, Reg::ZERO, 1);
    a.nop();
    a.imm(Op::Addiu, Reg::T2, Reg::ZERO, 2);
    halt(&mut a, Reg::ZERO);
    let m = run(
        &a,
        &[(Reg::T0, u64::from(new_word)), (Reg::A1, sext(ORIGIN))],
    );
    assert_eq!(gpr(&m, Reg::T2), 42);
    assert_eq!(ram(&m, 0x1000 + 12, 4), new_word.to_be_bytes());
    assert_eq!(cycles(&m), 4 + HALT);
}
