//! Built-in bare-metal workloads, assembled with the in-crate assembler, for
//! benchmarks and smoke tests that must not depend on the cross toolchain.

use crate::isa::asm::{Asm, Operands};
use crate::isa::{Op, Reg};

/// A mixed integer loop: loads, stores, ALU and shift operations, a
/// multiply, taken and untaken branches, and a call/return per iteration,
/// over a 4 KB array at physical 2 MB. Runs `outer` passes of 512 pairs,
/// leaves a checksum in `v0` and halts with status 0.
pub fn mixed_integer(origin: u32, outer: u32) -> Asm {
    use Reg as R;
    let mut a = Asm::new(origin);
    a.li(R::S0, 0x8020_0000); // array base (physical 2 MB)
    a.li(R::S1, outer);
    a.imm(Op::Addiu, R::V0, R::ZERO, 0);
    // Fill the array with i * 3.
    a.imm(Op::Addiu, R::T0, R::ZERO, 0);
    a.label("fill");
    a.shift(Op::Sll, R::T1, R::T0, 2);
    a.r3(Op::Addu, R::T1, R::T1, R::S0);
    a.r3(Op::Addu, R::T2, R::T0, R::T0);
    a.r3(Op::Addu, R::T2, R::T2, R::T0);
    a.mem(Op::Sw, R::T2, 0, R::T1);
    a.imm(Op::Addiu, R::T0, R::T0, 1);
    a.imm(Op::Slti, R::AT, R::T0, 1024);
    a.branch(Op::Bne, R::AT, R::ZERO, "fill");
    a.nop();
    a.label("outer");
    a.r3(Op::Addu, R::T0, R::S0, R::ZERO);
    a.imm(Op::Addiu, R::T3, R::S0, 4096);
    a.label("inner");
    a.mem(Op::Lw, R::T1, 0, R::T0);
    a.mem(Op::Lw, R::T2, 4, R::T0);
    a.r3(Op::Xor, R::T4, R::T1, R::V0);
    a.shift(Op::Srl, R::T5, R::T4, 3);
    a.r3(Op::Addu, R::V0, R::V0, R::T5);
    a.imm(Op::Andi, R::T6, R::T1, 7);
    a.branch(Op::Beq, R::T6, R::ZERO, "skip");
    a.r3(Op::Subu, R::V0, R::V0, R::T2);
    a.jump(Op::Jal, "mix");
    a.nop();
    a.label("skip");
    a.imm(Op::Addiu, R::T1, R::T1, 1);
    a.mem(Op::Sw, R::T1, 0, R::T0);
    a.imm(Op::Addiu, R::T0, R::T0, 8);
    a.branch(Op::Bne, R::T0, R::T3, "inner");
    a.nop();
    a.imm(Op::Addiu, R::S1, R::S1, -1);
    a.branch(Op::Bgtz, R::S1, R::ZERO, "outer");
    a.nop();
    // Halt with status 0.
    a.li(R::K1, 0xB000_0010);
    a.mem(Op::Sw, R::ZERO, 0, R::K1);
    a.nop();
    a.label("mix");
    a.rs_rt(Op::Multu, R::V0, R::T2);
    a.emit(
        Op::Mflo,
        Operands {
            rd: R::T7.number(),
            ..Operands::default()
        },
    );
    a.r3(Op::Addu, R::V0, R::V0, R::T7);
    a.emit(
        Op::Jr,
        Operands {
            rs: R::RA.number(),
            ..Operands::default()
        },
    );
    a.nop();
    a
}
