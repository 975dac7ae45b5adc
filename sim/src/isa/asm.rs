//! An in-crate assembler for tests and tools, driven by the opcode table.
//!
//! `encode` turns an operation and its operands into a word using the same
//! table rows the decoder matches, so `decode(encode(x)) == x` holds for every
//! row. [`Asm`] builds small programs with labels and resolves branches.

use std::collections::HashMap;

use super::insn::Reg;
use super::opcodes::{Format, Op};

/// The operand values of one instruction; which ones matter depends on the
/// format of the operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Operands {
    pub rs: u32,
    pub rt: u32,
    pub rd: u32,
    pub sa: u32,
    /// 16-bit immediate (low 16 bits used), jump target index, or code.
    pub imm: u32,
}

/// Encodes one instruction from the table row of `op`.
pub fn encode(op: Op, o: Operands) -> u32 {
    let info = op.info();
    let base = info.match_bits;
    let rs = (o.rs & 31) << 21;
    let rt = (o.rt & 31) << 16;
    let rd = (o.rd & 31) << 11;
    let sa = (o.sa & 31) << 6;
    let imm16 = o.imm & 0xFFFF;
    match info.format {
        Format::RdRsRt => base | rs | rt | rd,
        Format::Shift => base | rt | rd | sa,
        Format::ShiftV => base | rs | rt | rd,
        Format::RsRt => base | rs | rt,
        Format::Trap => base | rs | rt | ((o.imm & 0x3FF) << 6),
        Format::Rd => base | rd,
        Format::Rs => base | rs,
        Format::Jalr => base | rs | rd,
        Format::Code => base | ((o.imm & 0xF_FFFF) << 6),
        Format::None => base,
        Format::RtRsSimm | Format::RtRsUimm | Format::Mem | Format::CopMem => {
            base | rs | rt | imm16
        }
        Format::Cache => base | rs | rt | imm16,
        Format::RtUimm => base | rt | imm16,
        Format::RsSimm => base | rs | imm16,
        Format::BranchRsRt => base | rs | rt | imm16,
        Format::BranchRs => base | rs | imm16,
        Format::Jump => base | (o.imm & 0x03FF_FFFF),
        Format::Cop0Move => base | rt | rd,
        Format::Cop => base | (o.imm & !info.mask),
    }
}

/// A branch or jump whose target is a label, patched by [`Asm::finish`].
#[derive(Clone, Debug)]
struct Fixup {
    at: usize,
    label: String,
}

/// A small program under construction at a fixed virtual origin.
#[derive(Clone, Debug)]
pub struct Asm {
    origin: u32,
    words: Vec<u32>,
    labels: HashMap<String, u32>,
    fixups: Vec<Fixup>,
}

impl Asm {
    pub fn new(origin: u32) -> Asm {
        Asm {
            origin,
            words: Vec::new(),
            labels: HashMap::new(),
            fixups: Vec::new(),
        }
    }

    /// The address the next instruction will have.
    pub fn here(&self) -> u32 {
        self.origin
            .wrapping_add(u32::try_from(self.words.len() * 4).unwrap_or(u32::MAX))
    }

    pub fn label(&mut self, name: &str) -> &mut Self {
        let here = self.here();
        self.labels.insert(name.to_string(), here);
        self
    }

    pub fn word(&mut self, w: u32) -> &mut Self {
        self.words.push(w);
        self
    }

    pub fn emit(&mut self, op: Op, o: Operands) -> &mut Self {
        self.word(encode(op, o))
    }

