//! Tier 2's register-only micro-ops for a translator that runs guest code
//! against a context of its own (the monitor's binary translator, `bt`):
//! ALU operations and branches and jumps, whose only effects are on the
//! general registers and the control flow, so they need no `ExecContext`.
//! The micro-op is tier 2's (`build::Uop`, its fields pre-extracted once,
//! when the caller's block is built); its semantics are the interpreter's
//! family handlers and tier 2's `transfer`, so nothing is written twice
//! but the table from micro-op to handler.

use super::build::{Kind, Uop};
use super::transfer;
use crate::cpu::exec::{alu, Flow, Regs};
use crate::isa::Insn;

/// A register-only instruction, pre-extracted (see the module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegOp(Uop);

impl RegOp {
    /// `insn`'s micro-op if it touches nothing but the general registers
    /// and the control flow and cannot raise an exception: the ALU
    /// operations tier 2 extracts (an ALU write to r0 is a no-op) and its
    /// branches and jumps. `None` for everything else (memory, HI/LO,
    /// CP0, trapping and 64-bit forms, branch-likely), which the caller
    /// runs through `execute`.
    pub fn of(insn: &Insn) -> Option<RegOp> {
        let op = Uop::of(insn);
        match op.kind {
            Kind::Generic
            | Kind::Lw
            | Kind::Lh
            | Kind::Lhu
            | Kind::Lb
            | Kind::Lbu
            | Kind::Sw
            | Kind::Sh
            | Kind::Sb
            | Kind::Mult
            | Kind::Multu
            | Kind::Mfhi
            | Kind::Mflo => None,
            _ => Some(RegOp(op)),
        }
    }

    /// Runs the instruction at `pc` on `regs` (its general registers only:
    /// the caller advances the PC by the flow, as after `execute`, whose
    /// flow it is).
    #[inline(always)]
    pub fn run(self, regs: &mut Regs, pc: u64) -> Flow {
        let op = self.0;
        let g = &mut regs.gpr;
        let (d, s, t) = (
            usize::from(op.d & 31),
            usize::from(op.s & 31),
            usize::from(op.t & 31),
        );
        let (rs, rt) = (g[s], g[t]);
        let (dest, v) = match op.kind {
            Kind::Sll => (d, alu::sll(rt, op.imm)),
            Kind::Srl => (d, alu::srl(rt, op.imm)),
            Kind::Sra => (d, alu::sra(rt, op.imm)),
            Kind::Addu => (d, alu::addu(rs, rt)),
            Kind::Subu => (d, alu::subu(rs, rt)),
            Kind::And => (d, rs & rt),
            Kind::Or => (d, rs | rt),
            Kind::Xor => (d, rs ^ rt),
            Kind::Nor => (d, alu::nor(rs, rt)),
            Kind::Slt => (d, alu::slt(rs, rt)),
            Kind::Sltu => (d, alu::sltu(rs, rt)),
            Kind::Addiu => (t, alu::addu(rs, op.simm())),
            Kind::Slti => (t, alu::slt(rs, op.simm())),
            Kind::Sltiu => (t, alu::sltu(rs, op.simm())),
            Kind::Andi => (t, rs & u64::from(op.imm)),
            Kind::Ori => (t, rs | u64::from(op.imm)),
            Kind::Xori => (t, rs ^ u64::from(op.imm)),
            Kind::Lui => (t, alu::lui(op.imm)),
            Kind::Nop => return Flow::Next,
            _ => {
                return match transfer(&op, || pc, g, rs, rt) {
                    Some(target) => Flow::Taken(target),
                    None => Flow::NotTaken,
                }
            }
        };
        g[dest] = v;
        Flow::Next
    }
}

#[cfg(test)]
mod tests {
    use super::RegOp;
    use crate::cpu::exec::{execute, ExecContext, Flow, Regs};
    use crate::cpu::Exception;
    use crate::isa::decode;

