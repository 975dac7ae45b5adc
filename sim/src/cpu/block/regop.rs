//! Tier 2's register-only micro-ops for a translator that runs guest code
//! against a context of its own (the monitor's binary translator, `bt`):
//! ALU operations and branches and jumps, whose only effects are on the
//! general registers and the control flow, so they need no `ExecContext`.
//! The micro-op is tier 2's (`build::Uop`, its fields pre-extracted once,
//! when the caller's block is built); its semantics are the interpreter's
//! family handlers and tier 2's `transfer`, so nothing is written twice
//! but the table from micro-op to handler. [`MemOp`] is the same for tier
//! 2's aligned RAM loads and stores, whose memory path is the caller's.

use super::build::{Kind, Uop};
use super::ctx::transfer;
use crate::cpu::exec::{alu, mem, muldiv, Flow, Regs};
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
        op.kind.is_register_only().then_some(RegOp(op))
    }

    /// Whether it is a branch or jump (else its flow is always
    /// [`Flow::Next`]).
    #[inline(always)]
    pub fn transfers(self) -> bool {
        matches!(
            self.0.kind,
            Kind::Beq
                | Kind::Bne
                | Kind::Blez
                | Kind::Bgtz
                | Kind::Bltz
                | Kind::Bgez
                | Kind::J
                | Kind::Jal
                | Kind::Jr
                | Kind::Jalr
        )
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
        // Each arm writes its register, as tier 2's loop does: one dispatch.
        match op.kind {
            Kind::Sll => g[d] = alu::sll(rt, op.imm),
            Kind::Srl => g[d] = alu::srl(rt, op.imm),
            Kind::Sra => g[d] = alu::sra(rt, op.imm),
            Kind::Addu => g[d] = alu::addu(rs, rt),
            Kind::Subu => g[d] = alu::subu(rs, rt),
            Kind::And => g[d] = rs & rt,
            Kind::Or => g[d] = rs | rt,
            Kind::Xor => g[d] = rs ^ rt,
            Kind::Nor => g[d] = alu::nor(rs, rt),
            Kind::Slt => g[d] = alu::slt(rs, rt),
            Kind::Sltu => g[d] = alu::sltu(rs, rt),
            Kind::Addiu => g[t] = alu::addu(rs, op.simm()),
            Kind::Slti => g[t] = alu::slt(rs, op.simm()),
            Kind::Sltiu => g[t] = alu::sltu(rs, op.simm()),
            Kind::Andi => g[t] = rs & u64::from(op.imm),
            Kind::Ori => g[t] = rs | u64::from(op.imm),
            Kind::Xori => g[t] = rs ^ u64::from(op.imm),
            Kind::Lui => g[t] = alu::lui(op.imm),
            Kind::Nop => {}
            _ => {
                return match transfer(&op, || pc, g, rs, rt) {
                    Some(target) => Flow::Taken(target),
                    None => Flow::NotTaken,
                }
            }
        };
        Flow::Next
    }
}

/// An aligned load or store of tier 2's RAM micro-ops (LW, LH, LHU, LB,
/// LBU into a register other than r0; SW, SH, SB), pre-extracted, for a
/// translator whose memory path is its own: it computes the address
/// (`addr`), checks the alignment and makes the access of `width` bytes,
/// then hands a load's raw value to `complete`. Anything its path does not
/// take (a misaligned address, a device, a fault) goes through `execute`,
/// which raises what the hardware would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemOp(Uop);

impl MemOp {
    /// `insn`'s micro-op if it is one of those aligned accesses.
    pub fn of(insn: &Insn) -> Option<MemOp> {
        let op = Uop::of(insn);
        matches!(
            op.kind,
            Kind::Lw | Kind::Lh | Kind::Lhu | Kind::Lb | Kind::Lbu | Kind::Sw | Kind::Sh | Kind::Sb
        )
        .then_some(MemOp(op))
    }

    /// The effective address: rs plus the sign-extended offset.
    #[inline(always)]
    pub fn addr(self, regs: &Regs) -> u64 {
        regs.gpr[usize::from(self.0.s & 31)].wrapping_add(self.0.simm())
    }

