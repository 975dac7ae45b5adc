//! The scan: a dry run of the guest from the trapping instruction, with the
//! register values it has at the trap, through the simulator's one
//! interpreter (`sim::hv::execute`) against a context that changes
//! nothing. It follows the stream as the guest would execute it (branches,
//! calls and returns, loops over the disk buffer) and notes where accesses
//! that would trap lie on it.
//!
//! Guest memory is read as it is; the dry run's own stores go to a small
//! overlay, so loads after them see them. A device register cannot be read
//! without its side effects, so a dry-run device read returns 0: a guess.
//! A wrong guess costs nothing but the block's shape, because a block is
//! always emulated for real by the engine and ends where the real run
//! leaves the words the scan covered.

use sim::hv::{
    cp0::Mode,
    isa::{decode, Op},
    Access, ExcCode, Exception, ExecContext, Flow, Regs,
};

pub use super::state::{Ranges, MAX_RANGES};
use crate::engine;
use crate::exit::is_device;
use crate::guest::{self, GuestCtx};
use crate::mem::GuestPhys;

/// FNV-1a over the words the ranges cover, read through the guest's
/// current mapping; `None` if one of them is no longer mapped RAM.
pub fn hash(ctx: &GuestCtx<'_>, ranges: &Ranges) -> Option<u64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &(s, e) in ranges.runs.iter().take(ranges.n) {
        let mut pc = s;
        while pc < e {
            let (_, w) = ctx.code_word(pc)?;
            for b in w.to_be_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            pc += 4;
        }
    }
    Some(h)
}

/// Instructions that end a scan and a block where the hardware would stop
/// the stream: privileged instructions (they trap), system calls, breaks,
/// traps and ERET (exceptions), LL/SC (the link must not span the monitor).
pub fn ends_block(op: Op) -> bool {
    engine::is_privileged(op)
        || matches!(
            op,
            Op::Syscall
                | Op::Break
                | Op::Ll
                | Op::Lld
                | Op::Sc
                | Op::Scd
                | Op::Teq
                | Op::Tne
                | Op::Tge
                | Op::Tgeu
                | Op::Tlt
                | Op::Tltu
                | Op::Teqi
                | Op::Tnei
                | Op::Tgei
                | Op::Tgeiu
                | Op::Tlti
                | Op::Tltiu
                | Op::Reserved
        )
}

/// Overlay entries for the dry run's stores (aligned doublewords).
const OVERLAY: usize = 32;

/// The dry-run context: guest memory read-only, stores in an overlay.
struct ScanCtx<'c, 'a> {
    g: &'c GuestCtx<'a>,
    overlay: [(u64, u64); OVERLAY],
    n: usize,
    /// The last instruction made an access that traps under direct execution.
    trapped: bool,
}

/// Ends the dry run (never delivered to the guest).
fn stop() -> Exception {
    Exception::new(ExcCode::Dbe)
}

impl ScanCtx<'_, '_> {
    /// Notes whether an access at `vaddr` (`gpa`) would trap when the guest
    /// kernel runs directly (KSEG0/KSEG1, or a device page it mapped).
    fn note(&mut self, vaddr: u64, gpa: GuestPhys) -> bool {
        let device = is_device(self.g, gpa);
        let direct = guest::directly_executable(vaddr, Mode::Supervisor)
            || crate::commpage::covers(self.g, vaddr);
        self.trapped |= device || !direct;
        device
    }

    fn ram_dword(&self, gpa: u64) -> Option<u64> {
        if let Some(&(_, v)) = self.overlay.iter().take(self.n).find(|e| e.0 == gpa) {
            return Some(v);
        }
        let ma = self.g.pmap.translate(GuestPhys(gpa))?;
        self.g.bus.read_ram(ma.0, 8)
    }
}

/// The bits of `width` bytes at byte offset `off` of a big-endian doubleword.
fn lane(off: u64, width: u8) -> (u32, u64) {
    let bits = u32::from(width) * 8;
    let shift = 64 - bits - (off as u32) * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    (shift, mask)
}

impl ExecContext for ScanCtx<'_, '_> {
    fn allow64(&self) -> bool {
        self.g.vcpu.cp0.allow64()
    }

    fn cop_usable(&self, n: u8) -> bool {
        self.g.vcpu.cp0.cop_usable(n)
    }

