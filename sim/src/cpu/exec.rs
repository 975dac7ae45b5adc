//! Instruction semantics, written once and generic over an [`ExecContext`].
//!
//! The native CPU runs them against the real CP0, TLB and bus; the monitor's
//! emulation engine runs the same code against a virtual CPU (`../shared/docs/design.md` §3,
//! "one interpreter, two users"). Semantics follow `../shared/docs/r4000-reference.md` §5.

use super::alu;
use super::cp0::sext32;
use super::exception::{Access, ExcCode, Exception};
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

#[inline(always)]
fn ri() -> Exception {
    Exception::new(ExcCode::Ri)
}

#[inline(always)]
fn check_align(vaddr: u64, width: u8, access: Access) -> Result<(), Exception> {
    if vaddr & (u64::from(width) - 1) != 0 {
        return Err(Exception::address(access.address_error(), vaddr));
    }
    Ok(())
}

/// Re-targets a fault on the aligned word of an unaligned access at the
/// instruction's own effective address.
fn at_ea(mut e: Exception, ea: u64) -> Exception {
    if e.badvaddr.is_some() {
        e.badvaddr = Some(ea);
    }
    e
}

#[inline(always)]
fn branch(cond: bool, pc: u64, i: &Insn) -> Flow {
    if cond {
        Flow::Taken(alu::branch_target(pc, i.branch_offset()))
    } else {
        Flow::NotTaken
    }
}

#[inline(always)]
fn branch_likely(cond: bool, pc: u64, i: &Insn) -> Flow {
    if cond {
        Flow::Taken(alu::branch_target(pc, i.branch_offset()))
    } else {
        Flow::Annul
    }
}

