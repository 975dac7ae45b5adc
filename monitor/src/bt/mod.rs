//! Binary translation of guest-kernel code (issue #17; docs/translation.md).
//!
//! Guest-kernel code is cut into blocks (`block`), each decoded once from
//! the bus's decoded copy of its page and cached by machine address and
//! virtual PC. A block runs against the virtual CPU (`exec`): ordinary
//! instructions at their native cycles, privileged ones as inline
//! operations on the VCPU instead of traps. `region` decides, per guest
//! page, whether window code runs directly or translated.
//!
//! The host runs a translated block through the simulator's shared
//! instruction semantics; what stands for the translated code is its
//! modelled cost (`cost.rs`, the `bt_*` rows; docs/timing.md).

mod block;
mod chain;
mod code;
mod exec;
pub mod region;
mod run;
pub mod state;

use sim::hv::{ExcCode, Exception, Flow, Mode, Regs};

use crate::engine::{self, EngineStop};
use crate::guest::{self, GuestCtx};
use crate::obs::MonEvent;

use state::Ctx;
pub use state::{Bt, BtStats, Cache, Exec, Regions, Spent};

/// Whether the guest-kernel code at `pc` runs translated now. Not while a
/// debugger is attached: its breakpoints and steps need direct execution's
/// traced loop or the engine's instruction-at-a-time one (see `chooses`).
pub fn wants(ctx: &GuestCtx<'_>, pc: u64) -> bool {
    ctx.debug.is_none() && policy_wants(ctx, pc)
}

/// `wants`, counting the runs a debugger keeps from translation.
pub fn chooses(ctx: &mut GuestCtx<'_>, pc: u64) -> bool {
    if ctx.debug.is_some() && policy_wants(ctx, pc) {
        ctx.wide.bt.stats.fallback_debugger += 1;
        return false;
    }
    wants(ctx, pc)
}

fn policy_wants(ctx: &GuestCtx<'_>, pc: u64) -> bool {
    ctx.vcpu.mode() != Mode::User && kernel_code_translated(ctx, pc)
}

/// Whether guest-kernel code at `pc` runs translated under the policy.
fn kernel_code_translated(ctx: &GuestCtx<'_>, pc: u64) -> bool {
    match ctx.wide.bt.exec {
        Exec::Direct => false,
        Exec::Translate => true,
        Exec::Adaptive => {
            !guest::directly_executable(pc, Mode::Supervisor) || ctx.wide.bt.regions.translated(pc)
        }
    }
}

/// Whether exception `code`, taken by code running in `from` (`bd`: in a
/// delay slot), is reflected straight into the guest's translated handler
/// (`reflect_inline`): a user's system call outside a delay slot, when the
/// code its general vector leads to runs translated and no debugger
/// watches (whose breakpoints may sit on the vector).
pub fn reflects_inline(ctx: &GuestCtx<'_>, code: ExcCode, from: Mode, bd: bool) -> bool {
    if code != ExcCode::Sys || from != Mode::User || bd || ctx.debug.is_some() {
        return false;
    }
    let vector = if ctx.vcpu.cp0.bev() {
        0xFFFF_FFFF_BFC0_0380
    } else {
        0xFFFF_FFFF_8000_0180
    };
    let handler = engine::trampoline_target(ctx, vector).unwrap_or(vector);
    kernel_code_translated(ctx, handler)
}

/// Reflects a user's system call into the guest's translated handler
/// without an exit (`bt_reflect` instead of `exit` + `reflect`; docs/timing.md):
/// the monitor's vector recognizes the call and enters the handler's
/// translated block, which runs in the monitor's context, so nothing is
/// saved, restored or returned to. What the guest sees is the reflection's.
pub fn reflect_inline(ctx: &mut GuestCtx<'_>, regs: &mut Regs, e: &Exception, pc: u64, bd: bool) {
    charge(ctx, Spent::Reflect, ctx.cost.bt_reflect);
    // `engine::reflect` (whose signature the reflect lab fixes) charges
    // the full reflection; this one is paid above.
    let full = std::mem::replace(&mut ctx.cost.reflect, 0);
    engine::reflect(ctx, regs, e, pc, bd);
    ctx.cost.reflect = full;
}

/// Translated instructions without a privileged one after which a run of
/// `exec=adaptive` that has reached a direct page hands it back to direct
/// execution: a call out of a trap-heavy page into plain code (a system
/// call's body) stays translated until its `eret`, which is the exit saved.
const LEAVE_AFTER: u64 = 2000;

/// Whether a run of translated code that has gone `quiet` instructions
/// without a privileged one goes on at `pc`.
fn keeps(ctx: &GuestCtx<'_>, pc: u64, quiet: u64) -> bool {
    wants(ctx, pc)
        || (ctx.wide.bt.exec == Exec::Adaptive
            && ctx.vcpu.mode() != Mode::User
            && quiet < LEAVE_AFTER)
}