    fn load(&mut self, vaddr: u64, width: u8) -> Result<u64, Exception> {
        if crate::commpage::covers(self.g, vaddr) {
            let ma = self.g.vcpu.commpage + (vaddr & 0xFFF);
            return self.g.bus.read_ram(ma, width).ok_or(stop());
        }
        let gpa = self.g.translate(vaddr, Access::Load)?;
        if self.note(vaddr, gpa) {
            return Ok(0);
        }
        let dw = self.ram_dword(gpa.0 & !7).ok_or(stop())?;
        let (shift, mask) = lane(gpa.0 & 7, width);
        Ok((dw >> shift) & mask)
    }

    fn store(&mut self, vaddr: u64, width: u8, value: u64) -> Result<(), Exception> {
        if crate::commpage::covers(self.g, vaddr) {
            return Ok(());
        }
        let gpa = self.g.translate(vaddr, Access::Store)?;
        if self.note(vaddr, gpa) {
            return Ok(());
        }
        let base = gpa.0 & !7;
        let old = self.ram_dword(base).ok_or(stop())?;
        let (shift, mask) = lane(gpa.0 & 7, width);
        let new = (old & !(mask << shift)) | ((value & mask) << shift);
        if let Some(e) = self.overlay.iter_mut().take(self.n).find(|e| e.0 == base) {
            e.1 = new;
            return Ok(());
        }
        let slot = self.overlay.get_mut(self.n).ok_or(stop())?;
        *slot = (base, new);
        self.n += 1;
        Ok(())
    }

    fn load_linked(&mut self, _vaddr: u64, _width: u8) -> Result<u64, Exception> {
        Err(stop())
    }

    fn store_conditional(&mut self, _v: u64, _w: u8, _x: u64) -> Result<bool, Exception> {
        Err(stop())
    }

    // Privileged instructions end the scan before they execute
    // (`ends_block`); these are never reached.
    fn read_cp0(&mut self, _reg: u32) -> u64 {
        0
    }
    fn write_cp0(&mut self, _reg: u32, _value: u64, _dword: bool) {}
    fn tlbr(&mut self) {}
    fn tlbwi(&mut self) {}
    fn tlbwr(&mut self) {}
    fn tlbp(&mut self) {}
    fn eret(&mut self) -> u64 {
        0
    }
    fn cache(&mut self, _op: u32, _vaddr: u64) -> Result<(), Exception> {
        Err(stop())
    }
}

/// What a scan found: the block it proposes (the path up to one of the
/// accesses on it) and how much it looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Instructions followed in all.
    pub scanned: u32,
    /// The proposed block: instructions on the path from the trap through
    /// its last access, trapping accesses among them, and the words it
    /// covers.
    pub size: u32,
    pub accesses: u32,
    pub ranges: Ranges,
    /// The block's estimated saving under the cost table (see `pays`).
    pub saving: i64,
    /// The most trapping accesses the path held within the extent, and
    /// the estimated saving of the block through the last of them (what a
    /// declined block would have saved: negative).
    pub seen: u32,
    pub seen_saving: i64,
}

/// Follows the guest from `regs` (the trapping instruction, or the branch
/// before it) for at most `extent` instructions past the last trapping
/// access found, and `max` in all. `pays(size, accesses, words)` is the
/// cost rule's estimated saving of a block; the block kept is the prefix
/// that saves most (none if no prefix saves anything: a single access).
pub fn scan(
    ctx: &GuestCtx<'_>,
    regs: &Regs,
    extent: u32,
    max: u32,
    pays: impl Fn(u32, u32, u64) -> i64,
) -> Found {
    let mut r = regs.clone();
    let mut cx = ScanCtx {
        g: ctx,
        overlay: [(0, 0); OVERLAY],
        n: 0,
        trapped: false,
    };
    let mut ranges = Ranges::default();
    let mut found = Found::default();
    let (mut accesses, mut last) = (0u32, 0u32);
    let mut i = 0u32;
    while i < max && i <= last.saturating_add(extent) {
        let pc = r.pc;
        let Some((_, word)) = ctx.code_word(pc) else {
            break;
        };
        let insn = decode(word);
        if ends_block(insn.op) || !ranges.add(pc) {
            break;
        }
        cx.trapped = false;
        let flow = match sim::hv::execute(&mut r, &mut cx, insn, pc) {
            Ok(f) => f,
            Err(_) => break,
        };
        if flow == Flow::Wait {
            break;
        }
        r.advance(flow);
        i += 1;
        if cx.trapped {
            accesses += 1;
            last = i;
            let saving = pays(i, accesses, ranges.words());
            if saving > found.saving {
                found = Found {
                    size: i,
                    accesses,
                    ranges,
                    saving,
                    ..found
                };
            }
            found.seen = accesses;
            found.seen_saving = saving;
        }
    }
    found.scanned = i;
    found
}
