//! Events as trace lines (docs/trace-format.md). Formatting happens here
//! only, when a trace is read or written, never where events are recorded.

use std::fmt::Write as _;

use sim::hv::cp0::reg::NAMES as CP0_NAMES;

use super::{Access, Half, MonEvent, Record, ScanOutcome};

/// The layer a line names: who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The guest's user process, running directly in real user mode.
    User,
    /// The guest kernel, running directly in real supervisor mode.
    Guest,
    /// Guest code the monitor interprets.
    Engine,
    /// The monitor itself.
    Monitor,
    /// Guest-kernel code run translated (`bt`).
    Bt,
}

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::User,
        Layer::Guest,
        Layer::Engine,
        Layer::Monitor,
        Layer::Bt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::User => "user",
            Layer::Guest => "guest",
            Layer::Engine => "engine",
            Layer::Monitor => "monitor",
            Layer::Bt => "bt",
        }
    }
}

/// Who acted in `e`.
pub fn layer(e: &MonEvent) -> Layer {
    match e {
        MonEvent::Exit { user: true, .. } => Layer::User,
        MonEvent::Exit { user: false, .. } => Layer::Guest,
        MonEvent::Engine { .. } => Layer::Engine,
        MonEvent::BtBlock { .. } => Layer::Bt,
        _ => Layer::Monitor,
    }
}

/// `0x0040abcd`: at least eight digits, all of them when there are more.
fn hex(v: impl Into<u64>) -> String {
    format!("{:#010x}", v.into())
}

/// A CP0 register's manual name, or `$N` for one without a name.
pub(super) fn cp0_name(reg: u32) -> String {
    match CP0_NAMES.get(reg as usize) {
        Some(n) if !n.is_empty() => (*n).to_string(),
        _ => format!("${reg}"),
    }
}

/// The name a line gives VM `vm`.
pub(super) fn vm_name(names: &[String], vm: usize) -> String {
    names.get(vm).cloned().unwrap_or_else(|| format!("vm{vm}"))
}

/// The record as a line without its cycle: `cpuN VM.VCPU LAYER EVENT`.
pub fn line(names: &[String], r: &Record) -> String {
    let p = r.place;
    format!(
        "cpu{} {}.{} {:<7} {}",
        p.pcpu,
        vm_name(names, p.vm),
        p.vcpu,
        layer(&r.event).name(),
        event_text(names, &r.event)
    )
}

/// Appends the record's trace-file line: the cycle (right-aligned in 12
/// characters), the line, a newline.
pub fn file_line(out: &mut String, names: &[String], r: &Record) {
    let _ = writeln!(out, "{:>12} {}", r.cycle, line(names, r));
}

