//! The `trapkit` guest, shared by the trap-flow, flow-table and GDB tests.
//! See `trap_flows.rs` for its memory map and the story of each trap.

#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use monitor::obs::MonEvent;
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};

use Reg as R;

// CP0 register numbers.
const INDEX: u32 = 0;
const ENTRY_LO0: u32 = 2;
const ENTRY_LO1: u32 = 3;
const CONTEXT: u32 = 4;
const PAGE_MASK: u32 = 5;
const WIRED: u32 = 6;
const COUNT: u32 = 9;
const ENTRY_HI: u32 = 10;
const COMPARE: u32 = 11;
const STATUS: u32 = 12;
const CAUSE: u32 = 13;
const EPC: u32 = 14;

const ERET: u32 = 0x4200_0018;
const TLBWI: u32 = 0x4200_0002;
const TLBWR: u32 = 0x4200_0006;
const SYSCALL: u32 = 0x0000_000C;
/// `mfc1 t0, $f0`: a floating-point instruction on a machine without an FPU.
const MFC1: u32 = 0x4408_0000;

/// EntryLo for guest-physical `gpa`: cacheable (C=3), dirty, valid.
pub(crate) const fn entry_lo(gpa: u32, global: bool) -> u32 {
    ((gpa >> 12) << 6) | (3 << 3) | 0b110 | global as u32
}

fn jr(a: &mut Asm, rs: Reg) {
    a.emit(
        Op::Jr,
        Operands {
            rs: rs.number(),
            ..Operands::default()
        },
    );
    a.nop();
}

/// Prints `c` through the console in KSEG1.
fn putc(a: &mut Asm, c: u8) {
    a.li(R::T8, 0xB000_0000);
    a.imm(Op::Addiu, R::T9, R::ZERO, i64::from(c));
    a.mem(Op::Sb, R::T9, 0, R::T8);
}

/// Writes the TLB entry at `index` from (PageMask, EntryHi, EntryLo0/1).
fn wire(a: &mut Asm, index: u32, mask: u32, hi: u32, lo0: u32, lo1: u32) {
    a.imm(Op::Addiu, R::T0, R::ZERO, i64::from(index));
    a.mtc0(R::T0, INDEX);
    a.li(R::T0, mask);
    a.mtc0(R::T0, PAGE_MASK);
    a.li(R::T0, hi);
    a.mtc0(R::T0, ENTRY_HI);
    a.li(R::T0, lo0);
    a.mtc0(R::T0, ENTRY_LO0);
    a.li(R::T0, lo1);
    a.mtc0(R::T0, ENTRY_LO1);
    a.word(TLBWI);
}

