//! The semantics of the instructions that cannot fault and touch nothing
//! but general registers: shifts, register and immediate ALU operations,
//! and branch conditions (`../shared/docs/r4000-reference.md` §5.7). Written
//! once here; the interpreter's [`execute`](super::exec::execute) and the
//! block tier's micro-ops both call them.

use super::cp0::sext32;

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

#[inline(always)]
pub(crate) fn addu(rs: u64, rt: u64) -> u64 {
    sext32(rs.wrapping_add(rt))
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

/// MULT: (HI, LO) of the signed 32×32-bit product, each word sign-extended.
#[inline(always)]
pub(crate) fn mult(rs: u64, rt: u64) -> (u64, u64) {
    let p = i64::from(rs as i32) * i64::from(rt as i32);
    (sext32((p >> 32) as u64), sext32(p as u64))
}

/// MULTU: (HI, LO) of the unsigned 32×32-bit product.
#[inline(always)]
pub(crate) fn multu(rs: u64, rt: u64) -> (u64, u64) {
    let p = u64::from(rs as u32) * u64::from(rt as u32);
    (sext32(p >> 32), sext32(p))
}

/// LUI: the immediate in the upper half, sign-extended.
#[inline(always)]
pub(crate) fn lui(imm: u32) -> u64 {
    sext32(u64::from(imm << 16))
}

/// The condition of a one-register branch against zero.
#[inline(always)]
pub(crate) fn lez(rs: u64) -> bool {
    (rs as i64) <= 0
}

#[inline(always)]
pub(crate) fn gtz(rs: u64) -> bool {
    (rs as i64) > 0
}

#[inline(always)]
pub(crate) fn ltz(rs: u64) -> bool {
    (rs as i64) < 0
}

#[inline(always)]
pub(crate) fn gez(rs: u64) -> bool {
    (rs as i64) >= 0
}

/// The target of J/JAL: the 26-bit index in the delay slot's 256 MB region.
#[inline(always)]
pub(crate) fn jump_target(pc: u64, index: u32) -> u64 {
    (pc.wrapping_add(4) & !0x0FFF_FFFF) | u64::from(index << 2)
}

/// The target of a PC-relative branch: `offset` bytes from its delay slot.
#[inline(always)]
pub(crate) fn branch_target(pc: u64, offset: u64) -> u64 {
    pc.wrapping_add(4).wrapping_add(offset)
}