/// Called at an exit for guest-kernel instruction `fault_pc`: counts it
/// against its region (which may switch it to translation) and, if the
/// code there runs translated now, runs it from the instruction that
/// trapped (`epc`: the branch, when it sat in a delay slot).
pub fn after_exit(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    fault_pc: u64,
    epc: u64,
    budget_end: u64,
) -> Option<EngineStop> {
    if ctx.wide.bt.exec == Exec::Direct {
        return None;
    }
    if ctx.wide.bt.exec == Exec::Adaptive {
        region::note_exit(ctx, fault_pc);
    }
    if !chooses(ctx, fault_pc) {
        return None;
    }
    regs.jump_to(epc);
    Some(run(ctx, regs, budget_end))
}

/// Runs translated blocks from the VCPU's PC while `keeps` says so.
pub fn run(ctx: &mut GuestCtx<'_>, regs: &mut Regs, budget_end: u64) -> EngineStop {
    ctx.vcpu.may_interrupt = false;
    // Translated code uses the guest's composed mappings, as direct
    // execution does: the real EntryHi holds its machine ASID.
    crate::tlbctl::load_asid(ctx);
    // Entering translated code from the monitor finds the block by lookup,
    // unless it resumes where the VCPU's last turn ended.
    let index = ctx.vcpu.index;
    if ctx.wide.bt.budget_stop.len() <= index {
        ctx.wide.bt.budget_stop.resize(index + 1, None);
    }
    if ctx.wide.bt.reflected.len() <= index {
        ctx.wide.bt.reflected.resize(index + 1, 0);
    }
    let resumed = ctx
        .wide
        .bt
        .budget_stop
        .get_mut(index)
        .and_then(Option::take);
    let reflected = ctx.wide.bt.reflected.get(index).copied() != Some(ctx.vcpu.stats.reflected);
    let resumes = resumed.filter(|r| r.0 == regs.pc);
    let chained = resumes.is_some() || reflected;
    if ctx.wide.bt.runs.len() <= index {
        ctx.wide.bt.runs.resize_with(index + 1, || None);
    }
    let mut st = ctx
        .wide
        .bt
        .runs
        .get_mut(index)
        .and_then(Option::take)
        .unwrap_or_default();
    st.begin(ctx);
    // The context holds if the guest ran nothing since (no debugger, no
    // direct execution wrote its registers) and nothing was reflected.
    if let Some((_, next, insns)) = resumes {
        if !reflected && insns == ctx.vcpu.stats.guest_insns {
            st.next = next;
        }
    }
    let stop = run_blocks(ctx, regs, budget_end, chained, &mut st);
    st.flush(ctx);
    if let Some(r) = ctx.wide.bt.reflected.get_mut(index) {
        *r = ctx.vcpu.stats.reflected;
    }
    if let Some(r) = ctx.wide.bt.runs.get_mut(index) {
        *r = Some(st);
    }
    stop
}

