//! Instruction text in the syntax of `mips-linux-gnu-objdump -d` (binutils
//! 2.40, default options, an `-march=r4000 -mabi=32` object): o32 register
//! names, R4000 CP0 register names, objdump's aliases (nop, move, li, b, bal,
//! beqz, negu, …), decimal signed and hexadecimal unsigned immediates, and
//! branch targets as absolute addresses.
//!
//! The text comes from three places, in this order:
//! 1. `objdump_rejects`: words whose unused fields are not zero. The
//!    decoder ignores those fields, objdump does not, and prints `.word`
//!    (or `c0` for COP0 functions).
//! 2. `Disasm::alias`: objdump's aliases, all in one `match`.
//! 3. The operand [`Format`] of the table row.
//!
//! Reserved words print as objdump prints them: `.word\t0x…`, except the few
//! encodings objdump still names for the R4000 (`jalx`, `bc0f`…, `cfc0`,
//! `ctc0`), see `Disasm::reserved`.
//!
//! Everything is written into a [`fmt::Formatter`], so a caller can print an
//! instruction without allocating: `write!(out, "{}", Disasm::new(word, pc))`.

use std::fmt;

use super::decode;
use super::insn::{Insn, Reg};
use super::opcodes::{Format, Op};

/// CP0 register names as objdump prints them for the R4000
/// (`mips_cp0_names_r4000` in binutils' `mips-dis.c`).
const CP0_NAMES: [&str; 32] = [
    "c0_index",
    "c0_random",
    "c0_entrylo0",
    "c0_entrylo1",
    "c0_context",
    "c0_pagemask",
    "c0_wired",
    "$7",
    "c0_badvaddr",
    "c0_count",
    "c0_entryhi",
    "c0_compare",
    "c0_sr",
    "c0_cause",
    "c0_epc",
    "c0_prid",
    "c0_config",
    "c0_lladdr",
    "c0_watchlo",
    "c0_watchhi",
    "c0_xcontext",
    "$21",
    "$22",
    "$23",
    "$24",
    "$25",
    "c0_ecc",
    "c0_cacheerr",
    "c0_taglo",
    "c0_taghi",
    "c0_errorepc",
    "$31",
];

/// Names a code address for branch and jump targets: returns the text objdump
/// puts between `<` and `>` (`main`, `main+0x40`), or `None` for no symbol.
pub(crate) type Symbolizer<'a> = &'a dyn Fn(u64) -> Option<String>;

/// An instruction at a known address, printable as objdump prints it.
///
/// With a symbolizer that names the target, branch and jump targets read
/// `80010040 <main+0x40>`; otherwise `0x80010040`, which is what objdump
/// prints when it has no symbol for the target (an object without symbols).
///
/// It takes the word, not a decoded [`Insn`]: objdump's text depends on
/// bits the decoded form does not keep (unused fields, the nop hints).
#[derive(Clone, Copy)]
pub struct Disasm<'a> {
    word: u32,
    /// `word` decoded, once.
    insn: Insn,
    pc: u64,
    symbolize: Option<Symbolizer<'a>>,
}

impl<'a> Disasm<'a> {
    pub fn new(word: u32, pc: u64) -> Disasm<'a> {
        Disasm {
            word,
            insn: decode(word),
            pc,
            symbolize: None,
        }
    }

    /// The same instruction, naming branch and jump targets with `symbolize`.
    pub(crate) fn with_symbols(self, symbolize: Symbolizer<'a>) -> Disasm<'a> {
        Disasm {
            symbolize: Some(symbolize),
            ..self
        }
    }
}

/// Disassembles `word` at `pc` without symbols.
pub fn disasm(word: u32, pc: u64) -> String {
    Disasm::new(word, pc).to_string()
}

/// Disassembles `word` at `pc`, naming branch targets with `symbolize`.
pub fn disasm_with(word: u32, pc: u64, symbolize: Symbolizer<'_>) -> String {
    Disasm::new(word, pc).with_symbols(symbolize).to_string()
}

/// The text objdump puts between `<` and `>` for `addr`, given the symbol
/// `name` at `base` (the nearest symbol at or below `addr`): `name` or
/// `name+0x1c`. A helper for building symbolizers.
pub fn symbol_offset(name: &str, base: u64, addr: u64) -> String {
    match addr.wrapping_sub(base) {
        0 => name.to_string(),
        off => format!("{name}+{off:#x}"),
    }
}

fn r(reg: Reg) -> &'static str {
    reg.abi_name()
}