pub(crate) fn trapkit() -> Vec<(u64, Vec<u8>)> {
    // KSEG0 vectors: each is a trampoline into the window.
    let mut refill_vec = Asm::new(0x8000_0000);
    refill_vec.li(R::K0, 0xC000_0100);
    jr(&mut refill_vec, R::K0);
    let mut general_vec = Asm::new(0x8000_0180);
    general_vec.li(R::K0, 0xC000_0200);
    jr(&mut general_vec, R::K0);

    // KSEG0 boot stub: wire the window (two 1 MB pages at 0xC0000000,
    // global) and the page table (16 KB pages at 0xC0800000), then jump in.
    let mut stub = Asm::new(0x8000_1000);
    stub.imm(Op::Addiu, R::T0, R::ZERO, 2);
    stub.mtc0(R::T0, WIRED);
    wire(
        &mut stub,
        0,
        0x001F_E000,
        0xC000_0000,
        entry_lo(0x10_0000, true),
        entry_lo(0x20_0000, true),
    );
    wire(
        &mut stub,
        1,
        0x0000_6000,
        0xC080_0000,
        entry_lo(0x30_0000, true),
        entry_lo(0x30_4000, true),
    );
    stub.li(R::T0, 0xC000_0000);
    jr(&mut stub, R::T0);

    // The kernel, at 0xC0000000.
    let mut k = Asm::new(0xC000_0000);
    k.li(R::T0, 0xC080_0000);
    k.mtc0(R::T0, CONTEXT); // PTEBase
    k.mtc0(R::ZERO, PAGE_MASK); // user pages are 4 KB
    k.imm(Op::Addiu, R::T0, R::ZERO, 1);
    k.mtc0(R::T0, ENTRY_HI); // the user process runs with ASID 1
    putc(&mut k, b'K');
    k.mfc0(R::T0, COUNT);
    k.li(R::T1, 60_000);
    k.r3(Op::Addu, R::T0, R::T0, R::T1);
    k.mtc0(R::T0, COMPARE); // a timer interrupt in 120,000 cycles
    k.li(R::T0, 0x8013); // IM7 | KSU=user | EXL | IE
    k.mtc0(R::T0, STATUS);
    k.li(R::T0, 0x0040_0000);
    k.mtc0(R::T0, EPC);
    k.word(ERET); // to user mode at 0x00400000
    while k.here() < 0xC000_0100 {
        k.nop();
    }
    // TLB refill handler, driven by Context and the linear page table.
    k.mfc0(R::K0, CONTEXT);
    k.mem(Op::Lw, R::K1, 0, R::K0);
    k.mtc0(R::K1, ENTRY_LO0);
    k.mem(Op::Lw, R::K1, 4, R::K0);
    k.mtc0(R::K1, ENTRY_LO1);
    k.word(TLBWR);
    k.word(ERET);
    while k.here() < 0xC000_0200 {
        k.nop();
    }
    // General exceptions: interrupts ack the timer; everything else is
    // skipped; syscall 10 halts.
    k.mfc0(R::K0, CAUSE);
    k.imm(Op::Andi, R::K0, R::K0, 0x7C);
    k.branch(Op::Beq, R::K0, R::ZERO, "irq");
    k.nop();
    k.mfc0(R::K1, EPC);
    k.imm(Op::Addiu, R::K1, R::K1, 4);
    k.mtc0(R::K1, EPC);
    k.imm(Op::Addiu, R::K1, R::ZERO, 8 << 2);
    k.branch(Op::Bne, R::K0, R::K1, "done");
    k.nop();
    k.imm(Op::Addiu, R::K1, R::ZERO, 10);
    k.branch(Op::Beq, R::V0, R::K1, "halt");
    k.nop();
    putc(&mut k, b'S');
    k.label("done");
    k.word(ERET);
    k.label("irq");
    k.mtc0(R::ZERO, COMPARE); // acknowledge: writing Compare clears IP7
    putc(&mut k, b'T');
    k.word(ERET);
    k.label("halt");
    k.li(R::T8, 0xB000_0010);
    k.mem(Op::Sw, R::ZERO, 0, R::T8);
    k.label("spin");
    k.branch(Op::Beq, R::ZERO, R::ZERO, "spin");
    k.nop();

    // The user program, at 0x00400000.
    let mut u = Asm::new(0x0040_0000);
    u.word(SYSCALL);
    u.li(R::T1, 0x0040_2000);
    u.mem(Op::Lw, R::T0, 0, R::T1); // first touch: a TLB miss the guest refills
    u.li(R::T2, 20_000);
    u.label("wait");
    u.imm(Op::Addiu, R::T2, R::T2, -1);
    u.branch(Op::Bne, R::T2, R::ZERO, "wait");
    u.nop();
    u.mem(Op::Lw, R::T0, 0, R::T1); // second touch: the L2TLB answers
    u.word(MFC1);
    u.li(R::T2, 40_000); // the timer interrupt arrives during this loop
    u.label("tick");
    u.imm(Op::Addiu, R::T2, R::T2, -1);
    u.branch(Op::Bne, R::T2, R::ZERO, "tick");
    u.nop();
    u.imm(Op::Addiu, R::V0, R::ZERO, 10);
    u.word(SYSCALL);

    // Page table entries: pairs of EntryLo words, 16 bytes per VPN2.
    let mut pt = vec![0u8; 0x2020];
    let mut put = |off: usize, v: u32| pt[off..off + 4].copy_from_slice(&v.to_be_bytes());
    put(0x2000, entry_lo(0x28_0000, false)); // VPN2 0x200: 0x00400000/0x00401000
    put(0x2004, entry_lo(0x28_1000, false));
    put(0x2010, entry_lo(0x28_2000, false)); // VPN2 0x201: 0x00402000, odd half invalid

    let seg = |a: &Asm, gpa: u64| (gpa, a.bytes().expect("labels resolve"));
    vec![
        seg(&refill_vec, 0),
        seg(&general_vec, 0x180),
        seg(&stub, 0x1000),
        seg(&k, 0x10_0000),
        seg(&u, 0x28_0000),
        (0x30_0000, pt),
    ]
}

/// Runs trapkit, flushing the real TLB once the first miss on the data
/// page has been composed, so the second touch has to be refilled again.
pub(crate) fn run_trapkit() -> Monitor {
    run_trapkit_exec(monitor::bt::Exec::Direct)
}

/// `run_trapkit` with guest-kernel code run as `exec` says (`bt`).
pub(crate) fn run_trapkit_exec(exec: monitor::bt::Exec) -> Monitor {
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(5_000_000),
        vms: vec![VmConfig {
            name: "trapkit".into(),
            image: VmImage {
                entry: 0xFFFF_FFFF_8000_1000,
                segments: trapkit(),
            },
            mem_bytes: 4 << 20,
            vcpus: 1,
            disk: None,
            disk_irq_latency: None,
            // These stories are about other traps, and where the timer
            // interrupt lands depends on what the console writes cost:
            // they keep the monitor that takes each device access alone.
            io: monitor::coalesce::IoConfig {
                policy: monitor::coalesce::Policy::Off,
                extent: None,
            },
            commpage: true,
            exec,
        }],
        ..MonitorConfig::default()
    })
    .expect("valid config");
    m.trace.enabled = true;
    m.trace.engine_insns = true;
    let composed = |m: &Monitor| {
        m.trace.records.iter().any(|r| {
            matches!(
                r.event,
                MonEvent::Composed {
                    va: 0x0040_2000,
                    ..
                }
            )
        })
    };
    while !composed(&m) {
        assert!(m.run_quantum().is_none(), "ended before the first miss");
    }
    m.flush_real_tlbs();
    assert_eq!(m.run(), MonitorExit::AllEnded);
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)));
    m
}

/// The lines from the first containing `from` to the first after it
/// containing `to`, inclusive.
pub(crate) fn story(m: &Monitor, from: &str, to: &str) -> String {
    let lines = m.trace.lines();
    let start = lines
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no line with {from:?}"));
    let end = lines[start..]
        .iter()
        .position(|l| l.contains(to))
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("no line with {to:?} after {from:?}"));
    lines[start..=end].join("\n")
}