    /// Bytes accessed.
    #[inline(always)]
    pub fn width(self) -> u8 {
        match self.0.kind {
            Kind::Lw | Kind::Sw => 4,
            Kind::Lh | Kind::Lhu | Kind::Sh => 2,
            _ => 1,
        }
    }

    #[inline(always)]
    pub fn is_store(self) -> bool {
        matches!(self.0.kind, Kind::Sw | Kind::Sh | Kind::Sb)
    }

    /// What a store writes: rt (its low `width` bytes).
    #[inline(always)]
    pub fn value(self, regs: &Regs) -> u64 {
        regs.gpr[usize::from(self.0.t & 31)]
    }

    /// Finishes a load whose access read `raw` (zero-extended): rt gets it
    /// extended as the interpreter extends it. Returns rt, the register
    /// the load-use interlock watches.
    #[inline(always)]
    pub fn complete(self, regs: &mut Regs, raw: u64) -> u8 {
        let v = match self.0.kind {
            Kind::Lw => mem::extend::<4, true>(raw),
            Kind::Lh => mem::extend::<2, true>(raw),
            Kind::Lb => mem::extend::<1, true>(raw),
            _ => raw,
        };
        let t = self.0.t & 31;
        regs.gpr[usize::from(t)] = v;
        t
    }
}

/// MULT, MULTU, and MFHI and MFLO into a register other than r0, of tier
/// 2's micro-ops, pre-extracted, for a translator whose cycle model is its
/// own: `run` does what `execute` does to the registers; the caller does
/// what `execute` asks of its context around it (for a read of HI or LO,
/// the wait for a multiplication in flight, `ExecContext::hilo_read`, before;
/// for a multiplication, `ExecContext::muldiv` with [`MulDiv::Mult`](crate::cpu::exec::MulDiv::Mult)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HiLoOp(Uop);

impl HiLoOp {
    /// `insn`'s micro-op if it is one of those.
    pub fn of(insn: &Insn) -> Option<HiLoOp> {
        let op = Uop::of(insn);
        matches!(op.kind, Kind::Mult | Kind::Multu | Kind::Mfhi | Kind::Mflo).then_some(HiLoOp(op))
    }

    /// Whether it starts a multiplication (else it reads HI or LO).
    #[inline(always)]
    pub fn starts(self) -> bool {
        matches!(self.0.kind, Kind::Mult | Kind::Multu)
    }

