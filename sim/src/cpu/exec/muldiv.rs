//! Multiply, divide and HI/LO (`../shared/docs/r4000-reference.md` §5.7).
//! Each operation is a pure (HI, LO) pair, shared with tier 2; starting
//! one tells the context's cycle model, which keeps HI/LO busy for its
//! latency.
//!
//! Division by zero and INT_MIN / -1 are undefined on the R4000; like QEMU
//! we divide by 1 instead, so LO = dividend and HI = 0.

use super::super::cp0::sext32;
use super::super::exception::Exception;
use super::{need64, ExecContext, Flow, MulDiv, Regs};
use crate::isa::Reg;

/// MULT: the signed 32×32-bit product, each word sign-extended.
#[inline(always)]
pub(crate) fn mult(rs: u64, rt: u64) -> (u64, u64) {
    let p = i64::from(rs as i32) * i64::from(rt as i32);
    (sext32((p >> 32) as u64), sext32(p as u64))
}

/// MULTU: the unsigned 32×32-bit product.
#[inline(always)]
pub(crate) fn multu(rs: u64, rt: u64) -> (u64, u64) {
    let p = u64::from(rs as u32) * u64::from(rt as u32);
    (sext32(p >> 32), sext32(p))
}

/// DIV: remainder and quotient of the signed words.
#[inline(always)]
pub(super) fn div(rs: u64, rt: u64) -> (u64, u64) {
    let (n, d) = (rs as i32, rt as i32);
    let d = if d == 0 || (n == i32::MIN && d == -1) {
        1
    } else {
        d
    };
    (
        sext32(n.wrapping_rem(d) as u32 as u64),
        sext32(n.wrapping_div(d) as u32 as u64),
    )
}

/// DIVU: remainder and quotient of the unsigned words.
#[inline(always)]
pub(super) fn divu(rs: u64, rt: u64) -> (u64, u64) {
    let (n, d) = (rs as u32, rt as u32);
    let d = if d == 0 { 1 } else { d };
    (sext32(u64::from(n % d)), sext32(u64::from(n / d)))
}

/// DMULT: the signed 64×64-bit product.
#[inline(always)]
pub(super) fn dmult(rs: u64, rt: u64) -> (u64, u64) {
    let p = i128::from(rs as i64) * i128::from(rt as i64);
    ((p >> 64) as u64, p as u64)
}

/// DMULTU: the unsigned 64×64-bit product.
#[inline(always)]
pub(super) fn dmultu(rs: u64, rt: u64) -> (u64, u64) {
    let p = u128::from(rs) * u128::from(rt);
    ((p >> 64) as u64, p as u64)
}

/// DDIV: remainder and quotient of the signed doublewords.
#[inline(always)]
pub(super) fn ddiv(rs: u64, rt: u64) -> (u64, u64) {
    let (n, d) = (rs as i64, rt as i64);
    let d = if d == 0 || (n == i64::MIN && d == -1) {
        1
    } else {
        d
    };
    (n.wrapping_rem(d) as u64, n.wrapping_div(d) as u64)
}

/// DDIVU: remainder and quotient of the unsigned doublewords.
#[inline(always)]
pub(super) fn ddivu(rs: u64, rt: u64) -> (u64, u64) {
    let d = if rt == 0 { 1 } else { rt };
    (rs % d, rs / d)
}

/// Starts a multiply or divide of latency class `kind` whose result is
/// `(hi, lo)`.
#[inline(always)]
pub(super) fn start<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    kind: MulDiv,
    (hi, lo): (u64, u64),
) -> Flow {
    c.muldiv(kind);
    (r.hi, r.lo) = (hi, lo);
    Flow::Next
}

/// [`start`] for the 64-bit operations, which are reserved where 64-bit
/// operations are not allowed.
#[inline(always)]
pub(super) fn start64<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    kind: MulDiv,
    op: impl FnOnce() -> (u64, u64),
) -> Result<Flow, Exception> {
    need64(c)?;
    Ok(start(r, c, kind, op()))
}

/// MFHI: waits for a multiply or divide in flight.
#[inline(always)]
pub(super) fn mfhi<C: ExecContext>(r: &mut Regs, c: &mut C, rd: Reg) -> Flow {
    c.hilo_read();
    r.set(rd, r.hi);
    Flow::Next
}

/// MFLO: waits for a multiply or divide in flight.
#[inline(always)]
pub(super) fn mflo<C: ExecContext>(r: &mut Regs, c: &mut C, rd: Reg) -> Flow {
    c.hilo_read();
    r.set(rd, r.lo);
    Flow::Next
}
