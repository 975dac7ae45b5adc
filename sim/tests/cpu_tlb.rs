//! The TLB through real instructions (`../shared/docs/r4000-reference.md` §3): every page
//! size from 4 KB to 16 MB written with TLBWI and used by loads, ASID and G
//! matching, TLBP (hit, miss with Index.P, PageMask honoured), TLBR (G into
//! both EntryLo, ASID overwritten), TLBWR and Random within [Wired, 47].
// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use sim::cpu::cp0::reg as r;

const SIZES: [(u32, u32); 7] = [
    (0x0000_0000, 4 << 10),
    (0x0000_6000, 16 << 10),
    (0x0001_E000, 64 << 10),
    (0x0007_E000, 256 << 10),
    (0x001F_E000, 1 << 20),
    (0x007F_E000, 4 << 20),
    (0x01FF_E000, 16 << 20),
];

#[test]
fn every_page_size_maps_its_even_and_odd_halves() {
    // VA pair at 0x0200_0000 (32 MB aligned); even page -> PA 0, odd page
    // -> PA `size`. Markers sit in the middle of each page.
    //   tlb_map (16); li a0 (2); li a1 (2); li a2 (2);
    //   lw t0, 0(a0)  even page, middle     1
    //   lw t1, 0(a1)  odd page, middle      1
    //   lw t2, 0(a2)  just past the pair: refill (8 + 24)
    // 24 + 8 + 24 = 56 cycles.
    const VA: u32 = 0x0200_0000;
    for (mask, size) in SIZES {
        let mut a = asm();
        tlb_map(
            &mut a,
            3,
            VA,
            entry_lo(0, V | D | C3),
            entry_lo(u64::from(size), V | C3),
            mask,
        );
        a.li(Reg::A0, VA + size / 2);
        a.li(Reg::A1, VA + size + size / 2);
        a.li(Reg::A2, VA + 2 * size);
        a.mem(Op::Lw, Reg::T0, 0, Reg::A0);
        a.mem(Op::Lw, Reg::T1, 0, Reg::A1);
        a.mem(Op::Lw, Reg::T2, 0, Reg::A2);
        halt(&mut a, Reg::ZERO);
        let mut m = machine(&a, &[]);
        let even_pa = u64::from(size / 2);
        let odd_pa = u64::from(size + size / 2);
        assert!(m.bus.write_bytes(
            even_pa,
            &0xEEEE_0000u32.wrapping_add(size >> 12).to_be_bytes()
        ));
        assert!(m.bus.write_bytes(
            odd_pa,
            &0x0DD0_0000u32.wrapping_add(size >> 12).to_be_bytes()
        ));
        run_to_halt(&mut m);
        assert_eq!(
            gpr(&m, Reg::T0),
            sext(0xEEEE_0000 + (size >> 12)),
            "even, size {size:#x}"
        );
        assert_eq!(
            gpr(&m, Reg::T1),
            u64::from(0x0DD0_0000 + (size >> 12)),
            "odd, size {size:#x}"
        );
        assert_eq!(gpr(&m, Reg::V1), AT_REFILL, "past the pair, size {size:#x}");
        assert_eq!(m.cpus[0].cp0().bad_vaddr, u64::from(VA + 2 * size));
        let e = m.cpus[0].tlb().entries[3];
        assert_eq!(e.page_size(), size);
        assert_eq!(e.page_mask, mask);
        assert_eq!(cycles(&m), 16 + 6 + 2 + EXC + HANDLER, "size {size:#x}");
    }
}

#[test]
fn global_entries_ignore_the_asid_and_need_both_g_bits() {
    // tlb_map with ASID 5, then EntryHi ASID = 0x77 (li + mtc0), then lw.
    // Global (G in both EntryLo): the load hits: 16 + 3 + 2 + 1 + 23 = 45.
    // G in EntryLo0 only: not global, refill: 16 + 3 + 2 + 8 + 24 = 53.
    const VA: u32 = 0x0030_0000;
    for (g0, g1, hits) in [(G, G, true), (G, 0, false), (0, 0, false)] {
        let mut a = asm();
        tlb_map(
            &mut a,
            4,
            VA | 5,
            entry_lo(0x8000, V | g0),
            entry_lo(0x9000, V | g1),
            0,
        );
        a.li(Reg::K0, 0x0000_0077);
        mtc0(&mut a, Reg::K0, r::ENTRY_HI);
        a.li(Reg::A0, VA + 0x10);
        a.mem(Op::Lw, Reg::T0, 0, Reg::A0);
        halt(&mut a, Reg::ZERO);
        let mut m = machine(&a, &[]);
        assert!(m.bus.write_bytes(0x8010, &[0, 0, 0x12, 0x34]));
        run_to_halt(&mut m);
        if hits {
            assert_eq!(gpr(&m, Reg::T0), 0x1234);
            assert_eq!(gpr(&m, Reg::V1), 0);
            assert_eq!(cycles(&m), 16 + 3 + 2 + 1 + HALT);
        } else {
            assert_eq!(gpr(&m, Reg::T0), 0);
            assert_eq!(gpr(&m, Reg::V1), AT_REFILL, "G0 {g0} G1 {g1}");
            assert_eq!(cycles(&m), 16 + 3 + 2 + EXC + HANDLER);
        }
        assert_eq!(m.cpus[0].tlb().entries[4].global, hits);
    }
}

