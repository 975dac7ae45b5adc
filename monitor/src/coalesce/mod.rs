//! Coalesced I/O: many device accesses, one virtualization event
//! (docs/monitor.md §4, `../shared/docs/design.md` §8 "per-region decisions").
//!
//! When a guest-kernel device access traps, the monitor looks up the
//! trapping instruction's guest-physical address in a per-VM table. On a
//! miss it scans ahead (`scan`) for more accesses that would trap on the
//! guest's path and records what it found: a block (its size, the words it
//! covers and their hash) or a single access. A block is emulated in one
//! event by the engine, the one interpreter, and the guest resumes after
//! it. Later traps at a recorded address re-hash the block's words; a
//! mismatch (the code changed, or the page was remapped) drops the entry.
//! A block is only recorded when its emulation costs less than the exits
//! it saves under the cost table (`pays`).

pub mod ring;
pub mod scan;
pub mod state;

use sim::hv::{
    isa::{decode, Reg},
    Access, DeviceId, Flow, Regs, REGISTRY,
};

use crate::cost::Cost;
use crate::engine::{self, EngineStop};
use crate::guest::GuestCtx;
use crate::mem::GuestPhys;
use crate::obs::{low32, MonEvent, ScanOutcome};
use scan::{Found, Ranges};
pub use state::{Cut, Entry, IoConfig, IoStats, Policy, Site, VmIo, CONTEXTS};

/// The default extent of a device type: how far apart a driver's accesses
/// to it lie. The console is written once per character, with a formatting
/// loop (kestrel's `kprintf`, `sys_write`) between two writes; the disk's
/// registers and buffer are accessed back to back.
pub fn default_extent(dev: Option<DeviceId>) -> u32 {
    match dev {
        Some(DeviceId::Console) => 64,
        Some(DeviceId::Disk) => 32,
        _ => 16,
    }
}

/// No block is longer than this many instructions.
pub const MAX_BLOCK: u32 = 4096;

/// The device whose window holds `gpa`.
pub fn device_at(gpa: GuestPhys) -> Option<DeviceId> {
    REGISTRY
        .iter()
        .find(|&&(_, base, size)| gpa.0.checked_sub(base).is_some_and(|o| o < size))
        .map(|&(id, _, _)| id)
}

/// The cost rule: the cycles a block of `size` instructions with `accesses`
/// trapping accesses, covering `words` words, saves over taking each
/// access as its own exit (negative: it costs more). Direct execution of
/// the other instructions is counted at the hardware's base rate, which
/// leaves out interlocks and branch penalties: the rule errs towards
/// declining. What both ways pay (the first exit, each device model run)
/// cancels out.
pub fn saving(cost: &Cost, size: u32, accesses: u32, words: u64) -> i64 {
    let t = sim::hv::TIMING;
    let per_exit = [cost.exit, cost.lookup, cost.emulate]
        .iter()
        .fold(t.exception, |a, c| a.saturating_add(*c));
    let exits = u64::from(accesses.saturating_sub(1))
        .saturating_mul(per_exit)
        .saturating_add(u64::from(size.saturating_sub(accesses)) * t.base);
    let block = u64::from(size.saturating_sub(1))
        .saturating_mul(cost.engine_insn)
        .saturating_add(words.saturating_mul(cost.hash));
    i64::try_from(exits).unwrap_or(i64::MAX) - i64::try_from(block).unwrap_or(i64::MAX)
}

/// How the trap that led here was taken.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTrap {
    /// Where the engine starts: the trapping instruction, or its branch.
    pub epc: u64,
    pub fault_pc: u64,
    pub bd: bool,
    /// The device register's guest-physical address.
    pub gpa: GuestPhys,
}

