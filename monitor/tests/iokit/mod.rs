//! Window guests for the coalesced-I/O tests (`coalesce.rs`,
//! `coalesce_flows.rs`), built with the in-crate assembler; see
//! `coalesce.rs` for the memory map.

#![allow(dead_code, clippy::panic, clippy::unwrap_used)]

use monitor::coalesce::Policy;
use monitor::cost::Cost;
use monitor::{Monitor, MonitorConfig, MonitorExit, VmConfig, VmEnd, VmImage};
use sim::isa::asm::{Asm, Operands};
use sim::isa::{Op, Reg};

use Reg as R;

/// The console through KSEG1, and through the mapped page.
pub(crate) const CONS: u32 = 0xB000_0000;
pub(crate) const MAPPED_CONS: u32 = 0xC040_0000;

/// EntryLo for P `gpa` with cache attribute `c`, dirty, valid, global.
pub(crate) const fn entry_lo(gpa: u32, c: u32) -> u32 {
    ((gpa >> 12) << 6) | (c << 3) | 0b111
}

/// Writes TLB entry `index` from (PageMask, EntryHi, EntryLo0, EntryLo1).
pub(crate) fn wire(a: &mut Asm, index: i64, mask: u32, hi: u32, lo0: u32, lo1: u32) {
    a.imm(Op::Addiu, R::T0, R::ZERO, index);
    a.mtc0(R::T0, 0);
    a.li(R::T0, mask);
    a.mtc0(R::T0, 5);
    a.li(R::T0, hi);
    a.mtc0(R::T0, 10);
    a.li(R::T0, lo0);
    a.mtc0(R::T0, 2);
    a.li(R::T0, lo1);
    a.mtc0(R::T0, 3);
    a.word(0x4200_0002); // tlbwi
}

/// The guest around kernel `k` (origin 0xC0000000), plus extra segments.
pub(crate) fn window(k: &Asm, extra: Vec<(u64, Vec<u8>)>) -> VmImage {
    let mut stub = Asm::new(0x8000_1000);
    stub.imm(Op::Addiu, R::T0, R::ZERO, 2);
    stub.mtc0(R::T0, 6); // Wired = 2
    wire(
        &mut stub,
        0,
        0x001F_E000,
        0xC000_0000,
        entry_lo(0x10_0000, 3),
        entry_lo(0x20_0000, 3),
    );
    // The console's page, uncached (C=2); the odd half is invalid.
    wire(&mut stub, 1, 0, MAPPED_CONS, entry_lo(0x1000_0000, 2), 1);
    stub.li(R::T0, 0xC000_0000);
    stub.jr(R::T0);
    stub.nop();
    let mut segments = vec![
        (0x1000, stub.bytes().expect("labels resolve")),
        (0x10_0000, k.bytes().expect("labels resolve")),
    ];
    segments.extend(extra);
    VmImage {
        entry: 0xFFFF_FFFF_8000_1000,
        segments,
    }
}

/// Halts with status 0 through the halt register at `base` + 0x10.
pub(crate) fn halt(a: &mut Asm, base: u32) {
    a.li(R::T8, base);
    a.mem(Op::Sw, R::ZERO, 0x10, R::T8);
    a.label("spin");
    a.b("spin");
    a.nop();
}

/// The guest's console output and halt status on the bare machine.
pub(crate) fn native(img: &VmImage) -> Vec<u8> {
    let mut m = sim::Machine::new(sim::MachineConfig::default(), sim::dev::Board::new(1));
    assert!(img.load_into(&mut m));
    m.cpus[0].set_pc(img.entry);
    assert_eq!(m.run(), sim::Exit::Halted { status: 0 });
    m.take_console()
}

pub(crate) fn monitor(img: &VmImage) -> Monitor {
    monitor_with(img, Policy::Block, Cost::default())
}

pub(crate) fn monitor_with(img: &VmImage, policy: Policy, cost: Cost) -> Monitor {
    let mut vm = VmConfig::new("g", img.clone(), 4 << 20);
    vm.io.policy = policy;
    // Coalescing is about device accesses that trap: trap-and-emulate
    // (translated code calls the virtual device at its site instead).
    vm.exec = monitor::bt::Exec::Direct;
    let mut m = Monitor::new(MonitorConfig {
        pcpus: 1,
        max_cycles: Some(20_000_000),
        // Long quanta: blocks here end for the reasons each test is about.
        quantum: 1_000_000,
        vms: vec![vm],
        cost,
        ..MonitorConfig::default()
    })
    .expect("valid config");
    m.trace.enabled = true;
    assert_eq!(m.run(), MonitorExit::AllEnded, "trace:\n{}", lines(&m));
    assert_eq!(m.vms[0].end, Some(VmEnd::Halted(0)), "{}", lines(&m));
    m
}

