//! CP0 instructions, CACHE and the absent coprocessors
//! (`../shared/docs/r4000-reference.md` §5.6, §6). Every CP0 instruction is
//! Coprocessor Unusable unless CP0 is usable in the current mode (kernel
//! mode, or CU0 set).

use super::super::cp0::sext32;
use super::super::exception::Exception;
use super::{need64, ri, ExecContext, Flow, Regs};
use crate::isa::Insn;

#[inline(always)]
fn need_cp0<C: ExecContext>(c: &C) -> Result<(), Exception> {
    if c.cop_usable(0) {
        Ok(())
    } else {
        Err(Exception::cop_unusable(0))
    }
}

/// MFC0: the low word of CP0 register rd, sign-extended, into rt.
pub(super) fn mfc0<C: ExecContext>(r: &mut Regs, c: &mut C, i: &Insn) -> Result<Flow, Exception> {
    need_cp0(c)?;
    let v = sext32(c.read_cp0(i.rd.number()));
    r.set(i.rt, v);
    Ok(Flow::Next)
}

/// DMFC0: all of CP0 register rd into rt.
pub(super) fn dmfc0<C: ExecContext>(r: &mut Regs, c: &mut C, i: &Insn) -> Result<Flow, Exception> {
    need_cp0(c)?;
    need64(c)?;
    let v = c.read_cp0(i.rd.number());
    r.set(i.rt, v);
    Ok(Flow::Next)
}

/// MTC0: the low word of rt, sign-extended, into CP0 register rd.
pub(super) fn mtc0<C: ExecContext>(c: &mut C, i: &Insn, rt: u64) -> Result<Flow, Exception> {
    need_cp0(c)?;
    c.write_cp0(i.rd.number(), sext32(rt), false);
    Ok(Flow::Next)
}

/// DMTC0: all of rt into CP0 register rd.
pub(super) fn dmtc0<C: ExecContext>(c: &mut C, i: &Insn, rt: u64) -> Result<Flow, Exception> {
    need_cp0(c)?;
    need64(c)?;
    c.write_cp0(i.rd.number(), rt, true);
    Ok(Flow::Next)
}

/// TLBR, TLBWI, TLBWR, TLBP and the CP0 encodings that do nothing.
#[inline(always)]
pub(super) fn cp0_op<C: ExecContext>(
    c: &mut C,
    op: impl FnOnce(&mut C),
) -> Result<Flow, Exception> {
    need_cp0(c)?;
    op(c);
    Ok(Flow::Next)
}

/// ERET: back to EPC or ErrorEPC, with no delay slot.
pub(super) fn eret<C: ExecContext>(c: &mut C) -> Result<Flow, Exception> {
    need_cp0(c)?;
    Ok(Flow::Jump(c.eret()))
}

/// WAIT: idle until an interrupt is pending.
pub(super) fn wait<C: ExecContext>(c: &mut C) -> Result<Flow, Exception> {
    need_cp0(c)?;
    Ok(Flow::Wait)
}

/// RFE is the R3000's: reserved on the R4000.
pub(super) fn rfe<C: ExecContext>(c: &C) -> Exception {
    need_cp0(c).err().unwrap_or_else(ri)
}

/// CACHE: operation rt on the line holding the effective address.
pub(super) fn cache<C: ExecContext>(c: &mut C, i: &Insn, rs: u64) -> Result<Flow, Exception> {
    need_cp0(c)?;
    c.cache(i.rt.number(), rs.wrapping_add(i.simm()))?;
    Ok(Flow::Next)
}

/// No FPU or CP2/CP3 is attached: Coprocessor Unusable while the CU bit is
/// clear (so a kernel can emulate or refuse), Reserved Instruction once the
/// guest claims the coprocessor anyway (§5.6).
pub(super) fn absent<C: ExecContext>(c: &C, n: u8) -> Exception {
    if c.cop_usable(n) {
        ri()
    } else {
        Exception::cop_unusable(n)
    }
}