/// Handles a guest-kernel device-access trap under the VM's policy.
pub fn device_trap(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    t: &DeviceTrap,
    budget_end: u64,
) -> EngineStop {
    regs.jump_to(t.epc);
    let at_least = 1 + u32::from(t.bd);
    let policy = ctx.wide.io.config.policy;
    if matches!(policy, Policy::Off | Policy::Ring) {
        return engine::run(ctx, regs, at_least, budget_end);
    }
    let Ok(GuestPhys(key)) = ctx.translate(t.fault_pc, Access::Fetch) else {
        return engine::run(ctx, regs, at_least, budget_end);
    };
    ctx.wide.io.stats.lookups += 1;
    let c = ctx.cost.lookup;
    ctx.charge(c);
    let ra = regs.get(Reg::RA);
    let entry = ctx.wide.io.table.get(&key).copied().unwrap_or_default();
    let slot = entry
        .sites
        .iter()
        .position(|s| s.is_some_and(|s| s.pc == t.epc && s.ra == ra));
    let found = slot.and_then(|i| entry.sites.get(i).copied().flatten());
    let site = match found {
        Some(s) if still_holds(ctx, &s) => {
            ctx.wide.io.stats.hits += 1;
            s
        }
        stale => {
            if stale.is_some() {
                ctx.wide.io.stats.dropped += 1;
                ctx.trace.emit(MonEvent::CoalesceDrop { pc: low32(t.epc) });
            }
            let s = record(ctx, regs, t);
            let e = ctx.wide.io.table.entry(key).or_default();
            let i = slot.unwrap_or(e.next);
            if slot.is_none() {
                e.next = (e.next + 1) % CONTEXTS;
            }
            if let Some(x) = e.sites.get_mut(i) {
                *x = Some(s);
            }
            s
        }
    };
    let traps = ctx
        .wide
        .io
        .table
        .get_mut(&key)
        .and_then(|e| {
            e.sites
                .iter_mut()
                .flatten()
                .find(|s| s.pc == t.epc && s.ra == ra)
        })
        .map_or(1, |s| {
            s.traps += 1;
            s.traps
        });
    if !site.is_block() || (policy == Policy::Second && traps < 2) {
        return engine::run(ctx, regs, at_least, budget_end);
    }
    match run_block(ctx, regs, &site, at_least, budget_end) {
        Some(stop) => stop,
        None => engine::run(ctx, regs, 0, budget_end),
    }
}

/// Whether a recorded block's words still hash the same (charged per word).
fn still_holds(ctx: &mut GuestCtx<'_>, s: &Site) -> bool {
    if !s.is_block() {
        return true;
    }
    let c = ctx.cost.hash.saturating_mul(s.ranges.words());
    ctx.charge(c);
    scan::hash(ctx, &s.ranges) == Some(s.hash)
}

/// Scans from the trap: what to record for it.
fn record(ctx: &mut GuestCtx<'_>, regs: &Regs, t: &DeviceTrap) -> Site {
    let extent = ctx
        .wide
        .io
        .config
        .extent
        .unwrap_or_else(|| default_extent(device_at(t.gpa)));
    let cost = ctx.cost;
    let found: Found = scan::scan(ctx, regs, extent, MAX_BLOCK, |size, accesses, words| {
        saving(&cost, size, accesses, words)
    });
    ctx.wide.io.stats.scans += 1;
    ctx.wide.io.stats.scanned += u64::from(found.scanned);
    let c = ctx.cost.scan.saturating_mul(u64::from(found.scanned));
    ctx.charge(c);
    let declined = found.size == 0 && found.seen > 1;
    let hash = if found.size > 1 {
        charged_hash(ctx, &found.ranges)
    } else {
        0
    };
    let site = Site {
        pc: t.epc,
        ra: regs.get(Reg::RA),
        hash,
        size: found.size.max(1),
        accesses: found.accesses.max(1),
        ranges: found.ranges,
        declined,
        traps: 0,
    };
    ctx.wide.io.stats.declined += u64::from(declined);
    ctx.trace.emit(MonEvent::CoalesceScan {
        pc: low32(t.epc),
        scanned: found.scanned,
        outcome: if declined {
            ScanOutcome::Declined {
                accesses: found.seen,
                cost: -found.seen_saving,
            }
        } else if site.size > 1 {
            ScanOutcome::Block {
                size: site.size,
                accesses: site.accesses,
                saving: found.saving,
            }
        } else {
            ScanOutcome::Single
        },
    });
    site
}