/// Fields of the encoding that the format does not use, which objdump
/// requires to be zero (the masks of binutils' `mips-opc.c`). The decoder and
/// the R4000 ignore them; objdump prints such a word as data instead.
fn must_be_zero(op: Op, format: Format) -> u32 {
    const RS: u32 = 0x1F << 21;
    const RT: u32 = 0x1F << 16;
    const RD: u32 = 0x1F << 11;
    const SA: u32 = 0x1F << 6;
    match format {
        Format::RdRsRt | Format::ShiftV => SA,
        Format::Shift | Format::RtUimm => RS,
        Format::RsRt => RD | SA,
        Format::Rd => RS | RT | SA,
        Format::Rs => RT | RD | SA,
        Format::Jalr => RT | SA,
        // SYNC and the COP0 functions: everything but the opcode bits.
        Format::None => 0x03FF_FFC0 & !op.info().mask,
        Format::BranchRs if matches!(op, Op::Blez | Op::Bgtz | Op::Blezl | Op::Bgtzl) => RT,
        Format::Cop0Move => 0x7FF,
        _ => 0,
    }
}

/// Whether objdump refuses to name `word` (decoded: `insn`) with its table
/// row.
pub(crate) fn objdump_rejects(word: u32, insn: &Insn) -> bool {
    insn.op != Op::Reserved && word & must_be_zero(insn.op, insn.info().format) != 0
}

impl Disasm<'_> {
    /// `addr`, as objdump prints a branch or jump target.
    fn target(&self, f: &mut fmt::Formatter<'_>, addr: u64) -> fmt::Result {
        // objdump prints 32-bit addresses for an o32 object.
        let a = addr & 0xFFFF_FFFF;
        match self.symbolize.and_then(|s| s(a)) {
            Some(sym) => write!(f, "{a:x} <{sym}>"),
            None => write!(f, "{a:#x}"),
        }
    }

    /// The delay slot's address plus the sign-extended offset (§5.7), from
    /// the word: the reserved BC0 group has a branch offset too.
    fn branch_target(&self) -> u64 {
        let offset = i64::from(self.word as u16 as i16) << 2;
        self.pc.wrapping_add(4).wrapping_add(offset as u64)
    }

    /// The delay slot's 256 MB region plus the 26-bit index (§5.7).
    fn jump_target(&self) -> u64 {
        let region = self.pc.wrapping_add(4) & !0x0FFF_FFFF;
        region | u64::from((self.word & 0x03FF_FFFF) << 2)
    }

    /// `name\t` then the branch target.
    fn branch(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        write!(f, "{name}\t")?;
        self.target(f, self.branch_target())
    }

    /// `name\trs,` then the branch target.
    fn branch_rs(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        write!(f, "{name}\t{},", r(self.insn.rs))?;
        self.target(f, self.branch_target())
    }

    /// objdump's aliases and special operand forms, all in one place.
    /// `None` when the instruction prints in its row's format.
    fn alias(&self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        let i = &self.insn;
        let (rs, rt, rd) = (i.rs, i.rt, i.rd);
        let zero = Reg::ZERO;
        Some(match i.op {
            // SLL zero,zero,0/1/3: the nop hints.
            Op::Sll if self.word == 0 => f.write_str("nop"),
            Op::Sll if self.word == 0x40 => f.write_str("ssnop"),
            Op::Sll if self.word == 0xC0 => f.write_str("ehb"),
            Op::Addu | Op::Or | Op::Daddu if rt == zero => {
                write!(f, "move\t{},{}", r(rd), r(rs))
            }
            Op::Subu | Op::Sub | Op::Dsubu | Op::Dsub if rs == zero => {
                let alias = match i.op {
                    Op::Subu => "negu",
                    Op::Sub => "neg",
                    Op::Dsubu => "dnegu",
                    _ => "dneg",
                };
                write!(f, "{alias}\t{},{}", r(rd), r(rt))
            }
            Op::Addiu if rs == zero => write!(f, "li\t{},{}", r(rt), i.imm as i32),
            Op::Ori if rs == zero => write!(f, "li\t{},{:#x}", r(rt), i.imm),
            Op::Beq if rs == zero && rt == zero => self.branch(f, "b"),
            Op::Bgez if rs == zero => self.branch(f, "b"),
            Op::Bgezal if rs == zero => self.branch(f, "bal"),
            Op::Beq if rt == zero => self.branch_rs(f, "beqz"),
            Op::Bne if rt == zero => self.branch_rs(f, "bnez"),
            Op::Beql if rt == zero => self.branch_rs(f, "beqzl"),
            Op::Bnel if rt == zero => self.branch_rs(f, "bnezl"),
            Op::Jalr if rd == Reg::RA => write!(f, "jalr\t{}", r(rs)),
            // GNU prints the divides with an explicit zero destination, so
            // that they do not read as the divide macros.
            Op::Div | Op::Divu | Op::Ddiv | Op::Ddivu => {
                write!(f, "{}\tzero,{},{}", i.op.name(), r(rs), r(rt))
            }
            Op::Syscall => match i.imm {
                0 => f.write_str("syscall"),
                code => write!(f, "syscall\t{code:#x}"),
            },
            // BREAK splits its 20-bit code into two 10-bit halves.
            Op::Break => match (i.imm >> 10, i.imm & 0x3FF) {
                (0, 0) => f.write_str("break"),
                (c1, 0) => write!(f, "break\t{c1:#x}"),
                (c1, c2) => write!(f, "break\t{c1:#x},{c2:#x}"),
            },
            // RFE is not an R4000 instruction, so objdump has no name for it.
            Op::Rfe | Op::Cop0Nop => self.cop0_function(f),
            Op::Reserved => self.reserved(f),
            _ => return None,
        })
    }

    /// A COP0 function objdump has no name for: `c0\t<bits 24:0>`.
    fn cop0_function(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c0\t{:#x}", self.word & 0x01FF_FFFF)
    }

    /// Words the table reserves (Reserved Instruction on the R4000) but
    /// objdump still names for `-march=r4000`; anything else is data.
    fn reserved(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.insn;
        match self.word {
            // JALX (MIPS16 interlinking), primary opcode 0x1D.
            w if w >> 26 == 0x1D => {
                f.write_str("jalx\t")?;
                self.target(f, self.jump_target())
            }
            // The BC0 group (§5.5): decoded as RI, named by objdump.
            w if w & 0xFFFC_0000 == 0x4100_0000 => {
                let name = ["bc0f", "bc0t", "bc0fl", "bc0tl"][((w >> 16) & 3) as usize];
                self.branch(f, name)
            }
            // CFC0/CTC0: RI on the R4000 (§5.5), plain register numbers.
            w if w & 0xFFE0_07FF == 0x4040_0000 => {
                write!(f, "cfc0\t{},${}", r(i.rt), i.rd.number())
            }
            w if w & 0xFFE0_07FF == 0x40C0_0000 => {
                write!(f, "ctc0\t{},${}", r(i.rt), i.rd.number())
            }
            w => write!(f, ".word\t{w:#x}"),
        }
    }
}

