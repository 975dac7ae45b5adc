//! The coalesced-I/O events' lines: scans, blocks, dropped entries and
//! the console ring.

use super::scan::Scan;
use crate::coalesce::state::Cut;
use crate::obs::{Access, MonEvent, ScanOutcome};

/// ` scan at …`, ` block at …`, `: the block at … dropped` (after `coalesce`).
pub(super) fn coalesce(t: &str) -> Option<MonEvent> {
    let mut s = Scan(t);
    let e = if s.lit(" scan at ") {
        let pc = s.hex32()?;
        s.lit(": ").then_some(())?;
        let scanned = s.dec()?;
        s.lit(" instructions followed; ").then_some(())?;
        let outcome = if s.lit("single access recorded") {
            ScanOutcome::Single
        } else if s.lit("block of ") {
            let size = s.dec()?;
            s.lit(" instructions with ").then_some(())?;
            let accesses = s.dec()?;
            s.lit(" accesses recorded (saves ").then_some(())?;
            let saving = s.dec()?;
            s.lit(" cycles)").then_some(())?;
            ScanOutcome::Block {
                size,
                accesses,
                saving,
            }
        } else if s.lit("a block with ") {
            let accesses = s.dec()?;
            s.lit(" accesses declined (it would cost ").then_some(())?;
            let cost = s.dec()?;
            s.lit(" cycles more than the exits it saves); single access recorded")
                .then_some(())?;
            ScanOutcome::Declined { accesses, cost }
        } else {
            return None;
        };
        MonEvent::CoalesceScan {
            pc,
            scanned,
            outcome,
        }
    } else if s.lit(" block at ") {
        let pc = s.hex32()?;
        s.lit(": ").then_some(())?;
        let insns = s.dec()?;
        s.lit(" instructions, ").then_some(())?;
        let n: usize = s.dec()?;
        s.lit(" device accesses [").then_some(())?;
        let list = s.until("], resume at ")?;
        let accesses = if list.is_empty() {
            Vec::new()
        } else {
            list.split(", ").map(access).collect::<Option<Vec<_>>>()?
        };
        (accesses.len() == n).then_some(())?;
        let resume = s.hex32()?;
        let cut = if s.lit(" (ended early: ") {
            let why = s.until(")")?;
            Some(Cut::ALL.into_iter().find(|c| c.describe() == why)?)
        } else {
            None
        };
        MonEvent::CoalesceBlock {
            pc,
            insns,
            accesses,
            resume,
            cut,
        }
    } else if s.lit(": the block at ") {
        let pc = s.hex32()?;
        s.lit(" no longer hashes the same: entry dropped")
            .then_some(())?;
        MonEvent::CoalesceDrop { pc }
    } else {
        return None;
    };
    s.done().then_some(e)
}

/// `write W at P GPA <- V` / `read W at P GPA -> V`.
fn access(t: &str) -> Option<Access> {
    let mut s = Scan(t);
    let write = s.read_or_write()?;
    s.lit(" ").then_some(())?;
    let width = s.dec()?;
    s.lit(" at P ").then_some(())?;
    let gpa = s.hex()?;
    s.lit(if write { " <- " } else { " -> " }).then_some(())?;
    let value = s.hex()?;
    s.done().then_some(Access {
        gpa,
        width,
        value,
        write,
    })
}

/// `write 1 bytes at P …: V queued (N in the ring)` / `N queued writes …`.
pub(super) fn ring(t: &str) -> Option<MonEvent> {
    let mut s = Scan(t);
    let e = if s.lit("write 1 bytes at P ") {
        let gpa = s.hex()?;
        s.lit(": ").then_some(())?;
        let value = s.hex()?;
        s.lit(" queued (").then_some(())?;
        let queued = s.dec()?;
        s.lit(" in the ring)").then_some(())?;
        MonEvent::RingQueue { gpa, value, queued }
    } else {
        let writes = s.dec()?;
        s.lit(" queued writes delivered to the device")
            .then_some(())?;
        MonEvent::RingFlush { writes }
    };
    s.done().then_some(e)
}
