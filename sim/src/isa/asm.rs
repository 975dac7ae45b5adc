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

/// Why [`Asm::finish`] could not resolve the program's labels.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("undefined label `{0}`")]
    UndefinedLabel(String),
    #[error("label `{0}` is defined more than once")]
    DuplicateLabel(String),
    /// A branch reaches only ±128 KiB around its delay slot (16-bit word
    /// offset, `../shared/docs/r4000-reference.md` §5.7).
    #[error("branch at {at:#010x} cannot reach label `{label}` at {target:#010x}")]
    BranchOutOfRange { label: String, at: u32, target: u32 },
    /// J and JAL keep the top four bits of the delay slot's address (§5.7).
    #[error("jump at {at:#010x} cannot reach label `{label}` at {target:#010x} in another 256 MB region")]
    JumpOutOfRegion { label: String, at: u32, target: u32 },
}

/// For callers that report assembly failures as text.
impl From<AsmError> for String {
    fn from(e: AsmError) -> String {
        e.to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FixupKind {
    /// A 16-bit offset relative to the delay slot.
    Branch,
    /// A 26-bit word index inside the delay slot's 256 MB region.
    Jump,
}

/// A branch or jump whose target is a label, patched by [`Asm::finish`].
#[derive(Clone, Debug)]
struct Fixup {
    at: usize,
    label: String,
    kind: FixupKind,
}

/// A small program under construction at a fixed virtual origin.
///
/// Besides the format-level builders (`r3`, `imm`, `mem`, `branch`, …) there
/// is one method per instruction of the table, named after its mnemonic and
/// taking its operands in assembler order: `a.addiu(SP, SP, -32)`,
/// `a.lw(T0, -8, SP)`, `a.beq(T0, ZERO, "done")`, `a.eret()`. Keywords get a
/// trailing underscore (`break_`, `move_`). A few GNU aliases exist too
/// (`move_`, `negu`, `not`, `b`, `bal`, `beqz`, `bnez`, `beqzl`, `bnezl`).
/// No helper fills a delay slot, except the older [`Asm::jr`].
#[derive(Clone, Debug)]
pub struct Asm {
    origin: u32,
    words: Vec<u32>,
    labels: HashMap<String, u32>,
    duplicates: Vec<String>,
    fixups: Vec<Fixup>,
}

impl Asm {
    pub fn new(origin: u32) -> Asm {
        Asm {
            origin,
            words: Vec::new(),
            labels: HashMap::new(),
            duplicates: Vec::new(),
            fixups: Vec::new(),
        }
    }

    /// The address of the word at index `at`.
    fn address_of(&self, at: usize) -> u32 {
        self.origin
            .wrapping_add(u32::try_from(at * 4).unwrap_or(u32::MAX))
    }

    /// The address the next instruction will have.
    pub fn here(&self) -> u32 {
        self.address_of(self.words.len())
    }

    /// Defines `name` at the current address; a second definition makes
    /// [`Asm::finish`] fail.
    pub fn label(&mut self, name: &str) -> &mut Self {
        let here = self.here();
        if self.labels.insert(name.to_string(), here).is_some() {
            self.duplicates.push(name.to_string());
        }
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
    /// Always two instructions, unlike GNU's `li`.
    pub fn li(&mut self, rt: Reg, value: u32) -> &mut Self {
        self.imm(Op::Lui, rt, Reg::ZERO, i64::from(value >> 16));
        self.imm(Op::Ori, rt, rt, i64::from(value & 0xFFFF))
    }

    /// `mtc0 rt, $rd`
    pub fn mtc0(&mut self, rt: Reg, rd: u32) -> &mut Self {
        self.cop0_move(Op::Mtc0, rt, rd)
    }

    /// `mfc0 rt, $rd`
    pub fn mfc0(&mut self, rt: Reg, rd: u32) -> &mut Self {
        self.cop0_move(Op::Mfc0, rt, rd)
    }

    /// `op rt, $rd` (CP0 moves)
    pub(crate) fn cop0_move(&mut self, op: Op, rt: Reg, rd: u32) -> &mut Self {
        self.emit(
            op,
            Operands {
                rt: rt.number(),
                rd,
                ..Operands::default()
            },
        )
    }

    /// `jr rs` and a `nop` in its delay slot. (The one helper that fills its
    /// delay slot; `a.rs(Op::Jr, rs)` emits the bare `jr`.)
    pub fn jr(&mut self, rs: Reg) -> &mut Self {
        self.rs(Op::Jr, rs);
        self.nop()
    }

    /// `op rs` (JR, MTHI, MTLO)
    pub fn rs(&mut self, op: Op, rs: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rs: rs.number(),
                ..Operands::default()
            },
        )
    }

    /// `op rd` (MFHI, MFLO)
    pub fn rd(&mut self, op: Op, rd: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rd: rd.number(),
                ..Operands::default()
            },
        )
    }

    /// `op rs, rt, code` (trap on condition; `code` is bits 15:6, read only
    /// by the handler).
    pub fn trap(&mut self, op: Op, rs: Reg, rt: Reg, code: u32) -> &mut Self {
        self.emit(
            op,
            Operands {
                rs: rs.number(),
                rt: rt.number(),
                imm: code,
                ..Operands::default()
            },
        )
    }

    /// `op code`: SYSCALL or BREAK with a 20-bit code (bits 25:6), or a
    /// whole coprocessor operation (`c0`, `cop1`…) with its function bits.
    pub fn code(&mut self, op: Op, code: u32) -> &mut Self {
        self.emit(
            op,
            Operands {
                imm: code,
                ..Operands::default()
            },
        )
    }

    /// `op $N, offset(base)` (coprocessor loads and stores, CACHE)
    pub(crate) fn cop_mem(&mut self, op: Op, reg: u32, offset: i16, base: Reg) -> &mut Self {
        self.emit(
            op,
            Operands {
                rt: reg,
                rs: base.number(),
                imm: offset as u16 as u32,
                ..Operands::default()
            },
        )
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
            kind: FixupKind::Branch,
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
            kind: FixupKind::Jump,
        });
        self.emit(op, Operands::default())
    }

    /// `syscall code`
    pub fn syscall_code(&mut self, code: u32) -> &mut Self {
        self.code(Op::Syscall, code)
    }

    /// `break code` (20 bits; objdump prints the two 10-bit halves)
    pub fn break_code(&mut self, code: u32) -> &mut Self {
        self.code(Op::Break, code)
    }

    /// `move rd, rs`, encoded as GNU as does: `or rd, rs, zero`.
    pub fn move_(&mut self, rd: Reg, rs: Reg) -> &mut Self {
        self.r3(Op::Or, rd, rs, Reg::ZERO)
    }

    /// `negu rd, rt` = `subu rd, zero, rt`
    pub fn negu(&mut self, rd: Reg, rt: Reg) -> &mut Self {
        self.r3(Op::Subu, rd, Reg::ZERO, rt)
    }

    /// `not rd, rs` = `nor rd, rs, zero` (objdump prints the `nor`)
    pub fn not(&mut self, rd: Reg, rs: Reg) -> &mut Self {
        self.r3(Op::Nor, rd, rs, Reg::ZERO)
    }

    /// `b label` = `beq zero, zero, label`
    pub fn b(&mut self, label: &str) -> &mut Self {
        self.branch(Op::Beq, Reg::ZERO, Reg::ZERO, label)
    }

    /// `bal label` = `bgezal zero, label`
    pub fn bal(&mut self, label: &str) -> &mut Self {
        self.branch(Op::Bgezal, Reg::ZERO, Reg::ZERO, label)
    }

    /// `beqz rs, label` = `beq rs, zero, label`
    pub fn beqz(&mut self, rs: Reg, label: &str) -> &mut Self {
        self.branch(Op::Beq, rs, Reg::ZERO, label)
    }

    /// `bnez rs, label` = `bne rs, zero, label`
    pub fn bnez(&mut self, rs: Reg, label: &str) -> &mut Self {
        self.branch(Op::Bne, rs, Reg::ZERO, label)
    }

    /// `beqzl rs, label` = `beql rs, zero, label`
    pub fn beqzl(&mut self, rs: Reg, label: &str) -> &mut Self {
        self.branch(Op::Beql, rs, Reg::ZERO, label)
    }

    /// `bnezl rs, label` = `bnel rs, zero, label`
    pub fn bnezl(&mut self, rs: Reg, label: &str) -> &mut Self {
        self.branch(Op::Bnel, rs, Reg::ZERO, label)
    }

    /// Resolves labels: the words, or why a label could not be resolved.
    pub fn finish(&self) -> Result<Vec<u32>, AsmError> {
        if let Some(name) = self.duplicates.first() {
            return Err(AsmError::DuplicateLabel(name.clone()));
        }
        let mut words = self.words.clone();
        for f in &self.fixups {
            let target = *self
                .labels
                .get(&f.label)
                .ok_or_else(|| AsmError::UndefinedLabel(f.label.clone()))?;
            let at = self.address_of(f.at);
            let slot = at.wrapping_add(4);
            let Some(w) = words.get_mut(f.at) else {
                continue;
            };
            match f.kind {
                FixupKind::Jump => {
                    if (slot ^ target) & 0xF000_0000 != 0 {
                        return Err(AsmError::JumpOutOfRegion {
                            label: f.label.clone(),
                            at,
                            target,
                        });
                    }
                    *w |= (target >> 2) & 0x03FF_FFFF;
                }
                FixupKind::Branch => {
                    // Labels are word-aligned, so the shift is exact; the
                    // wrapping difference as i32 is the signed distance.
                    let words_away = (target.wrapping_sub(slot) as i32) >> 2;
                    let offset =
                        i16::try_from(words_away).map_err(|_| AsmError::BranchOutOfRange {
                            label: f.label.clone(),
                            at,
                            target,
                        })?;
                    *w |= u32::from(offset as u16);
                }
            }
        }
        Ok(words)
    }

    /// The program as big-endian bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, AsmError> {
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

