//! The commpage: Disco's "special page" for privileged registers, reached
//! without changing the guest's image.
//!
//! Disco's figures relied on IRIX reading and writing privileged registers
//! as loads and stores to a page the monitor shares with it, instead of
//! trapping on every MFC0/MTC0. Here the guest image stays unchanged: the
//! first time a guest-kernel MFC0 or MTC0 of a register that behaves like
//! memory traps, the monitor rewrites that instruction in guest memory into
//! `lw`/`sw rt, 0x7000 + 4*rd($zero)`, so from then on it costs one load or
//! store (Linux's MIPS KVM did the same in its trap-and-emulate mode, with
//! its commpage at virtual address 0).
//!
//! While the guest kernel runs directly, real TLB entry 0 maps virtual page
//! 0x7000 to this VCPU's commpage (the even half 0x6000 stays invalid), under
//! the current machine ASID; in guest user mode entry 0 is empty, so user
//! processes see their own memory there. The page holds the virtual CP0
//! registers at `4 * number`: the monitor copies them in each time the
//! guest kernel is entered ([`store`]) and takes back the writable ones each
//! time it regains control ([`load`]).
//!
//! What the guest can tell (documented in docs/trace-format.md and
//! docs/timing.md):
//! - its kernel sees the commpage, not its own user mapping, at virtual
//!   0x7000–0x7fff, and patched code when it reads its own text;
//! - Cause's interrupt bits as read through the page are those of the
//!   monitor's last exit, not live (at most one quantum old);
//! - a Status written through the page takes effect at the next exit (the
//!   guest kernel in kestrel only writes Status to disable interrupts or
//!   set EXL before ERET, both of which are safe to defer).
//!
//! Count and Random (which move with time) and the registers whose writes
//! have side effects (EntryHi's ASID, Compare, Count, Wired, Cause, Config)
//! keep trapping.

use sim::hv::{
    cp0::reg,
    isa::{decode, Op},
    Lookup, TlbEntry,
};

use crate::guest::GuestCtx;
use crate::obs::MonEvent;
use crate::tlbctl;

/// Guest virtual address of the commpage in guest kernel mode: the highest
/// page `lw rt, imm($zero)` reaches with a positive 16-bit offset.
pub const BASE: u32 = 0x7000;
/// The real TLB entry that maps it.
pub const TLB_INDEX: usize = 0;

/// Registers read through the page: all but those that move with time.
fn readable(r: u32) -> bool {
    r < 32 && r != reg::COUNT && r != reg::RANDOM
}

/// Registers written through the page: plain storage, whose new value only
/// matters at the guest's next privileged operation (which traps).
const WRITABLE: [u32; 8] = [
    reg::INDEX,
    reg::ENTRY_LO0,
    reg::ENTRY_LO1,
    reg::CONTEXT,
    reg::PAGE_MASK,
    reg::STATUS,
    reg::EPC,
    reg::ERROR_EPC,
];

/// The load or store that replaces a guest-kernel MFC0/MTC0, if any.
pub fn rewrite(word: u32) -> Option<u32> {
    let insn = decode(word);
    let rt = (word >> 16) & 0x1F;
    let rd = (word >> 11) & 0x1F;
    let opcode = match insn.op {
        Op::Mfc0 if readable(rd) => 0x23,           // lw
        Op::Mtc0 if WRITABLE.contains(&rd) => 0x2B, // sw
        _ => return None,
    };
    Some((opcode << 26) | (rt << 16) | (BASE + 4 * rd))
}

/// Rewrites the trapping instruction at `pc` if it can use the page.
pub fn patch(ctx: &mut GuestCtx<'_>, pc: u64) {
    if !ctx.vcpu.commpage_on {
        return;
    }
    let Some((ma, word)) = ctx.code_word(pc) else {
        return;
    };
    let Some(new) = rewrite(word) else {
        return;
    };
    if ctx.bus.write_ram(ctx.core.id(), ma, 4, u64::from(new)) {
        ctx.charge(ctx.cost.patch);
        ctx.vcpu.stats.patched += 1;
        ctx.trace.emit(MonEvent::patch(pc, word, new));
    }
}

/// Whether `vaddr`, accessed in the guest's current mode, is the commpage.
pub fn covers<W>(ctx: &GuestCtx<'_, W>, vaddr: u64) -> bool {
    ctx.vcpu.commpage_on
        && ctx.vcpu.mode() != sim::hv::Mode::User
        && (vaddr as u32) >> 12 == BASE >> 12
}

