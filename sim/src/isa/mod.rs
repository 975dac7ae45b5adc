//! The instruction set: one encoding table (`opcodes`) feeding the decoder,
//! the disassembler and the assembler.

pub mod asm;
pub mod decode;
pub mod disasm;
mod insn;
mod opcodes;

pub use decode::decode;
pub use insn::{Insn, Reg};
pub use opcodes::{Class, Format, Op, OpInfo, OPCODES};
