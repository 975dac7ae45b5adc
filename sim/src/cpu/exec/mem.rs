//! Loads and stores (`../shared/docs/r4000-reference.md` §5.7, §4): the
//! aligned ones, the unaligned left/right pairs, and LL/SC. The effective
//! address is always rs plus the sign-extended offset. [`extend`] is shared
//! with tier 2's RAM fast path.

use super::super::cp0::sext32;
use super::super::exception::{Access, Exception};
use super::{need64, ExecContext, Flow, Regs};
use crate::isa::Insn;

/// A loaded value of `W` bytes (zero-extended by the context), sign- or
/// zero-extended to 64 bits as the instruction asks.
#[inline(always)]
pub(crate) fn extend<const W: u8, const SIGNED: bool>(raw: u64) -> u64 {
    match (W, SIGNED) {
        (1, true) => raw as u8 as i8 as i64 as u64,
        (2, true) => raw as u16 as i16 as i64 as u64,
        (4, true) => sext32(raw),
        _ => raw,
    }
}

#[inline(always)]
fn ea(i: &Insn, rs: u64) -> u64 {
    rs.wrapping_add(i.simm())
}

/// Address Error unless `vaddr` is aligned to `width`.
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

/// LB, LBU, LH, LHU, LW, LWU, LD: an aligned load of `W` bytes into rt.
#[inline(always)]
pub(super) fn load<C: ExecContext, const W: u8, const SIGNED: bool>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
) -> Result<Flow, Exception> {
    let ea = ea(i, rs);
    check_align(ea, W, Access::Load)?;
    let raw = c.load(ea, W)?;
    r.set(i.rt, extend::<W, SIGNED>(raw));
    r.gpr[0] = 0;
    c.loaded(i.rt);
    Ok(Flow::Next)
}

/// SB, SH, SW, SD: an aligned store of the low `W` bytes of rt.
#[inline(always)]
pub(super) fn store<C: ExecContext, const W: u8>(
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    let ea = ea(i, rs);
    check_align(ea, W, Access::Store)?;
    c.store(ea, W, rt)?;
    Ok(Flow::Next)
}

/// The aligned unit of `W` bytes holding the effective address, and the
/// address's byte offset in it (big-endian: 0 is the most significant).
fn unit<C: ExecContext, const W: u8>(c: &mut C, ea: u64) -> Result<(u64, u32), Exception> {
    let mask = u64::from(W) - 1;
    let m = c.load(ea & !mask, W).map_err(|e| at_ea(e, ea))?;
    Ok((m, (ea & mask) as u32))
}

/// LWL: the word's bytes from the effective address to the end of its
/// aligned word, into the most significant bytes of rt.
pub(super) fn lwl<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    let (m, k) = unit::<C, 4>(c, ea(i, rs))?;
    let keep = if k == 0 { 0 } else { (1u32 << (8 * k)) - 1 };
    let v = ((m as u32) << (8 * k)) | (rt as u32 & keep);
    loaded(r, c, i, sext32(u64::from(v)))
}

/// LWR: the aligned word's bytes up to the effective address, into the
/// least significant bytes of rt.
pub(super) fn lwr<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    let (m, k) = unit::<C, 4>(c, ea(i, rs))?;
    let shift = 8 * (3 - k);
    let keep = !(u32::MAX >> shift);
    let v = ((m as u32) >> shift) | (rt as u32 & keep);
    loaded(r, c, i, sext32(u64::from(v)))
}

/// LDL: [`lwl`] for doublewords.
pub(super) fn ldl<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    need64(c)?;
    let (m, k) = unit::<C, 8>(c, ea(i, rs))?;
    let keep = if k == 0 { 0 } else { (1u64 << (8 * k)) - 1 };
    loaded(r, c, i, (m << (8 * k)) | (rt & keep))
}

/// LDR: [`lwr`] for doublewords.
pub(super) fn ldr<C: ExecContext>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    need64(c)?;
    let (m, k) = unit::<C, 8>(c, ea(i, rs))?;
    let shift = 8 * (7 - k);
    let keep = !(u64::MAX >> shift);
    loaded(r, c, i, (m >> shift) | (rt & keep))
}

/// LL/LLD: an aligned load of `W` bytes that sets the link.
pub(super) fn load_linked<C: ExecContext, const W: u8>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
) -> Result<Flow, Exception> {
    if W == 8 {
        need64(c)?;
    }
    let ea = ea(i, rs);
    check_align(ea, W, Access::Load)?;
    let raw = c.load_linked(ea, W)?;
    loaded(r, c, i, if W == 4 { sext32(raw) } else { raw })
}

/// Writes a loaded value to rt and tells the cycle model.
#[inline(always)]
fn loaded<C: ExecContext>(r: &mut Regs, c: &mut C, i: &Insn, v: u64) -> Result<Flow, Exception> {
    r.set(i.rt, v);
    c.loaded(i.rt);
    Ok(Flow::Next)
}

/// SWL/SDL: the most significant bytes of rt, from the effective address
/// to the end of its aligned unit of `W` bytes.
pub(super) fn store_left<C: ExecContext, const W: u8>(
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    if W == 8 {
        need64(c)?;
    }
    let ea = ea(i, rs);
    let size = u64::from(W);
    let (k, base, top) = (ea & (size - 1), ea & !(size - 1), 8 * (size - 1));
    // Every byte lies in the same aligned unit, so in one page: the first
    // store faults if any would, and then nothing is written.
    for j in 0..(size - k) {
        c.store(base + k + j, 1, rt >> (top - 8 * j))
            .map_err(|e| at_ea(e, ea))?;
    }
    Ok(Flow::Next)
}

/// SWR/SDR: the least significant bytes of rt, from the start of the
/// aligned unit of `W` bytes up to the effective address.
pub(super) fn store_right<C: ExecContext, const W: u8>(
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    if W == 8 {
        need64(c)?;
    }
    let ea = ea(i, rs);
    let size = u64::from(W);
    let (k, base) = (ea & (size - 1), ea & !(size - 1));
    // One aligned unit, as for store_left.
    for j in 0..=k {
        c.store(base + j, 1, rt >> (8 * (k - j)))
            .map_err(|e| at_ea(e, ea))?;
    }
    Ok(Flow::Next)
}

/// SC/SCD: stores `W` bytes of rt if the link holds; rt becomes 1 if it
/// did, 0 if not.
pub(super) fn store_conditional<C: ExecContext, const W: u8>(
    r: &mut Regs,
    c: &mut C,
    i: &Insn,
    rs: u64,
    rt: u64,
) -> Result<Flow, Exception> {
    if W == 8 {
        need64(c)?;
    }
    let ea = ea(i, rs);
    check_align(ea, W, Access::Store)?;
    let ok = c.store_conditional(ea, W, rt)?;
    r.set(i.rt, u64::from(ok));
    Ok(Flow::Next)
}