    /// A context that counts every use: a register-only instruction makes
    /// none (`allow64` is allowed: 64-bit forms have no micro-op, but
    /// asking is harmless).
    #[derive(Default)]
    struct Untouched {
        uses: u32,
    }

    impl Untouched {
        fn fault(&mut self) -> Exception {
            self.uses += 1;
            Exception::address(crate::cpu::ExcCode::AdEL, 0)
        }
    }

    impl ExecContext for Untouched {
        fn allow64(&self) -> bool {
            true
        }
        fn cop_usable(&self, _n: u8) -> bool {
            true
        }
        fn load(&mut self, _: u64, _: u8) -> Result<u64, Exception> {
            Err(self.fault())
        }
        fn store(&mut self, _: u64, _: u8, _: u64) -> Result<(), Exception> {
            Err(self.fault())
        }
        fn load_linked(&mut self, _: u64, _: u8) -> Result<u64, Exception> {
            Err(self.fault())
        }
        fn store_conditional(&mut self, _: u64, _: u8, _: u64) -> Result<bool, Exception> {
            Err(self.fault())
        }
        fn read_cp0(&mut self, _: u32) -> u64 {
            self.uses += 1;
            0
        }
        fn write_cp0(&mut self, _: u32, _: u64, _: bool) {
            self.uses += 1;
        }
        fn tlbr(&mut self) {
            self.uses += 1;
        }
        fn tlbwi(&mut self) {
            self.uses += 1;
        }
        fn tlbwr(&mut self) {
            self.uses += 1;
        }
        fn tlbp(&mut self) {
            self.uses += 1;
        }
        fn eret(&mut self) -> u64 {
            self.uses += 1;
            0
        }
        fn cache(&mut self, _: u32, _: u64) -> Result<(), Exception> {
            Err(self.fault())
        }
        fn loaded(&mut self, _: crate::isa::Reg) {
            self.uses += 1;
        }
        fn muldiv(&mut self, _: crate::cpu::exec::MulDiv) {
            self.uses += 1;
        }
        fn hilo_read(&mut self) {
            self.uses += 1;
        }
    }

    /// Random words (primary opcodes 0..=15 and REGIMM/SPECIAL functions,
    /// where the ALU and branch forms are) with random register values:
    /// every one with a micro-op does what `execute` does, registers, flow
    /// and all, and touches nothing else.
    #[test]
    fn register_ops_run_as_execute_does() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut ops, mut kinds) = (0, std::collections::HashSet::new());
        for _ in 0..200_000 {
            let r = next();
            // Opcodes 0..=15: SPECIAL, REGIMM, the jumps, branches, ALU
            // immediates.
            let word = (r as u32 & 0x03FF_FFFF) | ((r >> 32) as u32 & 15) << 26;
            let insn = decode(word);
            let Some(op) = RegOp::of(&insn) else {
                continue;
            };
            ops += 1;
            kinds.insert(insn.op);
            let mut regs = Regs::default();
            for (k, g) in regs.gpr.iter_mut().enumerate().skip(1) {
                let v = next();
                // Sign-extended 32-bit values, as 32-bit code holds, and
                // some equal pairs so branches go both ways.
                *g = if k % 4 == 0 {
                    7
                } else {
                    v as i32 as i64 as u64
                };
            }
            let pc = 0xFFFF_FFFF_8000_1000 + (next() & 0xFFC);
            regs.jump_to(pc);
            let mut want = regs.clone();
            let mut ctx = Untouched::default();
            let flow = execute(&mut want, &mut ctx, insn, pc).expect("no exception");
            assert_eq!(ctx.uses, 0, "{word:#010x} used its context");
            let got_flow = op.run(&mut regs, pc);
            assert_eq!(got_flow, flow, "{word:#010x}");
            assert_eq!(regs.gpr, want.gpr, "{word:#010x}");
            assert!(flow != Flow::Annul);
        }
        assert!(ops > 10_000 && kinds.len() >= 25, "{ops} ops, {kinds:?}");
    }
}