#[test]
fn tlbp_finds_the_entry_or_sets_index_p() {
    // Entry 9: 16 KB pages at 0x0040_0000, ASID 3.
    //   tlb_map (16)
    //   li k0, 0x0040_6000|3; mtc0 EntryHi; tlbp; mfc0 s0, Index   (5) hit via the mask
    //   li k0, 0x0040_8000|3; mtc0 EntryHi; tlbp; mfc0 s1, Index   (5) next pair: miss
    //   li k0, 0x0040_0000|4; mtc0 EntryHi; tlbp; mfc0 s2, Index   (5) other ASID: miss
    // 31 + 23 = 54.
    let mut a = asm();
    tlb_map(
        &mut a,
        9,
        0x0040_0000 | 3,
        entry_lo(0x10000, V),
        entry_lo(0x14000, V),
        0x6000,
    );
    for (hi, dst) in [
        (0x0040_6003u32, Reg::S0),
        (0x0040_8003, Reg::S1),
        (0x0040_0004, Reg::S2),
    ] {
        a.li(Reg::K0, hi);
        mtc0(&mut a, Reg::K0, r::ENTRY_HI);
        cop0(&mut a, Op::Tlbp);
        mfc0(&mut a, dst, r::INDEX);
    }
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(gpr(&m, Reg::S0), 9);
    assert_eq!(
        gpr(&m, Reg::S1) & 0xFFFF_FFFF_8000_0000,
        0xFFFF_FFFF_8000_0000,
        "P set, sign-extended"
    );
    assert_eq!(gpr(&m, Reg::S2) >> 31 & 1, 1);
    assert_eq!(cycles(&m), 16 + 15 + HALT);
}

#[test]
fn tlbr_reads_back_with_g_in_both_entrylo_and_overwrites_the_asid() {
    // Write entry 12 (global, ASID 0x33, 64 KB), scribble over the CP0
    // registers, then Index = 12 and TLBR.
    //   tlb_map (16); 4 × mtc0 zero (4); li+mtc0 EntryHi 0x11 (3);
    //   li+mtc0 Index 12 (3); tlbr (1); 4 × mfc0 (4) = 31 + 23 = 54.
    let lo0 = entry_lo(0x20_0000, V | D | G | C3);
    let lo1 = entry_lo(0x21_0000, V | G | (2 << 3));
    let mut a = asm();
    tlb_map(&mut a, 12, 0x0100_0000 | 0x33, lo0, lo1, 0x1_E000);
    for reg in [r::PAGE_MASK, r::ENTRY_LO0, r::ENTRY_LO1, r::CONTEXT] {
        mtc0(&mut a, Reg::ZERO, reg);
    }
    a.li(Reg::K0, 0x11);
    mtc0(&mut a, Reg::K0, r::ENTRY_HI);
    a.li(Reg::K0, 12);
    mtc0(&mut a, Reg::K0, r::INDEX);
    cop0(&mut a, Op::Tlbr);
    mfc0(&mut a, Reg::S0, r::PAGE_MASK);
    mfc0(&mut a, Reg::S1, r::ENTRY_HI);
    mfc0(&mut a, Reg::S2, r::ENTRY_LO0);
    mfc0(&mut a, Reg::S3, r::ENTRY_LO1);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(gpr(&m, Reg::S0), 0x1_E000);
    assert_eq!(gpr(&m, Reg::S1), 0x0100_0033);
    assert_eq!(gpr(&m, Reg::S2), u64::from(lo0));
    assert_eq!(gpr(&m, Reg::S3), u64::from(lo1));
    assert_eq!(
        m.cpus[0].cp0().asid(),
        0x33,
        "TLBR changed the current ASID"
    );
    assert_eq!(cycles(&m), 31 + HALT);

    // Written with G in EntryLo0 only: the entry is not global, and TLBR
    // returns G = 0 in both halves.
    let mut a = asm();
    tlb_map(&mut a, 12, 0x0100_0000 | 0x33, lo0, lo1 & !G, 0);
    cop0(&mut a, Op::Tlbr);
    mfc0(&mut a, Reg::S2, r::ENTRY_LO0);
    mfc0(&mut a, Reg::S3, r::ENTRY_LO1);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(gpr(&m, Reg::S2), u64::from(lo0 & !G));
    assert_eq!(gpr(&m, Reg::S3), u64::from(lo1 & !G));
    assert_eq!(cycles(&m), 16 + 3 + HALT);
}