/// What happened, as the line's last column says it.
pub fn event_text(names: &[String], e: &MonEvent) -> String {
    match e {
        MonEvent::Exit {
            code,
            epc,
            bd,
            badvaddr,
            insn,
            ..
        } => {
            let mut t = format!("exit {code} at {}", hex(*epc));
            if let Some(i) = insn {
                let _ = write!(t, "  {i}");
            }
            if *bd {
                t.push_str(" (in a delay slot)");
            }
            with_badvaddr(t, *badvaddr)
        }
        MonEvent::Reflect {
            code,
            epc,
            vector,
            badvaddr,
        } => with_badvaddr(
            format!(
                "reflect {code} to the guest: EPC {}, vector {}",
                hex(*epc),
                hex(*vector)
            ),
            *badvaddr,
        ),
        MonEvent::Trampoline { vector, target } => format!(
            "follow the trampoline at {} to {} (k0 = {})",
            hex(*vector),
            hex(*target),
            hex(*target)
        ),
        MonEvent::Engine { pc, insn } => format!("{}  {insn}", hex(*pc)),
        MonEvent::Cp0Read { reg, value } => {
            format!("emulate mfc0: virtual {} = {}", cp0_name(*reg), hex(*value))
        }
        MonEvent::Cp0Write { reg, value } => {
            format!("emulate mtc0: virtual {} <- {}", cp0_name(*reg), hex(*value))
        }
        MonEvent::GuestTlbWrite {
            index,
            random,
            vpn2,
            asid,
            global,
            pfn,
        } => format!(
            "emulate {}: virtual TLB[{index}] = VPN2 {} ASID {asid}{} PFN {:#x}/{:#x}",
            if *random { "tlbwr" } else { "tlbwi" },
            hex(*vpn2),
            if *global { " G" } else { "" },
            pfn[0],
            pfn[1]
        ),
        MonEvent::Composed {
            va,
            guest_asid,
            halves,
            masid,
            index,
        } => format!(
            "compose V {} (guest ASID {guest_asid}): even {}, odd {}; real TLB[{index}] ASID {masid}",
            hex(*va),
            half(halves[0]),
            half(halves[1]),
        ),
        MonEvent::L2Hit { va, index } => format!(
            "L2TLB hit for V {}: real TLB[{index}] refilled, guest not entered",
            hex(*va)
        ),
        MonEvent::L2Miss { va } => format!("L2TLB miss for V {}", hex(*va)),
        MonEvent::Patch { pc, from, to, slot } => format!(
            "patch {}: {from} -> {to}: {} through the commpage at {}, no trap from now on",
            hex(*pc),
            cp0_name(u32::from(slot & 0xFFF) >> 2),
            hex(*slot)
        ),
        MonEvent::GuestEret { to, mode } => format!(
            "emulate eret: resume the guest at {} in {} mode",
            hex(*to),
            mode.name()
        ),
        MonEvent::Vdev {
            gpa,
            width,
            value,
            write,
        } => format!(
            "virtual device {} {width} bytes at P {}: {}",
            if *write { "write" } else { "read" },
            hex(*gpa),
            hex(*value)
        ),
        MonEvent::Interrupt { pending } => {
            format!("deliver interrupt: pending IP bits {pending:#06x}")
        }
        MonEvent::Wait => "guest WAIT: VCPU idles, physical CPU yielded".to_string(),
        MonEvent::Switch { to_vm, to_vcpu } => {
            format!("switch to {}.{to_vcpu}", vm_name(names, *to_vm))
        }
        MonEvent::Halt { status } => format!("VM halted with status {status}"),
        MonEvent::Stop => "VM stopped".to_string(),
        MonEvent::StopReason { reason } => format!("stopped: {reason}"),
        MonEvent::RealTlbsFlushed => {
            "every real TLB flushed (as if other VMs had evicted its entries)".to_string()
        }
        MonEvent::CoalesceScan {
            pc,
            scanned,
            outcome,
        } => format!(
            "coalesce scan at {}: {scanned} instructions followed; {}",
            hex(*pc),
            scan_outcome(outcome)
        ),
        MonEvent::CoalesceBlock {
            pc,
            insns,
            accesses,
            resume,
            cut,
        } => coalesce_block(*pc, *insns, accesses, *resume, cut.as_ref()),
        MonEvent::CoalesceDrop { pc } => format!(
            "coalesce: the block at {} no longer hashes the same: entry dropped",
            hex(*pc)
        ),
        MonEvent::RingQueue { gpa, value, queued } => format!(
            "ring: write 1 bytes at P {}: {} queued ({queued} in the ring)",
            hex(*gpa),
            hex(*value)
        ),
        MonEvent::RingFlush { writes } => {
            format!("ring: {writes} queued writes delivered to the device")
        }
        MonEvent::BtTranslate { pc, insns } => {
            format!("translate the block at {}: {insns} instructions", hex(*pc))
        }
        MonEvent::BtBlock { pc, insns } => {
            format!("run the translated block at {} ({insns} instructions)", hex(*pc))
        }
        MonEvent::BtSwitch {
            page,
            translated: true,
            why,
        } => format!(
            "region {}: direct -> translated ({why} exits in its window)",
            hex(*page)
        ),
        MonEvent::BtSwitch {
            page,
            translated: false,
            why,
        } => format!(
            "region {}: translated -> direct ({why} instructions without a privileged one)",
            hex(*page)
        ),
    }
}

/// `t`, with the faulting address for the codes that set one.
fn with_badvaddr(mut t: String, badvaddr: Option<u32>) -> String {
    if let Some(b) = badvaddr {
        let _ = write!(t, ", BadVAddr {}", hex(b));
    }
    t
}

/// What a coalescing scan recorded, after its "instructions followed; ".
fn scan_outcome(outcome: &ScanOutcome) -> String {
    match outcome {
        ScanOutcome::Declined { accesses, cost } => format!(
            "a block with {accesses} accesses declined (it would cost {cost} cycles more than the exits it saves); single access recorded"
        ),
        ScanOutcome::Block {
            size,
            accesses,
            saving,
        } => format!(
            "block of {size} instructions with {accesses} accesses recorded (saves {saving} cycles)"
        ),
        ScanOutcome::Single => "single access recorded".to_string(),
    }
}

/// A block of device accesses emulated in one event, each access listed.
fn coalesce_block(
    pc: u32,
    insns: u32,
    accesses: &[Access],
    resume: u32,
    cut: Option<&crate::coalesce::state::Cut>,
) -> String {
    let mut t = format!(
        "coalesce block at {}: {insns} instructions, {} device accesses [",
        hex(pc),
        accesses.len()
    );
    for (i, a) in accesses.iter().enumerate() {
        if i > 0 {
            t.push_str(", ");
        }
        t.push_str(&access(a));
    }
    let _ = write!(t, "], resume at {}", hex(resume));
    if let Some(c) = cut {
        let _ = write!(t, " (ended early: {})", c.describe());
    }
    t
}

fn half(h: Half) -> String {
    match h {
        Half::Mapped { gpa, mpa } => format!("P {} -> M {}", hex(gpa), hex(mpa)),
        Half::Unbacked { gpa } => format!("P {} -> (no machine page)", hex(gpa)),
        Half::Invalid => "invalid".to_string(),
    }
}

fn access(a: &Access) -> String {
    format!(
        "{} {} at P {} {} {}",
        if a.write { "write" } else { "read" },
        a.width,
        hex(a.gpa),
        if a.write { "<-" } else { "->" },
        hex(a.value)
    )
}
