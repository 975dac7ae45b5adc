//! CP0 registers through MTC0/MFC0 (`../shared/docs/r4000-reference.md` §2): write masks,
//! read-only registers, sign extension of MFC0, DMTC0/DMFC0, Count and
//! Compare, LLAddr, CACHE tag round trip.
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use sim::cpu::cp0::reg as r;

/// `li t0, value; mtc0 t0, reg; mfc0 t1, reg; halt`: 4 + 23 = 27 cycles.
fn write_read(reg: u32, value: u32) -> u64 {
    let mut a = asm();
    a.li(Reg::T0, value);
    mtc0(&mut a, Reg::T0, reg);
    mfc0(&mut a, Reg::T1, reg);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(cycles(&m), 4 + HALT, "reg {reg}");
    assert_eq!(gpr(&m, Reg::V1), 0, "reg {reg}: no exception");
    gpr(&m, Reg::T1)
}

#[test]
fn write_masks_and_read_only_registers() {
    let ones = 0xFFFF_FFFF;
    let cases: &[(u32, u32, u64)] = &[
        // Index: only 5:0 writable (P belongs to TLBP).
        (r::INDEX, ones, 0x3F),
        // Random is read-only: the read shows the counter (47 - 3 instructions).
        (r::RANDOM, 0, 44),
        (r::ENTRY_LO0, ones, 0x3FFF_FFFF),
        (r::ENTRY_LO1, 0xC000_0001, 1),
        // Context: PTEBase writable, BadVPN2 kept (0), MFC0 sign-extends.
        (r::CONTEXT, ones, 0xFFFF_FFFF_FF80_0000),
        (r::PAGE_MASK, ones, 0x01FF_E000),
        (r::WIRED, ones, 0x3F),
        // BadVAddr, PRId, CacheErr: read-only.
        (r::BAD_VADDR, ones, 0),
        (r::PRID, ones, 0x0422),
        (r::CACHE_ERR, ones, 0),
        // EntryHi: VPN2 and ASID, 12:8 read 0.
        (r::ENTRY_HI, ones, 0xFFFF_FFFF_FFFF_E0FF),
        // Cause: only IP1:0 writable (IE = 0, so no interrupt is taken).
        (r::CAUSE, ones, 0x300),
        // Config: bits 5:0 writable, the rest the boot-mode value 0x0002_8243.
        (r::CONFIG, 0, 0x0002_8240),
        (r::EPC, 0x8000_1234, 0xFFFF_FFFF_8000_1234),
        (r::ERROR_EPC, 0x7FFF_FFFC, 0x7FFF_FFFC),
        (r::WATCH_HI, ones, 0xF),
        (r::ECC, ones, 0xFF),
        (r::TAG_LO, 0x1234_5678, 0x1234_5678),
        (r::LL_ADDR, 0x0000_0ABC, 0xABC),
        // Reserved numbers read 0 and ignore writes.
        (7, ones, 0),
        (21, ones, 0),
        (31, ones, 0),
    ];
    for &(reg, value, want) in cases {
        assert_eq!(write_read(reg, value), want, "CP0 {reg} <- {value:#x}");
    }
}

#[test]
fn status_write_mask_keeps_ts_and_the_reserved_bits() {
    // Writing all ones: bits 24, 23, 21 (TS) and 19 stay 0; EXL = 1 keeps
    // kernel mode for the halt. 27 cycles. BEV = 1 is harmless: no exception.
    assert_eq!(write_read(r::STATUS, 0xFFFF_FFFF), sext(0xFE57_FFFF));
}

#[test]
fn dmtc0_and_dmfc0_move_64_bits() {
    // dmtc0 t0, EPC; dmfc0 t1, EPC; mfc0 t2, EPC: 3 + 23 = 26.
    let mut a = asm();
    a.emit(
        Op::Dmtc0,
        Operands {
            rt: Reg::T0.number(),
            rd: r::EPC,
            ..Default::default()
        },
    );
    a.emit(
        Op::Dmfc0,
        Operands {
            rt: Reg::T1.number(),
            rd: r::EPC,
            ..Default::default()
        },
    );
    mfc0(&mut a, Reg::T2, r::EPC);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T0, 0x1234_5678_9ABC_DEF0)]);
    assert_eq!(gpr(&m, Reg::T1), 0x1234_5678_9ABC_DEF0);
    assert_eq!(
        gpr(&m, Reg::T2),
        0xFFFF_FFFF_9ABC_DEF0,
        "MFC0 = sext32 of the low word"
    );
    assert_eq!(cycles(&m), 3 + HALT);
}