pub(crate) fn lines(m: &Monitor) -> String {
    m.trace.lines().join("\n")
}

/// Strings for `puts`, at VA 0xC0080000 (P 0x180000, in the window).
pub(crate) const STRINGS: u32 = 0xC008_0000;

/// The string segment: NUL-terminated `strs`, one every 0x100 bytes.
pub(crate) fn strings(strs: &[&str]) -> (u64, Vec<u8>) {
    let mut data = vec![0u8; 0x100 * strs.len()];
    for (i, s) in strs.iter().enumerate() {
        data[i * 0x100..i * 0x100 + s.len()].copy_from_slice(s.as_bytes());
    }
    (0x18_0000, data)
}

/// `puts` and `putc`, at 0xC0001000 (P 0x101000).
pub(crate) const PUTS: u32 = 0xC000_1000;
/// `addiu a0,a0,1` in `puts`'s loop, and `putc`'s store (the trap site).
pub(crate) const PUTS_NEXT: u32 = PUTS + 4 * 8;
pub(crate) const PUTC: u32 = PUTS + 4 * 14;

/// `jal target` (same 256 MB region) and a nop.
pub(crate) fn jal(k: &mut Asm, target: u32) {
    k.emit(
        Op::Jal,
        Operands {
            imm: (target >> 2) & 0x03FF_FFFF,
            ..Operands::default()
        },
    );
    k.nop();
}

/// `puts(STRINGS + 0x100 * i)`.
pub(crate) fn call_puts(k: &mut Asm, i: u32) {
    k.li(R::A0, STRINGS + 0x100 * i);
    jal(k, PUTS);
}

/// `puts(a0)`: for each byte, `putc` (a function: the block calls it, and
/// its return leads back into the loop). Uses t0, t8, s0 (saved ra).
pub(crate) fn puts_segment() -> (u64, Vec<u8>) {
    let mut k = Asm::new(PUTS);
    k.move_(R::S0, R::RA);
    k.li(R::T8, CONS);
    k.label("puts_loop");
    k.mem(Op::Lb, R::T0, 0, R::A0);
    k.beqz(R::T0, "puts_done");
    k.nop();
    k.jump(Op::Jal, "putc");
    k.nop();
    assert_eq!(k.here(), PUTS_NEXT);
    k.imm(Op::Addiu, R::A0, R::A0, 1);
    k.b("puts_loop");
    k.nop();
    k.label("puts_done");
    k.move_(R::RA, R::S0);
    k.jr(R::RA);
    k.label("putc");
    assert_eq!(k.here(), PUTC);
    k.mem(Op::Sb, R::T0, 0, R::T8);
    k.jr(R::RA);
    (0x10_1000, k.bytes().unwrap())
}

/// A privileged instruction: it ends a scan (and a block) where it lies.
pub(crate) fn privileged(k: &mut Asm) {
    k.mfc0(R::T1, 9); // Count
}

/// A machine whose world switches are expensive (`--cost exit=1000`),
/// where a console line's block pays.
pub(crate) fn dear_exits() -> Cost {
    let mut c = Cost::default();
    c.set("exit", 1000).unwrap();
    c
}

/// Runs `img` natively and under each policy (with `cost`): every run
/// prints what the bare machine prints. Returns the `block` run.
pub(crate) fn same_output_under_every_policy(img: &VmImage, cost: Cost) -> Monitor {
    let want = native(img);
    let mut block = None;
    for p in Policy::NAMES {
        let policy = Policy::parse(p).unwrap();
        let mut m = monitor_with(img, policy, cost);
        let got = m.take_console(0);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "coalesce={p}\n{}",
            lines(&m)
        );
        if policy == Policy::Block {
            block = Some(m);
        }
    }
    block.unwrap()
}

/// The lines from the first containing `from` to the first after it
/// containing `to`, inclusive.
pub(crate) fn story(m: &Monitor, from: &str, to: &str) -> String {
    let all = m.trace.lines();
    let start = all
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no line with {from:?}"));
    let end = all[start..]
        .iter()
        .position(|l| l.contains(to))
        .map(|i| start + i)
        .unwrap_or_else(|| panic!("no line with {to:?} after {from:?}"));
    all[start..=end].join("\n")
}
