//! Instruction text in the syntax of `mips-linux-gnu-objdump -d`: o32
//! register names, R4000 CP0 register names, objdump's aliases (nop, move,
//! li, b, beqz, negu, …), decimal signed and hexadecimal unsigned
//! immediates, and branch targets as absolute addresses.

use std::fmt;

use super::insn::{Insn, Reg};
use super::opcodes::{Format, Op};

/// CP0 register names as objdump prints them for the R4000.
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

/// An instruction at a known address, printable as objdump prints it.
/// With a symbolizer, branch and jump targets read `80010040 <main+0x40>`;
/// without one, `0x80010040`, as objdump prints them in a file with no
/// symbols.
pub struct Disasm<'a> {
    pub insn: Insn,
    pub pc: u64,
    pub symbolize: Option<&'a dyn Fn(u64) -> Option<String>>,
}

/// Disassembles `insn` at `pc` without symbols.
pub fn disasm(insn: Insn, pc: u64) -> String {
    Disasm {
        insn,
        pc,
        symbolize: None,
    }
    .to_string()
}

/// Disassembles `insn` at `pc`, naming branch targets with `symbolize`.
pub fn disasm_with(insn: Insn, pc: u64, symbolize: &dyn Fn(u64) -> Option<String>) -> String {
    Disasm {
        insn,
        pc,
        symbolize: Some(symbolize),
    }
    .to_string()
}

fn r(reg: Reg) -> &'static str {
    reg.abi_name()
}

impl Disasm<'_> {
    fn target(&self, f: &mut fmt::Formatter<'_>, addr: u64) -> fmt::Result {
        let a = addr & 0xFFFF_FFFF;
        match self.symbolize.and_then(|s| s(a)) {
            Some(sym) => write!(f, "{a:x} <{sym}>"),
            None => write!(f, "{a:#x}"),
        }
    }

    fn branch_target(&self) -> u64 {
        self.pc
            .wrapping_add(4)
            .wrapping_add(self.insn.branch_offset())
    }
}

