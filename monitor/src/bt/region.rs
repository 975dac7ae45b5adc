//! The per-region decision of `exec=adaptive` (docs/translation.md).
//!
//! A region is one 4K page of guest-virtual kernel code. A page because
//! the guest's kernel code is mapped, copied and written a page at a time
//! (the code generations the translator checks are per page), and because
//! the sites that make a stretch of kernel code trap-heavy (an exception
//! vector, a refill handler, an `eret` path, an interrupt enable/disable
//! sequence) sit together with the code around them, which shares their
//! fate cheaply: translated code costs its native cycles. A block would
//! decide more finely but would need every entry into direct code checked.
//!
//! Window pages start direct. Exits of guest-kernel instructions in a page
//! (privileged instructions, KSEG0 accesses) are counted over a window of
//! machine time; `threshold` of them in one window switch the page to
//! translation. A translated page that runs `QUIET` instructions without a
//! privileged one goes back to direct execution, and its threshold doubles
//! (up to `MAX_THRESHOLD`), so a page that would flap settles translated.

use super::state::page_of;
pub use super::state::{Region, Regions};
use super::Exec;
use crate::guest::{directly_executable, GuestCtx};

/// The most a page's threshold doubles to (`state::THRESHOLD` at first).
const MAX_THRESHOLD: u32 = 256;
/// The window the exits are counted in, in machine cycles.
const WINDOW: u64 = 1_000_000;
/// Privileged-free instructions after which a translated page goes back.
const QUIET: u64 = 200_000;

/// Counts an exit at guest-kernel `pc` against its page and switches the
/// page to translation when they come fast enough.
pub fn note_exit(ctx: &mut GuestCtx<'_>, pc: u64) {
    let now = ctx.core.cycles();
    let page = page_of(pc);
    let r = ctx.wide.bt.regions.pages.entry(page).or_default();
    r.exits += 1;
    if r.translated {
        return;
    }
    if now.saturating_sub(r.window_start) > WINDOW {
        r.window_start = now;
        r.window_exits = 0;
    }
    r.window_exits += 1;
    if r.window_exits >= r.threshold {
        r.translated = true;
        r.switches += 1;
        r.quiet = 0;
        let why = u64::from(r.window_exits);
        super::switched(ctx, page << 12, true, why);
    }
}

/// Accounts a translated block of `insns` at `pc`, `privileged` if it ran
/// a privileged instruction inline; a window page quiet for long enough
/// goes back to direct execution.
pub fn ran(ctx: &mut GuestCtx<'_>, pc: u64, insns: u64, cycles: u64, privileged: bool) {
    let page = page_of(pc);
    let adaptive_window =
        ctx.wide.bt.exec == Exec::Adaptive && directly_executable(pc, ctx.vcpu.mode());
    let r = ctx.wide.bt.regions.pages.entry(page).or_default();
    r.insns += insns;
    r.cycles += cycles;
    if privileged {
        r.privileged_blocks += 1;
        r.quiet = 0;
        return;
    }
    r.quiet += insns;
    if adaptive_window && r.translated && r.quiet >= QUIET {
        r.translated = false;
        r.switches += 1;
        r.threshold = (r.threshold * 2).min(MAX_THRESHOLD);
        r.window_exits = 0;
        r.window_start = ctx.core.cycles();
        let why = r.quiet;
        r.quiet = 0;
        super::switched(ctx, page << 12, false, why);
    }
}