#[test]
fn count_ticks_every_other_cycle() {
    // 0: mtc0 zero, Count   executes at cycle 0: Count = cycles / 2
    // 1-9: 9 × nop           cycles 1..10
    // 10: mfc0 t0, Count     executes at cycle 10: 5
    // 11: mtc0 t1, Count     (t1 = 1000) at cycle 11: offset = 1000 - 5
    // 12: mfc0 t2, Count     at cycle 12: 6 + 995 = 1001
    // 13 + 23 = 36 cycles.
    let mut a = asm();
    mtc0(&mut a, Reg::ZERO, r::COUNT);
    for _ in 0..9 {
        a.nop();
    }
    mfc0(&mut a, Reg::T0, r::COUNT);
    mtc0(&mut a, Reg::T1, r::COUNT);
    mfc0(&mut a, Reg::T2, r::COUNT);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::T1, 1000)]);
    assert_eq!(gpr(&m, Reg::T0), 5);
    assert_eq!(gpr(&m, Reg::T2), 1001);
    assert_eq!(cycles(&m), 13 + HALT);
    assert_eq!(m.cpus[0].count(), 1000 + (36 / 2 - 11 / 2));
}

#[test]
fn ip7_rises_when_count_reaches_compare_even_with_interrupts_off() {
    // 0: mtc0 zero, Count          cycle 0
    // 1: addiu t0, zero, 4
    // 2: mtc0 t0, Compare          at cycle 2 Count = 1: due at cycle 8
    // 3: mfc0 s0, Cause            cycle 3: IP7 clear
    // 4-8: 5 × nop                 cycles 4..9; IP7 rises at the boundary at 8
    // 9: mfc0 s1, Cause            IP7 set
    // 10: mtc0 t0, Compare         clears it (and re-arms 2^32 ticks away)
    // 11: mfc0 s2, Cause           clear
    // 12 + 23 = 35 cycles.
    let mut a = asm();
    mtc0(&mut a, Reg::ZERO, r::COUNT);
    a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 4);
    mtc0(&mut a, Reg::T0, r::COMPARE);
    mfc0(&mut a, Reg::S0, r::CAUSE);
    for _ in 0..5 {
        a.nop();
    }
    mfc0(&mut a, Reg::S1, r::CAUSE);
    mtc0(&mut a, Reg::T0, r::COMPARE);
    mfc0(&mut a, Reg::S2, r::CAUSE);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    let ip7 = u64::from(cause::IP7);
    assert_eq!(gpr(&m, Reg::S0) & ip7, 0);
    assert_eq!(gpr(&m, Reg::S1) & ip7, ip7);
    assert_eq!(gpr(&m, Reg::S2) & ip7, 0);
    assert_eq!(gpr(&m, Reg::V1), 0, "IE = 0: not taken");
    assert_eq!(cycles(&m), 12 + HALT);
}

#[test]
fn cache_index_store_tag_then_load_tag_round_trips_taglo() {
    // li t0, tag; mtc0 t0, TagLo; cache IndexStoreTag(D), 0x40(a0);
    // mtc0 zero, TagLo; cache IndexLoadTag(D), 0x40(a0); mfc0 t1, TagLo.
    // 7 + 23 = 30.
    let store_tag_d = (2 << 2) | 1;
    let load_tag_d = (1 << 2) | 1;
    let mut a = asm();
    a.li(Reg::T0, 0x0001_2380);
    mtc0(&mut a, Reg::T0, r::TAG_LO);
    a.emit(
        Op::Cache,
        Operands {
            rt: store_tag_d,
            rs: Reg::A0.number(),
            imm: 0x40,
            ..Default::default()
        },
    );
    mtc0(&mut a, Reg::ZERO, r::TAG_LO);
    a.emit(
        Op::Cache,
        Operands {
            rt: load_tag_d,
            rs: Reg::A0.number(),
            imm: 0x40,
            ..Default::default()
        },
    );
    mfc0(&mut a, Reg::T1, r::TAG_LO);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::A0, sext(0x8000_0000))]);
    assert_eq!(gpr(&m, Reg::T1), 0x0001_2380);
    assert_eq!(cycles(&m), 7 + HALT);
}