/// One method per table row, grouped by operand format. Each group's arm
/// below says how the operands map onto the format's builder.
macro_rules! helpers {
    ($( $group:ident { $($name:ident = $op:ident),* $(,)? } )*) => {
        impl Asm {
            $( $( helpers!(@fn $group $name $op); )* )*
        }

        /// The operations that have a named helper (tests check that this
        /// covers the whole table).
        #[cfg(test)]
        pub(crate) const HELPER_OPS: &[Op] = &[$( $( Op::$op, )* )*];
    };
    (@fn rd_rs_rt $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rd, rs, rt`")]
        pub fn $name(&mut self, rd: Reg, rs: Reg, rt: Reg) -> &mut Self {
            self.r3(Op::$op, rd, rs, rt)
        }
    };
    (@fn shift $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rd, rt, sa` (sa in 0..32)")]
        pub fn $name(&mut self, rd: Reg, rt: Reg, sa: u32) -> &mut Self {
            self.shift(Op::$op, rd, rt, sa)
        }
    };
    (@fn shiftv $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rd, rt, rs`")]
        pub fn $name(&mut self, rd: Reg, rt: Reg, rs: Reg) -> &mut Self {
            self.shiftv(Op::$op, rd, rt, rs)
        }
    };
    (@fn rs_rt $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs, rt` (result in HI/LO)")]
        pub fn $name(&mut self, rs: Reg, rt: Reg) -> &mut Self {
            self.rs_rt(Op::$op, rs, rt)
        }
    };
    (@fn trap $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs, rt, code` (code: 10 bits, 0 for none)")]
        pub fn $name(&mut self, rs: Reg, rt: Reg, code: u32) -> &mut Self {
            self.trap(Op::$op, rs, rt, code)
        }
    };
    (@fn rd $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rd`")]
        pub fn $name(&mut self, rd: Reg) -> &mut Self {
            self.rd(Op::$op, rd)
        }
    };
    (@fn rs $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs`")]
        pub fn $name(&mut self, rs: Reg) -> &mut Self {
            self.rs(Op::$op, rs)
        }
    };
    (@fn rd_rs $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rd, rs` (JALR: rd = ra is the usual link)")]
        pub fn $name(&mut self, rd: Reg, rs: Reg) -> &mut Self {
            self.emit(Op::$op, Operands { rd: rd.number(), rs: rs.number(), ..Operands::default() })
        }
    };
    (@fn none $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), "` (code 0 where the format has one)")]
        pub fn $name(&mut self) -> &mut Self {
            self.op(Op::$op)
        }
    };
    (@fn cop $name:ident $op:ident) => {
        #[doc = concat!("a whole `", stringify!($name), "` operation; `bits` fills the fields below the opcode")]
        pub fn $name(&mut self, bits: u32) -> &mut Self {
            self.code(Op::$op, bits)
        }
    };
    (@fn rt_rs_simm $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rt, rs, simm16`")]
        pub fn $name(&mut self, rt: Reg, rs: Reg, imm: i16) -> &mut Self {
            self.imm(Op::$op, rt, rs, i64::from(imm))
        }
    };
    (@fn rt_rs_uimm $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rt, rs, uimm16` (zero-extended)")]
        pub fn $name(&mut self, rt: Reg, rs: Reg, imm: u16) -> &mut Self {
            self.imm(Op::$op, rt, rs, i64::from(imm))
        }
    };
    (@fn rt_uimm $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rt, uimm16`")]
        pub fn $name(&mut self, rt: Reg, imm: u16) -> &mut Self {
            self.imm(Op::$op, rt, Reg::ZERO, i64::from(imm))
        }
    };
    (@fn rs_simm $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs, simm16`")]
        pub fn $name(&mut self, rs: Reg, imm: i16) -> &mut Self {
            self.imm(Op::$op, Reg::ZERO, rs, i64::from(imm))
        }
    };
    (@fn branch_rs_rt $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs, rt, label`")]
        pub fn $name(&mut self, rs: Reg, rt: Reg, label: &str) -> &mut Self {
            self.branch(Op::$op, rs, rt, label)
        }
    };
    (@fn branch_rs $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rs, label`")]
        pub fn $name(&mut self, rs: Reg, label: &str) -> &mut Self {
            self.branch(Op::$op, rs, Reg::ZERO, label)
        }
    };
    (@fn jump $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " label` (same 256 MB region)")]
        pub fn $name(&mut self, label: &str) -> &mut Self {
            self.jump(Op::$op, label)
        }
    };
    (@fn mem $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rt, offset(base)`")]
        pub fn $name(&mut self, rt: Reg, offset: i16, base: Reg) -> &mut Self {
            self.mem(Op::$op, rt, offset, base)
        }
    };
    (@fn cop_mem $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " $N, offset(base)` (N: coprocessor register, or the CACHE op)")]
        pub fn $name(&mut self, reg: u32, offset: i16, base: Reg) -> &mut Self {
            self.cop_mem(Op::$op, reg, offset, base)
        }
    };
    (@fn cop0_move $name:ident $op:ident) => {
        #[doc = concat!("`", stringify!($name), " rt, $rd` (rd: CP0 register number)")]
        pub fn $name(&mut self, rt: Reg, rd: u32) -> &mut Self {
            self.cop0_move(Op::$op, rt, rd)
        }
    };
    // Rows whose helper is written by hand above (`jr` also fills its slot).
    (@fn manual $name:ident $op:ident) => {};
}