/// Executes one decoded instruction, found at `pc`. On `Err` no
/// architectural state has changed (the destination of a trapping ADD is not
/// written, §5.7). The caller moves the PC according to the returned flow
/// (see [`Regs::advance`]); `r.pc` is not read, so a caller may keep the PC
/// elsewhere while it runs.
#[inline(always)]
pub fn execute<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: Insn,
    pc: u64,
) -> Result<Flow, Exception> {
    let rs = r.get(i.rs);
    let rt = r.get(i.rt);
    let sa = u32::from(i.sa);
    let flow = match i.op {
        // --- Shifts (32-bit results sign-extended) -------------------------
        Op::Sll => {
            r.set(i.rd, alu::sll(rt, sa));
            Flow::Next
        }
        Op::Srl => {
            r.set(i.rd, alu::srl(rt, sa));
            Flow::Next
        }
        Op::Sra => {
            r.set(i.rd, alu::sra(rt, sa));
            Flow::Next
        }
        Op::Sllv => {
            r.set(i.rd, alu::sll(rt, rs as u32));
            Flow::Next
        }
        Op::Srlv => {
            r.set(i.rd, alu::srl(rt, rs as u32));
            Flow::Next
        }
        Op::Srav => {
            r.set(i.rd, alu::sra(rt, rs as u32));
            Flow::Next
        }
        Op::Dsll
        | Op::Dsrl
        | Op::Dsra
        | Op::Dsll32
        | Op::Dsrl32
        | Op::Dsra32
        | Op::Dsllv
        | Op::Dsrlv
        | Op::Dsrav => {
            if !c.allow64() {
                return Err(ri());
            }
            let v = match i.op {
                Op::Dsll => rt << sa,
                Op::Dsrl => rt >> sa,
                Op::Dsra => ((rt as i64) >> sa) as u64,
                Op::Dsll32 => rt << (sa + 32),
                Op::Dsrl32 => rt >> (sa + 32),
                Op::Dsra32 => ((rt as i64) >> (sa + 32)) as u64,
                Op::Dsllv => rt << (rs & 63),
                Op::Dsrlv => rt >> (rs & 63),
                _ => ((rt as i64) >> (rs & 63)) as u64,
            };
            r.set(i.rd, v);
            Flow::Next
        }

        // --- Jumps -------------------------------------------------------
        Op::Jr => Flow::Taken(rs),
        Op::Jalr => {
            r.set(i.rd, pc.wrapping_add(8));
            Flow::Taken(rs)
        }
        Op::J => Flow::Taken(alu::jump_target(pc, i.imm)),
        Op::Jal => {
            r.set(Reg::RA, pc.wrapping_add(8));
            Flow::Taken(alu::jump_target(pc, i.imm))
        }

        // --- System --------------------------------------------------------
        Op::Syscall => return Err(Exception::new(ExcCode::Sys)),
        Op::Break => return Err(Exception::new(ExcCode::Bp)),
        Op::Sync => Flow::Next,

        // --- HI/LO and multiply/divide ---------------------------------------
        Op::Mfhi => {
            c.hilo_read();
            r.set(i.rd, r.hi);
            Flow::Next
        }
        Op::Mflo => {
            c.hilo_read();
            r.set(i.rd, r.lo);
            Flow::Next
        }
        Op::Mthi => {
            r.hi = rs;
            Flow::Next
        }
        Op::Mtlo => {
            r.lo = rs;
            Flow::Next
        }
        Op::Mult => {
            c.muldiv(MulDiv::Mult);
            (r.hi, r.lo) = alu::mult(rs, rt);
            Flow::Next
        }
        Op::Multu => {
            c.muldiv(MulDiv::Mult);
            (r.hi, r.lo) = alu::multu(rs, rt);
            Flow::Next
        }
        Op::Div => {
            c.muldiv(MulDiv::Div);
            // Divide by zero and INT_MIN / -1 are undefined; like QEMU we
            // divide by 1 instead, so LO = dividend and HI = 0.
            let (n, d) = (rs as i32, rt as i32);
            let d = if d == 0 || (n == i32::MIN && d == -1) {
                1
            } else {
                d
            };
            r.lo = sext32(n.wrapping_div(d) as u32 as u64);
            r.hi = sext32(n.wrapping_rem(d) as u32 as u64);
            Flow::Next
        }
        Op::Divu => {
            c.muldiv(MulDiv::Div);
            let (n, d) = (rs as u32, rt as u32);
            let d = if d == 0 { 1 } else { d };
            r.lo = sext32(u64::from(n / d));
            r.hi = sext32(u64::from(n % d));
            Flow::Next
        }
        Op::Dmult | Op::Dmultu | Op::Ddiv | Op::Ddivu => {
            if !c.allow64() {
                return Err(ri());
            }
            c.muldiv(match i.op {
                Op::Dmult | Op::Dmultu => MulDiv::Dmult,
                _ => MulDiv::Ddiv,
            });
            match i.op {
                Op::Dmult => {
                    let p = i128::from(rs as i64) * i128::from(rt as i64);
                    r.lo = p as u64;
                    r.hi = (p >> 64) as u64;
                }
                Op::Dmultu => {
                    let p = u128::from(rs) * u128::from(rt);
                    r.lo = p as u64;
                    r.hi = (p >> 64) as u64;
                }
                Op::Ddiv => {
                    let (n, d) = (rs as i64, rt as i64);
                    let d = if d == 0 || (n == i64::MIN && d == -1) {
                        1
                    } else {
                        d
                    };
                    r.lo = n.wrapping_div(d) as u64;
                    r.hi = n.wrapping_rem(d) as u64;
                }
                _ => {
                    let d = if rt == 0 { 1 } else { rt };
                    r.lo = rs / d;
                    r.hi = rs % d;
                }
            }
            Flow::Next
        }

        // --- Three-register ALU ---------------------------------------------
        Op::Add => {
            let v = (rs as i32)
                .checked_add(rt as i32)
                .ok_or(Exception::new(ExcCode::Ov))?;
            r.set(i.rd, v as i64 as u64);
            Flow::Next
        }
        Op::Addu => {
            r.set(i.rd, alu::addu(rs, rt));
            Flow::Next
        }
        Op::Sub => {
            let v = (rs as i32)
                .checked_sub(rt as i32)
                .ok_or(Exception::new(ExcCode::Ov))?;
            r.set(i.rd, v as i64 as u64);
            Flow::Next
        }
        Op::Subu => {
            r.set(i.rd, alu::subu(rs, rt));
            Flow::Next
        }
        Op::And => {
            r.set(i.rd, rs & rt);
            Flow::Next
        }
        Op::Or => {
            r.set(i.rd, rs | rt);
            Flow::Next
        }
        Op::Xor => {
            r.set(i.rd, rs ^ rt);
            Flow::Next
        }
        Op::Nor => {
            r.set(i.rd, alu::nor(rs, rt));
            Flow::Next
        }
        Op::Slt => {
            r.set(i.rd, alu::slt(rs, rt));
            Flow::Next
        }
        Op::Sltu => {
            r.set(i.rd, alu::sltu(rs, rt));
            Flow::Next
        }
        Op::Dadd | Op::Daddu | Op::Dsub | Op::Dsubu => {
            if !c.allow64() {
                return Err(ri());
            }
            let v = match i.op {
                Op::Dadd => (rs as i64)
                    .checked_add(rt as i64)
                    .ok_or(Exception::new(ExcCode::Ov))? as u64,
                Op::Daddu => rs.wrapping_add(rt),
                Op::Dsub => (rs as i64)
                    .checked_sub(rt as i64)
                    .ok_or(Exception::new(ExcCode::Ov))? as u64,
                _ => rs.wrapping_sub(rt),
            };
            r.set(i.rd, v);
            Flow::Next
        }

        // --- Traps -------------------------------------------------------------
        Op::Tge | Op::Tgeu | Op::Tlt | Op::Tltu | Op::Teq | Op::Tne => {
            let hit = match i.op {
                Op::Tge => (rs as i64) >= (rt as i64),
                Op::Tgeu => rs >= rt,
                Op::Tlt => (rs as i64) < (rt as i64),
                Op::Tltu => rs < rt,
                Op::Teq => rs == rt,
                _ => rs != rt,
            };
            if hit {
                return Err(Exception::new(ExcCode::Tr));
            }
            Flow::Next
        }
        Op::Tgei | Op::Tgeiu | Op::Tlti | Op::Tltiu | Op::Teqi | Op::Tnei => {
            let imm = i.simm();
            let hit = match i.op {
                Op::Tgei => (rs as i64) >= (imm as i64),
                Op::Tgeiu => rs >= imm,
                Op::Tlti => (rs as i64) < (imm as i64),
                Op::Tltiu => rs < imm,
                Op::Teqi => rs == imm,
                _ => rs != imm,
            };
            if hit {
                return Err(Exception::new(ExcCode::Tr));
            }
            Flow::Next
        }

        // --- Branches ---------------------------------------------------------
        Op::Beq => branch(rs == rt, pc, &i),
        Op::Bne => branch(rs != rt, pc, &i),
        Op::Blez => branch(alu::lez(rs), pc, &i),
        Op::Bgtz => branch(alu::gtz(rs), pc, &i),
        Op::Bltz => branch(alu::ltz(rs), pc, &i),
        Op::Bgez => branch(alu::gez(rs), pc, &i),
        Op::Beql => branch_likely(rs == rt, pc, &i),
        Op::Bnel => branch_likely(rs != rt, pc, &i),
        Op::Blezl => branch_likely(alu::lez(rs), pc, &i),
        Op::Bgtzl => branch_likely(alu::gtz(rs), pc, &i),
        Op::Bltzl => branch_likely(alu::ltz(rs), pc, &i),
        Op::Bgezl => branch_likely(alu::gez(rs), pc, &i),
        // The AL forms link whether or not the branch is taken (§5.7).
        Op::Bltzal | Op::Bgezal | Op::Bltzall | Op::Bgezall => {
            let cond = match i.op {
                Op::Bltzal | Op::Bltzall => alu::ltz(rs),
                _ => alu::gez(rs),
            };
            r.set(Reg::RA, pc.wrapping_add(8));
            if matches!(i.op, Op::Bltzal | Op::Bgezal) {
                branch(cond, pc, &i)
            } else {
                branch_likely(cond, pc, &i)
            }
        }

        // --- Immediate ALU ----------------------------------------------------
        Op::Addi => {
            let v = (rs as i32)
                .checked_add(i.imm as i32)
                .ok_or(Exception::new(ExcCode::Ov))?;
            r.set(i.rt, v as i64 as u64);
            Flow::Next
        }
        Op::Addiu => {
            r.set(i.rt, alu::addu(rs, i.simm()));
            Flow::Next
        }
        Op::Slti => {
            r.set(i.rt, alu::slt(rs, i.simm()));
            Flow::Next
        }
        Op::Sltiu => {
            r.set(i.rt, alu::sltu(rs, i.simm()));
            Flow::Next
        }
        Op::Andi => {
            r.set(i.rt, rs & u64::from(i.imm));
            Flow::Next
        }
        Op::Ori => {
            r.set(i.rt, rs | u64::from(i.imm));
            Flow::Next
        }
        Op::Xori => {
            r.set(i.rt, rs ^ u64::from(i.imm));
            Flow::Next
        }
        Op::Lui => {
            r.set(i.rt, alu::lui(i.imm));
            Flow::Next
        }
        Op::Daddi | Op::Daddiu => {
            if !c.allow64() {
                return Err(ri());
            }
            let v = if i.op == Op::Daddi {
                (rs as i64)
                    .checked_add(i.simm() as i64)
                    .ok_or(Exception::new(ExcCode::Ov))? as u64
            } else {
                rs.wrapping_add(i.simm())
            };
            r.set(i.rt, v);
            Flow::Next
        }

        // --- Loads ------------------------------------------------------------
        Op::Lw => return load::<C, 4, true>(r, c, &i, rs),
        Op::Lbu => return load::<C, 1, false>(r, c, &i, rs),
        Op::Lb => return load::<C, 1, true>(r, c, &i, rs),
        Op::Lhu => return load::<C, 2, false>(r, c, &i, rs),
        Op::Lh => return load::<C, 2, true>(r, c, &i, rs),
        Op::Lwu | Op::Ld => {
            if !c.allow64() {
                return Err(ri());
            }
            return if i.op == Op::Lwu {
                load::<C, 4, false>(r, c, &i, rs)
            } else {
                load::<C, 8, false>(r, c, &i, rs)
            };
        }
        Op::Lwl | Op::Lwr => {
            let ea = rs.wrapping_add(i.simm());
            let k = (ea & 3) as u32;
            let m = c.load(ea & !3, 4).map_err(|e| at_ea(e, ea))? as u32;
            let old = rt as u32;
            let v = if i.op == Op::Lwl {
                let keep = if k == 0 { 0 } else { (1u32 << (8 * k)) - 1 };
                (m << (8 * k)) | (old & keep)
            } else {
                let shift = 8 * (3 - k);
                let keep = !(u32::MAX >> shift);
                (m >> shift) | (old & keep)
            };
            r.set(i.rt, sext32(u64::from(v)));
            c.loaded(i.rt);
            Flow::Next
        }
        Op::Ldl | Op::Ldr => {
            if !c.allow64() {
                return Err(ri());
            }
            let ea = rs.wrapping_add(i.simm());
            let k = (ea & 7) as u32;
            let m = c.load(ea & !7, 8).map_err(|e| at_ea(e, ea))?;
            let v = if i.op == Op::Ldl {
                let keep = if k == 0 { 0 } else { (1u64 << (8 * k)) - 1 };
                (m << (8 * k)) | (rt & keep)
            } else {
                let shift = 8 * (7 - k);
                let keep = !(u64::MAX >> shift);
                (m >> shift) | (rt & keep)
            };
            r.set(i.rt, v);
            c.loaded(i.rt);
            Flow::Next
        }
        Op::Ll | Op::Lld => {
            let width = if i.op == Op::Ll { 4 } else { 8 };
            if width == 8 && !c.allow64() {
                return Err(ri());
            }
            let ea = rs.wrapping_add(i.simm());
            check_align(ea, width, Access::Load)?;
            let raw = c.load_linked(ea, width)?;
            r.set(i.rt, if width == 4 { sext32(raw) } else { raw });
            c.loaded(i.rt);
            Flow::Next
        }

        // --- Stores -----------------------------------------------------------
        Op::Sw => return store::<C, 4>(c, &i, rs, rt),
        Op::Sb => return store::<C, 1>(c, &i, rs, rt),
        Op::Sh => return store::<C, 2>(c, &i, rs, rt),
        Op::Sd => {
            if !c.allow64() {
                return Err(ri());
            }
            return store::<C, 8>(c, &i, rs, rt);
        }
        Op::Swl | Op::Swr | Op::Sdl | Op::Sdr => {
            let wide = matches!(i.op, Op::Sdl | Op::Sdr);
            if wide && !c.allow64() {
                return Err(ri());
            }
            let ea = rs.wrapping_add(i.simm());
            let size: u64 = if wide { 8 } else { 4 };
            let k = ea & (size - 1);
            let base = ea & !(size - 1);
            let top = 8 * (size - 1);
            // Every byte lies in the same aligned unit, so in one page: the
            // first store faults if any would, and then nothing is written.
            if matches!(i.op, Op::Swl | Op::Sdl) {
                for j in 0..(size - k) {
                    c.store(base + k + j, 1, rt >> (top - 8 * j))
                        .map_err(|e| at_ea(e, ea))?;
                }
            } else {
                for j in 0..=k {
                    c.store(base + j, 1, rt >> (8 * (k - j)))
                        .map_err(|e| at_ea(e, ea))?;
                }
            }
            Flow::Next
        }
        Op::Sc | Op::Scd => {
            let width = if i.op == Op::Sc { 4 } else { 8 };
            if width == 8 && !c.allow64() {
                return Err(ri());
            }
            let ea = rs.wrapping_add(i.simm());
            check_align(ea, width, Access::Store)?;
            let ok = c.store_conditional(ea, width, rt)?;
            r.set(i.rt, u64::from(ok));
            Flow::Next
        }

        // --- CP0 ----------------------------------------------------------------
        Op::Mfc0 | Op::Dmfc0 | Op::Mtc0 | Op::Dmtc0 => {
            if !c.cop_usable(0) {
                return Err(Exception::cop_unusable(0));
            }
            let reg = i.rd.number();
            match i.op {
                Op::Mfc0 => {
                    let v = sext32(c.read_cp0(reg));
                    r.set(i.rt, v);
                }
                Op::Mtc0 => c.write_cp0(reg, sext32(rt), false),
                Op::Dmfc0 | Op::Dmtc0 if !c.allow64() => return Err(ri()),
                Op::Dmfc0 => {
                    let v = c.read_cp0(reg);
                    r.set(i.rt, v);
                }
                _ => c.write_cp0(reg, rt, true),
            }
            Flow::Next
        }
        Op::Tlbr
        | Op::Tlbwi
        | Op::Tlbwr
        | Op::Tlbp
        | Op::Eret
        | Op::Wait
        | Op::Rfe
        | Op::Cop0Nop => {
            if !c.cop_usable(0) {
                return Err(Exception::cop_unusable(0));
            }
            match i.op {
                Op::Tlbr => c.tlbr(),
                Op::Tlbwi => c.tlbwi(),
                Op::Tlbwr => c.tlbwr(),
                Op::Tlbp => c.tlbp(),
                Op::Eret => return Ok(Flow::Jump(c.eret())),
                Op::Wait => return Ok(Flow::Wait),
                Op::Rfe => return Err(ri()),
                _ => {}
            }
            Flow::Next
        }
        Op::Cache => {
            if !c.cop_usable(0) {
                return Err(Exception::cop_unusable(0));
            }
            let ea = rs.wrapping_add(i.simm());
            c.cache(i.rt.number(), ea)?;
            Flow::Next
        }

        // --- Coprocessors 1-3: absent ------------------------------------------
        Op::Cop1 | Op::Lwc1 | Op::Ldc1 | Op::Swc1 | Op::Sdc1 => return Err(cop_absent(c, 1)),
        Op::Cop2 | Op::Lwc2 | Op::Ldc2 | Op::Swc2 | Op::Sdc2 => return Err(cop_absent(c, 2)),
        Op::Cop3 => return Err(cop_absent(c, 3)),

        Op::Reserved => return Err(ri()),
    };
    r.gpr[0] = 0;
    Ok(flow)
}

