//! The block IR: what the simulator's tier 2 hands over to be compiled.
//!
//! A block is a straight run of MIPS instructions of one page, each with the
//! static cycle count at its end, in the order they run when every
//! conditional branch falls through and every followed jump is taken. The
//! IR says nothing about the guest's memory or coprocessors: an instruction
//! the compiled code cannot do alone is [`Op::Interp`] (the caller's
//! interpreter runs it and the rest of the block), and memory goes through
//! the caller's [`crate::Memory`].

/// A register-register ALU operation; 32-bit results are sign-extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alu {
    Addu,
    Subu,
    And,
    Or,
    Xor,
    Nor,
    /// Signed 64-bit compare.
    Slt,
    /// Unsigned 64-bit compare.
    Sltu,
}

/// A register-immediate ALU operation; the immediate is already extended to
/// 64 bits as the instruction needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imm {
    /// 32-bit add, sign-extended (ADDIU).
    Addu,
    Slt,
    Sltu,
    And,
    Or,
    Xor,
}

/// A 32-bit shift by a constant; the result is sign-extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shift {
    Sll,
    Srl,
    Sra,
}

/// A conditional branch's test (of `rs`, or of `rs` against `rt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Eq,
    Ne,
    /// rs <= 0, signed.
    Lez,
    Gtz,
    Ltz,
    Gez,
}

/// One instruction. Register numbers are 0..32; a write to r0 is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Costs time, changes nothing.
    Nop,
    /// The caller's interpreter must run this instruction: the compiled code
    /// stops before it ([`crate::Exit::Resume`]).
    Interp,
    Alu {
        op: Alu,
        d: u8,
        s: u8,
        t: u8,
    },
    Imm {
        op: Imm,
        t: u8,
        s: u8,
        imm: u64,
    },
    Shift {
        op: Shift,
        d: u8,
        t: u8,
        sa: u8,
    },
    /// rt = a constant (LUI).
    Const {
        t: u8,
        value: u64,
    },
    /// rt = the `width`-byte value at rs + off, extended.
    Load {
        t: u8,
        s: u8,
        off: u64,
        width: u8,
        signed: bool,
    },
    /// The low `width` bytes of rt to rs + off.
    Store {
        t: u8,
        s: u8,
        off: u64,
        width: u8,
    },
    /// Taken: on to the slot, then to the slot's address + `off`.
    Branch {
        cond: Cond,
        s: u8,
        t: u8,
        off: u64,
    },
    /// J/JAL: the 26-bit `index` in the slot's 256 MB region; `link`: r31
    /// gets the address past the slot.
    Jump {
        index: u32,
        link: bool,
    },
    /// JR/JALR: to rs; the link (if `link` is not 0) is written after rs is
    /// read.
    JumpReg {
        s: u8,
        link: u8,
    },
    /// MULT/MULTU: HI/LO = the 32×32-bit product of rs and rt, each half
    /// sign-extended; busy until [`Block::mul_busy`] cycles after this
    /// instruction's start.
    Mul {
        signed: bool,
        s: u8,
        t: u8,
    },
    /// MFHI/MFLO: waits for HI/LO (until their ready cycle less
    /// [`Block::issue`]), then rd = HI or LO.
    MoveFrom {
        d: u8,
        hi: bool,
    },
}

/// An instruction of a block and what is known of it before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    /// Its word index in the page (its address is the page's base + 4 ×
    /// `word`).
    pub word: u16,
    /// Static cycles from the block's start to this instruction's start
    /// (its own stall included).
    pub start: u32,
    /// Static cycles from the block's start to this instruction's end
    /// (issue cycles and in-block stalls).
    pub end: u32,
    /// It is the delay slot of the transfer before it: the block leaves
    /// after it if that transfer was taken, unless `follow`.
    pub slot: bool,
    /// It is the slot of a jump whose target the block goes on with.
    pub follow: bool,
    /// It is a store after which the block must ask [`crate::Memory::store`]
    /// whether to stop (not the block's last instruction).
    pub check: bool,
}

/// A block to compile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub insns: Vec<Insn>,
    /// Cycles a taken transfer adds.
    pub taken_cost: u64,
    /// Cycles from a multiply's start until HI/LO are ready.
    pub mul_busy: u64,
    /// An instruction's issue cycles (an MFHI's wait ends this much before
    /// HI/LO are ready).
    pub issue: u64,
    /// The caller's name for the block: a run reports the tag of the block
    /// it ended in ([`crate::State::tag`]), which is another block than the
    /// one it started with when blocks are chained ([`crate::Jit::link`]).
    pub tag: u32,
}