impl fmt::Display for Disasm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.insn;
        let format = i.info().format;
        if objdump_rejects(self.word, i) {
            return if i.op.info().mask == 0xFE00_003F {
                self.cop0_function(f)
            } else {
                write!(f, ".word\t{:#x}", self.word)
            };
        }
        if let Some(done) = self.alias(f) {
            return done;
        }
        let name = i.op.name();
        let (rs, rt, rd) = (i.rs, i.rt, i.rd);
        let simm = i.imm as i32;
        match format {
            Format::RdRsRt => write!(f, "{name}\t{},{},{}", r(rd), r(rs), r(rt)),
            Format::Shift => write!(f, "{name}\t{},{},{:#x}", r(rd), r(rt), i.sa()),
            Format::ShiftV => write!(f, "{name}\t{},{},{}", r(rd), r(rt), r(rs)),
            Format::RsRt => write!(f, "{name}\t{},{}", r(rs), r(rt)),
            Format::Trap => match i.imm {
                0 => write!(f, "{name}\t{},{}", r(rs), r(rt)),
                code => write!(f, "{name}\t{},{},{code:#x}", r(rs), r(rt)),
            },
            Format::Rd => write!(f, "{name}\t{}", r(rd)),
            Format::Rs => write!(f, "{name}\t{}", r(rs)),
            Format::Jalr => write!(f, "{name}\t{},{}", r(rd), r(rs)),
            Format::Code | Format::None => f.write_str(name),
            Format::RtRsSimm => write!(f, "{name}\t{},{},{simm}", r(rt), r(rs)),
            Format::RtRsUimm => write!(f, "{name}\t{},{},{:#x}", r(rt), r(rs), i.imm),
            Format::RtUimm => write!(f, "{name}\t{},{:#x}", r(rt), i.imm),
            Format::RsSimm => write!(f, "{name}\t{},{simm}", r(rs)),
            Format::BranchRsRt => {
                write!(f, "{name}\t{},{},", r(rs), r(rt))?;
                self.target(f, self.branch_target())
            }
            Format::BranchRs => self.branch_rs(f, name),
            Format::Jump => {
                write!(f, "{name}\t")?;
                self.target(f, self.jump_target())
            }
            Format::Mem => write!(f, "{name}\t{},{simm}({})", r(rt), r(rs)),
            // FPU registers are `$fN`, CP2 registers plain `$N`.
            Format::CopMem => {
                let reg = if matches!(i.op, Op::Lwc1 | Op::Ldc1 | Op::Swc1 | Op::Sdc1) {
                    "$f"
                } else {
                    "$"
                };
                write!(f, "{name}\t{reg}{},{simm}({})", rt.number(), r(rs))
            }
            Format::Cache => write!(f, "{name}\t{:#x},{simm}({})", rt.number(), r(rs)),
            Format::Cop0Move => {
                let reg = CP0_NAMES.get(rd.index()).copied().unwrap_or("$?");
                write!(f, "{name}\t{},{reg}", r(rt))
            }
            // FPU and CP2/CP3 operations: this machine has none, and their
            // own syntax is not reproduced.
            Format::Cop => write!(f, "{name}\t{:#x}", self.word & 0x03FF_FFFF),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::isa::asm::Asm;
    use crate::isa::{decode, Reg as R, OPCODES};

    /// (word, pc, objdump's text) rows, copied from `mips-linux-gnu-objdump -d`
    /// (binutils 2.40) of an `-march=r4000` object with no symbols.
    const ROWS: &[(u32, u64, &str)] = &[
        (0x0085_1021, 0, "addu\tv0,a0,a1"),
        (0x0080_1021, 0, "move\tv0,a0"),
        (0x0080_1025, 0, "move\tv0,a0"),
        (0x0004_1021, 0, "addu\tv0,zero,a0"),
        (0x0004_102d, 0, "daddu\tv0,zero,a0"),
        (0x0005_1023, 0, "negu\tv0,a1"),
        (0x0005_1022, 0, "neg\tv0,a1"),
        (0x0003_102f, 0, "dnegu\tv0,v1"),
        (0x0080_1027, 0, "nor\tv0,a0,zero"),
        (0x2402_0005, 0, "li\tv0,5"),
        (0x2402_fffb, 0, "li\tv0,-5"),
        (0x3402_8000, 0, "li\tv0,0x8000"),
        (0x3c02_8000, 0, "lui\tv0,0x8000"),
        (0x27bd_ffe0, 0, "addiu\tsp,sp,-32"),
        (0x3042_00ff, 0, "andi\tv0,v0,0xff"),
        (0x0002_1080, 0, "sll\tv0,v0,0x2"),
        (0x0000_0000, 0, "nop"),
        (0x0000_0040, 0, "ssnop"),
        (0x0000_00c0, 0, "ehb"),
        (0x0000_0140, 0, "sll\tzero,zero,0x5"),
        (0x1040_ffef, 0x40, "beqz\tv0,0x0"),
        (0x1000_ffed, 0x48, "b\t0x0"),
        (0x0411_ffeb, 0x50, "bal\t0x0"),
        (0x5040_fff7, 0x38, "beqzl\tv0,0x18"),
        (0x03e0_0008, 0, "jr\tra"),
        (0x0320_f809, 0, "jalr\tt9"),
        (0x0320_1009, 0, "jalr\tv0,t9"),
        (0x8fa2_0010, 0, "lw\tv0,16(sp)"),
        (0xafa2_fff8, 0, "sw\tv0,-8(sp)"),
        (0x0000_004c, 0, "syscall\t0x1"),
        (0x0007_000d, 0, "break\t0x7"),
        (0x0007_004d, 0, "break\t0x7,0x1"),
        (0x0080_01f4, 0, "teq\ta0,zero,0x7"),
        (0x4002_6000, 0, "mfc0\tv0,c0_sr"),
        (0x4082_6000, 0, "mtc0\tv0,c0_sr"),
        (0x40a2_6000, 0, "dmtc0\tv0,c0_sr"),
        (0x4002_3800, 0, "mfc0\tv0,$7"),
        (0x4200_0018, 0, "eret"),
        (0x4200_0020, 0, "wait"),
        (0x4200_0001, 0, "tlbr"),
        (0xbc94_0000, 0, "cache\t0x14,0(a0)"),
        (0xbc1f_0000, 0, "cache\t0x1f,0(zero)"),
        (0x0043_001a, 0, "div\tzero,v0,v1"),
        (0xc462_0004, 0, "lwc1\t$f2,4(v1)"),
        (0xc8a5_0004, 0, "lwc2\t$5,4(a1)"),
        (0x0c00_0000, 0x58, "jal\t0x0"),
        // Unused fields that are not zero: objdump prints data, or `c0`.
        (0x00a0_0000, 0, ".word\t0xa00000"),
        (0x00a4_0008, 0, ".word\t0xa40008"),
        (0x0000_07cf, 0, ".word\t0x7cf"),
        (0x4002_6001, 0, ".word\t0x40026001"),
        (0x1c1e_1012, 0, ".word\t0x1c1e1012"),
        (0x42e0_ec58, 0, "c0\t0xe0ec58"),
        (0x4200_0060, 0, "c0\t0x60"),
        (0x4200_003f, 0, "c0\t0x3f"),
        (0x4200_0010, 0, "c0\t0x10"),
        // Reserved here, named by objdump.
        (0x7c00_0000, 0, ".word\t0x7c000000"),
        (0x0000_0001, 0, ".word\t0x1"),
        (0x4104_0000, 0, ".word\t0x41040000"),
        (0x4120_0000, 0, ".word\t0x41200000"),
        (0x4100_0004, 0x1c, "bc0f\t0x30"),
        (0x4101_0000, 0x0c, "bc0t\t0x10"),
        (0x4102_0000, 0x10, "bc0fl\t0x14"),
        (0x4103_0000, 0x14, "bc0tl\t0x18"),
        (0x7480_b03c, 0x28, "jalx\t0x202c0f0"),
        (0x4040_0000, 0, "cfc0\tzero,$0"),
        (0x40c0_0000, 0, "ctc0\tzero,$0"),
    ];

    #[test]
    fn matches_objdump_rows() {
        for &(word, pc, text) in ROWS {
            assert_eq!(disasm(word, pc), text, "{word:#010x}");
        }
    }

    #[test]
    fn symbolized_targets() {
        let sym = |a: u64| (a >= 0x8001_0000).then(|| symbol_offset("main", 0x8001_0000, a));
        // jal main, from the same 256 MB region.
        assert_eq!(
            disasm_with(0x0c00_4000, 0x8001_0040, &sym),
            "jal\t80010000 <main>"
        );
        // bnez v0, back to main+0x10; kseg0 addresses print as 32 bits.
        assert_eq!(
            disasm_with(0x1440_fffb, 0xFFFF_FFFF_8001_0020, &sym),
            "bnez\tv0,80010010 <main+0x10>"
        );
        // No symbol: objdump's form for an object without symbols.
        assert_eq!(disasm_with(0x1000_ffff, 0x100, &sym), "b\t0x100");
    }

    #[test]
    fn prints_without_allocating_through_display() {
        use std::fmt::Write;
        let mut out = String::new();
        write!(out, "{}", Disasm::new(0x27bd_ffe0, 0)).unwrap();
        assert_eq!(out, "addiu\tsp,sp,-32");
    }

    #[test]
    fn every_word_of_every_row_prints() {
        // Total: every row with all-ones and all-zeros operand fields prints
        // something other than an empty string.
        for row in OPCODES {
            for word in [row.match_bits, row.match_bits | !row.mask] {
                assert!(!disasm(word, 0).is_empty(), "{}", row.name);
            }
        }
    }

    type Build = fn(&mut Asm);

    /// One round-trip row: the expected text and a helper call on `a`.
    macro_rules! rt {
        ($text:literal, $($call:tt)*) => {
            ((|a: &mut Asm| { a.$($call)*; }) as Build, $text)
        };
    }

    /// asm → decode → disasm: (helper call, objdump's text at 0x1000, where
    /// the label `t` is). Every row of the table appears at least once.
    const ROUND_TRIP: &[(Build, &str)] = &[
        rt!("add\tv0,a0,a1", add(R::V0, R::A0, R::A1)),
        rt!("addu\tv0,a0,a1", addu(R::V0, R::A0, R::A1)),
        rt!("move\tv0,a0", addu(R::V0, R::A0, R::ZERO)),
        rt!("move\ts8,sp", move_(R::FP, R::SP)),
        rt!("sub\tv0,a0,a1", sub(R::V0, R::A0, R::A1)),
        rt!("neg\tv0,a1", sub(R::V0, R::ZERO, R::A1)),
        rt!("subu\tt0,t1,t2", subu(R::T0, R::T1, R::T2)),
        rt!("negu\tt0,t1", negu(R::T0, R::T1)),
        rt!("and\tt3,t4,t5", and(R::T3, R::T4, R::T5)),
        rt!("or\tt6,t7,s0", or(R::T6, R::T7, R::S0)),
        rt!("xor\ts1,s2,s3", xor(R::S1, R::S2, R::S3)),
        rt!("nor\ts4,s5,s6", nor(R::S4, R::S5, R::S6)),
        rt!("nor\ts4,s5,zero", not(R::S4, R::S5)),
        rt!("slt\ts7,t8,t9", slt(R::S7, R::T8, R::T9)),
        rt!("sltu\tk0,k1,gp", sltu(R::K0, R::K1, R::GP)),
        rt!("dadd\tv0,v1,at", dadd(R::V0, R::V1, R::AT)),
        rt!("daddu\tv0,v1,at", daddu(R::V0, R::V1, R::AT)),
        rt!("dsub\tv0,v1,at", dsub(R::V0, R::V1, R::AT)),
        rt!("dneg\tv0,at", dsub(R::V0, R::ZERO, R::AT)),
        rt!("dsubu\tv0,v1,at", dsubu(R::V0, R::V1, R::AT)),
        rt!("sll\tv0,v0,0x2", sll(R::V0, R::V0, 2)),
        rt!("nop", sll(R::ZERO, R::ZERO, 0)),
        rt!("srl\tv0,a0,0x1f", srl(R::V0, R::A0, 31)),
        rt!("sra\tv0,a0,0x1", sra(R::V0, R::A0, 1)),
        rt!("dsll\tv0,a0,0x3", dsll(R::V0, R::A0, 3)),
        rt!("dsrl\tv0,a0,0x3", dsrl(R::V0, R::A0, 3)),
        rt!("dsra\tv0,a0,0x3", dsra(R::V0, R::A0, 3)),
        rt!("dsll32\tv0,a0,0x0", dsll32(R::V0, R::A0, 0)),
        rt!("dsrl32\tv0,a0,0x4", dsrl32(R::V0, R::A0, 4)),
        rt!("dsra32\tv0,a0,0x1f", dsra32(R::V0, R::A0, 31)),
        rt!("sllv\tv0,a0,a1", sllv(R::V0, R::A0, R::A1)),
        rt!("srlv\tv0,a0,a1", srlv(R::V0, R::A0, R::A1)),
        rt!("srav\tv0,a0,a1", srav(R::V0, R::A0, R::A1)),
        rt!("dsllv\tv0,a0,a1", dsllv(R::V0, R::A0, R::A1)),
        rt!("dsrlv\tv0,a0,a1", dsrlv(R::V0, R::A0, R::A1)),
        rt!("dsrav\tv0,a0,a1", dsrav(R::V0, R::A0, R::A1)),
        rt!("mult\ta0,a1", mult(R::A0, R::A1)),
        rt!("multu\ta0,a1", multu(R::A0, R::A1)),
        rt!("div\tzero,a0,a1", div(R::A0, R::A1)),
        rt!("divu\tzero,a0,a1", divu(R::A0, R::A1)),
        rt!("dmult\ta0,a1", dmult(R::A0, R::A1)),
        rt!("dmultu\ta0,a1", dmultu(R::A0, R::A1)),
        rt!("ddiv\tzero,a0,a1", ddiv(R::A0, R::A1)),
        rt!("ddivu\tzero,a0,a1", ddivu(R::A0, R::A1)),
        rt!("tge\ta0,a1", tge(R::A0, R::A1, 0)),
        rt!("tgeu\ta0,a1,0x3ff", tgeu(R::A0, R::A1, 0x3FF)),
        rt!("tlt\ta0,a1,0x1", tlt(R::A0, R::A1, 1)),
        rt!("tltu\ta0,a1", tltu(R::A0, R::A1, 0)),
        rt!("teq\ta0,zero,0x7", teq(R::A0, R::ZERO, 7)),
        rt!("tne\ta0,a1", tne(R::A0, R::A1, 0)),
        rt!("mfhi\tv0", mfhi(R::V0)),
        rt!("mflo\tv1", mflo(R::V1)),
        rt!("mthi\ta0", mthi(R::A0)),
        rt!("mtlo\ta1", mtlo(R::A1)),
        rt!("jr\tra", rs(Op::Jr, R::RA)),
        rt!("jalr\tt9", jalr(R::RA, R::T9)),
        rt!("jalr\tv0,t9", jalr(R::V0, R::T9)),
        rt!("syscall", syscall()),
        rt!("syscall\t0x1", syscall_code(1)),
        rt!("break", break_()),
        rt!("break\t0x7", break_code(7 << 10)),
        rt!("break\t0x7,0x1", break_code((7 << 10) | 1)),
        rt!("sync", sync()),
        rt!("tlbr", tlbr()),
        rt!("tlbwi", tlbwi()),
        rt!("tlbwr", tlbwr()),
        rt!("tlbp", tlbp()),
        rt!("c0\t0x10", rfe()),
        rt!("eret", eret()),
        rt!("wait", wait()),
        rt!("c0\t0x3f", c0(0x3F)),
        rt!("cop1\t0x0", cop1(0)),
        rt!("cop2\t0x1f0000", cop2(0x1F_0000)),
        rt!("cop3\t0x1", cop3(1)),
        rt!("addi\tt0,t1,-1", addi(R::T0, R::T1, -1)),
        rt!("addiu\tsp,sp,-32", addiu(R::SP, R::SP, -32)),
        rt!("li\tv0,32767", addiu(R::V0, R::ZERO, 32767)),
        rt!("slti\tt0,t1,-32768", slti(R::T0, R::T1, -32768)),
        rt!("sltiu\tt0,t1,5", sltiu(R::T0, R::T1, 5)),
        rt!("daddi\tt0,t1,100", daddi(R::T0, R::T1, 100)),
        rt!("daddiu\tt0,t1,-100", daddiu(R::T0, R::T1, -100)),
        rt!("andi\tv0,v0,0xff", andi(R::V0, R::V0, 0xFF)),
        rt!("ori\tv0,v1,0xffff", ori(R::V0, R::V1, 0xFFFF)),
        rt!("li\tv0,0x8000", ori(R::V0, R::ZERO, 0x8000)),
        rt!("xori\tv0,v1,0x1", xori(R::V0, R::V1, 1)),
        rt!("lui\tat,0x8000", lui(R::AT, 0x8000)),
        rt!("tgei\ta0,-1", tgei(R::A0, -1)),
        rt!("tgeiu\ta0,1", tgeiu(R::A0, 1)),
        rt!("tlti\ta0,2", tlti(R::A0, 2)),
        rt!("tltiu\ta0,3", tltiu(R::A0, 3)),
        rt!("teqi\ta0,0", teqi(R::A0, 0)),
        rt!("tnei\ta0,-32768", tnei(R::A0, -32768)),
        rt!("beq\ta0,a1,0x1000", beq(R::A0, R::A1, "t")),
        rt!("beqz\ta0,0x1000", beqz(R::A0, "t")),
        rt!("b\t0x1000", b("t")),
        rt!("bne\ta0,a1,0x1000", bne(R::A0, R::A1, "t")),
        rt!("bnez\ta0,0x1000", bnez(R::A0, "t")),
        rt!("beql\ta0,a1,0x1000", beql(R::A0, R::A1, "t")),
        rt!("beqzl\ta0,0x1000", beqzl(R::A0, "t")),
        rt!("bnel\ta0,a1,0x1000", bnel(R::A0, R::A1, "t")),
        rt!("bnezl\ta0,0x1000", bnezl(R::A0, "t")),
        rt!("blez\ta0,0x1000", blez(R::A0, "t")),
        rt!("bgtz\ta0,0x1000", bgtz(R::A0, "t")),
        rt!("blezl\ta0,0x1000", blezl(R::A0, "t")),
        rt!("bgtzl\ta0,0x1000", bgtzl(R::A0, "t")),
        rt!("bltz\ta0,0x1000", bltz(R::A0, "t")),
        rt!("bgez\ta0,0x1000", bgez(R::A0, "t")),
        rt!("bltzl\ta0,0x1000", bltzl(R::A0, "t")),
        rt!("bgezl\ta0,0x1000", bgezl(R::A0, "t")),
        rt!("bltzal\ta0,0x1000", bltzal(R::A0, "t")),
        rt!("bgezal\ta0,0x1000", bgezal(R::A0, "t")),
        rt!("bal\t0x1000", bal("t")),
        rt!("bltzall\ta0,0x1000", bltzall(R::A0, "t")),
        rt!("bgezall\ta0,0x1000", bgezall(R::A0, "t")),
        rt!("j\t0x1000", j("t")),
        rt!("jal\t0x1000", jal("t")),
        rt!("lb\tv0,-1(a0)", lb(R::V0, -1, R::A0)),
        rt!("lh\tv0,2(a0)", lh(R::V0, 2, R::A0)),
        rt!("lwl\tv0,1(a0)", lwl(R::V0, 1, R::A0)),
        rt!("lw\tv0,16(sp)", lw(R::V0, 16, R::SP)),
        rt!("lbu\tv0,32767(a0)", lbu(R::V0, 32767, R::A0)),
        rt!("lhu\tv0,-32768(a0)", lhu(R::V0, -32768, R::A0)),
        rt!("lwr\tv0,4(a0)", lwr(R::V0, 4, R::A0)),
        rt!("lwu\tv0,8(a0)", lwu(R::V0, 8, R::A0)),
        rt!("ldl\tv0,0(a0)", ldl(R::V0, 0, R::A0)),
        rt!("ldr\tv0,7(a0)", ldr(R::V0, 7, R::A0)),
        rt!("ld\tv0,-8(sp)", ld(R::V0, -8, R::SP)),
        rt!("ll\tt0,0(a0)", ll(R::T0, 0, R::A0)),
        rt!("lld\tt0,0(a0)", lld(R::T0, 0, R::A0)),
        rt!("sb\tv0,-1(a0)", sb(R::V0, -1, R::A0)),
        rt!("sh\tv0,2(a0)", sh(R::V0, 2, R::A0)),
        rt!("swl\tv0,1(a0)", swl(R::V0, 1, R::A0)),
        rt!("sw\tv0,-8(sp)", sw(R::V0, -8, R::SP)),
        rt!("swr\tv0,4(a0)", swr(R::V0, 4, R::A0)),
        rt!("sdl\tv0,0(a0)", sdl(R::V0, 0, R::A0)),
        rt!("sdr\tv0,7(a0)", sdr(R::V0, 7, R::A0)),
        rt!("sd\tra,24(sp)", sd(R::RA, 24, R::SP)),
        rt!("sc\tt0,0(a0)", sc(R::T0, 0, R::A0)),
        rt!("scd\tt0,0(a0)", scd(R::T0, 0, R::A0)),
        rt!("lwc1\t$f2,4(v1)", lwc1(2, 4, R::V1)),
        rt!("ldc1\t$f30,-8(sp)", ldc1(30, -8, R::SP)),
        rt!("swc1\t$f0,0(a0)", swc1(0, 0, R::A0)),
        rt!("sdc1\t$f31,8(a0)", sdc1(31, 8, R::A0)),
        rt!("lwc2\t$5,4(a1)", lwc2(5, 4, R::A1)),
        rt!("ldc2\t$5,4(a1)", ldc2(5, 4, R::A1)),
        rt!("swc2\t$5,4(a1)", swc2(5, 4, R::A1)),
        rt!("sdc2\t$5,4(a1)", sdc2(5, 4, R::A1)),
        rt!("cache\t0x14,0(a0)", cache(0x14, 0, R::A0)),
        rt!("cache\t0x1f,-16(zero)", cache(0x1F, -16, R::ZERO)),
        rt!("mfc0\tv0,c0_sr", mfc0(R::V0, 12)),
        rt!("mtc0\tk0,c0_epc", mtc0(R::K0, 14)),
        rt!("dmfc0\tv0,c0_badvaddr", dmfc0(R::V0, 8)),
        rt!("dmtc0\tv0,c0_entryhi", dmtc0(R::V0, 10)),
        rt!("mtc0\tv0,$7", mtc0(R::V0, 7)),
    ];

    #[test]
    fn asm_decode_disasm_round_trip_covers_the_table() {
        let mut seen = std::collections::BTreeSet::new();
        for (build, text) in ROUND_TRIP {
            let mut a = Asm::new(0x1000);
            a.label("t");
            build(&mut a);
            let words = a.finish().unwrap();
            assert_eq!(words.len(), 1, "{text}");
            let insn = decode(words[0]);
            seen.insert(insn.op);
            assert_eq!(disasm(words[0], 0x1000), *text, "{:#010x}", words[0]);
        }
        for row in OPCODES {
            assert!(seen.contains(&row.op), "{} has no round-trip row", row.name);
        }
    }
}
