//! Instruction semantics, written once and generic over an [`ExecContext`].
//!
//! The native CPU runs them against the real CP0, TLB and bus; the monitor's
//! emulation engine runs the same code against a virtual CPU (`../shared/docs/design.md` §3,
//! "one interpreter, two users"). Semantics follow `../shared/docs/r4000-reference.md` §5.
//!
//! [`execute`] is only the dispatch: each instruction family has its module
//! of small handlers ([`alu`]: shifts, ALU, traps; [`branch`]: branches and
//! jumps; [`mem`]: loads and stores; [`muldiv`]: multiply/divide and HI/LO;
//! [`cop`]: CP0, system calls and the absent coprocessors). The pure ones
//! (results of register operands, branch conditions and targets, load
//! extension) are also what tier 2's micro-ops call, so every tier shares
//! one definition of each instruction.

pub(crate) mod alu;
pub(crate) mod branch;
mod cop;
pub(crate) mod mem;
pub(crate) mod muldiv;

use super::exception::{ExcCode, Exception};
use crate::isa::{Insn, Op, Reg};

/// Architectural registers that every context shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regs {
    pub gpr: [u64; 32],
    pub hi: u64,
    pub lo: u64,
    /// Address of the instruction about to execute.
    pub pc: u64,
    /// Address of the instruction after it (the branch target once a taken
    /// branch has executed its delay slot's predecessor).
    pub npc: u64,
    /// The instruction at `pc` sits in a branch delay slot.
    pub delay_slot: bool,
}

impl Default for Regs {
    fn default() -> Self {
        Regs {
            gpr: [0; 32],
            hi: 0,
            lo: 0,
            pc: 0,
            npc: 4,
            delay_slot: false,
        }
    }
}

impl Regs {
    #[inline(always)]
    pub fn get(&self, r: Reg) -> u64 {
        self.gpr[r.index() & 31]
    }

    #[inline(always)]
    pub fn set(&mut self, r: Reg, v: u64) {
        self.gpr[r.index() & 31] = v;
    }

    /// Moves past an instruction that completed with `flow`: into a delay
    /// slot, past an annulled one, or to a transfer's target.
    #[inline(always)]
    pub fn advance(&mut self, flow: Flow) {
        match flow {
            Flow::Next | Flow::Wait => {
                self.pc = self.npc;
                self.npc = self.npc.wrapping_add(4);
                self.delay_slot = false;
            }
            Flow::Taken(target) => {
                self.pc = self.npc;
                self.npc = target;
                self.delay_slot = true;
            }
            Flow::NotTaken => {
                self.pc = self.npc;
                self.npc = self.npc.wrapping_add(4);
                self.delay_slot = true;
            }
            Flow::Annul => {
                self.pc = self.npc.wrapping_add(4);
                self.npc = self.pc.wrapping_add(4);
                self.delay_slot = false;
            }
            Flow::Jump(target) => self.jump_to(target),
        }
    }

    /// Moves execution to `pc` with no delay slot pending.
    pub fn jump_to(&mut self, pc: u64) {
        self.pc = pc;
        self.npc = pc.wrapping_add(4);
        self.delay_slot = false;
    }
}

/// What an instruction did to control flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Fall through.
    Next,
    /// A taken branch or jump: the delay slot runs, then the target.
    Taken(u64),
    /// A branch that was not taken: the delay slot still runs.
    NotTaken,
    /// A branch-likely that was not taken: the delay slot is annulled.
    Annul,
    /// A transfer with no delay slot (ERET).
    Jump(u64),
    /// WAIT: idle until an interrupt is pending.
    Wait,
}

/// Everything an instruction may touch besides [`Regs`].
pub trait ExecContext {
    /// 64-bit operations legal in the current mode (§1.2).
    fn allow64(&self) -> bool;
    /// Coprocessor `n` usable in the current mode (§5.6).
    fn cop_usable(&self, n: u8) -> bool;
    /// An aligned load of `width` bytes (1, 2, 4 or 8), zero-extended.
    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception>;
    /// An aligned store of the low `width` bytes of `value`.
    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception>;
    /// LL/LLD: load and set the link.
    fn load_linked(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception>;
    /// SC/SCD: store if the link holds; the result says whether it did.
    fn store_conditional(&mut self, vaddr: u64, width: u8, value: u64) -> Result<bool, Exception>;
    /// The full value of CP0 register `reg`.
    fn read_cp0(&mut self, reg: u32) -> u64;
    /// MTC0 (`dword` false, value already sign-extended) or DMTC0.
    fn write_cp0(&mut self, reg: u32, value: u64, dword: bool);
    fn tlbr(&mut self);
    fn tlbwi(&mut self);
    fn tlbwr(&mut self);
    fn tlbp(&mut self);
    /// ERET: returns the PC to continue at.
    fn eret(&mut self) -> u64;
    /// CACHE: `op` is the rt field.
    fn cache(&mut self, op: u32, vaddr: u64) -> Result<(), Exception>;

    /// Hooks for a cycle model; a context without one ignores them.
    /// A load wrote `rt`, which the next instruction may interlock on.
    #[inline(always)]
    fn loaded(&mut self, _rt: Reg) {}
    /// A multiply or divide started; HI/LO are busy for its latency.
    #[inline(always)]
    fn muldiv(&mut self, _kind: MulDiv) {}
    /// MFHI/MFLO read HI or LO.
    #[inline(always)]
    fn hilo_read(&mut self) {}
}

/// The multiply/divide latency classes of the cycle model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MulDiv {
    Mult,
    Div,
    Dmult,
    Ddiv,
}