helpers! {
    rd_rs_rt {
        add = Add, addu = Addu, sub = Sub, subu = Subu, and = And, or = Or, xor = Xor,
        nor = Nor, slt = Slt, sltu = Sltu, dadd = Dadd, daddu = Daddu, dsub = Dsub,
        dsubu = Dsubu,
    }
    shift {
        sll = Sll, srl = Srl, sra = Sra, dsll = Dsll, dsrl = Dsrl, dsra = Dsra,
        dsll32 = Dsll32, dsrl32 = Dsrl32, dsra32 = Dsra32,
    }
    shiftv { sllv = Sllv, srlv = Srlv, srav = Srav, dsllv = Dsllv, dsrlv = Dsrlv, dsrav = Dsrav }
    rs_rt {
        mult = Mult, multu = Multu, div = Div, divu = Divu, dmult = Dmult, dmultu = Dmultu,
        ddiv = Ddiv, ddivu = Ddivu,
    }
    trap { tge = Tge, tgeu = Tgeu, tlt = Tlt, tltu = Tltu, teq = Teq, tne = Tne }
    rd { mfhi = Mfhi, mflo = Mflo }
    rs { mthi = Mthi, mtlo = Mtlo }
    rd_rs { jalr = Jalr }
    none {
        syscall = Syscall, break_ = Break, sync = Sync, tlbr = Tlbr, tlbwi = Tlbwi,
        tlbwr = Tlbwr, tlbp = Tlbp, rfe = Rfe, eret = Eret, wait = Wait,
    }
    cop { c0 = Cop0Nop, cop1 = Cop1, cop2 = Cop2, cop3 = Cop3 }
    rt_rs_simm {
        addi = Addi, addiu = Addiu, slti = Slti, sltiu = Sltiu, daddi = Daddi, daddiu = Daddiu,
    }
    rt_rs_uimm { andi = Andi, ori = Ori, xori = Xori }
    rt_uimm { lui = Lui }
    rs_simm { tgei = Tgei, tgeiu = Tgeiu, tlti = Tlti, tltiu = Tltiu, teqi = Teqi, tnei = Tnei }
    branch_rs_rt { beq = Beq, bne = Bne, beql = Beql, bnel = Bnel }
    branch_rs {
        bltz = Bltz, bgez = Bgez, bltzl = Bltzl, bgezl = Bgezl, bltzal = Bltzal,
        bgezal = Bgezal, bltzall = Bltzall, bgezall = Bgezall, blez = Blez, bgtz = Bgtz,
        blezl = Blezl, bgtzl = Bgtzl,
    }
    jump { j = J, jal = Jal }
    mem {
        lb = Lb, lh = Lh, lwl = Lwl, lw = Lw, lbu = Lbu, lhu = Lhu, lwr = Lwr, lwu = Lwu,
        ldl = Ldl, ldr = Ldr, ld = Ld, ll = Ll, lld = Lld, sb = Sb, sh = Sh, swl = Swl,
        sw = Sw, swr = Swr, sdl = Sdl, sdr = Sdr, sd = Sd, sc = Sc, scd = Scd,
    }
    cop_mem {
        lwc1 = Lwc1, lwc2 = Lwc2, ldc1 = Ldc1, ldc2 = Ldc2, swc1 = Swc1, swc2 = Swc2,
        sdc1 = Sdc1, sdc2 = Sdc2, cache = Cache,
    }
    cop0_move { dmfc0 = Dmfc0, dmtc0 = Dmtc0 }
    manual { jr = Jr, mtc0 = Mtc0, mfc0 = Mfc0 }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::isa::{decode, OPCODES};
    use Reg as R;

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

    #[test]
    fn every_row_has_a_named_helper() {
        for row in OPCODES {
            assert!(HELPER_OPS.contains(&row.op), "no helper for {}", row.name);
        }
    }

    #[test]
    fn branches_forward_and_back() {
        let mut a = Asm::new(0x8000_0000);
        a.label("top").nop().bnez(R::T0, "top").nop();
        a.beq(R::T0, R::T1, "end").nop().label("end");
        let w = a.finish().unwrap();
        // back: from the slot at 0x8..0x0, two words; forward: 0x14 - 0x10.
        assert_eq!(w[1], 0x1500_fffe);
        assert_eq!(w[3], 0x1109_0001);
    }

    #[test]
    fn label_errors_are_reported() {
        let mut a = Asm::new(0);
        a.b("nowhere");
        assert_eq!(a.finish(), Err(AsmError::UndefinedLabel("nowhere".into())));

        let mut a = Asm::new(0);
        a.label("x").nop().label("x");
        assert_eq!(a.finish(), Err(AsmError::DuplicateLabel("x".into())));

        // 0x20000 bytes past the delay slot is one word too far.
        let mut a = Asm::new(0x1000);
        a.b("far");
        let mut far = Asm::new(0x1000 + 4 + 0x2_0000);
        far.label("far");
        a.labels.extend(far.labels);
        assert_eq!(
            a.finish(),
            Err(AsmError::BranchOutOfRange {
                label: "far".into(),
                at: 0x1000,
                target: 0x2_1004
            })
        );
        // One word less reaches.
        a.labels.insert("far".into(), 0x2_1000);
        assert_eq!(a.finish().unwrap(), vec![0x1000_7fff]);
        // Backwards limit: -0x8000 words.
        a.labels
            .insert("far".into(), 0x1004u32.wrapping_sub(0x2_0000));
        assert_eq!(a.finish().unwrap(), vec![0x1000_8000]);
        a.labels
            .insert("far".into(), 0x1000u32.wrapping_sub(0x2_0000));
        assert!(matches!(a.finish(), Err(AsmError::BranchOutOfRange { .. })));

        let mut a = Asm::new(0x8000_0000);
        a.j("there");
        a.labels.insert("there".into(), 0x9000_0000);
        assert!(matches!(a.finish(), Err(AsmError::JumpOutOfRegion { .. })));
        a.labels.insert("there".into(), 0x8FFF_FFFC);
        assert_eq!(a.finish().unwrap(), vec![0x0BFF_FFFF]);
        // The message names the label and both addresses.
        let e = String::from(AsmError::UndefinedLabel("loop".into()));
        assert_eq!(e, "undefined label `loop`");
    }
}
