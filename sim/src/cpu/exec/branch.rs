//! Branches and jumps (`../shared/docs/r4000-reference.md` §5.7): their
//! conditions and targets, shared with tier 2's micro-ops, and the links.

use super::{Flow, Regs};
use crate::isa::{Insn, Reg};

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

/// The return address a linking branch or jump at `pc` leaves: past its
/// delay slot.
#[inline(always)]
pub(crate) fn link(pc: u64) -> u64 {
    pc.wrapping_add(8)
}

/// A conditional branch at `pc`: its delay slot runs either way.
#[inline(always)]
pub(super) fn branch(cond: bool, pc: u64, i: &Insn) -> Flow {
    if cond {
        Flow::Taken(branch_target(pc, i.branch_offset()))
    } else {
        Flow::NotTaken
    }
}

/// A branch-likely at `pc`: its delay slot is annulled if not taken.
#[inline(always)]
pub(super) fn likely(cond: bool, pc: u64, i: &Insn) -> Flow {
    if cond {
        Flow::Taken(branch_target(pc, i.branch_offset()))
    } else {
        Flow::Annul
    }
}

/// JAL and the AL branches: they link whether or not they are taken
/// (§5.7).
#[inline(always)]
pub(super) fn and_link(r: &mut Regs, pc: u64, flow: Flow) -> Flow {
    r.set(Reg::RA, link(pc));
    flow
}

/// JALR: the target (rs, read before the link is written, so `jalr rs, rs`
/// jumps to the old value).
#[inline(always)]
pub(super) fn jalr(r: &mut Regs, rd: Reg, pc: u64, rs: u64) -> Flow {
    r.set(rd, link(pc));
    Flow::Taken(rs)
}