#[test]
fn tlbwr_writes_at_random_within_wired_and_47() {
    // Wired = 40, then 20 rounds of { EntryHi = a0; t0 = Random; store t0;
    // tlbwr; advance a1 and a0 by one page pair group }. Every Random read
    // and every written index lies in [40, 47].
    let mut a = asm();
    a.li(Reg::K0, 40);
    mtc0(&mut a, Reg::K0, r::WIRED);
    a.li(Reg::K0, entry_lo(0x30_0000, V));
    mtc0(&mut a, Reg::K0, r::ENTRY_LO0);
    a.li(Reg::A0, 0x0800_0000);
    // Round: mtc0 a0, EntryHi; mfc0 t0, Random; sb t0, 0(a1); tlbwr;
    //        addiu a1, a1, 1; lui t1, 0x10; addu a0, a0, t1   (7 instructions)
    for _ in 0..20 {
        mtc0(&mut a, Reg::A0, r::ENTRY_HI);
        mfc0(&mut a, Reg::T0, r::RANDOM);
        a.mem(Op::Sb, Reg::T0, 0, Reg::A1);
        cop0(&mut a, Op::Tlbwr);
        a.imm(Op::Addiu, Reg::A1, Reg::A1, 1);
        a.imm(Op::Lui, Reg::T1, Reg::ZERO, 0x10);
        a.r3(Op::Addu, Reg::A0, Reg::A0, Reg::T1);
    }
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[(Reg::A1, sext(0x8000_3000))]);
    let randoms = ram(&m, 0x3000, 20);
    for (i, &rnd) in randoms.iter().enumerate() {
        assert!((40..=47).contains(&rnd), "Random read {i} = {rnd}");
    }
    // Each written VPN2 sits at an index >= Wired.
    for (i, e) in m.cpus[0].tlb().entries.iter().enumerate() {
        if e.vpn2 >= 0x0800_0000 && e.vpn2 < 0x0800_0000 + 20 * 0x10_0000 {
            assert!(i >= 40, "TLBWR wrote a wired entry {i}");
        }
    }
    // 3 + 2 + 1 + 2 + 20 × 7 instructions; the MFC0 result is stored by the
    // very next instruction, which is not a load-use (MFC0 is not a load).
    assert_eq!(cycles(&m), 8 + 140 + HALT);
    // Random decrements once per instruction and wraps from 40 to 47: reads
    // 7 instructions apart differ by -7 modulo the span of 8.
    for w in randoms.windows(2) {
        assert_eq!(
            (i32::from(w[0]) - 40 - 7).rem_euclid(8),
            i32::from(w[1]) - 40
        );
    }
}

#[test]
fn random_starts_at_47_and_a_wired_write_resets_it() {
    // 0: mfc0 s0, Random      first instruction: 47
    // 1: mfc0 s1, Random      46
    // 2-3: li t0, 10; 4: mtc0 t0, Wired -> Random back to 47, and the MTC0
    //      itself counts as one instruction
    // 5: mfc0 s2, Random      46
    // 6: mfc0 s3, Random      45
    // 7 + 23 = 30 cycles.
    let mut a = asm();
    mfc0(&mut a, Reg::S0, r::RANDOM);
    mfc0(&mut a, Reg::S1, r::RANDOM);
    a.li(Reg::T0, 10);
    mtc0(&mut a, Reg::T0, r::WIRED);
    mfc0(&mut a, Reg::S2, r::RANDOM);
    mfc0(&mut a, Reg::S3, r::RANDOM);
    halt(&mut a, Reg::ZERO);
    let m = run(&a, &[]);
    assert_eq!(
        [
            gpr(&m, Reg::S0),
            gpr(&m, Reg::S1),
            gpr(&m, Reg::S2),
            gpr(&m, Reg::S3)
        ],
        [47, 46, 46, 45]
    );
    assert_eq!(m.cpus[0].cp0().wired, 10);
    assert_eq!(cycles(&m), 7 + HALT);
}