    /// `op rd, rs, rt`
    pub fn r3(&mut self, op: Op, rd: Reg, rs: Reg, rt: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rd: rd.number(),
                rs: rs.number(),
                rt: rt.number(),
                ..Default::default()
            },
        )
    }

    /// `op rd, rt, sa` (immediate shifts)
    pub fn shift(&mut self, op: Op, rd: Reg, rt: Reg, sa: u32) -> &mut Self {
        self.emit(
            op,
            Operands {
                rd: rd.number(),
                rt: rt.number(),
                sa,
                ..Default::default()
            },
        )
    }

    /// `op rd, rt, rs` (variable shifts)
    pub fn shiftv(&mut self, op: Op, rd: Reg, rt: Reg, rs: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rd: rd.number(),
                rt: rt.number(),
                rs: rs.number(),
                ..Default::default()
            },
        )
    }

    /// `op rt, rs, imm` (immediate ALU); the low 16 bits of `imm` are used.
    pub fn imm(&mut self, op: Op, rt: Reg, rs: Reg, imm: i64) -> &mut Self {
        // Truncation to the 16-bit field is the point.
        self.emit(
            op,
            Operands {
                rt: rt.number(),
                rs: rs.number(),
                imm: imm as u32,
                ..Default::default()
            },
        )
    }

    /// `op rs, rt` (multiply, divide, traps with code 0)
    pub fn rs_rt(&mut self, op: Op, rs: Reg, rt: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rs: rs.number(),
                rt: rt.number(),
                ..Default::default()
            },
        )
    }

    /// `op rt, offset(base)`
    pub fn mem(&mut self, op: Op, rt: Reg, offset: i16, base: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rt: rt.number(),
                rs: base.number(),
                imm: offset as u16 as u32,
                ..Default::default()
            },
        )
    }

    /// `lui rt, imm; ori rt, rt, imm` loading a 32-bit constant (sign-extended).
    pub fn li(&mut self, rt: Reg, value: u32) -> &mut Self {
        self.imm(Op::Lui, rt, Reg::ZERO, i64::from(value >> 16));
        self.imm(Op::Ori, rt, rt, i64::from(value & 0xFFFF))
    }

    /// `mtc0 rt, $rd`
    pub fn mtc0(&mut self, rt: Reg, rd: u32) -> &mut Self {
        self.emit(
            Op::Mtc0,
            Operands {
                rt: rt.number(),
                rd,
                ..Operands::default()
            },
        )
    }

    /// `mfc0 rt, $rd`
    pub fn mfc0(&mut self, rt: Reg, rd: u32) -> &mut Self {
        self.emit(
            Op::Mfc0,
            Operands {
                rt: rt.number(),
                rd,
                ..Operands::default()
            },
        )
    }

    /// `jr rs` and a `nop` in its delay slot.
    pub fn jr(&mut self, rs: Reg) -> &mut Self {
        self.emit(
            Op::Jr,
            Operands {
                rs: rs.number(),
                ..Operands::default()
            },
        );
        self.nop()
    }

    /// An instruction without operands (`eret`, `tlbwi`, `syscall`, …).
    pub fn op(&mut self, op: Op) -> &mut Self {
        self.emit(op, Operands::default())
    }

    pub fn nop(&mut self) -> &mut Self {
        self.word(0)
    }

    /// A branch (any Branch-format op) to `label`; `rt` is ignored by
    /// one-register forms.
    pub fn branch(&mut self, op: Op, rs: Reg, rt: Reg, label: &str) -> &mut Self {
        self.fixups.push(Fixup {
            at: self.words.len(),
            label: label.to_string(),
        });
        self.emit(
            op,
            Operands {
                rs: rs.number(),
                rt: rt.number(),
                ..Default::default()
            },
        )
    }

    /// `j`/`jal` to `label`.
    pub fn jump(&mut self, op: Op, label: &str) -> &mut Self {
        self.fixups.push(Fixup {
            at: self.words.len(),
            label: label.to_string(),
        });
        self.emit(op, Operands::default())
    }

    /// Resolves labels. Returns the words, or the name of an undefined label.
    pub fn finish(&self) -> Result<Vec<u32>, String> {
        let mut words = self.words.clone();
        for f in &self.fixups {
            let target = *self.labels.get(&f.label).ok_or_else(|| f.label.clone())?;
            let here = self
                .origin
                .wrapping_add(u32::try_from(f.at * 4).unwrap_or(u32::MAX));
            let Some(w) = words.get_mut(f.at) else {
                continue;
            };
            if (*w >> 26) == 2 || (*w >> 26) == 3 {
                *w |= (target >> 2) & 0x03FF_FFFF;
            } else {
                let offset = target.wrapping_sub(here.wrapping_add(4)) as i32 >> 2;
                *w |= (offset as u32) & 0xFFFF;
            }
        }
        Ok(words)
    }

    /// The program as big-endian bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self
            .finish()?
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect())
    }

    pub fn origin(&self) -> u32 {
        self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{decode, OPCODES};

    #[test]
    fn encode_then_decode_round_trips_every_row() {
        for row in OPCODES {
            let o = Operands {
                rs: 3,
                rt: 5,
                rd: 7,
                sa: 9,
                imm: 0x1234,
            };
            let word = encode(row.op, o);
            assert_eq!(decode(word).op, row.op, "{}", row.name);
        }
    }
}