/// Reserved Instruction: an encoding with no meaning here, or a 64-bit
/// operation where 64-bit operations are not allowed.
#[inline(always)]
fn ri() -> Exception {
    Exception::new(ExcCode::Ri)
}

/// Reserved Instruction unless 64-bit operations are allowed (§1.2).
#[inline(always)]
fn need64<C: ExecContext>(c: &C) -> Result<(), Exception> {
    if c.allow64() {
        Ok(())
    } else {
        Err(ri())
    }
}

/// Executes one decoded instruction, found at `pc`. On `Err` no
/// architectural state has changed (the destination of a trapping ADD is not
/// written, §5.7). The caller moves the PC according to the returned flow
/// (see [`Regs::advance`]); `r.pc` is not read, so a caller may keep the PC
/// elsewhere while it runs.
///
/// One arm per instruction, each a call into its family: the single
/// `match` is the only dispatch.
#[inline(always)]
pub fn execute<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: Insn,
    pc: u64,
) -> Result<Flow, Exception> {
    let rs = r.get(i.rs);
    let rt = r.get(i.rt);
    let sa = i.sa();
    let simm = i.simm();
    let uimm = u64::from(i.imm);
    let (d, t) = (i.rd, i.rt);
    let flow = match i.op {
        // --- Shifts ---------------------------------------------------------
        Op::Sll => write(r, d, alu::sll(rt, sa)),
        Op::Srl => write(r, d, alu::srl(rt, sa)),
        Op::Sra => write(r, d, alu::sra(rt, sa)),
        Op::Sllv => write(r, d, alu::sll(rt, rs as u32)),
        Op::Srlv => write(r, d, alu::srl(rt, rs as u32)),
        Op::Srav => write(r, d, alu::sra(rt, rs as u32)),
        Op::Dsll => write(r, d, alu::dsll(c, rt, sa)?),
        Op::Dsrl => write(r, d, alu::dsrl(c, rt, sa)?),
        Op::Dsra => write(r, d, alu::dsra(c, rt, sa)?),
        Op::Dsll32 => write(r, d, alu::dsll(c, rt, sa + 32)?),
        Op::Dsrl32 => write(r, d, alu::dsrl(c, rt, sa + 32)?),
        Op::Dsra32 => write(r, d, alu::dsra(c, rt, sa + 32)?),
        Op::Dsllv => write(r, d, alu::dsll(c, rt, rs as u32 & 63)?),
        Op::Dsrlv => write(r, d, alu::dsrl(c, rt, rs as u32 & 63)?),
        Op::Dsrav => write(r, d, alu::dsra(c, rt, rs as u32 & 63)?),

        // --- Three-register ALU ---------------------------------------------
        Op::Add => write(r, d, alu::add(rs, rt)?),
        Op::Addu => write(r, d, alu::addu(rs, rt)),
        Op::Sub => write(r, d, alu::sub(rs, rt)?),
        Op::Subu => write(r, d, alu::subu(rs, rt)),
        Op::And => write(r, d, rs & rt),
        Op::Or => write(r, d, rs | rt),
        Op::Xor => write(r, d, rs ^ rt),
        Op::Nor => write(r, d, alu::nor(rs, rt)),
        Op::Slt => write(r, d, alu::slt(rs, rt)),
        Op::Sltu => write(r, d, alu::sltu(rs, rt)),
        Op::Dadd => write(r, d, alu::dadd(c, rs, rt)?),
        Op::Daddu => write(r, d, alu::daddu(c, rs, rt)?),
        Op::Dsub => write(r, d, alu::dsub(c, rs, rt)?),
        Op::Dsubu => write(r, d, alu::dsubu(c, rs, rt)?),

        // --- Immediate ALU ----------------------------------------------------
        Op::Addi => write(r, t, alu::add(rs, simm)?),
        Op::Addiu => write(r, t, alu::addu(rs, simm)),
        Op::Slti => write(r, t, alu::slt(rs, simm)),
        Op::Sltiu => write(r, t, alu::sltu(rs, simm)),
        Op::Andi => write(r, t, rs & uimm),
        Op::Ori => write(r, t, rs | uimm),
        Op::Xori => write(r, t, rs ^ uimm),
        Op::Lui => write(r, t, alu::lui(i.imm)),
        Op::Daddi => write(r, t, alu::dadd(c, rs, simm)?),
        Op::Daddiu => write(r, t, alu::daddu(c, rs, simm)?),

        // --- Traps --------------------------------------------------------------
        Op::Tge => alu::trap_if((rs as i64) >= (rt as i64))?,
        Op::Tgeu => alu::trap_if(rs >= rt)?,
        Op::Tlt => alu::trap_if((rs as i64) < (rt as i64))?,
        Op::Tltu => alu::trap_if(rs < rt)?,
        Op::Teq => alu::trap_if(rs == rt)?,
        Op::Tne => alu::trap_if(rs != rt)?,
        Op::Tgei => alu::trap_if((rs as i64) >= (simm as i64))?,
        Op::Tgeiu => alu::trap_if(rs >= simm)?,
        Op::Tlti => alu::trap_if((rs as i64) < (simm as i64))?,
        Op::Tltiu => alu::trap_if(rs < simm)?,
        Op::Teqi => alu::trap_if(rs == simm)?,
        Op::Tnei => alu::trap_if(rs != simm)?,

        // --- Branches and jumps ---------------------------------------------------
        Op::Beq => branch::branch(rs == rt, pc, &i),
        Op::Bne => branch::branch(rs != rt, pc, &i),
        Op::Blez => branch::branch(branch::lez(rs), pc, &i),
        Op::Bgtz => branch::branch(branch::gtz(rs), pc, &i),
        Op::Bltz => branch::branch(branch::ltz(rs), pc, &i),
        Op::Bgez => branch::branch(branch::gez(rs), pc, &i),
        Op::Beql => branch::likely(rs == rt, pc, &i),
        Op::Bnel => branch::likely(rs != rt, pc, &i),
        Op::Blezl => branch::likely(branch::lez(rs), pc, &i),
        Op::Bgtzl => branch::likely(branch::gtz(rs), pc, &i),
        Op::Bltzl => branch::likely(branch::ltz(rs), pc, &i),
        Op::Bgezl => branch::likely(branch::gez(rs), pc, &i),
        Op::Bltzal => branch::and_link(r, pc, branch::branch(branch::ltz(rs), pc, &i)),
        Op::Bgezal => branch::and_link(r, pc, branch::branch(branch::gez(rs), pc, &i)),
        Op::Bltzall => branch::and_link(r, pc, branch::likely(branch::ltz(rs), pc, &i)),
        Op::Bgezall => branch::and_link(r, pc, branch::likely(branch::gez(rs), pc, &i)),
        Op::J => Flow::Taken(branch::jump_target(pc, i.imm)),
        Op::Jal => branch::and_link(r, pc, Flow::Taken(branch::jump_target(pc, i.imm))),
        Op::Jr => Flow::Taken(rs),
        Op::Jalr => branch::jalr(r, d, pc, rs),

        // --- HI/LO and multiply/divide ---------------------------------------
        Op::Mfhi => muldiv::mfhi(r, c, d),
        Op::Mflo => muldiv::mflo(r, c, d),
        Op::Mthi => {
            r.hi = rs;
            Flow::Next
        }
        Op::Mtlo => {
            r.lo = rs;
            Flow::Next
        }
        Op::Mult => muldiv::start(r, c, MulDiv::Mult, muldiv::mult(rs, rt)),
        Op::Multu => muldiv::start(r, c, MulDiv::Mult, muldiv::multu(rs, rt)),
        Op::Div => muldiv::start(r, c, MulDiv::Div, muldiv::div(rs, rt)),
        Op::Divu => muldiv::start(r, c, MulDiv::Div, muldiv::divu(rs, rt)),
        Op::Dmult => muldiv::start64(r, c, MulDiv::Dmult, || muldiv::dmult(rs, rt))?,
        Op::Dmultu => muldiv::start64(r, c, MulDiv::Dmult, || muldiv::dmultu(rs, rt))?,
        Op::Ddiv => muldiv::start64(r, c, MulDiv::Ddiv, || muldiv::ddiv(rs, rt))?,
        Op::Ddivu => muldiv::start64(r, c, MulDiv::Ddiv, || muldiv::ddivu(rs, rt))?,

        // --- Loads (they write r0 back to zero themselves) ------------------
        Op::Lw => return mem::load::<C, 4, true>(r, c, &i, rs),
        Op::Lbu => return mem::load::<C, 1, false>(r, c, &i, rs),
        Op::Lb => return mem::load::<C, 1, true>(r, c, &i, rs),
        Op::Lhu => return mem::load::<C, 2, false>(r, c, &i, rs),
        Op::Lh => return mem::load::<C, 2, true>(r, c, &i, rs),
        Op::Lwu => {
            need64(c)?;
            return mem::load::<C, 4, false>(r, c, &i, rs);
        }
        Op::Ld => {
            need64(c)?;
            return mem::load::<C, 8, false>(r, c, &i, rs);
        }
        Op::Lwl => mem::lwl(r, c, &i, rs, rt)?,
        Op::Lwr => mem::lwr(r, c, &i, rs, rt)?,
        Op::Ldl => mem::ldl(r, c, &i, rs, rt)?,
        Op::Ldr => mem::ldr(r, c, &i, rs, rt)?,
        Op::Ll => mem::load_linked::<C, 4>(r, c, &i, rs)?,
        Op::Lld => mem::load_linked::<C, 8>(r, c, &i, rs)?,

        // --- Stores -----------------------------------------------------------
        Op::Sw => return mem::store::<C, 4>(c, &i, rs, rt),
        Op::Sb => return mem::store::<C, 1>(c, &i, rs, rt),
        Op::Sh => return mem::store::<C, 2>(c, &i, rs, rt),
        Op::Sd => {
            need64(c)?;
            return mem::store::<C, 8>(c, &i, rs, rt);
        }
        Op::Swl => mem::store_left::<C, 4>(c, &i, rs, rt)?,
        Op::Swr => mem::store_right::<C, 4>(c, &i, rs, rt)?,
        Op::Sdl => mem::store_left::<C, 8>(c, &i, rs, rt)?,
        Op::Sdr => mem::store_right::<C, 8>(c, &i, rs, rt)?,
        Op::Sc => mem::store_conditional::<C, 4>(r, c, &i, rs, rt)?,
        Op::Scd => mem::store_conditional::<C, 8>(r, c, &i, rs, rt)?,

        // --- System, CP0 and the absent coprocessors ---------------------------
        Op::Syscall => return Err(Exception::new(ExcCode::Sys)),
        Op::Break => return Err(Exception::new(ExcCode::Bp)),
        Op::Sync => Flow::Next,
        Op::Mfc0 => cop::mfc0(r, c, &i)?,
        Op::Dmfc0 => cop::dmfc0(r, c, &i)?,
        Op::Mtc0 => cop::mtc0(c, &i, rt)?,
        Op::Dmtc0 => cop::dmtc0(c, &i, rt)?,
        Op::Tlbr => cop::cp0_op(c, C::tlbr)?,
        Op::Tlbwi => cop::cp0_op(c, C::tlbwi)?,
        Op::Tlbwr => cop::cp0_op(c, C::tlbwr)?,
        Op::Tlbp => cop::cp0_op(c, C::tlbp)?,
        Op::Cop0Nop => cop::cp0_op(c, |_| {})?,
        Op::Eret => cop::eret(c)?,
        Op::Wait => cop::wait(c)?,
        Op::Rfe => return Err(cop::rfe(c)),
        Op::Cache => cop::cache(c, &i, rs)?,
        Op::Cop1 | Op::Lwc1 | Op::Ldc1 | Op::Swc1 | Op::Sdc1 => return Err(cop::absent(c, 1)),
        Op::Cop2 | Op::Lwc2 | Op::Ldc2 | Op::Swc2 | Op::Sdc2 => return Err(cop::absent(c, 2)),
        Op::Cop3 => return Err(cop::absent(c, 3)),

        Op::Reserved => return Err(ri()),
    };
    r.gpr[0] = 0;
    Ok(flow)
}

/// Writes an instruction's result to `dest`; it falls through.
#[inline(always)]
fn write(r: &mut Regs, dest: Reg, v: u64) -> Flow {
    r.set(dest, v);
    Flow::Next
}

#[cfg(test)]
mod tests {
    use crate::isa::{Op, Reg};
    use crate::testkit::{asm, halt, run};

    #[test]
    fn a_loop_sums_and_halts() {
        // t0 = 10; t1 = 0; do { t1 += t0 } while (--t0 != 0)
        let mut a = asm();
        a.imm(Op::Addiu, Reg::T0, Reg::ZERO, 10);
        a.imm(Op::Addiu, Reg::T1, Reg::ZERO, 0);
        a.label("loop");
        a.r3(Op::Addu, Reg::T1, Reg::T1, Reg::T0);
        a.imm(Op::Addiu, Reg::T0, Reg::T0, -1);
        a.branch(Op::Bne, Reg::T0, Reg::ZERO, "loop");
        a.nop();
        halt(&mut a, Reg::ZERO);
        let m = run(&a);
        let cpu = &m.cpus[0];
        assert_eq!(cpu.regs.get(Reg::T1), 55);
        assert_eq!(m.halted, Some(0));
    }
}
