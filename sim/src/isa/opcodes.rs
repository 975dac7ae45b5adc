//! The one encoding table of the R4000 integer instruction set.
//!
//! Every instruction the simulator knows is one row here: its mnemonic, the
//! bits that identify it (`match_bits` under `mask`), its operand format and a
//! few facts the executor and the timing model need. The decoder, the
//! disassembler and the assembler are all driven by this table, so adding an
//! instruction means adding one row (plus its semantics in `cpu::exec`).
//!
//! Sources: R4000 User's Manual appendix A; `../shared/docs/r4000-reference.md` §5.2–5.5.

/// How the operand fields of an instruction are laid out and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `op rd, rs, rt`
    RdRsRt,
    /// `op rd, rt, sa`
    Shift,
    /// `op rd, rt, rs`
    ShiftV,
    /// `op rs, rt` (multiply, divide)
    RsRt,
    /// `op rs, rt, code` (trap on condition; code in bits 15:6)
    Trap,
    /// `op rd`
    Rd,
    /// `op rs`
    Rs,
    /// `op rd, rs` (JALR)
    Jalr,
    /// `op code` (SYSCALL, BREAK; code in bits 25:6)
    Code,
    /// no operands
    None,
    /// `op rt, rs, simm16`
    RtRsSimm,
    /// `op rt, rs, uimm16`
    RtRsUimm,
    /// `op rt, uimm16` (LUI)
    RtUimm,
    /// `op rs, simm16` (trap immediate)
    RsSimm,
    /// `op rs, rt, offset` (two-register branch)
    BranchRsRt,
    /// `op rs, offset` (one-register branch)
    BranchRs,
    /// `op target` (J, JAL)
    Jump,
    /// `op rt, simm16(rs)` (load or store)
    Mem,
    /// `op $fN/$N, simm16(rs)` (coprocessor load or store)
    CopMem,
    /// `op op, simm16(rs)` (CACHE)
    Cache,
    /// `op rt, $rd` (CP0 move)
    Cop0Move,
    /// a whole coprocessor 1–3 instruction (raises Coprocessor Unusable)
    Cop,
}

/// What an instruction does to control flow or memory, for the executor's
/// bookkeeping and the cycle model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Alu,
    Shift,
    MulDiv,
    HiLo,
    Load,
    Store,
    Branch,
    Jump,
    Trap,
    Cop0,
    Cop,
    Other,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    pub op: Op,
    pub name: &'static str,
    pub match_bits: u32,
    pub mask: u32,
    pub format: Format,
    pub class: Class,
    /// A 64-bit operation: Reserved Instruction in 32-bit user and supervisor mode
    /// (`../shared/docs/r4000-reference.md` §5.8).
    pub is64: bool,
    /// A catch-all row that only applies when no more specific row matches.
    pub fallback: bool,
    /// Which of rs (bit 0) and rt (bit 1) the instruction reads, from its
    /// format: the load-use interlock compares them with the loaded
    /// register. In the table rather than in each decoded instruction,
    /// which it would make larger.
    pub reads: u8,
}

/// [`OpInfo::reads`] of `op`: its format says which fields it reads (a
/// store, and LWL/LWR/LDL/LDR, which merge, also read rt).
const fn reads_of(op: Op, format: Format, class: Class) -> u8 {
    let (rs, rt) = match format {
        Format::RdRsRt | Format::ShiftV | Format::RsRt | Format::Trap | Format::BranchRsRt => {
            (true, true)
        }
        Format::Shift => (false, true),
        Format::Rs | Format::Jalr | Format::RtRsSimm | Format::RtRsUimm | Format::RsSimm => {
            (true, false)
        }
        Format::BranchRs | Format::CopMem | Format::Cache => (true, false),
        Format::Mem => (
            true,
            matches!(class, Class::Store) || matches!(op, Op::Lwl | Op::Lwr | Op::Ldl | Op::Ldr),
        ),
        Format::Cop0Move => (false, matches!(op, Op::Mtc0 | Op::Dmtc0)),
        _ => (false, false),
    };
    (rs as u8) | ((rt as u8) << 1)
}

const PRI: u32 = 0xFC00_0000;
const SPECIAL: u32 = 0xFC00_003F;
const REGIMM: u32 = 0xFC1F_0000;
const COP0_RS: u32 = 0xFFE0_0000;
const COP0_CO: u32 = 0xFE00_003F;

const fn pri(op: u32) -> u32 {
    op << 26
}
const fn special(funct: u32) -> u32 {
    funct
}
const fn regimm(rt: u32) -> u32 {
    (1 << 26) | (rt << 16)
}
const fn cop0_rs(rs: u32) -> u32 {
    (0x10 << 26) | (rs << 21)
}
const fn cop0_co(funct: u32) -> u32 {
    (0x10 << 26) | (1 << 25) | funct
}