impl fmt::Display for Disasm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.insn;
        let name = i.op.name();
        let (rs, rt, rd) = (i.rs, i.rt, i.rd);
        let simm = i.imm as i32;
        // objdump's aliases first.
        match i.op {
            _ if i.raw == 0 => return f.write_str("nop"),
            Op::Addu | Op::Or | Op::Daddu if rt == Reg::ZERO => {
                return write!(f, "move\t{},{}", r(rd), r(rs));
            }
            Op::Subu if rs == Reg::ZERO => return write!(f, "negu\t{},{}", r(rd), r(rt)),
            Op::Sub if rs == Reg::ZERO => return write!(f, "neg\t{},{}", r(rd), r(rt)),
            Op::Dsubu if rs == Reg::ZERO => return write!(f, "dnegu\t{},{}", r(rd), r(rt)),
            Op::Dsub if rs == Reg::ZERO => return write!(f, "dneg\t{},{}", r(rd), r(rt)),
            Op::Addiu if rs == Reg::ZERO => return write!(f, "li\t{},{}", r(rt), simm),
            Op::Ori if rs == Reg::ZERO => return write!(f, "li\t{},{:#x}", r(rt), i.imm),
            Op::Beq if rs == Reg::ZERO && rt == Reg::ZERO => {
                f.write_str("b\t")?;
                return self.target(f, self.branch_target());
            }
            Op::Bgez if rs == Reg::ZERO => {
                f.write_str("b\t")?;
                return self.target(f, self.branch_target());
            }
            Op::Bgezal if rs == Reg::ZERO => {
                f.write_str("bal\t")?;
                return self.target(f, self.branch_target());
            }
            Op::Beq | Op::Bne | Op::Beql | Op::Bnel if rt == Reg::ZERO => {
                let alias = match i.op {
                    Op::Beq => "beqz",
                    Op::Bne => "bnez",
                    Op::Beql => "beqzl",
                    _ => "bnezl",
                };
                write!(f, "{alias}\t{},", r(rs))?;
                return self.target(f, self.branch_target());
            }
            Op::Jalr if rd == Reg::RA => return write!(f, "jalr\t{}", r(rs)),
            Op::Div | Op::Divu | Op::Ddiv | Op::Ddivu => {
                return write!(f, "{name}\tzero,{},{}", r(rs), r(rt));
            }
            Op::Syscall => {
                return match i.imm {
                    0 => f.write_str("syscall"),
                    code => write!(f, "syscall\t{code:#x}"),
                };
            }
            Op::Break => {
                let (c1, c2) = (i.imm >> 10, i.imm & 0x3FF);
                return match (c1, c2) {
                    (0, 0) => f.write_str("break"),
                    (c1, 0) => write!(f, "break\t{c1:#x}"),
                    (c1, c2) => write!(f, "break\t{c1:#x},{c2:#x}"),
                };
            }
            Op::Cop0Nop => return write!(f, "c0\t{:#x}", i.raw & 0x01FF_FFFF),
            Op::Rfe => return write!(f, "c0\t{:#x}", i.raw & 0x01FF_FFFF),
            Op::Reserved => return write!(f, ".word\t{:#x}", i.raw),
            _ => {}
        }
        match i.op.info().format {
            Format::RdRsRt => write!(f, "{name}\t{},{},{}", r(rd), r(rs), r(rt)),
            Format::Shift => write!(f, "{name}\t{},{},{:#x}", r(rd), r(rt), i.sa),
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
            Format::RtRsSimm => write!(f, "{name}\t{},{},{}", r(rt), r(rs), simm),
            Format::RtRsUimm => write!(f, "{name}\t{},{},{:#x}", r(rt), r(rs), i.imm),
            Format::RtUimm => write!(f, "{name}\t{},{:#x}", r(rt), i.imm),
            Format::RsSimm => write!(f, "{name}\t{},{}", r(rs), simm),
            Format::BranchRsRt => {
                write!(f, "{name}\t{},{},", r(rs), r(rt))?;
                self.target(f, self.branch_target())
            }
            Format::BranchRs => {
                write!(f, "{name}\t{},", r(rs))?;
                self.target(f, self.branch_target())
            }
            Format::Jump => {
                write!(f, "{name}\t")?;
                let region = self.pc.wrapping_add(4) & !0x0FFF_FFFF;
                self.target(f, region | u64::from(i.imm << 2))
            }
            Format::Mem => write!(f, "{name}\t{},{}({})", r(rt), simm, r(rs)),
            Format::CopMem => {
                let reg = if matches!(i.op, Op::Lwc1 | Op::Ldc1 | Op::Swc1 | Op::Sdc1) {
                    "$f"
                } else {
                    "$"
                };
                write!(f, "{name}\t{reg}{},{}({})", rt.number(), simm, r(rs))
            }
            Format::Cache => write!(f, "{name}\t{:#x},{}({})", rt.number(), simm, r(rs)),
            Format::Cop0Move => {
                let reg = CP0_NAMES.get(rd.index()).copied().unwrap_or("$?");
                write!(f, "{name}\t{},{reg}", r(rt))
            }
            // FPU and CP2/CP3 operations: this machine has none, and their
            // own syntax is not reproduced.
            Format::Cop => write!(f, "{name}\t{:#x}", i.raw & 0x03FF_FFFF),
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::isa::decode;

    /// (word, pc, objdump's text) rows, copied from `mips-linux-gnu-objdump -d`
    /// of a file with no symbols.
    const ROWS: &[(u32, u64, &str)] = &[
        (0x0085_1021, 0, "addu\tv0,a0,a1"),
        (0x0080_1021, 0, "move\tv0,a0"),
        (0x0080_1025, 0, "move\tv0,a0"),
        (0x0004_1021, 0, "addu\tv0,zero,a0"),
        (0x0005_1023, 0, "negu\tv0,a1"),
        (0x0005_1022, 0, "neg\tv0,a1"),
        (0x0080_1027, 0, "nor\tv0,a0,zero"),
        (0x2402_0005, 0, "li\tv0,5"),
        (0x2402_fffb, 0, "li\tv0,-5"),
        (0x3402_8000, 0, "li\tv0,0x8000"),
        (0x3c02_8000, 0, "lui\tv0,0x8000"),
        (0x27bd_ffe0, 0, "addiu\tsp,sp,-32"),
        (0x3042_00ff, 0, "andi\tv0,v0,0xff"),
        (0x0002_1080, 0, "sll\tv0,v0,0x2"),
        (0x0000_0000, 0, "nop"),
        (0x1040_ffef, 0x40, "beqz\tv0,0x0"),
        (0x1000_ffed, 0x48, "b\t0x0"),
        (0x0411_ffeb, 0x50, "bal\t0x0"),
        (0x03e0_0008, 0, "jr\tra"),
        (0x0320_f809, 0, "jalr\tt9"),
        (0x0320_1009, 0, "jalr\tv0,t9"),
        (0x8fa2_0010, 0, "lw\tv0,16(sp)"),
        (0xafa2_fff8, 0, "sw\tv0,-8(sp)"),
        (0x0000_004c, 0, "syscall\t0x1"),
        (0x0007_004d, 0, "break\t0x7,0x1"),
        (0x0080_01f4, 0, "teq\ta0,zero,0x7"),
        (0x4002_6000, 0, "mfc0\tv0,c0_sr"),
        (0x4200_0018, 0, "eret"),
        (0xbc94_0000, 0, "cache\t0x14,0(a0)"),
        (0x0043_001a, 0, "div\tzero,v0,v1"),
        (0xc462_0004, 0, "lwc1\t$f2,4(v1)"),
        (0x7c00_0000, 0, ".word\t0x7c000000"),
        (0x4200_003f, 0, "c0\t0x3f"),
        (0x0003_102f, 0, "dnegu\tv0,v1"),
    ];

    #[test]
    fn matches_objdump_rows() {
        for &(word, pc, text) in ROWS {
            assert_eq!(disasm(decode(word), pc), text, "{word:#010x}");
        }
    }

    #[test]
    fn symbolized_targets() {
        let sym = |a: u64| (a == 0x8001_0000).then(|| "main".to_string());
        assert_eq!(
            disasm_with(decode(0x0c00_4000), 0x8001_0040, &sym),
            "jal\t80010000 <main>"
        );
    }
}