/// Copies the virtual CP0 into the page before the guest kernel runs:
/// only the words that differ from what the page holds (most exits change
/// two or three registers).
pub fn store(ctx: &mut GuestCtx<'_>) {
    let stale = std::mem::take(&mut ctx.vcpu.commpage_stale);
    for r in 0..32u32 {
        let v = if readable(r) {
            ctx.vcpu.read_cp0(r, ctx.now) as u32
        } else {
            0
        };
        let i = r as usize;
        if v != ctx.vcpu.commpage_shadow[i] || stale & (1 << r) != 0 {
            ctx.vcpu.commpage_shadow[i] = v;
            let at = ctx.vcpu.commpage + u64::from(4 * r);
            ctx.bus.write_ram(ctx.core.id(), at, 4, u64::from(v));
        }
    }
    ctx.vcpu.commpage_live = true;
}

/// Takes back what the guest kernel wrote to the page since [`store`].
pub fn load(ctx: &mut GuestCtx<'_>) {
    if !ctx.vcpu.commpage_live {
        return;
    }
    ctx.vcpu.commpage_live = false;
    for r in WRITABLE {
        let Some(v) = ctx.bus.read_ram(ctx.vcpu.commpage + u64::from(4 * r), 4) else {
            continue;
        };
        if v as u32 != ctx.vcpu.commpage_shadow[r as usize] {
            // The register's write mask may keep fewer bits than the guest
            // stored: the word is rewritten on the next `store`.
            ctx.vcpu.commpage_stale |= 1 << r;
            // Sign-extended like MTC0 of a 32-bit register.
            let value = sim::hv::cp0::sext32(v);
            if let sim::hv::Cp0Write::Status = ctx.vcpu.write_cp0(r, value, ctx.now) {
                tlbctl::load_asid(ctx);
            }
        }
    }
}

/// Real TLB entry 0 as the guest's current mode needs it: the commpage pair
/// under the current machine ASID for the guest kernel, nothing for user
/// mode. A composed entry for the same pair and ASID is removed first (the
/// real TLB must never match twice).
pub fn map(ctx: &mut GuestCtx<'_>) {
    let masid = ctx.core.cp0().asid();
    let want = if ctx.vcpu.mode() == sim::hv::Mode::User || !ctx.vcpu.commpage_on {
        TlbEntry::unused(TLB_INDEX)
    } else {
        let pfn = (ctx.vcpu.commpage >> 12) as u32;
        let lo = sim::hv::tlb::lo::V | sim::hv::tlb::lo::D | (3 << sim::hv::tlb::lo::C_SHIFT);
        TlbEntry {
            page_mask: 0,
            vpn2: BASE & !0x1FFF,
            asid: masid,
            global: false,
            lo: [0, (pfn << sim::hv::tlb::lo::PFN_SHIFT) | lo],
        }
    };
    if ctx.core.tlb().read(TLB_INDEX) == want {
        return;
    }
    if want.vpn2 == BASE & !0x1FFF {
        if let Lookup::Hit(h) | Lookup::Multiple(h) = ctx.core.tlb().lookup(BASE, masid) {
            if h.index != TLB_INDEX {
                ctx.core.tlb_write(h.index, TlbEntry::unused(h.index));
            }
        }
    }
    ctx.core.tlb_write(TLB_INDEX, want);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sim::hv::isa::asm::Asm;
    use sim::hv::isa::Reg;

    fn word(build: impl FnOnce(&mut Asm) -> &mut Asm) -> u32 {
        let mut a = Asm::new(0xC000_0000);
        build(&mut a);
        a.finish().unwrap().first().copied().unwrap()
    }

    #[test]
    fn memory_like_registers_become_commpage_loads_and_stores() {
        // mfc0 k0, Cause -> lw k0, 0x7034(zero)
        let from = word(|a| a.mfc0(Reg::K0, reg::CAUSE));
        assert_eq!(rewrite(from), Some(0x8C1A_7034));
        // mtc0 t0, Status -> sw t0, 0x7030(zero)
        let from = word(|a| a.mtc0(Reg::T0, reg::STATUS));
        assert_eq!(rewrite(from), Some(0xAC08_7030));
    }

    #[test]
    fn registers_with_side_effects_keep_trapping() {
        for r in [reg::COUNT, reg::RANDOM] {
            assert_eq!(rewrite(word(|a| a.mfc0(Reg::T0, r))), None);
        }
        for r in [
            reg::ENTRY_HI,
            reg::COMPARE,
            reg::COUNT,
            reg::WIRED,
            reg::CAUSE,
        ] {
            assert_eq!(rewrite(word(|a| a.mtc0(Reg::T0, r))), None);
        }
        // Not a CP0 move at all.
        assert_eq!(rewrite(0), None);
    }
}
