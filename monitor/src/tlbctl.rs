//! Composition of guest TLB entries into the real TLB (virtual → guest
//! physical → machine), machine ASIDs in the real EntryHi, and the L2TLB
//! refill path.

use sim::hv::{cp0::reg, tlb::lo, tlb::TlbHit, Lookup, TlbEntry, TLB_ENTRIES};

use crate::guest::{GuestCtx, Shootdown};
use crate::l2tlb::L2Entry;
use crate::mem::GuestPhys;
use crate::obs::{Half, MonEvent};

/// Puts the machine ASID of the guest's current ASID into the real EntryHi,
/// starting a new ASID generation (and flushing this CPU's TLB; the monitor
/// flushes the others) when they run out.
pub fn load_asid(ctx: &mut GuestCtx<'_>) {
    let guest_asid = ctx.vcpu.cp0.asid();
    let masid = match ctx.wide.asids.get(ctx.vcpu.space, guest_asid) {
        Some(m) => m,
        None => {
            ctx.wide.asids.new_generation();
            flush_real_tlb(ctx.core);
            ctx.wide.asids.get(ctx.vcpu.space, guest_asid).unwrap_or(1)
        }
    };
    if ctx.core.cp0().asid() != masid {
        ctx.core.write_cp0(reg::ENTRY_HI, u64::from(masid));
    }
}

/// Puts into the ASID field of `core`'s real EntryHi the machine ASID of
/// `(space, guest_asid)`, keeping its VPN2 (which an exit may read), as
/// `load_asid` does for a whole context (the parallel mode's catching up
/// with a generation another CPU started).
pub fn retag(
    core: &mut sim::hv::Core,
    asids: &mut crate::mem::Asids,
    space: usize,
    guest_asid: u8,
) {
    let masid = match asids.get(space, guest_asid) {
        Some(m) => m,
        None => {
            asids.new_generation();
            flush_real_tlb(core);
            asids.get(space, guest_asid).unwrap_or(1)
        }
    };
    let hi = core.cp0().entry_hi;
    core.write_cp0(reg::ENTRY_HI, (hi & !0xFF) | u64::from(masid));
}

/// Brings a physical CPU's real TLB to the current generation of its VM's
/// machine ASIDs (`asids`), in the parallel mode, whenever the CPU holds the
/// VM-wide parts of a split VM: `generation` is the one its TLB holds
/// entries of.
///
/// Another CPU of the VM may have started a generation (its ASIDs ran
/// out) while this one ran the guest directly or in the engine: until now
/// this CPU used its own entries under its old machine ASID, which still
/// meant what they did for it. Before it looks up or installs under a
/// machine ASID of the new generation (which may name another of its guest
/// ASIDs), its TLB is flushed and its real EntryHi takes the new ASID of
/// the guest's current one (its VPN2, which an exit may be about to read,
/// stays).
///
/// Shootdowns need no such catching up: they name the shooting VCPU's own
/// address space (`engine::shoot_down`), whose machine ASIDs no other VCPU
/// uses, and a VCPU stays on one CPU for a whole batch, whose own TLB the
/// shootdown reaches at once. The other CPUs' stale entries of that space
/// can be hit only once the VCPU is seated there, after the main thread's
/// boundary, which first applies every shootdown of the batch to every CPU
/// (`Parallel::take_back`).
pub fn catch_up(
    core: &mut sim::hv::Core,
    asids: &mut crate::mem::Asids,
    vcpu: &crate::vcpu::Vcpu,
    generation: &mut u64,
) {
    if asids.generation == *generation {
        return;
    }
    flush_real_tlb(core);
    retag(core, asids, vcpu.space, vcpu.cp0.asid());
    *generation = asids.generation;
}

/// Invalidates every real TLB entry of a CPU.
pub fn flush_real_tlb(core: &mut sim::hv::Core) {
    for i in 0..TLB_ENTRIES {
        core.tlb_write(i, TlbEntry::unused(i));
    }
}