macro_rules! opcodes {
    ($( $op:ident $name:literal $bits:expr, $mask:expr, $fmt:ident, $class:ident $(, $flag:ident)* ;)*) => {
        /// Every instruction of the table, by the manual's mnemonic.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Op {
            $($op,)*
            /// A word that encodes no instruction: Reserved Instruction.
            Reserved,
        }

        /// The opcode table, in decoding priority order.
        pub static OPCODES: &[OpInfo] = &[
            $(OpInfo {
                op: Op::$op,
                name: $name,
                match_bits: $bits,
                mask: $mask,
                format: Format::$fmt,
                class: Class::$class,
                is64: opcodes!(@has is64 $($flag)*),
                fallback: opcodes!(@has fallback $($flag)*),
                reads: reads_of(Op::$op, Format::$fmt, Class::$class),
            },)*
        ];
    };
    (@has $want:ident) => { false };
    (@has is64 is64 $($rest:ident)*) => { true };
    (@has fallback fallback $($rest:ident)*) => { true };
    (@has $want:ident $other:ident $($rest:ident)*) => { opcodes!(@has $want $($rest)*) };
}

opcodes! {
    // SPECIAL (opcode 0), by funct.
    Sll "sll" special(0x00), SPECIAL, Shift, Shift;
    Srl "srl" special(0x02), SPECIAL, Shift, Shift;
    Sra "sra" special(0x03), SPECIAL, Shift, Shift;
    Sllv "sllv" special(0x04), SPECIAL, ShiftV, Shift;
    Srlv "srlv" special(0x06), SPECIAL, ShiftV, Shift;
    Srav "srav" special(0x07), SPECIAL, ShiftV, Shift;
    Jr "jr" special(0x08), SPECIAL, Rs, Jump;
    Jalr "jalr" special(0x09), SPECIAL, Jalr, Jump;
    Syscall "syscall" special(0x0C), SPECIAL, Code, Trap;
    Break "break" special(0x0D), SPECIAL, Code, Trap;
    Sync "sync" special(0x0F), SPECIAL, None, Other;
    Mfhi "mfhi" special(0x10), SPECIAL, Rd, HiLo;
    Mthi "mthi" special(0x11), SPECIAL, Rs, HiLo;
    Mflo "mflo" special(0x12), SPECIAL, Rd, HiLo;
    Mtlo "mtlo" special(0x13), SPECIAL, Rs, HiLo;
    Dsllv "dsllv" special(0x14), SPECIAL, ShiftV, Shift, is64;
    Dsrlv "dsrlv" special(0x16), SPECIAL, ShiftV, Shift, is64;
    Dsrav "dsrav" special(0x17), SPECIAL, ShiftV, Shift, is64;
    Mult "mult" special(0x18), SPECIAL, RsRt, MulDiv;
    Multu "multu" special(0x19), SPECIAL, RsRt, MulDiv;
    Div "div" special(0x1A), SPECIAL, RsRt, MulDiv;
    Divu "divu" special(0x1B), SPECIAL, RsRt, MulDiv;
    Dmult "dmult" special(0x1C), SPECIAL, RsRt, MulDiv, is64;
    Dmultu "dmultu" special(0x1D), SPECIAL, RsRt, MulDiv, is64;
    Ddiv "ddiv" special(0x1E), SPECIAL, RsRt, MulDiv, is64;
    Ddivu "ddivu" special(0x1F), SPECIAL, RsRt, MulDiv, is64;
    Add "add" special(0x20), SPECIAL, RdRsRt, Alu;
    Addu "addu" special(0x21), SPECIAL, RdRsRt, Alu;
    Sub "sub" special(0x22), SPECIAL, RdRsRt, Alu;
    Subu "subu" special(0x23), SPECIAL, RdRsRt, Alu;
    And "and" special(0x24), SPECIAL, RdRsRt, Alu;
    Or "or" special(0x25), SPECIAL, RdRsRt, Alu;
    Xor "xor" special(0x26), SPECIAL, RdRsRt, Alu;
    Nor "nor" special(0x27), SPECIAL, RdRsRt, Alu;
    Slt "slt" special(0x2A), SPECIAL, RdRsRt, Alu;
    Sltu "sltu" special(0x2B), SPECIAL, RdRsRt, Alu;
    Dadd "dadd" special(0x2C), SPECIAL, RdRsRt, Alu, is64;
    Daddu "daddu" special(0x2D), SPECIAL, RdRsRt, Alu, is64;
    Dsub "dsub" special(0x2E), SPECIAL, RdRsRt, Alu, is64;
    Dsubu "dsubu" special(0x2F), SPECIAL, RdRsRt, Alu, is64;
    Tge "tge" special(0x30), SPECIAL, Trap, Trap;
    Tgeu "tgeu" special(0x31), SPECIAL, Trap, Trap;
    Tlt "tlt" special(0x32), SPECIAL, Trap, Trap;
    Tltu "tltu" special(0x33), SPECIAL, Trap, Trap;
    Teq "teq" special(0x34), SPECIAL, Trap, Trap;
    Tne "tne" special(0x36), SPECIAL, Trap, Trap;
    Dsll "dsll" special(0x38), SPECIAL, Shift, Shift, is64;
    Dsrl "dsrl" special(0x3A), SPECIAL, Shift, Shift, is64;
    Dsra "dsra" special(0x3B), SPECIAL, Shift, Shift, is64;
    Dsll32 "dsll32" special(0x3C), SPECIAL, Shift, Shift, is64;
    Dsrl32 "dsrl32" special(0x3E), SPECIAL, Shift, Shift, is64;
    Dsra32 "dsra32" special(0x3F), SPECIAL, Shift, Shift, is64;

    // REGIMM (opcode 1), by rt.
    Bltz "bltz" regimm(0x00), REGIMM, BranchRs, Branch;
    Bgez "bgez" regimm(0x01), REGIMM, BranchRs, Branch;
    Bltzl "bltzl" regimm(0x02), REGIMM, BranchRs, Branch;
    Bgezl "bgezl" regimm(0x03), REGIMM, BranchRs, Branch;
    Tgei "tgei" regimm(0x08), REGIMM, RsSimm, Trap;
    Tgeiu "tgeiu" regimm(0x09), REGIMM, RsSimm, Trap;
    Tlti "tlti" regimm(0x0A), REGIMM, RsSimm, Trap;
    Tltiu "tltiu" regimm(0x0B), REGIMM, RsSimm, Trap;
    Teqi "teqi" regimm(0x0C), REGIMM, RsSimm, Trap;
    Tnei "tnei" regimm(0x0E), REGIMM, RsSimm, Trap;
    Bltzal "bltzal" regimm(0x10), REGIMM, BranchRs, Branch;
    Bgezal "bgezal" regimm(0x11), REGIMM, BranchRs, Branch;
    Bltzall "bltzall" regimm(0x12), REGIMM, BranchRs, Branch;
    Bgezall "bgezall" regimm(0x13), REGIMM, BranchRs, Branch;

    // Primary opcodes.
    J "j" pri(0x02), PRI, Jump, Jump;
    Jal "jal" pri(0x03), PRI, Jump, Jump;
    Beq "beq" pri(0x04), PRI, BranchRsRt, Branch;
    Bne "bne" pri(0x05), PRI, BranchRsRt, Branch;
    Blez "blez" pri(0x06), PRI, BranchRs, Branch;
    Bgtz "bgtz" pri(0x07), PRI, BranchRs, Branch;
    Addi "addi" pri(0x08), PRI, RtRsSimm, Alu;
    Addiu "addiu" pri(0x09), PRI, RtRsSimm, Alu;
    Slti "slti" pri(0x0A), PRI, RtRsSimm, Alu;
    Sltiu "sltiu" pri(0x0B), PRI, RtRsSimm, Alu;
    Andi "andi" pri(0x0C), PRI, RtRsUimm, Alu;
    Ori "ori" pri(0x0D), PRI, RtRsUimm, Alu;
    Xori "xori" pri(0x0E), PRI, RtRsUimm, Alu;
    Lui "lui" pri(0x0F), PRI, RtUimm, Alu;

    // COP0 (opcode 0x10).
    Mfc0 "mfc0" cop0_rs(0x00), COP0_RS, Cop0Move, Cop0;
    Dmfc0 "dmfc0" cop0_rs(0x01), COP0_RS, Cop0Move, Cop0, is64;
    Mtc0 "mtc0" cop0_rs(0x04), COP0_RS, Cop0Move, Cop0;
    Dmtc0 "dmtc0" cop0_rs(0x05), COP0_RS, Cop0Move, Cop0, is64;
    Tlbr "tlbr" cop0_co(0x01), COP0_CO, None, Cop0;
    Tlbwi "tlbwi" cop0_co(0x02), COP0_CO, None, Cop0;
    Tlbwr "tlbwr" cop0_co(0x06), COP0_CO, None, Cop0;
    Tlbp "tlbp" cop0_co(0x08), COP0_CO, None, Cop0;
    // RFE is the R3000's return; on the R4000 it raises Reserved Instruction.
    Rfe "rfe" cop0_co(0x10), COP0_CO, None, Cop0;
    Eret "eret" cop0_co(0x18), COP0_CO, None, Cop0;
    // The R4600/MIPS32 WAIT: our documented extension (`../shared/docs/design.md` §3).
    Wait "wait" cop0_co(0x20), COP0_CO, None, Cop0;
    // Any other CO function is "invalid, but no RI" on the R4000: a no-op
    // once the coprocessor-usable check passes (`../shared/docs/r4000-reference.md` §5.5).
    Cop0Nop "c0" cop0_co(0x00), 0xFE00_0000, Cop, Cop0, fallback;

    Cop1 "cop1" pri(0x11), PRI, Cop, Cop;
    Cop2 "cop2" pri(0x12), PRI, Cop, Cop;
    Cop3 "cop3" pri(0x13), PRI, Cop, Cop;
    Beql "beql" pri(0x14), PRI, BranchRsRt, Branch;
    Bnel "bnel" pri(0x15), PRI, BranchRsRt, Branch;
    Blezl "blezl" pri(0x16), PRI, BranchRs, Branch;
    Bgtzl "bgtzl" pri(0x17), PRI, BranchRs, Branch;
    Daddi "daddi" pri(0x18), PRI, RtRsSimm, Alu, is64;
    Daddiu "daddiu" pri(0x19), PRI, RtRsSimm, Alu, is64;
    Ldl "ldl" pri(0x1A), PRI, Mem, Load, is64;
    Ldr "ldr" pri(0x1B), PRI, Mem, Load, is64;
    Lb "lb" pri(0x20), PRI, Mem, Load;
    Lh "lh" pri(0x21), PRI, Mem, Load;
    Lwl "lwl" pri(0x22), PRI, Mem, Load;
    Lw "lw" pri(0x23), PRI, Mem, Load;
    Lbu "lbu" pri(0x24), PRI, Mem, Load;
    Lhu "lhu" pri(0x25), PRI, Mem, Load;
    Lwr "lwr" pri(0x26), PRI, Mem, Load;
    Lwu "lwu" pri(0x27), PRI, Mem, Load, is64;
    Sb "sb" pri(0x28), PRI, Mem, Store;
    Sh "sh" pri(0x29), PRI, Mem, Store;
    Swl "swl" pri(0x2A), PRI, Mem, Store;
    Sw "sw" pri(0x2B), PRI, Mem, Store;
    Sdl "sdl" pri(0x2C), PRI, Mem, Store, is64;
    Sdr "sdr" pri(0x2D), PRI, Mem, Store, is64;
    Swr "swr" pri(0x2E), PRI, Mem, Store;
    Cache "cache" pri(0x2F), PRI, Cache, Cop0;
    Ll "ll" pri(0x30), PRI, Mem, Load;
    Lwc1 "lwc1" pri(0x31), PRI, CopMem, Cop;
    Lwc2 "lwc2" pri(0x32), PRI, CopMem, Cop;
    Lld "lld" pri(0x34), PRI, Mem, Load, is64;
    Ldc1 "ldc1" pri(0x35), PRI, CopMem, Cop;
    Ldc2 "ldc2" pri(0x36), PRI, CopMem, Cop;
    Ld "ld" pri(0x37), PRI, Mem, Load, is64;
    Sc "sc" pri(0x38), PRI, Mem, Store;
    Swc1 "swc1" pri(0x39), PRI, CopMem, Cop;
    Swc2 "swc2" pri(0x3A), PRI, CopMem, Cop;
    Scd "scd" pri(0x3C), PRI, Mem, Store, is64;
    Sdc1 "sdc1" pri(0x3D), PRI, CopMem, Cop;
    Sdc2 "sdc2" pri(0x3E), PRI, CopMem, Cop;
    Sd "sd" pri(0x3F), PRI, Mem, Store, is64;
}

impl Op {
    /// The table row of this operation.
    pub fn info(self) -> &'static OpInfo {
        // The table lists the variants in declaration order, so the
        // discriminant is the row index; `Reserved` has no row.
        OPCODES.get(self as usize).unwrap_or(&RESERVED_INFO)
    }

    pub(crate) fn name(self) -> &'static str {
        self.info().name
    }
}

static RESERVED_INFO: OpInfo = OpInfo {
    op: Op::Reserved,
    name: ".word",
    match_bits: 0,
    mask: 0,
    format: Format::None,
    class: Class::Other,
    is64: false,
    fallback: true,
    reads: 0,
};
