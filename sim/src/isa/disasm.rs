//! Instruction text in the syntax of `mips-linux-gnu-objdump -d`.

use std::fmt;

use super::insn::Insn;

/// An instruction at a known address, printable as objdump prints it.
pub struct Disasm {
    pub insn: Insn,
    pub pc: u64,
}

impl fmt::Display for Disasm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Placeholder until the full objdump-compatible printer lands.
        write!(f, "{} {:#010x}", self.insn.op.name(), self.insn.raw)
    }
}

/// Disassembles `insn` at `pc`.
pub fn disasm(insn: Insn, pc: u64) -> String {
    Disasm { insn, pc }.to_string()
}
