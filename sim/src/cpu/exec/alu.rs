//! Shifts, register and immediate ALU operations and traps
//! (`../shared/docs/r4000-reference.md` §5.7). The 32-bit operations
//! neither fault nor touch anything but their operands, and tier 2's
//! micro-ops call them too; the 64-bit ones first check that 64-bit
//! operations are allowed.

use super::super::cp0::sext32;
use super::super::exception::{ExcCode, Exception};
use super::{need64, ExecContext, Flow};

// 32-bit operations produce their 32-bit result sign-extended (§1.2); the
// narrowing casts below take the operand's low word on purpose.

#[inline(always)]
pub(crate) fn sll(rt: u64, sa: u32) -> u64 {
    sext32(u64::from((rt as u32) << (sa & 31)))
}

#[inline(always)]
pub(crate) fn srl(rt: u64, sa: u32) -> u64 {
    sext32(u64::from((rt as u32) >> (sa & 31)))
}

#[inline(always)]
pub(crate) fn sra(rt: u64, sa: u32) -> u64 {
    sext32(((rt as i32) >> (sa & 31)) as u32 as u64)
}

/// ADD/ADDI: the 32-bit sum, or Integer Overflow (and no write).
#[inline(always)]
pub(crate) fn add(rs: u64, rt: u64) -> Result<u64, Exception> {
    let v = (rs as i32).checked_add(rt as i32).ok_or(overflow())?;
    Ok(v as i64 as u64)
}

#[inline(always)]
pub(crate) fn addu(rs: u64, rt: u64) -> u64 {
    sext32(rs.wrapping_add(rt))
}

/// SUB: the 32-bit difference, or Integer Overflow (and no write).
#[inline(always)]
pub(crate) fn sub(rs: u64, rt: u64) -> Result<u64, Exception> {
    let v = (rs as i32).checked_sub(rt as i32).ok_or(overflow())?;
    Ok(v as i64 as u64)
}

#[inline(always)]
pub(crate) fn subu(rs: u64, rt: u64) -> u64 {
    sext32(rs.wrapping_sub(rt))
}

#[inline(always)]
pub(crate) fn slt(rs: u64, rt: u64) -> u64 {
    u64::from((rs as i64) < (rt as i64))
}

#[inline(always)]
pub(crate) fn sltu(rs: u64, rt: u64) -> u64 {
    u64::from(rs < rt)
}

#[inline(always)]
pub(crate) fn nor(rs: u64, rt: u64) -> u64 {
    !(rs | rt)
}

/// LUI: the immediate in the upper half, sign-extended.
#[inline(always)]
pub(crate) fn lui(imm: u32) -> u64 {
    sext32(u64::from(imm << 16))
}

/// DSLL, DSLL32, DSLLV: `sa` is the whole shift amount (0 to 63).
#[inline(always)]
pub(super) fn dsll<C: ExecContext>(c: &C, rt: u64, sa: u32) -> Result<u64, Exception> {
    need64(c)?;
    Ok(rt << sa)
}

/// DSRL, DSRL32, DSRLV.
#[inline(always)]
pub(super) fn dsrl<C: ExecContext>(c: &C, rt: u64, sa: u32) -> Result<u64, Exception> {
    need64(c)?;
    Ok(rt >> sa)
}

/// DSRA, DSRA32, DSRAV.
#[inline(always)]
pub(super) fn dsra<C: ExecContext>(c: &C, rt: u64, sa: u32) -> Result<u64, Exception> {
    need64(c)?;
    Ok(((rt as i64) >> sa) as u64)
}

/// DADD/DADDI: the 64-bit sum, or Integer Overflow.
#[inline(always)]
pub(super) fn dadd<C: ExecContext>(c: &C, rs: u64, rt: u64) -> Result<u64, Exception> {
    need64(c)?;
    Ok((rs as i64).checked_add(rt as i64).ok_or(overflow())? as u64)
}

/// DADDU/DADDIU.
#[inline(always)]
pub(super) fn daddu<C: ExecContext>(c: &C, rs: u64, rt: u64) -> Result<u64, Exception> {
    need64(c)?;
    Ok(rs.wrapping_add(rt))
}

/// DSUB: the 64-bit difference, or Integer Overflow.
#[inline(always)]
pub(super) fn dsub<C: ExecContext>(c: &C, rs: u64, rt: u64) -> Result<u64, Exception> {
    need64(c)?;
    Ok((rs as i64).checked_sub(rt as i64).ok_or(overflow())? as u64)
}

/// DSUBU.
#[inline(always)]
pub(super) fn dsubu<C: ExecContext>(c: &C, rs: u64, rt: u64) -> Result<u64, Exception> {
    need64(c)?;
    Ok(rs.wrapping_sub(rt))
}

/// The trap instructions (TEQ, TGEI, ...): a Trap exception if the
/// condition holds.
#[inline(always)]
pub(super) fn trap_if(cond: bool) -> Result<Flow, Exception> {
    if cond {
        Err(Exception::new(ExcCode::Tr))
    } else {
        Ok(Flow::Next)
    }
}

#[inline(always)]
fn overflow() -> Exception {
    Exception::new(ExcCode::Ov)
}