/// Composes the 8 KB page pair around `va` from virtual TLB entry
/// `vtlb_index`, caches it in the L2TLB and writes it to the real TLB.
///
/// On pass-through memory (`crate::memstate`) nothing is composed: the
/// guest's frame goes into the real entry as it is once it is known to lie
/// inside the VM's memory, which is what keeps the monitor's own pages
/// (the commpages above it, other VMs) out of the guest's reach.
pub fn compose_and_install(ctx: &mut GuestCtx<'_>, va: u32, vtlb_index: usize) {
    let e = ctx.vcpu.tlb.read(vtlb_index);
    let (mut composed, mut passed_any) = (false, false);
    let base = va & !0x1FFF;
    let mut reals = [0u32; 2];
    let mut gpas = [None; 2];
    let mut mpas = [None; 2];
    for (half, real) in reals.iter_mut().enumerate() {
        let page_va = base + (half as u32) * 0x1000;
        let size = e.page_size();
        let guest_lo = e.lo[usize::from(page_va & size != 0)];
        if guest_lo & lo::V == 0 {
            continue;
        }
        let hit = TlbHit {
            index: vtlb_index,
            lo: guest_lo,
            page_size: size,
        };
        let gpa = hit.paddr(page_va);
        gpas[half] = Some(gpa);
        // A guest page outside the VM's memory stays invalid in the real
        // TLB; touching it is a bus error for the guest (see `exit`).
        let passed = u32::try_from(gpa >> 12).is_ok_and(|g| ctx.pmap.passthrough.contains(g));
        composed |= !passed;
        passed_any |= passed;
        let ma = if passed {
            (gpa < ctx.pmap.size()).then_some(crate::mem::MachineAddr(gpa))
        } else {
            ctx.pmap.translate(GuestPhys(gpa))
        };
        if let Some(ma) = ma {
            mpas[half] = Some(ma.0);
            let mpfn = (ma.0 >> 12) as u32;
            *real = (mpfn << lo::PFN_SHIFT) | (guest_lo & (lo::D | lo::V | (7 << lo::C_SHIFT)));
            if ctx.pmap.write_protected(GuestPhys(gpa)) {
                // Being copied: a store must exit and wait (`remap`).
                *real &= !lo::D;
            }
        }
    }
    let charge = if composed || !passed_any {
        ctx.vcpu.stats.composed += 1;
        ctx.cost.compose
    } else {
        ctx.vcpu.stats.passed_through += 1;
        ctx.cost.passthrough
    };
    ctx.core.charge(charge);
    ctx.vcpu.stats.monitor_cycles += charge;
    // Below 48: exact.
    let l2 = L2Entry {
        vpn2: va >> 13,
        guest_asid: e.asid,
        global: e.global,
        vtlb_index: vtlb_index as u8,
        lo: reals,
    };
    ctx.vcpu.l2tlb.insert(l2);
    let index = install(ctx, &l2);
    let masid = ctx.core.cp0().asid();
    ctx.trace.emit(MonEvent::Composed {
        va: va & !0x1FFF,
        guest_asid: ctx.vcpu.cp0.asid(),
        halves: [Half::new(gpas[0], mpas[0]), Half::new(gpas[1], mpas[1])],
        masid,
        index,
    });
}

/// Writes a composed pair into the real TLB under the current machine
/// ASID, replacing an entry for the same pair if there is one (the real TLB
/// must never hold duplicates) and otherwise the next in round-robin order.
pub fn install(ctx: &mut GuestCtx<'_>, l2: &L2Entry) -> usize {
    let masid = ctx.core.cp0().asid();
    let va = l2.vpn2 << 13;
    let index = match ctx.core.tlb().lookup(va, masid) {
        Lookup::Hit(h) | Lookup::Multiple(h) => h.index,
        Lookup::Miss => {
            // Entry 0 is the commpage's.
            *ctx.tlb_cursor = *ctx.tlb_cursor % (TLB_ENTRIES - 1) + 1;
            *ctx.tlb_cursor
        }
    };
    ctx.core.tlb_write(
        index,
        TlbEntry {
            page_mask: 0,
            vpn2: va,
            asid: masid,
            global: false,
            lo: l2.lo,
        },
    );
    index
}

/// The exit path for a real TLB refill: L2TLB first, then the virtual TLB.
/// Returns false when the guest itself has no mapping and must take the
/// refill exception.
pub fn refill(ctx: &mut GuestCtx<'_>, va: u32) -> bool {
    let guest_asid = ctx.vcpu.cp0.asid();
    let odd = usize::from(va & 0x1000 != 0);
    // A pair whose half is invalid is left to the virtual TLB: if the entry
    // is still there the guest gets TLB-invalid, if it was evicted a refill.
    let cached = ctx.vcpu.l2tlb.lookup(va, guest_asid);
    if let Some(l2) = cached.filter(|e| e.lo[odd] & lo::V != 0) {
        ctx.core.charge(ctx.cost.l2tlb_refill);
        ctx.vcpu.stats.monitor_cycles += ctx.cost.l2tlb_refill;
        let index = install(ctx, &l2);
        ctx.trace.emit(MonEvent::L2Hit { va, index });
        return true;
    }
    ctx.trace.emit(MonEvent::L2Miss { va });
    match ctx.vcpu.tlb.lookup(va, guest_asid) {
        Lookup::Hit(h) | Lookup::Multiple(h) => {
            compose_and_install(ctx, va, h.index);
            true
        }
        Lookup::Miss => false,
    }
}

/// Removes from a real TLB the entries `what` names of address space `space`.
pub fn shoot_down(
    core: &mut sim::hv::Core,
    asids: &crate::mem::Asids,
    space: usize,
    what: Shootdown,
) {
    let (first, last) = match what {
        Shootdown::Range { first, last } => (first, last),
        Shootdown::Space => (0, u32::MAX),
    };
    for i in 0..TLB_ENTRIES {
        let e = core.tlb().read(i);
        if e.vpn2 >= 0x8000_0000 && e.vpn2 < 0xC000_0000 {
            continue; // an unused entry
        }
        if e.vpn2 >= first & !0x1FFF && e.vpn2 <= last && asids.owned_by(space, e.asid) {
            core.tlb_write(i, TlbEntry::unused(i));
        }
    }
}
