//! The decoded form of an instruction: small, `Copy`, cached per physical page.

use super::opcodes::{Format, Op, OpInfo};

/// A general-purpose register number, always in 0..32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u8);

impl Reg {
    pub const ZERO: Reg = Reg(0);
    pub const AT: Reg = Reg(1);
    pub const V0: Reg = Reg(2);
    pub const V1: Reg = Reg(3);
    pub const A0: Reg = Reg(4);
    pub const A1: Reg = Reg(5);
    pub const A2: Reg = Reg(6);
    pub const A3: Reg = Reg(7);
    pub const T0: Reg = Reg(8);
    pub const T1: Reg = Reg(9);
    pub const T2: Reg = Reg(10);
    pub const T3: Reg = Reg(11);
    pub const T4: Reg = Reg(12);
    pub const T5: Reg = Reg(13);
    pub const T6: Reg = Reg(14);
    pub const T7: Reg = Reg(15);
    pub const S0: Reg = Reg(16);
    pub const S1: Reg = Reg(17);
    pub const S2: Reg = Reg(18);
    pub const S3: Reg = Reg(19);
    pub const S4: Reg = Reg(20);
    pub const S5: Reg = Reg(21);
    pub const S6: Reg = Reg(22);
    pub const S7: Reg = Reg(23);
    pub const T8: Reg = Reg(24);
    pub const T9: Reg = Reg(25);
    pub const K0: Reg = Reg(26);
    pub const K1: Reg = Reg(27);
    pub const GP: Reg = Reg(28);
    pub const SP: Reg = Reg(29);
    pub const FP: Reg = Reg(30);
    pub const RA: Reg = Reg(31);

    /// The register numbered `n & 31`.
    pub const fn new(n: u32) -> Reg {
        // Masked to five bits, so the narrowing is exact.
        Reg((n & 31) as u8)
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }

    pub const fn number(self) -> u32 {
        self.0 as u32
    }

    /// The o32 ABI name, as GNU objdump prints it.
    pub fn abi_name(self) -> &'static str {
        const NAMES: [&str; 32] = [
            "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5",
            "t6", "t7", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1",
            "gp", "sp", "s8", "ra",
        ];
        NAMES[self.index() & 31]
    }
}

/// One decoded instruction, 8 bytes (tier 1 and the monitor's engine load
/// one per instruction, and every decoded page holds 1024). Field meaning
/// depends on the format of `op`: `imm` holds the sign- or zero-extended
/// 16-bit immediate, the shift amount, the 26-bit jump index, or the
/// SYSCALL/BREAK/trap code. The original word is not kept: whoever needs it
/// (traces, the disassembler) reads it from memory, which the decoded copy
/// follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    pub rs: Reg,
    pub rt: Reg,
    pub rd: Reg,
    pub imm: u32,
}

impl Insn {
    /// The instruction that the zero word decodes to (`sll zero, zero, 0`).
    pub const NOP: Insn = Insn {
        op: Op::Sll,
        rs: Reg::ZERO,
        rt: Reg::ZERO,
        rd: Reg::ZERO,
        imm: 0,
    };

    pub fn info(&self) -> &'static OpInfo {
        self.op.info()
    }

    /// The shift amount of a constant shift (kept in `imm`).
    #[inline(always)]
    pub fn sa(&self) -> u32 {
        self.imm
    }

    /// The signed 16-bit immediate, sign-extended to 64 bits.
    #[inline(always)]
    pub(crate) fn simm(&self) -> u64 {
        self.imm as i32 as i64 as u64
    }

    /// The byte offset of a PC-relative branch, relative to its delay slot
    /// (branches keep the offset sign-extended in `imm`).
    #[inline(always)]
    pub(crate) fn branch_offset(&self) -> u64 {
        (i64::from(self.imm as i32) << 2) as u64
    }

    /// Which of rs (bit 0) and rt (bit 1) the instruction reads.
    #[inline(always)]
    fn reads(&self) -> u8 {
        self.op.info().reads
    }

    /// The general registers this instruction reads, one bit per register
    /// number (for the load-use interlock). Bit 0 may be set; a load into
    /// r0 never interlocks, so nothing tests it.
    pub(crate) fn read_mask(&self) -> u32 {
        let reads = self.reads();
        (u32::from(reads & 1) << self.rs.number())
            | (u32::from((reads >> 1) & 1) << self.rt.number())
    }

    /// Whether the instruction reads general register number `r`.
    #[inline(always)]
    pub fn reads_reg(&self, r: u8) -> bool {
        let reads = self.reads();
        (reads & 1 != 0 && self.rs.number() == u32::from(r))
            || (reads & 2 != 0 && self.rt.number() == u32::from(r))
    }

    /// Builds the decoded form of `raw` for a known operation, extracting the
    /// fields its format uses.
    pub(crate) fn from_fields(op: Op, raw: u32) -> Insn {
        let rs = Reg::new(raw >> 21);
        let rt = Reg::new(raw >> 16);
        let rd = Reg::new(raw >> 11);
        let imm = match op.info().format {
            Format::RtRsSimm | Format::RsSimm | Format::Mem | Format::CopMem | Format::Cache => {
                raw as u16 as i16 as i32 as u32
            }
            Format::BranchRs | Format::BranchRsRt => raw as u16 as i16 as i32 as u32,
            Format::RtRsUimm | Format::RtUimm => raw & 0xFFFF,
            Format::Shift => (raw >> 6) & 31,
            Format::Jump => raw & 0x03FF_FFFF,
            Format::Code => (raw >> 6) & 0xF_FFFF,
            Format::Trap => (raw >> 6) & 0x3FF,
            _ => 0,
        };
        Insn {
            op,
            rs,
            rt,
            rd,
            imm,
        }
    }
}

// The size is the point of the layout: a field added here must say what it
// costs (tier 1 copies one per instruction).
const _: () = assert!(std::mem::size_of::<Insn>() == 8);
