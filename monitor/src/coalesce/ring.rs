//! `coalesce=ring`: KVM's coalesced MMIO, for comparison. Writes to a
//! register declared write-buffered (the console's output byte) are queued
//! instead of run through the device model, and delivered in one go at the
//! next other access to the board, the next other exit, or the end of the
//! VCPU's turn. Each write still traps: what the ring saves here is only
//! the device model's work per write (in KVM it saves the trip to user
//! space, which our one-level monitor does not have).

use sim::hv::map;

use super::state::Policy;
pub use super::state::{Ring, CAPACITY};
use crate::guest::GuestCtx;
use crate::mem::GuestPhys;
use crate::obs::MonEvent;

/// Whether a write of `width` bytes at `gpa` may wait in the ring: the
/// console's putchar byte, whose only effect is output.
fn write_buffered(gpa: GuestPhys, width: u8) -> bool {
    gpa.0 == map::CONS && width == 1
}

/// Queues a write-buffered write under `coalesce=ring` (true), or delivers
/// what the ring holds before the access goes to the device (false).
pub fn queue(ctx: &mut GuestCtx<'_>, gpa: GuestPhys, width: u8, value: u64) -> bool {
    if ctx.wide.io.config.policy != Policy::Ring || !write_buffered(gpa, width) {
        before_access(ctx, gpa);
        return false;
    }
    if ctx.wide.io.ring.len == CAPACITY {
        flush(ctx);
    }
    let ring = &mut ctx.wide.io.ring;
    if let Some(slot) = ring.bytes.get_mut(ring.len) {
        // The register is one byte wide: the low byte is the write.
        *slot = value as u8;
        ring.len += 1;
    }
    ctx.wide.io.stats.ring_queued += 1;
    let c = ctx.cost.ring;
    ctx.charge(c);
    ctx.trace.emit(MonEvent::RingQueue {
        gpa: gpa.0,
        value,
        queued: ctx.wide.io.ring.len,
    });
    true
}

/// Any other device access is ordered after the queued writes.
pub fn before_access(ctx: &mut GuestCtx<'_>, _gpa: GuestPhys) {
    if !ctx.wide.io.ring.is_empty() {
        flush(ctx);
    }
}

/// Delivers the queued writes to the console in one device-model run.
pub fn flush(ctx: &mut GuestCtx<'_>) {
    let n = std::mem::take(&mut ctx.wide.io.ring.len);
    if n == 0 {
        return;
    }
    ctx.vcpu.stats.vdev_accesses += 1;
    let c = ctx.cost.vdev;
    ctx.charge(c);
    ctx.wide.io.stats.ring_flushes += 1;
    let bytes = ctx.wide.io.ring.bytes;
    for &b in bytes.iter().take(n) {
        // The console's putchar register cannot refuse a byte.
        let _ = ctx
            .wide
            .board
            .write(ctx.vcpu.index, ctx.now, map::CONS, 1, u64::from(b));
    }
    ctx.trace.emit(MonEvent::RingFlush { writes: n });
}