/// An aligned load of `W` bytes, sign- or zero-extended.
#[inline(always)]
fn load<C: ExecContext, const W: u8, const SIGNED: bool>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
) -> Result<Flow, Exception> {
    let ea = rs.wrapping_add(i.simm());
    check_align(ea, W, Access::Load)?;
    let raw = c.load(ea, W)?;
    let v = match (W, SIGNED) {
        (1, true) => raw as u8 as i8 as i64 as u64,
        (2, true) => raw as u16 as i16 as i64 as u64,
        (4, true) => sext32(raw),
        _ => raw,
    };
    r.set(i.rt, v);
    r.gpr[0] = 0;
    c.loaded(i.rt);
    Ok(Flow::Next)
}

/// An aligned store of the low `W` bytes of rt.
#[inline(always)]
fn store<C: ExecContext, const W: u8>(
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    let ea = rs.wrapping_add(i.simm());
    check_align(ea, W, Access::Store)?;
    c.store(ea, W, rt)?;
    Ok(Flow::Next)
}

/// No FPU or CP2/CP3 is attached: Coprocessor Unusable while the CU bit is
/// clear (so a kernel can emulate or refuse), Reserved Instruction once the
/// guest claims the coprocessor anyway (`../shared/docs/r4000-reference.md` §5.6).
fn cop_absent<C: ExecContext>(c: &C, n: u8) -> Exception {
    if c.cop_usable(n) {
        ri()
    } else {
        Exception::cop_unusable(n)
    }
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