fn run_blocks(
    ctx: &mut GuestCtx<'_>,
    regs: &mut Regs,
    budget_end: u64,
    mut chained: bool,
    st: &mut run::RunState,
) -> EngineStop {
    let index = ctx.vcpu.index;
    let mut quiet = 0u64;
    loop {
        if ctx.wide.board.has_actions() || ctx.stop.is_some() {
            return EngineStop::Board;
        }
        if !keeps(ctx, regs.pc, quiet) {
            if ctx.vcpu.mode() != Mode::User {
                // Into a page that runs directly: restore and return to it.
                charge(ctx, Spent::Leave, ctx.cost.bt_leave);
            }
            return EngineStop::Direct;
        }
        if ctx.core.cycles() >= budget_end {
            if let Some(stop) = ctx.wide.bt.budget_stop.get_mut(index) {
                let next = if chained { st.next } else { Ctx::default() };
                *stop = Some((regs.pc, next, ctx.vcpu.stats.guest_insns));
            }
            return EngineStop::Budget;
        }
        ctx.now = ctx.core.cycles();
        if ctx.now >= ctx.vcpu.timer_due {
            let lines = ctx.wide.board.irq_lines(ctx.vcpu.index);
            if ctx.vcpu.update_interrupts(ctx.now, lines) != 0 {
                engine::deliver_interrupts(ctx, regs);
                st.epoch += 1;
                chained = false;
                continue;
            }
        }
        if !chained {
            ctx.wide.bt.stats.lookups += 1;
            charge(ctx, Spent::Lookup, ctx.cost.bt_lookup);
        }
        let (insns, ops) = (ctx.wide.bt.stats.insns, ctx.wide.bt.stats.inline_ops);
        // A context reaches a block only through a chained exit.
        let next = std::mem::take(&mut st.next);
        let entry = if chained { next } else { Ctx::default() };
        let Some(b) = block::find(ctx, st, regs.pc, entry) else {
            // Not translatable (the fetch faults): one engine step
            // delivers exactly what the hardware would.
            ctx.wide.bt.stats.fallback_fetch += 1;
            st.epoch += 1;
            if engine::step(ctx, regs, 0) == Some(Flow::Wait) {
                return EngineStop::Wait;
            }
            chained = false;
            continue;
        };
        let (end, exit) = exec::run_block(ctx, regs, &b, st, budget_end);
        let privileged = ctx.wide.bt.stats.inline_ops != ops;
        quiet = if privileged {
            0
        } else {
            quiet + (ctx.wide.bt.stats.insns - insns)
        };
        let plain = matches!(
            end,
            exec::BlockEnd::Chained | exec::BlockEnd::Predicted | exec::BlockEnd::Lookup
        );
        if privileged || !plain {
            // The mode or the guest's mappings may have changed.
            st.epoch += 1;
        }
        match end {
            exec::BlockEnd::Chained => {
                st.next = exit;
                chained = true;
            }
            exec::BlockEnd::Diverted => chained = true,
            exec::BlockEnd::Predicted => {
                ctx.wide.bt.stats.predicted += 1;
                charge(ctx, Spent::Predict, ctx.cost.bt_predict);
                chained = true;
            }
            exec::BlockEnd::Lookup => chained = false,
            exec::BlockEnd::Wait => return EngineStop::Wait,
            exec::BlockEnd::Blocked => {
                crate::remap::wait_for_copy(ctx, budget_end);
                if let Some(stop) = ctx.wide.bt.budget_stop.get_mut(index) {
                    // Mid-block: the store is run again with no context.
                    *stop = Some((regs.pc, Ctx::default(), ctx.vcpu.stats.guest_insns));
                }
                return EngineStop::Budget;
            }
        }
    }
}

/// Charges monitor-side cycles of translated code (lookups, inline ops),
/// counted against what paid them.
fn charge(ctx: &mut GuestCtx<'_>, what: Spent, cycles: u64) {
    ctx.core.charge(cycles);
    ctx.trace.now = ctx.core.cycles();
    ctx.vcpu.stats.monitor_cycles += cycles;
    ctx.wide.bt.stats.cycles += cycles;
    if let Some(n) = ctx.wide.bt.stats.spent.get_mut(what as usize) {
        *n += cycles;
    }
}

/// The translation lines of `--stats` (docs/translation.md).
pub fn stats_lines(out: &mut String, st: &crate::stats::VmStats) {
    use std::fmt::Write as _;
    if st.exec == Exec::Direct {
        return;
    }
    let b = &st.bt;
    let _ = writeln!(
        out,
        "  translation (exec={}): {} blocks of {} instructions translated, {} invalidated, {} dropped in {} flushes of a full cache; {} instructions run translated in {} blocks ({} cycles), {} lookups, {} inline-cache hits; {} privileged instructions inline (exits avoided); engine fallbacks: {} debugger, {} fetch",
        st.exec.name(),
        b.translated_blocks,
        b.translated_insns,
        b.invalidated,
        b.flushed_blocks,
        b.flushes,
        b.insns,
        b.blocks_run,
        b.cycles,
        b.lookups,
        b.predicted,
        b.inline_ops,
        b.fallback_debugger,
        b.fallback_fetch
    );
    let spent: Vec<String> = Spent::ALL
        .iter()
        .zip(b.spent)
        .map(|(w, n)| format!("{} {n}", w.name()))
        .collect();
    let _ = writeln!(out, "  translation's own cycles: {}", spent.join(", "));
    for (page, r) in &st.regions {
        let decision = if !guest::directly_executable(u64::from(*page), Mode::Supervisor) {
            "translated (KSEG0/KSEG1)"
        } else if st.exec == Exec::Translate {
            "translated (exec=translate)"
        } else if r.translated {
            "translated"
        } else {
            "direct"
        };
        let _ = writeln!(
            out,
            "    region {:#010x}: {decision}; {} switches; {} exits while direct; {} instructions, {} cycles translated, {} blocks with privileged instructions",
            page, r.switches, r.exits, r.insns, r.cycles, r.privileged_blocks
        );
    }
}

/// Trace line at a region's switch.
fn switched(ctx: &mut GuestCtx<'_>, page: u32, translated: bool, why: u64) {
    ctx.trace.emit(MonEvent::BtSwitch {
        page,
        translated,
        why,
    });
}