    /// Runs it on `regs` (the caller advances the PC: its flow is
    /// [`Flow::Next`]).
    #[inline(always)]
    pub fn run(self, regs: &mut Regs) {
        let op = self.0;
        let (rs, rt) = (
            regs.gpr[usize::from(op.s & 31)],
            regs.gpr[usize::from(op.t & 31)],
        );
        match op.kind {
            Kind::Mult => (regs.hi, regs.lo) = muldiv::mult(rs, rt),
            Kind::Multu => (regs.hi, regs.lo) = muldiv::multu(rs, rt),
            Kind::Mfhi => regs.gpr[usize::from(op.d & 31)] = regs.hi,
            _ => regs.gpr[usize::from(op.d & 31)] = regs.lo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HiLoOp, MemOp, RegOp};
    use crate::cpu::exec::{execute, ExecContext, Flow, Regs};
    use crate::cpu::Exception;
    use crate::isa::decode;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

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
        let mut rng = SmallRng::seed_from_u64(0x2545_F491_4F6C_DD1D);
        let mut next = || rng.gen::<u64>();
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
            assert_eq!(op.transfers(), flow != Flow::Next, "{word:#010x}");
        }
        assert!(ops > 10_000 && kinds.len() >= 25, "{ops} ops, {kinds:?}");
    }

    /// Random MULT, MULTU, MFHI and MFLO words: every one with a micro-op
    /// leaves the registers (HI and LO too) as `execute` does, and asks
    /// its context for what the caller models around `run`: a
    /// multiplication's start, or the wait of a read, and nothing else.
    #[test]
    fn hilo_ops_run_as_execute_does() {
        use crate::cpu::exec::MulDiv;
        #[derive(Default)]
        struct Seen {
            started: Vec<MulDiv>,
            waits: u32,
            other: Untouched,
        }
        impl ExecContext for Seen {
            fn allow64(&self) -> bool {
                false
            }
            fn cop_usable(&self, _n: u8) -> bool {
                false
            }
            fn load(&mut self, a: u64, w: u8) -> Result<u64, Exception> {
                self.other.load(a, w)
            }
            fn store(&mut self, a: u64, w: u8, v: u64) -> Result<(), Exception> {
                self.other.store(a, w, v)
            }
            fn load_linked(&mut self, a: u64, w: u8) -> Result<u64, Exception> {
                self.other.load_linked(a, w)
            }
            fn store_conditional(&mut self, a: u64, w: u8, v: u64) -> Result<bool, Exception> {
                self.other.store_conditional(a, w, v)
            }
            fn read_cp0(&mut self, r: u32) -> u64 {
                self.other.read_cp0(r)
            }
            fn write_cp0(&mut self, r: u32, v: u64, d: bool) {
                self.other.write_cp0(r, v, d);
            }
            fn tlbr(&mut self) {
                self.other.tlbr();
            }
            fn tlbwi(&mut self) {
                self.other.tlbwi();
            }
            fn tlbwr(&mut self) {
                self.other.tlbwr();
            }
            fn tlbp(&mut self) {
                self.other.tlbp();
            }
            fn eret(&mut self) -> u64 {
                self.other.eret()
            }
            fn cache(&mut self, o: u32, a: u64) -> Result<(), Exception> {
                self.other.cache(o, a)
            }
            fn loaded(&mut self, r: crate::isa::Reg) {
                self.other.loaded(r);
            }
            fn muldiv(&mut self, kind: MulDiv) {
                self.started.push(kind);
            }
            fn hilo_read(&mut self) {
                self.waits += 1;
            }
        }
        let mut rng = SmallRng::seed_from_u64(0x6A09_E667_F3BC_C908);
        let mut next = || rng.gen::<u64>();
        let mut ran = 0;
        for _ in 0..20_000 {
            let r = next();
            // SPECIAL MFHI 0x10, MFLO 0x12, MULT 0x18, MULTU 0x19.
            let funct = [0x10, 0x12, 0x18, 0x19][(r % 4) as usize];
            let (rs, rt, rd) = (
                (r >> 8) as u32 & 31,
                (r >> 16) as u32 & 31,
                (r >> 24) as u32 & 31,
            );
            let word = rs << 21 | rt << 16 | rd << 11 | funct;
            let insn = decode(word);
            let Some(op) = HiLoOp::of(&insn) else {
                // Only a read into r0 stays with the interpreter.
                assert!(rd == 0 && funct < 0x18, "{word:#010x}");
                continue;
            };
            let mut regs = Regs::default();
            for g in regs.gpr.iter_mut().skip(1) {
                *g = next() as i32 as i64 as u64;
            }
            (regs.hi, regs.lo) = (next(), next());
            regs.jump_to(0xFFFF_FFFF_8000_1000);
            let mut want = regs.clone();
            let mut seen = Seen::default();
            let flow =
                execute(&mut want, &mut seen, insn, 0xFFFF_FFFF_8000_1000).expect("no exception");
            assert_eq!(flow, Flow::Next);
            assert_eq!(seen.other.uses, 0, "{word:#010x}");
            if op.starts() {
                assert_eq!(
                    (seen.started.as_slice(), seen.waits),
                    (&[MulDiv::Mult][..], 0)
                );
            } else {
                assert_eq!((seen.started.len(), seen.waits), (0, 1), "{word:#010x}");
            }
            op.run(&mut regs);
            assert_eq!(
                (regs.gpr, regs.hi, regs.lo),
                (want.gpr, want.hi, want.lo),
                "{word:#010x}"
            );
            ran += 1;
        }
        assert!(ran > 15_000, "{ran}");
    }

    /// A context with 64 bytes of big-endian RAM at 0x1000, recording
    /// the register `loaded` names.
    struct Ram {
        bytes: [u8; 64],
        loaded: Option<u32>,
    }

    impl Ram {
        fn at(&self, vaddr: u64, width: u8) -> std::ops::Range<usize> {
            let a = (vaddr - 0x1000) as usize;
            a..a + usize::from(width)
        }
    }

    impl ExecContext for Ram {
        fn allow64(&self) -> bool {
            false
        }
        fn cop_usable(&self, _n: u8) -> bool {
            false
        }
        fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
            let r = self.at(vaddr, width);
            Ok(self.bytes[r].iter().fold(0, |v, &b| v << 8 | u64::from(b)))
        }
        fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
            let r = self.at(vaddr, width);
            let n = r.len();
            for (i, b) in self.bytes[r].iter_mut().enumerate() {
                *b = (value >> (8 * (n - 1 - i))) as u8;
            }
            Ok(())
        }
        fn load_linked(&mut self, _: u64, _: u8) -> Result<u64, Exception> {
            unreachable!("no LL among the micro-ops")
        }
        fn store_conditional(&mut self, _: u64, _: u8, _: u64) -> Result<bool, Exception> {
            unreachable!("no SC among the micro-ops")
        }
        fn read_cp0(&mut self, _: u32) -> u64 {
            unreachable!()
        }
        fn write_cp0(&mut self, _: u32, _: u64, _: bool) {}
        fn tlbr(&mut self) {}
        fn tlbwi(&mut self) {}
        fn tlbwr(&mut self) {}
        fn tlbp(&mut self) {}
        fn eret(&mut self) -> u64 {
            0
        }
        fn cache(&mut self, _: u32, _: u64) -> Result<(), Exception> {
            Ok(())
        }
        fn loaded(&mut self, rt: crate::isa::Reg) {
            self.loaded = Some(rt.number());
        }
        fn muldiv(&mut self, _: crate::cpu::exec::MulDiv) {}
        fn hilo_read(&mut self) {}
    }

    /// Random aligned loads and stores of every micro-op kind: what a
    /// caller does with `MemOp` (address, width, access, `complete`) leaves
    /// the registers, the memory and the interlock's register as `execute`
    /// does.
    #[test]
    fn memory_ops_run_as_execute_does() {
        use crate::isa::Op;
        let ops = [
            Op::Lw,
            Op::Lh,
            Op::Lhu,
            Op::Lb,
            Op::Lbu,
            Op::Sw,
            Op::Sh,
            Op::Sb,
        ];
        let codes = [0x23, 0x21, 0x25, 0x20, 0x24, 0x2B, 0x29, 0x28];
        let mut rng = SmallRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.gen::<u64>();
        let mut ran = 0;
        for _ in 0..20_000 {
            let r = next();
            let which = (r % 8) as usize;
            let (rs, rt) = ((r >> 8) as u32 & 31, (r >> 16) as u32 & 31);
            let off = (r >> 24) as u16 as i16 % 32;
            let word = codes[which] << 26 | rs << 21 | rt << 16 | u32::from(off as u16);
            let insn = decode(word);
            assert_eq!(insn.op, ops[which]);
            let Some(op) = MemOp::of(&insn) else {
                // Only a load into r0 stays with the interpreter.
                assert!(rt == 0 && which < 5, "{word:#010x}");
                continue;
            };
            let mut regs = Regs::default();
            for g in regs.gpr.iter_mut().skip(1) {
                *g = next() as i32 as i64 as u64;
            }
            // The base lands the address in the RAM.
            let base = 0x1000 + 16 + (next() % 32) as i64 - i64::from(off);
            if rs != 0 {
                regs.gpr[rs as usize] = base as u64;
            }
            let ea = op.addr(&regs);
            if rs == 0 || ea % u64::from(op.width()) != 0 {
                continue;
            }
            let mut fill = [0u8; 64];
            fill.iter_mut().for_each(|b| *b = next() as u8);
            let mut want = (
                regs.clone(),
                Ram {
                    bytes: fill,
                    loaded: None,
                },
            );
            execute(&mut want.0, &mut want.1, insn, 0x8000_1000).expect("aligned, in RAM");
            let mut got = Ram {
                bytes: fill,
                loaded: None,
            };
            if op.is_store() {
                got.store(ea, op.width(), op.value(&regs)).expect("in RAM");
            } else {
                let raw = got.load(ea, op.width()).expect("in RAM");
                got.loaded = Some(u32::from(op.complete(&mut regs, raw)));
            }
            assert_eq!(regs.gpr, want.0.gpr, "{word:#010x}");
            assert_eq!(got.bytes, want.1.bytes, "{word:#010x}");
            assert_eq!(got.loaded, want.1.loaded, "{word:#010x}");
            ran += 1;
        }
        assert!(ran > 5_000, "{ran}");
    }
}
