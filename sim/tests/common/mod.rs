//! Shared helpers for the CPU integration tests: CP0 moves, vector handlers
//! that record which vector was taken and halt, TLB set-up and mode entry.
//!
//! Cycle costs used throughout (sim/src/timing.rs): every instruction 1,
//! taken branch/jump +2, annulled slot +1, load-use +2, MULT 10 / DIV 69 until
//! HI/LO are ready, exception entry 8, ERET 1 + 3, MMIO access +20.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic
)]

pub use sim::cpu::cp0::{cause, reg, status};
pub use sim::isa::asm::{Asm, Operands};
pub use sim::isa::{Op, Reg};
pub use sim::testkit::{self, asm, halt, place, run_to_halt, ORIGIN};
pub use sim::{ExcCode, Machine};

/// `li k1, 0xB000_0010; sw rX, 0(k1)`: 2 + (1 + 20 MMIO) cycles. The NOP
/// after the store never runs (the machine stops on the halt write).
pub const HALT: u64 = 23;

/// Marker the vector handlers leave in v1.
pub const AT_REFILL: u64 = 1;
pub const AT_XTLB: u64 = 2;
pub const AT_GENERAL: u64 = 3;
/// A handler is `ori v1, zero, mark` then the halt sequence.
pub const HANDLER: u64 = 1 + HALT;
/// Exception entry cost.
pub const EXC: u64 = 8;

pub fn mtc0(a: &mut Asm, rt: Reg, cp0: u32) {
    a.emit(
        Op::Mtc0,
        Operands {
            rt: rt.number(),
            rd: cp0,
            ..Default::default()
        },
    );
}

pub fn mfc0(a: &mut Asm, rt: Reg, cp0: u32) {
    a.emit(
        Op::Mfc0,
        Operands {
            rt: rt.number(),
            rd: cp0,
            ..Default::default()
        },
    );
}

/// A COP0 operation without operands (TLBR, TLBWI, TLBWR, TLBP, ERET).
pub fn cop0(a: &mut Asm, op: Op) {
    a.emit(op, Operands::default());
}

/// Installs the refill (0x8000_0000), XTLB (0x8000_0080) and general
/// (0x8000_0180) handlers: each sets v1 to its marker and halts.
pub fn install_vectors(m: &mut Machine) {
    for (base, mark) in [
        (0x8000_0000u32, AT_REFILL),
        (0x8000_0080, AT_XTLB),
        (0x8000_0180, AT_GENERAL),
    ] {
        let mut h = Asm::new(base);
        h.imm(Op::Ori, Reg::V1, Reg::ZERO, mark as i64);
        halt(&mut h, Reg::ZERO);
        place(m, &h);
    }
}

/// A machine running `a` with the vector handlers installed and registers preset.
pub fn machine(a: &Asm, regs: &[(Reg, u64)]) -> Machine {
    let mut m = testkit::machine(a);
    install_vectors(&mut m);
    for &(r, v) in regs {
        m.cpus[0].regs.set(r, v);
    }
    m
}

/// Builds, runs to the halt, returns the machine.
pub fn run(a: &Asm, regs: &[(Reg, u64)]) -> Machine {
    let mut m = machine(a, regs);
    run_to_halt(&mut m);
    m
}

pub fn sext(v: u32) -> u64 {
    v as i32 as i64 as u64
}

/// EntryLo for the page at physical `pa` with flag bits (G=1, V=2, D=4, C<<3).
pub fn entry_lo(pa: u64, flags: u32) -> u32 {
    (((pa >> 12) as u32) << 6) | flags
}
pub const G: u32 = 1;
pub const V: u32 = 2;
pub const D: u32 = 4;
/// Cacheable noncoherent.
pub const C3: u32 = 3 << 3;

/// Writes TLB entry `index` with TLBWI: 4 × (li + mtc0) + li + mtc0 + tlbwi =
/// [`TLB_MAP`] instructions, one cycle each. Clobbers k0.
pub fn tlb_map(a: &mut Asm, index: u32, entry_hi: u32, lo0: u32, lo1: u32, page_mask: u32) {
    for (v, r) in [
        (page_mask, reg::PAGE_MASK),
        (entry_hi, reg::ENTRY_HI),
        (lo0, reg::ENTRY_LO0),
        (lo1, reg::ENTRY_LO1),
        (index, reg::INDEX),
    ] {
        a.li(Reg::K0, v);
        mtc0(a, Reg::K0, r);
    }
    cop0(a, Op::Tlbwi);
}
pub const TLB_MAP: u64 = 16;

/// Leaves kernel mode for `pc` with `status` (EXL is added, ERET clears it):
/// li (2), mtc0 EPC, li (2), mtc0 Status, eret (1 + 3) = [`ENTER`] = 10 cycles.
/// Clobbers k0.
pub fn enter(a: &mut Asm, pc: u32, status: u32) {
    a.li(Reg::K0, pc);
    mtc0(a, Reg::K0, reg::EPC);
    a.li(Reg::K0, status | status::EXL);
    mtc0(a, Reg::K0, reg::STATUS);
    cop0(a, Op::Eret);
}
pub const ENTER: u64 = 10;

/// Status KSU values.
pub const KSU_SUPERVISOR: u32 = 1 << 3;
pub const KSU_USER: u32 = 2 << 3;

/// Cause.ExcCode of CPU 0.
pub fn exc_code(m: &Machine) -> u32 {
    (m.cpus[0].cp0().cause & cause::EXC_MASK) >> cause::EXC_SHIFT
}

pub fn gpr(m: &Machine, r: Reg) -> u64 {
    m.cpus[0].regs.get(r)
}

pub fn cycles(m: &Machine) -> u64 {
    m.cpus[0].cycles()
}

/// Reads `len` RAM bytes at physical `pa`.
pub fn ram(m: &Machine, pa: u64, len: usize) -> Vec<u8> {
    m.bus.read_bytes(pa, len).unwrap()
}

/// Address of instruction number `n` of a program at [`ORIGIN`], sign-extended.
pub fn pc_of(n: u64) -> u64 {
    sext(ORIGIN) + 4 * n
}

/// The program `a` is still in RAM as assembled: nothing stored over it.
pub fn assert_code_intact(m: &Machine, a: &Asm) {
    let bytes = a.bytes().unwrap();
    let pa = u64::from(a.origin() & 0x1FFF_FFFF);
    assert_eq!(ram(m, pa, bytes.len()), bytes, "program overwritten");
}

/// User (or supervisor) code lives at VA 0x0040_0000, identity-mapped to
/// PA 0x0040_0000 (a 4 KB even/odd pair, V and D set, ASID 0).
pub const USER_PC: u32 = 0x0040_0000;

/// Maps the user pair with TLB entry 0, then enters `ksu` mode (plus `extra`
/// Status bits) at [`USER_PC`]: [`TLB_MAP`] + [`ENTER`] = 26 cycles.
pub fn to_user(a: &mut Asm, ksu: u32, extra: u32) {
    tlb_map(
        a,
        0,
        USER_PC,
        entry_lo(0x40_0000, V | D | C3),
        entry_lo(0x40_1000, V | D | C3),
        0,
    );
    enter(a, USER_PC, ksu | extra);
}
pub const TO_USER: u64 = TLB_MAP + ENTER;