fn charged_hash(ctx: &mut GuestCtx<'_>, ranges: &Ranges) -> u64 {
    let c = ctx.cost.hash.saturating_mul(ranges.words());
    ctx.charge(c);
    scan::hash(ctx, ranges).unwrap_or(0)
}

/// Emulates a recorded block in one event: the engine interprets from the
/// trap on while the PC stays within the block's words, for at most its
/// recorded length, and stops where the hardware would stop the stream
/// (an interrupt now pending, an exception, a privileged instruction or
/// WAIT) or at the end of the quantum. The guest resumes after it.
/// `Some` if the engine must stop at once (a device request, WAIT).
fn run_block(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    site: &Site,
    at_least: u32,
    budget_end: u64,
) -> Option<EngineStop> {
    let start = regs.pc;
    let devices0 = ctx.vcpu.stats.vdev_accesses;
    ctx.trace.begin_block();
    let mut n = 0u32;
    let mut cut = None;
    let stop = loop {
        if n >= site.size {
            break None;
        }
        if ctx.wide.board.has_actions() || ctx.stop.is_some() {
            break Some(EngineStop::Board);
        }
        if n >= at_least {
            let lines = ctx.wide.board.irq_lines(ctx.vcpu.index);
            let next = ctx.code_word(regs.pc).map(|(_, w)| decode(w).op);
            cut = if ctx.vcpu.update_interrupts(ctx.core.cycles(), lines) != 0 {
                Some(Cut::Interrupt)
            } else if ctx.core.cycles() >= budget_end {
                Some(Cut::Quantum)
            } else if !site.ranges.contains(regs.pc) {
                Some(Cut::BranchOut)
            } else if next.is_none_or(scan::ends_block) {
                Some(Cut::Privileged)
            } else {
                None
            };
            if cut.is_some() {
                break None;
            }
        }
        let cost = if n < at_least {
            ctx.cost.emulate
        } else {
            ctx.cost.engine_insn
        };
        n += 1;
        match engine::step(ctx, regs, cost) {
            Some(Flow::Wait) => break Some(EngineStop::Wait),
            Some(_) => {}
            None => {
                cut = Some(Cut::Exception);
                break None;
            }
        }
    };
    let accesses = ctx.vcpu.stats.vdev_accesses - devices0;
    let st = &mut ctx.wide.io.stats;
    st.blocks += 1;
    st.block_accesses += accesses;
    st.block_insns += u64::from(n);
    st.cut += u64::from(cut.is_some());
    ctx.trace.end_block(start, n, regs.pc, cut);
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::COST;

    #[test]
    fn the_cost_rule_weighs_saved_exits_against_interpretation() {
        // Four register writes back to back, 3 instructions apart (li, sw):
        // three exits of 8 + 12 + 4 + 10 saved, 8 direct cycles lost; 11
        // instructions at 20 and 12 words at 2 paid.
        assert_eq!(saving(&COST, 12, 4, 12), 3 * 34 + 8 - (11 * 20 + 12 * 2));
        // A console loop of 10 instructions a byte never pays here ...
        assert!(saving(&COST, 100, 10, 17) < 0);
        // ... and pays where exits cost 1000 cycles.
        let mut dear = COST;
        dear.exit = 1000;
        assert!(saving(&dear, 100, 10, 17) > 0);
        // One access alone saves nothing.
        assert!(saving(&dear, 1, 1, 1) <= 0);
        // Absurd tables saturate instead of overflowing.
        let huge = Cost {
            exit: u64::MAX,
            ..COST
        };
        assert!(saving(&huge, 4096, 4096, 4096) > 0);
    }

    #[test]
    fn policies_parse_by_name() {
        for name in Policy::NAMES {
            assert_eq!(Policy::parse(name).map(Policy::name), Some(name));
        }
        assert_eq!(Policy::parse("sometimes"), None);
        assert_eq!(Policy::default(), Policy::Block);
    }
}
